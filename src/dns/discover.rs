//! Finding a list's own (authoritative) name servers from the root, for
//! `[resolver] mode = "direct"`: what a local recursive resolver would do,
//! without installing one, so lists that refuse public resolvers answer.
//!
//! Iterative, from root hints: ask `zone NS` without recursion, follow
//! referrals (glue addresses, or the NS names looked up the same way) until a
//! server answers for the zone itself or refers to it. The NS records' TTL says
//! how long the servers may be used before they are found again.
//!
//! Each question goes out on a fresh UDP socket with a random id, and only an
//! answer echoing the question is read (the same rules as the client's); a
//! truncated one is asked again over TCP.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::wire::echoes_question;

/// A list zone's servers, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The zone asked about.
    pub zone: String,
    /// Its servers' addresses (port 53).
    pub servers: Vec<SocketAddr>,
    /// How long they may be used (the NS records' TTL, at least 1 s: they are looked up again at the next health check after it).
    pub ttl: Duration,
}

/// Why the servers could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoverError {
    /// No server on the way answered.
    #[error("no answer from {0} while looking for the servers of {1}")]
    NoAnswer(String, String),
    /// The zone does not exist.
    #[error("{0} does not exist (NXDOMAIN from its parent)")]
    NoSuchZone(String),
    /// The servers on the way gave nothing usable (no referral, no address).
    #[error("cannot find the servers of {0}: {1}")]
    Lame(String, String),
}

/// The least time servers are used before they are looked up again (a health check at most).
const MIN_TTL: Duration = Duration::from_secs(1);
/// Referrals followed at most (root, TLD, a few levels of delegation).
const MAX_DEPTH: usize = 12;

fn name(s: &str) -> Option<Name> {
    let fq = if s.ends_with('.') {
        s.to_string()
    } else {
        format!("{s}.")
    };
    Name::from_ascii(&fq).ok()
}

fn lower(n: &Name) -> String {
    n.to_ascii().to_ascii_lowercase()
}

/// Asks one server one question without recursion; only a response echoing
/// the question is taken.
pub async fn ask(
    server: SocketAddr,
    qname: &str,
    qtype: RecordType,
    timeout: Duration,
) -> Option<Message> {
    let n = name(qname)?;
    let id: u16 = rand::random();
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = false;
    m.add_query(Query::query(n, qtype));
    let q = m.to_vec().ok()?;
    let question = q.get(12..)?.to_vec();
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let sock = UdpSocket::bind(bind).await.ok()?;
    sock.connect(server).await.ok()?;
    sock.send(&q).await.ok()?;
    let read = async {
        let mut buf = vec![0u8; 65_535];
        loop {
            let n = sock.recv(&mut buf).await.ok()?;
            let p = &buf[..n];
            if p.get(..2) == Some(&id.to_be_bytes()[..]) && echoes_question(p, &question) {
                return Some(p.to_vec());
            }
        }
    };
    let packet = tokio::time::timeout(timeout, read).await.ok()??;
    let msg = Message::from_vec(&packet).ok()?;
    if !msg.metadata.truncation {
        return Some(msg);
    }
    // truncated: the same question over TCP
    let tcp = async {
        let mut s = TcpStream::connect(server).await.ok()?;
        s.write_all(&u16::try_from(q.len()).ok()?.to_be_bytes())
            .await
            .ok()?;
        s.write_all(&q).await.ok()?;
        let mut l = [0u8; 2];
        s.read_exact(&mut l).await.ok()?;
        let mut p = vec![0u8; u16::from_be_bytes(l) as usize];
        s.read_exact(&mut p).await.ok()?;
        (p.get(..2) == Some(&id.to_be_bytes()[..]) && echoes_question(&p, &question))
            .then(|| Message::from_vec(&p).ok())
            .flatten()
    };
    tokio::time::timeout(timeout, tcp).await.ok()?
}

/// Asks the servers in turn until one answers.
async fn ask_any(
    servers: &[SocketAddr],
    qname: &str,
    qtype: RecordType,
    timeout: Duration,
) -> Option<(SocketAddr, Message)> {
    for &s in servers {
        if let Some(m) = ask(s, qname, qtype, timeout).await {
            return Some((s, m));
        }
    }
    None
}

/// Addresses of `host` found from the root (for NS names without glue).
async fn addresses(
    host: &str,
    roots: &[SocketAddr],
    timeout: Duration,
    depth: usize,
) -> Vec<SocketAddr> {
    if depth == 0 {
        return vec![];
    }
    // the servers of the host's parent zone, then its A record there
    let parent = host.split_once('.').map_or("", |(_, p)| p);
    let Ok(d) = Box::pin(find(parent, roots, timeout, depth - 1)).await else {
        return vec![];
    };
    let Some((_, m)) = ask_any(&d.servers, host, RecordType::A, timeout).await else {
        return vec![];
    };
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(SocketAddr::new(IpAddr::V4(a.0), 53)),
            _ => None,
        })
        .collect()
}

/// Finds the servers of `zone`, starting at `roots`.
pub async fn discover(
    zone: &str,
    roots: &[SocketAddr],
    timeout: Duration,
) -> Result<Delegation, DiscoverError> {
    find(zone.trim_end_matches('.'), roots, timeout, 3).await
}

async fn find(
    zone: &str,
    roots: &[SocketAddr],
    timeout: Duration,
    depth: usize,
) -> Result<Delegation, DiscoverError> {
    let target = format!("{}.", zone.to_ascii_lowercase());
    let mut servers: Vec<SocketAddr> = roots.to_vec();
    let mut ttl = Duration::from_secs(86_400);
    for _ in 0..MAX_DEPTH {
        let Some((_, m)) = ask_any(&servers, zone, RecordType::NS, timeout).await else {
            let list: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
            return Err(DiscoverError::NoAnswer(list.join(", "), zone.to_string()));
        };
        if m.metadata.response_code == ResponseCode::NXDomain {
            return Err(DiscoverError::NoSuchZone(zone.to_string()));
        }
        // NS records: in the answer (the zone's own servers speaking), or a referral
        let answer_ns: Vec<(&Name, u32, String)> = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(ns) => Some((&r.name, r.ttl, lower(&ns.0))),
                _ => None,
            })
            .collect();
        let referral: Vec<(&Name, u32, String)> = m
            .authorities
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(ns) => Some((&r.name, r.ttl, lower(&ns.0))),
                _ => None,
            })
            .collect();
        let (ns, owner) = if !answer_ns.is_empty() {
            let owner = lower(answer_ns[0].0);
            (answer_ns, owner)
        } else if !referral.is_empty() {
            let owner = lower(referral[0].0);
            // a referral must lead closer to the zone (an ancestor of it, or it)
            if !(target == owner || target.ends_with(&format!(".{owner}")) || owner == ".") {
                return Err(DiscoverError::Lame(
                    zone.to_string(),
                    format!("referral to {owner}, which does not contain it"),
                ));
            }
            (referral, owner)
        } else if m.metadata.authoritative {
            // no NS for it here, but the server speaks for the zone that holds it
            return Ok(Delegation {
                zone: zone.to_string(),
                servers,
                ttl: ttl.max(MIN_TTL),
            });
        } else {
            return Err(DiscoverError::Lame(
                zone.to_string(),
                "neither an answer nor a referral".into(),
            ));
        };
        ttl = ttl.min(Duration::from_secs(u64::from(
            ns.iter().map(|n| n.1).min().unwrap_or(3600),
        )));
        // the NS names' addresses: glue, else looked up
        let mut next = Vec::new();
        for (_, _, host) in &ns {
            let glue: Vec<SocketAddr> = m
                .additionals
                .iter()
                .filter(|r| lower(&r.name) == *host)
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(SocketAddr::new(IpAddr::V4(a.0), 53)),
                    RData::AAAA(a) => Some(SocketAddr::new(IpAddr::V6(a.0), 53)),
                    _ => None,
                })
                .collect();
            if glue.is_empty() {
                next.extend(addresses(host.trim_end_matches('.'), roots, timeout, depth).await);
            } else {
                next.extend(glue);
            }
        }
        next.sort();
        next.dedup();
        if next.is_empty() {
            return Err(DiscoverError::Lame(
                zone.to_string(),
                format!("no address for the servers of {owner}"),
            ));
        }
        if owner == target {
            return Ok(Delegation {
                zone: zone.to_string(),
                servers: next,
                ttl: ttl.max(MIN_TTL),
            });
        }
        servers = next;
    }
    Err(DiscoverError::Lame(
        zone.to_string(),
        "too many referrals".into(),
    ))
}
