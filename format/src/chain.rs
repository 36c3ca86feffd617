//! The hash chain: chunk record lines (`#tt ...`), links, genesis and seal
//! hashes. Every byte of a recording is covered by one of these.

use sha2::{Digest, Sha256};

use crate::event::Micros;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Domain tag of the genesis link.
pub const GENESIS_TAG: &[u8] = b"termtrail/genesis/v1\0";
/// Domain tag of a chunk link.
pub const LINK_TAG: &[u8] = b"termtrail/link/v1\0";
/// Domain tag of the seal hash.
pub const SEAL_TAG: &[u8] = b"termtrail/seal/v1\0";
/// Every chunk record line starts with this.
pub const RECORD_PREFIX: &[u8] = b"#tt ";

/// SHA-256 of one slice.
pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// `link_0 = SHA-256(GENESIS_TAG ‖ id ‖ header line bytes, newline included)`.
pub fn genesis(id: &[u8; 16], header_line: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(GENESIS_TAG);
    h.update(id);
    h.update(header_line);
    h.finalize().into()
}

/// `link_n = SHA-256(LINK_TAG ‖ link_{n-1} ‖ record body)`.
pub fn link(prev: &Hash, body: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(LINK_TAG);
    h.update(prev);
    h.update(body);
    h.finalize().into()
}

/// `SHA-256(SEAL_TAG ‖ last link ‖ seal body bytes)`.
pub fn seal_hash(last_link: &Hash, body: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(SEAL_TAG);
    h.update(last_link);
    h.update(body);
    h.finalize().into()
}

/// One chunk's record: the `#` comment line written after its event lines.
///
/// `#tt chunk=SEQ t=FIRST..LAST n=EVENTS len=BYTES sha256=HEX link=HEX\n`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    /// Sequence number, from 0.
    pub seq: u64,
    /// Absolute time of the chunk's first event.
    pub first: Micros,
    /// Absolute time of the chunk's last event.
    pub last: Micros,
    /// Number of event lines in the chunk (a `b` companion counts).
    pub lines: u64,
    /// Byte length of the chunk's event lines.
    pub len: u64,
    /// SHA-256 of the chunk's event-line bytes.
    pub sha256: Hash,
    /// The chain link after this chunk.
    pub link: Hash,
}

/// Why a record line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunk record: {0}")]
pub struct RecordError(pub String);

impl ChunkRecord {
    /// The hashed part of the line: everything before ` link=`.
    pub fn body(&self) -> String {
        format!(
            "#tt chunk={} t={}..{} n={} len={} sha256={}",
            self.seq,
            self.first,
            self.last,
            self.lines,
            self.len,
            hex::encode(self.sha256)
        )
    }

    /// The whole line with its newline.
    pub fn to_line(&self) -> String {
        format!("{} link={}\n", self.body(), hex::encode(self.link))
    }

    /// Parses a record line strictly: it must be byte-for-byte what
    /// [`ChunkRecord::to_line`] would write (so no byte can change unseen).
    pub fn parse(line: &[u8]) -> Result<ChunkRecord, RecordError> {
        let text = std::str::from_utf8(line).map_err(|_| RecordError("not UTF-8".into()))?;
        let text = text
            .strip_suffix('\n')
            .ok_or_else(|| RecordError("no newline".into()))?;
        let mut fields = text
            .strip_prefix("#tt ")
            .ok_or_else(|| RecordError("missing `#tt ` prefix".into()))?
            .split(' ');
        let mut next = |key: &str| -> Result<&str, RecordError> {
            fields
                .next()
                .and_then(|f| f.strip_prefix(key))
                .and_then(|f| f.strip_prefix('='))
                .ok_or_else(|| RecordError(format!("missing `{key}=`")))
        };
        let num = |s: &str, what: &str| -> Result<u64, RecordError> {
            s.parse()
                .map_err(|_| RecordError(format!("bad {what} {s:?}")))
        };
        let hash = |s: &str, what: &str| -> Result<Hash, RecordError> {
            let mut out = [0u8; 32];
            hex::decode_to_slice(s, &mut out)
                .map_err(|_| RecordError(format!("bad {what} {s:?}")))?;
            Ok(out)
        };
        let seq = num(next("chunk")?, "chunk")?;
        let (first, last) = next("t")?
            .split_once("..")
            .ok_or_else(|| RecordError("bad t".into()))?;
        let (first, last) = (num(first, "t")?, num(last, "t")?);
        let lines = num(next("n")?, "n")?;
        let len = num(next("len")?, "len")?;
        let sha256 = hash(next("sha256")?, "sha256")?;
        let link = hash(next("link")?, "link")?;
        let rec = ChunkRecord {
            seq,
            first,
            last,
            lines,
            len,
            sha256,
            link,
        };
        if rec.to_line().as_bytes() != line {
            return Err(RecordError("not in canonical form".into()));
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ChunkRecord {
        ChunkRecord {
            seq: 7,
            first: 1_000,
            last: 2_000_500,
            lines: 3,
            len: 120,
            sha256: sha256(b"x"),
            link: sha256(b"y"),
        }
    }

    #[test]
    fn record_round_trip() {
        let r = sample();
        assert_eq!(ChunkRecord::parse(r.to_line().as_bytes()).unwrap(), r);
        assert!(
            r.to_line()
                .starts_with("#tt chunk=7 t=1000..2000500 n=3 len=120 sha256=")
        );
    }

    #[test]
    fn non_canonical_records_are_rejected() {
        let line = sample().to_line();
        for bad in [
            line.replace("chunk=7", "chunk=07"),
            line.replace("n=3", "n=+3"),
            line.replace('\n', " \n"),
            line.replace("#tt ", "#tt  "),
            line.to_uppercase(),
            line.trim_end().to_string(),
        ] {
            assert!(ChunkRecord::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_depend_on_every_input() {
        let a = link(&[0; 32], b"body");
        assert_ne!(a, link(&[1; 32], b"body"));
        assert_ne!(a, link(&[0; 32], b"bodY"));
        assert_ne!(genesis(&[0; 16], b"h\n"), genesis(&[1; 16], b"h\n"));
    }
}
