//! `[[feeds]]` and `[discover]`: receivers' own data about our mail (DMARC
//! aggregate reports from a Maildir or an IMAP mailbox) and whether the
//! sending IPs they reveal join the sweeps. Plain settings; `feeds` and the
//! daemon act on them.

use std::path::PathBuf;
use std::time::Duration;

use super::raw::RawConfig;
use super::{valid_name, ConfigError, Ctx, Schedule};
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

/// Where discovered sending IPs come from (`[discover] from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoverFrom {
    /// Sources seen in DMARC aggregate reports passing for a monitored domain.
    Dmarc,
    /// Microsoft SNDS (not built yet).
    Snds,
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

/// Validates `[[feeds]]` and `[discover]`.
pub(super) fn validate(
    raw: &RawConfig,
    cx: &Ctx<'_>,
) -> Result<(Vec<FeedConf>, DiscoverConf), ConfigError> {
    let mut feeds: Vec<FeedConf> = Vec::new();
    for (n, f) in raw.feeds.iter().enumerate() {
        let key = format!("feeds[{n}]");
        match f.kind.get_ref().as_str() {
            "dmarc" => {}
            "snds" | "google_postmaster" => {
                return Err(cx.err(
                    f.kind.span(),
                    format!("{key}.kind: only \"dmarc\" feeds are built so far"),
                ))
            }
            other => {
                return Err(cx.err(
                    f.kind.span(),
                    format!("{key}.kind: {other:?} is not a feed kind (dmarc)"),
                ))
            }
        }
        let name = match &f.name {
            Some(s) if valid_name(s.get_ref().trim()) => s.get_ref().trim().to_string(),
            Some(s) => {
                return Err(cx.err(
                    s.span(),
                    format!(
                        "{key}.name: {:?} must be letters, digits, '-' or '_'",
                        s.get_ref()
                    ),
                ))
            }
            None => "dmarc".to_string(),
        };
        if feeds.iter().any(|x| x.name == name) {
            return Err(cx.err(
                f.kind.span(),
                format!("{key}: feed {name:?} is configured twice (give it a different `name`)"),
            ));
        }
        let mailbox = match (&f.maildir, &f.imap) {
            (Some(d), None) => {
                let p = cx.path(d.get_ref());
                DmarcMailbox::Maildir(p)
            }
            (None, Some(i)) => {
                let host = i.host.get_ref().trim().to_string();
                if host.is_empty() {
                    return Err(cx.err(i.host.span(), format!("{key}.imap.host: empty")));
                }
                DmarcMailbox::Imap(ImapConf {
                    tls_name: i
                        .tls_name
                        .as_ref()
                        .map(|s| s.get_ref().trim().to_string())
                        .unwrap_or_else(|| host.clone()),
                    host,
                    port: cx.int(&i.port, &format!("{key}.imap.port"), 993, 1, 65_535)? as u16,
                    user: i.user.get_ref().clone(),
                    password: cx.secret(&i.password, &format!("{key}.imap.password"))?,
                    mailbox: i
                        .mailbox
                        .as_ref()
                        .map(|s| s.get_ref().clone())
                        .unwrap_or_else(|| "INBOX".into()),
                    ca_file: i.ca_file.as_ref().map(|s| cx.path(s.get_ref())),
                })
            }
            _ => {
                return Err(cx.err(
                    f.kind.span(),
                    format!("{key}: a dmarc feed needs exactly one of `maildir` or `imap`"),
                ))
            }
        };
        feeds.push(FeedConf {
            name,
            mailbox,
            interval: cx.schedule(
                &f.interval,
                &format!("{key}.interval"),
                Duration::from_secs(3600),
                Duration::from_secs(1),
            )?,
            timeout: cx.duration(
                &f.timeout,
                &format!("{key}.timeout"),
                Duration::from_secs(60),
                Duration::from_millis(100),
                Duration::from_secs(3600),
            )?,
            max_mail_bytes: cx.int(
                &f.max_mail_bytes,
                &format!("{key}.max_mail_bytes"),
                10 << 20,
                1024,
                1 << 30,
            )? as u64,
            max_report_bytes: cx.int(
                &f.max_report_bytes,
                &format!("{key}.max_report_bytes"),
                32 << 20,
                1024,
                1 << 30,
            )? as u64,
            max_mails: cx.int(&f.max_mails, &format!("{key}.max_mails"), 500, 1, 100_000)? as usize,
        });
    }
    let d = &raw.discover;
    let mut from = Vec::new();
    for f in &d.from {
        match f.get_ref().as_str() {
            "dmarc" => from.push(DiscoverFrom::Dmarc),
            "snds" => {
                return Err(cx.err(
                    f.span(),
                    "discover.from: \"snds\" feeds are not built yet".into(),
                ))
            }
            other => {
                return Err(cx.err(
                    f.span(),
                    format!("discover.from: {other:?} is not a feed kind (dmarc)"),
                ))
            }
        }
    }
    let discover = DiscoverConf {
        from,
        max: cx.int(&d.max, "discover.max", 64, 1, 4096)? as usize,
        window: cx.duration(
            &d.window,
            "discover.window",
            Duration::from_secs(7 * 86_400),
            Duration::from_secs(3600),
            Duration::from_secs(90 * 86_400),
        )?,
    };
    Ok((feeds, discover))
}
