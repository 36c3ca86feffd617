//! What every request handler of one host shares: its options, backend,
//! live shells, shell and command slots, counters, and the signal that
//! ends running commands at shutdown.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::Semaphore;

use super::backend::ShellBackend;
use super::metrics::Metrics;
use super::options::ServeOptions;
use super::registry::Registry;

/// Shared state of the host.
pub(crate) struct HostState {
    pub(crate) opts: ServeOptions,
    /// Where shells come from.
    pub(crate) backend: Arc<dyn ShellBackend>,
    pub(crate) shells: Arc<Registry>,
    /// One permit per live shell (`--max-shells`), held until it ends.
    pub(crate) slots: Arc<Semaphore>,
    /// One permit per running command (`--max-commands`), held until it
    /// has ended and its recording is sealed.
    pub(crate) command_slots: Arc<Semaphore>,
    /// Becomes true when the host shuts down: running commands are killed.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    pub(crate) metrics: Arc<Metrics>,
    /// Open client connections (`--max-connections`).
    pub(crate) conns: Arc<super::listen::Tracker>,
    pub(crate) next_client: AtomicU64,
}

impl HostState {
    /// A host with no shells yet.
    pub(crate) fn new(opts: ServeOptions) -> HostState {
        HostState {
            backend: opts.backend.build(opts.strict, opts.max_recording_bytes),
            slots: Arc::new(Semaphore::new(opts.max_shells)),
            command_slots: Arc::new(Semaphore::new(opts.max_commands)),
            stopping: tokio::sync::watch::Sender::new(false),
            shells: Arc::new(Registry::default()),
            metrics: Arc::new(Metrics::default()),
            conns: Arc::default(),
            next_client: AtomicU64::new(1),
            opts,
        }
    }
}

impl HostState {
    /// The host is shutting down: running commands are killed (their
    /// recordings sealed as interrupted) and new ones refused.
    pub(crate) fn stop_commands(&self) {
        self.stopping.send_replace(true);
    }

    /// Commands still running (their recordings not yet sealed).
    pub(crate) fn commands_running(&self) -> usize {
        self.opts.max_commands - self.command_slots.available_permits()
    }
}
