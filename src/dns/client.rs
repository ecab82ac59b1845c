//! A lean DNS client: queries multiplexed over a few connected UDP sockets.
//!
//! Each socket has one receiver task that routes answers to waiting queries
//! by message id; the query itself checks the echoed question, so a late or
//! spoofed answer for another name is dropped. Retries rotate through the
//! configured name servers. A truncated answer is retried over TCP once, and
//! if the server has no TCP (rbldnsd has none) the partial answer is kept.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::wire::{decode_answer, encode_query, id_of, question};
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
}

impl ClientConfig {
    /// Defaults for the given servers.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        ClientConfig {
            servers,
            timeout: Duration::from_secs(2),
            retries: 1,
            sockets_per_server: 4,
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
    /// Datagrams dropped because no query waited for them or the question did not match.
    pub stray: AtomicU64,
}

struct Shared {
    sock: UdpSocket,
    pending: Mutex<HashMap<u16, oneshot::Sender<Vec<u8>>>>,
}

struct Channel {
    shared: Arc<Shared>,
    reader: AbortHandle,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

struct Server {
    addr: SocketAddr,
    channels: Vec<Channel>,
    next: AtomicUsize,
}

/// A DNS client for many small concurrent queries. Cheap to clone.
#[derive(Clone)]
pub struct DnsClient {
    servers: Arc<Vec<Server>>,
    timeout: Duration,
    retries: u32,
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

impl DnsClient {
    /// Opens the sockets. Must be called inside a tokio runtime.
    pub async fn new(cfg: &ClientConfig) -> std::io::Result<Self> {
        if cfg.servers.is_empty() {
            return Err(std::io::Error::other("no name servers configured"));
        }
        let stats = Arc::new(ClientStats::default());
        let mut servers = Vec::new();
        for &addr in &cfg.servers {
            let mut channels = Vec::new();
            for _ in 0..cfg.sockets_per_server.max(1) {
                let bind: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let sock = UdpSocket::bind(bind).await?;
                sock.connect(addr).await?;
                let shared = Arc::new(Shared {
                    sock,
                    pending: Mutex::new(HashMap::new()),
                });
                let reader = tokio::spawn(read_loop(shared.clone(), stats.clone())).abort_handle();
                channels.push(Channel { shared, reader });
            }
            servers.push(Server {
                addr,
                channels,
                next: AtomicUsize::new(0),
            });
        }
        Ok(DnsClient {
            servers: Arc::new(servers),
            timeout: cfg.timeout,
            retries: cfg.retries,
            stats,
        })
    }

    /// The counters.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// Asks for `qtype` records of `qname`, with retries.
    pub async fn query(&self, qname: &str, qtype: QType) -> Result<Response, QueryError> {
        let mut buf = Vec::with_capacity(96);
        encode_query(0, qname, qtype, &mut buf)?;
        let mut last = QueryError::Timeout;
        for attempt in 0..=self.retries {
            let server = &self.servers[attempt as usize % self.servers.len()];
            match self.attempt(server, &mut buf).await {
                Ok(r) if r.truncated && qtype == QType::Txt => {
                    return Ok(self.tcp_fallback(server.addr, &buf).await.unwrap_or(r));
                }
                Ok(r) => return Ok(r),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn attempt(&self, server: &Server, buf: &mut [u8]) -> Result<Response, QueryError> {
        let n = server.next.fetch_add(1, Ordering::Relaxed) % server.channels.len();
        let ch = &server.channels[n].shared;
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut p = ch
                .pending
                .lock()
                .map_err(|_| QueryError::Network("poisoned lock".into()))?;
            let mut id = fastrand::u16(..);
            while p.contains_key(&id) {
                id = fastrand::u16(..);
            }
            p.insert(id, tx);
            id
        };
        buf[..2].copy_from_slice(&id.to_be_bytes());
        let _guard = Unregister { ch, id };
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = ch.sock.send(buf).await {
            return Err(QueryError::Network(e.to_string()));
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(packet)) => {
                self.stats.answered.fetch_add(1, Ordering::Relaxed);
                decode_answer(&packet, question(buf))
            }
            Ok(Err(_)) => Err(QueryError::Network("socket closed".into())),
            Err(_) => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(QueryError::Timeout)
            }
        }
    }

    async fn tcp_fallback(&self, addr: SocketAddr, query: &[u8]) -> Option<Response> {
        let fut = async {
            let mut s = TcpStream::connect(addr).await.ok()?;
            let len = u16::try_from(query.len()).ok()?;
            s.write_all(&len.to_be_bytes()).await.ok()?;
            s.write_all(query).await.ok()?;
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.ok()?;
            let mut packet = vec![0u8; u16::from_be_bytes(l) as usize];
            s.read_exact(&mut packet).await.ok()?;
            if id_of(&packet) != id_of(query) {
                return None;
            }
            decode_answer(&packet, question(query)).ok()
        };
        tokio::time::timeout(self.timeout, fut).await.ok().flatten()
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

async fn read_loop(shared: Arc<Shared>, stats: Arc<ClientStats>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = match shared.sock.recv(&mut buf).await {
            Ok(n) => n,
            // ICMP errors (port unreachable) surface here; the waiting queries time out.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let packet = &buf[..n];
        let Some(id) = id_of(packet) else { continue };
        let waiter = shared.pending.lock().ok().and_then(|mut p| p.remove(&id));
        match waiter {
            Some(tx) => {
                let _ = tx.send(packet.to_vec());
            }
            None => {
                stats.stray.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
