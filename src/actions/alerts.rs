//! Alert channels: generic webhook JSON, Slack, Microsoft Teams, email.
//!
//! Bodies are rendered with minijinja from templates a user can override.
//! Remote text (TXT records, SMTP replies) is escaped for each format's
//! markup: JSON with `tojson`, Slack mrkdwn ([`mrkdwn_escape`]), Teams
//! Markdown ([`md_escape`]), email HTML ([`html_escape`]). A render is strict
//! (an unknown variable is an error, found by `config check`), bounded in work
//! (fuel) and in size (a cap per channel, [`size_cap`]): a template cannot
//! hold up the other channels or fill the database.
//! Delivery errors are redacted: they never include a URL (webhook URLs carry
//! tokens) or a password.

use std::time::Duration;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::config::{ChannelConf, ChannelKind, EmailConf, SmtpTls, TeamsFormat};
use crate::event::{Event, Severity};

/// One rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Subject / title.
    pub subject: String,
    /// Body (JSON for webhooks, text for email: its HTML part is made from it at delivery).
    pub body: String,
}

/// The largest body a channel may render: webhook receivers refuse far less
/// (Slack 3,000 characters a block, Teams about 28 KB), and a runaway user
/// template must not fill the outbox.
pub fn size_cap(kind: ChannelKind) -> usize {
    match kind {
        ChannelKind::Email => 1 << 20,
        ChannelKind::Webhook | ChannelKind::Slack | ChannelKind::Teams => 256 << 10,
    }
}

/// Template instructions one render may run: the built-in templates need a few
/// hundred per event; a user template looping for minutes is stopped.
const FUEL: u64 = 1_000_000;

/// Escapes `s` for Slack mrkdwn: `&`, `<` and `>` as entities (so no link or
/// `<!channel>` mention can be formed), and a zero-width space before each of
/// `*`, `_`, `~` and `` ` `` (Slack has no escape character; a marker inside a
/// word does not format), so a TXT record's `*…*` does not render bold.
pub fn mrkdwn_escape(s: &str) -> String {
    escape_with(s, |c| match c {
        '*' => Some("\u{200B}*"),
        '_' => Some("\u{200B}_"),
        '~' => Some("\u{200B}~"),
        '`' => Some("\u{200B}`"),
        _ => None,
    })
}

/// `s` with `&`, `<` and `>` as entities (both Slack and HTML read them so)
/// and every other character `more` names replaced by what it gives.
fn escape_with(s: &str, more: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => match more(c) {
                Some(e) => out.push_str(e),
                None => out.push(c),
            },
        }
    }
    out
}

/// Escapes `s` for the Markdown of Teams cards: a backslash before every
/// character Markdown gives a meaning (emphasis, links, code, HTML; list and
/// heading markers at the start of a line), so `[click](http://…)` or
/// `*bold*` from a TXT record stays text. A bare URL is kept as it is (still
/// shown in full, and still a link), cut at the first markup character.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    let mut line_start = true;
    while !rest.is_empty() {
        if let Some(n) = rest
            .starts_with("http://")
            .then_some(())
            .or_else(|| rest.starts_with("https://").then_some(()))
            .map(|()| url_len(rest))
        {
            out.push_str(&rest[..n]);
            rest = &rest[n..];
            line_start = false;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        let ordered = line_start && c.is_ascii_digit() && {
            let after = rest.trim_start_matches(|d: char| d.is_ascii_digit());
            let mut it = after.chars();
            matches!(it.next(), Some('.' | ')')) && it.next().is_none_or(char::is_whitespace)
        };
        if ordered {
            // "1. " or "1) " at a line start would become a list: escape its dot
            let digits = rest.len() - rest.trim_start_matches(|d: char| d.is_ascii_digit()).len();
            out.push_str(&rest[..digits]);
            out.push('\\');
            rest = &rest[digits..];
            line_start = false;
            continue;
        }
        if matches!(
            c,
            '\\' | '*' | '_' | '`' | '[' | ']' | '(' | ')' | '<' | '>' | '~'
        ) || (line_start && matches!(c, '-' | '+' | '#' | '='))
        {
            out.push('\\');
        }
        out.push(c);
        line_start = c == '\n' || (line_start && c == ' ');
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The length of the URL at the start of `s`: up to white space or a
/// character that is markup in Markdown or HTML, without trailing punctuation.
fn url_len(s: &str) -> usize {
    let end = s
        .find(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    '<' | '>' | '"' | '\'' | '|' | '[' | ']' | '(' | ')' | '*' | '~' | '`' | '\\'
                )
        })
        .unwrap_or(s.len());
    s[..end]
        .trim_end_matches(['.', ',', ';', ':', '!', '?'])
        .len()
}

/// Escapes `s` for HTML text and attribute values.
pub fn html_escape(s: &str) -> String {
    escape_with(s, |c| match c {
        '"' => Some("&quot;"),
        '\'' => Some("&#39;"),
        _ => None,
    })
}

/// At most `max` characters of `s`, cut with "…" when longer, never inside an
/// entity (`&amp;`) or after a lone escape backslash that escaping added.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    if let Some(amp) = cut.rfind('&') {
        if !cut[amp..].contains(';') {
            cut.truncate(amp);
        }
    }
    let backslashes = cut.chars().rev().take_while(|c| *c == '\\').count();
    if backslashes % 2 == 1 {
        cut.pop();
    }
    cut.push('…');
    cut
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // An unknown name is an error (found by `config check`), not an empty string;
    // `{% if e.details.x %}` on a missing detail stays allowed.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_fuel(Some(FUEL));
    env.add_filter("mrkdwn_escape", |s: String| mrkdwn_escape(&s));
    // the old name, kept for user templates written before mrkdwn escaping
    env.add_filter("slack_escape", |s: String| mrkdwn_escape(&s));
    env.add_filter("md_escape", |s: String| md_escape(&s));
    env.add_filter("html_escape", |s: String| html_escape(&s));
    env.add_filter("clip", |s: String, max: usize| clip(&s, max));
    env
}

/// A subject line for a group of events.
pub fn subject(events: &[Event]) -> String {
    let word = match worst(events) {
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

fn worst(events: &[Event]) -> Severity {
    events
        .iter()
        .map(|e| e.severity)
        .max()
        .unwrap_or(Severity::Info)
}

/// Slack's attachment colour for a severity.
fn slack_color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#d40e0d",
        Severity::Warning => "#e8a317",
        Severity::Info => "#2eb67d",
    }
}

/// An Adaptive Card text colour for a severity.
fn card_color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "attention",
        Severity::Warning => "warning",
        Severity::Info => "good",
    }
}

/// One event as the built-in templates show it: its summary and detail lines
/// (remote text verbatim: each template escapes it for its format).
#[derive(Debug, Serialize)]
struct Item {
    severity: Severity,
    kind: &'static str,
    summary: String,
    lines: Vec<String>,
    card_color: &'static str,
}

/// Why a message could not be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderCause {
    /// The template failed (unknown variable, syntax, out of fuel...).
    Template,
    /// The body would be larger than the channel's cap.
    TooLarge,
    /// A webhook template did not produce JSON.
    NotJson,
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
    /// The kind of failure.
    pub cause: RenderCause,
}

/// A writer that refuses to grow past `cap` bytes, so an oversized render
/// stops where it crosses the cap instead of building the whole body.
struct Capped {
    buf: Vec<u8>,
    cap: usize,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > self.cap {
            self.over = true;
            return Err(std::io::Error::other("over the size cap"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `source` (named `name` in errors) with at most `cap` bytes of output.
fn render_capped(
    env: &Environment<'_>,
    name: &str,
    source: &str,
    ctx: &minijinja::Value,
    cap: usize,
) -> Result<String, (RenderCause, Option<usize>, String)> {
    let tmpl = env
        .template_from_named_str(name, source)
        .map_err(|e| (RenderCause::Template, e.line(), jinja_msg(&e)))?;
    let mut w = Capped {
        buf: Vec::new(),
        cap,
        over: false,
    };
    match tmpl.render_captured_to(ctx, &mut w) {
        Ok(_) => String::from_utf8(w.buf)
            .map_err(|_| (RenderCause::Template, None, "output is not UTF-8".into())),
        Err(_) if w.over => Err((
            RenderCause::TooLarge,
            None,
            format!(
                "the rendered message is larger than this channel's cap of {} KiB: not sent, nothing stored",
                cap >> 10
            ),
        )),
        Err(e) => Err((RenderCause::Template, e.line(), jinja_msg(&e))),
    }
}

/// minijinja's message with its detail ("undefined value" says which).
fn jinja_msg(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        s = "the template runs too long (more than its instruction budget)".into();
    }
    s
}

/// Renders `ch`'s user template (if any) against a sample event of every kind
/// the channel takes, one at a time and all together, so `config check` and
/// start-up refuse a broken template (file and line: an unknown variable, a
/// syntax error, a body over the cap) instead of finding it when the first
/// alert is due.
pub fn check_template(ch: &ChannelConf) -> Result<(), RenderError> {
    if ch.template.is_none() {
        return Ok(());
    }
    let samples: Vec<Event> = crate::event::EventKind::ALL
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let mut e = Event::sample(*kind);
            e.id = i as i64 + 1;
            e
        })
        .filter(|e| ch.wants(e))
        .collect();
    for e in &samples {
        render(
            ch,
            std::slice::from_ref(e),
            "http://127.0.0.1:8025/",
            "host",
            "check:1-1",
        )?;
    }
    if samples.len() > 1 {
        render(ch, &samples, "http://127.0.0.1:8025/", "host", "check:1-1")?;
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
    let cap = size_cap(ch.kind);
    let fail = |user: bool, (cause, line, msg): (RenderCause, Option<usize>, String)| RenderError {
        channel: ch.name.clone(),
        template: ch
            .template
            .as_ref()
            .filter(|_| user)
            .map(|t| t.path.clone()),
        line,
        msg,
        cause,
    };
    let subject = subject(events);
    let mut items = Vec::with_capacity(events.len());
    for e in events {
        let lines = render_capped(
            &env,
            "details.txt.j2",
            include_str!("templates/details.txt.j2"),
            &minijinja::context! { e => e },
            cap,
        )
        .map_err(|f| fail(false, f))?;
        items.push(Item {
            severity: e.severity,
            kind: e.kind.as_str(),
            summary: e.summary.clone(),
            lines: lines
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
            card_color: card_color(e.severity),
        });
    }
    let ctx = minijinja::context! {
        events => events, items => items, status_url => status_url, host => host,
        subject => subject.clone(), idempotency_key => idempotency_key,
        color => slack_color(worst(events)), card_color => card_color(worst(events)),
    };
    let text = render_capped(
        &env,
        "text.txt.j2",
        include_str!("templates/text.txt.j2"),
        &ctx,
        cap,
    )
    .map_err(|f| fail(false, f))?;
    let ctx = minijinja::context! { text => text, ..ctx };
    let (name, builtin) = match (ch.kind, ch.format) {
        (ChannelKind::Webhook, _) => ("webhook.json.j2", include_str!("templates/webhook.json.j2")),
        (ChannelKind::Slack, _) => ("slack.json.j2", include_str!("templates/slack.json.j2")),
        (ChannelKind::Teams, TeamsFormat::AdaptiveCard) => {
            ("teams.json.j2", include_str!("templates/teams.json.j2"))
        }
        (ChannelKind::Teams, TeamsFormat::MessageCard) => (
            "teams-messagecard.json.j2",
            include_str!("templates/teams-messagecard.json.j2"),
        ),
        (ChannelKind::Email, _) => ("text.txt.j2", include_str!("templates/text.txt.j2")),
    };
    let body = match &ch.template {
        Some(t) => render_capped(&env, &t.path.display().to_string(), &t.text, &ctx, cap)
            .map_err(|f| fail(true, f))?,
        None => render_capped(&env, name, builtin, &ctx, cap).map_err(|f| fail(false, f))?,
    };
    if ch.kind != ChannelKind::Email {
        serde_json::from_str::<serde_json::Value>(&body).map_err(|e| {
            fail(
                true,
                (
                    RenderCause::NotJson,
                    None,
                    format!("the template did not produce JSON: {e}"),
                ),
            )
        })?;
    }
    Ok(Message { subject, body })
}

/// One outbox message of a group: its dedup key, its events' ids, and the
/// message or why it could not be rendered.
pub type Part = (String, Vec<i64>, Result<Message, RenderError>);

/// Renders `events` for `ch` as one message, or, when that is over the
/// channel's cap, as halves (recursively), so a burst of events is split into
/// several messages instead of failing; a single event over the cap fails
/// with the reason. Dedup keys are `channel:first-last` of each part's events,
/// the same again after a crash (the batch is the same).
pub fn render_parts(ch: &ChannelConf, events: &[Event], status_url: &str, host: &str) -> Vec<Part> {
    let (Some(a), Some(b)) = (events.first(), events.last()) else {
        return Vec::new();
    };
    let dedup = format!("{}:{}-{}", ch.name, a.id, b.id);
    let r = render(ch, events, status_url, host, &dedup);
    match r {
        // unless one event alone is over the cap (then every part would fail: once is enough)
        Err(e)
            if e.cause == RenderCause::TooLarge
                && events.len() > 1
                && render(ch, &events[..1], status_url, host, &dedup).is_ok() =>
        {
            let (x, y) = events.split_at(events.len() / 2);
            let mut v = render_parts(ch, x, status_url, host);
            v.extend(render_parts(ch, y, status_url, host));
            v
        }
        r => vec![(dedup, events.iter().map(|e| e.id).collect(), r)],
    }
}

/// The HTML part of an email: the text, escaped, its links made clickable.
/// The same words as the plain part (so filters see no mismatch), in a
/// layout that reads on a phone.
pub fn email_html(subject: &str, text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2 + 512);
    out.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>");
    out.push_str(&html_escape(subject));
    out.push_str("</title></head>\n<body><pre style=\"font-family: monospace; white-space: pre-wrap; word-wrap: break-word\">");
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&linkify(line));
    }
    out.push_str("</pre></body></html>\n");
    out
}

/// An escaped line with each `http(s)://` URL in it as a link.
fn linkify(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = [rest.find("http://"), rest.find("https://")]
        .into_iter()
        .flatten()
        .min()
    {
        out.push_str(&html_escape(&rest[..i]));
        let n = url_len(&rest[i..]);
        let u = html_escape(&rest[i..i + n]);
        out.push_str(&format!("<a href=\"{u}\">{u}</a>"));
        rest = &rest[i + n..];
    }
    out.push_str(&html_escape(rest));
    out
}

/// A Message-ID on the sender's domain, the same for every retry of one
/// message (so a mail client shows a duplicate delivery once).
pub fn message_id(from: &str, key: &str, m: &Message) -> String {
    use std::hash::{Hash, Hasher};
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').trim())
        .filter(|d| !d.is_empty())
        .unwrap_or("localhost");
    // std's SipHasher with fixed keys: stable for one build, which is all a retry needs
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    (key, &m.subject, &m.body).hash(&mut h);
    let key: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '.'
            }
        })
        .collect();
    format!("<rblwatch.{key}.{:016x}@{domain}>", h.finish())
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
    /// The TLS handshake failed (a plain-text port, a bad certificate...).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
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

/// The TLS failure somewhere in `e`'s source chain, if there is one: rustls's
/// own error, which an `io::Error` may wrap (and `io::Error::source` skips).
pub fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t.to_string());
        }
        // io::Error::source skips the error it wraps (hyper wraps rustls's twice)
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
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
                    // a TLS failure shows as a connect error: name it for what it is
                    if let Some(t) = tls_cause(&e) {
                        DeliveryError::Tls(t)
                    } else if e.is_timeout() {
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
            match tokio::time::timeout(
                timeout + Duration::from_secs(5),
                send_email(e, m, idempotency_key, timeout),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::Timeout),
            }
        }
    }
}

/// The email for `m`: Message-ID, Date, MIME-Version, `Auto-Submitted:
/// auto-generated` (RFC 3834: no auto-replies to it), and the text with an
/// HTML alternative.
pub fn email_message(e: &EmailConf, m: &Message, key: &str) -> Result<lettre::Message, String> {
    use lettre::message::header::{HeaderName, HeaderValue};
    use lettre::message::MultiPart;
    let mut b = lettre::Message::builder()
        .from(
            e.from
                .parse()
                .map_err(|_| format!("bad from address {:?}", e.from))?,
        )
        .subject(m.subject.clone())
        .message_id(Some(message_id(&e.from, key, m)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ));
    for to in &e.to {
        b = b.to(to.parse().map_err(|_| format!("bad recipient {to:?}"))?);
    }
    b.multipart(MultiPart::alternative_plain_html(
        m.body.clone(),
        email_html(&m.subject, &m.body),
    ))
    .map_err(|err| format!("cannot build the message: {err}"))
}

async fn send_email(
    e: &EmailConf,
    m: &Message,
    key: &str,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let msg = email_message(e, m, key).map_err(DeliveryError::Email)?;
    let builder = match e.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&e.host),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.host)
            .map_err(|err| DeliveryError::Email(format!("TLS setup: {err}")))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&e.host)
            .map_err(|err| DeliveryError::Email(format!("TLS setup: {err}")))?,
    };
    let mut builder = builder.port(e.port).timeout(Some(timeout));
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_string()));
    }
    let transport: AsyncSmtpTransport<Tokio1Executor> = builder.build();
    transport.send(msg).await.map(|_| ()).map_err(|err| {
        if let Some(t) = tls_cause(&err) {
            return DeliveryError::Tls(t);
        }
        // lettre's messages carry the server's reply, never our password
        let s = err.to_string();
        DeliveryError::Email(match &e.password {
            Some(p) if !p.expose().is_empty() => s.replace(p.expose(), "<redacted>"),
            _ => s,
        })
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
            format: TeamsFormat::default(),
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
            // Teams Markdown escapes the parentheses too
            assert!(s.contains("alert(1)") || s.contains(r"alert\\(1\\)"), "{s}");
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
            let escaped = match k {
                ChannelKind::Teams => r"\\<sample\\>",
                _ => "&lt;sample&gt;",
            };
            assert!(
                s.contains(escaped) && !s.contains(" <sample>"),
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

    /// A TXT record full of markup: it must stay text in every format.
    fn hostile() -> Event {
        let mut e = ev();
        e.details["txt"] = serde_json::json!([
            "*bold* _it_ ~del~ `code` [click](http://evil.test/) <!channel> <http://evil.test|x> & # head"
        ]);
        e
    }

    fn json(kind: ChannelKind, format: TeamsFormat, events: &[Event]) -> serde_json::Value {
        let mut c = ch(kind);
        c.format = format;
        let m = render(&c, events, "http://127.0.0.1:8025/", "mx", "k").unwrap();
        serde_json::from_str(&m.body).unwrap()
    }

    #[test]
    fn escapes_neutralise_each_markup() {
        assert_eq!(
            mrkdwn_escape("*b* _i_ ~s~ `c` <!here> a&b"),
            "\u{200B}*b\u{200B}* \u{200B}_i\u{200B}_ \u{200B}~s\u{200B}~ \u{200B}`c\u{200B}` &lt;!here&gt; a&amp;b"
        );
        assert_eq!(
            md_escape("[x](http://e.test/a_b?q=1) *b* _i_ <b> a-b\n- item\n# h\n1. one"),
            r"\[x\]\(http://e.test/a_b?q=1\) \*b\* \_i\_ \<b\> a-b
\- item
\# h
1\. one"
        );
        assert_eq!(
            md_escape("see http://x.test/*b*"),
            r"see http://x.test/\*b\*"
        );
        assert_eq!(md_escape("192.0.2.1 is listed"), "192.0.2.1 is listed");
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        // clipping never leaves half an entity or a dangling escape
        assert_eq!(clip("ab&amp;cd", 5), "ab…");
        assert_eq!(clip(r"ab\*cd", 4), "ab…");
        assert_eq!(clip("abc", 3), "abc");
    }

    /// Teams gets an Adaptive Card in the envelope Workflows webhooks take (the
    /// MessageCard only when asked for); Markdown from a TXT record stays text.
    #[test]
    fn teams_is_an_adaptive_card_with_remote_markdown_escaped() {
        let v = json(ChannelKind::Teams, TeamsFormat::AdaptiveCard, &[hostile()]);
        assert_eq!(v["type"], "message");
        let a = &v["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        let card = &a["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["actions"][0]["url"], "http://127.0.0.1:8025/");
        let s = card.to_string();
        assert!(
            s.contains(r"\\[click\\]\\(http://evil.test/\\)") && !s.contains("[click](http"),
            "{s}"
        );
        assert!(s.contains(r"\\*bold\\*") && s.contains("attention"), "{s}");
        let old = json(ChannelKind::Teams, TeamsFormat::MessageCard, &[hostile()]);
        assert_eq!(old["@type"], "MessageCard");
        let t = old["text"].as_str().unwrap();
        assert!(
            !t.contains("[click](http") && !t.contains("<!channel"),
            "{t}"
        );
    }

    /// Slack gets Block Kit sections in an attachment with the severity colour;
    /// `*bold*` and `<!channel>` from a TXT record do nothing.
    #[test]
    fn slack_is_block_kit_with_colour_and_remote_mrkdwn_neutralised() {
        let v = json(ChannelKind::Slack, TeamsFormat::default(), &[hostile()]);
        let att = &v["attachments"][0];
        assert_eq!(att["color"], "#d40e0d");
        let blocks = att["blocks"].as_array().unwrap();
        assert!(blocks.len() >= 3 && blocks.len() <= 50);
        assert!(blocks
            .iter()
            .all(|b| b["type"] == "section" || b["type"] == "context"));
        let all = v.to_string();
        assert!(
            !all.contains("*bold*") && !all.contains("<!channel>") && !all.contains("<http://evil"),
            "{all}"
        );
        assert!(all.contains("&lt;!channel&gt;"), "{all}");
        // a burst of events stays within Block Kit's limits
        let many: Vec<Event> = (0..120).map(|_| hostile()).collect();
        let v = json(ChannelKind::Slack, TeamsFormat::default(), &many);
        let blocks = v["attachments"][0]["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{}", blocks.len());
        for b in blocks {
            let t = b["text"]["text"]
                .as_str()
                .or(b["elements"][0]["text"].as_str())
                .unwrap();
            assert!(t.chars().count() <= 3000);
        }
    }

    /// The email as sent: Message-ID on the sender's domain (the same for a
    /// retry), Date, MIME-Version, Auto-Submitted, text + escaped HTML.
    #[test]
    fn email_has_the_headers_filters_expect_and_an_escaped_html_part() {
        let e = EmailConf {
            host: "127.0.0.1".into(),
            port: 25,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "rblwatch@mx.example.org".into(),
            to: vec!["postmaster@example.org".into()],
        };
        let m = render(
            &ch(ChannelKind::Email),
            &[hostile()],
            "http://127.0.0.1:8025/",
            "mx",
            "c:7-7",
        )
        .unwrap();
        let raw = String::from_utf8(email_message(&e, &m, "c:7-7").unwrap().formatted()).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap();
        for h in [
            "Message-ID: <rblwatch.c.7-7.",
            "MIME-Version: 1.0",
            "Date: ",
            "Auto-Submitted: auto-generated",
            "Content-Type: multipart/alternative",
        ] {
            assert!(head.contains(h), "{h}\n{head}");
        }
        assert!(head.contains("@mx.example.org>"), "{head}");
        assert_eq!(
            message_id(&e.from, "c:7-7", &m),
            message_id(&e.from, "c:7-7", &m)
        );
        let html = email_html(&m.subject, &m.body);
        assert!(
            !html.contains("<!channel>") && html.contains("&lt;!channel&gt;"),
            "{html}"
        );
        assert!(
            html.contains("[click](<a href=\"http://evil.test/\">"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"http://bl.test/?ip=192.0.2.1\">"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"http://127.0.0.1:8025/\">"),
            "{html}"
        );
    }

    /// `{{ no_such_variable }}` is an error (with the file and line) when the
    /// template is checked, not an empty string.
    #[test]
    fn an_unknown_variable_is_refused_with_file_and_line() {
        let mut c = ch(ChannelKind::Email);
        c.template = tpl("Hello\n{{ subject }}\n{{ no_such_variable }}\n");
        let err = check_template(&c).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert_eq!(err.cause, RenderCause::Template);
        let s = err.to_string();
        assert!(s.contains("t.j2:3:") && s.contains("undefined"), "{s}");
        // an optional detail may still be tested
        c.template = tpl("{% for e in events %}{% if e.details.txt %}{{ e.details.txt|join }}{% endif %}{% endfor %}");
        check_template(&c).unwrap();
        // a channel is checked only against the events it takes
        c.template = tpl("{{ events[0].details.txt[0] }}");
        assert!(check_template(&c).is_err());
        c.on = vec![crate::event::EventKind::Listed];
        check_template(&c).unwrap();
    }

    /// A body over the channel's cap (256 KiB webhooks, 1 MiB email) is refused
    /// at the cap, quickly, without building the whole body; so is a template
    /// that loops for ever.
    #[test]
    fn a_render_over_the_cap_or_the_fuel_fails_fast() {
        let t0 = std::time::Instant::now();
        let mut c = ch(ChannelKind::Webhook);
        // 100 MB if it ran to the end
        c.template = tpl("{\"x\": \"{% for i in range(100000) %}{{ \"x\" * 1000 }}{% endfor %}\"}");
        let err = check_template(&c).unwrap_err();
        assert_eq!(err.cause, RenderCause::TooLarge, "{err}");
        assert!(err.to_string().contains("256 KiB"), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        // 512 KiB: too much for a webhook, fine for an email
        let half = "{% for i in range(512) %}{{ \"x\" * 1024 }}{% endfor %}";
        c.template = tpl(&format!("\"{half}\""));
        assert_eq!(check_template(&c).unwrap_err().cause, RenderCause::TooLarge);
        let mut e = ch(ChannelKind::Email);
        e.template = tpl(half);
        check_template(&e).unwrap();
        e.template = tpl("{% for i in range(1100) %}{{ \"x\" * 1024 }}{% endfor %}");
        assert!(check_template(&e)
            .unwrap_err()
            .to_string()
            .contains("1024 KiB"));
        // no output, endless work
        e.template =
            tpl("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
        let t0 = std::time::Instant::now();
        let err = check_template(&e).unwrap_err();
        assert!(err.to_string().contains("runs too long"), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    }

    /// A burst too large for one webhook message is split, not failed; one
    /// event alone over the cap fails with the reason.
    #[test]
    fn a_burst_over_the_cap_is_split_into_messages() {
        let mut big = ev();
        big.details["txt"] = serde_json::json!(["y".repeat(2000)]);
        let events: Vec<Event> = (0..300)
            .map(|i| {
                let mut e = big.clone();
                e.id = i + 1;
                e
            })
            .collect();
        let c = ch(ChannelKind::Webhook);
        let parts = render_parts(&c, &events, "", "mx");
        assert!(parts.len() > 1, "{}", parts.len());
        assert!(parts
            .iter()
            .all(|(_, _, r)| r.as_ref().is_ok_and(|m| m.body.len() <= 256 << 10)));
        let ids: Vec<i64> = parts.iter().flat_map(|(_, ids, _)| ids.clone()).collect();
        assert_eq!(ids, (1..=300).collect::<Vec<i64>>());
        assert_eq!(parts[0].0, format!("c:1-{}", parts[0].1.len()));
        let mut c = ch(ChannelKind::Webhook);
        c.template = tpl("\"{% for i in range(300) %}{{ \"x\" * 1024 }}{% endfor %}\"");
        let parts = render_parts(&c, &events[..4], "", "mx");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].1, vec![1, 2, 3, 4]);
        assert!(parts[0]
            .2
            .as_ref()
            .is_err_and(|e| e.cause == RenderCause::TooLarge));
    }
}
