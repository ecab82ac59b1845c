//! Retention, and the row counts `/metrics` reports.

use rusqlite::{params, Connection};

use super::Result;
use crate::runs::{HookStatus, OutboxStatus};

/// Deletes what is older than the retention periods; returns rows removed.
pub fn prune(c: &mut Connection, now: i64, retention_days: u32, sample_days: u32) -> Result<usize> {
    let old = now - i64::from(retention_days) * 86_400;
    let old_samples = now - i64::from(sample_days) * 86_400;
    let tx = c.transaction()?;
    let mut n = tx.execute("DELETE FROM events WHERE at < ?1", params![old])?;
    n += tx.execute(
        "DELETE FROM listings WHERE ended_at IS NOT NULL AND ended_at < ?1",
        params![old],
    )?;
    n += tx.execute(
        "DELETE FROM list_health_history WHERE at < ?1",
        params![old],
    )?;
    n += tx.execute("DELETE FROM sweeps WHERE started_at < ?1", params![old])?;
    n += tx.execute("DELETE FROM metric_hourly WHERE hour < ?1", params![old])?;
    n += tx.execute(
        "DELETE FROM metric_samples WHERE at < ?1",
        params![old_samples],
    )?;
    // every table that grows: hook runs, delivered or failed alerts, probe results
    // (a run still `running` and a message still pending are never removed)
    n += tx.execute(
        "DELETE FROM hook_runs WHERE started_at < ?1 AND status != ?2",
        params![old, HookStatus::Running],
    )?;
    n += tx.execute(
        "DELETE FROM alert_outbox WHERE created_at < ?1 AND status != ?2",
        params![old, OutboxStatus::Pending],
    )?;
    n += tx.execute(
        "DELETE FROM probe_results WHERE at < ?1",
        params![old_samples],
    )?;
    n += tx.execute("DELETE FROM rejections WHERE at < ?1", params![old_samples])?;
    // DMARC records age out with the retention period; the reports' (org, id)
    // rows and the taken mails' keys stay, small, so nothing old is counted again
    n += tx.execute(
        "DELETE FROM dmarc_records WHERE day < strftime('%Y-%m-%d', ?1, 'unixepoch')",
        params![old],
    )?;
    n += tx.execute("DELETE FROM feed_rejects WHERE at < ?1", params![old])?;
    // SNDS days age out like DMARC records (re-fetching an old day is not done)
    n += tx.execute(
        "DELETE FROM snds_days WHERE day < strftime('%Y-%m-%d', ?1, 'unixepoch')",
        params![old],
    )?;
    n += tx.execute(
        "DELETE FROM snds_fetched WHERE day < strftime('%Y-%m-%d', ?1, 'unixepoch')",
        params![old],
    )?;
    // an IP status range not read again within the retention period (the
    // feed's status export is replaced whole at each fetch: a stale row is a
    // feed that stopped fetching)
    n += tx.execute("DELETE FROM snds_status WHERE seen_at < ?1", params![old])?;
    // Postmaster Tools days age out like SNDS days; a domain's compliance
    // status not read again within the retention period goes with them
    n += tx.execute(
        "DELETE FROM postmaster_days WHERE day < strftime('%Y-%m-%d', ?1, 'unixepoch')",
        params![old],
    )?;
    n += tx.execute(
        "DELETE FROM postmaster_compliance WHERE fetched_at < ?1",
        params![old],
    )?;
    // the latest run of each audit stays, however old
    n += tx.execute(
        "DELETE FROM audit_runs WHERE at < ?1 AND id NOT IN (SELECT MAX(id) FROM audit_runs GROUP BY audit)",
        params![old_samples],
    )?;
    n += tx.execute(
        "DELETE FROM delist_requests WHERE requested_at < ?1",
        params![old],
    )?;
    tx.commit()?;
    Ok(n)
}

/// Counts grouped by two columns of a table (for metrics): (a, b, count).
pub fn counts(c: &Connection, table: &str, a: &str, b: &str) -> Result<Vec<(String, String, i64)>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {a}, {b}, COUNT(*) FROM {table} GROUP BY {a}, {b}"
    ))?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Number of rows in a table.
pub fn count_rows(c: &Connection, table: &str) -> Result<i64> {
    Ok(c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
}
