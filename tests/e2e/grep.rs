//! `grep` over directories of recordings: matches through escape sequences
//! and event boundaries, screen lines, flags, filters, damage, bad input;
//! and `ls` over the same recordings.

use serde_json::Value;

use crate::util::*;

/// A recording's plain asciicast text, with metadata.
fn cast(ts: u64, title: &str, session: &str, principal: &str, events: &[&str]) -> String {
    let mut s = format!(
        r#"{{"version":3,"term":{{"cols":60,"rows":8}},"timestamp":{ts},"title":"{title}","termtrail":{{"format":1,"id":"x","chunk_ms":1000,"session":"{session}","shell":"sh-{session}","principal":"{principal}"}}}}"#
    );
    s.push('\n');
    for e in events {
        s.push_str(e);
        s.push('\n');
    }
    s
}

/// 2026-11-01 and 2026-11-20, 00:00 UTC.
const NOV1: u64 = 1_793_491_200;
const NOV20: u64 = 1_795_132_800;

/// A directory of recordings: a.cast.zst (colour codes and event
/// boundaries inside the word), b.cast.zst (on the alternate screen, typed
/// input), c.cast (a plain file), nothing.cast.zst (no hit).
fn setup() -> Dir {
    let d = Dir::new();
    std::fs::create_dir_all(d.join("recs/deep")).unwrap();
    let files = [
        (
            "a",
            cast(
                NOV1,
                "Deploy prod",
                "s1",
                "alice",
                &[
                    r#"[0.5, "o", "$ aws s3 ls\r\n"]"#,
                    r#"[1.0, "o", "An error occurred (Acc"]"#,
                    r#"[0.25, "o", "\u001b[1;31mess"]"#,
                    r#"[0.25, "o", "Den\u001b[0mied) when calling\r\n$ "]"#,
                    r#"[1.0, "o", "echo fine\r\nfine\r\n$ "]"#,
                ],
            ),
        ),
        (
            "deep/b",
            cast(
                NOV20,
                "debugging",
                "s2",
                "bob",
                &[
                    r#"[0.1, "o", "$ "]"#,
                    r#"[1.0, "i", "rm -rf /tmp/cache\r"]"#,
                    r#"[0.1, "o", "rm -rf /tmp/cache\r\n$ vim\r\n"]"#,
                    r#"[1.0, "o", "\u001b[?1049h\u001b[H\u001b[2Jline one\u001b[2;1Hsecond ACCESSDENIED row\u001b[3;1Hthird"]"#,
                    r#"[2.0, "o", "\u001b[?1049l$ "]"#,
                ],
            ),
        ),
        (
            "nothing",
            cast(
                NOV20,
                "quiet",
                "s3",
                "alice",
                &[r#"[1.0, "o", "all good\r\n"]"#],
            ),
        ),
    ];
    for (name, text) in files {
        let src = d.join(&format!("{}.cast", name.replace('/', "-")));
        std::fs::write(&src, text).unwrap();
        let out = d.join(&format!("recs/{name}.cast.zst"));
        let r = d.run(&[
            "import",
            &src.to_string_lossy(),
            "-o",
            &out.to_string_lossy(),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let plain = cast(
        NOV20,
        "plain",
        "s4",
        "carol",
        &[r#"[2.5, "o", "plain: AccessDenied here\r\n"]"#],
    );
    std::fs::write(d.join("recs/c.cast"), plain).unwrap();
    d
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn grep_finds_text_through_colours_and_event_boundaries_with_screen_lines() {
    let d = setup();
    let r = d.run(&["grep", "AccessDenied", "recs", "-j", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stderr, "");
    let a = std::path::Path::new("recs/a.cast.zst");
    let want = "recs/a.cast.zst:2026-11-01T00:00:02.000Z 00:02.000:An error occurred (AccessDenied) when calling\n\
                recs/c.cast:2026-11-20T00:00:02.500Z 00:02.500:plain: AccessDenied here\n";
    assert_text(&r.stdout, want);

    // -i finds the upper-case one on the alternate screen; --screen-context
    // adds its row and the rows around it, labelled, below the hit line.
    let r = d.run(&[
        "grep",
        "-i",
        "accessdenied",
        "recs",
        "--screen-context",
        "1",
        "--time",
        "offset",
        "-j",
        "1",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let b = "recs/deep/b.cast.zst";
    assert!(
        r.stdout.contains(&format!(
            "{b}:00:02.200:second ACCESSDENIED row\n  screen- line one\n  screen: second ACCESSDENIED row\n  screen- third\n"
        )),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout.matches("--\n").count(),
        0,
        "no lines of text asked for"
    );

    // JSON: one object per hit, then a summary.
    let r = d.run(&["grep", "--json", "AccessDenied", "recs/a.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = json_lines(&r.stdout);
    assert_eq!(v.len(), 2, "{}", r.stdout);
    let hit = &v[0];
    assert_eq!(hit["type"], "match");
    assert_eq!(hit["time"], 2.0);
    assert_eq!(hit["clock"], "00:02.000");
    assert_eq!(hit["at"], "2026-11-01T00:00:02.000Z");
    assert_eq!(hit["line"], "An error occurred (AccessDenied) when calling");
    assert_eq!(hit["matches"][0]["start"], 19);
    assert_eq!(hit["matches"][0]["text"], "AccessDenied");
    assert_eq!(hit["screen"]["row"], 1);
    assert_eq!(
        hit["screen"]["line"],
        "An error occurred (AccessDenied) when calling"
    );
    assert_eq!(hit["recording"]["session"], "s1");
    assert_eq!(hit["recording"]["principal"], "alice");
    assert_eq!(hit["recording"]["title"], "Deploy prod");
    assert_eq!(hit["recording"]["verified"], "intact");
    assert_eq!(v[1]["type"], "summary");
    assert_eq!(v[1]["hits"], 1);

    // The time a hit prints leads straight to the moment: the screen then
    // has the line (and did not have it just before).
    let r = d.run(&["snapshot", &a.to_string_lossy(), "--at", "2.000"]);
    assert!(r.stdout.contains("(AccessDenied)"), "{r:?}");
    let r = d.run(&["snapshot", &a.to_string_lossy(), "--at", "1.999"]);
    assert!(!r.stdout.contains("(AccessDenied)"), "{r:?}");
}

#[test]
fn grep_flags_behave_like_grep() {
    let d = setup();
    let run = |args: &[&str]| {
        let mut all = vec!["grep"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-j", "1"]);
        d.run(&all)
    };
    let (a, b, c) = ("recs/a.cast.zst", "recs/deep/b.cast.zst", "recs/c.cast");

    let r = run(&["-l", "-i", "accessdenied", "recs"]);
    assert_text(&r.stdout, &format!("{a}\n{c}\n{b}\n"));
    let r = run(&["-c", r"\$", "recs"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&format!("{a}:3\n")), "{}", r.stdout);
    let r = run(&["-m", "1", r"\$", a]);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    // -w: "occurr" is not a word there; -F: regex characters as text.
    let r = run(&["-w", "-c", "occurr", a]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = run(&["-F", "(AccessDenied)", a]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&["-F", "(Access.enied)", a]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = run(&["-e", "no such", "-e", "when call", a]);
    assert_eq!(r.code, 0, "{r:?}");
    // --input searches what was typed; output does not have "-rf /tmp/cache\r".
    let r = run(&["--input", "--json", "rm -rf", "recs"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = json_lines(&r.stdout);
    assert_eq!(v[0]["line"], "rm -rf /tmp/cache");
    assert_eq!(v[0]["time"], 1.1);
    let r = run(&["--input", "AccessDenied", "recs"]);
    assert_eq!(r.code, 1, "{r:?}");
    // -q: nothing printed, the status tells.
    let r = run(&["-q", "AccessDenied", "recs"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    let r = run(&["nothing matches this", "recs"]);
    assert_eq!((r.code, r.stdout.as_str()), (1, ""));
    // Colour on request: the match is bold red.
    let r = run(&["--color", "always", "AccessDenied", c]);
    assert!(r.stdout.contains("\x1b[1;31mAccessDenied\x1b[0m"), "{r:?}");
}

#[test]
fn grep_filters_by_metadata_and_time() {
    let d = setup();
    let run = |args: &[&str]| {
        let mut all = vec!["grep", "-l", "-i"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["recs", "-j", "1"]);
        let r = d.run(&all);
        assert!(r.code < 2, "{args:?}: {r:?}");
        r.stdout
            .lines()
            .map(|l| l.rsplit('/').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        run(&["accessdenied"]),
        ["a.cast.zst", "c.cast", "b.cast.zst"]
    );
    assert_eq!(run(&["accessdenied", "--session", "s2"]), ["b.cast.zst"]);
    assert_eq!(run(&["accessdenied", "--shell", "sh-s1"]), ["a.cast.zst"]);
    assert_eq!(run(&["accessdenied", "--principal", "carol"]), ["c.cast"]);
    assert_eq!(run(&["accessdenied", "--title", "DEPLOY"]), ["a.cast.zst"]);
    assert_eq!(
        run(&["accessdenied", "--since", "2026-11-10"]),
        ["c.cast", "b.cast.zst"]
    );
    assert_eq!(
        run(&["accessdenied", "--until", "2026-11-10"]),
        ["a.cast.zst"]
    );
    // Hits are placed by wall-clock time: a's hit is at 00:00:02.
    assert_eq!(
        run(&[
            "accessdenied",
            "--since",
            "2026-11-01T00:00:01Z",
            "--until",
            "2026-11-01T00:00:03Z"
        ]),
        ["a.cast.zst"]
    );
    assert!(
        run(&[
            "accessdenied",
            "--since",
            "2026-11-01T00:00:03Z",
            "--until",
            "2026-11-02"
        ])
        .is_empty()
    );
}

#[test]
fn damaged_and_foreign_files_are_reported_and_skipped() {
    let d = setup();
    let samples = samples();
    std::fs::copy(
        samples.join("damaged-edited-event.cast.zst"),
        d.join("recs/edited.cast.zst"),
    )
    .unwrap();
    std::fs::write(d.join("recs/notes.txt"), "not a recording\n").unwrap();
    std::fs::write(
        d.join("recs/junk.cast.zst"),
        [0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3],
    )
    .unwrap();
    std::fs::write(d.join("recs/.hidden"), "ignored").unwrap();
    let r = d.run(&["grep", "AccessDenied", "recs", "-j", "2"]);
    assert_eq!(r.code, 2, "{r:?}");
    // The other recordings are still searched.
    assert_eq!(r.stdout.lines().count(), 2, "{r:?}");
    assert!(
        r.stderr.contains("edited.cast.zst: TAMPERED"),
        "{}",
        r.stderr
    );
    // A file not named like a recording is passed over without a word
    // (as ripgrep passes over binary files); one named like a recording
    // that is not one is reported.
    assert!(!r.stderr.contains("notes.txt"), "{}", r.stderr);
    assert!(r.stderr.contains("junk.cast.zst"), "{}", r.stderr);
    assert!(!r.stderr.contains(".hidden"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 2, "{}", r.stderr);
    // Named on the command line, it is reported.
    let r = d.run(&["grep", "AccessDenied", "recs/notes.txt"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("notes.txt: not a recording"), "{r:?}");
    // The edited text is in the chunk that fails: never reported.
    let r = d.run(&["grep", "AccessGranted", "recs/edited.cast.zst"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout, "");
    let r = d.run(&["grep", "--json", "AccessGranted", "recs/edited.cast.zst"]);
    let v = json_lines(&r.stdout);
    assert_eq!(v[0]["type"], "error");
    assert_eq!(v[0]["tampered"], true);
    assert_eq!(v[1]["errors"], 1);
}

#[test]
fn a_hit_in_a_chunk_resealed_by_a_forger_is_reported_as_tampered() {
    // Chunk 1's text edited and every hash outside the chunks recomputed
    // (unsigned): the segment matches the seal, so grep takes it as sealed
    // and hashes only the chunks its hits come from.
    let d = Dir::new();
    let samples = samples();
    let forged = samples.join("damaged-resealed-event.cast.zst");
    let forged = forged.to_string_lossy();
    let r = d.run(&["grep", "AccessGrant", &forged]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("TAMPERED: chunk 1 content"), "{r:?}");
    for flag in ["-c", "-l", "-q", "--json"] {
        let r = d.run(&["grep", flag, "AccessGrant", &forged]);
        assert_eq!(r.code, 2, "{flag}: {r:?}");
        assert!(!r.stdout.contains("Grant"), "{flag}: {r:?}");
        assert!(
            !r.stdout.contains("resealed-event.cast.zst:1"),
            "{flag}: {r:?}"
        );
    }
    // A hit in chunk 0, which is intact, is reported; the edit elsewhere
    // is not seen unless every chunk is hashed (docs/player.md says so).
    let r = d.run(&["grep", "bash-completion", &forged]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:?}");
    assert_eq!(r.stdout.lines().count(), 1, "{r:?}");
    let r = d.run(&["grep", "--hash-every-chunk", "bash-completion", &forged]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout.lines().count(), 1, "{r:?}");
    assert!(r.stderr.contains("TAMPERED: chunk 1 content"), "{r:?}");
}

#[test]
fn bad_input_gets_one_line_errors() {
    let d = setup();
    for (args, want) in [
        (
            vec!["grep", "a(b", "recs"],
            "invalid regex 'a(b': unclosed group",
        ),
        (
            vec!["grep", "x", "recs", "--since", "tomorrow"],
            "bad time \"tomorrow\"",
        ),
        (vec!["grep", "x", "missing-dir"], "missing-dir"),
    ] {
        let r = d.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(want), "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {r:?}");
    }
    // The default place is the local store; empty, it says so: no hit.
    let r = d.run(&["grep", "x"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no recordings in"), "{r:?}");
}

#[test]
fn a_closed_pipe_ends_grep_quietly() {
    let d = Dir::new();
    let mut text = String::from("{\"version\":2,\"width\":80,\"height\":24}\n");
    for i in 0..20000 {
        text.push_str(&format!(
            "[{}.0, \"o\", \"line {i} match\\r\\n\"]\n",
            i / 100
        ));
    }
    std::fs::write(d.join("big.cast"), text).unwrap();
    let r = run(
        &mut d.shell("$TT grep match big.cast | head -n 1; echo \"status=${PIPESTATUS[0]}\""),
        b"",
    );
    assert!(
        r.stdout.starts_with("big.cast:00:00.000:line 0 match\n"),
        "{r:?}"
    );
    assert!(r.stdout.contains("status=0"), "{r:?}");
    assert_eq!(r.stderr, "");
}

#[test]
fn ls_lists_recordings_by_time_with_their_metadata() {
    let d = setup();
    let r = d.run(&["ls", "--long", "recs"]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("START (UTC)") && lines[0].contains("PRINCIPAL"),
        "{}",
        r.stdout
    );
    assert_eq!(lines.len(), 5, "{}", r.stdout);
    // Sorted by start time: a (Nov 1) first; then the Nov 20 ones by path.
    assert!(
        lines[1].starts_with("2026-11-01T00:00:00Z") && lines[1].ends_with("recs/a.cast.zst"),
        "{}",
        r.stdout
    );
    for (line, want) in lines[1..].iter().zip([
        "a.cast.zst",
        "c.cast",
        "deep/b.cast.zst",
        "nothing.cast.zst",
    ]) {
        assert!(line.ends_with(want), "{line} vs {want}");
    }
    let a = lines[1];
    for cell in [
        "00:03.000",
        "import",
        "s1",
        "sh-s1",
        "alice",
        "imported",
        "sealed",
        "Deploy prod",
    ] {
        assert!(a.contains(cell), "{cell} missing in {a}");
    }
    assert!(
        lines[2].contains("plain") && lines[2].contains("carol"),
        "{}",
        lines[2]
    );

    // Filters as for grep; --since/--until select recordings active then.
    let names = |args: &[&str]| {
        let mut all = vec!["ls", "--json"];
        all.extend_from_slice(args);
        all.push("recs");
        let r = d.run(&all);
        assert_eq!(r.code, 0, "{r:?}");
        json_lines(&r.stdout)
            .iter()
            .map(|v| {
                v["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&["--principal", "alice"]),
        ["a.cast.zst", "nothing.cast.zst"]
    );
    assert_eq!(names(&["--session", "s2"]), ["b.cast.zst"]);
    assert_eq!(names(&["--title", "QUIET"]), ["nothing.cast.zst"]);
    assert_eq!(names(&["--until", "2026-11-10"]), ["a.cast.zst"]);
    assert_eq!(
        names(&["--since", "2026-11-10"]),
        ["c.cast", "b.cast.zst", "nothing.cast.zst"]
    );

    // JSON fields.
    let r = d.run(&["ls", "--json", "recs/a.cast.zst"]);
    let v = &json_lines(&r.stdout)[0];
    assert_eq!(v["start"], NOV1);
    assert_eq!(v["started"], "2026-11-01T00:00:00.000Z");
    assert_eq!(v["duration"], 3.0);
    assert_eq!(v["session"], "s1");
    assert_eq!(v["end"], "imported");
    assert_eq!(v["state"], "sealed");
    assert_eq!(v["signed"], Value::Null);
}

#[test]
fn ls_verify_finds_damage_that_the_index_does_not_show() {
    let d = setup();
    let samples = samples();
    for f in [
        "damaged-edited-event.cast.zst",
        "damaged-unsealed.cast.zst",
        "signed.cast.zst",
    ] {
        std::fs::copy(samples.join(f), d.join(&format!("recs/{f}"))).unwrap();
    }
    std::fs::write(d.join("recs/notes.cast.zst"), "hello").unwrap();
    let r = d.run(&["ls", "--json", "recs"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("notes.cast.zst: not a recording"),
        "{r:?}"
    );
    let state = |out: &str, name: &str| {
        json_lines(out)
            .into_iter()
            .find(|v| v["path"].as_str().unwrap().ends_with(name))
            .map(|v| {
                (
                    v["state"].as_str().unwrap().to_string(),
                    v["signed"].clone(),
                )
            })
            .unwrap()
    };
    // The index alone takes the edited recording's seal at its word.
    assert_eq!(state(&r.stdout, "edited-event.cast.zst").0, "sealed");
    assert_eq!(state(&r.stdout, "unsealed.cast.zst").0, "unsealed");
    assert_eq!(
        state(&r.stdout, "signed.cast.zst"),
        ("sealed".into(), Value::Bool(true))
    );
    std::fs::remove_file(d.join("recs/notes.cast.zst")).unwrap();
    let r = d.run(&["ls", "--verify", "--json", "recs"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(state(&r.stdout, "edited-event.cast.zst").0, "tampered");
    assert_eq!(state(&r.stdout, "unsealed.cast.zst").0, "verified-unsealed");
    assert_eq!(
        state(&r.stdout, "signed.cast.zst"),
        ("verified".into(), Value::Bool(true))
    );
    assert_eq!(state(&r.stdout, "a.cast.zst").0, "verified");
    let r = d.run(&["ls", "--verify", "recs"]);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains("TAMPERED") && l.ends_with("damaged-edited-event.cast.zst")),
        "{}",
        r.stdout
    );
}

/// `NAME.cast.zst` in `d`: `lines` lines of scrolling output (100×30), the
/// ones `needle` picks saying "found NEEDLE at N" with the word coloured.
fn needle_recording(d: &Dir, name: &str, lines: usize, needle: impl Fn(usize) -> bool) {
    let mut text = String::from(r#"{"version":3,"term":{"cols":100,"rows":30}}"#);
    text.push('\n');
    for i in 0..lines {
        let line = if needle(i) {
            format!("found \x1b[31mNEEDLE\x1b[0m at {i}\r\n")
        } else {
            format!("line {i} \x1b[1mbold\x1b[0m and some ordinary output text\r\n")
        };
        text.push_str(&serde_json::json!([0.001, "o", line]).to_string());
        text.push('\n');
    }
    let cast = format!("{name}.cast");
    std::fs::write(d.join(&cast), text).unwrap();
    assert_eq!(d.run(&["import", &cast]).code, 0);
}

/// The exact snapshot at hit `h`'s time shows its screen line on its row:
/// the snapshot's rows and that row.
fn snapshot_agrees(d: &Dir, file: &str, h: &Value) -> (Vec<String>, usize) {
    let t = h["time"].as_f64().unwrap();
    let r = d.run(&["snapshot", file, "--at", &format!("{t:.6}")]);
    let rows: Vec<String> = r.stdout.lines().map(str::to_string).collect();
    let row = h["screen"]["row"].as_u64().unwrap() as usize;
    assert_eq!(rows[row], h["screen"]["line"], "{h}");
    (rows, row)
}

#[test]
fn screen_lines_deep_in_long_recordings_match_the_snapshot() {
    let d = Dir::new();
    // ~9 MB of output in three segments; a needle every ~2 MB.
    needle_recording(&d, "big", 120_000, |i| i % 25_000 == 24_999);
    let hits = |d: &Dir| {
        let r = d.run(&["grep", "--json", "NEEDLE", "big.cast.zst"]);
        assert_eq!(r.code, 0, "{r:?}");
        json_lines(&r.stdout)
            .into_iter()
            .filter(|v| v["type"] == "match")
            .collect::<Vec<_>>()
    };
    let first = hits(&d);
    assert_eq!(first.len(), 4);
    for h in &first {
        let n = h["line"]
            .as_str()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string();
        let screen = &h["screen"];
        assert_eq!(screen["line"], format!("found NEEDLE at {n}"), "{h}");
        // The screen as snapshot (exact, from keyframes) shows it: same row,
        // same neighbours.
        snapshot_agrees(&d, "big.cast.zst", h);
    }
    // Beyond the first window the screen is rebuilt from a window (not
    // exact); with keyframes cached (the snapshots above) it is exact.
    assert!(
        first[1..].iter().all(|h| h["screen"]["exact"] == false),
        "{first:?}"
    );
    let again = hits(&d);
    assert!(
        again.iter().all(|h| h["screen"]["exact"] == true),
        "{again:?}"
    );
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(a["screen"]["line"], b["screen"]["line"]);
        assert_eq!(a["screen"]["row"], b["screen"]["row"]);
    }
}

#[test]
fn screen_lines_of_close_hits_match_the_snapshot() {
    // Hits 100, 400 and 1500 lines apart (~6, 24 and 90 KB of output): the
    // closest are read on from the hit before, the furthest get a window
    // (less to emulate); every screen agrees with the exact snapshot.
    let d = Dir::new();
    let gaps = [100, 400, 1500, 100, 1500, 400, 100, 100, 1500];
    let mut needles = Vec::new();
    let mut at = 0;
    for g in gaps {
        at += g;
        needles.push(at);
    }
    needle_recording(&d, "near", at + 50, |i| needles.contains(&i));
    let r = d.run(&[
        "grep",
        "--json",
        "--screen-context",
        "2",
        "NEEDLE",
        "near.cast.zst",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let hits: Vec<Value> = json_lines(&r.stdout)
        .into_iter()
        .filter(|v| v["type"] == "match")
        .collect();
    assert_eq!(hits.len(), needles.len());
    for (h, n) in hits.iter().zip(&needles) {
        let screen = &h["screen"];
        assert_eq!(screen["line"], format!("found NEEDLE at {n}"), "{h}");
        let (rows, row) = snapshot_agrees(&d, "near.cast.zst", h);
        assert_eq!(
            screen["before"],
            serde_json::json!(rows[row - 2..row]),
            "{h}"
        );
    }
}

/// Issue 16, finding 4: a README and a picture beside recordings make
/// neither `ls` nor `grep` fail, and `grep -c` with hits exits 0.
#[test]
fn other_files_beside_recordings_are_passed_over() {
    let d = setup();
    std::fs::write(d.join("recs/README.md"), "# notes\n").unwrap();
    std::fs::write(d.join("recs/shot.png"), [0x89, b'P', b'N', b'G', 0, 1, 2]).unwrap();
    std::fs::create_dir_all(d.join("recs/docs")).unwrap();
    std::fs::write(d.join("recs/docs/notes.txt"), "AccessDenied in a note\n").unwrap();
    let r = d.run(&["ls", "recs"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stderr, "", "{r:?}");
    let r = d.run(&["grep", "-c", "AccessDenied", "recs"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stderr, "", "{r:?}");
    assert!(!r.stdout.contains("notes.txt"), "{r:?}");
    let r = d.run(&["grep", "-q", "AccessDenied", "recs"]);
    assert_eq!(r.code, 0, "{r:?}");
}
