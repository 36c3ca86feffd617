//! An S3 bucket (and key prefix) as a [`Store`]: read through ranged GETs,
//! written through a local spool that the [`upload::Uploader`] streams into
//! the bucket while recordings grow.
//!
//! Configuration is AWS's own chain (see [`client`]). The spool directory
//! is `$TERMTRAIL_SPOOL_DIR`, else `$XDG_STATE_HOME/termtrail/spool`, else
//! `~/.local/state/termtrail/spool`, then `<bucket>/<prefix>`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub mod client;
mod error;
pub mod upload;

pub use client::{LockMode, PART_SIZE, Protection, RangeReader, S3Client, Sse, sdk_config};

use crate::{
    ErrorKind, LocalCopy, Object, ReadSeek, RecordingOptions, Store, StoreError, UploadStatus,
};
use upload::{Uploader, UploaderOptions, lock_path};

/// A bucket and prefix: its client, and when opened for recording, the
/// uploader of its spool.
pub struct S3Store {
    client: S3Client,
    uploader: Option<Uploader>,
}

/// The spool directory for a bucket and prefix (see the module doc).
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

impl S3Store {
    /// A store to read from (nothing is sent yet).
    pub fn reader(client: S3Client) -> S3Store {
        S3Store {
            client,
            uploader: None,
        }
    }

    /// A store to record into: the bucket is checked (see
    /// [`crate::Location::open_for_recording`]) and the uploader started.
    pub fn recorder(client: S3Client, opts: &RecordingOptions) -> Result<S3Store, StoreError> {
        if let Err(e) = client.check() {
            if opts.strict || !e.is_transient() {
                return Err(e);
            }
            tracing::warn!("{e}; recording to the local spool, uploading when S3 is back");
            eprintln!(
                "termtrail: warning: {e}; recording to the local spool, uploading when S3 is back"
            );
        }
        let spool = spool_dir(client.bucket(), client.prefix()).ok_or_else(|| {
            StoreError::io("no spool directory: set HOME, XDG_STATE_HOME or TERMTRAIL_SPOOL_DIR")
        })?;
        std::fs::create_dir_all(&spool).map_err(|e| {
            StoreError::io(format!(
                "cannot create the spool directory {}: {e}",
                spool.display()
            ))
        })?;
        let uploader = Uploader::start(
            client.clone(),
            UploaderOptions {
                spool,
                interval: opts.upload_interval,
                sign_key: opts.sign_key.clone().map(Arc::new),
            },
        );
        Ok(S3Store {
            client,
            uploader: Some(uploader),
        })
    }

    /// The client.
    pub fn client(&self) -> &S3Client {
        &self.client
    }

    fn uploader(&self) -> Result<&Uploader, StoreError> {
        self.uploader.as_ref().ok_or_else(|| {
            StoreError::new(
                ErrorKind::BadLocation,
                format!("{} was opened for reading only", self.describe()),
            )
        })
    }

    /// A spool file for `key` with its directories.
    fn spool_file(&self, key: &str) -> Result<(&Uploader, PathBuf), StoreError> {
        let uploader = self.uploader()?;
        let path = uploader.spool_path(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::io(format!("spool {}: {e}", dir.display())))?;
        }
        Ok((uploader, path))
    }
}

impl Store for S3Store {
    fn describe(&self) -> String {
        self.client.url(self.client.prefix())
    }

    fn url(&self, key: &str) -> String {
        self.client.url(&self.client.key(key))
    }

    fn remote(&self) -> bool {
        true
    }

    fn list(&self, under: &str, start_after: Option<&str>) -> Result<Vec<Object>, StoreError> {
        let prefix = self.client.prefix().len();
        let start_after = start_after.map(|s| self.client.key(s));
        Ok(self
            .client
            .list(&self.client.key(under), start_after.as_deref())?
            .into_iter()
            .filter(|o| o.key.len() >= prefix)
            .map(|o| Object {
                key: o.key[prefix..].to_string(),
                size: o.size,
            })
            .collect())
    }

    fn size(&self, key: &str) -> Result<u64, StoreError> {
        self.client.head(&self.client.key(key)).map(|h| h.0)
    }

    fn open(&self, key: &str, size: u64, block: u64) -> Result<Box<dyn ReadSeek>, StoreError> {
        Ok(Box::new(self.client.open(
            &self.client.key(key),
            size,
            block,
        )))
    }

    fn read(&self, key: &str, out: &mut dyn Write) -> Result<u64, StoreError> {
        self.client.download(&self.client.key(key), out)
    }

    fn fetch(&self, key: &str, dir: &Path) -> Result<LocalCopy, StoreError> {
        let io = |e: std::io::Error| StoreError::io(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp = tempfile::Builder::new()
            .suffix(if key.ends_with(".cast") {
                ".cast"
            } else {
                ".cast.zst"
            })
            .tempfile_in(dir)
            .map_err(io)?;
        {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
            self.read(key, &mut w)?;
            w.flush().map_err(|e| StoreError::io(e.to_string()))?;
        }
        let path = tmp.into_temp_path();
        Ok((path.to_path_buf(), Some(path)))
    }

    fn spooled(&self) -> bool {
        true
    }

    fn create(&self, key: &str) -> Result<PathBuf, StoreError> {
        let (uploader, path) = self.spool_file(key)?;
        let io = |e: std::io::Error| StoreError::io(format!("spool {}: {e}", path.display()));
        let lock = File::create(lock_path(&path)).map_err(io)?;
        lock.lock().map_err(io)?;
        // Metadata comes from the header once it is written. The uploader
        // keeps the lock until S3 has the whole object.
        uploader.watch(&path, &self.client.key(key), HashMap::new(), Some(lock));
        Ok(path)
    }

    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let (uploader, path) = self.spool_file(key)?;
        // Whole or not at all (a torn spool would be uploaded torn).
        crate::local::write_new(&path, bytes).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => StoreError::new(
                ErrorKind::AlreadyExists,
                format!("spool {}: already exists", path.display()),
            ),
            _ => StoreError::io(format!("spool {}: {e}", path.display())),
        })?;
        uploader.watch(&path, &self.client.key(key), HashMap::new(), None);
        uploader.finished(&path);
        Ok(())
    }

    fn finished(&self, path: &Path) {
        if let Some(u) = &self.uploader {
            u.finished(path);
        }
    }

    fn abandoned(&self, path: &Path) {
        if let Some(u) = &self.uploader {
            u.abandoned(path);
        }
    }

    fn flush(&self, deadline: Duration) -> UploadStatus {
        match &self.uploader {
            Some(u) => u.flush(deadline),
            None => UploadStatus::default(),
        }
    }
}
