//! Supervision of the daemon's long-lived tasks (the hooks and alerts workers,
//! the web server) and of its jobs.
//!
//! A task that dies (a panic, or an early return) must not leave the page and
//! `/healthz` saying all is well while hooks or alerts silently stop: it is
//! logged by name, counted, shown as down on `/healthz` until it runs again,
//! and restarted after a backoff (the workers keep nothing but the store's
//! cursors, so a restart loses and repeats nothing). Shutdown gives every task
//! one shared deadline and names the ones that missed it.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

crate::spelling::closed_set! {
    /// The supervised tasks, by name.
    #[derive(PartialOrd, Ord)]
    pub enum TaskName {
        /// Runs the hooks of committed events.
        Hooks = "hooks",
        /// Groups events into alerts and delivers them.
        Alerts = "alerts",
        /// The status page, API and `/metrics`.
        Web = "web",
    }
}

/// What readers (the web's `/healthz` and `/metrics`) see of the tasks.
#[derive(Debug, Default)]
pub struct TaskHealth {
    inner: Mutex<HealthInner>,
}

#[derive(Debug, Default)]
struct HealthInner {
    /// Tasks down now, with why.
    down: BTreeMap<&'static str, String>,
    /// Deaths per task and job since start.
    failures: BTreeMap<String, u64>,
}

impl TaskHealth {
    fn with<T>(&self, f: impl FnOnce(&mut HealthInner) -> T) -> T {
        match self.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Tasks down now, with why (empty when every task runs).
    pub fn down(&self) -> Vec<(String, String)> {
        self.with(|h| {
            h.down
                .iter()
                .map(|(n, w)| (n.to_string(), w.clone()))
                .collect()
        })
    }

    /// Deaths since start, per task or job name.
    pub fn failures(&self) -> Vec<(String, u64)> {
        self.with(|h| h.failures.iter().map(|(n, c)| (n.clone(), *c)).collect())
    }

    /// A task or job died: counted (and for tasks, down until restarted).
    pub(super) fn died(&self, name: &str, task: Option<TaskName>, why: &str) {
        self.with(|h| {
            *h.failures.entry(name.to_string()).or_default() += 1;
            if let Some(t) = task {
                h.down.insert(t.as_str(), why.to_string());
            }
        });
    }

    fn up(&self, t: TaskName) {
        self.with(|h| h.down.remove(t.as_str()));
    }
}

/// Runs `fut`, turning a panic into an error that names what panicked.
pub(super) async fn catch<F: Future>(fut: F) -> Result<F::Output, String> {
    AssertUnwindSafe(fut).catch_unwind().await.map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        format!("panicked: {msg}")
    })
}

type Factory = Box<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// The set of long-lived tasks.
pub(super) struct Supervisor {
    health: Arc<TaskHealth>,
    factories: BTreeMap<TaskName, Factory>,
    running: BTreeMap<TaskName, JoinHandle<()>>,
    restarts: BTreeMap<TaskName, u32>,
    exits_tx: mpsc::UnboundedSender<(TaskName, String)>,
    exits_rx: mpsc::UnboundedReceiver<(TaskName, String)>,
    restart_tx: mpsc::UnboundedSender<TaskName>,
    restart_rx: mpsc::UnboundedReceiver<TaskName>,
    stopping: bool,
}

/// The first restart's delay; doubled for each further death, up to 5 minutes.
pub const RESTART_BACKOFF: Duration = Duration::from_secs(3);

impl Supervisor {
    pub(super) fn new(health: Arc<TaskHealth>) -> Self {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let (restart_tx, restart_rx) = mpsc::unbounded_channel();
        Supervisor {
            health,
            factories: BTreeMap::new(),
            running: BTreeMap::new(),
            restarts: BTreeMap::new(),
            exits_tx,
            exits_rx,
            restart_tx,
            restart_rx,
            stopping: false,
        }
    }

    /// Starts a task; `make` builds it anew for each restart.
    pub(super) fn spawn<F, Fut>(&mut self, name: TaskName, make: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.factories
            .insert(name, Box::new(move || make().boxed()));
        self.start(name);
    }

    fn start(&mut self, name: TaskName) {
        let Some(make) = self.factories.get(&name) else {
            return;
        };
        let fut = make();
        let exits = self.exits_tx.clone();
        self.health.up(name);
        self.running.insert(
            name,
            tokio::spawn(async move {
                let why = match catch(fut).await {
                    Ok(()) => "returned".to_string(),
                    Err(e) => e,
                };
                let _ = exits.send((name, why));
            }),
        );
    }

    /// Waits for the next thing to do: a task died (handled here: logged,
    /// counted, a restart planned) or a planned restart is due. Never returns
    /// while stopping; the caller selects it beside its other work.
    pub(super) async fn next(&mut self) {
        tokio::select! {
            Some((name, why)) = self.exits_rx.recv() => {
                if self.stopping {
                    return;
                }
                let n = self.restarts.entry(name).or_default();
                *n += 1;
                let delay = RESTART_BACKOFF
                    .saturating_mul(1u32 << (*n - 1).min(7))
                    .min(Duration::from_secs(300));
                tracing::error!(task = %name, why = %why, restart_in_secs = delay.as_secs(), "a supervised task died; it is restarted");
                self.health.died(name.as_str(), Some(name), &format!("{why}; restarting in {} s", delay.as_secs()));
                let tx = self.restart_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(name);
                });
            }
            Some(name) = self.restart_rx.recv() => {
                if !self.stopping {
                    tracing::warn!(task = %name, "restarting a supervised task");
                    self.start(name);
                }
            }
        }
    }

    /// Stops: waits for every task until `deadline`, aborts the rest and
    /// names them. Returns the names that missed the deadline.
    pub(super) async fn shutdown(
        &mut self,
        deadline: Instant,
        mut extra: Vec<(String, JoinHandle<()>)>,
    ) -> Vec<String> {
        self.stopping = true;
        let mut all: Vec<(String, JoinHandle<()>)> = std::mem::take(&mut self.running)
            .into_iter()
            .map(|(n, h)| (n.as_str().to_string(), h))
            .collect();
        all.append(&mut extra);
        let mut missed = Vec::new();
        for (name, mut h) in all {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, &mut h).await.is_err() {
                h.abort();
                missed.push(name);
            }
        }
        if !missed.is_empty() {
            tracing::warn!(missed = %missed.join(", "), "these tasks missed the shutdown deadline and were abandoned");
        }
        missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_dead_task_is_down_counted_and_restarted() {
        let health = Arc::new(TaskHealth::default());
        let mut sup = Supervisor::new(health.clone());
        let starts = Arc::new(AtomicU32::new(0));
        let s = starts.clone();
        sup.spawn(TaskName::Hooks, move || {
            let n = s.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("boom");
                }
                std::future::pending::<()>().await
            }
        });
        sup.next().await; // the death
        assert_eq!(health.down().len(), 1);
        assert!(health.down()[0].1.contains("panicked: boom"));
        assert_eq!(health.failures(), vec![("hooks".to_string(), 1)]);
        sup.next().await; // the restart, after the backoff
        assert!(health.down().is_empty());
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        let missed = sup
            .shutdown(Instant::now() + Duration::from_millis(10), Vec::new())
            .await;
        assert_eq!(missed, vec!["hooks".to_string()]);
    }
}
