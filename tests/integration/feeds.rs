//! Receivers' feeds: DMARC aggregate reports read from a real Dovecot (IMAP
//! over TLS with a test CA, on a private 127.x address) and from a Maildir;
//! hostile mails rejected with their reason, nothing counted twice across
//! restarts, secrets nowhere; the IPs that really send announced, shown and
//! (with `[discover]`) swept by one long-lived daemon.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use rusqlite::Connection;

use crate::util::{
    fixtures, free_tcp_port, http_get, http_json, stderr, wait_for, write_config, Daemon, Rbldnsd,
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("dmarc").join(name)).unwrap()
}

/// A report mail as reporters send it: a text part and the attachment in base64.
pub(crate) fn mail(from: &str, ctype: &str, name: &str, body: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: {from}\r\nTo: rua@example.com\r\nSubject: Report Domain: example.com Submitter: {from}\r\n\
Date: Sat, 05 Dec 2026 23:59:00 +0000\r\nMessage-ID: <{}@reporter.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"_b_\"\r\n\r\n--_b_\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
This is an aggregate report from {from}.\r\n--_b_\r\nContent-Type: {ctype}; name=\"{name}\"\r\n\
Content-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--_b_--\r\n",
        fastrand::u64(..),
        lines.join("\r\n")
    )
    .into_bytes()
}

pub(crate) fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn zipped(name: &str, b: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(b).unwrap();
    w.finish().unwrap().into_inner()
}

fn google_zip() -> Vec<u8> {
    google_zip_of(&fixture("google.xml"))
}

/// Google's report moved to yesterday (UTC), so "yesterday's mail" is this report's.
fn google_zip_yesterday() -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let begin = now / 86_400 * 86_400 - 86_400;
    let xml = String::from_utf8(fixture("google.xml"))
        .unwrap()
        .replace("1796428800", &begin.to_string())
        .replace("1796515199", &(begin + 86_399).to_string());
    google_zip_of(xml.as_bytes())
}

fn google_zip_of(xml: &[u8]) -> Vec<u8> {
    mail(
        "noreply-dmarc-support@google.com",
        "application/zip",
        "google.com!example.com!1796428800!1796515199.zip",
        &zipped("google.com!example.com!1796428800!1796515199.xml", xml),
    )
}

/// The good reports, one per reporter's packing, and the hostile mails.
fn report_mails() -> Vec<(&'static str, Vec<u8>)> {
    let mut lol = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        lol.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    lol.push_str("]><feedback>&lol9;</feedback>");
    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY x SYSTEM \"file:///etc/shadow\">]><feedback><report_metadata><org_name>&x;</org_name></report_metadata></feedback>";
    vec![
        (
            "rfc",
            mail(
                "dmarc-reports@receiver.example",
                "text/xml",
                "receiver.example!example.com!1796428800!1796515199.xml",
                &fixture("rfc7489.xml"),
            ),
        ),
        ("google", google_zip()),
        (
            "microsoft",
            mail(
                "dmarcreport@microsoft.com",
                "application/gzip",
                "enterprise.protection.outlook.com!example.com!1796428800!1796515200.xml.gz",
                &gz(&fixture("microsoft.xml")),
            ),
        ),
        (
            "yahoo-plain",
            mail(
                "dmarchelp@yahooinc.com",
                "text/xml",
                "yahoo.com!example.com!1796428800!1796515199.xml",
                &fixture("yahoo.xml"),
            ),
        ),
        (
            "yahoo-gz-resent",
            mail(
                "dmarchelp@yahooinc.com",
                "application/gzip",
                "yahoo.com!example.com!1796428800!1796515199.xml.gz",
                &gz(&fixture("yahoo.xml")),
            ),
        ),
        (
            "xxe",
            mail("evil@attacker.test", "text/xml", "r.xml", xxe.as_bytes()),
        ),
        (
            "billion-laughs",
            mail("evil@attacker.test", "text/xml", "r.xml", lol.as_bytes()),
        ),
        (
            "zip-bomb",
            mail(
                "evil@attacker.test",
                "application/zip",
                "bomb.zip",
                &zipped("bomb.xml", &vec![b' '; 64 << 20]),
            ),
        ),
        (
            "no-report",
            b"From: someone@example.net\r\nTo: rua@example.com\r\nSubject: hello\r\n\r\nNo report in here.\r\n"
                .to_vec(),
        ),
        (
            "garbage",
            (0..4096).map(|_| fastrand::u8(..)).collect::<Vec<u8>>(),
        ),
    ]
}

pub(crate) fn drop_mail(maildir: &Path, name: &str, body: &[u8]) {
    let tmp = maildir.join("tmp").join(name);
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, maildir.join("new").join(name)).unwrap();
}

pub(crate) fn make_maildir(dir: &Path) -> PathBuf {
    for s in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(dir.join(s)).unwrap();
    }
    dir.to_path_buf()
}

/// A CA and a server certificate for `name` (a host name or an IP address), made with openssl.
pub(crate) struct TestCa {
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

pub(crate) fn test_ca(dir: &Path, name: &str) -> TestCa {
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=rblwatch test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        &format!("/CN={name}"),
    ]);
    let san = if name.parse::<std::net::IpAddr>().is_ok() {
        "IP"
    } else {
        "DNS"
    };
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName={san}:{name}\n"),
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    TestCa {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    }
}

/// A private Dovecot (IMAP over implicit TLS only) on 127.0.0.x, user `dmarc`; stopped on drop.
struct Dovecot {
    child: std::process::Child,
    dir: tempfile::TempDir,
    addr: String,
    port: u16,
    password: String,
    ca: TestCa,
}

impl Dovecot {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // dovecot's own user reads the mail: the temp dir must be reachable
        crate::util::chmod(dir.path(), 0o755);
        let d = dir.path();
        let ca = test_ca(d, "imap.test");
        let addr = format!("127.0.{}.{}", fastrand::u8(1..250), fastrand::u8(2..250));
        let port = free_tcp_port();
        let password = format!("imap-pw-{}", fastrand::u64(..));
        std::fs::write(d.join("passwd"), format!("dmarc:{{PLAIN}}{password}\n")).unwrap();
        make_maildir(&d.join("mail/dmarc/Maildir"));
        std::fs::create_dir_all(d.join("run")).unwrap();
        std::fs::create_dir_all(d.join("state")).unwrap();
        let conf = format!(
            r#"base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
first_valid_uid = 1
listen = {addr}
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
"#,
            d = d.display(),
            cert = ca.cert.display(),
            key = ca.key.display(),
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        // in the foreground, as our child: a daemonising master would keep the output pipes open
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dovecot (apt-get install dovecot-imapd)");
        wait_for("dovecot listening", Duration::from_secs(10), || {
            std::net::TcpStream::connect((addr.as_str(), port)).ok()
        });
        Dovecot {
            child,
            dir,
            addr,
            port,
            password,
            ca,
        }
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail/dmarc/Maildir")
    }

    fn deliver(&self, name: &str, body: &[u8]) {
        drop_mail(&self.maildir(), name, body);
        Command::new("chown")
            .args(["-R", "dovecot:dovecot"])
            .arg(self.dir.path().join("mail"))
            .status()
            .unwrap();
    }

    fn feed(&self, password: &str, extra: &str) -> String {
        format!(
            "[[feeds]]\nkind = \"dmarc\"\ntimeout = \"20s\"\nmax_report_bytes = 1048576\n{extra}\nimap = {{ host = \"{}\", port = {}, user = \"dmarc\", password = \"{password}\", tls_name = \"imap.test\", ca_file = {:?} }}\n",
            self.addr,
            self.port,
            self.ca.ca.display().to_string()
        )
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM: the master takes its children with it
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

pub(crate) fn db(dir: &Path) -> Connection {
    let c = Connection::open(dir.join("rblwatch.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

/// A count, 0 while the daemon has not created the tables yet (the test's
/// own connection may open the file first).
pub(crate) fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

fn rejects(c: &Connection) -> BTreeMap<String, i64> {
    let mut st = c
        .prepare("SELECT reason, count(*) FROM feed_rejects GROUP BY reason")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `daemon --once` with the environment; returns its log (it must succeed).
fn once_env(cfg: &Path, env: &[(&str, &str)]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_rblwatch"))
        .args(["daemon", "--once", "-C", cfg.to_str().unwrap()])
        .env("RUST_LOG", "rblwatch=debug,info")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o)
}

pub(crate) fn db_bytes(dir: &Path) -> Vec<u8> {
    let mut b = Vec::new();
    for f in ["rblwatch.db", "rblwatch.db-wal"] {
        b.extend(std::fs::read(dir.join(f)).unwrap_or_default());
    }
    b
}

pub(crate) fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

const TARGETS: &str =
    "[[targets]]\ntarget = \"192.0.2.10\"\n[[targets]]\ntarget = \"example.com\"\n";

#[test]
fn dmarc_reports_over_imap_from_dovecot_each_counted_once_hostile_ones_rejected_with_reason() {
    let dove = Dovecot::start();
    for (name, body) in report_mails() {
        dove.deliver(&format!("{}.{name}.mx", fastrand::u32(..)), &body);
    }
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{TARGETS}[daemon]\ndatabase = \"rblwatch.db\"\n{}",
        dove.feed("env:RBLWATCH_TEST_IMAP_PW", "")
    );
    let cfg = write_config(dir.path(), &rbl, &["bl-test"], &extra);
    let env = [("RBLWATCH_TEST_IMAP_PW", dove.password.as_str())];
    let log1 = once_env(&cfg, &env);

    let c = db(dir.path());
    let reports: Vec<(String, String)> = c
        .prepare("SELECT org, report_id FROM dmarc_reports ORDER BY org")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        reports,
        [
            (
                "Enterprise Outlook".to_string(),
                "a1f0c5e2b7d94a3c8e6f1b2d3c4e5f60".to_string()
            ),
            ("Yahoo".into(), "1796431211.410977".into()),
            ("google.com".into(), "8017453301231094821".into()),
            ("receiver.example".into(), "rfc-2026-12-05-0001".into()),
        ],
        "{log1}"
    );
    // per org, report id, day and source IP: count, disposition, SPF/DKIM
    let g: (String, i64, String, String, String) = c
        .query_row(
            "SELECT day, count, disposition, dkim, spf FROM dmarc_records WHERE org = 'google.com' AND source_ip = '198.51.100.77'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        g,
        (
            "2026-12-05".into(),
            40,
            "none".into(),
            "pass".into(),
            "fail".into()
        )
    );
    assert_eq!(count(&c, "SELECT count(*) FROM dmarc_records"), 6);
    let want: BTreeMap<String, i64> = [
        ("dtd", 2),
        ("duplicate", 1),
        ("no_report", 2),
        ("oversized", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(rejects(&c), want, "{log1}");
    assert!(
        log1.contains("report rejected"),
        "each rejection is logged with its reason"
    );
    // the senders DMARC passed for example.com that no target covers, once each
    let mut unmonitored: Vec<String> = c
        .prepare("SELECT target FROM events WHERE kind = 'unmonitored_sender' ORDER BY target")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    unmonitored.sort();
    assert_eq!(unmonitored, ["198.51.100.77", "2001:db8::25"]);
    drop(c);

    // a restart reads nothing twice: no new report, rejection or event
    let log2 = once_env(&cfg, &env);
    let c = db(dir.path());
    assert_eq!(count(&c, "SELECT count(*) FROM dmarc_reports"), 4, "{log2}");
    assert_eq!(count(&c, "SELECT count(*) FROM dmarc_records"), 6);
    assert_eq!(rejects(&c), want);
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM events WHERE kind = 'unmonitored_sender'"
        ),
        2
    );
    drop(c);

    // the same report in a new mail (a reporter re-sending) is a duplicate, not counted again
    dove.deliver("resent.google.mx", &google_zip());
    once_env(&cfg, &env);
    let c = db(dir.path());
    assert_eq!(count(&c, "SELECT count(*) FROM dmarc_reports"), 4);
    assert_eq!(count(&c, "SELECT count(*) FROM dmarc_records"), 6);
    assert_eq!(rejects(&c)["duplicate"], 2);
    drop(c);
    // nothing was marked read, moved or deleted on the server
    assert_eq!(
        std::fs::read_dir(dove.maildir().join("new"))
            .unwrap()
            .count()
            + std::fs::read_dir(dove.maildir().join("cur"))
                .unwrap()
                .count(),
        11
    );

    // the IMAP password is in no log and nowhere in the database
    for l in [&log1, &log2] {
        assert!(!l.contains(&dove.password));
    }
    assert!(!contains(&db_bytes(dir.path()), &dove.password));
}

#[test]
fn a_failing_or_hanging_mailbox_is_alerted_once_recovers_and_stops_nothing_else() {
    let dove = Dovecot::start();
    dove.deliver("1.google.mx", &google_zip());
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let wrong = format!("wrong-pw-{}", fastrand::u64(..));
    let base = format!("{TARGETS}[daemon]\ndatabase = \"rblwatch.db\"\n");
    let cfg = write_config(
        dir.path(),
        &rbl,
        &["bl-test"],
        &format!("{base}{}", dove.feed(&wrong, "")),
    );
    let l1 = once_env(&cfg, &[]);
    let l2 = once_env(&cfg, &[]);
    let c = db(dir.path());
    let failed: Vec<String> = c
        .prepare("SELECT summary FROM events WHERE kind = 'feed_failed'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "alerted once, not on every read: {failed:?}"
    );
    assert!(failed[0].contains("login as dmarc"), "{failed:?}");
    // the sweeps ran regardless
    assert_eq!(
        count(&c, "SELECT count(*) FROM sweeps WHERE status = 'done'"),
        2
    );
    for l in [&l1, &l2] {
        assert!(!l.contains(&wrong), "the password is never logged");
    }
    assert!(!contains(&db_bytes(dir.path()), &wrong));
    drop(c);

    // a server that accepts and never speaks: the read times out, the run goes on
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_port = hang.local_addr().unwrap().port();
    let cfg_hang = write_config(
        dir.path(),
        &rbl,
        &["bl-test"],
        &format!(
            "{base}[[feeds]]\nkind = \"dmarc\"\ntimeout = \"1s\"\nimap = {{ host = \"127.0.0.1\", port = {hang_port}, user = \"dmarc\", password = \"x\" }}\n"
        ),
    );
    let t = std::time::Instant::now();
    once_env(&cfg_hang, &[]);
    assert!(t.elapsed() < Duration::from_secs(15));
    let c = db(dir.path());
    assert_eq!(
        count(&c, "SELECT count(*) FROM events WHERE kind = 'feed_failed'"),
        1,
        "still failing: no second alert"
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM sweeps WHERE status = 'done'"),
        3
    );
    drop(c);
    drop(hang);

    // the right password: the feed reads again, once recovered
    let cfg = write_config(
        dir.path(),
        &rbl,
        &["bl-test"],
        &format!("{base}{}", dove.feed(&dove.password, "")),
    );
    once_env(&cfg, &[]);
    let c = db(dir.path());
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM events WHERE kind = 'feed_recovered'"
        ),
        1
    );
    assert_eq!(count(&c, "SELECT count(*) FROM dmarc_reports"), 1);
}

fn story_config(dir: &Path, rbl: &Rbldnsd, maildir: &Path, discover: bool) -> (PathBuf, u16) {
    let port = free_tcp_port();
    let extra = format!(
        "{TARGETS}[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"3s\"\nhealth = \"1h\"\n\
[[feeds]]\nkind = \"dmarc\"\nmaildir = {:?}\ninterval = \"1s\"\n{}\n[web]\nlisten = \"127.0.0.1:{port}\"\n",
        maildir.display().to_string(),
        if discover { "[discover]\nfrom = [\"dmarc\"]\nmax = 8\n" } else { "" }
    );
    (write_config(dir, rbl, &["bl-test"], &extra), port)
}

#[test]
fn story_a_dmarc_report_reveals_an_unmonitored_sender_swept_within_one_cycle_with_discover() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let maildir = make_maildir(&dir.path().join("Maildir"));
    let (cfg, port) = story_config(dir.path(), &rbl, &maildir, true);
    let d = Daemon::start(&cfg);
    wait_for("the first sweep", Duration::from_secs(20), || {
        (dir.path().join("rblwatch.db").exists()
            && count(
                &db(dir.path()),
                "SELECT count(*) FROM sweeps WHERE status = 'done'",
            ) >= 1)
            .then_some(())
    });
    // Google's report names 198.51.100.77 passing DKIM for example.com; bl.test lists 198.51.100.0/24
    drop_mail(&maildir, "1.google.mx", &google_zip_yesterday());
    let seen_at: i64 = wait_for("unmonitored_sender", Duration::from_secs(20), || {
        db(dir.path())
            .query_row(
                "SELECT at FROM events WHERE kind = 'unmonitored_sender' AND target = '198.51.100.77'",
                [],
                |r| r.get(0),
            )
            .ok()
    });
    let listed_at: i64 = wait_for("the discovered IP swept", Duration::from_secs(20), || {
        db(dir.path())
            .query_row(
                "SELECT started_at FROM listings WHERE target = '198.51.100.77' AND list = 'bl-test'",
                [],
                |r| r.get(0),
            )
            .ok()
    });
    assert!(
        listed_at - seen_at <= 3 + 2,
        "swept within one cycle: {seen_at} -> {listed_at}\n{}",
        d.log()
    );
    let v = http_json(port, "/api/v1/senders");
    let s = v["senders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ip"] == "198.51.100.77")
        .unwrap()
        .clone();
    assert_eq!(s["status"], "discovered", "{v}");
    assert_eq!(s["messages"], 40);
    assert_eq!(
        s["text"],
        "sending for example.com, swept (discovered from dmarc)"
    );
    let t = http_json(port, "/api/v1/targets");
    assert!(
        t.to_string()
            .contains("discovered: sends for example.com (dmarc)"),
        "{t}"
    );
    let (code, page) = http_get(port, "/senders");
    assert_eq!(code, 200);
    assert!(page.contains("198.51.100.77"));
    // listings weighed by mail: 40 of yesterday's 852 messages left from the listed 198.51.100.77
    let share = wait_for(
        "the share of mail from listed IPs",
        Duration::from_secs(10),
        || {
            let v = http_json(port, "/api/v1/senders");
            (v["listed_share"]["listed"] == 40).then_some(v["listed_share"].clone())
        },
    );
    assert_eq!(share["total"], 852, "{share}");
    assert_eq!(share["percent"], 4.7);
    assert_eq!(share["by_listing"][0]["target"], "198.51.100.77");
    let (_, overview) = http_get(port, "/");
    assert!(
        overview.contains("4.7 % of yesterday&#x27;s mail")
            || overview.contains("4.7 % of yesterday's mail"),
        "{overview}"
    );
    let (_, metrics) = http_get(port, "/metrics");
    assert!(
        metrics.contains("rblwatch_mail_from_listed_ips_ratio 0.047"),
        "{metrics}"
    );
}

#[test]
fn story_without_discover_the_unmonitored_sender_is_shown_not_swept() {
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let maildir = make_maildir(&dir.path().join("Maildir"));
    let (cfg, port) = story_config(dir.path(), &rbl, &maildir, false);
    let d = Daemon::start(&cfg);
    drop_mail(&maildir, "1.google.mx", &google_zip_yesterday());
    let summary: String = wait_for("unmonitored_sender", Duration::from_secs(20), || {
        db(dir.path())
            .query_row(
                "SELECT summary FROM events WHERE kind = 'unmonitored_sender' AND target = '198.51.100.77'",
                [],
                |r| r.get(0),
            )
            .ok()
    });
    assert!(
        summary.contains("is sending for example.com (40 messages, DMARC pass), not monitored"),
        "{summary}"
    );
    // two more sweeps: the IP is not asked about
    let done = count(
        &db(dir.path()),
        "SELECT count(*) FROM sweeps WHERE status = 'done'",
    );
    wait_for("two more sweeps", Duration::from_secs(20), || {
        (count(
            &db(dir.path()),
            "SELECT count(*) FROM sweeps WHERE status = 'done'",
        ) >= done + 2)
            .then_some(())
    });
    assert_eq!(
        count(
            &db(dir.path()),
            "SELECT count(*) FROM listings WHERE target = '198.51.100.77'"
        ),
        0,
        "{}",
        d.log()
    );
    let v = http_json(port, "/api/v1/senders");
    let s = v["senders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ip"] == "198.51.100.77")
        .unwrap()
        .clone();
    assert_eq!(s["status"], "not_monitored");
    assert_eq!(s["text"], "sending for example.com, not monitored");
    assert_eq!(
        v["not_monitored"], 1,
        "192.0.2.10 is a target; 203.0.113.99 fails DMARC"
    );
    let (_, page) = http_get(port, "/senders");
    assert!(page.contains("sending for example.com, not monitored"));
    let (_, overview) = http_get(port, "/");
    assert!(
        overview.contains("1 sending IP(s) not monitored"),
        "{overview}"
    );
}
