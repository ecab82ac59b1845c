//! The daemon: runs every job on its own schedule (sweeps, health checks,
//! retention, each mail source, each backscatter probe), runs the evaluator
//! over their outcomes, commits each job in one transaction, then publishes
//! the events to the actions tasks and the web.
//!
//! Ownership: one [`Daemon`] holds the store, the in-memory pair states and a
//! swappable [`Runtime`] (config + engines) that SIGHUP replaces only once the
//! new config validates; the jobs are then planned again from it (a source
//! added, removed or re-timed takes effect without a restart). Scheduler jobs
//! (tokio-cron-scheduler) only send [`Job`]s to the main loop; each job runs as
//! its own task in its own slot, and a job whose slot is still busy when its
//! next tick comes is skipped, never stacked. Shutdown is a parameter: when it
//! fires, running jobs are abandoned (their transactions never started) and
//! [`run`] returns. A store whose writer has stopped is fatal: [`run`] returns
//! an error, so the process exits non-zero and systemd restarts it.

mod delist;
pub mod feeds;
mod impact;
mod mail;
pub mod memory;
pub mod postmaster;
mod notify;
mod snds;
mod ranges;
pub mod supervise;
mod sweep;
mod unknown_codes;

pub use self::delist::{delist_requested_event, Rechecked};

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch, Mutex};
use tokio::task::JoinHandle;
use tokio_cron_scheduler::JobScheduler;

use crate::config::{Config, Schedule};
use crate::engine::{self, Engine};
use crate::evaluator::{Confirm, PairState};
use crate::event::Event;
use crate::health::{ListHealth, ResolverHealth};
use crate::store::{self, StateKey, Store, StoreError};
use crate::time::now;

/// A job: what the scheduler asks the main loop to run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Job {
    /// A DNSBL sweep (with its health check first).
    Sweep,
    /// A list health check only.
    Health,
    /// Retention.
    Prune,
    /// One read of the named mail source.
    Source(String),
    /// One run of the named backscatter probe.
    Probe(String),
    /// One run of the named MTA posture audit.
    Audit(String),
    /// One read of the named receivers' feed.
    Feed(String),
    /// A re-check of one (target, list) pair now (asked for by a delisting request).
    Recheck {
        /// Target.
        target: String,
        /// List id.
        list: String,
    },
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Sweep => f.write_str("sweep"),
            Job::Health => f.write_str("health"),
            Job::Prune => f.write_str("prune"),
            Job::Source(n) => write!(f, "source {n}"),
            Job::Probe(n) => write!(f, "probe {n}"),
            Job::Audit(n) => write!(f, "audit {n}"),
            Job::Feed(n) => write!(f, "feed {n}"),
            Job::Recheck { target, list } => write!(f, "re-check of {target} on {list}"),
        }
    }
}

/// How the daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Keep running on the schedule (the default).
    #[default]
    Service,
    /// Run every job once and exit.
    Once,
}

/// The parts built from one configuration; replaced whole on reload.
#[derive(Debug)]
pub struct Runtime {
    /// The validated configuration.
    pub cfg: Arc<Config>,
    /// The engine for sweeps.
    pub engine: Arc<Engine>,
    /// A second engine over `resolver.confirm_with`, to corroborate new listings.
    pub confirm: Option<Engine>,
    /// How often each list (in engine order) is swept to stay within its budget.
    pub plans: Vec<crate::budget::BudgetPlan>,
    /// The DNSBL catalog (shipped plus `[lists] dirs`), to name the lists replies cite.
    pub catalog: Arc<crate::catalog::Catalog>,
    /// The receiver-reply catalog (shipped plus `[replies] dirs`).
    pub replies: Arc<crate::replies::ReplyCatalog>,
    /// The outbound ledger's settings (`[senders]`, class rules shipped plus `dirs`).
    pub ledger: Arc<crate::mail::ledger::LedgerConf>,
}

impl Runtime {
    /// Builds engines for `cfg`; large sweeps are spread over the interval in service mode.
    pub async fn new(cfg: Config, mode: Mode) -> anyhow::Result<(Self, Vec<String>)> {
        let mut ecfg = cfg.clone();
        let pairs: u128 = cfg.targets.iter().map(|t| t.spec.len()).sum();
        if mode == Mode::Service && cfg.daemon.spread && pairs > 4096 {
            // Use half the interval, so a sweep is done well before the next one is due.
            let secs = cfg.daemon.sweep.nominal_interval().as_secs_f64() / 2.0;
            let qps = (pairs as f64 / secs.max(1.0)).max(1.0);
            ecfg.lists.max_qps = Some(ecfg.lists.max_qps.map_or(qps, |q| q.min(qps)));
            tracing::info!(
                pairs_per_list = pairs as u64,
                qps_per_list = qps,
                "spreading sweeps over the interval"
            );
        }
        let (engine, warnings) = engine::from_config(&ecfg, None, None).await?;
        let confirm = if cfg.resolver.confirm_with.is_empty() {
            None
        } else {
            Some(
                engine::from_config(&ecfg, None, Some(cfg.resolver.confirm_with.clone()))
                    .await?
                    .0,
            )
        };
        let plans = engine.plans_for(&cfg);
        for p in &plans {
            if let Some(d) = p.describe() {
                tracing::warn!(list = %p.list, daily_queries = p.daily_queries, "{d}");
            }
        }
        // parsed once, when the config was loaded, and shared from there
        let catalog = cfg.catalog().clone();
        let replies = cfg.replies().clone();
        let ledger = mail::ledger_conf(&cfg);
        Ok((
            Runtime {
                cfg: Arc::new(cfg),
                engine: Arc::new(engine),
                confirm,
                plans,
                catalog,
                replies,
                ledger: Arc::new(ledger),
            },
            warnings,
        ))
    }
}

/// Forgets the stored SNDS rows of feeds and the Postmaster Tools rows of
/// domains the configuration no longer names (at start and on reload), so
/// the verdict, the snapshot and the pages judge only what is configured;
/// a feed or domain added back fetches its days again. Returns rows removed.
async fn forget_unconfigured_feeds(store: &store::Store, cfg: &Config) -> anyhow::Result<usize> {
    let snds: Vec<String> = cfg.snds.iter().map(|f| f.name.clone()).collect();
    let domains: Vec<String> = cfg
        .postmaster
        .iter()
        .flat_map(|f| f.domains.iter().cloned())
        .collect();
    let n = store
        .call(move |c| {
            let tx = c.transaction()?;
            let n = store::forget_snds_feeds_except(&tx, &snds)?
                + store::forget_postmaster_domains_except(&tx, &domains)?;
            tx.commit()?;
            Ok(n)
        })
        .await?;
    if n > 0 {
        tracing::info!(
            rows = n,
            "forgot the SNDS and Postmaster Tools data of feeds and domains no longer configured"
        );
    }
    Ok(n)
}

pub use crate::evaluator::PairMem;

/// In-memory state, loaded from the store at start, changed only after a commit.
#[derive(Debug, Default)]
pub struct Memory {
    /// Non-clear pairs only: a 16,384 x 40 installation keeps a few rows, not 655,360.
    pub pairs: HashMap<(String, String), PairMem>,
    /// Last known health per list.
    pub health: HashMap<String, ListHealth>,
    /// Target specs whose baseline sweep is done.
    pub baselined: HashSet<String>,
    /// The resolver's health at the last check.
    pub resolver: Option<ResolverHealth>,
    /// Pairs whose last answer from a healthy list was unusable (unchecked).
    pub unchecked: HashSet<(String, String)>,
    /// When each list was last swept (unix seconds): lists on a stretched interval wait their turn.
    pub last_swept: HashMap<String, i64>,
    /// Lists whose `list_unhealthy` was announced and not yet followed by `list_recovered`.
    pub announced_unhealthy: HashSet<String>,
}

impl Memory {
    /// A committed pair update: clear pairs are forgotten, the others kept.
    pub fn apply_pair(&mut self, p: &crate::evaluator::PairUpdate) {
        let key = (p.target.clone(), p.list.clone());
        if p.state == PairState::Clear {
            self.pairs.remove(&key);
        } else {
            self.pairs.insert(key, p.mem());
        }
    }
}

/// The running daemon.
#[derive(Debug)]
pub struct Daemon {
    store: Store,
    runtime: RwLock<Arc<Runtime>>,
    memory: Mutex<Memory>,
    events: broadcast::Sender<Event>,
    /// The supervised tasks' health (down now, deaths since start).
    pub tasks: Arc<supervise::TaskHealth>,
    /// Mail-source reads that failed since start, by source (logged and counted).
    pub source_failures: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// The outbound ledger of each log source (messages in flight; in memory only).
    ledgers: std::sync::Mutex<std::collections::HashMap<String, crate::mail::ledger::Ledger>>,
    /// What the pages read on every build without waiting for a sweep to
    /// release [`Memory`]: the resolver's diagnosis and the last assessment.
    published: std::sync::RwLock<Published>,
}

/// Copies of the latest diagnoses, for readers that must never block.
#[derive(Debug, Default, Clone)]
struct Published {
    resolver: Option<crate::health::ResolverHealth>,
    impact: Option<Arc<crate::impact::Assessment>>,
}

impl Daemon {
    /// Opens the store, loads state and builds the runtime.
    pub async fn open(cfg: Config, mode: Mode) -> anyhow::Result<Arc<Self>> {
        check_templates(&cfg)?;
        let store = Store::open(&cfg.daemon.database)?;
        let mem = store
            .call(|c| {
                let n = store::abandon_stale_sweeps(c)?;
                if n > 0 {
                    tracing::warn!(
                        sweeps = n,
                        "marked sweeps interrupted by a previous stop as abandoned"
                    );
                }
                let mut m = Memory::default();
                for p in store::load_pairs(c)? {
                    let digest = crate::evaluator::digest_of(&p.details);
                    m.pairs.insert(
                        (p.target, p.list),
                        PairMem {
                            state: p.state,
                            since: p.since,
                            digest,
                        },
                    );
                }
                m.health = store::load_health(c)?;
                // Before this was kept, every stored unhealthy list had been announced.
                m.announced_unhealthy = match store::get_state(c, &StateKey::HealthAnnounced)? {
                    Some(set) => set,
                    None => m
                        .health
                        .iter()
                        .filter(|(_, h)| !h.is_healthy())
                        .map(|(l, _)| l.clone())
                        .collect(),
                };
                m.baselined = store::baselined(c)?;
                m.resolver = store::get_state(c, &StateKey::ResolverHealth)?;
                m.last_swept = store::get_state(c, &StateKey::BudgetSwept)?.unwrap_or_default();
                m.unchecked = store::unchecked_pairs(c, None)?
                    .into_iter()
                    .map(|u| (u.target, u.list))
                    .collect();
                let impact: Option<crate::impact::Assessment> =
                    store::get_state(c, &StateKey::ImpactAssessment)?;
                Ok((m, impact))
            })
            .await?;
        let (mem, impact) = mem;
        let published = Published {
            resolver: mem.resolver.clone(),
            impact: impact.map(Arc::new),
        };
        tracing::info!(database = %cfg.daemon.database.display(), pairs = mem.pairs.len(), "state loaded");
        let interrupted = crate::actions::recover(&store).await?;
        let cfg = feeds::load_discovered(&store, cfg).await?;
        let (rt, warnings) = Runtime::new(cfg, mode).await?;
        forget_unconfigured_feeds(&store, &rt.cfg).await?;
        let counts: HashMap<String, (u64, u64)> = store
            .call(|c| Ok(store::get_state(c, &StateKey::BudgetCounts)?.unwrap_or_default()))
            .await?;
        restore_counts(&rt.engine, &counts);
        for w in warnings {
            tracing::warn!("{w}");
        }
        let (events, _) = broadcast::channel(1024);
        for e in &interrupted {
            tracing::warn!(event = e.kind.as_str(), subject = %e.subject, "{}", e.summary);
        }
        Ok(Arc::new(Daemon {
            store,
            runtime: RwLock::new(Arc::new(rt)),
            memory: Mutex::new(mem),
            events,
            source_failures: Default::default(),
            ledgers: Default::default(),
            tasks: Default::default(),
            published: std::sync::RwLock::new(published),
        }))
    }

    fn published(&self) -> Published {
        match self.published.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn update_published(&self, f: impl FnOnce(&mut Published)) {
        match self.published.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Hands the resolver's latest diagnosis to the pages.
    fn publish_resolver(&self, r: Option<crate::health::ResolverHealth>) {
        self.update_published(|p| p.resolver = r);
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current runtime.
    pub fn runtime(&self) -> Arc<Runtime> {
        match self.runtime.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Subscribes to events as they are committed.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn confirm(&self) -> Confirm {
        let d = &self.runtime().cfg.daemon;
        Confirm {
            listed: d.confirm_listed,
            clear: d.confirm_clear,
        }
    }

    /// Validates and applies a new configuration; on error the running one stays.
    pub async fn reload(&self, path: &std::path::Path, mode: Mode) -> anyhow::Result<()> {
        let cfg = Config::load(path)?;
        check_templates(&cfg)?;
        let cfg = feeds::load_discovered(&self.store, cfg).await?;
        let (rt, warnings) = Runtime::new(cfg, mode).await?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        // today's query counts go on from the old engine's
        restore_counts(&rt.engine, &counts_of(&self.runtime().engine));
        let forgotten = forget_unconfigured_feeds(&self.store, &rt.cfg).await?;
        match self.runtime.write() {
            Ok(mut g) => *g = Arc::new(rt),
            Err(p) => *p.into_inner() = Arc::new(rt),
        }
        if forgotten > 0 {
            // the stored verdict still counts what was forgotten: judged again now
            self.assess().await?;
        }
        Ok(())
    }

    /// Re-checks list and resolver health and records changes (no sweep).
    pub async fn health_check(&self) -> anyhow::Result<()> {
        let rt = self.runtime();
        let mut mem = self.memory.lock().await;
        let report = rt.engine.check().await;
        if let Some(why) = report.local_failure {
            anyhow::bail!("health check not recorded: {why}");
        }
        let at = now();
        let change = sweep::HealthChange::of(&rt.engine, &report, &mem, at);
        let counts = counts_of(&rt.engine);
        let committed = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let out = change.write(&tx, at)?;
                store::put_state(&tx, &StateKey::BudgetCounts, &counts, at)?;
                tx.commit()?;
                Ok((change, out))
            })
            .await?;
        committed.0.apply(&mut mem);
        self.publish_resolver(mem.resolver.clone());
        self.publish(committed.1);
        Ok(())
    }

    fn publish(&self, events: Vec<Event>) {
        for e in events {
            tracing::info!(
                event = e.kind.as_str(),
                subject = %e.subject,
                baseline = e.baseline,
                "{}",
                e.summary
            );
            let _ = self.events.send(e);
        }
    }

    /// Runs one job. After a sweep, a source read, a probe or an audit the
    /// joined verdict ([`crate::impact`]) is assessed again.
    pub async fn run_job(self: Arc<Self>, job: Job) -> anyhow::Result<()> {
        match job {
            Job::Sweep => {
                self.clone().sweep().await?;
                self.remind_overdue().await?;
            }
            Job::Recheck { target, list } => {
                self.recheck(&target, &list).await?;
                self.remind_overdue().await?;
            }
            Job::Health => return self.health_check().await,
            Job::Prune => return self.prune().await,
            Job::Source(n) => self.clone().read_source(&n).await?,
            Job::Probe(n) => self.clone().run_probe(&n).await?,
            Job::Audit(n) => self.clone().run_audit(&n).await?,
            Job::Feed(n) if self.runtime().cfg.snds.iter().any(|s| s.name == n) => {
                self.clone().read_snds(&n).await?
            }
            Job::Feed(n) => self.clone().read_feed(&n).await?,
        }
        self.assess().await
    }

    /// One line for `systemctl status`: the last sweep, listings, unhealthy lists.
    pub async fn status_line(&self) -> String {
        let last = self
            .store
            .call(|c| store::last_sweep(c))
            .await
            .ok()
            .flatten();
        let sweep = match last {
            Some(s) => format!(
                "last sweep {} ({} pairs)",
                crate::time::fmt_time(s.finished_at.unwrap_or(s.started_at)),
                s.counts.pairs
            ),
            None => "no sweep yet".into(),
        };
        match self.memory.try_lock() {
            Ok(m) => {
                let listed = m.pairs.values().filter(|p| p.state.is_listed()).count();
                let sick = m.health.values().filter(|h| !h.is_healthy()).count();
                format!("{sweep}; {listed} listing(s); {sick} list(s) unhealthy")
            }
            Err(_) => format!("{sweep}; a sweep is running"),
        }
    }

    /// Applies retention.
    pub async fn prune(&self) -> anyhow::Result<()> {
        let d = self.runtime().cfg.daemon.clone();
        let n = self
            .store
            .call(move |c| store::prune(c, now(), d.retention_days, d.sample_retention_days))
            .await?;
        if n > 0 {
            tracing::info!(rows = n, "retention applied");
        }
        Ok(())
    }
}

/// Each list's `(day, queries sent that day)`.
pub fn counts_of(engine: &Engine) -> HashMap<String, (u64, u64)> {
    use std::sync::atomic::Ordering::Relaxed;
    engine
        .lists()
        .iter()
        .map(|l| {
            (
                l.def.id.clone(),
                (l.counters.day.load(Relaxed), l.counters.today.load(Relaxed)),
            )
        })
        .collect()
}

fn restore_counts(engine: &Engine, counts: &HashMap<String, (u64, u64)>) {
    for l in engine.lists() {
        if let Some((day, n)) = counts.get(&l.def.id) {
            l.counters.restore(*day, *n);
        }
    }
}

/// Renders every user alert template against a sample event of every kind:
/// a broken template is refused now (file and line), not at the first alert.
pub fn check_templates(cfg: &Config) -> anyhow::Result<()> {
    for ch in &cfg.actions.channels {
        crate::actions::alerts::check_template(ch)?;
    }
    Ok(())
}

/// Every job of a configuration, once: retention, the sweep (when there are
/// targets), each mail source, each probe, each audit. Start-up and `--once` run these.
fn first_runs(cfg: &Config) -> Vec<Job> {
    let mut v = vec![Job::Prune];
    // feeds first: the sending IPs they reveal are swept in the same run
    v.extend(cfg.feeds.iter().map(|f| Job::Feed(f.name.clone())));
    v.extend(cfg.snds.iter().map(|f| Job::Feed(f.name.clone())));
    v.extend(cfg.postmaster.iter().map(|f| Job::Feed(f.name.clone())));
    if !cfg.targets.is_empty() {
        v.push(Job::Sweep);
    }
    v.extend(cfg.sources.iter().map(|s| Job::Source(s.name.clone())));
    v.extend(cfg.probes.iter().map(|p| Job::Probe(p.name.clone())));
    v.extend(cfg.audits.iter().map(|a| Job::Audit(a.name.clone())));
    v
}

/// Every job of a configuration with its schedule.
fn plan(cfg: &Config) -> Vec<(Job, Schedule)> {
    let mut v = vec![
        (Job::Sweep, cfg.daemon.sweep.clone()),
        (Job::Health, cfg.daemon.health.clone()),
        (Job::Prune, Schedule::Every(Duration::from_secs(86_400))),
    ];
    if cfg.targets.is_empty() {
        v.retain(|(j, _)| *j == Job::Prune);
    }
    v.extend(
        cfg.sources
            .iter()
            .map(|s| (Job::Source(s.name.clone()), s.interval.clone())),
    );
    v.extend(
        cfg.probes
            .iter()
            .map(|p| (Job::Probe(p.name.clone()), p.interval.clone())),
    );
    v.extend(
        cfg.audits
            .iter()
            .map(|a| (Job::Audit(a.name.clone()), a.interval.clone())),
    );
    v.extend(
        cfg.feeds
            .iter()
            .map(|f| (Job::Feed(f.name.clone()), f.interval.clone())),
    );
    v.extend(
        cfg.snds
            .iter()
            .map(|f| (Job::Feed(f.name.clone()), f.interval.clone())),
    );
    v.extend(
        cfg.postmaster
            .iter()
            .map(|f| (Job::Feed(f.name.clone()), f.interval.clone())),
    );
    v
}

async fn schedule_jobs(
    sched: &JobScheduler,
    cfg: &Config,
    tx: &mpsc::Sender<Job>,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    let mut ids = Vec::new();
    for (job, schedule) in plan(cfg) {
        let tx = tx.clone();
        let name = job.to_string();
        let run = move |_id, _l| {
            let tx = tx.clone();
            let job = job.clone();
            Box::pin(async move {
                // a full queue means the main loop is behind: this tick is skipped
                let _ = tx.try_send(job);
            }) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
        };
        let j = match &schedule {
            Schedule::Every(d) => tokio_cron_scheduler::Job::new_repeated_async(*d, run)?,
            Schedule::Cron(c) => tokio_cron_scheduler::Job::new_async(c.as_str(), run)?,
        };
        ids.push(sched.add(j).await?);
        tracing::debug!(job = %name, schedule = %schedule, "job scheduled");
    }
    Ok(ids)
}

/// Closes a sweep cut short by the stop as `abandoned` now, rather than
/// leaving it `running` until the next start (issue 21).
async fn abandon_interrupted(store: &Store) {
    match store.call(|c| store::abandon_stale_sweeps(c)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(sweeps = n, "interrupted sweep marked abandoned"),
        Err(e) => tracing::warn!(error = %e, "cannot mark the interrupted sweep abandoned"),
    }
}

/// Whether a job's error means the daemon cannot go on (the store's writer has stopped).
fn is_fatal(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| matches!(c.downcast_ref::<StoreError>(), Some(StoreError::Stopped)))
}

/// Runs the daemon until `shutdown` resolves (or, in [`Mode::Once`], until every job ran once).
///
/// `reload` yields each time the configuration should be re-read (SIGHUP).
pub async fn run(
    cfg: Config,
    mode: Mode,
    reload: mpsc::Receiver<()>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let path = cfg.path.clone();
    let daemon = Daemon::open(cfg, mode).await?;
    let actions = crate::actions::Actions::new(daemon.store.clone());
    if mode == Mode::Once {
        return run_once(&daemon, &actions, shutdown).await;
    }
    let mut service = Service::start(daemon, actions, path, mode).await?;
    let outcome = service.serve(reload, shutdown).await;
    service.stop().await;
    outcome
}

/// `--once`: every job once, then hooks and alerts, then exit.
async fn run_once(
    daemon: &Arc<Daemon>,
    actions: &crate::actions::Actions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let work = async {
        let rt = daemon.runtime();
        for job in first_runs(&rt.cfg) {
            daemon.clone().run_job(job).await?;
        }
        // hooks, then alerts (hook failures included), delivered now
        actions.once(&rt.cfg.actions).await?;
        anyhow::Ok(())
    };
    tokio::select! {
        r = work => r,
        () = shutdown => {
            tracing::info!("stopping: sweep abandoned");
            abandon_interrupted(&daemon.store).await;
            Ok(())
        }
    }
}

/// How long a stopping daemon waits for its jobs and tasks, all together
/// (systemd's stop timeout is far longer; the README promises < 5 s).
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(4);

/// The daemon in service mode: its scheduler, running jobs and supervised tasks.
struct Service {
    daemon: Arc<Daemon>,
    path: std::path::PathBuf,
    mode: Mode,
    stop: tokio_util::sync::CancellationToken,
    conf_tx: watch::Sender<Arc<crate::config::ActionsConf>>,
    jobs_tx: mpsc::Sender<Job>,
    jobs_rx: mpsc::Receiver<Job>,
    done_tx: mpsc::Sender<(Job, anyhow::Result<()>)>,
    done_rx: mpsc::Receiver<(Job, anyhow::Result<()>)>,
    /// Running jobs by job: a job is skipped while the same job still runs
    /// (a health check also while a sweep, which checks health first, runs).
    /// Every job is its own slot; retention sharing the health check's slot
    /// was once skipped at start-up behind the first health check, then
    /// waited a day.
    running: HashMap<Job, JoinHandle<()>>,
    sup: supervise::Supervisor,
    sched: JobScheduler,
    scheduled: Vec<uuid::Uuid>,
    notifier: notify::Notifier,
    ready: bool,
}

impl Service {
    /// Starts the supervised tasks, the web server and the scheduler, and
    /// queues the first runs.
    async fn start(
        daemon: Arc<Daemon>,
        actions: crate::actions::Actions,
        path: std::path::PathBuf,
        mode: Mode,
    ) -> anyhow::Result<Self> {
        let stop = tokio_util::sync::CancellationToken::new();
        let (conf_tx, conf_rx) = watch::channel(Arc::new(daemon.runtime().cfg.actions.clone()));
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(64);
        let mut sup = supervise::Supervisor::new(daemon.tasks.clone());
        for (name, hooks) in [
            (supervise::TaskName::Hooks, true),
            (supervise::TaskName::Alerts, false),
        ] {
            let (a, c, e, s) = (
                actions.clone(),
                conf_rx.clone(),
                daemon.events.clone(),
                stop.clone(),
            );
            sup.spawn(name, move || {
                let (a, c, e, s) = (a.clone(), c.clone(), e.clone(), s.clone());
                async move {
                    if hooks {
                        crate::actions::run_hooks(a, c, e, s).await
                    } else {
                        crate::actions::run_alerts(a, c, e, s).await
                    }
                }
            });
        }
        start_web(&daemon, &jobs_tx, &stop, &mut sup).await?;

        // Ready once the lists' health is known: a unit ordered after rblwatch
        // starts against a daemon that can already tell a listing from an error.
        // The first health check runs as a job like any other, so a resolver that
        // takes its timeouts to answer delays READY, never the mail sources and
        // probes, which start at once. Without targets no list is asked anything
        // (mail telemetry only) and the daemon is ready now.
        let has_targets = !daemon.runtime().cfg.targets.is_empty();
        let notifier = notify::Notifier::start(stop.clone());
        memory::start(stop.clone());
        let ready = !has_targets;
        if ready {
            notifier.ready(&daemon.status_line().await);
        }
        let sched = JobScheduler::new().await?;
        let scheduled = schedule_jobs(&sched, &daemon.runtime().cfg, &jobs_tx).await?;
        sched.start().await?;
        // First runs at start: do not wait a whole interval.
        let first = if has_targets {
            vec![Job::Health]
        } else {
            Vec::new()
        };
        for job in first.into_iter().chain(first_runs(&daemon.runtime().cfg)) {
            let _ = jobs_tx.send(job).await;
        }
        let (done_tx, done_rx) = mpsc::channel(64);
        Ok(Service {
            daemon,
            path,
            mode,
            stop,
            conf_tx,
            jobs_tx,
            jobs_rx,
            done_tx,
            done_rx,
            running: HashMap::new(),
            sup,
            sched,
            scheduled,
            notifier,
            ready,
        })
    }

    /// Runs until `shutdown`, or until a fatal job error (returned).
    async fn serve(
        &mut self,
        mut reload: mpsc::Receiver<()>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                Some(()) = reload.recv() => self.reload().await?,
                Some((job, r)) = self.done_rx.recv() => {
                    if let Err(e) = r {
                        tracing::error!(job = %job, error = %format!("{e:#}"), "job failed");
                        if is_fatal(&e) {
                            return Err(e.context("the database cannot be written any more; exiting so the service manager restarts rblwatch"));
                        }
                    }
                    if !self.ready && matches!(job, Job::Health | Job::Sweep) {
                        // the first health check is done (a failed one is logged above)
                        self.ready = true;
                        self.notifier.ready(&self.daemon.status_line().await);
                    } else if job == Job::Sweep {
                        self.notifier.status(&self.daemon.status_line().await);
                    }
                }
                Some(job) = self.jobs_rx.recv() => self.start_job(job),
                () = self.sup.next() => {}
            }
        }
    }

    /// SIGHUP: validates and applies the new configuration, or keeps the old.
    async fn reload(&mut self) -> anyhow::Result<()> {
        self.notifier.reloading();
        let old_web = self.daemon.runtime().cfg.web.clone();
        match self.daemon.reload(&self.path, self.mode).await {
            Ok(()) => {
                for id in self.scheduled.drain(..) {
                    let _ = self.sched.remove(&id).await;
                }
                let rt = self.daemon.runtime();
                self.scheduled = schedule_jobs(&self.sched, &rt.cfg, &self.jobs_tx).await?;
                let _ = self.conf_tx.send(Arc::new(rt.cfg.actions.clone()));
                let new_web = &rt.cfg.web;
                let mut restart = Vec::new();
                if new_web.listen != old_web.listen {
                    restart.push("web.listen");
                }
                if new_web.enabled != old_web.enabled {
                    restart.push("web.enabled");
                }
                if new_web.templates_dir != old_web.templates_dir {
                    restart.push("web.templates_dir");
                }
                if !restart.is_empty() {
                    tracing::warn!(settings = %restart.join(", "), "these settings changed and take effect only after a restart (systemctl restart rblwatch); the rest of the configuration is applied");
                }
                tracing::info!(config = %self.path.display(), jobs = self.scheduled.len(), "configuration reloaded");
            }
            Err(e) => {
                tracing::error!(config = %self.path.display(), error = %format!("{e:#}"), "new configuration rejected; the running one stays")
            }
        }
        self.notifier.ready(&self.daemon.status_line().await);
        Ok(())
    }

    /// Starts a job unless its slot is busy (a job still running when its next
    /// tick comes is skipped, never stacked). A job that panics is reported
    /// as a failed job by name and counted, like one that returns an error.
    fn start_job(&mut self, job: Job) {
        let busy = |job: &Job| self.running.get(job).is_some_and(|h| !h.is_finished());
        if busy(&job) || (job == Job::Health && busy(&Job::Sweep)) {
            match job {
                Job::Sweep => {
                    tracing::warn!("a sweep is still running; this scheduled sweep is skipped")
                }
                _ => tracing::info!(job = %job, "still running; this run is skipped"),
            }
            return;
        }
        let (d, done, tasks) = (
            self.daemon.clone(),
            self.done_tx.clone(),
            self.daemon.tasks.clone(),
        );
        self.running.insert(
            job.clone(),
            tokio::spawn(async move {
                let r = match supervise::catch(d.run_job(job.clone())).await {
                    Ok(r) => r,
                    Err(why) => {
                        tasks.died(&format!("job {job}"), None, &why);
                        Err(anyhow::anyhow!("{why}"))
                    }
                };
                let _ = done.send((job, r)).await;
            }),
        );
    }

    /// Stops everything within one deadline and names what missed it.
    async fn stop(mut self) {
        tracing::info!("stopping");
        self.notifier.stopping();
        let deadline = std::time::Instant::now() + SHUTDOWN_DEADLINE;
        self.stop.cancel();
        let jobs: Vec<(String, JoinHandle<()>)> = self
            .running
            .drain()
            .filter(|(_, h)| !h.is_finished())
            .map(|(job, h)| (format!("job {job}"), h))
            .collect();
        // A running job (a sweep) is abandoned at once: its row says so.
        for (name, h) in &jobs {
            tracing::info!(job = %name, "abandoning a running job");
            h.abort();
        }
        self.sup.shutdown(deadline, jobs).await;
        // the aborted sweep's row says `abandoned` now, not at the next start
        abandon_interrupted(&self.daemon.store).await;
        let _ = self.sched.shutdown().await;
    }
}

/// Binds the web server (when enabled) and runs it as a supervised task; a
/// restart serves the same socket.
async fn start_web(
    daemon: &Arc<Daemon>,
    jobs: &mpsc::Sender<Job>,
    stop: &tokio_util::sync::CancellationToken,
    sup: &mut supervise::Supervisor,
) -> anyhow::Result<()> {
    let web_conf = daemon.runtime().cfg.web.clone();
    if !web_conf.enabled {
        return Ok(());
    }
    let addr = web_conf.listen;
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| anyhow::anyhow!("web.listen: cannot bind {addr}: {e}"))?;
    tracing::info!(address = %addr, "status page listening");
    let live = Arc::new(WebView {
        daemon: daemon.clone(),
        jobs: jobs.clone(),
    });
    let state = crate::web::state(live, daemon.store().path())?;
    let stop = stop.clone();
    sup.spawn(supervise::TaskName::Web, move || {
        let (state, stop) = (state.clone(), stop.clone());
        let listener = listener
            .try_clone()
            .and_then(tokio::net::TcpListener::from_std);
        async move {
            let listener = match listener {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "web server: cannot reuse its socket");
                    return;
                }
            };
            if let Err(e) =
                crate::web::serve(listener, state, async move { stop.cancelled().await }).await
            {
                tracing::error!(error = %e, "web server failed");
            }
        }
    });
    Ok(())
}

/// What the web sees of the daemon.
struct WebView {
    daemon: Arc<Daemon>,
    jobs: mpsc::Sender<Job>,
}

impl crate::web::Live for WebView {
    fn snapshot(&self) -> crate::web::Snapshot {
        let rt = self.daemon.runtime();
        crate::web::Snapshot {
            cfg: rt.cfg.clone(),
            engine: rt.engine.clone(),
        }
    }

    fn store_version(&self) -> u64 {
        self.daemon.store.version()
    }

    fn write_health(&self) -> store::WriteHealth {
        self.daemon.store.write_health()
    }

    fn source_failures(&self) -> Vec<(String, u64)> {
        let m = match self.daemon.source_failures.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    fn check_now(&self) -> bool {
        self.jobs.try_send(Job::Sweep).is_ok()
    }

    fn tasks_down(&self) -> Vec<(String, String)> {
        self.daemon.tasks.down()
    }

    fn task_failures(&self) -> Vec<(String, u64)> {
        self.daemon.tasks.failures()
    }

    fn release_memory(&self) {
        memory::release();
    }

    fn resolver(&self) -> Option<crate::health::ResolverHealth> {
        self.daemon.published().resolver
    }

    fn impact(&self, target: &str, list: &str, since: i64) -> crate::web::Impact {
        use crate::config::SourceKind;
        use crate::impact::ImpactState;
        // without a delivery log nothing is known of receivers: not "none seen"
        let reads_deliveries = self.daemon.runtime().cfg.sources.iter().any(|s| {
            matches!(
                s.kind,
                SourceKind::PostfixLog { .. } | SourceKind::EximLog { .. }
            )
        });
        if !reads_deliveries {
            return crate::web::Impact::Unknown;
        }
        match self.daemon.published().impact {
            // no assessment yet, or the listing is newer than it: nothing to tell
            None => crate::web::Impact::Unknown,
            Some(a) if since > a.at => crate::web::Impact::Unknown,
            Some(a) => match a.impact_of(target, list) {
                ImpactState::Rejecting => crate::web::Impact::Rejecting,
                ImpactState::NoneSeen => crate::web::Impact::NoneSeen,
            },
        }
    }

    fn recheck(&self, target: &str, list: &str) -> bool {
        self.jobs
            .try_send(Job::Recheck {
                target: target.to_string(),
                list: list.to_string(),
            })
            .is_ok()
    }

    fn request_delist(
        &self,
        r: store::NewDelistRequest,
    ) -> futures::future::BoxFuture<
        'static,
        Result<Option<store::DelistRequest>, crate::web::LiveError>,
    > {
        let daemon = self.daemon.clone();
        Box::pin(async move { Ok(daemon.request_delist(r).await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19: the catalogs are parsed once per configuration and shared: at
    /// load, not again by each engine and the daemon's runtime (three or four
    /// parses at start-up before).
    #[tokio::test(flavor = "current_thread")]
    async fn catalogs_are_parsed_once_per_config_and_shared() {
        let count = || {
            (
                crate::catalog::SHIPPED_PARSES.with(std::cell::Cell::get),
                crate::replies::SHIPPED_PARSES.with(std::cell::Cell::get),
            )
        };
        let before = count();
        let cfg = Config::from_toml(std::path::Path::new("test.toml"), "[resolver]\nnameservers = [\"127.0.0.1:9\"]\nconfirm_with = [\"127.0.0.1:9\"]\n\n[[targets]]\ntarget = \"127.0.0.2\"\n").unwrap();
        let (rt, _) = crate::daemon::Runtime::new(cfg, crate::daemon::Mode::Once)
            .await
            .unwrap();
        let after = count();
        assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1));
        assert!(Arc::ptr_eq(&rt.catalog, rt.cfg.catalog()));
        assert!(Arc::ptr_eq(&rt.replies, rt.cfg.replies()));
    }

    /// Only a stopped writer ends the daemon: a full disk or a failed
    /// statement is a job's failure (recorded, retried next time), however
    /// deep in the chain of contexts it sits.
    #[test]
    fn only_a_stopped_writer_is_fatal() {
        let stopped = anyhow::Error::from(StoreError::Stopped)
            .context("sweep")
            .context("job sweep");
        assert!(is_fatal(&stopped));
        let full = anyhow::Error::from(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full".into()),
        )))
        .context("sweep");
        assert!(!is_fatal(&full));
        assert!(!is_fatal(&anyhow::anyhow!("a source failed")));
    }
}
