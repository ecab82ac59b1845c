//! One sweep: health check, then every (target, list) outcome through the
//! evaluator, then one commit. Memory changes only after the commit, so a
//! sweep that fails or is abandoned leaves no trace but its `abandoned` row.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use super::{now, Daemon};
use crate::engine::Engine;
use crate::evaluator::{
    health_transition, step, Event, EventKind, ListingDetails, Observation, PairState, Sweep,
    Transition,
};
use crate::health::ListHealth;
use crate::store::{self, PairUpdate, PeriodChange, SweepCommit, SweepCounts};
use crate::target::TargetSpec;
use crate::verdict::{Verdict, VerdictKind};

/// Health rows to write and events due, comparing with the last known health.
pub(super) fn health_changes(
    engine: &Engine,
    health: &[ListHealth],
    known: &HashMap<String, ListHealth>,
    at: i64,
) -> (Vec<(String, ListHealth)>, Vec<Event>) {
    let mut rows = Vec::new();
    let mut events = Vec::new();
    for (l, h) in engine.lists().iter().zip(health) {
        let id = &l.def.id;
        if let Some(kind) = health_transition(known.get(id), h) {
            let summary = match kind {
                EventKind::ListUnhealthy => format!("list {id} is {}: {}", h.name(), h.why()),
                _ => format!("list {id} is healthy again"),
            };
            let mut e = Event::new(
                kind,
                at,
                summary,
                serde_json::json!({ "health": h, "zone": l.display_zone(), "list_name": l.def.name }),
            );
            e.list = Some(id.clone());
            events.push(e);
        }
        rows.push((id.clone(), h.clone()));
    }
    (rows, events)
}

fn details(
    v: &Verdict,
    engine: &Engine,
    li: usize,
    target: &crate::target::Target,
) -> ListingDetails {
    let l = &engine.lists()[li];
    let (codes, meanings, txt) = match v {
        Verdict::Listed {
            codes,
            meanings,
            txt,
        } => (codes.clone(), meanings.clone(), txt.clone()),
        _ => (vec![], vec![], vec![]),
    };
    ListingDetails {
        codes,
        meanings,
        txt,
        delist: l.def.delist_url(target),
        zone: l.display_zone(),
        list_name: l.def.name.clone(),
    }
}

impl Daemon {
    /// Runs one sweep and commits it.
    pub async fn sweep(self: Arc<Self>) -> anyhow::Result<()> {
        let rt = self.runtime();
        let cfg = &rt.cfg;
        let engine = &rt.engine;
        let confirm = self.confirm();
        let mut mem = self.memory.lock().await;
        let started = Instant::now();
        let started_at = now();
        let sweep_id = self
            .store
            .call(move |c| store::begin_sweep(c, started_at))
            .await?;

        let health = engine.check_health().await;
        let (health_rows, mut events) = health_changes(engine, &health, &mem.health, started_at);

        let specs: Vec<TargetSpec> = cfg.targets.iter().map(|t| t.spec.clone()).collect();
        let new_specs: Vec<&TargetSpec> = specs
            .iter()
            .filter(|s| !mem.baselined.contains(&s.to_string()))
            .collect();
        let mut counts = SweepCounts {
            targets: specs.iter().map(|s| s.len() as i64).sum(),
            ..Default::default()
        };
        counts.lists_unhealthy = health.iter().filter(|h| !h.is_healthy()).count() as i64;
        let mut pairs = Vec::new();
        let mut periods = Vec::new();
        let mut outcomes = engine.sweep(&specs, &health);
        while let Some(o) = outcomes.next().await {
            counts.pairs += 1;
            match o.verdict.kind() {
                VerdictKind::Listed if health[o.list].is_healthy() => counts.listed += 1,
                VerdictKind::Clear => counts.clear += 1,
                VerdictKind::ListError => counts.errors += 1,
                VerdictKind::Unknown => counts.unknown += 1,
                _ => {}
            }
            let list = &engine.lists()[o.list].def.id;
            let key = (o.target.to_string(), list.clone());
            let (prev, prev_since) = mem
                .pairs
                .get(&key)
                .copied()
                .unwrap_or((PairState::Clear, started_at));
            let mut obs = Observation::from_verdict(&o.verdict, &health[o.list]);
            if let (
                Observation::Listed { .. },
                PairState::Clear | PairState::Suspected { .. },
                Some(c),
            ) = (obs, prev, &rt.confirm)
            {
                if c.query(o.list, &o.target).await.kind() == VerdictKind::Listed {
                    obs = Observation::Listed { corroborated: true };
                }
            }
            if obs == Observation::Ignored {
                continue;
            }
            let sweep = if new_specs.iter().any(|s| s.contains(&o.target)) {
                Sweep::Baseline
            } else {
                Sweep::Regular
            };
            let (next, transition) = step(prev, obs, confirm, sweep);
            let d = details(&o.verdict, engine, o.list, &o.target);
            // When the current state began. A listing starts at its first listed answer
            // (the suspected state's start) and ends at its first clear answer.
            let since = match (prev, next) {
                (a, b) if a == b => prev_since,
                (PairState::Suspected { .. }, PairState::Listed | PairState::Suspected { .. }) => {
                    prev_since
                }
                (PairState::Clearing { .. }, PairState::Clear | PairState::Clearing { .. }) => {
                    prev_since
                }
                _ => started_at,
            };
            // A listed pair is rewritten each sweep so its codes and TXT stay current.
            let refresh = next == PairState::Listed && prev == PairState::Listed;
            if next != prev || refresh {
                pairs.push(PairUpdate {
                    target: key.0.clone(),
                    list: list.clone(),
                    state: next,
                    since,
                    details: d.clone(),
                });
            }
            match transition {
                Some(Transition::Listed) => {
                    let baseline = sweep == Sweep::Baseline;
                    periods.push(PeriodChange::Open {
                        target: key.0.clone(),
                        list: list.clone(),
                        at: since,
                        details: d.clone(),
                        baseline,
                    });
                    let l = &engine.lists()[o.list].def;
                    let mut e = Event::new(
                        EventKind::Listed,
                        started_at,
                        format!(
                            "{} is listed on {} ({})",
                            key.0,
                            l.name,
                            d.meanings.join("; ")
                        ),
                        serde_json::to_value(&d).unwrap_or_default(),
                    );
                    e.target = Some(key.0.clone());
                    e.list = Some(list.clone());
                    e.baseline = baseline;
                    events.push(e);
                }
                Some(Transition::Delisted) => {
                    periods.push(PeriodChange::Close {
                        target: key.0.clone(),
                        list: list.clone(),
                        at: since,
                    });
                    let l = &engine.lists()[o.list].def;
                    let mut e = Event::new(
                        EventKind::Delisted,
                        started_at,
                        format!("{} is no longer listed on {}", key.0, l.name),
                        serde_json::to_value(&d).unwrap_or_default(),
                    );
                    e.target = Some(key.0.clone());
                    e.list = Some(list.clone());
                    events.push(e);
                }
                None => {}
            }
        }
        drop(outcomes);

        let finished_at = now();
        let commit = SweepCommit {
            sweep_id,
            finished_at,
            duration_ms: started.elapsed().as_millis() as i64,
            counts,
            pairs,
            periods,
            health: health_rows,
            events,
            baselined: new_specs.iter().map(|s| s.to_string()).collect(),
        };
        let updates: Vec<(String, String, PairState, i64)> = commit
            .pairs
            .iter()
            .map(|p| (p.target.clone(), p.list.clone(), p.state, p.since))
            .collect();
        let health_now = commit.health.clone();
        let baselined = commit.baselined.clone();
        let n_events = commit.events.len();
        let committed = self
            .store
            .call(move |c| store::commit_sweep(c, &commit))
            .await?;

        for (t, l, s, since) in updates {
            if s == PairState::Clear {
                mem.pairs.remove(&(t, l));
            } else {
                mem.pairs.insert((t, l), (s, since));
            }
        }
        for (l, h) in health_now {
            mem.health.insert(l, h);
        }
        mem.baselined.extend(baselined);
        drop(mem);
        tracing::info!(
            sweep = sweep_id,
            targets = counts.targets,
            pairs = counts.pairs,
            listed = counts.listed,
            clear = counts.clear,
            errors = counts.errors,
            unknown = counts.unknown,
            lists_unhealthy = counts.lists_unhealthy,
            events = n_events,
            duration_ms = started.elapsed().as_millis() as u64,
            "sweep finished"
        );
        self.publish(committed);
        Ok(())
    }
}
