//! The progress bar long-running commands (`ls`, `grep`, `snapshot`,
//! `play`) show on stderr.

use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

/// A progress bar on stderr, shown only on a terminal and only when the
/// work takes longer than a moment.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: &'static str,
    start: Instant,
}

impl Progress {
    /// A bar labelled `label`, not shown yet.
    pub fn new(label: &'static str) -> Progress {
        Progress {
            bar: None,
            label,
            start: Instant::now(),
        }
    }

    /// `done` of `total` are done; shows the bar once the work has taken
    /// a moment.
    pub fn update(&mut self, done: usize, total: usize) {
        if self.bar.is_none() {
            if self.start.elapsed() < Duration::from_millis(300) || !io::stderr().is_terminal() {
                return;
            }
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(self.label);
            self.bar = Some(bar);
        }
        if let Some(b) = &self.bar {
            b.set_position(done as u64);
        }
    }

    /// Runs `f` with the bar (if shown) out of the way of other output.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
