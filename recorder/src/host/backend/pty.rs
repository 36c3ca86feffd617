//! The local backend: each shell is a process in a PTY of this machine,
//! with its recording and its client side ([`Attachment`]). The output task
//! is the only reader of the PTY: it records every read, then hands it to
//! the attachment.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use termtrail_format::event::{EventData, TermSize};
use termtrail_format::seal::EndReason;
use termtrail_format::utf8::Utf8Stitcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::attachment::Attachment;
use super::super::budget::{OutputBudget, Spent, over};
use super::{
    BoxFut, BoxFuture, CommandCall, CommandError, Events, NewShell, OnEnd, OpenError, Shell,
    ShellBackend,
};
use crate::header::{RecordingInfo, Source};
use crate::recording::Recording;
use crate::tty::reading_secret;

/// How long a shell has between SIGHUP and SIGKILL when it is ended.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// After the program exits, output still arriving this quickly is read;
/// then the shell ends, whoever else holds its terminal.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(300);

/// Shells run as local processes (`serve`).
pub struct PtyBackend {
    /// The command line of every shell.
    command: Vec<String>,
    /// End a shell whose recording fails.
    strict: bool,
    /// Most bytes of output a shell's recording takes (0: no bound).
    max_output: u64,
}

impl PtyBackend {
    /// Shells run `command` (empty: `$SHELL`, else `/bin/sh`); with
    /// `strict`, output that cannot be recorded ends the shell; a shell
    /// whose output passes `max_output` bytes is ended (0: no bound).
    pub fn new(command: &[String], strict: bool, max_output: u64) -> PtyBackend {
        let command = crate::rec::command_or_shell(command);
        PtyBackend {
            command,
            strict,
            max_output,
        }
    }
}

impl ShellBackend for PtyBackend {
    fn source(&self) -> Source {
        Source::Serve
    }

    fn describe(&self, info: RecordingInfo) -> RecordingInfo {
        info.with_command(Some(crate::rec::shell_join(&self.command)))
    }

    fn open(&self, new: NewShell) -> BoxFuture<'_, Result<Arc<dyn Shell>, OpenError>> {
        Box::pin(async move {
            let NewShell {
                session,
                shell,
                recording,
                on_end,
            } = new;
            let recording = recording().map_err(OpenError::Recording)?;
            let started = Started {
                session,
                shell,
                recording,
                on_end,
                budget: OutputBudget::new(self.max_output),
            };
            let shell = PtyShell::spawn(started, &self.command, TermSize::DEFAULT, self.strict)
                .map_err(|source| OpenError::Spawn {
                    command: self.command.join(" "),
                    source,
                })?;
            Ok(shell as Arc<dyn Shell>)
        })
    }

    fn no_commands(&self) -> Option<String> {
        None
    }

    fn command(
        &self,
        call: CommandCall,
        recording: Recording,
    ) -> BoxFuture<'_, Result<Events, CommandError>> {
        Box::pin(super::command::run_local(call, recording))
    }
}

/// A shell about to be spawned, its recording started.
struct Started {
    session: String,
    shell: String,
    recording: Recording,
    on_end: OnEnd,
    /// Its `--max-recording-bytes`.
    budget: OutputBudget,
}

/// A live local shell.
pub struct PtyShell {
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
}

impl PtyShell {
    /// Starts `command` in a new PTY of `size` and its output task. The
    /// shell's `on_end` runs once the process has exited and its output is
    /// drained. With `strict`, a failed recording ends the shell.
    fn spawn(
        new: Started,
        command: &[String],
        size: TermSize,
        strict: bool,
    ) -> std::io::Result<Arc<PtyShell>> {
        let Started {
            session: session_id,
            shell: shell_id,
            recording,
            on_end,
            mut budget,
        } = new;
        let io = |e: pty_process::Error| std::io::Error::other(e.to_string());
        let (pty, pts) = pty_process::open().map_err(io)?;
        pty.resize(pty_process::Size::new(size.rows, size.cols))
            .map_err(io)?;
        // Close-on-exec: a plain dup leaked this master into every process
        // started later — another client's shell or one-shot command could
        // then type into this one.
        let modes_fd = rustix::io::fcntl_dupfd_cloexec(&pty, 0)?;
        let mut cmd = pty_process::Command::new(&command[0]).args(&command[1..]);
        if std::env::var_os("TERM").is_none() {
            cmd = cmd.env("TERM", "xterm-256color");
        }
        let mut child = cmd.spawn(pts).map_err(io)?;
        let (mut reader, writer) = pty.into_split();
        let shell = Arc::new(PtyShell {
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
        });
        let me = Arc::clone(&shell);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 << 10];
            let mut stitch = Utf8Stitcher::new();
            let mut wait = Box::pin(child.wait());
            let mut exited = None;
            loop {
                let n = if exited.is_some() {
                    // The program has exited: what it left in the terminal
                    // comes at once. A process that keeps the terminal open
                    // (`setsid -f …`) must not keep the shell alive.
                    match tokio::time::timeout(DRAIN_AFTER_EXIT, reader.read(&mut buf)).await {
                        Ok(Ok(n)) if n > 0 => n,
                        _ => break,
                    }
                } else {
                    tokio::select! {
                        read = reader.read(&mut buf) => match read {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        },
                        status = &mut wait => {
                            exited = Some(status);
                            continue;
                        }
                    }
                };
                let spent = budget.spend(n);
                // Past the bound nothing more is recorded (the shell ends).
                let ready = if spent == Spent::Over {
                    Vec::new()
                } else {
                    stitch.push(&buf[..n])
                };
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
                        KILL_GRACE,
                    );
                    break;
                }
                if spent == Spent::JustOver {
                    // After the bytes that passed the bound: their marker.
                    let end = over(&me.att, &me.session_id, &me.shell_id, budget.max()).await;
                    me.terminate(end, KILL_GRACE);
                }
                me.att.deliver(&buf[..n]).await;
            }
            let rest = stitch.finish();
            if !rest.is_empty() {
                me.recording.record(EventData::Output(rest)).await;
            }
            let status = match exited {
                Some(status) => status,
                None => wait.await,
            };
            let (code, signal) = crate::rec::exit_code(status);
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
            on_end(me);
        });
        Ok(shell)
    }

    /// Writes keystrokes to the PTY, recording them unless a password is
    /// being read (echo off in line mode).
    async fn write_input(&self, bytes: &[u8]) -> std::io::Result<()> {
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
    async fn resize_pty(&self, size: TermSize) -> std::io::Result<()> {
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
    fn terminate(self: &Arc<Self>, end: EndReason, grace: Duration) {
        if self.att.exited() {
            return;
        }
        // Output paused for want of a reader must flow, so the end is seen.
        self.att.release();
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

impl Shell for PtyShell {
    fn session_id(&self) -> &str {
        &self.session_id
    }
    fn shell_id(&self) -> &str {
        &self.shell_id
    }
    fn att(&self) -> &Attachment {
        &self.att
    }
    fn input<'a>(&'a self, bytes: &'a [u8]) -> BoxFut<'a> {
        // A failed write means the shell is ending; its exit status follows.
        Box::pin(async move {
            let _ = self.write_input(bytes).await;
        })
    }
    fn resize(&self, size: TermSize) -> BoxFut<'_> {
        Box::pin(async move {
            let _ = self.resize_pty(size).await;
        })
    }
    fn end(self: Arc<Self>, end: EndReason) {
        self.terminate(end, KILL_GRACE);
    }
    fn recording_path(&self) -> &std::path::Path {
        self.recording.path()
    }
}
