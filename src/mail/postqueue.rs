//! `postqueue -j`: one JSON object per line (no enclosing array).
//!
//! The null sender `<>` appears as `"sender": "MAILER-DAEMON"` (a real
//! address would carry a domain), `delay_reason` is absent until a delivery
//! was attempted, and held messages have `"queue_name": "hold"`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ParseError, Sample};

#[derive(Debug, Deserialize)]
struct Entry {
    queue_name: String,
    #[serde(default)]
    sender: String,
    #[serde(default)]
    arrival_time: Option<i64>,
}

/// Queue figures from `postqueue -j` output, as of `now` (unix seconds).
pub fn parse(text: &str, now: i64) -> Result<Vec<Sample>, ParseError> {
    let mut per_queue: BTreeMap<&'static str, f64> = [
        ("active", 0.0),
        ("deferred", 0.0),
        ("hold", 0.0),
        ("incoming", 0.0),
        ("maildrop", 0.0),
    ]
    .into_iter()
    .collect();
    let (mut depth, mut bounces) = (0.0, 0.0);
    let mut oldest: Option<i64> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let e: Entry = serde_json::from_str(line)
            .map_err(|err| ParseError::new(i + 1, format!("not a postqueue -j record: {err}")))?;
        depth += 1.0;
        if e.sender == "MAILER-DAEMON" {
            bounces += 1.0;
        }
        match per_queue.iter_mut().find(|(k, _)| **k == e.queue_name) {
            Some((_, v)) => *v += 1.0,
            None => {
                return Err(ParseError::new(
                    i + 1,
                    format!("unknown queue {:?}", e.queue_name),
                ))
            }
        }
        if let Some(t) = e.arrival_time {
            oldest = Some(oldest.map_or(t, |o| o.min(t)));
        }
    }
    let mut out = vec![
        Sample::new("queue_depth", depth),
        Sample::new("queue_bounces", bounces),
    ];
    for (q, v) in per_queue {
        out.push(Sample::new(&format!("queue_{q}"), v));
    }
    out.push(Sample::new(
        "queue_oldest_age_seconds",
        oldest.map_or(0.0, |t| (now - t).max(0) as f64),
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real lines from a Postfix 3.7 instance (shared/reference/postfix-lab.md).
    const REAL: &str = r#"{"queue_name": "deferred", "queue_id": "379FA99CAD3", "arrival_time": 1795403330, "message_size": 2334, "forced_expire": false, "sender": "MAILER-DAEMON", "recipients": [{"address": "victim@victim.test", "delay_reason": "lab: outbound delivery disabled (no network)"}]}
{"queue_name": "hold", "queue_id": "D1B3499CBCA", "arrival_time": 1795403343, "message_size": 2332, "forced_expire": false, "sender": "MAILER-DAEMON", "recipients": [{"address": "victim@victim.test"}]}
{"queue_name": "deferred", "queue_id": "86DA799C325", "arrival_time": 1795403246, "message_size": 427, "forced_expire": false, "sender": "victim@victim.test", "recipients": [{"address": "nouser-5900538e@example.test", "delay_reason": "unknown user: \"nouser-5900538e\""}]}
"#;

    fn get(s: &[Sample], m: &str) -> f64 {
        s.iter().find(|x| x.metric == m).map(|x| x.value).unwrap()
    }

    #[test]
    fn real_output() {
        let s = parse(REAL, 1795403346).unwrap();
        assert_eq!(get(&s, "queue_depth"), 3.0);
        assert_eq!(get(&s, "queue_bounces"), 2.0);
        assert_eq!(get(&s, "queue_hold"), 1.0);
        assert_eq!(get(&s, "queue_deferred"), 2.0);
        assert_eq!(get(&s, "queue_active"), 0.0);
        assert_eq!(get(&s, "queue_oldest_age_seconds"), 100.0);
    }

    #[test]
    fn empty_queue_and_malformed_input() {
        assert_eq!(get(&parse("", 0).unwrap(), "queue_depth"), 0.0);
        let e = parse("{\"queue_name\": \"deferred\"}\nnot json\n", 0).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(parse("{\"queue_name\": \"elsewhere\"}", 0).is_err());
    }
}
