//! The player: `snapshot` (keyframes, cache, plain files, damage, bad input).

use crate::util::*;

/// A small asciicast v2 file with known times.
const CAST: &str = r#"{"version": 2, "width": 40, "height": 6}
[1.0, "o", "hello world\r\n"]
[2.0, "o", "\u001b[2J\u001b[Hcleared"]
[3.0, "o", "\r\n\u001b[1;32mgreen\u001b[0m done"]
[4.0, "o", "\u001b[?1049h\u001b[Hfull screen app"]
[5.0, "o", "\u001b[?1049lback"]
"#;

fn setup() -> Dir {
    let d = Dir::new();
    std::fs::write(d.join("demo.cast"), CAST).unwrap();
    let r = d.run(&["import", "demo.cast", "-o", "demo.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    d
}

#[test]
fn snapshot_shows_the_screen_at_any_moment() {
    let d = setup();
    for file in ["demo.cast.zst", "demo.cast"] {
        let at = |t: &str| {
            let r = d.run(&["snapshot", file, "--at", t]);
            assert_eq!(r.code, 0, "{file} at {t}: {r:?}");
            r.stdout
        };
        assert_eq!(at("0.5"), "", "{file}");
        assert_eq!(at("1.5"), "hello world\n", "{file}");
        assert_eq!(at("0:02.5"), "cleared\n", "{file}");
        assert_eq!(at("3"), "cleared\ngreen done\n", "{file}");
        assert_eq!(at("4.2"), "full screen app\n", "{file}");
        assert_eq!(at("0:00:05"), "cleared\ngreen doneback\n", "{file}");
        let c = d.run(&["snapshot", file, "--at", "3.5", "--color"]);
        assert!(
            c.stdout.contains("\x1b[0;1;38;5;2mgreen\x1b[0m"),
            "{:?}",
            c.stdout
        );
    }
    // The first snapshot of the .cast.zst built and cached its keyframes.
    let cached: Vec<_> = std::fs::read_dir(d.join(".cache/termtrail/keyframes"))
        .unwrap()
        .collect();
    assert_eq!(cached.len(), 1);
    // Past the end: the last screen, with a note.
    let r = d.run(&["snapshot", "demo.cast.zst", "--at", "99"]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("past the end"), "{r:?}");
}

#[test]
fn snapshot_refuses_bad_times_and_damaged_recordings() {
    let d = setup();
    let r = d.run(&["snapshot", "demo.cast.zst", "--at", "1:75"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad moment \"1:75\""), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    let samples = samples();
    let damaged = samples.join("damaged-edited-event.cast.zst");
    let r = d.run(&[
        "snapshot",
        &damaged.to_string_lossy(),
        "--at",
        "1000",
        "--no-cache",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("does not verify"), "{r:?}");
    // Before the damage (chunk 1 starts after 0.407 s) the screen is shown,
    // with a warning.
    let r = d.run(&["snapshot", &damaged.to_string_lossy(), "--at", "0.3"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with('$'), "{r:?}");
    assert!(
        r.stderr.contains("does not verify after 00:00.407"),
        "{r:?}"
    );
    let r = d.run(&["snapshot", "nonexistent.cast.zst", "--at", "1"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nonexistent.cast.zst"), "{r:?}");
}
