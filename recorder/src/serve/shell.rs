//! One shell of the shell host: a PTY and its process, the client attached
//! to it (at most one), output buffered while detached, and its recording.
//!
//! Concurrency: the output task is the only reader of the PTY. It records
//! every read, then hands it to the attached client's bounded queue or, with
//! no client (or a client too slow to keep up, which is then detached), to a
//! 256 KiB ring buffer that a re-attaching client gets replayed. The state
//! below is behind a std mutex held only for these short hand-overs.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use termtrail_format::event::{EventData, TermSize};
use termtrail_format::seal::EndReason;
use termtrail_format::utf8::Utf8Stitcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use crate::recording::Recording;
use crate::tty::reading_secret;

/// Output kept for a detached shell.
pub const REPLAY_BYTES: usize = 256 << 10;
/// Messages queued to a client before it counts as too slow.
const CLIENT_QUEUE: usize = 256;

/// What a client receives from its shell.
#[derive(Debug)]
pub enum ToClient {
    /// PTY output.
    Stdout(Vec<u8>),
    /// The process exited: code (128+N for signal N) and signal.
    Exit(i32, Option<i32>),
}

/// Why a client is told to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Another client attached to the same shell (close code 4000).
    TakenOver,
    /// It did not read its output fast enough.
    TooSlow,
    /// The host is shutting down.
    Shutdown,
}

struct Client {
    id: u64,
    tx: mpsc::Sender<ToClient>,
    kick: Option<oneshot::Sender<Kick>>,
}

struct State {
    client: Option<Client>,
    ring: VecDeque<u8>,
    dropped: u64,
    last_activity: Instant,
    detached_since: Option<Instant>,
    exited: Option<(i32, Option<i32>)>,
    ending: Option<EndReason>,
}

/// What attaching returns.
pub struct Attached {
    /// Output for this client.
    pub rx: mpsc::Receiver<ToClient>,
    /// Fires when the client must go.
    pub kick: oneshot::Receiver<Kick>,
    /// Output buffered while no client was attached.
    pub replay: Vec<u8>,
    /// Bytes lost because the buffer overflowed.
    pub dropped: u64,
    /// Whether this shell already existed.
    pub reconnected: bool,
    /// The exit status, when the process has already ended.
    pub exited: Option<(i32, Option<i32>)>,
}

/// A live shell.
pub struct Shell {
    /// Runtime session id.
    pub session_id: String,
    /// Shell id.
    pub shell_id: String,
    writer: tokio::sync::Mutex<pty_process::OwnedWritePty>,
    /// A duplicate of the PTY master, for reading its terminal modes.
    modes_fd: OwnedFd,
    state: Mutex<State>,
    recording: Recording,
    input_withheld: Mutex<bool>,
    input_stitch: Mutex<Utf8Stitcher>,
    pid: Option<u32>,
    /// Held for the shell's life: one of the host's `--max-shells` slots.
    _permit: OwnedSemaphorePermit,
}

impl Shell {
    /// Starts `command` in a new PTY of `size` and its output task. `on_exit`
    /// runs once the process has exited and its output is drained.
    pub fn spawn(
        session_id: String,
        shell_id: String,
        command: &[String],
        size: TermSize,
        recording: Recording,
        permit: OwnedSemaphorePermit,
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
            state: Mutex::new(State {
                client: None,
                ring: VecDeque::new(),
                dropped: 0,
                last_activity: Instant::now(),
                detached_since: Some(Instant::now()),
                exited: None,
                ending: None,
            }),
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
                if !ready.is_empty() {
                    me.recording.record(EventData::Output(ready)).await;
                }
                me.deliver(&buf[..n]);
            }
            let rest = stitch.finish();
            if !rest.is_empty() {
                me.recording.record(EventData::Output(rest)).await;
            }
            let status = child.wait().await;
            let (code, signal) = match status {
                Ok(s) => {
                    use std::os::unix::process::ExitStatusExt;
                    match (s.code(), s.signal()) {
                        (Some(c), _) => (c, None),
                        (None, Some(sig)) => (128 + sig, Some(sig)),
                        _ => (255, None),
                    }
                }
                Err(_) => (255, None),
            };
            me.recording.record(EventData::Exit(code)).await;
            let end = {
                let mut st = me.lock();
                st.exited = Some((code, signal));
                if let Some(c) = &st.client {
                    let _ = c.tx.try_send(ToClient::Exit(code, signal));
                }
                st.ending.take().unwrap_or(EndReason::Exited { code })
            };
            if let Err(e) = me.recording.finish(end).await {
                tracing::error!(session = %me.session_id, shell = %me.shell_id, error = %e, "sealing the recording failed");
            }
            on_exit(me);
        });
        Ok(shell)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere; the state is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands output to the client, or buffers it.
    fn deliver(&self, bytes: &[u8]) {
        let mut st = self.lock();
        st.last_activity = Instant::now();
        if let Some(c) = &mut st.client {
            match c.tx.try_send(ToClient::Stdout(bytes.to_vec())) {
                Ok(()) => return,
                Err(_) => {
                    // Too slow (or gone): detach it; keep the output for a
                    // later re-attach instead of blocking the shell.
                    if let Some(k) = c.kick.take() {
                        let _ = k.send(Kick::TooSlow);
                    }
                    st.client = None;
                    st.detached_since = Some(Instant::now());
                }
            }
        }
        st.ring.extend(bytes);
        let excess = st.ring.len().saturating_sub(REPLAY_BYTES);
        if excess > 0 {
            st.ring.drain(..excess);
            st.dropped += excess as u64;
        }
    }

    /// Attaches a client (taking over from any other one).
    pub fn attach(&self, id: u64, reconnected: bool) -> Attached {
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let (kick_tx, kick_rx) = oneshot::channel();
        let mut st = self.lock();
        let took_over = match st.client.take() {
            Some(mut old) => {
                if let Some(k) = old.kick.take() {
                    let _ = k.send(Kick::TakenOver);
                }
                true
            }
            None => false,
        };
        let replay: Vec<u8> = st.ring.drain(..).collect();
        let dropped = std::mem::take(&mut st.dropped);
        st.client = Some(Client {
            id,
            tx,
            kick: Some(kick_tx),
        });
        st.detached_since = None;
        st.last_activity = Instant::now();
        let exited = st.exited;
        drop(st);
        let label = match (took_over, reconnected) {
            (true, _) => format!("takeover by client {id}"),
            (false, true) => format!(
                "re-attach by client {id} ({} bytes replayed, {dropped} dropped)",
                replay.len()
            ),
            (false, false) => format!("attach by client {id}"),
        };
        let rec = self.recording.clone();
        tokio::spawn(async move { rec.record(EventData::Marker(label)).await });
        Attached {
            rx,
            kick: kick_rx,
            replay,
            dropped,
            reconnected,
            exited,
        }
    }

    /// Detaches client `id` if it is still the attached one.
    pub fn detach(&self, id: u64) {
        let mut st = self.lock();
        if st.client.as_ref().is_some_and(|c| c.id == id) {
            st.client = None;
            st.detached_since = Some(Instant::now());
            drop(st);
            let rec = self.recording.clone();
            tokio::spawn(async move {
                rec.record(EventData::Marker(format!("detach of client {id}")))
                    .await
            });
        }
    }

    /// Writes keystrokes to the PTY, recording them unless a password is
    /// being read (echo off in line mode).
    pub async fn input(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.lock().last_activity = Instant::now();
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
        self.lock().last_activity = Instant::now();
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
        {
            let mut st = self.lock();
            if st.exited.is_some() {
                return;
            }
            st.ending.get_or_insert(end);
        }
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
            if me.lock().exited.is_none() {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        });
    }

    /// Tells the attached client to go (shutdown).
    pub fn kick(&self, why: Kick) {
        let mut st = self.lock();
        if let Some(c) = &mut st.client
            && let Some(k) = c.kick.take()
        {
            let _ = k.send(why);
        }
    }

    /// How long since the last input, resize or attach.
    pub fn idle_for(&self) -> Duration {
        self.lock().last_activity.elapsed()
    }

    /// How long it has been without a client (None while attached).
    pub fn detached_for(&self) -> Option<Duration> {
        self.lock().detached_since.map(|t| t.elapsed())
    }

    /// Whether the process has exited.
    pub fn exited(&self) -> bool {
        self.lock().exited.is_some()
    }

    /// The recording's path.
    pub fn recording_path(&self) -> &std::path::Path {
        self.recording.path()
    }
}
