//! Remote rejections from the MTA's own log: every delivery result in which a
//! remote server refused or deferred our mail is classified by the
//! receiver-reply catalog ([`crate::replies`]) and tallied per read.
//!
//! Pure: a chunk of log text in, a [`Tally`] out. The tally gives per-interval
//! metrics (`rejected_<meaning>`, `deferred_<meaning>`, `delivered_remote`) and
//! groups by receiver, outcome, meaning, rule, list and cited target, each
//! with one sample reply and a few queue ids, which the daemon stores for the
//! impact join ([`crate::impact`]).
//!
//! The reply is untrusted remote text: it is kept as data only, with control
//! characters replaced and its length capped, and never reaches a command line.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::delivery::{parse_exim, parse_postfix, DeliveryResult, DeliveryStatus};
use super::Sample;
use crate::catalog::Catalog;
use crate::replies::{ReplyCatalog, ReplyMeaning};
use crate::target::{Target, TargetSpec};

/// Which MTA wrote the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mta {
    /// Postfix (`postfix/smtp[…]: ID: to=<…>, … status=…`).
    Postfix,
    /// Exim's main log (`ID ** rcpt …`, `ID == rcpt …`).
    Exim,
}

crate::spelling::closed_set! {
    /// What the receiver did with the delivery.
    #[derive(PartialOrd, Ord)]
    pub enum Outcome {
        /// Refused for good (5xx, or given up after retries).
        Rejected = "rejected",
        /// Refused for now (4xx); the MTA retries.
        Deferred = "deferred",
    }
}

/// The metric word of a meaning (`None`: the reply matched no rule).
pub fn meaning_metric(m: Option<ReplyMeaning>) -> &'static str {
    match m {
        Some(ReplyMeaning::IpBlocklist) => "blocklist",
        Some(ReplyMeaning::IpReputation) => "reputation",
        Some(ReplyMeaning::DomainReputation) => "domain_reputation",
        Some(ReplyMeaning::RateLimit) => "rate_limit",
        Some(ReplyMeaning::Authentication) => "authentication",
        Some(ReplyMeaning::Content) => "content",
        Some(ReplyMeaning::Policy) => "policy",
        Some(ReplyMeaning::Recipient) => "recipient",
        Some(ReplyMeaning::ReceiverError) => "receiver_error",
        None => "other",
    }
}

/// One group of refused deliveries within a read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Receiver id from the reply catalog, else the answering host's domain
    /// (or its IP), else `unknown`.
    pub receiver: String,
    /// Rejected or deferred.
    pub outcome: Outcome,
    /// What the reply means; `None` when no rule matched.
    pub meaning: Option<ReplyMeaning>,
    /// The rule that matched.
    pub rule: Option<String>,
    /// The DNSBL catalog id the reply names.
    pub list: Option<String>,
    /// The zone the reply names, as written.
    pub zone: Option<String>,
    /// A monitored target the reply names (`Client host [192.0.2.10]`).
    pub cited: Option<String>,
    /// Deliveries in the group.
    pub count: u64,
    /// One reply of the group (untrusted: control characters replaced, at most
    /// [`MAX_REPLY`] bytes).
    pub reply: String,
    /// The answering host, as logged.
    pub relay: Option<String>,
    /// The enhanced status code.
    pub dsn: Option<String>,
    /// The SMTP stage.
    pub stage: Option<String>,
    /// Up to [`MAX_QUEUE_IDS`] queue ids of the group.
    pub queue_ids: Vec<String>,
}

/// Longest reply kept (bytes).
pub const MAX_REPLY: usize = 1000;
/// Queue ids kept per group.
pub const MAX_QUEUE_IDS: usize = 10;

/// What one chunk of log says about receivers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// The refused deliveries, grouped.
    pub groups: Vec<Rejection>,
    /// Deliveries a remote server accepted.
    pub delivered_remote: u64,
}

impl Tally {
    /// Adds the tally of the next chunk of the same read: groups with the
    /// same receiver, outcome, meaning, rule, list and cited target are one.
    pub fn merge(&mut self, o: Tally) {
        self.delivered_remote += o.delivered_remote;
        for g in o.groups {
            let same = self.groups.iter_mut().find(|m| {
                (
                    &m.receiver,
                    m.outcome,
                    m.meaning,
                    &m.rule,
                    &m.list,
                    &m.cited,
                ) == (
                    &g.receiver,
                    g.outcome,
                    g.meaning,
                    &g.rule,
                    &g.list,
                    &g.cited,
                )
            });
            match same {
                Some(m) => {
                    m.count += g.count;
                    for q in g.queue_ids {
                        if m.queue_ids.len() < MAX_QUEUE_IDS && !m.queue_ids.contains(&q) {
                            m.queue_ids.push(q);
                        }
                    }
                }
                None => self.groups.push(g),
            }
        }
    }

    /// Deliveries refused with `outcome` and a meaning.
    pub fn count(&self, outcome: Outcome, meaning: Option<ReplyMeaning>) -> u64 {
        self.groups
            .iter()
            .filter(|g| g.outcome == outcome && g.meaning == meaning)
            .map(|g| g.count)
            .sum()
    }

    /// The per-interval metrics: `rejected_<meaning>` and `deferred_<meaning>`
    /// for every meaning and `other` (unclassified), and `delivered_remote`.
    pub fn samples(&self) -> Vec<Sample> {
        let meanings = ReplyMeaning::ALL.iter().map(|m| Some(*m)).chain([None]);
        let mut out = Vec::new();
        for m in meanings {
            for o in [Outcome::Rejected, Outcome::Deferred] {
                out.push(Sample::new(
                    &format!("{}_{}", o.as_str(), meaning_metric(m)),
                    self.count(o, m) as f64,
                ));
            }
        }
        out.push(Sample::new(
            "delivered_remote",
            self.delivered_remote as f64,
        ));
        out
    }
}

/// Classifies every delivery result in `text` (pure). `targets` are the
/// monitored targets, to recognise one named in a reply.
pub fn tally(
    text: &str,
    mta: Mta,
    replies: &ReplyCatalog,
    lists: &Catalog,
    targets: &[TargetSpec],
) -> Tally {
    type Key = (
        String,
        Outcome,
        Option<ReplyMeaning>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let mut groups: BTreeMap<Key, Rejection> = BTreeMap::new();
    let mut order: Vec<Key> = Vec::new();
    let mut delivered_remote = 0;
    for line in text.lines() {
        let parsed = match mta {
            Mta::Postfix => parse_postfix(line),
            Mta::Exim => parse_exim(line),
        };
        let Some(r) = parsed else { continue };
        let outcome = match r.status {
            DeliveryStatus::Sent => {
                if r.relay_host.is_some() || r.relay_ip.is_some() {
                    delivered_remote += 1;
                }
                continue;
            }
            DeliveryStatus::Deferred => Outcome::Deferred,
            DeliveryStatus::Bounced | DeliveryStatus::Expired => Outcome::Rejected,
        };
        // only what a remote server said: connection failures and local bounces are not replies
        let Some(reply) = r.reply.as_deref() else {
            continue;
        };
        let class = replies.classify(reply, r.relay_host.as_deref(), lists);
        let receiver = class
            .as_ref()
            .and_then(|c| c.receiver.clone())
            .or_else(|| {
                r.relay_host
                    .as_deref()
                    .and_then(|h| replies.receiver_for_relay(h))
                    .map(|x| x.id.clone())
            })
            .unwrap_or_else(|| host_receiver(&r));
        let cited = cited_target(reply, targets);
        let key: Key = (
            receiver.clone(),
            outcome,
            class.as_ref().map(|c| c.meaning),
            class.as_ref().map(|c| c.rule.clone()),
            class.as_ref().and_then(|c| c.list.clone()),
            cited.clone(),
        );
        let g = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Rejection {
                receiver,
                outcome,
                meaning: class.as_ref().map(|c| c.meaning),
                rule: class.as_ref().map(|c| c.rule.clone()),
                list: class.as_ref().and_then(|c| c.list.clone()),
                zone: class.as_ref().and_then(|c| c.zone.clone()),
                cited,
                count: 0,
                reply: clean_text(reply, MAX_REPLY),
                relay: r.relay_host.as_deref().map(|h| clean_text(h, 255)),
                dsn: r.dsn.clone(),
                stage: r.stage.clone(),
                queue_ids: Vec::new(),
            }
        });
        g.count += 1;
        if g.queue_ids.len() < MAX_QUEUE_IDS && !g.queue_ids.contains(&r.queue_id) {
            g.queue_ids.push(r.queue_id.clone());
        }
    }
    Tally {
        groups: order
            .into_iter()
            .filter_map(|k| groups.remove(&k))
            .collect(),
        delivered_remote,
    }
}

/// A receiver id for a host no catalog receiver claims: its IP, or its
/// domain (the last two labels, three under a short second level such as
/// `co.uk`), lower-cased; `unknown` without a host.
fn host_receiver(r: &DeliveryResult) -> String {
    let Some(host) = r.relay_host.as_deref() else {
        return r
            .relay_ip
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into());
    };
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<IpAddr>().is_ok() {
        return host;
    }
    let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
    let keep = match labels.as_slice() {
        [.., second, _] if second.len() <= 3 && labels.len() >= 3 => 3,
        _ => 2,
    };
    let id = labels[labels.len().saturating_sub(keep)..].join(".");
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    if id.is_empty() {
        "unknown".into()
    } else {
        id
    }
}

/// The first monitored target the reply names: an IP address literal
/// (`[192.0.2.10]`, `192.0.2.10`, `[IPv6:2001:db8::1]`) or a domain.
pub fn cited_target(reply: &str, targets: &[TargetSpec]) -> Option<String> {
    if targets.is_empty() {
        return None;
    }
    let words =
        reply.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_')));
    for w in words {
        let w = w.trim_matches(|c: char| c == '.' || c == ':' || c == '-');
        let w = w.strip_prefix("IPv6:").unwrap_or(w);
        if w.len() < 3 || !w.contains(['.', ':']) {
            continue;
        }
        let t = match w.parse::<IpAddr>() {
            Ok(ip) => Target::Ip(ip),
            Err(_) => match Target::parse(w) {
                Ok(t @ Target::Domain(_)) => t,
                _ => continue,
            },
        };
        if targets.iter().any(|s| s.contains(&t)) {
            return Some(t.to_string());
        }
    }
    None
}

/// Remote text made safe to keep and show as data: control characters (line
/// breaks, escapes) become spaces, and it is cut at `max` bytes.
pub fn clean_text(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        let c = if c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            ' '
        } else {
            c
        };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::RangePolicy;

    fn cats() -> (ReplyCatalog, Catalog) {
        (
            ReplyCatalog::shipped().unwrap(),
            Catalog::shipped().unwrap(),
        )
    }

    fn spec(s: &str) -> TargetSpec {
        TargetSpec::parse(s, RangePolicy::Normal).unwrap()
    }

    const POSTFIX: &str = "Nov 23 10:00:01 mx1 postfix/smtp[2101]: 4ZK3p34LgK: to=<alice@outlook.com>, relay=outlook-com.olc.protection.outlook.com[203.0.113.1]:25, delay=1.2, delays=0.1/0/0.6/0.5, dsn=5.7.1, status=bounced (host outlook-com.olc.protection.outlook.com[203.0.113.1] said: 550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [VE1EUR01FT080.eop-EUR01.prod.protection.outlook.com] (in reply to MAIL FROM command))
Nov 23 10:00:02 mx1 postfix/smtp[2102]: 5ZK3p34LgK: to=<bob@outlook.com>, relay=outlook-com.olc.protection.outlook.com[203.0.113.1]:25, delay=1.2, delays=0.1/0/0.6/0.5, dsn=5.7.1, status=bounced (host outlook-com.olc.protection.outlook.com[203.0.113.1] said: 550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [VE1EUR01FT080.eop-EUR01.prod.protection.outlook.com] (in reply to MAIL FROM command))
Nov 23 10:00:03 mx1 postfix/smtp[2103]: 6ZK3p34LgK: to=<carol@example.net>, relay=mx.example.net[203.0.113.5]:25, delay=0.3, delays=0.1/0/0.1/0.1, dsn=5.7.1, status=bounced (host mx.example.net[203.0.113.5] said: 554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.10 (in reply to RCPT TO command))
Nov 23 10:00:04 mx1 postfix/smtp[2104]: 7ZK3p34LgK: to=<dave@example.org>, relay=mx.example.org[203.0.113.9]:25, delay=0.3, delays=0.1/0/0.1/0.1, dsn=4.2.0, status=deferred (host mx.example.org[203.0.113.9] said: 450 4.2.0 something nobody wrote a rule for\x1b[31m (in reply to RCPT TO command))
Nov 23 10:00:05 mx1 postfix/smtp[2105]: 8ZK3p34LgK: to=<erin@example.org>, relay=mx.example.org[203.0.113.9]:25, delay=0.3, delays=0.1/0/0.1/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ABC)
Nov 23 10:00:06 mx1 postfix/local[23921]: B160399CAB5: to=<nouser@example.test>, relay=local, delay=0.02, delays=0.01/0.01/0/0.01, dsn=5.1.1, status=bounced (unknown user: \"nouser\")
";

    /// A read comes in pieces: their tallies merged are the tally of the whole.
    #[test]
    fn pieces_merge_into_the_tally_of_the_whole() {
        let (r, l) = cats();
        let targets = [spec("192.0.2.10")];
        let whole = tally(POSTFIX, Mta::Postfix, &r, &l, &targets);
        let mut merged = Tally::default();
        for line in POSTFIX.lines() {
            merged.merge(tally(line, Mta::Postfix, &r, &l, &targets));
        }
        assert_eq!(merged, whole);
    }

    #[test]
    fn real_postfix_lines_are_grouped_classified_and_counted() {
        let (r, l) = cats();
        let t = tally(POSTFIX, Mta::Postfix, &r, &l, &[spec("192.0.2.10")]);
        assert_eq!(t.delivered_remote, 1);
        assert_eq!(t.groups.len(), 3, "{:#?}", t.groups);
        let ms = &t.groups[0];
        assert_eq!(ms.receiver, "microsoft");
        assert_eq!(ms.rule.as_deref(), Some("microsoft-s3150"));
        assert_eq!(ms.meaning, Some(ReplyMeaning::IpReputation));
        assert_eq!(ms.count, 2);
        assert_eq!(ms.queue_ids, vec!["4ZK3p34LgK", "5ZK3p34LgK"]);
        assert_eq!(ms.cited.as_deref(), Some("192.0.2.10"));
        assert_eq!(ms.outcome, Outcome::Rejected);
        let zen = &t.groups[1];
        assert_eq!(zen.list.as_deref(), Some("spamhaus-zen"));
        assert_eq!(
            zen.receiver, "example.net",
            "no catalog receiver: the host's domain"
        );
        assert_eq!(zen.meaning, Some(ReplyMeaning::IpBlocklist));
        let other = &t.groups[2];
        assert_eq!(other.meaning, None);
        assert_eq!(other.outcome, Outcome::Deferred);
        assert!(
            !other.reply.contains('\u{1b}'),
            "control characters removed"
        );
        let s = t.samples();
        let get = |m: &str| s.iter().find(|x| x.metric == m).unwrap().value;
        assert_eq!(get("rejected_reputation"), 2.0);
        assert_eq!(get("rejected_blocklist"), 1.0);
        assert_eq!(get("deferred_other"), 1.0);
        assert_eq!(get("deferred_rate_limit"), 0.0);
        assert_eq!(get("delivered_remote"), 1.0);
        assert_eq!(s.len(), 2 * (ReplyMeaning::ALL.len() + 1) + 1);
    }

    #[test]
    fn real_exim_lines() {
        let (r, l) = cats();
        let log = "2026-11-23 10:01:11 1xVKNv-0004cr-37 == carol@yahoo.com R=dnslookup T=remote_smtp defer (-45) H=mta6.am0.yahoodns.net [203.0.113.72]: SMTP error from remote mail server after MAIL FROM:<sender@example.com> SIZE=1234: 421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes
2026-11-23 10:01:14 1xVKMW-0004C7-0f <= victim@victim.test H=(attacker.test) [127.0.0.1] P=esmtp S=473
2026-11-23 03:08:50 1xVKN3-0004Lk-1l == victim@victim.test R=remote T=remote_smtp defer (111): Connection refused
";
        let t = tally(log, Mta::Exim, &r, &l, &[]);
        assert_eq!(t.groups.len(), 1, "a connection failure is no reply");
        assert_eq!(t.groups[0].receiver, "yahoo");
        assert_eq!(t.groups[0].outcome, Outcome::Deferred);
        assert_eq!(t.groups[0].cited, None);
    }

    #[test]
    fn citations_and_hosts() {
        let targets = [spec("192.0.2.0/29"), spec("example.com")];
        assert_eq!(
            cited_target("550 Client host [192.0.2.3] blocked", &targets),
            Some("192.0.2.3".into())
        );
        assert_eq!(
            cited_target("550 5.7.1 blocked 4.16.55.1 (192.0.2.9)", &targets),
            None
        );
        assert_eq!(
            cited_target("550 MailFrom domain example.com is listed", &targets),
            Some("example.com".into())
        );
        assert_eq!(cited_target("", &targets), None);
        let mk = |h: Option<&str>| DeliveryResult {
            queue_id: "A".into(),
            recipient: "x".into(),
            relay_host: h.map(str::to_string),
            relay_ip: None,
            dsn: None,
            status: DeliveryStatus::Bounced,
            reply: None,
            stage: None,
        };
        assert_eq!(
            host_receiver(&mk(Some("mx1.Example.co.uk."))),
            "example.co.uk"
        );
        assert_eq!(host_receiver(&mk(Some("mx.example.net"))), "example.net");
        assert_eq!(host_receiver(&mk(Some("127.0.0.1"))), "127.0.0.1");
        assert_eq!(host_receiver(&mk(None)), "unknown");
        assert_eq!(clean_text("a\nb\u{202e}c", 100), "a b c");
        assert_eq!(clean_text("ééé", 4), "éé");
    }
}
