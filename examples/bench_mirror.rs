//! Mirror benchmarks (issue 25): load a ZEN-sized mirror, check a /8 against 5
//! mirrored lists, intersect 64 /24s + 4 /48s (the mirror alone, then as the
//! daemon's sweep does it: through the engine into the pairs it records).
//! Peak RSS from /proc/self/status.
//!
//! Run by `scripts/bench-mirror.sh`, which generates the data:
//!   bench_mirror MIRROR_DIR

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rblwatch::catalog::parse_file;
use rblwatch::dns::{ClientConfig, DnsClient};
use rblwatch::engine::{mirror_verdict, ActiveList, Engine, EngineOpts};
use rblwatch::mirror::{Mirror, MirrorConf};
use rblwatch::target::Target;
use rblwatch::verdict::VerdictKind;

fn rss() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: bench_mirror MIRROR_DIR"))?;
    let conf = || {
        let mut c = MirrorConf::new(dir.clone().into());
        c.settle = Duration::ZERO;
        c
    };
    let def = parse_file(
        "b.toml",
        "[[list]]\nid = \"zen\"\nzone = \"zen.test\"\nkind = \"ip\"\nreturns = [{ code = \"127.0.0.2-127.0.0.11\", meaning = \"listed\" }]\n",
    )?
    .remove(0);

    // 1. one ZEN-sized load
    let t = Instant::now();
    let m = Mirror::new(conf());
    let st = m.refresh();
    let load = t.elapsed();
    let (cur, peak) = rss();
    anyhow::ensure!(st.loaded && st.error.is_none(), "load failed: {st:?}");
    println!(
        "load: {} entries in {:.2} s; RSS {cur} MiB, peak {peak} MiB",
        st.entries,
        load.as_secs_f64()
    );

    // 2. a /8 (16,777,216 addresses) against 5 mirrored lists
    let mut ms = vec![Arc::new(m)];
    let t = Instant::now();
    for _ in 0..4 {
        let m = Mirror::new(conf());
        m.refresh();
        ms.push(Arc::new(m));
    }
    let (cur, peak) = rss();
    println!(
        "5 lists loaded in {:.2} s more; RSS {cur} MiB, peak {peak} MiB",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut listed = 0u64;
    let mut pairs = 0u64;
    for m in &ms {
        for a in 0u32..1 << 24 {
            let target = Target::Ip(IpAddr::V4(Ipv4Addr::from((10u32 << 24) | a)));
            let v = mirror_verdict(&def, m, &target);
            pairs += 1;
            listed += u64::from(v.kind() == VerdictKind::Listed);
        }
    }
    let el = t.elapsed();
    let (cur, peak) = rss();
    println!(
        "/8 x 5 lists: {pairs} pairs ({listed} listed) in {:.2} s = {:.0} pairs/s, one thread; RSS {cur} MiB, peak {peak} MiB",
        el.as_secs_f64(),
        pairs as f64 / el.as_secs_f64()
    );

    // 3. 64 /24s + 4 /48s by intersection, on every list
    let nets: Vec<ipnet::IpNet> = (0..64)
        .map(|i| format!("10.{}.{}.0/24", i * 3, (i * 7) % 256).parse())
        .chain((0..4).map(|i| format!("2001:db8:{:x}::/48", i * 1000).parse()))
        .collect::<Result<_, _>>()?;
    let mut pieces = 0;
    let rounds = 20;
    let t = Instant::now();
    for _ in 0..rounds {
        for m in &ms {
            for n in &nets {
                pieces += m.intersect(n).map_err(anyhow::Error::msg)?.len();
            }
        }
    }
    let per = t.elapsed() / rounds;
    println!(
        "intersection sweep (64 /24s + 4 /48s x 5 lists): {:.2} ms per sweep, {} listed pieces per sweep",
        per.as_secs_f64() * 1000.0,
        pieces / rounds as usize
    );

    // 4. the same ranges as the daemon's sweep checks them: each list through
    // the engine (verdicts classified), into the pairs a sweep records
    let lists: Vec<ActiveList> = ms
        .iter()
        .map(|m| ActiveList::new(Arc::new(def.clone()), None, None).with_mirror(m.clone()))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let engine = rt.block_on(async {
        // no query is sent: every list answers from its mirror
        let cc = ClientConfig::new(vec![([127, 0, 0, 1], 9).into()]);
        anyhow::Ok(Engine::new(
            DnsClient::new(&cc).await?,
            lists,
            EngineOpts::default(),
        ))
    })?;
    let t = Instant::now();
    let mut outcomes = 0;
    for _ in 0..rounds {
        for li in 0..engine.lists().len() {
            for n in &nets {
                outcomes += rblwatch::prefixes::intersect_list(&engine, li, n).0.len();
            }
        }
    }
    let per = t.elapsed() / rounds;
    println!(
        "daemon-style range sweep (64 /24s + 4 /48s x 5 lists, engine::intersect_one -> prefixes::intersect_list): {:.2} ms per sweep, {} pairs per sweep",
        per.as_secs_f64() * 1000.0,
        outcomes / rounds as usize
    );
    Ok(())
}
