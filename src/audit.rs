//! The MTA posture audit (read-only): the settings that make a mail server a
//! backscatter source or an open relay, or that slow the recovery from a
//! listing.
//!
//! Pure parsers of `postconf -x` output ([`parse_postconf`]) and of `exim
//! -bP` / `exim -bP config` output ([`parse_exim_options`], [`exim_acl`])
//! feed pure checks ([`check_postfix`], [`check_exim`]); each [`Finding`]
//! says how bad it is, why it matters and the exact fix. The commands run at
//! the edge ([`run`]) through [`crate::process`] with a timeout, a cleared
//! environment and argv only (the configured command plus our arguments);
//! nothing is ever changed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{AuditConf, AuditMta};
use crate::event::Severity;

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id of the check (`postfix-unlisted-recipient`…).
    pub check: String,
    /// How bad.
    pub severity: Severity,
    /// What is wrong, in a few words.
    pub title: String,
    /// Why it matters.
    pub why: String,
    /// The exact fix.
    pub fix: String,
    /// The setting(s) seen.
    pub evidence: String,
    /// It makes the server a backscatter source.
    pub backscatter: bool,
}

/// One audit's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The audit's name.
    pub name: String,
    /// Which MTA.
    pub mta: AuditMta,
    /// The command, as configured.
    pub command: Vec<String>,
    /// False when the settings could not be read (see `error`).
    pub ok: bool,
    /// Why the settings could not be read.
    pub error: Option<String>,
    /// The MTA's version, when it says.
    pub version: Option<String>,
    /// The checks that ran.
    pub checks: Vec<String>,
    /// What they found, worst first.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// Findings of at least `min` severity.
    pub fn count_at_least(&self, min: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity >= min).count()
    }
}

/// `name = value` lines (`postconf`, `exim -bP`) into a map; Exim's boolean
/// lines `name` / `no_name` become `name = true` / `name = false` (pure).
pub fn parse_postconf(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') || line.starts_with(char::is_whitespace) {
            continue;
        }
        match line
            .split_once(" = ")
            .or_else(|| line.strip_suffix(" =").map(|k| (k, "")))
        {
            Some((k, v)) => {
                m.insert(k.trim().to_string(), v.trim().to_string());
            }
            None => {
                let w = line.trim();
                if !w.is_empty() && !w.contains(char::is_whitespace) {
                    match w.strip_prefix("no_") {
                        Some(k) => m.insert(k.to_string(), "false".into()),
                        None => m.insert(w.to_string(), "true".into()),
                    };
                }
            }
        }
    }
    m
}

/// `exim -bP` output (the main options).
pub fn parse_exim_options(text: &str) -> BTreeMap<String, String> {
    parse_postconf(text)
}

/// A Postfix list value (`a, b c`) as items.
fn items(v: &str) -> Vec<&str> {
    v.split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .collect()
}

/// A Postfix or Exim time (`5d`, `10w`, `300s`, `3600`; a bare number is in
/// `unit` seconds) in seconds.
pub fn parse_time(v: &str, unit: u64) -> Option<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, rest) = v.split_at(split);
    let mut total: u64 = n.parse().ok()?;
    let mult = match rest {
        "" => unit,
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            // Exim also accepts combinations such as 1d12h
            let mut secs = 0u64;
            let mut num = String::new();
            for c in v.chars() {
                if c.is_ascii_digit() {
                    num.push(c);
                } else {
                    let k = num.parse::<u64>().ok()?;
                    num.clear();
                    secs += k * match c {
                        's' => 1,
                        'm' => 60,
                        'h' => 3600,
                        'd' => 86_400,
                        'w' => 604_800,
                        _ => return None,
                    };
                }
            }
            return num.is_empty().then_some(secs);
        }
    };
    total = total.saturating_mul(mult);
    Some(total)
}

/// The `-c DIR` of a postconf command, for fixes that name the same instance.
fn postfix_dir(command: &[String]) -> Option<&str> {
    command
        .windows(2)
        .find(|w| w[0] == "-c")
        .map(|w| w[1].as_str())
}

fn postconf_fix(command: &[String], settings: &[&str]) -> String {
    let c = postfix_dir(command)
        .map(|d| format!(" -c {d}"))
        .unwrap_or_default();
    let set: Vec<String> = settings.iter().map(|s| format!("'{s}'")).collect();
    format!("postconf{c} -e {} && postfix{c} reload", set.join(" "))
}

/// Whether a restriction list closes relaying: `reject_unauth_destination`
/// (or `defer_unauth_destination`, `reject`, `defer`) before any bare `permit`.
fn closes_relay(list: &str) -> bool {
    for r in items(list) {
        match r {
            "reject_unauth_destination" | "defer_unauth_destination" | "reject" | "defer" => {
                return true
            }
            "permit" => return false,
            _ => {}
        }
    }
    false
}

/// The checks on a Postfix's settings (`postconf -x`, pure). `command` is the
/// configured postconf command (its `-c DIR` goes into the fixes).
pub fn check_postfix(
    p: &BTreeMap<String, String>,
    command: &[String],
) -> (Vec<String>, Vec<Finding>) {
    let mut a = PostfixAudit {
        p,
        command,
        checks: Vec::new(),
        found: Vec::new(),
    };
    postfix_recipient_checks(&mut a);
    postfix_relay_checks(&mut a);
    postfix_bounce_checks(&mut a);
    postfix_header_checks(&mut a);
    (a.checks, sorted(a.found))
}

/// One pass over a Postfix's settings: what was checked and what was found,
/// with the settings and the fix's command at hand for every check group.
struct PostfixAudit<'a> {
    p: &'a BTreeMap<String, String>,
    command: &'a [String],
    checks: Vec<String>,
    found: Vec<Finding>,
}

impl PostfixAudit<'_> {
    /// A setting's value as `postconf -x` printed it ("" when absent).
    fn get(&self, key: &str) -> &str {
        self.p.get(key).map(String::as_str).unwrap_or("")
    }

    /// Records that check `id` ran, found or not.
    fn check(&mut self, id: &str) {
        self.checks.push(id.to_string());
    }

    fn fix(&self, settings: &[&str]) -> String {
        postconf_fix(self.command, settings)
    }
}

/// Postfix recipient checks: unknown recipients refused at RCPT time, local
/// and relay recipient maps present (each missing one is a backscatter source).
fn postfix_recipient_checks(a: &mut PostfixAudit) {
    a.check("postfix-unlisted-recipient");
    if a.get("smtpd_reject_unlisted_recipient") == "no" {
        a.found.push(Finding {
            check: "postfix-unlisted-recipient".into(),
            severity: Severity::Critical,
            title: "mail for unknown recipients is accepted".into(),
            why: "Postfix accepts RCPT TO for addresses that do not exist and bounces the mail afterwards, to the (forged) sender: a backscatter source, which lists like Backscatterer.org and SEM-BACKSCATTER list, and a queue full of undeliverable bounces.".into(),
            fix: a.fix(&["smtpd_reject_unlisted_recipient = yes"]),
            evidence: "smtpd_reject_unlisted_recipient = no".into(),
            backscatter: true,
        });
    }
    a.check("postfix-local-recipient-maps");
    let local_domains = !items(a.get("mydestination")).is_empty();
    if local_domains && a.get("local_recipient_maps").trim().is_empty() {
        a.found.push(Finding {
            check: "postfix-local-recipient-maps".into(),
            severity: Severity::Critical,
            title: "local recipients are not checked (local_recipient_maps is empty)".into(),
            why: "With an empty local_recipient_maps Postfix cannot tell which local users exist, so it accepts mail for any address in mydestination and bounces it later: a backscatter source, even with smtpd_reject_unlisted_recipient = yes.".into(),
            fix: a.fix(&["local_recipient_maps = proxy:unix:passwd.byname $alias_maps"]),
            evidence: format!("local_recipient_maps = (empty); mydestination = {}", a.get("mydestination")),
            backscatter: true,
        });
    }
    a.check("postfix-relay-recipient-maps");
    let mydest = items(a.get("mydestination"));
    let relay_only: Vec<&str> = items(a.get("relay_domains"))
        .into_iter()
        .filter(|d| !mydest.contains(d))
        .collect();
    if !relay_only.is_empty() && a.get("relay_recipient_maps").trim().is_empty() {
        a.found.push(Finding {
            check: "postfix-relay-recipient-maps".into(),
            severity: Severity::Critical,
            title: "recipients of relay domains are not checked".into(),
            why: "Postfix relays for these domains but has no relay_recipient_maps, so it accepts mail for any address in them and bounces what the next hop refuses: a backscatter source.".into(),
            fix: format!("list the valid addresses in a map (e.g. hash:/etc/postfix/relay_recipients, postmap it), then: {}", a.fix(&["relay_recipient_maps = hash:/etc/postfix/relay_recipients"])),
            evidence: format!("relay_domains = {}; relay_recipient_maps = (empty)", relay_only.join(", ")),
            backscatter: true,
        });
    }
}

/// Postfix relay checks: relaying closed to unauthorised destinations and
/// mynetworks not trusting the whole Internet.
fn postfix_relay_checks(a: &mut PostfixAudit) {
    a.check("postfix-open-relay");
    let relay = a.get("smtpd_relay_restrictions");
    let rcpt = a.get("smtpd_recipient_restrictions");
    if !closes_relay(relay) && !closes_relay(rcpt) {
        a.found.push(Finding {
            check: "postfix-open-relay".into(),
            severity: Severity::Critical,
            title: "open relay: no restriction refuses unauthorised destinations".into(),
            why: "Neither smtpd_relay_restrictions nor smtpd_recipient_restrictions reaches reject_unauth_destination before a permit, so anyone can send mail to anywhere through this server: it will be listed everywhere within hours.".into(),
            fix: a.fix(&["smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"]),
            evidence: format!("smtpd_relay_restrictions = {relay}; smtpd_recipient_restrictions = {rcpt}"),
            backscatter: false,
        });
    }
    a.check("postfix-mynetworks");
    let wide: Vec<&str> = items(a.get("mynetworks"))
        .into_iter()
        .filter(|n| {
            let n = n.trim_start_matches('[').replace("]/", "/");
            match n.split_once('/') {
                Some((addr, len)) => {
                    let len: u32 = len.parse().unwrap_or(32);
                    match addr.parse::<std::net::IpAddr>() {
                        Ok(std::net::IpAddr::V4(_)) => len < 8,
                        Ok(std::net::IpAddr::V6(_)) => len < 16,
                        Err(_) => false,
                    }
                }
                None => false,
            }
        })
        .collect();
    if !wide.is_empty() {
        a.found.push(Finding {
            check: "postfix-mynetworks".into(),
            severity: Severity::Critical,
            title: "mynetworks trusts (almost) the whole Internet".into(),
            why: "Clients in mynetworks may relay (permit_mynetworks): a network this wide makes the server an open relay.".into(),
            fix: a.fix(&["mynetworks = 127.0.0.0/8 [::1]/128"]),
            evidence: format!("mynetworks = {}", a.get("mynetworks")),
            backscatter: false,
        });
    }
}

/// Postfix bounce hygiene: soft_bounce off, HELO required, no bounce copies
/// to the postmaster, bounces not queued for days.
fn postfix_bounce_checks(a: &mut PostfixAudit) {
    a.check("postfix-soft-bounce");
    if a.get("soft_bounce") == "yes" {
        a.found.push(Finding {
            check: "postfix-soft-bounce".into(),
            severity: Severity::Warning,
            title: "soft_bounce is on".into(),
            why: "Every bounce becomes a deferral and 5xx replies become 4xx: meant as a temporary safety net; left on, undeliverable mail piles up in the queue and bounces all at once when it is turned off.".into(),
            fix: format!("delete the queued mail to forged senders first, then: {}", a.fix(&["soft_bounce = no"])),
            evidence: "soft_bounce = yes".into(),
            backscatter: false,
        });
    }
    a.check("postfix-helo-required");
    if a.get("smtpd_helo_required") == "no" {
        a.found.push(Finding {
            check: "postfix-helo-required".into(),
            severity: Severity::Info,
            title: "clients may skip HELO/EHLO".into(),
            why: "Spam bots often skip the greeting; requiring it (with reject_invalid_helo_hostname) turns away some of the abuse that ends in bounces.".into(),
            fix: a.fix(&["smtpd_helo_required = yes"]),
            evidence: "smtpd_helo_required = no".into(),
            backscatter: false,
        });
    }
    a.check("postfix-notify-bounce");
    let notify = items(a.get("notify_classes"));
    if notify.iter().any(|c| *c == "bounce" || *c == "2bounce") {
        a.found.push(Finding {
            check: "postfix-notify-bounce".into(),
            severity: Severity::Info,
            title: "the postmaster gets a copy of every bounce".into(),
            why: "With bounce (or 2bounce) in notify_classes every bounce produces a second message; under a backscatter attack that doubles the mail the attack makes.".into(),
            fix: a.fix(&["notify_classes = resource, software"]),
            evidence: format!("notify_classes = {}", a.get("notify_classes")),
            backscatter: false,
        });
    }
    a.check("postfix-bounce-queue-lifetime");
    if let Some(secs) = parse_time(a.get("bounce_queue_lifetime"), 86_400) {
        if secs > 2 * 86_400 {
            a.found.push(Finding {
                check: "postfix-bounce-queue-lifetime".into(),
                severity: Severity::Info,
                title: "undeliverable bounces stay queued for days".into(),
                why: "Bounces to forged senders mostly cannot be delivered; Postfix retries them for bounce_queue_lifetime, so an attack keeps the queue full long after it ends. A day is plenty.".into(),
                fix: a.fix(&["bounce_queue_lifetime = 1d"]),
                evidence: format!("bounce_queue_lifetime = {}", a.get("bounce_queue_lifetime")),
                backscatter: false,
            });
        }
    }
}

/// The outbound ledger's header logging (issue 23): without the shipped
/// `header_checks` table autoreplies and reports look like user mail.
fn postfix_header_checks(a: &mut PostfixAudit) {
    a.check("postfix-header-log");
    let current = a.get("header_checks");
    if !current.contains("rblwatch-header-log") {
        let value = if current.is_empty() {
            "header_checks = regexp:/etc/postfix/rblwatch-header-log.regexp".to_string()
        } else {
            format!("header_checks = {current}, regexp:/etc/postfix/rblwatch-header-log.regexp")
        };
        a.found.push(Finding {
            check: "postfix-header-log".into(),
            severity: Severity::Info,
            title: "the outbound ledger cannot see Auto-Submitted, Precedence or report headers".into(),
            why: "rblwatch tells autoreplies and DMARC/TLS reports from user mail by headers that only header_checks can log; without the shipped WARN rules they count as user mail and a report or autoreply storm is seen as one account's burst, not as automated mail.".into(),
            fix: format!("install -m 644 contrib/postfix-header-log.regexp /etc/postfix/rblwatch-header-log.regexp && {}", a.fix(&[&value])),
            evidence: format!("header_checks = {current}"),
            backscatter: false,
        });
    }
}

fn sorted(mut f: Vec<Finding>) -> Vec<Finding> {
    f.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.check.cmp(&b.check)));
    f
}

/// One statement of an Exim ACL: its verb and its conditions/modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclStatement {
    /// accept, deny, require, drop, defer, discard, warn.
    pub verb: String,
    /// `name = value` conditions and modifiers, in order.
    pub conditions: Vec<String>,
}

const VERBS: &[&str] = &[
    "accept", "defer", "deny", "discard", "drop", "require", "warn",
];

/// The statements of the ACL `name` in `exim -bP config` output (pure);
/// `None` when the configuration has no such ACL.
pub fn exim_acl(config: &str, name: &str) -> Option<Vec<AclStatement>> {
    let mut in_acl_section = false;
    let mut current: Option<Vec<AclStatement>> = None;
    for raw in config.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix("begin ") {
            if current.is_some() {
                return current;
            }
            in_acl_section = section.trim() == "acl";
            continue;
        }
        if !in_acl_section {
            continue;
        }
        if let Some(acl) = line
            .strip_suffix(':')
            .filter(|s| !s.contains(char::is_whitespace))
        {
            if current.is_some() {
                return current;
            }
            if acl == name {
                current = Some(Vec::new());
            }
            continue;
        }
        let Some(stmts) = current.as_mut() else {
            continue;
        };
        let first = line.split_whitespace().next().unwrap_or("");
        if VERBS.contains(&first) {
            let rest = line[first.len()..].trim();
            stmts.push(AclStatement {
                verb: first.to_string(),
                conditions: if rest.is_empty() {
                    vec![]
                } else {
                    vec![rest.to_string()]
                },
            });
        } else if let Some(s) = stmts.last_mut() {
            s.conditions.push(line.to_string());
        }
    }
    current
}

fn is_modifier(c: &str) -> bool {
    let k = c.split('=').next().unwrap_or("").trim();
    matches!(
        k,
        "message"
            | "log_message"
            | "logwrite"
            | "control"
            | "set"
            | "add_header"
            | "remove_header"
            | "delay"
            | "endpass"
    ) || c.trim() == "endpass"
}

/// The checks on an Exim's settings (pure): `options` from `exim -bP`,
/// `config` from `exim -bP config`.
pub fn check_exim(options: &BTreeMap<String, String>, config: &str) -> (Vec<String>, Vec<Finding>) {
    let mut checks = vec![
        "exim-rcpt-verify".to_string(),
        "exim-open-relay".to_string(),
    ];
    let mut f = Vec::new();
    let acl_name = options
        .get("acl_smtp_rcpt")
        .map(String::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    let stmts = if acl_name.is_empty() {
        None
    } else {
        exim_acl(config, &acl_name)
    };
    if let Some(stmts) = &stmts {
        let verifies = stmts.iter().any(|s| {
            s.conditions.iter().any(|c| {
                let c: String = c.chars().filter(|ch| !ch.is_whitespace()).collect();
                c.contains("verify=recipient")
            })
        });
        let accepts_local = stmts.iter().any(|s| {
            s.verb == "accept"
                && s.conditions.iter().any(|c| {
                    let c: String = c.chars().filter(|ch| !ch.is_whitespace()).collect();
                    c.starts_with("domains=")
                })
        });
        if !verifies && accepts_local {
            f.push(Finding {
                check: "exim-rcpt-verify".into(),
                severity: Severity::Critical,
                title: "the RCPT ACL accepts local recipients without verifying them".into(),
                why: "Exim accepts RCPT TO for local addresses that do not exist and bounces the mail afterwards, to the (forged) sender: a backscatter source, and a queue full of frozen bounces (Exim wiki Q0744).".into(),
                fix: format!("in the ACL {acl_name}, add `require verify = recipient` before `accept domains = +local_domains` (Exim wiki Q0743), then reload Exim (SIGHUP the daemon)"),
                evidence: format!("acl_smtp_rcpt = {acl_name}: no `verify = recipient` in it"),
                backscatter: true,
            });
        }
        if stmts
            .iter()
            .any(|s| s.verb == "accept" && s.conditions.iter().all(|c| is_modifier(c)))
        {
            f.push(Finding {
                check: "exim-open-relay".into(),
                severity: Severity::Critical,
                title: "the RCPT ACL accepts every recipient (open relay)".into(),
                why: "An `accept` without conditions in the RCPT ACL lets anyone send mail to anywhere through this server: it will be listed everywhere within hours.".into(),
                fix: format!("in the ACL {acl_name}, deny `!domains = +local_domains` for hosts outside `+relay_from_hosts` before any unconditional accept, then reload Exim"),
                evidence: format!("acl_smtp_rcpt = {acl_name}: a bare `accept`"),
                backscatter: false,
            });
        }
    }
    checks.push("exim-ignore-bounce-errors-after".into());
    if let Some(secs) = options
        .get("ignore_bounce_errors_after")
        .and_then(|v| parse_time(v, 1))
    {
        if secs > 2 * 86_400 {
            f.push(Finding {
                check: "exim-ignore-bounce-errors-after".into(),
                severity: Severity::Info,
                title: "failed bounces stay frozen for weeks".into(),
                why: "A bounce to a forged sender that cannot be delivered is frozen and kept for ignore_bounce_errors_after (10 weeks by default), so an attack keeps the queue full long after it ends.".into(),
                fix: "set `ignore_bounce_errors_after = 2d` in the main section, then reload Exim".into(),
                evidence: format!("ignore_bounce_errors_after = {}", options.get("ignore_bounce_errors_after").map(String::as_str).unwrap_or("")),
                backscatter: false,
            });
        }
    }
    checks.push("exim-timeout-frozen-after".into());
    if options
        .get("timeout_frozen_after")
        .is_some_and(|v| parse_time(v, 1) == Some(0))
    {
        f.push(Finding {
            check: "exim-timeout-frozen-after".into(),
            severity: Severity::Info,
            title: "frozen messages are never removed".into(),
            why: "With timeout_frozen_after unset, frozen messages (most of them bounces to forged senders) stay in the queue until someone removes them.".into(),
            fix: "set `timeout_frozen_after = 7d` in the main section, then reload Exim".into(),
            evidence: "timeout_frozen_after = 0s".into(),
            backscatter: false,
        });
    }
    (checks, sorted(f))
}

/// Why an audit could not read the settings.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The command failed, timed out or could not start.
    #[error("{0}")]
    Command(#[from] crate::mail::SourceError),
    /// The output is not what the MTA prints.
    #[error("{0}")]
    Output(String),
}

async fn read(argv: &[String], extra: &[&str], timeout: Duration) -> Result<String, AuditError> {
    let mut a = argv.to_vec();
    a.extend(extra.iter().map(|s| s.to_string()));
    Ok(crate::mail::run_command(&a, &[], timeout).await?)
}

/// Reads the settings and runs the checks. A failure to read is a report
/// with `ok = false` and the error, never a panic.
pub async fn run(conf: &AuditConf) -> AuditReport {
    let mut report = AuditReport {
        name: conf.name.clone(),
        mta: conf.mta,
        command: conf.command.clone(),
        ok: false,
        error: None,
        version: None,
        checks: Vec::new(),
        findings: Vec::new(),
    };
    let result: Result<(), AuditError> = async {
        match conf.mta {
            AuditMta::Postfix => {
                let text = read(&conf.command, &["-x"], conf.timeout).await?;
                let p = parse_postconf(&text);
                if !p.contains_key("smtpd_relay_restrictions") && !p.contains_key("mydestination") {
                    return Err(AuditError::Output(
                        "the command did not print Postfix settings (is it postconf?)".into(),
                    ));
                }
                report.version = p.get("mail_version").cloned();
                let (checks, findings) = check_postfix(&p, &conf.command);
                report.checks = checks;
                report.findings = findings;
            }
            AuditMta::Exim => {
                let opts = parse_exim_options(&read(&conf.command, &["-bP"], conf.timeout).await?);
                if !opts.contains_key("acl_smtp_rcpt") && !opts.contains_key("primary_hostname") {
                    return Err(AuditError::Output(
                        "the command did not print Exim's options (is it exim -bP?)".into(),
                    ));
                }
                let config = read(&conf.command, &["-bP", "config"], conf.timeout).await?;
                report.version = config
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("# Exim Configuration ("))
                    .and_then(|l| l.strip_suffix(')'))
                    .map(str::to_string);
                let (checks, findings) = check_exim(&opts, &config);
                report.checks = checks;
                report.findings = findings;
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => report.ok = true,
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real `postconf -x` lines of the lab's vulnerable Postfix 3.7.
    const VULNERABLE: &str = "alias_maps = hash:/tmp/lab/postfix-conf/aliases
bounce_queue_lifetime = 5d
local_recipient_maps =
mail_version = 3.7.11
mydestination = mx.example.test, localhost.example.test, localhost, example.test
mynetworks = 127.0.0.1/32
notify_classes = resource, software
relay_domains =
relay_recipient_maps =
smtpd_helo_required = no
smtpd_recipient_restrictions =
smtpd_reject_unlisted_recipient = no
smtpd_relay_restrictions = reject_unauth_destination
soft_bounce = no
";

    fn ids(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|x| x.check.as_str()).collect()
    }

    #[test]
    fn postfix_vulnerable_and_hardened() {
        let cmd: Vec<String> = vec!["postconf".into(), "-c".into(), "/etc/postfix-out".into()];
        let (checks, f) = check_postfix(&parse_postconf(VULNERABLE), &cmd);
        assert_eq!(checks.len(), 10);
        assert_eq!(
            ids(&f),
            vec![
                "postfix-local-recipient-maps",
                "postfix-unlisted-recipient",
                "postfix-bounce-queue-lifetime",
                "postfix-header-log",
                "postfix-helo-required"
            ]
        );
        assert!(
            f[3].fix
                .contains("header_checks = regexp:/etc/postfix/rblwatch-header-log.regexp"),
            "{}",
            f[3].fix
        );
        assert_eq!(
            f[1].fix,
            "postconf -c /etc/postfix-out -e 'smtpd_reject_unlisted_recipient = yes' && postfix -c /etc/postfix-out reload"
        );
        assert!(f[0].backscatter && f[1].backscatter);
        let hardened = VULNERABLE
            .replace(
                "local_recipient_maps =\n",
                "local_recipient_maps = unix:passwd.byname hash:/x\n",
            )
            .replace(
                "smtpd_reject_unlisted_recipient = no",
                "smtpd_reject_unlisted_recipient = yes",
            )
            .replace("bounce_queue_lifetime = 5d", "bounce_queue_lifetime = 1d")
            .replace("smtpd_helo_required = no", "smtpd_helo_required = yes")
            + "header_checks = pcre:/etc/postfix/mine.pcre, regexp:/etc/postfix/rblwatch-header-log.regexp\n";
        let (_, f) = check_postfix(&parse_postconf(&hardened), &["postconf".into()]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn postfix_relaying_settings() {
        let p = |extra: &str| parse_postconf(&format!("{VULNERABLE}{extra}"));
        // an open relay: permit before any reject, nothing in recipient restrictions
        let (_, f) = check_postfix(
            &p("smtpd_relay_restrictions = permit, reject_unauth_destination\n"),
            &[],
        );
        assert!(ids(&f).contains(&"postfix-open-relay"), "{f:?}");
        let (_, f) = check_postfix(
            &p("smtpd_relay_restrictions =\nsmtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination\n"),
            &[],
        );
        assert!(!ids(&f).contains(&"postfix-open-relay"));
        let (_, f) = check_postfix(&p("mynetworks = 127.0.0.0/8 0.0.0.0/0 [::1]/128\n"), &[]);
        assert!(ids(&f).contains(&"postfix-mynetworks"));
        let (_, f) = check_postfix(&p("relay_domains = example.test, relay.example\n"), &[]);
        assert!(ids(&f).contains(&"postfix-relay-recipient-maps"));
        let (_, f) = check_postfix(&p("relay_domains = example.test\n"), &[]);
        assert!(
            !ids(&f).contains(&"postfix-relay-recipient-maps"),
            "a local domain is not relayed"
        );
        let (_, f) = check_postfix(
            &p("soft_bounce = yes\nnotify_classes = bounce, resource\n"),
            &[],
        );
        assert!(
            ids(&f).contains(&"postfix-soft-bounce") && ids(&f).contains(&"postfix-notify-bounce")
        );
    }

    /// Real `exim -bP config` output of the lab's Exim 4.96 (strict mode).
    const EXIM_CONFIG: &str = "# Exim Configuration (4.96)
# 1 \"exim.conf\"
primary_hostname = mx.example.test
acl_smtp_rcpt = acl_rcpt

begin acl

  acl_rcpt:
    accept hosts = :
    deny message = relay not permitted
    !domains = +local_domains
    !hosts = +relay_from_hosts
    accept !domains = +local_domains
    require verify = recipient
    accept domains = +local_domains
    deny
  acl_data:
    accept

begin routers

  fail_unknown:
    driver = redirect
";

    #[test]
    fn exim_acl_parsing_and_checks() {
        let acl = exim_acl(EXIM_CONFIG, "acl_rcpt").unwrap();
        assert_eq!(acl.len(), 6);
        assert_eq!(acl[1].conditions.len(), 3);
        assert_eq!(acl[3].verb, "require");
        assert!(exim_acl(EXIM_CONFIG, "nope").is_none());
        let opts = parse_exim_options("acl_smtp_rcpt = acl_rcpt\nno_allow_domain_literals\nbounce_return_body\nignore_bounce_errors_after = 10w\ntimeout_frozen_after = 0s\n");
        assert_eq!(opts["allow_domain_literals"], "false");
        assert_eq!(opts["bounce_return_body"], "true");
        let (_, f) = check_exim(&opts, EXIM_CONFIG);
        assert_eq!(
            ids(&f),
            vec![
                "exim-ignore-bounce-errors-after",
                "exim-timeout-frozen-after"
            ]
        );
        let vulnerable = EXIM_CONFIG.replace("    require verify = recipient\n", "");
        let (_, f) = check_exim(&opts, &vulnerable);
        assert_eq!(f[0].check, "exim-rcpt-verify");
        assert_eq!(f[0].severity, Severity::Critical);
        let open = EXIM_CONFIG.replace("    accept hosts = :\n", "    accept\n");
        let (_, f) = check_exim(&opts, &open);
        assert!(ids(&f).contains(&"exim-open-relay"), "{f:?}");
        let tidy = parse_exim_options("acl_smtp_rcpt = acl_rcpt\nignore_bounce_errors_after = 2d\ntimeout_frozen_after = 7d\n");
        assert!(check_exim(&tidy, EXIM_CONFIG).1.is_empty());
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("5d", 86_400), Some(5 * 86_400));
        assert_eq!(parse_time("5", 86_400), Some(5 * 86_400));
        assert_eq!(parse_time("10w", 1), Some(70 * 86_400));
        assert_eq!(parse_time("1d12h", 1), Some(86_400 + 12 * 3600));
        assert_eq!(parse_time("0s", 1), Some(0));
        assert_eq!(parse_time("x", 1), None);
        assert_eq!(parse_time("", 1), None);
    }

    #[tokio::test]
    async fn a_command_that_is_not_the_mta_is_a_clear_error() {
        let conf = AuditConf {
            name: "x".into(),
            mta: AuditMta::Postfix,
            command: vec!["echo".into(), "hello".into()],
            interval: crate::config::Schedule::Every(Duration::from_secs(60)),
            timeout: Duration::from_secs(5),
        };
        let r = run(&conf).await;
        assert!(!r.ok);
        assert!(r.error.unwrap().contains("postconf"));
        let conf = AuditConf {
            command: vec!["/nonexistent/postconf".into()],
            ..conf
        };
        let r = run(&conf).await;
        assert!(!r.ok && r.error.is_some());
    }
}
