//! Events: everything hooks, alerts and the web act on.

use rusqlite::{params, Connection};

use super::{json, Result};
use crate::event::{Event, EventKind, Severity};

/// Stores an event and returns it with its id.
pub fn insert_event(c: &Connection, e: &Event) -> Result<Event> {
    c.execute(
        "INSERT INTO events (at, kind, target, list, subject, severity, baseline, summary, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![e.at, e.kind.as_str(), e.subject.target(), e.subject.list(), json(&e.subject), e.severity.as_str(), e.baseline, e.summary, json(&e.details)],
    )?;
    let mut e = e.clone();
    e.id = c.last_insert_rowid();
    Ok(e)
}

const EVENT_COLS: &str =
    "SELECT id, at, kind, subject, severity, baseline, summary, details FROM events";

fn read_events(st: &mut rusqlite::Statement<'_>, p: impl rusqlite::Params) -> Result<Vec<Event>> {
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
pub fn events(c: &Connection, target: Option<&str>, limit: u32, offset: u32) -> Result<Vec<Event>> {
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

/// Events with id above `after`, oldest first.
pub fn events_after(c: &Connection, after: i64, limit: u32) -> Result<Vec<Event>> {
    let mut st = c.prepare_cached(&format!("{EVENT_COLS} WHERE id > ?1 ORDER BY id LIMIT ?2"))?;
    read_events(&mut st, params![after, limit])
}

/// Events of some kinds since `since` (for marking spikes on charts).
pub fn events_of_kinds(c: &Connection, kinds: &[EventKind], since: i64) -> Result<Vec<Event>> {
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
