//! `termtrail grep`: search what appeared on the terminal (or was typed)
//! across recordings, printing each hit as it is found.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use termtrail_format::pipeline::Flow;
use termtrail_format::reader::ContentCheck;
use termtrail_format::text::visible;
use termtrail_player::grep::{Pattern, PatternOptions, SearchOptions, search_all};
use termtrail_player::hits::{Mode, PrintOptions, Totals, print_result, summary_json};

use super::args::{FilterArgs, Filters, StoreArg};
use super::locate::targets;
use crate::exit::Exit;
use crate::progress::Progress;

/// Text after `grep --help`'s options.
pub const HELP: &str = "\
PATTERN is a Rust regex (https://docs.rs/regex) matched against each line of
text that appeared on the terminal: escape sequences are removed first, so a
match is found even with colour codes between its letters or split across
output events; cursor movements and CR/LF end a line. Each hit prints

  RECORDING:OFFSET:SCREEN LINE

where OFFSET ([h:]mm:ss.mmm) is when the match was complete (give it to
`play --start` or `snapshot --at`) and SCREEN LINE is the terminal row it was
on at that moment (-C adds rows around it). Every recording is verified as it is read: hits come
only from verified chunks, and a damaged recording is reported on stderr. In a
sealed recording, segments whose SHA-256 matches the seal are taken as sealed
and only the chunks hits come from are hashed again; --hash-every-chunk hashes
every chunk, as `termtrail verify` does (see docs/player.md).

PATH is a recording or a directory searched recursively, an s3:// URL, or a
recording named in the store (an id or unique id prefix, its file name, or
@last); without PATH the whole store is searched: --store, else
$TERMTRAIL_STORE, else the config file's `store`, else the local store
(docs/cli.md, \"Stores\"). Files that are not recordings are reported and
skipped. --since and --until take RFC 3339 (2026-11-20T14:30:07.25Z), a
date (2026-11-20), a time ago (90m, 2h ago, 7d), today or yesterday; they
select hits by wall-clock time, both ends included to the millisecond (so
the `at` of a --json hit given as --until still holds that hit).

Text from recordings (hits, titles, ids, paths, errors) is printed with
terminal controls made visible: ESC as ^[, other C0 controls as ^X, C1
controls and bidi overrides as \\u{XXXX} (docs/player.md, \"Recorded text on
your terminal\"); --json keeps the exact text, with those characters escaped.

Exit status: 0 if there was a hit, 1 if none, 2 if an error happened (a file
could not be read, was not a recording, or does not verify).

Examples:
  termtrail grep AccessDenied                      # the whole local store
  termtrail grep AccessDenied @last                # the latest recording
  termtrail grep --store s3://audit/prod -c denied
  termtrail grep -i 'access ?denied' --since 7d -C 2
  termtrail grep -F 'rm -rf' --input --principal alice ./recordings
  termtrail grep -l 'panicked at' --session 7f3c…
  termtrail grep --json Traceback | jq .at";

/// `grep` arguments.
#[derive(Args, Debug)]
pub struct GrepArgs {
    /// The regex (or, with -F, the text) to look for.
    #[arg(value_name = "PATTERN", required_unless_present = "regexp")]
    pub pattern: Option<String>,
    /// A pattern (may be repeated: any of them matches); PATTERN is then a PATH.
    #[arg(short = 'e', long, value_name = "PATTERN")]
    pub regexp: Vec<String>,
    /// Recordings or directories: paths, s3:// URLs, or names in the store (an id or id prefix, a file name, @last); default: the whole store.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArg,
    /// Ignore case.
    #[arg(short = 'i', long)]
    pub ignore_case: bool,
    /// Match whole words only.
    #[arg(short = 'w', long)]
    pub word_regexp: bool,
    /// PATTERN is a literal string, not a regex.
    #[arg(short = 'F', long)]
    pub fixed_strings: bool,
    /// Print only the names of recordings with hits.
    #[arg(short = 'l', long, conflicts_with_all = ["count", "json"])]
    pub files_with_matches: bool,
    /// Print the number of matching lines per recording.
    #[arg(short = 'c', long, conflicts_with = "json")]
    pub count: bool,
    /// Stop reading a recording after NUM matching lines.
    #[arg(short = 'm', long, value_name = "NUM")]
    pub max_count: Option<u64>,
    /// Show NUM screen rows above and below each hit.
    #[arg(short = 'C', long, value_name = "NUM", default_value = "0")]
    pub context: usize,
    /// Print nothing; only the exit status tells.
    #[arg(short = 'q', long, conflicts_with_all = ["count", "json", "files_with_matches"])]
    pub quiet: bool,
    /// JSON Lines: one object per hit, then a summary (schema in docs/player.md).
    #[arg(long)]
    pub json: bool,
    /// Search what was typed (recordings made with --input) instead of output.
    #[arg(long)]
    pub input: bool,
    /// Hash every chunk against the chain, as `verify` does, instead of
    /// taking segments that match the seal's hashes as sealed (slower).
    #[arg(long)]
    pub hash_every_chunk: bool,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never (default: the config file's `color`, else auto).
    #[arg(long, value_name = "WHEN")]
    pub color: Option<ColorWhen>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Recordings searched at once (default: one per CPU).
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,
}

/// When to colour output.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl GrepArgs {
    /// The patterns: PATTERN, or those given with -e (PATTERN is then the
    /// first path).
    fn take_patterns(&mut self) -> Vec<String> {
        if self.regexp.is_empty() {
            return self.pattern.iter().cloned().collect();
        }
        if let Some(p) = self.pattern.take() {
            self.paths.insert(0, PathBuf::from(p));
        }
        self.regexp.clone()
    }

    /// What is printed.
    fn mode(&self) -> Mode {
        if self.quiet {
            Mode::Quiet
        } else if self.files_with_matches {
            Mode::Files
        } else if self.count {
            Mode::Count
        } else if self.json {
            Mode::Json
        } else {
            Mode::Lines
        }
    }

    /// The search options for `files` recordings on `cpus` CPUs.
    fn search_options(
        &self,
        filters: Filters,
        mode: Mode,
        files: usize,
        cpus: usize,
    ) -> SearchOptions {
        SearchOptions {
            input: self.input,
            max_count: self.max_count,
            screen: matches!(mode, Mode::Lines | Mode::Json),
            context: self.context,
            since_us: filters.window.since_us,
            until_us: filters.window.until_us,
            filter: filters.meta,
            // Few files: let each decode on several threads.
            threads: (cpus / files.clamp(1, cpus)).clamp(1, 4),
            cache: termtrail_player::seek::cache_dir(),
            content: if self.hash_every_chunk {
                ContentCheck::EveryChunk
            } else {
                ContentCheck::SealedFrames
            },
        }
    }

    /// The print options.
    fn print_options(&self, mode: Mode) -> Result<PrintOptions> {
        let configured = match super::args::config()?.color.as_deref() {
            Some("always") => ColorWhen::Always,
            Some("never") => ColorWhen::Never,
            _ => ColorWhen::Auto,
        };
        let color = match self.color.unwrap_or(configured) {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        };
        Ok(PrintOptions {
            mode,
            color,
            context: self.context,
        })
    }
}

/// Runs `grep`.
pub fn run(mut a: GrepArgs) -> Result<Exit> {
    let started = std::time::Instant::now();
    let patterns = a.take_patterns();
    let pattern = Pattern::new(
        &patterns,
        PatternOptions {
            ignore_case: a.ignore_case,
            word: a.word_regexp,
            fixed: a.fixed_strings,
        },
    )
    .map_err(anyhow::Error::msg)?;
    let filters = a.filter.filters()?;
    let mode = a.mode();
    let found = targets(&a.paths, &a.store, filters.window.since_secs())?;
    found.note_if_empty();
    let (files, missing) = found.found;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = a.threads.unwrap_or(cpus).max(1);
    let opts = a.search_options(filters, mode, files.len(), cpus);
    let print = a.print_options(mode)?;
    let mut totals = Totals::default();
    for (p, e) in &missing {
        eprintln!("termtrail: {}: {}", visible(p), visible(&e.to_string()));
        totals.errors += 1;
    }
    let mut bar = Progress::new("searching");
    let mut failure: Option<io::Error> = None;
    let mut done = 0usize;
    let stdout = io::stdout();
    search_all(&files, &pattern, &opts, jobs, &mut |path, result| {
        done += 1;
        let mut out = stdout.lock();
        let written = bar.suspend(|| {
            print_result(
                &mut out,
                &mut io::stderr(),
                path,
                &result,
                &pattern,
                &print,
                &mut totals,
            )
            .and_then(|()| out.flush())
        });
        bar.update(done, files.len());
        if let Err(e) = written {
            failure = Some(e);
            return Flow::Stop;
        }
        // -q: the first hit decides.
        if mode == Mode::Quiet && totals.hits > 0 {
            Flow::Stop
        } else {
            Flow::Continue
        }
    });
    drop(bar);
    if let Some(e) = failure {
        return Err(e.into());
    }
    if mode == Mode::Json {
        let mut out = stdout.lock();
        writeln!(
            out,
            "{}",
            summary_json(&totals, started.elapsed().as_millis())
        )?;
        out.flush()?;
    }
    super::clamp_notice();
    Ok(status(&totals, mode))
}

/// The exit status: a hit, none, or an error (with -q a hit wins over
/// errors, since the search stopped at it).
fn status(totals: &Totals, mode: Mode) -> Exit {
    if totals.errors > 0 && !(mode == Mode::Quiet && totals.hits > 0) {
        Exit::ERROR
    } else if totals.hits > 0 {
        Exit::SUCCESS
    } else {
        Exit::NO_MATCH
    }
}
