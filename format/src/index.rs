//! Random access: the segment index of a recording, and reading one segment
//! without touching the others (DESIGN invariant 6).
//!
//! The index comes from the seal (found from the end of the file) or, for an
//! unsealed file, is rebuilt by walking frame headers and block headers with
//! seeks — segment payloads are skipped, not decompressed. A segment read
//! this way is verified on its own: its chunks' links from the index entry's
//! `link_in`, and the SHA-256 of every chunk whose events are taken
//! ([`SegmentText`] hashes a chunk when it is used; [`SegmentEvents`] holds
//! them all). (Only a full sequential read proves that the index itself is
//! untampered; `verify` does that.)

use std::io::{self, Read, Seek, SeekFrom};

use crate::cast::{EventAssembler, Header, parse_line};
use crate::chain::{ChunkRecord, Hash, genesis, link, sha256};
use crate::event::{Event, Micros};
use crate::frames::{Frame, FrameKind, MAX_FRAME, SEAL_MAGIC, SEGMENT_INDEX_MAGIC, ZSTD_MAGIC};
use crate::seal::{EndReason, SEAL_TRAILER, Seal, SealError, SegmentEntry, decode_seal};
use crate::segment::{Decompressed, decode_segment_unhashed};

/// One segment's place in the file.
#[derive(Debug, Clone)]
pub struct IndexedSegment {
    /// Byte offset of its zstd frame.
    pub offset: u64,
    /// Length of its zstd frame as stored (to the end of the file when cut).
    pub length: u64,
    /// Its index entry; None for a trailing segment without one (unsealed).
    pub entry: Option<SegmentEntry>,
}

/// The index of a recording.
#[derive(Debug, Clone)]
pub struct RecordingIndex {
    /// The header.
    pub header: Header,
    /// The chain's genesis link.
    pub genesis: Hash,
    /// Segments in order.
    pub segments: Vec<IndexedSegment>,
    /// Whether the index came from the seal.
    pub sealed: bool,
    /// Duration from the seal or the last indexed segment.
    pub duration: Micros,
    /// Why the recording ended, from the seal (not verified here).
    pub end: Option<EndReason>,
    /// The seal's stated hash (not verified here): what a journal of seals
    /// records.
    pub seal_hash: Option<Hash>,
    /// The chain's last link as the seal states it (hex).
    pub last_link: Option<String>,
}

/// Index failures.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file's structure is not a termtrail recording's.
    #[error("cannot index: {0}")]
    Invalid(String),
    /// The seal at the end of the file is malformed.
    #[error("cannot index: {0}")]
    Seal(SealError),
    /// Segment 0, which holds the header, does not decompress: damage
    /// before the first chunk (what `verify` calls TAMPERED).
    #[error("TAMPERED: segment 0 does not decompress ({0})")]
    Damaged(String),
    /// The file ends inside segment 0 before its header line is whole: no
    /// chunk was written (what `verify` calls intact but UNSEALED).
    #[error("{CUT_IN_HEADER}")]
    CutInHeader,
}

/// How every subcommand says that a recording ends inside its header
/// ([`IndexError::CutInHeader`]): `verify`'s verdict for it.
pub const CUT_IN_HEADER: &str =
    "intact but UNSEALED (truncated or interrupted): the file ends inside its header, 0 chunks";

impl IndexError {
    /// Whether this is damage `verify` calls TAMPERED (exit 1), not a
    /// failure to read.
    pub fn is_tampered(&self) -> bool {
        matches!(self, IndexError::Damaged(_))
    }
}

fn invalid(msg: impl Into<String>) -> IndexError {
    IndexError::Invalid(msg.into())
}

/// Loads the index: from the seal when the file ends with one, else by
/// walking frame headers.
pub fn load_index<R: Read + Seek>(r: &mut R) -> Result<RecordingIndex, IndexError> {
    let len = r.seek(SeekFrom::End(0))?;
    let (header, genesis) = read_header(r)?;
    if let Some(seal) = read_seal(r)? {
        return Ok(RecordingIndex {
            header,
            genesis,
            duration: seal.body.duration,
            end: Some(seal.body.end),
            seal_hash: Some(seal.hash),
            last_link: Some(seal.body.last_link.clone()),
            segments: seal
                .body
                .segments
                .into_iter()
                .map(|e| IndexedSegment {
                    offset: e.offset,
                    length: e.length,
                    entry: Some(e),
                })
                .collect(),
            sealed: true,
        });
    }
    let segments = scan_segments(r, len)?;
    let duration = segments
        .iter()
        .filter_map(|s| s.entry.as_ref())
        .map(|e| e.t1)
        .max()
        .unwrap_or(0);
    Ok(RecordingIndex {
        header,
        genesis,
        segments,
        sealed: false,
        duration,
        end: None,
        seal_hash: None,
        last_link: None,
    })
}

/// The seal at the end of the file, parsed but not checked (its hash,
/// signature and index are checked against the recording by the reader).
/// None when the file does not end with a seal trailer.
pub fn read_seal<R: Read + Seek>(r: &mut R) -> Result<Option<Seal>, IndexError> {
    let len = r.seek(SeekFrom::End(0))?;
    if len < 20 {
        return Ok(None);
    }
    let mut tail = [0u8; 12];
    r.seek(SeekFrom::End(-12))?;
    r.read_exact(&mut tail)?;
    if &tail[4..] != SEAL_TRAILER {
        return Ok(None);
    }
    let total = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if total > len || total < 20 || total as usize > MAX_FRAME {
        return Err(invalid("seal trailer gives an impossible length"));
    }
    r.seek(SeekFrom::Start(len - total))?;
    let mut frame = vec![0u8; total as usize];
    r.read_exact(&mut frame)?;
    if u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) != SEAL_MAGIC {
        return Err(invalid("seal frame magic missing"));
    }
    decode_seal(&frame[8..]).map(Some).map_err(IndexError::Seal)
}

/// Decodes just enough of segment 0 to get the header line.
fn read_header<R: Read + Seek>(r: &mut R) -> Result<(Header, Hash), IndexError> {
    r.seek(SeekFrom::Start(0))?;
    let mut magic = [0u8; 4];
    let zstd = read_full(r, &mut magic)? == 4 && u32::from_le_bytes(magic) == ZSTD_MAGIC;
    r.seek(SeekFrom::Start(0))?;
    let mut dec = zstd::stream::read::Decoder::new(&mut *r)
        .map_err(|e| invalid(e.to_string()))?
        .single_frame();
    let mut line = Vec::new();
    let mut byte = [0u8; 4096];
    while !line.contains(&b'\n') {
        let n = dec.read(&mut byte).map_err(|e| {
            // A zstd frame that breaks off or does not decode is said in
            // verify's words; anything else is no recording.
            match crate::segment::damage_words(&e) {
                _ if !zstd => invalid(format!("segment 0: {e}")),
                w if w == "cut short" => IndexError::CutInHeader,
                w => IndexError::Damaged(w),
            }
        })?;
        if n == 0 || line.len() > 1 << 20 {
            return Err(invalid("no header line"));
        }
        line.extend_from_slice(&byte[..n]);
    }
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(0) + 1;
    line.truncate(end);
    let header =
        crate::header::parse_recording_header(&line).map_err(|e| invalid(e.to_string()))?;
    let meta = header
        .termtrail
        .as_ref()
        .ok_or_else(|| invalid("no termtrail block in the header"))?;
    let mut id = [0u8; 16];
    hex::decode_to_slice(&meta.id, &mut id).map_err(|_| invalid("bad recording id"))?;
    let g = genesis(&id, &line);
    Ok((header, g))
}

/// Walks frames from the start, reading headers and seeking over payloads.
fn scan_segments<R: Read + Seek>(r: &mut R, len: u64) -> Result<Vec<IndexedSegment>, IndexError> {
    let mut out: Vec<IndexedSegment> = Vec::new();
    let mut at = 0u64;
    while at < len {
        r.seek(SeekFrom::Start(at))?;
        let mut m = [0u8; 4];
        if read_full(r, &mut m)? < 4 {
            break;
        }
        let magic = u32::from_le_bytes(m);
        if magic == ZSTD_MAGIC {
            let flen = zstd_frame_len(r, at, len)?;
            out.push(IndexedSegment {
                offset: at,
                length: flen,
                entry: None,
            });
            at += flen;
        } else if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            let mut s = [0u8; 4];
            if read_full(r, &mut s)? < 4 {
                break;
            }
            let size = u64::from(u32::from_le_bytes(s));
            if magic == SEGMENT_INDEX_MAGIC && size <= 1 << 20 {
                let mut payload = vec![0u8; size as usize];
                if read_full(r, &mut payload)? == payload.len()
                    && let (Some(last), Some(entry)) =
                        (out.last_mut(), SegmentEntry::from_payload(&payload))
                {
                    last.entry = Some(entry);
                }
            }
            at += 8 + size;
        } else {
            return Err(invalid(format!("no frame at byte {at}")));
        }
    }
    Ok(out)
}

/// Reads until `buf` is full or the reader ends; returns how many bytes came.
pub fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Length of the zstd frame at `start` (the magic already read), from its
/// header and block headers; a frame cut by the end of the file runs to it.
fn zstd_frame_len<R: Read + Seek>(r: &mut R, start: u64, len: u64) -> Result<u64, IndexError> {
    let mut fhd = [0u8; 1];
    if read_full(r, &mut fhd)? < 1 {
        return Ok(len - start);
    }
    let fhd = fhd[0];
    let single = fhd & 0x20 != 0;
    let dict = [0u64, 1, 2, 4][(fhd & 3) as usize];
    let fcs = match fhd >> 6 {
        0 if single => 1,
        0 => 0,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let mut pos = start + 5 + u64::from(!single) + dict + fcs;
    loop {
        if pos + 3 > len {
            return Ok(len - start);
        }
        r.seek(SeekFrom::Start(pos))?;
        let mut h = [0u8; 3];
        read_full(r, &mut h)?;
        let h = u32::from(h[0]) | u32::from(h[1]) << 8 | u32::from(h[2]) << 16;
        let size = u64::from(h >> 3);
        let stored = match (h >> 1) & 3 {
            0 | 2 => size,
            1 => 1,
            _ => return Err(invalid(format!("corrupt block in frame at byte {start}"))),
        };
        pos += 3 + stored;
        if h & 1 != 0 {
            break;
        }
    }
    if fhd & 0x04 != 0 {
        pos += 4;
    }
    Ok(pos.min(len) - start)
}

/// Events of one segment, verified on their own.
#[derive(Debug, Clone)]
pub struct SegmentEvents {
    /// Events with absolute times.
    pub events: Vec<Event>,
    /// Chunks that verified.
    pub chunks: u64,
    /// Why reading stopped early, if it did (damage in this segment).
    pub problem: Option<String>,
}

impl RecordingIndex {
    /// The segment holding time `t` (the last one starting at or before it).
    pub fn segment_at(&self, t: Micros) -> Option<usize> {
        let mut best = None;
        for (i, s) in self.segments.iter().enumerate() {
            match &s.entry {
                Some(e) if e.chunks > 0 && e.t0 > t => break,
                Some(e) if e.chunks == 0 => {}
                _ => best = Some(i),
            }
        }
        best.or((!self.segments.is_empty()).then_some(0))
    }

    /// The segments that may hold events from `t0` to `t1` (both included):
    /// those whose time range meets it, and any without an index entry.
    pub fn segments_between(&self, t0: Micros, t1: Micros) -> Vec<usize> {
        (0..self.segments.len())
            .filter(|&i| match &self.segments[i].entry {
                Some(e) => e.chunks > 0 && e.t0 <= t1 && e.t1 >= t0,
                None => true,
            })
            .collect()
    }

    /// The link before segment `i`.
    fn link_in(&self, i: usize) -> Option<Hash> {
        let from_hex = |s: &str| {
            let mut h = [0u8; 32];
            hex::decode_to_slice(s, &mut h).ok().map(|_| h)
        };
        match &self.segments[i].entry {
            Some(e) => from_hex(&e.link_in),
            None if i == 0 => Some(self.genesis),
            None => self.segments[i - 1]
                .entry
                .as_ref()
                .and_then(|e| from_hex(&e.link_out)),
        }
    }

    /// Reads segment `i` alone: decompresses only it, verifies its chunks and
    /// returns their events.
    pub fn read_segment<R: Read + Seek>(
        &self,
        r: &mut R,
        i: usize,
    ) -> Result<SegmentEvents, IndexError> {
        let text = self.read_segment_text(r, i)?;
        let mut out = SegmentEvents {
            events: Vec::new(),
            chunks: 0,
            problem: text.problem.clone(),
        };
        for k in 0..text.chunks() {
            if !text.push_events(k, &mut out.events)? {
                out.problem = Some(format!("chunk {} does not verify", text.record(k).seq));
                break;
            }
            out.chunks += 1;
        }
        Ok(out)
    }

    /// Reads segment `i` alone for random access: decompresses it and checks
    /// its chain of chunk records from the index entry's `link_in`; each
    /// chunk's content is verified when its events are taken
    /// ([`SegmentText::push_events`]).
    pub fn read_segment_text<R: Read + Seek>(
        &self,
        r: &mut R,
        i: usize,
    ) -> Result<SegmentText, IndexError> {
        let seg = self
            .segments
            .get(i)
            .ok_or_else(|| invalid("no such segment"))?;
        if seg.length as usize > MAX_FRAME {
            return Err(invalid("segment too large"));
        }
        r.seek(SeekFrom::Start(seg.offset))?;
        let mut bytes = vec![0u8; seg.length as usize];
        let got = read_full(r, &mut bytes)?;
        bytes.truncate(got);
        let complete = seg.entry.is_some();
        // The frame must be the one its index entry (or the seal) names, as
        // `verify` checks after the segment's chunks.
        let frame_differs = seg.entry.as_ref().is_some_and(|entry| {
            got as u64 == seg.length && hex::encode(sha256(&bytes)) != entry.sha256
        });
        let frame = Frame {
            offset: seg.offset,
            kind: FrameKind::Zstd,
            len: got as u64,
            bytes,
            complete,
        };
        let mut decoded = decode_segment_unhashed(&frame, i == 0);
        let mut link_prev = self
            .link_in(i)
            .ok_or_else(|| invalid("no link for this segment"))?;
        let mut problem = None;
        if let Decompressed::Corrupt(e) = &decoded.status {
            problem = Some(format!("segment {i} does not decompress ({e})"));
        }
        let mut chunks = Vec::new();
        let mut expected_seq = seg.entry.as_ref().map(|e| e.first_chunk);
        for chunk in std::mem::take(&mut decoded.chunks) {
            let rec = match chunk.record {
                Ok(r) if chunk.content_ok && link(&link_prev, r.body().as_bytes()) == r.link => r,
                Ok(r) => {
                    problem = Some(format!("chunk {} does not verify", r.seq));
                    break;
                }
                Err(e) => {
                    problem = Some(e.to_string());
                    break;
                }
            };
            if expected_seq.is_some_and(|s| s != rec.seq) {
                problem = Some(format!("chunk {} is out of sequence", rec.seq));
                break;
            }
            expected_seq = Some(rec.seq + 1);
            link_prev = rec.link;
            chunks.push((rec, chunk.lines));
        }
        if problem.is_none() && frame_differs {
            problem = Some(format!(
                "index frame of segment {i} does not match: sha256 differs"
            ));
        }
        Ok(SegmentText {
            data: std::mem::take(&mut decoded.data),
            chunks,
            problem,
            hashed: false,
        })
    }
}

/// One segment read for random access (see
/// [`RecordingIndex::read_segment_text`]) or handed on by the reader
/// ([`crate::reader::ReadSink::segment_text`]): the chunks whose records
/// chain, their content hashed when it is used unless the reader did.
#[derive(Debug)]
pub struct SegmentText {
    data: Vec<u8>,
    chunks: Vec<(ChunkRecord, std::ops::Range<usize>)>,
    /// Why the chain stops before the segment's end (damage), if it does.
    pub problem: Option<String>,
    /// Every chunk's content was already hashed against its record (by the
    /// reader that handed the segment on).
    hashed: bool,
}

impl Drop for SegmentText {
    fn drop(&mut self) {
        crate::segment::recycle(std::mem::take(&mut self.data));
    }
}

impl SegmentText {
    /// A segment the reader verified, handed on after its chunks
    /// ([`crate::reader::ReadSink::segment_text`]); `hashed` when its
    /// chunks' content was hashed too (not taken on the seal's frame hash).
    pub(crate) fn verified(
        data: Vec<u8>,
        chunks: Vec<(ChunkRecord, std::ops::Range<usize>)>,
        hashed: bool,
    ) -> SegmentText {
        SegmentText {
            data,
            chunks,
            problem: None,
            hashed,
        }
    }

    /// How many chunks chain (chunks after damage are left out).
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Chunk `k`'s record (its times, sequence number, hashes).
    pub fn record(&self, k: usize) -> &ChunkRecord {
        &self.chunks[k].0
    }

    /// Whether chunk `k`'s event lines hash to its record's SHA-256 (true
    /// without hashing when the reader that handed the segment on did).
    pub fn verify(&self, k: usize) -> bool {
        let (rec, lines) = &self.chunks[k];
        self.hashed || sha256(&self.data[lines.clone()]) == rec.sha256
    }

    /// Chunk `k`'s event lines as stored, when they hash to its record's
    /// SHA-256 (see [`SegmentText::verify`]); None when they do not.
    pub fn checked_lines(&self, k: usize) -> Option<&[u8]> {
        self.verify(k).then(|| &self.data[self.chunks[k].1.clone()])
    }

    /// Hashes chunk `k`'s event lines against its record and, when they
    /// match, appends its events (absolute times) to `out`. Ok(false) when
    /// the content does not verify (nothing is appended); an error when
    /// verified content is not valid asciicast.
    pub fn push_events(&self, k: usize, out: &mut Vec<Event>) -> Result<bool, IndexError> {
        let (rec, lines) = &self.chunks[k];
        if !self.verify(k) {
            return Ok(false);
        }
        let body = &self.data[lines.clone()];
        let mut asm = EventAssembler::new();
        let mut t = rec.first;
        for (n, line) in body.split_inclusive(|&b| b == b'\n').enumerate() {
            let l = parse_line(line).map_err(|e| invalid(e.0))?;
            if n > 0 {
                t += l.time;
            }
            asm.push(t, &l.code, l.data, out)
                .map_err(|e| invalid(e.0))?;
        }
        asm.finish(out);
        Ok(true)
    }
}
