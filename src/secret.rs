//! [`Secret`]: a string that never prints.
//!
//! DQS keys, SMTP passwords and webhook URLs with tokens are wrapped in it at
//! parse time, so a `{:?}` in a log line or a serialised config cannot leak
//! them. Only [`Secret::expose`] gives the value, and only the code that sends
//! it somewhere calls that.

use std::fmt;

/// A secret value; `Debug`, `Display` and `Serialize` print `<redacted>`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Resolves `env:NAME` and `file:/path` references; anything else is the literal value.
    pub fn resolve(spec: &str) -> Result<Self, String> {
        if let Some(var) = spec.strip_prefix("env:") {
            return std::env::var(var)
                .map(Secret)
                .map_err(|_| format!("environment variable {var} is not set"));
        }
        if let Some(path) = spec.strip_prefix("file:") {
            return std::fs::read_to_string(path)
                .map(|s| Secret(s.trim().to_string()))
                .map_err(|e| format!("cannot read secret file {path}: {e}"));
        }
        Ok(Secret(spec.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert_eq!(s.expose(), "hunter2");
    }
}
