use super::*;
use crate::catalog::Catalog;
use crate::replies::{ReplyCatalog, ReplyMeaning};

const LOG: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/replies/delivery.log"
));

#[derive(Clone, Copy)]
enum Mta {
    Postfix,
    Exim,
}

/// What one fixture line must parse to (`None`: not a delivery result).
struct Expect {
    mta: Mta,
    queue_id: &'static str,
    recipient: &'static str,
    relay_host: Option<&'static str>,
    relay_ip: Option<&'static str>,
    dsn: Option<&'static str>,
    status: DeliveryStatus,
    /// Start and end of the reply; `None`: no reply.
    reply: Option<(&'static str, &'static str)>,
    stage: Option<&'static str>,
    /// Expected classification: (rule, receiver, meaning, list).
    class: Option<(
        &'static str,
        Option<&'static str>,
        ReplyMeaning,
        Option<&'static str>,
    )>,
}

const fn base(mta: Mta, queue_id: &'static str, recipient: &'static str) -> Expect {
    Expect {
        mta,
        queue_id,
        recipient,
        relay_host: None,
        relay_ip: None,
        dsn: None,
        status: DeliveryStatus::Deferred,
        reply: None,
        stage: None,
        class: None,
    }
}

fn expectations() -> Vec<Option<Expect>> {
    use DeliveryStatus::*;
    use Mta::*;
    use ReplyMeaning as M;
    vec![
        // 0: Outlook throttles for IP reputation
        Some(Expect {
            relay_host: Some("outlook-com.olc.protection.outlook.com"),
            relay_ip: Some("203.0.113.1"),
            dsn: Some("4.7.650"),
            reply: Some((
                "451 4.7.650 The mail server [192.0.2.25]",
                "GLXTWVLGZHZNHVXY]",
            )),
            stage: Some("MAIL FROM"),
            class: Some((
                "microsoft-ip-reputation-throttle",
                Some("microsoft"),
                M::IpReputation,
                None,
            )),
            ..base(Postfix, "4ZK3p34LgKz9rxN", "alice@outlook.com")
        }),
        // 1: Gmail, multi-line reply joined by Postfix, IPv6 relay
        Some(Expect {
            relay_host: Some("gmail-smtp-in.l.google.com"),
            relay_ip: Some("2001:db8:4001:c21::1a"),
            dsn: Some("5.7.1"),
            status: Bounced,
            reply: Some(("550-5.7.1 [2001:db8:1::25", "zh4si5810344pac.179 - gsmtp")),
            stage: Some("end of DATA"),
            class: Some((
                "google-likely-unsolicited",
                Some("google"),
                M::Content,
                None,
            )),
            ..base(Postfix, "1A2B3C4D5E", "bob@gmail.com")
        }),
        // 2: maillog_file timestamps, multi-instance syslog name
        Some(Expect {
            relay_host: Some("mta6.am0.yahoodns.net"),
            relay_ip: Some("203.0.113.72"),
            dsn: Some("4.7.0"),
            reply: Some((
                "421 4.7.0 [TSS04]",
                "https://postmaster.yahooinc.com/error-codes",
            )),
            stage: Some("MAIL FROM"),
            class: Some((
                "yahoo-temporarily-deferred",
                Some("yahoo"),
                M::IpReputation,
                None,
            )),
            ..base(Postfix, "5F6E7D8C9B", "carol@yahoo.com")
        }),
        // 3: no reply: connection refused; the host comes from the text
        Some(Expect {
            relay_host: Some("mx.example.org"),
            relay_ip: Some("203.0.113.9"),
            dsn: Some("4.4.1"),
            stage: Some("connect"),
            ..base(Postfix, "6A7B8C9D0E", "dave@example.org")
        }),
        // 4: greeting refused by GMX
        Some(Expect {
            relay_host: Some("mx00.emig.gmx.net"),
            relay_ip: Some("203.0.113.20"),
            dsn: Some("4.0.0"),
            reply: Some(("554-gmx.net (mxgmx104)", "r=1MNcgj-1ue23t3pyV-00S2YR")),
            stage: Some("connect"),
            class: Some((
                "united-internet-ip-block-listed",
                Some("united-internet"),
                M::IpReputation,
                None,
            )),
            ..base(Postfix, "7B8C9D0E1F", "erin@gmx.net")
        }),
        // 5: error(8) agent, relay=none, cached greeting refusal
        Some(Expect {
            relay_host: Some("mx1.example.net"),
            relay_ip: Some("203.0.113.71"),
            dsn: Some("4.0.0"),
            reply: Some((
                "554-mx1.example.net 554 Your access",
                "via alternate means.",
            )),
            stage: Some("connect"),
            class: Some((
                "cisco-ironport-poor-reputation",
                None,
                M::IpReputation,
                None,
            )),
            ..base(Postfix, "A35EF6C00AE", "frank@example.net")
        }),
        // 6: Exchange Online block list
        Some(Expect {
            relay_host: Some("example-com.mail.protection.outlook.com"),
            relay_ip: Some("203.0.113.202"),
            dsn: Some("5.7.606"),
            status: Bounced,
            reply: Some(("550 5.7.606 Access denied", "(AS16012609)")),
            stage: Some("RCPT TO"),
            class: Some((
                "microsoft-banned-sending-ip",
                Some("microsoft"),
                M::IpReputation,
                None,
            )),
            ..base(Postfix, "9D0E1F2A3B", "grace@example.com")
        }),
        // 7: the receiver's Spamhaus setup is broken
        Some(Expect {
            relay_host: Some("lists.example.org"),
            relay_ip: Some("203.0.113.51"),
            dsn: Some("5.7.1"),
            status: Bounced,
            reply: Some(("554 5.7.1 Service unavailable", "/pub/198.51.100.0")),
            stage: Some("RCPT TO"),
            class: Some(("spamhaus-open-resolver", None, M::ReceiverError, None)),
            ..base(Postfix, "AE1F2A3B4C", "list@lists.example.org")
        }),
        // 8: a real listing, mapped to the catalog
        Some(Expect {
            relay_host: Some("mail.example.net"),
            relay_ip: Some("203.0.113.30"),
            dsn: Some("5.7.1"),
            status: Bounced,
            reply: Some(("554 5.7.1 Service unavailable", "query/ip/192.0.2.25")),
            stage: Some("RCPT TO"),
            class: Some((
                "dnsbl-blocked-using",
                None,
                M::IpBlocklist,
                Some("spamhaus-zen"),
            )),
            ..base(Postfix, "BF2A3B4C5D", "henry@example.net")
        }),
        // 9: sent
        Some(Expect {
            relay_host: Some("gmail-smtp-in.l.google.com"),
            relay_ip: Some("203.0.113.27"),
            dsn: Some("2.0.0"),
            status: Sent,
            reply: Some(("250 2.0.0 OK  1700000000", "- gsmtp")),
            ..base(Postfix, "2A3B4C5D6E", "ivan@gmail.com")
        }),
        // 10: LMTP over a unix socket: a host but no IP
        Some(Expect {
            relay_host: Some("mx1.example.test"),
            dsn: Some("2.0.0"),
            status: Sent,
            reply: Some(("250 2.0.0 <judy@example.test> Saved", "Saved")),
            ..base(Postfix, "3B4C5D6E7F", "judy@example.test")
        }),
        // 11: local bounce: no remote reply
        Some(Expect {
            dsn: Some("5.1.1"),
            status: Bounced,
            ..base(Postfix, "B160399CAB5", "nouser-1e7b38fb@example.test")
        }),
        // 12: error(8) with a local reason (nested parentheses)
        Some(Expect {
            dsn: Some("4.4.1"),
            ..base(Postfix, "B68F499CAB9", "victim@victim.test")
        }),
        // 13: queue-manager expiry names no recipient
        Some(Expect {
            status: Expired,
            ..base(Postfix, "4C5D6E7F8A", "")
        }),
        // 14: soft_bounce turns a bounce into a deferral
        Some(Expect {
            dsn: Some("4.1.1"),
            ..base(Postfix, "C1D2E3F4A5", "nouser-5900538e@example.test")
        }),
        // 15: lost connection during the greeting
        Some(Expect {
            relay_host: Some("mx.example.org"),
            relay_ip: Some("203.0.113.9"),
            dsn: Some("4.4.2"),
            stage: Some("connect"),
            ..base(Postfix, "5D6E7F8A9B", "kate@example.org")
        }),
        // 16: timed out after the message was sent
        Some(Expect {
            relay_host: Some("mx.example.org"),
            relay_ip: Some("203.0.113.9"),
            dsn: Some("4.4.2"),
            stage: Some("end of DATA"),
            ..base(Postfix, "6E7F8A9B0C", "liam@example.org")
        }),
        // 17: iCloud
        Some(Expect {
            relay_host: Some("mx02.mail.icloud.com"),
            relay_ip: Some("203.0.113.25"),
            dsn: Some("5.7.1"),
            status: Bounced,
            reply: Some(("554 5.7.1 [CS01]", "HT204137")),
            stage: Some("end of DATA"),
            class: Some(("apple-local-policy", Some("apple"), M::Policy, None)),
            ..base(Postfix, "7F8A9B0C1D", "chat@example.nl")
        }),
        // 18: iCloud's Proofpoint refuses the greeting: attributed to Apple by relay
        Some(Expect {
            relay_host: Some("mx01.mail.icloud.com"),
            relay_ip: Some("203.0.113.17"),
            dsn: Some("4.0.0"),
            reply: Some(("554 5.7.0 Blocked", "ip=192.0.2.25")),
            stage: Some("connect"),
            class: Some(("proofpoint-pdr", Some("apple"), M::IpBlocklist, None)),
            ..base(Postfix, "8A9B0C1D2E", "mia@icloud.com")
        }),
        // 19: DNS failure: no host answered
        Some(Expect {
            dsn: Some("5.4.4"),
            status: Bounced,
            ..base(Postfix, "9B0C1D2E3F", "noah@nonexistent.example")
        }),
        // 20: T-Online, parentheses inside the reply
        Some(Expect {
            relay_host: Some("mx02.t-online.de"),
            relay_ip: Some("203.0.113.8"),
            dsn: Some("4.0.0"),
            reply: Some(("554 IP=192.0.2.25", "to clarify.) (BL)")),
            stage: Some("connect"),
            class: Some(("t-online-blocked", Some("t-online"), M::IpReputation, None)),
            ..base(Postfix, "0C1D2E3F4A", "olga@t-online.de")
        }),
        // 21-24: not delivery results
        None,
        None,
        None,
        None,
        // 25: Exim bounce, multi-line reply with literal \n
        Some(Expect {
            relay_host: Some("alt1.gmail-smtp-in.l.google.com"),
            relay_ip: Some("203.0.113.27"),
            dsn: Some("5.7.1"),
            status: Bounced,
            reply: Some(("550-5.7.1 [192.0.2.25", "r11si2166wmb.87 - gsmtp")),
            stage: Some("end of DATA"),
            class: Some((
                "google-likely-unsolicited",
                Some("google"),
                M::Content,
                None,
            )),
            ..base(Exim, "1wtcTj-00000008OnA-0eY6", "bob@gmail.com")
        }),
        // 26: Exim deferral (-46)
        Some(Expect {
            relay_host: Some("alt3.gmail-smtp-in.l.google.com"),
            relay_ip: Some("203.0.113.26"),
            dsn: Some("4.7.28"),
            reply: Some(("421-4.7.28 [192.0.2.25", "- gsmtp")),
            stage: Some("end of DATA"),
            class: Some(("google-rate-limited", Some("google"), M::RateLimit, None)),
            ..base(Exim, "1wtMbN-00000004FD2-1H7i", "carol@gmail.com")
        }),
        // 27: Exim, RCPT TO stage
        Some(Expect {
            relay_host: Some("example-com.mail.protection.outlook.com"),
            relay_ip: Some("203.0.113.10"),
            dsn: Some("5.7.606"),
            status: Bounced,
            reply: Some(("550 5.7.606 Access denied", "(AS16012609)")),
            stage: Some("RCPT TO"),
            class: Some((
                "microsoft-banned-sending-ip",
                Some("microsoft"),
                M::IpReputation,
                None,
            )),
            ..base(Exim, "1xVKN3-0004Lk-1l", "nataline@example.com")
        }),
        // 28: Exim deferral (-44), greylisting
        Some(Expect {
            relay_host: Some("mx.example.org"),
            relay_ip: Some("203.0.113.9"),
            dsn: Some("4.2.0"),
            reply: Some(("450 4.2.0", "Greylisted")),
            stage: Some("RCPT TO"),
            class: Some(("greylisted", None, M::Policy, None)),
            ..base(Exim, "1xVKN4-0004Lk-2m", "dave@example.org")
        }),
        // 29: Exim, connection refused
        Some(Expect {
            stage: Some("connect"),
            ..base(Exim, "1xVKN3-0004Lk-1l", "victim@victim.test")
        }),
        // 30: Exim, retry time not reached: no attempt
        Some(base(
            Exim,
            "1wtLQP-00000001GcB-3Fx5",
            "info5@mk.example.top",
        )),
        // 31: Exim gives up
        Some(Expect {
            status: Expired,
            ..base(Exim, "10HmaX-000000005vi-0000", "b@known.example")
        }),
        // 32: Exim, greeting refused
        Some(Expect {
            relay_host: Some("gw-smtp3.example.com.br"),
            relay_ip: Some("203.0.113.94"),
            status: Bounced,
            reply: Some((
                "554-gw-smtp3.example.com.br 554 Your access",
                "alternate means.",
            )),
            stage: Some("connect"),
            class: Some((
                "cisco-ironport-poor-reputation",
                None,
                M::IpReputation,
                None,
            )),
            ..base(Exim, "1xVKNu-0004cr-36", "nfe@example.com.br")
        }),
        // 33: Exim delivery, with milliseconds, time zone and pid
        Some(Expect {
            relay_host: Some("mymail.example.gr"),
            relay_ip: Some("203.0.113.25"),
            dsn: Some("2.0.0"),
            status: Sent,
            reply: Some(("250 2.0.0 Ok: queued as 5E5A4621BA2", "5E5A4621BA2")),
            ..base(Exim, "1wtYVW-0000000GFxD-3Ryp", "logs@example.gr")
        }),
        // 34: Exim LMTP error
        Some(Expect {
            relay_host: Some("127.0.0.1"),
            relay_ip: Some("127.0.0.1"),
            status: Bounced,
            reply: Some(("550-I don't like this user 550 Bad user", "Bad user")),
            stage: Some("DATA"),
            ..base(Exim, "10HmbA-000000005vi-0000", "userxy@myhost.test.ex")
        }),
        // 35: Exim through syslog, MAIL FROM with parameters
        Some(Expect {
            relay_host: Some("mta6.am0.yahoodns.net"),
            relay_ip: Some("203.0.113.72"),
            dsn: Some("4.7.0"),
            reply: Some(("421 4.7.0 [TSS04]", "error-codes")),
            stage: Some("MAIL FROM"),
            class: Some((
                "yahoo-temporarily-deferred",
                Some("yahoo"),
                M::IpReputation,
                None,
            )),
            ..base(Exim, "1xVKNv-0004cr-37", "carol@yahoo.com")
        }),
        // 36: Exim, connection closed after HELO
        Some(Expect {
            relay_host: Some("mx.example.org"),
            relay_ip: Some("203.0.113.9"),
            stage: Some("HELO"),
            ..base(Exim, "1xVKNw-0004cr-38", "userx@domain1")
        }),
        // 37: Exim, IPv6 host with a port, multi-line greeting
        Some(Expect {
            relay_host: Some("mx-ha.gmx.net"),
            relay_ip: Some("2001:db8::1a"),
            status: Bounced,
            reply: Some(("554-gmx.net (mxgmx104)", "r=1MNcgj-1ue23t3pyV-00S2YR")),
            stage: Some("connect"),
            class: Some((
                "united-internet-ip-block-listed",
                Some("united-internet"),
                M::IpReputation,
                None,
            )),
            ..base(Exim, "1xVKNx-0004cr-39", "ops@example.de")
        }),
        // 38-40: arrival, completion, reject log
        None,
        None,
        None,
    ]
}

#[test]
fn fixture_lines_parse_as_expected() {
    let replies = ReplyCatalog::shipped().unwrap();
    let lists = Catalog::shipped().unwrap();
    let lines: Vec<&str> = LOG.lines().collect();
    let expected = expectations();
    assert_eq!(
        lines.len(),
        expected.len(),
        "one expectation per fixture line"
    );
    for (n, (line, want)) in lines.iter().zip(expected).enumerate() {
        let (pf, ex) = (parse_postfix(line), parse_exim(line));
        let Some(want) = want else {
            assert_eq!((&pf, &ex), (&None, &None), "line {n}: {line}");
            continue;
        };
        let (got, other) = match want.mta {
            Mta::Postfix => (pf, ex),
            Mta::Exim => (ex, pf),
        };
        assert_eq!(other, None, "line {n}: parsed by the other parser");
        let got = got.unwrap_or_else(|| panic!("line {n} not parsed: {line}"));
        let ctx = format!("line {n}: {got:#?}");
        assert_eq!(got.queue_id, want.queue_id, "{ctx}");
        assert_eq!(got.recipient, want.recipient, "{ctx}");
        assert_eq!(got.relay_host.as_deref(), want.relay_host, "{ctx}");
        assert_eq!(
            got.relay_ip,
            want.relay_ip.map(|s| s.parse::<IpAddr>().unwrap()),
            "{ctx}"
        );
        assert_eq!(got.dsn.as_deref(), want.dsn, "{ctx}");
        assert_eq!(got.status, want.status, "{ctx}");
        assert_eq!(got.stage.as_deref(), want.stage, "{ctx}");
        match (got.reply.as_deref(), want.reply) {
            (None, None) => {}
            (Some(r), Some((start, end))) => {
                assert!(r.starts_with(start) && r.ends_with(end), "{ctx}");
                assert!(!r.contains("(in reply to") && !r.contains("\\n"), "{ctx}");
            }
            _ => panic!("reply mismatch, {ctx}"),
        }
        let class = got
            .reply
            .as_deref()
            .and_then(|r| replies.classify(r, got.relay_host.as_deref(), &lists));
        match (class, want.class) {
            (None, None) => {}
            (Some(c), Some((rule, receiver, meaning, list))) => {
                assert_eq!(c.rule, rule, "{ctx}");
                assert_eq!(c.receiver.as_deref(), receiver, "{ctx}");
                assert_eq!(c.meaning, meaning, "{ctx}");
                assert_eq!(c.list.as_deref(), list, "{ctx}");
            }
            (c, w) => panic!("classification {c:?}, want {:?}; {ctx}", w.map(|w| w.0)),
        }
    }
}

#[test]
fn stages_are_normalised() {
    assert_eq!(exim_stage("pipelined RCPT TO:<a@b>"), "RCPT TO");
    assert_eq!(exim_stage("MAIL FROM:<> SIZE=10"), "MAIL FROM");
    assert_eq!(exim_stage("end of data"), "end of DATA");
    assert_eq!(exim_stage("initial connection"), "connect");
    assert_eq!(exim_stage("EHLO mx.example.net"), "EHLO");
    assert_eq!(postfix_while_stage("sending RCPT TO"), "RCPT TO");
    assert_eq!(postfix_while_stage("sending message body"), "DATA");
    assert_eq!(postfix_while_stage("performing the EHLO handshake"), "EHLO");
}

#[test]
fn odd_but_valid_shapes() {
    // host name without brackets in "said:" (seen in edited reports), no relay
    let l = "Jul 23 20:27:28 ngm postfix/smtp[134875]: A2FD41FBCEE: to=<someone@gmail.com>, relay=none, delay=0.63, dsn=5.1.1, status=bounced (host gmail-smtp-in.l.google.com said: 550 5.1.1 The email account does not exist (in reply to RCPT TO command))";
    let r = parse_postfix(l).unwrap();
    assert_eq!(r.relay_host, None);
    assert_eq!(
        r.reply.as_deref(),
        Some("550 5.1.1 The email account does not exist")
    );
    assert_eq!(r.stage.as_deref(), Some("RCPT TO"));
    // address-verification probes are not deliveries
    let l = "Nov 23 10:00:00 mx postfix/smtp[1]: 1A2B3C: to=<a@example.com>, relay=mx.example.com[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status=undeliverable (host mx.example.com[192.0.2.1] said: 550 5.1.1 no such user (in reply to RCPT TO command))";
    assert_eq!(parse_postfix(l), None);
    // orig_to does not confuse the fields
    let l = "Nov 23 10:00:00 mx postfix/smtp[1]: 1A2B3C: to=<a@example.com>, orig_to=<alias@example.net>, relay=mx.example.com[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)";
    let r = parse_postfix(l).unwrap();
    assert_eq!(r.relay_host.as_deref(), Some("mx.example.com"));
    assert_eq!(r.reply.as_deref(), Some("250 ok"));
    // an Exim routing deferral has no transport and no host
    let l = "1999-03-02 09:44:33 10HmaZ-000000005vi-0000 == xxx@local.test.ex routing defer (-56): domain is in queue_domains";
    let r = parse_exim(l).unwrap();
    assert_eq!(
        (r.status, r.relay_host, r.reply),
        (DeliveryStatus::Deferred, None, None)
    );
    // an Exim subject containing a flag is not a delivery
    let l = r#"2026-08-11 00:05:05 1wtXBD-0000000CnX5-2Fy6 <= promo@shop.example H=(shop.example) [192.0.2.4] P=esmtpa S=900 T="Big Sale => 50% off => today""#;
    assert_eq!(parse_exim(l), None);
}

/// Property-style check: no input makes the parsers panic, and what they
/// return is well-formed.
#[test]
fn garbled_lines_never_panic() {
    fn check(line: &str) {
        for r in [parse_postfix(line), parse_exim(line)]
            .into_iter()
            .flatten()
        {
            assert!(!r.queue_id.is_empty(), "{line:?}");
            assert!(r.reply.as_deref().is_none_or(|s| !s.is_empty()), "{line:?}");
            assert!(r.stage.as_deref().is_none_or(|s| !s.is_empty()), "{line:?}");
        }
    }
    let mut rng = fastrand::Rng::with_seed(0x5eed_2026);
    let alphabet: Vec<char> = " \t[]()<>:;,=-*\"'\\n/.@012345abcXYZ\u{e9}\u{2014}\u{0}\u{3000}"
        .chars()
        .collect();
    let vocabulary = [
        "postfix/smtp[1]:",
        "Q1:",
        "to=<a@b>,",
        "relay=x[1.2.3.4]:25,",
        "relay=[",
        "dsn=5.7.1,",
        "status=bounced",
        "status=sent",
        "(host",
        "said:",
        "(in reply to",
        "command)",
        "refused to talk to me:",
        "connect to",
        "1xVKN3-0004Lk-1l",
        "**",
        "==",
        "=>",
        "H=",
        "[::1]:25",
        "SMTP error from remote mail server after",
        ": 550",
        "C=\"",
        "defer (-44)",
        "550-5.7.1",
        "\\n",
    ];
    for line in LOG.lines() {
        // every prefix and suffix at a char boundary
        for (i, _) in line.char_indices() {
            check(&line[..i]);
            check(&line[i..]);
        }
        // random character mutations
        for _ in 0..200 {
            let mut chars: Vec<char> = line.chars().collect();
            for _ in 0..rng.usize(1..6) {
                let at = rng.usize(..chars.len());
                chars[at] = alphabet[rng.usize(..alphabet.len())];
            }
            check(&chars.into_iter().collect::<String>());
        }
    }
    // random token soup
    for _ in 0..5000 {
        let n = rng.usize(0..14);
        let line: Vec<&str> = (0..n)
            .map(|_| vocabulary[rng.usize(..vocabulary.len())])
            .collect();
        let sep = if rng.bool() { " " } else { "" };
        check(&line.join(sep));
    }
}
