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

/// The latest sample of every (source, metric).
pub fn latest_samples(c: &Connection) -> Result<Vec<(String, String, i64, f64)>> {
    let mut st = c.prepare_cached(
        "SELECT source, metric, at, value FROM metric_latest ORDER BY source, metric",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// A metric's series since `since`, averaged into `buckets` buckets (raw samples, then hourly roll-ups).
pub fn series(
    c: &Connection,
    source: &str,
    metric: &str,
    since: i64,
    now: i64,
    buckets: i64,
) -> Result<Vec<(i64, f64)>> {
    let width = ((now - since) / buckets.max(1)).max(1);
    let mut st = c.prepare_cached(
        "SELECT (at - ?3) / ?4 AS b, MAX(value) FROM metric_samples WHERE source = ?1 AND metric = ?2 AND at >= ?3 GROUP BY b ORDER BY b",
    )?;
    let rows: Vec<(i64, f64)> = st
        .query_map(params![source, metric, since, width], |r| {
            Ok((r.get::<_, i64>(0)?, r.get(1)?))
        })?
        .collect::<std::result::Result<_, _>>()?;
    let mut out: Vec<(i64, f64)> = rows
        .into_iter()
        .map(|(b, v)| (since + b * width, v))
        .collect();
    if out.is_empty() || out[0].0 > since + width {
        // older than the raw retention: use the hourly roll-ups
        let mut st = c.prepare_cached(
            "SELECT (hour - ?3) / ?4 AS b, MAX(max) FROM metric_hourly WHERE source = ?1 AND metric = ?2 AND hour >= ?3 GROUP BY b ORDER BY b",
        )?;
        let old: Vec<(i64, f64)> = st
            .query_map(params![source, metric, since, width], |r| {
                Ok((r.get::<_, i64>(0)?, r.get(1)?))
            })?
            .collect::<std::result::Result<_, _>>()?;
        let first = out.first().map_or(i64::MAX, |x| x.0);
        let mut merged: Vec<(i64, f64)> = old
            .into_iter()
            .map(|(b, v)| (since + b * width, v))
            .filter(|(t, _)| *t < first)
            .collect();
        merged.extend(out);
        out = merged;
    }
    Ok(out)
}
