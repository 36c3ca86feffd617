//! `termtrail verify`: the chain, seal and signature of recordings, and with
//! `--store` the journals of seals against the store.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use termtrail_format::audit::Anchor;
use termtrail_format::sign::Keyring;
use termtrail_format::text::{json_line, visible};
use termtrail_player::verify::{Verdict, verify_named};
use termtrail_store::Location;

use super::args::{StoreArg, location_text};
use super::locate::resolve;
use crate::exit::Exit;

/// Text after `verify --help`'s options.
pub const HELP: &str = "\
Exit status (the worst over all files):
  0  intact and sealed (and, when signed, the signature is valid; with --key
     or --keyring, signed by one of those keys)
  1  tampered: a changed, missing, duplicated, reordered or foreign chunk or
     segment, a forged seal or index, a bad signature; or, with --key or
     --keyring, a pin that failed (below)
  2  not a readable recording, or a usage error (a key file that does not
     read is named)
  3  intact but unsealed (truncated, or the recorder crashed): everything up to
     the reported time is verified; a recording still being written (its
     recorder holds the file's lock) says `still being recorded by pid N`
     (--json: \"recording\": true, \"recorder_pid\")

Keys. A valid signature proves only that the holder of the key in the file's
header sealed it: anyone who rewrites a recording can sign it with a key of
their own. Without --key/--keyring the line says who signed (`signed by key
3f2a9c81d0e4b5a7, not pinned`) and nothing is required. With them, the keys
are pinned, and a file that is not tampered and:
  is sealed and signed by a pinned key           0  `(pinned)`
  is sealed and signed by another key            1  key-not-pinned
  is sealed and not signed                       1  unsigned
  is unsealed, its header naming a pinned key    3  no signature to check yet
  is unsealed, its header naming another key     1  key-not-pinned
  is unsealed, its header naming no key          1  unsigned
  is unsealed, cut inside its header             3  no key to check
A bad signature, or a header naming a key whose seal has no signature, is
tampered (1) with or without keys. A key id is the first 16 hex digits of
SHA-256 of the 32 public key bytes; keygen prints it. docs/format.md §9.

With --audit, the file is a host's audit log (serve/proxy --audit) and the
codes mean: 0 every line is in the hash chain; 1 a line was changed,
removed, inserted, duplicated, reordered or spliced in from another log (or
the line --audit-head names is missing or different); 2 not an audit log,
or unreadable; 3 intact up to a torn last line (the host crashed mid-write;
it keeps those bytes and accounts for them when it opens the log again).
A chain alone cannot show lines cut from the end, nor a changed last line:
compare the head the verifier prints with one recorded elsewhere
(--audit-head SEQ:SHA256). docs/audit.md specifies the format and checks.

Without FILE (or with --store), every recording in the store is verified
(like `git fsck`, the whole of what you are in): --store, else
$TERMTRAIL_STORE, else the config file's `store`, else the local store
(docs/cli.md, \"Stores\"); an empty or missing local store is a note on
stderr and exit 0. A directory given as FILE is refused with the hint to
use --store. FILE may also name a recording of that store: an id or unique
id prefix, its file name, or @last. In a store check, the journals of seals
the recorders kept there are checked against the store: a recording whose
journaled seal is missing (deleted), different (replaced), or journal entries
missing or edited make the exit status 1. Recordings no journal names (made
by an older termtrail, or whose journal entry could not be written) are
counted, not failed. --key and --keyring pin keys for every recording of
the store, as for files.

Examples:
  termtrail verify session.cast.zst
  termtrail verify @last                    # the latest recording of the store
  termtrail verify 3f2a9c81                 # by id prefix (ls shows ids)
  termtrail verify                          # the whole local store
  termtrail verify --json ~/.local/share/termtrail/recordings/2026/11/*/*/*/*/*.cast.zst
  termtrail verify --key recorder.key.pub session.cast.zst
  termtrail verify --key host-a.key.pub --key host-b.key.pub *.cast.zst
  termtrail verify --keyring /etc/termtrail/keys --store s3://audit-recordings/prod
  termtrail verify --store s3://audit-recordings/prod
  termtrail verify --store s3://audit-recordings/prod --since 7d
  termtrail verify --audit /var/log/termtrail/audit.jsonl
  termtrail verify --audit audit.jsonl --audit-head 1042:9f2c…(64 hex) --json";

/// `verify` arguments.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Recordings to verify: files, s3:// URLs, or names in the store (an id or id prefix, a file name, @last). Without FILE: the whole store.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Verify a whole store: every recording, and the journals of seals that
    /// show a recording deleted or replaced (default: $TERMTRAIL_STORE, then
    /// the config file's `store`, then the local store). With FILE: the
    /// store names are looked up in.
    #[arg(long, value_name = "DIR|URL", value_parser = Location::parse)]
    pub store: Option<Location>,
    /// In a store check: from this day (UTC) on — the recordings of that day
    /// and later, and the journal entries sealed since its start (older
    /// entries are checked to be there, not read). An instant: a date
    /// (2026-11-20), RFC 3339, a time ago (7d, 2h ago), today or yesterday.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// One JSON object per file (JSON Lines).
    #[arg(long)]
    pub json: bool,
    /// Pin this public key (FILE.pub from keygen; repeatable): a recording
    /// then passes only when its seal is signed by one of the pinned keys.
    #[arg(long, value_name = "PUBKEY")]
    #[arg(help_heading = super::headings::SIGNING)]
    pub key: Vec<PathBuf>,
    /// Pin every public key in this directory (each `*.pub` file in it;
    /// repeatable, and with --key).
    #[arg(long, value_name = "DIR")]
    #[arg(help_heading = super::headings::SIGNING)]
    pub keyring: Vec<PathBuf>,
    /// Verify a host's audit log (serve/proxy --audit FILE) instead of
    /// recordings.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["files", "store", "key", "keyring", "since"])]
    pub audit: Option<PathBuf>,
    /// With --audit: the log must hold this line (SEQ:SHA256, a head printed
    /// by an earlier verify or the host's stop), which shows lines cut from
    /// the end and a changed last line.
    #[arg(long, value_name = "SEQ:SHA256", requires = "audit")]
    pub audit_head: Option<Anchor>,
}

/// Runs `verify`: the worst verdict is the status.
pub fn run(a: VerifyArgs) -> Result<Exit> {
    if let Some(file) = &a.audit {
        let (exit, line) = super::verify_audit::verify_audit(file, a.audit_head.as_ref(), a.json);
        if exit == Exit::ERROR && !a.json {
            eprintln!("termtrail: {line}");
        } else {
            writeln!(super::stdout::lock(), "{line}")?;
        }
        return Ok(exit);
    }
    let keys = pinned_keys(&a.key, &a.keyring)?;
    let key = keys.as_ref();
    let mut verdicts = Vec::new();
    let store = StoreArg {
        store: a.store.clone(),
    };
    if a.since.is_some() && !a.files.is_empty() {
        bail!(
            "--since narrows a store's check (termtrail verify [--store DIR|URL] --since WHEN); to verify files, leave it out"
        );
    }
    if a.files.is_empty() {
        let since = a
            .since
            .as_deref()
            .map(|w| termtrail_player::time::parse_instant(w, termtrail_player::time::now()))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--since: {e}"))?
            // Whole days: keys are dated by day.
            .map(|s| (s.max(0) / 1_000_000) as u64 / 86_400 * 86_400);
        let Some(location) = store.existing()? else {
            eprintln!(
                "termtrail: no recordings in {}",
                location_text(&store.location()?)
            );
            return Ok(Exit::SUCCESS);
        };
        return verify_store(&location, since, key, a.json);
    }
    let mut files = Vec::new();
    for file in &a.files {
        if file.is_dir() {
            bail!(
                "{} is a directory: to verify the recordings in it (and its journals), run `termtrail verify --store {}`",
                file.display(),
                file.display()
            );
        }
        files.push(resolve(file, &store)?);
    }
    for file in &files {
        if !termtrail_player::remote::is_url(file) {
            let (verdict, line) = verify_named(file, &file.display().to_string(), key, a.json);
            emit(&mut super::stdout::lock(), verdict, &line, a.json)?;
            verdicts.push(verdict);
            continue;
        }
        // Every recording under an S3 prefix, each fetched and verified.
        let url = file.to_string_lossy();
        let found = termtrail_player::remote::list_url(&url)?;
        if found.is_empty() {
            bail!("no recordings under {url}");
        }
        verdicts.extend(verify_targets(
            &found,
            key,
            a.json,
            &mut super::stdout::lock(),
        )?);
    }
    Ok(Exit::of_verdict(Verdict::worst(verdicts)))
}

/// Prints one file's line: a verdict on stdout, a file that could not be
/// verified at all (not a recording, unreadable) as an error on stderr.
/// With `--json` every line is a JSON object on stdout.
fn emit(out: &mut dyn Write, verdict: Verdict, line: &str, json: bool) -> io::Result<()> {
    if verdict == Verdict::Error && !json {
        out.flush()?;
        eprintln!("termtrail: {line}");
        return Ok(());
    }
    writeln!(out, "{line}")
}

/// The keys `--key` and `--keyring` pin (None when neither is given). A key
/// file that does not read is an error naming it.
pub fn pinned_keys(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Option<Keyring>> {
    if files.is_empty() && dirs.is_empty() {
        return Ok(None);
    }
    let mut ring = Keyring::new();
    for f in files {
        ring.add_file(f)?;
    }
    for d in dirs {
        ring.add_dir(d)?;
    }
    Ok(Some(ring))
}

/// Verifies recordings in order, printing a line for each. S3 objects are
/// fetched one or two ahead of the one being verified, so downloading and
/// verifying overlap.
fn verify_targets(
    targets: &[termtrail_player::remote::Target],
    key: Option<&Keyring>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Vec<Verdict>> {
    // One fetcher, two ahead: lines come out in order.
    termtrail_player::remote::fetch_ahead(targets, 1, 2, |ready| {
        let mut verdicts = Vec::new();
        while let Some((i, local)) = ready.lock().ok().and_then(|r| r.recv().ok()) {
            let name = targets[i].name();
            // A fetched copy is deleted when `_copy` goes, after verifying.
            let (verdict, line) = match local {
                Ok((path, _copy)) => verify_named(&path, &name, key, json),
                Err(e) => (
                    Verdict::Error,
                    visible(&format!("{name}: {e}")).into_owned(),
                ),
            };
            emit(out, verdict, &line, json)?;
            verdicts.push(verdict);
        }
        Ok(verdicts)
    })
}

/// `verify --store`: every recording, then the journals.
fn verify_store(
    location: &Location,
    since: Option<u64>,
    key: Option<&Keyring>,
    json: bool,
) -> Result<Exit> {
    use termtrail_player::remote::Target;
    use termtrail_store::view::StoreView;
    let view = StoreView::open(location)?;
    let recordings = view.recordings(since)?;
    let mut out = super::stdout::lock();
    let targets: Vec<_> = recordings
        .iter()
        .map(|rel| {
            let o = view.object(rel);
            Target::Object {
                store: view.store().clone(),
                key: o.key,
                size: o.size,
            }
        })
        .collect();
    let verdicts = verify_targets(&targets, key, json, &mut out)?;
    let journal = view.journal(since)?;
    // The seals the check will ask for, read all at once.
    let wanted: Vec<String> = journal
        .entries
        .iter()
        .flatten()
        .filter(|e| e.in_range(since))
        .map(|e| e.key.clone())
        .collect();
    let mut seals = view.seals_of(&wanted);
    let report = termtrail_format::journal::check(journal, since, &recordings, &mut |k| {
        seals.remove(k).unwrap_or_else(|| view.seal_of(k))
    });
    let mut code = Exit::of_verdict(Verdict::worst(verdicts));
    if !report.problems.is_empty() {
        code = code.max(Exit::TAMPERED);
    }
    // A store with nothing in it (no recording, no journal) is a note on
    // stderr, as for a store not created yet and as `ls` says it
    // (docs/cli.md, "Stores"); --json keeps its summary object.
    if !json && recordings.is_empty() && report.recorders.is_empty() && report.problems.is_empty() {
        let scope = since.map_or(String::new(), |s| {
            let (y, m, d, ..) = termtrail_store::layout::civil(s);
            format!(" since {y:04}-{m:02}-{d:02}")
        });
        eprintln!(
            "termtrail: no recordings in {}{scope}",
            visible(&location_text(location))
        );
        return Ok(code);
    }
    if json {
        writeln!(out, "{}", json_line(&journal_json(&report, since)))?;
    } else {
        write_journal(&mut out, &report, since)?;
    }
    Ok(code)
}

/// The journal check as one JSON object (`verify --store --json`).
fn journal_json(
    report: &termtrail_format::journal::JournalReport,
    since: Option<u64>,
) -> serde_json::Value {
    serde_json::json!({
        "journal": {
            "since": since,
            "recorders": report.recorders,
            "journaled": report.journaled,
            "unjournaled": report.unjournaled.len(),
            "problems": report.problems,
            "verdict": if report.problems.is_empty() { "intact" } else { "tampered" },
        }
    })
}

/// The journal check for a person: one line when intact, else a line per
/// problem.
fn write_journal(
    out: &mut dyn Write,
    report: &termtrail_format::journal::JournalReport,
    since: Option<u64>,
) -> io::Result<()> {
    let scope = since.map_or(String::new(), |s| {
        let (y, m, d, ..) = termtrail_store::layout::civil(s);
        format!(" since {y:04}-{m:02}-{d:02}")
    });
    let recorders = report.recorders.len();
    if report.problems.is_empty() {
        writeln!(
            out,
            "journal: intact — {}{scope} accounted for by {recorders} recorder journal(s); {} not journaled",
            super::count(report.journaled, "recording"),
            super::count(report.unjournaled.len() as u64, "recording")
        )?;
    } else {
        writeln!(
            out,
            "journal: TAMPERED — {} problem(s) across {recorders} recorder journal(s):",
            report.problems.len()
        )?;
        for p in &report.problems {
            // Problems name store keys, which hold client-chosen ids.
            writeln!(out, "  {}", visible(&p.to_string()))?;
        }
    }
    Ok(())
}
