//! The engine against a real rbldnsd: every verdict and every health state.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rblwatch::catalog::Catalog;
use rblwatch::dns::{ClientConfig, DnsClient};
use rblwatch::engine::{ActiveList, Engine, EngineOpts};
use rblwatch::health::ListHealth;
use rblwatch::target::{RangePolicy, Target, TargetSpec};
use rblwatch::verdict::{Verdict, VerdictKind};

use crate::util::{fixtures, Rbldnsd};

async fn engine(rbl: &Rbldnsd, ids: &[&str], qps: Option<f64>) -> Engine {
    let mut cat = Catalog::shipped().unwrap();
    cat.extend_from_dir(&fixtures().join("lists.d")).unwrap();
    let lists = ids
        .iter()
        .map(|id| ActiveList::new(Arc::new(cat.get(id).unwrap().clone()), None, qps))
        .collect();
    let mut cc = ClientConfig::new(vec![rbl.addr().parse().unwrap()]);
    cc.timeout = Duration::from_millis(400);
    cc.retries = 0;
    Engine::new(
        DnsClient::new(&cc).await.unwrap(),
        lists,
        EngineOpts::default(),
    )
}

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

#[tokio::test]
async fn verdicts_from_a_real_rbldnsd() {
    let rbl = Rbldnsd::start();
    let e = engine(
        &rbl,
        &[
            "bl-test",
            "bl6-test",
            "dbl-test",
            "blocked-test",
            "outside-test",
            "refused-test",
            "timeout-test",
            "servfail-test",
        ],
        None,
    )
    .await;

    // IPv4 listing with two A records (two datasets) and TXT reasons: every record kept.
    match e.query(0, &t("192.0.2.1")).await {
        Verdict::Listed {
            codes,
            meanings,
            txt,
        } => {
            assert_eq!(
                codes,
                vec![
                    "127.0.0.3".parse::<std::net::Ipv4Addr>().unwrap(),
                    "127.0.0.4".parse().unwrap()
                ]
            );
            assert_eq!(
                meanings,
                vec!["second dataset".to_string(), "spam source".to_string()]
            );
            assert!(
                txt.iter().any(|s| s == "Spam source 192.0.2.1 (code 4)"),
                "{txt:?}"
            );
            assert!(
                txt.iter()
                    .any(|s| s == "Second dataset lists 192.0.2.1 too"),
                "{txt:?}"
            );
        }
        v => panic!("expected listed, got {v:?}"),
    }
    match e.query(0, &t("198.51.100.7")).await {
        Verdict::Listed {
            codes,
            meanings,
            txt,
        } => {
            assert_eq!(
                codes,
                vec!["127.0.0.10".parse::<std::net::Ipv4Addr>().unwrap()]
            );
            assert_eq!(meanings, vec!["dynamic range".to_string()]);
            assert_eq!(
                txt,
                vec!["Dynamic/dialup range 198.51.100.7 (code 10)".to_string()]
            );
        }
        v => panic!("expected listed, got {v:?}"),
    }
    assert_eq!(e.query(0, &t("192.0.2.200")).await, Verdict::Clear);
    // ::ffff:192.0.2.1 is normalised to IPv4 when parsed as a target
    assert_eq!(
        e.query(0, &t("::ffff:192.0.2.1")).await.kind(),
        VerdictKind::Listed
    );
    // IPv6 (nibbles), on the dual zone and the v6-only zone
    assert_eq!(
        e.query(0, &t("2001:db8:beef::1")).await.kind(),
        VerdictKind::Listed
    );
    assert_eq!(
        e.query(1, &t("2001:db8:dead::42")).await.kind(),
        VerdictKind::Listed
    );
    assert_eq!(e.query(1, &t("2001:db8:beef::2")).await, Verdict::Clear);
    // domains, with subdomain wildcards and IDNA
    assert_eq!(
        e.query(2, &t("a.b.evil.example")).await.meaning(),
        "phishing domain"
    );
    assert_eq!(
        e.query(2, &t("spammer.example")).await.kind(),
        VerdictKind::Listed
    );
    assert_eq!(e.query(2, &t("good.example")).await, Verdict::Clear);
    // an error code is never a listing
    let v = e.query(3, &t("192.0.2.1")).await;
    assert!(
        matches!(&v, Verdict::ListError { why, .. } if why.contains("public/open resolver")),
        "{v:?}"
    );
    // an answer outside 127/8 is an error
    let v = e.query(4, &t("192.0.2.1")).await;
    assert!(
        matches!(&v, Verdict::ListError { why, .. } if why.contains("outside 127.0.0.0/8")),
        "{v:?}"
    );
    // REFUSED is an error; timeout and SERVFAIL are unknown, never clear
    assert!(
        matches!(e.query(5, &t("192.0.2.1")).await, Verdict::ListError { why, .. } if why.contains("REFUSED"))
    );
    assert!(
        matches!(e.query(6, &t("192.0.2.1")).await, Verdict::Unknown { why } if why.contains("timeout"))
    );
    assert!(
        matches!(e.query(7, &t("192.0.2.1")).await, Verdict::Unknown { why } if why.contains("SERVFAIL"))
    );
}

#[tokio::test]
async fn list_health_states() {
    let rbl = Rbldnsd::start();
    let ids = [
        "bl-test",
        "bl6-test",
        "dbl-test",
        "all-test",
        "blocked-test",
        "outside-test",
        "refused-test",
        "timeout-test",
        "servfail-test",
        "dead-test",
    ];
    let e = engine(&rbl, &ids, None).await;
    let h = e.check_health().await;
    let names: Vec<&str> = h.iter().map(ListHealth::name).collect();
    assert_eq!(
        names,
        [
            "healthy",
            "healthy",
            "healthy",
            "lists-everything",
            "blocked",
            "lists-everything",
            "blocked",
            "unreachable",
            "unreachable",
            "dead"
        ]
    );
    assert!(h[4].why().contains("DQS"), "blocked advice: {}", h[4].why());
}

#[tokio::test]
async fn sweep_streams_every_pair_and_skips_unreachable_lists() {
    let rbl = Rbldnsd::start();
    let e = engine(
        &rbl,
        &["bl-test", "all-test", "timeout-test", "dbl-test"],
        None,
    )
    .await;
    let h = e.check_health().await;
    let specs = vec![
        TargetSpec::parse("198.51.100.0/28", RangePolicy::Normal).unwrap(),
        TargetSpec::parse("evil.example", RangePolicy::Normal).unwrap(),
    ];
    let started = std::time::Instant::now();
    let outcomes: Vec<_> = e.sweep(&specs, &h).collect().await;
    // 16 IPs x 3 IP lists + 1 domain x 1 domain list
    assert_eq!(outcomes.len(), 16 * 3 + 1);
    let listed_bl = outcomes
        .iter()
        .filter(|o| o.list == 0 && o.verdict.kind() == VerdictKind::Listed)
        .count();
    assert_eq!(listed_bl, 16);
    // all-test lists everything: the verdicts come back, health says not to count them
    assert!(!h[1].is_healthy());
    // the unreachable list is not queried 16 times (that would take 16 x 400 ms)
    assert!(outcomes
        .iter()
        .filter(|o| o.list == 2)
        .all(|o| matches!(&o.verdict, Verdict::Unknown { why } if why.contains("not queried"))));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn per_list_rate_cap_is_honoured() {
    let rbl = Rbldnsd::start();
    // 20 qps cap; 30 clear answers => the last query leaves at >= 29/20 s = 1.45 s
    let e = engine(&rbl, &["bl-test"], Some(20.0)).await;
    let specs = vec![TargetSpec::parse("192.0.2.128/27", RangePolicy::Normal).unwrap()];
    let h = vec![ListHealth::Healthy];
    let started = std::time::Instant::now();
    let mut stamps = Vec::new();
    let mut s = e.sweep(&specs, &h);
    while let Some(o) = s.next().await {
        assert_eq!(o.verdict, Verdict::Clear);
        stamps.push(started.elapsed());
    }
    let total = started.elapsed();
    assert_eq!(stamps.len(), 32);
    assert!(
        total >= Duration::from_millis(1540),
        "32 queries at 20/s took only {total:?}"
    );
    // and never more than 21 answers inside any one second
    for (i, a) in stamps.iter().enumerate() {
        let in_window = stamps[i..]
            .iter()
            .take_while(|b| **b < *a + Duration::from_secs(1))
            .count();
        assert!(in_window <= 21, "{in_window} answers within 1 s from {a:?}");
    }
    assert_eq!(
        e.client()
            .stats()
            .sent
            .load(std::sync::atomic::Ordering::Relaxed),
        32
    );
}

/// Issue 9: the daily budget is a hard cap (no query past it), and a negative
/// answer is not asked again within its SOA negative TTL (health checks always ask).
#[tokio::test]
async fn the_daily_budget_is_never_exceeded_and_negative_answers_are_kept() {
    use std::sync::atomic::Ordering::Relaxed;
    let rbl = Rbldnsd::start();
    let mut cat = Catalog::shipped().unwrap();
    cat.extend_from_dir(&fixtures().join("lists.d")).unwrap();
    let capped = ActiveList::new(Arc::new(cat.get("dyn-test").unwrap().clone()), None, None)
        .with_daily_limit(Some(5));
    let cached = ActiveList::new(Arc::new(cat.get("bl-test").unwrap().clone()), None, None);
    let mut cc = ClientConfig::new(vec![rbl.addr().parse().unwrap()]);
    cc.timeout = Duration::from_millis(400);
    cc.retries = 0;
    let e = Engine::new(
        DnsClient::new(&cc).await.unwrap(),
        vec![capped, cached],
        EngineOpts::default(),
    );
    let mut budget_stops = 0;
    for i in 1..=20 {
        let v = e.query(0, &t(&format!("192.0.2.{i}"))).await;
        if let Verdict::Unknown { why } = &v {
            assert!(why.contains("daily budget"), "{why}");
            budget_stops += 1;
        }
    }
    assert_eq!(budget_stops, 15);
    assert_eq!(e.lists()[0].counters.today.load(Relaxed), 5);
    assert_eq!(e.lists()[0].counters.queries.load(Relaxed), 5);
    // bl.test has an SOA with a 10 s negative TTL: the second ask is not sent
    let sent = || e.client().stats().sent.load(Relaxed);
    assert_eq!(e.query(1, &t("192.0.2.200")).await, Verdict::Clear);
    let before = sent();
    assert_eq!(e.query(1, &t("192.0.2.200")).await, Verdict::Clear);
    assert_eq!(sent(), before, "answered from the negative cache");
    // a listing is never cached; health checks always ask
    let before = sent();
    e.query(1, &t("192.0.2.1")).await;
    e.query(1, &t("192.0.2.1")).await;
    assert!(sent() >= before + 2);
    let before = sent();
    e.check_health().await;
    assert!(sent() > before);
}
