//! How many rows a paginated list holds (the API's `total`).

use rusqlite::{params, Connection};

use super::Result;

/// A list the pages and the API paginate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted<'a> {
    /// Every event.
    Events,
    /// Every hook run.
    HookRuns,
    /// Every alert delivery.
    Alerts,
    /// Every group of receivers' rejections.
    Rejections,
    /// Delisting requests, of one target or all.
    DelistRequests(Option<&'a str>),
}

/// The number of rows of `what`.
pub fn count_paged(c: &Connection, what: Counted<'_>) -> Result<u64> {
    let n: i64 = match what {
        Counted::Events => c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?,
        Counted::HookRuns => c.query_row("SELECT COUNT(*) FROM hook_runs", [], |r| r.get(0))?,
        Counted::Alerts => c.query_row("SELECT COUNT(*) FROM alert_outbox", [], |r| r.get(0))?,
        Counted::Rejections => c.query_row("SELECT COUNT(*) FROM rejections", [], |r| r.get(0))?,
        Counted::DelistRequests(t) => c.query_row(
            "SELECT COUNT(*) FROM delist_requests WHERE ?1 IS NULL OR target = ?1",
            params![t],
            |r| r.get(0),
        )?,
    };
    Ok(n.max(0) as u64)
}
