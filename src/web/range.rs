//! A range target's page (`/target/198.51.96.0/20`): checked as a whole
//! ([`crate::prefixes`]), so it shows the listed sub-ranges per list (their
//! states count like any pair's), and for DNS lists the /64s asked at the
//! last sweep and why (a known sender, listed before, the sample). A
//! sub-range's own address (`/target/198.51.100.0/24`) shows its range.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use ipnet::IpNet;
use serde::Serialize;

use super::{WebError, WebState};
use crate::prefixes::{self, Asked, How, RangeReport};
use crate::store::{self, StateKey};
use crate::target::TargetSpec;

/// A listed (or pending) part of the range on one list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Part {
    /// The sub-range (or /64): the pair's target.
    range: String,
    /// `listed`, `suspected` or `clearing`.
    state: &'static str,
    /// Listed (or clearing): it counts.
    listed: bool,
    /// When it entered its state (Unix seconds).
    since: i64,
    codes: Vec<String>,
    meanings: Vec<String>,
    /// Remote text: escaped when shown.
    txt: Vec<String>,
    delist: Option<String>,
    /// The part's open delisting request (its pair's own).
    request: Option<store::DelistRequest>,
    /// Still listed past the list's usual time to delist.
    overdue: bool,
}

/// One list's view of the range.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RangeList {
    /// The list's id.
    list: String,
    name: String,
    /// How it checked the range at the last sweep (none: not yet).
    how: Option<How>,
    /// Why it could not check it.
    why: Option<String>,
    /// The parts listed (or pending) now.
    parts: Vec<Part>,
    /// The /64s asked at the last sweep (DNS lists, IPv6 prefixes).
    asked: Vec<Asked>,
}

/// A range target: its listed parts per list and what was asked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RangeView {
    /// The range as configured.
    range: String,
    label: Option<String>,
    summary: String,
    /// Lists that list some part of it now.
    listings: usize,
    /// Listed: some part of it is listed on some list.
    listed: bool,
    /// When it was last checked (Unix seconds).
    checked_at: Option<i64>,
    lists: Vec<RangeList>,
    #[schema(value_type = Vec<Object>)]
    events: Vec<crate::event::Event>,
}

/// The configured range `raw` is (or lies in): `a/len`, `first-last`.
fn configured(st: &WebState, raw: &str) -> Option<(IpNet, Option<String>)> {
    let (first, last) = prefixes::key_range(raw).filter(|_| raw.contains(['/', '-']))?;
    let rt = st.live.snapshot();
    rt.cfg.targets.iter().find_map(|t| match &t.spec {
        TargetSpec::Net(n) if n.contains(&first) && n.contains(&last) => {
            Some((*n, t.label.clone()))
        }
        _ => None,
    })
}

/// Whether `raw` names a range target or a part of one (the target page hands it here).
pub(super) fn is_range(st: &WebState, raw: &str) -> bool {
    configured(st, raw).is_some()
}

/// The range's data; 404 when it is not (in) a configured range.
pub(super) async fn range_data(st: &WebState, raw: &str) -> Result<RangeView, WebError> {
    let Some((net, label)) = configured(st, raw) else {
        return Err(WebError::NotFound(format!(
            "{raw:?} is not a monitored range"
        )));
    };
    let key = net.to_string();
    // single targets inside the range have pairs (and pages) of their own
    let singles: std::collections::BTreeSet<String> = st
        .live
        .snapshot()
        .cfg
        .targets
        .iter()
        .filter(|t| !matches!(t.spec, TargetSpec::Net(_)))
        .map(|t| t.spec.to_string())
        .collect();
    let (pairs, reports, events, requests) = st
        .db
        .read(move |c| {
            let pairs: Vec<store::StoredPair> = store::load_pairs(c)?
                .into_iter()
                .filter(|p| prefixes::key_in(&p.target, &net) && !singles.contains(&p.target))
                .collect();
            let reports: std::collections::BTreeMap<String, RangeReport> =
                store::get_state(c, &StateKey::Ranges)?.unwrap_or_default();
            let mut requests = Vec::new();
            for p in pairs.iter().filter(|p| p.state.is_listed()) {
                requests.extend(store::delist_requests(c, Some(&p.target), 100, 0)?);
            }
            let mut events = store::events(c, Some(&key), 20, 0)?;
            for p in pairs.iter().take(20) {
                events.extend(store::events(c, Some(&p.target), 10, 0)?);
            }
            events.sort_by_key(|e| std::cmp::Reverse(e.id));
            events.dedup_by_key(|e| e.id);
            events.truncate(50);
            Ok((pairs, reports, events, requests))
        })
        .await?;
    let report = reports.get(&net.to_string());
    let rt = st.live.snapshot();
    let rep = crate::target::Target::Ip(net.network());
    let at = crate::time::now();
    let mut lists = Vec::new();
    for l in rt
        .engine
        .lists()
        .iter()
        .filter(|l| l.def.kind.accepts(&rep))
    {
        let r = report.and_then(|r| r.lists.iter().find(|x| x.list == l.def.id));
        let mut parts: Vec<Part> = pairs
            .iter()
            .filter(|p| p.list == l.def.id)
            .map(|p| {
                // the latest request of this listing (one made during an earlier listing does not count)
                let request = requests
                    .iter()
                    .find(|q| q.list == l.def.id && q.target == p.target)
                    .filter(|q| p.state.is_listed() && q.delisted_at.is_none())
                    .cloned();
                Part {
                    overdue: request.as_ref().is_some_and(|q| q.overdue(at)),
                    request,
                    range: p.target.clone(),
                    state: p.state.name(),
                    listed: p.state.is_listed(),
                    since: p.since,
                    codes: p.details.codes.iter().map(|c| c.to_string()).collect(),
                    meanings: p.details.meanings.clone(),
                    txt: p.details.txt.clone(),
                    delist: prefixes::key_range(&p.target)
                        .and_then(|(a, _)| l.def.delist_url(&crate::target::Target::Ip(a))),
                }
            })
            .collect();
        parts.sort_by_key(|p| prefixes::key_range(&p.range).map(|(a, _)| a));
        lists.push(RangeList {
            list: l.def.id.clone(),
            name: l.def.name.clone(),
            how: r.map(|r| r.how),
            why: r.and_then(|r| r.why.clone()),
            parts,
            asked: r.map(|r| r.asked.clone()).unwrap_or_default(),
        });
    }
    lists.sort_by_key(|l| !l.parts.iter().any(|p| p.listed));
    let listings = lists
        .iter()
        .filter(|l| l.parts.iter().any(|p| p.listed))
        .count();
    let parts: usize = lists
        .iter()
        .map(|l| l.parts.iter().filter(|p| p.listed).count())
        .sum();
    let summary = if listings > 0 {
        format!(
            "Listed: {parts} part{} on {listings} list{}",
            if parts == 1 { "" } else { "s" },
            if listings == 1 { "" } else { "s" }
        )
    } else if report.is_none() {
        "Not checked yet".to_string()
    } else {
        "No part of it is listed".to_string()
    };
    Ok(RangeView {
        range: net.to_string(),
        label,
        summary,
        listings,
        listed: listings > 0,
        checked_at: report.map(|r| r.at),
        lists,
        events,
    })
}

/// The page, for `/target/{addr}/{len}` and a range handed over by the target page.
pub(super) async fn page_of(st: &Arc<WebState>, raw: &str) -> Result<Response, WebError> {
    super::render::cached_page(st, &format!("range:{raw}"), "range.html", || async {
        Ok(minijinja::Value::from_serialize(
            &range_data(st, raw).await?,
        ))
    })
    .await
}

/// `/target/{addr}/{len}`.
pub(super) async fn page(
    State(st): State<Arc<WebState>>,
    Path((addr, len)): Path<(String, String)>,
) -> Result<Response, WebError> {
    page_of(&st, &format!("{addr}/{len}")).await
}

/// One range target: its listed parts per list, and what was asked.
#[utoipa::path(get, path = "/api/v1/targets/{addr}/{len}", tag = "targets", operation_id = "range",
    params(("addr" = String, Path, description = "The range's first address"),
        ("len" = String, Path, description = "Its prefix length")),
    responses((status = 200, description = "The range", body = RangeView),
        (status = "4XX", description = "Not a monitored range", body = super::problem::Problem, content_type = "application/problem+json")))]
pub(super) async fn api(
    State(st): State<Arc<WebState>>,
    Path((addr, len)): Path<(String, String)>,
) -> Result<Json<RangeView>, WebError> {
    Ok(Json(range_data(&st, &format!("{addr}/{len}")).await?))
}
