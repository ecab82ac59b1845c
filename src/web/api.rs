//! JSON API under `/api/v1/`. Same data as the pages; secrets never appear
//! (list zones are shown with `<key>` in place of a DQS key, config secrets are
//! not exposed at all).
//!
//! One vocabulary across endpoints: the list's id is always `list`, a reason
//! always `why`, `listed` always a yes or no (counts of listings are
//! `listings`), `state` always an object with a `state` member, counts are
//! numbers, and every paginated list carries `page`, `per_page` (bounded),
//! `total` and `has_next`. Errors are problem documents (see `problem`).
//! The OpenAPI 3.1 document at `/api/v1/openapi.json` is generated from the
//! handlers' types below (utoipa).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::pages;
use super::problem::Problem;
use super::render::{self, Page, Range};
use super::{WebError, WebState};
use crate::store;
use crate::time::now;

/// The whole API, described.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "rblwatch",
        description = "DNSBL listings of your mail servers, their impact, mail telemetry and delisting. Errors are RFC 9457 problem documents."
    ),
    paths(
        status, targets, target, super::range::api, lists, list, events, hook_runs, alerts, series,
        super::impact::receivers_api, super::impact::audit_api, super::accounts::api,
        super::gmail::api, super::senders::api,
        super::delist::list, super::delist::create, openapi
    ),
    tags(
        (name = "status", description = "The headline verdict and what it is made of"),
        (name = "targets"), (name = "lists"), (name = "history"), (name = "mail"),
        (name = "delisting")
    )
)]
pub(super) struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "status",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub(super) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// A mail metric's latest value.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct MailValue {
    source: String,
    metric: String,
    /// When it was read (Unix seconds).
    at: i64,
    value: f64,
    unit: String,
}

/// The overview's data: the verdict first.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StatusBody {
    verdict: crate::status::VerdictView,
    resolver: Option<crate::health::ResolverHealth>,
    /// Targets monitored (addresses and domains).
    targets: u64,
    lists: Vec<super::overview::ListView>,
    last_sweep: Option<store::SweepRow>,
    /// Listed and clearing pairs, with their impact (null when unknown) and delisting request.
    #[schema(value_type = Vec<Object>)]
    listings: Vec<serde_json::Value>,
    mail: Vec<MailValue>,
    #[schema(value_type = Vec<Object>)]
    probes: Vec<store::StoredProbe>,
    #[schema(value_type = Vec<Object>)]
    recent_events: Vec<crate::event::Event>,
    /// The daemon's last assessment of receivers' refusals.
    #[schema(value_type = Option<Object>)]
    impact: Option<crate::impact::Assessment>,
}

/// The verdict and everything on the overview.
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, description = "The status", body = StatusBody),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn status(
    State(st): State<Arc<WebState>>,
) -> Result<axum::response::Response, WebError> {
    use axum::response::IntoResponse;
    let body = st
        .cached("status", || async {
            let o = super::overview::overview_data(&st).await?;
            // the sparklines are markup for the page
            let mail = o
                .mail
                .iter()
                .map(|m| MailValue {
                    source: m.source.clone(),
                    metric: m.metric.clone(),
                    at: m.at,
                    value: m.value,
                    unit: m.unit.clone(),
                })
                .collect();
            // each listing's impact in full (kind, severity, text, receivers,
            // replies); null when unknown (no delivery log, or not assessed yet)
            let listings = super::impact::with_impact(&o.listings, o.impact.as_ref())
                .into_iter()
                .zip(&o.listings)
                .map(|(mut v, l)| {
                    if l.impact == super::Impact::Unknown {
                        v["impact"] = serde_json::Value::Null;
                    }
                    v
                })
                .collect();
            let v = StatusBody {
                verdict: o.verdict,
                resolver: o.resolver,
                targets: u64::try_from(o.targets_total).unwrap_or(u64::MAX),
                lists: o.lists,
                last_sweep: o.last_sweep,
                listings,
                mail,
                probes: o.probes,
                recent_events: o.events,
                impact: o.impact,
            };
            serde_json::to_vec(&v).map_err(WebError::from)
        })
        .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// A page of targets.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TargetsPage {
    page: u32,
    per_page: u32,
    total: u64,
    has_next: bool,
    targets: Vec<pages::TargetEntry>,
}

/// The monitored targets (ranges expanded), in configuration order.
#[utoipa::path(get, path = "/api/v1/targets", tag = "targets", params(Page),
    responses((status = 200, description = "A page of targets", body = TargetsPage),
        (status = "4XX", description = "Bad page or per_page", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn targets(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Json<TargetsPage>, WebError> {
    let p = q.checked(st.conf.page_size)?;
    let (targets, has_next, total) = pages::targets_data(&st, p).await?;
    Ok(Json(TargetsPage {
        page: p.page,
        per_page: p.per_page,
        total,
        has_next,
        targets,
    }))
}

/// One target: every list's state for it, its listings and their delisting.
#[utoipa::path(get, path = "/api/v1/targets/{target}", tag = "targets",
    params(("target" = String, Path, description = "An address or domain monitored")),
    responses((status = 200, description = "The target", body = super::target::TargetView),
        (status = "4XX", description = "Not a monitored target", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn target(
    State(st): State<Arc<WebState>>,
    Path(t): Path<String>,
) -> Result<axum::response::Response, WebError> {
    use axum::response::IntoResponse;
    // a range (`198.51.96.0%2F20`) or a part of one: its range's view
    if super::range::is_range(&st, &t) {
        return Ok(Json(super::range::range_data(&st, &t).await?).into_response());
    }
    let mut v = super::target::target_data(&st, &t).await?;
    v.timeline.clear();
    v.no_charts();
    Ok(Json(v).into_response())
}

/// The lists in use.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ListsBody {
    lists: Vec<super::overview::ListView>,
}

/// The lists in use with their health.
#[utoipa::path(get, path = "/api/v1/lists", tag = "lists",
    responses((status = 200, description = "The lists", body = ListsBody)))]
pub(super) async fn lists(State(st): State<Arc<WebState>>) -> Result<Json<ListsBody>, WebError> {
    Ok(Json(ListsBody {
        lists: pages::lists_data(&st).await?,
    }))
}

/// One list in use.
#[utoipa::path(get, path = "/api/v1/lists/{list}", tag = "lists",
    params(("list" = String, Path, description = "The list's id")),
    responses((status = 200, description = "The list", body = pages::ListDetail),
        (status = "4XX", description = "No such list in use", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn list(
    State(st): State<Arc<WebState>>,
    Path(id): Path<String>,
) -> Result<Json<pages::ListDetail>, WebError> {
    Ok(Json(pages::list_data(&st, &id).await?))
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EventsPage {
    page: u32,
    per_page: u32,
    total: u64,
    has_next: bool,
    #[schema(value_type = Vec<Object>)]
    events: Vec<crate::event::Event>,
}

/// Events, newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "history", params(Page),
    responses((status = 200, description = "A page of events", body = EventsPage),
        (status = "4XX", description = "Bad page or per_page", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn events(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Json<EventsPage>, WebError> {
    let p = q.checked(st.conf.page_size)?;
    let (events, has_next, total) = render::paginate_counted(
        &st,
        p,
        |c, limit, offset| store::events(c, None, limit, offset),
        |c| store::count_paged(c, store::Counted::Events),
    )
    .await?;
    Ok(Json(EventsPage {
        page: p.page,
        per_page: p.per_page,
        total,
        has_next,
        events,
    }))
}

/// A page of hook runs.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct HookRunsPage {
    page: u32,
    per_page: u32,
    total: u64,
    has_next: bool,
    #[schema(value_type = Vec<Object>)]
    hook_runs: Vec<store::HookRun>,
}

/// Hook runs, newest first.
#[utoipa::path(get, path = "/api/v1/hook-runs", tag = "history", params(Page),
    responses((status = 200, description = "A page of hook runs", body = HookRunsPage),
        (status = "4XX", description = "Bad page or per_page", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn hook_runs(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Json<HookRunsPage>, WebError> {
    let p = q.checked(st.conf.page_size)?;
    let (hook_runs, has_next, total) = render::paginate_counted(
        &st,
        p,
        |c, limit, offset| store::hook_runs(c, None, limit, offset),
        |c| store::count_paged(c, store::Counted::HookRuns),
    )
    .await?;
    Ok(Json(HookRunsPage {
        page: p.page,
        per_page: p.per_page,
        total,
        has_next,
        hook_runs,
    }))
}

/// A page of alert deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AlertsPage {
    page: u32,
    per_page: u32,
    total: u64,
    has_next: bool,
    #[schema(value_type = Vec<Object>)]
    alerts: Vec<store::OutboxRow>,
}

/// Alert deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "history", params(Page),
    responses((status = 200, description = "A page of alerts", body = AlertsPage),
        (status = "4XX", description = "Bad page or per_page", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn alerts(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Json<AlertsPage>, WebError> {
    let p = q.checked(st.conf.page_size)?;
    let (alerts, has_next, total) = render::paginate_counted(&st, p, store::alerts, |c| {
        store::count_paged(c, store::Counted::Alerts)
    })
    .await?;
    // bodies can hold remote text and, for webhook formats, nothing secret; URLs are never stored
    Ok(Json(AlertsPage {
        page: p.page,
        per_page: p.per_page,
        total,
        has_next,
        alerts,
    }))
}

/// A mail metric over a range.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SeriesBody {
    source: String,
    metric: String,
    range: String,
    /// `[unix seconds, value]`, oldest first.
    #[schema(value_type = Vec<Vec<f64>>)]
    points: Vec<(i64, f64)>,
}

/// A mail metric's samples.
#[utoipa::path(get, path = "/api/v1/metrics/{source}/{metric}", tag = "mail",
    params(("source" = String, Path), ("metric" = String, Path), Range),
    responses((status = 200, description = "The series", body = SeriesBody),
        (status = "4XX", description = "Bad range, or no samples", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn series(
    State(st): State<Arc<WebState>>,
    Path((source, metric)): Path<(String, String)>,
    Query(q): Query<Range>,
) -> Result<Json<SeriesBody>, WebError> {
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
    Ok(Json(SeriesBody {
        source,
        metric,
        range: range.to_string(),
        points,
    }))
}
