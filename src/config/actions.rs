//! `[[hooks]]`, `[[alerts]]` and `[alerting]`: what runs and who is told
//! when an event is committed. Plain settings; the `actions` stage runs them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::raw::RawConfig;
use super::{hostname, ConfigError, Ctx};
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

/// A channel's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Generic JSON POST.
    Webhook,
    /// Slack incoming webhook.
    Slack,
    /// Microsoft Teams: a Workflows webhook (Adaptive Card) or, with
    /// `format = "messagecard"`, an old Office 365 connector.
    Teams,
    /// Email over SMTP.
    Email,
}

/// The body a Teams channel sends (`format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
pub enum TeamsFormat {
    /// An Adaptive Card in a message envelope: what Teams Workflows webhooks take (the default).
    #[default]
    #[serde(rename = "adaptivecard", alias = "adaptive_card")]
    AdaptiveCard,
    /// The legacy MessageCard, for old Office 365 connectors (which Workflows replace).
    #[serde(rename = "messagecard", alias = "message_card")]
    MessageCard,
}

/// How email reaches the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// STARTTLS, required (the default).
    #[default]
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
    /// Plain SMTP: only for a local relay on loopback.
    None,
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

pub(super) fn validate(raw: &RawConfig, cx: &Ctx<'_>) -> Result<ActionsConf, ConfigError> {
    let kinds = |v: &[toml::Spanned<String>], key: &str| -> Result<Vec<EventKind>, ConfigError> {
        v.iter()
            .map(|s| {
                EventKind::parse(s.get_ref().trim()).ok_or_else(|| {
                    let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                    cx.err(
                        s.span(),
                        format!(
                            "{key}: unknown event {:?} ({})",
                            s.get_ref(),
                            all.join(", ")
                        ),
                    )
                })
            })
            .collect()
    };
    // A relative program path with a '/' (hooks/postfix-…) is relative to the config file;
    // the program must exist now, not fail at 3 a.m. when the hook first fires.
    let prog = |argv: &toml::Spanned<Vec<String>>, key: &str| -> Result<Vec<String>, ConfigError> {
        let mut v = argv.get_ref().clone();
        let Some(p) = v.first_mut().filter(|p| !p.is_empty()) else {
            return Err(cx.err(
                argv.span(),
                format!("{key}: must name a program (argv list, no shell)"),
            ));
        };
        if p.contains('/') && Path::new(p.as_str()).is_relative() {
            *p = cx.path(p).display().to_string();
        }
        if !program_exists(p) {
            return Err(cx.err(
                argv.span(),
                format!("{key}: program {p:?} does not exist or is not executable"),
            ));
        }
        Ok(v)
    };
    let mut hooks = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, h) in raw.hooks.iter().enumerate() {
        let key = format!("hooks[{i}]");
        let name = h.name.get_ref().trim().to_string();
        if !super::valid_name(&name) || !names.insert(name.clone()) {
            return Err(cx.err(
                h.name.span(),
                format!("{key}.name: {name:?} is empty, used twice, or not letters, digits, '-' and '_'"),
            ));
        }
        let on = kinds(&h.on, &format!("{key}.on"))?;
        if on.is_empty() {
            return Err(cx.err(h.name.span(), format!("{key}.on: name at least one event")));
        }
        let revert = match &h.revert {
            Some(r) if !r.get_ref().is_empty() => Some(prog(r, &format!("{key}.revert"))?),
            _ => None,
        };
        hooks.push(HookConf {
            name,
            on,
            targets: h.targets.clone(),
            lists: h.lists.clone(),
            min_severity: h.min_severity.unwrap_or(Severity::Info),
            command: prog(&h.command, &format!("{key}.command"))?,
            revert,
            timeout: cx.duration(
                &h.timeout,
                &format!("{key}.timeout"),
                Duration::from_secs(60),
                Duration::from_millis(100),
                Duration::from_secs(3600),
            )?,
            cooldown: cx.duration_or_zero(
                &h.cooldown,
                &format!("{key}.cooldown"),
                Duration::from_secs(900),
                Duration::from_secs(7 * 86_400),
            )?,
            max_per_hour: cx.int(&h.max_per_hour, &format!("{key}.max_per_hour"), 4, 1, 3600)?
                as u32,
            mode: if h.dry_run.unwrap_or(false) {
                HookMode::DryRun
            } else {
                HookMode::Live
            },
            env: h.env.clone(),
            max_event_age: cx.duration(
                &h.max_event_age,
                &format!("{key}.max_event_age"),
                Duration::from_secs(3600),
                Duration::from_secs(1),
                Duration::from_secs(30 * 86_400),
            )?,
        });
    }
    let mut channels = Vec::new();
    let mut cnames = std::collections::HashSet::new();
    for (i, a) in raw.alerts.iter().enumerate() {
        let key = format!("alerts[{i}]");
        let name = a.name.get_ref().trim().to_string();
        if !super::valid_name(&name) || !cnames.insert(name.clone()) {
            return Err(cx.err(
                a.name.span(),
                format!("{key}.name: {name:?} is empty, used twice, or not letters, digits, '-' and '_'"),
            ));
        }
        let url = match &a.url {
            Some(u) => {
                let s = cx.secret(u, &format!("{key}.url"))?;
                if !(s.expose().starts_with("http://") || s.expose().starts_with("https://")) {
                    return Err(cx.err(
                        u.span(),
                        format!("{key}.url: must start with http:// or https://"),
                    ));
                }
                Some(s)
            }
            None => None,
        };
        let template = match &a.template {
            Some(t) => {
                let path = cx.path(t.get_ref());
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    cx.err(
                        t.span(),
                        format!("{key}.template: cannot read {}: {e}", path.display()),
                    )
                })?;
                Some(UserTemplate { path, text })
            }
            None => None,
        };
        let email = if a.kind == ChannelKind::Email {
            let need = |v: Option<String>, what: &str| {
                v.ok_or_else(|| cx.err(a.name.span(), format!("{key}: kind email needs {what}")))
            };
            let host = need(a.smtp_host.clone(), "smtp_host")?;
            let from = need(a.from.clone(), "from")?;
            if a.to.is_empty() {
                return Err(cx.err(a.name.span(), format!("{key}: kind email needs to = [...]")));
            }
            let tls = a.tls.unwrap_or_default();
            let password = match &a.password {
                Some(p) => Some(cx.secret(p, &format!("{key}.password"))?),
                None => None,
            };
            Some(EmailConf {
                port: a.smtp_port.unwrap_or(match tls {
                    SmtpTls::Starttls => 587,
                    SmtpTls::Tls => 465,
                    SmtpTls::None => 25,
                }),
                host,
                tls,
                username: a.username.clone(),
                password,
                from,
                to: a.to.clone(),
            })
        } else {
            if url.is_none() {
                return Err(cx.err(a.name.span(), format!("{key}: kind {:?} needs url", a.kind)));
            }
            None
        };
        if let (Some(f), false) = (&a.format, a.kind == ChannelKind::Teams) {
            return Err(cx.err(
                f.span(),
                format!("{key}.format: only a teams channel has a format"),
            ));
        }
        channels.push(ChannelConf {
            name,
            kind: a.kind,
            url,
            email,
            template,
            format: a.format.as_ref().map(|f| *f.get_ref()).unwrap_or_default(),
            on: kinds(&a.on, &format!("{key}.on"))?,
            min_severity: a.min_severity.unwrap_or(Severity::Info),
        });
    }
    let al = &raw.alerting;
    let settings = AlertSettings {
        group_window: cx.duration_or_zero(
            &al.group_window,
            "alerting.group_window",
            Duration::from_secs(30),
            Duration::from_secs(3600),
        )?,
        status_url: al.status_url.clone().unwrap_or_default(),
        give_up_after: cx.duration(
            &al.give_up_after,
            "alerting.give_up_after",
            Duration::from_secs(86_400),
            Duration::from_secs(60),
            Duration::from_secs(30 * 86_400),
        )?,
        timeout: cx.duration(
            &al.timeout,
            "alerting.timeout",
            Duration::from_secs(10),
            Duration::from_millis(100),
            Duration::from_secs(300),
        )?,
    };
    Ok(ActionsConf {
        hooks,
        channels,
        settings,
        host: hostname(),
    })
}
