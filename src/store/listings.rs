//! Listing periods: one row from the first listed answer to the first clear one.

use rusqlite::{params, Connection};

use super::{parse_json, Result};
use crate::evaluator::ListingDetails;
use serde::Serialize;

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
pub fn listings(c: &Connection, target: Option<&str>, open_only: bool) -> Result<Vec<ListingRow>> {
    // two forms, so the target index is used (an "?1 IS NULL OR" would scan the table)
    let sql = format!(
        "SELECT target, list, started_at, ended_at, codes, meanings, txt, delist, baseline FROM listings WHERE {} {} ORDER BY started_at DESC, id DESC",
        if target.is_some() { "target = ?1" } else { "?1 IS NULL" },
        if open_only { "AND ended_at IS NULL" } else { "" }
    );
    let mut st = c.prepare(&sql)?;
    let rows = st.query_map(params![target], listing_row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
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

/// Listing periods on one list, newest first.
pub fn listings_on(c: &Connection, list: &str, limit: u32) -> Result<Vec<ListingRow>> {
    let mut st = c.prepare_cached(
        "SELECT target, list, started_at, ended_at, codes, meanings, txt, delist, baseline FROM listings WHERE list = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![list, limit], listing_row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}
