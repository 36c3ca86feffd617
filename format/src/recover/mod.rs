//! Sealing a recording whose recorder stopped without sealing it (killed,
//! crashed, power lost): in place, as `interrupted`, keeping the chain.
//!
//! Complete segments (a finished zstd frame followed by its index frame) are
//! kept byte for byte. The unfinished last segment — zstd blocks flushed per
//! chunk, but no end of frame — is decompressed as far as it goes, cut after
//! the record line of its last chunk that verifies, and written again as a
//! finished frame with its index frame. The chain is over the text, not the
//! compressed bytes, so every link stays as it was. Then a seal with end
//! reason `interrupted` follows. What was cut is an unfinished chunk: events
//! the recorder had not committed, which no reader would ever have shown.
//!
//! The new end is written to a note beside the recording first
//! (`.<name>.recovering`), so a recovery stopped while it overwrites the
//! unfinished end is finished by the next one, and on a disk too full for
//! the new end the recording is left as it was (without room for the note
//! alone, the new end is written without it).
//!
//! A recording whose header names a signing key gets a signed seal when that
//! key is given (the recorder that made it passes its own); without it the
//! seal is unsigned and `verify` reports an invalid signature for the key the
//! header names.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::cast::{Header, KeyRef};
use crate::chain::{ChunkRecord, Hash};
use crate::event::Micros;
use crate::frames::{SEGMENT_INDEX_MAGIC, skippable_frame};
use crate::index::load_index;
use crate::pipeline::Flow;
use crate::reader::{ReadOptions, ReadSink, Status, read_path};
use crate::seal::{EndReason, SealBody, SegmentEntry, encode_seal};
use crate::sign::SecretKey;

mod intent;
pub mod live;

pub use live::BeingRecorded;

/// What sealing found and did.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// Chunks in the sealed recording.
    pub chunks: u64,
    /// Time of the last event kept.
    pub duration: Micros,
    /// Uncompressed bytes of an unfinished chunk left out.
    pub dropped: u64,
    /// Whether the seal is signed (the header names the key that was given).
    pub signed: bool,
}

/// Why a recording could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file is not a readable recording.
    #[error("{0}")]
    Unreadable(String),
    /// The file does not verify: it is left as it is.
    #[error("the recording does not verify ({0}); not sealing it")]
    Tampered(String),
    /// A running recorder writes it (it holds the writer's lock, see
    /// [`live`]): it is left as it is.
    #[error(
        "{0}; left as it is (its recorder seals it when it ends; if that process is killed, run `termtrail recover` then)"
    )]
    BeingRecorded(BeingRecorded),
}

/// The last verified chunk's record, and the key the header names.
#[derive(Default)]
struct LastChunk(Option<ChunkRecord>, Option<KeyRef>);

impl ReadSink for LastChunk {
    fn header(&mut self, header: &Header) -> Flow {
        self.1 = header.termtrail.as_ref().and_then(|m| m.key.clone());
        Flow::Continue
    }

    fn chunk(&mut self, record: &ChunkRecord) -> Flow {
        self.0 = Some(record.clone());
        Flow::Continue
    }
}

/// Seals `path` as interrupted with `detail`; None when it is sealed
/// already. The seal is signed with `key` when the header names that key.
/// A recording a running recorder writes is refused
/// ([`RecoverError::BeingRecorded`]); the writer's lock is held meanwhile,
/// so no recorder or other recovery starts on it.
pub fn seal_interrupted(
    path: &Path,
    detail: &str,
    key: Option<&SecretKey>,
) -> Result<Option<Recovered>, RecoverError> {
    let claimed = File::open(path)?;
    live::claim(&claimed, path).map_err(|e| match e {
        live::ClaimError::BeingRecorded(b) => RecoverError::BeingRecorded(b),
        live::ClaimError::Io(e) => RecoverError::Io(e),
    })?;
    // A recovery that stopped half-way is finished first.
    if let Some(done) = resume(path)? {
        return Ok(Some(done));
    }
    let Some(plan) = plan(path, detail, key)? else {
        return Ok(None);
    };
    // Without room for the note (a full disk: it is as large as the new
    // end) the new end still goes in place safely for space (`put_tail`
    // takes it first), only not safely from a kill during that one write.
    let noted = intent::write(path, &plan).is_ok();
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.seek(SeekFrom::End(0))?;
    put_tail(&mut f, plan.keep, len, &plan.tail)?;
    if noted {
        intent::remove(path);
    }
    Ok(Some(plan.done))
}

/// Finishes the recovery of `path` a stopped one noted, if any.
fn resume(path: &Path) -> Result<Option<Recovered>, RecoverError> {
    let Some(noted) = intent::read(path) else {
        return Ok(None);
    };
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.seek(SeekFrom::End(0))?;
    if len < noted.keep || intent::guard(&mut f, noted.keep)? != noted.guard {
        // Not this file's (replaced since): not applied.
        intent::remove(path);
        return Ok(None);
    }
    put_tail(&mut f, noted.keep, len, &noted.tail)?;
    intent::remove(path);
    Ok(Some(noted.done))
}

/// What sealing `path` writes (None when it is sealed already): the new
/// end, where it goes, and what it reports.
fn plan(
    path: &Path,
    detail: &str,
    key: Option<&SecretKey>,
) -> Result<Option<intent::Intent>, RecoverError> {
    let Some((last, lines)) = unsealed(path)? else {
        return Ok(None);
    };
    // The key the header names, whole: a verifier checks its id as well as
    // the public key (a header naming the key under another id gets an
    // unsigned seal, as one naming another key does).
    let signer = key.filter(|k| last.1.as_ref() == Some(&k.public().key_ref()));
    let last = last.0;
    let mut f = File::open(path)?;
    let len = f.seek(SeekFrom::End(0))?;
    let index = load_index(&mut f).map_err(|e| RecoverError::Unreadable(e.to_string()))?;
    let mut entries: Vec<SegmentEntry> = index
        .segments
        .iter()
        .map_while(|s| s.entry.clone())
        .collect();
    let unfinished = index.segments.get(entries.len());
    // Cut after the last whole frame: the unfinished segment, or what a
    // recorder stopped while sealing left after the last index frame (part
    // of a seal), goes.
    let keep = match unfinished {
        Some(s) => s.offset,
        None => end_of_index_frame(&mut f, entries.last(), len)?,
    };
    let cut = match unfinished {
        Some(seg) => verified_part(&mut f, seg.offset, len, last.as_ref())?,
        None => Cut::default(),
    };
    // Everything written after `keep` is made first, then put in place
    // of the unfinished end in one go (see `put_tail`).
    let mut tail = Vec::new();
    let mut last_link: Hash = match entries.last() {
        Some(e) => from_hex(&e.link_out)?,
        None => index.genesis,
    };
    if !cut.text.is_empty() {
        let next = last.as_ref().map_or(0, |r| r.seq + 1);
        let entry = write_segment(&mut tail, &cut, entries.len() as u32, keep, last_link, next)?;
        last_link = cut.chunks.last().map_or(last_link, |r| r.link);
        entries.push(entry);
    }
    let duration = last.as_ref().map_or(0, |r| r.last);
    let body = SealBody {
        format: 1,
        id: index
            .header
            .termtrail
            .as_ref()
            .map(|m| m.id.clone())
            .unwrap_or_default(),
        chunks: last.as_ref().map_or(0, |r| r.seq + 1),
        lines,
        duration,
        bytes: entries.iter().map(|e| e.ulen).sum(),
        end: EndReason::Interrupted {
            detail: detail.to_string(),
        },
        sealed_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        last_link: hex::encode(last_link),
        segments: entries,
    };
    tail.extend_from_slice(&encode_seal(&body, &last_link, |h| {
        signer.map(|k| k.sign(h))
    }));
    Ok(Some(intent::Intent {
        keep,
        guard: intent::guard(&mut f, keep)?,
        tail,
        done: Recovered {
            chunks: body.chunks,
            duration,
            dropped: cut.dropped,
            signed: signer.is_some(),
        },
    }))
}

/// Reads `path` through the verifying reader: None when it is sealed
/// already; for an unsealed one, its last verified chunk, the key its
/// header names and the event lines verified. A tampered file is an error
/// (it is left as it is).
fn unsealed(path: &Path) -> Result<Option<(LastChunk, u64)>, RecoverError> {
    let mut last = LastChunk::default();
    let opts = ReadOptions {
        events: false,
        ..ReadOptions::default()
    };
    let report =
        read_path(path, &opts, &mut last).map_err(|e| RecoverError::Unreadable(e.to_string()))?;
    match report.status {
        Status::Intact => Ok(None),
        Status::Tampered => {
            let why = report
                .problems
                .first()
                .map_or_else(|| "damage found".to_string(), |p| p.message.clone());
            Err(RecoverError::Tampered(why))
        }
        Status::Unsealed => Ok(Some((last, report.lines))),
    }
}

/// The verified text of the unfinished segment: what is kept of it.
#[derive(Default)]
struct Cut {
    /// The header line (segment 0) and every chunk up to the last verified
    /// one, record lines included.
    text: Vec<u8>,
    /// The records of the chunks in `text`.
    chunks: Vec<ChunkRecord>,
    /// Uncompressed bytes left out after `text`.
    dropped: u64,
}

/// Decompresses the unfinished segment at `offset` (to the file's end,
/// `len`) as far as it goes and cuts it after the record of `last`, the
/// last chunk that verified.
fn verified_part(
    f: &mut File,
    offset: u64,
    len: u64,
    last: Option<&ChunkRecord>,
) -> Result<Cut, RecoverError> {
    f.seek(SeekFrom::Start(offset))?;
    let mut compressed = Vec::new();
    f.take(len - offset).read_to_end(&mut compressed)?;
    // As much of the unfinished frame as decompresses.
    let (all, _) = crate::segment::decompress(&compressed, false);
    let upto = last.map_or(0, |r| r.seq + 1);
    let mut chunks = Vec::new();
    let mut cut = 0;
    let mut at = 0;
    for line in all.split_inclusive(|&b| b == b'\n') {
        at += line.len();
        if !line.ends_with(b"\n") {
            break;
        }
        if offset == 0 && cut == 0 && chunks.is_empty() && line.starts_with(b"{") {
            cut = at; // the header line
            continue;
        }
        if line.starts_with(b"#tt ")
            && let Ok(r) = ChunkRecord::parse(line)
        {
            if r.seq >= upto {
                break;
            }
            chunks.push(r);
            cut = at;
        }
    }
    Ok(Cut {
        dropped: (all.len() - cut) as u64,
        text: all[..cut].to_vec(),
        chunks,
    })
}

/// Where the index frame after segment `last` ends (the file's length
/// `len` when there is none, or it is cut).
fn end_of_index_frame(f: &mut File, last: Option<&SegmentEntry>, len: u64) -> io::Result<u64> {
    let Some(e) = last else {
        return Ok(len);
    };
    let at = e.offset + e.length;
    let mut head = [0u8; 8];
    f.seek(SeekFrom::Start(at))?;
    if f.read_exact(&mut head).is_err() {
        return Ok(len);
    }
    let size = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
    Ok((at + 8 + size).min(len))
}

/// Writes `tail` over the file's unfinished end (`keep..len`) and cuts the
/// file after it. The space is taken first: when `tail` is longer than the
/// end it replaces, the file grows by the difference before anything is
/// overwritten, and a disk too full for that leaves the file as it was
/// (the error says so; sealing can be tried again once there is space).
/// Overwriting blocks the file already has needs no new space.
fn put_tail(f: &mut File, keep: u64, len: u64, tail: &[u8]) -> io::Result<()> {
    let need = keep + tail.len() as u64;
    if need > len {
        f.seek(SeekFrom::Start(len))?;
        let grown = f
            .write_all(&vec![0u8; (need - len) as usize])
            .and_then(|()| f.sync_data());
        if let Err(e) = grown {
            let _ = f.set_len(len);
            return Err(e);
        }
    }
    f.seek(SeekFrom::Start(keep))?;
    f.write_all(tail)?;
    f.set_len(need)?;
    f.sync_all()
}

/// Writes `cut` to `out` (its file offset: `offset`) as a finished segment
/// number `segment` followed by its index frame, and returns its index
/// entry; `link_in` is the link it continues, `next` the sequence number of
/// the chunk after the last verified one.
fn write_segment(
    f: &mut Vec<u8>,
    cut: &Cut,
    segment: u32,
    offset: u64,
    link_in: Hash,
    next: u64,
) -> Result<SegmentEntry, RecoverError> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3)?;
    enc.include_checksum(false)?;
    enc.include_contentsize(false)?;
    enc.write_all(&cut.text)?;
    let frame = enc.finish()?;
    let chunks = &cut.chunks;
    let entry = SegmentEntry {
        segment,
        offset,
        length: frame.len() as u64,
        ulen: cut.text.len() as u64,
        first_chunk: chunks.first().map_or(next, |r| r.seq),
        chunks: chunks.len() as u64,
        t0: chunks.first().map_or(0, |r| r.first),
        t1: chunks.last().map_or(0, |r| r.last),
        link_in: hex::encode(link_in),
        link_out: hex::encode(chunks.last().map_or(link_in, |r| r.link)),
        sha256: hex::encode(crate::chain::sha256(&frame)),
    };
    f.write_all(&frame)?;
    f.write_all(&skippable_frame(SEGMENT_INDEX_MAGIC, &entry.to_payload()))?;
    Ok(entry)
}

fn from_hex(s: &str) -> Result<Hash, RecoverError> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h)
        .map_err(|_| RecoverError::Unreadable(format!("bad link {s:?} in a segment index")))?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventData, TermSize};
    use crate::writer::{ChainWriter, WriterOptions};
    use std::fs::File;

    /// A recording killed mid-way: segments closed and one open, the last
    /// chunk unfinished (what a SIGKILL leaves: the writer never dropped).
    fn killed(path: &Path, events: usize) -> Vec<Event> {
        killed_signed(path, events, None)
    }

    fn killed_signed(path: &Path, events: usize, key: Option<SecretKey>) -> Vec<Event> {
        let file = File::create(path).unwrap();
        let opts = WriterOptions::default()
            .chunk_bytes(4 << 10)
            .segment_bytes(64 << 10)
            .sync(false);
        let mut w = ChainWriter::new(file, Header::new(TermSize::DEFAULT), opts, key).unwrap();
        let mut evs = Vec::new();
        for i in 0..events {
            let e = Event::new(
                i as u64 * 1000,
                EventData::Output(format!("line {i} of output\r\n").into_bytes()),
            );
            w.push(&e).unwrap();
            evs.push(e);
        }
        w.commit().unwrap();
        std::mem::forget(w); // no Drop: the open chunk is lost, as in a kill
        evs
    }

    #[test]
    fn a_killed_recording_is_sealed_with_its_chain_intact() {
        for n in [0, 1, 300, 5000] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("r.cast.zst");
            let evs = killed(&path, n);
            let before = read_path(&path, &ReadOptions::default(), &mut ()).unwrap();
            assert_eq!(before.status, Status::Unsealed, "{n}");
            let r = seal_interrupted(&path, "recovered", None).unwrap().unwrap();
            struct Count(u64);
            impl ReadSink for Count {
                fn event(&mut self, _: &Event) -> Flow {
                    self.0 += 1;
                    Flow::Continue
                }
            }
            let mut c = Count(0);
            let after = read_path(&path, &ReadOptions::default(), &mut c).unwrap();
            assert_eq!(after.status, Status::Intact, "{n}: {:?}", after.problems);
            assert!(after.sealed);
            assert_eq!(
                after.chunks, before.chunks,
                "{n}: every verified chunk kept"
            );
            assert_eq!(after.last_verified, before.last_verified);
            assert!(matches!(after.end, Some(EndReason::Interrupted { .. })));
            assert_eq!(r.chunks, after.chunks);
            assert!(
                c.0 <= evs.len() as u64 && (n < 100 || c.0 > 0),
                "{n}: {} events",
                c.0
            );
            // Sealed already: nothing more to do.
            assert!(seal_interrupted(&path, "again", None).unwrap().is_none());
            // The index works for seeking.
            let idx = load_index(&mut File::open(&path).unwrap()).unwrap();
            assert!(idx.sealed);
        }
    }

    #[test]
    fn the_recorders_key_signs_the_seal_and_no_other_does() {
        use crate::reader::Signature;
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("k.key");
        SecretKey::generate().unwrap().save(&key_path).unwrap();
        let key = SecretKey::load(&key_path).unwrap();
        let other = SecretKey::generate().unwrap();
        let path = dir.path().join("r.cast.zst");
        for (given, signed) in [(Some(&other), false), (Some(&key), true), (None, false)] {
            killed_signed(&path, 500, Some(SecretKey::load(&key_path).unwrap()));
            let r = seal_interrupted(&path, "recovered", given)
                .unwrap()
                .unwrap();
            assert_eq!(r.signed, signed);
            let report = read_path(&path, &ReadOptions::default(), &mut ()).unwrap();
            let valid = Signature::Valid {
                key_id: key.public().id(),
            };
            assert_eq!(report.signature == valid, signed, "{:?}", report.signature);
            // The chain is intact either way; an unsigned seal is reported
            // as a missing signature, not as damage to the content.
            assert!(
                report
                    .problems
                    .iter()
                    .all(|p| p.message.contains("signature"))
            );
        }
    }

    /// A recorder stopped while it wrote the seal (killed, or the disk
    /// full) leaves part of it: that part goes, the recording is sealed
    /// with every chunk (found by the fault tests: a new seal used to be
    /// appended after the partial one, and verify called it tampered).
    #[test]
    fn a_seal_cut_anywhere_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.cast.zst");
        let file = File::create(&whole).unwrap();
        let opts = WriterOptions::default().chunk_bytes(4 << 10).sync(false);
        let mut w = ChainWriter::new(file, Header::new(TermSize::DEFAULT), opts, None).unwrap();
        for i in 0..200u64 {
            let data = EventData::Output(format!("line {i}\r\n").into_bytes());
            w.push(&Event::new(i * 1000, data)).unwrap();
        }
        w.seal(EndReason::Exited { code: 0 }).unwrap();
        let bytes = std::fs::read(&whole).unwrap();
        let n = bytes.len();
        let total = u32::from_le_bytes(bytes[n - 12..n - 8].try_into().unwrap()) as usize;
        let sealed = read_path(&whole, &ReadOptions::default(), &mut ()).unwrap();
        let path = dir.path().join("cut.cast.zst");
        for cut in (n - total + 1..n).step_by(7).chain([n - total + 1, n - 1]) {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let before = read_path(&path, &ReadOptions::default(), &mut ()).unwrap();
            assert_eq!(before.status, Status::Unsealed, "cut at {cut}");
            seal_interrupted(&path, "x", None).unwrap().unwrap();
            let after = read_path(&path, &ReadOptions::default(), &mut ()).unwrap();
            assert_eq!(
                after.status,
                Status::Intact,
                "cut at {cut}: {:?}",
                after.problems
            );
            assert_eq!(after.chunks, sealed.chunks, "cut at {cut}");
            assert!(matches!(after.end, Some(EndReason::Interrupted { .. })));
        }
    }

    /// Fuzzing found a file that ends 1–3 bytes into a frame's magic after
    /// its last index frame (the disk filled as the next segment began)
    /// recovered into one that verified tampered: those bytes go too.
    #[test]
    fn a_cut_next_magic_after_the_last_index_frame_goes() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.cast.zst");
        killed(&whole, 3000);
        let bytes = std::fs::read(&whole).unwrap();
        let before = read_path(&whole, &ReadOptions::default(), &mut ()).unwrap();
        let path = dir.path().join("cut.cast.zst");
        for n in 1..=3 {
            // Only whole segments and their index frames, then the magic.
            let index = load_index(&mut File::open(&whole).unwrap()).unwrap();
            let keep = index
                .segments
                .iter()
                .find(|s| s.entry.is_none())
                .map(|s| s.offset)
                .expect("killed() leaves an unfinished segment");
            let mut cut = bytes[..keep as usize].to_vec();
            cut.extend(&[0x28, 0xb5, 0x2f][..n]);
            std::fs::write(&path, &cut).unwrap();
            seal_interrupted(&path, "x", None).unwrap().unwrap();
            let after = read_path(&path, &ReadOptions::default(), &mut ()).unwrap();
            assert_eq!(
                after.status,
                Status::Intact,
                "{n} bytes: {:?}",
                after.problems
            );
            assert!(after.chunks <= before.chunks);
        }
    }

    /// A recovery killed while it overwrote the unfinished end (the file
    /// then neither the old nor the new) is finished by the next one from
    /// its note, with every chunk; a torn note (killed while writing it,
    /// before the file was touched) is dropped and the recovery starts over.
    #[test]
    fn a_recovery_stopped_half_way_is_finished_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.cast.zst");
        killed(&path, 3000);
        let before = read_path(&path, &ReadOptions::default(), &mut ()).unwrap();
        let first = plan(&path, "x", None).unwrap().unwrap();
        intent::write(&path, &first).unwrap();
        {
            let mut f = OpenOptions::new().write(true).open(&path).unwrap();
            f.seek(SeekFrom::Start(first.keep)).unwrap();
            f.write_all(&first.tail[..first.tail.len() / 2]).unwrap();
        }
        let broken = read_path(&path, &ReadOptions::default(), &mut ()).unwrap();
        assert_ne!(broken.status, Status::Intact);
        let done = seal_interrupted(&path, "x", None).unwrap().unwrap();
        let after = read_path(&path, &ReadOptions::default(), &mut ()).unwrap();
        assert_eq!(after.status, Status::Intact, "{:?}", after.problems);
        assert_eq!(after.chunks, before.chunks);
        assert_eq!(done.chunks, after.chunks);
        assert!(!intent::note_path(&path).exists());

        killed(&path, 3000);
        let second = plan(&path, "x", None).unwrap().unwrap();
        intent::write(&path, &second).unwrap();
        let note = intent::note_path(&path);
        let torn = std::fs::read(&note).unwrap();
        std::fs::write(&note, &torn[..torn.len() - 5]).unwrap();
        seal_interrupted(&path, "x", None).unwrap().unwrap();
        let after = read_path(&path, &ReadOptions::default(), &mut ()).unwrap();
        assert_eq!(after.status, Status::Intact, "{:?}", after.problems);
        assert!(!note.exists());
    }

    #[test]
    fn a_damaged_recording_is_not_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.cast.zst");
        killed(&path, 3000);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 3;
        bytes[mid] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            seal_interrupted(&path, "x", None),
            Err(RecoverError::Tampered(_))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "left as it was");
    }
}
