//! `play` in a real terminal (tmux): timing, pause, seek, markers, step,
//! speed, damage, plain files, and the terminal restored afterwards.

use crate::util::*;

/// 30 s with markers at 5 and 10 s; 80x20, smaller than the 100x30 tmux
/// window, so the status line has its own row.
const CAST: &str = r#"{"version": 3, "term": {"cols": 80, "rows": 20}}
[0.0, "o", "start of the show\r\n"]
[1.0, "o", "line one\r\n"]
[4.0, "m", "build"]
[0.0, "o", "line five\r\n"]
[5.0, "m", "deploy"]
[0.0, "o", "line ten\r\n"]
[10.0, "o", "line \u001b[31mtwenty\u001b[0m\r\n"]
[10.0, "o", "the end\r\n"]
"#;

fn start(t: &Tmux, d: &Dir, args: &str) {
    t.start_in(
        d,
        &format!("echo BEFORE-PLAY; $TT play {args} 2>err.txt; echo EXIT=$?"),
    );
}

fn status(t: &Tmux) -> String {
    t.screen().lines().nth(29).unwrap_or_default().to_string()
}

#[track_caller]
fn wait_status(t: &Tmux, text: &str) -> String {
    wait_until(
        15,
        || format!("{text:?} in the status line; screen:\n{}", t.screen()),
        || Some(status(t)).filter(|s| s.contains(text)),
    )
}

#[test]
fn play_seeks_pauses_steps_and_jumps_between_markers() {
    let d = Dir::new();
    std::fs::write(d.join("show.cast"), CAST).unwrap();
    let r = d.run(&["import", "show.cast", "-o", "show.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    let t = Tmux::new(&d);
    start(&t, &d, "show.cast.zst --start 10.5");
    // Everything up to 10.5 s is on the screen at once; 20 s is not yet.
    let s = t.wait_for("line ten");
    assert!(
        s.contains("start of the show") && s.contains("line five"),
        "{s}"
    );
    assert!(!s.contains("twenty"), "{s}");
    assert!(
        !s.contains("BEFORE-PLAY"),
        "not on the alternate screen:\n{s}"
    );
    wait_status(&t, "playing 00:10.");
    assert!(status(&t).contains("/ 00:30.000"), "{}", t.screen());

    t.keys(&["Space"]);
    let paused = wait_status(&t, "paused 00:1");
    // Kept: it shows that something does NOT happen (the clock moving).
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert_eq!(status(&t), paused, "the clock moved while paused");

    // → 5 s, twice: past 20 s "twenty" appears (not played: seeked).
    t.keys(&["Right"]);
    wait_status(&t, "paused 00:15.");
    assert!(!t.screen().contains("twenty"));
    t.keys(&["Right"]);
    wait_status(&t, "paused 00:20.");
    let s = t.wait_for("twenty");
    assert!(!s.contains("the end"), "{s}");
    // ← ← ←: back before 10 s: "line ten" disappears again.
    t.keys(&["Left"]);
    t.keys(&["Left"]);
    t.keys(&["Left"]);
    wait_status(&t, "paused 00:05.");
    let s = t.screen();
    assert!(!s.contains("line ten") && s.contains("line five"), "{s}");
    assert!(
        status(&t).contains("marker 1/2 \"build\""),
        "{}",
        status(&t)
    );

    // ] jumps to the deploy marker (10 s), [ back to build (5 s).
    t.keys(&["]"]);
    wait_status(&t, "paused 00:10.000");
    assert!(status(&t).contains("marker 2/2 \"deploy\""));
    assert!(t.screen().contains("line ten"));
    t.keys(&["["]);
    wait_status(&t, "paused 00:05.000");
    assert!(!t.screen().contains("line ten"));

    // . steps one frame: the next output (line ten, at 10 s), then twenty.
    t.keys(&["."]);
    t.wait_for("line ten");
    wait_status(&t, "paused 00:10.000");
    t.keys(&["."]);
    t.wait_for("twenty");
    wait_status(&t, "paused 00:20.000");

    // + doubles the speed; resume and the end arrives ~5 s later.
    t.keys(&["+"]);
    wait_status(&t, "speed 2x");
    t.keys(&["Space"]);
    let s = t.wait_for("the end");
    assert!(s.contains("twenty"));
    wait_status(&t, "end 00:30.000 / 00:30.000");

    // q: the terminal is back as it was (main screen, cursor shown).
    t.keys(&["q"]);
    let s = t.wait_for("EXIT=0");
    assert!(s.contains("BEFORE-PLAY"), "{s}");
    assert!(
        !s.contains("line five"),
        "the recording stayed on screen:\n{s}"
    );
    let err = std::fs::read_to_string(d.join("err.txt")).unwrap();
    assert_eq!(err, "", "stderr");
}

#[test]
fn play_stops_at_damage_with_the_verify_error() {
    let d = Dir::new();
    let samples = samples();
    let damaged = samples.join("damaged-edited-event.cast.zst");
    let t = Tmux::new(&d);
    start(&t, &d, &format!("{} --speed 4", damaged.display()));
    wait_status(&t, "TAMPERED");
    let s = t.screen();
    assert!(
        !s.contains("AccessGranted"),
        "unverified output shown:\n{s}"
    );
    t.keys(&["q"]);
    t.wait_for("EXIT=1");
    let err = std::fs::read_to_string(d.join("err.txt")).unwrap();
    assert!(
        err.contains("playback stopped") && err.contains("does not verify"),
        "{err}"
    );
}

#[test]
fn play_plain_casts_and_refuses_what_it_cannot_play() {
    let d = Dir::new();
    let samples = samples();
    // A plain v3 file, started past its end: the last screen, paused at the end.
    let t = Tmux::new(&d);
    let v3 = samples.join("failing-command-v3.cast");
    start(&t, &d, &format!("{} --start 1:00:00", v3.display()));
    t.wait_for("error: deploy failed");
    wait_status(&t, "end 00:00.304 / 00:00.304");
    assert!(t.screen().contains("No such file"));
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
    drop(t);

    // An unsealed recording plays to its verified end and says so.
    let t = Tmux::new(&d);
    let unsealed = samples.join("damaged-unsealed.cast.zst");
    start(&t, &d, &format!("{} --start 30", unsealed.display()));
    wait_status(&t, "not sealed: the verified part ends here");
    assert!(t.screen().contains("AccessDenied"));
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
    drop(t);

    // Without a keyboard a plain v2 file plays to its end and exits.
    let t = Tmux::new(&d);
    let v2 = samples.join("failing-command-v2.cast");
    start(&t, &d, &format!("{} --speed 8 </dev/null", v2.display()));
    t.wait_for("EXIT=0");
    drop(t);

    // Not a terminal, bad values, missing files: one-line errors, exit 2.
    let demo = v2.to_string_lossy();
    for (args, want) in [
        (vec!["play", &demo], "needs a terminal"),
        (vec!["play", &demo, "--start", "1:75"], "bad moment"),
        (vec!["play", &demo, "--speed", "0"], "not a positive number"),
        (vec!["play", "missing.cast.zst"], "missing.cast.zst"),
    ] {
        let r = d.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(want), "{args:?}: {r:?}");
        // One line, or clap's error with its usage hint.
        assert!(r.stderr.trim().lines().count() <= 3, "{args:?}: {r:?}");
    }
}

#[test]
fn a_signal_ends_play_and_restores_the_terminal() {
    let d = Dir::new();
    std::fs::write(d.join("show.cast"), CAST).unwrap();
    let t = Tmux::new(&d);
    t.start_in(
        &d,
        "stty -g > stty.before; echo BEFORE-PLAY; \
         (sleep 1.5; pkill -TERM -x -P $$ termtrail) & \
         $TT play show.cast; echo EXIT=$?; stty -g > stty.after",
    );
    t.wait_for("start of the show");
    let s = t.wait_for("EXIT=");
    assert!(s.contains("EXIT=0") && s.contains("BEFORE-PLAY"), "{s}");
    assert!(!s.contains("start of the show"), "{s}");
    assert_eq!(
        wait_for_file(&d.join("stty.before"), 5),
        wait_for_file(&d.join("stty.after"), 5),
        "terminal settings"
    );
}

/// `play ARGS` in a tmux window of `cols`x`rows` (as [`start`] does in the
/// default 100x30 one).
fn start_sized(t: &Tmux, d: &Dir, cols: u16, rows: u16, args: &str) {
    let script = format!(
        "cd {dir}; export HOME={dir}; echo BEFORE-PLAY; {bin} play {args} 2>err.txt; echo EXIT=$?; sleep 60",
        dir = d.path().display(),
        bin = bin()
    );
    let (c, r) = (cols.to_string(), rows.to_string());
    t.cmd(&["new-session", "-d", "-s", "t", "-x", &c, "-y", &r, &script]);
}

/// Row `row` (0-based) of the screen.
fn row_of(t: &Tmux, row: usize) -> String {
    t.screen().lines().nth(row).unwrap_or_default().to_string()
}

#[track_caller]
fn wait_row(t: &Tmux, row: usize, text: &str) -> String {
    wait_until(
        15,
        || format!("{text:?} in row {row}; screen:\n{}", t.screen()),
        || Some(row_of(t, row)).filter(|s| s.contains(text)),
    )
}

/// A 120x35 recording: 34 numbered rows (the first with text at column
/// 101) and an error on the last row, where the cursor stays.
fn big_cast() -> String {
    let mut out = String::new();
    for n in 1..35 {
        let row = format!("row {n:02}");
        if n == 1 {
            out.push_str(&format!("{row:<100}RIGHT-EDGE\r\n"));
        } else {
            out.push_str(&format!("{row}\r\n"));
        }
    }
    out.push_str("error: the build failed on the last row");
    format!(
        "{{\"version\": 3, \"term\": {{\"cols\": 120, \"rows\": 35}}}}\n[0.1, \"o\", {}]\n[30.0, \"o\", \"!\"]\n",
        serde_json::to_string(&out).unwrap()
    )
}

#[test]
fn a_recording_larger_than_the_terminal_shows_the_cursors_rows_says_so_and_pans() {
    let d = Dir::new();
    std::fs::write(d.join("big.cast"), big_cast()).unwrap();
    let t = Tmux::new(&d);
    start_sized(&t, &d, 80, 24, "big.cast");
    // The bottom of the recording, where the cursor (and the error) is.
    let s = t.wait_for("error: the build failed on the last row");
    assert!(s.contains("row 13") && !s.contains("row 12"), "{s}");
    // The status line (its own row, the last) says it does not fit.
    let notice = wait_row(&t, 23, "recording 120x35 > terminal 80x24");
    assert!(notice.contains("rows 13-35/35 cols 1-80/120"), "{notice}");
    // PgUp shows the top rows; > the columns beyond 80.
    t.keys(&["PPage"]);
    let s = t.wait_for("row 01");
    assert!(!s.contains("error: the build failed"), "{s}");
    wait_row(&t, 23, "rows 1-23/35");
    assert!(!s.contains("RIGHT-EDGE"), "{s}");
    t.keys(&[">"]);
    t.wait_for("RIGHT-EDGE");
    wait_row(&t, 23, "cols 41-120/120");
    // ↓ one row; f follows the cursor again: back to the bottom.
    t.keys(&["Down"]);
    wait_row(&t, 23, "rows 2-24/35");
    t.keys(&["f"]);
    t.wait_for("error: the build failed on the last row");
    wait_row(&t, 23, "rows 13-35/35");
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
    let err = std::fs::read_to_string(d.join("err.txt")).unwrap();
    assert_eq!(err, "", "stderr");
}

/// 80x24 (the size of the tmux window below: the status line shows only
/// now and then), a labelled marker at 1 s and an unlabelled one (as rec's
/// Ctrl+\ adds) at 4.5 s.
const MARKED: &str = r#"{"version": 3, "term": {"cols": 80, "rows": 24}}
[0.0, "o", "before the markers\r\n"]
[1.0, "m", "build"]
[0.0, "o", "after build\r\n"]
[3.5, "m", ""]
[0.0, "o", "after the second\r\n"]
[3.0, "o", "the end\r\n"]
"#;

#[test]
fn passing_a_marker_shows_its_label_or_its_number() {
    let d = Dir::new();
    std::fs::write(d.join("marked.cast"), MARKED).unwrap();
    let t = Tmux::new(&d);
    start_sized(&t, &d, 80, 24, "marked.cast --speed 2");
    t.wait_for("after build");
    let s = wait_row(&t, 23, "marker 1/2 \"build\"");
    assert!(s.contains("playing"), "{s}");
    t.wait_for("after the second");
    let s = wait_row(&t, 23, "marker 2/2");
    assert!(!s.contains("\"\""), "an empty label shown: {s}");
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
}

#[test]
fn loop_plays_again_from_the_start() {
    let d = Dir::new();
    std::fs::write(
        d.join("short.cast"),
        "{\"version\": 3, \"term\": {\"cols\": 80, \"rows\": 20}}\n\
         [0.3, \"o\", \"first line\\r\\n\"]\n[0.5, \"o\", \"LAST LINE\\r\\n\"]\n",
    )
    .unwrap();
    let t = Tmux::new(&d);
    start(&t, &d, "short.cast --loop");
    t.wait_for("LAST LINE");
    wait_status(&t, "loop #1");
    // The second pass starts on a fresh screen and plays to the end again.
    wait_status(&t, "loop #2");
    t.wait_for("LAST LINE");
    wait_status(&t, "loop #3");
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
    let err = std::fs::read_to_string(d.join("err.txt")).unwrap();
    assert_eq!(err, "", "stderr");
}

#[test]
fn pause_on_markers_stops_at_each_marker_until_a_key() {
    let d = Dir::new();
    std::fs::write(d.join("show.cast"), CAST).unwrap();
    let t = Tmux::new(&d);
    start(&t, &d, "show.cast --pause-on-markers --start 4 --speed 4");
    let s = wait_status(&t, "paused 00:05.000");
    assert!(s.contains("marker 1/2 \"build\""), "{s}");
    t.wait_for("line five");
    // Kept: it shows that something does NOT happen (playback going on:
    // at 4x, 1.5 s would reach "line ten").
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(status(&t).contains("paused 00:05.000"), "{}", t.screen());
    assert!(!t.screen().contains("line ten"), "{}", t.screen());
    // Space resumes: to the next marker, where it pauses again.
    t.keys(&["Space"]);
    let s = wait_status(&t, "paused 00:10.000");
    assert!(s.contains("marker 2/2 \"deploy\""), "{s}");
    t.wait_for("line ten");
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
}
