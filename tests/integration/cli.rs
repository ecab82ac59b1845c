//! `rblwatch check`, `lists` and `--nagios` through the real binary against a real rbldnsd.

use crate::util::{rblwatch, stderr, stdout, write_config, Rbldnsd};

#[test]
fn check_prints_a_table_with_meaning_txt_and_delist_link() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &rbl, &["bl-test", "dbl-test"], "");
    let o = rblwatch(&[
        "check",
        "-C",
        cfg.to_str().unwrap(),
        "192.0.2.1",
        "192.0.2.200",
        "evil.example",
    ]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "listed => exit 1\n{out}{}",
        stderr(&o)
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("192.0.2.1 "))
        .expect(&out);
    assert!(
        row.contains("listed")
            && row.contains("spam source")
            && row.contains("Spam source 192.0.2.1"),
        "{row}"
    );
    assert!(row.contains("http://bl.test/remove?ip=192.0.2.1"), "{row}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("192.0.2.200") && l.contains("clear")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("evil.example") && l.contains("phishing domain")),
        "{out}"
    );
    assert!(
        out.contains("3 targets x 2 lists (2 healthy): 2 listed, 1 clear"),
        "{out}"
    );
}

#[test]
fn check_json_is_machine_readable() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &rbl, &["bl-test", "all-test"], "");
    let o = rblwatch(&[
        "check",
        "-C",
        cfg.to_str().unwrap(),
        "--json",
        "192.0.2.1",
        "2001:db8:beef::1",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let results = v["results"].as_array().unwrap();
    let r = results
        .iter()
        .find(|r| r["target"] == "192.0.2.1" && r["list"] == "bl-test")
        .unwrap();
    assert_eq!(r["verdict"], "listed");
    assert_eq!(r["counted"], true);
    assert_eq!(r["codes"], serde_json::json!(["127.0.0.3", "127.0.0.4"]));
    // all-test lists everything: reported, not counted
    let r = results
        .iter()
        .find(|r| r["target"] == "192.0.2.1" && r["list"] == "all-test")
        .unwrap();
    assert_eq!(r["verdict"], "listed");
    assert_eq!(r["counted"], false);
    assert_eq!(v["lists"][1]["health"], "lists-everything");
    assert_eq!(v["summary"]["listed"], 2);
    assert_eq!(v["summary"]["listed_uncounted"], 1);
}

#[test]
fn nagios_exit_codes() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &rbl, &["bl-test"], "");
    let c = cfg.to_str().unwrap();
    // 0 listings: OK
    let o = rblwatch(&["check", "-C", c, "--nagios", "192.0.2.200"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        // plugin range syntax: "-w 1" warns at 1 or more, so the perfdata range is "0"
        stdout(&o).starts_with("RBL OK - ") && stdout(&o).contains("| listings=0;0;0;0;"),
        "{}",
        stdout(&o)
    );
    // 1 listing with -w 0 -c 1 (plugin ranges: warn above 0, critical above 1): WARNING
    let o = rblwatch(&[
        "check",
        "-C",
        c,
        "--nagios",
        "-w",
        "0",
        "-c",
        "1",
        "192.0.2.1",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("RBL WARNING - 1 listing: 192.0.2.1 on bl-test"),
        "{}",
        stdout(&o)
    );
    // 2 listings with -c 1: CRITICAL
    let o = rblwatch(&[
        "check",
        "-C",
        c,
        "--nagios",
        "-w",
        "0",
        "-c",
        "1",
        "192.0.2.1",
        "198.51.100.9",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("RBL CRITICAL - 2 listings"),
        "{}",
        stdout(&o)
    );
    // unreachable resolver: UNKNOWN
    let dead = crate::util::free_udp_port();
    let o = rblwatch(&[
        "check",
        "-C",
        c,
        "--nagios",
        "--resolver",
        &format!("127.0.0.1:{dead}"),
        "192.0.2.1",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).starts_with("RBL UNKNOWN - "), "{}", stdout(&o));
    // bad input: UNKNOWN too (Nagios convention)
    let o = rblwatch(&["check", "-C", c, "--nagios", "999.1.1.1"]);
    assert_eq!(o.status.code(), Some(3));
}

/// Issue 14: nothing checked is never OK. An IPv6 target on IPv4-only lists
/// made no query and said "RBL OK - 1 targets clear"; a dead list's pairs and
/// unknown answers are unchecked, and plain `check` exits 1 for them.
#[test]
fn nothing_checked_is_never_ok() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &rbl,
        &["dyn-test", "dead-test", "timeout-test"],
        "",
    );
    let c = cfg.to_str().unwrap();
    // no list covers an IPv6 target: UNKNOWN, not OK
    let o = rblwatch(&[
        "check",
        "-C",
        c,
        "--lists",
        "dyn-test",
        "--nagios",
        "2001:db8::1",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("RBL UNKNOWN - ") && stdout(&o).contains("2001:db8::1"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("unchecked_targets=1"), "{}", stdout(&o));
    // a dead list only: nothing checked
    let o = rblwatch(&[
        "check",
        "-C",
        c,
        "--lists",
        "dead-test",
        "--nagios",
        "192.0.2.200",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    // a healthy list plus a dead one: checked, but not OK
    let o = rblwatch(&[
        "check",
        "-C",
        c,
        "--lists",
        "dyn-test,dead-test",
        "--nagios",
        "192.0.2.200",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("pairs unchecked"), "{}", stdout(&o));
    // plain check: exit 1 with unknown answers (timeout-test is unreachable) and
    // the pair shown as unchecked; the first line names the resolver
    let o = rblwatch(&[
        "check",
        "-C",
        c,
        "--lists",
        "dyn-test,timeout-test",
        "192.0.2.200",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.starts_with("resolver ok: "), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("timeout-test") && l.contains("unchecked")),
        "{out}"
    );
    // all clear, all checked: exit 0
    let o = rblwatch(&["check", "-C", c, "--lists", "dyn-test", "192.0.2.200"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = rblwatch(&[
        "check",
        "-C",
        c,
        "--lists",
        "dyn-test",
        "--json",
        "192.0.2.200",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["resolver"]["status"], "ok");
    assert_eq!(v["summary"]["targets_checked"], 1);
}

#[test]
fn bad_cli_input_gives_a_clear_error_and_nonzero_exit() {
    for (arg, msg) in [
        ("999.1.1.1", "invalid IPv4 address"),
        ("10.0.0.0/33", "prefix length 33 exceeds 32"),
        ("", "empty target"),
        ("10.0.0.0/8", "--allow-large"),
        ("exa mple.com", "invalid domain"),
    ] {
        let o = rblwatch(&["check", "--resolver", "127.0.0.1:9", arg]);
        assert_eq!(o.status.code(), Some(2), "{arg:?}");
        assert!(stderr(&o).contains(msg), "{arg:?}: {}", stderr(&o));
    }
}

#[test]
fn lists_health_reports_every_state() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let ids = [
        "bl-test",
        "all-test",
        "blocked-test",
        "timeout-test",
        "dead-test",
    ];
    let cfg = write_config(dir.path(), &rbl, &ids, "");
    let o = rblwatch(&["lists", "-C", cfg.to_str().unwrap(), "--health"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "unhealthy lists => exit 1\n{out}");
    for (id, state) in [
        ("bl-test", "healthy"),
        ("all-test", "lists-everything"),
        ("blocked-test", "blocked"),
        ("timeout-test", "unreachable"),
        ("dead-test", "dead"),
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(id) && l.contains(state)),
            "{id} {state}\n{out}"
        );
    }
}

#[test]
fn lists_shows_the_catalog() {
    let o = rblwatch(&["lists", "--all"]);
    let out = stdout(&o);
    assert!(o.status.success());
    assert!(
        out.contains("spamhaus-zen") && out.contains("retired 2024-06-05"),
        "{out}"
    );
}

#[test]
fn terminal_escapes_in_txt_are_neutralised() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &rbl, &["bl-test"], "");
    let o = rblwatch(&["check", "-C", cfg.to_str().unwrap(), "--json", "192.0.2.66"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let txt = v["results"][0]["txt"][0].as_str().unwrap();
    assert!(
        txt.contains("<script>alert(1)</script>") && txt.contains("$(touch /tmp/rblwatch-pwned)"),
        "{txt}"
    );
    assert!(!std::path::Path::new("/tmp/rblwatch-pwned").exists());
}

/// Issue 13: `rblwatch lists --all | head` ended in a panic on the broken pipe.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} lists --all | head -1",
            env!("CARGO_BIN_EXE_rblwatch")
        ))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("panicked") && !e.contains("Broken pipe"), "{e}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
}

/// Issue 9: a /20 swept every 30 minutes overruns a 100,000 queries/day
/// budget: `lists --health` says how often the list is swept instead.
#[test]
fn lists_health_says_how_a_budget_stretches_the_sweeps() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &rbl,
        &["dyn-test", "bl-test"],
        "[[targets]]\ntarget = \"10.20.0.0/20\"\n[daemon]\nsweep = \"30m\"\n[lists.override.dyn-test]\ndaily_limit = 100000\n",
    );
    let o = rblwatch(&["lists", "--health", "-C", cfg.to_str().unwrap()]);
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("budget dyn-test: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("swept every 1h 30m")
            && line.contains("100,000 queries/day")
            && line.contains("4,096 targets"),
        "{line}"
    );
    assert!(!out.contains("budget bl-test"), "{out}");
    let o = rblwatch(&["lists", "--health", "--json", "-C", cfg.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let dyn_ = v["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "dyn-test")
        .unwrap();
    assert_eq!(dyn_["budget"]["every"], 3);
    assert!(dyn_["budget"]["daily_queries"].as_u64().unwrap() <= 90_000);
}
