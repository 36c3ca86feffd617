//! S3 for the tests: moto's server (PyPI, installed by scripts/test) on a
//! free loopback port, inspected with boto3; `termtrail` commands talking
//! to it, and recording into it.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use super::{Dir, Run, files_under, peer, run, wait_until};

/// A moto server on 127.0.0.1, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
    python: String,
}

impl Moto {
    /// A server on a free port; None (the test is skipped, see [`peer`])
    /// when the Python test tools are not installed.
    pub fn start() -> Option<Moto> {
        Moto::start_with(&[])
    }

    /// A server that checks credentials and IAM policies after its first
    /// `free` requests (moto's INITIAL_NO_AUTH_ACTION_COUNT).
    pub fn start_enforcing_iam(free: u32) -> Option<Moto> {
        Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", &free.to_string())])
    }

    fn start_with(env: &[(&str, &str)]) -> Option<Moto> {
        let python = peer("TERMTRAIL_PYTHON")?;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Some(Moto::on(&python, port, env))
    }

    /// Starts moto on `port` with `env` and waits until it listens.
    fn on(python: &str, port: u16, env: &[(&str, &str)]) -> Moto {
        let child = Command::new(python)
            .envs(env.iter().copied())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto (installed by scripts/test)");
        wait_until(
            30,
            || format!("moto to listen on port {port}"),
            || TcpStream::connect(("127.0.0.1", port)).ok(),
        );
        Moto {
            child,
            port,
            python: python.to_string(),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs Python with boto3 against this server; returns stdout.
    pub fn py(&self, code: &str) -> String {
        self.py_at(&self.endpoint(), code)
    }

    fn py_at(&self, endpoint: &str, code: &str) -> String {
        let prelude = format!(
            "import boto3, json\nc = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n"
        );
        let out = Command::new(&self.python)
            .arg("-c")
            .arg(prelude + code)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn make_bucket(&self, name: &str) {
        self.py(&format!("c.create_bucket(Bucket='{name}')"));
    }

    /// Every key in `bucket`.
    pub fn all_keys(&self, bucket: &str) -> Vec<String> {
        let out = self.py(&format!(
            "print(json.dumps([o['Key'] for o in c.list_objects_v2(Bucket='{bucket}').get('Contents', [])]))"
        ));
        serde_json::from_str(out.trim()).unwrap()
    }

    /// The recordings in `bucket` (not the journal entries beside them).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.all_keys(bucket)
            .into_iter()
            .filter(|k| k.ends_with(".cast.zst"))
            .collect()
    }

    /// Stops this server (S3 goes away: connections refused) until
    /// [`Moto::start_again`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh server (empty) on the same port after [`Moto::stop`].
    pub fn start_again(&mut self) {
        let fresh = Moto::on(&self.python.clone(), self.port, &[]);
        *self = fresh;
    }

    /// Stops this server and starts a fresh one (empty) on the same port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let fresh = Moto::on(&self.python.clone(), self.port, &[]);
        *self = fresh;
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `termtrail` command talking to `endpoint`, spooling under the test dir.
pub fn tt(d: &Dir, endpoint: &str, args: &[&str]) -> Command {
    let mut c = d.cmd(args);
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("TERMTRAIL_SPOOL_DIR", d.join("spool"));
    c
}

/// Runs `termtrail ARGS` against `endpoint` (see [`tt`]) with empty stdin.
pub fn run_s3(d: &Dir, endpoint: &str, args: &[&str]) -> Run {
    run(&mut tt(d, endpoint, args), b"")
}

/// `termtrail rec --headless OPTS --store STORE -- bash -c SCRIPT` (no rc
/// files) against `endpoint`: a recording into S3.
pub fn rec_s3(d: &Dir, endpoint: &str, store: &str, opts: &[&str], script: &str) -> Command {
    let mut args = vec!["rec", "--headless"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["--store", store, "--"]);
    args.extend_from_slice(&["bash", "--norc", "--noprofile", "-c", script]);
    tt(d, endpoint, &args)
}

pub fn spooled(d: &Dir) -> Vec<String> {
    files_under(&d.join("spool"))
}
