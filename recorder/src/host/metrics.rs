//! The host's counters and their Prometheus text for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one host.
#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) connections: AtomicU64,
    pub(crate) shells_started: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) recording_failures: AtomicU64,
    /// Requests refused because they were not authenticated.
    pub(crate) auth_failures: AtomicU64,
    /// Requests the access policy denied.
    pub(crate) denied: AtomicU64,
    /// Grants that held only through break-glass.
    pub(crate) break_glass: AtomicU64,
    /// One-shot commands running now (a gauge).
    pub(crate) commands_running: AtomicU64,
    /// One-shot commands started.
    pub(crate) commands_started: AtomicU64,
    /// One-shot commands refused at `--max-commands`.
    pub(crate) commands_refused: AtomicU64,
    /// One-shot commands killed, by why: the timeout, the client left, the
    /// host shut down.
    pub(crate) commands_killed: [AtomicU64; 3],
    /// Connections closed for not sending a request head in time.
    pub(crate) header_timeouts: AtomicU64,
    /// Idle connections closed at `--max-connections` to make room.
    pub(crate) connections_evicted: AtomicU64,
    /// New connections closed at `--max-connections` (all others busy).
    pub(crate) connections_refused: AtomicU64,
    /// Resizes reduced to `--max-terminal-size`.
    pub(crate) resizes_clamped: AtomicU64,
    /// Clients detached because they took no output for 10 s.
    pub(crate) slow_clients: AtomicU64,
}

/// Why a one-shot command was killed: its `reason` label in
/// `termtrail_commands_killed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Killed {
    /// Its timeout passed.
    Timeout = 0,
    /// Its client went away (the response was dropped).
    ClientGone = 1,
    /// The host shut down.
    Shutdown = 2,
}

impl Killed {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        ["timeout", "client_gone", "shutdown"][self as usize]
    }
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The async runtime's gauges: tasks alive (spawned, not yet finished)
/// and worker threads; empty outside a runtime. Read from tokio's stable
/// runtime metrics, so a leak of tasks per connection shows here.
pub(crate) fn runtime() -> String {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return String::new();
    };
    let m = handle.metrics();
    format!(
        "# HELP termtrail_runtime_alive_tasks Async tasks alive in the host's runtime.\n# TYPE termtrail_runtime_alive_tasks gauge\ntermtrail_runtime_alive_tasks {}\n\
# HELP termtrail_runtime_workers Worker threads of the host's runtime.\n# TYPE termtrail_runtime_workers gauge\ntermtrail_runtime_workers {}\n",
        m.num_alive_tasks(),
        m.num_workers()
    )
}

impl Metrics {
    /// The Prometheus text, with the gauges given: `live` shells, their
    /// recordings' `backlog` (events accepted, not yet written) and the
    /// `open` client connections.
    pub(crate) fn render(&self, live: usize, backlog: usize, open: usize) -> String {
        self.render_base(live, backlog) + &self.render_limits(open)
    }

    /// The limits' counters (issue 14).
    fn render_limits(&self, open: usize) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "# HELP termtrail_connections_open Client connections open (WebSockets included).\n# TYPE termtrail_connections_open gauge\ntermtrail_connections_open {open}\n\
# HELP termtrail_header_timeouts_total Connections closed for not sending a complete request head within --header-timeout.\n# TYPE termtrail_header_timeouts_total counter\ntermtrail_header_timeouts_total {}\n\
# HELP termtrail_connections_evicted_total Connections without a request under way closed at --max-connections to make room.\n# TYPE termtrail_connections_evicted_total counter\ntermtrail_connections_evicted_total {}\n\
# HELP termtrail_connections_refused_total New connections closed at --max-connections (every open one busy).\n# TYPE termtrail_connections_refused_total counter\ntermtrail_connections_refused_total {}\n\
# HELP termtrail_resizes_clamped_total Resizes reduced to --max-terminal-size.\n# TYPE termtrail_resizes_clamped_total counter\ntermtrail_resizes_clamped_total {}\n\
# HELP termtrail_output_paused_total Times a shell's output was paused: no client read it and its replay buffer was full.\n# TYPE termtrail_output_paused_total counter\ntermtrail_output_paused_total {}\n\
# HELP termtrail_slow_clients_total Clients closed (1008) for taking no output for 10 s.\n# TYPE termtrail_slow_clients_total counter\ntermtrail_slow_clients_total {}\n\
# HELP termtrail_recording_limit_total Shells ended at --max-recording-bytes.\n# TYPE termtrail_recording_limit_total counter\ntermtrail_recording_limit_total {}\n\
# HELP termtrail_log_lines_suppressed_total Per-connection log lines suppressed by --log-rate.\n# TYPE termtrail_log_lines_suppressed_total counter\ntermtrail_log_lines_suppressed_total {}\n",
            get(&self.header_timeouts),
            get(&self.connections_evicted),
            get(&self.connections_refused),
            get(&self.resizes_clamped),
            super::attachment::paused_total(),
            get(&self.slow_clients),
            super::budget::ended_total(),
            super::lograte::suppressed_total(),
        )
    }

    fn render_base(&self, live: usize, backlog: usize) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "# HELP termtrail_live_shells Shells currently running.\n# TYPE termtrail_live_shells gauge\ntermtrail_live_shells {live}\n\
# HELP termtrail_shells_started_total Shells started.\n# TYPE termtrail_shells_started_total counter\ntermtrail_shells_started_total {}\n\
# HELP termtrail_connections_total WebSocket connection attempts.\n# TYPE termtrail_connections_total counter\ntermtrail_connections_total {}\n\
# HELP termtrail_shells_refused_total Connections refused at the shell limit.\n# TYPE termtrail_shells_refused_total counter\ntermtrail_shells_refused_total {}\n\
# HELP termtrail_bytes_relayed_total Bytes relayed, by direction.\n# TYPE termtrail_bytes_relayed_total counter\ntermtrail_bytes_relayed_total{{direction=\"in\"}} {}\ntermtrail_bytes_relayed_total{{direction=\"out\"}} {}\n\
# HELP termtrail_protocol_errors_total Connections closed for protocol violations.\n# TYPE termtrail_protocol_errors_total counter\ntermtrail_protocol_errors_total {}\n\
# HELP termtrail_recording_failures_total Recordings that could not be started or written.\n# TYPE termtrail_recording_failures_total counter\ntermtrail_recording_failures_total {}\n\
# HELP termtrail_auth_failures_total Requests refused as not authenticated (401 or 503).\n# TYPE termtrail_auth_failures_total counter\ntermtrail_auth_failures_total {}\n\
# HELP termtrail_access_denied_total Requests the access policy denied (403).\n# TYPE termtrail_access_denied_total counter\ntermtrail_access_denied_total {}\n\
# HELP termtrail_break_glass_grants_total Requests allowed only through break-glass.\n# TYPE termtrail_break_glass_grants_total counter\ntermtrail_break_glass_grants_total {}\n\
# HELP termtrail_recording_backlog_events Events accepted but not yet written, over all shells (recording lag).\n# TYPE termtrail_recording_backlog_events gauge\ntermtrail_recording_backlog_events {backlog}\n\
# HELP termtrail_commands_running One-shot commands running.\n# TYPE termtrail_commands_running gauge\ntermtrail_commands_running {}\n\
# HELP termtrail_commands_total One-shot commands started.\n# TYPE termtrail_commands_total counter\ntermtrail_commands_total {}\n\
# HELP termtrail_commands_refused_total One-shot commands refused at the command limit (429).\n# TYPE termtrail_commands_refused_total counter\ntermtrail_commands_refused_total {}\n\
# HELP termtrail_commands_killed_total One-shot commands killed with their whole process tree, by reason.\n# TYPE termtrail_commands_killed_total counter\n{}",
            get(&self.shells_started),
            get(&self.connections),
            get(&self.refused),
            get(&self.bytes_in),
            get(&self.bytes_out),
            get(&self.protocol_errors),
            get(&self.recording_failures) + crate::recording::failures(),
            get(&self.auth_failures),
            get(&self.denied),
            get(&self.break_glass),
            get(&self.commands_running),
            get(&self.commands_started),
            get(&self.commands_refused),
            self.killed_lines(),
        )
    }

    fn killed_lines(&self) -> String {
        [Killed::Timeout, Killed::ClientGone, Killed::Shutdown]
            .iter()
            .map(|&k| {
                let n = self.commands_killed[k as usize].load(Ordering::Relaxed);
                format!(
                    "termtrail_commands_killed_total{{reason=\"{}\"}} {n}\n",
                    k.label()
                )
            })
            .collect()
    }
}
