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

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::event::EventKind;
use crate::health::ListHealth;
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

/// Listing details carried by `listed`/`delisted` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ListingDetails {
    /// A records.
    pub codes: Vec<Ipv4Addr>,
    /// Meanings of the codes.
    pub meanings: Vec<String>,
    /// TXT reasons (untrusted).
    pub txt: Vec<String>,
    /// Delisting link.
    pub delist: Option<String>,
    /// List zone (display form).
    pub zone: String,
    /// List name.
    pub list_name: String,
}

/// Health transition of a list (pure): `Some(kind)` when an event is due.
pub fn health_transition(prev: Option<&ListHealth>, now: &ListHealth) -> Option<EventKind> {
    match (prev.map(ListHealth::is_healthy), now.is_healthy()) {
        (None | Some(true), false) => Some(EventKind::ListUnhealthy),
        (Some(false), true) => Some(EventKind::ListRecovered),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn health_events() {
        let bad = ListHealth::Dead { why: "x".into() };
        assert_eq!(health_transition(None, &ListHealth::Healthy), None);
        assert_eq!(
            health_transition(None, &bad),
            Some(EventKind::ListUnhealthy)
        );
        assert_eq!(
            health_transition(Some(&ListHealth::Healthy), &bad),
            Some(EventKind::ListUnhealthy)
        );
        assert_eq!(health_transition(Some(&bad), &bad), None);
        assert_eq!(
            health_transition(Some(&bad), &ListHealth::Healthy),
            Some(EventKind::ListRecovered)
        );
        assert_eq!(EventKind::parse("ndr_spike"), Some(EventKind::NdrSpike));
    }
}
