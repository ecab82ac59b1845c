//! The status page, API and metrics, served by a real daemon against a real
//! rbldnsd; a real headless Chromium for the browser checks.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{free_tcp_port, rblwatch, stderr, stdout, wait_for, write_config, Rbldnsd};

struct Daemon {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
    _rbl: Rbldnsd,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a future on a fresh single-thread runtime (the tests themselves are synchronous).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

const SECRET: &str = "sekrit-dqs-key-1234567";

/// Issue 24: the receivers' feeds configured (an SNDS feed and a DMARC
/// mailbox, neither reachable here: their series come from what is stored)
/// for `start`'s `[web]` tail.
const RECEIVER_FEEDS: &str = "\n[[feeds]]\nkind = \"snds\"\nname = \"snds\"\nkey = \"snds-test-key\"\nbase_url = \"https://127.0.0.1:9/snds/\"\ninterval = \"24h\"\ntimeout = \"1s\"\n\n[[feeds]]\nkind = \"dmarc\"\nname = \"reports\"\nmaildir = \"/nonexistent/rblwatch-test-maildir\"\ninterval = \"24h\"\n";

/// Issue 24: what the receivers' feeds store, written into the daemon's
/// database through the store's own functions (as the feeds write it): a
/// Gmail domain with figures (0.42 % on its newest day with one) and one Google
/// gave none ("not enough volume"), its compliance table, an SNDS day with a
/// RED IP and a blocked range, and a rejected report mail.
fn seed_receivers(d: &Daemon) {
    use rblwatch::feeds::postmaster::client::DomainReading;
    use rblwatch::feeds::postmaster::{Compliance, DayStats, Requirement};
    use rblwatch::feeds::snds::{ComplaintRate, DayRow, FilterResult, IpStatus};
    let c = rusqlite::Connection::open(d._dir.path().join("rblwatch.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let today = chrono::Utc::now().date_naive();
    let day = |n: u64| (today - chrono::Days::new(n)).to_string();
    let at = chrono::Utc::now().timestamp();
    let figures = |n: u64, spam: f64| DayStats {
        day: day(n),
        spam_rate: Some(spam),
        spf_rate: Some(0.99),
        dkim_rate: Some(0.98),
        dmarc_rate: Some(0.97),
        tls_rate: Some(1.0),
        delivery_error_rate: Some(0.01),
        reject_rate: Some(0.004),
        temp_fail_rate: Some(0.006),
    };
    let empty = |n: u64| DayStats {
        day: day(n),
        ..Default::default()
    };
    let read = [
        DomainReading {
            domain: "example.com".into(),
            compliance: Compliance {
                requirements: vec![
                    Requirement {
                        requirement: "SPF".into(),
                        status: "COMPLIANT".into(),
                        reason: None,
                    },
                    Requirement {
                        requirement: "ONE_CLICK_UNSUBSCRIBE".into(),
                        status: "NEEDS_WORK".into(),
                        reason: Some("NO_UNSUB_GENERAL".into()),
                    },
                ],
                subdomain: vec![],
            },
            days: vec![figures(3, 0.0008), figures(2, 0.0042), empty(1)],
        },
        DomainReading {
            domain: "quiet.example".into(),
            compliance: Compliance::default(),
            days: vec![empty(2), empty(1)],
        },
    ];
    rblwatch::store::put_postmaster(&c, "gpt", at, &read).unwrap();
    let row = DayRow {
        ip: "192.0.2.1".parse().unwrap(),
        activity_start: Some(format!("{} 00:10", day(1))),
        activity_end: Some(format!("{} 23:50", day(1))),
        rcpt: 1000,
        data: 990,
        recipients: 950,
        filter: FilterResult::Red,
        complaint: Some(ComplaintRate {
            percent: 4.2,
            below: false,
        }),
        trap_start: None,
        trap_end: None,
        trap_hits: 26,
        helo: "mx1.example.com".into(),
        mail_from: "news@example.com".into(),
        comments: String::new(),
    };
    let status = IpStatus {
        first: "192.0.2.1".parse().unwrap(),
        last: "192.0.2.1".parse().unwrap(),
        blocked: true,
        reason: "Blocked due to user complaints or other evidence of spamming".into(),
    };
    rblwatch::store::commit_snds(&c, "snds", at, &[status], &[(day(1), vec![row])]).unwrap();
    rblwatch::store::commit_feed_mail(
        &c,
        "reports",
        "1765000000.M1P1.mx",
        at,
        vec![Err(rblwatch::feeds::dmarc::Reject::Dtd)],
    )
    .unwrap();
}

/// A daemon with a few listed targets, its first sweep done, serving the web on a free port.
fn start(web_extra: &str) -> Daemon {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let extra = format!(
        r#"[keys]
test-dqs = "{SECRET}"

[[targets]]
target = "192.0.2.1"
label = "mx1 <outbound>"

[[targets]]
target = "192.0.2.66"

[[targets]]
target = "203.0.113.0/30"

[[sources]]
name = "mx"
kind = "command"
command = ["echo", "{{\"queue_depth\": 5, \"queue_bounces\": 2}}"]
interval = "1h"

[[spikes]]
metric = "mx.queue_bounces"
kind = "queue_spike"
above = 10

[daemon]
database = "rblwatch.db"
sweep = "1h"

[web]
listen = "127.0.0.1:{port}"
{web_extra}
"#
    );
    let cfg = write_config(
        dir.path(),
        &rbl,
        &["bl-test", "dyn-test", "keyed-test"],
        &extra,
    );
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rblwatch"))
        .args(["daemon", "-C", cfg.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let d = Daemon {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
        _rbl: rbl,
    };
    let db = d._dir.path().join("rblwatch.db");
    wait_for(
        "the first sweep and source read",
        Duration::from_secs(30),
        || {
            let c = rusqlite::Connection::open(&db).ok()?;
            let n: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM sweeps WHERE status = 'done'",
                    [],
                    |r| r.get(0),
                )
                .ok()?;
            let s: i64 = c
                .query_row("SELECT COUNT(*) FROM metric_samples", [], |r| r.get(0))
                .ok()?;
            (n >= 1 && s >= 2).then_some(())
        },
    );
    d
}

fn get(url: &str, auth: Option<&str>) -> (u16, String, String) {
    block_on(async {
        let mut r = reqwest::Client::new().get(url);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ctype, resp.text().await.unwrap())
    })
}

fn post(url: &str, body: &str, origin: Option<&str>, auth: Option<&str>) -> u16 {
    block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut r = client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send().await.unwrap().status().as_u16()
    })
}

/// RFC 9457's media type: every error status of the API answers with it.
const PROBLEM: &str = "application/problem+json";

/// A problem document of this status: type, title, status (a number).
fn problem(body: &str, status: u16) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["status"], status, "{body}");
    assert!(v["title"].is_string() && v["type"].is_string(), "{body}");
}

/// Issue 22: error bodies were text/plain (405 empty); now problem+json,
/// whoever answers (a handler, the router, an extractor, the host check).
#[test]
fn api_errors_are_problem_documents() {
    let d = start("");
    let b = &d.base;
    let port = b.rsplit(':').next().unwrap();
    let (s, t, body) = block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{b}/api/v1/status"))
            .send()
            .await
            .unwrap();
        let t = r.headers()["content-type"].to_str().unwrap().to_string();
        (r.status().as_u16(), t, r.text().await.unwrap())
    });
    assert_eq!((s, t.as_str()), (405, PROBLEM), "{body}");
    problem(&body, 405);
    let (s, t, body) = block_on(async {
        let r = reqwest::Client::new()
            .get(format!("{b}/api/v1/status"))
            .header("host", format!("rebind.evil.example:{port}"))
            .send()
            .await
            .unwrap();
        let t = r.headers()["content-type"].to_str().unwrap().to_string();
        (r.status().as_u16(), t, r.text().await.unwrap())
    });
    assert_eq!((s, t.as_str()), (421, PROBLEM), "{body}");
    problem(&body, 421);
    // pages keep their own error pages
    let (s, t, _) = get(&format!("{b}/no/such/page"), None);
    assert_eq!((s, t.as_str()), (404, "text/plain; charset=utf-8"));
}

#[test]
fn every_route_answers_with_the_right_status_and_type() {
    let d = start("");
    let b = &d.base;
    let html = "text/html; charset=utf-8";
    for (path, status, ctype) in [
        ("/", 200, html),
        ("/targets", 200, html),
        ("/targets?page=2", 200, html),
        ("/target/192.0.2.1", 200, html),
        ("/target/203.0.113.2", 200, html),
        ("/target/10.9.9.9", 404, "text/plain; charset=utf-8"),
        ("/target/not%20a%20target", 404, "text/plain; charset=utf-8"),
        ("/lists", 200, html),
        ("/list/bl-test", 200, html),
        ("/list/no-such-list", 404, "text/plain; charset=utf-8"),
        ("/mail", 200, html),
        ("/mail?range=7d", 200, html),
        ("/mail?range=30d", 200, html),
        ("/mail?range=1y", 400, "text/plain; charset=utf-8"),
        ("/events", 200, html),
        ("/events?page=2", 200, html),
        ("/hooks", 200, html),
        ("/hooks?page=3", 200, html),
        ("/alerts", 200, html),
        ("/accounts", 200, html),
        ("/static/style.css", 200, "text/css; charset=utf-8"),
        ("/api/v1/status", 200, "application/json"),
        ("/api/v1/targets", 200, "application/json"),
        ("/api/v1/targets?page=2", 200, "application/json"),
        ("/api/v1/targets/192.0.2.1", 200, "application/json"),
        ("/api/v1/targets/10.9.9.9", 404, PROBLEM),
        ("/api/v1/lists", 200, "application/json"),
        ("/api/v1/lists/bl-test", 200, "application/json"),
        ("/api/v1/lists/nope", 404, PROBLEM),
        ("/api/v1/events", 200, "application/json"),
        ("/api/v1/hook-runs", 200, "application/json"),
        ("/api/v1/alerts", 200, "application/json"),
        ("/api/v1/accounts", 200, "application/json"),
        ("/api/v1/metrics/mx/queue_depth", 200, "application/json"),
        ("/api/v1/metrics/mx/nothing", 404, PROBLEM),
        ("/api/v1/metrics/mx/queue_depth?range=2h", 400, PROBLEM),
        ("/api/v1/events?page=x", 400, PROBLEM),
        ("/api/v1/no/such/thing", 404, PROBLEM),
        ("/metrics", 200, "text/plain; version=0.0.4; charset=utf-8"),
        ("/healthz", 200, "text/plain; charset=utf-8"),
        ("/no/such/page", 404, "text/plain; charset=utf-8"),
    ] {
        let (s, t, body) = get(&format!("{b}{path}"), None);
        assert_eq!((s, t.as_str()), (status, ctype), "{path}: {body}");
        if ctype == PROBLEM {
            problem(&body, status);
        }
        // secrets never appear on a page or in the API
        assert!(!body.contains(SECRET), "{path} shows the DQS key");
    }
    // content
    let (_, _, o) = get(&format!("{b}/"), None);
    assert!(
        o.contains("2 listings") && o.contains("/target/192.0.2.66"),
        "{o}"
    );
    assert!(o.contains("mx1 &lt;outbound&gt;"), "labels are escaped");
    let (_, _, t) = get(&format!("{b}/target/192.0.2.1"), None);
    assert!(
        t.contains("Spam source 192.0.2.1 (code 4)") && t.contains("remove?ip=192.0.2.1"),
        "{t}"
    );
    // one chart for the source's queue figures (one unit), axes and threshold labelled
    let (_, _, m) = get(&format!("{b}/mail"), None);
    assert_eq!(
        m.matches("<svg class=\"chart ").count(),
        2,
        "one chart, drawn wide and narrow: {m}"
    );
    assert!(
        m.contains("<b>mx</b> · messages")
            && m.contains(">messages</text>")
            && m.contains(">time (UTC)</text>")
            && m.contains(">threshold 10</text>")
            && m.contains("queue_bounces <b>2</b> · threshold 10")
            && m.contains("queue_depth <b>5</b>"),
        "{m}"
    );
    let (_, _, l) = get(&format!("{b}/list/keyed-test"), None);
    assert!(
        l.contains("&lt;key&gt;.keyed.test"),
        "the key is replaced in the zone: {l}"
    );
    // pagination in the API
    let (_, _, j) = get(&format!("{b}/api/v1/targets"), None);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["total"], 6, "a count is a number");
    assert_eq!(v["targets"].as_array().unwrap().len(), 6);
    assert_eq!(v["has_next"], false);
    let (_, _, j) = get(&format!("{b}/api/v1/targets?per_page=4&page=2"), None);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(
        (&v["page"], &v["per_page"], &v["total"], &v["has_next"]),
        (&2.into(), &4.into(), &6.into(), &false.into()),
        "{v}"
    );
    assert_eq!(v["targets"].as_array().unwrap().len(), 2);
    for path in [
        "/api/v1/events",
        "/api/v1/hook-runs",
        "/api/v1/alerts",
        "/api/v1/delistings",
        "/api/v1/receivers",
    ] {
        let (_, _, j) = get(&format!("{b}{path}?per_page=1"), None);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert!(v["total"].is_u64() && v["per_page"] == 1, "{path}: {v}");
        let (s, _, _) = get(&format!("{b}{path}?per_page=501"), None);
        assert_eq!(s, 400, "{path}: per_page is bounded");
    }
    let (_, _, j) = get(&format!("{b}/api/v1/status"), None);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["verdict"]["kind"], "listed_no_impact");
    assert_eq!(v["verdict"]["text"], "Listed, no impact seen: 2 listings");
    assert_eq!(v["verdict"]["todo"][0]["href"], "/target/192.0.2.1");
    assert_eq!(v["listings"].as_array().unwrap().len(), 2);
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let d = start("");
    let (_, _, text) = get(&format!("{}/metrics", d.base), None);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("valid Prometheus text");
    let listed: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "rblwatch_listed")
        .collect();
    assert_eq!(
        listed.len(),
        2,
        "one series per listed pair, none for clear pairs"
    );
    assert!(listed
        .iter()
        .any(|s| s.labels.get("target") == Some("192.0.2.1")
            && s.labels.get("list") == Some("bl-test")));
    for m in [
        "rblwatch_list_health",
        "rblwatch_list_queries_total",
        "rblwatch_last_sweep_duration_seconds",
        "rblwatch_sweeps_total",
        "rblwatch_listings",
    ] {
        assert!(scrape.samples.iter().any(|s| s.metric == m), "{m} missing");
    }
    let per_target: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "rblwatch_target_listings")
        .collect();
    assert_eq!(per_target.len(), 2);
    assert!(!text.contains(SECRET));
    // each family once, its samples together, after its HELP and TYPE (the
    // exposition format forbids interleaving); counters are the `_total`s
    let mut seen = std::collections::BTreeSet::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(seen.insert(name.to_string()), "{name} has two TYPE lines");
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name} is a {kind}"
            );
            current = name.to_string();
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(name, current, "{name} sample outside its family");
        }
    }
    for counter in [
        "rblwatch_list_queries_total",
        "rblwatch_sweeps_total",
        "rblwatch_sweep_answers_total",
        "rblwatch_mail_source_failures_total",
    ] {
        assert!(seen.contains(counter), "{counter} missing");
    }
    // SQLite's memory, for telling its caches from the daemon's own growth
    let sqlite = scrape
        .samples
        .iter()
        .find(|s| s.metric == "rblwatch_sqlite_memory_bytes")
        .expect("rblwatch_sqlite_memory_bytes");
    assert!(matches!(sqlite.value, prometheus_parse::Value::Gauge(v) if v > 0.0));
    // issue 22: list health is a state set, every state present for every list
    // (a list changing failure mode keeps its series), exactly one of them 1
    for list in ["bl-test", "dyn-test", "keyed-test"] {
        let states: Vec<_> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == "rblwatch_list_health" && s.labels.get("list") == Some(list))
            .collect();
        assert_eq!(states.len(), 6, "{list}: {states:?}");
        let on: Vec<_> = states
            .iter()
            .filter(|s| matches!(s.value, prometheus_parse::Value::Gauge(v) if v == 1.0))
            .collect();
        assert_eq!(on.len(), 1, "{list}: {states:?}");
    }
    assert!(!text.contains("rblwatch_list_healthy"), "{text}");
    // one family per meaning with its unit; the build, the status page and the process
    for line in [
        "rblwatch_mail_queue_messages{source=\"mx\"} 5",
        "rblwatch_mail_queue_bounce_messages{source=\"mx\"} 2",
        "rblwatch_mail_source_failures_total{source=\"mx\"} 0",
        "rblwatch_info{status_url=\"\"} 1",
        "# TYPE process_cpu_seconds_total counter",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_start_time_seconds gauge",
    ] {
        assert!(text.contains(line), "{line} missing: {text}");
    }
    assert!(
        text.contains(&format!(
            "rblwatch_build_info{{arch=\"{}\",os=\"linux\",version=\"{}\"}} 1",
            std::env::consts::ARCH,
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(!text.contains("rblwatch_mail_metric"), "{text}");
    promtool_check_metrics(&text);
}

/// Issue 22: a log source's counts per read were gauges that started again
/// at every read (7 refusals read in two reads gave `sum_over_time` = 14 at
/// two scrapes a read). They are counters now, one family per meaning, that
/// add every read's counts: 3 then 4 refusals (and reads that found none in
/// between) make 7, however often it is scraped.
#[test]
fn log_counts_add_up_into_counters_across_reads() {
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("maillog");
    std::fs::write(&log, "").unwrap();
    let d = start(&format!(
        "\n[alerting]\nstatus_url = \"https://mon.example.test/\"\n\n[[sources]]\nname = \"mxlog\"\nkind = \"postfix_log\"\npath = {:?}\ninterval = \"1s\"\n",
        log.display().to_string()
    ));
    let db = d._dir.path().join("rblwatch.db");
    let reads = || -> i64 {
        rusqlite::Connection::open(&db)
            .and_then(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM metric_samples WHERE source = 'mxlog' AND metric = 'ndr_generated'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap_or(0)
    };
    let refusal = |i: u32| {
        format!("Nov 23 10:00:0{i} mx1 postfix/smtp[2101]: 4ZK3p34Lg{i}: to=<alice{i}@outlook.com>, relay=outlook-com.olc.protection.outlook.com[203.0.113.1]:25, delay=1.2, delays=0.1/0/0.6/0.5, dsn=5.7.1, status=bounced (host outlook-com.olc.protection.outlook.com[203.0.113.1] said: 550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). (in reply to MAIL FROM command))\n")
    };
    let ndr = "Nov 23 10:00:09 mx postfix/bounce[25]: B16039CAB5: sender non-delivery notification: B68F49CAB9\n";
    let append = |text: String| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    let t = Duration::from_secs(30);
    wait_for("the log's first read", t, || (reads() >= 1).then_some(()));
    let scrape = || get(&format!("{}/metrics", d.base), None).2;
    let total = |text: &str, family: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains("source=\"mxlog\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // the log source's counters are there at 0 before anything is counted
    let m = scrape();
    assert!(
        m.contains("# TYPE rblwatch_mail_refusals_total counter")
            && m.contains("rblwatch_mail_refusals_total{outcome=\"rejected\",reason=\"blocklist\",source=\"mxlog\"} 0")
            && m.contains("rblwatch_mail_ndr_total{source=\"mxlog\"} 0"),
        "{m}"
    );
    append((1..=3).map(refusal).collect::<String>() + ndr);
    wait_for("3 refusals counted", t, || {
        (total(&scrape(), "rblwatch_mail_refusals_total") == 3.0).then_some(())
    });
    // reads that find nothing new leave the counters as they are
    let n = reads();
    wait_for("two more reads", t, || (reads() >= n + 2).then_some(()));
    append((4..=7).map(refusal).collect::<String>() + ndr);
    let m = wait_for("7 refusals counted", t, || {
        let m = scrape();
        (total(&m, "rblwatch_mail_refusals_total") == 7.0).then_some(m)
    });
    let n = reads();
    wait_for("two more reads", t, || (reads() >= n + 2).then_some(()));
    let m2 = scrape();
    for (family, want) in [
        ("rblwatch_mail_refusals_total", 7.0),
        ("rblwatch_mail_bounced_recipients_total", 7.0),
        ("rblwatch_mail_ndr_total", 2.0),
    ] {
        assert_eq!(total(&m2, family), want, "{family}: {m2}");
    }
    assert!(
        m.contains("rblwatch_mail_refusals_total{outcome=\"rejected\",reason=\"reputation\",source=\"mxlog\"} 7"),
        "{m}"
    );
    // one family per meaning: no mixed family, no timestamp per value, one last read per source
    assert!(!m2.contains("rblwatch_mail_metric"), "{m2}");
    assert!(
        m2.contains("rblwatch_mail_last_read_timestamp_seconds{source=\"mxlog\"} "),
        "{m2}"
    );
    assert!(
        m2.contains("rblwatch_mail_source_failures_total{source=\"mxlog\"} 0"),
        "{m2}"
    );
    // the status page's address, for the alert rules' links (without its trailing slash)
    assert!(
        m2.contains("rblwatch_info{status_url=\"https://mon.example.test\"} 1"),
        "{m2}"
    );
    promtool_check_metrics(&m2);
}

/// Issue 22: the dashboard had no panel for the resolver, receivers, impact,
/// backscatter, audits, list and pair counts. Every family a real daemon
/// exports appears in some panel's query, and every panel's query is valid
/// PromQL that evaluates without error against that recorded scrape: the
/// queries become recording rules and the scrape their input series, for
/// `promtool test rules` (which fails on a rule's parse or evaluation error).
#[test]
fn dashboard_covers_every_family_and_its_queries_run_on_a_real_scrape() {
    let d = start(RECEIVER_FEEDS);
    seed_receivers(&d);
    let (_, _, text) = get(&format!("{}/metrics", d.base), None);
    // issue 24: the receivers' series are in the scrape (so they need a panel)
    // and Gmail's "not enough volume" is no sample at all, never a 0
    for line in [
        "rblwatch_gmail_spam_ratio{domain=\"example.com\"} 0.0042\n",
        "rblwatch_gmail_spam_ratio_known{domain=\"example.com\"} 1\n",
        "rblwatch_gmail_spam_ratio_known{domain=\"quiet.example\"} 0\n",
        "rblwatch_snds_ips{filter=\"RED\"} 1\n",
        "rblwatch_snds_blocked_ranges 1\n",
        "rblwatch_feed_rejected_reports{feed=\"reports\",reason=\"dtd\"} 1\n",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(
        !text.contains("rblwatch_gmail_spam_ratio{domain=\"quiet.example\"}"),
        "{text}"
    );
    promtool_check_metrics(&text);
    let dash: serde_json::Value =
        serde_json::from_str(include_str!("../../contrib/grafana-dashboard.json")).unwrap();
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push((
                p["title"].as_str().unwrap().to_string(),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert!(exprs.len() > 40, "{exprs:?}");
    let families: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, k)| (n.to_string(), k.to_string()))
        .collect();
    assert!(families.len() > 30, "{text}");
    for (family, _) in &families {
        let word = regex::Regex::new(&format!(r"\b{family}\b")).unwrap();
        assert!(
            exprs.iter().any(|(_, e)| word.is_match(e)),
            "no dashboard panel shows {family}"
        );
    }
    // the scrape as input series (counters rising, so rates are not all 0)
    let counters: std::collections::BTreeSet<&str> = families
        .iter()
        .filter(|(_, k)| k == "counter")
        .map(|(n, _)| n.as_str())
        .collect();
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut series = String::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name_labels, value) = line.rsplit_once(' ').unwrap();
        let v: f64 = value.parse().unwrap();
        let (name, labels) = match name_labels.split_once('{') {
            Some((n, rest)) => (
                n,
                format!("{{job=\"rblwatch\",instance=\"mon:8025\",{rest}"),
            ),
            None => (
                name_labels,
                "{job=\"rblwatch\",instance=\"mon:8025\"}".to_string(),
            ),
        };
        let values = if counters.contains(name) {
            format!("{v}+1x30")
        } else {
            format!("{v}x30")
        };
        series.push_str(&format!(
            "      - series: {}\n        values: {}\n",
            q(&format!("{name}{labels}")),
            q(&values)
        ));
    }
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (title, e)) in exprs.iter().enumerate() {
        let e = e
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        rules.push_str(&format!(
            "      # {title}\n      - record: dashboard_query_{i}\n        expr: {}\n",
            q(&e)
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("dashboard-rules.yml");
    std::fs::write(&rules_path, &rules).unwrap();
    let o = promtool(&["check", "rules", rules_path.to_str().unwrap()], None);
    assert!(o.status.success(), "{}{}\n{rules}", stdout(&o), stderr(&o));
    let test = format!(
        "rule_files: [{}]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{series}    promql_expr_test:\n      - expr: vector(1)\n        eval_time: 20m\n        exp_samples:\n          - labels: '{{}}'\n            value: 1\n",
        q(rules_path.to_str().unwrap())
    );
    let test_path = dir.path().join("dashboard.test.yml");
    std::fs::write(&test_path, &test).unwrap();
    let o = promtool(&["test", "rules", test_path.to_str().unwrap()], None);
    assert!(o.status.success(), "{}{}\n{rules}", stdout(&o), stderr(&o));
}

fn promtool(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    assert!(
        Path::new("/usr/bin/promtool").exists(),
        "promtool is not installed: run `scripts/test` (it apt-installs Debian's prometheus package)"
    );
    use std::io::Write;
    let mut child = Command::new("/usr/bin/promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// `promtool check metrics` (its linter included) finds nothing to say.
pub(crate) fn promtool_check_metrics(text: &str) {
    let o = promtool(&["check", "metrics"], Some(text));
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        o.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{text}"
    );
}

#[test]
fn shipped_prometheus_rules_pass_promtool() {
    let o = promtool(&["check", "rules", "contrib/prometheus-rules.yml"], None);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = promtool(
        &["test", "rules", "tests/fixtures/prometheus-rules.test.yml"],
        None,
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn auth_token_and_check_now_protection() {
    let token = "0123456789abcdef-token";
    let d = start(&format!("token = \"{token}\"\nrefresh = \"0s\""));
    let b = &d.base;
    assert_eq!(get(&format!("{b}/"), None).0, 401);
    assert_eq!(
        get(
            &format!("{b}/api/v1/status"),
            Some("Bearer wrong-token-wrong-token")
        )
        .0,
        401
    );
    assert_eq!(get(&format!("{b}/metrics"), None).0, 401);
    assert_eq!(
        get(&format!("{b}/healthz"), None).0,
        200,
        "load balancers need no token"
    );
    assert_eq!(
        get(
            &format!("{b}/api/v1/status"),
            Some(&format!("Bearer {token}"))
        )
        .0,
        200
    );
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{token}"))
    );
    let (s, _, page) = get(&format!("{b}/"), Some(&basic));
    assert_eq!(s, 200);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {token}");
    let host = b.trim_start_matches("http://");
    // no token, no form token, a foreign origin: all refused
    assert_eq!(
        post(
            &format!("{b}/check-now"),
            &format!("csrf={csrf}"),
            Some(b),
            None
        ),
        401
    );
    assert!(matches!(
        post(&format!("{b}/check-now"), "", Some(b), Some(&bearer)),
        400..=499
    ));
    assert_eq!(
        post(
            &format!("{b}/check-now"),
            "csrf=wrong",
            Some(b),
            Some(&bearer)
        ),
        403
    );
    assert_eq!(
        post(
            &format!("{b}/check-now"),
            &format!("csrf={csrf}"),
            Some("http://evil.example"),
            Some(&bearer)
        ),
        403
    );
    // the right token, form token and origin: a sweep is requested
    assert_eq!(
        post(
            &format!("{b}/check-now"),
            &format!("csrf={csrf}"),
            Some(&format!("http://{host}")),
            Some(&bearer)
        ),
        303
    );
    let db = d._dir.path().join("rblwatch.db");
    wait_for("the requested sweep", Duration::from_secs(20), || {
        let c = rusqlite::Connection::open(&db).ok()?;
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sweeps WHERE status = 'done'",
                [],
                |r| r.get(0),
            )
            .ok()?;
        (n >= 2).then_some(())
    });
}

#[test]
fn a_non_loopback_bind_without_a_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "[web]\nlisten = \"0.0.0.0:18025\"\n").unwrap();
    for args in [vec!["config", "check"], vec!["daemon"]] {
        let mut a = args.clone();
        a.extend(["-C", p.to_str().unwrap()]);
        let o = rblwatch(&a);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&o).contains("web.listen") && stderr(&o).contains("web.token"),
            "{}",
            stderr(&o)
        );
    }
    std::fs::write(&p, "[web]\nlisten = \"0.0.0.0:18025\"\ninsecure = true\n").unwrap();
    assert!(rblwatch(&["config", "check", "-C", p.to_str().unwrap()])
        .status
        .success());
}

/// A minimal W3C WebDriver client for chromedriver (and Chrome DevTools commands through it).
pub(crate) struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) fn start() -> Self {
        assert!(
            Path::new("/usr/bin/chromedriver").exists(),
            "chromium-driver is not installed: run `scripts/test` (it apt-installs chromium and chromium-driver)"
        );
        let port = free_tcp_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            get(&format!("{base}/status"), None)
                .2
                .contains("\"ready\":true")
                .then_some(())
        });
        let profile = tempfile::tempdir().unwrap();
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     format!("--user-data-dir={}", profile.path().display())]
        }}}});
        let v = Self::call_at(&base, "POST", "/session", Some(caps));
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            _profile: profile,
        }
    }

    fn call_at(
        base: &str,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        block_on(async {
            let c = reqwest::Client::new();
            let url = format!("{base}{path}");
            let r = match method {
                "GET" => c.get(url),
                "DELETE" => c.delete(url),
                _ => c.post(url).json(&body.unwrap_or(serde_json::json!({}))),
            };
            r.send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        Self::call_at(
            &self.base,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
    }

    pub(crate) fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(serde_json::json!({ "url": url })));
    }

    /// A Chrome DevTools Protocol command (chromedriver's extension).
    pub(crate) fn cdp(&self, cmd: &str, params: serde_json::Value) -> serde_json::Value {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(serde_json::json!({ "cmd": cmd, "params": params })),
        )["value"]
            .clone()
    }

    /// Lays pages out `width` CSS pixels wide (a phone below 600: touch, meta viewport).
    pub(crate) fn viewport(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
        );
    }

    /// The whole page (not only the viewport) as a PNG.
    pub(crate) fn full_screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let v = self.cdp(
            "Page.captureScreenshot",
            serde_json::json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(
                v["data"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no screenshot: {v}")),
            )
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// The page's text as shown.
    pub(crate) fn text(&self) -> String {
        self.script("return document.body.innerText")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub(crate) fn script(&self, js: &str) -> serde_json::Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(serde_json::json!({ "script": js, "args": [] })),
        )["value"]
            .clone()
    }

    pub(crate) fn click(&self, css: &str) {
        let v = self.call(
            "POST",
            "/element",
            Some(serde_json::json!({ "using": "css selector", "value": css })),
        );
        let id = v["value"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|x| x.as_str())
            .unwrap_or_else(|| panic!("{css} not found: {v}"))
            .to_string();
        self.call(
            "POST",
            &format!("/element/{id}/click"),
            Some(serde_json::json!({})),
        );
    }

    fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let v = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = Self::call_at(
            &self.base,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn a_real_browser_sees_the_listing_and_no_script_runs() {
    let d = start("");
    let br = Browser::start();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    br.goto(&format!("{}/", d.base));
    let text = br
        .script("return document.body.innerText")
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(text.contains("2 listings"), "{text}");
    assert!(
        text.contains("192.0.2.1") && text.contains("192.0.2.66"),
        "{text}"
    );
    br.screenshot(&artifacts.join("overview.png"));
    // follow the link to the target whose TXT record carries markup and script
    br.click("a[href='/target/192.0.2.66']");
    wait_for("the target page", Duration::from_secs(10), || {
        br.call("GET", "/url", None)["value"]
            .as_str()
            .unwrap_or("")
            .ends_with("/target/192.0.2.66")
            .then_some(())
    });
    let text = br
        .script("return document.body.innerText")
        .as_str()
        .unwrap_or("")
        .to_string();
    // the TXT reason is shown as text, tags and all
    assert!(
        text.contains(
            "<script>alert(1)</script><img src=x onerror=\"document.title='pwned'\"><b>bold</b>"
        ),
        "{text}"
    );
    // and nothing in it ran or became markup
    assert_eq!(
        br.script("return document.title").as_str(),
        Some("192.0.2.66 · rblwatch")
    );
    assert_eq!(
        br.script("return document.querySelectorAll('main script, main img, td.txt *').length"),
        serde_json::json!(0)
    );
    br.screenshot(&artifacts.join("target.png"));
}

/// Status-page issue, point 5: a DNS-rebinding page reaches the loopback status page
/// under its own name; such requests are refused, reads and the POST alike.
#[test]
fn requests_under_a_foreign_host_name_are_refused() {
    let d = start("");
    let b = &d.base;
    let port = b.rsplit(':').next().unwrap();
    let with_host = |method: &str, path: &str, host: &str| -> (u16, String) {
        block_on(async {
            let c = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let r = match method {
                "POST" => c
                    .post(format!("{b}{path}"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("csrf=x"),
                _ => c.get(format!("{b}{path}")),
            };
            let resp = r.header("host", host).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        })
    };
    for path in ["/", "/api/v1/status", "/metrics", "/target/192.0.2.1"] {
        let (s, body) = with_host("GET", path, &format!("rebind.evil.example:{port}"));
        assert_eq!(s, 421, "{path}: {body}");
        assert!(!body.contains("192.0.2.1"), "{path} leaked data: {body}");
    }
    assert_eq!(
        with_host("POST", "/check-now", &format!("rebind.evil.example:{port}")).0,
        421
    );
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(with_host("GET", "/", &host).0, 200, "{host}");
    }
    // a load balancer's health check needs no particular name
    assert_eq!(with_host("GET", "/healthz", "lb.internal").0, 200);
}

/// Where scripts/test installs the OpenAPI tools from PyPI (a venv of their own).
fn openapi_tool(name: &str) -> std::path::PathBuf {
    let venv = std::env::var("RBLWATCH_OPENAPI_VENV")
        .unwrap_or_else(|_| "/var/cache/rblwatch-lab/openapi-venv".into());
    let p = std::path::Path::new(&venv).join("bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/test (it installs openapi-spec-validator and schemathesis from PyPI into {venv})",
        p.display()
    );
    p
}

/// Issue 22 point 2: an OpenAPI 3.1 document generated from the handlers'
/// types, valid by `openapi-spec-validator`, and the running daemon keeps to
/// it under `schemathesis`' property-based requests: no 5xx, every status
/// documented, every body of the documented type and schema.
#[test]
fn the_api_keeps_to_its_openapi_document() {
    // with the receivers' data stored, so /api/v1/gmail and /api/v1/senders
    // answer with every member their schemas describe
    let d = start(RECEIVER_FEEDS);
    seed_receivers(&d);
    let b = &d.base;
    let (s, t, doc) = get(&format!("{b}/api/v1/openapi.json"), None);
    assert_eq!((s, t.as_str()), (200, "application/json"), "{doc}");
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert!(
        v["openapi"].as_str().unwrap_or("").starts_with("3.1"),
        "{}",
        v["openapi"]
    );
    for path in [
        "/api/v1/status",
        "/api/v1/targets",
        "/api/v1/targets/{target}",
        "/api/v1/targets/{addr}/{len}",
        "/api/v1/lists",
        "/api/v1/lists/{list}",
        "/api/v1/events",
        "/api/v1/hook-runs",
        "/api/v1/alerts",
        "/api/v1/metrics/{source}/{metric}",
        "/api/v1/receivers",
        "/api/v1/audit",
        "/api/v1/accounts",
        "/api/v1/gmail",
        "/api/v1/senders",
        "/api/v1/delistings",
        "/api/v1/openapi.json",
    ] {
        assert!(v["paths"][path].is_object(), "{path} is not described");
    }
    // issue 24: Gmail's and the senders' answers are described by their types, not "any object"
    for (path, body) in [
        ("/api/v1/gmail", "GmailBody"),
        ("/api/v1/senders", "SendersBody"),
    ] {
        let schema =
            &v["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(
            schema["$ref"],
            format!("#/components/schemas/{body}"),
            "{path}: {schema}"
        );
    }
    let schemas = &v["components"]["schemas"];
    for (schema, member) in [
        ("GmailDomain", "spam_rate"),
        ("GmailDomain", "days"),
        ("SpamRateView", "level"),
        ("DayStats", "spam_rate"),
        ("SendersBody", "listed_share"),
        ("DmarcSender", "passed"),
        ("SndsSender", "recipients"),
    ] {
        assert!(
            schemas[schema]["properties"][member].is_object(),
            "{schema}.{member}: {}",
            schemas[schema]
        );
    }
    assert!(
        schemas["SenderStatus"]
            .to_string()
            .contains("not_monitored"),
        "{}",
        schemas["SenderStatus"]
    );
    // what they answer here has the members the schemas name (schemathesis
    // below checks every answer against the whole schema)
    let (s, _, gmail) = get(&format!("{b}/api/v1/gmail"), None);
    assert_eq!(s, 200, "{gmail}");
    let g: serde_json::Value = serde_json::from_str(&gmail).unwrap();
    assert_eq!(g["domains"][0]["spam_rate"]["rate"], 0.0042, "{g}");
    assert!(g["domains"][1]["spam_rate"].is_null(), "{g}");
    assert!(g["domains"][0]["days"][0]["spam_rate"].is_null(), "{g}");
    assert_eq!(
        g["domains"][0]["days"][0]["percent"]["spam_rate"], "no figure",
        "{g}"
    );
    let (s, _, senders) = get(&format!("{b}/api/v1/senders"), None);
    assert_eq!(s, 200, "{senders}");
    let v2: serde_json::Value = serde_json::from_str(&senders).unwrap();
    assert_eq!(v2["snds"][0]["status"], "monitored", "{v2}");
    assert_eq!(v2["rejected"][0]["reason"], "dtd", "{v2}");
    // counts are numbers in the schema too
    let targets = &v["components"]["schemas"]["TargetsPage"]["properties"];
    assert_eq!(targets["total"]["type"], "integer", "{targets}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &doc).unwrap();
    let o = Command::new(openapi_tool("openapi-spec-validator"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(openapi_tool("schemathesis"))
        .current_dir(dir.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .args([
            "run",
            file.to_str().unwrap(),
            "--url",
            b,
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--seed",
            "22",
            "--workers",
            "2",
            "--generation-database",
            "none",
            "--request-timeout",
            "10",
        ])
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "schemathesis found problems:\n{out}");
    eprintln!("{out}");
    // it did test: every operation, and none skipped for want of a schema it could use
    assert!(
        out.contains("18 selected") || out.contains("18 total"),
        "{out}"
    );
}
