//! A recorder's destination: the store recordings go to, and this
//! recorder's journal of seals in it (see [`crate::journal`]) — each
//! recording's journal entry is written beside it when it is sealed.

use std::sync::Arc;
use std::time::Duration;

use termtrail_format::journal::entry_key;
use termtrail_format::writer::SealSummary;

use crate::journal::Journal;
use crate::layout::{KeyParts, key};
use crate::{Location, RecordingOptions, Store, StoreError, UploadStatus};

/// Default bound on how far the bucket lags a live recording.
pub const DEFAULT_UPLOAD_INTERVAL: Duration = Duration::from_secs(10);

/// A recorder's destination: the store, and this recorder's journal of
/// seals in it.
pub struct Destination {
    store: Arc<dyn Store>,
    journal: Option<Journal>,
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
        Ok(Destination { store, journal })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A new recording's file (directories created, spool locked).
    pub fn create(&self, parts: &KeyParts<'_>) -> Result<NewRecording, StoreError> {
        let rel = key(parts);
        let after = self.journal.as_ref().map(Journal::after);
        let path = self.store.create(&rel)?;
        Ok(NewRecording { path, rel, after })
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
        self.store.finished(&rec.path);
    }

    fn journal_seal(
        &self,
        journal: &Journal,
        rec: &NewRecording,
        seal: &SealSummary,
    ) -> Result<(), StoreError> {
        let entry = journal
            .append(&seal.id, &rec.rel, &seal.seal_hash, &seal.end.to_string())
            .map_err(|e| StoreError::io(e.to_string()))?;
        let rel = entry_key(journal.recorder(), entry.seq);
        self.store.put_new(&rel, &entry.to_bytes())
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
