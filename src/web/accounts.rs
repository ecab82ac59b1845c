//! The outbound ledger for the pages and the API (`/accounts`, `/api/v1/accounts`;
//! `/senders` is the DMARC page of the IPs that send):
//! per source, the accounts by volume in the window with their refusals and
//! whether they burst (and so may be held), and the classes of automated mail.
//! Account names are remote text (an attacker chooses a login's spelling):
//! the templates escape them and the JSON carries them as strings.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Json;

use super::render;
use super::{WebError, WebState};
use crate::senders::SendersState;

/// Accounts shown per source at most (busiest first; bursting ones always).
pub(super) const MAX_SHOWN: usize = 100;

/// The JSON of one source's state (also what the page renders).
pub(super) fn source_json(source: &str, s: &SendersState) -> serde_json::Value {
    let mut accounts: Vec<_> = s.accounts.iter().collect();
    accounts.sort_by(|a, b| {
        b.1.bursting
            .cmp(&a.1.bursting)
            .then_with(|| b.1.window().0.cmp(&a.1.window().0))
            .then_with(|| a.0.cmp(b.0))
    });
    let accounts: Vec<serde_json::Value> = accounts
        .into_iter()
        .take(MAX_SHOWN)
        .map(|(_, a)| {
            let (m, r, f) = a.window();
            serde_json::json!({
                "origin": a.origin, "account": a.name, "messages": m, "recipients": r, "refusals": f,
                "baseline_messages": (a.base_messages * 10.0).round() / 10.0, "bursting": a.bursting,
                "total_messages": a.total_messages, "last_seen": a.last_seen,
                "refused_by": a.refused_by.iter().map(|(w, (n, reply))| serde_json::json!({"receiver": w, "count": n, "reply": reply})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let classes: Vec<serde_json::Value> = s
        .classes
        .iter()
        .map(|(c, st)| {
            let mut top: Vec<_> = st.destinations.iter().collect();
            top.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            serde_json::json!({
                "class": c, "messages": st.buckets.iter().map(|(_, n)| n).sum::<u64>(), "total": st.total,
                "bursting": st.bursting,
                "top_destinations": top.into_iter().take(5).map(|(d, n)| serde_json::json!({"domain": d, "count": n})).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "source": source, "accounts": accounts, "accounts_tracked": s.accounts.len(),
        "accounts_evicted": s.evicted, "classes": classes,
    })
}

async fn data(st: &WebState) -> Result<serde_json::Value, WebError> {
    let states = st.db.read(crate::status::load_ledgers).await?;
    let sources: Vec<serde_json::Value> = states.iter().map(|(k, s)| source_json(k, s)).collect();
    Ok(serde_json::json!({ "sources": sources }))
}

/// `GET /accounts`.
pub(super) async fn page(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let v = data(&st).await?;
    render::render(&st, "accounts.html", minijinja::Value::from_serialize(&v))
}

/// The outbound ledger of each log source: its sending accounts by volume in
/// the window (bursting ones first, with refusals by receiver as evidence)
/// and its classes of automated mail with their top destinations.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "mail", operation_id = "accounts",
    responses((status = 200, description = "Sending accounts and classes by source", body = Object),
        (status = "4XX", description = "Refused", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed", body = super::problem::Problem, content_type = "application/problem+json")))]
pub(super) async fn api(
    State(st): State<Arc<WebState>>,
) -> Result<Json<serde_json::Value>, WebError> {
    Ok(Json(data(&st).await?))
}
