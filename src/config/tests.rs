use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("test.toml"), text)
}

#[test]
fn shipped_example_config_is_valid() {
    let text = include_str!("../../rblwatch.example.toml");
    let c = parse(text).unwrap();
    assert_eq!(c.targets.len(), 4);
    assert_eq!(c.daemon.sweep, Schedule::Every(Duration::from_secs(1800)));
}

#[test]
fn empty_config_gives_documented_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.resolver.timeout, Duration::from_secs(2));
    assert_eq!(c.resolver.retries, 1);
    assert_eq!(c.resolver.concurrency, 64);
    assert_eq!(c.daemon.confirm_listed, 2);
    assert_eq!(c.daemon.confirm_clear, 2);
    assert_eq!(c.daemon.retention_days, 400);
    assert_eq!(c.daemon.sample_retention_days, 30);
    assert_eq!(c.daemon.sweep, Schedule::Every(Duration::from_secs(1800)));
}

#[test]
fn unknown_keys_are_rejected_in_every_table_with_file_line_and_key() {
    let base = include_str!("../../rblwatch.example.toml");
    for table in ["[resolver]", "[lists]", "[keys]", "[daemon]", "[[targets]]"] {
        // inject a bogus key right after the table header
        let text = base.replacen(table, &format!("{table}\nbogus_key = 1"), 1);
        let e = parse(&text).unwrap_err();
        let line = text
            .lines()
            .position(|l| l.starts_with("bogus_key"))
            .unwrap()
            + 1;
        let s = e.to_string();
        if table == "[keys]" {
            // keys are free-form names, but must be strings
            assert!(s.contains("string"), "{table}: {s}");
            continue;
        }
        assert!(s.contains("bogus_key"), "{table}: {s}");
        assert!(s.starts_with(&format!("test.toml:{line}:")), "{table}: {s}");
    }
    let e = parse("nonsense = true").unwrap_err().to_string();
    assert!(
        e.contains("nonsense") && e.starts_with("test.toml:1:"),
        "{e}"
    );
}

#[test]
fn malformed_toml_names_file_and_line() {
    let e = parse("[resolver]\ntimeout = \"2s\"\nretries = \n").unwrap_err();
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.to_string().starts_with("test.toml:3:"), "{e}");
}

#[test]
fn bad_values_name_their_key_and_line() {
    let e = parse("[daemon]\nsweep = \"61 * * * *\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("test.toml:2:") && e.contains("daemon.sweep") && e.contains("cron"),
        "{e}"
    );
    let e = parse("[daemon]\nhealth = \"15x\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("daemon.health") && e.contains("unknown unit"),
        "{e}"
    );
    let e = parse("[resolver]\ntimeout = \"soon\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("resolver.timeout"), "{e}");
    let e = parse("[resolver]\nnameservers = [\"1.2.3.4:99999\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("resolver.nameservers"), "{e}");
    let e = parse("[[targets]]\ntarget = \"10.0.0.1\"\n[[targets]]\ntarget = \"999.1.1.1\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("test.toml:4:")
            && e.contains("targets[1].target")
            && e.contains("invalid IPv4"),
        "{e}"
    );
    let e = parse("[[targets]]\ntarget = \"10.0.0.0/8\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("allow_large"), "{e}");
    let e = parse("[lists]\nuse = [\"spamhaus-zen\", \"no-such-list\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no-such-list") && e.starts_with("test.toml:2:"),
        "{e}"
    );
}

const FULL: &str = r#"
[resolver]
timeout = "1s"

[web]
listen = "127.0.0.1:8025"

[alerting]
group_window = "10s"

[[sources]]
name = "mx"
kind = "postfix"

[[probes]]
domain = "example.com"
server = "127.0.0.1:25"

[[spikes]]
metric = "mx.queue_bounces"
kind = "queue_spike"
above = 10

[[hooks]]
name = "h"
on = ["ndr_spike"]
command = ["true"]

[[alerts]]
name = "a"
kind = "webhook"
url = "http://127.0.0.1:9/x"
"#;

#[test]
fn every_table_of_a_full_config_rejects_unknown_keys() {
    parse(FULL).unwrap();
    for table in [
        "[resolver]",
        "[web]",
        "[alerting]",
        "[[sources]]",
        "[[probes]]",
        "[[spikes]]",
        "[[hooks]]",
        "[[alerts]]",
    ] {
        let text = FULL.replacen(table, &format!("{table}\nbogus_key = 1"), 1);
        let line = text
            .lines()
            .position(|l| l.starts_with("bogus_key"))
            .unwrap()
            + 1;
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("bogus_key") && e.starts_with(&format!("test.toml:{line}:")),
            "{table}: {e}"
        );
    }
}

#[test]
fn mail_and_action_values_are_checked() {
    let e = parse(&FULL.replace(
        "metric = \"mx.queue_bounces\"",
        "metric = \"nosuch.queue_bounces\"",
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("spikes[0].metric"), "{e}");
    let e = parse(&FULL.replace("on = [\"ndr_spike\"]", "on = [\"ndr_spik\"]"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("hooks[0].on") && e.contains("ndr_spik"), "{e}");
    let e = parse(&FULL.replace("url = \"http://127.0.0.1:9/x\"", "url = \"ftp://x\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("alerts[0].url"), "{e}");
    let e = parse(&FULL.replace("listen = \"127.0.0.1:8025\"", "listen = \"0.0.0.0:8025\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("web.listen") && e.contains("web.token"), "{e}");
    let e = parse(&FULL.replace("kind = \"postfix\"", "kind = \"sendmail\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sendmail"), "{e}");
}

#[test]
fn secrets_never_print_in_debug_output() {
    let text = FULL
        .replace(
            "url = \"http://127.0.0.1:9/x\"",
            "url = \"http://127.0.0.1:9/x?token=zzsecretzz\"",
        )
        .replace("[web]", "[web]\ntoken = \"zzwebtokenzz-1234567\"");
    let c = parse(&text).unwrap();
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("zzsecretzz") && !dbg.contains("zzwebtokenzz"),
        "{dbg}"
    );
}
