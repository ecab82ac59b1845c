//! Sweeps: a row per sweep (begun at once, so an interrupted one is visible)
//! and the one transaction that commits everything a sweep found.

use rusqlite::{params, Connection, OptionalExtension};

use super::*;
use super::{json, Result};
use crate::engine::SweepStatus;
use crate::evaluator::PairState;
pub use crate::evaluator::{PairUpdate, PeriodChange};
use crate::event::Event;
use crate::health::ListHealth;
use serde::Serialize;

/// Counts of a sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SweepCounts {
    /// Targets swept.
    pub targets: i64,
    /// Pairs asked.
    pub pairs: i64,
    /// Listed answers from healthy lists (`listings`: `listed` is a yes or no elsewhere in the API).
    #[serde(rename = "listings")]
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

/// Starts a sweep row (committed at once, so an interrupted sweep is visible as such).
pub fn begin_sweep(c: &Connection, started_at: i64) -> Result<i64> {
    c.execute(
        "INSERT INTO sweeps (started_at, status) VALUES (?1, ?2)",
        params![started_at, SweepStatus::Running],
    )?;
    Ok(c.last_insert_rowid())
}

/// Marks sweeps left `running` by a killed daemon as `abandoned`.
pub fn abandon_stale_sweeps(c: &Connection) -> Result<usize> {
    Ok(c.execute(
        "UPDATE sweeps SET status = ?1 WHERE status = ?2",
        params![SweepStatus::Abandoned, SweepStatus::Running],
    )?)
}

/// Writes a whole sweep in one transaction; returns the events with their ids.
pub fn commit_sweep(c: &mut Connection, s: &SweepCommit) -> Result<Vec<Event>> {
    let tx = c.transaction()?;
    let out = write_sweep(&tx, s)?;
    tx.commit()?;
    Ok(out)
}

/// Writes a sweep inside the caller's transaction. Sweeps an earlier failure
/// left `running` (a write that failed on a full disk) are closed as
/// `abandoned` now that writing works again.
pub fn write_sweep(tx: &Connection, s: &SweepCommit) -> Result<Vec<Event>> {
    for h in &s.health {
        write_health(tx, &h.0, &h.1, s.finished_at)?;
    }
    for p in &s.pairs {
        write_pair(tx, p, s.finished_at)?;
    }
    for ch in &s.periods {
        write_period(tx, ch)?;
    }
    let mut out = Vec::with_capacity(s.events.len());
    for e in &s.events {
        out.push(insert_event(tx, e)?);
    }
    for spec in &s.baselined {
        tx.execute(
            "INSERT OR IGNORE INTO baselines (spec, at) VALUES (?1, ?2)",
            params![spec, s.finished_at],
        )?;
    }
    let n = &s.counts;
    tx.execute(
        "UPDATE sweeps SET finished_at = ?2, status = ?11, targets = ?3, pairs = ?4, listed = ?5, clear = ?6,
           errors = ?7, unknown = ?8, lists_unhealthy = ?9, duration_ms = ?10 WHERE id = ?1",
        params![s.sweep_id, s.finished_at, n.targets, n.pairs, n.listed, n.clear, n.errors, n.unknown, n.lists_unhealthy, s.duration_ms, SweepStatus::Done],
    )?;
    tx.execute(
        "UPDATE sweeps SET status = ?2 WHERE status = ?3 AND id != ?1",
        params![s.sweep_id, SweepStatus::Abandoned, SweepStatus::Running],
    )?;
    Ok(out)
}

/// A sweep as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SweepRow {
    /// Id.
    pub id: i64,
    /// Start.
    pub started_at: i64,
    /// End.
    pub finished_at: Option<i64>,
    /// running | done | abandoned.
    #[schema(value_type = String)]
    pub status: SweepStatus,
    /// Counts.
    pub counts: SweepCounts,
    /// Duration.
    pub duration_ms: Option<i64>,
}

/// The latest finished sweep.
pub fn last_sweep(c: &Connection) -> Result<Option<SweepRow>> {
    Ok(c
        .query_row(
            "SELECT id, started_at, finished_at, status, targets, pairs, listed, clear, errors, unknown, lists_unhealthy, duration_ms
             FROM sweeps WHERE status = ?1 ORDER BY id DESC LIMIT 1",
            params![SweepStatus::Done],
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

/// Stores a pair's new state at `at` (a clear pair's row is deleted: clear is
/// the absence of a row). Shared by sweeps and delisting re-checks.
pub(super) fn write_pair(tx: &Connection, p: &PairUpdate, at: i64) -> Result<()> {
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
                at,
                json(&p.details.codes),
                json(&p.details.meanings),
                json(&p.details.txt)
            ],
        )?;
    }
    Ok(())
}

/// Opens or closes a listing period. Shared by sweeps and delisting re-checks.
pub(super) fn write_period(tx: &Connection, ch: &PeriodChange) -> Result<()> {
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
    Ok(())
}
