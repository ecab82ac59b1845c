//! The outbound ledger against a real private Postfix with SMTP AUTH (Cyrus sasldb): a leaked account is
//! seen by one long-lived daemon, held by `hooks/postfix-hold-account`, and released exactly (issue 23).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rusqlite::Connection;

use crate::util::{fixtures, free_tcp_port, wait_for, Daemon, Postfix};

/// An authenticated SMTP session on one connection.
struct Session {
    r: BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

impl Session {
    fn open(server: &str, login: &str, password: &str) -> Session {
        let s = std::net::TcpStream::connect(server).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut me = Session {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        assert_eq!(me.reply().0, 220);
        assert_eq!(me.cmd("EHLO client.test").0, 250);
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{login}\0{password}"));
        let (code, text) = me.cmd(&format!("AUTH PLAIN {token}"));
        assert_eq!(code, 235, "{text}");
        me
    }

    fn reply(&mut self) -> (u16, String) {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if self.r.read_line(&mut l).unwrap_or(0) == 0 {
                return (0, all);
            }
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') {
                return (l.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0), all);
            }
        }
    }

    fn cmd(&mut self, c: &str) -> (u16, String) {
        self.w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
        self.reply()
    }

    /// Sends one message; the RCPT reply of the first refused recipient, or 250 after DATA.
    fn send(&mut self, from: &str, to: &[String], headers: &str) -> (u16, String) {
        let (c, t) = self.cmd(&format!("MAIL FROM:<{from}>"));
        if c != 250 {
            return (c, t);
        }
        for r in to {
            let (c, t) = self.cmd(&format!("RCPT TO:<{r}>"));
            if c / 100 != 2 {
                self.cmd("RSET");
                return (c, t);
            }
        }
        assert_eq!(self.cmd("DATA").0, 354);
        self.cmd(&format!(
            "{headers}Subject: hello\r\nFrom: <{from}>\r\n\r\nhello\r\n."
        ))
    }
}

fn start_sasl_postfix() -> Postfix {
    let pf = Postfix::start();
    let ok = Command::new(fixtures().join("postfix-instance.sh"))
        .args([
            "sasl",
            pf.dir.path().to_str().unwrap(),
            "alice:alice-pw",
            "bob:bob-pw",
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "sasl setup (needs sasl2-bin: scripts/test installs it)");
    std::thread::sleep(Duration::from_millis(1200));
    pf
}

fn hook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/postfix-hold-account")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|_| "<absent>".into())
}

/// `(queue_name, sender)` of every queued message.
fn queue(pf: &Postfix) -> Vec<(String, String)> {
    pf.queue_json()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["queue_name"].as_str().unwrap_or("").to_string(),
                v["sender"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Issue 23, point 5: one long-lived daemon follows the log of a Postfix with SASL; alice's password
/// leaks and 500 messages to many recipients go out within a minute → account_burst within seconds →
/// postfix-hold-account: her next submission is refused (4xx) and her queue is on hold, bob's mail still
/// goes; when the burst clears, the revert restores main.cf exactly and leaves her mail on hold.
#[test]
fn a_leaked_account_is_seen_held_and_released_exactly_by_one_daemon() {
    let pf = start_sasl_postfix();
    let conf = pf.conf();
    let main_cf_before = read(&conf.join("main.cf"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rblwatch.toml");
    let wport = free_tcp_port();
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
database = "rblwatch.db"

[web]
listen = "127.0.0.1:{web}"

[[sources]]
name = "mxlog"
kind = "postfix_log"
path = {log:?}
interval = "1s"

[senders]
window = "30s"
account_messages = 200
account_recipients = 150
automated_messages = 1000
clear_after = 2

[[hooks]]
name = "hold-account"
on = ["account_burst"]
command = [{hook:?}, "hold", "-c", {conf:?}]
revert = [{hook:?}, "release", "-c", {conf:?}]
cooldown = "0s"
timeout = "90s"
"#,
            web = wport,
            log = pf.log().display().to_string(),
            hook = hook().display().to_string(),
            conf = conf.display().to_string(),
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&cfg);
    daemon.wait_log("mail source read", Duration::from_secs(20));
    let db = dir.path().join("rblwatch.db");

    // bob's ordinary mail
    let mut bob = Session::open(&pf.server(), "bob@example.test", "bob-pw");
    for i in 0..3 {
        let (c, t) = bob.send(
            "bob@example.test",
            &[format!("friend{i}@external.test")],
            "",
        );
        assert_eq!(c, 250, "{t}");
    }
    // the leak: 500 messages, 2 recipients each, 1,000 distinct recipients
    let started = Instant::now();
    let mut alice = Session::open(&pf.server(), "alice@example.test", "alice-pw");
    let mut sent = 0;
    for i in 0..500 {
        let to = [
            format!("victim{i}@external{}.test", i % 7),
            format!("other{i}@external{}.test", i % 5),
        ];
        if alice.send("alice@example.test", &to, "").0 == 250 {
            sent += 1;
        } else {
            break; // held while sending
        }
    }
    assert!(sent >= 200, "only {sent} accepted before the hold");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the flood took {:?}",
        started.elapsed()
    );
    let c = Connection::open(&db).unwrap();
    let burst_at: i64 = wait_for("account_burst", Duration::from_secs(30), || {
        c.query_row(
            "SELECT at FROM events WHERE kind = 'account_burst'",
            [],
            |r| r.get(0),
        )
        .ok()
    });
    let (subject, details): (String, String) = c
        .query_row(
            "SELECT subject, details FROM events WHERE kind = 'account_burst'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        subject.contains("alice@example.test") && subject.contains("sasl"),
        "{subject}"
    );
    assert!(details.contains("\"messages\""), "{details}");
    // shown where postmasters look: the page, the API, the metrics and the headline verdict
    // (`/accounts`: `/senders` is the DMARC page of the IPs that send)
    let api = crate::util::http_json(wport, "/api/v1/accounts");
    let acct = &api["sources"][0]["accounts"][0];
    assert_eq!(acct["account"], "alice@example.test", "{api}");
    assert_eq!(acct["bursting"], true, "{api}");
    let (code, page) = crate::util::http_get(wport, "/accounts");
    assert!(
        code == 200 && page.contains("alice@example.test") && page.contains("postsuper -H"),
        "{page}"
    );
    let (_, dmarc) = crate::util::http_get(wport, "/senders");
    assert!(
        !dmarc.contains("alice@example.test"),
        "the DMARC page is not the ledger's"
    );
    let (_, m) = crate::util::http_get(wport, "/metrics");
    assert!(
        m.contains("rblwatch_sender_account_messages{account=\"alice@example.test\",origin=\"sasl\",source=\"mxlog\"}"),
        "{m}"
    );
    assert!(
        m.contains("rblwatch_sender_messages_total{class=\"user\",source=\"mxlog\"}"),
        "{m}"
    );
    assert!(
        !m.contains("account=\"bob@example.test\""),
        "only bursting accounts have a series"
    );
    // the new families keep the naming rules promtool's linter checks
    crate::web::promtool_check_metrics(&m);
    // one verdict, from the status model: the API, the page, /metrics and `rblwatch status`
    let status = crate::util::http_json(wport, "/api/v1/status");
    assert!(
        status["verdict"]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("alice@example.test"),
        "{}",
        status["verdict"]
    );
    assert_eq!(
        status["verdict"]["todo"][0]["href"], "/accounts",
        "{}",
        status["verdict"]
    );
    let kind = status["verdict"]["kind"].as_str().unwrap().to_string();
    let (_, overview) = crate::util::http_get(wport, "/");
    assert!(overview.contains("alice@example.test"), "{overview}");
    assert!(
        m.contains(&format!("rblwatch_verdict{{kind=\"{kind}\"}} 1")),
        "{kind}: {m}"
    );
    let o = crate::util::rblwatch(&["status", "--json", "-C", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", crate::util::stderr(&o));
    let cli: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cli["verdict"]["kind"], kind.as_str(), "{cli}");
    assert!(
        cli["verdict"]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("alice@example.test"),
        "{}",
        cli["verdict"]
    );
    let seen_after = burst_at - started_at_unix(started);
    assert!(
        seen_after <= 30,
        "burst seen {seen_after}s after the flood started"
    );
    eprintln!(
        "{sent} messages accepted in {:?}; account_burst {seen_after}s after the flood started",
        started.elapsed()
    );
    // the hook ran and held her
    wait_for("the hold hook to finish", Duration::from_secs(120), || {
        c.query_row(
            "SELECT status FROM hook_runs WHERE hook = 'hold-account' AND action = 'run'",
            [],
            |r| r.get::<_, String>(0),
        )
        .ok()
        .filter(|s| s != "running")
    });
    let (status, out): (String, String) = c
        .query_row(
            "SELECT status, stdout || stderr FROM hook_runs WHERE hook = 'hold-account' AND action = 'run'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "ok", "{out}");
    std::thread::sleep(Duration::from_millis(1500)); // reload settles
    drop(alice);
    let mut alice = Session::open(&pf.server(), "alice@example.test", "alice-pw");
    let (code, text) = alice.send("alice@example.test", &["one-more@external.test".into()], "");
    assert_eq!(code, 450, "{text}");
    let mut bob = Session::open(&pf.server(), "bob@example.test", "bob-pw");
    let (code, text) = bob.send("bob@example.test", &["friend9@external.test".into()], "");
    assert_eq!(code, 250, "bob still sends: {text}");
    pf.settle();
    let q = queue(&pf);
    let alice_q: Vec<_> = q
        .iter()
        .filter(|(_, s)| s == "alice@example.test")
        .collect();
    assert!(alice_q.len() >= 200);
    assert!(
        alice_q.iter().all(|(n, _)| n == "hold"),
        "alice's queue on hold"
    );
    assert!(q
        .iter()
        .filter(|(_, s)| s == "bob@example.test")
        .all(|(n, _)| n != "hold"));
    assert!(read(&conf.join("main.cf")).contains("check_sasl_access"));

    // calm: the burst clears, the revert lifts the block and restores main.cf exactly
    wait_for(
        "account_burst_cleared and its revert",
        Duration::from_secs(90),
        || {
            c.query_row(
                "SELECT status FROM hook_runs WHERE hook = 'hold-account' AND action = 'revert'",
                [],
                |r| r.get::<_, String>(0),
            )
            .ok()
            .filter(|s| s != "running")
        },
    );
    assert_eq!(read(&conf.join("main.cf")), main_cf_before);
    assert_eq!(read(&conf.join("rblwatch-sasl-hold")), "<absent>");
    let q = queue(&pf);
    assert!(
        q.iter()
            .filter(|(_, s)| s == "alice@example.test")
            .all(|(n, _)| n == "hold"),
        "held mail is never released by the revert"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let mut alice = Session::open(&pf.server(), "alice@example.test", "alice-pw");
    let (code, text) = alice.send("alice@example.test", &["back@external.test".into()], "");
    assert_eq!(code, 250, "{text}");
    drop(daemon);
}

fn started_at_unix(i: Instant) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now - i.elapsed().as_secs() as i64
}

/// Account names are attacker-influenced: a name with a space, a newline, REJECT/OK or map syntax is
/// refused and changes nothing; a name that is another entry's prefix touches only its own entry.
#[test]
fn hostile_account_names_never_create_or_change_another_entry() {
    let pf = start_sasl_postfix();
    let conf = pf.conf();
    let main_cf = read(&conf.join("main.cf"));
    let run = |action: &str, account: &str| {
        Command::new(hook())
            .args([action, "-c", conf.to_str().unwrap()])
            .env("RBLWATCH_ACCOUNT", account)
            .env("RBLWATCH_ORIGIN", "sasl")
            .output()
            .unwrap()
    };
    for bad in [
        "bob@example.test REJECT",
        "bob@example.test\nalice@example.test OK",
        "alice@example.test 550 go away",
        "/.*/",
        "-c",
        "$(touch /tmp/pwned-by-rblwatch)",
        "",
        "bob@example.test;id",
    ] {
        let o = run("hold", bad);
        assert_eq!(
            o.status.code(),
            Some(3),
            "{bad:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            read(&conf.join("main.cf")),
            main_cf,
            "{bad:?} changed main.cf"
        );
        assert_eq!(read(&conf.join("rblwatch-sasl-hold")), "<absent>");
    }
    assert!(!Path::new("/tmp/pwned-by-rblwatch").exists());
    // two real holds, then releasing one keeps the other's entry byte for byte
    assert!(run("hold", "bob@example.test").status.success());
    let only_bob = read(&conf.join("rblwatch-sasl-hold"));
    assert!(run("hold", "b@example.test").status.success());
    assert!(run("release", "b@example.test").status.success());
    assert_eq!(read(&conf.join("rblwatch-sasl-hold")), only_bob);
    // a hold of a relay client's address is not a SASL login: nothing happens
    let o = Command::new(hook())
        .args(["hold", "-c", conf.to_str().unwrap()])
        .env("RBLWATCH_ACCOUNT", "10.0.0.5")
        .env("RBLWATCH_ORIGIN", "relay")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(read(&conf.join("rblwatch-sasl-hold")), only_bob);
    assert!(run("release", "bob@example.test").status.success());
    assert_eq!(read(&conf.join("main.cf")), main_cf);
    assert_eq!(read(&conf.join("rblwatch-sasl-hold")), "<absent>");
}

/// `rblwatch audit` says when the header-logging snippet is missing, and stops saying it once it is
/// installed as the finding's fix says; the snippet then makes a real Postfix log the headers the ledger reads.
#[test]
fn audit_names_the_missing_header_snippet_and_the_snippet_logs_headers() {
    let pf = start_sasl_postfix();
    let conf = pf.conf();
    let audit = || {
        let o = crate::util::rblwatch(&[
            "audit",
            "--json",
            "--mta",
            "postfix",
            "--",
            "postconf",
            "-c",
            conf.to_str().unwrap(),
        ]);
        let v: serde_json::Value = serde_json::from_str(&crate::util::stdout(&o)).unwrap();
        v[0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "postfix-header-log")
            .cloned()
    };
    let f = audit().expect("the missing snippet is a finding");
    assert_eq!(f["severity"], "info");
    let table = conf.join("rblwatch-header-log.regexp");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/postfix-header-log.regexp"),
        &table,
    )
    .unwrap();
    let ok = Command::new("postconf")
        .args([
            "-c",
            conf.to_str().unwrap(),
            "-e",
            &format!("header_checks = regexp:{}", table.display()),
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    Command::new("postfix")
        .args(["-c", conf.to_str().unwrap(), "reload"])
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert!(audit().is_none());
    let mut s = Session::open(&pf.server(), "alice@example.test", "alice-pw");
    let (c, t) = s.send(
        "alice@example.test",
        &["rua@reports.test".into()],
        "Auto-Submitted: auto-generated\r\nTLS-Report-Domain: example.test\r\n",
    );
    assert_eq!(c, 250, "{t}");
    // the header warnings (cleanup) and the message queued (qmgr, a moment later)
    let log = wait_for("the header warnings", Duration::from_secs(10), || {
        let l = std::fs::read_to_string(pf.log()).unwrap_or_default();
        (l.contains("warning: header TLS-Report-Domain")
            && l.contains("from=<alice@example.test>, size="))
        .then_some(l)
    });
    // the ledger reads these real lines: a report from a SASL login
    let conf_l = rblwatch::mail::ledger::LedgerConf::shipped().unwrap();
    let mut l = rblwatch::mail::ledger::Ledger::new(rblwatch::mail::ledger::LogMta::Postfix);
    let mut facts = Vec::new();
    l.feed(&conf_l, &log, &mut |f| facts.push(f));
    assert!(
        facts.iter().any(|f| matches!(f, rblwatch::mail::ledger::Fact::Queued { origin: rblwatch::mail::ledger::Origin::Sasl, class: rblwatch::mail::ledger::Class::Report, account, .. } if account == "alice@example.test")),
        "{facts:?}\n{log}"
    );
}

fn sendmail(pf: &Postfix, from: &str, to: &str, headers: &str) {
    use std::process::Stdio;
    let mut c = Command::new("/usr/sbin/sendmail")
        .arg("-C")
        .arg(pf.conf())
        .args(["-f", from, to])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    write!(
        c.stdin.take().unwrap(),
        "From: <{from}>\nTo: <{to}>\n{headers}\nreport\n"
    )
    .unwrap();
    assert!(c.wait().unwrap().success());
}

/// Issue 23, point 5, second half, on one long-lived daemon: a bounce flood raises automated_burst
/// (bounce) and `postfix-isolate-automated` sends null-sender mail from 127.0.0.2 (the receiving MX sees
/// that client address) while user mail keeps 127.0.0.1; a report storm to one destination raises
/// automated_burst (report) naming it; when the bounces stop, the revert restores main.cf and master.cf
/// byte for byte and bounces leave from the main address again.
#[test]
fn a_bounce_flood_is_isolated_on_its_own_address_and_a_report_storm_is_named() {
    use crate::lab::Receiver;
    let rx = Receiver::start(&[]);
    let pf = Postfix::start_relaying(&rx.routes());
    let conf = pf.conf();
    let table = conf.join("rblwatch-header-log.regexp");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/postfix-header-log.regexp"),
        &table,
    )
    .unwrap();
    Command::new("postconf")
        .args([
            "-c",
            conf.to_str().unwrap(),
            "-e",
            &format!("header_checks = regexp:{}", table.display()),
        ])
        .status()
        .unwrap();
    Command::new("postfix")
        .args(["-c", conf.to_str().unwrap(), "reload"])
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let (main_cf, master_cf) = (read(&conf.join("main.cf")), read(&conf.join("master.cf")));
    let isolate = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/postfix-isolate-automated");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
database = "rblwatch.db"

[web]
listen = "127.0.0.1:{web}"

[[sources]]
name = "mxlog"
kind = "postfix_log"
path = {log:?}
interval = "1s"

[senders]
window = "15s"
account_messages = 10000
account_recipients = 10000
automated_messages = 30
clear_after = 2

[[hooks]]
name = "isolate"
on = ["automated_burst"]
command = [{hook:?}, "on", "--bind", "127.0.0.2", "-c", {conf:?}]
revert = [{hook:?}, "off", "-c", {conf:?}]
cooldown = "0s"
"#,
            web = free_tcp_port(),
            log = pf.log().display().to_string(),
            hook = isolate.display().to_string(),
            conf = conf.display().to_string(),
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&cfg);
    daemon.wait_log("mail source read", Duration::from_secs(20));
    let c = Connection::open(dir.path().join("rblwatch.db")).unwrap();
    let peers = |sender_null: bool| -> Vec<String> {
        rx.messages()
            .iter()
            .filter(|m| (m["sender"].as_str().unwrap_or("x").is_empty()) == sender_null)
            .map(|m| m["peer"].as_str().unwrap_or("").to_string())
            .collect()
    };
    // the flood: 40 forged-sender messages to unknown users, 40 bounces to victim.test
    assert_eq!(pf.attack(40), 40);
    let ev: String = wait_for("automated_burst (bounce)", Duration::from_secs(30), || {
        c.query_row(
            "SELECT summary FROM events WHERE kind = 'automated_burst' AND json_extract(subject, '$.class') = 'bounce'",
            [],
            |r| r.get(0),
        )
        .ok()
    });
    assert!(ev.contains("victim.test"), "top destination named: {ev}");
    wait_for("the isolate hook", Duration::from_secs(30), || {
        c.query_row(
            "SELECT status FROM hook_runs WHERE hook = 'isolate' AND action = 'run' AND status = 'ok'",
            [],
            |r| r.get::<_, String>(0),
        )
        .ok()
    });
    std::thread::sleep(Duration::from_millis(1500));
    let before = peers(true).len();
    assert_eq!(pf.attack(10), 10);
    pf.submit("alice@example.test", "friend@remote.test", "user mail");
    let msgs = wait_for(
        "the bounces and the user mail at the receiver",
        Duration::from_secs(30),
        || {
            let m = rx.messages();
            (m.len() >= before + 11).then_some(m)
        },
    );
    let null_after: Vec<&serde_json::Value> = msgs
        .iter()
        .filter(|m| m["sender"] == "")
        .skip(before)
        .collect();
    assert!(null_after.len() >= 10);
    assert!(
        null_after.iter().all(|m| m["peer"] == "127.0.0.2"),
        "bounces leave from the isolated address: {null_after:?}"
    );
    assert!(
        peers(false).iter().all(|p| p == "127.0.0.1"),
        "user mail keeps the main address"
    );
    // a report storm to one destination
    for i in 0..40 {
        sendmail(
            &pf,
            "noreply-dmarc@example.test",
            "rua@reports.test",
            &format!("Subject: Report Domain: example.test Submitter: mx.example.test Report-ID: <{i}>\n"),
        );
    }
    let ev: String = wait_for("automated_burst (report)", Duration::from_secs(30), || {
        c.query_row(
            "SELECT summary FROM events WHERE kind = 'automated_burst' AND json_extract(subject, '$.class') = 'report'",
            [],
            |r| r.get(0),
        )
        .ok()
    });
    assert!(ev.contains("reports.test"), "{ev}");
    // calm: both bursts clear (the revert waits for the last) and it restores exactly
    wait_for("the isolate revert", Duration::from_secs(90), || {
        c.query_row(
            "SELECT status FROM hook_runs WHERE hook = 'isolate' AND action = 'revert' AND status = 'ok'",
            [],
            |r| r.get::<_, String>(0),
        )
        .ok()
    });
    assert_eq!(read(&conf.join("main.cf")), main_cf);
    assert_eq!(read(&conf.join("master.cf")), master_cf);
    std::thread::sleep(Duration::from_millis(1500));
    let n = rx.messages().len();
    assert_eq!(pf.attack(1), 1);
    let m = rx.wait_messages(n + 1, Duration::from_secs(30));
    assert_eq!(
        m.last().unwrap()["peer"],
        "127.0.0.1",
        "after the revert bounces use the main address"
    );
    drop(daemon);
}

/// exim-hold-account against the stand-in `exim` (Exim and Postfix cannot share the test machine): the
/// login's queued messages are frozen (found by -auth_id), others untouched, hostile names change nothing,
/// and release removes only its entry and thaws nothing.
#[test]
fn exim_hold_account_freezes_only_that_login_and_release_thaws_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let queue = " 0m   473 1xVKMW-0004C7-0f <alice@example.test>\n          a@example.org\n\n 1m   473 1xVKMX-0004C7-0f <alice@example.test>\n          b@example.org\n\n 2m   473 1xVKMY-0004C7-0f <bob@example.test>\n          c@example.org\n";
    std::fs::write(d.join("queue"), queue).unwrap();
    std::fs::create_dir(d.join("auth")).unwrap();
    for (id, who) in [
        ("1xVKMW-0004C7-0f", "alice"),
        ("1xVKMX-0004C7-0f", "alice"),
        ("1xVKMY-0004C7-0f", "bob"),
    ] {
        std::fs::write(d.join("auth").join(id), who).unwrap();
    }
    let list = d.join("held");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/exim-hold-account");
    let run = |action: &str, account: &str| {
        Command::new(&script)
            .args([action, "--list", list.to_str().unwrap()])
            .env("EXIM", fixtures().join("fake-exim"))
            .env("FAKE_EXIM_DIR", d)
            .env("RBLWATCH_ACCOUNT", account)
            .env("RBLWATCH_ORIGIN", "sasl")
            .output()
            .unwrap()
    };
    for bad in ["alice\nbob", "alice bob", "*", "bob;rm -rf /", "$(id)"] {
        assert_eq!(run("hold", bad).status.code(), Some(3), "{bad:?}");
        assert!(!list.exists());
    }
    let o = run("hold", "alice");
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 queued messages frozen"));
    let q = std::fs::read_to_string(d.join("queue")).unwrap();
    assert_eq!(q.matches("*** frozen ***").count(), 2, "{q}");
    assert!(!q.contains("<bob@example.test> *** frozen"));
    assert_eq!(read(&list), "alice\n");
    assert!(run("hold", "bob").status.success());
    assert!(run("release", "alice").status.success());
    assert_eq!(read(&list), "bob\n");
    assert!(run("release", "bob").status.success());
    assert!(!list.exists());
    let q = std::fs::read_to_string(d.join("queue")).unwrap();
    assert_eq!(
        q.matches("*** frozen ***").count(),
        3,
        "release thaws nothing: {q}"
    );
}

/// A read whose transaction fails to commit (the database locked or full; here the
/// `mail-read-commit` fault point of `RBLWATCH_FAULT`) is read again, and the ledger's
/// messages in flight are those of the last committed read: a message still queued when
/// the failed read ended is counted on the re-read (it was lost: the failed read had
/// already taken its `from=`), and one that left the queue in it is counted once.
#[test]
fn a_failed_commit_then_a_reread_counts_each_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("maillog");
    std::fs::write(&log, "").unwrap();
    let cfg = dir.path().join("rblwatch.toml");
    let wport = free_tcp_port();
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
database = "rblwatch.db"

[web]
listen = "127.0.0.1:{wport}"

[[sources]]
name = "mxlog"
kind = "postfix_log"
path = {log:?}
interval = "1s"

[senders]
window = "10m"
"#,
            log = log.display().to_string(),
        ),
    )
    .unwrap();
    let daemon = Daemon::start_with_env(&cfg, &[("RBLWATCH_FAULT", "mail-read-commit")]);
    daemon.wait_log("mail source read", Duration::from_secs(20));
    // one message delivered and gone, one still queued (deferred), both alice's
    let lines = "\
Dec  6 01:00:00 mx postfix/smtpd[101]: 4A1B2C3D4E: client=unknown[127.0.0.1], sasl_method=PLAIN, sasl_username=alice@example.test
Dec  6 01:00:00 mx postfix/qmgr[103]: 4A1B2C3D4E: from=<alice@example.test>, size=420, nrcpt=1 (queue active)
Dec  6 01:00:01 mx postfix/smtp[104]: 4A1B2C3D4E: to=<carol@other.test>, relay=mx.other.test[198.51.100.7]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 77)
Dec  6 01:00:01 mx postfix/qmgr[103]: 4A1B2C3D4E: removed
Dec  6 01:00:02 mx postfix/smtpd[101]: 5B2C3D4E5F: client=unknown[127.0.0.1], sasl_method=PLAIN, sasl_username=alice@example.test
Dec  6 01:00:02 mx postfix/qmgr[103]: 5B2C3D4E5F: from=<alice@example.test>, size=420, nrcpt=1 (queue active)
Dec  6 01:00:03 mx postfix/smtp[104]: 5B2C3D4E5F: to=<x@yahoo.com>, relay=mta5.am0.yahoodns.net[67.195.204.72]:25, delay=1, delays=0/0/0.5/0.5, dsn=4.7.0, status=deferred (host mta5.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints (in reply to MAIL FROM command))
";
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    daemon.wait_log(
        "fault injected at mail-read-commit",
        Duration::from_secs(20),
    );
    let alice = || {
        let api = crate::util::http_json(wport, "/api/v1/accounts");
        api["sources"][0]["accounts"].as_array().and_then(|a| {
            a.iter()
                .find(|a| a["account"] == "alice@example.test")
                .cloned()
        })
    };
    wait_for(
        "alice counted after the re-read",
        Duration::from_secs(20),
        alice,
    );
    // a few more reads of nothing new change nothing
    std::thread::sleep(Duration::from_secs(3));
    let a = alice().unwrap();
    assert_eq!(a["total_messages"], 2, "{a}");
    assert_eq!(a["messages"], 2, "{a}");
    assert_eq!(a["recipients"], 2, "{a}");
    // the queued one leaves later: still two messages, not three
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"Dec  6 01:10:00 mx postfix/smtp[104]: 5B2C3D4E5F: to=<x@yahoo.com>, relay=mta5.am0.yahoodns.net[67.195.204.72]:25, delay=600, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)\nDec  6 01:10:00 mx postfix/qmgr[103]: 5B2C3D4E5F: removed\n")
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let a = alice().unwrap();
    assert_eq!(a["total_messages"], 2, "{a}");
}
