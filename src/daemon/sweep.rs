//! One sweep: health check, then every (target, list) outcome through the
//! evaluator, then one commit. Memory changes only after the commit, so a
//! sweep that fails or is abandoned leaves no trace but its `abandoned` row.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use super::{Daemon, Memory, Runtime};
use crate::engine::{Engine, HealthReport};
use crate::evaluator::{
    health_transition, pair_step, resolver_transition, ListingDetails, Observation, PairMem,
    PairState, PairStep, Sweep,
};
use crate::event::{Event, EventKind};
use crate::health::{ListHealth, ResolverHealth};
use crate::store::{self, StateKey, SweepCommit, SweepCounts};
use crate::target::{Target, TargetSpec};
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
    /// The lists whose fall has been announced once these events are committed.
    announced: std::collections::HashSet<String>,
}

impl HealthChange {
    /// Compares a health check with what memory knew.
    ///
    /// While the resolver is unusable, lists going bad are not announced one
    /// by one (the cause is the resolver, announced once); their rows are kept.
    pub(super) fn of(engine: &Engine, report: &HealthReport, mem: &Memory, at: i64) -> Self {
        let mut rows = Vec::new();
        let mut events = Vec::new();
        let unusable = report.resolver.unusable_reason().is_some();
        for (l, h) in engine.lists().iter().zip(&report.lists) {
            let id = &l.def.id;
            let announced = mem.announced_unhealthy.contains(id);
            if let Some(kind) = health_transition(mem.health.get(id), h, announced) {
                if !(unusable && kind == EventKind::ListUnhealthy) {
                    events.push(Event::list_health(
                        kind,
                        id,
                        &l.display_zone(),
                        &l.def.name,
                        h,
                        at,
                    ));
                }
            }
            rows.push((id.clone(), h.clone()));
        }
        let servers = engine
            .client()
            .servers()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let r = &report.resolver;
        if let Some(kind) = resolver_transition(mem.resolver.as_ref(), r) {
            events.push(Event::resolver(kind, &servers, r, at));
        }
        let mut announced = mem.announced_unhealthy.clone();
        for e in &events {
            if let crate::event::Subject::List { id } = &e.subject {
                match e.kind {
                    EventKind::ListUnhealthy => announced.insert(id.clone()),
                    EventKind::ListRecovered => announced.remove(id),
                    _ => false,
                };
            }
        }
        HealthChange {
            rows,
            resolver: r.clone(),
            events,
            announced,
        }
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
        store::put_state(c, &StateKey::ResolverHealth, &self.resolver, at)?;
        store::put_state(c, &StateKey::HealthAnnounced, &self.announced, at)?;
        let mut out = Vec::new();
        for e in &self.events {
            out.push(store::insert_event(c, e)?);
        }
        Ok(out)
    }

    /// Memory after the commit.
    pub(super) fn apply(&self, mem: &mut Memory) {
        mem.announced_unhealthy = self.announced.clone();
        for (l, h) in &self.rows {
            mem.health.insert(l.clone(), h.clone());
        }
        mem.resolver = Some(self.resolver.clone());
    }
}

/// The answer and the list as shown, for the pair's row, period and events.
pub(super) fn details(v: &Verdict, engine: &Engine, li: usize, target: &Target) -> ListingDetails {
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

/// What an answer counts as for the state machine: the list's health decides
/// whether it counts at all, and a listing not yet confirmed is confirmed at
/// once when the `confirm_with` resolver agrees. Shared by sweeps and re-checks.
pub(super) async fn observe(
    rt: &Runtime,
    li: usize,
    target: &Target,
    verdict: &Verdict,
    health: &ListHealth,
    prev: PairState,
) -> Observation {
    let obs = Observation::from_verdict(verdict, health);
    if let (Observation::Listed { .. }, PairState::Clear | PairState::Suspected { .. }, Some(c)) =
        (obs, prev, &rt.confirm)
    {
        if c.query(li, target).await.kind() == VerdictKind::Listed {
            return Observation::Listed { corroborated: true };
        }
    }
    obs
}

/// One counted answer through the per-pair rule ([`pair_step`]).
pub(super) fn step_pair(
    engine: &Engine,
    li: usize,
    target: &Target,
    verdict: &Verdict,
    prev: PairMem,
    obs: Observation,
    confirm: crate::evaluator::Confirm,
    sweep: Sweep,
    at: i64,
) -> PairStep {
    let d = Arc::new(details(verdict, engine, li, target));
    let list = &engine.lists()[li].def.id;
    pair_step(prev, obs, confirm, sweep, at, &target.to_string(), list, d)
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
        let mut unknown = super::unknown_codes::UnknownCodes::default();
        unknown.note_report(engine, &report);
        // An unusable resolver checks nothing: no target is asked (every pair stays
        // unchecked, no state moves) until it answers as a resolver must.
        let health = report.gated();
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
            unknown.note(engine, o.list, &o.verdict);
            match o.verdict.kind() {
                VerdictKind::Listed if health[o.list].is_healthy() => counts.listed += 1,
                VerdictKind::Clear => counts.clear += 1,
                VerdictKind::ListError => counts.errors += 1,
                VerdictKind::Unknown => counts.unknown += 1,
                _ => {}
            }
            let list = &engine.lists()[o.list].def.id;
            let key = (o.target.to_string(), list.clone());
            let prev = mem
                .pairs
                .get(&key)
                .copied()
                .unwrap_or(PairMem::clear(started_at));
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
            let obs = observe(
                &rt,
                o.list,
                &o.target,
                &o.verdict,
                &health[o.list],
                prev.state,
            )
            .await;
            if obs == Observation::Ignored {
                continue;
            }
            let sweep = if new_specs.iter().any(|s| s.contains(&o.target)) {
                Sweep::Baseline
            } else {
                Sweep::Regular
            };
            let st = step_pair(
                engine, o.list, &o.target, &o.verdict, prev, obs, confirm, sweep, started_at,
            );
            if st.baseline_listing {
                if baseline_found.len() < 100 {
                    let meanings = st.pair.as_ref().map(|p| p.details.meanings.clone());
                    baseline_found.push(serde_json::json!({"target": key.0, "list": list, "meanings": meanings.unwrap_or_default()}));
                }
                baseline_count += 1;
            }
            pairs.extend(st.pair);
            periods.extend(st.period);
            events.extend(st.event);
        }
        drop(outcomes);
        if !new_specs.is_empty() {
            let names: Vec<String> = new_specs.iter().map(|s| s.to_string()).collect();
            events.push(Event::baseline(
                names,
                baseline_count,
                baseline_found,
                started_at,
            ));
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
        let updates = commit.pairs.clone();
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
                out.extend(unknown.announce(&tx, started_at)?);
                for (t, l, why) in &unchecked_rows {
                    store::set_unchecked(&tx, t, l, why.as_deref(), started_at)?;
                }
                store::put_state(&tx, &StateKey::BudgetSwept, &swept_state, started_at)?;
                store::put_state(&tx, &StateKey::BudgetCounts, &budget_counts, started_at)?;
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

        for p in &updates {
            mem.apply_pair(p);
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
