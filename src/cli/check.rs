//! `rblwatch check`: one-off checks with a table, JSON or Nagios/Icinga plugin output.
//!
//! `--nagios` follows the Monitoring Plugins development guidelines: one status
//! line with perfdata, then long output (one line per listing); `-w`/`-c` are
//! plugin threshold ranges ([`Range`]); every failure, argument errors included,
//! is UNKNOWN (3) with a status line on stdout, and nothing goes to stderr
//! unless `-v` (Icinga 2 shows stderr as the service's output).

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use futures::StreamExt;
use serde::Serialize;

use super::range::Range;
use super::text::terminal_safe;
use crate::config::{parse_duration, parse_server, Config};
use crate::engine::{self, Engine};
use crate::health::{ListHealth, ResolverHealth, ResolverStatus};
use crate::target::{RangePolicy, Target, TargetSpec};
use crate::verdict::{Verdict, VerdictKind};

/// Arguments of `rblwatch check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// IPs, CIDR ranges or domains (a domain is checked as a domain, on domain lists).
    /// Without any (and without -H), the config's targets.
    pub targets: Vec<String>,
    /// A mail server to check by its addresses, as check_rbl's -H (repeatable): a host name is
    /// resolved by the system resolver (getaddrinfo) and each A and AAAA address is checked.
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only these lists (comma-separated ids or zones, e.g. spamhaus-zen or zen.spamhaus.org).
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
    /// Nagios/Icinga plugin output: a status line with perfdata, then one line per listing;
    /// exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Nothing on stderr unless -v.
    #[arg(long)]
    pub nagios: bool,
    /// With --nagios: WARNING when the number of listings is outside this range (plugin range
    /// syntax: 10, 10:, ~:10, 10:20, @10:20). The default 0 warns at one listing or more.
    #[arg(
        short = 'w',
        long = "warning",
        default_value = "0",
        value_name = "RANGE"
    )]
    pub warning: Range,
    /// With --nagios: CRITICAL when the number of listings is outside this range (as -w).
    /// The default 0 makes any listing critical.
    #[arg(
        short = 'c',
        long = "critical",
        default_value = "0",
        value_name = "RANGE"
    )]
    pub critical: Range,
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

/// `RBL UNKNOWN - …` on stdout and exit 3: how a plugin reports that it could not check.
fn nagios_unknown(msg: &str) -> ExitCode {
    println!("RBL UNKNOWN - {}", plugin_safe(msg, 1000));
    ExitCode::from(3)
}

/// Untrusted text (TXT records, error messages) made safe for plugin output:
/// no control characters (so no extra lines) and no `|`, which would start perfdata.
fn plugin_safe(s: &str, max: usize) -> String {
    terminal_safe(s, max).replace('|', "/")
}

/// True when `rblwatch check --nagios` runs without -v: then nothing may go to
/// stderr (Icinga 2 shows it as the check's output), so no log is set up at all.
pub(super) fn quiet(a: &CheckArgs, verbose: u8) -> bool {
    a.nagios && verbose == 0
}

/// A command line clap refused. With `check --nagios` it is UNKNOWN (3) with a
/// status line on stdout, as the plugin guidelines want (clap's own exit is 2, CRITICAL);
/// otherwise clap reports it as usual.
pub(super) fn args_refused(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let args: Vec<String> = std::env::args().collect();
    let is_check = args.iter().skip(1).any(|a| a == "check");
    let nagios = args.iter().any(|a| a == "--nagios");
    if !is_check
        || !nagios
        || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
    {
        e.exit();
    }
    let text = e.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    nagios_unknown(&format!("invalid arguments: {first}"))
}

/// Runs the command. With --nagios every error is UNKNOWN with a status line.
pub(super) async fn run(cfg_path: Option<&Path>, a: CheckArgs) -> anyhow::Result<ExitCode> {
    let nagios = a.nagios;
    match run_inner(cfg_path, a).await {
        Err(e) if nagios => Ok(nagios_unknown(&format!("{e:#}"))),
        r => r,
    }
}

/// Resolves `-H` values: an IP stays itself, a host name becomes its A and
/// AAAA addresses (check_rbl checks a host's addresses, not its name).
async fn resolve_hosts(
    hosts: &[String],
    policy: RangePolicy,
) -> (Vec<TargetSpec>, Vec<String>, Vec<String>) {
    let (mut specs, mut notes, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    // an empty -H is no host: Icinga passes "" for a host without an address
    for h in hosts.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
        if h.parse::<std::net::IpAddr>().is_ok() {
            match TargetSpec::parse(h, policy) {
                Ok(s) => specs.push(s),
                Err(e) => bad.push(e.to_string()),
            }
            continue;
        }
        let lookup = tokio::time::timeout(
            std::time::Duration::from_secs(15),
            tokio::net::lookup_host((h, 0)),
        )
        .await;
        let mut addrs: Vec<std::net::IpAddr> = match lookup {
            Ok(Ok(it)) => it.map(|sa| sa.ip()).collect(),
            Ok(Err(e)) => {
                bad.push(format!("cannot resolve host {h:?}: {e}"));
                continue;
            }
            Err(_) => {
                bad.push(format!("cannot resolve host {h:?}: no answer within 15 s"));
                continue;
            }
        };
        addrs.sort_unstable();
        addrs.dedup();
        if addrs.is_empty() {
            bad.push(format!("host {h:?} has no A or AAAA address"));
            continue;
        }
        notes.push(format!(
            "host {h} resolves to {}",
            addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for a in addrs {
            match TargetSpec::parse(&a.to_string(), policy) {
                Ok(s) => specs.push(s),
                Err(e) => bad.push(e.to_string()),
            }
        }
    }
    (specs, notes, bad)
}

async fn run_inner(cfg_path: Option<&Path>, a: CheckArgs) -> anyhow::Result<ExitCode> {
    let unknown = |msg: String| Ok(nagios_unknown(&msg));
    let mut cfg = match super::load_config(cfg_path, false) {
        Ok(c) => c,
        Err(e) if a.nagios => return unknown(format!("{e:#}")),
        Err(e) => return Err(e),
    };
    let (specs, host_notes) = match targets_to_check(&a, &cfg).await {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let servers = resolver_overrides(&mut cfg, &a)?;
    let (engine, warnings) =
        match engine::from_config(&cfg, a.lists.as_deref(), Some(servers)).await {
            Ok(x) => x,
            Err(e) if a.nagios => return unknown(format!("{e:#}")),
            Err(e) => return Err(e.into()),
        };
    for w in &warnings {
        tracing::warn!("{w}");
    }
    // --nagios shows them in its long output (nothing goes to stderr there)
    let notes: Vec<String> = host_notes
        .into_iter()
        .chain(warnings.iter().map(|w| format!("warning: {w}")))
        .collect();
    if engine.lists().is_empty() {
        if a.nagios {
            return unknown("no list to query".into());
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
    let (mut rows, checked) = sweep_rows(&a, &engine, &specs, &health, show, &mut sum).await;
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
            &notes,
        ));
    }
    // Exit status: 0 only when nothing is listed and everything was checked.
    let code = if sum.listed > 0 || sum.pairs_unchecked > 0 || sum.targets_unchecked > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    if a.json {
        print_json(&engine, &report, &rows, &sum, &unchecked_targets, &warnings)?;
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

/// The targets to check: the command line's (with -H hosts resolved), else
/// the config's; and the notes on resolved hosts. A bad target or nothing to
/// check is reported here (UNKNOWN under --nagios) and gives the exit code.
async fn targets_to_check(
    a: &CheckArgs,
    cfg: &Config,
) -> Result<(Vec<TargetSpec>, Vec<String>), ExitCode> {
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
    let (host_specs, host_notes, host_bad) = resolve_hosts(&a.hosts, policy).await;
    specs.extend(host_specs);
    bad.extend(host_bad);
    if !bad.is_empty() {
        if a.nagios {
            return Err(nagios_unknown(&bad.join("; ")));
        }
        for b in &bad {
            eprintln!("rblwatch: {b}");
        }
        return Err(ExitCode::from(2));
    }
    if specs.is_empty() {
        specs = cfg.targets.iter().map(|t| t.spec.clone()).collect();
    }
    if specs.is_empty() {
        let msg = "nothing to check: give targets (or -H) on the command line or in the config";
        if a.nagios {
            return Err(nagios_unknown(msg));
        }
        eprintln!("rblwatch: {msg}");
        return Err(ExitCode::from(2));
    }
    Ok((specs, host_notes))
}

/// The command line's resolver overrides: the --resolver servers (parsed),
/// and --timeout and --concurrency applied to `cfg`.
fn resolver_overrides(
    cfg: &mut Config,
    a: &CheckArgs,
) -> anyhow::Result<Vec<std::net::SocketAddr>> {
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
    Ok(servers)
}

/// `--json`: the resolver, each list's health, the rows, the summary, the
/// unchecked targets and the warnings as one document.
fn print_json(
    engine: &Engine,
    report: &engine::HealthReport,
    rows: &[Row],
    sum: &Summary,
    unchecked_targets: &[String],
    warnings: &[String],
) -> anyhow::Result<()> {
    let resolver = &report.resolver;
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
    Ok(())
}

/// Sweeps every (target, list) pair once, counting the answers into `sum`:
/// the rows to show (per --show, --json, --nagios) and the targets that got
/// a usable answer from a healthy list.
async fn sweep_rows(
    a: &CheckArgs,
    engine: &Engine,
    specs: &[TargetSpec],
    health: &[ListHealth],
    show: Show,
    sum: &mut Summary,
) -> (Vec<Row>, std::collections::HashSet<Target>) {
    let mut rows = Vec::new();
    // which targets got a usable answer from a healthy list
    let mut checked: std::collections::HashSet<Target> = std::collections::HashSet::new();
    let mut outcomes = engine.sweep(specs, health);
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
    (rows, checked)
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

/// How many listings the status line names before "and N more" (the rest are in the long output).
const STATUS_LINE_LISTINGS: usize = 3;
/// How many long-output lines of listings at most (Nagios keeps 8 KB of output by default).
const LONG_OUTPUT_LISTINGS: usize = 50;

#[allow(clippy::too_many_arguments)]
fn nagios(
    a: &CheckArgs,
    sum: &Summary,
    rows: &[Row],
    engine: &Engine,
    health: &[ListHealth],
    resolver: &ResolverHealth,
    unchecked_targets: &[String],
    notes: &[String],
) -> ExitCode {
    let counted: Vec<&Row> = rows.iter().filter(|r| r.counted).collect();
    let mut named: Vec<String> = counted
        .iter()
        .take(STATUS_LINE_LISTINGS)
        .map(|r| format!("{} on {}", r.target, r.list))
        .collect();
    if counted.len() > STATUS_LINE_LISTINGS {
        named.push(format!("and {} more", counted.len() - STATUS_LINE_LISTINGS));
    }
    let perf = format!(
        "listings={};{};{};0; unchecked_pairs={} unchecked_targets={} lists_healthy={} lists_unhealthy={} errors={} unknown={}",
        sum.listed,
        a.warning,
        a.critical,
        sum.pairs_unchecked,
        sum.targets_unchecked,
        sum.lists_healthy,
        sum.lists_unhealthy,
        sum.errors,
        sum.unknown
    );
    let unhealthy: Vec<(&str, &ListHealth)> = engine
        .lists()
        .iter()
        .zip(health)
        .filter(|(_, h)| !h.is_healthy())
        .map(|(l, h)| (l.def.id.as_str(), h))
        .collect();
    let degraded = if unhealthy.is_empty() {
        String::new()
    } else {
        format!(
            "; lists not healthy: {}",
            unhealthy
                .iter()
                .map(|(id, h)| format!("{id} {}", h.name()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let listings = format!(
        "{} listing{}{}{}{degraded}",
        sum.listed,
        if sum.listed == 1 { "" } else { "s" },
        if named.is_empty() { "" } else { ": " },
        named.join(", ")
    );
    let (word, code, detail) =
        nagios_status(a, sum, resolver, unchecked_targets, listings, &degraded);
    println!("RBL {word} - {} | {perf}", plugin_safe(&detail, 300));
    for line in long_output(rows, engine, &unhealthy, resolver, notes) {
        println!("{}", plugin_safe(&line, 1000));
    }
    ExitCode::from(code)
}

/// The plugin's status: word, exit code and the status line's text. The
/// thresholds judge the listing count only when the check can be believed;
/// otherwise an unusable resolver or unchecked targets are UNKNOWN.
fn nagios_status(
    a: &CheckArgs,
    sum: &Summary,
    resolver: &ResolverHealth,
    unchecked_targets: &[String],
    listings: String,
    degraded: &str,
) -> (&'static str, u8, String) {
    // Thresholds judge the count; a count of 0 from a check that checked nothing proves nothing.
    let n = sum.listed as f64;
    let believable = sum.listed > 0
        || (resolver.status != ResolverStatus::Unusable
            && sum.targets_checked > 0
            && sum.targets_unchecked == 0);
    if believable && a.critical.alerts(n) {
        ("CRITICAL", 2, listings)
    } else if believable && a.warning.alerts(n) {
        ("WARNING", 1, listings)
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
    }
}

/// The plugin's long output: one line per listing (meaning, TXT, delisting
/// link), then what else a postmaster needs to read the status line.
fn long_output(
    rows: &[Row],
    engine: &Engine,
    unhealthy: &[(&str, &ListHealth)],
    resolver: &ResolverHealth,
    notes: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    for r in rows.iter().take(LONG_OUTPUT_LISTINGS) {
        let zone = engine
            .lists()
            .iter()
            .find(|l| l.def.id == r.list)
            .map(|l| l.display_zone())
            .unwrap_or_default();
        let mut line = format!(
            "{} listed on {} ({zone}): {}",
            r.target,
            r.list,
            r.verdict.meaning()
        );
        if let Verdict::Listed { txt, .. } = &r.verdict {
            if !txt.is_empty() {
                line.push_str(&format!("; TXT: {}", txt.join(" / ")));
            }
        }
        if let Some(d) = &r.delist {
            line.push_str(&format!("; delist: {d}"));
        }
        if !r.counted {
            line.push_str("; not counted: the list is not healthy");
        }
        out.push(line);
    }
    if rows.len() > LONG_OUTPUT_LISTINGS {
        out.push(format!(
            "... and {} more listings (rblwatch check without --nagios shows all)",
            rows.len() - LONG_OUTPUT_LISTINGS
        ));
    }
    for (id, h) in unhealthy {
        out.push(format!("list {id} {}: {}", h.name(), h.why()));
    }
    if resolver.status != ResolverStatus::Ok {
        out.push(resolver_line(resolver));
    }
    out.extend(notes.iter().cloned());
    out
}
