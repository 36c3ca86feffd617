//! What reading found: the [`Report`] with its [`Status`], [`Signature`],
//! damage ([`Problem`]) and detached chunk runs, and the [`ReadError`] that
//! stops reading before any verdict.

use std::io;

use serde::Serialize;

use crate::cast::Header;
use crate::chain::Hash;
use crate::event::Micros;
use crate::seal::EndReason;

#[cfg(doc)]
use super::ContentCheck;

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

/// The reason class of a verdict: a short stable token (docs/format.md §7
/// lists each check with its class), for comparing verifiers mechanically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Exit 2: not a termtrail recording (empty, another file type, no
    /// `termtrail` block in the header of a file that does not claim a seal).
    NotARecording,
    /// Exit 2: an asciicast `version` other than 3 or a `termtrail.format`
    /// other than 1.
    UnsupportedVersion,
    /// Exit 2: the file could not be read.
    Unreadable,
    /// Exit 3: the file ends without a seal (cut anywhere, or the recorder
    /// stopped before sealing).
    Truncated,
    /// Bytes where a frame should start are no frame, a frame header or
    /// block header is invalid, a frame is too large, an unknown skippable
    /// frame, or a file that claims a seal is cut short.
    FrameStructure,
    /// A complete segment frame does not decompress.
    SegmentCorrupt,
    /// The header line is missing or a required member is missing or wrong.
    HeaderInvalid,
    /// A chunk record line is not canonical.
    BadRecord,
    /// A record's `chunk=` is not the next sequence number.
    Sequence,
    /// A chunk's `len`, `n` or `sha256` does not match its lines.
    ContentMismatch,
    /// A record's `link` does not follow from the previous link.
    LinkMismatch,
    /// A record's `t=` goes back in time.
    RecordTime,
    /// A chunk without event lines (`n=0`).
    EmptyChunk,
    /// An event line is malformed.
    BadEvent,
    /// A `b` companion line is misplaced or malformed.
    BadCompanion,
    /// Event times disagree with the record's `t=first..last`.
    EventTime,
    /// A complete segment ends with lines that no record closes.
    UnterminatedChunk,
    /// A complete segment is not followed by its index frame (another
    /// segment or the seal comes first), or an index frame follows none.
    IndexMissing,
    /// An index frame is not the recomputed entry of its segment.
    IndexMismatch,
    /// The seal is malformed.
    SealInvalid,
    /// The seal disagrees with the recording (a total, the last link, the
    /// index, its hash).
    SealMismatch,
    /// The seal's signature is missing, present without a key in the
    /// header, or does not verify.
    SignatureInvalid,
    /// Data follows the seal.
    DataAfterSeal,
}

impl Reason {
    /// The token, as in `verify --json`.
    pub fn token(self) -> &'static str {
        match self {
            Reason::NotARecording => "not-a-recording",
            Reason::UnsupportedVersion => "unsupported-version",
            Reason::Unreadable => "unreadable",
            Reason::Truncated => "truncated",
            Reason::FrameStructure => "frame-structure",
            Reason::SegmentCorrupt => "segment-corrupt",
            Reason::HeaderInvalid => "header-invalid",
            Reason::BadRecord => "bad-record",
            Reason::Sequence => "sequence",
            Reason::ContentMismatch => "content-mismatch",
            Reason::LinkMismatch => "link-mismatch",
            Reason::RecordTime => "record-time",
            Reason::EmptyChunk => "empty-chunk",
            Reason::BadEvent => "bad-event",
            Reason::BadCompanion => "bad-companion",
            Reason::EventTime => "event-time",
            Reason::UnterminatedChunk => "unterminated-chunk",
            Reason::IndexMissing => "index-missing",
            Reason::IndexMismatch => "index-mismatch",
            Reason::SealInvalid => "seal-invalid",
            Reason::SealMismatch => "seal-mismatch",
            Reason::SignatureInvalid => "signature-invalid",
            Reason::DataAfterSeal => "data-after-seal",
        }
    }

    /// Whether a problem of this class is about one chunk (the one expected
    /// at that point of the chain), named as the first bad chunk.
    pub fn names_chunk(self) -> bool {
        matches!(
            self,
            Reason::BadRecord
                | Reason::Sequence
                | Reason::ContentMismatch
                | Reason::LinkMismatch
                | Reason::RecordTime
                | Reason::EmptyChunk
                | Reason::BadEvent
                | Reason::BadCompanion
                | Reason::EventTime
                | Reason::UnterminatedChunk
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.token())
    }
}

/// One piece of damage.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// Its reason class (finer than `kind`).
    pub reason: Reason,
    /// The chunk concerned (the sequence number expected there), for the
    /// classes that name one ([`Reason::names_chunk`]).
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
    pub(super) link: Hash,
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
    /// The reason class: the first problem's when tampered,
    /// [`Reason::Truncated`] when unsealed, None when intact.
    pub reason: Option<Reason>,
    /// The first problem's chunk, when it names one.
    pub first_bad_chunk: Option<u64>,
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
    /// A termtrail recording of a version this reader does not know.
    #[error("unsupported recording version: {0}")]
    UnsupportedVersion(String),
}

impl ReadError {
    /// The reason class (all exit 2 in `termtrail verify`).
    pub fn reason(&self) -> Reason {
        match self {
            ReadError::Io(_) => Reason::Unreadable,
            ReadError::NotRecording(_) => Reason::NotARecording,
            ReadError::UnsupportedVersion(_) => Reason::UnsupportedVersion,
        }
    }
}
