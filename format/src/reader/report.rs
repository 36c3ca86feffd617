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
