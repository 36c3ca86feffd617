//! Where a recorder puts recordings: straight into a local directory store,
//! or into a local spool that an [`Uploader`] streams into S3; and the
//! journal entry of each seal beside them.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use termtrail_format::cast::RecordingMeta;
use termtrail_format::journal::{AFTER_FIELD, entry_key};
use termtrail_format::sign::SecretKey;
use termtrail_format::store::s3::{
    Protection, S3Store, UploadStatus, Uploader, UploaderOptions, lock_path,
};
use termtrail_format::store::{KeyParts, LocalStore, Location};
use termtrail_format::writer::SealSummary;

use crate::journal::Journal;

/// Default bound on how far the bucket lags a live recording.
pub const DEFAULT_UPLOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Where recordings go.
pub enum Target {
    /// A local directory store.
    Local(LocalStore),
    /// An S3 bucket, through a local spool.
    S3 {
        /// The client.
        store: Arc<S3Store>,
        /// The upload thread.
        uploader: Uploader,
    },
}

/// A recorder's destination: the store, and this recorder's journal of
/// seals in it (see [`crate::journal`]).
pub struct Destination {
    /// The store.
    pub target: Target,
    journal: Option<Journal>,
}

/// A recording being made: where to write it, and what keeps it ours.
pub struct NewRecording {
    /// The file to write (in the store, or a spool file).
    pub path: PathBuf,
    /// Its S3 key (full), when it goes to S3.
    pub key: Option<String>,
    /// Its key relative to the store (what the journal records).
    pub rel: String,
    /// The journal's head when it started: the header binds it as
    /// `termtrail.after` (None without a journal).
    pub after: Option<serde_json::Value>,
}

impl NewRecording {
    /// Binds the journal's head into a header's `termtrail` block.
    pub fn bind_after(&self, meta: &mut RecordingMeta) {
        if let Some(a) = &self.after {
            meta.extra.insert(AFTER_FIELD.into(), a.clone());
        }
    }
}

/// The spool directory for a bucket and prefix: `$TERMTRAIL_SPOOL_DIR`, else
/// `$XDG_STATE_HOME/termtrail/spool`, else `~/.local/state/termtrail/spool`,
/// then `<bucket>/<prefix>`.
pub fn spool_dir(bucket: &str, prefix: &str) -> Option<PathBuf> {
    let base = std::env::var_os("TERMTRAIL_SPOOL_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_STATE_HOME")
                .filter(|v| !v.is_empty())
                .map(|s| PathBuf::from(s).join("termtrail").join("spool"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/termtrail/spool"))
        })?;
    Some(base.join(bucket).join(prefix.trim_end_matches('/')))
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Destination({})", self.describe_store())
    }
}

impl Destination {
    /// Opens a destination. For S3 the bucket is checked first: a missing
    /// bucket, refused credentials or no credentials at all are errors; an
    /// unreachable S3 is only a warning (recordings are spooled and
    /// uploaded when it is back) unless `strict`. `sign_key` signs the seals
    /// of spools left unsealed (by a killed recorder) that name it.
    pub fn open(
        location: &Location,
        interval: Duration,
        strict: bool,
        protection: Protection,
        sign_key: Option<SecretKey>,
    ) -> Result<Destination, String> {
        match location {
            Location::Local(_) if protection.retain.is_some() || protection.sse.is_some() => Err(
                "--retain-days, --lock-mode and --sse need an S3 store (--store s3://BUCKET/PREFIX)"
                    .into(),
            ),
            Location::Local(dir) => Ok(Destination {
                target: Target::Local(LocalStore::new(dir)),
                journal: Journal::open(&dir.display().to_string()).ok(),
            }),
            Location::S3 { bucket, prefix } => {
                let store = S3Store::connect(bucket, prefix)
                    .map_err(|e| e.to_string())?
                    .with_protection(protection);
                if let Err(e) = store.check() {
                    if strict || !e.is_transient() {
                        return Err(e.to_string());
                    }
                    tracing::warn!("{e}; recording to the local spool, uploading when S3 is back");
                    eprintln!(
                        "termtrail: warning: {e}; recording to the local spool, uploading when S3 is back"
                    );
                }
                let spool = spool_dir(bucket, prefix)
                    .ok_or("no spool directory: set HOME, XDG_STATE_HOME or TERMTRAIL_SPOOL_DIR")?;
                std::fs::create_dir_all(&spool).map_err(|e| {
                    format!("cannot create the spool directory {}: {e}", spool.display())
                })?;
                let store = Arc::new(store);
                let uploader = Uploader::start(
                    store.clone(),
                    UploaderOptions {
                        spool,
                        interval,
                        sign_key: sign_key.map(Arc::new),
                    },
                );
                Ok(Destination {
                    target: Target::S3 { store, uploader },
                    journal: Journal::open(&format!("s3://{bucket}/{prefix}")).ok(),
                })
            }
        }
    }

    /// A new recording's file (directories created, lock taken).
    pub fn create(&self, parts: &KeyParts<'_>) -> std::io::Result<NewRecording> {
        let rel = LocalStore::key(parts);
        let after = self.journal.as_ref().map(Journal::after);
        match &self.target {
            Target::Local(store) => Ok(NewRecording {
                path: store.create_path(parts)?,
                key: None,
                rel,
                after,
            }),
            Target::S3 { store, uploader } => {
                let path = uploader.spool_path(&rel);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let lock = File::create(lock_path(&path))?;
                lock.lock()?;
                let key = store.key(&rel);
                // Metadata comes from the header once it is written. The
                // uploader keeps the lock until S3 has the whole object.
                uploader.watch(&path, &key, HashMap::new(), Some(lock));
                Ok(NewRecording {
                    path,
                    key: Some(key),
                    rel,
                    after,
                })
            }
        }
    }

    /// The callback a shell's [`crate::recording::Recording`] runs when it
    /// ends: [`Destination::finished`] for the recording `rec`.
    pub fn on_done(self: &Arc<Self>, rec: NewRecording) -> crate::recording::OnDone {
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
        if let Target::S3 { uploader, .. } = &self.target {
            uploader.finished(&rec.path);
        }
    }

    fn journal_seal(
        &self,
        journal: &Journal,
        rec: &NewRecording,
        seal: &SealSummary,
    ) -> std::io::Result<()> {
        let entry = journal.append(&seal.id, &rec.rel, &seal.seal_hash, &seal.end.to_string())?;
        let rel = entry_key(journal.recorder(), entry.seq);
        let path = match &self.target {
            Target::Local(store) => store.root().join(&rel),
            Target::S3 { uploader, .. } => uploader.spool_path(&rel),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::io::Write::write_all(&mut f, &entry.to_bytes())?;
        f.sync_all()?;
        if let Target::S3 { store, uploader } = &self.target {
            uploader.watch(&path, &store.key(&rel), HashMap::new(), None);
            uploader.finished(&path);
        }
        Ok(())
    }

    /// Whether recordings go to S3.
    pub fn is_s3(&self) -> bool {
        matches!(self.target, Target::S3 { .. })
    }

    /// Waits (up to `deadline`) for uploads; what is still pending stays in
    /// the spool. Local stores have nothing to wait for.
    pub fn flush(&self, deadline: Duration) -> UploadStatus {
        match &self.target {
            Target::Local(_) => UploadStatus::default(),
            Target::S3 { uploader, .. } => uploader.flush(deadline),
        }
    }

    /// Where recordings go, for messages.
    pub fn describe_store(&self) -> String {
        match &self.target {
            Target::Local(store) => store.root().display().to_string(),
            Target::S3 { store, .. } => store.url(store.prefix()),
        }
    }

    /// Where a recording ends up, for messages.
    pub fn describe(&self, rec: &NewRecording) -> String {
        match (&self.target, &rec.key) {
            (Target::S3 { store, .. }, Some(key)) => store.url(key),
            _ => rec.path.display().to_string(),
        }
    }
}
