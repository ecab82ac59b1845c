//! `[[feeds]] kind = "snds"`: Microsoft SNDS automated data access. The key
//! is a secret (`env:NAME`, `file:/path` or literal): it travels in the
//! export URLs' query, so it is never printed, stored or put in an error.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::Ctx;
use super::raw::{RawConfig, RawFeed};
use super::Schedule;
use crate::secret::Secret;

/// Microsoft's automated-access base: `ipStatus.aspx` and `data.aspx` live under it.
pub const SNDS_BASE_URL: &str = "https://sendersupport.olc.protection.outlook.com/snds/";

/// A configured SNDS feed.
#[derive(Debug, Clone, PartialEq)]
pub struct SndsConf {
    /// Name (events, pages). Defaults to `snds`.
    pub name: String,
    /// The automated-access key (a secret).
    pub key: Secret,
    /// Where the exports are: `<base_url>ipStatus.aspx`, `<base_url>data.aspx`. Defaults to [`SNDS_BASE_URL`].
    pub base_url: String,
    /// How often. Defaults to every 4 h (the data lags a day; a day is fetched again until it is complete).
    pub interval: Schedule,
    /// Time allowed for one export. Defaults to 60 s.
    pub timeout: Duration,
    /// The largest export read; a larger one is cut off and refused. Defaults to 32 MiB.
    pub max_body_bytes: u64,
    /// Past days fetched at each run (yesterday first). Defaults to 3.
    pub days: u32,
    /// Extra trusted CA certificates (PEM), beside the Web PKI roots.
    pub ca_file: Option<PathBuf>,
}

/// Every `[[feeds]] kind = "snds"` entry; names are unique among all feeds.
/// `taken`: the names of the feeds validated before (one job per feed name).
pub(super) fn validate(raw: &RawConfig, taken: &[&str], cx: &Ctx<'_>) -> Vec<SndsConf> {
    let mut out: Vec<SndsConf> = Vec::new();
    for (n, f) in &raw.feeds {
        if f.kind.get_ref() != "snds" {
            continue;
        }
        let key = format!("feeds[{n}]");
        if let Some(c) = feed(&key, f, cx) {
            if taken.contains(&c.name.as_str()) || out.iter().any(|d| d.name == c.name) {
                cx.report(
                    f.kind.span(),
                    format!(
                        "{key}: feed {:?} is configured twice (give it a different `name`)",
                        c.name
                    ),
                );
                continue;
            }
            out.push(c);
        }
    }
    out
}

fn feed(key: &str, f: &RawFeed, cx: &Ctx<'_>) -> Option<SndsConf> {
    super::feeds::refuse_foreign_settings(key, "snds", f, cx);
    let name = cx
        .entry_name(&f.name, key)
        .ok()?
        .unwrap_or_else(|| "snds".to_string());
    let Some(k) = &f.key else {
        cx.report(
            f.kind.span(),
            format!("{key}: an snds feed needs `key` (SNDS automated access key; env:NAME or file:/path)"),
        );
        return None;
    };
    let secret = cx.secret(k, &format!("{key}.key"))?;
    if secret.expose().trim().is_empty() {
        cx.report(k.span(), format!("{key}.key: empty"));
        return None;
    }
    let base_url = match &f.base_url {
        None => SNDS_BASE_URL.to_string(),
        Some(u) => {
            let mut s = u.get_ref().trim().to_string();
            if !s.ends_with('/') {
                s.push('/');
            }
            match reqwest::Url::parse(&s) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.query().is_none() => s,
                _ => {
                    cx.report(
                        u.span(),
                        format!("{key}.base_url: {s:?} is not an http(s) URL without a query"),
                    );
                    return None;
                }
            }
        }
    };
    Some(SndsConf {
        name,
        key: secret,
        base_url,
        interval: cx.schedule(
            &f.interval,
            &format!("{key}.interval"),
            Duration::from_secs(4 * 3600),
            Duration::from_secs(1),
        ),
        timeout: super::feeds::timeout(key, f, cx),
        max_body_bytes: cx.int(
            &f.max_body_bytes,
            &format!("{key}.max_body_bytes"),
            32 << 20,
            1024,
            1 << 30,
        ) as u64,
        days: cx.int(&f.days, &format!("{key}.days"), 3, 1, 30) as u32,
        ca_file: f.ca_file.as_ref().map(|s| cx.path(s.get_ref())),
    })
}
