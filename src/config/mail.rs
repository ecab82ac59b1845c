//! `[[sources]]`, `[[probes]]` and `[[spikes]]`: the mail server's telemetry
//! and the backscatter probe. Plain settings; the `mail`, `smtp_probe` and
//! `spike` stages act on them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::raw::{RawConfig, RawSourceKind as K};
use super::{hostname, valid_name, ConfigError, Ctx, Schedule};
use crate::event::EventKind;
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

/// Whether the probe upgrades to TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartTls {
    /// Use STARTTLS when the server offers it (the default). The certificate is
    /// not verified: the probe only needs the RCPT answer, and many MX hosts
    /// use self-signed certificates. A failed handshake makes the result inconclusive.
    #[default]
    Opportunistic,
    /// Stay in plain text.
    Off,
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

/// Which events a spike rule raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpikeKind {
    /// `queue_spike` / `queue_spike_cleared`.
    QueueSpike,
    /// `ndr_spike` / `ndr_spike_cleared`.
    NdrSpike,
}

impl SpikeKind {
    /// The raise and clear events.
    pub fn events(self) -> (EventKind, EventKind) {
        match self {
            SpikeKind::QueueSpike => (EventKind::QueueSpike, EventKind::QueueSpikeCleared),
            SpikeKind::NdrSpike => (EventKind::NdrSpike, EventKind::NdrSpikeCleared),
        }
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
#[allow(clippy::type_complexity)]
pub(super) fn validate(
    raw: &RawConfig,
    cx: &Ctx<'_>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<SourceConf>, Vec<ProbeConf>, Vec<SpikeRule>), ConfigError> {
    let second = Duration::from_secs(1);
    let mut sources = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, s) in raw.sources.iter().enumerate() {
        let key = format!("sources[{i}]");
        let name = s.name.get_ref().trim().to_string();
        if !valid_name(&name) {
            return Err(cx.err(
                s.name.span(),
                format!("{key}.name: {name:?} must be letters, digits, '-' or '_'"),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(cx.err(s.name.span(), format!("{key}.name: {name:?} is used twice")));
        }
        let need_url = |k: &str| -> Result<Secret, ConfigError> {
            let u = s
                .url
                .as_ref()
                .ok_or_else(|| cx.err(s.name.span(), format!("{key}: kind {k} needs `url`")))?;
            let secret = cx.secret(u, &format!("{key}.url"))?;
            if !(secret.expose().starts_with("http://") || secret.expose().starts_with("https://"))
            {
                return Err(cx.err(
                    u.span(),
                    format!("{key}.url: must start with http:// or https://"),
                ));
            }
            Ok(secret)
        };
        let header = match &s.header {
            Some(h) => {
                let (k, v) = h.get_ref().split_once(':').ok_or_else(|| {
                    cx.err(h.span(), format!("{key}.header: expected \"Name: value\""))
                })?;
                // "Bearer env:TOKEN": the scheme word stays, the reference after it is resolved
                let v = v.trim();
                let resolve = |r: &str| {
                    Secret::resolve(r).map_err(|m| cx.err(h.span(), format!("{key}.header: {m}")))
                };
                let v = match v.rsplit_once(' ') {
                    Some((scheme, r)) if r.starts_with("env:") || r.starts_with("file:") => {
                        Secret::new(format!("{scheme} {}", resolve(r)?.expose()))
                    }
                    _ => resolve(v)?,
                };
                Some((k.trim().to_string(), v))
            }
            None => None,
        };
        let mut argv = |default: &[&str]| -> Result<Vec<String>, ConfigError> {
            let (v, span) = match &s.command {
                Some(c) => (c.get_ref().clone(), c.span()),
                None => (
                    default.iter().map(|x| x.to_string()).collect(),
                    s.name.span(),
                ),
            };
            let Some(prog) = v.first().filter(|p| !p.is_empty()) else {
                return Err(cx.err(
                    span,
                    format!("{key}.command: must name a program (argv list, no shell)"),
                ));
            };
            if !super::actions::program_exists(prog) {
                // The MTA may live on another machine (`ssh mx1 …`) or be installed
                // later: a warning, not an error; each failing read is counted.
                warnings.push(format!(
                    "{key}.command: program {prog:?} is not found here; reads of source {name:?} will fail until it is"
                ));
            }
            Ok(v)
        };
        let kind = match s.kind {
            K::Postfix => SourceKind::Postfix {
                command: argv(&["postqueue", "-j"])?,
            },
            K::Exim => SourceKind::Exim {
                command: argv(&["exim", "-bp"])?,
            },
            K::Command => {
                if s.command.is_none() {
                    return Err(cx.err(
                        s.name.span(),
                        format!("{key}: kind command needs `command`"),
                    ));
                }
                SourceKind::Command {
                    command: argv(&[])?,
                }
            }
            K::PostfixLog | K::EximLog => {
                let kname = if s.kind == K::PostfixLog {
                    "postfix_log"
                } else {
                    "exim_log"
                };
                let path = cx.path(
                    s.path
                        .as_ref()
                        .ok_or_else(|| {
                            cx.err(s.name.span(), format!("{key}: kind {kname} needs `path`"))
                        })?
                        .get_ref(),
                );
                if s.kind == K::PostfixLog {
                    SourceKind::PostfixLog { path }
                } else {
                    SourceKind::EximLog { path }
                }
            }
            K::HttpJson => {
                if s.values.is_empty() {
                    return Err(cx.err(
                        s.name.span(),
                        format!("{key}: kind http_json needs `values` (name = JSON pointer)"),
                    ));
                }
                for (n, p) in &s.values {
                    if !valid_name(n) || !(p.is_empty() || p.starts_with('/')) {
                        return Err(cx.err(
                            s.name.span(),
                            format!("{key}.values.{n}: bad name or JSON pointer {p:?}"),
                        ));
                    }
                }
                SourceKind::HttpJson {
                    url: need_url("http_json")?,
                    header,
                    values: s.values.clone(),
                }
            }
            K::Prometheus => {
                if s.metrics.is_empty() {
                    return Err(cx.err(
                        s.name.span(),
                        format!("{key}: kind prometheus needs `metrics` (name = selector)"),
                    ));
                }
                let mut metrics = BTreeMap::new();
                for (n, sel) in &s.metrics {
                    if !valid_name(n) {
                        return Err(cx.err(sel.span(), format!("{key}.metrics.{n}: bad name")));
                    }
                    let parsed = Selector::parse(sel.get_ref())
                        .map_err(|m| cx.err(sel.span(), format!("{key}.metrics.{n}: {m}")))?;
                    metrics.insert(n.clone(), parsed);
                }
                SourceKind::Prometheus {
                    url: need_url("prometheus")?,
                    header,
                    metrics,
                }
            }
        };
        sources.push(SourceConf {
            name,
            kind,
            interval: cx.schedule(
                &s.interval,
                &format!("{key}.interval"),
                Duration::from_secs(60),
                second,
            )?,
            timeout: cx.duration(
                &s.timeout,
                &format!("{key}.timeout"),
                Duration::from_secs(10),
                Duration::from_millis(100),
                Duration::from_secs(600),
            )?,
            env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        });
    }
    let host = hostname();
    let mut probes = Vec::new();
    for (i, p) in raw.probes.iter().enumerate() {
        let key = format!("probes[{i}]");
        let domain = crate::target::parse_domain(p.domain.get_ref())
            .map_err(|e| cx.err(p.domain.span(), format!("{key}.domain: {e}")))?;
        let server = smtp_server(p.server.get_ref())
            .map_err(|m| cx.err(p.server.span(), format!("{key}.server: {m}")))?;
        let opts = ProbeOpts {
            server,
            mail_from: p
                .mail_from
                .clone()
                .unwrap_or_else(|| format!("postmaster@{domain}")),
            domain,
            helo: p.helo.clone().unwrap_or_else(|| host.clone()),
            control: p.control.clone().unwrap_or_else(|| "postmaster".into()),
            timeout: cx.duration(
                &p.timeout,
                &format!("{key}.timeout"),
                Duration::from_secs(10),
                Duration::from_millis(100),
                Duration::from_secs(300),
            )?,
            starttls: p.starttls.unwrap_or_default(),
        };
        let pname = match &p.name {
            Some(n) if valid_name(n.get_ref()) => n.get_ref().clone(),
            Some(n) => {
                return Err(cx.err(
                    n.span(),
                    format!(
                        "{key}.name: {:?} must be letters, digits, '-' or '_'",
                        n.get_ref()
                    ),
                ))
            }
            None => format!("{}@{}", opts.domain, opts.server),
        };
        if probes.iter().any(|q: &ProbeConf| q.name == pname) {
            return Err(cx.err(
                p.domain.span(),
                format!("{key}: probe {pname:?} is configured twice (give it a different `name`)"),
            ));
        }
        probes.push(ProbeConf {
            name: pname,
            opts,
            interval: cx.schedule(
                &p.interval,
                &format!("{key}.interval"),
                Duration::from_secs(3600),
                second,
            )?,
        });
    }
    let mut spikes = Vec::new();
    for (i, s) in raw.spikes.iter().enumerate() {
        let key = format!("spikes[{i}]");
        let metric = s.metric.get_ref().trim().to_string();
        let known = metric
            .split_once('.')
            .is_some_and(|(src, m)| names.contains(src) && !m.is_empty());
        if !known {
            return Err(cx.err(s.metric.span(), format!("{key}.metric: {metric:?} must be <source name>.<metric>, with a source from [[sources]]")));
        }
        let big = 1e15;
        let above = cx.float(&s.above, &format!("{key}.above"), 0.0, big)?;
        let rate = cx.float(&s.rate, &format!("{key}.rate"), 0.0, big)?;
        let baseline_factor = cx.float(
            &s.baseline_factor,
            &format!("{key}.baseline_factor"),
            1.0,
            1e6,
        )?;
        if above.is_none() && rate.is_none() && baseline_factor.is_none() {
            return Err(cx.err(
                s.metric.span(),
                format!("{key}: give at least one of above, rate, baseline_factor"),
            ));
        }
        spikes.push(SpikeRule {
            metric,
            kind: s.kind,
            above,
            rate,
            baseline_factor,
            floor: cx
                .float(&s.floor, &format!("{key}.floor"), 0.0, big)?
                .unwrap_or(10.0),
            clear_after: cx.int(&s.clear_after, &format!("{key}.clear_after"), 2, 1, 1000)? as u32,
            clear_ratio: cx
                .float(&s.clear_ratio, &format!("{key}.clear_ratio"), 0.0, 1.0)?
                .unwrap_or(0.8),
        });
    }
    Ok((sources, probes, spikes))
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
