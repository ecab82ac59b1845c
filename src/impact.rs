//! The joined verdict (pure): what the lists say about us, joined with what
//! receivers do about it.
//!
//! A DNSBL checker knows the listings; a log tool knows the rejections; the
//! question a postmaster asks is *which listing costs mail, and why are
//! receivers refusing us*. [`assess`] answers it from three inputs: the
//! confirmed listings, the classified rejections of the last window
//! ([`crate::mail::rejections`]) and the backscatter evidence (NDR spikes,
//! probes accepting unknown recipients, audit findings). It says
//!
//! * per listing: `rejecting` when a receiver cites its list (critical), else
//!   `none_seen` (a warning: nobody acts on it, as far as our log shows);
//! * per receiver: what it refuses us for, and whether that joins a listing
//!   ("Microsoft rejects citing spamhaus-zen, which lists 192.0.2.10"), names
//!   a list the monitor sees clear or does not monitor, or rests on the
//!   receiver's own data ("Microsoft rejects for ip-reputation
//!   (microsoft-s3150); no monitored list lists you");
//! * per target: whether it is a backscatter source (listed on a backscatter
//!   list while the server produces backscatter), with one diagnosis and the
//!   remediation the hooks offer.
//!
//! [`transitions`] compares an assessment with the conditions raised before
//! and gives the events (`receiver_rejecting`, `listing_rejecting`,
//! `backscatter_source` and their `*_cleared`). The daemon runs both after
//! every sweep, log read and probe, and stores the assessment for the web.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind, Severity, Subject};
use crate::feeds::snds::Refusal;
use crate::mail::rejections::{Outcome, Rejection};
use crate::prefixes::cites;
use crate::replies::ReplyMeaning;

/// A confirmed listing (listed or clearing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// IP or domain.
    pub target: String,
    /// List id.
    pub list: String,
    /// List name.
    pub list_name: String,
    /// Delisting link for this target.
    pub delist: Option<String>,
}

/// A receiver's name and sender page (from the reply catalog).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverInfo {
    /// Display name.
    pub name: String,
    /// Where a sender asks for delisting or support.
    pub sender_page: Option<String>,
}

/// A hook that offers a remedy for backscatter (`on` one of its events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remedy {
    /// Hook name.
    pub hook: String,
    /// The events it runs on.
    pub on: Vec<String>,
    /// Its argv.
    pub command: Vec<String>,
}

/// A finding of a posture audit that explains backscatter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditNote {
    /// Audit name.
    pub audit: String,
    /// The check.
    pub check: String,
    /// What it found.
    pub title: String,
    /// The exact fix.
    pub fix: String,
}

/// Everything [`assess`] joins.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Now (unix seconds).
    pub at: i64,
    /// The window rejections count in.
    pub window_secs: i64,
    /// A receiver refusing more than this many deliveries (about us) in the window is `rejecting`.
    pub threshold: u64,
    /// Confirmed listings.
    pub listings: &'a [Listing],
    /// Rejections stored within the window, with the time of their read.
    pub rejections: &'a [(i64, Rejection)],
    /// Lists in use: id → name.
    pub monitored: &'a BTreeMap<String, String>,
    /// Receivers of the reply catalog: id → name and sender page.
    pub receivers: &'a BTreeMap<String, ReceiverInfo>,
    /// Ids of the lists whose listing means "sends backscatter".
    pub backscatter_lists: &'a [String],
    /// NDR spikes in progress (`source.metric`).
    pub ndr_spikes: &'a [String],
    /// Probes that found a server accepting unknown recipients: (server, domain).
    pub vulnerable: &'a [(String, String)],
    /// Audit findings that cause backscatter.
    pub findings: &'a [AuditNote],
    /// Hooks that offer a remedy.
    pub remedies: &'a [Remedy],
    /// What Microsoft SNDS says refuses our mail (blocked ranges, IPs filtered red).
    pub snds: &'a [Refusal],
}

/// Whether receivers act on a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImpactState {
    /// A receiver cited the list in a refusal within the window.
    Rejecting,
    /// No receiver cited it within the window.
    NoneSeen,
}

/// One refusal text with its figures (remote text: data only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplySample {
    /// The receiver.
    pub receiver: String,
    /// The reply (untrusted remote text).
    pub text: String,
    /// Deliveries refused with this reply's rule, list and outcome.
    pub count: u64,
    /// Rejected or deferred.
    pub outcome: Outcome,
    /// What it means (`None`: no rule matched).
    pub meaning: Option<ReplyMeaning>,
    /// The rule.
    pub rule: Option<String>,
    /// The list it names.
    pub list: Option<String>,
    /// The answering host.
    pub relay: Option<String>,
    /// Some queue ids.
    pub queue_ids: Vec<String>,
}

/// The impact of one listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingImpact {
    /// IP or domain.
    pub target: String,
    /// List id.
    pub list: String,
    /// List name.
    pub list_name: String,
    /// Rejecting or none seen.
    pub impact: ImpactState,
    /// Critical when rejecting, else warning.
    pub severity: Severity,
    /// Receivers citing the list.
    pub receivers: Vec<String>,
    /// Refusals citing it within the window.
    pub count: u64,
    /// One sentence.
    pub text: String,
    /// Up to three replies citing it.
    pub replies: Vec<ReplySample>,
    /// Delisting link.
    pub delist: Option<String>,
}

crate::spelling::closed_set! {
    /// What a receiver's refusals rest on.
    pub enum ReceiverVerdict {
        /// It cites a monitored list that lists one of our targets.
        CitesListing = "cites-listing",
        /// It cites a monitored list on which the monitor sees no listing.
        CitesClearList = "cites-clear-list",
        /// It cites a list we do not monitor (or a zone the catalog does not know).
        CitesUnmonitoredList = "cites-unmonitored-list",
        /// Its own data: reputation, rate limits, authentication, content, policy.
        OwnData = "own-data",
        /// Only refusals not about us (unknown recipients, the receiver's own errors, unclassified).
        NotAboutUs = "not-about-us",
    }
}

/// A list a receiver names, and what the monitor knows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitedList {
    /// Catalog id, when the catalog knows the zone.
    pub list: Option<String>,
    /// The zone as named (cleaned).
    pub zone: Option<String>,
    /// The list is in use.
    pub monitored: bool,
    /// Our targets it lists.
    pub listed: Vec<String>,
    /// Refusals naming it.
    pub count: u64,
}

/// One receiver's refusals within the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverImpact {
    /// Receiver id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where to ask for delisting or support.
    pub sender_page: Option<String>,
    /// Deliveries rejected for reasons about us.
    pub rejected: u64,
    /// Deliveries deferred for reasons about us.
    pub deferred: u64,
    /// Refusals not about us or not classified.
    pub other: u64,
    /// Refusals by meaning (`other`: no rule matched).
    pub meanings: BTreeMap<String, u64>,
    /// Lists it names.
    pub lists: Vec<CitedList>,
    /// What its refusals rest on.
    pub verdict: ReceiverVerdict,
    /// More than the threshold refusals about us within the window.
    pub rejecting: bool,
    /// One sentence.
    pub text: String,
    /// Up to five replies, most frequent first.
    pub replies: Vec<ReplySample>,
    /// Up to ten queue ids.
    pub queue_ids: Vec<String>,
    /// When its last refusal was read.
    pub last_at: i64,
}

/// A target that is a backscatter source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackscatterSource {
    /// IP or domain.
    pub target: String,
    /// The backscatter lists that list it: (id, name, delist link).
    pub lists: Vec<(String, String, Option<String>)>,
    /// NDR spikes in progress.
    pub ndr_spikes: Vec<String>,
    /// Probes accepting unknown recipients: (server, domain).
    pub probes: Vec<(String, String)>,
    /// Audit findings that explain it.
    pub findings: Vec<AuditNote>,
    /// The diagnosis in plain words.
    pub diagnosis: String,
    /// What to do, in order.
    pub remediation: Vec<String>,
}

/// The joined verdict at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Assessment {
    /// When it was made.
    pub at: i64,
    /// The window (seconds).
    pub window_secs: i64,
    /// The receiver threshold.
    pub threshold: u64,
    /// Listings that receivers cite within the window (impact `rejecting`).
    /// Every other listing assessed had no citation: "none seen"
    /// ([`Assessment::impact_of`]). Only these are kept, so a sender with
    /// tens of thousands of listings stores, publishes and serves an
    /// assessment the size of its refusals, not of its listings.
    pub listings: Vec<ListingImpact>,
    /// Listings assessed (cited or not).
    #[serde(default)]
    pub listed: u64,
    /// Every receiver that refused something within the window, rejecting ones first.
    pub receivers: Vec<ReceiverImpact>,
    /// Backscatter sources.
    pub backscatter: Vec<BackscatterSource>,
    /// Receivers left out of `receivers` (see [`MAX_QUIET_RECEIVERS`]).
    #[serde(default)]
    pub receivers_omitted: usize,
}

/// Receivers refusing only for reasons not about us (unknown recipients…)
/// kept in an assessment, the most frequent first: a large sender hears from
/// thousands of domains, and the page needs the ones that matter. Receivers
/// refusing for reasons about us are all kept.
pub const MAX_QUIET_RECEIVERS: usize = 20;

impl Assessment {
    /// The impact of a listing that receivers cite (`None`: not cited).
    pub fn listing(&self, target: &str, list: &str) -> Option<&ListingImpact> {
        self.listings
            .iter()
            .find(|l| l.target == target && l.list == list)
    }

    /// Whether receivers act on a listing that existed when this assessment
    /// was made.
    pub fn impact_of(&self, target: &str, list: &str) -> ImpactState {
        self.listing(target, list)
            .map_or(ImpactState::NoneSeen, |l| l.impact)
    }

    /// The sentence for a listing no receiver cited.
    pub fn none_seen_text(&self, list: &str) -> String {
        none_seen_text(list, &window_text(self.window_secs))
    }

    /// The impact of a listing no receiver cited (one this assessment does not hold).
    pub fn none_seen(&self, l: &Listing) -> ListingImpact {
        ListingImpact {
            target: l.target.clone(),
            list: l.list.clone(),
            list_name: l.list_name.clone(),
            impact: ImpactState::NoneSeen,
            severity: Severity::Warning,
            receivers: Vec::new(),
            count: 0,
            text: self.none_seen_text(&l.list),
            replies: Vec::new(),
            delist: l.delist.clone(),
        }
    }

    /// Receivers over the threshold.
    pub fn rejecting(&self) -> impl Iterator<Item = &ReceiverImpact> {
        self.receivers.iter().filter(|r| r.rejecting)
    }
}

fn about_us(m: Option<ReplyMeaning>) -> bool {
    m.is_some_and(ReplyMeaning::about_us)
}

fn names_a_list(m: Option<ReplyMeaning>) -> bool {
    matches!(
        m,
        Some(ReplyMeaning::IpBlocklist | ReplyMeaning::DomainReputation)
    )
}

/// A zone named in remote text, reduced to the characters of a DNS name.
fn safe_zone(z: &str) -> String {
    z.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(253)
        .collect()
}

fn none_seen_text(list: &str, win: &str) -> String {
    format!("no receiver cited {list} in the last {win}")
}

fn window_text(secs: i64) -> String {
    crate::time::fmt_duration(std::time::Duration::from_secs(secs.max(0) as u64))
}

fn sample(r: &Rejection) -> ReplySample {
    ReplySample {
        receiver: r.receiver.clone(),
        text: r.reply.clone(),
        count: r.count,
        outcome: r.outcome,
        meaning: r.meaning,
        rule: r.rule.clone(),
        list: r.list.clone(),
        relay: r.relay.clone(),
        queue_ids: r.queue_ids.clone(),
    }
}

/// Merges groups into samples by (receiver, rule, list, outcome), most frequent first.
fn samples<'r>(groups: impl Iterator<Item = &'r Rejection>, max: usize) -> Vec<ReplySample> {
    let mut out: Vec<ReplySample> = Vec::new();
    for g in groups {
        match out.iter_mut().find(|s| {
            s.receiver == g.receiver
                && s.rule == g.rule
                && s.list == g.list
                && s.outcome == g.outcome
        }) {
            Some(s) => {
                s.count += g.count;
                for q in &g.queue_ids {
                    if s.queue_ids.len() < 10 && !s.queue_ids.contains(q) {
                        s.queue_ids.push(q.clone());
                    }
                }
            }
            None => out.push(sample(g)),
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.count));
    out.truncate(max);
    out
}

/// Joins listings, rejections and backscatter evidence (pure).
pub fn assess(i: &Inputs<'_>) -> Assessment {
    let listings = cited_listings(i);
    let (mut receivers, receivers_omitted) = receiver_impacts(i);
    if let Some(ms) = snds_impact(i) {
        receivers.insert(0, ms);
    }
    let backscatter = backscatter_diagnoses(i);
    Assessment {
        at: i.at,
        window_secs: i.window_secs,
        threshold: i.threshold,
        listings,
        listed: i.listings.len() as u64,
        receivers,
        backscatter,
        receivers_omitted,
    }
}

/// The receiver id of Microsoft as SNDS reports it (apart from `microsoft`,
/// whose refusals come from the delivery log).
pub const SNDS_RECEIVER: &str = "microsoft-snds";

/// Microsoft's own data joined in: an IP SNDS marks blocked, or filtered red
/// on its newest day, is refused by Microsoft whatever the lists say. Always
/// `rejecting` (it is Microsoft's verdict, not a count over a threshold).
fn snds_impact(i: &Inputs<'_>) -> Option<ReceiverImpact> {
    if i.snds.is_empty() {
        return None;
    }
    let ips: Vec<&str> = i.snds.iter().map(|r| r.ip.as_str()).collect();
    let listed: BTreeSet<&str> = i
        .listings
        .iter()
        .filter(|l| ips.contains(&l.target.as_str()))
        .map(|l| l.list.as_str())
        .collect();
    let tail = if listed.is_empty() {
        "no monitored list lists it".to_string()
    } else {
        format!(
            "also listed on {}",
            listed.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    let evidence: Vec<String> = i.snds.iter().take(5).map(Refusal::evidence).collect();
    let mut meanings = BTreeMap::new();
    for r in i.snds {
        if r.blocked.is_some() {
            *meanings.entry("snds-blocked".to_string()).or_default() += 1;
        }
        if r.red.is_some() {
            *meanings.entry("snds-red".to_string()).or_default() += 1;
        }
    }
    Some(ReceiverImpact {
        id: SNDS_RECEIVER.into(),
        name: "Microsoft (SNDS)".into(),
        sender_page: Some("https://olcsupport.office.com/".into()),
        rejected: i
            .snds
            .iter()
            .filter_map(|r| r.red.as_ref().map(|(_, d)| d.recipients))
            .sum(),
        deferred: 0,
        other: 0,
        meanings,
        lists: Vec::new(),
        verdict: ReceiverVerdict::OwnData,
        rejecting: true,
        text: format!(
            "Microsoft refuses mail from {}: {}; {tail}",
            ips.iter().take(5).copied().collect::<Vec<_>>().join(", "),
            evidence.join("; ")
        ),
        replies: Vec::new(),
        queue_ids: Vec::new(),
        last_at: i.at,
    })
}

/// A receiver's display name: its configured name, else its id.
fn receiver_name(i: &Inputs<'_>, id: &str) -> String {
    i.receivers
        .get(id)
        .map(|r| r.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| id.to_string())
}

/// Listings some receiver cites in its refusals; the uncited ones are left out.
fn cited_listings(i: &Inputs<'_>) -> Vec<ListingImpact> {
    let win = window_text(i.window_secs);
    // listings: only the cited ones are kept. Refusals about us are grouped by
    // the list they name first, so each listing looks at its own list's refusals
    // (listings x refusals would be quadratic on a large sender).
    let mut citing_list: BTreeMap<&str, Vec<&Rejection>> = BTreeMap::new();
    for (_, r) in i.rejections {
        if let (true, Some(list)) = (about_us(r.meaning), r.list.as_deref()) {
            citing_list.entry(list).or_default().push(r);
        }
    }
    let mut listings = Vec::new();
    for l in i.listings {
        let Some(cands) = citing_list.get(l.list.as_str()) else {
            continue;
        };
        let citing: Vec<&Rejection> = cands
            .iter()
            .copied()
            .filter(|r| r.cited.as_deref().is_none_or(|c| cites(&l.target, c)))
            .collect();
        if citing.is_empty() {
            continue;
        }
        let count: u64 = citing.iter().map(|r| r.count).sum();
        let receivers: Vec<String> = citing
            .iter()
            .map(|r| r.receiver.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let who: Vec<String> = receivers.iter().map(|r| receiver_name(i, r)).collect();
        let text = format!(
            "{} {} mail citing {} ({count} in the last {win})",
            who.join(", "),
            if who.len() == 1 { "refuses" } else { "refuse" },
            l.list
        );
        listings.push(ListingImpact {
            target: l.target.clone(),
            list: l.list.clone(),
            list_name: l.list_name.clone(),
            impact: ImpactState::Rejecting,
            severity: Severity::Critical,
            receivers,
            count,
            text,
            replies: samples(citing.into_iter(), 3),
            delist: l.delist.clone(),
        });
    }
    listings
}

/// One impact per receiver that refused mail, the rejecting ones first; quiet
/// receivers (nothing about us) past MAX_QUIET_RECEIVERS are dropped and counted.
fn receiver_impacts(i: &Inputs<'_>) -> (Vec<ReceiverImpact>, usize) {
    let mut by_receiver: BTreeMap<&str, Vec<(i64, &Rejection)>> = BTreeMap::new();
    for (at, r) in i.rejections {
        by_receiver
            .entry(r.receiver.as_str())
            .or_default()
            .push((*at, r));
    }
    let mut receivers: Vec<ReceiverImpact> = by_receiver
        .into_iter()
        .map(|(id, rows)| receiver_impact(i, id, &rows))
        .collect();
    receivers.sort_by(|a, b| {
        (b.rejecting, b.rejected + b.deferred, b.other, &a.id).cmp(&(
            a.rejecting,
            a.rejected + a.deferred,
            a.other,
            &b.id,
        ))
    });
    let mut quiet = 0;
    let before = receivers.len();
    receivers.retain(|r| {
        if r.rejected + r.deferred > 0 {
            return true;
        }
        quiet += 1;
        quiet <= MAX_QUIET_RECEIVERS
    });
    let omitted = before - receivers.len();
    (receivers, omitted)
}

/// One receiver's refusals tallied: counts by outcome and meaning, the lists it
/// cites, its verdict and the sentence that says it.
fn receiver_impact(i: &Inputs<'_>, id: &str, rows: &[(i64, &Rejection)]) -> ReceiverImpact {
    let mut rejected = 0;
    let mut deferred = 0;
    let mut other = 0;
    let mut meanings: BTreeMap<String, u64> = BTreeMap::new();
    let mut lists: Vec<CitedList> = Vec::new();
    let mut queue_ids = Vec::new();
    for (_, r) in rows {
        let m = r.meaning.map_or("other", ReplyMeaning::as_str);
        *meanings.entry(m.to_string()).or_default() += r.count;
        if about_us(r.meaning) {
            match r.outcome {
                Outcome::Rejected => rejected += r.count,
                Outcome::Deferred => deferred += r.count,
            }
        } else {
            other += r.count;
        }
        for q in &r.queue_ids {
            if queue_ids.len() < 10 && !queue_ids.contains(q) {
                queue_ids.push(q.clone());
            }
        }
        if names_a_list(r.meaning) && (r.list.is_some() || r.zone.is_some()) {
            add_cited_list(&mut lists, r, i);
        }
    }
    let about = rejected + deferred;
    let verdict = if lists.iter().any(|c| !c.listed.is_empty()) {
        ReceiverVerdict::CitesListing
    } else if lists.iter().any(|c| c.monitored) {
        ReceiverVerdict::CitesClearList
    } else if !lists.is_empty() {
        ReceiverVerdict::CitesUnmonitoredList
    } else if about > 0 {
        ReceiverVerdict::OwnData
    } else {
        ReceiverVerdict::NotAboutUs
    };
    let name = receiver_name(i, id);
    let verb = if rejected > 0 { "rejects" } else { "defers" };
    let text = receiver_text(i, verdict, &name, verb, &lists, rows, other);
    ReceiverImpact {
        id: id.to_string(),
        sender_page: i.receivers.get(id).and_then(|r| r.sender_page.clone()),
        name,
        rejected,
        deferred,
        other,
        meanings,
        lists,
        verdict,
        rejecting: about > i.threshold,
        text,
        replies: samples(rows.iter().map(|(_, r)| *r), 5),
        queue_ids,
        last_at: rows.iter().map(|(a, _)| *a).max().unwrap_or(i.at),
    }
}

/// Counts a refusal that names a list into the receiver's cited lists: the
/// same list (or, without one, the same zone) adds up; a new one notes whether
/// it is monitored and which targets it lists.
fn add_cited_list(lists: &mut Vec<CitedList>, r: &Rejection, i: &Inputs<'_>) {
    let zone = r.zone.as_deref().map(safe_zone);
    let slot = lists.iter_mut().find(|c| match (&c.list, &r.list) {
        (Some(a), Some(b)) => a == b,
        (None, None) => c.zone == zone,
        _ => false,
    });
    match slot {
        Some(c) => c.count += r.count,
        None => {
            let monitored = r.list.as_ref().is_some_and(|l| i.monitored.contains_key(l));
            let listed = match &r.list {
                Some(l) => i
                    .listings
                    .iter()
                    .filter(|x| &x.list == l)
                    .filter(|x| r.cited.as_deref().is_none_or(|c| cites(&x.target, c)))
                    .map(|x| x.target.clone())
                    .collect(),
                None => Vec::new(),
            };
            lists.push(CitedList {
                list: r.list.clone(),
                zone,
                monitored,
                listed,
                count: r.count,
            });
        }
    }
}

/// The sentence that says a receiver's verdict.
fn receiver_text(
    i: &Inputs<'_>,
    verdict: ReceiverVerdict,
    name: &str,
    verb: &str,
    lists: &[CitedList],
    rows: &[(i64, &Rejection)],
    other: u64,
) -> String {
    let label = |c: &CitedList| -> String {
        match (&c.list, &c.zone) {
            (Some(l), _) => l.clone(),
            (None, Some(z)) => z.clone(),
            (None, None) => "a list".into(),
        }
    };
    match verdict {
        ReceiverVerdict::CitesListing => {
            let c = lists
                .iter()
                .find(|c| !c.listed.is_empty())
                .map(|c| format!("{}, which lists {}", label(c), c.listed.join(", ")))
                .unwrap_or_default();
            format!("{name} {verb} mail citing {c}")
        }
        ReceiverVerdict::CitesClearList => {
            let c: Vec<String> = lists.iter().filter(|c| c.monitored).map(label).collect();
            format!(
                "{name} {verb} mail citing {}; the monitor sees no listing of yours there (the receiver may use older or its own data)",
                c.join(", ")
            )
        }
        ReceiverVerdict::CitesUnmonitoredList => {
            let c: Vec<String> = lists.iter().map(label).collect();
            format!(
                "{name} {verb} mail citing {}, a list you do not monitor",
                c.join(", ")
            )
        }
        ReceiverVerdict::OwnData => {
            let top = rows
                .iter()
                .filter(|(_, r)| about_us(r.meaning))
                .fold(BTreeMap::<(&str, &str), u64>::new(), |mut m, (_, r)| {
                    let k = (
                        r.meaning.map_or("other", ReplyMeaning::as_str),
                        r.rule.as_deref().unwrap_or(""),
                    );
                    *m.entry(k).or_default() += r.count;
                    m
                })
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map(|((m, rule), _)| format!("{m} ({rule})"))
                .unwrap_or_default();
            let listed: BTreeSet<&str> = i.listings.iter().map(|l| l.list.as_str()).collect();
            let tail = if listed.is_empty() {
                "no monitored list lists you".to_string()
            } else {
                format!(
                    "it cites no list (you are listed on {})",
                    listed.into_iter().collect::<Vec<_>>().join(", ")
                )
            };
            format!("{name} {verb} mail for {top}; {tail}")
        }
        ReceiverVerdict::NotAboutUs => format!(
            "{name} refused {other} deliveries for reasons not about your reputation (recipients, its own errors, or wording no rule knows)"
        ),
    }
}

/// Backscatter diagnoses, one per target on a backscatter list, when there is
/// evidence (an NDR spike or a server found accepting unknown recipients).
fn backscatter_diagnoses(i: &Inputs<'_>) -> Vec<BackscatterSource> {
    let mut backscatter = Vec::new();
    let bs_targets: BTreeSet<&str> = i
        .listings
        .iter()
        .filter(|l| i.backscatter_lists.contains(&l.list))
        .map(|l| l.target.as_str())
        .collect();
    let evidence = !i.ndr_spikes.is_empty() || !i.vulnerable.is_empty();
    for t in bs_targets {
        if !evidence {
            break;
        }
        let lists: Vec<(String, String, Option<String>)> = i
            .listings
            .iter()
            .filter(|l| l.target == t && i.backscatter_lists.contains(&l.list))
            .map(|l| (l.list.clone(), l.list_name.clone(), l.delist.clone()))
            .collect();
        backscatter.push(diagnose(t, lists, i));
    }
    backscatter
}

fn diagnose(
    target: &str,
    lists: Vec<(String, String, Option<String>)>,
    i: &Inputs<'_>,
) -> BackscatterSource {
    let names: Vec<&str> = lists.iter().map(|(_, n, _)| n.as_str()).collect();
    let mut why = Vec::new();
    if !i.ndr_spikes.is_empty() {
        why.push(format!(
            "the volume of bounces (NDRs) it generates has spiked ({})",
            i.ndr_spikes.join(", ")
        ));
    }
    if !i.vulnerable.is_empty() {
        let p: Vec<String> = i
            .vulnerable
            .iter()
            .map(|(s, d)| format!("{s} for {d}"))
            .collect();
        why.push(format!(
            "the probe found it accepting mail for unknown recipients ({})",
            p.join(", ")
        ));
    }
    if !i.findings.is_empty() {
        let f: Vec<String> = i
            .findings
            .iter()
            .map(|f| format!("{} ({})", f.title, f.check))
            .collect();
        why.push(format!("its configuration says so: {}", f.join("; ")));
    }
    let diagnosis = format!(
        "{target} is listed on {} because this server is a backscatter source: {}. It accepts mail for recipients that do not exist and bounces it later to the forged sender addresses; those bounces reach spam traps, hence the listing.",
        names.join(" and "),
        why.join("; ")
    );
    let mut remediation: Vec<String> = Vec::new();
    for r in i.remedies {
        remediation.push(format!(
            "hook {} (on {}) runs: {}",
            r.hook,
            r.on.join(", "),
            r.command.join(" ")
        ));
    }
    for f in i.findings {
        remediation.push(format!("audit {}: {}", f.audit, f.fix));
    }
    remediation.push("Reject unknown recipients during the SMTP dialogue: Postfix `smtpd_reject_unlisted_recipient = yes` with a working `local_recipient_maps` (and `relay_recipient_maps` for relay domains); Exim `require verify = recipient` in the RCPT ACL.".into());
    remediation.push(
        "Hold or delete the bounces already queued for forged senders (Postfix `postsuper -h`/`-d`, Exim `-Mf`/`-Mrm`).".into(),
    );
    for (_, name, delist) in &lists {
        remediation.push(match delist {
            Some(u) => format!("Once no more backscatter leaves, request delisting from {name}: {u} (or wait for the listing to expire)."),
            None => format!("Once no more backscatter leaves, the listing on {name} expires."),
        });
    }
    BackscatterSource {
        target: target.to_string(),
        lists,
        ndr_spikes: i.ndr_spikes.to_vec(),
        probes: i.vulnerable.to_vec(),
        findings: i.findings.to_vec(),
        diagnosis,
        remediation,
    }
}

/// The conditions raised so far (kept by the daemon between assessments).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Active {
    /// Receivers `rejecting`.
    #[serde(default)]
    pub receivers: BTreeSet<String>,
    /// Listings `rejecting`: (target, list).
    #[serde(default)]
    pub listings: BTreeSet<(String, String)>,
    /// Backscatter sources.
    #[serde(default)]
    pub backscatter: BTreeSet<String>,
}

/// The events due from `prev` to `a`, and the new active set (pure).
/// `listings` are the ones `a` assessed: they tell a listing no longer cited
/// from one that ended.
pub fn transitions(prev: &Active, a: &Assessment, listings: &[Listing]) -> (Active, Vec<Event>) {
    let mut next = Active::default();
    let mut events = Vec::new();
    receiver_transitions(prev, a, &mut next, &mut events);
    listing_transitions(prev, a, listings, &mut next, &mut events);
    backscatter_transitions(prev, a, listings, &mut next, &mut events);
    (next, events)
}

/// Receivers that started or stopped rejecting: adds the rejecting ones to
/// `next` and the events due to `events`.
fn receiver_transitions(prev: &Active, a: &Assessment, next: &mut Active, events: &mut Vec<Event>) {
    let at = a.at;
    let win = window_text(a.window_secs);
    for r in a.rejecting() {
        next.receivers.insert(r.id.clone());
        if !prev.receivers.contains(&r.id) {
            events.push(Event::new(
                EventKind::ReceiverRejecting,
                at,
                Subject::Receiver { id: r.id.clone() },
                format!(
                    "{} is refusing our mail: {} rejected, {} deferred in the last {win}: {}",
                    r.name,
                    r.rejected,
                    r.deferred,
                    r.verdict.as_str()
                ),
                receiver_details(r, a),
            ));
        }
    }
    for id in prev.receivers.difference(&next.receivers) {
        let r = a.receivers.iter().find(|r| &r.id == id);
        let name = r.map_or(id.as_str(), |r| r.name.as_str());
        let n = r.map_or(0, |r| r.rejected + r.deferred);
        let summary = if n == 0 {
            format!("{name} no longer refuses our mail (none in the last {win})")
        } else {
            format!(
                "{name} no longer refuses much of our mail ({n} in the last {win}, threshold {})",
                a.threshold
            )
        };
        let details = match r {
            Some(r) => receiver_details(r, a),
            None => {
                serde_json::json!({ "receiver": id, "window_secs": a.window_secs, "counts": {"rejected": 0, "deferred": 0} })
            }
        };
        events.push(Event::new(
            EventKind::ReceiverRejectingCleared,
            at,
            Subject::Receiver { id: id.clone() },
            summary,
            details,
        ));
    }
}

/// Listings whose citing started or stopped (or whose listing ended): adds the
/// rejecting ones to `next` and the events due to `events`.
fn listing_transitions(
    prev: &Active,
    a: &Assessment,
    listings: &[Listing],
    next: &mut Active,
    events: &mut Vec<Event>,
) {
    let at = a.at;
    let win = window_text(a.window_secs);
    for l in a
        .listings
        .iter()
        .filter(|l| l.impact == ImpactState::Rejecting)
    {
        let key = (l.target.clone(), l.list.clone());
        next.listings.insert(key.clone());
        if !prev.listings.contains(&key) {
            events.push(Event::new(
                EventKind::ListingRejecting,
                at,
                Subject::pair(&l.target, &l.list),
                format!(
                    "{} on {}: impact rejecting: {}",
                    l.target, l.list_name, l.text
                ),
                listing_details(l),
            ));
        }
    }
    for (t, list) in prev.listings.difference(&next.listings) {
        let l = listings.iter().find(|l| &l.target == t && &l.list == list);
        let summary = match l {
            Some(_) => format!(
                "{t} on {list}: no receiver cites the listing any more (none in the last {win})"
            ),
            None => format!("{t} on {list}: the listing ended; no receiver cites it any more"),
        };
        let details = match l {
            Some(l) => listing_details(&a.none_seen(l)),
            None => {
                serde_json::json!({ "impact": {"state": "none_seen", "text": "the listing ended"} })
            }
        };
        events.push(Event::new(
            EventKind::ListingRejectingCleared,
            at,
            Subject::pair(t, list),
            summary,
            details,
        ));
    }
}

/// Backscatter sources found or gone: adds the found ones to `next` and the
/// events due to `events`.
fn backscatter_transitions(
    prev: &Active,
    a: &Assessment,
    listings: &[Listing],
    next: &mut Active,
    events: &mut Vec<Event>,
) {
    let at = a.at;
    for b in &a.backscatter {
        next.backscatter.insert(b.target.clone());
        if !prev.backscatter.contains(&b.target) {
            let mut details = serde_json::to_value(b).unwrap_or_default();
            if let Some((_, _, Some(u))) = b.lists.first() {
                details["delist"] = u.clone().into();
            }
            events.push(Event::new(
                EventKind::BackscatterSource,
                at,
                Subject::Target {
                    target: b.target.clone(),
                },
                format!(
                    "{} is a backscatter source: listed on {} while the server sends backscatter",
                    b.target,
                    b.lists
                        .iter()
                        .map(|(_, n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                details,
            ));
        }
    }
    for t in prev.backscatter.difference(&next.backscatter) {
        let still: Vec<&str> = listings
            .iter()
            .filter(|l| &l.target == t)
            .map(|l| l.list.as_str())
            .collect();
        events.push(Event::new(
            EventKind::BackscatterSourceCleared,
            at,
            Subject::Target { target: t.clone() },
            format!("{t} shows no more sign of sending backscatter (no NDR spike, no probe accepting unknown recipients)"),
            serde_json::json!({ "diagnosis": "no NDR spike in progress and no probe finds the server accepting unknown recipients; a backscatter listing expires on its own or can be removed now", "listings": still }),
        ));
    }
}

fn receiver_details(r: &ReceiverImpact, a: &Assessment) -> serde_json::Value {
    serde_json::json!({
        "receiver": r.id,
        "name": r.name,
        "sender_page": r.sender_page,
        "window_secs": a.window_secs,
        "threshold": a.threshold,
        "counts": {"rejected": r.rejected, "deferred": r.deferred, "other": r.other},
        "by_meaning": r.meanings,
        "lists": r.lists,
        "impact": {"verdict": r.verdict, "text": r.text},
        "replies": r.replies,
        "queue_ids": r.queue_ids,
    })
}

fn listing_details(l: &ListingImpact) -> serde_json::Value {
    serde_json::json!({
        "impact": {"state": l.impact, "severity": l.severity, "text": l.text},
        "list_name": l.list_name,
        "receivers": l.receivers,
        "count": l.count,
        "replies": l.replies,
        "delist": l.delist,
    })
}

#[cfg(test)]
mod tests;
