//! Recordings to read, as the player's commands name them: local files, and
//! objects of a store named by URL (`s3://bucket/prefix` names every
//! `.cast.zst` and `.cast` object under the prefix, listed without
//! downloading anything; `s3://bucket/key` one object). Listing reads only
//! each object's header and index through ranged reads ([`Store::open`]);
//! commands that read a recording through (verify, export, grep, play,
//! snapshot) fetch a remote object into a temporary file first (the file
//! goes when the command is done).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use termtrail_store::{Location, Store, StoreError};

/// One recording to read: a local file or an object of a store.
#[derive(Clone)]
pub enum Target {
    /// A local file.
    File(PathBuf),
    /// An object of a store.
    Object {
        /// The store.
        store: Arc<dyn Store>,
        /// Its key in the store.
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
    /// Whether any of `targets` is read across a network (reading waits on
    /// requests, so more run at once than there are CPUs).
    pub fn any_remote(targets: &[Target]) -> bool {
        targets
            .iter()
            .any(|t| matches!(t, Target::Object { store, .. } if store.remote()))
    }

    /// How it is shown: the path, or the store's URL of the object.
    pub fn name(&self) -> String {
        match self {
            Target::File(p) => p.display().to_string(),
            Target::Object { store, key, .. } => store.url(key),
        }
    }

    /// A local file with its content: the file itself, or the object
    /// fetched into a temporary file (deleted when the guard drops).
    pub fn local(&self) -> Result<(PathBuf, Option<tempfile::TempPath>), StoreError> {
        match self {
            Target::File(p) => Ok((p.clone(), None)),
            Target::Object { store, key, .. } => {
                let dir = crate::seek::cache_dir()
                    .map(|d| d.with_file_name("fetch"))
                    .unwrap_or_else(std::env::temp_dir);
                store.fetch(key, &dir)
            }
        }
    }
}

/// Targets, and the arguments that failed with why.
pub type Expanded = (Vec<Target>, Vec<(String, String)>);

/// Expands arguments into targets: local paths through
/// [`crate::select::collect_files`] (which walks directories), `s3://` URLs
/// by listing. Failures come back as (argument, error) pairs.
/// With `since` (Unix seconds), S3 listings start at that date's keys (the
/// key layout begins with the UTC date; a day earlier, for recordings still
/// running then), so older objects are not even listed.
pub fn expand(args: &[String], since: Option<i64>) -> Expanded {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    for a in args {
        if !Location::is_url(a) {
            paths.push(PathBuf::from(a));
            continue;
        }
        match list_url_since(a, since) {
            Ok(mut t) => out.append(&mut t),
            Err(e) => errors.push((a.clone(), e.to_string())),
        }
    }
    let (files, missing) = crate::select::collect_files(&paths);
    out.extend(files.into_iter().map(Target::File));
    errors.extend(
        missing
            .into_iter()
            .map(|(p, e)| (p.display().to_string(), e.to_string())),
    );
    (out, errors)
}

/// The recordings a store URL names.
pub fn list_url(url: &str) -> Result<Vec<Target>, StoreError> {
    list_url_since(url, None)
}

/// [`list_url`], listing from `since`'s date on (see [`expand`]).
pub fn list_url_since(url: &str, since: Option<i64>) -> Result<Vec<Target>, StoreError> {
    let location = Location::parse(url)?;
    // The URL may name one object exactly: then it is a key of the store
    // at the bucket's top.
    if let Some((top, key)) = exact_object(url) {
        let store = Location::parse(&top)?.open()?;
        let size = store.size(&key)?;
        return Ok(vec![Target::Object { store, key, size }]);
    }
    let store = location.open()?;
    let start_after =
        since.map(|s| termtrail_store::layout::day_prefix((s - 86_400).max(0) as u64));
    let objects = store.list("", start_after.as_deref())?;
    Ok(objects
        .into_iter()
        .filter(|o| is_recording_key(&o.key))
        .map(|o| Target::Object {
            store: store.clone(),
            key: o.key,
            size: o.size,
        })
        .collect())
}

/// `s3://bucket/key` of one recording: the URL of the bucket's top and
/// the key.
fn exact_object(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    is_recording_key(key).then(|| (format!("s3://{bucket}"), key.to_string()))
}

fn is_recording_key(key: &str) -> bool {
    key.ends_with(".cast.zst") || key.ends_with(".cast")
}

/// Whether a path argument names a store by URL.
pub fn is_url(arg: &Path) -> bool {
    arg.to_str().is_some_and(Location::is_url)
}

/// A target made local: its path, and for an S3 object the temporary copy,
/// deleted when this is dropped.
pub type Local = Result<(PathBuf, Option<tempfile::TempPath>), StoreError>;

/// A queue of targets made local, with their index in the list.
pub type Fetched = std::sync::Mutex<std::sync::mpsc::Receiver<(usize, Local)>>;

/// Runs `consume` while `fetchers` threads make `targets` local
/// ([`Target::local`]: S3 objects are downloaded) at most `ahead` in front
/// of it, so that fetching and reading overlap. With one fetcher they come
/// in order. When `consume` returns, the fetchers stop; what they still
/// hand over is dropped (copies deleted).
pub fn fetch_ahead<R>(
    targets: &[Target],
    fetchers: usize,
    ahead: usize,
    consume: impl FnOnce(&Fetched) -> R,
) -> R {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::sync_channel(ahead);
    let rx = std::sync::Mutex::new(rx);
    std::thread::scope(|s| {
        for _ in 0..fetchers.clamp(1, targets.len().max(1)) {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(target) = targets.get(i) else { break };
                    if tx.send((i, target.local())).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let r = consume(&rx);
        stop.store(true, Ordering::Relaxed);
        // Until the last fetcher has seen the stop and gone.
        while let Some(Ok(_)) = rx.lock().ok().map(|r| r.recv()) {}
        r
    })
}

pub use termtrail_store::par::par_map;
