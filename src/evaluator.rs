//! The evaluator: pure state transitions, no I/O.
//!
//! Per (target, list) pair a [`PairState`] moves
//! `clear → suspected → listed → clearing → clear` on [`Observation`]s.
//! Confirmation counts stop one odd answer from raising (or ending) a listing,
//! so a flapping list does not alert on every sweep. Unknown answers, list
//! errors and answers from unhealthy lists are [`Observation::Ignored`] and
//! never move a state. A target's first sweep is its silent baseline: what is
//! already listed is recorded and shown, but flagged `baseline` so actions do
//! not treat it as news.
//!
//! Everything the rest of the product acts on is an [`Event`]: listings,
//! list health, mail spikes and probe results all travel the same path
//! (evaluator → store → hooks/alerts → web).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::event::ListingDetails;
use crate::event::{Event, EventKind, Subject};
use crate::health::{ListHealth, ResolverHealth, ResolverStatus};
use crate::verdict::Verdict;

/// Confirmation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirm {
    /// Consecutive listed answers that confirm a listing (≥ 1).
    pub listed: u32,
    /// Consecutive clear answers that confirm a delisting (≥ 1).
    pub clear: u32,
}

impl Default for Confirm {
    fn default() -> Self {
        Confirm {
            listed: 2,
            clear: 2,
        }
    }
}

/// Where a pair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PairState {
    /// Not listed (the default; such pairs are not stored).
    #[default]
    Clear,
    /// Listed answers seen, not yet confirmed.
    Suspected {
        /// Consecutive listed answers so far.
        seen: u32,
    },
    /// A confirmed listing.
    Listed,
    /// Clear answers seen on a listed pair, not yet confirmed.
    Clearing {
        /// Consecutive clear answers so far.
        seen: u32,
    },
}

impl PairState {
    /// Name used in the database and output.
    pub fn name(&self) -> &'static str {
        match self {
            PairState::Clear => "clear",
            PairState::Suspected { .. } => "suspected",
            PairState::Listed => "listed",
            PairState::Clearing { .. } => "clearing",
        }
    }

    /// The counter of the suspected/clearing states.
    pub fn seen(&self) -> u32 {
        match self {
            PairState::Suspected { seen } | PairState::Clearing { seen } => *seen,
            _ => 0,
        }
    }

    /// Rebuilds a state from its stored name and counter.
    pub fn from_parts(name: &str, seen: u32) -> Option<Self> {
        Some(match name {
            "clear" => PairState::Clear,
            "suspected" => PairState::Suspected { seen },
            "listed" => PairState::Listed,
            "clearing" => PairState::Clearing { seen },
            _ => return None,
        })
    }

    /// Whether the pair counts as listed for people (listed or clearing).
    pub fn is_listed(&self) -> bool {
        matches!(self, PairState::Listed | PairState::Clearing { .. })
    }
}

/// What one sweep says about a pair, once list health is taken into account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// A listed answer from a healthy list.
    Listed {
        /// A second, independent resolver gave the same answer: confirm at once.
        corroborated: bool,
    },
    /// A clear answer (NXDOMAIN/NODATA) from a healthy list.
    Clear,
    /// Anything that must not move the state: unknown, list error, allowed, unhealthy list.
    Ignored,
}

impl Observation {
    /// Derives the observation from a verdict and the list's health.
    pub fn from_verdict(v: &Verdict, health: &ListHealth) -> Self {
        if !health.is_healthy() {
            return Observation::Ignored;
        }
        match v {
            Verdict::Listed { .. } => Observation::Listed {
                corroborated: false,
            },
            Verdict::Clear => Observation::Clear,
            _ => Observation::Ignored,
        }
    }
}

/// A state change the rest of the product acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The pair became listed.
    Listed,
    /// The pair stopped being listed.
    Delisted,
}

/// Whether the pair is in its target's first (baseline) sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// The target's first sweep: listings are recorded at once, silently.
    Baseline,
    /// Any later sweep.
    Regular,
}

/// One step of the state machine (pure).
pub fn step(
    prev: PairState,
    obs: Observation,
    confirm: Confirm,
    sweep: Sweep,
) -> (PairState, Option<Transition>) {
    use Observation as O;
    use PairState as S;
    match (prev, obs) {
        (s, O::Ignored) => (s, None),
        (S::Clear, O::Listed { corroborated }) => {
            if sweep == Sweep::Baseline || corroborated || confirm.listed <= 1 {
                (S::Listed, Some(Transition::Listed))
            } else {
                (S::Suspected { seen: 1 }, None)
            }
        }
        (S::Clear, O::Clear) => (S::Clear, None),
        (S::Suspected { seen }, O::Listed { corroborated }) => {
            if corroborated || seen + 1 >= confirm.listed {
                (S::Listed, Some(Transition::Listed))
            } else {
                (S::Suspected { seen: seen + 1 }, None)
            }
        }
        (S::Suspected { .. }, O::Clear) => (S::Clear, None),
        (S::Listed, O::Listed { .. }) => (S::Listed, None),
        (S::Listed, O::Clear) => {
            if confirm.clear <= 1 {
                (S::Clear, Some(Transition::Delisted))
            } else {
                (S::Clearing { seen: 1 }, None)
            }
        }
        (S::Clearing { seen }, O::Clear) => {
            if seen + 1 >= confirm.clear {
                (S::Clear, Some(Transition::Delisted))
            } else {
                (S::Clearing { seen: seen + 1 }, None)
            }
        }
        (S::Clearing { .. }, O::Listed { .. }) => (S::Listed, None),
    }
}

/// Health transition of a list (pure): `Some(kind)` when an event is due.
///
/// `announced` says whether the list's last health event was `list_unhealthy`:
/// a recovery is news only after a fall that was announced (a list that went
/// bad while the resolver was unusable was never announced, so its return is
/// not announced either).
pub fn health_transition(
    prev: Option<&ListHealth>,
    now: &ListHealth,
    announced: bool,
) -> Option<EventKind> {
    match (prev.map(ListHealth::is_healthy), now.is_healthy()) {
        (None | Some(true), false) => Some(EventKind::ListUnhealthy),
        (_, true) if announced => Some(EventKind::ListRecovered),
        (Some(false), false) if !announced => Some(EventKind::ListUnhealthy),
        _ => None,
    }
}

/// What is remembered of a non-clear pair between sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairMem {
    /// Its state.
    pub state: PairState,
    /// When it entered the state.
    pub since: i64,
    /// Fingerprint of its last codes and TXT.
    pub digest: u64,
}

impl PairMem {
    /// A pair never seen before: clear since `at`.
    pub fn clear(at: i64) -> Self {
        PairMem {
            state: PairState::Clear,
            since: at,
            digest: 0,
        }
    }
}

/// A pair's new state, to be written (`Clear` deletes the row).
#[derive(Debug, Clone, PartialEq)]
pub struct PairUpdate {
    /// Target.
    pub target: String,
    /// List id.
    pub list: String,
    /// New state (`Clear` deletes the row).
    pub state: PairState,
    /// When it entered that state.
    pub since: i64,
    /// Details of the latest answer (shared with the listing period).
    pub details: Arc<ListingDetails>,
}

impl PairUpdate {
    /// What memory keeps of the pair once the update is committed.
    pub fn mem(&self) -> PairMem {
        PairMem {
            state: self.state,
            since: self.since,
            digest: digest_of(&self.details),
        }
    }
}

/// What happens to a listing period.
#[derive(Debug, Clone, PartialEq)]
pub enum PeriodChange {
    /// A listing starts.
    Open {
        /// Target.
        target: String,
        /// List id.
        list: String,
        /// Start.
        at: i64,
        /// Codes, TXT…
        details: Arc<ListingDetails>,
        /// Part of the silent baseline.
        baseline: bool,
    },
    /// A listing ends.
    Close {
        /// Target.
        target: String,
        /// List id.
        list: String,
        /// End.
        at: i64,
    },
}

/// When a pair's state `next` began, given its previous state: a listing
/// starts at its first listed answer (the suspected state's start) and ends
/// at its first clear answer (the clearing state's start); any other change
/// starts `at`.
pub fn since_of(prev: PairMem, next: PairState, at: i64) -> i64 {
    match (prev.state, next) {
        (a, b) if a == b => prev.since,
        (PairState::Suspected { .. }, PairState::Listed | PairState::Suspected { .. }) => {
            prev.since
        }
        (PairState::Clearing { .. }, PairState::Clear | PairState::Clearing { .. }) => prev.since,
        _ => at,
    }
}

/// A cheap fingerprint of a listing's codes and TXT, to skip rewriting unchanged rows.
pub fn digest_of(d: &ListingDetails) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    d.codes.hash(&mut h);
    d.meanings.hash(&mut h);
    d.txt.hash(&mut h);
    h.finish()
}

/// Everything one counted answer changes for its pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PairStep {
    /// The pair's state after the answer.
    pub next: PairState,
    /// The row to write, when the state (or a listing's codes or TXT) changed.
    pub pair: Option<PairUpdate>,
    /// A listing period opened or closed.
    pub period: Option<PeriodChange>,
    /// The event to raise (none for a baseline listing: the sweep summarises those).
    pub event: Option<Event>,
    /// A listing found by a target's first (baseline) sweep.
    pub baseline_listing: bool,
}

/// How an answer is taken: the confirmation counts, whether it is a
/// target's baseline sweep, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepRules {
    /// Confirmation counts.
    pub confirm: Confirm,
    /// Baseline or regular sweep.
    pub sweep: Sweep,
    /// When the answer came (unix seconds).
    pub at: i64,
}

/// The one per-pair rule, used by sweeps and delisting re-checks alike (pure):
/// previous state + a counted observation → the pair's update, the listing
/// period's change and the event. `details` describe the answer and the list
/// as shown (its display zone and name), so every event of one listing names
/// the list the same way.
pub fn pair_step(
    prev: PairMem,
    obs: Observation,
    rules: StepRules,
    target: &str,
    list: &str,
    details: Arc<ListingDetails>,
) -> PairStep {
    let StepRules { confirm, sweep, at } = rules;
    let (next, transition) = step(prev.state, obs, confirm, sweep);
    let since = since_of(prev, next, at);
    // A listed pair is rewritten only when its codes or TXT changed.
    let refresh = next == PairState::Listed
        && prev.state == PairState::Listed
        && digest_of(&details) != prev.digest;
    let pair = (next != prev.state || refresh).then(|| PairUpdate {
        target: target.to_string(),
        list: list.to_string(),
        state: next,
        since,
        details: details.clone(),
    });
    let baseline = sweep == Sweep::Baseline;
    let (period, event, baseline_listing) = match transition {
        Some(Transition::Listed) => (
            Some(PeriodChange::Open {
                target: target.to_string(),
                list: list.to_string(),
                at: since,
                details: details.clone(),
                baseline,
            }),
            // Already listed at the first sweep: recorded and shown, summarised in one event.
            (!baseline).then(|| Event::listed(target, list, &details, at)),
            baseline,
        ),
        Some(Transition::Delisted) => (
            Some(PeriodChange::Close {
                target: target.to_string(),
                list: list.to_string(),
                at: since,
            }),
            Some(Event::delisted(target, list, &details, at)),
            false,
        ),
        None => (None, None, false),
    };
    PairStep {
        next,
        pair,
        period,
        event,
        baseline_listing,
    }
}

/// The events the evaluator raises, built here and nowhere else.
impl Event {
    /// A pair became listed.
    pub fn listed(target: &str, list: &str, d: &ListingDetails, at: i64) -> Event {
        Event::new(
            EventKind::Listed,
            at,
            Subject::pair(target, list),
            format!(
                "{target} is listed on {} ({})",
                d.list_name,
                d.meanings.join("; ")
            ),
            serde_json::to_value(d).unwrap_or_default(),
        )
    }

    /// A pair stopped being listed. Carries the list as shown, like `listed`.
    pub fn delisted(target: &str, list: &str, d: &ListingDetails, at: i64) -> Event {
        Event::new(
            EventKind::Delisted,
            at,
            Subject::pair(target, list),
            format!("{target} is no longer listed on {}", d.list_name),
            serde_json::json!({ "zone": d.zone, "list_name": d.list_name, "delist": d.delist }),
        )
    }

    /// A list went bad (`list_unhealthy`) or came back (`list_recovered`).
    pub fn list_health(
        kind: EventKind,
        list: &str,
        zone: &str,
        name: &str,
        health: &ListHealth,
        at: i64,
    ) -> Event {
        let summary = match kind {
            EventKind::ListUnhealthy => {
                format!("list {list} is {}: {}", health.name(), health.why())
            }
            _ => format!("list {list} is healthy again"),
        };
        Event::new(
            kind,
            at,
            Subject::List { id: list.into() },
            summary,
            serde_json::json!({ "health": health, "zone": zone, "list_name": name }),
        )
    }

    /// The resolver became unusable (`resolver_unusable`) or usable again.
    pub fn resolver(kind: EventKind, servers: &str, r: &ResolverHealth, at: i64) -> Event {
        let summary = match kind {
            EventKind::ResolverUnusable => format!(
                "the resolver {servers} is unusable: {}; nothing is checked until it is fixed ({})",
                r.why, r.fix
            ),
            _ => format!("the resolver {servers} is usable again: {}", r.why),
        };
        Event::new(
            kind,
            at,
            Subject::Resolver {
                servers: servers.to_string(),
            },
            summary,
            serde_json::to_value(r).unwrap_or_default(),
        )
    }

    /// A first sweep's silent baseline, summarised once.
    pub fn baseline(
        targets: Vec<String>,
        count: u64,
        listings: Vec<serde_json::Value>,
        at: i64,
    ) -> Event {
        let mut e = Event::new(
            EventKind::Baseline,
            at,
            Subject::None,
            format!(
                "first sweep of {} target(s): {count} listing(s) already present",
                targets.len()
            ),
            serde_json::json!({ "targets": targets, "already_listed": count, "listings": listings }),
        );
        e.baseline = true;
        e
    }
}

/// The resolver transition (pure): `Some(kind)` when an event is due.
pub fn resolver_transition(
    prev: Option<&ResolverHealth>,
    now: &ResolverHealth,
) -> Option<EventKind> {
    let was = prev.is_some_and(|r| r.status == ResolverStatus::Unusable);
    match (was, now.status == ResolverStatus::Unusable) {
        (false, true) => Some(EventKind::ResolverUnusable),
        (true, false) => Some(EventKind::ResolverRecovered),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(confirm: Confirm, sweep: Sweep, at: i64) -> StepRules {
        StepRules { confirm, sweep, at }
    }

    const L: Observation = Observation::Listed {
        corroborated: false,
    };
    const C: Observation = Observation::Clear;
    const I: Observation = Observation::Ignored;

    fn run(obs: &[Observation], confirm: Confirm) -> (PairState, Vec<Transition>) {
        let mut s = PairState::Clear;
        let mut ts = Vec::new();
        for o in obs {
            let (n, t) = step(s, *o, confirm, Sweep::Regular);
            s = n;
            ts.extend(t);
        }
        (s, ts)
    }

    #[test]
    fn confirmation_needs_two_listed_answers() {
        let c = Confirm::default();
        assert_eq!(run(&[L], c), (PairState::Suspected { seen: 1 }, vec![]));
        assert_eq!(
            run(&[L, L], c),
            (PairState::Listed, vec![Transition::Listed])
        );
        assert_eq!(
            run(&[L, L, L, L], c),
            (PairState::Listed, vec![Transition::Listed])
        );
        assert_eq!(
            run(&[L, L, C], c),
            (PairState::Clearing { seen: 1 }, vec![Transition::Listed])
        );
        assert_eq!(
            run(&[L, L, C, C], c),
            (
                PairState::Clear,
                vec![Transition::Listed, Transition::Delisted]
            )
        );
        let three = Confirm {
            listed: 3,
            clear: 1,
        };
        assert_eq!(run(&[L, L], three).1, vec![]);
        assert_eq!(
            run(&[L, L, L, C], three).1,
            vec![Transition::Listed, Transition::Delisted]
        );
    }

    #[test]
    fn a_second_resolver_confirms_at_once() {
        let (s, t) = step(
            PairState::Clear,
            Observation::Listed { corroborated: true },
            Confirm::default(),
            Sweep::Regular,
        );
        assert_eq!((s, t), (PairState::Listed, Some(Transition::Listed)));
    }

    #[test]
    fn flapping_answers_do_not_alert_every_time() {
        let c = Confirm::default();
        // listed/clear/listed/clear...: never confirmed, never an event
        assert_eq!(
            run(&[L, C, L, C, L, C, L, C], c),
            (PairState::Clear, vec![])
        );
        // once listed, clear/listed/clear/listed never delists
        let (s, t) = run(&[L, L, C, L, C, L, C, L], c);
        assert_eq!(s, PairState::Listed);
        assert_eq!(t, vec![Transition::Listed]);
    }

    #[test]
    fn unknowns_in_between_do_not_move_or_reset_the_state() {
        let c = Confirm::default();
        assert_eq!(
            run(&[L, I, I, L], c),
            (PairState::Listed, vec![Transition::Listed])
        );
        assert_eq!(
            run(&[L, L, C, I, C], c).1,
            vec![Transition::Listed, Transition::Delisted]
        );
        assert_eq!(run(&[I, I, I], c), (PairState::Clear, vec![]));
    }

    #[test]
    fn unhealthy_list_answers_are_ignored() {
        let v = Verdict::Listed {
            codes: vec![],
            meanings: vec![],
            txt: vec![],
        };
        let sick = ListHealth::ListsEverything { why: "x".into() };
        assert_eq!(Observation::from_verdict(&v, &sick), Observation::Ignored);
        assert_eq!(Observation::from_verdict(&v, &ListHealth::Healthy), L);
        let err = Verdict::ListError {
            why: "x".into(),
            codes: vec![],
        };
        assert_eq!(Observation::from_verdict(&err, &ListHealth::Healthy), I);
        assert_eq!(
            Observation::from_verdict(&Verdict::Unknown { why: "t".into() }, &ListHealth::Healthy),
            I
        );
    }

    #[test]
    fn baseline_records_existing_listings_at_once() {
        let (s, t) = step(PairState::Clear, L, Confirm::default(), Sweep::Baseline);
        assert_eq!((s, t), (PairState::Listed, Some(Transition::Listed)));
        // the caller flags it baseline; a clear answer in the baseline is nothing
        assert_eq!(
            step(PairState::Clear, C, Confirm::default(), Sweep::Baseline),
            (PairState::Clear, None)
        );
    }

    #[test]
    fn one_listing_names_its_list_the_same_way_when_it_starts_and_ends() {
        // a DQS list is shown with `<key>` in its zone: listed and delisted
        // events both carry the shown zone, never the key nor the catalog zone
        let d = Arc::new(ListingDetails {
            codes: vec![std::net::Ipv4Addr::new(127, 0, 0, 2)],
            meanings: vec!["SBL".into()],
            txt: vec![],
            delist: Some("https://example.org/delist".into()),
            zone: "<key>.zen.dq.spamhaus.net".into(),
            list_name: "Spamhaus ZEN".into(),
        });
        let c = Confirm {
            listed: 1,
            clear: 1,
        };
        let on = pair_step(
            PairMem::clear(10),
            L,
            rules(c, Sweep::Regular, 10),
            "192.0.2.1",
            "zen",
            d.clone(),
        );
        let listed = on
            .event
            .clone()
            .unwrap_or_else(|| Event::sample(EventKind::Baseline));
        assert_eq!(listed.kind, EventKind::Listed);
        let mem = on
            .pair
            .as_ref()
            .map(PairUpdate::mem)
            .unwrap_or(PairMem::clear(0));
        assert_eq!(mem.state, PairState::Listed);
        assert!(matches!(
            on.period,
            Some(PeriodChange::Open {
                at: 10,
                baseline: false,
                ..
            })
        ));
        let off = pair_step(mem, C, rules(c, Sweep::Regular, 20), "192.0.2.1", "zen", d);
        let delisted = off
            .event
            .unwrap_or_else(|| Event::sample(EventKind::Baseline));
        assert_eq!(delisted.kind, EventKind::Delisted);
        assert_eq!(listed.details["zone"], delisted.details["zone"]);
        assert_eq!(delisted.details["zone"], "<key>.zen.dq.spamhaus.net");
        assert_eq!(listed.details["list_name"], delisted.details["list_name"]);
        assert!(matches!(
            off.period,
            Some(PeriodChange::Close { at: 20, .. })
        ));
        assert_eq!(off.pair.map(|p| p.state), Some(PairState::Clear));
    }

    #[test]
    fn a_baseline_listing_opens_a_silent_period_and_no_event() {
        let d = Arc::new(ListingDetails::default());
        let s = pair_step(
            PairMem::clear(5),
            L,
            rules(Confirm::default(), Sweep::Baseline, 5),
            "t",
            "l",
            d,
        );
        assert!(s.baseline_listing);
        assert!(s.event.is_none());
        assert!(matches!(
            s.period,
            Some(PeriodChange::Open { baseline: true, .. })
        ));
    }

    #[test]
    fn an_unchanged_listing_is_not_rewritten_but_new_txt_is() {
        let d = Arc::new(ListingDetails {
            txt: vec!["a".into()],
            ..Default::default()
        });
        let prev = PairMem {
            state: PairState::Listed,
            since: 1,
            digest: digest_of(&d),
        };
        let same = pair_step(
            prev,
            L,
            rules(Confirm::default(), Sweep::Regular, 9),
            "t",
            "l",
            d,
        );
        assert!(same.pair.is_none() && same.event.is_none() && same.period.is_none());
        let d2 = Arc::new(ListingDetails {
            txt: vec!["b".into()],
            ..Default::default()
        });
        let changed = pair_step(
            prev,
            L,
            rules(Confirm::default(), Sweep::Regular, 9),
            "t",
            "l",
            d2,
        );
        assert_eq!(changed.pair.map(|p| p.since), Some(1));
    }

    #[test]
    fn health_events() {
        let bad = ListHealth::Dead { why: "x".into() };
        let ok = ListHealth::Healthy;
        assert_eq!(health_transition(None, &ok, false), None);
        assert_eq!(
            health_transition(None, &bad, false),
            Some(EventKind::ListUnhealthy)
        );
        assert_eq!(
            health_transition(Some(&ok), &bad, false),
            Some(EventKind::ListUnhealthy)
        );
        assert_eq!(health_transition(Some(&bad), &bad, true), None);
        assert_eq!(
            health_transition(Some(&bad), &ok, true),
            Some(EventKind::ListRecovered)
        );
        // a fall never announced (the resolver was unusable) is announced late,
        // and its return is not news
        assert_eq!(
            health_transition(Some(&bad), &bad, false),
            Some(EventKind::ListUnhealthy)
        );
        assert_eq!(health_transition(Some(&bad), &ok, false), None);
        assert_eq!(EventKind::parse("ndr_spike"), Some(EventKind::NdrSpike));
    }
}
