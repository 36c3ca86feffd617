//! What the host writes to its audit log (`--audit FILE`): the helpers the
//! request handlers call for `start`/`stop`, `shell_start`, `reattach` and
//! `takeover`, `shell_end` + `seal` when a recording ends, and decisions
//! ([`HostState::audit`], [`HostState::audit_durable`]). Without `--audit`
//! they do nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use termtrail_format::audit::{Attach, AuditEvent, Seal, ShellEnd};
use termtrail_format::seal::EndReason;
use tokio::sync::oneshot;

use super::state::HostState;
use crate::audit::AuditError;
use crate::auth::Identity;
use crate::recording::OnDone;

impl HostState {
    /// Hands `event` to the audit log without waiting (a failure is logged
    /// and counted in `termtrail_audit_failures_total`).
    pub(crate) fn audit(&self, event: AuditEvent) {
        if let Some(log) = &self.opts.audit {
            log.submit(event);
        }
    }

    /// Writes `event` and waits until it is fsynced. The error is for
    /// callers that refuse an action under `--strict` when it cannot be
    /// audited; it is already logged and counted.
    pub(crate) async fn audit_durable(&self, event: AuditEvent) -> Result<(), AuditError> {
        match &self.opts.audit {
            Some(log) => log.record(event).await.map(drop),
            None => Ok(()),
        }
    }

    /// `shell_start` (`--strict`: written before the client hears of the
    /// shell, an error when it cannot be).
    pub(crate) async fn audit_start_of_shell(&self, event: AuditEvent) -> Result<(), AuditError> {
        if self.opts.strict {
            self.audit_durable(event).await
        } else {
            self.audit(event);
            Ok(())
        }
    }
}

/// Who did something, from where.
pub(crate) struct Actor<'a> {
    pub(crate) identity: &'a Identity,
    pub(crate) peer: SocketAddr,
}

/// `shell_start` of a shell opened by `actor` (with the break-glass reason
/// it stated), recorded as `rel`.
pub(crate) fn shell_start_event(
    session: &str,
    shell: &str,
    actor: &Actor<'_>,
    rel: &str,
    break_glass: Option<&str>,
) -> AuditEvent {
    AuditEvent::ShellStart(termtrail_format::audit::ShellStart {
        session: session.to_string(),
        shell: shell.to_string(),
        principal: actor.identity.principal.clone(),
        auth: actor.identity.method.as_str().into(),
        source: Some(actor.peer.to_string()),
        recording: rel.to_string(),
        break_glass: break_glass.map(str::to_string),
    })
}

/// `reattach` or `takeover` of client `client` on a shell, by `actor`.
pub(crate) fn attach_event(
    session: &str,
    shell: &str,
    client: u64,
    took_over: bool,
    actor: &Actor<'_>,
) -> AuditEvent {
    let a = Attach {
        session: session.to_string(),
        shell: shell.to_string(),
        client,
        principal: Some(actor.identity.principal.clone()),
        auth: Some(actor.identity.method.as_str().into()),
        source: Some(actor.peer.to_string()),
    };
    if took_over {
        AuditEvent::Takeover(a)
    } else {
        AuditEvent::Reattach(a)
    }
}

/// `on_done` of a recording, wrapped so that once the recording is sealed
/// the audit log gets `shell_end` (for shells, not command calls) and
/// `seal` — only after `started` fired (the shell's own start was handed to
/// the log first, so the order holds); a shell that never started (the
/// sender dropped) leaves no such lines.
pub(crate) fn audited_on_done(
    host: &Arc<HostState>,
    session: &str,
    shell: &str,
    rel: &str,
    shell_end: bool,
    started: oneshot::Receiver<()>,
    inner: OnDone,
) -> OnDone {
    if host.opts.audit.is_none() {
        return inner;
    }
    let host = Arc::clone(host);
    let (session, shell, rel) = (session.to_string(), shell.to_string(), rel.to_string());
    Box::new(move |sealed| {
        let events = ended_events(&session, &shell, &rel, shell_end, sealed.as_ref());
        inner(sealed);
        let mut started = started;
        match started.try_recv() {
            Ok(()) => events.into_iter().for_each(|e| host.audit(e)),
            Err(oneshot::error::TryRecvError::Empty) => {
                tokio::spawn(async move {
                    if started.await.is_ok() {
                        events.into_iter().for_each(|e| host.audit(e));
                    }
                });
            }
            Err(oneshot::error::TryRecvError::Closed) => {}
        }
    })
}

/// `shell_end` (when asked) and `seal` of a recording that ended with
/// `sealed` (None: it failed, and only `shell_end` is written).
fn ended_events(
    session: &str,
    shell: &str,
    rel: &str,
    shell_end: bool,
    sealed: Option<&termtrail_format::writer::SealSummary>,
) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    if shell_end {
        events.push(AuditEvent::ShellEnd(ShellEnd {
            session: session.to_string(),
            shell: shell.to_string(),
            end: sealed.map_or_else(
                || EndReason::Interrupted {
                    detail: "the recording failed; the end is unknown".into(),
                },
                |s| s.end.clone(),
            ),
        }));
    }
    if let Some(s) = sealed {
        events.push(AuditEvent::Seal(Seal {
            session: session.to_string(),
            shell: shell.to_string(),
            recording: rel.to_string(),
            recording_id: s.id.clone(),
            last_link: hex::encode(s.last_link),
            seal_hash: hex::encode(s.seal_hash),
            events: s.events,
            end: s.end.clone(),
        }));
    }
    events
}

/// `terminate` of `shell` by the host itself, for `reason`.
pub(crate) fn terminate_event(shell: &dyn super::backend::Shell, reason: &str) -> AuditEvent {
    AuditEvent::Terminate(termtrail_format::audit::Terminate {
        session: shell.session_id().to_string(),
        shell: shell.shell_id().to_string(),
        by: None,
        reason: reason.to_string(),
    })
}

/// `start` of this host, listening on `listen`.
pub(crate) fn start_event(listen: Option<String>) -> AuditEvent {
    AuditEvent::Start(termtrail_format::audit::ServerStart {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        listen,
    })
}

/// Writes `stop` (waiting for it and every event before it) and logs the
/// log's head, a copy of which shows later whether lines were cut from the
/// end (`verify --audit FILE --audit-head SEQ:SHA256`).
pub(crate) async fn stopped(host: &HostState, shells_left: usize) {
    let Some(log) = &host.opts.audit else { return };
    let stop = AuditEvent::Stop(termtrail_format::audit::ServerStop {
        shells_left: shells_left as u64,
    });
    if let Ok(head) = log.record(stop).await {
        tracing::info!(audit = %log.path().display(), head = %format!("{}:{}", head.seq, head.hash), "audit log closed; keep its head to check it later with verify --audit-head");
    }
    let shipping = log.clone();
    let deadline = std::time::Duration::from_secs(30);
    let shipped = tokio::task::spawn_blocking(move || shipping.flush_shipping(deadline)).await;
    if !matches!(shipped, Ok(true)) {
        tracing::warn!(audit = %log.path().display(), "the audit log's last lines are not in the store yet; the next start ships them");
    }
}

/// The audit counter for `/metrics`.
pub(crate) fn metrics(host: &HostState) -> String {
    let failures = host.opts.audit.as_ref().map_or(0, |a| a.failures());
    format!(
        "# HELP termtrail_audit_failures_total Audit events that could not be written to --audit.\n# TYPE termtrail_audit_failures_total counter\ntermtrail_audit_failures_total {failures}\n"
    )
}
