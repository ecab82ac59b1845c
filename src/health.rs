//! List health from the RFC 5782 test points (pure).
//!
//! Every run asks each list about its "must be listed" and "must not be
//! listed" test points before trusting it. A list that is dead, lists the
//! world, blocks us or cannot be reached still has its answers reported, but
//! they never count as listings.

use serde::Serialize;

use crate::verdict::Verdict;

/// Health of one list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "health", rename_all = "kebab-case")]
pub enum ListHealth {
    /// Both test points answer as they must.
    Healthy,
    /// The positive test point is not listed: the zone is empty, gone or misconfigured.
    Dead {
        /// Details.
        why: String,
    },
    /// The negative test point is listed: the list (or a wildcard) answers everything.
    ListsEverything {
        /// Details.
        why: String,
    },
    /// The list answers with error codes or REFUSED: it will not serve us.
    Blocked {
        /// Details, with what to do about it.
        why: String,
    },
    /// No answer (timeout, SERVFAIL, network).
    Unreachable {
        /// Details.
        why: String,
    },
}

impl ListHealth {
    /// The state's name (`healthy`, `dead`, `lists-everything`, `blocked`, `unreachable`).
    pub fn name(&self) -> &'static str {
        match self {
            ListHealth::Healthy => "healthy",
            ListHealth::Dead { .. } => "dead",
            ListHealth::ListsEverything { .. } => "lists-everything",
            ListHealth::Blocked { .. } => "blocked",
            ListHealth::Unreachable { .. } => "unreachable",
        }
    }

    /// Whether the list's verdicts may count as listings.
    pub fn is_healthy(&self) -> bool {
        matches!(self, ListHealth::Healthy)
    }

    /// Details (empty when healthy).
    pub fn why(&self) -> &str {
        match self {
            ListHealth::Healthy => "",
            ListHealth::Dead { why }
            | ListHealth::ListsEverything { why }
            | ListHealth::Blocked { why }
            | ListHealth::Unreachable { why } => why,
        }
    }
}

/// Advice shown when a list blocks us.
pub const BLOCKED_ADVICE: &str = "queries through public or shared resolvers (8.8.8.8, 1.1.1.1, ISP resolvers) are refused by \
many lists: run a local recursive resolver (unbound) or configure the list's key (e.g. a Spamhaus DQS key)";

/// Derives a list's health from its two test-point verdicts.
pub fn assess(positive: &Verdict, negative: &Verdict) -> ListHealth {
    // 1. Error codes or REFUSED anywhere: the list is talking to us, but will not serve us.
    for (which, v) in [("negative", negative), ("positive", positive)] {
        if let Verdict::ListError { why, codes } = v {
            if codes.iter().any(|c| c.octets()[0] != 127) {
                // An answer outside 127/8 on the negative point means a wildcard: treated below.
                if which == "negative" {
                    return ListHealth::ListsEverything {
                        why: format!("negative test point answered: {why}"),
                    };
                }
                return ListHealth::Dead {
                    why: format!("positive test point answered: {why}"),
                };
            }
            // A documented error code names its cause: give that cause's advice.
            let advice =
                crate::catalog::ErrorCause::find_in(why).map_or(BLOCKED_ADVICE, |c| c.advice());
            return ListHealth::Blocked {
                why: format!("{which} test point: {why}; {advice}"),
            };
        }
    }
    // 2. The negative point is listed: nothing from this list can be believed.
    if let Verdict::Listed { codes, .. } | Verdict::Allowed { codes, .. } = negative {
        let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
        return ListHealth::ListsEverything {
            why: format!(
                "the must-not-be-listed test point is listed ({})",
                codes.join(", ")
            ),
        };
    }
    // 3. No answer.
    for (which, v) in [("positive", positive), ("negative", negative)] {
        if let Verdict::Unknown { why } = v {
            return ListHealth::Unreachable {
                why: format!("{which} test point: {why}"),
            };
        }
    }
    // 4. The positive point is not listed.
    if matches!(positive, Verdict::Clear) {
        return ListHealth::Dead {
            why: "the must-be-listed test point is not listed (empty, retired or wrong zone)"
                .into(),
        };
    }
    ListHealth::Healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(c: &str) -> Verdict {
        Verdict::Listed {
            codes: vec![c.parse().unwrap()],
            meanings: vec![],
            txt: vec![],
        }
    }

    #[test]
    fn states() {
        assert_eq!(
            assess(&listed("127.0.0.2"), &Verdict::Clear),
            ListHealth::Healthy
        );
        assert_eq!(assess(&Verdict::Clear, &Verdict::Clear).name(), "dead");
        assert_eq!(
            assess(&listed("127.0.0.2"), &listed("127.0.0.2")).name(),
            "lists-everything"
        );
        let blocked = Verdict::ListError {
            why: "127.255.255.254: public resolver".into(),
            codes: vec!["127.255.255.254".parse().unwrap()],
        };
        let h = assess(&blocked, &blocked);
        assert_eq!(h.name(), "blocked");
        assert!(h.why().contains("DQS"), "{h:?}");
        // a named cause brings its own advice
        let typo = Verdict::ListError {
            why: "127.255.255.252: typo in the zone name: typing error".into(),
            codes: vec!["127.255.255.252".parse().unwrap()],
        };
        let h = assess(&typo, &typo);
        assert_eq!(h.name(), "blocked");
        assert!(h.why().contains("fix the list's zone name"), "{h:?}");
        let unk = Verdict::Unknown {
            why: "timeout".into(),
        };
        assert_eq!(assess(&unk, &unk).name(), "unreachable");
        assert_eq!(assess(&listed("127.0.0.2"), &unk).name(), "unreachable");
        let parked = Verdict::ListError {
            why: "outside".into(),
            codes: vec!["192.0.2.1".parse().unwrap()],
        };
        assert_eq!(assess(&parked, &parked).name(), "lists-everything");
        let refused = Verdict::ListError {
            why: "REFUSED".into(),
            codes: vec![],
        };
        assert_eq!(assess(&refused, &refused).name(), "blocked");
    }
}
