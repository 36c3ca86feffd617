//! The [`ReadSink`] trait: the hooks the reader pushes what it verified
//! into (header, events, chunk text, segment text, damage).

use crate::cast::Header;
use crate::chain::ChunkRecord;
use crate::event::Event;
use crate::index::SegmentText;
use crate::pipeline::Flow;

use super::options::ChunkOutput;
#[cfg(doc)]
use super::options::ReadOptions;
use super::report::Problem;

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
    /// [`ReadSink::chunk_text`] for a sink that set
    /// [`ReadOptions::chunk_work`]: with what that work made of the chunk's
    /// lines on a decoding thread (called instead of `chunk_text`).
    fn chunk_worked(&mut self, record: &ChunkRecord, lines: &[u8], _work: ChunkOutput) -> Flow {
        self.chunk_text(record, lines)
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
