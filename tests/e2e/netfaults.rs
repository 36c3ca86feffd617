//! Network faults survived (issue 15 item 3, docs/reliability.md (Network faults part)): S3
//! erroring, slow, resetting connections, stopped and restarted under `rec`
//! and `serve` (`s3`); slow and stalled clients and an output flood through
//! `proxy` in front of `serve` (`flood`); connection churn against both
//! (`churn`). Shared here: the knobs of the long run, and what /proc says
//! about a process.
//!
//! `TERMTRAIL_FAULT_TRIALS=N` repeats each fault N times (default 1);
//! `TERMTRAIL_FAULT_FLOOD_MB=M` sizes the flood (default 256).

mod churn;
mod flood;
mod s3;

use std::time::Duration;

/// How many times each fault is tried: `TERMTRAIL_FAULT_TRIALS`, default 1.
fn trials() -> u32 {
    env_number("TERMTRAIL_FAULT_TRIALS", 1).max(1) as u32
}

/// The flood's size in MiB: `TERMTRAIL_FAULT_FLOOD_MB`, default 256.
fn flood_mb() -> u64 {
    env_number("TERMTRAIL_FAULT_FLOOD_MB", 256).max(1)
}

fn env_number(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v}: not a number")),
        Err(_) => default,
    }
}

/// What /proc says about a process: resident memory (KiB), threads, open
/// file descriptors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Usage {
    rss_kib: u64,
    threads: u64,
    fds: u64,
}

/// CPU time `pid` has used (user + system), in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th of them.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0)
}

/// `pid`'s usage now (zeros once it is gone).
fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Usage {
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        fds,
    }
}

/// Samples the resident memory of processes every 200 ms in a thread of
/// its own until dropped; keeps the peak of each and every sample.
struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    samples: std::sync::Arc<std::sync::Mutex<Vec<Vec<u64>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pids: &[u32]) -> RssSampler {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop2, samples2, pids) = (stop.clone(), samples.clone(), pids.to_vec());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let row = pids.iter().map(|&p| usage(p).rss_kib).collect();
                samples2.lock().unwrap().push(row);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        RssSampler {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// The peak RSS (KiB) of each process so far, in the order given.
    fn peaks(&self) -> Vec<u64> {
        let s = self.samples.lock().unwrap();
        let n = s.first().map_or(0, Vec::len);
        (0..n)
            .map(|i| s.iter().map(|r| r[i]).max().unwrap_or(0))
            .collect()
    }

    /// How many samples were taken.
    fn count(&self) -> usize {
        self.samples.lock().unwrap().len()
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Milliseconds since the Unix epoch (the fault proxy's clock too).
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The median of some durations.
fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}
