//! `attach` in a real terminal (tmux) against `serve`: typing, resize,
//! Ctrl+C to the remote shell, detach and re-attach, reconnect after the
//! connection drops, and the remote exit code.

use std::time::Duration;

use crate::util::*;

#[test]
fn attach_type_resize_detach_reattach_and_exit_code() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let t = Tmux::new(&d);
    let url = format!("ws://{}", server.addr);
    let attach = format!("$TT attach {url} --session sess-attach-0001 --shell sh1; echo rc=$?");
    t.start_in(&d, &attach);
    t.wait_for("tt>");
    t.keys(&["echo remote-$((6*7)); tput cols", "Enter"]);
    t.wait_for("remote-42");
    t.wait_for("100");
    t.resize(90, 20);
    // Kept: the resize must reach the remote PTY before the keys do (they
    // race through attach's signal and stdin paths); nothing shows it.
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["clear; tput cols", "Enter"]);
    t.wait_for("90");
    // Ctrl+C reaches the remote shell (interrupts sleep), not the client.
    t.keys(&["sleep 30.25; echo after-sleep", "Enter"]);
    // Once the sleep runs (the remote shell is local to the test).
    let sleeping = poll_until(15, || sleep_30_25(server.child.id()), |p| !p.is_empty());
    assert!(!sleeping.is_empty(), "the remote sleep did not start");
    t.keys(&["C-c"]);
    t.keys(&["echo interrupted-ok", "Enter"]);
    t.wait_for("interrupted-ok");
    // Detach with Ctrl+]; the shell keeps running and the re-attach command is shown.
    // The job notes (in a file) that it printed, while detached.
    let printed = d.join("printed");
    t.keys(&[
        &format!(
            "cd /tmp; (sleep 0.5; echo made-while-detached; echo x > {}) &",
            printed.display()
        ),
        "Enter",
    ]);
    // The job started (its job number shows), then detach.
    t.wait_for("[1]");
    t.keys(&["C-]"]);
    let s = t.wait_for("rc=0");
    assert!(s.contains("--session sess-attach-0001 --shell sh1"), "{s}");
    wait_for_file(&printed, 10);
    t.cmd(&["kill-session", "-t", "t"]);
    drop(t);
    // A tmux server of its own: the first one exits with its last session,
    // and a session started on its socket meanwhile could go with it.
    let t = Tmux::new(&d);
    t.start_in(&d, &attach);
    t.wait_for("made-while-detached");
    t.keys(&["pwd", "Enter"]);
    t.wait_for("/tmp");
    t.keys(&["exit 5", "Enter"]);
    t.wait_for("rc=5");
}

#[test]
fn attach_reports_refusal_and_unreachable_hosts() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let r = d.run(&[
        "attach",
        &format!("ws://{}", server.addr),
        "--shell",
        "bad/id",
        "--retries",
        "0",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("refused") && r.stderr.contains("HTTP 400"),
        "{}",
        r.stderr
    );
    let r = d.run(&["attach", "ws://127.0.0.1:9", "--retries", "1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("cannot reach") && r.stderr.contains("reconnecting"),
        "{}",
        r.stderr
    );
}

#[test]
fn scripted_attach_runs_until_the_shell_exits() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let r = d.run_with_input(
        &["attach", &format!("ws://{}", server.addr)],
        b"echo scripted-$((2*21))\nexit 6\n",
    );
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stdout.contains("scripted-42"), "{}", r.stdout);
}

#[test]
fn attach_through_the_proxy_to_serve_and_verify_both_recordings() {
    let d = Dir::new();
    let up = Server::start(&d, &[]);
    let pd = Dir::new();
    let px = Server::start_kind(&pd, "proxy", &["--upstream", &format!("ws://{}", up.addr)]);
    let t = Tmux::new(&d);
    t.start_in(
        &d,
        &format!(
            "$TT attach ws://{} --session sess-via-proxy-1 --shell viaproxy; echo rc=$?",
            px.addr
        ),
    );
    t.wait_for("tt>");
    t.keys(&[
        "printf '\\033[31mAccessDenied\\033[0m for role %s\\n' admin",
        "Enter",
    ]);
    t.wait_for("AccessDenied for role admin");
    t.keys(&["exit 3", "Enter"]);
    t.wait_for("rc=3");
    for rec in [&px.recordings()[0], &up.recordings()[0]] {
        let v = verified(&d, rec, "exited with code 3");
        assert_eq!(v.code, 0, "{v:?}");
        assert!(v.stdout.contains("exited with code 3"), "{}", v.stdout);
        let text = d
            .run(&["export", &rec.to_string_lossy(), "--format", "txt"])
            .stdout;
        assert!(text.contains("AccessDenied for role admin"), "{text}");
    }
}

#[test]
fn attach_reconnects_after_the_link_drops_and_keeps_the_shell() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let relay = Relay::start(&server.addr);
    let t = Tmux::new(&d);
    t.start_in(
        &d,
        &format!(
            "$TT attach ws://{} --session sess-reconnect-1 --shell rc1; echo rc=$?",
            relay.addr
        ),
    );
    t.wait_for("tt>");
    t.keys(&[
        "export KEEP=still-$((40+2)); (sleep 1; echo printed-while-cut) &",
        "Enter",
    ]);
    // The job started (its job number shows): cut before it prints.
    t.wait_for("[1]");
    relay.cut();
    t.wait_for("attempt 1 of");
    t.wait_for("reconnected");
    t.wait_for("printed-while-cut");
    t.keys(&["echo $KEEP", "Enter"]);
    t.wait_for("still-42");
    t.keys(&["exit 2", "Enter"]);
    t.wait_for("rc=2");
}

/// The pids of the `sleep 30.25` the attach test starts: a child of a
/// shell of `serve` (pid `server`), not of anyone else's.
fn sleep_30_25(server: u32) -> String {
    let shells = children(server);
    if shells.is_empty() {
        return String::new();
    }
    let out = std::process::Command::new("pgrep")
        .args(["-x", "-f", "sleep 30.25", "-P", &shells.join(",")])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
