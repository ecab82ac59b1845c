//! Microsoft SNDS on the target page: whether SNDS marks the IP blocked or
//! red (Microsoft refuses its mail, whatever the lists say), its days as
//! SNDS reports them (a fetched day without data is said as such, never
//! zero), and its trap hits and complaint rates charted. Remote text (the
//! reason, HELO, MAIL FROM) is data: the template escapes it.

use std::net::IpAddr;

use serde::Serialize;

use super::{svg, WebError, WebState};
use crate::feeds::senders::SenderStatus;
use crate::feeds::snds::{IpStatus, Refusal};
use crate::store::{self, SndsDay};

/// Days of SNDS history shown.
const DAYS: i64 = 30;

/// The target page's SNDS section.
#[derive(Debug, Serialize)]
pub(super) struct SndsView {
    /// "Microsoft refuses …" with the evidence, when SNDS says it is blocked or red.
    refused: Option<String>,
    /// The IP status export's ranges that hold the IP.
    status: Vec<IpStatus>,
    /// Fetched days, newest first (`row` absent: no data that day).
    days: Vec<SndsDay>,
    /// Trap hits and complaint rates (SVG; the page's, not the API's).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(super) charts: String,
}

fn noon_of(day: &str) -> Option<i64> {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(12, 0, 0)
        .map(|d| d.and_utc().timestamp())
}

/// The SNDS section for an IP target; `None` without an SNDS feed or for a domain.
pub(super) async fn for_target(st: &WebState, ip: IpAddr) -> Result<Option<SndsView>, WebError> {
    if st.live.snapshot().cfg.snds.is_empty() {
        return Ok(None);
    }
    let at = crate::time::now();
    let since = crate::feeds::senders::day_of(at - DAYS * 86_400);
    let red_since = crate::feeds::senders::day_of(at - crate::feeds::snds::RED_DAYS * 86_400);
    let (status, mut days, refusals) = st
        .db
        .read(move |c| {
            Ok((
                store::snds_status(c)?,
                store::snds_history(c, ip, &since)?,
                store::snds_refusals(c, &red_since)?,
            ))
        })
        .await?;
    let status: Vec<IpStatus> = status.into_iter().filter(|s| s.contains(ip)).collect();
    let ip_s = ip.to_string();
    let mine: Vec<&Refusal> = refusals
        .iter()
        .filter(|r| r.ip == ip_s || status.iter().any(|s| s.blocked && s.range() == r.ip))
        .collect();
    let refused = (!mine.is_empty()).then(|| {
        format!(
            "Microsoft refuses mail from {ip}: {}",
            mine.iter()
                .map(|r| r.evidence())
                .collect::<Vec<_>>()
                .join("; ")
        )
    });
    let mut traps = Vec::new();
    let mut rates = Vec::new();
    for d in &days {
        let (Some(r), Some(t)) = (&d.row, noon_of(&d.day)) else {
            continue;
        };
        traps.push((t, r.trap_hits as f64));
        if let Some(c) = &r.complaint {
            rates.push((t, c.percent));
        }
    }
    let (from, until) = (at - DAYS * 86_400, at);
    let mut charts = String::new();
    if !traps.is_empty() {
        charts.push_str(&svg::line_chart(
            &[svg::Series {
                label: "trap hits",
                points: &traps,
                threshold: None,
            }],
            "trap hits",
            from,
            until,
            &[],
        ));
        // SNDS says "< 0.1%" for low rates: charted at the bound
        charts.push_str(&svg::line_chart(
            &[svg::Series {
                label: "complaint rate",
                points: &rates,
                threshold: Some(0.3),
            }],
            "% complaints",
            from,
            until,
            &[],
        ));
    }
    days.reverse();
    Ok(Some(SndsView {
        refused,
        status,
        days,
        charts,
    }))
}

/// One IP SNDS saw sending (`/api/v1/senders` under `snds`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SndsSender {
    ip: String,
    /// Recipients in the window (SNDS's RCPT count summed).
    recipients: u64,
    /// The newest day SNDS reported it (`YYYY-MM-DD`).
    last_day: String,
    /// The domain of SNDS's sample MAIL FROM (empty when it gave none).
    domain: String,
    status: SenderStatus,
    /// For people: "sending to Microsoft, not monitored".
    text: String,
}

/// The IPs SNDS saw sending in the `[discover]` window, each with its
/// standing like DMARC's senders (`/senders`, `/api/v1/senders` under `snds`).
pub(super) fn senders(
    cfg: &crate::config::Config,
    seen: Vec<(String, u64, String, String)>,
) -> Vec<SndsSender> {
    seen.into_iter()
        .filter_map(|(ip, recipients, last_day, domain)| {
            let addr: IpAddr = ip.parse().ok()?;
            let t = crate::target::Target::Ip(crate::target::normalise_ip(addr));
            let covering = cfg.targets.iter().find(|c| c.spec.contains(&t));
            let (status, text) = match covering {
                Some(c) if c.discovered.is_some() => (
                    SenderStatus::Discovered,
                    format!(
                        "sending to Microsoft, swept (discovered from {})",
                        c.discovered.clone().unwrap_or_default()
                    ),
                ),
                Some(_) => (
                    SenderStatus::Monitored,
                    "sending to Microsoft, monitored".to_string(),
                ),
                None => (
                    SenderStatus::NotMonitored,
                    "sending to Microsoft, not monitored".to_string(),
                ),
            };
            Some(SndsSender {
                ip,
                recipients,
                last_day,
                domain,
                status,
                text,
            })
        })
        .collect()
}

fn internal(e: prometheus::Error) -> WebError {
    WebError::Internal(Box::new(e))
}

/// SNDS's series for `/metrics`: IPs by their newest day's filter result,
/// blocked ranges, and the trap hits of those days. Absent without an SNDS feed.
pub(super) async fn metrics(st: &WebState, reg: &prometheus::Registry) -> Result<(), WebError> {
    use prometheus::{IntGaugeVec, Opts};
    if st.live.snapshot().cfg.snds.is_empty() {
        return Ok(());
    }
    let since =
        crate::feeds::senders::day_of(crate::time::now() - crate::feeds::snds::RED_DAYS * 86_400);
    let (latest, status) = st
        .db
        .read(move |c| Ok((store::snds_latest(c, &since)?, store::snds_status(c)?)))
        .await?;
    let gauge = |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, WebError> {
        let g = IntGaugeVec::new(Opts::new(name, help), labels).map_err(internal)?;
        reg.register(Box::new(g.clone())).map_err(internal)?;
        Ok(g)
    };
    let ips = gauge(
        "rblwatch_snds_ips",
        "IPs in Microsoft SNDS by the filter result of their newest day (GREEN, YELLOW, RED).",
        &["filter"],
    )?;
    for f in ["GREEN", "YELLOW", "RED"] {
        let n = latest
            .iter()
            .filter(|(_, r)| r.filter.as_str() == f)
            .count();
        ips.with_label_values(&[f]).set(n as i64);
    }
    gauge(
        "rblwatch_snds_blocked_ranges",
        "Ranges the SNDS IP status export marks blocked.",
        &[],
    )?
    .with_label_values(&[] as &[&str])
    .set(status.iter().filter(|s| s.blocked).count() as i64);
    gauge(
        "rblwatch_snds_trap_hits",
        "Spam trap hits SNDS reports for the IPs' newest days.",
        &[],
    )?
    .with_label_values(&[] as &[&str])
    .set(latest.iter().map(|(_, r)| r.trap_hits as i64).sum());
    Ok(())
}
