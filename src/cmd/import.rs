//! `termtrail import`: seal an asciinema recording (.cast v2/v3) into a
//! `.cast.zst`.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use termtrail_store::Store;
use termtrail_store::layout::{self, KeyParts};
use termtrail_store::local::LocalStore;

use super::args::{secret_key, unix_now};
use crate::exit::Exit;

/// Text after `import --help`'s options.
pub const HELP: &str = "\
Examples:
  termtrail import demo.cast                 writes demo.cast.zst beside it
  termtrail import demo.cast -o sealed.cast.zst --sign-key key";

/// `import` arguments.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// An asciinema recording (.cast, v2 or v3).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output (default: FILE with .cast.zst).
    #[arg(short, long, value_name = "OUT", conflicts_with = "store")]
    pub output: Option<PathBuf>,
    /// Put the sealed recording in this store instead.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Sign the seal with this Ed25519 secret key.
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = super::headings::SIGNING)]
    pub sign_key: Option<PathBuf>,
}

/// Runs `import`.
pub fn run(a: ImportArgs) -> Result<Exit> {
    let key = secret_key(a.sign_key.as_deref())?;
    let input = std::fs::File::open(&a.file)
        .with_context(|| format!("cannot open {}", a.file.display()))?;
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
        (None, None) => {
            let mut p = a.file.clone().into_os_string();
            p.push(".zst");
            PathBuf::from(p)
        }
    };
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&out_path)
        .with_context(|| format!("cannot create {}", out_path.display()))?;
    match termtrail_format::import::import(BufReader::new(input), out, key) {
        Ok(summary) => {
            eprintln!(
                "::: sealed {} → {} ({} events, {} chunks)",
                a.file.display(),
                out_path.display(),
                summary.events,
                summary.chunks
            );
            Ok(Exit::SUCCESS)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&out_path);
            Err(anyhow::Error::new(e).context(format!("cannot import {}", a.file.display())))
        }
    }
}
