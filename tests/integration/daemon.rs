//! The daemon against a real rbldnsd and a real SQLite file: listing,
//! delisting, baseline, kill -9, signals.

use std::time::Duration;

use rusqlite::Connection;

use crate::util::{rblwatch, stdout, wait_for, write_config, Daemon, Rbldnsd};

fn db(cfg_dir: &std::path::Path) -> Connection {
    let c = Connection::open(cfg_dir.join("rblwatch.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap_or(-1)
}

fn done_sweeps(dir: &std::path::Path) -> i64 {
    if !dir.join("rblwatch.db").exists() {
        return 0;
    }
    count(
        &db(dir),
        "SELECT COUNT(*) FROM sweeps WHERE status = 'done'",
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn zone_with(ips: &[&str]) -> String {
    let mut s = String::from("$TTL 1\n:127.0.0.2:Listed in dyn.test: $\n127.0.0.2\n");
    for ip in ips {
        s.push_str(ip);
        s.push('\n');
    }
    s
}

#[test]
fn listing_and_delisting_end_to_end() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &rbl,
        &["dyn-test"],
        "[[targets]]\ntarget = \"192.0.2.77\"\nlabel = \"mx\"\n[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"1s\"\nhealth = \"1h\"\n",
    );
    let mut d = Daemon::start(&cfg);
    wait_for("the baseline sweep", Duration::from_secs(20), || {
        (done_sweeps(dir.path()) >= 1).then_some(())
    });

    let listed_at = unix_now();
    rbl.write_zone("dyn.test.ip4set", &zone_with(&["192.0.2.77"]));
    // two consecutive listed answers confirm the listing
    let ev = wait_for("the listed event", Duration::from_secs(20), || {
        let c = db(dir.path());
        c.query_row(
            "SELECT summary, baseline FROM events WHERE kind = 'listed' AND target = '192.0.2.77'",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)),
        )
        .ok()
    });
    assert!(
        !ev.1,
        "a listing that appears after the baseline is news, not baseline"
    );
    assert!(
        ev.0.contains("192.0.2.77 is listed on dyn-test"),
        "{}",
        ev.0
    );
    let c = db(dir.path());
    let (state, txt): (String, String) = c
        .query_row(
            "SELECT state, txt FROM pair_state WHERE target = '192.0.2.77'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, "listed");
    assert!(txt.contains("Listed in dyn.test: 192.0.2.77"), "{txt}");

    let delisted_at = unix_now();
    rbl.write_zone("dyn.test.ip4set", &zone_with(&[]));
    wait_for("the delisted event", Duration::from_secs(20), || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM events WHERE kind = 'delisted' AND target = '192.0.2.77'",
        ) == 1)
            .then_some(())
    });
    let c = db(dir.path());
    let (start, end): (i64, Option<i64>) = c
        .query_row(
            "SELECT started_at, ended_at FROM listings WHERE target = '192.0.2.77'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let end = end.expect("the listing period is closed");
    // the period starts at the first listed answer and ends at the first clear one
    assert!(
        start >= listed_at && start <= listed_at + 5,
        "start {start} vs edit {listed_at}"
    );
    assert!(
        end >= delisted_at && end <= delisted_at + 5,
        "end {end} vs edit {delisted_at}"
    );
    assert!(end > start);
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM pair_state"),
        0,
        "a clear pair leaves no row"
    );
    // storage grows with changes: one listing row, two events, whatever the number of sweeps
    assert_eq!(count(&c, "SELECT COUNT(*) FROM listings"), 1);
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM events WHERE kind IN ('listed','delisted')"
        ),
        2
    );

    // the CLI reads the same history
    let o = rblwatch(&["history", "-C", cfg.to_str().unwrap(), "192.0.2.77"]);
    assert!(
        stdout(&o).contains("1 periods") && stdout(&o).contains("delisted"),
        "{}",
        stdout(&o)
    );
    let o = rblwatch(&["status", "-C", cfg.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("last sweep #") && stdout(&o).contains("0 listings"),
        "{}",
        stdout(&o)
    );

    d.signal("TERM");
    let (code, took) = d.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{}", d.log());
    assert!(took < Duration::from_secs(5));
    assert!(
        d.log().contains("sweep finished"),
        "one info line per sweep"
    );
}

#[test]
fn first_sweep_is_a_silent_baseline_and_kill_9_loses_nothing() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    // a slow sweep (257 queries at 100/s on dyn-test, whose zone has no SOA, so
    // no negative answer is kept between sweeps) so the kill lands inside one
    let cfg = write_config(
        dir.path(),
        &rbl,
        &["bl-test", "dyn-test"],
        "[[targets]]\ntarget = \"192.0.2.1\"\n[[targets]]\ntarget = \"10.99.0.0/24\"\n[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"1s\"\nspread = false\n",
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[lists]\n", "[lists]\nmax_qps = 100\n");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg);
    wait_for("the baseline sweep", Duration::from_secs(30), || {
        (done_sweeps(dir.path()) >= 1).then_some(())
    });
    let c = db(dir.path());
    // already listed at start: recorded and shown (a baseline listing period), announced as one
    // silent summary, not as a new listing
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM events WHERE kind = 'listed'"),
        0
    );
    assert_eq!(count(&c, "SELECT COUNT(*) FROM events WHERE kind = 'baseline' AND baseline = 1 AND details LIKE '%192.0.2.1%'"), 1);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM listings WHERE target = '192.0.2.1' AND baseline = 1 AND ended_at IS NULL"), 1);
    // wait for the next sweep to be running, then kill -9 in the middle of it
    wait_for("a sweep in progress", Duration::from_secs(20), || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM sweeps WHERE status = 'running'",
        ) == 1)
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(700));
    let before = count(&db(dir.path()), "SELECT COUNT(*) FROM events");
    d.signal("KILL");
    drop(d);

    // restart once: the database opens, the interrupted sweep is marked, nothing committed is lost
    let c = db(dir.path());
    assert_eq!(
        c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );
    drop(c);
    let o = rblwatch(&["daemon", "--once", "-C", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", crate::util::stderr(&o));
    let c = db(dir.path());
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM sweeps WHERE status = 'abandoned'"),
        1
    );
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM sweeps WHERE status = 'running'"),
        0
    );
    assert!(count(&c, "SELECT COUNT(*) FROM events") >= before);
    // the state carries on: no `listed` event for what was already listed, no second baseline
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM events WHERE kind = 'listed'"),
        0
    );
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM events WHERE kind = 'baseline'"),
        1
    );
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM listings WHERE ended_at IS NULL"),
        1
    );
    assert_eq!(
        c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "wal"
    );
}

#[test]
fn sigterm_during_a_sweep_exits_0_within_5s_and_sighup_validates() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &rbl,
        &["bl-test"],
        "[[targets]]\ntarget = \"10.98.0.0/22\"\n[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"1s\"\nspread = false\n",
    );
    let good = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[lists]\n", "[lists]\nmax_qps = 50\n");
    std::fs::write(&cfg, &good).unwrap();
    let mut d = Daemon::start(&cfg);
    wait_for("a sweep in progress", Duration::from_secs(20), || {
        (dir.path().join("rblwatch.db").exists()
            && count(
                &db(dir.path()),
                "SELECT COUNT(*) FROM sweeps WHERE status = 'running'",
            ) == 1)
            .then_some(())
    });
    // an invalid new config is rejected and the old one keeps running
    std::fs::write(&cfg, good.replace("[daemon]", "[daemon]\nbogus = 1")).unwrap();
    d.signal("HUP");
    wait_for("the rejection log line", Duration::from_secs(10), || {
        d.log().contains("new configuration rejected").then_some(())
    });
    assert!(
        d.log().contains("bogus"),
        "the log names the key\n{}",
        d.log()
    );
    assert!(d.child.try_wait().unwrap().is_none(), "still running");
    // a valid one is applied
    std::fs::write(&cfg, &good).unwrap();
    d.signal("HUP");
    wait_for("the reload log line", Duration::from_secs(10), || {
        d.log().contains("configuration reloaded").then_some(())
    });

    // the sweep takes ~20 s at 50 q/s while ticks come every second: none starts a second sweep
    wait_for("a skipped tick", Duration::from_secs(10), || {
        d.log()
            .contains("still running; this scheduled sweep is skipped")
            .then_some(())
    });
    assert_eq!(
        count(&db(dir.path()), "SELECT COUNT(*) FROM sweeps"),
        1,
        "only one sweep ever started"
    );

    d.signal("TERM");
    let (code, took) = d.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{}", d.log());
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn config_errors_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        ("[daemon]\nsweeep = \"1m\"\n", "sweeep"),
        ("[daemon]\nsweep = \"61 * * * *\"\n", "daemon.sweep"),
        ("[daemon]\nhealth = \"ten minutes\"\n", "daemon.health"),
    ] {
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        let o = rblwatch(&["daemon", "--once", "-C", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        let e = crate::util::stderr(&o);
        assert!(e.contains(key) && e.contains("c.toml:2"), "{key}: {e}");
    }
}
