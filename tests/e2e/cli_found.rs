//! Small command-line defects an independent tester found after issue 16
//! (its findings 6 to 16, second pass): each test fails on the binary
//! before its fix.

use crate::util::Dir;

/// A recording `s1.cast.zst` in `d` that printed `line` twice.
fn recorded(d: &Dir) {
    let r = d.rec("s1.cast.zst", "echo line; echo line\nexit\n");
    assert_eq!(r.code, 0, "{r:?}");
}

/// Finding 6: `export -f txt -o new.cast.zst` wrote text named .cast.zst,
/// and `-f cast-v3 -o x.cast.zst --overwrite` replaced a recording with
/// plain asciicast.
#[test]
fn a_format_that_contradicts_the_extension_is_refused() {
    let d = Dir::new();
    recorded(&d);
    let r = d.run(&["export", "s1.cast.zst", "-f", "txt", "-o", "new.cast.zst"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        r.stderr,
        "termtrail: new.cast.zst: --format txt goes with .txt, not .cast.zst: name it *.txt\n"
    );
    assert!(!d.join("new.cast.zst").exists());
    std::fs::copy(d.join("s1.cast.zst"), d.join("x.cast.zst")).unwrap();
    let before = std::fs::read(d.join("x.cast.zst")).unwrap();
    let r = d.run(&[
        "export",
        "s1.cast.zst",
        "-f",
        "cast-v3",
        "-o",
        "x.cast.zst",
        "--overwrite",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("goes with .cast, not .cast.zst"), "{r:?}");
    assert_eq!(std::fs::read(d.join("x.cast.zst")).unwrap(), before);
    let r = d.run(&["export", "s1.cast.zst", "-f", "html", "-o", "page.txt"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("goes with .html, not .txt"), "{r:?}");
    // An extension termtrail does not know is the user's choice; one that
    // agrees is fine.
    for (f, out) in [
        ("txt", "notes.log"),
        ("cast-v2", "old.cast"),
        ("txt", "t.TXT"),
    ] {
        let r = d.run(&["export", "s1.cast.zst", "-f", f, "-o", out]);
        assert_eq!(r.code, 0, "{f} {out}: {r:?}");
    }
}

/// Finding 8: `recover --store X @last` got clap's "use '-- --store'" tip,
/// and recover looked names up in the default store only.
#[test]
fn recover_and_upload_take_store_like_the_others() {
    let d = Dir::new();
    std::fs::create_dir(d.join("elsewhere")).unwrap();
    let r = d.rec("elsewhere/s1.cast.zst", "echo hi\nexit\n");
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.run(&["recover", "--store", "elsewhere", "@last"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "elsewhere/s1.cast.zst: already sealed\n");
    let r = d.run(&["upload", "--store", "elsewhere"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("upload needs an S3 store"), "{r:?}");
    let help = d.run(&["recover", "--help"]).stdout;
    assert!(help.contains("--store <DIR|URL>"), "{help}");
}

/// Finding 12: `grep -c -m 0` counted 1 hit and exited 0; ripgrep prints
/// nothing and exits 1.
#[test]
fn max_count_zero_means_no_hits() {
    let d = Dir::new();
    recorded(&d);
    for flags in [&["-c"][..], &[], &["--json"], &["-l"]] {
        let mut args = vec!["grep"];
        args.extend_from_slice(flags);
        args.extend(["-m", "0", "line", "s1.cast.zst"]);
        let r = d.run(&args);
        assert_eq!((r.code, r.stdout.as_str()), (1, ""), "{args:?}: {r:?}");
    }
    let r = d.run(&["grep", "-c", "-m", "1", "line", "s1.cast.zst"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "s1.cast.zst:1\n"), "{r:?}");
}

/// Finding 9: "no such file" had five wordings, some with `(os error 2)`,
/// and `import missing.cast.zst` complained about the output's name.
#[test]
fn a_missing_file_has_one_wording_everywhere() {
    let d = Dir::new();
    let want = "termtrail: ./missing.cast.zst: no such file\n";
    for args in [
        &["verify", "./missing.cast.zst"][..],
        &["export", "./missing.cast.zst"],
        &["snapshot", "--at", "0", "./missing.cast.zst"],
        &["grep", "x", "./missing.cast.zst"],
        &["ls", "./missing.cast.zst"],
        &["recover", "./missing.cast.zst"],
        &["import", "./missing.cast.zst"],
    ] {
        let r = d.run(args);
        assert_eq!((r.code, r.stderr.as_str()), (2, want), "{args:?}");
    }
    let r = d.run(&["import", "missing.cast"]);
    assert_eq!(r.stderr, "termtrail: missing.cast: no such file\n");
    // A name that is no file and no recording of the store says both.
    let r = d.run(&["verify", "missing.cast.zst"]);
    assert!(
        r.stderr
            .starts_with("termtrail: missing.cast.zst: no such file, and no recording in "),
        "{r:?}"
    );
}

/// Finding 10: system errors with `(os error N)`, a dangling link replaced
/// without --overwrite (or refused with exit 125), a signing key not said
/// to be one, and two wordings for a file that exists.
#[test]
fn files_that_exist_or_are_missing_are_said_plainly() {
    let d = Dir::new();
    recorded(&d);
    std::fs::write(d.join("k1"), "x").unwrap();
    let r = d.run(&["man", "--dir", "k1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stderr.contains("os error"), "{r:?}");
    assert!(
        r.stderr.starts_with("termtrail: k1: not a directory"),
        "{r:?}"
    );
    // A link to a missing file exists: -o is refused without --overwrite.
    std::os::unix::fs::symlink("/nonexistent/t.cast.zst", d.join("link.cast.zst")).unwrap();
    let r = d.run_with_input(
        &[
            "rec",
            "--headless",
            "-q",
            "-o",
            "link.cast.zst",
            "--",
            "bash",
        ],
        b"exit\n",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("link.cast.zst exists")
            && r.stderr.contains("use --overwrite to replace it"),
        "{r:?}"
    );
    std::os::unix::fs::symlink("/nonexistent/l2.cast", d.join("l2.cast")).unwrap();
    let r = d.run(&["export", "s1.cast.zst", "-o", "l2.cast"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("l2.cast exists"), "{r:?}");
    assert!(
        std::fs::symlink_metadata(d.join("l2.cast"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let r = d.run(&["export", "s1.cast.zst", "-o", "l2.cast", "--overwrite"]);
    assert_eq!(r.code, 0, "{r:?}");
    // The signing key is said to be one, and where it was named.
    let r = d.run_with_input(
        &[
            "rec",
            "--headless",
            "-q",
            "--sign-key",
            "nokey",
            "-o",
            "k.cast.zst",
            "--",
            "bash",
        ],
        b"exit\n",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        r.stderr,
        "termtrail: nokey: signing key (named by --sign-key): no such file\n"
    );
    let conf = d.join("conf/termtrail");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("config.toml"), "sign_key = '~/nokey'\n").unwrap();
    let mut c = d.cmd(&["rec", "--headless", "-q", "-o", "k.cast.zst", "--", "bash"]);
    c.env("XDG_CONFIG_HOME", d.join("conf"));
    let r = crate::util::run(&mut c, b"exit\n");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("nokey: signing key (named by sign_key in ")
            && r.stderr
                .ends_with("conf/termtrail/config.toml): no such file\n"),
        "{r:?}"
    );
    // One wording for a file that exists.
    let r = d.run(&["man", "--dir", "pages"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.run(&["man", "--dir", "pages"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .ends_with(" exists; use --overwrite to replace it\n"),
        "{r:?}"
    );
}

/// Finding 11: `-o` and `--overwrite` sat under "Options" in export,
/// import, keygen and man; docs/cli.md puts them under "Output".
#[test]
fn output_flags_are_under_output_in_every_help() {
    let d = Dir::new();
    for (cmd, flags) in [
        ("export", &["--output", "--overwrite"][..]),
        ("import", &["--output", "--overwrite"]),
        ("keygen", &["--overwrite"]),
        ("man", &["--dir", "--overwrite"]),
        ("rec", &["--output", "--overwrite"]),
    ] {
        let help = d.run(&[cmd, "--help"]).stdout;
        let output = crate::cli::flags_under(&help, "Output");
        for f in flags {
            assert!(output.contains(&f.to_string()), "{cmd} {f}:\n{help}");
        }
    }
}

/// Finding 14: `verify --store` on an empty directory printed "journal:
/// intact — 0 recordings accounted for…" on stdout; docs/cli.md promises
/// `termtrail: no recordings in STORE` on stderr, exit 0, as `ls` says.
#[test]
fn verify_of_an_empty_store_says_so_as_ls_does() {
    let d = Dir::new();
    std::fs::create_dir(d.join("e")).unwrap();
    for cmd in ["verify", "ls"] {
        let r = d.run(&[cmd, "--store", "e"]);
        assert_eq!(
            (r.code, r.stdout.as_str(), r.stderr.as_str()),
            (0, "", "termtrail: no recordings in e\n"),
            "{cmd}"
        );
    }
    // --json keeps its summary object.
    let r = d.run(&["verify", "--store", "e", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\"journal\""), "{r:?}");
}

/// Finding 16: the nits, each said as the rest of the command line says
/// things.
#[test]
fn flag_and_file_errors_say_what_is_wrong() {
    let d = Dir::new();
    recorded(&d);
    let err = |args: &[&str]| {
        let r = d.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{args:?}: {r:?}");
        r.stderr
    };
    let e = err(&["grep", "-e", "x", "-e", "y(", "s1.cast.zst"]);
    assert!(
        e.starts_with("termtrail: invalid regex -e 'y(': unclosed group"),
        "{e}"
    );
    let e = err(&["grep", r"\p{Foo}", "s1.cast.zst"]);
    assert!(
        e.starts_with(r"termtrail: invalid regex '\p{Foo}': "),
        "{e}"
    );
    let r = d.run(&["grep", "-A", "x", "line", "s1.cast.zst"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("takes a number of lines"), "{r:?}");
    assert!(!r.stderr.contains("invalid digit"), "{r:?}");
    // A configuration file that is not UTF-8 is named, and said to be one.
    std::fs::create_dir_all(d.join("conf/termtrail")).unwrap();
    std::fs::write(d.join("conf/termtrail/config.toml"), b"store = \"\xff\"\n").unwrap();
    let mut c = d.cmd(&["ls"]);
    c.env("XDG_CONFIG_HOME", d.join("conf"));
    let r = crate::util::run(&mut c, b"");
    assert!(
        r.stderr.ends_with("conf/termtrail/config.toml: not UTF-8 text; the configuration file must be UTF-8 (TOML)\n"),
        "{r:?}"
    );
    // A value that starts with '-' is the flag's value, not clap's tip.
    let e = err(&["ls", "--since", "-5m", "s1.cast.zst"]);
    assert!(e.starts_with("termtrail: --since: bad time \"-5m\""), "{e}");
    assert!(!e.contains("'-- -5'"), "{e}");
    let r = d.run(&["import", "-q", "missing.cast"]);
    assert_eq!(r.stderr, "termtrail: missing.cast: no such file\n");
    std::fs::write(
        d.join("n.cast"),
        "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.1, \"o\", \"hi\\r\\n\"]\n",
    )
    .unwrap();
    let r = d.run(&["import", "-q", "n.cast"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:?}");
    let r = d.run(&["exec", "--timeout", "2h", "ws://127.0.0.1:1", "--", "true"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("2h: at most 1h"), "{r:?}");
    let e = err(&["snapshot", "--at", "2020-01-01T00:00:00Z", "s1.cast.zst"]);
    assert!(
        e.starts_with("termtrail: --at: \"2020-01-01T00:00:00Z\" is before"),
        "{e}"
    );
    // Copies of one recording share its id: the hint says to name a path.
    std::fs::create_dir(d.join("st")).unwrap();
    for n in ["a", "b"] {
        std::fs::copy(d.join("s1.cast.zst"), d.join(&format!("st/{n}.cast.zst"))).unwrap();
    }
    let ls = d.run(&["ls", "st"]).stdout;
    let id = ls
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    let e = err(&["verify", "--store", "st", &id]);
    assert!(
        e.contains("ambiguous id prefix") && e.contains("name one by its path"),
        "{e}"
    );
    // --force still works, and says what it is called now.
    let r = d.run(&["export", "s1.cast.zst", "--force", "-o", "f.txt"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stderr,
        "termtrail: note: --force is now --allow-tampered\n"
    );
}

/// Finding 7: `ls` rows were 100 columns in an 80-column terminal, and a
/// store's long names were cut in the middle (`2026/12…Z.cast.zst`), so
/// they could not be copied into another command.
#[test]
fn ls_fits_the_terminal_by_its_title_and_never_cuts_a_name() {
    let d = Dir::new();
    let r = d.run(&[
        "rec",
        "--headless",
        "-q",
        "--store",
        "store",
        "--title",
        "a rather long title for this recording here",
        "--",
        "bash",
        "--norc",
        "--noprofile",
        "-c",
        "echo hi",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let name = crate::util::recordings_under(&d.join("store"))[0]
        .strip_prefix(d.join("store"))
        .unwrap()
        .display()
        .to_string();
    assert!(name.len() > 40, "{name}");
    for cols in ["80", "100", "200"] {
        let mut c = d.cmd(&["ls", "--store", "store"]);
        c.env("COLUMNS", cols);
        let r = crate::util::run(&mut c, b"");
        assert_eq!(r.code, 0, "{r:?}");
        let row = r.stdout.lines().nth(1).unwrap();
        assert!(row.ends_with(&format!("  {name}")), "COLUMNS={cols}: {row}");
        let width: usize = cols.parse().unwrap();
        let title_whole = row.contains("a rather long title for this recording here");
        // The title gives way first; with room, it is shown (up to 30).
        if width <= 100 {
            assert!(!title_whole && row.contains("a r"), "COLUMNS={cols}: {row}");
        } else {
            assert!(row.contains("a rather long title for this …"), "{row}");
        }
    }
}

/// Finding 16 (last nit): on a terminal, rec's banner said "exit the shell
/// to stop" when it recorded a command.
#[test]
fn rec_says_how_a_recording_of_a_command_stops() {
    let d = Dir::new();
    let t = crate::util::Tmux::new(&d);
    t.start_in(&d, "$TT rec -o c.cast.zst -- sleep 1; echo rc=$?");
    let screen = t.wait_for("rc=");
    assert!(
        screen.contains("(Ctrl+\\ adds a marker; it stops when the command ends)"),
        "{screen}"
    );
    assert!(!screen.contains("exit the shell"), "{screen}");
}
