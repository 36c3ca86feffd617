//! Where recordings live: a local directory (the embedded default) or, with
//! the `s3` feature, an S3 bucket (module `s3`: the client, and the uploader
//! that streams spooled recordings into the bucket). Stores move bytes and
//! never parse them.
//!
//! Key layout (stable, documented in `docs/format.md` §8):
//! `YYYY/MM/DD/<source>/<session-id>/<shell-id>/<start>.cast.zst`, with the
//! date and `<start>` (`YYYYMMDDTHHMMSSZ`) in UTC; in S3 under the URL's
//! prefix.

use std::path::{Path, PathBuf};

#[cfg(feature = "s3")]
pub mod s3;

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

impl Location {
    /// Parses `s3://bucket[/prefix]` or a directory path.
    pub fn parse(s: &str) -> Result<Location, String> {
        let Some(rest) = s.strip_prefix("s3://") else {
            if s.contains("://") {
                return Err(format!(
                    "unsupported store URL {s:?}: use a directory or s3://BUCKET/PREFIX"
                ));
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
            return Err(format!(
                "bad bucket name {bucket:?} in {s:?}: 3-63 characters, lower-case letters, digits, '-' and '.'"
            ));
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

    /// Whether a command-line argument names an S3 location.
    pub fn is_s3(s: &str) -> bool {
        s.starts_with("s3://")
    }
}

/// A local directory of recordings.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

/// The parts of a recording's key.
#[derive(Debug, Clone)]
pub struct KeyParts<'a> {
    /// `local`, `serve`, `proxy`, `import`.
    pub source: &'a str,
    /// Session id.
    pub session: &'a str,
    /// Shell id.
    pub shell: &'a str,
    /// Start, Unix seconds.
    pub start: u64,
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    /// The default root: `$XDG_DATA_HOME/termtrail/recordings`, else
    /// `~/.local/share/termtrail/recordings`.
    pub fn default_root() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
        Some(base.join("termtrail").join("recordings"))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The relative key of a recording.
    pub fn key(parts: &KeyParts<'_>) -> String {
        let (y, mo, d, h, mi, s) = civil(parts.start);
        format!(
            "{}/{}/{}/{}/{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z.cast.zst",
            day_prefix(parts.start),
            sanitize(parts.source),
            sanitize(parts.session),
            sanitize(parts.shell),
        )
    }

    /// The full path for a recording, with its directories created.
    pub fn create_path(&self, parts: &KeyParts<'_>) -> std::io::Result<PathBuf> {
        let path = self.root.join(LocalStore::key(parts));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(path)
    }
}

/// Keeps key components to a safe alphabet: no separators, no dot-dot.
fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    if out.is_empty() || out.chars().all(|c| c == '.') {
        "_".into()
    } else {
        out
    }
}

/// The start of every key of a recording started at `secs` (Unix seconds):
/// its UTC day, `YYYY/MM/DD`. Keys sort by it, so a listing can start at a
/// day.
pub fn day_prefix(secs: u64) -> String {
    let (y, m, d, ..) = civil(secs);
    format!("{y:04}/{m:02}/{d:02}")
}

/// Unix seconds → (year, month, day, hour, minute, second) in UTC.
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem / 60 % 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://rec-bucket/a/b/"),
            Ok(Location::S3 {
                bucket: "rec-bucket".into(),
                prefix: "a/b/".into()
            })
        );
        assert_eq!(
            Location::parse("s3://rec-bucket"),
            Ok(Location::S3 {
                bucket: "rec-bucket".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            Location::parse("./recs"),
            Ok(Location::Local(PathBuf::from("./recs")))
        );
        for bad in [
            "s3://",
            "s3://Bad_Bucket/x",
            "s3://ab",
            "gs://bucket/x",
            "s3://-x-/y",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_layout() {
        let k = LocalStore::key(&KeyParts {
            source: "local",
            session: "host/../x",
            shell: "abc",
            start: 1_795_543_826,
        });
        assert_eq!(
            k,
            "2026/11/24/local/host_.._x/abc/20261124T181026Z.cast.zst"
        );
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    }
}
