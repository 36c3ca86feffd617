//! Recordings named by `s3://` URLs, for the player's commands.
//!
//! `s3://bucket/prefix` names every `.cast.zst` (and `.cast`) object under
//! the prefix, listed without downloading anything; `s3://bucket/key` one
//! object. Listing reads only each object's header and index through ranged
//! GETs ([`S3Store::open`]); commands that read a recording through (verify,
//! export, grep, play, snapshot) fetch it into a temporary file first (the
//! file goes when the command is done).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use termtrail_format::store::Location;
use termtrail_format::store::s3::S3Store;

/// One recording to read: a local file or an S3 object.
#[derive(Clone)]
pub enum Target {
    /// A local file.
    File(PathBuf),
    /// An S3 object.
    S3 {
        /// The bucket's client.
        store: Arc<S3Store>,
        /// Full key.
        key: String,
        /// Size in bytes.
        size: u64,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Target {
    /// How it is shown: the path, or `s3://bucket/key`.
    pub fn name(&self) -> String {
        match self {
            Target::File(p) => p.display().to_string(),
            Target::S3 { store, key, .. } => store.url(key),
        }
    }

    /// A local file with its content: the file itself, or the object
    /// fetched into a temporary file (deleted when the guard drops).
    pub fn local(&self) -> Result<(PathBuf, Option<tempfile::TempPath>), String> {
        match self {
            Target::File(p) => Ok((p.clone(), None)),
            Target::S3 { store, key, .. } => {
                let dir = crate::seek::cache_dir()
                    .map(|d| d.with_file_name("fetch"))
                    .unwrap_or_else(std::env::temp_dir);
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let mut tmp = tempfile::Builder::new()
                    .suffix(if key.ends_with(".cast") {
                        ".cast"
                    } else {
                        ".cast.zst"
                    })
                    .tempfile_in(&dir)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                {
                    let mut w = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
                    store.download(key, &mut w).map_err(|e| e.to_string())?;
                    w.flush().map_err(|e| e.to_string())?;
                }
                let path = tmp.into_temp_path();
                Ok((path.to_path_buf(), Some(path)))
            }
        }
    }
}

/// Targets, and the arguments that failed with why.
pub type Expanded = (Vec<Target>, Vec<(String, String)>);

/// Expands arguments into targets: local paths through `local` (which walks
/// directories), `s3://` URLs by listing. Failures come back as (argument,
/// error) pairs.
pub fn expand(
    args: &[String],
    local: impl Fn(&[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>),
) -> Expanded {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    for a in args {
        if !Location::is_s3(a) {
            paths.push(PathBuf::from(a));
            continue;
        }
        match list_url(a) {
            Ok(mut t) => out.append(&mut t),
            Err(e) => errors.push((a.clone(), e)),
        }
    }
    let (files, missing) = local(&paths);
    out.extend(files.into_iter().map(Target::File));
    errors.extend(
        missing
            .into_iter()
            .map(|(p, e)| (p.display().to_string(), e)),
    );
    (out, errors)
}

/// The recordings an `s3://` URL names.
pub fn list_url(url: &str) -> Result<Vec<Target>, String> {
    let Location::S3 { bucket, prefix } = Location::parse(url)? else {
        return Err(format!("not an S3 URL: {url}"));
    };
    let store = Arc::new(S3Store::connect(&bucket, &prefix).map_err(|e| e.to_string())?);
    // The URL may name one object exactly.
    let exact = url
        .strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .map(|(_, k)| k.to_string())
        .filter(|k| is_recording_key(k));
    if let Some(key) = exact {
        let (size, _) = store.head(&key).map_err(|e| e.to_string())?;
        return Ok(vec![Target::S3 { store, key, size }]);
    }
    let objects = store.list(&prefix, None).map_err(|e| e.to_string())?;
    Ok(objects
        .into_iter()
        .filter(|o| is_recording_key(&o.key))
        .map(|o| Target::S3 {
            store: store.clone(),
            key: o.key,
            size: o.size,
        })
        .collect())
}

fn is_recording_key(key: &str) -> bool {
    key.ends_with(".cast.zst") || key.ends_with(".cast")
}

/// Whether a path argument is an S3 URL.
pub fn is_s3(arg: &Path) -> bool {
    arg.to_str().is_some_and(Location::is_s3)
}
