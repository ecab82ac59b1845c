//! The SQL, as plain functions over a connection (tested on in-memory databases).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::evaluator::{ListingDetails, PairState};
use crate::event::{Event, EventKind, Severity};
use crate::health::ListHealth;

/// A stored (non-clear) pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredPair {
    /// Target.
    pub target: String,
    /// List id.
    pub list: String,
    /// State.
    pub state: PairState,
    /// When the pair entered its state (unix seconds).
    pub since: i64,
    /// Last answer's codes, meanings and TXT.
    pub details: ListingDetails,
}

/// One change of a pair's state within a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct PairUpdate {
    /// Target.
    pub target: String,
    /// List id.
    pub list: String,
    /// New state (`Clear` deletes the row).
    pub state: PairState,
    /// When it entered that state.
    pub since: i64,
    /// Details of the latest answer (shared with the listing period).
    pub details: Arc<ListingDetails>,
}

/// What happens to listing periods in a sweep.
#[derive(Debug, Clone, PartialEq)]
pub enum PeriodChange {
    /// A listing starts.
    Open {
        /// Target.
        target: String,
        /// List id.
        list: String,
        /// Start.
        at: i64,
        /// Codes, TXT…
        details: Arc<ListingDetails>,
        /// Part of the silent baseline.
        baseline: bool,
    },
    /// A listing ends.
    Close {
        /// Target.
        target: String,
        /// List id.
        list: String,
        /// End.
        at: i64,
    },
}

/// Counts of a sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SweepCounts {
    /// Targets swept.
    pub targets: i64,
    /// Pairs asked.
    pub pairs: i64,
    /// Listed answers from healthy lists.
    pub listed: i64,
    /// Clear answers.
    pub clear: i64,
    /// List errors.
    pub errors: i64,
    /// Unknown answers.
    pub unknown: i64,
    /// Lists not healthy.
    pub lists_unhealthy: i64,
}

/// Everything a sweep writes, committed in one transaction.
#[derive(Debug, Clone, Default)]
pub struct SweepCommit {
    /// The sweep row to finish.
    pub sweep_id: i64,
    /// When it finished.
    pub finished_at: i64,
    /// Duration.
    pub duration_ms: i64,
    /// Counts.
    pub counts: SweepCounts,
    /// Pairs whose state changed (or whose details changed).
    pub pairs: Vec<PairUpdate>,
    /// Listing periods opened or closed.
    pub periods: Vec<PeriodChange>,
    /// Health of each list, as checked before the sweep.
    pub health: Vec<(String, ListHealth)>,
    /// Events (ids are filled in on commit).
    pub events: Vec<Event>,
    /// Target specs whose baseline this sweep was.
    pub baselined: Vec<String>,
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Starts a sweep row (committed at once, so an interrupted sweep is visible as such).
pub fn begin_sweep(c: &Connection, started_at: i64) -> anyhow::Result<i64> {
    c.execute(
        "INSERT INTO sweeps (started_at, status) VALUES (?1, 'running')",
        params![started_at],
    )?;
    Ok(c.last_insert_rowid())
}

/// Marks sweeps left `running` by a killed daemon as `abandoned`.
pub fn abandon_stale_sweeps(c: &Connection) -> anyhow::Result<usize> {
    Ok(c.execute(
        "UPDATE sweeps SET status = 'abandoned' WHERE status = 'running'",
        [],
    )?)
}

/// Writes a whole sweep in one transaction; returns the events with their ids.
pub fn commit_sweep(c: &mut Connection, s: &SweepCommit) -> anyhow::Result<Vec<Event>> {
    let tx = c.transaction()?;
    for h in &s.health {
        write_health(&tx, &h.0, &h.1, s.finished_at)?;
    }
    for p in &s.pairs {
        if p.state == PairState::Clear {
            tx.execute(
                "DELETE FROM pair_state WHERE target = ?1 AND list = ?2",
                params![p.target, p.list],
            )?;
        } else {
            tx.execute(
                "INSERT INTO pair_state (target, list, state, seen, since, updated_at, codes, meanings, txt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (target, list) DO UPDATE SET state = ?3, seen = ?4, since = ?5, updated_at = ?6,
                   codes = ?7, meanings = ?8, txt = ?9",
                params![
                    p.target,
                    p.list,
                    p.state.name(),
                    p.state.seen(),
                    p.since,
                    s.finished_at,
                    json(&p.details.codes),
                    json(&p.details.meanings),
                    json(&p.details.txt)
                ],
            )?;
        }
    }
    for ch in &s.periods {
        match ch {
            PeriodChange::Open {
                target,
                list,
                at,
                details,
                baseline,
            } => {
                tx.execute(
                    "INSERT INTO listings (target, list, started_at, codes, meanings, txt, delist, baseline)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (target, list) WHERE ended_at IS NULL DO NOTHING",
                    params![target, list, at, json(&details.codes), json(&details.meanings), json(&details.txt), details.delist, baseline],
                )?;
            }
            PeriodChange::Close { target, list, at } => {
                tx.execute(
                    "UPDATE listings SET ended_at = ?3 WHERE target = ?1 AND list = ?2 AND ended_at IS NULL",
                    params![target, list, at],
                )?;
            }
        }
    }
    let mut out = Vec::with_capacity(s.events.len());
    for e in &s.events {
        out.push(insert_event(&tx, e)?);
    }
    for spec in &s.baselined {
        tx.execute(
            "INSERT OR IGNORE INTO baselines (spec, at) VALUES (?1, ?2)",
            params![spec, s.finished_at],
        )?;
    }
    let n = &s.counts;
    tx.execute(
        "UPDATE sweeps SET finished_at = ?2, status = 'done', targets = ?3, pairs = ?4, listed = ?5, clear = ?6,
           errors = ?7, unknown = ?8, lists_unhealthy = ?9, duration_ms = ?10 WHERE id = ?1",
        params![s.sweep_id, s.finished_at, n.targets, n.pairs, n.listed, n.clear, n.errors, n.unknown, n.lists_unhealthy, s.duration_ms],
    )?;
    tx.commit()?;
    Ok(out)
}

/// Stores an event and returns it with its id.
pub fn insert_event(c: &Connection, e: &Event) -> anyhow::Result<Event> {
    c.execute(
        "INSERT INTO events (at, kind, target, list, subject, severity, baseline, summary, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![e.at, e.kind.as_str(), e.subject.target(), e.subject.list(), json(&e.subject), e.severity.as_str(), e.baseline, e.summary, json(&e.details)],
    )?;
    let mut e = e.clone();
    e.id = c.last_insert_rowid();
    Ok(e)
}

/// Records a list's health; a change also goes to the history.
pub fn write_health(c: &Connection, list: &str, h: &ListHealth, at: i64) -> anyhow::Result<()> {
    let prev: Option<String> = c
        .query_row(
            "SELECT health FROM list_health WHERE list = ?1",
            params![list],
            |r| r.get(0),
        )
        .optional()?;
    if prev.as_deref() != Some(h.name()) {
        c.execute(
            "INSERT INTO list_health_history (list, health, why, at) VALUES (?1, ?2, ?3, ?4)",
            params![list, h.name(), h.why(), at],
        )?;
        c.execute(
            "INSERT INTO list_health (list, health, why, since, checked_at) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (list) DO UPDATE SET health = ?2, why = ?3, since = ?4, checked_at = ?4",
            params![list, h.name(), h.why(), at],
        )?;
    } else {
        c.execute(
            "UPDATE list_health SET why = ?2, checked_at = ?3 WHERE list = ?1",
            params![list, h.why(), at],
        )?;
    }
    Ok(())
}

fn health_from(name: &str, why: String) -> ListHealth {
    match name {
        "healthy" => ListHealth::Healthy,
        "dead" => ListHealth::Dead { why },
        "lists-everything" => ListHealth::ListsEverything { why },
        "blocked" => ListHealth::Blocked { why },
        _ => ListHealth::Unreachable { why },
    }
}

/// Current health of every list that has been checked.
pub fn load_health(c: &Connection) -> anyhow::Result<HashMap<String, ListHealth>> {
    let mut st = c.prepare("SELECT list, health, why FROM list_health")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = HashMap::new();
    for r in rows {
        let (l, h, w) = r?;
        out.insert(l, health_from(&h, w));
    }
    Ok(out)
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

/// Every stored (non-clear) pair.
pub fn load_pairs(c: &Connection) -> anyhow::Result<Vec<StoredPair>> {
    load_pairs_where(c, "", [])
}

/// Target specs whose baseline sweep is done.
pub fn baselined(c: &Connection) -> anyhow::Result<HashSet<String>> {
    let mut st = c.prepare("SELECT spec FROM baselines")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A sweep as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// Id.
    pub id: i64,
    /// Start.
    pub started_at: i64,
    /// End.
    pub finished_at: Option<i64>,
    /// running | done | abandoned.
    pub status: String,
    /// Counts.
    pub counts: SweepCounts,
    /// Duration.
    pub duration_ms: Option<i64>,
}

/// The latest finished sweep.
pub fn last_sweep(c: &Connection) -> anyhow::Result<Option<SweepRow>> {
    Ok(c
        .query_row(
            "SELECT id, started_at, finished_at, status, targets, pairs, listed, clear, errors, unknown, lists_unhealthy, duration_ms
             FROM sweeps WHERE status = 'done' ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                Ok(SweepRow {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    status: r.get(3)?,
                    counts: SweepCounts {
                        targets: r.get(4)?,
                        pairs: r.get(5)?,
                        listed: r.get(6)?,
                        clear: r.get(7)?,
                        errors: r.get(8)?,
                        unknown: r.get(9)?,
                        lists_unhealthy: r.get(10)?,
                    },
                    duration_ms: r.get(11)?,
                })
            },
        )
        .optional()?)
}

/// A listing period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListingRow {
    /// Target.
    pub target: String,
    /// List id.
    pub list: String,
    /// Start.
    pub started_at: i64,
    /// End (None while listed).
    pub ended_at: Option<i64>,
    /// Codes, meanings, TXT, delist link.
    pub details: ListingDetails,
    /// Found in the baseline sweep.
    pub baseline: bool,
}

/// Listing periods of a target (newest first), or of every target when `None`.
pub fn listings(
    c: &Connection,
    target: Option<&str>,
    open_only: bool,
) -> anyhow::Result<Vec<ListingRow>> {
    // two forms, so the target index is used (an "?1 IS NULL OR" would scan the table)
    let sql = format!(
        "SELECT target, list, started_at, ended_at, codes, meanings, txt, delist, baseline FROM listings WHERE {} {} ORDER BY started_at DESC, id DESC",
        if target.is_some() { "target = ?1" } else { "?1 IS NULL" },
        if open_only { "AND ended_at IS NULL" } else { "" }
    );
    let mut st = c.prepare(&sql)?;
    let rows = st.query_map(params![target], listing_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn listing_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ListingRow> {
    Ok(ListingRow {
        target: r.get(0)?,
        list: r.get(1)?,
        started_at: r.get(2)?,
        ended_at: r.get(3)?,
        details: ListingDetails {
            codes: parse_json(&r.get::<_, String>(4)?),
            meanings: parse_json(&r.get::<_, String>(5)?),
            txt: parse_json(&r.get::<_, String>(6)?),
            delist: r.get(7)?,
            ..Default::default()
        },
        baseline: r.get(8)?,
    })
}

const EVENT_COLS: &str =
    "SELECT id, at, kind, subject, severity, baseline, summary, details FROM events";

fn read_events(
    st: &mut rusqlite::Statement<'_>,
    p: impl rusqlite::Params,
) -> anyhow::Result<Vec<Event>> {
    let rows = st.query_map(p, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, bool>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (id, at, kind, subject, severity, baseline, summary, details) = r?;
        let Some(kind) = EventKind::parse(&kind) else {
            continue;
        };
        out.push(Event {
            id,
            kind,
            at,
            subject: serde_json::from_str(&subject).unwrap_or_default(),
            severity: Severity::parse(&severity).unwrap_or(Severity::Info),
            baseline,
            summary,
            details: serde_json::from_str(&details).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Events, newest first, optionally for one target.
pub fn events(
    c: &Connection,
    target: Option<&str>,
    limit: u32,
    offset: u32,
) -> anyhow::Result<Vec<Event>> {
    // two forms, so the target index is used (an "?1 IS NULL OR" would scan the table)
    let wh = if target.is_some() {
        "target = ?1"
    } else {
        "?1 IS NULL"
    };
    let mut st = c.prepare_cached(&format!(
        "{EVENT_COLS} WHERE {wh} ORDER BY id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    read_events(&mut st, params![target, limit, offset])
}

/// Deletes what is older than the retention periods; returns rows removed.
pub fn prune(
    c: &mut Connection,
    now: i64,
    retention_days: u32,
    sample_days: u32,
) -> anyhow::Result<usize> {
    let old = now - i64::from(retention_days) * 86_400;
    let old_samples = now - i64::from(sample_days) * 86_400;
    let tx = c.transaction()?;
    let mut n = tx.execute("DELETE FROM events WHERE at < ?1", params![old])?;
    n += tx.execute(
        "DELETE FROM listings WHERE ended_at IS NOT NULL AND ended_at < ?1",
        params![old],
    )?;
    n += tx.execute(
        "DELETE FROM list_health_history WHERE at < ?1",
        params![old],
    )?;
    n += tx.execute("DELETE FROM sweeps WHERE started_at < ?1", params![old])?;
    n += tx.execute("DELETE FROM metric_hourly WHERE hour < ?1", params![old])?;
    n += tx.execute(
        "DELETE FROM metric_samples WHERE at < ?1",
        params![old_samples],
    )?;
    tx.commit().context("prune")?;
    Ok(n)
}

/// Stores a metric sample and folds it into its hourly roll-up.
pub fn insert_sample(
    c: &Connection,
    source: &str,
    metric: &str,
    at: i64,
    value: f64,
) -> anyhow::Result<()> {
    c.execute(
        "INSERT INTO metric_samples (source, metric, at, value) VALUES (?1, ?2, ?3, ?4)",
        params![source, metric, at, value],
    )?;
    c.execute(
        "INSERT INTO metric_latest (source, metric, at, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (source, metric) DO UPDATE SET at = ?3, value = ?4 WHERE ?3 >= at",
        params![source, metric, at, value],
    )?;
    let hour = at - at.rem_euclid(3600);
    c.execute(
        "INSERT INTO metric_hourly (source, metric, hour, min, max, sum, count) VALUES (?1, ?2, ?3, ?4, ?4, ?4, 1)
         ON CONFLICT (source, metric, hour) DO UPDATE SET min = MIN(min, ?4), max = MAX(max, ?4), sum = sum + ?4, count = count + 1",
        params![source, metric, hour, value],
    )?;
    Ok(())
}

/// Reads a JSON state value (log position, spike state…).
pub fn get_state<T: serde::de::DeserializeOwned>(
    c: &Connection,
    key: &str,
) -> anyhow::Result<Option<T>> {
    let v: Option<String> = c
        .query_row(
            "SELECT value FROM state WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|v| serde_json::from_str(&v).ok()))
}

/// Writes a JSON state value.
pub fn put_state<T: Serialize>(c: &Connection, key: &str, v: &T, at: i64) -> anyhow::Result<()> {
    c.execute(
        "INSERT INTO state (key, value, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3",
        params![key, json(v), at],
    )?;
    Ok(())
}

/// Raw samples of a metric since `since`.
pub fn samples_since(
    c: &Connection,
    source: &str,
    metric: &str,
    since: i64,
) -> anyhow::Result<Vec<(i64, f64)>> {
    let mut st = c.prepare_cached("SELECT at, value FROM metric_samples WHERE source = ?1 AND metric = ?2 AND at >= ?3 ORDER BY at")?;
    let rows = st.query_map(params![source, metric, since], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Stores a probe result.
pub fn insert_probe(
    c: &Connection,
    at: i64,
    r: &crate::smtp_probe::ProbeReport,
) -> anyhow::Result<()> {
    c.execute(
        "INSERT INTO probe_results (at, domain, server, verdict, catch_all_suspected, why, report) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![at, r.domain, r.server, r.verdict.as_str(), r.catch_all_suspected, r.why, json(r)],
    )?;
    Ok(())
}

/// A recorded hook run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookRun {
    /// Id (0 before insert).
    pub id: i64,
    /// Hook name.
    pub hook: String,
    /// run | revert | test.
    pub action: String,
    /// The event that triggered it.
    pub event_id: Option<i64>,
    /// Its kind.
    pub event_kind: Option<String>,
    /// Start (unix seconds).
    pub started_at: i64,
    /// Duration.
    pub duration_ms: i64,
    /// ok | failed | timeout | error | dry_run | skipped_cooldown | skipped_cap.
    pub status: String,
    /// Exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The command.
    pub argv: Vec<String>,
    /// Last 64 KiB of stdout (untrusted).
    pub stdout: String,
    /// Last 64 KiB of stderr (untrusted).
    pub stderr: String,
}

/// Records a hook run.
pub fn insert_hook_run(c: &Connection, r: &HookRun) -> anyhow::Result<i64> {
    c.execute(
        "INSERT INTO hook_runs (hook, action, event_id, event_kind, started_at, duration_ms, status, exit_code, argv, stdout, stderr)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![r.hook, r.action, r.event_id, r.event_kind, r.started_at, r.duration_ms, r.status, r.exit_code, json(&r.argv), r.stdout, r.stderr],
    )?;
    Ok(c.last_insert_rowid())
}

/// Hook runs, newest first (optionally of one hook).
pub fn hook_runs(
    c: &Connection,
    hook: Option<&str>,
    limit: u32,
    offset: u32,
) -> anyhow::Result<Vec<HookRun>> {
    let mut st = c.prepare(
        "SELECT id, hook, action, event_id, event_kind, started_at, duration_ms, status, exit_code, argv, stdout, stderr
         FROM hook_runs WHERE (?1 IS NULL OR hook = ?1) ORDER BY id DESC LIMIT ?2 OFFSET ?3",
    )?;
    let rows = st.query_map(params![hook, limit, offset], |r| {
        Ok(HookRun {
            id: r.get(0)?,
            hook: r.get(1)?,
            action: r.get(2)?,
            event_id: r.get(3)?,
            event_kind: r.get(4)?,
            started_at: r.get(5)?,
            duration_ms: r.get(6)?,
            status: r.get(7)?,
            exit_code: r.get(8)?,
            argv: parse_json(&r.get::<_, String>(9)?),
            stdout: r.get(10)?,
            stderr: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Runs of `hook` that actually executed since `since` (for the per-hour cap and the cooldown).
pub fn hook_runs_since(
    c: &Connection,
    hook: &str,
    since: i64,
) -> anyhow::Result<(i64, Option<i64>)> {
    Ok(c.query_row(
        "SELECT COUNT(*), MAX(started_at) FROM hook_runs WHERE hook = ?1 AND started_at >= ?2 AND status IN ('ok','failed','timeout','error')",
        params![hook, since],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// An alert waiting in (or sent from) the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    /// Id.
    pub id: i64,
    /// Channel name.
    pub channel: String,
    /// Created.
    pub created_at: i64,
    /// Events in it.
    pub event_ids: Vec<i64>,
    /// Subject (email) or title.
    pub subject: String,
    /// Rendered body.
    pub body: String,
    /// pending | sent | failed.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Last error (secrets removed).
    pub last_error: Option<String>,
    /// When it was delivered.
    pub sent_at: Option<i64>,
}

/// Queues an alert; a second one with the same dedup key is ignored (no duplicate sends).
pub fn enqueue_alert(
    c: &Connection,
    channel: &str,
    dedup: &str,
    at: i64,
    event_ids: &[i64],
    subject: &str,
    body: &str,
) -> anyhow::Result<bool> {
    let n = c.execute(
        "INSERT OR IGNORE INTO alert_outbox (channel, dedup_key, created_at, event_ids, subject, body, status, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?3)",
        params![channel, dedup, at, json(&event_ids), subject, body],
    )?;
    Ok(n == 1)
}

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        channel: r.get(1)?,
        created_at: r.get(2)?,
        event_ids: parse_json(&r.get::<_, String>(3)?),
        subject: r.get(4)?,
        body: r.get(5)?,
        status: r.get(6)?,
        attempts: r.get(7)?,
        last_error: r.get(8)?,
        sent_at: r.get(9)?,
    })
}

/// Alerts due for (another) delivery attempt.
pub fn due_alerts(c: &Connection, now: i64) -> anyhow::Result<Vec<OutboxRow>> {
    let mut st = c.prepare(
        "SELECT id, channel, created_at, event_ids, subject, body, status, attempts, last_error, sent_at
         FROM alert_outbox WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY id LIMIT 100",
    )?;
    let rows = st.query_map(params![now], outbox_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Alert deliveries, newest first.
pub fn alerts(c: &Connection, limit: u32, offset: u32) -> anyhow::Result<Vec<OutboxRow>> {
    let mut st = c.prepare(
        "SELECT id, channel, created_at, event_ids, subject, body, status, attempts, last_error, sent_at
         FROM alert_outbox ORDER BY id DESC LIMIT ?1 OFFSET ?2",
    )?;
    let rows = st.query_map(params![limit, offset], outbox_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records a delivery attempt: sent, or retried at `retry_at` (None = give up).
pub fn mark_alert(
    c: &Connection,
    id: i64,
    now: i64,
    result: Result<(), String>,
    retry_at: Option<i64>,
) -> anyhow::Result<()> {
    match result {
        Ok(()) => c.execute("UPDATE alert_outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?2, last_error = NULL WHERE id = ?1", params![id, now])?,
        Err(e) => match retry_at {
            Some(t) => c.execute("UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1", params![id, t, e])?,
            None => c.execute("UPDATE alert_outbox SET status = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1", params![id, e])?,
        },
    };
    Ok(())
}

/// Events with id above `after`, oldest first.
pub fn events_after(c: &Connection, after: i64, limit: u32) -> anyhow::Result<Vec<Event>> {
    let mut st = c.prepare_cached(&format!("{EVENT_COLS} WHERE id > ?1 ORDER BY id LIMIT ?2"))?;
    read_events(&mut st, params![after, limit])
}

/// Stored (non-clear) pairs of one target.
pub fn pairs_of(c: &Connection, target: &str) -> anyhow::Result<Vec<StoredPair>> {
    load_pairs_where(c, "WHERE target = ?1", params![target])
}

/// Stored (non-clear) pairs on one list.
pub fn pairs_on(c: &Connection, list: &str) -> anyhow::Result<Vec<StoredPair>> {
    load_pairs_where(c, "WHERE list = ?1", params![list])
}

fn load_pairs_where(
    c: &Connection,
    wh: &str,
    p: impl rusqlite::Params,
) -> anyhow::Result<Vec<StoredPair>> {
    let mut st = c.prepare_cached(&format!("SELECT target, list, state, seen, since, codes, meanings, txt FROM pair_state {wh} ORDER BY target, list"))?;
    let rows = st.query_map(p, |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, u32>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (target, list, state, seen, since, codes, meanings, txt) = r?;
        let Some(state) = PairState::from_parts(&state, seen) else {
            continue;
        };
        let details = ListingDetails {
            codes: parse_json(&codes),
            meanings: parse_json(&meanings),
            txt: parse_json(&txt),
            ..Default::default()
        };
        out.push(StoredPair {
            target,
            list,
            state,
            since,
            details,
        });
    }
    Ok(out)
}

/// Listing periods on one list, newest first.
pub fn listings_on(c: &Connection, list: &str, limit: u32) -> anyhow::Result<Vec<ListingRow>> {
    let mut st = c.prepare_cached(
        "SELECT target, list, started_at, ended_at, codes, meanings, txt, delist, baseline FROM listings WHERE list = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![list, limit], listing_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A list-health change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthChange {
    /// When.
    pub at: i64,
    /// New state.
    pub health: String,
    /// Details.
    pub why: String,
}

/// A list's health history, newest first.
pub fn health_history(c: &Connection, list: &str, limit: u32) -> anyhow::Result<Vec<HealthChange>> {
    let mut st = c.prepare_cached(
        "SELECT at, health, why FROM list_health_history WHERE list = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![list, limit], |r| {
        Ok(HealthChange {
            at: r.get(0)?,
            health: r.get(1)?,
            why: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The latest sample of every (source, metric).
pub fn latest_samples(c: &Connection) -> anyhow::Result<Vec<(String, String, i64, f64)>> {
    let mut st = c.prepare_cached(
        "SELECT source, metric, at, value FROM metric_latest ORDER BY source, metric",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A metric's series since `since`, averaged into `buckets` buckets (raw samples, then hourly roll-ups).
pub fn series(
    c: &Connection,
    source: &str,
    metric: &str,
    since: i64,
    now: i64,
    buckets: i64,
) -> anyhow::Result<Vec<(i64, f64)>> {
    let width = ((now - since) / buckets.max(1)).max(1);
    let mut st = c.prepare_cached(
        "SELECT (at - ?3) / ?4 AS b, MAX(value) FROM metric_samples WHERE source = ?1 AND metric = ?2 AND at >= ?3 GROUP BY b ORDER BY b",
    )?;
    let rows: Vec<(i64, f64)> = st
        .query_map(params![source, metric, since, width], |r| {
            Ok((r.get::<_, i64>(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut out: Vec<(i64, f64)> = rows
        .into_iter()
        .map(|(b, v)| (since + b * width, v))
        .collect();
    if out.is_empty() || out[0].0 > since + width {
        // older than the raw retention: use the hourly roll-ups
        let mut st = c.prepare_cached(
            "SELECT (hour - ?3) / ?4 AS b, MAX(max) FROM metric_hourly WHERE source = ?1 AND metric = ?2 AND hour >= ?3 GROUP BY b ORDER BY b",
        )?;
        let old: Vec<(i64, f64)> = st
            .query_map(params![source, metric, since, width], |r| {
                Ok((r.get::<_, i64>(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        let first = out.first().map_or(i64::MAX, |x| x.0);
        let mut merged: Vec<(i64, f64)> = old
            .into_iter()
            .map(|(b, v)| (since + b * width, v))
            .filter(|(t, _)| *t < first)
            .collect();
        merged.extend(out);
        out = merged;
    }
    Ok(out)
}

/// Events of some kinds since `since` (for marking spikes on charts).
pub fn events_of_kinds(
    c: &Connection,
    kinds: &[EventKind],
    since: i64,
) -> anyhow::Result<Vec<Event>> {
    // the kinds come from the enum, so the IN list holds only known names
    let list = kinds
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(",");
    let mut st = c.prepare(&format!(
        "{EVENT_COLS} WHERE at >= ?1 AND kind IN ({list}) ORDER BY id"
    ))?;
    read_events(&mut st, params![since])
}

/// The latest probe result per (domain, server).
pub fn latest_probes(c: &Connection) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut st = c.prepare_cached(
        "SELECT p.at, p.report FROM probe_results p
         JOIN (SELECT MAX(id) AS id FROM probe_results GROUP BY domain, server) m ON p.id = m.id ORDER BY p.domain",
    )?;
    let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for r in rows {
        let (at, rep) = r?;
        let mut v: serde_json::Value = serde_json::from_str(&rep).unwrap_or_default();
        v["at"] = at.into();
        out.push(v);
    }
    Ok(out)
}

/// Counts grouped by two columns of a table (for metrics): (a, b, count).
pub fn counts(
    c: &Connection,
    table: &str,
    a: &str,
    b: &str,
) -> anyhow::Result<Vec<(String, String, i64)>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {a}, {b}, COUNT(*) FROM {table} GROUP BY {a}, {b}"
    ))?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Number of rows in a table.
pub fn count_rows(c: &Connection, table: &str) -> anyhow::Result<i64> {
    Ok(c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrations::apply(&mut c).unwrap();
        c
    }

    #[test]
    fn sweep_commit_round_trip() {
        let mut c = db();
        let id = begin_sweep(&c, 100).unwrap();
        let d = Arc::new(ListingDetails {
            codes: vec!["127.0.0.2".parse().unwrap()],
            txt: vec!["<b>x</b>".into()],
            ..Default::default()
        });
        let commit = SweepCommit {
            sweep_id: id,
            finished_at: 110,
            pairs: vec![PairUpdate {
                target: "192.0.2.1".into(),
                list: "bl".into(),
                state: PairState::Listed,
                since: 110,
                details: d.clone(),
            }],
            periods: vec![PeriodChange::Open {
                target: "192.0.2.1".into(),
                list: "bl".into(),
                at: 110,
                details: d.clone(),
                baseline: false,
            }],
            health: vec![("bl".into(), ListHealth::Healthy)],
            events: vec![Event::new(
                EventKind::Listed,
                110,
                crate::event::Subject::pair("192.0.2.1", "bl"),
                "x".into(),
                serde_json::json!({}),
            )],
            baselined: vec!["192.0.2.1".into()],
            ..Default::default()
        };
        let ev = commit_sweep(&mut c, &commit).unwrap();
        assert!(ev[0].id > 0);
        let pairs = load_pairs(&c).unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].state, PairState::Listed);
        assert_eq!(pairs[0].details.txt, vec!["<b>x</b>".to_string()]);
        assert_eq!(listings(&c, Some("192.0.2.1"), true).unwrap().len(), 1);
        assert!(baselined(&c).unwrap().contains("192.0.2.1"));
        assert_eq!(last_sweep(&c).unwrap().unwrap().finished_at, Some(110));
        // a second open of the same listing is ignored (no duplicate period)
        let mut again = commit.clone();
        again.sweep_id = begin_sweep(&c, 200).unwrap();
        again.events.clear();
        commit_sweep(&mut c, &again).unwrap();
        assert_eq!(listings(&c, None, false).unwrap().len(), 1);
        // closing, and clearing the pair deletes its row
        let close = SweepCommit {
            sweep_id: begin_sweep(&c, 300).unwrap(),
            finished_at: 310,
            pairs: vec![PairUpdate {
                target: "192.0.2.1".into(),
                list: "bl".into(),
                state: PairState::Clear,
                since: 310,
                details: Default::default(),
            }],
            periods: vec![PeriodChange::Close {
                target: "192.0.2.1".into(),
                list: "bl".into(),
                at: 310,
            }],
            ..Default::default()
        };
        commit_sweep(&mut c, &close).unwrap();
        assert!(load_pairs(&c).unwrap().is_empty());
        let l = listings(&c, Some("192.0.2.1"), false).unwrap();
        assert_eq!((l[0].started_at, l[0].ended_at), (110, Some(310)));
    }

    #[test]
    fn health_history_records_changes_only() {
        let c = db();
        write_health(&c, "bl", &ListHealth::Healthy, 1).unwrap();
        write_health(&c, "bl", &ListHealth::Healthy, 2).unwrap();
        write_health(&c, "bl", &ListHealth::Dead { why: "x".into() }, 3).unwrap();
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM list_health_history", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(load_health(&c).unwrap()["bl"].name(), "dead");
    }

    #[test]
    fn samples_roll_up_hourly_and_prune() {
        let mut c = db();
        for (at, v) in [(3600, 1.0), (3700, 5.0), (7300, 2.0)] {
            insert_sample(&c, "mx1", "queue_depth", at, v).unwrap();
        }
        let (mn, mx, n): (f64, f64, i64) = c
            .query_row(
                "SELECT min, max, count FROM metric_hourly WHERE hour = 3600",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((mn, mx, n), (1.0, 5.0, 2));
        // samples older than 30 days go, hourly roll-ups stay for 400
        prune(&mut c, 3600 + 31 * 86_400, 400, 30).unwrap();
        let s: i64 = c
            .query_row("SELECT COUNT(*) FROM metric_samples", [], |r| r.get(0))
            .unwrap();
        let h: i64 = c
            .query_row("SELECT COUNT(*) FROM metric_hourly", [], |r| r.get(0))
            .unwrap();
        assert_eq!((s, h), (0, 2));
    }
}
