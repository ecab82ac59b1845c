//! Versioned schema migrations, applied in order at open. `PRAGMA user_version`
//! records the last one applied; each runs in its own transaction.

use rusqlite::Connection;

/// The migrations, oldest first. Never edit a shipped one: add a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: DNSBL history, events, mail samples
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sweeps (
    id INTEGER PRIMARY KEY,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    status TEXT NOT NULL,            -- running | done | abandoned
    targets INTEGER NOT NULL DEFAULT 0,
    pairs INTEGER NOT NULL DEFAULT 0,
    listed INTEGER NOT NULL DEFAULT 0,
    clear INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    unknown INTEGER NOT NULL DEFAULT 0,
    lists_unhealthy INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER
);
-- only pairs that are not plainly clear
CREATE TABLE pair_state (
    target TEXT NOT NULL,
    list TEXT NOT NULL,
    state TEXT NOT NULL,
    seen INTEGER NOT NULL DEFAULT 0,
    since INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    codes TEXT NOT NULL DEFAULT '[]',
    meanings TEXT NOT NULL DEFAULT '[]',
    txt TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (target, list)
) WITHOUT ROWID;
CREATE TABLE listings (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    list TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    codes TEXT NOT NULL,
    meanings TEXT NOT NULL,
    txt TEXT NOT NULL,
    delist TEXT,
    baseline INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX listings_target ON listings (target, started_at);
CREATE INDEX listings_list ON listings (list, started_at);
CREATE UNIQUE INDEX listings_open ON listings (target, list) WHERE ended_at IS NULL;
CREATE TABLE list_health (
    list TEXT PRIMARY KEY,
    health TEXT NOT NULL,
    why TEXT NOT NULL,
    since INTEGER NOT NULL,
    checked_at INTEGER NOT NULL
);
CREATE TABLE list_health_history (
    id INTEGER PRIMARY KEY,
    list TEXT NOT NULL,
    health TEXT NOT NULL,
    why TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX list_health_history_list ON list_health_history (list, at);
CREATE TABLE baselines (spec TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    target TEXT,
    list TEXT,
    severity TEXT NOT NULL,
    baseline INTEGER NOT NULL DEFAULT 0,
    summary TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_target ON events (target, at);
CREATE TABLE metric_samples (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    metric TEXT NOT NULL,
    at INTEGER NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX metric_samples_key ON metric_samples (source, metric, at);
CREATE TABLE metric_hourly (
    source TEXT NOT NULL,
    metric TEXT NOT NULL,
    hour INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (source, metric, hour)
) WITHOUT ROWID;
"#,
    // 2: mail telemetry state (log positions, spike and probe states) and probe results
    r#"
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE probe_results (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    domain TEXT NOT NULL,
    server TEXT NOT NULL,
    verdict TEXT NOT NULL,
    catch_all_suspected INTEGER NOT NULL,
    why TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX probe_results_domain ON probe_results (domain, at);
"#,
    // 3: hook runs and the alert outbox
    r#"
CREATE TABLE hook_runs (
    id INTEGER PRIMARY KEY,
    hook TEXT NOT NULL,
    action TEXT NOT NULL,            -- run | revert | test
    event_id INTEGER,
    event_kind TEXT,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status TEXT NOT NULL,            -- ok | failed | timeout | error | dry_run | skipped_cooldown | skipped_cap
    exit_code INTEGER,
    argv TEXT NOT NULL,
    stdout TEXT NOT NULL,
    stderr TEXT NOT NULL
);
CREATE INDEX hook_runs_hook ON hook_runs (hook, started_at);
CREATE TABLE alert_outbox (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    event_ids TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,            -- pending | sent | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    sent_at INTEGER
);
CREATE INDEX alert_outbox_pending ON alert_outbox (status, next_attempt_at);
"#,
    // 4: the latest value of each metric, kept on insert, so pages never scan the samples
    r#"
CREATE TABLE metric_latest (
    source TEXT NOT NULL,
    metric TEXT NOT NULL,
    at INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (source, metric)
) WITHOUT ROWID;
INSERT OR REPLACE INTO metric_latest (source, metric, at, value)
    SELECT source, metric, at, value FROM metric_samples WHERE id IN (SELECT MAX(id) FROM metric_samples GROUP BY source, metric);
"#,
    // 5: typed event subjects. `target`/`list` used to carry a metric, a source,
    // a probed domain or a server; now they hold only a real target and list id,
    // and `subject` says what the event is about.
    r#"
ALTER TABLE events ADD COLUMN subject TEXT NOT NULL DEFAULT '{"kind":"none"}';
UPDATE events SET subject = json_object('kind', 'pair', 'target', target, 'list', list)
    WHERE kind IN ('listed', 'delisted') AND target IS NOT NULL AND list IS NOT NULL;
UPDATE events SET subject = json_object('kind', 'list', 'id', list), target = NULL
    WHERE kind IN ('list_unhealthy', 'list_recovered') AND list IS NOT NULL;
UPDATE events SET subject = json_object('kind', 'metric', 'source', list, 'metric', substr(target, length(list) + 2)),
    target = NULL, list = NULL
    WHERE kind IN ('queue_spike', 'queue_spike_cleared', 'ndr_spike', 'ndr_spike_cleared')
      AND list IS NOT NULL AND target IS NOT NULL;
UPDATE events SET subject = json_object('kind', 'probe', 'server', list, 'domain', target), target = NULL, list = NULL
    WHERE kind IN ('rndr_vulnerable', 'rndr_vulnerable_cleared') AND list IS NOT NULL AND target IS NOT NULL;
UPDATE events SET subject = json_object('kind', 'hook', 'name', list), target = NULL, list = NULL
    WHERE kind = 'hook_failed' AND list IS NOT NULL;
"#,
    // 6: the condition a hook run raises or clears (so a run interrupted by a
    // crash can still be accounted for), and per-channel delivery queries.
    r#"
ALTER TABLE hook_runs ADD COLUMN condition TEXT;
CREATE INDEX alert_outbox_channel ON alert_outbox (channel, status, next_attempt_at);
CREATE INDEX probe_results_at ON probe_results (at);
CREATE INDEX hook_runs_started ON hook_runs (started_at);
CREATE INDEX alert_outbox_created ON alert_outbox (created_at);
"#,
    // 7: pairs whose last answer from a healthy list was unusable (timeout, error
    // code): unchecked, never clear. Pairs of unhealthy lists are derived, not stored.
    r#"
CREATE TABLE unchecked_pairs (
    target TEXT NOT NULL,
    list TEXT NOT NULL,
    since INTEGER NOT NULL,
    why TEXT NOT NULL,
    PRIMARY KEY (target, list)
) WITHOUT ROWID;
"#,
    // 8: receivers' rejections from the MTA logs (one row per group of a log
    // read) and the MTA posture audits.
    r#"
CREATE TABLE rejections (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    source TEXT NOT NULL,
    receiver TEXT NOT NULL,
    outcome TEXT NOT NULL,           -- rejected | deferred
    meaning TEXT,                    -- reply meaning; NULL: no rule matched
    rule TEXT,
    list TEXT,
    zone TEXT,
    cited TEXT,                      -- a monitored target the reply names
    count INTEGER NOT NULL,
    reply TEXT NOT NULL,             -- one sample reply (remote text)
    relay TEXT,
    dsn TEXT,
    stage TEXT,
    queue_ids TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX rejections_at ON rejections (at);
CREATE INDEX rejections_receiver ON rejections (receiver, at);
CREATE TABLE audit_runs (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    audit TEXT NOT NULL,
    mta TEXT NOT NULL,
    ok INTEGER NOT NULL,             -- 0: the audit could not run (error)
    findings INTEGER NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX audit_runs_audit ON audit_runs (audit, at);
"#,
    // 9: delisting requests (who asked a list to remove a listing, when it is
    // expected gone, whether the overdue reminder went out)
    r#"
CREATE TABLE delist_requests (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    list TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    requested_by TEXT NOT NULL,
    via TEXT NOT NULL,               -- web | api | cli
    note TEXT NOT NULL DEFAULT '',
    listed_since INTEGER,            -- start of the listing period the request is about
    expected_by INTEGER NOT NULL,    -- requested_at + the list's typical expiry
    reminded_at INTEGER              -- when delist_overdue was raised
);
CREATE INDEX delist_requests_pair ON delist_requests (target, list, requested_at);
"#,
    // 10: receivers' feeds: DMARC aggregate reports (one row per report, kept
    // by organisation and report id so none is counted twice), their records
    // per day and source IP, the mails taken (read once) and the rejections
    r#"
CREATE TABLE dmarc_reports (
    org TEXT NOT NULL,
    report_id TEXT NOT NULL,
    feed TEXT NOT NULL,
    domain TEXT NOT NULL,
    begin_at INTEGER NOT NULL,
    end_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (org, report_id)
) WITHOUT ROWID;
CREATE TABLE dmarc_records (
    id INTEGER PRIMARY KEY,
    org TEXT NOT NULL,
    report_id TEXT NOT NULL,
    day TEXT NOT NULL,               -- UTC day of the report's range start
    source_ip TEXT NOT NULL,
    header_from TEXT NOT NULL,
    count INTEGER NOT NULL,
    disposition TEXT NOT NULL,       -- none | quarantine | reject
    dkim TEXT NOT NULL,              -- aligned: pass | fail
    spf TEXT NOT NULL,
    dkim_results TEXT NOT NULL,      -- JSON ["domain=result", ...]
    spf_results TEXT NOT NULL
);
CREATE INDEX dmarc_records_day ON dmarc_records (day, source_ip);
CREATE INDEX dmarc_records_report ON dmarc_records (org, report_id);
CREATE TABLE feed_mails (
    feed TEXT NOT NULL,
    key TEXT NOT NULL,               -- Maildir unique name or IMAP UIDVALIDITY:UID
    at INTEGER NOT NULL,
    reports INTEGER NOT NULL,
    PRIMARY KEY (feed, key)
) WITHOUT ROWID;
CREATE TABLE feed_rejects (
    id INTEGER PRIMARY KEY,
    feed TEXT NOT NULL,
    mail TEXT NOT NULL,
    at INTEGER NOT NULL,
    reason TEXT NOT NULL,            -- no_report | oversized | dtd | malformed | invalid | duplicate
    detail TEXT NOT NULL
);
CREATE INDEX feed_rejects_feed ON feed_rejects (feed, at);
"#,
    // 11: Microsoft SNDS: per feed, IP and day the data export's row (a
    // re-fetch replaces it: idempotent), the days fetched (a day with no rows
    // is "no data", never zero), and the IP status export's ranges as last read.
    r#"
CREATE TABLE snds_days (
    feed TEXT NOT NULL,
    ip TEXT NOT NULL,
    day TEXT NOT NULL,               -- YYYY-MM-DD, the day asked for
    row TEXT NOT NULL,               -- the parsed row, JSON (feeds::snds::DayRow)
    filter TEXT NOT NULL,            -- GREEN | YELLOW | RED
    recipients INTEGER NOT NULL,
    trap_hits INTEGER NOT NULL,
    fetched_at INTEGER NOT NULL,
    PRIMARY KEY (feed, ip, day)
) WITHOUT ROWID;
CREATE INDEX snds_days_ip ON snds_days (ip, day);
CREATE TABLE snds_fetched (
    feed TEXT NOT NULL,
    day TEXT NOT NULL,
    rows INTEGER NOT NULL,           -- 0: SNDS had no data for the day
    fetched_at INTEGER NOT NULL,
    PRIMARY KEY (feed, day)
) WITHOUT ROWID;
CREATE TABLE snds_status (
    feed TEXT NOT NULL,
    first_ip TEXT NOT NULL,
    last_ip TEXT NOT NULL,
    blocked INTEGER NOT NULL,
    reason TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (feed, first_ip, last_ip)
) WITHOUT ROWID;
"#,
    // 12: Google Postmaster Tools v2, per domain and day; NULL: Google gave no
    // figure (not enough volume), never zero
    r#"
CREATE TABLE postmaster_days (
    domain TEXT NOT NULL,
    day TEXT NOT NULL,               -- YYYY-MM-DD (UTC)
    feed TEXT NOT NULL,
    fetched_at INTEGER NOT NULL,
    spam_rate REAL,                  -- 0 to 1
    spf_rate REAL,
    dkim_rate REAL,
    dmarc_rate REAL,
    tls_rate REAL,
    delivery_error_rate REAL,
    reject_rate REAL,
    temp_fail_rate REAL,
    PRIMARY KEY (domain, day)
) WITHOUT ROWID;
CREATE TABLE postmaster_compliance (
    domain TEXT PRIMARY KEY,
    feed TEXT NOT NULL,
    fetched_at INTEGER NOT NULL,
    status TEXT NOT NULL             -- JSON: the requirements as Google spells them
);
"#,
];

/// Applies every migration newer than the database.
pub fn apply(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?
        .try_into()
        .unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_apply_once() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        super::apply(&mut c).unwrap();
        super::apply(&mut c).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, super::MIGRATIONS.len());
    }
}
