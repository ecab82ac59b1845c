//! List health: the current state per list, and a history row per change.

use rusqlite::{params, Connection, OptionalExtension};

use super::Result;
use crate::health::ListHealth;
use serde::Serialize;
use std::collections::HashMap;

/// Records a list's health; a change also goes to the history.
pub fn write_health(c: &Connection, list: &str, h: &ListHealth, at: i64) -> Result<()> {
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
        "stale" => ListHealth::Stale { why },
        _ => ListHealth::Unreachable { why },
    }
}

/// Current health of every list that has been checked.
pub fn load_health(c: &Connection) -> Result<HashMap<String, ListHealth>> {
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
pub fn health_history(c: &Connection, list: &str, limit: u32) -> Result<Vec<HealthChange>> {
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
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}
