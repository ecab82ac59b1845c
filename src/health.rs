//! List health from the RFC 5782 test points, and the resolver's (pure).
//!
//! Every run asks each list about its "must be listed" and "must not be
//! listed" test points before trusting it. A list that is dead, lists the
//! world, blocks us or cannot be reached still has its answers reported, but
//! they never count as listings.
//!
//! The same check judges the resolver ([`assess_resolver`]): when most lists
//! fail at once, or random names that cannot exist get answers, the cause is
//! the resolver, and saying "35 lists are dead" would send the postmaster to
//! the wrong place.

use std::net::SocketAddr;

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
    /// A mirrored list whose data is older than its `max_age` (or never
    /// loaded): its pairs are unchecked, never clear.
    Stale {
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
            ListHealth::Stale { .. } => "stale",
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
            | ListHealth::Unreachable { why }
            | ListHealth::Stale { why } => why,
        }
    }
}

/// Advice shown when a list blocks us.
pub const BLOCKED_ADVICE: &str = "queries through public or shared resolvers (8.8.8.8, 1.1.1.1, ISP resolvers) are refused by \
many lists: run a local recursive resolver (unbound) or configure the list's key (e.g. a Spamhaus DQS key)";

/// Derives a list's health from its two test-point verdicts.
pub fn assess(positive: &Verdict, negative: &Verdict) -> ListHealth {
    assess_points(&[("", positive)], &[("", negative)])
}

/// Derives a list's health from the verdicts of all its test points, each
/// with the point's name: every positive must be listed, no negative may be.
pub fn assess_points(positives: &[(&str, &Verdict)], negatives: &[(&str, &Verdict)]) -> ListHealth {
    let name = |which: &str, point: &str| {
        if point.is_empty() {
            format!("{which} test point")
        } else {
            format!("{which} test point {point}")
        }
    };
    // 1. Error codes or REFUSED anywhere: the list is talking to us, but will not serve us.
    let tagged = negatives
        .iter()
        .map(|(p, v)| ("negative", *p, *v))
        .chain(positives.iter().map(|(p, v)| ("positive", *p, *v)));
    for (which, point, v) in tagged {
        if let Verdict::ListError { why, codes } = v {
            if codes.iter().any(|c| c.octets()[0] != 127) {
                // An answer outside 127/8 on the negative point means a wildcard: treated below.
                if which == "negative" {
                    return ListHealth::ListsEverything {
                        why: format!("{} answered: {why}", name(which, point)),
                    };
                }
                return ListHealth::Dead {
                    why: format!("{} answered: {why}", name(which, point)),
                };
            }
            // A documented error code names its cause: give that cause's advice.
            let advice =
                crate::catalog::ErrorCause::find_in(why).map_or(BLOCKED_ADVICE, |c| c.advice());
            return ListHealth::Blocked {
                why: format!("{}: {why}; {advice}", name(which, point)),
            };
        }
    }
    // 2. A negative point is listed: nothing from this list can be believed.
    for (point, v) in negatives {
        if let Verdict::Listed { codes, .. } | Verdict::Allowed { codes, .. } = v {
            let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
            let what = if point.is_empty() {
                "the must-not-be-listed test point".to_string()
            } else {
                format!("the must-not-be-listed test point {point}")
            };
            return ListHealth::ListsEverything {
                why: format!("{what} is listed ({})", codes.join(", ")),
            };
        }
    }
    // 3. No answer.
    let tagged = positives
        .iter()
        .map(|(p, v)| ("positive", *p, *v))
        .chain(negatives.iter().map(|(p, v)| ("negative", *p, *v)));
    for (which, point, v) in tagged {
        if let Verdict::Unknown { why } = v {
            return ListHealth::Unreachable {
                why: format!("{}: {why}", name(which, point)),
            };
        }
    }
    // 4. A positive point is not listed.
    for (point, v) in positives {
        if matches!(v, Verdict::Clear) {
            let what = if point.is_empty() {
                "the must-be-listed test point".to_string()
            } else {
                format!("the must-be-listed test point {point}")
            };
            return ListHealth::Dead {
                why: format!("{what} is not listed (empty, retired or wrong zone)"),
            };
        }
    }
    ListHealth::Healthy
}

crate::spelling::closed_set! {
    /// How usable the resolver is.
    pub enum ResolverStatus {
        /// Answers as a resolver must.
        Ok = "ok",
        /// Usable, but some lists refuse it (a public or shared resolver).
        Degraded = "degraded",
        /// Its answers cannot be believed (or there are none): nothing is checked.
        Unusable = "unusable",
    }
}

/// The resolver's health: a status, why, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ResolverHealth {
    /// The status.
    pub status: ResolverStatus,
    /// Why, in words.
    pub why: String,
    /// What to do (empty when all is well).
    pub fix: String,
}

impl ResolverHealth {
    /// Why nothing can be checked through this resolver, or `None` when it is
    /// usable. The one wording of the resolver gate.
    pub fn unusable_reason(&self) -> Option<String> {
        (self.status == ResolverStatus::Unusable)
            .then(|| format!("the resolver is unusable ({})", self.why))
    }

    fn new(status: ResolverStatus, why: String, fix: &str) -> Self {
        ResolverHealth {
            status,
            why,
            fix: fix.to_string(),
        }
    }
}

/// Fix for a public or shared resolver.
pub const PUBLIC_RESOLVER_FIX: &str = "run your own recursive resolver (e.g. unbound on this host), set [resolver] mode = \"direct\" so rblwatch asks each list's own servers, or configure the lists' keys (Spamhaus DQS)";

/// One list's part in the resolver's diagnosis: its health, and the answer to
/// a random name under its zone that cannot exist (the canary).
#[derive(Debug, Clone, Copy)]
pub struct ListCheck<'a> {
    /// The list's id (for messages).
    pub id: &'a str,
    /// Its health from the test points.
    pub health: &'a ListHealth,
    /// The answer for `rblwatch-canary-<random>.<zone>`.
    pub canary: &'a Verdict,
}

/// Judges the resolver from one health check of every list (pure).
///
/// In order: random names that cannot exist getting addresses under most
/// lists' zones means NXDOMAIN rewriting (unusable); every list unreachable
/// means the resolver does not answer (unusable); most lists (three quarters,
/// at least three) failing at once means the resolver is broken (unusable);
/// lists refusing it as a public resolver make it degraded (unusable when
/// all do). Otherwise list problems are the lists' own.
pub fn assess_resolver(checks: &[ListCheck<'_>]) -> ResolverHealth {
    assess_resolver_at(checks, &[])
}

/// [`assess_resolver`] for a resolver at known addresses: its messages name
/// them and their ports (a resolver on port 25099 is not "port 53").
pub fn assess_resolver_at(checks: &[ListCheck<'_>], servers: &[SocketAddr]) -> ResolverHealth {
    use ResolverStatus::*;
    let n = checks.len();
    if n == 0 {
        return ResolverHealth::new(Ok, "no list to check it with".into(), "");
    }
    let answered: Vec<&str> = checks
        .iter()
        .filter(|c| match c.canary {
            Verdict::Listed { .. } | Verdict::Allowed { .. } => true,
            Verdict::ListError { codes, .. } => !codes.is_empty(),
            Verdict::Clear | Verdict::Unknown { .. } => false,
        })
        .map(|c| c.id)
        .collect();
    let reachable = checks
        .iter()
        .filter(|c| !matches!(c.canary, Verdict::Unknown { .. }))
        .count();
    if answered.len() >= 2 && answered.len() * 2 >= reachable {
        return ResolverHealth::new(
            Unusable,
            format!(
                "the resolver answers names that do not exist ({} of {reachable} random names under the lists' zones got an address): it rewrites NXDOMAIN, so no \"not listed\" can be believed",
                answered.len()
            ),
            "use a resolver that does not rewrite answers: a local unbound, or [resolver] mode = \"direct\"",
        );
    }
    let unreachable = checks
        .iter()
        .filter(|c| matches!(c.health, ListHealth::Unreachable { .. }))
        .count();
    if unreachable == n {
        let why = checks.first().map_or("", |c| c.health.why());
        if servers.is_empty() {
            return ResolverHealth::new(
                Unusable,
                format!("the resolver does not answer (all {n} lists: {why})"),
                "check [resolver] nameservers (or /etc/resolv.conf) and that UDP and TCP port 53 to it are open",
            );
        }
        let at = servers
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let mut ports: Vec<u16> = servers.iter().map(|s| s.port()).collect();
        ports.sort_unstable();
        ports.dedup();
        let ports = ports
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let (resolver, port) = if servers.len() == 1 {
            ("the resolver", "port")
        } else {
            ("none of the resolvers", "ports")
        };
        let verb = if servers.len() == 1 { "does" } else { "do" };
        return ResolverHealth::new(
            Unusable,
            format!("{resolver} at {at} {verb} not answer (all {n} lists: {why})"),
            &format!(
                "check that a resolver runs at {at} ([resolver] nameservers, --resolver or /etc/resolv.conf) and that UDP and TCP {port} {ports} to it are open"
            ),
        );
    }
    let public: Vec<&str> = checks
        .iter()
        .filter(|c| {
            matches!(c.health, ListHealth::Blocked { why }
                if crate::catalog::ErrorCause::find_in(why) == Some(crate::catalog::ErrorCause::PublicResolver))
        })
        .map(|c| c.id)
        .collect();
    let unhealthy = checks.iter().filter(|c| !c.health.is_healthy()).count();
    if n >= 3 && unhealthy * 4 >= n * 3 && public.len() < unhealthy {
        let mut states: Vec<&str> = checks
            .iter()
            .filter(|c| !c.health.is_healthy())
            .map(|c| c.health.name())
            .collect();
        states.sort_unstable();
        states.dedup();
        return ResolverHealth::new(
            Unusable,
            format!(
                "{unhealthy} of {n} lists fail their test points at once ({}): the resolver, not the lists, is broken",
                states.join(", ")
            ),
            "check the resolver: it must answer NXDOMAIN for names that do not exist and pass DNSBL answers through unchanged; or set [resolver] mode = \"direct\"",
        );
    }
    if !public.is_empty() {
        let status = if public.len() == n {
            Unusable
        } else {
            Degraded
        };
        return ResolverHealth::new(
            status,
            format!(
                "{} list(s) refuse this resolver as a public or shared one ({})",
                public.len(),
                public.join(", ")
            ),
            PUBLIC_RESOLVER_FIX,
        );
    }
    let why = if unhealthy == 0 {
        "answers as expected".to_string()
    } else {
        format!("answers as expected ({unhealthy} list(s) unhealthy on their own)")
    };
    ResolverHealth::new(Ok, why, "")
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

    fn check<'a>(id: &'a str, health: &'a ListHealth, canary: &'a Verdict) -> ListCheck<'a> {
        ListCheck { id, health, canary }
    }

    #[test]
    fn the_resolver_is_judged_from_all_lists_at_once() {
        let ok = ListHealth::Healthy;
        let dead = ListHealth::Dead { why: "x".into() };
        let clear = Verdict::Clear;
        let rewritten = Verdict::ListError {
            why: "outside".into(),
            codes: vec!["198.51.100.7".parse().unwrap()],
        };
        let timeout = Verdict::Unknown {
            why: "timeout".into(),
        };
        let unreach = ListHealth::Unreachable {
            why: "timeout".into(),
        };
        let public = ListHealth::Blocked {
            why: "positive test point: 127.255.255.254: public resolver: x; y".into(),
        };
        // all fine
        let r = assess_resolver(&[check("a", &ok, &clear), check("b", &ok, &clear)]);
        assert_eq!(r.status, ResolverStatus::Ok);
        // NXDOMAIN rewriting: canaries answered under most zones
        let r = assess_resolver(&[
            check("a", &dead, &rewritten),
            check("b", &dead, &rewritten),
            check("c", &ok, &clear),
        ]);
        assert_eq!(r.status, ResolverStatus::Unusable);
        assert!(r.why.contains("NXDOMAIN"), "{r:?}");
        // an NXDOMAIN-for-everything resolver: every list dead at once
        let r = assess_resolver(&[
            check("a", &dead, &clear),
            check("b", &dead, &clear),
            check("c", &dead, &clear),
            check("d", &ok, &clear),
        ]);
        assert_eq!(r.status, ResolverStatus::Unusable);
        assert!(r.why.contains("not the lists"), "{r:?}");
        // one dead list of three is the list's problem
        let r = assess_resolver(&[
            check("a", &dead, &clear),
            check("b", &ok, &clear),
            check("c", &ok, &clear),
        ]);
        assert_eq!(r.status, ResolverStatus::Ok);
        // no answer at all
        let r = assess_resolver(&[
            check("a", &unreach, &timeout),
            check("b", &unreach, &timeout),
        ]);
        assert_eq!(r.status, ResolverStatus::Unusable);
        assert!(r.why.contains("does not answer"), "{r:?}");
        // ... at a known address: the message names it and its real port
        let at: SocketAddr = "127.0.0.1:25099".parse().unwrap();
        let r = assess_resolver_at(
            &[
                check("a", &unreach, &timeout),
                check("b", &unreach, &timeout),
            ],
            &[at],
        );
        assert_eq!(r.status, ResolverStatus::Unusable);
        assert!(r.why.contains("127.0.0.1:25099 does not answer"), "{r:?}");
        assert!(
            r.fix.contains("port 25099") && !r.fix.contains("53"),
            "{r:?}"
        );
        // a public resolver: degraded while other lists work, with the fix
        let r = assess_resolver(&[check("zen", &public, &clear), check("b", &ok, &clear)]);
        assert_eq!(r.status, ResolverStatus::Degraded);
        assert!(r.why.contains("zen") && r.fix.contains("direct"), "{r:?}");
        // a single wildcarding list is not the resolver
        let r = assess_resolver(&[
            check("a", &ok, &rewritten),
            check("b", &ok, &clear),
            check("c", &ok, &clear),
        ]);
        assert_eq!(r.status, ResolverStatus::Ok);
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

    #[test]
    fn every_positive_must_be_listed_and_no_negative() {
        let l = listed("127.0.0.2");
        let c = Verdict::Clear;
        assert_eq!(
            assess_points(&[("a", &l), ("b", &l)], &[("x", &c), ("y", &c)]),
            ListHealth::Healthy
        );
        // one positive of two not listed: dead, naming the point
        let h = assess_points(&[("a", &l), ("b", &c)], &[("x", &c)]);
        assert_eq!(h.name(), "dead");
        assert!(h.why().contains("test point b"), "{h:?}");
        // one negative of two listed: lists everything, naming the point
        let h = assess_points(&[("a", &l)], &[("x", &c), ("y", &l)]);
        assert_eq!(h.name(), "lists-everything");
        assert!(h.why().contains("test point y"), "{h:?}");
    }
}
