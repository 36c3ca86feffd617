//! Issue 16, findings 2, 3 and 5 through the real binary: a recording a
//! running recorder writes is locked (recover, --overwrite refuse it; ls
//! and verify say it is live), `rec` without a terminal refuses at once,
//! and files are never overwritten without `--overwrite`.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::*;

/// A `rec` started by [`live_rec`]: killed (SIGKILL; its shell gets
/// SIGHUP from the closed terminal) if a test fails while it runs.
struct LiveRec(Option<Child>);

impl LiveRec {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    fn take(mut self) -> Child {
        self.0.take().expect("running")
    }
}

impl Drop for LiveRec {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `rec --headless -o FILE` of a shell that runs until `stop` exists in
/// the test's directory.
fn live_rec(d: &Dir, file: &str) -> LiveRec {
    let mut c = d.cmd(&[
        "rec",
        "--headless",
        "-q",
        "-o",
        file,
        "--",
        "bash",
        "--norc",
        "--noprofile",
        "-c",
        "echo started; while [ ! -e stop ]; do sleep 0.05; done; echo stopped",
    ]);
    LiveRec(Some(
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rec"),
    ))
}

/// Waits for `child` up to `secs`; kills it (and fails) when it does not
/// end in time. Its exit code and stderr.
#[track_caller]
fn ends_within(mut child: Child, secs: u64, what: &str) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "{what} did not end within {secs} s (killed); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn one_line(r: &Run) -> &str {
    let text = r.stderr.trim_end();
    assert_eq!(text.lines().count(), 1, "one line: {r:?}");
    text
}

#[test]
fn a_live_recording_is_locked_until_its_recorder_ends() {
    let d = Dir::new();
    let rec = live_rec(&d, "live.cast.zst");
    let pid = rec.id();
    // ls: `recording`, END live, once the first chunk is there.
    let ls = poll_until(
        10,
        || d.run(&["ls", "--json", "live.cast.zst"]),
        |r| r.stdout.contains("\"state\":\"recording\""),
    );
    assert!(ls.stdout.contains("\"state\":\"recording\""), "{ls:?}");
    assert!(
        ls.stdout.contains(&format!("\"recorder_pid\":{pid}")),
        "{ls:?}"
    );
    // No duration yet (it was 0), and says why.
    let v: serde_json::Value = serde_json::from_str(ls.stdout.trim()).unwrap();
    assert_eq!(
        (&v["duration"], &v["live"]),
        (&json!(null), &json!(true)),
        "{v}"
    );
    let table = d.run(&["ls", "live.cast.zst"]);
    assert!(
        table.stdout.contains(" live ") && table.stdout.contains("recording"),
        "{table:?}"
    );
    assert!(!table.stdout.contains("unsealed"), "{table:?}");
    let table = d.run(&["ls", "--long", "live.cast.zst"]);
    assert!(
        table.stdout.contains(&format!("live (pid {pid})")) && table.stdout.contains("recording"),
        "{table:?}"
    );
    assert!(
        !table.stdout.contains("00:00.000"),
        "no duration yet: {table:?}"
    );
    assert!(!table.stdout.contains("unsealed"), "{table:?}");

    // recover refuses it, in one line naming the file and the recorder.
    let before = std::fs::read(d.join("live.cast.zst")).unwrap();
    let r = d.run(&["recover", "live.cast.zst"]);
    assert_eq!(r.code, 2, "{r:?}");
    let line = one_line(&r);
    assert!(
        line.contains("live.cast.zst is being recorded by pid")
            && line.contains(&pid.to_string())
            && line.contains("termtrail recover"),
        "{line}"
    );
    assert!(!r.stdout.contains("sealed"), "{r:?}");
    // Nothing changed but what the recorder appended.
    let now = std::fs::read(d.join("live.cast.zst")).unwrap();
    assert!(now.starts_with(&before), "recover wrote into the live file");

    // verify: still unsealed (exit 3), and says why.
    let v = d.run(&["verify", "live.cast.zst"]);
    assert_eq!(v.code, 3, "{v:?}");
    assert!(
        v.stdout.contains(&format!(
            "intact but UNSEALED (still being recorded by pid {pid})"
        )),
        "{v:?}"
    );

    // export: what is written so far, saying so.
    // (Its first chunk is committed within --chunk-ms, 1 s.)
    let e = poll_until(
        10,
        || d.run(&["export", "live.cast.zst", "--format", "txt"]),
        |r| r.stdout.contains("started"),
    );
    assert_eq!(e.code, 0, "{e:?}");
    assert!(e.stdout.contains("started"), "{e:?}");
    assert!(
        one_line(&e).contains(&format!(
            "live.cast.zst is being recorded by pid {pid}; exported what is written so far"
        )),
        "{e:?}"
    );

    // rec --overwrite never replaces it.
    let r = d.run(&[
        "rec",
        "--headless",
        "--overwrite",
        "-o",
        "live.cast.zst",
        "--",
        "true",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(one_line(&r).contains("is being recorded by pid"), "{r:?}");

    // The recorder ends: the recording is sealed and intact (not TAMPERED).
    std::fs::write(d.join("stop"), b"").unwrap();
    let (code, err) = ends_within(rec.take(), 20, "rec");
    assert_eq!(code, 0, "{err}");
    let v = d.run(&["verify", "live.cast.zst"]);
    assert_eq!(v.code, 0, "{v:?}");
    assert!(
        v.stdout.contains("intact, sealed (exited with code 0)"),
        "{v:?}"
    );
    let ls = d.run(&["ls", "--json", "live.cast.zst"]);
    assert!(ls.stdout.contains("\"state\":\"sealed\""), "{ls:?}");
    let v: serde_json::Value = serde_json::from_str(ls.stdout.trim()).unwrap();
    assert!(
        v["duration"].as_f64().unwrap() > 0.0 && v["live"] == json!(false),
        "{v}"
    );
    let r = d.run(&["recover", "live.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("already sealed"), "{r:?}");
}

#[test]
fn a_killed_recorders_file_is_unsealed_and_recoverable_at_once() {
    let d = Dir::new();
    let rec = live_rec(&d, "k.cast.zst");
    poll_until(
        10,
        || d.run(&["ls", "--json", "k.cast.zst"]),
        |r| r.stdout.contains("\"state\":\"recording\""),
    );
    drop(rec); // SIGKILL: the lock goes with the process
    std::fs::write(d.join("stop"), b"").unwrap();
    let ls = d.run(&["ls", "--json", "k.cast.zst"]);
    assert!(ls.stdout.contains("\"state\":\"unsealed\""), "{ls:?}");
    let r = d.run(&["recover", "k.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("sealed as interrupted"), "{r:?}");
    assert_eq!(d.run(&["verify", "k.cast.zst"]).code, 0);
}

#[test]
fn rec_without_a_terminal_refuses_at_once_with_a_hint() {
    let d = Dir::new();
    for stdin in ["null", "pipe"] {
        let mut c = d.cmd(&["rec", "-o", "x.cast.zst", "--", "bash", "--norc"]);
        c.stdin(if stdin == "null" {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let started = Instant::now();
        let (code, err) = ends_within(c.spawn().unwrap(), 10, "rec without a terminal");
        assert!(started.elapsed() < Duration::from_secs(5), "{stdin}: slow");
        assert_eq!(code, 2, "{stdin}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{stdin}: {err}");
        assert!(
            err.contains("not a terminal") && err.contains("--headless"),
            "{stdin}: {err}"
        );
        assert!(!err.contains(":::"), "no banner: {err}");
        assert!(!d.join("x.cast.zst").exists(), "{stdin}: no file");
    }
    // From cron or a script, --headless records.
    let r = d.run(&["rec", "--headless", "-q", "-o", "x.cast.zst", "--", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn output_files_are_replaced_only_with_overwrite() {
    let d = Dir::new();
    d.rec("a.cast.zst", "echo one");
    let a = std::fs::read(d.join("a.cast.zst")).unwrap();

    // rec: refused before its banner, naming the file and --overwrite.
    let r = d.run(&["rec", "--headless", "-o", "a.cast.zst", "--", "echo", "two"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        one_line(&r),
        "termtrail: a.cast.zst exists; use --overwrite to replace it"
    );
    assert_eq!(std::fs::read(d.join("a.cast.zst")).unwrap(), a);
    let r = d.run(&[
        "rec",
        "--headless",
        "-q",
        "--overwrite",
        "-o",
        "a.cast.zst",
        "--",
        "echo",
        "two",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let t = d.run(&["export", "a.cast.zst", "--format", "txt"]);
    assert_eq!(t.stdout, "two\n", "{t:?}");

    // rec -o y.cast: refused with a hint (rec writes .cast.zst); unknown
    // extensions too. No file.
    let r = d.run(&["rec", "--headless", "-o", "y.cast", "--", "true"]);
    assert_eq!(r.code, 2, "{r:?}");
    let line = one_line(&r);
    assert!(
        line.contains("y.cast.zst") && line.contains("termtrail export"),
        "{line}"
    );
    let r = d.run(&["rec", "--headless", "-o", "y.md", "--", "true"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(one_line(&r).contains(".cast.zst"), "{r:?}");
    assert!(!d.join("y.cast").exists() && !d.join("y.md").exists());
    // A missing directory: one line, before the banner (it was exit 125
    // after it).
    let r = d.run(&["rec", "--headless", "-o", "no/dir/z.cast.zst", "--", "true"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        one_line(&r),
        "termtrail: cannot write no/dir/z.cast.zst: no such directory no/dir"
    );

    // export: the same rule.
    std::fs::write(d.join("e.cast"), b"keep me").unwrap();
    let r = d.run(&["export", "a.cast.zst", "-o", "e.cast"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        one_line(&r),
        "termtrail: e.cast exists; use --overwrite to replace it"
    );
    assert_eq!(std::fs::read(d.join("e.cast")).unwrap(), b"keep me");
    let r = d.run(&["export", "a.cast.zst", "-o", "e.cast", "--overwrite"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        std::fs::read_to_string(d.join("e.cast"))
            .unwrap()
            .starts_with("{\"version\":3,")
    );
    // The format follows the extension; an unknown one is an error that
    // lists the known ones; --format decides for any name.
    let r = d.run(&["export", "a.cast.zst", "-o", "out.md"]);
    assert_eq!(r.code, 2, "{r:?}");
    let line = one_line(&r);
    assert!(
        line.contains("out.md") && line.contains(".cast") && line.contains(".txt"),
        "{line}"
    );
    assert!(!d.join("out.md").exists());
    let r = d.run(&["export", "a.cast.zst", "-o", "out.cast.zst"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = d.run(&["export", "a.cast.zst", "-o", "out.md", "--format", "txt"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(d.join("out.md")).unwrap(), "two\n");
    // Errors name the user's file, never the temporary one.
    let r = d.run(&["export", "a.cast.zst", "-o", "missing/dir/x.cast"]);
    assert_eq!(r.code, 2, "{r:?}");
    let line = one_line(&r);
    assert!(
        line.contains("missing/dir/x.cast") && !line.contains("partial"),
        "{line}"
    );

    // import: the same rule.
    let r = d.run(&["import", "e.cast", "-o", "a.cast.zst"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        one_line(&r),
        "termtrail: a.cast.zst exists; use --overwrite to replace it"
    );
    let r = d.run(&["import", "e.cast", "-o", "a.cast.zst", "--overwrite"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(d.run(&["verify", "a.cast.zst"]).code, 0);

    // keygen: one line with --overwrite; with it, a new key.
    assert_eq!(d.run(&["keygen", "k"]).code, 0);
    let old = std::fs::read(d.join("k.pub")).unwrap();
    let r = d.run(&["keygen", "k"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        one_line(&r),
        "termtrail: k exists; use --overwrite to replace it"
    );
    let r = d.run(&["keygen", "k", "--overwrite"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_ne!(std::fs::read(d.join("k.pub")).unwrap(), old);
    let names = files_under(d.path());
    assert!(
        !names.iter().any(|n| n.contains(".new")),
        "no temporary files left: {names:?}"
    );
}

#[test]
fn export_allow_tampered_is_the_flag_and_force_its_old_name() {
    let d = Dir::new();
    let damaged = samples().join("damaged-edited-event.cast.zst");
    let damaged = damaged.to_string_lossy();
    let r = d.run(&["export", &damaged, "--format", "txt"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--allow-tampered"), "{r:?}");
    for flag in ["--allow-tampered", "--force"] {
        let r = d.run(&["export", &damaged, flag, "--format", "txt"]);
        assert_eq!(r.code, 1, "{flag}: {r:?}");
        assert!(r.stdout.contains("UNVERIFIED from here"), "{flag}: {r:?}");
    }
    let help = d.run(&["export", "--help"]);
    assert!(help.stdout.contains("--allow-tampered"), "{help:?}");
    assert!(
        !help.stdout.contains("  --force"),
        "--force is hidden: {help:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_serve_records_is_locked_while_it_runs() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let (mut ws, _) = open(&server.url("s1")).await;
    stdin(&mut ws, "echo live-$((6*7))\n").await;
    read_until(&mut ws, "live-42").await;
    let recs = wait_until(
        10,
        || "serve's recording".into(),
        || Some(server.recordings()).filter(|r| !r.is_empty()),
    );
    let file = recs[0].to_string_lossy().into_owned();
    let pid = server.child.id();
    let ls = poll_until(
        10,
        || d.run(&["ls", "--json", &file]),
        |r| r.stdout.contains("\"state\":\"recording\""),
    );
    assert!(
        ls.stdout.contains("\"state\":\"recording\"")
            && ls.stdout.contains(&format!("\"recorder_pid\":{pid}")),
        "{ls:?}"
    );
    let r = d.run(&["recover", &file]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        one_line(&r).contains(&format!("is being recorded by pid {pid}")),
        "{r:?}"
    );
    // The shell ends: serve seals it, intact.
    stdin(&mut ws, "exit\n").await;
    let v = poll_until(10, || d.run(&["verify", &file]), |r| r.code == 0);
    assert_eq!(v.code, 0, "{v:?}");
    let ls = d.run(&["ls", "--json", &file]);
    assert!(ls.stdout.contains("\"state\":\"sealed\""), "{ls:?}");
}

#[test]
fn upload_leaves_a_spool_being_recorded_to_its_recorder() {
    let Some(moto) = Moto::start() else { return };
    moto.make_bucket("recs");
    let d = Dir::new();
    let ep = moto.endpoint();
    let mut c = rec_s3(
        &d,
        &ep,
        "s3://recs/live",
        &["-q"],
        "echo started; while [ ! -e stop ]; do sleep 0.05; done",
    );
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let rec = LiveRec(Some(c.spawn().expect("spawn rec")));
    let pid = rec.id();
    let spool = wait_until(
        10,
        || "the spool file".into(),
        || spooled(&d).into_iter().find(|f| f.ends_with(".cast.zst")),
    );
    let r = run_s3(
        &d,
        &ep,
        &["upload", "--store", "s3://recs/live", "--wait", "5s"],
    );
    assert_eq!(r.code, 0, "not left behind: {r:?}");
    let line = one_line(&r);
    assert!(
        line.contains(&spool) && line.contains(&format!("is being recorded by pid {pid}")),
        "{line}"
    );
    std::fs::write(d.join("stop"), b"").unwrap();
    let (code, err) = ends_within(rec.take(), 30, "rec");
    assert_eq!(code, 0, "{err}");
    assert!(
        moto.keys("recs").iter().any(|k| k.ends_with(".cast.zst")),
        "its recorder uploaded it"
    );
}
