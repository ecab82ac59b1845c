//! Alert channels: generic webhook JSON, Slack, Microsoft Teams, email.
//!
//! Bodies are rendered with minijinja from templates a user can override.
//! Remote text (TXT records, SMTP replies) is escaped for each format: JSON
//! with `tojson`, Slack and Teams markup by neutralising `<`, `>` and `&`.
//! Delivery errors are redacted: they never include a URL (webhook URLs carry
//! tokens) or a password.

use std::time::Duration;

use minijinja::Environment;

use crate::config::{ChannelConf, ChannelKind, EmailConf, SmtpTls};
use crate::event::{Event, Severity};

/// One rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Subject / title.
    pub subject: String,
    /// Body (JSON for webhooks, text for email).
    pub body: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_filter("slack_escape", |s: String| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    });
    env.add_filter("html_escape", |s: String| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    });
    env
}

/// A subject line for a group of events.
pub fn subject(events: &[Event]) -> String {
    let worst = events
        .iter()
        .map(|e| e.severity)
        .max()
        .unwrap_or(Severity::Info);
    let word = match worst {
        Severity::Critical => "CRITICAL",
        Severity::Warning => "WARNING",
        Severity::Info => "OK",
    };
    match events {
        [one] => format!(
            "[rblwatch {word}] {}",
            one.summary.chars().take(150).collect::<String>()
        ),
        many => {
            let mut kinds: Vec<&str> = many.iter().map(|e| e.kind.as_str()).collect();
            kinds.dedup();
            format!(
                "[rblwatch {word}] {} events: {}",
                many.len(),
                kinds.join(", ")
            )
        }
    }
}

/// A message that could not be rendered: the channel, the user template
/// (file and line, when it is the user's) and what went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("alert channel {channel}: {}{}{msg}", template.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "built-in template".into()), line.map(|l| format!(":{l}: ")).unwrap_or_else(|| ": ".into()))]
pub struct RenderError {
    /// The channel.
    pub channel: String,
    /// The user template, if the channel has one.
    pub template: Option<std::path::PathBuf>,
    /// The template line, when known.
    pub line: Option<usize>,
    /// What went wrong.
    pub msg: String,
}

impl RenderError {
    fn from_jinja(ch: &ChannelConf, e: &minijinja::Error) -> Self {
        RenderError {
            channel: ch.name.clone(),
            template: ch.template.as_ref().map(|t| t.path.clone()),
            line: e.line(),
            msg: e.to_string(),
        }
    }
}

/// Renders `ch`'s user template (if any) against a sample event of every kind,
/// so `config check` and start-up refuse a broken template (file and line)
/// instead of finding it when the first alert is due.
pub fn check_template(ch: &ChannelConf) -> Result<(), RenderError> {
    if ch.template.is_none() {
        return Ok(());
    }
    for kind in crate::event::EventKind::ALL {
        let mut e = Event::sample(*kind);
        e.id = 1;
        render(ch, &[e], "http://127.0.0.1:8025/", "host", "check:1-1")?;
    }
    Ok(())
}

/// Renders a group of events for `ch`.
pub fn render(
    ch: &ChannelConf,
    events: &[Event],
    status_url: &str,
    host: &str,
    idempotency_key: &str,
) -> Result<Message, RenderError> {
    let env = environment();
    let subject = subject(events);
    let ctx = minijinja::context! { events => events, status_url => status_url, host => host, subject => subject.clone(), idempotency_key => idempotency_key };
    let builtin_err = |e: minijinja::Error| RenderError {
        template: None,
        ..RenderError::from_jinja(ch, &e)
    };
    let text = env
        .render_str(include_str!("templates/text.txt.j2"), &ctx)
        .map_err(builtin_err)?;
    let ctx = minijinja::context! { events => events, status_url => status_url, host => host, subject => subject.clone(), text => text.clone(), idempotency_key => idempotency_key };
    let builtin = match ch.kind {
        ChannelKind::Webhook => include_str!("templates/webhook.json.j2"),
        ChannelKind::Slack => include_str!("templates/slack.json.j2"),
        ChannelKind::Teams => include_str!("templates/teams.json.j2"),
        ChannelKind::Email => include_str!("templates/text.txt.j2"),
    };
    let body = env
        .render_str(
            ch.template
                .as_ref()
                .map(|t| t.text.as_str())
                .unwrap_or(builtin),
            &ctx,
        )
        .map_err(|e| RenderError::from_jinja(ch, &e))?;
    if ch.kind != ChannelKind::Email {
        serde_json::from_str::<serde_json::Value>(&body).map_err(|e| RenderError {
            channel: ch.name.clone(),
            template: ch.template.as_ref().map(|t| t.path.clone()),
            line: None,
            msg: format!("the template did not produce JSON: {e}"),
        })?;
    }
    Ok(Message { subject, body })
}

/// Why a delivery failed. The texts never contain the URL (webhook URLs carry
/// tokens) or a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// The endpoint refused or could not be reached.
    #[error("cannot connect")]
    Connect,
    /// The endpoint answered with a non-success status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// Another HTTP failure.
    #[error("request failed")]
    Request,
    /// The SMTP server refused (its reply, password removed).
    #[error("{0}")]
    Email(String),
    /// The channel is not usable as configured.
    #[error("{0}")]
    Config(String),
}

/// The one HTTP client every webhook delivery uses (connection reuse; rustls).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("rblwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Delivers one message. Webhooks get an `Idempotency-Key` header (the same
/// key as the body's `idempotency_key`), so a receiver can drop the repeat a
/// retry after a timeout or a crash may cause: delivery is at least once.
pub async fn deliver(
    http: &reqwest::Client,
    ch: &ChannelConf,
    m: &Message,
    idempotency_key: &str,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    match ch.kind {
        ChannelKind::Webhook | ChannelKind::Slack | ChannelKind::Teams => {
            let url = ch
                .url
                .as_ref()
                .ok_or_else(|| DeliveryError::Config("no url configured".into()))?;
            let resp = http
                .post(url.expose())
                .timeout(timeout)
                .header("content-type", "application/json")
                .header("idempotency-key", idempotency_key)
                .body(m.body.clone())
                .send()
                .await
                .map_err(|e| {
                    if e.is_timeout() {
                        DeliveryError::Timeout
                    } else if e.is_connect() {
                        DeliveryError::Connect
                    } else {
                        DeliveryError::Request
                    }
                })?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(DeliveryError::Status(resp.status().as_u16()))
            }
        }
        ChannelKind::Email => {
            let e = ch
                .email
                .as_ref()
                .ok_or_else(|| DeliveryError::Config("no email settings".into()))?;
            match tokio::time::timeout(timeout + Duration::from_secs(5), send_email(e, m, timeout))
                .await
            {
                Ok(r) => r.map_err(DeliveryError::Email),
                Err(_) => Err(DeliveryError::Timeout),
            }
        }
    }
}

async fn send_email(e: &EmailConf, m: &Message, timeout: Duration) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let mut b = lettre::Message::builder()
        .from(
            e.from
                .parse()
                .map_err(|_| format!("bad from address {:?}", e.from))?,
        )
        .subject(m.subject.clone())
        .header(ContentType::TEXT_PLAIN);
    for to in &e.to {
        b = b.to(to.parse().map_err(|_| format!("bad recipient {to:?}"))?);
    }
    let msg = b
        .body(m.body.clone())
        .map_err(|err| format!("cannot build the message: {err}"))?;
    let builder = match e.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&e.host),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.host)
            .map_err(|err| format!("TLS setup: {err}"))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&e.host)
            .map_err(|err| format!("TLS setup: {err}"))?,
    };
    let mut builder = builder.port(e.port).timeout(Some(timeout));
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_string()));
    }
    let transport: AsyncSmtpTransport<Tokio1Executor> = builder.build();
    transport.send(msg).await.map(|_| ()).map_err(|err| {
        // lettre's messages carry the server's reply, never our password
        let s = err.to_string();
        match &e.password {
            Some(p) if !p.expose().is_empty() => s.replace(p.expose(), "<redacted>"),
            _ => s,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::actions::UserTemplate;
    use crate::event::EventKind;

    fn tpl(text: &str) -> Option<UserTemplate> {
        Some(UserTemplate {
            path: "t.j2".into(),
            text: text.into(),
        })
    }

    fn ev() -> Event {
        let mut e = Event::new(
            EventKind::Listed,
            1,
            crate::event::Subject::pair("192.0.2.1", "bl"),
            "192.0.2.1 is listed on Test BL (spam)".into(),
            serde_json::json!({"meanings": ["spam"], "txt": ["<script>alert(1)</script> \"q\" $(id)"], "delist": "http://bl.test/?ip=192.0.2.1"}),
        );
        e.id = 7;
        e
    }

    fn ch(kind: ChannelKind) -> ChannelConf {
        ChannelConf {
            name: "c".into(),
            kind,
            url: None,
            email: None,
            template: None,
            on: vec![],
            min_severity: Severity::Info,
        }
    }

    #[test]
    fn every_format_is_valid_and_escapes_remote_text() {
        for k in [ChannelKind::Webhook, ChannelKind::Slack, ChannelKind::Teams] {
            let m = render(&ch(k), &[ev()], "http://127.0.0.1:8025/", "mx", "k").unwrap();
            let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            let s = v.to_string();
            if k != ChannelKind::Webhook {
                assert!(!s.contains("<script>"), "{k:?}: {s}");
            }
            assert!(s.contains("alert(1)"), "{s}");
        }
        let m = render(
            &ch(ChannelKind::Email),
            &[ev()],
            "http://127.0.0.1:8025/",
            "mx",
            "k",
        )
        .unwrap();
        assert!(
            m.body.contains("reason (TXT): <script>alert(1)</script>"),
            "{}",
            m.body
        );
        assert!(
            m.body.contains("delist: http://bl.test/?ip=192.0.2.1")
                && m.body.contains("Status page: http://127.0.0.1:8025/"),
            "{}",
            m.body
        );
        assert!(
            m.subject
                .starts_with("[rblwatch CRITICAL] 192.0.2.1 is listed"),
            "{}",
            m.subject
        );
    }

    /// The impact events carry the receiver's reply: shown in every format,
    /// escaped per format like TXT records.
    #[test]
    fn impact_events_show_the_reply_and_the_verdict_escaped() {
        let mut e = Event::sample(EventKind::ReceiverRejecting);
        e.id = 9;
        let m = render(
            &ch(ChannelKind::Email),
            std::slice::from_ref(&e),
            "",
            "mx",
            "k",
        )
        .unwrap();
        assert!(
            m.body.contains("impact: Microsoft rejects mail for ip-reputation (microsoft-s3150); no monitored list lists you")
                && m.body.contains("reply (3x rejected, ip-reputation; queue ids 4F1A2B3C4D): 550 5.7.1 Unfortunately")
                && m.body.contains("receiver's sender page: https://sender.office.com/"),
            "{}",
            m.body
        );
        for k in [ChannelKind::Slack, ChannelKind::Teams] {
            let m = render(&ch(k), std::slice::from_ref(&e), "", "mx", "k").unwrap();
            let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            let s = v.to_string();
            assert!(
                s.contains("&lt;sample&gt;") && !s.contains("<sample>"),
                "{k:?}: {s}"
            );
        }
        for kind in [
            EventKind::BackscatterSource,
            EventKind::AuditFinding,
            EventKind::ListingRejecting,
        ] {
            let m = render(
                &ch(ChannelKind::Email),
                &[Event::sample(kind)],
                "",
                "mx",
                "k",
            )
            .unwrap();
            let want = match kind {
                EventKind::BackscatterSource => {
                    "diagnosis: 192.0.2.1 is listed on Backscatterer.org"
                }
                EventKind::AuditFinding => {
                    "fix: postconf -e 'smtpd_reject_unlisted_recipient = yes'"
                }
                _ => "impact: Microsoft refuses mail citing spamhaus-zen",
            };
            assert!(m.body.contains(want), "{kind}: {}", m.body);
        }
    }

    #[test]
    fn user_templates_override_and_must_be_json() {
        let mut c = ch(ChannelKind::Webhook);
        c.template = tpl("{\"n\": {{ events|length }}}");
        assert_eq!(
            render(&c, &[ev(), ev()], "", "h", "k").unwrap().body,
            "{\"n\": 2}"
        );
        c.template = tpl("not json {{ subject }}");
        assert!(render(&c, &[ev()], "", "h", "k").is_err());
    }
}
