//! A real terminal for the tests: tmux runs a script in a 100x30 pane, types
//! into it and reads its screen.

use std::path::PathBuf;
use std::process::Command;

use super::{Dir, bin, wait_until};

/// A tmux server of the test's own; killed on drop.
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

    /// Runs `tmux ARGS` on this server; returns its stdout.
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

    /// Runs `script` (bash) in `d`, with HOME there and `$TT` naming the
    /// binary under test; the pane stays open a minute after it ends, so
    /// that what it printed last can be read.
    pub fn start_in(&self, d: &Dir, script: &str) {
        self.start(&format!(
            "cd {dir}; export HOME={dir} TT={bin}; {script}; sleep 60",
            dir = d.path().display(),
            bin = bin()
        ));
    }

    /// Types `keys` into session `t` (tmux key names, or text).
    pub fn keys(&self, keys: &[&str]) {
        self.cmd(&[&["send-keys", "-t", "t"][..], keys].concat());
    }

    /// Changes the pane's size.
    pub fn resize(&self, cols: u16, rows: u16) {
        let (c, r) = (cols.to_string(), rows.to_string());
        self.cmd(&["resize-window", "-t", "t", "-x", &c, "-y", &r]);
    }

    /// The text on the screen.
    pub fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    /// The screen once it shows `text` (within 15 s).
    #[track_caller]
    pub fn wait_for(&self, text: &str) -> String {
        wait_until(
            15,
            || format!("{text:?}; screen:\n{}", self.screen()),
            || Some(self.screen()).filter(|s| s.contains(text)),
        )
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}
