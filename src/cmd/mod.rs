//! The command line: the top-level parser and one module per subcommand,
//! each owning its flags (a clap `Args` struct with its help text), their
//! conversion into the crates' options, and its `run`.

mod access;
pub mod args;
pub mod attach;
mod authn;
pub mod completions;
pub mod config;
pub mod exec;
pub mod export;
pub mod grep;
pub mod headings;
mod host;
pub mod import;
pub mod keygen;
mod limits;
mod locate;
pub mod ls;
pub mod outfile;
pub mod play;
pub mod policy;
pub mod proxy;
pub mod rec;
pub mod recover;
pub mod serve;
pub mod snapshot;
pub mod stdout;
pub mod supervise;
pub mod upload;
pub mod verify;
pub mod verify_audit;

use clap::{Parser, Subcommand};

/// A flight recorder for interactive shells: tamper-evident, compressed
/// asciicast recordings you can verify, replay and export.
#[derive(Parser, Debug)]
#[command(name = "termtrail", version, about, propagate_version = true)]
// A flag given twice takes its last value (config `[flags]` come first).
#[command(args_override_self = true)]
#[command(
    after_help = "Examples:\n  termtrail rec                         record your shell to the local store\n  termtrail rec -o demo.cast.zst -- htop\n  termtrail verify demo.cast.zst\n  termtrail export demo.cast.zst --format txt\n  termtrail play @last                  the latest recording of the store\n  source <(termtrail completions bash)  Tab completion; `termtrail man` for man pages\n\nRecordings go to the store: --store, else $TERMTRAIL_STORE, else `store` in $XDG_CONFIG_HOME/termtrail/config.toml, else $XDG_DATA_HOME/termtrail/recordings (default ~/.local/share/termtrail/recordings); -o names a file instead. docs/cli.md says how stores, recordings and times are named."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Record a command (default: your shell) in a pseudo-terminal.
    #[command(after_help = rec::HELP)]
    Rec(rec::RecArgs),
    /// Verify recordings: hash chain, seal and signature.
    #[command(after_help = verify::HELP)]
    Verify(verify::VerifyArgs),
    /// Export a recording as plain asciicast v3/v2 or a text transcript.
    #[command(after_help = export::HELP)]
    Export(export::ExportArgs),
    /// List recordings: when, how long, whose, how they ended, verified or not.
    #[command(after_help = ls::HELP)]
    Ls(ls::LsArgs),
    /// Seal recordings a recorder left unsealed (killed, crashed) as interrupted.
    #[command(after_help = recover::HELP)]
    Recover(recover::RecoverArgs),
    /// Upload recordings left in the local spool of an S3 store (after a crash or an outage).
    #[command(after_help = upload::HELP)]
    Upload(upload::UploadArgs),
    /// Search what appeared on the terminal (or was typed) across recordings.
    #[command(after_help = grep::HELP)]
    Grep(grep::GrepArgs),
    /// Replay a recording in this terminal: pause, step, seek, markers, speed.
    #[command(after_help = play::HELP)]
    Play(play::PlayArgs),
    /// Print the screen exactly as it looked at a moment of a recording.
    #[command(after_help = snapshot::HELP)]
    Snapshot(snapshot::SnapshotArgs),
    /// Seal an existing asciinema recording (.cast v2/v3) into a .cast.zst.
    #[command(after_help = import::HELP)]
    Import(import::ImportArgs),
    /// Create an Ed25519 key pair for signing seals.
    #[command(after_help = keygen::HELP)]
    Keygen(keygen::KeygenArgs),
    /// Host shells over WebSocket (AgentCore shell protocol), recording each.
    #[command(after_help = serve::HELP)]
    Serve(serve::ServeArgs),
    /// Open (or re-attach to) a remote shell in this terminal.
    #[command(after_help = attach::HELP)]
    Attach(attach::AttachArgs),
    /// A recording proxy in front of a shell host (AgentCore protocol or terminado).
    #[command(after_help = proxy::HELP)]
    Proxy(proxy::ProxyArgs),
    /// Run one command on a shell host and print its output (no terminal).
    #[command(after_help = exec::HELP)]
    Exec(exec::ExecArgs),
    /// Check what a Cedar access policy decides, or validate it.
    #[command(after_help = policy::HELP)]
    Policy(policy::PolicyArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = completions::COMPLETIONS_HELP)]
    Completions(completions::CompletionsArgs),
    /// Print the man page, or write every page (one per subcommand) into a directory.
    #[command(after_help = completions::MAN_HELP)]
    Man(completions::ManArgs),
    /// Internal: the supervisor `serve` runs each one-shot command under.
    #[command(name = "__supervise", hide = true)]
    Supervise(supervise::SuperviseArgs),
}

/// `n` and `word`, with an `s` unless `n` is 1 (`1 event`, `3 events`).
pub fn count(n: impl Into<u64>, word: &str) -> String {
    let n = n.into();
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Refuses a local file that is not a recording by its first bytes (a
/// README, a picture, an empty file) with the one wording every reading
/// subcommand uses: `FILE: not a recording (neither a termtrail .cast.zst
/// nor an asciicast file)` (see `termtrail_player::select::not_recording`;
/// a compressed README is none either), a `.cast` compressed with zstd
/// with `FILE: not a recording: a zstd-compressed asciicast file, …`, and a
/// plain asciicast file whose header does not read with `FILE: not a valid
/// asciicast file: WHY`, as `verify`, `ls` and `grep` say them. A `.cast.zst` that is damaged passes, and is
/// judged by whoever reads it; so do URLs and paths that cannot be opened
/// (their own error names the cause).
pub fn ensure_recording(file: &std::path::Path) -> anyhow::Result<()> {
    if termtrail_player::remote::is_url(file) || !file.is_file() {
        return Ok(());
    }
    match termtrail_player::select::not_a_recording_why(file) {
        Some(why) => anyhow::bail!("{}: {why}", file.display()),
        None => Ok(()),
    }
}

/// The warning for a configuration file that does not read, when the
/// subcommand that ran did not use it (see `config::unused_warning`).
pub fn config_warning() -> Option<String> {
    config::unused_warning()
}

/// Says on stderr when a recording read asked for a terminal larger than
/// the player replays (it was replayed clamped; docs/player.md).
fn clamp_notice() {
    if let Some(note) = termtrail_player::term::clamped_notice() {
        eprintln!("termtrail: {note}");
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        // clap's own checks: ids named by `requires`/`conflicts_with` exist,
        // no two flags share a name, and so on.
        super::Cli::command().debug_assert();
    }
}
