//! The host's accept loop: each HTTP connection is served by hyper with a
//! deadline for its request head (`--header-timeout`) and counted against
//! `--max-connections` until its socket closes (an upgraded WebSocket
//! included). At the cap, the oldest connection with no request under way
//! (silent, half-sent, or idle between requests) is closed to make room; only
//! when every connection is busy is the newcomer closed instead. At
//! shutdown, connections with no request under way close at once, the others
//! get until the shutdown deadline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::ClientAddr;
use super::lograte::{self, Kind};
use super::metrics::{Metrics, add};

/// The connection limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// Most time a client may take to send a complete request head.
    pub(crate) header_timeout: Duration,
    /// Most client connections open at once.
    pub(crate) max_connections: usize,
}

/// One open connection, as the cap and shutdown see it.
#[derive(Default)]
struct ConnState {
    /// Requests under way on it (0: silent, half-sent, or idle).
    busy: AtomicUsize,
    /// It became a WebSocket: the shell side owns it now.
    upgraded: AtomicBool,
    /// It has sent a request (a later timeout is an idle keep-alive
    /// connection closing, not a slow client).
    served: AtomicBool,
    /// Told when it must close (evicted at the cap).
    evict: Notify,
}

impl ConnState {
    /// Whether closing it loses nothing under way.
    fn idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0 && !self.upgraded.load(Ordering::Acquire)
    }
}

/// The open connections in accept order (ids only grow).
#[derive(Default)]
pub(crate) struct Tracker {
    conns: Mutex<(u64, BTreeMap<u64, Arc<ConnState>>)>,
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, (u64, BTreeMap<u64, Arc<ConnState>>)> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many connections are open (WebSockets included).
    pub(crate) fn open(&self) -> usize {
        self.lock().1.len()
    }

    fn add(self: &Arc<Self>) -> (Guard, Arc<ConnState>) {
        let mut g = self.lock();
        g.0 += 1;
        let id = g.0;
        let state = Arc::new(ConnState::default());
        g.1.insert(id, Arc::clone(&state));
        let guard = Guard {
            tracker: Arc::clone(self),
            id,
        };
        (guard, state)
    }

    /// Tells the oldest idle connection to close; false when none is idle.
    fn evict_oldest_idle(&self) -> bool {
        let mut g = self.lock();
        let victim = g.1.iter().find(|(_, c)| c.idle()).map(|(id, _)| *id);
        match victim.and_then(|id| g.1.remove(&id)) {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Removes its connection from the [`Tracker`] when the socket is dropped.
struct Guard {
    tracker: Arc<Tracker>,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.tracker.lock().1.remove(&self.id);
    }
}

/// A client's stream that counts as open until it is dropped, wherever it
/// goes (hyper, then the WebSocket after an upgrade).
struct Counted<IO> {
    io: IO,
    _guard: Guard,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Counted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Marks a request under way on its connection until dropped.
struct Busy(Arc<ConnState>);

impl Busy {
    fn start(state: &Arc<ConnState>) -> Busy {
        state.busy.fetch_add(1, Ordering::AcqRel);
        state.served.store(true, Ordering::Release);
        Busy(Arc::clone(state))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as under way until it
/// has been sent or dropped.
struct BusyBody {
    inner: axum::body::Body,
    _busy: Busy,
}

impl hyper::body::Body for BusyBody {
    type Data = <axum::body::Body as hyper::body::Body>::Data;
    type Error = <axum::body::Body as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Accepts connections on `listener` and serves `app` on them until `stop`
/// resolves; then closes the idle ones and waits for the others until
/// `deadline` after the stop (the caller ends the shells meanwhile).
pub(crate) async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: ConnLimits,
    metrics: Arc<Metrics>,
    tracker: Arc<Tracker>,
    stop: impl Future<Output = ()>,
    deadline: Duration,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(stop);
    loop {
        let (io, peer) = tokio::select! {
            c = listener.accept() => c,
            () = &mut stop => break,
        };
        while tasks.try_join_next().is_some() {}
        if tracker.open() >= limits.max_connections {
            if tracker.evict_oldest_idle() {
                add(&metrics.connections_evicted, 1);
                if lograte::allow(Kind::Limit) {
                    tracing::warn!(max = limits.max_connections, %peer, "connection limit reached: closed the oldest connection without a request under way");
                }
            } else {
                add(&metrics.connections_refused, 1);
                if lograte::allow(Kind::Limit) {
                    tracing::warn!(max = limits.max_connections, %peer, "connection limit reached, every connection busy: closed the new one");
                }
                drop(io);
                continue;
            }
        }
        let (guard, state) = tracker.add();
        let io = Counted { io, _guard: guard };
        let conn = Conn {
            peer,
            app: app.clone(),
            state,
            header_timeout: limits.header_timeout,
            metrics: Arc::clone(&metrics),
        };
        tasks.spawn(conn.serve(io, stop_rx.clone()));
    }
    let _ = stop_tx.send(true);
    let waited = tokio::time::timeout(deadline, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if waited.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "shutdown deadline passed with requests under way; closing their connections"
        );
        tasks.abort_all();
    }
}

/// Resolves once the host stops (or its accept loop is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.is_ok();
}

/// One accepted connection.
struct Conn {
    peer: SocketAddr,
    app: Router,
    state: Arc<ConnState>,
    header_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Conn {
    /// Serves HTTP/1.1 (and upgrades) on `io` until the client leaves, its
    /// head times out, it is evicted, or shutdown closes it.
    async fn serve<IO>(self, io: IO, mut stop: watch::Receiver<bool>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            peer,
            app,
            state,
            header_timeout,
            metrics,
        } = self;
        let tower = TowerToHyperService::new(app);
        let svc_state = Arc::clone(&state);
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            use hyper::service::Service;
            req.extensions_mut().insert(ConnectInfo(ClientAddr(peer)));
            let busy = Busy::start(&svc_state);
            let answer = tower.call(req);
            async move {
                let resp = answer.await?;
                if resp.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
                    busy.0.upgraded.store(true, Ordering::Release);
                }
                // A streamed answer (a command's output) is a request under
                // way until its last byte: shutdown must not cut it.
                Ok::<_, std::convert::Infallible>(resp.map(|inner| BusyBody { inner, _busy: busy }))
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        let conn = builder
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades();
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = state.evict.notified() => return,
            () = stopping(&mut stop) => {
                if state.idle() {
                    return;
                }
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        match result {
            // A kept-alive connection idle past the deadline: closed quietly.
            Err(e) if e.is_timeout() && state.served.load(Ordering::Acquire) => {}
            Err(e) if e.is_timeout() => {
                add(&metrics.header_timeouts, 1);
                if lograte::allow(Kind::BadRequest) {
                    tracing::info!(%peer, timeout = ?header_timeout, "closed: no complete request head in time");
                }
            }
            Err(e) => {
                if lograte::allow(Kind::BadRequest) {
                    tracing::debug!(%peer, error = %e, "connection error");
                }
            }
            Ok(()) => {}
        }
    }
}

/// Descriptors kept back from connections: the host's own files (store,
/// audit log, listener, S3 uploads) and one-shot commands' pipes.
const RESERVED_FDS: u64 = 128;
/// Descriptors a shell may need besides its client's connection: its PTY
/// (and the duplicate for its terminal modes), its recording and spool, an
/// upstream connection — doubled for margin.
const FDS_PER_SHELL: u64 = 8;

/// Raises the soft limit on open files to the hard limit (the kernel's
/// default soft limit, 1,024, is far below what a host of many connections
/// needs); returns the soft limit now in force (None: unlimited).
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current != now.maximum {
        let raised = Rlimit {
            current: now.maximum,
            maximum: now.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "cannot raise the open-files limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// `--max-connections`' default under an open-files limit of `open_files`
/// with `max_shells` shells: what the limit leaves once the host's own
/// files and every shell's are set aside (at least 16, at most 65,536).
pub fn default_max_connections(open_files: Option<u64>, max_shells: usize) -> usize {
    let limit = open_files.unwrap_or(1 << 20);
    let reserved = RESERVED_FDS + FDS_PER_SHELL * max_shells as u64;
    limit.saturating_sub(reserved).clamp(16, 65_536) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_room_for_shells_under_the_common_limit() {
        assert_eq!(default_max_connections(Some(1024), 10), 1024 - 128 - 80);
        assert_eq!(default_max_connections(Some(100), 10), 16);
        assert_eq!(default_max_connections(None, 10), 65_536);
        assert_eq!(default_max_connections(Some(524_288), 10), 65_536);
    }

    #[test]
    fn the_oldest_idle_connection_is_evicted_first() {
        let t = Arc::new(Tracker::default());
        let (g1, c1) = t.add();
        let (_g2, c2) = t.add();
        let (_g3, c3) = t.add();
        let _busy = Busy::start(&c1);
        c2.upgraded.store(true, Ordering::Release);
        assert_eq!(t.open(), 3);
        assert!(t.evict_oldest_idle(), "the third is idle");
        assert_eq!(t.open(), 2);
        assert!(
            t.lock().1.values().all(|c| !Arc::ptr_eq(c, &c3)),
            "the idle one is the one gone"
        );
        assert!(
            !t.evict_oldest_idle(),
            "one busy, one upgraded: nothing to evict"
        );
        drop(g1);
        assert_eq!(t.open(), 1);
    }
}
