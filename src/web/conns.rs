//! Connections: the accept loop, with bounds a slow or hostile client cannot
//! push past (issue 21).
//!
//! `axum::serve` kept every connection as long as its client liked: 2,000
//! clients that sent half a request head and waited were all still held after
//! a minute, took the daemon's descriptors (so its DNS sockets failed) and
//! its memory. Here:
//! * a request head must arrive complete within [`HEADER_READ_TIMEOUT`] of
//!   the connection's start or of its previous response, and a keep-alive
//!   connection idle that long is closed ([`IDLE_TIMEOUT`]); a request is
//!   answered within [`REQUEST_TIMEOUT`] or gets 503;
//! * at most [`max_connections`] are open at once (fewer under a low
//!   descriptor limit: [`RESERVED_DESCRIPTORS`] stay for the rest of the
//!   daemon). At the bound a new connection takes the place of the one that
//!   has waited longest without a request in progress (a slow or idle
//!   client), so a monitor's `/healthz` is still answered while the slots are
//!   full of clients that send nothing; when every slot is serving a request,
//!   the new connection is closed at once rather than queued;
//! * an accept that fails for lack of descriptors frees a slot the same way
//!   instead of spinning;
//! * once a surge of connections is over, free memory is handed back to the
//!   kernel ([`super::Live::release_memory`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt as _;

use super::Live;
use crate::dns::out_of_descriptors;

/// Time for a request head to arrive complete (from the connection's start or its previous response).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive connection with no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request not answered in this time gets 503 (a slow request body, a stuck page).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once, at most.
pub const MAX_CONNECTIONS: usize = 4096;
/// Descriptors left to the rest of the daemon (DNS sockets, SQLite, sources, hooks) under a low limit.
pub const RESERVED_DESCRIPTORS: u64 = 256;
/// A surge this large (connections open at once) is followed by handing free memory back.
const SURGE: usize = 64;

/// The connections the web may hold: [`MAX_CONNECTIONS`], or what the
/// descriptor limit leaves after [`RESERVED_DESCRIPTORS`] (at least 16).
pub fn max_connections() -> usize {
    let soft = nofile_limit();
    let room = soft.saturating_sub(RESERVED_DESCRIPTORS).max(16);
    usize::try_from(room).map_or(MAX_CONNECTIONS, |r| r.min(MAX_CONNECTIONS))
}

/// The soft `RLIMIT_NOFILE` of this process.
pub fn nofile_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return 1024;
    }
    r.rlim_cur
}

/// One open connection.
struct Slot {
    /// Requests in progress.
    busy: AtomicUsize,
    /// When it last started or finished a request (ms since the registry began).
    last: AtomicU64,
    /// Told to close (its place is taken).
    evict: Notify,
}

/// The open connections.
struct Registry {
    started: Instant,
    max: usize,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
    /// Most connections open at once since memory was last handed back.
    peak: AtomicUsize,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn len(&self) -> usize {
        self.open.lock().map_or(0, |m| m.len())
    }

    /// Tells the connection that waited longest without a request in
    /// progress to close; false when every connection is serving one.
    fn evict_one(&self) -> bool {
        let Ok(m) = self.open.lock() else {
            return false;
        };
        let victim = m
            .values()
            .filter(|s| s.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|s| s.last.load(Ordering::Acquire));
        match victim {
            Some(s) => {
                // counted as busy so it is not chosen twice while it closes
                s.busy.fetch_add(1, Ordering::AcqRel);
                s.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn add(&self) -> (u64, Arc<Slot>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            busy: AtomicUsize::new(0),
            last: AtomicU64::new(self.now_ms()),
            evict: Notify::new(),
        });
        let n = match self.open.lock() {
            Ok(mut m) => {
                m.insert(id, slot.clone());
                m.len()
            }
            Err(_) => 0,
        };
        self.peak.fetch_max(n, Ordering::Relaxed);
        (id, slot)
    }

    /// Removes a connection; true when it was the last of a surge.
    fn remove(&self, id: u64) -> bool {
        let n = match self.open.lock() {
            Ok(mut m) => {
                m.remove(&id);
                m.len()
            }
            Err(_) => return false,
        };
        n == 0 && self.peak.swap(0, Ordering::Relaxed) >= SURGE
    }
}

/// Accepts and serves connections until `shutdown` resolves; then each
/// connection finishes its request in progress (2 s at most).
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    live: Arc<dyn Live>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let reg = Arc::new(Registry {
        started: Instant::now(),
        max: max_connections(),
        next: AtomicU64::new(0),
        open: Mutex::new(HashMap::new()),
        peak: AtomicUsize::new(0),
    });
    tracing::debug!(
        max_connections = reg.max,
        descriptors = nofile_limit(),
        "web connections bounded"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let sock = match accepted {
            Ok((s, _)) => s,
            Err(e) if out_of_descriptors(&e) => {
                // free a descriptor (the oldest idle connection) rather than spin on the backlog
                tracing::warn!(error = %e, open = reg.len(), "web: out of file descriptors; closing the longest-idle connection");
                reg.evict_one();
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "web: accept failed");
                continue;
            }
        };
        if reg.len() >= reg.max && !reg.evict_one() {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    refused,
                    max = reg.max,
                    "web: every connection is serving a request; new ones are closed at once"
                );
            }
            drop(sock);
            continue;
        }
        let (id, slot) = reg.add();
        let (reg, app, live, mut stop) = (reg.clone(), app.clone(), live.clone(), stop_rx.clone());
        tokio::spawn(async move {
            connection(sock, app, &reg, &slot, &mut stop).await;
            if reg.remove(id) {
                let live = live.clone();
                // it walks malloc's arenas under their locks: not on an async worker
                let _ = tokio::task::spawn_blocking(move || live.release_memory()).await;
            }
        });
    }
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + Duration::from_secs(2);
    while reg.len() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Serves one connection until it closes, times out, is evicted or the server stops.
async fn connection(
    sock: tokio::net::TcpStream,
    app: Router,
    reg: &Arc<Registry>,
    slot: &Arc<Slot>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) {
    let _ = sock.set_nodelay(true);
    let svc = {
        let (reg, slot) = (reg.clone(), slot.clone());
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let (reg, slot, app) = (reg.clone(), slot.clone(), app.clone());
            async move {
                slot.busy.fetch_add(1, Ordering::AcqRel);
                let r = tokio::time::timeout(REQUEST_TIMEOUT, app.oneshot(req)).await;
                slot.last.store(reg.now_ms(), Ordering::Release);
                slot.busy.fetch_sub(1, Ordering::AcqRel);
                let resp = match r {
                    Ok(Ok(resp)) => resp,
                    Ok(Err(never)) => match never {},
                    Err(_) => axum::response::IntoResponse::into_response((
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "request timed out\n",
                    )),
                };
                Ok::<_, std::convert::Infallible>(resp)
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(sock), svc);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        // the idle deadline, counted from the last request's start or end;
        // while a request is in progress (REQUEST_TIMEOUT bounds it) look again later
        let last = reg.started + Duration::from_millis(slot.last.load(Ordering::Acquire));
        let check_at = if slot.busy.load(Ordering::Acquire) > 0 {
            Instant::now() + Duration::from_secs(1)
        } else {
            last + IDLE_TIMEOUT
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            () = slot.evict.notified() => return,
            () = tokio::time::sleep_until(check_at.into()) => {
                let last = reg.started + Duration::from_millis(slot.last.load(Ordering::Acquire));
                if slot.busy.load(Ordering::Acquire) == 0 && Instant::now() >= last + IDLE_TIMEOUT {
                    return;
                }
            }
            r = stop.changed(), if !stopping => {
                stopping = true;
                if r.is_err() || *stop.borrow() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
