//! The sequential walk: frames in file order, each segment's header and
//! chunks handed to the checks, damage recorded as problems, and the final
//! verdict.

use crate::chain::{Hash, genesis};
use crate::event::{Event, Micros};
use crate::frames::{Frame, FrameError};
use crate::header::{HeaderFault, parse_recording_header};
use crate::index::SegmentText;
use crate::pipeline::Flow;
use crate::seal::{SEAL_TRAILER, SegmentEntry};
use crate::segment::{DecodedSegment, Decompressed};

use super::sniff::describe_magic;
use super::{
    Done, Problem, ProblemKind, ReadError, ReadOptions, ReadSink, Reason, Report, Signature, Status,
};

/// The reader's state while it walks one recording.
pub(super) struct Verifier<'a> {
    pub(super) opts: &'a ReadOptions,
    pub(super) sink: &'a mut dyn ReadSink,
    pub(super) report: Report,
    pub(super) fatal: Option<ReadError>,
    pub(super) frames_seen: u64,
    pub(super) link: Hash,
    pub(super) next_seq: u64,
    pub(super) last_t: Micros,
    pub(super) segment_no: u32,
    pub(super) index: Vec<SegmentEntry>,
    pub(super) pending_entry: Option<SegmentEntry>,
    pub(super) tampered: bool,
    pub(super) sealed_frame_seen: bool,
    pub(super) truncated: bool,
    pub(super) stopped: bool,
    pub(super) in_segment: bool,
    pub(super) events: Vec<Event>,
}

impl<'a> Verifier<'a> {
    pub(super) fn new(opts: &'a ReadOptions, sink: &'a mut dyn ReadSink) -> Verifier<'a> {
        Verifier {
            opts,
            sink,
            report: Report {
                status: Status::Unsealed,
                reason: None,
                first_bad_chunk: None,
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

    pub(super) fn problem(
        &mut self,
        kind: ProblemKind,
        reason: Reason,
        offset: u64,
        data_offset: Option<u64>,
        message: String,
    ) {
        // Outside a segment (index frames, the seal, the frame structure)
        // no segment is meant; only problems of one chunk name a chunk
        // (the one expected there); the message names the rest.
        let p = Problem {
            kind,
            reason,
            chunk: (self.in_segment && reason.names_chunk()).then_some(self.next_seq),
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

    pub(super) fn consume(&mut self, done: Done) -> Flow {
        self.frames_seen += 1;
        let first_frame = self.frames_seen == 1;
        if self.sealed_frame_seen {
            let offset = match &done {
                Done::Segment(s, ..) => s.offset,
                Done::Other(f) => f.offset,
                Done::Err(
                    FrameError::Garbage { offset, .. }
                    | FrameError::TooLarge { offset }
                    | FrameError::Corrupt { offset, .. },
                ) => *offset,
                Done::Err(FrameError::Io(_)) => 0,
            };
            self.problem(
                ProblemKind::FrameStructure,
                Reason::DataAfterSeal,
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
                self.problem(
                    ProblemKind::FrameStructure,
                    Reason::FrameStructure,
                    offset,
                    None,
                    e.to_string(),
                );
                Flow::Stop
            }
            Done::Other(f) if first_frame => {
                if self.opts.claims_sealed {
                    self.problem(
                        ProblemKind::FrameStructure,
                        Reason::FrameStructure,
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
                Reason::IndexMissing,
                seg.offset,
                None,
                format!("index frame of segment {} is missing", entry.segment),
            );
        }
        self.report.segments += 1;
        self.report.bytes += seg.data.len() as u64;
        // A frame that does not decode is damage before any of its chunks:
        // how much text a decoder hands out before its error differs from
        // one decoder to another, the error itself does not. What decoded is
        // still read (runs of intact chunks, lenient reading), unverified.
        if let Decompressed::Corrupt(msg) = &seg.status {
            self.problem(
                ProblemKind::SegmentCorrupt,
                Reason::SegmentCorrupt,
                seg.offset,
                Some(seg.data.len() as u64),
                format!("segment {} does not decompress ({msg})", self.segment_no),
            );
            if self.segment_no == 0 {
                return Flow::Stop;
            }
        }
        if self.segment_no == 0 && !self.header(&seg) {
            return Flow::Stop;
        }
        let link_in = self.link;
        let seq_in = self.next_seq;
        let mut t0 = None;
        let mut work = std::mem::take(&mut seg.work).into_iter();
        for chunk in &seg.chunks {
            if let Ok(r) = &chunk.record {
                t0.get_or_insert(r.first);
            }
            if self.chunk(&seg, chunk, work.next().flatten()) == Flow::Stop {
                self.stopped = true;
                return Flow::Stop;
            }
        }
        match &seg.status {
            Decompressed::Corrupt(_) => {}
            Decompressed::Truncated if frame.bytes.ends_with(SEAL_TRAILER) => {
                self.problem(
                    ProblemKind::FrameStructure,
                    Reason::FrameStructure,
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
                    Reason::UnterminatedChunk,
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
                    Reason::HeaderInvalid,
                    seg.offset,
                    Some(0),
                    "no header line".into(),
                );
            }
            return false;
        };
        let line = &seg.data[range];
        let header = match parse_recording_header(line) {
            Ok(h) => h,
            Err(HeaderFault::Unsupported(m)) => {
                self.fatal = Some(ReadError::UnsupportedVersion(m));
                return false;
            }
            Err(HeaderFault::NotRecording(m)) if !self.opts.claims_sealed => {
                self.fatal = Some(ReadError::NotRecording(m));
                return false;
            }
            Err(e) => {
                self.problem(
                    ProblemKind::HeaderInvalid,
                    Reason::HeaderInvalid,
                    seg.offset,
                    Some(0),
                    format!("header: {e}"),
                );
                return false;
            }
        };
        let mut id = [0u8; 16];
        let meta = header.termtrail.as_ref();
        if meta.is_none_or(|m| hex::decode_to_slice(&m.id, &mut id).is_err()) {
            self.problem(
                ProblemKind::HeaderInvalid,
                Reason::HeaderInvalid,
                seg.offset,
                Some(0),
                "header: bad recording id".into(),
            );
            return false;
        }
        self.report.id = meta.map(|m| m.id.clone());
        self.link = genesis(&id, line);
        let flow = self.sink.header(&header);
        self.report.header = Some(header);
        flow == Flow::Continue
    }

    pub(super) fn finish(mut self) -> Result<Report, ReadError> {
        if let Some(e) = self.fatal.take() {
            return Err(e);
        }
        if self.frames_seen == 0 {
            return Err(ReadError::NotRecording("the file is empty".into()));
        }
        if !self.stopped && !self.tampered && !self.sealed_frame_seen && self.opts.claims_sealed {
            self.problem(
                ProblemKind::FrameStructure,
                Reason::FrameStructure,
                0,
                None,
                "the file ends with a seal trailer but no seal was found".into(),
            );
        }
        if !self.stopped && !self.tampered && self.sealed_frame_seen && !self.report.sealed {
            self.problem(
                ProblemKind::SealInvalid,
                Reason::SealInvalid,
                0,
                None,
                "seal invalid".into(),
            );
        }
        self.report.status = if self.tampered {
            Status::Tampered
        } else if self.report.sealed && !self.truncated {
            Status::Intact
        } else {
            Status::Unsealed
        };
        let first = self.report.problems.first();
        self.report.reason = match self.report.status {
            Status::Tampered => first.map(|p| p.reason),
            Status::Unsealed => Some(Reason::Truncated),
            Status::Intact => None,
        };
        self.report.first_bad_chunk = first.and_then(|p| p.chunk);
        Ok(self.report)
    }
}
