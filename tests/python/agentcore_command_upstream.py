"""A stand-in for AgentCore's command endpoint, for `termtrail proxy`'s
command forwarding (tests/e2e/wire.rs). Like the service it answers only
the AWS event stream, whatever the request's Accept says; its frames are
encoded here, independently of termtrail's encoder.

Usage: python agentcore_command_upstream.py SERVE_ADDR [AK SK TOKEN]
Prints "ready PORT", then one line per call: "call ACCEPT". With keys, every
call must carry a SigV4 signature for them (body included), checked with
botocore: a second line "sigv4 ok" or "sigv4 BAD <why>" (then 403).

POST /runtimes/<arn>/commands, by the command text:
- "fake-throttle ...": 429, x-amzn-errortype ThrottlingException
- "fake-deny ...": 403, x-amzn-errortype AccessDeniedException
- "fake-midstream ...": 200, contentStart, one contentDelta, then a
  throttlingException exception event (the answer ends there)
- anything else: relayed to termtrail `serve` at SERVE_ADDR asking for its
  event stream, whose bytes are passed on unchanged.
"""

import http.client
import json
import re
import struct
import sys
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVE = sys.argv[1]
KEYS = sys.argv[2:5] if len(sys.argv) >= 5 else None
AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                  r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")
EVENT_STREAM = "application/vnd.amazon.eventstream"


def message(headers, payload):
    """One event stream message: prelude (total length, headers length,
    CRC), headers (name length, name, type 7 = string, value length,
    value), payload, message CRC."""
    hb = b""
    for name, value in headers:
        n, v = name.encode(), value.encode()
        hb += bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 12 + len(hb) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hb))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + hb + payload
    return body + struct.pack(">I", zlib.crc32(body))


def chunk(obj):
    return message(
        [(":message-type", "event"), (":event-type", "chunk"),
         (":content-type", "application/json")],
        json.dumps(obj).encode(),
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json_error(self, status, error_type, msg):
        body = json.dumps({"message": msg}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-errortype", error_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_stream(self, data):
        self.send_response(200)
        self.send_header("Content-Type", EVENT_STREAM)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def signature_problem(self, raw):
        """Why the call's SigV4 signature is not right for KEYS (None: it is)."""
        h = self.headers
        m = AUTH.match(h.get("Authorization", ""))
        if not m:
            return f"no or malformed Authorization header {h.get('Authorization')!r}"
        ak, _, region, service, signed, sig = m.groups()
        if ak != KEYS[0] or service != "bedrock-agentcore":
            return f"credential scope {ak} {service}"
        names = signed.split(";")
        for required in ("host", "x-amz-date", "x-amzn-bedrock-agentcore-runtime-session-id"):
            if required not in names:
                return f"{required} not signed"
        req = AWSRequest(method="POST", url=f"https://{h['Host']}{self.path}",
                         headers={n: h[n] for n in names}, data=raw)
        req.context["timestamp"] = h["X-Amz-Date"]
        auth = SigV4Auth(Credentials(*KEYS), service, region)
        expected = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
        if expected != sig:
            return f"signature {sig} != {expected}; canonical request:\n{auth.canonical_request(req)}"
        return None

    def do_POST(self):
        print(f"call {self.headers.get('Accept')}", flush=True)
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if KEYS:
            problem = self.signature_problem(raw)
            print(f"sigv4 BAD {problem}" if problem else "sigv4 ok", flush=True)
            if problem:
                return self.send_json_error(403, "AccessDeniedException", "bad signature")
        command = json.loads(raw).get("command", "")
        if command.startswith("fake-throttle"):
            return self.send_json_error(429, "ThrottlingException", "Rate exceeded")
        if command.startswith("fake-deny"):
            return self.send_json_error(403, "AccessDeniedException", "not for you")
        if command.startswith("fake-midstream"):
            data = chunk({"contentStart": {}})
            data += chunk({"contentDelta": {"stdout": "partial\n"}})
            data += message(
                [(":message-type", "exception"),
                 (":exception-type", "throttlingException"),
                 (":content-type", "application/json")],
                json.dumps({"message": "Rate exceeded mid-stream"}).encode(),
            )
            return self.send_stream(data)
        host, port = SERVE.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("content-type", "x-amzn-bedrock-agentcore-runtime-session-id")}
        headers["Accept"] = EVENT_STREAM
        conn.request("POST", self.path, body=raw, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            self.send_response(resp.status)
            for k in ("Content-Type", "x-amzn-errortype"):
                if resp.getheader(k):
                    self.send_header(k, resp.getheader(k))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        assert resp.getheader("Content-Type") == EVENT_STREAM, resp.getheader("Content-Type")
        self.send_stream(data)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
