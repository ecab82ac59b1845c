//! A sweep's range targets as wholes ([`crate::prefixes`]): each range
//! intersected with every mirrored list, each IPv6 prefix asked of every DNS
//! list as chosen /64s. Their pairs go through the same per-pair rule as the
//! sweep's others; what was asked is kept as `ranges:last` for the pages.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::{IpNet, Ipv6Net};

use super::{Memory, Runtime};
use crate::health::ListHealth;
use crate::prefixes::{self, How, ListRange, RangeOutcome, RangeReport};
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

/// DNS queries in flight per list for one prefix's /64s.
const PER_LIST: usize = 16;

/// One sweep's range check: its fixed inputs and what it found so far.
struct Check<'a> {
    rt: &'a Runtime,
    mem: &'a Memory,
    health: &'a [ListHealth],
    due: &'a [bool],
    /// Addresses known to send (read only when there is a prefix).
    known: Vec<IpAddr>,
    /// Single targets: inside a range they keep their own pairs (the sweep asks them).
    singles: BTreeSet<String>,
    rng: fastrand::Rng,
    out: RangeSweep,
    /// (list, its pairs in a range it intersected) for the parts gone since.
    intersected: Vec<(usize, Vec<String>)>,
    /// Clear answers for ranges checked again after they could not be
    /// (added last: a real answer for the same key wins).
    late: Vec<RangeOutcome>,
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
    let nets: Vec<IpNet> = rt
        .cfg
        .targets
        .iter()
        .filter_map(|t| match &t.spec {
            TargetSpec::Net(n) => Some(*n),
            _ => None,
        })
        .collect();
    if nets.is_empty() {
        return RangeSweep::default();
    }
    let has_prefix = nets
        .iter()
        .any(|n| matches!(n, IpNet::V6(p) if p.prefix_len() <= 64));
    let mut c = Check {
        rt,
        mem,
        health,
        due,
        known: if has_prefix {
            known_senders(store, at).await
        } else {
            vec![]
        },
        singles: rt
            .cfg
            .targets
            .iter()
            .filter(|t| !matches!(t.spec, TargetSpec::Net(_)))
            .map(|t| t.spec.to_string())
            .collect(),
        rng: fastrand::Rng::new(),
        out: RangeSweep::default(),
        intersected: vec![],
        late: vec![],
    };
    for net in nets {
        let lists = c.range(net).await;
        if !lists.is_empty() {
            let range = net.to_string();
            c.out
                .reports
                .insert(range.clone(), RangeReport { range, at, lists });
        }
    }
    c.finish()
}

impl Check<'_> {
    /// One range on every due list that covers it.
    async fn range(&mut self, net: IpNet) -> Vec<ListRange> {
        let engine = &self.rt.engine;
        let rep = Target::Ip(net.network());
        let mut lists = Vec::new();
        let mut dns_jobs = Vec::new();
        for (li, l) in engine.lists().iter().enumerate() {
            if !self.due.get(li).copied().unwrap_or(true) || !l.def.kind.accepts(&rep) {
                continue;
            }
            let mut why = match self.health.get(li) {
                Some(h) if !h.is_healthy() => {
                    Some(format!("not checked: the list is {}", h.name()))
                }
                _ => None,
            };
            if l.mirror().is_some() {
                lists.push(match why {
                    Some(why) => self.unchecked(li, &net, why, How::Intersection),
                    None => self.intersect(li, &net),
                });
                continue;
            }
            let IpNet::V6(p) = net else { continue };
            if p.prefix_len() > 64 {
                continue; // a small IPv6 range: the sweep enumerates it
            }
            why = why.or_else(|| l.ipv6_down().map(|w| format!("not queried: {w}")));
            if let Some(why) = why {
                lists.push(self.unchecked(li, &net, why, How::Dns));
                continue;
            }
            let listed: Vec<Ipv6Net> = self
                .before(li, &net, true)
                .iter()
                .filter_map(|k| k.parse().ok())
                .collect();
            let sample = self.rt.cfg.daemon.prefix_sample as usize;
            let chosen = prefixes::choose_64s(p, &self.known, &listed, sample, &mut self.rng);
            self.answered(li, &net);
            dns_jobs.push((li, chosen));
        }
        let asked = futures::future::join_all(
            dns_jobs
                .iter()
                .map(|(li, chosen)| prefixes::ask_64s(engine, *li, chosen, PER_LIST)),
        )
        .await;
        for (o, r) in asked {
            self.out.outcomes.extend(o);
            lists.push(r);
        }
        lists
    }

    /// A mirrored list's intersection with the range.
    fn intersect(&mut self, li: usize, net: &IpNet) -> ListRange {
        let (o, r) = prefixes::intersect_list(&self.rt.engine, li, net);
        if r.why.is_none() {
            let before = self.before(li, net, false);
            self.intersected.push((li, before));
            self.answered(li, net);
        }
        self.out.outcomes.extend(o);
        r
    }

    /// The pairs of list `li` inside `net` (only /64s when `only64`) that
    /// were not clear at the last sweep, but for single targets and the range itself.
    fn before(&self, li: usize, net: &IpNet, only64: bool) -> Vec<String> {
        let id = &self.rt.engine.lists()[li].def.id;
        let whole = net.to_string();
        self.mem
            .pairs
            .keys()
            .filter(|(t, list)| list == id && !self.singles.contains(t.as_str()) && *t != whole)
            .filter(|(t, _)| prefixes::key_in(t, net) && (!only64 || t.ends_with("/64")))
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Clears the parts no range gave this sweep (once, however many ranges
    /// overlap) and keeps one outcome per pair: ranges that overlap give some
    /// parts twice, and a real answer wins over a late clear one.
    fn finish(mut self) -> RangeSweep {
        let mut out = self.out;
        out.outcomes.append(&mut self.late);
        let mut seen = BTreeSet::new();
        out.outcomes
            .retain(|o| seen.insert((o.key.clone(), o.outcome.list)));
        let mut gone = Vec::new();
        for (li, before) in &self.intersected {
            let now: BTreeSet<&str> = out
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
    fn answered(&mut self, li: usize, net: &IpNet) {
        let id = self.rt.engine.lists()[li].def.id.clone();
        if self.mem.unchecked.contains(&(net.to_string(), id)) {
            self.late.push(RangeOutcome {
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
    fn unchecked(&mut self, li: usize, net: &IpNet, why: String, how: How) -> ListRange {
        self.out.outcomes.push(RangeOutcome {
            key: net.to_string(),
            outcome: crate::engine::Outcome {
                target: Target::Ip(net.network()),
                list: li,
                verdict: Verdict::Unknown { why: why.clone() },
            },
        });
        ListRange {
            list: self.rt.engine.lists()[li].def.id.clone(),
            how,
            why: Some(why),
            listed: vec![],
            asked: vec![],
        }
    }
}
