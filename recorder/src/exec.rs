//! `termtrail exec`: the one-shot client. POSTs a command to a shell host's
//! command endpoint (`docs/protocol.md` §9), prints its output as it streams
//! (stdout to stdout, stderr to stderr) and returns its exit code. It asks
//! for JSON Lines (exact bytes, even those that are not UTF-8) and reads the
//! service's event stream too, whichever the host answers.

use std::io::Write;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};

use crate::command_wire::{CommandEvent, Decoder, EVENT_STREAM, Format, JSON_LINES, OutStream};
use crate::protocol::SESSION_HEADER;

/// Exec failures.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The URL is not `ws://HOST:PORT[/…]` or `http://HOST:PORT[/…]`.
    #[error("bad URL {0:?}: expected ws://, wss://, http:// or https://HOST:PORT")]
    Url(String),
    /// Could not talk to the host.
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    /// The host refused (HTTP status and its message).
    #[error("the host refused the command: HTTP {0}: {1}")]
    Refused(u16, String),
    /// The stream ended without an exit code.
    #[error("the host ended the stream without an exit code")]
    Truncated,
    /// The host answered in neither of the call's formats.
    #[error("the host answered with content type {0:?}, not {EVENT_STREAM} or {JSON_LINES}")]
    ContentType(String),
    /// The answer could not be read.
    #[error("the host's answer is unreadable: {0}")]
    Wire(#[from] crate::command_wire::WireError),
    /// The call failed after its output started (an exception event: its
    /// error type and message).
    #[error("the command failed: {0}: {1}")]
    Failed(&'static str, String),
    /// No token could be made for the request.
    #[error("{0}")]
    Auth(#[from] crate::auth::client::ClientAuthError),
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Exit code (124 when it timed out).
    pub exit_code: i32,
    /// Whether the host stopped it at the timeout.
    pub timed_out: bool,
}

/// `host:port` of a ws://, wss://, http:// or https:// URL, and whether it
/// uses TLS.
pub fn authority(url: &str) -> Result<(String, bool), ExecError> {
    let (rest, tls) = [
        ("ws://", false),
        ("http://", false),
        ("wss://", true),
        ("https://", true),
    ]
    .iter()
    .find_map(|(p, tls)| url.strip_prefix(p).map(|r| (r, *tls)))
    .ok_or_else(|| ExecError::Url(url.into()))?;
    let auth = rest.split('/').next().unwrap_or_default();
    if auth.is_empty() {
        return Err(ExecError::Url(url.into()));
    }
    Ok((auth.to_string(), tls))
}

/// One command call.
pub struct ExecRequest<'a> {
    /// `host:port`.
    pub authority: &'a str,
    /// Runtime path segment (URL-encoded ARN).
    pub arn_path: &'a str,
    /// Runtime session id.
    pub session: &'a str,
    /// The command, run with `sh -c`.
    pub command: &'a str,
    /// Seconds before the host stops it.
    pub timeout_secs: u64,
    /// TLS client configuration for `https`.
    pub tls: Option<&'a std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
    /// How to authenticate, if at all.
    pub auth: Option<&'a crate::auth::client::ClientAuth>,
    /// A break-glass reason to state (header `X-Termtrail-Break-Glass`).
    pub break_glass: Option<&'a str>,
}

/// Runs the request, streaming the command's output into `stdout`/`stderr`.
pub async fn exec(
    req: &ExecRequest<'_>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<ExecOutcome, ExecError> {
    let ExecRequest {
        authority,
        arn_path,
        session,
        command,
        timeout_secs,
        tls,
        auth,
        break_glass,
    } = *req;
    let authorization = match auth {
        Some(a) => Some(a.header().await?),
        None => None,
    };
    let unreachable =
        |e: &dyn std::fmt::Display| ExecError::Unreachable(authority.to_string(), e.to_string());
    let stream = crate::tls::connect_stream(authority, tls)
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
    tokio::spawn(conn);
    let body = json!({"command": command, "timeout": timeout_secs}).to_string();
    let mut http_req = hyper::Request::post(format!("/runtimes/{arn_path}/commands"))
        .header("host", authority)
        .header("content-type", "application/json")
        .header("accept", format!("{JSON_LINES}, {EVENT_STREAM};q=0.5"))
        .header(SESSION_HEADER, session)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| unreachable(&e))?;
    if let Some(v) = authorization {
        http_req
            .headers_mut()
            .insert(http::header::AUTHORIZATION, v);
    }
    if let Some(reason) = break_glass {
        let v = http::HeaderValue::from_str(reason).map_err(|e| unreachable(&e))?;
        http_req
            .headers_mut()
            .insert(crate::host::access::BREAK_GLASS_HEADER, v);
    }
    let resp = sender
        .send_request(http_req)
        .await
        .map_err(|e| unreachable(&e))?;
    let status = resp.status().as_u16();
    let resp_content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = resp.into_body();
    if status != 200 {
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let msg = v["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        return Err(ExecError::Refused(status, msg));
    }
    let content_type = resp_content_type.unwrap_or_default();
    let format =
        Format::from_content_type(&content_type).ok_or(ExecError::ContentType(content_type))?;
    let mut decoder = Decoder::new(format);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| unreachable(&e))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        for event in decoder.push(data)? {
            match event {
                // Bytes exactly as they came (the host keeps characters whole).
                CommandEvent::Output(stream, bytes) => {
                    let out: &mut dyn Write = match stream {
                        OutStream::Stdout => &mut *stdout,
                        OutStream::Stderr => &mut *stderr,
                    };
                    let _ = out.write_all(&bytes);
                    let _ = out.flush();
                }
                CommandEvent::Stop {
                    exit_code,
                    timed_out,
                } => {
                    return Ok(ExecOutcome {
                        exit_code,
                        timed_out,
                    });
                }
                CommandEvent::Failed(exception, message) => {
                    return Err(ExecError::Failed(exception.error_type(), message));
                }
                CommandEvent::Start => {}
            }
        }
    }
    Err(ExecError::Truncated)
}
