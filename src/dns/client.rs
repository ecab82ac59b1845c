//! A lean DNS client: queries multiplexed over a few connected UDP sockets.
//!
//! Built not to be fooled by a blind spoofer (issue 14):
//! * message ids come from a CSPRNG (`rand`'s thread RNG, ChaCha-based), and
//!   the sockets (so the source ports) are replaced by [`DnsClient::rotate`],
//!   which the engine calls before every sweep and health check;
//! * a datagram is handed to a waiting query only if it is a response whose
//!   question section echoes the query's exactly (one question, same name,
//!   type and class): anything else is counted as stray and dropped, and the
//!   query keeps waiting, so a spoofed header that arrives first never wins;
//! * a truncated answer is retried over TCP; if that fails the query fails
//!   (the verdict is `unknown`), never "no records".
//!
//! Each socket has one driver task: it reads up to 32 answers with one
//! `recvmmsg` ([`super::batch`]) and routes them by message id. A query sends
//! its own datagram at once (no task to wake); only when the socket's buffer
//! is full does it queue it for the driver, which sends the queue with
//! `sendmmsg` as room comes back. The socket is registered for readability
//! only: registered for writability too (as `tokio::net::UdpSocket` is),
//! every datagram sent on loopback wakes a sleeping worker thread when the
//! kernel frees it, and those wake-ups cost more than the sends (perf, see
//! BENCHMARKS.md). A query is an inline buffer, a map slot, a one-shot
//! channel and a timer: no other allocation.
//! Retries rotate through the configured name servers. A server that cannot
//! be reached (no route) fails its queries with a network error instead of
//! failing the daemon at start.
//!
//! Sockets are opened when the client is built (at the daemon's start, before
//! the web listens), so a flood of web clients cannot take the descriptors
//! they need. A rotation that finds no descriptor left keeps the sockets it
//! has (issue 21), and a query that cannot get one fails as
//! [`QueryError::NoDescriptors`], counted in [`ClientStats::no_descriptors`]:
//! a local shortage, never mistaken for a resolver that does not answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};
use tokio::task::AbortHandle;

use super::batch::{send_batch, set_recv_buffer, RecvBatch};
use super::wire::{decode_answer, echoes_question, id_of, question, QueryPacket};
use super::{QType, QueryError, Response};

/// How the client talks to name servers.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Name servers, tried in order on retries. Must not be empty.
    pub servers: Vec<SocketAddr>,
    /// Time to wait for each attempt. Defaults to 2 s.
    pub timeout: Duration,
    /// Extra attempts after the first. Defaults to 1.
    pub retries: u32,
    /// UDP sockets per server. Defaults to 4: enough to spread receive work
    /// over the runtime's threads, few enough to stay light on the server.
    pub sockets_per_server: usize,
    /// Ask for recursion (RD). Defaults to true (a recursive resolver); false
    /// when asking a list's authoritative servers directly.
    pub recursion: bool,
}

impl ClientConfig {
    /// Defaults for the given servers.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        ClientConfig {
            servers,
            timeout: Duration::from_secs(2),
            retries: 1,
            sockets_per_server: 4,
            recursion: true,
        }
    }
}

/// Counters kept by the client (for logs, metrics and benchmarks).
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Datagrams sent (retries included).
    pub sent: AtomicU64,
    /// Answers matched to a query.
    pub answered: AtomicU64,
    /// Attempts that timed out.
    pub timeouts: AtomicU64,
    /// Datagrams dropped: no query waited for their id, or they did not echo its question.
    pub stray: AtomicU64,
    /// Truncated answers retried over TCP.
    pub tcp_fallbacks: AtomicU64,
    /// Queries and socket rotations that found no file descriptor left.
    pub no_descriptors: AtomicU64,
}

/// A query waiting for its answer.
struct Waiter {
    /// The query sent; its question section is what the answer must echo.
    query: QueryPacket,
    tx: oneshot::Sender<Result<Response, QueryError>>,
}

struct Shared {
    /// Non-blocking, connected, registered for readability only.
    sock: AsyncFd<std::net::UdpSocket>,
    pending: Mutex<HashMap<u16, Waiter>>,
    /// Queries the socket had no room for, in order, for the driver to send.
    backlog: Mutex<Vec<QueryPacket>>,
    /// Whether `backlog` holds any (new queries then queue behind it).
    backlogged: AtomicBool,
    /// Wakes the driver when the backlog stops being empty.
    wake: Notify,
}

struct Channel {
    shared: Arc<Shared>,
    driver: AbortHandle,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// One generation of sockets to a server, or why there is none.
type SocketSet = Arc<Result<Vec<Channel>, QueryError>>;

struct Server {
    addr: SocketAddr,
    sockets: RwLock<SocketSet>,
    next: AtomicUsize,
    /// Until when (ms since the client started) the server is passed over
    /// after a timeout or network error, while another one may answer.
    down_until: AtomicU64,
}

/// How long a server that did not answer is passed over.
const DOWN_FOR: Duration = Duration::from_secs(10);

/// A DNS client for many small concurrent queries. Cheap to clone.
#[derive(Clone)]
pub struct DnsClient {
    servers: Arc<Vec<Server>>,
    /// Spreads queries over the servers.
    next_server: Arc<AtomicUsize>,
    started: std::time::Instant,
    timeout: Duration,
    retries: u32,
    per_server: usize,
    recursion: bool,
    stats: Arc<ClientStats>,
}

impl std::fmt::Debug for DnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addrs: Vec<_> = self.servers.iter().map(|s| s.addr).collect();
        f.debug_struct("DnsClient")
            .field("servers", &addrs)
            .field("timeout", &self.timeout)
            .finish()
    }
}

async fn open_sockets(addr: SocketAddr, n: usize, stats: &Arc<ClientStats>) -> SocketSet {
    let mut channels = Vec::new();
    for _ in 0..n.max(1) {
        let bind: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let sock = match std::net::UdpSocket::bind(bind) {
            Ok(s) => s,
            Err(e) if super::out_of_descriptors(&e) => {
                return Arc::new(Err(QueryError::NoDescriptors(format!(
                    "cannot open a UDP socket: {e}"
                ))))
            }
            Err(e) => {
                return Arc::new(Err(QueryError::Network(format!(
                    "cannot open a UDP socket: {e}"
                ))))
            }
        };
        // room for a burst of answers (a sweep's window, a flood of forgeries) between two reads
        set_recv_buffer(&sock, 1 << 20);
        // connecting a UDP socket only sets its peer: it does not block
        if let Err(e) = sock.connect(addr) {
            return Arc::new(Err(QueryError::Network(format!(
                "cannot reach {addr}: {e}"
            ))));
        }
        let registered = sock.set_nonblocking(true).and_then(|()| {
            // SAFETY: `sock` is an open socket that the AsyncFd owns (and
            // closes) for its whole life; its descriptor never changes.
            unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
                .map_err(std::io::Error::from)
        });
        let sock = match registered {
            Ok(s) => s,
            Err(e) => {
                return Arc::new(Err(QueryError::Network(format!(
                    "cannot register a UDP socket: {e}"
                ))))
            }
        };
        let shared = Arc::new(Shared {
            sock,
            pending: Mutex::new(HashMap::new()),
            backlog: Mutex::new(Vec::new()),
            backlogged: AtomicBool::new(false),
            wake: Notify::new(),
        });
        let driver = tokio::spawn(drive(shared.clone(), stats.clone())).abort_handle();
        channels.push(Channel { shared, driver });
    }
    Arc::new(Ok(channels))
}

impl DnsClient {
    /// Opens the sockets. Must be called inside a tokio runtime. Fails only
    /// without servers: an unreachable server fails its queries instead.
    pub async fn new(cfg: &ClientConfig) -> std::io::Result<Self> {
        if cfg.servers.is_empty() {
            return Err(std::io::Error::other("no name servers configured"));
        }
        let stats = Arc::new(ClientStats::default());
        let mut servers = Vec::new();
        for &addr in &cfg.servers {
            let set = open_sockets(addr, cfg.sockets_per_server, &stats).await;
            if let Err(e) = set.as_ref() {
                tracing::warn!(server = %addr, error = %e, "name server not reachable now; its queries fail until it is");
            }
            servers.push(Server {
                addr,
                sockets: RwLock::new(set),
                next: AtomicUsize::new(0),
                down_until: AtomicU64::new(0),
            });
        }
        Ok(DnsClient {
            servers: Arc::new(servers),
            next_server: Arc::new(AtomicUsize::new(0)),
            started: std::time::Instant::now(),
            timeout: cfg.timeout,
            retries: cfg.retries,
            per_server: cfg.sockets_per_server,
            recursion: cfg.recursion,
            stats,
        })
    }

    /// Whether `other` is a clone of this client (same sockets, same counters).
    pub fn shares_sockets_with(&self, other: &DnsClient) -> bool {
        Arc::ptr_eq(&self.servers, &other.servers)
    }

    /// The counters.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// The servers asked.
    pub fn servers(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.addr).collect()
    }

    /// Replaces every socket (new source ports). Queries in flight finish on
    /// the old ones; a server that was unreachable is tried again. Without a
    /// descriptor for the new ones the current sockets stay (same ports for
    /// one more round, rather than no DNS at all).
    pub async fn rotate(&self) {
        for s in self.servers.iter() {
            let set = open_sockets(s.addr, self.per_server, &self.stats).await;
            if let Err(e @ QueryError::NoDescriptors(_)) = set.as_ref() {
                self.stats.no_descriptors.fetch_add(1, Ordering::Relaxed);
                let have = match s.sockets.read() {
                    Ok(g) => g.is_ok(),
                    Err(p) => p.into_inner().is_ok(),
                };
                if have {
                    tracing::warn!(server = %s.addr, error = %e, "cannot renew the DNS sockets; the current ones stay");
                    continue;
                }
            }
            match s.sockets.write() {
                Ok(mut g) => *g = set,
                Err(p) => *p.into_inner() = set,
            }
        }
    }

    /// Asks for `qtype` records of `qname`, with retries.
    pub async fn query(&self, qname: &str, qtype: QType) -> Result<Response, QueryError> {
        let mut packet = QueryPacket::encode(0, qname, qtype, self.recursion)?;
        let mut last = QueryError::Timeout;
        // Servers in turn from a rotating start (load spread), those that just
        // failed last (fail over fast while another answers): which ones are
        // down is read once, so a failure here does not reorder the retries.
        let n = self.servers.len();
        let start = self.next_server.fetch_add(1, Ordering::Relaxed) % n;
        let now = self.started.elapsed().as_millis() as u64;
        let down = |i: usize| self.servers[i].down_until.load(Ordering::Relaxed) > now;
        let down_then: Vec<bool> = if n == 1 {
            Vec::new()
        } else {
            (0..n).map(down).collect()
        };
        let nth = |k: usize| -> usize {
            if n == 1 {
                return 0;
            }
            let rot = (0..n).map(|i| (start + i) % n);
            rot.clone()
                .filter(|&i| !down_then[i])
                .chain(rot.filter(|&i| down_then[i]))
                .nth(k % n)
                .unwrap_or(0)
        };
        for attempt in 0..=self.retries as usize {
            let server = &self.servers[nth(attempt)];
            match self.attempt(server, &mut packet).await {
                Ok(r) if r.truncated => {
                    self.stats.tcp_fallbacks.fetch_add(1, Ordering::Relaxed);
                    return self.tcp_fallback(server.addr, packet.as_bytes()).await;
                }
                Ok(r) => return Ok(r),
                // no descriptor is our shortage, not the server's fault
                Err(e @ QueryError::NoDescriptors(_)) => last = e,
                Err(e) => {
                    let until =
                        self.started.elapsed().as_millis() as u64 + DOWN_FOR.as_millis() as u64;
                    server.down_until.store(until, Ordering::Relaxed);
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn attempt(
        &self,
        server: &Server,
        packet: &mut QueryPacket,
    ) -> Result<Response, QueryError> {
        let set: SocketSet = match server.sockets.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let channels = match set.as_ref() {
            Ok(c) => c,
            Err(e) => {
                if matches!(e, QueryError::NoDescriptors(_)) {
                    self.stats.no_descriptors.fetch_add(1, Ordering::Relaxed);
                }
                return Err(e.clone());
            }
        };
        let n = server.next.fetch_add(1, Ordering::Relaxed) % channels.len();
        let ch = &channels[n].shared;
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut p = ch
                .pending
                .lock()
                .map_err(|_| QueryError::Network("poisoned lock".into()))?;
            let mut id: u16 = rand::random();
            while p.contains_key(&id) {
                id = rand::random();
            }
            packet.set_id(id);
            p.insert(id, Waiter { query: *packet, tx });
            id
        };
        let _guard = Unregister { ch, id };
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        // sent now, unless the socket is full (then queued for the driver, in order)
        let queue = ch.backlogged.load(Ordering::Acquire)
            || match send_batch(ch.sock.get_ref(), std::slice::from_ref(packet)) {
                Ok(_) => false,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                Err(e) => return Err(QueryError::Network(e.to_string())),
            };
        if queue {
            if let Ok(mut q) = ch.backlog.lock() {
                q.push(*packet);
                ch.backlogged.store(true, Ordering::Release);
            }
            ch.wake.notify_one();
        }
        // A send counts against the task's cooperative budget, as a socket's
        // own `send().await` would: a sweep on a single-threaded runtime
        // yields to the drivers now and then instead of sending its whole
        // window before a single answer is read (and the socket's receive
        // buffer overflows under a flood).
        tokio::task::consume_budget().await;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(Ok(response))) => {
                self.stats.answered.fetch_add(1, Ordering::Relaxed);
                Ok(response)
            }
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(QueryError::Network("socket closed".into())),
            Err(_) => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(QueryError::Timeout)
            }
        }
    }

    /// The same query over TCP (a new id); an answer that fails here is an error, not "no records".
    async fn tcp_fallback(&self, addr: SocketAddr, query: &[u8]) -> Result<Response, QueryError> {
        let mut q = query.to_vec();
        let id: u16 = rand::random();
        q[..2].copy_from_slice(&id.to_be_bytes());
        let fut = async {
            let mut s = TcpStream::connect(addr).await.map_err(|e| {
                if super::out_of_descriptors(&e) {
                    self.stats.no_descriptors.fetch_add(1, Ordering::Relaxed);
                    QueryError::NoDescriptors(format!(
                        "no TCP socket for the truncated answer from {addr}: {e}"
                    ))
                } else {
                    QueryError::Truncated(format!("no TCP to {addr} for the truncated answer: {e}"))
                }
            })?;
            let io = |e: std::io::Error| QueryError::Truncated(format!("TCP to {addr}: {e}"));
            let len = u16::try_from(q.len()).map_err(|_| QueryError::BadName("too long".into()))?;
            s.write_all(&len.to_be_bytes()).await.map_err(io)?;
            s.write_all(&q).await.map_err(io)?;
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.map_err(io)?;
            let mut packet = vec![0u8; u16::from_be_bytes(l) as usize];
            s.read_exact(&mut packet).await.map_err(io)?;
            if id_of(&packet) != Some(id) || !echoes_question(&packet, question(&q)) {
                return Err(QueryError::Truncated(
                    "the TCP answer does not match the query".into(),
                ));
            }
            let r = decode_answer(&packet, question(&q))?;
            if r.truncated {
                return Err(QueryError::Truncated("truncated over TCP too".into()));
            }
            Ok(r)
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or_else(|_| Err(QueryError::Truncated(format!("TCP to {addr} timed out"))))
    }
}

/// Removes a query's slot however the attempt ends (answer, timeout, cancellation).
struct Unregister<'a> {
    ch: &'a Shared,
    id: u16,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.ch.pending.lock() {
            p.remove(&self.id);
        }
    }
}

/// A socket's driver: routes the answers to the queries, and sends the
/// queries the socket had no room for.
async fn drive(shared: Arc<Shared>, stats: Arc<ClientStats>) {
    let mut batch = RecvBatch::default();
    loop {
        let stuck = flush_backlog(&shared);
        tokio::select! {
            ready = shared.sock.readable() => {
                let Ok(mut ready) = ready else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                // a few batches at most, so a flood cannot hold the backlog back
                for _ in 0..8 {
                    match ready.try_io(|s| batch.recv(s.get_ref())) {
                        Ok(Ok(_)) => deliver(&shared, &batch, &stats),
                        // ICMP errors (port unreachable) surface here; the waiting queries time out.
                        Ok(Err(_)) => break,
                        // nothing more to read: readiness cleared
                        Err(_) => break,
                    }
                }
            }
            _ = shared.wake.notified(), if !stuck => {}
            // the socket is registered for readability only: room to send is polled for
            _ = tokio::time::sleep(Duration::from_millis(1)), if stuck => {}
        }
    }
}

/// Sends the backlog, `sendmmsg` batches at a time; whether some is left
/// (the socket is still full).
fn flush_backlog(shared: &Shared) -> bool {
    if !shared.backlogged.load(Ordering::Acquire) {
        return false;
    }
    let Ok(mut q) = shared.backlog.lock() else {
        return false;
    };
    let mut sent = 0;
    while sent < q.len() {
        match send_batch(shared.sock.get_ref(), &q[sent..]) {
            Ok(k) => sent += k.max(1),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => {
                // the first of the rest cannot go: its query fails now, as a send error
                let id = id_of(q[sent].as_bytes()).unwrap_or(0);
                let w = shared.pending.lock().ok().and_then(|mut p| {
                    let same = p
                        .get(&id)
                        .is_some_and(|w| w.query.as_bytes() == q[sent].as_bytes());
                    if same {
                        p.remove(&id)
                    } else {
                        None
                    }
                });
                if let Some(w) = w {
                    let _ = w.tx.send(Err(QueryError::Network(e.to_string())));
                }
                sent += 1;
            }
        }
    }
    q.drain(..sent);
    let left = !q.is_empty();
    shared.backlogged.store(left, Ordering::Release);
    left
}

/// Hands each datagram of `batch` to the query waiting for it, if it is that
/// query's answer.
///
/// Only a well-formed response echoing the waiting query's question (and with
/// records that belong to it) is delivered; a spoofed, stray or malformed
/// datagram leaves the query waiting for the real answer.
fn deliver(shared: &Shared, batch: &RecvBatch, stats: &ClientStats) {
    let mut taken: Vec<(Waiter, &[u8])> = Vec::with_capacity(super::batch::BATCH);
    let mut stray = 0;
    if let Ok(mut p) = shared.pending.lock() {
        for (packet, cut) in batch.datagrams() {
            let id = match id_of(packet) {
                Some(id) if !cut => id,
                _ => {
                    stray += 1;
                    continue;
                }
            };
            let echoes = p
                .get(&id)
                .is_some_and(|w| echoes_question(packet, w.query.question()));
            match echoes.then(|| p.remove(&id)).flatten() {
                Some(w) => taken.push((w, packet)),
                None => stray += 1,
            }
        }
    }
    // decoded outside the lock; a slot whose answer does not decode is put back
    let mut back = Vec::new();
    for (w, packet) in taken {
        match decode_answer(packet, w.query.question()) {
            Ok(r) => {
                let _ = w.tx.send(Ok(r));
            }
            Err(_) => {
                stray += 1;
                back.push(w);
            }
        }
    }
    if !back.is_empty() {
        if let Ok(mut p) = shared.pending.lock() {
            for w in back {
                // unless the query gave up meanwhile (its guard found no slot to remove)
                if !w.tx.is_closed() {
                    if let Some(id) = id_of(w.query.as_bytes()) {
                        p.entry(id).or_insert(w);
                    }
                }
            }
        }
    }
    if stray > 0 {
        stats.stray.fetch_add(stray, Ordering::Relaxed);
    }
}
