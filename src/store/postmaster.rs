//! Google Postmaster Tools figures per domain and day, and each domain's
//! latest compliance status. A day Google gave no figure for is a row of
//! NULLs ("not enough volume"); a later read that finds figures replaces it.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{json, Result};
use crate::feeds::postmaster::client::DomainReading;
use crate::feeds::postmaster::{standing, Compliance, DayStats, SpamStanding};

/// Stores one read: every day asked about (figures or none) and the compliance status.
pub fn put_postmaster(c: &Connection, feed: &str, at: i64, read: &[DomainReading]) -> Result<()> {
    let mut day = c.prepare_cached(
        "INSERT OR REPLACE INTO postmaster_days (domain, day, feed, fetched_at, spam_rate, spf_rate,
            dkim_rate, dmarc_rate, tls_rate, delivery_error_rate, reject_rate, temp_fail_rate)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for r in read {
        for d in &r.days {
            day.execute(params![
                r.domain,
                d.day,
                feed,
                at,
                d.spam_rate,
                d.spf_rate,
                d.dkim_rate,
                d.dmarc_rate,
                d.tls_rate,
                d.delivery_error_rate,
                d.reject_rate,
                d.temp_fail_rate
            ])?;
        }
        c.execute(
            "INSERT OR REPLACE INTO postmaster_compliance (domain, feed, fetched_at, status) VALUES (?1, ?2, ?3, ?4)",
            params![r.domain, feed, at, json(&r.compliance)],
        )?;
    }
    Ok(())
}

/// Forgets the Postmaster Tools days and compliance of domains no longer
/// configured (`keep`: every configured feed's domains): a removed domain's
/// standing would otherwise stay in the verdict for [`STANDING_DAYS`].
/// Returns the rows removed.
///
/// [`STANDING_DAYS`]: crate::feeds::postmaster::STANDING_DAYS
pub fn forget_postmaster_domains_except(c: &Connection, keep: &[String]) -> Result<usize> {
    let keep = json(&keep);
    let mut n = 0;
    for table in ["postmaster_days", "postmaster_compliance"] {
        n += c.execute(
            &format!(
                "DELETE FROM {table} WHERE lower(domain) NOT IN (SELECT lower(value) FROM json_each(?1))"
            ),
            params![keep],
        )?;
    }
    Ok(n)
}

/// A domain's stored days since `since_day` (`YYYY-MM-DD`), oldest first.
pub fn postmaster_days(c: &Connection, domain: &str, since_day: &str) -> Result<Vec<DayStats>> {
    let mut st = c.prepare_cached(
        "SELECT day, spam_rate, spf_rate, dkim_rate, dmarc_rate, tls_rate, delivery_error_rate,
                reject_rate, temp_fail_rate
         FROM postmaster_days WHERE domain = ?1 AND day >= ?2 ORDER BY day",
    )?;
    let rows = st.query_map(params![domain, since_day], |r| {
        Ok(DayStats {
            day: r.get(0)?,
            spam_rate: r.get(1)?,
            spf_rate: r.get(2)?,
            dkim_rate: r.get(3)?,
            dmarc_rate: r.get(4)?,
            tls_rate: r.get(5)?,
            delivery_error_rate: r.get(6)?,
            reject_rate: r.get(7)?,
            temp_fail_rate: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// The domains with stored days.
pub fn postmaster_domains(c: &Connection) -> Result<Vec<String>> {
    let mut st = c.prepare_cached("SELECT DISTINCT domain FROM postmaster_days ORDER BY domain")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Where each domain's Gmail spam rate stands since `since_day`: `Ok` with
/// the latest figure, or `Err(domain)` when no day since has one (not
/// enough volume).
pub fn gmail_standings(
    c: &Connection,
    since_day: &str,
) -> Result<Vec<std::result::Result<SpamStanding, String>>> {
    let mut out = Vec::new();
    for d in postmaster_domains(c)? {
        let days = postmaster_days(c, &d, since_day)?;
        if days.is_empty() {
            continue;
        }
        out.push(standing(&d, &days).ok_or(d));
    }
    Ok(out)
}

/// A domain's stored compliance status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredCompliance {
    /// The domain.
    pub domain: String,
    /// The feed that read it.
    pub feed: String,
    /// When.
    pub fetched_at: i64,
    /// The requirements.
    pub compliance: Compliance,
}

/// Every domain's latest compliance status.
pub fn postmaster_compliance(c: &Connection) -> Result<Vec<StoredCompliance>> {
    let mut st = c.prepare_cached(
        "SELECT domain, feed, fetched_at, status FROM postmaster_compliance ORDER BY domain",
    )?;
    let rows = st.query_map([], |r| {
        let s: String = r.get(3)?;
        Ok(StoredCompliance {
            domain: r.get(0)?,
            feed: r.get(1)?,
            fetched_at: r.get(2)?,
            compliance: super::parse_json(&s),
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}
