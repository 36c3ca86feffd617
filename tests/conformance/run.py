#!/usr/bin/env python3
"""termtrail shell-protocol conformance suite, written from docs/protocol.md alone.

    run.py --bin PATH [--only NAME]... [--keep]

Starts its own `termtrail serve` (and `termtrail proxy` in front of a second
`serve`) on loopback with --no-auth and temporary stores, runs every scenario
against serve and through the proxy, and prints one line per check:
PASS|FAIL|SKIP name: detail. Exits 1 if any FAIL.
"""

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import (  # noqa: E402
    CLOSE, HEARTBEAT, MAX_MESSAGE, OP_BIN, OP_CONT, OP_PING, OP_TEXT, REPLAY_MAX, RESIZE,
    STATUS, STDERR, STDIN, STDOUT, WS, ProtocolError, command, confirmation, exit_status, http_request,
    is_confirmation, refusal_ok)

SHELL = ["bash", "--norc", "--noprofile"]
HOST_USER = "conformance-user"
LOCAL = "127.0.0.1"
BIN = None
WORK = None
PROCS = []          # every Popen we started (each leads its own process group)
ALL_WS = []         # every connection opened, for the global checks
EXPECTED_RECORDINGS = []   # (check name, Host, session, shell, index, want end dict, want verify text)
STORES = []         # (name, store dir) verified with `verify --store` at the end
RESULTS = []


# ---------------------------------------------------------------- processes

def _kill_group(p, sig=signal.SIGKILL):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_all():
    for p in PROCS:
        if p.poll() is None:
            _kill_group(p)
        try:
            p.wait(timeout=3)
        except Exception:
            pass
    for p in PROCS:   # the group may outlive its leader (shells)
        _kill_group(p)


atexit.register(_kill_all)


def _on_signal(signum, frame):
    _kill_all()
    sys.exit(130)


class Host:
    """A running serve, or a proxy (with its upstream serve)."""

    def __init__(self, kind, port, store, proc, log, upstream=None, args=()):
        self.kind, self.port, self.store, self.proc, self.log = kind, port, store, proc, log
        self.upstream = upstream
        self.args = list(args)
        self.source = "proxy" if kind == "proxy" else "serve"

    def stop(self, sig=signal.SIGTERM, timeout=8.0):
        """Stop this host (and its upstream). Returns the host's exit code or None."""
        rc = None
        if self.proc.poll() is None:
            _kill_group(self.proc, sig) if sig == signal.SIGKILL else self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc)
                self.proc.wait(timeout=3)
        else:
            rc = self.proc.returncode
        _kill_group(self.proc)
        if self.upstream:
            self.upstream.stop(sig, timeout)
        return rc


def _start(args, log, port_re=r"listening on ws://127\.0\.0\.1:(\d+)", timeout=20.0):
    f = open(log, "wb")
    env = dict(os.environ, USER=HOST_USER)   # --no-auth: the principal is the host's $USER
    p = subprocess.Popen([BIN] + args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, env=env)
    PROCS.append(p)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, "rb") as g:
            m = re.search(port_re.encode(), g.read())
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            raise RuntimeError("%s exited %s: %s" % (args[0], p.returncode, open(log, "rb").read()[-2000:]))
        time.sleep(0.05)
    _kill_group(p)
    raise RuntimeError("%s did not print its port: %s" % (args[0], open(log, "rb").read()[-2000:]))


_counter = [0]


def _name(prefix):
    _counter[0] += 1
    return "%s-%d" % (prefix, _counter[0])


def start_serve(args=(), port=0, store=None, verify_store=True, shell=None):
    n = _name("serve")
    store = store or os.path.join(WORK, n + "-store")
    a = ["serve", "--listen", "%s:%d" % (LOCAL, port), "--no-auth", "--store", store] + list(args) + ["--"] + (shell or SHELL)
    p, port = _start(a, os.path.join(WORK, n + ".log"))
    if verify_store and (n, store) not in STORES:
        STORES.append((n, store))
    return Host("serve", port, store, p, os.path.join(WORK, n + ".log"), args=args)


def start_proxy(upstream_port, args=(), port=0, store=None, upstream=None, verify_store=True):
    n = _name("proxy")
    store = store or os.path.join(WORK, n + "-store")
    a = ["proxy", "--listen", "%s:%d" % (LOCAL, port), "--no-auth", "--store", store,
         "--upstream", "ws://%s:%d" % (LOCAL, upstream_port)] + list(args)
    p, port = _start(a, os.path.join(WORK, n + ".log"))
    if verify_store and (n, store) not in STORES:
        STORES.append((n, store))
    return Host("proxy", port, store, p, os.path.join(WORK, n + ".log"), upstream=upstream, args=args)


def make_host(kind, serve_args=(), proxy_args=(), shell=None):
    """A host of this kind; for a proxy the flags that matter are the proxy's own."""
    if kind == "serve":
        return start_serve(serve_args, shell=shell)
    up = start_serve(["--max-shells", "100"], shell=shell)
    return start_proxy(up.port, proxy_args, upstream=up)


# ---------------------------------------------------------------- scenarios

class Fail(Exception):
    pass


class Skip(Exception):
    pass


class Timeout(Exception):
    pass


SCENARIOS = []


def scenario(name, kinds=("serve", "proxy"), budget=10):
    def deco(fn):
        SCENARIOS.append((name, fn, kinds, budget))
        return fn
    return deco


class Ctx:
    def __init__(self, name, kind, main):
        self.name, self.kind, self.main = name, kind, main
        self.hosts = []
        self.conns = []
        self.notes = []

    def sid(self, tag=""):
        return re.sub(r"[^A-Za-z0-9-]", "-", "%s-%s-%s%d" % (self.name, self.kind, tag, int(time.time() * 1000) % 100000000))[:120]

    def spawn(self, serve_args=(), proxy_args=(), shell=None):
        h = make_host(self.kind, serve_args, proxy_args, shell)
        self.hosts.append(h)
        return h

    def connect(self, host=None, session=None, shell=None, **kw):
        host = host or self.main
        ws, ans = WS.connect(LOCAL, host.port, session=session, shell=shell, **kw)
        if ws:
            self.conns.append(ws)
            ALL_WS.append(ws)
        return ws, ans

    def open(self, host=None, session=None, shell=None, reconnected=False, **kw):
        """Connect, require 101 and a first message that is the confirmation."""
        ws, ans = self.connect(host, session, shell, **kw)
        if ws is None:
            raise Fail("connect %s/%s: expected 101, got %r" % (session, shell, ans))
        m = ws.recv_app(5)
        if m.kind != "binary" or m.channel != STATUS:
            raise Fail("first message after 101 is not a STATUS: %r" % m)
        obj = m.status()
        want_shell = shell if shell is not None else obj.get("metadata", {}).get("shellId")
        if obj != confirmation(want_shell, reconnected):
            raise Fail("confirmation: got %s, want %s" % (m.payload, json.dumps(confirmation(want_shell, reconnected))))
        return ws, ans, obj

    def expect_content(self, host, session, shell, check, index=0):
        """check(path, header, events) -> (problems, detail), run on the exported asciicast after the run."""
        EXPECTED_RECORDINGS.append(("recording_content:%s[%s]" % (self.name, self.kind), host, session, shell, index, check, None))

    def expect_recording(self, host, session, shell, end, text, index=0):
        EXPECTED_RECORDINGS.append(("recording:%s[%s]" % (self.name, self.kind), host, session, shell, index, end, text))

    def cleanup(self):
        for ws in self.conns:
            ws.abort()
        for h in self.hosts:
            h.stop()


def ready(ws, tag="R", timeout=5):
    """Round-trip through the shell: type an arithmetic echo, wait for its result."""
    n = int(time.monotonic() * 1000) % 9000 + 1000
    ws.stdin("echo %s-$((%d+1))\r" % (tag, n))
    out, _ = ws.read_until_output("%s-%d" % (tag, n + 1), timeout)
    return out


def reason_problems(m):
    p = []
    if len(m.reason) > 123:
        p.append("reason is %d bytes (> 123)" % len(m.reason))
    try:
        m.reason.decode("utf-8")
    except UnicodeDecodeError:
        p.append("reason is not UTF-8")
    return p


def expect_exit(ws, want_obj, timeout=6):
    """Output may come first; then exactly the exit status, then Close 1000."""
    msgs = ws.read_to_end(timeout)
    statuses = [m for m in msgs if m.kind == "binary" and m.channel == STATUS]
    other = [m for m in msgs if m.kind not in ("close", "eof", "reset", "timeout") and not (m.kind == "binary" and m.channel in (STDOUT, STATUS, HEARTBEAT))]
    last = msgs[-1]
    probs = []
    if len(statuses) != 1:
        probs.append("expected exactly one STATUS, got %r" % [s.payload for s in statuses])
    elif statuses[0].status() != want_obj:
        probs.append("exit status %s, want %s" % (statuses[0].payload.decode(), json.dumps(want_obj)))
    elif msgs[-2] is not statuses[0]:
        probs.append("close is not right after the exit status: %r" % msgs[-3:])
    if other:
        probs.append("unexpected messages %r" % other)
    if last.kind != "close" or last.code != 1000:
        probs.append("ended with %r, want Close 1000" % last)
    elif reason_problems(last):
        probs += reason_problems(last)
    if probs:
        raise Fail("; ".join(probs))
    return last


def read_replay(ws, shell, timeout=8):
    """After a reconnected:true confirmation: STDOUT until the second confirmation."""
    deadline = time.monotonic() + timeout
    replay, n_msgs = b"", 0
    while True:
        m = ws.recv_app(max(0, deadline - time.monotonic()))
        if m.kind == "binary" and m.channel == STDOUT:
            replay += m.payload
            n_msgs += 1
            continue
        if m.kind == "binary" and m.channel == STATUS:
            obj = m.status()
            md = obj.get("metadata", {})
            if not (is_confirmation(obj) and md.get("reconnected") is True and isinstance(md.get("bytesDropped"), int)):
                raise Fail("expected the second confirmation with bytesDropped, got %s" % m.payload)
            want = confirmation(shell, True, md["bytesDropped"])
            if obj != want:
                raise Fail("second confirmation %s, want shape %s" % (m.payload, json.dumps(want)))
            return replay, md["bytesDropped"], n_msgs
        raise Fail("during replay: unexpected %r (replay so far %d bytes: %r)" % (m, len(replay), replay[-200:]))


def metric(host, name):
    a = http_request(LOCAL, host.port, "GET", "/metrics")
    total = 0.0
    found = False
    for line in a.body.decode().splitlines():
        if line.startswith(name) and (line[len(name):len(name) + 1] in (" ", "{")):
            total += float(line.split()[-1])
            found = True
    return total if found else None


# ---- §1 connecting

@scenario("confirmation")
def s_confirmation(ctx):
    s = ctx.sid()
    ws, ans, obj = ctx.open(session=s, shell="conf1", qualifier="DEFAULT")
    probs = []
    if ans.header("x-amzn-bedrock-agentcore-shell-id") != "conf1":
        probs.append("x-amzn-bedrock-agentcore-shell-id=%r" % ans.header("x-amzn-bedrock-agentcore-shell-id"))
    if ans.header("x-amzn-bedrock-agentcore-runtime-session-id") != s:
        probs.append("x-amzn-bedrock-agentcore-runtime-session-id=%r" % ans.header("x-amzn-bedrock-agentcore-runtime-session-id"))
    ready(ws)
    ws.close_shell()
    ws.read_to_end(5)
    if probs:
        raise Fail("; ".join(probs))
    return "101 headers and %s" % json.dumps(obj)


@scenario("session_id_in_query")
def s_session_query(ctx):
    s = ctx.sid()
    ws, ans, obj = ctx.open(session=s, shell="q1", session_in="query")
    if ans.header("x-amzn-bedrock-agentcore-runtime-session-id") != s:
        raise Fail("session header %r" % ans.header("x-amzn-bedrock-agentcore-runtime-session-id"))
    ready(ws)
    ws.close_shell()
    ws.read_to_end(5)
    return "session id as query parameter accepted"


@scenario("arn_encoding")
def s_arn(ctx):
    # the ARN is one path segment, percent-encoded (':' %3A and '/' %2F), decoded once
    s = ctx.sid()
    arn = "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/my rt~x"
    ws, ans, obj = ctx.open(session=s, shell="arn1", arn=arn)
    ready(ws)
    ws.close_shell()
    ws.read_to_end(5)
    return "ARN with %2F/%3A/%20 accepted"


@scenario("ids_validation", budget=15)
def s_ids(ctx):
    s = ctx.sid()
    probs, notes = [], []
    bad_sessions = [("missing", None, "header"), ("empty", "", "header"), ("257 chars", "a" * 257, "header"),
                    ("slash", "a/b", "query"), ("space", "a b", "query"), ("at", "a@b", "header"),
                    ("non-ascii", "é", "query")]
    for label, sess, where in bad_sessions:
        ws, ans = ctx.connect(session=sess, shell="ok1", session_in=where)
        if ws:
            probs.append("session %s: 101" % label)
            continue
        if ans.status != 400:
            probs.append("session %s: HTTP %d %r" % (label, ans.status, ans.body))
            continue
        try:
            p = refusal_ok(ans.json(), "BadRequest", 400)
        except ValueError:
            p = ["body is not JSON: %r" % ans.body]
        if p:
            probs.append("session %s: body %r: %s" % (label, ans.body, ", ".join(p)))
    for label, shell in (("leading _", "_abc"), ("leading -", "-abc"), ("dot", "a.b"), ("129 chars", "a" * 129),
                         ("slash", "a/b")):
        ws, ans = ctx.connect(session=s, shell=shell)
        if ws:
            probs.append("shell id %s (%r): 101" % (label, shell[:20]))
            continue
        if ans.status != 400:
            probs.append("shell id %s: HTTP %d %r" % (label, ans.status, ans.body))
            continue
        try:
            obj = ans.json()
            p = refusal_ok(obj, obj.get("reason"), 400)
            notes.append(obj.get("reason"))
        except ValueError:
            p = ["body is not JSON: %r" % ans.body]
        if p:
            probs.append("shell id %s: body %r: %s" % (label, ans.body, ", ".join(p)))
    # the edges that are valid
    for label, sess, shell in (("256-char session", "S" * 250 + "._:-a9", "edge1"), ("128-char shell", s, "a" + "b_-" * 42 + "z"),
                               ("1-char ids", "x", "y")):
        ws, ans = ctx.connect(session=sess, shell=shell)
        if not ws:
            probs.append("%s refused: %r" % (label, ans))
            continue
        m = ws.recv_app(5)
        if not (m.kind == "binary" and m.channel == STATUS and is_confirmation(m.status())):
            probs.append("%s: first message %r" % (label, m))
        ready(ws)
        ws.close_shell()
        ws.read_to_end(5)
    if probs:
        raise Fail("; ".join(probs))
    return "7 bad session ids -> 400 BadRequest, 5 bad shell ids -> 400 (reasons %s), edges accepted" % sorted(set(notes))


@scenario("default_shell_id")
def s_default_shell(ctx):
    s = ctx.sid()
    ws, ans, obj = ctx.open(session=s, shell=None)
    sh = obj["metadata"]["shellId"]
    if not re.fullmatch(r"[0-9a-fA-F]{32}", sh):
        raise Fail("picked shell id %r is not 32 hex digits" % sh)
    if ans.header("x-amzn-bedrock-agentcore-shell-id") != sh:
        raise Fail("header shell id %r != %r" % (ans.header("x-amzn-bedrock-agentcore-shell-id"), sh))
    ready(ws)
    ws.abort()
    ws2, _, _ = ctx.open(session=s, shell=sh, reconnected=True)
    read_replay(ws2, sh)
    ws2.close_shell()
    ws2.read_to_end(5)
    return "picked %s; re-attach by it works" % sh


@scenario("first_output_delivered", budget=30)
def s_first_output(ctx):
    # §3: after the confirmation "both directions flow freely"; a new shell's first output must reach
    # its client (it is not output produced "while no client was attached" to be dropped)
    h = ctx.spawn(shell=SHELL + ["-c", "printf EARLY-OUTPUT; exec " + " ".join(SHELL)])
    s = ctx.sid()
    lost = []
    N = 12
    for i in range(N):
        ws, _, _ = ctx.open(h, s, "fo%d" % i)
        try:
            ws.read_until_output("EARLY-OUTPUT", 1.5)
        except ProtocolError:
            lost.append((i, [m for m in ws.log[:3]]))
        ws.close_shell()
        ws.read_to_end(4)
    if lost:
        def check(path, header, events, _s=s):
            outp = "".join(e[2] for e in events if e[1] == "o")
            return ([] if "EARLY-OUTPUT" in outp else ["EARLY-OUTPUT not recorded either"]), "the lost output is in the (serve) recording"
        ctx.expect_content(h.upstream or h, s, "fo%d" % lost[0][0], check)
        raise Fail("a new shell's first output (printf at start) never reached the client in %d of %d shells; e.g. shell fo%d got %r"
                   % (len(lost), N, lost[0][0], lost[0][1]))
    return "first output delivered in %d of %d new shells" % (N, N)


@scenario("break_glass_header_400")
def s_break_glass(ctx):
    # §1/§8.7: X-Termtrail-Break-Glass once, 1-1,024 bytes after trimming, no control characters; else 400 BadRequest
    s = ctx.sid()
    probs = []
    for label, hdrs in (("blank", [("X-Termtrail-Break-Glass", "   ")]),
                        ("1,025 bytes", [("X-Termtrail-Break-Glass", "r" * 1025)]),
                        ("control character (TAB)", [("X-Termtrail-Break-Glass", "a\tb")]),
                        ("given twice", [("X-Termtrail-Break-Glass", "one"), ("X-Termtrail-Break-Glass", "two")])):
        ws, ans = ctx.connect(session=s, shell="bg", extra_headers=hdrs)
        if ws:
            probs.append("%s: 101" % label)
            ws.recv_app(2)
            ready(ws)
            ws.close_shell()
            ws.read_to_end(5)
            continue
        if ans.status != 400:
            probs.append("%s: HTTP %d %r" % (label, ans.status, ans.body[:200]))
            continue
        p = refusal_ok(json.loads(ans.body.decode() or "{}"), "BadRequest", 400)
        if p:
            probs.append("%s: body %r: %s" % (label, ans.body[:200], ", ".join(p)))
    ws, ans = ctx.connect(session=s, shell="bg2", extra_headers=[("X-Termtrail-Break-Glass", "  " + "r" * 1024 + "  ")])
    if not ws:
        probs.append("a valid 1,024-byte reason (padded) refused: %r" % ans)
    else:
        ws.recv_app(2)
        ready(ws)
        ws.close_shell()
        ws.read_to_end(5)
    if probs:
        raise Fail("; ".join(probs))
    return "malformed break-glass headers -> 400 BadRequest; a valid one accepted"


# ---- §2 messages

@scenario("stdin_resize")
def s_stdin_resize(ctx):
    s = ctx.sid()
    ws, _, _ = ctx.open(session=s, shell="sz")
    ready(ws)
    got = []
    for w, h in ((None, None), (100, 40), (1, 1), (65535, 65535), (132, 50)):
        if w:
            ws.resize(w, h)
        n = len(got)
        ws.stdin("echo SZ$((%d+1)) $(stty size) ZS\r" % n)
        out, _ = ws.read_until_output("SZ%d" % (n + 1), 5)
        out2, _ = ws.read_until_output("ZS\r\n", 5) if b"ZS\r\n" not in out.split(b"SZ%d" % (n + 1), 1)[1] else (b"", [])
        line = (out + out2).split(b"SZ%d" % (n + 1), 1)[1].split(b"ZS", 1)[0].strip().decode(errors="replace")
        got.append(line)
    want = ["24 80", "40 100", "1 1", "65535 65535", "50 132"]
    ws.close_shell()
    ws.read_to_end(5)
    if got != want:
        raise Fail("stty size gave %r, want %r (default 80x24, then RESIZE)" % (got, want))
    return "stty size %s" % got


@scenario("heartbeat")
def s_heartbeat(ctx):
    s = ctx.sid()
    ws, _, _ = ctx.open(session=s, shell="hb")
    ready(ws)
    for _ in range(3):
        ws.heartbeat()
    got = []
    deadline = time.monotonic() + 3
    while len(got) < 3 and time.monotonic() < deadline:
        m = ws.recv_app(deadline - time.monotonic())
        if m.kind == "binary" and m.channel == HEARTBEAT:
            got.append(m.data)
        elif m.kind == "binary" and m.channel == STDOUT:
            continue
        elif m.kind != "timeout":
            raise Fail("unexpected %r" % m)
    if got != [b"\x05"] * 3:
        raise Fail("3 HEARTBEATs sent, answers %r" % got)
    ws.ping(b"conf-ping")
    deadline = time.monotonic() + 3
    pong = None
    while time.monotonic() < deadline:
        m = ws.recv(deadline - time.monotonic())
        if m.kind == "pong":
            pong = m
            break
    ws.close_shell()
    ws.read_to_end(5)
    if pong is None or pong.data != b"conf-ping":
        raise Fail("WebSocket ping not answered with its payload: %r" % pong)
    return "3 empty HEARTBEATs answered; ping answered"


@scenario("unknown_channel_ignored")
def s_unknown(ctx):
    s = ctx.sid()
    ws, _, _ = ctx.open(session=s, shell="unk")
    ready(ws)
    for ch in (0x06, 0x07, 0x10, 0x7F, 0xFE):
        ws.send(ch, b"extension data")
    ws.send(0x06)
    ws.send(0x10, b"x" * (MAX_MESSAGE - 1))   # exactly 65,536 bytes with the channel byte: allowed
    ready(ws, "U")
    ws.heartbeat()
    deadline = time.monotonic() + 3
    ok = False
    while time.monotonic() < deadline and not ok:
        m = ws.recv_app(deadline - time.monotonic())
        if m.kind == "binary" and m.channel == HEARTBEAT:
            ok = True
        elif m.kind in ("close", "eof", "reset"):
            raise Fail("connection ended: %r" % m)
    ws.close_shell()
    ws.read_to_end(5)
    if not ok:
        raise Fail("no HEARTBEAT answer after unknown channels")
    return "channels 0x06 0x07 0x10 0x7F 0xFE (and a 65,536-byte message) ignored"


# ---- §3 sequence: exits

def _exit_case(ctx, cmd, code, sig, end, text, shell):
    s = ctx.sid()
    ws, _, _ = ctx.open(session=s, shell=shell)
    ready(ws)
    ws.stdin(cmd + "\r")
    last = expect_exit(ws, exit_status(code, sig))
    ctx.expect_recording(ctx.main, s, shell, end, text)
    return s, last


@scenario("exit_status_0")
def s_exit0(ctx):
    s, last = _exit_case(ctx, "exit 0", 0, None, {"reason": "exited", "code": 0}, "exited with code 0", "ex0")
    # reconnecting to a shell that has exited starts a new one
    ws, _, _ = ctx.open(session=s, shell="ex0", reconnected=False)
    ready(ws)
    ws.close_shell()
    ws.read_to_end(5)
    return "exit status then Close 1000 %r; reconnect starts a new shell" % last.reason


@scenario("exit_status_N")
def s_exitN(ctx):
    _, last = _exit_case(ctx, "exit 42", 42, None, {"reason": "exited", "code": 42}, "exited with code 42", "ex42")
    return "NonZeroExitCode 42, Close 1000 %r" % last.reason


@scenario("exit_status_signal")
def s_exit_sig(ctx):
    _, last = _exit_case(ctx, "kill -KILL $$", 137, 9, {"reason": "exited", "code": 137}, "exited with code 137", "exsig")
    return "137 with causes ExitCode 137, Signal 9"


@scenario("close_channel")
def s_close(ctx):
    s = ctx.sid()
    ws, _, _ = ctx.open(session=s, shell="cl")
    ready(ws)
    ws.close_shell()
    t = time.monotonic()
    expect_exit(ws, exit_status(129, 1))
    ctx.expect_recording(ctx.main, s, "cl", {"reason": "closed"}, "closed")
    return "CLOSE -> exit status 129 (Signal 1) in %.2fs, Close 1000" % (time.monotonic() - t)


# ---- re-attach

@scenario("reattach_replay")
def s_reattach(ctx):
    s = ctx.sid()
    ws, _, _ = ctx.open(session=s, shell="ra")
    ready(ws)
    ws.stdin("sleep 1; echo DETACHED-$((6*7))\r")
    ws.read_until_output("DETACHED-$((6*7))", 5)
    time.sleep(0.2)
    ws.abort()
    time.sleep(1.8)
    ws2, _, _ = ctx.open(session=s, shell="ra", reconnected=True)
    replay, dropped, n = read_replay(ws2, "ra")
    if b"DETACHED-42" not in replay:
        raise Fail("replay %r lacks the output produced while detached" % replay[-300:])
    if dropped != 0:
        raise Fail("bytesDropped %d for a small replay" % dropped)
    ready(ws2)
    ws2.close_shell()
    ws2.read_to_end(5)
    return "confirmation(reconnected) + %d bytes replay in %d msgs + confirmation(bytesDropped 0)" % (len(replay), n)


@scenario("reattach_bytes_dropped", budget=15)
def s_dropped(ctx):
    s = ctx.sid()
    ws, _, _ = ctx.open(session=s, shell="rd")
    ready(ws)
    total = 400000
    ws.stdin("sleep 1; head -c %d /dev/zero | tr '\\0' a; echo; echo END-$((2*3))\r" % total)
    ws.read_until_output("END-$((2*3))", 5)
    time.sleep(0.2)
    ws.abort()
    time.sleep(3.5)
    ws2, _, _ = ctx.open(session=s, shell="rd", reconnected=True)
    replay, dropped, n = read_replay(ws2, "rd")
    probs = []
    if len(replay) > REPLAY_MAX:
        probs.append("replay %d bytes > 256 KiB" % len(replay))
    if dropped <= 0:
        probs.append("bytesDropped %d, want > 0" % dropped)
    if b"END-6" not in replay:
        probs.append("replay lacks the last output (END-6): %r" % replay[-200:])
    if len(replay) + dropped < total:
        probs.append("replay %d + dropped %d < %d bytes produced" % (len(replay), dropped, total))
    if ws2.max_message > MAX_MESSAGE:
        probs.append("a message of %d bytes > 65,536" % ws2.max_message)
    ws2.close_shell()
    ws2.read_to_end(5)
    if probs:
        raise Fail("; ".join(probs))
    return "replay %d bytes in %d msgs (max msg %d), bytesDropped %d" % (len(replay), n, ws2.max_message, dropped)


@scenario("takeover_4000")
def s_takeover(ctx):
    s = ctx.sid()
    a, _, _ = ctx.open(session=s, shell="tk")
    ready(a)
    b, _, _ = ctx.open(session=s, shell="tk", reconnected=True)
    m = a.read_to_end(5)
    last = m[-1]
    probs = []
    statuses = [x for x in m if x.kind == "binary" and x.channel == STATUS]
    if statuses:
        probs.append("first client got a STATUS before 4000: %r" % statuses)
    if last.kind != "close" or last.code != 4000:
        probs.append("first client ended with %r, want Close 4000" % last)
    else:
        probs += reason_problems(last)
    replay, dropped, _ = read_replay(b, "tk")
    ready(b)
    b.close_shell()
    b.read_to_end(5)
    if probs:
        raise Fail("; ".join(probs))
    return "first client: Close 4000 %r; second: reconnected, bytesDropped %d" % (last.reason, dropped)


@scenario("client_close_frame_answered")
def s_close_frame(ctx):
    s = ctx.sid()
    ws, _, _ = ctx.open(session=s, shell="cf")
    ready(ws)
    ws.send_close(1000, b"bye")
    deadline = time.monotonic() + 3
    got = None
    while time.monotonic() < deadline:
        m = ws.recv_app(deadline - time.monotonic())
        if m.kind in ("close", "eof", "reset", "timeout"):
            got = m
            break
    ws.abort()
    ws2, _, _ = ctx.open(session=s, shell="cf", reconnected=True)
    read_replay(ws2, "cf")
    ws2.close_shell()
    ws2.read_to_end(5)
    if got is None or got.kind != "close":
        raise Fail("client sent Close(1000, 'bye'); host answered %r, want a Close frame (RFC 6455 5.5.1)" % got)
    return "Close answered with Close(%r, %r); shell kept (re-attach reconnected)" % (got.code, got.reason)


# ---- §5 violations

VIOLATIONS = [
    ("text message", lambda ws: ws.send_text("hello"), 1003),
    ("empty binary", lambda ws: ws.send_frame(OP_BIN, b""), 1008),
    ("RESIZE not JSON", lambda ws: ws.send(RESIZE, b"nope"), 1008),
    ("RESIZE width 0", lambda ws: ws.send(RESIZE, b'{"width": 0, "height": 24}'), 1008),
    ("RESIZE width 65536", lambda ws: ws.send(RESIZE, b'{"width": 65536, "height": 24}'), 1008),
    ("RESIZE height -1", lambda ws: ws.send(RESIZE, b'{"width": 80, "height": -1}'), 1008),
    ("RESIZE no height", lambda ws: ws.send(RESIZE, b'{"width": 80}'), 1008),
    ("RESIZE long junk", lambda ws: ws.send(RESIZE, ('{"width": "' + "\u00e9" * 300 + '"}').encode()), 1008),
    ("RESIZE empty", lambda ws: ws.send(RESIZE, b""), 1008),
    ("client on STDOUT", lambda ws: ws.send(STDOUT, b"x"), 1008),
    ("client on STDERR", lambda ws: ws.send(STDERR, b"x"), 1008),
    ("client on STATUS", lambda ws: ws.send(STATUS, b"{}"), 1008),
    ("65,537-byte message", lambda ws: ws.send(0x10, b"y" * MAX_MESSAGE), 1009),
    ("65,537 bytes in fragments", lambda ws: (ws.send_frame(OP_BIN, b"\x10" + b"z" * 40000, fin=False),
                                              ws.send_frame(OP_CONT, b"z" * 25536, fin=True)), 1009),
    ("unmasked frame", lambda ws: ws.send_frame(OP_BIN, b"\x05", mask=False), 1002),
    ("RSV bit set", lambda ws: ws.send_frame(OP_BIN, b"\x05", rsv=4), 1002),
    ("reserved opcode 3", lambda ws: ws.send_frame(0x3, b"\x05"), 1002),
    ("continuation without start", lambda ws: ws.send_frame(OP_CONT, b"\x05"), 1002),
    ("fragmented ping", lambda ws: ws.send_frame(OP_PING, b"p", fin=False), 1002),
    ("126-byte ping", lambda ws: ws.send_frame(OP_PING, b"p" * 126), 1002),
]


@scenario("protocol_violations", budget=40)
def s_violations(ctx):
    s = ctx.sid()
    other, _, _ = ctx.open(session=s, shell="bystander")
    ready(other)
    before = metric(ctx.main, "termtrail_protocol_errors_total")
    ws, _, _ = ctx.open(session=s, shell="vio")
    ready(ws)
    probs, seen = [], []
    for label, act, code in VIOLATIONS:
        try:
            act(ws)
        except OSError as e:
            probs.append("%s: send failed %s" % (label, e))
        msgs = ws.read_to_end(4)
        last = msgs[-1]
        junk = [m for m in msgs[:-1] if not (m.kind == "binary" and m.channel in (STDOUT, HEARTBEAT))]
        if last.kind != "close" or last.code != code:
            probs.append("%s: got %r, want Close %d" % (label, last, code))
        else:
            rp = reason_problems(last)
            if not last.reason:
                rp.append("empty reason")
            if rp:
                probs.append("%s: %s (%r)" % (label, ", ".join(rp), last.reason))
            seen.append("%s->%d" % (label, code))
        if junk:
            probs.append("%s: also got %r" % (label, junk))
        ws.abort()
        # the shell carries on
        ws, _, _ = ctx.open(session=s, shell="vio", reconnected=True)
        read_replay(ws, "vio")
    ready(ws)
    ready(other, "O")
    after = metric(ctx.main, "termtrail_protocol_errors_total")
    if before is None or after is None:
        probs.append("termtrail_protocol_errors_total missing from /metrics")
    elif after - before != len(VIOLATIONS):
        probs.append("termtrail_protocol_errors_total rose by %g for %d violations" % (after - before, len(VIOLATIONS)))
    ws.close_shell()
    ws.read_to_end(5)
    other.close_shell()
    other.read_to_end(5)
    if probs:
        raise Fail("; ".join(probs))
    return "%d violations closed with the right code and a reason <= 123 bytes; shell and other connection carried on; counted" % len(seen)


# ---- limits

@scenario("max_shells_429", budget=15)
def s_max(ctx):
    h = ctx.spawn(["--max-shells", "2"], ["--max-shells", "2"])
    s = ctx.sid()
    a, _, _ = ctx.open(h, s, "m1")
    b, _, _ = ctx.open(h, s, "m2")
    ready(a)
    ready(b)
    live = metric(h, "termtrail_live_shells")
    refused = metric(h, "termtrail_shells_refused_total")
    ws, ans = ctx.connect(h, s, "m3")
    probs = []
    if live != 2:
        probs.append("termtrail_live_shells %s with 2 shells" % live)
    refused2 = metric(h, "termtrail_shells_refused_total")
    if refused is None or refused2 is None or refused2 - refused != 1:
        probs.append("termtrail_shells_refused_total %s -> %s after a 429" % (refused, refused2))
    if ws:
        probs.append("third shell accepted (101) with --max-shells 2")
    elif ans.status != 429:
        probs.append("third shell: %r, want 429" % ans)
    else:
        p = refusal_ok(ans.json(), "TooManyShells", 429)
        if p:
            probs.append("429 body %r: %s" % (ans.body, ", ".join(p)))
    # re-attach is never refused by the limit
    a2, ans2 = ctx.connect(h, s, "m1")
    if not a2:
        probs.append("re-attach at the limit refused: %r" % ans2)
    # the slot is free as soon as the exit status was sent
    b.stdin("exit 0\r")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = b.recv_app(deadline - time.monotonic())
        if m.kind == "binary" and m.channel == STATUS:
            break
        if m.kind in ("close", "eof", "reset", "timeout"):
            probs.append("no exit status: %r" % m)
            break
    c, ans3 = ctx.connect(h, s, "m4")
    if not c:
        later = "never"
        for i in range(20):
            time.sleep(0.1)
            c, _ = ctx.connect(h, s, "m4")
            if c:
                later = "%.1fs later" % ((i + 1) * 0.1)
                break
        probs.append("new shell right after the exit status was received: %r (accepted %s)" % (ans3, later))
    if probs:
        raise Fail("; ".join(probs))
    return "429 TooManyShells %s; re-attach allowed; slot free right after the exit status" % ans.body.decode()


@scenario("idle_timeout", budget=15)
def s_idle(ctx):
    h = ctx.spawn(["--idle-timeout", "3s"], ["--idle-timeout", "3s"])
    s = ctx.sid()
    ws, _, _ = ctx.open(h, s, "idle")
    ready(ws)
    t0 = time.monotonic()
    msgs, notice_at = [], None
    deadline = t0 + 10
    next_hb = t0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_hb:
            ws.heartbeat()    # heartbeats and pings do not count as traffic
            ws.ping(b"i")
            next_hb += 0.5
        m = ws.recv_app(min(0.5, max(0.01, deadline - time.monotonic())))
        if m.kind == "timeout" or (m.kind == "binary" and m.channel == HEARTBEAT):
            continue
        msgs.append(m)
        if m.kind == "binary" and m.channel == STATUS and notice_at is None:
            notice_at = time.monotonic() - t0
        if m.kind in ("close", "eof", "reset"):
            break
    st = [m for m in msgs if m.kind == "binary" and m.channel == STATUS]
    probs = []
    if len(st) != 2:
        probs.append("statuses %r, want notice then exit status" % [m.payload for m in st])
    else:
        n = st[0].status()
        p = refusal_ok(n, "IdleTimeout", 408)
        if not re.fullmatch(r"no traffic for .+: the host ended the shell \(idle timeout\)", str(n.get("message"))):
            p.append("message %r" % n.get("message"))
        if p:
            probs.append("notice %s: %s" % (st[0].payload, ", ".join(p)))
        if st[1].status() != exit_status(129, 1):
            probs.append("exit status %s, want 129 (SIGHUP)" % st[1].payload)
    last = msgs[-1] if msgs else None
    if not last or last.kind != "close" or last.code != 1000:
        probs.append("ended with %r, want Close 1000" % last)
    if notice_at is not None and not (2.5 <= notice_at <= 6):
        probs.append("notice after %.1fs of heartbeats only, want ~3s" % notice_at)
    ctx.expect_recording(h, s, "idle", {"reason": "idle_timeout"}, "idle timeout")
    if probs:
        raise Fail("; ".join(probs))
    return "notice after %.1fs (heartbeats/pings ignored) %s, exit 129, Close 1000" % (notice_at, st[0].payload.decode())


@scenario("grace", budget=15)
def s_grace(ctx):
    h = ctx.spawn(["--grace", "2s"], ["--grace", "2s"])
    s = ctx.sid()
    ws, _, _ = ctx.open(h, s, "gr")
    ready(ws)
    ws.abort()
    time.sleep(1.0)
    ws, _, _ = ctx.open(h, s, "gr", reconnected=True)   # within grace: same shell
    read_replay(ws, "gr")
    ready(ws)
    ws.abort()
    time.sleep(3.5)
    ws, _, _ = ctx.open(h, s, "gr", reconnected=False)  # after grace: a new shell
    ready(ws)
    ws.close_shell()
    ws.read_to_end(5)
    ctx.expect_recording(h, s, "gr", {"reason": "closed"}, "closed", index=0)
    return "re-attach within --grace 2s; a new shell after it"


@scenario("slow_client_1008", budget=40)
def s_slow(ctx):
    s = ctx.sid()
    other, _, _ = ctx.open(session=s, shell="fast")
    ready(other)
    ws, _, _ = ctx.open(session=s, shell="slow", rcvbuf=4096)
    ready(ws)
    ws.stdin("head -c 16000000 /dev/zero; echo SLOW-$((5*5))\r")
    t0 = time.monotonic()
    lat = []
    i = 0
    closed_at = None
    while time.monotonic() - t0 < 13 or (closed_at is None and time.monotonic() - t0 < 17):
        t = time.monotonic()                 # the slow client reads nothing meanwhile
        ready(other, "F%d" % i, timeout=8)
        lat.append(round(time.monotonic() - t, 2))
        i += 1
        for _ in range(3):
            time.sleep(0.25)
            if closed_at is None and ws.host_side_state() != "01":
                closed_at = time.monotonic() - t0
    worst = max(lat)
    msgs = ws.read_to_end(15)
    last = msgs[-1]
    probs = []
    if last.kind != "close" or last.code != 1008:
        probs.append("slow client ended with %r after %d messages (host side of the TCP connection closed at %s s), want Close 1008" % (last, len(msgs), closed_at and round(closed_at, 1)))
    else:
        probs += reason_problems(last)
    if worst > 2:
        probs.append("another shell's round trips meanwhile (s): %s" % lat)
    if closed_at is None:
        probs.append("the host had not closed the TCP connection 17 s after the client stopped reading")
    elif closed_at < 9.5:
        probs.append("the host closed the connection %.1fs after the client stopped reading (< 10 s)" % closed_at)
    ws.abort()
    time.sleep(1.0)
    ws2, _, _ = ctx.open(session=s, shell="slow", reconnected=True)
    replay, dropped, _ = read_replay(ws2, "slow", timeout=10)
    if b"SLOW-25" not in replay:
        probs.append("output not kept for the re-attach (no SLOW-25 in %d bytes replayed)" % len(replay))
    ws2.close_shell()
    ws2.read_to_end(5)
    other.close_shell()
    other.read_to_end(5)
    if probs:
        raise Fail("; ".join(probs))
    return "Close 1008 %r (TCP closed at %.1fs); other shell's worst round trip %.2fs; output kept (bytesDropped %d)" % (last.reason, closed_at, worst, dropped)


@scenario("host_sigterm_1001", budget=15)
def s_sigterm(ctx):
    h = ctx.spawn()
    s = ctx.sid()
    ws, _, _ = ctx.open(h, s, "term")
    ready(ws)
    h.proc.send_signal(signal.SIGTERM)
    msgs = ws.read_to_end(8)
    last = msgs[-1]
    probs = []
    st = [m for m in msgs if m.kind == "binary" and m.channel == STATUS]
    if st:
        probs.append("got STATUS %r before the close ('nothing more')" % [m.payload for m in st])
    if last.kind != "close" or last.code != 1001:
        probs.append("ended with %r, want Close 1001" % last)
    else:
        probs += reason_problems(last)
    try:
        rc = h.proc.wait(timeout=8)
    except subprocess.TimeoutExpired:
        rc = None
        probs.append("host still running 8 s after SIGTERM")
    if ctx.kind == "serve":
        ctx.expect_recording(h, s, "term", {"reason": "interrupted", "detail": "shell host shut down"},
                             "interrupted (shell host shut down)")
    else:
        ctx.expect_recording(h, s, "term", ("interrupted", "proxy shut down; the upstream shell was left running"),
                             "interrupted (proxy shut down; the upstream shell was left running")
    if probs:
        raise Fail("; ".join(probs))
    return "Close 1001 %r; host exited %s" % (last.reason, rc)


# ---- proxy-only

class Forwarder:
    """A TCP forwarder between the proxy and its upstream that can be cut."""

    def __init__(self, target_port):
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((LOCAL, 0))
        self.port = self.lsock.getsockname()[1]
        self.lsock.listen(16)
        self.conns = []
        self.open = True
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if not self.open:
                c.close()
                continue
            try:
                u = socket.create_connection((LOCAL, self.target), timeout=3)
            except OSError:
                c.close()
                continue
            self.conns += [c, u]
            for x, y in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    def _pump(self, x, y):
        try:
            while True:
                d = x.recv(65536)
                if not d:
                    break
                y.sendall(d)
        except OSError:
            pass
        for z in (x, y):
            try:
                z.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Refuse new connections (accept then close) and drop the open ones."""
        self.open = False
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self.conns = []

    def restore(self):
        self.open = True

    def stop(self):
        self.stopped = True
        self.cut()
        self.lsock.close()


@scenario("proxy_restart_reattach", kinds=("proxy",), budget=25)
def s_proxy_restart(ctx):
    up = start_serve(["--max-shells", "100"])
    p1 = start_proxy(up.port, upstream=None)
    ctx.hosts += [up]
    s = ctx.sid()
    ws, _, _ = ctx.open(p1, s, "pr")
    ready(ws)
    ws.stdin("sleep 1.5; echo BACK-$((3*3))\r")
    ws.read_until_output("BACK-$((3*3))", 5)
    p1.proc.send_signal(signal.SIGTERM)
    msgs = ws.read_to_end(8)
    probs = []
    if msgs[-1].kind != "close" or msgs[-1].code != 1001:
        probs.append("proxy SIGTERM: client got %r, want Close 1001" % msgs[-1])
    try:
        p1.proc.wait(timeout=8)
    except subprocess.TimeoutExpired:
        probs.append("proxy still running 8 s after SIGTERM")
        p1.stop(signal.SIGKILL)
    ctx.expect_recording(p1, s, "pr", ("interrupted", "proxy shut down; the upstream shell was left running"),
                         "interrupted (proxy shut down; the upstream shell was left running", index=0)
    time.sleep(1.5)
    p2 = start_proxy(up.port, port=p1.port, store=p1.store, verify_store=False)
    ctx.hosts.append(p2)
    ws2, _, _ = ctx.open(p2, s, "pr", reconnected=True)
    replay, dropped, _ = read_replay(ws2, "pr")
    if b"BACK-9" not in replay:
        probs.append("replay through the new proxy lacks BACK-9: %r" % replay[-300:])
    if dropped != 0:
        probs.append("bytesDropped %d" % dropped)
    ready(ws2)
    ws2.close_shell()
    expect_exit(ws2, exit_status(129, 1))
    ctx.expect_recording(p2, s, "pr", {"reason": "closed"}, "closed", index=1)
    if probs:
        raise Fail("; ".join(probs))
    return "1001 on proxy SIGTERM; new proxy: reconnected, %d bytes replay with BACK-9, bytesDropped 0" % len(replay)


@scenario("proxy_upstream_unreachable_1013", kinds=("proxy",), budget=35)
def s_unreachable(ctx):
    up = start_serve(["--max-shells", "100"])
    ctx.hosts.append(up)
    fw = Forwarder(up.port)
    try:
        p = start_proxy(fw.port)
        ctx.hosts.append(p)
        s = ctx.sid()
        ws, _, _ = ctx.open(p, s, "un")
        ready(ws)
        ws.stdin("sleep 2; echo STILL-$((4*4))\r")
        ws.read_until_output("STILL-$((4*4))", 5)
        fw.cut()
        t0 = time.monotonic()
        msgs = ws.read_to_end(20)
        dt = time.monotonic() - t0
        probs = []
        st = [m for m in msgs if m.kind == "binary" and m.channel == STATUS]
        if st:
            probs.append("STATUS sent to the client: %r (MUST NOT send an exit status)" % [m.payload for m in st])
        last = msgs[-1]
        if last.kind != "close" or last.code != 1013:
            probs.append("client ended with %r after %.1fs, want Close 1013" % (last, dt))
        else:
            probs += reason_problems(last)
        ctx.expect_recording(p, s, "un", ("interrupted", "upstream unreachable after"),
                             "interrupted (upstream unreachable after", index=0)
        # a new shell while the upstream is unreachable: 502, nothing recorded
        w3, a3 = ctx.connect(p, s, "un2", timeout=15)
        if w3 or a3.status != 502:
            probs.append("new shell with the upstream unreachable: %r, want 502" % (a3 if not w3 else "101"))
        if __import__("glob").glob(os.path.join(p.store, "*", "*", "*", "proxy", s, "un2")):
            probs.append("a recording directory exists for the 502 shell")
        # the upstream shell still runs: the next connect finds it (reconnected, replay)
        fw.restore()
        time.sleep(0.5)
        ws2, _, _ = ctx.open(p, s, "un", reconnected=True)
        replay, dropped, _ = read_replay(ws2, "un", timeout=12)
        if b"STILL-16" not in replay:
            probs.append("re-attach after 1013: replay lacks STILL-16: %r" % replay[-300:])
        ready(ws2)
        ws2.close_shell()
        expect_exit(ws2, exit_status(129, 1))
        if probs:
            raise Fail("; ".join(probs))
        return "Close 1013 %r after %.1fs, no STATUS; later connect re-attached (reconnected, replay)" % (last.reason, dt)
    finally:
        fw.stop()


@scenario("proxy_upstream_takeover", kinds=("proxy",), budget=12)
def s_proxy_up_takeover(ctx):
    # §3 Endings: another client took the upstream shell over directly -> exit status 255, 1000
    s = ctx.sid()
    ws, _, _ = ctx.open(session=s, shell="ut")
    ready(ws)
    d, _, _ = ctx.open(ctx.main.upstream, s, "ut", reconnected=True)
    read_replay(d, "ut")
    expect_exit(ws, exit_status(255))
    ctx.expect_recording(ctx.main, s, "ut", ("interrupted", "another client attached to the upstream shell directly"),
                         "interrupted (another client attached to the upstream shell directly")
    ready(d)
    d.close_shell()
    d.read_to_end(5)
    return "proxy client got exit status 255 and Close 1000"


@scenario("proxy_upstream_refusal", kinds=("proxy",), budget=15)
def s_proxy_refusal(ctx):
    up = start_serve(["--max-shells", "1"])
    ctx.hosts.append(up)
    p = start_proxy(up.port)
    ctx.hosts.append(p)
    s = ctx.sid()
    ws, _, _ = ctx.open(p, s, "r1")
    ready(ws)
    before = metric(p, "termtrail_shells_refused_total")
    probs = []
    w2, ans = ctx.connect(p, s, "r2")
    direct = http_request(LOCAL, up.port, "GET", "/healthz")  # noqa: F841 (upstream alive)
    if w2:
        probs.append("second shell accepted through the proxy with the upstream at --max-shells 1")
    elif ans.status != 429:
        probs.append("upstream 429 passed as %r" % ans)
    else:
        pr = refusal_ok(ans.json(), "TooManyShells", 429)
        if pr:
            probs.append("429 body %r: %s" % (ans.body, ", ".join(pr)))
    after = metric(p, "termtrail_shells_refused_total")
    if before is None or after is None or after - before != 1:
        probs.append("termtrail_shells_refused_total %s -> %s, want +1" % (before, after))
    if __import__("glob").glob(os.path.join(p.store, "*", "*", "*", "proxy", s, "r2")):
        probs.append("a recording directory exists for the refused shell")
    ws.close_shell()
    ws.read_to_end(5)
    if probs:
        raise Fail("; ".join(probs))
    return "upstream 429 passed with the host's body %s; counted; nothing recorded" % ans.body.decode()


@scenario("close_channel_sigkill", budget=12)
def s_close_kill(ctx):
    # CLOSE: SIGHUP to the process group, SIGKILL 2 s later; the exit status follows
    s = ctx.sid()
    ws, _, _ = ctx.open(session=s, shell="ck")
    ready(ws)
    ws.stdin("trap '' HUP; echo TRAP-$((8*8))\r")
    ws.read_until_output("TRAP-64", 5)
    ws.close_shell()
    t = time.monotonic()
    expect_exit(ws, exit_status(137, 9), timeout=8)
    dt = time.monotonic() - t
    ctx.expect_recording(ctx.main, s, "ck", {"reason": "closed"}, "closed")
    if not (1.5 <= dt <= 4.0):
        raise Fail("exit status %.2fs after CLOSE for a shell ignoring SIGHUP, want ~2 s (SIGKILL 2 s later)" % dt)
    return "shell ignoring SIGHUP: exit 137 (Signal 9) %.2fs after CLOSE" % dt


@scenario("pair_identity")
def s_pair(ctx):
    # a shell is identified by (session id, shell id)
    s1, s2 = ctx.sid("a"), ctx.sid("b")
    a, _, _ = ctx.open(session=s1, shell="same")
    b, _, _ = ctx.open(session=s2, shell="same")     # another session: a new shell, no takeover
    a.stdin("echo PID-$$-D\"\"IP\r")
    oa, _ = a.read_until_output("-DIP\r\n", 5)
    b.stdin("echo PID-$$-D\"\"IP\r")
    ob, _ = b.read_until_output("-DIP\r\n", 5)
    pa = re.findall(rb"PID-(\d+)-DIP", oa)
    pb = re.findall(rb"PID-(\d+)-DIP", ob)
    m = a.recv_app(0.3)
    for w in (a, b):
        w.close_shell()
        w.read_to_end(5)
    if m.kind == "close":
        raise Fail("first connection closed when another session used the same shell id: %r" % m)
    if not pa or not pb or pa[-1] == pb[-1]:
        raise Fail("same shell id in two sessions gave pids %r and %r" % (pa, pb))
    return "same shell id in two sessions: two shells (pids %s, %s)" % (pa[-1].decode(), pb[-1].decode())


@scenario("host_sigint_1001", kinds=("serve",), budget=12)
def s_sigint(ctx):
    h = ctx.spawn()
    s = ctx.sid()
    ws, _, _ = ctx.open(h, s, "int")
    ready(ws)
    h.proc.send_signal(signal.SIGINT)
    msgs = ws.read_to_end(8)
    last = msgs[-1]
    st = [m for m in msgs if m.kind == "binary" and m.channel == STATUS]
    ctx.expect_recording(h, s, "int", {"reason": "interrupted", "detail": "shell host shut down"},
                         "interrupted (shell host shut down)")
    if st or last.kind != "close" or last.code != 1001:
        raise Fail("SIGINT: statuses %r, ended %r; want nothing then Close 1001" % ([m.payload for m in st], last))
    return "Close 1001 %r" % last.reason


# ---- recording contents (§6, docs/format.md, docs/recording.md)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@scenario("recording_contents", budget=15)
def s_rec_contents(ctx):
    s = ctx.sid()
    a, ans, _ = ctx.open(session=s, shell="rc")
    ready(a)
    a.resize(100, 40)
    a.stdin("echo IN-$((1+2))\r")
    a.read_until_output("IN-3", 5)
    a.stdin("read -s -p 'Password: ' PW; echo; echo GOT-${#PW}\r")
    a.read_until_output("Password: ", 5)
    time.sleep(0.3)
    a.stdin("hunter2\r")
    a.read_until_output("GOT-7", 5)
    a.stdin("echo AWS_SECRET_ACCESS_KEY=%s\r" % SECRET)
    out, _ = a.read_until_output("=" + SECRET + "\r\n", 5)     # the client sees it unchanged
    a.abort()                                                 # detach
    time.sleep(0.3)
    b, _, _ = ctx.open(session=s, shell="rc", reconnected=True)   # re-attach
    read_replay(b, "rc")
    c, _, _ = ctx.open(session=s, shell="rc", reconnected=True)   # takeover
    b.read_to_end(3)
    read_replay(c, "rc")
    ready(c)
    c.stdin("exit 3\r")
    expect_exit(c, exit_status(3))
    kind = ctx.kind
    port = ctx.main.port

    def check(path, header, events):
        probs = []
        tt = header.get("termtrail", {})
        for k, v in (("source", kind if kind == "proxy" else "serve"), ("session", s), ("shell", "rc"), ("auth", "none")):
            if tt.get(k) != v:
                probs.append("header termtrail.%s=%r want %r" % (k, tt.get(k), v))
        if tt.get("principal") != HOST_USER:
            probs.append("header principal %r, want the host's $USER %r (--no-auth)" % (tt.get("principal"), HOST_USER))
        if not re.fullmatch(r"127\.0\.0\.1:\d+", str(tt.get("source_addr"))):
            probs.append("source_addr %r" % tt.get("source_addr"))
        codes = [e[1] for e in events]
        inp = "".join(e[2] for e in events if e[1] == "i")
        outp = "".join(e[2] for e in events if e[1] == "o")
        marks = [e[2] for e in events if e[1] == "m"]
        if "100x40" not in [e[2] for e in events if e[1] == "r"]:
            probs.append("no r event 100x40 (r: %r)" % [e[2] for e in events if e[1] == "r"])
        if "echo IN-$((1+2))" not in inp:
            probs.append("typed input not recorded as i (i: %r)" % inp[:200])
        if "hunter2" in inp:
            probs.append("the password typed at 'Password: ' was recorded as input")
        want_mark = ("input withheld: password prompt (echo off)" if kind == "serve"
                     else 'input withheld: 8 bytes after a password prompt ("Password:")')
        if want_mark not in marks:
            probs.append("no marker %r (markers: %r)" % (want_mark, marks))
        if SECRET in outp:
            probs.append("the AWS secret key is in the recorded output")
        if "[REDACTED:aws-secret-key]" not in outp:
            probs.append("no [REDACTED:aws-secret-key] in the recorded output")
        if "redacted: aws-secret-key" not in marks:
            probs.append("no marker 'redacted: aws-secret-key'")
        if [e[2] for e in events if e[1] == "x"] != ["3"]:
            probs.append("x events %r, want ['3']" % [e[2] for e in events if e[1] == "x"])
        other = [m for m in marks if not m.startswith(("input withheld", "redacted:"))]
        if len(other) < 4:
            probs.append("%d attach/detach/re-attach/takeover markers, want >= 4: %r" % (len(other), other))
        return probs, "%d events, markers %r" % (len(codes), other)

    ctx.expect_content(ctx.main, s, "rc", check)
    return "recorded; contents checked after the run"


# ---- one-shot commands (§9)

def _cmd_lines(lines):
    return [o for _, o in lines]


@scenario("command_basic", budget=15)
def s_cmd(ctx):
    s = ctx.sid()
    probs = []
    ans, lines = command(LOCAL, ctx.main.port, s, {"command": "echo out-$((1+1)); echo err >&2; exit 3"})
    objs = _cmd_lines(lines)
    if ans.status != 200:
        raise Fail("HTTP %d %r" % (ans.status, ans.body[:300]))
    if (ans.header("content-type") or "").split(";")[0].strip() != "application/x-ndjson":
        probs.append("content-type %r" % ans.header("content-type"))
    if not objs or objs[0] != {"contentStart": {}}:
        probs.append("first line %r, want {\"contentStart\":{}}" % (objs[:1],))
    if not objs or objs[-1] != {"contentStop": {"exitCode": 3, "status": "COMPLETED"}}:
        probs.append("last line %r, want contentStop exitCode 3 COMPLETED" % (objs[-1:],))
    so = "".join(o["contentDelta"].get("stdout", "") for o in objs if "contentDelta" in o)
    se = "".join(o["contentDelta"].get("stderr", "") for o in objs if "contentDelta" in o)
    if so != "out-2\n" or se != "err\n":
        probs.append("stdout %r stderr %r" % (so, se))
    # stdin is empty; non-UTF-8 output is U+FFFD
    ans2, l2 = command(LOCAL, ctx.main.port, s, {"command": "cat; printf 'a\\377b\\n'"})
    o2 = _cmd_lines(l2)
    so2 = "".join(o["contentDelta"].get("stdout", "") for o in o2 if "contentDelta" in o)
    if ans2.status != 200 or so2 != "a\ufffdb\n" or o2[-1:] != [{"contentStop": {"exitCode": 0, "status": "COMPLETED"}}]:
        probs.append("cat (empty stdin) + non-UTF-8: HTTP %d %r" % (ans2.status, o2))
    dirs = __import__("glob").glob(os.path.join(ctx.main.store, "*", "*", "*", ctx.main.source, s, "cmd-*"))
    if len(dirs) != 2 or not all(re.fullmatch(r"cmd-[0-9a-f]{16}", os.path.basename(d)) for d in dirs):
        probs.append("recording dirs %r, want 2 cmd-<16 hex>" % [os.path.basename(d) for d in dirs])
    for d in dirs:
        ctx.expect_recording(ctx.main, s, os.path.basename(d), None, "exited with code")
    if probs:
        raise Fail("; ".join(probs))
    return "ndjson start/deltas/stop exit 3; empty stdin; U+FFFD; recorded as cmd-<16 hex>"


@scenario("command_streaming_timeout", budget=15)
def s_cmd_stream(ctx):
    s = ctx.sid()
    probs = []
    ans, lines = command(LOCAL, ctx.main.port, s, {"command": "echo first; sleep 2; echo second"})
    firsts = [t for t, o in lines if "contentDelta" in o and "first" in o["contentDelta"].get("stdout", "")]
    stop = [t for t, o in lines if "contentStop" in o]
    if ans.status != 200 or not firsts or not stop or firsts[0] > stop[0] - 1.0:
        probs.append("not streamed as output arrives: 'first' at %s s, contentStop at %s s (HTTP %d)" % (firsts, stop, ans.status))
    ans, lines = command(LOCAL, ctx.main.port, s, {"command": "sleep 30", "timeout": 1})
    objs = _cmd_lines(lines)
    t_stop = [t for t, o in lines if "contentStop" in o]
    if objs[-1:] != [{"contentStop": {"exitCode": 124, "status": "TIMED_OUT"}}] or not t_stop or t_stop[0] > 4:
        probs.append("timeout 1: %r at %s s, want contentStop 124 TIMED_OUT at ~1 s" % (objs[-1:], t_stop))
    if probs:
        raise Fail("; ".join(probs))
    return "first delta %.2fs before contentStop; timeout -> 124 TIMED_OUT after %.1fs" % (stop[0] - firsts[0], t_stop[0])


@scenario("command_400", budget=15)
def s_cmd_400(ctx):
    s = ctx.sid()
    probs, reasons = [], set()
    cases = [("no session id", None, {"command": "true"}, None),
             ("malformed body", s, None, b"{not json"),
             ("no command", s, {"timeout": 5}, None),
             ("empty command", s, {"command": ""}, None),
             ("65,537-char command", s, {"command": "#" * 65537}, None),
             ("timeout 0", s, {"command": "true", "timeout": 0}, None),
             ("timeout 3601", s, {"command": "true", "timeout": 3601}, None)]
    for label, sess, body, raw in cases:
        ans, _ = command(LOCAL, ctx.main.port, sess, body, raw_body=raw)
        if ans.status != 400:
            probs.append("%s: HTTP %d %r" % (label, ans.status, ans.body[:200]))
            continue
        try:
            obj = json.loads(ans.body.decode())
            p = refusal_ok(obj, obj.get("reason"), 400)
            reasons.add(obj.get("reason"))
        except ValueError:
            p = ["body not JSON %r" % ans.body[:200]]
        if p:
            probs.append("%s: %s" % (label, ", ".join(p)))
    # the edges that are valid
    for label, body in (("65,536-char command", {"command": ":" + " " * 65535}), ("timeout 3600", {"command": "true", "timeout": 3600})):
        ans, lines = command(LOCAL, ctx.main.port, s, body)
        if ans.status != 200:
            probs.append("%s refused: HTTP %d %r" % (label, ans.status, ans.body[:200]))
    if probs:
        raise Fail("; ".join(probs))
    return "7 bad requests -> 400 failure status (reasons %s); edges accepted" % sorted(reasons)


# ---- proxy with a scripted upstream (§6)

class FakeUpstream:
    """A scripted AgentCore-protocol upstream (websockets' server), logging what the proxy sends."""

    def __init__(self):
        from websockets.sync.server import serve
        self.received = []     # (shell id, channel, payload)
        self.connects = []     # (time, shell id)
        self.server = serve(self.handler, LOCAL, 0, compression=None, ping_interval=None)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handler(self, conn):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(conn.request.path).query)
        shell = q.get("shellId", ["?"])[0]
        self.connects.append((time.monotonic(), shell))
        st = lambda o: conn.send(b"\x03" + json.dumps(o).encode())  # noqa: E731
        try:
            if shell == "silent":
                time.sleep(15)
                return
            if shell == "had":
                st(confirmation(shell, True))
                conn.send(b"\x01REPLAYED-OUTPUT\r\n")
                st(confirmation(shell, True, 1234))
            else:
                st(confirmation(shell, False))
            if shell.startswith("early"):
                conn.send(b"\x01EARLY-OUTPUT\r\n")      # right after the confirmation
            if shell.startswith("stderr"):
                time.sleep(0.3)
            if shell == "stderr":
                conn.send(b"\x02ERR-ON-STDERR\r\n")
                conn.send(b"\x01OUT-ON-STDOUT\r\n")
            if shell == "stderr2":
                conn.send(b"\x01OUT-ON-STDOUT\r\n")
                conn.send(b"\x02ERR-ON-STDERR\r\n")
            while True:
                m = conn.recv(timeout=15)
                if isinstance(m, str):
                    continue
                self.received.append((shell, m[0], m[1:]))
                if m[:1] == b"\x00" and b"quit" in m:
                    if shell == "exitsig":
                        st(exit_status(130, 2))
                    else:
                        st(exit_status(0))
                    conn.close(1000, "shell exited")
                    return
                if m[:1] == b"\xff":
                    st(exit_status(129, 1))
                    conn.close(1000, "shell exited")
                    return
        except Exception:
            return

    def stop(self):
        self.server.shutdown()


@scenario("proxy_scripted_upstream", kinds=("proxy",), budget=45)
def s_fake(ctx):
    fake = FakeUpstream()
    try:
        p = start_proxy(fake.port)
        ctx.hosts.append(p)
        s = ctx.sid()
        probs = []

        def part(label, fn):
            try:
                fn()
            except (Fail, ProtocolError, OSError, ValueError, KeyError) as e:
                probs.append("%s: %s" % (label, e))

        def stderr_case(shell, first, second):
            # STDERR from the upstream reaches the client as STDOUT; heartbeats are answered, not forwarded
            ws, _, _ = ctx.open(p, s, shell)
            out, msgs = ws.read_until_output(second, 5)
            chans = [m.channel for m in msgs if m.kind == "binary"]
            if first.encode() not in out or STDERR in chans:
                probs.append("%s: upstream STDERR reached the client as channels %r, output %r (want STDOUT)" % (shell, chans, out))
            for _ in range(3):
                ws.heartbeat()
            hb = 0
            deadline = time.monotonic() + 2
            while hb < 3 and time.monotonic() < deadline:
                m = ws.recv_app(deadline - time.monotonic())
                if m.kind == "binary" and m.channel == HEARTBEAT:
                    hb += 1
            ws.stdin("quit")
            expect_exit(ws, exit_status(0))
            fwd = [r for r in fake.received if r[0] == shell and r[1] == HEARTBEAT]
            if hb != 3 or fwd:
                probs.append("%s: heartbeats: %d of 3 answered, %d forwarded upstream (want 3, 0)" % (shell, hb, len(fwd)))

        lost = []
        for i in range(4):
            ws, _, _ = ctx.open(p, s, "early%d" % i)
            try:
                ws.read_until_output("EARLY-OUTPUT", 2)
            except ProtocolError:
                lost.append(i)
            ws.stdin("quit")
            ws.read_to_end(3)
        if lost:
            probs.append("output the upstream sent right after its confirmation never reached the client in %d of 4 shells" % len(lost))
        part("STDERR as the upstream's first output", lambda: stderr_case("stderr", "ERR-ON-STDERR", "OUT-ON-STDOUT"))
        part("STDERR after STDOUT", lambda: stderr_case("stderr2", "ERR-ON-STDERR", "ERR-ON-STDERR"))

        def had():
            # a shell the upstream already had: reconnected, replay, bytesDropped = the host's
            ws, _, _ = ctx.open(p, s, "had", reconnected=True)
            replay, dropped, _ = read_replay(ws, "had")
            if b"REPLAYED-OUTPUT" not in replay or dropped != 1234:
                probs.append("upstream-had shell: replay %r, bytesDropped %d (want REPLAYED-OUTPUT, 1234)" % (replay, dropped))
            ws.stdin("quit")
            expect_exit(ws, exit_status(0))
        part("shell the upstream already had", had)

        def exitsig():
            # the upstream's exit status is passed on as it is
            ws, _, _ = ctx.open(p, s, "exitsig")
            ws.stdin("quit")
            expect_exit(ws, exit_status(130, 2))
            ctx.expect_recording(p, s, "exitsig", {"reason": "exited", "code": 130}, "exited with code 130")
        part("upstream exit status 130/Signal 2", exitsig)
        # an upstream that never confirms: 502 after 10 s, nothing recorded
        t = time.monotonic()
        w, ans = ctx.connect(p, s, "silent", timeout=20)
        dt = time.monotonic() - t
        if w or ans.status != 502 or not (9 <= dt <= 14):
            probs.append("upstream never confirming: %r after %.1fs, want 502 after ~10 s" % (ans if not w else "101", dt))
        if __import__("glob").glob(os.path.join(p.store, "*", "*", "*", "proxy", s, "silent")):
            probs.append("a recording directory exists for the 502 shell")
        if probs:
            raise Fail("; ".join(probs))
        return "STDERR->STDOUT; heartbeats not forwarded; upstream re-attach passed with bytesDropped 1234; exit 130/Signal 2 relayed; silent upstream 502 after %.1fs" % dt
    finally:
        fake.stop()


@scenario("proxy_upstream_link_lost_resume", kinds=("proxy",), budget=20)
def s_link_lost(ctx):
    # the proxy re-attaches upstream while its client stays connected; only new output is passed on
    up = start_serve(["--max-shells", "100"])
    ctx.hosts.append(up)
    fw = Forwarder(up.port)
    try:
        p = start_proxy(fw.port)
        ctx.hosts.append(p)
        s = ctx.sid()
        ws, _, _ = ctx.open(p, s, "ll")
        ready(ws)
        ws.stdin("echo BEFORE-$((1+1)); sleep 1; echo DURING-$((2+2))\r")
        ws.read_until_output("BEFORE-2", 5)
        fw.cut()
        fw.restore()            # drop the link but let the proxy reconnect
        out, msgs = ws.read_until_output("DURING-4", 10)
        time.sleep(0.5)
        extra = b""
        while True:
            m = ws.recv_app(0.3)
            if m.kind == "binary" and m.channel == STDOUT:
                extra += m.payload
            elif m.kind == "timeout":
                break
            else:
                msgs.append(m)
                break
        allout = out + extra
        probs = []
        st = [m for m in msgs if m.kind == "binary" and m.channel == STATUS]
        if st or any(m.kind in ("close", "eof", "reset") for m in msgs):
            probs.append("client saw %r during the upstream re-attach" % ([m.payload for m in st] or msgs[-1]))
        if allout.count(b"DURING-4") != 1 or b"BEFORE-2" in allout:
            probs.append("after the link loss the client got %r (want DURING-4 once, BEFORE-2 not again)" % allout[-300:])
        ready(ws)
        ws.close_shell()
        expect_exit(ws, exit_status(129, 1))
        if probs:
            raise Fail("; ".join(probs))
        return "link cut: client stayed connected; the replay's new output only (%d bytes)" % len(allout)
    finally:
        fw.stop()


# ---- §7

@scenario("healthz_metrics")
def s_ops(ctx):
    a = http_request(LOCAL, ctx.main.port, "GET", "/healthz")
    probs = []
    if a.status != 200 or a.body.strip() != b"ok":
        probs.append("/healthz: %r" % a)
    m = http_request(LOCAL, ctx.main.port, "GET", "/metrics")
    names = ["termtrail_live_shells", "termtrail_recording_backlog_events", "termtrail_shells_started_total",
             "termtrail_connections_total", "termtrail_shells_refused_total", "termtrail_bytes_relayed_total",
             "termtrail_protocol_errors_total", "termtrail_recording_failures_total"]
    missing = [n for n in names if not re.search(r"^%s[ {]" % n, m.body.decode(), re.M)]
    if m.status != 200 or missing:
        probs.append("/metrics HTTP %d missing %s" % (m.status, missing))
    if probs:
        raise Fail("; ".join(probs))
    return "/healthz ok; /metrics has the 8 names"


# ---------------------------------------------------------------- spec gaps

SPEC_GAPS = [
    ("shell_id_400_body", "spec gap: §1 says an invalid shellId is HTTP 400 but, unlike the session id, names no body reason (BadRequest?)"),
    ("empty_shell_id", "spec gap: §1 does not say whether `shellId=` (present, empty) is 'absent' (host picks) or invalid (400); not tested"),
    ("idle_timeout_duration_format", "spec gap: the IdleTimeout message's D has no specified format (checked as any text)"),
    ("takeover_second_confirmation", "spec gap: §3 does not say whether a takeover (previous client still attached) gets the replay + second confirmation; assumed yes since reconnected is true"),
    ("close_frame_answer_code", "spec gap: §5/§3 say nothing on how a client's Close frame is answered (code); RFC 6455 echo assumed, only the frame is checked"),
    ("proxy_shutdown_detail", "spec gap: §3 Endings gives the proxy shutdown detail as '... left running (detached)', §6 as '... left running'; only the common prefix is checked"),
    ("slow_client_close_delivery", "spec gap: the 1008 close of a client that reads nothing sits behind unread data; the spec does not say how long the host keeps the connection for the client to get it"),
    ("proxy_upstream_close", "spec gap: §3 Endings 'the upstream host closed the shell (CLOSE from it)': CLOSE is a client-to-host message in §2, so what an upstream host sends is undefined; not tested"),
    ("session_id_header_and_query", "spec gap: §1 allows the session id as header or query parameter but not which wins when both are given (and differ); not tested"),
    ("close_after_signal_exit", "spec gap: CLOSE gives 'SIGHUP: 129'; whether the Signal cause is included follows only from §4 (assumed yes)"),
]


# ---------------------------------------------------------------- main

def report(status, name, detail):
    RESULTS.append((status, name, detail))
    print("%s %s: %s" % (status, name, detail), flush=True)


class _Alarm(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout("scenario exceeded its time budget")


def _start_key(path):
    # <start>.cast.zst, then <start>-1.cast.zst, <start>-2... for a second one in the same second
    m = re.match(r"(.*?)(?:-(\d+))?\.cast\.zst$", os.path.basename(path))
    return (m.group(1), int(m.group(2) or 0))


def run_checks_after(stopped_hosts):
    for name, host, session, shell, index, want, text in EXPECTED_RECORDINGS:
        pat = os.path.join(host.store, "*", "*", "*", host.source, session, shell, "*.cast.zst")
        files = sorted(__import__("glob").glob(pat), key=_start_key)
        if len(files) <= index:
            report("FAIL", name, "no recording #%d at %s (found %d)" % (index, pat, len(files)))
            continue
        f = files[index]
        if callable(want):
            # the raw asciicast text: zstd frames (skippable ones are the index and seal, docs/format.md)
            e = subprocess.run(["zstd", "-dc", f], capture_output=True, timeout=30)
            lines = e.stdout.decode("utf-8", "replace").splitlines()
            try:
                header = json.loads(lines[0])
                events = [json.loads(l) for l in lines[1:] if l.startswith("[")]
                probs, detail = want(f, header, events)
            except Exception as ex:
                probs, detail = ["export failed (exit %d): %r %s" % (e.returncode, ex, e.stderr[-300:])], ""
            report("FAIL" if probs else "PASS", name, "; ".join(probs) if probs else detail)
            continue
        r = subprocess.run([BIN, "verify", "--json", f], capture_output=True, timeout=30)
        t = subprocess.run([BIN, "verify", f], capture_output=True, timeout=30)
        try:
            end = json.loads(r.stdout.decode().splitlines()[0]).get("end")
        except Exception:
            end = None
        ok = False
        if want is None:
            ok = True
        elif isinstance(want, tuple):
            ok = isinstance(end, dict) and end.get("reason") == want[0] and str(end.get("detail", "")).startswith(want[1])
        else:
            ok = end == want
        txt = t.stdout.decode()
        probs = []
        if r.returncode != 0:
            probs.append("verify exit %d: %s" % (r.returncode, r.stdout.decode().strip()[:300]))
        if not ok:
            probs.append("end %s, want %s" % (json.dumps(end), want))
        if text not in txt:
            probs.append("verify text %r lacks %r" % (txt.strip()[:300], text))
        if probs:
            report("FAIL", name, "; ".join(probs))
        else:
            report("PASS", name, "%s: %s" % (os.path.relpath(f, host.store), json.dumps(end)))
    for n, store in STORES:
        if not os.path.isdir(store):
            continue
        r = subprocess.run([BIN, "verify", "--store", store], capture_output=True, timeout=60)
        out = (r.stdout + r.stderr).decode(errors="replace").strip().splitlines()
        if r.returncode != 0:
            bad = [l for l in out if "intact, sealed" not in l][:4]
            report("FAIL", "verify_store[%s]" % n, "exit %d: %s" % (r.returncode, " | ".join(bad)))
        else:
            report("PASS", "verify_store[%s]" % n, out[-1] if out else "clean")


def global_checks():
    stderr_conns = [ws for ws in ALL_WS if STDERR in ws.channels_seen]
    big = max([ws.max_message for ws in ALL_WS] or [0])
    if stderr_conns:
        report("FAIL", "no_stderr_channel", "%d connections received STDERR (0x02)" % len(stderr_conns))
    else:
        report("PASS", "no_stderr_channel", "no STDERR message on %d connections" % len(ALL_WS))
    if big > MAX_MESSAGE:
        report("FAIL", "message_size_limit", "largest message received %d bytes > 65,536" % big)
    else:
        report("PASS", "message_size_limit", "largest message received %d bytes" % big)
    bad = []
    for ws in ALL_WS:
        for m in ws.log:
            if m.kind == "close" and reason_problems(m):
                bad.append((m.code, m.reason))
    if bad:
        report("FAIL", "close_reason_length", "%r" % bad[:5])
    else:
        report("PASS", "close_reason_length", "every close reason received is UTF-8 of <= 123 bytes")


def main():
    global BIN, WORK
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    BIN = os.path.abspath(a.bin)
    WORK = tempfile.mkdtemp(prefix="tt-conformance-")
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGALRM, _alarm)
    t_start = time.monotonic()
    try:
        todo = [(n, f, k, b) for n, f, k, b in SCENARIOS
                if not a.only or n in a.only or any(n + "[" + kk + "]" in a.only for kk in k)]
        mains = {}
        for kind in ("serve", "proxy"):
            if not any(kind in k for _, _, k, _ in todo):
                continue
            if kind == "serve":
                mains[kind] = start_serve(["--max-shells", "100"])
            else:
                up = start_serve(["--max-shells", "100"])
                mains[kind] = start_proxy(up.port, ["--max-shells", "100"], upstream=up)
        for kind in ("serve", "proxy"):
            for name, fn, kinds, budget in todo:
                full = "%s[%s]" % (name, kind)
                if kind not in kinds or (a.only and name not in a.only and full not in a.only):
                    continue
                ctx = Ctx(name, kind, mains[kind])
                ctx.main = mains[kind]
                t = time.monotonic()
                signal.setitimer(signal.ITIMER_REAL, budget)
                try:
                    detail = fn(ctx)
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    report("PASS", full, "%s (%.1fs)" % (detail, time.monotonic() - t))
                except Skip as e:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    report("SKIP", full, str(e))
                except (Fail, ProtocolError, Timeout, OSError, ValueError, KeyError, TypeError, IndexError) as e:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    report("FAIL", full, "%s: %s (%.1fs)" % (type(e).__name__, e, time.monotonic() - t))
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    try:
                        ctx.cleanup()
                    except Exception as e:
                        report("FAIL", full + ":cleanup", repr(e))
        for kind, h in mains.items():
            rc = h.stop()
            if rc is None:
                report("FAIL", "main_host_stop[%s]" % kind, "did not exit within 8 s of SIGTERM")
        run_checks_after(list(mains.values()))
        global_checks()
        if not a.only:
            for n, gap in SPEC_GAPS:
                report("SKIP", n, gap)
    finally:
        _kill_all()
        if not a.keep:
            shutil.rmtree(WORK, ignore_errors=True)
        else:
            print("kept %s" % WORK)
    fails = sum(1 for r in RESULTS if r[0] == "FAIL")
    print("%d PASS, %d FAIL, %d SKIP in %.0fs" % (sum(1 for r in RESULTS if r[0] == "PASS"), fails,
                                                sum(1 for r in RESULTS if r[0] == "SKIP"), time.monotonic() - t_start))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
