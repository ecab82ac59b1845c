//! Small named state values (log positions, spike and probe states, cursors) as JSON.

use rusqlite::{params, Connection, OptionalExtension};

use super::{json, Result};
use serde::Serialize;

/// Reads a JSON state value (log position, spike state…).
pub fn get_state<T: serde::de::DeserializeOwned>(c: &Connection, key: &str) -> Result<Option<T>> {
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
pub fn put_state<T: Serialize>(c: &Connection, key: &str, v: &T, at: i64) -> Result<()> {
    c.execute(
        "INSERT INTO state (key, value, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3",
        params![key, json(v), at],
    )?;
    Ok(())
}
