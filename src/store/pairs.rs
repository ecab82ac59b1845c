//! Pair states: only pairs that are not plainly clear are stored.

use rusqlite::{params, Connection};

use super::{parse_json, Result};
use crate::evaluator::{ListingDetails, PairState};
use serde::Serialize;
use std::collections::HashSet;

/// `'listed', 'clearing'`: the stored states of pairs that count as listed
/// ([`PairState::is_listed`]), spelled by [`PairState::name`], for `state IN (…)`.
pub(super) fn listed_states() -> String {
    let every = [
        PairState::Clear,
        PairState::Suspected { seen: 0 },
        PairState::Listed,
        PairState::Clearing { seen: 0 },
    ];
    let listed: Vec<PairState> = every.into_iter().filter(PairState::is_listed).collect();
    crate::spelling::sql_list(&listed, |s| s.name())
}

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

/// (target, list) of every pair that counts as listed (listed or clearing),
/// without their details: the impact assessment after each sweep and log
/// read needs only the keys, and a large sender has tens of thousands.
pub fn listed_pairs(c: &Connection) -> Result<Vec<(String, String)>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT target, list FROM pair_state WHERE state IN ({}) ORDER BY target, list",
        listed_states()
    ))?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
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

/// A pair whose last answer from a healthy list was unusable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UncheckedPair {
    /// Target.
    pub target: String,
    /// List id.
    pub list: String,
    /// Since when (unix seconds).
    pub since: i64,
    /// The unusable answer, in words.
    pub why: String,
}

/// Records a pair as unchecked (`why` given) or checked again (`None`).
pub fn set_unchecked(
    c: &Connection,
    target: &str,
    list: &str,
    why: Option<&str>,
    at: i64,
) -> Result<()> {
    match why {
        Some(w) => c.execute(
            "INSERT INTO unchecked_pairs (target, list, since, why) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (target, list) DO UPDATE SET why = ?4",
            params![target, list, at, w],
        )?,
        None => c.execute(
            "DELETE FROM unchecked_pairs WHERE target = ?1 AND list = ?2",
            params![target, list],
        )?,
    };
    Ok(())
}

/// Unchecked pairs (of one target, or all).
pub fn unchecked_pairs(c: &Connection, target: Option<&str>) -> Result<Vec<UncheckedPair>> {
    // two forms: `(?1 IS NULL OR target = ?1)` cannot use the primary key
    let mut st = match target {
        Some(_) => c.prepare_cached(
            "SELECT target, list, since, why FROM unchecked_pairs WHERE target = ?1 ORDER BY list",
        )?,
        None => c.prepare_cached(
            "SELECT target, list, since, why FROM unchecked_pairs WHERE ?1 IS NULL ORDER BY target, list",
        )?,
    };
    let rows = st.query_map(params![target], |r| {
        Ok(UncheckedPair {
            target: r.get(0)?,
            list: r.get(1)?,
            since: r.get(2)?,
            why: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}
