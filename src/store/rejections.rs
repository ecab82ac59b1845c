//! Receivers' rejections: one row per group of refused deliveries in one read
//! of a log source ([`crate::mail::rejections`]), kept like raw samples.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{json, parse_json, Result};
use crate::mail::rejections::{Outcome, Rejection};
use crate::replies::ReplyMeaning;

/// A stored group of rejections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionRow {
    /// Database id.
    pub id: i64,
    /// When the log was read.
    pub at: i64,
    /// The log source.
    pub source: String,
    /// The group.
    #[serde(flatten)]
    pub rejection: Rejection,
}

/// Stores the groups of one read.
pub fn insert_rejections(
    c: &Connection,
    source: &str,
    at: i64,
    groups: &[Rejection],
) -> Result<()> {
    let mut st = c.prepare_cached(
        "INSERT INTO rejections (at, source, receiver, outcome, meaning, rule, list, zone, cited, count, reply, relay, dsn, stage, queue_ids)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for g in groups {
        st.execute(params![
            at,
            source,
            g.receiver,
            g.outcome.as_str(),
            g.meaning.map(ReplyMeaning::as_str),
            g.rule,
            g.list,
            g.zone,
            g.cited,
            g.count as i64,
            g.reply,
            g.relay,
            g.dsn,
            g.stage,
            json(&g.queue_ids),
        ])?;
    }
    Ok(())
}

const COLS: &str = "SELECT id, at, source, receiver, outcome, meaning, rule, list, zone, cited, count, reply, relay, dsn, stage, queue_ids FROM rejections";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<RejectionRow>> {
    let outcome: String = r.get(4)?;
    let Some(outcome) = Outcome::parse(&outcome) else {
        return Ok(None);
    };
    let meaning: Option<String> = r.get(5)?;
    let meaning = meaning.and_then(|m| ReplyMeaning::parse(&m));
    Ok(Some(RejectionRow {
        id: r.get(0)?,
        at: r.get(1)?,
        source: r.get(2)?,
        rejection: Rejection {
            receiver: r.get(3)?,
            outcome,
            meaning,
            rule: r.get(6)?,
            list: r.get(7)?,
            zone: r.get(8)?,
            cited: r.get(9)?,
            count: r.get::<_, i64>(10)?.max(0) as u64,
            reply: r.get(11)?,
            relay: r.get(12)?,
            dsn: r.get(13)?,
            stage: r.get(14)?,
            queue_ids: parse_json(&r.get::<_, String>(15)?),
        },
    }))
}

/// Every group stored since `since`, oldest first.
pub fn rejections_since(c: &Connection, since: i64) -> Result<Vec<RejectionRow>> {
    let mut st = c.prepare_cached(&format!("{COLS} WHERE at >= ?1 ORDER BY id"))?;
    let rows = st.query_map(params![since], row)?;
    let mut out = Vec::new();
    for r in rows {
        out.extend(r?);
    }
    Ok(out)
}

/// Groups, newest first, optionally of one receiver (pages).
pub fn recent_rejections(
    c: &Connection,
    receiver: Option<&str>,
    limit: u32,
    offset: u32,
) -> Result<Vec<RejectionRow>> {
    let wh = if receiver.is_some() {
        "receiver = ?1"
    } else {
        "?1 IS NULL"
    };
    let mut st = c.prepare_cached(&format!(
        "{COLS} WHERE {wh} ORDER BY id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = st.query_map(params![receiver, limit, offset], row)?;
    let mut out = Vec::new();
    for r in rows {
        out.extend(r?);
    }
    Ok(out)
}
