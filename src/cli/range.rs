//! Threshold ranges of the Monitoring Plugins development guidelines
//! (<https://www.monitoring-plugins.org/doc/guidelines.html#THRESHOLDFORMAT>),
//! as `-w`/`-c` of `rblwatch check --nagios` take them.
//!
//! `[@]start:end`: `start` may be left out when it is 0 (`10` is `0:10`), an
//! empty `end` is +infinity (`10:`), `~` as start is -infinity (`~:10`).
//! A value outside the range (ends included) alerts; with `@` a value inside
//! it (ends included) does. So `-w 0` warns at 1 or more listings.

use std::fmt;

/// One threshold range (pure; parsed from the command line).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower end; `None` is -infinity (`~`).
    start: Option<f64>,
    /// Upper end; `None` is +infinity (empty after `:`).
    end: Option<f64>,
    /// `@`: alert inside the range instead of outside.
    inside: bool,
}

/// Why a range does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid threshold range {text:?}: {why} (plugin range syntax: 10, 10:, ~:10, 10:20, @10:20)"
)]
pub struct RangeError {
    text: String,
    why: &'static str,
}

impl Range {
    /// Parses `[@]start:end` as the guidelines define it.
    pub fn parse(text: &str) -> Result<Range, RangeError> {
        let err = |why| RangeError {
            text: text.to_string(),
            why,
        };
        let t = text.trim();
        let (inside, t) = match t.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        if t.is_empty() {
            return Err(err("empty"));
        }
        let (start, end) = match t.split_once(':') {
            None => (
                Some(0.0),
                Some(number(t).ok_or_else(|| err("not a number"))?),
            ),
            Some(("", "")) => return Err(err("empty")),
            Some((s, e)) => {
                let start = match s {
                    "" => Some(0.0),
                    "~" => None,
                    s => Some(number(s).ok_or_else(|| err("start is not a number"))?),
                };
                let end = match e {
                    "" => None,
                    e => Some(number(e).ok_or_else(|| err("end is not a number"))?),
                };
                (start, end)
            }
        };
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                return Err(err("start is greater than end"));
            }
        }
        Ok(Range { start, end, inside })
    }

    /// True when `v` alerts against this range.
    pub fn alerts(&self, v: f64) -> bool {
        let within = self.start.is_none_or(|s| v >= s) && self.end.is_none_or(|e| v <= e);
        within == self.inside
    }
}

/// A finite decimal number (no `inf`/`nan`, which `f64::from_str` accepts).
fn number(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'));
    ok.then(|| s.parse::<f64>().ok()).flatten()
}

/// The canonical text, as perfdata's warn/crit fields carry it.
impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        match (self.start, self.end) {
            (Some(s), Some(e)) if s == 0.0 && !self.inside => write!(f, "{e}"),
            (Some(s), Some(e)) => write!(f, "{s}:{e}"),
            (Some(s), None) => write!(f, "{s}:"),
            (None, Some(e)) => write!(f, "~:{e}"),
            (None, None) => f.write_str("~:"),
        }
    }
}

/// For clap: `-w`/`-c` values are parsed (and refused) while the arguments are.
impl std::str::FromStr for Range {
    type Err = RangeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Range::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Range {
        Range::parse(s).unwrap()
    }

    #[test]
    fn the_guidelines_examples() {
        // 10: alert if < 0 or > 10
        for (v, a) in [
            (-1.0, true),
            (0.0, false),
            (10.0, false),
            (10.5, true),
            (11.0, true),
        ] {
            assert_eq!(r("10").alerts(v), a, "10 at {v}");
        }
        // 10: alert if < 10
        for (v, a) in [(9.0, true), (10.0, false), (1e9, false), (-5.0, true)] {
            assert_eq!(r("10:").alerts(v), a, "10: at {v}");
        }
        // ~:10: alert if > 10
        for (v, a) in [(-1e9, false), (10.0, false), (11.0, true)] {
            assert_eq!(r("~:10").alerts(v), a, "~:10 at {v}");
        }
        // 10:20: alert if < 10 or > 20
        for (v, a) in [(9.0, true), (10.0, false), (20.0, false), (21.0, true)] {
            assert_eq!(r("10:20").alerts(v), a, "10:20 at {v}");
        }
        // @10:20: alert if >= 10 and <= 20
        for (v, a) in [
            (9.0, false),
            (10.0, true),
            (15.0, true),
            (20.0, true),
            (21.0, false),
        ] {
            assert_eq!(r("@10:20").alerts(v), a, "@10:20 at {v}");
        }
    }

    #[test]
    fn listing_counts() {
        // "0": one listing alerts, none does not
        assert!(!r("0").alerts(0.0));
        assert!(r("0").alerts(1.0));
        // the examples
        assert!(r("1:3").alerts(0.0) && !r("1:3").alerts(2.0) && r("1:3").alerts(4.0));
        assert!(r("@1:3").alerts(1.0) && !r("@1:3").alerts(0.0) && !r("@1:3").alerts(4.0));
        assert!(!r("~:2").alerts(2.0) && r("~:2").alerts(3.0));
        // ":5" is 0:5; "-1:1" has a negative start; decimals work
        assert_eq!(r(":5"), r("5"));
        assert!(!r("-1:1").alerts(-1.0));
        assert!(r("2.5").alerts(2.6) && !r("2.5").alerts(2.5));
    }

    #[test]
    fn refuses_what_is_not_a_range() {
        for bad in [
            "", "@", "abc", "1:2:3", "20:10", "~", "1:x", "inf", "nan", ":", "@:",
        ] {
            assert!(Range::parse(bad).is_err(), "{bad:?} parsed");
        }
        let e = Range::parse("20:10").unwrap_err().to_string();
        assert!(
            e.contains("start is greater than end") && e.contains("20:10"),
            "{e}"
        );
    }

    #[test]
    fn displays_canonically_for_perfdata() {
        for (i, o) in [
            ("10", "10"),
            ("0:10", "10"),
            ("10:", "10:"),
            ("~:10", "~:10"),
            ("10:20", "10:20"),
            ("@10:20", "@10:20"),
            ("@5", "@0:5"),
            ("~:", "~:"),
        ] {
            assert_eq!(r(i).to_string(), o, "{i}");
            assert_eq!(r(o), r(i), "{o} round-trips");
        }
    }
}
