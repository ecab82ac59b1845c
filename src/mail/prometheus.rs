//! Prometheus text exposition format: pick series by name and labels.

use std::collections::BTreeMap;

use super::ParseError;

/// A series selector: `name` or `name{label="value",…}` (labels are a subset match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Metric name.
    pub name: String,
    /// Labels that must match.
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    /// Parses a selector.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, labels) =
            split_series(s.trim()).map_err(|e| format!("bad selector {s:?}: {e}"))?;
        Ok(Selector { name, labels })
    }

    fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        name == self.name && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

fn split_series(s: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let (name, rest) = match s.find('{') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    if let Some(rest) = rest {
        let body = rest.strip_suffix('}').ok_or("missing '}'")?;
        let mut chars = body.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if chars.next() != Some('"') {
                return Err("label value must be quoted".into());
            }
            let mut val = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => val.push('\n'),
                        Some(c) => val.push(c),
                        None => return Err("unterminated escape".into()),
                    },
                    Some('"') => break,
                    Some(c) => val.push(c),
                    None => return Err("unterminated label value".into()),
                }
            }
            labels.insert(key.trim().to_string(), val);
        }
    }
    Ok((name.to_string(), labels))
}

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
        let (name, labels) = split_series(series.trim()).map_err(|e| ParseError::new(i + 1, e))?;
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
