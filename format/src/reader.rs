//! The verifying reader: the one way into a `.cast.zst` recording.
//!
//! It walks the file frame by frame, decodes segments (on several threads),
//! checks every chunk's SHA-256, the chain links, sequence numbers, segment
//! index frames and the seal, and pushes into a [`ReadSink`] only events from
//! chunks that verified — so a tampered chunk can never be played, grepped or
//! exported silently. What it found is returned as a [`Report`].

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use crate::cast::{EventAssembler, Header, parse_line};
use crate::chain::{ChunkRecord, Hash, genesis, link, seal_hash};
use crate::event::{Event, Micros};
use crate::frames::{Frame, FrameError, FrameKind, FrameScanner, SEAL_MAGIC, SEGMENT_INDEX_MAGIC};
use crate::index::{SegmentText, read_seal};
use crate::pipeline::{Flow, ordered_map};
use crate::seal::{EndReason, SEAL_TRAILER, SegmentEntry, decode_seal};
use crate::segment::{ChunkScan, DecodedSegment, Decompressed, decode_segment};
use crate::sign::PublicKey;

/// Receives what the reader finds. Every hook has a default.
pub trait ReadSink {
    /// The header, once, before any event.
    fn header(&mut self, _header: &Header) -> Flow {
        Flow::Continue
    }
    /// One event from a verified chunk (or, in lenient mode after a problem
    /// was reported, from an unverified one).
    fn event(&mut self, _event: &Event) -> Flow {
        Flow::Continue
    }
    /// A chunk verified: its event lines as stored (asciicast v3 lines, each
    /// ending in `\n`; the first line's event is at `record.first`, each
    /// later line's time is relative to the line before), before
    /// [`ReadSink::chunk`]. For sinks that parse lines themselves, with
    /// [`ReadOptions::events`] off: grep reads text without building events.
    fn chunk_text(&mut self, _record: &ChunkRecord, _lines: &[u8]) -> Flow {
        Flow::Continue
    }
    /// A chunk verified.
    fn chunk(&mut self, _record: &ChunkRecord) -> Flow {
        Flow::Continue
    }
    /// Segment `segment` after all its chunks verified and went to the
    /// sink: its text, handed over for a sink that reads parts of it again
    /// (grep's screen lines) instead of decompressing it a second time.
    /// Not called for a segment with damage or an unfinished one.
    fn segment_text(&mut self, _segment: u32, _text: SegmentText) -> Flow {
        Flow::Continue
    }
    /// Damage was found.
    fn problem(&mut self, _problem: &Problem) {}
}

impl ReadSink for () {}

/// How to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Parse events and push them to the sink (false: verify only).
    pub events: bool,
    /// After damage, keep pushing events from unverified chunks.
    pub lenient: bool,
    /// Worker threads for decoding segments.
    pub threads: usize,
    /// The file ends with a seal trailer (set by [`read_path`]); a missing
    /// seal is then tampering, not truncation.
    pub claims_sealed: bool,
    /// How chunk content is checked (see [`ContentCheck`]).
    pub content: ContentCheck,
}

/// How a reader checks chunk content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentCheck {
    /// Every chunk is hashed against its record: the full verification
    /// (`termtrail verify`).
    #[default]
    EveryChunk,
    /// In a sealed file read by [`read_path`], a segment frame whose SHA-256
    /// equals the one the seal's index gives for it is not hashed chunk by
    /// chunk: its bytes are the bytes that were sealed (the seal itself —
    /// hash, signature, last link, index — is checked as always when reading
    /// ends, and a frame that does not match is hashed chunk by chunk). What
    /// this does not see: content changed by someone who also recomputed
    /// the frame's hash, the index and the seal but not the chunk's record —
    /// which a signed seal still catches, and [`ContentCheck::EveryChunk`]
    /// always. For searching, where hashing every chunk would cost more than
    /// the search (grep hashes the chunks its hits are in).
    SealedFrames,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            events: true,
            lenient: false,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            claims_sealed: false,
            content: ContentCheck::EveryChunk,
        }
    }
}

/// The kind of damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A chunk's bytes do not match its record's SHA-256, length or count.
    ContentChanged,
    /// A record line is malformed.
    BadRecord,
    /// A chunk is missing, duplicated or out of order.
    Sequence,
    /// A chunk's link does not follow the previous one (edited record, or a
    /// chunk from elsewhere).
    LinkMismatch,
    /// Event times disagree with the record.
    Timing,
    /// An event line in a hashed chunk does not parse.
    BadEventLine,
    /// A segment does not decompress.
    SegmentCorrupt,
    /// The frame structure of the file is broken.
    FrameStructure,
    /// A segment index frame disagrees with the segment.
    IndexMismatch,
    /// The seal is malformed or disagrees with the recording.
    SealInvalid,
    /// The seal's signature does not verify.
    SignatureInvalid,
    /// The header is unreadable.
    HeaderInvalid,
}

/// One piece of damage.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The chunk sequence number concerned (the one expected there).
    pub chunk: Option<u64>,
    /// The segment concerned.
    pub segment: Option<u32>,
    /// Byte offset in the file (of the frame concerned).
    pub file_offset: u64,
    /// Byte offset inside the segment's uncompressed data.
    pub data_offset: Option<u64>,
    /// Human-readable reason.
    pub message: String,
}

/// Chunks after damage that are intact among themselves but cut off from
/// the chain's start.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkRun {
    /// First chunk.
    pub first_chunk: u64,
    /// Last chunk.
    pub last_chunk: u64,
    /// Time of its first event.
    pub t0: Micros,
    /// Time of its last event.
    pub t1: Micros,
    #[serde(skip)]
    link: Hash,
}

/// Overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every byte verified and the seal is valid.
    Intact,
    /// Everything present verified, but there is no seal (truncated, or the
    /// recorder crashed): evidence up to `last_verified`.
    Unsealed,
    /// Damage was found.
    Tampered,
}

/// The seal's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Signature {
    /// Not signed.
    Unsigned,
    /// Signed and valid for the key in the header.
    Valid {
        /// Key id.
        key_id: String,
    },
    /// Signed but the signature does not verify, or the header names a key
    /// and the seal carries no signature.
    Invalid {
        /// Key id named in the header.
        key_id: String,
    },
}

/// What reading found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Overall state.
    pub status: Status,
    /// Recording id.
    pub id: Option<String>,
    /// The header.
    #[serde(skip)]
    pub header: Option<Header>,
    /// Whether a valid seal was found.
    pub sealed: bool,
    /// End reason from the seal.
    pub end: Option<EndReason>,
    /// Signature state.
    pub signature: Signature,
    /// Chunks verified (on the chain from the start).
    pub chunks: u64,
    /// Event lines verified.
    pub lines: u64,
    /// Segments read.
    pub segments: u32,
    /// Time of the last verified event.
    pub last_verified: Micros,
    /// Uncompressed bytes read.
    pub bytes: u64,
    /// Bytes of an unfinished chunk at the end (lost in a crash or cut).
    pub lost_tail_bytes: u64,
    /// Segments whose chunks were not hashed one by one because the frame
    /// matched the seal's index ([`ContentCheck::SealedFrames`]).
    pub segments_by_seal: u32,
    /// Damage, first found first (at most 100 kept).
    pub problems: Vec<Problem>,
    /// Chunks after damage that verify among themselves.
    pub detached: Vec<ChunkRun>,
}

/// Errors that stop reading before any verdict.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Not a termtrail recording at all.
    #[error("not a termtrail recording: {0}")]
    NotRecording(String),
}

/// Reads a recording file. Looks at the last bytes first to learn whether
/// the file claims to be sealed.
pub fn read_path(
    path: &Path,
    opts: &ReadOptions,
    sink: &mut dyn ReadSink,
) -> Result<Report, ReadError> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut opts = opts.clone();
    if len >= 8 {
        let mut tail = [0u8; 8];
        file.seek(SeekFrom::End(-8))?;
        file.read_exact(&mut tail)?;
        opts.claims_sealed = &tail == SEAL_TRAILER;
    }
    // The frame hashes the seal gives; a seal that does not parse gives
    // none (every chunk is hashed, and the seal is reported at the end).
    let sealed = match opts.content {
        ContentCheck::SealedFrames if opts.claims_sealed => read_seal(&mut file)
            .ok()
            .flatten()
            .map(|seal| seal.body.segments.into_iter().map(|e| e.sha256).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    file.seek(SeekFrom::Start(0))?;
    read_frames(
        BufReader::with_capacity(256 << 10, file),
        &opts,
        &sealed,
        sink,
    )
}

enum Done {
    /// A segment, its frame, and whether the frame matched the seal.
    Segment(Box<DecodedSegment>, Frame, bool),
    Other(Frame),
    Err(FrameError),
}

/// Reads a recording from any reader. See the module docs.
pub fn read_recording<R: Read>(
    r: R,
    opts: &ReadOptions,
    sink: &mut dyn ReadSink,
) -> Result<Report, ReadError> {
    read_frames(r, opts, &[], sink)
}

/// Reads the frames of a recording; `sealed` holds the frame hashes of the
/// seal's index ([`ContentCheck::SealedFrames`]; empty: hash every chunk).
fn read_frames<R: Read>(
    r: R,
    opts: &ReadOptions,
    sealed: &[String],
    sink: &mut dyn ReadSink,
) -> Result<Report, ReadError> {
    let mut scanner = FrameScanner::new(r);
    let mut zstd_frames = 0usize;
    let mut failed = false;
    let frames = std::iter::from_fn(move || {
        if failed {
            return None;
        }
        match scanner.next_frame() {
            Ok(Some(f)) => {
                // Segment number (of a zstd frame).
                let n = zstd_frames;
                if f.kind == FrameKind::Zstd {
                    zstd_frames += 1;
                }
                Some(Ok((f, n)))
            }
            Ok(None) => None,
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    });
    let mut v = Verifier::new(opts, sink);
    ordered_map(
        opts.threads,
        frames,
        |item| match item {
            Ok((f, n)) if f.kind == FrameKind::Zstd => {
                let (seg, by_seal) = decode_segment(&f, n == 0, sealed.get(n).map(String::as_str));
                // The bytes are no longer needed except for the trailer check.
                let tail_trailer = f.bytes.ends_with(SEAL_TRAILER);
                let mut f = f;
                f.bytes = if tail_trailer {
                    SEAL_TRAILER.to_vec()
                } else {
                    Vec::new()
                };
                Done::Segment(Box::new(seg), f, by_seal)
            }
            Ok((f, _)) => Done::Other(f),
            Err(e) => Done::Err(e),
        },
        |done| v.consume(done),
    );
    v.finish()
}

struct Verifier<'a> {
    opts: &'a ReadOptions,
    sink: &'a mut dyn ReadSink,
    report: Report,
    fatal: Option<ReadError>,
    frames_seen: u64,
    link: Hash,
    next_seq: u64,
    last_t: Micros,
    segment_no: u32,
    index: Vec<SegmentEntry>,
    pending_entry: Option<SegmentEntry>,
    tampered: bool,
    sealed_frame_seen: bool,
    truncated: bool,
    stopped: bool,
    in_segment: bool,
    events: Vec<Event>,
}

impl<'a> Verifier<'a> {
    fn new(opts: &'a ReadOptions, sink: &'a mut dyn ReadSink) -> Verifier<'a> {
        Verifier {
            opts,
            sink,
            report: Report {
                status: Status::Unsealed,
                id: None,
                header: None,
                sealed: false,
                end: None,
                signature: Signature::Unsigned,
                chunks: 0,
                lines: 0,
                segments: 0,
                last_verified: 0,
                bytes: 0,
                lost_tail_bytes: 0,
                segments_by_seal: 0,
                problems: Vec::new(),
                detached: Vec::new(),
            },
            fatal: None,
            frames_seen: 0,
            link: [0; 32],
            next_seq: 0,
            last_t: 0,
            segment_no: 0,
            index: Vec::new(),
            pending_entry: None,
            tampered: false,
            sealed_frame_seen: false,
            truncated: false,
            stopped: false,
            in_segment: false,
            events: Vec::new(),
        }
    }

    fn problem(
        &mut self,
        kind: ProblemKind,
        offset: u64,
        data_offset: Option<u64>,
        message: String,
    ) {
        // Outside a segment (index frames, the seal, the frame structure)
        // no chunk or segment is meant; the message names what is.
        let p = Problem {
            kind,
            chunk: self.in_segment.then_some(self.next_seq),
            segment: self.in_segment.then_some(self.segment_no),
            file_offset: offset,
            data_offset,
            message,
        };
        if !self.tampered {
            self.sink.problem(&p);
        }
        self.tampered = true;
        if self.report.problems.len() < 100 {
            self.report.problems.push(p);
        }
    }

    fn consume(&mut self, done: Done) -> Flow {
        self.frames_seen += 1;
        let first_frame = self.frames_seen == 1;
        if self.sealed_frame_seen {
            let offset = match &done {
                Done::Segment(s, ..) => s.offset,
                Done::Other(f) => f.offset,
                Done::Err(_) => 0,
            };
            self.problem(
                ProblemKind::FrameStructure,
                offset,
                None,
                "data after the seal".into(),
            );
            return Flow::Stop;
        }
        match done {
            Done::Err(FrameError::Garbage { offset: 0, magic })
                if first_frame && !self.opts.claims_sealed =>
            {
                self.fatal = Some(ReadError::NotRecording(describe_magic(magic)));
                Flow::Stop
            }
            Done::Err(e) => {
                let offset = match &e {
                    FrameError::Garbage { offset, .. }
                    | FrameError::TooLarge { offset }
                    | FrameError::Corrupt { offset, .. } => *offset,
                    FrameError::Io(_) => 0,
                };
                if let FrameError::Io(e) = e {
                    self.fatal = Some(ReadError::Io(e));
                    return Flow::Stop;
                }
                self.problem(ProblemKind::FrameStructure, offset, None, e.to_string());
                Flow::Stop
            }
            Done::Other(f) if first_frame => {
                if self.opts.claims_sealed {
                    self.problem(
                        ProblemKind::FrameStructure,
                        0,
                        None,
                        "file does not start with a segment".into(),
                    );
                } else {
                    self.fatal = Some(ReadError::NotRecording(
                        "file does not start with a zstd frame".into(),
                    ));
                }
                let _ = f;
                Flow::Stop
            }
            Done::Segment(seg, frame, by_seal) => {
                self.report.segments_by_seal += u32::from(by_seal);
                self.in_segment = true;
                let flow = self.segment(*seg, &frame, by_seal);
                self.in_segment = false;
                flow
            }
            Done::Other(f) => self.skippable(f),
        }
    }

    fn segment(&mut self, mut seg: DecodedSegment, frame: &Frame, by_seal: bool) -> Flow {
        if let Some(entry) = self.pending_entry.take() {
            self.problem(
                ProblemKind::IndexMismatch,
                seg.offset,
                None,
                format!("index frame of segment {} is missing", entry.segment),
            );
        }
        self.report.segments += 1;
        self.report.bytes += seg.data.len() as u64;
        if self.segment_no == 0 && !self.header(&seg) {
            return Flow::Stop;
        }
        let link_in = self.link;
        let seq_in = self.next_seq;
        let mut t0 = None;
        for chunk in &seg.chunks {
            if let Ok(r) = &chunk.record {
                t0.get_or_insert(r.first);
            }
            if self.chunk(&seg, chunk) == Flow::Stop {
                self.stopped = true;
                return Flow::Stop;
            }
        }
        match &seg.status {
            Decompressed::Corrupt(msg) => {
                self.problem(
                    ProblemKind::SegmentCorrupt,
                    seg.offset,
                    Some(seg.data.len() as u64),
                    format!("segment {} does not decompress: {msg}", self.segment_no),
                );
            }
            Decompressed::Truncated if frame.bytes.ends_with(SEAL_TRAILER) => {
                self.problem(
                    ProblemKind::FrameStructure,
                    seg.offset,
                    None,
                    format!(
                        "segment {} runs into the seal: its frame structure is damaged",
                        self.segment_no
                    ),
                );
            }
            Decompressed::Truncated => {
                self.truncated = true;
                self.report.lost_tail_bytes += seg.tail.len() as u64;
            }
            Decompressed::Complete if !seg.tail.is_empty() => {
                self.problem(
                    ProblemKind::ContentChanged,
                    seg.offset,
                    Some(seg.tail.start as u64),
                    format!(
                        "segment {} ends inside a chunk ({} bytes without a record)",
                        self.segment_no,
                        seg.tail.len()
                    ),
                );
            }
            Decompressed::Complete => {
                self.pending_entry = Some(SegmentEntry {
                    segment: self.segment_no,
                    offset: seg.offset,
                    length: seg.length,
                    ulen: seg.data.len() as u64,
                    first_chunk: seq_in,
                    chunks: self.next_seq - seq_in,
                    t0: if self.next_seq > seq_in {
                        t0.unwrap_or(0)
                    } else {
                        0
                    },
                    t1: if self.next_seq > seq_in {
                        self.last_t
                    } else {
                        0
                    },
                    link_in: hex::encode(link_in),
                    link_out: hex::encode(self.link),
                    sha256: seg.frame_sha256.clone(),
                });
            }
        }
        let whole = seg.status == Decompressed::Complete && seg.tail.is_empty() && !self.tampered;
        let n = self.segment_no;
        self.segment_no += 1;
        if whole {
            // Every chunk verified and went to the sink.
            let chunks = std::mem::take(&mut seg.chunks)
                .into_iter()
                .filter_map(|c| c.record.ok().map(|r| (r, c.lines)))
                .collect();
            let text = SegmentText::verified(std::mem::take(&mut seg.data), chunks, !by_seal);
            if self.sink.segment_text(n, text) == Flow::Stop {
                self.stopped = true;
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn header(&mut self, seg: &DecodedSegment) -> bool {
        let Some(range) = seg.header.clone() else {
            if seg.status == Decompressed::Truncated {
                self.truncated = true;
                self.report.lost_tail_bytes += seg.data.len() as u64;
            } else {
                self.problem(
                    ProblemKind::HeaderInvalid,
                    seg.offset,
                    Some(0),
                    "no header line".into(),
                );
            }
            return false;
        };
        let line = &seg.data[range];
        let header = match Header::parse(line) {
            Ok((h, _)) => h,
            Err(e) => {
                if self.opts.claims_sealed {
                    self.problem(
                        ProblemKind::HeaderInvalid,
                        seg.offset,
                        Some(0),
                        e.to_string(),
                    );
                } else {
                    self.fatal = Some(ReadError::NotRecording(e.to_string()));
                }
                return false;
            }
        };
        let Some(meta) = &header.termtrail else {
            if self.opts.claims_sealed {
                self.problem(
                    ProblemKind::HeaderInvalid,
                    seg.offset,
                    Some(0),
                    "header has no termtrail block".into(),
                );
                return false;
            }
            self.fatal = Some(ReadError::NotRecording(
                "a zstd-compressed asciicast file without termtrail's hash chain (use `termtrail import`)".into(),
            ));
            return false;
        };
        let mut id = [0u8; 16];
        if hex::decode_to_slice(&meta.id, &mut id).is_err() || meta.format != 1 {
            self.problem(
                ProblemKind::HeaderInvalid,
                seg.offset,
                Some(0),
                format!("unsupported termtrail format {} or bad id", meta.format),
            );
            return false;
        }
        self.report.id = Some(meta.id.clone());
        self.link = genesis(&id, line);
        let flow = self.sink.header(&header);
        self.report.header = Some(header);
        flow == Flow::Continue
    }

    fn chunk(&mut self, seg: &DecodedSegment, chunk: &ChunkScan) -> Flow {
        let body = &seg.data[chunk.lines.clone()];
        let at = Some(chunk.lines.start as u64);
        let was_tampered = self.tampered;
        if !self.tampered {
            match &chunk.record {
                Err(e) => self.problem(
                    ProblemKind::BadRecord,
                    seg.offset,
                    Some(chunk.record_at as u64),
                    e.to_string(),
                ),
                Ok(r) if r.seq != self.next_seq => {
                    let what = if r.seq < self.next_seq {
                        "duplicated or out of order"
                    } else {
                        "missing"
                    };
                    let msg = format!(
                        "expected chunk {}, found chunk {} (chunks {what})",
                        self.next_seq, r.seq
                    );
                    self.problem(ProblemKind::Sequence, seg.offset, at, msg);
                }
                Ok(_) if !chunk.content_ok => self.problem(
                    ProblemKind::ContentChanged,
                    seg.offset,
                    at,
                    format!("chunk {} content does not match its SHA-256", self.next_seq),
                ),
                Ok(r) if link(&self.link, r.body().as_bytes()) != r.link => self.problem(
                    ProblemKind::LinkMismatch,
                    seg.offset,
                    Some(chunk.record_at as u64),
                    format!(
                        "chunk {} does not link to the chunk before it",
                        self.next_seq
                    ),
                ),
                Ok(r) if r.first < self.last_t || r.last < r.first => self.problem(
                    ProblemKind::Timing,
                    seg.offset,
                    Some(chunk.record_at as u64),
                    format!("chunk {} goes back in time", self.next_seq),
                ),
                Ok(r) => {
                    let r = r.clone();
                    if self.opts.events
                        && let Err(msg) = self.events_of(body, Some(&r))
                    {
                        self.problem(ProblemKind::BadEventLine, seg.offset, at, msg);
                    }
                    if !self.tampered {
                        self.link = r.link;
                        self.next_seq += 1;
                        self.last_t = r.last;
                        self.report.chunks += 1;
                        self.report.lines += r.lines;
                        self.report.last_verified = r.last;
                        let flow = self.flush_events();
                        if flow == Flow::Stop
                            || self.sink.chunk_text(&r, body) == Flow::Stop
                            || self.sink.chunk(&r) == Flow::Stop
                        {
                            return Flow::Stop;
                        }
                        return Flow::Continue;
                    }
                    self.events.clear();
                }
            }
        }
        // Damage has been found: track runs of chunks intact among themselves.
        if let (Ok(r), true) = (&chunk.record, chunk.content_ok) {
            let extends = self.report.detached.last().is_some_and(|run| {
                run.last_chunk + 1 == r.seq && link(&run.link, r.body().as_bytes()) == r.link
            });
            if extends {
                if let Some(run) = self.report.detached.last_mut() {
                    run.last_chunk = r.seq;
                    run.t1 = r.last;
                    run.link = r.link;
                }
            } else if (was_tampered
                || r.seq != self.next_seq
                || link(&self.link, r.body().as_bytes()) != r.link)
                && self.report.detached.len() < 1000
            {
                {
                    self.report.detached.push(ChunkRun {
                        first_chunk: r.seq,
                        last_chunk: r.seq,
                        t0: r.first,
                        t1: r.last,
                        link: r.link,
                    });
                }
            }
        }
        if self.opts.lenient && self.opts.events {
            let _ = self.events_of(body, chunk.record.as_ref().ok());
            return self.flush_events();
        }
        Flow::Continue
    }

    /// Parses a chunk's event lines into `self.events`, checking times
    /// against the record.
    fn events_of(&mut self, body: &[u8], record: Option<&ChunkRecord>) -> Result<(), String> {
        let mut asm = EventAssembler::new();
        let mut t = self.last_t;
        for (i, line) in body.split_inclusive(|&b| b == b'\n').enumerate() {
            let l = parse_line(line)
                .map_err(|e| format!("line {} of chunk {}: {e}", i + 1, self.next_seq))?;
            t += l.time;
            if i == 0
                && let Some(r) = record
                && t != r.first
            {
                if !self.opts.lenient {
                    return Err(format!(
                        "chunk {} starts at {t} µs, record says {}",
                        self.next_seq, r.first
                    ));
                }
                // Unverified chunk in lenient mode: place it where its
                // record says.
                t = r.first;
            }
            asm.push(t, &l.code, l.data, &mut self.events)
                .map_err(|e| format!("chunk {}: {e}", self.next_seq))?;
        }
        asm.finish(&mut self.events);
        if let Some(r) = record {
            if t != r.last && !body.is_empty() && !self.opts.lenient {
                return Err(format!(
                    "chunk {} ends at {t} µs, record says {}",
                    self.next_seq, r.last
                ));
            }
            if self.opts.lenient {
                self.last_t = r.last.max(self.last_t);
            }
        }
        Ok(())
    }

    fn flush_events(&mut self) -> Flow {
        let mut flow = Flow::Continue;
        for e in self.events.drain(..) {
            if flow == Flow::Continue {
                flow = self.sink.event(&e);
            }
        }
        flow
    }

    fn skippable(&mut self, f: Frame) -> Flow {
        let FrameKind::Skippable(magic) = f.kind else {
            return Flow::Continue;
        };
        if !f.complete {
            if self.opts.claims_sealed {
                self.problem(
                    ProblemKind::FrameStructure,
                    f.offset,
                    None,
                    "a skippable frame runs past the end of the file".into(),
                );
            } else {
                self.truncated = true;
            }
            return Flow::Continue;
        }
        match magic {
            SEGMENT_INDEX_MAGIC => {
                let found = SegmentEntry::from_payload(&f.bytes);
                match (self.pending_entry.take(), found) {
                    (Some(expected), Some(found)) if expected == found => self.index.push(found),
                    (Some(expected), found) => self.problem(
                        ProblemKind::IndexMismatch,
                        f.offset,
                        None,
                        format!("index frame of segment {} does not match the segment: {expected:?} vs {found:?}", expected.segment),
                    ),
                    (None, _) => {
                        if !self.tampered {
                            self.problem(ProblemKind::IndexMismatch, f.offset, None, "index frame without a segment".into());
                        }
                    }
                }
                Flow::Continue
            }
            SEAL_MAGIC => {
                self.sealed_frame_seen = true;
                self.seal(&f);
                Flow::Continue
            }
            other => {
                self.problem(
                    ProblemKind::FrameStructure,
                    f.offset,
                    None,
                    format!("unexpected skippable frame {other:#010x}"),
                );
                Flow::Continue
            }
        }
    }

    fn seal(&mut self, f: &Frame) {
        if let Some(entry) = self.pending_entry.take() {
            self.problem(
                ProblemKind::IndexMismatch,
                f.offset,
                None,
                format!("index frame of segment {} is missing", entry.segment),
            );
        }
        let seal = match decode_seal(&f.bytes) {
            Ok(s) => s,
            Err(e) => {
                self.problem(
                    ProblemKind::SealInvalid,
                    f.offset,
                    None,
                    format!("seal is malformed: {e}"),
                );
                return;
            }
        };
        self.report.end = Some(seal.body.end.clone());
        if self.tampered {
            return;
        }
        let b = &seal.body;
        let mismatch = if Some(&b.id) != self.report.id.as_ref() {
            Some("recording id")
        } else if b.chunks != self.next_seq {
            Some("chunk count")
        } else if b.lines != self.report.lines {
            Some("line count")
        } else if b.duration != self.last_t {
            Some("duration")
        } else if b.bytes != self.report.bytes {
            Some("byte count")
        } else if b.last_link != hex::encode(self.link) {
            Some("last link")
        } else if b.segments != self.index {
            Some("segment index")
        } else if seal_hash(&self.link, &seal.body_bytes) != seal.hash {
            Some("seal hash")
        } else {
            None
        };
        if let Some(what) = mismatch {
            self.problem(
                ProblemKind::SealInvalid,
                f.offset,
                None,
                format!("seal does not match the recording ({what})"),
            );
            return;
        }
        let key = self
            .report
            .header
            .as_ref()
            .and_then(|h| h.termtrail.as_ref())
            .and_then(|m| m.key.clone());
        match (key, seal.signature) {
            (None, None) => {}
            (None, Some(_)) => {
                self.problem(
                    ProblemKind::SignatureInvalid,
                    f.offset,
                    None,
                    "seal is signed but the header names no key".into(),
                );
                return;
            }
            (Some(k), sig) => {
                let ok = match (PublicKey::from_hex(&k.public), sig) {
                    (Some(pk), Some(sig)) => pk.id() == k.id && pk.verify(&seal.hash, &sig),
                    _ => false,
                };
                if ok {
                    self.report.signature = Signature::Valid { key_id: k.id };
                } else {
                    self.report.signature = Signature::Invalid { key_id: k.id };
                    self.problem(
                        ProblemKind::SignatureInvalid,
                        f.offset,
                        None,
                        "seal signature does not verify".into(),
                    );
                    return;
                }
            }
        }
        self.report.sealed = true;
    }

    fn finish(mut self) -> Result<Report, ReadError> {
        if let Some(e) = self.fatal.take() {
            return Err(e);
        }
        if self.frames_seen == 0 {
            return Err(ReadError::NotRecording("the file is empty".into()));
        }
        if !self.stopped && !self.tampered && !self.sealed_frame_seen && self.opts.claims_sealed {
            self.problem(
                ProblemKind::FrameStructure,
                0,
                None,
                "the file ends with a seal trailer but no seal was found".into(),
            );
        }
        if !self.stopped && !self.tampered && self.sealed_frame_seen && !self.report.sealed {
            self.problem(ProblemKind::SealInvalid, 0, None, "seal invalid".into());
        }
        self.report.status = if self.tampered {
            Status::Tampered
        } else if self.report.sealed && !self.truncated {
            Status::Intact
        } else {
            Status::Unsealed
        };
        Ok(self.report)
    }
}

fn describe_magic(magic: u32) -> String {
    let bytes = magic.to_le_bytes();
    if bytes[0] == b'{' {
        "this looks like a plain asciicast file (use `termtrail import` to seal it)".into()
    } else if bytes[..2] == [0x1f, 0x8b] {
        "this is a gzip file".into()
    } else {
        format!(
            "unknown file type (starts with {:02x} {:02x} {:02x} {:02x})",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )
    }
}
