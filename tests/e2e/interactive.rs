//! `rec` in a real terminal: tmux runs it, types into it, resizes it, and
//! reads the screen.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// A tmux server of its own (a fresh socket each time: a server being
    /// killed must not take a new session with it).
    pub fn new(d: &Dir) -> Tmux {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Tmux {
            socket: d.join(&format!("tmux-{n}.sock")),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux (installed by scripts/test)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `script` in a new 100x30 session named `t`.
    pub fn start(&self, script: &str) {
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "100",
            "-y",
            "30",
            script,
        ]);
    }

    pub fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    #[track_caller]
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {text:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn interactive_session_with_resize_marker_and_restored_terminal() {
    let d = Dir::new();
    let t = Tmux::new(&d);
    let script = format!(
        "cd {dir}; env HOME={dir} PS1='tt> ' HISTFILE=/dev/null {bin} rec --input -o s.cast.zst -- bash --norc --noprofile; \
         echo rc=$?; stty -a > stty.after; sleep 60",
        dir = d.path().display(),
        bin = bin()
    );
    t.start(&script);
    t.wait_for("tt>");
    t.cmd(&[
        "send-keys",
        "-t",
        "t",
        "echo hello-$((6*7)); tput cols",
        "Enter",
    ]);
    t.wait_for("hello-42");
    t.wait_for("100");
    t.cmd(&["send-keys", "-t", "t", "C-\\"]);
    t.cmd(&["resize-window", "-t", "t", "-x", "90", "-y", "20"]);
    std::thread::sleep(Duration::from_millis(300));
    t.cmd(&["send-keys", "-t", "t", "clear; tput cols", "Enter"]);
    t.wait_for("90");
    t.cmd(&["send-keys", "-t", "t", "exit 4", "Enter"]);
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
    let script = format!(
        "cd {dir}; bash -c 'echo $$ > rec.pid; exec {bin} rec -q -o s.cast.zst -- sleep 100'; echo rc=$?; stty -a > stty.after; sleep 60",
        dir = d.path().display(),
        bin = bin()
    );
    t.start(&script);
    let pid = wait_for_file(&d.join("rec.pid"), 10);
    // Let rec set up its terminal before the signal.
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        Command::new("kill")
            .args(["-TERM", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
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
