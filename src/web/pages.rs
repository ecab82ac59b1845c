//! HTML pages. The data behind each page is built by a `*_data` function that
//! the JSON API serves too, so the page and the API never disagree.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::{WebError, WebState};
use crate::store;
use crate::target::Target;
use crate::time::now;

/// `?page=N` (1-based).
#[derive(Debug, Deserialize, Default)]
pub(super) struct Page {
    page: Option<u32>,
    pub(super) range: Option<String>,
}

impl Page {
    pub(super) fn number(&self) -> u32 {
        self.page.unwrap_or(1).max(1)
    }
}

/// One page of rows from `query(limit, offset)`: asks for one row more than
/// the page holds to know whether a next page exists.
pub(super) async fn paginate<T, F>(
    st: &WebState,
    page: u32,
    query: F,
) -> Result<(Vec<T>, bool), WebError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection, u32, u32) -> crate::store::Result<Vec<T>> + Send + 'static,
{
    let size = st.conf.page_size;
    let mut rows = st
        .db
        .read(move |c| query(c, size + 1, (page - 1) * size))
        .await?;
    let has_next = rows.len() > size as usize;
    rows.truncate(size as usize);
    Ok((rows, has_next))
}

pub(super) fn render(
    st: &WebState,
    name: &str,
    ctx: minijinja::Value,
) -> Result<Response, WebError> {
    Ok(Html(render_string(st, name, ctx)?).into_response())
}

pub(super) fn render_string(
    st: &WebState,
    name: &str,
    ctx: minijinja::Value,
) -> Result<String, WebError> {
    let base = minijinja::context! {
        host => st.live.snapshot().cfg.actions.host.clone(),
        now => now(),
        refresh => st.conf.refresh.map(|d| d.as_secs()),
        csrf => st.csrf.clone(),
    };
    let tpl = st.env.get_template(name).map_err(WebError::from)?;
    tpl.render(minijinja::context! { ..base, ..ctx })
        .map_err(WebError::from)
}

/// One column of the matrix / one row of the lists page.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ListView {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) zone: String,
    pub(super) kind: String,
    pub(super) health: String,
    pub(super) why: String,
    pub(super) listing: usize,
}

/// The overview's data.
#[derive(Debug, Serialize)]
pub(super) struct Overview {
    pub(super) verdict: BTreeMap<&'static str, String>,
    pub(super) targets_total: u128,
    pub(super) lists: Vec<ListView>,
    pub(super) unhealthy: usize,
    pub(super) sick_lists: Vec<ListView>,
    pub(super) last_sweep: Option<store::SweepRow>,
    pub(super) matrix_rows: Vec<serde_json::Value>,
    pub(super) problem_count: usize,
    pub(super) clear_summary: String,
    pub(super) listings: Vec<store::StoredPair>,
    pub(super) mail: Vec<serde_json::Value>,
    pub(super) probes: Vec<serde_json::Value>,
    pub(super) events: Vec<crate::event::Event>,
}

/// Rows of the matrix shown on the overview (problem targets first; small installations show all).
const MATRIX_ALL_UP_TO: u128 = 50;
const MATRIX_MAX_ROWS: usize = 100;

pub(super) async fn overview_data(st: &WebState) -> Result<Overview, WebError> {
    let rt = st.live.snapshot();
    let (last_sweep, health, pairs, mail, probes, events) = st
        .db
        .read(|c| {
            Ok((
                store::last_sweep(c)?,
                store::load_health(c)?,
                store::load_pairs(c)?,
                store::latest_samples(c)?,
                store::latest_probes(c)?,
                store::events(c, None, 10, 0)?,
            ))
        })
        .await?;
    let lists: Vec<ListView> = rt
        .engine
        .lists()
        .iter()
        .map(|l| {
            let h = health.get(&l.def.id);
            ListView {
                id: l.def.id.clone(),
                name: l.def.name.clone(),
                zone: l.display_zone(),
                kind: serde_json::to_value(l.def.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                health: h.map_or("unchecked", |h| h.name()).to_string(),
                why: h.map(|h| h.why().to_string()).unwrap_or_default(),
                listing: pairs
                    .iter()
                    .filter(|p| p.list == l.def.id && p.state.is_listed())
                    .count(),
            }
        })
        .collect();
    let unhealthy = lists
        .iter()
        .filter(|l| l.health != "healthy" && l.health != "unchecked")
        .count();
    let targets_total: u128 = rt.cfg.targets.iter().map(|t| t.spec.len()).sum();
    // matrix: targets with non-clear pairs first; all targets when there are few
    let mut by_target: BTreeMap<String, BTreeMap<String, &'static str>> = BTreeMap::new();
    for p in &pairs {
        by_target
            .entry(p.target.clone())
            .or_default()
            .insert(p.list.clone(), p.state.name());
    }
    let problem_count = by_target.len();
    let mut rows: Vec<String> = by_target.keys().cloned().collect();
    rows.sort_by_key(|t| {
        std::cmp::Reverse(
            by_target[t]
                .values()
                .filter(|s| **s == "listed" || **s == "clearing")
                .count(),
        )
    });
    if targets_total <= MATRIX_ALL_UP_TO {
        for spec in &rt.cfg.targets {
            for t in spec.spec.targets() {
                let t = t.to_string();
                if !by_target.contains_key(&t) {
                    rows.push(t);
                }
            }
        }
    }
    rows.truncate(MATRIX_MAX_ROWS);
    let label_of = |t: &str| -> Option<String> {
        let target = Target::parse(t).ok()?;
        rt.cfg
            .targets
            .iter()
            .find(|c| c.spec.contains(&target))
            .and_then(|c| c.label.clone())
    };
    let matrix_rows = rows
        .iter()
        .map(|t| {
            let cells: Vec<&str> = lists
                .iter()
                .map(|l| {
                    let s = by_target
                        .get(t)
                        .and_then(|m| m.get(&l.id))
                        .copied()
                        .unwrap_or("clear");
                    if s == "clear" && l.health != "healthy" && l.health != "unchecked" {
                        "unhealthy"
                    } else {
                        s
                    }
                })
                .collect();
            serde_json::json!({ "target": t, "label": label_of(t), "cells": cells })
        })
        .collect();
    let clear = targets_total.saturating_sub(problem_count as u128);
    let clear_summary = if clear > 0 {
        format!("{clear} targets clear on every healthy list")
    } else {
        String::new()
    };
    let listings: Vec<store::StoredPair> =
        pairs.into_iter().filter(|p| p.state.is_listed()).collect();
    let vulnerable = probes
        .iter()
        .filter(|p| p["verdict"] == "accepts-unknown")
        .count();
    let mut verdict = BTreeMap::new();
    let (kind, text) = if !listings.is_empty() {
        (
            "listed",
            format!(
                "{} listing{}",
                listings.len(),
                if listings.len() == 1 { "" } else { "s" }
            ),
        )
    } else if vulnerable > 0 {
        (
            "backscatter",
            format!("Backscatter risk: {vulnerable} server(s) accept mail for unknown recipients"),
        )
    } else if unhealthy > 0 {
        (
            "list-problems",
            format!("No listings, but {unhealthy} list(s) not healthy"),
        )
    } else {
        ("all-clear", "All clear".to_string())
    };
    verdict.insert("kind", kind.to_string());
    verdict.insert("text", text);
    let sick_lists = lists
        .iter()
        .filter(|l| l.health != "healthy" && l.health != "unchecked")
        .cloned()
        .collect();
    let mail = mail.into_iter().map(|(source, metric, at, value)| serde_json::json!({"source": source, "metric": metric, "at": at, "value": value})).collect();
    Ok(Overview {
        verdict,
        targets_total,
        lists,
        unhealthy,
        sick_lists,
        last_sweep,
        matrix_rows,
        problem_count,
        clear_summary,
        listings,
        mail,
        probes,
        events,
    })
}

pub(super) async fn overview(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let body = st
        .cached("overview", || async {
            let o = overview_data(&st).await?;
            Ok(
                render_string(&st, "overview.html", minijinja::Value::from_serialize(&o))?
                    .into_bytes(),
            )
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response())
}

/// The target page's data; 404 for targets not configured.
pub(super) async fn target_data(st: &WebState, raw: &str) -> Result<serde_json::Value, WebError> {
    let rt = st.live.snapshot();
    let target = Target::parse(raw)
        .map_err(|_| WebError::NotFound(format!("{raw:?} is not a monitored target")))?;
    let Some(conf) = rt.cfg.targets.iter().find(|c| c.spec.contains(&target)) else {
        return Err(WebError::NotFound(format!(
            "{target} is not a monitored target"
        )));
    };
    let t = target.to_string();
    let t2 = t.clone();
    let (pairs, periods, events, health) = st
        .db
        .read(move |c| {
            Ok((
                store::pairs_of(c, &t2)?,
                store::listings(c, Some(&t2), false)?,
                store::events(c, Some(&t2), 50, 0)?,
                store::load_health(c)?,
            ))
        })
        .await?;
    let rows: Vec<serde_json::Value> = rt
        .engine
        .lists()
        .iter()
        .filter(|l| l.def.kind.accepts(&target))
        .map(|l| {
            let p = pairs.iter().find(|p| p.list == l.def.id);
            serde_json::json!({
                "id": l.def.id, "name": l.def.name,
                "health": health.get(&l.def.id).map_or("unchecked", |h| h.name()),
                "state": p.map_or("clear", |p| p.state.name()),
                "since": p.map(|p| p.since),
                "codes": p.map(|p| p.details.codes.clone()).unwrap_or_default(),
                "meanings": p.map(|p| p.details.meanings.clone()).unwrap_or_default(),
                "txt": p.map(|p| p.details.txt.clone()).unwrap_or_default(),
                "delist": l.def.delist_url(&target),
            })
        })
        .collect();
    let until = now();
    let since = periods
        .iter()
        .map(|p| p.started_at)
        .min()
        .unwrap_or(until - 86_400)
        .min(until - 86_400);
    let bars: Vec<(String, i64, Option<i64>)> = periods
        .iter()
        .take(40)
        .map(|p| (p.list.clone(), p.started_at, p.ended_at))
        .collect();
    let timeline = if bars.is_empty() {
        String::new()
    } else {
        super::svg::timeline(&bars, since, until)
    };
    Ok(
        serde_json::json!({ "target": t, "label": conf.label, "rows": rows, "periods": periods, "events": events, "timeline": timeline }),
    )
}

pub(super) async fn target(
    State(st): State<Arc<WebState>>,
    Path(raw): Path<String>,
) -> Result<Response, WebError> {
    let v = target_data(&st, &raw).await?;
    render(&st, "target.html", minijinja::Value::from_serialize(&v))
}

/// One page of targets (ranges expand lazily; only the page is materialised).
pub(super) async fn targets_data(
    st: &WebState,
    page: u32,
) -> Result<(Vec<serde_json::Value>, bool, u128), WebError> {
    let rt = st.live.snapshot();
    let size = st.conf.page_size as usize;
    let skip = (page as usize - 1) * size;
    let mut it = rt
        .cfg
        .targets
        .iter()
        .flat_map(|c| c.spec.targets().map(move |t| (t, c.label.clone())))
        .skip(skip);
    let chunk: Vec<_> = it.by_ref().take(size).collect();
    let has_next = it.next().is_some();
    let total: u128 = rt.cfg.targets.iter().map(|t| t.spec.len()).sum();
    let pairs = st.db.read(store::load_pairs).await?;
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for p in &pairs {
        let e = counts.entry(p.target.as_str()).or_default();
        if p.state.is_listed() {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let rows = chunk
        .into_iter()
        .map(|(t, label)| {
            let s = t.to_string();
            let (l, p) = counts.get(s.as_str()).copied().unwrap_or_default();
            serde_json::json!({"target": s, "label": label, "listed": l, "pending": p})
        })
        .collect();
    Ok((rows, has_next, total))
}

pub(super) async fn targets(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Response, WebError> {
    let page = q.number();
    let (targets, has_next, total) = targets_data(&st, page).await?;
    render(
        &st,
        "targets.html",
        minijinja::context! { targets, has_next, total => total.to_string(), page },
    )
}

pub(super) async fn lists(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let o = overview_data(&st).await?;
    render(&st, "lists.html", minijinja::context! { lists => o.lists })
}

pub(super) async fn list_data(st: &WebState, id: &str) -> Result<serde_json::Value, WebError> {
    let rt = st.live.snapshot();
    let Some(l) = rt.engine.lists().iter().find(|l| l.def.id == id) else {
        return Err(WebError::NotFound(format!("no list {id:?} in use")));
    };
    let id2 = id.to_string();
    let (history, pairs, periods, health) = st
        .db
        .read(move |c| {
            Ok((
                store::health_history(c, &id2, 100)?,
                store::pairs_on(c, &id2)?,
                store::listings_on(c, &id2, 100)?,
                store::load_health(c)?,
            ))
        })
        .await?;
    let h = health.get(id);
    Ok(serde_json::json!({
        "list": &*l.def, "zone": l.display_zone(),
        "health": h.map_or("unchecked", |h| h.name()), "health_why": h.map(|h| h.why()).unwrap_or(""),
        "history": history, "pairs": pairs, "periods": periods,
    }))
}

pub(super) async fn list(
    State(st): State<Arc<WebState>>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let v = list_data(&st, &id).await?;
    render(&st, "list.html", minijinja::Value::from_serialize(&v))
}

pub(super) fn range_secs(r: Option<&str>) -> Result<(&'static str, i64), WebError> {
    match r.unwrap_or("24h") {
        "24h" => Ok(("24h", 86_400)),
        "7d" => Ok(("7d", 7 * 86_400)),
        "30d" => Ok(("30d", 30 * 86_400)),
        other => Err(WebError::BadRequest(format!(
            "range {other:?}: use 24h, 7d or 30d"
        ))),
    }
}

pub(super) async fn mail(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Response, WebError> {
    let (range, secs) = range_secs(q.range.as_deref())?;
    let rt = st.live.snapshot();
    let until = now();
    let since = until - secs;
    let rules = rt.cfg.spikes.clone();
    let charts = st
        .db
        .read(move |c| {
            let spikes = store::events_of_kinds(c, &[crate::event::EventKind::QueueSpike, crate::event::EventKind::NdrSpike], since)?;
            let mut out = Vec::new();
            for (source, metric, _, _) in store::latest_samples(c)? {
                let key = format!("{source}.{metric}");
                let points = store::series(c, &source, &metric, since, until, 200)?;
                let threshold = rules.iter().find(|r| r.metric == key).and_then(|r| r.above);
                let marks: Vec<i64> = spikes.iter().filter(|e| matches!(&e.subject, crate::event::Subject::Metric { source: s, metric: m } if *s == source && *m == metric)).map(|e| e.at).collect();
                let svg = super::svg::line_chart(&points, since, until, threshold, &marks);
                out.push(serde_json::json!({"source": source, "metric": metric, "threshold": threshold, "spikes": marks.len(), "svg": svg}));
            }
            Ok(out)
        })
        .await?;
    render(&st, "mail.html", minijinja::context! { charts, range })
}

pub(super) async fn events(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Response, WebError> {
    let page = q.number();
    let (events, has_next) = paginate(&st, page, |c, limit, offset| {
        store::events(c, None, limit, offset)
    })
    .await?;
    render(
        &st,
        "events.html",
        minijinja::context! { events, page, has_next },
    )
}

pub(super) async fn hook_runs(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Response, WebError> {
    let page = q.number();
    let (runs, has_next) = paginate(&st, page, |c, limit, offset| {
        store::hook_runs(c, None, limit, offset)
    })
    .await?;
    render(
        &st,
        "hooks.html",
        minijinja::context! { runs, page, has_next },
    )
}

pub(super) async fn alerts(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Response, WebError> {
    let page = q.number();
    let (alerts, has_next) = paginate(&st, page, |c, limit, offset| {
        store::alerts(c, limit, offset)
    })
    .await?;
    render(
        &st,
        "alerts.html",
        minijinja::context! { alerts, page, has_next },
    )
}

pub(super) async fn css(State(st): State<Arc<WebState>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        st.css.clone(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct CheckNow {
    csrf: String,
}

pub(super) async fn check_now(
    State(st): State<Arc<WebState>>,
    Form(f): Form<CheckNow>,
) -> Response {
    if !super::auth::secret_eq(&f.csrf, &st.csrf) {
        return (StatusCode::FORBIDDEN, "missing or wrong form token").into_response();
    }
    if st.live.check_now() {
        tracing::info!("sweep requested from the web page");
    } else {
        tracing::warn!("could not request a sweep (one is queued or the scheduler is busy)");
    }
    Redirect::to("/").into_response()
}
