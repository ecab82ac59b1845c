//! The IPs that really send (`/senders`, `/api/v1/senders`): every source IP
//! DMARC reports show passing for a monitored domain with its volume and
//! standing ("sending for example.com, not monitored"), the share of
//! yesterday's mail that left from listed IPs, and the reports each feed
//! rejected, by reason. Remote text (org names) is data: templates escape it.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};

use super::{render, WebError, WebState};
use crate::feeds::senders::{self, day_of};
use crate::store;

async fn data(st: &WebState) -> Result<serde_json::Value, WebError> {
    let cfg = st.live.snapshot().cfg;
    let at = crate::time::now();
    let since = senders::window_start(&cfg, at);
    let yesterday = day_of(at - 86_400);
    let y2 = yesterday.clone();
    let since_snds = since.clone();
    let (seen, volume, listed, rejects, recent, snds_seen) = st
        .db
        .read(move |c| {
            Ok((
                store::dmarc_senders(c, &since)?,
                store::dmarc_day_volume(c, &y2)?,
                store::listed_pairs(c)?,
                store::feed_reject_counts(c)?,
                store::feed_rejects(c, 50)?,
                store::snds_senders(c, &since_snds)?,
            ))
        })
        .await?;
    let list = senders::senders(&cfg, seen);
    let share = senders::listed_share(&yesterday, &volume, &listed);
    Ok(serde_json::json!({
        "senders": list,
        "not_monitored": list.iter().filter(|s| s.status == senders::SenderStatus::NotMonitored).count(),
        "listed_share": share,
        "rejected": rejects,
        "recent_rejects": recent,
        "snds": super::snds::senders(&cfg, snds_seen),
        "feeds": cfg.feeds.iter().map(|f| &f.name).chain(cfg.snds.iter().map(|f| &f.name)).collect::<Vec<_>>(),
        "discover": cfg.discover.from.iter().map(|f| format!("{f:?}").to_lowercase()).collect::<Vec<_>>(),
    }))
}

/// `GET /senders`.
pub(super) async fn page(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let v = data(&st).await?;
    render::render(&st, "senders.html", minijinja::Value::from_serialize(&v))
}

/// `GET /api/v1/senders`.
pub(super) async fn api(
    State(st): State<Arc<WebState>>,
) -> Result<Json<serde_json::Value>, WebError> {
    Ok(Json(data(&st).await?))
}

/// The overview's line about mail from listed IPs (and senders not monitored); `None` without feeds.
pub(super) async fn overview_line(st: &WebState) -> Result<Option<String>, WebError> {
    if st.live.snapshot().cfg.feeds.is_empty() {
        return Ok(None);
    }
    let v = data(st).await?;
    let mut line = v["listed_share"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let n = v["not_monitored"].as_u64().unwrap_or(0);
    if n > 0 {
        line.push_str(&format!("; {n} sending IP(s) not monitored"));
    }
    Ok(Some(line))
}

fn internal(e: prometheus::Error) -> WebError {
    WebError::Internal(Box::new(e))
}

/// The feeds' series for `/metrics`: the share of yesterday's mail from listed
/// IPs, senders not monitored, and rejected reports by feed and reason.
pub(super) async fn metrics(st: &WebState, reg: &Registry) -> Result<(), WebError> {
    if st.live.snapshot().cfg.feeds.is_empty() {
        return Ok(());
    }
    let v = data(st).await?;
    let share = GaugeVec::new(
        Opts::new(
            "rblwatch_mail_from_listed_ips_ratio",
            "Share (0 to 1) of yesterday's mail (DMARC reports, passed) that left from IPs listed now; absent when no report covers the day.",
        ),
        &[],
    )
    .map_err(internal)?;
    reg.register(Box::new(share.clone())).map_err(internal)?;
    if let Some(p) = v["listed_share"]["percent"].as_f64() {
        share.with_label_values(&[] as &[&str]).set(p / 100.0);
    }
    let unmonitored = IntGaugeVec::new(
        Opts::new(
            "rblwatch_unmonitored_senders",
            "IPs DMARC passes for a monitored domain that no target covers.",
        ),
        &[],
    )
    .map_err(internal)?;
    reg.register(Box::new(unmonitored.clone()))
        .map_err(internal)?;
    unmonitored
        .with_label_values(&[] as &[&str])
        .set(v["not_monitored"].as_i64().unwrap_or(0));
    let rejected = IntGaugeVec::new(
        Opts::new(
            "rblwatch_feed_rejected_reports",
            "Report mails and reports a feed rejected (stored), by reason: no_report, oversized, dtd, malformed, invalid, duplicate.",
        ),
        &["feed", "reason"],
    )
    .map_err(internal)?;
    reg.register(Box::new(rejected.clone())).map_err(internal)?;
    for r in v["rejected"].as_array().into_iter().flatten() {
        rejected
            .with_label_values(&[
                r["feed"].as_str().unwrap_or(""),
                r["reason"].as_str().unwrap_or(""),
            ])
            .set(r["count"].as_i64().unwrap_or(0));
    }
    Ok(())
}
