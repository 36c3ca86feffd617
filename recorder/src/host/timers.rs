//! The host's timers: a shell without traffic for the idle timeout ends
//! (end reason "idle timeout"), and a shell without a client for the grace
//! period ends (closed), and a shell past its deadline (a break-glass
//! grant's expiry) ends with a status saying why. All run on tokio's clock,
//! so tests use paused time.

use std::sync::Arc;
use std::time::Duration;

use termtrail_format::seal::EndReason;

use super::registry::Registry;
use crate::protocol::status_failure;

/// How often the timers look at the shells.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// The timer bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timers {
    /// Shells without traffic (heartbeats excepted) end after this.
    pub(crate) idle_timeout: Duration,
    /// Shells without a client end after this.
    pub(crate) grace: Duration,
}

impl Timers {
    /// Ends, every [`SWEEP_EVERY`], the shells past a bound. Runs until
    /// aborted.
    pub(crate) async fn run(self, shells: Arc<Registry>) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            self.sweep(&shells);
            // Suppressed log lines are reported even when the flood stops.
            super::lograte::flush();
        }
    }

    /// Ends the shells past a bound, now.
    fn sweep(&self, shells: &Registry) {
        for s in shells.all() {
            if let Some(deadline) = s.att().past_deadline() {
                tracing::info!(session = %s.session_id(), shell = %s.shell_id(), why = %deadline.why, "deadline reached: ending the shell");
                s.att()
                    .status(status_failure("BreakGlassExpired", 403, &deadline.why));
                s.att().mark(deadline.why.clone());
                s.end(EndReason::Interrupted {
                    detail: deadline.why,
                });
            } else if s.att().idle_for() >= self.idle_timeout {
                tracing::info!(session = %s.session_id(), shell = %s.shell_id(), "idle timeout");
                // The client (if any) is told why, then gets the exit status
                // and a normal close: an idle timeout and a CLOSE both end
                // the process with SIGHUP (exit status 129).
                let why = format!(
                    "no traffic for {}: the host ended the shell (idle timeout)",
                    super::access::human(self.idle_timeout)
                );
                s.att().status(status_failure("IdleTimeout", 408, &why));
                s.end(EndReason::IdleTimeout);
            } else if s.att().detached_for().is_some_and(|d| d >= self.grace) {
                tracing::info!(session = %s.session_id(), shell = %s.shell_id(), "no client within the grace period");
                s.end(EndReason::Closed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use termtrail_format::event::TermSize;

    use super::*;
    use crate::host::attachment::Attachment;
    use crate::host::backend::{BoxFut, Shell};

    /// A shell that only notes why it was ended.
    struct Fake {
        att: Attachment,
        ended: Mutex<Option<EndReason>>,
    }

    impl Shell for Fake {
        fn session_id(&self) -> &str {
            "s"
        }
        fn shell_id(&self) -> &str {
            "sh"
        }
        fn att(&self) -> &Attachment {
            &self.att
        }
        fn input<'a>(&'a self, _: &'a [u8]) -> BoxFut<'a> {
            Box::pin(async { self.att.touch() })
        }
        fn resize(&self, _: TermSize) -> BoxFut<'_> {
            Box::pin(async {})
        }
        fn end(self: Arc<Self>, end: EndReason) {
            self.ended.lock().unwrap().get_or_insert(end);
        }
        fn recording_path(&self) -> &std::path::Path {
            self.att.recording().path()
        }
    }

    fn fake(dir: &std::path::Path) -> Arc<Fake> {
        Arc::new(Fake {
            att: crate::host::attachment::tests::attachment(dir),
            ended: Mutex::new(None),
        })
    }

    fn start(shell: &Arc<Fake>, timers: Timers) {
        let registry = Arc::new(Registry::default());
        registry.insert(Arc::clone(shell) as Arc<dyn Shell>);
        tokio::spawn(timers.run(registry));
    }

    fn ended(shell: &Fake) -> Option<EndReason> {
        shell.ended.lock().unwrap().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn a_shell_without_traffic_ends_at_the_idle_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let shell = fake(dir.path());
        let _client = shell.att.attach(1, false);
        let timers = Timers {
            idle_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(5),
        };
        start(&shell, timers);
        tokio::time::sleep(Duration::from_secs(20)).await;
        shell.input(b"x").await;
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(ended(&shell), None, "traffic restarted the idle timer");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(ended(&shell), Some(EndReason::IdleTimeout));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shell_past_its_deadline_ends_and_its_client_is_told_why() {
        let dir = tempfile::tempdir().unwrap();
        let shell = fake(dir.path());
        let mut client = shell.att.attach(1, false);
        let why = "break-glass period of 1m over".to_string();
        shell.att.set_deadline(crate::host::attachment::Deadline {
            at: tokio::time::Instant::now() + Duration::from_secs(60),
            why: why.clone(),
        });
        let timers = Timers {
            idle_timeout: Duration::from_secs(3600),
            grace: Duration::from_secs(3600),
        };
        start(&shell, timers);
        // Traffic does not extend a deadline.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            shell.input(b"x").await;
        }
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(ended(&shell), None);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            ended(&shell),
            Some(EndReason::Interrupted {
                detail: why.clone()
            })
        );
        let status = loop {
            match client.rx.try_recv() {
                Ok(crate::host::attachment::ToClient::Status(s)) => break s,
                Ok(_) => continue,
                Err(e) => panic!("no status for the client: {e:?}"),
            }
        };
        let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
        assert_eq!(status["reason"], "BreakGlassExpired");
        assert_eq!(status["message"], why.as_str());
    }

    #[tokio::test(start_paused = true)]
    async fn a_detached_shell_ends_after_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let shell = fake(dir.path());
        let _client = shell.att.attach(1, false);
        let timers = Timers {
            idle_timeout: Duration::from_secs(3600),
            grace: Duration::from_secs(60),
        };
        start(&shell, timers);
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(ended(&shell), None, "attached: no grace timer");
        shell.att.detach(1);
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert_eq!(ended(&shell), None);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(ended(&shell), Some(EndReason::Closed));
    }
}
