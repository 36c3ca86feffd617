//! Secrets never recorded: real no-echo prompts (bash `read -s`, Python
//! `getpass`, a `sudo -S`-style prompt) through `rec --input` in tmux and
//! through `serve`; the proxy's password-prompt rule in front of `serve`
//! and of terminado; output redaction of an AWS secret key printed in two
//! pieces, through `rec`, `serve` and `proxy`. Each checks the decompressed
//! recording, `export`, `grep` and the server's log.

use std::path::Path;

use crate::util::*;

/// An AWS secret access key (AWS's documentation example).
const KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// Pieces of KEY that no recording may hold.
const KEY_PIECES: [&str; 3] = ["wJalrXUtnFEMI", "K7MDENG", "bPxRfiCYEXAMPLEKEY"];

/// The three no-echo prompts, as shell commands that print the length of
/// what was typed: `read -s`, Python's getpass, and a sudo-style prompt
/// (echo off, then `[sudo] password for x: `). No command line holds its
/// prompt's text, so that waiting for the prompt does not stop at the
/// command's echo.
fn prompt_commands(d: &Dir) -> [String; 3] {
    // The test peers' Python (a pyenv shim would look for its root in the
    // test's HOME).
    let python = peer("TERMTRAIL_PYTHON").unwrap_or_else(|| "python3".into());
    let sudo = d.join("sudo-style.sh");
    std::fs::write(
        &sudo,
        "stty -echo; printf '[sudo] password for x: '; IFS= read -r S; stty echo; echo; echo sudo-len=${#S}\n",
    )
    .unwrap();
    [
        "P=Pass; read -s -p \"${P}word: \" PW; echo; echo read-len=${#PW}".to_string(),
        format!(
            "{python} -c 'import getpass; s = getpass.getpass(); print(\"getpass-len=%d\" % len(s))'"
        ),
        format!("bash {}", sudo.display()),
    ]
}

/// The secrets typed at the three prompts, and the lengths they print.
const SECRETS: [(&str, &str, &str); 3] = [
    ("Password: ", "hunter2-read-s", "read-len=14"),
    ("Password: ", "correct-horse-getpass", "getpass-len=21"),
    ("password for x: ", "sudo-pw-4711", "sudo-len=12"),
];

/// `text` holds none of the secrets typed.
#[track_caller]
fn no_typed_secret(what: &str, text: &str) {
    for (_, secret, _) in SECRETS {
        assert!(!text.contains(secret), "{what} holds {secret:?}: {text}");
    }
}

/// `text` holds no piece of KEY.
#[track_caller]
fn no_key(what: &str, text: &str) {
    for piece in KEY_PIECES {
        assert!(!text.contains(piece), "{what} holds {piece:?}: {text}");
    }
}

/// The recording's text transcript (`termtrail export --format txt`).
fn transcript(d: &Dir, rec: &Path) -> String {
    let r = d.run(&["export", &rec.to_string_lossy(), "--format", "txt"]);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

/// A script printing KEY in two `printf` calls with a pause between, so
/// that it reaches the recorder in two output frames.
fn key_script(d: &Dir) -> String {
    let path = d.join("print-key.sh");
    let (a, b) = KEY.split_at(18);
    std::fs::write(
        &path,
        format!(
            "printf 'aws_secret_access_key = {a}'; sleep 0.3; printf '{b}\\n'; echo printed-key\n"
        ),
    )
    .unwrap();
    format!("bash {}", path.display())
}

/// A recording holds the redacted key and its marker, and `grep` over it
/// finds no piece of the key.
#[track_caller]
fn key_redacted(d: &Dir, rec: &Path) {
    // Sealed (a moment after the shell ends).
    let v = verified(d, rec, "");
    assert_eq!(v.code, 0, "{v:?}");
    let raw = zstd_dc(rec);
    no_key("the decompressed recording", &raw);
    assert!(
        raw.contains("aws_secret_access_key = [REDACTED:aws-secret-key]"),
        "{raw}"
    );
    assert!(
        raw.contains("\"m\", \"redacted: aws-secret-key\"]"),
        "{raw}"
    );
    for piece in KEY_PIECES {
        let g = d.run(&["grep", piece, &rec.to_string_lossy()]);
        assert_eq!(g.code, 1, "grep {piece} finds nothing: {g:?}");
    }
}

#[test]
fn rec_input_withholds_no_echo_prompts_in_a_real_terminal() {
    let d = Dir::new();
    let t = Tmux::new(&d);
    t.start_in(
        &d,
        "PS1='tt> ' $TT rec --input -o s.cast.zst -- bash --norc --noprofile 2>rec.err",
    );
    // tmux's screen text has no trailing spaces.
    t.wait_for("tt>");
    for (cmd, (prompt, secret, len)) in prompt_commands(&d).iter().zip(SECRETS) {
        // The prompt is new on the screen (an earlier one may show too).
        let prompt = prompt.trim_end();
        let before = t.screen().matches(prompt).count();
        t.keys(&[cmd, "Enter"]);
        wait_until(
            15,
            || format!("prompt {prompt:?}; screen:\n{}", t.screen()),
            || (t.screen().matches(prompt).count() > before).then_some(()),
        );
        t.keys(&[secret, "Enter"]);
        t.wait_for(len);
    }
    t.keys(&["echo typed-$((6*7))", "Enter"]);
    t.wait_for("typed-42");
    t.keys(&["exit", "Enter"]);
    let err = poll_until(
        15,
        || std::fs::read_to_string(d.join("rec.err")).unwrap_or_default(),
        |e| e.contains("recording sealed"),
    );
    assert!(err.contains("recording sealed"), "{err}");
    let rec = d.join("s.cast.zst");
    let raw = zstd_dc(&rec);
    no_typed_secret("the decompressed recording", &raw);
    no_typed_secret("the transcript", &transcript(&d, &rec));
    for (_, _, len) in SECRETS {
        assert!(raw.contains(len), "the command's effect is recorded: {raw}");
    }
    assert!(
        raw.contains("\"i\", \"echo typed-"),
        "other input is: {raw}"
    );
    assert_eq!(
        raw.matches("input withheld: password prompt (echo off)")
            .count(),
        3,
        "{raw}"
    );
    no_typed_secret("rec's stderr", &err);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_withholds_no_echo_prompts() {
    let d = Dir::new();
    let mut host = Server::start(&d, &[]);
    let (mut ws, _) = open(&host.url("pw")).await;
    stdin(&mut ws, "echo ready-$((6*7))\n").await;
    read_until(&mut ws, "ready-42").await;
    for (cmd, (prompt, secret, len)) in prompt_commands(&d).iter().zip(SECRETS) {
        stdin(&mut ws, &format!("{cmd}\n")).await;
        read_until(&mut ws, prompt).await;
        stdin(&mut ws, &format!("{secret}\n")).await;
        let out = read_until(&mut ws, len).await;
        assert!(!out.contains(secret), "no echo: {out}");
    }
    stdin(&mut ws, "exit\n").await;
    exit_status(&mut ws).await;
    assert_eq!(host.stop(), 0);
    let rec = &host.recordings()[0];
    let raw = zstd_dc(rec);
    no_typed_secret("the decompressed recording", &raw);
    no_typed_secret("the transcript", &transcript(&d, rec));
    for (_, _, len) in SECRETS {
        assert!(raw.contains(len), "the command's effect is recorded: {raw}");
    }
    assert!(
        raw.contains("input withheld: password prompt (echo off)"),
        "{raw}"
    );
    no_typed_secret("the server's log", &host.log.lock().unwrap());
}

/// Through a proxy: `read -s` after a password prompt, then a `grep`
/// whose output contains `password:` (it must not trigger the rule), then
/// ordinary input. Returns the proxy's recording, decompressed.
async fn through_proxy(px: &Server, shell: &str) -> String {
    let d = Dir::new();
    let (mut ws, _) = open(&px.url(shell)).await;
    stdin(&mut ws, "echo ready-$((6*7))\n").await;
    read_until(&mut ws, "ready-42").await;
    stdin(
        &mut ws,
        "P=Pass; read -s -p \"${P}word: \" PW; echo; echo proxy-len=${#PW}\n",
    )
    .await;
    read_until(&mut ws, "Password: ").await;
    // Typed in two frames: withheld up to and including the line break.
    stdin(&mut ws, "proxied-").await;
    stdin(&mut ws, "secret-99\necho after-$((6*7))\n").await;
    read_until(&mut ws, "after-42").await;
    let conf = d.join("app.conf");
    std::fs::write(&conf, "db.password: x\n").unwrap();
    stdin(&mut ws, &format!("grep password: {}\n", conf.display())).await;
    read_until(&mut ws, "db.password: x").await;
    stdin(&mut ws, "echo visible-$((6*7))\n").await;
    read_until(&mut ws, "visible-42").await;
    stdin(&mut ws, &format!("{}\n", key_script(&d))).await;
    let out = read_until(&mut ws, "printed-key").await;
    assert!(
        out.contains(KEY),
        "the client sees the output unchanged: {out}"
    );
    stdin(&mut ws, "exit\n").await;
    exit_status(&mut ws).await;
    let rec = wait_until(
        15,
        || format!("the proxy's recording of {shell}"),
        || {
            px.recordings()
                .into_iter()
                .find(|r| r.to_string_lossy().contains(shell))
        },
    );
    key_redacted(&d, &rec);
    zstd_dc(&rec)
}

#[track_caller]
fn prompt_rule_held(raw: &str) {
    assert!(!raw.contains("proxied-"), "{raw}");
    assert!(!raw.contains("secret-99"), "{raw}");
    assert!(raw.contains("proxy-len=17"), "{raw}");
    assert!(
        raw.contains(r#"input withheld: 18 bytes after a password prompt (\"Password:\")"#),
        "{raw}"
    );
    assert!(raw.contains("\"i\", \"echo after-$((6*7))"), "{raw}");
    assert!(
        raw.contains("\"i\", \"echo visible-$((6*7))"),
        "grep output with password: in it does not withhold: {raw}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_withholds_input_after_a_password_prompt_in_front_of_serve() {
    let d = Dir::new();
    let mut up = Server::start(&d, &[]);
    let pd = Dir::new();
    let mut px = Server::start_kind(&pd, "proxy", &["--upstream", &format!("ws://{}", up.addr)]);
    let raw = through_proxy(&px, "pp1").await;
    prompt_rule_held(&raw);
    // The host's own recording withholds it too (echo off on its PTY).
    assert_eq!(up.stop(), 0);
    let host_raw = zstd_dc(&up.recordings()[0]);
    assert!(!host_raw.contains("secret-99"), "{host_raw}");
    assert_eq!(px.stop(), 0);
    for log in [&px.log, &up.log] {
        let log = log.lock().unwrap();
        assert!(!log.contains("secret-99"), "{log}");
        no_key("a server's log", &log);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_withholds_input_after_a_password_prompt_in_front_of_terminado() {
    let d = Dir::new();
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let term = PeerServer::start(&py, "terminado_server.py", &["0"], &d);
    let pd = Dir::new();
    let mut px = Server::start_kind(
        &pd,
        "proxy",
        &[
            "--upstream-protocol",
            "terminado",
            "--upstream",
            &format!("ws://127.0.0.1:{}/websocket/{{shell}}", term.port),
        ],
    );
    let raw = through_proxy(&px, "tp1").await;
    prompt_rule_held(&raw);
    assert_eq!(px.stop(), 0);
    let log = px.log.lock().unwrap();
    assert!(!log.contains("secret-99"), "{log}");
}

#[test]
fn rec_redacts_a_key_printed_in_two_pieces_and_the_terminal_still_sees_it() {
    let d = Dir::new();
    let script = key_script(&d);
    let r = d.rec("k.cast.zst", &script);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(KEY),
        "what the terminal shows is unchanged: {r:?}"
    );
    no_key("rec's stderr", &r.stderr);
    key_redacted(&d, &d.join("k.cast.zst"));

    // Without the defaults the key is recorded; a rule of one's own works.
    let r = d.run(&[
        "rec",
        "--headless",
        "-q",
        "--no-default-redactions",
        "--redact",
        "ticket=TKT-[0-9]{6}",
        "-o",
        "plain.cast.zst",
        "--",
        "bash",
        "--norc",
        "--noprofile",
        "-c",
        &format!("{script}; echo TKT-123456"),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let plain = d.join("plain.cast.zst");
    let text = transcript(&d, &plain);
    assert!(text.contains(KEY), "{text}");
    assert!(!text.contains("TKT-123456"), "{text}");
    let raw = zstd_dc(&plain);
    assert!(raw.contains("[REDACTED:ticket]"), "{raw}");
    assert!(raw.contains("\"m\", \"redacted: ticket\"]"), "{raw}");

    // A bad rule stops rec before anything runs, naming the flag.
    let r = d.run(&[
        "rec",
        "--headless",
        "--redact",
        "nope",
        "-o",
        "x.cast.zst",
        "--",
        "true",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--redact"), "{r:?}");
    assert!(!d.join("x.cast.zst").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_redacts_a_key_printed_in_two_pieces() {
    let d = Dir::new();
    let mut host = Server::start(&d, &[]);
    let (mut ws, _) = open(&host.url("key")).await;
    stdin(&mut ws, "echo ready-$((6*7))\n").await;
    read_until(&mut ws, "ready-42").await;
    stdin(&mut ws, &format!("{}\n", key_script(&d))).await;
    let out = read_until(&mut ws, "printed-key").await;
    assert!(
        out.contains(KEY),
        "the client sees the output unchanged: {out}"
    );
    let metrics = http_get(&host.addr, "/metrics");
    assert!(metrics.contains("termtrail_live_shells"), "{metrics}");
    no_key("the metrics", &metrics);
    stdin(&mut ws, "exit\n").await;
    exit_status(&mut ws).await;
    assert_eq!(host.stop(), 0);
    key_redacted(&d, &host.recordings()[0]);
    no_key("the server's log", &host.log.lock().unwrap());
}
