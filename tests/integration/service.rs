//! The daemon as postmasters run it: ONE long-lived `rblwatch daemon` per story,
//! with second-scale intervals, driven only by the outside world (an attack on
//! a real Postfix, a zone edit in a real rbldnsd, a config edit and SIGHUP, a
//! webhook that hangs, a kill -9). The `--once` tests elsewhere prove cron mode;
//! these prove the service. See issue 13.

use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::util::{fixtures, wait_for, Daemon, HttpFixture, Postfix, Rbldnsd};

fn postconf(pf: &Postfix, p: &str) -> String {
    let o = Command::new("postconf")
        .args(["-c", pf.conf().to_str().unwrap(), "-n", p])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn db(dir: &std::path::Path) -> Connection {
    let c = Connection::open(dir.join("rblwatch.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

/// Event kinds in commit order.
fn event_kinds(c: &Connection) -> Vec<String> {
    let mut st = c.prepare("SELECT kind FROM events ORDER BY id").unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn wait_event(dir: &std::path::Path, kind: &str, limit: Duration, d: &Daemon) -> i64 {
    let start = Instant::now();
    loop {
        let c = db(dir);
        let n = count(
            &c,
            &format!("SELECT COUNT(*) FROM events WHERE kind = '{kind}'"),
        );
        if n > 0 {
            return n;
        }
        assert!(
            start.elapsed() < limit,
            "no {kind} event within {limit:?}; events: {:?}\n{}",
            event_kinds(&c),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn kinds_in(body: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The reverse-NDR story, in service mode: the probe finds the hole, an attack
/// raises `ndr_spike`, both hooks fix it, the next probe says `rejects-unknown`,
/// bounces are on hold, the spike clears and the reverts restore the exact
/// settings, all without restarting the daemon.
#[test]
fn reverse_ndr_story_against_one_long_lived_daemon() {
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

[web]
enabled = false

[alerting]
group_window = "0s"

[[sources]]
name = "mx"
kind = "postfix"
command = ["postqueue", "-c", {conf:?}, "-j"]
interval = "1s"

[[sources]]
name = "mxlog"
kind = "postfix_log"
path = {log:?}
interval = "1s"

[[probes]]
domain = "example.test"
server = "{server}"
mail_from = "probe@probe.test"
interval = "2s"

[[spikes]]
metric = "mxlog.ndr_generated"
kind = "ndr_spike"
above = 5
# time for the next probe to see the fix before the spike clears, even on a loaded machine
clear_after = 12

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
"#,
        log = pf.log().display().to_string(),
        server = pf.server(),
        hport = hook.port,
    );
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut d = Daemon::start(&cfg);
    let t = Duration::from_secs(30);

    // the probe runs on its schedule and finds the hole
    wait_event(dir.path(), "rndr_vulnerable", t, &d);
    // the mail sources keep reading: several samples of the queue, not one at start-up
    wait_for("queue samples every second", t, || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM metric_samples WHERE source = 'mx' AND metric = 'queue_depth'",
        ) >= 3)
            .then_some(())
    });

    // the outside world: a backscatter attack
    assert_eq!(pf.attack(50), 50);
    wait_event(dir.path(), "ndr_spike", t, &d);
    wait_for("both hooks to run", t, || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM hook_runs WHERE action = 'run' AND status = 'ok'",
        ) == 2)
            .then_some(())
    });
    // the fix is in place: the next scheduled probe sees it, and the bounces are held
    wait_event(dir.path(), "rndr_vulnerable_cleared", t, &d);
    let held = pf
        .queue_json()
        .lines()
        .filter(|l| {
            l.contains("\"sender\": \"MAILER-DAEMON\"") && l.contains("\"queue_name\": \"hold\"")
        })
        .count();
    assert!(held >= 50, "{held} bounces on hold");

    // the NDRs stop, the spike clears on its own, and the reverts restore exactly
    wait_event(dir.path(), "ndr_spike_cleared", Duration::from_secs(40), &d);
    wait_for("both reverts", t, || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM hook_runs WHERE action = 'revert' AND status = 'ok'",
        ) == 2)
            .then_some(())
    });
    assert_eq!(
        postconf(&pf, "smtpd_reject_unlisted_recipient"),
        before_rcpt
    );
    assert_eq!(postconf(&pf, "local_recipient_maps"), before_maps);
    assert_eq!(postconf(&pf, "header_checks"), "");
    let still_held = pf
        .queue_json()
        .lines()
        .filter(|l| l.contains("MAILER-DAEMON") && l.contains("\"queue_name\": \"hold\""))
        .count();
    assert_eq!(still_held, 0, "held bounces released on resume");

    // the webhook heard it all, in order
    let flat: Vec<String> = wait_for("the alerts", t, || {
        let flat: Vec<String> = hook.bodies().iter().flat_map(|b| kinds_in(b)).collect();
        flat.contains(&"ndr_spike_cleared".to_string())
            .then_some(flat)
    });
    let pos = |k: &str| flat.iter().position(|x| x == k).unwrap();
    assert!(pos("rndr_vulnerable") < pos("ndr_spike"), "{flat:?}");
    assert!(
        pos("ndr_spike") < pos("rndr_vulnerable_cleared"),
        "{flat:?}"
    );
    assert!(
        pos("rndr_vulnerable_cleared") < pos("ndr_spike_cleared"),
        "{flat:?}"
    );
    // `status --json` beside the running daemon carries the mail figures and probes, as the API does
    let o = crate::util::rblwatch(&["status", "--json", "-C", cfg.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&crate::util::stdout(&o)).unwrap();
    let mail = v["mail"].as_array().unwrap();
    assert!(
        mail.iter()
            .any(|m| m["source"] == "mx" && m["metric"] == "queue_depth"),
        "{v}"
    );
    assert!(v["probes"][0]["verdict"].is_string(), "{}", v["probes"]);
    // one daemon did all of it
    assert!(d.child.try_wait().unwrap().is_none(), "still running");
}

fn dyn_zone(entries: &[&str]) -> String {
    let mut s = String::from("$TTL 1\n:127.0.0.2:Listed in dyn.test: $\n127.0.0.2\n");
    for e in entries {
        s.push_str(e);
        s.push('\n');
    }
    s
}

/// The listing story, in service mode: a zone edit lists the target, the
/// second sweep confirms it (`confirm_listed = 2`), the hook runs; a zone edit
/// delists it, two sweeps later it is `delisted` and the revert runs. Then a
/// SIGHUP adds a mail source and the same daemon starts reading it.
#[test]
fn listing_story_and_reload_against_one_long_lived_daemon() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let rec = fixtures().join("hooks/record.sh");
    let out = dir.path().join("hook-out");
    std::fs::create_dir(&out).unwrap();
    let base = format!(
        r#"[[targets]]
target = "192.0.2.77"

[daemon]
database = "rblwatch.db"
sweep = "1s"
health = "1s"
confirm_listed = 2
confirm_clear = 2

[alerting]
group_window = "0s"

[[hooks]]
name = "rec"
on = ["listed"]
command = [{rec:?}, "listed"]
revert = [{rec:?}, "delisted"]
cooldown = "0s"
env = {{ OUT = {out:?} }}
"#,
        rec = rec.display().to_string(),
        out = out.display().to_string()
    );
    let cfg = crate::util::write_config(dir.path(), &rbl, &["dyn-test"], &base);
    let mut d = Daemon::start(&cfg);
    let t = Duration::from_secs(30);
    wait_event(dir.path(), "baseline", t, &d);

    rbl.write_zone(
        "dyn.test.ip4set",
        &dyn_zone(&["192.0.2.77 :127.0.0.2:listed for the story"]),
    );
    wait_event(dir.path(), "listed", t, &d);
    let c = db(dir.path());
    // confirmed by a second sweep of the changed zone: suspected first, then listed
    let suspected_sweeps = count(
        &c,
        "SELECT COUNT(*) FROM sweeps WHERE status = 'done' AND listed > 0",
    );
    assert!(suspected_sweeps >= 2, "{suspected_sweeps}");
    wait_for("the hook", t, || {
        std::fs::read_to_string(out.join("listed.stdin")).ok()
    });

    rbl.write_zone("dyn.test.ip4set", &dyn_zone(&[]));
    wait_event(dir.path(), "delisted", t, &d);
    let env = wait_for("the revert", t, || {
        std::fs::read_to_string(out.join("delisted.env")).ok()
    });
    assert!(env.contains("RBLWATCH_ACTION=revert"), "{env}");

    // SIGHUP with a new source: the running daemon starts reading it on its schedule
    let counter = dir.path().join("n");
    std::fs::write(&counter, "0").unwrap();
    let script = dir.path().join("count.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nn=$(cat {c}); n=$((n+1)); echo $n > {c}; echo $n\n",
            c = counter.display()
        ),
    )
    .unwrap();
    crate::util::chmod(&script, 0o755);
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "{text}\n[[sources]]\nname = \"added\"\nkind = \"command\"\ncommand = [{:?}]\ninterval = \"1s\"\n",
            script.display().to_string()
        ),
    )
    .unwrap();
    d.signal("HUP");
    d.wait_log("configuration reloaded", t);
    wait_for("the added source to be read several times", t, || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM metric_samples WHERE source = 'added'",
        ) >= 3)
            .then_some(())
    });
    // and a bad config is refused while the daemon runs on
    std::fs::write(&cfg, format!("{text}\n[daemon]\nbogus = 1\n")).unwrap();
    d.signal("HUP");
    d.wait_log("new configuration rejected", t);
    assert!(d.child.try_wait().unwrap().is_none(), "still running");
}

/// An HTTP endpoint that accepts connections and never answers.
struct Hanging {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Hanging {
    fn start() -> Self {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let a = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming().flatten() {
                a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(s);
            }
        });
        Hanging { port, accepted }
    }
}

fn unix_now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Issue 13: a webhook that hangs 30 s per request must not delay a hook. Two
/// listings, 3 s apart, while the webhook hangs: each hook runs within 2 s of
/// its listing's sweep. Render failures and failing channels are recorded and
/// alerted through the other channels; every webhook carries an idempotency key.
#[test]
fn a_hanging_webhook_delays_no_hook_and_broken_channels_are_recorded_and_alerted() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let hang = Hanging::start();
    let good = HttpFixture::serve(vec![("/good", "text/plain", "ok".into())]);
    let out = dir.path().join("hook-out");
    std::fs::create_dir(&out).unwrap();
    let hook = dir.path().join("stamp.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat > /dev/null\ndate +%s.%N >> {}/$RBLWATCH_TARGET\n",
            out.display()
        ),
    )
    .unwrap();
    crate::util::chmod(&hook, 0o755);
    // renders fine for the sample events `config check` uses, fails for this real target
    let tpl = dir.path().join("bad.j2");
    std::fs::write(
        &tpl,
        "{\"x\": {% if events[0].target == \"192.0.2.66\" %}{{ events[0].summary|int }}{% else %}1{% endif %}}\n",
    )
    .unwrap();
    let extra = format!(
        r#"[[targets]]
target = "192.0.2.65"
[[targets]]
target = "192.0.2.66"

[daemon]
database = "rblwatch.db"
sweep = "1s"
health = "1s"
confirm_listed = 1
confirm_clear = 1

[alerting]
group_window = "0s"
timeout = "30s"

[[hooks]]
name = "stamp"
on = ["listed"]
command = [{hook:?}]
cooldown = "0s"
max_per_hour = 100

[[alerts]]
name = "hangs"
kind = "webhook"
url = "http://127.0.0.1:{hport}/hook"

[[alerts]]
name = "bad-template"
kind = "webhook"
url = "http://127.0.0.1:{gport}/good"
template = {tpl:?}

[[alerts]]
name = "good"
kind = "webhook"
url = "http://127.0.0.1:{gport}/good"
"#,
        hook = hook.display().to_string(),
        tpl = tpl.display().to_string(),
        hport = hang.port,
        gport = good.port,
    );
    let cfg = crate::util::write_config(dir.path(), &rbl, &["dyn-test"], &extra);
    let d = Daemon::start(&cfg);
    let t = Duration::from_secs(30);
    wait_event(dir.path(), "baseline", t, &d);

    let delay_of = |target: &str| -> f64 {
        let stamp: f64 = wait_for(&format!("the hook for {target}"), t, || {
            std::fs::read_to_string(out.join(target))
                .ok()?
                .lines()
                .next()?
                .trim()
                .parse()
                .ok()
        });
        let c = db(dir.path());
        let at: i64 = c
            .query_row(
                "SELECT at FROM events WHERE kind = 'listed' AND target = ?1",
                [target],
                |r| r.get(0),
            )
            .unwrap();
        // `at` is the second the listing's sweep started (whole seconds)
        stamp - at as f64
    };
    rbl.write_zone(
        "dyn.test.ip4set",
        &dyn_zone(&["192.0.2.65 :127.0.0.2:first"]),
    );
    let first = delay_of("192.0.2.65");
    wait_for("the webhook to be hanging", t, || {
        (hang.accepted.load(std::sync::atomic::Ordering::SeqCst) > 0).then_some(())
    });
    let hung_since = unix_now_f64();
    std::thread::sleep(Duration::from_secs(3));
    rbl.write_zone(
        "dyn.test.ip4set",
        &dyn_zone(&[
            "192.0.2.65 :127.0.0.2:first",
            "192.0.2.66 :127.0.0.2:second",
        ]),
    );
    let second = delay_of("192.0.2.66");
    eprintln!(
        "hook delay after the listing's sweep: first {first:.2} s, second {second:.2} s (webhook hanging for {:.1} s)",
        unix_now_f64() - hung_since
    );
    assert!(first < 2.0 + 1.0, "{first}"); // + 1 s: `at` is rounded down to the second
    assert!(second < 2.0 + 1.0, "{second}");
    assert!(
        unix_now_f64() - hung_since < 30.0,
        "the webhook was still hanging"
    );

    // the template that cannot render this target: a failed delivery with the
    // reason, an alert_failed through the good channel, and the cursor moved on
    let c = db(dir.path());
    let why: String = wait_for("the failed render", t, || {
        c.query_row(
            "SELECT last_error FROM alert_outbox WHERE channel = 'bad-template' AND status = 'failed'",
            [],
            |r| r.get(0),
        )
        .ok()
    });
    assert!(why.contains("bad.j2:1"), "{why}");
    let kinds: Vec<String> = wait_for("alert_failed at the good channel", t, || {
        let k: Vec<String> = good.bodies().iter().flat_map(|b| kinds_in(b)).collect();
        k.contains(&"alert_failed".to_string()).then_some(k)
    });
    assert!(kinds.contains(&"listed".to_string()), "{kinds:?}");
    // every webhook request carries the idempotency key, header and body alike
    let reqs = good.requests.lock().unwrap().clone();
    for r in &reqs {
        let head = r.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("idempotency-key: "))
            .expect("idempotency-key header")
            .to_string();
        let body: serde_json::Value =
            serde_json::from_str(r.split_once("\r\n\r\n").unwrap().1).unwrap();
        if body.get("events").is_some() {
            assert_eq!(
                body["idempotency_key"]
                    .as_str()
                    .unwrap()
                    .to_ascii_lowercase(),
                key
            );
        }
    }
}

/// Issue 13: kill -9 while a hook runs. The restarted daemon records the run
/// as interrupted and alerts it; it never runs the hook a second time.
#[test]
fn kill_9_during_a_hook_never_runs_it_twice_and_is_recorded() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("runs");
    let hook = dir.path().join("slow.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat > /dev/null\necho run >> {}\nsleep 5\n",
            marker.display()
        ),
    )
    .unwrap();
    crate::util::chmod(&hook, 0o755);
    let extra = format!(
        r#"[[targets]]
target = "192.0.2.91"

[daemon]
database = "rblwatch.db"
sweep = "1s"
health = "1s"
confirm_listed = 1

[[hooks]]
name = "slow"
on = ["listed"]
command = [{hook:?}]
"#,
        hook = hook.display().to_string()
    );
    let cfg = crate::util::write_config(dir.path(), &rbl, &["dyn-test"], &extra);
    let d = Daemon::start(&cfg);
    let t = Duration::from_secs(30);
    wait_event(dir.path(), "baseline", t, &d);
    rbl.write_zone(
        "dyn.test.ip4set",
        &dyn_zone(&["192.0.2.91 :127.0.0.2:listed"]),
    );
    wait_for("the hook to start", t, || {
        std::fs::read_to_string(&marker).ok()
    });
    d.signal("KILL");
    drop(d);
    let d = Daemon::start(&cfg);
    wait_for("the interrupted run to be recorded", t, || {
        let c = db(dir.path());
        (count(
            &c,
            "SELECT COUNT(*) FROM hook_runs WHERE hook = 'slow' AND status = 'interrupted'",
        ) == 1)
            .then_some(())
    });
    // several sweeps later: still one run, one hook_failed naming the interruption
    let sweeps = count(&db(dir.path()), "SELECT COUNT(*) FROM sweeps");
    wait_for("three more sweeps", t, || {
        (count(&db(dir.path()), "SELECT COUNT(*) FROM sweeps") >= sweeps + 3).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().lines().count(),
        1,
        "the hook ran again\n{}",
        d.log()
    );
    let c = db(dir.path());
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM hook_runs WHERE hook = 'slow'"),
        1
    );
    let summary: String = c
        .query_row(
            "SELECT summary FROM events WHERE kind = 'hook_failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(summary.contains("interrupted"), "{summary}");
}

/// An HTTP endpoint that sends a Prometheus body that never ends (a byte at a time, forever).
fn endless_body_server() -> u16 {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                use std::io::Read;
                let mut s = s;
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                    head.push(b[0]);
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100000000000\r\n\r\n# HELP x y\n");
                loop {
                    if s.write_all(b"# ").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
    });
    port
}

/// Issue 13, the fault battery: a source command that hangs, one that prints
/// 100 MB, a Prometheus endpoint that never ends its body, one whose selector
/// matches nothing, a refusing webhook and one answering 500. Each is
/// contained, recorded and alerted (through the channel that works), and the
/// healthy source goes on being read every second.
#[test]
fn faulty_sources_and_channels_are_contained_recorded_and_alerted() {
    let dir = tempfile::tempdir().unwrap();
    let endless = endless_body_server();
    let prom = HttpFixture::serve(vec![("/metrics", "text/plain", "some_metric 5\n".into())]);
    let http500 = HttpFixture::serve(vec![(
        "/x",
        "status:500 Internal Server Error",
        "oops".into(),
    )]);
    let good = HttpFixture::serve(vec![("/good", "text/plain", "ok".into())]);
    let refused = crate::util::free_tcp_port();
    let text = format!(
        r#"[daemon]
database = "rblwatch.db"

[web]
enabled = false

[alerting]
group_window = "0s"
timeout = "2s"

[[sources]]
name = "healthy"
kind = "command"
command = ["echo", "7"]
interval = "1s"

[[sources]]
name = "hangs"
kind = "command"
command = ["sleep", "600"]
interval = "1s"
timeout = "1s"

[[sources]]
name = "floods"
kind = "command"
command = ["sh", "-c", "head -c 100000000 /dev/zero"]
interval = "2s"
timeout = "20s"

[[sources]]
name = "endless"
kind = "prometheus"
url = "http://127.0.0.1:{endless}/metrics"
metrics = {{ x = "some_metric" }}
interval = "1s"
timeout = "2s"

[[sources]]
name = "nomatch"
kind = "prometheus"
url = "http://127.0.0.1:{prom}/metrics"
metrics = {{ x = "metric_that_is_not_there" }}
interval = "1s"

[[alerts]]
name = "refused"
kind = "webhook"
url = "http://127.0.0.1:{refused}/x"

[[alerts]]
name = "http-error"
kind = "webhook"
url = "http://127.0.0.1:{e500}/x"

[[alerts]]
name = "good"
kind = "webhook"
url = "http://127.0.0.1:{good}/good"
"#,
        prom = prom.port,
        e500 = http500.port,
        good = good.port,
    );
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut d = Daemon::start(&cfg);
    let t = Duration::from_secs(40);
    wait_for("source_failed for every faulty source", t, || {
        let c = db(dir.path());
        let mut st = c
            .prepare(
                "SELECT json_extract(subject, '$.name') FROM events WHERE kind = 'source_failed'",
            )
            .ok()?;
        let names: Vec<String> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        ["hangs", "floods", "endless", "nomatch"]
            .iter()
            .all(|n| names.iter().any(|x| x == n))
            .then_some(())
    });
    let c = db(dir.path());
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM events WHERE kind = 'source_failed' AND json_extract(subject, '$.name') = 'hangs'"
        ),
        1,
        "alerted once, not at every read"
    );
    let why = |n: &str| -> String {
        c.query_row(
            "SELECT json_extract(details, '$.why') FROM events WHERE kind = 'source_failed' AND json_extract(subject, '$.name') = ?1",
            [n],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(why("hangs").contains("timed out"), "{}", why("hangs"));
    assert!(why("floods").contains("MiB"), "{}", why("floods"));
    assert!(why("endless").contains("timed out"), "{}", why("endless"));
    assert!(
        why("nomatch").contains("no series matches"),
        "{}",
        why("nomatch")
    );
    // the healthy source went on, every second
    wait_for("the healthy source to go on", t, || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM metric_samples WHERE source = 'healthy'",
        ) >= 6)
            .then_some(())
    });
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM metric_samples WHERE source = 'nomatch'"
        ),
        0,
        "no made-up zero"
    );
    // the broken channels are alerted through the good one
    let kinds: Vec<String> = wait_for("alert_failed at the good channel", t, || {
        let bodies = good.bodies();
        let failing: Vec<String> = bodies
            .iter()
            .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
            .flat_map(|v| v["events"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["kind"] == "alert_failed")
            .map(|e| e["subject"]["name"].as_str().unwrap_or("").to_string())
            .collect();
        (failing.contains(&"refused".to_string()) && failing.contains(&"http-error".to_string()))
            .then_some(failing)
    });
    assert!(!kinds.contains(&"good".to_string()));
    let last_error: String = c
        .query_row(
            "SELECT last_error FROM alert_outbox WHERE channel = 'http-error' ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(last_error.contains("HTTP status 500"), "{last_error}");
    // no secret in the log: the URLs are not printed
    assert!(!d.log().contains(&format!("127.0.0.1:{refused}/x")));
    assert!(d.child.try_wait().unwrap().is_none(), "still running");
}

/// Issue 9: in service mode a list whose budget needs it is swept only every
/// k-th sweep, and the log says so; the other lists every sweep.
#[test]
fn a_list_over_budget_is_swept_less_often_by_the_running_daemon() {
    let rbl = Rbldnsd::start();
    let wport = crate::util::free_tcp_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::util::write_config(
        dir.path(),
        &rbl,
        &["dyn-test", "bl-test"],
        &format!("[[targets]]\ntarget = \"192.0.2.0/28\"\n[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"1s\"\nhealth = \"1h\"\n[lists.override.dyn-test]\ndaily_limit = 400000\n[web]\nlisten = \"127.0.0.1:{wport}\"\n"),
    );
    let d = Daemon::start(&cfg);
    let log = d.wait_log(
        "to stay within 400,000 queries/day",
        Duration::from_secs(10),
    );
    assert!(log.contains("swept every 5s"), "{log}");
    // the lists page and API say it too, and only for that list
    wait_for("the web server", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", wport)).ok()
    });
    let lists = crate::util::http_json(wport, "/api/v1/lists");
    let budget = |id: &str| {
        lists["lists"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["list"] == id)
            .map(|l| l["budget"].clone())
            .unwrap()
    };
    let text = budget("dyn-test");
    assert!(
        text.as_str()
            .is_some_and(|t| t.contains("swept every 5s") && t.contains("400,000 queries/day")),
        "{lists}"
    );
    assert!(budget("bl-test").is_null());
    let (_, page) = crate::util::http_get(wport, "/lists");
    assert!(
        page.contains("swept every 5s to stay within 400,000 queries"),
        "{page}"
    );
    wait_for("eight sweeps", Duration::from_secs(30), || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM sweeps WHERE status = 'done'",
        ) >= 8)
            .then_some(())
    });
    let log = d.log();
    let skipped = |list: &str| {
        log.lines()
            .filter(|l| l.contains("not due this sweep") && l.contains(&format!("list={list}")))
            .count()
    };
    assert!(skipped("dyn-test") >= 3, "{log}");
    assert_eq!(skipped("bl-test"), 0);
    // the counts kept for the budget say the same
    let counts: serde_json::Value = serde_json::from_str(
        &db(dir.path())
            .query_row(
                "SELECT value FROM state WHERE key = 'budget:counts'",
                [],
                |r| r.get::<_, String>(0),
            )
            .unwrap(),
    )
    .unwrap();
    let sweeps = count(
        &db(dir.path()),
        "SELECT COUNT(*) FROM sweeps WHERE status = 'done'",
    ) as u64;
    let dyn_n = counts["dyn-test"][1].as_u64().unwrap();
    // every sweep costs 3 queries of health check; being swept, 16 more (the targets)
    let swept = dyn_n.saturating_sub(3 * (sweeps + 1)) / 16;
    assert!(
        swept <= sweeps / 5 + 1,
        "dyn-test swept {swept} times in {sweeps} sweeps ({dyn_n} queries)"
    );
}

/// Issue 13: `/healthz` answered `ok` while every write failed with "database
/// or disk is full". The database here lives on a 512 KiB tmpfs (a private
/// mount namespace); a source writing 200 samples a second fills it: `/healthz`
/// turns 503 naming the cause while the daemon runs on, and once the disk has
/// room again it is `ok` and a sweep left `running` by a failed commit is closed.
#[test]
fn healthz_fails_while_writes_fail_and_recovers() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    crate::util::chmod(dir.path(), 0o755);
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let port = crate::util::free_tcp_port();
    let keys: Vec<String> = (0..200).map(|i| format!("\\\"m{i}\\\": {i}")).collect();
    let cfg = crate::util::write_config(
        dir.path(),
        &rbl,
        &["dyn-test"],
        &format!(
            "[[targets]]\ntarget = \"192.0.2.0/28\"\n[daemon]\ndatabase = {db:?}\nsweep = \"1s\"\nhealth = \"1h\"\n[[sources]]\nname = \"flood\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"echo '{{{keys}}}'\"]\ninterval = \"1s\"\n[web]\nlisten = \"127.0.0.1:{port}\"\n",
            db = data.join("rblwatch.db").display().to_string(),
            keys = keys.join(", ").replace("\\\\", "\\"),
        ),
    );
    let log = dir.path().join("daemon.log");
    // 1 MiB: room for the schema (twelve migrations now) and a few seconds of the
    // flood, so /healthz is ok before the disk fills; at 512 KiB it was full
    // within the first sweep's commit, about half the time
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs -o size=1m tmpfs {d} && exec {bin} daemon -C {cfg}",
        d = data.display(),
        bin = env!("CARGO_BIN_EXE_rblwatch"),
        cfg = cfg.display()
    );
    let mut child = Command::new("unshare")
        .args([
            "--mount",
            "--fork",
            "--kill-child",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let healthz = || -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut r = String::new();
        s.read_to_string(&mut r).ok()?;
        let code = r.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, r.split("\r\n\r\n").nth(1).unwrap_or("").to_string()))
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let t = Duration::from_secs(60);
        let (code, body) = wait_for("/healthz ok", t, || healthz().filter(|(c, _)| *c == 200));
        assert!(body.starts_with("ok: last commit"), "{code} {body}");
        let (_, body) = wait_for("/healthz failing on a full disk", t, || {
            healthz().filter(|(c, _)| *c == 503)
        });
        assert!(body.contains("full"), "{body}");
        assert!(child.try_wait().unwrap().is_none(), "the daemon runs on");
        // room again: remount the tmpfs bigger, inside the daemon's namespace
        let pid = child.id();
        let st = Command::new("nsenter")
            .args([
                "-t",
                &pid.to_string(),
                "-m",
                "--",
                "mount",
                "-o",
                "remount,size=64m",
            ])
            .arg(&data)
            .status()
            .unwrap();
        assert!(st.success());
        wait_for("/healthz ok again", t, || {
            healthz().filter(|(c, _)| *c == 200)
        });
        // no sweep stays `running` once commits work again (one may be in progress)
        let db = data.join("rblwatch.db");
        let running = || -> Option<i64> {
            let out = Command::new("nsenter")
                .args(["-t", &pid.to_string(), "-m", "--", "python3", "-c"])
                .arg(format!(
                    "import sqlite3; c = sqlite3.connect('file:{}?mode=ro', uri=True); print(c.execute(\"SELECT COUNT(*) FROM sweeps WHERE status = 'running'\").fetchone()[0])",
                    db.display()
                ))
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        std::thread::sleep(Duration::from_secs(3));
        wait_for("stale sweeps closed", t, || running().filter(|n| *n <= 1));
    }));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        eprintln!("{}", std::fs::read_to_string(&log).unwrap_or_default());
        std::panic::resume_unwind(e);
    }
}

/// Smoke found: behind a resolver that never answers, the daemon's first
/// health check (seconds of timeouts) ran before any job was scheduled, so a
/// command source with `interval = "1s"` gave one point in 7 s. Sources and
/// probes start at once; only READY waits for the first health check.
/// A config for `dir` whose resolver is a socket that reads every query and
/// answers none (3 s timeout, one retry): the first health check takes its
/// timeouts. Keep the socket alive while the daemon runs.
fn silent_resolver_config(
    dir: &std::path::Path,
    rbl: &Rbldnsd,
    rest: &str,
) -> (std::path::PathBuf, std::net::UdpSocket) {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let cfg = crate::util::write_config(dir, rbl, &["dyn-test", "bl-test", "dbl-test"], rest);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&rbl.addr(), &silent_addr.to_string())
        .replace(
            "timeout = \"400ms\"\nretries = 0",
            "timeout = \"3s\"\nretries = 1",
        );
    std::fs::write(&cfg, text).unwrap();
    (cfg, silent)
}

#[test]
fn sources_run_on_schedule_while_the_first_health_check_waits_on_timeouts() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let wport = crate::util::free_tcp_port();
    let (cfg, silent) = silent_resolver_config(
        dir.path(),
        &rbl,
        &format!("[[targets]]\ntarget = \"192.0.2.0/30\"\n[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"30m\"\nhealth = \"30m\"\n[[sources]]\nname = \"cmd\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"date +%s\"]\ninterval = \"1s\"\n[web]\nlisten = \"127.0.0.1:{wport}\"\n"),
    );
    let d = Daemon::start(&cfg);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(7));
    let n = count(
        &db(dir.path()),
        "SELECT COUNT(*) FROM metric_samples WHERE source = 'cmd'",
    );
    assert!(
        n >= 4,
        "{n} point(s) in {:?} of a running daemon\n{}",
        started.elapsed(),
        d.log()
    );
    // and the API shows each of them, not one bucket of a day cut in 500
    let api = crate::util::http_json(wport, "/api/v1/metrics/cmd/value");
    let points = api["points"].as_array().map_or(0, Vec::len);
    assert!(points >= 4, "{points} point(s) in the API: {api}");
    drop(silent);
}

#[test]
fn retention_runs_at_start_up_while_the_first_health_check_waits() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, silent) = silent_resolver_config(
        dir.path(),
        &rbl,
        "[[targets]]\ntarget = \"192.0.2.0/30\"\n[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"30m\"\nhealth = \"30m\"\n",
    );
    // a database left by an earlier run, with a sample far past retention
    let path = dir.path().join("rblwatch.db");
    let c = rblwatch::store::open_connection(&path).unwrap();
    let old = rblwatch::time::now() - 400 * 86_400;
    c.execute(
        "INSERT INTO metric_samples (source, metric, at, value) VALUES ('cmd', 'queue', ?1, 1)",
        [old],
    )
    .unwrap();
    drop(c);
    let d = Daemon::start(&cfg);
    let started = Instant::now();
    let mut left = 1;
    while started.elapsed() < Duration::from_secs(5) {
        left = count(&db(dir.path()), "SELECT COUNT(*) FROM metric_samples");
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        left,
        0,
        "the old sample is still there {:?} after start-up\n{}",
        started.elapsed(),
        d.log()
    );
    drop(silent);
}

/// Issue 19: the hooks worker is supervised. Made to panic (a test-only fault
/// point, `RBLWATCH_FAULT`), it turns `/healthz` red within seconds, is
/// counted on `/metrics` and restarted, and the event it was woken for is
/// still acted on once, by the restarted worker: nothing is lost.
#[test]
fn a_hooks_worker_that_panics_turns_healthz_red_and_restarts_losing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let rec = crate::util::fixtures().join("hooks/record.sh");
    let port = crate::util::free_tcp_port();
    let text = format!(
        r#"[daemon]
database = "rblwatch.db"

[web]
listen = "127.0.0.1:{port}"

[[sources]]
name = "broken"
kind = "command"
command = ["false"]
interval = "1h"

[[hooks]]
name = "rec"
on = ["source_failed"]
command = [{rec:?}, "failed"]
cooldown = "0s"
env = {{ OUT = {out:?} }}
"#,
        rec = rec.display().to_string(),
        out = out.display().to_string()
    );
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start_with_env(&cfg, &[("RBLWATCH_FAULT", "hooks-worker-panic")]);
    let t = Duration::from_secs(20);
    let red = wait_for("/healthz to fail while the hooks worker is down", t, || {
        let (code, body) = crate::util::http_get(port, "/healthz");
        (code == 503).then_some(body)
    });
    assert!(red.contains("hooks") && red.contains("panicked"), "{red}");
    d.wait_log("a supervised task died", t);
    let (_, metrics) = crate::util::http_get(port, "/metrics");
    assert!(
        metrics.contains("rblwatch_task_failures_total{task=\"hooks\"} 1"),
        "{metrics}"
    );
    // restarted after its backoff: healthy again, and the event is acted on once
    wait_for("/healthz ok again", t, || {
        (crate::util::http_get(port, "/healthz").0 == 200).then_some(())
    });
    wait_for("the hook run by the restarted worker", t, || {
        std::fs::read_to_string(out.join("failed.stdin")).ok()
    });
    std::thread::sleep(Duration::from_secs(2));
    let c = rusqlite::Connection::open(dir.path().join("rblwatch.db")).unwrap();
    let runs: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM hook_runs WHERE hook = 'rec'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(runs, 1, "{}", d.log());
}

/// Issue 21: a `postfix_log` path replaced by a FIFO stopped that source for
/// good (the open blocked), silently, and lost the lines of the regular file
/// that came back. Now the FIFO is a `source_failed` naming it, counted in
/// `/metrics`, and the regular file that comes back is read whole by the same
/// daemon (`source_recovered`, every NDR line counted).
#[test]
fn a_log_path_that_turns_into_a_fifo_fails_loudly_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("maillog");
    std::fs::write(&log, "Nov 23 03:08:49 mx postfix/qmgr[1]: history\n").unwrap();
    let port = crate::util::free_tcp_port();
    let text = format!(
        r#"[daemon]
database = "rblwatch.db"

[web]
listen = "127.0.0.1:{port}"

[[sources]]
name = "mxlog"
kind = "postfix_log"
path = {log:?}
interval = "1s"
"#,
        log = log.display().to_string(),
    );
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg);
    let t = Duration::from_secs(30);
    let samples = || {
        count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM metric_samples WHERE source = 'mxlog' AND metric = 'ndr_generated'",
        )
    };
    wait_for("the log to be read", t, || (samples() >= 2).then_some(()));

    std::fs::remove_file(&log).unwrap();
    let st = Command::new("mkfifo").arg(&log).status().unwrap();
    assert!(st.success());
    wait_event(dir.path(), "source_failed", t, &d);
    let why: String = db(dir.path())
        .query_row(
            "SELECT json_extract(details, '$.why') FROM events WHERE kind = 'source_failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(why.contains("is a FIFO, not a regular file"), "{why}");
    let (_, metrics) = crate::util::http_get(port, "/metrics");
    let failures: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rblwatch_mail_source_failures_total{source=\"mxlog\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(failures >= 1.0, "{metrics}");

    // a regular file again, with three NDRs in it (written aside, renamed in)
    std::fs::remove_file(&log).unwrap();
    let ndr = |i: u32| {
        format!("Nov 23 03:09:0{i} mx postfix/bounce[25]: B16039{i}CAB5: sender non-delivery notification: B68F4{i}9CAB9\n")
    };
    let aside = dir.path().join("maillog.new");
    std::fs::write(&aside, format!("{}{}{}", ndr(1), ndr(2), ndr(3))).unwrap();
    std::fs::rename(&aside, &log).unwrap();
    wait_event(dir.path(), "source_recovered", t, &d);
    let c = db(dir.path());
    let ndrs: f64 = c
        .query_row(
            "SELECT SUM(value) FROM metric_samples WHERE source = 'mxlog' AND metric = 'ndr_generated'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ndrs, 3.0, "every NDR line of the file that came back");
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM events WHERE kind = 'source_failed'"
        ),
        1
    );
}

/// Issue 21: hooks ran one at a time across all hooks, so a 20 s hook delayed
/// a different hook by 17 s. On one daemon, a 20 s hook and a 1 s hook follow
/// the same events (a source failing and recovering every 3 s): the 1 s hook
/// runs within 2 s of each event, each hook in event order, and the slow one
/// still runs on its own queue.
#[test]
fn a_slow_hook_delays_only_its_own_queue() {
    let dir = tempfile::tempdir().unwrap();
    let value = dir.path().join("value");
    std::fs::write(&value, "1\n").unwrap();
    let stamp = |name: &str, then: &str| {
        let script = dir.path().join(format!("{name}.sh"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$RBLWATCH_EVENT_ID $(date +%s.%N)\" >> {}\n{then}\n",
                dir.path().join(format!("{name}.log")).display()
            ),
        )
        .unwrap();
        crate::util::chmod(&script, 0o755);
        script.display().to_string()
    };
    let text = format!(
        r#"[daemon]
database = "rblwatch.db"

[web]
enabled = false

[[sources]]
name = "flip"
kind = "command"
command = ["cat", {value:?}]
interval = "1s"

[[hooks]]
name = "slow"
on = ["source_failed", "source_recovered"]
command = [{slow:?}]
cooldown = "0s"
max_per_hour = 100
timeout = "60s"

[[hooks]]
name = "fast"
on = ["source_failed", "source_recovered"]
command = [{fast:?}]
cooldown = "0s"
max_per_hour = 100
"#,
        value = value.display().to_string(),
        slow = stamp("slow", "sleep 20"),
        fast = stamp("fast", "sleep 1"),
    );
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg);
    let t = Duration::from_secs(30);
    wait_for("the source to be read", t, || {
        (count(
            &db(dir.path()),
            "SELECT COUNT(*) FROM metric_samples WHERE source = 'flip'",
        ) >= 1)
            .then_some(())
    });
    // four events, 3 s apart: failed, recovered, failed, recovered
    for v in ["not a number\n", "1\n", "not a number\n", "1\n"] {
        std::fs::write(&value, v).unwrap();
        std::thread::sleep(Duration::from_secs(3));
    }
    let runs = |name: &str| -> Vec<(i64, f64)> {
        std::fs::read_to_string(dir.path().join(format!("{name}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (id, at) = l.split_once(' ')?;
                Some((id.parse().ok()?, at.parse().ok()?))
            })
            .collect()
    };
    let fast = wait_for("the fast hook on four events", t, || {
        let r = runs("fast");
        (r.len() >= 4).then_some(r)
    });
    let c = db(dir.path());
    let mut ids = Vec::new();
    for (id, stamp) in &fast {
        let at: i64 = c
            .query_row("SELECT at FROM events WHERE id = ?1", [id], |r| r.get(0))
            .unwrap();
        let delay = stamp - at as f64;
        eprintln!("fast hook on event {id}: {delay:.2} s after it");
        assert!(delay < 2.0 + 1.0, "event {id}: {delay:.2} s\n{}", d.log()); // + 1 s: `at` is whole seconds
        ids.push(*id);
    }
    assert_eq!(fast.len(), 4, "{fast:?}");
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in event order: {ids:?}"
    );
    // the slow hook went on with its own queue, in order
    let slow = runs("slow");
    assert_eq!(slow.first().map(|r| r.0), ids.first().copied(), "{slow:?}");
    assert!(
        slow.len() < 4,
        "the slow hook still works through its queue"
    );
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM hook_runs WHERE hook = 'slow' AND status = 'running'"
        ),
        1
    );
}
