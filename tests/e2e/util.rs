//! Helpers, each written once for every test file: a temporary directory
//! per test and a runner for the binary, waiting, test peers, a relay for
//! network faults; in submodules, the hosts (`serve`, `proxy`, peer servers)
//! and their WebSocket client, tmux, and S3 (moto).

mod host;
mod moto;
mod tmux;
mod ws;

pub use host::*;
pub use moto::*;
pub use tmux::*;
pub use ws::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_termtrail")
}

/// The repository's `samples/` directory.
pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// A test's private directory, also used as HOME.
pub struct Dir {
    tmp: tempfile::TempDir,
}

/// What a run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    /// A `termtrail` command with HOME and XDG_DATA_HOME inside this dir.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args);
        self.in_here(c)
    }

    /// A bash script (no rc files) run like [`Dir::cmd`], with `$TT`
    /// naming the binary under test.
    pub fn shell(&self, script: &str) -> Command {
        let mut c = Command::new("bash");
        c.args(["--norc", "--noprofile", "-c", script])
            .env("TT", bin());
        self.in_here(c)
    }

    /// `c` run in this dir, with HOME and XDG_DATA_HOME inside it, no cache
    /// directory of the caller's, and a known terminal and shell.
    fn in_here(&self, mut c: Command) -> Command {
        c.current_dir(self.path())
            .env("HOME", self.path())
            .env("XDG_DATA_HOME", self.join("data"))
            .env_remove("XDG_CACHE_HOME")
            .env_remove("TERMTRAIL_CACHE_DIR")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("TERMTRAIL_STORE")
            .env("TERM", "xterm-256color")
            .env("SHELL", "/bin/bash");
        c
    }

    /// Runs `termtrail ARGS` with the given stdin.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Run {
        let mut c = self.cmd(args);
        run(&mut c, input)
    }

    /// Runs `termtrail ARGS` with empty stdin.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, b"")
    }

    /// Records `script` (run by bash) headless into `file`; asserts success
    /// of the recording itself (not of the script).
    pub fn rec(&self, file: &str, script: &str) -> Run {
        self.rec_with(file, &[], script)
    }

    /// [`Dir::rec`] with more `rec` flags (`--sign-key K`, …).
    pub fn rec_with(&self, file: &str, flags: &[&str], script: &str) -> Run {
        let mut args = vec!["rec", "--headless", "-q"];
        args.extend_from_slice(flags);
        args.extend([
            "-o",
            file,
            "--",
            "bash",
            "--norc",
            "--noprofile",
            "-c",
            script,
        ]);
        let r = self.run(&args);
        assert!(!r.stderr.contains("termtrail:"), "rec failed: {r:?}");
        r
    }
}

/// Runs a command to completion, feeding `input` to its stdin.
pub fn run(c: &mut Command, input: &[u8]) -> Run {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out: Output = child.wait_with_output().expect("wait");
    let _ = feeder.join();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Sends SIGTERM to process `pid` (with the kill CLI); panics when it
/// cannot be sent.
pub fn sigterm(pid: impl std::fmt::Display) {
    let pid = pid.to_string();
    let ok = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -TERM {pid} failed");
}

/// Starts `c` in the background, its output kept for [`wait_ok`] (stdout
/// discarded, stderr kept, stdin empty).
pub fn spawn_bg(c: &mut Command) -> std::process::Child {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Waits for a command [`spawn_bg`] started; asserts that it succeeded
/// (showing its stderr when not).
#[track_caller]
pub fn wait_ok(child: std::process::Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Decompresses a file with the real zstd CLI.
pub fn zstd_dc(path: &Path) -> String {
    let out = Command::new("zstd")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("zstd CLI");
    assert!(
        out.status.success(),
        "zstd -dc {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Compares texts with a readable diff-like message.
#[track_caller]
pub fn assert_text(got: &str, want: &str) {
    if got != want {
        panic!("text differs\n--- want\n{want}\n--- got\n{got}\n---");
    }
}

/// A throw-away CA and a certificate it signed for 127.0.0.1 (openssl CLI):
/// (CA cert, server cert, server key) paths.
pub fn test_ca(d: &Dir) -> (String, String, String) {
    let p = |n: &str| d.join(n).to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl (installed by scripts/test)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-days",
            "2",
            "-subj",
            "/CN=termtrail test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p("key.pem"),
            "-out",
            &p("leaf.csr"),
        ],
    ]
    .concat());
    std::fs::write(
        d.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        &p("leaf.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("leaf.ext"),
        "-out",
        &p("cert.pem"),
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

/// Calls `poll` every 50 ms until `done` holds for what it returns, for up
/// to `secs`; returns the last value either way (the caller asserts on it,
/// with its own message).
pub fn poll_until<T>(secs: u64, mut poll: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = poll();
        if done(&v) || Instant::now() >= deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value `poll` gives, polled every 50 ms for up to `secs`; panics,
/// naming `what`, when time runs out.
#[track_caller]
pub fn wait_until<T>(secs: u64, what: impl Fn() -> String, poll: impl FnMut() -> Option<T>) -> T {
    match poll_until(secs, poll, Option::is_some) {
        Some(v) => v,
        None => panic!("timed out waiting for {}", what()),
    }
}

/// `termtrail verify PATH` once it passes (exit 0) and its report
/// contains `want`: a recording is sealed a moment after its shell ends.
/// Polled for up to 10 s; returns the last run either way (the caller
/// asserts on it).
pub fn verified(d: &Dir, path: &Path, want: &str) -> Run {
    let path = path.to_string_lossy().into_owned();
    poll_until(
        10,
        || d.run(&["verify", &path]),
        |v| v.code == 0 && v.stdout.contains(want),
    )
}

/// The children of process `pid` (pgrep -P), as their pids.
pub fn children(pid: u32) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The contents of a file another process writes: waits (up to `secs`)
/// until it is there, not empty, and unchanged for 100 ms.
#[track_caller]
pub fn wait_for_file(path: &Path, secs: u64) -> String {
    let mut last = (String::new(), Instant::now());
    wait_until(
        secs,
        || path.display().to_string(),
        || {
            let now = std::fs::read_to_string(path).unwrap_or_default();
            if now != last.0 {
                last = (now, Instant::now());
                return None;
            }
            let steady = last.1.elapsed() >= Duration::from_millis(100);
            (!now.is_empty() && steady).then_some(now)
        },
    )
}

/// Every file under `dir` (recursively; none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// The recordings under `dir` (not the journal of seals beside them),
/// sorted.
pub fn recordings_under(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = files_under(dir)
        .into_iter()
        .filter(|p| p.ends_with(".cast.zst"))
        .map(PathBuf::from)
        .collect();
    out.sort();
    out
}

/// A test peer (a program `scripts/test` installs: asciinema, the Python
/// tools with moto, terminado and the AgentCore SDK, playwright-core for
/// Chromium): the path in the environment variable `var`, if it is there.
///
/// When it is not: under `scripts/test` (TERMTRAIL_REQUIRE_PEERS set) the
/// test fails; under a plain `cargo test` the caller returns early and this
/// says so with a `SKIPPED <test>: ...` line on the process's stderr. That
/// line is written to the stderr file itself, not through `eprintln!`, which
/// the test harness captures and shows only for failing tests: it shows for
/// a test that passes without running, too.
pub fn peer(var: &str) -> Option<String> {
    let found = std::env::var(var)
        .ok()
        .filter(|p| !p.is_empty() && Path::new(p).exists());
    if found.is_some() {
        return found;
    }
    let why = match std::env::var(var) {
        Ok(p) if !p.is_empty() => format!("{var}={p} not found"),
        _ => format!("{var} not set"),
    };
    let required = std::env::var("TERMTRAIL_REQUIRE_PEERS").is_ok_and(|v| !v.is_empty());
    assert!(
        !required,
        "{why}, and TERMTRAIL_REQUIRE_PEERS is set: run `bash scripts/test` (it installs the test peers)"
    );
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: {why} (run bash scripts/test)"
    );
    None
}

/// A TCP relay to `target` for fault tests: its connections can be cut
/// (`cut`: a network drop, new connections still work) or the network taken
/// down (`set_down(true)`: connections cut and new ones refused until it is
/// up again); it counts the bytes the server sent (`served`).
pub struct Relay {
    pub addr: String,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    served: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    pub fn start(target: &str) -> Relay {
        use std::io::Read;
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let relay = Relay {
            addr,
            down: Default::default(),
            conns: Default::default(),
            served: Default::default(),
        };
        let (target, down, list, count) = (
            target.to_string(),
            relay.down.clone(),
            relay.conns.clone(),
            relay.served.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if down.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                list.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut c1, mut s1) = (client, server);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut s1);
                    let _ = s1.shutdown(Shutdown::Both);
                });
                let count = count.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64 << 10];
                    while let Ok(n @ 1..) = s2.read(&mut buf) {
                        count.fetch_add(n as u64, Ordering::SeqCst);
                        if c2.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c2.shutdown(Shutdown::Both);
                });
            }
        });
        relay
    }

    /// `http://ADDR`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every connection through the relay (new ones still work).
    pub fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Takes the network down (every connection cut, new ones refused) or
    /// brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
        if down {
            self.cut();
        }
    }

    /// Bytes the server has sent through the relay so far.
    pub fn served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A small deterministic generator for the randomized tests (an LCG: any
/// seed, 0 too), so a failing case is reproducible from its seed.
pub struct Rng(pub u64);

impl Rng {
    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize % n
    }
}
