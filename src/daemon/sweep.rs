//! One sweep: health check, then every (target, list) outcome through the
//! evaluator, then one commit. Memory changes only after the commit, so a
//! sweep that fails or is abandoned leaves no trace but its `abandoned` row.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use super::{Daemon, PairMem};
use crate::engine::Engine;
use crate::evaluator::{
    health_transition, step, ListingDetails, Observation, PairState, Sweep, Transition,
};
use crate::event::{Event, EventKind, Subject};
use crate::health::ListHealth;
use crate::store::{self, PairUpdate, PeriodChange, SweepCommit, SweepCounts};
use crate::target::TargetSpec;
use crate::time::now;
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
            events.push(Event::new(
                kind,
                at,
                Subject::List { id: id.clone() },
                summary,
                serde_json::json!({ "health": h, "zone": l.display_zone(), "list_name": l.def.name }),
            ));
        }
        rows.push((id.clone(), h.clone()));
    }
    (rows, events)
}

pub(super) fn details(
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

/// A cheap fingerprint of a listing's codes and TXT, to skip rewriting unchanged rows.
pub(super) fn digest_of(d: &ListingDetails) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    d.codes.hash(&mut h);
    d.meanings.hash(&mut h);
    d.txt.hash(&mut h);
    h.finish()
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
        let mut baseline_found = Vec::new();
        let mut baseline_count = 0u64;
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
            let prev = mem.pairs.get(&key).copied().unwrap_or(PairMem {
                state: PairState::Clear,
                since: started_at,
                digest: 0,
            });
            let mut obs = Observation::from_verdict(&o.verdict, &health[o.list]);
            if let (
                Observation::Listed { .. },
                PairState::Clear | PairState::Suspected { .. },
                Some(c),
            ) = (obs, prev.state, &rt.confirm)
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
            let (next, transition) = step(prev.state, obs, confirm, sweep);
            // When the current state began. A listing starts at its first listed answer
            // (the suspected state's start) and ends at its first clear answer.
            let since = match (prev.state, next) {
                (a, b) if a == b => prev.since,
                (PairState::Suspected { .. }, PairState::Listed | PairState::Suspected { .. }) => {
                    prev.since
                }
                (PairState::Clearing { .. }, PairState::Clear | PairState::Clearing { .. }) => {
                    prev.since
                }
                _ => started_at,
            };
            let d = Arc::new(details(&o.verdict, engine, o.list, &o.target));
            let digest = digest_of(&d);
            // A listed pair is rewritten only when its codes or TXT changed.
            let refresh = next == PairState::Listed
                && prev.state == PairState::Listed
                && digest != prev.digest;
            if next != prev.state || refresh {
                pairs.push(PairUpdate {
                    target: key.0.clone(),
                    list: list.clone(),
                    state: next,
                    since,
                    details: d.clone(),
                });
            }
            let l = &engine.lists()[o.list].def;
            match transition {
                Some(Transition::Listed) => {
                    let baseline = sweep == Sweep::Baseline;
                    if baseline {
                        // Already listed at the first sweep: recorded and shown, summarised in one event.
                        if baseline_found.len() < 100 {
                            baseline_found.push(serde_json::json!({"target": key.0, "list": list, "meanings": d.meanings}));
                        }
                        baseline_count += 1;
                    } else {
                        let summary = format!(
                            "{} is listed on {} ({})",
                            key.0,
                            l.name,
                            d.meanings.join("; ")
                        );
                        events.push(Event::new(
                            EventKind::Listed,
                            started_at,
                            Subject::pair(&key.0, list),
                            summary,
                            serde_json::to_value(&*d).unwrap_or_default(),
                        ));
                    }
                    periods.push(PeriodChange::Open {
                        target: key.0.clone(),
                        list: list.clone(),
                        at: since,
                        details: d,
                        baseline,
                    });
                }
                Some(Transition::Delisted) => {
                    periods.push(PeriodChange::Close {
                        target: key.0.clone(),
                        list: list.clone(),
                        at: since,
                    });
                    events.push(Event::new(
                        EventKind::Delisted,
                        started_at,
                        Subject::pair(&key.0, list),
                        format!("{} is no longer listed on {}", key.0, l.name),
                        serde_json::json!({ "zone": l.zone, "list_name": l.name }),
                    ));
                }
                None => {}
            }
        }
        drop(outcomes);
        if !new_specs.is_empty() {
            let names: Vec<String> = new_specs.iter().map(|s| s.to_string()).collect();
            let mut e = Event::new(
                EventKind::Baseline,
                started_at,
                Subject::None,
                format!(
                    "first sweep of {} target(s): {baseline_count} listing(s) already present",
                    names.len()
                ),
                serde_json::json!({ "targets": names, "already_listed": baseline_count, "listings": baseline_found }),
            );
            e.baseline = true;
            events.push(e);
        }

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
        let updates: Vec<(String, String, PairMem)> = commit
            .pairs
            .iter()
            .map(|p| {
                (
                    p.target.clone(),
                    p.list.clone(),
                    PairMem {
                        state: p.state,
                        since: p.since,
                        digest: digest_of(&p.details),
                    },
                )
            })
            .collect();
        let health_now = commit.health.clone();
        let baselined = commit.baselined.clone();
        let n_events = commit.events.len();
        let committed = self
            .store
            .call(move |c| store::commit_sweep(c, &commit))
            .await?;

        for (t, l, m) in updates {
            if m.state == PairState::Clear {
                mem.pairs.remove(&(t, l));
            } else {
                mem.pairs.insert((t, l), m);
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
