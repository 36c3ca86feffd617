//! The recorded program of the fault tests: it prints numbered lines
//! (`L<n>E`) every few milliseconds and, after each, appends `n <time>` to
//! a side file (`$EPOCHREALTIME`, microseconds of the wall clock), so the
//! test knows what was printed and when. A SIGKILL of the recorder leaves
//! the side file whole (the page cache survives it). After the kill, every
//! line printed more than the loss bound before it must be in the
//! recording, and the lines there must be 1, 2, … with no hole.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One printing program and its side files.
pub struct Printer {
    side: PathBuf,
    pid: PathBuf,
    done: PathBuf,
}

impl Printer {
    /// A printer whose side files are `dir/NAME.{side,pid,done}`.
    pub fn new(dir: &Path, name: &str) -> Printer {
        Printer {
            side: dir.join(format!("{name}.side")),
            pid: dir.join(format!("{name}.pid")),
            done: dir.join(format!("{name}.done")),
        }
    }

    /// A bash command line: note its pid, print `max` lines (each with
    /// `pad` bytes of incompressible letters and digits when `pad` > 0), note that it
    /// is done, exit 0.
    pub fn script(&self, max: u64, pad: usize) -> String {
        let payload = if pad > 0 {
            format!(
                " $(head -c {} /dev/urandom | base64 -w0 | tr '+/=' 'xyz')",
                pad * 3 / 4
            )
        } else {
            String::new()
        };
        format!(
            "echo $$ > {pid}; i=0; while [ $i -lt {max} ]; do i=$((i+1)); echo \"L${{i}}E{payload}\"; echo \"$i $EPOCHREALTIME\" >> {side}; sleep 0.005; done; : > {done}; exit 0",
            pid = self.pid.display(),
            side = self.side.display(),
            done = self.done.display(),
        )
    }

    /// Whether it printed its last line.
    pub fn done(&self) -> bool {
        self.done.exists()
    }

    /// What it printed so far: (line number, wall-clock µs after printing).
    pub fn printed(&self) -> Vec<(u64, u64)> {
        let text = std::fs::read_to_string(&self.side).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let (n, t) = l.split_once(' ')?;
                let (s, us) = t.split_once(['.', ','])?;
                let t = s.parse::<u64>().ok()? * 1_000_000 + us.parse::<u64>().ok()?;
                Some((n.parse().ok()?, t))
            })
            .collect()
    }

    /// Waits (up to `secs`) until it has printed `n` lines.
    pub fn wait_printed(&self, n: usize, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.printed().len() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Ends the program's process group if it still runs (a recorder's
    /// death hangs its terminal up, which normally ends it): waits up to
    /// `secs` for it to go, then SIGKILLs the group. Its pid is in the
    /// pid file it wrote; nothing else is signalled.
    pub fn stop(&self, secs: u64) {
        let Some(pid) = std::fs::read_to_string(&self.pid)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            return;
        };
        let alive = || Path::new(&format!("/proc/{pid}")).exists() && !zombie(pid);
        let deadline = Instant::now() + Duration::from_secs(secs);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive() {
            for target in [format!("-{pid}"), pid.to_string()] {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &target])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        self.stop(0);
    }
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// The numbers of the `L<n>E` lines in `text` (a transcript).
pub fn lines_in(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|w| w.strip_prefix('L')?.strip_suffix('E')?.parse().ok())
        .collect()
}

/// Checks a recording's transcript `text` against what was `printed`
/// before a fault at `fault_us`: its lines are 1, 2, … m with no hole
/// and none twice, and every line printed more than `bound_ms` before the
/// fault is there. Returns the output lost, in ms: from the first printed
/// line missing to the fault (0 when none is missing).
#[track_caller]
pub fn check_loss(
    what: &str,
    printed: &[(u64, u64)],
    text: &str,
    fault_us: u64,
    bound_ms: u64,
) -> u64 {
    let got = lines_in(text);
    for (i, n) in got.iter().enumerate() {
        assert_eq!(
            *n,
            i as u64 + 1,
            "{what}: lines recorded out of order, twice or with a hole at {n}: {got:?}"
        );
    }
    let m = got.len() as u64;
    let first_missing = printed.iter().find(|(n, _)| *n > m);
    let lost_ms = match first_missing {
        Some((_, t)) if *t < fault_us => (fault_us - t) / 1000,
        _ => 0,
    };
    assert!(
        lost_ms <= bound_ms,
        "{what}: output printed {lost_ms} ms before the fault is missing (bound {bound_ms} ms): {m} lines recorded, {} printed",
        printed.len()
    );
    if std::env::var_os("TERMTRAIL_FAULT_VERBOSE").is_some() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "{what}: {m} of {} lines recorded, lost {lost_ms} ms",
            printed.len()
        );
    }
    lost_ms
}
