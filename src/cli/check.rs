//! `rblwatch check`: one-off checks with a table, JSON or a Nagios line.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use futures::StreamExt;
use serde::Serialize;

use super::text::terminal_safe;
use crate::config::{parse_duration, parse_server};
use crate::engine::{self, Engine};
use crate::health::{ListHealth, ResolverHealth, ResolverStatus};
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
    /// Targets with at least one usable answer from a healthy list.
    targets_checked: u64,
    /// Targets no healthy list answered for (or no list covers): never clear.
    targets_unchecked: u64,
    pairs: u64,
    /// Pairs without a usable answer (unknown, error, or an unhealthy list's): never clear.
    pairs_unchecked: u64,
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

    let report = engine.check().await;
    let resolver = report.resolver.clone();
    // An unusable resolver checks nothing: no target is asked, all stay unchecked.
    let health = report.gated();
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
    sum.lists_healthy = report.lists.iter().filter(|h| h.is_healthy()).count();
    sum.lists_unhealthy = report.lists.len() - sum.lists_healthy;
    let mut rows = Vec::new();
    // which targets got a usable answer from a healthy list
    let mut checked: std::collections::HashSet<Target> = std::collections::HashSet::new();
    {
        let mut outcomes = engine.sweep(&specs, &health);
        while let Some(o) = outcomes.next().await {
            let counted = health[o.list].is_healthy();
            sum.pairs += 1;
            let usable_answer = matches!(
                o.verdict.kind(),
                VerdictKind::Listed | VerdictKind::Clear | VerdictKind::Allowed
            );
            if counted && usable_answer {
                checked.insert(o.target.clone());
            } else {
                sum.pairs_unchecked += 1;
            }
            match o.verdict.kind() {
                VerdictKind::Listed if counted => sum.listed += 1,
                VerdictKind::Listed => sum.listed_uncounted += 1,
                VerdictKind::Clear => sum.clear += 1,
                VerdictKind::Allowed => sum.allowed += 1,
                VerdictKind::ListError => sum.errors += 1,
                VerdictKind::Unknown => sum.unknown += 1,
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
    sum.targets_checked = checked.len() as u64;
    sum.targets_unchecked = u64::try_from(targets).unwrap_or(u64::MAX) - sum.targets_checked;
    // name a few unchecked targets (an IPv6 address with only IPv4 lists, say)
    let unchecked_targets: Vec<String> = specs
        .iter()
        .flat_map(|s| s.targets())
        .filter(|t| !checked.contains(t))
        .take(10)
        .map(|t| t.to_string())
        .collect();

    if a.nagios {
        return Ok(nagios(
            &a,
            &sum,
            &rows,
            &engine,
            &health,
            &resolver,
            &unchecked_targets,
        ));
    }
    // Exit status: 0 only when nothing is listed and everything was checked.
    let code = if sum.listed > 0 || sum.pairs_unchecked > 0 || sum.targets_unchecked > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    if a.json {
        let lists: Vec<ListOut> = engine
            .lists()
            .iter()
            .zip(&report.lists)
            .map(|(l, h)| ListOut {
                id: &l.def.id,
                name: &l.def.name,
                zone: l.display_zone(),
                health: h,
            })
            .collect();
        let out = serde_json::json!({ "resolver": resolver, "lists": lists, "results": rows, "summary": sum, "unchecked_targets": unchecked_targets, "warnings": warnings });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(code);
    }
    println!("{}", resolver_line(&resolver));
    print_table(&rows, &engine, &report.lists, &sum, show);
    if sum.targets_unchecked > 0 {
        println!(
            "{} target(s) unchecked (no usable answer from a healthy list that covers them): {}",
            sum.targets_unchecked,
            unchecked_targets.join(", ")
        );
    }
    Ok(code)
}

/// The first line of `check` and `lists --health`: `resolver ok: …`.
pub(super) fn resolver_line(r: &ResolverHealth) -> String {
    let fix = if r.fix.is_empty() {
        String::new()
    } else {
        format!("; fix: {}", r.fix)
    };
    format!(
        "resolver {}: {}{fix}",
        r.status.as_str(),
        terminal_safe(&r.why, 300)
    )
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
        } else if !r.counted {
            // an unhealthy list's answer checks nothing
            v = "unchecked".into();
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
    resolver: &ResolverHealth,
    unchecked_targets: &[String],
) -> ExitCode {
    let listed: Vec<String> = rows
        .iter()
        .filter(|r| r.counted)
        .map(|r| format!("{} on {}", r.target, r.list))
        .collect();
    // Plugin range syntax: "-w 1" means "warn at 1 or more", i.e. outside 0..0 = range "0".
    let range = |t: usize| t.saturating_sub(1).to_string();
    let perf = format!(
        "listings={};{};{};0; unchecked_pairs={} unchecked_targets={} lists_healthy={} lists_unhealthy={} errors={} unknown={}",
        sum.listed,
        range(a.warning),
        range(a.critical),
        sum.pairs_unchecked,
        sum.targets_unchecked,
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
    let (word, code, detail) = if listings >= a.critical {
        (
            "CRITICAL",
            2,
            format!("{} listings: {}{degraded}", sum.listed, listed.join(", ")),
        )
    } else if listings >= a.warning {
        (
            "WARNING",
            1,
            format!("{} listings: {}{degraded}", sum.listed, listed.join(", ")),
        )
    } else if resolver.status == ResolverStatus::Unusable {
        (
            "UNKNOWN",
            3,
            format!("resolver unusable: {}; fix: {}", resolver.why, resolver.fix),
        )
    } else if sum.targets_checked == 0 {
        (
            "UNKNOWN",
            3,
            format!(
                "nothing was checked: no usable answer from a healthy list that covers {}{degraded}",
                unchecked_targets.join(", ")
            ),
        )
    } else if sum.targets_unchecked > 0 {
        (
            "UNKNOWN",
            3,
            format!(
                "{} target(s) unchecked (no healthy list covers them or none answered): {}{degraded}",
                sum.targets_unchecked,
                unchecked_targets.join(", ")
            ),
        )
    } else if sum.pairs_unchecked > 0 {
        (
            "WARNING",
            1,
            format!(
                "no listings, but {} of {} pairs unchecked{degraded}",
                sum.pairs_unchecked, sum.pairs
            ),
        )
    } else {
        (
            "OK",
            0,
            format!(
                "{} targets clear on {} healthy lists{}",
                sum.targets,
                sum.lists_healthy,
                if resolver.status == ResolverStatus::Degraded {
                    format!("; resolver degraded: {}", resolver.why)
                } else {
                    String::new()
                }
            ),
        )
    };
    println!("RBL {word} - {} | {perf}", terminal_safe(&detail, 1000));
    ExitCode::from(code)
}
