//! Lists from local mirrors: the same verdicts as rbldnsd serving the same files,
//! all-or-nothing reloads, staleness, bad input, intersections.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rblwatch::catalog::{parse_file, ListDef};
use rblwatch::dns::{ClientConfig, DnsClient};
use rblwatch::engine::{mirror_verdict, ActiveList, Engine, EngineOpts};
use rblwatch::mirror::{Mirror, MirrorConf};
use rblwatch::target::Target;
use rblwatch::verdict::Verdict;

use crate::util::Rbldnsd;

fn list(id: &str, zone: &str, kind: &str) -> ListDef {
    parse_file(
        "own.toml",
        &format!(
            r#"[[list]]
id = "{id}"
zone = "{zone}"
kind = "{kind}"
returns = [
  {{ code = "127.0.0.2-127.0.0.20", meaning = "listed" }},
  {{ code = "127.0.1.2-127.0.1.20", meaning = "domain listed" }},
  {{ code = "127.255.255.254", verdict = "error", cause = "public-resolver", meaning = "query via a public resolver" }},
]"#
        ),
    )
    .unwrap()
    .remove(0)
}

const HEAD: &str = "$SOA 60 ns.x.test hm.x.test 0 600 60 3600 10\n$TTL 10\n";

/// A random value suffix in any of the forms rbldnsd knows (or none).
fn value(r: &mut fastrand::Rng) -> String {
    match r.u8(0..12) {
        0..=3 => String::new(),
        4 => format!(" :{}:Spam $ code {}", r.u8(2..12), r.u8(0..9)),
        5 => format!(" :127.0.0.{}", r.u8(2..12)),
        6 => format!(" :{}:", r.u8(2..12)),
        7 => " Text only $ via $1".to_string(),
        8 => " # a comment, default value".to_string(),
        9 => " :127.255.255.254:refused $".to_string(),
        10 => " :127.0.0.5:dollar $$ and $9 unset".to_string(),
        _ => format!(" :127.0.0.{}:$", r.u8(2..20)),
    }
}

fn v4(base: u32, r: &mut fastrand::Rng) -> Ipv4Addr {
    Ipv4Addr::from(base | r.u32(0..1 << 18))
}

/// The generated datasets: (file name, type, content) per zone, and targets near their entries.
struct Data {
    files: Vec<(String, String, String, String)>, // zone, type, file, content
    ip_targets: Vec<IpAddr>,
    names: Vec<String>,
}

fn generate(seed: u64) -> Data {
    let mut r = fastrand::Rng::with_seed(seed);
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    let mut t4: Vec<u32> = Vec::new();
    let mut files = Vec::new();

    // ip4set: every address syntax, exclusions, multi-value entries, changing defaults
    let mut s = format!("{HEAD}$1 http://bl.test/q\n:127.0.0.2:Listed $ see $1?$\n");
    for i in 0..3000 {
        if i % 500 == 0 {
            let _ = writeln!(s, ":{}:Default {i} for $", r.u8(2..9));
        }
        let a = u32::from(v4(base, &mut r));
        let o = Ipv4Addr::from(a).octets();
        let (line, lo, hi) = match r.u8(0..10) {
            0..=3 => (Ipv4Addr::from(a).to_string(), a, a),
            4 => {
                let len = r.u8(20..32);
                let n = a & (u32::MAX << (32 - len));
                (
                    format!("{}/{len}", Ipv4Addr::from(n)),
                    n,
                    n | !(u32::MAX << (32 - len)),
                )
            }
            5 => {
                let e = a.saturating_add(r.u32(1..700));
                (format!("{}-{}", Ipv4Addr::from(a), Ipv4Addr::from(e)), a, e)
            }
            6 => {
                let e = o[3].max(r.u8(0..=255));
                (
                    format!("{}-{e}", Ipv4Addr::from(a)),
                    a,
                    (a & !255) | u32::from(e),
                )
            }
            7 => (format!("{}.{}.{}", o[0], o[1], o[2]), a & !255, a | 255),
            8 => {
                // an exclusion inside something listed
                let x = a;
                let _ = writeln!(s, "{}/24{}", Ipv4Addr::from(a & !255), value(&mut r));
                (format!("!{}", Ipv4Addr::from(x)), x, x)
            }
            _ => {
                // several values for one address
                let _ = writeln!(s, "{} :{}:first $", Ipv4Addr::from(a), r.u8(2..9));
                (
                    format!("{} :{}:second $", Ipv4Addr::from(a), r.u8(2..9)),
                    a,
                    a,
                )
            }
        };
        let _ = writeln!(
            s,
            "{line}{}",
            if line.starts_with('!') || line.contains(':') {
                String::new()
            } else {
                value(&mut r)
            }
        );
        t4.extend([
            lo,
            hi,
            lo.wrapping_sub(1),
            hi.wrapping_add(1),
            lo + (hi - lo) / 2,
        ]);
    }
    s.push_str("999.1.2.3\n10.0.0.1/33\n10.0.0.1/24\n");
    files.push(("ip.test".into(), "ip4set".into(), "ip.ip4set".into(), s));

    // ip4tset: single addresses, one value
    let mut s = format!("{HEAD}:127.0.0.3:tset $\n:127.0.0.9:ignored second default\n");
    for _ in 0..2000 {
        let a = u32::from(v4(base, &mut r));
        let _ = writeln!(
            s,
            "{}{}",
            Ipv4Addr::from(a),
            if r.bool() { " ignored value" } else { "" }
        );
        t4.extend([a, a + 1]);
    }
    files.push(("ip.test".into(), "ip4tset".into(), "ip.ip4tset".into(), s));

    // ip4trie: nested prefixes, per-prefix values, exclusions, duplicates (first wins)
    let mut s = format!("{HEAD}:127.0.0.6:trie $\n");
    for _ in 0..2000 {
        let a = u32::from(v4(base, &mut r));
        let len = r.u8(14..=32);
        let n = a & (u32::MAX << (32 - len));
        let excl = r.u8(0..8) == 0;
        let _ = writeln!(
            s,
            "{}{}/{len}{}",
            if excl { "!" } else { "" },
            Ipv4Addr::from(n),
            if excl { String::new() } else { value(&mut r) }
        );
        if r.u8(0..20) == 0 {
            let _ = writeln!(s, "{}/{len} :7:duplicate", Ipv4Addr::from(n));
        }
        t4.extend([n, n | !(u32::MAX << (32 - len)), a]);
    }
    files.push(("ip.test".into(), "ip4trie".into(), "ip.ip4trie".into(), s));

    // ip6trie: prefixes, exclusions, values; also over 2002::/16 (6to4, also read as IPv4)
    let mut t6: Vec<u128> = Vec::new();
    let mut s = format!("{HEAD}:127.0.0.8:v6 $\n");
    let b6 = u128::from("2001:db8::".parse::<Ipv6Addr>().unwrap());
    for i in 0..2000 {
        let a = if i % 10 == 0 {
            // 6to4 of 10.x: 2002:0a..
            (0x2002u128 << 112)
                | (u128::from(u32::from(v4(base, &mut r))) << 80)
                | u128::from(r.u64(..))
        } else {
            b6 | (u128::from(r.u16(0..64)) << 80)
                | (u128::from(r.u64(..)) << 16)
                | u128::from(r.u16(..))
        };
        let len = r.u8(40..=128);
        let m = if len == 128 {
            u128::MAX
        } else {
            !(u128::MAX >> len)
        };
        let n = a & m;
        let excl = r.u8(0..8) == 0;
        let _ = writeln!(
            s,
            "{}{}/{len}{}",
            if excl { "!" } else { "" },
            Ipv6Addr::from(n),
            if excl { String::new() } else { value(&mut r) }
        );
        t6.extend([n, n | !m, a, n.wrapping_sub(1)]);
    }
    s.push_str("2001:db8:ffff:1 :9:short form /64\n::ffff:7f00:2\n");
    t6.push(u128::from(
        "2001:db8:ffff:1::1".parse::<Ipv6Addr>().unwrap(),
    ));
    files.push(("ip.test".into(), "ip6trie".into(), "ip.ip6trie".into(), s));

    // ip6tset: /64s in four words, /128 exclusions
    let mut s = format!("{HEAD}:127.0.0.10:tset6 $\n");
    for _ in 0..1500 {
        let a = b6 | (0xaau128 << 80) | (u128::from(r.u16(0..4096)) << 64);
        let w: Vec<String> = (0..4)
            .map(|i| format!("{:x}", (a >> (112 - 16 * i)) as u16))
            .collect();
        let _ = writeln!(s, "{}", w.join(":"));
        let x = a | u128::from(r.u8(0..8));
        if r.u8(0..4) == 0 {
            let _ = writeln!(s, "!{}", Ipv6Addr::from(x));
        }
        t6.extend([a, x, a | 7, a + (1u128 << 64)]);
    }
    files.push(("ip.test".into(), "ip6tset".into(), "ip.ip6tset".into(), s));

    // dnset: exact, `.name` (name and below), `*.name` (below only), exclusions, multi-values
    let mut names: Vec<String> = Vec::new();
    let mut s = format!("{HEAD}$2 see http://dbl.test/\n:127.0.1.2:Domain $ listed, $2\n");
    for i in 0..2000 {
        let d = format!(
            "d{}.{}",
            r.u16(0..1500),
            ["example", "test", "com.example"][i % 3]
        );
        let line = match r.u8(0..7) {
            0 | 1 => format!("{d}{}", value(&mut r)),
            2 => format!(".{d} :127.0.1.4:Phish $"),
            3 => format!("*.{d} :127.0.1.10:Wild $"),
            4 => format!("!{d}"),
            5 => format!("!x.{d}"),
            _ => format!("{d} :127.0.1.{}:multi $\n{d} :127.0.1.3:other", r.u8(5..9)),
        };
        let _ = writeln!(s, "{line}");
        names.extend([
            d.clone(),
            format!("x.{d}"),
            format!("a.b.{d}"),
            format!("y{d}"),
        ]);
    }
    files.push(("dn.test".into(), "dnset".into(), "dn.dnset".into(), s));

    // combined: the zone's own datasets (@) and one for a subzone only
    let mut s = format!("{HEAD}$DATASET ip4set:main @\n:127.0.0.11:combined $\n");
    for _ in 0..1000 {
        let a = u32::from(v4(base, &mut r));
        let _ = writeln!(s, "{}{}", Ipv4Addr::from(a), value(&mut r));
        t4.push(a);
    }
    s.push_str("$DATASET ip4set:other sub\n10.0.0.0/8 :12:subzone only\n$DATASET ip6trie:six @\n:127.0.0.12:six $\n");
    for _ in 0..500 {
        let a = b6 | (u128::from(r.u16(0..64)) << 80) | (u128::from(r.u64(..)) << 16);
        let _ = writeln!(s, "{}/112", Ipv6Addr::from(a));
        t6.push(a | 9);
    }
    files.push((
        "comb.test".into(),
        "combined".into(),
        "comb.combined".into(),
        s,
    ));

    let mut ip_targets: Vec<IpAddr> = t4.into_iter().map(|a| IpAddr::V4(a.into())).collect();
    ip_targets.extend(t6.into_iter().map(|a| IpAddr::V6(a.into())));
    // and plain random addresses of both families, IPv4-mapped ones included
    for _ in 0..5000 {
        ip_targets.push(IpAddr::V4(v4(base, &mut r)));
        ip_targets.push(IpAddr::V6(
            (b6 | (u128::from(r.u16(0..64)) << 80) | u128::from(r.u64(..))).into(),
        ));
    }
    for _ in 0..200 {
        ip_targets.push(IpAddr::V6(v4(base, &mut r).to_ipv6_mapped()));
    }
    ip_targets.sort();
    ip_targets.dedup();
    names.sort();
    names.dedup();
    Data {
        files,
        ip_targets,
        names,
    }
}

fn normalise(mut v: Verdict) -> Verdict {
    if let Verdict::Listed { txt, .. } = &mut v {
        // the order of TXT records in an answer carries no meaning
        txt.sort();
    }
    v
}

async fn dns_engine(rbl: &Rbldnsd, lists: Vec<ActiveList>) -> Engine {
    let mut cc = ClientConfig::new(vec![rbl.addr().parse().unwrap()]);
    cc.timeout = Duration::from_millis(1500);
    cc.retries = 3;
    Engine::new(
        DnsClient::new(&cc).await.unwrap(),
        lists,
        EngineOpts {
            concurrency: 48,
            ..EngineOpts::default()
        },
    )
}

fn mirror_of(dir: &std::path::Path) -> Mirror {
    let mut c = MirrorConf::new(dir.to_path_buf());
    c.settle = Duration::ZERO;
    let m = Mirror::new(c);
    let st = m.refresh();
    assert!(st.loaded && st.error.is_none(), "{st:?}");
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_verdicts_equal_rbldnsd_over_100k_targets_and_every_dataset_type() {
    let data = generate(25);
    let files: Vec<(String, String)> = data
        .files
        .iter()
        .map(|(_, _, f, c)| (f.clone(), c.clone()))
        .collect();
    let args: Vec<String> = data
        .files
        .iter()
        .map(|(z, t, f, _)| format!("{z}:{t}:{f}"))
        .collect();
    let rbl = Rbldnsd::start_with(&files, &args);
    let mirrors = tempfile::tempdir().unwrap();
    for (zone, _, f, c) in &data.files {
        let d = mirrors.path().join(zone);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(f), c).unwrap();
    }
    let defs = [
        list("ip", "ip.test", "ip"),
        list("dn", "dn.test", "domain"),
        list("comb", "comb.test", "ip"),
    ];
    let e = dns_engine(
        &rbl,
        defs.iter()
            .map(|d| ActiveList::new(Arc::new(d.clone()), None, None))
            .collect(),
    )
    .await;
    let ms: Vec<Mirror> = ["ip.test", "dn.test", "comb.test"]
        .iter()
        .map(|z| mirror_of(&mirrors.path().join(z)))
        .collect();

    let mut pairs: Vec<(usize, Target)> = Vec::new();
    for ip in &data.ip_targets {
        pairs.push((0, Target::Ip(*ip)));
        if pairs.len().is_multiple_of(3) {
            pairs.push((2, Target::Ip(*ip)));
        }
    }
    for n in &data.names {
        pairs.push((1, Target::Domain(n.clone())));
    }
    let mut i = 0;
    while pairs.len() < 100_000 {
        pairs.push((2, Target::Ip(data.ip_targets[i % data.ip_targets.len()])));
        i += 7;
    }
    assert!(pairs.len() >= 100_000, "{}", pairs.len());

    let dns: Vec<Verdict> = futures::stream::iter(pairs.iter())
        .map(|(li, t)| e.query(*li, t))
        .buffered(48)
        .collect()
        .await;
    let mut diffs = String::new();
    let (mut listed, mut errors, mut unknown) = (0, 0, 0);
    let mut kinds = std::collections::BTreeSet::new();
    for ((li, t), d) in pairs.iter().zip(dns) {
        let m = mirror_verdict(&defs[*li], &ms[*li], t);
        match &d {
            Verdict::Listed { .. } => {
                listed += 1;
                kinds.insert((*li, format!("{t}").contains(':')));
            }
            Verdict::ListError { .. } => errors += 1,
            Verdict::Unknown { .. } => unknown += 1,
            _ => {}
        }
        let (d, m) = (normalise(d), normalise(m));
        if d != m && diffs.lines().count() < 40 {
            let _ = writeln!(
                diffs,
                "{} {t}:\n  dns    {d:?}\n  mirror {m:?}",
                defs[*li].id
            );
        }
    }
    eprintln!(
        "{} pairs: {listed} listed, {errors} errors; kinds {kinds:?}",
        pairs.len()
    );
    assert_eq!(unknown, 0, "rbldnsd did not answer every query");
    assert!(diffs.is_empty(), "mirror and rbldnsd disagree:\n{diffs}");
    // the comparison covered listings of every kind, errors and exclusions
    assert!(
        listed > 10_000 && errors > 100,
        "listed {listed}, errors {errors}"
    );
    assert!(kinds.len() >= 4, "{kinds:?}");
}

/// A config whose own list `zone` is answered from `mirror`, with its test points.
fn mirror_config(
    dir: &std::path::Path,
    mirror: &std::path::Path,
    max_age: &str,
) -> std::path::PathBuf {
    let lists = dir.join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(
        lists.join("own.toml"),
        "[[list]]\nid = \"own-mirror\"\nzone = \"mirror.test\"\nkind = \"ip\"\ntest_points = { listed = [\"127.0.0.2\"], not_listed = [\"127.0.0.1\"] }\nreturns = [{ code = \"127.0.0.2-127.0.0.20\", meaning = \"listed\" }]\n",
    )
    .unwrap();
    let cfg = dir.join("rblwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[resolver]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = \"200ms\"\n[lists]\ndirs = [{:?}]\nuse = [\"own-mirror\"]\n[lists.override.own-mirror]\nmirror = {:?}\nmax_age = {max_age:?}\n",
            lists.display().to_string(),
            mirror.display().to_string()
        ),
    )
    .unwrap();
    cfg
}

fn aged(p: &std::path::Path, content: &str, age: Duration) {
    std::fs::write(p, content).unwrap();
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(std::time::SystemTime::now() - age).unwrap();
}

#[test]
fn cli_checks_and_intersects_a_mirrored_list_without_any_query() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("zen");
    std::fs::create_dir(&data).unwrap();
    aged(
        &data.join("zen.ip4set"),
        ":127.0.0.2:Listed $\n127.0.0.2\n198.51.100.0/24 :4:net $\n!198.51.100.77\n",
        Duration::from_secs(30),
    );
    aged(
        &data.join("zen6.ip6trie"),
        ":127.0.0.3:v6 $\n2001:db8:1200::/48\n!2001:db8:1200:5::/64\n",
        Duration::from_secs(30),
    );
    let cfg = mirror_config(dir.path(), &data, "1h");
    let c = cfg.to_str().unwrap();
    // the resolver (port 9) answers nothing: every answer here comes from the mirror
    let out = crate::util::rblwatch(&[
        "-C",
        c,
        "check",
        "--json",
        "198.51.100.7",
        "198.51.100.77",
        "2001:db8:1200::1",
        "198.51.100.78/31",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["lists"][0]["health"], "healthy", "{v:#}");
    let verdict = |t: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == t)
            .map(|r| r["verdict"].clone())
            .unwrap()
    };
    assert_eq!(verdict("198.51.100.7"), "listed");
    assert_eq!(verdict("198.51.100.77"), "clear");
    assert_eq!(verdict("2001:db8:1200::1"), "listed");
    // `check` still asks a range's addresses one by one (the daemon intersects)
    assert_eq!(verdict("198.51.100.78"), "listed");
    assert_eq!(verdict("198.51.100.79"), "listed");

    let out =
        crate::util::rblwatch(&["-C", c, "intersect", "198.51.96.0/20", "2001:db8:1200::/40"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("198.51.96.0/20 own-mirror: 198.51.100.0-198.51.100.76 listed"),
        "{text}"
    );
    assert!(
        text.contains("198.51.100.78-198.51.100.255 listed"),
        "{text}"
    );
    assert!(text.contains("2001:db8:1200::/40 own-mirror: 2001:db8:1200::-2001:db8:1200:4:ffff:ffff:ffff:ffff listed"), "{text}");
    let out = crate::util::rblwatch(&["-C", c, "intersect", "203.0.113.0/24"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing listed"));

    // data older than max_age: stale, and no pair reads clear
    let cfg = mirror_config(dir.path(), &data, "1m");
    for f in ["zen.ip4set", "zen6.ip6trie"] {
        let p = data.join(f);
        let body = std::fs::read_to_string(&p).unwrap();
        aged(&p, &body, Duration::from_secs(600));
    }
    let out = crate::util::rblwatch(&[
        "-C",
        cfg.to_str().unwrap(),
        "check",
        "--json",
        "198.51.100.7",
        "203.0.113.9",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["lists"][0]["health"], "stale", "{v:#}");
    assert!(
        v["lists"][0]["why"].as_str().unwrap().contains("max_age"),
        "{v:#}"
    );
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["verdict"], "unknown", "{v:#}");
    }
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_mirror_without_its_test_points_is_not_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("zen.ip4set");
    aged(&data, "198.51.100.0/24\n", Duration::from_secs(30));
    let cfg = mirror_config(dir.path(), &data, "1h");
    let out = crate::util::rblwatch(&[
        "-C",
        cfg.to_str().unwrap(),
        "check",
        "--json",
        "198.51.100.7",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["lists"][0]["health"], "dead", "{v:#}");
    // a file that cannot be read from the start: no data, never clear
    aged(&data, "198.51.100.0/24\n127.0.0.2", Duration::from_secs(30));
    let out = crate::util::rblwatch(&[
        "-C",
        cfg.to_str().unwrap(),
        "check",
        "--json",
        "203.0.113.9",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["lists"][0]["health"], "stale", "{v:#}");
    assert!(
        v["lists"][0]["why"].as_str().unwrap().contains("cut short"),
        "{v:#}"
    );
    assert_eq!(v["results"][0]["verdict"], "unknown", "{v:#}");
}

#[test]
fn lists_health_shows_a_mirror_error_while_the_last_good_data_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("zen");
    std::fs::create_dir(&data).unwrap();
    aged(
        &data.join("zen.ip4set"),
        "127.0.0.2\n198.51.100.0/24\n",
        Duration::from_secs(30),
    );
    aged(
        &data.join("broken.ip4set"),
        "127.0.0.2\n198.51",
        Duration::from_secs(30),
    );
    let cfg = mirror_config(dir.path(), &data, "1h");
    // a file cut short from the start: nothing to serve, stale with the reason
    let out = crate::util::rblwatch(&["-C", cfg.to_str().unwrap(), "lists", "--health"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stale") && text.contains("cut short"),
        "{text}"
    );
    std::fs::remove_file(data.join("broken.ip4set")).unwrap();
    aged(
        &data.join("zen.ip4set"),
        "127.0.0.2\n198.51.100.0/24\n10.0.0.0/8 :3:\n!10.0.0.0/8\n",
        Duration::from_secs(30),
    );
    let out = crate::util::rblwatch(&["-C", cfg.to_str().unwrap(), "lists", "--health"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("healthy") && text.contains("both listed and excluded"),
        "{text}"
    );
}

#[test]
fn an_unusable_resolver_neither_judges_nor_gates_a_mirrored_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("zen.ip4set");
    aged(
        &data,
        "127.0.0.2\n198.51.100.0/24\n",
        Duration::from_secs(30),
    );
    let cfg = mirror_config(dir.path(), &data, "1h");
    // two lists asked through a resolver that never answers (port 9), beside the mirror
    std::fs::write(
        dir.path().join("lists/dns.toml"),
        "[[list]]\nid = \"dns-a\"\nzone = \"a.test\"\nkind = \"ip\"\nreturns = [{ code = \"127.0.0.2\", meaning = \"listed\" }]\n\n[[list]]\nid = \"dns-b\"\nzone = \"b.test\"\nkind = \"ip\"\nreturns = [{ code = \"127.0.0.2\", meaning = \"listed\" }]\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "use = [\"own-mirror\"]",
        "use = [\"own-mirror\", \"dns-a\", \"dns-b\"]",
    );
    std::fs::write(&cfg, text).unwrap();
    let out = crate::util::rblwatch(&[
        "-C",
        cfg.to_str().unwrap(),
        "check",
        "--json",
        "198.51.100.7",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["resolver"]["status"], "unusable", "{v:#}");
    let row = |l: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["list"] == l)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("own-mirror")["verdict"], "listed", "{v:#}");
    assert_eq!(row("own-mirror")["counted"], true, "{v:#}");
    assert_eq!(row("dns-a")["verdict"], "unknown", "{v:#}");
}
