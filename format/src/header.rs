//! The header line of a `.cast.zst` recording as a verifier reads it: the
//! members it requires (docs/format.md §2.1, checks V8–V11) and a lenient
//! read of the informative rest, which never fails a recording.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::cast::{Header, trim_newline};

/// Why a header line is not that of a readable recording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderFault {
    /// Not a recording's header at all: not a JSON object, no integer
    /// `version`, or no `termtrail` object.
    #[error("{0}")]
    NotRecording(String),
    /// asciicast `version` other than 3, or `termtrail.format` other than 1.
    #[error("{0}")]
    Unsupported(String),
    /// A required member of the `termtrail` block is missing or wrong.
    #[error("{0}")]
    Invalid(String),
}

/// Reads a recording's header line (with or without its `\n`): checks the
/// required members, then reads every informative member that has the
/// expected type and drops the ones that do not.
pub fn parse_recording_header(line: &[u8]) -> Result<Header, HeaderFault> {
    let not = |m: &str| HeaderFault::NotRecording(m.to_string());
    let mut value: Value = serde_json::from_slice(trim_newline(line))
        .map_err(|e| not(&format!("the header line is not JSON: {e}")))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| not("the header line is not a JSON object"))?;
    if !matches!(obj.get("termtrail"), Some(Value::Object(_))) {
        return Err(not(
            "a zstd-compressed asciicast file without termtrail's hash chain (use `termtrail import`)",
        ));
    }
    match obj.get("version") {
        Some(v) if is_integer(v) => {
            if v.as_u64() != Some(3) {
                return Err(HeaderFault::Unsupported(format!(
                    "asciicast version {v} (a recording is asciicast v3)"
                )));
            }
        }
        _ => return Err(not("the header has no integer \"version\"")),
    }
    let Some(Value::Object(meta)) = obj.get_mut("termtrail") else {
        return Err(not("no termtrail block"));
    };
    check_meta(meta)?;
    sanitize_meta(meta);
    sanitize_header(obj);
    let (header, _) = Header::parse(&serde_json::to_vec(&value).unwrap_or_default())
        .map_err(|e| HeaderFault::Invalid(e.to_string()))?;
    Ok(header)
}

/// An integer JSON number (no fraction, no exponent).
fn is_integer(v: &Value) -> bool {
    v.is_u64() || v.is_i64()
}

/// Lowercase hex digits, `len` of them.
pub(crate) fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The required members: `format` (1), `id` (32 lowercase hex), and `key`
/// when present.
fn check_meta(meta: &Map<String, Value>) -> Result<(), HeaderFault> {
    let invalid = |m: String| Err(HeaderFault::Invalid(m));
    match meta.get("format") {
        Some(v) if is_integer(v) => {
            if v.as_u64() != Some(1) {
                return Err(HeaderFault::Unsupported(format!(
                    "termtrail format {v} (this reader knows format 1)"
                )));
            }
        }
        Some(v) => return invalid(format!("termtrail.format is not an integer: {v}")),
        None => return invalid("termtrail.format is missing".into()),
    }
    match meta.get("id") {
        Some(Value::String(id)) if is_lower_hex(id, 32) => {}
        Some(v) => return invalid(format!("termtrail.id is not 32 lowercase hex digits: {v}")),
        None => return invalid("termtrail.id is missing".into()),
    }
    match meta.get("key") {
        None => {}
        Some(Value::Object(k)) => {
            let s = |name: &str| k.get(name).and_then(Value::as_str);
            if s("alg") != Some("ed25519") {
                return invalid("termtrail.key.alg is not \"ed25519\"".into());
            }
            if !s("id").is_some_and(|id| is_lower_hex(id, 16)) {
                return invalid("termtrail.key.id is not 16 lowercase hex digits".into());
            }
            if !s("public").is_some_and(|p| is_lower_hex(p, 64)) {
                return invalid("termtrail.key.public is not 64 lowercase hex digits".into());
            }
        }
        Some(v) => return invalid(format!("termtrail.key is not an object: {v}")),
    }
    Ok(())
}

/// Removes `obj[key]` when it does not read as a `T`.
fn keep_if<T: DeserializeOwned>(obj: &mut Map<String, Value>, key: &str) {
    if let Some(v) = obj.get(key)
        && serde_json::from_value::<T>(v.clone()).is_err()
    {
        obj.remove(key);
    }
}

/// Informative members of the `termtrail` block with the wrong type are
/// dropped (a missing `chunk_ms` reads as 0, `input` as false).
fn sanitize_meta(meta: &mut Map<String, Value>) {
    keep_if::<u64>(meta, "chunk_ms");
    for k in ["source", "session", "shell", "principal", "reason", "host"] {
        keep_if::<Option<String>>(meta, k);
    }
    keep_if::<bool>(meta, "input");
    meta.entry("chunk_ms").or_insert(Value::from(0u64));
}

/// Informative asciicast members with the wrong type are dropped; a
/// missing or unreadable terminal size reads as 80×24.
fn sanitize_header(obj: &mut Map<String, Value>) {
    keep_if::<Option<f64>>(obj, "timestamp");
    keep_if::<Option<f64>>(obj, "idle_time_limit");
    keep_if::<Option<String>>(obj, "command");
    keep_if::<Option<String>>(obj, "title");
    keep_if::<std::collections::BTreeMap<String, Option<String>>>(obj, "env");
    keep_if::<Vec<String>>(obj, "tags");
    let term = match obj.get_mut("term") {
        Some(Value::Object(t)) => t,
        _ => {
            obj.insert("term".into(), serde_json::json!({}));
            match obj.get_mut("term") {
                Some(Value::Object(t)) => t,
                _ => return,
            }
        }
    };
    keep_if::<u16>(term, "cols");
    keep_if::<u16>(term, "rows");
    keep_if::<Option<String>>(term, "type");
    keep_if::<Option<String>>(term, "version");
    term.entry("cols").or_insert(Value::from(80));
    term.entry("rows").or_insert(Value::from(24));
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "00112233445566778899aabbccddeeff";

    fn parse(json: &str) -> Result<Header, HeaderFault> {
        parse_recording_header(json.as_bytes())
    }

    #[test]
    fn informative_members_never_fail() {
        let h = parse(&format!(
            r#"{{"version":3,"term":{{"cols":"wide"}},"title":5,"env":[1],"termtrail":{{"format":1,"id":"{ID}","chunk_ms":"x","input":"yes","host":7,"future":{{}}}}}}"#
        ))
        .unwrap();
        assert_eq!((h.term.cols, h.term.rows), (80, 24));
        assert_eq!(h.title, None);
        let m = h.termtrail.unwrap();
        assert_eq!((m.chunk_ms, m.input, m.host), (0, false, None));
        assert!(m.extra.contains_key("future"));
        // No chunk_ms at all, no term.
        let h = parse(&format!(
            r#"{{"version":3,"termtrail":{{"format":1,"id":"{ID}"}}}}"#
        ))
        .unwrap();
        assert_eq!(h.termtrail.unwrap().chunk_ms, 0);
    }

    #[test]
    fn required_members_are_classed() {
        let cases = [
            ("[1]".to_string(), "not"),
            (r#"{"term":{}}"#.into(), "not"),
            (r#"{"version":"3","termtrail":{}}"#.into(), "not"),
            (r#"{"version":3}"#.into(), "not"),
            (r#"{"version":2,"termtrail":{}}"#.into(), "unsupported"),
            (
                format!(r#"{{"version":3,"termtrail":{{"format":2,"id":"{ID}"}}}}"#),
                "unsupported",
            ),
            (
                format!(r#"{{"version":3,"termtrail":{{"format":"1","id":"{ID}"}}}}"#),
                "invalid",
            ),
            (
                r#"{"version":3,"termtrail":{"format":1}}"#.into(),
                "invalid",
            ),
            (
                format!(
                    r#"{{"version":3,"termtrail":{{"format":1,"id":"{}"}}}}"#,
                    ID.to_uppercase()
                ),
                "invalid",
            ),
            (
                format!(
                    r#"{{"version":3,"termtrail":{{"format":1,"id":"{ID}","key":{{"alg":"rsa"}}}}}}"#
                ),
                "invalid",
            ),
        ];
        for (json, want) in cases {
            let got = match parse(&json) {
                Err(HeaderFault::NotRecording(_)) => "not",
                Err(HeaderFault::Unsupported(_)) => "unsupported",
                Err(HeaderFault::Invalid(_)) => "invalid",
                Ok(_) => "ok",
            };
            assert_eq!(got, want, "{json}");
        }
    }
}
