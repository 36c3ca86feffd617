#!/usr/bin/env python3
"""One-shot command flood against `serve` (issue 14 item 3):

    cargo build && (ulimit -n 1024; python3 bench/commands.py)

N command calls (`sleep 9.75`, timeout 30) sent within about half a second on
connections that stay open, then: the host's resident memory and descriptor
count, the command processes running (supervisor, sh and sleep per command),
whether `/healthz` answers and a shell's WebSocket upgrade succeeds during the
flood, the calls' HTTP answers, the same figures once the clients have gone,
and the processes left after SIGTERM. Standard library only.
Environment: TERMTRAIL_BIN (target/debug/termtrail), CALLS (250), EXTRA (more
serve flags, e.g. "--max-commands 4")."""

import json, os, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TT = os.environ.get("TERMTRAIL_BIN", os.path.join(ROOT, "target", "debug", "termtrail"))
CALLS = int(os.environ.get("CALLS", "250"))
EXTRA = os.environ.get("EXTRA", "").split()
MARK = "sleep 9.75"
SESSION = "bench-commands-0000000000000000000000001"


def start(home):
    p = subprocess.Popen(
        [TT, "serve", "--listen", "127.0.0.1:0", "--no-auth", "--store", home + "/store", *EXTRA,
         "--", "bash", "--norc", "--noprofile"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HOME": home})
    for line in p.stderr:
        if "listening on" in line:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, line.split("://")[1].split("/")[0]
    sys.exit("serve did not start")


def figures(pid):
    rss = next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")).split()[1]
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    procs = subprocess.run(["pgrep", "-c", "-f", MARK], capture_output=True, text=True).stdout.strip()
    return f"RSS {int(rss) // 1024} MB, {fds} descriptors, {procs} command processes"


def head(addr, path, headers=""):
    host, port = addr.split(":")
    try:
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n".encode())
        return s.recv(4096).split(b"\r\n")[0].decode()
    except OSError as e:
        return f"failed: {e}"


def main():
    home = tempfile.mkdtemp(prefix="tt-bench-commands-")
    p, addr = start(home)
    host, port = addr.split(":")
    print("idle:   ", figures(p.pid))
    body = json.dumps({"command": MARK, "timeout": 30}).encode()
    req = (f"POST /runtimes/bench/commands HTTP/1.1\r\nHost: {addr}\r\n"
           f"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id: {SESSION}\r\n"
           f"Content-Type: application/json\r\nAccept: application/x-ndjson\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    socks, t0 = [], time.time()
    for _ in range(CALLS):
        s = socket.create_connection((host, int(port)))
        s.sendall(req)
        socks.append(s)
        time.sleep(0.5 / CALLS)
    print(f"sent {CALLS} calls in {time.time() - t0:.2f} s")
    time.sleep(1.5)
    print("flood:  ", figures(p.pid))
    print("healthz:", head(addr, "/healthz"))
    print("shell:  ", head(addr, "/runtimes/bench/ws/shells?shellId=s1",
                            f"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id: {SESSION}\r\n"
                            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"))
    answers = {}
    for s in socks:
        s.settimeout(0.2)
        try:
            line = s.recv(200).split(b"\r\n")[0].decode()
        except OSError:
            line = "(no answer yet)"
        answers[line] = answers.get(line, 0) + 1
    print("answers:", answers)
    for s in socks:
        s.close()
    time.sleep(1)
    print("clients gone:", figures(p.pid))
    p.terminate()
    t = time.time()
    p.wait()
    print(f"exit {time.time() - t:.2f} s after SIGTERM")
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-c", "-f", MARK], capture_output=True, text=True).stdout.strip()
    print("command processes left:", left)


if __name__ == "__main__":
    main()
