//! Spike detection on mail metrics (pure).
//!
//! A rule raises when any of its triggers fires:
//! * `above`: the value exceeds an absolute threshold;
//! * `rate`: the value rose by more than this since the previous sample;
//! * `baseline_factor`: the value is above `floor` and more than k × the
//!   rolling median of the same metric over the last 24 h.
//!
//! It clears with hysteresis: only after `clear_after` consecutive samples in
//! which no trigger fires *and* the value is at most `clear_ratio` × the
//! absolute threshold, so a value hovering at the threshold does not flap.

use serde::{Deserialize, Serialize};

use crate::config::SpikeRule;
use crate::event::EventKind;

/// The state of a rule, kept in the database between runs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SpikeState {
    /// In a spike.
    pub active: bool,
    /// Consecutive calm samples while active.
    pub calm: u32,
    /// When the spike started.
    pub since: i64,
    /// Previous value (for the rate trigger).
    pub prev: Option<f64>,
}

/// The figures a decision was based on (they go into the event).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpikeFigures {
    /// The value.
    pub value: f64,
    /// The previous value.
    pub previous: Option<f64>,
    /// The 24 h median.
    pub median_24h: Option<f64>,
    /// Which triggers fired.
    pub triggers: Vec<String>,
}

/// Evaluates one sample (pure). Returns the new state and the event to raise, if any.
pub fn evaluate(
    rule: &SpikeRule,
    state: SpikeState,
    value: f64,
    median_24h: Option<f64>,
    at: i64,
) -> (SpikeState, Option<(EventKind, SpikeFigures)>) {
    let mut triggers = Vec::new();
    if let Some(a) = rule.above {
        if value > a {
            triggers.push(format!("value {value} > threshold {a}"));
        }
    }
    if let (Some(r), Some(p)) = (rule.rate, state.prev) {
        if value - p > r {
            triggers.push(format!(
                "rose by {} (> {r}) since the previous sample",
                value - p
            ));
        }
    }
    if let (Some(k), Some(m)) = (rule.baseline_factor, median_24h) {
        if value >= rule.floor && value > k * m {
            triggers.push(format!("value {value} > {k} x 24 h median {m}"));
        }
    }
    let figures = SpikeFigures {
        value,
        previous: state.prev,
        median_24h,
        triggers,
    };
    let (raise, clear) = rule.kind.events();
    let mut next = SpikeState {
        prev: Some(value),
        ..state
    };
    if !state.active {
        if !figures.triggers.is_empty() {
            next.active = true;
            next.calm = 0;
            next.since = at;
            return (next, Some((raise, figures)));
        }
        return (next, None);
    }
    let calm_value = rule.above.is_none_or(|a| value <= a * rule.clear_ratio);
    if figures.triggers.is_empty() && calm_value {
        next.calm = state.calm + 1;
        if next.calm >= rule.clear_after.max(1) {
            next.active = false;
            next.calm = 0;
            return (next, Some((clear, figures)));
        }
    } else {
        next.calm = 0;
    }
    (next, None)
}

/// Median of values (None when empty).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SpikeKind;

    fn rule() -> SpikeRule {
        SpikeRule {
            metric: "mx.ndr_generated".into(),
            kind: SpikeKind::NdrSpike,
            above: Some(20.0),
            rate: None,
            baseline_factor: None,
            floor: 10.0,
            clear_after: 2,
            clear_ratio: 0.8,
        }
    }

    fn run(r: &SpikeRule, values: &[f64], median: Option<f64>) -> Vec<Option<EventKind>> {
        let mut s = SpikeState::default();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let (n, e) = evaluate(r, s, *v, median, i as i64);
                s = n;
                e.map(|x| x.0)
            })
            .collect()
    }

    #[test]
    fn absolute_threshold_with_hysteresis() {
        let r = rule();
        let ev = run(&r, &[5.0, 50.0, 60.0, 19.0, 10.0, 10.0, 30.0], None);
        // 19 is under the threshold but above 0.8 x 20 = 16: not calm yet; then two calm samples clear it
        assert_eq!(
            ev,
            vec![
                None,
                Some(EventKind::NdrSpike),
                None,
                None,
                None,
                Some(EventKind::NdrSpikeCleared),
                Some(EventKind::NdrSpike)
            ]
        );
        // hovering at the threshold does not flap
        let ev = run(&r, &[21.0, 19.0, 21.0, 19.0, 21.0], None);
        assert_eq!(ev.iter().flatten().count(), 1);
    }

    #[test]
    fn rate_trigger() {
        let r = SpikeRule {
            above: None,
            rate: Some(30.0),
            kind: SpikeKind::QueueSpike,
            ..rule()
        };
        let ev = run(&r, &[100.0, 120.0, 200.0, 200.0, 200.0], None);
        assert_eq!(
            ev,
            vec![
                None,
                None,
                Some(EventKind::QueueSpike),
                None,
                Some(EventKind::QueueSpikeCleared)
            ]
        );
    }

    #[test]
    fn baseline_trigger_has_a_floor() {
        let r = SpikeRule {
            above: None,
            baseline_factor: Some(5.0),
            floor: 10.0,
            ..rule()
        };
        // 6 > 5 x 1 but under the floor: tiny numbers do not alarm
        assert_eq!(run(&r, &[6.0], Some(1.0)), vec![None]);
        assert_eq!(run(&r, &[11.0], Some(1.0)), vec![Some(EventKind::NdrSpike)]);
        assert_eq!(run(&r, &[40.0], Some(10.0)), vec![None]);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
