//! `[senders]`: the outbound ledger of the `postfix_log` / `exim_log` sources
//! and its burst thresholds. Plain settings; `mail::ledger`, `senders` and the
//! daemon act on them.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::Ctx;
use super::raw::RawConfig;

/// `[senders]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SendersConf {
    /// Follow the ledger at all. Defaults to true (it costs only a log source).
    pub enabled: bool,
    /// The window the thresholds apply to. Defaults to 10 min (1 s to 1 day).
    pub window: Duration,
    /// An account (SASL login, local uid, relay client) bursts at this many
    /// messages in the window. Defaults to 300.
    pub account_messages: u64,
    /// … or at this many distinct recipients. Defaults to 200.
    pub account_recipients: u64,
    /// An automated class (bounce, autoreply, report, forward) bursts at this
    /// many messages in the window. Defaults to 300.
    pub automated_messages: u64,
    /// … and at least this many times its calm baseline. Defaults to 10.
    pub factor: f64,
    /// Calm reads before a burst clears. Defaults to 3.
    pub clear_after: u32,
    /// Accounts kept per source (in memory and in the stored state); the calm
    /// ones seen longest ago are evicted first. Defaults to 10,000.
    pub max_accounts: usize,
    /// Unauthenticated clients whose mail is relayed, not received (Postfix
    /// `mynetworks`). Defaults to 127.0.0.0/8 and ::1.
    pub mynetworks: Vec<ipnet::IpNet>,
    /// Extra class-rule directories (`*.toml`, tried before the shipped ones).
    pub dirs: Vec<PathBuf>,
}

impl Default for SendersConf {
    fn default() -> Self {
        SendersConf {
            enabled: true,
            window: Duration::from_secs(600),
            account_messages: 300,
            account_recipients: 200,
            automated_messages: 300,
            factor: 10.0,
            clear_after: 3,
            max_accounts: 10_000,
            mynetworks: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
            dirs: Vec::new(),
        }
    }
}

/// Validates `[senders]`; every problem is reported (a bad value is
/// replaced by its default: the config is refused anyway).
pub(super) fn validate(raw: &RawConfig, cx: &Ctx<'_>) -> SendersConf {
    let d = SendersConf::default();
    let s = &raw.senders;
    let window = cx.duration(
        &s.window,
        "senders.window",
        d.window,
        Duration::from_secs(1),
        Duration::from_secs(86_400),
    );
    let n = |v, key, def: u64| cx.int(v, key, def as i64, 1, 100_000_000) as u64;
    let mynetworks = match &s.mynetworks {
        None => d.mynetworks.clone(),
        Some(v) => v
            .iter()
            .filter_map(|m| {
                let net = m.get_ref().trim();
                net.parse::<ipnet::IpNet>()
                    .or_else(|_| net.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        cx.report(
                            m.span(),
                            format!("senders.mynetworks: {net:?} is not an address or CIDR range"),
                        )
                    })
                    .ok()
            })
            .collect(),
    };
    let dirs = s
        .dirs
        .iter()
        .filter_map(|dir| {
            let p = cx.path(dir.get_ref());
            if p.is_dir() {
                Some(p)
            } else {
                cx.report(
                    dir.span(),
                    format!("senders.dirs: {} is not a directory", p.display()),
                );
                None
            }
        })
        .collect();
    SendersConf {
        enabled: s.enabled.as_ref().map_or(d.enabled, |b| *b.get_ref()),
        window,
        account_messages: n(
            &s.account_messages,
            "senders.account_messages",
            d.account_messages,
        ),
        account_recipients: n(
            &s.account_recipients,
            "senders.account_recipients",
            d.account_recipients,
        ),
        automated_messages: n(
            &s.automated_messages,
            "senders.automated_messages",
            d.automated_messages,
        ),
        factor: cx
            .float(&s.factor, "senders.factor", 1.0, 1000.0)
            .unwrap_or(d.factor),
        clear_after: cx.int(
            &s.clear_after,
            "senders.clear_after",
            i64::from(d.clear_after),
            1,
            1000,
        ) as u32,
        max_accounts: cx.int(
            &s.max_accounts,
            "senders.max_accounts",
            d.max_accounts as i64,
            10,
            1_000_000,
        ) as usize,
        mynetworks,
        dirs,
    }
}
