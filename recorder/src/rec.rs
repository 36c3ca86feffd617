//! `termtrail rec`: run a command in a PTY and record it.
//!
//! Threads (each blocking on one thing, so none can stall another):
//! - output: PTY → the user's stdout and the writer (UTF-8 stitched);
//! - input: stdin → PTY (and, with `--input`, the writer, unless the PTY has
//!   echo off, in which case a marker says input was withheld);
//! - signals: SIGWINCH resizes, SIGUSR1 adds a marker, SIGTERM/SIGINT/SIGHUP
//!   end the session;
//! - waiter: reaps the child;
//! - writer: owns the [`ChainWriter`], ticks it every 100 ms, commits once
//!   per batch of events (group commit).
//!
//! The writer channel is bounded: a slow disk slows the program's output
//! (back-pressure through the PTY) instead of growing memory or dropping
//! frames.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TrySendError, channel, sync_channel,
};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pty_process::blocking::Pty;
use rustix::event::{PollFd, PollFlags, poll};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGWINCH};
use termtrail_format::cast::{Header, RecordingMeta};
use termtrail_format::event::{Event, EventData, Micros, TermSize};
use termtrail_format::seal::EndReason;
use termtrail_format::sign::SecretKey;
use termtrail_format::utf8::Utf8Stitcher;
use termtrail_format::writer::{
    ChainWriter, SealSummary, WriteError, WriterOptions, new_recording_id,
};

use crate::tty::{RawMode, reading_secret, restore_terminal, stdin_is_tty, terminal_size};

/// The default marker hotkey: Ctrl+\ (0x1c).
pub const MARKER_KEY: u8 = 0x1c;
/// How long output is drained after the command exits.
const DRAIN_QUIET: Duration = Duration::from_millis(100);
/// Upper bound on draining (background jobs may keep writing).
const DRAIN_MAX: Duration = Duration::from_secs(2);
/// Writer idle tick (closes chunks by age).
const TICK: Duration = Duration::from_millis(100);
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

enum Msg {
    Event(Event),
    Finish(EndReason),
}

enum Control {
    Exited(i32),
    Signal(i32),
    WriterFailed,
}

/// The recorder's clock: microseconds since the session started.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(&self) -> Micros {
        self.0.elapsed().as_micros() as Micros
    }
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Runs the command and records it to `path`. Returns when the command has
/// exited (or the session was ended by a signal) and the recording is sealed.
pub fn record(opts: &RecOptions, path: &Path) -> Result<RecOutcome, RecError> {
    let key = opts.sign_key.clone();
    let command = if opts.command.is_empty() {
        vec![
            std::env::var("SHELL")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "/bin/sh".into()),
        ]
    } else {
        opts.command.clone()
    };
    let interactive = !opts.headless && stdin_is_tty();
    let size = if interactive {
        terminal_size().or(opts.size).unwrap_or(TermSize::DEFAULT)
    } else {
        opts.size.unwrap_or(TermSize::DEFAULT)
    };
    let id = new_recording_id().map_err(|e| RecError::Spawn {
        command: command.join(" "),
        message: e,
    })?;
    let term_type = std::env::var("TERM")
        .ok()
        .filter(|t| !t.is_empty() && t != "dumb");
    let header = build_header(opts, &command, size, term_type.clone(), &id);

    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .create_new(!opts.overwrite)
        .truncate(opts.overwrite)
        .open(path)
        .map_err(|source| RecError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    let writer = ChainWriter::new(file, header, opts.writer.clone(), key).map_err(|source| {
        RecError::Failed {
            path: path.to_path_buf(),
            source,
            exit_code: None,
        }
    })?;

    let spawn_err = |message: String| RecError::Spawn {
        command: command.join(" "),
        message,
    };
    // Handlers first: a signal that arrives as soon as the command starts
    // (a marker, a SIGTERM) must not take the default action and kill us.
    let mut signals =
        signal_hook::iterator::Signals::new([SIGWINCH, SIGTERM, SIGINT, SIGHUP, SIGUSR1])?;
    let signals_handle = signals.handle();
    let (pty, pts) = pty_process::blocking::open().map_err(|e| spawn_err(e.to_string()))?;
    pty.resize(pty_process::Size::new(size.rows, size.cols))
        .map_err(|e| spawn_err(e.to_string()))?;
    let mut cmd = pty_process::blocking::Command::new(&command[0])
        .args(&command[1..])
        .env("TERMTRAIL_RECORDING", hex::encode(id));
    if term_type.is_none() {
        cmd = cmd.env("TERM", "xterm-256color");
    }
    let mut child = match cmd.spawn(pts) {
        Ok(c) => c,
        Err(e) => {
            // Nothing was recorded: leave no header-only file behind.
            drop(writer);
            let _ = std::fs::remove_file(path);
            return Err(spawn_err(e.to_string()));
        }
    };
    let child_pid = child.id();
    let clock = Clock(Instant::now());
    let pty = Arc::new(pty);

    let raw = if interactive { RawMode::enter()? } else { None };

    let (tx, rx) = sync_channel::<Msg>(1024);
    let (ctl_tx, ctl_rx) = channel::<Control>();

    let writer_handle = {
        let ctl_tx = ctl_tx.clone();
        thread::Builder::new()
            .name("writer".into())
            .spawn(move || {
                // The PTY reader and the recorded program come first: a busy
                // writer must not slow the session (it has a bounded queue
                // and back-pressure instead).
                if let Some(tid) =
                    rustix::process::Pid::from_raw(rustix::thread::gettid().as_raw_nonzero().get())
                {
                    let _ = rustix::process::setpriority_process(Some(tid), 5);
                }
                let r = run_writer(writer, rx, clock);
                if r.is_err() {
                    let _ = ctl_tx.send(Control::WriterFailed);
                }
                r
            })?
    };
    let stop_output = Arc::new(AtomicBool::new(false));
    let output_handle = {
        let (pty, tx, stop) = (Arc::clone(&pty), tx.clone(), Arc::clone(&stop_output));
        let echo = opts.echo_output;
        thread::Builder::new()
            .name("output".into())
            .spawn(move || pump_output(&pty, &tx, clock, &stop, echo))?
    };
    {
        let (pty, tx) = (Arc::clone(&pty), tx.clone());
        let (record_input, marker_key, headless) = (
            opts.input,
            opts.marker_key.filter(|_| interactive),
            !interactive,
        );
        thread::Builder::new()
            .name("input".into())
            .spawn(move || pump_input(&pty, &tx, clock, record_input, marker_key, headless))?;
    }
    {
        let (pty, tx, ctl_tx) = (Arc::clone(&pty), tx.clone(), ctl_tx.clone());
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    match sig {
                        SIGWINCH if interactive => {
                            if let Some(size) = terminal_size() {
                                let _ = pty.resize(pty_process::Size::new(size.rows, size.cols));
                                let _ = tx.send(Msg::Event(Event::new(
                                    clock.now(),
                                    EventData::Resize(size),
                                )));
                            }
                        }
                        SIGUSR1 => {
                            let _ = tx.send(Msg::Event(Event::new(
                                clock.now(),
                                EventData::Marker(String::new()),
                            )));
                        }
                        SIGWINCH => {}
                        other => {
                            let _ = ctl_tx.send(Control::Signal(other));
                        }
                    }
                }
            })?;
    }
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
            (
                code,
                EndReason::Interrupted {
                    detail: "recording failed".into(),
                },
                true,
            )
        }
    };
    signals_handle.close();
    stop_output.store(true, Ordering::SeqCst);
    let _ = output_handle.join();
    if !writer_failed {
        let _ = tx.send(Msg::Event(Event::new(
            clock.now(),
            EventData::Exit(exit_code),
        )));
        let _ = tx.send(Msg::Finish(end.clone()));
    }
    drop(tx);
    let sealed = writer_handle.join().unwrap_or(Err(WriteError::Failed));
    drop(raw);
    restore_terminal();
    match sealed {
        Ok(summary) => Ok(RecOutcome {
            exit_code,
            end,
            summary,
        }),
        Err(source) => Err(RecError::Failed {
            path: path.to_path_buf(),
            source,
            exit_code: Some(exit_code),
        }),
    }
}

fn build_header(
    opts: &RecOptions,
    command: &[String],
    size: TermSize,
    term_type: Option<String>,
    id: &[u8; 16],
) -> Header {
    let mut header = Header::new(size);
    header.term.kind = term_type.or_else(|| Some("xterm-256color".into()));
    header.timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs());
    header.command = (!opts.command.is_empty()).then(|| shell_join(command));
    header.title = opts.title.clone();
    if let Ok(shell) = std::env::var("SHELL") {
        header.env.insert("SHELL".into(), shell);
    }
    header.termtrail = Some(RecordingMeta {
        id: hex::encode(id),
        source: Some("local".into()),
        host: host_name(),
        principal: std::env::var("USER")
            .ok()
            .or_else(|| std::env::var("LOGNAME").ok()),
        input: opts.input,
        extra: opts
            .after
            .iter()
            .map(|a| {
                (
                    termtrail_format::journal::AFTER_FIELD.to_string(),
                    a.clone(),
                )
            })
            .collect(),
        ..RecordingMeta::default()
    });
    header
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

fn run_writer<W: termtrail_format::writer::DurableWrite>(
    mut w: ChainWriter<W>,
    rx: Receiver<Msg>,
    clock: Clock,
) -> Result<SealSummary, WriteError> {
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Msg::Event(e)) => {
                w.push(&e)?;
                // Group commit: take whatever else is already queued.
                let mut finish = None;
                for _ in 0..4096 {
                    match rx.try_recv() {
                        Ok(Msg::Event(e)) => w.push(&e)?,
                        Ok(Msg::Finish(end)) => {
                            finish = Some(end);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if let Some(end) = finish {
                    return w.seal(end);
                }
                w.tick(clock.now())?;
            }
            Ok(Msg::Finish(end)) => return w.seal(end),
            Err(RecvTimeoutError::Timeout) => w.tick(clock.now())?,
            Err(RecvTimeoutError::Disconnected) => {
                return w.seal(EndReason::Interrupted {
                    detail: "recorder stopped".into(),
                });
            }
        }
    }
}

fn send(tx: &SyncSender<Msg>, e: Event) -> bool {
    match tx.try_send(Msg::Event(e)) {
        Ok(()) => true,
        Err(TrySendError::Full(m)) => tx.send(m).is_ok(),
        Err(TrySendError::Disconnected(_)) => false,
    }
}

fn pump_output(pty: &Pty, tx: &SyncSender<Msg>, clock: Clock, stop: &AtomicBool, echo: bool) {
    let mut buf = vec![0u8; 128 << 10];
    let mut stitch = Utf8Stitcher::new();
    let stdout = io::stdout();
    let mut stdout_ok = echo;
    let mut drain_started: Option<Instant> = None;
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
                let stopping = stop.load(Ordering::SeqCst);
                if stopping {
                    let started = *drain_started.get_or_insert_with(Instant::now);
                    if started.elapsed() > DRAIN_MAX {
                        break;
                    }
                }
                let timeout =
                    rustix::event::Timespec::try_from(if stopping { DRAIN_QUIET } else { TICK })
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
        let now = clock.now();
        if stdout_ok {
            stdout_ok = write_all_fd(stdout.as_fd(), &buf[..n]).is_ok();
        }
        let ready = stitch.push(&buf[..n]);
        if !ready.is_empty() && !send(tx, Event::new(now, EventData::Output(ready))) {
            return;
        }
    }
    let rest = stitch.finish();
    if !rest.is_empty() {
        send(tx, Event::new(clock.now(), EventData::Output(rest)));
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

fn pump_input(
    pty: &Pty,
    tx: &SyncSender<Msg>,
    clock: Clock,
    record_input: bool,
    marker_key: Option<u8>,
    headless: bool,
) {
    let mut stdin = io::stdin();
    let mut buf = [0u8; 8192];
    let mut stitch = Utf8Stitcher::new();
    let mut withheld = false;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => {
                if headless {
                    // End of scripted input: what a user would type (Ctrl+D).
                    let _ = (&*pty).write_all(&[0x04]);
                }
                return;
            }
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
                            event = Some(Event::new(clock.now(), EventData::Input(ready)));
                        }
                    } else if !withheld {
                        withheld = true;
                        stitch.finish();
                        let label = "input withheld: password prompt (echo off)".to_string();
                        event = Some(Event::new(clock.now(), EventData::Marker(label)));
                    }
                }
                // Queued before the program gets the bytes when there is
                // room: a program that exits on this input (`exit`) ends the
                // recording, and what made it exit must be in it. When the
                // queue is full (the writer is behind) the bytes go first: a
                // Ctrl+C must not wait for the disk.
                let late = match event.map(|e| tx.try_send(Msg::Event(e))) {
                    Some(Err(TrySendError::Full(m))) => Some(m),
                    Some(Err(TrySendError::Disconnected(_))) => return,
                    _ => None,
                };
                if (&*pty).write_all(part).is_err() {
                    return;
                }
                if let Some(m) = late
                    && tx.send(m).is_err()
                {
                    return;
                }
            }
            if marker
                && !send(
                    tx,
                    Event::new(clock.now(), EventData::Marker(String::new())),
                )
            {
                return;
            }
            data = &data[part.len() + usize::from(marker)..];
        }
    }
}
