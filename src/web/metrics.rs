//! Prometheus `/metrics`. One series per *listed* (target, list) pair and per
//! target with listings, never one per clear pair: 16,384 targets x 40 lists
//! must not become 655,360 series.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{WebError, WebState};
use crate::store;

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) async fn metrics(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let rt = st.live.snapshot();
    let (pairs, health, last, sweeps, mail, probes, hooks, alerts) = st
        .db
        .read(|c| {
            Ok((
                store::load_pairs(c)?,
                store::load_health(c)?,
                store::last_sweep(c)?,
                store::counts(c, "sweeps", "status", "'all'")?,
                store::latest_samples(c)?,
                store::latest_probes(c)?,
                store::counts(c, "hook_runs", "hook", "status")?,
                store::counts(c, "alert_outbox", "channel", "status")?,
            ))
        })
        .await?;
    let mut s = String::with_capacity(4096 + pairs.len() * 80);
    s.push_str("# HELP rblwatch_listed 1 for each (target, list) pair that is listed (confirmed).\n# TYPE rblwatch_listed gauge\n");
    let mut per_target: std::collections::BTreeMap<&str, u64> = Default::default();
    for p in pairs.iter().filter(|p| p.state.is_listed()) {
        let _ = writeln!(
            s,
            "rblwatch_listed{{target=\"{}\",list=\"{}\"}} 1",
            label(&p.target),
            label(&p.list)
        );
        *per_target.entry(p.target.as_str()).or_default() += 1;
    }
    s.push_str("# HELP rblwatch_target_listings Number of lists listing the target (targets with at least one listing).\n# TYPE rblwatch_target_listings gauge\n");
    for (t, n) in &per_target {
        let _ = writeln!(s, "rblwatch_target_listings{{target=\"{}\"}} {n}", label(t));
    }
    s.push_str(
        "# HELP rblwatch_listings Total confirmed listings.\n# TYPE rblwatch_listings gauge\n",
    );
    let _ = writeln!(s, "rblwatch_listings {}", per_target.values().sum::<u64>());
    s.push_str("# HELP rblwatch_list_healthy 1 when the list passed its RFC 5782 test points.\n# TYPE rblwatch_list_healthy gauge\n");
    s.push_str("# HELP rblwatch_list_queries_total A queries sent to the list since start.\n# TYPE rblwatch_list_queries_total counter\n");
    s.push_str("# HELP rblwatch_list_errors_total Answers that were list errors (error codes, REFUSED, bad answers).\n# TYPE rblwatch_list_errors_total counter\n");
    s.push_str("# HELP rblwatch_list_unknown_total Queries without a usable answer (timeouts, SERVFAIL).\n# TYPE rblwatch_list_unknown_total counter\n");
    for l in rt.engine.lists() {
        let id = label(&l.def.id);
        let h = health.get(&l.def.id);
        let _ = writeln!(
            s,
            "rblwatch_list_healthy{{list=\"{id}\",health=\"{}\"}} {}",
            h.map_or("unchecked", |h| h.name()),
            u8::from(h.is_some_and(|h| h.is_healthy()))
        );
        let _ = writeln!(
            s,
            "rblwatch_list_queries_total{{list=\"{id}\"}} {}",
            l.counters.queries.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "rblwatch_list_errors_total{{list=\"{id}\"}} {}",
            l.counters.errors.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "rblwatch_list_unknown_total{{list=\"{id}\"}} {}",
            l.counters.unknown.load(Relaxed)
        );
    }
    s.push_str(
        "# HELP rblwatch_sweeps_total Sweeps by outcome.\n# TYPE rblwatch_sweeps_total counter\n",
    );
    for (status, _, n) in &sweeps {
        let _ = writeln!(
            s,
            "rblwatch_sweeps_total{{status=\"{}\"}} {n}",
            label(status)
        );
    }
    s.push_str("# HELP rblwatch_last_sweep_duration_seconds Duration of the last finished sweep.\n# TYPE rblwatch_last_sweep_duration_seconds gauge\n");
    s.push_str("# HELP rblwatch_last_sweep_timestamp_seconds When the last sweep finished.\n# TYPE rblwatch_last_sweep_timestamp_seconds gauge\n");
    if let Some(l) = &last {
        let _ = writeln!(
            s,
            "rblwatch_last_sweep_duration_seconds {}",
            l.duration_ms.unwrap_or(0) as f64 / 1000.0
        );
        let _ = writeln!(
            s,
            "rblwatch_last_sweep_timestamp_seconds {}",
            l.finished_at.unwrap_or(l.started_at)
        );
    }
    s.push_str("# HELP rblwatch_mail_metric Latest value of each mail telemetry metric.\n# TYPE rblwatch_mail_metric gauge\n");
    for (src, metric, _, v) in &mail {
        let _ = writeln!(
            s,
            "rblwatch_mail_metric{{source=\"{}\",metric=\"{}\"}} {v}",
            label(src),
            label(metric)
        );
    }
    s.push_str("# HELP rblwatch_mail_source_failures_total Mail source reads that failed since start.\n# TYPE rblwatch_mail_source_failures_total counter\n");
    let _ = writeln!(
        s,
        "rblwatch_mail_source_failures_total {}",
        st.live.source_failures()
    );
    s.push_str("# HELP rblwatch_backscatter_vulnerable 1 when the last probe found the server accepting unknown recipients.\n# TYPE rblwatch_backscatter_vulnerable gauge\n");
    for p in &probes {
        let _ = writeln!(
            s,
            "rblwatch_backscatter_vulnerable{{domain=\"{}\",server=\"{}\"}} {}",
            label(p["domain"].as_str().unwrap_or("")),
            label(p["server"].as_str().unwrap_or("")),
            u8::from(p["verdict"] == "accepts-unknown")
        );
    }
    s.push_str("# HELP rblwatch_hook_runs_total Hook runs by hook and status.\n# TYPE rblwatch_hook_runs_total counter\n");
    for (hook, status, n) in &hooks {
        let _ = writeln!(
            s,
            "rblwatch_hook_runs_total{{hook=\"{}\",status=\"{}\"}} {n}",
            label(hook),
            label(status)
        );
    }
    s.push_str("# HELP rblwatch_alert_deliveries_total Alert messages by channel and status.\n# TYPE rblwatch_alert_deliveries_total counter\n");
    for (ch, status, n) in &alerts {
        let _ = writeln!(
            s,
            "rblwatch_alert_deliveries_total{{channel=\"{}\",status=\"{}\"}} {n}",
            label(ch),
            label(status)
        );
    }
    impact_metrics(&st, &mut s).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s,
    )
        .into_response())
}

/// The joined verdict: one series per receiver that refused mail in the
/// window and per listing receivers cite (bounded by what happened, not by
/// targets x lists), and the audits' findings.
async fn impact_metrics(st: &WebState, s: &mut String) -> Result<(), WebError> {
    let (impact, audits) = st
        .db
        .read(|c| Ok((super::impact::read_assessment(c)?, store::latest_audits(c)?)))
        .await?;
    s.push_str("# HELP rblwatch_receiver_refused Deliveries a receiver refused for reasons about us within the impact window.
# TYPE rblwatch_receiver_refused gauge
");
    s.push_str(
        "# HELP rblwatch_receiver_rejecting 1 while the receiver refuses more than the threshold.
# TYPE rblwatch_receiver_rejecting gauge
",
    );
    s.push_str("# HELP rblwatch_listing_rejecting 1 for each listing a receiver cites in its refusals (impact: rejecting).
# TYPE rblwatch_listing_rejecting gauge
");
    s.push_str(
        "# HELP rblwatch_backscatter_source 1 for each target that is a backscatter source.
# TYPE rblwatch_backscatter_source gauge
",
    );
    if let Some(a) = &impact {
        for r in &a.receivers {
            for (outcome, n) in [("rejected", r.rejected), ("deferred", r.deferred)] {
                let _ = writeln!(
                    s,
                    "rblwatch_receiver_refused{{receiver=\"{}\",outcome=\"{outcome}\"}} {n}",
                    label(&r.id)
                );
            }
            let _ = writeln!(
                s,
                "rblwatch_receiver_rejecting{{receiver=\"{}\"}} {}",
                label(&r.id),
                u8::from(r.rejecting)
            );
        }
        for l in a
            .listings
            .iter()
            .filter(|l| l.impact == crate::impact::ImpactState::Rejecting)
        {
            let _ = writeln!(
                s,
                "rblwatch_listing_rejecting{{target=\"{}\",list=\"{}\"}} 1",
                label(&l.target),
                label(&l.list)
            );
        }
        for b in &a.backscatter {
            let _ = writeln!(
                s,
                "rblwatch_backscatter_source{{target=\"{}\"}} 1",
                label(&b.target)
            );
        }
    }
    s.push_str("# HELP rblwatch_audit_findings Findings of each posture audit by severity (absent when it could not run).
# TYPE rblwatch_audit_findings gauge
");
    for a in &audits {
        if a["ok"] != true {
            continue;
        }
        let name = a["name"].as_str().unwrap_or("");
        for sev in ["critical", "warning", "info"] {
            let n = a["findings"]
                .as_array()
                .map_or(0, |f| f.iter().filter(|f| f["severity"] == sev).count());
            let _ = writeln!(
                s,
                "rblwatch_audit_findings{{audit=\"{}\",severity=\"{sev}\"}} {n}",
                label(name)
            );
        }
    }
    Ok(())
}
