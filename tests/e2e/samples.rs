//! The committed samples: each verifies with the verdict samples/MANIFEST
//! gives it, and every intact one decompresses (`zstd -dc`) to a valid
//! asciicast v3 file.

use crate::util::*;
use termtrail_format::plain::CastReader;

/// (file, expected verify exit code, description)
pub fn manifest() -> Vec<(String, i32, String)> {
    let text = std::fs::read_to_string(samples().join("MANIFEST")).expect("samples/MANIFEST");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let file = parts.next().unwrap().to_string();
            let code = parts.next().unwrap().parse().expect("exit code");
            (file, code, parts.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

#[test]
fn every_sample_gets_its_documented_verdict() {
    let d = Dir::new();
    let m = manifest();
    assert!(m.len() >= 8, "samples: {m:?}");
    for (file, code, what) in &m {
        let path = samples().join(file);
        let r = d.run(&["verify", &path.to_string_lossy()]);
        assert_eq!(r.code, *code, "{file} ({what}): {r:?}");
    }
}

#[test]
fn intact_samples_decompress_to_valid_asciicast_v3() {
    let intact: Vec<_> = manifest().into_iter().filter(|s| s.1 == 0).collect();
    assert!(intact.len() >= 3, "intact samples: {intact:?}");
    for (file, _, _) in intact {
        let text = zstd_dc(&samples().join(&file));
        let mut reader = CastReader::new(text.as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(reader.version(), termtrail_format::cast::CastVersion::V3);
        let mut n = 0;
        while let Some(_e) = reader
            .next_event()
            .unwrap_or_else(|e| panic!("{file}: {e}"))
        {
            n += 1;
        }
        assert!(n > 0, "{file} has events");
        for line in text.lines().skip(1) {
            assert!(
                line.starts_with('[') || line.starts_with("#tt "),
                "{file}: unexpected line {line}"
            );
        }
    }
}

#[test]
fn signed_sample_verifies_with_its_public_key() {
    let d = Dir::new();
    let key = samples().join("sample-key.pub");
    let file = samples().join("signed.cast.zst");
    let r = d.run(&[
        "verify",
        "--key",
        &key.to_string_lossy(),
        &file.to_string_lossy(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // The same key does not vouch for an unsigned sample.
    let other = samples().join("shell-colors.cast.zst");
    let r = d.run(&[
        "verify",
        "--key",
        &key.to_string_lossy(),
        &other.to_string_lossy(),
    ]);
    assert_eq!(r.code, 1, "{r:?}");
}
