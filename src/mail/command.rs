//! `command` sources: a number, or a JSON object of named numbers.

use super::{ParseError, Sample};

/// Parses a command's output: `42` gives `value = 42`; `{"a": 1, "b": 2.5}` gives `a` and `b`.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let t = text.trim();
    if let Ok(v) = t.parse::<f64>() {
        if v.is_finite() {
            return Ok(vec![Sample::new("value", v)]);
        }
    }
    let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(t)
        .map_err(|_| ParseError::new(1, "expected a number or a JSON object of numbers".into()))?;
    let mut out = Vec::new();
    for (k, v) in obj {
        match v.as_f64() {
            Some(n) if valid_name(&k) => out.push(Sample::new(&k, n)),
            Some(_) => {
                return Err(ParseError::new(
                    1,
                    format!("bad metric name {k:?} (letters, digits, '_')"),
                ))
            }
            None => {
                return Err(ParseError::new(
                    1,
                    format!("value of {k:?} is not a number"),
                ))
            }
        }
    }
    Ok(out)
}

/// Whether a metric name is acceptable: 1 to 64 letters, digits or '_'.
pub fn valid_name(k: &str) -> bool {
    !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_and_objects() {
        assert_eq!(super::parse(" 42\n").unwrap()[0].value, 42.0);
        let s = super::parse(r#"{"queue": 3, "bounces": 1.5}"#).unwrap();
        assert_eq!(s.len(), 2);
        assert!(super::parse("lots").is_err());
        assert!(super::parse(r#"{"q": "x"}"#).is_err());
        assert!(super::parse(r#"{"bad name": 1}"#).is_err());
    }
}
