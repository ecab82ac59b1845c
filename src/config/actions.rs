//! `[[hooks]]`, `[[alerts]]` and `[alerting]`: what runs and who is told
//! when an event is committed. Plain settings; the `actions` stage runs them.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use toml::Spanned;

pub use super::ctx::program_exists;
use super::ctx::{hostname, valid_name, Ctx};
pub use super::kinds::{ChannelKind, SmtpTls, TeamsFormat};
use super::raw::{RawAlert, RawAlerting, RawConfig, RawHook};
use crate::event::{Event, EventKind, Severity};
use crate::secret::Secret;

/// Whether a hook really runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookMode {
    /// Run it (the default).
    #[default]
    Live,
    /// Record what would run, run nothing.
    DryRun,
}

/// A configured hook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookConf {
    /// Name.
    pub name: String,
    /// Events that trigger it.
    pub on: Vec<EventKind>,
    /// Only these targets (a pair's target, a probe's domain; empty: any).
    pub targets: Vec<String>,
    /// Only these lists, sources or probed servers (empty: any).
    pub lists: Vec<String>,
    /// Only events at least this severe. Defaults to info (all).
    pub min_severity: Severity,
    /// The command (argv).
    pub command: Vec<String>,
    /// Run when the condition clears (the matching `*_cleared`, `delisted`, `list_recovered`). Defaults to none.
    pub revert: Option<Vec<String>>,
    /// Killed (with its children) after this long. Defaults to 60 s.
    pub timeout: Duration,
    /// No new run within this time of the last. Defaults to 15 min.
    pub cooldown: Duration,
    /// At most this many runs per hour. Defaults to 4.
    pub max_per_hour: u32,
    /// Live or dry-run. Defaults to live.
    pub mode: HookMode,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Events older than this (e.g. replayed after a long outage) do not run the hook. Defaults to 1 h.
    pub max_event_age: Duration,
}

impl HookConf {
    /// Whether `e` passes the filters (kind excluded).
    pub fn matches_filters(&self, e: &Event) -> bool {
        let within = |filter: &[String], v: Option<&str>| {
            filter.is_empty() || v.is_some_and(|v| filter.iter().any(|f| f == v))
        };
        within(&self.targets, e.subject.filter_target())
            && within(&self.lists, e.subject.filter_scope())
    }
}

/// Email settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConf {
    /// SMTP server host.
    pub host: String,
    /// Port. Defaults to 587 (STARTTLS), 465 (TLS) or 25 (none).
    pub port: u16,
    /// TLS mode.
    pub tls: SmtpTls,
    /// User name for AUTH.
    pub username: Option<String>,
    /// Password for AUTH (secret).
    pub password: Option<Secret>,
    /// From address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
}

/// A user template overriding a channel's built-in body.
#[derive(Debug, Clone, PartialEq)]
pub struct UserTemplate {
    /// The file it came from (for error messages).
    pub path: std::path::PathBuf,
    /// Its text.
    pub text: String,
}

/// A configured channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelConf {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ChannelKind,
    /// Webhook URL (secret: it usually carries a token).
    pub url: Option<Secret>,
    /// Email settings.
    pub email: Option<EmailConf>,
    /// A template overriding the built-in body.
    pub template: Option<UserTemplate>,
    /// The built-in body of a Teams channel (ignored by other kinds).
    pub format: TeamsFormat,
    /// Events sent (empty: all).
    pub on: Vec<EventKind>,
    /// Minimum severity. Defaults to info (all, so recoveries are announced).
    pub min_severity: Severity,
}

impl ChannelConf {
    /// Whether this channel wants `e`.
    pub fn wants(&self, e: &Event) -> bool {
        // A channel is never told about its own failure: it could not deliver it,
        // and a broken template would fail again, forever.
        if matches!(&e.subject, crate::event::Subject::Channel { name } if *name == self.name) {
            return false;
        }
        (self.on.is_empty() || self.on.contains(&e.kind))
            && (e.severity >= self.min_severity || e.kind == EventKind::Baseline)
    }
}

/// Alerting settings (`[alerting]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    /// Events within this window go out as one message. Defaults to 30 s.
    pub group_window: Duration,
    /// Link to the status page in alerts. Defaults to none.
    pub status_url: String,
    /// Undeliverable messages are given up after this long. Defaults to 24 h.
    pub give_up_after: Duration,
    /// Timeout of one delivery. Defaults to 10 s.
    pub timeout: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            group_window: Duration::from_secs(30),
            status_url: String::new(),
            give_up_after: Duration::from_secs(86_400),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Hooks, channels and their settings.
#[derive(Debug, Clone, Default)]
pub struct ActionsConf {
    /// Hooks.
    pub hooks: Vec<HookConf>,
    /// Alert channels.
    pub channels: Vec<ChannelConf>,
    /// Settings.
    pub settings: AlertSettings,
    /// Host name shown in alerts.
    pub host: String,
}

/// Validates `[[hooks]]`, `[[alerts]]` and `[alerting]`.
pub(super) fn validate(raw: &RawConfig, cx: &Ctx<'_>) -> ActionsConf {
    let mut names = HashSet::new();
    let hooks = raw
        .hooks
        .iter()
        .filter_map(|(i, h)| hook(&format!("hooks[{i}]"), h, &mut names, cx))
        .collect();
    let mut names = HashSet::new();
    let channels = raw
        .alerts
        .iter()
        .filter_map(|(i, a)| channel(&format!("alerts[{i}]"), a, &mut names, cx))
        .collect();
    ActionsConf {
        hooks,
        channels,
        settings: alert_settings(&raw.alerting, cx),
        host: hostname(),
    }
}

/// Event kinds by name (an unknown one is reported and left out).
fn event_kinds(v: &[Spanned<String>], key: &str, cx: &Ctx<'_>) -> Vec<EventKind> {
    v.iter()
        .filter_map(|s| {
            let k = EventKind::parse(s.get_ref().trim());
            if k.is_none() {
                let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                cx.report(
                    s.span(),
                    format!(
                        "{key}: unknown event {:?} ({})",
                        s.get_ref(),
                        all.join(", ")
                    ),
                );
            }
            k
        })
        .collect()
}

/// A name of a hook or channel: valid and not used before (reported when not).
fn unique_name(
    name: &Spanned<String>,
    key: &str,
    names: &mut HashSet<String>,
    cx: &Ctx<'_>,
) -> String {
    let n = name.get_ref().trim().to_string();
    if !valid_name(&n) || !names.insert(n.clone()) {
        cx.report(
            name.span(),
            format!("{key}.name: {n:?} is empty, used twice, or not letters, digits, '-' and '_'"),
        );
    }
    n
}

/// A hook's argv. A relative program path with a '/' (hooks/postfix-…) is
/// relative to the config file; the program must exist now, not fail at
/// 3 a.m. when the hook first fires.
fn hook_program(argv: &Spanned<Vec<String>>, key: &str, cx: &Ctx<'_>) -> Option<Vec<String>> {
    let mut v = argv.get_ref().clone();
    let Some(p) = v.first_mut().filter(|p| !p.is_empty()) else {
        cx.report(
            argv.span(),
            format!("{key}: must name a program (argv list, no shell)"),
        );
        return None;
    };
    if p.contains('/') && Path::new(p.as_str()).is_relative() {
        *p = cx.path(p).display().to_string();
    }
    if !program_exists(p) {
        cx.report(
            argv.span(),
            format!("{key}: program {p:?} does not exist or is not executable"),
        );
        return None;
    }
    Some(v)
}

/// One `[[hooks]]` entry (`None` when wrong: reported).
fn hook(key: &str, h: &RawHook, names: &mut HashSet<String>, cx: &Ctx<'_>) -> Option<HookConf> {
    let name = unique_name(&h.name, key, names, cx);
    let on = event_kinds(&h.on, &format!("{key}.on"), cx);
    if h.on.is_empty() {
        cx.report(h.name.span(), format!("{key}.on: name at least one event"));
    }
    let revert = match &h.revert {
        Some(r) if !r.get_ref().is_empty() => Some(hook_program(r, &format!("{key}.revert"), cx)),
        _ => None,
    };
    let command = hook_program(&h.command, &format!("{key}.command"), cx);
    let timeout = cx.duration(
        &h.timeout,
        &format!("{key}.timeout"),
        Duration::from_secs(60),
        Duration::from_millis(100),
        Duration::from_secs(3600),
    );
    let cooldown = cx.duration_or_zero(
        &h.cooldown,
        &format!("{key}.cooldown"),
        Duration::from_secs(900),
        Duration::from_secs(7 * 86_400),
    );
    let max_per_hour = cx.int(&h.max_per_hour, &format!("{key}.max_per_hour"), 4, 1, 3600) as u32;
    let max_event_age = cx.duration(
        &h.max_event_age,
        &format!("{key}.max_event_age"),
        Duration::from_secs(3600),
        Duration::from_secs(1),
        Duration::from_secs(30 * 86_400),
    );
    Some(HookConf {
        name,
        on,
        targets: h.targets.clone(),
        lists: h.lists.clone(),
        min_severity: h.min_severity.unwrap_or(Severity::Info),
        command: command?,
        revert: match revert {
            Some(r) => Some(r?),
            None => None,
        },
        timeout,
        cooldown,
        max_per_hour,
        mode: if h.dry_run.unwrap_or(false) {
            HookMode::DryRun
        } else {
            HookMode::Live
        },
        env: h.env.clone(),
        max_event_age,
    })
}

/// One `[[alerts]]` entry (`None` when wrong: reported).
fn channel(
    key: &str,
    a: &RawAlert,
    names: &mut HashSet<String>,
    cx: &Ctx<'_>,
) -> Option<ChannelConf> {
    let name = unique_name(&a.name, key, names, cx);
    let url = a
        .url
        .as_ref()
        .map(|u| cx.http_url(u, &format!("{key}.url")));
    let template = a.template.as_ref().map(|t| template(key, t, cx));
    let email = if a.kind == ChannelKind::Email {
        Some(email(key, a, cx))
    } else {
        if a.url.is_none() {
            cx.missing(
                &format!("{key}.url"),
                a.name.span(),
                format!("{key}: kind {:?} needs url", a.kind),
            );
        }
        None
    };
    let on = event_kinds(&a.on, &format!("{key}.on"), cx);
    if let (Some(f), false) = (&a.format, a.kind == ChannelKind::Teams) {
        cx.report(
            f.span(),
            format!("{key}.format: only a teams channel has a format"),
        );
    }
    Some(ChannelConf {
        name,
        kind: a.kind,
        format: a.format.as_ref().map(|f| *f.get_ref()).unwrap_or_default(),
        // each `?`: a bad url, email setting or template was reported
        url: match url {
            Some(u) => Some(u?),
            None => None,
        },
        email: match email {
            Some(e) => Some(e?),
            None => None,
        },
        template: match template {
            Some(t) => Some(t?),
            None => None,
        },
        on,
        min_severity: a.min_severity.unwrap_or(Severity::Info),
    })
}

/// A channel's `template` file, read now.
fn template(key: &str, t: &Spanned<String>, cx: &Ctx<'_>) -> Option<UserTemplate> {
    let path = cx.path(t.get_ref());
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(UserTemplate { path, text }),
        Err(e) => {
            cx.report(
                t.span(),
                format!("{key}.template: cannot read {}: {e}", path.display()),
            );
            None
        }
    }
}

/// The settings of a `kind = "email"` channel.
fn email(key: &str, a: &RawAlert, cx: &Ctx<'_>) -> Option<EmailConf> {
    let need = |field: &str, what: &str| {
        cx.missing(
            &format!("{key}.{field}"),
            a.name.span(),
            format!("{key}: kind email needs {what}"),
        )
    };
    if a.smtp_host.is_none() {
        need("smtp_host", "smtp_host");
    }
    if a.from.is_none() {
        need("from", "from");
    }
    if a.to.is_empty() {
        need("to", "to = [...]");
    }
    let mut addresses_ok = true;
    for (s, what) in a
        .from
        .iter()
        .map(|f| (f, "from"))
        .chain(a.to.iter().map(|t| (t, "to")))
    {
        if s.get_ref().parse::<lettre::message::Mailbox>().is_err() {
            cx.report(
                s.span(),
                format!(
                    "{key}.{what}: {:?} is not an e-mail address (name@example.com, or \"Name <name@example.com>\")",
                    s.get_ref()
                ),
            );
            addresses_ok = false;
        }
    }
    let tls = a.tls.unwrap_or_default();
    let password = match &a.password {
        Some(p) => Some(cx.secret(p, &format!("{key}.password"))?),
        None => None,
    };
    if !addresses_ok {
        return None;
    }
    Some(EmailConf {
        port: a.smtp_port.unwrap_or(match tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }),
        host: a.smtp_host.clone()?,
        tls,
        username: a.username.clone(),
        password,
        from: a.from.as_ref()?.get_ref().clone(),
        to: a.to.iter().map(|t| t.get_ref().clone()).collect(),
    })
}

/// `[alerting]`.
fn alert_settings(al: &RawAlerting, cx: &Ctx<'_>) -> AlertSettings {
    AlertSettings {
        group_window: cx.duration_or_zero(
            &al.group_window,
            "alerting.group_window",
            Duration::from_secs(30),
            Duration::from_secs(3600),
        ),
        status_url: al.status_url.clone().unwrap_or_default(),
        give_up_after: cx.duration(
            &al.give_up_after,
            "alerting.give_up_after",
            Duration::from_secs(86_400),
            Duration::from_secs(60),
            Duration::from_secs(30 * 86_400),
        ),
        timeout: cx.duration(
            &al.timeout,
            "alerting.timeout",
            Duration::from_secs(10),
            Duration::from_millis(100),
            Duration::from_secs(300),
        ),
    }
}
