//! `termtrail import`: seal an asciinema recording (.cast v2/v3) into a
//! `.cast.zst`.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use termtrail_store::Store;
use termtrail_store::layout::{self, KeyParts};
use termtrail_store::local::LocalStore;

use super::args::{secret_key, unix_now};
use super::outfile::{self, io_text};
use crate::exit::Exit;

/// Text after `import --help`'s options.
pub const HELP: &str = "\
Examples:
  termtrail import demo.cast                 writes demo.cast.zst beside it
  termtrail import demo.cast -o sealed.cast.zst --sign-key key
  termtrail import demo.cast --overwrite     replace an earlier demo.cast.zst

The output (-o, or FILE.zst) must end in .cast.zst and is never replaced
without --overwrite. FILE is a plain asciicast file: a .cast compressed with
zstd is refused with that hint (`zstd -d` it first), and a termtrail
recording is one already.";

/// `import` arguments.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// An asciinema recording (.cast, v2 or v3).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output (default: FILE with .cast.zst).
    #[arg(short, long, value_name = "OUT", conflicts_with = "store", help_heading = super::headings::OUTPUT)]
    pub output: Option<PathBuf>,
    /// Put the sealed recording in this store instead.
    #[arg(long, value_name = "DIR", help_heading = super::headings::OUTPUT)]
    pub store: Option<PathBuf>,
    /// Sign the seal with this Ed25519 secret key.
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = super::headings::SIGNING)]
    pub sign_key: Option<PathBuf>,
    /// Print nothing on success (errors are still said).
    #[arg(short, long)]
    pub quiet: bool,
    /// Replace the output if it exists.
    #[arg(long, conflicts_with = "store", help_heading = super::headings::OUTPUT)]
    pub overwrite: bool,
}

/// Runs `import`.
pub fn run(a: ImportArgs) -> Result<Exit> {
    // Refused before anything is written; a missing input is said first
    // (not as a complaint about the output's name).
    if let Err(e) = std::fs::metadata(&a.file) {
        bail!("{}: {}", a.file.display(), io_text(&e));
    }
    super::ensure_recording(&a.file)?;
    if matches!(
        termtrail_format::reader::sniff_path(&a.file),
        Ok(Some(termtrail_format::reader::FileKind::Chained))
    ) {
        bail!(
            "{}: already a termtrail recording; nothing to import (`termtrail verify` checks it)",
            a.file.display()
        );
    }
    if a.store.is_none() {
        let out = a.output.clone().unwrap_or_else(|| default_output(&a.file));
        if !out.to_string_lossy().ends_with(".cast.zst") {
            bail!(
                "{}: import writes a termtrail recording: name it *.cast.zst",
                out.display()
            );
        }
        outfile::check(&out, a.overwrite)?;
    }
    let key = secret_key(a.sign_key.as_deref())?;
    let input = std::fs::File::open(&a.file)
        .map_err(|e| anyhow!("{}: {}", a.file.display(), io_text(&e)))?;
    let out_path = match (a.output, a.store) {
        (Some(p), _) => p,
        (None, Some(store)) => {
            let stem = a
                .file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("imported")
                .to_string();
            LocalStore::new(store).create(&layout::key(&KeyParts {
                source: "import",
                session: &stem,
                shell: "0",
                start: unix_now(),
            }))?
        }
        (None, None) => default_output(&a.file),
    };
    // Replacing: written beside it and renamed over it, so a failed import
    // leaves the old file as it was.
    let write_to = if a.overwrite && out_path.exists() {
        let name = out_path.file_name().unwrap_or_default().to_string_lossy();
        out_path.with_file_name(format!(".{name}.{}.new", std::process::id()))
    } else {
        out_path.clone()
    };
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&write_to)
        .map_err(|e| anyhow!("cannot create {}: {}", out_path.display(), io_text(&e)))?;
    let imported = termtrail_format::import::import(BufReader::new(input), out, key)
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot import {}", a.file.display())))
        .and_then(|summary| {
            if write_to != out_path {
                std::fs::rename(&write_to, &out_path)
                    .map_err(|e| anyhow!("cannot write {}: {}", out_path.display(), io_text(&e)))?;
            }
            Ok(summary)
        });
    match imported {
        Ok(_) if a.quiet => Ok(Exit::SUCCESS),
        Ok(summary) => {
            eprintln!(
                "::: sealed {} → {} ({}, {})",
                a.file.display(),
                out_path.display(),
                super::count(summary.events, "event"),
                super::count(summary.chunks, "chunk")
            );
            Ok(Exit::SUCCESS)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&write_to);
            Err(e)
        }
    }
}

/// Where `import FILE` writes without -o: FILE with `.zst` appended.
fn default_output(file: &std::path::Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".zst");
    PathBuf::from(p)
}
