//! `rblwatch.toml`: parsed by serde into `raw` (unknown keys rejected), then
//! validated into [`Config`], whose values are all known to be good.
//!
//! [`Config::load`] reads the file; [`Config::from_toml`] is pure and is what
//! the tests feed strings to. Every error names the file, the line and the key.

mod raw;
mod schedule;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use schedule::{parse_duration, Schedule};

use crate::catalog::{Catalog, ListDef};
use crate::engine::ActiveList;
use crate::secret::Secret;
use crate::target::{RangePolicy, TargetSpec};

/// A configuration error: file, line (when known) and message naming the key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}{}: {msg}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line, when the error can be placed.
    pub line: Option<usize>,
    /// What is wrong, with the key named.
    pub msg: String,
}

/// One monitored target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConf {
    /// What to check.
    pub spec: TargetSpec,
    /// A name for people ("mx1 outbound").
    pub label: Option<String>,
}

/// Where queries go.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolverConf {
    /// Name servers; empty means "the system's" (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// A second, independent resolver that confirms new listings at once. Defaults to none.
    pub confirm_with: Vec<SocketAddr>,
    /// Per-attempt timeout. Defaults to 2 s.
    pub timeout: Duration,
    /// Extra attempts. Defaults to 1.
    pub retries: u32,
    /// Queries in flight over all lists. Defaults to 64.
    pub concurrency: usize,
}

/// Which lists to use.
#[derive(Debug, Clone, PartialEq)]
pub struct ListsConf {
    /// Ids to use; `None` means every list enabled by default in the catalog.
    pub use_: Option<Vec<String>>,
    /// Ids never to use.
    pub exclude: Vec<String>,
    /// Extra catalog directories (override shipped lists by id).
    pub dirs: Vec<PathBuf>,
    /// A cap on queries per second to any one list. Defaults to none (the catalog's own caps still apply).
    pub max_qps: Option<f64>,
}

/// Daemon settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConf {
    /// SQLite database file. Defaults to `rblwatch.db` beside the config.
    pub database: PathBuf,
    /// When DNSBL sweeps run. Defaults to every 30 min.
    pub sweep: Schedule,
    /// When list health is re-checked. Defaults to every 30 min (and always before a sweep uses a list).
    pub health: Schedule,
    /// Spread a sweep's queries over the interval instead of bursting. Defaults to true for sweeps of over 4,096 pairs.
    pub spread: bool,
    /// Consecutive listed answers that confirm a listing. Defaults to 2.
    pub confirm_listed: u32,
    /// Consecutive clear answers that confirm a delisting. Defaults to 2.
    pub confirm_clear: u32,
    /// Days of events and listing periods kept. Defaults to 400.
    pub retention_days: u32,
    /// Days of raw samples kept (hourly roll-ups are kept for `retention_days`). Defaults to 30.
    pub sample_retention_days: u32,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Resolver settings.
    pub resolver: ResolverConf,
    /// List selection.
    pub lists: ListsConf,
    /// Secrets by name (DQS keys…), never printed.
    pub keys: BTreeMap<String, Secret>,
    /// Targets.
    pub targets: Vec<TargetConf>,
    /// Daemon settings.
    pub daemon: DaemonConf,
    /// Mail telemetry sources.
    pub sources: Vec<crate::mail::SourceConf>,
    /// Backscatter probes.
    pub probes: Vec<ProbeConf>,
    /// Spike rules.
    pub spikes: Vec<crate::spike::SpikeRule>,
    /// Hooks, alert channels and alerting settings.
    pub actions: crate::actions::Actions,
    /// The status page, API and metrics.
    pub web: WebConf,
    /// Warnings found while validating (retired lists named, …).
    pub warnings: Vec<String>,
}

/// Who may reach the web interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebAccess {
    /// Anyone who can connect (loopback binds, or `insecure = true`).
    Open,
    /// Requests need the token (bearer, or basic auth with it as password).
    Token(Secret),
}

/// `[web]`: status page, JSON API, Prometheus metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct WebConf {
    /// Serve it. Defaults to true.
    pub enabled: bool,
    /// Address. Defaults to 127.0.0.1:8025.
    pub listen: SocketAddr,
    /// Access control.
    pub access: WebAccess,
    /// Page auto-refresh; None = off. Defaults to 60 s.
    pub refresh: Option<Duration>,
    /// Serve templates and static files from this directory instead of the embedded ones.
    pub templates_dir: Option<PathBuf>,
    /// Rows per page. Defaults to 50.
    pub page_size: u32,
}

impl Default for WebConf {
    fn default() -> Self {
        WebConf {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8025)),
            access: WebAccess::Open,
            refresh: Some(Duration::from_secs(60)),
            templates_dir: None,
            page_size: 50,
        }
    }
}

/// A configured backscatter probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConf {
    /// What to probe.
    pub opts: crate::smtp_probe::ProbeOpts,
    /// How often. Defaults to every hour.
    pub interval: Schedule,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |s| s.bytes().filter(|&b| b == b'\n').count() + 1)
}

/// Parses `ip`, `ip:port` or `[ipv6]:port` (port 53 by default).
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "{s:?} is not an address (ip, ip:port or [ipv6]:port)"
    ))
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: None,
            msg: format!("cannot read: {e}"),
        })?;
        Self::from_toml(path, &text)
    }

    /// Validates TOML text as if read from `path` (pure, apart from `env:`/`file:` secrets).
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            file: file.clone(),
            line: e.span().map(|s| line_of(text, s.start)),
            msg: e.message().trim().to_string() + &describe_path(text, e.span()),
        })?;
        let err = |span: std::ops::Range<usize>, msg: String| ConfigError {
            file: file.clone(),
            line: Some(line_of(text, span.start)),
            msg,
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let rel = |p: &str| {
            if Path::new(p).is_absolute() {
                PathBuf::from(p)
            } else {
                base.join(p)
            }
        };

        // [resolver]
        let servers = |v: &Option<Vec<toml::Spanned<String>>>,
                       key: &str|
         -> Result<Vec<SocketAddr>, ConfigError> {
            let mut out = Vec::new();
            for s in v.iter().flatten() {
                out.push(
                    parse_server(s.get_ref())
                        .map_err(|m| err(s.span(), format!("resolver.{key}: {m}")))?,
                );
            }
            Ok(out)
        };
        let timeout = match &raw.resolver.timeout {
            Some(t) => parse_duration(t.get_ref())
                .map_err(|m| err(t.span(), format!("resolver.timeout: {m}")))?,
            None => Duration::from_secs(2),
        };
        let resolver = ResolverConf {
            nameservers: servers(&raw.resolver.nameservers, "nameservers")?,
            confirm_with: servers(&raw.resolver.confirm_with, "confirm_with")?,
            timeout,
            retries: raw.resolver.retries.unwrap_or(1),
            concurrency: raw.resolver.concurrency.unwrap_or(64).clamp(1, 4096),
        };

        // [keys]
        let mut keys = BTreeMap::new();
        for (k, v) in &raw.keys {
            keys.insert(
                k.clone(),
                Secret::resolve(v.get_ref())
                    .map_err(|m| err(v.span(), format!("keys.{k}: {m}")))?,
            );
        }

        // [lists]
        if let Some(q) = raw.lists.max_qps {
            if !(q > 0.0 && q.is_finite()) {
                return Err(ConfigError {
                    file,
                    line: None,
                    msg: format!("lists.max_qps must be a positive number, not {q}"),
                });
            }
        }
        let lists = ListsConf {
            use_: raw
                .lists
                .use_
                .as_ref()
                .map(|v| v.iter().map(|s| s.get_ref().trim().to_string()).collect()),
            exclude: raw
                .lists
                .exclude
                .iter()
                .map(|s| s.get_ref().trim().to_string())
                .collect(),
            dirs: raw.lists.dirs.iter().map(|d| rel(d)).collect(),
            max_qps: raw.lists.max_qps,
        };

        // [[targets]]
        let mut targets = Vec::new();
        for (i, t) in raw.targets.iter().enumerate() {
            let policy = if t.allow_large {
                RangePolicy::AllowLarge
            } else {
                RangePolicy::Normal
            };
            let spec = TargetSpec::parse(t.target.get_ref(), policy)
                .map_err(|e| err(t.target.span(), format!("targets[{i}].target: {e}")))?;
            targets.push(TargetConf {
                spec,
                label: t.label.clone(),
            });
        }

        // [daemon]
        let d = &raw.daemon;
        let sched =
            |v: &Option<toml::Spanned<String>>, key: &str| -> Result<Schedule, ConfigError> {
                match v {
                    Some(s) => Schedule::parse(s.get_ref())
                        .map_err(|m| err(s.span(), format!("daemon.{key}: {m}"))),
                    None => Ok(Schedule::Every(Duration::from_secs(1800))),
                }
            };
        let daemon = DaemonConf {
            database: rel(d.database.as_deref().unwrap_or("rblwatch.db")),
            sweep: sched(&d.sweep, "sweep")?,
            health: sched(&d.health, "health")?,
            spread: d.spread.unwrap_or(true),
            confirm_listed: d.confirm_listed.unwrap_or(2).max(1),
            confirm_clear: d.confirm_clear.unwrap_or(2).max(1),
            retention_days: d.retention_days.unwrap_or(400).max(1),
            sample_retention_days: d.sample_retention_days.unwrap_or(30).max(1),
        };

        let (sources, probes, spikes) = mail_config(&raw, &err)?;
        let actions = actions_config(&raw, &err, &base)?;
        let web = web_config(&raw.web, &err, &base)?;
        let mut cfg = Config {
            path: path.to_path_buf(),
            resolver,
            lists,
            keys,
            targets,
            daemon,
            sources,
            probes,
            spikes,
            actions,
            web,
            warnings: vec![],
        };
        // Check list ids against the catalog now, so `config check` catches typos.
        let catalog = cfg.catalog().map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            msg: e,
        })?;
        let all_named = cfg
            .lists
            .use_
            .iter()
            .flatten()
            .chain(cfg.lists.exclude.iter());
        let spans: Vec<_> = raw
            .lists
            .use_
            .iter()
            .flatten()
            .chain(raw.lists.exclude.iter())
            .map(|s| s.span())
            .collect();
        for (id, span) in all_named.zip(spans) {
            match catalog.get(id) {
                None => {
                    return Err(err(
                        span,
                        format!("lists: unknown list id {id:?} (see `rblwatch lists`)"),
                    ))
                }
                Some(l) => {
                    if let Some(r) = &l.retired {
                        cfg.warnings.push(format!(
                            "list {id:?} is retired since {} and is not queried: {}",
                            r.since, r.reason
                        ));
                    }
                }
            }
        }
        Ok(cfg)
    }

    /// The shipped catalog plus the configured directories.
    pub fn catalog(&self) -> Result<Catalog, String> {
        let mut c = Catalog::shipped().map_err(|e| e.to_string())?;
        for d in &self.lists.dirs {
            c.extend_from_dir(d).map_err(|e| e.to_string())?;
        }
        Ok(c)
    }

    /// The lists to query, prepared (keys applied, retired and key-less lists left out).
    ///
    /// Returns the lists and warnings about what was left out.
    pub fn active_lists(
        &self,
        catalog: &Catalog,
        only: Option<&[String]>,
    ) -> Result<(Vec<ActiveList>, Vec<String>), String> {
        let mut warnings = Vec::new();
        let chosen: Vec<&ListDef> =
            match only.map(|o| o.to_vec()).or_else(|| self.lists.use_.clone()) {
                Some(ids) => {
                    let mut v = Vec::new();
                    for id in &ids {
                        v.push(catalog.get(id).ok_or_else(|| {
                            format!("unknown list id {id:?} (see `rblwatch lists`)")
                        })?);
                    }
                    v
                }
                None => catalog.iter().filter(|l| l.enabled_by_default).collect(),
            };
        let mut out = Vec::new();
        for def in chosen {
            if self.lists.exclude.contains(&def.id) {
                continue;
            }
            if let Some(r) = &def.retired {
                warnings.push(format!(
                    "list {:?} is retired since {} and is not queried: {}",
                    def.id, r.since, r.reason
                ));
                continue;
            }
            let key = def.policy.key.as_ref().and_then(|k| self.keys.get(k));
            if def.policy.requires_key && key.is_none() {
                warnings.push(format!(
                    "list {:?} needs the key {:?} in [keys]; it is not queried",
                    def.id,
                    def.policy.key.as_deref().unwrap_or("?")
                ));
                continue;
            }
            out.push(ActiveList::new(
                Arc::new(def.clone()),
                key.map(Secret::expose),
                self.lists.max_qps,
            ));
        }
        Ok((out, warnings))
    }

    /// The name servers to use: configured ones, or the system's.
    pub fn nameservers(&self) -> Result<Vec<SocketAddr>, String> {
        if !self.resolver.nameservers.is_empty() {
            return Ok(self.resolver.nameservers.clone());
        }
        system_nameservers()
    }

    /// A config with defaults only (for `rblwatch check` without `--config`).
    /// The empty file is valid by construction (tested); an error here means the
    /// shipped catalog is broken, and is reported like any config error.
    pub fn default_for_cli() -> Result<Self, ConfigError> {
        Self::from_toml(Path::new("<defaults>"), "")
    }
}

fn web_config(w: &raw::RawWeb, err: &ErrFn<'_>, base: &Path) -> Result<WebConf, ConfigError> {
    let d = WebConf::default();
    let listen = match &w.listen {
        Some(l) => l.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
            err(
                l.span(),
                format!("web.listen: {:?} is not ip:port", l.get_ref()),
            )
        })?,
        None => d.listen,
    };
    let token = match &w.token {
        Some(t) => {
            let s = Secret::resolve(t.get_ref())
                .map_err(|m| err(t.span(), format!("web.token: {m}")))?;
            if s.expose().len() < 16 {
                return Err(err(
                    t.span(),
                    "web.token: use at least 16 characters".into(),
                ));
            }
            Some(s)
        }
        None => None,
    };
    let access = match (token, w.insecure.unwrap_or(false)) {
        (Some(t), _) => WebAccess::Token(t),
        (None, true) => WebAccess::Open,
        (None, false) if listen.ip().is_loopback() => WebAccess::Open,
        (None, false) => {
            let span = w.listen.as_ref().map(|l| l.span()).unwrap_or(0..0);
            return Err(err(span, format!("web.listen: {listen} is not a loopback address: set web.token (bearer or basic auth) or, knowingly, web.insecure = true")));
        }
    };
    let refresh = match &w.refresh {
        Some(r) if matches!(r.get_ref().trim(), "0" | "0s" | "off") => None,
        Some(r) => Some(
            parse_duration(r.get_ref()).map_err(|m| err(r.span(), format!("web.refresh: {m}")))?,
        ),
        None => d.refresh,
    };
    Ok(WebConf {
        enabled: w.enabled.unwrap_or(true),
        listen,
        access,
        refresh,
        templates_dir: w.templates_dir.as_ref().map(|t| {
            if Path::new(t).is_relative() {
                base.join(t)
            } else {
                PathBuf::from(t)
            }
        }),
        page_size: w.page_size.unwrap_or(50).clamp(10, 1000),
    })
}

/// Validates `[[hooks]]`, `[[alerts]]` and `[alerting]`.
fn actions_config(
    raw: &raw::RawConfig,
    err: &ErrFn<'_>,
    base: &Path,
) -> Result<crate::actions::Actions, ConfigError> {
    use crate::actions::alerts::{ChannelConf, ChannelKind, EmailConf, SmtpTls};
    use crate::actions::hooks::{HookConf, HookMode};
    use crate::actions::{Actions, AlertSettings};
    use crate::evaluator::{EventKind, Severity};
    let dur = |v: &Option<toml::Spanned<String>>, key: &str, default: Duration| {
        opt_duration(v, key, default, err)
    };
    let kinds = |v: &[toml::Spanned<String>], key: &str| -> Result<Vec<EventKind>, ConfigError> {
        v.iter()
            .map(|s| {
                EventKind::parse(s.get_ref().trim()).ok_or_else(|| {
                    err(s.span(), format!("{key}: unknown event {:?} (listed, delisted, list_unhealthy, list_recovered, queue_spike, ndr_spike, rndr_vulnerable, their *_cleared, baseline, hook_failed)", s.get_ref()))
                })
            })
            .collect()
    };
    // A relative program path with a '/' (hooks/postfix-…) is relative to the config file.
    let prog = |argv: &[String]| -> Vec<String> {
        let mut v = argv.to_vec();
        if let Some(p) = v.first_mut() {
            if p.contains('/') && Path::new(p.as_str()).is_relative() {
                *p = base.join(p.as_str()).display().to_string();
            }
        }
        v
    };
    let mut hooks = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, h) in raw.hooks.iter().enumerate() {
        let key = format!("hooks[{i}]");
        let name = h.name.get_ref().trim().to_string();
        if name.is_empty() || !names.insert(name.clone()) {
            return Err(err(
                h.name.span(),
                format!("{key}.name: empty or used twice"),
            ));
        }
        if h.command.is_empty() || h.command[0].is_empty() {
            return Err(err(
                h.name.span(),
                format!("{key}.command: must name a program (argv list, no shell)"),
            ));
        }
        let on = kinds(&h.on, &format!("{key}.on"))?;
        if on.is_empty() {
            return Err(err(
                h.name.span(),
                format!("{key}.on: name at least one event"),
            ));
        }
        hooks.push(HookConf {
            name,
            on,
            targets: h.targets.clone(),
            lists: h.lists.clone(),
            min_severity: h.min_severity.unwrap_or(Severity::Info),
            command: prog(&h.command),
            revert: h.revert.as_ref().filter(|r| !r.is_empty()).map(|r| prog(r)),
            timeout: dur(
                &h.timeout,
                &format!("{key}.timeout"),
                Duration::from_secs(60),
            )?,
            cooldown: match &h.cooldown {
                Some(s) if s.get_ref().trim() == "0" || s.get_ref().trim() == "0s" => {
                    Duration::ZERO
                }
                _ => dur(
                    &h.cooldown,
                    &format!("{key}.cooldown"),
                    Duration::from_secs(900),
                )?,
            },
            max_per_hour: h.max_per_hour.unwrap_or(4),
            mode: if h.dry_run.unwrap_or(false) {
                HookMode::DryRun
            } else {
                HookMode::Live
            },
            env: h.env.clone(),
            max_event_age: dur(
                &h.max_event_age,
                &format!("{key}.max_event_age"),
                Duration::from_secs(3600),
            )?,
        });
    }
    let mut channels = Vec::new();
    let mut cnames = std::collections::HashSet::new();
    for (i, a) in raw.alerts.iter().enumerate() {
        let key = format!("alerts[{i}]");
        let name = a.name.get_ref().trim().to_string();
        if name.is_empty() || !cnames.insert(name.clone()) {
            return Err(err(
                a.name.span(),
                format!("{key}.name: empty or used twice"),
            ));
        }
        let url = match &a.url {
            Some(u) => {
                let s = Secret::resolve(u.get_ref())
                    .map_err(|m| err(u.span(), format!("{key}.url: {m}")))?;
                if !(s.expose().starts_with("http://") || s.expose().starts_with("https://")) {
                    return Err(err(
                        u.span(),
                        format!("{key}.url: must start with http:// or https://"),
                    ));
                }
                Some(s)
            }
            None => None,
        };
        let template = match &a.template {
            Some(t) => {
                let p = if Path::new(t).is_relative() {
                    base.join(t)
                } else {
                    PathBuf::from(t)
                };
                Some(std::fs::read_to_string(&p).map_err(|e| {
                    err(
                        a.name.span(),
                        format!("{key}.template: cannot read {}: {e}", p.display()),
                    )
                })?)
            }
            None => None,
        };
        let email = if a.kind == ChannelKind::Email {
            let host = a
                .smtp_host
                .clone()
                .ok_or_else(|| err(a.name.span(), format!("{key}: kind email needs smtp_host")))?;
            let from = a
                .from
                .clone()
                .ok_or_else(|| err(a.name.span(), format!("{key}: kind email needs from")))?;
            if a.to.is_empty() {
                return Err(err(
                    a.name.span(),
                    format!("{key}: kind email needs to = [...]"),
                ));
            }
            let tls = a.tls.unwrap_or_default();
            let password = match &a.password {
                Some(p) => Some(
                    Secret::resolve(p.get_ref())
                        .map_err(|m| err(p.span(), format!("{key}.password: {m}")))?,
                ),
                None => None,
            };
            Some(EmailConf {
                port: a.smtp_port.unwrap_or(match tls {
                    SmtpTls::Starttls => 587,
                    SmtpTls::Tls => 465,
                    SmtpTls::None => 25,
                }),
                host,
                tls,
                username: a.username.clone(),
                password,
                from,
                to: a.to.clone(),
            })
        } else {
            if url.is_none() {
                return Err(err(
                    a.name.span(),
                    format!("{key}: kind {:?} needs url", a.kind),
                ));
            }
            None
        };
        channels.push(ChannelConf {
            name,
            kind: a.kind,
            url,
            email,
            template,
            on: kinds(&a.on, &format!("{key}.on"))?,
            min_severity: a.min_severity.unwrap_or(Severity::Info),
        });
    }
    let al = &raw.alerting;
    let settings = AlertSettings {
        group_window: dur(
            &al.group_window,
            "alerting.group_window",
            Duration::from_secs(30),
        )
        .or_else(|e| match &al.group_window {
            Some(s) if s.get_ref().trim() == "0s" || s.get_ref().trim() == "0" => {
                Ok(Duration::ZERO)
            }
            _ => Err(e),
        })?,
        status_url: al.status_url.clone().unwrap_or_default(),
        give_up_after: dur(
            &al.give_up_after,
            "alerting.give_up_after",
            Duration::from_secs(86_400),
        )?,
        timeout: dur(&al.timeout, "alerting.timeout", Duration::from_secs(10))?,
    };
    Ok(Actions {
        hooks,
        channels,
        settings,
        host: hostname(),
    })
}

type ErrFn<'a> = dyn Fn(std::ops::Range<usize>, String) -> ConfigError + 'a;

/// An optional duration value, its default when absent; errors name the key.
fn opt_duration(
    v: &Option<toml::Spanned<String>>,
    key: &str,
    default: Duration,
    err: &ErrFn<'_>,
) -> Result<Duration, ConfigError> {
    match v {
        Some(s) => parse_duration(s.get_ref()).map_err(|m| err(s.span(), format!("{key}: {m}"))),
        None => Ok(default),
    }
}

/// Validates `[[sources]]`, `[[probes]]` and `[[spikes]]`.
#[allow(clippy::type_complexity)]
fn mail_config(
    raw: &raw::RawConfig,
    err: &ErrFn<'_>,
) -> Result<
    (
        Vec<crate::mail::SourceConf>,
        Vec<ProbeConf>,
        Vec<crate::spike::SpikeRule>,
    ),
    ConfigError,
> {
    use crate::mail::{prometheus::Selector, SourceConf, SourceKind};
    use raw::RawSourceKind as K;
    let dur = |v: &Option<toml::Spanned<String>>, key: &str, default: Duration| {
        opt_duration(v, key, default, err)
    };
    let mut sources = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, s) in raw.sources.iter().enumerate() {
        let key = format!("sources[{i}]");
        let name = s.name.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err(
                s.name.span(),
                format!("{key}.name: {name:?} must be letters, digits, '-' or '_'"),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(err(
                s.name.span(),
                format!("{key}.name: {name:?} is used twice"),
            ));
        }
        let need_url = |k: &str| -> Result<Secret, ConfigError> {
            let u = s
                .url
                .as_ref()
                .ok_or_else(|| err(s.name.span(), format!("{key}: kind {k} needs `url`")))?;
            let secret = Secret::resolve(u.get_ref())
                .map_err(|m| err(u.span(), format!("{key}.url: {m}")))?;
            if !(secret.expose().starts_with("http://") || secret.expose().starts_with("https://"))
            {
                return Err(err(
                    u.span(),
                    format!("{key}.url: must start with http:// or https://"),
                ));
            }
            Ok(secret)
        };
        let header = match &s.header {
            Some(h) => {
                let (k, v) = h.get_ref().split_once(':').ok_or_else(|| {
                    err(h.span(), format!("{key}.header: expected \"Name: value\""))
                })?;
                // "Bearer env:TOKEN": the scheme word stays, the reference after it is resolved
                let v = v.trim();
                let v = match v.rsplit_once(' ') {
                    Some((scheme, r)) if r.starts_with("env:") || r.starts_with("file:") => {
                        let t = Secret::resolve(r)
                            .map_err(|m| err(h.span(), format!("{key}.header: {m}")))?;
                        Secret::new(format!("{scheme} {}", t.expose()))
                    }
                    _ => Secret::resolve(v)
                        .map_err(|m| err(h.span(), format!("{key}.header: {m}")))?,
                };
                Some((k.trim().to_string(), v))
            }
            None => None,
        };
        let argv = |default: &[&str]| -> Result<Vec<String>, ConfigError> {
            let v = s
                .command
                .clone()
                .unwrap_or_else(|| default.iter().map(|x| x.to_string()).collect());
            if v.is_empty() || v[0].is_empty() {
                return Err(err(
                    s.name.span(),
                    format!("{key}.command: must name a program (argv list, no shell)"),
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
                    return Err(err(
                        s.name.span(),
                        format!("{key}: kind command needs `command`"),
                    ));
                }
                SourceKind::Command {
                    command: argv(&[])?,
                }
            }
            K::PostfixLog => SourceKind::PostfixLog {
                path: PathBuf::from(s.path.clone().ok_or_else(|| {
                    err(
                        s.name.span(),
                        format!("{key}: kind postfix_log needs `path`"),
                    )
                })?),
            },
            K::HttpJson => {
                if s.values.is_empty() {
                    return Err(err(
                        s.name.span(),
                        format!("{key}: kind http_json needs `values` (name = JSON pointer)"),
                    ));
                }
                for (n, p) in &s.values {
                    if !crate::mail::command::valid_name(n) || !(p.is_empty() || p.starts_with('/'))
                    {
                        return Err(err(
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
                    return Err(err(
                        s.name.span(),
                        format!("{key}: kind prometheus needs `metrics` (name = selector)"),
                    ));
                }
                let mut metrics = BTreeMap::new();
                for (n, sel) in &s.metrics {
                    let parsed = Selector::parse(sel.get_ref())
                        .map_err(|m| err(sel.span(), format!("{key}.metrics.{n}: {m}")))?;
                    metrics.insert(n.clone(), parsed);
                }
                SourceKind::Prometheus {
                    url: need_url("prometheus")?,
                    header,
                    metrics,
                }
            }
        };
        let interval = match &s.interval {
            Some(v) => Schedule::parse(v.get_ref())
                .map_err(|m| err(v.span(), format!("{key}.interval: {m}")))?,
            None => Schedule::Every(Duration::from_secs(60)),
        };
        let timeout = dur(
            &s.timeout,
            &format!("{key}.timeout"),
            Duration::from_secs(10),
        )?;
        sources.push(SourceConf {
            name,
            kind,
            interval,
            timeout,
        });
    }
    let host = hostname();
    let mut probes = Vec::new();
    for (i, p) in raw.probes.iter().enumerate() {
        let key = format!("probes[{i}]");
        let domain = crate::target::parse_domain(p.domain.get_ref())
            .map_err(|e| err(p.domain.span(), format!("{key}.domain: {e}")))?;
        let server = crate::smtp_probe::server_addr(p.server.get_ref())
            .map_err(|m| err(p.server.span(), format!("{key}.server: {m}")))?;
        let interval = match &p.interval {
            Some(v) => Schedule::parse(v.get_ref())
                .map_err(|m| err(v.span(), format!("{key}.interval: {m}")))?,
            None => Schedule::Every(Duration::from_secs(3600)),
        };
        let opts = crate::smtp_probe::ProbeOpts {
            server,
            mail_from: p
                .mail_from
                .clone()
                .unwrap_or_else(|| format!("postmaster@{domain}")),
            domain,
            helo: p.helo.clone().unwrap_or_else(|| host.clone()),
            control: p.control.clone().unwrap_or_else(|| "postmaster".into()),
            timeout: dur(
                &p.timeout,
                &format!("{key}.timeout"),
                Duration::from_secs(10),
            )?,
            starttls: p.starttls.unwrap_or_default(),
        };
        probes.push(ProbeConf { opts, interval });
    }
    let mut spikes = Vec::new();
    for (i, s) in raw.spikes.iter().enumerate() {
        let key = format!("spikes[{i}]");
        let metric = s.metric.get_ref().trim().to_string();
        let known = metric
            .split_once('.')
            .is_some_and(|(src, m)| names.contains(src) && !m.is_empty());
        if !known {
            return Err(err(s.metric.span(), format!("{key}.metric: {metric:?} must be <source name>.<metric>, with a source from [[sources]]")));
        }
        if s.above.is_none() && s.rate.is_none() && s.baseline_factor.is_none() {
            return Err(err(
                s.metric.span(),
                format!("{key}: give at least one of above, rate, baseline_factor"),
            ));
        }
        spikes.push(crate::spike::SpikeRule {
            metric,
            kind: s.kind,
            above: s.above,
            rate: s.rate,
            baseline_factor: s.baseline_factor,
            floor: s.floor.unwrap_or(10.0),
            clear_after: s.clear_after.unwrap_or(2).max(1),
            clear_ratio: s.clear_ratio.unwrap_or(0.8).clamp(0.0, 1.0),
        });
    }
    Ok((sources, probes, spikes))
}

/// The system's host name (for EHLO), or `localhost`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The system's name servers (`/etc/resolv.conf`), via hickory-resolver.
pub fn system_nameservers() -> Result<Vec<SocketAddr>, String> {
    let (conf, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?;
    let mut out: Vec<SocketAddr> = Vec::new();
    for ns in conf.name_servers() {
        let port = ns.connections.first().map_or(53, |c| c.port);
        let sa = SocketAddr::new(ns.ip, port);
        if !out.contains(&sa) {
            out.push(sa);
        }
    }
    if out.is_empty() {
        return Err("the system resolver configuration names no name server".into());
    }
    Ok(out)
}

/// Names the table a TOML error is in, when the parser's message does not.
fn describe_path(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let key = text.get(span.clone()).unwrap_or("").trim();
    let table = text
        .get(..span.start)
        .unwrap_or("")
        .lines()
        .rev()
        .find_map(|l| {
            let l = l.trim();
            l.starts_with('[')
                .then(|| l.trim_matches(|c| c == '[' || c == ']').to_string())
        });
    match (table, key.is_empty()) {
        (Some(t), false) => format!(" (key `{key}` in [{t}])"),
        (None, false) => format!(" (key `{key}`)"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
