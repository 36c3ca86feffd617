//! Flag groups several subcommands share (store, S3 protection, timeouts,
//! TLS, filters), each defined once and flattened where it is used, with the
//! value parsers and the conversions into the crates' option types.
//!
//! clap lists a flattened group's flags where the group is flattened, in the
//! order they are declared here; a group's `next_help_heading` stays in force
//! for the flags after it, so the flags that follow a group name their own
//! heading (see [`super::headings`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use termtrail_recorder::secrets::{PromptRules, Redaction, Rule};
use termtrail_store::Location;
use termtrail_store::local::LocalStore;

/// `--store` for every command that reads or writes a store.
#[derive(Args, Debug, Default, Clone)]
pub struct StoreArg {
    /// Store: a directory, or s3://BUCKET/PREFIX (default: $TERMTRAIL_STORE, then the config file's `store`, then $XDG_DATA_HOME/termtrail/recordings).
    #[arg(long, value_name = "DIR|URL", value_parser = Location::parse)]
    pub store: Option<Location>,
}

/// Where the store in use was named (said when it holds nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFrom {
    /// `--store`.
    Flag,
    /// `TERMTRAIL_STORE`.
    Env,
    /// The configuration file's `store`.
    Config,
    /// The local default store.
    Default,
}

impl StoreArg {
    /// The store named: `--store`, else `TERMTRAIL_STORE`, else the
    /// configuration file's `store`, else the local store.
    pub fn location(&self) -> Result<Location> {
        Ok(self.chosen()?.0)
    }

    /// [`StoreArg::location`] for reading: a local store named by the
    /// flag, `TERMTRAIL_STORE` or the configuration file that does not
    /// exist is an error (a typo); the default one that does not exist yet
    /// is a store with no recordings (None).
    pub fn existing(&self) -> Result<Option<Location>> {
        let (location, from) = self.chosen()?;
        if let Location::Local(dir) = &location
            && !dir.exists()
        {
            let named = match from {
                StoreFrom::Flag => "--store",
                StoreFrom::Env => "TERMTRAIL_STORE",
                StoreFrom::Config => "the configuration file's store",
                StoreFrom::Default => return Ok(None),
            };
            anyhow::bail!(
                "{}: no such directory (named by {named}); check the path",
                dir.display()
            );
        }
        Ok(Some(location))
    }

    /// [`StoreArg::location`], with where it was named.
    pub fn chosen(&self) -> Result<(Location, StoreFrom)> {
        if let Some(l) = &self.store {
            return Ok((l.clone(), StoreFrom::Flag));
        }
        if let Some(v) = std::env::var_os("TERMTRAIL_STORE").filter(|v| !v.is_empty()) {
            let v = v.to_string_lossy();
            let l = Location::parse(&v).map_err(|e| anyhow::anyhow!("TERMTRAIL_STORE: {e}"))?;
            return Ok((l, StoreFrom::Env));
        }
        if let Some(l) = &config()?.store {
            return Ok((l.clone(), StoreFrom::Config));
        }
        let local = store_root(None)?.root().to_path_buf();
        Ok((Location::Local(local), StoreFrom::Default))
    }
}

/// The configuration file, read once; a bad one is an error naming
/// file:line.
pub fn config() -> Result<&'static super::config::Config> {
    super::config::get().map_err(|e| anyhow::anyhow!("{e}"))
}

/// How a store location is written on the command line (a directory's
/// path, or the URL).
pub fn location_text(l: &Location) -> String {
    match l {
        Location::Local(p) => p.display().to_string(),
        Location::S3 { bucket, prefix } => {
            format!("s3://{bucket}/{}", prefix.trim_end_matches('/'))
                .trim_end_matches('/')
                .to_string()
        }
    }
}

/// How recordings are protected in an S3 bucket (`rec`, `serve`, `proxy`).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = super::headings::S3)]
pub struct ProtectArgs {
    /// Keep each recording under S3 Object Lock for DAYS (the bucket needs Object Lock enabled).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub retain_days: Option<u32>,
    /// Object Lock mode for --retain-days (default governance; compliance cannot be undone by anyone).
    #[arg(long, value_enum, value_name = "MODE", requires = "retain_days")]
    pub lock_mode: Option<LockModeArg>,
    /// Server-side encryption: AES256 (SSE-S3) or aws:kms (SSE-KMS).
    #[arg(long, value_name = "KIND", value_parser = ["AES256", "aws:kms"])]
    pub sse: Option<String>,
    /// KMS key id or ARN for --sse aws:kms (default: the account's aws/s3 key).
    #[arg(long, value_name = "ID", requires = "sse")]
    pub kms_key_id: Option<String>,
}

/// Object Lock modes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockModeArg {
    /// Deletable early only with s3:BypassGovernanceRetention.
    Governance,
    /// Not deletable by anyone until it expires.
    Compliance,
}

impl ProtectArgs {
    /// The S3 protection options as the store takes them.
    pub fn protection(&self) -> Result<termtrail_store::s3::Protection> {
        use termtrail_store::s3::{LockMode, Protection, Sse};
        let retain = self.retain_days.map(|days| {
            let mode = match self.lock_mode {
                Some(LockModeArg::Compliance) => LockMode::Compliance,
                _ => LockMode::Governance,
            };
            (mode, days)
        });
        let sse = match (self.sse.as_deref(), &self.kms_key_id) {
            (None, _) => None,
            (Some("AES256"), Some(_)) => bail!("--kms-key-id goes with --sse aws:kms, not AES256"),
            (Some("AES256"), None) => Some(Sse::Aes256),
            (Some(_), key) => Some(Sse::Kms(key.clone())),
        };
        Ok(Protection { retain, sse })
    }
}

/// How long a hosted shell lives (`serve`, `proxy`).
#[derive(Args, Debug)]
#[command(next_help_heading = super::headings::SESSIONS)]
pub struct TimeoutArgs {
    /// End shells without traffic (heartbeats excepted) after this long.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// End a shell (and seal its recording) this long after its last client left.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub grace: Duration,
}

/// The listener's TLS certificate and key (`serve`, `proxy`).
#[derive(Args, Debug)]
#[command(next_help_heading = super::headings::TLS)]
pub struct TlsArgs {
    /// TLS certificate chain (PEM); with --tls-key, clients connect with wss://.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The TLS acceptor, when a certificate and key are given.
    pub fn acceptor(self) -> Result<Option<tokio_rustls::TlsAcceptor>> {
        match self.tls_cert.zip(self.tls_key) {
            Some((cert, key)) => Ok(Some(termtrail_recorder::tls::acceptor(&cert, &key)?)),
            None => Ok(None),
        }
    }
}

/// `--ca-cert` for the commands that connect to a host (`attach`, `exec`,
/// `proxy`).
#[derive(Args, Debug)]
#[command(next_help_heading = super::headings::TLS)]
pub struct CaCertArg {
    /// Extra trusted CA certificate (PEM) for wss:// hosts with a private or self-signed certificate.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

impl CaCertArg {
    /// The TLS client configuration for a `wss://` (or `https://`) URL;
    /// None for `ws://`.
    pub fn client_tls(&self, url: &str) -> Result<Option<Arc<tokio_rustls::rustls::ClientConfig>>> {
        client_tls(url, self.ca_cert.as_deref())
    }
}

fn client_tls(
    url: &str,
    ca: Option<&Path>,
) -> Result<Option<Arc<tokio_rustls::rustls::ClientConfig>>> {
    if !(url.starts_with("wss://") || url.starts_with("https://")) {
        if ca.is_some() {
            eprintln!("termtrail: note: --ca-cert is ignored for a plain ws:// URL");
        }
        return Ok(None);
    }
    Ok(Some(termtrail_recorder::tls::client_config(ca)?))
}

/// `--session` for the client commands (`attach`, `exec`).
#[derive(Args, Debug)]
pub struct SessionArg {
    /// Runtime session id (default: a new random one).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
}

impl SessionArg {
    /// The session id given, or a new random one.
    pub fn or_random(self) -> Result<String> {
        match self.session {
            Some(s) => Ok(s),
            None => random_id(),
        }
    }
}

/// Which recordings (`grep`, `ls`).
#[derive(Args, Debug)]
#[command(next_help_heading = super::headings::FILTERS)]
pub struct FilterArgs {
    /// From this time on: RFC 3339 (2026-11-20T14:30:07.25Z), a date (2026-11-20), a time ago (90m, 2h ago, 7d), today or yesterday; grep: hits, ls: recordings active then.
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Up to this time, inclusive to the millisecond (same forms).
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Only recordings of this runtime session id.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Only recordings of this shell id.
    #[arg(long, value_name = "ID")]
    pub shell: Option<String>,
    /// Only recordings opened by this principal.
    #[arg(long, value_name = "WHO")]
    pub principal: Option<String>,
    /// Only recordings whose title contains this (any case).
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
}

/// What [`FilterArgs`] select, as the player takes it.
pub struct Filters {
    /// The metadata filter.
    pub meta: termtrail_player::select::MetaFilter,
    /// `--since` / `--until`.
    pub window: termtrail_player::select::Window,
}

impl FilterArgs {
    /// The filters as the player takes them: metadata, and the window
    /// --since / --until give.
    pub fn filters(&self) -> Result<Filters> {
        let now = termtrail_player::time::now();
        let when = |v: &Option<String>| {
            v.as_deref()
                .map(|s| termtrail_player::time::parse_instant(s, now))
                .transpose()
        };
        let window = termtrail_player::select::Window {
            since_us: when(&self.since).map_err(|e| anyhow::anyhow!("--since: {e}"))?,
            until_us: when(&self.until).map_err(|e| anyhow::anyhow!("--until: {e}"))?,
        };
        let meta = termtrail_player::select::MetaFilter {
            session: self.session.clone(),
            shell: self.shell.clone(),
            principal: self.principal.clone(),
            title: self.title.clone(),
        };
        Ok(Filters { meta, window })
    }
}

/// A flag's value that does not parse, with what was expected (clap prints
/// it after "invalid value … for …").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue(pub String);

impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadValue {}

/// Parses a duration flag's value: plain seconds (`10`, `2.5`) or units
/// (`500ms`, `1s`, `1m30s`, `2h`): `termtrail_player::time::parse_duration`,
/// the one duration parser.
pub fn parse_duration(s: &str) -> Result<Duration, BadValue> {
    termtrail_player::time::parse_duration(s).map_err(|e| BadValue(e.to_string()))
}

/// Checks a listen address (`serve`/`proxy --listen`): HOST:PORT, with an
/// IP address or a host name, IPv6 in brackets (`[::1]:8765`).
pub fn parse_listen(s: &str) -> Result<String, BadValue> {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(s.to_string());
    }
    if let Some((host, port)) = s.rsplit_once(':')
        && !host.is_empty()
        && !host.contains(':')
        && port.parse::<u16>().is_ok()
    {
        return Ok(s.to_string());
    }
    Err(BadValue(if s.parse::<u16>().is_ok() {
        format!(
            "a port alone is not an address: expected HOST:PORT, e.g. 127.0.0.1:{s} (this machine only) or 0.0.0.0:{s} (every interface)"
        )
    } else {
        "expected HOST:PORT, e.g. 127.0.0.1:8765 ([::1]:8765 for IPv6; port 0 picks a free one)"
            .to_string()
    }))
}

/// [`parse_duration`] where a bare number counts milliseconds
/// (`--chunk-ms 250`, as before; `--chunk-ms 1s` too).
pub fn parse_duration_ms(s: &str) -> Result<Duration, BadValue> {
    termtrail_player::time::parse_duration_ms(s).map_err(|e| BadValue(e.to_string()))
}

/// Parses a moment flag's value (`--at`, `--start`): checked here, made an
/// offset once the recording is open ([`termtrail_player::time::Moment`]).
pub fn parse_moment(s: &str) -> Result<Moment, BadValue> {
    termtrail_player::time::parse_moment(s)
        .map(|m| Moment(s.to_string(), m))
        .map_err(|e| BadValue(e.to_string()))
}

/// A moment as given, with its text (for errors).
#[derive(Debug, Clone)]
pub struct Moment(pub String, pub termtrail_player::time::Moment);

impl Moment {
    /// The offset into a recording that started at `start` (Unix seconds)
    /// and lasts `duration`.
    pub fn resolve(&self, start: Option<u64>, duration: u64) -> Result<u64> {
        Ok(self.1.resolve(&self.0, start, duration)?)
    }
}

/// The local store in `store`, or the default one.
pub fn store_root(store: Option<PathBuf>) -> Result<LocalStore> {
    match store.or_else(LocalStore::default_root) {
        Some(root) => Ok(LocalStore::new(root)),
        None => {
            bail!("no store directory: set HOME or XDG_DATA_HOME, or pass --store DIR or -o FILE")
        }
    }
}

/// The Ed25519 secret key in `path`, when one is named (`--sign-key`, else
/// the configuration file's `sign_key`).
pub fn secret_key(path: Option<&Path>) -> Result<Option<termtrail_format::sign::SecretKey>> {
    let (path, named) = match path {
        Some(p) => (p, "--sign-key".to_string()),
        None => match config()?.sign_key.as_deref() {
            Some(p) => (
                p,
                match super::config::path() {
                    Some(file) => format!("sign_key in {}", file.display()),
                    None => "the configuration file's sign_key".to_string(),
                },
            ),
            None => return Ok(None),
        },
    };
    termtrail_format::sign::SecretKey::load(path)
        .map(Some)
        .map_err(|e| {
            let why = super::outfile::plain(&e.to_string());
            let shown = path.display().to_string();
            // The key's error names the file; said once, with where it was named.
            let why = why
                .strip_prefix(&format!("{shown}: "))
                .unwrap_or(&why)
                .to_string();
            anyhow::anyhow!("{shown}: signing key (named by {named}): {why}")
        })
}

/// A new random id in UUID form: the default `--session` (and, without
/// dashes, `--shell`) of the client commands.
pub fn random_id() -> Result<String> {
    let id = termtrail_format::writer::new_recording_id()?;
    let h = hex::encode(id);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_duration_ms};
    use std::time::Duration;

    #[test]
    fn durations_take_the_documented_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration_ms("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration_ms("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_duration("3y").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn listen_addresses_need_a_host_and_a_port() {
        use super::parse_listen;
        for ok in [
            "127.0.0.1:8765",
            "0.0.0.0:0",
            "[::1]:8765",
            "localhost:9000",
        ] {
            assert_eq!(parse_listen(ok).as_deref(), Ok(ok));
        }
        let e = parse_listen("8765").unwrap_err().0;
        assert!(e.contains("127.0.0.1:8765"), "{e}");
        for bad in [
            ":8765",
            "127.0.0.1",
            "host:port",
            "::1:8765",
            "127.0.0.1:70000",
        ] {
            assert!(
                parse_listen(bad).unwrap_err().0.contains("HOST:PORT"),
                "{bad}"
            );
        }
    }
}

/// Output redaction rules (`rec`, `serve`, `proxy`).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = super::headings::SECRETS)]
pub struct RedactArgs {
    /// Extra redaction rules (`--redact NAME=REGEX`).
    #[arg(
        long,
        value_name = "NAME=REGEX",
        value_parser = parse_redact,
        help = "Also redact recorded output matching REGEX: written as [REDACTED:NAME], plus a marker naming NAME (repeatable; with a group named `secret`, only that group is replaced)"
    )]
    pub redact: Vec<Rule>,
    /// Drop the default redactions (AWS secret access keys, Authorization: Bearer tokens, PEM private-key blocks).
    #[arg(long)]
    pub no_default_redactions: bool,
}

impl RedactArgs {
    /// The rules as the recording engine takes them.
    pub fn redaction(&self) -> Redaction {
        Redaction::new(!self.no_default_redactions, self.redact.clone())
    }
}

fn parse_redact(s: &str) -> Result<Rule, BadValue> {
    Rule::parse(s).map_err(|e| BadValue(e.to_string()))
}

/// Password-prompt patterns (`proxy`).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = super::headings::SECRETS)]
pub struct PromptArgs {
    /// Also treat output whose last line matches REGEX as a password prompt: the input up to the next line break is not recorded (repeatable; anchor with $ for the end of the line).
    #[arg(long, value_name = "REGEX", value_parser = parse_prompt)]
    pub secret_prompt: Vec<String>,
    /// Drop the default prompt patterns (password:, password for …:, passphrase …:, PIN …:, token: at the end of the last line).
    #[arg(long)]
    pub no_default_secret_prompts: bool,
}

impl PromptArgs {
    /// The prompt rules as the relay takes them.
    pub fn rules(&self) -> Result<PromptRules> {
        Ok(PromptRules::new(
            !self.no_default_secret_prompts,
            &self.secret_prompt,
        )?)
    }
}

fn parse_prompt(s: &str) -> Result<String, BadValue> {
    PromptRules::new(false, &[s.to_string()]).map_err(|e| BadValue(e.to_string()))?;
    Ok(s.to_string())
}
