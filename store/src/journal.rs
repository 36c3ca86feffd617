//! The journal's persistence on the recorder's side (its format is in
//! [`termtrail_format::journal`]): its id and the journal's head, kept in
//! the state directory per store, and appending an entry when a recording is
//! sealed. Processes on one host recording into the same store share one
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

    /// Appends the entry for a sealed recording and returns it (to be
    /// stored at [`termtrail_format::journal::entry_key`]).
    pub fn append(&self, recording: &str, key: &str, seal: &Hash, end: &str) -> io::Result<Entry> {
        let _lock = self.lock()?;
        let (next, last) = self.read_head();
        let entry = Entry {
            recorder: self.recorder.clone(),
            seq: next,
            prev: last,
            recording: recording.to_string(),
            key: key.to_string(),
            seal: hex::encode(seal),
            end: end.to_string(),
            sealed_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        let head = json!({"next": next + 1, "last": hex::encode(entry.hash())});
        let tmp = self.dir.join("head.json.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(head.to_string().as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join("head.json"))?;
        Ok(entry)
    }
}
