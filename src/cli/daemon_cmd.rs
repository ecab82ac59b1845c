//! `rblwatch daemon`, `rblwatch status` and `rblwatch history`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use super::text::terminal_safe;
use crate::daemon::{self, Mode};
use crate::store::{self, Store};
use crate::target::Target;

/// Arguments of `rblwatch daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Run every job once (health check, sweep) and exit: for cron users and tests.
    #[arg(long)]
    pub once: bool,
}

/// Arguments of `rblwatch status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `rblwatch history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The target (IP or domain).
    pub target: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn daemon(cfg_path: Option<&Path>, a: DaemonArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(cfg_path, true)?;
    let mode = if a.once { Mode::Once } else { Mode::Service };
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            if reload_tx.send(()).await.is_err() {
                break;
            }
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    };
    tracing::info!(config = %cfg.path.display(), database = %cfg.daemon.database.display(), sweep = %cfg.daemon.sweep, "rblwatch daemon starting");
    daemon::run(cfg, mode, reload_rx, shutdown).await?;
    tracing::info!("rblwatch daemon stopped");
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn status(cfg_path: Option<&Path>, a: StatusArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(cfg_path, true)?;
    // read-only: `status` beside a running daemon never takes the write lock
    let db = store::ReadPool::new(&cfg.daemon.database);
    let (snap, mail) = db
        .read(|c| {
            Ok((
                crate::status::StatusSnapshot::load(c, crate::time::now())?,
                store::latest_samples(c)?,
            ))
        })
        .await?;
    // the headline, by the same rule as the status page and /metrics (with
    // what the daemon stored of the resolver and the receivers' impact)
    let (lists, _) = crate::engine::active_lists(&cfg, cfg.catalog(), None)?;
    let facts = crate::status::facts(&snap, &cfg, &lists, snap.resolver.as_ref(), |p| {
        snap.impact_of(&cfg, &p.target, &p.list, p.since)
    });
    let verdict = crate::status::verdict(&facts);
    let crate::status::StatusSnapshot {
        last_sweep: last,
        health,
        pairs,
        probes,
        unchecked,
        resolver,
        assessment: impact,
        ..
    } = snap;
    if a.json {
        // the same figures the API's /api/v1/status carries
        let mail: Vec<serde_json::Value> = mail
            .iter()
            .map(|(source, metric, at, value)| {
                serde_json::json!({ "source": source, "metric": metric, "at": at, "value": value })
            })
            .collect();
        let v = serde_json::json!({ "verdict": verdict, "resolver": resolver, "last_sweep": last, "list_health": health, "pairs": pairs, "unchecked": unchecked, "mail": mail, "probes": probes, "impact": impact });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_headline(&verdict, resolver.as_ref(), last.as_ref());
    print_listings(&health, &pairs, &unchecked);
    print_telemetry(&mail, impact.as_ref(), &probes);
    Ok(ExitCode::SUCCESS)
}

/// `rblwatch status`'s first lines: the verdict and what to do, the resolver
/// (when it is unusable nothing below is current) and the last sweep.
fn print_headline(
    verdict: &crate::status::VerdictView,
    resolver: Option<&crate::health::ResolverHealth>,
    last: Option<&store::SweepRow>,
) {
    println!("{}: {}", verdict.text, terminal_safe(&verdict.detail, 300));
    for t in &verdict.todo {
        println!("  to do: {}", terminal_safe(&t.text, 300));
    }
    // the resolver first: when it is unusable nothing below is current
    if let Some(r) = resolver {
        let fix = if r.fix.is_empty() {
            String::new()
        } else {
            format!("; fix: {}", r.fix)
        };
        println!(
            "resolver {}: {}{}",
            r.status.as_str(),
            terminal_safe(&r.why, 200),
            terminal_safe(&fix, 300)
        );
    }
    match last {
        Some(s) => println!(
            "last sweep #{}: {} ({} ms): {} targets, {} pairs, {} listed, {} errors, {} unknown, {} lists unhealthy",
            s.id,
            crate::time::fmt_time(s.finished_at.unwrap_or(s.started_at)),
            s.duration_ms.unwrap_or(0),
            s.counts.targets,
            s.counts.pairs,
            s.counts.listed,
            s.counts.errors,
            s.counts.unknown,
            s.counts.lists_unhealthy
        ),
        None => println!("no sweep has finished yet"),
    }
}

/// `rblwatch status`'s lists not healthy, listings, suspected and unchecked pairs.
fn print_listings(
    health: &std::collections::HashMap<String, crate::health::ListHealth>,
    pairs: &[store::StoredPair],
    unchecked: &[store::UncheckedPair],
) {
    let mut sick: Vec<_> = health.iter().filter(|(_, h)| !h.is_healthy()).collect();
    sick.sort_by(|a, b| a.0.cmp(b.0));
    if !sick.is_empty() {
        println!("\nlists not healthy:");
        for (l, h) in sick {
            println!("  {l:<24} {:<17} {}", h.name(), terminal_safe(h.why(), 160));
        }
    }
    let listed: Vec<_> = pairs.iter().filter(|p| p.state.is_listed()).collect();
    println!("\n{} listings", listed.len());
    for p in &listed {
        println!(
            "  {:<40} {:<20} {:<9} since {}  {}",
            p.target,
            p.list,
            p.state.name(),
            crate::time::fmt_time(p.since),
            terminal_safe(&p.details.txt.join(" | "), 80)
        );
    }
    let suspected = pairs.iter().filter(|p| !p.state.is_listed()).count();
    if suspected > 0 {
        println!("{suspected} pairs suspected (awaiting confirmation)");
    }
    if !unchecked.is_empty() {
        // never clear: their last answer (a timeout, an error code) said nothing
        println!("{} pairs unchecked:", unchecked.len());
        for u in unchecked.iter().take(10) {
            println!(
                "  {:<40} {:<20} since {}  {}",
                u.target,
                u.list,
                crate::time::fmt_time(u.since),
                terminal_safe(&u.why, 120)
            );
        }
    }
}

/// `rblwatch status`'s mail telemetry, the receivers' impact and the backscatter probes.
fn print_telemetry(
    mail: &[(String, String, i64, f64)],
    impact: Option<&crate::impact::Assessment>,
    probes: &[store::StoredProbe],
) {
    if !mail.is_empty() {
        println!("\nmail telemetry (latest):");
        for (source, metric, at, value) in mail {
            println!(
                "  {:<40} {value:>12}  {}",
                format!("{source}.{metric}"),
                crate::time::fmt_time(*at)
            );
        }
    }
    if let Some(a) = impact {
        for r in a.receivers.iter().filter(|r| r.rejecting) {
            println!(
                "\nreceiver {} refuses our mail: {} rejected, {} deferred: {}",
                r.id,
                r.rejected,
                r.deferred,
                terminal_safe(&r.text, 200)
            );
        }
        for l in a
            .listings
            .iter()
            .filter(|l| l.impact == crate::impact::ImpactState::Rejecting)
        {
            println!(
                "\nlisting {} on {}: impact rejecting: {}",
                l.target,
                l.list,
                terminal_safe(&l.text, 200)
            );
        }
        for b in &a.backscatter {
            println!(
                "\nbackscatter source {}: {}",
                b.target,
                terminal_safe(&b.diagnosis, 400)
            );
        }
    }
    for p in probes {
        println!(
            "\nprobe {} at {}: {} ({})",
            p.report.domain,
            p.report.server,
            p.report.verdict.as_str(),
            terminal_safe(&p.report.why, 160)
        );
    }
}

pub(super) async fn history(cfg_path: Option<&Path>, a: HistoryArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(cfg_path, true)?;
    let target = match Target::parse(&a.target) {
        Ok(t) => t.to_string(),
        Err(e) => {
            eprintln!("rblwatch: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let st = Store::open(&cfg.daemon.database)?;
    let t2 = target.clone();
    let (periods, events) = st
        .call(move |c| {
            Ok((
                store::listings(c, Some(&t2), false)?,
                store::events(c, Some(&t2), 200, 0)?,
            ))
        })
        .await?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "target": target, "listings": periods, "events": events })
            )?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("listing history of {target}: {} periods", periods.len());
    for p in &periods {
        let end = p
            .ended_at
            .map(crate::time::fmt_time)
            .unwrap_or_else(|| "still listed".into());
        println!(
            "  {:<20} {} .. {}{}  {}",
            p.list,
            crate::time::fmt_time(p.started_at),
            end,
            if p.baseline {
                " (already listed at first sweep)"
            } else {
                ""
            },
            terminal_safe(&p.details.txt.join(" | "), 80)
        );
    }
    println!("\nevents:");
    for e in &events {
        println!(
            "  {}  {:<16} {}",
            crate::time::fmt_time(e.at),
            e.kind.as_str(),
            terminal_safe(&e.summary, 120)
        );
    }
    Ok(ExitCode::SUCCESS)
}
