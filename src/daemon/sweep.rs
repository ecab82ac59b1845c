//! One sweep: health check, then every (target, list) outcome through the
//! evaluator, then one commit. Memory changes only after the commit, so a
//! sweep that fails or is abandoned leaves no trace but its `abandoned` row.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use super::{Daemon, Memory, PairMem};
use crate::engine::{Engine, HealthReport};
use crate::evaluator::{
    health_transition, step, ListingDetails, Observation, PairState, Sweep, Transition,
};
use crate::event::{Event, EventKind, Subject};
use crate::health::{ListHealth, ResolverHealth, ResolverStatus};
use crate::store::{self, PairUpdate, PeriodChange, SweepCommit, SweepCounts};
use crate::target::TargetSpec;
use crate::time::now;
use crate::verdict::{Verdict, VerdictKind};

/// What one health check changes: list health rows, the resolver's health,
/// and the events due. Written in the same transaction as what it belongs to
/// (a health job's own, or a sweep's), applied to memory after the commit.
#[derive(Debug, Clone)]
pub(super) struct HealthChange {
    rows: Vec<(String, ListHealth)>,
    resolver: ResolverHealth,
    events: Vec<Event>,
}

impl HealthChange {
    /// Compares a health check with what memory knew.
    ///
    /// While the resolver is unusable, lists going bad are not announced one
    /// by one (the cause is the resolver, announced once); their rows are kept.
    pub(super) fn of(engine: &Engine, report: &HealthReport, mem: &Memory, at: i64) -> Self {
        let mut rows = Vec::new();
        let mut events = Vec::new();
        let unusable = report.resolver.status == ResolverStatus::Unusable;
        for (l, h) in engine.lists().iter().zip(&report.lists) {
            let id = &l.def.id;
            if let Some(kind) = health_transition(mem.health.get(id), h) {
                if !(unusable && kind == EventKind::ListUnhealthy) {
                    let summary = match kind {
                        EventKind::ListUnhealthy => {
                            format!("list {id} is {}: {}", h.name(), h.why())
                        }
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
            }
            rows.push((id.clone(), h.clone()));
        }
        let was_unusable = mem
            .resolver
            .as_ref()
            .is_some_and(|r| r.status == ResolverStatus::Unusable);
        let servers = engine
            .client()
            .servers()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let r = &report.resolver;
        let kind = match (was_unusable, unusable) {
            (false, true) => Some(EventKind::ResolverUnusable),
            (true, false) => Some(EventKind::ResolverRecovered),
            _ => None,
        };
        if let Some(kind) = kind {
            let summary = match kind {
                EventKind::ResolverUnusable => format!(
                    "the resolver {servers} is unusable: {}; nothing is checked until it is fixed ({})",
                    r.why, r.fix
                ),
                _ => format!("the resolver {servers} is usable again: {}", r.why),
            };
            events.push(Event::new(
                kind,
                at,
                Subject::Resolver {
                    servers: servers.clone(),
                },
                summary,
                serde_json::to_value(r).unwrap_or_default(),
            ));
        }
        HealthChange {
            rows,
            resolver: r.clone(),
            events,
        }
    }

    /// Whether the resolver can be believed.
    pub(super) fn resolver_usable(&self) -> bool {
        self.resolver.status != ResolverStatus::Unusable
    }

    /// Writes the rows, the resolver's state and the events; returns the stored events.
    pub(super) fn write(
        &self,
        c: &rusqlite::Connection,
        at: i64,
    ) -> Result<Vec<Event>, store::StoreError> {
        for (l, h) in &self.rows {
            store::write_health(c, l, h, at)?;
        }
        store::put_state(c, super::RESOLVER_STATE, &self.resolver, at)?;
        let mut out = Vec::new();
        for e in &self.events {
            out.push(store::insert_event(c, e)?);
        }
        Ok(out)
    }

    /// Memory after the commit.
    pub(super) fn apply(&self, mem: &mut Memory) {
        for (l, h) in &self.rows {
            mem.health.insert(l.clone(), h.clone());
        }
        mem.resolver = Some(self.resolver.clone());
    }
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

        let report = engine.check().await;
        if let Some(why) = report.local_failure {
            // nothing was really asked: no list, resolver or pair may move on it (issue 21)
            anyhow::bail!("sweep not recorded: {why}");
        }
        let change = HealthChange::of(engine, &report, &mem, started_at);
        // An unusable resolver checks nothing: no target is asked (every pair stays
        // unchecked, no state moves) until it answers as a resolver must.
        let health: Vec<ListHealth> = if change.resolver_usable() {
            report.lists.clone()
        } else {
            report
                .lists
                .iter()
                .map(|_| ListHealth::Unreachable {
                    why: format!(
                        "not queried: the resolver is unusable ({})",
                        report.resolver.why
                    ),
                })
                .collect()
        };
        let mut events = Vec::new();

        let specs: Vec<TargetSpec> = cfg.targets.iter().map(|t| t.spec.clone()).collect();
        let new_specs: Vec<&TargetSpec> = specs
            .iter()
            .filter(|s| !mem.baselined.contains(&s.to_string()))
            .collect();
        let mut counts = SweepCounts {
            targets: specs.iter().map(|s| s.len() as i64).sum(),
            ..Default::default()
        };
        counts.lists_unhealthy = report.lists.iter().filter(|h| !h.is_healthy()).count() as i64;
        let mut pairs = Vec::new();
        let mut periods = Vec::new();
        let mut baseline_found = Vec::new();
        let mut baseline_count = 0u64;
        let mut unchecked: Vec<(String, String, Option<String>)> = Vec::new();
        // Lists on a stretched interval (budget) are swept only when their turn comes.
        let base = cfg.daemon.sweep.nominal_interval().as_secs() as i64;
        let due: Vec<bool> = engine
            .lists()
            .iter()
            .zip(&rt.plans)
            .map(|(l, p)| {
                p.every <= 1
                    || mem
                        .last_swept
                        .get(&l.def.id)
                        .is_none_or(|t| started_at - t >= p.interval.as_secs() as i64 - base / 2)
            })
            .collect();
        for ((l, p), d) in engine.lists().iter().zip(&rt.plans).zip(&due) {
            if !d {
                tracing::debug!(list = %l.def.id, every = p.every, "not due this sweep (budget)");
            }
        }
        let swept_now: Vec<String> = engine
            .lists()
            .iter()
            .zip(&due)
            .filter(|(_, d)| **d)
            .map(|(l, _)| l.def.id.clone())
            .collect();
        let mut outcomes = engine.sweep_lists(&specs, &health, Some(&due));
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
            // A healthy list's unusable answer (timeout, error code) leaves the pair
            // unchecked: recorded (only when that changes), never counted as clear.
            if health[o.list].is_healthy() {
                let unusable = matches!(
                    o.verdict.kind(),
                    VerdictKind::Unknown | VerdictKind::ListError
                );
                if unusable && !mem.unchecked.contains(&key) {
                    unchecked.push((key.0.clone(), key.1.clone(), Some(o.verdict.meaning())));
                } else if !unusable && mem.unchecked.contains(&key) {
                    unchecked.push((key.0.clone(), key.1.clone(), None));
                }
            }
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
            let since = since_of(prev, next, started_at);
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
            health: vec![],
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
        let baselined = commit.baselined.clone();
        let n_events = commit.events.len();
        let unchecked_rows = unchecked.clone();
        let mut last_swept = mem.last_swept.clone();
        for l in &swept_now {
            last_swept.insert(l.clone(), started_at);
        }
        let budget_counts = super::counts_of(engine);
        let swept_state = last_swept.clone();
        let (change, committed) = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let mut out = change.write(&tx, started_at)?;
                out.extend(store::write_sweep(&tx, &commit)?);
                for (t, l, why) in &unchecked_rows {
                    store::set_unchecked(&tx, t, l, why.as_deref(), started_at)?;
                }
                store::put_state(&tx, super::SWEPT_STATE, &swept_state, started_at)?;
                store::put_state(&tx, super::BUDGET_STATE, &budget_counts, started_at)?;
                tx.commit()?;
                Ok((change, out))
            })
            .await?;
        for (t, l, why) in unchecked {
            match why {
                Some(_) => mem.unchecked.insert((t, l)),
                None => mem.unchecked.remove(&(t, l)),
            };
        }

        for (t, l, m) in updates {
            if m.state == PairState::Clear {
                mem.pairs.remove(&(t, l));
            } else {
                mem.pairs.insert((t, l), m);
            }
        }
        change.apply(&mut mem);
        self.publish_resolver(mem.resolver.clone());
        mem.last_swept = last_swept;
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

/// When a pair's state `next` began, given its previous state: a listing
/// starts at its first listed answer (the suspected state's start) and ends
/// at its first clear answer (the clearing state's start); any other change
/// starts `at`. Shared by sweeps and re-checks.
pub(super) fn since_of(prev: PairMem, next: PairState, at: i64) -> i64 {
    match (prev.state, next) {
        (a, b) if a == b => prev.since,
        (PairState::Suspected { .. }, PairState::Listed | PairState::Suspected { .. }) => {
            prev.since
        }
        (PairState::Clearing { .. }, PairState::Clear | PairState::Clearing { .. }) => prev.since,
        _ => at,
    }
}
