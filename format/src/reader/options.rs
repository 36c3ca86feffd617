//! How to read: [`ReadOptions`] and the [`ContentCheck`] strategy.

#[cfg(doc)]
use super::read_path;

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
