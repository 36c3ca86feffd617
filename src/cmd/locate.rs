//! Finding the recordings a command names: local files and directories,
//! `s3://` URLs, names in the store (`@last`, an id or unique id prefix, a
//! file name or a path relative to the store), or the whole store (the
//! one `--store`, `TERMTRAIL_STORE` or the configuration file names, else
//! the local store) by default.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use termtrail_player::remote::{Expanded, Target};
use termtrail_player::seek::{SeekError, Seeker};
use termtrail_store::Location;

use super::args::{StoreArg, location_text};

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

/// What a reading command reads: the recordings named on the command
/// line, or the whole store.
pub struct Targets {
    /// The recordings, and the arguments that failed with why.
    pub found: Expanded,
    /// The store read, as written on the command line, when the command
    /// named no paths (None: paths were named).
    pub store: Option<String>,
    /// The directory or prefix names are shown relative to (the store's,
    /// or the one directory or URL named).
    pub root: Option<String>,
}

impl Targets {
    /// Says on stderr that the store holds no recordings, when the command
    /// read a store and found none (a note, not an error).
    pub fn note_if_empty(&self) -> bool {
        match &self.store {
            Some(store) if self.found.0.is_empty() && self.found.1.is_empty() => {
                eprintln!("termtrail: no recordings in {store}");
                true
            }
            _ => false,
        }
    }
}

/// Recordings named on the command line (paths, directories, `s3://`
/// URLs, names in the store), or the store when none are named; `since`
/// (Unix seconds) lets an S3 listing start at that day.
pub fn targets(paths: &[PathBuf], store: &StoreArg, since: Option<i64>) -> Result<Targets> {
    if paths.is_empty() {
        let Some(location) = store.existing()? else {
            return Ok(Targets {
                found: (Vec::new(), Vec::new()),
                store: Some(location_text(&store.location()?)),
                root: None,
            });
        };
        let text = location_text(&location);
        return Ok(Targets {
            found: termtrail_player::remote::expand(std::slice::from_ref(&text), since),
            root: Some(text.clone()),
            store: Some(text),
        });
    }
    let mut args = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match lookup(p, store)? {
            Ok(p) => args.push(p.to_string_lossy().into_owned()),
            Err(why) => errors.push((p.display().to_string(), why.to_string())),
        }
    }
    let root = match args.as_slice() {
        [one] if Path::new(one).is_dir() || Location::is_url(one) => Some(one.clone()),
        _ => None,
    };
    let (found, mut failed) = termtrail_player::remote::expand(&args, since);
    failed.extend(errors);
    Ok(Targets {
        found: (found, failed),
        store: None,
        root,
    })
}

/// A recording (or directory) as named on the command line: a path or URL
/// that is there as given, else `@last` (the most recent recording of the
/// store by start time), a path relative to the store or a file name in it,
/// or an id or unique id prefix (an ambiguous name is an error listing the
/// candidates).
pub fn resolve(arg: &Path, store: &StoreArg) -> Result<PathBuf> {
    lookup(arg, store)?.map_err(|why| anyhow::anyhow!("{}: {why}", arg.display()))
}

/// Why a name names no one recording in the store (said after the name).
#[derive(Debug, thiserror::Error)]
enum NameError {
    /// The store could not be listed.
    #[error("{what}: {why}")]
    Listing { what: String, why: String },
    /// A path (not a name: absolute, `./…`, with `..`) that is not there.
    #[error("no such file")]
    Missing,
    /// `@last` in a store without recordings.
    #[error("no recordings in {store}")]
    Empty { store: String },
    /// The name is the file name of several recordings.
    #[error("names {count} recordings in {store}; name one: {names}")]
    SameName {
        count: usize,
        store: String,
        names: String,
    },
    /// Nothing has that name, id or id prefix.
    #[error(
        "no such file, and no recording in {store} has that name, id or id prefix (termtrail ls lists them; @last names the latest)"
    )]
    NotFound { store: String },
    /// No file or name, and too few hex digits to be taken as an id prefix.
    #[error(
        "no such file, and an id prefix needs at least {MIN_ID_PREFIX} hex digits (ids have 32; termtrail ls lists them)"
    )]
    ShortIdPrefix,
    /// The id prefix starts several recordings' ids.
    #[error(
        "ambiguous id prefix in {store}; name one: {ids} (copies of one recording share its id: name one by its path)"
    )]
    SameIdPrefix { store: String, ids: String },
}

/// [`resolve`]: the path, or why the name names no one recording (without
/// the name); the outer error is a store that could not be chosen.
fn lookup(arg: &Path, store: &StoreArg) -> Result<Result<PathBuf, NameError>> {
    let text = arg.to_string_lossy();
    if termtrail_player::remote::is_url(arg) || arg.exists() {
        return Ok(Ok(arg.to_path_buf()));
    }
    if !looks_like_a_name(&text) {
        return Ok(Err(NameError::Missing));
    }
    let location = store.location()?;
    let shown = location_text(&location);
    let all = match &location {
        Location::Local(dir) if !dir.exists() => Vec::new(),
        _ => {
            let (all, failed) =
                termtrail_player::remote::expand(std::slice::from_ref(&shown), None);
            if let Some((what, why)) = failed.first() {
                return Ok(Err(NameError::Listing {
                    what: visible(what),
                    why: why.clone(),
                }));
            }
            all
        }
    };
    let named = |t: &Target| PathBuf::from(t.name());
    if text == "@last" {
        return Ok(last(&all)
            .map(named)
            .ok_or(NameError::Empty { store: shown }));
    }
    let rel: Vec<String> = all.iter().map(|t| relative(t, &shown)).collect();
    let by_name: Vec<usize> = (0..all.len())
        .filter(|&i| rel[i] == *text || rel[i].ends_with(&format!("/{text}")))
        .collect();
    match by_name.as_slice() {
        [one] => return Ok(Ok(named(&all[*one]))),
        [] => {}
        many => {
            return Ok(Err(NameError::SameName {
                count: many.len(),
                store: shown,
                names: list(many.iter().map(|&i| rel[i].clone())),
            }));
        }
    }
    let by_id = by_id_prefix(&all, &text);
    Ok(match by_id.as_slice() {
        [(one, _)] => Ok(named(&all[*one])),
        [] if is_short_id_prefix(&text) => Err(NameError::ShortIdPrefix),
        [] => Err(NameError::NotFound { store: shown }),
        many => Err(NameError::SameIdPrefix {
            store: shown,
            ids: list(many.iter().map(|(i, id)| format!("{id} ({})", rel[*i]))),
        }),
    })
}

/// Whether `s` can name a recording in a store rather than a path that is
/// simply missing: `@last`, or a relative name without `..`.
fn looks_like_a_name(s: &str) -> bool {
    s == "@last" || !(s.starts_with('/') || s.starts_with("./") || s.split('/').any(|p| p == ".."))
}

/// `name`s on one line, comma-separated (at most 10, then how many more).
fn list(names: impl Iterator<Item = String>) -> String {
    let names: Vec<String> = names.collect();
    let mut out: Vec<String> = names.iter().take(10).map(|n| visible(n)).collect();
    if names.len() > 10 {
        out.push(format!("… and {} more", names.len() - 10));
    }
    out.join(", ")
}

fn visible(s: &str) -> String {
    termtrail_format::text::visible(s).into_owned()
}

/// A target's name relative to the store `root` (a directory or URL).
pub fn relative(t: &Target, root: &str) -> String {
    let name = t.name();
    let root = root.trim_end_matches('/');
    name.strip_prefix(root)
        .and_then(|r| r.strip_prefix('/'))
        .map_or(name.clone(), str::to_string)
}

/// The recording of `all` that started last: by the start time in its
/// file name (`YYYYMMDDTHHMMSSZ.cast.zst`, docs/format.md §8), else by
/// its header's.
fn last(all: &[Target]) -> Option<&Target> {
    let named: Vec<Option<String>> = all.iter().map(|t| start_in_name(&t.name())).collect();
    let unnamed: Vec<Target> = all
        .iter()
        .zip(&named)
        .filter(|(_, n)| n.is_none())
        .map(|(t, _)| t.clone())
        .collect();
    let read = entries(&unnamed);
    let mut read = read.into_iter();
    let mut best: Option<(String, &Target)> = None;
    for (t, n) in all.iter().zip(named) {
        let start = match n {
            Some(s) => s,
            None => match read.next().flatten() {
                Some(e) => e
                    .start()
                    .map_or(String::new(), termtrail_player::time::format_instant_secs),
                None => continue,
            },
        };
        // Ties: the later name.
        if best
            .as_ref()
            .is_none_or(|(b, bt)| (&start, t.name()) >= (b, bt.name()))
        {
            best = Some((start, t));
        }
    }
    best.map(|(_, t)| t)
}

/// The start time a store key's file name carries, as RFC 3339 (which
/// sorts as time does).
fn start_in_name(name: &str) -> Option<String> {
    let file = name.rsplit('/').next()?;
    let stamp = file.strip_suffix(".cast.zst")?;
    let b = stamp.as_bytes();
    let ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    ok.then(|| {
        format!(
            "{}-{}-{}T{}:{}:{}Z",
            &stamp[..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15]
        )
    })
}

/// What `ls` reads of each target (header and index); None for one that
/// does not read.
fn entries(targets: &[Target]) -> Vec<Option<termtrail_player::list::Entry>> {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    termtrail_player::list::entries(targets, false, None, jobs)
        .into_iter()
        .map(Result::ok)
        .collect()
}

/// The fewest hex digits taken as an id prefix (fewer would name many
/// recordings of any store).
const MIN_ID_PREFIX: usize = 4;

/// Whether `s` is hex digits, too few to be taken as an id prefix.
fn is_short_id_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() < MIN_ID_PREFIX && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The targets whose recording id starts with `prefix` (any case), with
/// the id. Only a hex prefix of [`MIN_ID_PREFIX`] digits or more is taken
/// as an id.
fn by_id_prefix(all: &[Target], prefix: &str) -> Vec<(usize, String)> {
    if prefix.len() < MIN_ID_PREFIX || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Vec::new();
    }
    let prefix = prefix.to_ascii_lowercase();
    entries(all)
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let id = e?.header.termtrail.as_ref()?.id.to_ascii_lowercase();
            id.starts_with(&prefix).then_some((i, id))
        })
        .collect()
}
