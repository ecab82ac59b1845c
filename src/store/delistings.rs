//! Delisting requests: who asked a list to remove a listing and when, when it
//! is expected gone (the list's typical expiry), whether the reminder went
//! out, and (from the listing periods) when it really went, so the time to
//! delist is known. Also the commit of a one-pair re-check, which the
//! delisting workflow triggers.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::pairs::listed_states;
use super::{insert_event, PairUpdate, PeriodChange, Result};
use crate::event::Event;

crate::spelling::closed_set! {
    /// Where a delisting request came from.
    pub enum DelistVia {
        /// The button on the target page.
        Web = "web",
        /// `POST /api/v1/delistings` (what `rblwatch delist` uses while the daemon runs).
        Api = "api",
        /// `rblwatch delist` writing to the database itself (no daemon reachable).
        Cli = "cli",
    }
}

/// How long a delisting is expected to take when the catalog gives the list
/// no typical expiry: three days, after which the reminder goes out.
pub const DEFAULT_DELIST_WAIT: std::time::Duration = std::time::Duration::from_secs(3 * 86_400);

/// How long to wait for a requested delisting: the list's typical expiry, or [`DEFAULT_DELIST_WAIT`].
pub fn delist_wait(expiry: Option<std::time::Duration>) -> std::time::Duration {
    expiry.unwrap_or(DEFAULT_DELIST_WAIT)
}

/// A request to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelistRequest {
    /// Target.
    pub target: String,
    /// List id.
    pub list: String,
    /// When (Unix time).
    pub at: i64,
    /// Who asked (a name; untrusted text, escaped when shown).
    pub by: String,
    /// Where from.
    pub via: DelistVia,
    /// A note (ticket number, what was fixed; untrusted text).
    pub note: String,
    /// How long the list typically takes to drop a listing once asked (its
    /// catalog expiry, or a default): the request is overdue after that.
    pub wait: std::time::Duration,
}

/// A recorded request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DelistRequest {
    /// Id.
    pub id: i64,
    /// Target.
    pub target: String,
    /// List id.
    pub list: String,
    /// When it was requested.
    pub requested_at: i64,
    /// Who asked.
    pub requested_by: String,
    /// Where from (`web`, `api`, `cli`).
    #[schema(value_type = String)]
    pub via: DelistVia,
    /// The note.
    pub note: String,
    /// Start of the listing period it is about.
    pub listed_since: Option<i64>,
    /// When the listing is expected gone.
    pub expected_by: i64,
    /// When the overdue reminder was raised.
    pub reminded_at: Option<i64>,
    /// When the listing ended (from its listing period), if it has.
    pub delisted_at: Option<i64>,
    /// Seconds from the request to the end of the listing, once it ended.
    pub time_to_delist: Option<i64>,
}

impl DelistRequest {
    /// Still listed past the expected time.
    pub fn overdue(&self, now: i64) -> bool {
        self.delisted_at.is_none() && now > self.expected_by
    }
}

const COLS: &str = "SELECT d.id, d.target, d.list, d.requested_at, d.requested_by, d.via, d.note, d.listed_since, d.expected_by, d.reminded_at,
    (SELECT l.ended_at FROM listings l WHERE l.target = d.target AND l.list = d.list AND l.ended_at IS NOT NULL
       AND (CASE WHEN d.listed_since IS NOT NULL THEN l.started_at = d.listed_since ELSE l.ended_at >= d.requested_at END)
     ORDER BY l.ended_at LIMIT 1) AS delisted_at
  FROM delist_requests d";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DelistRequest> {
    let requested_at: i64 = r.get(3)?;
    let delisted_at: Option<i64> = r.get(10)?;
    Ok(DelistRequest {
        id: r.get(0)?,
        target: r.get(1)?,
        list: r.get(2)?,
        requested_at,
        requested_by: r.get(4)?,
        via: r.get(5)?,
        note: r.get(6)?,
        listed_since: r.get(7)?,
        expected_by: r.get(8)?,
        reminded_at: r.get(9)?,
        delisted_at,
        // a listing whose clearing began before the request ends "before" it: zero, not negative
        time_to_delist: delisted_at.map(|d| (d - requested_at).max(0)),
    })
}

/// Records a request for a pair that is listed now; `None` when it is not
/// (nothing to delist), decided in the same statement as the insert.
pub fn insert_delist_request(
    c: &Connection,
    r: &NewDelistRequest,
) -> Result<Option<DelistRequest>> {
    let wait = i64::try_from(r.wait.as_secs()).unwrap_or(i64::MAX / 4);
    let n = c.execute(
        &format!("INSERT INTO delist_requests (target, list, requested_at, requested_by, via, note, listed_since, expected_by)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6,
           (SELECT started_at FROM listings WHERE target = ?1 AND list = ?2 AND ended_at IS NULL),
           ?3 + ?7
         WHERE EXISTS (SELECT 1 FROM pair_state WHERE target = ?1 AND list = ?2 AND state IN ({}))", listed_states()),
        params![r.target, r.list, r.at, r.by, r.via, r.note, wait],
    )?;
    if n == 0 {
        return Ok(None);
    }
    let id = c.last_insert_rowid();
    Ok(c.query_row(&format!("{COLS} WHERE d.id = ?1"), [id], row)
        .optional()?)
}

/// Requests, newest first: of one target, or of all.
pub fn delist_requests(
    c: &Connection,
    target: Option<&str>,
    limit: u32,
    offset: u32,
) -> Result<Vec<DelistRequest>> {
    let wh = if target.is_some() {
        "d.target = ?1"
    } else {
        "?1 IS NULL"
    };
    let mut st = c.prepare_cached(&format!(
        "{COLS} WHERE {wh} ORDER BY d.id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = st.query_map(params![target, limit, offset], row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// The latest request of every pair that is still listed and not delisted since.
pub fn open_delist_requests(c: &Connection) -> Result<Vec<DelistRequest>> {
    let mut st = c.prepare_cached(&format!(
        "{COLS} WHERE d.id IN (SELECT MAX(id) FROM delist_requests GROUP BY target, list)
           AND EXISTS (SELECT 1 FROM pair_state p WHERE p.target = d.target AND p.list = d.list AND p.state IN ({}))
         ORDER BY d.target, d.list",
        listed_states()
    ))?;
    let rows = st.query_map([], row)?;
    let all: Vec<DelistRequest> = rows.collect::<std::result::Result<_, _>>()?;
    Ok(all
        .into_iter()
        .filter(|d| d.delisted_at.is_none())
        .collect())
}

/// Open requests past their expected time whose reminder has not gone out.
pub fn due_delist_reminders(c: &Connection, now: i64) -> Result<Vec<DelistRequest>> {
    Ok(open_delist_requests(c)?
        .into_iter()
        .filter(|d| d.reminded_at.is_none() && d.overdue(now))
        .collect())
}

/// Records that the reminders of `ids` went out, with their events, in one transaction.
pub fn commit_delist_reminders(
    c: &mut Connection,
    ids: &[i64],
    at: i64,
    events: &[Event],
) -> Result<Vec<Event>> {
    let tx = c.transaction()?;
    for id in ids {
        tx.execute(
            "UPDATE delist_requests SET reminded_at = ?2 WHERE id = ?1",
            params![id, at],
        )?;
    }
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        out.push(insert_event(&tx, e)?);
    }
    tx.commit()?;
    Ok(out)
}

/// Records a request and its event in one transaction; `None` when the pair is not listed.
pub fn commit_delist_request(
    c: &mut Connection,
    r: &NewDelistRequest,
    event: impl FnOnce(&DelistRequest) -> Event,
) -> Result<Option<(DelistRequest, Event)>> {
    let tx = c.transaction()?;
    let Some(d) = insert_delist_request(&tx, r)? else {
        return Ok(None);
    };
    let e = insert_event(&tx, &event(&d))?;
    tx.commit()?;
    Ok(Some((d, e)))
}

/// What a one-pair re-check writes: like a sweep's commit for one pair, with no sweep row.
#[derive(Debug, Clone, Default)]
pub struct RecheckCommit {
    /// When it finished.
    pub at: i64,
    /// The pair's new state, when it changed.
    pub pair: Option<PairUpdate>,
    /// A listing period opened or closed.
    pub period: Option<PeriodChange>,
    /// Events (ids are filled in on commit).
    pub events: Vec<Event>,
}

/// Writes a re-check in one transaction; returns the events with their ids.
pub fn commit_recheck(c: &mut Connection, r: &RecheckCommit) -> Result<Vec<Event>> {
    let tx = c.transaction()?;
    if let Some(p) = &r.pair {
        super::sweeps::write_pair(&tx, p, r.at)?;
    }
    if let Some(ch) = &r.period {
        super::sweeps::write_period(&tx, ch)?;
    }
    let mut out = Vec::with_capacity(r.events.len());
    for e in &r.events {
        out.push(insert_event(&tx, e)?);
    }
    tx.commit()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::evaluator::{ListingDetails, PairState};
    use crate::store::{begin_sweep, commit_sweep, SweepCommit};

    use crate::store::memory_db as db;

    fn list_pair(c: &mut Connection, at: i64) {
        let d = Arc::new(ListingDetails::default());
        let commit = SweepCommit {
            sweep_id: begin_sweep(c, at).unwrap(),
            finished_at: at,
            pairs: vec![PairUpdate {
                target: "192.0.2.1".into(),
                list: "spamcop".into(),
                state: PairState::Listed,
                since: at,
                details: d.clone(),
            }],
            periods: vec![PeriodChange::Open {
                target: "192.0.2.1".into(),
                list: "spamcop".into(),
                at,
                details: d,
                baseline: false,
            }],
            ..Default::default()
        };
        commit_sweep(c, &commit).unwrap();
    }

    fn request(at: i64) -> NewDelistRequest {
        NewDelistRequest {
            target: "192.0.2.1".into(),
            list: "spamcop".into(),
            at,
            by: "alice <script>".into(),
            via: DelistVia::Web,
            note: "ticket 42".into(),
            wait: Duration::from_secs(86_400),
        }
    }

    #[test]
    fn requests_need_a_listing_and_track_time_to_delist() {
        let mut c = db();
        assert_eq!(
            insert_delist_request(&c, &request(50)).unwrap(),
            None,
            "nothing listed yet"
        );
        list_pair(&mut c, 100);
        let d = insert_delist_request(&c, &request(1_000)).unwrap().unwrap();
        assert_eq!(d.listed_since, Some(100));
        assert_eq!(d.expected_by, 1_000 + 86_400);
        assert_eq!((d.delisted_at, d.time_to_delist), (None, None));
        assert_eq!(d.requested_by, "alice <script>");
        assert_eq!(open_delist_requests(&c).unwrap().len(), 1);
        assert!(due_delist_reminders(&c, 1_000 + 86_400).unwrap().is_empty());
        let due = due_delist_reminders(&c, 1_000 + 86_401).unwrap();
        assert_eq!(due.len(), 1);
        commit_delist_reminders(&mut c, &[due[0].id], 90_000, &[]).unwrap();
        assert!(
            due_delist_reminders(&c, 100_000).unwrap().is_empty(),
            "one reminder per request"
        );
        // the listing ends (the re-check's commit): time to delist is known, nothing is open
        commit_recheck(
            &mut c,
            &RecheckCommit {
                at: 5_000,
                pair: Some(PairUpdate {
                    target: "192.0.2.1".into(),
                    list: "spamcop".into(),
                    state: PairState::Clear,
                    since: 4_600,
                    details: Default::default(),
                }),
                period: Some(PeriodChange::Close {
                    target: "192.0.2.1".into(),
                    list: "spamcop".into(),
                    at: 4_600,
                }),
                events: vec![],
            },
        )
        .unwrap();
        let all = delist_requests(&c, Some("192.0.2.1"), 10, 0).unwrap();
        assert_eq!(
            (all[0].delisted_at, all[0].time_to_delist),
            (Some(4_600), Some(3_600))
        );
        assert!(open_delist_requests(&c).unwrap().is_empty());
        assert!(crate::store::load_pairs(&c).unwrap().is_empty());
        assert_eq!(
            insert_delist_request(&c, &request(6_000)).unwrap(),
            None,
            "no longer listed"
        );
        // listed again later: an old request does not count for the new listing
        list_pair(&mut c, 10_000);
        assert!(open_delist_requests(&c).unwrap().is_empty());
    }
}
