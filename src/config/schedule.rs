//! Durations (`"15m"`, `"1h30m"`, `"500ms"`) and schedules (a duration or a cron expression).

use std::fmt;
use std::time::Duration;

/// When a job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// At a fixed interval from start.
    Every(Duration),
    /// On a cron expression (6 fields, seconds first; a 5-field expression gets `0` seconds).
    Cron(String),
}

/// Parses `"30s"`, `"15m"`, `"1h30m"`, `"2d"`, `"500ms"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "{t:?} is not a duration (examples: \"30s\", \"15m\", \"1h30m\")"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{t:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86400),
            "" => return Err(format!("{t:?}: missing unit (ms, s, m, h or d)")),
            u => return Err(format!("{t:?}: unknown unit {u:?} (ms, s, m, h or d)")),
        };
        total += d;
    }
    if total.is_zero() {
        return Err(format!("{t:?}: must be more than zero"));
    }
    Ok(total)
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
            croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Required)
                .dom_and_dow(true)
                .build()
                .parse(&six)
                .map_err(|e| format!("bad cron expression {t:?}: {e}"))?;
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
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("15").unwrap_err().contains("missing unit"));
        assert!(parse_duration("15x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
    }

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
    }
}
