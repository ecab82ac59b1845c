//! `rblwatch.toml`: parsed by serde into `raw` (unknown keys rejected), then
//! validated into [`Config`], whose values are all known to be good.
//!
//! [`Config::load`] reads the file; [`Config::from_toml`] is pure (apart from
//! `env:`/`file:` secrets and checks that named files exist) and is what the
//! tests feed strings to. Every error names the file, the line and the key,
//! and every number has a range, so a typo is refused at `config check`
//! rather than discovered by a daemon that hangs or panics. Validation does
//! not stop at the first error: every problem is collected ([`ConfigErrors`],
//! in the file's order), and no error quotes a value that may be a secret.
//!
//! Config holds plain settings types and imports no stage: each stage builds
//! its own runtime from these settings (`engine::active_lists(&Config, …)`).
//! The catalogs (`lists.d`, `replies.d`) are parsed once, at load, and shared
//! by everything built from the config ([`Config::catalog`], [`Config::replies`]).
//! One file per area: [`resolver`], [`lists`], [`daemon`], [`mail`]
//! (sources, probes, spikes), [`actions`] (hooks, alerts), [`web`], [`impact`];
//! beside them `raw` (the serde mirror), `ctx` (the errors and the collecting
//! context), `kinds` (the enums both share) and `catalogs`. Imports among these
//! files run one way: `raw` and `kinds` need no validating file.

pub mod actions;
mod catalogs;
mod ctx;
pub mod daemon;
pub mod feeds;
pub mod snds;
pub mod impact;
mod kinds;
pub mod lists;
pub mod mail;
pub mod postmaster;
mod raw;
pub mod resolver;
mod schedule;
pub mod senders;
pub mod web;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use self::actions::{
    ActionsConf, AlertSettings, ChannelConf, ChannelKind, EmailConf, HookConf, HookMode, SmtpTls,
    TeamsFormat,
};
pub use self::ctx::{hostname, valid_name, ConfigError, ConfigErrors};
pub use self::daemon::{probe_writable, DaemonConf};
pub use self::feeds::{DiscoverConf, DiscoverFrom, DmarcMailbox, FeedConf, ImapConf};
pub use self::impact::{AuditConf, AuditMta, ImpactConf};
pub use self::lists::ListsConf;
pub use self::mail::{
    ProbeConf, ProbeOpts, Selector, SourceConf, SourceKind, SpikeKind, SpikeRule, StartTls,
};
pub use self::postmaster::PostmasterConf;
pub use self::resolver::{parse_server, system_nameservers, ResolverConf};
pub use self::schedule::Schedule;
pub use self::senders::SendersConf;
pub use self::snds::SndsConf;
pub use self::web::{WebAccess, WebConf};
pub use crate::time::parse_duration;

use self::ctx::Ctx;
use crate::catalog::Catalog;
use crate::classes::ClassRules;
use crate::replies::ReplyCatalog;
use crate::secret::Secret;
use crate::target::{RangePolicy, TargetSpec};

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
    /// The outbound ledger and its burst thresholds (`[senders]`).
    pub senders: SendersConf,
    /// MTA posture audits.
    pub audits: Vec<AuditConf>,
    /// Receivers' feeds (DMARC aggregate reports).
    pub feeds: Vec<FeedConf>,
    /// Microsoft SNDS feeds (`[[feeds]] kind = "snds"`).
    pub snds: Vec<SndsConf>,
    /// Which feeds' sending IPs join the sweeps.
    pub discover: DiscoverConf,
    /// Google Postmaster Tools feeds (`kind = "google_postmaster"`).
    pub postmaster: Vec<PostmasterConf>,
    /// Warnings found while validating (retired lists named, …).
    pub warnings: Vec<String>,
    /// The list catalog (shipped plus `[lists] dirs`), parsed once at load
    /// and shared by every user of this config.
    catalog: Arc<Catalog>,
    /// The receiver-reply catalog (shipped plus `[replies] dirs`), checked
    /// against `catalog`; parsed once at load like it.
    replies: Arc<ReplyCatalog>,
    /// The outbound class rules (shipped plus `[senders] dirs`), parsed once
    /// at load like the catalogs.
    class_rules: Arc<ClassRules>,
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: None,
            msg: format!("cannot read: {e}"),
        })?;
        Self::from_toml(path, &text)
    }

    /// Validates TOML text as if read from `path`: every problem in it is
    /// returned at once, in the file's order.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigErrors> {
        let mut cx = Ctx::new(path, text);
        let raw = match raw::parse(text) {
            Ok((raw, errs)) => {
                for e in errs {
                    report_raw(&cx, e);
                }
                cx.set_unread(raw.unread.clone());
                raw
            }
            Err(e) => {
                // a syntax error: nothing after it can be read
                report_raw(&cx, e);
                return Err(cx.finish().1.unwrap_or_else(|| unexplained(path)));
            }
        };
        let resolver = resolver::validate(&raw.resolver, &cx);
        let keys = raw
            .keys
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), cx.secret(v, &format!("keys.{k}"))?)))
            .collect();
        let lists = lists::validate(&raw.lists, &cx);
        let targets = targets(&raw, &cx);
        let daemon = daemon::validate(&raw.daemon, &cx);
        let (sources, probes, spikes) = mail::validate(&raw, &cx);
        let actions = actions::validate(&raw, &cx);
        let web = web::validate(&raw.web, &cx);
        let (impact, audits) = impact::validate(&raw, &cx);
        let (feeds, discover) = feeds::validate(&raw, &cx);
        // one job per feed name, whatever the kind
        let mut taken: Vec<&str> = feeds.iter().map(|f| f.name.as_str()).collect();
        let snds = snds::validate(&raw, &taken, &cx);
        taken.extend(snds.iter().map(|f| f.name.as_str()));
        let postmaster = postmaster::validate(&raw, &targets, &taken, &cx);
        let senders = senders::validate(&raw, &cx);
        let catalogs = catalogs::load(&raw, &cx);
        let class_rules = catalogs::class_rules(&raw, &cx);
        let (warnings, errors) = cx.finish();
        if let Some(errors) = errors {
            return Err(errors);
        }
        // a catalog that did not load was reported above: not reached
        let (catalog, replies) = catalogs.ok_or_else(|| unexplained(path))?;
        let class_rules = class_rules.ok_or_else(|| unexplained(path))?;
        Ok(Config {
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
            senders,
            audits,
            feeds,
            snds,
            discover,
            postmaster,
            warnings,
            catalog: Arc::new(catalog),
            replies: Arc::new(replies),
            class_rules: Arc::new(class_rules),
        })
    }

    /// The list catalog: the shipped one plus `[lists] dirs`, read once at load.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The receiver-reply catalog: the shipped one plus `[replies] dirs`,
    /// checked against [`Config::catalog`], read once at load.
    pub fn replies(&self) -> &Arc<ReplyCatalog> {
        &self.replies
    }

    /// The outbound class rules: the shipped ones plus `[senders] dirs`, read
    /// once at load.
    pub fn class_rules(&self) -> &Arc<ClassRules> {
        &self.class_rules
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
    pub fn default_for_cli() -> Result<Self, ConfigErrors> {
        Self::from_toml(Path::new("<defaults>"), "")
    }
}

/// `[[targets]]`.
fn targets(raw: &raw::RawConfig, cx: &Ctx<'_>) -> Vec<TargetConf> {
    let mut out = Vec::new();
    for (i, t) in &raw.targets {
        let policy = if t.allow_large {
            RangePolicy::AllowLarge
        } else {
            RangePolicy::Normal
        };
        match TargetSpec::parse_config(t.target.get_ref(), policy) {
            Ok(spec) => out.push(TargetConf {
                spec,
                label: t.label.clone(),
                discovered: None,
            }),
            Err(e) => cx.report(t.target.span(), format!("targets[{i}].target: {e}")),
        }
    }
    out
}

/// The error of a validation that failed without recording a reason: a bug,
/// but reported like any config error rather than a panic.
fn unexplained(path: &Path) -> ConfigErrors {
    ConfigError {
        file: path.display().to_string(),
        line: None,
        msg: "the configuration could not be validated (internal error: no reason recorded)".into(),
    }
    .into()
}

/// Records a TOML reading error, with the key it is about. A value is never
/// quoted: serde's "invalid type: integer `123456`" would print a numeric
/// password or token into a log, so the value is cut out of every message.
fn report_raw(cx: &Ctx<'_>, e: raw::RawError) {
    let msg = redact_values(&e.msg) + &describe_path(cx.text(), e.span.clone());
    cx.report_at(e.span.map(|s| cx.line(s.start)), msg);
}

/// Cuts the quoted value out of serde's "invalid type/value/length" messages
/// (``invalid type: integer `5`, expected a string`` → `invalid type:
/// integer, expected a string`). Other messages (an unknown key or variant)
/// quote a key or variant name, never a value, and stay as they are.
fn redact_values(msg: &str) -> String {
    let Some((prefix, body)) = ["invalid type: ", "invalid value: ", "invalid length "]
        .iter()
        .find_map(|p| msg.strip_prefix(p).map(|r| (*p, r)))
    else {
        return msg.to_string();
    };
    let Some((value, expected)) = body.rsplit_once(", expected ") else {
        return format!("{prefix}(value not shown)");
    };
    // the kind word before the quoted value ("integer", "string", "floating point")
    match value.split('`').next().unwrap_or("").trim() {
        "" => format!("{prefix}(value not shown), expected {expected}"),
        kind => format!("{prefix}{kind}, expected {expected}"),
    }
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
    let after = text.get(span.end..).unwrap_or("").trim_start();
    let key = match on_line.split_once('=') {
        // the span is a value: name the key on its left
        Some((k, _)) if !k.trim().is_empty() => k.trim().to_string(),
        // the span is a key (an unknown one): name it; anything else may be
        // a value, and a value is never quoted (it may be a secret)
        _ if after.starts_with('=') || after.starts_with('.') => {
            text.get(span.clone()).unwrap_or("").trim().to_string()
        }
        _ => String::new(),
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
