//! Actions: what happens after an event is committed.
//!
//! Two cursors kept in the database (`hooks:cursor`, `alerts:cursor`) follow
//! the `events` table, so an event committed just before a crash is still
//! acted on after the restart. Three kinds of work run as separate tasks, so
//! a slow one never delays another (a webhook that hangs for 30 s does not
//! hold up a hook):
//! 1. **hooks**: the hooks each new event triggers (and reverts when a
//!    condition clears). Each hook follows the events with its own cursor
//!    (`hooks:cursor:<name>`) in its own task, so a slow hook delays only its
//!    own queue; a hook's runs stay in event order, and at most
//!    [`MAX_CONCURRENT_HOOKS`] runs of different hooks happen at once. Before a
//!    hook runs, its run is recorded as `running` in the same transaction that
//!    moves its cursor past the event; after a crash such a run is marked
//!    `interrupted` and alerted, never run twice. `hooks:cursor` is where every
//!    hook has got to (a hook added later starts there).
//! 2. **grouping**: new events within `group_window` become one message per
//!    channel, written to the durable outbox with a dedup key. A message that
//!    cannot be rendered is recorded as a failed delivery and alerted through
//!    the other channels; the cursor moves on.
//! 3. **delivery**: one task per channel delivers its due messages with one
//!    shared HTTP client, retrying with exponential backoff; a channel that
//!    starts failing raises `alert_failed`, and `alert_recovered` when it
//!    delivers again. Webhooks carry an idempotency key: at least once.

pub mod alerts;
pub mod hooks;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::hooks::{condition_key, gate, Gate};
use crate::config::{ActionsConf, AlertSettings, ChannelConf, HookMode};
use crate::event::{Event, EventKind, Subject};
use crate::runs::{HookAction, HookStatus};
use crate::store::{self, HookRun, StateKey, Store, StoreError};
use crate::time::now;

/// Why a pass of an actions task stopped (it is retried on the next tick).
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event could not be encoded for a hook.
    #[error("cannot encode the event: {0}")]
    Encode(#[from] serde_json::Error),
}

/// How much to flush in a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Wait for the grouping window and the backoff (service mode).
    Window,
    /// Send everything now (`--once`).
    All,
}

/// Runs of different hooks at once, at most (each hook runs one at a time).
pub const MAX_CONCURRENT_HOOKS: usize = 8;

/// At start: sets both cursors to the newest event if they are not set
/// (history from before actions existed is never replayed), and records hook
/// runs a stopped daemon left `running` as `interrupted`, each with a
/// `hook_failed` event. Returns those events.
pub async fn recover(store: &Store) -> Result<Vec<Event>, StoreError> {
    store
        .call(|c| {
            let tx = c.transaction()?;
            let max: i64 =
                tx.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))?;
            for k in [StateKey::HooksCursor, StateKey::AlertsCursor] {
                if store::get_state::<i64>(&tx, &k)?.is_none() {
                    store::put_state(&tx, &k, &max, now())?;
                }
            }
            let mut events = Vec::new();
            for run in store::interrupt_running_hooks(&tx)? {
                tracing::warn!(hook = %run.hook, action = %run.action, "a hook run was interrupted by a daemon stop; it is not run again");
                // Count it as done: the shipped hooks are idempotent, so a later revert is safe.
                if let Some(cond) = &run.condition {
                    update_active(&tx, &run.hook, run.action, HookStatus::Ok, cond)?;
                }
                let e = Event::new(
                    EventKind::HookFailed,
                    now(),
                    Subject::Hook {
                        name: run.hook.clone(),
                    },
                    format!(
                        "hook {} ({}) was interrupted by a daemon stop and was not run again: check what it changed",
                        run.hook, run.action
                    ),
                    serde_json::json!({ "hook": run.hook, "action": run.action, "status": HookStatus::Interrupted, "run_id": run.id }),
                );
                events.push(store::insert_event(&tx, &e)?);
            }
            tx.commit()?;
            Ok(events)
        })
        .await
}

/// Updates the set of conditions a hook's remediation is in place for.
fn update_active(
    c: &rusqlite::Connection,
    hook: &str,
    action: HookAction,
    status: HookStatus,
    cond: &str,
) -> Result<(), StoreError> {
    let key = StateKey::HookConditions(hook.to_string());
    let mut active: BTreeSet<String> = store::get_state(c, &key)?.unwrap_or_default();
    match (action, status) {
        (HookAction::Run, HookStatus::Ok | HookStatus::DryRun) => {
            active.insert(cond.to_string());
        }
        (HookAction::Run, HookStatus::SkippedCooldown | HookStatus::SkippedCap)
            if !active.is_empty() =>
        {
            active.insert(cond.to_string());
        }
        (HookAction::Revert, _) => {
            active.remove(cond);
        }
        _ => return Ok(()),
    }
    store::put_state(c, &key, &active, now())
}

/// A run about to happen.
#[derive(Debug, Clone)]
struct Plan {
    hook: usize,
    action: HookAction,
    argv: Vec<String>,
    gate: Gate,
    cond: String,
}

/// The actions: the store and the HTTP client every delivery shares.
#[derive(Debug, Clone)]
pub struct Actions {
    store: Store,
    http: reqwest::Client,
}

impl Actions {
    /// Actions over `store`.
    pub fn new(store: Store) -> Self {
        Actions {
            store,
            http: alerts::http_client(),
        }
    }

    /// Everything once, delivering what is due now (`daemon --once`).
    pub async fn once(&self, conf: &ActionsConf) -> Result<(), ActionsError> {
        self.hooks_pass(conf).await?;
        self.group_pass(conf, Flush::All).await?;
        let deliveries = conf
            .channels
            .iter()
            .map(|ch| self.deliver_channel(ch, &conf.settings, Flush::All));
        for r in futures::future::join_all(deliveries).await {
            r?;
        }
        Ok(())
    }

    /// Runs the hooks of every event after their cursors: each hook's queue
    /// on its own, at most [`MAX_CONCURRENT_HOOKS`] runs at once.
    pub async fn hooks_pass(&self, conf: &ActionsConf) -> Result<(), ActionsError> {
        let sem = tokio::sync::Semaphore::new(MAX_CONCURRENT_HOOKS);
        let passes = (0..conf.hooks.len()).map(|i| self.hook_pass(conf, i, &sem));
        for r in futures::future::join_all(passes).await {
            r?;
        }
        self.advance_hooks_cursor(conf).await
    }

    /// Moves `hooks:cursor` to where every configured hook has got to (the
    /// newest event when there are none), never back.
    pub async fn advance_hooks_cursor(&self, conf: &ActionsConf) -> Result<(), ActionsError> {
        let keys: Vec<StateKey> = conf
            .hooks
            .iter()
            .map(|h| StateKey::HookCursor(h.name.clone()))
            .collect();
        self.store
            .call(move |c| {
                let tx = c.transaction()?;
                let cur: i64 = store::get_state(&tx, &StateKey::HooksCursor)?.unwrap_or(0);
                let mut at = if keys.is_empty() {
                    tx.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))?
                } else {
                    i64::MAX
                };
                for k in &keys {
                    // a hook without a cursor yet starts at `hooks:cursor`
                    at = at.min(store::get_state(&tx, k)?.unwrap_or(cur));
                }
                if at > cur {
                    store::put_state(&tx, &StateKey::HooksCursor, &at, now())?;
                }
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Runs hook `i` for every event after its cursor, in order; each run
    /// that executes waits for a permit of `sem`.
    pub async fn hook_pass(
        &self,
        conf: &ActionsConf,
        i: usize,
        sem: &tokio::sync::Semaphore,
    ) -> Result<(), ActionsError> {
        let key = StateKey::HookCursor(conf.hooks[i].name.clone());
        let k2 = key.clone();
        let mut cursor: i64 = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let at = match store::get_state::<i64>(&tx, &k2)? {
                    Some(at) => at,
                    None => {
                        // a new hook (or the first start after an upgrade) takes over
                        // from the cursor all hooks shared
                        let at = match store::get_state::<i64>(&tx, &StateKey::HooksCursor)? {
                            Some(at) => at,
                            None => {
                                tx.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| {
                                    r.get(0)
                                })?
                            }
                        };
                        store::put_state(&tx, &k2, &at, now())?;
                        at
                    }
                };
                tx.commit()?;
                Ok(at)
            })
            .await?;
        loop {
            let events = self
                .store
                .call(move |c| store::events_after(c, cursor, 50))
                .await?;
            let Some(last) = events.last().map(|e| e.id) else {
                return Ok(());
            };
            let mut moved = cursor;
            for e in &events {
                if self.hook_for(conf, i, e, sem).await? {
                    moved = e.id;
                }
            }
            if moved != last {
                // the events at the end of the batch were not this hook's
                let k = key.clone();
                self.store
                    .call(move |c| store::put_state(c, &k, &last, now()))
                    .await?;
            }
            cursor = last;
        }
    }

    /// What hook `i` does about `e`, if anything.
    async fn plan(
        &self,
        conf: &ActionsConf,
        i: usize,
        e: &Event,
    ) -> Result<Option<Plan>, ActionsError> {
        if e.baseline || e.kind == EventKind::HookFailed {
            return Ok(None);
        }
        let at = now();
        let h = &conf.hooks[i];
        if !h.matches_filters(e) {
            return Ok(None);
        }
        let cond = condition_key(e);
        let key = StateKey::HookConditions(h.name.clone());
        let name = h.name.clone();
        let (active, (runs, last)): (BTreeSet<String>, (i64, Option<i64>)) = self
            .store
            .call(move |c| {
                Ok((
                    store::get_state(c, &key)?.unwrap_or_default(),
                    store::hook_runs_since(c, &name, at - 3600)?,
                ))
            })
            .await?;
        if h.on.contains(&e.kind) && e.severity >= h.min_severity {
            if at - e.at > h.max_event_age.as_secs() as i64 {
                tracing::warn!(hook = %h.name, event = e.id, "event too old to act on; hook not run");
                return Ok(None);
            }
            return Ok(Some(Plan {
                hook: i,
                action: HookAction::Run,
                argv: h.command.clone(),
                gate: gate(h, at, runs, last),
                cond,
            }));
        }
        if let (Some(raise), Some(revert)) = (e.kind.clears(), &h.revert) {
            if h.on.contains(&raise) && active.contains(&cond) {
                let gate = if active.len() == 1 {
                    match h.mode {
                        HookMode::Live => Gate::Run,
                        HookMode::DryRun => Gate::DryRun,
                    }
                } else {
                    // another condition still needs the remediation: only forget this one
                    Gate::Kept
                };
                return Ok(Some(Plan {
                    hook: i,
                    action: HookAction::Revert,
                    argv: revert.clone(),
                    gate,
                    cond,
                }));
            }
        }
        Ok(None)
    }

    /// Hook `i` on `e`: true when something was recorded (and the hook's
    /// cursor moved past `e` with it).
    async fn hook_for(
        &self,
        conf: &ActionsConf,
        i: usize,
        e: &Event,
        sem: &tokio::sync::Semaphore,
    ) -> Result<bool, ActionsError> {
        let Some(p) = self.plan(conf, i, e).await? else {
            return Ok(false);
        };
        let h = &conf.hooks[p.hook];
        // A run waits for its turn before it is recorded: `running` means running.
        let _permit = match p.gate {
            Gate::Run => sem.acquire().await.ok(),
            _ => None,
        };
        let started = now();
        // 1. The intent: the run recorded (`running` if it executes, else the
        //    decision taken) and the hook's cursor moved past the event, in one
        //    transaction. A crash after it never runs this hook on it again.
        let run = HookRun {
            id: 0,
            hook: h.name.clone(),
            action: p.action,
            event_id: Some(e.id),
            event_kind: Some(e.kind),
            started_at: started,
            duration_ms: 0,
            status: match p.gate {
                Gate::Run => HookStatus::Running,
                Gate::DryRun => HookStatus::DryRun,
                Gate::Kept => HookStatus::Kept,
                Gate::Cooldown => HookStatus::SkippedCooldown,
                Gate::Cap => HookStatus::SkippedCap,
            },
            exit_code: None,
            argv: p.argv.clone(),
            stdout: String::new(),
            stderr: String::new(),
            condition: Some(p.cond.clone()),
        };
        let (id, key) = (e.id, StateKey::HookCursor(h.name.clone()));
        let run_id: i64 = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let run_id = store::insert_hook_run(&tx, &run)?;
                if run.status != HookStatus::Running {
                    if let Some(cond) = &run.condition {
                        update_active(&tx, &run.hook, run.action, run.status, cond)?;
                    }
                }
                store::put_state(&tx, &key, &id, now())?;
                tx.commit()?;
                Ok(run_id)
            })
            .await?;
        if p.gate != Gate::Run {
            tracing::info!(hook = %h.name, action = %p.action, event = e.kind.as_str(), gate = ?p.gate, "hook not run");
            return Ok(true);
        }
        // 2. The run; its result (and what it means) committed as it ends.
        let json = serde_json::to_string(e)?;
        let env = hooks::event_env(e, p.action.as_str(), &h.env);
        let x = hooks::execute(&p.argv, &json, &env, h.timeout).await;
        tracing::info!(hook = %h.name, action = %p.action, event = e.kind.as_str(), status = %x.status, "hook");
        let run = HookRun {
            id: run_id,
            hook: h.name.clone(),
            action: p.action,
            event_id: Some(e.id),
            event_kind: Some(e.kind),
            started_at: started,
            duration_ms: x.duration.as_millis() as i64,
            status: x.status,
            exit_code: x.exit_code,
            argv: p.argv.clone(),
            stdout: x.stdout,
            stderr: x.stderr,
            condition: Some(p.cond.clone()),
        };
        let failed = x.status.failed().then(|| hook_failed_event(&run, e));
        let tracks = h.revert.is_some();
        self.store
            .call(move |c| {
                let tx = c.transaction()?;
                store::finish_hook_run(&tx, &run)?;
                if tracks {
                    update_active(&tx, &run.hook, run.action, run.status, &p.cond)?;
                }
                if let Some(f) = &failed {
                    store::insert_event(&tx, f)?;
                }
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(true)
    }

    /// Groups new events into one outbox message per channel.
    pub async fn group_pass(&self, conf: &ActionsConf, flush: Flush) -> Result<(), ActionsError> {
        loop {
            let at = now();
            let cursor: i64 = self
                .store
                .call(|c| Ok(store::get_state(c, &StateKey::AlertsCursor)?.unwrap_or(0)))
                .await?;
            let events = self
                .store
                .call(move |c| store::events_after(c, cursor, 500))
                .await?;
            let Some(first) = events.first() else {
                return Ok(());
            };
            if flush == Flush::Window && at - first.at < conf.settings.group_window.as_secs() as i64
            {
                return Ok(());
            }
            let last = events.last().map_or(cursor, |e| e.id);
            let mut queued = Vec::new();
            let mut failed = Vec::new();
            for ch in &conf.channels {
                let mine: Vec<Event> = events.iter().filter(|e| ch.wants(e)).cloned().collect();
                // one message, or several when one would be over the channel's size cap
                for (dedup, ids, r) in
                    alerts::render_parts(ch, &mine, &conf.settings.status_url, &conf.host)
                {
                    match r {
                        Ok(m) => queued.push((ch.name.clone(), dedup, ids, m)),
                        Err(err) => {
                            tracing::error!(channel = %ch.name, error = %err, "alert not rendered; recorded as a failed delivery");
                            // Alert the other channels, unless this was itself about a
                            // channel failing (no cascade of failures about failures).
                            let about_failures =
                                mine.iter().all(|e| e.kind == EventKind::AlertFailed);
                            let event = (!about_failures).then(|| {
                                Event::new(
                                    EventKind::AlertFailed,
                                    at,
                                    Subject::Channel {
                                        name: ch.name.clone(),
                                    },
                                    format!("alert channel {} could not render a message: {err}", ch.name),
                                    serde_json::json!({ "channel": ch.name, "why": err.to_string(), "events": ids }),
                                )
                            });
                            failed.push((ch.name.clone(), dedup, ids, err.to_string(), event));
                        }
                    }
                }
            }
            let n = queued.len();
            self.store
                .call(move |c| {
                    let tx = c.transaction()?;
                    for (ch, dedup, ids, m) in &queued {
                        store::enqueue_alert(&tx, ch, dedup, at, ids, &m.subject, &m.body)?;
                    }
                    for (ch, dedup, ids, why, event) in &failed {
                        store::enqueue_failed_alert(&tx, ch, dedup, at, ids, why)?;
                        if let Some(e) = event {
                            store::insert_event(&tx, e)?;
                        }
                    }
                    store::put_state(&tx, &StateKey::AlertsCursor, &last, at)?;
                    tx.commit()?;
                    Ok(())
                })
                .await?;
            if n > 0 {
                tracing::debug!(messages = n, events = events.len(), "alerts queued");
            }
        }
    }

    /// Delivers `ch`'s due messages, oldest first.
    pub async fn deliver_channel(
        &self,
        ch: &ChannelConf,
        settings: &AlertSettings,
        flush: Flush,
    ) -> Result<(), ActionsError> {
        let due_at = if flush == Flush::All { i64::MAX } else { now() };
        let name = ch.name.clone();
        let due = self
            .store
            .call(move |c| store::due_alerts(c, &name, due_at))
            .await?;
        for row in due {
            let m = alerts::Message {
                subject: row.subject.clone(),
                body: row.body.clone(),
            };
            let result = alerts::deliver(&self.http, ch, &m, &row.dedup_key, settings.timeout)
                .await
                .map_err(|e| e.to_string());
            let t = now();
            let retry_at = if t - row.created_at > settings.give_up_after.as_secs() as i64 {
                None
            } else {
                Some(t + (10i64 << row.attempts.clamp(0, 8)).min(3600))
            };
            match &result {
                Ok(()) => tracing::info!(channel = %row.channel, alert = row.id, "alert delivered"),
                Err(e) if retry_at.is_some() => {
                    tracing::warn!(channel = %row.channel, alert = row.id, attempts = row.attempts + 1, error = %e, "alert delivery failed; will retry")
                }
                Err(e) => {
                    tracing::error!(channel = %row.channel, alert = row.id, error = %e, "alert delivery failed; giving up")
                }
            }
            let id = row.id;
            let name = ch.name.clone();
            self.store
                .call(move |c| {
                    let tx = c.transaction()?;
                    // A channel that starts failing (or recovers) is news for the others.
                    let key = StateKey::AlertFailing(name.to_string());
                    let failing: bool = store::get_state(&tx, &key)?.unwrap_or(false);
                    let change = match (&result, failing) {
                        (Err(why), false) => Some((
                            EventKind::AlertFailed,
                            format!("alert channel {name} cannot deliver: {why}"),
                            why.clone(),
                        )),
                        (Ok(()), true) => Some((
                            EventKind::AlertRecovered,
                            format!("alert channel {name} delivers again"),
                            String::new(),
                        )),
                        _ => None,
                    };
                    if let Some((kind, summary, why)) = change {
                        store::put_state(&tx, &key, &(kind == EventKind::AlertFailed), t)?;
                        let e = Event::new(
                            kind,
                            t,
                            Subject::Channel { name: name.clone() },
                            summary,
                            serde_json::json!({ "channel": name, "why": why }),
                        );
                        store::insert_event(&tx, &e)?;
                    }
                    store::mark_alert(&tx, id, t, result, retry_at)?;
                    tx.commit()?;
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }
}

fn hook_failed_event(run: &HookRun, e: &Event) -> Event {
    let how = match run.status {
        HookStatus::Timeout => "timed out and was killed",
        HookStatus::Error => "could not be started",
        _ => "failed",
    };
    let tail: String = run
        .stderr
        .chars()
        .rev()
        .take(500)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Event::new(
        EventKind::HookFailed,
        now(),
        Subject::Hook {
            name: run.hook.clone(),
        },
        format!("hook {} ({} on {}) {how}", run.hook, run.action, e.kind),
        serde_json::json!({ "hook": run.hook, "action": run.action, "status": run.status, "exit_code": run.exit_code, "why": tail, "event_subject": e.subject }),
    )
}

/// The hooks worker: runs the hooks of committed events until `stop`.
/// Supervised by the daemon, which restarts it if it dies: it keeps no state
/// but the store's cursors, so a restart loses and repeats nothing.
pub async fn run_hooks(
    actions: Actions,
    conf: watch::Receiver<Arc<ActionsConf>>,
    events: broadcast::Sender<Event>,
    stop: CancellationToken,
) {
    // one task per hook, so a slow hook delays only its own queue; they are
    // aborted with this worker (a dead worker's passes must not run on beside
    // the restarted one's)
    let sem = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_HOOKS));
    let mut passes = Passes::default();
    let mut rx = events.subscribe();
    loop {
        if wait(&mut rx, &stop).await {
            break;
        }
        fault_point("hooks-worker-panic");
        let c = conf.borrow().clone();
        for (i, h) in c.hooks.iter().enumerate() {
            if passes.0.get(&h.name).is_some_and(|t| !t.is_finished()) {
                continue; // still working through its queue: not stacked
            }
            let (a, c, sem, stop) = (actions.clone(), c.clone(), sem.clone(), stop.clone());
            let name = h.name.clone();
            passes.0.insert(
                h.name.clone(),
                tokio::spawn(async move {
                    tokio::select! {
                        () = stop.cancelled() => {}
                        r = a.hook_pass(&c, i, &sem) => if let Err(e) = r {
                            tracing::error!(hook = %name, error = %e, "hooks pass failed; retried in a second");
                        }
                    }
                }),
            );
        }
        passes.0.retain(|_, t| !t.is_finished());
        if let Err(e) = actions.advance_hooks_cursor(&c).await {
            tracing::error!(error = %e, "hooks cursor not moved; retried in a second");
        }
    }
    for (_, t) in std::mem::take(&mut passes.0) {
        let _ = t.await;
    }
}

/// The hooks' pass tasks, aborted when dropped.
#[derive(Default)]
struct Passes(HashMap<String, JoinHandle<()>>);

impl Drop for Passes {
    fn drop(&mut self) {
        for t in self.0.values() {
            t.abort();
        }
    }
}

/// The alerts worker: groups committed events into messages and delivers
/// them, one task per channel (a channel that hangs delays no other).
pub async fn run_alerts(
    actions: Actions,
    conf: watch::Receiver<Arc<ActionsConf>>,
    events: broadcast::Sender<Event>,
    stop: CancellationToken,
) {
    let mut rx = events.subscribe();
    let mut deliveries: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        if wait(&mut rx, &stop).await {
            break;
        }
        let c = conf.borrow().clone();
        tokio::select! {
            () = stop.cancelled() => break,
            r = actions.group_pass(&c, Flush::Window) => if let Err(e) = r {
                tracing::error!(error = %e, "alert grouping failed; retried in a second");
            }
        }
        for ch in &c.channels {
            if deliveries.get(&ch.name).is_some_and(|h| !h.is_finished()) {
                continue; // still delivering (maybe to an endpoint that hangs): not stacked
            }
            let (a, ch2, settings) = (actions.clone(), ch.clone(), c.settings.clone());
            deliveries.insert(
                ch.name.clone(),
                tokio::spawn(async move {
                    if let Err(e) = a.deliver_channel(&ch2, &settings, Flush::Window).await {
                        tracing::error!(channel = %ch2.name, error = %e, "alert delivery pass failed");
                    }
                }),
            );
        }
    }
    for (_, h) in deliveries {
        h.abort();
    }
}

/// A fault injected by tests through `RBLWATCH_FAULT` (a comma-separated list
/// of names): the named point panics once per process. It proves that the
/// daemon notices a dead worker and that a restarted one loses nothing.
fn fault_point(name: &str) {
    if fault_fires(name) {
        panic!("fault injected at {name} (RBLWATCH_FAULT)");
    }
}

/// True the first time the named fault point of `RBLWATCH_FAULT` is reached
/// in this process (never when the variable does not name it): the caller
/// fails there the way it would in production (a panic, a failed commit).
pub(crate) fn fault_fires(name: &str) -> bool {
    static FIRED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let Ok(set) = std::env::var("RBLWATCH_FAULT") else {
        return false;
    };
    if !set.split(',').any(|f| f.trim() == name) {
        return false;
    }
    let mut fired = match FIRED.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if fired.iter().any(|f| f == name) {
        return false;
    }
    fired.push(name.to_string());
    true
}

/// Waits for an event or a second; true when stopping.
async fn wait(rx: &mut broadcast::Receiver<Event>, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        _ = rx.recv() => false,
        () = tokio::time::sleep(Duration::from_secs(1)) => false,
    }
}
