//! Time, for every stage: the clock ([`now`]), how times are shown
//! ([`fmt_time`]) and how durations are written in the configuration
//! ([`parse_duration`]).
//!
//! A leaf module: it imports nothing of the crate, so any stage may use it
//! without reaching into another stage for a timestamp.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix time in seconds (0 if the clock is before 1970).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A Unix time as `2026-11-23 15:04:05 UTC` (the number itself if out of range).
pub fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// A duration in the largest whole units that fit, for people: `2h`, `90s`, `1d 2h`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (days, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let parts: Vec<String> = [(days, "d"), (h, "h"), (m, "m"), (sec, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    parts.join(" ")
}

/// The longest duration the configuration accepts anywhere: ten years. Longer
/// values are typos, and near `u64::MAX` seconds they overflow `Instant`s.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 86_400);

/// Parses `"30s"`, `"15m"`, `"1h30m"`, `"2d"`, `"500ms"` (the `humantime`
/// syntax). Zero, overflow and anything over [`MAX_DURATION`] are errors.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{t:?}: missing unit (ms, s, m, h or d)"));
    }
    let d = humantime::parse_duration(t).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => format!("{t:?}: number too large"),
        humantime::DurationError::UnknownUnit { unit, .. } => {
            format!("{t:?}: unknown unit {unit:?} (ms, s, m, h or d)")
        }
        _ => format!("{t:?} is not a duration (examples: \"30s\", \"15m\", \"1h30m\")"),
    })?;
    if d.is_zero() {
        return Err(format!("{t:?}: must be more than zero"));
    }
    if d > MAX_DURATION {
        return Err(format!("{t:?}: longer than ten years"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("15").unwrap_err().contains("missing unit"));
        assert!(parse_duration("15x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
    }

    /// Issue 13: these panicked (overflow) or wrapped to ~17 h.
    #[test]
    fn huge_durations_are_errors_not_panics() {
        assert!(parse_duration("18446744073709551615s18446744073709551615s").is_err());
        assert!(parse_duration("213503982334602d").is_err());
        assert!(parse_duration("11y").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(fmt_duration(Duration::from_secs(93_784)), "1d 2h 3m 4s");
        assert_eq!(fmt_duration(Duration::from_millis(400)), "400ms");
    }
}
