//! Builds `.cast.zst` files part by part, independently of the chain
//! writer, so that a conformance vector can break exactly one rule: every
//! record, link, index frame and seal is computed here from the parts, and
//! each part can be edited before or after its hashes are taken.

use std::io::Write;

use ed25519_dalek::{Signer, SigningKey};
use termtrail_format::chain::{ChunkRecord, Hash, genesis, link, seal_hash, sha256};
use termtrail_format::event::Micros;
use termtrail_format::seal::{EndReason, SealBody, SegmentEntry};

/// The fixed test signing seed (never a real key).
pub const SEED: [u8; 32] = [7; 32];
/// The fixed recording id.
pub const ID: [u8; 16] = [
    0x7e, 0x57, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
];
/// The fixed seal time.
pub const SEALED_AT: u64 = 1_790_000_100;

/// An edit of a record before its link is computed.
pub type RecordEdit = fn(&mut ChunkRecord);
/// An edit of text (a record line, a seal body, an index payload).
pub type TextEdit = fn(String) -> String;
/// An edit of bytes (a frame, a whole file).
pub type BytesEdit = fn(Vec<u8>) -> Vec<u8>;

/// One chunk: its event lines and how to spoil it.
#[derive(Clone, Default)]
pub struct Chunk {
    /// The event lines, each ending in `\n`.
    pub lines: Vec<u8>,
    /// Edits the record before its link is computed (the chain goes on).
    pub record: Option<RecordEdit>,
    /// Edits the record line after the link is computed.
    pub line: Option<TextEdit>,
    /// Lines stored instead of `lines` after the record was computed.
    pub stored: Option<Vec<u8>>,
    /// Leave the record out (an unterminated chunk).
    pub no_record: bool,
}

impl Chunk {
    /// A chunk of these lines.
    pub fn of(lines: &str) -> Chunk {
        Chunk {
            lines: lines.as_bytes().to_vec(),
            ..Chunk::default()
        }
    }
}

/// How a segment's index frame is written.
#[derive(Clone, Copy, Default)]
pub enum Index {
    /// The canonical entry.
    #[default]
    Auto,
    /// No index frame.
    Omit,
    /// The canonical payload, edited.
    Edit(TextEdit),
    /// Two copies of the canonical frame.
    Twice,
}

/// One segment.
#[derive(Clone, Default)]
pub struct Segment {
    /// Its chunks.
    pub chunks: Vec<Chunk>,
    /// Its index frame.
    pub index: Index,
    /// Write the zstd frame with content checksum and size.
    pub checksum: bool,
    /// Edits the compressed frame (the index and seal describe the result).
    pub frame: Option<BytesEdit>,
    /// Write the frame by hand: its text in one raw block, then a
    /// compressed block that cannot decode.
    pub undecodable_tail: bool,
}

/// How the seal is written.
#[derive(Clone, Default)]
pub struct Seal {
    /// Leave the seal out (an unsealed file).
    pub omit: bool,
    /// Sign it with [`SEED`] (the header names the key when `key` is set).
    pub sign: bool,
    /// Edits the body JSON before the seal hash is computed.
    pub body: Option<TextEdit>,
    /// Writes the body from its values instead of as the writer does.
    pub body_from: Option<fn(&SealBody) -> String>,
    /// Edits the seal's text lines (after `TTSEAL1\n`, before the trailer)
    /// after hash and signature are computed.
    pub text: Option<TextEdit>,
    /// Edits the whole seal frame.
    pub frame: Option<BytesEdit>,
    /// The end reason.
    pub end: Option<EndReason>,
}

/// A whole recording.
#[derive(Clone, Default)]
pub struct Recording {
    /// The header line (with `\n`); None: the default header.
    pub header: Option<String>,
    /// Name the test key in the header.
    pub key: bool,
    /// The segments (segment 0 starts with the header line).
    pub segments: Vec<Segment>,
    /// The seal.
    pub seal: Seal,
}

/// Where things ended up in the file.
#[derive(Debug, Default, Clone)]
pub struct Layout {
    /// Per segment: frame offset, frame length, the file offsets where each
    /// flush ended (the header's, then each chunk's).
    pub segments: Vec<(usize, usize, Vec<usize>)>,
    /// Per segment: offset and length of its index frame.
    pub index: Vec<(usize, usize)>,
    /// Offset of the seal frame.
    pub seal: Option<usize>,
}

/// The test key's header member.
pub fn key_json() -> String {
    let key = SigningKey::from_bytes(&SEED).verifying_key();
    let id = hex::encode(&sha256(key.as_bytes())[..8]);
    format!(
        r#""key":{{"alg":"ed25519","id":"{id}","public":"{}"}}"#,
        hex::encode(key.as_bytes())
    )
}

/// The default header line.
pub fn default_header(key: bool) -> String {
    let key = if key {
        format!(",{}", key_json())
    } else {
        String::new()
    };
    format!(
        r#"{{"version":3,"term":{{"cols":80,"rows":24}},"timestamp":1790000000,"termtrail":{{"format":1,"id":"{}","chunk_ms":1000,"source":"local","input":true{key}}}}}"#,
        hex::encode(ID)
    ) + "\n"
}

/// Times of lines as stored (0 for a line whose time does not parse).
fn times(lines: &[u8]) -> Vec<Micros> {
    lines
        .split_inclusive(|&b| b == b'\n')
        .map(|l| {
            let l = std::str::from_utf8(l).unwrap_or("");
            let t = l.strip_prefix('[').and_then(|l| l.split(',').next());
            t.and_then(|t| {
                let (s, us) = t.split_once('.')?;
                Some(s.parse::<u64>().ok()? * 1_000_000 + us.parse::<u64>().ok()?)
            })
            .unwrap_or(0)
        })
        .collect()
}

impl Recording {
    /// Builds the file.
    pub fn build(&self) -> (Vec<u8>, Layout) {
        let header = self
            .header
            .clone()
            .unwrap_or_else(|| default_header(self.key));
        let mut file = Vec::new();
        let mut layout = Layout::default();
        let mut chain: Hash = genesis(&ID, header.as_bytes());
        let (mut seq, mut last_t, mut lines_total, mut bytes) = (0u64, 0u64, 0u64, 0u64);
        let mut entries = Vec::new();
        for (n, seg) in self.segments.iter().enumerate() {
            let offset = file.len();
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            enc.include_checksum(seg.checksum).unwrap();
            enc.include_contentsize(seg.checksum).unwrap();
            let mut flushes = Vec::new();
            let mut text = Vec::new();
            let mut put = |enc: &mut zstd::stream::write::Encoder<'static, Vec<u8>>,
                           bytes: &[u8],
                           text: &mut Vec<u8>| {
                enc.write_all(bytes).unwrap();
                if !seg.checksum {
                    enc.flush().unwrap();
                }
                text.extend_from_slice(bytes);
                flushes.push(offset + enc.get_ref().len());
            };
            if n == 0 {
                put(&mut enc, header.as_bytes(), &mut text);
            }
            let (link_in, first_chunk) = (chain, seq);
            let (mut t0, mut t1, mut chunks) = (0, 0, 0);
            for c in &seg.chunks {
                let ts = times(&c.lines);
                let first = last_t + ts.first().copied().unwrap_or(0);
                let last = first + ts.iter().skip(1).sum::<u64>();
                let mut r = ChunkRecord {
                    seq,
                    first,
                    last,
                    lines: ts.len() as u64,
                    len: c.lines.len() as u64,
                    sha256: sha256(&c.lines),
                    link: [0; 32],
                };
                if let Some(edit) = c.record {
                    edit(&mut r);
                }
                r.link = link(&chain, r.body().as_bytes());
                let mut out = c.stored.clone().unwrap_or_else(|| c.lines.clone());
                if !c.no_record {
                    let line = r.to_line();
                    out.extend(c.line.map_or(line.clone(), |e| e(line)).as_bytes());
                    chain = r.link;
                    seq = r.seq + 1;
                    last_t = r.last;
                    lines_total += r.lines;
                    if chunks == 0 {
                        t0 = r.first;
                    }
                    t1 = r.last;
                    chunks += 1;
                }
                put(&mut enc, &out, &mut text);
            }
            let mut frame = enc.finish().unwrap();
            if seg.undecodable_tail {
                frame = undecodable(&text);
            }
            if let Some(edit) = seg.frame {
                frame = edit(frame);
            }
            bytes += text.len() as u64;
            file.extend(&frame);
            layout.segments.push((offset, frame.len(), flushes));
            let entry = SegmentEntry {
                segment: n as u32,
                offset: offset as u64,
                length: frame.len() as u64,
                ulen: text.len() as u64,
                first_chunk,
                chunks,
                t0,
                t1,
                link_in: hex::encode(link_in),
                link_out: hex::encode(chain),
                sha256: hex::encode(sha256(&frame)),
            };
            let payload = entry.to_payload();
            let at = file.len();
            let index = |p: Vec<u8>| skippable(0x184D_2A5D, &p);
            match seg.index {
                Index::Auto => file.extend(index(payload)),
                Index::Omit => {}
                Index::Edit(e) => {
                    let p = e(String::from_utf8(payload).unwrap());
                    file.extend(index(p.into_bytes()));
                }
                Index::Twice => {
                    file.extend(index(payload.clone()));
                    file.extend(index(payload));
                }
            }
            layout.index.push((at, file.len() - at));
            entries.push(entry);
        }
        if !self.seal.omit {
            layout.seal = Some(file.len());
            let body = SealBody {
                format: 1,
                id: hex::encode(ID),
                chunks: seq,
                lines: lines_total,
                duration: last_t,
                bytes,
                end: self
                    .seal
                    .end
                    .clone()
                    .unwrap_or(EndReason::Exited { code: 0 }),
                sealed_at: SEALED_AT,
                last_link: hex::encode(chain),
                segments: entries,
            };
            let mut body = match self.seal.body_from {
                Some(f) => f(&body),
                None => serde_json::to_string(&body).unwrap(),
            };
            if let Some(e) = self.seal.body {
                body = e(body);
            }
            let hash = seal_hash(&chain, body.as_bytes());
            let mut text = format!("{body}\nseal={}\n", hex::encode(hash));
            if self.seal.sign {
                let sig = SigningKey::from_bytes(&SEED).sign(&hash).to_bytes();
                text.push_str(&format!("sig={}\n", hex::encode(sig)));
            }
            if let Some(e) = self.seal.text {
                text = e(text);
            }
            let mut payload = b"TTSEAL1\n".to_vec();
            payload.extend(text.as_bytes());
            let total = (payload.len() + 8 + 12) as u32;
            payload.extend(total.to_le_bytes());
            payload.extend(b"TTSEALv1");
            let mut frame = skippable(0x184D_2A5C, &payload);
            if let Some(e) = self.seal.frame {
                frame = e(frame);
            }
            file.extend(frame);
        }
        (file, layout)
    }
}

/// A skippable frame.
pub fn skippable(magic: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = magic.to_le_bytes().to_vec();
    out.extend((payload.len() as u32).to_le_bytes());
    out.extend(payload);
    out
}

/// A zstd frame holding `text` in one raw block, followed by a last,
/// compressed block of one byte: treeless literals with no table before
/// them, which no decoder can decode.
fn undecodable(text: &[u8]) -> Vec<u8> {
    // Magic, frame header descriptor 0 (a window descriptor follows, no
    // content size, no checksum), window 1 MiB.
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50];
    let block = |last: u32, kind: u32, size: usize| {
        let h = last | kind << 1 | (size as u32) << 3;
        [h as u8, (h >> 8) as u8, (h >> 16) as u8]
    };
    f.extend(block(0, 0, text.len()));
    f.extend(text);
    f.extend(block(1, 2, 1));
    f.push(0xff);
    f
}
