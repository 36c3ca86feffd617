//! Finding the recordings a command names: local files and directories,
//! `s3://` URLs, or the local store by default.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use termtrail_player::seek::{SeekError, Seeker};
use termtrail_store::local::LocalStore;

/// Opens FILE for seeking: a local file, or an `s3://` object — a
/// `.cast.zst` read by ranged GETs (index, then the segments needed), a plain
/// `.cast` fetched first.
pub fn open_seeker(
    file: &Path,
    cache: Option<&Path>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Result<Seeker, SeekError>, Option<tempfile::TempPath>)> {
    use termtrail_player::remote::{Target, is_url};
    if is_url(file)
        && let Target::Object { store, key, size } = one_object(file)?
        && key.ends_with(".cast.zst")
    {
        return Ok((
            Seeker::open_object(store, &key, size, cache, progress),
            None,
        ));
    }
    // A fetched file is read again when seeking: the caller keeps the guard.
    let (local, fetched) = fetch_if_remote(file)?;
    Ok((Seeker::open(&local, cache, progress), fetched))
}

/// A local copy of FILE: the file itself, or an `s3://` object fetched into
/// a temporary file (deleted when the guard drops).
pub fn fetch_if_remote(file: &Path) -> Result<(PathBuf, Option<tempfile::TempPath>)> {
    if !termtrail_player::remote::is_url(file) {
        return Ok((file.to_path_buf(), None));
    }
    Ok(one_object(file)?.local()?)
}

/// The one recording an `s3://` URL names (an error when it names none or
/// several).
fn one_object(file: &Path) -> Result<termtrail_player::remote::Target> {
    let url = file.to_string_lossy();
    let mut targets = termtrail_player::remote::list_url(&url)?;
    if targets.len() != 1 {
        bail!(
            "{url} names {} recordings; name one object (termtrail ls {url} lists them)",
            targets.len()
        );
    }
    Ok(targets.remove(0))
}

/// Recordings named on the command line (paths, directories, `s3://`
/// URLs), or the local store; with what could not be read.
pub fn targets(
    paths: &[PathBuf],
    since: Option<i64>,
) -> Result<termtrail_player::remote::Expanded> {
    let args: Vec<String> = search_roots(paths)?
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    Ok(termtrail_player::remote::expand(&args, since))
}

/// The paths to look at: those given, or the local store.
fn search_roots(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if !paths.is_empty() {
        return Ok(paths.to_vec());
    }
    let root = LocalStore::default_root()
        .context("no store directory: set HOME or XDG_DATA_HOME, or name files or directories")?;
    if !root.exists() {
        bail!(
            "no recordings yet in the local store ({}); name files or directories to search",
            root.display()
        );
    }
    Ok(vec![root])
}
