"""Drives termtrail's shell host with the public AgentCore SDK's real
ShellSession (bedrock-agentcore on PyPI). Only the URL builder is replaced:
a stand-in client returns a loopback ws:// URL in AgentCore's path shape and
the session id header, so the SDK's own connection, framing, iteration,
reconnect and exit-code code runs against our server.

Usage: python sdk_shell.py HOST:PORT SCENARIO
Prints one JSON object with what the SDK observed; tests/e2e/serve_sdk.rs
asserts on it."""

import asyncio, json, os, sys, urllib.parse

from bedrock_agentcore.runtime.shell.session import ShellSession
from bedrock_agentcore.runtime.shell.protocol import ShellChannel

ARN = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/termtrail-sdk"


class LoopbackClient:
    """Stands in for AgentCoreRuntimeClient: builds the URL, nothing else."""

    region = "us-west-2"

    def __init__(self, addr):
        self.addr = addr

    def connect_shell(self, runtime_arn, session_id=None, endpoint_name=None, shell_id=None):
        arn = urllib.parse.quote(runtime_arn, safe="")
        scheme = os.environ.get("SDK_SCHEME", "ws")
        url = f"{scheme}://{self.addr}/runtimes/{arn}/ws/shells?shellId={shell_id}"
        return url, {"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": session_id}


async def read_until(shell, needle, timeout=10):
    out = ""
    async def go():
        nonlocal out
        async for frame in shell:
            if frame.channel == ShellChannel.STDOUT:
                out += frame.text
                if needle in out:
                    return
    await asyncio.wait_for(go(), timeout)
    return out


async def drain(shell, timeout=10):
    """Iterates until the SDK stops (exit status, kick, close)."""
    frames = []
    async def go():
        async for frame in shell:
            frames.append((int(frame.channel), frame.payload.decode("utf-8", "replace")))
    await asyncio.wait_for(go(), timeout)
    return frames


async def basic(client):
    async with ShellSession(client, ARN, session_id="sdk-session-0000-1111-2222-3333-4444", shell_id="sdk1") as shell:
        await shell.resize(100, 30)
        await shell.send("echo sdk-$((6*7)); tput cols\n")
        out = await read_until(shell, "100\r\n")
        await shell.send("exit 7\n")
        frames = await drain(shell)
        return {"shell_id": shell.shell_id, "session_id": shell.session_id, "output": out,
                "exit_code": shell.exit_code, "last_status": frames[-1][1] if frames else None}


async def reconnect(client):
    sid = "sdk-session-reconnect-0000-1111-2222"
    async with ShellSession(client, ARN, session_id=sid, shell_id="sdk2") as a:
        await a.send("cd /tmp; export SDKMARK=kept; (sleep 0.7; echo produced-while-away) &\n")
        await read_until(a, "tt>")
    # The SDK's close() only closes the socket: the shell stays for a re-attach.
    await asyncio.sleep(1.5)
    async with ShellSession(client, ARN, session_id=sid, shell_id="sdk2") as b:
        replay = await read_until(b, "produced-while-away")
        await b.send("echo $PWD/$SDKMARK\n")
        state = await read_until(b, "/tmp/kept")
        await b.send("exit\n")
        await drain(b)
        return {"replay": replay, "state": state, "exit_code": b.exit_code}


async def takeover(client):
    sid = "sdk-session-takeover-0000-1111-2222"
    async with ShellSession(client, ARN, session_id=sid, shell_id="sdk3") as a:
        await a.send("echo first-client\n")
        await read_until(a, "first-client")
        async with ShellSession(client, ARN, session_id=sid, shell_id="sdk3") as b:
            await drain(a)  # stops when kicked
            await b.send("echo second-client\n")
            out = await read_until(b, "second-client")
            await b.send("exit\n")
            await drain(b)
            return {"first_kicked": a.kicked, "second_kicked": b.kicked, "second_output": out, "exit_code": b.exit_code}


async def refused(client):
    held = []
    try:
        for i in range(3):
            s = ShellSession(client, ARN, session_id="sdk-session-limit-0000-1111-2222", shell_id=f"lim{i}")
            await s.__aenter__()
            held.append(s)
        return {"refused": False}
    except Exception as e:  # websockets.exceptions.InvalidStatus
        resp = getattr(e, "response", None)
        return {"refused": True, "error": type(e).__name__,
                "status": getattr(resp, "status_code", None),
                "body": resp.body.decode() if resp is not None else None, "opened": len(held)}
    finally:
        for s in held:
            await s.close()


def main():
    addr, scenario = sys.argv[1], sys.argv[2]
    client = LoopbackClient(addr)
    result = asyncio.run({"basic": basic, "reconnect": reconnect, "takeover": takeover, "refused": refused}[scenario](client))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
