//! The `termtrail` binary: parses arguments, hands each subcommand to its
//! module in [`cmd`], and maps the outcome to an exit code ([`exit`]).
//! Nothing else lives here.

mod cmd;
mod exit;
mod progress;

use std::io;
use std::process::ExitCode;

use clap::Parser;

use cmd::{Cli, Command};
use exit::Exit;

fn main() -> ExitCode {
    // The configuration's `[flags]` for the subcommand go first, so the
    // command line's own come later and win (docs/cli.md).
    let (args, note) = cmd::config::with_default_flags(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are "errors" printed on stdout, exit 0.
            let _ = e.print();
            if let Some(note) = note.filter(|_| e.use_stderr()) {
                eprintln!("termtrail: {note}");
            }
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    // Its own stderr belongs to the host that runs it.
    let supervised = matches!(cli.command, Command::Supervise(_));
    let result = match cli.command {
        Command::Rec(a) => cmd::rec::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Grep(a) => cmd::grep::run(a),
        Command::Ls(a) => cmd::ls::run(a),
        Command::Upload(a) => cmd::upload::run(a),
        Command::Recover(a) => cmd::recover::run(a),
        Command::Play(a) => cmd::play::run(a),
        Command::Snapshot(a) => cmd::snapshot::run(a),
        Command::Import(a) => cmd::import::run(a),
        Command::Keygen(a) => cmd::keygen::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Attach(a) => cmd::attach::run(a),
        Command::Proxy(a) => cmd::proxy::run(a),
        Command::Exec(a) => cmd::exec::run(a),
        Command::Policy(a) => cmd::policy::run(a),
        Command::Completions(a) => cmd::completions::completions(a),
        Command::Man(a) => cmd::completions::man(a),
        Command::Supervise(a) => cmd::supervise::run(a),
    };
    // A broken configuration file is reported by every subcommand: as the
    // error of one that reads it, as a warning by the others.
    if !supervised && let Some(warning) = cmd::config_warning() {
        eprintln!("termtrail: {}", termtrail_format::text::visible(&warning));
    }
    match result {
        Ok(exit) => exit.into(),
        Err(e) => failed(&e).into(),
    }
}

/// Reports an error on stderr: [`Exit::ERROR`], except for a broken pipe
/// (`termtrail export … | head` ends quietly, like ripgrep).
fn failed(e: &anyhow::Error) -> Exit {
    if e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    }) {
        return Exit::SUCCESS;
    }
    // A full disk or a closed terminal: said alone, as every subcommand
    // says it, whatever the write was part of.
    if let Some(out) = cmd::stdout::failure(e) {
        eprintln!("termtrail: {out}");
        return Exit::ERROR;
    }
    // Causes whose text a wrapper already shows are not repeated.
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
    }
    // Messages may quote a recording, a log or a peer: no raw controls;
    // system errors in plain words, without `(os error N)`.
    let msg = cmd::outfile::plain(&msg);
    eprintln!("termtrail: {}", termtrail_format::text::visible(&msg));
    Exit::ERROR
}
