//! Creating a recording's file so that its name never shows a file
//! without its header: the file is made unnamed (`O_TMPFILE`), the header
//! written and made durable, and only then is it linked under its name
//! (and the directory synced). A recorder killed, or a disk full, before
//! that leaves nothing behind — not an empty file that `verify` would call
//! "not a recording" (exit 2). Where the file system has no `O_TMPFILE`
//! (or `/proc` is missing) the file is created under its name and removed
//! again when the header cannot be written.
//!
//! The file is locked for its writer (`termtrail_format::recover::live`)
//! before it has a name, and stays locked while the returned writer keeps
//! it open: no reader ever sees it unlocked while it is being written.
//! Replacing a file another recorder holds is refused.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Mode, OFlags};
use termtrail_format::recover::live::{self, BeingRecorded};

/// What to do when the name is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Fail with `AlreadyExists`.
    Refuse,
    /// Use `<stem>-N.cast.zst` beside it, the first N free.
    NextFree,
    /// Replace the file there.
    Replace,
}

/// Why [`create`] failed.
#[derive(Debug, thiserror::Error)]
pub enum NewFileError<E: std::error::Error + 'static> {
    /// The file could not be created or named.
    #[error("{0}")]
    Create(#[source] io::Error),
    /// Starting it (writing the header) failed; no file was left.
    #[error("{0}")]
    Start(#[source] E),
    /// [`Taken::Replace`] over a recording a running recorder writes.
    #[error(transparent)]
    BeingRecorded(BeingRecorded),
}

/// Creates the file for `path`, has `start` write (and commit) its header
/// into it, and only then gives it its name: returns what `start` made and
/// the name given (another than `path` with [`Taken::NextFree`]).
pub fn create<T, E: std::error::Error + 'static>(
    path: &Path,
    taken: Taken,
    start: impl FnOnce(File) -> Result<T, E>,
) -> Result<(T, PathBuf), NewFileError<E>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if taken == Taken::Replace
        && let Some(live) = live::writer_of(path)
    {
        return Err(NewFileError::BeingRecorded(live));
    }
    let Some(file) = unnamed(dir) else {
        return create_named(path, taken, start);
    };
    // Unnamed, no one else can hold it: locked before it is seen.
    live::lock(&file).map_err(NewFileError::Create)?;
    let fd = file.try_clone().map_err(NewFileError::Create)?;
    let made = start(file).map_err(NewFileError::Start)?;
    let name = give_name(&fd, dir, path, taken).map_err(NewFileError::Create)?;
    // The name is durable too (a crash of the machine, not only of us).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((made, name))
}

/// An unnamed file in `dir`, when the system makes one.
fn unnamed(dir: &Path) -> Option<File> {
    if !Path::new("/proc/self/fd").is_dir() {
        return None;
    }
    let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
    rustix::fs::openat(CWD, dir, flags, Mode::from_raw_mode(0o666))
        .ok()
        .map(File::from)
}

/// Links the unnamed file `fd` into `dir` as `path` (or as `taken` says).
fn give_name(fd: &File, dir: &Path, path: &Path, taken: Taken) -> io::Result<PathBuf> {
    let from = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let link = |to: &Path| {
        rustix::fs::linkat(CWD, from.as_str(), CWD, to, AtFlags::SYMLINK_FOLLOW)
            .map_err(io::Error::from)
    };
    match taken {
        Taken::Refuse => link(path).map(|()| path.to_path_buf()),
        Taken::NextFree => {
            for candidate in candidates(path) {
                match link(&candidate) {
                    Ok(()) => return Ok(candidate),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(no_free_name(path))
        }
        Taken::Replace => {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let tmp = dir.join(format!(".{name}.{}.new", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            link(&tmp)?;
            std::fs::rename(&tmp, path).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
            Ok(path.to_path_buf())
        }
    }
}

/// Without unnamed files: created under its name, removed again when
/// `start` fails.
fn create_named<T, E: std::error::Error + 'static>(
    path: &Path,
    taken: Taken,
    start: impl FnOnce(File) -> Result<T, E>,
) -> Result<(T, PathBuf), NewFileError<E>> {
    let open = |p: &Path| {
        let mut o = std::fs::OpenOptions::new();
        o.write(true);
        if taken == Taken::Replace {
            o.create(true).truncate(true);
        } else {
            o.create_new(true);
        }
        o.open(p)
    };
    let (file, name) = match taken {
        Taken::NextFree => candidates(path)
            .find_map(|c| match open(&c) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
                other => Some(other.map(|f| (f, c))),
            })
            .unwrap_or_else(|| Err(no_free_name(path))),
        _ => open(path).map(|f| (f, path.to_path_buf())),
    }
    .map_err(NewFileError::Create)?;
    if let Err(e) = live::lock(&file) {
        let _ = std::fs::remove_file(&name);
        return Err(NewFileError::Create(e));
    }
    match start(file) {
        Ok(made) => Ok((made, name)),
        Err(e) => {
            let _ = std::fs::remove_file(&name);
            Err(NewFileError::Start(e))
        }
    }
}

/// `path`, then `<stem>-1.cast.zst`, `<stem>-2.cast.zst`, … (999 in all).
fn candidates(path: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("recording.cast.zst");
    let stem = name.strip_suffix(".cast.zst").unwrap_or(name).to_string();
    std::iter::once(path.to_path_buf())
        .chain((1..1000).map(move |n| path.with_file_name(format!("{stem}-{n}.cast.zst"))))
}

fn no_free_name(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{}: no free name", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("header failed")]
    struct HeaderFailed;

    fn write_header(mut f: File) -> Result<File, io::Error> {
        use std::io::Write;
        f.write_all(b"header\n")?;
        Ok(f)
    }

    #[test]
    fn the_name_appears_only_with_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cast.zst");
        let (first, name) = create(&path, Taken::Refuse, |f| {
            // While the header is written, nothing has the name.
            assert!(!path.exists());
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
            write_header(f)
        })
        .unwrap();
        assert_eq!(name, path);
        assert_eq!(std::fs::read(&path).unwrap(), b"header\n");
        // Taken: refused, or the next free name.
        let again = create(&path, Taken::Refuse, write_header);
        assert!(
            matches!(&again, Err(NewFileError::Create(e)) if e.kind() == io::ErrorKind::AlreadyExists),
            "{again:?}"
        );
        let (_f, next) = create(&path, Taken::NextFree, write_header).unwrap();
        assert_eq!(next, dir.path().join("a-1.cast.zst"));
        // Replaced (once its writer has closed it): the new content, no
        // temporary name left.
        drop(first);
        let (_f, same) = create(&path, Taken::Replace, |mut f| {
            use std::io::Write;
            f.write_all(b"new\n").map(|()| f)
        })
        .unwrap();
        assert_eq!(same, path);
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn the_file_is_locked_while_its_writer_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cast.zst");
        for named in [false, true] {
            let _ = std::fs::remove_file(&path);
            let (f, _) = if named {
                create_named(&path, Taken::Refuse, write_header).unwrap()
            } else {
                create(&path, Taken::Refuse, write_header).unwrap()
            };
            assert!(live::writer_of(&path).is_some(), "named: {named}");
            // Replacing it is refused; the file is left as it is.
            let r = create(&path, Taken::Replace, write_header);
            assert!(matches!(r, Err(NewFileError::BeingRecorded(_))), "{r:?}");
            drop(f);
            assert!(live::writer_of(&path).is_none(), "named: {named}");
            assert_eq!(std::fs::read(&path).unwrap(), b"header\n");
        }
    }

    #[test]
    fn a_header_that_cannot_be_written_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.cast.zst");
        let r = create(&path, Taken::NextFree, |_f| Err::<(), _>(HeaderFailed));
        assert!(matches!(r, Err(NewFileError::Start(HeaderFailed))));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // The same without unnamed files.
        let r = create_named(&path, Taken::Refuse, |_f| Err::<(), _>(HeaderFailed));
        assert!(matches!(r, Err(NewFileError::Start(HeaderFailed))));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
