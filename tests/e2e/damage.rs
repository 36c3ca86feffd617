//! A damaged recording gets one verdict everywhere: `snapshot`, `play`,
//! `grep` and `ls` agree with `verify` (docs/format.md §7), whatever the
//! keyframe cache holds.

use crate::util::*;

/// Overwrites the byte at `at` of `file` in `d` with `byte`.
fn poke(d: &Dir, file: &str, at: u64, byte: u8) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(d.join(file))
        .unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[byte]).unwrap();
}

/// A recording of three segments (about 8 MB of base64 output), its first
/// segment's frame covering byte 1,000,000.
fn three_segments(d: &Dir, file: &str) {
    d.rec(
        file,
        "head -c 6000000 /dev/urandom | base64 -w 76; echo the-end",
    );
    let r = d.run(&["verify", file]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn a_warm_keyframe_cache_does_not_hide_damage_from_snapshot() {
    let d = Dir::new();
    three_segments(&d, "h.cast.zst");
    // Warms the cache: the last keyframe is in the last segment.
    let r = d.run(&["snapshot", "--at", "1h", "h.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("the-end"), "{r:?}");
    poke(&d, "h.cast.zst", 1_000_000, 0);
    let v = d.run(&["verify", "h.cast.zst"]);
    assert_eq!(v.code, 1, "{v:?}");
    for flags in [&[][..], &["--no-cache"][..]] {
        let mut args = vec!["snapshot", "--at", "1h", "h.cast.zst"];
        args.extend_from_slice(flags);
        let r = d.run(&args);
        assert_eq!(r.code, 1, "{flags:?}: {r:?}");
        assert!(!r.stdout.contains("the-end"), "{flags:?}: {r:?}");
        assert!(
            r.stderr.contains("does not verify") && r.stderr.lines().count() == 1,
            "{flags:?}: {r:?}"
        );
    }
    // Before the damage: the screen, with the warning help promises.
    let r = d.run(&["snapshot", "--at", "0", "h.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("warning: the recording does not verify"),
        "{r:?}"
    );
}

#[test]
fn play_from_after_damage_stops_with_exit_1_whatever_the_cache_holds() {
    let d = Dir::new();
    three_segments(&d, "h.cast.zst");
    let r = d.run(&["snapshot", "--at", "1h", "h.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    poke(&d, "h.cast.zst", 1_000_000, 0);
    for flags in ["", "--no-cache"] {
        let t = Tmux::new(&d);
        t.start_in(
            &d,
            &format!("$TT play {flags} --start 1h h.cast.zst 2>err.txt; echo EXIT=$?"),
        );
        t.wait_for("EXIT=");
        let s = t.screen();
        assert!(s.contains("EXIT=1"), "{flags}: {s}");
        let err = std::fs::read_to_string(d.join("err.txt")).unwrap();
        assert!(
            err.contains("playback stopped") && err.contains("does not verify"),
            "{flags}: {err}"
        );
    }
}

/// A small sealed recording.
fn small(d: &Dir, file: &str) {
    d.rec(file, "echo hello; seq 1 20");
}

#[test]
fn snapshot_refuses_a_segment_whose_frame_is_not_the_indexed_one() {
    let d = Dir::new();
    small(&d, "t5.cast.zst");
    // In the frame header: the text still decompresses and its chunks
    // verify, the frame's SHA-256 in the index does not.
    poke(&d, "t5.cast.zst", 5, 0x5a);
    let v = d.run(&["verify", "t5.cast.zst"]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stdout.contains("index frame of segment 0"), "{v:?}");
    let r = d.run(&["snapshot", "--no-cache", "--at", "1h", "t5.cast.zst"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("index frame of segment 0 does not match"),
        "{r:?}"
    );
}

#[test]
fn a_header_segment_that_does_not_decompress_is_tampered_everywhere() {
    let d = Dir::new();
    small(&d, "s.cast.zst");
    std::fs::copy(d.join("s.cast.zst"), d.join("t20.cast.zst")).unwrap();
    poke(&d, "t20.cast.zst", 20, 0x5a);
    let words = "segment 0 does not decompress (damaged)";
    let v = d.run(&["verify", "t20.cast.zst"]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stdout.contains(&format!("TAMPERED: {words}")), "{v:?}");
    for (args, code) in [
        (&["ls", "t20.cast.zst"][..], 1),
        (&["snapshot", "--at", "0", "t20.cast.zst"][..], 1),
        // grep's exit code for a damaged recording is 2 (its --help).
        (&["grep", "x", "t20.cast.zst"][..], 2),
    ] {
        let r = d.run(args);
        assert_eq!(r.code, code, "{args:?}: {r:?}");
        assert!(r.stderr.contains(words), "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {r:?}");
        assert!(!r.stderr.contains("corruption"), "{args:?}: {r:?}");
    }
    let r = d.run(&["grep", "--json", "x", "t20.cast.zst"]);
    assert!(r.stdout.contains(r#""tampered":true"#), "{r:?}");

    // Cut inside the header: verify's UNSEALED, 0 chunks.
    let bytes = std::fs::read(d.join("s.cast.zst")).unwrap();
    std::fs::write(d.join("cut.cast.zst"), &bytes[..150]).unwrap();
    let v = d.run(&["verify", "cut.cast.zst"]);
    assert_eq!(v.code, 3, "{v:?}");
    for (args, code) in [
        (&["ls", "cut.cast.zst"][..], 0),
        (&["snapshot", "--at", "0", "cut.cast.zst"][..], 3),
        (&["grep", "x", "cut.cast.zst"][..], 2),
    ] {
        let r = d.run(args);
        assert_eq!(r.code, code, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("intact but UNSEALED") && r.stderr.contains("0 chunks"),
            "{args:?}: {r:?}"
        );
        assert!(!r.stderr.contains("incomplete frame"), "{args:?}: {r:?}");
    }
}

#[test]
fn an_index_frame_that_does_not_match_is_named_by_its_members_in_one_short_line() {
    let d = Dir::new();
    small(&d, "t5.cast.zst");
    poke(&d, "t5.cast.zst", 5, 0x5a);
    let want = "index frame of segment 0 does not match: sha256 differs";
    let v = d.run(&["verify", "t5.cast.zst"]);
    assert_eq!(v.code, 1, "{v:?}");
    let g = d.run(&["grep", "hello", "t5.cast.zst"]);
    let x = d.run(&["export", "--allow-tampered", "-o", "x.txt", "t5.cast.zst"]);
    let banner = std::fs::read_to_string(d.join("x.txt")).unwrap_or_default();
    for (what, text) in [
        ("verify", &v.stdout),
        ("grep", &g.stderr),
        ("export", &banner),
    ] {
        assert!(text.contains(want), "{what}: {text}\n{x:?}");
        assert!(!text.contains("SegmentEntry"), "{what}: {text}");
        let line = text.lines().find(|l| l.contains(want)).unwrap();
        assert!(line.len() < 300, "{what}: {line}");
    }
}

#[test]
fn ls_gives_an_unsealed_recording_the_duration_verify_verifies() {
    let d = Dir::new();
    // Chunks a few blocks long, in one segment: a cut inside the segment's
    // frame leaves whole chunks before it and no index entry.
    d.rec(
        "s.cast.zst",
        "for i in 1 2 3 4; do seq 1 30000; sleep 0.3; done",
    );
    let bytes = std::fs::read(d.join("s.cast.zst")).unwrap();
    let mut nonzero = 0;
    for cut in [bytes.len() / 2, bytes.len() * 3 / 4, bytes.len() - 5] {
        std::fs::write(d.join("c.cast.zst"), &bytes[..cut]).unwrap();
        let v = d.run(&["verify", "c.cast.zst"]);
        let Some(upto) = v.stdout.split("verified up to ").nth(1) else {
            continue;
        };
        let upto = upto.split_whitespace().next().unwrap().to_string();
        let l = d.run(&["ls", "--long", "c.cast.zst"]);
        assert_eq!(l.code, 0, "{l:?}");
        let row = l.stdout.lines().nth(1).unwrap_or_default().to_string();
        assert_eq!(
            row.split_whitespace().nth(1),
            Some(upto.as_str()),
            "cut at {cut}: {v:?} {l:?}"
        );
        nonzero += usize::from(upto != "00:00.000");
    }
    assert!(nonzero > 0, "no cut kept a verified chunk");
}
