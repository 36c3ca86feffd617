//! The journal's persistence on the recorder's side (its format is in
//! [`termtrail_format::journal`]): its id and the journal's head, kept in
//! the state directory per store, and appending an entry when a recording is
//! sealed (only once the entry is stored does the head move: an entry
//! that could not be stored leaves no gap). Processes on one host recording into the same store share one
//! recorder id and journal: appends are serialised by a file lock.
//!
//! State: `$XDG_STATE_HOME/termtrail/journal/<store hash>/` (else
//! `~/.local/state/…`): `recorder` (the id), `head.json` (the next sequence
//! number and the last entry's hash), `lock`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use termtrail_format::chain::Hash;
use termtrail_format::journal::{Entry, ZERO};

use crate::StoreError;

/// A recorder's journal state for one store.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    recorder: String,
}

impl Journal {
    /// The journal of this host for the store named `store` (a directory
    /// path or an `s3://` URL).
    pub fn open(store: &str) -> io::Result<Journal> {
        let base = std::env::var_os("TERMTRAIL_STATE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_STATE_HOME")
                    .filter(|v| !v.is_empty())
                    .map(|s| PathBuf::from(s).join("termtrail"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/termtrail"))
            })
            .ok_or_else(|| io::Error::other("no state directory: set HOME or XDG_STATE_HOME"))?;
        let digest = hex::encode(Sha256::digest(store.as_bytes()));
        let dir = base.join("journal").join(&digest[..16]);
        std::fs::create_dir_all(&dir)?;
        let id_path = dir.join("recorder");
        let recorder = match std::fs::read_to_string(&id_path) {
            Ok(s) if s.trim().len() == 32 => s.trim().to_string(),
            _ => {
                let id = termtrail_format::writer::new_recording_id().map_err(io::Error::other)?;
                let id = hex::encode(id);
                match OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&id_path)
                {
                    Ok(mut f) => {
                        f.write_all(id.as_bytes())?;
                        f.sync_all()?;
                        id
                    }
                    // Another process made it first.
                    Err(_) => std::fs::read_to_string(&id_path)?.trim().to_string(),
                }
            }
        };
        Ok(Journal { dir, recorder })
    }

    /// The recorder's id.
    pub fn recorder(&self) -> &str {
        &self.recorder
    }

    fn lock(&self) -> io::Result<File> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("lock"))?;
        f.lock()?;
        Ok(f)
    }

    fn read_head(&self) -> (u64, String) {
        let mut s = String::new();
        let parsed = File::open(self.dir.join("head.json"))
            .and_then(|mut f| f.read_to_string(&mut s))
            .ok()
            .and_then(|_| serde_json::from_str::<Value>(&s).ok());
        match parsed {
            Some(v) => (
                v["next"].as_u64().unwrap_or(0),
                v["last"].as_str().unwrap_or(ZERO).to_string(),
            ),
            None => (0, ZERO.to_string()),
        }
    }

    /// The head as a new recording's header binds it (`termtrail.after`):
    /// the recorder, the last entry's sequence number (null before the
    /// first) and hash.
    pub fn after(&self) -> Value {
        let (next, last) = self.read_head();
        json!({
            "recorder": self.recorder,
            "seq": next.checked_sub(1),
            "entry": last,
        })
    }

    /// Appends the entry for a sealed recording and returns it. `store`
    /// writes it (create-only, at
    /// [`termtrail_format::journal::entry_key`]); only once it is stored
    /// does the head move on, so an entry that could not be stored (a full
    /// disk, S3 away) leaves no gap: the next seal takes its number. An
    /// entry found already at that key that continues the journal (one a
    /// recorder stopped before it noted it in the head) is taken as the
    /// head, and the new one goes after it.
    pub fn append(
        &self,
        recording: &str,
        key: &str,
        seal: &Hash,
        end: &str,
        mut store: impl FnMut(&Entry) -> Result<Stored, StoreError>,
    ) -> Result<Entry, AppendError> {
        let _lock = self.lock()?;
        let (mut next, mut last) = self.read_head();
        loop {
            let entry = Entry {
                recorder: self.recorder.clone(),
                seq: next,
                prev: last.clone(),
                recording: recording.to_string(),
                key: key.to_string(),
                seal: hex::encode(seal),
                end: end.to_string(),
                sealed_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            };
            match store(&entry).map_err(AppendError::Store)? {
                Stored::Written => {
                    self.write_head(next + 1, &hex::encode(entry.hash()))?;
                    return Ok(entry);
                }
                Stored::Taken(bytes) => {
                    let continues = Entry::parse(&bytes).is_ok_and(|e| {
                        e.recorder == self.recorder && e.seq == next && e.prev == last
                    });
                    if !continues {
                        return Err(AppendError::Conflict { seq: next });
                    }
                    next += 1;
                    last = hex::encode(termtrail_format::chain::sha256(&bytes));
                    self.write_head(next, &last)?;
                }
            }
        }
    }

    /// Replaces the head (durably, by rename).
    fn write_head(&self, next: u64, last: &str) -> io::Result<()> {
        let head = json!({"next": next, "last": last});
        let tmp = self.dir.join("head.json.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(head.to_string().as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join("head.json"))
    }
}

/// What storing a journal entry found.
#[derive(Debug)]
pub enum Stored {
    /// It was written.
    Written,
    /// An entry is at its key already: these are its bytes.
    Taken(Vec<u8>),
}

/// Why an entry could not be appended.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The journal's state (its directory, head or lock) failed.
    #[error("journal state: {0}")]
    State(#[from] io::Error),
    /// Storing the entry failed; the head did not move (no gap).
    #[error("storing the journal entry: {0}")]
    Store(StoreError),
    /// The entry's key holds an entry that does not continue this journal.
    #[error(
        "journal entry {seq} is already in the store and does not continue this recorder's journal (its state directory was reset or copied?)"
    )]
    Conflict {
        /// The sequence number.
        seq: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &std::path::Path) -> Journal {
        // Each test has its own state directory.
        let store = dir.join("store").display().to_string();
        let digest = hex::encode(Sha256::digest(store.as_bytes()));
        let jdir = dir.join("state").join(&digest[..16]);
        std::fs::create_dir_all(&jdir).unwrap();
        std::fs::write(jdir.join("recorder"), "0123456789abcdef0123456789abcdef").unwrap();
        Journal {
            dir: jdir,
            recorder: "0123456789abcdef0123456789abcdef".into(),
        }
    }

    /// A store that could not take an entry (a full disk) leaves no gap:
    /// the head moves only once an entry is stored.
    #[test]
    fn an_entry_not_stored_leaves_no_gap() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        let full = |_: &Entry| Err(StoreError::io("No space left on device"));
        assert!(matches!(
            j.append("r0", "k0", &[0; 32], "closed", full),
            Err(AppendError::Store(_))
        ));
        let mut stored = Vec::new();
        let e = j
            .append("r1", "k1", &[1; 32], "closed", |e| {
                stored.push(e.to_bytes());
                Ok(Stored::Written)
            })
            .unwrap();
        assert_eq!((e.seq, e.prev.as_str()), (0, ZERO));
        assert_eq!(j.after()["seq"], 0);
    }

    /// An entry stored by a recorder stopped before it moved the head is
    /// taken as the head; the new entry follows it.
    #[test]
    fn an_entry_stored_but_not_noted_is_taken_as_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        let mut left = None;
        // What the stopped recorder stored (the head stays at 0).
        let first = Entry {
            recorder: j.recorder.clone(),
            seq: 0,
            prev: ZERO.into(),
            recording: "r0".into(),
            key: "k0".into(),
            seal: hex::encode([0u8; 32]),
            end: "closed".into(),
            sealed_at: 1,
        };
        let e = j
            .append("r1", "k1", &[1; 32], "closed", |e| {
                if e.seq == 0 {
                    return Ok(Stored::Taken(first.to_bytes()));
                }
                left = Some(e.clone());
                Ok(Stored::Written)
            })
            .unwrap();
        assert_eq!(e.seq, 1);
        assert_eq!(e.prev, hex::encode(first.hash()));
        assert_eq!(left.unwrap(), e);
        assert_eq!(j.after()["seq"], 1);
        // Something else at the next key: refused, the head stays.
        let other = Entry {
            seq: 2,
            prev: ZERO.into(),
            ..first
        };
        let r = j.append("r2", "k2", &[2; 32], "closed", |_| {
            Ok(Stored::Taken(other.to_bytes()))
        });
        assert!(matches!(r, Err(AppendError::Conflict { seq: 2 })), "{r:?}");
        assert_eq!(j.after()["seq"], 1);
    }
}
