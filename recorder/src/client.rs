//! `termtrail attach`: a terminal client for the shell protocol — raw mode,
//! resize on SIGWINCH, Ctrl+C to the remote shell, a detach key, automatic
//! reconnect with exponential backoff and jitter, and the remote exit code.

use std::io::{self, Read, Write};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::host::access::BREAK_GLASS_HEADER;
use crate::protocol::{
    CLOSE_TAKEN_OVER, Channel, SESSION_HEADER, decode, encode, exit_code_of, notice_of,
    resize_payload,
};
use crate::tty::{RawMode, stdin_is_tty, terminal_size};

/// The default detach key: Ctrl+] (0x1d).
pub const DETACH_KEY: u8 = 0x1d;

/// Where and how to attach.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Full WebSocket URL of the shell endpoint, without `shellId`.
    pub endpoint: String,
    /// Runtime session id.
    pub session: String,
    /// Shell id.
    pub shell: String,
    /// Detach key byte (None disables it).
    pub detach_key: Option<u8>,
    /// Reconnect attempts after a lost connection (0: none).
    pub max_retries: u32,
    /// First backoff delay; doubles up to `max_backoff`.
    pub base_backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
    /// TLS client configuration for `wss://` endpoints.
    pub tls: Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
    /// How to authenticate (a token for each connection), if at all.
    pub auth: Option<crate::auth::client::ClientAuth>,
    /// A break-glass reason to state (header `X-Termtrail-Break-Glass`).
    pub break_glass: Option<String>,
}

/// How an attach ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachOutcome {
    /// The remote shell exited with this code.
    Exited(i32),
    /// The user pressed the detach key; the shell keeps running.
    Detached,
    /// Another client took the shell over (close code 4000).
    TakenOver,
}

/// Attach failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host refused the connection (HTTP status and its message).
    #[error("the shell host refused the connection: HTTP {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The host's explanation.
        message: String,
    },
    /// Could not (re)connect.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// Endpoint.
        url: String,
        /// Last error.
        message: String,
    },
    /// Terminal setup failed.
    #[error("terminal: {0}")]
    Io(#[from] io::Error),
    /// No token could be made for the connection.
    #[error("{0}")]
    Auth(#[from] crate::auth::client::ClientAuthError),
}

/// The URL of a shell: the endpoint plus `shellId`.
pub fn shell_url(endpoint: &str, shell: &str) -> String {
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{sep}shellId={shell}")
}

/// Turns `ws://host:port` into the full shell endpoint for `runtime`; a URL
/// that already has a path is kept.
pub fn endpoint_for(url: &str, runtime: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let has_path = url[scheme_end..]
        .find('/')
        .is_some_and(|i| scheme_end + i + 1 < url.len());
    if has_path {
        url.to_string()
    } else {
        let base = url.trim_end_matches('/');
        format!("{base}/runtimes/{}/ws/shells", runtime_path(runtime))
    }
}

/// A runtime ARN as one segment of a URL path (`/runtimes/<segment>/…`):
/// every byte but letters, digits and `-_.~` percent-encoded.
pub fn runtime_path(runtime: &str) -> String {
    runtime
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

enum Step {
    Done(AttachOutcome),
    Lost(String),
}

fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let frac = 0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0;
    d.mul_f64(frac)
}

fn say(msg: &str) {
    // In raw mode a bare \n does not return the carriage.
    let mut e = io::stderr();
    let _ = write!(e, "\r\n::: {msg}\r\n");
    let _ = e.flush();
}

/// Attaches the local terminal to a remote shell until it exits, the user
/// detaches, or the shell is taken over.
pub async fn attach(opts: &AttachOptions) -> Result<AttachOutcome, ClientError> {
    let interactive = stdin_is_tty();
    let _raw = if interactive { RawMode::enter()? } else { None };
    let (in_tx, mut in_rx) = mpsc::channel::<Vec<u8>>(64);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin();
            let mut buf = [0u8; 8192];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if in_tx.blocking_send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        })?;
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let url = shell_url(&opts.endpoint, &opts.shell);
    let mut attempt = 0u32;
    let mut delay = opts.base_backoff;
    loop {
        // A fresh token per connection: an IAM token lasts 15 minutes.
        let authorization = match &opts.auth {
            Some(a) => Some(a.header().await?),
            None => None,
        };
        let headers = Headers {
            session: &opts.session,
            authorization,
            break_glass: opts.break_glass.as_deref(),
        };
        let step = match connect(&url, headers, opts.tls.as_ref()).await {
            Ok(ws) => {
                if attempt > 0 {
                    say("reconnected");
                }
                attempt = 0;
                delay = opts.base_backoff;
                session(ws, opts, &mut in_rx, &mut winch, interactive).await
            }
            Err(WsError::Http(resp)) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| body.into_owned());
                if status >= 500 || status == 429 {
                    Step::Lost(format!("HTTP {status}: {message}"))
                } else {
                    return Err(ClientError::Refused { status, message });
                }
            }
            // A certificate the client does not trust will not become trusted
            // by retrying.
            Err(e) if e.to_string().contains("certificate") => {
                return Err(ClientError::Unreachable {
                    url,
                    message: e.to_string(),
                });
            }
            Err(e) => Step::Lost(e.to_string()),
        };
        match step {
            Step::Done(outcome) => return Ok(outcome),
            Step::Lost(why) => {
                attempt += 1;
                if attempt > opts.max_retries {
                    return Err(ClientError::Unreachable { url, message: why });
                }
                let wait = jitter(delay);
                say(&format!(
                    "connection lost ({why}); reconnecting in {:.1} s (attempt {attempt} of {})",
                    wait.as_secs_f64(),
                    opts.max_retries
                ));
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(opts.max_backoff);
            }
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The request headers of one connection.
struct Headers<'a> {
    session: &'a str,
    authorization: Option<http::HeaderValue>,
    break_glass: Option<&'a str>,
}

async fn connect(
    url: &str,
    headers: Headers<'_>,
    tls: Option<&std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
) -> Result<Ws, WsError> {
    let mut req = url.into_client_request()?;
    let bad =
        || WsError::Url(tokio_tungstenite::tungstenite::error::UrlError::UnsupportedUrlScheme);
    let value = headers.session.parse().map_err(|_| bad())?;
    req.headers_mut().insert(SESSION_HEADER, value);
    if let Some(v) = headers.authorization {
        req.headers_mut().insert(http::header::AUTHORIZATION, v);
    }
    if let Some(reason) = headers.break_glass {
        let value = http::HeaderValue::from_str(reason).map_err(|_| bad())?;
        req.headers_mut().insert(BREAK_GLASS_HEADER, value);
    }
    crate::tls::connect_ws(req, None, tls).await
}

async fn session(
    mut ws: Ws,
    opts: &AttachOptions,
    input: &mut mpsc::Receiver<Vec<u8>>,
    winch: &mut tokio::signal::unix::Signal,
    interactive: bool,
) -> Step {
    if interactive && let Some(size) = terminal_size() {
        let _ = ws
            .send(Message::Binary(
                encode(Channel::Resize, &resize_payload(size)).into(),
            ))
            .await;
    }
    let mut stdout = io::stdout();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(30));
    heartbeat.tick().await;
    let mut stdin_open = true;
    loop {
        tokio::select! {
            bytes = input.recv(), if stdin_open => {
                let Some(bytes) = bytes else {
                    // stdin closed (scripted use): keep showing output until
                    // the shell exits.
                    stdin_open = false;
                    continue;
                };
                let (data, detach) = match opts.detach_key.filter(|_| interactive).and_then(|k| bytes.iter().position(|&b| b == k)) {
                    Some(at) => (&bytes[..at], true),
                    None => (&bytes[..], false),
                };
                if !data.is_empty() && ws.send(Message::Binary(encode(Channel::Stdin, data).into())).await.is_err() {
                    return Step::Lost("send failed".into());
                }
                if detach {
                    let _ = ws.close(None).await;
                    return Step::Done(AttachOutcome::Detached);
                }
            }
            _ = winch.recv() => {
                if let Some(size) = terminal_size() {
                    let _ = ws.send(Message::Binary(encode(Channel::Resize, &resize_payload(size)).into())).await;
                }
            }
            _ = heartbeat.tick() => {
                let _ = ws.send(Message::Ping(Vec::new().into())).await;
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    let Ok((channel, payload)) = decode(&b) else { continue };
                    match channel {
                        Channel::Stdout | Channel::Stderr => {
                            let _ = stdout.write_all(payload);
                            let _ = stdout.flush();
                        }
                        Channel::Status => {
                            if let Some(code) = exit_code_of(payload) {
                                return Step::Done(AttachOutcome::Exited(code));
                            }
                            if let Some((reason, message)) = notice_of(payload) {
                                // Raw mode: \r\n, and controls from the host made visible.
                                let text: String = message.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
                                let _ = write!(stdout, "\r\n[termtrail: {reason}: {text}]\r\n");
                                let _ = stdout.flush();
                            }
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(f) if f.code == CloseCode::from(CLOSE_TAKEN_OVER) => Step::Done(AttachOutcome::TakenOver),
                        Some(f) => Step::Lost(format!("closed by the host ({}: {})", u16::from(f.code), f.reason)),
                        None => Step::Lost("closed by the host".into()),
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Step::Lost(e.to_string()),
                None => return Step::Lost("connection ended".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint_for("ws://h:1", "local"),
            "ws://h:1/runtimes/local/ws/shells"
        );
        assert_eq!(
            endpoint_for("ws://h:1/", "arn:aws:x/y"),
            "ws://h:1/runtimes/arn%3Aaws%3Ax%2Fy/ws/shells"
        );
        assert_eq!(
            endpoint_for("ws://h:1/runtimes/a/ws/shells", "z"),
            "ws://h:1/runtimes/a/ws/shells"
        );
        assert_eq!(runtime_path("arn:aws:x/y"), "arn%3Aaws%3Ax%2Fy");
        assert_eq!(runtime_path("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(shell_url("ws://h/x", "s"), "ws://h/x?shellId=s");
        assert_eq!(
            shell_url("ws://h/x?qualifier=D", "s"),
            "ws://h/x?qualifier=D&shellId=s"
        );
    }
}
