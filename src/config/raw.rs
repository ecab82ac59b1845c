//! Serde mirror of `rblwatch.toml`. Every table rejects unknown keys; values
//! are checked by the area modules beside this one. Values that are validated
//! after parsing are `Spanned`, so an error can name the line; numbers are
//! read wide (`i64`, `f64`) so a range error names the key, not the type.
//!
//! [`parse`] reads each top-level table, and each `[[…]]` entry, on its own:
//! a type error or unknown key in one of them is reported and the others are
//! still read, so one `config check` shows the problems of every table. This
//! file imports no validating module (the enums it shares with them are in
//! [`super::kinds`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::kinds::{AuditMta, ChannelKind, SmtpTls, SpikeKind, StartTls, TeamsFormat};
use crate::event::Severity;

pub(super) type Int = Option<Spanned<i64>>;
pub(super) type Float = Option<Spanned<f64>>;
pub(super) type Text = Option<Spanned<String>>;
/// The entries of a `[[…]]` array that could be read, each with its index in
/// the file (an entry that could not be read is reported, and later ones keep
/// their own index in messages).
pub(super) type Entries<T> = Vec<(usize, T)>;

/// A problem found while reading the TOML: where (byte span, when known) and what.
#[derive(Debug)]
pub(super) struct RawError {
    pub(super) span: Option<Range<usize>>,
    pub(super) msg: String,
}

impl From<toml::de::Error> for RawError {
    fn from(e: toml::de::Error) -> Self {
        RawError {
            span: e.span(),
            msg: e.message().trim().to_string(),
        }
    }
}

/// The top-level keys, in the order the example config uses them.
const TOP_LEVEL: &[&str] = &[
    "resolver", "lists", "keys", "targets", "daemon", "sources", "probes", "spikes", "hooks",
    "alerts", "alerting", "web", "impact", "replies", "audits", "feeds", "discover", "senders",
];

/// Reads `text`. A TOML syntax error ends the reading (nothing after it can
/// be trusted); any other problem is returned beside what could be read.
pub(super) fn parse(text: &str) -> Result<(RawConfig, Vec<RawError>), RawError> {
    let root = DeTable::parse(text)?.into_inner();
    let mut raw = RawConfig::default();
    let mut errs = Vec::new();
    let mut unread = BTreeSet::new();
    let e = &mut Problems {
        errs: &mut errs,
        unread: &mut unread,
    };
    for (key, value) in root {
        let k: &str = key.get_ref();
        match k {
            "resolver" => one(value, k, &mut raw.resolver, e),
            "lists" => one(value, k, &mut raw.lists, e),
            "keys" => one(value, k, &mut raw.keys, e),
            "targets" => many(value, k, &mut raw.targets, e),
            "daemon" => one(value, k, &mut raw.daemon, e),
            "sources" => {
                raw.unread_source_names = names_of_unread(&value, &mut raw.sources, e);
            }
            "probes" => many(value, k, &mut raw.probes, e),
            "spikes" => many(value, k, &mut raw.spikes, e),
            "hooks" => many(value, k, &mut raw.hooks, e),
            "alerts" => many(value, k, &mut raw.alerts, e),
            "alerting" => one(value, k, &mut raw.alerting, e),
            "web" => one(value, k, &mut raw.web, e),
            "impact" => one(value, k, &mut raw.impact, e),
            "replies" => one(value, k, &mut raw.replies, e),
            "audits" => many(value, k, &mut raw.audits, e),
            "feeds" => many(value, k, &mut raw.feeds, e),
            "discover" => one(value, k, &mut raw.discover, e),
            "senders" => one(value, k, &mut raw.senders, e),
            other => e.errs.push(RawError {
                span: Some(key.span()),
                msg: format!(
                    "unknown field `{other}`, expected one of {}",
                    TOP_LEVEL
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
    raw.unread = unread;
    Ok((raw, errs))
}

/// Where [`read`] puts what it could not read.
struct Problems<'a> {
    errs: &'a mut Vec<RawError>,
    unread: &'a mut BTreeSet<String>,
}

/// Reads one value into `slot` (left at its default when it cannot be read).
fn one<T: DeserializeOwned>(v: Spanned<DeValue<'_>>, at: &str, slot: &mut T, p: &mut Problems) {
    if let Some(x) = read(v, at, p) {
        *slot = x;
    }
}

/// Reads one table (or value). serde stops at the first bad key of a table;
/// to report the others too, the key it stopped at is reported, taken out,
/// and the table read again (a few times at most). The result of a table
/// that had a bad key is only used to find more problems: the config is
/// refused anyway. Each key taken out goes into `p.unread` as `at.key`, so a
/// validator does not also call it missing.
fn read<T: DeserializeOwned>(mut v: Spanned<DeValue<'_>>, at: &str, p: &mut Problems) -> Option<T> {
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..32 {
        let e = match T::deserialize(ValueDeserializer::from(v.clone())) {
            Ok(x) => return Some(x),
            Err(e) => e,
        };
        // a required key taken out is missing now: that is not news
        if removed
            .iter()
            .any(|k| e.message().contains(&format!("missing field `{k}`")))
        {
            return None;
        }
        let span = e.span();
        p.errs.push(e.into());
        let (Some(span), DeValue::Table(t)) = (span, v.get_mut()) else {
            return None;
        };
        let within = |r: std::ops::Range<usize>| r.start <= span.start && span.end <= r.end;
        let key = t
            .iter()
            .find(|(k, val)| within(k.span()) || within(val.span()))
            .map(|(k, _)| k.get_ref().to_string())?;
        t.remove(key.as_str());
        p.unread.insert(format!("{at}.{key}"));
        removed.push(key);
    }
    None
}

/// Reads a `[[…]]` array entry by entry.
fn many<T: DeserializeOwned>(
    v: Spanned<DeValue<'_>>,
    at: &str,
    slot: &mut Entries<T>,
    p: &mut Problems,
) {
    let span = v.span();
    match v.into_inner() {
        DeValue::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                if let Some(x) = read(item, &format!("{at}[{i}]"), p) {
                    slot.push((i, x));
                }
            }
        }
        other => {
            // not an array: serde says what was expected
            let mut whole: Vec<T> = Vec::new();
            one(Spanned::new(span, other), at, &mut whole, p);
        }
    }
}

/// Reads `[[sources]]` like [`many`], and returns the names of the entries
/// that could not be read, so a spike on one of them is not also called
/// unknown.
fn names_of_unread(
    v: &Spanned<DeValue<'_>>,
    slot: &mut Entries<RawSource>,
    p: &mut Problems,
) -> Vec<String> {
    let before = slot.len();
    many(v.clone(), "sources", slot, p);
    let got: Vec<usize> = slot[before..].iter().map(|(i, _)| *i).collect();
    let DeValue::Array(items) = v.get_ref() else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter(|(i, _)| !got.contains(i))
        .filter_map(|(_, item)| {
            item.get_ref()
                .get("name")?
                .get_ref()
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// The whole file, as read by [`parse`].
#[derive(Debug, Default)]
pub(super) struct RawConfig {
    pub(super) resolver: RawResolver,
    pub(super) lists: RawLists,
    pub(super) keys: BTreeMap<String, Spanned<String>>,
    pub(super) targets: Entries<RawTarget>,
    pub(super) daemon: RawDaemon,
    pub(super) sources: Entries<RawSource>,
    /// Names of `[[sources]]` entries that could not be read (already reported).
    pub(super) unread_source_names: Vec<String>,
    /// Keys left out because their value could not be read (already
    /// reported), as `alerts[0].smtp_host`: not to be called missing too.
    pub(super) unread: BTreeSet<String>,
    pub(super) probes: Entries<RawProbe>,
    pub(super) spikes: Entries<RawSpike>,
    pub(super) hooks: Entries<RawHook>,
    pub(super) alerts: Entries<RawAlert>,
    pub(super) alerting: RawAlerting,
    pub(super) web: RawWeb,
    pub(super) impact: RawImpact,
    pub(super) replies: RawReplies,
    pub(super) audits: Entries<RawAudit>,
    pub(super) feeds: Entries<RawFeed>,
    pub(super) discover: RawDiscover,
    pub(super) senders: RawSenders,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeed {
    pub(super) name: Text,
    pub(super) kind: Spanned<String>,
    pub(super) maildir: Text,
    pub(super) imap: Option<RawImap>,
    pub(super) interval: Text,
    pub(super) timeout: Text,
    pub(super) max_mail_bytes: Int,
    pub(super) max_report_bytes: Int,
    pub(super) max_mails: Int,
    // snds and google_postmaster (validated in snds.rs and postmaster.rs)
    pub(super) key: Option<Spanned<String>>,
    pub(super) base_url: Text,
    pub(super) max_body_bytes: Int,
    pub(super) days: Int,
    pub(super) ca_file: Text,
    // kind = "google_postmaster" only
    pub(super) service_account: Text,
    pub(super) domains: Option<Vec<Spanned<String>>>,
    pub(super) token_url: Text,
    pub(super) api_url: Text,
    pub(super) scopes: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImap {
    pub(super) host: Spanned<String>,
    pub(super) port: Int,
    pub(super) user: Spanned<String>,
    pub(super) password: Spanned<String>,
    pub(super) mailbox: Text,
    pub(super) ca_file: Text,
    pub(super) tls_name: Text,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDiscover {
    #[serde(default)]
    pub(super) from: Vec<Spanned<String>>,
    pub(super) max: Int,
    pub(super) window: Text,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSenders {
    pub(super) enabled: Option<Spanned<bool>>,
    pub(super) window: Text,
    pub(super) account_messages: Int,
    pub(super) account_recipients: Int,
    pub(super) automated_messages: Int,
    pub(super) factor: Float,
    pub(super) clear_after: Int,
    pub(super) max_accounts: Int,
    pub(super) mynetworks: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) dirs: Vec<Spanned<String>>,
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
    pub(super) mta: Spanned<AuditMta>,
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
    pub(super) from: Text,
    #[serde(default)]
    pub(super) to: Vec<Spanned<String>>,
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
    pub(super) nameservers: Option<Spanned<Vec<Spanned<String>>>>,
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
    pub(super) use_: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) exclude: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) dirs: Vec<Spanned<String>>,
    pub(super) max_qps: Float,
    #[serde(default, rename = "override")]
    pub(super) override_: BTreeMap<Spanned<String>, RawListOverride>,
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
    pub(super) prefix_sample: Int,
}
