//! `verify`, `export`, `import`, `keygen` on good and bad input.

use crate::util::*;

fn recorded(d: &Dir) {
    let r = d.rec(
        "s.cast.zst",
        "for i in $(seq 1 30); do printf '\\033[3%dmline %d\\033[0m\\n' $((i % 8)) $i; done",
    );
    assert_eq!(r.code, 0);
}

#[test]
fn verify_exit_codes_for_bad_files() {
    let d = Dir::new();
    recorded(&d);
    let good = std::fs::read(d.join("s.cast.zst")).unwrap();
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("empty", vec![], 2),
        ("garbage", b"hello world, not a recording".to_vec(), 2),
        (
            "plain",
            b"{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.1, \"o\", \"x\"]\n".to_vec(),
            2,
        ),
        (
            "wrong-version",
            zstd::encode_all(&b"{\"version\": 4}\n"[..], 3).unwrap(),
            2,
        ),
        (
            "zstd-cast",
            zstd::encode_all(
                &b"{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n"[..],
                3,
            )
            .unwrap(),
            2,
        ),
        ("truncated", good[..good.len() / 2].to_vec(), 3),
        ("no-seal", good[..good.len() - 200].to_vec(), 3),
        (
            "flipped",
            {
                let mut g = good.clone();
                g[good.len() / 3] ^= 0x10;
                g
            },
            1,
        ),
        ("appended", [good.clone(), b"more".to_vec()].concat(), 1),
    ];
    for (name, bytes, want) in &cases {
        std::fs::write(d.join(name), bytes).unwrap();
        let r = d.run(&["verify", name]);
        assert_eq!(r.code, *want, "{name}: {r:?}");
        // A verdict is a line on stdout; a file that is not a recording
        // at all is an error line on stderr (issue 16 finding 12).
        let line = if *want == 2 { &r.stderr } else { &r.stdout };
        assert_eq!(line.lines().count(), 1, "one line per file: {r:?}");
        assert!(!r.stderr.contains("panicked"), "{name}: {}", r.stderr);
    }
    // Several files: the worst verdict wins; JSON Lines on request.
    let r = d.run(&[
        "verify",
        "--json",
        "s.cast.zst",
        "truncated",
        "flipped",
        "garbage",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let verdicts: Vec<String> = r
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["verdict"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(verdicts, ["intact", "unsealed", "tampered", "error"]);
    let r = d.run(&["verify", "--json", "flipped"]);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert!(
        v["problems"][0]["file_offset"].is_u64() && v["problems"][0]["message"].is_string(),
        "{v}"
    );
    let r = d.run(&["verify", "--json", "truncated"]);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    // The first half still holds the recording's chunk: verified up to it.
    assert!(
        v["chunks"].as_u64().unwrap() > 0 && v["last_verified"].as_f64().unwrap() > 0.0,
        "{v}"
    );
}

#[test]
fn export_refuses_tampered_unless_allowed_and_marks_it() {
    let d = Dir::new();
    recorded(&d);
    // Change one character of an event and recompress: zstd sees nothing wrong.
    let text = zstd_dc(&d.join("s.cast.zst"));
    let edited = text.replacen("line 7", "LINE 7", 1);
    assert_ne!(text, edited);
    // Keep the original index frame and seal after the recompressed segment.
    let raw = std::fs::read(d.join("s.cast.zst")).unwrap();
    let index_at = raw
        .windows(14)
        .position(|w| w[..4] == [0x5D, 0x2A, 0x4D, 0x18] && &w[8..] == b"TTSEG1")
        .unwrap();
    let mut forged = zstd::encode_all(edited.as_bytes(), 3).unwrap();
    forged.extend_from_slice(&raw[index_at..]);
    std::fs::write(d.join("t.cast.zst"), &forged).unwrap();

    let r = d.run(&["export", "t.cast.zst", "-o", "t.txt"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("tampered") && r.stderr.contains("--allow-tampered"),
        "{}",
        r.stderr
    );
    assert!(
        !d.join("t.txt").exists() && !d.join("t.txt.partial").exists(),
        "no partial output"
    );

    let r = d.run(&[
        "export",
        "t.cast.zst",
        "--allow-tampered",
        "--format",
        "txt",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("UNVERIFIED from here"), "{}", r.stdout);
    assert!(
        r.stdout.contains("LINE 7"),
        "forced export shows what is there: {}",
        r.stdout
    );
    let r = d.run(&["export", "t.cast.zst", "--allow-tampered"]);
    assert!(
        r.stdout.contains("# termtrail: UNVERIFIED from here")
            && r.stdout.contains("\"m\", \"termtrail: UNVERIFIED"),
        "{}",
        r.stdout
    );
}

#[test]
fn signed_recordings_and_required_keys() {
    let d = Dir::new();
    let r = d.run(&["keygen", "k"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.run(&["keygen", "other"]);
    assert_eq!(r.code, 0);
    assert_eq!(d.run(&["keygen", "k"]).code, 2, "never overwrites a key");
    let r = d.run(&[
        "rec",
        "--headless",
        "-q",
        "--sign-key",
        "k",
        "-o",
        "signed.cast.zst",
        "--",
        "echo",
        "hi",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = d.run(&["verify", "--key", "k.pub", "signed.cast.zst"]);
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("signed by key"), "{}", v.stdout);
    let v = d.run(&["verify", "--key", "other.pub", "signed.cast.zst"]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(
        v.stdout.contains("not pinned; REJECTED (key-not-pinned)"),
        "{}",
        v.stdout
    );
    let _ = d.rec("unsigned.cast.zst", "echo hi");
    let v = d.run(&["verify", "--key", "k.pub", "unsigned.cast.zst"]);
    assert_eq!(v.code, 1, "{v:?}");
    let v = d.run(&["verify", "--key", "missing.pub", "unsigned.cast.zst"]);
    assert_eq!(v.code, 2, "{v:?}");
}

#[test]
fn import_rejects_bad_files_with_one_line() {
    let d = Dir::new();
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty.cast", b"", "empty"),
        (
            "v4.cast",
            b"{\"version\": 4}\n",
            "unsupported asciicast version 4",
        ),
        (
            "junk.cast",
            b"\x00\x01garbage\n",
            "junk.cast: not a recording (neither a termtrail .cast.zst nor an asciicast file)",
        ),
        (
            "badline.cast",
            b"{\"version\": 2, \"width\": 80, \"height\": 24}\n[1, \"o\"]\n[2, \"o\", \"x\"]\n",
            "line 2",
        ),
        (
            "badresize.cast",
            b"{\"version\": 2, \"width\": 80, \"height\": 24}\n[1, \"r\", \"80\"]\n",
            "bad resize",
        ),
    ];
    for (name, bytes, msg) in cases {
        std::fs::write(d.join(name), bytes).unwrap();
        let r = d.run(&["import", name]);
        assert_eq!(r.code, 2, "{name}: {r:?}");
        assert!(r.stderr.contains(msg), "{name}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{name}: {}", r.stderr);
        assert!(
            !d.join(&format!("{name}.zst")).exists(),
            "{name}: no output left behind"
        );
    }
}

#[test]
fn huge_lines_are_refused_not_buffered_forever() {
    let d = Dir::new();
    let mut big = b"{\"version\": 2, \"width\": 80, \"height\": 24}\n[1, \"o\", \"".to_vec();
    big.resize(big.len() + (65 << 20), b'a');
    big.extend_from_slice(b"\"]\n");
    std::fs::write(d.join("big.cast"), &big).unwrap();
    let r = d.run(&["import", "big.cast"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("longer than 64 MiB"), "{}", r.stderr);
}

#[test]
fn recover_seals_what_a_killed_recorder_left_and_leaves_damage_alone() {
    let d = Dir::new();
    let samples = samples();
    for f in [
        "damaged-unsealed.cast.zst",
        "damaged-truncated.cast.zst",
        "damaged-edited-event.cast.zst",
    ] {
        std::fs::copy(samples.join(f), d.join(f)).unwrap();
    }
    let before = d.run(&["verify", "damaged-truncated.cast.zst"]);
    assert_eq!(before.code, 3, "{before:?}");
    let r = d.run(&[
        "recover",
        "damaged-unsealed.cast.zst",
        "damaged-truncated.cast.zst",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout.matches("sealed as interrupted").count(),
        2,
        "{r:?}"
    );
    for f in ["damaged-unsealed.cast.zst", "damaged-truncated.cast.zst"] {
        let v = d.run(&["verify", f]);
        assert_eq!(v.code, 0, "{v:?}");
        assert!(
            v.stdout.contains("intact, sealed as interrupted ("),
            "{v:?}"
        );
    }
    // Everything that verified before is still there.
    let after = d.run(&["verify", "--json", "damaged-truncated.cast.zst"]);
    let chunks =
        |s: &str| serde_json::from_str::<serde_json::Value>(s.trim()).unwrap()["chunks"].clone();
    let b = d.run(&[
        "verify",
        "--json",
        &samples.join("damaged-truncated.cast.zst").to_string_lossy(),
    ]);
    assert_eq!(chunks(&after.stdout), chunks(&b.stdout));
    let again = d.run(&["recover", "damaged-unsealed.cast.zst"]);
    assert!(again.stdout.contains("already sealed"), "{again:?}");
    let edited = std::fs::read(d.join("damaged-edited-event.cast.zst")).unwrap();
    let r = d.run(&["recover", "damaged-edited-event.cast.zst"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("does not verify"), "{r:?}");
    assert_eq!(
        std::fs::read(d.join("damaged-edited-event.cast.zst")).unwrap(),
        edited
    );
}

/// A local store `st` with `n` short recordings (`echo rec-I`), one after
/// the other (their keys differ by the recorder's pid, which `rec` puts in
/// the shell id: no need to wait a second between them).
fn store_with_recordings(d: &Dir, n: usize) -> (std::path::PathBuf, String) {
    let store = d.join("st");
    let st = store.to_string_lossy().into_owned();
    for i in 0..n {
        let r = d.run(&[
            "rec",
            "-q",
            "--headless",
            "--store",
            &st,
            "--",
            "echo",
            &format!("rec-{i}"),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    (store, st)
}

#[test]
fn verify_store_finds_a_deleted_or_replaced_recording() {
    let d = Dir::new();
    let (store, st) = store_with_recordings(&d, 4);
    let r = d.run(&["verify", "--store", &st]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("journal: intact — 4 recordings accounted for"),
        "{r:?}"
    );
    // Each recording's header names the journal head before it: the
    // first none, the others seq 0, 1, 2. (Taken from every header, not
    // by file-name order: recordings made in the same second may sort in
    // any order.)
    let recs = recordings_under(&store);
    let mut after: Vec<Option<u64>> = recs
        .iter()
        .map(|f| {
            let header: serde_json::Value =
                serde_json::from_str(zstd_dc(f).lines().next().unwrap()).unwrap();
            header["termtrail"]["after"]["seq"].as_u64()
        })
        .collect();
    after.sort();
    assert_eq!(after, [None, Some(0), Some(1), Some(2)]);
    // ls and grep do not take the journal for recordings.
    let r = d.run(&["grep", "-c", "rec-", &st]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:?}");

    // Replaced: another valid recording under the same key.
    let fake = d.join("fake.cast.zst");
    let r = d.run(&[
        "rec",
        "-q",
        "--headless",
        "-o",
        &fake.to_string_lossy(),
        "--",
        "echo",
        "rec-2",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    std::fs::copy(&fake, &recs[2]).unwrap();
    let r = d.run(&["verify", "--store", &st]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("REPLACED"), "{r:?}");
    // Deleted: the recording gone, every file left verifies.
    std::fs::copy(&fake, &recs[2]).unwrap();
    std::fs::remove_file(&recs[2]).unwrap();
    std::fs::remove_file(&recs[1]).unwrap();
    let r = d.run(&["verify", "--store", &st]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout.matches("intact, sealed").count(), 2, "{r:?}");
    assert_eq!(r.stdout.matches("MISSING").count(), 2, "{r:?}");
    // The journal entry deleted too: the gap shows.
    let entries: Vec<_> = files_under(&store.join("journal"))
        .into_iter()
        .filter(|p| p.ends_with("000000000001.json"))
        .collect();
    std::fs::remove_file(&entries[0]).unwrap();
    let r = d.run(&["verify", "--store", &st, "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let last: serde_json::Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    let problems = last["journal"]["problems"].to_string();
    assert!(problems.contains("entries 1..1 are missing"), "{problems}");
}

#[test]
fn verify_store_since_checks_recent_recordings_and_still_sees_old_gaps() {
    let d = Dir::new();
    let (store, st) = store_with_recordings(&d, 3);
    let recs = recordings_under(&store);
    std::fs::remove_file(&recs[0]).unwrap();
    // Today: every recording is in range; the deleted one is missed.
    let r = d.run(&["verify", "--store", &st, "--since", "1d"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout.matches("intact, sealed").count(), 2, "{r:?}");
    assert!(r.stdout.contains("MISSING"), "{r:?}");
    // From a later day on: nothing in range, so the old deletion is not
    // looked for (one anchor entry is read, its recording not fetched)...
    let r = d.run(&["verify", "--store", &st, "--since", "2099-01-01", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let last: serde_json::Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["journal"]["journaled"], 0, "{last}");
    assert_eq!(last["journal"]["verdict"], "intact", "{last}");
    assert_eq!(r.stdout.lines().count(), 1, "{r:?}");
    // ...but a journal entry deleted long ago still shows, from the listing.
    let first_entry: Vec<_> = files_under(&store.join("journal"))
        .into_iter()
        .filter(|p| p.ends_with("000000000000.json"))
        .collect();
    std::fs::remove_file(&first_entry[0]).unwrap();
    let r = d.run(&["verify", "--store", &st, "--since", "2099-01-01"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("entries 0..0 are missing"), "{r:?}");
    // --since belongs to --store.
    let r = d.run(&["verify", "--since", "1d", &recs[1].to_string_lossy()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--store"), "{r:?}");
}

#[test]
fn recover_signs_with_the_recorders_key_only() {
    let d = Dir::new();
    assert_eq!(d.run(&["keygen", "k"]).code, 0);
    assert_eq!(d.run(&["keygen", "other"]).code, 0);
    // The test's directory in the script names its processes, for the
    // pkill below (other runs of this test may be going on beside it).
    let tag = d.join("lines").to_string_lossy().into_owned();
    let script =
        format!(": {tag}; for i in $(seq 1 40); do echo line-$i; sleep 0.05; done; sleep 30");
    let mut child = d
        .cmd(&[
            "rec",
            "-q",
            "--headless",
            "--sign-key",
            "k",
            "-o",
            "killed.cast.zst",
            "--",
            "bash",
            "--norc",
            "--noprofile",
            "-c",
            &script,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once it has committed chunks (verify reads an unsealed file).
    let v = poll_until(
        10,
        || d.run(&["verify", "killed.cast.zst"]).stdout,
        |v| v.contains("intact but UNSEALED") && !v.contains("(0 chunks)"),
    );
    assert!(v.contains("UNSEALED"), "{v}");
    child.kill().unwrap(); // SIGKILL: no seal
    child.wait().unwrap();
    let _ = std::process::Command::new("pkill")
        .args(["-f", &tag])
        .status();
    std::fs::copy(d.join("killed.cast.zst"), d.join("copy.cast.zst")).unwrap();
    // Another key does not sign it...
    let r = d.run(&["recover", "--sign-key", "other", "copy.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("not signed"), "{r:?}");
    let v = d.run(&["verify", "--key", "k.pub", "copy.cast.zst"]);
    assert_eq!(v.code, 1, "{v:?}");
    // ...the recorder's own does.
    let r = d.run(&["recover", "--sign-key", "k", "killed.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("; signed"), "{r:?}");
    let v = d.run(&["verify", "--key", "k.pub", "killed.cast.zst"]);
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("interrupted"), "{v:?}");
    assert!(v.stdout.contains("signed by key"), "{v:?}");
}

/// `-o` naming a device or a pipe writes into it: the export is never
/// renamed onto it (an atomic rename onto `/dev/null` replaces the device
/// with a regular file for everyone on the machine).
#[test]
fn export_into_a_pipe_writes_through_it_and_leaves_it_a_pipe() {
    use std::os::unix::fs::FileTypeExt;
    let d = Dir::new();
    recorded(&d);
    let fifo = d.join("out.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let r = d.run(&[
        "export",
        "s.cast.zst",
        "--format",
        "txt",
        "-o",
        &fifo.to_string_lossy(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // Checked before the reader is joined: a replaced pipe never gets a
    // writer, and its reader would wait forever.
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "{kind:?}");
    assert!(!d.join("out.fifo.partial").exists());
    let got = reader.join().unwrap();
    assert!(got.contains("line 7"), "{got}");
}
