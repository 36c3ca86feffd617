//! How the shell host runs ([`ServeOptions`]) and where its shells come
//! from ([`Backend`]), as the binary configures them.

use std::sync::Arc;
use std::time::Duration;

use termtrail_format::writer::WriterOptions;

use super::backend::ShellBackend;
use super::backend::pty::PtyBackend;
use super::backend::relay::RelayBackend;
use crate::upstream::Upstream;

/// How the host runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where recordings go (a directory, or S3 through a spool).
    pub destination: Arc<termtrail_store::destination::Destination>,
    /// At most this many live shells.
    pub max_shells: usize,
    /// Shells without traffic (heartbeats excepted) end after this.
    pub idle_timeout: Duration,
    /// Shells without a client end after this.
    pub grace: Duration,
    /// What a new shell is: a local process, or a shell on an upstream host.
    pub backend: Backend,
    /// Who is recorded as the principal (no authentication yet).
    pub principal: String,
    /// Chunk and segment bounds.
    pub writer: WriterOptions,
    /// How long shutdown waits for shells to end and recordings to seal.
    pub shutdown_deadline: Duration,
    /// End a shell whose recording fails (instead of letting it go on
    /// unrecorded), and refuse a shell whose start cannot be audited.
    pub strict: bool,
    /// The audit log (`--audit FILE`).
    pub audit: Option<crate::audit::AuditLog>,
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
    Proxy(Upstream),
}

impl Backend {
    /// The backend's implementation; `strict` ends a local shell whose
    /// output cannot be recorded.
    pub(super) fn build(&self, strict: bool) -> Arc<dyn ShellBackend> {
        match self {
            Backend::Local { command } => Arc::new(PtyBackend::new(command, strict)),
            Backend::Proxy(up) => Arc::new(RelayBackend::new(up.clone())),
        }
    }
}
