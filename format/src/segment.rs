//! Decoding one segment: decompress it and split it into chunks, checking
//! each chunk's SHA-256. Pure and independent per segment, so segments can be
//! checked on several threads; the chain links are checked afterwards, in
//! order, by the reader.

use std::io::Read;
use std::ops::Range;

use crate::chain::{ChunkRecord, RECORD_PREFIX, RecordError, sha256};
use crate::frames::Frame;
use crate::stored::{LineFault, LineSpan, check_chunk_lines};

/// Largest uncompressed segment accepted (the writer's bound is ≤ 32 MiB
/// plus one chunk).
pub const MAX_SEGMENT: usize = 40 << 20;

/// Capacity tried for decoding a whole segment in one call (segments are
/// cut at ~4 MiB; see `decompress`).
const ONE_SHOT: usize = 8 << 20;

/// Segment buffers given back ([`recycle`]) for the next segments to
/// decode into. A fresh buffer costs a page fault for every page it
/// touches; while a reader drops each segment before decoding the next, the
/// allocator hands the same memory back by itself, but not once a sink
/// keeps segments a while (grep keeps the last two for screen lines).
static SPARE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
/// Buffers kept at most (each up to [`ONE_SHOT`] bytes).
const SPARES: usize = 4;

/// Gives a segment's buffer back for decoding another (only buffers made
/// for one-shot decoding are kept).
pub(crate) fn recycle(mut buf: Vec<u8>) {
    if buf.capacity() != ONE_SHOT {
        return;
    }
    buf.clear();
    if let Ok(mut spare) = SPARE.lock()
        && spare.len() < SPARES
    {
        spare.push(buf);
    }
}

thread_local! {
    /// One decompression context per thread, reused for every segment.
    static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

/// How decompression ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decompressed {
    /// The whole frame decoded.
    Complete,
    /// The file ended inside the frame; `data` holds what decoded.
    Truncated,
    /// The frame is corrupt; `data` holds what decoded before the error.
    Corrupt(String),
}

/// One chunk found in a segment.
#[derive(Debug, Clone)]
pub struct ChunkScan {
    /// The event lines, as a range of the segment's data.
    pub lines: Range<usize>,
    /// Where the record line starts.
    pub record_at: usize,
    /// The record line, parsed (or why it could not be).
    pub record: Result<ChunkRecord, RecordError>,
    /// Number of lines in `lines`.
    pub line_count: u64,
    /// Whether length, line count and SHA-256 match the record.
    pub content_ok: bool,
    /// The checks of its event lines (None when the chunk was not hashed:
    /// a segment taken as sealed, or random access).
    pub lines_check: Option<Result<LineSpan, LineFault>>,
}

/// A decoded segment.
#[derive(Debug)]
pub struct DecodedSegment {
    /// The frame's offset in the file.
    pub offset: u64,
    /// The frame's length in the file.
    pub length: u64,
    /// Uncompressed bytes.
    pub data: Vec<u8>,
    /// How decompression ended.
    pub status: Decompressed,
    /// The header line (segment 0 only), when complete.
    pub header: Option<Range<usize>>,
    /// Chunks, in file order.
    pub chunks: Vec<ChunkScan>,
    /// What [`crate::reader::ChunkWork`] made of each chunk (one entry per
    /// chunk, None where its record does not parse; empty without work).
    pub work: Vec<Option<crate::reader::ChunkOutput>>,
    /// Bytes after the last record: an unfinished chunk.
    pub tail: Range<usize>,
    /// SHA-256 of the compressed frame bytes (hex).
    pub frame_sha256: String,
}

impl Drop for DecodedSegment {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.data));
    }
}

/// Decompresses a segment frame and splits it into chunks, each hashed
/// against its record — unless the file's seal gives the frame's SHA-256
/// (`sealed`, hex, from the seal's index entry for this segment) and the
/// frame's bytes hash to it: they are then the bytes that were sealed, and
/// `content_ok` checks lengths and line counts only (the seal, checked when
/// reading ends, binds the rest). Returns whether the frame matched.
pub fn decode_segment(frame: &Frame, first: bool, sealed: Option<&str>) -> (DecodedSegment, bool) {
    let frame_sha256 = hex::encode(sha256(&frame.bytes));
    let matched = frame.complete && sealed == Some(frame_sha256.as_str());
    (decode_with(frame, first, !matched, frame_sha256), matched)
}

/// Like [`decode_segment`], but `content_ok` checks only each chunk's length
/// and line count: the caller hashes the chunks it uses (random access reads
/// a chunk or two of a segment, not all of them).
pub(crate) fn decode_segment_unhashed(frame: &Frame, first: bool) -> DecodedSegment {
    decode_with(frame, first, false, hex::encode(sha256(&frame.bytes)))
}

fn decode_with(frame: &Frame, first: bool, hash: bool, frame_sha256: String) -> DecodedSegment {
    let (data, status) = decompress(&frame.bytes, frame.complete);
    let mut seg = DecodedSegment {
        offset: frame.offset,
        length: frame.len,
        header: None,
        chunks: Vec::new(),
        work: Vec::new(),
        tail: 0..0,
        frame_sha256,
        data,
        status,
    };
    let data = &seg.data;
    let mut pos = 0;
    if first {
        match memchr::memchr(b'\n', data) {
            Some(nl) => {
                seg.header = Some(0..nl + 1);
                pos = nl + 1;
            }
            None => {
                seg.tail = 0..data.len();
                return seg;
            }
        }
    }
    let mut chunk_start = pos;
    let mut lines = 0u64;
    while pos < data.len() {
        let Some(nl) = memchr::memchr(b'\n', &data[pos..]).map(|n| pos + n) else {
            break;
        };
        if data[pos..].starts_with(RECORD_PREFIX) {
            let record = ChunkRecord::parse(&data[pos..=nl]);
            let body = &data[chunk_start..pos];
            let content_ok = match &record {
                Ok(r) => {
                    r.len == body.len() as u64
                        && r.lines == lines
                        && (!hash || r.sha256 == sha256(body))
                }
                Err(_) => false,
            };
            seg.chunks.push(ChunkScan {
                lines: chunk_start..pos,
                record_at: pos,
                record,
                line_count: lines,
                content_ok,
                lines_check: hash.then(|| check_chunk_lines(body)),
            });
            chunk_start = nl + 1;
            lines = 0;
        } else {
            lines += 1;
        }
        pos = nl + 1;
    }
    seg.tail = chunk_start..data.len();
    seg
}

/// Decompresses one segment frame: all of it, or for a frame cut short
/// (`complete` false) or corrupt, what decoded before the cut.
pub(crate) fn decompress(bytes: &[u8], complete: bool) -> (Vec<u8>, Decompressed) {
    // A whole frame decodes in one call straight into its buffer (zstd's
    // streaming decoder would stage every block in its window and copy it
    // out, and the loop below copies once more). The buffer's capacity is
    // twice a segment's usual size, small enough for the allocator to reuse
    // the same memory for the next segment (a fresh mapping per segment
    // costs more in page faults than the copies save). Anything else — a
    // truncated or corrupt frame, one larger than that — takes the
    // streaming path, which says what went wrong and keeps what decoded
    // before it.
    if complete {
        let mut out = SPARE
            .lock()
            .ok()
            .and_then(|mut spare| spare.pop())
            .unwrap_or_else(|| Vec::with_capacity(ONE_SHOT));
        let ok = DCTX.with(|d| match d.borrow_mut().as_mut() {
            Some(d) => d.decompress_to_buffer(bytes, &mut out).is_ok(),
            None => false,
        });
        if ok {
            return (out, Decompressed::Complete);
        }
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(8).min(8 << 20));
    let mut dec = match zstd::stream::read::Decoder::with_buffer(bytes) {
        Ok(d) => d.single_frame(),
        Err(e) => return (out, Decompressed::Corrupt(damage_words(&e))),
    };
    let mut buf = vec![0u8; 128 << 10];
    loop {
        match dec.read(&mut buf) {
            Ok(0) => {
                return if complete {
                    (out, Decompressed::Complete)
                } else {
                    (out, Decompressed::Truncated)
                };
            }
            Ok(n) => {
                if out.len() + n > MAX_SEGMENT {
                    return (
                        out,
                        Decompressed::Corrupt("it decompresses to more than 40 MiB".into()),
                    );
                }
                out.extend_from_slice(&buf[..n]);
            }
            Err(e) if !complete && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return (out, Decompressed::Truncated);
            }
            Err(e) if !complete && e.to_string().contains("incomplete") => {
                return (out, Decompressed::Truncated);
            }
            Err(e) => return (out, Decompressed::Corrupt(damage_words(&e))),
        }
    }
}

/// What a decompression error says in the user's words (never the zstd
/// library's): "damaged", and what was found when that says more.
pub fn damage_words(e: &std::io::Error) -> String {
    let text = e.to_string().to_ascii_lowercase();
    if text.contains("checksum") {
        "damaged: its checksum does not match".into()
    } else if text.contains("incomplete") || e.kind() == std::io::ErrorKind::UnexpectedEof {
        "cut short".into()
    } else {
        "damaged".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(data, 3).unwrap()
    }

    #[test]
    fn every_decoding_path_gives_the_same_bytes() {
        // Usual size (one call), larger than the one-call buffer (streamed).
        for len in [100_000, ONE_SHOT + 12_345] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (out, status) = decompress(&frame(&data), true);
            assert_eq!(status, Decompressed::Complete, "len {len}");
            assert!(out == data, "len {len}");
        }
    }

    #[test]
    fn truncated_and_oversized_frames_say_so() {
        let data: Vec<u8> = (0..1_000_000).map(|i| (i % 13) as u8).collect();
        let f = frame(&data);
        let (out, status) = decompress(&f[..f.len() / 2], false);
        assert_eq!(status, Decompressed::Truncated);
        assert!(data.starts_with(&out));
        // A frame cut short but said to be complete is corrupt, not trusted.
        let (_, status) = decompress(&f[..f.len() / 2], true);
        assert!(matches!(status, Decompressed::Corrupt(_)), "{status:?}");
        let big = vec![b'x'; MAX_SEGMENT + 1];
        let (_, status) = decompress(&frame(&big), true);
        assert!(matches!(status, Decompressed::Corrupt(m) if m.contains("40 MiB")));
    }
}
