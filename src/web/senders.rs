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
use serde::Serialize;
use utoipa::ToSchema;

use super::{render, WebError, WebState};
use crate::feeds::senders::{self, day_of};
use crate::store;

/// The IPs that send, as `/api/v1/senders` answers (and `/senders` renders).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SendersBody {
    /// IPs DMARC reports show passing for a monitored domain in the `[discover]` window, most mail first.
    senders: Vec<senders::Sender>,
    /// How many of them no target covers.
    not_monitored: u64,
    /// How much of yesterday's mail left from IPs listed now.
    listed_share: senders::ListedShare,
    /// Rejected report mails and reports, by feed and reason.
    rejected: Vec<store::FeedRejectCount>,
    /// The latest rejections, newest first.
    recent_rejects: Vec<store::FeedReject>,
    /// IPs Microsoft SNDS saw sending in the window.
    snds: Vec<super::snds::SndsSender>,
    /// The report and SNDS feeds configured.
    feeds: Vec<String>,
    /// Where `[discover]` adds sending IPs from (`dmarc`, `snds`).
    discover: Vec<String>,
}

async fn data(st: &WebState) -> Result<SendersBody, WebError> {
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
    Ok(SendersBody {
        not_monitored: list
            .iter()
            .filter(|s| s.status == senders::SenderStatus::NotMonitored)
            .count() as u64,
        senders: list,
        listed_share: share,
        rejected: rejects,
        recent_rejects: recent,
        snds: super::snds::senders(&cfg, snds_seen),
        feeds: cfg
            .feeds
            .iter()
            .map(|f| &f.name)
            .chain(cfg.snds.iter().map(|f| &f.name))
            .cloned()
            .collect(),
        discover: cfg
            .discover
            .from
            .iter()
            .map(|f| format!("{f:?}").to_lowercase())
            .collect(),
    })
}

/// `GET /senders`.
pub(super) async fn page(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let v = data(&st).await?;
    render::render(&st, "senders.html", minijinja::Value::from_serialize(&v))
}

/// The IPs that really send: every source IP DMARC reports show passing
/// for a monitored domain with its volume and standing (monitored,
/// discovered, not monitored), the share of yesterday's mail from listed
/// IPs, the IPs Microsoft SNDS saw sending, and the reports the feeds rejected.
#[utoipa::path(get, path = "/api/v1/senders", tag = "mail", operation_id = "senders",
    responses((status = 200, description = "Sending IPs, the listed share and rejected reports", body = SendersBody),
        (status = "4XX", description = "Refused", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed", body = super::problem::Problem, content_type = "application/problem+json")))]
pub(super) async fn api(State(st): State<Arc<WebState>>) -> Result<Json<SendersBody>, WebError> {
    Ok(Json(data(&st).await?))
}

/// The overview's line about mail from listed IPs (and senders not monitored); `None` without feeds.
pub(super) async fn overview_line(st: &WebState) -> Result<Option<String>, WebError> {
    if st.live.snapshot().cfg.feeds.is_empty() {
        return Ok(None);
    }
    let v = data(st).await?;
    let mut line = v.listed_share.text;
    let n = v.not_monitored;
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
    if let Some(p) = v.listed_share.percent {
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
        .set(v.not_monitored as i64);
    let rejected = IntGaugeVec::new(
        Opts::new(
            "rblwatch_feed_rejected_reports",
            "Report mails and reports a feed rejected (stored), by reason: no_report, oversized, dtd, malformed, invalid, duplicate.",
        ),
        &["feed", "reason"],
    )
    .map_err(internal)?;
    reg.register(Box::new(rejected.clone())).map_err(internal)?;
    for r in &v.rejected {
        rejected
            .with_label_values(&[r.feed.as_str(), r.reason.as_str()])
            .set(r.count as i64);
    }
    Ok(())
}
