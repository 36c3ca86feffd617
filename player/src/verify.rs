//! `termtrail verify`: the verdict on one recording, for people and machines.
//!
//! Exit codes (documented in `--help` and `docs/format.md`): 0 intact and
//! sealed (signature valid when signed, and by a pinned key when keys are
//! given); 1 tampered, or a failed pin ([`crate::pin`]); 2 not a readable
//! recording; 3 intact but unsealed.

use std::path::Path;

use serde_json::{Value, json};
use termtrail_format::event::format_clock;
use termtrail_format::reader::{ReadError, ReadOptions, Report, Signature, Status, read_path};
use termtrail_format::recover::BeingRecorded;
use termtrail_format::sign::Keyring;
use termtrail_format::text::{json_line, visible};

use crate::pin::{self, KeyFinding};

/// The verdict on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Intact and sealed.
    Intact,
    /// Intact but unsealed.
    Unsealed,
    /// Not readable as a recording.
    Error,
    /// Tampered, or not signed by a pinned key ([`crate::pin`]).
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
/// text, or a JSON object with `json`; for [`Verdict::Error`] the human
/// line is `NAME: WHY`, an error the caller prints on stderr). `keys`: the pinned keys (None or
/// empty: any valid signature is reported, none is required).
pub fn verify_path(path: &Path, keys: Option<&Keyring>, json: bool) -> (Verdict, String) {
    verify_named(path, &path.display().to_string(), keys, json)
}

/// [`verify_path`], naming the file `name` in the output (an `s3://` URL
/// for an object fetched into a temporary file).
pub fn verify_named(
    path: &Path,
    name: &str,
    keys: Option<&Keyring>,
    json: bool,
) -> (Verdict, String) {
    let opts = ReadOptions {
        events: false,
        ..ReadOptions::default()
    };
    match read_path(path, &opts, &mut ()) {
        Ok(report) => {
            let finding = pin::check(&report, keys);
            let verdict = finding.apply(base_verdict(&report));
            // Unsealed because a running recorder is still writing it.
            let live = (report.status == Status::Unsealed)
                .then(|| termtrail_format::recover::live::writer_of(path))
                .flatten();
            let text = if json {
                let mut line = render_json(name, &report, verdict, &finding, keys);
                if let Some(live) = &live {
                    line = with_recorder(&line, live.pid);
                }
                line
            } else {
                let human = render_human(name, &report, &finding, keys, live.as_ref());
                visible(&human).into_owned()
            };
            (verdict, text)
        }
        Err(e) => {
            let message = match &e {
                ReadError::Io(io) => format!("cannot read: {io}"),
                // Not a recording by its first bytes, or a plain asciicast
                // whose header does not read: the wording every reading
                // subcommand uses.
                _ if let Some(why) = crate::select::not_a_recording_why(path) => why,
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
                visible(&format!("{name}: {message}")).into_owned()
            };
            (Verdict::Error, text)
        }
    }
}

/// `line` (one JSON object) with `"recording": true` and the recorder's
/// pid added: the file is unsealed because it is still being written.
fn with_recorder(line: &str, pid: Option<u32>) -> String {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(mut v) => {
            if let Some(obj) = v.as_object_mut() {
                obj.insert("recording".into(), json!(true));
                obj.insert("recorder_pid".into(), json!(pid));
            }
            json_line(&v)
        }
        Err(_) => line.to_string(),
    }
}

/// The verdict of the chain and seal alone.
fn base_verdict(report: &Report) -> Verdict {
    match report.status {
        Status::Intact => Verdict::Intact,
        Status::Unsealed => Verdict::Unsealed,
        Status::Tampered => Verdict::Tampered,
    }
}

/// One line for a verified file; `live`: it is unsealed because a
/// recorder is still writing it.
fn render_human(
    name: &str,
    r: &Report,
    key: &KeyFinding,
    keys: Option<&Keyring>,
    live: Option<&BeingRecorded>,
) -> String {
    let mut s = format!("{name}: ");
    match r.status {
        Status::Intact => {
            s.push_str("intact, sealed");
            // `sealed (exited with code 0)`, but `sealed as interrupted
            // (DETAIL)`: not parentheses inside parentheses.
            match &r.end {
                Some(end @ termtrail_format::seal::EndReason::Interrupted { .. }) => {
                    s.push_str(&format!(" as {end}"))
                }
                Some(end) => s.push_str(&format!(" ({end})")),
                None => {}
            }
            s.push_str(&format!(
                ", {}, {}",
                plural(r.chunks, "chunk"),
                format_clock(r.last_verified)
            ));
        }
        Status::Unsealed => {
            let why = match live {
                Some(BeingRecorded { pid: Some(pid), .. }) => {
                    format!("still being recorded by pid {pid}")
                }
                Some(_) => "still being recorded".to_string(),
                None => "truncated or interrupted".to_string(),
            };
            s.push_str(&format!(
                "intact but UNSEALED ({why}): verified up to {} ({})",
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
    if let Signature::Invalid { key_id } = &r.signature {
        s.push_str(&format!(", INVALID signature for key {key_id}"));
    }
    s.push_str(&key.describe(keys));
    s
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn render_json(
    name: &str,
    r: &Report,
    verdict: Verdict,
    key: &KeyFinding,
    keys: Option<&Keyring>,
) -> String {
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
        obj.insert("key_id".into(), json!(key.key_id));
        obj.insert("pinned".into(), json!(key.pinned));
        obj.insert("key_check".into(), json!(key.check.token()));
        if let Some(note) = key.rejection(keys) {
            obj.insert("key_rejected".into(), json!(note));
        }
        // A failed pin decides the verdict, so it is the reason class.
        if let Some(class) = key.check.reason_class() {
            obj.insert("reason".into(), json!(class));
        }
        if let Some(h) = &r.header {
            obj.insert("title".into(), json!(h.title));
            obj.insert("timestamp".into(), json!(h.timestamp));
        }
        // Times in JSON are seconds, as everywhere (docs/cli.md).
        to_seconds(obj, "last_verified");
        if let Some(Value::Array(runs)) = obj.get_mut("detached") {
            for run in runs.iter_mut().filter_map(Value::as_object_mut) {
                to_seconds(run, "t0");
                to_seconds(run, "t1");
            }
        }
    }
    json_line(&v)
}

/// `obj[key]`, a time in microseconds, as seconds (a float).
fn to_seconds(obj: &mut serde_json::Map<String, Value>, key: &str) {
    if let Some(us) = obj.get(key).and_then(Value::as_u64) {
        obj.insert(key.into(), json!(us as f64 / 1e6));
    }
}
