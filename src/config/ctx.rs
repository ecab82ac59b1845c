//! What the validators of every area share: the error types, and [`Ctx`],
//! which knows the file, its text (for line numbers) and the directory
//! relative paths start from, and which collects every problem found, so one
//! `config check` lists them all, like a compiler, instead of the first.
//!
//! The readers (`int`, `duration`, …) record a bad value and hand back the
//! default: validation goes on over the rest of the file, and a config with
//! any recorded error is refused as a whole ([`Ctx::finish`]), so the
//! stand-in value is never used.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw;
use super::schedule::Schedule;
use crate::secret::Secret;
use crate::time::parse_duration;

/// A configuration error: file, line (when known) and message naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {msg}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line, when the error can be placed.
    pub line: Option<usize>,
    /// What is wrong, with the key named.
    pub msg: String,
}

/// Every error found in one file, in the file's order (never empty). Shown
/// one per line, `file:line: message`, like a compiler's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// Errors sorted by line (unplaced ones last); `None` when there are none.
    pub fn new(mut errors: Vec<ConfigError>) -> Option<Self> {
        errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        errors.dedup();
        (!errors.is_empty()).then_some(ConfigErrors(errors))
    }

    /// The first error in the file.
    pub fn first(&self) -> &ConfigError {
        // never empty by construction (`new`, `From<ConfigError>`)
        &self.0[0]
    }

    /// Every error.
    pub fn all(&self) -> &[ConfigError] {
        &self.0
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The validation context of one file (see the module comment).
pub(crate) struct Ctx<'a> {
    file: String,
    text: &'a str,
    base: PathBuf,
    errors: RefCell<Vec<ConfigError>>,
    warnings: RefCell<Vec<String>>,
    unread: BTreeSet<String>,
}

impl<'a> Ctx<'a> {
    /// A context for `text`, read from `path`.
    pub(crate) fn new(path: &Path, text: &'a str) -> Self {
        Ctx {
            file: path.display().to_string(),
            text,
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            errors: RefCell::default(),
            warnings: RefCell::default(),
            unread: BTreeSet::new(),
        }
    }

    /// Notes the keys whose values could not be read (already reported).
    pub(crate) fn set_unread(&mut self, keys: BTreeSet<String>) {
        self.unread = keys;
    }

    /// Records that `key` (`alerts[0].smtp_host`) is needed but absent,
    /// unless it is there with a value that could not be read (reported).
    pub(crate) fn missing(&self, key: &str, span: Range<usize>, msg: String) {
        if !self.unread.contains(key) {
            self.report(span, msg);
        }
    }

    /// The file's text.
    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    /// An error at `span` (not recorded).
    pub(crate) fn err(&self, span: Range<usize>, msg: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: Some(line_of(self.text, span.start)),
            msg,
        }
    }

    /// Records an error at `span`.
    pub(crate) fn report(&self, span: Range<usize>, msg: String) {
        let e = self.err(span, msg);
        self.errors.borrow_mut().push(e);
    }

    /// Records an error at a line, or unplaced when the line is unknown.
    pub(crate) fn report_at(&self, line: Option<usize>, msg: String) {
        self.errors.borrow_mut().push(ConfigError {
            file: self.file.clone(),
            line,
            msg,
        });
    }

    /// Records a warning.
    pub(crate) fn warn(&self, msg: String) {
        self.warnings.borrow_mut().push(msg);
    }

    /// The warnings, and every error recorded (sorted by line), if any.
    pub(crate) fn finish(self) -> (Vec<String>, Option<ConfigErrors>) {
        (
            self.warnings.into_inner(),
            ConfigErrors::new(self.errors.into_inner()),
        )
    }

    /// The 1-based line of a byte offset.
    pub(crate) fn line(&self, offset: usize) -> usize {
        line_of(self.text, offset)
    }

    /// A path relative to the config file's directory.
    pub(crate) fn path(&self, p: &str) -> PathBuf {
        if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            self.base.join(p)
        }
    }

    /// An optional duration in `[min, max]`, `default` when absent (or bad: recorded).
    pub(crate) fn duration(
        &self,
        v: &raw::Text,
        key: &str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        let Some(s) = v else { return default };
        match parse_duration(s.get_ref()) {
            Err(m) => self.report(s.span(), format!("{key}: {m}")),
            Ok(d) if d < min || d > max => self.report(
                s.span(),
                format!(
                    "{key}: {:?} is out of range ({} to {})",
                    s.get_ref(),
                    crate::time::fmt_duration(min),
                    crate::time::fmt_duration(max)
                ),
            ),
            Ok(d) => return d,
        }
        default
    }

    /// Like [`Ctx::duration`], but `"0"`/`"0s"` (or `"off"`) give zero.
    pub(crate) fn duration_or_zero(
        &self,
        v: &raw::Text,
        key: &str,
        default: Duration,
        max: Duration,
    ) -> Duration {
        match v {
            Some(s) if matches!(s.get_ref().trim(), "0" | "0s" | "off") => Duration::ZERO,
            _ => self.duration(v, key, default, Duration::from_millis(1), max),
        }
    }

    /// An optional integer in `[min, max]`, `default` when absent (or bad: recorded).
    pub(crate) fn int(&self, v: &raw::Int, key: &str, default: i64, min: i64, max: i64) -> i64 {
        let Some(n) = v else { return default };
        let x = *n.get_ref();
        if x < min || x > max {
            self.report(
                n.span(),
                format!("{key}: {x} is out of range ({min} to {max})"),
            );
            return default;
        }
        x
    }

    /// An optional finite number in `[min, max]` (a bad one is recorded, `None`).
    pub(crate) fn float(&self, v: &raw::Float, key: &str, min: f64, max: f64) -> Option<f64> {
        let n = v.as_ref()?;
        let x = *n.get_ref();
        if !x.is_finite() || x < min || x > max {
            self.report(
                n.span(),
                format!("{key}: {x} is out of range ({min} to {max})"),
            );
            return None;
        }
        Some(x)
    }

    /// A schedule (duration of at least `min`, or a cron expression that
    /// fires), `default` when absent (or bad: recorded).
    pub(crate) fn schedule(
        &self,
        v: &raw::Text,
        key: &str,
        default: Duration,
        min: Duration,
    ) -> Schedule {
        let Some(s) = v else {
            return Schedule::Every(default);
        };
        match Schedule::parse(s.get_ref()) {
            Err(m) => self.report(s.span(), format!("{key}: {m}")),
            Ok(Schedule::Every(d)) if d < min => self.report(
                s.span(),
                format!(
                    "{key}: {:?} is too short (at least {})",
                    s.get_ref(),
                    crate::time::fmt_duration(min)
                ),
            ),
            Ok(sched) => return sched,
        }
        Schedule::Every(default)
    }

    /// A secret value (`env:NAME`, `file:/path` or literal); `None` when it
    /// cannot be resolved (recorded). The message never holds the value.
    /// An entry's `name` (trimmed): `Ok(None)` when absent (the caller's
    /// default applies), `Err(())` when it is not letters, digits, '-' or
    /// '_' (reported).
    pub(crate) fn entry_name(&self, v: &raw::Text, key: &str) -> Result<Option<String>, ()> {
        match v {
            None => Ok(None),
            Some(s) if valid_name(s.get_ref().trim()) => Ok(Some(s.get_ref().trim().to_string())),
            Some(s) => {
                self.report(
                    s.span(),
                    format!(
                        "{key}.name: {:?} must be letters, digits, '-' or '_'",
                        s.get_ref()
                    ),
                );
                Err(())
            }
        }
    }

    pub(crate) fn secret(&self, s: &toml::Spanned<String>, key: &str) -> Option<Secret> {
        Secret::resolve(s.get_ref())
            .map_err(|m| self.report(s.span(), format!("{key}: {m}")))
            .ok()
    }

    /// A secret http(s) URL that a client can use: scheme, a host, a port
    /// that exists, no white space. Checked here, not at the first delivery;
    /// the message never quotes the URL (it usually carries a token).
    pub(crate) fn http_url(&self, s: &toml::Spanned<String>, key: &str) -> Option<Secret> {
        let secret = self.secret(s, key)?;
        match check_http_url(secret.expose()) {
            Ok(()) => Some(secret),
            Err(why) => {
                self.report(s.span(), format!("{key}: {why}"));
                None
            }
        }
    }
}

/// Why `u` is not a usable http(s) URL (the message never quotes it).
fn check_http_url(u: &str) -> Result<(), String> {
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        return Err("must start with http:// or https://".into());
    }
    // the URL parser would percent-encode a space in the path: a pasted
    // "http://host/a b" is a mistake, not a request for "%20"
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "must not contain white space (the value is not shown: it may hold a token)".into(),
        );
    }
    let parsed = reqwest::Url::parse(u).map_err(|e| {
        format!("not a valid URL: {e} (the value is not shown: it may hold a token)")
    })?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("names no host".into());
    }
    Ok(())
}

/// The 1-based line of a byte offset in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |s| s.bytes().filter(|&b| b == b'\n').count() + 1)
}

/// Letters, digits, `-` and `_`: names of sources, hooks, channels and metrics.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The system's host name (for EHLO and alerts), or `localhost`.
///
/// From gethostname(2), not /proc/sys/kernel/hostname: the systemd unit's
/// `ProcSubset=pid` hides /proc/sys, and EHLO would have said `localhost`.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = if rc == 0 {
        String::from_utf8_lossy(&buf[..len]).trim().to_string()
    } else {
        String::new()
    };
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// Whether `prog` can be run: an existing executable file for a path, or a
/// name found on `PATH`.
pub fn program_exists(prog: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if prog.contains('/') {
        return runnable(Path::new(prog));
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| runnable(&d.join(prog))))
}
