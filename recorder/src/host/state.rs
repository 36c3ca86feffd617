//! What every request handler of one host shares: its options, backend,
//! live shells, shell slots and counters.

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
            shells: Arc::new(Registry::default()),
            metrics: Arc::new(Metrics::default()),
            conns: Arc::default(),
            next_client: AtomicU64::new(1),
            opts,
        }
    }
}
