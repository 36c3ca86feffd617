//! `termtrail verify --audit`: a host's audit log checked with
//! `termtrail_format::audit::verify_with`, as one line for a person or one
//! JSON object, and the exit status of its verdict.

use std::io::{BufReader, Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use termtrail_format::audit::{Anchor, AuditReport, AuditVerdict, verify_with, visible};

use crate::exit::Exit;

/// Verifies the audit log `file` (against `anchor`, if given): the exit
/// status and the line to print.
pub fn verify_audit(file: &Path, anchor: Option<&Anchor>, json: bool) -> (Exit, String) {
    let name = visible(&file.display().to_string()).into_owned();
    let text = file.to_string_lossy();
    let opened: anyhow::Result<Box<dyn Read>> = if text.starts_with("s3://") || file.is_dir() {
        pieces(&text).map(|p| Box::new(p) as Box<dyn Read>)
    } else {
        std::fs::File::open(file)
            .map(|f| Box::new(f) as Box<dyn Read>)
            .map_err(anyhow::Error::from)
    };
    let report = match opened {
        Ok(f) => verify_with(BufReader::new(f), anchor),
        Err(e) => {
            let message = format!("cannot read: {e}");
            let text = if json {
                json!({"file": name, "kind": "audit", "verdict": "error", "exit_code": 2, "error": message}).to_string()
            } else {
                format!("{name}: {message}")
            };
            return (Exit::ERROR, text);
        }
    };
    let exit = exit_of(&report.verdict);
    let text = if json {
        render_json(&name, &report, exit)
    } else {
        render_human(&name, &report)
    };
    (exit, text)
}

/// The shipped pieces of one log under `location` (a directory or an
/// `s3://` URL naming `…/audit/<log id>/`), read in key order as one log.
fn pieces(location: &str) -> anyhow::Result<Pieces> {
    let store = termtrail_store::Location::parse(location).and_then(|l| l.open())?;
    let keys: Vec<String> = store.list("", None)?.into_iter().map(|o| o.key).collect();
    if keys.is_empty() {
        anyhow::bail!("no audit pieces there");
    }
    if let Some(bad) = keys.iter().find(|k| !is_piece_name(k)) {
        anyhow::bail!(
            "{} is not an audit piece (NNNNNNNNNNNNNNNNNNNN.jsonl); name the directory of one log's pieces",
            visible(bad)
        );
    }
    let mut keys = keys;
    keys.sort();
    Ok(Pieces {
        store,
        keys: keys.into_iter(),
        current: Cursor::new(Vec::new()),
    })
}

fn is_piece_name(key: &str) -> bool {
    key.strip_suffix(".jsonl")
        .is_some_and(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Pieces read one after the other (one piece in memory at a time).
struct Pieces {
    store: Arc<dyn termtrail_store::Store>,
    keys: std::vec::IntoIter<String>,
    current: Cursor<Vec<u8>>,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            let Some(key) = self.keys.next() else {
                return Ok(0);
            };
            let mut bytes = Vec::new();
            self.store
                .read(&key, &mut bytes)
                .map_err(std::io::Error::other)?;
            self.current = Cursor::new(bytes);
        }
    }
}

fn exit_of(v: &AuditVerdict) -> Exit {
    match v {
        AuditVerdict::Intact => Exit::SUCCESS,
        AuditVerdict::Tampered { .. } => Exit::TAMPERED,
        AuditVerdict::Torn(_) => Exit::UNSEALED,
        AuditVerdict::NotAuditLog { .. } | AuditVerdict::Unreadable { .. } => Exit::ERROR,
    }
}

fn verdict_name(v: &AuditVerdict) -> &'static str {
    match v {
        AuditVerdict::Intact => "intact",
        AuditVerdict::Tampered { .. } => "tampered",
        AuditVerdict::Torn(_) => "torn",
        AuditVerdict::NotAuditLog { .. } | AuditVerdict::Unreadable { .. } => "error",
    }
}

/// "up to seq N (line …)" of the report's head.
fn intact_part(r: &AuditReport) -> String {
    match &r.head {
        Some(h) => format!(
            "seq 1-{} of log {}, {} to {}; head {}:{}",
            h.seq,
            h.log,
            r.first_time.as_deref().unwrap_or("?"),
            r.last_time.as_deref().unwrap_or("?"),
            h.seq,
            h.hash
        ),
        None => "no intact line".into(),
    }
}

fn render_human(name: &str, r: &AuditReport) -> String {
    let mut s = format!("{name}: ");
    match &r.verdict {
        AuditVerdict::Intact => {
            s.push_str(&format!(
                "audit log intact, {} line(s): {}",
                r.lines,
                intact_part(r)
            ));
            if r.recovered > 0 {
                s.push_str(&format!(
                    "; {} torn write(s) kept and recovered",
                    r.recovered
                ));
            }
            let last = r.last_event.as_deref().unwrap_or("");
            if last != "stop" {
                s.push_str(&format!(
                    "; the last event is {:?}, not stop: the host is running or was killed, or lines were cut from the end (only an anchor shows that: --audit-head)",
                    visible(last)
                ));
            }
        }
        AuditVerdict::Torn(t) => s.push_str(&format!(
            "audit log intact but TORN at the end (the host crashed mid-write): {} bytes of an unfinished line after {}",
            t.bytes,
            intact_part(r)
        )),
        AuditVerdict::Tampered { line, reason } => s.push_str(&format!(
            "audit log TAMPERED at line {line}: {}; intact from the start: {}",
            visible(&reason.to_string()),
            intact_part(r)
        )),
        AuditVerdict::NotAuditLog { reason } => {
            s.push_str(&format!("not an audit log: {}", visible(reason)))
        }
        AuditVerdict::Unreadable { error } => {
            s.push_str(&format!("cannot read: {}", visible(error)))
        }
    }
    s
}

fn render_json(name: &str, r: &AuditReport, exit: Exit) -> String {
    let mut v = json!({
        "file": name,
        "kind": "audit",
        "verdict": verdict_name(&r.verdict),
        "exit_code": exit.code(),
        "lines": r.lines,
        "recovered": r.recovered,
        "head": r.head,
        "first_time": r.first_time,
        "last_time": r.last_time,
        "last_event": r.last_event,
    });
    match &r.verdict {
        AuditVerdict::Tampered { line, reason } => {
            v["line"] = json!(line);
            v["reason"] = json!(reason.to_string());
        }
        AuditVerdict::Torn(t) => v["torn_bytes"] = json!(t.bytes),
        AuditVerdict::NotAuditLog { reason } => v["error"] = json!(reason),
        AuditVerdict::Unreadable { error } => v["error"] = json!(error),
        AuditVerdict::Intact => {}
    }
    v.to_string()
}
