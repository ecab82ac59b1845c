//! Impact and audit data for the pages and the API: the daemon's last
//! assessment of listings × receivers' rejections ([`crate::impact`]), the
//! stored refusals, and the posture audits. Remote text (replies) is data:
//! the templates escape it and the JSON carries it as strings.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;

use super::render::{self, Page};
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
        "state": l.impact, "severity": l.severity, "text": l.text,
        "receivers": l.receivers, "count": l.count, "replies": l.replies,
    })
}

async fn receivers_data(st: &WebState, page: u32) -> Result<serde_json::Value, WebError> {
    let a = st.db.read(read_assessment).await?;
    let (recent, has_next) = render::paginate(st, page, |c, limit, offset| {
        store::recent_rejections(c, None, limit, offset)
    })
    .await?;
    Ok(serde_json::json!({
        "assessed_at": a.as_ref().map(|a| a.at),
        "window_secs": a.as_ref().map(|a| a.window_secs),
        "window": a.as_ref().map(|a| crate::time::fmt_duration(std::time::Duration::from_secs(a.window_secs.max(0) as u64))),
        "threshold": a.as_ref().map(|a| a.threshold),
        "receivers": a.as_ref().map(|a| a.receivers.clone()).unwrap_or_default(),
        "listings": a.as_ref().map(|a| a.listings.clone()).unwrap_or_default(),
        "listed": a.as_ref().map(|a| a.listed),
        "backscatter": a.as_ref().map(|a| a.backscatter.clone()).unwrap_or_default(),
        "recent": recent,
        "page": page,
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
    let v = receivers_data(&st, q.number()).await?;
    render::render(&st, "receivers.html", minijinja::Value::from_serialize(&v))
}

/// `GET /api/v1/receivers`.
pub(super) async fn receivers_api(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Json<serde_json::Value>, WebError> {
    Ok(Json(receivers_data(&st, q.number()).await?))
}

/// `GET /audit`.
pub(super) async fn audit_page(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let v = audit_data(&st).await?;
    render::render(&st, "audit.html", minijinja::Value::from_serialize(&v))
}

/// `GET /api/v1/audit`.
pub(super) async fn audit_api(
    State(st): State<Arc<WebState>>,
) -> Result<Json<serde_json::Value>, WebError> {
    Ok(Json(audit_data(&st).await?))
}
