//! `termtrail serve`: a shell host speaking the AgentCore shell protocol
//! (`docs/protocol.md`), recording every shell.
//!
//! [`run`] takes a bound listener and a shutdown future from the caller.
//! Shells live in a registry keyed by (session id, shell id); a semaphore
//! caps them at `--max-shells`; a sweeper ends idle shells and shells
//! detached for longer than the grace period.

pub mod attachment;
mod command;
pub(crate) mod conn;
pub mod shell;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use termtrail_format::event::TermSize;
use termtrail_format::seal::EndReason;
use termtrail_format::store::KeyParts;
use termtrail_format::writer::WriterOptions;
use tokio::sync::Semaphore;

use crate::header::{RecordingInfo, Source};
use crate::protocol::{
    MAX_FRAME, SESSION_HEADER, SHELL_ID_HEADER, status_failure, valid_session_id, valid_shell_id,
};
use crate::recording::Recording;
use attachment::{Attachment, Kick};
use shell::Shell;

/// A boxed future, for the object-safe [`Target`] trait.
pub type BoxFut<'a> = std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Something a client can be attached to: a local shell, or a proxied one.
pub trait Target: Send + Sync {
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
    /// lives on elsewhere (a proxied shell stays on its upstream host).
    fn shutdown(self: Arc<Self>) {
        self.end(EndReason::Interrupted {
            detail: "shell host shut down".into(),
        });
    }
    /// The recording's path.
    fn recording_path(&self) -> &std::path::Path;
}

/// How the host runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where recordings go (a directory, or S3 through a spool).
    pub destination: Arc<crate::store::Destination>,
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
    /// unrecorded).
    pub strict: bool,
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
    Proxy(crate::proxy::Upstream),
}

/// Counters for `/metrics`.
#[derive(Default)]
struct Metrics {
    connections: AtomicU64,
    shells_started: AtomicU64,
    refused: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    protocol_errors: AtomicU64,
    recording_failures: AtomicU64,
}

type Key = (String, String);

/// Shared state of the host.
pub(crate) struct Host {
    opts: ServeOptions,
    shells: Mutex<HashMap<Key, Arc<dyn Target>>>,
    slots: Arc<Semaphore>,
    metrics: Metrics,
    next_client: AtomicU64,
}

impl Host {
    fn shells(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<dyn Target>>> {
        self.shells.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves until `shutdown` resolves, then ends every shell (sealing its
/// recording as interrupted) within the shutdown deadline.
pub async fn run<L>(
    listener: L,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    let host = Arc::new(Host {
        slots: Arc::new(Semaphore::new(opts.max_shells)),
        opts,
        shells: Mutex::new(HashMap::new()),
        metrics: Metrics::default(),
        next_client: AtomicU64::new(1),
    });
    let sweeper = tokio::spawn(sweep(Arc::clone(&host)));
    let app = Router::new()
        .route("/runtimes/{arn}/ws/shells", get(shell_ws))
        .route(
            "/runtimes/{arn}/commands",
            axum::routing::post(command::run_command),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(Arc::clone(&host));
    let stopping = Arc::clone(&host);
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: closing clients and ending shells");
        let shells: Vec<Arc<dyn Target>> = stopping.shells().values().cloned().collect();
        for s in shells {
            s.att().kick(Kick::Shutdown);
            s.shutdown();
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .await?;
    // Wait for the shells' recordings to be sealed.
    let deadline = tokio::time::Instant::now() + host.opts.shutdown_deadline;
    while !host.shells().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sweeper.abort();
    let left = host.shells().len();
    if left > 0 {
        tracing::warn!(
            left,
            "shutdown deadline passed with shells still running; their recordings stay unsealed (verify reports them as interrupted)"
        );
    }
    Ok(())
}

/// Ends idle shells and shells detached past the grace period.
async fn sweep(host: Arc<Host>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let shells: Vec<Arc<dyn Target>> = host.shells().values().cloned().collect();
        for s in shells {
            if s.att().idle_for() >= host.opts.idle_timeout {
                tracing::info!(session = %s.session_id(), shell = %s.shell_id(), "idle timeout");
                // The client (if any) gets the exit status, then a normal close.
                s.end(EndReason::IdleTimeout);
            } else if s.att().detached_for().is_some_and(|d| d >= host.opts.grace) {
                tracing::info!(session = %s.session_id(), shell = %s.shell_id(), "no client within the grace period");
                s.end(EndReason::Closed);
            }
        }
    }
}

fn refuse(status: StatusCode, reason: &str, message: &str) -> Response {
    let body = status_failure(reason, status.as_u16(), message);
    (status, [("content-type", "application/json")], body).into_response()
}

async fn shell_ws(
    State(host): State<Arc<Host>>,
    Path(_arn): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    host.metrics.connections.fetch_add(1, Ordering::Relaxed);
    let session = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            query
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(SESSION_HEADER))
                .map(|(_, v)| v.clone())
        });
    let Some(session) = session.filter(|s| valid_session_id(s)) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "a runtime session id (header X-Amzn-Bedrock-AgentCore-Runtime-Session-Id) of 1-256 characters [A-Za-z0-9._:-] is required",
        );
    };
    let shell_id = match query.get("shellId") {
        Some(id) if valid_shell_id(id) => id.clone(),
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "shellId must match ^[a-zA-Z0-9][a-zA-Z0-9_-]{0,127}$",
            );
        }
        None => match termtrail_format::writer::new_recording_id() {
            Ok(id) => hex::encode(id),
            Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e),
        },
    };
    let key = (session.clone(), shell_id.clone());
    let existing = host
        .shells()
        .get(&key)
        .cloned()
        .filter(|s| !s.att().exited());
    let (shell, reconnected) = match existing {
        Some(s) => (s, true),
        None => match start_shell(&host, &session, &shell_id).await {
            Ok(s) => (s, false),
            Err(resp) => return *resp,
        },
    };
    let client = host.next_client.fetch_add(1, Ordering::Relaxed);
    tracing::info!(session = %session, shell = %shell_id, client, reconnected, "client connected");
    let conn_host = Arc::clone(&host);
    let conn_shell = Arc::clone(&shell);
    let mut resp = ws
        // The WebSocket layer allows a little more than the protocol's 64 KiB
        // so that an oversized message gets the protocol's own error.
        .max_message_size(2 * MAX_FRAME)
        .max_frame_size(2 * MAX_FRAME)
        // Small per-connection buffers: hundreds of idle shells per host.
        .read_buffer_size(crate::protocol::WS_READ_BUFFER)
        .write_buffer_size(crate::protocol::WS_WRITE_BUFFER)
        .on_upgrade(move |socket| {
            conn::serve_client(socket, conn_host, conn_shell, client, reconnected)
        });
    if let Ok(v) = HeaderValue::from_str(&shell_id) {
        resp.headers_mut().insert(SHELL_ID_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&session) {
        resp.headers_mut().insert(SESSION_HEADER, v);
    }
    resp
}

async fn start_shell(
    host: &Arc<Host>,
    session: &str,
    shell_id: &str,
) -> Result<Arc<dyn Target>, Box<Response>> {
    let Ok(permit) = Arc::clone(&host.slots).try_acquire_owned() else {
        host.metrics.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(session, shell = shell_id, "refused: shell limit reached");
        return Err(Box::new(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyShells",
            &format!(
                "this host already runs its maximum of {} shells; close one or retry later",
                host.opts.max_shells
            ),
        )));
    };
    let internal = |e: String| {
        host.metrics
            .recording_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(session, shell = shell_id, error = %e, "cannot start shell");
        Box::new(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e,
        ))
    };
    let now = crate::header::unix_now();
    let source = match host.opts.backend {
        Backend::Local { .. } => Source::Serve,
        Backend::Proxy(_) => Source::Proxy,
    };
    let dest = Arc::clone(&host.opts.destination);
    let new = dest
        .create(&KeyParts {
            source: source.as_str(),
            session,
            shell: shell_id,
            start: now,
        })
        .map_err(|e| internal(format!("cannot create the recording: {e}")))?;
    let path = new.path.clone();
    let size = TermSize::DEFAULT;
    let info = RecordingInfo::shell(source, session, shell_id, &host.opts.principal, now);
    let (command, info) = match &host.opts.backend {
        Backend::Local { command } => {
            let command = if command.is_empty() {
                vec![
                    std::env::var("SHELL")
                        .ok()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "/bin/sh".into()),
                ]
            } else {
                command.clone()
            };
            let line = crate::rec::shell_join(&command);
            (command, info.with_command(Some(line)))
        }
        Backend::Proxy(up) => (Vec::new(), info.with_upstream(&up.url)),
    };
    let header = info.after(new.after.clone()).header();
    let done = dest.on_done(new);
    let recording = Recording::start(&path, header, host.opts.writer.clone(), Some(done))
        .map_err(|e| internal(e.to_string()))?;
    let watch_failure = recording.clone();
    let registry = Arc::clone(host);
    let key = (session.to_string(), shell_id.to_string());
    let on_end = move |done: Arc<dyn Target>| {
        let mut shells = registry.shells();
        if shells.get(&key).is_some_and(|s| Arc::ptr_eq(s, &done)) {
            shells.remove(&key);
        }
        tracing::info!(session = %done.session_id(), shell = %done.shell_id(), recording = %done.recording_path().display(), "shell ended; recording sealed");
    };
    let shell: Arc<dyn Target> = match &host.opts.backend {
        Backend::Local { .. } => Shell::spawn(
            session.to_string(),
            shell_id.to_string(),
            &command,
            size,
            recording,
            permit,
            host.opts.strict,
            move |done| on_end(done),
        )
        .map_err(|e| internal(format!("cannot start {:?}: {e}", command.join(" "))))?,
        Backend::Proxy(up) => {
            let started = crate::proxy::ProxiedShell::start(
                up.clone(),
                session.to_string(),
                shell_id.to_string(),
                recording.clone(),
                move |done| {
                    // The slot is freed when the proxied shell ends.
                    drop(permit);
                    on_end(done)
                },
            )
            .await;
            match started {
                Ok(s) => s,
                Err(e) => {
                    // Nothing was recorded: no header-only file is left.
                    let _ = recording.finish(EndReason::Closed).await;
                    let _ = std::fs::remove_file(&path);
                    tracing::warn!(session, shell = shell_id, error = ?e, "upstream refused or unreachable");
                    return Err(Box::new(match e {
                        crate::proxy::ConnectError::Refused(status, body) => {
                            let status =
                                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                            (status, [("content-type", "application/json")], body).into_response()
                        }
                        crate::proxy::ConnectError::Unreachable(why) => refuse(
                            StatusCode::BAD_GATEWAY,
                            "UpstreamUnreachable",
                            &format!("the upstream shell host cannot be reached: {why}"),
                        ),
                    }));
                }
            }
        }
    };
    if host.opts.strict {
        // --strict: a shell whose recording fails is ended (local or
        // proxied), even when it is quiet at that moment.
        let target = Arc::clone(&shell);
        tokio::spawn(async move {
            watch_failure.wait_failed().await;
            tracing::error!(session = %target.session_id(), shell = %target.shell_id(), "the recording failed; ending the shell (--strict)");
            target.end(EndReason::Interrupted {
                detail: "the recording failed (--strict)".into(),
            });
        });
    }
    host.metrics.shells_started.fetch_add(1, Ordering::Relaxed);
    host.shells().insert(
        (session.to_string(), shell_id.to_string()),
        Arc::clone(&shell),
    );
    tracing::info!(session, shell = shell_id, recording = %path.display(), "shell started");
    Ok(shell)
}

async fn metrics(State(host): State<Arc<Host>>) -> impl IntoResponse {
    let m = &host.metrics;
    let (live, backlog) = {
        let shells = host.shells();
        let backlog: usize = shells.values().map(|s| s.att().recording().backlog()).sum();
        (shells.len(), backlog)
    };
    let body = format!(
        "# HELP termtrail_live_shells Shells currently running.\n# TYPE termtrail_live_shells gauge\ntermtrail_live_shells {live}\n\
# HELP termtrail_shells_started_total Shells started.\n# TYPE termtrail_shells_started_total counter\ntermtrail_shells_started_total {}\n\
# HELP termtrail_connections_total WebSocket connection attempts.\n# TYPE termtrail_connections_total counter\ntermtrail_connections_total {}\n\
# HELP termtrail_shells_refused_total Connections refused at the shell limit.\n# TYPE termtrail_shells_refused_total counter\ntermtrail_shells_refused_total {}\n\
# HELP termtrail_bytes_relayed_total Bytes relayed, by direction.\n# TYPE termtrail_bytes_relayed_total counter\ntermtrail_bytes_relayed_total{{direction=\"in\"}} {}\ntermtrail_bytes_relayed_total{{direction=\"out\"}} {}\n\
# HELP termtrail_protocol_errors_total Connections closed for protocol violations.\n# TYPE termtrail_protocol_errors_total counter\ntermtrail_protocol_errors_total {}\n\
# HELP termtrail_recording_failures_total Recordings that could not be started or written.\n# TYPE termtrail_recording_failures_total counter\ntermtrail_recording_failures_total {}\n\
# HELP termtrail_recording_backlog_events Events accepted but not yet written, over all shells (recording lag).\n# TYPE termtrail_recording_backlog_events gauge\ntermtrail_recording_backlog_events {backlog}\n",
        m.shells_started.load(Ordering::Relaxed),
        m.connections.load(Ordering::Relaxed),
        m.refused.load(Ordering::Relaxed),
        m.bytes_in.load(Ordering::Relaxed),
        m.bytes_out.load(Ordering::Relaxed),
        m.protocol_errors.load(Ordering::Relaxed),
        m.recording_failures.load(Ordering::Relaxed) + crate::recording::failures(),
    );
    ([("content-type", "text/plain; version=0.0.4")], body)
}
