//! Every shipped configuration and catalog file parses; `config check` works on files.

use crate::util::{fixtures, rblwatch, stderr, stdout};

#[test]
fn every_shipped_config_passes_config_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for e in std::fs::read_dir(root).unwrap().chain(
        std::fs::read_dir(root.join("examples"))
            .into_iter()
            .flatten(),
    ) {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".toml") && name.starts_with("rblwatch") {
            let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
            assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
            assert!(stdout(&o).contains("OK"), "{}", stdout(&o));
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn every_catalog_file_parses() {
    for dir in [
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lists.d"),
        fixtures().join("lists.d"),
    ] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&p).unwrap();
                let lists = rblwatch::catalog::parse_file(&p.display().to_string(), &text).unwrap();
                assert!(!lists.is_empty(), "{}", p.display());
            }
        }
    }
}

#[test]
fn config_check_rejects_unknown_key_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "[resolver]\ntimeout = \"2s\"\ntimout = \"3s\"\n").unwrap();
    let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("bad.toml:3") && e.contains("timout"), "{e}");
}

/// Issue 13: `config check` renders every user template against a sample
/// event of every kind and refuses a broken one with file and line; it also
/// refuses, with the key, the values that used to panic, hang or be accepted.
#[test]
fn config_check_refuses_broken_templates_and_insane_values() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("t.j2");
    std::fs::write(
        &tpl,
        "{\"a\": 1}\n{% for e in events %}\n{{ e.summary|nosuchfilter }}\n{% endfor %}\n",
    )
    .unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        format!("[[alerts]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\ntemplate = {:?}\n", tpl.display().to_string()),
    )
    .unwrap();
    let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(e.contains("t.j2:3") && e.contains("nosuchfilter"), "{e}");

    for (text, key) in [
        ("[daemon]\nsweep = \"18446744073709551615s18446744073709551615s\"\n", "daemon.sweep"),
        ("[daemon]\nsweep = \"213503982334602d\"\n", "daemon.sweep"),
        ("[daemon]\nsweep = \"1ms\"\n", "daemon.sweep"),
        ("[resolver]\nretries = 4294967295\n", "resolver.retries"),
        ("[daemon]\nconfirm_listed = -1\n", "confirm_listed"),
        ("[lists]\nmax_qps = -3\n", "lists.max_qps"),
        ("[web]\ntemplates_dir = \"/nonexistent/dir\"\n", "web.templates_dir"),
        ("[[hooks]]\nname = \"h\"\non = [\"listed\"]\ncommand = [\"/nonexistent/hook\"]\n", "hooks[0].command"),
        ("[[sources]]\nname = \"s\"\nkind = \"command\"\ncommand = [\"true\"]\n[[spikes]]\nmetric = \"s.value\"\nkind = \"ndr_spike\"\nabove = nan\n", "spikes[0].above"),
        ("[[sources]]\nname = \"s\"\nkind = \"command\"\ncommand = [\"true\"]\n[[spikes]]\nmetric = \"s.value\"\nkind = \"ndr_spike\"\nabove = 5\nclear_ratio = -1\n", "spikes[0].clear_ratio"),
    ] {
        std::fs::write(&p, text).unwrap();
        let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{text}: {e}");
        assert!(e.contains(key) && e.contains("c.toml:"), "{text}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

/// Issue 21 point 6: `config check` refuses a template naming an unknown
/// variable (file and line), and one whose body would be over the channel's
/// cap, quickly and without building the body (it used to render 100 MB).
#[test]
fn config_check_refuses_unknown_template_variables_and_oversized_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("t.j2");
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        format!("[[alerts]]\nname = \"m\"\nkind = \"email\"\nsmtp_host = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\ntemplate = {:?}\n", tpl.display().to_string()),
    )
    .unwrap();
    std::fs::write(&tpl, "Alert: {{ subject }}\n{{ no_such_variable }}\n").unwrap();
    let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}{e}", stdout(&o));
    assert!(e.contains("t.j2:2") && e.contains("undefined"), "{e}");

    std::fs::write(
        &tpl,
        "{% for i in range(100000) %}{{ \"x\" * 1000 }}{% endfor %}\n",
    )
    .unwrap();
    let t0 = std::time::Instant::now();
    let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}{e}", stdout(&o));
    assert!(e.contains("t.j2") && e.contains("cap of 1024 KiB"), "{e}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t0.elapsed()
    );
}

/// Issue 19: `config check` lists every problem of the file at once, one per
/// line as `file:line: message` in the file's order, then how many (it used
/// to stop at the first).
#[test]
fn config_check_lists_every_problem_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        "[resolver]\nretries = 99\nnameservers = []\n\n[lists]\nuse = []\n\n[daemon]\nsweep = \"0 0 30 2 *\"\n\n[[sources]]\nname = \"q\"\nkind = \"command\"\ncommand = [\"/nonexistent/queue-size\"]\n\n[[alerts]]\nname = \"mail\"\nkind = \"email\"\nsmtp_host = \"127.0.0.1\"\nfrom = \"not an address\"\nto = [\"ops@example.com\"]\npassword = 424242424242\n",
    )
    .unwrap();
    let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let e = stderr(&o);
    let lines: Vec<&str> = e.lines().collect();
    let want = [
        (2, "resolver.retries"),
        (3, "resolver.nameservers"),
        (6, "lists.use"),
        (9, "daemon.sweep"),
        (14, "sources[0].command"),
        (20, "alerts[0].from"),
        (22, "password"),
    ];
    assert_eq!(lines.len(), want.len() + 1, "{e}");
    for (l, (line, key)) in lines.iter().zip(want) {
        assert!(
            l.contains(&format!("c.toml:{line}:")) && l.contains(key),
            "{line} {key}: {e}"
        );
    }
    assert!(lines[want.len()].contains("7 problems"), "{e}");
    assert!(e.contains("omit the key for the system resolver"), "{e}");
    // the numeric password is not in the output
    assert!(!e.contains("424242"), "{e}");
}

/// Issue 21: the database check of `config check` names the file and the
/// line of `daemon.database` (it named neither).
#[test]
fn config_check_places_an_unwritable_database_on_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        "[resolver]\ntimeout = \"1s\"\n\n[daemon]\ndatabase = \"/proc/rblwatch/rblwatch.db\"\n",
    )
    .unwrap();
    let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(
        e.lines()
            .next()
            .is_some_and(|l| l.contains("c.toml:5: daemon.database") && l.contains("not writable")),
        "{e}"
    );
}

/// Issue 23 follow-up: a broken class-rule file of `[senders] dirs` is a config error
/// reported by `config check` with the others (the directory's line, then the file, its
/// line, the rule and the key), not only when the daemon starts.
#[test]
fn config_check_reports_a_broken_class_rule_file_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("senders.d");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("mine.toml"),
        "[[rule]]\nid = \"newsletter\"\nclass = \"autoreply\"\nheader = \"precedence\"\npattern = \"bulk\"\n\n[[rule]]\nid = \"cron\"\nclass = \"spam\"\nsender = \"^root@\"\n",
    )
    .unwrap();
    let p = dir.path().join("cfg.toml");
    std::fs::write(
        &p,
        format!(
            "[resolver]\ntimeout = \"0s\"\n\n[senders]\ndirs = [{:?}]\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(e.contains("cfg.toml:2: resolver.timeout"), "{e}");
    let want = format!(
        "cfg.toml:5: senders.dirs: {}:9: rule \"cron\", key `class`: unknown class \"spam\"",
        rules.join("mine.toml").display()
    );
    assert!(e.contains(&want), "{e}");
    // fixed, the same file passes
    std::fs::write(
        rules.join("mine.toml"),
        "[[rule]]\nid = \"cron\"\nclass = \"autoreply\"\nsender = \"^root@\"\n",
    )
    .unwrap();
    std::fs::write(
        &p,
        format!("[senders]\ndirs = [{:?}]\n", rules.display().to_string()),
    )
    .unwrap();
    let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}
