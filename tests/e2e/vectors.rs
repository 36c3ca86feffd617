//! The conformance vectors (format/tests/vectors, docs/format.md §7.5)
//! through the real binary: `termtrail verify --json` gives each the exit
//! code, verdict, first bad chunk and reason class its JSON states.

use std::path::Path;
use std::process::Command;

use crate::util::bin;

#[test]
fn verify_json_gives_every_vector_its_verdict() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("format/tests/vectors");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let want: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let file = dir.join(want["file"].as_str().unwrap());
        let out = Command::new(bin())
            .arg("verify")
            .arg("--json")
            .arg(&file)
            .output()
            .unwrap();
        let name = file.display();
        assert_eq!(
            out.status.code(),
            want["exit_code"].as_i64().map(|c| c as i32),
            "{name}: exit code"
        );
        let got: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        for k in ["exit_code", "verdict", "first_bad_chunk", "reason"] {
            assert_eq!(got[k], want[k], "{name}: {k}");
        }
        n += 1;
    }
    assert!(n >= 100, "only {n} vectors");
}

/// Issue 15's verifier defects, as a person sees them: a header without
/// `chunk_ms` is intact, an unsupported format version is exit 2, and a
/// segment that does not decode names no chunk (chunk 2 before it hashes
/// correctly).
#[test]
fn issue_15_defects_read_right() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("format/tests/vectors");
    let run = |name: &str| {
        let out = Command::new(bin())
            .arg("verify")
            .arg(dir.join(format!("{name}.cast.zst")))
            .output()
            .unwrap();
        // A verdict is on stdout, an error (exit 2) on stderr.
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = run("valid-header-no-chunk-ms");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(": intact, sealed"), "{text}");
    let (code, text) = run("error-format-2");
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("unsupported recording version: termtrail format 2"),
        "{text}"
    );
    let (code, text) = run("segment-corrupt");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("segment 1 does not decompress"), "{text}");
    assert!(!text.contains("[chunk"), "no chunk is named: {text}");
}
