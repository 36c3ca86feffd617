//! Where a recorder puts recordings: straight into a local directory store,
//! or into a local spool that an [`Uploader`] streams into S3.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use termtrail_format::store::s3::{
    Protection, S3Store, UploadStatus, Uploader, UploaderOptions, lock_path,
};
use termtrail_format::store::{KeyParts, LocalStore, Location};

/// Default bound on how far the bucket lags a live recording.
pub const DEFAULT_UPLOAD_INTERVAL: Duration = Duration::from_secs(10);

/// A recorder's destination.
pub enum Destination {
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

/// A recording being made: where to write it, and what keeps it ours.
pub struct NewRecording {
    /// The file to write (in the store, or a spool file).
    pub path: PathBuf,
    /// Its S3 key (full), when it goes to S3.
    pub key: Option<String>,
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
    /// uploaded when it is back) unless `strict`.
    pub fn open(
        location: &Location,
        interval: Duration,
        strict: bool,
        protection: Protection,
    ) -> Result<Destination, String> {
        match location {
            Location::Local(_) if protection.retain.is_some() || protection.sse.is_some() => Err(
                "--retain-days, --lock-mode and --sse need an S3 store (--store s3://BUCKET/PREFIX)"
                    .into(),
            ),
            Location::Local(dir) => Ok(Destination::Local(LocalStore::new(dir))),
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
                let uploader = Uploader::start(store.clone(), UploaderOptions { spool, interval });
                Ok(Destination::S3 { store, uploader })
            }
        }
    }

    /// A new recording's file (directories created, lock taken).
    pub fn create(&self, parts: &KeyParts<'_>) -> std::io::Result<NewRecording> {
        match self {
            Destination::Local(store) => Ok(NewRecording {
                path: store.create_path(parts)?,
                key: None,
            }),
            Destination::S3 { store, uploader } => {
                let rel = LocalStore::key(parts);
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
                })
            }
        }
    }

    /// The recording is sealed (or failed): upload what is left (S3).
    pub fn finished(&self, rec: &NewRecording) {
        if let Destination::S3 { uploader, .. } = self {
            uploader.finished(&rec.path);
        }
    }

    /// Waits (up to `deadline`) for uploads; what is still pending stays in
    /// the spool. Local stores have nothing to wait for.
    pub fn flush(&self, deadline: Duration) -> UploadStatus {
        match self {
            Destination::Local(_) => UploadStatus::default(),
            Destination::S3 { uploader, .. } => uploader.flush(deadline),
        }
    }

    /// Where recordings go, for messages.
    pub fn describe_store(&self) -> String {
        match self {
            Destination::Local(store) => store.root().display().to_string(),
            Destination::S3 { store, .. } => store.url(store.prefix()),
        }
    }

    /// Where a recording ends up, for messages.
    pub fn describe(&self, rec: &NewRecording) -> String {
        match (self, &rec.key) {
            (Destination::S3 { store, .. }, Some(key)) => store.url(key),
            _ => rec.path.display().to_string(),
        }
    }
}
