//! A full disk under the recording or spool directory: a small tmpfs
//! (mounting needs root: outside CI a test without it is skipped with the
//! reason printed, in CI it fails), filled by a program printing
//! incompressible lines, with a ballast file the test deletes to free
//! space afterwards. For `rec` (local store and S3 spool) and `serve`
//! (with and without `--strict`): a clear error (what, where, what to do),
//! no panic, every chunk flushed before the disk filled still there (the
//! recording verifies as an intact unsealed prefix), sealed `interrupted`
//! by `recover` / `upload` once there is space again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::kill::MARGIN_MS;
use super::{Printer, check_loss, lines_in, now_us, report};
use crate::util::*;

/// A tmpfs mounted for one test; unmounted on drop (also when the test
/// panics).
pub struct TmpFs {
    dir: PathBuf,
}

impl TmpFs {
    /// A tmpfs of `kib` KiB at `dir` (created), holding a ballast file of
    /// `ballast_kib` KiB ([`TmpFs::free`] deletes it). None when mounting
    /// is not permitted and CI is unset: the test is skipped, and says
    /// so on stderr.
    pub fn mount(dir: &Path, kib: u64, ballast_kib: u64) -> Option<TmpFs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .output();
        let why = match &out {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = why {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty());
            assert!(!ci, "mount -t tmpfs {}: {why} (CI is set)", dir.display());
            use std::io::Write;
            let thread = std::thread::current();
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED {}: cannot mount a tmpfs ({why}); run as root (CI does)",
                thread.name().unwrap_or("a test")
            );
            return None;
        }
        let fs = TmpFs {
            dir: dir.to_path_buf(),
        };
        std::fs::write(fs.ballast(), vec![0u8; (ballast_kib << 10) as usize]).unwrap();
        Some(fs)
    }

    fn ballast(&self) -> PathBuf {
        self.dir.join("ballast")
    }

    /// Frees space: deletes the ballast.
    pub fn free(&self) {
        std::fs::remove_file(self.ballast()).unwrap();
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }
}

impl Drop for TmpFs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a process of a failed test): detach it now, it
            // goes when the last user does.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// What a program printing `pad`-byte incompressible lines, recorded by
/// `rec` until the disk is full, leaves: rec's exit, stderr and the
/// moment it exited (µs).
fn rec_until_full(mut c: Command, p: &Printer, d: &Dir, name: &str) -> (Run, u64) {
    let err = d.join(&format!("{name}.err"));
    let mut child = c
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let status = poll_until(90, || child.try_wait().unwrap(), Option::is_some);
    let ended_at = now_us();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{name}: rec did not stop on a full disk within 90 s");
    }
    p.stop(5);
    let run = Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: String::new(),
        stderr: std::fs::read_to_string(&err).unwrap(),
    };
    (run, ended_at)
}

/// Lines of about 1 KB: a 100-200 KiB disk fills within seconds.
const PAD: usize = 1000;

#[test]
fn rec_on_a_full_disk_stops_clearly_and_keeps_every_flushed_chunk() {
    let d = Dir::new();
    let Some(disk) = TmpFs::mount(&d.join("disk"), 192, 64) else {
        return;
    };
    let store = disk.join("store");
    let store_s = store.to_string_lossy().into_owned();
    let p = Printer::new(d.path(), "full");
    let script = p.script(1_000_000, PAD);
    let c = d.cmd(&[
        "rec",
        "--headless",
        "--chunk-ms",
        "250",
        "--store",
        &store_s,
        "--",
        "bash",
        "--norc",
        "--noprofile",
        "-c",
        &script,
    ]);
    let (r, ended_at) = rec_until_full(c, &p, &d, "rec");
    // rec always stops the command (docs/storage.md), exit 125.
    assert_eq!(r.code, 125, "{r:?}");
    let rec = recordings_under(&store).pop().expect("the recording");
    let path = rec.to_string_lossy().into_owned();
    for want in ["No space left on device", &path, "termtrail recover"] {
        assert!(r.stderr.contains(want), "{want:?} not in {}", r.stderr);
    }
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let v = d.run(&["verify", &path]);
    assert_eq!(v.code, 3, "an intact unsealed prefix: {v:?}");
    let before = d.run(&["export", &path, "--format", "txt"]).stdout;
    let bound = 250 + 100 + MARGIN_MS;
    let lost = check_loss("rec, disk full", &p.printed(), &before, ended_at, bound);
    // Space again: recover seals it.
    disk.free();
    let r = d.run(&["recover", &path]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = d.run(&["verify", &path]);
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("interrupted"), "{v:?}");
    let after = d.run(&["export", &path, "--format", "txt"]).stdout;
    assert_eq!(
        lines_in(&after),
        lines_in(&before),
        "recover kept every line"
    );
    let v = d.run(&["verify", "--store", &store_s]);
    assert_eq!(v.code, 0, "{v:?}");
    report(
        "disk full under rec (local store)",
        1,
        "exit 125 with the path and `termtrail recover`; unsealed intact prefix; sealed by recover",
        Some(lost),
    );
}

/// A disk already full when `rec` starts: a clear error and no file at
/// all (an empty file used to be left, which verify calls "not a
/// recording", exit 2).
#[test]
fn rec_on_a_disk_full_from_the_start_leaves_no_file() {
    let d = Dir::new();
    let Some(disk) = TmpFs::mount(&d.join("disk"), 64, 64) else {
        return;
    };
    let store = disk.join("store");
    let store_s = store.to_string_lossy().into_owned();
    let out = disk.join("out.cast.zst").to_string_lossy().into_owned();
    for args in [["--store", &store_s], ["-o", &out]] {
        let mut all = vec!["rec", "--headless"];
        all.extend(args);
        all.extend(["--", "echo", "never-run"]);
        let r = d.run(&all);
        assert_eq!(r.code, 125, "{args:?}: {r:?}");
        for want in ["No space left on device", "no file was left", "free space"] {
            assert!(r.stderr.contains(want), "{want:?} not in {}", r.stderr);
        }
        assert!(!r.stdout.contains("never-run"), "{r:?}");
    }
    let left: Vec<String> = files_under(&disk.join(""))
        .into_iter()
        .filter(|f| !f.ends_with("/ballast"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn rec_with_a_full_spool_disk_keeps_the_spool_for_upload() {
    let Some(moto) = Moto::start() else { return };
    moto.make_bucket("recs");
    let d = Dir::new();
    let Some(disk) = TmpFs::mount(&d.join("disk"), 192, 64) else {
        return;
    };
    let ep = moto.endpoint();
    let p = Printer::new(d.path(), "spool");
    let mut c = rec_s3(
        &d,
        &ep,
        "s3://recs/full",
        &["--chunk-ms", "250", "--upload-wait", "5s"],
        &p.script(1_000_000, PAD),
    );
    c.env("TERMTRAIL_SPOOL_DIR", disk.join("spool"));
    let (r, ended_at) = rec_until_full(c, &p, &d, "rec-s3");
    assert_eq!(r.code, 125, "{r:?}");
    for want in ["No space left on device", "termtrail upload"] {
        assert!(r.stderr.contains(want), "{want:?} not in {}", r.stderr);
    }
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    disk.free();
    let r = run(
        tt(&d, &ep, &["upload", "--store", "s3://recs/full"])
            .env("TERMTRAIL_SPOOL_DIR", disk.join("spool")),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let keys = moto.keys("recs");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let url = format!("s3://recs/{}", keys[0]);
    let v = run_s3(&d, &ep, &["verify", &url]);
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("interrupted"), "{v:?}");
    let text = run_s3(&d, &ep, &["export", &url, "--format", "txt"]).stdout;
    let bound = 250 + 100 + MARGIN_MS;
    let lost = check_loss(
        "rec into S3, spool disk full",
        &p.printed(),
        &text,
        ended_at,
        bound,
    );
    report(
        "disk full under the S3 spool (rec)",
        1,
        "exit 125 naming `termtrail upload`; sealed interrupted and uploaded by upload",
        Some(lost),
    );
}

/// serve on a full disk: the flooding shell's recording fails (counted,
/// logged with its file and the reason); without --strict the shell goes
/// on unrecorded, with --strict it is ended; a quiet shell beside it keeps
/// working and, once there is space again, is recorded and sealed.
#[tokio::test(flavor = "multi_thread")]
async fn serve_on_a_full_disk_fails_one_recording_and_keeps_the_others() {
    for strict in [false, true] {
        let d = Dir::new();
        let Some(disk) = TmpFs::mount(&d.join("disk"), 256, 64) else {
            return;
        };
        let store = disk.join("store");
        let store_s = store.to_string_lossy().into_owned();
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-auth",
            "--store",
            &store_s,
        ];
        if strict {
            args.push("--strict");
        }
        args.extend(["--", "bash", "--norc", "--noprofile"]);
        let mut c = d.cmd(&args);
        c.env("LC_ALL", "C");
        let host = Server::spawn(c, &store);
        let what = if strict {
            "--strict"
        } else {
            "without --strict"
        };
        let (mut quiet, _) = open(&host.url("quiet")).await;
        stdin(&mut quiet, "echo quiet-$((6*7))\n").await;
        read_until(&mut quiet, "quiet-42").await;
        // Its chunk is committed before the disk fills.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let p = Printer::new(d.path(), "big");
        let (mut big, _) = open(&host.url("big")).await;
        stdin(&mut big, &format!("{}\n", p.script(1_000_000, PAD))).await;
        let failed = |m: &String| m.contains("termtrail_recording_failures_total 1");
        let metrics = poll_until(60, || http_get(&host.addr, "/metrics"), failed);
        assert!(failed(&metrics), "{what}: {metrics}");
        let log = host.log.lock().unwrap().clone();
        assert!(log.contains("No space left on device"), "{what}: {log}");
        assert!(
            log.contains("/big/"),
            "{what}: the log names the file: {log}"
        );
        assert!(!log.contains("panicked"), "{what}: {log}");
        if strict {
            let st = tokio::time::timeout(Duration::from_secs(20), exit_status(&mut big))
                .await
                .expect("--strict ends the shell");
            assert_eq!(st["status"], "Failure", "{st}");
        } else {
            // The shell goes on, unrecorded.
            let n = p.printed().len();
            assert!(p.wait_printed(n + 20, 20), "{what}: the shell stopped");
            stdin(&mut big, "\x03").await;
        }
        tokio::task::block_in_place(|| p.stop(if strict { 5 } else { 0 }));
        // Space again: the quiet shell works and is recorded.
        disk.free();
        stdin(&mut quiet, "echo still-$((40+2)); exit 3\n").await;
        read_until(&mut quiet, "still-42").await;
        let st = exit_status(&mut quiet).await;
        assert_eq!(st["details"]["causes"][0]["message"], "3", "{what}: {st}");
        let recs = host.recordings();
        let find = |name: &str| {
            recs.iter()
                .find(|r| r.to_string_lossy().contains(&format!("/{name}/")))
                .unwrap_or_else(|| panic!("{what}: no recording of {name}: {recs:?}"))
                .to_string_lossy()
                .into_owned()
        };
        let quiet_rec = find("quiet");
        let v = verified(&d, Path::new(&quiet_rec), "exited with code 3");
        assert_eq!(v.code, 0, "{what}: {v:?}");
        let text = d.run(&["export", &quiet_rec, "--format", "txt"]).stdout;
        assert!(
            text.contains("quiet-42") && text.contains("still-42"),
            "{text}"
        );
        // The failed one: an intact prefix, sealed by recover.
        let big_rec = find("big");
        let v = d.run(&["verify", &big_rec]);
        assert_eq!(v.code, 3, "{what}: {v:?}");
        let before = lines_in(&d.run(&["export", &big_rec, "--format", "txt"]).stdout);
        drop(host);
        let r = d.run(&["recover", &big_rec]);
        assert_eq!(r.code, 0, "{what}: {r:?}");
        let v = d.run(&["verify", &big_rec]);
        assert_eq!(v.code, 0, "{what}: {v:?}");
        let after = lines_in(&d.run(&["export", &big_rec, "--format", "txt"]).stdout);
        assert_eq!(after, before, "{what}");
        let v = d.run(&["verify", "--store", &store_s]);
        assert_eq!(v.code, 0, "{what}: {v:?}");
        report(
            &format!("disk full under serve ({what})"),
            1,
            if strict {
                "flooding shell ended; its recording an intact prefix; quiet shell recorded and sealed"
            } else {
                "flooding shell goes on unrecorded; its recording an intact prefix; quiet shell recorded and sealed"
            },
            None,
        );
    }
}
