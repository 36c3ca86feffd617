//! A local shell of the shell host: a PTY and its process, its recording,
//! and its client side ([`Attachment`]). The output task is the only reader
//! of the PTY: it records every read, then hands it to the attachment.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use termtrail_format::event::{EventData, TermSize};
use termtrail_format::seal::EndReason;
use termtrail_format::utf8::Utf8Stitcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;

use super::attachment::Attachment;
use crate::recording::Recording;
use crate::tty::reading_secret;

/// A live shell.
pub struct Shell {
    /// Runtime session id.
    pub session_id: String,
    /// Shell id.
    pub shell_id: String,
    writer: tokio::sync::Mutex<pty_process::OwnedWritePty>,
    /// A duplicate of the PTY master, for reading its terminal modes.
    modes_fd: OwnedFd,
    /// The client side.
    pub att: Attachment,
    /// Why the shell is being ended (set before signalling it).
    ending: Mutex<Option<EndReason>>,
    recording: Recording,
    input_withheld: Mutex<bool>,
    input_stitch: Mutex<Utf8Stitcher>,
    pid: Option<u32>,
    /// Held for the shell's life: one of the host's `--max-shells` slots.
    _permit: OwnedSemaphorePermit,
}

impl Shell {
    /// Starts `command` in a new PTY of `size` and its output task. `on_exit`
    /// runs once the process has exited and its output is drained. With
    /// `strict`, a failed recording ends the shell.
    #[allow(clippy::too_many_arguments)] // each is one plain part of a shell
    pub fn spawn(
        session_id: String,
        shell_id: String,
        command: &[String],
        size: TermSize,
        recording: Recording,
        permit: OwnedSemaphorePermit,
        strict: bool,
        on_exit: impl FnOnce(Arc<Shell>) + Send + 'static,
    ) -> std::io::Result<Arc<Shell>> {
        let io = |e: pty_process::Error| std::io::Error::other(e.to_string());
        let (pty, pts) = pty_process::open().map_err(io)?;
        pty.resize(pty_process::Size::new(size.rows, size.cols))
            .map_err(io)?;
        let modes_fd = rustix::io::dup(&pty)?;
        let mut cmd = pty_process::Command::new(&command[0]).args(&command[1..]);
        if std::env::var_os("TERM").is_none() {
            cmd = cmd.env("TERM", "xterm-256color");
        }
        let mut child = cmd.spawn(pts).map_err(io)?;
        let (mut reader, writer) = pty.into_split();
        let shell = Arc::new(Shell {
            session_id,
            shell_id,
            writer: tokio::sync::Mutex::new(writer),
            modes_fd,
            att: Attachment::new(recording.clone()),
            ending: Mutex::new(None),
            recording,
            input_withheld: Mutex::new(false),
            input_stitch: Mutex::new(Utf8Stitcher::new()),
            pid: child.id(),
            _permit: permit,
        });
        let me = Arc::clone(&shell);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 << 10];
            let mut stitch = Utf8Stitcher::new();
            loop {
                let n = match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let ready = stitch.push(&buf[..n]);
                if !ready.is_empty()
                    && !me.recording.record(EventData::Output(ready)).await
                    && strict
                {
                    // --strict: output that cannot be recorded is not shown,
                    // and the shell ends.
                    tracing::error!(session = %me.session_id, shell = %me.shell_id, "the recording failed; ending the shell (--strict)");
                    me.terminate(
                        EndReason::Interrupted {
                            detail: "the recording failed (--strict)".into(),
                        },
                        Duration::from_secs(2),
                    );
                    break;
                }
                me.att.deliver(&buf[..n]).await;
            }
            let rest = stitch.finish();
            if !rest.is_empty() {
                me.recording.record(EventData::Output(rest)).await;
            }
            let (code, signal) = crate::rec::exit_code(child.wait().await);
            me.recording.record(EventData::Exit(code)).await;
            me.att.exit(code, signal);
            let end = me
                .ending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or(EndReason::Exited { code });
            if let Err(e) = me.recording.finish(end).await {
                tracing::error!(session = %me.session_id, shell = %me.shell_id, error = %e, "sealing the recording failed");
            }
            on_exit(me);
        });
        Ok(shell)
    }

    /// Writes keystrokes to the PTY, recording them unless a password is
    /// being read (echo off in line mode).
    pub async fn input(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.att.touch();
        let secret = reading_secret(&self.modes_fd);
        let to_record = {
            let mut withheld = self
                .input_withheld
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if secret {
                let first = !*withheld;
                *withheld = true;
                first
                    .then(|| EventData::Marker("input withheld: password prompt (echo off)".into()))
            } else {
                *withheld = false;
                let ready = self
                    .input_stitch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(bytes);
                (!ready.is_empty()).then_some(EventData::Input(ready))
            }
        };
        if let Some(e) = to_record {
            self.recording.record(e).await;
        }
        let mut w = self.writer.lock().await;
        w.write_all(bytes).await?;
        w.flush().await
    }

    /// Resizes the PTY and records it.
    pub async fn resize(&self, size: TermSize) -> std::io::Result<()> {
        self.att.touch();
        self.writer
            .lock()
            .await
            .resize(pty_process::Size::new(size.rows, size.cols))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.recording.record(EventData::Resize(size)).await;
        Ok(())
    }

    /// Ends the process: SIGHUP to its process group, SIGKILL after `grace`.
    /// `end` becomes the recording's end reason.
    pub fn terminate(self: &Arc<Self>, end: EndReason, grace: Duration) {
        if self.att.exited() {
            return;
        }
        self.ending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(end);
        let Some(pid) = self
            .pid
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        else {
            return;
        };
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::HUP);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::HUP);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if !me.att.exited() {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        });
    }
}

impl super::Target for Shell {
    fn session_id(&self) -> &str {
        &self.session_id
    }
    fn shell_id(&self) -> &str {
        &self.shell_id
    }
    fn att(&self) -> &Attachment {
        &self.att
    }
    fn input<'a>(&'a self, bytes: &'a [u8]) -> super::BoxFut<'a> {
        // A failed write means the shell is ending; its exit status follows.
        Box::pin(async move {
            let _ = Shell::input(self, bytes).await;
        })
    }
    fn resize(&self, size: TermSize) -> super::BoxFut<'_> {
        Box::pin(async move {
            let _ = Shell::resize(self, size).await;
        })
    }
    fn end(self: Arc<Self>, end: EndReason) {
        self.terminate(end, Duration::from_secs(2));
    }
    fn recording_path(&self) -> &std::path::Path {
        self.recording.path()
    }
}
