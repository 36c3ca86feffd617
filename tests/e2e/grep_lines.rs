//! What `grep` prints: the matched line itself (the screen row only on
//! request, labelled), ripgrep's basics (-A/-B/-C, -v, -o, -S, --heading,
//! --no-filename), the time shown (--time), short names, the -F hint; and a
//! randomized check that every printed hit line matches the pattern.

use regex::RegexBuilder;

use crate::util::*;

/// A plain asciicast v3 text: a 40x6 terminal started on 2026-11-20 00:00
/// UTC, chunks of a second, and `events` (interval, output) as given.
fn cast(events: &[(f64, String)]) -> String {
    let mut s = String::from(
        r#"{"version":3,"term":{"cols":40,"rows":6},"timestamp":1795132800,"termtrail":{"format":1,"id":"x","chunk_ms":1000}}"#,
    );
    s.push('\n');
    for (dt, text) in events {
        let data = serde_json::to_string(text).unwrap();
        s.push_str(&format!("[{dt:.3}, \"o\", {data}]\n"));
    }
    s
}

/// Writes `NAME.cast` and imports it as `NAME.cast.zst`.
fn recording(d: &Dir, name: &str, events: &[(f64, String)]) -> (String, String) {
    let plain = format!("{name}.cast");
    std::fs::write(d.join(&plain), cast(events)).unwrap();
    let zst = format!("{name}.cast.zst");
    let r = d.run(&["import", &plain, "-o", &zst]);
    assert_eq!(r.code, 0, "{r:?}");
    (plain, zst)
}

fn ev(dt: f64, s: &str) -> (f64, String) {
    (dt, s.to_string())
}

#[test]
fn a_hit_prints_the_line_that_matched_not_the_screen_row() {
    let d = Dir::new();
    let (_, zst) = recording(
        &d,
        "r",
        &[
            // The match is complete before the rest of its line is written:
            // the screen row then shows the line cut.
            ev(0.5, "Failed to connect after 0 ms:"),
            ev(0.5, " connection refused\r\n"),
            // A pager redraws: `line 1` is a line of its own (the cursor
            // moves after it), then the row becomes `line 19`.
            ev(0.5, "\x1b[H\x1b[2Jline 1\x1b[1;7H9\r\nline 2\r\n"),
            // The hit line and the line the cursor is on differ.
            ev(
                0.5,
                "FAILED tests/test_api.py::test_login\r\nFAILED tests/test_api.py::test_login_expired\r\n",
            ),
        ],
    );
    let grep = |args: &[&str]| {
        let mut all = vec!["grep", "--time", "offset"];
        all.extend_from_slice(args);
        all.push(&zst);
        d.run(&all)
    };
    let r = grep(&["Failed to connect"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_text(
        &r.stdout,
        "r.cast.zst:00:00.500:Failed to connect after 0 ms: connection refused\n",
    );
    let r = grep(&["line 1$"]);
    assert_text(&r.stdout, "r.cast.zst:00:01.500:line 1\n");
    let r = grep(&["test_login$"]);
    assert_text(
        &r.stdout,
        "r.cast.zst:00:02.000:FAILED tests/test_api.py::test_login\n",
    );
    // The screen row is extra, labelled, below the hit.
    let r = grep(&["--screen", "line 1$"]);
    assert_text(
        &r.stdout,
        "r.cast.zst:00:01.500:line 1\n  screen: line 19\n",
    );
}

#[test]
fn grep_has_ripgreps_basics() {
    let d = Dir::new();
    let lines = [
        "alpha",
        "beta ERROR one",
        "gamma",
        "delta",
        "error two",
        "omega",
    ];
    let events: Vec<(f64, String)> = lines
        .iter()
        .map(|l| (0.25, format!("\x1b[32m{l}\x1b[0m\r\n")))
        .collect();
    let (plain, zst) = recording(&d, "r", &events);
    let grep = |args: &[&str]| {
        let mut all = vec!["grep", "--time", "offset"];
        all.extend_from_slice(args);
        d.run(&all)
    };
    // -A/-B/-C: lines of text.
    let r = grep(&["-B", "1", "-A", "1", "ERROR", &zst]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_text(
        &r.stdout,
        "r.cast.zst-00:00.250-alpha\nr.cast.zst:00:00.500:beta ERROR one\nr.cast.zst-00:00.750-gamma\n",
    );
    let r = grep(&["-A", "1", "-i", "error", &zst]);
    assert_text(
        &r.stdout,
        "r.cast.zst:00:00.500:beta ERROR one\nr.cast.zst-00:00.750-gamma\n--\n\
         r.cast.zst:00:01.250:error two\nr.cast.zst-00:01.500-omega\n",
    );
    // Groups that touch are not separated.
    let r = grep(&["-C", "1", "-i", "error", &zst]);
    assert_text(
        &r.stdout,
        "r.cast.zst-00:00.250-alpha\nr.cast.zst:00:00.500:beta ERROR one\nr.cast.zst-00:00.750-gamma\n\
         r.cast.zst-00:01.000-delta\nr.cast.zst:00:01.250:error two\nr.cast.zst-00:01.500-omega\n",
    );
    // The same from the plain file (searched event by event).
    let r2 = grep(&["-C", "1", "-i", "error", &plain]);
    assert_eq!(
        r2.stdout
            .replace("r.cast:", "r.cast.zst:")
            .replace("r.cast-", "r.cast.zst-"),
        r.stdout
    );
    // -v: lines without a match; -c counts them.
    let r = grep(&["-v", "-c", "e", &zst]);
    assert_text(&r.stdout, "r.cast.zst:2\n");
    let r = grep(&["-v", "-I", "a", &zst]);
    assert_text(&r.stdout, "00:01.250:error two\n");
    // -o: the matches only.
    let r = grep(&["-o", "-I", r"[a-z]+ [a-z]+", &zst]);
    assert_text(&r.stdout, "00:01.250:error two\n");
    // -S: lower case ignores case, upper case does not.
    let r = grep(&["-S", "-c", "error", &zst]);
    assert_text(&r.stdout, "r.cast.zst:2\n");
    let r = grep(&["-S", "-c", "ERROR", &zst]);
    assert_text(&r.stdout, "r.cast.zst:1\n");
    // --heading: the name once; --time clock: RFC 3339 UTC.
    let r = d.run(&[
        "grep",
        "--heading",
        "--time",
        "clock",
        "-j",
        "1",
        "ERROR",
        &zst,
        &plain,
    ]);
    assert_text(
        &r.stdout,
        "r.cast.zst\n2026-11-20T00:00:00.500Z:beta ERROR one\n\nr.cast\n2026-11-20T00:00:00.500Z:beta ERROR one\n",
    );
    // The default shows both; a name under the current directory is short.
    let abs = d.join(&zst);
    let r = d.run(&["grep", "ERROR", &abs.to_string_lossy()]);
    assert_text(
        &r.stdout,
        "r.cast.zst:2026-11-20T00:00:00.500Z 00:00.500:beta ERROR one\n",
    );
    // An invalid regex: one line, with the way out.
    let r = d.run(&["grep", "f(x", &zst]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("use -F to search for the text as it is")
            && r.stderr.lines().count() == 1,
        "{r:?}"
    );
    assert_eq!(d.run(&["grep", "-F", "f(x", &zst]).code, 1);
}

/// Random output: words, colour codes, CR/LF, cut into events at random
/// bytes (inside escape sequences too).
fn random_events(rng: &mut Rng) -> Vec<(f64, String)> {
    const PIECES: &[&str] = &[
        "alpha",
        "beta",
        "gamma",
        "error",
        "Error",
        "ERR",
        "42",
        "7",
        "x",
        "login",
        "test_login",
        "test_login_expired",
        " ",
        " ",
        "  ",
        ":",
        "-",
        "\x1b[1;31m",
        "\x1b[0m",
        "\x1b[32m",
        "\x1b[K",
        "\r\n",
        "\r\n",
        "\n",
        "\r",
    ];
    let mut text = String::new();
    for _ in 0..40 + rng.below(200) {
        text.push_str(PIECES[rng.below(PIECES.len())]);
    }
    let mut events = Vec::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let end = (at + 1 + rng.below(40)).min(bytes.len());
        // ASCII only: any byte is a char boundary.
        events.push(((1 + rng.below(6)) as f64 / 10.0, text[at..end].to_string()));
        at = end;
    }
    events
}

/// The text of printed lines (`-I --time offset`, under an hour):
/// (is a hit, text), `--` left out.
fn printed(stdout: &str) -> Vec<(bool, String)> {
    stdout
        .lines()
        .filter(|l| *l != "--")
        .map(|l| {
            assert!(l.len() >= 10, "{l:?}");
            let sep = l.as_bytes()[9];
            assert!(sep == b':' || sep == b'-', "{l:?}");
            (sep == b':', l[10..].to_string())
        })
        .collect()
}

fn count(stdout: &str) -> usize {
    stdout.trim().parse::<usize>().unwrap_or(0)
}

#[test]
fn every_printed_hit_line_matches_the_pattern() {
    const PATTERNS: &[&str] = &[
        "error",
        "test_login$",
        "^alpha",
        "ERR|beta",
        "[0-9]+",
        r"a.p",
        r"login\b",
        "gamma +x",
        r"\d :",
        "x$",
        "^ ",
    ];
    let d = Dir::new();
    let mut rng = Rng(16);
    let started = std::time::Instant::now();
    let mut hits = 0;
    for round in 0..30 {
        let events = random_events(&mut rng);
        let (plain, zst) = recording(&d, &format!("r{round}"), &events);
        for file in [&plain, &zst] {
            let p = PATTERNS[rng.below(PATTERNS.len())];
            let mut flags: Vec<&str> = Vec::new();
            let (i, w) = (rng.below(3) == 0, rng.below(4) == 0);
            if i {
                flags.push("-i");
            }
            if w {
                flags.push("-w");
            }
            let word = if w {
                format!(r"\b{{start-half}}(?:{p})\b{{end-half}}")
            } else {
                p.to_string()
            };
            let re = RegexBuilder::new(&word)
                .case_insensitive(i)
                .build()
                .unwrap();
            let grep = |extra: &[&str], pattern: &str| {
                let mut all = vec!["grep", "-I", "--time", "offset", "--color", "never"];
                all.extend_from_slice(&flags);
                all.extend_from_slice(extra);
                all.extend_from_slice(&["-e", pattern, file.as_str()]);
                let r = d.run(&all);
                assert!(r.code < 2, "{all:?}: {r:?}");
                r.stdout
            };
            let what = format!("{p:?} {flags:?} in {file}: {events:?}");
            let lines = printed(&grep(&[], p));
            for (hit, text) in &lines {
                assert!(*hit, "{what}");
                assert!(re.is_match(text), "{text:?} does not match; {what}");
            }
            hits += lines.len();
            assert_eq!(count(&grep(&["-c"], p)), lines.len(), "-c: {what}");
            // Searching every line in order (-C) finds the same hits.
            let around = printed(&grep(&["-C", "1"], p));
            let same: Vec<_> = around.iter().filter(|(h, _)| *h).cloned().collect();
            assert_eq!(same, lines, "-C 1: {what}");
            for (hit, text) in &around {
                assert_eq!(*hit, re.is_match(text), "-C 1 {text:?}: {what}");
            }
            // -v: none of its lines matches, and with the hits they are
            // all the lines.
            let inverted = printed(&grep(&["-v"], p));
            assert!(inverted.iter().all(|(_, t)| !re.is_match(t)), "-v: {what}");
            let all_lines = count(&grep(&["-v", "-c"], "^\\b$"));
            assert_eq!(inverted.len() + lines.len(), all_lines, "-v: {what}");
        }
    }
    assert!(hits > 20, "the rounds hold hits: {hits}");
    let took = started.elapsed();
    assert!(took.as_secs() < 20, "took {took:?}");
}
