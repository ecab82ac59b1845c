//! The DNSBL engine: asks lists about targets and returns verdicts.
//!
//! * [`Engine::check_health`] asks every list about its RFC 5782 test points.
//! * [`Engine::sweep`] streams one [`Outcome`] per (target, list) pair. Each
//!   list is its own stream (so a list with a low rate cap never holds up the
//!   others) and all of them share one semaphore bounding in-flight queries.
//!   Nothing is collected: a /16 sweep holds only the queries in flight.
//!
//! Key-bearing query zones (`<key>.zen.dq.spamhaus.net`) live only inside
//! [`ActiveList`]; nothing here logs or returns a query name.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{self, Stream, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::catalog::{Catalog, ListDef};
use crate::config::Config;
use crate::dns::qname::query_name;
use crate::dns::{DnsClient, QType};
use crate::health::{
    assess_points, assess_resolver_at, ListCheck, ListHealth, ResolverHealth, ResolverStatus,
};
use crate::secret::Secret;
use crate::target::{Target, TargetSpec};
use crate::verdict::{classify, Verdict};

/// Spaces queries to one list at exactly `1/rate` seconds apart (no bursts),
/// so the cap holds over any window, not just on average.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter allowing `qps` queries per second.
    pub fn new(qps: f64) -> Self {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / qps),
            next: Mutex::new(None),
        }
    }

    /// Waits for the next free slot.
    pub async fn acquire(&self) {
        let slot = {
            let now = Instant::now();
            let mut next = match self.next.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A list ready to be queried.
#[derive(Debug)]
pub struct ActiveList {
    /// The definition.
    pub def: Arc<ListDef>,
    /// The zone actually queried. It may contain a DQS key, so it is a
    /// [`Secret`]: `Debug` of the list (and of the engine, runtime, daemon) redacts it.
    query_zone: Secret,
    /// Whether the key-bearing zone is in use.
    pub uses_key: bool,
    limiter: Option<RateLimiter>,
    /// Counters since start (for `/metrics`).
    pub counters: ListCounters,
    /// Set when the list is asked directly at its own servers (`mode = "direct"`).
    direct: Option<DirectRoute>,
    /// Queries per UTC day the list may get: the config's override, else the catalog's.
    pub daily_limit: Option<u64>,
    /// Negative answers not to ask again before they expire: query-name hash →
    /// expiry (seconds since the engine started).
    negative: Mutex<std::collections::HashMap<u64, u32>>,
    /// Set by a health check whose IPv6 test points failed: why the list is
    /// IPv4-only until the next check (its IPv6 pairs are not asked).
    ipv6_down: Mutex<Option<String>>,
    /// Set when the list is answered from a local mirror of its data (no queries).
    mirror: Option<Arc<crate::mirror::Mirror>>,
}

impl ListCounters {
    /// Counts one query against the day's budget; false (nothing counted) when
    /// `limit` is reached: the query must not be sent.
    pub fn spend(&self, limit: Option<u64>) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let day = (crate::time::now().max(0) / 86_400) as u64;
        if self.day.swap(day, Relaxed) != day {
            self.today.store(0, Relaxed);
        }
        match limit {
            Some(l) if self.today.load(Relaxed) >= l => false,
            _ => {
                self.today.fetch_add(1, Relaxed);
                true
            }
        }
    }

    /// Restores the day's count (after a restart or reload).
    pub fn restore(&self, day: u64, today: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.day.store(day, Relaxed);
        self.today.store(today, Relaxed);
    }
}

/// Whether a query may be answered from the negative cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cache {
    /// A sweep's question: a cached NXDOMAIN stands.
    Use,
    /// A health check's: always asked.
    Bypass,
}

/// Negative answers are kept for the negative TTL of their SOA (RFC 2308), at
/// most an hour (postscreen's ceiling), so a sweep sooner than that does not
/// ask again; an answer without an SOA is not kept.
const NEG_TTL_MAX: u32 = 3600;
/// Entries kept at most over all lists (about 20 bytes each).
const NEG_CACHE_MAX: usize = 1 << 20;

/// A list asked at its own servers: the client for them while their NS TTL
/// lasts, found again from the root by the health check after it.
#[derive(Debug, Default)]
pub struct DirectRoute {
    current: std::sync::RwLock<Option<DirectServers>>,
    last_error: std::sync::Mutex<Option<String>>,
}

#[derive(Debug, Clone)]
struct DirectServers {
    client: DnsClient,
    servers: Vec<std::net::SocketAddr>,
    expires: Instant,
}

/// What is known of a direct list's servers (for `lists --health`, the web).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirectStatus {
    /// The servers in use (empty when none could be found).
    pub servers: Vec<String>,
    /// Why they could not be found (last attempt), if so.
    pub error: Option<String>,
}

/// Per-list query counters.
#[derive(Debug, Default)]
pub struct ListCounters {
    /// The UTC day (days since 1970) `today` counts.
    pub day: std::sync::atomic::AtomicU64,
    /// Queries sent on that day (the daily budget's count).
    pub today: std::sync::atomic::AtomicU64,
    /// A queries sent.
    pub queries: std::sync::atomic::AtomicU64,
    /// Answers that were list errors.
    pub errors: std::sync::atomic::AtomicU64,
    /// Queries without a usable answer.
    pub unknown: std::sync::atomic::AtomicU64,
}

impl ActiveList {
    /// Prepares a list; `key` is the secret for the list's key template, if configured.
    pub fn new(def: Arc<ListDef>, key: Option<&str>, qps_override: Option<f64>) -> Self {
        let (query_zone, uses_key) = match (&def.policy.key_template, key) {
            (Some(t), Some(k)) => (Secret::new(t.replace("{key}", k)), true),
            _ => (Secret::new(def.zone.clone()), false),
        };
        let qps = match (qps_override, def.policy.max_qps) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ActiveList {
            query_zone,
            uses_key,
            limiter: qps.map(RateLimiter::new),
            counters: ListCounters::default(),
            direct: None,
            daily_limit: def.policy.daily_limit,
            negative: Mutex::new(std::collections::HashMap::new()),
            ipv6_down: Mutex::new(None),
            mirror: None,
            def,
        }
    }

    /// Answers this list from a local mirror of its data instead of DNS
    /// (no queries, so no daily budget).
    pub fn with_mirror(mut self, m: Arc<crate::mirror::Mirror>) -> Self {
        self.mirror = Some(m);
        self.daily_limit = None;
        self
    }

    /// The list's mirror, if it is answered from one.
    pub fn mirror(&self) -> Option<&Arc<crate::mirror::Mirror>> {
        self.mirror.as_ref()
    }

    /// Sets the daily query budget (a user's override, e.g. a paid plan).
    pub fn with_daily_limit(mut self, limit: Option<u64>) -> Self {
        self.daily_limit = limit;
        self
    }

    /// Asks this list at its own servers (found from the root) instead of the resolver.
    pub fn direct(mut self) -> Self {
        self.direct = Some(DirectRoute::default());
        self
    }

    /// Whether the list is asked directly, and what is known of its servers.
    pub fn direct_status(&self) -> Option<DirectStatus> {
        let d = self.direct.as_ref()?;
        let servers = d
            .current
            .read()
            .ok()
            .and_then(|g| {
                g.as_ref()
                    .map(|c| c.servers.iter().map(|s| s.to_string()).collect())
            })
            .unwrap_or_default();
        let error = d.last_error.lock().ok().and_then(|g| g.clone());
        Some(DirectStatus { servers, error })
    }

    /// Why the list is IPv4-only this cycle (its IPv6 test points failed the last health check).
    pub fn ipv6_down(&self) -> Option<String> {
        self.ipv6_down.lock().ok().and_then(|g| g.clone())
    }

    /// The zone as it may be shown (the key replaced by `<key>`).
    pub fn display_zone(&self) -> String {
        match (&self.def.policy.key_template, self.uses_key) {
            (Some(t), true) => t.replace("{key}", "<key>"),
            _ => self.def.zone.clone(),
        }
    }
}

/// How the engine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOpts {
    /// Queries in flight at once, over all lists. Defaults to 64.
    pub concurrency: usize,
    /// Root servers for finding direct lists' servers. Defaults to none (no direct list).
    pub root_hints: Vec<std::net::SocketAddr>,
    /// Per-attempt timeout of direct queries and discovery. Defaults to 2 s.
    pub timeout: Duration,
    /// Extra attempts of direct queries (at least one per other server). Defaults to 1.
    pub retries: u32,
    /// Queries a sweep plans for an IPv6 prefix target on a DNS list (its
    /// /64s: `[daemon] prefix_sample` plus one known sender). Defaults to 17.
    pub prefix_queries: u64,
}

impl Default for EngineOpts {
    fn default() -> Self {
        EngineOpts {
            concurrency: 64,
            root_hints: vec![],
            timeout: Duration::from_secs(2),
            retries: 1,
            prefix_queries: 17,
        }
    }
}

/// One health check: every list's health (in list order) and the resolver's.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// Health of each list, in the engine's list order.
    pub lists: Vec<ListHealth>,
    /// Health of the resolver, judged from all lists at once.
    pub resolver: ResolverHealth,
    /// Per list (same order): why a list claiming IPv6 is IPv4-only this
    /// cycle (its IPv6 test points failed), or `None`.
    pub ipv6_down: Vec<Option<String>>,
    /// Per list (same order): codes the catalog does not document that its
    /// test points answered.
    pub undocumented: Vec<Vec<std::net::Ipv4Addr>>,
    /// Why this check says nothing about the lists or the resolver: some of
    /// its queries could not be sent for a shortage here (no file descriptor
    /// left). The daemon records nothing from such a check.
    pub local_failure: Option<String>,
    /// Per list (same order): answered from a local mirror, so the resolver
    /// neither judges nor gates it.
    pub mirrored: Vec<bool>,
}

impl HealthReport {
    /// The resolver gate, the one rule for `check`, sweeps and re-checks: the
    /// lists' health as the sweep must take it. While the resolver is unusable
    /// no list is asked target by target (every pair stays unchecked and no
    /// state moves), so every list reads unreachable with the resolver's reason.
    pub fn gated(&self) -> Vec<ListHealth> {
        match self.resolver.unusable_reason() {
            None => self.lists.clone(),
            Some(why) => self
                .lists
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    if self.mirrored.get(i).copied().unwrap_or(false) {
                        // a mirror asks no resolver
                        return h.clone();
                    }
                    ListHealth::Unreachable {
                        why: format!("not queried: {why}"),
                    }
                })
                .collect(),
        }
    }
}

crate::spelling::closed_set! {
    /// Where a sweep stands (the daemon records it: begun at once, so an
    /// interrupted sweep is visible as such).
    pub enum SweepStatus {
        /// Started, not committed yet.
        Running = "running",
        /// Committed.
        Done = "done",
        /// Interrupted (a stop, a crash, a failed commit).
        Abandoned = "abandoned",
    }
}

/// One verdict of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// What was asked about.
    pub target: Target,
    /// Index into [`Engine::lists`].
    pub list: usize,
    /// The answer.
    pub verdict: Verdict,
}

/// The query engine. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Engine {
    client: DnsClient,
    lists: Vec<ActiveList>,
    sem: Arc<Semaphore>,
    opts: EngineOpts,
    started: Instant,
    /// Negative-cache entries over all lists.
    negative_size: std::sync::atomic::AtomicUsize,
}

impl Engine {
    /// An engine over `lists`, querying through `client`.
    pub fn new(client: DnsClient, lists: Vec<ActiveList>, opts: EngineOpts) -> Self {
        let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        Engine {
            client,
            lists,
            sem,
            opts,
            started: Instant::now(),
            negative_size: Default::default(),
        }
    }

    /// The lists, in the order outcomes refer to.
    pub fn lists(&self) -> &[ActiveList] {
        &self.lists
    }

    /// The DNS client (for its counters).
    pub fn client(&self) -> &DnsClient {
        &self.client
    }

    /// How long a clear answer may be kept: its SOA's negative TTL, at most an hour.
    fn neg_ttl(a: &Result<crate::dns::Response, crate::dns::QueryError>) -> Option<u32> {
        let t = a.as_ref().ok()?.neg_ttl?.min(NEG_TTL_MAX);
        (t > 0).then_some(t)
    }

    /// Drops expired negative-cache entries.
    fn purge_negative(&self) {
        let now = self.started.elapsed().as_secs() as u32;
        let mut left = 0;
        for l in &self.lists {
            if let Ok(mut m) = l.negative.lock() {
                m.retain(|_, exp| *exp > now);
                left += m.len();
            }
        }
        self.negative_size
            .store(left, std::sync::atomic::Ordering::Relaxed);
    }

    /// The client a list's queries go through: the resolver's, or its own servers'.
    fn client_for(&self, list: &ActiveList) -> Option<DnsClient> {
        match &list.direct {
            None => Some(self.client.clone()),
            Some(d) => d
                .current
                .read()
                .ok()
                .and_then(|g| g.as_ref().map(|c| c.client.clone())),
        }
    }

    /// The verdict for a direct list whose servers are not known.
    fn unroutable(&self, list: &ActiveList) -> Verdict {
        let why = list
            .direct
            .as_ref()
            .and_then(|d| d.last_error.lock().ok().and_then(|g| g.clone()))
            .unwrap_or_else(|| "not looked up yet".into());
        Verdict::Unknown {
            why: format!("the list's own servers are not known: {why}"),
        }
    }

    /// Finds (again) the servers of direct lists whose NS TTL has run out,
    /// and gives the others fresh sockets.
    ///
    /// Lists whose zones have the same servers share one client (one set of
    /// sockets): 20 zones on one server would otherwise be 40 sockets, each
    /// with its own driver woken for a trickle of answers.
    async fn refresh_direct(&self) {
        let now = Instant::now();
        let mut known: Vec<DirectServers> = Vec::new();
        for d in self.lists.iter().filter_map(|l| l.direct.as_ref()) {
            if let Some(c) = d.current.read().ok().and_then(|g| g.clone()) {
                if !known
                    .iter()
                    .any(|k| k.client.shares_sockets_with(&c.client))
                {
                    known.push(c);
                }
            }
        }
        // every client in use gets fresh sockets once, however many lists share it
        futures::future::join_all(known.iter().map(|k| k.client.rotate())).await;
        let shared: Mutex<Vec<DirectServers>> = Mutex::new(known);
        let work = self.lists.iter().filter_map(|l| {
            let d = l.direct.as_ref()?;
            let current = d.current.read().ok().and_then(|g| g.clone());
            let shared = &shared;
            Some(async move {
                if current.as_ref().is_some_and(|c| c.expires > now) {
                    return;
                }
                let zone = l.query_zone.expose();
                match crate::dns::discover::discover(zone, &self.opts.root_hints, self.opts.timeout).await {
                    Ok(found) => {
                        let same = shared.lock().ok().and_then(|k| {
                            k.iter().find(|k| k.servers == found.servers).map(|k| k.client.clone())
                        });
                        let client = match same {
                            Some(c) => Ok(c),
                            None => {
                                let mut cc = crate::dns::ClientConfig::new(found.servers.clone());
                                cc.timeout = self.opts.timeout;
                                cc.retries = self
                                    .opts
                                    .retries
                                    .max(u32::try_from(found.servers.len().saturating_sub(1)).unwrap_or(1));
                                cc.recursion = false;
                                cc.sockets_per_server = 2;
                                DnsClient::new(&cc).await
                            }
                        };
                        match client {
                            Ok(client) => {
                                let changed = current.as_ref().is_none_or(|c| c.servers != found.servers);
                                if changed {
                                    let list: Vec<String> = found.servers.iter().map(|s| s.to_string()).collect();
                                    tracing::info!(list = %l.def.id, servers = %list.join(" "), ttl_s = found.ttl.as_secs(), "asking the list's own servers");
                                }
                                let fresh = DirectServers {
                                    client,
                                    servers: found.servers,
                                    expires: Instant::now() + found.ttl,
                                };
                                if let Ok(mut k) = shared.lock() {
                                    if !k.iter().any(|k| k.client.shares_sockets_with(&fresh.client)) {
                                        k.push(fresh.clone());
                                    }
                                }
                                if let Ok(mut g) = d.current.write() {
                                    *g = Some(fresh);
                                }
                                if let Ok(mut e) = d.last_error.lock() {
                                    *e = None;
                                }
                            }
                            Err(e) => {
                                if let Ok(mut g) = d.last_error.lock() {
                                    *g = Some(e.to_string());
                                }
                            }
                        }
                    }
                    Err(e) => {
                        // keep using servers past their TTL rather than none (what resolvers do)
                        tracing::warn!(list = %l.def.id, error = %e, "cannot find the list's own servers");
                        if let Ok(mut g) = d.last_error.lock() {
                            *g = Some(e.to_string());
                        }
                    }
                }
            })
        });
        futures::future::join_all(work).await;
    }

    /// Looks at every mirror's files and loads new versions (off the async workers).
    async fn refresh_mirrors(&self) {
        let work = self.lists.iter().filter_map(|l| {
            let m = l.mirror.clone()?;
            let id = l.def.id.clone();
            Some(async move {
                match tokio::task::spawn_blocking(move || m.refresh()).await {
                    Ok(st) => {
                        if let Some(e) = &st.error {
                            tracing::warn!(list = %id, error = %e, "mirror: the previous data stays in use");
                        }
                    }
                    Err(e) => tracing::warn!(list = %id, error = %e, "mirror reload failed"),
                }
            })
        });
        futures::future::join_all(work).await;
    }

    /// Every listing overlapping `net` on each mirrored list (`None` for lists
    /// without a mirror): the intersection, not an enumeration.
    pub fn intersect(&self, net: &ipnet::IpNet) -> Vec<Option<Intersection>> {
        (0..self.lists.len())
            .map(|li| self.intersect_one(li, net))
            .collect()
    }

    /// [`Engine::intersect`] for one list: each listed piece with its verdict
    /// (classified like a DNS answer, with the piece's TXT).
    pub fn intersect_one(&self, li: usize, net: &ipnet::IpNet) -> Option<Intersection> {
        let l = self.lists.get(li)?;
        let m = l.mirror.as_ref()?;
        Some(m.intersect(net).map(|overlaps| {
            overlaps
                .into_iter()
                .map(|o| {
                    let mut v = classify(
                        &l.def,
                        &Ok(crate::dns::Response {
                            rcode: crate::dns::Rcode::NoError,
                            a: o.a.clone(),
                            txt: vec![],
                            truncated: false,
                            ttl: None,
                            neg_ttl: None,
                        }),
                    );
                    if let Verdict::Listed { txt, .. } = &mut v {
                        txt.clone_from(&o.txt);
                    }
                    (o, v)
                })
                .collect()
        }))
    }

    /// Lets one query to `list` go: waits for its rate limiter and spends one
    /// of its daily budget. The client to ask, or the verdict saying why not.
    async fn admit(&self, list: &ActiveList) -> Result<DnsClient, Verdict> {
        if let Some(l) = &list.limiter {
            l.acquire().await;
        }
        let Some(client) = self.client_for(list) else {
            return Err(self.unroutable(list));
        };
        if !list.counters.spend(list.daily_limit) {
            return Err(Verdict::Unknown {
                why: format!(
                    "not queried: the list's daily budget of {} queries is used up",
                    list.daily_limit.unwrap_or(0)
                ),
            });
        }
        Ok(client)
    }

    /// Asks list `li` for the A records of an arbitrary name under its zone (the canary).
    async fn query_name(&self, li: usize, qname: &str) -> Verdict {
        let list = &self.lists[li];
        if list.mirror.is_some() {
            // a mirror has no resolver to rewrite NXDOMAIN: the canary is not asked
            return Verdict::Clear;
        }
        match self.send_a(list, qname, None).await {
            Ok((_, a)) => classify(&list.def, &a),
            Err(v) => v,
        }
    }

    /// Sends one A query to `list` once it is admitted (rate and daily
    /// budget), within the engine's concurrency bound (the permit `held`, or
    /// one taken here and given back after the A query), and counts it; the
    /// client it used goes back for a follow-up (TXT).
    async fn send_a(
        &self,
        list: &ActiveList,
        qname: &str,
        held: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<
        (
            DnsClient,
            Result<crate::dns::Response, crate::dns::QueryError>,
        ),
        Verdict,
    > {
        let client = self.admit(list).await?;
        let a = {
            let _permit = match held {
                Some(p) => Some(p),
                None => self.sem.clone().acquire_owned().await.ok(),
            };
            client.query(qname, QType::A).await
        };
        list.counters
            .queries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok((client, a))
    }

    /// Asks list `li` about `t`: A first, then TXT when listed.
    pub async fn query(&self, li: usize, t: &Target) -> Verdict {
        self.ask(li, t, Cache::Use, None).await
    }

    /// Asks list `li` about `t` past the negative cache: a re-check someone
    /// asked for (a delisting request) wants today's answer, not a cached one.
    pub async fn query_fresh(&self, li: usize, t: &Target) -> Verdict {
        self.ask(li, t, Cache::Bypass, None).await
    }

    /// Asks list `li` about `t` (A, then TXT when listed), within the permit
    /// `held` if the caller took one.
    async fn ask(
        &self,
        li: usize,
        t: &Target,
        cache: Cache,
        held: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Verdict {
        let list = &self.lists[li];
        if let Some(m) = &list.mirror {
            return mirror_verdict(&list.def, m, t);
        }
        let qname = query_name(t, list.query_zone.expose());
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            qname.hash(&mut h);
            h.finish()
        };
        let now = self.started.elapsed().as_secs() as u32;
        if cache == Cache::Use
            && list
                .negative
                .lock()
                .ok()
                .and_then(|m| m.get(&key).copied())
                .is_some_and(|exp| exp > now)
        {
            return Verdict::Clear;
        }
        let (client, a) = match self.send_a(list, &qname, held).await {
            Ok(r) => r,
            Err(v) => return v,
        };
        let mut v = keyed_refusal(list, &a).unwrap_or_else(|| classify(&list.def, &a));
        if let (Verdict::Clear, Cache::Use, Some(ttl)) = (&v, cache, Self::neg_ttl(&a)) {
            // not asked again before the negative answer expires
            if self
                .negative_size
                .load(std::sync::atomic::Ordering::Relaxed)
                < NEG_CACHE_MAX
            {
                if let Ok(mut m) = list.negative.lock() {
                    if m.insert(key, now + ttl).is_none() {
                        self.negative_size
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }
        {
            use std::sync::atomic::Ordering::Relaxed;
            match v.kind() {
                crate::verdict::VerdictKind::ListError => {
                    list.counters.errors.fetch_add(1, Relaxed)
                }
                crate::verdict::VerdictKind::Unknown => list.counters.unknown.fetch_add(1, Relaxed),
                _ => 0,
            };
        }
        if v.wants_txt() && list.counters.spend(list.daily_limit) {
            if let Some(l) = &list.limiter {
                l.acquire().await;
            }
            let _permit = self.sem.acquire().await;
            if let (Ok(r), Verdict::Listed { txt, .. }) =
                (client.query(&qname, QType::Txt).await, &mut v)
            {
                *txt = r.txt;
            }
        }
        tracing::debug!(list = %list.def.id, target = %t, verdict = v.kind().as_str(), "answer");
        v
    }

    /// Asks list `li` about each of `points` (health-check questions, past the cache).
    async fn ask_points(&self, li: usize, points: &[&Target]) -> Vec<(String, Verdict)> {
        let asked = points.iter().map(|t| self.ask(li, t, Cache::Bypass, None));
        let verdicts = futures::future::join_all(asked).await;
        points.iter().map(|t| t.to_string()).zip(verdicts).collect()
    }

    /// Health of every list, in list order (all lists checked concurrently).
    pub async fn check_health(&self) -> Vec<ListHealth> {
        self.check().await.lists
    }

    /// Health of every list and of the resolver.
    ///
    /// Each list is asked about its two test points and about a random name
    /// under its zone that cannot exist (the canary, which tells NXDOMAIN
    /// rewriting from a listing). It also replaces the client's sockets first:
    /// every sweep (which starts with a health check) uses fresh source ports.
    pub async fn check(&self) -> HealthReport {
        let short_before = self.descriptor_shortages();
        self.client.rotate().await;
        self.refresh_direct().await;
        self.refresh_mirrors().await;
        self.purge_negative();
        let checks = (0..self.lists.len()).map(|li| self.check_list(li));
        let mut results = futures::future::join_all(checks).await;
        let short = self.descriptor_shortages().saturating_sub(short_before);
        let local_failure = (short > 0).then(|| {
            format!(
                "out of file descriptors: {short} DNS socket(s) or query(ies) of the health check could not be opened (EMFILE/ENFILE); raise the limit (LimitNOFILE= in the unit, ulimit -n)"
            )
        });
        diagnose_keys(&self.lists, &mut results);
        self.note_list_results(&results);
        let resolver = self.judge_resolver(&results, local_failure.as_deref());
        let mut lists = Vec::new();
        let mut ipv6_down = Vec::new();
        let mut undocumented = Vec::new();
        for (h, _, v6, u) in results {
            lists.push(h);
            ipv6_down.push(v6);
            undocumented.push(u);
        }
        HealthReport {
            lists,
            resolver,
            ipv6_down,
            undocumented,
            local_failure,
            mirrored: self.lists.iter().map(|l| l.mirror.is_some()).collect(),
        }
    }

    /// One list's part of a health check: its health from the test points,
    /// the canary's verdict, why IPv6 is off this cycle (if it is), and the
    /// undocumented codes its test points answered.
    async fn check_list(&self, li: usize) -> ListCheckResult {
        let tp = &self.lists[li].def.test_points;
        let canary = format!(
            "rblwatch-canary-{:016x}.{}",
            rand::random::<u64>(),
            self.lists[li].query_zone.expose()
        );
        // The IPv6 points (of an `ip` list) only decide whether IPv6 targets are asked.
        let v6_family = self.lists[li].def.kind == crate::catalog::ListKind::Ipv6;
        let (pos, neg) = tp.of_family(v6_family);
        let (pos6, neg6) = if v6_family {
            (vec![], vec![])
        } else {
            tp.of_family(true)
        };
        let (pos, neg, pos6, neg6, can) = futures::join!(
            self.ask_points(li, &pos),
            self.ask_points(li, &neg),
            self.ask_points(li, &pos6),
            self.ask_points(li, &neg6),
            self.query_name(li, &canary)
        );
        let mut h = assess_points(&refs(&pos), &refs(&neg));
        if let Some(why) = self.lists[li].mirror.as_ref().and_then(|m| m.unavailable()) {
            // never healthy on old data, whatever its test points say
            h = ListHealth::Stale { why };
        }
        let v6 = if pos6.is_empty() && neg6.is_empty() {
            None
        } else {
            let h6 = assess_points(&refs(&pos6), &refs(&neg6));
            (!h6.is_healthy()).then(|| {
                format!(
                    "the list claims IPv6 but its IPv6 test points fail ({}: {}); IPv4 only this cycle",
                    h6.name(),
                    h6.why()
                )
            })
        };
        let def = &self.lists[li].def;
        let mut undocumented: Vec<std::net::Ipv4Addr> = pos
            .iter()
            .chain(&neg)
            .chain(&pos6)
            .chain(&neg6)
            .flat_map(|(_, v)| def.undocumented_codes(v.codes()))
            .collect();
        undocumented.sort();
        undocumented.dedup();
        (h, can, v6, undocumented)
    }

    /// Logs the lists that are not healthy and records which are IPv4-only this cycle.
    fn note_list_results(&self, results: &[ListCheckResult]) {
        for ((h, _, v6, _), l) in results.iter().zip(&self.lists) {
            if !h.is_healthy() {
                tracing::warn!(list = %l.def.id, health = h.name(), why = h.why(), "list is not healthy");
            }
            if let Some(why) = v6 {
                tracing::warn!(list = %l.def.id, why = %why, "IPv6 targets are not checked on this list this cycle");
            }
            if let Ok(mut g) = l.ipv6_down.lock() {
                *g = v6.clone();
            }
        }
    }

    /// The resolver's health from every list asked through DNS (mirrored
    /// lists say nothing about it), or "not judged" after a local shortage.
    fn judge_resolver(
        &self,
        results: &[ListCheckResult],
        local_failure: Option<&str>,
    ) -> ResolverHealth {
        // the shared resolver's addresses, for its messages (direct lists ask their own servers)
        let servers = if self.lists.iter().any(|l| l.direct.is_none()) {
            self.client.servers()
        } else {
            Vec::new()
        };
        let resolver = assess_resolver_at(
            &results
                .iter()
                .zip(&self.lists)
                .filter(|(_, l)| l.mirror.is_none())
                .map(|((h, c, _, _), l)| ListCheck {
                    id: &l.def.id,
                    health: h,
                    canary: c,
                })
                .collect::<Vec<_>>(),
            &servers,
        );
        if let Some(why) = local_failure {
            // answers that were never asked say nothing about the resolver
            tracing::error!("{why}; the resolver and the lists are not judged from this check");
            return ResolverHealth {
                status: ResolverStatus::Degraded,
                why: format!("not judged: {why}"),
                fix:
                    "raise the file descriptor limit (LimitNOFILE= in the systemd unit, ulimit -n)"
                        .into(),
            };
        }
        if resolver.status != ResolverStatus::Ok {
            tracing::warn!(resolver = resolver.status.as_str(), why = %resolver.why, fix = %resolver.fix, "the resolver is not usable as it is");
        }
        resolver
    }

    /// Queries and socket renewals that found no file descriptor, over the
    /// client and every direct list's own.
    fn descriptor_shortages(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        // a client shared by several lists is counted once
        let mut clients: Vec<DnsClient> = Vec::new();
        for d in self.lists.iter().filter_map(|l| l.direct.as_ref()) {
            if let Some(c) = d
                .current
                .read()
                .ok()
                .and_then(|g| g.as_ref().map(|c| c.client.clone()))
            {
                if !clients.iter().any(|k| k.shares_sockets_with(&c)) {
                    clients.push(c);
                }
            }
        }
        let direct: u64 = clients
            .iter()
            .map(|c| c.stats().no_descriptors.load(Relaxed))
            .sum();
        self.client.stats().no_descriptors.load(Relaxed) + direct
    }

    /// Streams an outcome for every (target, list) pair the list kind accepts.
    ///
    /// Lists whose health is `unreachable` are not queried (each query would
    /// only wait out its timeout); their pairs come back as `Unknown`.
    pub fn sweep<'a>(
        &'a self,
        targets: &'a [TargetSpec],
        health: &'a [ListHealth],
    ) -> impl Stream<Item = Outcome> + 'a {
        self.sweep_lists(targets, health, None)
    }

    /// Like [`Engine::sweep`], over the lists `due` marks (all when `None`):
    /// a list swept less often to keep within its budget is left out.
    pub fn sweep_lists<'a>(
        &'a self,
        targets: &'a [TargetSpec],
        health: &'a [ListHealth],
        due: Option<&'a [bool]>,
    ) -> impl Stream<Item = Outcome> + 'a {
        let per_list = self.opts.concurrency.max(1);
        let lists = (0..self.lists.len())
            .filter(move |li| due.is_none_or(|d| d.get(*li).copied().unwrap_or(true)));
        let streams = lists.map(move |li| {
            let kind = self.lists[li].def.kind;
            let skip = match health.get(li) {
                Some(ListHealth::Unreachable { why }) => {
                    Some(format!("not queried: list unreachable ({why})"))
                }
                Some(ListHealth::Stale { why }) => Some(format!("not checked: {why}")),
                _ => None,
            };
            let pairs = targets
                .iter()
                .flat_map(|s| s.targets())
                .filter(move |t| kind.accepts(t));
            // A list whose IPv6 test points failed is IPv4-only this cycle:
            // its IPv6 pairs are unchecked, never clear.
            let v6_skip = self.lists[li]
                .ipv6_down()
                .map(|why| format!("not queried: {why}"));
            // A list without a rate cap takes its in-flight permit before a
            // pair joins its window, one pair at a time: the lists wait for
            // permits as one waiter each, not as a future per pair (a sweep
            // of 20 lists at 256 in flight otherwise keeps 5,120 futures
            // waking one another through the semaphore). A capped list waits
            // for its rate first, holding no permit, as before.
            let pre = self.lists[li].limiter.is_none() && self.lists[li].mirror.is_none();
            stream::iter(pairs)
                .map(move |t| {
                    let skip = match (&t, &v6_skip) {
                        (Target::Ip(std::net::IpAddr::V6(_)), Some(why)) if skip.is_none() => {
                            Some(why.clone())
                        }
                        _ => skip.clone(),
                    };
                    (t, skip)
                })
                .then(move |(t, skip)| async move {
                    let permit = match pre && skip.is_none() {
                        true => self.sem.clone().acquire_owned().await.ok(),
                        false => None,
                    };
                    (t, skip, permit)
                })
                .map(move |(t, skip, permit)| async move {
                    let verdict = match skip {
                        Some(why) => Verdict::Unknown { why },
                        None => self.ask(li, &t, Cache::Use, permit).await,
                    };
                    Outcome {
                        target: t,
                        list: li,
                        verdict,
                    }
                })
                .buffer_unordered(per_list)
                .boxed()
        });
        stream::select_all(streams)
    }
}

/// One list's health-check result: its health, the canary's verdict, why
/// IPv6 is off this cycle, and the undocumented codes its test points answered.
type ListCheckResult = (ListHealth, Verdict, Option<String>, Vec<std::net::Ipv4Addr>);

/// A mirrored list's intersection with a range: each listed piece and its
/// verdict, or why the mirror cannot answer.
pub type Intersection = Result<Vec<(crate::mirror::Overlap, Verdict)>, String>;

/// The verdict a mirror gives: its answer classified exactly as the same
/// answer from DNS (an A query, then the TXT records of a listing).
pub fn mirror_verdict(def: &ListDef, m: &crate::mirror::Mirror, t: &Target) -> Verdict {
    use crate::mirror::MirrorAnswer;
    let resp = |rcode, a| crate::dns::Response {
        rcode,
        a,
        txt: vec![],
        truncated: false,
        ttl: None,
        neg_ttl: None,
    };
    match m.answer(t) {
        MirrorAnswer::Unavailable(why) => Verdict::Unknown { why },
        MirrorAnswer::NotListed => classify(def, &Ok(resp(crate::dns::Rcode::NxDomain, vec![]))),
        MirrorAnswer::Listed { a, txt } => {
            let mut v = classify(def, &Ok(resp(crate::dns::Rcode::NoError, a)));
            if let Verdict::Listed { txt: t, .. } = &mut v {
                *t = txt;
            }
            v
        }
    }
}

/// `(name, verdict)` pairs as borrowed for [`assess_points`].
fn refs(v: &[(String, Verdict)]) -> Vec<(&str, &Verdict)> {
    v.iter().map(|(t, v)| (t.as_str(), v)).collect()
}

/// A keyed list asked at its own servers that answers REFUSED: the
/// operator refuses the key (unknown, expired, or not entitled to this zone).
/// Through a resolver, REFUSED is the resolver's own word and stays as it is.
fn keyed_refusal(
    list: &ActiveList,
    a: &Result<crate::dns::Response, crate::dns::QueryError>,
) -> Option<Verdict> {
    let refused = matches!(a, Ok(r) if r.rcode == crate::dns::Rcode::Refused);
    (refused && list.uses_key && list.direct.is_some()).then(|| Verdict::ListError {
        why: format!(
            "REFUSED by the list's own servers: {}: the operator refuses queries with this key (unknown, expired, or not entitled to this zone)",
            crate::catalog::ErrorCause::InvalidKey.label()
        ),
        codes: vec![],
    })
}

/// A keyed list that fails (SERVFAIL through a resolver, REFUSED) while other
/// zones asked with the same key answer: the key works, so it may not cover
/// this zone. Said so, with the operator's portal, instead of network advice.
fn diagnose_keys<C, V, U>(lists: &[ActiveList], results: &mut [(ListHealth, C, V, U)]) {
    let failed = |h: &ListHealth| match h {
        ListHealth::Unreachable { why } => why.contains("SERVFAIL"),
        ListHealth::Blocked { why } => {
            why.contains("REFUSED")
                || crate::catalog::ErrorCause::find_in(why)
                    == Some(crate::catalog::ErrorCause::InvalidKey)
        }
        _ => false,
    };
    fn key_of(l: &ActiveList) -> Option<&str> {
        l.uses_key.then_some(l.def.policy.key.as_deref()).flatten()
    }
    let verdicts: Vec<(Option<&str>, bool, bool)> = lists
        .iter()
        .zip(results.iter())
        .map(|(l, (h, ..))| (key_of(l), h.is_healthy(), failed(h)))
        .collect();
    for (i, (l, r)) in lists.iter().zip(results.iter_mut()).enumerate() {
        let (Some(key), _, true) = verdicts[i] else {
            continue;
        };
        let answering: Vec<&str> = lists
            .iter()
            .zip(&verdicts)
            .enumerate()
            .filter(|(j, (_, (k, healthy, _)))| *j != i && *k == Some(key) && *healthy)
            .map(|(_, (o, _))| o.def.id.as_str())
            .collect();
        if answering.is_empty() {
            continue;
        }
        let portal = l
            .def
            .policy
            .key_portal
            .as_deref()
            .or(l.def.website.as_deref())
            .unwrap_or("the operator's portal");
        r.0 = ListHealth::Blocked {
            why: format!(
                "this zone only: {}: the key may not cover this zone: it fails ({}) while {} answer(s) with the same key {key:?}; check which zones the key is entitled to at {portal}",
                crate::catalog::ErrorCause::InvalidKey.label(),
                r.0.why(),
                answering.join(", ")
            ),
        };
    }
}

impl Engine {
    /// Each list's budget plan for the configured targets and schedule (what
    /// `rblwatch lists`, the daemon's start-up warnings and the overview show).
    pub fn plans_for(&self, cfg: &Config) -> Vec<crate::budget::BudgetPlan> {
        let specs: Vec<TargetSpec> = cfg.targets.iter().map(|t| t.spec.clone()).collect();
        self.plans(
            &specs,
            cfg.daemon.sweep.nominal_interval(),
            cfg.daemon.health.nominal_interval(),
        )
    }

    /// Each list's budget plan for these targets and schedule intervals.
    pub fn plans(
        &self,
        targets: &[TargetSpec],
        sweep: Duration,
        health: Duration,
    ) -> Vec<crate::budget::BudgetPlan> {
        self.lists
            .iter()
            .map(|l| {
                let pairs: u64 = targets
                    .iter()
                    .filter(|s| l.def.kind.accepts(&s.representative()))
                    .map(|s| match s.prefix() {
                        // never enumerated: its chosen /64s (none asked of a mirror)
                        Some(_) if l.mirror.is_some() => 0,
                        Some(_) => self.opts.prefix_queries,
                        None => u64::try_from(s.len()).unwrap_or(u64::MAX),
                    })
                    .sum();
                // every test point and the canary, each health check
                let tp = &l.def.test_points;
                let hq = (tp.listed.len() + tp.not_listed.len() + 1) as u64;
                crate::budget::plan_with(&l.def.id, l.daily_limit, pairs, sweep, health, hq)
            })
            .collect()
    }
}

/// The lists to query, prepared (keys applied, retired and key-less lists left
/// out): the config's choice, or `only` when given.
///
/// Returns the lists and warnings about what was left out.
pub fn active_lists(
    cfg: &Config,
    catalog: &Catalog,
    only: Option<&[String]>,
) -> Result<(Vec<ActiveList>, Vec<String>), EngineError> {
    let mut warnings = Vec::new();
    let chosen: Vec<&ListDef> = match only.map(|o| o.to_vec()).or_else(|| cfg.lists.use_.clone()) {
        Some(ids) => {
            let mut v = Vec::new();
            for id in &ids {
                let def = catalog
                    .find(id)
                    .ok_or_else(|| EngineError::UnknownList(id.clone()))?;
                // an id and its zone name the same list once
                if !v.iter().any(|d: &&ListDef| d.id == def.id) {
                    v.push(def);
                }
            }
            v
        }
        None => catalog.iter().filter(|l| l.enabled_by_default).collect(),
    };
    let mut out = Vec::new();
    for def in chosen {
        // excluded by id or by zone
        if cfg
            .lists
            .exclude
            .iter()
            .any(|e| catalog.find(e).is_some_and(|x| x.id == def.id))
        {
            continue;
        }
        if let Some(r) = &def.retired {
            warnings.push(format!(
                "list {:?} is retired since {} and is not queried: {}",
                def.id, r.since, r.reason
            ));
            continue;
        }
        // A list of the user's own on a zone under a dead one (SORBS' sub-zones).
        if let Some(dead) = catalog.retired_zone(&def.zone) {
            let r = dead
                .retired
                .as_ref()
                .map_or(("", ""), |r| (r.since.as_str(), r.reason.as_str()));
            warnings.push(format!(
                "list {:?} queries {}, under the retired zone {} ({:?}, retired since {}: {}); it is not queried",
                def.id, def.zone, dead.zone, dead.id, r.0, r.1
            ));
            continue;
        }
        let key = def.policy.key.as_ref().and_then(|k| cfg.keys.get(k));
        if def.policy.requires_key && key.is_none() {
            warnings.push(format!(
                "list {:?} needs the key {:?} in [keys]; it is not queried",
                def.id,
                def.policy.key.as_deref().unwrap_or("?")
            ));
            continue;
        }
        let list = ActiveList::new(
            Arc::new(def.clone()),
            key.map(Secret::expose),
            cfg.lists.max_qps,
        );
        let direct = cfg
            .lists
            .overrides
            .get(&def.id)
            .and_then(|o| o.direct)
            .unwrap_or(cfg.resolver.mode == crate::config::resolver::ResolverMode::Direct);
        let limit = cfg
            .lists
            .overrides
            .get(&def.id)
            .and_then(|o| o.daily_limit)
            .or(def.policy.daily_limit);
        let list = list.with_daily_limit(limit);
        let list = match cfg
            .lists
            .overrides
            .get(&def.id)
            .and_then(|o| o.mirror.as_ref())
        {
            Some(m) => {
                let mut conf = crate::mirror::MirrorConf::new(m.path.clone());
                conf.max_age = m.max_age;
                conf.max_size = m.max_size;
                conf.format = m
                    .format
                    .as_deref()
                    .and_then(crate::mirror::format::DatasetType::parse);
                list.with_mirror(Arc::new(crate::mirror::Mirror::new(conf)))
            }
            None if direct => list.direct(),
            None => list,
        };
        out.push(list);
    }
    Ok((out, warnings))
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The catalog (shipped or a configured directory) is broken.
    #[error("list catalog: {0}")]
    Catalog(String),
    /// A list id that the catalog does not have.
    #[error("unknown list id or zone {0:?} (see `rblwatch lists --all`)")]
    UnknownList(String),
    /// No name server to ask.
    #[error("{0}")]
    Resolver(String),
    /// The sockets could not be set up.
    #[error("cannot set up the DNS client: {0}")]
    Socket(#[from] std::io::Error),
}

/// Builds an engine from a configuration: the chosen lists (or `only`), the
/// configured or system name servers (or `servers`), keys applied.
///
/// Returns warnings about lists left out (retired, missing key).
pub async fn from_config(
    cfg: &Config,
    only: Option<&[String]>,
    servers: Option<Vec<std::net::SocketAddr>>,
) -> Result<(Engine, Vec<String>), EngineError> {
    let (lists, warnings) = active_lists(cfg, cfg.catalog(), only)?;
    let servers = match servers {
        Some(s) if !s.is_empty() => s,
        _ => cfg.nameservers().map_err(EngineError::Resolver)?,
    };
    let mut cc = crate::dns::ClientConfig::new(servers);
    cc.timeout = cfg.resolver.timeout;
    cc.retries = cfg.resolver.retries;
    let client = DnsClient::new(&cc).await?;
    Ok((
        Engine::new(
            client,
            lists,
            EngineOpts {
                concurrency: cfg.resolver.concurrency,
                root_hints: cfg.resolver.root_hints.clone(),
                timeout: cfg.resolver.timeout,
                retries: cfg.resolver.retries,
                prefix_queries: u64::from(cfg.daemon.prefix_sample) + 1,
            },
        ),
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::from_toml(std::path::Path::new("test.toml"), text).unwrap()
    }

    #[test]
    fn retired_lists_warn_and_are_never_queried() {
        let c = parse("[lists]\nuse = [\"spamhaus-zen\", \"sorbs-dnsbl\"]\n");
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("sorbs-dnsbl") && w.contains("decommissioned")),
            "{:?}",
            c.warnings
        );
        let (lists, warnings) = active_lists(&c, c.catalog(), None).unwrap();
        assert_eq!(lists.len(), 1);
        assert!(warnings.iter().any(|w| w.contains("retired")));
    }

    #[test]
    fn lists_are_chosen_and_excluded_by_id_or_zone() {
        let c = parse(
            "[lists]\nuse = [\"zen.spamhaus.org\", \"spamcop\", \"bl.spamcop.net.\", \"psbl.surriel.com\"]\nexclude = [\"PSBL.surriel.com\"]\n",
        );
        let cat = c.catalog().clone();
        let (lists, _) = active_lists(&c, &cat, None).unwrap();
        let ids: Vec<&str> = lists.iter().map(|l| l.def.id.as_str()).collect();
        assert_eq!(ids, ["spamhaus-zen", "spamcop"]);
        let only = ["bl.spamcop.net".to_string()];
        let (lists, _) = active_lists(&c, &cat, Some(&only)).unwrap();
        assert_eq!(lists[0].def.id, "spamcop");
        let bad = ["no.such.zone".to_string()];
        let e = active_lists(&c, &cat, Some(&bad))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("unknown list id or zone \"no.such.zone\""),
            "{e}"
        );
        let e = Config::from_toml(
            std::path::Path::new("t.toml"),
            "[lists]\nuse = [\"no.such.zone\"]\n",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("unknown list id or zone"), "{e}");
    }

    #[test]
    fn keys_switch_to_the_key_template_and_never_print() {
        let c =
            parse("[keys]\nspamhaus-dqs = \"sekritkey123\"\n[lists]\nuse = [\"spamhaus-zen\"]\n");
        let (lists, _) = active_lists(&c, c.catalog(), None).unwrap();
        assert!(lists[0].uses_key);
        assert_eq!(lists[0].display_zone(), "<key>.zen.dq.spamhaus.net");
        // the query zone holds the key, but no Debug output (config, list, engine parts) does
        let dbg = format!("{c:?} {:?}", lists[0]);
        assert!(!dbg.contains("sekritkey123"), "{dbg}");
    }

    #[test]
    fn lists_needing_a_key_are_left_out_with_a_warning() {
        let c = parse("[lists]\nuse = [\"abusix-combined\"]\n");
        let (lists, warnings) = active_lists(&c, c.catalog(), None).unwrap();
        assert!(lists.is_empty());
        assert!(warnings[0].contains("abusix"), "{warnings:?}");
    }

    fn keyed(c: &Catalog, id: &str) -> ActiveList {
        ActiveList::new(Arc::new(c.get(id).unwrap().clone()), Some("k3y"), None)
    }

    #[test]
    fn refused_on_a_keyed_list_asked_directly_is_an_invalid_key() {
        let c = Catalog::shipped().unwrap();
        let refused = Ok(crate::dns::Response {
            rcode: crate::dns::Rcode::Refused,
            a: vec![],
            txt: vec![],
            truncated: false,
            ttl: None,
            neg_ttl: None,
        });
        let v = keyed_refusal(&keyed(&c, "spamhaus-dbl").direct(), &refused).unwrap();
        let h = crate::health::assess(&v, &v);
        assert_eq!(h.name(), "blocked");
        assert!(
            h.why()
                .contains(crate::catalog::ErrorCause::InvalidKey.advice()),
            "{h:?}"
        );
        // through a resolver, REFUSED is the resolver's word; without a key, no key is blamed
        assert!(keyed_refusal(&keyed(&c, "spamhaus-dbl"), &refused).is_none());
        let keyless = ActiveList::new(Arc::new(c.get("spamhaus-dbl").unwrap().clone()), None, None);
        assert!(keyed_refusal(&keyless.direct(), &refused).is_none());
    }

    #[test]
    fn servfail_on_one_zone_of_a_working_key_names_the_key() {
        let c = Catalog::shipped().unwrap();
        let lists = vec![keyed(&c, "spamhaus-zen"), keyed(&c, "spamhaus-dbl")];
        let servfail = ListHealth::Unreachable {
            why: "positive test point dbltest.com: SERVFAIL from the resolver".into(),
        };
        let mut results = vec![
            (ListHealth::Healthy, (), (), ()),
            (servfail.clone(), (), (), ()),
        ];
        diagnose_keys(&lists, &mut results);
        assert_eq!(results[0].0, ListHealth::Healthy);
        let h = &results[1].0;
        assert_eq!(h.name(), "blocked");
        assert!(
            h.why().contains("the key may not cover this zone")
                && h.why().contains("SERVFAIL")
                && h.why().contains("https://portal.spamhaus.com/")
                && !h.why().contains("k3y"),
            "{h:?}"
        );
        // a timeout is the network's, not the key's
        let timeout = ListHealth::Unreachable {
            why: "positive test point: timeout".into(),
        };
        let mut results = vec![
            (ListHealth::Healthy, (), (), ()),
            (timeout.clone(), (), (), ()),
        ];
        diagnose_keys(&lists, &mut results);
        assert_eq!(results[1].0, timeout);
    }

    #[test]
    fn a_list_under_a_retired_zone_warns_and_is_not_queried() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("own.toml"),
            "[[list]]\nid = \"my-sorbs-http\"\nzone = \"http.dnsbl.sorbs.net\"\nkind = \"ipv4\"\n",
        )
        .unwrap();
        let c = parse(&format!(
            "[lists]\ndirs = [{:?}]\nuse = [\"my-sorbs-http\", \"spamhaus-zen\"]\n",
            dir.path().display().to_string()
        ));
        let cat = c.catalog().clone();
        let (lists, warnings) = active_lists(&c, &cat, None).unwrap();
        assert_eq!(lists.len(), 1);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("my-sorbs-http") && w.contains("retired")),
            "{warnings:?}"
        );
    }

    #[tokio::test]
    async fn an_ipv6_prefix_plans_its_sample_not_its_addresses() {
        let cfg = parse(
            "[lists]\nuse = [\"spamhaus-zen\"]\n[[targets]]\ntarget = \"2001:db8:1200::/48\"\n[[targets]]\ntarget = \"192.0.2.1\"\n[daemon]\nprefix_sample = 8\n",
        );
        let (e, _) = from_config(&cfg, None, Some(vec![([127, 0, 0, 1], 9).into()]))
            .await
            .unwrap();
        let plans = e.plans_for(&cfg);
        assert_eq!(plans[0].pairs, 9 + 1, "{plans:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_queries_exactly() {
        let l = RateLimiter::new(10.0);
        let start = Instant::now();
        for _ in 0..21 {
            l.acquire().await;
        }
        // 21 queries at 10/s: the last one goes out 2 s after the first, no earlier.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
