//! Microsoft SNDS as stored: per feed, IP and day the data export's row (a
//! re-fetch of a day replaces its rows: idempotent), which days were fetched
//! (a fetched day without a row for an IP is "no data", never zero), and the
//! IP status export's ranges as last read.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{json, Result};
use crate::feeds::snds::{DayRow, IpStatus, Refusal};

/// Stores one successful run of a feed: the IP status export (replacing the
/// last) and each fetched day's rows (replacing that day's).
pub fn commit_snds(
    c: &Connection,
    feed: &str,
    at: i64,
    status: &[IpStatus],
    days: &[(String, Vec<DayRow>)],
) -> Result<()> {
    c.execute("DELETE FROM snds_status WHERE feed = ?1", params![feed])?;
    let mut st = c.prepare_cached(
        "INSERT OR REPLACE INTO snds_status (feed, first_ip, last_ip, blocked, reason, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for s in status {
        st.execute(params![
            feed,
            s.first.to_string(),
            s.last.to_string(),
            s.blocked,
            s.reason,
            at
        ])?;
    }
    let mut ins = c.prepare_cached(
        "INSERT OR REPLACE INTO snds_days (feed, ip, day, row, filter, recipients, trap_hits, fetched_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (day, rows) in days {
        if rows.is_empty() {
            // no data (yet) for the day: said as such, and rows a fetch got before are kept
            c.execute(
                "INSERT OR IGNORE INTO snds_fetched (feed, day, rows, fetched_at) VALUES (?1, ?2, 0, ?3)",
                params![feed, day, at],
            )?;
            continue;
        }
        c.execute(
            "DELETE FROM snds_days WHERE feed = ?1 AND day = ?2",
            params![feed, day],
        )?;
        for r in rows {
            ins.execute(params![
                feed,
                r.ip.to_string(),
                day,
                json(r),
                r.filter.as_str(),
                r.recipients as i64,
                r.trap_hits as i64,
                at
            ])?;
        }
        c.execute(
            "INSERT OR REPLACE INTO snds_fetched (feed, day, rows, fetched_at) VALUES (?1, ?2, ?3, ?4)",
            params![feed, day, rows.len() as i64, at],
        )?;
    }
    Ok(())
}

/// Forgets what SNDS feeds no longer configured stored (`keep`: the names
/// of the configured ones): their days and status ranges would otherwise go
/// on counting in the verdict and the pages. Returns the rows removed.
pub fn forget_snds_feeds_except(c: &Connection, keep: &[String]) -> Result<usize> {
    let keep = json(&keep);
    let mut n = 0;
    for table in ["snds_days", "snds_fetched", "snds_status"] {
        n += c.execute(
            &format!("DELETE FROM {table} WHERE feed NOT IN (SELECT value FROM json_each(?1))"),
            params![keep],
        )?;
    }
    Ok(n)
}

/// The IP status export's ranges as last read (every feed).
pub fn snds_status(c: &Connection) -> Result<Vec<IpStatus>> {
    let mut st = c.prepare_cached(
        "SELECT first_ip, last_ip, blocked, reason FROM snds_status ORDER BY first_ip",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (a, b, blocked, reason) = row?;
        // written from parsed addresses: a row that does not parse is skipped, not guessed
        if let (Ok(first), Ok(last)) = (a.parse(), b.parse()) {
            out.push(IpStatus {
                first,
                last,
                blocked,
                reason,
            });
        }
    }
    Ok(out)
}

/// Each IP's newest stored day since `since_day` (`YYYY-MM-DD`), every feed:
/// an IP SNDS has not reported since is not judged on an old day.
pub fn snds_latest(c: &Connection, since_day: &str) -> Result<Vec<(String, DayRow)>> {
    let mut st = c.prepare_cached(
        "SELECT d.day, d.row FROM snds_days d
         JOIN (SELECT ip, MAX(day) AS day FROM snds_days WHERE day >= ?1 GROUP BY ip) m ON m.ip = d.ip AND m.day = d.day
         ORDER BY d.ip",
    )?;
    let rows = st.query_map(params![since_day], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (day, j) = row?;
        out.push((day, serde_json::from_str(&j)?));
    }
    Ok(out)
}

/// What SNDS says refuses our mail: every blocked range (as last read), and
/// every IP whose newest day since `since_day` was filtered red (joined per IP).
pub fn snds_refusals(c: &Connection, since_day: &str) -> Result<Vec<Refusal>> {
    let mut by_ip: BTreeMap<String, Refusal> = BTreeMap::new();
    for s in snds_status(c)?.into_iter().filter(|s| s.blocked) {
        by_ip.insert(
            s.range(),
            Refusal {
                ip: s.range(),
                blocked: Some(s.reason.clone()),
                red: None,
            },
        );
    }
    for (day, r) in snds_latest(c, since_day)?
        .into_iter()
        .filter(|(_, r)| r.refused())
    {
        let ip = r.ip.to_string();
        by_ip
            .entry(ip.clone())
            .or_insert_with(|| Refusal {
                ip,
                blocked: None,
                red: None,
            })
            .red = Some((day, r));
    }
    Ok(by_ip.into_values().collect())
}

/// One day of an IP's SNDS history (the target page's table and charts).
#[derive(Debug, Clone, Serialize)]
pub struct SndsDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// The row; `None`: the day was fetched and SNDS had no data for the IP.
    pub row: Option<DayRow>,
}

/// An IP's days since `since_day` (`YYYY-MM-DD`), oldest first: every fetched
/// day, with its row or none.
pub fn snds_history(c: &Connection, ip: IpAddr, since_day: &str) -> Result<Vec<SndsDay>> {
    let mut st = c.prepare_cached(
        "SELECT f.day, MAX(d.row) FROM (SELECT DISTINCT day FROM snds_fetched WHERE day >= ?2) f
         LEFT JOIN snds_days d ON d.day = f.day AND d.ip = ?1
         GROUP BY f.day ORDER BY f.day",
    )?;
    let rows = st.query_map(params![ip.to_string(), since_day], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (day, j) = row?;
        let row = match j {
            Some(j) => Some(serde_json::from_str(&j)?),
            None => None,
        };
        out.push(SndsDay { day, row });
    }
    Ok(out)
}

/// The IPs SNDS saw sending since `since_day`: (IP, recipients, last day, a MAIL FROM domain).
pub fn snds_senders(c: &Connection, since_day: &str) -> Result<Vec<(String, u64, String, String)>> {
    let mut st = c.prepare_cached(
        "SELECT ip, SUM(recipients), MAX(day), MAX(row) FROM snds_days WHERE day >= ?1 AND recipients > 0 GROUP BY ip ORDER BY ip",
    )?;
    let rows = st.query_map(params![since_day], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (ip, n, day, j) = row?;
        let from = serde_json::from_str::<DayRow>(&j)
            .ok()
            .and_then(|r| {
                r.mail_from
                    .rsplit_once('@')
                    .map(|(_, d)| d.trim_end_matches('>').to_string())
            })
            .unwrap_or_default();
        out.push((ip, n.max(0) as u64, day, from));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::snds::{parse_data, parse_ip_status};

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrations::apply(&mut c).unwrap();
        c
    }

    fn count(c: &Connection, sql: &str) -> i64 {
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_day_fetched_again_is_stored_once_an_empty_day_is_no_data_and_old_red_days_do_not_count() {
        let c = db();
        let rows = parse_data(b"192.0.2.10,,,5,5,5,RED,4.2%,,,3,h,m@example.com,\r\n192.0.2.11,,,9,9,9,GREEN,,,,0,h,m,\r\n").unwrap();
        let status = parse_ip_status(b"192.0.2.0,192.0.2.3,Yes,Blocked\r\n").unwrap();
        for _ in 0..3 {
            commit_snds(
                &c,
                "snds",
                100,
                &status,
                &[
                    ("2026-12-04".into(), rows.clone()),
                    ("2026-12-03".into(), vec![]),
                ],
            )
            .unwrap();
        }
        assert_eq!(count(&c, "SELECT count(*) FROM snds_days"), 2);
        assert_eq!(count(&c, "SELECT count(*) FROM snds_status"), 1);
        // a later empty answer for a day keeps the rows fetched before
        commit_snds(&c, "snds", 200, &status, &[("2026-12-04".into(), vec![])]).unwrap();
        assert_eq!(
            count(&c, "SELECT rows FROM snds_fetched WHERE day = '2026-12-04'"),
            2
        );
        assert_eq!(
            count(&c, "SELECT rows FROM snds_fetched WHERE day = '2026-12-03'"),
            0
        );
        let h = snds_history(&c, "192.0.2.10".parse().unwrap(), "2026-12-01").unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(
            (h[0].day.as_str(), h[0].row.is_none()),
            ("2026-12-03", true)
        );
        assert_eq!(h[1].row.as_ref().unwrap().trap_hits, 3);
        let r = snds_refusals(&c, "2026-12-01").unwrap();
        assert_eq!(
            r.iter().map(|r| r.ip.as_str()).collect::<Vec<_>>(),
            vec!["192.0.2.0-192.0.2.3", "192.0.2.10"]
        );
        // a red day older than the window is not held against the IP; the block still is
        let r = snds_refusals(&c, "2026-12-05").unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].red.is_none());
        // the IP status export is replaced, not added to
        commit_snds(&c, "snds", 300, &[], &[]).unwrap();
        assert!(snds_refusals(&c, "2026-12-05").unwrap().is_empty());
        let s = snds_senders(&c, "2026-12-01").unwrap();
        assert_eq!(
            s[0],
            (
                "192.0.2.10".into(),
                5,
                "2026-12-04".into(),
                "example.com".into()
            )
        );
    }
}
