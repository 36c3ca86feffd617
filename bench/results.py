"""One place where the bench scripts put what they measured, so that
`bench/run` can print one table of ratios. A script calls `record(...)`
next to its own print; the figures go to the JSON Lines file named by
BENCH_RESULTS (nothing is written when it is unset, so each script still
runs alone)."""

import json, os


def record(group, what, ours, peer=None, unit="", ratio=None, target=None, note=""):
    """One row: `ours` measured for termtrail, `peer` for what it is compared
    with in the same run (None when there is no peer), `ratio` how many
    times better termtrail is (> 1: better; the caller knows which way
    round a unit is better), `target` the ratio aimed at, as text
    (e.g. ">= 0.95"), `note` what the peer is."""
    path = os.environ.get("BENCH_RESULTS")
    if not path:
        return
    row = {"group": group, "what": what, "ours": ours, "peer": peer, "unit": unit,
           "ratio": ratio, "target": target, "note": note}
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
