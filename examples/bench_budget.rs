//! Query budgets over a simulated day (issue 9): a /20 (4,096 IPs) x 20 lists
//! swept every 30 minutes, one list with a 100,000 queries/day budget. The
//! day's 48 sweeps (each with its health check) run back to back against a
//! real rbldnsd with an accelerated clock; the budget plan and the due rule
//! are the daemon's own (`BudgetPlan::due`), and the engine's hard cap is on.
//! Prints the queries each list got in the simulated day against its limit.
//!
//! Run by `scripts/bench-budget.sh`, which starts the rbldnsd:
//!   bench_budget RBLDNSD_ADDR LISTS_DIR

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rblwatch::catalog::Catalog;
use rblwatch::dns::{ClientConfig, DnsClient};
use rblwatch::engine::{ActiveList, Engine, EngineOpts};
use rblwatch::target::{RangePolicy, TargetSpec};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(dir)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: bench_budget RBLDNSD_ADDR LISTS_DIR");
    };
    let mut cat = Catalog::default();
    cat.extend_from_dir(std::path::Path::new(dir))?;
    let lists: Vec<ActiveList> = cat
        .iter()
        .filter(|l| l.id.starts_with('z'))
        .take(20)
        .map(|l| {
            let limit = (l.id == "z01").then_some(100_000);
            ActiveList::new(Arc::new(l.clone()), None, None).with_daily_limit(limit)
        })
        .collect();
    let mut cc = ClientConfig::new(vec![addr.parse()?]);
    cc.timeout = Duration::from_secs(2);
    let engine = Engine::new(
        DnsClient::new(&cc).await?,
        lists,
        EngineOpts {
            concurrency: 256,
            ..EngineOpts::default()
        },
    );
    let specs = vec![TargetSpec::parse("10.40.0.0/20", RangePolicy::Normal)?];
    let base = Duration::from_secs(1800);
    let plans = engine.plans(&specs, base, base);
    for p in &plans {
        if let Some(d) = p.describe() {
            println!("plan {}: {d}", p.list);
        }
    }
    let mut last: Vec<Option<i64>> = vec![None; plans.len()];
    let day_start = 1_800_000_000i64; // a simulated clock: the day's 48 sweeps
    let wall = Instant::now();
    let mut answers = 0u64;
    for s in 0..48 {
        let now = day_start + s * base.as_secs() as i64;
        let health = engine.check_health().await;
        let due: Vec<bool> = plans
            .iter()
            .zip(&last)
            .map(|(p, l)| p.due(*l, now, base))
            .collect();
        for (l, d) in last.iter_mut().zip(&due) {
            if *d {
                *l = Some(now);
            }
        }
        answers += engine
            .sweep_lists(&specs, &health, Some(&due))
            .fold(0u64, |n, _| async move { n + 1 })
            .await;
    }
    let secs = wall.elapsed().as_secs_f64();
    println!(
        "simulated day: 48 sweeps of 4,096 targets x 20 lists in {secs:.1} s ({answers} answers, {:.0}/s)",
        answers as f64 / secs
    );
    println!(
        "{:<6} {:>10} {:>12} {:>8}",
        "list", "limit", "queries/day", "within"
    );
    let mut over = 0;
    for (l, p) in engine.lists().iter().zip(&plans) {
        let q = l.counters.queries.load(Relaxed);
        let within = p.daily_limit.is_none_or(|lim| q <= lim);
        if !within {
            over += 1;
        }
        if p.daily_limit.is_some() || l.def.id == "z02" {
            println!(
                "{:<6} {:>10} {:>12} {:>8}   (swept every {})",
                l.def.id,
                p.daily_limit.map_or("none".into(), |v| v.to_string()),
                q,
                if within { "yes" } else { "NO" },
                rblwatch::time::fmt_duration(p.interval)
            );
        }
    }
    println!("lists over their budget: {over}");
    if over > 0 {
        std::process::exit(1);
    }
    Ok(())
}
