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
