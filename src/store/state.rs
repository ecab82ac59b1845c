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

/// Every state value whose key starts with `prefix`, as (key, JSON text).
pub fn states_with_prefix(c: &Connection, prefix: &str) -> Result<Vec<(String, String)>> {
    // LIKE would treat `_` and `%` in the prefix as wildcards: compare the start instead
    let mut st = c.prepare_cached(
        "SELECT key, value FROM state WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
    )?;
    let rows = st.query_map(params![prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}
