//! The alert outbox: messages waiting for delivery, retried with backoff.

use rusqlite::{params, Connection};

use super::{json, parse_json, Result};
use crate::runs::OutboxStatus;
use serde::Serialize;

/// An alert waiting in (or sent from) the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    /// Id.
    pub id: i64,
    /// Dedup key, also the webhook's idempotency key.
    pub dedup_key: String,
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
    pub status: OutboxStatus,
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
) -> Result<bool> {
    let n = c.execute(
        "INSERT OR IGNORE INTO alert_outbox (channel, dedup_key, created_at, event_ids, subject, body, status, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?3)",
        params![channel, dedup, at, json(&event_ids), subject, body, OutboxStatus::Pending],
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
        dedup_key: r.get(10)?,
    })
}

/// A channel's alerts due for (another) delivery attempt, oldest first.
pub fn due_alerts(c: &Connection, channel: &str, now: i64) -> Result<Vec<OutboxRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, channel, created_at, event_ids, subject, body, status, attempts, last_error, sent_at, dedup_key
         FROM alert_outbox WHERE channel = ?1 AND status = ?3 AND next_attempt_at <= ?2 ORDER BY id LIMIT 100",
    )?;
    let rows = st.query_map(params![channel, now, OutboxStatus::Pending], outbox_row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Records a message that could not even be rendered: failed at once, with the reason.
pub fn enqueue_failed_alert(
    c: &Connection,
    channel: &str,
    dedup: &str,
    at: i64,
    event_ids: &[i64],
    why: &str,
) -> Result<bool> {
    let n = c.execute(
        "INSERT OR IGNORE INTO alert_outbox (channel, dedup_key, created_at, event_ids, subject, body, status, next_attempt_at, last_error)
         VALUES (?1, ?2, ?3, ?4, '(not rendered)', '', ?6, ?3, ?5)",
        params![channel, dedup, at, json(&event_ids), why, OutboxStatus::Failed],
    )?;
    Ok(n == 1)
}

/// Alert deliveries, newest first.
pub fn alerts(c: &Connection, limit: u32, offset: u32) -> Result<Vec<OutboxRow>> {
    let mut st = c.prepare(
        "SELECT id, channel, created_at, event_ids, subject, body, status, attempts, last_error, sent_at, dedup_key
         FROM alert_outbox ORDER BY id DESC LIMIT ?1 OFFSET ?2",
    )?;
    let rows = st.query_map(params![limit, offset], outbox_row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Records a delivery attempt: sent, or retried at `retry_at` (None = give up).
pub fn mark_alert(
    c: &Connection,
    id: i64,
    now: i64,
    result: std::result::Result<(), String>,
    retry_at: Option<i64>,
) -> Result<()> {
    match result {
        Ok(()) => c.execute("UPDATE alert_outbox SET status = ?3, attempts = attempts + 1, sent_at = ?2, last_error = NULL WHERE id = ?1", params![id, now, OutboxStatus::Sent])?,
        Err(e) => match retry_at {
            Some(t) => c.execute("UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1", params![id, t, e])?,
            None => c.execute("UPDATE alert_outbox SET status = ?3, attempts = attempts + 1, last_error = ?2 WHERE id = ?1", params![id, e, OutboxStatus::Failed])?,
        },
    };
    Ok(())
}
