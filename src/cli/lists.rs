//! `rblwatch lists [--health]`: the catalog, and each list's health.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::text::terminal_safe;
use crate::config::{parse_server, Config};
use crate::engine;

/// Arguments of `rblwatch lists`.
#[derive(Debug, Args)]
pub struct ListsArgs {
    /// Check each selected list's RFC 5782 test points now.
    #[arg(long)]
    pub health: bool,
    /// Show every catalog entry, including retired and disabled lists.
    #[arg(long)]
    pub all: bool,
    /// Name server(s) for --health, ip[:port].
    #[arg(long)]
    pub resolver: Vec<String>,
    /// Only these lists (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub lists: Option<Vec<String>>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub(super) async fn run(cfg_path: Option<&Path>, a: ListsArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(cfg_path, false)?;
    if !a.health {
        return catalog_table(&cfg, &a);
    }
    health_report(&cfg, &a).await
}

/// The catalog (chosen lists, or every enabled one; --all adds retired and
/// disabled ones) as JSON or a table.
fn catalog_table(cfg: &Config, a: &ListsArgs) -> anyhow::Result<ExitCode> {
    let catalog = cfg.catalog();
    let chosen: Vec<_> = match &a.lists {
        Some(ids) => ids.iter().filter_map(|i| catalog.get(i)).collect(),
        None => catalog
            .iter()
            .filter(|l| a.all || l.enabled_by_default)
            .collect(),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&chosen)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<7} {:<6} {:<34} STATUS",
        "ID", "KIND", "CLASS", "ZONE"
    );
    for l in &chosen {
        let status = match (&l.retired, l.enabled_by_default) {
            (Some(r), _) => format!("retired {}: {}", r.since, r.reason),
            (None, true) => "enabled".into(),
            (None, false) => "available (not enabled by default)".into(),
        };
        let kind = serde_json::to_value(l.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let class = serde_json::to_value(l.class)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        println!(
            "{:<24} {:<7} {:<6} {:<34} {}",
            l.id,
            kind,
            class,
            l.zone,
            terminal_safe(&status, 120)
        );
    }
    let live = catalog.iter().filter(|l| l.retired.is_none()).count();
    println!(
        "\n{} lists shown; catalog: {} operating, {} retired",
        chosen.len(),
        live,
        catalog.len() - live
    );
    Ok(ExitCode::SUCCESS)
}

/// `--health`: each selected list's RFC 5782 test points checked now, with
/// the resolver's diagnosis and each list's budget; exit 1 when one is not healthy.
async fn health_report(cfg: &Config, a: &ListsArgs) -> anyhow::Result<ExitCode> {
    let mut servers = Vec::new();
    for r in &a.resolver {
        servers.push(parse_server(r).map_err(anyhow::Error::msg)?);
    }
    let (engine, warnings) = engine::from_config(cfg, a.lists.as_deref(), Some(servers)).await?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let report = engine.check().await;
    let health = &report.lists;
    let plans = engine.plans_for(cfg);
    if a.json {
        let v: Vec<_> = engine
            .lists()
            .iter()
            .zip(health)
            .zip(&plans)
            .zip(&report.ipv6_down)
            .map(|(((l, h), p), v6)| {
                serde_json::json!({"id": l.def.id, "zone": l.display_zone(), "health": h,
                    "ipv6_unchecked": v6,
                    "budget": p, "budget_note": p.describe(), "direct": l.direct_status(),
                    "mirror": l.mirror().map(|m| m.status())})
            })
            .collect();
        let out = serde_json::json!({ "resolver": report.resolver, "lists": v });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        // the resolver first: when it is the cause, the lists below are not
        println!("{}", super::check::resolver_line(&report.resolver));
        println!();
        println!("{:<24} {:<34} {:<17} DETAILS", "ID", "ZONE", "HEALTH");
        for ((l, h), v6) in engine.lists().iter().zip(health).zip(&report.ipv6_down) {
            let v6 = match v6 {
                Some(why) => format!(" (IPv6 targets unchecked: {why})"),
                None => String::new(),
            };
            let via = match l.direct_status() {
                Some(d) if !d.servers.is_empty() => {
                    format!(" (asked directly at {})", d.servers.join(" "))
                }
                Some(_) => " (asked directly; its servers are not known)".to_string(),
                None => String::new(),
            };
            // a mirror's errors and warnings show even while its data is fresh and healthy
            let via = match l.mirror().map(|m| m.status()) {
                Some(m) => {
                    let mut s = format!(
                        "{via} (mirror {}: {} entries, {} old",
                        m.path,
                        m.entries,
                        m.age_s.map_or("no data".into(), |a| {
                            crate::time::fmt_duration(std::time::Duration::from_secs(a))
                        })
                    );
                    if let Some(e) = &m.error {
                        s.push_str(&format!("; ERROR, previous data kept: {e}"));
                    }
                    for w in &m.warnings {
                        s.push_str(&format!("; warning: {w}"));
                    }
                    s.push(')');
                    s
                }
                None => via,
            };
            println!(
                "{:<24} {:<34} {:<17} {}{}{}",
                l.def.id,
                l.display_zone(),
                h.name(),
                terminal_safe(h.why(), 200),
                terminal_safe(&v6, 300),
                terminal_safe(&via, 1000)
            );
        }
        for p in &plans {
            if let Some(d) = p.describe() {
                println!("budget {}: {d}", p.list);
            }
        }
    }
    let bad = health.iter().filter(|h| !h.is_healthy()).count();
    Ok(if bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
