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
    PairState, PairStep, StepRules, Sweep,
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

/// One counted answer through the per-pair rule ([`pair_step`]) for a pair
/// stored under `key` (the target, or a range target's sub-range or /64),
/// `target` standing for it (the delisting link's address).
pub(super) fn step_pair_as(
    key: &str,
    engine: &Engine,
    li: usize,
    target: &Target,
    verdict: &Verdict,
    (prev, obs): (PairMem, Observation),
    rules: StepRules,
) -> PairStep {
    let d = Arc::new(details(verdict, engine, li, target));
    let list = &engine.lists()[li].def.id;
    pair_step(prev, obs, rules, key, list, d)
}

/// What one sweep found so far: the counts, the pairs' updates, periods and
/// events, the baseline's summary and the pairs whose answer was unusable.
#[derive(Default)]
struct Found {
    counts: SweepCounts,
    pairs: Vec<crate::evaluator::PairUpdate>,
    periods: Vec<crate::evaluator::PeriodChange>,
    events: Vec<Event>,
    baseline_found: Vec<serde_json::Value>,
    baseline_count: u64,
    /// (target, list, why): why set when the pair became unchecked, none when it no longer is.
    unchecked: Vec<(String, String, Option<String>)>,
}

/// The fixed inputs of one sweep, for each outcome.
struct SweepCtx<'a> {
    rt: &'a Runtime,
    health: &'a [ListHealth],
    new_specs: &'a [&'a TargetSpec],
    confirm: crate::evaluator::Confirm,
    at: i64,
}

impl Found {
    /// One outcome: counted, its unchecked state noted, and (when it counts)
    /// taken through the per-pair rule.
    async fn take(&mut self, o: &crate::engine::Outcome, cx: &SweepCtx<'_>, mem: &Memory) {
        self.take_as(o.target.to_string(), o, cx, mem).await;
    }

    /// [`Found::take`] for a pair stored under `key` (a range target's
    /// sub-range or /64; `o.target` stands for it).
    async fn take_as(
        &mut self,
        key: String,
        o: &crate::engine::Outcome,
        cx: &SweepCtx<'_>,
        mem: &Memory,
    ) {
        let engine = &cx.rt.engine;
        let healthy = cx.health[o.list].is_healthy();
        self.counts.pairs += 1;
        match o.verdict.kind() {
            VerdictKind::Listed if healthy => self.counts.listed += 1,
            VerdictKind::Clear => self.counts.clear += 1,
            VerdictKind::ListError => self.counts.errors += 1,
            VerdictKind::Unknown => self.counts.unknown += 1,
            _ => {}
        }
        let list = &engine.lists()[o.list].def.id;
        let key = (key, list.clone());
        let prev = mem
            .pairs
            .get(&key)
            .copied()
            .unwrap_or(PairMem::clear(cx.at));
        // A healthy list's unusable answer (timeout, error code) leaves the pair
        // unchecked: recorded (only when that changes), never counted as clear.
        if healthy {
            let unusable = matches!(
                o.verdict.kind(),
                VerdictKind::Unknown | VerdictKind::ListError
            );
            if unusable && !mem.unchecked.contains(&key) {
                self.unchecked
                    .push((key.0.clone(), key.1.clone(), Some(o.verdict.meaning())));
            } else if !unusable && mem.unchecked.contains(&key) {
                self.unchecked.push((key.0.clone(), key.1.clone(), None));
            }
        }
        let obs = observe(
            cx.rt,
            o.list,
            &o.target,
            &o.verdict,
            &cx.health[o.list],
            prev.state,
        )
        .await;
        if obs == Observation::Ignored {
            return;
        }
        let sweep = if cx.new_specs.iter().any(|s| s.contains(&o.target)) {
            Sweep::Baseline
        } else {
            Sweep::Regular
        };
        let rules = StepRules {
            confirm: cx.confirm,
            sweep,
            at: cx.at,
        };
        let st = step_pair_as(
            &key.0,
            engine,
            o.list,
            &o.target,
            &o.verdict,
            (prev, obs),
            rules,
        );
        if st.baseline_listing {
            if self.baseline_found.len() < 100 {
                let meanings = st.pair.as_ref().map(|p| p.details.meanings.clone());
                self.baseline_found.push(serde_json::json!({"target": key.0, "list": list, "meanings": meanings.unwrap_or_default()}));
            }
            self.baseline_count += 1;
        }
        self.pairs.extend(st.pair);
        self.periods.extend(st.period);
        self.events.extend(st.event);
    }
}

/// Which lists are due this sweep: a list on a stretched interval (its query
/// budget) is swept only when its turn comes.
fn due_lists(rt: &Runtime, mem: &Memory, at: i64) -> Vec<bool> {
    let base = rt.cfg.daemon.sweep.nominal_interval().as_secs() as i64;
    let due: Vec<bool> = rt
        .engine
        .lists()
        .iter()
        .zip(&rt.plans)
        .map(|(l, p)| {
            p.every <= 1
                || mem
                    .last_swept
                    .get(&l.def.id)
                    .is_none_or(|t| at - t >= p.interval.as_secs() as i64 - base / 2)
        })
        .collect();
    for ((l, p), d) in rt.engine.lists().iter().zip(&rt.plans).zip(&due) {
        if !d {
            tracing::debug!(list = %l.def.id, every = p.every, "not due this sweep (budget)");
        }
    }
    due
}

/// The due lists split into DNS and mirrored ones, and the targets that
/// are not ranges (the mirrored lists' share of the enumerated sweep).
fn split_mirrored(
    engine: &Engine,
    due: &[bool],
    specs: &[TargetSpec],
) -> (Vec<bool>, Vec<bool>, Vec<TargetSpec>) {
    let mirrored = |li: usize| engine.lists()[li].mirror().is_some();
    let dns = due
        .iter()
        .enumerate()
        .map(|(li, d)| *d && !mirrored(li))
        .collect();
    let mir = due
        .iter()
        .enumerate()
        .map(|(li, d)| *d && mirrored(li))
        .collect();
    let singles = specs
        .iter()
        .filter(|s| !matches!(s, TargetSpec::Net(_)))
        .cloned()
        .collect();
    (dns, mir, singles)
}

/// What a sweep commits besides its pairs: the health change, the unknown
/// codes to announce, the lists swept now and the targets baselined now.
struct SweepRest {
    change: HealthChange,
    unknown: super::unknown_codes::UnknownCodes,
    swept_now: Vec<String>,
    baselined: Vec<String>,
    /// The range targets' checks (sub-ranges, /64s asked), for the pages.
    ranges: std::collections::BTreeMap<String, crate::prefixes::RangeReport>,
}

impl Daemon {
    /// Runs one sweep and commits it: the health check (and the resolver
    /// gate), every due (target, list) outcome through the per-pair rule,
    /// then one transaction; memory changes only after it.
    pub async fn sweep(self: Arc<Self>) -> anyhow::Result<()> {
        let rt = self.runtime();
        let engine = &rt.engine;
        let mut mem = self.memory.lock().await;
        let started = Instant::now();
        let started_at = now();
        let sweep_id = self
            .store
            .call(move |c| store::begin_sweep(c, started_at))
            .await?;

        let report = engine.check().await;
        if let Some(why) = report.local_failure {
            // nothing was really asked: no list, resolver or pair may move on
            // it (issue 21); the sweep's row says it was abandoned, not running
            self.store
                .call(move |c| store::abandon_stale_sweeps(c).map(|_| ()))
                .await?;
            anyhow::bail!("sweep not recorded: {why}");
        }
        let change = HealthChange::of(engine, &report, &mem, started_at);
        let mut unknown = super::unknown_codes::UnknownCodes::default();
        unknown.note_report(engine, &report);
        // An unusable resolver checks nothing: no target is asked (every pair stays
        // unchecked, no state moves) until it answers as a resolver must.
        let health = report.gated();
        let specs: Vec<TargetSpec> = rt.cfg.targets.iter().map(|t| t.spec.clone()).collect();
        let new_specs: Vec<&TargetSpec> = specs
            .iter()
            .filter(|s| !mem.baselined.contains(&s.to_string()))
            .collect();
        let mut found = Found::default();
        found.counts.targets = specs.iter().map(|s| s.len() as i64).sum();
        found.counts.lists_unhealthy =
            report.lists.iter().filter(|h| !h.is_healthy()).count() as i64;
        let due = due_lists(&rt, &mem, started_at);
        let cx = SweepCtx {
            rt: &rt,
            health: &health,
            new_specs: &new_specs,
            confirm: self.confirm(),
            at: started_at,
        };
        // DNS lists over every target; mirrored lists over the single ones
        // only: they check ranges whole, by intersection (below)
        let (due_dns, due_mirrored, singles) = split_mirrored(engine, &due, &specs);
        for (targets, due) in [(&specs, &due_dns), (&singles, &due_mirrored)] {
            let mut outcomes = engine.sweep_lists(targets, &health, Some(due));
            while let Some(o) = outcomes.next().await {
                unknown.note(engine, o.list, &o.verdict);
                found.take(&o, &cx, &mem).await;
            }
        }
        // range targets as wholes: intersections, and IPv6 prefixes' chosen /64s
        let ranges = super::ranges::sweep(&rt, &self.store, &mem, &health, &due, started_at).await;
        for r in &ranges.outcomes {
            unknown.note(engine, r.outcome.list, &r.outcome.verdict);
            found.take_as(r.key.clone(), &r.outcome, &cx, &mem).await;
        }
        if !new_specs.is_empty() {
            let names: Vec<String> = new_specs.iter().map(|s| s.to_string()).collect();
            let listings = std::mem::take(&mut found.baseline_found);
            found.events.push(Event::baseline(
                names,
                found.baseline_count,
                listings,
                started_at,
            ));
        }
        let rest = SweepRest {
            change,
            unknown,
            swept_now: engine
                .lists()
                .iter()
                .zip(&due)
                .filter(|(_, d)| **d)
                .map(|(l, _)| l.def.id.clone())
                .collect(),
            baselined: new_specs.iter().map(|s| s.to_string()).collect(),
            ranges: ranges.reports,
        };
        self.commit_sweep(&rt, &mut mem, (sweep_id, started, started_at), found, rest)
            .await
    }

    /// Writes what a sweep found in one transaction, then applies it to
    /// memory and publishes the events.
    async fn commit_sweep(
        &self,
        rt: &Runtime,
        mem: &mut Memory,
        (sweep_id, started, started_at): (i64, Instant, i64),
        found: Found,
        rest: SweepRest,
    ) -> anyhow::Result<()> {
        let counts = found.counts;
        let commit = SweepCommit {
            sweep_id,
            finished_at: now(),
            duration_ms: started.elapsed().as_millis() as i64,
            counts,
            pairs: found.pairs,
            periods: found.periods,
            health: vec![],
            events: found.events,
            baselined: rest.baselined,
        };
        let updates = commit.pairs.clone();
        let baselined = commit.baselined.clone();
        let n_events = commit.events.len();
        let unchecked = found.unchecked;
        let unchecked_rows = unchecked.clone();
        let mut last_swept = mem.last_swept.clone();
        for l in &rest.swept_now {
            last_swept.insert(l.clone(), started_at);
        }
        let budget_counts = super::counts_of(&rt.engine);
        let swept_state = last_swept.clone();
        let (change, unknown, ranges) = (rest.change, rest.unknown, rest.ranges);
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
                if !ranges.is_empty() {
                    store::put_state(&tx, &StateKey::Ranges, &ranges, started_at)?;
                }
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
        change.apply(mem);
        self.publish_resolver(mem.resolver.clone());
        mem.last_swept = last_swept;
        mem.baselined.extend(baselined);
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
