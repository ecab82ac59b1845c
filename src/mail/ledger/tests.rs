use super::*;

fn run(mta: LogMta, log: &str) -> Vec<Fact> {
    let conf = LedgerConf::shipped().unwrap();
    let mut l = Ledger::new(mta);
    let mut facts = Vec::new();
    l.feed(&conf, log, &mut |f| facts.push(f));
    facts
}

fn done(facts: &[Fact]) -> Vec<&Message> {
    facts
        .iter()
        .filter_map(|f| match f {
            Fact::Done(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// A SASL submission, a pickup submission, an inbound message delivered here,
/// an inbound message forwarded by a virtual alias (`orig_to=`), a bounce the
/// MTA made, a relay client from mynetworks and a DMARC report, in Postfix's
/// own words (smtpd `sasl_username=`, pickup `uid=`, the header_checks WARN of
/// contrib/postfix-header-log.regexp).
const POSTFIX: &str = "\
Dec  6 01:00:00 mx postfix/smtpd[101]: 4A1B2C3D4E: client=unknown[127.0.0.1], sasl_method=PLAIN, sasl_username=alice@example.test
Dec  6 01:00:00 mx postfix/cleanup[102]: 4A1B2C3D4E: message-id=<1@example.test>
Dec  6 01:00:00 mx postfix/qmgr[103]: 4A1B2C3D4E: from=<alice@example.test>, size=420, nrcpt=2 (queue active)
Dec  6 01:00:01 mx postfix/smtp[104]: 4A1B2C3D4E: to=<bob@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.26]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.1.26] said: 550-5.7.1 [192.0.2.10] Our system has detected that this message is likely unsolicited mail. (in reply to end of DATA command))
Dec  6 01:00:01 mx postfix/smtp[104]: 4A1B2C3D4E: to=<carol@other.test>, relay=mx.other.test[198.51.100.7]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 77)
Dec  6 01:00:01 mx postfix/bounce[105]: 4A1B2C3D4E: sender non-delivery notification: 5B2C3D4E5F
Dec  6 01:00:01 mx postfix/qmgr[103]: 5B2C3D4E5F: from=<>, size=2100, nrcpt=1 (queue active)
Dec  6 01:00:01 mx postfix/qmgr[103]: 4A1B2C3D4E: removed
Dec  6 01:00:02 mx postfix/local[106]: 5B2C3D4E5F: to=<alice@example.test>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Dec  6 01:00:02 mx postfix/qmgr[103]: 5B2C3D4E5F: removed
Dec  6 01:00:03 mx postfix/pickup[107]: 6C3D4E5F6A: uid=33 from=<www-data>
Dec  6 01:00:03 mx postfix/cleanup[102]: 6C3D4E5F6A: message-id=<2@example.test>
Dec  6 01:00:03 mx postfix/qmgr[103]: 6C3D4E5F6A: from=<www-data@example.test>, size=300, nrcpt=1 (queue active)
Dec  6 01:00:03 mx postfix/smtp[104]: 6C3D4E5F6A: to=<x@yahoo.com>, relay=mta5.am0.yahoodns.net[67.195.204.72]:25, delay=1, delays=0/0/0.5/0.5, dsn=4.7.0, status=deferred (host mta5.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints (in reply to MAIL FROM command))
Dec  6 01:00:04 mx postfix/smtpd[108]: 7D4E5F6A7B: client=mail-ed1.google.com[209.85.208.1]
Dec  6 01:00:04 mx postfix/qmgr[103]: 7D4E5F6A7B: from=<someone@gmail.com>, size=500, nrcpt=1 (queue active)
Dec  6 01:00:04 mx postfix/local[106]: 7D4E5F6A7B: to=<alice@example.test>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Dec  6 01:00:04 mx postfix/qmgr[103]: 7D4E5F6A7B: removed
Dec  6 01:00:05 mx postfix/smtpd[108]: 8E5F6A7B8C: client=spam.example.net[203.0.113.9]
Dec  6 01:00:05 mx postfix/qmgr[103]: 8E5F6A7B8C: from=<spammer@example.net>, size=500, nrcpt=1 (queue active)
Dec  6 01:00:05 mx postfix/smtp[104]: 8E5F6A7B8C: to=<dave@outlook.com>, orig_to=<dave@example.test>, relay=outlook-com.olc.protection.outlook.com[52.101.1.1]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.6.0 queued)
Dec  6 01:00:05 mx postfix/qmgr[103]: 8E5F6A7B8C: removed
Dec  6 01:00:06 mx postfix/smtpd[109]: 9F6A7B8C9D: client=app1.example.test[10.0.0.5]
Dec  6 01:00:06 mx postfix/cleanup[102]: 9F6A7B8C9D: warning: header Subject: Report Domain: example.test Submitter: example.test Report-ID: <123> from app1.example.test[10.0.0.5]; from=<reports@example.test> to=<rua@dmarc.example.net> proto=ESMTP helo=<app1>: rblwatch
Dec  6 01:00:06 mx postfix/qmgr[103]: 9F6A7B8C9D: from=<reports@example.test>, size=900, nrcpt=1 (queue active)
Dec  6 01:00:07 mx postfix/smtp[104]: 9F6A7B8C9D: to=<rua@dmarc.example.net>, relay=mx.dmarc.example.net[198.51.100.9]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)
Dec  6 01:00:07 mx postfix/qmgr[103]: 9F6A7B8C9D: removed
";

#[test]
fn postfix_messages_are_joined_and_classified_by_origin_and_class() {
    let mut conf = LedgerConf::shipped().unwrap();
    conf.mynetworks.push("10.0.0.0/24".parse().unwrap());
    let mut l = Ledger::new(LogMta::Postfix);
    let mut facts = Vec::new();
    l.feed(&conf, POSTFIX, &mut |f| facts.push(f));
    let d = done(&facts);
    let got: Vec<(&str, Origin, &str, Class)> = d
        .iter()
        .map(|m| (m.queue_id.as_str(), m.origin, m.account.as_str(), m.class))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "4A1B2C3D4E",
                Origin::Sasl,
                "alice@example.test",
                Class::User
            ),
            ("5B2C3D4E5F", Origin::Mta, "", Class::Bounce),
            // the inbound message delivered here is not in the ledger
            ("8E5F6A7B8C", Origin::Inbound, "", Class::Forward),
            ("9F6A7B8C9D", Origin::Relay, "10.0.0.5", Class::Report),
        ]
    );
    let alice = d[0];
    assert_eq!(alice.sender, "alice@example.test");
    assert_eq!(alice.destinations(), vec!["gmail.com", "other.test"]);
    assert_eq!(alice.recipients[0].status, DeliveryStatus::Bounced);
    assert!(alice.recipients[0]
        .reply
        .as_deref()
        .unwrap()
        .contains("likely unsolicited"));
    assert!(alice.recipients.iter().all(|r| r.remote));
    assert!(!d[1].recipients[0].remote, "relay=local is not remote");
    assert_eq!(
        d[2].recipients[0].orig.as_deref(),
        Some("dave@example.test")
    );
    assert_eq!(
        d[3].headers,
        vec![(
            "subject".to_string(),
            "Report Domain: example.test Submitter: example.test Report-ID: <123>".to_string()
        )]
    );
    // the pickup message is still queued (deferred): queued and its delivery seen, not done
    assert!(facts.iter().any(|f| matches!(f, Fact::Queued { queue_id, origin: Origin::Local, account, class: Class::User } if queue_id == "6C3D4E5F6A" && account == "uid 33")));
    assert!(facts.iter().any(|f| matches!(f, Fact::Delivery { origin: Origin::Local, result, .. } if result.status == DeliveryStatus::Deferred)));
    assert_eq!(l.open_messages(), 1);
    // the inbound message delivered locally raised no fact at all
    assert!(!facts
        .iter()
        .any(|f| matches!(f, Fact::Queued { queue_id, .. } if queue_id == "7D4E5F6A7B")));
}

/// Without 10.0.0.0/24 in mynetworks the app server is an outside client:
/// its report is inbound mail, not ours.
#[test]
fn a_client_outside_mynetworks_is_inbound() {
    let d: Vec<_> = done(&run(LogMta::Postfix, POSTFIX))
        .into_iter()
        .map(|m| m.queue_id.clone())
        .collect();
    assert!(!d.contains(&"9F6A7B8C9D".to_string()));
}

/// Postfix's `local` expands an alias to a remote address by submitting a
/// copy (`forwarded as NEWID`): the copy of inbound mail is a forward.
#[test]
fn a_local_alias_forward_is_a_forward() {
    let log = "\
Dec  6 02:00:00 mx postfix/smtpd[1]: AAAAAA1111: client=mx.sender.test[203.0.113.20]
Dec  6 02:00:00 mx postfix/qmgr[2]: AAAAAA1111: from=<news@sender.test>, size=500, nrcpt=1 (queue active)
Dec  6 02:00:00 mx postfix/cleanup[3]: BBBBBB2222: message-id=<x@sender.test>
Dec  6 02:00:00 mx postfix/local[4]: AAAAAA1111: to=<fwd@example.test>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (forwarded as BBBBBB2222)
Dec  6 02:00:00 mx postfix/qmgr[2]: BBBBBB2222: from=<news@sender.test>, size=600, nrcpt=1 (queue active)
Dec  6 02:00:00 mx postfix/qmgr[2]: AAAAAA1111: removed
Dec  6 02:00:01 mx postfix/smtp[5]: BBBBBB2222: to=<me@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.26]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK)
Dec  6 02:00:01 mx postfix/qmgr[2]: BBBBBB2222: removed
";
    let f = run(LogMta::Postfix, log);
    let d = done(&f);
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].origin, d[0].class), (Origin::Mta, Class::Forward));
}

/// Autoreplies by header, SRS forwards by sender, TLS reports by header, in
/// RFC 3339 timestamps (`maillog_file`) and a `syslog_name` with a slash.
#[test]
fn header_and_sender_rules() {
    let log = "\
2026-12-06T01:00:00.123456+00:00 mx postfix-out/smtpd[1]: C1C1C1C1C1: client=localhost[127.0.0.1], sasl_method=LOGIN, sasl_username=bob
2026-12-06T01:00:00.123456+00:00 mx postfix-out/cleanup[2]: C1C1C1C1C1: warning: header Auto-Submitted: auto-replied from localhost[127.0.0.1]; from=<bob@example.test> to=<x@y.test> proto=ESMTP helo=<client>: rblwatch
2026-12-06T01:00:00.123456+00:00 mx postfix-out/qmgr[3]: C1C1C1C1C1: from=<bob@example.test>, size=1, nrcpt=1 (queue active)
2026-12-06T01:00:00.123456+00:00 mx postfix-out/smtpd[1]: D2D2D2D2D2: client=localhost[127.0.0.1]
2026-12-06T01:00:00.123456+00:00 mx postfix-out/qmgr[3]: D2D2D2D2D2: from=<SRS0=HHH=TT=sender.test=user@example.test>, size=1, nrcpt=1 (queue active)
2026-12-06T01:00:00.123456+00:00 mx postfix-out/pickup[4]: E3E3E3E3E3: uid=0 from=<root>
2026-12-06T01:00:00.123456+00:00 mx postfix-out/cleanup[2]: E3E3E3E3E3: warning: header TLS-Report-Domain: example.test from local; from=<tlsrpt@example.test> to=<tlsrpt@r.test>: rblwatch
2026-12-06T01:00:00.123456+00:00 mx postfix-out/qmgr[3]: E3E3E3E3E3: from=<tlsrpt@example.test>, size=1, nrcpt=1 (queue active)
2026-12-06T01:00:00.123456+00:00 mx postfix-out/smtpd[1]: F4F4F4F4F4: client=localhost[127.0.0.1]
2026-12-06T01:00:00.123456+00:00 mx postfix-out/qmgr[3]: F4F4F4F4F4: from=<noreply-dmarc-reports@example.test>, size=1, nrcpt=1 (queue active)
";
    let classes: Vec<(String, Class, Origin)> = run(LogMta::Postfix, log)
        .into_iter()
        .filter_map(|f| match f {
            Fact::Queued {
                queue_id,
                class,
                origin,
                ..
            } => Some((queue_id, class, origin)),
            _ => None,
        })
        .collect();
    assert_eq!(
        classes,
        vec![
            ("C1C1C1C1C1".to_string(), Class::Autoreply, Origin::Sasl),
            ("D2D2D2D2D2".to_string(), Class::Forward, Origin::Relay),
            ("E3E3E3E3E3".to_string(), Class::Report, Origin::Local),
            ("F4F4F4F4F4".to_string(), Class::Report, Origin::Relay),
        ]
    );
}

/// An attacker picks the login and the header text: whatever they hold, a
/// line is one message's fact and never another's.
#[test]
fn hostile_names_stay_in_their_message() {
    let log = "\
Dec  6 01:00:00 mx postfix/smtpd[1]: A1A1A1A1A1: client=unknown[127.0.0.1], sasl_method=PLAIN, sasl_username=evil REJECT, sasl_username=root
Dec  6 01:00:00 mx postfix/cleanup[2]: A1A1A1A1A1: warning: header Subject: x; from=<a@b> B2B2B2B2B2: removed from unknown[127.0.0.1]; from=<evil@example.test> to=<x@y.test> proto=ESMTP helo=<h>: rblwatch
Dec  6 01:00:00 mx postfix/qmgr[3]: A1A1A1A1A1: from=<evil@example.test>, size=1, nrcpt=1 (queue active)
\u{0}\u{ff}garbage: : : removed
Dec  6 01:00:00 mx postfix/qmgr[3]: : removed
";
    let f = run(LogMta::Postfix, log);
    assert_eq!(f.len(), 1);
    assert!(
        matches!(&f[0], Fact::Queued { account, .. } if account == "evil REJECT, sasl_username=root")
    );
}

#[test]
fn exim_messages_are_joined_and_classified() {
    let log = "\
2026-12-06 01:00:00 1wA1aa-0001aa-1a <= alice@example.test H=(client) [127.0.0.1] P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=plain:alice@example.test S=500 id=1@example.test
2026-12-06 01:00:01 1wA1aa-0001aa-1a ** bob@gmail.com R=dnslookup T=remote_smtp H=gmail-smtp-in.l.google.com [142.250.1.26] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes: SMTP error from remote mail server after end of data: 550-5.7.1 [192.0.2.10] Our system has detected that this message is\\n550-5.7.1 likely unsolicited mail.
2026-12-06 01:00:01 1wA1bb-0001bb-2b <= <> R=1wA1aa-0001aa-1a U=Debian-exim P=local S=1800
2026-12-06 01:00:01 1wA1aa-0001aa-1a Completed
2026-12-06 01:00:02 1wA1bb-0001bb-2b => alice <alice@example.test> R=local_user T=mail_spool
2026-12-06 01:00:02 1wA1bb-0001bb-2b Completed
2026-12-06 01:00:03 1wA1cc-0001cc-3c rblwatch-header 1wA1cc-0001cc-3c Auto-Submitted: auto-replied
2026-12-06 01:00:03 1wA1cc-0001cc-3c <= carol U=carol P=local S=300
2026-12-06 01:00:03 1wA1cc-0001cc-3c == x@yahoo.com R=dnslookup T=remote_smtp defer (-44) H=mta5.am0.yahoodns.net [67.195.204.72]: SMTP error from remote mail server after MAIL FROM:<carol@example.test> SIZE=1300: 421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred
2026-12-06 01:00:04 1wA1dd-0001dd-4d <= news@sender.test H=mx.sender.test [203.0.113.20] P=esmtps S=500
2026-12-06 01:00:04 1wA1dd-0001dd-4d => me@gmail.com <fwd@example.test> R=dnslookup T=remote_smtp H=gmail-smtp-in.l.google.com [142.250.1.26] C=\"250 2.0.0 OK\"
2026-12-06 01:00:04 1wA1dd-0001dd-4d Completed
";
    let f = run(LogMta::Exim, log);
    let d = done(&f);
    let got: Vec<(&str, Origin, &str, Class)> = d
        .iter()
        .map(|m| (m.queue_id.as_str(), m.origin, m.account.as_str(), m.class))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "1wA1aa-0001aa-1a",
                Origin::Sasl,
                "alice@example.test",
                Class::User
            ),
            ("1wA1bb-0001bb-2b", Origin::Mta, "", Class::Bounce),
            ("1wA1dd-0001dd-4d", Origin::Inbound, "", Class::Forward),
        ]
    );
    assert_eq!(d[0].recipients[0].status, DeliveryStatus::Bounced);
    assert!(d[0].recipients[0].remote);
    assert!(!d[1].recipients[0].remote);
    assert_eq!(d[2].recipients[0].orig.as_deref(), Some("fwd@example.test"));
    assert!(f.iter().any(|x| matches!(x, Fact::Queued { origin: Origin::Local, class: Class::Autoreply, account, .. } if account == "carol")));
}

/// Memory stays bounded: past [`MAX_OPEN`] messages in flight the oldest are
/// forgotten.
#[test]
fn open_messages_are_capped() {
    let conf = LedgerConf::shipped().unwrap();
    let mut l = Ledger::new(LogMta::Postfix);
    for i in 0..(MAX_OPEN + 10) {
        l.line(
            &conf,
            &format!("Dec  6 01:00:00 mx postfix/pickup[1]: Q{i:09}: uid=1 from=<a>"),
            &mut |_| {},
        );
    }
    assert_eq!(l.open_messages(), MAX_OPEN);
    assert_eq!(l.evicted, 10);
}

#[test]
fn user_rules_come_first_and_replace_shipped_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.toml"),
        "[[rule]]\nid = \"dmarc-report-sender\"\nclass = \"user\"\nsender = \"^never$\"\n\n[[rule]]\nid = \"newsletter\"\nclass = \"autoreply\"\nheader = \"Precedence\"\npattern = \"bulk\"\n",
    )
    .unwrap();
    let mut r = ClassRules::shipped().unwrap();
    let n = r.rules().len();
    r.extend_from_dir(dir.path()).unwrap();
    assert_eq!(r.rules().len(), n + 1);
    assert_eq!(r.rules()[1].id, "newsletter");
    assert_eq!(r.classify("dmarc-reports@example.test", &[]), None);
    assert_eq!(
        r.classify("a@b", &[("precedence".into(), "bulk".into())]),
        Some(Class::Autoreply)
    );
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[rule]]\nid = \"x\"\nclass = \"spam\"\nsender = \"x\"\n",
    )
    .unwrap();
    let e = ClassRules::shipped()
        .unwrap()
        .extend_from_dir(dir.path())
        .unwrap_err();
    assert!(e.to_string().contains("unknown class"), "{e}");
}
