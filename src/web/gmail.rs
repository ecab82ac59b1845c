//! What Gmail thinks of our domains (`/gmail`, `/api/v1/gmail`), from Google
//! Postmaster Tools: each domain's spam-rate standing against Google's 0.1 %
//! and 0.3 %, its compliance with the sender requirements (as Google spells
//! them), and the daily figures, where a day without figures says "not
//! enough volume", never 0.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::{render, WebError, WebState};
use crate::feeds::postmaster::{
    day_text, percent, standing, Compliance, DayStats, LastRead, SpamLevel, SPAM_RATE_CRITICAL,
    SPAM_RATE_WARN, STANDING_DAYS,
};
use crate::store;

/// Google's thresholds, with where Google says so.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Thresholds {
    /// Recommended ceiling (0 to 1): 0.001, 0.1 %.
    warn: f64,
    /// Gmail may refuse or junk the mail at or over it (0 to 1): 0.003, 0.3 %.
    critical: f64,
    source: String,
}

/// A Postmaster Tools feed's last read.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct GmailFeed {
    name: String,
    /// `null` before its first read.
    last_read: Option<LastRead>,
}

/// A domain's spam-rate standing: its latest figure within 14 days.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SpamRateView {
    level: SpamLevel,
    /// The figure (0 to 1).
    rate: f64,
    /// As people read it: `0.42 %`.
    percent: String,
    /// The figure's day (`YYYY-MM-DD`).
    day: String,
    text: String,
}

/// A day's figures as people read them: `0.42 %`, or `no figure` where
/// Google gave none (never 0).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DayPercents {
    spam_rate: String,
    spf_success_rate: String,
    dkim_success_rate: String,
    dmarc_success_rate: String,
    tls_rate: String,
    delivery_error_rate: String,
    reject_rate: String,
    temp_fail_rate: String,
}

/// One day of a domain: Google's figures (`null` where it gave none).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct GmailDay {
    #[serde(flatten)]
    stats: DayStats,
    /// "spam rate 0.42 %" or "not enough volume …".
    text: String,
    percent: DayPercents,
    /// Google gave some figure that day.
    enough_volume: bool,
}

/// One monitored domain.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct GmailDomain {
    domain: String,
    /// `null`: no figure lately (not enough volume), never 0.
    spam_rate: Option<SpamRateView>,
    text: String,
    /// The compliance status with Gmail's sender requirements; `null` before it is read.
    compliance: Option<Compliance>,
    /// The requirements that need work.
    needs_work: Vec<String>,
    /// When the compliance status was read (Unix seconds).
    compliance_at: Option<i64>,
    /// The last 30 days, newest first.
    days: Vec<GmailDay>,
}

/// What Gmail thinks of our domains (`/api/v1/gmail`; `/gmail` renders it).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct GmailBody {
    feeds: Vec<GmailFeed>,
    thresholds: Thresholds,
    domains: Vec<GmailDomain>,
}

fn day_view(x: DayStats) -> GmailDay {
    // each figure as people read it; "no figure" where Google gave none, never 0
    let p = |f: Option<f64>| f.map_or_else(|| "no figure".to_string(), percent);
    GmailDay {
        text: day_text(&x),
        percent: DayPercents {
            spam_rate: p(x.spam_rate),
            spf_success_rate: p(x.spf_rate),
            dkim_success_rate: p(x.dkim_rate),
            dmarc_success_rate: p(x.dmarc_rate),
            tls_rate: p(x.tls_rate),
            delivery_error_rate: p(x.delivery_error_rate),
            reject_rate: p(x.reject_rate),
            temp_fail_rate: p(x.temp_fail_rate),
        },
        enough_volume: !x.is_empty(),
        stats: x,
    }
}

async fn data(st: &WebState) -> Result<GmailBody, WebError> {
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
            for name in names {
                let last_read: Option<LastRead> =
                    store::get_state(c, &store::StateKey::PostmasterRead(name.clone()))?;
                feeds.push(GmailFeed { name, last_read });
            }
            Ok((out, store::postmaster_compliance(c)?, feeds))
        })
        .await?;
    let domains = domains
        .into_iter()
        .map(|(d, days)| {
            let recent: Vec<_> = days
                .iter()
                .filter(|x| x.day >= stand_since)
                .cloned()
                .collect();
            let stand = standing(&d, &recent);
            let comp = compliance.iter().find(|c| c.domain == d);
            GmailDomain {
                text: stand.as_ref().map(|s| s.text()).unwrap_or_else(|| {
                    format!("{d}: no Gmail spam rate lately (not enough volume)")
                }),
                spam_rate: stand.map(|s| SpamRateView {
                    text: s.text(),
                    level: s.level,
                    rate: s.rate,
                    percent: percent(s.rate),
                    day: s.day,
                }),
                compliance: comp.map(|c| c.compliance.clone()),
                needs_work: comp
                    .map(|c| {
                        c.compliance
                            .needs_work()
                            .into_iter()
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
                compliance_at: comp.map(|c| c.fetched_at),
                days: days.into_iter().rev().map(day_view).collect(),
                domain: d,
            }
        })
        .collect();
    Ok(GmailBody {
        feeds,
        thresholds: Thresholds {
            warn: SPAM_RATE_WARN,
            critical: SPAM_RATE_CRITICAL,
            source: "https://support.google.com/mail/answer/81126".into(),
        },
        domains,
    })
}

/// `GET /gmail`.
pub(super) async fn page(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let v = data(&st).await?;
    render::render(&st, "gmail.html", minijinja::Value::from_serialize(&v))
}

/// What Gmail thinks of our domains, from Google Postmaster Tools: each
/// domain's spam-rate standing against Google's 0.1 % and 0.3 %, its
/// compliance with the sender requirements and its daily figures; a day
/// without a figure is "not enough volume" (`null`), never 0.
#[utoipa::path(get, path = "/api/v1/gmail", tag = "mail", operation_id = "gmail",
    responses((status = 200, description = "Each domain's Gmail standing, compliance and days", body = GmailBody),
        (status = "4XX", description = "Refused", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed", body = super::problem::Problem, content_type = "application/problem+json")))]
pub(super) async fn api(State(st): State<Arc<WebState>>) -> Result<Json<GmailBody>, WebError> {
    Ok(Json(data(&st).await?))
}
