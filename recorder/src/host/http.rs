//! The host's HTTP side: the shell endpoint (upgrade to a client
//! connection, starting the shell when it is new), `/metrics`, and the
//! protocol's JSON refusals.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use termtrail_format::seal::EndReason;
use termtrail_store::layout::KeyParts;

use super::access::{self, Ask, Grant};
use super::audit::Actor;
use super::backend::{NewShell, OpenError, Shell, StartRecording, StartRecordingError};
use super::metrics::add;
use super::state::HostState;
use crate::auth::{AuthError, Identity};
use crate::header::{RecordingInfo, unix_now};
use crate::policy::Action;
use crate::protocol::{
    MAX_FRAME, SESSION_HEADER, SHELL_ID_HEADER, status_failure, valid_session_id, valid_shell_id,
};
use crate::recording::Recording;
use crate::upstream::ConnectError;

/// A refusal in the protocol's JSON shape.
pub(crate) fn refuse(status: StatusCode, reason: &str, message: &str) -> Response {
    let body = status_failure(reason, status.as_u16(), message);
    (status, [("content-type", "application/json")], body).into_response()
}

/// The answer to a request that is not authenticated: 401 (503 when STS
/// could not be asked) with a Status body saying why.
pub(crate) fn auth_refusal(
    host: &HostState,
    e: &AuthError,
    peer: SocketAddr,
    (action, runtime): (Action, &str),
) -> Response {
    add(&host.metrics.auth_failures, 1);
    access::audit_unauthenticated(host, action, runtime, peer, e.reason());
    if super::lograte::allow(super::lograte::Kind::Refusal) {
        tracing::info!(%peer, reason = e.reason(), "refused: {e}");
    }
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut resp = refuse(status, e.reason(), &e.to_string());
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    }
    resp
}

/// `GET /runtimes/<arn>/ws/shells`: a client for a new or existing shell.
pub(crate) async fn shell_ws(
    State(host): State<Arc<HostState>>,
    ConnectInfo(super::ClientAddr(peer)): ConnectInfo<super::ClientAddr>,
    Path(requested): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    add(&host.metrics.connections, 1);
    // The runtime really reached (a proxy opens its own): the policy's resource.
    let runtime = host.backend.runtime(&requested);
    // Who it is, before anything is read or started.
    let identity = match host.opts.auth.authenticate(&headers).await {
        Ok(id) => id,
        Err(e) => return auth_refusal(&host, &e, peer, (Action::OpenShell, &runtime)),
    };
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
            Err(e) => {
                return refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    &e.to_string(),
                );
            }
        },
    };
    // What it may do: a decision of the policy for every connect, re-attach
    // included.
    let ask = Ask {
        identity: &identity,
        action: Action::OpenShell,
        runtime: &runtime,
        session: Some(&session),
        shell: Some(&shell_id),
        peer,
        headers: &headers,
    };
    // Someone else's shell is refused before the policy is asked.
    let live = host.shells.live(&session, &shell_id);
    if let Some(s) = &live
        && let Err(resp) = access::may_rejoin(&host, s.as_ref(), &ask)
    {
        return *resp;
    }
    let grant = match access::decide(&host, &ask) {
        Ok(g) => g,
        Err(resp) => return *resp,
    };
    let (shell, reconnected) = match live {
        Some(s) => (s, true),
        None => {
            let opening = Opening {
                session: &session,
                shell_id: &shell_id,
                identity: &identity,
                peer,
                grant: &grant,
            };
            match start_shell(&host, &opening).await {
                Ok(s) => {
                    let resumed = s.resumed();
                    (s, resumed)
                }
                Err(resp) => return *resp,
            }
        }
    };
    let client = host.next_client.fetch_add(1, Ordering::Relaxed);
    if super::lograte::allow(super::lograte::Kind::Connection) {
        tracing::info!(session = %session, shell = %shell_id, client, reconnected, principal = %identity.principal, %peer, "client connected");
    }
    let conn_host = Arc::clone(&host);
    let (s, sh) = (session.clone(), shell_id.clone());
    let on_attach = move |took_over| {
        if reconnected || took_over {
            let actor = Actor {
                identity: &identity,
                peer,
            };
            host.audit(super::audit::attach_event(
                &s, &sh, client, took_over, &actor,
            ));
        }
    };
    let mut resp = ws
        // The WebSocket layer allows a little more than the protocol's 64 KiB
        // so that an oversized message gets the protocol's own error.
        .max_message_size(2 * MAX_FRAME)
        .max_frame_size(2 * MAX_FRAME)
        // Small per-connection buffers: hundreds of idle shells per host.
        .read_buffer_size(crate::protocol::WS_READ_BUFFER)
        .write_buffer_size(crate::protocol::WS_WRITE_BUFFER)
        // A browser that sent its token as a subprotocol also offers the
        // bare marker; selecting it (never the token) completes its upgrade.
        .protocols([crate::auth::token::BEARER_PROTOCOL])
        .on_upgrade(move |socket| async move {
            let ctx = super::conn::ClientCtx {
                metrics: &conn_host.metrics,
                max_terminal: conn_host.opts.max_terminal,
            };
            super::conn::serve_client(socket, ctx, shell, client, reconnected, on_attach).await
        });
    if let Ok(v) = HeaderValue::from_str(&shell_id) {
        resp.headers_mut().insert(SHELL_ID_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&session) {
        resp.headers_mut().insert(SESSION_HEADER, v);
    }
    resp
}

/// A new shell: for whom, on what grant.
struct Opening<'a> {
    session: &'a str,
    shell_id: &'a str,
    identity: &'a Identity,
    peer: SocketAddr,
    grant: &'a Grant,
}

/// Starts a shell: takes a slot, starts its recording, opens it on the
/// backend and registers it; a refusal for the client otherwise.
async fn start_shell(
    host: &Arc<HostState>,
    opening: &Opening<'_>,
) -> Result<Arc<dyn Shell>, Box<Response>> {
    let Opening {
        session,
        shell_id,
        identity,
        peer,
        grant,
    } = *opening;
    let Ok(permit) = Arc::clone(&host.slots).try_acquire_owned() else {
        add(&host.metrics.refused, 1);
        if super::lograte::allow(super::lograte::Kind::Refusal) {
            tracing::warn!(session, shell = shell_id, "refused: shell limit reached");
        }
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
        add(&host.metrics.recording_failures, 1);
        tracing::error!(session, shell = shell_id, error = %e, "cannot start shell");
        Box::new(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e,
        ))
    };
    let now = unix_now();
    let backend = &host.backend;
    let (started, started_rx) = tokio::sync::oneshot::channel();
    let info = RecordingInfo::shell(
        backend.source(),
        session,
        shell_id,
        &identity.principal,
        now,
    )
    .with_identity(identity)
    .with_source(peer)
    .with_break_glass(grant.break_glass.as_deref());
    let info = backend.describe(info);
    // The backend starts the recording once the shell will exist (a relay
    // after its upstream accepted): a refusal leaves nothing behind.
    let made = Arc::new(std::sync::Mutex::new(None));
    let start_recording: StartRecording = {
        let made = Arc::clone(&made);
        let host = Arc::clone(host);
        let (session, shell) = (session.to_string(), shell_id.to_string());
        Box::new(move || {
            let dest = Arc::clone(&host.opts.destination);
            let new = dest
                .create(&KeyParts {
                    source: host.backend.source().as_str(),
                    session: &session,
                    shell: &shell,
                    start: now,
                })
                .map_err(StartRecordingError::Create)?;
            let (path, rel) = (new.path.clone(), new.rel.clone());
            let header = info.after(new.after.clone()).header();
            let done = dest.on_done(new);
            let done = super::audit::audited_on_done(
                &host, &session, &shell, &rel, true, started_rx, done,
            );
            let recording = Recording::start(
                &path,
                header,
                host.opts.writer.clone(),
                &host.opts.redaction,
                Some(done),
            )
            .map_err(StartRecordingError::Write)?;
            *made.lock().unwrap_or_else(|p| p.into_inner()) = Some((recording.clone(), path, rel));
            Ok(recording)
        })
    };
    let registry = Arc::clone(&host.shells);
    let opened = backend
        .open(NewShell {
            session: session.to_string(),
            shell: shell_id.to_string(),
            recording: start_recording,
            on_end: Box::new(move |done: Arc<dyn Shell>| {
                registry.remove(&done);
                tracing::info!(session = %done.session_id(), shell = %done.shell_id(), recording = %done.recording_path().display(), "shell ended; recording sealed");
            }),
        })
        .await;
    let shell = match opened {
        Ok(s) => s,
        Err(OpenError::Upstream(e)) => {
            // Nothing was created: no file, journal entry or directory.
            if matches!(e, ConnectError::Refused(429, _)) {
                add(&host.metrics.refused, 1);
            }
            if super::lograte::allow(super::lograte::Kind::Refusal) {
                tracing::warn!(session, shell = shell_id, error = ?e, "upstream refused or unreachable");
            }
            return Err(Box::new(upstream_refusal(e)));
        }
        Err(e @ (OpenError::Spawn { .. } | OpenError::Recording(_))) => {
            return Err(internal(e.to_string()));
        }
    };
    let Some((recording, path, rel)) = made.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return Err(internal("the shell started without its recording".into()));
    };
    if host.opts.strict {
        // --strict: a shell whose recording fails is ended (local or
        // relayed), even when it is quiet at that moment.
        let target = Arc::clone(&shell);
        let failure = recording.failure();
        tokio::spawn(async move {
            failure.wait().await;
            tracing::error!(session = %target.session_id(), shell = %target.shell_id(), "the recording failed; ending the shell (--strict)");
            target.end(EndReason::Interrupted {
                detail: "the recording failed (--strict)".into(),
            });
        });
    }
    let audited = host
        .audit_start_of_shell(super::audit::shell_start_event(
            session,
            shell_id,
            &Actor { identity, peer },
            &rel,
            grant.break_glass.as_deref(),
        ))
        .await;
    let _ = started.send(());
    if let Err(e) = audited {
        shell.end(EndReason::Interrupted {
            detail: "its start could not be audited (--strict)".into(),
        });
        let why = format!("the shell's start could not be audited (--strict): {e}");
        return Err(Box::new(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &why,
        )));
    }
    // The slot is freed the moment the shell's program has ended (not
    // once its recording is sealed): a client told "exited" may start the
    // next shell at once.
    shell.att().hold_slot(permit);
    shell.att().set_owner(&identity.key());
    if let Some(deadline) = access::deadline_of(grant) {
        shell.att().set_deadline(deadline);
    }
    add(&host.metrics.shells_started, 1);
    host.shells.insert(Arc::clone(&shell));
    tracing::info!(session, shell = shell_id, recording = %path.display(), "shell started");
    Ok(shell)
}

/// The client's answer when the upstream refused or cannot be reached.
fn upstream_refusal(e: ConnectError) -> Response {
    match e {
        ConnectError::Refused(status, body) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, [("content-type", "application/json")], body).into_response()
        }
        ConnectError::Unreachable(why) => refuse(
            StatusCode::BAD_GATEWAY,
            "UpstreamUnreachable",
            &format!("the upstream shell host cannot be reached: {why}"),
        ),
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(host): State<Arc<HostState>>) -> impl IntoResponse {
    let shells = host.shells.all();
    let backlog: usize = shells.iter().map(|s| s.att().recording().backlog()).sum();
    // A shell whose program has exited is not live, even while its
    // recording is being sealed (it no longer holds a slot either).
    let live = shells.iter().filter(|s| !s.att().exited()).count();
    let body = host.metrics.render(live, backlog, host.conns.open())
        + &super::audit::metrics(&host)
        + &super::metrics::runtime();
    ([("content-type", "text/plain; version=0.0.4")], body)
}
