//! The verifying reader: the one way into a `.cast.zst` recording.
//!
//! It walks the file frame by frame, decodes segments (on several threads),
//! checks every chunk's SHA-256, the chain links, sequence numbers, segment
//! index frames and the seal, and pushes into a [`ReadSink`] only events from
//! chunks that verified — so a tampered chunk can never be played, grepped or
//! exported silently. What it found is returned as a [`Report`].
//!
//! The parts: [`ReadOptions`] say how to read, a [`ReadSink`] receives what
//! verified, the walk over frames and segments is in `walk`, the checks of
//! chunk content in `chunks`, of index frames and the seal in `seal_check`,
//! and the [`Report`] says what was found. [`sniff`] tells from a file's
//! first bytes which kind of recording it holds.

mod chunks;
mod options;
mod report;
mod seal_check;
mod sink;
mod sniff;
mod walk;

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::frames::{Frame, FrameError, FrameKind, FrameScanner};
use crate::index::read_seal;
use crate::pipeline::ordered_map;
use crate::seal::SEAL_TRAILER;
use crate::segment::{DecodedSegment, decode_segment};

pub use options::{ChunkFn, ChunkOutput, ChunkWork, ContentCheck, ReadOptions};
pub use report::{ChunkRun, Problem, ProblemKind, ReadError, Reason, Report, Signature, Status};
pub use sink::ReadSink;
pub use sniff::{FileKind, sniff, sniff_path};

use walk::Verifier;

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
                let (mut seg, by_seal) =
                    decode_segment(&f, n == 0, sealed.get(n).map(String::as_str));
                if let Some(work) = &opts.chunk_work {
                    seg.work = seg
                        .chunks
                        .iter()
                        .map(|c| {
                            let r = c.record.as_ref().ok()?;
                            Some((work.0)(r, seg.data.get(c.lines.clone())?))
                        })
                        .collect();
                }
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
