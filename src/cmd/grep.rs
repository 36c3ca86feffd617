//! `termtrail grep`: search what appeared on the terminal (or was typed)
//! across recordings, printing each hit as it is found.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use termtrail_format::pipeline::Flow;
use termtrail_format::reader::ContentCheck;
use termtrail_format::text::visible;
use termtrail_player::grep::{EveryLine, Pattern, PatternOptions, SearchOptions, search_all};
use termtrail_player::hits::{Mode, PrintOptions, TimeShown, Totals, print_result, summary_json};

use super::args::{FilterArgs, Filters, StoreArg};
use super::locate::targets;
use crate::exit::Exit;
use crate::progress::Progress;

/// Text after `grep --help`'s options.
pub const HELP: &str = "\
PATTERN is a Rust regex (https://docs.rs/regex) matched against each line of
text that appeared on the terminal: escape sequences are removed first, so a
match is found even with colour codes between its letters or split across
output events; cursor movements and CR/LF end a line. Each hit prints the
matched line, whole:

  RECORDING:CLOCK OFFSET:LINE

CLOCK is when the match was complete, RFC 3339 UTC with milliseconds (the
recording's start plus OFFSET); OFFSET is the same moment from the start of
the recording, [h:]mm:ss.mmm (--time offset|clock|both chooses; a recording
without a start time shows OFFSET only). RECORDING is shown relative to the
current directory or the local store; --heading prints it once above its
hits (the default on a terminal), --no-filename not at all. -A/-B/-C add
lines of text after/before the hit, printed RECORDING-TIME-LINE, with `--`
between groups that do not touch; -v makes the lines that do not match the
hits; -o prints only the matched parts. --screen adds, below each hit, the
terminal row the text was on at that moment, labelled `  screen: `
(--screen-context N adds N rows around it, labelled `  screen- `).

Every recording is verified as it is read: hits come
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
  termtrail grep -S -o 'error: \\w+' --time clock -I --no-heading
  termtrail grep -v '^\\$' --screen rec.cast.zst
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
    /// Print the number of hits (matching lines; with -v, lines that do
    /// not match) per recording.
    #[arg(short = 'c', long, conflicts_with = "json")]
    pub count: bool,
    /// Stop reading a recording after NUM matching lines (0: no hits, exit 1).
    #[arg(short = 'm', long, value_name = "NUM", value_parser = count_arg)]
    pub max_count: Option<u64>,
    /// Show NUM lines of text after each hit.
    #[arg(short = 'A', long, value_name = "NUM", value_parser = lines_arg)]
    pub after_context: Option<usize>,
    /// Show NUM lines of text before each hit.
    #[arg(short = 'B', long, value_name = "NUM", value_parser = lines_arg)]
    pub before_context: Option<usize>,
    /// Show NUM lines of text before and after each hit (-A/-B win).
    #[arg(short = 'C', long, value_name = "NUM", value_parser = lines_arg)]
    pub context: Option<usize>,
    /// Hits are the lines that do NOT match.
    #[arg(short = 'v', long)]
    pub invert_match: bool,
    /// Print only the matched parts, each on its own line.
    #[arg(short = 'o', long)]
    pub only_matching: bool,
    /// Ignore case when the pattern has no upper-case letter.
    #[arg(short = 'S', long)]
    pub smart_case: bool,
    /// After each hit, print the screen row it was on at that moment,
    /// indented and labelled "screen:".
    #[arg(long)]
    pub screen: bool,
    /// With the screen row, NUM rows above and below it (implies --screen).
    #[arg(long, value_name = "NUM", value_parser = lines_arg)]
    pub screen_context: Option<usize>,
    /// Print the recording's name once above its hits (default on a
    /// terminal).
    #[arg(long, overrides_with = "no_heading")]
    pub heading: bool,
    /// Print the recording's name on every hit line (default when not on a
    /// terminal).
    #[arg(long, overrides_with = "heading")]
    pub no_heading: bool,
    /// Do not print recordings' names on hit lines (nor -c's counts).
    #[arg(short = 'I', long)]
    pub no_filename: bool,
    /// Which time each hit shows: offset from the start (mm:ss.mmm,
    /// h:mm:ss.mmm from an hour on), clock (RFC 3339 UTC), or both.
    #[arg(long, value_name = "WHICH", default_value = "both")]
    pub time: TimeArg,
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
    #[arg(short = 'j', long, value_name = "N", help_heading = super::headings::GENERAL)]
    pub threads: Option<usize>,
}

/// Which time a hit shows.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeArg {
    /// The offset from the recording's start, mm:ss.mmm (h:mm:ss.mmm from
    /// an hour on).
    Offset,
    /// The wall-clock time, RFC 3339 UTC with milliseconds.
    Clock,
    /// Both: clock, a space, offset.
    Both,
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
            screen: mode == Mode::Json || (mode == Mode::Lines && self.screen_wanted()),
            context: self.screen_context.unwrap_or(0),
            lines: EveryLine {
                invert: self.invert_match,
                before: self.before_context.or(self.context).unwrap_or(0),
                after: self.after_context.or(self.context).unwrap_or(0),
            },
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
        let lines = self.before_context.or(self.context).unwrap_or(0)
            + self.after_context.or(self.context).unwrap_or(0);
        Ok(PrintOptions {
            mode,
            color,
            context: lines > 0,
            screen: self.screen_wanted(),
            only_matching: self.only_matching,
            heading: if self.heading || self.no_heading {
                self.heading
            } else {
                io::stdout().is_terminal()
            },
            filename: !self.no_filename,
            time: match self.time {
                TimeArg::Offset => TimeShown::Offset,
                TimeArg::Clock => TimeShown::Clock,
                TimeArg::Both => TimeShown::Both,
            },
        })
    }

    /// Whether screen rows are printed.
    fn screen_wanted(&self) -> bool {
        self.screen || self.screen_context.is_some()
    }

    /// The pattern options: -S ignores case unless a pattern has an
    /// upper-case letter (escapes such as `\S` do not count).
    fn pattern_options(&self, patterns: &[String]) -> PatternOptions {
        let upper = |p: &String| {
            let mut chars = p.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    chars.next();
                } else if c.is_uppercase() {
                    return true;
                }
            }
            false
        };
        PatternOptions {
            ignore_case: self.ignore_case || (self.smart_case && !patterns.iter().any(upper)),
            word: self.word_regexp,
            fixed: self.fixed_strings,
        }
    }
}

/// Runs `grep`.
pub fn run(mut a: GrepArgs) -> Result<Exit> {
    let started = std::time::Instant::now();
    let patterns = a.take_patterns();
    let options = a.pattern_options(&patterns);
    let pattern = Pattern::new(&patterns, options)
        .map_err(|e| pattern_error(&e, &patterns, options, a.fixed_strings))?;
    let filters = a.filter.filters()?;
    let mode = a.mode();
    // -m 0: no line may be a hit, so none is searched for (as ripgrep).
    if a.max_count == Some(0) {
        return Ok(Exit::NO_MATCH);
    }
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
    let cwd = std::env::current_dir().ok();
    let store = termtrail_store::local::LocalStore::default_root();
    search_all(&files, &pattern, &opts, jobs, &mut |path, result| {
        done += 1;
        // JSON keeps the whole name; lines show a shorter one.
        let path = if mode == Mode::Json {
            path.to_string()
        } else {
            label(path, cwd.as_deref(), store.as_deref())
        };
        let path = path.as_str();
        let mut out = super::stdout::lock();
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
        let mut out = super::stdout::lock();
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

/// A pattern that does not compile, said with the pattern as typed (not
/// Debug-escaped) and, of several `-e`, the one that is bad.
fn pattern_error(
    e: &termtrail_player::grep::PatternError,
    patterns: &[String],
    options: PatternOptions,
    fixed: bool,
) -> anyhow::Error {
    let bad = (patterns.len() > 1)
        .then(|| {
            patterns.iter().find_map(|p| {
                Pattern::new(std::slice::from_ref(p), options)
                    .err()
                    .map(|e| (p, e))
            })
        })
        .flatten();
    let (shown, problem) = match &bad {
        Some((p, e)) => (format!("-e '{}'", visible(p)), e.problem.as_str()),
        None => (
            format!("'{}'", visible(patterns.first().map_or("", String::as_str))),
            e.problem.as_str(),
        ),
    };
    let hint = if fixed {
        ""
    } else {
        " (use -F to search for the text as it is)"
    };
    anyhow::anyhow!("invalid regex {shown}: {}{hint}", visible(problem))
}

/// A count flag's value that is not a whole number (`-A x`, `-m x`).
#[derive(Debug, thiserror::Error)]
enum CountError {
    /// `-A/-B/-C/--screen-context`.
    #[error("takes a number of lines (0, 1, 2, …), not '{0}'")]
    Lines(String),
    /// `-m`.
    #[error("takes a number of matching lines (0, 1, 2, …), not '{0}'")]
    Hits(String),
}

/// A number of lines (`-A/-B/-C`, `--screen-context`).
fn lines_arg(v: &str) -> Result<usize, CountError> {
    v.parse().map_err(|_| CountError::Lines(v.to_string()))
}

/// A count of hits (`-m`).
fn count_arg(v: &str) -> Result<u64, CountError> {
    v.parse().map_err(|_| CountError::Hits(v.to_string()))
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

/// A recording's name as hit lines show it: relative to the current
/// directory when it is under it, else to the local store when under that,
/// else as given.
fn label(name: &str, cwd: Option<&std::path::Path>, store: Option<&std::path::Path>) -> String {
    let path = std::path::Path::new(name);
    for base in [cwd, store].into_iter().flatten() {
        if path.is_absolute()
            && let Ok(rest) = path.strip_prefix(base)
            && !rest.as_os_str().is_empty()
        {
            return rest.display().to_string();
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn labels_are_relative_to_the_directory_or_the_store() {
        let (cwd, store) = (Path::new("/home/a/w"), Path::new("/home/a/.local/share/t"));
        let l = |n: &str| label(n, Some(cwd), Some(store));
        assert_eq!(l("/home/a/w/recs/x.cast.zst"), "recs/x.cast.zst");
        assert_eq!(
            l("/home/a/.local/share/t/2026/x.cast.zst"),
            "2026/x.cast.zst"
        );
        assert_eq!(l("/tmp/x.cast"), "/tmp/x.cast");
        assert_eq!(l("recs/x.cast"), "recs/x.cast");
        assert_eq!(l("s3://b/k.cast.zst"), "s3://b/k.cast.zst");
    }
}
