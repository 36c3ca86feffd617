#!/usr/bin/env python3
"""The player's benchmarks: grep throughput against `zstd -dc | rg`, seeking
against replaying from the start, memory against input size.

    bash bench/corpus.sh && cargo build --release && python3 bench/player.py

grep: FILES recordings (default 16) are made with `termtrail import` from
asciicast v3 files cut from the ~200 MiB corpus of real terminal output
(bench/corpus.sh), at least 1 GiB of uncompressed asciicast in all; a needle
("AccessDenied") is planted in a few events, half of them with colour codes
between its letters (which rg, searching the raw text, cannot see: the
pipeline finds only the plain half). Then the median wall time of RUNS runs of

  termtrail grep NEEDLE DIR            (times, screen lines, verification)
  zstd -dc FILES | rg NEEDLE           (two processes, both cores)

as throughput over the uncompressed bytes, and their ratio (> 1: termtrail is
faster). Peak RSS of `termtrail grep` over a quarter of the files and over all
of them (flat: memory does not grow with the number of files).

seek: a 1-hour recording of >= 100 MB (corpus chunks, one every ~0.14 s) made
the same way; `snapshot --at T` at 21 times spread over the hour: the first
call (cold: builds and caches keyframes) and the median of the others (warm);
against `snapshot --no-cache` (which replays from the start, as a player
without keyframes must), median of 3. Peak RSS of snapshot on it.

patterns (`python3 bench/player.py patterns`, not run by default): the same
files searched for other words (PATTERNS), each against the same pipeline
in the same run: `grep` and `grep -c` times and their ratios.

Environment: RUNS (default 5; 3 for patterns), FILES (default 16), CORPUS (path)."""

import json, os, random, re, shutil, statistics, subprocess, sys, time

from results import record

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.environ.get("BENCH_WORK", os.path.join(HERE, "work"))
TT = os.environ.get("TERMTRAIL_BIN", os.path.join(ROOT, "target", "release", "termtrail"))
CORPUS = os.environ.get("CORPUS", os.path.join(WORK, "corpus.txt"))
RUNS = int(os.environ.get("RUNS", "5"))
FILES = int(os.environ.get("FILES", "16"))
NEEDLE = "AccessDenied"
# Uncompressed asciicast of the grep corpus, and text of the 1-hour recording.
GREP_MB = int(os.environ.get("GREP_MB", "1100"))
HOUR_MB = int(os.environ.get("HOUR_MB", "110"))


def run(argv, shell=False, env=None):
    """(wall s, peak RSS KiB) of one command (GNU time measures RSS)."""
    rss_file = os.path.join(WORK, "rss.txt")
    cmd = ["/usr/bin/time", "-f", "%M", "-o", rss_file]
    cmd += ["bash", "--norc", "--noprofile", "-c", argv] if shell else argv
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise SystemExit(f"{argv} failed ({p.returncode}): {p.stderr.decode()[-500:]}")
    return wall, int(open(rss_file).read().split()[-1])


def chunks(data, size):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def write_cast(path, pieces, dt, title):
    """An asciicast v3 file: one output event per piece, dt apart. Line feeds
    become CR LF, as a terminal's output reaches a recorder (the tty's onlcr);
    the corpus itself was written to a pipe."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"version": 3, "term": {"cols": 160, "rows": 48}, "timestamp": 1795132800,
                            "title": title}) + "\n")
        for p in pieces:
            f.write(json.dumps([dt, "o", re.sub(r"(?<!\r)\n", "\r\n", p)]) + "\n")


def make(path, pieces, dt, title):
    cast = path[: -len(".zst")]
    write_cast(cast, pieces, dt, title)
    subprocess.run([TT, "import", "--overwrite", cast, "-o", path], check=True, stdout=subprocess.DEVNULL)
    size = os.path.getsize(cast)
    os.remove(cast)
    return size


def grep_corpus(corpus):
    """The grep corpus's directory, files and size in MB (made once)."""
    d = os.path.join(WORK, "grep")
    marker = os.path.join(d, f".made-{FILES}-{GREP_MB}-v3")
    shutil.rmtree(d, ignore_errors=True) if not os.path.exists(marker) else None
    os.makedirs(d, exist_ok=True)
    files = [os.path.join(d, f"r{i:03}.cast.zst") for i in range(FILES)]
    sizes_file = os.path.join(d, ".sizes")
    if not os.path.exists(marker):
        print(f"making {FILES} recordings from the corpus ...", flush=True)
        text = corpus.decode("utf-8", "replace")
        # Text per file: JSON escaping adds about a third; aim at 1.1 GB.
        per = max(1, GREP_MB * 1_000_000 // FILES * 3 // 4)
        rnd = random.Random(7)
        total = 0
        for i, f in enumerate(files):
            start = rnd.randrange(0, max(1, len(text) - per))
            piece = text[start : start + per]
            if len(piece) < per:
                piece = (piece + text)[:per]
            pieces = list(chunks(piece, 4096))
            # The needle, in a few places: plain and with colour codes inside.
            for k in range(4):
                j = rnd.randrange(len(pieces))
                pieces[j] += ("error: Access\x1b[1;31mDenied\x1b[0m\r\n" if k % 2 else "error: AccessDenied\r\n")
            total += make(f, pieces, 0.01, f"bench {i}")
        open(sizes_file, "w").write(str(total))
        open(marker, "w").close()
    return d, files, int(open(sizes_file).read()) / 1e6


def grep_bench(corpus):
    d, files, mb = grep_corpus(corpus)
    print(f"grep corpus: {FILES} recordings, {mb:.0f} MB uncompressed asciicast, "
          f"{sum(os.path.getsize(f) for f in files) / 1e6:.0f} MB on disk")
    if not shutil.which("rg"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "ripgrep"], check=True, stdout=subprocess.DEVNULL)
    names = " ".join(files)
    # The same pattern; rg searches the raw JSON text (and so misses the
    # needles with colour codes inside, which termtrail finds).
    peer = f"zstd -dc {names} | rg {NEEDLE}"
    ours = [TT, "grep", "--screen", NEEDLE, d]
    # Warm the page cache, and check the hits.
    out = subprocess.run(ours, capture_output=True, text=True)
    # Hit lines (screen rows, indented, are not hits).
    hits = sum(1 for line in out.stdout.splitlines() if not line.startswith("  "))
    print(f"termtrail grep found {hits} hits (planted: {4 * FILES}, half with colour codes inside)")
    t_tt, t_peer, rss_tt = [], [], []
    for _ in range(RUNS):
        w, r = run(ours)
        t_tt.append(w)
        rss_tt.append(r)
        w, _ = run(peer, shell=True)
        t_peer.append(w)
    a, b = statistics.median(t_tt), statistics.median(t_peer)
    print(f"grep: termtrail {mb / a:.0f} MB/s ({a:.2f} s), zstd -dc | rg {mb / b:.0f} MB/s ({b:.2f} s); "
          f"ratio termtrail/peer throughput {b / a:.2f} (median of {RUNS})")
    corpus_name = f"{FILES} files, {mb:.0f} MB, {hits} hits"
    record("grep", f"grep with screen lines ({corpus_name})", mb / a, mb / b, "MB/s", b / a, ">= 1.0", "zstd -dc | rg")
    # Counting only (no screen lines): the first pass alone.
    t_count = statistics.median(run([TT, "grep", "-c", NEEDLE, d])[0] for _ in range(RUNS))
    # Verification alone: the floor under any verified search.
    t_verify = statistics.median(run([TT, "verify", *files])[0] for _ in range(RUNS))
    print(f"grep -c (no screen lines): {mb / t_count:.0f} MB/s, ratio {b / t_count:.2f}; "
          f"verify alone: {mb / t_verify:.0f} MB/s, ratio {b / t_verify:.2f}")
    record("grep", f"grep -c ({corpus_name})", mb / t_count, mb / b, "MB/s", b / t_count, ">= 1.0", "zstd -dc | rg")
    record("grep", f"verify of the grep corpus ({FILES} files)", mb / t_verify, mb / b, "MB/s", b / t_verify, None, "zstd -dc | rg")
    quarter = [TT, "grep", "--screen", NEEDLE, *files[: max(1, FILES // 4)]]
    _, rss_q = run(quarter)
    print(f"grep peak RSS: {rss_q / 1024:.0f} MiB over {max(1, FILES // 4)} files, "
          f"{max(rss_tt) / 1024:.0f} MiB over {FILES}")
    record("memory", f"grep peak RSS, {FILES} files / {max(1, FILES // 4)}", max(rss_tt) / 1024, rss_q / 1024, "MiB",
           rss_q / max(rss_tt), "~1.0 (flat)", "the same over a quarter of the files")
    dense_bench(d, files, mb, "error")


# Other searches over the same files: words an engineer might look for, some
# made only of letters common in this output (no rare byte to skip lines
# by), some with thousands of hits (each hit's screen costs an emulator pass).
PATTERNS = ["Traceback", "panicked", "ECONNREFUSED", "Exception", "rm -rf",
            "denied", "sudo", "password", "timeout", "error"]


def patterns_bench(corpus):
    d, files, mb = grep_corpus(corpus)
    names = " ".join(files)
    runs = int(os.environ.get("RUNS", "3"))
    print(f"patterns over {len(files)} recordings, {mb:.0f} MB; wall time, median of {runs}; "
          "ratio = peer time / termtrail time (> 1: termtrail is faster)")
    for pat in PATTERNS:
        counts = subprocess.run([TT, "grep", "-c", pat, d], capture_output=True, text=True).stdout
        hits = sum(int(l.rsplit(":", 1)[1]) for l in counts.splitlines() if ":" in l)
        peer = f"zstd -dc {names} | rg '{pat}'"
        t = {"peer": [], "grep": [], "count": []}
        for _ in range(runs):
            t["peer"].append(run(peer, shell=True)[0])
            t["grep"].append(run([TT, "grep", "--screen", pat, d])[0])
            t["count"].append(run([TT, "grep", "-c", pat, d])[0])
        m = {k: statistics.median(v) for k, v in t.items()}
        print(f"{pat!r:16} {hits:6} hits  peer {m['peer']:.2f} s  grep {m['grep']:.2f} s "
              f"({m['peer'] / m['grep']:.2f}x)  grep -c {m['count']:.2f} s ({m['peer'] / m['count']:.2f}x)")


def dense_bench(d, files, mb, pat):
    """A pattern with tens of thousands of hits: every hit costs a screen."""
    names = " ".join(files)
    counts = subprocess.run([TT, "grep", "-c", pat, d], capture_output=True, text=True).stdout
    hits = sum(int(l.rsplit(":", 1)[1]) for l in counts.splitlines() if ":" in l)
    runs = max(1, min(RUNS, 3))
    t = {"peer": [], "grep": [], "count": []}
    for _ in range(runs):
        t["peer"].append(run(f"zstd -dc {names} | rg '{pat}'", shell=True)[0])
        t["grep"].append(run([TT, "grep", "--screen", pat, d])[0])
        t["count"].append(run([TT, "grep", "-c", pat, d])[0])
    m = {k: statistics.median(v) for k, v in t.items()}
    print(f"dense hits {pat!r}: {hits} hits; peer {m['peer']:.2f} s, grep {m['grep']:.2f} s ({m['peer'] / m['grep']:.2f}x), "
          f"grep -c {m['count']:.2f} s ({m['peer'] / m['count']:.2f}x)")
    what = f"dense hits '{pat}' ({hits} hits, {mb:.0f} MB)"
    record("grep", f"grep with screen lines, {what}", mb / m["grep"], mb / m["peer"], "MB/s", m["peer"] / m["grep"], ">= 0.5", "zstd -dc | rg")
    record("grep", f"grep -c, {what}", mb / m["count"], mb / m["peer"], "MB/s", m["peer"] / m["count"], ">= 1.0", "zstd -dc | rg")


HOUR_HIT = "ERROR payment-worker[{n}]: upstream timed out after 30000 ms (order {n}7731, retry 3/3)\r\n"


def hour_recording(corpus, hits):
    """A 1-hour recording of real terminal output (one event every ~0.13 s),
    with `hits` log lines holding HOUR_HIT's words (none when 0)."""
    name = "hour.cast.zst" if hits == 0 else f"hour-{hits}hits.cast.zst"
    path = os.path.join(WORK, name)
    stamp = path + f".{HOUR_MB}.size"
    if not os.path.exists(stamp):
        print(f"making a 1-hour recording{f' with {hits} hits' if hits else ''} ...", flush=True)
        text = corpus.decode("utf-8", "replace")[: HOUR_MB << 20]
        pieces = list(chunks(text, 4096))
        rnd = random.Random(13)
        for n in range(hits):
            pieces[rnd.randrange(len(pieces))] += HOUR_HIT.format(n=n)
        dt = 3600.0 / len(pieces)
        size = make(path, pieces, round(dt, 6), "one hour")
        open(stamp, "w").write(str(size))
    return path, int(open(stamp).read())


def hour_grep_bench(corpus):
    """grep in one long recording with a dozen hits: each printed hit costs a
    screen, which the pipeline does not build."""
    path, size = hour_recording(corpus, 12)
    mb = size / 1e6
    pat = "upstream timed out"
    peer = f"zstd -dc {path} | rg '{pat}'"
    t = {"peer": [], "grep": [], "count": []}
    for _ in range(RUNS):
        t["peer"].append(run(peer, shell=True)[0])
        t["grep"].append(run([TT, "grep", "--screen", pat, path])[0])
        t["count"].append(run([TT, "grep", "-c", pat, path])[0])
    m = {k: statistics.median(v) for k, v in t.items()}
    print(f"1-hour recording, {mb:.0f} MB, 12 hits: peer {m['peer']:.2f} s, grep {m['grep']:.2f} s "
          f"({m['peer'] / m['grep']:.2f}x), grep -c {m['count']:.2f} s ({m['peer'] / m['count']:.2f}x)")
    what = f"one 1-hour recording ({mb:.0f} MB, 12 hits)"
    record("grep", f"grep with screen lines, {what}", mb / m["grep"], mb / m["peer"], "MB/s", m["peer"] / m["grep"], ">= 1.5", "zstd -dc | rg")
    record("grep", f"grep -c, {what}", mb / m["count"], mb / m["peer"], "MB/s", m["peer"] / m["count"], ">= 1.0", "zstd -dc | rg")


def seek_bench(corpus):
    path, size = hour_recording(corpus, 0)
    cache = os.path.join(WORK, "kfcache")
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, TERMTRAIL_CACHE_DIR=cache)
    rnd = random.Random(11)
    times = [round(rnd.uniform(0, 3600), 3) for _ in range(21)]
    cold, _ = run([TT, "snapshot", path, "--at", str(times[0])], env=env)
    warm, rss = [], []
    for t in times[1:]:
        w, r = run([TT, "snapshot", path, "--at", str(t)], env=env)
        warm.append(w)
        rss.append(r)
    replay = [run([TT, "snapshot", path, "--at", str(t), "--no-cache"], env=env)[0] for t in times[:3]]
    w = statistics.median(warm)
    print(f"seek: 1-hour recording, {size / 1e6:.0f} MB uncompressed; snapshot warm median {w * 1000:.0f} ms "
          f"(max {max(warm) * 1000:.0f} ms, {len(warm)} times), cold (builds keyframes) {cold * 1000:.0f} ms, "
          f"replay from the start {statistics.median(replay) * 1000:.0f} ms; peak RSS {max(rss) / 1024:.0f} MiB")
    r = statistics.median(replay)
    record("seek", f"snapshot --at T in a 1-hour recording ({size / 1e6:.0f} MB), warm", w * 1000, r * 1000, "ms", r / w,
           None, "replaying from the start (--no-cache)")
    record("seek", "snapshot, first call (builds keyframes)", cold * 1000, r * 1000, "ms", r / cold, None,
           "replaying from the start (--no-cache)")


def main():
    if not os.path.exists(CORPUS):
        raise SystemExit("run bench/corpus.sh first")
    if not os.path.exists(TT):
        raise SystemExit(f"{TT} missing: run cargo build --release first")
    corpus = open(CORPUS, "rb").read()
    what = sys.argv[1:] or ["grep", "seek", "hour"]
    if "seek" in what:
        seek_bench(corpus)
    if "grep" in what:
        grep_bench(corpus)
    if "hour" in what:
        hour_grep_bench(corpus)
    if "patterns" in what:
        patterns_bench(corpus)


if __name__ == "__main__":
    main()
