#!/usr/bin/env python3
"""Shell host and proxy benchmarks (issue 3), each against the direct path
measured in the same run:

    cargo build --release && python3 bench/shells.py

- added latency: keystroke-to-echo round trips (a shell running `cat`, so the
  PTY's own echo answers) through `proxy` -> `serve` vs straight to `serve`,
  p50 and p99;
- throughput: MB (200) MB of output (`head -c`) received by a client, via
  the proxy vs direct to the same `serve` (the proxy relays and records
  every byte; `serve` records it too, on both paths). The Rust client
  (`recorder/examples/ws_throughput.rs`, the target's measure) runs
  TP_ROUNDS (5) rounds, each a fresh shell per path, direct and proxied
  back to back, in alternating order (direct first in odd rounds, proxy
  first in even ones) so that a change of the machine's load falls on both
  alike; a round's ratio is its proxied rate over its direct rate, and the
  figure is the median of the rounds' ratios (the rates shown are the
  medians of each path's rounds). The Python client runs one round of
  each, direct first;
- connect: the time to open a WebSocket to an existing shell (re-attach: the
  upgrade and the confirmation) with JWT authentication and the Cedar policy
  (docs/policy/team.cedar, RS256 token, JWKS file) vs `--no-auth`, p50 and
  p99 (issue 13: auth and policy add < 5 ms p99);
- scale: N concurrent authenticated shells (JWT + policy) through one proxy,
  each echoing, errors counted, and the proxy's resident memory per idle
  shell: (R_idle - R_base) / N, where R_base is the proxy's VmRSS just
  before the N shells are opened (the proxy has served the latency test by
  then) and R_idle the median of IDLE_SAMPLES readings of its VmRSS taken
  1 s apart, starting IDLE_WAIT s after every shell echoed (all N
  connections still open, each shell idle; by then each has closed its
  recording segment). It is resident memory of the whole process, heap
  fragmentation included, not a count of allocations.
Needs the `websockets` and `PyJWT[crypto]` Python packages (scripts/test's
venv has them):
    target/tools/venv-*/bin/python bench/shells.py
Environment: ROUNDS (2000), SHELLS (500), MB (200), TP_ROUNDS (5),
CONNECTS (300), IDLE_WAIT (15 s), IDLE_SAMPLES (5)."""

import asyncio, json, os, signal, statistics, subprocess, sys, tempfile, time

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TT = os.environ.get("TERMTRAIL_BIN", os.path.join(ROOT, "target", "release", "termtrail"))
ROUNDS = int(os.environ.get("ROUNDS", "2000"))
SHELLS = int(os.environ.get("SHELLS", "500"))
MB = int(os.environ.get("MB", "200"))
TP_ROUNDS = int(os.environ.get("TP_ROUNDS", "5"))
CONNECTS = int(os.environ.get("CONNECTS", "300"))
IDLE_SAMPLES = int(os.environ.get("IDLE_SAMPLES", "5"))
SESSION = "bench-session-0000-1111-2222-3333"
TOKEN = None  # a bearer token, once auth_setup() made one
ISSUER = "https://idp.bench.test"


def auth_setup(d):
    """An RSA key, its JWKS file, a token for a developer; the host flags."""
    global TOKEN
    import jwt
    from jwt.algorithms import RSAAlgorithm
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "bench", "alg": "RS256", "use": "sig"})
    jwks = os.path.join(d, "jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [jwk]}, f)
    now = int(time.time())
    TOKEN = jwt.encode({"sub": "dev1", "groups": ["developers"], "iss": ISSUER, "iat": now,
                        "exp": now + 3600}, key, algorithm="RS256", headers={"kid": "bench"})
    policy = os.path.join(ROOT, "docs", "policy")
    return ["--auth", "jwt", "--jwt-jwks", jwks, "--jwt-issuer", ISSUER,
            "--policy", os.path.join(policy, "team.cedar"),
            "--policy-schema", os.path.join(policy, "termtrail.cedarschema"), "--environment", "dev"]


def start(kind, store, extra):
    auth = [] if "--auth" in extra else ["--no-auth"]
    p = subprocess.Popen([TT, kind, "--listen", "127.0.0.1:0", *auth, "--store", store, *extra],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, TERMTRAIL_LOG="warn"))
    for line in p.stderr:
        if "listening on ws://" in line:
            addr = line.split("ws://")[1].split("/")[0]
            # Keep draining stderr so the server never blocks on it.
            asyncio.get_event_loop_policy()
            import threading
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, addr
    raise SystemExit(f"{kind} did not start")


def url(addr, shell):
    return f"ws://{addr}/runtimes/bench/ws/shells?shellId={shell}"


async def open_shell(addr, shell, token=""):
    """A shell on addr; with the bench's token unless `token` says otherwise
    (None: none; a --no-auth host ignores one)."""
    if token == "":
        token = TOKEN
    headers = {"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": SESSION}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    ws = await websockets.connect(url(addr, shell), additional_headers=headers,
                                  max_size=None, open_timeout=30)
    while True:  # confirmation
        m = await ws.recv()
        if m[0] == 3:
            return ws


async def latency(addr, shell):
    ws = await open_shell(addr, shell)
    times = []
    for i in range(ROUNDS + 50):
        t = time.perf_counter()
        await ws.send(b"\x00x")
        while True:
            m = await ws.recv()
            if m[0] == 1 and b"x" in m[1:]:
                break
        if i >= 50:
            times.append((time.perf_counter() - t) * 1e6)
    await ws.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)]


async def throughput(addr, shell):
    ws = await open_shell(addr, shell)
    total = MB * 1_000_000
    # The marker as printed differs from the echoed command line.
    await ws.send(b"\x00stty -echo; head -c %d /dev/zero | tr '\\0' x; echo; echo END-OF-$((1+1))-BENCH\n" % total)
    got = 0
    t = None
    tail = b""
    while True:
        m = await ws.recv()
        if m[0] != 1:
            continue
        if t is None:
            t = time.perf_counter()
        got += len(m) - 1
        tail = (tail + m[1:])[-64:]
        if b"END-OF-2-BENCH\r\n" in tail:
            break
    dt = time.perf_counter() - t
    await ws.close()
    return got / dt / 1e6


def rust_throughput(client, direct, proxied):
    """TP_ROUNDS rounds of the Rust client, direct and via the proxy back
    to back in alternating order: (median direct MB/s, median proxied MB/s,
    median of the rounds' proxied/direct ratios)."""
    def rate(addr):
        out = subprocess.run([client, f"ws://{addr}", str(MB)], capture_output=True, text=True, check=True)
        return float(out.stdout)
    ds, ps, ratios = [], [], []
    for i in range(TP_ROUNDS):
        if i % 2 == 0:
            d = rate(direct)
            p = rate(proxied)
        else:
            p = rate(proxied)
            d = rate(direct)
        ds.append(d)
        ps.append(p)
        ratios.append(p / d)
        print(f"    round {i + 1}: direct {d:7.1f} MB/s, via proxy {p:7.1f} MB/s, ratio {p / d:.2f}")
    return statistics.median(ds), statistics.median(ps), statistics.median(ratios)


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def connects(addr, token):
    """p50/p99 of re-attaching to one shell (upgrade + confirmation), in ms."""
    first = await open_shell(addr, "connect", token)
    await first.close()
    times = []
    for _ in range(CONNECTS):
        t = time.perf_counter()
        ws = await open_shell(addr, "connect", token)
        times.append((time.perf_counter() - t) * 1e3)
        await ws.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)]


async def scale(addr, proxy_pid):
    base = rss_kib(proxy_pid)
    errors = 0
    shells = []
    for i in range(SHELLS):
        try:
            shells.append(await open_shell(addr, f"scale{i}", TOKEN))
        except Exception as e:
            errors += 1
            if errors < 3:
                print("    open failed:", e)
    async def echo(ws, i):
        await ws.send(b"\x00echo hi-%d\n" % i)
        buf = b""
        while b"hi-%d\r\n" % i not in buf:
            m = await asyncio.wait_for(ws.recv(), 30)
            if m[0] == 1:
                buf += m[1:]
    results = await asyncio.gather(*(echo(ws, i) for i, ws in enumerate(shells)), return_exceptions=True)
    errors += sum(1 for r in results if isinstance(r, Exception))
    busy = rss_kib(proxy_pid)
    # Idle shells close their recording segment (and free its compressor)
    # after 10 s without output; then RSS is sampled once a second, five
    # times, and the median taken (one sample can catch a passing
    # allocation, such as a heartbeat's or a log line's).
    await asyncio.sleep(float(os.environ.get("IDLE_WAIT", "15")))
    samples = []
    for i in range(IDLE_SAMPLES):
        if i:
            await asyncio.sleep(1)
        samples.append(rss_kib(proxy_pid))
    loaded = statistics.median(samples)
    print(f"    proxy RSS right after the echoes {busy / 1024:.1f} MiB, idle {loaded / 1024:.1f} MiB"
          f" (median of {', '.join(f'{s / 1024:.1f}' for s in samples)})")
    for ws in shells:
        await ws.close()
    return len(shells), errors, base, loaded


async def main():
    with tempfile.TemporaryDirectory() as d:
        auth = auth_setup(d)
        serve, saddr = start("serve", os.path.join(d, "s"), ["--max-shells", str(SHELLS + 10), "--", "cat"])
        proxy, paddr = start("proxy", os.path.join(d, "p"), ["--upstream", f"ws://{saddr}", "--max-shells", str(SHELLS + 10), *auth])
        try:
            print(f"# termtrail shell benchmarks ({os.cpu_count()} cores), rounds={ROUNDS}")
            d50, d99 = await latency(saddr, "lat-direct")
            p50, p99 = await latency(paddr, "lat-proxy")
            print(f"latency direct  p50 {d50:7.1f} us  p99 {d99:7.1f} us")
            print(f"latency proxy   p50 {p50:7.1f} us  p99 {p99:7.1f} us")
            print(f"added by proxy  p50 {p50 - d50:7.1f} us  p99 {p99 - d99:7.1f} us  (target p99 < 1000 us)")
            record("proxy", "keystroke echo p50, via proxy", p50, d50, "us", d50 / p50, None, "direct to serve")
            record("proxy", "keystroke echo p99, via proxy", p99, d99, "us", d99 / p99, "added < 1000 us", "direct to serve")
            # A shell without rc files: login scripts (pyenv hooks, say) can
            # slow a shell down far more than anything measured here.
            serve2, saddr2 = start("serve", os.path.join(d, "s2"), ["--max-shells", str(10 + 2 * TP_ROUNDS), "--", "bash", "--norc", "--noprofile"])
            proxy2, paddr2 = start("proxy", os.path.join(d, "p2"), ["--upstream", f"ws://{saddr2}"])
            td = await throughput(saddr2, "tp-direct")
            tp = await throughput(paddr2, "tp-proxy")
            print(f"throughput (Python client) direct {td:7.1f} MB/s, via proxy {tp:7.1f} MB/s, ratio {tp / td:.2f}")
            profile = os.environ.get("BENCH_PROFILE", "release")
            subprocess.run(["cargo", "build", "--profile", "dev" if profile == "debug" else profile, "-q",
                            "-p", "termtrail-recorder", "--example", "ws_throughput"], cwd=ROOT, check=True)
            target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
            rust = os.path.join(target, profile, "examples", "ws_throughput")
            rd, rp, ratio = rust_throughput(rust, saddr2, paddr2)
            print(f"throughput (Rust client)   direct {rd:7.1f} MB/s, via proxy {rp:7.1f} MB/s (medians of {TP_ROUNDS} rounds),"
                  f" ratio {ratio:.2f} (median of the rounds' ratios; target >= 0.8)")
            record("proxy", f"throughput via proxy, {MB} MB (Python client)", tp, td, "MB/s", tp / td, None, "direct to serve")
            record("proxy", f"throughput via proxy, {MB} MB (Rust client, median of {TP_ROUNDS} rounds)", rp, rd, "MB/s", ratio,
                   ">= 0.8", "direct to serve")
            for p in (serve2, proxy2):
                p.send_signal(signal.SIGTERM)
                p.wait()
            serve3, saddr3 = start("serve", os.path.join(d, "s3"), ["--", "cat"])
            serve4, saddr4 = start("serve", os.path.join(d, "s4"), [*auth, "--", "cat"])
            n50, n99 = await connects(saddr3, None)
            a50, a99 = await connects(saddr4, TOKEN)
            print(f"connect --no-auth       p50 {n50:6.2f} ms  p99 {n99:6.2f} ms")
            print(f"connect JWT + policy    p50 {a50:6.2f} ms  p99 {a99:6.2f} ms")
            print(f"added by auth + policy  p50 {a50 - n50:6.2f} ms  p99 {a99 - n99:6.2f} ms  (target p99 < 5 ms)")
            record("proxy", "connect p99, JWT + Cedar policy", a99, n99, "ms", n99 / a99, "added < 5 ms", "--no-auth")
            for p in (serve3, serve4):
                p.send_signal(signal.SIGTERM)
                p.wait()
            n, errors, base, loaded = await scale(paddr, proxy.pid)
            print(f"scale: {n} authenticated shells (JWT + policy) through one proxy, {errors} errors; proxy RSS {base / 1024:.1f} MiB -> {loaded / 1024:.1f} MiB"
                  f" = {(loaded - base) / max(n, 1):.0f} KiB per idle shell (target <= 64)")
            record("proxy", f"memory per idle shell ({n} shells, {errors} errors)", (loaded - base) / max(n, 1), None, "KiB",
                   None, "<= 64 KiB", "")
        finally:
            for p in (proxy, serve):
                p.send_signal(signal.SIGTERM)
                p.wait()


if __name__ == "__main__":
    asyncio.run(main())
