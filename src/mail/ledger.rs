//! The outbound ledger: every message the MTA handles, joined by queue id from
//! its log, with where it came from ([`Origin`]: a SASL login, a local
//! submission, a relay client, the MTA itself) and what it is ([`Class`]:
//! user mail, a bounce, an autoreply, a report, a forward).
//!
//! A listed server is most often listed for what one of its own senders did: a
//! leaked password, a flood of DMARC reports to a spammer's `rua`, an
//! autoresponder answering spam, bounces to forged senders. The log carries
//! all of it, spread over several lines per message (smtpd's `client=…
//! sasl_username=`, pickup's `uid=`, cleanup's header warnings, qmgr's
//! `from=`, one delivery line per recipient, `removed`); this parser joins
//! them and hands out [`Fact`]s as they become known, so a burst is seen while
//! the mail is still queued, not when it finally leaves.
//!
//! Pure: lines in, facts out, no I/O, never panics on any input. Memory is
//! bounded: at most [`MAX_OPEN`] messages are followed at once (the oldest is
//! dropped first; a busy relay's log has far fewer in flight), and a message
//! keeps at most [`MAX_RCPTS`] recipients.
//!
//! Headers a delivery line does not carry come from the shipped snippets:
//! Postfix `header_checks` with `WARN` (`contrib/postfix-header-log.regexp`)
//! logs `QID: warning: header NAME: VALUE from CLIENT; from=<…> to=<…>`; the
//! Exim ACL (`contrib/exim-header-log.acl`) logs
//! `rblwatch-header ID NAME: VALUE`. Class rules are data
//! (`senders.d/*.toml`, [`ClassRules`]).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::delivery::{self, DeliveryResult, DeliveryStatus};

/// Messages followed at once at most; the oldest is forgotten first.
pub const MAX_OPEN: usize = 100_000;

/// Recipients kept per message at most (the rest are counted, not kept).
pub const MAX_RCPTS: usize = 1_000;

crate::spelling::closed_set! {
    /// Where a message came from (the name is the API's and the hooks'
    /// `RBLWATCH_ORIGIN`).
    #[derive(PartialOrd, Ord)]
    pub enum Origin {
        /// Submitted by an authenticated SMTP client (Postfix `sasl_username=`,
        /// Exim `A=`): the account is the login.
        Sasl = "sasl",
        /// Submitted on the host (Postfix pickup `uid=`, Exim `U=… P=local`):
        /// the account is the uid or user.
        Local = "local",
        /// Relayed for an unauthenticated client in `mynetworks`: the account is
        /// the client's IP.
        Relay = "relay",
        /// Received from the outside (inbound mail). Only counted when it leaves
        /// again (a forward).
        Inbound = "inbound",
        /// Made by the MTA itself (bounces, `forwarded as` copies).
        Mta = "mta",
    }
}

pub use crate::classes::{Class, ClassRule, ClassRules, RulesError, SHIPPED};

/// Which MTA wrote the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogMta {
    /// Postfix.
    Postfix,
    /// Exim.
    Exim,
}

/// One recipient of a message and its latest delivery result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    /// The address delivered to.
    pub address: String,
    /// The address it was sent to before alias expansion (`orig_to=`, Exim's `<…>`).
    pub orig: Option<String>,
    /// Delivered to another host (SMTP), not a local mailbox.
    pub remote: bool,
    /// The latest result.
    pub status: DeliveryStatus,
    /// The answering host.
    pub relay_host: Option<String>,
    /// The remote reply, when there was one.
    pub reply: Option<String>,
}

impl Recipient {
    /// The recipient's domain (lower case).
    pub fn domain(&self) -> String {
        domain_of(&self.address)
    }
}

/// A message of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Queue id (Postfix) or message id (Exim).
    pub queue_id: String,
    /// Where it came from.
    pub origin: Origin,
    /// Who sent it: the SASL login, the local uid or user, the relay client's
    /// IP; empty for the MTA and inbound mail.
    pub account: String,
    /// The envelope sender (empty for `<>`).
    pub sender: String,
    /// What it is.
    pub class: Class,
    /// Recipients as delivered (at most [`MAX_RCPTS`]).
    pub recipients: Vec<Recipient>,
    /// Recipients not kept (over [`MAX_RCPTS`]).
    pub more_recipients: usize,
    /// Headers the MTA logged (lower-case name, value).
    pub headers: Vec<(String, String)>,
}

impl Message {
    /// The distinct destination domains of its remote recipients.
    pub fn destinations(&self) -> Vec<String> {
        let mut d: Vec<String> = self
            .recipients
            .iter()
            .filter(|r| r.remote)
            .map(Recipient::domain)
            .collect();
        d.sort();
        d.dedup();
        d
    }
}

/// What the ledger learnt from a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// An outbound message entered the queue (or, for inbound mail, its first
    /// remote delivery made it a forward).
    Queued {
        /// Queue id.
        queue_id: String,
        /// Origin.
        origin: Origin,
        /// Account (see [`Message::account`]).
        account: String,
        /// Class.
        class: Class,
    },
    /// A delivery attempt of an outbound message.
    Delivery {
        /// Origin of the message.
        origin: Origin,
        /// Its account.
        account: String,
        /// Its class.
        class: Class,
        /// Remote recipient (not a local mailbox).
        remote: bool,
        /// The result.
        result: DeliveryResult,
    },
    /// The message left the queue (delivered, bounced or deleted): its record.
    Done(Message),
}

impl Fact {
    /// Who refused this delivery, when it is a remote refusal about us: the
    /// reply catalog's receiver, else the answering host. Replies about the
    /// recipient (unknown user, mailbox full) are not the sender's fault. The
    /// one rule for the daemon's ledger and `rblwatch senders`.
    pub fn refused_by(
        &self,
        replies: &crate::replies::ReplyCatalog,
        catalog: &crate::catalog::Catalog,
    ) -> Option<String> {
        let Fact::Delivery {
            remote: true,
            result,
            ..
        } = self
        else {
            return None;
        };
        let reply = result.reply.as_deref()?;
        match replies.classify(reply, result.relay_host.as_deref(), catalog) {
            Some(c) if !c.meaning.about_us() => None,
            Some(c) => c.receiver.or_else(|| result.relay_host.clone()),
            None => result.relay_host.clone().or_else(|| Some("unknown".into())),
        }
    }
}

/// A message being followed.
#[derive(Debug, Clone)]
struct Open {
    seq: u64,
    origin: Option<Origin>,
    account: String,
    sender: Option<String>,
    headers: Vec<(String, String)>,
    recipients: Vec<Recipient>,
    more_recipients: usize,
    class: Option<Class>,
    /// Announced as [`Fact::Queued`].
    counted: bool,
}

impl Open {
    fn new(seq: u64) -> Self {
        Open {
            seq,
            origin: None,
            account: String::new(),
            sender: None,
            headers: Vec::new(),
            recipients: Vec::new(),
            more_recipients: 0,
            class: None,
            counted: false,
        }
    }

    /// Announces the message as [`Fact::Queued`], once: when it is classified
    /// as outbound, or (a forward) at its first remote delivery.
    fn count_once(&mut self, id: &str, origin: Origin, class: Class, out: &mut impl FnMut(Fact)) {
        if self.counted {
            return;
        }
        self.counted = true;
        out(Fact::Queued {
            queue_id: id.to_string(),
            origin,
            account: self.account.clone(),
            class,
        });
    }
}

/// Settings of the ledger.
#[derive(Debug, Clone)]
pub struct LedgerConf {
    /// Clients relayed without authentication (Postfix `mynetworks`); an
    /// unauthenticated client outside them is inbound mail.
    pub mynetworks: Vec<IpNet>,
    /// The class rules.
    pub rules: ClassRules,
}

impl LedgerConf {
    /// Loopback as `mynetworks` and the shipped rules.
    pub fn shipped() -> Result<Self, RulesError> {
        Ok(LedgerConf {
            mynetworks: default_mynetworks(),
            rules: ClassRules::shipped()?,
        })
    }
}

/// `127.0.0.0/8` and `::1/128`, Postfix's `mynetworks_style = host` on loopback.
pub fn default_mynetworks() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The ledger: follows the messages of one log.
#[derive(Debug, Clone)]
pub struct Ledger {
    mta: LogMta,
    open: HashMap<String, Open>,
    /// Messages by the order they were first seen: the oldest is dropped first.
    order: BTreeMap<u64, String>,
    seq: u64,
    /// Messages forgotten over [`MAX_OPEN`].
    pub evicted: u64,
}

impl Ledger {
    /// An empty ledger for this MTA's log.
    pub fn new(mta: LogMta) -> Self {
        Ledger {
            mta,
            open: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
            evicted: 0,
        }
    }

    /// Messages followed now.
    pub fn open_messages(&self) -> usize {
        self.open.len()
    }

    /// Feeds a chunk of log (whole lines); `out` receives the facts.
    pub fn feed(&mut self, conf: &LedgerConf, text: &str, out: &mut impl FnMut(Fact)) {
        for line in text.lines() {
            self.line(conf, line, out);
        }
    }

    /// Feeds one line.
    pub fn line(&mut self, conf: &LedgerConf, line: &str, out: &mut impl FnMut(Fact)) {
        match self.mta {
            LogMta::Postfix => self.postfix(conf, line, out),
            LogMta::Exim => self.exim(conf, line, out),
        }
    }

    fn entry(&mut self, id: &str) -> &mut Open {
        if !self.open.contains_key(id) {
            while self.open.len() >= MAX_OPEN {
                let Some((_, old)) = self.order.pop_first() else {
                    break;
                };
                self.open.remove(&old);
                self.evicted += 1;
            }
            self.seq += 1;
            self.order.insert(self.seq, id.to_string());
            self.open.insert(id.to_string(), Open::new(self.seq));
        }
        // just inserted or present
        self.open
            .entry(id.to_string())
            .or_insert_with(|| Open::new(0))
    }

    fn close(&mut self, id: &str, out: &mut impl FnMut(Fact)) {
        let Some(o) = self.open.remove(id) else {
            return;
        };
        self.order.remove(&o.seq);
        let (Some(origin), Some(class)) = (o.origin, o.class) else {
            return; // never queued (rejected, or seen only in part)
        };
        if origin == Origin::Inbound && class != Class::Forward {
            return; // inbound mail delivered here: not outbound
        }
        out(Fact::Done(Message {
            queue_id: id.to_string(),
            origin,
            account: o.account,
            sender: o.sender.unwrap_or_default(),
            class,
            recipients: o.recipients,
            more_recipients: o.more_recipients,
            headers: o.headers,
        }));
    }

    /// The message is queued with its sender: its class is decided now.
    fn queued(&mut self, conf: &LedgerConf, id: &str, sender: &str, out: &mut impl FnMut(Fact)) {
        let e = self.entry(id);
        if e.sender.is_some() {
            return; // qmgr logs from= again after a deferral
        }
        e.sender = Some(sender.to_string());
        let origin = *e.origin.get_or_insert(Origin::Mta);
        let class = if sender.is_empty() {
            Class::Bounce
        } else {
            conf.rules
                .classify(sender, &e.headers)
                .unwrap_or(if e.class == Some(Class::Forward) {
                    Class::Forward
                } else {
                    Class::User
                })
        };
        e.class = Some(class);
        if origin != Origin::Inbound || class == Class::Forward {
            e.count_once(id, origin, class, out);
        }
    }

    /// A delivery result of a followed message.
    fn delivered(
        &mut self,
        id: &str,
        result: DeliveryResult,
        orig: Option<String>,
        remote: bool,
        out: &mut impl FnMut(Fact),
    ) {
        let Some(e) = self.open.get_mut(id) else {
            return;
        };
        let (Some(origin), Some(mut class)) = (e.origin, e.class) else {
            return;
        };
        if origin == Origin::Inbound && remote && class == Class::User {
            // received from outside and sent on: a forward
            class = Class::Forward;
            e.class = Some(class);
        }
        if origin == Origin::Inbound && class != Class::Forward {
            return;
        }
        e.count_once(id, origin, class, out);
        if let Some(r) = e
            .recipients
            .iter_mut()
            .find(|r| r.address == result.recipient)
        {
            r.status = result.status;
            r.relay_host.clone_from(&result.relay_host);
            r.reply.clone_from(&result.reply);
        } else if e.recipients.len() < MAX_RCPTS {
            e.recipients.push(Recipient {
                address: result.recipient.clone(),
                orig,
                remote,
                status: result.status,
                relay_host: result.relay_host.clone(),
                reply: result.reply.clone(),
            });
        } else {
            e.more_recipients += 1;
        }
        out(Fact::Delivery {
            origin,
            account: e.account.clone(),
            class,
            remote,
            result,
        });
    }

    fn postfix(&mut self, conf: &LedgerConf, line: &str, out: &mut impl FnMut(Fact)) {
        let line = line.trim_end_matches(['\r', '\n']);
        let Some((service, id, body)) = postfix_parts(line) else {
            return;
        };
        if let Some(rest) = body.strip_prefix("client=") {
            // smtpd: `client=name[ip], sasl_method=PLAIN, sasl_username=alice`
            let ip = rest
                .split(", ")
                .next()
                .and_then(|c| c.rsplit_once('['))
                .and_then(|(_, ip)| ip.split(']').next())
                .map(|ip| ip.strip_prefix("IPv6:").unwrap_or(ip))
                .and_then(|ip| ip.parse::<IpAddr>().ok());
            let login = rest
                .find(", sasl_username=")
                .map(|i| &rest[i + ", sasl_username=".len()..])
                // the login is the rest of the line up to the next field Postfix adds
                .map(|l| l.split(", sasl_sender=").next().unwrap_or(l))
                .map(|l| l.split(", orig_queue_id=").next().unwrap_or(l))
                .map(|l| l.split(", orig_client=").next().unwrap_or(l));
            let e = self.entry(id);
            if e.origin.is_some() {
                return;
            }
            match (login, ip) {
                (Some(l), _) => {
                    e.origin = Some(Origin::Sasl);
                    e.account = l.to_string();
                }
                (None, Some(ip)) if conf.mynetworks.iter().any(|n| n.contains(&ip)) => {
                    e.origin = Some(Origin::Relay);
                    e.account = ip.to_string();
                }
                _ => e.origin = Some(Origin::Inbound),
            }
        } else if let Some(rest) = body.strip_prefix("uid=") {
            // pickup: `uid=1000 from=<alice>`
            let uid = rest.split(' ').next().unwrap_or("");
            let e = self.entry(id);
            if e.origin.is_none() {
                e.origin = Some(Origin::Local);
                e.account = format!("uid {uid}");
            }
        } else if let Some(rest) = body.strip_prefix("warning: header ") {
            if let Some((name, value)) = postfix_header(rest) {
                let e = self.entry(id);
                if e.headers.len() < 16 {
                    e.headers.push((name, value));
                }
            }
        } else if let Some(rest) = body.strip_prefix("from=<") {
            // qmgr: `from=<sender>, size=N, nrcpt=M (queue active)`; also the expiry line
            if body.contains(", status=expired") {
                return;
            }
            if let Some(i) = rest.rfind(">, size=") {
                self.queued(conf, id, &rest[..i], out);
            }
        } else if body == "removed" {
            self.close(id, out);
        } else if body.starts_with("to=<") {
            let Some(result) = delivery::parse_postfix(line) else {
                return;
            };
            let orig = body
                .find(", orig_to=<")
                .map(|i| &body[i + ", orig_to=<".len()..])
                .and_then(|r| r.split_once(">,").map(|(o, _)| o.to_string()));
            let prog = service.rsplit('/').next().unwrap_or(service);
            let remote = !matches!(prog, "local" | "virtual" | "lmtp" | "pipe" | "discard");
            // `local` re-submitting an alias expansion: the copy is its own message
            if let Some(i) = body.rfind("(forwarded as ") {
                let new = body[i + "(forwarded as ".len()..].trim_end_matches(')');
                if is_queue_id(new) {
                    let parent = self.open.get(id).map(|e| e.origin);
                    let child = self.entry(new);
                    child.origin = Some(Origin::Mta);
                    if parent == Some(Some(Origin::Inbound)) {
                        child.class = Some(Class::Forward);
                    }
                }
            }
            self.delivered(id, result, orig, remote, out);
        } else if let Some(new) = body
            .strip_prefix("sender non-delivery notification: ")
            .or_else(|| body.strip_prefix("sender delivery status notification: "))
            .or_else(|| body.strip_prefix("postmaster non-delivery notification: "))
        {
            if is_queue_id(new) {
                let e = self.entry(new);
                e.origin = Some(Origin::Mta);
            }
        }
    }

    fn exim(&mut self, conf: &LedgerConf, line: &str, out: &mut impl FnMut(Fact)) {
        let line = line.trim_end_matches(['\r', '\n']);
        // the header snippet: `rblwatch-header ID Name: value`
        if let Some(i) = line.find(" rblwatch-header ") {
            let rest = &line[i + " rblwatch-header ".len()..];
            if let Some((id, h)) = rest.split_once(' ') {
                if delivery::is_exim_id(id) {
                    if let Some((n, v)) = h.split_once(':') {
                        let e = self.entry(id);
                        if e.headers.len() < 16 {
                            e.headers
                                .push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
                        }
                    }
                }
            }
            return;
        }
        let mut toks = line.split(' ').filter(|t| !t.is_empty());
        // `DATE TIME [PID] ID FLAG …`
        let Some((id, flag, rest)) = (|| {
            for _ in 0..4 {
                let t = toks.next()?;
                if delivery::is_exim_id(t) {
                    let at = line.find(t)? + t.len();
                    let rest = line.get(at..)?.trim_start();
                    let (flag, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                    return Some((t, flag, rest));
                }
            }
            None
        })() else {
            return;
        };
        match flag {
            "<=" => {
                let sender = rest.split(' ').next().unwrap_or("");
                let sender = if sender == "<>" { "" } else { sender };
                let field = |k: &str| {
                    rest.find(&format!(" {k}="))
                        .map(|i| &rest[i + k.len() + 2..])
                        .map(|v| v.split(' ').next().unwrap_or(v))
                };
                let (origin, account) = if let Some(a) = field("A") {
                    // `A=authenticator:login`
                    let login = a.split_once(':').map_or(a, |(_, l)| l);
                    (Origin::Sasl, login.to_string())
                } else if sender.is_empty() && field("R").is_some() {
                    (Origin::Mta, String::new())
                } else if field("P") == Some("local") || field("P") == Some("local-bsmtp") {
                    (Origin::Local, field("U").unwrap_or("").to_string())
                } else {
                    let ip = rest
                        .find(" H=")
                        .and_then(|i| rest[i..].find('[').map(|j| i + j + 1))
                        .and_then(|j| rest[j..].split(']').next())
                        .and_then(|ip| ip.parse::<IpAddr>().ok());
                    match ip {
                        Some(ip) if conf.mynetworks.iter().any(|n| n.contains(&ip)) => {
                            (Origin::Relay, ip.to_string())
                        }
                        Some(_) => (Origin::Inbound, String::new()),
                        None => (Origin::Mta, String::new()),
                    }
                };
                let e = self.entry(id);
                e.origin = Some(origin);
                e.account = account;
                self.queued(conf, id, sender, out);
            }
            "=>" | "->" | "**" | "==" => {
                let Some(result) = delivery::parse_exim(line) else {
                    return;
                };
                // `=> to <orig> R=…`: the address before redirection
                let orig = rest
                    .split(' ')
                    .nth(1)
                    .filter(|t| t.starts_with('<') && t.ends_with('>'))
                    .map(|t| t.trim_matches(['<', '>']).to_string());
                let transport = rest
                    .find(" T=")
                    .map(|i| rest[i + 3..].split(' ').next().unwrap_or(""));
                let remote = match transport {
                    Some(t) => t.contains("smtp") && !t.contains("lmtp"),
                    None => rest.contains(" H="),
                };
                self.delivered(id, result, orig, remote, out);
            }
            "Completed" => self.close(id, out),
            _ => {}
        }
    }
}

/// `… service[pid]: QUEUEID: body` → (service, queue id, body).
fn postfix_parts(line: &str) -> Option<(&str, &str, &str)> {
    // the program token is within the first few tokens, whichever timestamp style
    let mut start = 0;
    for _ in 0..6 {
        let rest = line.get(start..)?;
        let skip = rest.len() - rest.trim_start().len();
        let tok_start = start + skip;
        let tok_len = line[tok_start..]
            .find(' ')
            .unwrap_or(line.len() - tok_start);
        let tok = &line[tok_start..tok_start + tok_len];
        start = tok_start + tok_len;
        if let Some(inner) = tok.strip_suffix("]:") {
            let (prog, pid) = inner.rsplit_once('[')?;
            if !prog.contains('/') || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let rest = line.get(start..)?.trim_start();
            let (id, body) = rest.split_once(": ")?;
            if !is_queue_id(id) {
                return None;
            }
            return Some((prog, id, body));
        }
    }
    None
}

/// A Postfix queue id: short (`B160399CAB5`) or long (`4Qx1Yz2kLmz9sW`) form.
fn is_queue_id(s: &str) -> bool {
    (6..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) && s != "NOQUEUE"
}

/// `Name: value from client; from=<…> to=<…> …` → (lower-case name, value).
fn postfix_header(rest: &str) -> Option<(String, String)> {
    let head = &rest[..rest.rfind("; from=<")?];
    // the value ends before ` from CLIENT` (`unknown[127.0.0.1]`, `local`)
    let head = head.rfind(" from ").map_or(head, |i| &head[..i]);
    let (name, value) = head.split_once(':')?;
    if name.is_empty() || name.contains(' ') {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.trim().to_string()))
}

/// The domain of an address, lower case (empty for none).
pub fn domain_of(addr: &str) -> String {
    addr.rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
