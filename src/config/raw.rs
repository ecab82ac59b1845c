//! Serde mirror of `rblwatch.toml`. Every table rejects unknown keys; values
//! are checked by the area modules beside this one. Values that are validated
//! after parsing are `Spanned`, so an error can name the line; numbers are
//! read wide (`i64`, `f64`) so a range error names the key, not the type.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::actions::{ChannelKind, SmtpTls, TeamsFormat};
use super::impact::AuditMta;
use super::mail::{SpikeKind, StartTls};
use crate::event::Severity;

pub(super) type Int = Option<Spanned<i64>>;
pub(super) type Float = Option<Spanned<f64>>;
pub(super) type Text = Option<Spanned<String>>;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) resolver: RawResolver,
    #[serde(default)]
    pub(super) lists: RawLists,
    #[serde(default)]
    pub(super) keys: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(super) targets: Vec<RawTarget>,
    #[serde(default)]
    pub(super) daemon: RawDaemon,
    #[serde(default)]
    pub(super) sources: Vec<RawSource>,
    #[serde(default)]
    pub(super) probes: Vec<RawProbe>,
    #[serde(default)]
    pub(super) spikes: Vec<RawSpike>,
    #[serde(default)]
    pub(super) hooks: Vec<RawHook>,
    #[serde(default)]
    pub(super) alerts: Vec<RawAlert>,
    #[serde(default)]
    pub(super) alerting: RawAlerting,
    #[serde(default)]
    pub(super) web: RawWeb,
    #[serde(default)]
    pub(super) impact: RawImpact,
    #[serde(default)]
    pub(super) replies: RawReplies,
    #[serde(default)]
    pub(super) audits: Vec<RawAudit>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImpact {
    pub(super) window: Text,
    pub(super) threshold: Int,
    pub(super) backscatter_lists: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplies {
    #[serde(default)]
    pub(super) dirs: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub(super) name: Text,
    pub(super) mta: AuditMta,
    pub(super) command: Option<Spanned<Vec<String>>>,
    pub(super) interval: Text,
    pub(super) timeout: Text,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) enabled: Option<bool>,
    pub(super) listen: Text,
    pub(super) token: Text,
    pub(super) insecure: Option<bool>,
    pub(super) refresh: Text,
    pub(super) templates_dir: Text,
    pub(super) page_size: Int,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHook {
    pub(super) name: Spanned<String>,
    pub(super) on: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) targets: Vec<String>,
    #[serde(default)]
    pub(super) lists: Vec<String>,
    pub(super) min_severity: Option<Severity>,
    pub(super) command: Spanned<Vec<String>>,
    pub(super) revert: Option<Spanned<Vec<String>>>,
    pub(super) timeout: Text,
    pub(super) cooldown: Text,
    pub(super) max_per_hour: Int,
    pub(super) dry_run: Option<bool>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    pub(super) max_event_age: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlert {
    pub(super) name: Spanned<String>,
    pub(super) kind: ChannelKind,
    pub(super) url: Text,
    pub(super) template: Text,
    pub(super) format: Option<Spanned<TeamsFormat>>,
    #[serde(default)]
    pub(super) on: Vec<Spanned<String>>,
    pub(super) min_severity: Option<Severity>,
    pub(super) smtp_host: Option<String>,
    pub(super) smtp_port: Option<u16>,
    pub(super) tls: Option<SmtpTls>,
    pub(super) username: Option<String>,
    pub(super) password: Text,
    pub(super) from: Option<String>,
    #[serde(default)]
    pub(super) to: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerting {
    pub(super) group_window: Text,
    pub(super) status_url: Option<String>,
    pub(super) give_up_after: Text,
    pub(super) timeout: Text,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawSourceKind {
    Postfix,
    PostfixLog,
    Exim,
    EximLog,
    Command,
    HttpJson,
    Prometheus,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) name: Spanned<String>,
    pub(super) kind: RawSourceKind,
    pub(super) command: Option<Spanned<Vec<String>>>,
    pub(super) path: Text,
    pub(super) url: Text,
    pub(super) header: Text,
    #[serde(default)]
    pub(super) values: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) metrics: BTreeMap<String, Spanned<String>>,
    pub(super) interval: Text,
    pub(super) timeout: Text,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProbe {
    pub(super) name: Text,
    pub(super) domain: Spanned<String>,
    pub(super) server: Spanned<String>,
    pub(super) interval: Text,
    pub(super) helo: Option<String>,
    pub(super) mail_from: Option<String>,
    pub(super) control: Option<String>,
    pub(super) timeout: Text,
    pub(super) starttls: Option<StartTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpike {
    pub(super) metric: Spanned<String>,
    pub(super) kind: SpikeKind,
    pub(super) above: Float,
    pub(super) rate: Float,
    pub(super) baseline_factor: Float,
    pub(super) floor: Float,
    pub(super) clear_after: Int,
    pub(super) clear_ratio: Float,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResolver {
    pub(super) nameservers: Option<Vec<Spanned<String>>>,
    pub(super) confirm_with: Option<Vec<Spanned<String>>>,
    pub(super) timeout: Text,
    pub(super) retries: Int,
    pub(super) concurrency: Int,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) root_hints: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLists {
    #[serde(rename = "use")]
    pub(super) use_: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) exclude: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) dirs: Vec<Spanned<String>>,
    pub(super) max_qps: Float,
    #[serde(default, rename = "override")]
    pub(super) override_: BTreeMap<String, RawListOverride>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListOverride {
    pub(super) direct: Option<bool>,
    pub(super) daily_limit: Int,
    pub(super) mirror: Text,
    pub(super) max_age: Text,
    pub(super) mirror_format: Text,
    pub(super) mirror_max_mb: Int,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) target: Spanned<String>,
    pub(super) label: Option<String>,
    #[serde(default)]
    pub(super) allow_large: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub(super) database: Text,
    pub(super) sweep: Text,
    pub(super) health: Text,
    pub(super) spread: Option<bool>,
    pub(super) confirm_listed: Int,
    pub(super) confirm_clear: Int,
    pub(super) retention_days: Int,
    pub(super) sample_retention_days: Int,
}
