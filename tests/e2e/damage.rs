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
