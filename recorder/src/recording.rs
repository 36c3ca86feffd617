//! A recording fed from async code: events go through a bounded tokio
//! channel to a dedicated thread that owns the [`ChainWriter`] (zstd, SHA-256
//! and fsync never run on the async executor). A ticker closes chunks by age
//! while the shell is quiet.

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
/// How often idle chunks are closed.
const TICK: Duration = Duration::from_millis(200);

enum Msg {
    Event(Event),
    Tick(Micros),
    Finish(EndReason, oneshot::Sender<Result<SealSummary, String>>),
}

/// Handle to a running recording. Cloneable; events are timestamped by the
/// recording's own clock.
#[derive(Clone)]
pub struct Recording {
    tx: mpsc::Sender<Msg>,
    start: Instant,
    path: PathBuf,
}

impl Recording {
    /// Creates the file (never overwriting) and starts the writer thread.
    pub fn start(
        path: &Path,
        header: Header,
        opts: WriterOptions,
    ) -> Result<Recording, WriteError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        let writer = ChainWriter::new(file, header, opts, None)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let start = Instant::now();
        let name = format!(
            "rec:{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        std::thread::Builder::new()
            .name(name)
            .spawn(move || run(writer, rx))
            .map_err(WriteError::Io)?;
        let rec = Recording {
            tx: tx.clone(),
            start,
            path: path.to_path_buf(),
        };
        // The ticker holds only a weak handle: it stops when the recording
        // is finished or every handle is gone.
        let weak = tx.downgrade();
        drop(tx);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            loop {
                interval.tick().await;
                let Some(tx) = weak.upgrade() else { break };
                let now = start.elapsed().as_micros() as Micros;
                if tx.send(Msg::Tick(now)).await.is_err() {
                    break;
                }
            }
        });
        Ok(rec)
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

    /// Seals the recording.
    pub async fn finish(&self, end: EndReason) -> Result<SealSummary, String> {
        let (done_tx, done_rx) = oneshot::channel();
        self.tx
            .send(Msg::Finish(end, done_tx))
            .await
            .map_err(|_| "the recording already ended".to_string())?;
        done_rx
            .await
            .map_err(|_| "the recording thread stopped".to_string())?
    }
}

fn run(mut w: ChainWriter<File>, mut rx: mpsc::Receiver<Msg>) {
    let mut failed: Option<String> = None;
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Msg::Event(e) if failed.is_none() => {
                let mut r = w.push(&e);
                // Group commit: whatever else is queued goes in the same fsync.
                while r.is_ok() {
                    match rx.try_recv() {
                        Ok(Msg::Event(e)) => r = w.push(&e),
                        Ok(Msg::Tick(_)) => {}
                        Ok(Msg::Finish(end, done)) => {
                            let _ = done.send(w.seal(end).map_err(|e| e.to_string()));
                            return;
                        }
                        Err(_) => break,
                    }
                }
                if let Err(e) = r.and_then(|_| w.commit()) {
                    tracing::error!(error = %e, "recording failed");
                    failed = Some(e.to_string());
                }
            }
            Msg::Event(_) => {}
            Msg::Tick(now) if failed.is_none() => {
                if let Err(e) = w.tick(now) {
                    tracing::error!(error = %e, "recording failed");
                    failed = Some(e.to_string());
                }
            }
            Msg::Tick(_) => {}
            Msg::Finish(end, done) => {
                let r = match failed.take() {
                    Some(e) => Err(e),
                    None => w.seal(end).map_err(|e| e.to_string()),
                };
                let _ = done.send(r);
                return;
            }
        }
    }
    // Every handle dropped without finishing: seal as interrupted.
    if failed.is_none() {
        let _ = w.seal(EndReason::Interrupted {
            detail: "recorder stopped".into(),
        });
    }
}
