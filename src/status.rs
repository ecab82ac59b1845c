//! The current state, read once, and the one headline verdict made from it.
//!
//! [`StatusSnapshot::load`] reads everything the verdict and its readers need
//! from the store in one go (typed: a corrupt row is an error, never an empty
//! report). [`facts`] turns it, with the configuration, into [`VerdictFacts`],
//! and [`verdict`] (pure) gives the headline: "listed and rejecting", "can't
//! tell", "backscatter risk"… The overview, `/api/v1/status`, `/metrics`
//! (`rblwatch_verdict`) and `rblwatch status` are views of the same answer.

use std::collections::HashMap;

use serde::Serialize;

use crate::config::Config;
use crate::engine::ActiveList;
use crate::event::{Event, EventKind, Subject};
use crate::health::{ListHealth, ResolverHealth, ResolverStatus};
use crate::smtp_probe::RndrVerdict;
use crate::store::{self, StoredPair, StoredProbe, SweepRow, UncheckedPair};

/// Whether a listing hurts mail delivery (receivers' rejections joined with the listing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    /// Receivers reject mail and name this list (or its listing) as the reason.
    Rejecting,
    /// Delivery results are read and no rejection points at this listing.
    NoneSeen,
    /// No delivery results to tell.
    #[default]
    Unknown,
}

/// Everything the headline is made from, as stored: read in one transaction.
#[derive(Debug, Clone, Default)]
pub struct StatusSnapshot {
    /// The last finished sweep.
    pub last_sweep: Option<SweepRow>,
    /// Each list's last health.
    pub health: HashMap<String, ListHealth>,
    /// Non-clear pairs.
    pub pairs: Vec<StoredPair>,
    /// The latest probe of each server.
    pub probes: Vec<StoredProbe>,
    /// Pairs whose last answer from a healthy list was unusable.
    pub unchecked: Vec<UncheckedPair>,
    /// Spike events of the last 30 days (to tell which are still on).
    pub spikes: Vec<Event>,
    /// The resolver's last diagnosis as stored by the daemon.
    pub resolver: Option<ResolverHealth>,
    /// The last impact assessment as stored by the daemon.
    pub assessment: Option<crate::impact::Assessment>,
    /// When it was read.
    pub at: i64,
}

/// Spike events, raised and cleared.
pub const SPIKE_KINDS: &[EventKind] = &[
    EventKind::QueueSpike,
    EventKind::QueueSpikeCleared,
    EventKind::NdrSpike,
    EventKind::NdrSpikeCleared,
];

/// Where the daemon keeps the resolver's last health (JSON in the `state` table).
pub const RESOLVER_STATE: &str = "resolver:health";

impl StatusSnapshot {
    /// Reads the current state (call it inside one read transaction).
    pub fn load(c: &rusqlite::Connection, at: i64) -> store::Result<Self> {
        Ok(StatusSnapshot {
            last_sweep: store::last_sweep(c)?,
            health: store::load_health(c)?,
            pairs: store::load_pairs(c)?,
            probes: store::latest_probes(c)?,
            unchecked: store::unchecked_pairs(c, None)?,
            spikes: store::events_of_kinds(c, SPIKE_KINDS, at - 30 * 86_400)?,
            resolver: store::get_state(c, RESOLVER_STATE)?,
            assessment: store::get_state(c, crate::impact::ASSESSMENT_STATE)?,
            at,
        })
    }

    /// Metrics (`source.metric`) whose last spike of `kind` has not cleared.
    pub fn open_spikes(&self, kind: EventKind) -> Vec<String> {
        let cleared = match kind {
            EventKind::NdrSpike => EventKind::NdrSpikeCleared,
            _ => EventKind::QueueSpikeCleared,
        };
        let mut last: std::collections::BTreeMap<String, EventKind> = Default::default();
        for e in &self.spikes {
            if let Subject::Metric { source, metric } = &e.subject {
                if e.kind == kind || e.kind == cleared {
                    last.insert(format!("{source}.{metric}"), e.kind);
                }
            }
        }
        last.into_iter()
            .filter(|(_, k)| *k == kind)
            .map(|(m, _)| m)
            .collect()
    }

    /// The impact of a listing from the stored assessment (what `rblwatch
    /// status` knows without the daemon): unknown when no delivery log is read,
    /// no assessment was made, or the listing is newer than it.
    pub fn impact_of(&self, cfg: &Config, target: &str, list: &str, since: i64) -> Impact {
        use crate::config::SourceKind;
        use crate::impact::ImpactState;
        let reads_deliveries = cfg.sources.iter().any(|s| {
            matches!(
                s.kind,
                SourceKind::PostfixLog { .. } | SourceKind::EximLog { .. }
            )
        });
        match &self.assessment {
            _ if !reads_deliveries => Impact::Unknown,
            None => Impact::Unknown,
            Some(a) if since > a.at => Impact::Unknown,
            Some(a) => match a.impact_of(target, list) {
                ImpactState::Rejecting => Impact::Rejecting,
                ImpactState::NoneSeen => Impact::NoneSeen,
            },
        }
    }
}

/// The verdict's inputs from a snapshot and the configuration in force.
/// `resolver` and `impact` are the daemon's live answers where there is a
/// daemon (the page), or the stored ones (`rblwatch status`).
pub fn facts(
    s: &StatusSnapshot,
    cfg: &Config,
    lists: &[ActiveList],
    resolver: Option<&ResolverHealth>,
    impact: impl Fn(&StoredPair) -> Impact,
) -> VerdictFacts {
    let healthy = |id: &str| s.health.get(id).is_some_and(ListHealth::is_healthy);
    let usable = lists.iter().filter(|l| healthy(&l.def.id)).count();
    let uncovered = cfg
        .targets
        .iter()
        .filter(|c| {
            c.spec.targets().next().is_some_and(|t| {
                !lists
                    .iter()
                    .any(|l| l.def.kind.accepts(&t) && healthy(&l.def.id))
            })
        })
        .map(|c| c.spec.to_string())
        .collect();
    // a target is unanswered when every usable list that covers it left its pair unchecked
    let mut open: std::collections::BTreeMap<&str, usize> = Default::default();
    for u in &s.unchecked {
        if healthy(&u.list) {
            *open.entry(u.target.as_str()).or_default() += 1;
        }
    }
    let unanswered = open
        .iter()
        .filter(|(t, n)| {
            crate::target::Target::parse(t).is_ok_and(|tt| {
                **n >= lists
                    .iter()
                    .filter(|l| l.def.kind.accepts(&tt) && healthy(&l.def.id))
                    .count()
            })
        })
        .map(|(t, _)| t.to_string())
        .collect();
    let unchecked_pairs = open.values().sum();
    VerdictFacts {
        unanswered,
        unchecked_pairs,
        listings: s
            .pairs
            .iter()
            .filter(|p| p.state.is_listed())
            .map(|p| ListingFact {
                target: p.target.clone(),
                list: p.list.clone(),
                impact: impact(p),
            })
            .collect(),
        lists_total: lists.len(),
        lists_usable: usable,
        unusable: lists
            .iter()
            .filter(|l| !healthy(&l.def.id))
            .map(|l| {
                let h = s.health.get(&l.def.id);
                (
                    l.def.id.clone(),
                    h.map_or("unchecked", |h| h.name()).to_string(),
                    h.map(|h| h.why().to_string()).unwrap_or_default(),
                )
            })
            .collect(),
        uncovered,
        resolver: resolver.cloned(),
        vulnerable: s
            .probes
            .iter()
            .filter(|p| p.report.verdict == RndrVerdict::AcceptsUnknown)
            .map(|p| (p.report.domain.clone(), p.report.server.clone()))
            .collect(),
        refusing: s
            .assessment
            .iter()
            .flat_map(|a| a.rejecting())
            .map(|r| r.name.clone())
            .collect(),
        ndr_spikes: s.open_spikes(EventKind::NdrSpike),
        queue_spikes: s.open_spikes(EventKind::QueueSpike),
        swept: s.last_sweep.is_some(),
        targets_total: cfg.targets.iter().map(|t| t.spec.len()).sum(),
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The one answer the overview gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing listed on any usable list, every target covered, nothing vulnerable.
    AllClear,
    /// Listed, and receivers reject mail over it.
    ListedRejecting,
    /// Listed; no rejection seen (or no delivery data to see one).
    ListedNoImpact,
    /// Not listed on any monitored list, and yet receivers refuse mail for
    /// reasons about us (issue 12's receivers): never "all clear".
    RefusedNotListed,
    /// Monitoring is blind: resolver unusable, no usable list, no sweep yet,
    /// or targets no usable list covers.
    CannotTell,
    /// A mail server accepts mail for unknown recipients, or bounces spike
    /// (a backscatter source, now or waiting to be used).
    BackscatterRisk,
}

impl Verdict {
    /// Every verdict, in the order of the enum.
    pub const ALL: [Verdict; 6] = [
        Verdict::AllClear,
        Verdict::ListedRejecting,
        Verdict::ListedNoImpact,
        Verdict::RefusedNotListed,
        Verdict::CannotTell,
        Verdict::BackscatterRisk,
    ];

    /// Its spelling in the API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::AllClear => "all_clear",
            Verdict::ListedRejecting => "listed_rejecting",
            Verdict::ListedNoImpact => "listed_no_impact",
            Verdict::RefusedNotListed => "refused_not_listed",
            Verdict::CannotTell => "cannot_tell",
            Verdict::BackscatterRisk => "backscatter_risk",
        }
    }
}

/// One thing to do, with where to do it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Todo {
    /// What to do.
    pub text: String,
    /// A page of this site (or a delisting page) to do it on.
    pub href: Option<String>,
}

/// The verdict as shown: a headline, the evidence, what to do, and other problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerdictView {
    /// Which verdict.
    pub kind: Verdict,
    /// The headline (kept as `text` in the API).
    pub text: String,
    /// The evidence, one line.
    pub detail: String,
    /// What to do, most important first.
    pub todo: Vec<Todo>,
    /// Lesser problems besides the verdict.
    pub also: Vec<String>,
}

/// A listing, as the verdict sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingFact {
    /// Target.
    pub target: String,
    /// List id.
    pub list: String,
    /// Whether it hurts mail.
    pub impact: Impact,
}

/// Everything the verdict is made from.
#[derive(Debug, Clone, Default)]
pub struct VerdictFacts {
    /// Listed pairs (listed or clearing).
    pub listings: Vec<ListingFact>,
    /// Lists in use.
    pub lists_total: usize,
    /// Lists whose answers count (healthy).
    pub lists_usable: usize,
    /// Lists whose answers do not count: (id, health, why).
    pub unusable: Vec<(String, String, String)>,
    /// Targets (as configured) that no usable list answers for.
    pub uncovered: Vec<String>,
    /// Addresses or domains whose every pair on a usable list had no usable
    /// answer at the last sweep (a timeout, an error code): nothing checked
    /// them, so they are not clear.
    pub unanswered: Vec<String>,
    /// Pairs without a usable answer at the last sweep, on a usable list.
    pub unchecked_pairs: usize,
    /// The resolver's diagnosis, when the daemon makes one.
    pub resolver: Option<ResolverHealth>,
    /// Servers accepting mail for unknown recipients: (domain, server).
    pub vulnerable: Vec<(String, String)>,
    /// Receivers refusing mail for reasons about us (from issue 12's
    /// assessment: its receivers over the threshold), by name.
    pub refusing: Vec<String>,
    /// Metrics (`source.metric`) with an NDR spike still on: bounces to
    /// forged senders are going out now.
    pub ndr_spikes: Vec<String>,
    /// Metrics with a queue spike still on.
    pub queue_spikes: Vec<String>,
    /// A sweep has finished.
    pub swept: bool,
    /// Targets monitored (addresses and domains).
    pub targets_total: u128,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn target_href(t: &str) -> Option<String> {
    Some(format!("/target/{}", urlencode(t)))
}

/// Why nothing can be told, if nothing can.
fn blind(f: &VerdictFacts) -> Option<(String, Todo)> {
    if let Some(r) = f
        .resolver
        .as_ref()
        .filter(|r| r.status == ResolverStatus::Unusable)
    {
        return Some((
            format!("the resolver is unusable: {}", r.why),
            Todo {
                text: if r.fix.is_empty() {
                    "Point rblwatch at a working recursive resolver of your own ([resolver] nameservers): the lists refuse public resolvers".into()
                } else {
                    r.fix.clone()
                },
                href: Some("/lists".into()),
            },
        ));
    }
    if f.lists_total == 0 {
        return Some((
            "no list is in use".into(),
            Todo {
                text: "Choose lists in [lists] use (rblwatch lists shows the catalog)".into(),
                href: None,
            },
        ));
    }
    if f.lists_usable == 0 {
        return Some((
            format!(
                "none of the {} answers usably (dead, blocked or unreachable)",
                plural(f.lists_total, "list", "lists")
            ),
            Todo {
                text: "Check the resolver: lists that block public resolvers need a local recursive resolver or a DQS key".into(),
                href: Some("/lists".into()),
            },
        ));
    }
    if !f.swept {
        return Some((
            "no sweep has finished yet".into(),
            Todo {
                text: "Wait for the first sweep, or press Check now".into(),
                href: None,
            },
        ));
    }
    if !f.unanswered.is_empty() {
        return Some((
            format!(
                "no list gave a usable answer for {} at the last sweep",
                f.unanswered.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            ),
            Todo {
                text: "See why on the target's page (a timeout or an error code), and check the resolver and the lists".into(),
                href: f.unanswered.first().and_then(|t| target_href(t)),
            },
        ));
    }
    if !f.uncovered.is_empty() {
        return Some((
            format!(
                "no usable list answers for {}",
                f.uncovered.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            ),
            Todo {
                text: "Add lists of that kind (IPv6 or domain lists), or fix the ones that are unusable".into(),
                href: Some("/lists".into()),
            },
        ));
    }
    None
}

/// The overview's verdict. Listings come first (rejecting before not), then
/// a backscatter risk, then blindness; "all clear" only when none applies.
/// A verdict never calls a target clear on lists whose answers do not count.
pub fn verdict(f: &VerdictFacts) -> VerdictView {
    let blind = blind(f);
    let also = standing_notes(f);
    let why_blind = blind.as_ref().map(|(why, _)| why.as_str());
    if !f.listings.is_empty() {
        return listed_verdict(f, why_blind, also);
    }
    if !f.refusing.is_empty() {
        return refused_verdict(f, also);
    }
    if !f.vulnerable.is_empty() || !f.ndr_spikes.is_empty() {
        return backscatter_verdict(f, why_blind, also);
    }
    if let Some((why, todo)) = blind {
        return VerdictView {
            kind: Verdict::CannotTell,
            text: "Can't tell".into(),
            detail: format!("Nothing can be said about listings: {why}."),
            todo: vec![todo],
            also,
        };
    }
    all_clear_verdict(f, also)
}

/// The notes shown under every verdict: unusable lists, a degraded resolver,
/// unchecked pairs and queue spikes.
fn standing_notes(f: &VerdictFacts) -> Vec<String> {
    let mut also = Vec::new();
    if !f.unusable.is_empty() && f.lists_usable > 0 {
        also.push(format!(
            "{} of {} unusable, answers not counted: {}",
            plural(f.unusable.len(), "list", "lists"),
            f.lists_total,
            f.unusable
                .iter()
                .take(5)
                .map(|(id, h, _)| format!("{id} ({h})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(r) = f
        .resolver
        .as_ref()
        .filter(|r| r.status == ResolverStatus::Degraded)
    {
        also.push(format!("resolver degraded: {}", r.why));
    }
    if f.unchecked_pairs > 0 {
        // never clear: their last answer (a timeout, an error code) said nothing
        also.push(format!(
            "{} without a usable answer at the last sweep (unchecked, not clear)",
            plural(f.unchecked_pairs, "pair", "pairs")
        ));
    }
    if !f.queue_spikes.is_empty() {
        also.push(format!("queue spike on {}", f.queue_spikes.join(", ")));
    }
    also
}

/// The first thing to do about a listing: find the cause, then delist.
fn first_listed(l: &ListingFact) -> Todo {
    Todo {
        text: format!(
            "Find and stop the cause for {} (compromised account, open relay, backscatter), then request delisting from {} on its page",
            l.target, l.list
        ),
        href: target_href(&l.target),
    }
}

/// The backscatter risk as a note under another verdict, if there is one.
fn vulnerable_note(f: &VerdictFacts) -> Option<String> {
    f.vulnerable
        .first()
        .map(|(d, s)| format!("{s} accepts mail for unknown recipients of {d} (backscatter risk)"))
        .or_else(|| {
            f.ndr_spikes
                .first()
                .map(|m| format!("bounce (NDR) spike on {m} (backscatter risk)"))
        })
}

/// The listing branch (some listing exists): "listed and rejecting" when a
/// receiver refuses mail over one, else "listed, no impact seen".
fn listed_verdict(f: &VerdictFacts, why_blind: Option<&str>, mut also: Vec<String>) -> VerdictView {
    let rejecting: Vec<&ListingFact> = f
        .listings
        .iter()
        .filter(|l| l.impact == Impact::Rejecting)
        .collect();
    if !rejecting.is_empty() {
        if let Some(v) = vulnerable_note(f) {
            also.push(v);
        }
        if let Some(why) = why_blind {
            also.push(format!("current state unknown: {why}"));
        }
        let targets: std::collections::BTreeSet<&str> =
            rejecting.iter().map(|l| l.target.as_str()).collect();
        return VerdictView {
            kind: Verdict::ListedRejecting,
            text: format!(
                "Listed and rejecting: {} costing mail",
                plural(rejecting.len(), "listing is", "listings are")
            ),
            detail: format!(
                "Receivers reject mail from {} over {}; {} in all.",
                targets.into_iter().take(3).collect::<Vec<_>>().join(", "),
                rejecting
                    .iter()
                    .take(3)
                    .map(|l| l.list.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                plural(f.listings.len(), "listing", "listings")
            ),
            todo: vec![
                first_listed(rejecting[0]),
                Todo {
                    text: "Then press \"Delisting requested\" there: rblwatch re-checks at once and reminds you if it is still listed past the list's usual expiry".into(),
                    href: None,
                },
            ],
            also,
        };
    }
    if !f.refusing.is_empty() {
        also.push(format!(
            "refused by {} for other reasons",
            f.refusing.join(", ")
        ));
    }
    if let Some(v) = vulnerable_note(f) {
        also.push(v);
    }
    if let Some(why) = why_blind {
        also.push(format!("current state unknown: {why}"));
    }
    let unknown = f.listings.iter().all(|l| l.impact == Impact::Unknown);
    VerdictView {
        kind: Verdict::ListedNoImpact,
        text: format!(
            "Listed, no impact seen: {}",
            plural(f.listings.len(), "listing", "listings")
        ),
        detail: if unknown {
            "No delivery results are read, so rejections could not be seen; receivers that use these lists may still refuse mail.".into()
        } else {
            "Receivers have not rejected mail over these listings so far.".into()
        },
        todo: vec![
            first_listed(&f.listings[0]),
            Todo {
                text: "Press \"Delisting requested\" once asked: rblwatch re-checks at once and tracks the time to delist".into(),
                href: None,
            },
        ],
        also,
    }
}

/// Receivers refuse mail for reasons about us while no monitored list lists us.
fn refused_verdict(f: &VerdictFacts, mut also: Vec<String>) -> VerdictView {
    if let Some(v) = vulnerable_note(f) {
        also.push(v);
    }
    VerdictView {
        kind: Verdict::RefusedNotListed,
        text: "Refused, not listed".into(),
        detail: format!(
            "{} refuse mail for reasons about us, and no monitored list explains it.",
            f.refusing.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ),
        todo: vec![Todo {
            text: "Read the receivers' replies: a list not monitored here, or the receiver's own reputation system".into(),
            href: Some("/receivers".into()),
        }],
        also,
    }
}

/// The backscatter branch: a server accepts unknown recipients, or bounces
/// spike now.
fn backscatter_verdict(
    f: &VerdictFacts,
    why_blind: Option<&str>,
    mut also: Vec<String>,
) -> VerdictView {
    if let Some(why) = why_blind {
        also.push(format!("listings unknown: {why}"));
    }
    let detail = match f.vulnerable.first() {
        Some((domain, server)) => format!(
            "{server} accepts mail for unknown recipients of {domain}{}: it will bounce it to forged senders, which gets servers blacklisted.",
            if f.vulnerable.len() > 1 {
                format!(" (and {} more)", plural(f.vulnerable.len() - 1, "server", "servers"))
            } else {
                String::new()
            }
        ),
        None => format!(
            "Bounces (NDRs) spike on {}: the server is bouncing mail to forged senders now, which gets servers blacklisted.",
            f.ndr_spikes.join(", ")
        ),
    };
    if !f.vulnerable.is_empty() && !f.ndr_spikes.is_empty() {
        also.push(format!("bounce (NDR) spike on {}", f.ndr_spikes.join(", ")));
    }
    VerdictView {
        kind: Verdict::BackscatterRisk,
        text: "Backscatter risk".into(),
        detail,
        todo: vec![
            Todo {
                text: "Reject unknown recipients at RCPT time (Postfix: smtpd_reject_unlisted_recipient and a recipient map; hooks/postfix-strict-recipients)".into(),
                href: None,
            },
            Todo {
                text: "Look at the bounce figures".into(),
                href: Some("/mail".into()),
            },
        ],
        also,
    }
}

/// "All clear": nothing listed, refused, at risk or unseen.
fn all_clear_verdict(f: &VerdictFacts, also: Vec<String>) -> VerdictView {
    VerdictView {
        kind: Verdict::AllClear,
        text: "All clear".into(),
        detail: format!(
            "{} not listed on any of the {} that answer usably; no server accepts unknown recipients.",
            if f.targets_total == 1 {
                "The target is".to_string()
            } else {
                format!("All {} targets are", f.targets_total)
            },
            plural(f.lists_usable, "list", "lists")
        ),
        todo: Vec::new(),
        also,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> VerdictFacts {
        VerdictFacts {
            lists_total: 3,
            lists_usable: 3,
            swept: true,
            targets_total: 4,
            ..Default::default()
        }
    }

    fn listing(t: &str, impact: Impact) -> ListingFact {
        ListingFact {
            target: t.into(),
            list: "spamcop".into(),
            impact,
        }
    }

    #[test]
    fn each_verdict_from_its_facts() {
        let v = verdict(&facts());
        assert_eq!((v.kind, v.text.as_str()), (Verdict::AllClear, "All clear"));
        assert!(
            v.detail.contains("All 4 targets") && v.detail.contains("3 lists"),
            "{}",
            v.detail
        );

        let mut f = facts();
        f.listings = vec![listing("192.0.2.1", Impact::Unknown)];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::ListedNoImpact);
        assert!(v.detail.contains("No delivery results"), "{}", v.detail);
        assert_eq!(v.todo[0].href.as_deref(), Some("/target/192.0.2.1"));

        f.listings.push(listing("192.0.2.2", Impact::Rejecting));
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::ListedRejecting);
        assert!(v.text.contains("1 listing is costing mail"), "{}", v.text);
        assert_eq!(v.todo[0].href.as_deref(), Some("/target/192.0.2.2"));

        let mut f = facts();
        f.refusing = vec!["gmail.com".into()];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::RefusedNotListed);
        assert!(v.detail.starts_with("gmail.com refuse"), "{}", v.detail);
        f.listings = vec![listing("192.0.2.1", Impact::NoneSeen)];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::ListedNoImpact);
        assert!(v.also[0].contains("refused by gmail.com"), "{v:?}");

        let mut f = facts();
        f.ndr_spikes = vec!["mx1log.ndr_generated".into()];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::BackscatterRisk);
        assert!(v.detail.contains("mx1log.ndr_generated"), "{}", v.detail);
        let mut f = facts();
        f.queue_spikes = vec!["mx.queue_depth".into()];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::AllClear);
        assert!(v.also[0].contains("queue spike on mx.queue_depth"), "{v:?}");
        let mut f = facts();
        f.vulnerable = vec![("example.com".into(), "mx1:25".into())];
        assert_eq!(verdict(&f).kind, Verdict::BackscatterRisk);
        f.listings = vec![listing("192.0.2.1", Impact::NoneSeen)];
        let v = verdict(&f);
        assert_eq!(
            v.kind,
            Verdict::ListedNoImpact,
            "a listing outranks the risk"
        );
        assert!(
            v.also.iter().any(|a| a.contains("backscatter")),
            "{:?}",
            v.also
        );
    }

    /// The status-page issue: a page where no list is healthy said "targets clear".
    /// A target whose every usable list left its pair unchecked (a
    /// timeout, an error code) was checked by nothing: never "all clear".
    #[test]
    fn a_target_no_list_answered_is_not_all_clear() {
        let mut f = facts();
        f.unanswered = vec!["192.0.2.200".into()];
        f.unchecked_pairs = 1;
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::CannotTell, "{v:?}");
        assert!(v.detail.contains("192.0.2.200"), "{v:?}");
        // a pair unchecked while other lists answered: noted, the verdict stands
        let mut f = facts();
        f.unchecked_pairs = 2;
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::AllClear, "{v:?}");
        assert!(v.also.iter().any(|a| a.contains("2 pairs")), "{v:?}");
    }

    #[test]
    fn nothing_is_clear_when_nothing_can_be_seen() {
        let mut f = facts();
        f.lists_usable = 0;
        f.unusable = vec![("a".into(), "dead".into(), "x".into()); 3];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::CannotTell);
        assert!(v.detail.contains("none of the 3 lists"), "{}", v.detail);

        let mut f = facts();
        f.resolver = Some(ResolverHealth {
            status: ResolverStatus::Unusable,
            why: "REFUSED from 8.8.8.8".into(),
            fix: "run unbound on this host".into(),
        });
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::CannotTell);
        assert!(v.detail.contains("REFUSED from 8.8.8.8"));
        assert_eq!(v.todo[0].text, "run unbound on this host");

        let mut f = facts();
        f.swept = false;
        assert_eq!(verdict(&f).kind, Verdict::CannotTell);
        let mut f = facts();
        f.uncovered = vec!["example.com".into()];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::CannotTell);
        assert!(v.detail.contains("example.com"));

        // some lists unusable: still a verdict, with the note
        let mut f = facts();
        f.lists_usable = 2;
        f.unusable = vec![("dead-list".into(), "dead".into(), "x".into())];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::AllClear);
        assert!(
            v.detail.contains("2 lists") && v.also[0].contains("dead-list (dead)"),
            "{v:?}"
        );
    }
}
