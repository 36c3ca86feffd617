//! Servers the tests start and whose address they read: `termtrail serve`
//! and `termtrail proxy` (from their "listening on" line), and the Python
//! peer servers (terminado, the SigV4 upstream: a "ready PORT" line).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Dir, recordings_under, sigterm, wait_until};

/// The AgentCore runtime ARN of host URLs, URL-encoded.
pub const ARN: &str =
    "arn%3Aaws%3Abedrock-agentcore%3Aus-west-2%3A123456789012%3Aruntime%2Ftermtrail-test";

/// A running `termtrail serve` or `proxy`, stopped (SIGTERM) on drop.
pub struct Server {
    pub child: Child,
    /// HOST:PORT it listens on.
    pub addr: String,
    /// Its local store (nothing there for an S3 store).
    pub store: PathBuf,
    /// Its stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// `termtrail serve` running bash (no rc files) into a local store.
    pub fn start(d: &Dir, extra: &[&str]) -> Server {
        Server::start_kind(d, "serve", extra)
    }

    /// Starts `termtrail serve` or `termtrail proxy` with `extra` flags, on a
    /// free loopback port, without auth, into the local store `d/store`.
    pub fn start_kind(d: &Dir, kind: &str, extra: &[&str]) -> Server {
        let store = d.join("store");
        let mut args = vec![kind, "--listen", "127.0.0.1:0", "--no-auth", "--store"];
        let store_s = store.to_string_lossy().into_owned();
        args.push(&store_s);
        args.extend_from_slice(extra);
        if kind == "serve" && !extra.contains(&"--") {
            args.extend_from_slice(&["--", "bash", "--norc", "--noprofile"]);
        }
        Server::spawn(d.cmd(&args), &store)
    }

    /// Spawns `c` (a `termtrail serve` or `proxy`, or a shell that execs
    /// one) and waits for the address its "listening on" line gives; its
    /// prompt is `tt> `. `store` is where [`Server::recordings`] looks.
    pub fn spawn(mut c: Command, store: &Path) -> Server {
        c.env("PS1", "tt> ")
            .env("HISTFILE", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn the host");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Logged before the address is handed over: a test that
                // reads the log right after start sees the start line.
                if let Ok(mut l) = log2.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if let Some(rest) = line
                    .split("listening on ")
                    .nth(1)
                    .and_then(|r| r.split("://").nth(1))
                {
                    let _ = tx.send(rest.split('/').next().unwrap_or("").to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the host did not start: {}", log.lock().unwrap()));
        Server {
            child,
            addr,
            store: store.to_path_buf(),
            log,
        }
    }

    /// The AgentCore URL of shell `shell` on this host.
    pub fn url(&self, shell: &str) -> String {
        format!(
            "ws://{}/runtimes/{ARN}/ws/shells?shellId={shell}",
            self.addr
        )
    }

    /// Sends SIGTERM and waits (up to 20 s) for the exit code.
    pub fn stop(&mut self) -> i32 {
        if self.child.try_wait().unwrap().is_none() {
            sigterm(self.child.id());
        }
        let child = &mut self.child;
        wait_until(
            20,
            || "the host to stop".into(),
            || child.try_wait().unwrap(),
        )
        .code()
        .unwrap_or(-1)
    }

    /// Recordings in the store (not the journal of seals beside them).
    pub fn recordings(&self) -> Vec<PathBuf> {
        recordings_under(&self.store)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

/// A Python peer server (`tests/python/NAME`) that prints `ready PORT` when
/// it listens, then more lines the test may read; killed on drop.
pub struct PeerServer {
    child: Child,
    pub port: u16,
    lines: Receiver<String>,
}

/// Reads `from` to its end into a string, in a thread of its own.
fn drain(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let to = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            to.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

impl PeerServer {
    /// Runs `python tests/python/SCRIPT ARGS` in `dir` (also its HOME) and
    /// waits for its ready line.
    pub fn start(python: &str, script: &str, args: &[&str], dir: &Dir) -> PeerServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python")
            .join(script);
        let mut child = Command::new(python)
            .arg(&script)
            .args(args)
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        let err = drain(child.stderr.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut server = PeerServer {
            child,
            port: 0,
            lines,
        };
        let ready = server.lines.recv_timeout(Duration::from_secs(30));
        let Some(port) = ready
            .as_deref()
            .ok()
            .and_then(|l| l.strip_prefix("ready "))
            .and_then(|p| p.parse().ok())
        else {
            let _ = server.child.kill();
            let _ = server.child.wait();
            let err = err.lock().unwrap().clone();
            panic!("{}: no ready line ({ready:?}): {err}", script.display());
        };
        server.port = port;
        server
    }

    /// The next line it printed (within 15 s).
    pub fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(15))
            .expect("a line from the peer server")
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
