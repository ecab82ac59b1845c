//! The vocabulary every stage shares: an [`Event`] is something that happened
//! (a listing, a list going bad, a mail spike, a probe result, a failed hook),
//! with its [`EventKind`], [`Severity`] and typed [`Subject`].
//!
//! A leaf module: the evaluator and the mail jobs create events, the store
//! keeps them, hooks and alerts act on them and the web shows them, so the
//! type belongs to none of those stages.

use serde::{Deserialize, Serialize};

crate::spelling::closed_set! {
    /// Kinds of events.
    #[derive(PartialOrd, Ord)]
    pub enum EventKind {
        /// A (target, list) listing was confirmed.
        Listed = "listed",
        /// A listing ended.
        Delisted = "delisted",
        /// A list stopped being healthy.
        ListUnhealthy = "list_unhealthy",
        /// A list is healthy again.
        ListRecovered = "list_recovered",
        /// Queue depth spike.
        QueueSpike = "queue_spike",
        /// Queue depth back to normal.
        QueueSpikeCleared = "queue_spike_cleared",
        /// NDR (bounce) volume spike.
        NdrSpike = "ndr_spike",
        /// NDR volume back to normal.
        NdrSpikeCleared = "ndr_spike_cleared",
        /// The SMTP probe found a server accepting mail for unknown recipients.
        RndrVulnerable = "rndr_vulnerable",
        /// The server rejects unknown recipients again.
        RndrVulnerableCleared = "rndr_vulnerable_cleared",
        /// A target's first sweep: one summary of what was already listed (silent).
        Baseline = "baseline",
        /// A remediation hook failed or timed out.
        HookFailed = "hook_failed",
        /// An alert channel failed: a message could not be rendered or delivered.
        AlertFailed = "alert_failed",
        /// The channel delivers again.
        AlertRecovered = "alert_recovered",
        /// A mail telemetry source failed to read.
        SourceFailed = "source_failed",
        /// The source reads again.
        SourceRecovered = "source_recovered",
        /// The resolver's answers cannot be believed (or there are none): nothing is checked.
        ResolverUnusable = "resolver_unusable",
        /// The resolver is usable again.
        ResolverRecovered = "resolver_recovered",
        /// A receiver (Outlook, Gmail…) rejects or defers our mail, for reasons
        /// about us, more than the threshold within the impact window.
        ReceiverRejecting = "receiver_rejecting",
        /// The receiver has stopped rejecting (none within the window).
        ReceiverRejectingCleared = "receiver_rejecting_cleared",
        /// A listing that receivers cite in their rejections (`impact: rejecting`).
        ListingRejecting = "listing_rejecting",
        /// No receiver cites the listing any more (or it ended).
        ListingRejectingCleared = "listing_rejecting_cleared",
        /// Listed on a backscatter list while the server produces backscatter
        /// (an NDR spike or a probe accepting unknown recipients).
        BackscatterSource = "backscatter_source",
        /// No sign of backscatter any more (the listing may remain until it expires).
        BackscatterSourceCleared = "backscatter_source_cleared",
        /// The MTA posture audit found a setting that causes backscatter or listings.
        AuditFinding = "audit_finding",
        /// The finding is gone (the setting was fixed).
        AuditFindingCleared = "audit_finding_cleared",
        /// Someone asked a list to remove a listing (recorded with who, when and a note).
        DelistRequested = "delist_requested",
        /// A requested delisting is still listed past the list's typical expiry.
        DelistOverdue = "delist_overdue",
        /// A list answered a code its catalog entry does not document (once per list and code).
        ListUnknownCode = "list_unknown_code",
        /// The database file was deleted or replaced under the running daemon:
        /// what it records from then on is not in the file.
        DatabaseLost = "database_lost",
        /// A receivers' feed (DMARC reports) cannot be read.
        FeedFailed = "feed_failed",
        /// The feed reads again.
        FeedRecovered = "feed_recovered",
        /// An IP sends mail for a monitored domain (DMARC aligned pass) and is not a target.
        UnmonitoredSender = "unmonitored_sender",
        /// Gmail's user-reported spam rate for a domain (Postmaster Tools) is at
        /// or over Google's 0.1 % (warning) or 0.3 % (critical).
        GmailSpamRate = "gmail_spam_rate",
        /// The domain's Gmail spam rate is under 0.1 % again.
        GmailSpamRateCleared = "gmail_spam_rate_cleared",
        /// One sending account (SASL login, local uid, relay client) sends far over its
        /// threshold: a leaked password, a hacked form (issue 23).
        AccountBurst = "account_burst",
        /// The account is calm again.
        AccountBurstCleared = "account_burst_cleared",
        /// A class of automated mail (bounce, autoreply, report, forward) floods out.
        AutomatedBurst = "automated_burst",
        /// The class is calm again.
        AutomatedBurstCleared = "automated_burst_cleared",
    }
}

impl EventKind {
    /// How bad it is. An audit finding carries its own severity (the event's
    /// `severity` field); this is its default.
    pub fn severity(self) -> Severity {
        match self {
            EventKind::Listed
            | EventKind::NdrSpike
            | EventKind::RndrVulnerable
            | EventKind::ReceiverRejecting
            | EventKind::ListingRejecting
            | EventKind::BackscatterSource
            | EventKind::DatabaseLost
            | EventKind::AccountBurst => Severity::Critical,
            EventKind::ListUnhealthy
            | EventKind::QueueSpike
            | EventKind::HookFailed
            | EventKind::AlertFailed
            | EventKind::SourceFailed
            | EventKind::ResolverUnusable
            | EventKind::AuditFinding
            | EventKind::DelistOverdue
            | EventKind::ListUnknownCode
            | EventKind::FeedFailed
            | EventKind::UnmonitoredSender
            | EventKind::GmailSpamRate
            | EventKind::AutomatedBurst => Severity::Warning,
            _ => Severity::Info,
        }
    }

    /// The raising kind a clearing kind ends (`delisted` ends `listed`…), if it is one.
    pub fn clears(self) -> Option<EventKind> {
        Some(match self {
            EventKind::Delisted => EventKind::Listed,
            EventKind::ListRecovered => EventKind::ListUnhealthy,
            EventKind::QueueSpikeCleared => EventKind::QueueSpike,
            EventKind::NdrSpikeCleared => EventKind::NdrSpike,
            EventKind::RndrVulnerableCleared => EventKind::RndrVulnerable,
            EventKind::AlertRecovered => EventKind::AlertFailed,
            EventKind::SourceRecovered => EventKind::SourceFailed,
            EventKind::FeedRecovered => EventKind::FeedFailed,
            EventKind::ResolverRecovered => EventKind::ResolverUnusable,
            EventKind::ReceiverRejectingCleared => EventKind::ReceiverRejecting,
            EventKind::ListingRejectingCleared => EventKind::ListingRejecting,
            EventKind::BackscatterSourceCleared => EventKind::BackscatterSource,
            EventKind::AuditFindingCleared => EventKind::AuditFinding,
            EventKind::GmailSpamRateCleared => EventKind::GmailSpamRate,
            EventKind::AccountBurstCleared => EventKind::AccountBurst,
            EventKind::AutomatedBurstCleared => EventKind::AutomatedBurst,
            _ => return None,
        })
    }
}

crate::spelling::closed_set! {
    /// Event severity.
    #[derive(PartialOrd, Ord)]
    pub enum Severity {
        /// Recoveries and other good news.
        Info = "info",
        /// Degraded monitoring, early signs.
        Warning = "warning",
        /// A listing, an attack, a vulnerability.
        Critical = "critical",
    }
}

/// What an event is about. Each kind of event has its own kind of subject, so
/// a page can link to the right place and a hook filter can match the right
/// field (a spike is about a metric, not a "target").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// A monitored target on one list (listings).
    Pair {
        /// IP or domain.
        target: String,
        /// List id.
        list: String,
    },
    /// One list (its health).
    List {
        /// List id.
        id: String,
    },
    /// A mail metric (spikes).
    Metric {
        /// Source name.
        source: String,
        /// Metric name within the source.
        metric: String,
    },
    /// A probed mail server (backscatter probe).
    Probe {
        /// `host:port`.
        server: String,
        /// The protected domain.
        domain: String,
    },
    /// A configured hook (its failures).
    Hook {
        /// Hook name.
        name: String,
    },
    /// An alert channel (its failures).
    Channel {
        /// Channel name.
        name: String,
    },
    /// A mail telemetry source (its failures).
    Source {
        /// Source name.
        name: String,
    },
    /// A receivers' feed (its failures).
    Feed {
        /// Feed name.
        name: String,
    },
    /// The resolver rblwatch asks (its diagnosis).
    Resolver {
        /// The name servers, e.g. `127.0.0.1:53`.
        servers: String,
    },
    /// A mail receiver that answers our deliveries (Outlook, Gmail…).
    Receiver {
        /// Receiver id from the reply catalog (`microsoft`), or the answering
        /// relay's domain when no receiver of the catalog matches it.
        id: String,
    },
    /// One monitored target as a whole (a backscatter source).
    Target {
        /// IP or domain.
        target: String,
    },
    /// One finding of an MTA posture audit.
    Audit {
        /// Audit name.
        name: String,
        /// The check (`postfix-unlisted-recipient`…).
        check: String,
    },
    /// One sending account of the outbound ledger (bursts).
    Account {
        /// The log source.
        source: String,
        /// `sasl`, `local` or `relay`.
        origin: String,
        /// The SASL login, local uid or relay client IP (attacker-influenced text: data only).
        account: String,
    },
    /// One class of automated outbound mail (bursts).
    SenderClass {
        /// The log source.
        source: String,
        /// `bounce`, `autoreply`, `report`, `forward`.
        class: String,
    },
    /// Nothing in particular (the baseline summary).
    #[default]
    None,
}

impl Subject {
    /// A pair subject.
    pub fn pair(target: impl Into<String>, list: impl Into<String>) -> Self {
        Subject::Pair {
            target: target.into(),
            list: list.into(),
        }
    }

    /// The kind's name (`pair`, `list`, `metric`, `probe`, `hook`, `receiver`, `audit`, `none`…).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Subject::Pair { .. } => "pair",
            Subject::List { .. } => "list",
            Subject::Metric { .. } => "metric",
            Subject::Probe { .. } => "probe",
            Subject::Hook { .. } => "hook",
            Subject::Channel { .. } => "channel",
            Subject::Source { .. } => "source",
            Subject::Feed { .. } => "feed",
            Subject::Resolver { .. } => "resolver",
            Subject::Receiver { .. } => "receiver",
            Subject::Target { .. } => "target",
            Subject::Audit { .. } => "audit",
            Subject::Account { .. } => "account",
            Subject::SenderClass { .. } => "sender_class",
            Subject::None => "none",
        }
    }

    /// The monitored target, for a pair or a target.
    pub fn target(&self) -> Option<&str> {
        match self {
            Subject::Pair { target, .. } | Subject::Target { target } => Some(target),
            _ => None,
        }
    }

    /// The list id, for a pair or a list.
    pub fn list(&self) -> Option<&str> {
        match self {
            Subject::Pair { list, .. } | Subject::List { id: list } => Some(list),
            _ => None,
        }
    }

    /// What a hook's `targets = [...]` filter matches: a pair's or target's target, a probe's domain.
    pub fn filter_target(&self) -> Option<&str> {
        match self {
            Subject::Pair { target, .. } | Subject::Target { target } => Some(target),
            Subject::Probe { domain, .. } => Some(domain),
            _ => None,
        }
    }

    /// What a hook's `lists = [...]` filter matches: a list id, a metric's source, a probe's
    /// server, a receiver's id, an audit's name.
    pub fn filter_scope(&self) -> Option<&str> {
        match self {
            Subject::Pair { list, .. } | Subject::List { id: list } => Some(list),
            Subject::Metric { source, .. } => Some(source),
            Subject::Probe { server, .. } => Some(server),
            Subject::Resolver { servers } => Some(servers),
            Subject::Hook { name }
            | Subject::Channel { name }
            | Subject::Source { name }
            | Subject::Feed { name }
            | Subject::Audit { name, .. } => Some(name),
            Subject::Receiver { id } => Some(id),
            Subject::Account { source, .. } | Subject::SenderClass { source, .. } => Some(source),
            Subject::Target { .. } | Subject::None => None,
        }
    }

    /// A stable key naming the subject, e.g. `pair:192.0.2.1:zen` (conditions, dedup).
    pub fn key(&self) -> String {
        match self {
            Subject::Pair { target, list } => format!("pair:{target}:{list}"),
            Subject::List { id } => format!("list:{id}"),
            Subject::Metric { source, metric } => format!("metric:{source}.{metric}"),
            Subject::Probe { server, domain } => format!("probe:{domain}:{server}"),
            Subject::Hook { name } => format!("hook:{name}"),
            Subject::Channel { name } => format!("channel:{name}"),
            Subject::Source { name } => format!("source:{name}"),
            Subject::Feed { name } => format!("feed:{name}"),
            Subject::Resolver { servers } => format!("resolver:{servers}"),
            Subject::Receiver { id } => format!("receiver:{id}"),
            Subject::Target { target } => format!("target:{target}"),
            Subject::Audit { name, check } => format!("audit:{name}:{check}"),
            Subject::Account {
                source,
                origin,
                account,
            } => format!("account:{source}:{origin}:{account}"),
            Subject::SenderClass { source, class } => format!("sender_class:{source}:{class}"),
            Subject::None => "none".into(),
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Pair { target, list } => write!(f, "{target} on {list}"),
            Subject::List { id } => write!(f, "list {id}"),
            Subject::Metric { source, metric } => write!(f, "{source}.{metric}"),
            Subject::Probe { server, domain } => write!(f, "{domain} at {server}"),
            Subject::Hook { name } => write!(f, "hook {name}"),
            Subject::Channel { name } => write!(f, "alert channel {name}"),
            Subject::Source { name } => write!(f, "source {name}"),
            Subject::Feed { name } => write!(f, "feed {name}"),
            Subject::Resolver { servers } => write!(f, "resolver {servers}"),
            Subject::Receiver { id } => write!(f, "receiver {id}"),
            Subject::Target { target } => f.write_str(target),
            Subject::Audit { name, check } => write!(f, "audit {name}: {check}"),
            Subject::Account {
                origin, account, ..
            } => write!(f, "{origin} account {account:?}"),
            Subject::SenderClass { class, .. } => write!(f, "{class} mail"),
            Subject::None => Ok(()),
        }
    }
}

/// Something that happened, as stored and handed to hooks, alerts and the web.
///
/// As JSON (hooks' stdin, the API, webhook templates) it also carries `target`
/// and `list` when the subject has them, so a hook can read `.target` without
/// knowing the subject kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "EventJson", from = "EventJson")]
pub struct Event {
    /// Database id (0 until stored).
    pub id: i64,
    /// What happened.
    pub kind: EventKind,
    /// Unix time (seconds).
    pub at: i64,
    /// What it is about.
    pub subject: Subject,
    /// How bad.
    pub severity: Severity,
    /// True for the silent baseline of a target's first sweep.
    pub baseline: bool,
    /// One human line. May quote remote text: escape when rendering.
    pub summary: String,
    /// Details (codes, meanings, TXT, delist link, figures…).
    pub details: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct EventJson {
    id: i64,
    kind: EventKind,
    at: i64,
    #[serde(default)]
    subject: Subject,
    #[serde(default, skip_deserializing)]
    target: Option<String>,
    #[serde(default, skip_deserializing)]
    list: Option<String>,
    severity: Severity,
    #[serde(default)]
    baseline: bool,
    summary: String,
    #[serde(default)]
    details: serde_json::Value,
}

impl From<Event> for EventJson {
    fn from(e: Event) -> Self {
        EventJson {
            target: e.subject.target().map(str::to_string),
            list: e.subject.list().map(str::to_string),
            id: e.id,
            kind: e.kind,
            at: e.at,
            subject: e.subject,
            severity: e.severity,
            baseline: e.baseline,
            summary: e.summary,
            details: e.details,
        }
    }
}

impl From<EventJson> for Event {
    fn from(j: EventJson) -> Self {
        Event {
            id: j.id,
            kind: j.kind,
            at: j.at,
            subject: j.subject,
            severity: j.severity,
            baseline: j.baseline,
            summary: j.summary,
            details: j.details,
        }
    }
}

/// Listing details carried by `listed`/`delisted` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ListingDetails {
    /// A records.
    pub codes: Vec<std::net::Ipv4Addr>,
    /// Meanings of the codes.
    pub meanings: Vec<String>,
    /// TXT reasons (untrusted).
    pub txt: Vec<String>,
    /// Delisting link.
    pub delist: Option<String>,
    /// List zone as shown (the display form: a key is `<key>`, never the key itself).
    pub zone: String,
    /// List name.
    pub list_name: String,
}

impl Event {
    /// A sample event of `kind`, as the daemon would produce it (for `hooks test`
    /// and for checking alert templates against every kind).
    ///
    /// Long by design: one arm per event kind, a table kept in one place so
    /// that a new kind cannot be added without its sample (the match is
    /// exhaustive), rather than split into functions that would hide that.
    pub fn sample(kind: EventKind) -> Event {
        let (subject, details) = match kind {
            EventKind::Listed | EventKind::Delisted => (
                Subject::pair("192.0.2.1", "spamhaus-zen"),
                serde_json::json!({"codes": ["127.0.0.2"], "meanings": ["SBL: Spamhaus Block List"], "txt": ["sample TXT reason"], "delist": "https://check.spamhaus.org/results/?query=192.0.2.1"}),
            ),
            EventKind::DelistRequested | EventKind::DelistOverdue => (
                Subject::pair("192.0.2.1", "spamcop"),
                serde_json::json!({"by": "postmaster", "via": "web", "note": "sample note", "requested_at": 0, "expected_by": 86_400, "expiry": "24h", "delist": "https://www.spamcop.net/bl.shtml?192.0.2.1"}),
            ),
            EventKind::ListUnhealthy | EventKind::ListRecovered => (
                Subject::List {
                    id: "spamhaus-zen".into(),
                },
                serde_json::json!({"health": {"health": "blocked", "why": "sample"}}),
            ),
            EventKind::ListUnknownCode => (
                Subject::List {
                    id: "spamhaus-zen".into(),
                },
                serde_json::json!({"code": "127.0.0.77", "list_name": "Spamhaus ZEN", "strict": true}),
            ),
            EventKind::AccountBurst | EventKind::AccountBurstCleared => (
                Subject::Account {
                    source: "mxlog".into(),
                    origin: "sasl".into(),
                    account: "alice@example.com".into(),
                },
                serde_json::json!({"source": "mxlog", "origin": "sasl", "account": "alice@example.com", "messages": 500, "recipients": 480, "refusals": 40, "triggers": ["500 messages in 600s (threshold 300)"], "refused_by": [{"receiver": "google", "count": 40, "reply": "550-5.7.1 ... likely unsolicited mail"}], "release": "postsuper -H ..."}),
            ),
            EventKind::AutomatedBurst | EventKind::AutomatedBurstCleared => (
                Subject::SenderClass {
                    source: "mxlog".into(),
                    class: "report".into(),
                },
                serde_json::json!({"source": "mxlog", "class": "report", "messages": 400, "threshold": 300, "top_destinations": [{"domain": "example.net", "count": 390}]}),
            ),
            EventKind::NdrSpike
            | EventKind::NdrSpikeCleared
            | EventKind::QueueSpike
            | EventKind::QueueSpikeCleared => (
                Subject::Metric {
                    source: "mx".into(),
                    metric: "ndr_generated".into(),
                },
                serde_json::json!({"figures": {"value": 50.0, "previous": 0.0, "median_24h": 1.0, "triggers": ["sample"]}}),
            ),
            EventKind::RndrVulnerable | EventKind::RndrVulnerableCleared => (
                Subject::Probe {
                    server: "127.0.0.1:25".into(),
                    domain: "example.com".into(),
                },
                serde_json::json!({}),
            ),
            EventKind::HookFailed => (
                Subject::Hook {
                    name: "sample".into(),
                },
                serde_json::json!({}),
            ),
            EventKind::AlertFailed | EventKind::AlertRecovered => (
                Subject::Channel {
                    name: "sample".into(),
                },
                serde_json::json!({"why": "sample"}),
            ),
            EventKind::SourceFailed | EventKind::SourceRecovered => (
                Subject::Source { name: "mx".into() },
                serde_json::json!({"why": "sample"}),
            ),
            EventKind::ResolverUnusable | EventKind::ResolverRecovered => (
                Subject::Resolver {
                    servers: "127.0.0.1:53".into(),
                },
                serde_json::json!({"status": "unusable", "why": "sample", "fix": "sample"}),
            ),
            EventKind::ReceiverRejecting | EventKind::ReceiverRejectingCleared => (
                Subject::Receiver {
                    id: "microsoft".into(),
                },
                serde_json::json!({
                    "receiver": "microsoft", "name": "Microsoft (Outlook.com, Hotmail, Live, Microsoft 365)",
                    "sender_page": "https://sender.office.com/", "window_secs": 3600,
                    "counts": {"rejected": 3, "deferred": 1},
                    "impact": {"verdict": "own-data", "text": "Microsoft rejects mail for ip-reputation (microsoft-s3150); no monitored list lists you"},
                    "replies": [{"text": "550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). <sample>", "count": 3, "outcome": "rejected", "meaning": "ip-reputation", "rule": "microsoft-s3150", "list": null, "relay": "outlook-com.olc.protection.outlook.com", "queue_ids": ["4F1A2B3C4D"]}],
                    "queue_ids": ["4F1A2B3C4D"],
                }),
            ),
            EventKind::ListingRejecting | EventKind::ListingRejectingCleared => (
                Subject::pair("192.0.2.1", "spamhaus-zen"),
                serde_json::json!({
                    "impact": {"state": "rejecting", "text": "Microsoft refuses mail citing spamhaus-zen (3 in the last 1h)"},
                    "receivers": ["microsoft"], "count": 3, "delist": "https://check.spamhaus.org/results/?query=192.0.2.1",
                    "replies": [{"text": "550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Spamhaus.", "count": 3, "outcome": "rejected", "meaning": "ip-blocklist", "rule": "microsoft-spamhaus", "list": "spamhaus-zen", "relay": "mx.example.net", "queue_ids": []}],
                }),
            ),
            EventKind::BackscatterSource | EventKind::BackscatterSourceCleared => (
                Subject::Target {
                    target: "192.0.2.1".into(),
                },
                serde_json::json!({
                    "diagnosis": "192.0.2.1 is listed on Backscatterer.org because this server sends bounces to forged senders: it accepts mail for unknown recipients and bounces it later.",
                    "remediation": ["reject unknown recipients at RCPT (hook strict-recipients)"],
                    "delist": "https://www.backscatterer.org/?ip=192.0.2.1",
                }),
            ),
            EventKind::AuditFinding | EventKind::AuditFindingCleared => (
                Subject::Audit {
                    name: "postfix".into(),
                    check: "postfix-unlisted-recipient".into(),
                },
                serde_json::json!({
                    "title": "unknown recipients are accepted", "why": "sample", "fix": "postconf -e 'smtpd_reject_unlisted_recipient = yes' && postfix reload",
                    "evidence": "smtpd_reject_unlisted_recipient = no",
                }),
            ),
            EventKind::FeedFailed | EventKind::FeedRecovered => (
                Subject::Feed {
                    name: "dmarc".into(),
                },
                serde_json::json!({"feed": "dmarc", "why": "sample"}),
            ),
            EventKind::UnmonitoredSender => (
                Subject::Target {
                    target: "198.51.100.77".into(),
                },
                serde_json::json!({
                    "ip": "198.51.100.77", "domain": "example.com", "messages": 40, "passed": 40,
                    "orgs": ["google.com"], "origin": "dmarc", "discovered": false,
                }),
            ),
            EventKind::GmailSpamRate | EventKind::GmailSpamRateCleared => (
                Subject::Target {
                    target: "example.com".into(),
                },
                serde_json::json!({
                    "domain": "example.com", "feed": "google_postmaster", "level": "critical",
                    "rate": 0.0042, "percent": "0.42 %", "day": "2026-12-04",
                    "warn": 0.001, "critical": 0.003,
                }),
            ),
            EventKind::Baseline => (Subject::None, serde_json::json!({})),
            EventKind::DatabaseLost => (
                Subject::None,
                serde_json::json!({"path": "/var/lib/rblwatch/rblwatch.db", "why": "deleted", "rescued": "/var/lib/rblwatch/rblwatch.db.rescued-0"}),
            ),
        };
        Event::new(
            kind,
            crate::time::now(),
            subject,
            format!("sample {} event (rblwatch hooks test)", kind.as_str()),
            details,
        )
    }

    /// A new event of `kind` about `subject` at `at`.
    pub fn new(
        kind: EventKind,
        at: i64,
        subject: Subject,
        summary: String,
        details: serde_json::Value,
    ) -> Self {
        Event {
            id: 0,
            kind,
            at,
            subject,
            severity: kind.severity(),
            baseline: false,
            summary,
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            let json = serde_json::to_value(k).unwrap();
            assert_eq!(json.as_str(), Some(k.as_str()));
        }
        assert_eq!(EventKind::parse("ndr_spike"), Some(EventKind::NdrSpike));
        assert_eq!(EventKind::parse("nope"), None);
    }

    #[test]
    fn impact_kinds_pair_up_and_their_subjects_round_trip() {
        for (raise, clear) in [
            (
                EventKind::ReceiverRejecting,
                EventKind::ReceiverRejectingCleared,
            ),
            (
                EventKind::ListingRejecting,
                EventKind::ListingRejectingCleared,
            ),
            (
                EventKind::BackscatterSource,
                EventKind::BackscatterSourceCleared,
            ),
            (EventKind::AuditFinding, EventKind::AuditFindingCleared),
        ] {
            assert_eq!(clear.clears(), Some(raise));
            assert_eq!(raise.clears(), None);
            assert!(raise.severity() > Severity::Info && clear.severity() == Severity::Info);
            for k in [raise, clear] {
                let e = Event::sample(k);
                let back: Event =
                    serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
                assert_eq!(back, e, "{k}");
            }
        }
        let t = Event::sample(EventKind::BackscatterSource);
        assert_eq!(serde_json::to_value(&t).unwrap()["target"], "192.0.2.1");
        let a = Subject::Audit {
            name: "mx".into(),
            check: "postfix-open-relay".into(),
        };
        assert_eq!(a.key(), "audit:mx:postfix-open-relay");
        assert_eq!(a.filter_scope(), Some("mx"));
        assert_eq!(
            Subject::Receiver {
                id: "google".into()
            }
            .to_string(),
            "receiver google"
        );
    }

    #[test]
    fn json_carries_subject_and_plain_fields() {
        let e = Event::new(
            EventKind::Listed,
            5,
            Subject::pair("192.0.2.1", "zen"),
            "x".into(),
            serde_json::json!({}),
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["subject"]["kind"], "pair");
        assert_eq!(v["target"], "192.0.2.1");
        assert_eq!(v["list"], "zen");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        let m = Event::new(
            EventKind::NdrSpike,
            5,
            Subject::Metric {
                source: "mx".into(),
                metric: "ndr_generated".into(),
            },
            "x".into(),
            serde_json::json!({}),
        );
        let v = serde_json::to_value(&m).unwrap();
        assert!(v["target"].is_null(), "a metric is not a target: {v}");
        assert_eq!(m.subject.filter_scope(), Some("mx"));
    }
}
