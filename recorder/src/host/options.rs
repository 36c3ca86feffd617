//! How the shell host runs ([`ServeOptions`]) and where its shells come
//! from ([`Backend`]), as the binary configures them.

use std::sync::Arc;
use std::time::Duration;

use termtrail_format::event::TermSize;
use termtrail_format::writer::WriterOptions;

use super::access::AccessOptions;
use super::backend::ShellBackend;
use super::backend::pty::PtyBackend;
use super::backend::relay::RelayBackend;
use crate::auth::Authenticator;
use crate::secrets::{PromptRules, Redaction};
use crate::upstream::Upstream;

/// How the host runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where recordings go (a directory, or S3 through a spool).
    pub destination: Arc<termtrail_store::destination::Destination>,
    /// At most this many live shells.
    pub max_shells: usize,
    /// At most this many one-shot commands at once (each with its
    /// supervisor, `sh` and three pipes); the next call is refused (429).
    pub max_commands: usize,
    /// The `termtrail` binary: each command runs under
    /// `<supervisor> __supervise` ([`crate::supervise`]).
    pub supervisor: std::path::PathBuf,
    /// Shells without traffic (heartbeats excepted) end after this.
    pub idle_timeout: Duration,
    /// Shells without a client end after this.
    pub grace: Duration,
    /// What a new shell is: a local process, or a shell on an upstream host.
    pub backend: Backend,
    /// Who clients are: every request is authenticated by it first
    /// ([`Authenticator::disabled`] for `--no-auth`).
    pub auth: Arc<Authenticator>,
    /// What authenticated clients may do: the Cedar policy, environments,
    /// break-glass ([`AccessOptions::open`]: everything).
    pub access: Arc<AccessOptions>,
    /// Chunk and segment bounds.
    pub writer: WriterOptions,
    /// How long shutdown waits for shells to end and recordings to seal.
    pub shutdown_deadline: Duration,
    /// End a shell whose recording fails (instead of letting it go on
    /// unrecorded), and refuse a shell whose start cannot be audited.
    pub strict: bool,
    /// Output redaction rules for every recording (shells and commands).
    pub redaction: Redaction,
    /// The audit log (`--audit FILE`).
    pub audit: Option<crate::audit::AuditLog>,
    /// Most time a client may take to send a complete request head
    /// (`--header-timeout`).
    pub header_timeout: Duration,
    /// Most client connections open at once, WebSockets included
    /// (`--max-connections`).
    pub max_connections: usize,
    /// Most bytes of output one shell's recording may take; past it the
    /// shell is ended (`--max-recording-bytes`, 0: no bound).
    pub max_recording_bytes: u64,
    /// Largest terminal a client may resize a shell to; larger resizes are
    /// reduced to it (`--max-terminal-size`).
    pub max_terminal: TermSize,
}

/// Where shells come from.
#[derive(Debug, Clone)]
pub enum Backend {
    /// `serve`: run this command (default `$SHELL`) in a local PTY.
    Local {
        /// Command and arguments.
        command: Vec<String>,
    },
    /// `proxy`: open the shell on an upstream host.
    Proxy {
        /// The upstream host.
        upstream: Upstream,
        /// Input after output matching these is withheld from the
        /// recording up to the next line break (the relay cannot see the
        /// remote terminal's echo flag).
        prompts: PromptRules,
    },
}

impl Backend {
    /// The backend's implementation; `strict` ends a local shell whose
    /// output cannot be recorded, `max_output` bounds a shell's recorded
    /// output (0: none).
    pub(super) fn build(&self, strict: bool, max_output: u64) -> Arc<dyn ShellBackend> {
        match self {
            Backend::Local { command } => Arc::new(PtyBackend::new(command, strict, max_output)),
            Backend::Proxy { upstream, prompts } => Arc::new(RelayBackend::new(
                upstream.clone(),
                prompts.clone(),
                max_output,
            )),
        }
    }
}
