//! Receivers' feeds: DMARC aggregate reports and the mails they came in.
//! A report is kept once by (organisation, report id): the primary key, not
//! a check in memory, is what makes a duplicate a duplicate across restarts.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{json, Result};
use crate::feeds::dmarc::{Aligned, Reject, Report};
pub use crate::feeds::senders::DmarcSender;

/// The keys of the mails a feed has taken (read once, whatever they held).
pub fn feed_mail_keys(c: &Connection, feed: &str) -> Result<HashSet<String>> {
    let mut st = c.prepare_cached("SELECT key FROM feed_mails WHERE feed = ?1")?;
    let rows = st.query_map(params![feed], |r| r.get(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Stores what one mail held: its reports (a report already stored is a
/// [`Reject::Duplicate`]) and its rejections, and marks the mail taken.
/// Returns the reports stored and every rejection.
pub fn commit_feed_mail(
    c: &Connection,
    feed: &str,
    key: &str,
    at: i64,
    results: Vec<std::result::Result<Report, Reject>>,
) -> Result<(Vec<Report>, Vec<Reject>)> {
    let mut stored = Vec::new();
    let mut rejects = Vec::new();
    for r in results {
        match r {
            Ok(rep) => {
                if insert_report(c, feed, at, &rep)? {
                    stored.push(rep);
                } else {
                    rejects.push(Reject::Duplicate {
                        org: rep.org,
                        id: rep.report_id,
                    });
                }
            }
            Err(e) => rejects.push(e),
        }
    }
    let mut st = c.prepare_cached(
        "INSERT INTO feed_rejects (feed, mail, at, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for r in &rejects {
        st.execute(params![feed, key, at, r.kind(), r.to_string()])?;
    }
    c.execute(
        "INSERT OR IGNORE INTO feed_mails (feed, key, at, reports) VALUES (?1, ?2, ?3, ?4)",
        params![feed, key, at, stored.len() as i64],
    )?;
    Ok((stored, rejects))
}

/// Inserts a report and its records; false when (org, report id) is already stored.
fn insert_report(c: &Connection, feed: &str, at: i64, r: &Report) -> Result<bool> {
    let messages: u64 = r.records.iter().map(|x| x.count).sum();
    let n = c.execute(
        "INSERT OR IGNORE INTO dmarc_reports (org, report_id, feed, domain, begin_at, end_at, received_at, messages)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![r.org, r.report_id, feed, r.domain, r.begin, r.end, at, messages as i64],
    )?;
    if n == 0 {
        return Ok(false);
    }
    let day = r.day();
    let mut st = c.prepare_cached(
        "INSERT INTO dmarc_records (org, report_id, day, source_ip, header_from, count, disposition, dkim, spf, dkim_results, spf_results)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let s = |a: Aligned| match a {
        Aligned::Pass => "pass",
        Aligned::Fail => "fail",
    };
    for x in &r.records {
        let from = if x.header_from.is_empty() {
            &r.domain
        } else {
            &x.header_from
        };
        st.execute(params![
            r.org,
            r.report_id,
            day,
            x.source_ip.to_string(),
            from,
            x.count.min(i64::MAX as u64) as i64,
            x.disposition,
            s(x.dkim),
            s(x.spf),
            json(&x.dkim_results),
            json(&x.spf_results),
        ])?;
    }
    Ok(true)
}

/// Rejections per feed and reason since the start (metrics, API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FeedRejectCount {
    /// Feed name.
    pub feed: String,
    /// Reason (`duplicate`, `oversized`…).
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// Counts of rejections by feed and reason.
pub fn feed_reject_counts(c: &Connection) -> Result<Vec<FeedRejectCount>> {
    let mut st = c.prepare_cached(
        "SELECT feed, reason, count(*) FROM feed_rejects GROUP BY feed, reason ORDER BY feed, reason",
    )?;
    let rows = st.query_map([], |r| {
        Ok(FeedRejectCount {
            feed: r.get(0)?,
            reason: r.get(1)?,
            count: r.get::<_, i64>(2)? as u64,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// One stored rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FeedReject {
    /// Feed name.
    pub feed: String,
    /// The mail's key (Maildir name, `UIDVALIDITY:UID`).
    pub mail: String,
    /// When.
    pub at: i64,
    /// Reason (`dtd`, `oversized`…).
    pub reason: String,
    /// The reason in words.
    pub detail: String,
}

/// The latest rejections (newest first).
pub fn feed_rejects(c: &Connection, limit: usize) -> Result<Vec<FeedReject>> {
    let mut st = c.prepare_cached(
        "SELECT feed, mail, at, reason, detail FROM feed_rejects ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = st.query_map(params![limit as i64], |r| {
        Ok(FeedReject {
            feed: r.get(0)?,
            mail: r.get(1)?,
            at: r.get(2)?,
            reason: r.get(3)?,
            detail: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Every (IP, domain) in reports about days since `since_day` (`YYYY-MM-DD`), most mail first.
pub fn dmarc_senders(c: &Connection, since_day: &str) -> Result<Vec<DmarcSender>> {
    let mut st = c.prepare_cached(
        "SELECT source_ip, header_from, sum(count), sum(CASE WHEN dkim = 'pass' OR spf = 'pass' THEN count ELSE 0 END),
                max(day), group_concat(DISTINCT org)
         FROM dmarc_records WHERE day >= ?1 GROUP BY source_ip, header_from
         ORDER BY sum(count) DESC, source_ip LIMIT 10000",
    )?;
    let rows = st.query_map(params![since_day], |r| {
        let orgs: Option<String> = r.get(5)?;
        Ok(DmarcSender {
            ip: r.get(0)?,
            domain: r.get(1)?,
            messages: r.get::<_, i64>(2)? as u64,
            passed: r.get::<_, i64>(3)? as u64,
            last_day: r.get(4)?,
            orgs: orgs
                .map(|o| o.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Messages per source IP that DMARC passed for one day (the volume to weigh listings by).
pub fn dmarc_day_volume(c: &Connection, day: &str) -> Result<Vec<(String, u64)>> {
    let mut st = c.prepare_cached(
        "SELECT source_ip, sum(count) FROM dmarc_records
         WHERE day = ?1 AND (dkim = 'pass' OR spf = 'pass') GROUP BY source_ip",
    )?;
    let rows = st.query_map(params![day], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Whether a report is stored (tests, API).
pub fn dmarc_report_exists(c: &Connection, org: &str, id: &str) -> Result<bool> {
    Ok(c.query_row(
        "SELECT 1 FROM dmarc_reports WHERE org = ?1 AND report_id = ?2",
        params![org, id],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}
