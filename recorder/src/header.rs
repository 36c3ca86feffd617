//! A recording's header, built in one place for every source: what ran
//! (command, terminal), where and for whom (source, session and shell ids,
//! principal, host), and the chain link to the recorder's previous recording
//! (`termtrail.after`). Each source's choices are one constructor here.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use termtrail_format::cast::{Header, RecordingMeta};
use termtrail_format::event::TermSize;
use termtrail_format::journal::AFTER_FIELD;

use crate::auth::Identity;

/// The terminal type a host's shells get (and `rec` when `TERM` says none).
const DEFAULT_TERM: &str = "xterm-256color";

/// Where a recording's frames come from (the header's `source`, and the
/// store key's `<source>` part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `rec`: a local PTY.
    Local,
    /// `serve`: a shell (or command) of this host.
    Serve,
    /// `proxy`: a shell (or command) on an upstream host.
    Proxy,
}

impl Source {
    /// The name in headers and store keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Serve => "serve",
            Source::Proxy => "proxy",
        }
    }
}

/// What a recording's header says. Build one with the constructor for its
/// source, add the journal link with [`RecordingInfo::after`], then
/// [`RecordingInfo::header`].
#[derive(Debug, Clone)]
pub struct RecordingInfo {
    source: Source,
    size: TermSize,
    term: Option<String>,
    timestamp: u64,
    command: Option<String>,
    title: Option<String>,
    login_shell: Option<String>,
    id: Option<String>,
    session: Option<String>,
    shell: Option<String>,
    principal: Option<String>,
    reason: Option<String>,
    auth: Option<&'static str>,
    groups: Vec<String>,
    source_addr: Option<String>,
    host: Option<String>,
    input: bool,
    upstream: Option<String>,
    after: Option<serde_json::Value>,
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// This machine's host name, when it has one.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl RecordingInfo {
    fn new(source: Source, size: TermSize, timestamp: u64) -> RecordingInfo {
        RecordingInfo {
            source,
            size,
            term: None,
            timestamp,
            command: None,
            title: None,
            login_shell: None,
            id: None,
            session: None,
            shell: None,
            principal: None,
            reason: None,
            auth: None,
            groups: Vec::new(),
            source_addr: None,
            host: None,
            input: false,
            upstream: None,
            after: None,
        }
    }

    /// `rec`: the user's terminal type (or the default), the recording id
    /// chosen by the caller, the login user and `$SHELL`, this host.
    /// `command` is None when the default shell runs.
    pub fn local(
        id: &[u8; 16],
        size: TermSize,
        term: Option<String>,
        command: Option<String>,
        title: Option<String>,
        input: bool,
    ) -> RecordingInfo {
        RecordingInfo {
            term: Some(term.unwrap_or_else(|| DEFAULT_TERM.into())),
            command,
            title,
            login_shell: std::env::var("SHELL").ok(),
            id: Some(hex::encode(id)),
            principal: std::env::var("USER")
                .ok()
                .or_else(|| std::env::var("LOGNAME").ok()),
            host: host_name(),
            input,
            ..RecordingInfo::new(Source::Local, size, unix_now())
        }
    }

    /// A shell of the host (`serve`, or `proxy` with its `upstream`
    /// endpoint), started at `timestamp`: input is recorded. `command` is
    /// the local shell's (None for a proxied one).
    pub fn shell(
        source: Source,
        session: &str,
        shell: &str,
        principal: &str,
        timestamp: u64,
    ) -> RecordingInfo {
        RecordingInfo {
            term: Some(DEFAULT_TERM.into()),
            session: Some(session.into()),
            shell: Some(shell.into()),
            principal: Some(principal.into()),
            host: host_name(),
            input: true,
            ..RecordingInfo::new(source, TermSize::DEFAULT, timestamp)
        }
    }

    /// The one-shot command call `command` (id `id`), started at
    /// `timestamp`: no terminal, no input.
    pub fn command(
        source: Source,
        session: &str,
        id: &str,
        principal: &str,
        command: &str,
        timestamp: u64,
    ) -> RecordingInfo {
        RecordingInfo {
            command: Some(command.into()),
            session: Some(session.into()),
            shell: Some(id.into()),
            principal: Some(principal.into()),
            ..RecordingInfo::new(source, TermSize::DEFAULT, timestamp)
        }
    }

    /// The command line that runs (a local shell).
    pub fn with_command(mut self, command: Option<String>) -> RecordingInfo {
        self.command = command;
        self
    }

    /// Who the client authenticated as: the principal, how (`auth`), and
    /// its groups (`groups`, only when there are some).
    pub fn with_identity(mut self, identity: &Identity) -> RecordingInfo {
        self.principal = Some(identity.principal.clone());
        self.auth = Some(identity.method.as_str());
        self.groups = identity.groups.clone();
        self
    }

    /// The break-glass reason the shell was granted on (`reason`).
    pub fn with_break_glass(mut self, reason: Option<&str>) -> RecordingInfo {
        self.reason = reason.map(str::to_string);
        self
    }

    /// The client's address as the host saw it (`source_addr`).
    pub fn with_source(mut self, addr: SocketAddr) -> RecordingInfo {
        self.source_addr = Some(addr.to_string());
        self
    }

    /// The upstream endpoint a proxied shell runs on.
    pub fn with_upstream(mut self, url: &str) -> RecordingInfo {
        self.upstream = Some(url.into());
        self
    }

    /// The store journal's head when the recording starts, bound in the
    /// header as `termtrail.after` (None: no journal).
    pub fn after(mut self, after: Option<serde_json::Value>) -> RecordingInfo {
        self.after = after;
        self
    }

    /// The header.
    pub fn header(self) -> Header {
        let mut header = Header::new(self.size);
        header.term.kind = self.term;
        header.timestamp = Some(self.timestamp);
        header.command = self.command;
        header.title = self.title;
        if let Some(shell) = self.login_shell {
            header.env.insert("SHELL".into(), shell);
        }
        let mut meta = RecordingMeta {
            id: self.id.unwrap_or_default(),
            source: Some(self.source.as_str().into()),
            session: self.session,
            shell: self.shell,
            principal: self.principal,
            reason: self.reason,
            host: self.host,
            input: self.input,
            ..RecordingMeta::default()
        };
        if let Some(method) = self.auth {
            meta.extra.insert("auth".into(), method.into());
        }
        if !self.groups.is_empty() {
            meta.extra.insert("groups".into(), self.groups.into());
        }
        if let Some(addr) = self.source_addr {
            meta.extra.insert("source_addr".into(), addr.into());
        }
        if let Some(url) = self.upstream {
            meta.extra
                .insert("upstream".into(), serde_json::Value::String(url));
        }
        if let Some(after) = self.after {
            meta.extra.insert(AFTER_FIELD.into(), after);
        }
        header.termtrail = Some(meta);
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use termtrail_format::cast::CastVersion;

    #[test]
    fn a_proxied_shell_names_its_upstream_before_the_journal_link() {
        let header = RecordingInfo::shell(Source::Proxy, "s1", "sh1", "ann", 7)
            .with_upstream("ws://up")
            .after(Some(serde_json::json!({"seq": 3})))
            .header();
        let meta = header.termtrail.as_ref().unwrap();
        assert_eq!(meta.source.as_deref(), Some("proxy"));
        assert_eq!(meta.extra["upstream"], "ws://up");
        assert_eq!(meta.extra[AFTER_FIELD], serde_json::json!({"seq": 3}));
        assert_eq!(header.term.kind.as_deref(), Some(DEFAULT_TERM));
        assert!(meta.input);
    }

    #[test]
    fn the_identity_and_source_address_go_into_the_header() {
        let id = Identity {
            principal: "ann".into(),
            groups: vec!["oncall".into(), "dev".into()],
            method: crate::auth::AuthMethod::Jwt,
        };
        let header = RecordingInfo::shell(Source::Serve, "s1", "sh1", "nobody", 7)
            .with_identity(&id)
            .with_source("192.0.2.7:51234".parse().unwrap())
            .header();
        let meta = header.termtrail.as_ref().unwrap();
        assert_eq!(meta.principal.as_deref(), Some("ann"));
        assert_eq!(meta.extra["auth"], "jwt");
        assert_eq!(meta.extra["groups"], serde_json::json!(["oncall", "dev"]));
        assert_eq!(meta.extra["source_addr"], "192.0.2.7:51234");
        let plain = RecordingInfo::shell(Source::Serve, "s1", "sh1", "ann", 7).header();
        let meta = plain.termtrail.as_ref().unwrap();
        assert!(!meta.extra.contains_key("auth") && !meta.extra.contains_key("groups"));
    }

    #[test]
    fn a_command_has_no_terminal_type_host_or_input() {
        let line = RecordingInfo::command(Source::Serve, "s1", "cmd-1", "ann", "ls -l", 7)
            .header()
            .to_line(CastVersion::V3);
        let text = String::from_utf8(line).unwrap();
        assert!(text.contains("\"command\":\"ls -l\""), "{text}");
        assert!(!text.contains("\"host\""), "{text}");
        assert!(!text.contains("\"type\""), "{text}");
        assert!(text.contains("\"input\":false"), "{text}");
    }
}
