//! Streams spooled recordings into S3 while they are written.
//!
//! A recording is written (fsync per chunk) to a spool file under the spool
//! directory, at the same relative key it gets in the bucket. The uploader,
//! a thread of its own, follows each spool as it grows:
//!
//! - every full [`PART_SIZE`] of the file becomes a part of the object's
//!   multipart upload;
//! - the unfinished rest (the tail) is uploaded as the next part at most
//!   every `interval` (default 10 s) while it grows, replacing the previous
//!   tail (S3 keeps the last upload of a part number). So what is in the
//!   bucket — as parts, until the upload completes — lags the recording by
//!   at most `interval` plus one request;
//! - when the recording is sealed the last part is sent and the upload
//!   completed (a recording that ends before its first interval is one
//!   PutObject); the object's size is checked with a HEAD; only then is the
//!   spool deleted.
//!
//! Failures (S3 unreachable, erroring, restarted and forgetting the upload)
//! are retried with exponential backoff and jitter, up to a minute apart;
//! the spool keeps everything meanwhile. Spools left behind (by a process
//! that was killed, or that gave up waiting at exit) are found when an
//! uploader starts for the same spool directory and uploaded as they are.
//! Writers hold an exclusive lock on their spool file, so an uploader never
//! takes over a recording another process is still writing.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::client::{Multipart, PART_SIZE, S3Client, read_at};
use crate::{ErrorKind, StoreError};
use termtrail_format::sign::SecretKey;

/// Uploader settings.
#[derive(Debug, Clone)]
pub struct UploaderOptions {
    /// Where spools are written.
    pub spool: PathBuf,
    /// Most time between uploads of a growing recording's tail: the bound on
    /// how far the bucket lags a live recording.
    pub interval: Duration,
    /// The recorder's signing key: a spool left unsealed whose header names
    /// it gets a signed seal when it is recovered.
    pub sign_key: Option<Arc<SecretKey>>,
}

enum Msg {
    Watch {
        path: PathBuf,
        key: String,
        meta: HashMap<String, String>,
        lock: Option<File>,
        /// Left behind by a recorder that stopped: seal it first.
        recover: bool,
    },
    Finished(PathBuf),
    /// Its writer failed: seal it as interrupted, then finish the upload.
    Abandoned(PathBuf),
    /// Someone waits for the uploads (see [`Uploader::flush`]): retry now,
    /// and from now on at most [`HURRY_BACKOFF_MS`] apart.
    Hurry,
    Stop,
}

/// Most time between retries of a failing upload.
const MAX_BACKOFF_MS: u64 = 60_000;
/// Most time between retries while someone waits for the uploads (`rec`
/// at its end, a host shutting down, `upload`): a retry a minute away would
/// outlast the wait although S3 is back.
const HURRY_BACKOFF_MS: u64 = 2_000;

/// What the uploader is doing, for callers that wait on it.
#[derive(Debug, Default, Clone)]
pub struct UploadStatus {
    /// Spools not yet uploaded completely.
    pub pending: Vec<PathBuf>,
    /// Objects fully uploaded, by URL (`s3://bucket/key`).
    pub uploaded: Vec<String>,
    /// The last failure of each pending spool.
    pub errors: HashMap<PathBuf, String>,
}

/// The upload thread and its queue.
pub struct Uploader {
    tx: Sender<Msg>,
    status: Arc<Mutex<UploadStatus>>,
    thread: Option<JoinHandle<()>>,
    spool: PathBuf,
}

struct Entry {
    path: PathBuf,
    key: String,
    meta: HashMap<String, String>,
    finished: bool,
    /// Seal it as interrupted before uploading (a spool left behind).
    recover: bool,
    /// A lock held on a spool taken over from an earlier process.
    _lock: Option<File>,
    mpu: Option<Multipart>,
    /// Bytes sent as full parts.
    full: u64,
    /// Bytes of the file already in the bucket (full parts and tail).
    sent: u64,
    last_tail: Option<Instant>,
    retry_at: Option<Instant>,
    failures: u32,
}

impl Uploader {
    /// Starts the thread. Spools already in the spool directory that no
    /// writer holds are queued for upload first.
    pub fn start(store: S3Client, opts: UploaderOptions) -> Uploader {
        let (tx, rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(UploadStatus::default()));
        let spool = opts.spool.clone();
        for (path, lock) in leftovers(&opts.spool) {
            if let Some(rel) = path.strip_prefix(&opts.spool).ok().and_then(|r| r.to_str()) {
                let key = store.key(rel);
                if let Ok(mut s) = status.lock() {
                    s.pending.push(path.clone());
                }
                let _ = tx.send(Msg::Watch {
                    path: path.clone(),
                    key,
                    meta: HashMap::new(),
                    lock: Some(lock),
                    recover: path.to_string_lossy().ends_with(".cast.zst"),
                });
                let _ = tx.send(Msg::Finished(path));
            }
        }
        let st = status.clone();
        let thread = std::thread::Builder::new()
            .name("s3-upload".into())
            .spawn(move || run(store, opts, rx, st))
            .ok();
        Uploader {
            tx,
            status,
            thread,
            spool,
        }
    }

    /// The spool path for a key relative to the store's prefix.
    pub fn spool_path(&self, rel: &str) -> PathBuf {
        self.spool.join(rel)
    }

    /// Follows `path` (a spool being written) as the object `key`; `lock`
    /// (the writer's lock on the spool) is kept until the upload is done.
    pub fn watch(&self, path: &Path, key: &str, meta: HashMap<String, String>, lock: Option<File>) {
        if let Ok(mut s) = self.status.lock() {
            s.pending.push(path.to_path_buf());
        }
        let _ = self.tx.send(Msg::Watch {
            path: path.to_path_buf(),
            key: key.to_string(),
            meta,
            lock,
            recover: false,
        });
    }

    /// The writer of `path` is done (sealed): finish its upload.
    pub fn finished(&self, path: &Path) {
        let _ = self.tx.send(Msg::Finished(path.to_path_buf()));
    }

    /// The writer of `path` failed and left it unsealed: seal it as
    /// interrupted (retried while that fails for want of space), then
    /// finish its upload.
    pub fn abandoned(&self, path: &Path) {
        let _ = self.tx.send(Msg::Abandoned(path.to_path_buf()));
    }

    /// A snapshot of the uploader's state.
    pub fn status(&self) -> UploadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until every spool is uploaded or `deadline` passes; returns
    /// what is still pending (kept in the spool for a later run). Failed
    /// uploads are retried at once, and then at most 2 s apart.
    pub fn flush(&self, deadline: Duration) -> UploadStatus {
        let until = Instant::now() + deadline;
        let _ = self.tx.send(Msg::Hurry);
        loop {
            let s = self.status();
            if s.pending.is_empty() || Instant::now() >= until {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Spools under `dir` that no writer holds, each with its lock taken.
fn leftovers(dir: &Path) -> Vec<(PathBuf, File)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".json")
                && p.components().any(|c| c.as_os_str() == "journal")
            {
                // A journal entry (written whole before it was queued).
                if let Ok(f) = File::create(lock_path(&p))
                    && f.try_lock().is_ok()
                {
                    out.push((p, f));
                }
            } else if p.to_string_lossy().ends_with(".cast.zst")
                && let Ok(f) = File::create(lock_path(&p))
                && f.try_lock().is_ok()
            {
                out.push((p, f));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The file beside a spool that names its multipart upload (key and upload
/// id, one per line) while one is open, so that whoever takes over a spool
/// left behind can abort the upload the dead process started, instead of
/// leaving its parts in the bucket.
fn upload_note_path(spool: &Path) -> PathBuf {
    let mut name = spool.as_os_str().to_os_string();
    name.push(".upload");
    PathBuf::from(name)
}

fn note_upload(spool: &Path, mpu: &Multipart) {
    let path = upload_note_path(spool);
    let tmp = path.with_extension("upload.tmp");
    let written = std::fs::write(&tmp, format!("{}\n{}\n", mpu.key, mpu.id))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(err) = written {
        tracing::warn!(spool = %spool.display(), "cannot note the multipart upload: {err}");
    }
}

/// Aborts the multipart upload an earlier process noted for `spool`, if
/// any (best effort: an upload already gone is fine), and forgets it.
fn abort_noted_upload(store: &S3Client, spool: &Path) {
    let path = upload_note_path(spool);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let mut lines = text.lines();
    if let (Some(key), Some(id)) = (lines.next(), lines.next()) {
        let old = Multipart {
            key: key.to_string(),
            id: id.to_string(),
            parts: Vec::new(),
        };
        match store.abort(&old) {
            Ok(()) => {
                tracing::info!(spool = %spool.display(), "aborted the multipart upload a stopped recorder left")
            }
            Err(err) if err.status() == Some(404) || err.code() == Some("NoSuchUpload") => {}
            // Still there: the next attempt (or the bucket's lifecycle
            // rule) clears it.
            Err(err) => {
                tracing::warn!(spool = %spool.display(), "cannot abort a left multipart upload: {err}");
                return;
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// The lock file beside a spool file: its writer holds an exclusive lock
/// on it while writing.
pub fn lock_path(spool: &Path) -> PathBuf {
    let mut name = spool.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Object metadata from a recording's header.
pub fn meta_of_file(path: &Path) -> HashMap<String, String> {
    let mut m = HashMap::new();
    let Ok(mut f) = File::open(path) else {
        return m;
    };
    if let Ok(index) = termtrail_format::index::load_index(&mut f) {
        m = meta_of_header(&index.header);
        m.extend(seal_meta(&index));
    }
    m
}

/// What only the seal knows: the end reason and the last chain link
/// (`tt-end`, `tt-last-link`); empty for an unsealed file.
fn seal_meta(index: &termtrail_format::index::RecordingIndex) -> HashMap<String, String> {
    let mut m = HashMap::new();
    if let Some(end) = &index.end {
        let text: String = end
            .to_string()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || " .-_:/()".contains(*c))
            .take(200)
            .collect();
        m.insert("tt-end".to_string(), text);
    }
    if let Some(link) = &index.last_link {
        m.insert("tt-last-link".to_string(), link.clone());
    }
    m
}

/// The seal's metadata of a sealed spool, for tagging a multipart object
/// (whose metadata was fixed when its upload started).
fn seal_tags(path: &Path) -> Vec<(&'static str, String)> {
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let Ok(index) = termtrail_format::index::load_index(&mut f) else {
        return Vec::new();
    };
    let m = seal_meta(&index);
    ["tt-end", "tt-last-link"]
        .into_iter()
        .filter_map(|k| m.get(k).map(|v| (k, v.clone())))
        .collect()
}

/// Object metadata (`x-amz-meta-tt-*`) from a header: ASCII values only
/// (S3 metadata travels in HTTP headers); others are left out.
pub fn meta_of_header(h: &termtrail_format::cast::Header) -> HashMap<String, String> {
    let mut m = HashMap::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| v.is_ascii() && !v.chars().any(|c| c.is_ascii_control())) {
            m.insert(k.to_string(), v.chars().take(256).collect());
        }
    };
    if let Some(t) = &h.termtrail {
        put("tt-id", Some(&t.id));
        put("tt-source", t.source.as_deref());
        put("tt-session", t.session.as_deref());
        put("tt-shell", t.shell.as_deref());
        put("tt-principal", t.principal.as_deref());
    }
    put("tt-title", h.title.as_deref());
    if let Some(ts) = h.timestamp {
        put("tt-start", Some(&ts.to_string()));
    }
    m
}

fn run(
    store: S3Client,
    opts: UploaderOptions,
    rx: Receiver<Msg>,
    status: Arc<Mutex<UploadStatus>>,
) {
    let mut entries: Vec<Entry> = Vec::new();
    let tick = opts
        .interval
        .min(Duration::from_secs(1))
        .max(Duration::from_millis(50));
    let mut stopping = false;
    let mut hurry = false;
    loop {
        match rx.recv_timeout(tick) {
            Ok(Msg::Watch {
                path,
                key,
                meta,
                lock,
                recover,
            }) => {
                if let Ok(mut s) = status.lock()
                    && !s.pending.contains(&path)
                {
                    s.pending.push(path.clone());
                }
                entries.push(Entry::new(path, key, meta, lock, recover));
                continue;
            }
            Ok(Msg::Finished(path)) => {
                if let Some(e) = entries.iter_mut().find(|e| e.path == path) {
                    e.finished = true;
                    e.retry_at = None;
                }
            }
            Ok(Msg::Abandoned(path)) => {
                if let Some(e) = entries.iter_mut().find(|e| e.path == path) {
                    e.finished = true;
                    e.recover = true;
                    e.retry_at = None;
                }
            }
            Ok(Msg::Hurry) => {
                hurry = true;
                for e in &mut entries {
                    e.retry_at = None;
                }
            }
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => stopping = true,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        let mut i = 0;
        while i < entries.len() {
            let e = &mut entries[i];
            if e.retry_at.is_some_and(|t| now < t) {
                i += 1;
                continue;
            }
            if e.finished && !e.path.exists() {
                // Never written: its header could not be (a full disk).
                never_written(entries.remove(i), &status);
                continue;
            }
            match step(&store, e, opts.interval, opts.sign_key.as_deref()) {
                Ok(true) => {
                    uploaded(&store, entries.remove(i), &status);
                    continue;
                }
                Ok(false) => {
                    e.failures = 0;
                }
                Err(err) => failed(&store, e, &err, now, hurry, &status),
            }
            i += 1;
        }
        if stopping {
            return;
        }
    }
}

impl Entry {
    /// A spool to follow, nothing of it sent yet.
    fn new(
        path: PathBuf,
        key: String,
        meta: HashMap<String, String>,
        lock: Option<File>,
        recover: bool,
    ) -> Entry {
        Entry {
            path,
            key,
            meta,
            finished: false,
            recover,
            _lock: lock,
            mpu: None,
            full: 0,
            sent: 0,
            last_tail: None,
            retry_at: None,
            failures: 0,
        }
    }
}

/// `done` is in the bucket whole: its spool (with the upload note and the
/// lock file beside it) goes, and the status says so.
fn uploaded(store: &S3Client, done: Entry, status: &Mutex<UploadStatus>) {
    let _ = std::fs::remove_file(&done.path);
    let _ = std::fs::remove_file(upload_note_path(&done.path));
    let _ = std::fs::remove_file(lock_path(&done.path));
    if let Ok(mut s) = status.lock() {
        s.pending.retain(|p| p != &done.path);
        s.errors.remove(&done.path);
        s.uploaded.push(store.url(&done.key));
    }
}

/// `gone` ended without its file ever being named (the recording could
/// not start): nothing to upload; its lock file goes.
fn never_written(gone: Entry, status: &Mutex<UploadStatus>) {
    let _ = std::fs::remove_file(lock_path(&gone.path));
    if let Ok(mut s) = status.lock() {
        s.pending.retain(|p| p != &gone.path);
        s.errors.remove(&gone.path);
    }
}

/// A round for `e` failed with `err` at `now`: when its multipart upload
/// is gone it starts over from the spool, and it is retried after an
/// exponential backoff with jitter (see [`backoff`]).
fn failed(
    store: &S3Client,
    e: &mut Entry,
    err: &StoreError,
    now: Instant,
    hurry: bool,
    status: &Mutex<UploadStatus>,
) {
    e.failures += 1;
    if upload_gone(store, e, err) {
        // Start over from the spool, which has everything; the old upload
        // is aborted (best effort) so its parts are not left behind where
        // it still exists.
        if let Some(old) = e.mpu.take() {
            let _ = store.abort(&old);
        }
        e.full = 0;
        e.sent = 0;
    }
    let backoff = backoff(e.failures, hurry) + Duration::from_millis(jitter_ms());
    e.retry_at = Some(now + backoff);
    tracing::warn!(spool = %e.path.display(), "upload failed, retrying in {:.1} s: {err}", backoff.as_secs_f64());
    if let Ok(mut s) = status.lock() {
        s.errors.insert(e.path.clone(), err.to_string());
    }
}

/// Whether `e`'s multipart upload is gone after `err` (a restarted server
/// forgets it, and may say so with any error). Whether it is gone,
/// ListParts says; where that cannot be asked (refused), three refusals in
/// a row count as gone.
fn upload_gone(store: &S3Client, e: &Entry, err: &StoreError) -> bool {
    match &e.mpu {
        Some(_) if err.code() == Some("NoSuchUpload") || err.status() == Some(404) => true,
        Some(mpu) if err.status().is_some() => match store.upload_exists(mpu) {
            Ok(exists) => !exists,
            Err(_) => e.failures >= 3,
        },
        _ => false,
    }
}

/// The pause after `failures` failed rounds in a row, before jitter:
/// 0.5 s doubling up to a minute, or up to [`HURRY_BACKOFF_MS`] while
/// someone waits for the uploads. Each pause is about as long as all the
/// ones before it together, so once S3 answers again the next retry comes
/// within about the outage's length (at most the cap).
fn backoff(failures: u32, hurry: bool) -> Duration {
    let cap = if hurry {
        HURRY_BACKOFF_MS
    } else {
        MAX_BACKOFF_MS
    };
    Duration::from_millis((250u64 << failures.min(8)).min(cap))
}

fn jitter_ms() -> u64 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u64::from(u16::from_le_bytes(b)) % 250
}

/// One round for one spool; Ok(true) when it is fully uploaded and
/// confirmed.
fn step(
    store: &S3Client,
    e: &mut Entry,
    interval: Duration,
    key: Option<&SecretKey>,
) -> Result<bool, StoreError> {
    let len = match std::fs::metadata(&e.path) {
        Ok(m) => m.len(),
        // Named only once its header is written: not yet.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !e.finished => {
            return Ok(false);
        }
        Err(err) => return Err(StoreError::io(format!("spool {}: {err}", e.path.display()))),
    };
    if len == 0 && !e.finished {
        return Ok(false);
    }
    if e.recover {
        // A spool left behind, or whose writer failed: the upload its
        // recorder had open goes (the spool is uploaded anew once it is
        // sealed, and sealing rewrites its unfinished end).
        abort_noted_upload(store, &e.path);
        if let Some(old) = e.mpu.take() {
            let _ = store.abort(&old);
        }
        (e.full, e.sent, e.last_tail) = (0, 0, None);
        match termtrail_format::recover::seal_interrupted(
            &e.path,
            "the recorder stopped before sealing; sealed from its spool",
            key,
        ) {
            Ok(Some(r)) => {
                tracing::warn!(spool = %e.path.display(), chunks = r.chunks, "sealed a recording left unsealed as interrupted")
            }
            Ok(None) => {}
            // Its recorder still runs (it took the spool back, or a
            // writer of this process has not closed it yet): tried again.
            Err(termtrail_format::recover::RecoverError::BeingRecorded(b)) => {
                return Err(StoreError::io(format!(
                    "cannot seal spool: {b}; it is tried again"
                )));
            }
            // No space (or another write failure): kept, and tried again
            // — never uploaded unsealed for want of space.
            Err(termtrail_format::recover::RecoverError::Io(err)) => {
                return Err(StoreError::io(format!(
                    "cannot seal spool {} as interrupted: {err} (free space there; it is tried again)",
                    e.path.display()
                )));
            }
            // Damaged or unreadable: uploaded as it is (verify will say).
            Err(err) => {
                tracing::warn!(spool = %e.path.display(), "cannot seal a recording left behind: {err}")
            }
        }
        e.recover = false;
        return step(store, e, interval, key);
    }
    if e.meta.is_empty() {
        e.meta = meta_of_file(&e.path);
    }
    if e.finished && e.mpu.is_none() && len <= PART_SIZE {
        // Sealed now: the metadata can say how it ended.
        if e.path.to_string_lossy().ends_with(".cast.zst") {
            e.meta = meta_of_file(&e.path);
        }
        let body = std::fs::read(&e.path)
            .map_err(|err| StoreError::io(format!("spool {}: {err}", e.path.display())))?;
        match store.put(&e.key, body, &e.meta) {
            Ok(()) => {}
            // Already there (a retry after a lost response): fine if whole.
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
        return confirm(store, e, len);
    }
    // Full parts.
    while len - e.full >= PART_SIZE {
        let part = read_range(&e.path, e.full, PART_SIZE)?;
        let number = (e.full / PART_SIZE) as i32 + 1;
        store.upload_part(ensure_mpu(store, e)?, number, part)?;
        e.full += PART_SIZE;
        e.sent = e.sent.max(e.full);
    }
    let tail_due = e.finished || e.last_tail.is_none_or(|t| t.elapsed() >= interval);
    if len > e.sent && tail_due {
        let part = read_range(&e.path, e.full, len - e.full)?;
        let number = (e.full / PART_SIZE) as i32 + 1;
        store.upload_part(ensure_mpu(store, e)?, number, part)?;
        e.sent = len;
        e.last_tail = Some(Instant::now());
    }
    if !e.finished {
        return Ok(false);
    }
    if let Some(mpu) = &mut e.mpu {
        // Parts past the end (a tail that has since become a full part) are
        // not part of the object.
        let parts = len.div_ceil(PART_SIZE) as usize;
        mpu.parts.truncate(parts);
        match store.complete(mpu) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
        store.retain_object(&e.key)?;
        let tags = seal_tags(&e.path);
        if !tags.is_empty() {
            store.tag(&e.key, &tags)?;
        }
    }
    confirm(store, e, len)
}

fn ensure_mpu<'a>(store: &S3Client, e: &'a mut Entry) -> Result<&'a mut Multipart, StoreError> {
    if e.mpu.is_none() {
        let mpu = store.create_multipart(&e.key, &e.meta)?;
        note_upload(&e.path, &mpu);
        e.mpu = Some(mpu);
    }
    e.mpu
        .as_mut()
        .ok_or_else(|| StoreError::new(ErrorKind::Service, "multipart upload missing"))
}

fn read_range(path: &Path, at: u64, n: u64) -> Result<Vec<u8>, StoreError> {
    let mut f = File::open(path)
        .map_err(|err| StoreError::io(format!("spool {}: {err}", path.display())))?;
    read_at(&mut f, at, n).map_err(|err| StoreError::io(format!("spool {}: {err}", path.display())))
}

/// The object must be there with the spool's size before the spool goes.
fn confirm(store: &S3Client, e: &Entry, len: u64) -> Result<bool, StoreError> {
    let (size, _) = store.head(&e.key)?;
    if size != len {
        return Err(StoreError::io(format!(
            "S3 object {} has {size} bytes, the spool {len}: not deleting the spool",
            store.url(&e.key)
        )));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_a_minute_and_to_two_seconds_while_someone_waits() {
        let ms = |f, hurry| backoff(f, hurry).as_millis() as u64;
        assert_eq!(ms(1, false), 500);
        assert_eq!(ms(2, false), 1_000);
        assert_eq!(ms(7, false), 32_000);
        assert_eq!(ms(8, false), 60_000);
        assert_eq!(ms(40, false), 60_000);
        // After a long outage a waiting `rec` (--upload-wait 60 s) still
        // sees S3 come back: no retry a minute away.
        assert_eq!(ms(1, true), 500);
        assert_eq!(ms(3, true), 2_000);
        assert_eq!(ms(40, true), 2_000);
        // Each pause about as long as all the pauses before it: the lag
        // after S3 answers again is about the outage, at most the cap.
        for f in 2..8 {
            let before: u64 = (1..f).map(|k| ms(k, false)).sum();
            assert!(ms(f, false) <= before + 500, "{f}");
        }
    }
}
