//! `rblwatch.toml`: parsed by serde into `raw` (unknown keys rejected), then
//! validated into [`Config`], whose values are all known to be good.
//!
//! [`Config::load`] reads the file; [`Config::from_toml`] is pure (apart from
//! `env:`/`file:` secrets and checks that named files exist) and is what the
//! tests feed strings to. Every error names the file, the line and the key,
//! and every number has a range, so a typo is refused at `config check`
//! rather than discovered by a daemon that hangs or panics.
//!
//! Config holds plain settings types and imports no stage: each stage builds
//! its own runtime from these settings (`engine::active_lists(&Config, …)`).
//! One file per area: [`resolver`], [`lists`], [`daemon`], [`mail`]
//! (sources, probes, spikes), [`actions`] (hooks, alerts), [`web`].

pub mod actions;
pub mod daemon;
pub mod feeds;
pub mod impact;
pub mod lists;
pub mod mail;
mod raw;
pub mod resolver;
mod schedule;
pub mod web;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::actions::{
    ActionsConf, AlertSettings, ChannelConf, ChannelKind, EmailConf, HookConf, HookMode, SmtpTls,
    TeamsFormat,
};
pub use self::daemon::DaemonConf;
pub use self::feeds::{DiscoverConf, DiscoverFrom, DmarcMailbox, FeedConf, ImapConf};
pub use self::impact::{AuditConf, AuditMta, ImpactConf};
pub use self::lists::ListsConf;
pub use self::mail::{
    ProbeConf, ProbeOpts, Selector, SourceConf, SourceKind, SpikeKind, SpikeRule, StartTls,
};
pub use self::resolver::{parse_server, system_nameservers, ResolverConf};
pub use self::schedule::Schedule;
pub use self::web::{WebAccess, WebConf};
pub use crate::time::parse_duration;

use crate::catalog::Catalog;
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
    /// Added by `[discover]`, not typed in: the feed that revealed it (`dmarc`).
    pub discovered: Option<String>,
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
    pub sources: Vec<SourceConf>,
    /// Backscatter probes.
    pub probes: Vec<ProbeConf>,
    /// Spike rules.
    pub spikes: Vec<SpikeRule>,
    /// Hooks, alert channels and alerting settings.
    pub actions: ActionsConf,
    /// The status page, API and metrics.
    pub web: WebConf,
    /// Joining listings with receivers' rejections (`[impact]`, `[replies]`).
    pub impact: ImpactConf,
    /// MTA posture audits.
    pub audits: Vec<AuditConf>,
    /// Receivers' feeds (DMARC aggregate reports).
    pub feeds: Vec<FeedConf>,
    /// Which feeds' sending IPs join the sweeps.
    pub discover: DiscoverConf,
    /// Warnings found while validating (retired lists named, …).
    pub warnings: Vec<String>,
}

/// What the validators of each area share: the file, its text (for line
/// numbers), the directory relative paths start from, and range-checked
/// readers for optional values.
pub(crate) struct Ctx<'a> {
    file: String,
    text: &'a str,
    base: PathBuf,
}

impl Ctx<'_> {
    /// An error at `span`.
    pub(crate) fn err(&self, span: Range<usize>, msg: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: Some(line_of(self.text, span.start)),
            msg,
        }
    }

    /// An error that cannot be placed on a line.
    pub(crate) fn err_here(&self, msg: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: None,
            msg,
        }
    }

    /// A path relative to the config file's directory.
    pub(crate) fn path(&self, p: &str) -> PathBuf {
        if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            self.base.join(p)
        }
    }

    /// An optional duration in `[min, max]`, `default` when absent.
    pub(crate) fn duration(
        &self,
        v: &raw::Text,
        key: &str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(s) = v else { return Ok(default) };
        let d =
            parse_duration(s.get_ref()).map_err(|m| self.err(s.span(), format!("{key}: {m}")))?;
        if d < min || d > max {
            return Err(self.err(
                s.span(),
                format!(
                    "{key}: {:?} is out of range ({} to {})",
                    s.get_ref(),
                    crate::time::fmt_duration(min),
                    crate::time::fmt_duration(max)
                ),
            ));
        }
        Ok(d)
    }

    /// Like [`Ctx::duration`], but `"0"`/`"0s"` (or `"off"`) give zero.
    pub(crate) fn duration_or_zero(
        &self,
        v: &raw::Text,
        key: &str,
        default: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        match v {
            Some(s) if matches!(s.get_ref().trim(), "0" | "0s" | "off") => Ok(Duration::ZERO),
            _ => self.duration(v, key, default, Duration::from_millis(1), max),
        }
    }

    /// An optional integer in `[min, max]`, `default` when absent.
    pub(crate) fn int(
        &self,
        v: &raw::Int,
        key: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        let Some(n) = v else { return Ok(default) };
        let x = *n.get_ref();
        if x < min || x > max {
            return Err(self.err(
                n.span(),
                format!("{key}: {x} is out of range ({min} to {max})"),
            ));
        }
        Ok(x)
    }

    /// An optional finite number in `[min, max]`.
    pub(crate) fn float(
        &self,
        v: &raw::Float,
        key: &str,
        min: f64,
        max: f64,
    ) -> Result<Option<f64>, ConfigError> {
        let Some(n) = v else { return Ok(None) };
        let x = *n.get_ref();
        if !x.is_finite() || x < min || x > max {
            return Err(self.err(
                n.span(),
                format!("{key}: {x} is out of range ({min} to {max})"),
            ));
        }
        Ok(Some(x))
    }

    /// A schedule (duration of at least `min`, or a cron expression), `default` when absent.
    pub(crate) fn schedule(
        &self,
        v: &raw::Text,
        key: &str,
        default: Duration,
        min: Duration,
    ) -> Result<Schedule, ConfigError> {
        let Some(s) = v else {
            return Ok(Schedule::Every(default));
        };
        let sched =
            Schedule::parse(s.get_ref()).map_err(|m| self.err(s.span(), format!("{key}: {m}")))?;
        if let Schedule::Every(d) = sched {
            if d < min {
                return Err(self.err(
                    s.span(),
                    format!(
                        "{key}: {:?} is too short (at least {})",
                        s.get_ref(),
                        crate::time::fmt_duration(min)
                    ),
                ));
            }
        }
        Ok(sched)
    }

    /// A secret value (`env:NAME`, `file:/path` or literal).
    pub(crate) fn secret(
        &self,
        s: &toml::Spanned<String>,
        key: &str,
    ) -> Result<Secret, ConfigError> {
        Secret::resolve(s.get_ref()).map_err(|m| self.err(s.span(), format!("{key}: {m}")))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |s| s.bytes().filter(|&b| b == b'\n').count() + 1)
}

/// Letters, digits, `-` and `_`: names of sources, hooks, channels and metrics.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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

    /// Validates TOML text as if read from `path`.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            file: file.clone(),
            line: e.span().map(|s| line_of(text, s.start)),
            msg: e.message().trim().to_string() + &describe_path(text, e.span()),
        })?;
        let cx = Ctx {
            file,
            text,
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };

        let resolver = resolver::validate(&raw.resolver, &cx)?;
        let mut keys = BTreeMap::new();
        for (k, v) in &raw.keys {
            keys.insert(k.clone(), cx.secret(v, &format!("keys.{k}"))?);
        }
        let lists = lists::validate(&raw.lists, &cx)?;
        let mut targets = Vec::new();
        for (i, t) in raw.targets.iter().enumerate() {
            let policy = if t.allow_large {
                RangePolicy::AllowLarge
            } else {
                RangePolicy::Normal
            };
            let spec = TargetSpec::parse(t.target.get_ref(), policy)
                .map_err(|e| cx.err(t.target.span(), format!("targets[{i}].target: {e}")))?;
            targets.push(TargetConf {
                spec,
                label: t.label.clone(),
                discovered: None,
            });
        }
        let daemon = daemon::validate(&raw.daemon, &cx)?;
        let mut warnings = Vec::new();
        let (sources, probes, spikes) = mail::validate(&raw, &cx, &mut warnings)?;
        let actions = actions::validate(&raw, &cx)?;
        let web = web::validate(&raw.web, &cx)?;
        let (impact, audits) = impact::validate(&raw, &cx, &mut warnings)?;
        let (feeds, discover) = feeds::validate(&raw, &cx)?;
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
            impact,
            audits,
            feeds,
            discover,
            warnings,
        };
        // Check list ids against the catalog now, so `config check` catches typos.
        let catalog = cfg.catalog().map_err(|e| cx.err_here(e))?;
        let named = raw
            .lists
            .use_
            .iter()
            .flatten()
            .chain(raw.lists.exclude.iter());
        for s in named {
            let id = s.get_ref().trim();
            match catalog.get(id) {
                None => {
                    return Err(cx.err(
                        s.span(),
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
        for id in cfg.lists.overrides.keys() {
            if catalog.get(id).is_none() {
                let at = text.find(&format!("override.{id}")).unwrap_or(0);
                return Err(cx.err(
                    at..at,
                    format!("lists.override.{id}: unknown list id {id:?} (see `rblwatch lists`)"),
                ));
            }
        }
        for (n, id) in cfg.impact.backscatter_lists.iter().enumerate() {
            if catalog.get(id).is_none() {
                let span = raw
                    .impact
                    .backscatter_lists
                    .as_ref()
                    .and_then(|v| v.get(n))
                    .map(|s| s.span())
                    .unwrap_or(0..0);
                return Err(cx.err(
                    span,
                    format!("impact.backscatter_lists: unknown list id {id:?} (see `rblwatch lists --all`)"),
                ));
            }
        }
        // The reply rules (shipped and [replies] dirs) must load and name known lists.
        cfg.reply_catalog(&catalog).map_err(|e| cx.err_here(e))?;
        Ok(cfg)
    }

    /// The shipped receiver-reply catalog plus `[replies] dirs`, checked against `lists`.
    pub fn reply_catalog(&self, lists: &Catalog) -> Result<crate::replies::ReplyCatalog, String> {
        let mut r = crate::replies::ReplyCatalog::shipped().map_err(|e| e.to_string())?;
        for d in &self.impact.reply_dirs {
            r.extend_from_dir(d)
                .map_err(|e| format!("replies.dirs: {e}"))?;
        }
        r.check_lists(lists).map_err(|e| format!("replies: {e}"))?;
        Ok(r)
    }

    /// The shipped catalog plus the configured directories.
    pub fn catalog(&self) -> Result<Catalog, String> {
        let mut c = Catalog::shipped().map_err(|e| e.to_string())?;
        for d in &self.lists.dirs {
            c.extend_from_dir(d).map_err(|e| e.to_string())?;
        }
        Ok(c)
    }

    /// The name servers to use: configured ones, or the system's.
    pub fn nameservers(&self) -> Result<Vec<std::net::SocketAddr>, String> {
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

/// The system's host name (for EHLO and alerts), or `localhost`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Names the key (and table) a TOML error is about, when the parser's message
/// does not: for a bad value (`confirm_listed = -1`) that is the key left of
/// the `=`, not the value itself.
fn describe_path(text: &str, span: Option<Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let before = text.get(..span.start).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let on_line = text.get(line_start..span.start).unwrap_or("");
    let key = match on_line.split_once('=') {
        // the span is a value: name the key on its left
        Some((k, _)) if !k.trim().is_empty() => k.trim().to_string(),
        _ => text.get(span.clone()).unwrap_or("").trim().to_string(),
    };
    let table = before.lines().rev().find_map(|l| {
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
