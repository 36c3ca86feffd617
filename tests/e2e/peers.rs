//! The real asciinema CLIs accept our exports and our decompressed files:
//! asciinema 2.4 (Python) reads v2, asciinema 3.x (Rust) reads v3.
//!
//! The test script installs both and points TERMTRAIL_ASCIINEMA2 /
//! TERMTRAIL_ASCIINEMA3 at them, with TERMTRAIL_REQUIRE_PEERS=1 so that a
//! missing peer fails the run instead of skipping.

use std::process::Command;

use crate::util::*;

const SCRIPT: &str =
    r#"printf '\033[1;31mred\033[0m and \303\251\n'; printf 'bad \377 byte\n'; tput cols"#;

fn output_of(c: &mut Command) -> String {
    let out = c.output().expect("run peer");
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn asciinema_2_reads_our_v2_export() {
    let Some(a2) = peer("TERMTRAIL_ASCIINEMA2") else {
        return;
    };
    let d = Dir::new();
    d.rec("p.cast.zst", SCRIPT);
    assert_eq!(
        d.run(&[
            "export",
            "p.cast.zst",
            "--format",
            "cast-v2",
            "-o",
            "p2.cast"
        ])
        .code,
        0
    );
    let out = output_of(
        Command::new(&a2)
            .arg("cat")
            .arg(d.join("p2.cast"))
            .env("HOME", d.path()),
    );
    assert!(out.contains("\x1b[1;31mred\x1b[0m and é"), "{out:?}");
    assert!(out.contains("bad \u{FFFD} byte"), "{out:?}");
}

#[test]
fn asciinema_3_reads_our_v3_export_and_decompressed_recording() {
    let Some(a3) = peer("TERMTRAIL_ASCIINEMA3") else {
        return;
    };
    let d = Dir::new();
    d.rec("p.cast.zst", SCRIPT);
    assert_eq!(d.run(&["export", "p.cast.zst", "-o", "p3.cast"]).code, 0);
    // Invariant 1: `zstd -dc` of the container is itself a v3 file that
    // asciinema reads unchanged (comment records, `b` events and all).
    std::fs::write(d.join("raw.cast"), zstd_dc(&d.join("p.cast.zst"))).unwrap();
    for f in ["p3.cast", "raw.cast"] {
        let out = output_of(
            Command::new(&a3)
                .args(["convert", "-f", "raw"])
                .arg(d.join(f))
                .arg("-")
                .env("ASCIINEMA_CONFIG_HOME", d.join("cfg")),
        );
        assert!(out.contains("\x1b[1;31mred\x1b[0m and é"), "{f}: {out:?}");
        assert!(out.contains("80"), "{f}: {out:?}");
    }
    // And asciinema 3 converts our v3 to v2, which we import again.
    output_of(
        Command::new(&a3)
            .args(["convert", "-f", "asciicast-v2"])
            .arg(d.join("p3.cast"))
            .arg(d.join("back.cast"))
            .env("ASCIINEMA_CONFIG_HOME", d.join("cfg")),
    );
    assert_eq!(d.run(&["import", "back.cast"]).code, 0);
    let t = d.run(&["export", "back.cast.zst", "--format", "txt"]);
    assert!(t.stdout.contains("red and é"), "{}", t.stdout);
}
