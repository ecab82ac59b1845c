//! Prometheus text exposition format: pick series by name and labels.

use super::ParseError;
use crate::config::mail::{parse_series, Selector};

/// Index of the `}` closing the label set opened at `open`, skipping quoted values.
fn closing_brace(line: &str, open: usize) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in line.char_indices().skip_while(|(i, _)| *i <= open) {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => quoted = !quoted,
            (false, _, '}') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Sums the values of the series matching `sel` in `text`; `None` when no series matches.
pub fn pick(text: &str, sel: &Selector) -> Result<Option<f64>, ParseError> {
    let mut sum = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // the value is after the series (which may contain spaces inside quotes)
        let series_end = match line.find('{') {
            Some(open) if line[..open].find(char::is_whitespace).is_none() => {
                closing_brace(line, open)
                    .ok_or_else(|| ParseError::new(i + 1, "unterminated label set".into()))?
                    + 1
            }
            _ => line.find(char::is_whitespace).unwrap_or(line.len()),
        };
        let (series, rest) = line.split_at(series_end);
        let (name, labels) = parse_series(series.trim()).map_err(|e| ParseError::new(i + 1, e))?;
        let value = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| ParseError::new(i + 1, "missing value".into()))?;
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .map_err(|_| ParseError::new(i + 1, format!("bad value {v:?}")))?,
        };
        if sel.matches(&name, &labels) && v.is_finite() {
            sum = Some(sum.unwrap_or(0.0) + v);
        }
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# HELP postfix_showq_message_age_seconds Age of messages in Postfix's message queue, in seconds
# TYPE postfix_showq_message_age_seconds histogram
postfix_showq_message_age_seconds_bucket{queue="deferred",le="60"} 3
postfix_showq_message_age_seconds_count{queue="active"} 2
postfix_showq_message_age_seconds_count{queue="deferred"} 57
postfix_showq_message_age_seconds_count{queue="hold"} 4
# TYPE postfix_bounce_non_delivery_notification_total counter
postfix_bounce_non_delivery_notification_total 1234 1700000000000
postfix_smtpd_messages_rejected_total{code="550",weird="a \"quoted\", value}"} 7
"#;

    #[test]
    fn picks_by_name_and_labels() {
        let s = |x: &str| Selector::parse(x).unwrap();
        assert_eq!(
            pick(
                SAMPLE,
                &s(r#"postfix_showq_message_age_seconds_count{queue="deferred"}"#)
            )
            .unwrap(),
            Some(57.0)
        );
        assert_eq!(
            pick(SAMPLE, &s("postfix_showq_message_age_seconds_count")).unwrap(),
            Some(63.0)
        );
        assert_eq!(
            pick(SAMPLE, &s("postfix_bounce_non_delivery_notification_total")).unwrap(),
            Some(1234.0)
        );
        assert_eq!(
            pick(
                SAMPLE,
                &s(r#"postfix_smtpd_messages_rejected_total{code="550"}"#)
            )
            .unwrap(),
            Some(7.0)
        );
        assert_eq!(pick(SAMPLE, &s("nope")).unwrap(), None);
        assert!(pick("metric{x=\"1\"} notanumber\n", &s("metric")).is_err());
        assert!(Selector::parse("bad name{").is_err());
    }
}
