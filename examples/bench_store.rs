//! Storage benchmark (issue 3): a simulated year of history for 1,024 IPs x 40
//! lists at a 30-minute interval with about 1% of pairs changing per day, plus
//! 30 days of raw mail samples (6 series, one a minute) and a year of hourly
//! roll-ups. Prints the database size and the time to load the current-state
//! summary. Written through the same store functions the daemon uses.
//!
//!   cargo run --release --example bench_store [DB_PATH]

use std::collections::HashMap;
use std::time::Instant;

use rblwatch::evaluator::{ListingDetails, PairState};
use rblwatch::event::{Event, EventKind, Subject};
use rblwatch::health::ListHealth;
use rblwatch::store::{self, PairUpdate, PeriodChange, SweepCommit, SweepCounts};

const LISTS: usize = 40;

/// Number of IPs: `BENCH_IPS` (default 1,024; the web benchmark uses 16,384).
fn ips() -> usize {
    std::env::var("BENCH_IPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}
const SWEEPS_PER_DAY: i64 = 48;
const DAYS: i64 = 365;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("rblwatch-bench-store.db"));
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    let mut c = store::open_connection(&path)?;
    let t0 = 1_735_689_600i64; // 2025-01-01
    let mut rng = fastrand::Rng::with_seed(42);
    let ip_count = ips();
    let pairs = ip_count * LISTS;
    // 1% of (1,024 x 40) pairs change per day; a change is a listing start or end; listings last 1..5 days
    let starts_per_day = 1024 * LISTS / 100 / 2;
    let mut listed: HashMap<usize, i64> = HashMap::new(); // pair -> end time
    let (mut n_events, mut n_periods) = (0u64, 0u64);
    let started = Instant::now();
    for sweep in 0..DAYS * SWEEPS_PER_DAY {
        let at = t0 + sweep * 1800;
        let id = store::begin_sweep(&c, at)?;
        let mut commit = SweepCommit {
            sweep_id: id,
            finished_at: at + 40,
            duration_ms: 40_000,
            ..Default::default()
        };
        // listings that end
        let ended: Vec<usize> = listed
            .iter()
            .filter(|(_, end)| **end <= at)
            .map(|(p, _)| *p)
            .collect();
        for p in ended {
            listed.remove(&p);
            let (t, l) = name(p);
            commit.pairs.push(PairUpdate {
                target: t.clone(),
                list: l.clone(),
                state: PairState::Clear,
                since: at,
                details: Default::default(),
            });
            commit.periods.push(PeriodChange::Close {
                target: t.clone(),
                list: l.clone(),
                at,
            });
            commit.events.push(event(EventKind::Delisted, at, &t, &l));
        }
        // new listings, spread over the day's sweeps
        let mut n_new = starts_per_day / SWEEPS_PER_DAY as usize;
        if (sweep as usize % SWEEPS_PER_DAY as usize) < starts_per_day % SWEEPS_PER_DAY as usize {
            n_new += 1;
        }
        for _ in 0..n_new {
            let p = rng.usize(..pairs);
            if listed.contains_key(&p) {
                continue;
            }
            listed.insert(p, at + rng.i64(86_400..5 * 86_400));
            let (t, l) = name(p);
            let d = std::sync::Arc::new(details(&t));
            commit.pairs.push(PairUpdate {
                target: t.clone(),
                list: l.clone(),
                state: PairState::Listed,
                since: at,
                details: d.clone(),
            });
            commit.periods.push(PeriodChange::Open {
                target: t.clone(),
                list: l.clone(),
                at,
                details: d,
                baseline: false,
            });
            commit.events.push(event(EventKind::Listed, at, &t, &l));
            n_periods += 1;
        }
        // a list's health changes about twice a month
        if rng.u32(..700) == 0 {
            let l = format!("list-{:02}", rng.usize(..LISTS));
            commit.health.push((
                l.clone(),
                ListHealth::Unreachable {
                    why: "timeout".into(),
                },
            ));
            commit
                .events
                .push(event(EventKind::ListUnhealthy, at, "", &l));
        }
        commit.counts = SweepCounts {
            targets: ip_count as i64,
            pairs: pairs as i64,
            listed: listed.len() as i64,
            clear: (pairs - listed.len()) as i64,
            ..Default::default()
        };
        n_events += commit.events.len() as u64;
        store::commit_sweep(&mut c, &commit)?;
    }
    // mail telemetry: raw samples for the last 30 days, roll-ups for the year
    let tx = c.transaction()?;
    let year_end = t0 + DAYS * 86_400;
    for (src, metric) in [
        ("mx1", "queue_depth"),
        ("mx1", "queue_bounces"),
        ("mx1", "ndr_generated"),
        ("mx2", "queue_depth"),
        ("mx2", "queue_bounces"),
        ("mx2", "ndr_generated"),
    ] {
        let mut at = t0;
        while at < year_end {
            let v = rng.f64() * 20.0;
            if at >= year_end - 30 * 86_400 {
                store::insert_sample(&tx, src, metric, at, v)?;
                at += 60;
            } else {
                tx.execute(
                    "INSERT INTO metric_hourly (source, metric, hour, min, max, sum, count) VALUES (?1, ?2, ?3, 0, ?4, ?4, 60)
                     ON CONFLICT DO NOTHING",
                    rusqlite::params![src, metric, at - at.rem_euclid(3600), v],
                )?;
                at += 3600;
            }
        }
    }
    tx.commit()?;
    c.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    let build = started.elapsed();
    drop(c);
    let size = std::fs::metadata(&path)?.len()
        + std::fs::metadata(format!("{}-wal", path.display()))
            .map(|m| m.len())
            .unwrap_or(0);

    // current-state summary, as `rblwatch status` and the overview page load it, on a fresh connection each time
    let mut times = Vec::new();
    let mut shown = 0;
    for _ in 0..21 {
        let t = Instant::now();
        let c = store::open_connection(&path)?;
        let last = store::last_sweep(&c)?;
        let health = store::load_health(&c)?;
        let pairs = store::load_pairs(&c)?;
        let open = store::listings(&c, None, true)?;
        let recent = store::events(&c, None, 50, 0)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        shown =
            pairs.len() + open.len() + recent.len() + health.len() + usize::from(last.is_some());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "simulated {DAYS} days x {SWEEPS_PER_DAY} sweeps of {ip_count} IPs x {LISTS} lists in {:.1} s",
        build.as_secs_f64()
    );
    println!("{n_events} events, {n_periods} listing periods, {} listed at the end, {shown} summary rows", listed.len());
    println!(
        "database size: {:.1} MB (target < 100 MB)",
        size as f64 / 1e6
    );
    println!(
        "current-state summary load: median {:.2} ms, max {:.2} ms over 21 runs (target < 50 ms)",
        times[10], times[20]
    );
    Ok(())
}

fn name(p: usize) -> (String, String) {
    let ip = p / LISTS;
    (
        format!("10.64.{}.{}", ip / 256, ip % 256),
        format!("list-{:02}", p % LISTS),
    )
}

fn details(t: &str) -> ListingDetails {
    ListingDetails {
        codes: vec!["127.0.0.2".parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST)],
        meanings: vec!["spam source".into()],
        txt: vec![format!("Listed: see https://example.invalid/lookup?ip={t}")],
        delist: Some(format!("https://example.invalid/remove?ip={t}")),
        ..Default::default()
    }
}

fn event(kind: EventKind, at: i64, t: &str, l: &str) -> Event {
    let subject = if t.is_empty() {
        Subject::List { id: l.to_string() }
    } else {
        Subject::pair(t, l)
    };
    Event::new(
        kind,
        at,
        subject,
        format!("{t} {} on {l}", kind.as_str()),
        serde_json::json!({"codes": ["127.0.0.2"], "txt": ["Listed: see https://example.invalid/"]}),
    )
}
