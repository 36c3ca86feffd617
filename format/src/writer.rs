//! The chain writer: events in, a tamper-evident `.cast.zst` out.
//!
//! Events are encoded as asciicast v3 lines into the open *chunk*. A chunk
//! closes when it is older than the chunk age (1 s by default) or larger than
//! the chunk size bound (256 KiB); its lines and its `#tt` record (carrying
//! the chain link) then go into the open zstd *segment*, the compressor is
//! flushed and the bytes are written out. A segment (one zstd frame) closes at
//! about 4 MiB or an age bound and is followed by a skippable frame with its
//! index entry. [`ChainWriter::seal`] closes everything and appends the seal.
//!
//! Durability: chunk bytes are written as chunks close; [`ChainWriter::commit`]
//! makes them durable (fsync for files). Callers that push events in batches
//! commit once per batch (group commit); [`ChainWriter::tick`] and
//! [`ChainWriter::seal`] commit themselves.

use std::fs::File;
use std::io::{self, Write};
use std::time::Duration;

use crate::cast::{Header, write_event};
use crate::chain::{ChunkRecord, Hash, genesis, link, sha256};
use crate::event::{Event, EventData, Micros};
use crate::frames::{SEGMENT_INDEX_MAGIC, skippable_frame};
use crate::seal::{EndReason, SealBody, SegmentEntry, encode_seal};
use crate::sign::SecretKey;

/// A byte sink that can be made durable.
pub trait DurableWrite: Write {
    /// Makes everything written so far durable. In-memory sinks do nothing.
    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl DurableWrite for File {
    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
}

impl DurableWrite for Vec<u8> {}

impl<W: DurableWrite + ?Sized> DurableWrite for Box<W> {
    fn sync_data(&mut self) -> io::Result<()> {
        (**self).sync_data()
    }
}

impl<W: DurableWrite + ?Sized> DurableWrite for &mut W {
    fn sync_data(&mut self) -> io::Result<()> {
        (**self).sync_data()
    }
}

/// The chunk ages a writer takes ([`WriterOptions::chunk_age`]): from 10 ms
/// (a chunk per PTY read would cost a record line each) to 60 s.
pub const CHUNK_AGES: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(60);

/// Bounds and settings of a writer. Build with [`WriterOptions::default`] and
/// the setters; [`ChainWriter::new`] rejects nonsense.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    chunk_age: Duration,
    chunk_bytes: usize,
    segment_bytes: usize,
    segment_age: Duration,
    segment_idle: Option<Duration>,
    level: i32,
    sync: bool,
}

impl Default for WriterOptions {
    fn default() -> WriterOptions {
        WriterOptions {
            chunk_age: Duration::from_secs(1),
            chunk_bytes: 256 << 10,
            segment_bytes: 4 << 20,
            segment_age: Duration::from_secs(300),
            segment_idle: None,
            level: 3,
            sync: true,
        }
    }
}

impl WriterOptions {
    /// Longest time a chunk stays open (10 ms ..= 60 s).
    pub fn chunk_age(mut self, d: Duration) -> Self {
        self.chunk_age = d;
        self
    }
    /// Largest chunk in bytes of event lines (1 KiB ..= 4 MiB).
    pub fn chunk_bytes(mut self, n: usize) -> Self {
        self.chunk_bytes = n;
        self
    }
    /// Uncompressed size at which a segment closes (64 KiB ..= 32 MiB).
    pub fn segment_bytes(mut self, n: usize) -> Self {
        self.segment_bytes = n;
        self
    }
    /// Age at which a segment closes (≥ the chunk age).
    pub fn segment_age(mut self, d: Duration) -> Self {
        self.segment_age = d;
        self
    }
    /// Close the open segment after this long without events. A closed
    /// segment frees its compressor (about 1 MiB at level 3): hosts with
    /// hundreds of mostly idle shells use this to keep memory per idle shell
    /// small, at a small cost in compression. Default: never.
    pub fn segment_idle(mut self, d: Option<Duration>) -> Self {
        self.segment_idle = d;
        self
    }
    /// zstd level (1 ..= 19).
    pub fn level(mut self, level: i32) -> Self {
        self.level = level;
        self
    }
    /// Whether [`ChainWriter::commit`] calls fsync (default true).
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    fn validate(&self) -> Result<(), WriteError> {
        let bad = |m: &str| Err(WriteError::Config(m.to_string()));
        if !CHUNK_AGES.contains(&self.chunk_age) {
            return bad("chunk age must be between 10 ms and 60 s");
        }
        if !(1 << 10..=4 << 20).contains(&self.chunk_bytes) {
            return bad("chunk size must be between 1 KiB and 4 MiB");
        }
        if !(64 << 10..=32 << 20).contains(&self.segment_bytes) {
            return bad("segment size must be between 64 KiB and 32 MiB");
        }
        if self.segment_age < self.chunk_age {
            return bad("segment age must not be shorter than the chunk age");
        }
        if !(1..=19).contains(&self.level) {
            return bad("zstd level must be between 1 and 19");
        }
        Ok(())
    }
}

/// Writer failures.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Writing or syncing failed; the file holds every chunk committed before.
    #[error("writing the recording failed: {0}")]
    Io(#[from] io::Error),
    /// Invalid options.
    #[error("invalid recording options: {0}")]
    Config(String),
    /// An earlier write failed; the writer accepts nothing more.
    #[error("the recording already failed and is closed")]
    Failed,
    /// No randomness for the recording id.
    #[error("no randomness available: {0}")]
    Random(String),
    /// An event no recording may hold: an unknown event with an empty code
    /// or one of the codes that have their own kind (`o`, `i`, `m`, `r`,
    /// `x`) or that pairs with one (`b`).
    #[error("invalid event: {0}")]
    InvalidEvent(String),
}

/// What [`ChainWriter::seal`] returns.
#[derive(Debug, Clone)]
pub struct SealSummary {
    /// Recording id (hex).
    pub id: String,
    /// Chunks written.
    pub chunks: u64,
    /// Events written.
    pub events: u64,
    /// Time of the last event.
    pub duration: Micros,
    /// Compressed bytes written.
    pub file_bytes: u64,
    /// Uncompressed bytes.
    pub bytes: u64,
    /// The last chain link.
    pub last_link: Hash,
    /// The seal's hash (over the last link and the seal's body).
    pub seal_hash: Hash,
    /// Why it ended.
    pub end: EndReason,
}

struct OpenSegment {
    enc: zstd::stream::write::Encoder<'static, Vec<u8>>,
    entry: SegmentEntry,
    /// Hash of the compressed bytes written so far.
    hasher: sha2::Sha256,
}

/// Writes a `.cast.zst` recording. See the module docs.
pub struct ChainWriter<W: DurableWrite> {
    out: W,
    written: u64,
    opts: WriterOptions,
    key: Option<SecretKey>,
    id: [u8; 16],
    link: Hash,
    next_seq: u64,
    segment: Option<OpenSegment>,
    index: Vec<SegmentEntry>,
    chunk: Vec<u8>,
    chunk_lines: u64,
    chunk_first: Micros,
    chunk_open: bool,
    last_time: Micros,
    events: u64,
    lines: u64,
    bytes: u64,
    dirty: bool,
    failed: bool,
}

impl<W: DurableWrite> ChainWriter<W> {
    /// Starts a recording: writes the header (with a fresh recording id and,
    /// when `key` is given, the public key reference) and commits it.
    pub fn new(
        out: W,
        mut header: Header,
        opts: WriterOptions,
        key: Option<SecretKey>,
    ) -> Result<ChainWriter<W>, WriteError> {
        opts.validate()?;
        let mut meta = header.termtrail.take().unwrap_or_default();
        // A caller may choose the id (to name the file after it); otherwise
        // a fresh random one.
        let mut id = [0u8; 16];
        if hex::decode_to_slice(&meta.id, &mut id).is_err() || id == [0; 16] {
            id = new_recording_id().map_err(|e| WriteError::Random(e.to_string()))?;
        }
        meta.format = 1;
        meta.id = hex::encode(id);
        meta.chunk_ms = opts.chunk_age.as_millis() as u64;
        meta.key = key.as_ref().map(|k| k.public().key_ref());
        header.termtrail = Some(meta);
        let line = header.to_line(crate::cast::CastVersion::V3);
        let mut w = ChainWriter {
            out,
            written: 0,
            link: genesis(&id, &line),
            opts,
            key,
            id,
            next_seq: 0,
            segment: None,
            index: Vec::new(),
            chunk: Vec::new(),
            chunk_lines: 0,
            chunk_first: 0,
            chunk_open: false,
            last_time: 0,
            events: 0,
            lines: 0,
            bytes: 0,
            dirty: false,
            failed: false,
        };
        w.guard(|w| {
            w.append_to_segment(&line)?;
            w.commit()
        })?;
        Ok(w)
    }

    /// The recording id (hex).
    pub fn id(&self) -> String {
        hex::encode(self.id)
    }

    /// Time of the last event pushed.
    pub fn last_time(&self) -> Micros {
        self.last_time
    }

    /// Runs `f`, marking the writer failed if it errors.
    fn guard<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        if self.failed {
            return Err(WriteError::Failed);
        }
        let r = f(self);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Adds an event. Times earlier than the previous event are raised to it
    /// (asciicast time never goes backwards). May close a chunk, writing it
    /// out; call [`ChainWriter::commit`] to make it durable.
    pub fn push(&mut self, event: &Event) -> Result<(), WriteError> {
        if let EventData::Other { code, .. } = &event.data
            && matches!(code.as_str(), "" | "o" | "i" | "m" | "r" | "x" | "b")
        {
            // Refused without failing the writer: the recording goes on.
            return Err(WriteError::InvalidEvent(format!(
                "an unknown event may not have the code {code:?}"
            )));
        }
        self.guard(|w| {
            let time = event.time.max(w.last_time);
            if w.chunk_open && time - w.chunk_first >= w.opts.chunk_age.as_micros() as u64 {
                w.close_chunk()?;
            }
            if !w.chunk_open {
                w.chunk_open = true;
                w.chunk_first = time;
            }
            let before = w.chunk.len();
            write_event(&mut w.chunk, time - w.last_time, &event.data, false);
            w.chunk_lines += count_lines(&w.chunk[before..]);
            w.last_time = time;
            w.events += 1;
            if w.chunk.len() >= w.opts.chunk_bytes {
                w.close_chunk()?;
            }
            Ok(())
        })
    }

    /// Closes the open chunk when it is older than the chunk age at `now`,
    /// closes the open segment when it is older than the segment age, and
    /// commits. Call it periodically (every ~100 ms) while idle.
    pub fn tick(&mut self, now: Micros) -> Result<(), WriteError> {
        self.guard(|w| {
            if w.chunk_open
                && now.saturating_sub(w.chunk_first) >= w.opts.chunk_age.as_micros() as u64
            {
                w.close_chunk()?;
            }
            let seg_age = w.opts.segment_age.as_micros() as u64;
            let idle = w
                .opts
                .segment_idle
                .is_some_and(|d| now.saturating_sub(w.last_time) >= d.as_micros() as u64);
            if let Some(seg) = &w.segment
                && !w.chunk_open
                && ((seg.entry.chunks > 0 && now.saturating_sub(seg.entry.t0) >= seg_age) || idle)
            {
                w.close_segment()?;
            }
            w.commit()
        })
    }

    /// Makes every closed chunk durable (fsync when enabled).
    pub fn commit(&mut self) -> Result<(), WriteError> {
        if self.dirty {
            self.out.flush()?;
            if self.opts.sync {
                self.out.sync_data()?;
            }
            self.dirty = false;
        }
        Ok(())
    }

    /// Closes the open chunk now (e.g. before a marker must be durable).
    pub fn flush_chunk(&mut self) -> Result<(), WriteError> {
        self.guard(|w| {
            if w.chunk_open {
                w.close_chunk()?;
            }
            w.commit()
        })
    }

    fn append_to_segment(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        if self.segment.is_none() {
            // The output buffer is emptied after every append: it grows to
            // one append's compressed size, no more (hundreds of shells
            // writing at once each held 256 KiB here).
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), self.opts.level)?;
            enc.include_checksum(false)?;
            enc.include_contentsize(false)?;
            self.segment = Some(OpenSegment {
                enc,
                entry: SegmentEntry {
                    segment: self.index.len() as u32,
                    offset: self.written,
                    length: 0,
                    ulen: 0,
                    first_chunk: self.next_seq,
                    chunks: 0,
                    t0: 0,
                    t1: 0,
                    link_in: hex::encode(self.link),
                    link_out: String::new(),
                    sha256: String::new(),
                },
                hasher: sha2::Sha256::default(),
            });
        }
        let seg = self.segment.as_mut().ok_or(WriteError::Failed)?;
        seg.enc.write_all(bytes)?;
        seg.enc.flush()?;
        seg.entry.ulen += bytes.len() as u64;
        self.bytes += bytes.len() as u64;
        let out = seg.enc.get_mut();
        sha2::Digest::update(&mut seg.hasher, &out[..]);
        self.out.write_all(out)?;
        self.written += out.len() as u64;
        seg.entry.length += out.len() as u64;
        out.clear();
        self.dirty = true;
        Ok(())
    }

    fn close_chunk(&mut self) -> Result<(), WriteError> {
        let record = {
            let mut r = ChunkRecord {
                seq: self.next_seq,
                first: self.chunk_first,
                last: self.last_time,
                lines: self.chunk_lines,
                len: self.chunk.len() as u64,
                sha256: sha256(&self.chunk),
                link: [0; 32],
            };
            r.link = link(&self.link, r.body().as_bytes());
            r
        };
        let mut bytes = std::mem::take(&mut self.chunk);
        bytes.extend_from_slice(record.to_line().as_bytes());
        let result = self.append_to_segment(&bytes);
        bytes.clear();
        self.chunk = bytes;
        result?;
        self.link = record.link;
        self.next_seq += 1;
        self.lines += self.chunk_lines;
        self.chunk_lines = 0;
        self.chunk_open = false;
        let seg = self.segment.as_mut().ok_or(WriteError::Failed)?;
        if seg.entry.chunks == 0 {
            seg.entry.t0 = record.first;
        }
        seg.entry.chunks += 1;
        seg.entry.t1 = record.last;
        if seg.entry.ulen >= self.opts.segment_bytes as u64 {
            self.close_segment()?;
        }
        Ok(())
    }

    fn close_segment(&mut self) -> Result<(), WriteError> {
        let Some(OpenSegment {
            enc,
            mut entry,
            mut hasher,
        }) = self.segment.take()
        else {
            return Ok(());
        };
        let tail = enc.finish()?;
        sha2::Digest::update(&mut hasher, &tail);
        entry.sha256 = hex::encode(sha2::Digest::finalize(hasher));
        self.out.write_all(&tail)?;
        self.written += tail.len() as u64;
        entry.length += tail.len() as u64;
        entry.link_out = hex::encode(self.link);
        // A closed segment often means an idle shell: give back the chunk
        // buffer's memory too.
        self.chunk.shrink_to(4 << 10);
        let frame = skippable_frame(SEGMENT_INDEX_MAGIC, &entry.to_payload());
        self.out.write_all(&frame)?;
        self.written += frame.len() as u64;
        self.index.push(entry);
        self.dirty = true;
        Ok(())
    }

    /// Closes the open chunk and segment, writes the seal and commits.
    pub fn seal(mut self, end: EndReason) -> Result<SealSummary, WriteError> {
        self.guard(|w| {
            if w.chunk_open {
                w.close_chunk()?;
            }
            if w.segment.is_none() && w.index.is_empty() {
                w.append_to_segment(b"")?;
            }
            w.close_segment()?;
            let body = SealBody {
                format: 1,
                id: hex::encode(w.id),
                chunks: w.next_seq,
                lines: w.lines,
                duration: w.last_time,
                bytes: w.bytes,
                end,
                sealed_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                last_link: hex::encode(w.link),
                segments: std::mem::take(&mut w.index),
            };
            let key = w.key.take();
            let body_bytes = serde_json::to_vec(&body).unwrap_or_default();
            let seal_hash = crate::chain::seal_hash(&w.link, &body_bytes);
            let frame = encode_seal(&body, &w.link, |h| key.as_ref().map(|k| k.sign(h)));
            w.out.write_all(&frame)?;
            w.written += frame.len() as u64;
            w.dirty = true;
            w.commit()?;
            Ok(SealSummary {
                id: body.id,
                chunks: body.chunks,
                events: w.events,
                duration: body.duration,
                file_bytes: w.written,
                bytes: body.bytes,
                last_link: w.link,
                seal_hash,
                end: body.end,
            })
        })
    }

    /// Closes the open chunk and commits, leaving the recording unsealed
    /// (verify reports it as interrupted). Used when sealing is impossible.
    pub fn abandon(mut self) -> Result<(), WriteError> {
        self.flush_chunk()
    }
}

impl<W: DurableWrite> Drop for ChainWriter<W> {
    /// A writer dropped without [`ChainWriter::seal`] keeps every event it
    /// accepted: the open chunk is closed and committed, and the file stays
    /// unsealed (an interrupted recording).
    fn drop(&mut self) {
        if !self.failed && self.chunk_open {
            let _ = self.close_chunk();
            let _ = self.commit();
        }
    }
}

/// A fresh random 128-bit recording id.
pub fn new_recording_id() -> Result<[u8; 16], getrandom::Error> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id)?;
    Ok(id)
}

/// Line feeds in `bytes`: the lines just encoded (an event line escapes
/// every line feed of its data), by `memchr`'s vector search (a byte-wise
/// count took 5 % of a proxy's CPU relaying output).
fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}
