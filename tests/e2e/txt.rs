//! `export --format txt` against asciinema 3's `asciinema convert -f txt`
//! (issue 16: "txt export identical to `asciinema convert -f txt`"): the
//! samples, and recordings made here for what a terminal does to text —
//! narrowing, widening, rows that come and go, wide characters, the
//! alternate screen, lines longer than the scrollback, bytes that are not
//! UTF-8.

use std::path::{Path, PathBuf};

use crate::util::{Dir, Rng, peer};

/// A plain asciicast v2 file `name` of a `cols`×`rows` terminal with
/// `events` (code, data), one every 0.1 s.
fn cast(d: &Dir, name: &str, (cols, rows): (u16, u16), events: &[(&str, &str)]) -> PathBuf {
    let mut text = format!("{{\"version\": 2, \"width\": {cols}, \"height\": {rows}}}\n");
    for (i, (code, data)) in events.iter().enumerate() {
        let data = serde_json::to_string(data).unwrap();
        let time = (i + 1) as f64 / 10.0;
        text.push_str(&format!("[{time:.1}, \"{code}\", {data}]\n"));
    }
    let path = d.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Our `export --format txt` of `file`, asserted identical to asciinema 3's
/// `convert -f txt` of the same recording (of its cast-v3 export, for a
/// `.cast.zst`).
fn txt_as_asciinema3(a3: &str, d: &Dir, file: &Path) -> String {
    let name = file.to_string_lossy();
    let plain = if name.ends_with(".cast.zst") {
        let cast = d.run(&["export", &name, "--format", "cast-v3"]);
        assert!(cast.code == 0 || cast.code == 3, "{name}: {cast:?}");
        std::fs::write(d.join("x.cast"), &cast.stdout).unwrap();
        d.join("x.cast")
    } else {
        file.to_path_buf()
    };
    let want = asciinema3_txt(a3, d, &plain);
    let got = d.run(&["export", &name, "--format", "txt"]);
    assert!(got.code == 0 || got.code == 3, "{name}: {got:?}");
    assert_eq!(
        got.stdout, want,
        "{name}: txt export differs from asciinema 3's"
    );
    got.stdout
}

/// `asciinema convert -f txt` (asciinema 3) of `cast`, a plain asciicast.
fn asciinema3_txt(a3: &str, d: &Dir, cast: &Path) -> String {
    let out = d.join("a3.txt");
    let _ = std::fs::remove_file(&out);
    let r = std::process::Command::new(a3)
        .args(["convert", "-f", "txt"])
        .arg(cast)
        .arg(&out)
        .env("HOME", d.path())
        .env("ASCIINEMA_CONFIG_HOME", d.join("cfg"))
        .output()
        .expect("run asciinema 3");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    std::fs::read_to_string(&out).unwrap()
}

#[test]
fn txt_export_is_asciinema_3s_transcript() {
    let Some(a3) = peer("TERMTRAIL_ASCIINEMA3") else {
        return;
    };
    let d = Dir::new();
    // A session that ends with its screen scrolled clear, and a plain cast
    // whose terminal shrinks and grows again: blank lines asciinema 3's
    // transcript does not have came from both.
    d.rec(
        "blank.cast.zst",
        "echo first; printf 'x\\n\\n\\n'; sleep 0.05; printf '\\n%.0s' $(seq 1 40)",
    );
    let resize = [
        r#"{"version": 2, "width": 20, "height": 5}"#,
        r#"[0.1, "o", "one\r\ntwo\r\n"]"#,
        r#"[0.2, "r", "10x3"]"#,
        r#"[0.3, "o", "three\r\nfour\r\nfive\r\n"]"#,
        r#"[0.4, "r", "30x6"]"#,
        r#"[0.5, "o", "six\r\n\r\n\r\n\r\n"]"#,
    ];
    std::fs::write(d.join("resize.cast"), resize.join("\n") + "\n").unwrap();
    // A screen cleared (as `clear` does): asciinema 3.2 drops what it showed.
    let clear = cast(
        &d,
        "clear.cast",
        (20, 5),
        &[("o", "one\r\ntwo\r\n\x1b[H\x1b[2J\x1b[3Jthree\r\n")],
    );
    let mut files = vec![d.join("blank.cast.zst"), d.join("resize.cast"), clear];
    // Every sample that verifies intact (sealed or not), and the plain casts.
    for entry in std::fs::read_dir(crate::util::samples()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy().into_owned();
        let intact = name.ends_with(".cast.zst") && matches!(d.run(&["verify", &name]).code, 0 | 3);
        if intact || name.ends_with(".cast") {
            files.push(path);
        }
    }
    assert!(files.len() >= 8, "{files:?}");
    for file in &files {
        txt_as_asciinema3(&a3, &d, file);
    }
}

/// The independent check's case: a 36-column line, then the terminal
/// narrows to 10 columns. The txt kept 10 characters of it.
#[test]
fn a_narrower_terminal_keeps_the_whole_line() {
    let Some(a3) = peer("TERMTRAIL_ASCIINEMA3") else {
        return;
    };
    let d = Dir::new();
    let line = "0123456789abcdefghijklmnopqrstuvwxyz";
    let f = cast(
        &d,
        "narrow.cast",
        (40, 5),
        &[("o", &format!("{line}\r\n")), ("r", "10x5"), ("o", "$ ")],
    );
    assert_eq!(txt_as_asciinema3(&a3, &d, &f), format!("{line}\n$\n"));
}

/// A wider terminal rejoins the rows a line was wrapped into: a program
/// that redraws its first row after the resize replaces the whole line.
#[test]
fn a_wider_terminal_rejoins_what_it_wrapped() {
    let Some(a3) = peer("TERMTRAIL_ASCIINEMA3") else {
        return;
    };
    let d = Dir::new();
    let f = cast(
        &d,
        "widen.cast",
        (10, 4),
        &[
            ("o", "0123456789abcdef\r\nnext\r\n"),
            ("r", "40x4"),
            ("o", "\x1b[H\x1b[2Kredrawn\x1b[4;1H"),
        ],
    );
    assert_eq!(txt_as_asciinema3(&a3, &d, &f), "redrawn\nnext\n");
}

/// Fewer rows push the rows above the cursor into the scrollback (and drop
/// empty ones below it); more rows pull them back, where a program can
/// write over them.
#[test]
fn rows_that_go_and_come_back() {
    let Some(a3) = peer("TERMTRAIL_ASCIINEMA3") else {
        return;
    };
    let d = Dir::new();
    let f = cast(
        &d,
        "rows.cast",
        (20, 6),
        &[
            ("o", "a\r\nb\r\nc\r\nd\r\n"),
            ("r", "20x3"),
            ("r", "20x6"),
            ("o", "\x1b[1;1Hfirst\x1b[6;1H"),
        ],
    );
    assert_eq!(txt_as_asciinema3(&a3, &d, &f), "first\nb\nc\nd\n");
}

/// A line of wide characters wraps where the last column cannot take one:
/// still one line. Recorded, with bytes that are not UTF-8 in it (U+FFFD
/// in the transcript, from the `b` event's recording as from asciinema's
/// reading of the `o` event's string).
#[test]
fn wide_characters_and_invalid_bytes_in_a_wrapping_line() {
    let Some(a3) = peer("TERMTRAIL_ASCIINEMA3") else {
        return;
    };
    let d = Dir::new();
    let r = d.rec_with(
        "cjk.cast.zst",
        &["--size", "7x5"],
        "printf '\\xff日本語です漢字\\n'; printf 'ok\\xfe\\xfd\\n'",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let txt = txt_as_asciinema3(&a3, &d, &d.join("cjk.cast.zst"));
    // The column 漢 leaves at the end of the second row is part of the line.
    assert!(txt.contains("\u{FFFD}日本語です漢 字\n"), "{txt:?}");
    assert!(txt.contains("ok\u{FFFD}\u{FFFD}\n"), "{txt:?}");
}

/// A resize behind a full-screen program: the shell's screen is reflowed
/// when the program leaves (nothing lost); a recording that ends inside
/// the program ends with the program's screen, reflowed too (rows pushed
/// above its top would be dropped: the alternate screen keeps none).
#[test]
fn the_alternate_screen_and_resizes() {
    let Some(a3) = peer("TERMTRAIL_ASCIINEMA3") else {
        return;
    };
    let d = Dir::new();
    let line = "0123456789abcdefghijklmnopqrstuvwxyz";
    let f = cast(
        &d,
        "left.cast",
        (40, 4),
        &[
            ("o", &format!("$ cat long\r\n{line}\r\n$ vim\r\n")),
            ("o", "\x1b[?1049h\x1b[Hediting"),
            ("r", "10x4"),
            ("o", "\x1b[?1049l$ exit\r\n"),
        ],
    );
    let want = format!("$ cat long\n{line}\n$ vim\n$ exit\n");
    assert_eq!(txt_as_asciinema3(&a3, &d, &f), want);
    let f = cast(
        &d,
        "open.cast",
        (40, 4),
        &[
            ("o", &format!("$ top\r\n\x1b[?1049h\x1b[H{line}\x1b[H")),
            ("r", "10x4"),
        ],
    );
    assert_eq!(txt_as_asciinema3(&a3, &d, &f), format!("{line}\n"));
}

/// A line longer than the screen and its 100 lines of scrollback, then a
/// narrower terminal: the rows that left are written as they left, the
/// rest reflowed, one line in the end.
#[test]
fn a_line_longer_than_the_scrollback_then_narrower() {
    let Some(a3) = peer("TERMTRAIL_ASCIINEMA3") else {
        return;
    };
    let d = Dir::new();
    let long: String = (0..4000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let f = cast(
        &d,
        "long.cast",
        (30, 5),
        &[
            ("o", &format!("{long}\r\n")),
            ("r", "7x5"),
            ("o", "done\r\n"),
        ],
    );
    assert_eq!(txt_as_asciinema3(&a3, &d, &f), format!("{long}\ndone\n"));
}

/// The output generator on the e2e tests' [`Rng`].
impl Rng {
    /// One piece of output: text (wide characters too), line ends, and the
    /// sequences that move text around: cursor moves, erases, scrolling,
    /// margins, insert and delete, the alternate screen, a hard reset.
    fn output(&mut self) -> String {
        let n = 1 + self.below(6);
        match self.below(24) {
            0..=4 => {
                let words = [
                    "ab",
                    "cdefgh",
                    "  ",
                    "ijklmnopqrstu",
                    "日本語",
                    "漢字",
                    "x\u{FFFD}y",
                ];
                (0..n).map(|_| words[self.below(words.len())]).collect()
            }
            5..=7 => "\r\n".repeat(n),
            8 => "line\r\n".repeat(40 * n),
            9 => ["\r", "\n", "\t", "\x08"][self.below(4)].to_string(),
            10 => format!(
                "\x1b[{}{}",
                n,
                ["A", "B", "C", "D", "G", "d"][self.below(6)]
            ),
            11 => format!("\x1b[{};{}H", 1 + self.below(12), 1 + self.below(50)),
            12 => format!("\x1b[{}K", self.below(3)),
            13 => format!("\x1b[{}J", self.below(4)),
            14 => format!(
                "\x1b[{}{}",
                n,
                ["L", "M", "S", "T", "@", "P", "X"][self.below(7)]
            ),
            15 => format!("\x1b[{};{}r", 1 + self.below(4), 2 + self.below(8)),
            16 => "\x1b[r".to_string(),
            17 => ["\x1bM", "\x1bD", "\x1bE", "\x1b7", "\x1b8"][self.below(5)].to_string(),
            18 | 19 => ["\x1b[?1049h", "\x1b[?1049l", "\x1b[?1047h", "\x1b[?1047l"][self.below(4)]
                .to_string(),
            20 => ["\x1b[?7l", "\x1b[?7h", "\x1b[4h", "\x1b[4l"][self.below(4)].to_string(),
            21 => "\x1bc".to_string(),
            _ => "0123456789".repeat(n),
        }
    }
}

/// Prints the recording a failing case was made of (its directory goes).
struct ShowOnFailure<'a>(&'a Path);

impl Drop for ShowOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(self.0).unwrap_or_default();
            eprintln!("{}:\n{text}", self.0.display());
        }
    }
}

/// How many random recordings: `TERMTRAIL_TXT_CASES`, else 150.
fn cases() -> u64 {
    std::env::var("TERMTRAIL_TXT_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(150)
}

/// Random recordings of the pieces above, with resizes (narrower, wider,
/// fewer and more rows, down to 1×1) among them: each one's txt is
/// asciinema 3's.
#[test]
fn random_recordings_are_asciinema_3s_transcripts() {
    let Some(a3) = peer("TERMTRAIL_ASCIINEMA3") else {
        return;
    };
    let d = Dir::new();
    for case in 0..cases() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (case + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
        // At least 2 columns: asciinema 3.2 aborts on a wide character in
        // one (see `screen::MIN_COLS`).
        let size = |rng: &mut Rng| (2 + rng.below(40) as u16, 1 + rng.below(10) as u16);
        let (cols, rows) = size(&mut rng);
        let mut events = Vec::new();
        for _ in 0..1 + rng.below(30) {
            if rng.below(5) == 0 {
                let (c, r) = size(&mut rng);
                events.push(("r", format!("{c}x{r}")));
            } else {
                events.push(("o", rng.output()));
            }
        }
        let events: Vec<(&str, &str)> = events.iter().map(|(c, e)| (*c, e.as_str())).collect();
        let f = cast(&d, &format!("random-{case}.cast"), (cols, rows), &events);
        let _show = ShowOnFailure(&f);
        txt_as_asciinema3(&a3, &d, &f);
    }
}
