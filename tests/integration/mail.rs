//! Mail telemetry and the backscatter probe against a real private Postfix on 127.0.0.1.

use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::util::{free_tcp_port, once, rblwatch, stderr, stdout, Postfix};

fn mail_config(dir: &std::path::Path, pf: &Postfix, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[daemon]
database = "rblwatch.db"

[[sources]]
name = "mx"
kind = "postfix"
command = ["postqueue", "-c", {conf:?}, "-j"]

[[sources]]
name = "mxlog"
kind = "postfix_log"
path = {log:?}

[[probes]]
domain = "example.test"
server = "{server}"
helo = "probe.test"
mail_from = "probe@probe.test"

[[spikes]]
metric = "mx.queue_bounces"
kind = "queue_spike"
above = 20
clear_after = 1

[[spikes]]
metric = "mxlog.ndr_generated"
kind = "ndr_spike"
above = 20
baseline_factor = 5
floor = 10
clear_after = 1
{extra}
"#,
        conf = pf.conf().display().to_string(),
        log = pf.log().display().to_string(),
        server = pf.server(),
    );
    let p = dir.join("rblwatch.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn latest(c: &Connection, source: &str, metric: &str) -> f64 {
    c.query_row(
        "SELECT value FROM metric_samples WHERE source = ?1 AND metric = ?2 ORDER BY id DESC LIMIT 1",
        [source, metric],
        |r| r.get(0),
    )
    .unwrap()
}

fn events(c: &Connection) -> Vec<String> {
    let mut st = c.prepare("SELECT kind FROM events ORDER BY id").unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn backscatter_attack_is_seen_and_the_strict_fix_clears_it() {
    let pf = Postfix::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = mail_config(dir.path(), &pf, "");

    // the probe says the vulnerable server accepts unknown recipients
    let o = rblwatch(&[
        "probe",
        "smtp",
        &pf.server(),
        "--domain",
        "example.test",
        "--from",
        "probe@probe.test",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("accepts-unknown"), "{}", stdout(&o));
    assert!(
        !stdout(&o).contains("C: DATA"),
        "the probe never sends DATA"
    );

    // first run: sets the log position (history is not counted), probe raises rndr_vulnerable
    once(&cfg);
    // the attack: 50 forged-sender messages to random nonexistent users
    assert_eq!(pf.attack(50), 50);
    pf.settle();
    once(&cfg);
    let c = Connection::open(dir.path().join("rblwatch.db")).unwrap();
    assert!(
        latest(&c, "mx", "queue_bounces") >= 50.0,
        "bounces in the queue"
    );
    assert!(latest(&c, "mx", "queue_depth") >= 50.0);
    assert_eq!(
        latest(&c, "mxlog", "ndr_generated"),
        50.0,
        "NDRs generated in the interval"
    );
    let ev = events(&c);
    assert!(ev.contains(&"rndr_vulnerable".to_string()), "{ev:?}");
    assert!(ev.contains(&"ndr_spike".to_string()), "{ev:?}");
    assert!(ev.contains(&"queue_spike".to_string()), "{ev:?}");
    let figures: String = c
        .query_row(
            "SELECT details FROM events WHERE kind = 'ndr_spike'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(figures.contains("\"value\":50.0"), "{figures}");

    // the fix: reject unknown recipients at RCPT; the queued backscatter is removed
    pf.strict();
    let o = rblwatch(&[
        "probe",
        "smtp",
        &pf.server(),
        "--domain",
        "example.test",
        "--from",
        "probe@probe.test",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("rejects-unknown") && stdout(&o).contains("550"),
        "{}",
        stdout(&o)
    );
    Command::new("postsuper")
        .args(["-c", pf.conf().to_str().unwrap(), "-d", "ALL"])
        .output()
        .unwrap();
    // the same attack now produces no bounce
    assert_eq!(pf.attack(50), 0, "every RCPT is refused");
    pf.settle();
    once(&cfg);
    assert_eq!(latest(&c, "mx", "queue_bounces"), 0.0);
    assert_eq!(latest(&c, "mxlog", "ndr_generated"), 0.0);
    // 50 attack RCPTs + the CLI probe's random recipient
    assert!(latest(&c, "mxlog", "rcpt_rejected_unknown") >= 50.0);
    let ev = events(&c);
    for k in [
        "ndr_spike_cleared",
        "queue_spike_cleared",
        "rndr_vulnerable_cleared",
    ] {
        assert!(ev.contains(&k.to_string()), "{k}: {ev:?}");
    }
    let probe: String = c
        .query_row(
            "SELECT verdict FROM probe_results ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(probe, "rejects-unknown");
}

#[test]
fn hanging_and_malformed_sources_do_not_stop_the_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"[daemon]
database = "rblwatch.db"

[[sources]]
name = "hangs"
kind = "command"
command = ["sleep", "30"]
timeout = "500ms"

[[sources]]
name = "garbage"
kind = "exim"
command = ["echo", "this is not exim -bp output"]

[[sources]]
name = "works"
kind = "command"
command = ["echo", "{\"queue\": 7}"]
"#;
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(&cfg, text).unwrap();
    let started = Instant::now();
    let o = rblwatch(&["-v", "daemon", "--once", "-C", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let log = stderr(&o);
    assert!(
        log.contains("source=hangs") && log.contains("timed out"),
        "{log}"
    );
    assert!(
        log.contains("source=garbage") && log.contains("not an exim -bp line"),
        "{log}"
    );
    let c = Connection::open(dir.path().join("rblwatch.db")).unwrap();
    assert_eq!(latest(&c, "works", "queue"), 7.0);
}

#[test]
fn unreachable_smtp_host_is_inconclusive() {
    let port = free_tcp_port();
    let o = rblwatch(&[
        "probe",
        "smtp",
        &format!("127.0.0.1:{port}"),
        "--domain",
        "example.test",
        "--timeout",
        "2s",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("inconclusive") && stdout(&o).contains("cannot connect"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn http_json_and_prometheus_sources_through_a_real_http_server() {
    let http = crate::util::HttpFixture::serve(vec![
        ("/stats", "application/json", r#"{"queue": {"total": 12, "bounces": "3"}}"#.to_string()),
        (
            "/metrics",
            "text/plain; version=0.0.4",
            "# TYPE postfix_showq_message_age_seconds_count counter\npostfix_showq_message_age_seconds_count{queue=\"deferred\"} 57\npostfix_showq_message_age_seconds_count{queue=\"hold\"} 4\n".to_string(),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[daemon]
database = "rblwatch.db"

[[sources]]
name = "exchange"
kind = "http_json"
url = "http://127.0.0.1:{port}/stats"
header = "Authorization: Bearer env:RBLWATCH_TEST_TOKEN"
values = {{ queue_depth = "/queue/total", queue_bounces = "/queue/bounces" }}

[[sources]]
name = "exporter"
kind = "prometheus"
url = "http://127.0.0.1:{port}/metrics"
metrics = {{ deferred = 'postfix_showq_message_age_seconds_count{{queue="deferred"}}', all = "postfix_showq_message_age_seconds_count" }}

[[sources]]
name = "down"
kind = "prometheus"
url = "http://127.0.0.1:{dead}/metrics?token=sekrit-in-url"
metrics = {{ x = "y" }}
timeout = "1s"
"#,
        port = http.port,
        dead = free_tcp_port()
    );
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(&cfg, text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rblwatch"))
        .args(["daemon", "--once", "-C", cfg.to_str().unwrap()])
        .env("RBLWATCH_TEST_TOKEN", "tok-123")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let c = Connection::open(dir.path().join("rblwatch.db")).unwrap();
    assert_eq!(latest(&c, "exchange", "queue_depth"), 12.0);
    assert_eq!(latest(&c, "exchange", "queue_bounces"), 3.0);
    assert_eq!(latest(&c, "exporter", "deferred"), 57.0);
    assert_eq!(latest(&c, "exporter", "all"), 61.0);
    // the token went in the header, and a failing URL's secret never reaches the log
    assert!(http.requests.lock().unwrap().iter().any(|r| r
        .to_ascii_lowercase()
        .contains("authorization: bearer tok-123")));
    let log = stderr(&o);
    assert!(log.contains("source=down"), "{log}");
    assert!(
        !log.contains("sekrit-in-url") && !log.contains("tok-123"),
        "{log}"
    );
}

#[test]
fn the_probe_uses_starttls_when_offered() {
    let pf = Postfix::start();
    pf.tls();
    let o = rblwatch(&[
        "probe",
        "smtp",
        &pf.server(),
        "--domain",
        "example.test",
        "--from",
        "probe@probe.test",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("{}{}", stdout(&o), stderr(&o)));
    assert_eq!(v["verdict"], "accepts-unknown", "{v}");
    assert!(
        v["tls"].as_str().is_some_and(|t| t.starts_with("TLSv1")),
        "{v}"
    );
    let t = v["transcript"].to_string();
    assert!(
        t.contains("C: STARTTLS") && t.contains("S: 220") && t.contains("TLS established"),
        "{t}"
    );
    // and in plain text on request
    let o = rblwatch(&[
        "probe",
        "smtp",
        &pf.server(),
        "--domain",
        "example.test",
        "--no-starttls",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["tls"].is_null() && !v["transcript"].to_string().contains("C: STARTTLS"),
        "{v}"
    );
}
