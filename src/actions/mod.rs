//! Actions: what happens after an event is committed.
//!
//! The worker follows the `events` table with two cursors kept in the
//! database (`hooks:cursor`, `alerts:cursor`), so an event committed just
//! before a crash is still acted on after the restart, and nothing is acted on
//! twice. Each pass:
//! 1. runs the hooks each new event triggers (and reverts when a condition
//!    clears), recording every run, and raising `hook_failed` on failure;
//! 2. groups the new events (a window of `group_window`) into one message per
//!    channel, written to the durable outbox with a dedup key;
//! 3. delivers due messages, retrying with exponential backoff.

pub mod alerts;
pub mod hooks;

use std::collections::BTreeSet;

use self::hooks::{condition_key, gate, Gate};
use crate::config::{ActionsConf, HookMode};
use crate::event::{Event, EventKind, Subject};
use crate::store::{self, HookAction, HookRun, HookStatus, Store};

/// Why a pass of the actions worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    /// The database failed (the pass is retried on the next tick).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// An alert could not be rendered.
    #[error(transparent)]
    Render(#[from] alerts::RenderError),
    /// An event could not be encoded for a hook.
    #[error("cannot encode the event: {0}")]
    Encode(#[from] serde_json::Error),
}

/// How much to flush in a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Wait for the grouping window and the backoff (service mode).
    Window,
    /// Send everything now (`--once`, shutdown).
    All,
}

/// Runs the configured actions over the committed events.
#[derive(Debug, Clone, Copy)]
pub struct Runner<'a> {
    conf: &'a ActionsConf,
}

const HOOKS_CURSOR: &str = "hooks:cursor";
const ALERTS_CURSOR: &str = "alerts:cursor";

/// Sets both cursors to the newest event if they are not set: history from
/// before actions existed is never replayed.
pub async fn init_cursors(store: &Store) -> Result<(), crate::store::StoreError> {
    store
        .call(|c| {
            let max: i64 =
                c.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))?;
            for k in [HOOKS_CURSOR, ALERTS_CURSOR] {
                if store::get_state::<i64>(c, k)?.is_none() {
                    store::put_state(c, k, &max, crate::time::now())?;
                }
            }
            Ok(())
        })
        .await
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

impl<'a> Runner<'a> {
    /// A runner for `conf`.
    pub fn new(conf: &'a ActionsConf) -> Self {
        Runner { conf }
    }

    /// One pass of the worker.
    pub async fn process(&self, store: &Store, now: i64, flush: Flush) -> Result<(), ActionsError> {
        self.run_hooks(store, now).await?;
        self.group_alerts(store, now, flush).await?;
        self.deliver(store, now, flush).await
    }

    async fn run_hooks(&self, store: &Store, now: i64) -> Result<(), ActionsError> {
        loop {
            let cursor: i64 = store
                .call(|c| Ok(store::get_state(c, HOOKS_CURSOR)?.unwrap_or(0)))
                .await?;
            let events = store
                .call(move |c| store::events_after(c, cursor, 50))
                .await?;
            if events.is_empty() {
                return Ok(());
            }
            for e in events {
                self.hooks_for(store, &e, now).await?;
                let id = e.id;
                store
                    .call(move |c| store::put_state(c, HOOKS_CURSOR, &id, now))
                    .await?;
            }
        }
    }

    async fn hooks_for(&self, store: &Store, e: &Event, now: i64) -> Result<(), ActionsError> {
        if e.baseline || e.kind == EventKind::HookFailed || self.conf.hooks.is_empty() {
            return Ok(());
        }
        let mut plans = Vec::new();
        for (i, h) in self.conf.hooks.iter().enumerate() {
            if !h.matches_filters(e) {
                continue;
            }
            let cond = condition_key(e);
            let key = format!("hook:{}", h.name);
            let name = h.name.clone();
            let (active, (runs, last)): (BTreeSet<String>, (i64, Option<i64>)) = store
                .call(move |c| {
                    Ok((
                        store::get_state(c, &key)?.unwrap_or_default(),
                        store::hook_runs_since(c, &name, now - 3600)?,
                    ))
                })
                .await?;
            if h.on.contains(&e.kind) && e.severity >= h.min_severity {
                if now - e.at > h.max_event_age.as_secs() as i64 {
                    tracing::warn!(hook = %h.name, event = e.id, "event too old to act on; hook not run");
                    continue;
                }
                plans.push(Plan {
                    hook: i,
                    action: HookAction::Run,
                    argv: h.command.clone(),
                    gate: gate(h, crate::time::now(), runs, last), // now: earlier runs in this pass may have taken a while
                    cond,
                });
            } else if let (Some(raise), Some(revert)) = (e.kind.clears(), &h.revert) {
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
                    plans.push(Plan {
                        hook: i,
                        action: HookAction::Revert,
                        argv: revert.clone(),
                        gate,
                        cond,
                    });
                }
            }
        }
        let json = serde_json::to_string(e)?;
        let runs = futures::future::join_all(plans.into_iter().map(|p| {
            let h = &self.conf.hooks[p.hook];
            let json = json.clone();
            async move {
                let env = hooks::event_env(e, p.action.as_str(), &h.env);
                let started = crate::time::now();
                let exec = match p.gate {
                    Gate::Run => Some(hooks::execute(&p.argv, &json, &env, h.timeout).await),
                    _ => None,
                };
                (p, started, exec)
            }
        }))
        .await;
        for (p, started, exec) in runs {
            let h = &self.conf.hooks[p.hook];
            let status = match (&exec, p.gate) {
                (Some(x), _) => x.status,
                (None, Gate::DryRun) => HookStatus::DryRun,
                (None, Gate::Kept) => HookStatus::Kept,
                (None, Gate::Cooldown) => HookStatus::SkippedCooldown,
                (None, _) => HookStatus::SkippedCap,
            };
            let run = HookRun {
                id: 0,
                hook: h.name.clone(),
                action: p.action,
                event_id: Some(e.id),
                event_kind: Some(e.kind),
                started_at: started,
                duration_ms: exec.as_ref().map_or(0, |x| x.duration.as_millis() as i64),
                status,
                exit_code: exec.as_ref().and_then(|x| x.exit_code),
                argv: p.argv.clone(),
                stdout: exec.as_ref().map(|x| x.stdout.clone()).unwrap_or_default(),
                stderr: exec.as_ref().map(|x| x.stderr.clone()).unwrap_or_default(),
            };
            tracing::info!(hook = %h.name, action = %p.action, event = e.kind.as_str(), status = %status, "hook");
            let failed = status.failed();
            let has_revert = h.revert.is_some();
            let key = format!("hook:{}", h.name);
            let cond = p.cond.clone();
            let action = p.action;
            let ev_failed = failed.then(|| {
                Event::new(
                    EventKind::HookFailed,
                    crate::time::now(),
                    Subject::Hook { name: h.name.clone() },
                    format!("hook {} ({} on {}) {}", h.name, action, e.kind.as_str(), if status == HookStatus::Timeout { "timed out and was killed" } else { "failed" }),
                    serde_json::json!({ "hook": h.name, "action": action, "status": status, "exit_code": run.exit_code, "why": run.stderr.chars().rev().take(500).collect::<Vec<_>>().into_iter().rev().collect::<String>(), "event_subject": e.subject }),
                )
            });
            store
                .call(move |c| {
                    let tx = c.transaction()?;
                    store::insert_hook_run(&tx, &run)?;
                    // which conditions the remediation is in place for
                    let mut active: BTreeSet<String> =
                        store::get_state(&tx, &key)?.unwrap_or_default();
                    match (action, status) {
                        (HookAction::Run, HookStatus::Ok | HookStatus::DryRun) => {
                            active.insert(cond);
                        }
                        (HookAction::Run, HookStatus::SkippedCooldown | HookStatus::SkippedCap)
                            if !active.is_empty() =>
                        {
                            active.insert(cond);
                        }
                        (HookAction::Revert, _) => {
                            active.remove(&cond);
                        }
                        _ => {}
                    }
                    if has_revert {
                        store::put_state(&tx, &key, &active, crate::time::now())?;
                    }
                    if let Some(f) = &ev_failed {
                        store::insert_event(&tx, f)?;
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }

    async fn group_alerts(
        &self,
        store: &Store,
        now: i64,
        flush: Flush,
    ) -> Result<(), ActionsError> {
        loop {
            let cursor: i64 = store
                .call(|c| Ok(store::get_state(c, ALERTS_CURSOR)?.unwrap_or(0)))
                .await?;
            let events = store
                .call(move |c| store::events_after(c, cursor, 500))
                .await?;
            let Some(first) = events.first() else {
                return Ok(());
            };
            if flush == Flush::Window
                && now - first.at < self.conf.settings.group_window.as_secs() as i64
            {
                return Ok(());
            }
            let last = events.last().map_or(cursor, |e| e.id);
            let mut queued = Vec::new();
            for ch in &self.conf.channels {
                let mine: Vec<Event> = events.iter().filter(|e| ch.wants(e)).cloned().collect();
                if mine.is_empty() {
                    continue;
                }
                let m = alerts::render(ch, &mine, &self.conf.settings.status_url, &self.conf.host)?;
                let ids: Vec<i64> = mine.iter().map(|e| e.id).collect();
                let dedup = format!("{}:{}-{}", ch.name, ids[0], ids[ids.len() - 1]);
                queued.push((ch.name.clone(), dedup, ids, m));
            }
            let n = queued.len();
            store
                .call(move |c| {
                    let tx = c.transaction()?;
                    for (ch, dedup, ids, m) in &queued {
                        store::enqueue_alert(&tx, ch, dedup, now, ids, &m.subject, &m.body)?;
                    }
                    store::put_state(&tx, ALERTS_CURSOR, &last, now)?;
                    tx.commit()?;
                    Ok(())
                })
                .await?;
            if n > 0 {
                tracing::debug!(messages = n, events = events.len(), "alerts queued");
            }
        }
    }

    async fn deliver(&self, store: &Store, now: i64, flush: Flush) -> Result<(), ActionsError> {
        let due_at = if flush == Flush::All { i64::MAX } else { now };
        let due = store.call(move |c| store::due_alerts(c, due_at)).await?;
        for row in due {
            let result = match self.conf.channels.iter().find(|c| c.name == row.channel) {
                Some(ch) => {
                    alerts::deliver(
                        ch,
                        &alerts::Message {
                            subject: row.subject.clone(),
                            body: row.body.clone(),
                        },
                        self.conf.settings.timeout,
                    )
                    .await
                }
                None => Err(format!("channel {} is no longer configured", row.channel)),
            };
            let t = crate::time::now();
            let retry_at = if t - row.created_at > self.conf.settings.give_up_after.as_secs() as i64
            {
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
            store
                .call(move |c| store::mark_alert(c, id, t, result, retry_at))
                .await?;
        }
        Ok(())
    }
}
