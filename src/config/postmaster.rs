//! `[[feeds]] kind = "google_postmaster"`: Google Postmaster Tools API v2
//! read with a service account (OAuth2 JWT bearer grant, RFC 7523). Plain
//! settings; `feeds::postmaster` and the daemon act on them.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::Ctx;
use super::raw::{RawConfig, RawFeed};
use super::{Schedule, TargetConf};
use crate::secret::Secret;
use crate::target::TargetSpec;

/// Google's OAuth2 token endpoint (the `token_uri` of every service-account key).
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The Postmaster Tools API's service endpoint (v2 paths are below it).
pub const GOOGLE_POSTMASTER_API: &str = "https://gmailpostmastertools.googleapis.com";
/// The least scope that reads `domains.getComplianceStatus` and
/// `domains.domainStats.query` (the v2 discovery document lists it for both).
pub const TRAFFIC_READONLY_SCOPE: &str =
    "https://www.googleapis.com/auth/postmaster.traffic.readonly";

/// A Google Postmaster Tools feed.
#[derive(Debug, Clone, PartialEq)]
pub struct PostmasterConf {
    /// Name (events, pages). Defaults to `google_postmaster`.
    pub name: String,
    /// The service-account key (Google's JSON key file, read once at load):
    /// a secret, never printed, logged or stored.
    pub service_account: Secret,
    /// The domains asked about (each registered in Postmaster Tools and
    /// shared with the service account). Defaults to the domain targets.
    pub domains: Vec<String>,
    /// The OAuth2 token endpoint (the JWT's audience). Defaults to Google's.
    pub token_url: String,
    /// The API's base URL (`/v2/...` is appended). Defaults to Google's.
    pub api_url: String,
    /// The OAuth2 scopes asked for. Defaults to `postmaster.traffic.readonly`.
    pub scopes: Vec<String>,
    /// Extra trusted CA certificates (PEM), beside the Web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// How often. Defaults to every 6 h (the figures are daily and lag a day).
    pub interval: Schedule,
    /// Time allowed for one read (token and every call). Defaults to 60 s.
    pub timeout: Duration,
    /// How many past days each read asks for (late figures fill in). Defaults to 10.
    pub days: u32,
    /// The largest answer read; a larger one is refused. Defaults to 4 MiB.
    pub max_body_bytes: u64,
}

/// Validates the `google_postmaster` entries of `[[feeds]]` (the others are
/// `feeds.rs`'s); a name already used by another feed is refused.
pub(super) fn validate(
    raw: &RawConfig,
    targets: &[TargetConf],
    taken: &[&str],
    cx: &Ctx<'_>,
) -> Vec<PostmasterConf> {
    let mut out: Vec<PostmasterConf> = Vec::new();
    for (n, f) in &raw.feeds {
        if f.kind.get_ref() != "google_postmaster" {
            continue;
        }
        let key = format!("feeds[{n}]");
        let Ok(name) = cx.entry_name(&f.name, &key) else {
            continue;
        };
        let name = name.unwrap_or_else(|| "google_postmaster".into());
        if out.iter().any(|x| x.name == name) || taken.contains(&name.as_str()) {
            cx.report(
                f.kind.span(),
                format!("{key}: feed {name:?} is configured twice (give it a different `name`)"),
            );
            continue;
        }
        if let Some(p) = feed(&key, name, f, targets, cx) {
            out.push(p);
        }
    }
    out
}

fn feed(
    key: &str,
    name: String,
    f: &RawFeed,
    targets: &[TargetConf],
    cx: &Ctx<'_>,
) -> Option<PostmasterConf> {
    super::feeds::refuse_foreign_settings(key, "google_postmaster", f, cx);
    let service_account = match &f.service_account {
        None => {
            cx.report(
                f.kind.span(),
                format!("{key}: a google_postmaster feed needs `service_account` (the JSON key, e.g. \"file:/etc/rblwatch/postmaster-key.json\")"),
            );
            None
        }
        Some(s) => cx
            .secret(s, &format!("{key}.service_account"))
            .and_then(|sa| match check_key(sa.expose()) {
                Ok(()) => Some(sa),
                Err(why) => {
                    cx.report(s.span(), format!("{key}.service_account: {why}"));
                    None
                }
            }),
    };
    let mut domains: Vec<String> = Vec::new();
    match &f.domains {
        Some(ds) => {
            for d in ds {
                match crate::target::parse_domain(d.get_ref()) {
                    Ok(d) if !domains.contains(&d) => domains.push(d),
                    Ok(_) => {}
                    Err(e) => cx.report(d.span(), format!("{key}.domains: {e}")),
                }
            }
        }
        None => domains.extend(targets.iter().filter_map(|t| match &t.spec {
            TargetSpec::Domain(d) => Some(d.clone()),
            _ => None,
        })),
    }
    if domains.is_empty() {
        cx.report(
            f.kind.span(),
            format!("{key}: no domain to ask about (set `domains`, or add domain targets)"),
        );
    }
    let url = |v: &Option<toml::Spanned<String>>, k: &str, default: &str| -> Option<String> {
        let Some(s) = v else {
            return Some(default.to_string());
        };
        let u = s.get_ref().trim().trim_end_matches('/').to_string();
        match reqwest::Url::parse(&u) {
            Ok(p) if p.scheme() == "https" && p.host_str().is_some() => Some(u),
            Ok(_) => {
                cx.report(s.span(), format!("{key}.{k}: must be an https:// URL"));
                None
            }
            Err(e) => {
                cx.report(s.span(), format!("{key}.{k}: not a URL: {e}"));
                None
            }
        }
    };
    let token_url = url(&f.token_url, "token_url", GOOGLE_TOKEN_URL);
    let api_url = url(&f.api_url, "api_url", GOOGLE_POSTMASTER_API);
    let scopes: Vec<String> = match &f.scopes {
        None => vec![TRAFFIC_READONLY_SCOPE.to_string()],
        Some(v) => {
            let s: Vec<String> = v.iter().map(|s| s.get_ref().trim().to_string()).collect();
            if s.is_empty() || s.iter().any(|x| x.is_empty() || x.contains(' ')) {
                cx.report(
                    f.kind.span(),
                    format!("{key}.scopes: one scope URL per entry, none empty"),
                );
            }
            s
        }
    };
    let interval = cx.schedule(
        &f.interval,
        &format!("{key}.interval"),
        Duration::from_secs(6 * 3600),
        Duration::from_secs(1),
    );
    Some(PostmasterConf {
        name,
        service_account: service_account?,
        domains,
        token_url: token_url?,
        api_url: api_url?,
        scopes,
        ca_file: f.ca_file.as_ref().map(|s| cx.path(s.get_ref())),
        interval,
        timeout: super::feeds::timeout(key, f, cx),
        days: cx.int(&f.days, &format!("{key}.days"), 10, 1, 120) as u32,
        max_body_bytes: cx.int(
            &f.max_body_bytes,
            &format!("{key}.max_body_bytes"),
            4 << 20,
            1024,
            256 << 20,
        ) as u64,
    })
}

/// Whether a service-account key looks usable: JSON with `client_email` and
/// a PEM `private_key`. The message never quotes the key (serde's own
/// messages can quote a value, so only the position is given).
fn check_key(json: &str) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        format!(
            "not a JSON service-account key (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).filter(|s| !s.is_empty());
    if field("client_email").is_none() {
        return Err("the key has no `client_email`".into());
    }
    match field("private_key") {
        Some(k) if k.contains("-----BEGIN PRIVATE KEY-----") => Ok(()),
        Some(_) => Err("the key's `private_key` is not a PKCS#8 PEM key".into()),
        None => Err("the key has no `private_key`".into()),
    }
}
