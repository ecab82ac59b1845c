//! Range targets checked as wholes, never address by address.
//!
//! * A mirrored list checks a range (IPv4 up to a /8, IPv6 up to a /32) by
//!   intersection ([`crate::mirror::Mirror::intersect`]): every listing that
//!   overlaps it, as the overlapping sub-ranges. Each listed sub-range is a
//!   pair of its own (keyed by the sub-range, e.g. `198.51.100.0/24`), so its
//!   listing, delisting and events name the part that is listed.
//! * A DNS list cannot be asked about 65,536 /64s of a /48. An IPv6 prefix
//!   target (a /64 or wider) is asked as chosen /64s ([`choose_64s`]): the /64s
//!   known to send (DMARC source IPs, addresses receivers' refusals cite), the
//!   /64s listed before (asked until they read clear), and a random sample of
//!   at most `[daemon] prefix_sample` others, fresh each sweep. A /64 is asked
//!   as the sending address seen in it, or else as its `::1`. Each /64 is a
//!   pair keyed by the /64 (`2001:db8:1200:5::/64`).
//!
//! What was asked and why is kept as a [`RangeReport`] per range (the page
//! and the API show it). The sweep and the store live in the daemon; this
//! module only chooses and asks.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};

use ipnet::{IpNet, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, Outcome};
use crate::target::Target;
use crate::verdict::{Verdict, VerdictKind};

/// Known-sending /64s asked per prefix and list, at most (a bound on queries
/// whatever the reports say).
pub const MAX_KNOWN_64S: usize = 256;

/// Why a /64 of a prefix was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AskReason {
    /// An address in it sends mail (DMARC reports, receivers' refusals).
    KnownSender,
    /// It was listed (or suspected) at the last sweep: asked until it reads clear.
    ListedBefore,
    /// Drawn at random this sweep.
    Sample,
}

/// How a list checked a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// Intersected with the list's mirror: every listing overlapping it.
    Intersection,
    /// Asked through DNS as chosen /64s.
    Dns,
}

/// One /64 chosen for a DNS list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Asked {
    /// The /64.
    pub net: String,
    /// The address asked for it.
    pub address: String,
    /// Why it was chosen.
    pub why: AskReason,
    /// The answer's kind (`listed`, `clear`, `unknown`…).
    pub verdict: String,
}

/// One listed sub-range of a range (or one listed /64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubRange {
    /// The sub-range as a CIDR, or `first-last`: the pair's target.
    pub range: String,
    /// First address.
    pub first: String,
    /// Last address.
    pub last: String,
    /// The answer's codes.
    pub codes: Vec<String>,
    /// Their meanings.
    pub meanings: Vec<String>,
    /// The TXT reasons (remote text, escaped when shown).
    pub txt: Vec<String>,
}

/// What one list said about one range at the last sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListRange {
    /// The list's id.
    pub list: String,
    /// How it was checked.
    pub how: How,
    /// Why it could not be checked (a stale mirror, an unhealthy list).
    pub why: Option<String>,
    /// The listed sub-ranges.
    pub listed: Vec<SubRange>,
    /// The /64s asked (DNS lists only).
    pub asked: Vec<Asked>,
}

/// A range target's last check, per list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RangeReport {
    /// The range as configured.
    pub range: String,
    /// When it was checked (Unix seconds).
    pub at: i64,
    /// Each list that covers it.
    pub lists: Vec<ListRange>,
}

/// One pair a range check yields: its key (a sub-range or a /64), and the
/// outcome (its target stands for the key: the address asked, or the first).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeOutcome {
    /// The pair's target as stored.
    pub key: String,
    /// The answer.
    pub outcome: Outcome,
}

/// A pair key of a range check as an address range: `a/len`, `first-last`,
/// or one address (a pair from before ranges were intersected).
pub fn key_range(key: &str) -> Option<(IpAddr, IpAddr)> {
    if let Ok(a) = key.parse::<IpAddr>() {
        return Some((a, a));
    }
    if let Some((a, b)) = key.split_once('-') {
        let (a, b): (IpAddr, IpAddr) = (a.parse().ok()?, b.parse().ok()?);
        return (a.is_ipv4() == b.is_ipv4()).then_some((a, b));
    }
    let n: IpNet = key.parse().ok()?;
    Some((n.network(), n.broadcast()))
}

/// Whether a pair key lies inside `net`.
pub fn key_in(key: &str, net: &IpNet) -> bool {
    key_range(key).is_some_and(|(a, b)| net.contains(&a) && net.contains(&b))
}

/// A part of a range target checked whole, as named by a delisting request
/// or a re-check (`198.51.104.0/22`, `198.51.100.0-198.51.100.76`, a /64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The pair's key, written as the sweep writes it.
    pub key: String,
    /// Its first address (what stands for it: the delisting link's address).
    pub first: IpAddr,
    /// The configured ranges it lies in, narrowest first.
    pub ranges: Vec<IpNet>,
}

/// `raw` as a part of one of the configured `ranges` (a range itself
/// included); `None` for single targets and for anything outside them. The
/// key is canonical: a CIDR's host bits must be zero, `first-last` is in
/// order, and both are written as [`crate::mirror`] writes its pieces.
pub fn piece(raw: &str, ranges: impl IntoIterator<Item = IpNet>) -> Option<Piece> {
    let raw = raw.trim();
    let key = if let Some((a, b)) = raw.split_once('-') {
        let (a, b): (IpAddr, IpAddr) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if a.is_ipv4() != b.is_ipv4() || a > b {
            return None;
        }
        format!("{a}-{b}")
    } else if raw.contains('/') {
        let n: IpNet = raw.parse().ok()?;
        if n.trunc() != n {
            return None;
        }
        n.to_string()
    } else {
        return None;
    };
    let (first, last) = key_range(&key)?;
    let mut inside: Vec<IpNet> = ranges
        .into_iter()
        .filter(|n| n.contains(&first) && n.contains(&last))
        .collect();
    inside.sort_by_key(|n| std::cmp::Reverse(n.prefix_len()));
    inside.dedup();
    (!inside.is_empty()).then_some(Piece {
        key,
        first,
        ranges: inside,
    })
}

/// [`piece`] among the configuration's range targets.
pub fn piece_of(raw: &str, targets: &[crate::config::TargetConf]) -> Option<Piece> {
    piece(
        raw,
        targets.iter().filter_map(|t| match &t.spec {
            crate::target::TargetSpec::Net(n) => Some(*n),
            _ => None,
        }),
    )
}

/// Whether the address a receiver's refusal cites (`cited`) is the listed
/// target `target` or lies in it (a listed part of a range: `a/len`, `first-last`).
pub fn cites(target: &str, cited: &str) -> bool {
    if cited == target {
        return true;
    }
    let Ok(ip) = cited.trim().parse::<IpAddr>() else {
        return false;
    };
    let ip = crate::target::normalise_ip(ip);
    target.contains(['/', '-'])
        && key_range(target).is_some_and(|(a, b)| a.is_ipv4() == ip.is_ipv4() && a <= ip && ip <= b)
}

/// The /64 holding `a`.
fn net64(a: Ipv6Addr) -> Ipv6Net {
    Ipv6Net::new(a, 64).map_or_else(|_| Ipv6Net::default(), |n| n.trunc())
}

/// The /64s of `prefix` to ask a DNS list: the known senders' (each asked as
/// the first address seen in it; at most [`MAX_KNOWN_64S`]), those listed
/// before, then `sample` others drawn at random (fewer when the prefix holds
/// fewer), each asked as its `::1`. Pure but for the random draw.
pub fn choose_64s(
    prefix: Ipv6Net,
    known: &[IpAddr],
    listed_before: &[Ipv6Net],
    sample: usize,
    rng: &mut fastrand::Rng,
) -> Vec<(Ipv6Net, Ipv6Addr, AskReason)> {
    let mut out: Vec<(Ipv6Net, Ipv6Addr, AskReason)> = Vec::new();
    let mut seen = BTreeSet::new();
    for a in known {
        let IpAddr::V6(a) = a else { continue };
        if out.len() >= MAX_KNOWN_64S {
            break;
        }
        if prefix.contains(a) && seen.insert(net64(*a)) {
            out.push((net64(*a), *a, AskReason::KnownSender));
        }
    }
    let host1 = |n: Ipv6Net| Ipv6Addr::from(u128::from(n.network()) | 1);
    for n in listed_before {
        let n = net64(n.network());
        if prefix.contains(&n.network()) && seen.insert(n) {
            out.push((n, host1(n), AskReason::ListedBefore));
        }
    }
    // the /64s of the prefix are numbered 0..count; draw without repeats
    let bits = 64 - u32::from(prefix.prefix_len());
    let count: u64 = if bits >= 64 { u64::MAX } else { 1u64 << bits };
    let base = u128::from(prefix.network());
    let mut drawn = 0usize;
    let mut tries = 0usize;
    while drawn < sample && (drawn as u64) < count && tries < sample * 8 + 64 {
        tries += 1;
        let i = if count == u64::MAX {
            rng.u64(..)
        } else {
            rng.u64(0..count)
        };
        let n = net64(Ipv6Addr::from(base | (u128::from(i) << 64)));
        if seen.insert(n) {
            out.push((n, host1(n), AskReason::Sample));
            drawn += 1;
        }
    }
    out
}

/// The verdict's details as a sub-range row.
fn sub_range(range: String, first: IpAddr, last: IpAddr, v: &Verdict) -> SubRange {
    let (codes, meanings, txt) = match v {
        Verdict::Listed {
            codes,
            meanings,
            txt,
        } => (
            codes.iter().map(|c| c.to_string()).collect(),
            meanings.clone(),
            txt.clone(),
        ),
        _ => (vec![], vec![], vec![]),
    };
    SubRange {
        range,
        first: first.to_string(),
        last: last.to_string(),
        codes,
        meanings,
        txt,
    }
}

/// A mirrored list's intersection with `net` as pairs: one per listed
/// sub-range. When the mirror cannot answer, one unknown pair keyed by the
/// range itself (and `why` in the report).
pub fn intersect_list(engine: &Engine, li: usize, net: &IpNet) -> (Vec<RangeOutcome>, ListRange) {
    let l = &engine.lists()[li];
    let mut report = ListRange {
        list: l.def.id.clone(),
        how: How::Intersection,
        why: None,
        listed: vec![],
        asked: vec![],
    };
    let mut out = Vec::new();
    let pieces = match engine.intersect_one(li, net) {
        Some(Ok(p)) => p,
        Some(Err(why)) => {
            report.why = Some(why.clone());
            out.push(RangeOutcome {
                key: net.to_string(),
                outcome: Outcome {
                    target: Target::Ip(net.network()),
                    list: li,
                    verdict: Verdict::Unknown { why },
                },
            });
            return (out, report);
        }
        None => return (out, report),
    };
    for (o, v) in pieces {
        let key = o.range();
        if v.kind() == VerdictKind::Listed {
            report
                .listed
                .push(sub_range(key.clone(), o.first, o.last, &v));
        }
        out.push(RangeOutcome {
            key,
            outcome: Outcome {
                target: Target::Ip(o.first),
                list: li,
                verdict: v,
            },
        });
    }
    (out, report)
}

/// Clear pairs for the keys of list `li` that were not clear at the last
/// sweep (`before`) and that no range gave this sweep (`now`): a sub-range
/// the mirror no longer lists, or a pair from before ranges were intersected.
pub fn cleared<'a>(
    li: usize,
    before: impl IntoIterator<Item = &'a String>,
    now: &BTreeSet<&str>,
) -> Vec<RangeOutcome> {
    before
        .into_iter()
        .filter(|k| !now.contains(k.as_str()))
        .filter_map(|k| {
            let (first, _) = key_range(k)?;
            Some(RangeOutcome {
                key: k.clone(),
                outcome: Outcome {
                    target: Target::Ip(first),
                    list: li,
                    verdict: Verdict::Clear,
                },
            })
        })
        .collect()
}

/// Asks a DNS list about the chosen /64s of a prefix (at most `concurrency` at once).
pub async fn ask_64s(
    engine: &Engine,
    li: usize,
    chosen: &[(Ipv6Net, Ipv6Addr, AskReason)],
    concurrency: usize,
) -> (Vec<RangeOutcome>, ListRange) {
    let targets: Vec<Target> = chosen
        .iter()
        .map(|(_, a, _)| Target::Ip(IpAddr::V6(*a)))
        .collect();
    let mut answers: Vec<Verdict> = Vec::with_capacity(targets.len());
    for chunk in targets.chunks(concurrency.max(1)) {
        answers.extend(futures::future::join_all(chunk.iter().map(|t| engine.query(li, t))).await);
    }
    let mut report = ListRange {
        list: engine.lists()[li].def.id.clone(),
        how: How::Dns,
        why: None,
        listed: vec![],
        asked: vec![],
    };
    let mut out = Vec::new();
    for (&(n, a, why), v) in chosen.iter().zip(answers) {
        let key = n.to_string();
        report.asked.push(Asked {
            net: key.clone(),
            address: a.to_string(),
            why,
            verdict: v.kind().as_str().to_string(),
        });
        if v.kind() == VerdictKind::Listed {
            report.listed.push(sub_range(
                key.clone(),
                IpAddr::V6(n.network()),
                IpAddr::V6(n.broadcast()),
                &v,
            ));
        }
        out.push(RangeOutcome {
            key,
            outcome: Outcome {
                target: Target::Ip(IpAddr::V6(a)),
                list: li,
                verdict: v,
            },
        });
    }
    (out, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    #[test]
    fn known_senders_and_listed_64s_come_first_then_a_bounded_sample() {
        let p = n("2001:db8:1200::/48");
        let known: Vec<IpAddr> = [
            "2001:db8:1200:5::25",
            "2001:db8:1200:5::26", // same /64: asked once
            "2001:db8:9999::1",    // outside
            "198.51.100.1",        // IPv4
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let mut rng = fastrand::Rng::with_seed(7);
        let c = choose_64s(p, &known, &[n("2001:db8:1200:9::/64")], 16, &mut rng);
        assert_eq!(c.len(), 18);
        assert_eq!(
            c[0],
            (
                n("2001:db8:1200:5::/64"),
                "2001:db8:1200:5::25".parse().unwrap(),
                AskReason::KnownSender
            )
        );
        assert_eq!(c[1].0, n("2001:db8:1200:9::/64"));
        assert_eq!(c[1].1, "2001:db8:1200:9::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(c[1].2, AskReason::ListedBefore);
        let set: BTreeSet<_> = c.iter().map(|x| x.0).collect();
        assert_eq!(set.len(), 18, "no /64 asked twice");
        assert!(c[2..]
            .iter()
            .all(|x| x.2 == AskReason::Sample && p.contains(&x.1)));
        // a /64 prefix is its only /64; a sample of 0 asks only the known
        let one = choose_64s(n("2001:db8:1:2::/64"), &[], &[], 16, &mut rng);
        assert_eq!(one.len(), 1);
        assert_eq!(choose_64s(p, &known, &[], 0, &mut rng).len(), 1);
        // a /32 draws within itself
        let wide = choose_64s(n("2001:db8::/32"), &[], &[], 256, &mut rng);
        assert_eq!(wide.len(), 256);
        assert!(wide.iter().all(|x| n("2001:db8::/32").contains(&x.1)));
    }

    #[test]
    fn parts_no_range_gave_are_cleared_once() {
        let before: Vec<String> = [
            "198.51.104.0/22",
            "198.51.100.0/24",
            "198.51.100.9",
            "example.com",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let now: BTreeSet<&str> = ["198.51.100.0/24"].into_iter().collect();
        let c = cleared(3, &before, &now);
        let keys: Vec<&str> = c.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["198.51.104.0/22", "198.51.100.9"]);
        assert!(c
            .iter()
            .all(|o| o.outcome.verdict == Verdict::Clear && o.outcome.list == 3));
        assert_eq!(c[0].outcome.target.to_string(), "198.51.104.0");
    }

    #[test]
    fn a_piece_is_named_canonically_inside_its_configured_ranges() {
        let ranges: Vec<IpNet> = ["198.51.96.0/20", "198.51.104.0/24", "2001:db8:1200::/40"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let p = piece(" 198.51.104.0/22 ", ranges.clone()).unwrap();
        assert_eq!(p.key, "198.51.104.0/22");
        assert_eq!(p.first.to_string(), "198.51.104.0");
        assert_eq!(p.ranges, [ranges[0]]);
        let p = piece("198.51.104.0/24", ranges.clone()).unwrap();
        assert_eq!(p.ranges, [ranges[1], ranges[0]], "narrowest first");
        let p = piece("198.51.100.0-198.51.100.76", ranges.clone()).unwrap();
        assert_eq!(p.key, "198.51.100.0-198.51.100.76");
        let p = piece(
            "2001:DB8:1200:6::-2001:db8:1200:ffff:ffff:ffff:ffff:ffff",
            ranges.clone(),
        );
        assert_eq!(
            p.unwrap().key,
            "2001:db8:1200:6::-2001:db8:1200:ffff:ffff:ffff:ffff:ffff"
        );
        assert_eq!(
            piece("198.51.96.0/20", ranges.clone()).unwrap().ranges,
            [ranges[0]]
        );
        for bad in [
            "198.51.104.1/22",            // host bits
            "198.51.100.76-198.51.100.0", // out of order
            "198.51.100.0-2001:db8::1",
            "10.0.0.0/24", // outside every range
            "198.51.100.7",
            "example.com",
            "198.51.96.0/19",
        ] {
            assert_eq!(piece(bad, ranges.clone()), None, "{bad}");
        }
    }

    #[test]
    fn a_cited_address_joins_the_piece_it_lies_in() {
        assert!(cites("198.51.104.0/22", "198.51.104.7"));
        assert!(cites("198.51.100.0-198.51.100.76", "198.51.100.76"));
        assert!(!cites("198.51.100.0-198.51.100.76", "198.51.100.77"));
        assert!(cites("2001:db8:5500:7::/64", "2001:db8:5500:7::25"));
        assert!(!cites("2001:db8:5500:7::/64", "2001:db8:5500:8::25"));
        assert!(cites("198.51.104.0/22", "::ffff:198.51.105.1"));
        assert!(cites("192.0.2.1", "192.0.2.1"));
        assert!(!cites("192.0.2.1", "192.0.2.2"));
        assert!(!cites("example.com", "192.0.2.2"));
        assert!(!cites("198.51.104.0/22", "not an address"));
    }

    #[test]
    fn keys_are_read_back_as_ranges() {
        let net: IpNet = "198.51.96.0/20".parse().unwrap();
        assert!(key_in("198.51.100.0/24", &net));
        assert!(key_in("198.51.100.78-198.51.100.255", &net));
        assert!(!key_in("198.51.100.78-198.51.112.1", &net));
        assert!(!key_in("198.51.100.7", &"10.0.0.0/8".parse().unwrap()));
        assert!(key_in("198.51.100.7", &net));
        assert_eq!(key_range("example.com"), None);
    }
}
