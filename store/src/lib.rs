//! termtrail's storage: where recordings live, and moving their bytes there
//! and back. Stores move bytes and never parse recordings (the format crate
//! does); this crate reads a recording's index only to label uploads and to
//! check a store's journal.
//!
//! - [`Store`]: the one interface every recorder and player uses — listing
//!   by prefix and day, ranged reads, fetching a local copy, create-only
//!   writes, recordings written through a spool and streamed up while they
//!   grow, waiting for uploads. Two implementations: [`local::LocalStore`]
//!   (a directory, the embedded default) and [`s3::S3Store`] (a bucket,
//!   written through a local spool by [`s3::upload::Uploader`], with Object
//!   Lock retention and server-side encryption).
//! - [`Location`]: a store as users name it (a directory or
//!   `s3://bucket/prefix`), and opening one: the only place that tells the
//!   kinds of store apart.
//! - [`layout`]: the stable key layout (`YYYY/MM/DD/source/session/shell/start.cast.zst`).
//! - [`destination::Destination`]: a recorder's store with its
//!   [`journal`] of seals; [`view::StoreView`]: a whole store read back for
//!   checking that journal.
//! - [`StoreError`]: failures as an [`ErrorKind`] callers match on, S3's
//!   classified from the SDK's error kinds, S3 error codes and HTTP statuses.
//!
//! ```
//! use termtrail_store::{Location, layout::{KeyParts, key}};
//! let dir = tempfile::tempdir()?;
//! let store = Location::Local(dir.path().into()).open()?;
//! let rel = key(&KeyParts { source: "local", session: "host", shell: "1", start: 0 });
//! store.put_new(&rel, b"bytes")?;
//! let listed = store.list("", None)?;
//! assert_eq!(listed[0].key, "1970/01/01/local/host/1/19700101T000000Z.cast.zst");
//! assert_eq!(listed[0].size, 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod destination;
mod error;
pub mod journal;
pub mod layout;
pub mod local;
mod location;
pub mod par;
pub mod s3;
pub mod view;

pub use error::{ErrorKind, StoreError};
pub use location::{Location, RecordingOptions};
pub use s3::upload::UploadStatus;

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its key (relative to the store in [`Store::list`]).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// Something recordings can be read from with seeking.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// An object as a local file: its path, and for a remote object the
/// temporary copy, deleted when the guard drops.
pub type LocalCopy = (PathBuf, Option<tempfile::TempPath>);

/// A place recordings live. Keys are relative to the store (its directory,
/// or its bucket and prefix) and use `/`.
pub trait Store: Send + Sync {
    /// How the store is named in messages: its directory, or
    /// `s3://bucket/prefix`. It also identifies the store for the journal.
    fn describe(&self) -> String;

    /// How one of its objects is named in messages: a path, or
    /// `s3://bucket/key`.
    fn url(&self, key: &str) -> String;

    /// Whether reads cross a network, each mostly waiting on a request:
    /// then more reads in flight than there are CPUs is what makes reading
    /// fast (see [`Store::read_threads`]).
    fn remote(&self) -> bool;

    /// How many reads to keep in flight: 16 for a remote store, else one
    /// per CPU.
    fn read_threads(&self) -> usize {
        if self.remote() {
            16
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// Every object whose key starts with `under`, in key order, from the
    /// first key after `start_after` (keys begin with their day, so a
    /// listing can start at a day). Hidden files of a directory are not
    /// objects.
    fn list(&self, under: &str, start_after: Option<&str>) -> Result<Vec<Object>, StoreError>;

    /// An object's size.
    fn size(&self, key: &str) -> Result<u64, StoreError>;

    /// A seekable reader over an object of `size` bytes that fetches only
    /// what is read (in blocks of about `block` bytes where that matters).
    fn open(&self, key: &str, size: u64, block: u64) -> Result<Box<dyn ReadSeek>, StoreError>;

    /// A whole object, streamed into `out`; its length.
    fn read(&self, key: &str, out: &mut dyn Write) -> Result<u64, StoreError>;

    /// An object as a local file: the file itself, or a copy fetched into a
    /// temporary file under `dir`.
    fn fetch(&self, key: &str, dir: &Path) -> Result<LocalCopy, StoreError>;

    /// Whether recordings written here go on to a remote store after being
    /// written (through a spool), so that waiting for uploads means
    /// something.
    fn spooled(&self) -> bool;

    /// Starts a recording at `key`: the file to write it into, durable as
    /// it is written (fsync per chunk) — in the store, or in the spool it
    /// is uploaded from while it grows. Directories are created; a spool
    /// file is locked, so no other process takes it over. Call
    /// [`Store::finished`] when it is sealed.
    fn create(&self, key: &str) -> Result<PathBuf, StoreError>;

    /// Writes a small object whole, durably and create-only (an existing
    /// object is never replaced).
    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;

    /// The recording written to `path` (from [`Store::create`]) is sealed,
    /// or abandoned: finish its upload.
    fn finished(&self, path: &Path);

    /// The recording written to `path` failed (a full disk, an I/O error)
    /// and stays unsealed: a spooled one is sealed as `interrupted` before
    /// its upload is finished — retried while sealing fails for want of
    /// space, so it is never uploaded unsealed for that. By default the
    /// same as [`Store::finished`].
    fn abandoned(&self, path: &Path) {
        self.finished(path)
    }

    /// Waits (up to `deadline`) for uploads; what is still pending stays
    /// in the spool. Stores without a spool have nothing to wait for.
    fn flush(&self, deadline: Duration) -> UploadStatus;
}
