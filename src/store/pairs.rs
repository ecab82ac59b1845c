//! Pair states: only pairs that are not plainly clear are stored.

use rusqlite::{params, Connection};

use super::{parse_json, Result};
use crate::evaluator::{ListingDetails, PairState};
use serde::Serialize;
use std::collections::HashSet;

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

/// Every stored (non-clear) pair.
pub fn load_pairs(c: &Connection) -> Result<Vec<StoredPair>> {
    load_pairs_where(c, "", [])
}

/// Target specs whose baseline sweep is done.
pub fn baselined(c: &Connection) -> Result<HashSet<String>> {
    let mut st = c.prepare("SELECT spec FROM baselines")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Stored (non-clear) pairs of one target.
pub fn pairs_of(c: &Connection, target: &str) -> Result<Vec<StoredPair>> {
    load_pairs_where(c, "WHERE target = ?1", params![target])
}

/// Stored (non-clear) pairs on one list.
pub fn pairs_on(c: &Connection, list: &str) -> Result<Vec<StoredPair>> {
    load_pairs_where(c, "WHERE list = ?1", params![list])
}

fn load_pairs_where(c: &Connection, wh: &str, p: impl rusqlite::Params) -> Result<Vec<StoredPair>> {
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
