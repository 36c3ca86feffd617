//! asciicast v2 and v3: headers and event lines, encoded and decoded one line
//! at a time. Streaming readers and writers on top live in [`crate::plain`].
//!
//! Why our own codec: the published `asciicast` crate models v2 only and fails
//! on `r`, `m`, `x` and unknown codes; `asciicast-rs` is parser-only. We need a
//! writer, byte-exact control of every line (the hash chain covers the bytes),
//! and the lossless `b` companion for non-UTF-8 output.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::{Event, EventData, Micros, TermSize, format_secs};
use crate::scan;
use crate::utf8::{decode_lossless, encode_lossless};

/// The asciicast version of a file or export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastVersion {
    /// asciicast v2: absolute event times, no comments.
    V2,
    /// asciicast v3: intervals since the previous event, `#` comment lines.
    V3,
}

/// A signing key reference stored in the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// Algorithm; always `ed25519`.
    pub alg: String,
    /// Key id: the first 16 hex digits of SHA-256 of the public key.
    pub id: String,
    /// The public key, 64 hex digits.
    pub public: String,
}

/// termtrail's own header block (`"termtrail": {...}`). Standard readers
/// ignore unknown header attributes, as the v3 spec requires.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecordingMeta {
    /// Container format version; 1.
    pub format: u32,
    /// Random recording id, 32 hex digits; bound into the chain's genesis.
    pub id: String,
    /// Chunk age bound in milliseconds.
    pub chunk_ms: u64,
    /// Where the frames came from: `local`, `serve`, `proxy`, `import`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Shell id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Who opened the shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Stated reason (break-glass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Host the recording was made on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Whether input (`i`) was recorded.
    #[serde(default)]
    pub input: bool,
    /// Signing key, when the seal is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyRef>,
    /// Fields added by later versions, passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The terminal block of a v3 header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
    /// `TERM`, e.g. `xterm-256color`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Terminal version (XTVERSION).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Colour theme, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<Value>,
}

/// A recording header, in v3 shape whatever version it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Initial terminal size and type.
    pub term: Term,
    /// Unix time of the start, in seconds.
    pub timestamp: Option<u64>,
    /// Idle time limit for players, seconds.
    pub idle_time_limit: Option<f64>,
    /// Recorded command.
    pub command: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Captured environment.
    pub env: BTreeMap<String, String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// termtrail's block, present in `.cast.zst` recordings.
    pub termtrail: Option<RecordingMeta>,
    /// Unknown attributes, passed through.
    pub extra: Map<String, Value>,
}

impl Header {
    /// A minimal header for a terminal of the given size.
    pub fn new(size: TermSize) -> Header {
        Header {
            term: Term {
                cols: size.cols,
                rows: size.rows,
                kind: None,
                version: None,
                theme: None,
            },
            timestamp: None,
            idle_time_limit: None,
            command: None,
            title: None,
            env: BTreeMap::new(),
            tags: Vec::new(),
            termtrail: None,
            extra: Map::new(),
        }
    }

    /// The initial terminal size.
    pub fn size(&self) -> TermSize {
        TermSize {
            cols: self.term.cols,
            rows: self.term.rows,
        }
    }

    /// Serialises the header as one line (with `\n`) in the given version.
    pub fn to_line(&self, version: CastVersion) -> Vec<u8> {
        let env = (!self.env.is_empty()).then_some(&self.env);
        let mut out = match version {
            CastVersion::V3 => serde_json::to_vec(&V3Out {
                version: 3,
                term: &self.term,
                timestamp: self.timestamp,
                idle_time_limit: self.idle_time_limit,
                command: self.command.as_deref(),
                title: self.title.as_deref(),
                env,
                tags: (!self.tags.is_empty()).then_some(&self.tags),
                termtrail: self.termtrail.as_ref(),
                extra: &self.extra,
            }),
            CastVersion::V2 => serde_json::to_vec(&V2Out {
                version: 2,
                width: self.term.cols,
                height: self.term.rows,
                timestamp: self.timestamp,
                idle_time_limit: self.idle_time_limit,
                command: self.command.as_deref(),
                title: self.title.as_deref(),
                env,
                theme: self.term.theme.as_ref(),
            }),
        }
        .unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses a header line of either version.
    pub fn parse(line: &[u8]) -> Result<(Header, CastVersion), HeaderError> {
        let value: Value = serde_json::from_slice(trim_newline(line))
            .map_err(|e| HeaderError::Json(e.to_string()))?;
        let version = value.get("version").and_then(Value::as_u64);
        match version {
            Some(3) => {
                let h: V3In =
                    serde_json::from_value(value).map_err(|e| HeaderError::Json(e.to_string()))?;
                Ok((
                    Header {
                        term: h.term,
                        timestamp: h.timestamp.map(|t| t.max(0.0) as u64),
                        idle_time_limit: h.idle_time_limit,
                        command: h.command,
                        title: h.title,
                        env: drop_nulls(h.env),
                        tags: h.tags,
                        termtrail: h.termtrail,
                        extra: h.extra,
                    },
                    CastVersion::V3,
                ))
            }
            Some(2) => {
                let h: V2In =
                    serde_json::from_value(value).map_err(|e| HeaderError::Json(e.to_string()))?;
                let mut header = Header::new(TermSize {
                    cols: h.width,
                    rows: h.height,
                });
                header.term.theme = h.theme;
                header.timestamp = h.timestamp.map(|t| t.max(0.0) as u64);
                header.idle_time_limit = h.idle_time_limit;
                header.command = h.command;
                header.title = h.title;
                header.env = drop_nulls(h.env);
                if let Some(t) = header.env.get("TERM") {
                    header.term.kind = Some(t.clone());
                }
                Ok((header, CastVersion::V2))
            }
            Some(v) => Err(HeaderError::Version(v.to_string())),
            None => match value.get("version") {
                Some(v) => Err(HeaderError::Version(v.to_string())),
                None => Err(HeaderError::Json("no \"version\" attribute".into())),
            },
        }
    }
}

/// Why a header line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not a JSON object of the expected shape.
    #[error("invalid asciicast header: {0}")]
    Json(String),
    /// A version other than 2 or 3.
    #[error("unsupported asciicast version {0} (termtrail reads v2 and v3)")]
    Version(String),
}

fn drop_nulls(env: BTreeMap<String, Option<String>>) -> BTreeMap<String, String> {
    env.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

#[derive(Serialize)]
struct V3Out<'a> {
    version: u8,
    term: &'a Term,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_time_limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    termtrail: Option<&'a RecordingMeta>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

#[derive(Serialize)]
struct V2Out<'a> {
    version: u8,
    width: u16,
    height: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_time_limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    theme: Option<&'a Value>,
}

#[derive(Deserialize)]
struct V3In {
    /// Consumed here so that it is not kept among the unknown attributes.
    #[serde(rename = "version")]
    _version: Value,
    term: Term,
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(default)]
    idle_time_limit: Option<f64>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, Option<String>>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    termtrail: Option<RecordingMeta>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct V2In {
    width: u16,
    height: u16,
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(default)]
    idle_time_limit: Option<f64>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, Option<String>>,
    #[serde(default)]
    theme: Option<Value>,
}

pub(crate) fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Appends one event line `[<time>, "<code>", <data>]\n` to `buf`.
/// `time` is the interval (v3) or the absolute time (v2) in microseconds.
pub fn write_line(buf: &mut Vec<u8>, time: Micros, code: &str, data: &str) {
    buf.push(b'[');
    buf.extend_from_slice(format_secs(time).as_bytes());
    buf.extend_from_slice(b", ");
    // The bytes serde_json would write, found faster.
    crate::json_str::write_str(buf, code);
    buf.extend_from_slice(b", ");
    crate::json_str::write_str(buf, data);
    buf.extend_from_slice(b"]\n");
}

/// Appends the line(s) for one event: the event line, followed for
/// non-UTF-8 `o`/`i` data by its `b` companion line at interval 0.
/// With `lossy` the companion is left out (plain exports for other tools).
pub fn write_event(buf: &mut Vec<u8>, time: Micros, data: &EventData, lossy: bool) {
    match data {
        EventData::Output(bytes) | EventData::Input(bytes) => {
            let (text, repair) = encode_lossless(bytes);
            write_line(buf, time, data.code(), &text);
            if let (Some(repair), false) = (repair, lossy) {
                write_line(buf, 0, "b", &repair);
            }
        }
        EventData::Marker(label) => write_line(buf, time, "m", label),
        EventData::Resize(size) => write_line(buf, time, "r", &size.to_string()),
        EventData::Exit(code) => write_line(buf, time, "x", &code.to_string()),
        EventData::Other { code, data } => write_line(buf, time, code, data),
    }
}

/// The latest time an event line may give, absolute or as an interval
/// (999999999.999999 s, nearly 32 years): the times a line's nine digits
/// before the point and six after say exactly, so every time read prints
/// and reads back the same (fuzzing found times near 10¹² s changing by
/// 32 µs through a JSON parser's floats).
pub const MAX_TIME: Micros = 999_999_999_999_999;

/// One event line, decoded but not yet interpreted.
#[derive(Debug, Clone, PartialEq)]
pub struct RawLine {
    /// The time field in microseconds (interval in v3, absolute in v2).
    pub time: Micros,
    /// Event code.
    pub code: String,
    /// Event data.
    pub data: String,
}

/// Why an event line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event line: {0}")]
pub struct LineError(pub String);

/// Parses `[time, code, data]`.
pub fn parse_line(line: &[u8]) -> Result<RawLine, LineError> {
    let line = trim_newline(line);
    match scanned_line(line) {
        Some(raw) => Ok(raw),
        None => parse_json_line(line),
    }
}

/// [`parse_line`] with the head (time, code) read by the in-place scanner
/// ([`crate::scan`]), for the lines it reads exactly as a JSON parser would
/// (every line termtrail writes): None for any other, which
/// [`parse_json_line`] then reads.
fn scanned_line(line: &[u8]) -> Option<RawLine> {
    let h = scan::head(line)?;
    // JSON whitespace has no form feed; the scanner skips one.
    let plain_code = !h.code.is_empty() && h.code.iter().all(|&b| b >= 0x20 && b != b'\\');
    if !h.exact_time || !plain_code || memchr::memchr(0x0c, &line[..h.data]).is_some() {
        return None;
    }
    // The data string from its opening quote, by the JSON parser (long
    // strings are what it is fastest at).
    let mut strings =
        serde_json::Deserializer::from_slice(&line[h.data - 1..]).into_iter::<String>();
    let data = strings.next()?.ok()?;
    let tail = line[h.data - 1 + strings.byte_offset()..].strip_prefix(b"]".as_slice())?;
    if !tail
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return None;
    }
    Some(RawLine {
        time: h.interval,
        code: String::from_utf8(h.code.to_vec()).ok()?,
        data,
    })
}

/// [`parse_line`] by a full JSON parser: any JSON the line may hold.
fn parse_json_line(line: &[u8]) -> Result<RawLine, LineError> {
    let (time, code, data): (Value, String, Value) =
        serde_json::from_slice(line).map_err(|e| LineError(e.to_string()))?;
    let secs = time
        .as_f64()
        .ok_or_else(|| LineError("time is not a number".into()))?;
    let micros = (secs * 1e6).round();
    if !(0.0..=MAX_TIME as f64).contains(&micros) {
        return Err(LineError(format!(
            "time {secs} out of range (0 to 999999999.999999 seconds)"
        )));
    }
    if code.is_empty() {
        return Err(LineError("empty event code".into()));
    }
    let data = match data {
        Value::String(s) => s,
        other => other.to_string(),
    };
    Ok(RawLine {
        time: micros as Micros,
        code,
        data,
    })
}

/// Interprets a line's code and data as an event, at the given absolute time.
pub fn interpret(time: Micros, code: &str, data: String) -> Result<Event, LineError> {
    let data = match code {
        "o" => EventData::Output(data.into_bytes()),
        "i" => EventData::Input(data.into_bytes()),
        "m" => EventData::Marker(data),
        "r" => EventData::Resize(
            TermSize::parse(&data).ok_or_else(|| LineError(format!("bad resize {data:?}")))?,
        ),
        "x" => EventData::Exit(
            data.trim()
                .parse()
                .map_err(|_| LineError(format!("bad exit status {data:?}")))?,
        ),
        _ => EventData::Other {
            code: code.to_string(),
            data,
        },
    };
    Ok(Event { time, data })
}

/// Turns a stream of lines into events, folding each `b` companion into the
/// `o`/`i` event before it. Feed lines with [`EventAssembler::push`]; call
/// [`EventAssembler::finish`] at the end of a chunk or file. A `b` line that
/// follows no `o`/`i` event is an error (docs/format.md §3: it is malformed,
/// and a recording written from it would not verify).
#[derive(Debug, Default)]
pub struct EventAssembler {
    held: Option<Event>,
}

impl EventAssembler {
    /// An empty assembler.
    pub fn new() -> EventAssembler {
        EventAssembler::default()
    }

    /// Takes the next line (at its absolute time) and appends the events that
    /// are now complete to `out`.
    pub fn push(
        &mut self,
        time: Micros,
        code: &str,
        data: String,
        out: &mut Vec<Event>,
    ) -> Result<(), LineError> {
        if code == "b"
            && let Some(mut held) = self.held.take()
        {
            if let EventData::Output(bytes) | EventData::Input(bytes) = &mut held.data {
                let text = String::from_utf8(std::mem::take(bytes)).unwrap_or_default();
                *bytes = decode_lossless(&text, &data).ok_or_else(|| {
                    LineError(format!("`b` data {data:?} does not fit its event"))
                })?;
            }
            out.push(held);
            return Ok(());
        }
        if code == "b" {
            return Err(LineError(
                "a `b` line that follows no `o` or `i` event".into(),
            ));
        }
        let event = interpret(time, code, data)?;
        out.extend(self.held.take());
        if matches!(event.data, EventData::Output(_) | EventData::Input(_)) {
            self.held = Some(event);
        } else {
            out.push(event);
        }
        Ok(())
    }

    /// Appends the event still held, if any.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        out.extend(self.held.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_header_round_trip_keeps_unknown_fields() {
        let line = br#"{"version":3,"term":{"cols":100,"rows":30,"type":"xterm"},"timestamp":1795543858,"title":"t","env":{"SHELL":"/bin/bash","X":null},"future":{"a":1}}"#;
        let (h, v) = Header::parse(line).unwrap();
        assert_eq!(v, CastVersion::V3);
        assert_eq!(
            h.size(),
            TermSize {
                cols: 100,
                rows: 30
            }
        );
        assert_eq!(h.env.len(), 1);
        assert!(h.extra.contains_key("future"));
        assert!(!h.extra.contains_key("version"));
        let again = Header::parse(&h.to_line(CastVersion::V3)).unwrap().0;
        assert_eq!(again, h);
        assert!(
            h.to_line(CastVersion::V3)
                .starts_with(b"{\"version\":3,\"term\"")
        );
    }

    /// Fuzzing found a header number that changed when printed and read
    /// again (serde_json's default float parsing is not exact).
    #[test]
    fn header_numbers_read_back_as_printed() {
        let line = br#"{"version":3,"term":{"cols":1,"rows":1},"x":[118446744073709551616,1.1844674407370955e20,0.1]}"#;
        let (h, _) = Header::parse(line).unwrap();
        let again = Header::parse(&h.to_line(CastVersion::V3)).unwrap().0;
        assert_eq!(again, h);
    }

    #[test]
    fn v2_header_with_float_timestamp() {
        let (h, v) = Header::parse(
            br#"{"version": 2, "width": 80, "height": 24, "timestamp": 1795542742.5, "env": {"TERM": "xterm"}}"#,
        )
        .unwrap();
        assert_eq!(v, CastVersion::V2);
        assert_eq!(h.timestamp, Some(1795542742));
        assert_eq!(h.term.kind.as_deref(), Some("xterm"));
    }

    #[test]
    fn wrong_versions_are_named() {
        assert_eq!(
            Header::parse(br#"{"version":4}"#).unwrap_err(),
            HeaderError::Version("4".into())
        );
        assert!(matches!(Header::parse(b"[1,2]"), Err(HeaderError::Json(_))));
        assert!(matches!(
            Header::parse(b"garbage"),
            Err(HeaderError::Json(_))
        ));
    }

    #[test]
    fn event_line_shape_matches_asciinema() {
        let mut buf = Vec::new();
        write_event(
            &mut buf,
            1_500,
            &EventData::Output(b"\x1b[1mhi\r\n".to_vec()),
            false,
        );
        assert_eq!(buf, b"[0.001500, \"o\", \"\\u001b[1mhi\\r\\n\"]\n");
        let line = parse_line(&buf).unwrap();
        assert_eq!(line.time, 1_500);
        assert_eq!(line.data, "\x1b[1mhi\r\n");
    }

    #[test]
    fn invalid_bytes_get_a_companion_and_come_back() {
        let mut buf = Vec::new();
        let raw = b"a\xffb".to_vec();
        write_event(&mut buf, 10, &EventData::Output(raw.clone()), false);
        write_event(&mut buf, 20, &EventData::Marker("m".into()), false);
        let mut asm = EventAssembler::new();
        let mut out = Vec::new();
        for l in buf.split_inclusive(|&b| b == b'\n') {
            let l = parse_line(l).unwrap();
            asm.push(l.time, &l.code, l.data, &mut out).unwrap();
        }
        asm.finish(&mut out);
        assert_eq!(out[0].data, EventData::Output(raw));
        assert_eq!(out[1].data, EventData::Marker("m".into()));
    }

    proptest::proptest! {
        /// Whatever line the scanner reads, the JSON parser reads the same
        /// way; every line the writer writes is read by the scanner.
        #[test]
        fn the_scanner_reads_lines_as_the_json_parser_does(
            whole in 0u64..20_000_000_000,
            frac in "[0-9]{0,8}",
            code in "[a-z\\\\\"]{0,2}",
            data in proptest::prelude::any::<String>(),
            pad in "[ \t\x0c]{0,2}",
            cut in 0usize..64,
            flip in proptest::prelude::any::<u8>(),
        ) {
            let time = if frac.is_empty() { whole.to_string() } else { format!("{whole}.{frac}") };
            let json = serde_json::to_string(&data).unwrap();
            let code = serde_json::to_string(&code).unwrap();
            let line = format!("[{pad}{time},{pad}{code}, {json}{pad}]");
            let mut variants = vec![line.clone().into_bytes()];
            // Damaged copies: a byte changed, the line cut.
            let mut changed = line.clone().into_bytes();
            let at = cut % changed.len();
            changed[at] = flip;
            variants.push(changed);
            variants.push(line.as_bytes()[..cut.min(line.len())].to_vec());
            for v in &variants {
                if let Some(raw) = scanned_line(v) {
                    proptest::prop_assert_eq!(Ok(raw), parse_json_line(v));
                }
            }
            let mut written = Vec::new();
            write_line(&mut written, whole.min(999_999_999) * 1_000_000 + 123, "o", &data);
            let scanned = scanned_line(trim_newline(&written));
            proptest::prop_assert!(scanned.is_some());
            proptest::prop_assert_eq!(scanned.map(Ok), Some(parse_json_line(trim_newline(&written))));
        }
    }

    #[test]
    fn a_companion_after_no_output_is_an_error() {
        let mut asm = EventAssembler::new();
        let mut out = Vec::new();
        asm.push(0, "m", "x".into(), &mut out).unwrap();
        let e = asm.push(0, "b", "ff".into(), &mut out).unwrap_err();
        assert!(e.to_string().contains("follows no `o` or `i`"), "{e}");
        let mut asm = EventAssembler::new();
        assert!(asm.push(0, "b", "ff".into(), &mut out).is_err());
    }

    #[test]
    fn bad_lines_are_errors() {
        for bad in [
            &b"[1, \"o\"]"[..],
            b"[-1, \"o\", \"x\"]",
            b"[1, \"\", \"x\"]",
            b"{",
            b"",
        ] {
            assert!(
                parse_line(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_line(b"[999999999.999999, \"o\", \"x\"]").is_ok());
        assert!(parse_line(b"[999999999.9999999, \"o\", \"x\"]").is_err());
        assert!(parse_line(b"[1e9, \"o\", \"x\"]").is_err());
        assert!(parse_line(b"[999999999999.999999e0, \"o\", \"x\"]").is_err());
        assert!(interpret(0, "r", "80".into()).is_err());
        assert!(interpret(0, "x", "zero".into()).is_err());
    }
}
