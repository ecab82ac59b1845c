//! Serde mirror of `rblwatch.toml`. Every table rejects unknown keys; values
//! are checked in [`super::Config::from_raw`]. Fields that are validated after
//! parsing are `Spanned` so an error can name the line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

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
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) enabled: Option<bool>,
    pub(super) listen: Option<Spanned<String>>,
    pub(super) token: Option<Spanned<String>>,
    pub(super) insecure: Option<bool>,
    pub(super) refresh: Option<Spanned<String>>,
    pub(super) templates_dir: Option<String>,
    pub(super) page_size: Option<u32>,
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
    pub(super) min_severity: Option<crate::evaluator::Severity>,
    pub(super) command: Vec<String>,
    pub(super) revert: Option<Vec<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) cooldown: Option<Spanned<String>>,
    pub(super) max_per_hour: Option<u32>,
    pub(super) dry_run: Option<bool>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    pub(super) max_event_age: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlert {
    pub(super) name: Spanned<String>,
    pub(super) kind: crate::actions::alerts::ChannelKind,
    pub(super) url: Option<Spanned<String>>,
    pub(super) template: Option<String>,
    #[serde(default)]
    pub(super) on: Vec<Spanned<String>>,
    pub(super) min_severity: Option<crate::evaluator::Severity>,
    pub(super) smtp_host: Option<String>,
    pub(super) smtp_port: Option<u16>,
    pub(super) tls: Option<crate::actions::alerts::SmtpTls>,
    pub(super) username: Option<String>,
    pub(super) password: Option<Spanned<String>>,
    pub(super) from: Option<String>,
    #[serde(default)]
    pub(super) to: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerting {
    pub(super) group_window: Option<Spanned<String>>,
    pub(super) status_url: Option<String>,
    pub(super) give_up_after: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawSourceKind {
    Postfix,
    PostfixLog,
    Exim,
    Command,
    HttpJson,
    Prometheus,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) name: Spanned<String>,
    pub(super) kind: RawSourceKind,
    pub(super) command: Option<Vec<String>>,
    pub(super) path: Option<String>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) header: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) values: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) metrics: BTreeMap<String, Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProbe {
    pub(super) domain: Spanned<String>,
    pub(super) server: Spanned<String>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) helo: Option<String>,
    pub(super) mail_from: Option<String>,
    pub(super) control: Option<String>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) starttls: Option<crate::smtp_probe::StartTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpike {
    pub(super) metric: Spanned<String>,
    pub(super) kind: crate::spike::SpikeKind,
    pub(super) above: Option<f64>,
    pub(super) rate: Option<f64>,
    pub(super) baseline_factor: Option<f64>,
    pub(super) floor: Option<f64>,
    pub(super) clear_after: Option<u32>,
    pub(super) clear_ratio: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResolver {
    pub(super) nameservers: Option<Vec<Spanned<String>>>,
    pub(super) confirm_with: Option<Vec<Spanned<String>>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) retries: Option<u32>,
    pub(super) concurrency: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLists {
    #[serde(rename = "use")]
    pub(super) use_: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) exclude: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) dirs: Vec<String>,
    pub(super) max_qps: Option<f64>,
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
    pub(super) database: Option<String>,
    pub(super) sweep: Option<Spanned<String>>,
    pub(super) health: Option<Spanned<String>>,
    pub(super) spread: Option<bool>,
    pub(super) confirm_listed: Option<u32>,
    pub(super) confirm_clear: Option<u32>,
    pub(super) retention_days: Option<u32>,
    pub(super) sample_retention_days: Option<u32>,
}
