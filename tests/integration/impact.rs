//! Impact and cause, with real parts (issue: "who is rejecting our mail
//! because of a listing, and why we got listed"): a real Postfix (and the
//! private Exim) relays to the aiosmtpd receiver, which answers with real
//! receivers' reply texts; rblwatch reads the real log lines that result.
//! Service-mode stories run ONE long-lived daemon each, with second-scale
//! intervals, driven only from outside (messages, zone edits in rbldnsd, an
//! attack, a setting changed).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::lab::{Exim, EximMode, Receiver, Rule};
use crate::util::{
    fixtures, free_tcp_port, rblwatch, stdout, wait_for, write_config, Daemon, HttpFixture,
    Postfix, Rbldnsd,
};
use rblwatch::catalog::Catalog;
use rblwatch::mail::delivery::{parse_exim, parse_postfix};
use rblwatch::replies::ReplyCatalog;

fn db(dir: &Path) -> Connection {
    let c = Connection::open(dir.join("rblwatch.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

/// The events' kinds, in commit order.
fn kinds(dir: &Path) -> Vec<String> {
    let c = db(dir);
    let mut st = c.prepare("SELECT kind FROM events ORDER BY id").unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Waits for the first event of `kind`; returns its details.
fn wait_event(dir: &Path, kind: &str, limit: Duration, d: &Daemon) -> serde_json::Value {
    wait_event_with(dir, kind, "", limit, d)
}

/// Waits for the first event of `kind` whose details contain `needle`.
fn wait_event_with(
    dir: &Path,
    kind: &str,
    needle: &str,
    limit: Duration,
    d: &Daemon,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let c = db(dir);
        let found: Option<String> = c
            .query_row(
                "SELECT details FROM events WHERE kind = ?1 AND instr(details, ?2) > 0 ORDER BY id LIMIT 1",
                [kind, needle],
                |r| r.get(0),
            )
            .ok();
        if let Some(d) = found {
            return serde_json::from_str(&d).unwrap();
        }
        assert!(
            start.elapsed() < limit,
            "no {kind} event within {limit:?}; events: {:?}\n{}",
            kinds(dir),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A GET on the daemon's web port: (status, body).
use crate::util::{http_get as get, http_json as get_json};

/// An rbldnsd serving the shipped Spamhaus ZEN and Backscatterer.org zones (as
/// their operators answer the RFC 5782 test points), initially listing nobody else.
fn lists_rbldnsd() -> Rbldnsd {
    let zone = "$TTL 1\n:127.0.0.2:Listed\n127.0.0.2\n".to_string();
    Rbldnsd::start_with(
        &[
            ("zen.ip4set".into(), zone.clone()),
            ("bs.ip4set".into(), zone),
        ],
        &[
            "zen.spamhaus.org:ip4set:zen.ip4set".into(),
            "ips.backscatterer.org:ip4set:bs.ip4set".into(),
        ],
    )
}

fn listing_zone(entries: &[&str]) -> String {
    let mut s = String::from("$TTL 1\n:127.0.0.2:Listed\n127.0.0.2\n");
    for e in entries {
        s.push_str(e);
        s.push('\n');
    }
    s
}

// ---------------------------------------------------------------------------------------------
// every catalog rule against a real log line

/// A reply text as the receiver sends it: its code and its lines (`550-a 550-b
/// 550 c`, or Exim's literal `\n` between lines, become three lines).
fn reply_lines(example: &str) -> (u16, Vec<String>) {
    let text = example.replace("\\n", " ");
    let code: String = match text.get(..3) {
        Some(c) if c.bytes().all(|b| b.is_ascii_digit()) => c.to_string(),
        _ => {
            // a text cut before its first code: take the first `NNN-` inside
            text.split_whitespace()
                .find_map(|w| {
                    let c = w.get(..3)?;
                    (c.bytes().all(|b| b.is_ascii_digit()) && w.get(3..4) == Some("-"))
                        .then(|| c.to_string())
                })
                .unwrap_or_else(|| "550".into())
        }
    };
    let mut lines: Vec<String> = vec![String::new()];
    for w in text.split_whitespace() {
        let marker = w == code || w.starts_with(&format!("{code}-"));
        if marker {
            if !lines.last().unwrap().is_empty() {
                lines.push(String::new());
            }
            let rest = w[3..].trim_start_matches('-');
            if !rest.is_empty() {
                lines.last_mut().unwrap().push_str(rest);
            }
            continue;
        }
        let l = lines.last_mut().unwrap();
        if !l.is_empty() {
            l.push(' ');
        }
        l.push_str(w);
    }
    lines.retain(|l| !l.is_empty());
    (code.parse().unwrap(), lines)
}

/// The rules of the shipped catalog with their first example, numbered.
fn catalog_cases() -> Vec<(usize, String, String)> {
    let replies = ReplyCatalog::shipped().unwrap();
    replies
        .rules()
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.id.clone(), r.examples[0].clone()))
        .collect()
}

/// Classifies the first log line for each case's recipient; returns the failures.
fn classify_lines(
    log: &str,
    cases: &[(usize, String, String)],
    parse: fn(&str) -> Option<rblwatch::mail::delivery::DeliveryResult>,
) -> (Vec<String>, BTreeMap<String, String>) {
    let replies = ReplyCatalog::shipped().unwrap();
    let lists = Catalog::shipped().unwrap();
    let mut failures = Vec::new();
    let mut seen = BTreeMap::new();
    for (i, id, _) in cases {
        let rcpt = format!("u@r{i}.test");
        let Some((line, r)) = log
            .lines()
            .filter(|l| l.contains(&rcpt))
            .find_map(|l| parse(l).filter(|r| r.reply.is_some()).map(|r| (l, r)))
        else {
            failures.push(format!("{id}: no delivery line with a reply for {rcpt}"));
            continue;
        };
        let got = replies
            .classify(r.reply.as_deref().unwrap(), r.relay_host.as_deref(), &lists)
            .map(|c| c.rule);
        if got.as_deref() != Some(id.as_str()) {
            failures.push(format!("{id}: classified as {got:?}: {line}"));
        }
        seen.insert(id.clone(), line.to_string());
    }
    (failures, seen)
}

/// Every rule of the receiver-reply catalog, against a real Postfix log line:
/// the receiver answers RCPT TO with the rule's first real example, Postfix
/// bounces or defers the message and logs it, and that line classifies to
/// the rule (not to an earlier one).
#[test]
fn every_reply_rule_classifies_a_real_postfix_log_line() {
    let t0 = Instant::now();
    let cases = catalog_cases();
    assert!(cases.len() >= 60, "{} rules", cases.len());
    let rules: Vec<Rule> = cases
        .iter()
        .map(|(i, _, ex)| {
            let (code, lines) = reply_lines(ex);
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            Rule::rcpt(&format!("r{i}.test"), code, &lines)
        })
        .collect();
    let rx = Receiver::start(&rules);
    // one next hop per rule, so a 421 from one never throttles the others
    let mut routes = rx.routes();
    for (i, _, _) in &cases {
        routes = routes.via(&format!("r{i}.test"), &format!("mx.r{i}.test"));
    }
    let pf = Postfix::start_relaying(&routes);
    for (i, _, _) in &cases {
        pf.submit("alice@example.test", &format!("u@r{i}.test"), "reply test");
    }
    let log = wait_for(
        "a delivery line for every rule",
        Duration::from_secs(40),
        || {
            let log = std::fs::read_to_string(pf.log()).unwrap_or_default();
            cases
                .iter()
                .all(|(i, _, _)| {
                    let rcpt = format!("to=<u@r{i}.test>");
                    log.lines().any(|l| {
                        l.contains(&rcpt)
                            && (l.contains("status=bounced") || l.contains("status=deferred"))
                    })
                })
                .then_some(log)
        },
    );
    let (failures, seen) = classify_lines(&log, &cases, parse_postfix);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    eprintln!(
        "{} rules, each classified from a real Postfix log line, in {:?}; e.g.\n{}",
        seen.len(),
        t0.elapsed(),
        seen.values().next().unwrap()
    );
}

/// The same against the private Exim's mainlog (Exim writes a multi-line
/// reply with literal `\n`).
#[test]
fn every_reply_rule_classifies_a_real_exim_log_line() {
    let t0 = Instant::now();
    let cases = catalog_cases();
    let rules: Vec<Rule> = cases
        .iter()
        .map(|(i, _, ex)| {
            let (code, lines) = reply_lines(ex);
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            Rule::rcpt(&format!("r{i}.test"), code, &lines)
        })
        .collect();
    let rx = Receiver::start(&rules);
    let mut routes = rx.routes();
    for (i, _, _) in &cases {
        routes = routes.via(&format!("r{i}.test"), &format!("mx.r{i}.test"));
    }
    let ex = Exim::start_relaying(EximMode::Strict, &routes);
    for (i, _, _) in &cases {
        assert!(crate::util::smtp_send(
            &ex.server(),
            "alice@example.test",
            &format!("u@r{i}.test"),
            "reply test"
        ));
    }
    let log = wait_for(
        "a delivery line for every rule",
        Duration::from_secs(40),
        || {
            let log = ex.mainlog();
            cases
                .iter()
                .all(|(i, _, _)| {
                    let rcpt = format!("u@r{i}.test");
                    log.lines().any(|l| {
                        (l.contains(&format!("** {rcpt}")) || l.contains(&format!("== {rcpt}")))
                            && l.contains("SMTP error from remote mail server")
                    })
                })
                .then_some(log)
        },
    );
    let (failures, seen) = classify_lines(&log, &cases, parse_exim);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    eprintln!(
        "{} rules, each classified from a real Exim log line, in {:?}",
        seen.len(),
        t0.elapsed()
    );
}

#[test]
fn reply_lines_split_like_a_receiver() {
    assert_eq!(
        reply_lines("550-5.7.1 [x] Our system 550-5.7.1 likely 550 5.7.1 blocked - gsmtp"),
        (
            550,
            vec![
                "5.7.1 [x] Our system".to_string(),
                "5.7.1 likely".into(),
                "5.7.1 blocked - gsmtp".into()
            ]
        )
    );
    assert_eq!(
        reply_lines("550-\"JunkMail rejected\\n550 see x"),
        (550, vec!["\"JunkMail rejected".to_string(), "see x".into()])
    );
    assert_eq!(
        reply_lines("Our system 421-4.7.0 suspicious"),
        (
            421,
            vec!["Our system".to_string(), "4.7.0 suspicious".into()]
        )
    );
}

// ---------------------------------------------------------------------------------------------
// the joined verdict, in service mode

/// Microsoft's S3150 reply (its own block list), with our target's address.
const S3150: &[&str] = &["5.7.1 Unfortunately, messages from [192.0.2.77] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [VE1EUR01FT080.eop-EUR01.prod.protection.outlook.com]"];

/// Exchange Online citing Spamhaus, with markup and a shell expansion in it:
/// remote text that must stay data (escaped on pages, never on a command line).
const SPAMHAUS: &[&str] = &["5.7.1 Service unavailable, Client host [192.0.2.77] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/192.0.2.77 (AS3130). [<script>alert(1)</script> $(touch /tmp/rblwatch-pwned)]"];

/// The heart of the product, as a postmaster lives it, against ONE daemon:
/// 1. Outlook refuses our mail for its own reputation data (S3150) while no
///    list lists us: `receiver_rejecting`, "no monitored list lists you";
/// 2. Outlook now cites Spamhaus: the monitor sees no listing there (yet);
/// 3. a zone edit lists us on ZEN: the listing is `impact: rejecting`
///    (critical, `listing_rejecting`), a second listing nobody cites is
///    `none seen`; pages, API and alerts show it, the reply text escaped and
///    never on a hook's command line;
/// 4. the refusals age out of the window: both conditions clear.
#[test]
fn impact_story_against_one_long_lived_daemon() {
    let t0 = Instant::now();
    let rbl = lists_rbldnsd();
    let rx = Receiver::start(&[Rule::rcpt("outlook.test", 550, S3150)]);
    let pf = Postfix::start_relaying(
        &rx.routes()
            .via("outlook.test", "lab-test.mail.protection.outlook.com"),
    );
    let slack = HttpFixture::serve(vec![("/slack", "text/plain", "ok".into())]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hook-out");
    std::fs::create_dir(&out).unwrap();
    let rec = fixtures().join("hooks/record.sh").display().to_string();
    let wport = free_tcp_port();
    let extra = format!(
        r#"[[targets]]
target = "192.0.2.77"
[[targets]]
target = "192.0.2.78"

[daemon]
database = "rblwatch.db"
sweep = "1s"
health = "1s"
confirm_listed = 1
confirm_clear = 1

[impact]
window = "15s"
threshold = 0

[alerting]
group_window = "0s"

[[sources]]
name = "mxlog"
kind = "postfix_log"
path = {log:?}
interval = "1s"

[[hooks]]
name = "rec-receiver"
on = ["receiver_rejecting"]
command = [{rec:?}, "receiver"]
cooldown = "0s"
max_per_hour = 100
env = {{ OUT = {out:?} }}

[[hooks]]
name = "rec-listing"
on = ["listing_rejecting"]
command = [{rec:?}, "listing"]
cooldown = "0s"
max_per_hour = 100
env = {{ OUT = {out:?} }}

[[alerts]]
name = "ops-slack"
kind = "slack"
url = "http://127.0.0.1:{sport}/slack"

[web]
listen = "127.0.0.1:{wport}"

# second-scale sweeps would go over Spamhaus' free budget: the test plays a paid plan
[lists.override.spamhaus-zen]
daily_limit = 100000000
"#,
        log = pf.log().display().to_string(),
        out = out.display().to_string(),
        sport = slack.port,
    );
    let cfg = write_config(dir.path(), &rbl, &["spamhaus-zen", "backscatterer"], &extra);
    let mut d = Daemon::start(&cfg);
    let t = Duration::from_secs(30);
    wait_event(dir.path(), "baseline", t, &d);
    // the log is followed from its end: wait for the first read before mail flows
    wait_for("the first read of the Postfix log", t, || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM metric_samples WHERE source = 'mxlog'",
        ) > 0)
            .then_some(())
    });

    // 1. Outlook refuses us for its own reputation data; no list lists us
    pf.submit("alice@example.test", "bob@outlook.test", "hello Outlook");
    let ev = wait_event(dir.path(), "receiver_rejecting", t, &d);
    assert_eq!(ev["receiver"], "microsoft", "{ev}");
    assert_eq!(ev["impact"]["verdict"], "own-data", "{ev}");
    assert_eq!(
        ev["impact"]["text"],
        "Microsoft (Outlook.com, Hotmail, Live, Microsoft 365) rejects mail for ip-reputation (microsoft-s3150); no monitored list lists you"
    );
    assert_eq!(ev["sender_page"], "https://sender.office.com/");
    assert_eq!(ev["replies"][0]["rule"], "microsoft-s3150");
    assert!(
        ev["replies"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("550 5.7.1 Unfortunately, messages from [192.0.2.77]"),
        "{ev}"
    );
    assert_eq!(ev["queue_ids"].as_array().unwrap().len(), 1, "{ev}");
    let v = get_json(wport, "/api/v1/status");
    assert_eq!(
        v["verdict"]["kind"], "refused_not_listed",
        "never all clear: {}",
        v["verdict"]
    );
    assert_eq!(v["impact"]["receivers"][0]["id"], "microsoft");
    let c = db(dir.path());
    assert_eq!(
        count(&c, "SELECT CAST(SUM(value) AS INTEGER) FROM metric_samples WHERE source = 'mxlog' AND metric = 'rejected_reputation'"),
        1
    );

    // 2. Outlook cites Spamhaus, on which the monitor sees no listing
    rx.set_rules(&[Rule::rcpt("outlook.test", 550, SPAMHAUS)]);
    pf.submit("alice@example.test", "carol@outlook.test", "hello again");
    let r = wait_for("Outlook to cite Spamhaus", t, || {
        let v = get_json(wport, "/api/v1/receivers");
        let r = v["receivers"][0].clone();
        (r["verdict"] == "cites-clear-list").then_some(r)
    });
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .contains("citing spamhaus-zen; the monitor sees no listing of yours there"),
        "{r}"
    );
    assert_eq!(r["lists"][0]["list"], "spamhaus-zen");

    // 3. the zone lists both targets: the cited one is `rejecting`, the other `none seen`
    rbl.write_zone(
        "zen.ip4set",
        &listing_zone(&[
            "192.0.2.77 :127.0.0.2:listed",
            "192.0.2.78 :127.0.0.2:listed",
        ]),
    );
    let ev = wait_event(dir.path(), "listing_rejecting", t, &d);
    assert_eq!(ev["impact"]["state"], "rejecting", "{ev}");
    assert_eq!(ev["impact"]["severity"], "critical");
    assert_eq!(ev["receivers"], serde_json::json!(["microsoft"]));
    let c = db(dir.path());
    let (sev, subject): (String, String) = c
        .query_row(
            "SELECT severity, subject FROM events WHERE kind = 'listing_rejecting'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(sev, "critical");
    assert!(
        subject.contains("192.0.2.77") && subject.contains("spamhaus-zen"),
        "{subject}"
    );
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM events WHERE kind = 'listing_rejecting'"
        ),
        1,
        "only the cited listing"
    );
    let v = get_json(wport, "/api/v1/status");
    let imp = |target: &str| -> serde_json::Value {
        v["listings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["target"] == target)
            .map(|l| l["impact"].clone())
            .unwrap_or_default()
    };
    assert_eq!(imp("192.0.2.77")["kind"], "rejecting", "{v}");
    assert_eq!(imp("192.0.2.77")["severity"], "critical");
    assert_eq!(imp("192.0.2.78")["kind"], "none_seen");
    assert_eq!(imp("192.0.2.78")["severity"], "warning");
    assert_eq!(v["verdict"]["kind"], "listed_rejecting", "{}", v["verdict"]);
    assert!(
        v["verdict"]["text"]
            .as_str()
            .unwrap()
            .contains("1 listing is costing mail"),
        "{}",
        v["verdict"]
    );
    let target = get_json(wport, "/api/v1/targets/192.0.2.77");
    let row = target["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["list"] == "spamhaus-zen")
        .unwrap()
        .clone();
    assert_eq!(row["impact"]["kind"], "rejecting", "{row}");
    assert_eq!(target["receivers"][0]["verdict"], "cites-listing");
    let r = get_json(wport, "/api/v1/receivers");
    assert_eq!(
        r["receivers"][0]["text"],
        "Microsoft (Outlook.com, Hotmail, Live, Microsoft 365) rejects mail citing spamhaus-zen, which lists 192.0.2.77"
    );
    let (_, m) = get(wport, "/metrics");
    assert!(
        m.contains("rblwatch_listing_rejecting{list=\"spamhaus-zen\",target=\"192.0.2.77\"} 1")
            && m.contains("rblwatch_receiver_rejecting{receiver=\"microsoft\"} 1")
            && m.contains(
                "rblwatch_receiver_refused{outcome=\"rejected\",receiver=\"microsoft\"} 2"
            ),
        "{m}"
    );
    // `status --json` beside the running daemon carries the same assessment
    let o = rblwatch(&["status", "--json", "-C", cfg.to_str().unwrap()]);
    let st: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        st["impact"]["receivers"][0]["verdict"], "cites-listing",
        "{st}"
    );
    let o = rblwatch(&["status", "-C", cfg.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("listing 192.0.2.77 on spamhaus-zen: impact rejecting"),
        "{}",
        stdout(&o)
    );
    // remote text on the pages: escaped, never markup
    for path in ["/receivers", "/", "/target/192.0.2.77"] {
        let (s, page) = get(wport, path);
        assert_eq!(s, 200, "{path}");
        assert!(
            page.contains("impact: what receivers do")
                || page.contains("Impact: what receivers do"),
            "{path}: {page}"
        );
        assert!(
            !page.contains("<script>alert(1)"),
            "{path} carries markup from a reply"
        );
    }
    let (_, page) = get(wport, "/");
    assert!(
        page.contains("rejects mail citing spamhaus-zen, which lists 192.0.2.77"),
        "the overview's impact section: {page}"
    );
    let (_, page) = get(wport, "/receivers");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("microsoft-spamhaus") && page.contains("rejecting"),
        "{page}"
    );
    // in alerts: Slack's markup is neutralised, the reply still there as text
    let body = wait_for("the listing_rejecting alert", t, || {
        slack
            .bodies()
            .into_iter()
            .find(|b| b.contains("listing_rejecting") || b.contains("impact rejecting"))
    });
    // Block Kit: the headline in `text`, each event in a section of the attachment
    let v = serde_json::from_str::<serde_json::Value>(&body).unwrap();
    let mut text = v["text"].as_str().unwrap().to_string();
    for b in v["attachments"][0]["blocks"].as_array().unwrap() {
        text.push('\n');
        text.push_str(b["text"]["text"].as_str().unwrap_or(""));
    }
    assert!(
        text.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !text.contains("<script>"),
        "{text}"
    );
    assert!(text.contains("impact: Microsoft"), "{text}");
    // hooks: the event on stdin, never on the command line or in the environment
    for name in ["receiver", "listing"] {
        let args = wait_for(&format!("the {name} hook"), t, || {
            std::fs::read_to_string(out.join(format!("{name}.args"))).ok()
        });
        assert_eq!(args, format!("{name}\n"));
        let env = std::fs::read_to_string(out.join(format!("{name}.env"))).unwrap();
        assert!(!env.contains("script") && !env.contains("$("), "{env}");
    }
    let stdin = std::fs::read_to_string(out.join("listing.stdin")).unwrap();
    let e: serde_json::Value = serde_json::from_str(&stdin).unwrap();
    assert!(
        e["details"]["replies"][0]["text"]
            .as_str()
            .unwrap()
            .contains("<script>alert(1)</script> $(touch /tmp/rblwatch-pwned)"),
        "{stdin}"
    );
    assert!(!Path::new("/tmp/rblwatch-pwned").exists());
    let env = std::fs::read_to_string(out.join("listing.env")).unwrap();
    assert!(
        env.contains("RBLWATCH_TARGET=192.0.2.77") && env.contains("RBLWATCH_LIST=spamhaus-zen"),
        "{env}"
    );
    let env = std::fs::read_to_string(out.join("receiver.env")).unwrap();
    assert!(env.contains("RBLWATCH_RECEIVER=microsoft"), "{env}");

    // 4. no more refusals: after the window both conditions clear, the listing stays
    let ev = wait_event(
        dir.path(),
        "listing_rejecting_cleared",
        Duration::from_secs(40),
        &d,
    );
    assert_eq!(ev["impact"]["state"], "none_seen", "{ev}");
    wait_event(
        dir.path(),
        "receiver_rejecting_cleared",
        Duration::from_secs(20),
        &d,
    );
    let v = get_json(wport, "/api/v1/status");
    assert_eq!(v["verdict"]["kind"], "listed_no_impact", "{}", v["verdict"]);
    assert!(v["listings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["impact"]["kind"] == "none_seen"));
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "one daemon did all of it"
    );
    eprintln!(
        "impact story in {:?}: {:?}",
        t0.elapsed(),
        kinds(dir.path())
    );
}

// ---------------------------------------------------------------------------------------------
// "you are the backscatter source", and the posture audit as a daemon job

/// The backscatter story against ONE daemon: the audit finds the settings
/// that accept unknown recipients, the probe finds the hole, an attack makes
/// the NDRs spike, then a zone edit lists the server on Backscatterer.org:
/// one `backscatter_source` event with one diagnosis (listing, spike, probe,
/// audit) and the remediation the hooks offer. The hook on that event fixes
/// Postfix; the probe, the audit and the spike clear, and so does the
/// backscatter source.
#[test]
fn backscatter_source_story_against_one_long_lived_daemon() {
    let t0 = Instant::now();
    let rbl = lists_rbldnsd();
    let pf = Postfix::start();
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let conf = pf.conf().display().to_string();
    let wport = free_tcp_port();
    let extra = format!(
        r#"[[targets]]
target = "192.0.2.88"

[daemon]
database = "rblwatch.db"
sweep = "1s"
health = "1s"
confirm_listed = 1
confirm_clear = 1

[alerting]
group_window = "0s"

[[sources]]
name = "mxlog"
kind = "postfix_log"
path = {log:?}
interval = "1s"

[[spikes]]
metric = "mxlog.ndr_generated"
kind = "ndr_spike"
above = 5
clear_after = 8

[[probes]]
domain = "example.test"
server = "{server}"
mail_from = "probe@probe.test"
interval = "1s"

[[audits]]
name = "mx"
mta = "postfix"
command = ["postconf", "-c", {conf:?}]
interval = "1s"

[[hooks]]
name = "strict-recipients"
on = ["backscatter_source"]
command = ["{root}/hooks/postfix-strict-recipients", "enable", "-c", {conf:?}]
env = {{ RBLWATCH_LOCAL_RECIPIENT_MAPS = "unix:passwd.byname $alias_maps" }}
timeout = "30s"

[web]
listen = "127.0.0.1:{wport}"

# second-scale sweeps would go over Spamhaus' free budget: the test plays a paid plan
[lists.override.spamhaus-zen]
daily_limit = 100000000
"#,
        log = pf.log().display().to_string(),
        server = pf.server(),
    );
    let cfg = write_config(dir.path(), &rbl, &["spamhaus-zen", "backscatterer"], &extra);
    let mut d = Daemon::start(&cfg);
    let t = Duration::from_secs(30);
    wait_event(dir.path(), "baseline", t, &d);
    wait_event(dir.path(), "rndr_vulnerable", t, &d);
    let f = wait_for("the audit's findings", t, || {
        let c = db(dir.path());
        let mut st = c
            .prepare(
                "SELECT json_extract(details, '$.check') FROM events WHERE kind = 'audit_finding'",
            )
            .ok()?;
        let v: Vec<String> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        (v.len() >= 2).then_some(v)
    });
    assert!(
        f.contains(&"postfix-unlisted-recipient".to_string())
            && f.contains(&"postfix-local-recipient-maps".to_string()),
        "{f:?}"
    );
    let c = db(dir.path());
    let sev: String = c
        .query_row(
            "SELECT severity FROM events WHERE kind = 'audit_finding' AND json_extract(details, '$.check') = 'postfix-unlisted-recipient'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sev, "critical", "a finding carries its own severity");
    let a = get_json(wport, "/api/v1/audit");
    assert_eq!(a["audits"][0]["name"], "mx");
    assert_eq!(a["audits"][0]["version"], "3.7.11");
    let (_, m) = get(wport, "/metrics");
    assert!(
        m.contains("rblwatch_audit_findings{audit=\"mx\",severity=\"critical\"} 2"),
        "{m}"
    );
    let (s, page) = get(wport, "/audit");
    assert!(
        s == 200 && page.contains("mail for unknown recipients is accepted"),
        "{page}"
    );
    assert!(
        page.contains("smtpd_reject_unlisted_recipient = yes"),
        "the exact fix: {page}"
    );

    // the attack: NDRs spike
    wait_for("the first read of the Postfix log", t, || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM metric_samples WHERE source = 'mxlog'",
        ) > 0)
            .then_some(())
    });
    assert_eq!(pf.attack(20), 20);
    wait_event(dir.path(), "ndr_spike", t, &d);
    assert!(
        !kinds(dir.path()).contains(&"backscatter_source".to_string()),
        "no backscatter listing yet: no backscatter_source"
    );

    // the listing on Backscatterer.org
    rbl.write_zone(
        "bs.ip4set",
        &listing_zone(&["192.0.2.88 :127.0.0.2:backscatter"]),
    );
    let ev = wait_event(dir.path(), "backscatter_source", t, &d);
    let diag = ev["diagnosis"].as_str().unwrap();
    assert!(
        diag.starts_with(
            "192.0.2.88 is listed on Backscatterer.org because this server is a backscatter source"
        ) && diag.contains("NDRs) it generates has spiked (mxlog.ndr_generated)")
            && diag.contains("accepting mail for unknown recipients")
            && diag
                .contains("mail for unknown recipients is accepted (postfix-unlisted-recipient)"),
        "{diag}"
    );
    let remedies: Vec<String> = ev["remediation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert!(
        remedies[0].starts_with("hook strict-recipients (on backscatter_source) runs: ")
            && remedies[0].contains("postfix-strict-recipients enable -c"),
        "{remedies:?}"
    );
    assert!(
        remedies.iter().any(|r| r.contains(&format!(
            "postconf -c {conf} -e 'smtpd_reject_unlisted_recipient = yes'"
        ))),
        "{remedies:?}"
    );
    assert!(
        remedies
            .last()
            .unwrap()
            .contains("https://www.backscatterer.org/?ip=192.0.2.88"),
        "{remedies:?}"
    );
    assert_eq!(ev["delist"], "https://www.backscatterer.org/?ip=192.0.2.88");
    let c = db(dir.path());
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM events WHERE kind = 'backscatter_source'"
        ),
        1,
        "one event, one diagnosis"
    );

    // the hook fixes Postfix: probe, audit and spike clear, then the backscatter source
    wait_event(dir.path(), "rndr_vulnerable_cleared", t, &d);
    let cleared = wait_for("the critical findings to clear", t, || {
        let c = db(dir.path());
        let n = count(
            &c,
            "SELECT COUNT(*) FROM events WHERE kind = 'audit_finding_cleared'",
        );
        (n >= 2).then_some(n)
    });
    assert_eq!(cleared, 2, "the info findings stay");
    let ev = wait_event(
        dir.path(),
        "backscatter_source_cleared",
        Duration::from_secs(40),
        &d,
    );
    assert_eq!(
        ev["listings"],
        serde_json::json!(["backscatterer"]),
        "the listing stays until it expires: {ev}"
    );
    let k = kinds(dir.path());
    let pos = |x: &str| k.iter().position(|y| y == x).unwrap();
    assert!(
        pos("backscatter_source") < pos("rndr_vulnerable_cleared"),
        "{k:?}"
    );
    assert!(
        pos("ndr_spike_cleared") < pos("backscatter_source_cleared"),
        "{k:?}"
    );
    let a = get_json(wport, "/api/v1/audit");
    assert!(
        a["audits"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] != "critical"),
        "{a}"
    );
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "one daemon did all of it"
    );
    eprintln!("backscatter story in {:?}: {k:?}", t0.elapsed());
}

/// The Exim side against ONE daemon: the `exim_log` source follows the private
/// Exim's mainlog (Gmail refusing us, a bounce to a forged sender), the audit
/// job reads `exim -bP` and finds the RCPT ACL that does not verify
/// recipients; switching Exim to strict clears the finding.
#[test]
fn exim_log_and_audit_against_one_long_lived_daemon() {
    let t0 = Instant::now();
    let rx = Receiver::start(&[Rule::rcpt(
        "gmail.test",
        550,
        &[
            "5.7.1 [192.0.2.5      12] Our system has detected that this message is",
            "5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,",
            "5.7.1 this message has been blocked. For more information, go to",
            "5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError - gsmtp",
        ],
    )]);
    let mut ex = Exim::start_relaying(
        EximMode::Vulnerable,
        &rx.routes().via("gmail.test", "gmail-smtp-in.l.google.test"),
    );
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[daemon]
database = "rblwatch.db"

# no targets and a resolver on loopback: nothing is asked of the outside world
[resolver]
nameservers = ["127.0.0.1:9"]

[web]
enabled = false

[impact]
threshold = 0

[[sources]]
name = "eximlog"
kind = "exim_log"
path = {log:?}
interval = "1s"

[[audits]]
name = "exim"
mta = "exim"
command = [{bin:?}, "-C", {conf:?}]
interval = "1s"
"#,
        log = ex.mainlog_path().display().to_string(),
        bin = Exim::binary().display().to_string(),
        conf = ex.config().display().to_string(),
    );
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut d = Daemon::start(&cfg);
    let t = Duration::from_secs(30);
    let ev = wait_event_with(dir.path(), "audit_finding", "exim-rcpt-verify", t, &d);
    assert_eq!(ev["check"], "exim-rcpt-verify", "{ev}");
    assert!(
        ev["fix"]
            .as_str()
            .unwrap()
            .contains("require verify = recipient"),
        "{ev}"
    );
    wait_for("the first read of the mainlog", t, || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM metric_samples WHERE source = 'eximlog'",
        ) > 0)
            .then_some(())
    });
    // Gmail refuses us; a forged sender gets a bounce
    assert!(crate::util::smtp_send(
        &ex.server(),
        "alice@example.test",
        "bob@gmail.test",
        "hi"
    ));
    assert!(crate::util::smtp_send(
        &ex.server(),
        "victim@victim.test",
        "nouser@example.test",
        "x"
    ));
    let ev = wait_event(dir.path(), "receiver_rejecting", t, &d);
    assert_eq!(ev["receiver"], "google", "{ev}");
    assert_eq!(
        ev["replies"][0]["rule"], "google-likely-unsolicited",
        "{ev}"
    );
    assert!(
        ev["replies"][0]["queue_ids"][0]
            .as_str()
            .unwrap()
            .contains('-'),
        "an Exim id: {ev}"
    );
    wait_for("the bounce counted", t, || {
        (count(
            &db(dir.path()),
            "SELECT CAST(SUM(value) AS INTEGER) FROM metric_samples WHERE source = 'eximlog' AND metric = 'ndr_generated'",
        ) >= 1)
            .then_some(())
    });
    let c = db(dir.path());
    assert!(
        count(&c, "SELECT CAST(SUM(value) AS INTEGER) FROM metric_samples WHERE source = 'eximlog' AND metric = 'rejected_content'") >= 1,
        "Gmail's 'likely unsolicited' is about the content"
    );
    // the fix clears the finding
    ex.set_mode(EximMode::Strict);
    let ev = wait_event_with(
        dir.path(),
        "audit_finding_cleared",
        "exim-rcpt-verify",
        t,
        &d,
    );
    assert_eq!(ev["check"], "exim-rcpt-verify", "{ev}");
    assert_eq!(
        count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM events WHERE kind = 'audit_finding_cleared'"
        ),
        1,
        "only the fixed finding clears"
    );
    assert!(d.child.try_wait().unwrap().is_none(), "still running");
    eprintln!("Exim story in {:?}: {:?}", t0.elapsed(), kinds(dir.path()));
}

// ---------------------------------------------------------------------------------------------
// `rblwatch audit`

fn audit_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut a = vec!["audit", "--json"];
    a.extend_from_slice(args);
    let o = rblwatch(&a);
    let v = serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    (o.status.code().unwrap_or(-1), v)
}

fn checks(v: &serde_json::Value) -> Vec<(String, String)> {
    v[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `rblwatch audit` against a vulnerable and a hardened Postfix and Exim.
#[test]
fn audit_command_against_vulnerable_and_hardened_postfix_and_exim() {
    let pf = Postfix::start();
    let conf = pf.conf().display().to_string();
    let (code, v) = audit_json(&["--mta", "postfix", "--", "postconf", "-c", &conf]);
    assert_eq!(code, 1, "{v}");
    let c = checks(&v);
    for want in ["postfix-unlisted-recipient", "postfix-local-recipient-maps"] {
        assert!(c.contains(&(want.into(), "critical".into())), "{c:?}");
    }
    assert_eq!(v[0]["version"], "3.7.11");
    let f = &v[0]["findings"][0];
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("postconf -c {conf} -e")),
        "{f}"
    );
    pf.strict();
    let (code, v) = audit_json(&["--mta", "postfix", "--", "postconf", "-c", &conf]);
    assert_eq!(code, 0, "hardened: only info findings remain: {v}");
    assert!(checks(&v).iter().all(|(_, s)| s == "info"), "{v}");
    // plain text names the fix
    let o = rblwatch(&["audit", "--mta", "postfix", "--", "postconf", "-c", &conf]);
    assert!(stdout(&o).contains("0 critical"), "{}", stdout(&o));

    let mut ex = Exim::start(EximMode::Vulnerable);
    let bin = Exim::binary().display().to_string();
    let econf = ex.config().display().to_string();
    let (code, v) = audit_json(&["--mta", "exim", "--", &bin, "-C", &econf]);
    assert_eq!(code, 1, "{v}");
    assert!(
        checks(&v).contains(&("exim-rcpt-verify".into(), "critical".into())),
        "{v}"
    );
    assert_eq!(v[0]["version"], "4.96");
    let o = rblwatch(&["audit", "--mta", "exim", "--", &bin, "-C", &econf]);
    assert!(
        stdout(&o).contains("CRITICAL exim-rcpt-verify")
            && stdout(&o).contains("fix:  in the ACL acl_rcpt, add `require verify = recipient`"),
        "{}",
        stdout(&o)
    );
    ex.set_mode(EximMode::Strict);
    let (code, v) = audit_json(&["--mta", "exim", "--", &bin, "-C", &econf]);
    assert_eq!(code, 0, "{v}");
    assert!(
        !checks(&v).iter().any(|(c, _)| c == "exim-rcpt-verify"),
        "{v}"
    );

    // configured audits by name; an audit that cannot read is exit 3
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[audits]]\nname = \"out\"\nmta = \"postfix\"\ncommand = [\"postconf\", \"-c\", {conf:?}]\n\n[[audits]]\nname = \"broken\"\nmta = \"postfix\"\ncommand = [\"postconf\", \"-c\", \"/nonexistent\"]\n"
        ),
    )
    .unwrap();
    let (code, v) = audit_json(&["-C", cfg.to_str().unwrap(), "--name", "out"]);
    assert_eq!((code, v[0]["name"].as_str()), (0, Some("out")), "{v}");
    let (code, v) = audit_json(&["-C", cfg.to_str().unwrap()]);
    assert_eq!(code, 3, "{v}");
    assert!(
        v[1]["error"].as_str().unwrap().contains("/nonexistent"),
        "{v}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_rblwatch"))
        .args(["audit", "-C", cfg.to_str().unwrap(), "--name", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
