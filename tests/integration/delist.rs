//! The delisting workflow against a real daemon, rbldnsd and SQLite file:
//! `rblwatch delist` through the daemon's API, the page's button (form
//! token), the immediate re-check of the pair, the overdue reminder, time to
//! delist, and `rblwatch delist` writing to the database when no daemon runs.

use std::time::Duration;

use rusqlite::Connection;

use crate::util::{fixtures, free_tcp_port, rblwatch, stderr, stdout, wait_for, Daemon, Rbldnsd};

fn db(dir: &std::path::Path) -> Connection {
    let c = Connection::open(dir.join("rblwatch.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn count(dir: &std::path::Path, sql: &str) -> i64 {
    if !dir.join("rblwatch.db").exists() {
        return 0;
    }
    db(dir).query_row(sql, [], |r| r.get(0)).unwrap_or(-1)
}

fn zone_with(ips: &[&str]) -> String {
    let mut s = String::from("$TTL 1\n:127.0.0.2:Listed in dyn.test: $\n127.0.0.2\n");
    for ip in ips {
        s.push_str(ip);
        s.push('\n');
    }
    s
}

/// One HTTP request (no redirects followed): status, Location, body.
pub(crate) fn http(
    method: &str,
    url: &str,
    form: Option<&[(&str, &str)]>,
    json: Option<serde_json::Value>,
    origin: Option<&str>,
) -> (u16, String, String) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let c = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let mut r = match method {
                "POST" => c.post(url),
                _ => c.get(url),
            };
            if let Some(f) = form {
                let body: Vec<String> = f
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
                    .collect();
                r = r
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.join("&"));
            }
            if let Some(j) = json {
                r = r.json(&j);
            }
            if let Some(o) = origin {
                r = r.header("origin", o);
            }
            let resp = r.send().await.unwrap();
            let loc = resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (resp.status().as_u16(), loc, resp.text().await.unwrap())
        })
}

fn get(url: &str) -> String {
    http("GET", url, None, None, None).2
}

/// A daemon over bl-test and a quick-expiring copy of dyn-test (expiry 2 s,
/// so the reminder is due within the test), one listing on each.
fn setup() -> (Rbldnsd, tempfile::TempDir, std::path::PathBuf, String) {
    let rbl = Rbldnsd::start();
    // The daemon's first sweep must see the listing: rewrite the zone until rbldnsd
    // serves it (a rewrite racing rbldnsd's own first load can go unnoticed).
    let port = rbl.port.to_string();
    let served = || {
        let o = std::process::Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &port,
                "+short",
                "90.2.0.192.dyn.test",
                "A",
            ])
            .output()
            .ok()?;
        String::from_utf8_lossy(&o.stdout)
            .contains("127.0.0.2")
            .then_some(())
    };
    'zone: for _ in 0..4 {
        rbl.write_zone("dyn.test.ip4set", &zone_with(&["192.0.2.90"]));
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if served().is_some() {
                break 'zone;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(served().is_some(), "rbldnsd does not serve the new zone");
    let dir = tempfile::tempdir().unwrap();
    let lists = dir.path().join("lists.d");
    std::fs::create_dir(&lists).unwrap();
    std::fs::write(
        lists.join("quick.toml"),
        r#"[[list]]
id = "dyn-quick"
name = "Quick <expiring> list"
zone = "dyn.test"
kind = "ipv4"
delist = "http://dyn.test/remove?ip={target}"
expiry = "2s"
expiry_note = "listings drop 2 seconds after the cause stops"
returns = [{ code = "127.0.0.2", meaning = "quick test listing" }]
"#,
    )
    .unwrap();
    let port = free_tcp_port();
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[resolver]
nameservers = ["{addr}"]
timeout = "400ms"
retries = 0

[lists]
dirs = [{fx:?}, {mine:?}]
use = ["bl-test", "dyn-quick"]

[[targets]]
target = "192.0.2.90"

[[targets]]
target = "192.0.2.1"

[daemon]
database = "rblwatch.db"
sweep = "1h"

[web]
listen = "127.0.0.1:{port}"
refresh = "0s"
"#,
            addr = rbl.addr(),
            fx = fixtures().join("lists.d").display().to_string(),
            mine = lists.display().to_string(),
        ),
    )
    .unwrap();
    (rbl, dir, cfg, format!("http://127.0.0.1:{port}"))
}

/// The status-page issue, point 3.
#[test]
fn delisting_requested_rechecks_reminds_and_tracks_time_to_delist() {
    let (rbl, dir, cfg, base) = setup();
    let d = dir.path();
    let cfg_s = cfg.to_str().unwrap();
    let mut daemon = Daemon::start(&cfg);
    wait_for("the baseline sweep", Duration::from_secs(30), || {
        (count(d, "SELECT COUNT(*) FROM sweeps WHERE status = 'done'") >= 1
            && count(d, "SELECT COUNT(*) FROM pair_state WHERE state = 'listed'") == 2)
            .then_some(())
    });

    // not listed, unknown list, unknown target: refused, nothing recorded
    for (args, why) in [
        (vec!["delist", "192.0.2.1", "dyn-quick"], "not listed"),
        (vec!["delist", "192.0.2.90", "no-such-list"], "no list"),
        (
            vec!["delist", "198.51.100.200", "dyn-quick"],
            "not a monitored target",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["-C", cfg_s]);
        let o = rblwatch(&a);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(
        rblwatch(&["delist", "not an ip", "dyn-quick", "-C", cfg_s])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(count(d, "SELECT COUNT(*) FROM delist_requests"), 0);

    // the CLI goes through the running daemon: recorded, event raised, pair re-checked at once
    let o = rblwatch(&[
        "delist",
        "192.0.2.90",
        "dyn-quick",
        "--by",
        "alice",
        "--note",
        "relay closed <b>ticket 7</b>",
        "-C",
        cfg_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("re-checks the pair now"),
        "{}",
        stdout(&o)
    );
    let (by, via, note, wait): (String, String, String, i64) = db(d)
        .query_row(
            "SELECT requested_by, via, note, expected_by - requested_at FROM delist_requests",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (by.as_str(), via.as_str(), note.as_str(), wait),
        ("alice", "api", "relay closed <b>ticket 7</b>", 2)
    );
    assert_eq!(
        count(
            d,
            "SELECT COUNT(*) FROM events WHERE kind = 'delist_requested' AND target = '192.0.2.90'"
        ),
        1
    );
    daemon.wait_log("pair re-checked", Duration::from_secs(20));

    // still listed past the expected time: one reminder, raised after the next sweep (or re-check)
    // (times are whole seconds: 2 s after a request at x.9 s is not past until x+3)
    std::thread::sleep(Duration::from_millis(3200));
    let page = get(&format!("{base}/target/192.0.2.90"));
    assert!(
        page.contains("relay closed &lt;b&gt;ticket 7&lt;") && !page.contains("<b>ticket 7"),
        "the note is shown escaped: {page}"
    );
    assert!(
        page.contains("listings drop 2 seconds after the cause stops"),
        "the list's expiry is shown"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let (s, _, _) = http(
        "POST",
        &format!("{base}/check-now"),
        Some(&[("csrf", &csrf)]),
        None,
        None,
    );
    assert_eq!(s, 303);
    let start = std::time::Instant::now();
    while count(
        d,
        "SELECT COUNT(*) FROM events WHERE kind = 'delist_overdue' AND target = '192.0.2.90'",
    ) != 1
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no overdue reminder:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = get(&format!("{base}/metrics"));
    assert!(
        metrics.contains(
            "rblwatch_delist_expected_timestamp_seconds{list=\"dyn-quick\",target=\"192.0.2.90\"}"
        ),
        "{metrics}"
    );
    // the page's button: form token needed
    let form = |csrf: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("target", "192.0.2.90".into()),
            ("list", "dyn-quick".into()),
            ("by", "bob".into()),
            ("note", "asked again".into()),
        ]
    };
    let f = form("wrong");
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        http("POST", &format!("{base}/delist"), Some(&f), None, None).0,
        403,
        "the button needs the form token"
    );
    let f = form(&csrf);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, loc, body) = http(
        "POST",
        &format!("{base}/delist"),
        Some(&f),
        None,
        Some(&base),
    );
    assert_eq!(
        (s, loc.as_str()),
        (303, "/target/192.0.2.90#delist-dyn-quick"),
        "{body}"
    );
    assert_eq!(
        count(
            d,
            "SELECT COUNT(*) FROM delist_requests WHERE requested_by = 'bob' AND via = 'web'"
        ),
        1
    );

    // the list drops it; asking twice re-checks twice: two clear answers end the listing
    rbl.write_zone("dyn.test.ip4set", &zone_with(&[]));
    for state in ["clearing", ""] {
        let j = serde_json::json!({"target": "192.0.2.90", "list": "dyn-quick", "note": "removal form sent"});
        let (s, _, body) = http(
            "POST",
            &format!("{base}/api/v1/delistings"),
            None,
            Some(j),
            None,
        );
        assert_eq!(s, 201, "{body}");
        let start = std::time::Instant::now();
        loop {
            let s: String = db(d)
                .query_row(
                    "SELECT state FROM pair_state WHERE target = '192.0.2.90'",
                    [],
                    |r| r.get(0),
                )
                .unwrap_or_default();
            if s == state {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the pair is {s:?}, not {state:?}:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(
        count(
            d,
            "SELECT COUNT(*) FROM events WHERE kind = 'delisted' AND target = '192.0.2.90'"
        ),
        1
    );
    let v: serde_json::Value =
        serde_json::from_str(&get(&format!("{base}/api/v1/delistings?target=192.0.2.90"))).unwrap();
    let reqs = v["delistings"].as_array().unwrap();
    assert_eq!(reqs.len(), 4, "{v}");
    for r in reqs {
        assert!(r["time_to_delist"].as_i64().is_some_and(|t| t >= 0), "{r}");
        assert_eq!(r["overdue"], false);
    }
    assert_eq!(reqs[3]["requested_by"], "alice");
    assert_eq!(reqs[2]["requested_by"], "bob");
    assert_eq!(reqs[1]["requested_by"], "api");
    assert_eq!(reqs[0]["requested_by"], "api");
    // nothing left to delist
    let j = serde_json::json!({"target": "192.0.2.90", "list": "dyn-quick"});
    assert_eq!(
        http(
            "POST",
            &format!("{base}/api/v1/delistings"),
            None,
            Some(j),
            None
        )
        .0,
        409
    );
    let j = serde_json::json!({"target": 1});
    assert_eq!(
        http(
            "POST",
            &format!("{base}/api/v1/delistings"),
            None,
            Some(j),
            None
        )
        .0,
        422
    );

    // no daemon: the CLI writes to the database itself
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(10));
    let o = rblwatch(&[
        "delist",
        "192.0.2.1",
        "bl-test",
        "--note",
        "offline",
        "-C",
        cfg_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("not reachable"), "{}", stdout(&o));
    assert_eq!(
        count(
            d,
            "SELECT COUNT(*) FROM delist_requests WHERE target = '192.0.2.1' AND via = 'cli'"
        ),
        1
    );
}
