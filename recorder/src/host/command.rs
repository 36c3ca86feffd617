//! The one-shot command call (the InvokeAgentRuntimeCommand analogue):
//! `POST /runtimes/<arn>/commands` with `{"command": "...", "timeout": S}`
//! runs the command on the backend (with `sh -c`, no PTY), streams its
//! output as the service's event stream (JSON Lines when the client's
//! `Accept` asks for them; [`crate::command_wire`]) and ends with its exit
//! code. Every call is recorded. This module checks the request, starts the
//! recording, and gives every refusal the service's error type.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use termtrail_store::layout::KeyParts;

use super::access::{self, Ask};
use super::backend::{CommandCall, CommandError, Events};
use super::command_limit::CommandSlot;
use super::http::{auth_refusal, refuse};
use super::state::HostState;
use crate::command_wire::{CommandEvent, Encoder, Exception, Format};
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
    let format = Format::negotiate(
        headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let ids = (session.clone(), id.clone());
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
        Ok(events) => answer(format, &ids, events),
        Err(CommandError::Internal(why)) => {
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &why)
        }
        Err(CommandError::Unreachable(why)) => {
            refuse(StatusCode::BAD_GATEWAY, "UpstreamUnreachable", &why)
        }
        Err(CommandError::Answered {
            status,
            error_type,
            body,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut resp = (status, [("content-type", "application/json")], body).into_response();
            // The upstream's error type is passed on (else the status names one).
            if let Some(t) = error_type.and_then(|t| HeaderValue::from_str(&t).ok()) {
                resp.headers_mut().insert(ERROR_TYPE, t);
            }
            resp
        }
    }
}

/// The header naming a refusal's modelled error (what botocore reads).
const ERROR_TYPE: &str = "x-amzn-errortype";

/// Gives every refusal of the command endpoint the service's error type:
/// `x-amzn-errortype` from its status (§9), unless it already has one. The
/// body stays the §4 status object, whose `message` is the error's message.
pub(super) async fn with_error_type(mut resp: Response) -> Response {
    let status = resp.status();
    if status != StatusCode::OK && !resp.headers().contains_key(ERROR_TYPE) {
        let name = Exception::for_status(status.as_u16()).error_type();
        resp.headers_mut()
            .insert(ERROR_TYPE, HeaderValue::from_static(name));
    }
    resp
}

/// A 200 response streaming the call's events in `format`, with the
/// session id and the call's id (`x-amzn-requestid`) as headers. An answer
/// that ends without a `contentStop` ends with an `internalServerException`.
fn answer(format: Format, (session, id): &(String, String), events: Events) -> Response {
    let state = (events, Encoder::new(format), false);
    let stream = futures_util::stream::unfold(state, |(mut rx, mut enc, done)| async move {
        if done {
            return None;
        }
        loop {
            let (event, last) = match rx.recv().await {
                Some(e) => {
                    let last = matches!(e, CommandEvent::Stop { .. } | CommandEvent::Failed(..));
                    (e, last)
                }
                None => (
                    CommandEvent::Failed(
                        Exception::InternalServer,
                        "the command's answer ended without an exit code".into(),
                    ),
                    true,
                ),
            };
            let bytes = enc.encode(&event);
            if !bytes.is_empty() || last {
                return Some((Ok::<_, std::io::Error>(bytes), (rx, enc, last)));
            }
        }
    });
    let mut resp = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    for (name, value) in [(SESSION_HEADER, session), ("x-amzn-requestid", id)] {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    resp
}
