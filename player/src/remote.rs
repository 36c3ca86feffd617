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
    /// Whether any of `targets` is an S3 object (reading waits on requests,
    /// so more run at once than there are CPUs).
    pub fn any_remote(targets: &[Target]) -> bool {
        targets.iter().any(|t| matches!(t, Target::S3 { .. }))
    }

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
        if !Location::is_s3(a) {
            paths.push(PathBuf::from(a));
            continue;
        }
        match list_url_since(a, since) {
            Ok(mut t) => out.append(&mut t),
            Err(e) => errors.push((a.clone(), e)),
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

/// The recordings an `s3://` URL names.
pub fn list_url(url: &str) -> Result<Vec<Target>, String> {
    list_url_since(url, None)
}

/// [`list_url`], listing from `since`'s date on (see [`expand`]).
pub fn list_url_since(url: &str, since: Option<i64>) -> Result<Vec<Target>, String> {
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
    let start_after = since.map(|s| {
        let day = termtrail_format::store::day_prefix((s - 86_400).max(0) as u64);
        format!("{prefix}{day}")
    });
    let objects = store
        .list(&prefix, start_after.as_deref())
        .map_err(|e| e.to_string())?;
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

/// A whole store, for checking its journal: every recording key (relative
/// to the store), every journal entry, and a way to read a recording's
/// seal hash without reading the recording.
pub struct StoreView {
    location: Location,
    store: Option<Arc<S3Store>>,
    /// Object sizes from the listing (S3), so reading an object needs no
    /// HEAD first.
    sizes: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl StoreView {
    /// Opens a store location (a directory or `s3://BUCKET/PREFIX`).
    pub fn open(location: &Location) -> Result<StoreView, String> {
        let store = match location {
            Location::S3 { bucket, prefix } => Some(Arc::new(
                S3Store::connect(bucket, prefix).map_err(|e| e.to_string())?,
            )),
            Location::Local(dir) if !dir.is_dir() => {
                return Err(format!("{}: not a directory", dir.display()));
            }
            Location::Local(_) => None,
        };
        Ok(StoreView {
            location: location.clone(),
            store,
            sizes: Default::default(),
        })
    }

    /// Recording keys, relative to the store, sorted; with `since` (Unix
    /// seconds), those that sort from its day on (a store's keys begin with
    /// their recording's UTC date, `YYYY/MM/DD/`).
    pub fn recordings(&self, since: Option<u64>) -> Result<Vec<String>, String> {
        let day = since.map(termtrail_format::store::day_prefix);
        let in_range = |k: &String| day.as_ref().is_none_or(|d| k.as_str() >= d.as_str());
        let mut out: Vec<String> = match (&self.location, &self.store) {
            (_, Some(s)) => {
                let mut sizes = self.sizes.lock().map_err(|e| e.to_string())?;
                // The listing starts at the day.
                let start_after = day.as_ref().map(|d| s.key(d));
                s.list(s.prefix(), start_after.as_deref())
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|o| (o.key[s.prefix().len()..].to_string(), o.size))
                    .filter(|(k, _)| {
                        k.ends_with(".cast.zst") && !k.starts_with("journal/") && in_range(k)
                    })
                    .map(|(k, size)| {
                        sizes.insert(k.clone(), size);
                        k
                    })
                    .collect()
            }
            (Location::Local(dir), None) => {
                let (files, _) = crate::select::collect_files(std::slice::from_ref(dir));
                files
                    .iter()
                    .filter_map(|p| p.strip_prefix(dir).ok())
                    .map(|p| p.to_string_lossy().into_owned())
                    .filter(|k| k.ends_with(".cast.zst") && in_range(k))
                    .collect()
            }
            _ => Vec::new(),
        };
        out.sort();
        Ok(out)
    }

    /// The journal's entries: all of them, or with `since` (Unix seconds)
    /// those sealed from then on and one before per recorder, the older ones
    /// only listed (see [`termtrail_format::journal::read_journal`]).
    pub fn journal(
        &self,
        since: Option<u64>,
    ) -> Result<termtrail_format::journal::JournalRead, String> {
        use termtrail_format::journal::read_journal;
        match (&self.location, &self.store) {
            (_, Some(s)) => {
                let keys = s
                    .list(&s.key("journal/"), None)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|o| o.key[s.prefix().len()..].to_string())
                    .collect();
                // Entries are small objects: a batch is fetched 16 at a time.
                Ok(read_journal(keys, since, &mut |batch| {
                    par_map(batch, 16, |k| {
                        let mut bytes = Vec::new();
                        s.download(&s.key(k), &mut bytes)
                            .map(|_| bytes)
                            .map_err(|e| e.to_string())
                    })
                }))
            }
            (Location::Local(dir), None) => {
                let mut keys = Vec::new();
                let mut stack = vec![dir.join("journal")];
                while let Some(d) = stack.pop() {
                    for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                        let p = e.path();
                        if p.is_dir() {
                            stack.push(p);
                        } else if p.extension().is_some_and(|x| x == "json")
                            && let Ok(rel) = p.strip_prefix(dir)
                        {
                            keys.push(rel.to_string_lossy().into_owned());
                        }
                    }
                }
                Ok(read_journal(keys, since, &mut |batch| {
                    batch
                        .iter()
                        .map(|k| std::fs::read(dir.join(k)).map_err(|e| e.to_string()))
                        .collect()
                }))
            }
            _ => Ok(Default::default()),
        }
    }

    /// An object's size: from the listing, else a HEAD.
    fn size_of(&self, s: &S3Store, rel: &str) -> Result<u64, String> {
        if let Some(n) = self.sizes.lock().ok().and_then(|m| m.get(rel).copied()) {
            return Ok(n);
        }
        s.head(&s.key(rel))
            .map(|h| h.0)
            .map_err(|_| "it is not in the store".to_string())
    }

    /// A recording's seal hash from its index (None: unsealed).
    pub fn seal_of(&self, rel: &str) -> Result<Option<termtrail_format::chain::Hash>, String> {
        use termtrail_format::index::load_index;
        let index = match (&self.location, &self.store) {
            (_, Some(s)) => {
                let size = self.size_of(s, rel)?;
                load_index(&mut s.open(&s.key(rel), size, 256 << 10))
            }
            (Location::Local(dir), None) => {
                let mut f = std::fs::File::open(dir.join(rel))
                    .map_err(|_| "it is not in the store".to_string())?;
                load_index(&mut f)
            }
            _ => return Err("no store".into()),
        };
        index.map(|i| i.seal_hash).map_err(|e| e.to_string())
    }

    /// [`StoreView::seal_of`] for many recordings at once (16 in flight for
    /// S3, where each is a ranged GET), by key.
    pub fn seals_of(
        &self,
        rels: &[String],
    ) -> std::collections::HashMap<String, Result<Option<termtrail_format::chain::Hash>, String>>
    {
        let threads = match self.store {
            Some(_) => 16,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let seals = par_map(rels, threads, |rel| self.seal_of(rel));
        rels.iter().cloned().zip(seals).collect()
    }

    /// A recording as a target (for verifying its content).
    pub fn target(&self, rel: &str) -> Target {
        match (&self.location, &self.store) {
            (_, Some(s)) => Target::S3 {
                store: s.clone(),
                key: s.key(rel),
                size: self.size_of(s, rel).unwrap_or(0),
            },
            (Location::Local(dir), None) => Target::File(dir.join(rel)),
            _ => Target::File(PathBuf::from(rel)),
        }
    }
}

/// A target made local: its path, and for an S3 object the temporary copy,
/// deleted when this is dropped.
pub type Local = Result<(PathBuf, Option<tempfile::TempPath>), String>;

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

/// `f` over `items` on up to `threads` threads; results in the order of
/// `items`. For work that mostly waits on S3, where more requests in flight
/// than there are CPUs is what makes it fast.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    if let Ok(mut o) = out.lock() {
                        o[i] = Some(r);
                    }
                }
            });
        }
    });
    // Every slot is filled once the threads are joined (a panicking `f`
    // has already propagated out of the scope).
    out.into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}
