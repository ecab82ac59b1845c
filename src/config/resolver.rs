//! `[resolver]`: where DNSBL queries go and how patiently.

use std::net::SocketAddr;
use std::time::Duration;

use super::ctx::Ctx;
use super::raw::RawResolver;

/// Where queries go.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolverConf {
    /// Name servers; empty means "the system's" (`/etc/resolv.conf`): the key
    /// left out, since `nameservers = []` is refused.
    pub nameservers: Vec<SocketAddr>,
    /// A second, independent resolver that confirms new listings at once. Defaults to none.
    pub confirm_with: Vec<SocketAddr>,
    /// Per-attempt timeout. Defaults to 2 s (50 ms to 60 s).
    pub timeout: Duration,
    /// Extra attempts. Defaults to 1 (0 to 10).
    pub retries: u32,
    /// Queries in flight over all lists. Defaults to 64 (1 to 4,096).
    pub concurrency: usize,
    /// Where queries go. Defaults to [`ResolverMode::Recursive`].
    pub mode: ResolverMode,
    /// Root servers for finding the lists' servers in direct mode. Defaults to
    /// the IANA root servers ([`ROOT_SERVERS`]); tests point them at a local root.
    pub root_hints: Vec<SocketAddr>,
}

/// How queries reach the lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolverMode {
    /// Through a recursive resolver: `nameservers`, else the system's (the default).
    #[default]
    Recursive,
    /// Straight to each list's authoritative servers, found by rblwatch itself
    /// from the root (no recursive resolver, so no public-resolver refusals).
    Direct,
}

/// The IANA root servers (a.root-servers.net … m.), IPv4: the default root hints.
pub const ROOT_SERVERS: &[&str] = &[
    "198.41.0.4",
    "170.247.170.2",
    "192.33.4.12",
    "199.7.91.13",
    "192.203.230.10",
    "192.5.5.241",
    "192.112.36.4",
    "198.97.190.53",
    "192.36.148.17",
    "192.58.128.30",
    "193.0.14.129",
    "199.7.83.42",
    "202.12.27.33",
];

/// Parses `ip`, `ip:port` or `[ipv6]:port` (port 53 by default).
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "{s:?} is not an address (ip, ip:port or [ipv6]:port)"
    ))
}

/// The system's name servers (`/etc/resolv.conf`), via hickory-resolver.
pub fn system_nameservers() -> Result<Vec<SocketAddr>, String> {
    let (conf, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?;
    let mut out: Vec<SocketAddr> = Vec::new();
    for ns in conf.name_servers() {
        let port = ns.connections.first().map_or(53, |c| c.port);
        let sa = SocketAddr::new(ns.ip, port);
        if !out.contains(&sa) {
            out.push(sa);
        }
    }
    if out.is_empty() {
        return Err("the system resolver configuration names no name server".into());
    }
    Ok(out)
}

pub(super) fn validate(r: &RawResolver, cx: &Ctx<'_>) -> ResolverConf {
    let servers = |v: &[toml::Spanned<String>], key: &str| -> Vec<SocketAddr> {
        v.iter()
            .filter_map(|s| {
                parse_server(s.get_ref())
                    .map_err(|m| cx.report(s.span(), format!("resolver.{key}: {m}")))
                    .ok()
            })
            .collect()
    };
    let nameservers = match &r.nameservers {
        Some(v) if v.get_ref().is_empty() => {
            // `[]` reads as "none" but would quietly mean "the system's"
            cx.report(
                v.span(),
                "resolver.nameservers: the list is empty: omit the key for the system resolver (/etc/resolv.conf)".into(),
            );
            Vec::new()
        }
        Some(v) => servers(v.get_ref(), "nameservers"),
        None => Vec::new(),
    };
    let mode = match &r.mode {
        None => ResolverMode::Recursive,
        Some(m) => match m.get_ref().trim() {
            "recursive" => ResolverMode::Recursive,
            "direct" => ResolverMode::Direct,
            other => {
                cx.report(
                    m.span(),
                    format!("resolver.mode: {other:?} is not \"recursive\" or \"direct\""),
                );
                ResolverMode::Recursive
            }
        },
    };
    ResolverConf {
        nameservers,
        confirm_with: servers(
            r.confirm_with.as_deref().unwrap_or_default(),
            "confirm_with",
        ),
        timeout: cx.duration(
            &r.timeout,
            "resolver.timeout",
            Duration::from_secs(2),
            Duration::from_millis(50),
            Duration::from_secs(60),
        ),
        retries: cx.int(&r.retries, "resolver.retries", 1, 0, 10) as u32,
        concurrency: cx.int(&r.concurrency, "resolver.concurrency", 64, 1, 4096) as usize,
        mode,
        root_hints: match &r.root_hints {
            Some(v) => servers(v, "root_hints"),
            None => ROOT_SERVERS
                .iter()
                .filter_map(|s| parse_server(s).ok())
                .collect(),
        },
    }
}
