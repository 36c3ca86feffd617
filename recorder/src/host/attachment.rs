//! The client side of a shell, shared by local shells (`serve`) and proxied
//! ones (`proxy`): at most one attached client with a bounded output queue,
//! output buffered (256 KiB) while detached for replay on re-attach,
//! takeover, and activity times for the idle and grace timers.
//!
//! The state is behind a std mutex held only for short hand-overs; output is
//! never awaited under it, so one slow client cannot stall a shell.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use termtrail_format::event::EventData;
use tokio::sync::{Notify, mpsc, oneshot};
// tokio's clock: the idle and grace timers run on paused time in tests.
use tokio::time::Instant;

use crate::recording::Recording;

/// Output kept for a detached shell.
pub const REPLAY_BYTES: usize = 256 << 10;
/// Messages queued to a client before the shell waits for it.
const CLIENT_QUEUE: usize = 64;
/// How long a client may take nothing before it is detached.
pub const SLOW_CLIENT: Duration = Duration::from_secs(10);

/// Times a shell's output paused for want of a reader, over all shells.
static PAUSED: AtomicU64 = AtomicU64::new(0);

/// Times a shell's output paused for want of a reader (`/metrics`).
pub(crate) fn paused_total() -> u64 {
    PAUSED.load(Ordering::Relaxed)
}

/// Resolves once the shell is ending ([`Attachment::release`]).
async fn released(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|r| *r).await.is_ok();
}

/// What became of output handed to the attached client.
enum Delivery {
    /// It is in the client's queue.
    Sent,
    /// No client (or it was detached as too slow).
    NoClient,
    /// The shell is ending and the client's queue is full.
    Ending,
}

/// What a client receives from its shell.
#[derive(Debug)]
pub enum ToClient {
    /// Output.
    Stdout(Vec<u8>),
    /// The shell ended: exit code (128+N for signal N) and signal.
    Exit(i32, Option<i32>),
    /// A status object to pass on (channel 0x03) before the exit status,
    /// e.g. why the host ended the shell.
    Status(Vec<u8>),
}

/// Why a client is told to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Another client attached to the same shell (close code 4000).
    TakenOver,
    /// It did not read its output fast enough.
    TooSlow,
    /// The host is shutting down, or the shell is gone.
    Shutdown,
    /// A relay lost its upstream host and could not re-attach: the shell
    /// may still be running there (close code 1013).
    UpstreamLost,
}

struct Client {
    id: u64,
    tx: mpsc::Sender<ToClient>,
    kick: Option<oneshot::Sender<Kick>>,
    /// Statuses waiting for room in the client's queue, in order.
    control: Arc<Mutex<Control>>,
}

/// Statuses (notices, the exit status) a client's full queue could not take
/// yet; one task sends them in order as room appears.
#[derive(Default)]
struct Control {
    waiting: VecDeque<ToClient>,
    sending: bool,
}

struct State {
    client: Option<Client>,
    ring: VecDeque<u8>,
    dropped: u64,
    last_activity: Instant,
    detached_since: Option<Instant>,
    exited: Option<(i32, Option<i32>)>,
    /// When the shell must end (a break-glass grant's expiry), and why.
    deadline: Option<Deadline>,
    /// The principal that opened the shell (only it may re-attach).
    owner: Option<String>,
    /// The way to the shell is lost (a relay's upstream is unreachable):
    /// it is over here, without an exit status.
    lost: bool,
    /// The shell's `--max-shells` slot, freed when it exits.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A time at which the host ends a shell.
#[derive(Debug, Clone)]
pub struct Deadline {
    /// When.
    pub at: Instant,
    /// Why (recorded as the end reason's detail and told to the client).
    pub why: String,
}

/// What attaching returns.
pub struct Attached {
    /// Output for this client.
    pub rx: mpsc::Receiver<ToClient>,
    /// Fires when the client must go.
    pub kick: oneshot::Receiver<Kick>,
    /// Output buffered while no client was attached.
    pub replay: Vec<u8>,
    /// Bytes lost because the buffer overflowed.
    pub dropped: u64,
    /// The exit status, when the shell has already ended.
    pub exited: Option<(i32, Option<i32>)>,
    /// Another client was attached and was told to go.
    pub took_over: bool,
}

/// The client side of one shell.
pub struct Attachment {
    state: Mutex<State>,
    /// Wakes output paused for want of a reader (attach, release, exit).
    wake: Notify,
    /// The shell is ending: output no longer waits for a client, attached
    /// or not.
    released: tokio::sync::watch::Sender<bool>,
    recording: Recording,
}

impl Attachment {
    /// No client yet; the grace timer runs from now.
    pub fn new(recording: Recording) -> Attachment {
        Attachment {
            state: Mutex::new(State {
                client: None,
                ring: VecDeque::new(),
                dropped: 0,
                last_activity: Instant::now(),
                detached_since: Some(Instant::now()),
                exited: None,
                deadline: None,
                owner: None,
                lost: false,
                slot: None,
            }),
            wake: Notify::new(),
            released: tokio::sync::watch::Sender::new(false),
            recording,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere; the state is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shell's recording.
    pub fn recording(&self) -> &Recording {
        &self.recording
    }

    /// Hands output to the client, or buffers it. A client that is behind
    /// slows the shell's output down (as a real terminal does, through the
    /// PTY); one that takes nothing for [`SLOW_CLIENT`] is detached and the
    /// output is buffered for its re-attach. While no client is attached
    /// and the buffer ([`REPLAY_BYTES`]) is full, this waits — the shell's
    /// output pauses, as on a terminal nobody reads — until a client
    /// attaches or the shell is ending ([`Attachment::release`]); then the
    /// oldest buffered output gives way. Other sessions are unaffected.
    pub async fn deliver(&self, bytes: &[u8]) {
        let mut paused = false;
        loop {
            let ending = match self.to_client(bytes).await {
                Delivery::Sent => return,
                Delivery::Ending => true,
                Delivery::NoClient => false,
            };
            {
                let mut st = self.lock();
                if st.client.is_some() && !ending {
                    // A client attached meanwhile: it gets the output.
                    continue;
                }
                let fits = st.ring.is_empty() || st.ring.len() + bytes.len() <= REPLAY_BYTES;
                if fits || ending || *self.released.borrow() || st.exited.is_some() {
                    st.ring.extend(bytes);
                    let excess = st.ring.len().saturating_sub(REPLAY_BYTES);
                    if excess > 0 {
                        st.ring.drain(..excess);
                        st.dropped += excess as u64;
                    }
                    return;
                }
            }
            if !paused {
                paused = true;
                PAUSED.fetch_add(1, Ordering::Relaxed);
                if super::lograte::allow(super::lograte::Kind::Limit) {
                    tracing::info!(
                        "shell output paused: no client reads it and its replay buffer is full"
                    );
                }
            }
            self.wake.notified().await;
        }
    }

    /// Hands output to the attached client: [`Delivery::NoClient`] when
    /// there is none (or it was detached for being too slow),
    /// [`Delivery::Ending`] when the shell is ending and the client's queue
    /// is full (the output is buffered; the client stays).
    async fn to_client(&self, bytes: &[u8]) -> Delivery {
        for _ in 0..2 {
            let client = {
                let mut st = self.lock();
                st.last_activity = Instant::now();
                st.client.as_ref().map(|c| (c.id, c.tx.clone()))
            };
            let Some((id, tx)) = client else { break };
            let mut ending = self.released.subscribe();
            let send = tokio::time::timeout(SLOW_CLIENT, tx.send(ToClient::Stdout(bytes.to_vec())));
            let sent = tokio::select! {
                // A client with room in its queue always gets the output.
                biased;
                sent = send => matches!(sent, Ok(Ok(()))),
                // Ending: a client that does not read must not hold up the
                // shell's end (SIGTERM, the grace period) for 10 s.
                () = released(&mut ending) => return Delivery::Ending,
            };
            if sent {
                return Delivery::Sent;
            }
            let mut st = self.lock();
            if st.client.as_ref().is_some_and(|c| c.id == id) {
                // Too slow (or gone): detach it.
                if let Some(mut c) = st.client.take()
                    && let Some(k) = c.kick.take()
                {
                    let _ = k.send(Kick::TooSlow);
                }
                st.detached_since = Some(Instant::now());
                break;
            }
            // Another client took over meanwhile: give it the output.
        }
        Delivery::NoClient
    }

    /// The shell is ending: output no longer waits for a client (the
    /// oldest buffered output gives way), so the end is seen.
    pub fn release(&self) {
        self.released.send_replace(true);
        self.wake.notify_one();
    }

    /// Holds the shell's `--max-shells` slot until it exits (freed at once
    /// when it already has).
    pub fn hold_slot(&self, slot: tokio::sync::OwnedSemaphorePermit) {
        let mut st = self.lock();
        if st.exited.is_none() && !st.lost {
            st.slot = Some(slot);
        }
    }

    /// Records that the shell ended, frees its slot and tells the client.
    pub fn exit(&self, code: i32, signal: Option<i32>) {
        let mut st = self.lock();
        st.exited = Some((code, signal));
        // Freed before the client hears of the exit: its next connect must
        // find the slot free.
        st.slot = None;
        self.wake.notify_one();
        if let Some(c) = &st.client {
            send_control(c, ToClient::Exit(code, signal));
        }
    }

    /// Attaches a client, taking over from any other one; records a marker.
    pub fn attach(&self, id: u64, reconnected: bool) -> Attached {
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let (kick_tx, kick_rx) = oneshot::channel();
        let mut st = self.lock();
        let took_over = match st.client.take() {
            Some(mut old) => {
                if let Some(k) = old.kick.take() {
                    let _ = k.send(Kick::TakenOver);
                }
                true
            }
            None => false,
        };
        let replay: Vec<u8> = st.ring.drain(..).collect();
        let dropped = std::mem::take(&mut st.dropped);
        st.client = Some(Client {
            id,
            tx,
            kick: Some(kick_tx),
            control: Arc::default(),
        });
        st.detached_since = None;
        st.last_activity = Instant::now();
        let exited = st.exited;
        drop(st);
        self.wake.notify_one();
        let label = match (took_over, reconnected) {
            (true, _) => format!("takeover by client {id}"),
            (false, true) => format!(
                "re-attach by client {id} ({} bytes replayed, {dropped} dropped)",
                replay.len()
            ),
            (false, false) => format!("attach by client {id}"),
        };
        self.mark(label);
        Attached {
            rx,
            kick: kick_rx,
            replay,
            dropped,
            exited,
            took_over,
        }
    }

    /// Puts output a client was handed but never took (the queue of a
    /// client detached for being too slow, at most 64 messages) back in
    /// front of the replay buffer, so that a re-attach gets it: the buffer
    /// may then hold that much more than [`REPLAY_BYTES`] (the shell stays
    /// paused meanwhile). Counted as dropped when a client has attached
    /// meanwhile (it has had the buffer already).
    pub fn requeue(&self, unsent: &[u8]) {
        if unsent.is_empty() {
            return;
        }
        let mut st = self.lock();
        if st.client.is_some() {
            st.dropped += unsent.len() as u64;
            return;
        }
        let mut ring: VecDeque<u8> = unsent.iter().copied().collect();
        ring.extend(st.ring.drain(..));
        st.ring = ring;
    }

    /// Adds bytes an upstream host dropped before this host had them to
    /// what the next re-attach reports as `bytesDropped`.
    pub fn add_dropped(&self, bytes: u64) {
        self.lock().dropped += bytes;
    }

    /// Detaches client `id` if it is still the attached one.
    pub fn detach(&self, id: u64) {
        let mut st = self.lock();
        if st.client.as_ref().is_some_and(|c| c.id == id) {
            st.client = None;
            st.detached_since = Some(Instant::now());
            drop(st);
            self.mark(format!("detach of client {id}"));
        }
    }

    /// Records a marker without waiting.
    pub fn mark(&self, label: String) {
        let rec = self.recording.clone();
        tokio::spawn(async move { rec.record(EventData::Marker(label)).await });
    }

    /// Tells the attached client to go.
    pub fn kick(&self, why: Kick) {
        let mut st = self.lock();
        if let Some(c) = &mut st.client
            && let Some(k) = c.kick.take()
        {
            let _ = k.send(why);
        }
    }

    /// Notes traffic (input, resize) for the idle timer.
    pub fn touch(&self) {
        self.lock().last_activity = Instant::now();
    }

    /// How long since the last traffic or attach.
    pub fn idle_for(&self) -> Duration {
        self.lock().last_activity.elapsed()
    }

    /// How long it has been without a client (None while attached).
    pub fn detached_for(&self) -> Option<Duration> {
        self.lock().detached_since.map(|t| t.elapsed())
    }

    /// Ends the shell at `deadline` (the host's timers do).
    pub fn set_deadline(&self, deadline: Deadline) {
        self.lock().deadline = Some(deadline);
    }

    /// Notes who opened the shell ([`crate::auth::Identity::key`]).
    pub fn set_owner(&self, principal: &str) {
        self.lock().owner = Some(principal.to_string());
    }

    /// Who opened the shell, once noted.
    pub fn owner(&self) -> Option<String> {
        self.lock().owner.clone()
    }

    /// The deadline, once it has passed (taken: it fires once).
    pub fn past_deadline(&self) -> Option<Deadline> {
        let mut st = self.lock();
        if st.deadline.as_ref().is_some_and(|d| Instant::now() >= d.at) {
            st.deadline.take()
        } else {
            None
        }
    }

    /// Sends a status object to the attached client, if any (it is not
    /// kept for a later one).
    pub fn status(&self, status: Vec<u8>) {
        if let Some(c) = &self.lock().client {
            send_control(c, ToClient::Status(status));
        }
    }

    /// Whether the shell has ended here (exited, or lost).
    pub fn exited(&self) -> bool {
        let st = self.lock();
        st.exited.is_some() || st.lost
    }

    /// The way to the shell is lost (a relay's upstream host stays
    /// unreachable): it is over on this host, but it did not exit, so the
    /// client is closed without an exit status ([`Kick::UpstreamLost`]) and
    /// a new connect opens it afresh.
    pub fn lost(&self) {
        let mut st = self.lock();
        st.lost = true;
        // Over here: its slot is free for the next connect.
        st.slot = None;
        self.wake.notify_one();
        if let Some(c) = &mut st.client
            && let Some(k) = c.kick.take()
        {
            let _ = k.send(Kick::UpstreamLost);
        }
    }
}

/// Queues a status or the exit status for a client behind the output it
/// has not taken yet: at once when its queue has room, else as soon as it
/// has (a flood fills the queue; a status must not be lost then), in order,
/// each for at most [`SLOW_CLIENT`].
fn send_control(client: &Client, msg: ToClient) {
    let mut control = client.control.lock().unwrap_or_else(|p| p.into_inner());
    if control.sending {
        control.waiting.push_back(msg);
        return;
    }
    match client.tx.try_send(msg) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(msg)) => {
            control.waiting.push_back(msg);
            control.sending = true;
            let (tx, queue) = (client.tx.clone(), Arc::clone(&client.control));
            tokio::spawn(async move {
                loop {
                    let next = {
                        let mut c = queue.lock().unwrap_or_else(|p| p.into_inner());
                        match c.waiting.pop_front() {
                            Some(m) => m,
                            None => {
                                c.sending = false;
                                return;
                            }
                        }
                    };
                    let _ = tokio::time::timeout(SLOW_CLIENT, tx.send(next)).await;
                }
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs::File;

    use termtrail_format::cast::Header;
    use termtrail_format::event::TermSize;
    use termtrail_format::writer::{ChainWriter, WriterOptions};

    use super::*;
    use crate::recording::{Clock, Jobs, Pace};

    /// An attachment over a recording into `dir`, its engine running.
    pub(crate) fn attachment(dir: &std::path::Path) -> Attachment {
        let path = dir.join("t.cast.zst");
        let file = File::create(&path).unwrap();
        let opts = WriterOptions::default().sync(false);
        let writer = ChainWriter::new(file, Header::new(TermSize::DEFAULT), opts, None).unwrap();
        let (rec, engine) = Recording::new(writer, path, Clock::start(), Pace::HOST, Jobs::Inline);
        tokio::spawn(engine.run());
        Attachment::new(rec)
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_takes_nothing_is_detached_and_its_output_kept_for_reattach() {
        let dir = tempfile::tempdir().unwrap();
        let att = attachment(dir.path());
        let mut slow = att.attach(1, false);
        for _ in 0..CLIENT_QUEUE {
            att.deliver(b"x").await;
        }
        assert_eq!(att.detached_for(), None, "a full queue is not yet too slow");
        let started = Instant::now();
        att.deliver(b"late").await;
        let waited = started.elapsed();
        assert!(
            (SLOW_CLIENT..SLOW_CLIENT + Duration::from_secs(1)).contains(&waited),
            "the shell waited {waited:?} for the client"
        );
        assert_eq!(slow.kick.try_recv(), Ok(Kick::TooSlow));
        assert_eq!(att.detached_for(), Some(Duration::ZERO));
        let again = att.attach(2, true);
        assert_eq!(again.replay, b"late");
        assert_eq!(again.dropped, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_exit_status_reaches_a_client_whose_queue_is_full_after_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let att = attachment(dir.path());
        let mut a = att.attach(1, false);
        for _ in 0..CLIENT_QUEUE {
            att.deliver(b"x").await;
        }
        att.status(b"notice".to_vec());
        att.exit(3, None);
        let mut got = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), a.rx.recv()).await {
            got.push(m);
        }
        assert_eq!(got.len(), CLIENT_QUEUE + 2, "{got:?}");
        assert!(matches!(&got[CLIENT_QUEUE], ToClient::Status(s) if s == b"notice"));
        assert!(
            matches!(got[CLIENT_QUEUE + 1], ToClient::Exit(3, None)),
            "{got:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_client_that_keeps_reading_is_never_detached() {
        let dir = tempfile::tempdir().unwrap();
        let att = attachment(dir.path());
        let Attached {
            mut rx, mut kick, ..
        } = att.attach(1, false);
        // One message a second: far slower than the shell writes.
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(msg) = rx.recv().await {
                got.push(msg);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            got
        });
        let n = CLIENT_QUEUE + 40;
        let started = Instant::now();
        for i in 0..n {
            att.deliver(i.to_string().as_bytes()).await;
        }
        let took = started.elapsed();
        assert!(
            took > 2 * SLOW_CLIENT,
            "the shell was not slowed down past SLOW_CLIENT: {took:?}"
        );
        assert_eq!(kick.try_recv(), Err(oneshot::error::TryRecvError::Empty));
        assert_eq!(att.detached_for(), None, "still attached");
        att.detach(1);
        let got: Vec<Vec<u8>> = reader
            .await
            .unwrap()
            .into_iter()
            .map(|m| match m {
                ToClient::Stdout(b) => b,
                other => panic!("{other:?}"),
            })
            .collect();
        let want: Vec<Vec<u8>> = (0..n).map(|i| i.to_string().into_bytes()).collect();
        assert_eq!(got, want, "every message, in order");
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_timer_runs_only_while_detached() {
        let dir = tempfile::tempdir().unwrap();
        let att = attachment(dir.path());
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(att.detached_for(), Some(Duration::from_secs(5)));
        let _client = att.attach(1, false);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(att.detached_for(), None);
        assert_eq!(att.idle_for(), Duration::from_secs(5));
        att.detach(1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(att.detached_for(), Some(Duration::from_secs(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn output_nobody_reads_pauses_once_the_buffer_is_full_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let att = std::sync::Arc::new(attachment(dir.path()));
        let block = vec![b'y'; 32 << 10];
        for _ in 0..REPLAY_BYTES / block.len() {
            att.deliver(&block).await;
        }
        let before = paused_total();
        let writer = {
            let att = std::sync::Arc::clone(&att);
            tokio::spawn(async move { att.deliver(b"next").await })
        };
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!writer.is_finished(), "output went on with nobody reading");
        assert!(paused_total() > before);
        let back = att.attach(1, true);
        assert_eq!(back.replay.len(), REPLAY_BYTES, "the buffer, whole");
        assert_eq!(back.dropped, 0, "nothing was dropped");
        writer.await.unwrap();
        let mut rx = back.rx;
        assert!(matches!(rx.recv().await, Some(ToClient::Stdout(b)) if b == b"next"));
        att.detach(1);
        // Filled again, then the shell is ending: output gives way.
        for _ in 0..REPLAY_BYTES / block.len() {
            att.deliver(&block).await;
        }
        att.release();
        att.deliver(b"last").await;
        let again = att.attach(2, true);
        assert!(again.replay.ends_with(b"last"));
        assert_eq!(again.dropped, 4);
    }
}
