//! Issue 21's fault battery, as tests: a real daemon (service mode, its own
//! rbldnsd, a real SQLite file) under slow clients and a low descriptor limit,
//! a database deleted or replaced under it, a read-only database directory,
//! and SIGTERM in the middle of a sweep.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::util::{free_tcp_port, wait_for, write_config, Daemon, Rbldnsd};

fn db(dir: &std::path::Path) -> Connection {
    let c = Connection::open(dir.join("rblwatch.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

/// `GET path` with a deadline on every step: `None` when the daemon does not answer in time.
fn get(port: u16, path: &str, limit: Duration) -> Option<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, limit).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    s.set_write_timeout(Some(limit)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    let code = r.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, r.split("\r\n\r\n").nth(1).unwrap_or("").to_string()))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Every pair's state, with when it entered it.
fn pair_states(c: &Connection) -> Vec<(String, String, String, i64)> {
    let mut st = c
        .prepare("SELECT target, list, state, since FROM pair_state ORDER BY target, list")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Issue 21, point 1: 2,000 clients that send half a request head and hold
/// it, against a daemon limited to 1,024 descriptors (the shipped unit's
/// limit before `LimitNOFILE=`). The old daemon held every one of them, took
/// its last descriptors, stopped answering `/healthz`, and its DNS sockets
/// failed with EMFILE, which it diagnosed as an unusable resolver. Now
/// `/healthz` answers throughout, the slow clients are closed at the
/// header-read timeout, health checks and sweeps go on (no
/// `resolver_unusable`, no pair moves), and the memory comes back.
#[test]
fn slow_clients_under_1024_descriptors_leave_healthz_and_verdicts_alone() {
    let rbl = Rbldnsd::start();
    rbl.write_zone(
        "dyn.test.ip4set",
        "$TTL 1\n:127.0.0.2:Listed in dyn.test: $\n127.0.0.2\n192.0.2.1\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let cfg = write_config(
        dir.path(),
        &rbl,
        &["dyn-test", "bl-test"],
        &format!(
            "[[targets]]\ntarget = \"192.0.2.0/30\"\n[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"2s\"\nhealth = \"2s\"\n[web]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    );
    let d = Daemon::start_with_limit(&cfg, Some(1024));
    let t = Duration::from_secs(60);
    wait_for("192.0.2.1 listed on dyn-test", t, || {
        let c = db(dir.path());
        (count(
            &c,
            "SELECT COUNT(*) FROM pair_state WHERE target = '192.0.2.1' AND list = 'dyn-test' AND state = 'listed'",
        ) == 1)
            .then_some(())
    });
    wait_for("/healthz ok", t, || {
        get(port, "/healthz", Duration::from_secs(3)).filter(|(c, _)| *c == 200)
    });
    // warm: the pages' caches and the reader pool are built
    let _ = get(port, "/", Duration::from_secs(5));
    let states = pair_states(&db(dir.path()));
    let pid = d.pid();
    let rss_before = rss_kib(pid);
    let flood_at = unix_now();

    // 2,000 slow clients: half a request head each, then nothing
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..2000 {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(mut s) => {
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: sl");
                held.push(s);
            }
            Err(_) => {
                refused += 1;
                // a daemon that accepts nothing any more: the backlog is full
                if refused > 20 {
                    break;
                }
            }
        }
    }
    let peak_fds = open_fds(pid);
    // `/healthz` answers all along (each probe within 3 s), for longer than the header-read timeout
    let mut probes = Vec::new();
    let hold = Instant::now();
    while hold.elapsed() < Duration::from_secs(25) {
        let p = Instant::now();
        let r = get(port, "/healthz", Duration::from_secs(3));
        probes.push((r.as_ref().map(|(c, _)| *c), p.elapsed()));
        std::thread::sleep(Duration::from_millis(700));
    }
    let failed: Vec<_> = probes.iter().filter(|(c, _)| *c != Some(200)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} /healthz probes failed ({failed:?}) with {} slow clients held ({refused} refused), {peak_fds} descriptors open\n{}",
        failed.len(),
        probes.len(),
        held.len(),
        d.log()
    );
    // the slow clients were closed by the daemon (header-read timeout), not kept
    let mut still_open = 0;
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let mut b = [0u8; 256];
        if let Err(e) = s.read(&mut b) {
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                still_open += 1;
            }
        }
    }
    assert_eq!(
        still_open,
        0,
        "{still_open} of {} slow clients still held after 25 s",
        held.len()
    );
    drop(held);

    // the DNS side never starved: sweeps went on, no resolver verdict, no pair moved
    let c = db(dir.path());
    let sweeps = count(
        &c,
        &format!("SELECT COUNT(*) FROM sweeps WHERE status = 'done' AND started_at >= {flood_at}"),
    );
    assert!(
        sweeps >= 5,
        "{sweeps} sweep(s) done during 25 s of slow clients\n{}",
        d.log()
    );
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM events WHERE kind IN ('resolver_unusable', 'list_unhealthy')"
        ),
        0,
        "{}",
        d.log()
    );
    assert_eq!(pair_states(&c), states, "a pair moved\n{}", d.log());
    let log = d.log();
    assert!(!log.contains("the resolver is not usable"), "{log}");

    // and the memory of the flood is handed back
    let settle = Instant::now();
    let mut rss_after = rss_kib(pid);
    while rss_after > rss_before + 16 * 1024 && settle.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(500));
        rss_after = rss_kib(pid);
    }
    assert!(
        rss_after <= rss_before + 16 * 1024,
        "RSS {rss_before} KiB before the flood, {rss_after} KiB 30 s after it"
    );
    eprintln!(
        "RSS {rss_before} KiB before, {rss_after} KiB after; {peak_fds} descriptors at the peak; {} probes",
        probes.len()
    );
}

/// A daemon with one webhook channel (no grouping) and a sweep every 2 s, its database in `dir`.
fn lost_config(dir: &std::path::Path, rbl: &Rbldnsd, hook: u16, web: u16) -> std::path::PathBuf {
    write_config(
        dir,
        rbl,
        &["dyn-test"],
        &format!(
            "[[targets]]\ntarget = \"192.0.2.0/30\"\n[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"2s\"\nhealth = \"1h\"\n[alerting]\ngroup_window = \"0s\"\n[[alerts]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{hook}/w\"\n[web]\nlisten = \"127.0.0.1:{web}\"\n"
        ),
    )
}

fn sweeps_done(path: &std::path::Path) -> i64 {
    Connection::open(path).map_or(0, |c| {
        count(&c, "SELECT COUNT(*) FROM sweeps WHERE status = 'done'")
    })
}

/// Issue 21, point 5: the database file deleted under the running daemon
/// went unnoticed (`/healthz` 200, no log line) and a restart began a second
/// history. Now the writer notices within seconds: `/healthz` turns 503 with
/// the reason, a `database_lost` alert goes out through the channels, the log
/// says so, the history so far is saved beside the path, and nothing
/// recreates the file while the daemon runs. A file replaced by another one
/// is caught the same way.
#[test]
fn a_database_deleted_or_replaced_under_the_daemon_is_noticed_alerted_and_never_recreated() {
    let rbl = Rbldnsd::start();
    for replace in [false, true] {
        let hook = crate::util::HttpFixture::serve(vec![("/w", "text/plain", "ok".into())]);
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let cfg = lost_config(dir.path(), &rbl, hook.port, port);
        let d = Daemon::start(&cfg);
        let t = Duration::from_secs(30);
        let path = dir.path().join("rblwatch.db");
        wait_for("a sweep done", t, || {
            (sweeps_done(&path) >= 1).then_some(())
        });
        wait_for("/healthz ok", t, || {
            get(port, "/healthz", Duration::from_secs(3)).filter(|(c, _)| *c == 200)
        });
        let why = if replace {
            // another (valid, empty) database moved over it, as a careless restore would
            let other = dir.path().join("other.db");
            Connection::open(&other)
                .unwrap()
                .execute_batch("CREATE TABLE x (y)")
                .unwrap();
            std::fs::rename(&other, &path).unwrap();
            "replaced"
        } else {
            std::fs::remove_file(&path).unwrap();
            "deleted"
        };
        let (_, body) = wait_for("/healthz 503", Duration::from_secs(10), || {
            get(port, "/healthz", Duration::from_secs(3)).filter(|(c, _)| *c == 503)
        });
        assert!(body.contains(why) && body.contains("rblwatch.db"), "{body}");
        wait_for("the database_lost alert", t, || {
            hook.bodies()
                .iter()
                .any(|b| b.contains("database_lost"))
                .then_some(())
        });
        let log = d.log();
        assert!(
            log.lines().any(|l| l.contains("ERROR")
                && l.contains(&format!("rblwatch.db was {why}"))
                && l.contains("while the daemon ran")),
            "{log}"
        );
        // sweeps go on (into the file it still holds); nothing recreates the path
        std::thread::sleep(Duration::from_secs(5));
        if !replace {
            assert!(!path.exists(), "the database was recreated\n{}", d.log());
        }
        let (code, _) = get(port, "/healthz", Duration::from_secs(3)).unwrap();
        assert_eq!(code, 503, "/healthz stays red");
        // the history so far is saved beside it
        let rescued: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("rblwatch.db.rescued-")
            })
            .collect();
        assert_eq!(rescued.len(), 1, "{rescued:?}\n{}", d.log());
        assert!(sweeps_done(&rescued[0].path()) >= 1);
        if !replace {
            // a restart never silently begins a second history: it refuses,
            // naming the rescued copy and the marker, until one is chosen
            drop(d);
            let mut again = Daemon::start(&cfg);
            let (code, _) = again.wait_exit(Duration::from_secs(20));
            assert_ne!(code, Some(0));
            let log = again.log();
            assert!(
                log.contains("is gone, but a history was kept there")
                    && log.contains("rblwatch.db.history"),
                "{log}"
            );
            assert!(!path.exists(), "no new history was started\n{log}");
            // restoring the rescued copy brings the daemon (and its history) back
            std::fs::rename(rescued[0].path(), &path).unwrap();
            let _back = Daemon::start(&cfg);
            wait_for("the restored history goes on", t, || {
                (sweeps_done(&path) >= 2).then_some(())
            });
        }
    }
}

/// Issue 21, point 5: `config check` refused a read-only database directory,
/// but the daemon ran there when the database and its `-wal` existed and were
/// its own (a previous daemon killed, the directory then owned by root). The
/// daemon now applies the same check at start.
#[test]
fn the_daemon_refuses_a_read_only_database_directory_even_with_a_wal() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    crate::util::chmod(dir.path(), 0o755);
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let cfg = write_config(
        dir.path(),
        &rbl,
        &["dyn-test"],
        &format!(
            "[[targets]]\ntarget = \"192.0.2.0/30\"\n[daemon]\ndatabase = {:?}\nsweep = \"2s\"\nhealth = \"1h\"\n",
            data.join("rblwatch.db").display().to_string()
        ),
    );
    crate::util::chmod(&cfg, 0o644);
    let mut d = Daemon::start(&cfg);
    wait_for("a sweep done", Duration::from_secs(30), || {
        (sweeps_done(&data.join("rblwatch.db")) >= 1).then_some(())
    });
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    assert!(
        data.join("rblwatch.db-wal").exists(),
        "a -wal stays after kill -9"
    );
    // the files belong to the service user (nobody here), the directory to root, mode 755
    for f in ["rblwatch.db", "rblwatch.db-wal", "rblwatch.db-shm"] {
        std::os::unix::fs::chown(data.join(f), Some(65534), Some(65534)).unwrap();
    }
    crate::util::chmod(&data, 0o755);
    let as_nobody = |args: &[&str], out: &std::path::Path| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_rblwatch"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(out).unwrap())
            .spawn()
            .unwrap()
    };
    let cfg_s = cfg.to_str().unwrap();
    let check_log = dir.path().join("check.log");
    let st = as_nobody(&["config", "check", "-C", cfg_s], &check_log)
        .wait()
        .unwrap();
    let check_err = std::fs::read_to_string(&check_log).unwrap_or_default();
    assert!(
        !st.success() && check_err.contains("is not writable here"),
        "{check_err}"
    );
    let log = dir.path().join("daemon.log");
    let mut child = as_nobody(&["daemon", "-C", cfg_s], &log);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status
        .unwrap_or_else(|| panic!("the daemon ran on in a read-only directory for 15 s\n{err}"));
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("is not writable here"),
        "the daemon says what config check says\n{err}"
    );
}

/// Issue 21, point 5: after SIGTERM the interrupted sweep stayed `running`
/// until the next start. The daemon now closes it as `abandoned` as it stops.
#[test]
fn sigterm_closes_the_running_sweep_as_abandoned() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    // a resolver that reads every query and answers none: the sweep's health check takes seconds
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let cfg = write_config(
        dir.path(),
        &rbl,
        &["dyn-test", "bl-test", "dbl-test"],
        "[[targets]]\ntarget = \"192.0.2.0/30\"\n[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"30m\"\nhealth = \"30m\"\n",
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&rbl.addr(), &silent.local_addr().unwrap().to_string())
        .replace(
            "timeout = \"400ms\"\nretries = 0",
            "timeout = \"3s\"\nretries = 1",
        );
    std::fs::write(&cfg, text).unwrap();
    let mut d = Daemon::start(&cfg);
    let path = dir.path().join("rblwatch.db");
    wait_for("a running sweep", Duration::from_secs(20), || {
        Connection::open(&path)
            .ok()
            .filter(|c| count(c, "SELECT COUNT(*) FROM sweeps WHERE status = 'running'") == 1)
            .map(|_| ())
    });
    d.signal("TERM");
    let (code, took) = d.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", d.log());
    let c = db(dir.path());
    let statuses: Vec<String> = {
        let mut st = c.prepare("SELECT status FROM sweeps ORDER BY id").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert_eq!(
        statuses,
        vec!["abandoned".to_string()],
        "stopped in {took:?}\n{}",
        d.log()
    );
    drop(silent);
}
