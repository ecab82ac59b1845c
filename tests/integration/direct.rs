//! Issue 9: `[resolver] mode = "direct"` against a real delegation on loopback:
//! NSD serves the root and the parents, which delegate `zen.spamhaus.org` to
//! rbldnsd instances on port 53 of their own 127.x.y.z addresses; a
//! "public resolver" stand-in answers Spamhaus' 127.255.255.254.

use std::sync::Arc;
use std::time::Duration;

use rblwatch::catalog::Catalog;
use rblwatch::dns::{ClientConfig, DnsClient};
use rblwatch::engine::{ActiveList, Engine, EngineOpts};
use rblwatch::target::Target;
use rblwatch::verdict::VerdictKind;

use crate::lab::{Dataset, DnsLab, DnsLabSpec};
use crate::util::{rblwatch, stdout};

const ZEN: &str = "zen.spamhaus.org";

fn zen_data() -> Dataset {
    Dataset::ip4set(
        "$SOA 60 ns1.zen.spamhaus.org. hostmaster.zen.spamhaus.org. 0 600 60 3600 10\n$TTL 10\n\
         :127.0.0.2:Listed in zen: $\n127.0.0.2\n192.0.2.5\n",
    )
}

fn config(dir: &std::path::Path, lab: &DnsLab, direct: bool) -> std::path::PathBuf {
    let hints: Vec<String> = lab
        .root_hints()
        .iter()
        .map(|h| format!("{:?}", h.to_string()))
        .collect();
    let text = format!(
        "[resolver]\nnameservers = [{:?}]\ntimeout = \"500ms\"\nretries = 1\n{}root_hints = [{}]\n\n[lists]\nuse = [\"spamhaus-zen\"]\n",
        lab.public_resolver().to_string(),
        if direct { "mode = \"direct\"\n" } else { "" },
        hints.join(", ")
    );
    let p = dir.join(if direct {
        "direct.toml"
    } else {
        "recursive.toml"
    });
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_list_blocked_through_a_public_resolver_answers_in_direct_mode() {
    let lab = DnsLab::start(DnsLabSpec::new().list(ZEN, 2, &[zen_data()]));
    let dir = tempfile::tempdir().unwrap();
    // through the "public resolver": blocked, and the advice names direct mode
    let cfg = config(dir.path(), &lab, false);
    let o = rblwatch(&["lists", "--health", "-C", cfg.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(
        out.lines().any(|l| l.starts_with("spamhaus-zen")
            && l.contains("blocked")
            && l.contains("public resolver")),
        "{out}"
    );
    assert!(out.contains("mode = \"direct\""), "{out}");
    // direct: the same list is healthy and the listed IP is listed
    let cfg = config(dir.path(), &lab, true);
    let o = rblwatch(&["lists", "--health", "-C", cfg.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(out.starts_with("resolver ok"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("spamhaus-zen") && l.contains("healthy")),
        "{out}"
    );
    let o = rblwatch(&[
        "check",
        "--json",
        "-C",
        cfg.to_str().unwrap(),
        "192.0.2.5",
        "192.0.2.6",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let verdict = |t: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == t)
            .map(|r| r["verdict"].as_str().unwrap().to_string())
    };
    assert_eq!(verdict("192.0.2.5").as_deref(), Some("listed"), "{v}");
    assert_eq!(verdict("192.0.2.6").as_deref(), Some("clear"), "{v}");
}

async fn direct_engine(lab: &DnsLab) -> Engine {
    let cat = Catalog::shipped().unwrap();
    let zen = ActiveList::new(
        Arc::new(cat.get("spamhaus-zen").unwrap().clone()),
        None,
        None,
    )
    .direct();
    let mut cc = ClientConfig::new(vec![lab.public_resolver()]);
    cc.timeout = Duration::from_millis(400);
    let opts = EngineOpts {
        root_hints: lab.root_hints(),
        timeout: Duration::from_millis(400),
        retries: 1,
        ..EngineOpts::default()
    };
    Engine::new(DnsClient::new(&cc).await.unwrap(), vec![zen], opts)
}

/// One of two servers down: every query is answered by the other (no unknown);
/// both down: the list is unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_fails_over_between_a_lists_servers() {
    let lab = DnsLab::start(DnsLabSpec::new().list(ZEN, 2, &[zen_data()]));
    let e = direct_engine(&lab).await;
    assert!(e.check_health().await[0].is_healthy());
    assert_eq!(e.lists()[0].direct_status().unwrap().servers.len(), 2);
    lab.stop_server(ZEN, 0);
    for i in 1..=40 {
        let v = e
            .query(0, &Target::parse(&format!("192.0.2.{i}")).unwrap())
            .await;
        let want = if i == 5 {
            VerdictKind::Listed
        } else {
            VerdictKind::Clear
        };
        assert_eq!(v.kind(), want, "192.0.2.{i}: {v:?}");
    }
    assert!(e.check_health().await[0].is_healthy());
    lab.stop_server(ZEN, 1);
    let h = e.check_health().await;
    assert_eq!(h[0].name(), "unreachable", "{h:?}");
}

/// The servers are found again once the NS TTL has run out: the zone moves
/// to a new server, the old ones stop, and the list stays healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_finds_the_servers_again_after_the_ns_ttl() {
    let lab = DnsLab::start(DnsLabSpec::new().list(ZEN, 2, &[zen_data()]).ns_ttl(2));
    let e = direct_engine(&lab).await;
    assert!(e.check_health().await[0].is_healthy());
    let before = e.lists()[0].direct_status().unwrap().servers;
    let i = lab.add_server(ZEN);
    let new = lab.server(ZEN, i);
    lab.set_delegation(
        ZEN,
        &[match new.ip() {
            std::net::IpAddr::V4(a) => a,
            std::net::IpAddr::V6(_) => unreachable!(),
        }],
    );
    lab.stop_server(ZEN, 0);
    lab.stop_server(ZEN, 1);
    tokio::time::sleep(lab.ns_ttl() + Duration::from_millis(500)).await;
    let h = e.check_health().await;
    assert!(h[0].is_healthy(), "{h:?}");
    let after = e.lists()[0].direct_status().unwrap().servers;
    assert_ne!(before, after);
    assert_eq!(after, vec![new.to_string()]);
    let v = e.query(0, &Target::parse("192.0.2.5").unwrap()).await;
    assert_eq!(v.kind(), VerdictKind::Listed);
}
