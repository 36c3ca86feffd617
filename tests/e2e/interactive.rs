//! `rec` in a real terminal: tmux runs it, types into it, resizes it, and
//! reads the screen.

use std::time::Duration;

use crate::util::*;

#[test]
fn interactive_session_with_resize_marker_and_restored_terminal() {
    let d = Dir::new();
    let t = Tmux::new(&d);
    t.start_in(
        &d,
        "env PS1='tt> ' HISTFILE=/dev/null $TT rec --input -o s.cast.zst -- bash --norc --noprofile; \
         echo rc=$?; stty -a > stty.after",
    );
    t.wait_for("tt>");
    t.keys(&["echo hello-$((6*7)); tput cols", "Enter"]);
    t.wait_for("hello-42");
    t.wait_for("100");
    t.keys(&["C-\\"]);
    t.resize(90, 20);
    // Kept: the resize must reach the recorded PTY before the keys do (they
    // race through rec's signal and stdin paths); nothing shows it.
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["clear; tput cols", "Enter"]);
    t.wait_for("90");
    t.keys(&["exit 4", "Enter"]);
    let screen = t.wait_for("rc=4");
    assert!(
        screen.contains("recording sealed (exited with code 4)"),
        "{screen}"
    );
    // The terminal is back in cooked mode with echo on.
    let after = wait_for_file(&d.join("stty.after"), 5);
    let flags: Vec<&str> = after.split_whitespace().collect();
    for f in ["icanon", "echo", "isig", "opost"] {
        assert!(flags.contains(&f), "{f} restored: {after}");
    }

    let v = d.run(&["verify", "s.cast.zst"]);
    assert_eq!(v.code, 0, "{v:?}");
    let text = zstd_dc(&d.join("s.cast.zst"));
    let header = text.lines().next().unwrap();
    assert!(header.contains("\"cols\":100,\"rows\":30"), "{header}");
    assert!(
        text.contains("\"r\", \"90x20\"]"),
        "resize recorded: {text}"
    );
    assert!(text.contains("\"m\", \"\"]"), "marker key recorded: {text}");
    // tmux types the text as one paste or key by key; either way it is all there.
    let typed: String = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix('[')?
                .split_once(", \"i\", ")
                .map(|(_, d)| d.to_string())
        })
        .map(|d| serde_json::from_str::<String>(d.trim_end_matches(']')).unwrap())
        .collect();
    assert!(
        typed.contains("echo hello-$((6*7)); tput cols\r"),
        "input recorded: {typed:?}"
    );
    assert!(typed.contains("exit 4\r"), "{typed:?}");
    assert!(
        !text.contains("\\u001c"),
        "the marker key is not passed to the shell: {text}"
    );
    assert!(text.contains("\"x\", \"4\"]"));
}

#[test]
fn sigterm_in_raw_mode_restores_the_terminal_and_seals_as_interrupted() {
    let d = Dir::new();
    let t = Tmux::new(&d);
    t.start_in(
        &d,
        "bash -c 'echo $$ > rec.pid; exec $TT rec -q -o s.cast.zst -- sleep 100'; echo rc=$?; stty -a > stty.after",
    );
    let pid = wait_for_file(&d.join("rec.pid"), 10);
    // Let rec set up its terminal (raw mode) before the signal.
    let tty = t.cmd(&["display-message", "-p", "-t", "t", "#{pane_tty}"]);
    let raw = poll_until(10, || stty_of(tty.trim()), |s| s.contains("-icanon"));
    assert!(raw.contains("-icanon"), "rec set no raw mode: {raw}");
    sigterm(pid.trim());
    t.wait_for("rc=");
    let after = wait_for_file(&d.join("stty.after"), 5);
    let flags: Vec<&str> = after.split_whitespace().collect();
    for f in ["icanon", "echo", "isig"] {
        assert!(flags.contains(&f), "{f} restored: {after}");
    }
    let v = d.run(&["verify", "s.cast.zst"]);
    assert_eq!(v.code, 0, "{v:?}");
    assert!(
        v.stdout
            .contains("interrupted (termtrail received signal SIGTERM)"),
        "{}",
        v.stdout
    );
}

/// `stty -a` of terminal `tty`.
fn stty_of(tty: &str) -> String {
    let out = std::process::Command::new("stty")
        .args(["-a", "-F", tty])
        .output()
        .expect("stty");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_marker_added_at_the_terminal_is_confirmed_in_its_title_for_a_moment() {
    let d = Dir::new();
    let t = Tmux::new(&d);
    t.start_in(
        &d,
        "env PS1='tt> ' HISTFILE=/dev/null $TT rec -o s.cast.zst -- bash --norc --noprofile; echo rc=$?",
    );
    t.wait_for("tt>");
    let title = || t.cmd(&["display-message", "-p", "-t", "t", "#{pane_title}"]);
    let before = title();
    assert!(!before.contains("marker"), "{before}");
    t.keys(&["C-\\"]);
    let shown = poll_until(10, title, |s| s.contains("termtrail: marker 1 added at "));
    assert!(shown.contains("termtrail: marker 1 added at "), "{shown}");
    // The screen is the shell's: nothing was drawn on it.
    let screen = t.screen();
    assert!(!screen.contains("marker 1"), "{screen}");
    // The title from before comes back (after two seconds).
    let after = poll_until(10, title, |s| *s == before);
    assert_eq!(after, before, "the title is restored");
    t.keys(&["exit", "Enter"]);
    t.wait_for("rc=0");
    let text = zstd_dc(&d.join("s.cast.zst"));
    assert!(text.contains("\"m\", \"\"]"), "marker recorded: {text}");
    assert!(
        !text.contains("termtrail: marker"),
        "the confirmation is not recorded: {text}"
    );
}
