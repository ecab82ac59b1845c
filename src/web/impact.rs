//! Impact and audit data for the pages and the API: the daemon's last
//! assessment of listings × receivers' rejections ([`crate::impact`]), the
//! stored refusals, and the posture audits. Remote text (replies) is data:
//! the templates escape it and the JSON carries it as strings.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;

use super::render::{self, Page, Paging};
use super::{WebError, WebState};
use crate::impact::Assessment;
use crate::store;

/// The daemon's last assessment (`None` before the first one).
pub(super) fn read_assessment(c: &rusqlite::Connection) -> store::Result<Option<Assessment>> {
    store::get_state(c, &store::StateKey::ImpactAssessment)
}

/// The impact of each listed pair, added to its JSON as `impact` (`null`
/// when the daemon has not assessed it yet). A listing the assessment does
/// not hold was not cited by any receiver: "none seen".
pub(super) fn with_impact<T: serde::Serialize>(
    rows: &[T],
    a: Option<&Assessment>,
) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            let imp = match (v["target"].as_str(), v["list"].as_str(), a) {
                (Some(t), Some(l), Some(a)) => Some(match a.listing(t, l) {
                    Some(li) => impact_json(li),
                    None => impact_json(&a.none_seen(&crate::impact::Listing {
                        target: t.to_string(),
                        list: l.to_string(),
                        list_name: String::new(),
                        delist: None,
                    })),
                }),
                _ => None,
            };
            if v.is_object() {
                v["impact"] = imp.unwrap_or(serde_json::Value::Null);
            }
            v
        })
        .collect()
}

/// A listing's impact as the API shows it.
pub(super) fn impact_json(l: &crate::impact::ListingImpact) -> serde_json::Value {
    serde_json::json!({
        "kind": l.impact, "severity": l.severity, "text": l.text,
        "receivers": l.receivers, "count": l.count, "replies": l.replies,
    })
}

async fn receivers_data(st: &WebState, p: Paging) -> Result<serde_json::Value, WebError> {
    let a = st.db.read(read_assessment).await?;
    let (recent, has_next, total) = render::paginate_counted(
        st,
        p,
        |c, limit, offset| store::recent_rejections(c, None, limit, offset),
        |c| store::count_paged(c, store::Counted::Rejections),
    )
    .await?;
    Ok(serde_json::json!({
        "assessed_at": a.as_ref().map(|a| a.at),
        "window_secs": a.as_ref().map(|a| a.window_secs),
        "window": a.as_ref().map(|a| crate::time::fmt_duration(std::time::Duration::from_secs(a.window_secs.max(0) as u64))),
        "threshold": a.as_ref().map(|a| a.threshold),
        "receivers": a.as_ref().map(|a| a.receivers.clone()).unwrap_or_default(),
        "listings": a.as_ref().map(|a| a.listings.clone()).unwrap_or_default(),
        "listings_total": a.as_ref().map(|a| a.listed),
        "backscatter": a.as_ref().map(|a| a.backscatter.clone()).unwrap_or_default(),
        "recent": recent,
        "page": p.page,
        "per_page": p.per_page,
        "total": total,
        "has_next": has_next,
    }))
}

async fn audit_data(st: &WebState) -> Result<serde_json::Value, WebError> {
    let audits = st.db.read(store::latest_audits).await?;
    Ok(serde_json::json!({ "audits": audits }))
}

/// `GET /receivers`.
pub(super) async fn receivers_page(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Response, WebError> {
    let p = Paging {
        page: q.number(),
        per_page: st.conf.page_size.clamp(1, render::MAX_PER_PAGE),
    };
    let v = receivers_data(&st, p).await?;
    render::render(&st, "receivers.html", minijinja::Value::from_serialize(&v))
}

/// Receivers' refusals: the last assessment and a page of recent rejections
/// (`recent`, with `page`, `per_page`, `total` and `has_next`).
#[utoipa::path(get, path = "/api/v1/receivers", tag = "mail", params(Page),
    responses((status = 200, description = "Receivers and recent rejections", body = Object),
        (status = "4XX", description = "Bad page or per_page", body = super::problem::Problem, content_type = "application/problem+json")))]
pub(super) async fn receivers_api(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Json<serde_json::Value>, WebError> {
    let p = q.checked(st.conf.page_size)?;
    Ok(Json(receivers_data(&st, p).await?))
}

/// `GET /audit`.
pub(super) async fn audit_page(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let v = audit_data(&st).await?;
    render::render(&st, "audit.html", minijinja::Value::from_serialize(&v))
}

/// The latest audit of each kind (`audits`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "mail",
    responses((status = 200, description = "The audits", body = Object)))]
pub(super) async fn audit_api(
    State(st): State<Arc<WebState>>,
) -> Result<Json<serde_json::Value>, WebError> {
    Ok(Json(audit_data(&st).await?))
}
