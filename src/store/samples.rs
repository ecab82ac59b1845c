//! Mail metrics: raw samples, hourly roll-ups and the latest value of each.

use rusqlite::{params, Connection};

use super::Result;

/// Stores a metric sample and folds it into its hourly roll-up.
pub fn insert_sample(
    c: &Connection,
    source: &str,
    metric: &str,
    at: i64,
    value: f64,
) -> Result<()> {
    c.execute(
        "INSERT INTO metric_samples (source, metric, at, value) VALUES (?1, ?2, ?3, ?4)",
        params![source, metric, at, value],
    )?;
    c.execute(
        "INSERT INTO metric_latest (source, metric, at, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (source, metric) DO UPDATE SET at = ?3, value = ?4 WHERE ?3 >= at",
        params![source, metric, at, value],
    )?;
    let hour = at - at.rem_euclid(3600);
    c.execute(
        "INSERT INTO metric_hourly (source, metric, hour, min, max, sum, count) VALUES (?1, ?2, ?3, ?4, ?4, ?4, 1)
         ON CONFLICT (source, metric, hour) DO UPDATE SET min = MIN(min, ?4), max = MAX(max, ?4), sum = sum + ?4, count = count + 1",
        params![source, metric, hour, value],
    )?;
    Ok(())
}

/// Raw samples of a metric since `since`.
pub fn samples_since(
    c: &Connection,
    source: &str,
    metric: &str,
    since: i64,
) -> Result<Vec<(i64, f64)>> {
    let mut st = c.prepare_cached("SELECT at, value FROM metric_samples WHERE source = ?1 AND metric = ?2 AND at >= ?3 ORDER BY at")?;
    let rows = st.query_map(params![source, metric, since], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// When the oldest sample kept (raw or rolled up) was taken, if any: the
/// mail page's default range is the smallest that holds all of them.
pub fn oldest_sample(c: &Connection) -> Result<Option<i64>> {
    Ok(c.query_row(
        "SELECT MIN(t) FROM (SELECT MIN(at) AS t FROM metric_samples UNION ALL SELECT MIN(hour) FROM metric_hourly)",
        [],
        |r| r.get(0),
    )?)
}

/// The latest sample of every (source, metric).
pub fn latest_samples(c: &Connection) -> Result<Vec<(String, String, i64, f64)>> {
    let mut st = c.prepare_cached(
        "SELECT source, metric, at, value FROM metric_latest ORDER BY source, metric",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// A metric's series since `since`: every raw sample when there are at most
/// `buckets` of them (a daemon started seconds ago shows each reading, not
/// one 3-minute bucket), otherwise the highest value of each of `buckets`
/// buckets, at the time of the bucket's first sample; then, before the raw
/// samples (pruned), hourly roll-ups of the hours that ended before the first
/// raw sample, each at its hour's end. A point never stands before the samples
/// it sums up.
pub fn series(
    c: &Connection,
    source: &str,
    metric: &str,
    since: i64,
    now: i64,
    buckets: i64,
) -> Result<Vec<(i64, f64)>> {
    let buckets = buckets.max(1);
    // rounded up, so the window makes at most `buckets` buckets
    let width = ((now - since + buckets - 1) / buckets).max(1);
    // at most one more than fits: enough to know whether the raw samples need bucketing
    let mut raw = c.prepare_cached(
        "SELECT at, value FROM metric_samples WHERE source = ?1 AND metric = ?2 AND at >= ?3
         ORDER BY at LIMIT ?4",
    )?;
    let mut out: Vec<(i64, f64)> = raw
        .query_map(params![source, metric, since, buckets + 1], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<std::result::Result<_, _>>()?;
    if out.len() as i64 > buckets {
        let mut st = c.prepare_cached(
            "SELECT MIN(at), MAX(value) FROM metric_samples WHERE source = ?1 AND metric = ?2 AND at >= ?3
             GROUP BY (at - ?3) / ?4 ORDER BY 1",
        )?;
        out = st
            .query_map(params![source, metric, since, width], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<std::result::Result<_, _>>()?;
    }
    let first_raw = out.first().map(|p| p.0);
    if first_raw.is_none_or(|f| f > since + width) {
        let mut st = c.prepare_cached(
            "SELECT MAX(hour + 3599), MAX(max) FROM metric_hourly
             WHERE source = ?1 AND metric = ?2 AND hour >= ?3 AND hour + 3600 <= ?5 AND hour + 3599 <= ?6
             GROUP BY (hour - ?3) / ?4 ORDER BY 1",
        )?;
        let mut old: Vec<(i64, f64)> = st
            .query_map(
                params![
                    source,
                    metric,
                    since,
                    width,
                    first_raw.unwrap_or(i64::MAX),
                    now
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<std::result::Result<_, _>>()?;
        old.append(&mut out);
        out = old;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::memory_db as db;

    /// The status-page issue: a series plotted an hourly roll-up point before the first sample existed.
    #[test]
    fn no_point_before_the_first_sample() {
        let c = db();
        let now = 100 * 3600;
        let first = 90 * 3600 + 2700; // 45 minutes into an hour
        for i in 0..20 {
            insert_sample(&c, "mx", "queue_depth", first + i * 300, 5.0).unwrap();
        }
        let s = series(&c, "mx", "queue_depth", now - 86_400, now, 200).unwrap();
        assert!(!s.is_empty());
        assert!(s.iter().all(|(t, _)| *t >= first), "{s:?}");
        // once the raw samples are pruned, each hour is plotted at its end, never before its samples
        c.execute("DELETE FROM metric_samples", []).unwrap();
        let s = series(&c, "mx", "queue_depth", now - 86_400, now, 24).unwrap();
        assert!(!s.is_empty());
        assert!(s.iter().all(|(t, _)| *t >= first), "{s:?}");
    }

    /// The service-mode smoke: a 1 s source read 7 times in a fresh daemon was
    /// one point, because a day in 500 buckets makes each 172 s wide.
    #[test]
    fn few_samples_are_plotted_each_and_many_are_bucketed() {
        let c = db();
        let now = 100 * 3600;
        for i in 0..7 {
            insert_sample(&c, "cmd", "value", now - 7 + i, i as f64).unwrap();
        }
        let s = series(&c, "cmd", "value", now - 86_400, now, 500).unwrap();
        let want: Vec<(i64, f64)> = (0..7).map(|i| (now - 7 + i, i as f64)).collect();
        assert_eq!(s, want);
        // more samples than buckets: one point per bucket, the bucket's highest value
        for i in 0..600 {
            insert_sample(
                &c,
                "mx",
                "queue_depth",
                now - 86_400 + i * 144,
                (i % 7) as f64,
            )
            .unwrap();
        }
        let s = series(&c, "mx", "queue_depth", now - 86_400, now, 500).unwrap();
        assert!(s.len() <= 500 && s.len() >= 400, "{} points", s.len());
        assert!(s.iter().any(|(_, v)| *v == 6.0));
        let s = series(&c, "mx", "queue_depth", now - 86_400, now, 48).unwrap();
        assert_eq!(s.len(), 48, "{s:?}");
        assert!(s.iter().all(|(_, v)| *v == 6.0), "{s:?}");
    }
}
