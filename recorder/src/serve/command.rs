//! The one-shot command call (the InvokeAgentRuntimeCommand analogue):
//! `POST /runtimes/<arn>/commands` with `{"command": "...", "timeout": S}`
//! runs the command with `sh -c` (no PTY), streams its output as JSON Lines
//! and ends with its exit code. Every call is recorded.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use termtrail_format::event::EventData;
use termtrail_format::seal::EndReason;
use termtrail_format::store::KeyParts;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::{Host, refuse};
use crate::header::{RecordingInfo, Source};
use crate::protocol::{SESSION_HEADER, valid_session_id};
use crate::recording::Recording;

/// Largest command accepted, in characters.
const MAX_COMMAND: usize = 65_536;

#[derive(Deserialize)]
pub(super) struct CommandRequest {
    command: String,
    #[serde(default = "default_timeout")]
    timeout: u64,
}

fn default_timeout() -> u64 {
    300
}

pub(super) async fn run_command(
    State(host): State<Arc<Host>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let upstream = match &host.opts.backend {
        super::Backend::Proxy(up) if up.protocol == crate::proxy::UpstreamProtocol::AgentCore => {
            Some(up.clone())
        }
        super::Backend::Proxy(_) => {
            return refuse(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "terminado has no one-shot command call; open a shell instead",
            );
        }
        super::Backend::Local { .. } => None,
    };
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
    let now = crate::header::unix_now();
    let id = match termtrail_format::writer::new_recording_id() {
        Ok(id) => format!("cmd-{}", &hex::encode(id)[..16]),
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e),
    };
    let source = if upstream.is_some() {
        Source::Proxy
    } else {
        Source::Serve
    };
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
        &host.opts.principal,
        &req.command,
        now,
    )
    .after(new.after.clone())
    .header();
    let path = new.path.clone();
    let done = dest.on_done(new);
    let recording = match Recording::start(&path, header, host.opts.writer.clone(), Some(done)) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &e.to_string(),
            );
        }
    };
    if let Some(up) = upstream {
        return forward(up, session, body, recording).await;
    }
    let mut child = match tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&req.command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let _ = recording.finish(EndReason::Closed).await;
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &format!("cannot run sh: {e}"),
            );
        }
    };
    tracing::info!(session = %session, command = %id, "command started");
    let (tx, rx) = mpsc::channel::<String>(64);
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let timeout = Duration::from_secs(req.timeout);
    tokio::spawn(async move {
        let _ = tx
            .send(json!({"contentStart": {}}).to_string() + "\n")
            .await;
        let (out_tx, mut out_rx) = mpsc::channel::<(bool, Vec<u8>)>(16);
        for (is_err, pipe) in [
            (false, stdout.take().map(Pipe::Out)),
            (true, stderr.take().map(Pipe::Err)),
        ] {
            let Some(mut pipe) = pipe else { continue };
            let out_tx = out_tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 << 10];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 || out_tx.send((is_err, buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            });
        }
        drop(out_tx);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut timed_out = false;
        loop {
            tokio::select! {
                chunk = out_rx.recv() => {
                    let Some((is_err, bytes)) = chunk else { break };
                    recording.record(EventData::Output(bytes.clone())).await;
                    let key = if is_err { "stderr" } else { "stdout" };
                    let line = json!({"contentDelta": {key: String::from_utf8_lossy(&bytes)}}).to_string() + "\n";
                    let _ = tx.send(line).await;
                }
                _ = &mut deadline, if !timed_out => {
                    timed_out = true;
                    if let Some(pid) = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                    }
                }
            }
        }
        let (code, _) = crate::rec::exit_code(child.wait().await);
        let code = if timed_out { 124 } else { code };
        recording.record(EventData::Exit(code)).await;
        let end = if timed_out {
            EndReason::Interrupted {
                detail: format!("command timed out after {} s", timeout.as_secs()),
            }
        } else {
            EndReason::Exited { code }
        };
        let _ = recording.finish(end).await;
        let status = if timed_out { "TIMED_OUT" } else { "COMPLETED" };
        let _ = tx
            .send(json!({"contentStop": {"exitCode": code, "status": status}}).to_string() + "\n")
            .await;
    });
    ndjson(rx)
}

enum Pipe {
    Out(tokio::process::ChildStdout),
    Err(tokio::process::ChildStderr),
}

impl Pipe {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Pipe::Out(p) => p.read(buf).await,
            Pipe::Err(p) => p.read(buf).await,
        }
    }
}

/// The proxy's command call: the same request upstream, its JSON Lines
/// streamed back as they come and recorded on the way.
async fn forward(
    up: crate::proxy::Upstream,
    session: String,
    body: axum::body::Bytes,
    recording: Recording,
) -> Response {
    use http_body_util::{BodyExt, Full};
    let fail = |msg: String| refuse(StatusCode::BAD_GATEWAY, "UpstreamUnreachable", &msg);
    let (authority, arn) = match crate::proxy::command_target(&up.url) {
        Some(t) => t,
        None => return fail(format!("cannot derive the command URL from {}", up.url)),
    };
    let stream = match crate::tls::connect_stream(&authority, up.tls.as_ref()).await {
        Ok(s) => s,
        Err(e) => {
            let _ = recording.finish(EndReason::Closed).await;
            return fail(format!("{authority}: {e}"));
        }
    };
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => return fail(e.to_string()),
        };
    tokio::spawn(conn);
    let req = hyper::Request::post(format!("/runtimes/{arn}/commands"))
        .header("host", &authority)
        .header("content-type", "application/json")
        .header(SESSION_HEADER, &session)
        .body(Full::new(body));
    let resp = match req {
        Ok(r) => sender.send_request(r).await,
        Err(e) => return fail(e.to_string()),
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let status = resp.status();
    let mut upstream_body = resp.into_body();
    if status != StatusCode::OK {
        let bytes = upstream_body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let _ = recording.finish(EndReason::Closed).await;
        return (status, [("content-type", "application/json")], bytes).into_response();
    }
    let (tx, rx) = mpsc::channel::<String>(64);
    tokio::spawn(async move {
        let mut pending = Vec::new();
        let mut end = EndReason::Interrupted {
            detail: "upstream ended the stream early".into(),
        };
        while let Some(Ok(frame)) = upstream_body.frame().await {
            let Some(data) = frame.data_ref() else {
                continue;
            };
            pending.extend_from_slice(data);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let v: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
                if let Some(d) = v.get("contentDelta") {
                    for key in ["stdout", "stderr"] {
                        if let Some(text) = d[key].as_str() {
                            recording
                                .record(EventData::Output(text.as_bytes().to_vec()))
                                .await;
                        }
                    }
                } else if let Some(stop) = v.get("contentStop") {
                    let code = stop["exitCode"].as_i64().unwrap_or(255) as i32;
                    recording.record(EventData::Exit(code)).await;
                    end = if stop["status"] == "TIMED_OUT" {
                        EndReason::Interrupted {
                            detail: "command timed out upstream".into(),
                        }
                    } else {
                        EndReason::Exited { code }
                    };
                }
                let _ = tx.send(String::from_utf8_lossy(&line).into_owned()).await;
            }
        }
        let _ = recording.finish(end).await;
    });
    ndjson(rx)
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
