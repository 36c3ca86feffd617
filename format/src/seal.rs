//! The segment index entries and the seal that ends a recording.

use serde::{Deserialize, Serialize};

use crate::chain::{Hash, seal_hash};
use crate::event::Micros;
use crate::frames::{SEAL_MAGIC, skippable_frame};

/// Payload prefix of a segment-index frame.
pub const SEGMENT_PREFIX: &[u8] = b"TTSEG1\n";
/// Payload prefix of the seal frame.
pub const SEAL_PREFIX: &[u8] = b"TTSEAL1\n";
/// The last 8 bytes of a sealed file.
pub const SEAL_TRAILER: &[u8; 8] = b"TTSEALv1";

/// One segment's index entry: where it is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// Segment number, from 0.
    pub segment: u32,
    /// Byte offset of its zstd frame in the file.
    pub offset: u64,
    /// Compressed length of its zstd frame.
    pub length: u64,
    /// Uncompressed length.
    pub ulen: u64,
    /// Sequence number of its first chunk.
    pub first_chunk: u64,
    /// Number of chunks in it.
    pub chunks: u64,
    /// Time of its first event (0 when it has none).
    pub t0: Micros,
    /// Time of its last event (0 when it has none).
    pub t1: Micros,
    /// Chain link before its first chunk (hex).
    pub link_in: String,
    /// Chain link after its last chunk (hex).
    pub link_out: String,
    /// SHA-256 of the segment's compressed frame bytes (hex), so that even
    /// bytes that do not change the decompressed text are covered.
    pub sha256: String,
}

impl SegmentEntry {
    /// The names of the members in which `other` differs from this entry,
    /// in declaration order (empty when they are equal).
    pub fn differences(&self, other: &SegmentEntry) -> Vec<&'static str> {
        let pairs = [
            ("segment", self.segment != other.segment),
            ("offset", self.offset != other.offset),
            ("length", self.length != other.length),
            ("ulen", self.ulen != other.ulen),
            ("first_chunk", self.first_chunk != other.first_chunk),
            ("chunks", self.chunks != other.chunks),
            ("t0", self.t0 != other.t0),
            ("t1", self.t1 != other.t1),
            ("link_in", self.link_in != other.link_in),
            ("link_out", self.link_out != other.link_out),
            ("sha256", self.sha256 != other.sha256),
        ];
        pairs
            .into_iter()
            .filter_map(|(name, differs)| differs.then_some(name))
            .collect()
    }

    /// The payload of the skippable frame that follows the segment.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut out = SEGMENT_PREFIX.to_vec();
        out.extend(serde_json::to_vec(self).unwrap_or_default());
        out.push(b'\n');
        out
    }

    /// Parses a segment-index payload.
    pub fn from_payload(payload: &[u8]) -> Option<SegmentEntry> {
        let body = payload.strip_prefix(SEGMENT_PREFIX)?.strip_suffix(b"\n")?;
        serde_json::from_slice(body).ok()
    }
}

/// Why a recording ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum EndReason {
    /// The recorded program exited with this status.
    Exited {
        /// Exit status (128+N for signal N).
        code: i32,
    },
    /// The client closed the session.
    Closed,
    /// The session idled out.
    IdleTimeout,
    /// The recorder was stopped (signal, shutdown) or found a crashed spool.
    Interrupted {
        /// What happened.
        detail: String,
    },
    /// Converted from an existing asciicast file.
    Imported,
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::Exited { code } => write!(f, "exited with code {code}"),
            EndReason::Closed => f.write_str("closed"),
            EndReason::IdleTimeout => f.write_str("idle timeout"),
            EndReason::Interrupted { detail } => write!(f, "interrupted ({detail})"),
            EndReason::Imported => f.write_str("imported"),
        }
    }
}

/// The seal's JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealBody {
    /// Container format version, 1.
    pub format: u32,
    /// Recording id (hex), as in the header.
    pub id: String,
    /// Number of chunks.
    pub chunks: u64,
    /// Number of event lines.
    pub lines: u64,
    /// Time of the last event.
    pub duration: Micros,
    /// Uncompressed bytes (header, event and record lines).
    pub bytes: u64,
    /// Why it ended.
    pub end: EndReason,
    /// Unix time of sealing, seconds.
    pub sealed_at: u64,
    /// The last chain link (hex): the genesis link when there are no chunks.
    pub last_link: String,
    /// Index of every segment.
    pub segments: Vec<SegmentEntry>,
}

/// A seal as found in a file.
#[derive(Debug, Clone)]
pub struct Seal {
    /// Parsed body.
    pub body: SealBody,
    /// The exact body bytes, as hashed.
    pub body_bytes: Vec<u8>,
    /// The stated seal hash.
    pub hash: Hash,
    /// The Ed25519 signature of the seal hash, when signed.
    pub signature: Option<[u8; 64]>,
}

/// Encodes the seal frame: body, hash, optional signature, trailer.
pub fn encode_seal(
    body: &SealBody,
    last_link: &Hash,
    sign: impl FnOnce(&Hash) -> Option<[u8; 64]>,
) -> Vec<u8> {
    let body_bytes = serde_json::to_vec(body).unwrap_or_default();
    let hash = seal_hash(last_link, &body_bytes);
    let mut payload = SEAL_PREFIX.to_vec();
    payload.extend(&body_bytes);
    payload.extend(b"\nseal=");
    payload.extend(hex::encode(hash).as_bytes());
    payload.push(b'\n');
    if let Some(sig) = sign(&hash) {
        payload.extend(b"sig=");
        payload.extend(hex::encode(sig).as_bytes());
        payload.push(b'\n');
    }
    let total = (payload.len() + 8 + 12) as u32;
    payload.extend(total.to_le_bytes());
    payload.extend(SEAL_TRAILER);
    skippable_frame(SEAL_MAGIC, &payload)
}

/// Why a seal frame's payload is malformed (each message is what `verify`
/// reports after "seal is malformed: ").
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The payload does not start with the seal's tag.
    #[error("seal does not start with TTSEAL1")]
    Prefix,
    /// The trailer (length and magic) is missing.
    #[error("seal trailer missing")]
    TrailerMissing,
    /// The trailer's length is not the frame's.
    #[error("seal trailer length does not match")]
    TrailerLength,
    /// The text between tag and trailer is not UTF-8.
    #[error("seal is not UTF-8")]
    NotUtf8,
    /// There is no body line.
    #[error("seal body missing")]
    BodyMissing,
    /// The body line has no newline.
    #[error("seal body unterminated")]
    BodyUnterminated,
    /// The body, or an entry of its `segments`, is not a JSON object.
    #[error("seal body: not a JSON object of objects")]
    NotObject,
    /// The body is not the JSON of a [`SealBody`].
    #[error("seal body: {0}")]
    Body(serde_json::Error),
    /// There is no `seal=` line.
    #[error("seal hash missing")]
    HashMissing,
    /// The `seal=` line is malformed.
    #[error("seal hash line malformed")]
    HashLine,
    /// The hash is not 64 lowercase hex digits.
    #[error("seal hash malformed")]
    Hash,
    /// The `sig=` line is malformed.
    #[error("seal signature line malformed")]
    SignatureLine,
    /// The signature is not 128 lowercase hex digits.
    #[error("seal signature malformed")]
    Signature,
    /// Lines follow the signature.
    #[error("unexpected data in seal")]
    TrailingData,
}

/// Parses a seal frame's payload.
pub fn decode_seal(payload: &[u8]) -> Result<Seal, SealError> {
    let rest = payload.strip_prefix(SEAL_PREFIX).ok_or(SealError::Prefix)?;
    if rest.len() < 12 || &rest[rest.len() - 8..] != SEAL_TRAILER {
        return Err(SealError::TrailerMissing);
    }
    let stated = u32::from_le_bytes(
        rest[rest.len() - 12..rest.len() - 8]
            .try_into()
            .unwrap_or_default(),
    );
    if stated as usize != payload.len() + 8 {
        return Err(SealError::TrailerLength);
    }
    let text = std::str::from_utf8(&rest[..rest.len() - 12]).map_err(|_| SealError::NotUtf8)?;
    let mut lines = text.split_inclusive('\n');
    let body_line = lines.next().ok_or(SealError::BodyMissing)?;
    let body_bytes = body_line
        .strip_suffix('\n')
        .ok_or(SealError::BodyUnterminated)?;
    // An object, its entries objects (serde would also take a struct from
    // an array of its values); then typed, which rejects duplicate members.
    let shape: serde_json::Value = serde_json::from_str(body_bytes).map_err(SealError::Body)?;
    let objects = shape.is_object()
        && shape["segments"]
            .as_array()
            .is_none_or(|a| a.iter().all(serde_json::Value::is_object));
    if !objects {
        return Err(SealError::NotObject);
    }
    let body: SealBody = serde_json::from_str(body_bytes).map_err(SealError::Body)?;
    let mut hash = [0u8; 32];
    let seal_line = lines.next().ok_or(SealError::HashMissing)?;
    let h = seal_line
        .strip_prefix("seal=")
        .and_then(|l| l.strip_suffix('\n'))
        .ok_or(SealError::HashLine)?;
    if !crate::header::is_lower_hex(h, 64) {
        return Err(SealError::Hash);
    }
    hex::decode_to_slice(h, &mut hash).map_err(|_| SealError::Hash)?;
    let signature = match lines.next() {
        None => None,
        Some(l) => {
            let s = l
                .strip_prefix("sig=")
                .and_then(|l| l.strip_suffix('\n'))
                .ok_or(SealError::SignatureLine)?;
            let mut sig = [0u8; 64];
            if !crate::header::is_lower_hex(s, 128) {
                return Err(SealError::Signature);
            }
            hex::decode_to_slice(s, &mut sig).map_err(|_| SealError::Signature)?;
            Some(sig)
        }
    };
    if lines.next().is_some() {
        return Err(SealError::TrailingData);
    }
    Ok(Seal {
        body,
        body_bytes: body_bytes.as_bytes().to_vec(),
        hash,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seal body of a recording without chunks that ended with `end`.
    fn empty_body(end: EndReason) -> SealBody {
        SealBody {
            format: 1,
            id: "00".repeat(16),
            chunks: 0,
            lines: 0,
            duration: 0,
            bytes: 0,
            end,
            sealed_at: 1,
            last_link: "11".repeat(32),
            segments: vec![],
        }
    }

    #[test]
    fn seal_round_trip() {
        let body = SealBody {
            format: 1,
            id: "00".repeat(16),
            chunks: 2,
            lines: 5,
            duration: 1_500_000,
            bytes: 900,
            end: EndReason::Exited { code: 3 },
            sealed_at: 1,
            last_link: "11".repeat(32),
            segments: vec![],
        };
        let frame = encode_seal(&body, &[1; 32], |_| Some([7; 64]));
        let payload = &frame[8..];
        let seal = decode_seal(payload).unwrap();
        assert_eq!(seal.body, body);
        assert_eq!(seal.signature, Some([7; 64]));
        assert_eq!(seal.hash, seal_hash(&[1; 32], &seal.body_bytes));
        let mut bad = payload.to_vec();
        bad[10] ^= 1;
        assert!(decode_seal(&bad).is_err());
    }

    #[test]
    fn malformed_seals_say_what_is_wrong() {
        let body = empty_body(EndReason::Exited { code: 0 });
        let frame = encode_seal(&body, &[1; 32], |_| None);
        let payload = &frame[8..];
        let err = |p: &[u8]| decode_seal(p).unwrap_err();
        assert!(matches!(err(b"TTSEAL0"), SealError::Prefix));
        assert_eq!(
            err(b"TTSEAL0").to_string(),
            "seal does not start with TTSEAL1"
        );
        assert!(matches!(
            err(&payload[..payload.len() - 1]),
            SealError::TrailerMissing
        ));
        let mut extra = payload[..payload.len() - 12].to_vec();
        extra.extend(b"x\n");
        extra.extend(((extra.len() + 20) as u32).to_le_bytes());
        extra.extend(SEAL_TRAILER);
        assert_eq!(err(&extra).to_string(), "seal signature line malformed");
    }

    /// Fuzzing found a signed seal still verifying with a signature digit
    /// in uppercase: the file's bytes changed, the verdict did not.
    #[test]
    fn hex_in_the_seal_is_lowercase_only() {
        let body = empty_body(EndReason::Closed);
        let frame = encode_seal(&body, &[1; 32], |_| Some([0xab; 64]));
        let payload = &frame[8..];
        assert!(decode_seal(payload).is_ok());
        let text = String::from_utf8_lossy(payload).into_owned();
        let sig = text.find("sig=").unwrap() + 4;
        let mut upper = payload.to_vec();
        upper[sig] = upper[sig].to_ascii_uppercase();
        assert!(matches!(decode_seal(&upper), Err(SealError::Signature)));
        let hash = text.find("seal=").unwrap() + 5;
        let digit = hash + text[hash..].find(|c: char| c.is_ascii_lowercase()).unwrap();
        let mut upper = payload.to_vec();
        upper[digit] = upper[digit].to_ascii_uppercase();
        assert!(matches!(decode_seal(&upper), Err(SealError::Hash)));
    }
}
