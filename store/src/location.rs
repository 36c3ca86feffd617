//! A store as users name it — a directory, or `s3://bucket/prefix` — and
//! opening it: the one place that tells the kinds of store apart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use termtrail_format::sign::SecretKey;

use crate::local::LocalStore;
use crate::s3::{Protection, S3Client, S3Store};
use crate::{ErrorKind, Store, StoreError};

/// A store location as users write it: a directory, or `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// An S3 bucket and key prefix (empty, or ending in `/`).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
}

/// How a store is opened for recording into it.
#[derive(Debug, Clone, Default)]
pub struct RecordingOptions {
    /// Most time between uploads of a growing recording (S3): how far the
    /// bucket may lag a live recording.
    pub upload_interval: Duration,
    /// Refuse to start when the store cannot be reached now, instead of
    /// spooling until it can.
    pub strict: bool,
    /// Retention and encryption of what is uploaded (S3 only).
    pub protection: Protection,
    /// Signs the seals of recordings left unsealed (by a killed recorder)
    /// whose header names this key.
    pub sign_key: Option<SecretKey>,
}

impl Location {
    /// Parses `s3://bucket[/prefix]` or a directory path.
    pub fn parse(s: &str) -> Result<Location, StoreError> {
        let bad = |m: String| StoreError::new(ErrorKind::BadLocation, m);
        let Some(rest) = s.strip_prefix("s3://") else {
            if s.contains("://") {
                return Err(bad(format!(
                    "unsupported store URL {s:?}: use a directory or s3://BUCKET/PREFIX"
                )));
            }
            return Ok(Location::Local(PathBuf::from(s)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid {
            return Err(bad(format!(
                "bad bucket name {bucket:?} in {s:?}: 3-63 characters, lower-case letters, digits, '-' and '.'"
            )));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Ok(Location::S3 {
            bucket: bucket.to_string(),
            prefix,
        })
    }

    /// Whether a command-line argument names a store by URL rather than a
    /// local path.
    pub fn is_url(s: &str) -> bool {
        s.starts_with("s3://")
    }

    /// Whether recordings written here go through a local spool and are
    /// uploaded from it (so that sending a spool left behind means
    /// something).
    pub fn uploads(&self) -> bool {
        matches!(self, Location::S3 { .. })
    }

    /// Opens the store for reading: nothing is sent or written yet.
    pub fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            Location::Local(dir) => Arc::new(LocalStore::new(dir)),
            Location::S3 { bucket, prefix } => {
                Arc::new(S3Store::reader(S3Client::connect(bucket, prefix)?))
            }
        })
    }

    /// Opens the store for recording into it. For S3 the bucket is checked
    /// first: a missing bucket, refused credentials or no credentials at
    /// all are errors; an unreachable S3 is only a warning (recordings are
    /// spooled and uploaded when it is back) unless `strict`. The uploader
    /// starts, taking over spools left behind. A local store refuses S3's
    /// protection options.
    pub fn open_for_recording(
        &self,
        opts: &RecordingOptions,
    ) -> Result<Arc<dyn Store>, StoreError> {
        match self {
            Location::Local(_)
                if opts.protection.retain.is_some() || opts.protection.sse.is_some() =>
            {
                Err(StoreError::new(
                    ErrorKind::BadLocation,
                    "--retain-days, --lock-mode and --sse need an S3 store (--store s3://BUCKET/PREFIX)",
                ))
            }
            Location::Local(dir) => Ok(Arc::new(LocalStore::new(dir))),
            Location::S3 { bucket, prefix } => {
                let client =
                    S3Client::connect(bucket, prefix)?.with_protection(opts.protection.clone());
                Ok(Arc::new(S3Store::recorder(client, opts)?))
            }
        }
    }
}

impl std::str::FromStr for Location {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Location, StoreError> {
        Location::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://rec-bucket/a/b/").unwrap(),
            Location::S3 {
                bucket: "rec-bucket".into(),
                prefix: "a/b/".into()
            }
        );
        assert_eq!(
            Location::parse("s3://rec-bucket").unwrap(),
            Location::S3 {
                bucket: "rec-bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse("./recs").unwrap(),
            Location::Local(PathBuf::from("./recs"))
        );
        for bad in [
            "s3://",
            "s3://Bad_Bucket/x",
            "s3://ab",
            "gs://bucket/x",
            "s3://-x-/y",
        ] {
            let e = Location::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadLocation, "{bad}");
        }
    }
}
