//! The overview: one verdict a postmaster reads in five seconds, what to do
//! about it, then the targets × lists matrix, the listings with their
//! delisting state, mail telemetry with sparklines, probes and recent events.
//! `/api/v1/status` serves the same data.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;

use super::view::{self, cell_state, VerdictView};
use super::{Impact, ResolverHealth, WebError, WebState};
use crate::health::ListHealth;
use crate::status::StatusSnapshot;
use crate::store;
use crate::target::Target;
use crate::time::now;

/// One list: a column of the matrix, a row of the lists page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(super) struct ListView {
    #[serde(rename = "list")]
    pub(super) id: String,
    pub(super) name: String,
    pub(super) zone: String,
    pub(super) operator: String,
    pub(super) kind: String,
    pub(super) health: String,
    pub(super) why: String,
    /// Its answers count.
    pub(super) usable: bool,
    /// Targets it lists now.
    #[serde(rename = "listings")]
    pub(super) listing: usize,
    pub(super) expiry: String,
    /// How its query budget stretches its sweeps ("swept every 2 h to stay
    /// within 100,000 queries/day"), when it does.
    pub(super) budget: Option<String>,
}

/// A listing as the overview shows it (the stored pair's fields, and more).
#[derive(Debug, Clone, Serialize)]
pub(super) struct ListingView {
    #[serde(flatten)]
    pub(super) pair: store::StoredPair,
    pub(super) list_name: String,
    pub(super) impact: Impact,
    pub(super) delist: Option<String>,
    /// The latest delisting request of this listing, if any.
    pub(super) request: Option<store::DelistRequest>,
    pub(super) overdue: bool,
}

/// One cell of the matrix: its state (`listed`, `suspected`, `clearing`,
/// `clear`, `unchecked`, `na` when the list does not answer for such targets)
/// and, when not plain, a tooltip.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Cell {
    pub(super) s: &'static str,
    pub(super) t: Option<String>,
}

/// A group of lists run by one operator.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Group {
    pub(super) operator: String,
    pub(super) lists: Vec<ListView>,
}

/// A target row (lists as columns).
#[derive(Debug, Clone, Serialize)]
pub(super) struct TargetRow {
    pub(super) target: String,
    pub(super) label: Option<String>,
    pub(super) cells: Vec<Cell>,
}

/// A list row (targets as columns), `group` set on the first list of an operator.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ListRow {
    pub(super) group: Option<String>,
    pub(super) list: ListView,
    pub(super) cells: Vec<Cell>,
}

/// The targets × lists matrix. With few targets the lists are the rows (a
/// long catalog then scrolls down, never sideways); otherwise the targets are,
/// with the lists as narrow columns grouped by operator.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Matrix {
    /// `lists` (a row per list) or `targets` (a row per target).
    pub(super) by: &'static str,
    pub(super) groups: Vec<Group>,
    pub(super) targets: Vec<(String, Option<String>)>,
    pub(super) target_rows: Vec<TargetRow>,
    pub(super) list_rows: Vec<ListRow>,
    /// Targets with listings or pending changes (shown first).
    pub(super) problems: usize,
    /// What the rows left out are.
    pub(super) rest: String,
}

/// A mail metric now, with its last 24 hours.
#[derive(Debug, Clone, Serialize)]
pub(super) struct MailNow {
    pub(super) source: String,
    pub(super) metric: String,
    pub(super) at: i64,
    pub(super) value: f64,
    pub(super) unit: String,
    pub(super) spark: String,
}

/// The overview's data.
#[derive(Debug, Serialize)]
pub(super) struct Overview {
    pub(super) verdict: VerdictView,
    pub(super) resolver: Option<ResolverHealth>,
    pub(super) targets_total: u128,
    pub(super) lists: Vec<ListView>,
    pub(super) unhealthy: usize,
    pub(super) sick_lists: Vec<ListView>,
    pub(super) last_sweep: Option<store::SweepRow>,
    pub(super) matrix: Matrix,
    pub(super) listings: Vec<ListingView>,
    pub(super) mail: Vec<MailNow>,
    pub(super) probes: Vec<store::StoredProbe>,
    pub(super) events: Vec<crate::event::Event>,
    /// The daemon's last joined verdict (listings x receivers' refusals), if any.
    pub(super) impact: Option<crate::impact::Assessment>,
}

/// Targets shown in the matrix: all of them up to this many, else the problem ones first.
const MATRIX_ALL_UP_TO: u128 = 50;
const MATRIX_MAX_ROWS: usize = 100;
/// Up to this many targets shown, the lists are the rows.
const LISTS_AS_ROWS_UP_TO: usize = 8;

/// The lists in use with their health (lists page, matrix, API).
pub(super) fn list_views(
    st: &WebState,
    health: &HashMap<String, ListHealth>,
    pairs: &[store::StoredPair],
) -> Vec<ListView> {
    let rt = st.live.snapshot();
    let plans = rt.engine.plans_for(&rt.cfg);
    let mut listing: HashMap<&str, usize> = HashMap::new();
    for p in pairs.iter().filter(|p| p.state.is_listed()) {
        *listing.entry(p.list.as_str()).or_default() += 1;
    }
    rt.engine
        .lists()
        .iter()
        .zip(plans)
        .map(|(l, plan)| {
            let h = health.get(&l.def.id);
            ListView {
                budget: plan.describe(),
                id: l.def.id.clone(),
                name: l.def.name.clone(),
                zone: l.display_zone(),
                operator: view::operator(&l.def.zone),
                kind: serde_json::to_value(l.def.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                health: h.map_or("unchecked", |h| h.name()).to_string(),
                why: h.map(|h| h.why().to_string()).unwrap_or_default(),
                usable: h.is_some_and(ListHealth::is_healthy),
                listing: listing.get(l.def.id.as_str()).copied().unwrap_or(0),
                expiry: view::expiry_text(&l.def),
            }
        })
        .collect()
}

/// Lists grouped by operator, in order of first appearance.
fn grouped(lists: &[ListView]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for l in lists {
        match groups.iter_mut().find(|g| g.operator == l.operator) {
            Some(g) => g.lists.push(l.clone()),
            None => groups.push(Group {
                operator: l.operator.clone(),
                lists: vec![l.clone()],
            }),
        }
    }
    groups
}

/// What the overview reads, in one transaction: the status snapshot (the
/// same the CLI and /metrics judge), mail figures with their last 24 hours,
/// the latest events.
struct Reads {
    snap: StatusSnapshot,
    latest: Vec<(String, String, i64, f64)>,
    series: Vec<Vec<(i64, f64)>>,
    events: Vec<crate::event::Event>,
}

async fn read(st: &WebState, since: i64, until: i64) -> Result<Reads, WebError> {
    Ok(st
        .db
        .read(move |c| {
            let latest = store::latest_samples(c)?;
            let mut series = Vec::with_capacity(latest.len());
            for (source, metric, _, _) in &latest {
                series.push(store::series(c, source, metric, since, until, 48)?);
            }
            Ok(Reads {
                snap: StatusSnapshot::load(c, until)?,
                latest,
                series,
                events: store::events(c, None, 10, 0)?,
            })
        })
        .await?)
}

/// The matrix's rows: targets with listings or pending changes first (most
/// listings first, then in address order), then, when there are few, every
/// other target; at most [`MATRIX_MAX_ROWS`].
fn matrix_rows(
    cfg: &crate::config::Config,
    by_target: &BTreeMap<&str, HashMap<&str, crate::evaluator::PairState>>,
    targets_total: u128,
) -> Vec<String> {
    let mut rows: Vec<String> = by_target.keys().map(|t| t.to_string()).collect();
    rows.sort_by_cached_key(|t| {
        (
            std::cmp::Reverse(
                by_target[t.as_str()]
                    .values()
                    .filter(|s| s.is_listed())
                    .count(),
            ),
            super::render::target_order(t),
        )
    });
    if targets_total <= MATRIX_ALL_UP_TO {
        for spec in &cfg.targets {
            for t in spec.spec.targets() {
                let t = t.to_string();
                if !by_target.contains_key(t.as_str()) {
                    rows.push(t);
                }
            }
        }
    }
    rows.truncate(MATRIX_MAX_ROWS);
    rows
}

/// The targets × lists matrix.
fn matrix(
    st: &WebState,
    snap: &StatusSnapshot,
    lists: &[ListView],
    targets_total: u128,
    resolver_unusable: bool,
) -> Matrix {
    let rt = st.live.snapshot();
    let defs: HashMap<&str, &crate::engine::ActiveList> = rt
        .engine
        .lists()
        .iter()
        .map(|l| (l.def.id.as_str(), l))
        .collect();
    // pairs whose own last answer was unusable although their list is healthy
    let unchecked: HashMap<(&str, &str), &str> = snap
        .unchecked
        .iter()
        .map(|u| ((u.target.as_str(), u.list.as_str()), u.why.as_str()))
        .collect();
    let mut by_target: BTreeMap<&str, HashMap<&str, crate::evaluator::PairState>> = BTreeMap::new();
    for p in &snap.pairs {
        by_target
            .entry(p.target.as_str())
            .or_default()
            .insert(p.list.as_str(), p.state);
    }
    let rows = matrix_rows(&rt.cfg, &by_target, targets_total);
    let label_of = |t: &str| -> Option<String> {
        let target = Target::parse(t).ok()?;
        rt.cfg
            .targets
            .iter()
            .find(|c| c.spec.contains(&target))
            .and_then(|c| c.label.clone())
    };
    let groups = grouped(lists);
    let ordered: Vec<&ListView> = groups.iter().flat_map(|g| g.lists.iter()).collect();
    let cell = |t: &str, l: &ListView| -> Cell {
        let accepts = Target::parse(t)
            .ok()
            .zip(defs.get(l.id.as_str()))
            .is_some_and(|(tt, d)| d.def.kind.accepts(&tt));
        if !accepts {
            return Cell { s: "na", t: None };
        }
        let stored = by_target.get(t).and_then(|m| m.get(l.id.as_str())).copied();
        let own = unchecked.get(&(t, l.id.as_str())).copied();
        let health = snap.health.get(&l.id);
        let (s, why) = if resolver_unusable {
            // nothing was asked: no pair is clear, whatever its list's last health
            cell_state(stored, Some("the resolver is unusable"), health)
        } else {
            cell_state(stored, own, health)
        };
        // a tooltip only where the state is the pair's own (an unchecked
        // column says why in its header): 100 x 40 cells must stay small
        let tip = if own.is_some() && s == "unchecked" {
            why.map(|w| format!("{t} on {}: unchecked, {w}", l.id))
        } else {
            stored
                .filter(|p| *p != crate::evaluator::PairState::Clear)
                .map(|_| format!("{t} on {}: {s}", l.id))
        };
        Cell { s, t: tip }
    };
    let targets: Vec<(String, Option<String>)> =
        rows.iter().map(|t| (t.clone(), label_of(t))).collect();
    let by = if rows.len() <= LISTS_AS_ROWS_UP_TO && rows.len() < ordered.len() {
        "lists"
    } else {
        "targets"
    };
    let (target_rows, list_rows) = if by == "targets" {
        let tr = targets
            .iter()
            .map(|(t, label)| TargetRow {
                target: t.clone(),
                label: label.clone(),
                cells: ordered.iter().map(|l| cell(t, l)).collect(),
            })
            .collect();
        (tr, Vec::new())
    } else {
        let mut lr = Vec::new();
        for g in &groups {
            for (i, l) in g.lists.iter().enumerate() {
                lr.push(ListRow {
                    group: (i == 0).then(|| g.operator.clone()),
                    list: l.clone(),
                    cells: rows.iter().map(|t| cell(t, l)).collect(),
                });
            }
        }
        (Vec::new(), lr)
    };
    let usable = lists.iter().filter(|l| l.usable).count();
    let hidden = targets_total.saturating_sub(rows.len() as u128);
    let rest = match (hidden, usable) {
        (0, _) => String::new(),
        (n, 0) => format!("{n} more targets: unchecked, no list answers usably"),
        (n, u) => format!(
            "{n} more targets not listed on any of the {u} usable list{}",
            if u == 1 { "" } else { "s" }
        ),
    };
    Matrix {
        by,
        groups,
        targets,
        target_rows,
        list_rows,
        problems: by_target.len(),
        rest,
    }
}

/// Listings, with their impact and delisting state: what hurts first, then
/// what is overdue, then the newest.
fn listing_views(st: &WebState, snap: &StatusSnapshot, until: i64) -> Vec<ListingView> {
    let rt = st.live.snapshot();
    let mut requests: HashMap<(&str, &str), &store::DelistRequest> = snap
        .delistings
        .iter()
        .map(|r| ((r.target.as_str(), r.list.as_str()), r))
        .collect();
    let mut listings: Vec<ListingView> = snap
        .pairs
        .iter()
        .filter(|p| p.state.is_listed())
        .map(|p| {
            let def = rt.engine.lists().iter().find(|l| l.def.id == p.list);
            let request = requests
                .remove(&(p.target.as_str(), p.list.as_str()))
                .cloned();
            ListingView {
                list_name: def.map_or_else(|| p.list.clone(), |d| d.def.name.clone()),
                impact: st.live.impact(&p.target, &p.list, p.since),
                delist: def.and_then(|d| {
                    Target::parse(&p.target)
                        .ok()
                        .and_then(|t| d.def.delist_url(&t))
                }),
                overdue: request.as_ref().is_some_and(|r| r.overdue(until)),
                request,
                pair: p.clone(),
            }
        })
        .collect();
    listings.sort_by_key(|l| {
        (
            l.impact != Impact::Rejecting,
            !l.overdue,
            std::cmp::Reverse(l.pair.since),
            super::render::target_order(&l.pair.target),
        )
    });
    listings
}

/// Mail figures now, each with its unit and a sparkline of `[since, until]`.
fn mail_now(st: &WebState, r: Reads, since: i64, until: i64) -> Vec<MailNow> {
    let rt = st.live.snapshot();
    let kinds: HashMap<&str, &crate::config::SourceKind> = rt
        .cfg
        .sources
        .iter()
        .map(|s| (s.name.as_str(), &s.kind))
        .collect();
    r.latest
        .into_iter()
        .zip(r.series)
        .map(|((source, metric, at, value), points)| {
            let key = format!("{source}.{metric}");
            let threshold = rt
                .cfg
                .spikes
                .iter()
                .find(|r| r.metric == key)
                .and_then(|r| r.above);
            MailNow {
                unit: super::mail::unit_of(kinds.get(source.as_str()).copied(), &metric)
                    .to_string(),
                spark: super::svg::sparkline(&points, since, until, threshold),
                source,
                metric,
                at,
                value,
            }
        })
        .collect()
}

pub(super) async fn overview_data(st: &WebState) -> Result<Overview, WebError> {
    let rt = st.live.snapshot();
    let until = now();
    let since = until - 86_400;
    let mut r = read(st, since, until).await?;
    let snap = std::mem::take(&mut r.snap);
    let events = std::mem::take(&mut r.events);
    let lists = list_views(st, &snap.health, &snap.pairs);
    let sick_lists: Vec<ListView> = lists.iter().filter(|l| !l.usable).cloned().collect();
    let targets_total: u128 = rt.cfg.targets.iter().map(|t| t.spec.len()).sum();
    let resolver = st.live.resolver();
    let resolver_unusable = resolver
        .as_ref()
        .is_some_and(|r| r.status == crate::health::ResolverStatus::Unusable);
    // the verdict: the one rule, with the daemon's live resolver and impact
    let facts = crate::status::facts(&snap, &rt.cfg, rt.engine.lists(), resolver.as_ref(), |p| {
        st.live.impact(&p.target, &p.list, p.since)
    });
    Ok(Overview {
        verdict: view::verdict(&facts),
        resolver,
        targets_total,
        unhealthy: sick_lists.len(),
        sick_lists,
        matrix: matrix(st, &snap, &lists, targets_total, resolver_unusable),
        listings: listing_views(st, &snap, until),
        lists,
        mail: mail_now(st, r, since, until),
        last_sweep: snap.last_sweep,
        probes: snap.probes,
        events,
        impact: snap.assessment,
    })
}

pub(super) async fn overview(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    super::render::cached_page(&st, "overview", "overview.html", || async {
        let o = overview_data(&st).await?;
        // the feeds' line ("3.2 % of yesterday's mail left from listed IPs"), when feeds are configured
        let feeds_share = super::senders::overview_line(&st).await?;
        Ok(minijinja::context! { feeds_share, ..minijinja::Value::from_serialize(&o) })
    })
    .await
}
