//! What the shell host runs its shells on: the [`ShellBackend`] trait with
//! its two implementations, a local PTY shell ([`pty`]) and a relay to an
//! upstream shell host ([`relay`]); the [`Shell`] each one gives the host;
//! and the one-shot command call on each ([`command`]).

pub mod command;
pub mod pty;
pub mod relay;
mod supervised;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use termtrail_format::event::TermSize;
use termtrail_format::seal::EndReason;
use tokio::sync::mpsc;

use super::attachment::Attachment;
use crate::header::{RecordingInfo, Source};
use crate::recording::Recording;
use crate::upstream::ConnectError;

/// A boxed future, for the object-safe traits of this module.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed future without a result.
pub type BoxFut<'a> = BoxFuture<'a, ()>;

/// A live shell as the host sees it: a local one, or one on an upstream.
pub trait Shell: Send + Sync {
    /// Runtime session id.
    fn session_id(&self) -> &str;
    /// Shell id.
    fn shell_id(&self) -> &str;
    /// The client side.
    fn att(&self) -> &Attachment;
    /// Keystrokes from the client.
    fn input<'a>(&'a self, bytes: &'a [u8]) -> BoxFut<'a>;
    /// A resize from the client.
    fn resize(&self, size: TermSize) -> BoxFut<'_>;
    /// Ends the shell; `end` becomes its recording's end reason.
    fn end(self: Arc<Self>, end: EndReason);
    /// The host is shutting down: end the shell, or let go of it where it
    /// lives on elsewhere (a relayed shell stays on its upstream host).
    fn shutdown(self: Arc<Self>) {
        self.end(EndReason::Interrupted {
            detail: "shell host shut down".into(),
        });
    }
    /// The recording's path.
    fn recording_path(&self) -> &Path;
    /// Whether the shell existed before this host opened it (a relayed
    /// shell the upstream host already had, e.g. after a proxy restart):
    /// its first client is told `reconnected` and gets the upstream's
    /// replay as a re-attach's replay.
    fn resumed(&self) -> bool {
        false
    }
}

/// Runs once a shell has ended and its recording is sealed.
pub type OnEnd = Box<dyn FnOnce(Arc<dyn Shell>) + Send>;

/// Starts a new shell's recording (creates its file, writes its header).
/// A backend calls it once it knows the shell will exist — a relay only
/// after its upstream accepted — so a refused shell leaves no file, no
/// journal entry and no empty directory behind.
pub type StartRecording = Box<dyn FnOnce() -> Result<Recording, StartRecordingError> + Send>;

/// Why a shell's recording could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartRecordingError {
    /// The store refused the recording's file.
    #[error("cannot create the recording: {0}")]
    Create(#[from] termtrail_store::StoreError),
    /// The file could not be created or its header written.
    #[error("cannot write the recording: {0}")]
    Write(#[from] termtrail_format::writer::WriteError),
}

/// A shell to open: its ids, its recording, and what to do when it ends.
pub struct NewShell {
    /// Runtime session id.
    pub session: String,
    /// Shell id.
    pub shell: String,
    /// Starts its recording.
    pub recording: StartRecording,
    /// Runs once, when the shell has ended.
    pub on_end: OnEnd,
}

/// Why a shell could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Its recording could not be started.
    #[error("{0}")]
    Recording(#[from] StartRecordingError),
    /// The local process could not be started.
    #[error("cannot start {command:?}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The upstream refused or could not be reached.
    #[error("upstream: {0}")]
    Upstream(#[from] ConnectError),
}

/// A one-shot command call, validated.
pub struct CommandCall {
    /// Runtime session id.
    pub session: String,
    /// The call's id (its recording's shell id).
    pub id: String,
    /// The command (run with `sh -c`).
    pub command: String,
    /// Seconds before it is killed.
    pub timeout: u64,
    /// The request body as received (forwarded as is).
    pub body: axum::body::Bytes,
    /// Its place under `--max-commands`, held until the call has ended and
    /// its recording is sealed.
    pub(crate) slot: crate::host::command_limit::CommandSlot,
}

/// Why a command call failed before its output started.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command could not be started here.
    #[error("{0}")]
    Internal(String),
    /// The upstream could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// The upstream answered with this status, error type
    /// (`x-amzn-errortype`) and body.
    #[error("the upstream answered HTTP {status}")]
    Answered {
        /// The upstream's HTTP status.
        status: u16,
        /// Its `x-amzn-errortype`, if it gave one.
        error_type: Option<String>,
        /// Its body.
        body: axum::body::Bytes,
    },
}

/// The events of a command call's answer, as they come
/// ([`crate::command_wire`] puts them on the wire).
pub type Events = mpsc::Receiver<crate::command_wire::CommandEvent>;

/// Where a host's shells come from.
pub trait ShellBackend: Send + Sync {
    /// The recordings' source.
    fn source(&self) -> Source;
    /// Adds what this backend runs to a new shell's header.
    fn describe(&self, info: RecordingInfo) -> RecordingInfo;
    /// Opens a shell (the host has started its recording).
    fn open(&self, new: NewShell) -> BoxFuture<'_, Result<Arc<dyn Shell>, OpenError>>;
    /// The runtime a request for `requested` (the client's URL path) really
    /// reaches: the access policy's resource. A local host serves whatever
    /// the path names; a relay always opens its own upstream runtime.
    fn runtime(&self, requested: &str) -> String {
        requested.to_string()
    }
    /// Why the one-shot command call is not available here (None: it is).
    fn no_commands(&self) -> Option<String>;
    /// Runs a one-shot command call into `recording`.
    fn command(
        &self,
        call: CommandCall,
        recording: Recording,
    ) -> BoxFuture<'_, Result<Events, CommandError>>;
}
