//! Prometheus `/metrics`, through the `prometheus` crate: each family is
//! written once with its HELP and TYPE (families grouped, as the exposition
//! format requires), label values escaped by the encoder. (Not
//! `prometheus-client`: it writes only OpenMetrics, whose counter families drop
//! the `_total` suffix from HELP and TYPE, which the text-format parser of
//! Debian 12's `promtool check metrics` reports as untyped series.)
//!
//! Types follow what the numbers do. Counters only go up within a process:
//! queries sent, sweeps, answers by verdict, hook runs, alert deliveries,
//! source failures and the mail logs' counts (NDRs, refusals by reason, …).
//! The tables behind them are pruned by retention, so their counters are not
//! row counts: a [`Tally`] counts each finished row once as it appears (and
//! never un-counts it); a log source's counts per read are summed that way
//! from its stored samples. Everything that describes the present (listings,
//! list health, the last sweep, queues, probe results, open delisting
//! requests) is a gauge, and a state is a state set: every state a series,
//! 1 for the current one, so a change of state never starts a new series.
//! One family per meaning, its unit in its name (issue 22).
//!
//! One series per *listed* (target, list) pair and per target with listings,
//! never one per clear pair: 16,384 targets x 40 lists must not become
//! 655,360 series.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use rusqlite::Connection;

use super::{WebError, WebState};
use crate::engine::SweepStatus;
use crate::event::Severity;
use crate::runs::{HookStatus, OutboxStatus};
use crate::store;

/// Counts the finished rows of a table once each, from the process start on,
/// so the counter only goes up although retention deletes old rows.
///
/// Rows are read above a watermark: every row at or below it has been counted
/// or was there before the start; rows above it already counted are
/// remembered until the watermark passes them. A row still in an open status
/// (`running`, `pending`) holds the watermark back until it finishes.
#[derive(Debug)]
pub(crate) struct Tally {
    table: &'static str,
    /// SQL expressions of the labels.
    labels: &'static [&'static str],
    /// SQL expressions summed besides the row count.
    sums: &'static [&'static str],
    /// Statuses of unfinished rows (the status is the last label).
    open: &'static [&'static str],
    state: Mutex<TallyState>,
}

#[derive(Debug, Default)]
struct TallyState {
    watermark: i64,
    counted: BTreeSet<i64>,
    /// Labels → (rows, sums).
    totals: BTreeMap<Vec<String>, (u64, Vec<u64>)>,
}

impl Tally {
    const fn new(
        table: &'static str,
        labels: &'static [&'static str],
        sums: &'static [&'static str],
        open: &'static [&'static str],
    ) -> Self {
        Tally {
            table,
            labels,
            sums,
            open,
            state: Mutex::new(TallyState {
                watermark: 0,
                counted: BTreeSet::new(),
                totals: BTreeMap::new(),
            }),
        }
    }

    /// Starts counting after the rows already in the table.
    fn start_at_current(&self, c: &Connection) {
        let max: i64 = c
            .query_row(
                &format!("SELECT COALESCE(MAX(id), 0) FROM {}", self.table),
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        if let Ok(mut s) = self.state.lock() {
            s.watermark = max;
        }
    }

    /// Counts the rows that finished since the last call; returns the totals.
    fn update(&self, c: &Connection) -> store::Result<Totals> {
        let mut s = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let cols: Vec<String> = self
            .labels
            .iter()
            .map(|l| format!("CAST({l} AS TEXT)"))
            .chain(self.sums.iter().map(|v| format!("COALESCE({v}, 0)")))
            .collect();
        let mut st = c.prepare_cached(&format!(
            "SELECT id, {} FROM {} WHERE id > ?1 ORDER BY id LIMIT {TALLY_PAGE}",
            cols.join(", "),
            self.table
        ))?;
        let nl = self.labels.len();
        let ns = self.sums.len();
        let rows = st.query_map([s.watermark], |r| {
            let id: i64 = r.get(0)?;
            let mut labels = Vec::with_capacity(nl);
            for i in 0..nl {
                labels.push(r.get::<_, Option<String>>(1 + i)?.unwrap_or_default());
            }
            let mut sums = Vec::with_capacity(ns);
            for i in 0..ns {
                sums.push(r.get::<_, i64>(1 + nl + i)?.max(0) as u64);
            }
            Ok((id, labels, sums))
        })?;
        let mut first_open: Option<i64> = None;
        let mut last = s.watermark;
        let mut seen = BTreeSet::new();
        for row in rows {
            let (id, labels, sums) = row?;
            last = id;
            seen.insert(id);
            if s.counted.contains(&id) {
                continue;
            }
            if labels
                .last()
                .is_some_and(|st| self.open.contains(&st.as_str()))
            {
                first_open.get_or_insert(id);
                continue;
            }
            s.counted.insert(id);
            let e = s.totals.entry(labels).or_insert_with(|| (0, vec![0; ns]));
            e.0 += 1;
            for (t, v) in e.1.iter_mut().zip(sums) {
                *t = t.saturating_add(v); // a source may report huge figures
            }
        }
        let watermark = first_open.map_or(last, |id| id - 1);
        s.watermark = s.watermark.max(watermark);
        let w = s.watermark;
        // Rows counted but gone (deleted) are forgotten: SQLite may hand their id to a new row.
        // (When the page of rows was full, rows past it were not looked at.)
        let complete = seen.len() < TALLY_PAGE;
        s.counted
            .retain(|id| *id > w && (seen.contains(id) || (!complete && *id > last)));
        Ok(s.totals.clone())
    }
}

/// Rows a tally reads per scrape (more are read at the next).
const TALLY_PAGE: usize = 100_000;

/// Statuses of unfinished rows, as their sets spell them.
const SWEEP_OPEN: &[&str] = &[SweepStatus::Running.as_str()];
const HOOK_OPEN: &[&str] = &[HookStatus::Running.as_str()];
const OUTBOX_OPEN: &[&str] = &[OutboxStatus::Pending.as_str()];

/// The tallies behind `/metrics`' counters of pruned tables.
#[derive(Debug)]
pub(crate) struct Tallies {
    sweeps: Tally,
    hook_runs: Tally,
    deliveries: Tally,
    /// The mail figures of every read: log sources' counts per read add up to counters.
    samples: Tally,
}

impl Tallies {
    /// Tallies that count from now on (rows already stored are the past of another process).
    pub(crate) fn starting_now(db: &std::path::Path) -> Self {
        let t = Tallies {
            sweeps: Tally::new(
                "sweeps",
                &["status"],
                &["listed", "clear", "errors", "unknown"],
                SWEEP_OPEN,
            ),
            hook_runs: Tally::new("hook_runs", &["hook", "status"], &[], HOOK_OPEN),
            deliveries: Tally::new("alert_outbox", &["channel", "status"], &[], OUTBOX_OPEN),
            // counts are whole numbers (stored as REAL)
            samples: Tally::new(
                "metric_samples",
                &["source", "metric"],
                &["CAST(ROUND(value) AS INTEGER)"],
                &[],
            ),
        };
        if let Ok(c) = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) {
            for x in [&t.sweeps, &t.hook_runs, &t.deliveries, &t.samples] {
                x.start_at_current(&c);
            }
        }
        t
    }
}

type Totals = BTreeMap<Vec<String>, (u64, Vec<u64>)>;

/// What one scrape reads from the database.
struct Read {
    /// The state the headline verdict is made from (the same snapshot the overview reads).
    snap: crate::status::StatusSnapshot,
    mail: Vec<(String, String, i64, f64)>,
    sweeps: Totals,
    hooks: Totals,
    deliveries: Totals,
    mail_counts: Totals,
    audits: Vec<store::StoredAudit>,
}

fn gauge(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec, WebError> {
    let g = GaugeVec::new(Opts::new(name, help), labels).map_err(internal)?;
    reg.register(Box::new(g.clone())).map_err(internal)?;
    Ok(g)
}

fn int_gauge(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, WebError> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).map_err(internal)?;
    reg.register(Box::new(g.clone())).map_err(internal)?;
    Ok(g)
}

fn counter(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, WebError> {
    let c = IntCounterVec::new(Opts::new(name, help), labels).map_err(internal)?;
    reg.register(Box::new(c.clone())).map_err(internal)?;
    Ok(c)
}

fn internal(e: prometheus::Error) -> WebError {
    WebError::Internal(Box::new(e))
}

// Label counts are fixed by the code, so a mismatch is a bug: reported as a 500, never a panic.
fn set_i(v: &IntGaugeVec, labels: &[&str], x: i64) -> Result<(), WebError> {
    v.get_metric_with_label_values(labels)
        .map_err(internal)?
        .set(x);
    Ok(())
}

fn set_f(v: &GaugeVec, labels: &[&str], x: f64) -> Result<(), WebError> {
    v.get_metric_with_label_values(labels)
        .map_err(internal)?
        .set(x);
    Ok(())
}

fn add(v: &IntCounterVec, labels: &[&str], x: u64) -> Result<(), WebError> {
    v.get_metric_with_label_values(labels)
        .map_err(internal)?
        .inc_by(x);
    Ok(())
}

/// The joined verdict: one series per receiver that refused mail in the
/// window and per listing receivers cite (bounded by what happened, not by
/// targets x lists), and the audits' findings.
fn impact_metrics(reg: &Registry, r: &Read) -> Result<(), WebError> {
    let refused = int_gauge(
        reg,
        "rblwatch_receiver_refused",
        "Deliveries a receiver refused for reasons about us within the impact window.",
        &["receiver", "outcome"],
    )?;
    let rejecting = int_gauge(
        reg,
        "rblwatch_receiver_rejecting",
        "1 while the receiver refuses more than the threshold.",
        &["receiver"],
    )?;
    let listing = int_gauge(
        reg,
        "rblwatch_listing_rejecting",
        "1 for each listing a receiver cites in its refusals (impact: rejecting).",
        &["target", "list"],
    )?;
    let backscatter = int_gauge(
        reg,
        "rblwatch_backscatter_source",
        "1 for each target that is a backscatter source.",
        &["target"],
    )?;
    if let Some(a) = &r.snap.assessment {
        for rc in &a.receivers {
            for (outcome, n) in [("rejected", rc.rejected), ("deferred", rc.deferred)] {
                set_i(&refused, &[&rc.id, outcome], n as i64)?;
            }
            set_i(&rejecting, &[&rc.id], i64::from(rc.rejecting))?;
        }
        for l in a
            .listings
            .iter()
            .filter(|l| l.impact == crate::impact::ImpactState::Rejecting)
        {
            set_i(&listing, &[&l.target, &l.list], 1)?;
        }
        for b in &a.backscatter {
            set_i(&backscatter, &[&b.target], 1)?;
        }
    }
    let findings = int_gauge(
        reg,
        "rblwatch_audit_findings",
        "Findings of each posture audit by severity (absent when it could not run).",
        &["audit", "severity"],
    )?;
    for a in r.audits.iter().map(|a| &a.report).filter(|a| a.ok) {
        for sev in [Severity::Critical, Severity::Warning, Severity::Info] {
            let n = a.findings.iter().filter(|f| f.severity == sev).count();
            set_i(&findings, &[&a.name, sev.as_str()], n as i64)?;
        }
    }
    Ok(())
}

/// The outbound ledger (issue 23): `rblwatch_sender_messages_total{source,class}`
/// (since the source's ledger state began: kept in the database, so it only
/// goes up), and while bursting only: `rblwatch_sender_account_messages{source,
/// origin,account}` (the window's messages) and
/// `rblwatch_sender_class_bursting{source,class}`. Cardinality is bounded by
/// the bursting accounts, never by every account.
fn account_metrics(reg: &Registry, r: &Read) -> Result<(), WebError> {
    let total = counter(
        reg,
        "rblwatch_sender_messages_total",
        "Outbound messages in the ledger by class (user, bounce, autoreply, report, forward).",
        &["source", "class"],
    )?;
    let account = int_gauge(
        reg,
        "rblwatch_sender_account_messages",
        "Messages in the window of each sending account while it bursts (absent otherwise).",
        &["source", "origin", "account"],
    )?;
    let class = int_gauge(
        reg,
        "rblwatch_sender_class_bursting",
        "1 for each class of automated mail that bursts (absent otherwise).",
        &["source", "class"],
    )?;
    for (src, s) in &r.snap.ledgers {
        for (c, st) in &s.classes {
            add(&total, &[src, c.as_str()], st.total)?;
            if st.bursting {
                set_i(&class, &[src, c.as_str()], 1)?;
            }
        }
        for a in s.accounts.values().filter(|a| a.bursting) {
            set_i(
                &account,
                &[src, a.origin.as_str(), &a.name],
                a.window().0 as i64,
            )?;
        }
    }
    Ok(())
}

/// Gmail's spam rate per Postmaster Tools domain (issue 24), from the status
/// snapshot: `rblwatch_gmail_spam_ratio{domain}`, the latest figure within the
/// standing window as a ratio (0 to 1), and `rblwatch_gmail_spam_ratio_known
/// {domain}`, 1 with a figure and 0 when Google gave none ("not enough
/// volume"). Without a figure there is no ratio sample at all, never a 0: an
/// alert on the ratio cannot mistake a quiet domain for a clean one, and one
/// on `_known == 0` can tell it.
fn gmail_metrics(
    reg: &Registry,
    gmail: &[Result<crate::feeds::postmaster::SpamStanding, String>],
) -> Result<(), WebError> {
    let ratio = gauge(
        reg,
        "rblwatch_gmail_spam_ratio",
        "Gmail's user-reported spam rate (0 to 1) of the domain's latest day with a figure in Google Postmaster Tools; absent when Google gave none (not enough volume). Google's limits: 0.001 recommended, 0.003 enforced.",
        &["domain"],
    )?;
    let known = int_gauge(
        reg,
        "rblwatch_gmail_spam_ratio_known",
        "1 when Google Postmaster Tools gave the domain a spam rate lately, 0 when it gave none (not enough volume).",
        &["domain"],
    )?;
    for g in gmail {
        match g {
            Ok(s) => {
                set_f(&ratio, &[&s.domain], s.rate)?;
                set_i(&known, &[&s.domain], 1)?;
            }
            Err(domain) => set_i(&known, &[domain], 0)?,
        }
    }
    Ok(())
}

/// Where a stored mail figure goes: one family per meaning, its unit in the
/// name, the figure's name split into labels where it carries one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MailFamily {
    /// The latest value (queue state): family and extra (label, value).
    Gauge(&'static str, Option<(&'static str, String)>),
    /// A log source's count per read, added up since start: family and extra labels.
    Counter(&'static str, Vec<(&'static str, String)>),
}

/// The gauge families of the queue figures, with their HELP.
const MAIL_GAUGES: [(&str, &str); 6] = [
    ("rblwatch_mail_queue_messages", "Messages in the mail queue at the source's last read."),
    ("rblwatch_mail_queue_bounce_messages", "Bounces (sender MAILER-DAEMON or <>) in the mail queue at the source's last read."),
    ("rblwatch_mail_queue_frozen_messages", "Frozen messages in Exim's queue at the source's last read."),
    ("rblwatch_mail_postfix_queue_messages", "Messages in each Postfix queue (active, deferred, hold, incoming, maildrop) at the source's last read."),
    ("rblwatch_mail_queue_oldest_age_seconds", "Age of the oldest queued message at the source's last read."),
    ("rblwatch_mail_source_value", "Latest value of a figure a command, http_json or prometheus source reports under its own name (its unit is the source's)."),
];

/// The counter families of the log sources' counts, with their HELP and labels past `source`.
const MAIL_COUNTERS: [(&str, &str, &[&str]); 6] = [
    ("rblwatch_mail_ndr_total", "Non-delivery notifications (bounces) the mail server generated, counted in its log since start.", &[]),
    ("rblwatch_mail_rcpt_rejected_unknown_total", "RCPT TO refused for unknown recipients, counted in the log since start.", &[]),
    ("rblwatch_mail_deferred_deliveries_total", "Delivery attempts deferred (status=deferred), counted in the log since start.", &[]),
    ("rblwatch_mail_bounced_recipients_total", "Recipients bounced (status=bounced), counted in the log since start.", &[]),
    ("rblwatch_mail_remote_deliveries_total", "Deliveries to remote servers that succeeded, counted in the log since start.", &[]),
    ("rblwatch_mail_refusals_total", "Deliveries remote servers refused, by outcome (rejected, deferred) and the reply's meaning (blocklist, reputation, …, other), counted in the log since start.", &["outcome", "reason"]),
];

/// The reasons of `rblwatch_mail_refusals_total`: every reply meaning and `other`.
fn refusal_reasons() -> impl Iterator<Item = &'static str> {
    use crate::mail::rejections::meaning_metric;
    crate::replies::ReplyMeaning::ALL
        .iter()
        .map(|m| meaning_metric(Some(*m)))
        .chain([meaning_metric(None)])
}

/// The family of a stored figure (pure): `log` says whether its source is a
/// log, whose figures are counts per read. Log figures of no known meaning
/// are not exported (there are none today).
fn mail_family(metric: &str, log: bool) -> Option<MailFamily> {
    use MailFamily::{Counter, Gauge};
    if log {
        let simple = match metric {
            "ndr_generated" => Some("rblwatch_mail_ndr_total"),
            "rcpt_rejected_unknown" => Some("rblwatch_mail_rcpt_rejected_unknown_total"),
            "deferred" => Some("rblwatch_mail_deferred_deliveries_total"),
            "bounced_recipients" => Some("rblwatch_mail_bounced_recipients_total"),
            "delivered_remote" => Some("rblwatch_mail_remote_deliveries_total"),
            _ => None,
        };
        if let Some(f) = simple {
            return Some(Counter(f, vec![]));
        }
        let (outcome, reason) = metric
            .strip_prefix("rejected_")
            .map(|r| ("rejected", r))
            .or_else(|| metric.strip_prefix("deferred_").map(|r| ("deferred", r)))?;
        let reason = refusal_reasons().find(|r| *r == reason)?;
        return Some(Counter(
            "rblwatch_mail_refusals_total",
            vec![("outcome", outcome.into()), ("reason", reason.into())],
        ));
    }
    Some(match metric {
        "queue_depth" => Gauge("rblwatch_mail_queue_messages", None),
        "queue_bounces" => Gauge("rblwatch_mail_queue_bounce_messages", None),
        "queue_frozen" => Gauge("rblwatch_mail_queue_frozen_messages", None),
        "queue_oldest_age_seconds" => Gauge("rblwatch_mail_queue_oldest_age_seconds", None),
        "queue_active" | "queue_deferred" | "queue_hold" | "queue_incoming" | "queue_maildrop" => {
            Gauge(
                "rblwatch_mail_postfix_queue_messages",
                Some(("queue", metric.trim_start_matches("queue_").into())),
            )
        }
        _ => Gauge(
            "rblwatch_mail_source_value",
            Some(("metric", metric.into())),
        ),
    })
}

/// Mail telemetry: queue figures as gauges, log counts as counters since
/// start, when each source was last read, and its failed reads.
fn mail_metrics(
    reg: &Registry,
    r: &Read,
    sources: &[crate::config::SourceConf],
    failed: &[(String, u64)],
) -> Result<(), WebError> {
    use crate::config::SourceKind;
    let is_log = |name: &str| {
        sources.iter().any(|s| {
            s.name == name
                && matches!(
                    s.kind,
                    SourceKind::PostfixLog { .. } | SourceKind::EximLog { .. }
                )
        })
    };
    let mut gauges = BTreeMap::new();
    for (name, help) in MAIL_GAUGES {
        let extra = match name {
            "rblwatch_mail_postfix_queue_messages" => &["source", "queue"][..],
            "rblwatch_mail_source_value" => &["source", "metric"][..],
            _ => &["source"][..],
        };
        gauges.insert(name, gauge(reg, name, help, extra)?);
    }
    let mut counters = BTreeMap::new();
    for (name, help, extra) in MAIL_COUNTERS {
        let labels: Vec<&str> = ["source"]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        counters.insert(name, counter(reg, name, help, &labels)?);
    }
    // a log source's counters start at 0, so the first counts are an increase
    for s in sources.iter().filter(|s| is_log(&s.name)) {
        for (name, _, extra) in MAIL_COUNTERS {
            let Some(c) = counters.get(name) else {
                continue;
            };
            if extra.is_empty() {
                add(c, &[&s.name], 0)?;
            } else {
                for outcome in ["rejected", "deferred"] {
                    for reason in refusal_reasons() {
                        add(c, &[&s.name, outcome, reason], 0)?;
                    }
                }
            }
        }
    }
    let last_read = int_gauge(
        reg,
        "rblwatch_mail_last_read_timestamp_seconds",
        "When the source was last read successfully (Unix time).",
        &["source"],
    )?;
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for (src, metric, at, v) in &r.mail {
        let e = last.entry(src.as_str()).or_insert(*at);
        *e = (*e).max(*at);
        // a log's latest figure is one read's count: its counter says more
        if let Some(MailFamily::Gauge(f, extra)) = mail_family(metric, is_log(src)) {
            if let Some(g) = gauges.get(f) {
                match &extra {
                    Some((_, v2)) => set_f(g, &[src, v2], *v)?,
                    None => set_f(g, &[src], *v)?,
                }
            }
        }
    }
    for (src, at) in &last {
        set_i(&last_read, &[src], *at)?;
    }
    for (labels, (_, sums)) in &r.mail_counts {
        let (Some(src), Some(metric), Some(n)) = (labels.first(), labels.get(1), sums.first())
        else {
            continue;
        };
        if !is_log(src) {
            continue;
        }
        if let Some(MailFamily::Counter(f, extra)) = mail_family(metric, true) {
            if let Some(c) = counters.get(f) {
                let l: Vec<&str> = std::iter::once(src.as_str())
                    .chain(extra.iter().map(|(_, v)| v.as_str()))
                    .collect();
                add(c, &l, *n)?;
            }
        }
    }
    let failures = counter(
        reg,
        "rblwatch_mail_source_failures_total",
        "Reads of the mail source that failed since start.",
        &["source"],
    )?;
    for s in sources {
        add(&failures, &[&s.name], 0)?;
    }
    for (src, n) in failed {
        add(&failures, &[src], *n)?;
    }
    Ok(())
}

/// `rblwatch_build_info`, `rblwatch_info` (what alert rules join for the
/// status page's address) and the `process_*` collector.
fn build_info(reg: &Registry, status_url: &str) -> Result<(), WebError> {
    let b = int_gauge(
        reg,
        "rblwatch_build_info",
        "1, labelled with the running build's version and platform.",
        &["version", "arch", "os"],
    )?;
    set_i(
        &b,
        &[
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            std::env::consts::OS,
        ],
        1,
    )?;
    let i = int_gauge(
        reg,
        "rblwatch_info",
        "1, labelled with the status page's address ([alerting] status_url; empty when unset) for alert rules to link to.",
        &["status_url"],
    )?;
    set_i(&i, &[status_url.trim_end_matches('/')], 1)?;
    // CPU, memory, open files and start time of the daemon (Linux /proc)
    reg.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))
    .map_err(internal)?;
    Ok(())
}

pub(super) async fn metrics(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let rt = st.live.snapshot();
    let tallies = st.clone();
    let r = st
        .db
        .read(move |c| {
            let t = &tallies.tallies;
            Ok(Read {
                snap: crate::status::StatusSnapshot::load(c, crate::time::now())?,
                mail: store::latest_samples(c)?,
                sweeps: t.sweeps.update(c)?,
                hooks: t.hook_runs.update(c)?,
                deliveries: t.deliveries.update(c)?,
                mail_counts: t.samples.update(c)?,
                audits: store::latest_audits(c)?,
            })
        })
        .await?;
    let reg = Registry::new();
    listing_metrics(&reg, &r)?;
    list_metrics(&reg, &r, &rt)?;
    sweep_metrics(&reg, &r)?;
    // mail telemetry and the backscatter probe
    mail_metrics(&reg, &r, &rt.cfg.sources, &st.live.source_failures())?;
    task_metrics(&reg, &st)?;
    probe_metrics(&reg, &r)?;
    verdict_metrics(&reg, &r, &rt, &st)?;
    delist_metrics(&reg, &r)?;
    action_metrics(&reg, &r)?;
    database_metrics(&reg, &st)?;
    impact_metrics(&reg, &r)?;
    account_metrics(&reg, &r)?;
    gmail_metrics(&reg, &r.snap.gmail)?;
    resolver_metrics(&reg, &st)?;
    build_info(&reg, &rt.cfg.actions.settings.status_url)?;
    super::senders::metrics(&st, &reg).await?;
    super::snds::metrics(&st, &reg).await?;

    let mut body = String::with_capacity(4096 + r.snap.pairs.len() * 80);
    prometheus::TextEncoder::new()
        .encode_utf8(&reg.gather(), &mut body)
        .map_err(internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// Listings: one series per listed pair and per target with listings, the
/// total, and the pairs that are not plainly clear by state.
fn listing_metrics(reg: &Registry, r: &Read) -> Result<(), WebError> {
    let none: &[&str] = &[];
    let listed = int_gauge(
        reg,
        "rblwatch_listed",
        "1 for each (target, list) pair that is listed (confirmed, or clearing but not yet confirmed clear).",
        &["target", "list"],
    )?;
    let mut per_target: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_state: BTreeMap<&str, i64> = BTreeMap::new();
    for p in &r.snap.pairs {
        *by_state.entry(p.state.name()).or_default() += 1;
        if p.state.is_listed() {
            set_i(&listed, &[&p.target, &p.list], 1)?;
            *per_target.entry(p.target.as_str()).or_default() += 1;
        }
    }
    let target_listings = int_gauge(
        reg,
        "rblwatch_target_listings",
        "Number of lists listing the target (only targets with at least one listing).",
        &["target"],
    )?;
    for (t, n) in &per_target {
        set_i(&target_listings, &[t], *n)?;
    }
    let total = int_gauge(
        reg,
        "rblwatch_listings",
        "Listed (target, list) pairs.",
        none,
    )?;
    set_i(&total, none, per_target.values().sum())?;
    let pairs = int_gauge(
        reg,
        "rblwatch_pairs",
        "(target, list) pairs that are not plainly clear, by state.",
        &["state"],
    )?;
    for s in ["suspected", "listed", "clearing"] {
        set_i(&pairs, &[s], by_state.get(s).copied().unwrap_or(0))?;
    }
    Ok(())
}

/// Lists: health now as a state set, and query counters since start (a
/// reload rebuilds the engine: a counter reset).
fn list_metrics(reg: &Registry, r: &Read, rt: &super::Snapshot) -> Result<(), WebError> {
    let health = int_gauge(
        reg,
        "rblwatch_list_health",
        "1 for the list's health state (healthy: it passed its RFC 5782 test points), 0 for every other state.",
        &["list", "state"],
    )?;
    let queries = counter(
        reg,
        "rblwatch_list_queries_total",
        "A queries sent to the list since start.",
        &["list"],
    )?;
    let errors = counter(
        reg,
        "rblwatch_list_errors_total",
        "Answers that were list errors (error codes, REFUSED, bad answers) since start.",
        &["list"],
    )?;
    let unknown = counter(
        reg,
        "rblwatch_list_unknown_total",
        "Queries without a usable answer (timeouts, SERVFAIL) since start.",
        &["list"],
    )?;
    let mut lists_by_health: BTreeMap<&str, i64> = BTreeMap::new();
    const LIST_HEALTH_STATES: [&str; 6] = [
        "healthy",
        "dead",
        "lists-everything",
        "blocked",
        "unreachable",
        "unchecked",
    ];
    for l in rt.engine.lists() {
        let id = l.def.id.as_str();
        let h = r.snap.health.get(id);
        let name = h.map_or("unchecked", |h| h.name());
        *lists_by_health.entry(name).or_default() += 1;
        // every state always present: a list changing failure mode changes values, not series
        for state in LIST_HEALTH_STATES {
            set_i(&health, &[id, state], i64::from(state == name))?;
        }
        add(&queries, &[id], l.counters.queries.load(Relaxed))?;
        add(&errors, &[id], l.counters.errors.load(Relaxed))?;
        add(&unknown, &[id], l.counters.unknown.load(Relaxed))?;
    }
    let lists = int_gauge(
        reg,
        "rblwatch_lists",
        "Lists in use, by health.",
        &["health"],
    )?;
    for h in LIST_HEALTH_STATES {
        set_i(&lists, &[h], lists_by_health.get(h).copied().unwrap_or(0))?;
    }
    Ok(())
}

/// Sweeps: finished sweeps and their answers since start, and the last
/// finished sweep's duration, end and answers.
fn sweep_metrics(reg: &Registry, r: &Read) -> Result<(), WebError> {
    let none: &[&str] = &[];
    let sweeps = counter(
        reg,
        "rblwatch_sweeps_total",
        "Sweeps finished since start, by outcome.",
        &["status"],
    )?;
    let answers = counter(
        reg,
        "rblwatch_sweep_answers_total",
        "Answers of the sweeps finished since start, by verdict.",
        &["verdict"],
    )?;
    const VERDICTS: [&str; 4] = ["listed", "clear", "error", "unknown"];
    for s in ["done", "abandoned"] {
        add(&sweeps, &[s], 0)?;
    }
    for v in VERDICTS {
        add(&answers, &[v], 0)?;
    }
    for (labels, (n, sums)) in &r.sweeps {
        let status = labels.first().map_or("", String::as_str);
        add(&sweeps, &[status], *n)?;
        if status == "done" {
            for (v, x) in VERDICTS.iter().zip(sums) {
                add(&answers, &[v], *x)?;
            }
        }
    }
    if let Some(l) = &r.snap.last_sweep {
        let d = gauge(
            reg,
            "rblwatch_last_sweep_duration_seconds",
            "Duration of the last finished sweep.",
            none,
        )?;
        set_f(&d, none, l.duration_ms.unwrap_or(0) as f64 / 1000.0)?;
        let at = int_gauge(
            reg,
            "rblwatch_last_sweep_timestamp_seconds",
            "When the last finished sweep ended (Unix time).",
            none,
        )?;
        set_i(&at, none, l.finished_at.unwrap_or(l.started_at))?;
        let lp = int_gauge(
            reg,
            "rblwatch_last_sweep_answers",
            "Answers of the last finished sweep, by verdict.",
            &["verdict"],
        )?;
        let c = &l.counts;
        for (v, n) in VERDICTS
            .iter()
            .zip([c.listed, c.clear, c.errors, c.unknown])
        {
            set_i(&lp, &[v], n)?;
        }
    }
    Ok(())
}

/// The daemon's supervised tasks and jobs: deaths since start, and how many
/// are down now.
fn task_metrics(reg: &Registry, st: &WebState) -> Result<(), WebError> {
    let none: &[&str] = &[];
    let deaths = counter(
        reg,
        "rblwatch_task_failures_total",
        "Supervised tasks (hooks, alerts, web) and jobs that died (panicked or stopped) since start.",
        &["task"],
    )?;
    for (task, n) in st.live.task_failures() {
        add(&deaths, &[&task], n)?;
    }
    let down = int_gauge(
        reg,
        "rblwatch_tasks_down",
        "Supervised tasks down now (waiting for their restart); /healthz fails meanwhile.",
        none,
    )?;
    set_i(&down, none, st.live.tasks_down().len() as i64)?;
    Ok(())
}

/// The backscatter probe: per probed server, whether it accepts mail for
/// unknown recipients and when it was last probed.
fn probe_metrics(reg: &Registry, r: &Read) -> Result<(), WebError> {
    let vulnerable = int_gauge(
        reg,
        "rblwatch_backscatter_vulnerable",
        "1 when the last probe found the server accepting mail for unknown recipients.",
        &["domain", "server"],
    )?;
    let probe_at = int_gauge(
        reg,
        "rblwatch_probe_timestamp_seconds",
        "When the server was last probed (Unix time).",
        &["domain", "server"],
    )?;
    for p in &r.snap.probes {
        let labels = [p.report.domain.as_str(), p.report.server.as_str()];
        let accepts = p.report.verdict == crate::smtp_probe::RndrVerdict::AcceptsUnknown;
        set_i(&vulnerable, &labels, i64::from(accepts))?;
        set_i(&probe_at, &labels, p.at)?;
    }
    Ok(())
}

/// The headline verdict as a state set: the same answer as the overview's.
fn verdict_metrics(
    reg: &Registry,
    r: &Read,
    rt: &super::Snapshot,
    st: &WebState,
) -> Result<(), WebError> {
    let facts = crate::status::facts(
        &r.snap,
        &rt.cfg,
        rt.engine.lists(),
        st.live.resolver().as_ref(),
        |p| st.live.impact(&p.target, &p.list, p.since),
    );
    let headline = crate::status::verdict(&facts).kind;
    let verdict = int_gauge(
        reg,
        "rblwatch_verdict",
        "1 for the headline verdict in force (the status page's and rblwatch status's), 0 for the others.",
        &["kind"],
    )?;
    for k in crate::status::Verdict::ALL {
        set_i(&verdict, &[k.as_str()], i64::from(k == headline))?;
    }
    Ok(())
}

/// Delisting requests still open (the pair still listed): when each was
/// requested and when it is expected done.
fn delist_metrics(reg: &Registry, r: &Read) -> Result<(), WebError> {
    let requested = int_gauge(
        reg,
        "rblwatch_delist_requested_timestamp_seconds",
        "When delisting was requested for a pair that is still listed (Unix time).",
        &["target", "list"],
    )?;
    let expected = int_gauge(
        reg,
        "rblwatch_delist_expected_timestamp_seconds",
        "When a requested delisting is expected done: the request plus the list's typical expiry (Unix time).",
        &["target", "list"],
    )?;
    for d in &r.snap.delistings {
        set_i(&requested, &[&d.target, &d.list], d.requested_at)?;
        set_i(&expected, &[&d.target, &d.list], d.expected_by)?;
    }
    Ok(())
}

/// Actions: hook runs and alert deliveries since start, by hook or channel
/// and status.
fn action_metrics(reg: &Registry, r: &Read) -> Result<(), WebError> {
    let hooks = counter(
        reg,
        "rblwatch_hook_runs_total",
        "Hook runs finished since start, by hook and status.",
        &["hook", "status"],
    )?;
    for (labels, (n, _)) in &r.hooks {
        let l: Vec<&str> = labels.iter().map(String::as_str).collect();
        add(&hooks, &l, *n)?;
    }
    let deliveries = counter(
        reg,
        "rblwatch_alert_deliveries_total",
        "Alert messages sent or given up since start, by channel and status.",
        &["channel", "status"],
    )?;
    for (labels, (n, _)) in &r.deliveries {
        let l: Vec<&str> = labels.iter().map(String::as_str).collect();
        add(&deliveries, &l, *n)?;
    }
    Ok(())
}

/// The database: whether writes succeed, the last commit, and SQLite's
/// memory.
fn database_metrics(reg: &Registry, st: &WebState) -> Result<(), WebError> {
    let none: &[&str] = &[];
    let wh = st.live.write_health();
    let writable = int_gauge(
        reg,
        "rblwatch_database_writable",
        "1 while database writes succeed.",
        none,
    )?;
    set_i(&writable, none, i64::from(!wh.dead && wh.failing.is_none()))?;
    let commit = int_gauge(
        reg,
        "rblwatch_database_last_commit_timestamp_seconds",
        "When the daemon last committed a write (Unix time; 0 before the first).",
        none,
    )?;
    set_i(&commit, none, wh.last_commit)?;
    let sqlite = int_gauge(
        reg,
        "rblwatch_sqlite_memory_bytes",
        "Memory SQLite holds in the daemon (page caches, statements): bounded by each connection's page cache (512 KiB for the writer, 256 KiB per reader) under a soft limit of 8 MiB.",
        none,
    )?;
    set_i(&sqlite, none, store::sqlite_memory_used())?;
    Ok(())
}

/// The resolver: whether it is usable, and its diagnosed status as a state
/// set (absent before the first health check).
fn resolver_metrics(reg: &Registry, st: &WebState) -> Result<(), WebError> {
    let none: &[&str] = &[];
    let usable = int_gauge(
        reg,
        "rblwatch_resolver_usable",
        "1 unless the resolver was found unusable (rewritten NXDOMAIN, no answers): then nothing is checked.",
        none,
    )?;
    let resolver = st.live.resolver();
    set_i(
        &usable,
        none,
        i64::from(
            resolver
                .as_ref()
                .is_none_or(|h| h.status != crate::health::ResolverStatus::Unusable),
        ),
    )?;
    let rstatus = int_gauge(
        reg,
        "rblwatch_resolver_status",
        "1 for the resolver's diagnosed status (ok, degraded, unusable); absent before the first health check.",
        &["status"],
    )?;
    if let Some(h) = &resolver {
        for st in [
            crate::health::ResolverStatus::Ok,
            crate::health::ResolverStatus::Degraded,
            crate::health::ResolverStatus::Unusable,
        ] {
            set_i(&rstatus, &[st.as_str()], i64::from(h.status == st))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        store::migrations::apply(&mut c).unwrap();
        c
    }

    fn run(c: &Connection, hook: &str, status: &str) -> i64 {
        c.execute(
            "INSERT INTO hook_runs (hook, action, started_at, duration_ms, status, argv, stdout, stderr) VALUES (?1, 'run', 0, 0, ?2, '[]', '', '')",
            rusqlite::params![hook, status],
        )
        .unwrap();
        c.last_insert_rowid()
    }

    /// The status-page issue: row counts that go down were reported as `*_total`.
    /// A tally only goes up: pruning rows and rows finishing late never lower it.
    #[test]
    fn tallies_only_go_up_through_pruning_and_late_finishes() {
        let c = db();
        run(&c, "old", "ok");
        let t = Tally::new("hook_runs", &["hook", "status"], &[], &["running"]);
        t.start_at_current(&c);
        let get = |m: &Totals, h: &str, s: &str| {
            m.get(&vec![h.to_string(), s.to_string()])
                .map_or(0, |x| x.0)
        };
        assert!(
            t.update(&c).unwrap().is_empty(),
            "rows before the start are not counted"
        );
        run(&c, "a", "ok");
        let slow = run(&c, "a", "running");
        run(&c, "a", "failed");
        let m = t.update(&c).unwrap();
        assert_eq!((get(&m, "a", "ok"), get(&m, "a", "failed")), (1, 1));
        assert_eq!(get(&m, "a", "running"), 0, "unfinished runs wait");
        // the slow run finishes; retention deletes everything but it
        c.execute(
            "UPDATE hook_runs SET status = 'timeout' WHERE id = ?1",
            [slow],
        )
        .unwrap();
        c.execute("DELETE FROM hook_runs WHERE id != ?1", [slow])
            .unwrap();
        let m = t.update(&c).unwrap();
        assert_eq!(
            (
                get(&m, "a", "ok"),
                get(&m, "a", "failed"),
                get(&m, "a", "timeout")
            ),
            (1, 1, 1)
        );
        // counted once: another scrape changes nothing
        assert_eq!(t.update(&c).unwrap(), m);
        // the newest rows were deleted too, so SQLite reuses their ids
        run(&c, "b", "ok");
        assert_eq!(get(&t.update(&c).unwrap(), "b", "ok"), 1);
    }

    /// Issue 22: one family per meaning, the unit in its name; a log's
    /// figures are counts (counters), a queue's the present (gauges).
    #[test]
    fn mail_figures_map_to_one_family_per_meaning() {
        use MailFamily::{Counter, Gauge};
        assert_eq!(
            mail_family("queue_depth", false),
            Some(Gauge("rblwatch_mail_queue_messages", None))
        );
        assert_eq!(
            mail_family("queue_hold", false),
            Some(Gauge(
                "rblwatch_mail_postfix_queue_messages",
                Some(("queue", "hold".into()))
            ))
        );
        assert_eq!(
            mail_family("value", false),
            Some(Gauge(
                "rblwatch_mail_source_value",
                Some(("metric", "value".into()))
            ))
        );
        assert_eq!(
            mail_family("ndr_generated", true),
            Some(Counter("rblwatch_mail_ndr_total", vec![]))
        );
        assert_eq!(
            mail_family("deferred", true),
            Some(Counter("rblwatch_mail_deferred_deliveries_total", vec![]))
        );
        assert_eq!(
            mail_family("deferred_rate_limit", true),
            Some(Counter(
                "rblwatch_mail_refusals_total",
                vec![
                    ("outcome", "deferred".into()),
                    ("reason", "rate_limit".into())
                ]
            ))
        );
        assert_eq!(mail_family("rejected_nonsense", true), None);
        // every figure a log read stores has its counter
        let mut counts = crate::mail::postfix_log::LogCounts::default().samples();
        counts.extend(crate::mail::rejections::Tally::default().samples());
        for s in counts {
            assert!(
                matches!(mail_family(&s.metric, true), Some(Counter(..))),
                "{}",
                s.metric
            );
        }
    }

    /// Issue 24: Gmail's spam rate is a ratio per domain, and a domain Google
    /// gave no figure for has no ratio sample (never 0), only `_known 0`.
    #[test]
    fn gmail_spam_rate_is_a_ratio_and_no_figure_is_no_sample() {
        use crate::feeds::postmaster::{SpamLevel, SpamStanding};
        let reg = Registry::new();
        let standings = vec![
            Ok(SpamStanding {
                domain: "example.com".into(),
                level: SpamLevel::Critical,
                rate: 0.0042,
                day: "2026-12-04".into(),
            }),
            Err("quiet.example".to_string()),
        ];
        gmail_metrics(&reg, &standings).unwrap();
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&reg.gather(), &mut text)
            .unwrap();
        assert!(
            text.contains("rblwatch_gmail_spam_ratio{domain=\"example.com\"} 0.0042\n"),
            "{text}"
        );
        assert!(
            text.contains("rblwatch_gmail_spam_ratio_known{domain=\"example.com\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("rblwatch_gmail_spam_ratio_known{domain=\"quiet.example\"} 0\n"),
            "{text}"
        );
        assert!(
            !text.contains("rblwatch_gmail_spam_ratio{domain=\"quiet.example\"}"),
            "not enough volume exported as a figure: {text}"
        );
        assert!(
            text.contains("# TYPE rblwatch_gmail_spam_ratio gauge"),
            "{text}"
        );
    }

    fn names(text: &str) -> BTreeSet<String> {
        let re = regex::Regex::new(r"rblwatch_[a-z_]+").unwrap();
        re.find_iter(text).map(|m| m.as_str().to_string()).collect()
    }

    /// The shipped alert rules and dashboard use only metrics this module exports.
    #[test]
    fn rules_and_dashboard_name_only_exported_metrics() {
        // the families metrics.rs registers, and those of the feeds' modules
        // (issue 24: SNDS and the DMARC senders, which had no panel)
        let mut exported = BTreeSet::new();
        for src in [
            include_str!("metrics.rs"),
            include_str!("senders.rs"),
            include_str!("snds.rs"),
        ] {
            let code = &src[..src.find("#[cfg(test)]").unwrap_or(src.len())];
            exported.extend(
                names(code)
                    .into_iter()
                    .filter(|n| code.contains(&format!("\"{n}\""))),
            );
        }
        for f in [
            "rblwatch_snds_ips",
            "rblwatch_unmonitored_senders",
            "rblwatch_gmail_spam_ratio",
        ] {
            assert!(exported.contains(f), "{exported:?}");
        }
        assert!(
            exported.contains("rblwatch_listed") && exported.len() > 20,
            "{exported:?}"
        );
        for (file, text) in [
            (
                "prometheus-rules.yml",
                include_str!("../../contrib/prometheus-rules.yml"),
            ),
            (
                "grafana-dashboard.json",
                include_str!("../../contrib/grafana-dashboard.json"),
            ),
        ] {
            let used = names(text);
            assert!(!used.is_empty());
            let unknown: Vec<_> = used.difference(&exported).collect();
            assert!(
                unknown.is_empty(),
                "{file} uses metrics /metrics does not export: {unknown:?}"
            );
        }
        let dash: serde_json::Value =
            serde_json::from_str(include_str!("../../contrib/grafana-dashboard.json")).unwrap();
        assert_eq!(dash["uid"], "rblwatch");
        // issue 22: and the other way round, every family has a panel (the
        // process collector's included; tests/integration/web.rs checks the
        // families of a real scrape and runs every panel's query)
        let mut queries = String::new();
        for p in dash["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().into_iter().flatten() {
                queries.push_str(t["expr"].as_str().unwrap());
                queries.push('\n');
            }
        }
        let shown = names(&queries);
        let missing: Vec<_> = exported.difference(&shown).collect();
        assert!(missing.is_empty(), "no dashboard panel shows {missing:?}");
        for f in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_threads",
            "process_start_time_seconds",
        ] {
            assert!(queries.contains(f), "no dashboard panel shows {f}");
        }
    }

    /// Issue 22: every alert rule has a `promtool test rules` case (5 of 14 had
    /// one), and every alert links to the status page.
    #[test]
    fn every_alert_rule_has_a_test_case_and_a_status_page_link() {
        let rules = include_str!("../../contrib/prometheus-rules.yml");
        let cases = include_str!("../../tests/fixtures/prometheus-rules.test.yml");
        let alert = regex::Regex::new(r"(?m)^\s*- alert: (\w+)$").unwrap();
        let alerts: Vec<&str> = alert
            .captures_iter(rules)
            .filter_map(|c| c.get(1))
            .map(|m| m.as_str())
            .collect();
        assert!(alerts.len() >= 18, "{alerts:?}");
        for a in &alerts {
            assert!(
                cases.contains(&format!("alertname: {a}\n")),
                "{a} has no promtool test case"
            );
            let firing =
                regex::Regex::new(&format!(r"alertname: {a}\s+exp_alerts:\s+- exp_labels:"))
                    .unwrap();
            assert!(firing.is_match(cases), "{a} has no firing case");
        }
        for name in [
            "RblwatchListingRejecting",
            "RblwatchBackscatterSource",
            "RblwatchAuditFindings",
        ] {
            assert!(alerts.contains(&name), "{name} missing");
        }
        // each rule's block has the link annotation and joins the status page address
        for block in rules.split("- alert: ").skip(1) {
            assert!(
                block.contains("status_page: \"{{ $labels.status_url }}/"),
                "{block}"
            );
            assert!(block.contains("group_left(status_url)"), "{block}");
        }
    }
}
