//! The receiver-reply catalog: what a remote server's rejection or deferral
//! text means for us, read from `replies.d/*.toml`.
//!
//! A DNSBL lookup says whether our IP is listed; it cannot say whether anyone
//! *acts* on the listing, and it knows nothing of the receivers' private
//! reputation systems (Microsoft's S3150 list, Gmail's rate limits, Yahoo's
//! TSS codes…). Those only show up in the replies our own MTA logs. This module
//! turns such a reply into a [`Classification`]: which rule matched, which
//! receiver answered, what the reply means ([`ReplyMeaning`]) and, when it names
//! one, which list of the DNSBL [`Catalog`] it refers to.
//!
//! Like the DNSBL catalog, the rules are data, not code: receivers change their
//! wording faster than binaries are upgraded. The shipped files are embedded
//! in the binary ([`shipped`]); a directory named in the config can add rules
//! or replace a shipped one by `id`. Reading happens in two steps: `raw`
//! mirrors the TOML with `deny_unknown_fields`, then every value is checked
//! and every pattern compiled once. Each rule carries the real reply texts it
//! was written from (`examples`) and where they were found (`source`), so a
//! rule can be checked against its evidence, and is, by the tests.
//!
//! Matching is first-match-wins in catalog order (user rules, then the shipped
//! files by name, each in file order); a [`RegexSet`] finds every matching rule
//! in one pass over the text, which keeps a busy log (100k lines a minute)
//! cheap to classify.

mod raw;
pub mod shipped;

use std::fmt;
use std::path::Path;

use regex::{Regex, RegexSet, RegexSetBuilder};
use serde::Serialize;

use crate::catalog::{Catalog, ListDef, ListKind};

crate::spelling::closed_set! {
    /// What a receiver's reply says about our mail, a closed set so that counts
    /// and alerts can be keyed on it.
    #[derive(PartialOrd, Ord)]
    pub enum ReplyMeaning {
        /// Our IP is on a DNS blocklist (a third-party list, often one of our catalog).
        IpBlocklist = "ip-blocklist",
        /// The receiver's own reputation data on our IP (Microsoft S3150, Yahoo TSS…).
        IpReputation = "ip-reputation",
        /// Reputation of a domain in our mail (sender, DKIM or URL domain).
        DomainReputation = "domain-reputation",
        /// Too many connections, messages or recipients: the receiver throttles us.
        RateLimit = "rate-limit",
        /// SPF, DKIM, DMARC or reverse DNS (PTR) failures.
        Authentication = "authentication",
        /// The message itself was judged spam, phishing or malware.
        Content = "content",
        /// Another receiver policy (local rules, allow lists, blocked senders).
        Policy = "policy",
        /// About the recipient, not about us: unknown user, mailbox full or disabled.
        Recipient = "recipient",
        /// The receiver's own setup is broken (e.g. it queries Spamhaus through an
        /// open resolver and rejects everyone): not about us either.
        ReceiverError = "receiver-error",
    }
}

impl ReplyMeaning {
    /// One sentence for the postmaster: what happened and where to look.
    pub fn describe(self) -> &'static str {
        match self {
            ReplyMeaning::IpBlocklist => {
                "Our sending IP is on a DNS blocklist the receiver uses; check the list and request delisting once the cause is fixed."
            }
            ReplyMeaning::IpReputation => {
                "The receiver's own reputation system distrusts our sending IP; use the receiver's sender support page."
            }
            ReplyMeaning::DomainReputation => {
                "A domain in our mail (sender, DKIM signer or a linked URL) has a bad reputation or is on a domain blocklist."
            }
            ReplyMeaning::RateLimit => {
                "The receiver throttles us (connections, messages or recipients per period); slow down and let retries work."
            }
            ReplyMeaning::Authentication => {
                "SPF, DKIM, DMARC or reverse DNS (PTR) did not pass for our mail; fix the DNS records or the signing."
            }
            ReplyMeaning::Content => {
                "The receiver judged the message itself to be spam, phishing or malware."
            }
            ReplyMeaning::Policy => {
                "A receiver policy refused the mail (local rules, allow lists, blocked senders)."
            }
            ReplyMeaning::Recipient => {
                "About the recipient (unknown, disabled or full mailbox), not about our reputation."
            }
            ReplyMeaning::ReceiverError => {
                "The receiver's own setup is broken (for example a DNSBL queried through an open resolver); not about us."
            }
        }
    }

    /// Whether the reply says something about our reputation or setup (false
    /// for [`ReplyMeaning::Recipient`] and [`ReplyMeaning::ReceiverError`]).
    pub fn about_us(self) -> bool {
        !matches!(self, ReplyMeaning::Recipient | ReplyMeaning::ReceiverError)
    }
}

/// A mail receiver (mailbox provider or filtering gateway).
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Stable identifier (`microsoft`, `google`…).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Patterns on the MX host name that attribute a reply to this receiver
    /// when the matching rule does not name one (regex source text).
    pub relays: Vec<String>,
    /// Where a sender asks for delisting or support.
    pub sender_page: Option<String>,
    /// File the definition came from, for error messages.
    pub file: String,
    relay_re: Vec<Regex>,
}

impl Receiver {
    /// Whether `host` (an MX host name) belongs to this receiver.
    pub fn matches_relay(&self, host: &str) -> bool {
        let host = host.trim().trim_end_matches('.');
        self.relay_re.iter().any(|re| re.is_match(host))
    }
}

/// One reply rule: a pattern on the remote reply text and what it means.
#[derive(Debug, Clone)]
pub struct ReplyRule {
    /// Stable identifier (`microsoft-s3150`…).
    pub id: String,
    /// The receiver that sends this reply; `None` for replies many receivers
    /// send (generic DNSBL wording, filtering appliances).
    pub receiver: Option<String>,
    /// Regex source, matched against the normalised reply (see [`normalize_reply`]).
    pub pattern: String,
    /// What the reply means.
    pub meaning: ReplyMeaning,
    /// The DNSBL catalog id the reply names, when it is always the same list.
    pub list: Option<String>,
    /// Free-form advice for the postmaster.
    pub note: Option<String>,
    /// Where this reply is documented or was seen.
    pub source: String,
    /// Further places where the example texts were found.
    pub refs: Vec<String>,
    /// Real reply texts this rule was written from (addresses anonymised).
    pub examples: Vec<String>,
    /// File the rule came from.
    pub file: String,
    re: Regex,
    has_zone: bool,
}

/// A reply-catalog problem, naming the file, the entry and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ReplyError {
    /// File (or embedded name, or directory) that holds the problem.
    pub file: String,
    /// The entry, e.g. `reply "microsoft-s3150"` or `receiver "google"`.
    pub entry: Option<String>,
    /// The key inside the entry (`pattern`, `examples[2]`…).
    pub key: Option<String>,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(e) = &self.entry {
            write!(f, ": {e}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ", key `{k}`")?;
        }
        write!(f, ": {}", self.msg)
    }
}

impl ReplyError {
    fn new(file: &str, entry: Option<String>, key: Option<&str>, msg: impl Into<String>) -> Self {
        ReplyError {
            file: file.to_string(),
            entry,
            key: key.map(str::to_string),
            msg: msg.into(),
        }
    }
}

/// The result of classifying one reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    /// Id of the rule that matched.
    pub rule: String,
    /// Receiver id: the rule's own, else the first receiver whose relay
    /// pattern matches the relay host.
    pub receiver: Option<String>,
    /// What the reply means. A rule meaning `ip-blocklist` whose list turns out
    /// to be a domain list (`blocked using dbl.spamhaus.org`) reports
    /// `domain-reputation`.
    pub meaning: ReplyMeaning,
    /// The DNSBL catalog id the reply names (only ids present in the catalog
    /// passed to [`ReplyCatalog::classify`]).
    pub list: Option<String>,
    /// The DNS zone the reply names, as written (lower-cased).
    pub zone: Option<String>,
    /// Where the matched reply is documented or was seen.
    pub source: String,
}

#[cfg(test)]
thread_local! {
    /// How many times this thread parsed the shipped rules (see the same
    /// counter in `catalog`).
    pub static SHIPPED_PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The set of receivers and reply rules, in matching order.
#[derive(Debug, Clone)]
pub struct ReplyCatalog {
    receivers: Vec<Receiver>,
    rules: Vec<ReplyRule>,
    set: RegexSet,
}

impl Default for ReplyCatalog {
    fn default() -> Self {
        ReplyCatalog {
            receivers: Vec::new(),
            rules: Vec::new(),
            set: RegexSet::empty(),
        }
    }
}

/// Upper bound for the compiled pattern set; the shipped set needs a small
/// fraction of it, and a runaway user pattern fails at load, not at run time.
const SET_SIZE_LIMIT: usize = 64 << 20;

impl ReplyCatalog {
    /// The receivers and rules shipped with rblwatch (embedded at build time).
    pub fn shipped() -> Result<Self, ReplyError> {
        #[cfg(test)]
        SHIPPED_PARSES.with(|n| n.set(n.get() + 1));
        Self::from_files(shipped::FILES)
    }

    /// A catalog from `(file name, TOML text)` pairs, tried in the given order
    /// (pure: no file system access). An id defined twice is an error.
    pub fn from_files(files: &[(&str, &str)]) -> Result<Self, ReplyError> {
        let mut receivers: Vec<Receiver> = Vec::new();
        let mut rules: Vec<ReplyRule> = Vec::new();
        for (name, text) in files {
            let (rcv, rls) = parse_file(name, text)?;
            for r in rcv {
                if let Some(prev) = receivers.iter().find(|p| p.id == r.id) {
                    return Err(ReplyError::new(
                        name,
                        Some(format!("receiver {:?}", r.id)),
                        Some("id"),
                        format!("also defined in {}", prev.file),
                    ));
                }
                receivers.push(r);
            }
            for r in rls {
                if let Some(prev) = rules.iter().find(|p| p.id == r.id) {
                    return Err(ReplyError::new(
                        name,
                        Some(format!("reply {:?}", r.id)),
                        Some("id"),
                        format!("also defined in {}", prev.file),
                    ));
                }
                rules.push(r);
            }
        }
        Self::assemble(receivers, rules)
    }

    /// Adds every `*.toml` in `dir` (sorted by name). A receiver or rule with
    /// an existing id replaces it in place; new ones are tried *before* the
    /// shipped ones, so a local rule can override a generic one. Returns the
    /// ids replaced (`receiver:<id>` / `reply:<id>`). On error nothing changes.
    pub fn extend_from_dir(&mut self, dir: &Path) -> Result<Vec<String>, ReplyError> {
        let dname = dir.display().to_string();
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| {
                ReplyError::new(
                    &dname,
                    None,
                    None,
                    format!("cannot read reply directory: {e}"),
                )
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut files = Vec::new();
        for p in paths {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(&p)
                .map_err(|e| ReplyError::new(&name, None, None, e.to_string()))?;
            files.push((name, text));
        }
        let mut receivers = self.receivers.clone();
        let mut rules = self.rules.clone();
        let (mut new_receivers, mut new_rules) = (Vec::new(), Vec::new());
        let mut replaced = Vec::new();
        for (name, text) in &files {
            let (rcv, rls) = parse_file(name, text)?;
            for r in rcv {
                if new_receivers.iter().any(|p: &Receiver| p.id == r.id) {
                    return Err(dup_in_dir(name, "receiver", &r.id));
                }
                if let Some(slot) = receivers.iter_mut().find(|p| p.id == r.id) {
                    replaced.push(format!("receiver:{}", r.id));
                    *slot = r;
                } else {
                    new_receivers.push(r);
                }
            }
            for r in rls {
                if new_rules.iter().any(|p: &ReplyRule| p.id == r.id) {
                    return Err(dup_in_dir(name, "reply", &r.id));
                }
                if let Some(slot) = rules.iter_mut().find(|p| p.id == r.id) {
                    replaced.push(format!("reply:{}", r.id));
                    *slot = r;
                } else {
                    new_rules.push(r);
                }
            }
        }
        new_receivers.extend(receivers);
        new_rules.extend(rules);
        *self = Self::assemble(new_receivers, new_rules)?;
        Ok(replaced)
    }

    /// Checks that every `list` a rule names exists in the DNSBL catalog.
    pub fn check_lists(&self, lists: &Catalog) -> Result<(), ReplyError> {
        for r in &self.rules {
            if let Some(id) = &r.list {
                if lists.get(id).is_none() {
                    return Err(ReplyError::new(
                        &r.file,
                        Some(format!("reply {:?}", r.id)),
                        Some("list"),
                        format!("{id:?} is not a list of the DNSBL catalog"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Classifies one remote reply (pure). `relay_host` is the MX the reply
    /// came from, used to attribute generic replies to a receiver; `lists` maps
    /// a zone named in the reply to a DNSBL catalog id. `None` when no rule
    /// matches (the caller counts it as "other").
    pub fn classify(
        &self,
        reply: &str,
        relay_host: Option<&str>,
        lists: &Catalog,
    ) -> Option<Classification> {
        let text = normalize_reply(reply);
        let matched = self.set.matches(&text);
        let mut indices = matched.iter();
        let first = indices.next()?;
        let rule = self.rules.get(first)?;
        let (mut list, mut zone) = rule.resolve(&text, lists);
        let names_a_list = |m: ReplyMeaning| {
            matches!(
                m,
                ReplyMeaning::IpBlocklist | ReplyMeaning::DomainReputation
            )
        };
        // A reply may name its list in a second way that a later rule knows
        // ("blocked using <private mirror>… see https://www.spamhaus.org/…").
        if list.is_none() && names_a_list(rule.meaning) {
            for other in indices.filter_map(|i| self.rules.get(i)) {
                if !names_a_list(other.meaning) {
                    continue;
                }
                let (l, z) = other.resolve(&text, lists);
                if l.is_some() {
                    list = l;
                    zone = zone.or(z);
                    break;
                }
            }
        }
        let mut meaning = rule.meaning;
        if meaning == ReplyMeaning::IpBlocklist && list.is_some_and(|l| l.kind == ListKind::Domain)
        {
            meaning = ReplyMeaning::DomainReputation;
        }
        let receiver = rule.receiver.clone().or_else(|| {
            relay_host
                .and_then(|h| self.receiver_for_relay(h))
                .map(|r| r.id.clone())
        });
        Some(Classification {
            rule: rule.id.clone(),
            receiver,
            meaning,
            list: list.map(|l| l.id.clone()),
            zone,
            source: rule.source.clone(),
        })
    }

    /// The first receiver whose relay patterns match `host`.
    pub fn receiver_for_relay(&self, host: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.matches_relay(host))
    }

    /// A receiver by id.
    pub fn receiver(&self, id: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.id == id)
    }

    /// A rule by id.
    pub fn rule(&self, id: &str) -> Option<&ReplyRule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// All receivers, in attribution order.
    pub fn receivers(&self) -> &[Receiver] {
        &self.receivers
    }

    /// All rules, in matching order.
    pub fn rules(&self) -> &[ReplyRule] {
        &self.rules
    }

    /// Checks cross-references and compiles the pattern set.
    fn assemble(receivers: Vec<Receiver>, rules: Vec<ReplyRule>) -> Result<Self, ReplyError> {
        for r in &rules {
            if let Some(rcv) = &r.receiver {
                if !receivers.iter().any(|x| &x.id == rcv) {
                    return Err(ReplyError::new(
                        &r.file,
                        Some(format!("reply {:?}", r.id)),
                        Some("receiver"),
                        format!("no receiver with id {rcv:?} is defined"),
                    ));
                }
            }
        }
        let set = RegexSetBuilder::new(rules.iter().map(|r| r.pattern.as_str()))
            .size_limit(SET_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                ReplyError::new(
                    "replies",
                    None,
                    Some("pattern"),
                    format!("the patterns together do not compile: {e}"),
                )
            })?;
        Ok(ReplyCatalog {
            receivers,
            rules,
            set,
        })
    }
}

fn dup_in_dir(file: &str, what: &str, id: &str) -> ReplyError {
    ReplyError::new(
        file,
        Some(format!("{what} {id:?}")),
        Some("id"),
        "defined twice in the reply directory",
    )
}

impl ReplyRule {
    /// The list and zone this rule finds in `text` (already normalised).
    fn resolve<'c>(&self, text: &str, lists: &'c Catalog) -> (Option<&'c ListDef>, Option<String>) {
        let zone = if self.has_zone {
            self.re
                .captures(text)
                .and_then(|c| c.name("zone"))
                .map(|m| clean_zone(m.as_str()))
                .filter(|z| !z.is_empty())
        } else {
            None
        };
        let list = match &self.list {
            Some(id) => lists.get(id),
            None => zone.as_deref().and_then(|z| list_for_zone(lists, z)),
        };
        (list, zone)
    }
}

fn clean_zone(z: &str) -> String {
    z.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_ascii_lowercase()
}

/// The catalog list a reply's zone names (pure). Tried in order: the zone
/// itself; a name inside a list's zone (the full query name); a key-template
/// variant (`KEY.zen.dq.spamhaus.net`); a parent of list zones
/// (`spamhaus.org`); a sibling under the same operator domain
/// (`sbl-xbl.spamhaus.org`). Among several candidates, an operating,
/// enabled-by-default IP list wins, then the smallest id.
pub fn list_for_zone<'c>(lists: &'c Catalog, zone: &str) -> Option<&'c ListDef> {
    let z = zone.trim().trim_end_matches('.').to_ascii_lowercase();
    if z.is_empty() || !z.contains('.') {
        return None;
    }
    if let Some(l) = lists.iter().find(|l| l.zone == z) {
        return Some(l);
    }
    let child = lists
        .iter()
        .filter(|l| z.ends_with(&format!(".{}", l.zone)))
        .max_by_key(|l| l.zone.len());
    if child.is_some() {
        return child;
    }
    let keyed = lists.iter().find(|l| {
        l.policy
            .key_template
            .as_deref()
            .and_then(|t| t.split_once("{key}"))
            .is_some_and(|(_, suffix)| {
                let bare = suffix.trim_start_matches('.');
                !bare.is_empty() && (z == bare || z.ends_with(&format!(".{bare}")))
            })
    });
    if keyed.is_some() {
        return keyed;
    }
    let parent = best(lists.iter().filter(|l| l.zone.ends_with(&format!(".{z}"))));
    if parent.is_some() {
        return parent;
    }
    let op = operator_domain(&z)?;
    best(
        lists
            .iter()
            .filter(|l| operator_domain(&l.zone) == Some(op)),
    )
}

/// The last two labels of a name with at least two.
fn operator_domain(name: &str) -> Option<&str> {
    let mut dots = name.rmatch_indices('.');
    dots.next()?;
    Some(match dots.next() {
        Some((i, _)) => &name[i + 1..],
        None => name,
    })
}

fn best<'c>(candidates: impl Iterator<Item = &'c ListDef>) -> Option<&'c ListDef> {
    candidates.min_by_key(|l| {
        (
            l.retired.is_some(),
            !l.enabled_by_default,
            l.kind == ListKind::Domain,
            l.id.clone(),
        )
    })
}

/// Normalises a remote reply before matching: literal `\n` / `\r\n` escapes
/// (as Exim logs multi-line replies) and runs of white space become one space,
/// and the repeated reply-code prefixes of a multi-line reply (`550-5.7.1`,
/// `554-`, as Postfix and Exim join the lines) are dropped after the first
/// line, so a pattern can match a sentence that the receiver wrapped.
pub fn normalize_reply(reply: &str) -> String {
    let unescaped = reply.replace("\\r\\n", " ").replace("\\n", " ");
    let mut tokens = unescaped.split_whitespace().peekable();
    let mut out = String::with_capacity(reply.len());
    let Some(first) = tokens.next() else {
        return out;
    };
    out.push_str(first);
    let code = reply_code(first);
    let mut esc: Option<&str> = None;
    if let Some(c) = code {
        match first.get(4..) {
            Some(rest) if is_enhanced(rest) => esc = Some(rest),
            _ => {
                if first.len() == 3 {
                    if let Some(next) = tokens.peek().copied().filter(|t| is_enhanced(t)) {
                        esc = Some(next);
                        out.push(' ');
                        out.push_str(next);
                        tokens.next();
                    }
                }
            }
        }
        let mut skip_esc = false;
        for tok in tokens {
            let was_skip = std::mem::take(&mut skip_esc);
            if tok == c {
                skip_esc = true;
                continue;
            }
            if was_skip && Some(tok) == esc {
                continue;
            }
            if let Some(rest) = tok.strip_prefix(c).and_then(|r| r.strip_prefix('-')) {
                if rest.is_empty() {
                    skip_esc = true;
                    continue;
                }
                if Some(rest) == esc || is_enhanced(rest) {
                    continue;
                }
                push_word(&mut out, rest);
                continue;
            }
            push_word(&mut out, tok);
        }
    } else {
        for tok in tokens {
            push_word(&mut out, tok);
        }
    }
    out
}

fn push_word(out: &mut String, w: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(w);
}

/// `550` of `550`, `550-…` or `550 …`.
fn reply_code(tok: &str) -> Option<&str> {
    let code = tok.get(..3)?;
    let ok = code.bytes().all(|b| b.is_ascii_digit())
        && matches!(code.as_bytes().first(), Some(b'2'..=b'5'))
        && matches!(tok.as_bytes().get(3), None | Some(b'-'));
    ok.then_some(code)
}

/// An RFC 3463 enhanced status code (`5.7.1`, `4.7.650`).
fn is_enhanced(s: &str) -> bool {
    let mut parts = s.split('.');
    let class_ok = parts.next().is_some_and(|p| matches!(p, "2" | "4" | "5"));
    let rest: Vec<&str> = parts.collect();
    class_ok
        && rest.len() == 2
        && rest
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses and checks one reply file (pure: text in, entries out).
fn parse_file(file: &str, text: &str) -> Result<(Vec<Receiver>, Vec<ReplyRule>), ReplyError> {
    let raw: raw::RawFile =
        toml::from_str(text).map_err(|e| ReplyError::new(file, None, None, e.to_string()))?;
    let receivers = raw
        .receiver
        .into_iter()
        .map(|r| receiver_from_raw(file, r))
        .collect::<Result<Vec<_>, _>>()?;
    let rules = raw
        .reply
        .into_iter()
        .map(|r| rule_from_raw(file, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((receivers, rules))
}

fn check_id(file: &str, what: &str, id: &str) -> Result<(), ReplyError> {
    let ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReplyError::new(
            file,
            Some(format!("{what} {id:?}")),
            Some("id"),
            "must be non-empty lower-case letters, digits and '-'",
        ))
    }
}

fn check_url(file: &str, entry: &str, key: &str, url: &str) -> Result<(), ReplyError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(ReplyError::new(
            file,
            Some(entry.to_string()),
            Some(key),
            format!("{url:?} is not an http(s) URL"),
        ))
    }
}

fn receiver_from_raw(file: &str, r: raw::RawReceiver) -> Result<Receiver, ReplyError> {
    check_id(file, "receiver", &r.id)?;
    let entry = format!("receiver {:?}", r.id);
    if r.name.trim().is_empty() {
        return Err(ReplyError::new(
            file,
            Some(entry),
            Some("name"),
            "must not be empty",
        ));
    }
    if let Some(u) = &r.sender_page {
        check_url(file, &entry, "sender_page", u)?;
    }
    let relay_re = r
        .relays
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Regex::new(p).map_err(|e| {
                ReplyError::new(
                    file,
                    Some(entry.clone()),
                    Some(&format!("relays[{i}]")),
                    e.to_string(),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Receiver {
        id: r.id,
        name: r.name,
        relays: r.relays,
        sender_page: r.sender_page,
        file: file.to_string(),
        relay_re,
    })
}

fn rule_from_raw(file: &str, r: raw::RawReply) -> Result<ReplyRule, ReplyError> {
    check_id(file, "reply", &r.id)?;
    let entry = format!("reply {:?}", r.id);
    let err = |key: &str, msg: String| ReplyError::new(file, Some(entry.clone()), Some(key), msg);
    let re = Regex::new(&r.pattern).map_err(|e| err("pattern", e.to_string()))?;
    let mut has_zone = false;
    for name in re.capture_names().flatten() {
        if name == "zone" {
            has_zone = true;
        } else {
            return Err(err(
                "pattern",
                format!("unknown named group {name:?} (only `zone` is used)"),
            ));
        }
    }
    if let Some(rcv) = &r.receiver {
        check_id(file, "receiver", rcv)
            .map_err(|_| err("receiver", format!("{rcv:?} is not a valid id")))?;
    }
    if let Some(list) = &r.list {
        check_id(file, "list", list)
            .map_err(|_| err("list", format!("{list:?} is not a valid list id")))?;
    }
    check_url(file, &entry, "source", &r.source)?;
    for (i, u) in r.refs.iter().enumerate() {
        check_url(file, &entry, &format!("refs[{i}]"), u)?;
    }
    if r.examples.is_empty() {
        return Err(err(
            "examples",
            "at least one real reply text is required".into(),
        ));
    }
    for (i, ex) in r.examples.iter().enumerate() {
        if !re.is_match(&normalize_reply(ex)) {
            return Err(err(
                &format!("examples[{i}]"),
                "the rule's own pattern does not match this example".into(),
            ));
        }
    }
    Ok(ReplyRule {
        id: r.id,
        receiver: r.receiver,
        pattern: r.pattern,
        meaning: r.meaning,
        list: r.list,
        note: r.note,
        source: r.source,
        refs: r.refs,
        examples: r.examples,
        file: file.to_string(),
        re,
        has_zone,
    })
}

#[cfg(test)]
mod tests;
