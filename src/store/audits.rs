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

/// An audit's stored report and when it ran.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredAudit {
    /// When it ran (unix seconds).
    pub at: i64,
    /// What it found.
    #[serde(flatten)]
    pub report: crate::audit::AuditReport,
}

/// The latest run of every audit, by name. A row that does not parse is an
/// error, never an empty report that reads as "no finding".
pub fn latest_audits(c: &Connection) -> Result<Vec<StoredAudit>> {
    let mut st = c.prepare_cached(
        "SELECT a.at, a.report FROM audit_runs a
         JOIN (SELECT MAX(id) AS id FROM audit_runs GROUP BY audit) m ON a.id = m.id ORDER BY a.audit",
    )?;
    let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for r in rows {
        let (at, rep) = r?;
        out.push(StoredAudit {
            at,
            report: serde_json::from_str(&rep)?,
        });
    }
    Ok(out)
}
