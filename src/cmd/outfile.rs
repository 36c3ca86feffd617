//! Files named on the command line to be written (`rec -o`, `export -o`,
//! `import -o`, `keygen FILE`): the one rule for all of them. A file that
//! exists is replaced only with `--overwrite`, a recording a running
//! recorder writes never (docs/format.md §8.2), and the refusal is one
//! line naming the file, given before any work.

use std::io;
use std::path::Path;

use anyhow::{Result, bail};
use termtrail_format::recover::live::writer_of;

/// Refuses to write `path` when it exists and `overwrite` is not given,
/// when it is a directory, when its directory does not exist, or when a
/// recorder is writing it. Devices and
/// pipes (`/dev/null`, a FIFO) are written in place: they are not refused.
pub fn check(path: &Path, overwrite: bool) -> Result<()> {
    let shown = path.display();
    // A symbolic link whose target is missing is a file that exists: it
    // is replaced (the link itself) only with --overwrite.
    if std::fs::metadata(path).is_err()
        && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    {
        if !overwrite {
            bail!("{shown} exists (a link to a missing file); use --overwrite to replace it");
        }
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(path) else {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            bail!("cannot write {shown}: no such directory {}", dir.display());
        }
        return Ok(());
    };
    if meta.is_dir() {
        bail!("{shown} is a directory; name a file to write");
    }
    if !meta.is_file() {
        return Ok(());
    }
    if !overwrite {
        bail!("{shown} exists; use --overwrite to replace it");
    }
    if let Some(live) = writer_of(path) {
        bail!("{live}; not replacing it");
    }
    Ok(())
}

/// Whether `path` is a device or a pipe (written in place, whatever its
/// name says).
pub fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// An I/O error as one plain phrase, the one wording every subcommand
/// uses: a missing file is `no such file` (said `PATH: no such file`),
/// other errors the system's words; never Rust's `(os error N)` suffix.
pub fn io_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        // The system's words for the rest, without the suffix.
        _ => {
            let text = e.to_string();
            match text.rfind(" (os error ") {
                Some(i) if text.ends_with(')') => text[..i].to_string(),
                _ => text,
            }
        }
    }
}

/// `text` with every system error phrase that ends in Rust's
/// `(os error N)` said as [`io_text`] says it: for messages of libraries
/// that show an `io::Error` inside their own.
pub fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(" (os error ") {
        let Some(len) = rest[i..].find(')') else {
            break;
        };
        let code = rest[i + " (os error ".len()..i + len].parse::<i32>().ok();
        // The phrase is what the system says for the code, just before it.
        let said = code.map(|c| io::Error::from_raw_os_error(c).to_string());
        let phrase = said
            .as_deref()
            .and_then(|s| s.strip_suffix(&format!(" (os error {})", code.unwrap_or(0))))
            .filter(|p| rest[..i].ends_with(p));
        match (phrase, code) {
            (Some(p), Some(c)) => {
                out.push_str(&rest[..i - p.len()]);
                out.push_str(&io_text(&io::Error::from_raw_os_error(c)));
            }
            _ => out.push_str(&rest[..i]),
        }
        rest = &rest[i + len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_files_need_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.cast");
        check(&path, false).unwrap();
        std::fs::write(&path, b"x").unwrap();
        let e = check(&path, false).unwrap_err().to_string();
        assert!(
            e.ends_with("x.cast exists; use --overwrite to replace it"),
            "{e}"
        );
        check(&path, true).unwrap();
        assert!(check(dir.path(), true).is_err());
        check(Path::new("/dev/null"), false).unwrap();
        let e = check(&dir.path().join("no/x.cast"), false).unwrap_err();
        assert!(e.to_string().contains("no such directory"), "{e}");
        assert!(is_special(Path::new("/dev/null")));
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(io_text(&e), "no such file");
        assert_eq!(
            plain(
                "x.cast: cannot read: No such file or directory (os error 2); y (os error 99999)"
            ),
            "x.cast: cannot read: no such file; y"
        );
        assert_eq!(plain("k1: File exists (os error 17)"), "k1: File exists");
    }
}
