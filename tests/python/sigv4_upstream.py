"""An AgentCore-protocol upstream that checks the SigV4 signature of every
WebSocket upgrade independently, with botocore (the AWS SDK for Python),
then serves a tiny echo shell. For tests/e2e/proxy.rs.

Usage: python sigv4_upstream.py ACCESS_KEY SECRET_KEY SESSION_TOKEN
Prints "ready PORT", then "sigv4 ok" or "sigv4 BAD <why>" per upgrade."""

import asyncio, json, re, sys

import websockets
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AK, SK, TOKEN = sys.argv[1], sys.argv[2], sys.argv[3]
AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                  r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")


def check(connection, request):
    h = request.headers
    m = AUTH.match(h.get("Authorization", ""))
    if not m:
        print(f"sigv4 BAD no or malformed Authorization header {h.get('Authorization')!r}", flush=True)
        return connection.respond(403, "missing signature\n")
    ak, _, region, service, signed, sig = m.groups()
    if ak != AK or service != "bedrock-agentcore":
        print(f"sigv4 BAD credential scope {ak} {service}", flush=True)
        return connection.respond(403, "bad scope\n")
    names = signed.split(";")
    for required in ("host", "x-amz-date", "x-amzn-bedrock-agentcore-runtime-session-id", "x-amz-security-token"):
        if required not in names:
            print(f"sigv4 BAD {required} not signed", flush=True)
            return connection.respond(403, "bad signed headers\n")
    req = AWSRequest(method="GET", url=f"https://{h['Host']}{request.path}",
                     headers={n: h[n] for n in names})
    req.context["timestamp"] = h["X-Amz-Date"]
    auth = SigV4Auth(Credentials(AK, SK, TOKEN), service, region)
    expected = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
    if expected != sig:
        print(f"sigv4 BAD signature {sig} != {expected}; canonical request:\n{auth.canonical_request(req)}\nheaders: {dict(h)}", flush=True)
        return connection.respond(403, "bad signature\n")
    print("sigv4 ok", flush=True)
    return None


async def shell(ws):
    shell_id = "signed"
    await ws.send(b"\x03" + json.dumps({"kind": "Status", "apiVersion": "v1",
                                         "metadata": {"shellId": shell_id, "reconnected": False},
                                         "status": "Success"}).encode())
    async for msg in ws:
        if isinstance(msg, bytes) and msg[:1] == b"\x00":
            await ws.send(b"\x01" + msg[1:])
            if b"exit" in msg:
                await ws.send(b"\x03" + json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                                     "status": "Success"}).encode())
                await ws.close()
                return


async def main():
    async with websockets.serve(shell, "127.0.0.1", 0, process_request=check) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"ready {port}", flush=True)
        await asyncio.Future()


asyncio.run(main())
