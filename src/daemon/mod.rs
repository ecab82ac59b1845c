//! The daemon: schedules health checks and sweeps, runs the evaluator over
//! their outcomes, commits each sweep in one transaction, then publishes the
//! events.
//!
//! Ownership: one [`Daemon`] holds the store, the in-memory pair states and a
//! swappable [`Runtime`] (config + engines) that SIGHUP replaces only once the
//! new config validates. Scheduler jobs (tokio-cron-scheduler) only send
//! [`Tick`]s to the main loop; a sweep runs as its own task, and a tick that
//! arrives while one runs is skipped, so a slow sweep never runs twice.
//! Shutdown is a parameter: when it fires, a running sweep is abandoned (its
//! transaction never started) and [`run`] returns.

mod mail;
mod sweep;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, Mutex};
use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::{Config, Schedule};
use crate::engine::{self, Engine};
use crate::evaluator::{Confirm, PairState};
use crate::event::Event;
use crate::health::ListHealth;
use crate::store::{self, Store};
use crate::time::now;

/// What the scheduler asks the main loop to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tick {
    /// Run a DNSBL sweep (with its health check first).
    Sweep,
    /// Re-check list health only.
    Health,
    /// Apply retention.
    Prune,
    /// Read mail source `n`.
    Source(usize),
    /// Run backscatter probe `n`.
    Probe(usize),
}

/// Where a job runs: a tick is skipped while its slot is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Sweep,
    Housekeeping,
    Source(usize),
    Probe(usize),
}

impl Tick {
    fn slot(self) -> Slot {
        match self {
            Tick::Sweep => Slot::Sweep,
            Tick::Health | Tick::Prune => Slot::Housekeeping,
            Tick::Source(i) => Slot::Source(i),
            Tick::Probe(i) => Slot::Probe(i),
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
        Ok((
            Runtime {
                cfg: Arc::new(cfg),
                engine: Arc::new(engine),
                confirm,
            },
            warnings,
        ))
    }
}

/// What the daemon remembers of a non-clear pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairMem {
    /// Its state.
    pub state: PairState,
    /// When it entered the state.
    pub since: i64,
    /// Fingerprint of its last codes and TXT.
    pub digest: u64,
}

/// In-memory state, loaded from the store at start, changed only after a commit.
#[derive(Debug, Default)]
pub struct Memory {
    /// Non-clear pairs only: a 16,384 x 40 installation keeps a few rows, not 655,360.
    pub pairs: HashMap<(String, String), PairMem>,
    /// Last known health per list.
    pub health: HashMap<String, ListHealth>,
    /// Target specs whose baseline sweep is done.
    pub baselined: HashSet<String>,
}

/// The running daemon.
#[derive(Debug)]
pub struct Daemon {
    store: Store,
    runtime: RwLock<Arc<Runtime>>,
    memory: Mutex<Memory>,
    events: broadcast::Sender<Event>,
    /// Mail-source reads that failed since start (logged and counted).
    pub source_failures: std::sync::atomic::AtomicU64,
}

impl Daemon {
    /// Opens the store, loads state and builds the runtime.
    pub async fn open(cfg: Config, mode: Mode) -> anyhow::Result<Arc<Self>> {
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
                    let digest = sweep::digest_of(&p.details);
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
                m.baselined = store::baselined(c)?;
                Ok(m)
            })
            .await?;
        tracing::info!(database = %cfg.daemon.database.display(), pairs = mem.pairs.len(), "state loaded");
        crate::actions::init_cursors(&store).await?;
        let (rt, warnings) = Runtime::new(cfg, mode).await?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        let (events, _) = broadcast::channel(1024);
        Ok(Arc::new(Daemon {
            store,
            runtime: RwLock::new(Arc::new(rt)),
            memory: Mutex::new(mem),
            events,
            source_failures: Default::default(),
        }))
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
        let (rt, warnings) = Runtime::new(cfg, mode).await?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        match self.runtime.write() {
            Ok(mut g) => *g = Arc::new(rt),
            Err(p) => *p.into_inner() = Arc::new(rt),
        }
        Ok(())
    }

    /// Re-checks list health and records changes (no sweep).
    pub async fn health_check(&self) -> anyhow::Result<()> {
        let rt = self.runtime();
        let mut mem = self.memory.lock().await;
        let health = rt.engine.check_health().await;
        let at = now();
        let (rows, evs) = sweep::health_changes(&rt.engine, &health, &mem.health, at);
        let committed = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                for (l, h) in &rows {
                    store::write_health(&tx, l, h, at)?;
                }
                let mut out = Vec::new();
                for e in &evs {
                    out.push(store::insert_event(&tx, e)?);
                }
                tx.commit()?;
                Ok((rows, out))
            })
            .await?;
        for (l, h) in committed.0 {
            mem.health.insert(l, h);
        }
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

    /// Runs the job a tick stands for.
    pub async fn run_tick(self: Arc<Self>, tick: Tick) -> anyhow::Result<()> {
        match tick {
            Tick::Sweep => self.sweep().await,
            Tick::Health => self.health_check().await,
            Tick::Prune => self.prune().await,
            Tick::Source(i) => self.read_source(i).await,
            Tick::Probe(i) => self.run_probe(i).await,
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

/// Every job of a configuration, once: retention, the sweep (when there are
/// targets), each mail source, each probe. The start-up runs and `--once` use it.
fn ticks_of(cfg: &Config) -> Vec<Tick> {
    let mut v = vec![Tick::Prune];
    if !cfg.targets.is_empty() {
        v.push(Tick::Sweep);
    }
    v.extend((0..cfg.sources.len()).map(Tick::Source));
    v.extend((0..cfg.probes.len()).map(Tick::Probe));
    v
}

async fn add_job(
    sched: &JobScheduler,
    schedule: &Schedule,
    tick: Tick,
    tx: mpsc::Sender<Tick>,
) -> anyhow::Result<uuid::Uuid> {
    let run = move |_id, _l| {
        let tx = tx.clone();
        Box::pin(async move {
            let _ = tx.send(tick).await;
        }) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    };
    let job = match schedule {
        Schedule::Every(d) => Job::new_repeated_async(*d, run)?,
        Schedule::Cron(c) => Job::new_async(c.as_str(), run)?,
    };
    Ok(sched.add(job).await?)
}

async fn schedule_jobs(
    sched: &JobScheduler,
    cfg: &Config,
    tx: &mpsc::Sender<Tick>,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    Ok(vec![
        add_job(sched, &cfg.daemon.sweep, Tick::Sweep, tx.clone()).await?,
        add_job(sched, &cfg.daemon.health, Tick::Health, tx.clone()).await?,
        add_job(
            sched,
            &Schedule::Every(Duration::from_secs(86_400)),
            Tick::Prune,
            tx.clone(),
        )
        .await?,
    ])
}

/// Runs the daemon until `shutdown` resolves (or, in [`Mode::Once`], until every job ran once).
///
/// `reload` yields each time the configuration should be re-read (SIGHUP).
pub async fn run(
    cfg: Config,
    mode: Mode,
    mut reload: mpsc::Receiver<()>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let path = cfg.path.clone();
    let daemon = Daemon::open(cfg, mode).await?;
    if mode == Mode::Once {
        let work = async {
            let rt = daemon.runtime();
            for tick in ticks_of(&rt.cfg) {
                daemon.clone().run_tick(tick).await?;
            }
            // hooks, then alerts (hook failures included), delivered now
            crate::actions::Runner::new(&rt.cfg.actions)
                .process(&daemon.store, now(), crate::actions::Flush::All)
                .await?;
            anyhow::Ok(())
        };
        tokio::select! {
            r = work => return r,
            () = shutdown => {
                tracing::info!("stopping: sweep abandoned");
                return Ok(());
            }
        }
    }

    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(actions_worker(daemon.clone(), stop.clone()));
    let (tx, mut ticks) = mpsc::channel(16);
    let web = if daemon.runtime().cfg.web.enabled {
        let addr = daemon.runtime().cfg.web.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("web.listen: cannot bind {addr}: {e}"))?;
        tracing::info!(address = %addr, "status page listening");
        let live = Arc::new(WebView {
            daemon: daemon.clone(),
            ticks: tx.clone(),
        });
        let state = crate::web::state(live, daemon.store().path())?;
        let stop_web = stop.clone();
        Some(tokio::spawn(async move {
            if let Err(e) =
                crate::web::serve(listener, state, async move { stop_web.cancelled().await }).await
            {
                tracing::error!(error = %format!("{e:#}"), "web server failed");
            }
        }))
    } else {
        None
    };
    let mut sched = JobScheduler::new().await?;
    let mut jobs = schedule_jobs(&sched, &daemon.runtime().cfg, &tx).await?;
    sched.start().await?;
    // First runs at start: do not wait a whole interval.
    for tick in ticks_of(&daemon.runtime().cfg) {
        let _ = tx.send(tick).await;
    }

    // Each job runs in a slot; a tick whose slot is still busy is skipped. Sweeps have
    // their own slot (only another sweep makes one wait); health checks and retention
    // share one, and a health check is pointless while a sweep (which checks health
    // first) runs; every mail source and probe has its own.
    let mut running: std::collections::HashMap<Slot, JoinHandle<()>> =
        std::collections::HashMap::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(()) = reload.recv() => {
                match daemon.reload(&path, mode).await {
                    Ok(()) => {
                        for id in jobs.drain(..) {
                            let _ = sched.remove(&id).await;
                        }
                        jobs = schedule_jobs(&sched, &daemon.runtime().cfg, &tx).await?;
                        tracing::info!(config = %path.display(), "configuration reloaded");
                    }
                    Err(e) => tracing::error!(config = %path.display(), error = %format!("{e:#}"), "new configuration rejected; the running one stays"),
                }
            }
            Some(tick) = ticks.recv() => {
                let busy = |slot: Slot| running.get(&slot).is_some_and(|h| !h.is_finished());
                if busy(tick.slot()) || (tick == Tick::Health && busy(Slot::Sweep)) {
                    match tick {
                        Tick::Sweep => tracing::warn!("a sweep is still running; this scheduled sweep is skipped"),
                        _ => tracing::debug!(job = ?tick, "still running; skipped"),
                    }
                    continue;
                }
                let d = daemon.clone();
                running.insert(tick.slot(), tokio::spawn(async move {
                    if let Err(e) = d.run_tick(tick).await {
                        tracing::error!(job = ?tick, error = %format!("{e:#}"), "job failed");
                    }
                }));
            }
        }
    }
    tracing::info!("stopping");
    for h in running.into_values() {
        if !h.is_finished() {
            tracing::info!("abandoning a running job");
            h.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
    }
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), worker).await;
    if let Some(w) = web {
        let _ = tokio::time::timeout(Duration::from_secs(2), w).await;
    }
    let _ = sched.shutdown().await;
    Ok(())
}

/// What the web sees of the daemon.
struct WebView {
    daemon: Arc<Daemon>,
    ticks: mpsc::Sender<Tick>,
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

    fn source_failures(&self) -> u64 {
        self.daemon
            .source_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn check_now(&self) -> bool {
        self.ticks.try_send(Tick::Sweep).is_ok()
    }
}

/// Runs the actions worker: a pass after every committed event, and every second
/// (grouping windows and retries are time-based).
async fn actions_worker(daemon: Arc<Daemon>, stop: tokio_util::sync::CancellationToken) {
    let mut events = daemon.subscribe();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = events.recv() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let rt = daemon.runtime();
        let runner = crate::actions::Runner::new(&rt.cfg.actions);
        let work = runner.process(&daemon.store, now(), crate::actions::Flush::Window);
        tokio::select! {
            () = stop.cancelled() => return,
            r = work => if let Err(e) = r {
                tracing::error!(error = %format!("{e:#}"), "actions pass failed");
            }
        }
    }
}
