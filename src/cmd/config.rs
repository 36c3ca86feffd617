//! The configuration file, `$XDG_CONFIG_HOME/termtrail/config.toml` (else
//! `~/.config/termtrail/config.toml`): the store, the signing key, grep's
//! colour and default flags per subcommand (a `[flags]` table), read once.
//! It is a small TOML subset — `key = value` lines, `#` comments, strings
//! in `"…"` (with `\\ \" \n \t \uXXXX`) or `'…'`, one-line arrays of
//! strings in `[flags]` — and a key it does not know, or a line it cannot
//! read, is one error naming file:line. docs/cli.md, "Configuration",
//! lists the keys.
//!
//! Why not the `toml` crate: the file needs strings and one-line string
//! arrays, and errors must name file:line in our words; this subset is
//! ~100 lines where the crate (with serde derive for one struct) is a
//! build-time cost on every cold CI run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use termtrail_store::Location;

/// What the configuration file sets (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `store`: the default store (a directory or `s3://bucket/prefix`).
    pub store: Option<Location>,
    /// `sign_key`: the Ed25519 secret key recordings are signed with when
    /// no `--sign-key` is given (`~/` is the home directory).
    pub sign_key: Option<PathBuf>,
    /// `color`: grep's `--color` when none is given (auto, always, never).
    pub color: Option<String>,
    /// `[flags]`: arguments put before a subcommand's own, by subcommand
    /// name (`grep = ["--time", "clock"]`), in the file's order.
    pub flags: Vec<(String, Vec<String>)>,
}

/// A configuration file that does not read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
    /// The file is not UTF-8 text.
    #[error("{0}: not UTF-8 text; the configuration file must be UTF-8 (TOML)")]
    NotUtf8(String),
    /// A line that is not `key = value`, or a value of the wrong kind.
    #[error("{file}:{line}: {what}")]
    Line {
        /// The file.
        file: String,
        /// Its line, from 1.
        line: usize,
        /// What is wrong.
        what: String,
    },
}

/// Where the configuration file is looked for.
pub fn path() -> Option<PathBuf> {
    let home = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    home("XDG_CONFIG_HOME")
        .or_else(|| home("HOME").map(|h| h.join(".config")))
        .map(|d| d.join("termtrail").join("config.toml"))
}

/// Whether the subcommand running asked for the configuration ([`get`]).
static CONSULTED: AtomicBool = AtomicBool::new(false);

/// The configuration, read once (empty when there is no file).
pub fn get() -> Result<&'static Config, &'static ConfigError> {
    CONSULTED.store(true, Ordering::Relaxed);
    read()
}

/// The configuration file's contents, read once.
fn read() -> Result<&'static Config, &'static ConfigError> {
    static CONFIG: OnceLock<Result<Config, ConfigError>> = OnceLock::new();
    CONFIG
        .get_or_init(|| match path() {
            Some(p) => load(&p),
            None => Ok(Config::default()),
        })
        .as_ref()
}

/// What to say of a configuration file that does not read when the
/// subcommand that ran never asked for it (`verify FILE`, `export FILE`,
/// `keygen`, …): a warning, so a broken file is reported by every
/// subcommand, once. A subcommand that asked for it has already stopped
/// with it as its error; None then, and when the file reads.
pub fn unused_warning() -> Option<String> {
    if CONSULTED.load(Ordering::Relaxed) {
        return None;
    }
    read().err().map(|e| {
        format!(
            "warning: {e}; not used here, but commands that use the configuration file stop at it"
        )
    })
}

/// Reads the configuration file at `path` (none there: empty).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(ConfigError::NotUtf8(name));
        }
        Err(e) => return Err(ConfigError::Read(name, e)),
    };
    parse(&text, &name)
}

/// Parses configuration text; `name` is the file named in errors.
pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    // Inside the `[flags]` table (TOML: a table's keys follow its header).
    let mut in_flags = false;
    // The subcommands `[flags]` may name, from the CLI's definition, built
    // once and only for a file with that table.
    let mut known: Option<Vec<String>> = None;
    for (i, raw) in text.lines().enumerate() {
        let err = |what: String| ConfigError::Line {
            file: name.to_string(),
            line: i + 1,
            what,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            let table = line.split('#').next().unwrap_or("").trim();
            if table != "[flags]" || in_flags {
                return Err(err(format!(
                    "{table} is not a table termtrail reads (the one table is [flags], once, after the top-level keys)"
                )));
            }
            in_flags = true;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(err("expected `key = value`".into()));
        };
        let (key, value) = (key.trim(), value.trim());
        if in_flags {
            let known = known.get_or_insert_with(subcommands);
            if !known.iter().any(|k| k == key) {
                return Err(err(format!(
                    "[flags]: {key:?} is not a subcommand (known: {})",
                    known.join(", ")
                )));
            }
            if config.flags.iter().any(|(k, _)| k == key) {
                return Err(err(format!("[flags]: {key} is given twice")));
            }
            let words = array(value).map_err(|w| err(format!("[flags] {key}: {w}")))?;
            config.flags.push((key.to_string(), words));
            continue;
        }
        let text = || string(value).map_err(|w| err(format!("{key}: {w}")));
        match key {
            "store" => {
                // `~/recs` as for sign_key (a URL is left as it is).
                let value = text()?;
                let value = match value.starts_with("~/") {
                    true => expand_home(&value).to_string_lossy().into_owned(),
                    false => value,
                };
                let l = Location::parse(&value).map_err(|e| err(format!("store: {e}")))?;
                config.store = Some(l);
            }
            "sign_key" => config.sign_key = Some(expand_home(&text()?)),
            "color" => {
                let text = text()?;
                if !["auto", "always", "never"].contains(&text.as_str()) {
                    return Err(err(format!(
                        "color: {text:?} is not one of auto, always, never"
                    )));
                }
                config.color = Some(text);
            }
            _ => {
                return Err(err(format!(
                    "unknown key {key:?} (known: store, sign_key, color, and the [flags] table)"
                )));
            }
        }
    }
    Ok(config)
}

/// A TOML string value (basic `"…"` or literal `'…'`), with an optional
/// `# comment` after it.
/// Why a value is not a string (`config.toml`'s one value type).
#[derive(Debug, thiserror::Error)]
enum StringError {
    #[error("expected a string in quotes (\"…\")")]
    NotQuoted,
    #[error("unterminated string")]
    Unterminated,
    #[error("bad escape \\{0}")]
    BadEscape(String),
    #[error("control character in a string")]
    Control,
    #[error("unexpected {0:?} after the string")]
    After(String),
    #[error("expected an array of strings ([\"--flag\", \"value\"])")]
    NotArray,
    #[error("\"--\" cannot be a default flag")]
    DoubleDash,
}

fn string(v: &str) -> Result<String, StringError> {
    let (out, rest) = string_prefix(v)?;
    let rest = rest.trim();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return Err(StringError::After(rest.to_string()));
    }
    Ok(out)
}

/// A one-line TOML array of strings (`["--time", "clock"]`, a trailing
/// comma allowed), with an optional `# comment` after it. `--` is refused:
/// after it a subcommand's own flags would be read as its command.
fn array(v: &str) -> Result<Vec<String>, StringError> {
    let mut rest = v
        .strip_prefix('[')
        .ok_or(StringError::NotArray)?
        .trim_start();
    let mut words = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix(']') {
            let after = after.trim();
            if !(after.is_empty() || after.starts_with('#')) {
                return Err(StringError::After(after.to_string()));
            }
            return Ok(words);
        }
        let (word, after) = string_prefix(rest)?;
        if word == "--" {
            return Err(StringError::DoubleDash);
        }
        words.push(word);
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None if rest.starts_with(']') => {}
            None if rest.is_empty() => return Err(StringError::Unterminated),
            None => return Err(StringError::After(rest.to_string())),
        }
    }
}

/// The string at the start of `v` and what follows it.
fn string_prefix(v: &str) -> Result<(String, &str), StringError> {
    let mut chars = v.chars();
    let quote = chars.next().filter(|c| *c == '"' || *c == '\'');
    let Some(quote) = quote else {
        return Err(StringError::NotQuoted);
    };
    let mut out = String::new();
    loop {
        match chars.next() {
            None => return Err(StringError::Unterminated),
            Some(c) if c == quote => break,
            Some('\\') if quote == '"' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let c = u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == 4)
                        .and_then(char::from_u32)
                        .ok_or_else(|| StringError::BadEscape(format!("u{hex}")))?;
                    out.push(c);
                }
                other => return Err(StringError::BadEscape(other.unwrap_or(' ').to_string())),
            },
            Some(c) if c.is_control() && c != '\t' => {
                return Err(StringError::Control);
            }
            Some(c) => out.push(c),
        }
    }
    Ok((out, chars.as_str()))
}

/// The subcommands a `[flags]` key may name (the hidden ones excluded).
fn subcommands() -> Vec<String> {
    use clap::CommandFactory;
    super::Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect()
}

/// The command line with the configuration's `[flags]` for its
/// subcommand put right after the subcommand's name, so flags given on
/// the command line come later and win (`args_override_self`). A
/// configuration that does not read adds nothing here: the subcommand
/// reports it (an error, or a warning when it does not use the file).
/// The note says where added flags came from, for clap's errors.
pub fn with_default_flags(
    mut args: Vec<std::ffi::OsString>,
) -> (Vec<std::ffi::OsString>, Option<String>) {
    let Some(sub) = args.get(1).and_then(|a| a.to_str()).map(str::to_string) else {
        return (args, None);
    };
    let Ok(config) = read() else {
        return (args, None);
    };
    let Some((_, words)) = config.flags.iter().find(|(k, _)| *k == sub) else {
        return (args, None);
    };
    let file = path().map(|p| p.display().to_string()).unwrap_or_default();
    let note = format!(
        "note: {file} [flags] puts these before the command line's: {sub} {}",
        words.join(" ")
    );
    args.splice(2..2, words.iter().map(std::ffi::OsString::from));
    (args, Some(note))
}

/// `~/x` as `$HOME/x`.
fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_keys() {
        let c = parse(
            "# termtrail\n\nstore = \"s3://audit/prod\"  # the bucket\nsign_key = '/etc/k.key'\ncolor = \"never\"\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(c.store, Some(Location::parse("s3://audit/prod").unwrap()));
        assert_eq!(c.sign_key, Some(PathBuf::from("/etc/k.key")));
        assert_eq!(c.color.as_deref(), Some("never"));
        let c = parse("store = \"/r\\u00e9c\"", "c.toml").unwrap();
        assert_eq!(c.store, Some(Location::Local(PathBuf::from("/réc"))));
        assert_eq!(parse("", "c.toml").unwrap(), Config::default());
    }

    #[test]
    fn reads_default_flags_per_subcommand() {
        let c = parse(
            "color = 'never'\n\n[flags]  # defaults\ngrep = [\"--time\", 'clock', \"-S\",]  # clock times\nls = []\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(c.color.as_deref(), Some("never"));
        let words = |v: &[&str]| v.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            c.flags,
            vec![
                ("grep".to_string(), words(&["--time", "clock", "-S"])),
                ("ls".to_string(), vec![]),
            ]
        );
        // A top-level key after the table belongs to the table (TOML).
        let e = parse("[flags]\nstore = ['/x']", "c.toml").unwrap_err();
        assert!(e.to_string().contains("not a subcommand"), "{e}");
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        for (text, line, what) in [
            ("store = /x", 1, "expected a string"),
            ("\n\nstroe = \"/x\"", 3, "unknown key \"stroe\""),
            ("threads = 4", 1, "unknown key \"threads\""),
            ("[termtrail]", 1, "not a table termtrail reads"),
            ("[flags]\ngrep = \"-S\"", 2, "expected an array"),
            ("[flags]\nsupervise = []", 2, "not a subcommand"),
            ("[flags]\ngrep = [\"--\"]", 2, "cannot be a default flag"),
            ("[flags]\ngrep = [\"-S\"\n", 2, "unterminated"),
            ("[flags]\ngrep = []\ngrep = []", 3, "twice"),
            ("[flags]\n[flags]", 2, "not a table"),
            ("store", 1, "expected `key = value`"),
            ("store = \"/x", 1, "unterminated"),
            ("store = \"/x\" y", 1, "unexpected"),
            ("color = \"pink\"", 1, "not one of"),
            ("store = \"\\q\"", 1, "bad escape"),
            ("store = \"s3://\"", 1, "store:"),
        ] {
            let e = parse(text, "c.toml").unwrap_err().to_string();
            assert!(e.starts_with(&format!("c.toml:{line}: ")), "{text}: {e}");
            assert!(e.contains(what), "{text}: {e}");
        }
    }
}
