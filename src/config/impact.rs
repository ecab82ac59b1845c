//! `[impact]`, `[replies]` and `[[audits]]`: joining what the lists say with
//! what receivers do (the impact window and threshold, which lists mean
//! "backscatter", extra receiver-reply rules) and the read-only MTA posture
//! audits. Plain settings; `impact`, `audit` and the daemon act on them.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::{program_exists, Ctx};
pub use super::kinds::AuditMta;
use super::raw::RawConfig;
use super::schedule::Schedule;

/// The lists whose listing means "this server sends backscatter", by default.
pub const DEFAULT_BACKSCATTER_LISTS: &[&str] = &["backscatterer", "sem-backscatter"];

/// `[impact]` and `[replies]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpactConf {
    /// How far back rejections count: a listing is `rejecting` while a
    /// receiver cited its list within this window, and a receiver is
    /// `rejecting` while it refused more than `threshold` deliveries in it.
    /// Defaults to 1 h (1 s to 30 days).
    pub window: Duration,
    /// A receiver rejecting or deferring more than this many deliveries (for
    /// reasons about us) within `window` raises `receiver_rejecting`.
    /// Defaults to 5 (0 to 1,000,000).
    pub threshold: u64,
    /// Catalog ids of the lists whose listing means the server sends
    /// backscatter. Defaults to `backscatterer` and `sem-backscatter`.
    pub backscatter_lists: Vec<String>,
    /// Extra receiver-reply directories (`[replies] dirs`): add rules or
    /// replace shipped ones by id. Defaults to none.
    pub reply_dirs: Vec<PathBuf>,
}

impl Default for ImpactConf {
    fn default() -> Self {
        ImpactConf {
            window: Duration::from_secs(3600),
            threshold: 5,
            backscatter_lists: DEFAULT_BACKSCATTER_LISTS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            reply_dirs: Vec::new(),
        }
    }
}

/// A configured posture audit (`[[audits]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditConf {
    /// Name (events, pages). Defaults to the MTA's name.
    pub name: String,
    /// Which MTA.
    pub mta: AuditMta,
    /// The command the audit's arguments are appended to (argv, no shell):
    /// `postconf` gets `-x`, exim gets `-bP` and then `-bP config`. Defaults to
    /// `["postconf"]` / `["exim"]`; e.g. `["postconf", "-c", "/etc/postfix-out"]`,
    /// `["exim4", "-C", "/etc/exim4/exim4.conf"]`, `["ssh", "mx1", "postconf"]`.
    pub command: Vec<String>,
    /// How often. Defaults to every 6 h (at least 1 s).
    pub interval: Schedule,
    /// Time allowed for each command. Defaults to 20 s.
    pub timeout: Duration,
}

/// Validates `[impact]`, `[replies]` and `[[audits]]`.
pub(super) fn validate(raw: &RawConfig, cx: &Ctx<'_>) -> (ImpactConf, Vec<AuditConf>) {
    (impact(raw, cx), audits(raw, cx))
}

/// `[impact]` and `[replies]` (the ids in `backscatter_lists` are checked
/// against the catalog by `catalogs`).
fn impact(raw: &RawConfig, cx: &Ctx<'_>) -> ImpactConf {
    let d = ImpactConf::default();
    let i = &raw.impact;
    let window = cx.duration(
        &i.window,
        "impact.window",
        d.window,
        Duration::from_secs(1),
        Duration::from_secs(30 * 86_400),
    );
    let threshold = cx.int(&i.threshold, "impact.threshold", 5, 0, 1_000_000) as u64;
    let backscatter_lists = match &i.backscatter_lists {
        Some(v) => v.iter().map(|s| s.get_ref().trim().to_string()).collect(),
        None => d.backscatter_lists,
    };
    let mut reply_dirs = Vec::new();
    for dir in &raw.replies.dirs {
        let p = cx.path(dir.get_ref());
        if p.is_dir() {
            reply_dirs.push(p);
        } else {
            cx.report(
                dir.span(),
                format!("replies.dirs: {} is not a directory", p.display()),
            );
        }
    }
    ImpactConf {
        window,
        threshold,
        backscatter_lists,
        reply_dirs,
    }
}

/// `[[audits]]`.
fn audits(raw: &RawConfig, cx: &Ctx<'_>) -> Vec<AuditConf> {
    let mut audits: Vec<AuditConf> = Vec::new();
    for (n, a) in &raw.audits {
        let key = format!("audits[{n}]");
        let mta = *a.mta.get_ref();
        let name = match cx.entry_name(&a.name, &key) {
            Ok(n) => n.unwrap_or_else(|| mta.as_str().to_string()),
            Err(()) => continue,
        };
        if audits.iter().any(|x| x.name == name) {
            // without a name the entry is placed by its `mta`
            let span = a.name.as_ref().map_or(a.mta.span(), |s| s.span());
            cx.report(
                span,
                format!("{key}: audit {name:?} is configured twice (give it a different `name`)"),
            );
        }
        let command = match &a.command {
            Some(c) if c.get_ref().first().is_none_or(|p| p.is_empty()) => {
                cx.report(
                    c.span(),
                    format!("{key}.command: must name a program (argv list, no shell)"),
                );
                continue;
            }
            Some(c) => c.get_ref().clone(),
            None => mta.default_command(),
        };
        if let Some(prog) = command.first() {
            if !program_exists(prog) {
                cx.warn(format!(
                    "{key}.command: program {prog:?} is not found here; audit {name:?} will fail until it is"
                ));
            }
        }
        audits.push(AuditConf {
            name,
            mta,
            command,
            interval: cx.schedule(
                &a.interval,
                &format!("{key}.interval"),
                Duration::from_secs(6 * 3600),
                Duration::from_secs(1),
            ),
            timeout: cx.duration(
                &a.timeout,
                &format!("{key}.timeout"),
                Duration::from_secs(20),
                Duration::from_millis(100),
                Duration::from_secs(600),
            ),
        });
    }
    audits
}
