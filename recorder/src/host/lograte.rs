//! Rate limits for the host's per-connection log lines (refusals, bad
//! requests, disconnects, limits hit): at most `--log-rate` lines per second
//! of each kind, then one "suppressed N similar messages" line per kind
//! and second, so a connection flood cannot fill the disk through the log
//! (17,056 connections in 10 s once grew it by 1.1 GB).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use tokio::time::Instant;

/// What a rate-limited line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A request refused (authentication, policy, shell limit, bad ids).
    Refusal,
    /// A request that was not HTTP, came too slowly, or a bad frame.
    BadRequest,
    /// A client connected, left, was closed or detached.
    Connection,
    /// A host limit was hit (connections, terminal size, paused output).
    Limit,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::Refusal,
        Kind::BadRequest,
        Kind::Connection,
        Kind::Limit,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Refusal => "refusal",
            Kind::BadRequest => "bad request",
            Kind::Connection => "connection",
            Kind::Limit => "limit",
        }
    }
}

/// Lines of each kind allowed per second (`--log-rate`).
static PER_SECOND: AtomicU32 = AtomicU32::new(DEFAULT_PER_SECOND);
/// Lines suppressed in all, for `/metrics`.
static SUPPRESSED_TOTAL: AtomicU64 = AtomicU64::new(0);
/// The default of `--log-rate`.
pub const DEFAULT_PER_SECOND: u32 = 20;

/// One kind's current one-second window.
#[derive(Clone, Copy)]
struct Window {
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

static WINDOWS: Mutex<[Window; 4]> = Mutex::new(
    [Window {
        started: None,
        logged: 0,
        suppressed: 0,
    }; 4],
);

/// Sets how many lines of each kind may be logged per second.
pub fn set_per_second(n: u32) {
    PER_SECOND.store(n, Ordering::Relaxed);
}

/// Lines suppressed so far.
pub(crate) fn suppressed_total() -> u64 {
    SUPPRESSED_TOTAL.load(Ordering::Relaxed)
}

/// Whether a line of `kind` may be logged now; counts it either way.
pub(crate) fn allow(kind: Kind) -> bool {
    let now = Instant::now();
    let limit = PER_SECOND.load(Ordering::Relaxed);
    let mut windows = WINDOWS.lock().unwrap_or_else(|p| p.into_inner());
    let w = &mut windows[kind.index()];
    if w.started
        .is_none_or(|s| now.duration_since(s).as_secs() >= 1)
    {
        report(kind, w.suppressed);
        *w = Window {
            started: Some(now),
            logged: 0,
            suppressed: 0,
        };
    }
    if w.logged < limit {
        w.logged += 1;
        true
    } else {
        w.suppressed += 1;
        SUPPRESSED_TOTAL.fetch_add(1, Ordering::Relaxed);
        false
    }
}

/// Reports the windows that are over and suppressed lines (the timers call
/// it every half second, so a flood's last second is reported too).
pub(crate) fn flush() {
    let now = Instant::now();
    let mut windows = WINDOWS.lock().unwrap_or_else(|p| p.into_inner());
    for kind in Kind::ALL {
        let w = &mut windows[kind.index()];
        if w.suppressed > 0
            && w.started
                .is_some_and(|s| now.duration_since(s).as_secs() >= 1)
        {
            report(kind, w.suppressed);
            w.suppressed = 0;
        }
    }
}

fn report(kind: Kind, suppressed: u64) {
    if suppressed > 0 {
        tracing::warn!(
            kind = kind.name(),
            suppressed,
            "suppressed {suppressed} similar messages in the last second (--log-rate)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_kind_gets_its_rate_per_second_then_a_count_of_what_was_dropped() {
        // Only this test logs refusals in the unit tests (the state is global).
        let before = suppressed_total();
        let allowed = (0..100).filter(|_| allow(Kind::Refusal)).count();
        assert_eq!(allowed, DEFAULT_PER_SECOND as usize);
        assert_eq!(suppressed_total() - before, 100 - allowed as u64);
        tokio::time::advance(std::time::Duration::from_millis(1100)).await;
        flush();
        let w = WINDOWS.lock().unwrap()[Kind::Refusal.index()];
        assert_eq!(w.suppressed, 0, "reported and reset");
        assert!(allow(Kind::Refusal), "a new second, a new allowance");
    }
}
