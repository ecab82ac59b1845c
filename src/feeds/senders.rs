//! The IPs that really send: DMARC's aligned passes for the monitored
//! domains, each IP with its volume and standing (monitored, discovered, not
//! monitored), and the discovered IPs added to a configuration. Pure.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::{Config, DiscoverFrom, TargetConf};
use crate::target::{Target, TargetSpec};

/// One IP seen sending for a domain in DMARC reports (as the store sums it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DmarcSender {
    /// Source IP.
    pub ip: String,
    /// `header_from` domain.
    pub domain: String,
    /// Messages in the window.
    pub messages: u64,
    /// Of which DMARC passed (aligned DKIM or SPF).
    pub passed: u64,
    /// The last day it was seen.
    pub last_day: String,
    /// Reporting organisations.
    pub orgs: Vec<String>,
}

/// A sending IP added to the sweeps by `[discover]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovered {
    /// The IP.
    pub ip: IpAddr,
    /// The monitored domain it sends for.
    pub domain: String,
    /// Which feed revealed it (`dmarc`).
    pub origin: String,
    /// When it was added.
    pub since: i64,
}

/// How a sending IP stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SenderStatus {
    /// A configured target covers it.
    Monitored,
    /// Added to the sweeps by `[discover]`.
    Discovered,
    /// Sends for a monitored domain and nothing checks it.
    NotMonitored,
}

/// One IP sending for a monitored domain, with its standing (page, API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Sender {
    /// What DMARC reports say about it.
    #[serde(flatten)]
    pub seen: DmarcSender,
    /// Its standing.
    pub status: SenderStatus,
    /// For people: "sending for example.com, not monitored".
    pub text: String,
}

/// The domains the configuration monitors (its domain targets).
fn monitored_domains(cfg: &Config) -> Vec<String> {
    cfg.targets
        .iter()
        .filter_map(|t| match &t.spec {
            TargetSpec::Domain(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn for_domain(from: &str, domains: &[String]) -> bool {
    domains.iter().any(|d| {
        from == d
            || from
                .strip_suffix(d.as_str())
                .is_some_and(|p| p.ends_with('.'))
    })
}

/// The IPs that DMARC passed for a monitored domain, each with its standing,
/// most mail first (pure).
pub fn senders(cfg: &Config, seen: Vec<DmarcSender>) -> Vec<Sender> {
    let domains = monitored_domains(cfg);
    seen.into_iter()
        .filter(|s| s.passed > 0 && for_domain(&s.domain, &domains))
        .filter_map(|s| {
            let ip: IpAddr = s.ip.parse().ok()?;
            let t = Target::Ip(crate::target::normalise_ip(ip));
            let covering = cfg.targets.iter().find(|c| c.spec.contains(&t));
            let status = match covering {
                Some(c) if c.discovered.is_some() => SenderStatus::Discovered,
                Some(_) => SenderStatus::Monitored,
                None => SenderStatus::NotMonitored,
            };
            let text = match status {
                SenderStatus::Monitored => format!("sending for {}, monitored", s.domain),
                SenderStatus::Discovered => format!(
                    "sending for {}, swept (discovered from {})",
                    s.domain,
                    covering
                        .and_then(|c| c.discovered.clone())
                        .unwrap_or_default()
                ),
                SenderStatus::NotMonitored => format!("sending for {}, not monitored", s.domain),
            };
            Some(Sender {
                seen: s,
                status,
                text,
            })
        })
        .collect()
}

/// The first day of the discovery window, `YYYY-MM-DD`.
pub fn window_start(cfg: &Config, at: i64) -> String {
    day_of(at - cfg.discover.window.as_secs() as i64)
}

/// The UTC day of a time, `YYYY-MM-DD`.
pub fn day_of(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// `cfg` with the discovered IPs `[discover]` asks for added as targets
/// (those a configured target already covers are left out).
pub fn with_discovered(mut cfg: Config, found: &[Discovered]) -> Config {
    cfg.targets.retain(|t| t.discovered.is_none());
    for d in found {
        let origin_on = match d.origin.as_str() {
            "dmarc" => cfg.discover.from.contains(&DiscoverFrom::Dmarc),
            "snds" => cfg.discover.from.contains(&DiscoverFrom::Snds),
            _ => false,
        };
        let t = Target::Ip(d.ip);
        if !origin_on || cfg.targets.iter().any(|c| c.spec.contains(&t)) {
            continue;
        }
        cfg.targets.push(TargetConf {
            spec: TargetSpec::Ip(d.ip),
            label: Some(format!("discovered: sends for {} ({})", d.domain, d.origin)),
            discovered: Some(d.origin.clone()),
        });
    }
    cfg
}

/// One listing's share of a day's mail.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ListingShare {
    /// The listed IP.
    pub target: String,
    /// The list.
    pub list: String,
    /// Messages that left from the IP that day (DMARC passed).
    pub messages: u64,
    /// Share of the day's mail, in percent.
    pub percent: f64,
}

/// How much of a day's mail left from listed IPs.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ListedShare {
    /// The day (`YYYY-MM-DD`).
    pub day: String,
    /// Messages DMARC reports counted for the monitored domains that day.
    pub total: u64,
    /// Of which from IPs listed now.
    pub listed: u64,
    /// `listed / total` in percent; `None` when no report covers the day.
    pub percent: Option<f64>,
    /// Each listing with the mail it touched, largest first.
    pub by_listing: Vec<ListingShare>,
    /// For people: "3.2 % of yesterday's mail (2026-12-05) left from listed IPs (32 of 1000 messages)".
    pub text: String,
}

/// Weighs listings by mail volume (pure): `day` is yesterday, `volume` its messages per
/// source IP (DMARC passed), `listed` the listed (target, list) pairs.
pub fn listed_share(
    day: &str,
    volume: &[(String, u64)],
    listed: &[(String, String)],
) -> ListedShare {
    let total: u64 = volume.iter().map(|(_, n)| n).sum();
    let of = |ip: &str| {
        volume
            .iter()
            .filter(|(v, _)| v == ip)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let pct = |n: u64| {
        if total == 0 {
            0.0
        } else {
            (n as f64 * 1000.0 / total as f64).round() / 10.0
        }
    };
    let mut ips: Vec<&str> = listed.iter().map(|(t, _)| t.as_str()).collect();
    ips.sort_unstable();
    ips.dedup();
    let listed_n: u64 = ips.iter().map(|ip| of(ip)).sum();
    let mut by_listing: Vec<ListingShare> = listed
        .iter()
        .map(|(t, l)| ListingShare {
            target: t.clone(),
            list: l.clone(),
            messages: of(t),
            percent: pct(of(t)),
        })
        .filter(|s| s.messages > 0)
        .collect();
    by_listing.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.target.cmp(&b.target)));
    let percent = (total > 0).then(|| pct(listed_n));
    let text = match percent {
        Some(p) => format!("{p:.1} % of yesterday's mail ({day}) left from listed IPs ({listed_n} of {total} messages)"),
        None => format!("no DMARC report covers yesterday ({day}): the share of mail from listed IPs is not known"),
    };
    ListedShare {
        day: day.to_string(),
        total,
        listed: listed_n,
        percent,
        by_listing,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_share_weighs_listings_by_mail() {
        let vol = vec![
            ("192.0.2.10".to_string(), 968),
            ("198.51.100.77".to_string(), 32),
        ];
        let listed = vec![
            ("198.51.100.77".to_string(), "bl-test".to_string()),
            ("198.51.100.77".to_string(), "other".to_string()),
            ("203.0.113.5".to_string(), "bl-test".to_string()),
        ];
        let s = listed_share("2026-12-05", &vol, &listed);
        assert_eq!((s.total, s.listed, s.percent), (1000, 32, Some(3.2)));
        assert_eq!(
            s.text,
            "3.2 % of yesterday's mail (2026-12-05) left from listed IPs (32 of 1000 messages)"
        );
        assert_eq!(
            s.by_listing.len(),
            2,
            "a listing of an IP sending nothing touched no mail"
        );
        assert_eq!(s.by_listing[0].percent, 3.2);
        let none = listed_share("2026-12-05", &[], &listed);
        assert_eq!(none.percent, None, "no report is unknown, never 0 %");
    }

    #[test]
    fn subdomains_count_for_their_domain_and_lookalikes_do_not() {
        let d = vec!["example.com".to_string()];
        assert!(for_domain("example.com", &d));
        assert!(for_domain("news.example.com", &d));
        assert!(!for_domain("badexample.com", &d));
    }
}
