//! The AgentCore shell wire protocol (`docs/protocol.md`): binary WebSocket
//! messages of one channel byte plus payload, status objects shaped like
//! Kubernetes' `metav1.Status`, and resize requests.

use serde::Deserialize;
use serde_json::{Value, json};
use termtrail_format::event::TermSize;

/// Largest message accepted or sent, channel byte included (64 KiB).
pub const MAX_FRAME: usize = 64 << 10;

/// Read buffer a WebSocket connection that carries only keystrokes (a
/// host's or proxy's client side) allocates up front: tungstenite's default
/// is 128 KiB, and a proxy holds hundreds of mostly idle shells.
pub const WS_READ_BUFFER: usize = 4 << 10;

/// Read buffer of a connection that carries output (the proxy's upstream
/// link), allocated up front and kept for the connection's life.
/// tungstenite reads at most this much per call, so it bounds throughput
/// (4 KiB here once cost a third of the proxy's output rate). 8 KiB rather
/// than 16 saves 8 KiB per idle shell; with output joined by the relay the
/// proxy still kept up with the direct path (docs/performance.md). Not
/// measured apart from that change on this noisy machine.
pub const WS_OUTPUT_READ_BUFFER: usize = 8 << 10;

/// Bytes tungstenite queues before it writes them out.
pub const WS_WRITE_BUFFER: usize = 16 << 10;
/// Close code sent to a client whose shell another client took over.
pub const CLOSE_TAKEN_OVER: u16 = 4000;
/// Request header carrying the runtime session id.
pub const SESSION_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-session-id";
/// Response header confirming the shell id.
pub const SHELL_ID_HEADER: &str = "x-amzn-bedrock-agentcore-shell-id";

/// A message's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// 0x00, client → shell: keystrokes.
    Stdin,
    /// 0x01, shell → client: PTY output.
    Stdout,
    /// 0x02, shell → client: diagnostics from the host.
    Stderr,
    /// 0x03, shell → client: a status object.
    Status,
    /// 0x04, client → shell: `{"width": cols, "height": rows}`.
    Resize,
    /// 0x05, both: keepalive, echoed by the host.
    Heartbeat,
    /// 0xFF, both: close request / platform shutdown.
    Close,
    /// Any other byte: ignored (reserved for extensions).
    Unknown(u8),
}

impl Channel {
    /// The channel byte.
    pub fn byte(self) -> u8 {
        match self {
            Channel::Stdin => 0x00,
            Channel::Stdout => 0x01,
            Channel::Stderr => 0x02,
            Channel::Status => 0x03,
            Channel::Resize => 0x04,
            Channel::Heartbeat => 0x05,
            Channel::Close => 0xFF,
            Channel::Unknown(b) => b,
        }
    }

    fn from_byte(b: u8) -> Channel {
        match b {
            0x00 => Channel::Stdin,
            0x01 => Channel::Stdout,
            0x02 => Channel::Stderr,
            0x03 => Channel::Status,
            0x04 => Channel::Resize,
            0x05 => Channel::Heartbeat,
            0xFF => Channel::Close,
            other => Channel::Unknown(other),
        }
    }
}

/// Splits a binary message into channel and payload. An empty message is
/// an error (it has no channel).
pub fn decode(msg: &[u8]) -> Result<(Channel, &[u8]), ProtocolError> {
    let (&first, payload) = msg.split_first().ok_or(ProtocolError::Empty)?;
    if msg.len() > MAX_FRAME {
        return Err(ProtocolError::TooLarge(msg.len()));
    }
    Ok((Channel::from_byte(first), payload))
}

/// Builds a message.
pub fn encode(channel: Channel, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 1);
    out.push(channel.byte());
    out.extend_from_slice(payload);
    out
}

/// Protocol violations; each closes that one connection with a reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A message without even a channel byte.
    #[error("empty message (no channel byte)")]
    Empty,
    /// Over the 64 KiB limit.
    #[error("message of {0} bytes exceeds the 64 KiB limit")]
    TooLarge(usize),
    /// A text message (the protocol is binary).
    #[error("text messages are not part of the protocol; send binary frames")]
    Text,
    /// A resize that is not `{"width": N, "height": N}` with 1..=65535.
    #[error("invalid resize: {0}")]
    Resize(String),
    /// A channel the client may not send on.
    #[error("clients may not send on channel {0:#04x}")]
    Direction(u8),
}

#[derive(Deserialize)]
struct ResizeMsg {
    width: u32,
    height: u32,
}

/// Parses a resize payload.
pub fn parse_resize(payload: &[u8]) -> Result<TermSize, ProtocolError> {
    let r: ResizeMsg =
        serde_json::from_slice(payload).map_err(|e| ProtocolError::Resize(e.to_string()))?;
    let ok = |n: u32| (1..=u32::from(u16::MAX)).contains(&n);
    if !ok(r.width) || !ok(r.height) {
        return Err(ProtocolError::Resize(format!(
            "{}x{} out of range",
            r.width, r.height
        )));
    }
    Ok(TermSize {
        cols: r.width as u16,
        rows: r.height as u16,
    })
}

/// A resize payload.
pub fn resize_payload(size: TermSize) -> Vec<u8> {
    json!({"width": size.cols, "height": size.rows})
        .to_string()
        .into_bytes()
}

/// The connection confirmation (and, after a replay, its follow-up with
/// `bytesDropped`).
pub fn status_connected(shell_id: &str, reconnected: bool, bytes_dropped: Option<u64>) -> Vec<u8> {
    let mut metadata = json!({"shellId": shell_id, "reconnected": reconnected});
    if let Some(d) = bytes_dropped {
        metadata["bytesDropped"] = json!(d);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": metadata, "status": "Success"})
        .to_string()
        .into_bytes()
}

/// The exit status of the shell's process: code, or signal number.
pub fn status_exit(code: i32, signal: Option<i32>) -> Vec<u8> {
    if code == 0 && signal.is_none() {
        return json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
            .to_string()
            .into_bytes();
    }
    let mut causes = vec![json!({"reason": "ExitCode", "message": code.to_string()})];
    if let Some(sig) = signal {
        causes.push(json!({"reason": "Signal", "message": sig.to_string()}));
    }
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": "NonZeroExitCode",
        "message": format!("command terminated with exit code {code}"),
        "details": {"causes": causes}
    })
    .to_string()
    .into_bytes()
}

/// A failure status (refusals, internal errors).
pub fn status_failure(reason: &str, code: u16, message: &str) -> Vec<u8> {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "reason": reason, "code": code, "message": message})
    .to_string()
    .into_bytes()
}

/// The message of a status that is neither a confirmation nor an exit
/// status (e.g. the host saying why it ends the shell), with its reason.
pub fn notice_of(status: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(status).ok()?;
    if exit_code_of(status).is_some() || v.pointer("/metadata/shellId").is_some() {
        return None;
    }
    let reason = v.get("reason")?.as_str()?.to_string();
    let message = v.get("message")?.as_str()?.to_string();
    Some((reason, message))
}

/// Reads an exit code from a status payload (None for non-exit statuses).
pub fn exit_code_of(status: &[u8]) -> Option<i32> {
    let v: Value = serde_json::from_slice(status).ok()?;
    if v.get("metadata").and_then(|m| m.get("shellId")).is_some() {
        return None;
    }
    match v.get("status")?.as_str()? {
        "Success" => Some(0),
        "Failure" if v.get("reason")?.as_str()? == "NonZeroExitCode" => v
            .pointer("/details/causes")?
            .as_array()?
            .iter()
            .find(|c| c.get("reason").and_then(Value::as_str) == Some("ExitCode"))?
            .get("message")?
            .as_str()?
            .parse()
            .ok(),
        _ => None,
    }
}

/// Whether a shell id is acceptable: `^[a-zA-Z0-9][a-zA-Z0-9_-]{0,127}$`.
pub fn valid_shell_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// Whether a session id is acceptable: 1..=256 characters of
/// `[A-Za-z0-9._:-]` (AgentCore's own clients use 33..=256).
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_limits() {
        let m = encode(Channel::Stdout, b"hi");
        assert_eq!(m, b"\x01hi");
        assert_eq!(decode(&m).unwrap(), (Channel::Stdout, &b"hi"[..]));
        assert_eq!(decode(&[0x42]).unwrap().0, Channel::Unknown(0x42));
        assert_eq!(decode(&[]), Err(ProtocolError::Empty));
        assert!(matches!(
            decode(&vec![0u8; MAX_FRAME + 1]),
            Err(ProtocolError::TooLarge(_))
        ));
        assert!(decode(&vec![0u8; MAX_FRAME]).is_ok());
    }

    #[test]
    fn resize_is_width_height() {
        assert_eq!(
            parse_resize(br#"{"width":100,"height":30}"#).unwrap(),
            TermSize {
                cols: 100,
                rows: 30
            }
        );
        assert!(parse_resize(br#"{"Width":100,"Height":30}"#).is_err());
        assert!(parse_resize(br#"{"width":0,"height":30}"#).is_err());
        assert!(parse_resize(b"{").is_err());
        assert_eq!(
            parse_resize(&resize_payload(TermSize { cols: 7, rows: 9 })).unwrap(),
            TermSize { cols: 7, rows: 9 }
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(exit_code_of(&status_exit(0, None)), Some(0));
        assert_eq!(exit_code_of(&status_exit(3, None)), Some(3));
        assert_eq!(exit_code_of(&status_exit(130, Some(2))), Some(130));
        assert_eq!(exit_code_of(&status_connected("s1", false, None)), None);
        let v: Value = serde_json::from_slice(&status_connected("s1", true, Some(5))).unwrap();
        assert_eq!(v["metadata"]["reconnected"], true);
        assert_eq!(v["metadata"]["bytesDropped"], 5);
    }

    #[test]
    fn ids() {
        assert!(valid_shell_id("a"));
        assert!(valid_shell_id(&"a".repeat(128)));
        assert!(!valid_shell_id(&"a".repeat(129)));
        assert!(!valid_shell_id("-a"));
        assert!(!valid_shell_id("a/b"));
        assert!(valid_session_id("0123456789-0123456789-0123456789-x"));
        assert!(!valid_session_id("a b"));
    }
}
