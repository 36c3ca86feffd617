//! The host's side of a supervised one-shot command: starts
//! `termtrail __supervise` ([`crate::supervise`]) with the command, hands
//! out its output pipes, ends its whole process tree on request (by
//! closing the lifeline pipe), and waits for it.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

/// How long after the host's timeout the supervisor ends the tree on its
/// own, should the host be unable to.
const BACKSTOP: Duration = Duration::from_secs(5);

/// How long the supervisor gets to kill the tree and exit once asked,
/// before it is killed itself.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// A command running under its supervisor.
pub(super) struct Supervised {
    child: Child,
    /// Closing it (or the host dying) makes the supervisor kill the tree.
    lifeline: Option<ChildStdin>,
    /// When the tree was asked to end.
    killed_at: Option<tokio::time::Instant>,
}

impl Supervised {
    /// Starts `command` under `supervisor` (the `termtrail` binary), in a
    /// process group of its own (a signal for the host's group does not
    /// reach it), with its stdout and stderr piped.
    pub(super) fn spawn(
        supervisor: &Path,
        command: &str,
        timeout: Duration,
    ) -> std::io::Result<(Supervised, ChildStdout, ChildStderr)> {
        let mut child = tokio::process::Command::new(supervisor)
            .arg(crate::supervise::SUBCOMMAND)
            .arg((timeout + BACKSTOP).as_secs().to_string())
            .arg("--")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let (Some(lifeline), Some(out), Some(err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(std::io::Error::other("the supervisor's pipes are missing"));
        };
        let me = Supervised {
            child,
            lifeline: Some(lifeline),
            killed_at: None,
        };
        Ok((me, out, err))
    }

    /// Asks the supervisor to kill the command's whole tree.
    pub(super) fn kill(&mut self) {
        if self.lifeline.take().is_some() {
            self.killed_at = Some(tokio::time::Instant::now());
        }
    }

    /// Waits until the command and all its descendants have exited (the
    /// supervisor exits then, with the command's status). A supervisor
    /// that does not exit within a few seconds of [`Supervised::kill`] is
    /// killed.
    pub(super) async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            let Some(at) = self.killed_at else {
                // Not asked to die yet: this wait ends with the tree, or is
                // dropped by the caller's select to call kill.
                return self.child.wait().await;
            };
            match tokio::time::timeout_at(at + KILL_GRACE, self.child.wait()).await {
                Ok(status) => return status,
                Err(_) => {
                    tracing::warn!("a command's supervisor did not exit when asked; killing it");
                    let _ = self.child.start_kill();
                    self.killed_at = None;
                }
            }
        }
    }
}
