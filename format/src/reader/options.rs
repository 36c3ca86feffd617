//! How to read: [`ReadOptions`] and the [`ContentCheck`] strategy.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::chain::ChunkRecord;

#[cfg(doc)]
use super::{ReadSink, read_path};

/// What [`ChunkWork`] made of one chunk, handed to the sink with the chunk
/// ([`ReadSink::chunk_worked`]). Any type: the reader only carries it.
pub type ChunkOutput = Box<dyn Any + Send>;

/// Work a sink wants done on each chunk's event lines on the decoding
/// threads, next to decompression, instead of on the one thread that calls
/// the sink: a search of each chunk's own lines, say. It is given the
/// chunk's record and event lines (as [`ReadSink::chunk_text`] is) for every
/// chunk whose record parses, before anything is verified; the sink gets
/// the output only for chunks that verified, in order.
///
/// A boxed closure and a type-erased output, because the sink is a trait
/// object: a sink that sets it downcasts the output to what its closure
/// returns.
#[derive(Clone)]
pub struct ChunkWork(pub Arc<ChunkFn>);

/// [`ChunkWork`]'s closure: a chunk's record and event lines to its output.
pub type ChunkFn = dyn Fn(&ChunkRecord, &[u8]) -> ChunkOutput + Send + Sync;

impl fmt::Debug for ChunkWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChunkWork(..)")
    }
}

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
    /// Work done on each chunk's lines on the decoding threads (see
    /// [`ChunkWork`]); None: none.
    pub chunk_work: Option<ChunkWork>,
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
            chunk_work: None,
        }
    }
}
