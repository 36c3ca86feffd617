#!/usr/bin/env python3
"""The S3 store's benchmarks, against moto's server on loopback (from the
test venv under target/tools: run `bash scripts/test` once first).

    bash bench/corpus.sh && cargo build --release && python3 bench/player.py grep \
        && python3 bench/s3.py

- upload keeps up: `termtrail rec --headless -- cat CORPUS` (~200 MiB of real
  terminal output) into a local directory vs into `s3://` (the recording is
  spooled, streamed to the bucket while it runs, and `rec` returns once the
  bucket has the whole object): median wall time of RUNS runs each, ratio.
- grep over S3: the grep corpus of bench/player.py (16 recordings, ~1.1 GB
  uncompressed) uploaded to a bucket; `termtrail grep NEEDLE s3://…` vs the
  same grep over the local directory, median of RUNS, ratio (target: S3
  within 1.5x of local).
Environment: RUNS (default 3)."""

import glob, os, socket, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import record

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.environ.get("BENCH_WORK", os.path.join(HERE, "work"))
TT = os.environ.get("TERMTRAIL_BIN", os.path.join(ROOT, "target", "release", "termtrail"))
RUNS = int(os.environ.get("RUNS", "3"))


def venv_python():
    found = sorted(glob.glob(os.path.join(ROOT, "target", "tools", "venv-*", "bin", "python")))
    if not found:
        raise SystemExit("no test venv: run `bash scripts/test` once (it installs moto)")
    return found[-1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def timed(argv, env):
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode not in (0, 1):
        raise SystemExit(f"{argv[:3]} failed ({p.returncode}): {p.stderr.decode()[-400:]}")
    return time.perf_counter() - t0


def main():
    py = os.environ.get("TERMTRAIL_PYTHON") or venv_python()
    port = free_port()
    moto = subprocess.Popen([py, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
                   AWS_ENDPOINT_URL=endpoint, AWS_EC2_METADATA_DISABLED="true",
                   TERMTRAIL_SPOOL_DIR=os.path.join(WORK, "spool"))
        boto = (f"import boto3, sys, os\n"
                f"c = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1', "
                f"aws_access_key_id='test', aws_secret_access_key='test')\n")
        subprocess.run([py, "-c", boto + "c.create_bucket(Bucket='bench')"], check=True)

        corpus = os.environ.get("CORPUS", os.path.join(WORK, "corpus.txt"))
        mb = os.path.getsize(corpus) / 1e6
        local_dir = os.path.join(WORK, "rec-local")
        t_local, t_s3 = [], []
        for i in range(RUNS):
            subprocess.run(["rm", "-rf", local_dir])
            t_local.append(timed([TT, "rec", "-q", "--headless", "--store", local_dir, "--", "cat", corpus], env))
            t_s3.append(timed([TT, "rec", "-q", "--headless", "--store", f"s3://bench/rec{i}", "--", "cat", corpus], env))
        a, b = statistics.median(t_local), statistics.median(t_s3)
        print(f"rec {mb:.0f} MB of output: local store {a:.2f} s, S3 store (streamed, confirmed) {b:.2f} s; "
              f"ratio S3/local time {b / a:.2f} (median of {RUNS})")
        record("s3", f"rec {mb:.0f} MB into s3:// (moto), streamed and confirmed", b, a, "s", a / b, None, "rec into a local directory")

        files = sorted(glob.glob(os.path.join(WORK, "grep", "*.cast.zst")))
        if not files:
            raise SystemExit("run `python3 bench/player.py grep` first (it makes the grep corpus)")
        up = boto + ("for f in sys.argv[1:]:\n"
                     "    c.upload_file(f, 'bench', 'grep/' + os.path.basename(f))\n")
        subprocess.run([py, "-c", up, *files], check=True)
        size = int(open(os.path.join(WORK, "grep", ".sizes")).read()) / 1e6
        g_local, g_s3 = [], []
        for _ in range(RUNS):
            g_local.append(timed([TT, "grep", "AccessDenied", os.path.join(WORK, "grep")], env))
            g_s3.append(timed([TT, "grep", "AccessDenied", "s3://bench/grep"], env))
        a, b = statistics.median(g_local), statistics.median(g_s3)
        print(f"grep over {len(files)} recordings, {size:.0f} MB uncompressed: local {a:.2f} s, "
              f"S3 (moto, loopback) {b:.2f} s; ratio {b / a:.2f} (target <= 1.5; median of {RUNS})")
        record("s3", f"grep over s3:// (moto), {len(files)} recordings", b, a, "s", a / b, ">= 0.67 (S3 <= 1.5x local)",
               "grep over the local directory")
    finally:
        moto.kill()
        moto.wait()


if __name__ == "__main__":
    main()
