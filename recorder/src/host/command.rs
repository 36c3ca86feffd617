//! The one-shot command call (the InvokeAgentRuntimeCommand analogue):
//! `POST /runtimes/<arn>/commands` with `{"command": "...", "timeout": S}`
//! runs the command on the backend (with `sh -c`, no PTY), streams its
//! output as JSON Lines and ends with its exit code. Every call is
//! recorded. This module checks the request and starts the recording.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use termtrail_store::layout::KeyParts;
use tokio::sync::mpsc;

use super::access::{self, Ask};
use super::backend::{CommandCall, CommandError};
use super::command_limit::CommandSlot;
use super::http::{auth_refusal, refuse};
use super::state::HostState;
use crate::header::RecordingInfo;
use crate::policy::Action;
use crate::protocol::{SESSION_HEADER, valid_session_id};
use crate::recording::Recording;

/// Largest command accepted, in characters.
const MAX_COMMAND: usize = 65_536;

#[derive(Deserialize)]
struct CommandRequest {
    command: String,
    #[serde(default = "default_timeout")]
    timeout: u64,
}

fn default_timeout() -> u64 {
    300
}

/// `POST /runtimes/<arn>/commands`.
pub(super) async fn run_command(
    State(host): State<Arc<HostState>>,
    ConnectInfo(super::ClientAddr(peer)): ConnectInfo<super::ClientAddr>,
    Path(requested): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // The runtime really reached (a proxy opens its own): the policy's resource.
    let runtime = host.backend.runtime(&requested);
    // Who it is, before anything is read or started.
    let identity = match host.opts.auth.authenticate(&headers).await {
        Ok(id) => id,
        Err(e) => return auth_refusal(&host, &e, peer, (Action::RunCommand, &runtime)),
    };
    if let Some(why) = host.backend.no_commands() {
        return refuse(StatusCode::NOT_IMPLEMENTED, "NotImplemented", &why);
    }
    let Some(session) = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| valid_session_id(s))
        .map(str::to_string)
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "a runtime session id header is required",
        );
    };
    // Running one command is its own grant, distinct from opening a shell.
    let ask = Ask {
        identity: &identity,
        action: Action::RunCommand,
        runtime: &runtime,
        session: Some(&session),
        shell: None,
        peer,
        headers: &headers,
    };
    let grant = match access::decide(&host, &ask) {
        Ok(g) => g,
        Err(resp) => return *resp,
    };
    let req: CommandRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("invalid request body: {e}"),
            );
        }
    };
    if req.command.is_empty() || req.command.chars().count() > MAX_COMMAND {
        return refuse(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "command must be 1 to 65536 characters",
        );
    }
    if !(1..=3600).contains(&req.timeout) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "timeout must be 1 to 3600 seconds",
        );
    }
    // Beyond --max-commands: refused at once, before anything is created.
    let slot = match CommandSlot::take(&host) {
        Ok(slot) => slot,
        Err(refusal) => {
            tracing::warn!(session, "refused: {refusal}");
            return refusal.response();
        }
    };
    let now = crate::header::unix_now();
    let id = match termtrail_format::writer::new_recording_id() {
        Ok(id) => format!("cmd-{}", &hex::encode(id)[..16]),
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &e.to_string(),
            );
        }
    };
    let source = host.backend.source();
    let dest = Arc::clone(&host.opts.destination);
    let new = match dest.create(&KeyParts {
        source: source.as_str(),
        session: &session,
        shell: &id,
        start: now,
    }) {
        Ok(n) => n,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &e.to_string(),
            );
        }
    };
    let header = RecordingInfo::command(
        source,
        &session,
        &id,
        &identity.principal,
        &req.command,
        now,
    )
    .with_identity(&identity)
    .with_source(peer)
    .with_break_glass(grant.break_glass.as_deref())
    .after(new.after.clone())
    .header();
    let path = new.path.clone();
    let rel = new.rel.clone();
    // A command call's recording is audited as sealed (no shell events).
    let (started, started_rx) = tokio::sync::oneshot::channel();
    let _ = started.send(());
    let done = dest.on_done(new);
    let done = super::audit::audited_on_done(&host, &session, &id, &rel, false, started_rx, done);
    let recording = match Recording::start(
        &path,
        header,
        host.opts.writer.clone(),
        &host.opts.redaction,
        Some(done),
    ) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &e.to_string(),
            );
        }
    };
    let call = CommandCall {
        session,
        id,
        command: req.command,
        // A break-glass grant bounds the command too.
        timeout: match grant.until {
            Some(until) => req.timeout.min(until.as_secs().max(1)),
            None => req.timeout,
        },
        body,
        slot,
    };
    match host.backend.command(call, recording).await {
        Ok(lines) => ndjson(lines),
        Err(CommandError::Internal(why)) => {
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &why)
        }
        Err(CommandError::Unreachable(why)) => {
            refuse(StatusCode::BAD_GATEWAY, "UpstreamUnreachable", &why)
        }
        Err(CommandError::Answered(status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, [("content-type", "application/json")], body).into_response()
        }
    }
}

/// A 200 response streaming the lines sent into `rx` as JSON Lines.
fn ndjson(rx: mpsc::Receiver<String>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, std::io::Error>(line), rx))
    });
    (
        StatusCode::OK,
        [("content-type", "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}
