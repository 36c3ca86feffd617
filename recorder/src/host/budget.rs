//! `--max-recording-bytes`: how much output one shell's recording may take.
//! Past the bound the shell is ended: a marker in the recording, a status
//! to its client, the end reason `interrupted` naming the bound, and a
//! count in `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use termtrail_format::seal::EndReason;

use super::attachment::Attachment;
use crate::protocol::status_failure;

/// Shells ended at the bound, over all shells (`/metrics`).
static ENDED: AtomicU64 = AtomicU64::new(0);

/// Shells ended at `--max-recording-bytes`.
pub(crate) fn ended_total() -> u64 {
    ENDED.load(Ordering::Relaxed)
}

/// What spending output bytes leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// Within the bound: record it.
    Within,
    /// These bytes passed the bound: record them, then end the shell.
    JustOver,
    /// Already past the bound: do not record.
    Over,
}

/// One shell's output bound (0: none).
#[derive(Debug)]
pub struct OutputBudget {
    max: u64,
    used: u64,
}

impl OutputBudget {
    /// At most `max` bytes of output (0: no bound).
    pub fn new(max: u64) -> OutputBudget {
        OutputBudget { max, used: 0 }
    }

    /// Counts `n` bytes of output.
    pub fn spend(&mut self, n: usize) -> Spent {
        if self.max == 0 {
            return Spent::Within;
        }
        let before = self.used;
        self.used = self.used.saturating_add(n as u64);
        match (before > self.max, self.used > self.max) {
            (true, _) => Spent::Over,
            (false, true) => Spent::JustOver,
            (false, false) => Spent::Within,
        }
    }

    /// The bound.
    pub fn max(&self) -> u64 {
        self.max
    }
}

/// Marks, tells the client and counts a shell that passed its bound of
/// `max` bytes; the end reason to end it with. The marker is queued before
/// this returns, behind the output already recorded: a marker left to a
/// task of its own could come after the shell's end was sealed, and be lost
/// (seen under load in the conformance suite).
pub async fn over(att: &Attachment, session: &str, shell: &str, max: u64) -> EndReason {
    ENDED.fetch_add(1, Ordering::Relaxed);
    let why = format!(
        "the recording reached its size limit of {max} bytes of output (--max-recording-bytes); the shell was ended"
    );
    tracing::warn!(
        session,
        shell,
        max,
        "recording size limit reached: ending the shell"
    );
    att.recording()
        .record(termtrail_format::event::EventData::Marker(why.clone()))
        .await;
    att.status(status_failure("RecordingLimitReached", 413, &why));
    att.release();
    EndReason::Interrupted { detail: why }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_passed_once_then_nothing_more_is_recorded() {
        let mut b = OutputBudget::new(100);
        assert_eq!(b.spend(60), Spent::Within);
        assert_eq!(b.spend(40), Spent::Within, "exactly at the bound");
        assert_eq!(b.spend(1), Spent::JustOver);
        assert_eq!(b.spend(1), Spent::Over);
        let mut none = OutputBudget::new(0);
        assert_eq!(none.spend(usize::MAX), Spent::Within);
    }
}
