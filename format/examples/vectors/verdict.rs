//! What the library reader says of a file, in the terms of a conformance
//! vector (exit code, verdict, first bad chunk, reason class), as
//! `termtrail verify --json` reports them.

use std::path::Path;

use termtrail_format::reader::{ReadOptions, Status, read_path};

use crate::cases::Expect;

/// The reader's verdict on `path`, with event parsing on or off.
pub fn of_file(path: &Path, events: bool) -> Expect {
    let opts = ReadOptions {
        events,
        ..ReadOptions::default()
    };
    match read_path(path, &opts, &mut ()) {
        Ok(r) => {
            let (exit_code, verdict) = match r.status {
                Status::Intact => (0, "intact"),
                Status::Tampered => (1, "tampered"),
                Status::Unsealed => (3, "unsealed"),
            };
            Expect {
                exit_code,
                verdict,
                first_bad_chunk: r.first_bad_chunk,
                reason: r.reason.map(|r| r.token()),
            }
        }
        Err(e) => Expect {
            exit_code: 2,
            verdict: "error",
            first_bad_chunk: None,
            reason: Some(e.reason().token()),
        },
    }
}

/// The JSON file written beside a vector.
pub fn json(file: &str, check: &str, description: &str, e: &Expect) -> String {
    // Members in name order whatever serde_json's features (a workspace
    // build unifies in `preserve_order`, which would keep insertion order).
    let v: std::collections::BTreeMap<&str, serde_json::Value> = [
        ("file", file.into()),
        ("check", check.into()),
        ("description", description.into()),
        ("exit_code", e.exit_code.into()),
        ("verdict", e.verdict.into()),
        ("first_bad_chunk", e.first_bad_chunk.into()),
        ("reason", e.reason.into()),
    ]
    .into_iter()
    .collect();
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}
