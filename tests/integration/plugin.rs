//! `rblwatch check --nagios` as a monitoring plugin (issue 22 point 5): threshold
//! ranges of the Monitoring Plugins guidelines, UNKNOWN for argument errors,
//! nothing on stderr, long output, the real resolver address, zones for
//! `--lists`, `-H` host names resolved to their addresses; and a real Icinga 2
//! running the shipped CheckCommand.

use std::process::{Command, Output};

use crate::util::{rblwatch, stderr, stdout, write_config, Rbldnsd};

fn nagios(cfg: &str, args: &[&str]) -> Output {
    let mut a = vec!["check", "-C", cfg, "--nagios"];
    a.extend_from_slice(args);
    rblwatch(&a)
}

/// The status line and its perfdata, as a Nagios 4 core splits plugin output
/// (first line: text `|` perfdata; further lines: long output, until a `|`).
fn parse_plugin_output(out: &str) -> (String, String, Vec<String>) {
    let mut lines = out.lines();
    let first = lines.next().unwrap_or_default();
    let (text, perf) = first.split_once('|').unwrap_or((first, ""));
    let long: Vec<String> = lines.map(str::to_string).collect();
    (text.trim().to_string(), perf.trim().to_string(), long)
}

#[test]
fn thresholds_are_plugin_ranges() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &rbl, &["bl-test"], "");
    let c = cfg.to_str().unwrap();
    let two = ["192.0.2.1", "198.51.100.9"];
    // (args, targets, exit, word)
    let cases: &[(&[&str], &[&str], i32, &str)] = &[
        // "1:3": fewer than 1 is outside; 0 listings warn
        (&["-w", "1:3", "-c", "~:5"], &["192.0.2.200"], 1, "WARNING"),
        // "@1:3": inside alerts
        (&["-w", "@1:3", "-c", "5"], &two, 1, "WARNING"),
        (&["-w", "@1:3", "-c", "5"], &["192.0.2.200"], 0, "OK"),
        // "~:1": more than 1 is critical
        (&["-w", "~:0", "-c", "~:1"], &two, 2, "CRITICAL"),
        // "-w 1": warn at more than one listing, so one is OK
        (&["-w", "1", "-c", "5"], &["192.0.2.1"], 0, "OK"),
        (&["-w", "1", "-c", "5"], &two, 1, "WARNING"),
        // "2:" as critical: fewer than 2 is critical
        (&["-w", "5", "-c", "2:"], &two, 0, "OK"),
        (&["-w", "5", "-c", "2:"], &["192.0.2.1"], 2, "CRITICAL"),
        // the defaults (0, 0): any listing is critical
        (&[], &["192.0.2.1"], 2, "CRITICAL"),
        (&[], &["192.0.2.200"], 0, "OK"),
    ];
    for (args, targets, code, word) in cases {
        let mut a: Vec<&str> = args.to_vec();
        a.extend_from_slice(targets);
        let o = nagios(c, &a);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(*code), "{args:?} {targets:?}: {out}");
        assert!(
            out.starts_with(&format!("RBL {word} - ")),
            "{args:?}: {out}"
        );
    }
    // perfdata carries the ranges as given (canonical form)
    let o = nagios(c, &["-w", "@1:3", "-c", "0:5", "192.0.2.1", "198.51.100.9"]);
    let (_, perf, _) = parse_plugin_output(&stdout(&o));
    assert!(perf.starts_with("listings=2;@1:3;5;0; "), "{perf}");
}

#[test]
fn argument_errors_are_unknown_with_a_status_line_and_no_stderr() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &rbl, &["bl-test"], "");
    let c = cfg.to_str().unwrap();
    for (args, says) in [
        (
            vec!["-w", "20:10", "192.0.2.1"],
            "start is greater than end",
        ),
        (vec!["-c", "lots", "192.0.2.1"], "invalid threshold range"),
        (vec!["--no-such-flag", "192.0.2.1"], "--no-such-flag"),
        (vec!["999.1.1.1"], "invalid IPv4 address"),
        (
            vec!["--resolver", "not-an-address", "192.0.2.1"],
            "not-an-address",
        ),
        (vec!["--timeout", "soon", "192.0.2.1"], "soon"),
        (vec!["--lists", "no-such-list", "192.0.2.1"], "no-such-list"),
    ] {
        let o = nagios(c, &args);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {out}{}", stderr(&o));
        assert!(out.starts_with("RBL UNKNOWN - "), "{args:?}: {out}");
        assert!(out.contains(says), "{args:?}: {out}");
        assert_eq!(out.lines().count(), 1, "{args:?}: {out}");
        assert_eq!(stderr(&o), "", "{args:?}: nothing on stderr");
    }
    // a missing config file too
    let o = rblwatch(&[
        "check",
        "-C",
        "/nonexistent/rblwatch.toml",
        "--nagios",
        "192.0.2.1",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).starts_with("RBL UNKNOWN - "), "{}", stdout(&o));
    assert_eq!(stderr(&o), "");
    // without --nagios clap's usual usage error stays (exit 2, stderr)
    let o = rblwatch(&["check", "-C", c, "-w", "20:10", "192.0.2.1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("start is greater than end"),
        "{}",
        stderr(&o)
    );
    // --help is still help
    let o = rblwatch(&["check", "--nagios", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("plugin range syntax"), "{}", stdout(&o));
}

#[test]
fn nothing_on_stderr_unless_verbose() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    // a dead list makes the engine log "list is not healthy" at WARN
    let cfg = write_config(dir.path(), &rbl, &["bl-test", "dead-test"], "");
    let c = cfg.to_str().unwrap();
    let o = nagios(c, &["192.0.2.1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert_eq!(stderr(&o), "", "stdout: {}", stdout(&o));
    // RUST_LOG does not bring the log back either: only -v does
    let o = Command::new(env!("CARGO_BIN_EXE_rblwatch"))
        .args(["check", "-C", c, "--nagios", "192.0.2.1"])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(stderr(&o), "");
    let o = nagios(c, &["-v", "192.0.2.1"]);
    assert!(stderr(&o).contains("not healthy"), "{}", stderr(&o));
    // and the unhealthy list is in the long output instead
    let (text, _, long) = parse_plugin_output(&stdout(&o));
    assert!(text.contains("lists not healthy: dead-test dead"), "{text}");
    assert!(
        long.iter().any(|l| l.starts_with("list dead-test dead: ")),
        "{long:?}"
    );
}

#[test]
fn long_output_has_one_line_per_listing() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &rbl, &["bl-test", "dbl-test"], "");
    let c = cfg.to_str().unwrap();
    let targets = [
        "192.0.2.1",
        "198.51.100.9",
        "203.0.113.10",
        "203.0.113.11",
        "192.0.2.66",
        "evil.example",
        "192.0.2.200",
    ];
    let o = nagios(c, &targets);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let (text, perf, long) = parse_plugin_output(&out);
    // the status line stays short: three listings named, the rest counted
    assert!(
        text.starts_with("RBL CRITICAL - 6 listings: 192.0.2.1 on bl-test, 192.0.2.66 on bl-test, 198.51.100.9 on bl-test, and 3 more"),
        "{text}"
    );
    assert!(out.lines().next().unwrap().len() < 300, "{out}");
    assert!(perf.starts_with("listings=6;0;0;0; "), "{perf}");
    // one line per listing, with meaning, TXT and delisting link
    let l = long
        .iter()
        .find(|l| l.starts_with("192.0.2.1 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        l,
        "192.0.2.1 listed on bl-test (bl.test): second dataset; spam source; TXT: Spam source 192.0.2.1 (code 4) / Second dataset lists 192.0.2.1 too; delist: http://bl.test/remove?ip=192.0.2.1"
    );
    assert!(
        long.iter()
            .any(|l| l.starts_with("evil.example listed on dbl-test (dbl.test): phishing domain")),
        "{long:?}"
    );
    assert_eq!(
        long.iter().filter(|l| l.contains(" listed on ")).count(),
        6,
        "{long:?}"
    );
    // a `|` in a TXT record must not start perfdata: only the status line has one
    assert_eq!(out.matches('|').count(), 1, "{out}");
    assert!(long.iter().any(|l| l.contains("<script>")), "{long:?}");
    assert_eq!(stderr(&o), "");
}

#[test]
fn errors_name_the_real_resolver_address_and_port() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &rbl, &["bl-test", "dbl-test"], "");
    let dead = crate::util::free_udp_port();
    let at = format!("127.0.0.1:{dead}");
    let o = nagios(cfg.to_str().unwrap(), &["--resolver", &at, "192.0.2.1"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    let (text, _, _) = parse_plugin_output(&out);
    assert!(
        text.starts_with("RBL UNKNOWN - resolver unusable: "),
        "{text}"
    );
    assert!(text.contains(&format!("{at} does not answer")), "{text}");
    assert!(text.contains(&format!("port {dead} to it")), "{text}");
    assert!(!text.contains("port 53"), "{text}");
    // the table says it too
    let o = rblwatch(&[
        "check",
        "-C",
        cfg.to_str().unwrap(),
        "--resolver",
        &at,
        "192.0.2.1",
    ]);
    assert!(
        stdout(&o).contains(&format!("port {dead}")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn lists_accepts_zones_as_well_as_ids() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &rbl, &["bl-test"], "");
    let c = cfg.to_str().unwrap();
    // zones, as check_rbl's -s takes them (any case, trailing dot), mixed with an id
    let o = nagios(
        c,
        &["--lists", "BL.test.,dbl.test", "192.0.2.1", "evil.example"],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("192.0.2.1 on bl-test") && out.contains("evil.example on dbl-test"),
        "{out}"
    );
    assert!(out.contains("lists_healthy=2 "), "{out}");
    // an id and its zone name one list once
    let o = rblwatch(&[
        "check",
        "-C",
        c,
        "--json",
        "--lists",
        "bl-test,bl.test",
        "192.0.2.1",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["lists"].as_array().unwrap().len(), 1, "{v}");
    // an unknown zone says so
    let o = nagios(c, &["--lists", "zen.example.invalid", "192.0.2.1"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stdout(&o).contains("unknown list id or zone \"zen.example.invalid\""),
        "{}",
        stdout(&o)
    );
}

/// Runs the binary in a private mount namespace whose /etc/hosts is `hosts` and
/// whose resolv.conf points at loopback (nothing listens: no lookup leaves the host).
fn with_private_hosts(hosts: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("hosts");
    std::fs::write(&h, hosts).unwrap();
    let r = dir.path().join("resolv.conf");
    std::fs::write(&r, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n").unwrap();
    let script = format!(
        "mount --make-rprivate / && mount --bind {} /etc/hosts && mount --bind {} /etc/resolv.conf && exec \"$0\" \"$@\"",
        h.display(),
        r.display()
    );
    Command::new("unshare")
        .args([
            "--mount",
            "--",
            "sh",
            "-c",
            &script,
            env!("CARGO_BIN_EXE_rblwatch"),
        ])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn host_names_are_checked_by_their_a_and_aaaa_addresses() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &rbl, &["bl-test", "dbl-test"], "");
    let c = cfg.to_str().unwrap();
    let hosts =
        "127.0.0.1 localhost\n192.0.2.1 mail.example.test\n2001:db8:beef::1 mail.example.test\n";
    let o = with_private_hosts(
        hosts,
        &["check", "-C", c, "--nagios", "-H", "mail.example.test"],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{}", stderr(&o));
    let (text, _, long) = parse_plugin_output(&out);
    assert!(
        text.starts_with(
            "RBL CRITICAL - 2 listings: 192.0.2.1 on bl-test, 2001:db8:beef::1 on bl-test"
        ),
        "{text}"
    );
    assert!(
        long.iter()
            .any(|l| l == "host mail.example.test resolves to 192.0.2.1, 2001:db8:beef::1"),
        "{long:?}"
    );
    // the name itself is not queried on the domain list: -H checks addresses
    assert!(!out.contains("dbl-test"), "{out}");
    // an IP as -H is itself; a name given as a target stays a domain
    let o = with_private_hosts(
        hosts,
        &[
            "check",
            "-C",
            c,
            "--json",
            "-H",
            "198.51.100.9",
            "mail.example.test",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let targets: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert!(
        targets.contains(&"198.51.100.9") && targets.contains(&"mail.example.test"),
        "{targets:?}"
    );
    assert!(!targets.contains(&"192.0.2.1"), "{targets:?}");
    // a name that does not resolve is UNKNOWN, saying which
    let o = with_private_hosts(
        hosts,
        &["check", "-C", c, "--nagios", "-H", "nosuch.example.test"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("RBL UNKNOWN - cannot resolve host \"nosuch.example.test\""),
        "{}",
        stdout(&o)
    );
}

/// Icinga 2's state file: netstrings (`len:json,`) of `{"name","type","update"}`.
fn icinga_state(text: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((len, tail)) = rest.split_once(':') {
        let Ok(n) = len.parse::<usize>() else { break };
        out.push(serde_json::from_str(&tail[..n]).unwrap());
        rest = tail[n..].strip_prefix(',').unwrap_or(&tail[n..]);
    }
    out
}

/// Issue 22: under Icinga 2, argument errors were CRITICAL without a status
/// line, and a WARN log line on stderr became the service's output. A private
/// Icinga 2 (its own directories, on loopback, in a private mount namespace
/// whose /etc/hosts names the mail server) runs the shipped CheckCommand.
#[test]
fn icinga2_runs_the_shipped_check_command() {
    assert!(
        std::path::Path::new("/usr/sbin/icinga2").exists(),
        "icinga2 is not installed: run `scripts/test` (it apt-installs icinga2)"
    );
    let rbl = Rbldnsd::start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    for sub in ["ok", "dead", "lib", "log", "cache", "spool", "run", "perf"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    let cfg = write_config(&d.join("ok"), &rbl, &["bl-test", "dbl-test"], "");
    let cfg_dead = write_config(&d.join("dead"), &rbl, &["bl-test", "dead-test"], "");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(root.join("contrib/icinga2/rblwatch.conf")).unwrap();
    assert!(shipped.contains("\"/usr/local/bin/rblwatch\""), "{shipped}");
    let command = shipped.replace("/usr/local/bin/rblwatch", env!("CARGO_BIN_EXE_rblwatch"));
    let perf = d.join("perf");
    let conf = format!(
        r#"include <itl>
{command}
object CheckerComponent "checker" {{ }}
object PerfdataWriter "perfdata" {{
  service_temp_path = "{perf}/service.tmp"
  service_perfdata_path = "{perf}/service-perfdata"
  host_temp_path = "{perf}/host.tmp"
  host_perfdata_path = "{perf}/host-perfdata"
  rotation_interval = 1s
}}
object Host "mx" {{
  check_command = "dummy"
  enable_active_checks = false
  address = "mail.example.test"
}}
template Service "rbl" {{
  host_name = "mx"
  check_command = "rblwatch"
  check_interval = 2s
  retry_interval = 2s
  vars.rblwatch_config = "{cfg}"
}}
object Service "host-listed" {{
  import "rbl"
  vars.rblwatch_warning = "@1:3"
  vars.rblwatch_critical = "~:5"
}}
object Service "targets-clear" {{
  import "rbl"
  vars.rblwatch_host = ""
  vars.rblwatch_targets = [ "192.0.2.200", "clean.example" ]
  vars.rblwatch_lists = [ "bl.test", "dbl.test" ]
}}
object Service "dead-list" {{
  import "rbl"
  vars.rblwatch_config = "{cfg_dead}"
  vars.rblwatch_host = "192.0.2.1"
}}
object Service "bad-range" {{
  import "rbl"
  vars.rblwatch_warning = "20:10"
}}
"#,
        perf = perf.display(),
        cfg = cfg.display(),
        cfg_dead = cfg_dead.display(),
    );
    let conf_path = d.join("icinga2.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let p = |s: &str| d.join(s).display().to_string();
    let defines = [
        format!("ConfigDir={}", d.display()),
        format!("DataDir={}", p("lib")),
        format!("LogDir={}", p("log")),
        format!("CacheDir={}", p("cache")),
        format!("SpoolDir={}", p("spool")),
        format!("InitRunDir={}", p("run")),
        format!("PidPath={}", p("run/icinga2.pid")),
        format!("StatePath={}", p("lib/icinga2.state")),
        format!("ObjectsPath={}", p("cache/icinga2.debug")),
        format!("VarsPath={}", p("cache/icinga2.vars")),
        format!("ModAttrPath={}", p("lib/modified-attributes.conf")),
        "RunAsUser=root".to_string(),
        "RunAsGroup=root".to_string(),
    ];
    let mut args: Vec<String> = vec!["-c".into(), conf_path.display().to_string()];
    for def in &defines {
        args.push("-D".into());
        args.push(def.clone());
    }
    // the shipped definition validates
    let v = Command::new("icinga2")
        .args(["daemon", "-C"])
        .args(&args)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", stdout(&v));
    // a private /etc/hosts (the host's name) and resolv.conf (loopback only)
    std::fs::write(
        d.join("hosts"),
        "127.0.0.1 localhost\n192.0.2.1 mail.example.test\n2001:db8:beef::1 mail.example.test\n",
    )
    .unwrap();
    std::fs::write(d.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    let script = format!(
        "mount --make-rprivate / && mount --bind {} /etc/hosts && mount --bind {} /etc/resolv.conf && exec icinga2 daemon \"$@\"",
        p("hosts"),
        p("resolv.conf")
    );
    let log = std::fs::File::create(d.join("icinga2.out")).unwrap();
    let mut child = Command::new("unshare")
        .args(["--mount", "--", "sh", "-c", &script, "icinga2"])
        .args(&args)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let services = ["host-listed", "targets-clear", "dead-list", "bad-range"];
    // every service checked once: its line in a rotated perfdata file
    let seen = || {
        let mut text = String::new();
        for e in std::fs::read_dir(&perf).ok()?.flatten() {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
        services
            .iter()
            .all(|s| text.contains(&format!("SERVICEDESC::{s}\t")))
            .then_some(())
    };
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::util::wait_for(
            "a check result of every service",
            std::time::Duration::from_secs(60),
            seen,
        )
    }));
    // stop it: Icinga writes its state file (every check result) as it shuts down
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let out = std::fs::read_to_string(d.join("icinga2.out")).unwrap_or_default();
    if let Err(e) = waited {
        eprintln!("icinga2 output:\n{out}");
        std::panic::resume_unwind(e);
    }
    assert!(status.success(), "{status:?}\n{out}");
    let state = icinga_state(&std::fs::read_to_string(p("lib/icinga2.state")).unwrap());
    let result = |name: &str| -> serde_json::Value {
        state
            .iter()
            .find(|o| o["type"] == "Service" && o["name"] == format!("mx!{name}"))
            .map(|o| o["update"]["last_check_result"].clone())
            .unwrap_or_else(|| panic!("no {name} in the state file"))
    };
    // -H host name: its A and AAAA addresses, WARNING inside @1:3, one long-output line each
    let r = result("host-listed");
    let output = r["output"].as_str().unwrap();
    assert_eq!(r["exit_status"], 1, "{r}");
    assert!(
        output.starts_with(
            "RBL WARNING - 2 listings: 192.0.2.1 on bl-test, 2001:db8:beef::1 on bl-test"
        ),
        "{output}"
    );
    let long: Vec<&str> = output.lines().skip(1).collect();
    assert!(
        long.iter()
            .any(|l| l.starts_with("192.0.2.1 listed on bl-test (bl.test): ")),
        "{output}"
    );
    assert!(
        long.iter()
            .any(|l| l.starts_with("2001:db8:beef::1 listed on bl-test (bl.test): ")),
        "{output}"
    );
    assert_eq!(r["performance_data"][0], "listings=2;@1:3;~:5;0;", "{r}");
    // targets and zones: OK
    let r = result("targets-clear");
    assert_eq!(r["exit_status"], 0, "{r}");
    assert!(
        r["output"]
            .as_str()
            .unwrap()
            .starts_with("RBL OK - 2 targets clear on 2 healthy lists"),
        "{r}"
    );
    // a dead list: the status line is rblwatch's, not a log line from stderr
    let r = result("dead-list");
    let output = r["output"].as_str().unwrap();
    assert_eq!(r["exit_status"], 2, "{r}");
    assert!(
        output.starts_with("RBL CRITICAL - 1 listing: 192.0.2.1 on bl-test"),
        "{output}"
    );
    assert!(
        !output.contains("WARN") && !output.contains("rblwatch::"),
        "{output}"
    );
    assert!(
        output
            .lines()
            .any(|l| l.starts_with("list dead-test dead: ")),
        "{output}"
    );
    // a bad range: UNKNOWN with a status line
    let r = result("bad-range");
    assert_eq!(r["exit_status"], 3, "{r}");
    let output = r["output"].as_str().unwrap();
    assert!(
        output.starts_with("RBL UNKNOWN - invalid arguments: "),
        "{output}"
    );
    assert!(output.contains("start is greater than end"), "{output}");
}
