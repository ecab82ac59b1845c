//! JSON API under `/api/v1/`. Same data as the pages; secrets never appear
//! (list zones are shown with `<key>` in place of a DQS key, config secrets are
//! not exposed at all).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;

use super::pages;
use super::render::{self, Page};
use super::{WebError, WebState};
use crate::store;
use crate::time::now;

type Api = Result<Json<serde_json::Value>, WebError>;

pub(super) async fn status(
    State(st): State<Arc<WebState>>,
) -> Result<axum::response::Response, WebError> {
    use axum::response::IntoResponse;
    let body = st
        .cached("status", || async {
            let o = super::overview::overview_data(&st).await?;
            // the sparklines are markup for the page
            let mail: Vec<serde_json::Value> = o
                .mail
                .iter()
                .map(|m| serde_json::json!({"source": m.source, "metric": m.metric, "at": m.at, "value": m.value, "unit": m.unit}))
                .collect();
            // each listing's impact in full (state, severity, text, receivers,
            // replies); null when unknown (no delivery log, or not assessed yet)
            let listings: Vec<serde_json::Value> = super::impact::with_impact(&o.listings, o.impact.as_ref())
                .into_iter()
                .zip(&o.listings)
                .map(|(mut v, l)| {
                    if l.impact == super::Impact::Unknown {
                        v["impact"] = serde_json::Value::Null;
                    }
                    v
                })
                .collect();
            let v = serde_json::json!({
                "verdict": o.verdict, "resolver": o.resolver, "targets": o.targets_total.to_string(), "lists": o.lists,
                "last_sweep": o.last_sweep, "listings": listings, "mail": mail, "probes": o.probes, "recent_events": o.events,
                "impact": o.impact,
            });
            serde_json::to_vec(&v).map_err(WebError::from)
        })
        .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

pub(super) async fn targets(State(st): State<Arc<WebState>>, Query(q): Query<Page>) -> Api {
    let page = q.number();
    let (targets, has_next, total) = pages::targets_data(&st, page).await?;
    Ok(Json(
        serde_json::json!({ "page": page, "has_next": has_next, "total": total.to_string(), "targets": targets }),
    ))
}

pub(super) async fn target(State(st): State<Arc<WebState>>, Path(t): Path<String>) -> Api {
    let mut v = super::target::target_data(&st, &t).await?;
    v.timeline.clear();
    Ok(Json(serde_json::to_value(&v)?))
}

pub(super) async fn lists(State(st): State<Arc<WebState>>) -> Api {
    Ok(Json(
        serde_json::json!({ "lists": pages::lists_data(&st).await? }),
    ))
}

pub(super) async fn list(State(st): State<Arc<WebState>>, Path(id): Path<String>) -> Api {
    Ok(Json(pages::list_data(&st, &id).await?))
}

pub(super) async fn events(State(st): State<Arc<WebState>>, Query(q): Query<Page>) -> Api {
    let page = q.number();
    let (events, has_next) = render::paginate(&st, page, |c, limit, offset| {
        store::events(c, None, limit, offset)
    })
    .await?;
    Ok(Json(
        serde_json::json!({ "page": page, "has_next": has_next, "events": events }),
    ))
}

pub(super) async fn hook_runs(State(st): State<Arc<WebState>>, Query(q): Query<Page>) -> Api {
    let page = q.number();
    let (runs, has_next) = render::paginate(&st, page, |c, limit, offset| {
        store::hook_runs(c, None, limit, offset)
    })
    .await?;
    Ok(Json(
        serde_json::json!({ "page": page, "has_next": has_next, "hook_runs": runs }),
    ))
}

pub(super) async fn alerts(State(st): State<Arc<WebState>>, Query(q): Query<Page>) -> Api {
    let page = q.number();
    let (alerts, has_next) = render::paginate(&st, page, |c, limit, offset| {
        store::alerts(c, limit, offset)
    })
    .await?;
    // bodies can hold remote text and, for webhook formats, nothing secret; URLs are never stored
    Ok(Json(
        serde_json::json!({ "page": page, "has_next": has_next, "alerts": alerts }),
    ))
}

pub(super) async fn series(
    State(st): State<Arc<WebState>>,
    Path((source, metric)): Path<(String, String)>,
    Query(q): Query<Page>,
) -> Api {
    let (range, secs) = render::range_secs(q.range.as_deref(), None)?;
    let until = now();
    let (s2, m2) = (source.clone(), metric.clone());
    let points = st
        .db
        .read(move |c| store::series(c, &s2, &m2, until - secs, until, 500))
        .await?;
    if points.is_empty() {
        return Err(WebError::NotFound(format!(
            "no samples for {source}.{metric} in the last {range}"
        )));
    }
    Ok(Json(
        serde_json::json!({ "source": source, "metric": metric, "range": range, "points": points }),
    ))
}
