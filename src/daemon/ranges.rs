//! A sweep's range targets as wholes ([`crate::prefixes`]): each range
//! intersected with every mirrored list, each IPv6 prefix asked of every DNS
//! list as chosen /64s. Their pairs go through the same per-pair rule as the
//! sweep's others; what was asked is kept as `ranges:last` for the pages.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv6Net};

use super::{Memory, Runtime};
use crate::health::ListHealth;
use crate::prefixes::{self, ListRange, RangeOutcome, RangeReport};
use crate::store::{self, Store};
use crate::target::{Target, TargetSpec};
use crate::verdict::Verdict;

/// How far back the sending addresses are read (DMARC reports, refusals citing them).
const KNOWN_FOR_DAYS: i64 = 30;

/// What the range targets gave this sweep.
#[derive(Default)]
pub(super) struct RangeSweep {
    /// Their pairs, keyed by sub-range or /64.
    pub outcomes: Vec<RangeOutcome>,
    /// Per range target, what each list said.
    pub reports: BTreeMap<String, RangeReport>,
}

/// The addresses known to send: DMARC source IPs, and the monitored
/// addresses receivers' refusals cite (mail log sources), most mail first.
async fn known_senders(store: &Store, at: i64) -> Vec<IpAddr> {
    let since = at - KNOWN_FOR_DAYS * 86_400;
    let day = crate::feeds::senders::day_of(since);
    let read = store
        .call(move |c| {
            let mut ips: Vec<String> = store::dmarc_senders(c, &day)?
                .into_iter()
                .map(|s| s.ip)
                .collect();
            ips.extend(
                store::rejections_since(c, since)?
                    .into_iter()
                    .filter_map(|r| r.rejection.cited),
            );
            Ok(ips)
        })
        .await;
    match read {
        Ok(ips) => ips.iter().filter_map(|s| s.parse().ok()).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "range targets: sending addresses not read; only the sample is asked");
            vec![]
        }
    }
}

/// Checks every range target against the due lists that cover it.
pub(super) async fn sweep(
    rt: &Runtime,
    store: &Store,
    mem: &Memory,
    health: &[ListHealth],
    due: &[bool],
    at: i64,
) -> RangeSweep {
    let engine = &rt.engine;
    let nets: Vec<IpNet> = rt
        .cfg
        .targets
        .iter()
        .filter_map(|t| match &t.spec {
            TargetSpec::Net(n) => Some(*n),
            _ => None,
        })
        .collect();
    let mut out = RangeSweep::default();
    if nets.is_empty() {
        return out;
    }
    let has_prefix = nets
        .iter()
        .any(|n| matches!(n, IpNet::V6(p) if p.prefix_len() <= 64));
    let known = if has_prefix {
        known_senders(store, at).await
    } else {
        vec![]
    };
    // single targets inside a range keep their own pairs (the sweep asks them)
    let singles: std::collections::BTreeSet<String> = rt
        .cfg
        .targets
        .iter()
        .filter(|t| !matches!(t.spec, TargetSpec::Net(_)))
        .map(|t| t.spec.to_string())
        .collect();
    // (list, its pairs in a range it intersected) for the parts gone since
    let mut intersected: Vec<(usize, Vec<String>)> = Vec::new();
    let mut rng = fastrand::Rng::new();
    let sample = rt.cfg.daemon.prefix_sample as usize;
    for net in nets {
        let rep = Target::Ip(net.network());
        let mut lists: Vec<ListRange> = Vec::new();
        let mut dns_jobs = Vec::new();
        for (li, l) in engine.lists().iter().enumerate() {
            if !due.get(li).copied().unwrap_or(true) || !l.def.kind.accepts(&rep) {
                continue;
            }
            let id = &l.def.id;
            let before = |only64: bool| -> Vec<String> {
                mem.pairs
                    .keys()
                    .filter(|(t, list)| list == id && !singles.contains(t.as_str()))
                    .filter(|(t, _)| prefixes::key_in(t, &net) && *t != net.to_string())
                    .filter(|(t, _)| !only64 || t.ends_with("/64"))
                    .map(|(t, _)| t.clone())
                    .collect()
            };
            let not_checked = match health.get(li) {
                Some(h) if !h.is_healthy() => {
                    Some(format!("not checked: the list is {}", h.name()))
                }
                _ => None,
            };
            if l.mirror().is_some() {
                if let Some(why) = not_checked {
                    lists.push(unchecked(
                        &mut out.outcomes,
                        li,
                        id,
                        &net,
                        why,
                        prefixes::How::Intersection,
                    ));
                    continue;
                }
                let (o, r) = prefixes::intersect_list(engine, li, &net);
                if r.why.is_none() {
                    intersected.push((li, before(false)));
                    answered(&mut out.outcomes, mem, li, id, &net);
                }
                out.outcomes.extend(o);
                lists.push(r);
            } else if let IpNet::V6(p) = net {
                if p.prefix_len() > 64 {
                    continue; // a small IPv6 range: enumerated by the sweep
                }
                let down =
                    not_checked.or_else(|| l.ipv6_down().map(|w| format!("not queried: {w}")));
                if let Some(why) = down {
                    lists.push(unchecked(
                        &mut out.outcomes,
                        li,
                        id,
                        &net,
                        why,
                        prefixes::How::Dns,
                    ));
                    continue;
                }
                let listed: Vec<Ipv6Net> =
                    before(true).iter().filter_map(|k| k.parse().ok()).collect();
                let chosen = prefixes::choose_64s(p, &known, &listed, sample, &mut rng);
                answered(&mut out.outcomes, mem, li, id, &net);
                dns_jobs.push((li, chosen));
            }
        }
        let per = 16;
        let asked = futures::future::join_all(
            dns_jobs
                .iter()
                .map(|(li, chosen)| prefixes::ask_64s(engine, *li, chosen, per)),
        )
        .await;
        for (o, r) in asked {
            out.outcomes.extend(o);
            lists.push(r);
        }
        if !lists.is_empty() {
            out.reports.insert(
                net.to_string(),
                RangeReport {
                    range: net.to_string(),
                    at,
                    lists,
                },
            );
        }
    }
    finish(out, intersected)
}

/// Clears the parts no range gave this sweep (once, however many ranges
/// overlap) and keeps one outcome per pair: ranges that overlap give some
/// parts twice.
fn finish(mut out: RangeSweep, intersected: Vec<(usize, Vec<String>)>) -> RangeSweep {
    let mut seen = std::collections::BTreeSet::new();
    out.outcomes
        .retain(|o| seen.insert((o.key.clone(), o.outcome.list)));
    let mut gone = Vec::new();
    for (li, before) in &intersected {
        let now: std::collections::BTreeSet<&str> = out
            .outcomes
            .iter()
            .filter(|o| o.outcome.list == *li)
            .map(|o| o.key.as_str())
            .collect();
        for o in prefixes::cleared(*li, before, &now) {
            if seen.insert((o.key.clone(), *li)) {
                gone.push(o);
            }
        }
    }
    out.outcomes.extend(gone);
    out
}

/// A list checks the range again after it could not: the range's own
/// unchecked mark goes (a clear answer for the range itself clears it).
fn answered(outcomes: &mut Vec<RangeOutcome>, mem: &Memory, li: usize, id: &str, net: &IpNet) {
    if mem.unchecked.contains(&(net.to_string(), id.to_string())) {
        outcomes.push(RangeOutcome {
            key: net.to_string(),
            outcome: crate::engine::Outcome {
                target: Target::Ip(net.network()),
                list: li,
                verdict: Verdict::Clear,
            },
        });
    }
}

/// A list that could not check the range: one unknown pair keyed by the range.
fn unchecked(
    outcomes: &mut Vec<RangeOutcome>,
    li: usize,
    id: &str,
    net: &IpNet,
    why: String,
    how: prefixes::How,
) -> ListRange {
    outcomes.push(RangeOutcome {
        key: net.to_string(),
        outcome: crate::engine::Outcome {
            target: Target::Ip(net.network()),
            list: li,
            verdict: Verdict::Unknown { why: why.clone() },
        },
    });
    ListRange {
        list: id.to_string(),
        how,
        why: Some(why),
        listed: vec![],
        asked: vec![],
    }
}
