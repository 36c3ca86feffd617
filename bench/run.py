#!/usr/bin/env python3
"""termtrail's benchmarks against peers, measured in one run on one input.

    bash bench/corpus.sh && cargo build --release && python3 bench/run.py

Prints, for the ~200 MiB corpus of real terminal output (bench/corpus.sh):
- recording throughput, median wall time of N alternating runs:
  `termtrail rec --headless -- cat BIG` vs `script -q -c 'cat BIG' /dev/null`
  vs `asciinema rec --headless` (3.x, from target/tools) — as ratios;
- CPU seconds per GB recorded (user+sys of the recorder and its child);
- compressed size vs `zstd -3` of the whole decompressed asciicast at once;
- `verify` speed in MB/s of uncompressed asciicast (and vs `zstd -dc`);
- peak RSS of rec and verify on the full corpus and on a quarter of it
  (memory must not grow with the recording's length).
Environment: RUNS (default 5), CORPUS (path), ASCIINEMA3 (path)."""

import os, resource, statistics, subprocess, sys, time

from results import record

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.environ.get("BENCH_WORK", os.path.join(HERE, "work"))
TT = os.environ.get("TERMTRAIL_BIN", os.path.join(ROOT, "target", "release", "termtrail"))
A3 = os.environ.get("ASCIINEMA3", os.path.join(ROOT, "target", "tools", "asciinema-3.2.0", "bin", "asciinema"))
CORPUS = os.environ.get("CORPUS", os.path.join(WORK, "corpus.txt"))
RUNS = int(os.environ.get("RUNS", "5"))


def measure(argv, stdout=subprocess.DEVNULL, env=None):
    """(wall s, cpu s, peak RSS KiB) of one process tree. Peak RSS comes from
    GNU time (a small parent), since a child forked from this Python process
    would report Python's own RSS as its high-water mark."""
    rss_file = os.path.join(WORK, "rss.txt")
    t0 = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file, *argv], stdin=subprocess.DEVNULL,
                         stdout=stdout, stderr=subprocess.DEVNULL, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) not in (0,):
        raise SystemExit(f"{argv[0]} failed: {status}")
    rss = int(open(rss_file).read().split()[-1])
    return wall, ru.ru_utime + ru.ru_stime, rss


def rm(*paths):
    for p in paths:
        if os.path.exists(p):
            os.remove(p)


def main():
    if not os.path.exists(CORPUS):
        raise SystemExit("run bench/corpus.sh first")
    size = os.path.getsize(CORPUS)
    out_tt = os.path.join(WORK, "tt.cast.zst")
    out_a3 = os.path.join(WORK, "a3.cast")
    env_a3 = dict(os.environ, ASCIINEMA_CONFIG_HOME=os.path.join(WORK, "a3cfg"))
    have_a3 = os.path.exists(A3)
    cmds = {
        "script": lambda: measure(["script", "-q", "-c", f"cat {CORPUS}", "/dev/null"]),
        "termtrail": lambda: (rm(out_tt), measure([TT, "rec", "--headless", "-q", "-o", out_tt, "--", "cat", CORPUS]))[1],
    }
    if have_a3:
        cmds["asciinema3"] = lambda: (rm(out_a3), measure([A3, "rec", "-q", "--headless", "--overwrite", "-c", f"cat {CORPUS}", out_a3], env=env_a3))[1]
    results = {k: [] for k in cmds}
    for _ in range(RUNS):
        for name, run in cmds.items():
            results[name].append(run())
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v), max(r[2] for r in v)) for k, v in results.items()}
    print(f"corpus: {size:,} bytes, {RUNS} runs each, medians; machine: {os.cpu_count()} cores")
    print("\n## Recording throughput (rec --headless -- cat BIG)")
    for k, (wall, cpu, rss) in med.items():
        print(f"  {k:11s} {wall:6.2f} s  {size / wall / 1e6:6.1f} MB/s  cpu {cpu:5.2f} s = {cpu / (size / 1e9):5.2f} cpu-s/GB  peak RSS {rss / 1024:6.1f} MiB")
    print(f"  throughput termtrail / script     = {med['script'][0] / med['termtrail'][0]:.3f}  (target >= 0.95)")
    if have_a3:
        print(f"  cpu per GB termtrail / asciinema3 = {med['termtrail'][1] / med['asciinema3'][1]:.3f}  (target <= 1.0)")
    gb = size / 1e9
    tt = med["termtrail"]
    for peer, target in (("script", ">= 0.95"), ("asciinema3", None)):
        if peer not in med:
            continue
        p = med[peer]
        name = "util-linux script" if peer == "script" else "asciinema 3.2 rec"
        record("rec", f"wall, {size / 1e6:.0f} MB of output", tt[0], p[0], "s", p[0] / tt[0], target, name)
        record("rec", "CPU per GB", tt[1] / gb, p[1] / gb, "cpu-s/GB", p[1] / tt[1],
               ">= 1.0" if peer == "asciinema3" else None, name)
        record("rec", "peak RSS", tt[2] / 1024, p[2] / 1024, "MiB", p[2] / tt[2], None, name)

    print("\n## Size")
    text = subprocess.run(["zstd", "-dc", out_tt], capture_output=True, check=True).stdout
    z3 = subprocess.run(["zstd", "-3", "-q", "-c", "-T1"], input=text, capture_output=True, check=True).stdout
    ours = os.path.getsize(out_tt)
    print(f"  decompressed asciicast {len(text):,} B; zstd -3 of it at once {len(z3):,} B; termtrail {ours:,} B")
    print(f"  size termtrail / zstd -3 (whole file) = {ours / len(z3):.3f}  (target <= 1.05)")
    record("size", "recording size", ours / 1e6, len(z3) / 1e6, "MB", len(z3) / ours, ">= 0.95 (size <= 1.05x)",
           "zstd -3 of the whole asciicast at once")
    if have_a3 and os.path.exists(out_a3):
        a3size = os.path.getsize(out_a3)
        print(f"  asciinema 3 .cast (uncompressed) {a3size:,} B; termtrail / asciinema = {ours / a3size:.3f}")
        record("size", "recording size", ours / 1e6, a3size / 1e6, "MB", a3size / ours, None, "asciinema 3.2 .cast")

    print("\n## Verify")
    ver = [measure([TT, "verify", out_tt]) for _ in range(RUNS)]
    dc = [measure(["zstd", "-dc", "-T1", out_tt]) for _ in range(RUNS)]
    vw = statistics.median(r[0] for r in ver)
    dw = statistics.median(r[0] for r in dc)
    print(f"  termtrail verify {vw:.3f} s = {len(text) / vw / 1e6:7.1f} MB/s of asciicast (target >= 700), peak RSS {max(r[2] for r in ver) / 1024:.1f} MiB")
    print(f"  zstd -dc (decompress only, 1 thread) {dw:.3f} s = {len(text) / dw / 1e6:7.1f} MB/s; verify / zstd -dc speed = {dw / vw:.2f}")
    # sha256sum of the decompressed asciicast: hashing what verify hashes,
    # without decompressing or parsing it.
    plain = os.path.join(WORK, "tt.cast")
    with open(plain, "wb") as f:
        f.write(text)
    sha = statistics.median(measure(["sha256sum", plain])[0] for _ in range(RUNS))
    rm(plain)
    mbs = len(text) / 1e6
    record("verify", "verify (every chunk hashed)", mbs / vw, mbs / dw, "MB/s", dw / vw, None, "zstd -dc -T1 (decompress only)")
    record("verify", "verify (every chunk hashed)", mbs / vw, mbs / sha, "MB/s", sha / vw, None,
           "sha256sum of the decompressed asciicast")

    if os.environ.get("BENCH_QUICK"):
        print("\n(quick: in-process container bench and memory-vs-length skipped)")
        return
    print("\n## Container in-process (format/examples/container_bench.rs, best of 3)")
    out = subprocess.run(["cargo", "run", "--release", "-q", "-p", "termtrail-format", "--example", "container_bench", "--", CORPUS, "3"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    print("".join("  " + l + "\n" for l in out.splitlines()), end="")

    print("\n## Memory vs length (peak RSS, MiB)")
    quarter = os.path.join(WORK, "quarter.txt")
    with open(CORPUS, "rb") as f, open(quarter, "wb") as g:
        g.write(f.read(size // 4))
    out_q = os.path.join(WORK, "q.cast.zst")
    rm(out_q)
    rq = measure([TT, "rec", "--headless", "-q", "-o", out_q, "--", "cat", quarter])
    vq = measure([TT, "verify", out_q])
    print(f"  rec:    1/4 corpus {rq[2] / 1024:6.1f}   full corpus {med['termtrail'][2] / 1024:6.1f}")
    print(f"  verify: 1/4 corpus {vq[2] / 1024:6.1f}   full corpus {max(r[2] for r in ver) / 1024:6.1f}")
    record("memory", "rec peak RSS, full / quarter corpus", med["termtrail"][2] / 1024, rq[2] / 1024, "MiB",
           rq[2] / med["termtrail"][2], "~1.0 (flat)", "the same on 1/4 of the corpus")
    record("memory", "verify peak RSS, full / quarter corpus", max(r[2] for r in ver) / 1024, vq[2] / 1024, "MiB",
           vq[2] / max(r[2] for r in ver), "~1.0 (flat)", "the same on 1/4 of the corpus")
    rm(quarter, out_q)


if __name__ == "__main__":
    sys.exit(main())
