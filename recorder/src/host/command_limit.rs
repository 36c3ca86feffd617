//! The `--max-commands` limit on one-shot commands: the slot a running
//! command holds until it has ended (its recording sealed), the typed
//! refusal when none is free, and how a running command learns that the
//! host is shutting down.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use tokio::sync::OwnedSemaphorePermit;

use super::http::refuse;
use super::metrics::{Killed, add};
use super::state::HostState;

/// Why a command call was refused before anything started. Each maps to an
/// HTTP status and a Status body (docs/protocol.md §9.1); the event-stream
/// encoding maps [`CommandRefusal::TooManyCommands`] to its throttling
/// exception.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandRefusal {
    /// `--max-commands` commands are running already (HTTP 429).
    #[error("this host already runs its maximum of {max} commands; retry later")]
    TooManyCommands {
        /// The limit.
        max: usize,
    },
    /// The host is shutting down (HTTP 503).
    #[error("the host is shutting down")]
    ShuttingDown,
}

impl CommandRefusal {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            CommandRefusal::TooManyCommands { .. } => StatusCode::TOO_MANY_REQUESTS,
            CommandRefusal::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The Status body's `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            CommandRefusal::TooManyCommands { .. } => "TooManyCommands",
            CommandRefusal::ShuttingDown => "ShuttingDown",
        }
    }

    /// The refusal as the JSON Status response.
    pub(crate) fn response(&self) -> Response {
        refuse(self.status(), self.reason(), &self.to_string())
    }
}

/// A running command's place under `--max-commands`: counted in
/// `termtrail_commands_running` until dropped.
pub struct CommandSlot {
    _permit: OwnedSemaphorePermit,
    host: Arc<HostState>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl CommandSlot {
    /// Takes a free slot, or says why there is none.
    pub(crate) fn take(host: &Arc<HostState>) -> Result<CommandSlot, CommandRefusal> {
        let stopping = host.stopping.subscribe();
        if *stopping.borrow() {
            return Err(CommandRefusal::ShuttingDown);
        }
        let Ok(permit) = Arc::clone(&host.command_slots).try_acquire_owned() else {
            add(&host.metrics.commands_refused, 1);
            return Err(CommandRefusal::TooManyCommands {
                max: host.opts.max_commands,
            });
        };
        add(&host.metrics.commands_started, 1);
        add(&host.metrics.commands_running, 1);
        Ok(CommandSlot {
            _permit: permit,
            host: Arc::clone(host),
            stopping,
        })
    }

    /// Resolves once the host is shutting down.
    pub(crate) async fn shutdown(&mut self) {
        // An error means the host is gone: shutting down too.
        let _ = self.stopping.wait_for(|s| *s).await;
    }

    /// Whether the host is shutting down.
    pub(crate) fn stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Counts a command killed for `why`.
    pub(crate) fn killed(&self, why: Killed) {
        add(&self.host.metrics.commands_killed[why as usize], 1);
    }

    /// The binary to run as `<it> __supervise`.
    pub(crate) fn supervisor(&self) -> &Path {
        &self.host.opts.supervisor
    }
}

impl Drop for CommandSlot {
    fn drop(&mut self) {
        self.host
            .metrics
            .commands_running
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_their_status_and_reason() {
        let busy = CommandRefusal::TooManyCommands { max: 3 };
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(busy.reason(), "TooManyCommands");
        assert!(busy.to_string().contains("maximum of 3 commands"));
        assert_eq!(
            CommandRefusal::ShuttingDown.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(CommandRefusal::ShuttingDown.reason(), "ShuttingDown");
    }
}
