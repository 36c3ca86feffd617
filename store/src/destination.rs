//! A recorder's destination: the store recordings go to, and this
//! recorder's journal of seals in it (see [`crate::journal`]) — each
//! recording's journal entry is written beside it when it is sealed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use termtrail_format::journal::entry_key;
use termtrail_format::writer::SealSummary;

use crate::journal::{AppendError, Journal, Stored};
use crate::layout::{KeyParts, key};
use crate::{ErrorKind, Location, RecordingOptions, Store, StoreError, UploadStatus};

/// Default bound on how far the bucket lags a live recording.
pub const DEFAULT_UPLOAD_INTERVAL: Duration = Duration::from_secs(10);

/// A recorder's destination: the store, and this recorder's journal of
/// seals in it.
pub struct Destination {
    store: Arc<dyn Store>,
    journal: Option<Journal>,
    /// Keys handed out in the last seconds, with their start second: the
    /// same (session, shell) started twice within one second gets
    /// `<stem>-N.cast.zst`, decided here so that the file, the upload and
    /// the journal entry all name the same key.
    recent: Mutex<Vec<(u64, String)>>,
}

/// A recording being made: where to write it, and what keeps it ours.
pub struct NewRecording {
    /// The file to write (in the store, or a spool file).
    pub path: std::path::PathBuf,
    /// Its key relative to the store (what the journal records).
    pub rel: String,
    /// The journal's head when it started: the header binds it as
    /// `termtrail.after` (None without a journal).
    pub after: Option<serde_json::Value>,
}

/// What a recording runs when it ends: given its seal, or None when it
/// failed.
pub type OnDone = Box<dyn FnOnce(Option<SealSummary>) + Send>;

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Destination({})", self.describe_store())
    }
}

impl Destination {
    /// Opens `location` for recording (see
    /// [`Location::open_for_recording`]) with this host's journal of it.
    pub fn open(location: &Location, opts: &RecordingOptions) -> Result<Destination, StoreError> {
        let store = location.open_for_recording(opts)?;
        let journal = Journal::open(&store.describe()).ok();
        Ok(Destination {
            store,
            journal,
            recent: Mutex::new(Vec::new()),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A new recording's file (directories created, spool locked).
    pub fn create(&self, parts: &KeyParts<'_>) -> Result<NewRecording, StoreError> {
        let rel = self.unique_key(parts);
        let after = self.journal.as_ref().map(Journal::after);
        let path = self.store.create(&rel)?;
        Ok(NewRecording { path, rel, after })
    }

    /// The key for `parts`, `<stem>-N.cast.zst` when this destination
    /// already handed it out (keys name the start second).
    fn unique_key(&self, parts: &KeyParts<'_>) -> String {
        let base = key(parts);
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        // Only keys of this second or the one before can still collide.
        recent.retain(|(start, _)| start.saturating_add(1) >= parts.start);
        let taken = |k: &str| recent.iter().any(|(_, r)| r == k);
        let mut rel = base.clone();
        let mut n = 0u32;
        while taken(&rel) {
            n += 1;
            let stem = base.strip_suffix(".cast.zst").unwrap_or(&base);
            rel = format!("{stem}-{n}.cast.zst");
        }
        recent.push((parts.start, rel.clone()));
        rel
    }

    /// The callback a recording runs when it ends:
    /// [`Destination::finished`] for the recording `rec`.
    pub fn on_done(self: &Arc<Self>, rec: NewRecording) -> OnDone {
        let dest = Arc::clone(self);
        Box::new(move |sealed| dest.finished(&rec, sealed.as_ref()))
    }

    /// The recording is sealed (with `seal`), or failed (None): journal
    /// the seal, and upload what is left (S3).
    pub fn finished(&self, rec: &NewRecording, seal: Option<&SealSummary>) {
        if let (Some(journal), Some(seal)) = (&self.journal, seal)
            && let Err(e) = self.journal_seal(journal, rec, seal)
        {
            tracing::error!(recording = %rec.rel, "cannot journal the seal: {e}");
            eprintln!(
                "termtrail: warning: cannot journal the seal of {}: {e}",
                rec.rel
            );
        }
        match seal {
            Some(_) => self.store.finished(&rec.path),
            None => self.store.abandoned(&rec.path),
        }
    }

    fn journal_seal(
        &self,
        journal: &Journal,
        rec: &NewRecording,
        seal: &SealSummary,
    ) -> Result<(), StoreError> {
        let end = seal.end.to_string();
        journal
            .append(&seal.id, &rec.rel, &seal.seal_hash, &end, |entry| {
                let rel = entry_key(journal.recorder(), entry.seq);
                match self.store.put_new(&rel, &entry.to_bytes()) {
                    Ok(()) => Ok(Stored::Written),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        let mut bytes = Vec::new();
                        self.store.read(&rel, &mut bytes)?;
                        Ok(Stored::Taken(bytes))
                    }
                    Err(e) => Err(e),
                }
            })
            .map(|_| ())
            .map_err(|e| match e {
                AppendError::Store(e) => e,
                e => StoreError::io(e.to_string()),
            })
    }

    /// Whether recordings are uploaded after they are written (so that
    /// waiting for uploads means something).
    pub fn uploads(&self) -> bool {
        self.store.spooled()
    }

    /// Waits (up to `deadline`) for uploads; what is still pending stays in
    /// the spool. Local stores have nothing to wait for.
    pub fn flush(&self, deadline: Duration) -> UploadStatus {
        self.store.flush(deadline)
    }

    /// Where recordings go, for messages.
    pub fn describe_store(&self) -> String {
        self.store.describe()
    }

    /// Where a recording ends up, for messages.
    pub fn describe(&self, rec: &NewRecording) -> String {
        self.store.url(&rec.rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pair_started_twice_in_a_second_gets_distinct_keys() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::parse(dir.path().to_str().unwrap()).unwrap();
        let dest = Destination::open(&location, &RecordingOptions::default()).unwrap();
        let parts = |start| KeyParts {
            source: "proxy",
            session: "s1",
            shell: "sh1",
            start,
        };
        let a = dest.create(&parts(1_700_000_000)).unwrap();
        let b = dest.create(&parts(1_700_000_000)).unwrap();
        let c = dest.create(&parts(1_700_000_000)).unwrap();
        assert!(a.rel.ends_with("Z.cast.zst"), "{}", a.rel);
        assert_eq!(b.rel, a.rel.replace(".cast.zst", "-1.cast.zst"));
        assert_eq!(c.rel, a.rel.replace(".cast.zst", "-2.cast.zst"));
        assert_ne!(a.path, b.path);
        assert!(b.path.ends_with(&b.rel), "the file is named by its key");
        // A later second starts over.
        let d = dest.create(&parts(1_700_000_001)).unwrap();
        assert!(d.rel.ends_with("Z.cast.zst"), "{}", d.rel);
    }
}
