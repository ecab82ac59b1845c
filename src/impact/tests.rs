use super::*;

fn rej(
    receiver: &str,
    outcome: Outcome,
    meaning: Option<ReplyMeaning>,
    rule: &str,
    list: Option<&str>,
    cited: Option<&str>,
    count: u64,
) -> Rejection {
    Rejection {
        receiver: receiver.into(),
        outcome,
        meaning,
        rule: Some(rule.into()),
        list: list.map(str::to_string),
        zone: list.map(|_| "zen.spamhaus.org".to_string()),
        cited: cited.map(str::to_string),
        count,
        reply: format!("550 5.7.1 sample reply of {rule} <b>"),
        relay: Some("mx.example.net".into()),
        dsn: Some("5.7.1".into()),
        stage: Some("RCPT TO".into()),
        queue_ids: vec![format!("Q{count}")],
    }
}

fn listing(target: &str, list: &str) -> Listing {
    Listing {
        target: target.into(),
        list: list.into(),
        list_name: format!("{list} name"),
        delist: Some(format!("https://delist.example/{target}")),
    }
}

struct World {
    listings: Vec<Listing>,
    rejections: Vec<(i64, Rejection)>,
    monitored: BTreeMap<String, String>,
    receivers: BTreeMap<String, ReceiverInfo>,
    bs: Vec<String>,
    spikes: Vec<String>,
    vulnerable: Vec<(String, String)>,
    remedies: Vec<Remedy>,
    snds: Vec<crate::feeds::snds::Refusal>,
}

impl World {
    /// Microsoft refused `count` messages at second 990 citing Spamhaus ZEN
    /// (for the IP `cited`, when its reply names one).
    fn microsoft_cites_zen(&mut self, cited: Option<&str>, count: u64) {
        self.rejections.push((
            990,
            rej(
                "microsoft",
                Outcome::Rejected,
                BL,
                "microsoft-spamhaus",
                Some("spamhaus-zen"),
                cited,
                count,
            ),
        ));
    }

    fn new() -> Self {
        let mut monitored = BTreeMap::new();
        for l in ["spamhaus-zen", "backscatterer", "spamcop"] {
            monitored.insert(l.to_string(), format!("{l} name"));
        }
        let mut receivers = BTreeMap::new();
        receivers.insert(
            "microsoft".to_string(),
            ReceiverInfo {
                name: "Microsoft".into(),
                sender_page: Some("https://sender.office.com/".into()),
            },
        );
        World {
            listings: vec![],
            rejections: vec![],
            monitored,
            receivers,
            bs: vec!["backscatterer".into()],
            spikes: vec![],
            vulnerable: vec![],
            remedies: vec![],
            snds: vec![],
        }
    }

    fn assess(&self, threshold: u64) -> Assessment {
        assess(&Inputs {
            at: 1000,
            window_secs: 3600,
            threshold,
            listings: &self.listings,
            rejections: &self.rejections,
            monitored: &self.monitored,
            receivers: &self.receivers,
            backscatter_lists: &self.bs,
            ndr_spikes: &self.spikes,
            vulnerable: &self.vulnerable,
            findings: &[],
            remedies: &self.remedies,
            snds: &self.snds,
        })
    }
}

const REP: Option<ReplyMeaning> = Some(ReplyMeaning::IpReputation);
const BL: Option<ReplyMeaning> = Some(ReplyMeaning::IpBlocklist);

#[test]
fn own_reputation_with_no_listing_says_so() {
    let mut w = World::new();
    w.rejections.push((
        990,
        rej(
            "microsoft",
            Outcome::Rejected,
            REP,
            "microsoft-s3150",
            None,
            None,
            3,
        ),
    ));
    let a = w.assess(0);
    let r = &a.receivers[0];
    assert_eq!(r.verdict, ReceiverVerdict::OwnData);
    assert!(r.rejecting);
    assert_eq!(
        r.text,
        "Microsoft rejects mail for ip-reputation (microsoft-s3150); no monitored list lists you"
    );
    assert_eq!(r.sender_page.as_deref(), Some("https://sender.office.com/"));
    assert_eq!(r.last_at, 990);
    // over a threshold of 3 it is not "rejecting"
    assert!(!w.assess(3).receivers[0].rejecting);
}

#[test]
fn a_cited_listing_is_rejecting_and_critical_an_uncited_one_none_seen() {
    let mut w = World::new();
    w.listings = vec![
        listing("192.0.2.1", "spamhaus-zen"),
        listing("192.0.2.2", "spamhaus-zen"),
        listing("192.0.2.1", "spamcop"),
    ];
    w.microsoft_cites_zen(Some("192.0.2.1"), 2);
    let a = w.assess(0);
    let l = a.listing("192.0.2.1", "spamhaus-zen").unwrap();
    assert_eq!(
        (l.impact, l.severity, l.count),
        (ImpactState::Rejecting, Severity::Critical, 2)
    );
    assert_eq!(l.receivers, vec!["microsoft"]);
    assert!(
        l.text
            .starts_with("Microsoft refuses mail citing spamhaus-zen"),
        "{}",
        l.text
    );
    // the reply named .1: the listing of .2 on the same list is not what is cited
    assert_eq!(
        a.impact_of("192.0.2.2", "spamhaus-zen"),
        ImpactState::NoneSeen
    );
    assert_eq!(a.impact_of("192.0.2.1", "spamcop"), ImpactState::NoneSeen);
    // only the cited listing is kept; the others are counted
    assert_eq!((a.listings.len(), a.listed), (1, 3));
    assert_eq!(
        a.none_seen_text("spamcop"),
        "no receiver cited spamcop in the last 1h"
    );
    let r = &a.receivers[0];
    assert_eq!(r.verdict, ReceiverVerdict::CitesListing);
    assert_eq!(
        r.text,
        "Microsoft rejects mail citing spamhaus-zen, which lists 192.0.2.1"
    );
}

#[test]
fn a_reply_naming_no_ip_joins_every_listing_on_its_list() {
    let mut w = World::new();
    w.listings = vec![
        listing("192.0.2.1", "spamhaus-zen"),
        listing("192.0.2.2", "spamhaus-zen"),
    ];
    w.rejections.push((
        990,
        rej(
            "example.net",
            Outcome::Deferred,
            BL,
            "generic",
            Some("spamhaus-zen"),
            None,
            1,
        ),
    ));
    let a = w.assess(5);
    assert!(a
        .listings
        .iter()
        .all(|l| l.impact == ImpactState::Rejecting));
    assert!(!a.receivers[0].rejecting, "1 is not more than 5");
    assert!(
        a.receivers[0].text.contains("defers"),
        "{}",
        a.receivers[0].text
    );
}

#[test]
fn cited_lists_that_do_not_list_us_or_that_we_do_not_monitor() {
    let mut w = World::new();
    w.microsoft_cites_zen(None, 1);
    let a = w.assess(0);
    assert_eq!(a.receivers[0].verdict, ReceiverVerdict::CitesClearList);
    assert!(
        a.receivers[0].text.contains("the monitor sees no listing"),
        "{}",
        a.receivers[0].text
    );
    w.monitored.remove("spamhaus-zen");
    let a = w.assess(0);
    assert_eq!(
        a.receivers[0].verdict,
        ReceiverVerdict::CitesUnmonitoredList
    );
    let mut unknown = rej(
        "example.net",
        Outcome::Rejected,
        BL,
        "generic",
        None,
        None,
        1,
    );
    unknown.zone = Some("bl.<script>.example".into());
    w.rejections = vec![(990, unknown)];
    let a = w.assess(0);
    assert_eq!(
        a.receivers[0].verdict,
        ReceiverVerdict::CitesUnmonitoredList
    );
    assert_eq!(
        a.receivers[0].lists[0].zone.as_deref(),
        Some("bl.script.example"),
        "zones are reduced to DNS characters"
    );
}

#[test]
fn refusals_not_about_us_never_make_a_receiver_rejecting() {
    let mut w = World::new();
    w.rejections.push((
        990,
        rej(
            "example.net",
            Outcome::Rejected,
            Some(ReplyMeaning::Recipient),
            "generic-user-unknown",
            None,
            None,
            50,
        ),
    ));
    w.rejections.push((
        990,
        rej(
            "example.net",
            Outcome::Rejected,
            None,
            "none",
            None,
            None,
            50,
        ),
    ));
    w.rejections.push((
        990,
        rej(
            "example.net",
            Outcome::Rejected,
            Some(ReplyMeaning::ReceiverError),
            "open-resolver",
            Some("spamhaus-zen"),
            None,
            50,
        ),
    ));
    w.listings = vec![listing("192.0.2.1", "spamhaus-zen")];
    let a = w.assess(0);
    assert!(!a.receivers[0].rejecting);
    assert_eq!(a.receivers[0].verdict, ReceiverVerdict::NotAboutUs);
    assert_eq!(a.receivers[0].other, 150);
    assert_eq!(
        a.impact_of("192.0.2.1", "spamhaus-zen"),
        ImpactState::NoneSeen,
        "an open-resolver error is no citation"
    );
    assert!(a.listings.is_empty());
}

#[test]
fn transitions_raise_once_and_clear() {
    let mut w = World::new();
    w.listings = vec![listing("192.0.2.1", "spamhaus-zen")];
    w.microsoft_cites_zen(None, 2);
    let a = w.assess(0);
    let (act, ev) = transitions(&Active::default(), &a, &w.listings);
    let kinds: Vec<EventKind> = ev.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::ReceiverRejecting, EventKind::ListingRejecting]
    );
    assert_eq!(ev[0].severity, Severity::Critical);
    assert_eq!(
        ev[0].details["replies"][0]["text"],
        "550 5.7.1 sample reply of microsoft-spamhaus <b>"
    );
    assert_eq!(ev[0].details["sender_page"], "https://sender.office.com/");
    assert_eq!(ev[1].subject, Subject::pair("192.0.2.1", "spamhaus-zen"));
    assert!(
        !ev.iter().any(|e| e.summary.contains("<b>")),
        "summaries hold no remote text"
    );
    // again: nothing new
    let (act2, ev) = transitions(&act, &a, &w.listings);
    assert!(ev.is_empty());
    assert_eq!(act2, act);
    // the window empties: both clear
    w.rejections.clear();
    let (act3, ev) = transitions(&act2, &w.assess(0), &w.listings);
    let kinds: Vec<EventKind> = ev.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::ReceiverRejectingCleared,
            EventKind::ListingRejectingCleared
        ]
    );
    assert_eq!(act3, Active::default());
    // still listed, no longer cited: said so, with the listing's details
    assert!(
        ev[1]
            .summary
            .contains("no receiver cites the listing any more"),
        "{}",
        ev[1].summary
    );
    assert_eq!(ev[1].details["impact"]["state"], "none_seen");
    assert_eq!(ev[1].details["delist"], "https://delist.example/192.0.2.1");
    // the listing itself ended: said so instead
    let (_, ended) = transitions(&act2, &w.assess(0), &[]);
    assert!(
        ended[1].summary.contains("the listing ended"),
        "{}",
        ended[1].summary
    );
    for e in &ev {
        assert_eq!(
            e.kind.clears().map(|k| k.severity()),
            Some(Severity::Critical)
        );
    }
}

#[test]
fn backscatter_source_needs_a_backscatter_listing_and_evidence() {
    let mut w = World::new();
    w.listings = vec![
        listing("192.0.2.1", "backscatterer"),
        listing("192.0.2.2", "spamhaus-zen"),
    ];
    assert!(
        w.assess(0).backscatter.is_empty(),
        "a listing alone is not enough"
    );
    w.vulnerable = vec![("127.0.0.1:25".into(), "example.test".into())];
    w.remedies = vec![Remedy {
        hook: "strict".into(),
        on: vec!["backscatter_source".into()],
        command: vec!["hooks/postfix-strict-recipients".into(), "enable".into()],
    }];
    let a = w.assess(0);
    assert_eq!(a.backscatter.len(), 1);
    let b = &a.backscatter[0];
    assert_eq!(b.target, "192.0.2.1");
    assert!(
        b.diagnosis
            .contains("accepting mail for unknown recipients"),
        "{}",
        b.diagnosis
    );
    assert!(
        b.remediation[0].contains("hooks/postfix-strict-recipients enable"),
        "{:?}",
        b.remediation
    );
    assert!(b
        .remediation
        .last()
        .unwrap()
        .contains("https://delist.example/192.0.2.1"));
    let (act, ev) = transitions(&Active::default(), &a, &w.listings);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, EventKind::BackscatterSource);
    assert_eq!(ev[0].subject.target(), Some("192.0.2.1"));
    assert_eq!(ev[0].details["delist"], "https://delist.example/192.0.2.1");
    // the NDR spike alone is evidence too; without either it clears
    w.vulnerable.clear();
    w.spikes = vec!["mxlog.ndr_generated".into()];
    assert_eq!(w.assess(0).backscatter.len(), 1);
    w.spikes.clear();
    let (_, ev) = transitions(&act, &w.assess(0), &w.listings);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, EventKind::BackscatterSourceCleared);
}

#[test]
fn quiet_receivers_are_capped_the_ones_that_matter_kept() {
    let mut w = World::new();
    for i in 0..(MAX_QUIET_RECEIVERS + 5) {
        w.rejections.push((
            990,
            rej(
                &format!("d{i}.example"),
                Outcome::Rejected,
                Some(ReplyMeaning::Recipient),
                "user-unknown",
                None,
                None,
                1,
            ),
        ));
    }
    w.rejections.push((
        990,
        rej(
            "microsoft",
            Outcome::Deferred,
            REP,
            "microsoft-s3150",
            None,
            None,
            1,
        ),
    ));
    let a = w.assess(5);
    assert_eq!(a.receivers.len(), MAX_QUIET_RECEIVERS + 1);
    assert_eq!(a.receivers_omitted, 5);
    assert_eq!(
        a.receivers[0].id, "microsoft",
        "about us first, though not over the threshold"
    );
}

#[test]
fn a_large_sender_s_assessment_holds_its_refusals_not_its_listings() {
    let mut w = World::new();
    // 40,000 listings (a /16 on several lists), one of them cited
    w.listings = (0..40_000u32)
        .map(|i| {
            listing(
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                "spamhaus-zen",
            )
        })
        .collect();
    w.microsoft_cites_zen(Some("10.0.0.7"), 2);
    let a = w.assess(0);
    assert_eq!((a.listings.len(), a.listed), (1, 40_000));
    assert_eq!(
        a.impact_of("10.0.0.7", "spamhaus-zen"),
        ImpactState::Rejecting
    );
    assert_eq!(
        a.impact_of("10.0.0.8", "spamhaus-zen"),
        ImpactState::NoneSeen
    );
    let size = serde_json::to_vec(&a).unwrap().len();
    assert!(
        size < 10_000,
        "{size} bytes stored and published per assessment"
    );
}

#[test]
fn snds_red_or_blocked_with_no_listing_is_refused_by_microsoft_with_the_evidence() {
    use crate::feeds::snds::{parse_data, Refusal};
    let mut w = World::new();
    let a = w.assess(5);
    assert!(a.rejecting().next().is_none());
    let rows = parse_data(b"198.51.100.12,12/4/2026 10:00 AM,12/4/2026 9:00 PM,14121,14121,12960,RED,4.2%,12/4/2026 8:07 AM,12/4/2026 11:53 AM,26,mx3.example.com,promo@example.com,\r\n").unwrap();
    w.snds = vec![
        Refusal {
            ip: "192.0.2.0-192.0.2.3".into(),
            blocked: Some("Blocked due to user complaints".into()),
            red: None,
        },
        Refusal {
            ip: "198.51.100.12".into(),
            blocked: None,
            red: Some(("2026-12-04".into(), rows[0].clone())),
        },
    ];
    let a = w.assess(5);
    let ms: Vec<_> = a.rejecting().collect();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0].id, SNDS_RECEIVER);
    assert_eq!(ms[0].verdict, ReceiverVerdict::OwnData);
    assert_eq!(ms[0].rejected, 12960);
    assert_eq!(
        ms[0].text,
        "Microsoft refuses mail from 192.0.2.0-192.0.2.3, 198.51.100.12: SNDS: 192.0.2.0-192.0.2.3 blocked (Blocked due to user complaints); SNDS: 198.51.100.12 filter result RED on 2026-12-04 (complaint rate 4.2 %, 26 trap hits, 12960 recipients); no monitored list lists it"
    );
    // raised once as receiver_rejecting, cleared when SNDS no longer says so
    let (next, ev) = transitions(&Active::default(), &a, &[]);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, EventKind::ReceiverRejecting);
    let (_, ev) = transitions(&next, &a, &[]);
    assert!(ev.is_empty());
    w.snds.clear();
    let (_, ev) = transitions(&next, &w.assess(5), &[]);
    assert_eq!(ev[0].kind, EventKind::ReceiverRejectingCleared);
}

#[test]
fn a_refusal_citing_an_address_joins_the_listed_piece_it_lies_in() {
    let mut w = World::new();
    // range targets checked whole are listed by piece: a CIDR, a first-last
    // range, a /64; the refusals cite one address in each
    w.listings = vec![
        listing("198.51.104.0/22", "spamhaus-zen"),
        listing("198.51.100.0-198.51.100.76", "spamhaus-zen"),
        listing("2001:db8:5500:7::/64", "spamhaus-zen"),
        listing("198.51.100.78-198.51.100.255", "spamhaus-zen"),
    ];
    w.microsoft_cites_zen(Some("198.51.104.7"), 2);
    w.microsoft_cites_zen(Some("198.51.100.76"), 1);
    w.microsoft_cites_zen(Some("2001:db8:5500:7::25"), 1);
    let a = w.assess(0);
    for piece in [
        "198.51.104.0/22",
        "198.51.100.0-198.51.100.76",
        "2001:db8:5500:7::/64",
    ] {
        assert_eq!(
            a.impact_of(piece, "spamhaus-zen"),
            ImpactState::Rejecting,
            "{piece}: {a:#?}"
        );
    }
    assert_eq!(
        a.listing("198.51.104.0/22", "spamhaus-zen").unwrap().count,
        2
    );
    // no refusal cites an address in the last piece (.77 is not in either)
    assert_eq!(
        a.impact_of("198.51.100.78-198.51.100.255", "spamhaus-zen"),
        ImpactState::NoneSeen
    );
    let r = &a.receivers[0];
    assert_eq!(r.verdict, ReceiverVerdict::CitesListing, "{r:#?}");
    assert!(r.text.contains("198.51.104.0/22"), "{}", r.text);
    assert!(!r.text.contains("198.51.100.78"), "{}", r.text);
}

#[test]
fn an_address_outside_every_listed_piece_is_not_joined() {
    let mut w = World::new();
    w.listings = vec![listing("198.51.104.0/22", "spamhaus-zen")];
    w.microsoft_cites_zen(Some("198.51.108.1"), 2);
    let a = w.assess(0);
    assert_eq!(
        a.impact_of("198.51.104.0/22", "spamhaus-zen"),
        ImpactState::NoneSeen
    );
    assert_eq!(a.receivers[0].verdict, ReceiverVerdict::CitesClearList);
}
