//! Hostile recordings against the reviewer (issue 14 items 6 and 7): a
//! corpus made here — terminal controls (C0, 8-bit C1, OSC, DCS) and bidi
//! overrides in output, input, titles, env, ids and markers, a 65535×65535
//! terminal, one 64 MiB line — run through every reading subcommand under
//! a 1 GiB address-space limit. Each must exit on its own (no abort), and
//! no raw control or bidi character from a recording may reach human
//! output; JSON keeps the exact text, escaped.

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use crate::util::*;

/// The address-space limit every reader runs under (KiB, for `ulimit -v`).
const LIMIT_KIB: u64 = 1 << 20;

/// A hostile string: a title-setting OSC, an OSC 52 clipboard write in
/// 8-bit C1 form, a C1 CSI erasing the screen, a C1 DCS, and every bidi
/// override, embedding and isolate.
const EVIL: &str = "\x1b]0;pwned\x07 \u{9d}52;c;aGVsbG8=\u{9c} \u{9b}2J \u{90}qDCS\u{9c} \
                    \u{202e}desrever\u{202c} \u{2066}iso\u{2069} \u{2067}\u{2068}\u{202a}\u{202b}\u{202d}\u{200e}\u{200f}\u{61c} \x08\x7f";

/// Characters that must never reach a human reader's terminal raw: C0
/// controls other than TAB and LF, DEL, C1, and the bidi formatting
/// characters.
fn unsafe_char(c: char) -> bool {
    matches!(c,
        '\0'..='\x08' | '\x0b'..='\x1f' | '\x7f' | '\u{80}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn assert_clean(what: &str, text: &str) {
    if let Some((i, c)) = text.char_indices().find(|&(_, c)| unsafe_char(c)) {
        let from = text[..i].char_indices().rev().nth(40).map_or(0, |(j, _)| j);
        panic!(
            "{what}: raw {:?} at byte {i}, after {:?}",
            c,
            &text[from..i]
        );
    }
}

/// Like [`assert_clean`] for output that draws with its own SGR/CSI
/// sequences (`play`, `snapshot --color`): no C1, no bidi, and ESC only
/// as CSI (never an OSC, DCS or other string a recording could carry).
fn assert_only_csi(what: &str, text: &str) {
    for (i, c) in text.char_indices() {
        let ok = match c {
            '\x1b' => text[i + 1..].starts_with('['),
            '\t' | '\n' | '\r' => true,
            c => !unsafe_char(c),
        };
        assert!(ok, "{what}: raw {c:?} at byte {i}");
    }
}

fn write_lines(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The corpus: `store/hostile.cast.zst` (controls everywhere, a 65535×65535
/// resize, then a hit), `store/huge.cast.zst` (recorded at 65535×65535),
/// and `hostile.cast` (the same as a plain asciicast file).
fn corpus(d: &Dir) {
    let meta = json!({
        "format": 1, "id": "0123456789abcdef0123456789abcdef", "chunk_ms": 1000,
        "session": format!("sess{EVIL}"), "shell": format!("sh{EVIL}"),
        "principal": format!("alice{EVIL}"), "host": format!("host{EVIL}"),
    });
    let hostile = [
        json!({"version": 3, "term": {"cols": 80, "rows": 24}, "timestamp": 1_790_000_000,
               "title": format!("Title {EVIL}"), "command": format!("bash {EVIL}"),
               "env": {"SHELL": format!("/bin/sh{EVIL}")}, "termtrail": meta}),
        json!([0.1, "o", format!("needle one {EVIL}\r\n")]),
        json!([0.1, "i", format!("needle typed {EVIL}\r")]),
        json!([0.1, "m", format!("marker {EVIL}")]),
        json!([
            0.1,
            "o",
            "\x1b]0;pwned-title\x07\x1bP1$r0m\x1b\\\x1b]52;c;aGk=\x07plain\r\n"
        ]),
        json!([0.1, "r", "65535x65535"]),
        json!([
            0.1,
            "o",
            format!("needle after resize {EVIL}\x1b[65535;65535Hcorner\r\n")
        ]),
        json!([0.1, "x", "0"]),
    ];
    write_lines(&d.join("hostile.cast"), &hostile);
    let huge = [
        json!({"version": 2, "width": 65535, "height": 65535, "timestamp": 1_790_000_100,
               "title": "huge"}),
        json!([0.5, "o", "needle on a huge screen\r\n\x1b[60000;1Hfar away"]),
        json!([1.0, "r", "65535x65535"]),
        json!([1.5, "o", "\x1b[2Jneedle again\r\n"]),
    ];
    write_lines(&d.join("huge.cast"), &huge);
    std::fs::create_dir_all(d.join("store")).unwrap();
    for name in ["hostile", "huge"] {
        let r = d.run(&[
            "import",
            &format!("{name}.cast"),
            "-o",
            &format!("store/{name}.cast.zst"),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        // And into the default local store, under its key layout (the
        // hostile session and shell ids become part of the path).
        let r = d.run(&[
            "import",
            &format!("{name}.cast"),
            "--store",
            "data/termtrail/recordings",
        ]);
        assert_eq!(r.code, 0, "{r:?}");
    }
}

/// Runs `termtrail ARGS` under the address-space limit, stdin empty.
fn limited(d: &Dir, args: &[&str]) -> Run {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let script = format!("ulimit -v {LIMIT_KIB} && exec \"$TT\" {}", quoted.join(" "));
    run(&mut d.shell(&script), b"")
}

/// Asserts the run ended on its own with one of termtrail's statuses
/// (not a signal: an allocation failure aborts, a panic exits 101).
fn exited(what: &str, r: &Run) {
    assert!(
        (0..=3).contains(&r.code),
        "{what}: exit {} (killed or aborted?)\n{}",
        r.code,
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
}

#[test]
fn hostile_recordings_through_every_reader_under_a_memory_limit() {
    let d = Dir::new();
    corpus(&d);
    let zst = "store/hostile.cast.zst";
    let huge = "store/huge.cast.zst";
    let human: &[(&str, &[&str])] = &[
        ("ls", &["ls", "store"]),
        ("ls --verify", &["ls", "--verify", "store", "hostile.cast"]),
        ("grep store-wide", &["grep", "needle", "store"]),
        ("grep the local store", &["grep", "needle"]),
        (
            "grep -C 1 --json-less local store",
            &["grep", "-C", "1", "needle"],
        ),
        ("ls the local store", &["ls"]),
        (
            "verify --store",
            &["verify", "--store", "data/termtrail/recordings"],
        ),
        (
            "grep --input",
            &["grep", "--input", "needle", "store", "hostile.cast"],
        ),
        (
            "grep -C 2",
            &["grep", "-C", "2", "needle", "store", "hostile.cast"],
        ),
        (
            "grep --screen-context 2",
            &[
                "grep",
                "--screen-context",
                "2",
                "needle",
                "store",
                "hostile.cast",
            ],
        ),
        (
            "grep -v",
            &["grep", "-v", "-B", "1", "needle", "store", "hostile.cast"],
        ),
        ("grep -l", &["grep", "-l", "needle", "store"]),
        ("grep -c", &["grep", "-c", "needle", "store"]),
        ("grep no hit", &["grep", "nothing-matches-this", "store"]),
        ("export txt", &["export", zst, "--format", "txt"]),
        ("export cast-v3 to stdout", &["export", zst]),
        (
            "export cast-v2 to stdout",
            &["export", zst, "--format", "cast-v2"],
        ),
        ("export plain to stdout", &["export", "hostile.cast"]),
        ("export txt huge", &["export", huge, "--format", "txt"]),
        (
            "export txt plain",
            &["export", "hostile.cast", "--format", "txt"],
        ),
        ("snapshot", &["snapshot", zst, "--at", "0.25", "--no-cache"]),
        ("snapshot end", &["snapshot", zst, "--at", "99"]),
        ("snapshot huge", &["snapshot", huge, "--at", "0.6"]),
        ("snapshot huge cached", &["snapshot", huge, "--at", "2"]),
        ("verify", &["verify", zst, huge]),
    ];
    for (what, args) in human {
        let started = Instant::now();
        let r = limited(&d, args);
        exited(what, &r);
        assert_clean(&format!("{what} stdout"), &r.stdout);
        assert_clean(&format!("{what} stderr"), &r.stderr);
        assert!(
            started.elapsed().as_secs() < 15,
            "{what} took {:?}",
            started.elapsed()
        );
    }

    // What a reviewer sees instead: the controls, visible.
    let r = limited(&d, &["ls", "store"]);
    assert!(r.stdout.contains("Title ^[]0;pwned^G"), "{}", r.stdout);
    let shown =
        "\\u{009d}52;c;aGVsbG8=\\u{009c} \\u{009b}2J \\u{0090}qDCS\\u{009c} \\u{202e}desrever";
    let r = limited(&d, &["grep", "--input", "needle", "store"]);
    assert!(r.stdout.contains("needle typed"), "{}", r.stdout);
    assert!(r.stdout.contains(shown), "{}", r.stdout);
    let r = limited(&d, &["grep", "--screen", "needle", "store"]);
    assert!(r.stdout.contains("needle one"), "{}", r.stdout);
    assert!(r.stdout.contains(shown), "{}", r.stdout);
    assert!(
        r.stdout.contains("needle again"),
        "a hit on the huge screen: {}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("65535x65535 terminal; it is replayed clamped to at most 2000x1000"),
        "the clamp is said: {}",
        r.stderr
    );
    let r = limited(&d, &["snapshot", huge, "--at", "0.6"]);
    assert!(r.stdout.contains("needle on a huge screen"), "{}", r.stdout);
    assert!(r.stderr.contains("clamped"), "{}", r.stderr);
    let r = limited(&d, &["export", zst, "--format", "txt"]);
    assert!(
        r.stdout.contains("\\u{202e}desrever\\u{202c}"),
        "{}",
        r.stdout
    );
    // After the resize: EVIL's C1 `CSI 2J` clears the screen that shows
    // "needle after resize", as in asciinema 3 (the transcript is its
    // `convert -f txt`); what is printed after it is there.
    assert!(r.stdout.contains("corner"), "{}", r.stdout);

    // Drawn output: play (on a terminal: util-linux `script` gives it one
    // and keeps every byte it writes) and colour snapshots make their own
    // CSI sequences only.
    for file in [zst, huge] {
        let script = format!(
            "ulimit -v {LIMIT_KIB} && script -qec '\"$TT\" play {file} --speed 1000 </dev/null' /dev/null </dev/null"
        );
        let r = run(&mut d.shell(&script), b"");
        exited("play", &r);
        assert!(
            r.stdout.contains("\x1b[?1049h"),
            "play drew: {:?}",
            r.stdout
        );
        assert_only_csi(&format!("play {file}"), &r.stdout);
    }
    let r = limited(&d, &["snapshot", zst, "--at", "0.25", "--color"]);
    exited("snapshot --color", &r);
    assert_only_csi("snapshot --color stdout", &r.stdout);
    assert_clean("snapshot --color stderr", &r.stderr);

    // JSON: every unsafe character escaped, the text read back exact.
    let title = format!("Title {EVIL}");
    for (what, args) in [
        ("ls --json", &["ls", "--json", "store"][..]),
        (
            "grep --json",
            &["grep", "--json", "--input", "needle", "store"],
        ),
        ("verify --json", &["verify", "--json", zst]),
    ] {
        let r = limited(&d, args);
        exited(what, &r);
        assert_clean(&format!("{what} stdout"), &r.stdout);
        assert!(
            !r.stdout.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
                || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{what}"
        );
        let found = r
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
            .any(|v| v["title"] == title.as_str() || v["recording"]["title"] == title.as_str());
        assert!(
            found,
            "{what}: the exact title is in the JSON: {}",
            r.stdout
        );
    }

    // Casts printed to a terminal: exact values, C1 and bidi escaped.
    let r = limited(&d, &["export", zst]);
    let header: Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(header["title"], title.as_str());
    let typed = r
        .stdout
        .lines()
        .find(|l| l.contains("needle typed"))
        .unwrap();
    let event: Value = serde_json::from_str(typed).unwrap();
    assert_eq!(event[2], format!("needle typed {EVIL}\r").as_str());

    // Exports that are files: casts stay exact; the page plays clamped.
    for format in ["cast-v3", "cast-v2", "html"] {
        let out = format!("out.{format}");
        let r = limited(&d, &["export", huge, "--format", format, "-o", &out]);
        exited(format, &r);
        assert_clean(&format!("export {format} stderr"), &r.stderr);
    }
    let page = std::fs::read_to_string(d.join("out.html")).unwrap();
    assert!(
        page.contains("65535×65535 (played at 2000×1000"),
        "the page says the clamp"
    );
    assert!(page.contains(r#"\"cols\":2000"#) || page.contains(r#"\"term\":{\"cols\":2000"#));
    let r = limited(
        &d,
        &["export", zst, "--format", "html", "-o", "hostile.html"],
    );
    exited("export html", &r);
    let page = std::fs::read_to_string(d.join("hostile.html")).unwrap();
    let info = &page[page.find("<section id=\"info\">").unwrap()..];
    let info = &info[..info.find("</section>").unwrap()];
    assert_clean("the page's metadata", info);
    assert!(info.contains("Title ^[]0;pwned^G"), "{info}");
    let cast = std::fs::read_to_string(d.join("out.cast-v3")).unwrap();
    assert!(
        cast.contains("65535"),
        "a cast export keeps the recorded size"
    );
}

/// One line of `mib` MiB of output (no line feed until the end), sealed.
fn long_line(d: &Dir, mib: usize) -> std::path::PathBuf {
    let chunk: String =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/".repeat(1024);
    let mut text =
        String::from("{\"version\":2,\"width\":80,\"height\":24,\"timestamp\":1790000000}\n");
    let event = json!([0.0, "o", chunk]).to_string();
    for _ in 0..mib * 16 {
        text.push_str(&event);
        text.push('\n');
    }
    text.push_str("[1.0, \"o\", \" \\r\\nend\\r\\n\"]\n");
    let cast = d.join(&format!("line{mib}.cast"));
    std::fs::write(&cast, text).unwrap();
    let out = d.join(&format!("line{mib}.cast.zst"));
    let r = d.run(&[
        "import",
        cast.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    std::fs::remove_file(cast).unwrap();
    out
}

/// Runs `termtrail ARGS` under the address-space limit, watching its peak
/// resident memory (VmHWM, polled while it runs): the run and the peak
/// in KiB.
fn limited_peak(d: &Dir, args: &[&str]) -> (Run, u64) {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!("ulimit -v {LIMIT_KIB} && exec \"$TT\" {}", quoted.join(" "));
    let mut c = d.shell(&script);
    c.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    while child.try_wait().expect("wait").is_none() {
        let hwm = std::fs::read_to_string(&status)
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .unwrap_or(0);
        peak = peak.max(hwm);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (r, peak)
}

/// The text export of one 64 MiB line: linear in time and memory (it held
/// the whole line several times over, 220 MB resident, and took time
/// growing faster than the line; now the line is written out as its rows
/// scroll off).
#[test]
fn a_64_mib_line_exports_to_text_in_bounded_memory() {
    let d = Dir::new();
    let rec = long_line(&d, 64);
    let started = Instant::now();
    let (r, peak) = limited_peak(
        &d,
        &[
            "export",
            rec.to_str().unwrap(),
            "--format",
            "txt",
            "-o",
            "line.txt",
        ],
    );
    let took = started.elapsed();
    exited("export txt", &r);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read(d.join("line.txt")).unwrap();
    // The whole line (wrapped rows joined, as the transcript shows lines),
    // then "end".
    assert_eq!(text.len(), 64 * 1024 * 1024 + "\nend\n".len());
    assert!(text.ends_with(b"+/\nend\n"));
    assert!(peak < 96 * 1024, "peak resident memory {peak} KiB");
    assert!(took.as_secs() < 40, "took {took:?}");
}

/// The other readers over the same kind of line, under the limit.
#[test]
fn a_64_mib_line_through_the_other_readers() {
    let d = Dir::new();
    let rec = long_line(&d, 64);
    let rec = rec.to_str().unwrap();
    for (what, args) in [
        ("grep", &["grep", "-c", "^end$", rec][..]),
        ("snapshot", &["snapshot", rec, "--at", "2", "--no-cache"]),
        ("ls", &["ls", "--verify", rec]),
        ("verify", &["verify", rec]),
        ("export html", &["export", rec, "-o", "line.html"]),
        ("export cast", &["export", rec, "-o", "line.cast"]),
    ] {
        let started = Instant::now();
        let (r, peak) = limited_peak(&d, args);
        exited(what, &r);
        assert_clean(what, &r.stdout);
        assert!(peak < 256 * 1024, "{what}: peak resident memory {peak} KiB");
        assert!(
            started.elapsed().as_secs() < 10,
            "{what}: {:?}",
            started.elapsed()
        );
        if what == "grep" {
            assert!(r.stdout.trim_end().ends_with(":1"), "{}", r.stdout);
        }
    }
}

/// The HTML page of a 65535×65535 recording plays in Chromium at the
/// clamped size, and says so.
#[test]
fn a_huge_terminal_plays_clamped_in_the_browser() {
    let d = Dir::new();
    corpus(&d);
    let r = d.run(&["export", "store/huge.cast.zst", "-o", "huge.html"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("clamped"), "{}", r.stderr);
    let Some(v) = crate::html::open_in_browser(&d.join("huge.html"), "needle again") else {
        return;
    };
    assert!(
        v["termText"].as_str().unwrap().contains("needle again"),
        "{v}"
    );
    assert!(
        v["info"].as_str().unwrap().contains("played at 2000×1000"),
        "{v}"
    );
}
