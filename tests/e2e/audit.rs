//! `serve --audit`: every shell event lands in the hash-chained audit log in
//! order, `verify --audit` finds edits, removals and reorders of a copy,
//! a restarted host continues the chain, and a killed one leaves a log that
//! verifies (intact or torn, never tampered).

use std::path::Path;

use serde_json::Value;

use crate::util::{
    Dir, SESSION, Server, close_of, open, read_until, status, stdin, wait_until, zstd_dc,
};

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn names(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// `verify --audit` of `lines` (joined, each with its newline) written to
/// a copy; returns (exit code, stdout).
fn verify_copy(d: &Dir, name: &str, lines: &[&str], tail: &str) -> (i32, String) {
    let copy = d.join(name);
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    text.push_str(tail);
    std::fs::write(&copy, text).unwrap();
    let r = d.run(&["verify", "--audit", copy.to_str().unwrap()]);
    (r.code, r.stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_events_are_audited_in_order_and_verify_finds_edits() {
    let d = Dir::new();
    let audit = d.join("audit.jsonl");
    let mut server = Server::start(&d, &["--audit", audit.to_str().unwrap()]);
    let url = server.url("aud1");
    let (mut a, _) = open(&url).await;
    stdin(&mut a, "echo one-$((1+1))\n").await;
    read_until(&mut a, "one-2").await;
    drop(a); // network loss: the shell waits for a re-attach
    let (mut b, st) = open(&url).await;
    assert_eq!(st["metadata"]["reconnected"], true, "{st}");
    let (mut c, _) = open(&url).await;
    assert_eq!(close_of(&mut b).await.expect("close").0, 4000);
    stdin(&mut c, "exit 3\n").await;
    status(&mut c).await;
    wait_until(
        20,
        || format!("the seal in {:?}", names(&events(&audit))),
        || {
            names(&events(&audit))
                .contains(&"seal".to_string())
                .then_some(())
        },
    );
    assert_eq!(server.stop(), 0);

    let lines = events(&audit);
    assert_eq!(
        names(&lines),
        [
            "start",
            "decision",
            "shell_start",
            "decision",
            "reattach",
            "decision",
            "takeover",
            "shell_end",
            "seal",
            "stop"
        ]
    );
    // Every connect is decided (no policy: allowed) before it is served.
    for d in lines.iter().filter(|l| l["event"] == "decision") {
        assert_eq!(d["allowed"], true, "{d}");
        assert_eq!(d["action"], "OpenShell", "{d}");
        assert_eq!(d["shell"], "aud1", "{d}");
        assert_eq!(d["auth"], "none", "{d}");
    }
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i as u64 + 1, "{l}");
        assert_eq!(l["log"], lines[0]["log"]);
    }
    let start = &lines[2];
    assert_eq!(start["session"], SESSION);
    assert_eq!(start["shell"], "aud1");
    assert_eq!(start["auth"], "none");
    assert!(!start["principal"].as_str().unwrap().is_empty());
    assert!(
        start["recording"].as_str().unwrap().ends_with(".cast.zst"),
        "{start}"
    );
    assert_eq!(lines[4]["shell"], "aud1");
    assert_eq!(lines[4]["principal"], start["principal"]);
    assert_ne!(lines[4]["client"], lines[6]["client"]);
    assert_eq!(lines[7]["end"]["reason"], "exited");
    assert_eq!(lines[7]["end"]["code"], 3);
    let seal = &lines[8];
    assert_eq!(seal["recording"], start["recording"]);
    assert_eq!(seal["last_link"].as_str().unwrap().len(), 64);
    assert_eq!(seal["recording_id"].as_str().unwrap().len(), 32);
    assert_eq!(seal["end"]["code"], 3);
    assert_eq!(lines[9]["shells_left"], 0);
    // The seal names the recording's own id (its header's).
    let rec = &server.recordings()[0];
    let header = zstd_dc(rec);
    let header = header.lines().next().unwrap();
    assert!(
        header.contains(seal["recording_id"].as_str().unwrap()),
        "{header}"
    );

    let r = d.run(&["verify", "--audit", audit.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("audit log intact, 10 line(s)"), "{r:?}");
    let j = d.run(&["verify", "--audit", audit.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_str(j.stdout.trim()).unwrap();
    assert_eq!(v["verdict"], "intact");
    assert_eq!(v["head"]["seq"], 10);
    let head = format!("10:{}", v["head"]["hash"].as_str().unwrap());

    let text = std::fs::read_to_string(&audit).unwrap();
    let raw: Vec<&str> = text.lines().collect();
    // An edited middle line: found at the next line.
    let edited = raw[2].replace("\"auth\":\"none\"", "\"auth\":\"jwt\"");
    assert_ne!(edited, raw[2]);
    let mut copy = raw.clone();
    copy[2] = &edited;
    let (code, out) = verify_copy(&d, "edited", &copy, "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED at line 4"), "{out}");
    // A removed line.
    let mut copy = raw.clone();
    copy.remove(3);
    let (code, out) = verify_copy(&d, "removed", &copy, "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED at line 4"), "{out}");
    // Reordered lines.
    let mut copy = raw.clone();
    copy.swap(2, 3);
    let (code, out) = verify_copy(&d, "reordered", &copy, "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED at line 3: seq 4 where 3"), "{out}");
    // A torn last line is not tampering; garbage is.
    let half = &raw[9][..raw[9].len() / 2];
    let (code, out) = verify_copy(&d, "torn", &raw[..9], half);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("TORN at the end"), "{out}");
    let (code, out) = verify_copy(&d, "garbage", &raw[..9], "garbage\n");
    assert_eq!(code, 1, "{out}");
    // A cut end: intact without an anchor, tampered with the stop's head.
    let (code, out) = verify_copy(&d, "cut", &raw[..9], "");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not stop"), "{out}");
    let cut = d.join("cut");
    let r = d.run(&[
        "verify",
        "--audit",
        cut.to_str().unwrap(),
        "--audit-head",
        &head,
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("cut from the end"), "{r:?}");
    // Controls in text from the log are shown visible.
    let evil = raw[9].replace(
        "\"event\":\"stop\"",
        "\"event\":\"\\u001b]52;c;eA==\\u0007\"",
    );
    let mut copy = raw.clone();
    copy[9] = &evil;
    let (code, out) = verify_copy(&d, "controls", &copy, "");
    assert_eq!(code, 0, "the last line is not covered by the chain: {out}");
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert!(out.contains("^[]52;c;eA==^G"), "{out}");
    // Not an audit log, and a missing file.
    let (code, out) = verify_copy(&d, "other", &["hello"], "");
    assert_eq!(code, 2, "{out}");
    let r = d.run(&["verify", "--audit", d.join("missing").to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_host_leaves_a_verifiable_log_and_a_restart_continues_it() {
    let d = Dir::new();
    let audit = d.join("audit.jsonl");
    let audit_s = audit.to_str().unwrap().to_string();
    let mut server = Server::start(&d, &["--audit", &audit_s]);
    let (mut a, _) = open(&server.url("k1")).await;
    stdin(&mut a, "echo up-$((2+2))\n").await;
    read_until(&mut a, "up-4").await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let r = d.run(&["verify", "--audit", &audit_s]);
    assert!(r.code == 0 || r.code == 3, "never tampered: {r:?}");
    let before = events(&audit);
    assert_eq!(names(&before), ["start", "decision", "shell_start"]);

    // A crash mid-write leaves a torn line: kept, and accounted for.
    let torn = "{\"seq\":4,\"time\":\"2026-";
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&audit)
        .unwrap();
    std::io::Write::write_all(&mut f, torn.as_bytes()).unwrap();
    drop(f);
    let r = d.run(&["verify", "--audit", &audit_s]);
    assert_eq!(r.code, 3, "{r:?}");

    let mut again = Server::start(&d, &["--audit", &audit_s]);
    // Serving (its signal handlers set) once the host answers.
    assert!(crate::util::http_get(&again.addr, "/healthz").contains("ok"));
    assert_eq!(again.stop(), 0);
    let after = events(&audit);
    assert_eq!(
        names(&after),
        [
            "start",
            "decision",
            "shell_start",
            "recovered",
            "start",
            "stop"
        ]
    );
    assert_eq!(after[3]["torn_bytes"], torn.len() as u64 + 1);
    assert!(after.iter().all(|l| l["log"] == before[0]["log"]));
    assert_eq!(after[5]["seq"], 6);
    assert!(std::fs::read_to_string(&audit).unwrap().contains(torn));
    let r = d.run(&["verify", "--audit", &audit_s]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("1 torn write(s) kept and recovered"),
        "{r:?}"
    );

    // The store holds the log in create-only pieces: the restarted host
    // shipped everything, lines from before the kill included; a third run
    // adds a piece; the pieces verify as one log, and one missing shows.
    let mut third = Server::start(&d, &["--audit", &audit_s]);
    assert!(crate::util::http_get(&third.addr, "/healthz").contains("ok"));
    assert_eq!(third.stop(), 0);
    let log_id = before[0]["log"].as_str().unwrap();
    let pieces = d.join("store").join("audit").join(log_id);
    let mut names_of: Vec<String> = std::fs::read_dir(&pieces)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names_of.sort();
    assert_eq!(
        names_of,
        ["00000000000000000001.jsonl", "00000000000000000007.jsonl"]
    );
    let shipped: Vec<u8> = names_of
        .iter()
        .flat_map(|n| std::fs::read(pieces.join(n)).unwrap())
        .collect();
    assert_eq!(
        shipped,
        std::fs::read(&audit).unwrap(),
        "the pieces are the log"
    );
    let pieces_s = pieces.to_str().unwrap();
    let r = d.run(&["verify", "--audit", pieces_s]);
    assert_eq!(r.code, 0, "{r:?}");
    // 9 lines: the torn bytes and their newline make one.
    assert!(
        r.stdout.contains("audit log intact, 9 line(s): seq 1-8"),
        "{r:?}"
    );
    std::fs::remove_file(pieces.join(&names_of[0])).unwrap();
    let r = d.run(&["verify", "--audit", pieces_s]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("seq 7 where 1 was expected"), "{r:?}");

    // A damaged log is refused at start, with the line.
    let text = std::fs::read_to_string(&audit).unwrap();
    std::fs::write(
        &audit,
        text.replacen("\"shell_start\"", "\"shell_stort\"", 1),
    )
    .unwrap();
    let r = d.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--no-auth",
        "--audit",
        &audit_s,
        "--",
        "true",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("audit.jsonl:4 does not verify"), "{r:?}");
}

#[test]
fn a_command_call_recording_is_audited_as_sealed() {
    let d = Dir::new();
    let audit = d.join("audit.jsonl");
    let mut server = Server::start(&d, &["--audit", audit.to_str().unwrap()]);
    let url = format!("ws://{}", server.addr);
    let r = d.run(&["exec", &url, "--", "echo hi; exit 5"]);
    assert_eq!(r.code, 5, "{r:?}");
    wait_until(
        20,
        || format!("the seal in {:?}", names(&events(&audit))),
        || {
            names(&events(&audit))
                .contains(&"seal".to_string())
                .then_some(())
        },
    );
    assert_eq!(server.stop(), 0);
    let lines = events(&audit);
    assert_eq!(
        names(&lines),
        ["start", "decision", "seal", "stop"],
        "no shell events"
    );
    assert_eq!(lines[1]["action"], "RunCommand");
    let seal = &lines[2];
    assert!(
        seal["shell"].as_str().unwrap().starts_with("cmd-"),
        "{seal}"
    );
    assert_eq!(seal["end"]["reason"], "exited");
    assert_eq!(seal["end"]["code"], 5);
    let r = d.run(&["verify", "--audit", audit.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn with_an_s3_store_the_log_is_shipped_and_verifies_there() {
    use crate::util::{Moto, run_s3, tt};
    let Some(moto) = Moto::start() else { return };
    moto.make_bucket("recs");
    let d = Dir::new();
    let ep = moto.endpoint();
    let audit = d.join("audit.jsonl");
    let serve = tt(
        &d,
        &ep,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-auth",
            "--store",
            "s3://recs/hosts",
            "--audit",
            audit.to_str().unwrap(),
            "--",
            "true",
        ],
    );
    let mut serve = Server::spawn(serve, &d.join("store"));
    assert!(crate::util::http_get(&serve.addr, "/healthz").contains("ok"));
    assert_eq!(serve.stop(), 0);
    let lines = events(&audit);
    assert_eq!(names(&lines), ["start", "stop"]);
    let log_id = lines[0]["log"].as_str().unwrap();
    let keys = moto.all_keys("recs");
    let piece = format!("hosts/audit/{log_id}/00000000000000000001.jsonl");
    assert!(keys.contains(&piece), "{keys:?}");
    let url = format!("s3://recs/hosts/audit/{log_id}/");
    let r = run_s3(&d, &ep, &["verify", "--audit", &url]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("audit log intact, 2 line(s)"), "{r:?}");
    // Pieces are named per log: the prefix of every log is not one log.
    let r = run_s3(&d, &ep, &["verify", "--audit", "s3://recs/hosts/audit/"]);
    assert_eq!(r.code, 2, "a prefix of several logs is not one log: {r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shells_ended_by_a_stopping_host_are_audited_as_terminated() {
    let d = Dir::new();
    let audit = d.join("audit.jsonl");
    let mut server = Server::start(&d, &["--audit", audit.to_str().unwrap()]);
    let (mut a, _) = open(&server.url("t1")).await;
    stdin(&mut a, "echo up-$((3+3))\n").await;
    read_until(&mut a, "up-6").await;
    assert_eq!(server.stop(), 0);
    let lines = events(&audit);
    assert_eq!(
        names(&lines),
        [
            "start",
            "decision",
            "shell_start",
            "terminate",
            "shell_end",
            "seal",
            "stop"
        ]
    );
    assert_eq!(lines[3]["shell"], "t1");
    assert_eq!(lines[3]["reason"], "the host is shutting down");
    assert_eq!(lines[4]["end"]["reason"], "interrupted");
    let r = d.run(&["verify", "--audit", audit.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
}
