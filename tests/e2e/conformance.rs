//! The protocol conformance suite (`tests/conformance/`, a client written
//! from docs/protocol.md alone) run against this build's `serve` and
//! `proxy`: every scenario must pass.

use std::process::Command;

use crate::util::*;

#[test]
fn the_protocol_conformance_suite_passes() {
    let Some(python) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let suite = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/run.py");
    let out = Command::new(python)
        .arg(suite)
        .args(["--bin", bin()])
        .output()
        .expect("the conformance suite runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        out.status.success() && failed.is_empty(),
        "conformance: {} failing\n{}\n--- stdout\n{text}\n--- stderr\n{}",
        failed.len(),
        failed.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    // The suite ran its scenarios (a run that found nothing to do passes
    // nothing).
    let passed = text.lines().filter(|l| l.starts_with("PASS")).count();
    assert!(passed > 100, "only {passed} checks passed:\n{text}");
}
