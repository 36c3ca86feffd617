//! A directory of recordings: the embedded default store. Recordings are
//! written in place (nothing to upload); reads are the files themselves.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{LocalCopy, Object, ReadSeek, Store, StoreError, UploadStatus};

/// A local directory of recordings.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
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

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn io(&self, key: &str, e: std::io::Error) -> StoreError {
        StoreError::io(format!("{}: {e}", self.path(key).display()))
    }
}

/// Files under `dir` (not hidden, symlinked files followed, symlinked
/// directories not), with their sizes, as keys relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<Object>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let Ok(lm) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if lm.is_dir() {
            walk(root, &p, out);
        } else if let Ok(m) = std::fs::metadata(&p)
            && m.is_file()
            && let Ok(rel) = p.strip_prefix(root)
        {
            out.push(Object {
                key: rel.to_string_lossy().into_owned(),
                size: m.len(),
            });
        }
    }
}

/// Writes `bytes` as the new file `path`, whole or not at all: into a
/// hidden temporary file beside it first (synced), which is then linked
/// under its name — create-only (`AlreadyExists` when the name is taken) —
/// and removed. A process stopped half-way, or a full disk, never leaves a
/// torn file under the name (a torn journal entry would block the journal).
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    written?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn url(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }

    fn remote(&self) -> bool {
        false
    }

    fn list(&self, under: &str, start_after: Option<&str>) -> Result<Vec<Object>, StoreError> {
        if !self.root.is_dir() {
            return Err(StoreError::io(format!(
                "{}: not a directory",
                self.root.display()
            )));
        }
        // The deepest directory `under` names entirely.
        let dir = match under.rfind('/') {
            Some(i) => self.root.join(&under[..i]),
            None => self.root.clone(),
        };
        let mut out = Vec::new();
        walk(&self.root, &dir, &mut out);
        out.retain(|o| o.key.starts_with(under) && start_after.is_none_or(|s| o.key.as_str() > s));
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn size(&self, key: &str) -> Result<u64, StoreError> {
        std::fs::metadata(self.path(key))
            .map(|m| m.len())
            .map_err(|e| self.io(key, e))
    }

    fn open(&self, key: &str, _size: u64, _block: u64) -> Result<Box<dyn ReadSeek>, StoreError> {
        let f = File::open(self.path(key)).map_err(|e| self.io(key, e))?;
        Ok(Box::new(f))
    }

    fn read(&self, key: &str, out: &mut dyn Write) -> Result<u64, StoreError> {
        let mut f = File::open(self.path(key)).map_err(|e| self.io(key, e))?;
        std::io::copy(&mut f, out).map_err(|e| self.io(key, e))
    }

    fn fetch(&self, key: &str, _dir: &Path) -> Result<LocalCopy, StoreError> {
        Ok((self.path(key), None))
    }

    fn spooled(&self) -> bool {
        false
    }

    fn create(&self, key: &str) -> Result<PathBuf, StoreError> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io(key, e))?;
        }
        Ok(path)
    }

    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.create(key)?;
        write_new(&path, bytes).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => StoreError::new(
                crate::ErrorKind::AlreadyExists,
                format!("{}: already exists", path.display()),
            ),
            _ => self.io(key, e),
        })
    }

    fn finished(&self, _path: &Path) {}

    fn flush(&self, _deadline: Duration) -> UploadStatus {
        UploadStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_by_prefix_and_start_skipping_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        for k in [
            "2026/11/23/local/h/1/a.cast.zst",
            "2026/11/24/local/h/1/b.cast.zst",
            "2026/11/24/local/h/.hidden/c.cast.zst",
            "journal/r/0.json",
        ] {
            store.put_new(k, b"x").unwrap();
        }
        let keys = |v: Vec<Object>| v.into_iter().map(|o| o.key).collect::<Vec<_>>();
        assert_eq!(
            keys(store.list("", Some("2026/11/24")).unwrap()),
            ["2026/11/24/local/h/1/b.cast.zst", "journal/r/0.json"]
        );
        assert_eq!(
            keys(store.list("journal/", None).unwrap()),
            ["journal/r/0.json"]
        );
        // Create-only, and said so.
        let taken = store.put_new("journal/r/0.json", b"y").unwrap_err();
        assert_eq!(taken.kind(), crate::ErrorKind::AlreadyExists);
        assert_eq!(store.size("journal/r/0.json").unwrap(), 1);
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("journal/r"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["0.json"]);
    }
}
