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

#[test]
fn impact_replies_and_audits_are_checked_with_line_and_key() {
    let c = parse("").unwrap();
    assert_eq!(c.impact.window, Duration::from_secs(3600));
    assert_eq!(c.impact.threshold, 5);
    assert_eq!(
        c.impact.backscatter_lists,
        ["backscatterer", "sem-backscatter"]
    );
    assert!(c.impact.reply_dirs.is_empty() && c.audits.is_empty());
    let full = "[impact]\nwindow = \"10m\"\nthreshold = 0\nbackscatter_lists = [\"backscatterer\"]\n\n[replies]\ndirs = []\n\n[[audits]]\nmta = \"postfix\"\n\n[[audits]]\nname = \"mx2\"\nmta = \"exim\"\ncommand = [\"exim4\", \"-C\", \"/etc/exim4/exim4.conf\"]\ninterval = \"1h\"\ntimeout = \"5s\"\n";
    let c = parse(full).unwrap();
    assert_eq!(c.impact.window, Duration::from_secs(600));
    assert_eq!(c.audits[0].name, "postfix");
    assert_eq!(c.audits[0].command, ["postconf"]);
    assert_eq!(
        c.audits[0].interval,
        Schedule::Every(Duration::from_secs(6 * 3600))
    );
    assert_eq!(c.audits[1].timeout, Duration::from_secs(5));
    for table in ["[impact]", "[replies]", "[[audits]]"] {
        let text = full.replacen(table, &format!("{table}\nbogus_key = 1"), 1);
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("bogus_key"), "{table}: {e}");
    }
    for (text, line, key) in [
        ("[impact]\nwindow = \"0s\"\n", 2, "impact.window"),
        ("[impact]\nwindow = \"90d\"\n", 2, "impact.window"),
        ("[impact]\nthreshold = -1\n", 2, "impact.threshold"),
        (
            "[impact]\nbackscatter_lists = [\"backscatterer\", \"nope\"]\n",
            2,
            "impact.backscatter_lists",
        ),
        (
            "[replies]\ndirs = [\"/nonexistent/replies.d\"]\n",
            2,
            "replies.dirs",
        ),
        (
            "[[audits]]\nmta = \"postfix\"\n[[audits]]\nname = \"postfix\"\nmta = \"postfix\"\n",
            4,
            "audits[1]",
        ),
        (
            "[[audits]]\nmta = \"postfix\"\ncommand = []\n",
            3,
            "audits[0].command",
        ),
        (
            "[[audits]]\nname = \"a b\"\nmta = \"postfix\"\n",
            2,
            "audits[0].name",
        ),
        (
            "[[audits]]\nmta = \"postfix\"\ninterval = \"0s\"\n",
            3,
            "audits[0].interval",
        ),
        (
            "[[sources]]\nname = \"x\"\nkind = \"exim_log\"\n",
            2,
            "kind exim_log needs `path`",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("test.toml:{line}:")) && e.contains(key),
            "{text:?}: {e}"
        );
    }
    let e = parse("[[audits]]\nmta = \"sendmail\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sendmail") && e.starts_with("test.toml:2:"),
        "{e}"
    );
}

#[test]
fn a_reply_directory_adds_rules_checked_against_the_lists() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("local.toml"),
        "[[reply]]\nid = \"local-rule\"\npattern = '(?i)go away'\nmeaning = \"policy\"\nsource = \"https://example.com/\"\nexamples = [\"550 go away\"]\n",
    )
    .unwrap();
    let text = format!(
        "[replies]\ndirs = [{:?}]\n",
        dir.path().display().to_string()
    );
    let c = parse(&text).unwrap();
    let r = c.reply_catalog(&c.catalog().unwrap()).unwrap();
    assert_eq!(r.rules()[0].id, "local-rule");
    std::fs::write(
        dir.path().join("local.toml"),
        "[[reply]]\nid = \"local-rule\"\npattern = '(?i)go away'\nmeaning = \"ip-blocklist\"\nlist = \"no-such-list\"\nsource = \"https://example.com/\"\nexamples = [\"550 go away\"]\n",
    )
    .unwrap();
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains("no-such-list") && e.contains("replies"), "{e}");
}

#[test]
fn dmarc_feeds_and_discover_are_checked_and_the_imap_password_never_prints() {
    let c = parse("[[feeds]]\nkind = \"dmarc\"\nimap = { host = \"imap.example.com\", user = \"dmarc\", password = \"zzimappwzz\" }\n\n[discover]\nfrom = [\"dmarc\"]\nmax = 3\n").unwrap();
    let f = &c.feeds[0];
    assert_eq!(f.name, "dmarc");
    match &f.mailbox {
        crate::config::DmarcMailbox::Imap(i) => {
            assert_eq!(
                (i.port, i.mailbox.as_str(), i.tls_name.as_str()),
                (993, "INBOX", "imap.example.com")
            );
            assert_eq!(i.password.expose(), "zzimappwzz");
        }
        m => panic!("{m:?}"),
    }
    assert_eq!(f.interval, Schedule::Every(Duration::from_secs(3600)));
    assert_eq!(
        (c.discover.from.clone(), c.discover.max),
        (vec![crate::config::DiscoverFrom::Dmarc], 3)
    );
    assert!(!format!("{c:?}").contains("zzimappwzz"));
    for (bad, want) in [
        ("[[feeds]]\nkind = \"dmarc\"\n", "exactly one of `maildir` or `imap`"),
        ("[[feeds]]\nkind = \"snds\"\n", "only \"dmarc\" feeds are built so far"),
        ("[[feeds]]\nkind = \"rss\"\nmaildir = \"m\"\n", "not a feed kind"),
        ("[[feeds]]\nkind = \"dmarc\"\nmaildir = \"m\"\n[[feeds]]\nkind = \"dmarc\"\nmaildir = \"n\"\n", "configured twice"),
        ("[discover]\nfrom = [\"snds\"]\n", "not built yet"),
        ("[[feeds]]\nkind = \"dmarc\"\nmaildir = \"m\"\nmax_report_bytes = 1\n", "out of range"),
    ] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains(want), "{bad}: {e}");
    }
}
