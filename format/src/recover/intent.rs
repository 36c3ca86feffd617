//! The write-ahead note of a recovery: the new end of the recording and
//! where it goes, written whole and synced (hidden, beside the recording:
//! `.<name>.recovering`) before the recording is touched, and removed once
//! the new end is in place. A recovery stopped half-way (killed while it
//! overwrote the unfinished end) is finished from the note by the next
//! one, so the unfinished segment's chunks are never lost.
//!
//! Layout: `TTRECOVER1\n` ‖ keep ‖ chunks ‖ duration ‖ dropped (u64 LE
//! each) ‖ signed (u8) ‖ guard (32 bytes: SHA-256 of up to 64 KiB of the
//! file before `keep`, so a note is applied only to the file it was made
//! for) ‖ tail length (u64 LE) ‖ tail ‖ SHA-256 of everything before.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::Recovered;
use crate::chain::{Hash, sha256};

const MAGIC: &[u8] = b"TTRECOVER1\n";
/// Bytes before `keep` the guard hashes, at most.
const GUARD: u64 = 64 << 10;

/// What a recovery is about to write.
pub(super) struct Intent {
    /// Where the new end starts.
    pub keep: u64,
    /// The file's bytes before `keep` (the last 64 KiB), hashed.
    pub guard: Hash,
    /// The new end: segment, index frame, seal.
    pub tail: Vec<u8>,
    /// What the recovery reports once done.
    pub done: Recovered,
}

/// The note beside `path`.
pub(super) fn note_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.recovering"))
}

/// The guard of `f` at `keep`.
pub(super) fn guard(f: &mut File, keep: u64) -> io::Result<Hash> {
    let from = keep.saturating_sub(GUARD);
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.take(keep - from).read_to_end(&mut bytes)?;
    Ok(sha256(&bytes))
}

fn encode(i: &Intent) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for n in [i.keep, i.done.chunks, i.done.duration, i.done.dropped] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.push(u8::from(i.done.signed));
    out.extend_from_slice(&i.guard);
    out.extend_from_slice(&(i.tail.len() as u64).to_le_bytes());
    out.extend_from_slice(&i.tail);
    let sum = sha256(&out);
    out.extend_from_slice(&sum);
    out
}

fn decode(bytes: &[u8]) -> Option<Intent> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if sha256(body)[..] != sum[..] {
        return None;
    }
    let mut rest = body.strip_prefix(MAGIC)?;
    let mut u64_ = || {
        let (n, r) = rest.split_first_chunk::<8>()?;
        rest = r;
        Some(u64::from_le_bytes(*n))
    };
    let (keep, chunks, duration, dropped) = (u64_()?, u64_()?, u64_()?, u64_()?);
    let (&signed, r) = rest.split_first()?;
    let (guard, r) = r.split_first_chunk::<32>()?;
    let (len, tail) = r.split_first_chunk::<8>()?;
    if tail.len() as u64 != u64::from_le_bytes(*len) {
        return None;
    }
    Some(Intent {
        keep,
        guard: *guard,
        tail: tail.to_vec(),
        done: Recovered {
            chunks,
            duration,
            dropped,
            signed: signed == 1,
        },
    })
}

/// Writes the note for `path`, whole (a temporary file renamed) and
/// synced. On failure (a full disk) nothing is left.
pub(super) fn write(path: &Path, intent: &Intent) -> io::Result<()> {
    let note = note_path(path);
    let tmp = note.with_extension("recovering.tmp");
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&encode(intent))?;
        f.sync_all()?;
        std::fs::rename(&tmp, &note)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The note left for `path` by a recovery that stopped, if there is a
/// whole one (a torn note — stopped while it was written, before the
/// recording was touched — is removed).
pub(super) fn read(path: &Path) -> Option<Intent> {
    let note = note_path(path);
    let bytes = std::fs::read(&note).ok()?;
    let intent = decode(&bytes);
    if intent.is_none() {
        let _ = std::fs::remove_file(&note);
    }
    intent
}

/// Removes the note for `path` (the new end is in place).
pub(super) fn remove(path: &Path) {
    let _ = std::fs::remove_file(note_path(path));
}
