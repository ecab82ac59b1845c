//! `rblwatch check`: one-off checks with a table, JSON or a Nagios line.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use futures::StreamExt;
use serde::Serialize;

use super::text::terminal_safe;
use crate::config::{parse_duration, parse_server};
use crate::engine::{self, Engine};
use crate::health::ListHealth;
use crate::target::{RangePolicy, Target, TargetSpec};
use crate::verdict::{Verdict, VerdictKind};

/// Arguments of `rblwatch check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// IPs, CIDR ranges or domains. Without any, the config's targets.
    pub targets: Vec<String>,
    /// Only these lists (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub lists: Option<Vec<String>>,
    /// Name server(s) to use, ip[:port] (repeatable). Defaults to the config's, then the system's.
    #[arg(long)]
    pub resolver: Vec<String>,
    /// Per-attempt timeout, e.g. "2s".
    #[arg(long)]
    pub timeout: Option<String>,
    /// Queries in flight at once.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Accept ranges wider than /16.
    #[arg(long)]
    pub allow_large: bool,
    /// Print JSON instead of a table.
    #[arg(long, conflicts_with = "nagios")]
    pub json: bool,
    /// Print one Nagios/Icinga status line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    #[arg(long)]
    pub nagios: bool,
    /// With --nagios: WARNING at this many listings.
    #[arg(short = 'w', long = "warning", default_value_t = 1)]
    pub warning: usize,
    /// With --nagios: CRITICAL at this many listings.
    #[arg(short = 'c', long = "critical", default_value_t = 1)]
    pub critical: usize,
    /// Which rows the table shows. Defaults to all rows for up to 16 targets, else problems only.
    #[arg(long, value_enum)]
    pub show: Option<Show>,
}

/// Which table rows to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Show {
    /// Every (target, list) pair.
    All,
    /// Everything but clear answers.
    Problems,
}

#[derive(Debug, Serialize)]
struct Row {
    target: Target,
    list: String,
    #[serde(flatten)]
    verdict: Verdict,
    /// False when the list is not healthy: the verdict is shown but not counted.
    counted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    delist: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    targets: u128,
    pairs: u64,
    listed: u64,
    listed_uncounted: u64,
    clear: u64,
    allowed: u64,
    errors: u64,
    unknown: u64,
    lists_healthy: usize,
    lists_unhealthy: usize,
}

#[derive(Debug, Serialize)]
struct ListOut<'a> {
    id: &'a str,
    name: &'a str,
    zone: String,
    #[serde(flatten)]
    health: &'a ListHealth,
}

/// Runs the command.
pub(super) async fn run(cfg_path: Option<&Path>, a: CheckArgs) -> anyhow::Result<ExitCode> {
    let nagios_unknown = |msg: String| {
        println!("RBL UNKNOWN - {msg}");
        Ok(ExitCode::from(3))
    };
    let mut cfg = match super::load_config(cfg_path, false) {
        Ok(c) => c,
        Err(e) if a.nagios => return nagios_unknown(format!("{e:#}")),
        Err(e) => return Err(e),
    };
    let policy = if a.allow_large {
        RangePolicy::AllowLarge
    } else {
        RangePolicy::Normal
    };
    let mut specs = Vec::new();
    let mut bad = Vec::new();
    for t in &a.targets {
        match TargetSpec::parse(t, policy) {
            Ok(s) => specs.push(s),
            Err(e) => bad.push(e.to_string()),
        }
    }
    if !bad.is_empty() {
        if a.nagios {
            return nagios_unknown(bad.join("; "));
        }
        for b in &bad {
            eprintln!("rblwatch: {b}");
        }
        return Ok(ExitCode::from(2));
    }
    if specs.is_empty() {
        specs = cfg.targets.iter().map(|t| t.spec.clone()).collect();
    }
    if specs.is_empty() {
        eprintln!("rblwatch: nothing to check: give targets on the command line or in the config");
        return Ok(ExitCode::from(2));
    }
    let mut servers = Vec::new();
    for r in &a.resolver {
        servers.push(parse_server(r).map_err(anyhow::Error::msg)?);
    }
    if let Some(t) = &a.timeout {
        cfg.resolver.timeout = parse_duration(t).map_err(anyhow::Error::msg)?;
    }
    if let Some(c) = a.concurrency {
        cfg.resolver.concurrency = c.max(1);
    }
    let (engine, warnings) =
        match engine::from_config(&cfg, a.lists.as_deref(), Some(servers)).await {
            Ok(x) => x,
            Err(e) if a.nagios => return nagios_unknown(format!("{e:#}")),
            Err(e) => return Err(e.into()),
        };
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if engine.lists().is_empty() {
        if a.nagios {
            return nagios_unknown("no list to query".into());
        }
        anyhow::bail!("no list to query (all excluded, retired or missing keys)");
    }

    let health = engine.check_health().await;
    let targets: u128 = specs.iter().map(|s| s.len()).sum();
    let show = a.show.unwrap_or(if targets <= 16 {
        Show::All
    } else {
        Show::Problems
    });
    let mut sum = Summary {
        targets,
        ..Summary::default()
    };
    sum.lists_healthy = health.iter().filter(|h| h.is_healthy()).count();
    sum.lists_unhealthy = health.len() - sum.lists_healthy;
    let mut rows = Vec::new();
    let mut healthy_unknown = 0u64;
    let mut healthy_pairs = 0u64;
    {
        let mut outcomes = engine.sweep(&specs, &health);
        while let Some(o) = outcomes.next().await {
            let counted = health[o.list].is_healthy();
            sum.pairs += 1;
            if counted {
                healthy_pairs += 1;
            }
            match o.verdict.kind() {
                VerdictKind::Listed if counted => sum.listed += 1,
                VerdictKind::Listed => sum.listed_uncounted += 1,
                VerdictKind::Clear => sum.clear += 1,
                VerdictKind::Allowed => sum.allowed += 1,
                VerdictKind::ListError => sum.errors += 1,
                VerdictKind::Unknown => {
                    sum.unknown += 1;
                    if counted {
                        healthy_unknown += 1;
                    }
                }
            }
            let keep =
                a.json || a.nagios || show == Show::All || o.verdict.kind() != VerdictKind::Clear;
            if keep && !(a.nagios && o.verdict.kind() != VerdictKind::Listed) {
                let def = &engine.lists()[o.list].def;
                let delist = matches!(o.verdict, Verdict::Listed { .. })
                    .then(|| def.delist_url(&o.target))
                    .flatten();
                rows.push(Row {
                    target: o.target,
                    list: def.id.clone(),
                    verdict: o.verdict,
                    counted,
                    delist,
                });
            }
        }
    }
    rows.sort_by(|x, y| (&x.target, &x.list).cmp(&(&y.target, &y.list)));

    if a.nagios {
        return Ok(nagios(
            &a,
            &sum,
            &rows,
            &engine,
            &health,
            healthy_pairs,
            healthy_unknown,
        ));
    }
    if a.json {
        let lists: Vec<ListOut> = engine
            .lists()
            .iter()
            .zip(&health)
            .map(|(l, h)| ListOut {
                id: &l.def.id,
                name: &l.def.name,
                zone: l.display_zone(),
                health: h,
            })
            .collect();
        let out = serde_json::json!({ "lists": lists, "results": rows, "summary": sum, "warnings": warnings });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(if sum.listed > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    print_table(&rows, &engine, &health, &sum, show);
    Ok(if sum.listed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_table(rows: &[Row], engine: &Engine, health: &[ListHealth], sum: &Summary, show: Show) {
    let unhealthy: Vec<String> = engine
        .lists()
        .iter()
        .zip(health)
        .filter(|(_, h)| !h.is_healthy())
        .map(|(l, h)| {
            format!(
                "  {:<22} {:<17} {}",
                l.def.id,
                h.name(),
                terminal_safe(h.why(), 200)
            )
        })
        .collect();
    if !unhealthy.is_empty() {
        println!("Lists not healthy (their answers are shown but never count as listings):");
        for u in &unhealthy {
            println!("{u}");
        }
        println!();
    }
    let tw = rows
        .iter()
        .map(|r| r.target.to_string().len())
        .max()
        .unwrap_or(6)
        .max(6);
    let lw = rows.iter().map(|r| r.list.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<tw$}  {:<lw$}  {:<9}  {:<40}  {:<40}  DELIST",
        "TARGET", "LIST", "VERDICT", "MEANING", "TXT REASON"
    );
    for r in rows {
        let mut v = r.verdict.kind().as_str().to_string();
        if !r.counted && r.verdict.kind() == VerdictKind::Listed {
            v.push('*');
        }
        let txt = match &r.verdict {
            Verdict::Listed { txt, .. } => txt.join(" | "),
            _ => String::new(),
        };
        println!(
            "{:<tw$}  {:<lw$}  {:<9}  {:<40}  {:<40}  {}",
            r.target.to_string(),
            r.list,
            v,
            terminal_safe(&r.verdict.meaning(), 40),
            terminal_safe(&txt, 40),
            r.delist
                .as_deref()
                .map(|d| terminal_safe(d, 120))
                .unwrap_or_default()
        );
    }
    if show == Show::Problems && sum.clear > 0 {
        println!(
            "({} clear answers not shown; --show all shows them)",
            sum.clear
        );
    }
    println!();
    println!(
        "{} targets x {} lists ({} healthy): {} listed, {} clear, {} allowed, {} errors, {} unknown{}",
        sum.targets,
        engine.lists().len(),
        sum.lists_healthy,
        sum.listed,
        sum.clear,
        sum.allowed,
        sum.errors,
        sum.unknown,
        if sum.listed_uncounted > 0 {
            format!(" (+{} listed* by unhealthy lists, not counted)", sum.listed_uncounted)
        } else {
            String::new()
        }
    );
}

fn nagios(
    a: &CheckArgs,
    sum: &Summary,
    rows: &[Row],
    engine: &Engine,
    health: &[ListHealth],
    healthy_pairs: u64,
    healthy_unknown: u64,
) -> ExitCode {
    let listed: Vec<String> = rows
        .iter()
        .filter(|r| r.counted)
        .map(|r| format!("{} on {}", r.target, r.list))
        .collect();
    let perf = format!(
        "listings={};{};{};0 lists_healthy={} lists_unhealthy={} errors={} unknown={}",
        sum.listed,
        a.warning,
        a.critical,
        sum.lists_healthy,
        sum.lists_unhealthy,
        sum.errors,
        sum.unknown
    );
    let unhealthy: Vec<String> = engine
        .lists()
        .iter()
        .zip(health)
        .filter(|(_, h)| !h.is_healthy())
        .map(|(l, h)| format!("{} {}", l.def.id, h.name()))
        .collect();
    let degraded = if unhealthy.is_empty() {
        String::new()
    } else {
        format!("; lists not healthy: {}", unhealthy.join(", "))
    };
    let listings = usize::try_from(sum.listed).unwrap_or(usize::MAX);
    // Nothing trustworthy came back: no healthy list, or every healthy query went unanswered.
    let (word, code) =
        if sum.lists_healthy == 0 || (healthy_pairs > 0 && healthy_unknown == healthy_pairs) {
            ("UNKNOWN", 3)
        } else if listings >= a.critical {
            ("CRITICAL", 2)
        } else if listings >= a.warning {
            ("WARNING", 1)
        } else {
            ("OK", 0)
        };
    let detail = if code == 3 {
        format!("no usable answer from any list (resolver unreachable or every list unhealthy){degraded}")
    } else if listed.is_empty() {
        format!(
            "{} targets clear on {} healthy lists{degraded}",
            sum.targets, sum.lists_healthy
        )
    } else {
        format!("{} listings: {}{degraded}", sum.listed, listed.join(", "))
    };
    println!("RBL {word} - {} | {perf}", terminal_safe(&detail, 1000));
    ExitCode::from(code)
}
