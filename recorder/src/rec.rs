//! `termtrail rec`: run a command in a PTY and record it.
//!
//! Threads (each blocking on one thing, so none can stall another):
//! - output: PTY → the user's stdout and the writer (UTF-8 stitched);
//! - input: stdin → PTY (and, with `--input`, the writer, unless the PTY has
//!   echo off, in which case a marker says input was withheld);
//! - signals: SIGWINCH resizes, SIGUSR1 adds a marker, SIGTERM/SIGINT/SIGHUP
//!   end the session;
//! - a marker added at a terminal is confirmed in its title
//!   (`rec/marker_notice.rs`), written by the output thread;
//! - waiter: reaps the child;
//! - writer: runs the recording engine ([`crate::recording`]) on a thread of
//!   its own: it owns the [`ChainWriter`], ticks it every 100 ms and commits
//!   once per batch of events (group commit).
//!
//! The engine's queue is bounded: a slow disk slows the program's output
//! (back-pressure through the PTY) instead of growing memory or dropping
//! frames.

mod marker_notice;

use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use pty_process::blocking::Pty;
use rustix::event::{PollFd, PollFlags, poll};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGWINCH};
use termtrail_format::event::{Event, EventData, TermSize};
use termtrail_format::seal::EndReason;
use termtrail_format::sign::SecretKey;
use termtrail_format::utf8::Utf8Stitcher;
use termtrail_format::writer::{
    ChainWriter, SealSummary, WriteError, WriterOptions, new_recording_id,
};

use crate::header::RecordingInfo;
use crate::newfile::{self, NewFileError, Taken};
use crate::recording::{Clock, Engine, Jobs, Pace, Recording, RecordingError, TryRecord};
use crate::secrets::Redaction;
use crate::tty::{RawMode, reading_secret, restore_terminal, stdin_is_tty, terminal_size};
use marker_notice::{Boundary, MarkerNotice};

/// The default marker hotkey: Ctrl+\ (0x1c).
pub const MARKER_KEY: u8 = 0x1c;
/// How long output is drained after the command exits.
const DRAIN_QUIET: Duration = Duration::from_millis(100);
/// Upper bound on draining (background jobs may keep writing).
const DRAIN_MAX: Duration = Duration::from_secs(2);
/// How often the output pump looks up from an idle PTY.
const POLL: Duration = Duration::from_millis(100);
/// Grace between SIGHUP and SIGKILL when ending the command.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// What to record and how.
#[derive(Debug, Clone)]
pub struct RecOptions {
    /// Command and arguments; empty means `$SHELL` (or `/bin/sh`).
    pub command: Vec<String>,
    /// No controlling terminal: fixed size, stdin forwarded as it comes.
    pub headless: bool,
    /// Terminal size (headless, or when the terminal's is unknown).
    pub size: Option<TermSize>,
    /// Record keystrokes (never while the PTY has echo off).
    pub input: bool,
    /// Title for the header.
    pub title: Option<String>,
    /// Ed25519 secret key to sign the seal with.
    pub sign_key: Option<SecretKey>,
    /// Marker hotkey byte (interactive only); None disables it.
    pub marker_key: Option<u8>,
    /// Chunk and segment bounds.
    pub writer: WriterOptions,
    /// Replace an existing output file.
    pub overwrite: bool,
    /// Forward the command's output to stdout (default true).
    pub echo_output: bool,
    /// The store's journal head, bound in the header as `termtrail.after`.
    pub after: Option<serde_json::Value>,
    /// Output redaction rules (none by default here; the binary turns the
    /// default rules on).
    pub redaction: Redaction,
}

impl Default for RecOptions {
    fn default() -> RecOptions {
        RecOptions {
            command: Vec::new(),
            headless: false,
            size: None,
            input: false,
            title: None,
            sign_key: None,
            marker_key: Some(MARKER_KEY),
            writer: WriterOptions::default(),
            overwrite: false,
            echo_output: true,
            after: None,
            redaction: Redaction::none(),
        }
    }
}

/// How a recording ended.
#[derive(Debug)]
pub struct RecOutcome {
    /// The command's exit status (128+N when killed by signal N).
    pub exit_code: i32,
    /// Why the recording ended.
    pub end: EndReason,
    /// The sealed recording.
    pub summary: SealSummary,
}

/// Recording failures.
#[derive(Debug, thiserror::Error)]
pub enum RecError {
    /// The output file could not be created.
    #[error("cannot create {path}: {source}")]
    Create {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The recording's header could not be written (a full disk, say); no
    /// file was left and the command was not started.
    #[error("cannot start the recording {path}: {source} (no file was left; nothing was run)")]
    Start {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: WriteError,
    },
    /// `overwrite` over a recording another recorder is writing.
    #[error("{0}; not replacing it")]
    BeingRecorded(termtrail_format::recover::BeingRecorded),
    /// The PTY or the command could not be started.
    #[error("cannot start {command:?}: {message}")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        message: String,
    },
    /// Writing the recording failed mid-session; the command was ended.
    #[error(
        "recording failed: {source}; the command was stopped. {path} keeps every chunk written before the failure (verify reports it as unsealed)"
    )]
    Failed {
        /// The recording file.
        path: PathBuf,
        /// The write error.
        source: WriteError,
        /// The command's exit status, when it had already exited.
        exit_code: Option<i32>,
    },
    /// Terminal or PTY setup failed.
    #[error("terminal setup failed: {0}")]
    Io(#[from] io::Error),
}

enum Control {
    Exited(i32),
    Signal(i32),
    WriterFailed,
}

/// The command to run: the one given, else the user's `$SHELL` (else
/// `/bin/sh`).
pub fn command_or_shell(command: &[String]) -> Vec<String> {
    if command.is_empty() {
        vec![
            std::env::var("SHELL")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "/bin/sh".into()),
        ]
    } else {
        command.to_vec()
    }
}

/// Runs the command and records it to `path`. Returns when the command has
/// exited (or the session was ended by a signal) and the recording is sealed.
pub fn record(opts: &RecOptions, path: &Path) -> Result<RecOutcome, RecError> {
    let key = opts.sign_key.clone();
    let command = command_or_shell(&opts.command);
    let interactive = !opts.headless && stdin_is_tty();
    let size = if interactive {
        terminal_size().or(opts.size).unwrap_or(TermSize::DEFAULT)
    } else {
        opts.size.unwrap_or(TermSize::DEFAULT)
    };
    let id = new_recording_id().map_err(|e| RecError::Spawn {
        command: command.join(" "),
        message: e.to_string(),
    })?;
    let term_type = std::env::var("TERM")
        .ok()
        .filter(|t| !t.is_empty() && t != "dumb");
    let header = RecordingInfo::local(
        &id,
        size,
        term_type.clone(),
        (!opts.command.is_empty()).then(|| shell_join(&command)),
        opts.title.clone(),
        opts.input,
    )
    .after(opts.after.clone())
    .header();

    // Named only once its header is written (crate::newfile): a recorder
    // killed, or a full disk, leaves no empty file behind.
    let taken = if opts.overwrite {
        Taken::Replace
    } else {
        Taken::Refuse
    };
    let (writer, _) = newfile::create(path, taken, |file| {
        ChainWriter::new(file, header, opts.writer.clone(), key)
    })
    .map_err(|e| match e {
        NewFileError::Create(source) => RecError::Create {
            path: path.to_path_buf(),
            source,
        },
        NewFileError::Start(source) => RecError::Start {
            path: path.to_path_buf(),
            source,
        },
        NewFileError::BeingRecorded(live) => RecError::BeingRecorded(live),
    })?;

    let spawn_err = |message: String| RecError::Spawn {
        command: command.join(" "),
        message,
    };
    // Handlers first: a signal that arrives as soon as the command starts
    // (a marker, a SIGTERM) must not take the default action and kill us.
    let signals =
        signal_hook::iterator::Signals::new([SIGWINCH, SIGTERM, SIGINT, SIGHUP, SIGUSR1])?;
    let (pty, pts) = pty_process::blocking::open().map_err(|e| spawn_err(e.to_string()))?;
    pty.resize(pty_process::Size::new(size.rows, size.cols))
        .map_err(|e| spawn_err(e.to_string()))?;
    let mut cmd = pty_process::blocking::Command::new(&command[0])
        .args(&command[1..])
        .env("TERMTRAIL_RECORDING", hex::encode(id));
    if term_type.is_none() {
        cmd = cmd.env("TERM", "xterm-256color");
    }
    // Headless, the end of stdin is delivered as a Ctrl+D once the program
    // has read what came before it: that takes a look at the terminal's
    // input queue, from its slave side (see `deliver_eof`).
    let slave = (!interactive)
        .then(|| pts.as_fd().try_clone_to_owned().ok())
        .flatten();
    let child = match cmd.spawn(pts) {
        Ok(c) => c,
        Err(e) => {
            // Nothing was recorded: leave no header-only file behind.
            drop(writer);
            let _ = std::fs::remove_file(path);
            return Err(spawn_err(e.to_string()));
        }
    };
    let clock = Clock::start();
    let (recording, engine) =
        Recording::new(writer, path.to_path_buf(), clock, Pace::LOCAL, Jobs::Inline);
    let engine = engine.redact(&opts.redaction);
    let session = Session {
        pty: Arc::new(pty),
        slave,
        recording,
        interactive,
        opts,
    };
    session.run(child, engine, signals)
}

/// A running `rec` session: the PTY, its recording, and how it runs.
struct Session<'a> {
    pty: Arc<Pty>,
    /// Headless: the terminal's slave side, to see whether the program has
    /// read its input.
    slave: Option<OwnedFd>,
    recording: Recording,
    interactive: bool,
    opts: &'a RecOptions,
}

impl Session<'_> {
    /// Starts the threads (see the module docs), waits for the end of the
    /// session and seals the recording.
    fn run(
        mut self,
        mut child: std::process::Child,
        engine: Engine,
        signals: signal_hook::iterator::Signals,
    ) -> Result<RecOutcome, RecError> {
        let child_pid = child.id();
        let raw = if self.interactive {
            RawMode::enter()?
        } else {
            None
        };
        let (ctl_tx, ctl_rx) = channel::<Control>();
        let writer_handle = self.start_writer(engine, ctl_tx.clone())?;
        let stop_output = Arc::new(AtomicBool::new(false));
        // Markers are confirmed on the user's terminal, when there is one.
        let notice = (self.interactive && self.opts.echo_output && io::stdout().is_terminal())
            .then(|| Arc::new(MarkerNotice::default()));
        let output_handle = {
            let (pty, rec, stop) = (
                Arc::clone(&self.pty),
                self.recording.clone(),
                Arc::clone(&stop_output),
            );
            let echo = self.opts.echo_output;
            let notice = notice.clone();
            thread::Builder::new()
                .name("output".into())
                .spawn(move || pump_output(&pty, &rec, &stop, echo, notice.as_deref()))?
        };
        {
            let (pty, rec) = (Arc::clone(&self.pty), self.recording.clone());
            let notice = notice.clone();
            let (record_input, marker_key) = (
                self.opts.input,
                self.opts.marker_key.filter(|_| self.interactive),
            );
            let slave = self.slave.take();
            let headless = !self.interactive;
            thread::Builder::new().name("input".into()).spawn(move || {
                pump_input(&pty, &rec, record_input, marker_key, notice.as_deref());
                if headless {
                    deliver_eof(&pty, slave);
                }
            })?;
        }
        let signals_handle = signals.handle();
        self.start_signals(signals, ctl_tx.clone(), notice)?;
        {
            let ctl_tx = ctl_tx.clone();
            thread::Builder::new()
                .name("waiter".into())
                .spawn(move || {
                    let (code, _) = exit_code(child.wait());
                    let _ = ctl_tx.send(Control::Exited(code));
                })?;
        }
        drop(ctl_tx);

        // Wait for the end of the session.
        let (exit_code, end, writer_failed) = match ctl_rx.recv() {
            Ok(Control::Exited(code)) => (code, EndReason::Exited { code }, false),
            Ok(Control::Signal(sig)) => {
                let code = end_child(child_pid, &ctl_rx).unwrap_or(128 + sig);
                let detail = format!("termtrail received signal {}", signal_name(sig));
                (code, EndReason::Interrupted { detail }, false)
            }
            Ok(Control::WriterFailed) | Err(_) => {
                let code = end_child(child_pid, &ctl_rx).unwrap_or(255);
                let detail = "recording failed".into();
                (code, EndReason::Interrupted { detail }, true)
            }
        };
        signals_handle.close();
        stop_output.store(true, Ordering::SeqCst);
        let _ = output_handle.join();
        let rec = self.recording;
        if !writer_failed {
            rec.record_blocking(Event::new(rec.now(), EventData::Exit(exit_code)));
        }
        // A failed recording answers with its write error.
        let sealed = rec.finish_blocking(end.clone());
        let path = rec.path().to_path_buf();
        drop(rec);
        let _ = writer_handle.join();
        drop(raw);
        restore_terminal();
        match sealed {
            Ok(summary) => Ok(RecOutcome {
                exit_code,
                end,
                summary,
            }),
            Err(e) => Err(RecError::Failed {
                path,
                source: match e {
                    RecordingError::Write(e) => e,
                    RecordingError::Panicked | RecordingError::Ended => WriteError::Failed,
                },
                exit_code: Some(exit_code),
            }),
        }
    }

    /// The writer thread: runs the recording engine on a runtime of its
    /// own; a failure of the recording ends the session.
    fn start_writer(
        &self,
        engine: Engine,
        ctl_tx: std::sync::mpsc::Sender<Control>,
    ) -> io::Result<thread::JoinHandle<()>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let failure = self.recording.failure();
        thread::Builder::new().name("writer".into()).spawn(move || {
            // The PTY reader and the recorded program come first: a busy
            // writer must not slow the session (it has a bounded queue and
            // back-pressure instead).
            if let Some(tid) =
                rustix::process::Pid::from_raw(rustix::thread::gettid().as_raw_nonzero().get())
            {
                let _ = rustix::process::setpriority_process(Some(tid), 5);
            }
            runtime.block_on(async move {
                tokio::spawn(async move {
                    failure.wait().await;
                    let _ = ctl_tx.send(Control::WriterFailed);
                });
                engine.run().await;
            });
        })
    }

    /// The signals thread: resizes, markers, and the signals that end the
    /// session.
    fn start_signals(
        &self,
        mut signals: signal_hook::iterator::Signals,
        ctl_tx: std::sync::mpsc::Sender<Control>,
        notice: Option<Arc<MarkerNotice>>,
    ) -> io::Result<()> {
        let (pty, rec, interactive) = (
            Arc::clone(&self.pty),
            self.recording.clone(),
            self.interactive,
        );
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    match sig {
                        SIGWINCH if interactive => {
                            if let Some(size) = terminal_size() {
                                let _ = pty.resize(pty_process::Size::new(size.rows, size.cols));
                                rec.record_blocking(Event::new(rec.now(), EventData::Resize(size)));
                            }
                        }
                        SIGUSR1 => {
                            let at = rec.now();
                            let marker = Event::new(at, EventData::Marker(String::new()));
                            if rec.record_blocking(marker)
                                && let Some(n) = &notice
                            {
                                n.added(at);
                            }
                        }
                        SIGWINCH => {}
                        other => {
                            let _ = ctl_tx.send(Control::Signal(other));
                        }
                    }
                }
            })?;
        Ok(())
    }
}

/// A process's exit code as termtrail records it (128+N when killed by
/// signal N, 255 when it cannot be known), and the signal if any.
pub fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> (i32, Option<i32>) {
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => (c, None),
            (None, Some(sig)) => (128 + sig, Some(sig)),
            _ => (255, None),
        },
        Err(_) => (255, None),
    }
}

/// Joins arguments the way a shell would need them typed.
pub fn shell_join(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Ends the command: SIGHUP to its process group, SIGKILL after a grace
/// period. Returns its exit code if it was reaped.
fn end_child(pid: u32, ctl_rx: &Receiver<Control>) -> Option<i32> {
    let pid = rustix::process::Pid::from_raw(pid as i32)?;
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::HUP);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::HUP);
    let deadline = Instant::now() + KILL_GRACE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ctl_rx.recv_timeout(left) {
            Ok(Control::Exited(code)) => return Some(code),
            Ok(_) => continue,
            Err(RecvTimeoutError::Timeout) => {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                return match ctl_rx.recv_timeout(KILL_GRACE) {
                    Ok(Control::Exited(code)) => Some(code),
                    _ => None,
                };
            }
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

fn pump_output(
    pty: &Pty,
    rec: &Recording,
    stop: &AtomicBool,
    echo: bool,
    notice: Option<&MarkerNotice>,
) {
    let mut buf = vec![0u8; 128 << 10];
    let mut stitch = Utf8Stitcher::new();
    let stdout = io::stdout();
    let mut stdout_ok = echo;
    let mut drain_started: Option<Instant> = None;
    let mut boundary = Boundary::default();
    // A notice goes out between two escape sequences of the output.
    let notify = |boundary: &Boundary, stdout_ok: bool| {
        if let Some(n) = notice.filter(|_| stdout_ok && boundary.between())
            && let Some(bytes) = n.due(Instant::now())
        {
            let _ = write_all_fd(io::stdout().as_fd(), &bytes);
        }
    };
    // Non-blocking reads: under load every read returns data at once and no
    // poll(2) is spent; poll only when there is nothing to read, with a
    // timeout so that the end of the session is noticed even when a
    // background job keeps the terminal open.
    let nonblocking = rustix::fs::fcntl_getfl(pty)
        .and_then(|fl| rustix::fs::fcntl_setfl(pty, fl | rustix::fs::OFlags::NONBLOCK))
        .is_ok();
    loop {
        let n = match (&*pty).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                notify(&boundary, stdout_ok);
                let stopping = stop.load(Ordering::SeqCst);
                if stopping {
                    let started = *drain_started.get_or_insert_with(Instant::now);
                    if started.elapsed() > DRAIN_MAX {
                        break;
                    }
                }
                let timeout =
                    rustix::event::Timespec::try_from(if stopping { DRAIN_QUIET } else { POLL })
                        .ok();
                let mut fds = [PollFd::new(pty, PollFlags::IN)];
                match poll(&mut fds, timeout.as_ref()) {
                    Ok(0) if stopping => break,
                    Ok(_) | Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => break,
                }
            }
            // EIO: every slave descriptor is closed; the session is over.
            Err(_) => break,
        };
        if !nonblocking && stop.load(Ordering::SeqCst) && drain_started.is_none() {
            drain_started = Some(Instant::now());
        }
        let now = rec.now();
        if stdout_ok {
            stdout_ok = write_all_fd(stdout.as_fd(), &buf[..n]).is_ok();
            boundary.feed(&buf[..n]);
            notify(&boundary, stdout_ok);
        }
        let ready = stitch.push(&buf[..n]);
        if !ready.is_empty() && !rec.record_blocking(Event::new(now, EventData::Output(ready))) {
            return;
        }
    }
    if let Some(bytes) = notice.and_then(MarkerNotice::finish).filter(|_| stdout_ok) {
        let _ = write_all_fd(stdout.as_fd(), &bytes);
    }
    let rest = stitch.finish();
    if !rest.is_empty() {
        rec.record_blocking(Event::new(rec.now(), EventData::Output(rest)));
    }
}

/// Writes straight to a descriptor: stdout's line buffering would cost a
/// copy and a second write(2) per read.
fn write_all_fd(fd: std::os::fd::BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => {
                let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
                let _ = poll(&mut fds, None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Forwards stdin to the program until stdin ends (or the session does).
fn pump_input(
    pty: &Pty,
    rec: &Recording,
    record_input: bool,
    marker_key: Option<u8>,
    notice: Option<&MarkerNotice>,
) {
    let mut stdin = io::stdin();
    let mut buf = [0u8; 8192];
    let mut stitch = Utf8Stitcher::new();
    let mut withheld = false;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            let (part, marker) = match marker_key.and_then(|k| data.iter().position(|&b| b == k)) {
                Some(at) => (&data[..at], true),
                None => (data, false),
            };
            if !part.is_empty() {
                // Check before the program sees the bytes: a password
                // prompt turns echo off before the user types.
                let echo = !reading_secret(pty);
                let mut event = None;
                if record_input {
                    if echo {
                        withheld = false;
                        let ready = stitch.push(part);
                        if !ready.is_empty() {
                            event = Some(Event::new(rec.now(), EventData::Input(ready)));
                        }
                    } else if !withheld {
                        withheld = true;
                        stitch.finish();
                        let label = "input withheld: password prompt (echo off)".to_string();
                        event = Some(Event::new(rec.now(), EventData::Marker(label)));
                    }
                }
                // Queued before the program gets the bytes when there is
                // room: a program that exits on this input (`exit`) ends the
                // recording, and what made it exit must be in it. When the
                // queue is full (the writer is behind) the bytes go first: a
                // Ctrl+C must not wait for the disk.
                let late = match event.map(|e| rec.try_record(e)) {
                    Some(TryRecord::Full(e)) => Some(e),
                    Some(TryRecord::Ended) => return,
                    _ => None,
                };
                if (&*pty).write_all(part).is_err() {
                    return;
                }
                if let Some(e) = late
                    && !rec.record_blocking(e)
                {
                    return;
                }
            }
            if marker {
                let at = rec.now();
                if !rec.record_blocking(Event::new(at, EventData::Marker(String::new()))) {
                    return;
                }
                if let Some(n) = notice {
                    n.added(at);
                }
            }
            data = &data[part.len() + usize::from(marker)..];
        }
    }
}

/// Pauses between Ctrl+Ds while the program runs on after one.
const EOF_RETRIES: [Duration; 6] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(2),
    Duration::from_secs(2),
];

/// Ends scripted input as a user at the terminal would: Ctrl+D (the
/// terminal's VEOF character) once the program has read everything typed
/// before it. A Ctrl+D that arrives while the program runs a command in
/// line mode becomes an end-of-file mark, and if the program then switches
/// to raw mode (a shell back at its prompt) that mark reads as a NUL byte:
/// the end of input is lost and the program waits forever. So the input
/// queue is watched, and while the program runs on with nothing left to
/// read, the Ctrl+D is typed again (a few times, then it is left alone: a
/// program may ignore end of input). When the program has ended, the
/// session ends and this thread with it.
fn deliver_eof(pty: &Pty, slave: Option<OwnedFd>) {
    let eof = rustix::termios::tcgetattr(pty)
        .map(|t| t.special_codes[rustix::termios::SpecialCodeIndex::VEOF])
        .ok()
        .filter(|&c| c != 0)
        .unwrap_or(0x04);
    // Whether the program has read everything it was given (unknown: yes).
    let drained = || {
        slave
            .as_ref()
            .is_none_or(|fd| rustix::io::ioctl_fionread(fd).is_ok_and(|n| n == 0))
    };
    // As util-linux `script` does: give the program up to 2 s to read what
    // came before the end.
    let until = Instant::now() + Duration::from_secs(2);
    while !drained() && Instant::now() < until {
        thread::sleep(Duration::from_millis(10));
    }
    if (&*pty).write_all(&[eof]).is_err() {
        return;
    }
    for pause in EOF_RETRIES {
        thread::sleep(pause);
        if drained() && (&*pty).write_all(&[eof]).is_err() {
            return;
        }
    }
}
