//! The one-shot command call's answer on the wire (docs/protocol.md §9):
//! the events of a call ([`CommandEvent`]), and their two encodings — the
//! service's AWS event stream (`application/vnd.amazon.eventstream`, what
//! boto3, the AWS CLI and the Rust SDK read) and termtrail's JSON Lines
//! (`application/x-ndjson`, which can also carry bytes that are not UTF-8).
//! Encoders stitch UTF-8 split across output chunks; decoders turn either
//! format back into events. The host, the proxy and `exec` share it.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder, write_message_to};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use serde_json::{Value, json};

/// The service's content type: an AWS event stream.
pub const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";
/// termtrail's JSON Lines.
pub const JSON_LINES: &str = "application/x-ndjson";

/// Which output stream a delta belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutStream {
    /// The command's standard output.
    Stdout,
    /// The command's standard error.
    Stderr,
}

impl OutStream {
    fn key(self) -> &'static str {
        match self {
            OutStream::Stdout => "stdout",
            OutStream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One event of a command call's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandEvent {
    /// The command started (`contentStart`).
    Start,
    /// Output bytes (`contentDelta`), exactly as the command wrote them.
    Output(OutStream, Vec<u8>),
    /// The command ended (`contentStop`).
    Stop {
        /// Its exit code (124 when it timed out here).
        exit_code: i32,
        /// Whether it was stopped at its timeout (`TIMED_OUT`).
        timed_out: bool,
    },
    /// The call failed after the answer started (an exception event).
    Failed(Exception, String),
}

/// The operation's modelled errors: an HTTP error before the answer
/// starts, an exception event after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    /// `AccessDeniedException` (403).
    AccessDenied,
    /// `InternalServerException` (500).
    InternalServer,
    /// `ResourceNotFoundException` (404).
    ResourceNotFound,
    /// `ServiceQuotaExceededException` (402).
    ServiceQuotaExceeded,
    /// `ThrottlingException` (429).
    Throttling,
    /// `ValidationException` (400).
    Validation,
    /// `RuntimeClientError` (424).
    RuntimeClient,
    /// `RetryableConflictException` (409; never an event).
    RetryableConflict,
}

const EXCEPTIONS: [(Exception, &str, u16); 8] = [
    (Exception::AccessDenied, "AccessDeniedException", 403),
    (Exception::InternalServer, "InternalServerException", 500),
    (
        Exception::ResourceNotFound,
        "ResourceNotFoundException",
        404,
    ),
    (
        Exception::ServiceQuotaExceeded,
        "ServiceQuotaExceededException",
        402,
    ),
    (Exception::Throttling, "ThrottlingException", 429),
    (Exception::Validation, "ValidationException", 400),
    (Exception::RuntimeClient, "RuntimeClientError", 424),
    (
        Exception::RetryableConflict,
        "RetryableConflictException",
        409,
    ),
];

impl Exception {
    /// The error's shape name: the `x-amzn-errortype` of an HTTP error.
    pub fn error_type(self) -> &'static str {
        EXCEPTIONS.iter().find(|e| e.0 == self).map_or("", |e| e.1)
    }

    /// The event stream member's name (`:exception-type`): the shape name
    /// with a lower-case first letter (`throttlingException`).
    pub fn member(self) -> String {
        let t = self.error_type();
        t[..1].to_ascii_lowercase() + &t[1..]
    }

    /// The modelled HTTP status.
    pub fn status(self) -> u16 {
        EXCEPTIONS.iter().find(|e| e.0 == self).map_or(500, |e| e.2)
    }

    /// The error a host's refusal with `status` is: the modelled one, else
    /// `ValidationException` for another 4xx, `InternalServerException`
    /// for the rest.
    pub fn for_status(status: u16) -> Exception {
        match status {
            401 | 403 => Exception::AccessDenied,
            _ => EXCEPTIONS
                .iter()
                .find(|e| e.2 == status)
                .map(|e| e.0)
                .unwrap_or(if (400..500).contains(&status) {
                    Exception::Validation
                } else {
                    Exception::InternalServer
                }),
        }
    }

    /// The exception named by a shape or member name (any first-letter case).
    pub fn from_name(name: &str) -> Option<Exception> {
        EXCEPTIONS
            .iter()
            .find(|e| e.1.eq_ignore_ascii_case(name))
            .map(|e| e.0)
    }
}

/// The two encodings of a command call's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The service's AWS event stream: the default.
    EventStream,
    /// termtrail's JSON Lines: only when the client's `Accept` asks for it.
    JsonLines,
}

impl Format {
    /// The format for a request's `Accept` header: JSON Lines when it names
    /// `application/x-ndjson` with a quality above that of the event stream
    /// (absent counts as 0, `*/*` ranks the event stream like itself),
    /// the event stream otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::EventStream;
        };
        let mut lines = 0.0f32;
        let mut stream = 0.0f32;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if media == JSON_LINES {
                lines = lines.max(q);
            } else if media == EVENT_STREAM || media == "*/*" || media == "application/*" {
                stream = stream.max(q);
            }
        }
        if lines > 0.0 && lines > stream {
            Format::JsonLines
        } else {
            Format::EventStream
        }
    }

    /// The format of an answer with this `Content-Type`.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let media = content_type.split(';').next()?.trim();
        if media.eq_ignore_ascii_case(EVENT_STREAM) {
            Some(Format::EventStream)
        } else if media.eq_ignore_ascii_case(JSON_LINES) {
            Some(Format::JsonLines)
        } else {
            None
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::EventStream => EVENT_STREAM,
            Format::JsonLines => JSON_LINES,
        }
    }
}

/// Holds back a UTF-8 sequence cut at the end of a chunk until the next
/// chunk completes it, so text is never cut inside a character. Bytes that
/// are not UTF-8 pass through at once.
#[derive(Debug, Default)]
pub struct Utf8Stitch {
    carry: Vec<u8>,
}

impl Utf8Stitch {
    /// The bytes of `carry + bytes` up to any incomplete sequence at the end.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Err(e) = std::str::from_utf8(&buf[start..]) {
            match e.error_len() {
                Some(n) => start += e.valid_up_to() + n,
                None => {
                    self.carry = buf.split_off(start + e.valid_up_to());
                    break;
                }
            }
        }
        buf
    }

    /// Whatever is held back (the stream ended).
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.carry)
    }
}

/// Encodes a call's events in one format, stitching UTF-8 per stream.
#[derive(Debug)]
pub struct Encoder {
    format: Format,
    stitch: [Utf8Stitch; 2],
}

impl Encoder {
    /// An encoder for `format`.
    pub fn new(format: Format) -> Encoder {
        Encoder {
            format,
            stitch: Default::default(),
        }
    }

    /// The bytes that carry `event` (possibly none: a held-back sequence).
    pub fn encode(&mut self, event: &CommandEvent) -> Vec<u8> {
        let mut out = Vec::new();
        match event {
            CommandEvent::Start => self.chunk(&mut out, json!({"contentStart": {}})),
            CommandEvent::Output(stream, bytes) => {
                let bytes = self.stitch[stream.index()].push(bytes);
                self.delta(&mut out, *stream, &bytes);
            }
            CommandEvent::Stop {
                exit_code,
                timed_out,
            } => {
                self.flush(&mut out);
                let status = if *timed_out { "TIMED_OUT" } else { "COMPLETED" };
                self.chunk(
                    &mut out,
                    json!({"contentStop": {"exitCode": exit_code, "status": status}}),
                );
            }
            CommandEvent::Failed(exception, message) => {
                self.flush(&mut out);
                let body = json!({"message": message});
                match self.format {
                    Format::EventStream => {
                        let member = exception.member();
                        push_message(
                            &mut out,
                            vec![
                                header(":message-type", "exception"),
                                header(":exception-type", member),
                                header(":content-type", "application/json"),
                            ],
                            body.to_string(),
                        );
                    }
                    Format::JsonLines => {
                        push_line(&mut out, json!({ exception.member(): body }));
                    }
                }
            }
        }
        out
    }

    /// Sends what the stitches hold (the command ended).
    fn flush(&mut self, out: &mut Vec<u8>) {
        for stream in [OutStream::Stdout, OutStream::Stderr] {
            let rest = self.stitch[stream.index()].finish();
            self.delta(out, stream, &rest);
        }
    }

    fn delta(&self, out: &mut Vec<u8>, stream: OutStream, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(bytes);
        let mut delta = serde_json::Map::new();
        delta.insert(stream.key().into(), Value::String(text.to_string()));
        // JSON Lines carries bytes that are not UTF-8 exactly, beside the text.
        if self.format == Format::JsonLines && std::str::from_utf8(bytes).is_err() {
            let key = format!("{}Base64", stream.key());
            delta.insert(key, aws_smithy_types::base64::encode(bytes).into());
        }
        self.chunk(out, json!({"contentDelta": delta}));
    }

    fn chunk(&self, out: &mut Vec<u8>, payload: Value) {
        match self.format {
            Format::EventStream => push_message(
                out,
                vec![
                    header(":message-type", "event"),
                    header(":event-type", "chunk"),
                    header(":content-type", "application/json"),
                ],
                payload.to_string(),
            ),
            Format::JsonLines => push_line(out, payload),
        }
    }
}

fn header(name: &'static str, value: impl Into<String>) -> Header {
    Header::new(name, HeaderValue::String(value.into().into()))
}

fn push_message(out: &mut Vec<u8>, headers: Vec<Header>, payload: String) {
    let message = Message::new_from_parts(headers, payload.into_bytes());
    // Writing to a Vec fails only for sizes far beyond a chunk's (16 MiB).
    if let Err(e) = write_message_to(&message, out) {
        tracing::warn!("cannot encode an event stream message: {e}");
    }
}

fn push_line(out: &mut Vec<u8>, value: Value) {
    out.extend_from_slice(value.to_string().as_bytes());
    out.push(b'\n');
}

/// A command call's answer that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// An event stream message is malformed (length, CRC, headers).
    #[error("malformed event stream message: {0}")]
    Frame(String),
    /// A message or line is not one of the call's events.
    #[error("unexpected {what} in the answer: {detail}")]
    Unexpected {
        /// What was read: an event stream message or a JSON line.
        what: &'static str,
        /// Why it is not an event.
        detail: String,
    },
}

/// Largest JSON line or pending event stream data a decoder holds.
const MAX_PENDING: usize = 32 << 20;

/// Reads a call's answer back into events, from chunks as they arrive.
#[derive(Debug)]
pub struct Decoder {
    format: Format,
    pending: Vec<u8>,
    frames: MessageFrameDecoder,
}

impl Decoder {
    /// A decoder for an answer in `format`.
    pub fn new(format: Format) -> Decoder {
        Decoder {
            format,
            pending: Vec::new(),
            frames: MessageFrameDecoder::new(),
        }
    }

    /// The events completed by `data`.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<CommandEvent>, WireError> {
        self.pending.extend_from_slice(data);
        let mut events = Vec::new();
        match self.format {
            Format::JsonLines => {
                let mut used = 0;
                while let Some(nl) = self.pending[used..].iter().position(|&b| b == b'\n') {
                    let line = &self.pending[used..used + nl];
                    used += nl + 1;
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    events.extend(line_event(line)?);
                }
                self.pending.drain(..used);
            }
            Format::EventStream => loop {
                let mut rest = &self.pending[..];
                let before = rest.len();
                let frame = self
                    .frames
                    .decode_frame(&mut rest)
                    .map_err(|e| WireError::Frame(e.to_string()))?;
                let used = before - rest.len();
                self.pending.drain(..used);
                match frame {
                    DecodedFrame::Complete(m) => events.extend(message_event(&m)?),
                    DecodedFrame::Incomplete => break,
                }
            },
        }
        if self.pending.len() > MAX_PENDING {
            return Err(WireError::Frame(format!(
                "more than {MAX_PENDING} bytes without a complete event"
            )));
        }
        Ok(events)
    }
}

/// One JSON line's events (none: a member this client does not know).
fn line_event(line: &[u8]) -> Result<Vec<CommandEvent>, WireError> {
    let unexpected = |detail: String| WireError::Unexpected {
        what: "JSON line",
        detail,
    };
    let v: Value = serde_json::from_slice(line).map_err(|e| unexpected(e.to_string()))?;
    let Some((name, _)) = v.as_object().and_then(|o| o.iter().next()) else {
        return Err(unexpected("not a JSON object with one member".into()));
    };
    if let Some(exception) = Exception::from_name(name) {
        let message = v[name]["message"].as_str().unwrap_or_default().to_string();
        return Ok(vec![CommandEvent::Failed(exception, message)]);
    }
    Ok(chunk_event(&v, true))
}

/// One event stream message's events.
fn message_event(m: &Message) -> Result<Vec<CommandEvent>, WireError> {
    let get = |name: &str| {
        m.headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| h.value().as_string().ok())
            .map(|s| s.as_str().to_string())
    };
    let unexpected = |detail: String| WireError::Unexpected {
        what: "event stream message",
        detail,
    };
    let payload: Value = serde_json::from_slice(m.payload()).unwrap_or_default();
    match get(":message-type").as_deref() {
        Some("event") if get(":event-type").as_deref() == Some("chunk") => {
            Ok(chunk_event(&payload, false))
        }
        Some("event") => Ok(Vec::new()),
        Some("exception") => {
            let name = get(":exception-type").unwrap_or_default();
            let message = payload["message"].as_str().unwrap_or_default().to_string();
            let exception = Exception::from_name(&name).unwrap_or(Exception::InternalServer);
            Ok(vec![CommandEvent::Failed(exception, message)])
        }
        Some("error") => {
            let code = get(":error-code").unwrap_or_default();
            let message = get(":error-message").unwrap_or_default();
            let exception = Exception::from_name(&code).unwrap_or(Exception::InternalServer);
            Ok(vec![CommandEvent::Failed(exception, message)])
        }
        other => Err(unexpected(format!(":message-type {other:?}"))),
    }
}

/// A `ResponseChunk`'s events (a delta may carry both streams); `bytes`:
/// read `stdoutBase64`/`stderrBase64`.
fn chunk_event(v: &Value, bytes: bool) -> Vec<CommandEvent> {
    if v.get("contentStart").is_some() {
        return vec![CommandEvent::Start];
    }
    if let Some(stop) = v.get("contentStop") {
        return vec![CommandEvent::Stop {
            exit_code: stop["exitCode"]
                .as_i64()
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(255),
            timed_out: stop["status"] == "TIMED_OUT",
        }];
    }
    let Some(d) = v.get("contentDelta") else {
        return Vec::new();
    };
    let mut events = Vec::new();
    for stream in [OutStream::Stdout, OutStream::Stderr] {
        let exact = bytes
            .then(|| d[format!("{}Base64", stream.key())].as_str())
            .flatten()
            .and_then(|b| aws_smithy_types::base64::decode(b).ok());
        if let Some(b) = exact {
            events.push(CommandEvent::Output(stream, b));
        } else if let Some(text) = d[stream.key()].as_str() {
            events.push(CommandEvent::Output(stream, text.as_bytes().to_vec()));
        }
    }
    events
}

#[cfg(test)]
mod tests;
