//! Query budgets (pure): no list is unlimited. Spamhaus' free use is 300,000
//! queries a day, others document less, and a /20 swept every 30 minutes is
//! 196,608 queries a day per list. So for each list the daily queries implied
//! by its targets, the sweep schedule and the health checks are computed at
//! start-up and on reload, and a list that would go over its `daily_limit` is
//! swept only every k-th sweep (its interval stretched to fit). The engine
//! also counts the queries it sends per list per UTC day and sends none past
//! the limit, whatever the plan says.

use std::time::Duration;

use serde::Serialize;

/// The share of the budget a plan may use: the rest covers TXT lookups of
/// listings and the health checks' timing.
const HEADROOM: f64 = 0.9;

/// Queries per health check of a list: two test points and the canary.
pub const HEALTH_QUERIES: u64 = 3;

/// How often one list is swept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetPlan {
    /// The list.
    pub list: String,
    /// Its daily limit, if it has one.
    pub daily_limit: Option<u64>,
    /// Targets it answers for.
    pub pairs: u64,
    /// Swept at every `every`-th sweep (1: every sweep).
    pub every: u32,
    /// The resulting interval.
    #[serde(with = "secs")]
    pub interval: Duration,
    /// Queries a day at that interval (health checks included).
    pub daily_queries: u64,
    /// Even one sweep a day (or the health checks alone) would go over the limit.
    pub over_anyway: bool,
}

mod secs {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

fn per_day(every: Duration) -> f64 {
    86_400.0 / every.as_secs_f64().max(1.0)
}

/// Queries a day for `pairs` targets swept every `sweep`, with health checks every `health`.
pub fn daily_queries(pairs: u64, sweep: Duration, health: Duration) -> u64 {
    daily_queries_with(pairs, sweep, health, HEALTH_QUERIES)
}

/// [`daily_queries`] for a list whose health check asks `hq` questions (its
/// test points, several on some lists and IPv6 ones on `ip` lists, and the canary).
pub fn daily_queries_with(pairs: u64, sweep: Duration, health: Duration, hq: u64) -> u64 {
    let sweeps = per_day(sweep) * (pairs + hq) as f64;
    let checks = per_day(health) * hq as f64;
    (sweeps + checks).ceil() as u64
}

/// Plans one list: the smallest `every` whose daily queries fit `limit`.
pub fn plan(
    list: &str,
    limit: Option<u64>,
    pairs: u64,
    sweep: Duration,
    health: Duration,
) -> BudgetPlan {
    plan_with(list, limit, pairs, sweep, health, HEALTH_QUERIES)
}

/// [`plan`] for a list whose health check asks `hq` questions.
pub fn plan_with(
    list: &str,
    limit: Option<u64>,
    pairs: u64,
    sweep: Duration,
    health: Duration,
    hq: u64,
) -> BudgetPlan {
    let at = |every: u32| daily_queries_with(pairs, sweep * every, health, hq);
    let max_every = (86_400 / sweep.as_secs().max(1)).max(1) as u32;
    let mut every = 1;
    let mut over_anyway = false;
    if let Some(limit) = limit {
        let budget = (limit as f64 * HEADROOM) as u64;
        while at(every) > budget && every < max_every {
            // jump close to the answer, then step
            let need = at(every) as f64 / budget.max(1) as f64;
            every = ((every as f64 * need).ceil() as u32).clamp(every + 1, max_every);
        }
        // step back down while a smaller stretch still fits
        while every > 1 && at(every - 1) <= budget {
            every -= 1;
        }
        over_anyway = at(every) > budget;
    }
    BudgetPlan {
        list: list.to_string(),
        daily_limit: limit,
        pairs,
        every,
        interval: sweep * every,
        daily_queries: at(every),
        over_anyway,
    }
}

impl BudgetPlan {
    /// Whether the list is due at `now` (unix seconds), last swept at `last`,
    /// with sweeps every `base`: always when not stretched; else once its
    /// interval has passed (half a sweep of slack for the scheduler's jitter).
    pub fn due(&self, last: Option<i64>, now: i64, base: Duration) -> bool {
        self.every <= 1
            || last.is_none_or(|t| {
                now - t >= self.interval.as_secs() as i64 - base.as_secs() as i64 / 2
            })
    }

    /// Whether the list is swept less often than the schedule says.
    pub fn stretched(&self) -> bool {
        self.every > 1
    }

    /// For people: "swept every 2h to stay within 100,000 queries/day".
    pub fn describe(&self) -> Option<String> {
        let limit = self.daily_limit?;
        let lim = group(limit);
        if self.over_anyway {
            // said against what it is compared with: the share of the limit a
            // plan may use, not the limit itself ("9,667 against 10,000" read as
            // within it)
            let planned = (limit as f64 * HEADROOM) as u64;
            return Some(format!(
                "over its budget even if swept once a day: {} queries/day for {} targets, more than the {} a plan may use ({:.0} % of the limit of {lim}; the rest is kept for TXT lookups and health checks); the engine stops at the limit (sweep fewer targets, or raise daily_limit in [lists.override.{}] for a paid plan)",
                group(self.daily_queries),
                group(self.pairs),
                group(planned),
                HEADROOM * 100.0,
                self.list
            ));
        }
        self.stretched().then(|| {
            format!(
                "swept every {} to stay within {lim} queries/day ({} targets)",
                crate::time::fmt_duration(self.interval),
                group(self.pairs)
            )
        })
    }
}

/// 100000 → "100,000".
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slash_20_every_30_minutes_overruns_a_free_list_and_is_stretched() {
        let half_hour = Duration::from_secs(1800);
        // issue 9: 4,096 targets every 30 min = 196,608 a day (plus health checks)
        // a list with more test points (IPv6 ones, several positives) spends more on health
        assert!(
            daily_queries_with(10, half_hour, half_hour, 10)
                > daily_queries(10, half_hour, half_hour)
        );
        assert!(daily_queries(4096, half_hour, half_hour) > 196_608);
        let p = plan("sem-bl", Some(100_000), 4096, half_hour, half_hour);
        assert!(p.every >= 2, "{p:?}");
        assert!(p.daily_queries <= 90_000, "{p:?}");
        assert!(daily_queries(4096, half_hour * (p.every - 1), half_hour) > 90_000);
        assert_eq!(
            p.describe().unwrap(),
            format!(
                "swept every {} to stay within 100,000 queries/day (4,096 targets)",
                crate::time::fmt_duration(p.interval)
            )
        );
        // no limit, or a small target set: every sweep
        assert_eq!(plan("x", None, 4096, half_hour, half_hour).every, 1);
        let small = plan("x", Some(100_000), 16, half_hour, half_hour);
        assert_eq!(small.every, 1);
        assert_eq!(small.describe(), None);
        // a limit not even one sweep a day fits
        let p = plan("x", Some(1000), 65_536, half_hour, half_hour);
        assert!(p.over_anyway && p.describe().unwrap().contains("over its budget"));
        // the figure it is over is the one named (issue 22: "9,667 ... against a limit of 10,000")
        let d = p.describe().unwrap();
        let planned = (p.daily_limit.unwrap() as f64 * HEADROOM) as u64;
        assert!(p.daily_queries > planned, "{d}");
        assert!(
            d.contains(&format!("more than the {}", group(planned))),
            "{d}"
        );
    }
}
