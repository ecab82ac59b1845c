//! What the user asks about: an IP address, a CIDR range or a domain.
//!
//! Parsing is strict because a typo here silently becomes "clear": `999.1.1.1`
//! must not be treated as a domain name, and `10.0.0.0/33` must not be clamped.
//! CIDR ranges expand lazily ([`TargetSpec::targets`]) so a /16 never sits in
//! memory as 65,536 strings.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::Serialize;

/// Number of addresses above which a range needs an explicit opt-in
/// (`--allow-large` / `allow_large = true`): a /16 of IPv4.
pub const LARGE_RANGE: u128 = 65_536;

/// Hard ceiling on the size of a range, even with the opt-in: a /8.
pub const MAX_RANGE: u128 = 1 << 24;

/// The widest IPv6 prefix a configuration may watch as a whole (a /32):
/// never enumerated, it is intersected with mirrored lists and asked of DNS
/// lists as chosen /64s (see `prefixes`).
pub const MAX_PREFIX: u8 = 32;

/// One thing to look up, as the user wrote it (after validation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(into = "String")]
pub enum TargetSpec {
    /// A single address; `::ffff:a.b.c.d` is already normalised to IPv4.
    Ip(IpAddr),
    /// A range; host bits are cleared.
    Net(IpNet),
    /// A domain, lower-cased and IDNA (punycode) encoded, without a trailing dot.
    Domain(String),
}

/// A single lookup key: what one DNS query is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub enum Target {
    /// An address.
    Ip(IpAddr),
    /// A domain (ASCII, lower case).
    Domain(String),
}

/// Why a target string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Empty or whitespace-only input.
    #[error("empty target")]
    Empty,
    /// Looks like an IPv4 address but is not one.
    #[error("invalid IPv4 address {0:?}")]
    BadIpv4(String),
    /// A CIDR that does not parse or whose prefix is too long.
    #[error("invalid CIDR {input:?}: {why}")]
    BadCidr {
        /// What the user wrote.
        input: String,
        /// What is wrong with it.
        why: String,
    },
    /// A range wider than the opt-in threshold.
    #[error("{input} holds {count} addresses; ranges of more than {LARGE_RANGE} need --allow-large (allow_large = true)")]
    TooLarge {
        /// What the user wrote.
        input: String,
        /// How many addresses it covers.
        count: u128,
    },
    /// A range wider than we will ever sweep.
    #[error("{input} holds {count} addresses; rblwatch refuses ranges of more than {MAX_RANGE}")]
    Huge {
        /// What the user wrote.
        input: String,
        /// How many addresses it covers.
        count: u128,
    },
    /// Not a valid host name.
    #[error("invalid domain {input:?}: {why}")]
    BadDomain {
        /// What the user wrote.
        input: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Whether ranges wider than [`LARGE_RANGE`] are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RangePolicy {
    /// Refuse ranges of more than 65,536 addresses (the default).
    #[default]
    Normal,
    /// Accept up to [`MAX_RANGE`] addresses.
    AllowLarge,
}

/// Turns `::ffff:a.b.c.d` into `a.b.c.d`: DNSBLs list the IPv4 form.
pub fn normalise_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

impl TargetSpec {
    /// Parses and validates one target.
    pub fn parse(input: &str, policy: RangePolicy) -> Result<Self, TargetError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(TargetError::Empty);
        }
        if let Some((addr, len)) = s.split_once('/') {
            return parse_net(s, addr, len, policy);
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(TargetSpec::Ip(normalise_ip(ip)));
        }
        if s.contains(':') {
            return Err(TargetError::BadDomain {
                input: s.to_string(),
                why: "not a valid IPv6 address, and ':' is not allowed in a domain".into(),
            });
        }
        parse_domain(s).map(TargetSpec::Domain)
    }

    /// Parses a configured target: like [`TargetSpec::parse`], and an IPv6
    /// prefix from /32 to /64 is accepted as a whole ([`TargetSpec::prefix`]),
    /// which is never enumerated (65,536 /64s in a /48).
    pub fn parse_config(input: &str, policy: RangePolicy) -> Result<Self, TargetError> {
        let s = input.trim();
        if let Some((addr, len)) = s.split_once('/') {
            if let (Ok(IpAddr::V6(ip)), Ok(len)) = (addr.parse::<IpAddr>(), len.parse::<u8>()) {
                if (MAX_PREFIX..=64).contains(&len) && ip.to_ipv4_mapped().is_none() {
                    if let Ok(n) = ipnet::Ipv6Net::new(ip, len) {
                        return Ok(TargetSpec::Net(IpNet::V6(n.trunc())));
                    }
                }
            }
        }
        Self::parse(input, policy)
    }

    /// The IPv6 prefix this spec watches as a whole (a /64 or wider): its
    /// [`TargetSpec::targets`] are none, the sweep chooses its /64s.
    pub fn prefix(&self) -> Option<ipnet::Ipv6Net> {
        match self {
            TargetSpec::Net(IpNet::V6(n)) if n.prefix_len() <= 64 => Some(*n),
            _ => None,
        }
    }

    /// One target standing for the spec (its first address): which lists cover it.
    pub fn representative(&self) -> Target {
        match self {
            TargetSpec::Ip(ip) => Target::Ip(*ip),
            TargetSpec::Net(n) => Target::Ip(n.network()),
            TargetSpec::Domain(d) => Target::Domain(d.clone()),
        }
    }

    /// How many single lookups this spec stands for (a prefix counts as one
    /// target: it is never enumerated).
    pub fn len(&self) -> u128 {
        match self {
            _ if self.prefix().is_some() => 1,
            TargetSpec::Net(n) => net_size(n),
            _ => 1,
        }
    }

    /// Always false: a spec covers at least one target.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The single targets, produced lazily; none for a prefix (a /64 or
    /// wider is checked as a whole, never address by address).
    pub fn targets(&self) -> Box<dyn Iterator<Item = Target> + Send + '_> {
        match self {
            _ if self.prefix().is_some() => Box::new(std::iter::empty()),
            TargetSpec::Ip(ip) => Box::new(std::iter::once(Target::Ip(*ip))),
            TargetSpec::Domain(d) => Box::new(std::iter::once(Target::Domain(d.clone()))),
            TargetSpec::Net(IpNet::V4(n)) => {
                let start = u32::from(n.network());
                let end = u32::from(n.broadcast());
                Box::new((start..=end).map(|v| Target::Ip(IpAddr::V4(Ipv4Addr::from(v)))))
            }
            TargetSpec::Net(IpNet::V6(n)) => {
                let start = u128::from(n.network());
                let end = u128::from(n.broadcast());
                Box::new((start..=end).map(|v| Target::Ip(IpAddr::V6(Ipv6Addr::from(v)))))
            }
        }
    }

    /// Whether `t` is one of the targets of this spec.
    pub fn contains(&self, t: &Target) -> bool {
        match (self, t) {
            (TargetSpec::Ip(a), Target::Ip(b)) => a == b,
            (TargetSpec::Net(n), Target::Ip(b)) => n.contains(b),
            (TargetSpec::Domain(a), Target::Domain(b)) => a == b,
            _ => false,
        }
    }
}

fn net_size(n: &IpNet) -> u128 {
    let bits = u32::from(n.max_prefix_len() - n.prefix_len());
    1u128.checked_shl(bits).unwrap_or(u128::MAX)
}

fn parse_net(
    s: &str,
    addr: &str,
    len: &str,
    policy: RangePolicy,
) -> Result<TargetSpec, TargetError> {
    let bad = |why: String| TargetError::BadCidr {
        input: s.to_string(),
        why,
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| bad(format!("{addr:?} is not an IP address")))?;
    let prefix: u8 = len
        .parse()
        .map_err(|_| bad(format!("prefix length {len:?} is not a number")))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad(format!("prefix length {prefix} exceeds {max}")));
    }
    let net = IpNet::new(ip, prefix)
        .map_err(|e| bad(e.to_string()))?
        .trunc();
    // A single-address range is just that address (and gets the ::ffff: normalisation).
    if prefix == max {
        return Ok(TargetSpec::Ip(normalise_ip(ip)));
    }
    if let IpNet::V6(v6) = net {
        if prefix >= 96 {
            if let Some(v4) = v6.network().to_ipv4_mapped() {
                let v4net = ipnet::Ipv4Net::new(v4, prefix - 96).map_err(|e| bad(e.to_string()))?;
                return check_size(s, IpNet::V4(v4net), policy);
            }
        }
    }
    check_size(s, net, policy)
}

fn check_size(s: &str, net: IpNet, policy: RangePolicy) -> Result<TargetSpec, TargetError> {
    let count = net_size(&net);
    if count > MAX_RANGE {
        return Err(TargetError::Huge {
            input: s.to_string(),
            count,
        });
    }
    if count > LARGE_RANGE && policy == RangePolicy::Normal {
        return Err(TargetError::TooLarge {
            input: s.to_string(),
            count,
        });
    }
    Ok(TargetSpec::Net(net))
}

/// Lower-cases, IDNA-encodes and validates a host name.
pub fn parse_domain(s: &str) -> Result<String, TargetError> {
    let bad = |why: &str| TargetError::BadDomain {
        input: s.to_string(),
        why: why.to_string(),
    };
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    if trimmed.is_empty() {
        return Err(bad("empty name"));
    }
    let labels: Vec<&str> = trimmed.split('.').collect();
    if labels
        .iter()
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        && labels.len() == 4
    {
        return Err(TargetError::BadIpv4(s.to_string()));
    }
    let ascii = idna::domain_to_ascii(trimmed).map_err(|_| bad("IDNA encoding failed"))?;
    let ascii = ascii.to_ascii_lowercase();
    if ascii.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("needs at least two labels (e.g. example.com)"));
    }
    for l in &labels {
        if l.is_empty() {
            return Err(bad("empty label"));
        }
        if l.len() > 63 {
            return Err(bad("a label is longer than 63 characters"));
        }
        if !l
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("only letters, digits, '-' and '_' are allowed"));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err(bad("a label starts or ends with '-'"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(TargetError::BadIpv4(s.to_string()));
    }
    Ok(ascii)
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Ip(ip) => write!(f, "{ip}"),
            TargetSpec::Net(n) => write!(f, "{n}"),
            TargetSpec::Domain(d) => f.write_str(d),
        }
    }
}

impl From<TargetSpec> for String {
    fn from(t: TargetSpec) -> String {
        t.to_string()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ip(ip) => write!(f, "{ip}"),
            Target::Domain(d) => f.write_str(d),
        }
    }
}

impl From<Target> for String {
    fn from(t: Target) -> String {
        t.to_string()
    }
}

impl Target {
    /// Parses a single target (no ranges).
    pub fn parse(s: &str) -> Result<Self, TargetError> {
        match TargetSpec::parse(s, RangePolicy::Normal)? {
            TargetSpec::Ip(ip) => Ok(Target::Ip(ip)),
            TargetSpec::Domain(d) => Ok(Target::Domain(d)),
            TargetSpec::Net(n) => Err(TargetError::BadCidr {
                input: n.to_string(),
                why: "a range is not a single target".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<TargetSpec, TargetError> {
        TargetSpec::parse(s, RangePolicy::Normal)
    }

    #[test]
    fn ips_and_mapped_ipv6() {
        assert_eq!(
            p("192.0.2.1"),
            Ok(TargetSpec::Ip("192.0.2.1".parse().unwrap()))
        );
        assert_eq!(
            p("::ffff:192.0.2.1"),
            Ok(TargetSpec::Ip("192.0.2.1".parse().unwrap()))
        );
        assert_eq!(
            p("2001:DB8::1"),
            Ok(TargetSpec::Ip("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(
            p(" 10.0.0.1 "),
            Ok(TargetSpec::Ip("10.0.0.1".parse().unwrap()))
        );
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            p("999.1.1.1"),
            Err(TargetError::BadIpv4("999.1.1.1".into()))
        );
        assert!(matches!(p("10.0.0.0/33"), Err(TargetError::BadCidr { .. })));
        assert!(matches!(p("10.0.0.0/x"), Err(TargetError::BadCidr { .. })));
        assert!(matches!(
            p("2001:db8::/129"),
            Err(TargetError::BadCidr { .. })
        ));
        assert_eq!(p(""), Err(TargetError::Empty));
        assert_eq!(p("   "), Err(TargetError::Empty));
        assert!(matches!(p("."), Err(TargetError::BadDomain { .. })));
        assert!(matches!(
            p("exa mple.com"),
            Err(TargetError::BadDomain { .. })
        ));
        assert!(matches!(
            p("example..com"),
            Err(TargetError::BadDomain { .. })
        ));
        assert!(matches!(p("localhost"), Err(TargetError::BadDomain { .. })));
        assert!(matches!(p("1.2.3"), Err(TargetError::BadIpv4(_))));
        assert!(matches!(p("gggg::1"), Err(TargetError::BadDomain { .. })));
    }

    #[test]
    fn domains_are_lowercased_and_idna_encoded() {
        assert_eq!(
            p("Example.COM."),
            Ok(TargetSpec::Domain("example.com".into()))
        );
        assert_eq!(
            p("bücher.example"),
            Ok(TargetSpec::Domain("xn--bcher-kva.example".into()))
        );
    }

    #[test]
    fn ranges_expand_lazily_and_need_opt_in_when_large() {
        let n = p("198.51.100.7/30").unwrap();
        let v: Vec<String> = n.targets().map(|t| t.to_string()).collect();
        assert_eq!(
            v,
            [
                "198.51.100.4",
                "198.51.100.5",
                "198.51.100.6",
                "198.51.100.7"
            ]
        );
        assert_eq!(p("10.0.0.0/16").unwrap().len(), 65_536);
        assert!(matches!(
            p("10.0.0.0/15"),
            Err(TargetError::TooLarge { .. })
        ));
        assert!(TargetSpec::parse("10.0.0.0/15", RangePolicy::AllowLarge).is_ok());
        assert!(matches!(
            TargetSpec::parse("10.0.0.0/7", RangePolicy::AllowLarge),
            Err(TargetError::Huge { .. })
        ));
        assert!(matches!(p("2001:db8::/64"), Err(TargetError::Huge { .. })));
        assert!(matches!(
            p("2001:db8::/111"),
            Err(TargetError::TooLarge { .. })
        ));
        assert_eq!(p("2001:db8::/112").unwrap().len(), 65_536);
        assert_eq!(p("2001:db8::/126").unwrap().targets().count(), 4);
        // a /32 is a single address
        assert_eq!(
            p("192.0.2.9/32"),
            Ok(TargetSpec::Ip("192.0.2.9".parse().unwrap()))
        );
        // IPv4-mapped ranges become IPv4 ranges
        assert_eq!(p("::ffff:10.1.2.0/120").unwrap().to_string(), "10.1.2.0/24");
        // a configured IPv6 prefix from /32 to /64 is watched whole, never enumerated
        let pre = TargetSpec::parse_config("2001:db8:1200:5::1/48", RangePolicy::Normal).unwrap();
        assert_eq!(pre.to_string(), "2001:db8:1200::/48");
        assert_eq!(pre.prefix().map(|n| n.prefix_len()), Some(48));
        assert_eq!((pre.len(), pre.targets().count()), (1, 0));
        assert_eq!(pre.representative().to_string(), "2001:db8:1200::");
        assert!(TargetSpec::parse_config("2001:db8::/31", RangePolicy::AllowLarge).is_err());
        assert!(TargetSpec::parse_config("2001:db8::/80", RangePolicy::AllowLarge).is_err());
        assert!(
            p("2001:db8::/48").is_err(),
            "the command line still refuses it"
        );
        // a /16 iterator does not allocate the range up front
        let spec = TargetSpec::parse("10.9.0.0/16", RangePolicy::Normal).unwrap();
        let mut it = spec.targets().skip(65_535);
        assert_eq!(
            it.next().map(|t| t.to_string()),
            Some("10.9.255.255".into())
        );
    }
}
