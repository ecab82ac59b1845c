//! The SQL against in-memory databases.

use std::sync::Arc;

use rusqlite::Connection;

use super::*;
use crate::evaluator::{ListingDetails, PairState};
use crate::event::{Event, EventKind};
use crate::health::ListHealth;

use super::memory_db as db;

#[test]
fn sweep_commit_round_trip() {
    let mut c = db();
    let id = begin_sweep(&c, 100).unwrap();
    let d = Arc::new(ListingDetails {
        codes: vec!["127.0.0.2".parse().unwrap()],
        txt: vec!["<b>x</b>".into()],
        ..Default::default()
    });
    let commit = SweepCommit {
        sweep_id: id,
        finished_at: 110,
        pairs: vec![PairUpdate {
            target: "192.0.2.1".into(),
            list: "bl".into(),
            state: PairState::Listed,
            since: 110,
            details: d.clone(),
        }],
        periods: vec![PeriodChange::Open {
            target: "192.0.2.1".into(),
            list: "bl".into(),
            at: 110,
            details: d.clone(),
            baseline: false,
        }],
        health: vec![("bl".into(), ListHealth::Healthy)],
        events: vec![Event::new(
            EventKind::Listed,
            110,
            crate::event::Subject::pair("192.0.2.1", "bl"),
            "x".into(),
            serde_json::json!({}),
        )],
        baselined: vec!["192.0.2.1".into()],
        ..Default::default()
    };
    let ev = commit_sweep(&mut c, &commit).unwrap();
    assert!(ev[0].id > 0);
    let pairs = load_pairs(&c).unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].state, PairState::Listed);
    assert_eq!(pairs[0].details.txt, vec!["<b>x</b>".to_string()]);
    assert_eq!(listings(&c, Some("192.0.2.1"), true).unwrap().len(), 1);
    assert!(baselined(&c).unwrap().contains("192.0.2.1"));
    assert_eq!(last_sweep(&c).unwrap().unwrap().finished_at, Some(110));
    // a second open of the same listing is ignored (no duplicate period)
    let mut again = commit.clone();
    again.sweep_id = begin_sweep(&c, 200).unwrap();
    again.events.clear();
    commit_sweep(&mut c, &again).unwrap();
    assert_eq!(listings(&c, None, false).unwrap().len(), 1);
    // closing, and clearing the pair deletes its row
    let close = SweepCommit {
        sweep_id: begin_sweep(&c, 300).unwrap(),
        finished_at: 310,
        pairs: vec![PairUpdate {
            target: "192.0.2.1".into(),
            list: "bl".into(),
            state: PairState::Clear,
            since: 310,
            details: Default::default(),
        }],
        periods: vec![PeriodChange::Close {
            target: "192.0.2.1".into(),
            list: "bl".into(),
            at: 310,
        }],
        ..Default::default()
    };
    commit_sweep(&mut c, &close).unwrap();
    assert!(load_pairs(&c).unwrap().is_empty());
    let l = listings(&c, Some("192.0.2.1"), false).unwrap();
    assert_eq!((l[0].started_at, l[0].ended_at), (110, Some(310)));
}

#[test]
fn health_history_records_changes_only() {
    let c = db();
    write_health(&c, "bl", &ListHealth::Healthy, 1).unwrap();
    write_health(&c, "bl", &ListHealth::Healthy, 2).unwrap();
    write_health(&c, "bl", &ListHealth::Dead { why: "x".into() }, 3).unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM list_health_history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(load_health(&c).unwrap()["bl"].name(), "dead");
}

#[test]
fn samples_roll_up_hourly_and_prune() {
    let mut c = db();
    for (at, v) in [(3600, 1.0), (3700, 5.0), (7300, 2.0)] {
        insert_sample(&c, "mx1", "queue_depth", at, v).unwrap();
    }
    let (mn, mx, n): (f64, f64, i64) = c
        .query_row(
            "SELECT min, max, count FROM metric_hourly WHERE hour = 3600",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((mn, mx, n), (1.0, 5.0, 2));
    // samples older than 30 days go, hourly roll-ups stay for 400
    prune(&mut c, 3600 + 31 * 86_400, 400, 30).unwrap();
    let s: i64 = c
        .query_row("SELECT COUNT(*) FROM metric_samples", [], |r| r.get(0))
        .unwrap();
    let h: i64 = c
        .query_row("SELECT COUNT(*) FROM metric_hourly", [], |r| r.get(0))
        .unwrap();
    assert_eq!((s, h), (0, 2));
}

/// Every table that grows is pruned, and what is still in flight is not: a
/// hook run still `running`, a message still `pending`, the latest report of
/// each audit however old. Old refusals and probe results go with the samples.
#[test]
fn retention_reaches_every_growing_table_but_spares_work_in_flight() {
    let mut c = db();
    let day = 86_400;
    let old = 10 * day; // older than 5 days of retention, 2 of samples
    let now = 20 * day;
    for (status, at) in [("ok", old), ("running", old), ("ok", now)] {
        c.execute(
            "INSERT INTO hook_runs (hook, action, started_at, duration_ms, status, argv, stdout, stderr) VALUES ('h', 'run', ?1, 0, ?2, '[]', '', '')",
            rusqlite::params![at, status],
        )
        .unwrap();
    }
    for (i, (status, at)) in [("sent", old), ("pending", old), ("failed", now)]
        .iter()
        .enumerate()
    {
        c.execute(
            "INSERT INTO alert_outbox (channel, dedup_key, created_at, event_ids, subject, body, status, next_attempt_at) VALUES ('c', ?1, ?2, '[]', 's', 'b', ?3, 0)",
            rusqlite::params![format!("k{i}"), at, status],
        )
        .unwrap();
    }
    for at in [old, now] {
        c.execute(
            "INSERT INTO probe_results (at, domain, server, verdict, catch_all_suspected, why, report) VALUES (?1, 'd', 's', 'rejects-unknown', 0, '', '{}')",
            [at],
        )
        .unwrap();
        c.execute(
            "INSERT INTO rejections (at, source, receiver, outcome, count, reply) VALUES (?1, 'log', 'gmail', 'rejected', 1, '550')",
            [at],
        )
        .unwrap();
        c.execute(
            "INSERT INTO delist_requests (target, list, requested_at, requested_by, via, expected_by) VALUES ('192.0.2.1', 'l', ?1, 'me', 'cli', ?1)",
            [at],
        )
        .unwrap();
    }
    // DMARC: an old day's records and rejections go, the report's key stays (never counted again)
    for (id, at) in [("old", old), ("new", now)] {
        let day = chrono::DateTime::from_timestamp(at, 0)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string();
        c.execute(
            "INSERT INTO dmarc_reports (org, report_id, feed, domain, begin_at, end_at, received_at, messages) VALUES ('o', ?1, 'f', 'example.com', ?2, ?2, ?2, 1)",
            rusqlite::params![id, at],
        )
        .unwrap();
        c.execute(
            "INSERT INTO dmarc_records (org, report_id, day, source_ip, header_from, count, disposition, dkim, spf, dkim_results, spf_results) VALUES ('o', ?1, ?2, '192.0.2.1', 'example.com', 1, 'none', 'pass', 'pass', '[]', '[]')",
            rusqlite::params![id, day],
        )
        .unwrap();
        c.execute(
            "INSERT INTO feed_rejects (feed, mail, at, reason, detail) VALUES ('f', 'm', ?1, 'dtd', 'x')",
            [at],
        )
        .unwrap();
    }
    // audit "a": two old reports (the newer stays); audit "b": one old report (stays)
    for (audit, at) in [("a", old - 1), ("a", old), ("b", old)] {
        c.execute(
            "INSERT INTO audit_runs (at, audit, mta, ok, findings, report) VALUES (?1, ?2, 'postfix', 1, 0, '{}')",
            rusqlite::params![at, audit],
        )
        .unwrap();
    }
    prune(&mut c, now, 5, 2).unwrap();
    let n = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(n("SELECT COUNT(*) FROM hook_runs"), 2);
    assert_eq!(
        n("SELECT COUNT(*) FROM hook_runs WHERE status = 'running'"),
        1
    );
    assert_eq!(n("SELECT COUNT(*) FROM alert_outbox"), 2);
    assert_eq!(
        n("SELECT COUNT(*) FROM alert_outbox WHERE status = 'pending'"),
        1
    );
    assert_eq!(n("SELECT COUNT(*) FROM probe_results"), 1);
    assert_eq!(n("SELECT COUNT(*) FROM rejections"), 1);
    assert_eq!(n("SELECT COUNT(*) FROM delist_requests"), 1);
    assert_eq!(n("SELECT COUNT(*) FROM audit_runs"), 2);
    assert_eq!(n("SELECT COUNT(*) FROM dmarc_records"), 1);
    assert_eq!(n("SELECT COUNT(*) FROM feed_rejects"), 1);
    assert_eq!(
        n("SELECT COUNT(*) FROM dmarc_reports"),
        2,
        "report keys stay: a re-sent old report is a duplicate"
    );
    assert_eq!(
        n(&format!(
            "SELECT COUNT(*) FROM audit_runs WHERE audit = 'a' AND at = {old}"
        )),
        1
    );
}

/// SQLite's memory has a process-wide ceiling once a store is open.
#[test]
fn sqlite_memory_is_capped_for_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let c = open_connection(&dir.path().join("t.db")).unwrap();
    let limit: i64 = c
        .query_row("PRAGMA soft_heap_limit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(limit, SQLITE_SOFT_HEAP_LIMIT);
    assert!(sqlite_memory_used() > 0);
    // and each connection's page cache has its own small cap (negative: KiB)
    let cache: i64 = c.query_row("PRAGMA cache_size", [], |r| r.get(0)).unwrap();
    assert_eq!(cache, -WRITER_CACHE_KIB);
    drop(c);
    let pool = ReadPool::new(&dir.path().join("t.db"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cache = rt
        .block_on(pool.read(|c| Ok(c.query_row("PRAGMA cache_size", [], |r| r.get::<_, i64>(0))?)))
        .unwrap();
    assert_eq!(cache, -READER_CACHE_KIB);
}

/// The SQL that picks hook runs by status binds the statuses from the enum
/// (crate::runs) instead of spelling them again: every status round-trips,
/// the per-hour cap counts exactly the runs that executed, and only a
/// `running` run is found interrupted at start.
#[test]
fn hook_run_statuses_in_sql_are_the_enums_own() {
    use crate::runs::{HookAction, HookStatus};
    let c = db();
    for (i, status) in HookStatus::ALL.into_iter().enumerate() {
        let run = HookRun {
            id: 0,
            hook: "h".into(),
            action: HookAction::Run,
            event_id: None,
            event_kind: None,
            started_at: 100 + i as i64,
            duration_ms: 0,
            status,
            exit_code: None,
            argv: vec![],
            stdout: String::new(),
            stderr: String::new(),
            condition: None,
        };
        insert_hook_run(&c, &run).unwrap();
    }
    let stored: Vec<HookStatus> = hook_runs(&c, Some("h"), 100, 0)
        .unwrap()
        .into_iter()
        .rev()
        .map(|r| r.status)
        .collect();
    assert_eq!(stored, HookStatus::ALL);
    let executed = HookStatus::ALL.iter().filter(|s| s.executed()).count() as i64;
    assert_eq!(hook_runs_since(&c, "h", 0).unwrap().0, executed);
    let interrupted = interrupt_running_hooks(&c).unwrap();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0].status, HookStatus::Interrupted);
    let n: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM hook_runs WHERE status = ?1",
            [HookStatus::Interrupted],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        n, 2,
        "the one that was running and the one stored interrupted"
    );
}

/// Sweep statuses likewise: begun `running`, a stale one `abandoned`, the
/// committed one `done` and the latest finished sweep found by it.
#[test]
fn sweep_statuses_in_sql_are_the_enums_own() {
    use crate::engine::SweepStatus;
    let mut c = db();
    let stale = begin_sweep(&c, 1).unwrap();
    let id = begin_sweep(&c, 2).unwrap();
    let status = |c: &Connection, id: i64| -> SweepStatus {
        c.query_row("SELECT status FROM sweeps WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(status(&c, id), SweepStatus::Running);
    commit_sweep(
        &mut c,
        &SweepCommit {
            sweep_id: id,
            finished_at: 3,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(status(&c, id), SweepStatus::Done);
    assert_eq!(status(&c, stale), SweepStatus::Abandoned);
    let last = last_sweep(&c).unwrap().unwrap();
    assert_eq!((last.id, last.status), (id, SweepStatus::Done));
}

/// The pairs that count as listed in SQL are the ones PairState says are.
#[test]
fn listed_states_in_sql_follow_pair_state() {
    assert_eq!(super::pairs::listed_states(), "'listed', 'clearing'");
}

/// Issue 19: probe and audit reports come back typed; a corrupt row is an
/// error, never an empty report read as "nothing found".
#[test]
fn corrupt_probe_and_audit_reports_are_errors_not_empty_reports() {
    let c = super::memory_db();
    c.execute(
        "INSERT INTO probe_results (at, domain, server, verdict, catch_all_suspected, why, report) VALUES (1, 'example.com', 'mx:25', 'accepts-unknown', 0, 'x', '{}')",
        [],
    )
    .unwrap();
    assert!(super::latest_probes(&c).is_err());
    c.execute(
        "INSERT INTO audit_runs (at, audit, mta, ok, findings, report) VALUES (1, 'postfix', 'postfix', 1, 0, 'not json')",
        [],
    )
    .unwrap();
    assert!(super::latest_audits(&c).is_err());
    // a real report reads back as it was written
    let report = crate::audit::AuditReport {
        name: "pf".into(),
        mta: crate::config::AuditMta::Postfix,
        command: vec!["postconf".into()],
        ok: true,
        error: None,
        version: None,
        checks: vec![],
        findings: vec![],
    };
    let c = super::memory_db();
    super::insert_audit_run(
        &c,
        5,
        "pf",
        "postfix",
        true,
        0,
        &serde_json::to_value(&report).unwrap(),
    )
    .unwrap();
    let got = super::latest_audits(&c).unwrap();
    assert_eq!((got[0].at, &got[0].report), (5, &report));
}

/// SNDS status ranges and Google Postmaster Tools days and compliance age out
/// with the retention period like the SNDS days (they were never pruned).
#[test]
fn snds_status_and_postmaster_rows_age_out_with_the_retention_period() {
    let mut c = db();
    let day = 86_400;
    let (old, now) = (10 * day, 20 * day);
    for (i, at) in [old, now].into_iter().enumerate() {
        let d = chrono::DateTime::from_timestamp(at, 0)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string();
        c.execute(
            "INSERT INTO snds_status (feed, first_ip, last_ip, blocked, reason, seen_at) VALUES ('s', ?1, ?1, 1, 'junked', ?2)",
            rusqlite::params![format!("192.0.2.{i}"), at],
        )
        .unwrap();
        c.execute(
            "INSERT INTO postmaster_days (domain, day, feed, fetched_at, spam_rate) VALUES ('example.com', ?1, 'g', ?2, 0.002)",
            rusqlite::params![d, at],
        )
        .unwrap();
        c.execute(
            "INSERT INTO postmaster_compliance (domain, feed, fetched_at, status) VALUES (?1, 'g', ?2, '{}')",
            rusqlite::params![format!("d{i}.example"), at],
        )
        .unwrap();
    }
    prune(&mut c, now, 5, 2).unwrap();
    let n = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(n("SELECT COUNT(*) FROM snds_status"), 1);
    assert_eq!(n("SELECT COUNT(*) FROM postmaster_days"), 1);
    assert_eq!(n("SELECT COUNT(*) FROM postmaster_compliance"), 1);
    assert_eq!(
        n("SELECT COUNT(*) FROM postmaster_compliance WHERE domain = 'd1.example'"),
        1
    );
}

/// What a feed or domain removed from the config stored stops counting: its
/// SNDS refusals and its Gmail standing are forgotten, the configured ones stay.
#[test]
fn feeds_and_domains_no_longer_configured_are_forgotten() {
    let c = db();
    let today = chrono::DateTime::from_timestamp(crate::time::now(), 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    for (feed, ip) in [("kept", "192.0.2.1"), ("gone", "192.0.2.2")] {
        c.execute(
            "INSERT INTO snds_status (feed, first_ip, last_ip, blocked, reason, seen_at) VALUES (?1, ?2, ?2, 1, 'junked', 1)",
            rusqlite::params![feed, ip],
        )
        .unwrap();
        c.execute(
            "INSERT INTO snds_fetched (feed, day, rows, fetched_at) VALUES (?1, ?2, 0, 1)",
            rusqlite::params![feed, today],
        )
        .unwrap();
    }
    for d in ["kept.example", "gone.example"] {
        c.execute(
            "INSERT INTO postmaster_days (domain, day, feed, fetched_at, spam_rate) VALUES (?1, ?2, 'g', 1, 0.004)",
            rusqlite::params![d, today],
        )
        .unwrap();
        c.execute(
            "INSERT INTO postmaster_compliance (domain, feed, fetched_at, status) VALUES (?1, 'g', 1, '{}')",
            rusqlite::params![d],
        )
        .unwrap();
    }
    assert_eq!(snds_refusals(&c, "2000-01-01").unwrap().len(), 2);
    assert_eq!(gmail_standings(&c, "2000-01-01").unwrap().len(), 2);
    let removed = forget_snds_feeds_except(&c, &["kept".to_string()]).unwrap()
        + forget_postmaster_domains_except(&c, &["Kept.example".to_string()]).unwrap();
    assert_eq!(removed, 4);
    let refusals = snds_refusals(&c, "2000-01-01").unwrap();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].ip, "192.0.2.1");
    let standings = gmail_standings(&c, "2000-01-01").unwrap();
    assert_eq!(standings.len(), 1);
    assert!(
        matches!(&standings[0], Ok(s) if s.domain == "kept.example"),
        "{standings:?}"
    );
    assert_eq!(postmaster_compliance(&c).unwrap().len(), 1);
    // nothing configured: everything goes
    forget_snds_feeds_except(&c, &[]).unwrap();
    assert!(snds_refusals(&c, "2000-01-01").unwrap().is_empty());
}
