//! Durations (`"15m"`, `"1h30m"`, `"500ms"`) and schedules (a duration or a cron expression).

use std::fmt;
use std::time::Duration;

use crate::time::parse_duration;

/// When a job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// At a fixed interval from start.
    Every(Duration),
    /// On a cron expression (6 fields, seconds first; a 5-field expression gets `0` seconds).
    Cron(String),
}

impl Schedule {
    /// A duration, or a cron expression (5 or 6 fields).
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let fields = t.split_whitespace().count();
        if fields >= 5 {
            let six = if fields == 5 {
                format!("0 {t}")
            } else {
                t.to_string()
            };
            let cron = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Required)
                .dom_and_dow(true)
                .build()
                .parse(&six)
                .map_err(|e| format!("bad cron expression {t:?}: {e}"))?;
            // "0 0 30 2 *" parses but never comes: a job that would never run
            if cron.find_next_occurrence(&chrono_now(), false).is_err() {
                return Err(format!(
                    "cron expression {t:?} never fires (no such date): the job would never run"
                ));
            }
            return Ok(Schedule::Cron(six));
        }
        parse_duration(t)
            .map(Schedule::Every)
            .map_err(|e| format!("{e}; or give a cron expression such as \"*/30 * * * *\""))
    }

    /// A nominal interval, used to spread a sweep (cron: the gap between its next two runs).
    pub fn nominal_interval(&self) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron(c) => {
                let parsed = croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Required)
                    .dom_and_dow(true)
                    .build()
                    .parse(c);
                let now = chrono_now();
                parsed
                    .ok()
                    .and_then(|cron| {
                        let mut it = cron.iter_after(now);
                        let a = it.next()?;
                        let b = it.next()?;
                        (b - a).to_std().ok()
                    })
                    .unwrap_or(Duration::from_secs(1800))
            }
        }
    }
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(d) => write!(f, "every {}s", d.as_secs_f64()),
            Schedule::Cron(c) => write!(f, "cron {c:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(
            Schedule::parse("30m"),
            Ok(Schedule::Every(Duration::from_secs(1800)))
        );
        assert_eq!(
            Schedule::parse("*/30 * * * *"),
            Ok(Schedule::Cron("0 */30 * * * *".into()))
        );
        assert_eq!(
            Schedule::parse("*/30 * * * *").unwrap().nominal_interval(),
            Duration::from_secs(1800)
        );
        assert!(Schedule::parse("61 * * * *").unwrap_err().contains("cron"));
        assert!(Schedule::parse("soon").is_err());
        // parses, but there is no 30 February: refused rather than never run
        let e = Schedule::parse("0 0 30 2 *").unwrap_err();
        assert!(e.contains("never fires"), "{e}");
        // once every four years is rare, not never
        assert!(Schedule::parse("0 0 29 2 *").is_ok());
    }
}
