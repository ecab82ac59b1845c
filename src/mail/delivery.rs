//! Delivery results from the MTA's own log: one [`DeliveryResult`] per
//! recipient and delivery attempt, with the remote server's reply text.
//!
//! DNSBL lookups tell whether our IP is listed; the delivery log tells whether
//! receivers *act* on it, and on their private reputation data, which no
//! lookup can see. These parsers extract the facts the reply catalog
//! ([`crate::replies`]) classifies: who answered (relay host and IP), at which
//! SMTP stage, with which text. They are pure (a line in, a result out), never
//! panic on any input, and return `None` for every line that is not a delivery
//! result (arrivals, queue-manager chatter, SMTP-server rejects of *incoming*
//! mail), so a caller can feed them the whole log.
//!
//! Postfix: `postfix/smtp`, `postfix/lmtp`, `postfix/error` and friends log
//! `QUEUEID: to=<rcpt>, relay=host[ip]:port, …, dsn=X.Y.Z, status=WORD (TEXT)`,
//! with either timestamp style (syslog `Nov 23 10:00:00 host`, or the RFC 3339
//! one of `maillog_file`) and any `syslog_name` (`postfix-out/smtp`). The
//! remote reply follows `said:` or `refused to talk to me:`; Postfix has
//! already joined a multi-line reply into one line.
//!
//! Exim: main-log lines `ID ** rcpt … H=host [ip] … : SMTP error from remote
//! mail server after STAGE: REPLY` (bounce), `ID == rcpt … defer (N) …`
//! (deferral) and `ID => rcpt … C="250 …"` (delivery). Exim writes the line
//! breaks of a multi-line reply as a literal `\n`; they become spaces here so
//! that replies from both MTAs look alike.

use std::net::IpAddr;

use serde::Serialize;

/// What happened to one recipient on one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Accepted by the next hop.
    Sent,
    /// Temporary failure: the MTA will retry (Postfix `deferred` and
    /// `SOFTBOUNCE`, Exim `==`).
    Deferred,
    /// Permanent failure: the sender gets a bounce.
    Bounced,
    /// Given up after the maximal queue lifetime (Postfix `status=expired`,
    /// Exim `retry timeout exceeded`).
    Expired,
}

/// One delivery result parsed from a log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryResult {
    /// Postfix queue id or Exim message id.
    pub queue_id: String,
    /// The recipient address. Empty for a Postfix queue-manager expiry line,
    /// which names only the sender.
    pub recipient: String,
    /// The host that answered: the relay's name, or the host named in the
    /// text when the relay is `none` (`connect to host[ip]`,
    /// `delivery temporarily suspended: host … refused to talk to me`).
    /// `None` for local deliveries.
    pub relay_host: Option<String>,
    /// The relay's IP address, when the log gives one.
    pub relay_ip: Option<IpAddr>,
    /// The enhanced status code: Postfix's `dsn=`; for Exim, the one at the
    /// start of the reply, if any.
    pub dsn: Option<String>,
    /// What happened.
    pub status: DeliveryStatus,
    /// The remote server's reply text, from its 3-digit code on; `None` when
    /// no remote server replied (connection refused, local delivery, retry
    /// time not reached).
    pub reply: Option<String>,
    /// The SMTP stage the reply or failure belongs to: `connect`, `HELO`,
    /// `EHLO`, `MAIL FROM`, `RCPT TO`, `DATA`, `end of DATA` (other commands as
    /// logged).
    pub stage: Option<String>,
}

/// Parses one Postfix log line; `None` unless it is a delivery result.
pub fn parse_postfix(line: &str) -> Option<DeliveryResult> {
    let line = line.trim_end_matches(['\r', '\n']);
    // `… host name/service[pid]: QUEUEID: …`: the program token comes after
    // the timestamp and host name, whichever timestamp style.
    let (_, rest) = tokens(line)
        .take(8)
        .find(|(_, t)| is_program_token(t))
        .and_then(|(i, t)| line.get(i + t.len()..).map(|r| (t, r)))?;
    let rest = rest.trim_start();
    let (queue_id, body) = rest.split_once(": ")?;
    if queue_id.is_empty() || !queue_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    if let Some(from) = body.strip_prefix("from=<") {
        // qmgr: `from=<sender>, status=expired, returned to sender`
        let (_, after) = from.split_once('>')?;
        if !after.starts_with(", status=expired") {
            return None;
        }
        return Some(DeliveryResult {
            queue_id: queue_id.to_string(),
            recipient: String::new(),
            relay_host: None,
            relay_ip: None,
            dsn: None,
            status: DeliveryStatus::Expired,
            reply: None,
            stage: None,
        });
    }
    let after_to = body.strip_prefix("to=<")?;
    let (recipient, fields) = after_to.split_once('>')?;
    let status_at = fields.find(", status=")?;
    let (head, tail) = fields.split_at(status_at);
    let tail = &tail[", status=".len()..];
    let word_end = tail.find(' ').unwrap_or(tail.len());
    let status = match &tail[..word_end] {
        "sent" => DeliveryStatus::Sent,
        "deferred" | "SOFTBOUNCE" => DeliveryStatus::Deferred,
        "bounced" => DeliveryStatus::Bounced,
        "expired" => DeliveryStatus::Expired,
        _ => return None,
    };
    let text = tail[word_end..]
        .trim_start()
        .strip_prefix('(')
        .map(|t| t.strip_suffix(')').unwrap_or(t))
        .unwrap_or("");
    let (mut relay_host, mut relay_ip) = field(head, "relay=")
        .map(parse_host_brackets)
        .unwrap_or((None, None));
    let dsn = field(head, "dsn=")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let outcome = postfix_text(text, status);
    if relay_host.is_none() {
        if let Some((h, ip)) = outcome.host {
            relay_host = h;
            relay_ip = ip;
        }
    }
    Some(DeliveryResult {
        queue_id: queue_id.to_string(),
        recipient: recipient.to_string(),
        relay_host,
        relay_ip,
        dsn,
        status,
        reply: outcome.reply,
        stage: outcome.stage,
    })
}

/// What the parenthesised text of a Postfix delivery line says.
struct TextOutcome {
    reply: Option<String>,
    stage: Option<String>,
    host: Option<(Option<String>, Option<IpAddr>)>,
}

fn postfix_text(text: &str, status: DeliveryStatus) -> TextOutcome {
    let mut text = text.trim();
    while let Some(t) = text.strip_prefix("delivery temporarily suspended: ") {
        text = t;
    }
    let none = TextOutcome {
        reply: None,
        stage: None,
        host: None,
    };
    if let Some(h) = text.strip_prefix("host ") {
        let Some((hostpart, rest)) = h.split_once(' ') else {
            return none;
        };
        let host = Some(parse_host_brackets(hostpart));
        if let Some(r) = rest.strip_prefix("said: ") {
            let stage_at = r
                .rfind(" (in reply to ")
                .filter(|_| r.ends_with(" command)"));
            let (reply, stage) = match stage_at.and_then(|i| {
                r.get(i + " (in reply to ".len()..r.len() - " command)".len())
                    .map(|st| (&r[..i], st))
            }) {
                Some((reply, st)) => (reply, non_empty(st)),
                None => (r, None),
            };
            return TextOutcome {
                reply: non_empty(reply),
                stage,
                host,
            };
        }
        if let Some(r) = rest.strip_prefix("refused to talk to me: ") {
            return TextOutcome {
                reply: non_empty(r),
                stage: Some("connect".into()),
                host,
            };
        }
        return TextOutcome { host, ..none };
    }
    if let Some(c) = text.strip_prefix("connect to ") {
        // `host[ip]:25: Connection refused`
        let hostpart = c.split(' ').next().unwrap_or("");
        return TextOutcome {
            reply: None,
            stage: Some("connect".into()),
            host: Some(parse_host_brackets(hostpart)),
        };
    }
    for lead in ["lost connection with ", "conversation with "] {
        if let Some(c) = text.strip_prefix(lead) {
            let hostpart = c.split(' ').next().unwrap_or("");
            let stage = c
                .find(" while ")
                .map(|i| {
                    postfix_while_stage(
                        c[i + " while ".len()..]
                            .trim_end_matches(" -- message may be sent more than once"),
                    )
                })
                .filter(|s| !s.is_empty());
            return TextOutcome {
                reply: None,
                stage,
                host: Some(parse_host_brackets(hostpart)),
            };
        }
    }
    if status == DeliveryStatus::Sent && starts_with_reply_code(text) {
        return TextOutcome {
            reply: non_empty(text),
            ..none
        };
    }
    none
}

/// `sending RCPT TO` → `RCPT TO`, `receiving the initial server greeting` → `connect`.
fn postfix_while_stage(s: &str) -> String {
    let s = s.trim();
    match s {
        "receiving the initial server greeting" => "connect".into(),
        "sending end of data" => "end of DATA".into(),
        "sending message body" => "DATA".into(),
        "performing the EHLO handshake" => "EHLO".into(),
        "performing the HELO handshake" => "HELO".into(),
        _ => s
            .strip_prefix("sending ")
            .or_else(|| s.strip_prefix("receiving "))
            .unwrap_or(s)
            .to_string(),
    }
}

/// Parses one Exim main-log line; `None` unless it is a delivery result
/// (`**`, `==`, `=>`, `->`, `>>`).
pub fn parse_exim(line: &str) -> Option<DeliveryResult> {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut toks = tokens(line).take(12).peekable();
    let (queue_id, flag, after_flag) = loop {
        let (_, t) = toks.next()?;
        if is_exim_id(t) {
            let &(fi, f) = toks.peek()?;
            if matches!(f, "**" | "==" | "=>" | "->" | ">>") {
                break (t, f, line.get(fi + f.len()..)?);
            }
        }
    };
    let rest = after_flag.trim_start();
    let rcpt_token = rest.split(' ').next().unwrap_or("");
    let recipient = rcpt_token
        .trim_end_matches(':')
        .trim_start_matches('<')
        .trim_end_matches('>');
    if recipient.is_empty() {
        return None;
    }
    let mut status = match flag {
        "**" => DeliveryStatus::Bounced,
        "==" => DeliveryStatus::Deferred,
        _ => DeliveryStatus::Sent,
    };
    if status == DeliveryStatus::Bounced && rest.contains("retry timeout exceeded") {
        status = DeliveryStatus::Expired;
    }
    let (relay_host, relay_ip) = exim_host(rest);
    let mut reply = None;
    let mut stage = None;
    if status == DeliveryStatus::Sent {
        if let Some(i) = rest.find(" C=\"") {
            let c = &rest[i + " C=\"".len()..];
            let c = c.rfind('"').map_or(c, |j| &c[..j]);
            reply = non_empty(c);
        }
    } else if let Some((st, r)) = exim_error(rest) {
        stage = non_empty(&st);
        reply = non_empty(&r);
    } else if let Some(i) = rest.find(" in response to ") {
        stage = non_empty(&exim_stage(
            rest[i + " in response to ".len()..]
                .split(" (")
                .next()
                .unwrap_or(""),
        ));
    } else if let Some(i) = rest.find("timeout after ") {
        stage = non_empty(&exim_stage(&rest[i + "timeout after ".len()..]));
    } else if [
        "Connection refused",
        "Connection timed out",
        "Network is unreachable",
        "No route to host",
    ]
    .iter()
    .any(|m| rest.contains(m))
    {
        stage = Some("connect".into());
    }
    let dsn = reply.as_deref().and_then(enhanced_code);
    Some(DeliveryResult {
        queue_id: queue_id.to_string(),
        recipient: recipient.to_string(),
        relay_host,
        relay_ip,
        dsn,
        status,
        reply,
        stage,
    })
}

/// `… SMTP error from remote mail server after STAGE: REPLY` (or the LMTP
/// form) → `(stage, reply)`, with Exim's `\n` escapes turned into spaces.
fn exim_error(rest: &str) -> Option<(String, String)> {
    let tail = [
        "SMTP error from remote mail server after ",
        "LMTP error after ",
    ]
    .iter()
    .find_map(|m| rest.find(m).map(|i| &rest[i + m.len()..]))?;
    let mut from = 0;
    while let Some(i) = tail.get(from..).and_then(|t| t.find(": ")) {
        let at = from + i;
        let after = tail.get(at + 2..).unwrap_or("");
        if starts_with_reply_code(after) {
            let reply = after.replace("\\r\\n", " ").replace("\\n", " ");
            return Some((exim_stage(&tail[..at]), reply.trim().to_string()));
        }
        from = at + 2;
    }
    None
}

/// `pipelined RCPT TO:<x>` → `RCPT TO`, `end of data` → `end of DATA`,
/// `initial connection` → `connect`, `HELO name` → `HELO`.
fn exim_stage(raw: &str) -> String {
    let s = raw.trim();
    let s = s.strip_prefix("pipelined ").unwrap_or(s);
    let up = s.to_ascii_uppercase();
    if up.starts_with("RCPT TO") {
        "RCPT TO".into()
    } else if up.starts_with("MAIL FROM") {
        "MAIL FROM".into()
    } else if up.starts_with("END OF DATA") {
        "end of DATA".into()
    } else if up.starts_with("INITIAL CONNECTION") {
        "connect".into()
    } else {
        s.split([' ', ':']).next().unwrap_or(s).to_string()
    }
}

/// The `H=host [ip]:port` field of an Exim line.
fn exim_host(rest: &str) -> (Option<String>, Option<IpAddr>) {
    let Some(i) = rest.find(" H=") else {
        return (None, None);
    };
    let mut it = rest[i + " H=".len()..].split(' ');
    let name = it.next().unwrap_or("").trim_end_matches([':', '*']);
    if name.starts_with('[') {
        let (_, ip) = parse_host_brackets(name);
        return (ip.map(|a| a.to_string()), ip);
    }
    let ip = it
        .next()
        .filter(|t| t.starts_with('['))
        .and_then(|t| parse_host_brackets(t.trim_end_matches([':', '*'])).1);
    (non_empty(name), ip)
}

/// `name[ip]:port`, `name[private/socket]`, `[ip]`, `none` → (name, ip).
/// Values without brackets (`none`, `local`) name no remote host.
fn parse_host_brackets(s: &str) -> (Option<String>, Option<IpAddr>) {
    let s = s.trim().trim_end_matches([':', ',']);
    let Some(open) = s.find('[') else {
        return (None, None);
    };
    let name = &s[..open];
    let inner = s[open + 1..].split(']').next().unwrap_or("");
    let ip = inner
        .strip_prefix("IPv6:")
        .unwrap_or(inner)
        .parse::<IpAddr>()
        .ok();
    (non_empty(name), ip)
}

/// The value of `key` in Postfix's `k=v, k=v` list.
fn field<'a>(head: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = head.get(from..).and_then(|h| h.find(key)) {
        let at = from + i;
        if at == 0 || head[..at].ends_with(' ') {
            let v = &head[at + key.len()..];
            return Some(v.split(", ").next().unwrap_or(v));
        }
        from = at + key.len();
    }
    None
}

/// `name/service[pid]:` — the program token of a Postfix line.
fn is_program_token(t: &str) -> bool {
    let Some(inner) = t.strip_suffix("]:") else {
        return false;
    };
    let Some((prog, pid)) = inner.rsplit_once('[') else {
        return false;
    };
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && prog.contains('/')
        && !prog.starts_with('/')
        && !prog.ends_with('/')
}

/// An Exim message id: `1xVKN3-0004Lk-1l` (before 4.97) or
/// `1wtcTj-00000008OnA-0eY6` (4.97 and later).
pub(crate) fn is_exim_id(t: &str) -> bool {
    let mut parts = t.split('-');
    let (Some(a), Some(b), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let alnum = |s: &str| s.bytes().all(|x| x.is_ascii_alphanumeric());
    alnum(a)
        && alnum(b)
        && alnum(c)
        && a.len() == 6
        && matches!((b.len(), c.len()), (6, 2) | (11, 4))
}

/// White-space separated tokens with their byte offsets.
fn tokens(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let rest = line.get(pos..)?;
        let start = pos + rest.find(|c: char| !c.is_ascii_whitespace())?;
        let len = line[start..]
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(line.len() - start);
        pos = start + len;
        Some((start, &line[start..start + len]))
    })
}

fn starts_with_reply_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3
        && matches!(b[0], b'2'..=b'5')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && matches!(b.get(3), None | Some(b' ' | b'-'))
}

/// `5.7.1` of `550 5.7.1 …` or `550-5.7.1 …`.
fn enhanced_code(reply: &str) -> Option<String> {
    let code = reply.get(4..)?.split([' ', '-']).next()?;
    let mut parts = code.split('.');
    let ok = parts.next().is_some_and(|p| matches!(p, "2" | "4" | "5"))
        && parts.clone().count() == 2
        && parts.all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| code.to_string())
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests;
