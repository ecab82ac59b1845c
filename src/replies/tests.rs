use super::*;

fn shipped() -> (ReplyCatalog, Catalog) {
    let replies = ReplyCatalog::shipped().unwrap_or_else(|e| panic!("shipped replies: {e}"));
    let lists = Catalog::shipped().unwrap();
    (replies, lists)
}

#[test]
fn shipped_catalog_is_valid_and_names_existing_lists() {
    let (replies, lists) = shipped();
    replies.check_lists(&lists).unwrap();
    assert!(
        replies.rules().len() >= 60,
        "{} rules",
        replies.rules().len()
    );
    for id in [
        "microsoft",
        "google",
        "yahoo",
        "apple",
        "proofpoint",
        "mimecast",
        "barracuda",
        "comcast",
        "united-internet",
        "t-online",
        "orange",
    ] {
        assert!(replies.receiver(id).is_some(), "receiver {id} missing");
    }
    // the generic rules come last
    let last = replies.rules().last().unwrap();
    assert!(last.file.ends_with("zz-generic.toml"), "{}", last.file);
    // every meaning is used by some rule
    for m in ReplyMeaning::ALL {
        assert!(
            replies.rules().iter().any(|r| r.meaning == m),
            "no rule means {m}"
        );
    }
}

/// The evidence test: every example text of every rule classifies to that
/// rule, not to an earlier one.
#[test]
fn every_example_classifies_to_its_own_rule() {
    let (replies, lists) = shipped();
    let mut failures = Vec::new();
    for rule in replies.rules() {
        for (i, ex) in rule.examples.iter().enumerate() {
            let got = replies.classify(ex, None, &lists).map(|c| c.rule);
            if got.as_deref() != Some(rule.id.as_str()) {
                failures.push(format!(
                    "{} examples[{i}] classified as {got:?}: {ex}",
                    rule.id
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn relay_attributes_generic_replies() {
    let (replies, lists) = shipped();
    let pdr =
        "554 5.7.0 Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi?ip=192.0.2.11";
    let c = replies
        .classify(pdr, Some("mx01.mail.icloud.com"), &lists)
        .unwrap();
    assert_eq!(c.rule, "proofpoint-pdr");
    assert_eq!(c.receiver.as_deref(), Some("apple"));
    assert_eq!(c.meaning, ReplyMeaning::IpBlocklist);
    let c = replies
        .classify(pdr, Some("mx0a-001.pphosted.com."), &lists)
        .unwrap();
    assert_eq!(c.receiver.as_deref(), Some("proofpoint"));
    let c = replies
        .classify(pdr, Some("mx.example.net"), &lists)
        .unwrap();
    assert_eq!(c.receiver, None);
    let c = replies.classify(pdr, None, &lists).unwrap();
    assert_eq!(c.receiver, None);

    // a rule's own receiver wins over the relay
    let s3150 = "550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).";
    let c = replies
        .classify(s3150, Some("gmail-smtp-in.l.google.com"), &lists)
        .unwrap();
    assert_eq!(c.receiver.as_deref(), Some("microsoft"));
    assert_eq!(c.meaning, ReplyMeaning::IpReputation);

    let z = "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org";
    for (host, want) in [
        ("hotmail-com.olc.protection.outlook.com", "microsoft"),
        ("gmail-smtp-in.l.google.com", "google"),
        ("mta6.am0.yahoodns.net", "yahoo"),
        ("us-smtp-inbound-1.mimecast.com", "mimecast"),
        ("d241253a.ess.barracudanetworks.com", "barracuda"),
        ("mx-ha.gmx.net", "united-internet"),
        ("mx02.t-online.de", "t-online"),
        ("smtp-in.orange.fr", "orange"),
        ("mx3.qq.com", "tencent"),
    ] {
        let c = replies.classify(z, Some(host), &lists).unwrap();
        assert_eq!(c.receiver.as_deref(), Some(want), "{host}");
    }
    // a look-alike host is not Google
    assert!(replies
        .receiver_for_relay("notgoogle.com.example.net")
        .is_none());
}

#[test]
fn zones_map_to_catalog_lists() {
    let (replies, lists) = shipped();
    let cases = [
        (
            "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
            "spamhaus-zen",
            "zen.spamhaus.org",
        ),
        (
            "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using bl.spamcop.net; Blocked - see https://www.spamcop.net/bl.shtml?192.0.2.1",
            "spamcop",
            "bl.spamcop.net",
        ),
        (
            "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using b.barracudacentral.org",
            "barracuda",
            "b.barracudacentral.org",
        ),
        (
            "550 5.7.1 Service unavailable; client [192.0.2.1] blocked using dnsbl-2.uceprotect.net",
            "uceprotect-2",
            "dnsbl-2.uceprotect.net",
        ),
        (
            // a key-template (DQS) zone
            "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using abcdefghijklmnopqrstuvwxyz.zen.dq.spamhaus.net",
            "spamhaus-zen",
            "abcdefghijklmnopqrstuvwxyz.zen.dq.spamhaus.net",
        ),
        (
            // the parent of several lists: the enabled IP list wins
            "550 192.0.2.1 listed at spamhaus.org, see http://www.spamhaus.org",
            "spamhaus-zen",
            "spamhaus.org",
        ),
        (
            // a retired combined zone of the same operator
            "550-Rejected message because 192.0.2.1 is in a black list at sbl-xbl.spamhaus.org",
            "spamhaus-zen",
            "sbl-xbl.spamhaus.org",
        ),
    ];
    for (reply, want_list, want_zone) in cases {
        let c = replies
            .classify(reply, None, &lists)
            .unwrap_or_else(|| panic!("no match: {reply}"));
        assert_eq!(c.list.as_deref(), Some(want_list), "{reply}");
        assert_eq!(c.zone.as_deref(), Some(want_zone), "{reply}");
        assert_eq!(c.meaning, ReplyMeaning::IpBlocklist, "{reply}");
    }
    assert_eq!(
        list_for_zone(&lists, "2.0.0.127.zen.spamhaus.org").map(|l| l.id.as_str()),
        Some("spamhaus-zen")
    );
    assert_eq!(
        list_for_zone(&lists, "uceprotect.net").map(|l| l.id.as_str()),
        Some("uceprotect-1")
    );
    assert_eq!(
        list_for_zone(&lists, "ZEN.SPAMHAUS.ORG.").map(|l| l.id.as_str()),
        Some("spamhaus-zen")
    );
    assert!(list_for_zone(&lists, "work.drbl.example.net").is_none());
    assert!(list_for_zone(&lists, "localhost").is_none());
    assert!(list_for_zone(&lists, "").is_none());

    // an unknown zone is reported without a list
    let c = replies
        .classify(
            "550 Rejected: 192.0.2.44 is listed at work.drbl.example.net",
            None,
            &lists,
        )
        .unwrap();
    assert_eq!(c.list, None);
    assert_eq!(c.zone.as_deref(), Some("work.drbl.example.net"));
}

#[test]
fn a_domain_list_means_domain_reputation() {
    let (replies, lists) = shipped();
    let c = replies
        .classify(
            "554 5.7.1 Service unavailable; Sender address [user@example.com] blocked using dbl.spamhaus.org; https://www.spamhaus.org/query/domain/example.com",
            None,
            &lists,
        )
        .unwrap();
    assert_eq!(c.rule, "dnsbl-blocked-using");
    assert_eq!(c.list.as_deref(), Some("spamhaus-dbl"));
    assert_eq!(c.meaning, ReplyMeaning::DomainReputation);
}

#[test]
fn a_later_rule_can_name_the_list() {
    let (replies, lists) = shipped();
    // Rackspace's private mirror is not in the catalog, the Spamhaus link is.
    let reply = "554 5.7.1 ACL dns_rbl; Client host [192.0.2.44] blocked using sa-ip4tset.blagr.emailsrvr.com=127.24.0.2 Spamhaus XBL. Please visit http://www.spamhaus.org/lookup/ for more information on why this message could not be delivered";
    let c = replies.classify(reply, None, &lists).unwrap();
    assert_eq!(c.rule, "dnsbl-blocked-using");
    assert_eq!(c.zone.as_deref(), Some("sa-ip4tset.blagr.emailsrvr.com"));
    assert_eq!(c.list.as_deref(), Some("spamhaus-zen"));
}

#[test]
fn open_resolver_is_not_a_listing() {
    let (replies, lists) = shipped();
    let c = replies
        .classify(
            "554 5.7.1 Service unavailable; Client host [192.0.2.37] blocked using zen.spamhaus.org; Error: open resolver; https://www.spamhaus.org/returnc/pub/198.51.100.0",
            None,
            &lists,
        )
        .unwrap();
    assert_eq!(c.meaning, ReplyMeaning::ReceiverError);
    assert_eq!(c.list, None);
    assert!(!c.meaning.about_us());
}

#[test]
fn lists_missing_from_the_catalog_are_not_reported() {
    let (replies, _) = shipped();
    let empty = Catalog::default();
    let c = replies
        .classify(
            "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
            None,
            &empty,
        )
        .unwrap();
    assert_eq!(c.list, None);
    assert_eq!(c.zone.as_deref(), Some("zen.spamhaus.org"));
}

#[test]
fn unknown_replies_match_nothing() {
    let (replies, lists) = shipped();
    for r in [
        "",
        "250 2.0.0 Ok: queued as 4ZK3p34LgKz9rxN",
        "451 4.3.0 Try again later",
        "\u{0}\u{1}garbage\\n",
    ] {
        assert_eq!(
            replies.classify(r, Some("mx.example.net"), &lists),
            None,
            "{r:?}"
        );
    }
}

#[test]
fn normalisation_joins_multi_line_replies() {
    assert_eq!(
        normalize_reply("550-5.7.1 [192.0.2.1      12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. 550 5.7.1  https://support.google.com/x - gsmtp"),
        "550-5.7.1 [192.0.2.1 12] Our system has detected that this message is likely unsolicited mail. https://support.google.com/x - gsmtp"
    );
    assert_eq!(
        normalize_reply("554-gmx.net (mxgmx104) Nemesis ESMTP Service not available 554-No SMTP service 554-IP address is block listed. 554 For explanation visit x"),
        "554-gmx.net (mxgmx104) Nemesis ESMTP Service not available No SMTP service IP address is block listed. For explanation visit x"
    );
    // Exim writes the line breaks of a multi-line reply as a literal \n
    assert_eq!(
        normalize_reply("550-rejected because 192.0.2.1 is listed\\n550 see https://example.net"),
        "550-rejected because 192.0.2.1 is listed see https://example.net"
    );
    assert_eq!(
        normalize_reply("550 5.7.1 Rejected\r\n550 5.7.1 twice"),
        "550 5.7.1 Rejected twice"
    );
    assert_eq!(
        normalize_reply("no code here  at all"),
        "no code here at all"
    );
    assert_eq!(normalize_reply("   "), "");
    assert_eq!(normalize_reply("550"), "550");
}

const GOOD: &str = r#"
[[receiver]]
id = "example"
name = "Example Mail"
relays = ['(?i)\.example\.net$']

[[reply]]
id = "example-blocked"
receiver = "example"
pattern = '(?i)blocked by example'
meaning = "ip-reputation"
source = "https://example.net/postmaster"
examples = ["550 5.7.1 blocked by example"]
"#;

fn err_of(files: &[(&str, &str)]) -> String {
    ReplyCatalog::from_files(files).unwrap_err().to_string()
}

#[test]
fn a_small_file_parses() {
    let c = ReplyCatalog::from_files(&[("good.toml", GOOD)]).unwrap();
    let lists = Catalog::default();
    let got = c
        .classify(
            "550 5.7.1 Blocked by Example, sorry",
            Some("mx.example.net"),
            &lists,
        )
        .unwrap();
    assert_eq!(got.rule, "example-blocked");
    assert_eq!(got.receiver.as_deref(), Some("example"));
    assert_eq!(got.source, "https://example.net/postmaster");
}

#[test]
fn unknown_keys_are_rejected_and_named() {
    let e = err_of(&[("good.toml", &GOOD.replace("meaning =", "meening ="))]);
    assert!(e.contains("good.toml") && e.contains("meening"), "{e}");
    let e = err_of(&[("good.toml", &GOOD.replace("relays =", "relay_hosts ="))]);
    assert!(e.contains("relay_hosts"), "{e}");
    let e = err_of(&[("good.toml", &format!("{GOOD}\n[[replies]]\nid = \"x\"\n"))]);
    assert!(e.contains("replies"), "{e}");
}

#[test]
fn bad_values_name_file_entry_and_key() {
    let cases = [
        (
            GOOD.replace("'(?i)blocked by example'", "'(?i)blocked by (example'"),
            "key `pattern`",
        ),
        (
            GOOD.replace(
                "'(?i)blocked by example'",
                "'(?i)blocked by (?P<zoen>example)'",
            ),
            "unknown named group",
        ),
        (
            GOOD.replace(
                r#"examples = ["550 5.7.1 blocked by example"]"#,
                "examples = []",
            ),
            "key `examples`",
        ),
        (
            GOOD.replace("550 5.7.1 blocked by example", "550 5.7.1 refused"),
            "key `examples[0]`",
        ),
        (
            GOOD.replace(r#"receiver = "example""#, r#"receiver = "nobody""#),
            "key `receiver`",
        ),
        (
            GOOD.replace(r#"meaning = "ip-reputation""#, r#"meaning = "ip-rep""#),
            "ip-rep",
        ),
        (
            GOOD.replace("https://example.net/postmaster", "example.net/postmaster"),
            "key `source`",
        ),
        (
            GOOD.replace(r#"id = "example-blocked""#, r#"id = "Example Blocked""#),
            "key `id`",
        ),
        (
            GOOD.replace(r"'(?i)\.example\.net$'", "'(?i)[example'"),
            "key `relays[0]`",
        ),
    ];
    for (text, want) in cases {
        let e = err_of(&[("bad.toml", &text)]);
        assert!(e.starts_with("bad.toml"), "{e}");
        assert!(e.contains(want), "want {want:?} in {e}");
    }
    let e = err_of(&[(
        "bad.toml",
        &GOOD.replace("'(?i)blocked by example'", "'(?i)blocked by (example'"),
    )]);
    assert!(e.contains(r#"reply "example-blocked""#), "{e}");
}

#[test]
fn duplicate_ids_name_both_files() {
    let e = err_of(&[("a.toml", GOOD), ("b.toml", GOOD)]);
    assert!(e.contains("b.toml") && e.contains("a.toml"), "{e}");
}

#[test]
fn unknown_list_ids_are_refused_against_the_catalog() {
    let text = GOOD.replace(
        r#"meaning = "ip-reputation""#,
        "meaning = \"ip-blocklist\"\nlist = \"no-such-list\"",
    );
    let c = ReplyCatalog::from_files(&[("l.toml", &text)]).unwrap();
    let e = c.check_lists(&Catalog::shipped().unwrap()).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("list"));
    assert!(e.to_string().contains("no-such-list"), "{e}");
}

#[test]
fn a_directory_overrides_and_adds_rules() {
    let (mut replies, lists) = shipped();
    let before = replies.rules().len();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("local.toml"),
        r#"
[[reply]]
id = "microsoft-s3150"
receiver = "microsoft"
pattern = '(?i)\bS3150\b'
meaning = "ip-blocklist"
source = "https://example.net/our-notes"
examples = ["550 5.7.1 (S3150)"]

[[reply]]
id = "local-zen"
pattern = '(?i)zen\.spamhaus\.org'
meaning = "policy"
source = "https://example.net/our-notes"
examples = ["blocked using zen.spamhaus.org"]
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not toml").unwrap();
    let replaced = replies.extend_from_dir(dir.path()).unwrap();
    assert_eq!(replaced, vec!["reply:microsoft-s3150".to_string()]);
    assert_eq!(replies.rules().len(), before + 1);
    assert_eq!(
        replies.rules()[0].id,
        "local-zen",
        "new rules are tried first"
    );
    let c = replies
        .classify("554 blocked using zen.spamhaus.org", None, &lists)
        .unwrap();
    assert_eq!(c.rule, "local-zen");
    let c = replies.classify("550 5.7.1 (S3150)", None, &lists).unwrap();
    assert_eq!(
        (c.rule.as_str(), c.meaning),
        ("microsoft-s3150", ReplyMeaning::IpBlocklist)
    );

    // a broken file changes nothing
    std::fs::write(dir.path().join("zz-broken.toml"), "[[reply]]\nid = 1\n").unwrap();
    let e = replies.extend_from_dir(dir.path()).unwrap_err();
    assert!(e.file.ends_with("zz-broken.toml"), "{e}");
    assert_eq!(replies.rules().len(), before + 1);

    let e = replies
        .extend_from_dir(&dir.path().join("missing"))
        .unwrap_err();
    assert!(e.msg.contains("cannot read"), "{e}");
}

#[test]
fn meanings_have_names_and_descriptions() {
    for m in ReplyMeaning::ALL {
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, format!("\"{}\"", m.as_str()));
        assert!(!m.describe().is_empty());
    }
    assert!(!ReplyMeaning::Recipient.about_us());
    assert!(ReplyMeaning::IpBlocklist.about_us());
}
