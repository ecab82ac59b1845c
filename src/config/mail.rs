//! `[[sources]]`, `[[probes]]` and `[[spikes]]`: the mail server's telemetry
//! and the backscatter probe. Plain settings; the `mail`, `smtp_probe` and
//! `spike` stages act on them.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use super::ctx::{hostname, program_exists, valid_name, Ctx};
pub use super::kinds::{SpikeKind, StartTls};
use super::raw::{RawConfig, RawSource, RawSourceKind as K};
use super::schedule::Schedule;
use crate::secret::Secret;

/// What a source reads.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// `postqueue -j` (or the configured command, e.g. `ssh mx1 postqueue -j`).
    Postfix {
        /// argv.
        command: Vec<String>,
    },
    /// The Postfix log file, followed across rotation; position kept in the database.
    PostfixLog {
        /// The log file.
        path: PathBuf,
    },
    /// The Exim main log, followed across rotation like `postfix_log`.
    EximLog {
        /// The main log file.
        path: PathBuf,
    },
    /// `exim -bp`.
    Exim {
        /// argv.
        command: Vec<String>,
    },
    /// Any command printing a number or a JSON object.
    Command {
        /// argv.
        command: Vec<String>,
    },
    /// An HTTP endpoint returning JSON; values picked by JSON pointer.
    HttpJson {
        /// URL (may hold a token: secret).
        url: Secret,
        /// Optional header, e.g. `Authorization: Bearer …` (secret).
        header: Option<(String, Secret)>,
        /// metric name → JSON pointer.
        values: BTreeMap<String, String>,
    },
    /// A Prometheus text endpoint; values picked by selector.
    Prometheus {
        /// URL (secret).
        url: Secret,
        /// Optional header (secret).
        header: Option<(String, Secret)>,
        /// metric name → selector.
        metrics: BTreeMap<String, Selector>,
    },
}

impl SourceKind {
    /// The kind's name as written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::Postfix { .. } => "postfix",
            SourceKind::PostfixLog { .. } => "postfix_log",
            SourceKind::Exim { .. } => "exim",
            SourceKind::EximLog { .. } => "exim_log",
            SourceKind::Command { .. } => "command",
            SourceKind::HttpJson { .. } => "http_json",
            SourceKind::Prometheus { .. } => "prometheus",
        }
    }
}

/// A configured source.
#[derive(Debug, Clone)]
pub struct SourceConf {
    /// Name (used in metric keys: `<name>.<metric>`).
    pub name: String,
    /// What to read.
    pub kind: SourceKind,
    /// How often. Defaults to every 60 s (at least 1 s).
    pub interval: Schedule,
    /// Time allowed for one read. Defaults to 10 s.
    pub timeout: Duration,
    /// Extra environment variables for a command (the rest is cleared but PATH, HOME, LANG).
    pub env: Vec<(String, String)>,
}

/// What to probe and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOpts {
    /// `host:port`.
    pub server: String,
    /// The protected domain.
    pub domain: String,
    /// EHLO name. Defaults to the system host name.
    pub helo: String,
    /// MAIL FROM address. Defaults to `postmaster@<domain>`.
    pub mail_from: String,
    /// Control recipient that must exist (local part or full address). Defaults to `postmaster`.
    pub control: String,
    /// Timeout of each step. Defaults to 10 s.
    pub timeout: Duration,
    /// STARTTLS use. Defaults to opportunistic.
    pub starttls: StartTls,
}

/// A configured backscatter probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConf {
    /// Name (log lines, job names). Defaults to `<domain>@<server>`.
    pub name: String,
    /// What to probe.
    pub opts: ProbeOpts,
    /// How often. Defaults to every hour (at least 1 s).
    pub interval: Schedule,
}

/// Parses an SMTP server: `host`, `host:port`, `ip`, `[ipv6]:port` (port 25 by default).
pub fn smtp_server(s: &str) -> Result<String, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not host, host:port or [ipv6]:port");
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, 25).to_string());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, port) = rest.split_once(']').ok_or_else(bad)?;
        let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| bad())?;
        let port = match port.strip_prefix(':') {
            Some(p) => p.parse::<u16>().map_err(|_| bad())?,
            None if port.is_empty() => 25,
            None => return Err(bad()),
        };
        return Ok(std::net::SocketAddr::new(ip.into(), port).to_string());
    }
    match s.split_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(':') => {
            let port: u16 = port.parse().map_err(|_| bad())?;
            Ok(format!("{host}:{port}"))
        }
        Some(_) => Err(bad()),
        None if !s.is_empty() && !s.contains(char::is_whitespace) => Ok(format!("{s}:25")),
        None => Err(bad()),
    }
}

/// A spike rule on one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeRule {
    /// `<source>.<metric>`, e.g. `mx1.queue_bounces`.
    pub metric: String,
    /// Which events.
    pub kind: SpikeKind,
    /// Absolute threshold. Default: none.
    pub above: Option<f64>,
    /// Increase per interval. Default: none.
    pub rate: Option<f64>,
    /// k for the baseline rule. Default: none.
    pub baseline_factor: Option<f64>,
    /// The baseline rule never fires below this value. Defaults to 10.
    pub floor: f64,
    /// Samples without a trigger before clearing. Defaults to 2.
    pub clear_after: u32,
    /// Clearing also needs value ≤ clear_ratio × `above`. Defaults to 0.8 (0 to 1).
    pub clear_ratio: f64,
}

impl SpikeRule {
    /// The source and metric names.
    pub fn source_metric(&self) -> (&str, &str) {
        self.metric.split_once('.').unwrap_or((&self.metric, ""))
    }
}

/// A series selector: `name` or `name{label="value",…}` (labels are a subset match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Metric name.
    pub name: String,
    /// Labels that must match.
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    /// Parses a selector.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, labels) =
            parse_series(s.trim()).map_err(|e| format!("bad selector {s:?}: {e}"))?;
        Ok(Selector { name, labels })
    }

    /// Whether a series with this name and labels is selected.
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        name == self.name && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let l: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            write!(f, "{{{}}}", l.join(","))?;
        }
        Ok(())
    }
}

/// Splits `name{label="value",…}` into its name and labels: the series syntax
/// shared by selectors and the Prometheus text parser.
pub fn parse_series(s: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let (name, rest) = match s.find('{') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    if let Some(rest) = rest {
        let body = rest.strip_suffix('}').ok_or("missing '}'")?;
        let mut chars = body.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if chars.next() != Some('"') {
                return Err("label value must be quoted".into());
            }
            let mut val = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => val.push('\n'),
                        Some(c) => val.push(c),
                        None => return Err("unterminated escape".into()),
                    },
                    Some('"') => break,
                    Some(c) => val.push(c),
                    None => return Err("unterminated label value".into()),
                }
            }
            labels.insert(key.trim().to_string(), val);
        }
    }
    Ok((name.to_string(), labels))
}

/// Validates `[[sources]]`, `[[probes]]` and `[[spikes]]`.
pub(super) fn validate(
    raw: &RawConfig,
    cx: &Ctx<'_>,
) -> (Vec<SourceConf>, Vec<ProbeConf>, Vec<SpikeRule>) {
    let mut names = HashSet::new();
    let sources = raw
        .sources
        .iter()
        .filter_map(|(i, s)| source(*i, s, &mut names, cx))
        .collect();
    // a source that could not be read was reported: a spike on it is not news
    names.extend(raw.unread_source_names.iter().cloned());
    (sources, probes(raw, cx), spikes(raw, &names, cx))
}

/// One `[[sources]]` entry (`None` when it is wrong: reported). Its name
/// goes into `names` even then, so spikes on it are not reported as well.
fn source(
    i: usize,
    s: &RawSource,
    names: &mut HashSet<String>,
    cx: &Ctx<'_>,
) -> Option<SourceConf> {
    let key = format!("sources[{i}]");
    let name = s.name.get_ref().trim().to_string();
    if !valid_name(&name) {
        cx.report(
            s.name.span(),
            format!("{key}.name: {name:?} must be letters, digits, '-' or '_'"),
        );
    } else if !names.insert(name.clone()) {
        cx.report(s.name.span(), format!("{key}.name: {name:?} is used twice"));
    }
    let kind = source_kind(&key, &name, s, cx);
    let interval = cx.schedule(
        &s.interval,
        &format!("{key}.interval"),
        Duration::from_secs(60),
        Duration::from_secs(1),
    );
    let timeout = cx.duration(
        &s.timeout,
        &format!("{key}.timeout"),
        Duration::from_secs(10),
        Duration::from_millis(100),
        Duration::from_secs(600),
    );
    Some(SourceConf {
        name,
        kind: kind?,
        interval,
        timeout,
        env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    })
}

/// What a source reads, by kind (`None` when wrong: reported).
fn source_kind(key: &str, name: &str, s: &RawSource, cx: &Ctx<'_>) -> Option<SourceKind> {
    let needs = |field: &str, what: &str| {
        cx.missing(
            &format!("{key}.{field}"),
            s.name.span(),
            format!("{key}: kind {} needs {what}", kind_name(s.kind)),
        )
    };
    Some(match s.kind {
        K::Postfix => SourceKind::Postfix {
            command: source_argv(key, name, s, &["postqueue", "-j"], cx)?,
        },
        K::Exim => SourceKind::Exim {
            command: source_argv(key, name, s, &["exim", "-bp"], cx)?,
        },
        K::Command => {
            if s.command.is_none() {
                needs("command", "`command`");
                return None;
            }
            SourceKind::Command {
                command: source_argv(key, name, s, &[], cx)?,
            }
        }
        K::PostfixLog | K::EximLog => {
            let Some(p) = &s.path else {
                needs("path", "`path`");
                return None;
            };
            let path = cx.path(p.get_ref());
            if s.kind == K::PostfixLog {
                SourceKind::PostfixLog { path }
            } else {
                SourceKind::EximLog { path }
            }
        }
        K::HttpJson => {
            if s.values.is_empty() {
                needs("values", "`values` (name = JSON pointer)");
            }
            for (n, p) in &s.values {
                if !valid_name(n) || !(p.is_empty() || p.starts_with('/')) {
                    cx.report(
                        s.name.span(),
                        format!("{key}.values.{n}: bad name or JSON pointer {p:?}"),
                    );
                }
            }
            SourceKind::HttpJson {
                url: source_url(key, s, cx)?,
                header: source_header(key, s, cx),
                values: s.values.clone(),
            }
        }
        K::Prometheus => {
            if s.metrics.is_empty() {
                needs("metrics", "`metrics` (name = selector)");
            }
            let mut metrics = BTreeMap::new();
            for (n, sel) in &s.metrics {
                if !valid_name(n) {
                    cx.report(sel.span(), format!("{key}.metrics.{n}: bad name"));
                }
                match Selector::parse(sel.get_ref()) {
                    Ok(parsed) => {
                        metrics.insert(n.clone(), parsed);
                    }
                    Err(m) => cx.report(sel.span(), format!("{key}.metrics.{n}: {m}")),
                }
            }
            SourceKind::Prometheus {
                url: source_url(key, s, cx)?,
                header: source_header(key, s, cx),
                metrics,
            }
        }
    })
}

/// The kind's name as written in the config.
fn kind_name(k: K) -> &'static str {
    match k {
        K::Postfix => "postfix",
        K::PostfixLog => "postfix_log",
        K::Exim => "exim",
        K::EximLog => "exim_log",
        K::Command => "command",
        K::HttpJson => "http_json",
        K::Prometheus => "prometheus",
    }
}

/// A source's argv: its `command`, else the kind's `default`. A program the
/// file names must exist here (absolute, or on PATH), like a hook's: a typo
/// is found now, not as a read failing every minute. The default `postqueue`
/// or `exim` may be installed later (or the MTA be reached through another
/// default): a warning.
fn source_argv(
    key: &str,
    name: &str,
    s: &RawSource,
    default: &[&str],
    cx: &Ctx<'_>,
) -> Option<Vec<String>> {
    let (v, span) = match &s.command {
        Some(c) => (c.get_ref().clone(), c.span()),
        None => (
            default.iter().map(|x| x.to_string()).collect(),
            s.name.span(),
        ),
    };
    let Some(prog) = v.first().filter(|p| !p.is_empty()) else {
        cx.report(
            span,
            format!("{key}.command: must name a program (argv list, no shell)"),
        );
        return None;
    };
    if !program_exists(prog) {
        if s.command.is_some() {
            cx.report(
                span,
                format!("{key}.command: program {prog:?} does not exist or is not executable (give an absolute path, or a name on PATH)"),
            );
            return None;
        }
        cx.warn(format!(
            "{key}.command: program {prog:?} is not found here; reads of source {name:?} will fail until it is"
        ));
    }
    Some(v)
}

/// The URL of an `http_json` or `prometheus` source (secret).
fn source_url(key: &str, s: &RawSource, cx: &Ctx<'_>) -> Option<Secret> {
    let Some(u) = &s.url else {
        cx.missing(
            &format!("{key}.url"),
            s.name.span(),
            format!("{key}: kind {} needs `url`", kind_name(s.kind)),
        );
        return None;
    };
    cx.http_url(u, &format!("{key}.url"))
}

/// A source's `header = "Name: value"` (the value secret). In
/// "Bearer env:TOKEN" the scheme word stays and the reference after it is resolved.
fn source_header(key: &str, s: &RawSource, cx: &Ctx<'_>) -> Option<(String, Secret)> {
    let h = s.header.as_ref()?;
    let Some((k, v)) = h.get_ref().split_once(':') else {
        cx.report(h.span(), format!("{key}.header: expected \"Name: value\""));
        return None;
    };
    let resolve = |r: &str| {
        Secret::resolve(r)
            .map_err(|m| cx.report(h.span(), format!("{key}.header: {m}")))
            .ok()
    };
    let v = v.trim();
    let v = match v.rsplit_once(' ') {
        Some((scheme, r)) if r.starts_with("env:") || r.starts_with("file:") => {
            Secret::new(format!("{scheme} {}", resolve(r)?.expose()))
        }
        _ => resolve(v)?,
    };
    Some((k.trim().to_string(), v))
}

/// `[[probes]]`.
fn probes(raw: &RawConfig, cx: &Ctx<'_>) -> Vec<ProbeConf> {
    let host = hostname();
    let mut probes: Vec<ProbeConf> = Vec::new();
    for (i, p) in &raw.probes {
        let key = format!("probes[{i}]");
        let domain = crate::target::parse_domain(p.domain.get_ref())
            .map_err(|e| cx.report(p.domain.span(), format!("{key}.domain: {e}")))
            .ok();
        let server = smtp_server(p.server.get_ref())
            .map_err(|m| cx.report(p.server.span(), format!("{key}.server: {m}")))
            .ok();
        let timeout = cx.duration(
            &p.timeout,
            &format!("{key}.timeout"),
            Duration::from_secs(10),
            Duration::from_millis(100),
            Duration::from_secs(300),
        );
        let interval = cx.schedule(
            &p.interval,
            &format!("{key}.interval"),
            Duration::from_secs(3600),
            Duration::from_secs(1),
        );
        let (Some(domain), Some(server)) = (domain, server) else {
            continue;
        };
        let opts = ProbeOpts {
            server,
            mail_from: p
                .mail_from
                .clone()
                .unwrap_or_else(|| format!("postmaster@{domain}")),
            domain,
            helo: p.helo.clone().unwrap_or_else(|| host.clone()),
            control: p.control.clone().unwrap_or_else(|| "postmaster".into()),
            timeout,
            starttls: p.starttls.unwrap_or_default(),
        };
        let name = match &p.name {
            Some(n) if valid_name(n.get_ref()) => n.get_ref().clone(),
            Some(n) => {
                cx.report(
                    n.span(),
                    format!(
                        "{key}.name: {:?} must be letters, digits, '-' or '_'",
                        n.get_ref()
                    ),
                );
                continue;
            }
            None => format!("{}@{}", opts.domain, opts.server),
        };
        if probes.iter().any(|q| q.name == name) {
            cx.report(
                p.domain.span(),
                format!("{key}: probe {name:?} is configured twice (give it a different `name`)"),
            );
            continue;
        }
        probes.push(ProbeConf {
            name,
            opts,
            interval,
        });
    }
    probes
}

/// `[[spikes]]`: each on a metric of a source in `sources`.
fn spikes(raw: &RawConfig, sources: &HashSet<String>, cx: &Ctx<'_>) -> Vec<SpikeRule> {
    let mut spikes = Vec::new();
    for (i, s) in &raw.spikes {
        let key = format!("spikes[{i}]");
        let metric = s.metric.get_ref().trim().to_string();
        let known = metric
            .split_once('.')
            .is_some_and(|(src, m)| sources.contains(src) && !m.is_empty());
        if !known {
            cx.report(s.metric.span(), format!("{key}.metric: {metric:?} must be <source name>.<metric>, with a source from [[sources]]"));
        }
        let big = 1e15;
        let above = cx.float(&s.above, &format!("{key}.above"), 0.0, big);
        let rate = cx.float(&s.rate, &format!("{key}.rate"), 0.0, big);
        let baseline_factor = cx.float(
            &s.baseline_factor,
            &format!("{key}.baseline_factor"),
            1.0,
            1e6,
        );
        if s.above.is_none() && s.rate.is_none() && s.baseline_factor.is_none() {
            cx.report(
                s.metric.span(),
                format!("{key}: give at least one of above, rate, baseline_factor"),
            );
        }
        spikes.push(SpikeRule {
            metric,
            kind: s.kind,
            above,
            rate,
            baseline_factor,
            floor: cx
                .float(&s.floor, &format!("{key}.floor"), 0.0, big)
                .unwrap_or(10.0),
            clear_after: cx.int(&s.clear_after, &format!("{key}.clear_after"), 2, 1, 1000) as u32,
            clear_ratio: cx
                .float(&s.clear_ratio, &format!("{key}.clear_ratio"), 0.0, 1.0)
                .unwrap_or(0.8),
        });
    }
    spikes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(
            smtp_server("mx.example.com"),
            Ok("mx.example.com:25".into())
        );
        assert_eq!(
            smtp_server("mx.example.com:2525"),
            Ok("mx.example.com:2525".into())
        );
        assert_eq!(smtp_server("192.0.2.1"), Ok("192.0.2.1:25".into()));
        assert_eq!(smtp_server("2001:db8::1"), Ok("[2001:db8::1]:25".into()));
        assert_eq!(smtp_server("[2001:db8::1]"), Ok("[2001:db8::1]:25".into()));
        assert_eq!(
            smtp_server("[2001:db8::1]:587"),
            Ok("[2001:db8::1]:587".into())
        );
        for bad in ["mx:notaport", "mx:99999", "", "[::1", "a b", ":25"] {
            assert!(smtp_server(bad).is_err(), "{bad:?}");
        }
    }
}
