//! `termtrail keygen`: create an Ed25519 key pair for signing seals.

use std::path::PathBuf;

use std::path::Path;

use anyhow::{Result, anyhow};
use clap::Args;

use super::outfile::{self, io_text};
use crate::exit::Exit;

/// Text after `keygen --help`'s options.
pub const HELP: &str = "\
Writes the secret key to FILE (mode 0600) and the public key to FILE.pub, and
prints the key's id: the first 16 hex digits of SHA-256
of the public key, the id `verify` and `ls` show for recordings it signs.
Give the secret key to `rec --sign-key` (or `upload`/`recover --sign-key`),
the public key to whoever verifies: `verify --key FILE.pub`, or a
`verify --keyring DIR` holding it. Key file syntax: docs/format.md §9.1.

An existing FILE or FILE.pub is never replaced without --overwrite (a
recording signed by the old key then no longer matches your key). With it,
both are written beside and renamed over the old ones.

Examples:
  termtrail keygen ~/.termtrail/recorder.key
  termtrail keygen ~/.termtrail/recorder.key --overwrite    (a new key in its place)
  install -m 0644 ~/.termtrail/recorder.key.pub /etc/termtrail/keys/
  termtrail verify --keyring /etc/termtrail/keys session.cast.zst";

/// `keygen` arguments.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the secret key (the public key goes to FILE.pub).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Replace FILE and FILE.pub if they exist.
    #[arg(long, help_heading = super::headings::OUTPUT)]
    pub overwrite: bool,
}

/// Runs `keygen`.
pub fn run(a: KeygenArgs) -> Result<Exit> {
    let public = pub_path(&a.file);
    outfile::check(&a.file, a.overwrite)?;
    outfile::check(&public, a.overwrite)?;
    let key = termtrail_format::sign::SecretKey::generate()?;
    if a.overwrite {
        save_over(&key, &a.file, &public)?;
    } else {
        key.save(&a.file)?;
    }
    eprintln!(
        "::: secret key {} (keep it private), public key {} (id {})",
        a.file.display(),
        public.display(),
        key.public().id()
    );
    Ok(Exit::SUCCESS)
}

/// `file` with `.pub` appended: where the public key goes.
fn pub_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Saves `key` as `file` and `public`, replacing them: written under a
/// hidden name beside them, then renamed into place.
fn save_over(key: &termtrail_format::sign::SecretKey, file: &Path, public: &Path) -> Result<()> {
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let tmp = file.with_file_name(format!(".{name}.{}.new", std::process::id()));
    let tmp_pub = pub_path(&tmp);
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&tmp_pub);
    let cleanup = || {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&tmp_pub);
    };
    key.save(&tmp).map_err(|e| {
        cleanup();
        // Named as the user's file, never the temporary one.
        let why = match &e {
            termtrail_format::sign::KeyError::Io { source, .. } => io_text(source),
            other => other.to_string(),
        };
        anyhow!("cannot write {}: {why}", file.display())
    })?;
    for (from, to) in [(&tmp, file), (&tmp_pub, public)] {
        std::fs::rename(from, to).map_err(|e| {
            cleanup();
            anyhow!("cannot write {}: {}", to.display(), io_text(&e))
        })?;
    }
    Ok(())
}
