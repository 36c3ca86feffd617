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
mod command;
pub(crate) mod command_limit;
pub(crate) mod conn;
mod http;
pub(crate) mod metrics;
mod options;
pub(crate) mod registry;
mod state;
pub(crate) mod timers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::routing::get;
use axum::serve::IncomingStream;

use attachment::Kick;
pub use options::{Backend, ServeOptions};
use state::HostState;
use timers::Timers;

/// The address a client connected from (the peer of the TCP connection, with
/// or without TLS), for the handlers' `ConnectInfo`. A listener [`run`]
/// accepts must provide it (the TCP and TLS listeners do).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> ClientAddr {
        ClientAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, crate::tls::TlsListener>) -> ClientAddr {
        ClientAddr(*stream.remote_addr())
    }
}

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
    for<'a> ClientAddr: Connected<IncomingStream<'a, L>>,
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
    // The client's address reaches the handlers (ConnectInfo) for the
    // recording header; with TLS it is the peer the TLS listener accepted.
    let app = app.into_make_service_with_connect_info::<ClientAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .await?;
    // Wait for the shells' and commands' recordings to be sealed.
    let deadline = tokio::time::Instant::now() + host.opts.shutdown_deadline;
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
