//! The WebSocket message decoders' fuzz target.

use std::borrow::Cow;

use tokio_tungstenite::tungstenite::Message;

use crate::protocol::{
    Channel, MAX_FRAME, ProtocolError, decode, encode, exit_code_of, notice_of, parse_resize,
    resize_payload,
};
use crate::upstream::agentcore::AgentCore;
use crate::upstream::terminado::Terminado;
use crate::upstream::{Codec, Incoming};

/// One message, as a binary frame (AgentCore) and, when it is UTF-8, as a
/// text frame (terminado).
///
/// Invariants: a decoded frame encodes back to the same bytes; a resize
/// that parses is within 1..=65535 and reads back from its own payload;
/// the AgentCore upstream reads output as the host's decoder splits it;
/// an exit status is never also a confirmation; terminado output is the
/// message's own text.
pub fn ws(data: &[u8]) {
    match decode(data) {
        Ok((channel, payload)) => {
            assert!(data.len() <= MAX_FRAME);
            assert_eq!(encode(channel, payload), data, "decode/encode round trip");
            if let Ok(size) = parse_resize(payload) {
                assert!(size.cols >= 1 && size.rows >= 1);
                assert_eq!(parse_resize(&resize_payload(size)), Ok(size));
            }
            let exit = exit_code_of(payload);
            let notice = notice_of(payload);
            assert!(
                exit.is_none() || notice.is_none(),
                "an exit status is a notice too"
            );
            let msg = Message::Binary(data.to_vec().into());
            let upstream = AgentCore.decode(&msg);
            match (channel, upstream) {
                (Channel::Stdout | Channel::Stderr, Incoming::Output(out)) => {
                    assert_eq!(&*out, payload)
                }
                (Channel::Status, Incoming::Exited { code, .. }) => {
                    assert_eq!(code, exit.unwrap_or(255));
                }
                (Channel::Status, Incoming::Confirmed { .. }) => {
                    assert!(exit.is_none(), "a confirmation read as an exit status")
                }
                (Channel::Close, Incoming::HostClosed) => {}
                (Channel::Stdout | Channel::Stderr | Channel::Status | Channel::Close, other) => {
                    panic!("{channel:?} frame read as {other:?}")
                }
                (_, Incoming::Nothing) => {}
                (_, other) => panic!("{channel:?} frame read as {other:?}"),
            }
        }
        Err(ProtocolError::Empty) => assert!(data.is_empty()),
        Err(ProtocolError::TooLarge(n)) => assert!(n > MAX_FRAME),
        Err(e) => panic!("decode gave {e:?}"),
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Terminado.decode(&Message::Text(text.into())) {
        Incoming::Output(Cow::Owned(out)) => {
            let v: serde_json::Value = serde_json::from_str(text).expect("it was JSON");
            assert_eq!(v[0], "stdout");
            assert_eq!(
                Some(out.as_slice()),
                v[1].as_str().map(str::as_bytes).or(Some(b""))
            );
        }
        Incoming::Gone | Incoming::Nothing => {}
        other => panic!("terminado read {other:?}"),
    }
    assert_eq!(
        AgentCore.decode(&Message::Text(text.into())),
        Incoming::Nothing,
        "the AgentCore protocol is binary"
    );
}
