//! A recording fed from async code. Each recording is an async task that
//! batches events from a bounded channel and hands each batch to the
//! blocking thread pool, where its [`ChainWriter`] compresses, hashes and
//! fsyncs (never on the async executor). No thread belongs to a recording:
//! a host with hundreds of idle shells has hundreds of idle tasks, and with
//! `segment_idle` their compressors are freed too.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use termtrail_format::cast::Header;
use termtrail_format::event::{Event, EventData, Micros};
use termtrail_format::seal::EndReason;
use termtrail_format::writer::{ChainWriter, SealSummary, WriteError, WriterOptions};
use tokio::sync::{mpsc, oneshot};

/// Capacity of the event queue; when full, producers wait (back-pressure).
const QUEUE: usize = 1024;
/// Events handed to the writer per batch, at most.
const BATCH: usize = 4096;
/// How often an active recording closes chunks by age.
const TICK: Duration = Duration::from_millis(200);

enum Msg {
    Event(Event),
    Finish(EndReason, oneshot::Sender<Result<SealSummary, String>>),
}

/// Handle to a running recording. Cloneable; events are timestamped by the
/// recording's own clock.
#[derive(Clone)]
pub struct Recording {
    tx: mpsc::Sender<Msg>,
    start: Instant,
    path: PathBuf,
    /// Becomes true when the recording fails.
    failed: tokio::sync::watch::Receiver<bool>,
}

/// Runs once a recording has ended, with its seal (None when it failed).
pub use termtrail_store::destination::OnDone;

impl Recording {
    /// Creates the file (never overwriting) and starts the recording task.
    /// `on_done` runs once the task has ended, with the seal (None when the
    /// recording failed). Must be
    /// called inside a tokio runtime.
    pub fn start(
        path: &Path,
        header: Header,
        opts: WriterOptions,
        on_done: Option<OnDone>,
    ) -> Result<Recording, WriteError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let (file, path) = create_unique(path)?;
        let path = path.as_path();
        let writer = ChainWriter::new(file, header, opts, None)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let start = Instant::now();
        let name = path.display().to_string();
        let (failed_tx, failed) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let sealed = run(writer, rx, start, name, failed_tx).await;
            if let Some(done) = on_done {
                done(sealed);
            }
        });
        Ok(Recording {
            tx,
            start,
            path: path.to_path_buf(),
            failed,
        })
    }

    /// Events accepted but not yet handed to the writer (recording lag).
    pub fn backlog(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Microseconds since the recording started.
    pub fn now(&self) -> Micros {
        self.start.elapsed().as_micros() as Micros
    }

    /// Records an event now. Waits when the writer is behind; returns false
    /// when the recording has failed or finished.
    pub async fn record(&self, data: EventData) -> bool {
        self.tx
            .send(Msg::Event(Event::new(self.now(), data)))
            .await
            .is_ok()
    }

    /// Resolves when the recording fails (never, if it ends well).
    pub async fn wait_failed(&self) {
        let mut rx = self.failed.clone();
        if rx.wait_for(|f| *f).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Seals the recording.
    pub async fn finish(&self, end: EndReason) -> Result<SealSummary, String> {
        let (done_tx, done_rx) = oneshot::channel();
        self.tx
            .send(Msg::Finish(end, done_tx))
            .await
            .map_err(|_| "the recording already ended".to_string())?;
        done_rx
            .await
            .map_err(|_| "the recording task stopped".to_string())?
    }
}

/// Creates `path`, or `<stem>-N.cast.zst` beside it when that name is taken
/// (the same session and shell ids started twice within one second).
fn create_unique(path: &Path) -> std::io::Result<(File, PathBuf)> {
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
    };
    match open(path) {
        Ok(f) => return Ok((f, path.to_path_buf())),
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("recording.cast.zst");
    let stem = name.strip_suffix(".cast.zst").unwrap_or(name);
    for n in 1..1000 {
        let candidate = path.with_file_name(format!("{stem}-{n}.cast.zst"));
        match open(&candidate) {
            Ok(f) => return Ok((f, candidate)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{}: no free name", path.display()),
    ))
}

type Writer = ChainWriter<File>;

/// At most this many writer jobs run at once, whatever the number of
/// recordings: a burst on hundreds of shells then uses a few pool threads
/// (and a few allocator arenas) instead of hundreds. Compression is CPU
/// bound, so more would not be faster on this machine anyway.
static WRITER_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Runs `f` on the writer in the blocking pool and gives the writer back.
async fn on_pool<T: Send + 'static>(
    w: Writer,
    f: impl FnOnce(&mut Writer) -> T + Send + 'static,
) -> Option<(Writer, T)> {
    let _slot = WRITER_SLOTS.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || {
        let mut w = w;
        let r = f(&mut w);
        (w, r)
    })
    .await
    .ok()
}

/// Recordings that failed after they started (the shell went on without
/// them), in this process. Issue 5's `--strict` ends such shells instead.
static FAILED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many recordings failed while running, in this process.
pub fn failures() -> u64 {
    FAILED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The recording's failure, and its watchers (`Recording::wait_failed`)
/// told once, when it happens.
struct Failure {
    why: Option<String>,
    tx: tokio::sync::watch::Sender<bool>,
}

impl Failure {
    fn mark(&mut self, why: String) {
        FAILED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.why = Some(why);
        self.tx.send_replace(true);
    }
}

/// Runs `f` on the writer unless the recording has failed; a write error or
/// a panic marks it failed (it then accepts nothing more).
async fn job(
    w: &mut Option<Writer>,
    failed: &mut Failure,
    name: &str,
    f: impl FnOnce(&mut Writer) -> Result<(), WriteError> + Send + 'static,
) {
    if failed.why.is_some() {
        return;
    }
    let Some(writer) = w.take() else { return };
    match on_pool(writer, f).await {
        Some((writer, r)) => {
            *w = Some(writer);
            if let Err(e) = r {
                tracing::error!(recording = %name, error = %e, "recording failed; the shell goes on unrecorded");
                failed.mark(e.to_string());
            }
        }
        None => failed.mark("recording worker panicked".into()),
    }
}

/// Runs the recording until it is sealed (returning the seal) or fails.
async fn run(
    writer: Writer,
    mut rx: mpsc::Receiver<Msg>,
    start: Instant,
    name: String,
    failed_tx: tokio::sync::watch::Sender<bool>,
) -> Option<SealSummary> {
    let now = move || start.elapsed().as_micros() as Micros;
    let mut w = Some(writer);
    let mut failed = Failure {
        why: None,
        tx: failed_tx,
    };
    // Whether a tick may have work (an open chunk, an idle segment to close):
    // set by events, cleared once the recording has been quiet for a while,
    // so idle recordings cost nothing.
    let mut active = false;
    let mut quiet_ticks = 0u32;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = ticker.tick(), if active => {
                quiet_ticks += 1;
                // ~1 s for the chunk, then up to 12 s for an idle segment.
                if quiet_ticks > 60 {
                    active = false;
                }
                let t = now();
                job(&mut w, &mut failed, &name, move |w| w.tick(t)).await;
                continue;
            }
        };
        let Some(msg) = msg else { break };
        let mut batch = Vec::new();
        let mut finish = None;
        match msg {
            Msg::Event(e) => batch.push(e),
            Msg::Finish(end, done) => finish = Some((end, done)),
        }
        while finish.is_none() && batch.len() < BATCH {
            match rx.try_recv() {
                Ok(Msg::Event(e)) => batch.push(e),
                Ok(Msg::Finish(end, done)) => finish = Some((end, done)),
                Err(_) => break,
            }
        }
        if !batch.is_empty() && failed.why.is_none() {
            active = true;
            quiet_ticks = 0;
            job(&mut w, &mut failed, &name, move |w| {
                for e in &batch {
                    w.push(e)?;
                }
                w.commit()
            })
            .await;
        }
        if let Some((end, done)) = finish {
            let result = match (failed.why.take(), w.take()) {
                (Some(e), _) => Err(e),
                (None, Some(writer)) => {
                    tokio::task::spawn_blocking(move || writer.seal(end).map_err(|e| e.to_string()))
                        .await
                        .unwrap_or_else(|_| Err("recording worker panicked".into()))
                }
                (None, None) => Err("the recording already ended".into()),
            };
            let sealed = result.as_ref().ok().cloned();
            let _ = done.send(result);
            return sealed;
        }
    }
    // Every handle dropped without finishing: seal as interrupted.
    if let (Some(writer), None) = (w, failed.why) {
        return tokio::task::spawn_blocking(move || {
            writer.seal(EndReason::Interrupted {
                detail: "recorder stopped".into(),
            })
        })
        .await
        .ok()
        .and_then(Result::ok);
    }
    None
}
