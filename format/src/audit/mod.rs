//! The audit log's format: one JSON object per line, hash-chained line to
//! line ([`encode_line`], [`genesis`]), the typed events a host writes
//! ([`AuditEvent`]), and the streaming verifier ([`verify()`]).
//!
//! Each line is
//! `{"seq":N,"time":"…","log":"<32 hex>","prev":"<64 hex>","event":"…",…}`
//! followed by `\n`; `prev` is the SHA-256 of the previous line's exact
//! bytes (newline included), or [`genesis`] of the log id for `seq` 1. The
//! specification, with the verifier's numbered checks, is `docs/audit.md`.

mod event;
mod verify;

#[cfg(test)]
mod tests;

use sha2::{Digest, Sha256};

use crate::chain::Hash;

pub use event::{
    Attach, AuditEvent, Decision, Recovered, Seal, ServerStart, ServerStop, ShellEnd, ShellStart,
    Terminate,
};
pub use verify::{
    Anchor, AuditReport, AuditVerdict, BadAnchor, TamperReason, Torn, verify, verify_with,
};

/// Longest line a writer writes and a verifier reads, newline included.
pub const MAX_LINE: usize = 1 << 20;

/// Domain tag of the genesis value (`prev` of line 1).
pub const GENESIS_TAG: &[u8] = b"termtrail/audit/genesis/v1\0";

/// `prev` of line 1: `SHA-256(GENESIS_TAG ‖ log id as 32 lower-case hex
/// characters)`.
pub fn genesis(log: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(GENESIS_TAG);
    h.update(log.as_bytes());
    h.finalize().into()
}

/// A fresh random log id (16 bytes, lower-case hex).
pub fn new_log_id() -> Result<String, getrandom::Error> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id)?;
    Ok(hex::encode(id))
}

/// The last line of a chain: what the next line links to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Head {
    /// Its `seq`.
    pub seq: u64,
    /// SHA-256 of its bytes, newline included (lower-case hex).
    pub hash: String,
    /// The log id.
    pub log: String,
}

/// Why an event cannot be written as a line.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// serde_json refused the event.
    #[error("cannot encode the audit event: {0}")]
    Json(#[from] serde_json::Error),
    /// The line would exceed [`MAX_LINE`].
    #[error("the audit line would be {0} bytes, over the {MAX_LINE}-byte limit")]
    TooLong(usize),
}

/// Line `seq` of log `log` after a line hashing to `prev`, at `time_us`
/// (microseconds since the Unix epoch), newline included. The head fields
/// come first in a fixed order, then the event's own fields.
pub fn encode_line(
    seq: u64,
    time_us: i64,
    log: &str,
    prev: &Hash,
    event: &AuditEvent,
) -> Result<Vec<u8>, EncodeError> {
    let body = serde_json::to_vec(event)?;
    // An internally tagged enum always serialises as a non-empty object.
    let fields = body.strip_prefix(b"{").unwrap_or(&body);
    let mut line = format!(
        "{{\"seq\":{seq},\"time\":\"{}\",\"log\":\"{log}\",\"prev\":\"{}\",",
        rfc3339_micros(time_us),
        hex::encode(prev)
    )
    .into_bytes();
    line.extend_from_slice(fields);
    line.push(b'\n');
    if line.len() > MAX_LINE {
        return Err(EncodeError::TooLong(line.len()));
    }
    Ok(line)
}

/// SHA-256 of a line's bytes (newline included), lower-case hex.
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (RFC 3339, UTC, microseconds) for
/// microseconds since the Unix epoch.
pub fn rfc3339_micros(time_us: i64) -> String {
    let secs = time_us.div_euclid(1_000_000);
    let micros = time_us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::civil::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Whether `s` has the shape [`rfc3339_micros`] writes.
pub fn is_rfc3339_micros(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            26 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

pub use crate::text::visible;
