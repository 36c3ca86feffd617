//! The one recording engine, used by every source (`rec`, the shell host's
//! shells, the one-shot command call): events come through a bounded queue,
//! are handed to the [`ChainWriter`] in batches and committed once per batch
//! (group commit), a tick closes chunks (and idle segments) by age, and a
//! finish seals. A write error marks the recording failed once.
//!
//! Output redaction ([`crate::secrets::Redactor`]) runs inside the
//! writer's job, after the queue: producers, batching and [`TryRecord`] are
//! unchanged, and a recording without rules does not run it at all.
//!
//! Time comes from [`Clock`], which reads tokio's clock: tests run the
//! engine under paused time and move it with `tokio::time::advance`.
//!
//! Where the writer's work runs is a choice ([`Jobs`]): a host with hundreds
//! of shells hands each batch to the blocking pool (a few at a time, never
//! on the async executor, and no thread per recording); `rec` gives the
//! engine a thread of its own and runs the work there.

use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use termtrail_format::cast::Header;
use termtrail_format::event::{Event, EventData, Micros};
use termtrail_format::seal::EndReason;
use termtrail_format::writer::{ChainWriter, SealSummary, WriteError, WriterOptions};
use tokio::sync::{mpsc, oneshot, watch};

use crate::newfile::{self, NewFileError, Taken};
use crate::secrets::{Redaction, Redactor};

/// Capacity of the event queue; when full, producers wait (back-pressure).
const QUEUE: usize = 1024;
/// Events handed to the writer per batch, at most.
const BATCH: usize = 4096;
/// Bytes of event data handed to the writer per batch, at most: a batch is
/// held whole while the queue fills again, so this bounds the memory a
/// fast producer can pin (with [`QUEUE`]) to about one chunk's worth.
const BATCH_BYTES: usize = 256 << 10;

/// How often the engine ticks, and when an idle recording stops ticking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// How often a recording with recent events closes chunks by age.
    pub tick: Duration,
    /// Ticks without events after which ticking stops until the next event
    /// (None: it never stops).
    pub quiet_ticks: Option<u32>,
}

impl Pace {
    /// A host's shells: every 200 ms, for about 12 s after the last event
    /// (1 s for the chunk, then up to the segment idle bound), so that idle
    /// shells cost nothing.
    pub const HOST: Pace = Pace {
        tick: Duration::from_millis(200),
        quiet_ticks: Some(60),
    };
    /// `rec`: every 100 ms for as long as the recording runs.
    pub const LOCAL: Pace = Pace {
        tick: Duration::from_millis(100),
        quiet_ticks: None,
    };
}

/// Where the writer's work (compression, hashing, fsync) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    /// The blocking thread pool, a few jobs at once over all recordings
    /// (never on the async executor).
    Pool,
    /// The thread running the engine (`rec` gives it a thread of its own).
    Inline,
}

/// A recording's clock: microseconds since it started. It reads tokio's
/// clock, so paused time in tests moves it (outside a runtime it is the
/// monotonic system clock).
#[derive(Debug, Clone, Copy)]
pub struct Clock(tokio::time::Instant);

impl Clock {
    /// A clock starting now.
    pub fn start() -> Clock {
        Clock(tokio::time::Instant::now())
    }

    /// Microseconds since the clock started.
    pub fn now(&self) -> Micros {
        self.0.elapsed().as_micros() as Micros
    }
}

/// Why a recording could not be written or sealed.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// Writing failed (the file keeps every chunk committed before).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The writer panicked.
    #[error("recording worker panicked")]
    Panicked,
    /// The recording had already ended (or its engine stopped).
    #[error("the recording already ended")]
    Ended,
}

type Sealed = Result<SealSummary, RecordingError>;

enum Msg {
    Event(Event),
    Finish(EndReason, oneshot::Sender<Sealed>),
}

/// What [`Recording::try_record`] did with an event.
#[derive(Debug)]
pub enum TryRecord {
    /// Queued.
    Queued,
    /// The queue is full: the event is given back.
    Full(Event),
    /// The recording has ended.
    Ended,
}

/// Handle to a running recording. Cloneable; events are timestamped by the
/// recording's own clock.
#[derive(Clone)]
pub struct Recording {
    tx: mpsc::Sender<Msg>,
    clock: Clock,
    path: PathBuf,
    /// Becomes true when the recording fails.
    failed: watch::Receiver<bool>,
}

/// Runs once a recording has ended, with its seal (None when it failed).
pub use termtrail_store::destination::OnDone;

/// Resolves when a recording fails; holds no sender, so waiting on it does
/// not keep the recording open.
pub struct FailureSignal(watch::Receiver<bool>);

impl FailureSignal {
    /// Resolves when the recording fails (never, if it ends well).
    pub async fn wait(mut self) {
        if self.0.wait_for(|f| *f).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Recording {
    /// Creates the file (never overwriting: `<stem>-N.cast.zst` when the
    /// name is taken) and starts the engine as a task of the current tokio
    /// runtime, at the host's pace, on the blocking pool. `on_done` runs
    /// once the engine has ended, with the seal (None when it failed).
    /// Output is redacted by `redaction`'s rules before it is written.
    pub fn start(
        path: &Path,
        header: Header,
        opts: WriterOptions,
        redaction: &Redaction,
        on_done: Option<OnDone>,
    ) -> Result<Recording, WriteError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Named only once its header is written (crate::newfile).
        let (writer, path) = newfile::create(path, Taken::NextFree, |file| {
            ChainWriter::new(file, header, opts, None)
        })
        .map_err(|e| match e {
            NewFileError::Create(e) => WriteError::Io(e),
            NewFileError::Start(e) => e,
            NewFileError::BeingRecorded(b) => WriteError::Io(std::io::Error::other(b)),
        })?;
        let (recording, engine) =
            Recording::new(writer, path, Clock::start(), Pace::HOST, Jobs::Pool);
        let engine = engine.redact(redaction);
        tokio::spawn(async move {
            let sealed = engine.run().await;
            if let Some(done) = on_done {
                done(sealed);
            }
        });
        Ok(recording)
    }

    /// A recording over `writer` (writing `path`), and the engine that
    /// must run for it (`Engine::run`) wherever the caller chooses.
    pub fn new(
        writer: ChainWriter<File>,
        path: PathBuf,
        clock: Clock,
        pace: Pace,
        jobs: Jobs,
    ) -> (Recording, Engine) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (failed_tx, failed) = watch::channel(false);
        let name = path.display().to_string();
        let engine = Engine {
            writer: Some(Box::new(Out {
                writer,
                redactor: None,
                scratch: Vec::new(),
            })),
            rx,
            clock,
            pace,
            jobs,
            name,
            failure: Failure {
                why: None,
                tx: failed_tx,
            },
        };
        let recording = Recording {
            tx,
            clock,
            path,
            failed,
        };
        (recording, engine)
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
        self.clock.now()
    }

    /// Records an event now. Waits when the writer is behind; returns false
    /// when the recording has failed or finished.
    pub async fn record(&self, data: EventData) -> bool {
        self.tx
            .send(Msg::Event(Event::new(self.now(), data)))
            .await
            .is_ok()
    }

    /// Queues a timestamped event without waiting (from any thread).
    pub fn try_record(&self, event: Event) -> TryRecord {
        match self.tx.try_send(Msg::Event(event)) {
            Ok(()) => TryRecord::Queued,
            Err(mpsc::error::TrySendError::Full(Msg::Event(e))) => TryRecord::Full(e),
            Err(_) => TryRecord::Ended,
        }
    }

    /// Queues a timestamped event, blocking this thread while the queue is
    /// full; false when the recording has ended. Not for async code.
    pub fn record_blocking(&self, event: Event) -> bool {
        match self.try_record(event) {
            TryRecord::Queued => true,
            TryRecord::Full(e) => self.tx.blocking_send(Msg::Event(e)).is_ok(),
            TryRecord::Ended => false,
        }
    }

    /// A signal that resolves when the recording fails.
    pub fn failure(&self) -> FailureSignal {
        FailureSignal(self.failed.clone())
    }

    /// Resolves when the recording fails (never, if it ends well).
    pub async fn wait_failed(&self) {
        self.failure().wait().await
    }

    /// Seals the recording (the error of a failed one instead).
    pub async fn finish(&self, end: EndReason) -> Result<SealSummary, RecordingError> {
        let (done_tx, done_rx) = oneshot::channel();
        self.tx
            .send(Msg::Finish(end, done_tx))
            .await
            .map_err(|_| RecordingError::Ended)?;
        done_rx.await.map_err(|_| RecordingError::Ended)?
    }

    /// [`Recording::finish`] from a thread outside the runtime.
    pub fn finish_blocking(&self, end: EndReason) -> Result<SealSummary, RecordingError> {
        let (done_tx, done_rx) = oneshot::channel();
        self.tx
            .blocking_send(Msg::Finish(end, done_tx))
            .map_err(|_| RecordingError::Ended)?;
        done_rx.blocking_recv().map_err(|_| RecordingError::Ended)?
    }
}

type Writer = ChainWriter<File>;

/// What the engine's jobs run on: the writer, behind the redactor when
/// the recording has rules.
struct Out {
    writer: Writer,
    redactor: Option<Redactor>,
    /// The redactor's output, reused.
    scratch: Vec<Event>,
}

impl Out {
    /// Pushes a batch (through the redactor), then ticks at `now`: closes a
    /// chunk past its age and commits.
    fn push_batch(&mut self, batch: Vec<Event>, now: Micros) -> Result<(), WriteError> {
        match &mut self.redactor {
            None => {
                for e in &batch {
                    self.writer.push(e)?;
                }
            }
            Some(r) => {
                for e in batch {
                    r.push(e, &mut self.scratch);
                }
                for e in self.scratch.drain(..) {
                    self.writer.push(&e)?;
                }
            }
        }
        self.tick(now)
    }

    /// Releases output the redactor has held long enough, then ticks the
    /// writer.
    fn tick(&mut self, now: Micros) -> Result<(), WriteError> {
        if let Some(r) = &mut self.redactor {
            r.tick(now, &mut self.scratch);
            for e in self.scratch.drain(..) {
                self.writer.push(&e)?;
            }
        }
        self.writer.tick(now)
    }

    /// Releases everything held back and seals.
    fn seal(mut self, end: EndReason) -> Result<SealSummary, WriteError> {
        if let Some(r) = &mut self.redactor {
            r.flush(&mut self.scratch);
            for e in self.scratch.drain(..) {
                self.writer.push(&e)?;
            }
        }
        self.writer.seal(end)
    }
}

/// At most this many pool jobs run at once, whatever the number of
/// recordings: a burst on hundreds of shells then uses a few pool threads
/// (and a few allocator arenas) instead of hundreds. Compression is CPU
/// bound, so more would not be faster on this machine anyway.
static WRITER_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Runs `f` where `jobs` says; None when it panicked.
async fn off_loop<T: Send + 'static>(
    jobs: Jobs,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match jobs {
        Jobs::Pool => {
            let _slot = WRITER_SLOTS.acquire().await.ok()?;
            tokio::task::spawn_blocking(f).await.ok()
        }
        Jobs::Inline => std::panic::catch_unwind(AssertUnwindSafe(f)).ok(),
    }
}

/// Recordings that failed after they started (the shell went on without
/// them), in this process. Issue 5's `--strict` ends such shells instead.
static FAILED: AtomicU64 = AtomicU64::new(0);

/// How many recordings failed while running, in this process.
pub fn failures() -> u64 {
    FAILED.load(Ordering::Relaxed)
}

/// The bytes an event carries (what a batch of it holds in memory).
fn data_len(e: &Event) -> usize {
    match &e.data {
        EventData::Output(b) | EventData::Input(b) => b.len(),
        EventData::Marker(s) => s.len(),
        EventData::Other { code, data } => code.len() + data.len(),
        EventData::Resize(_) | EventData::Exit(_) => 0,
    }
}

/// The recording's failure, and its watchers ([`Recording::wait_failed`])
/// told once, when it happens.
struct Failure {
    why: Option<RecordingError>,
    tx: watch::Sender<bool>,
}

impl Failure {
    fn mark(&mut self, why: RecordingError) {
        FAILED.fetch_add(1, Ordering::Relaxed);
        self.why = Some(why);
        self.tx.send_replace(true);
    }
}

/// The engine of one recording: owns the writer until it is sealed.
pub struct Engine {
    /// Boxed: it moves into every job and back, and the engine's task
    /// would otherwise hold several copies of it inline (a host keeps one
    /// such task per shell, idle or not).
    writer: Option<Box<Out>>,
    rx: mpsc::Receiver<Msg>,
    clock: Clock,
    pace: Pace,
    jobs: Jobs,
    /// The file, for log lines.
    name: String,
    failure: Failure,
}

impl Engine {
    /// Redacts output by `redaction`'s rules before it is written (nothing
    /// changes without rules).
    pub fn redact(mut self, redaction: &Redaction) -> Engine {
        if let Some(out) = &mut self.writer {
            out.redactor = redaction.redactor();
        }
        self
    }

    /// Runs the recording until it is sealed (returning the seal) or every
    /// handle is gone (sealing it as interrupted); None when it failed.
    pub async fn run(mut self) -> Option<SealSummary> {
        // Whether a tick may have work (an open chunk, an idle segment to
        // close): set by events, cleared once the recording has been quiet
        // for `quiet_ticks`, so idle recordings cost nothing.
        let mut active = false;
        let mut quiet_ticks = 0u32;
        let mut ticker = tokio::time::interval(self.pace.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                m = self.rx.recv() => m,
                _ = ticker.tick(), if active => {
                    quiet_ticks += 1;
                    if self.pace.quiet_ticks.is_some_and(|q| quiet_ticks > q) {
                        active = false;
                    }
                    let t = self.clock.now();
                    self.job(move |w| w.tick(t)).await;
                    continue;
                }
            };
            let Some(first) = msg else { break };
            let (batch, finish) = self.take_batch(first);
            if !batch.is_empty() && self.failure.why.is_none() {
                active = true;
                quiet_ticks = 0;
                let t = self.clock.now();
                // Closes a chunk past its age and commits the batch.
                self.job(move |w| w.push_batch(batch, t)).await;
            }
            if let Some((end, done)) = finish {
                let result = self.seal(end).await;
                let sealed = result.as_ref().ok().cloned();
                let _ = done.send(result);
                return sealed;
            }
        }
        // Every handle dropped without finishing: seal as interrupted.
        let end = EndReason::Interrupted {
            detail: "recorder stopped".into(),
        };
        self.seal(end).await.ok()
    }

    /// `first` and whatever else is queued already (group commit), up to a
    /// finish.
    fn take_batch(
        &mut self,
        first: Msg,
    ) -> (Vec<Event>, Option<(EndReason, oneshot::Sender<Sealed>)>) {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut finish = None;
        match first {
            Msg::Event(e) => {
                bytes += data_len(&e);
                batch.push(e);
            }
            Msg::Finish(end, done) => finish = Some((end, done)),
        }
        while finish.is_none() && batch.len() < BATCH && bytes < BATCH_BYTES {
            match self.rx.try_recv() {
                Ok(Msg::Event(e)) => {
                    bytes += data_len(&e);
                    batch.push(e);
                }
                Ok(Msg::Finish(end, done)) => finish = Some((end, done)),
                Err(_) => break,
            }
        }
        (batch, finish)
    }

    /// Runs `f` on the writer unless the recording has failed; a write
    /// error or a panic marks it failed (it then accepts nothing more).
    async fn job(&mut self, f: impl FnOnce(&mut Out) -> Result<(), WriteError> + Send + 'static) {
        if self.failure.why.is_some() {
            return;
        }
        let Some(mut writer) = self.writer.take() else {
            return;
        };
        let done = off_loop(self.jobs, move || {
            let r = f(&mut writer);
            (writer, r)
        })
        .await;
        match done {
            Some((writer, r)) => {
                self.writer = Some(writer);
                if let Err(e) = r {
                    tracing::error!(recording = %self.name, error = %e, "recording failed; the shell goes on unrecorded");
                    self.failure.mark(e.into());
                }
            }
            None => self.failure.mark(RecordingError::Panicked),
        }
    }

    /// Seals the recording, or gives its failure.
    async fn seal(&mut self, end: EndReason) -> Sealed {
        if let Some(e) = self.failure.why.take() {
            return Err(e);
        }
        let writer = self.writer.take().ok_or(RecordingError::Ended)?;
        off_loop(self.jobs, move || (*writer).seal(end))
            .await
            .unwrap_or(Err(WriteError::Failed))
            .map_err(RecordingError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use termtrail_format::reader::{ReadOptions, Report, read_path};

    /// A recording in a fresh directory, its engine running as a task.
    fn recording(dir: &Path, opts: WriterOptions, pace: Pace) -> Recording {
        let path = dir.join("t.cast.zst");
        let file = File::create(&path).unwrap();
        let header = Header::new(termtrail_format::event::TermSize::DEFAULT);
        let writer = ChainWriter::new(file, header, opts.sync(false), None).unwrap();
        let (rec, engine) = Recording::new(writer, path, Clock::start(), pace, Jobs::Inline);
        tokio::spawn(engine.run());
        rec
    }

    fn report(rec: &Recording) -> Report {
        read_path(rec.path(), &ReadOptions::default(), &mut ()).unwrap()
    }

    fn len(rec: &Recording) -> u64 {
        std::fs::metadata(rec.path()).unwrap().len()
    }

    #[tokio::test(start_paused = true)]
    async fn a_chunk_is_flushed_by_the_tick_at_its_age_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let rec = recording(dir.path(), WriterOptions::default(), Pace::HOST);
        assert!(rec.record(EventData::Output(b"hello".to_vec())).await);
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(report(&rec).chunks, 0, "the chunk is still open at 0.9 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(report(&rec).chunks, 1, "a tick closed the chunk after 1 s");
        let seal = rec.finish(EndReason::Exited { code: 0 }).await.unwrap();
        assert_eq!(seal.events, 1);
        assert!(report(&rec).sealed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_segment_is_closed_after_its_idle_bound() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WriterOptions::default().segment_idle(Some(Duration::from_secs(10)));
        let rec = recording(dir.path(), opts, Pace::HOST);
        assert!(rec.record(EventData::Output(b"hello".to_vec())).await);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let chunk_flushed = len(&rec);
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert_eq!(len(&rec), chunk_flushed, "nothing written while idle");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            len(&rec) > chunk_flushed,
            "the segment and its index entry were closed after 10 s idle"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_host_recording_stops_ticking_and_wakes_on_an_event() {
        let dir = tempfile::tempdir().unwrap();
        let rec = recording(dir.path(), WriterOptions::default(), Pace::HOST);
        assert!(rec.record(EventData::Output(b"a".to_vec())).await);
        // Past the quiet ticks: nothing to do, and no tick runs.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(report(&rec).chunks, 1);
        assert!(rec.record(EventData::Output(b"b".to_vec())).await);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(report(&rec).chunks, 2, "ticking resumed with the event");
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_every_handle_seals_the_recording_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let rec = recording(dir.path(), WriterOptions::default(), Pace::LOCAL);
        assert!(rec.record(EventData::Output(b"x".to_vec())).await);
        let path = rec.path().to_path_buf();
        drop(rec);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let report = read_path(&path, &ReadOptions::default(), &mut ()).unwrap();
        assert!(report.sealed);
        assert!(matches!(report.end, Some(EndReason::Interrupted { .. })));
    }

    /// The events of a sealed recording.
    fn events(path: &Path) -> Vec<Event> {
        struct Collect(Vec<Event>);
        impl termtrail_format::reader::ReadSink for Collect {
            fn event(&mut self, e: &Event) -> termtrail_format::pipeline::Flow {
                self.0.push(e.clone());
                termtrail_format::pipeline::Flow::Continue
            }
        }
        let mut c = Collect(Vec::new());
        read_path(path, &ReadOptions::default(), &mut c).unwrap();
        c.0
    }

    #[tokio::test(start_paused = true)]
    async fn output_is_redacted_across_events_and_a_held_line_is_written_by_the_tick() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.cast.zst");
        let file = File::create(&path).unwrap();
        let header = Header::new(termtrail_format::event::TermSize::DEFAULT);
        let writer =
            ChainWriter::new(file, header, WriterOptions::default().sync(false), None).unwrap();
        let (rec, engine) = Recording::new(writer, path, Clock::start(), Pace::HOST, Jobs::Inline);
        tokio::spawn(engine.redact(&Redaction::defaults()).run());
        let key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert!(
            rec.record(EventData::Output(
                format!("AWS_SECRET_ACCESS_KEY={}", &key[..9]).into_bytes()
            ))
            .await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            rec.record(EventData::Output(
                format!("{}\r\ntt> ", &key[9..]).into_bytes()
            ))
            .await
        );
        // The first chunk closes at 1 s; the prompt line, held back, is
        // written by the tick once 1 s old, into a second chunk closed 1 s
        // later: both before the seal.
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert_eq!(report(&rec).chunks, 2);
        let seal = rec.finish(EndReason::Closed).await.unwrap();
        assert_eq!(seal.events, 3);
        let got = events(rec.path());
        assert_eq!(
            got.iter()
                .map(|e| (e.time / 100_000, e.data.clone()))
                .collect::<Vec<_>>(),
            vec![
                (
                    0,
                    EventData::Output(b"AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret-key]".to_vec())
                ),
                (0, EventData::Marker("redacted: aws-secret-key".into())),
                (3, EventData::Output(b"\r\ntt> ".to_vec())),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn events_are_stamped_by_the_recording_clock() {
        let dir = tempfile::tempdir().unwrap();
        let rec = recording(dir.path(), WriterOptions::default(), Pace::LOCAL);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(rec.record(EventData::Output(b"late".to_vec())).await);
        let seal = rec.finish(EndReason::Closed).await.unwrap();
        assert!(
            (2_500_000..2_502_000).contains(&seal.duration),
            "{}",
            seal.duration
        );
    }
}
