use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
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
    assert_eq!(e.first().line, Some(3), "{e}");
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
    let r = c.replies();
    assert_eq!(r.rules()[0].id, "local-rule");
    std::fs::write(
        dir.path().join("local.toml"),
        "[[reply]]\nid = \"local-rule\"\npattern = '(?i)go away'\nmeaning = \"ip-blocklist\"\nlist = \"no-such-list\"\nsource = \"https://example.com/\"\nexamples = [\"550 go away\"]\n",
    )
    .unwrap();
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains("no-such-list") && e.contains("replies"), "{e}");
}

/// Issue 19: every problem of a file at once, each with its line and key, in
/// the file's order (the first error used to end validation), across tables
/// and within one.
#[test]
fn every_error_of_a_file_is_reported_at_once_in_file_order() {
    let text = "[resolver]\nretries = 99\n\n[daemon]\nsweep = \"1ms\"\nhealth = \"zz\"\n\n[[targets]]\ntarget = \"999.1.1.1\"\n\n[web]\nbogus = 1\n\n[[hooks]]\nname = \"h\"\non = [\"nope\"]\ncommand = [\"/nonexistent/hook\"]\n\n[[alerts]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"ftp://x\"\n";
    let e = parse(text).unwrap_err();
    let got: Vec<(Option<usize>, &str)> =
        e.all().iter().map(|e| (e.line, e.msg.as_str())).collect();
    let want = [
        (2, "resolver.retries"),
        (5, "daemon.sweep"),
        (6, "daemon.health"),
        (9, "targets[0].target"),
        (12, "bogus"),
        (16, "hooks[0].on"),
        (17, "hooks[0].command"),
        (22, "alerts[0].url"),
    ];
    assert_eq!(got.len(), want.len(), "{e}");
    for ((line, msg), (wline, key)) in got.iter().zip(want) {
        assert!(
            *line == Some(wline) && msg.contains(key),
            "{wline} {key}: {e}"
        );
    }
    // shown one per line, `file:line: message`, like a compiler's
    let shown = e.to_string();
    assert_eq!(shown.lines().count(), want.len(), "{shown}");
    assert!(
        shown.lines().all(|l| l.starts_with("test.toml:")),
        "{shown}"
    );
    // within one table, a bad type does not hide the next problem
    let e = parse("[[alerts]]\nname = \"m\"\nkind = \"email\"\nsmtp_host = 5\nfrom = \"bad\"\nto = [\"b@example.com\"]\npassword = 42\nbogus = 1\n")
        .unwrap_err();
    let lines: Vec<Option<usize>> = e.all().iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(4), Some(5), Some(7), Some(8)], "{e}");
    // an entry that cannot be read does not shift the index of the next
    let e = parse("[[sources]]\nname = \"a\"\nkind = \"nope\"\n\n[[sources]]\nname = \"b\"\nkind = \"command\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nope") && e.contains("sources[1]: kind command needs `command`"),
        "{e}"
    );
    // and a spike on a source that could not be read is not reported again
    let e = parse("[[sources]]\nname = \"a\"\nkind = \"nope\"\n[[spikes]]\nmetric = \"a.x\"\nkind = \"ndr_spike\"\nabove = 1\n")
        .unwrap_err();
    assert_eq!(e.all().len(), 1, "{e}");
}

/// Issue 21: a secret's value never appears in an error, whatever its type
/// or mistake (serde's type error used to quote a numeric password).
#[test]
fn no_secret_value_ever_appears_in_an_error() {
    let email = "[[alerts]]\nname = \"e\"\nkind = \"email\"\nsmtp_host = \"127.0.0.1\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n";
    for (text, key) in [
        (format!("{email}password = 73310042\n"), "password"),
        (format!("{email}password = 73310042.5\n"), "password"),
        ("[web]\ntoken = 73310042733100427\n".to_string(), "token"),
        ("[web]\ntoken = \"7331004\"\n".to_string(), "web.token"),
        ("[keys]\nspamhaus-dqs = 73310042\n".to_string(), "spamhaus-dqs"),
        ("[web]\ntoken = { x = 73310042 }\n".to_string(), "token"),
        (
            "[[alerts]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"https://hooks.example.com:99999/7331004\"\n".to_string(),
            "alerts[0].url",
        ),
        (
            "[[alerts]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"https://hooks.example.com/73 31004\"\n".to_string(),
            "alerts[0].url",
        ),
        (
            "[[sources]]\nname = \"p\"\nkind = \"prometheus\"\nurl = \"http://[7331004/metrics\"\nmetrics = { q = \"q\" }\n".to_string(),
            "sources[0].url",
        ),
    ] {
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(key) && e.starts_with("test.toml:"), "{text}: {e}");
        assert!(!e.contains("7331004") && !e.contains("73 31004"), "{text}: {e}");
    }
}

/// Issue 21: values that used to be accepted although wrong are refused,
/// each with file, line and key.
#[test]
fn values_that_cannot_work_are_refused_with_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().display().to_string();
    let email = |from: &str, to: &str| {
        format!("[[alerts]]\nname = \"e\"\nkind = \"email\"\nsmtp_host = \"127.0.0.1\"\nfrom = {from:?}\nto = [{to:?}]\n")
    };
    let cases = [
        ("[lists]\nuse = []\n".to_string(), 2, "lists.use", "omit the key"),
        (format!("[daemon]\ndatabase = {db_dir:?}\n"), 2, "daemon.database", "is a directory"),
        (
            "[[alerts]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:99999/x\"\n".to_string(),
            4,
            "alerts[0].url",
            "port",
        ),
        (
            "[[alerts]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://example.com/a b\"\n".to_string(),
            4,
            "alerts[0].url",
            "white space",
        ),
        (
            "[[sources]]\nname = \"j\"\nkind = \"http_json\"\nurl = \"http://127.0.0.1:99999/\"\nvalues = { q = \"/q\" }\n".to_string(),
            4,
            "sources[0].url",
            "port",
        ),
        (email("not an address", "b@example.com"), 5, "alerts[0].from", "e-mail address"),
        (email("a@example.com", "b@"), 6, "alerts[0].to", "e-mail address"),
        (
            "[[sources]]\nname = \"c\"\nkind = \"command\"\ncommand = [\"/nonexistent/bin/queue-size\"]\n".to_string(),
            4,
            "sources[0].command",
            "does not exist",
        ),
        (
            "[[sources]]\nname = \"c\"\nkind = \"command\"\ncommand = [\"no-such-program-on-path\"]\n".to_string(),
            4,
            "sources[0].command",
            "does not exist",
        ),
        ("[daemon]\nsweep = \"0 0 30 2 *\"\n".to_string(), 2, "daemon.sweep", "never fires"),
        (
            "[[probes]]\ndomain = \"example.com\"\nserver = \"127.0.0.1\"\ninterval = \"0 0 31 4 *\"\n".to_string(),
            4,
            "probes[0].interval",
            "never fires",
        ),
        (
            "[resolver]\nnameservers = []\n".to_string(),
            2,
            "resolver.nameservers",
            "omit the key for the system resolver",
        ),
    ];
    for (text, line, key, why) in cases {
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("test.toml:{line}: {key}")) && e.contains(why),
            "{text}: {e}"
        );
    }
    // what stays accepted: a database file in that directory, a default
    // program not installed here (a warning), a rare but real date
    let ok = format!("[daemon]\ndatabase = \"{db_dir}/x.db\"\nsweep = \"0 0 29 2 *\"\n[[sources]]\nname = \"q\"\nkind = \"exim\"\n[[alerts]]\nname = \"e\"\nkind = \"email\"\nsmtp_host = \"127.0.0.1\"\nfrom = \"rblwatch <a@example.com>\"\nto = [\"b@example.com\"]\n");
    parse(&ok).unwrap();
}

/// Issue 21: the errors that had no line (a broken catalog or reply
/// directory) or a wrong one (line 1: a quoted override id, an inline
/// override table, a duplicate unnamed audit) are placed on their line.
#[test]
fn every_error_is_placed_on_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.toml"), "garbage = [\n").unwrap();
    let d = dir.path().display().to_string();
    for (text, line, key) in [
        (
            format!("[resolver]\ntimeout = \"1s\"\n[lists]\ndirs = [{d:?}]\n"),
            4,
            "lists.dirs",
        ),
        (
            format!("[resolver]\ntimeout = \"1s\"\n[replies]\ndirs = [{d:?}]\n"),
            4,
            "replies.dirs",
        ),
        (
            "[lists]\nexclude = []\n\n[lists.override.\"nosuch\"]\ndirect = true\n".to_string(),
            4,
            "lists.override.nosuch",
        ),
        (
            "[lists]\nexclude = []\noverride = { nosuch = { direct = true } }\n".to_string(),
            3,
            "lists.override.nosuch",
        ),
        (
            "[[audits]]\nmta = \"postfix\"\n\n[[audits]]\nmta = \"postfix\"\n".to_string(),
            5,
            "audits[1]",
        ),
    ] {
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("test.toml:{line}: {key}")),
            "{text}: {e}"
        );
    }
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
        ("[[feeds]]\nkind = \"snds\"\n", "an snds feed needs `key`"),
        ("[[feeds]]\nkind = \"snds\"\nkey = \"k\"\nmaildir = \"m\"\n", "maildir: not a setting of a snds feed (only of dmarc)"),
        ("[[feeds]]\nkind = \"dmarc\"\nmaildir = \"m\"\nkey = \"k\"\n", "key: not a setting of a dmarc feed (only of snds)"),
        ("[[feeds]]\nkind = \"snds\"\nkey = \"k\"\ntoken_url = \"https://x/\"\n", "token_url: not a setting of a snds feed (only of google_postmaster)"),
        ("[[feeds]]\nkind = \"snds\"\nkey = \"k\"\nbase_url = \"ftp://x/\"\n", "not an http(s) URL"),
        ("[[feeds]]\nkind = \"snds\"\nkey = \"k\"\ndays = 0\n", "out of range"),
        ("[[feeds]]\nkind = \"snds\"\nkey = \"k\"\n[[feeds]]\nkind = \"snds\"\nkey = \"j\"\n", "configured twice"),
        ("[[feeds]]\nkind = \"dmarc\"\nname = \"x\"\nmaildir = \"m\"\n[[feeds]]\nkind = \"snds\"\nname = \"x\"\nkey = \"j\"\n", "configured twice"),
        ("[[feeds]]\nkind = \"google_postmaster\"\n", "needs `service_account`"),
        ("[[feeds]]\nkind = \"rss\"\nmaildir = \"m\"\n", "not a feed kind"),
        ("[[feeds]]\nkind = \"dmarc\"\nmaildir = \"m\"\n[[feeds]]\nkind = \"dmarc\"\nmaildir = \"n\"\n", "configured twice"),
        ("[discover]\nfrom = [\"rss\"]\n", "not a feed kind that reveals senders (dmarc, snds)"),
        ("[[feeds]]\nkind = \"dmarc\"\nmaildir = \"m\"\nmax_report_bytes = 1\n", "out of range"),
    ] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains(want), "{bad}: {e}");
    }
}

#[test]
fn snds_feeds_take_a_secret_key_and_default_to_microsofts_urls() {
    let c = parse("[[feeds]]\nkind = \"snds\"\nkey = \"zzsndskeyzz\"\n\n[discover]\nfrom = [\"dmarc\", \"snds\"]\n").unwrap();
    assert!(c.feeds.is_empty());
    let s = &c.snds[0];
    assert_eq!(s.name, "snds");
    assert_eq!(s.key.expose(), "zzsndskeyzz");
    assert_eq!(
        s.base_url,
        "https://sendersupport.olc.protection.outlook.com/snds/"
    );
    assert_eq!(s.interval, Schedule::Every(Duration::from_secs(4 * 3600)));
    assert_eq!((s.days, s.max_body_bytes), (3, 32 << 20));
    assert_eq!(
        c.discover.from,
        vec![
            crate::config::DiscoverFrom::Dmarc,
            crate::config::DiscoverFrom::Snds
        ]
    );
    assert!(!format!("{c:?}").contains("zzsndskeyzz"));
    let c = parse("[[feeds]]\nkind = \"snds\"\nname = \"ms\"\nkey = \"k\"\nbase_url = \"https://127.0.0.1:8443/snds\"\ninterval = \"30m\"\ndays = 5\n").unwrap();
    assert_eq!(c.snds[0].base_url, "https://127.0.0.1:8443/snds/");
    assert_eq!((c.snds[0].name.as_str(), c.snds[0].days), ("ms", 5));
}

#[test]
fn google_postmaster_feeds_are_checked_and_the_key_never_prints() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    std::fs::write(
        &key,
        "{\"client_email\": \"rblwatch@p.iam.gserviceaccount.com\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nzzkeyzz\\n-----END PRIVATE KEY-----\\n\"}",
    )
    .unwrap();
    let c = parse(&format!(
        "[[targets]]\ntarget = \"example.com\"\n[[feeds]]\nkind = \"google_postmaster\"\nservice_account = \"file:{}\"\n",
        key.display()
    ))
    .unwrap();
    let p = &c.postmaster[0];
    assert_eq!(p.name, "google_postmaster");
    assert_eq!(
        p.domains,
        vec!["example.com".to_string()],
        "the domain targets by default"
    );
    assert_eq!(p.token_url, "https://oauth2.googleapis.com/token");
    assert_eq!(p.api_url, "https://gmailpostmastertools.googleapis.com");
    assert_eq!(
        p.scopes,
        vec!["https://www.googleapis.com/auth/postmaster.traffic.readonly".to_string()]
    );
    assert_eq!((p.days, p.max_body_bytes), (10, 4 << 20));
    assert_eq!(p.interval, Schedule::Every(Duration::from_secs(6 * 3600)));
    assert!(p.service_account.expose().contains("zzkeyzz"));
    assert!(!format!("{c:?}").contains("zzkeyzz"));
    let c = parse(&format!(
        "[[feeds]]\nkind = \"google_postmaster\"\nname = \"gmail\"\nservice_account = \"file:{}\"\ndomains = [\"Mail.Example.com\"]\ntoken_url = \"https://127.0.0.1:8443/token/\"\napi_url = \"https://127.0.0.1:8443\"\ndays = 3\n",
        key.display()
    ))
    .unwrap();
    let p = &c.postmaster[0];
    assert_eq!(
        (p.name.as_str(), p.domains[0].as_str(), p.days),
        ("gmail", "mail.example.com", 3)
    );
    assert_eq!(p.token_url, "https://127.0.0.1:8443/token");
    let sa = format!("service_account = \"file:{}\"\n", key.display());
    for (bad, want) in [
        ("[[feeds]]\nkind = \"google_postmaster\"\ndomains = [\"example.com\"]\n".to_string(), "needs `service_account`"),
        (format!("[[feeds]]\nkind = \"google_postmaster\"\n{sa}"), "no domain to ask about"),
        (format!("[[feeds]]\nkind = \"google_postmaster\"\n{sa}domains = [\"example.com\"]\napi_url = \"http://x\"\n"), "must be an https:// URL"),
        (format!("[[feeds]]\nkind = \"google_postmaster\"\n{sa}domains = [\"example.com\"]\nmaildir = \"m\"\n"), "maildir: not a setting of a google_postmaster feed (only of dmarc)"),
        (format!("[[feeds]]\nkind = \"google_postmaster\"\n{sa}domains = [\"example.com\"]\ndays = 0\n"), "out of range"),
        (format!("[[feeds]]\nkind = \"dmarc\"\nmaildir = \"m\"\nname = \"x\"\n[[feeds]]\nkind = \"google_postmaster\"\nname = \"x\"\n{sa}domains = [\"example.com\"]\n"), "configured twice"),
        (format!("[[feeds]]\nkind = \"snds\"\nkey = \"k\"\nname = \"x\"\n[[feeds]]\nkind = \"google_postmaster\"\nname = \"x\"\n{sa}domains = [\"example.com\"]\n"), "configured twice"),
        ("[[feeds]]\nkind = \"google_postmaster\"\nservice_account = \"{\\\"client_email\\\": \\\"a@b\\\", \\\"private_key\\\": \\\"zzkeyzz\\\"}\"\ndomains = [\"example.com\"]\n".to_string(), "not a PKCS#8 PEM key"),
        ("[[feeds]]\nkind = \"google_postmaster\"\nservice_account = \"zzkeyzz\"\ndomains = [\"example.com\"]\n".to_string(), "not a JSON service-account key"),
    ] {
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains(want), "{bad}: {e}");
        assert!(!e.contains("zzkeyzz"), "{e}");
    }
}

/// Issue 23: `[senders]` is read with defaults, and validated like every
/// other table: each bad value and an unknown key at once, with its line and
/// key, in the file's order.
#[test]
fn senders_are_checked_with_every_error_at_once() {
    let c = parse("").unwrap();
    assert_eq!(c.senders, SendersConf::default());
    assert_eq!(c.senders.window, Duration::from_secs(600));
    assert_eq!(c.senders.max_accounts, 10_000);
    let c = parse("[senders]\nwindow = \"1m\"\naccount_messages = 50\nfactor = 4.0\nclear_after = 2\nmax_accounts = 100\nmynetworks = [\"10.0.0.0/8\", \"192.0.2.7\"]\n").unwrap();
    assert_eq!(
        (
            c.senders.window,
            c.senders.account_messages,
            c.senders.factor,
            c.senders.clear_after,
            c.senders.max_accounts
        ),
        (Duration::from_secs(60), 50, 4.0, 2, 100)
    );
    assert_eq!(c.senders.mynetworks.len(), 2);
    let text = "[senders]\nwindow = \"0s\"\naccount_messages = 0\nfactor = 0.5\nclear_after = 5000\nmax_accounts = 1\nmynetworks = [\"not-a-net\"]\ndirs = [\"/nonexistent/senders.d\"]\nbogus = 1\n";
    let e = parse(text).unwrap_err();
    let got: Vec<(Option<usize>, &str)> =
        e.all().iter().map(|e| (e.line, e.msg.as_str())).collect();
    let want = [
        (2, "senders.window"),
        (3, "senders.account_messages"),
        (4, "senders.factor"),
        (5, "senders.clear_after"),
        (6, "senders.max_accounts"),
        (7, "senders.mynetworks"),
        (8, "senders.dirs"),
        (9, "bogus"),
    ];
    assert_eq!(got.len(), want.len(), "{e}");
    for ((line, msg), (wline, key)) in got.iter().zip(want) {
        assert!(
            *line == Some(wline) && msg.contains(key),
            "{wline} {key}: {e}"
        );
    }
    assert!(
        e.to_string().lines().all(|l| l.starts_with("test.toml:")),
        "{e}"
    );
}

/// A broken `[senders] dirs` rule file is an error of the config, placed on
/// the directory's line and naming the file, its line, the rule and the key;
/// a good one is read once, at load, into the config's class rules.
#[test]
fn senders_rule_files_are_checked_at_load_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(
        dir.path().join("a.toml"),
        "[[rule]]\nid = \"x\"\nclass = \"user\"\nheader = \"precedence\"\npattern = \"(bulk\"\n",
    )
    .unwrap();
    let e = parse(&format!(
        "[resolver]\ntimeout = \"1s\"\n[senders]\ndirs = [{d:?}]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with(&format!(
            "test.toml:4: senders.dirs: {d}/a.toml:5: rule \"x\", key `pattern`: regex parse error"
        )),
        "{e}"
    );
    std::fs::write(
        dir.path().join("a.toml"),
        "[[rule]]\nid = \"x\"\nclass = \"autoreply\"\nheader = \"precedence\"\npattern = \"bulk\"\n",
    )
    .unwrap();
    let c = parse(&format!("[senders]\ndirs = [{d:?}]\n")).unwrap();
    assert_eq!(c.class_rules().rules()[0].id, "x");
    let shipped = crate::classes::ClassRules::shipped().unwrap().rules().len();
    assert_eq!(c.class_rules().rules().len(), shipped + 1);
}
