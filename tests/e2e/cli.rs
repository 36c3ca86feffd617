//! The command line around the subcommands (issue 16 findings 9 and 12):
//! help headings, shell completions, man pages, and the wording of errors
//! every reading subcommand shares.

use crate::util::Dir;

/// The flags `rec --help` lists under `heading:` (up to the next heading).
pub fn flags_under(help: &str, heading: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            // A heading, or the text after the flags.
            inside = line == format!("{heading}:");
            continue;
        }
        if inside && let Some(flag) = line.split_whitespace().find(|w| w.starts_with("--")) {
            out.push(flag.trim_end_matches(',').to_string());
        }
    }
    out
}

#[test]
fn help_groups_flags_by_what_they_do() {
    let d = Dir::new();
    let rec = d.run(&["rec", "--help"]);
    assert_eq!(rec.code, 0, "{rec:?}");
    let s3 = flags_under(&rec.stdout, "S3");
    assert!(s3.contains(&"--retain-days".to_string()), "{}", rec.stdout);
    for general in [
        "--overwrite",
        "--input",
        "--headless",
        "--title",
        "--sign-key",
    ] {
        assert!(
            !s3.contains(&general.to_string()),
            "{general} under S3:\n{}",
            rec.stdout
        );
    }
    assert!(flags_under(&rec.stdout, "Output").contains(&"--overwrite".to_string()));
    assert!(flags_under(&rec.stdout, "Signing").contains(&"--sign-key".to_string()));
    assert!(!rec.stdout.contains("S3 protection"), "{}", rec.stdout);
    for cmd in ["serve", "proxy"] {
        let help = d.run(&[cmd, "--help"]).stdout;
        let s3 = flags_under(&help, "S3");
        for general in [
            "--idle-timeout",
            "--grace",
            "--tls-cert",
            "--tls-key",
            "--no-auth",
        ] {
            assert!(
                !s3.contains(&general.to_string()),
                "{cmd}: {general} under S3"
            );
        }
        assert!(
            flags_under(&help, "TLS").contains(&"--tls-cert".to_string()),
            "{help}"
        );
        assert!(
            flags_under(&help, "Sessions").contains(&"--grace".to_string()),
            "{help}"
        );
        assert!(flags_under(&help, "Authentication").contains(&"--no-auth".to_string()));
    }
}

/// Found by an independent check of issue 16: `rec --help` listed S3 (only
/// for an `s3://` store) before Recording; serve and proxy put Limits
/// before TLS and Authentication. Headings now come by what a user needs
/// first, S3 last (docs/cli.md, Help headings).
#[test]
fn help_headings_come_in_the_order_users_need_them() {
    let d = Dir::new();
    let headings = |cmd: &str| -> Vec<String> {
        let r = d.run(&[cmd, "--help"]);
        assert_eq!(r.code, 0, "{r:?}");
        // A heading is followed by its first flag.
        let lines: Vec<&str> = r.stdout.lines().collect();
        lines
            .windows(2)
            .filter(|w| w[0].ends_with(':') && w[0].len() <= 20)
            .filter(|w| w[0].starts_with(|c: char| c.is_ascii_uppercase()))
            .filter(|w| w[0] != "Upstreams:") // proxy's text on its upstreams
            .filter(|w| w[1].trim_start().starts_with('-'))
            .map(|w| w[0].trim_end_matches(':').to_string())
            .collect()
    };
    let want: &[(&str, &[&str])] = &[
        (
            "rec",
            &["Options", "Output", "Recording", "Secrets", "Signing", "S3"],
        ),
        (
            "serve",
            &[
                "Options",
                "Listening",
                "TLS",
                "Authentication",
                "Access policy",
                "Storage",
                "Sessions",
                "Secrets",
                "Limits",
                "S3",
            ],
        ),
        (
            "proxy",
            &[
                "Options",
                "Listening",
                "Upstream",
                "TLS",
                "Authentication",
                "Access policy",
                "Storage",
                "Sessions",
                "Secrets",
                "Limits",
                "S3",
            ],
        ),
        ("grep", &["Options", "Filters"]),
        ("ls", &["Options", "Filters", "Signing"]),
        ("upload", &["Options", "Signing", "S3"]),
    ];
    for (cmd, want) in want {
        assert_eq!(headings(cmd), *want, "{cmd} --help");
    }
}

#[test]
fn bash_completion_completes_subcommands_and_flags() {
    let d = Dir::new();
    let r = d.run(&["completions", "bash"]);
    assert_eq!(r.code, 0, "{r:?}");
    std::fs::write(d.join("termtrail.bash"), &r.stdout).unwrap();
    // What bash's programmable completion does on Tab: the function
    // `complete -p` names, called with COMP_WORDS / COMP_CWORD.
    let script = r#"
        source ./termtrail.bash
        fn=$(complete -p termtrail | sed -E 's/.* -F ([^ ]+) .*/\1/')
        tab() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
                "$fn" termtrail "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"; echo "${COMPREPLY[*]}"; }
        tab termtrail gr
        tab termtrail rec --overw
        tab termtrail completions fi
    "#;
    let out = crate::util::run(&mut d.shell(script), b"");
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["grep", "--overwrite", "fish"], "{out:?}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let r = d.run(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {r:?}");
        assert!(
            r.stdout.contains("overwrite") && !r.stdout.contains("supervise"),
            "{shell}"
        );
    }
}

#[test]
fn man_pages_render_for_every_subcommand() {
    let d = Dir::new();
    let r = d.run(&["man", "--dir", "man1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let pages: Vec<&str> = r.stdout.lines().collect();
    for page in [
        "termtrail.1",
        "termtrail-rec.1",
        "termtrail-grep.1",
        "termtrail-policy-check.1",
    ] {
        assert!(
            pages.iter().any(|p| p.ends_with(&format!("/{page}"))),
            "{page}: {pages:?}"
        );
    }
    // Each page is roff that groff renders without a warning; `man -l`
    // (groff itself where man is not installed) shows one as a reader
    // would see it. Without groff only the pages' form is checked.
    let has_groff = crate::util::run(&mut d.shell("command -v groff"), b"").code == 0;
    for page in &pages {
        let text = std::fs::read_to_string(d.path().join(page)).unwrap();
        assert!(text.contains(".TH ") && text.is_ascii(), "{page}");
        if has_groff {
            let check = format!("groff -man -Tutf8 -ww -z {page}");
            let out = crate::util::run(&mut d.shell(&check), b"");
            assert!(out.code == 0 && out.stderr.is_empty(), "{page}: {out:?}");
        }
    }
    if has_groff {
        let show = "if command -v man >/dev/null; then MANPAGER=cat MANWIDTH=80 man -l man1/termtrail-rec.1; else groff -man -Tutf8 man1/termtrail-rec.1; fi";
        let shown = crate::util::run(&mut d.shell(show), b"");
        assert_eq!(shown.code, 0, "{shown:?}");
        let plain = shown.stdout.replace(['\u{2010}', '\u{2212}'], "-");
        assert!(plain.contains("--sign-key"), "{plain}");
        assert!(plain.contains("SIGNING"), "{plain}");
    }
    // Pages are replaced only with --overwrite.
    let again = d.run(&["man", "--dir", "man1"]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(again.stderr.contains("--overwrite"), "{again:?}");
    assert_eq!(d.run(&["man", "--dir", "man1", "--overwrite"]).code, 0);
    let stdout_page = d.run(&["man"]);
    assert!(
        stdout_page.stdout.starts_with(".ie") || stdout_page.stdout.contains(".TH termtrail 1")
    );
}

#[test]
fn a_file_that_is_not_a_recording_gets_one_error_everywhere() {
    let d = Dir::new();
    let text = "hello world, not a recording\n";
    std::fs::write(d.join("notes.txt"), text).unwrap();
    // A compressed README starts like a recording (zstd) and is none either.
    let zst = zstd::encode_all(text.as_bytes(), 3).unwrap();
    std::fs::write(d.join("notes.txt.zst"), zst).unwrap();
    for file in ["notes.txt", "notes.txt.zst"] {
        let want = format!(
            "termtrail: {file}: not a recording (neither a termtrail .cast.zst nor an asciicast file)\n"
        );
        for args in [
            &["verify", file][..],
            &["snapshot", file, "--at", "0"],
            &["play", file],
            &["ls", file],
            &["export", file],
            &["export", file, "-o", "out.cast"],
            &["grep", "x", file],
        ] {
            let r = d.run(args);
            assert_eq!(r.code, 2, "{args:?}: {r:?}");
            // grep goes on with other recordings: it says so.
            let want = if args[0] == "grep" {
                want.replace('\n', "; skipped\n")
            } else {
                want.clone()
            };
            assert_eq!(r.stderr, want, "{args:?}: {r:?}");
            assert_eq!(r.stdout, "", "{args:?}: errors go to stderr: {r:?}");
        }
    }
    // --json keeps its one object per file on stdout, with the same words.
    let r = d.run(&["verify", "--json", "notes.txt"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("\"reason\":\"not-a-recording\""), "{r:?}");
    assert!(
        r.stdout
            .contains("neither a termtrail .cast.zst nor an asciicast file"),
        "{r:?}"
    );
}

/// The subcommands that take a recording, run on `file`.
fn reading_commands(file: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["verify", file],
        vec!["snapshot", file, "--at", "0"],
        vec!["play", file],
        vec!["ls", file],
        vec!["export", file],
        vec!["export", file, "-o", "out.cast"],
        vec!["export", file, "--allow-tampered", "-o", "out.cast"],
        vec!["grep", "x", file],
        vec!["recover", file],
        vec!["import", file, "-o", "out.cast.zst"],
    ]
}

/// Found by an independent check of issue 16: zstd holding JSON that is
/// not a recording got "cannot index", "not a readable recording" and
/// "cannot export", and was called "a zstd-compressed asciicast file"; a
/// `.cast` compressed with zstd got the same, and `import` of it a JSON
/// parser's error.
#[test]
fn compressed_files_that_are_not_recordings_get_one_error_everywhere() {
    let d = Dir::new();
    let json = zstd::encode_all(&b"{\"a\":1}\n"[..], 3).unwrap();
    std::fs::write(d.join("x.cast.zst"), json).unwrap();
    let cast = "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.5, \"o\", \"hi\\r\\n\"]\n";
    let zst = zstd::encode_all(cast.as_bytes(), 3).unwrap();
    std::fs::write(d.join("demo.cast.zst"), zst).unwrap();
    for (file, why) in [
        (
            "x.cast.zst",
            "not a recording (neither a termtrail .cast.zst nor an asciicast file)",
        ),
        (
            "demo.cast.zst",
            "not a recording: a zstd-compressed asciicast file, not a termtrail one (`zstd -d` it, then `termtrail import` seals it)",
        ),
    ] {
        for args in reading_commands(file) {
            let r = d.run(&args);
            assert_eq!(r.code, 2, "{args:?}: {r:?}");
            let skipped = if args[0] == "grep" { "; skipped" } else { "" };
            assert_eq!(
                r.stderr,
                format!("termtrail: {file}: {why}{skipped}\n"),
                "{args:?}: {r:?}"
            );
            assert_eq!(r.stdout, "", "{args:?}: {r:?}");
            assert!(!d.join("out.cast").exists() && !d.join("out.cast.zst").exists());
        }
        let r = d.run(&["verify", "--json", file]);
        assert!(r.stdout.contains("\"reason\":\"not-a-recording\""), "{r:?}");
        assert!(r.stdout.contains(why), "{r:?}");
    }
    // What the hint says to do works.
    let plain = zstd::decode_all(&std::fs::read(d.join("demo.cast.zst")).unwrap()[..]).unwrap();
    std::fs::write(d.join("demo.cast"), plain).unwrap();
    let r = d.run(&["import", "demo.cast", "-o", "sealed.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("(1 event, 1 chunk)"), "{r:?}");
    // A recording given to import is named as one.
    let r = d.run(&["import", "sealed.cast.zst", "-o", "again.cast.zst"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        r.stderr,
        "termtrail: sealed.cast.zst: already a termtrail recording; nothing to import (`termtrail verify` checks it)\n"
    );
}

#[test]
fn listen_without_a_host_says_the_expected_form() {
    let d = Dir::new();
    for cmd in [
        &["serve", "--no-auth"][..],
        &["proxy", "--upstream", "ws://127.0.0.1:1"],
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--listen", "8765"]);
        let r = d.run(&args);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("HOST:PORT"), "{r:?}");
        assert!(r.stderr.contains("127.0.0.1:8765"), "{r:?}");
        assert!(!r.stderr.contains("invalid socket address"), "{r:?}");
    }
}

/// The log of a `serve` started and stopped at once, with stderr a pipe
/// (`tty` false) or a terminal (`script`), NO_COLOR set or not.
fn serve_log(d: &Dir, tty: bool, no_color: bool) -> String {
    let serve = "timeout -s INT 2 \"$TT\" serve --no-auth --listen 127.0.0.1:0 --store st";
    let script = if tty {
        format!("script -qec '{serve}' /dev/null")
    } else {
        format!("{serve} 2>&1")
    };
    let mut c = d.shell(&script);
    c.env_remove("NO_COLOR");
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let r = crate::util::run(&mut c, b"");
    assert!(r.stdout.contains("shutting down"), "{r:?}");
    r.stdout
}

#[test]
fn logs_have_no_colour_off_a_terminal_or_with_no_color() {
    let d = Dir::new();
    // The three hosts run at once (each lives 2 s).
    let d = &d;
    let [pipe, no_color, tty] = std::thread::scope(|s| {
        [(false, false), (true, true), (true, false)]
            .map(|(tty, nc)| s.spawn(move || serve_log(d, tty, nc)))
            .map(|h| h.join().unwrap())
    });
    assert!(!pipe.contains('\x1b'), "colour in a pipe: {pipe:?}");
    assert!(
        !no_color.contains('\x1b'),
        "colour despite NO_COLOR: {no_color:?}"
    );
    // At a terminal without NO_COLOR the levels are coloured.
    assert!(tty.contains("\x1b["), "no colour at a terminal: {tty:?}");
}

/// Found by an independent check of issue 16: writing to a closed pipe or
/// a full disk ended `man --dir` and `completions` with a panic, and
/// `man --dir … | head -1` left most pages unwritten.
#[test]
fn a_closed_pipe_or_a_full_disk_is_an_error_not_a_panic() {
    let d = Dir::new();
    let sh = |cmd: &str| {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(cmd)
            .current_dir(d.path())
            .env("TT", crate::util::bin())
            .output()
            .unwrap()
    };
    let out = sh(r#""$TT" man --dir pages | head -1; echo "rc=${PIPESTATUS[0]}""#);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.ends_with("rc=0\n"), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let pages = std::fs::read_dir(d.join("pages")).unwrap().count();
    assert!(pages > 15, "every page written: {pages}");
    let out = sh(r#"(sleep 0.3; "$TT" completions zsh) | true; echo "rc=${PIPESTATUS[0]}""#);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("rc=0\n"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let out = sh(r#""$TT" completions bash > /dev/full; echo "rc=$?""#);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("rc=2\n"),
        "{stderr}"
    );
    assert!(stderr.contains("writing to stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Found by the same check: `--chunk-ms` took values the recorder then
/// refused after its banner (exit 125, with a hint about disk space).
#[test]
fn chunk_ms_out_of_range_is_refused_before_anything_starts() {
    let d = Dir::new();
    // Without -q, so the banner would show: it does for a good value.
    let rec = |chunk_ms: &str| {
        d.run(&[
            "rec",
            "--headless",
            "--chunk-ms",
            chunk_ms,
            "-o",
            "c.cast.zst",
            "--",
            "true",
        ])
    };
    let good = rec("10ms");
    assert_eq!(good.code, 0, "{good:?}");
    assert!(good.stderr.contains(":::"), "the banner: {good:?}");
    std::fs::remove_file(d.join("c.cast.zst")).unwrap();
    for bad in ["1.5", "9", "2m"] {
        let r = rec(bad);
        assert_eq!(r.code, 2, "{bad}: {r:?}");
        assert!(r.stderr.contains("from 10ms to 60s"), "{bad}: {r:?}");
        assert!(!r.stderr.contains(":::"), "no banner: {r:?}");
        assert!(!d.join("c.cast.zst").exists());
    }
}

/// Found by the same check: export's extension was case-sensitive and a
/// directory given as -o was called a file without an extension.
#[test]
fn export_extensions_ignore_case_and_a_directory_is_named_as_one() {
    let d = Dir::new();
    let r = d.rec("x.cast.zst", "echo hello there\nexit\n");
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.run(&["export", "x.cast.zst", "-o", "OUT.TXT"]);
    assert_eq!(r.code, 0, "{r:?}");
    let txt = std::fs::read_to_string(d.join("OUT.TXT")).unwrap();
    assert!(
        txt.contains("hello there") && !txt.contains("\"version\""),
        "{txt}"
    );
    std::fs::create_dir(d.join("outdir")).unwrap();
    let r = d.run(&["export", "x.cast.zst", "-o", "outdir"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("outdir is a directory"), "{r:?}");
}

/// Found by an independent check of finding 12: a `.cast` whose header
/// does not read got five wordings from five subcommands.
#[test]
fn a_damaged_asciicast_file_gets_one_error_everywhere() {
    let d = Dir::new();
    std::fs::write(d.join("bad.cast"), "{\"version\":3}\n").unwrap();
    let want = "termtrail: bad.cast: not a valid asciicast file: line 1: invalid asciicast header: missing field `term`\n";
    for args in [
        &["verify", "bad.cast"][..],
        &["snapshot", "bad.cast", "--at", "0"],
        &["ls", "bad.cast"],
        &["export", "bad.cast"],
        &["grep", "x", "bad.cast"],
    ] {
        let r = d.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert_eq!(r.stderr, want, "{args:?}: {r:?}");
    }
}

/// Found by an independent check of issue 16: `export --allow-tampered`
/// of a recording damaged in its header wrote an empty OUT and exited 1.
#[test]
fn a_header_too_damaged_to_export_leaves_no_output() {
    let d = Dir::new();
    let cast = "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.5, \"o\", \"hi\\r\\n\"]\n";
    std::fs::write(d.join("demo.cast"), cast).unwrap();
    let r = d.run(&["import", "demo.cast", "-o", "demo.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut bytes = std::fs::read(d.join("demo.cast.zst")).unwrap();
    bytes[12] ^= 0x20; // inside the first frame: the header's
    std::fs::write(d.join("demo.cast.zst"), bytes).unwrap();
    let r = d.run(&["verify", "demo.cast.zst"]);
    assert_eq!(r.code, 1, "{r:?}");
    for format in ["cast-v3", "txt", "html"] {
        let r = d.run(&[
            "export",
            "demo.cast.zst",
            "--allow-tampered",
            "--format",
            format,
            "-o",
            "out.x",
        ]);
        assert_eq!(r.code, 1, "{format}: {r:?}");
        assert!(!d.join("out.x").exists(), "{format}: nothing written");
        assert!(
            r.stderr.starts_with(
                "termtrail: demo.cast.zst: TAMPERED before its header could be read ("
            ) && r.stderr.contains("; nothing exported; out.x not written"),
            "{format}: {r:?}"
        );
        assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
        // To stdout: nothing either, and the same line.
        let r = d.run(&[
            "export",
            "demo.cast.zst",
            "--allow-tampered",
            "--format",
            format,
        ]);
        assert_eq!((r.code, r.stdout.as_str()), (1, ""), "{format}: {r:?}");
        assert!(r.stderr.contains("nothing exported"), "{r:?}");
    }
    // An earlier export given to --overwrite is left as it was.
    std::fs::write(d.join("old.cast"), "earlier").unwrap();
    let r = d.run(&[
        "export",
        "demo.cast.zst",
        "--allow-tampered",
        "-o",
        "old.cast",
        "--overwrite",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(d.join("old.cast")).unwrap(),
        "earlier"
    );
}

/// Found by the same check: only `man` and `completions` said `writing to
/// stdout` of a full disk; `recover` panicked on one and on a closed pipe.
#[test]
fn every_subcommand_says_writing_to_stdout_and_a_closed_pipe_is_quiet() {
    let d = Dir::new();
    let r = d.rec("x.cast.zst", "echo hello there\nexit\n");
    assert_eq!(r.code, 0, "{r:?}");
    let cast = "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.5, \"o\", \"hi\\r\\n\"]\n";
    std::fs::write(d.join("demo.cast"), cast).unwrap();
    let sh = |cmd: &str| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(cmd)
            .current_dir(d.path())
            .env("TT", crate::util::bin())
            .env("HOME", d.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (stdout, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for cmd in [
        "ls x.cast.zst",
        "ls --json x.cast.zst",
        "grep hello x.cast.zst",
        "grep --json hello x.cast.zst",
        "verify x.cast.zst",
        "verify --json x.cast.zst",
        "export x.cast.zst",
        "export x.cast.zst -o -",
        "export x.cast.zst --format txt",
        "snapshot x.cast.zst --at 1h",
        "recover x.cast.zst",
        "completions bash",
    ] {
        let (stdout, stderr) = sh(&format!(r#""$TT" {cmd} > /dev/full; echo "rc=$?""#));
        assert_eq!(stdout, "rc=2\n", "{cmd}: {stderr}");
        assert_eq!(
            stderr.lines().last(),
            Some("termtrail: writing to stdout: No space left on device"),
            "{cmd}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{cmd}: {stderr}");
        let (stdout, stderr) = sh(&format!(
            r#"(sleep 0.3; "$TT" {cmd}) | true; echo "rc=${{PIPESTATUS[0]}}""#
        ));
        assert_eq!(stdout, "rc=0\n", "{cmd}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("stdout"),
            "{cmd}: {stderr}"
        );
    }
}

/// Found by an independent check of issue 16: `verify --json` gave
/// `last_verified` in µs while every other JSON time is seconds.
#[test]
fn verify_json_times_are_seconds() {
    let d = Dir::new();
    let cast = "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.5, \"o\", \"hi\\r\\n\"]\n[1.25, \"o\", \"there\\r\\n\"]\n";
    std::fs::write(d.join("demo.cast"), cast).unwrap();
    let r = d.run(&["import", "demo.cast", "-o", "demo.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.run(&["verify", "--json", "demo.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["last_verified"], serde_json::json!(1.25), "{v}");
    let ls = d.run(&["ls", "--json", "demo.cast.zst"]);
    let l: serde_json::Value = serde_json::from_str(ls.stdout.trim()).unwrap();
    assert_eq!(l["duration"], v["last_verified"], "one unit: {l}");
}
