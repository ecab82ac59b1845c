//! MTA posture audit runs: each run's report (findings or the error) as JSON.

use rusqlite::{params, Connection};

use super::{json, Result};

/// Stores one audit run. `report` is the audit's JSON report.
pub fn insert_audit_run(
    c: &Connection,
    at: i64,
    audit: &str,
    mta: &str,
    ok: bool,
    findings: usize,
    report: &serde_json::Value,
) -> Result<()> {
    c.execute(
        "INSERT INTO audit_runs (at, audit, mta, ok, findings, report) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at, audit, mta, ok, findings as i64, json(report)],
    )?;
    Ok(())
}

/// The latest run of every audit (its report with `at` added), by name.
pub fn latest_audits(c: &Connection) -> Result<Vec<serde_json::Value>> {
    let mut st = c.prepare_cached(
        "SELECT a.at, a.report FROM audit_runs a
         JOIN (SELECT MAX(id) AS id FROM audit_runs GROUP BY audit) m ON a.id = m.id ORDER BY a.audit",
    )?;
    let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for r in rows {
        let (at, rep) = r?;
        let mut v: serde_json::Value = serde_json::from_str(&rep).unwrap_or_default();
        if v.is_object() {
            v["at"] = at.into();
        }
        out.push(v);
    }
    Ok(out)
}
