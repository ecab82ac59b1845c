//! What Gmail thinks of our domains (`/gmail`, `/api/v1/gmail`), from Google
//! Postmaster Tools: each domain's spam-rate standing against Google's 0.1 %
//! and 0.3 %, its compliance with the sender requirements (as Google spells
//! them), and the daily figures, where a day without figures says "not
//! enough volume", never 0.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Json;

use super::{render, WebError, WebState};
use crate::feeds::postmaster::{
    day_text, percent, standing, LastRead, SPAM_RATE_CRITICAL, SPAM_RATE_WARN, STANDING_DAYS,
};
use crate::store;

async fn data(st: &WebState) -> Result<serde_json::Value, WebError> {
    let cfg = st.live.snapshot().cfg;
    let at = crate::time::now();
    let today = chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .date_naive();
    let since = today
        .checked_sub_days(chrono::Days::new(30))
        .unwrap_or(today)
        .to_string();
    let stand_since = today
        .checked_sub_days(chrono::Days::new(STANDING_DAYS))
        .unwrap_or(today)
        .to_string();
    let names: Vec<String> = cfg.postmaster.iter().map(|f| f.name.clone()).collect();
    let (domains, compliance, feeds) = st
        .db
        .read(move |c| {
            let mut out = Vec::new();
            for d in store::postmaster_domains(c)? {
                let days = store::postmaster_days(c, &d, &since)?;
                out.push((d, days));
            }
            let mut feeds = Vec::new();
            for n in names {
                let last: Option<LastRead> =
                    store::get_state(c, &store::StateKey::PostmasterRead(n.clone()))?;
                feeds.push(serde_json::json!({"name": n, "last_read": last}));
            }
            Ok((out, store::postmaster_compliance(c)?, feeds))
        })
        .await?;
    let domains: Vec<serde_json::Value> = domains
        .into_iter()
        .map(|(d, days)| {
            let recent: Vec<_> = days.iter().filter(|x| x.day >= stand_since).cloned().collect();
            let stand = standing(&d, &recent);
            let comp = compliance.iter().find(|c| c.domain == d);
            serde_json::json!({
                "domain": d,
                "spam_rate": stand.as_ref().map(|s| serde_json::json!({
                    "level": s.level, "rate": s.rate, "percent": percent(s.rate), "day": s.day, "text": s.text(),
                })),
                "text": stand.as_ref().map(|s| s.text()).unwrap_or_else(|| format!("{d}: no Gmail spam rate lately (not enough volume)")),
                "compliance": comp.map(|c| &c.compliance),
                "needs_work": comp.map(|c| c.compliance.needs_work()).unwrap_or_default(),
                "compliance_at": comp.map(|c| c.fetched_at),
                "days": days.iter().rev().map(|x| {
                    let mut v = serde_json::to_value(x).unwrap_or_default();
                    v["text"] = day_text(x).into();
                    // each figure as people read it; "no figure" where Google gave none, never 0
                    for (name, f) in x.figures() {
                        v["percent"][name] = f.map_or_else(|| "no figure".to_string(), percent).into();
                    }
                    v["enough_volume"] = (!x.is_empty()).into();
                    v
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(serde_json::json!({
        "feeds": feeds,
        "thresholds": {"warn": SPAM_RATE_WARN, "critical": SPAM_RATE_CRITICAL, "source": "https://support.google.com/mail/answer/81126"},
        "domains": domains,
    }))
}

/// `GET /gmail`.
pub(super) async fn page(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let v = data(&st).await?;
    render::render(&st, "gmail.html", minijinja::Value::from_serialize(&v))
}

/// `GET /api/v1/gmail`.
pub(super) async fn api(
    State(st): State<Arc<WebState>>,
) -> Result<Json<serde_json::Value>, WebError> {
    Ok(Json(data(&st).await?))
}
