#!/usr/bin/env python3
"""Regenerates samples/: real recordings made with `termtrail rec`, plain
exports, and deliberately damaged copies. Run from the repository root after
`cargo build`:  python3 samples/make_samples.py

The damaged copies are made by editing the decompressed text and recompressing
it with the zstd CLI (so zstd itself sees nothing wrong), or by cutting and
flipping bytes of the file. samples/MANIFEST lists each file with the exit code
`termtrail verify` must give it; tests/e2e/samples.rs checks that."""

import os, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(ROOT, "..", "target", "debug", "termtrail")
SEG_MAGIC = bytes([0x5D, 0x2A, 0x4D, 0x18])


def rec(name, argv, paced_input=None, extra=()):
    path = os.path.join(ROOT, name)
    if os.path.exists(path):
        os.remove(path)
    env = dict(os.environ, TERM="xterm-256color", SHELL="/bin/bash", HISTFILE="/dev/null", PS1="$ ")
    p = subprocess.Popen([BIN, "rec", "--headless", "-q", *extra, "-o", path, "--", *argv],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd="/usr/share")
    for delay, text in paced_input or []:
        time.sleep(delay)
        p.stdin.write(text.encode())
        p.stdin.flush()
    p.stdin.close()
    p.wait()
    return path


def split(path):
    """(decompressed text, bytes from the first segment-index frame on)."""
    raw = open(path, "rb").read()
    at = raw.index(SEG_MAGIC + b"", 0)
    while raw[at + 8:at + 14] != b"TTSEG1":
        at = raw.index(SEG_MAGIC, at + 1)
    text = subprocess.run(["zstd", "-dc"], input=raw, capture_output=True, check=True).stdout
    return text, raw[at:], raw


def chunks(text):
    lines = text.split(b"\n")[:-1]
    header, rest = lines[0], lines[1:]
    out, cur = [], []
    for l in rest:
        cur.append(l)
        if l.startswith(b"#tt "):
            out.append(cur)
            cur = []
    assert not cur
    return header, out


def rebuild(header, chs):
    return b"\n".join([header] + [l for c in chs for l in c]) + b"\n"


def write_damaged(name, text, tail):
    comp = subprocess.run(["zstd", "-q", "-3", "-c"], input=text, capture_output=True, check=True).stdout
    open(os.path.join(ROOT, name), "wb").write(comp + tail)


def resealed(raw, edit):
    """`raw` with its segments' text edited by `edit` and, as a forger who
    knows the format would, every frame hash, index entry and the seal
    recomputed (unsigned) — but not the chunk records inside the text."""
    import hashlib, json, struct
    total = struct.unpack("<I", raw[-12:-8])[0]
    payload = raw[len(raw) - total + 8:]
    body_bytes = payload[len(b"TTSEAL1\n"):payload.index(b"\nseal=")]
    body = json.loads(body_bytes)
    out, entries = b"", []
    for e in body["segments"]:
        frame = raw[e["offset"]:e["offset"] + e["length"]]
        text = subprocess.run(["zstd", "-dc"], input=frame, capture_output=True, check=True).stdout
        new_text = edit(text)
        assert len(new_text) == len(text), "an edit that keeps lengths (records give them)"
        if new_text != text:
            frame = subprocess.run(["zstd", "-q", "-3", "-c"], input=new_text, capture_output=True, check=True).stdout
        e = dict(e, offset=len(out), length=len(frame), sha256=hashlib.sha256(frame).hexdigest())
        index = b"TTSEG1\n" + json.dumps(e, separators=(",", ":")).encode() + b"\n"
        out += frame + SEG_MAGIC + struct.pack("<I", len(index)) + index
        entries.append(e)
    body["segments"] = entries
    body_bytes = json.dumps(body, separators=(",", ":")).encode()
    seal = hashlib.sha256(b"termtrail/seal/v1\0" + bytes.fromhex(body["last_link"]) + body_bytes).hexdigest()
    payload = b"TTSEAL1\n" + body_bytes + b"\nseal=" + seal.encode() + b"\n"
    payload += struct.pack("<I", len(payload) + 8 + 12) + b"TTSEALv1"
    return out + bytes([0x5C, 0x2A, 0x4D, 0x18]) + struct.pack("<I", len(payload)) + payload


def write_resealed(shell):
    raw = open(shell, "rb").read()
    forged = resealed(raw, lambda t: t.replace(b"AccessDenied", b"AccessGrant!"))
    open(os.path.join(ROOT, "damaged-resealed-event.cast.zst"), "wb").write(forged)


def main():
    shell = rec("shell-colors.cast.zst", ["bash", "--norc", "--noprofile"], [
        (0.4, "ls --color=always -l /usr/share | head -n 12\n"),
        (1.1, "printf '\\033[1;32mok\\033[0m \\033[31merror: AccessDenied\\033[0m caf\\303\\251 \\377\\n'\n"),
        (1.1, "grep --color=always -n bash /etc/shells\n"),
        (1.1, "exit\n"),
    ], extra=["--input", "--title", "shell session with colours"])
    rec("fullscreen-vim.cast.zst", ["vim", "-Nu", "NONE", "-n", "/tmp/termtrail-sample.txt"], [
        (0.8, "ihello from vim\x1b"),
        (0.6, ":set number\r"),
        (0.6, "o\x1b[1;32mline two\x1b"),
        (0.6, ":q!\r"),
    ], extra=["--title", "full-screen program"])
    rec("failing-command.cast.zst", ["bash", "-c", "echo 'deploying...'; sleep 0.3; ls /nonexistent-dir; echo 'error: deploy failed' >&2; exit 2"],
        extra=["--title", "a failing command"])
    subprocess.run([BIN, "export", os.path.join(ROOT, "failing-command.cast.zst"), "--format", "cast-v2", "-o", os.path.join(ROOT, "failing-command-v2.cast")], check=True)
    subprocess.run([BIN, "export", os.path.join(ROOT, "failing-command.cast.zst"), "-o", os.path.join(ROOT, "failing-command-v3.cast")], check=True)
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "sample.key")
        subprocess.run([BIN, "keygen", key], check=True, capture_output=True)
        os.replace(key + ".pub", os.path.join(ROOT, "sample-key.pub"))
        rec("signed.cast.zst", ["bash", "-c", "echo signed session; id -un"], extra=["--sign-key", key])

    text, tail, raw = split(shell)
    header, chs = chunks(text)
    assert len(chs) >= 4, f"need several chunks, got {len(chs)}"
    # A changed character in an event line (recompressed).
    edited = text.replace(b"AccessDenied", b"AccessGranted", 1)
    assert edited != text
    write_damaged("damaged-edited-event.cast.zst", edited, tail)
    # A changed character in a record line (recompressed).
    write_damaged("damaged-edited-record.cast.zst", text.replace(b"#tt chunk=1 t=", b"#tt chunk=1 t=9", 1), tail)
    # A dropped chunk, reordered chunks, a duplicated chunk.
    write_damaged("damaged-dropped-chunk.cast.zst", rebuild(header, chs[:1] + chs[2:]), tail)
    write_damaged("damaged-reordered-chunks.cast.zst", rebuild(header, [chs[0], chs[2], chs[1]] + chs[3:]), tail)
    write_damaged("damaged-duplicated-chunk.cast.zst", rebuild(header, chs[:2] + chs[1:]), tail)
    # A chunk spliced in from another recording.
    other, _, _ = split(os.path.join(ROOT, "failing-command.cast.zst"))
    _, other_chs = chunks(other)
    write_damaged("damaged-spliced-chunk.cast.zst", rebuild(header, chs[:1] + other_chs[:1] + chs[2:]), tail)
    # A flipped bit in the compressed bytes.
    flipped = bytearray(raw)
    flipped[len(raw) // 3] ^= 0x04
    open(os.path.join(ROOT, "damaged-flipped-bit.cast.zst"), "wb").write(flipped)
    # A forged seal: the end reason's exit code changed.
    at = raw.rindex(b'"code":0')
    forged = bytearray(raw)
    forged[at + 7] = ord("5")
    open(os.path.join(ROOT, "damaged-forged-seal.cast.zst"), "wb").write(forged)
    # Cut inside the segment; cut just before the seal (an interrupted recorder).
    open(os.path.join(ROOT, "damaged-truncated.cast.zst"), "wb").write(raw[: len(raw) // 2])
    seal_at = raw.rindex(bytes([0x5C, 0x2A, 0x4D, 0x18]))
    open(os.path.join(ROOT, "damaged-unsealed.cast.zst"), "wb").write(raw[:seal_at])
    # An edited event with every hash outside the chunks recomputed.
    write_resealed(shell)
    print("samples regenerated; review `git diff --stat samples/`")


if __name__ == "__main__":
    sys.exit(main())
