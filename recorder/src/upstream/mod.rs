//! Upstream shell hosts that a relay speaks to: where one is
//! ([`Upstream`]), connecting to it, and the [`Codec`] each upstream
//! protocol implements ([`agentcore`]: termtrail `serve` or an AgentCore
//! runtime; [`terminado`]: Jupyter's terminal server). Nothing here knows
//! about the shell host or recordings.

pub mod agentcore;
pub(crate) mod replay;
pub mod terminado;

use std::sync::Arc;

use termtrail_format::event::TermSize;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::protocol::SESSION_HEADER;

/// The upstream's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// AgentCore shell protocol (termtrail serve, AgentCore runtimes).
    AgentCore,
    /// terminado (Jupyter's terminal server), NamedTermManager URLs.
    Terminado,
}

/// Where the upstream is.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Protocol spoken upstream.
    pub protocol: UpstreamProtocol,
    /// AgentCore: the shell endpoint (`ws://h/runtimes/<arn>/ws/shells`);
    /// terminado: a URL with `{shell}` where the terminal name goes (or the
    /// name is appended).
    pub url: String,
    /// TLS client configuration for `wss://` upstreams.
    pub tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// SigV4 signing of the upgrade (a real AgentCore runtime).
    pub signer: Option<crate::sigv4::Signer>,
    /// The runtime every shell and command opens there (the ARN in `url`'s
    /// path, decoded, or `--runtime`): the access policy's resource.
    pub runtime: String,
}

impl Upstream {
    /// The codec of the upstream's protocol.
    pub fn codec(&self) -> &'static dyn Codec {
        match self.protocol {
            UpstreamProtocol::AgentCore => &agentcore::AgentCore,
            UpstreamProtocol::Terminado => &terminado::Terminado,
        }
    }
}

/// `url` fit to show anywhere (logs, a client's refusal, a recording's
/// header): userinfo (`user:password@`) and the values of query parameters
/// (presigned URLs carry signatures and tokens there) become `REDACTED`;
/// a fragment is dropped.
pub fn redacted_url(url: &str) -> String {
    let url = url.split('#').next().unwrap_or(url);
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = match authority.rsplit_once('@') {
                Some((_, host)) => format!("REDACTED@{host}"),
                None => authority.to_string(),
            };
            format!("{scheme}://{host}{path}")
        }
        None => base.to_string(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((name, _)) => format!("{name}=REDACTED"),
                None => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// The runtime of an AgentCore shell endpoint
/// (`…/runtimes/<percent-encoded ARN>/ws/shells`), decoded.
pub fn runtime_of_endpoint(url: &str) -> Option<String> {
    let (_, segment) = agentcore::command_target(url)?;
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = segment
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `text` with every occurrence of `url` (an error may quote it) shown
/// redacted.
fn redacted_text(text: &str, url: &str) -> String {
    text.replace(url, &redacted_url(url))
}

/// What one message from the upstream means to the relay.
#[derive(Debug, PartialEq)]
pub enum Incoming<'a> {
    /// Terminal output (borrowed from the message where the protocol
    /// allows: the relay's hot path).
    Output(std::borrow::Cow<'a, [u8]>),
    /// The host confirmed an attach: `reconnected` when it replays buffered
    /// output next (a second confirmation ends the replay), `dropped` bytes
    /// it could not keep.
    Confirmed {
        /// A re-attach (a replay follows).
        reconnected: bool,
        /// Bytes the host dropped from its buffer.
        dropped: u64,
    },
    /// The shell exited.
    Exited {
        /// Exit code (128+N for signal N).
        code: i32,
        /// The signal, when it was killed by one.
        signal: Option<i32>,
    },
    /// The host closed the shell without an exit status.
    HostClosed,
    /// The terminal ended and the protocol gives no exit code.
    Gone,
    /// Nothing for the relay (another message type, a heartbeat).
    Nothing,
}

/// One upstream protocol: how the relay's requests and the host's messages
/// look on the wire.
pub trait Codec: Send + Sync {
    /// The protocol's name, for messages.
    fn name(&self) -> &'static str;
    /// The WebSocket URL of shell `shell` on the host at `base`.
    fn url(&self, base: &str, shell: &str) -> String;
    /// Whether the upgrade names the runtime session (its header).
    fn sends_session(&self) -> bool;
    /// Keystrokes.
    fn stdin(&self, bytes: &[u8]) -> Message;
    /// A terminal size.
    fn resize(&self, size: TermSize) -> Message;
    /// A keep-alive.
    fn heartbeat(&self) -> Message;
    /// The request to end the shell (the host answers with its exit
    /// status); None when the protocol has none and the relay lets go.
    fn close(&self) -> Option<Message>;
    /// Whether, after a re-attach, the host's first output message is its
    /// whole replay (rather than framed by confirmations).
    fn replays_at_once(&self) -> bool;
    /// Whether the protocol has the one-shot command call.
    fn has_command_call(&self) -> bool;
    /// What a message from the host means.
    fn decode<'a>(&self, msg: &'a Message) -> Incoming<'a>;
}

/// The upstream WebSocket.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why the upstream could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The upstream answered with an HTTP status (its body attached).
    #[error("the upstream refused with HTTP {0}: {1}")]
    Refused(u16, String),
    /// The upstream could not be reached.
    #[error("{0}")]
    Unreachable(String),
}

/// Opens shell `shell` of runtime session `session` on the upstream.
pub async fn connect(up: &Upstream, session: &str, shell: &str) -> Result<Ws, ConnectError> {
    let codec = up.codec();
    let url = codec.url(&up.url, shell);
    let mut req = url.as_str().into_client_request().map_err(|e| {
        let shown = redacted_url(&url);
        ConnectError::Unreachable(format!("bad upstream URL {shown}: {e}"))
    })?;
    if codec.sends_session() {
        let v = session
            .parse()
            .map_err(|_| ConnectError::Unreachable("bad session id".into()))?;
        req.headers_mut().insert(SESSION_HEADER, v);
    }
    if let Some(signer) = &up.signer {
        signer
            .sign(&mut req, std::time::SystemTime::now())
            .await
            .map_err(|e| ConnectError::Unreachable(format!("cannot sign the upgrade: {e}")))?;
    }
    // Small buffers: a proxy holds hundreds of mostly idle upstream links.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(crate::protocol::WS_OUTPUT_READ_BUFFER)
        .write_buffer_size(crate::protocol::WS_WRITE_BUFFER)
        .max_message_size(Some(1 << 20));
    match crate::tls::connect_ws(req, Some(config), up.tls.as_ref()).await {
        Ok(ws) => Ok(ws),
        Err(WsError::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned();
            Err(ConnectError::Refused(resp.status().as_u16(), body))
        }
        Err(e) => Err(ConnectError::Unreachable(format!(
            "{}: {}",
            redacted_url(&url),
            redacted_text(&e.to_string(), &url)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials_or_query_secrets() {
        assert_eq!(redacted_url("ws://h:1/x"), "ws://h:1/x");
        assert_eq!(
            redacted_url("wss://ann:s3cret@h:443/runtimes/a/ws/shells"),
            "wss://REDACTED@h:443/runtimes/a/ws/shells"
        );
        assert_eq!(
            redacted_url("wss://h/ws?X-Amz-Signature=abc&X-Amz-Security-Token=tok&flag#frag"),
            "wss://h/ws?X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&flag"
        );
        assert_eq!(redacted_url("ws://u@h"), "ws://REDACTED@h");
        assert_eq!(
            runtime_of_endpoint("ws://h:1/runtimes/arn%3Aaws%3Ax%2Fprod/ws/shells").as_deref(),
            Some("arn:aws:x/prod")
        );
        assert_eq!(runtime_of_endpoint("ws://h:1/websocket/x"), None);
        for secret in ["s3cret", "abc", "tok", "frag"] {
            let shown = redacted_url("ws://u:s3cret@h/p?a=abc&b=tok#frag");
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
