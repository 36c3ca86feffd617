//! terminado (Jupyter's terminal server) as an upstream: JSON arrays in text
//! messages (`["stdin", …]`, `["stdout", …]`, `["set_size", rows, cols]`,
//! `["disconnect"]`), named terminals, no exit codes, and a re-attach that
//! replays in one `stdout` message.

use std::borrow::Cow;

use serde_json::{Value, json};
use termtrail_format::event::TermSize;
use tokio_tungstenite::tungstenite::Message;

use super::{Codec, Incoming};

/// The terminado protocol.
#[derive(Debug, Clone, Copy)]
pub struct Terminado;

impl Codec for Terminado {
    fn name(&self) -> &'static str {
        "terminado"
    }

    fn url(&self, base: &str, shell: &str) -> String {
        // terminado names are \w+.
        let name: String = shell
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if base.contains("{shell}") {
            base.replace("{shell}", &name)
        } else {
            format!("{}/{name}", base.trim_end_matches('/'))
        }
    }

    fn sends_session(&self) -> bool {
        false
    }

    fn stdin(&self, bytes: &[u8]) -> Message {
        Message::Text(
            json!(["stdin", String::from_utf8_lossy(bytes)])
                .to_string()
                .into(),
        )
    }

    fn resize(&self, size: TermSize) -> Message {
        // terminado orders rows, cols.
        Message::Text(json!(["set_size", size.rows, size.cols]).to_string().into())
    }

    fn heartbeat(&self) -> Message {
        Message::Ping(Vec::new().into())
    }

    fn close(&self) -> Option<Message> {
        // terminado has no "end this terminal" message.
        None
    }

    fn replays_at_once(&self) -> bool {
        true
    }

    fn has_command_call(&self) -> bool {
        false
    }

    fn decode<'a>(&self, msg: &'a Message) -> Incoming<'a> {
        let Message::Text(t) = msg else {
            return Incoming::Nothing;
        };
        let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
        match v.get(0).and_then(Value::as_str) {
            Some("stdout") => {
                let text = v.get(1).and_then(Value::as_str).unwrap_or_default();
                Incoming::Output(Cow::Owned(text.as_bytes().to_vec()))
            }
            Some("disconnect") => Incoming::Gone,
            _ => Incoming::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_names_are_word_characters() {
        let t = Terminado;
        assert_eq!(
            t.url("ws://h/websocket/{shell}", "a-b.c"),
            "ws://h/websocket/a_b_c"
        );
        assert_eq!(t.url("ws://h/websocket/", "x1"), "ws://h/websocket/x1");
    }

    #[test]
    fn output_and_disconnect_are_understood() {
        let t = Terminado;
        let out = Message::Text(r#"["stdout","hi"]"#.into());
        assert_eq!(t.decode(&out), Incoming::Output(Cow::Borrowed(b"hi")));
        let gone = Message::Text(r#"["disconnect",1]"#.into());
        assert_eq!(t.decode(&gone), Incoming::Gone);
        assert_eq!(
            t.decode(&Message::Binary(vec![1].into())),
            Incoming::Nothing
        );
    }
}
