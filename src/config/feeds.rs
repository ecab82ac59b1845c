//! `[[feeds]]` and `[discover]`: receivers' own data about our mail (DMARC
//! aggregate reports from a Maildir or an IMAP mailbox) and whether the
//! sending IPs they reveal join the sweeps. Plain settings; `feeds` and the
//! daemon act on them.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::Ctx;
use super::raw::{RawConfig, RawFeed};
use super::Schedule;
use crate::secret::Secret;

/// Where DMARC reports arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum DmarcMailbox {
    /// A Maildir directory (`new/` and `cur/` are read; nothing is moved or deleted).
    Maildir(PathBuf),
    /// An IMAP mailbox over TLS (implicit TLS, port 993 by default; read with
    /// `BODY.PEEK[]`, so nothing is marked read, moved or deleted).
    Imap(ImapConf),
}

/// An IMAP mailbox (`imap = { ... }`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImapConf {
    /// Server host name or address.
    pub host: String,
    /// Port. Defaults to 993.
    pub port: u16,
    /// Login.
    pub user: String,
    /// Password: a secret (`env:NAME`, `file:/path` or literal), never printed or stored.
    pub password: Secret,
    /// Mailbox. Defaults to `INBOX`.
    pub mailbox: String,
    /// Extra trusted CA certificates (PEM), beside the Web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// The name the certificate must carry. Defaults to `host`.
    pub tls_name: String,
}

/// A configured feed (`[[feeds]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedConf {
    /// Name (events, pages). Defaults to the kind's name.
    pub name: String,
    /// Where the reports arrive.
    pub mailbox: DmarcMailbox,
    /// How often. Defaults to every 1 h (at least 1 s).
    pub interval: Schedule,
    /// Time allowed for one read. Defaults to 60 s.
    pub timeout: Duration,
    /// The largest mail read; a larger one is rejected as oversized. Defaults to 10 MiB.
    pub max_mail_bytes: u64,
    /// The largest report once inflated (zip bombs stop here). Defaults to 32 MiB.
    pub max_report_bytes: u64,
    /// The most new mails read per run (the rest wait for the next). Defaults to 500.
    pub max_mails: usize,
}

crate::spelling::closed_set! {
    /// Where discovered sending IPs come from (`[discover] from`).
    pub enum DiscoverFrom {
        /// Sources seen in DMARC aggregate reports passing for a monitored domain.
        Dmarc = "dmarc",
        /// Microsoft SNDS: the IPs its data export shows sending.
        Snds = "snds",
    }
}

/// `[discover]`: sweep the sending IPs the feeds reveal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiscoverConf {
    /// Which feeds add targets. Defaults to none: unmonitored senders are only shown.
    pub from: Vec<DiscoverFrom>,
    /// The most IPs added. Defaults to 64 (1 to 4,096).
    pub max: usize,
    /// How far back a sender counts. Defaults to 7 days.
    pub window: Duration,
}

/// Validates `[[feeds]]` and `[discover]`; every problem is reported (a
/// feed with one is left out: the config is refused anyway).
pub(super) fn validate(raw: &RawConfig, cx: &Ctx<'_>) -> (Vec<FeedConf>, DiscoverConf) {
    let mut feeds: Vec<FeedConf> = Vec::new();
    for (n, f) in &raw.feeds {
        if let Some(feed) = feed(&format!("feeds[{n}]"), f, &feeds, cx) {
            feeds.push(feed);
        }
    }
    (feeds, discover(raw, cx))
}

/// Refuses the settings of `[[feeds]]` entry `key` that belong to other
/// kinds than `kind`. One table for every kind: the feeds share one TOML shape,
/// so without it a DMARC feed took an SNDS `key` silently.
pub(super) fn refuse_foreign_settings(key: &str, kind: &str, f: &RawFeed, cx: &Ctx<'_>) {
    const DMARC: &[&str] = &["dmarc"];
    const SNDS: &[&str] = &["snds"];
    const GOOGLE: &[&str] = &["google_postmaster"];
    const HTTPS: &[&str] = &["snds", "google_postmaster"];
    let settings: [(&str, bool, &[&str]); 15] = [
        ("maildir", f.maildir.is_some(), DMARC),
        ("imap", f.imap.is_some(), DMARC),
        ("max_mail_bytes", f.max_mail_bytes.is_some(), DMARC),
        ("max_report_bytes", f.max_report_bytes.is_some(), DMARC),
        ("max_mails", f.max_mails.is_some(), DMARC),
        ("key", f.key.is_some(), SNDS),
        ("base_url", f.base_url.is_some(), SNDS),
        ("max_body_bytes", f.max_body_bytes.is_some(), HTTPS),
        ("days", f.days.is_some(), HTTPS),
        ("ca_file", f.ca_file.is_some(), HTTPS),
        ("service_account", f.service_account.is_some(), GOOGLE),
        ("domains", f.domains.is_some(), GOOGLE),
        ("token_url", f.token_url.is_some(), GOOGLE),
        ("api_url", f.api_url.is_some(), GOOGLE),
        ("scopes", f.scopes.is_some(), GOOGLE),
    ];
    for (field, set, kinds) in settings {
        if set && !kinds.contains(&kind) {
            cx.report(
                f.kind.span(),
                format!(
                    "{key}.{field}: not a setting of a {kind} feed (only of {})",
                    kinds.join(", ")
                ),
            );
        }
    }
}

/// A feed's `timeout`, the same for every kind: 60 s by default.
pub(super) fn timeout(key: &str, f: &RawFeed, cx: &Ctx<'_>) -> Duration {
    cx.duration(
        &f.timeout,
        &format!("{key}.timeout"),
        Duration::from_secs(60),
        Duration::from_millis(100),
        Duration::from_secs(3600),
    )
}

/// One `[[feeds]]` entry.
fn feed(key: &str, f: &RawFeed, seen: &[FeedConf], cx: &Ctx<'_>) -> Option<FeedConf> {
    match f.kind.get_ref().as_str() {
        "dmarc" => refuse_foreign_settings(key, "dmarc", f, cx),
        // validated by config::snds and config::postmaster into their own lists
        "snds" | "google_postmaster" => return None,
        other => {
            cx.report(
                f.kind.span(),
                format!(
                    "{key}.kind: {other:?} is not a feed kind (dmarc, snds, google_postmaster)"
                ),
            );
            return None;
        }
    }
    let name = cx
        .entry_name(&f.name, key)
        .ok()?
        .unwrap_or_else(|| "dmarc".to_string());
    if seen.iter().any(|x| x.name == name) {
        cx.report(
            f.kind.span(),
            format!("{key}: feed {name:?} is configured twice (give it a different `name`)"),
        );
        return None;
    }
    let mailbox = mailbox(key, f, cx);
    let interval = cx.schedule(
        &f.interval,
        &format!("{key}.interval"),
        Duration::from_secs(3600),
        Duration::from_secs(1),
    );
    Some(FeedConf {
        name,
        mailbox: mailbox?,
        interval,
        timeout: timeout(key, f, cx),
        max_mail_bytes: cx.int(
            &f.max_mail_bytes,
            &format!("{key}.max_mail_bytes"),
            10 << 20,
            1024,
            1 << 30,
        ) as u64,
        max_report_bytes: cx.int(
            &f.max_report_bytes,
            &format!("{key}.max_report_bytes"),
            32 << 20,
            1024,
            1 << 30,
        ) as u64,
        max_mails: cx.int(&f.max_mails, &format!("{key}.max_mails"), 500, 1, 100_000) as usize,
    })
}

/// Where a DMARC feed's reports arrive: exactly one of `maildir` or `imap`.
fn mailbox(key: &str, f: &RawFeed, cx: &Ctx<'_>) -> Option<DmarcMailbox> {
    match (&f.maildir, &f.imap) {
        (Some(d), None) => Some(DmarcMailbox::Maildir(cx.path(d.get_ref()))),
        (None, Some(i)) => {
            let host = i.host.get_ref().trim().to_string();
            if host.is_empty() {
                cx.report(i.host.span(), format!("{key}.imap.host: empty"));
                return None;
            }
            let port = cx.int(&i.port, &format!("{key}.imap.port"), 993, 1, 65_535) as u16;
            let password = cx.secret(&i.password, &format!("{key}.imap.password"));
            Some(DmarcMailbox::Imap(ImapConf {
                tls_name: i
                    .tls_name
                    .as_ref()
                    .map(|s| s.get_ref().trim().to_string())
                    .unwrap_or_else(|| host.clone()),
                host,
                port,
                user: i.user.get_ref().clone(),
                password: password?,
                mailbox: i
                    .mailbox
                    .as_ref()
                    .map(|s| s.get_ref().clone())
                    .unwrap_or_else(|| "INBOX".into()),
                ca_file: i.ca_file.as_ref().map(|s| cx.path(s.get_ref())),
            }))
        }
        _ => {
            cx.report(
                f.kind.span(),
                format!("{key}: a dmarc feed needs exactly one of `maildir` or `imap`"),
            );
            None
        }
    }
}

/// `[discover]`.
fn discover(raw: &RawConfig, cx: &Ctx<'_>) -> DiscoverConf {
    let d = &raw.discover;
    let mut from = Vec::new();
    for f in &d.from {
        match DiscoverFrom::parse(f.get_ref()) {
            Some(k) => from.push(k),
            None => cx.report(
                f.span(),
                format!(
                    "discover.from: {:?} is not a feed kind that reveals senders ({})",
                    f.get_ref(),
                    DiscoverFrom::NAMES.join(", ")
                ),
            ),
        }
    }
    DiscoverConf {
        from,
        max: cx.int(&d.max, "discover.max", 64, 1, 4096) as usize,
        window: cx.duration(
            &d.window,
            "discover.window",
            Duration::from_secs(7 * 86_400),
            Duration::from_secs(3600),
            Duration::from_secs(90 * 86_400),
        ),
    }
}
