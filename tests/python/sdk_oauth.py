"""Drives termtrail's shell host with the public AgentCore SDK's ShellSession
in OAuth mode (bearer token as the WebSocket subprotocol). The SDK's own
AgentCoreRuntimeClient.connect_shell_oauth builds the subprotocols; only its
URL builder is pointed at the loopback host.

Usage: python sdk_oauth.py HOST:PORT TOKEN
Prints one JSON object: the output seen and the exit code, or the HTTP status
and body of a refusal."""

import asyncio, json, sys, urllib.parse

import websockets
from bedrock_agentcore.runtime.agent_core_runtime_client import AgentCoreRuntimeClient
from bedrock_agentcore.runtime.shell.auth import OAuthAuth
from bedrock_agentcore.runtime.shell.protocol import ShellChannel
from bedrock_agentcore.runtime.shell.session import ShellSession

ARN = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/termtrail-sdk"


class LoopbackClient(AgentCoreRuntimeClient):
    def __init__(self, addr):
        super().__init__("us-west-2")
        self.addr = addr

    def _build_shell_url(self, runtime_arn, endpoint_name=None, shell_id=None):
        arn = urllib.parse.quote(runtime_arn, safe="")
        return f"ws://{self.addr}/runtimes/{arn}/ws/shells?shellId={shell_id}"


async def main(addr, token):
    client = LoopbackClient(addr)
    try:
        async with ShellSession(client, ARN, session_id="sdk-oauth-session-0000-1111-2222",
                                shell_id="sdkoauth", auth=OAuthAuth(bearer_token=token)) as shell:
            protocol = shell._ws.subprotocol
            await shell.send("echo sdk-oauth-$((6*7))\n")
            out = ""
            async def until():
                nonlocal out
                async for frame in shell:
                    if frame.channel == ShellChannel.STDOUT:
                        out += frame.text
                        if "sdk-oauth-42" in out:
                            return
            await asyncio.wait_for(until(), 10)
            await shell.send("exit 3\n")
            async def drain():
                async for _ in shell:
                    pass
            await asyncio.wait_for(drain(), 10)
            return {"output": out, "exit_code": shell.exit_code, "subprotocol": protocol}
    except websockets.exceptions.InvalidStatus as e:
        return {"status": e.response.status_code, "body": e.response.body.decode()}


print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
