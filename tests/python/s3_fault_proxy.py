"""A fault-injecting HTTP proxy between termtrail and an S3 server (moto) for
the fault tests (tests/e2e/netfaults.rs).

Every S3 request takes the next action of the plan the test set (a list
used round-robin, `ok` when none):

  ok         forwarded; the upstream's answer relayed
  500, 503   answered with that status and an S3 error body
             (InternalError, SlowDown); nothing forwarded
  reset      the connection reset (RST) without an answer
  delayMS    forwarded after MS milliseconds (a slow S3)
  hang       never answered: the connection is held open, silent, for 10
             minutes (a request lost on the way without a reset)

When the upstream cannot be reached (S3 stopped) the connection is reset.

Control (not S3: bucket names cannot start with "_"):
  GET /__fault__/set?plan=503,ok   the plan from now on (empty: ok)
  GET /__fault__/log               every S3 request so far, JSON: a list of
                                   {t (wall-clock ms), method, path, query,
                                   action, status, bytes (request body)}

Usage: python s3_fault_proxy.py UPSTREAM_PORT   (prints "ready PORT")"""

import http.client
import json
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = ("127.0.0.1", 0)
STATE = {"plan": ["ok"], "next": 0, "log": []}
LOCK = threading.Lock()
ERRORS = {500: "InternalError", 503: "SlowDown"}
HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}


def now_ms():
    return int(time.time() * 1000)


def next_action():
    with LOCK:
        plan = STATE["plan"]
        action = plan[STATE["next"] % len(plan)]
        STATE["next"] += 1
        return action


def record(entry):
    with LOCK:
        STATE["log"].append(entry)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        """The request body as it came (chunked bodies stay chunked)."""
        n = self.headers.get("Content-Length")
        if n is not None:
            return self.rfile.read(int(n))
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raw = b""
            while True:
                line = self.rfile.readline()
                raw += line
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        t = self.rfile.readline()
                        raw += t
                        if t in (b"\r\n", b"\n", b""):
                            return raw
                raw += self.rfile.read(size + 2)
        return b""

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def control(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__fault__/set":
            plan = urllib.parse.parse_qs(url.query).get("plan", [""])[0]
            with LOCK:
                STATE["plan"] = [a for a in plan.split(",") if a] or ["ok"]
                STATE["next"] = 0
            body = json.dumps({"t": now_ms()}).encode()
        else:
            with LOCK:
                body = json.dumps(STATE["log"]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def relay(self):
        if self.path.startswith("/__fault__/"):
            return self.control()
        body = self.read_body()
        action = next_action()
        url = urllib.parse.urlsplit(self.path)
        entry = {"t": now_ms(), "method": self.command, "path": url.path,
                 "query": url.query, "action": action, "status": 0, "bytes": len(body)}
        if action == "reset":
            record(entry)
            return self.reset()
        if action == "hang":
            record(entry)
            time.sleep(600)
            return self.reset()
        if action in ("500", "503"):
            status = int(action)
            text = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{ERRORS[status]}"
                    f"</Code><Message>injected fault</Message></Error>").encode()
            entry["status"] = status
            record(entry)
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(text)
            return
        if action.startswith("delay"):
            time.sleep(int(action[5:]) / 1000)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            headers["Transfer-Encoding"] = "chunked"
        try:
            up = http.client.HTTPConnection(*UPSTREAM, timeout=60)
            up.request(self.command, self.path, body=body, headers=headers)
            resp = up.getresponse()
            data = resp.read()
            up.close()
        except OSError:
            entry["action"] = "down"
            record(entry)
            return self.reset()
        entry["status"] = resp.status
        entry["t_done"] = now_ms()
        record(entry)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay


def main():
    global UPSTREAM
    UPSTREAM = ("127.0.0.1", int(sys.argv[1]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
