#!/usr/bin/env bash
# Every output the player's commands print for the samples (and the foreign
# casts, and any extra directory of recordings), one file per command with
# its exit code, so that two builds can be compared byte for byte:
#
#   bash scripts/outputs.sh OLD_BINARY /tmp/before [EXTRA_DIR]
#   bash scripts/outputs.sh target/release/termtrail /tmp/after [EXTRA_DIR]
#   diff -r /tmp/before /tmp/after
#
# Restructuring work ("behaviour does not change") is checked this way.
# Paths in the outputs are relative to the repository, so the two runs
# must start from checkouts with the same samples/.
set -uo pipefail
bin=$(realpath "$1")
out=$2
extra=${3:-}
cd "$(dirname "$0")/.."
rm -rf "$out"
mkdir -p "$out"
foreign=../shared/foreign-casts
export NO_COLOR=1 TZ=UTC

n=0
run() {
    # run NAME ARGS...: stdout, stderr and the exit code into $out/NAME
    local name=$1
    shift
    n=$((n + 1))
    {
        "$bin" "$@" 2>"$out/$name.err"
        echo "exit=$?"
    } >"$out/$name.out"
    # Temporary paths and elapsed times differ between runs.
    sed -i -E -e "s#/tmp/[A-Za-z0-9._/-]+#/tmp/X#g" -e "s#\"elapsed_ms\":[0-9]+#\"elapsed_ms\":N#" "$out/$name.out" "$out/$name.err"
}

# Every subcommand's help (the CLI must not change).
run help --help
for sub in rec verify export ls recover upload grep play snapshot import keygen serve attach proxy exec; do
    run "help-$sub" "$sub" --help
done
run version --version

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for f in samples/*.cast.zst samples/*.cast; do
    b=$(basename "$f")
    run "verify-$b" verify "$f"
    run "verify-json-$b" verify --json "$f"
    run "export-txt-$b" export "$f" --format txt
    run "export-cast-$b" export "$f" --format cast
    run "export-v2-$b" export "$f" --format cast-v2
    for t in 0 0.5 1 2 5 1:00; do
        run "snapshot-$t-$b" snapshot "$f" --at "$t" --no-cache
    done
    run "snapshot-cached-$b" snapshot "$f" --at 1
done
run verify-key-signed verify --key samples/sample-key.pub samples/signed.cast.zst
run verify-all verify samples/
for args in "ls samples" "ls --json samples" "ls --verify samples" "ls --json --verify samples" \
    "ls $foreign"; do
    run "$(echo "$args" | tr ' /' '__')" $args
done
for pat in AccessDenied denied 'No such file' '[0-9]+' error; do
    p=$(echo "$pat" | tr -c 'A-Za-z0-9' '_')
    run "grep-$p" grep -j 1 "$pat" samples
    run "grep-json-$p" grep -j 1 --json "$pat" samples
    run "grep-c-$p" grep -j 1 -c "$pat" samples
    run "grep-l-$p" grep -j 1 -l "$pat" samples
    run "grep-C2-$p" grep -j 1 -C 2 "$pat" samples
    run "grep-i-$p" grep -j 1 -i "$pat" samples
    run "grep-input-$p" grep -j 1 --input "$pat" samples
    run "grep-foreign-$p" grep -j 1 "$pat" "$foreign"
    run "grep-hash-every-$p" grep -j 1 --hash-every-chunk "$pat" samples
done
run grep-w grep -j 1 -w -F ls samples
run grep-m grep -j 1 -m 1 -e ls -e cat samples
for f in "$foreign"/*.cast; do
    b=$(basename "$f")
    run "export-txt-foreign-$b" export "$f" --format txt
    run "import-foreign-$b" import "$f" -o "$tmp/$b.zst"
    run "verify-import-foreign-$b" verify "$tmp/$b.zst"
    run "export-import-foreign-$b" export "$tmp/$b.zst" --format cast
done
# Bad input: what the user is told.
run bad-verify verify /nonexistent.cast.zst
run bad-grep grep '(' samples
run bad-snapshot snapshot samples/shell-colors.cast.zst --at nonsense
run bad-store ls gs://x/y
if [ -n "$extra" ]; then
    run extra-ls-json ls --json "$extra"
    for pat in AccessDenied timeout password; do
        run "extra-grep-$pat" grep -j 1 "$pat" "$extra"
        run "extra-grep-json-$pat" grep -j 1 --json "$pat" "$extra"
        run "extra-grep-c-$pat" grep -j 1 -c "$pat" "$extra"
    done
fi
echo "$n commands, outputs in $out"
