//! Backscatter probe results.

use rusqlite::{params, Connection};

use super::{json, Result};

/// Stores a probe result.
pub fn insert_probe(c: &Connection, at: i64, r: &crate::smtp_probe::ProbeReport) -> Result<()> {
    c.execute(
        "INSERT INTO probe_results (at, domain, server, verdict, catch_all_suspected, why, report) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![at, r.domain, r.server, r.verdict.as_str(), r.catch_all_suspected, r.why, json(r)],
    )?;
    Ok(())
}

/// A probe's stored report and when it ran.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredProbe {
    /// When it ran (unix seconds).
    pub at: i64,
    /// What it found.
    #[serde(flatten)]
    pub report: crate::smtp_probe::ProbeReport,
}

/// The latest probe of each (domain, server). A row that does not parse is
/// an error, never an empty report that reads as "nothing found".
pub fn latest_probes(c: &Connection) -> Result<Vec<StoredProbe>> {
    let mut st = c.prepare_cached(
        "SELECT p.at, p.report FROM probe_results p
         JOIN (SELECT MAX(id) AS id FROM probe_results GROUP BY domain, server) m ON p.id = m.id ORDER BY p.domain",
    )?;
    let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for r in rows {
        let (at, rep) = r?;
        out.push(StoredProbe {
            at,
            report: serde_json::from_str(&rep)?,
        });
    }
    Ok(out)
}
