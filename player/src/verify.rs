//! `termtrail verify`: the verdict on one recording, for people and machines.
//!
//! Exit codes (documented in `--help` and `docs/format.md`): 0 intact and
//! sealed (signature valid when signed, and made with `--key` when given);
//! 1 tampered; 2 not a readable recording; 3 intact but unsealed.

use std::path::Path;

use serde_json::json;
use termtrail_format::event::format_clock;
use termtrail_format::reader::{ReadError, ReadOptions, Report, Signature, Status, read_path};
use termtrail_format::sign::PublicKey;
use termtrail_format::text::{json_line, visible};

/// The verdict on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Intact and sealed.
    Intact,
    /// Intact but unsealed.
    Unsealed,
    /// Not readable as a recording.
    Error,
    /// Tampered (or not signed by the required key).
    Tampered,
}

impl Verdict {
    /// The process exit code for this verdict.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Intact => 0,
            Verdict::Tampered => 1,
            Verdict::Error => 2,
            Verdict::Unsealed => 3,
        }
    }

    /// The exit code for several files: tampered beats error beats
    /// unsealed beats intact.
    pub fn worst(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        verdicts.into_iter().max().unwrap_or(Verdict::Intact)
    }
}

/// Verifies one file; returns the verdict and one line of output (human
/// text, or a JSON object with `json`).
pub fn verify_path(path: &Path, key: Option<&PublicKey>, json: bool) -> (Verdict, String) {
    verify_named(path, &path.display().to_string(), key, json)
}

/// [`verify_path`], naming the file `name` in the output (an `s3://` URL
/// for an object fetched into a temporary file).
pub fn verify_named(
    path: &Path,
    name: &str,
    key: Option<&PublicKey>,
    json: bool,
) -> (Verdict, String) {
    let opts = ReadOptions {
        events: false,
        ..ReadOptions::default()
    };
    match read_path(path, &opts, &mut ()) {
        Ok(report) => {
            let (verdict, key_note) = judge(&report, key);
            let text = if json {
                render_json(name, &report, verdict, key_note.as_deref())
            } else {
                visible(&render_human(name, &report, key_note.as_deref())).into_owned()
            };
            (verdict, text)
        }
        Err(e) => {
            let message = match &e {
                ReadError::Io(io) => format!("cannot read: {io}"),
                other => other.to_string(),
            };
            let text = if json {
                json_line(&json!({
                    "file": name,
                    "verdict": "error",
                    "exit_code": 2,
                    "reason": e.reason(),
                    "first_bad_chunk": null,
                    "error": message,
                }))
            } else {
                visible(&format!("{name}: error: {message}")).into_owned()
            };
            (Verdict::Error, text)
        }
    }
}

fn judge(report: &Report, key: Option<&PublicKey>) -> (Verdict, Option<String>) {
    let base = match report.status {
        Status::Intact => Verdict::Intact,
        Status::Unsealed => Verdict::Unsealed,
        Status::Tampered => Verdict::Tampered,
    };
    let Some(key) = key else { return (base, None) };
    if base == Verdict::Tampered {
        return (base, None);
    }
    match &report.signature {
        Signature::Valid { key_id } if *key_id == key.id() => (base, None),
        Signature::Valid { key_id } => (
            Verdict::Tampered,
            Some(format!(
                "signed by key {key_id}, not by the required key {}",
                key.id()
            )),
        ),
        _ if base == Verdict::Unsealed => (
            Verdict::Tampered,
            Some(format!(
                "unsealed, so not signed by the required key {}",
                key.id()
            )),
        ),
        _ => (
            Verdict::Tampered,
            Some(format!("not signed (required key {})", key.id())),
        ),
    }
}

fn render_human(name: &str, r: &Report, key_note: Option<&str>) -> String {
    let mut s = format!("{name}: ");
    match r.status {
        Status::Intact => {
            s.push_str("intact, sealed");
            if let Some(end) = &r.end {
                s.push_str(&format!(" ({end})"));
            }
            s.push_str(&format!(
                ", {}, {}",
                plural(r.chunks, "chunk"),
                format_clock(r.last_verified)
            ));
        }
        Status::Unsealed => {
            s.push_str(&format!(
                "intact but UNSEALED (truncated or interrupted): verified up to {} ({})",
                format_clock(r.last_verified),
                plural(r.chunks, "chunk")
            ));
            if r.lost_tail_bytes > 0 {
                s.push_str(&format!(
                    "; {} bytes of an unfinished chunk at the end",
                    r.lost_tail_bytes
                ));
            }
        }
        Status::Tampered => {
            s.push_str("TAMPERED");
            if let Some(p) = r.problems.first() {
                s.push_str(&format!(": {}", p.message));
                let mut at = Vec::new();
                if let Some(c) = p.chunk {
                    at.push(format!("chunk {c}"));
                }
                if let Some(seg) = p.segment {
                    at.push(format!("segment {seg}"));
                }
                at.push(format!("file byte {}", p.file_offset));
                if let Some(o) = p.data_offset {
                    at.push(format!("byte {o} of the segment's text"));
                }
                s.push_str(&format!(" [{}]", at.join(", ")));
            }
            s.push_str(&format!(
                "; verified from the start up to {} ({})",
                format_clock(r.last_verified),
                plural(r.chunks, "chunk")
            ));
            for run in r.detached.iter().take(5) {
                s.push_str(&format!(
                    "; chunks {}-{} ({}-{}) intact among themselves but cut off from the start",
                    run.first_chunk,
                    run.last_chunk,
                    format_clock(run.t0),
                    format_clock(run.t1)
                ));
            }
            if r.detached.len() > 5 {
                s.push_str(&format!("; {} more detached runs", r.detached.len() - 5));
            }
        }
    }
    match &r.signature {
        Signature::Valid { key_id } => s.push_str(&format!(", signed by key {key_id}")),
        Signature::Invalid { key_id } => {
            s.push_str(&format!(", INVALID signature for key {key_id}"))
        }
        Signature::Unsigned => {}
    }
    if let Some(note) = key_note {
        s.push_str(&format!("; REJECTED: {note}"));
    }
    s
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn render_json(name: &str, r: &Report, verdict: Verdict, key_note: Option<&str>) -> String {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("file".into(), json!(name));
        obj.insert(
            "verdict".into(),
            json!(match verdict {
                Verdict::Intact => "intact",
                Verdict::Unsealed => "unsealed",
                Verdict::Tampered => "tampered",
                Verdict::Error => "error",
            }),
        );
        obj.insert("exit_code".into(), json!(verdict.exit_code()));
        if let Some(note) = key_note {
            obj.insert("key_rejected".into(), json!(note));
        }
        if let Some(h) = &r.header {
            obj.insert("title".into(), json!(h.title));
            obj.insert("timestamp".into(), json!(h.timestamp));
        }
    }
    json_line(&v)
}
