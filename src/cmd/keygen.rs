//! `termtrail keygen`: create an Ed25519 key pair for signing seals.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::exit::Exit;

/// Text after `keygen --help`'s options.
pub const HELP: &str = "\
Writes the secret key to FILE (mode 0600, never overwritten) and the public
key to FILE.pub. Give the secret key to `rec --sign-key`, the public key to
`verify --key`.

Example:
  termtrail keygen ~/.termtrail/recorder.key";

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
