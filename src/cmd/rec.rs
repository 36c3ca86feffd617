//! `termtrail rec`: record a command (default: your shell) in a
//! pseudo-terminal, to a file or into a store.

use std::path::PathBuf;
use std::time::Duration;

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use clap::Args;
use termtrail_format::event::TermSize;
use termtrail_format::sign::SecretKey;
use termtrail_format::writer::WriterOptions;
use termtrail_recorder::rec::{MARKER_KEY, RecError, RecOptions, record};
use termtrail_store::RecordingOptions;
use termtrail_store::destination::{Destination, NewRecording};
use termtrail_store::layout::KeyParts;

use super::args::{
    BadValue, ProtectArgs, RedactArgs, StoreArg, parse_duration, secret_key, unix_now,
};
use super::outfile;
use crate::exit::Exit;

/// Text after `rec --help`'s options.
pub const HELP: &str = "\
While recording:
  Ctrl+\\        add a marker (interactive mode; --no-marker-key passes Ctrl+\\ through)
  exit / Ctrl+D  end the session (the recorded command exits)
  SIGUSR1        add a marker (useful with --headless)

Exit status: the recorded command's (128+N if it was killed by signal N);
125 when termtrail itself fails (the file then keeps every chunk written so far
and verifies as unsealed: free space if the disk is full, then `termtrail
recover FILE` seals it; a recording that cannot even start leaves no file);
2 for usage errors, refused before anything is run or printed: -o FILE exists
(--overwrite replaces it, but never a recording another recorder is still
writing), -o names no .cast.zst file, or stdin is not a terminal without
--headless.

-o FILE must end in .cast.zst: rec writes a termtrail recording (asciicast v3
inside zstd, with its hash chain and seal). asciinema 3 reads it after
`zstd -dc`; for a plain .cast, record to x.cast.zst and then
`termtrail export x.cast.zst -o x.cast`.

Without a terminal on stdin (cron, a script, a pipe, </dev/null) rec refuses to
start unless --headless says how to run: a fixed size, stdin forwarded to the
command and Ctrl+D sent at its end. It does not switch by itself, because that
changes what is recorded and what the command reads.

While rec runs, the file is locked (docs/format.md, Live recordings): `ls`
shows it as `recording`, verify says it is still being recorded, and
`recover` refuses it.

Input (keystrokes) is recorded only with --input, and never while the terminal
has echo off in line mode (password prompts: sudo, ssh, getpass, read -s): a
marker says that input was withheld. Line editors such as readline turn echo off
in raw mode and echo themselves; what is typed there is recorded.

Output is redacted before it is written (your terminal shows it unchanged):
AWS secret access keys, Authorization: Bearer tokens and PEM private-key blocks
become [REDACTED:<rule>] followed by a marker naming the rule, also when a
secret is printed in pieces. --redact NAME=REGEX adds a rule (a group named
`secret` limits what is replaced); --no-default-redactions drops the defaults.
See docs/recording.md (Secrets).

Examples:
  termtrail rec                                  your shell, to the local store
  termtrail rec -o session.cast.zst --title 'db migration'
  termtrail rec -o session.cast.zst --overwrite     replace an earlier session.cast.zst
  termtrail rec --input --sign-key ~/.termtrail/key -- bash -l
  termtrail rec --redact 'ghp=ghp_[A-Za-z0-9]{36}' --redact 'pin=PIN=(?P<secret>[0-9]+)'
  printf 'ls\\nexit\\n' | termtrail rec --headless -o out.cast.zst -- bash";

/// `rec` arguments.
#[derive(Args, Debug)]
pub struct RecArgs {
    /// Write the recording to FILE instead of the store.
    #[arg(short, long, value_name = "FILE", conflicts_with = "store")]
    #[arg(help_heading = super::headings::OUTPUT)]
    pub output: Option<PathBuf>,
    #[command(flatten, next_help_heading = super::headings::OUTPUT)]
    pub store: StoreArg,
    /// Replace -o FILE if it exists (never one a recorder is still writing).
    #[arg(long, requires = "output")]
    #[arg(help_heading = super::headings::OUTPUT)]
    pub overwrite: bool,
    /// Also record keystrokes (never while the terminal has echo off).
    #[arg(long)]
    #[arg(help_heading = super::headings::RECORDING)]
    pub input: bool,
    /// Run without a controlling terminal (scripts, CI): fixed size, stdin
    /// forwarded to the command, Ctrl+D sent when stdin ends (once the
    /// command has read what came before, and again while it runs on with
    /// nothing left to read, a few times).
    #[arg(long)]
    #[arg(help_heading = super::headings::RECORDING)]
    pub headless: bool,
    /// Terminal size COLSxROWS (headless default 80x24).
    #[arg(long, value_name = "COLSxROWS", value_parser = parse_size)]
    #[arg(help_heading = super::headings::RECORDING)]
    pub size: Option<TermSize>,
    /// Title stored in the header.
    #[arg(short, long)]
    #[arg(help_heading = super::headings::RECORDING)]
    pub title: Option<String>,
    /// Do not treat Ctrl+\ as the marker key.
    #[arg(long)]
    #[arg(help_heading = super::headings::RECORDING)]
    pub no_marker_key: bool,
    /// Longest time a chunk stays open (crash loses at most this): milliseconds (250) or a duration (1s, 500ms).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1000",
        value_parser = chunk_ms,
        hide_short_help = true
    )]
    #[arg(help_heading = super::headings::RECORDING)]
    pub chunk_ms: u64,
    /// Do not print status messages.
    #[arg(short, long)]
    #[arg(help_heading = super::headings::GENERAL)]
    pub quiet: bool,
    #[command(flatten)]
    pub redact: RedactArgs,
    /// Sign the seal with this Ed25519 secret key (see `termtrail keygen`).
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = super::headings::SIGNING)]
    pub sign_key: Option<PathBuf>,
    /// With an S3 store: most seconds the bucket may lag the live recording.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    #[arg(help_heading = super::headings::S3)]
    pub upload_interval: Duration,
    /// With an S3 store: how long to wait at the end for the upload, retrying at most 2 s apart (what is left stays in the spool).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    #[arg(help_heading = super::headings::S3)]
    pub upload_wait: Duration,
    /// Refuse to record when the recording cannot be made durable (S3 unreachable at the start).
    #[arg(long)]
    #[arg(help_heading = super::headings::S3)]
    pub strict: bool,
    #[command(flatten)]
    pub protect: ProtectArgs,
    /// The command to record (default: $SHELL).
    #[arg(last = true, value_name = "CMD")]
    #[arg(help_heading = super::headings::GENERAL)]
    pub command: Vec<String>,
}

/// `--chunk-ms` in milliseconds (a bare number counts milliseconds).
fn chunk_ms(s: &str) -> Result<u64, BadValue> {
    let d = super::args::parse_duration_ms(s)?;
    if !termtrail_format::writer::CHUNK_AGES.contains(&d) {
        return Err(BadValue(format!(
            "{s:?}: a chunk stays open from 10ms to 60s (e.g. 250, 500ms, 1s)"
        )));
    }
    Ok(d.as_millis() as u64)
}

fn parse_size(s: &str) -> Result<TermSize, BadValue> {
    TermSize::parse(s).ok_or_else(|| BadValue(format!("expected COLSxROWS like 120x40, got {s:?}")))
}

/// A recording made in a store (rather than to `-o FILE`): where it goes,
/// and the store that takes it once sealed.
struct InStore {
    dest: Destination,
    new: NewRecording,
}

impl InStore {
    /// Opens the store `-o` did not override and creates the recording in it.
    fn create(a: &RecArgs, key: Option<SecretKey>) -> Result<InStore> {
        let dest = Destination::open(
            &a.store.location()?,
            &RecordingOptions {
                upload_interval: a.upload_interval,
                strict: a.strict,
                protection: a.protect.protection()?,
                sign_key: key,
            },
        )?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let shell = format!("{}-{}", std::process::id(), unix_now());
        let new = dest
            .create(&KeyParts {
                source: "local",
                session: &host,
                shell: &shell,
                start: unix_now(),
            })
            .context("cannot create the recording in the store")?;
        Ok(InStore { dest, new })
    }

    /// Hands the recording (sealed or not) to the store and, for S3, waits
    /// up to `wait` for its upload; [`Exit::NOT_UPLOADED`] when it is still
    /// in the spool.
    fn finish(
        self,
        seal: Option<&termtrail_format::writer::SealSummary>,
        shown: &str,
        wait: Duration,
        quiet: bool,
    ) -> Option<Exit> {
        self.dest.finished(&self.new, seal);
        if !self.dest.uploads() {
            return None;
        }
        if !quiet {
            eprintln!("::: uploading to {shown}");
        }
        let status = self.dest.flush(wait);
        if status.pending.is_empty() {
            return None;
        }
        let why = status
            .errors
            .values()
            .next()
            .cloned()
            .unwrap_or_else(|| "S3 did not answer in time".into());
        eprintln!(
            "termtrail: the recording is not in S3 yet: {why}; it is kept in the spool ({}) and uploaded by the next termtrail run with this store (or `termtrail upload --store URL`)",
            self.new.path.display()
        );
        Some(Exit::NOT_UPLOADED)
    }
}

/// Runs `rec`: the recorded command's status, or what went wrong.
pub fn run(mut a: RecArgs) -> Result<Exit> {
    // Refused before anything is printed or run.
    if let Some(out) = &a.output {
        check_output(out, a.overwrite)?;
    }
    if !a.headless && !std::io::stdin().is_terminal() {
        bail!(
            "stdin is not a terminal; use `termtrail rec --headless` to record without one (scripts, cron, pipes)"
        );
    }
    let writer = WriterOptions::default().chunk_age(Duration::from_millis(a.chunk_ms));
    // Signs the seal, and the seals of spools a killed recorder left.
    let key = secret_key(a.sign_key.as_deref())?;
    let in_store = match &a.output {
        Some(_) => None,
        None => Some(InStore::create(&a, key.clone())?),
    };
    let (path, shown) = match (&a.output, &in_store) {
        (Some(p), _) => (p.clone(), p.display().to_string()),
        (None, Some(s)) => (s.new.path.clone(), s.dest.describe(&s.new)),
        (None, None) => unreachable!("one of them is set above"),
    };
    // The banner says how the recording stops: with the shell, or with
    // the command given.
    let a_shell = a.command.is_empty();
    let opts = RecOptions {
        command: std::mem::take(&mut a.command),
        headless: a.headless,
        size: a.size,
        input: a.input,
        title: a.title.take(),
        sign_key: key,
        marker_key: (!a.no_marker_key).then_some(MARKER_KEY),
        writer,
        overwrite: a.overwrite,
        echo_output: true,
        after: in_store.as_ref().and_then(|s| s.new.after.clone()),
        redaction: a.redact.redaction(),
    };
    if !a.quiet {
        eprintln!(
            "::: termtrail recording to {shown}{}",
            match (a.headless, a_shell) {
                (true, _) => "",
                (false, true) => " (Ctrl+\\ adds a marker; exit the shell to stop)",
                (false, false) => " (Ctrl+\\ adds a marker; it stops when the command ends)",
            }
        );
    }
    let result = record(&opts, &path);
    let code = match &result {
        Ok(outcome) => {
            if !a.quiet {
                eprintln!(
                    "::: recording sealed ({}): {shown} ({}, {})",
                    outcome.end,
                    super::count(outcome.summary.events, "event"),
                    termtrail_format::event::format_clock(outcome.summary.duration)
                );
            }
            Exit::of_child(outcome.exit_code)
        }
        Err(e) => {
            eprintln!("termtrail: {e}");
            if let Some(hint) = failure_hint(e, in_store.as_ref()) {
                eprintln!("termtrail: {hint}");
            }
            Exit::REC_FAILED
        }
    };
    let seal = result.as_ref().ok().map(|o| &o.summary);
    let upload = in_store.and_then(|s| s.finish(seal, &shown, a.upload_wait, a.quiet));
    // A failed recording's exit (125) says more than its upload's.
    Ok(if result.is_err() {
        code
    } else {
        upload.unwrap_or(code)
    })
}

/// Refuses `-o out` unless it names a `.cast.zst` file that may be
/// written (see [`outfile::check`]).
fn check_output(out: &std::path::Path, overwrite: bool) -> Result<()> {
    let name = out.to_string_lossy();
    if !name.ends_with(".cast.zst") {
        let shown = out.display();
        if name.ends_with(".cast") {
            bail!(
                "{shown}: rec writes a termtrail recording (.cast.zst), not plain asciicast; record to {name}.zst, then `termtrail export {name}.zst -o {name}`"
            );
        }
        bail!("{shown}: unknown extension; rec writes a termtrail recording: name it *.cast.zst");
    }
    outfile::check(out, overwrite)
}

/// What to do about a recording that failed (a full disk, say), or None.
fn failure_hint(e: &RecError, in_store: Option<&InStore>) -> Option<String> {
    match e {
        RecError::Failed { path, .. } => Some(match in_store.filter(|s| s.dest.uploads()) {
            Some(s) => format!(
                "to keep it, free space on the spool's disk: the next termtrail run with {store} (or `termtrail upload --store {store}`) seals it as interrupted and uploads it",
                store = s.dest.describe_store()
            ),
            None => format!(
                "to seal it, free space on its disk, then run `termtrail recover {}`",
                path.display()
            ),
        }),
        RecError::Start { .. } => {
            Some("free space on that disk, or record elsewhere (--store DIR or -o FILE)".into())
        }
        _ => None,
    }
}
