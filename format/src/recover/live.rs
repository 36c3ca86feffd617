//! The writer's lock on a live recording: a process writing a recording
//! file (`rec`, `serve`, `proxy`, an S3 store's spool) holds an exclusive
//! advisory `flock(2)` on the file itself from before its name appears
//! until it has closed it. The kernel drops the lock with the process, so a
//! recorder that is SIGKILLed leaves an unlocked (unsealed) file that
//! `recover` may seal; one that still runs keeps `recover`, `upload` and
//! every other writer off its file. docs/format.md ("Live recordings")
//! states the rule for other implementations.
//!
//! Who holds a lock is read from `/proc/locks` (Linux); elsewhere, or when
//! that is not readable, the holder is only known to exist.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A recording that a running process is writing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is being recorded{}", path.display(), by(*pid))]
pub struct BeingRecorded {
    /// The recording.
    pub path: PathBuf,
    /// The process that holds its lock, when known.
    pub pid: Option<u32>,
}

fn by(pid: Option<u32>) -> String {
    pid.map(|p| format!(" by pid {p}")).unwrap_or_default()
}

/// How often, and how far apart, a claim is tried again while the lock is
/// held only for a moment (another process looking with [`writer_of`]).
const CLAIM_TRIES: u32 = 10;
const CLAIM_PAUSE: Duration = Duration::from_millis(20);

/// Takes the writer's lock on `file` (a recording about to be written):
/// exclusive, without waiting. `WouldBlock` when another holds it.
pub fn lock(file: &File) -> io::Result<()> {
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => io::ErrorKind::WouldBlock.into(),
        std::fs::TryLockError::Error(e) => e,
    })
}

/// Claims `file` (opened from `path`) for rewriting it: takes the writer's
/// lock, held until `file` is closed. [`BeingRecorded`] when a recorder
/// holds it. A lock held for a moment by someone only looking (another
/// `ls`) is waited out.
pub fn claim(file: &File, path: &Path) -> Result<(), ClaimError> {
    for attempt in 0..CLAIM_TRIES {
        match lock(file) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let holder = holders(file).into_iter().find(|h| h.exclusive);
                if holder.is_some() || attempt + 1 == CLAIM_TRIES {
                    return Err(ClaimError::BeingRecorded(BeingRecorded {
                        path: path.to_path_buf(),
                        pid: holder.and_then(Holder::pid),
                    }));
                }
                std::thread::sleep(CLAIM_PAUSE);
            }
            Err(e) => return Err(ClaimError::Io(e)),
        }
    }
    unreachable!("the last attempt returns")
}

/// Why [`claim`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// A running process writes it.
    #[error(transparent)]
    BeingRecorded(BeingRecorded),
    /// Locking failed otherwise.
    #[error("{0}")]
    Io(io::Error),
}

/// Whether a running process writes the recording at `path`: its holder
/// (None: no one does, or it cannot be opened). Looks by taking a shared
/// lock for a moment, never waiting.
pub fn writer_of(path: &Path) -> Option<BeingRecorded> {
    let file = File::open(path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = holders(&file)
                .into_iter()
                .find(|h| h.exclusive)
                .and_then(Holder::pid);
            Some(BeingRecorded {
                path: path.to_path_buf(),
                pid,
            })
        }
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

/// One `flock` held on a file, as `/proc/locks` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Holder {
    pid: u32,
    exclusive: bool,
}

impl Holder {
    /// Its pid, unless the kernel hid it (0: a process outside this pid
    /// namespace, such as another container's).
    fn pid(self) -> Option<u32> {
        (self.pid != 0).then_some(self.pid)
    }
}

/// The `flock`s held on `file`'s inode by other processes.
fn holders(file: &File) -> Vec<Holder> {
    let Ok(meta) = file.metadata() else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let me = std::process::id();
    parse_locks(&text, meta.dev(), meta.ino())
        .into_iter()
        .filter(|h| h.pid != me)
        .collect()
}

/// The `FLOCK` lines of `/proc/locks` for the inode `ino` on device `dev`:
/// `N: FLOCK ADVISORY WRITE|READ PID MAJ:MIN:INODE START END`, the device
/// numbers in hex.
fn parse_locks(text: &str, dev: u64, ino: u64) -> Vec<Holder> {
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let want = format!("{major:02x}:{minor:02x}:{ino}");
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // A blocked waiter's line starts with "N: ->": not a holder.
            if f.len() < 6 || f[1] != "FLOCK" || f[5] != want {
                return None;
            }
            Some(Holder {
                pid: f[4].parse().ok()?,
                exclusive: f[3] == "WRITE",
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_locks_lines_are_read() {
        let text = "1: FLOCK  ADVISORY  WRITE 19225 fe:00:5579964 0 EOF\n\
                    2: POSIX  ADVISORY  WRITE 7 fe:00:5579964 0 EOF\n\
                    3: FLOCK  ADVISORY  READ 15813 fe:00:5579964 0 EOF\n\
                    3: -> FLOCK  ADVISORY  WRITE 99 fe:00:5579964 0 EOF\n\
                    4: FLOCK  ADVISORY  WRITE 1 fe:00:5579965 0 EOF\n";
        let dev = 0xfe << 8;
        assert_eq!(
            parse_locks(text, dev, 5579964),
            vec![
                Holder {
                    pid: 19225,
                    exclusive: true
                },
                Holder {
                    pid: 15813,
                    exclusive: false
                }
            ]
        );
        assert!(parse_locks(text, dev + 1, 5579964).is_empty());
    }

    #[test]
    fn a_locked_file_is_live_until_its_lock_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.cast.zst");
        std::fs::write(&path, b"x").unwrap();
        assert_eq!(writer_of(&path), None);
        let writer = File::open(&path).unwrap();
        lock(&writer).unwrap();
        // Another open file description (as another process would have).
        let live = writer_of(&path).expect("live");
        assert_eq!(live.path, path);
        let other = File::open(&path).unwrap();
        assert!(matches!(
            claim(&other, &path),
            Err(ClaimError::BeingRecorded(_))
        ));
        drop(writer);
        assert_eq!(writer_of(&path), None);
        claim(&other, &path).unwrap();
        assert!(writer_of(&path).is_some());
    }
}
