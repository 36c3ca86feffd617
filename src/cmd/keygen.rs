//! `termtrail keygen`: create an Ed25519 key pair for signing seals.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::exit::Exit;

/// Text after `keygen --help`'s options.
pub const HELP: &str = "\
Writes the secret key to FILE (mode 0600, never overwritten) and the public
key to FILE.pub, and prints the key's id: the first 16 hex digits of SHA-256
of the public key, the id `verify` and `ls` show for recordings it signs.
Give the secret key to `rec --sign-key` (or `upload`/`recover --sign-key`),
the public key to whoever verifies: `verify --key FILE.pub`, or a
`verify --keyring DIR` holding it. Key file syntax: docs/format.md §9.1.

Examples:
  termtrail keygen ~/.termtrail/recorder.key
  install -m 0644 ~/.termtrail/recorder.key.pub /etc/termtrail/keys/
  termtrail verify --keyring /etc/termtrail/keys session.cast.zst";

/// `keygen` arguments.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the secret key (the public key goes to FILE.pub).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Runs `keygen`.
pub fn run(a: KeygenArgs) -> Result<Exit> {
    let key = termtrail_format::sign::SecretKey::generate()?;
    let public = key.save(&a.file)?;
    eprintln!(
        "::: secret key {} (keep it private), public key {} (id {})",
        a.file.display(),
        public.display(),
        key.public().id()
    );
    Ok(Exit::SUCCESS)
}
