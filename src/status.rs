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
use crate::feeds::postmaster::{SpamLevel, SpamStanding, STANDING_DAYS};
use crate::health::{ListHealth, ResolverHealth, ResolverStatus};
use crate::senders::SendersState;
use crate::smtp_probe::RndrVerdict;
use crate::store::{self, StoredPair, StoredProbe, SweepRow, UncheckedPair};

/// Whether a listing hurts mail delivery (receivers' rejections joined with the listing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
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
    /// The latest delisting request of every pair still listed.
    pub delistings: Vec<store::DelistRequest>,
    /// Each Postmaster Tools domain's Gmail spam-rate standing (the latest
    /// figure within [`STANDING_DAYS`]), or `Err(domain)`: not enough volume.
    pub gmail: Vec<Result<SpamStanding, String>>,
    /// Each log source's outbound ledger state (issue 23), by source name.
    pub ledgers: Vec<(String, SendersState)>,
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
            resolver: store::get_state(c, &store::StateKey::ResolverHealth)?,
            assessment: store::get_state(c, &store::StateKey::ImpactAssessment)?,
            delistings: store::open_delist_requests(c)?,
            gmail: store::gmail_standings(c, &gmail_since(at))?,
            ledgers: load_ledgers(c)?,
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

    /// Where delisting of a listed pair stands (the store keeps only requests
    /// whose listing period has not ended: one about an earlier period does not count).
    pub fn delisting_of(&self, p: &StoredPair) -> Delisting {
        match self
            .delistings
            .iter()
            .find(|d| d.target == p.target && d.list == p.list)
        {
            None => Delisting::NotRequested,
            Some(d) if d.overdue(self.at) => Delisting::Overdue {
                requested_at: d.requested_at,
            },
            Some(d) => Delisting::Requested {
                requested_at: d.requested_at,
            },
        }
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

/// The first day whose Gmail figure still stands at `at`.
fn gmail_since(at: i64) -> String {
    let day = chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .date_naive();
    day.checked_sub_days(chrono::Days::new(STANDING_DAYS))
        .unwrap_or(day)
        .to_string()
}

/// Every log source's stored outbound ledger state (issue 23), by source
/// name; a state that does not parse is an error, never an empty ledger.
pub fn load_ledgers(c: &rusqlite::Connection) -> store::Result<Vec<(String, SendersState)>> {
    store::ledger_states(c)?
        .into_iter()
        .map(|(source, json)| Ok((source, serde_json::from_str(&json)?)))
        .collect()
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
            let t = c.spec.representative();
            !lists
                .iter()
                .any(|l| l.def.kind.accepts(&t) && healthy(&l.def.id))
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
                delisting: s.delisting_of(p),
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
        microsoft: s
            .assessment
            .iter()
            .flat_map(|a| a.rejecting())
            .filter(|r| r.id == crate::impact::SNDS_RECEIVER)
            .map(|r| r.text.clone())
            .collect(),
        ndr_spikes: s.open_spikes(EventKind::NdrSpike),
        queue_spikes: s.open_spikes(EventKind::QueueSpike),
        bursting: crate::senders::bursting(&s.ledgers),
        swept: s.last_sweep.is_some(),
        gmail_spam: s
            .gmail
            .iter()
            .filter_map(|g| g.as_ref().ok())
            .filter(|g| g.level > SpamLevel::Ok)
            .cloned()
            .collect(),
        gmail_quiet: s
            .gmail
            .iter()
            .filter_map(|g| g.as_ref().err())
            .cloned()
            .collect(),
        targets_total: cfg.targets.iter().map(|t| t.spec.len()).sum(),
    }
}

/// Percent-encodes `s` for a URL path segment or query value (RFC 3986's
/// unreserved characters and `:` kept). Also the web templates' filter.
pub fn urlencode(s: &str) -> String {
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

crate::spelling::closed_set! {
    /// The one answer the overview gives.
    pub enum Verdict {
        /// Nothing listed on any usable list, every target covered, nothing vulnerable.
        AllClear = "all_clear",
        /// Listed, and receivers reject mail over it.
        ListedRejecting = "listed_rejecting",
        /// Listed; no rejection seen (or no delivery data to see one).
        ListedNoImpact = "listed_no_impact",
        /// Not listed on any monitored list, and yet receivers refuse mail for
        /// reasons about us (issue 12's receivers): never "all clear".
        RefusedNotListed = "refused_not_listed",
        /// Monitoring is blind: resolver unusable, no usable list, no sweep yet,
        /// or targets no usable list covers.
        CannotTell = "cannot_tell",
        /// A mail server accepts mail for unknown recipients, or bounces spike
        /// (a backscatter source, now or waiting to be used).
        BackscatterRisk = "backscatter_risk",
        /// Not listed, and Gmail's user-reported spam rate for a domain is at or
        /// over Google's 0.3 % (Postmaster Tools): Gmail may refuse or junk its mail.
        GmailSpamRate = "gmail_spam_rate",
        /// Nothing else wrong, but a sending account bursts (issue 23): a
        /// leaked password gets a server listed next.
        SenderBurst = "sender_burst",
    }
}

/// One thing to do, with where to do it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Todo {
    /// What to do.
    pub text: String,
    /// A page of this site (or a delisting page) to do it on.
    pub href: Option<String>,
}

/// The verdict as shown: a headline, the evidence, what to do, and other problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

/// Where delisting of a listing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Delisting {
    /// Nobody has recorded a request for this listing period.
    #[default]
    NotRequested,
    /// Requested; the list's usual time to delist has not passed.
    Requested {
        /// When (Unix seconds).
        requested_at: i64,
    },
    /// Requested, and still listed past the list's usual time to delist.
    Overdue {
        /// When (Unix seconds).
        requested_at: i64,
    },
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
    /// Where its delisting stands.
    pub delisting: Delisting,
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
    /// What Microsoft SNDS says refuses our mail (blocked, filtered red), one
    /// sentence with the evidence (also named in `refusing`).
    pub microsoft: Vec<String>,
    /// Metrics (`source.metric`) with an NDR spike still on: bounces to
    /// forged senders are going out now.
    pub ndr_spikes: Vec<String>,
    /// Metrics with a queue spike still on.
    pub queue_spikes: Vec<String>,
    /// Sending accounts bursting now, each named in a phrase (issue 23's
    /// `account_burst`), busiest first.
    pub bursting: Vec<String>,
    /// A sweep has finished.
    pub swept: bool,
    /// Domains whose Gmail spam rate is at or over 0.1 % (Postmaster Tools).
    pub gmail_spam: Vec<SpamStanding>,
    /// Postmaster Tools domains with no spam-rate figure lately (not enough volume).
    pub gmail_quiet: Vec<String>,
    /// Targets monitored (addresses and domains).
    pub targets_total: u128,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn target_href(t: &str) -> Option<String> {
    Some(format!("/target/{}", urlencode(t)))
}

/// "a, b and c".
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Targets named one by one in the list of things to do; the rest are summed up.
const TODO_TARGETS: usize = 3;

/// What to do about listings (most important first), following each one's
/// delisting state: request delisting only where nobody has yet (every such
/// list named, by target), follow up where a request is overdue, wait where
/// one is pending.
fn delisting_todo(ls: &[&ListingFact]) -> Vec<Todo> {
    let mut todo = Vec::new();
    let mut unrequested: Vec<(&str, Vec<&str>)> = Vec::new();
    for l in ls.iter().filter(|l| l.delisting == Delisting::NotRequested) {
        match unrequested.iter_mut().find(|(t, _)| *t == l.target) {
            Some((_, lists)) => lists.push(&l.list),
            None => unrequested.push((&l.target, vec![&l.list])),
        }
    }
    for (t, lists) in unrequested.iter().take(TODO_TARGETS) {
        todo.push(Todo {
            text: format!(
                "Find and stop the cause for {t} (compromised account, open relay, backscatter), then request delisting from {} on its page",
                and_list(lists)
            ),
            href: target_href(t),
        });
    }
    if unrequested.len() > TODO_TARGETS {
        let more = unrequested.len() - TODO_TARGETS;
        todo.push(Todo {
            text: format!(
                "The same for {}: {}",
                plural(more, "more target", "more targets"),
                and_list(
                    &unrequested[TODO_TARGETS..]
                        .iter()
                        .map(|(t, _)| *t)
                        .collect::<Vec<_>>()
                )
            ),
            href: Some("/targets".into()),
        });
    }
    if !unrequested.is_empty() {
        todo.push(Todo {
            text: "Press \"Delisting requested\" there once asked: rblwatch re-checks at once and reminds you if it is still listed past the list's usual expiry".into(),
            href: None,
        });
    }
    for l in ls
        .iter()
        .filter(|l| matches!(l.delisting, Delisting::Overdue { .. }))
        .take(TODO_TARGETS)
    {
        todo.push(Todo {
            text: format!(
                "Follow up with {} for {}: delisting was requested and it is still listed past the list's usual time",
                l.list, l.target
            ),
            href: target_href(&l.target),
        });
    }
    let pending: Vec<String> = ls
        .iter()
        .filter(|l| matches!(l.delisting, Delisting::Requested { .. }))
        .map(|l| format!("{} for {}", l.list, l.target))
        .collect();
    if !pending.is_empty() {
        todo.push(Todo {
            text: format!(
                "Delisting already requested from {}: nothing to do but wait (rblwatch re-checks and reminds you past the list's usual expiry)",
                and_list(&pending.iter().map(String::as_str).collect::<Vec<_>>())
            ),
            href: None,
        });
    }
    todo
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
/// receivers refusing, then a backscatter risk, then blindness; "all clear"
/// only when none applies. A verdict never calls a target clear on lists
/// whose answers do not count. A bursting account is named in the headline
/// whatever else is true: it is the likely cause of a listing, or the next one.
pub fn verdict(f: &VerdictFacts) -> VerdictView {
    let mut v = verdict_of_listings(f);
    if let Some(first) = f.bursting.first() {
        let hold = Todo {
            text: "Stop the bursting account (a leaked password?): hold it (hooks/postfix-hold-account), reset its password, then release or delete its held mail".into(),
            href: Some("/accounts".into()),
        };
        if v.kind == Verdict::AllClear {
            v.kind = Verdict::SenderBurst;
            v.text = "An account is bursting".into();
            v.detail = format!("Not listed, but the {first} sends far over its usual.");
        } else {
            v.detail = format!("{} The {first} sends far over its usual.", v.detail);
        }
        v.todo.insert(0, hold);
        for other in f.bursting.iter().skip(1) {
            v.also.push(format!("also bursting: the {other}"));
        }
    }
    v
}

/// The verdict before the bursting accounts are named.
fn verdict_of_listings(f: &VerdictFacts) -> VerdictView {
    let mut also = standing_notes(f);
    let blind = blind(f);
    if !f.listings.is_empty() {
        return listed_verdict(f, blind.as_ref().map(|(why, _)| why.as_str()), also);
    }
    if !f.refusing.is_empty() {
        also.extend(vulnerable_note(f));
        also.extend(gmail_critical(f).map(|g| g.text()));
        return refused_verdict(f, also);
    }
    if gmail_critical(f).next().is_some() {
        also.extend(vulnerable_note(f));
        if let Some((why, _)) = &blind {
            also.push(format!("listings unknown: {why}"));
        }
        return gmail_verdict(f, also);
    }
    if !f.vulnerable.is_empty() || !f.ndr_spikes.is_empty() {
        if let Some((why, _)) = &blind {
            also.push(format!("listings unknown: {why}"));
        }
        return backscatter_verdict(f, also);
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

/// Lesser problems shown under any verdict: unusable lists, a degraded
/// resolver, unchecked pairs, a queue spike.
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
    also.extend(
        f.gmail_spam
            .iter()
            .filter(|g| g.level == SpamLevel::Warn)
            .map(SpamStanding::text),
    );
    also.extend(f.gmail_quiet.iter().map(|d| {
        format!(
            "{d}: no Gmail spam rate lately (not enough volume for Postmaster Tools to give one)"
        )
    }));
    also
}

/// Domains at or over Google's 0.3 %.
fn gmail_critical(f: &VerdictFacts) -> impl Iterator<Item = &SpamStanding> {
    f.gmail_spam
        .iter()
        .filter(|g| g.level == SpamLevel::Critical)
}

/// Not listed, and Gmail's spam rate for a domain is at or over 0.3 %.
fn gmail_verdict(f: &VerdictFacts, also: Vec<String>) -> VerdictView {
    let crit: Vec<&SpamStanding> = gmail_critical(f).collect();
    VerdictView {
        kind: Verdict::GmailSpamRate,
        text: format!(
            "Gmail spam rate too high: {}",
            crit.iter().map(|g| g.domain.as_str()).collect::<Vec<_>>().join(", ")
        ),
        detail: format!(
            "{}. Google's sender guidelines: keep it below 0.10 % and never reach 0.30 %, or Gmail may refuse or junk the mail.",
            crit.iter().map(|g| g.text()).collect::<Vec<_>>().join("; ")
        ),
        todo: vec![Todo {
            text: "Find the mail people report as spam (the campaign, list or account that sent it): stop it, honour unsubscribes, add one-click unsubscribe; the rate is read again from Postmaster Tools each day".into(),
            href: None,
        }],
        also,
    }
}

/// A backscatter risk, as a note under another verdict.
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

/// Listed: "listed and rejecting" when receivers cite a listing, else
/// "listed, no impact seen"; what to do follows each listing's delisting state.
fn listed_verdict(f: &VerdictFacts, blind: Option<&str>, mut also: Vec<String>) -> VerdictView {
    let rejecting: Vec<&ListingFact> = f
        .listings
        .iter()
        .filter(|l| l.impact == Impact::Rejecting)
        .collect();
    also.extend(f.microsoft.iter().cloned());
    // Microsoft (SNDS) is said above, with its evidence
    let others: Vec<&str> = f
        .refusing
        .iter()
        .filter(|r| f.microsoft.is_empty() || !r.starts_with("Microsoft (SNDS)"))
        .map(String::as_str)
        .collect();
    if rejecting.is_empty() && !others.is_empty() {
        also.push(format!(
            "refused by {} for other reasons",
            others.join(", ")
        ));
    }
    also.extend(vulnerable_note(f));
    also.extend(gmail_critical(f).map(|g| g.text()));
    if let Some(why) = blind {
        also.push(format!("current state unknown: {why}"));
    }
    if !rejecting.is_empty() {
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
            todo: delisting_todo(
                &rejecting
                    .iter()
                    .copied()
                    .chain(f.listings.iter().filter(|l| l.impact != Impact::Rejecting))
                    .collect::<Vec<_>>(),
            ),
            also,
        };
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
        todo: delisting_todo(&f.listings.iter().collect::<Vec<_>>()),
        also,
    }
}

/// Not listed, yet receivers refuse mail for reasons about us.
fn refused_verdict(f: &VerdictFacts, also: Vec<String>) -> VerdictView {
    if let Some(ms) = f.microsoft.first() {
        // Microsoft's own data says so: the evidence is the detail
        let others: Vec<&str> = f
            .refusing
            .iter()
            .filter(|r| !r.starts_with("Microsoft (SNDS)"))
            .map(String::as_str)
            .collect();
        let mut also = also;
        if !others.is_empty() {
            also.push(format!("also refused by {}", others.join(", ")));
        }
        return VerdictView {
            kind: Verdict::RefusedNotListed,
            text: "Refused by Microsoft, not listed".into(),
            detail: format!("{ms}."),
            todo: vec![Todo {
                text: "Find why in SNDS (complaints, trap hits, the sample HELO and MAIL FROM), fix it, then ask Microsoft's sender support to mitigate".into(),
                href: Some("https://olcsupport.office.com/".into()),
            }],
            also,
        };
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

/// A server accepting unknown recipients, or a bounce spike on now.
fn backscatter_verdict(f: &VerdictFacts, mut also: Vec<String>) -> VerdictView {
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

/// Nothing listed on a usable list, every target covered, nothing vulnerable.
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
            delisting: Delisting::NotRequested,
        }
    }

    /// Issue 23: a bursting account is named in the headline; on an
    /// otherwise clear server it is the verdict.
    #[test]
    fn a_bursting_account_is_named_in_the_verdict() {
        let mut f = facts();
        f.bursting = vec!["sasl account \"alice@example.test\" on mxlog (500 messages to 1000 recipients in the window)".into()];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::SenderBurst);
        assert_eq!(v.kind.as_str(), "sender_burst");
        assert!(v.detail.contains("alice@example.test"), "{}", v.detail);
        assert_eq!(v.todo[0].href.as_deref(), Some("/accounts"));
        f.listings = vec![listing("192.0.2.1", Impact::Rejecting)];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::ListedRejecting);
        assert!(v.detail.contains("alice@example.test"), "{}", v.detail);
        assert_eq!(v.todo[0].href.as_deref(), Some("/accounts"));
    }

    /// Issue 23: the snapshot reads the stored ledger states, and the facts
    /// name the bursting account from them (so the page, the API, /metrics and
    /// `rblwatch status` all see it); a calm account is not named.
    #[test]
    fn the_snapshot_reads_bursting_accounts_from_the_ledger_state() {
        use crate::mail::ledger::Origin;
        use crate::senders::{AccountState, Bucket};
        let c = crate::store::memory_db();
        let account = |name: &str, messages: u64, bursting: bool| AccountState {
            origin: Origin::Sasl,
            name: name.into(),
            buckets: vec![Bucket {
                at: 100,
                messages,
                recipients: messages * 2,
                refusals: 0,
            }],
            base_messages: 1.0,
            base_recipients: 1.0,
            bursting,
            calm: 0,
            last_seen: 100,
            total_messages: messages,
            refused_by: Default::default(),
        };
        let mut st = SendersState::default();
        st.accounts.insert(
            "sasl:alice".into(),
            account("alice@example.test", 500, true),
        );
        st.accounts
            .insert("sasl:bob".into(), account("bob@example.test", 3, false));
        store::put_state(&c, &store::StateKey::Ledger("mxlog".into()), &st, 100).unwrap();
        let snap = StatusSnapshot::load(&c, 200).unwrap();
        assert_eq!(snap.ledgers.len(), 1);
        let named = crate::senders::bursting(&snap.ledgers);
        assert_eq!(named.len(), 1, "{named:?}");
        assert!(
            named[0].contains("\"alice@example.test\" on mxlog"),
            "{named:?}"
        );
        let mut f = facts();
        f.bursting = named;
        assert_eq!(verdict(&f).kind, Verdict::SenderBurst);
        // a corrupt stored state is an error, never an empty report
        c.execute(
            "UPDATE state SET value = '{' WHERE key = 'ledger:mxlog'",
            [],
        )
        .unwrap();
        assert!(StatusSnapshot::load(&c, 200).is_err());
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

    /// Issue 22: the steps asked to request delisting where it had been
    /// requested, and left the one not requested unmentioned.
    #[test]
    fn what_to_do_follows_the_delisting_state_of_every_listing() {
        let mut f = facts();
        let l = |t: &str, list: &str, impact, delisting| ListingFact {
            target: t.into(),
            list: list.into(),
            impact,
            delisting,
        };
        let asked = Delisting::Requested { requested_at: 1 };
        f.listings = vec![
            l("192.0.2.1", "spamcop", Impact::NoneSeen, asked),
            l(
                "192.0.2.1",
                "spamhaus",
                Impact::NoneSeen,
                Delisting::NotRequested,
            ),
            l(
                "192.0.2.1",
                "uceprotect",
                Impact::NoneSeen,
                Delisting::NotRequested,
            ),
            l(
                "198.51.100.7",
                "mailspike",
                Impact::NoneSeen,
                Delisting::Overdue { requested_at: 1 },
            ),
        ];
        let v = verdict(&f);
        let texts: Vec<&str> = v.todo.iter().map(|t| t.text.as_str()).collect();
        assert!(
            texts[0].ends_with("request delisting from spamhaus and uceprotect on its page"),
            "{texts:?}"
        );
        assert!(
            !texts
                .iter()
                .any(|t| t.contains("request delisting from spamcop")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("Follow up with mailspike for 198.51.100.7")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("Delisting already requested from spamcop for 192.0.2.1")),
            "{texts:?}"
        );

        // every listing requested: no "request delisting" at all, rejecting or not
        for impact in [Impact::Rejecting, Impact::NoneSeen] {
            f.listings = vec![l("192.0.2.1", "spamcop", impact, asked)];
            let v = verdict(&f);
            assert!(
                v.todo
                    .iter()
                    .all(|t| !t.text.contains("request delisting") && !t.text.contains("Press")),
                "{v:?}"
            );
            assert!(!v.todo.is_empty());
        }

        // rejecting first, then the not-rejecting ones not yet requested
        f.listings = vec![
            l(
                "192.0.2.9",
                "psbl",
                Impact::NoneSeen,
                Delisting::NotRequested,
            ),
            l(
                "192.0.2.1",
                "spamhaus",
                Impact::Rejecting,
                Delisting::NotRequested,
            ),
        ];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::ListedRejecting);
        assert_eq!(v.todo[0].href.as_deref(), Some("/target/192.0.2.1"));
        assert_eq!(v.todo[1].href.as_deref(), Some("/target/192.0.2.9"));
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

    #[test]
    fn snds_refusal_with_no_listing_is_refused_by_microsoft_with_the_evidence() {
        let ev = "Microsoft refuses mail from 198.51.100.12: SNDS: 198.51.100.12 filter result RED on 2026-12-04 (complaint rate 4.2 %, 26 trap hits, 12960 recipients); no monitored list lists it".to_string();
        let mut f = facts();
        assert_eq!(verdict(&f).kind, Verdict::AllClear);
        f.refusing = vec!["Microsoft (SNDS)".into(), "gmail.com".into()];
        f.microsoft = vec![ev.clone()];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::RefusedNotListed);
        assert_eq!(v.text, "Refused by Microsoft, not listed");
        assert_eq!(v.detail, format!("{ev}."));
        assert_eq!(v.also, vec!["also refused by gmail.com".to_string()]);
        // listed elsewhere: the listing leads, Microsoft's refusal is said beside it
        f.listings = vec![listing("192.0.2.1", Impact::NoneSeen)];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::ListedNoImpact);
        assert!(v.also.contains(&ev), "{v:?}");
        assert!(
            v.also
                .contains(&"refused by gmail.com for other reasons".to_string()),
            "{v:?}"
        );
    }

    #[test]
    fn a_gmail_spam_rate_over_google_limits_is_part_of_the_verdict() {
        use crate::feeds::postmaster::{SpamLevel, SpamStanding};
        let st = |d: &str, rate: f64| SpamStanding {
            domain: d.into(),
            level: SpamLevel::of(rate),
            rate,
            day: "2026-12-04".into(),
        };
        // 0.1 % to 0.3 %: a note under "all clear", which it still is
        let mut f = facts();
        f.gmail_spam = vec![st("example.com", 0.0015)];
        f.gmail_quiet = vec!["example.org".into()];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::AllClear);
        assert!(v.also.iter().any(|a| a.contains("example.com: Gmail spam rate 0.15 % on 2026-12-04, over Google's recommended 0.10 %")), "{:?}", v.also);
        assert!(v.also.iter().any(|a| a == "example.org: no Gmail spam rate lately (not enough volume for Postmaster Tools to give one)"), "{:?}", v.also);
        // 0.3 % or more: the headline, never "all clear"
        f.gmail_spam = vec![st("example.com", 0.0042)];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::GmailSpamRate);
        assert_eq!(v.text, "Gmail spam rate too high: example.com");
        assert!(
            v.detail.contains("0.42 %") && v.detail.contains("0.30 %"),
            "{}",
            v.detail
        );
        // under a listing it is named beside it
        f.listings = vec![listing("192.0.2.1", Impact::Unknown)];
        let v = verdict(&f);
        assert_eq!(v.kind, Verdict::ListedNoImpact);
        assert!(
            v.also
                .iter()
                .any(|a| a.contains("example.com: Gmail spam rate 0.42 %")),
            "{:?}",
            v.also
        );
    }
}
