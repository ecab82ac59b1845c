//! Impact and cause, with real parts (issue: "who is rejecting our mail
//! because of a listing, and why we got listed"): a real Postfix (and the
//! private Exim) relays to the aiosmtpd receiver, which answers with real
//! receivers' reply texts; rblwatch reads the real log lines that result.
//! Service-mode stories run ONE long-lived daemon each, with second-scale
//! intervals, driven only from outside (messages, zone edits in rbldnsd, an
//! attack, a setting changed).

use std::collections::BTreeMap;
use std::io::{Read, Write};
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
    let start = Instant::now();
    loop {
        let c = db(dir);
        let found: Option<String> = c
            .query_row(
                "SELECT details FROM events WHERE kind = ?1 ORDER BY id LIMIT 1",
                [kind],
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
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn get_json(port: u16, path: &str) -> serde_json::Value {
    let (s, b) = get(port, path);
    assert_eq!(s, 200, "{path}: {b}");
    serde_json::from_str(&b).unwrap()
}

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
