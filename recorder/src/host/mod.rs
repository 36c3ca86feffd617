//! The shell host behind `termtrail serve` and `termtrail proxy`: clients
//! speak the AgentCore shell protocol (`docs/protocol.md`) to it, and every
//! shell is recorded.
//!
//! Written once for both commands: the registry of live shells keyed by
//! (session id, shell id) (`registry`), the `--max-shells` limit (a
//! semaphore permit held by each shell until it ends), client connections
//! (`conn`, [`attachment`]), the idle and grace timers (`timers`),
//! `/metrics` (`metrics`) and shutdown ([`run`]). What a shell *is* comes
//! from a [`backend::ShellBackend`]: a local PTY (`serve`) or a relay to an
//! upstream host (`proxy`).

pub mod access;
pub mod attachment;
mod audit;
pub mod backend;
pub mod budget;
mod command;
pub(crate) mod command_limit;
pub(crate) mod conn;
mod http;
mod listen;
pub mod lograte;
pub(crate) mod metrics;
mod options;
pub(crate) mod registry;
mod state;
pub(crate) mod timers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;

use attachment::Kick;
pub use listen::{default_max_connections, raise_open_files_limit};
pub use options::{Backend, ServeOptions};
use state::HostState;
use timers::Timers;

/// The address a client connected from (the peer of the TCP connection, with
/// or without TLS), for the handlers' `ConnectInfo`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// Serves until `shutdown` resolves, then ends every shell (sealing its
/// recording as interrupted; a relayed shell is let go on its upstream)
/// within the shutdown deadline.
pub async fn run<L>(
    listener: L,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    let host = Arc::new(HostState::new(opts));
    let listen = listener.local_addr().ok().map(|a| a.to_string());
    if let Err(e) = host.audit_durable(audit::start_event(listen)).await
        && host.opts.strict
    {
        return Err(std::io::Error::other(e));
    }
    let timers = Timers {
        idle_timeout: host.opts.idle_timeout,
        grace: host.opts.grace,
    };
    let sweeper = tokio::spawn(timers.run(Arc::clone(&host.shells)));
    let reloader = tokio::spawn(access::reload_on_hangup(Arc::clone(&host)));
    let app = Router::new()
        .route("/runtimes/{arn}/ws/shells", get(http::shell_ws))
        .route(
            "/runtimes/{arn}/commands",
            axum::routing::post(command::run_command)
                .layer(axum::middleware::map_response(command::with_error_type)),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(http::metrics))
        .with_state(Arc::clone(&host));
    let stopping = Arc::clone(&host);
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: closing clients and ending shells");
        stopping.stop_commands();
        for s in stopping.shells.all() {
            stopping.audit(audit::terminate_event(&*s, "the host is shutting down"));
            s.att().kick(Kick::Shutdown);
            s.shutdown();
        }
    };
    let limits = listen::ConnLimits {
        header_timeout: host.opts.header_timeout,
        max_connections: host.opts.max_connections,
    };
    // One deadline from the stop on: for requests under way (a half-sent
    // request never holds the host), then for the shells to seal.
    let stopped_at = Arc::new(std::sync::Mutex::new(None));
    let mark = Arc::clone(&stopped_at);
    let graceful = async move {
        graceful.await;
        *mark.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokio::time::Instant::now());
    };
    listen::serve(
        listener,
        app,
        limits,
        Arc::clone(&host.metrics),
        Arc::clone(&host.conns),
        graceful,
        host.opts.shutdown_deadline,
    )
    .await;
    let stopped = stopped_at
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .unwrap_or_else(tokio::time::Instant::now);
    // Wait for the shells' and commands' recordings to be sealed.
    let deadline = stopped + host.opts.shutdown_deadline;
    while (!host.shells.is_empty() || host.commands_running() > 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sweeper.abort();
    reloader.abort();
    let left = host.shells.len();
    if left > 0 {
        tracing::warn!(
            left,
            "shutdown deadline passed with shells still running; their recordings stay unsealed (verify reports them as interrupted)"
        );
    }
    audit::stopped(&host, left).await;
    Ok(())
}
