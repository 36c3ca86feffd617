//! Fault injection (issue 15 item 3): recorders killed with SIGKILL at
//! random moments (`kill`), and a full disk under the recording or spool
//! directory (`disk`). What is guaranteed and measured is in
//! docs/reliability.md.
//!
//! Shared here: the seeded random moments (`TERMTRAIL_FAULT_SEED`
//! reproduces a run, the seed is printed when a trial fails), the number of
//! trials (`TERMTRAIL_FAULT_TRIALS`, a few by default), the printing
//! program whose every line the test can account for, and the result lines
//! a long run collects for the docs (`TERMTRAIL_FAULT_REPORT=FILE`).

mod disk;
mod kill;
mod printer;

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

pub use printer::*;

/// A small seeded generator (SplitMix64): the random moments of a run.
pub struct Rng(u64);

impl Rng {
    /// A generator for the test `name`: seeded by `TERMTRAIL_FAULT_SEED`,
    /// else by the clock. The seed is printed if the test fails.
    pub fn for_test(name: &'static str) -> (Rng, SeedNote) {
        let seed = std::env::var("TERMTRAIL_FAULT_SEED")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        (Rng(seed), SeedNote { name, seed })
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Prints the seed of a test that panics (the harness shows it with the
/// failure): `TERMTRAIL_FAULT_SEED=N` runs the same moments again.
pub struct SeedNote {
    name: &'static str,
    seed: u64,
}

impl Drop for SeedNote {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{}: failed with TERMTRAIL_FAULT_SEED={} (set it to reproduce the same moments)",
                self.name, self.seed
            );
        }
    }
}

/// Trials per fault: `TERMTRAIL_FAULT_TRIALS` (the long run: 50), else
/// `default` (a few, for the default test run).
pub fn trials(default: usize) -> usize {
    std::env::var("TERMTRAIL_FAULT_TRIALS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// The result of one fault's trials: printed on the process's stderr
/// (not captured by the harness: it shows for passing tests) and appended
/// as a JSON line to `TERMTRAIL_FAULT_REPORT` when that is set.
pub fn report(fault: &str, trials: usize, outcome: &str, max_loss_ms: Option<u64>) {
    let loss = max_loss_ms.map_or("n/a".to_string(), |ms| format!("{ms} ms"));
    let _ = writeln!(
        std::io::stderr().lock(),
        "FAULTS {fault}: {trials} trials, {outcome}, max output lost {loss}"
    );
    if let Ok(path) = std::env::var("TERMTRAIL_FAULT_REPORT")
        && !path.is_empty()
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let line = serde_json::json!({
            "fault": fault,
            "trials": trials,
            "outcome": outcome,
            "max_loss_ms": max_loss_ms,
        });
        let _ = writeln!(f, "{line}");
    }
}

/// Microseconds since the Unix epoch (the clock the printer's `$EPOCHREALTIME`
/// reads).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
