#!/usr/bin/env python3
"""Prints the rows bench/results.py collected as one table (bench/run calls
this). Every ratio reads the same way: how many times better termtrail is
than the peer measured in the same run (> 1: termtrail is faster, smaller
or lighter). A target given as ">= X" is checked against the ratio; any
other target is a note. With BENCH_QUICK set (bench/run --quick: tiny
inputs, debug build) nothing is checked."""

import json, os, re, sys


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    head = ["", "measure", "termtrail", "peer", "unit", "ratio", "target", "peer is"]
    table = []
    for r in rows:
        ratio = r["ratio"]
        target = r["target"] or ""
        m = re.match(r">=\s*([0-9.]+)", target)
        if m and ratio is not None and not os.environ.get("BENCH_QUICK"):
            target += " ✔" if ratio >= float(m.group(1)) else " ✘ missed"
        table.append([r["group"], r["what"], fmt(r["ours"]), fmt(r["peer"]), r["unit"],
                      "-" if ratio is None else f"{ratio:.2f}×", target, r["note"]])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for t in table:
        print(line(t))
    print("\nratio: how many times better termtrail is than the peer measured in the same run "
          "(> 1: faster, smaller or lighter).")


if __name__ == "__main__":
    main(sys.argv[1])
