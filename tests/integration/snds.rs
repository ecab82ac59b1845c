//! Microsoft SNDS against a local HTTPS stand-in (tests/fixtures/snds/stub.py:
//! a real HTTP server over TLS with a test CA, serving the two exports in
//! their documented formats and SNDS's error answers), read by ONE
//! long-lived daemon in service mode: SNDS turns an IP red and blocked with
//! no DNSBL listing → the headline verdict and the target page say Microsoft
//! refuses it, with the evidence; an expired key, a sign-in page, a hang, a
//! 2 GB body, garbage and wrong columns each keep `feed_failed` raised once
//! while sweeps go on, then `feed_recovered`; a 429's Retry-After is waited
//! out; an empty day is "no data", not zero; a re-fetch stores nothing twice;
//! an SNDS IP no target covers is discovered; the key is nowhere.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use rusqlite::Connection;

use crate::util::{
    fixtures, free_tcp_port, http_get, http_json, wait_for, write_config, Daemon, Rbldnsd,
};

const KEY: &str = "zz5nd5-k3y-0a1b2c3d-4e5f-6789-abcd-ef0123456789zz";

/// The SNDS stand-in; killed on drop.
struct Stub {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    ca: PathBuf,
}

impl Stub {
    fn start(rules: &serde_json::Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let crate::feeds::TestCa { ca, cert, key } = crate::feeds::test_ca(dir.path(), "127.0.0.1");
        let mut s = Stub {
            child: Command::new("/usr/bin/python3")
                .arg(fixtures().join("snds/stub.py"))
                .args([dir.path(), &cert, &key])
                .spawn()
                .unwrap(),
            port: 0,
            ca,
            dir,
        };
        s.rules(rules);
        let port = wait_for("the SNDS stub's port", Duration::from_secs(20), || {
            std::fs::read_to_string(s.dir.path().join("port"))
                .ok()?
                .trim()
                .parse()
                .ok()
        });
        s.port = port;
        s
    }

    /// Replaces the answers (atomically: the stub reads them at every request).
    fn rules(&self, v: &serde_json::Value) {
        let tmp = self.dir.path().join("rules.tmp");
        std::fs::write(&tmp, v.to_string()).unwrap();
        std::fs::rename(tmp, self.dir.path().join("rules.json")).unwrap();
    }

    /// The requests so far: (page, date, key accepted, at).
    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for `n` more complete reads (an ipStatus request each) after now.
    fn wait_reads(&self, n: usize) {
        let before = self.ip_status_requests();
        wait_for("SNDS reads", Duration::from_secs(30), || {
            (self.ip_status_requests() >= before + n).then_some(())
        });
    }

    fn ip_status_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r["page"] == "ipStatus.aspx")
            .count()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn day_of(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

/// The `date=` value SNDS takes for a day (`MMDDYY`).
fn mmddyy(day: &str) -> String {
    format!("{}{}{}", &day[5..7], &day[8..10], &day[2..4])
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A data export row in SNDS's 14 columns (the fixture's format).
fn row(ip: &str, filter: &str, rate: &str, traps: u32, recipients: u32) -> String {
    let trap = if traps > 0 {
        ("12/4/2026 8:07 AM", "12/4/2026 11:53 AM")
    } else {
        ("", "")
    };
    format!(
        "{ip},12/4/2026 10:00 AM,12/4/2026 9:00 PM,{r1},{r1},{recipients},{filter},{rate},{},{},{traps},mx.example.com,news@example.com,\r\n",
        trap.0,
        trap.1,
        r1 = recipients + 1
    )
}

fn db(dir: &Path) -> Connection {
    let c = Connection::open(dir.join("rblwatch.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn count(dir: &Path, sql: &str) -> i64 {
    db(dir).query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

fn db_bytes(dir: &Path) -> Vec<u8> {
    let mut b = Vec::new();
    for f in ["rblwatch.db", "rblwatch.db-wal"] {
        b.extend(std::fs::read(dir.join(f)).unwrap_or_default());
    }
    b
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn failed(dir: &Path) -> i64 {
    count(
        dir,
        "SELECT count(*) FROM events WHERE kind = 'feed_failed'",
    )
}

fn recovered(dir: &Path) -> i64 {
    count(
        dir,
        "SELECT count(*) FROM events WHERE kind = 'feed_recovered'",
    )
}

#[test]
fn story_snds_turns_an_unlisted_ip_red_the_verdict_says_microsoft_refuses_it_bad_answers_are_contained(
) {
    let yesterday = day_of(now() - 86_400);
    let before = day_of(now() - 2 * 86_400);
    let green = row("192.0.2.10", "GREEN", "< 0.1%", 0, 1200)
        + &row("192.0.2.99", "GREEN", "< 0.1%", 0, 300);
    let ok = serde_json::json!({
        "key": KEY,
        "ipStatus": {"body": ""},
        // the day before yesterday: an empty body, SNDS's "no data"
        "data": {mmddyy(&yesterday): {"body": green}, mmddyy(&before): {"body": ""}},
    });
    let stub = Stub::start(&ok);
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let extra = format!(
        "[[targets]]\ntarget = \"192.0.2.10\"\n\
[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"2s\"\nhealth = \"1h\"\n\
[[feeds]]\nkind = \"snds\"\nkey = \"env:SNDS_KEY\"\nbase_url = \"https://127.0.0.1:{}/snds\"\n\
ca_file = {:?}\ninterval = \"1s\"\ntimeout = \"2s\"\ndays = 2\nmax_body_bytes = 1048576\n\
[discover]\nfrom = [\"snds\"]\nmax = 4\n\
[web]\nlisten = \"127.0.0.1:{port}\"\n",
        stub.port,
        stub.ca.display().to_string()
    );
    let cfg = write_config(dir.path(), &rbl, &["bl-test"], &extra);
    let d = Daemon::start_with_env(&cfg, &[("SNDS_KEY", KEY)]);
    let dp = dir.path();

    // green, nothing blocked: stored per IP and day; the empty day is "no data", not zero
    stub.wait_reads(2);
    wait_for("the first sweep", Duration::from_secs(20), || {
        (count(dp, "SELECT count(*) FROM sweeps WHERE status = 'done'") >= 1).then_some(())
    });
    assert_eq!(
        count(
            dp,
            &format!(
                "SELECT count(*) FROM snds_days WHERE ip = '192.0.2.10' AND day = '{yesterday}'"
            )
        ),
        1,
        "a re-fetched day is stored once"
    );
    assert_eq!(
        count(
            dp,
            &format!("SELECT rows FROM snds_fetched WHERE day = '{before}'")
        ),
        0
    );
    assert_eq!(
        count(
            dp,
            &format!("SELECT count(*) FROM snds_fetched WHERE day = '{before}'")
        ),
        1
    );
    assert!(stub.requests().iter().all(|r| r["key_ok"] == true));
    assert!(
        stub.requests()
            .iter()
            .any(|r| r["page"] == "data.aspx" && r["date"] == mmddyy(&yesterday)),
        "the data export is asked for by date (MMDDYY)"
    );
    let v = wait_for(
        "a verdict without SNDS refusal",
        Duration::from_secs(10),
        || {
            let v = http_json(port, "/api/v1/status");
            (v["verdict"]["kind"] != "refused_not_listed").then_some(v)
        },
    );
    assert_eq!(v["verdict"]["kind"], "all_clear", "{v}");
    let (_, page) = http_get(port, "/target/192.0.2.10");
    assert!(page.contains("Microsoft SNDS"), "{page}");
    assert!(page.contains("SNDS does not mark it blocked or red"));
    assert!(
        page.contains("no data from SNDS that day"),
        "empty day said as such"
    );
    // an IP SNDS sees sending that no target covers: announced and swept (discover from snds)
    let ev = wait_for(
        "unmonitored_sender from SNDS",
        Duration::from_secs(10),
        || {
            db(dp)
            .query_row(
                "SELECT summary FROM events WHERE kind = 'unmonitored_sender' AND target = '192.0.2.99'",
                [],
                |r| r.get::<_, String>(0),
            )
            .ok()
        },
    );
    assert!(ev.contains("added to the sweeps"), "{ev}");
    let t = wait_for("192.0.2.99 swept", Duration::from_secs(15), || {
        let t = http_json(port, "/api/v1/targets");
        t.to_string()
            .contains("discovered: sends for example.com (snds)")
            .then_some(t)
    });
    assert!(t.to_string().contains("192.0.2.99"), "{t}");
    let v = http_json(port, "/api/v1/senders");
    let s = v["snds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ip"] == "192.0.2.99")
        .unwrap()
        .clone();
    assert_eq!(s["status"], "discovered", "{v}");
    assert_eq!(
        s["text"],
        "sending to Microsoft, swept (discovered from snds)"
    );
    assert_eq!(
        (s["recipients"].as_u64(), s["domain"].as_str()),
        (Some(300), Some("example.com"))
    );
    let (_, page) = http_get(port, "/senders");
    assert!(page.contains("Seen by Microsoft SNDS"), "{page}");

    // SNDS turns 192.0.2.10 red and blocks it; no list lists it
    let red =
        row("192.0.2.10", "RED", "4.2%", 26, 950) + &row("192.0.2.99", "GREEN", "< 0.1%", 0, 300);
    let bad = serde_json::json!({
        "key": KEY,
        "ipStatus": {"body": "192.0.2.10,192.0.2.10,Yes,Blocked due to user complaints or other evidence of spamming\r\n"},
        "data": {mmddyy(&yesterday): {"body": red}, mmddyy(&before): {"body": ""}},
    });
    stub.rules(&bad);
    let v = wait_for(
        "the verdict: refused by Microsoft",
        Duration::from_secs(20),
        || {
            let v = http_json(port, "/api/v1/status");
            (v["verdict"]["kind"] == "refused_not_listed").then_some(v)
        },
    );
    assert_eq!(
        v["verdict"]["text"], "Refused by Microsoft, not listed",
        "{v}"
    );
    let detail = v["verdict"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("Microsoft refuses mail from 192.0.2.10"),
        "{detail}"
    );
    assert!(
        detail.contains("blocked (Blocked due to user complaints or other evidence of spamming)"),
        "{detail}"
    );
    assert!(
        detail.contains(&format!(
            "filter result RED on {yesterday} (complaint rate 4.2 %, 26 trap hits, 950 recipients)"
        )),
        "{detail}"
    );
    assert!(detail.contains("no monitored list lists it"), "{detail}");
    assert_eq!(
        count(
            dp,
            "SELECT count(*) FROM listings WHERE target = '192.0.2.10'"
        ),
        0,
        "no DNSBL lists it"
    );
    let (_, overview) = http_get(port, "/");
    assert!(
        overview.contains("Refused by Microsoft, not listed"),
        "{overview}"
    );
    let (_, page) = http_get(port, "/target/192.0.2.10");
    assert!(
        page.contains("Microsoft refuses mail from 192.0.2.10"),
        "{page}"
    );
    assert!(page.contains("trap hits"), "the chart");
    assert!(page.contains("<svg"), "{page}");
    assert!(page.contains("RED"));
    let api = http_json(port, "/api/v1/targets/192.0.2.10");
    assert_eq!(api["snds"]["days"][0]["row"]["trap_hits"], 26, "{api}");
    assert!(api["snds"].get("charts").is_none(), "the API has no SVG");
    wait_for(
        "receiver_rejecting for Microsoft (SNDS)",
        Duration::from_secs(10),
        || {
            (count(dp, "SELECT count(*) FROM events WHERE kind = 'receiver_rejecting' AND summary LIKE 'Microsoft (SNDS)%'") == 1).then_some(())
        },
    );

    // bad answers: each contained, feed_failed raised once, sweeps go on, the verdict stays
    assert_eq!((failed(dp), recovered(dp)), (0, 0));
    let sweeps = count(dp, "SELECT count(*) FROM sweeps WHERE status = 'done'");
    let wrong_key = serde_json::json!({"key": "another key", "ipStatus": {"body": ""}, "data": {}});
    let html = serde_json::json!({"key": KEY, "ipStatus": {"body": "<!DOCTYPE html><html><head><title>Sign in to your Microsoft account</title>", "type": "text/html"}, "data": {}});
    let redirect = serde_json::json!({"key": KEY, "ipStatus": {"status": 302, "headers": {"Location": "https://login.live.com/login.srf"}}, "data": {}});
    let hang = serde_json::json!({"key": KEY, "ipStatus": {"hang": 30}, "data": {}});
    let huge = serde_json::json!({"key": KEY, "ipStatus": {"body": ""}, "data": {"*": {"huge": 2_147_483_648u64}}});
    let garbage = serde_json::json!({"key": KEY, "ipStatus": {"body": "\u{1}\u{2}garbage\u{7f} not csv at all"}, "data": {}});
    let columns = serde_json::json!({"key": KEY, "ipStatus": {"body": ""}, "data": {"*": {"body": "192.0.2.10,192.0.2.10,Yes,Blocked\r\n"}}});
    for (what, rules) in [
        ("expired key (403)", &wrong_key),
        ("a sign-in page", &html),
        ("a redirect", &redirect),
        ("a hang", &hang),
        ("a 2 GB body", &huge),
        ("garbage", &garbage),
        ("wrong columns", &columns),
    ] {
        stub.rules(rules);
        let t0 = std::time::Instant::now();
        stub.wait_reads(2);
        assert_eq!(
            failed(dp),
            1,
            "{what}: feed_failed raised once\n{}",
            d.log()
        );
        assert!(t0.elapsed() < Duration::from_secs(20), "{what}");
    }
    let reasons: Vec<String> = {
        let c = db(dp);
        let mut st = c
            .prepare("SELECT summary FROM events WHERE kind = 'feed_failed'")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(
        reasons[0].contains("the SNDS key is not accepted (HTTP 403)"),
        "{reasons:?}"
    );
    let log = d.log();
    for want in [
        "an HTML page where the CSV should be",
        "redirected",
        "timed out",
        "larger than 1048576 bytes",
        "the IP status export is not in SNDS's format",
        "the data export is not in SNDS's format: line 1: 4 columns, the data export has 13 or 14",
    ] {
        assert!(log.contains(want), "{want}\n{log}");
    }
    assert!(
        count(dp, "SELECT count(*) FROM sweeps WHERE status = 'done'") > sweeps,
        "sweeps went on"
    );
    assert_eq!(
        http_json(port, "/api/v1/status")["verdict"]["kind"],
        "refused_not_listed",
        "the stored SNDS data still counts"
    );
    // back: feed_recovered once
    stub.rules(&bad);
    wait_for("feed_recovered", Duration::from_secs(20), || {
        (recovered(dp) == 1).then_some(())
    });

    // 429 with Retry-After: failed again, and no request until it has passed
    let limited = serde_json::json!({"key": KEY, "ipStatus": {"status": 429, "headers": {"Retry-After": "6"}, "body": ""}, "data": {}});
    stub.rules(&limited);
    wait_for("feed_failed on 429", Duration::from_secs(20), || {
        (failed(dp) == 2).then_some(())
    });
    let at_429 = stub.requests().last().unwrap()["at"].as_f64().unwrap();
    stub.rules(&bad);
    wait_for(
        "feed_recovered after the wait",
        Duration::from_secs(30),
        || (recovered(dp) == 2).then_some(()),
    );
    let next = stub
        .requests()
        .iter()
        .map(|r| r["at"].as_f64().unwrap())
        .find(|t| *t > at_429)
        .unwrap();
    assert!(
        next - at_429 >= 5.0,
        "Retry-After respected: {at_429} -> {next}"
    );
    assert!(d.log().contains("rate limited (429), retry after 6s"));

    // the key is nowhere: log, database, pages, API
    let mut seen = d.log().into_bytes();
    seen.extend(db_bytes(dp));
    for p in [
        "/",
        "/target/192.0.2.10",
        "/targets",
        "/senders",
        "/events",
        "/receivers",
        "/metrics",
        "/api/v1/status",
        "/api/v1/targets/192.0.2.10",
        "/api/v1/events",
        "/api/v1/receivers",
        "/api/v1/senders",
    ] {
        let (code, body) = http_get(port, p);
        assert_eq!(code, 200, "{p}");
        seen.extend(body.into_bytes());
    }
    assert!(!contains(&seen, KEY), "the SNDS key leaked");
    assert!(
        !contains(&seen, "k3y-0a1b2c3d"),
        "the SNDS key leaked (in part)"
    );
}

/// A feed removed from the config stops counting at the reload: its stored
/// blocked range and red day are forgotten, so the verdict (judged again at
/// once) no longer says Microsoft refuses the IP, though another SNDS feed
/// still reads (the old rows used to count until a feed of that name fetched
/// again).
#[test]
fn an_snds_feed_removed_from_the_config_stops_counting_in_the_verdict_at_reload() {
    let yesterday = day_of(now() - 86_400);
    let red = serde_json::json!({
        "key": KEY,
        "ipStatus": {"body": "192.0.2.10,192.0.2.10,Yes,Blocked due to user complaints or other evidence of spamming\r\n"},
        "data": {mmddyy(&yesterday): {"body": row("192.0.2.10", "RED", "4.2%", 26, 950)}},
    });
    let stub = Stub::start(&red);
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let feed = |name: &str| {
        format!(
            "[[targets]]\ntarget = \"192.0.2.10\"\n\
[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"2s\"\nhealth = \"1h\"\n\
[[feeds]]\nname = \"{name}\"\nkind = \"snds\"\nkey = \"env:SNDS_KEY\"\nbase_url = \"https://127.0.0.1:{}/snds\"\n\
ca_file = {:?}\ninterval = \"1s\"\ntimeout = \"2s\"\ndays = 1\n\
[web]\nlisten = \"127.0.0.1:{port}\"\n",
            stub.port,
            stub.ca.display().to_string()
        )
    };
    let cfg = write_config(dir.path(), &rbl, &["bl-test"], &feed("ms-old"));
    let d = Daemon::start_with_env(&cfg, &[("SNDS_KEY", KEY)]);
    let dp = dir.path();
    stub.wait_reads(1);
    wait_for("Microsoft refuses it", Duration::from_secs(20), || {
        let v = http_json(port, "/api/v1/status");
        (v["verdict"]["kind"] == "refused_not_listed").then_some(v)
    });
    // the same account, now green, under another feed name; the old feed is gone
    stub.rules(&serde_json::json!({
        "key": KEY,
        "ipStatus": {"body": ""},
        "data": {mmddyy(&yesterday): {"body": row("192.0.2.10", "GREEN", "< 0.1%", 0, 950)}},
    }));
    write_config(dir.path(), &rbl, &["bl-test"], &feed("ms-new"));
    d.signal("HUP");
    wait_for("the reload", Duration::from_secs(10), || {
        d.log().contains("configuration reloaded").then_some(())
    });
    stub.wait_reads(2);
    assert_eq!(
        count(dp, "SELECT count(*) FROM snds_days WHERE feed = 'ms-old'")
            + count(dp, "SELECT count(*) FROM snds_status WHERE feed = 'ms-old'"),
        0
    );
    let v = wait_for(
        "the verdict without ms-old",
        Duration::from_secs(20),
        || {
            let v = http_json(port, "/api/v1/status");
            (v["verdict"]["kind"] == "all_clear").then_some(v)
        },
    );
    assert_eq!(v["verdict"]["kind"], "all_clear", "{v}");
    drop(d);
}
