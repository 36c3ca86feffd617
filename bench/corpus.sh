#!/usr/bin/env bash
# Builds bench/work/corpus.txt: ~200 MiB of real terminal output (colour
# listings, find output, coloured grep over source code), like the corpus of
# shared/reference/baselines.md §4. Not byte-identical across machines; every
# figure in docs/performance.md is a ratio against peers on the same file.
set -euo pipefail
cd "$(dirname "$0")"
work=${BENCH_WORK:-work}
mkdir -p "$work"
out=${CORPUS:-$work/corpus.txt}
size=${CORPUS_BYTES:-209715200}
if [ -f "$out" ] && [ "$(stat -c %s "$out")" -eq "$size" ]; then exit 0; fi
src="${CARGO_HOME:-$HOME/.cargo}/registry/src"
{
    (cd / && ls -laR --color=always usr 2>/dev/null) || true
    (cd / && ls -lahR --color=always --time-style=full-iso usr etc var/lib 2>/dev/null) || true
    (cd / && find . -xdev -printf '%M %4n %-8u %10s %TY-%Tm-%Td %TH:%TM %p\n' 2>/dev/null | head -c 31457280) || true
    for i in 1 2 3 4 5 6 7 8; do
        grep -rn --color=always -E 'fn |impl |struct ' "$src" 2>/dev/null || true
        grep -rn --color=always -E 'pub |let |use ' "$src" 2>/dev/null || true
    done
} | head -c "$size" > "$out"
ls -l "$out"
