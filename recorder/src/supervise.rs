//! The supervisor of one one-shot command: the process between the shell
//! host and `sh -c <command>` that owns the command's whole process tree,
//! so the host can end it — all of it — whatever the command does.
//!
//! The host runs `termtrail __supervise` (see [`SUBCOMMAND`]) with a pipe
//! as its stdin (the *lifeline*) and the command's output pipes as its
//! stdout and stderr. The supervisor:
//!
//! - marks itself a child subreaper (`PR_SET_CHILD_SUBREAPER`), so every
//!   descendant that is orphaned — a daemon that double-forked, a `setsid`
//!   process whose parent exited — is re-parented to it instead of PID 1,
//!   and stays in its tree;
//! - runs `sh -c <command>` with stdin from `/dev/null` and its own stdout
//!   and stderr, and reaps every process re-parented to it;
//! - exits, with the command's status (128+N for signal N), once the
//!   command *and every descendant* have exited — not when the output pipes
//!   close: a command that closed its stdout and stderr is still waited for;
//! - kills the whole tree (SIGKILL to every descendant, repeated until none
//!   is left, so a process forking meanwhile is caught too) when its
//!   lifeline ends (the host closed the pipe: timeout, client gone, host
//!   shutting down — or the host died), when it gets SIGTERM, SIGINT or
//!   SIGHUP, or at its own backstop deadline (the host's timeout plus a
//!   margin, for a host that cannot act).
//!
//! Why a supervisor process and not the host itself: making the host a
//! subreaper would re-parent the orphans of its PTY shells to it too, and
//! a host reaping with `wait(-1)` would race tokio's own child handling. A
//! cgroup would contain the tree as well but needs delegation (root or
//! systemd) that a host run by a user usually lacks. Descendants are found
//! by reading `/proc/<pid>/stat` (the parent pid), which every Linux has;
//! `/proc/<pid>/task/<tid>/children` needs `CONFIG_PROC_CHILDREN`.
//!
//! What stays out of reach: processes the command asks *another* service
//! to start (`systemd-run`, `at`, a container runtime) are not its
//! descendants; a descendant that became another user (a setuid program)
//! cannot be killed by a host without that user's rights.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions};

/// The hidden subcommand of the `termtrail` binary that runs
/// [`supervise`]: `termtrail __supervise <backstop-seconds> -- <command>`.
pub const SUBCOMMAND: &str = "__supervise";

/// Exit status when the command could not be started at all (as `sh`
/// answers for a command it cannot find).
pub const CANNOT_START: i32 = 127;

/// Why the supervisor could not run the command.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// `PR_SET_CHILD_SUBREAPER` was refused: the command's tree could not
    /// be contained, so it is not run.
    #[error("cannot become a child subreaper: {0}")]
    Subreaper(std::io::Error),
    /// `sh` could not be started.
    #[error("cannot run sh: {0}")]
    Spawn(std::io::Error),
    /// Waiting for the command's processes failed.
    #[error("cannot wait for the command: {0}")]
    Wait(std::io::Error),
}

/// Runs `sh -c <command>` as described in the module documentation and
/// returns its exit status once it and every descendant have exited.
/// `backstop` bounds the whole run even if the lifeline stays open.
pub fn supervise(command: &str, backstop: Duration) -> Result<i32, SuperviseError> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| SuperviseError::Subreaper(e.into()))?;
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .spawn()
        .map_err(SuperviseError::Spawn)?;
    let sh = child.id() as i32;
    // The child is reaped below, with every other process of the tree.
    drop(child);
    watch_lifeline();
    std::thread::spawn(move || {
        std::thread::sleep(backstop);
        kill_tree();
    });
    watch_signals();
    let mut status = None;
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, st))) if pid.as_raw_nonzero().get() == sh => {
                status = Some(match (st.exit_status(), st.terminating_signal()) {
                    (Some(code), _) => code,
                    (None, Some(sig)) => 128 + sig,
                    _ => 255,
                });
            }
            Ok(_) => {}
            Err(Errno::INTR) => {}
            // No child left: the command and all its descendants are gone.
            Err(Errno::CHILD) => break,
            Err(e) => {
                kill_tree();
                return Err(SuperviseError::Wait(e.into()));
            }
        }
    }
    Ok(status.unwrap_or(255))
}

/// Kills the tree when stdin (the host's end of the lifeline) reaches its
/// end or errors; a byte written to it does the same.
fn watch_lifeline() {
    std::thread::spawn(|| {
        let mut byte = [0u8; 1];
        let _ = std::io::stdin().read(&mut byte);
        kill_tree();
    });
}

/// Kills the tree on SIGTERM, SIGINT or SIGHUP.
fn watch_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    // Without the handlers the default action (exit) would leave the tree
    // running; the lifeline still ends it when the host goes.
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            kill_tree();
        }
    });
}

/// SIGKILLs every descendant of this process, again and again until none
/// is left (a process may fork between one look and the kill). Killed
/// processes are reaped by [`supervise`]'s loop; zombies still listed are
/// skipped. Gives up when no kill succeeds any more (descendants that
/// became another user through a setuid program cannot be killed without
/// that user's rights).
pub fn kill_tree() {
    let me = rustix::process::getpid();
    loop {
        let alive = descendants(me);
        let killed = alive
            .iter()
            .filter(|&&pid| rustix::process::kill_process(pid, Signal::KILL).is_ok())
            .count();
        if killed == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The live (not zombie) descendants of `root`, from `/proc/*/stat`.
pub fn descendants(root: Pid) -> Vec<Pid> {
    let mut children: HashMap<i32, Vec<(i32, bool)>> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, ppid)) = parse_stat(&stat) {
            children.entry(ppid).or_default().push((pid, state == 'Z'));
        }
    }
    let mut found = Vec::new();
    let mut todo = vec![root.as_raw_nonzero().get()];
    while let Some(parent) = todo.pop() {
        for &(pid, zombie) in children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
            todo.push(pid);
            if !zombie && let Some(p) = Pid::from_raw(pid) {
                found.push(p);
            }
        }
    }
    found
}

/// The state letter and parent pid of a `/proc/<pid>/stat` line: the
/// fields after the command name, which is in parentheses and may itself
/// hold spaces and parentheses (hence the last `)`).
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        assert_eq!(parse_stat("42 (sh) S 7 42 42 0"), Some(('S', 7)));
        assert_eq!(parse_stat("42 (a) b (c) Z 9 1 1"), Some(('Z', 9)));
        assert_eq!(parse_stat("42 (sh"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn the_descendants_of_a_process_include_its_children() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .unwrap();
        let root = Pid::from_raw(child.id() as i32).unwrap();
        let mut seen = Vec::new();
        for _ in 0..200 {
            seen = descendants(root);
            if seen.len() >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for p in &seen {
            let _ = rustix::process::kill_process(*p, Signal::KILL);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(seen.len(), 2, "{seen:?}");
    }
}
