//! The AgentCore shell protocol as an upstream (termtrail `serve`, or an
//! AgentCore runtime): binary frames with a channel byte
//! ([`crate::protocol`]), confirmations and exit status on the status
//! channel.

use std::borrow::Cow;

use serde_json::Value;
use termtrail_format::event::TermSize;
use tokio_tungstenite::tungstenite::Message;

use super::{Codec, Incoming};
use crate::protocol::{Channel, decode, encode, exit_code_of, resize_payload};

/// The AgentCore shell protocol.
#[derive(Debug, Clone, Copy)]
pub struct AgentCore;

fn frame(channel: Channel, payload: &[u8]) -> Message {
    Message::Binary(encode(channel, payload).into())
}

impl Codec for AgentCore {
    fn name(&self) -> &'static str {
        "AgentCore"
    }

    fn url(&self, base: &str, shell: &str) -> String {
        crate::client::shell_url(base, shell)
    }

    fn sends_session(&self) -> bool {
        true
    }

    fn stdin(&self, bytes: &[u8]) -> Message {
        frame(Channel::Stdin, bytes)
    }

    fn resize(&self, size: TermSize) -> Message {
        frame(Channel::Resize, &resize_payload(size))
    }

    fn heartbeat(&self) -> Message {
        frame(Channel::Heartbeat, &[])
    }

    fn close(&self) -> Option<Message> {
        Some(frame(Channel::Close, &[]))
    }

    fn replays_at_once(&self) -> bool {
        false
    }

    fn has_command_call(&self) -> bool {
        true
    }

    fn decode<'a>(&self, msg: &'a Message) -> Incoming<'a> {
        let Message::Binary(b) = msg else {
            return Incoming::Nothing;
        };
        let Ok((channel, payload)) = decode(b) else {
            return Incoming::Nothing;
        };
        match channel {
            Channel::Stdout | Channel::Stderr => Incoming::Output(Cow::Borrowed(payload)),
            Channel::Status => status(payload),
            Channel::Close => Incoming::HostClosed,
            _ => Incoming::Nothing,
        }
    }
}

/// A status message: a confirmation (it names the shell) or the exit status.
fn status(payload: &[u8]) -> Incoming<'static> {
    let v: Value = serde_json::from_slice(payload).unwrap_or_default();
    let meta = &v["metadata"];
    if meta.get("shellId").is_none() {
        let code = exit_code_of(payload).unwrap_or(255);
        let signal = v
            .pointer("/details/causes")
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c["reason"] == "Signal")
                    .and_then(|c| c["message"].as_str()?.parse().ok())
            });
        return Incoming::Exited { code, signal };
    }
    Incoming::Confirmed {
        reconnected: meta["reconnected"] == true,
        dropped: meta
            .get("bytesDropped")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

/// `(host:port, runtime path segment)` of an AgentCore shell endpoint
/// `ws://host:port/runtimes/<arn>/ws/shells`, for the command call.
pub fn command_target(endpoint: &str) -> Option<(String, String)> {
    let rest = endpoint
        .strip_prefix("ws://")
        .or_else(|| endpoint.strip_prefix("wss://"))?;
    let (authority, path) = rest.split_once('/')?;
    // Credentials in the URL are not part of the host to connect to.
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let arn = path.strip_prefix("runtimes/")?.split('/').next()?;
    Some((authority.to_string(), arn.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{status_connected, status_exit};

    #[test]
    fn statuses_are_confirmations_or_exits() {
        let c = AgentCore;
        let confirmed = frame(Channel::Status, &status_connected("sh1", true, Some(12)));
        assert_eq!(
            c.decode(&confirmed),
            Incoming::Confirmed {
                reconnected: true,
                dropped: 12
            }
        );
        let exited = frame(Channel::Status, &status_exit(3, None));
        assert_eq!(
            c.decode(&exited),
            Incoming::Exited {
                code: 3,
                signal: None
            }
        );
        let out = frame(Channel::Stdout, b"hi");
        assert_eq!(c.decode(&out), Incoming::Output(Cow::Borrowed(b"hi")));
        assert_eq!(c.decode(&Message::Text("x".into())), Incoming::Nothing);
    }

    #[test]
    fn the_command_call_is_found_beside_the_shell_endpoint() {
        assert_eq!(
            command_target("wss://h:8443/runtimes/arn%3Ax/ws/shells"),
            Some(("h:8443".into(), "arn%3Ax".into()))
        );
        assert_eq!(command_target("http://h/x"), None);
        assert_eq!(
            command_target("ws://ann:s3cret@h:80/runtimes/a/ws/shells"),
            Some(("h:80".into(), "a".into()))
        );
    }
}
