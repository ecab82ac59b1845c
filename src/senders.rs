//! Baselines and bursts per account and per class of outbound mail (pure).
//!
//! Each read of a log source tallies the ledger's facts ([`Tally`]): per
//! account (a SASL login, a local uid, a relay client) its messages, distinct
//! recipients and remote refusals (with the receivers that refused, as
//! evidence); per class its messages and destination domains. [`evaluate`]
//! adds the tally to a sliding window (the reads of the last `window`) and
//! compares each account and each automated class with its threshold:
//! `max(floor, factor × baseline)`, the baseline being a slow moving average
//! of the window's totals while calm. A burst raises `account_burst` or
//! `automated_burst` at the read that crosses it, so a leaked password is seen
//! within one read interval, and clears after `clear_after` calm reads.
//!
//! Memory is bounded twice. A read's tally keeps at most `max_accounts`
//! accounts with the Misra–Gries rule: when full, every count drops by one
//! and the zeros go, so any account sending more than 1/`max_accounts` of the
//! read's messages is always kept (a burst is never the account forgotten).
//! The state keeps at most `max_accounts` accounts; the calm ones seen
//! longest ago are evicted first, a bursting one never.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::mail::delivery::DeliveryStatus;
use crate::mail::ledger::{Class, Fact, Origin};

/// Distinct recipients counted per account and read at most.
pub const MAX_RCPTS_COUNTED: usize = 10_000;

/// Destination domains kept per class and read at most.
pub const MAX_DESTINATIONS: usize = 1_000;

/// Settings (`[senders]`).
#[derive(Debug, Clone, PartialEq)]
pub struct BurstConf {
    /// The window the thresholds apply to, in seconds.
    pub window: i64,
    /// An account bursts at this many messages in the window at least.
    pub account_messages: u64,
    /// … or this many distinct recipients.
    pub account_recipients: u64,
    /// An automated class (bounce, autoreply, report, forward) bursts at this many messages.
    pub automated_messages: u64,
    /// … and at least this many times its baseline.
    pub factor: f64,
    /// Calm reads before a burst clears.
    pub clear_after: u32,
    /// Accounts kept (in a read's tally and in the state).
    pub max_accounts: usize,
}

impl BurstConf {
    /// The thresholds of `[senders]`, over its window.
    pub fn of(s: &crate::config::SendersConf) -> Self {
        BurstConf {
            window: s.window.as_secs() as i64,
            account_messages: s.account_messages,
            account_recipients: s.account_recipients,
            automated_messages: s.automated_messages,
            factor: s.factor,
            clear_after: s.clear_after,
            max_accounts: s.max_accounts,
        }
    }
}

impl Default for BurstConf {
    fn default() -> Self {
        BurstConf {
            window: 600,
            account_messages: 300,
            account_recipients: 200,
            automated_messages: 300,
            factor: 10.0,
            clear_after: 3,
            max_accounts: 10_000,
        }
    }
}

/// One account's figures in a read.
#[derive(Debug, Clone, Default)]
pub struct AccountTally {
    /// Origin (sasl, local, relay).
    pub origin: Option<Origin>,
    /// Messages queued.
    pub messages: u64,
    recipients: HashSet<String>,
    /// Remote refusals (bounced or deferred with a remote reply).
    pub refusals: u64,
    /// Refusals by receiver (`google`, or the relay host), with one reply each.
    pub refused_by: BTreeMap<String, (u64, String)>,
    /// Misra–Gries weight (messages plus deliveries): what eviction uses.
    weight: u64,
}

/// One class's figures in a read.
#[derive(Debug, Clone, Default)]
pub struct ClassTally {
    /// Messages queued.
    pub messages: u64,
    /// Remote deliveries by destination domain.
    pub destinations: HashMap<String, u64>,
}

/// What one read of a log saw.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Per account (`origin:name`).
    pub accounts: HashMap<String, AccountTally>,
    /// Per class.
    pub classes: BTreeMap<Class, ClassTally>,
    cap: usize,
}

/// The account key of a fact: `sasl:alice`, `local:uid 33`, `relay:10.0.0.5`.
pub fn account_key(origin: Origin, account: &str) -> Option<String> {
    matches!(origin, Origin::Sasl | Origin::Local | Origin::Relay)
        .then(|| format!("{}:{account}", origin.as_str()))
}

impl Tally {
    /// An empty tally keeping at most `max_accounts` accounts.
    pub fn new(max_accounts: usize) -> Self {
        Tally {
            cap: max_accounts.max(1),
            ..Default::default()
        }
    }

    fn account(&mut self, key: &str) -> Option<&mut AccountTally> {
        if !self.accounts.contains_key(key) && self.accounts.len() >= self.cap {
            // Misra–Gries: everyone loses one, the zeros go; the newcomer is dropped this time
            self.accounts.retain(|_, a| {
                a.weight = a.weight.saturating_sub(1);
                a.weight > 0
            });
            return None;
        }
        let a = self.accounts.entry(key.to_string()).or_default();
        a.weight += 1;
        Some(a)
    }

    /// Adds a fact; `refusal` is the receiver a remote refusal came from
    /// (from the reply catalog, or the relay's host), `None` when the result
    /// is no refusal about us.
    pub fn add(&mut self, fact: &Fact, refusal: Option<&str>) {
        match fact {
            Fact::Queued {
                origin,
                account,
                class,
                ..
            } => {
                self.classes.entry(*class).or_default().messages += 1;
                if let Some(k) = account_key(*origin, account) {
                    if let Some(a) = self.account(&k) {
                        a.origin = Some(*origin);
                        a.messages += 1;
                    }
                }
            }
            Fact::Delivery {
                origin,
                account,
                class,
                remote,
                result,
            } => {
                if *remote {
                    let c = self.classes.entry(*class).or_default();
                    let d = crate::mail::ledger::domain_of(&result.recipient);
                    if c.destinations.len() < MAX_DESTINATIONS || c.destinations.contains_key(&d) {
                        *c.destinations.entry(d).or_default() += 1;
                    }
                }
                if let Some(k) = account_key(*origin, account) {
                    if let Some(a) = self.account(&k) {
                        a.origin = Some(*origin);
                        if a.recipients.len() < MAX_RCPTS_COUNTED {
                            a.recipients.insert(result.recipient.to_ascii_lowercase());
                        }
                        let refused = matches!(
                            result.status,
                            DeliveryStatus::Bounced | DeliveryStatus::Deferred
                        ) && *remote;
                        if let (true, Some(who)) = (refused, refusal) {
                            a.refusals += 1;
                            let e = a
                                .refused_by
                                .entry(who.to_string())
                                .or_insert((0, String::new()));
                            e.0 += 1;
                            if e.1.is_empty() {
                                e.1 = result.reply.clone().unwrap_or_default();
                            }
                        }
                    }
                }
            }
            Fact::Done(_) => {}
        }
    }
}

/// One read's figures of an account, kept for the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// When read.
    pub at: i64,
    /// Messages.
    pub messages: u64,
    /// Distinct recipients (within the read).
    pub recipients: u64,
    /// Remote refusals.
    pub refusals: u64,
}

/// An account's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountState {
    /// Origin.
    pub origin: Origin,
    /// The name (login, `uid 33`, client IP).
    pub name: String,
    /// Reads within the window.
    pub buckets: Vec<Bucket>,
    /// Moving average of the window's messages while calm.
    pub base_messages: f64,
    /// … and of its recipients.
    pub base_recipients: f64,
    /// Bursting now.
    pub bursting: bool,
    /// Calm reads since the burst was last over its threshold.
    pub calm: u32,
    /// Last read that saw it.
    pub last_seen: i64,
    /// Messages since it was first seen.
    pub total_messages: u64,
    /// Refusals by receiver within the window (with a reply each), the evidence.
    pub refused_by: BTreeMap<String, (u64, String)>,
}

impl AccountState {
    /// Messages, recipients and refusals within the window.
    pub fn window(&self) -> (u64, u64, u64) {
        self.buckets.iter().fold((0, 0, 0), |(m, r, f), b| {
            (m + b.messages, r + b.recipients, f + b.refusals)
        })
    }
}

/// A class's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassState {
    /// `(at, messages)` of the reads within the window.
    pub buckets: Vec<(i64, u64)>,
    /// Moving average of the window's messages while calm.
    pub base: f64,
    /// Bursting now.
    pub bursting: bool,
    /// Calm reads since.
    pub calm: u32,
    /// Messages since first seen.
    pub total: u64,
    /// Remote deliveries by destination within the window (top ones kept).
    pub destinations: BTreeMap<String, u64>,
}

/// Everything kept between reads (stored as JSON per source).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SendersState {
    /// Accounts by key (`sasl:alice`).
    pub accounts: BTreeMap<String, AccountState>,
    /// Classes.
    pub classes: BTreeMap<Class, ClassState>,
    /// Accounts evicted over the cap since start.
    pub evicted: u64,
}

/// A burst starting or ending.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BurstChange {
    /// An account over its threshold.
    AccountBurst {
        /// `sasl:alice`.
        key: String,
        /// Origin.
        origin: Origin,
        /// Login, uid or client IP.
        account: String,
        /// Messages in the window.
        messages: u64,
        /// Distinct recipients in the window.
        recipients: u64,
        /// Remote refusals in the window.
        refusals: u64,
        /// The thresholds crossed (`messages >= 300`…).
        triggers: Vec<String>,
        /// Refusals by receiver with a reply each: the evidence.
        refused_by: Vec<(String, u64, String)>,
    },
    /// The account is calm again.
    AccountBurstCleared {
        /// Key.
        key: String,
        /// Origin.
        origin: Origin,
        /// Account.
        account: String,
    },
    /// An automated class over its threshold.
    AutomatedBurst {
        /// The class.
        class: Class,
        /// Messages in the window.
        messages: u64,
        /// The threshold.
        threshold: u64,
        /// Top destination domains with their deliveries.
        top_destinations: Vec<(String, u64)>,
    },
    /// The class is calm again.
    AutomatedBurstCleared {
        /// The class.
        class: Class,
    },
}

/// The bursting accounts of every source as the headline verdict names them
/// (busiest first, at most 5): `sasl account "alice" on mx (500 messages to
/// 1000 recipients in the window)`. The name is quoted: it is attacker-chosen.
pub fn bursting(states: &[(String, SendersState)]) -> Vec<String> {
    let mut v: Vec<(u64, String)> = states
        .iter()
        .flat_map(|(src, s)| {
            s.accounts.values().filter(|a| a.bursting).map(move |a| {
                let (m, r, _) = a.window();
                (
                    m,
                    format!(
                        "{} account {:?} on {src} ({m} messages to {r} recipients in the window)",
                        a.origin.as_str(),
                        a.name
                    ),
                )
            })
        })
        .collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    v.into_iter().take(5).map(|(_, s)| s).collect()
}

const ALPHA: f64 = 0.05;

/// Adds one read to the state and finds the bursts that start or end (pure).
pub fn evaluate(
    conf: &BurstConf,
    mut st: SendersState,
    tally: &Tally,
    at: i64,
) -> (SendersState, Vec<BurstChange>) {
    let mut changes = Vec::new();
    let since = at - conf.window;
    add_accounts(&mut st, tally, at);
    for (key, a) in st.accounts.iter_mut() {
        if let Some(c) = judge_account(conf, key, a, since) {
            changes.push(c);
        }
    }
    evict_calm(conf, &mut st);
    for class in Class::ALL {
        let c = st.classes.entry(class).or_default();
        add_class(c, tally.classes.get(&class), at, since);
        if class.automated() {
            if let Some(ch) = judge_class(conf, class, c) {
                changes.push(ch);
            }
        }
    }
    (st, changes)
}

/// Where a burst stands after one more window: the one hysteresis of
/// accounts and classes alike. Over the threshold starts a burst; a burst
/// clears after `clear_after` windows in a row under half the threshold;
/// the baseline learns only from calm windows.
enum Step {
    Started,
    Cleared,
    Holding,
    Calm,
}

fn step(
    bursting: &mut bool,
    calm: &mut u32,
    over: bool,
    under_half: bool,
    clear_after: u32,
) -> Step {
    if over {
        *calm = 0;
        if *bursting {
            return Step::Holding;
        }
        *bursting = true;
        return Step::Started;
    }
    if !*bursting {
        return Step::Calm;
    }
    *calm = if under_half { *calm + 1 } else { 0 };
    if *calm >= clear_after {
        *bursting = false;
        *calm = 0;
        return Step::Cleared;
    }
    Step::Holding
}

/// The read's tallies added to each account's window.
fn add_accounts(st: &mut SendersState, tally: &Tally, at: i64) {
    for (key, t) in &tally.accounts {
        let Some(origin) = t.origin else { continue };
        let name = key.split_once(':').map_or("", |(_, n)| n).to_string();
        let a = st
            .accounts
            .entry(key.clone())
            .or_insert_with(|| AccountState {
                origin,
                name,
                buckets: Vec::new(),
                base_messages: 0.0,
                base_recipients: 0.0,
                bursting: false,
                calm: 0,
                last_seen: at,
                total_messages: 0,
                refused_by: BTreeMap::new(),
            });
        a.last_seen = at;
        a.total_messages += t.messages;
        a.buckets.push(Bucket {
            at,
            messages: t.messages,
            recipients: t.recipients.len() as u64,
            refusals: t.refusals,
        });
        for (who, (n, reply)) in &t.refused_by {
            let e = a
                .refused_by
                .entry(who.clone())
                .or_insert((0, reply.clone()));
            e.0 += n;
        }
    }
}

/// One account's window judged against its thresholds (the configured floor
/// or `factor` times its baseline, for messages and for recipients).
fn judge_account(
    conf: &BurstConf,
    key: &str,
    a: &mut AccountState,
    since: i64,
) -> Option<BurstChange> {
    a.buckets.retain(|b| b.at > since);
    if a.buckets.is_empty() {
        a.refused_by.clear();
    }
    let (m, r, f) = a.window();
    let mt = (conf.factor * a.base_messages).max(conf.account_messages as f64);
    let rt = (conf.factor * a.base_recipients).max(conf.account_recipients as f64);
    let mut triggers = Vec::new();
    if m as f64 >= mt {
        triggers.push(format!(
            "{m} messages in {}s (threshold {mt:.0})",
            conf.window
        ));
    }
    if r as f64 >= rt {
        triggers.push(format!(
            "{r} recipients in {}s (threshold {rt:.0})",
            conf.window
        ));
    }
    let under_half = (m as f64) < mt / 2.0 && (r as f64) < rt / 2.0;
    match step(
        &mut a.bursting,
        &mut a.calm,
        !triggers.is_empty(),
        under_half,
        conf.clear_after,
    ) {
        Step::Started => {
            let mut refused_by: Vec<(String, u64, String)> = a
                .refused_by
                .iter()
                .map(|(w, (n, reply))| (w.clone(), *n, reply.clone()))
                .collect();
            refused_by.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
            refused_by.truncate(5);
            Some(BurstChange::AccountBurst {
                key: key.to_string(),
                origin: a.origin,
                account: a.name.clone(),
                messages: m,
                recipients: r,
                refusals: f,
                triggers,
                refused_by,
            })
        }
        Step::Cleared => Some(BurstChange::AccountBurstCleared {
            key: key.to_string(),
            origin: a.origin,
            account: a.name.clone(),
        }),
        Step::Holding => None,
        Step::Calm => {
            a.base_messages += ALPHA * (m as f64 - a.base_messages);
            a.base_recipients += ALPHA * (r as f64 - a.base_recipients);
            None
        }
    }
}

/// The cap: the calm accounts seen longest ago go first, a bursting one never.
fn evict_calm(conf: &BurstConf, st: &mut SendersState) {
    if st.accounts.len() <= conf.max_accounts {
        return;
    }
    let mut calm: Vec<(i64, String)> = st
        .accounts
        .iter()
        .filter(|(_, a)| !a.bursting)
        .map(|(k, a)| (a.last_seen, k.clone()))
        .collect();
    calm.sort();
    let over = st.accounts.len() - conf.max_accounts;
    for (_, k) in calm.into_iter().take(over) {
        st.accounts.remove(&k);
        st.evicted += 1;
    }
}

/// The read's tally of one class added to its window (top 50 destinations kept).
fn add_class(c: &mut ClassState, t: Option<&ClassTally>, at: i64, since: i64) {
    if let Some(t) = t {
        c.total += t.messages;
        c.buckets.push((at, t.messages));
        for (d, n) in &t.destinations {
            *c.destinations.entry(d.clone()).or_default() += n;
        }
    }
    c.buckets.retain(|(t, _)| *t > since);
    if c.buckets.is_empty() {
        c.destinations.clear();
    }
    if c.destinations.len() > 50 {
        let mut v: Vec<_> = std::mem::take(&mut c.destinations).into_iter().collect();
        v.sort_by_key(|d| std::cmp::Reverse(d.1));
        v.truncate(50);
        c.destinations = v.into_iter().collect();
    }
}

/// One automated class's window judged against its threshold.
fn judge_class(conf: &BurstConf, class: Class, c: &mut ClassState) -> Option<BurstChange> {
    let m: u64 = c.buckets.iter().map(|(_, n)| n).sum();
    let thr = (conf.factor * c.base).max(conf.automated_messages as f64);
    let under_half = (m as f64) < thr / 2.0;
    match step(
        &mut c.bursting,
        &mut c.calm,
        m as f64 >= thr,
        under_half,
        conf.clear_after,
    ) {
        Step::Started => {
            let mut top: Vec<(String, u64)> = c
                .destinations
                .iter()
                .map(|(d, n)| (d.clone(), *n))
                .collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            top.truncate(5);
            Some(BurstChange::AutomatedBurst {
                class,
                messages: m,
                threshold: thr as u64,
                top_destinations: top,
            })
        }
        Step::Cleared => Some(BurstChange::AutomatedBurstCleared { class }),
        Step::Holding => None,
        Step::Calm => {
            c.base += ALPHA * (m as f64 - c.base);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::delivery::DeliveryResult;

    fn queued(origin: Origin, account: &str, class: Class) -> Fact {
        Fact::Queued {
            queue_id: "Q".into(),
            origin,
            account: account.into(),
            class,
        }
    }

    fn delivery(account: &str, rcpt: &str, status: DeliveryStatus, class: Class) -> Fact {
        Fact::Delivery {
            origin: Origin::Sasl,
            account: account.into(),
            class,
            remote: true,
            result: DeliveryResult {
                queue_id: "Q".into(),
                recipient: rcpt.into(),
                relay_host: Some("gmail-smtp-in.l.google.com".into()),
                relay_ip: None,
                dsn: Some("5.7.1".into()),
                status,
                reply: Some("550-5.7.1 likely unsolicited mail".into()),
                stage: Some("end of DATA".into()),
            },
        }
    }

    fn conf() -> BurstConf {
        BurstConf {
            window: 60,
            account_messages: 100,
            account_recipients: 50,
            automated_messages: 100,
            factor: 10.0,
            clear_after: 2,
            max_accounts: 100,
        }
    }

    /// A leaked password: one account sends 500 messages to many recipients
    /// within a minute while another sends its usual few; the first bursts
    /// with Gmail's refusals as evidence, the second does not, and the burst
    /// clears after two calm reads.
    #[test]
    fn a_leaked_account_bursts_with_refusals_as_evidence_and_clears() {
        let c = conf();
        let mut st = SendersState::default();
        // calm history
        for i in 0..10 {
            let mut t = Tally::new(c.max_accounts);
            for _ in 0..3 {
                t.add(&queued(Origin::Sasl, "alice", Class::User), None);
                t.add(&queued(Origin::Sasl, "bob", Class::User), None);
            }
            let (s, ch) = evaluate(&c, st, &t, i * 60);
            assert!(ch.is_empty());
            st = s;
        }
        let mut t = Tally::new(c.max_accounts);
        for i in 0..500 {
            t.add(&queued(Origin::Sasl, "alice", Class::User), None);
            let f = delivery(
                "alice",
                &format!("r{i}@gmail.com"),
                DeliveryStatus::Bounced,
                Class::User,
            );
            t.add(&f, (i < 40).then_some("google"));
        }
        t.add(&queued(Origin::Sasl, "bob", Class::User), None);
        let (s, ch) = evaluate(&c, st, &t, 700);
        st = s;
        assert_eq!(ch.len(), 1, "{ch:?}");
        let BurstChange::AccountBurst {
            account,
            messages,
            recipients,
            refusals,
            refused_by,
            ..
        } = &ch[0]
        else {
            panic!("{ch:?}")
        };
        assert_eq!(
            (account.as_str(), *messages, *recipients, *refusals),
            ("alice", 500, 500, 40)
        );
        assert_eq!(refused_by[0].0, "google");
        assert_eq!(refused_by[0].1, 40);
        // still over: no repeat
        let (s, ch) = evaluate(&c, st, &Tally::new(100), 710);
        assert!(ch.is_empty());
        st = s;
        // the window passes: two calm reads clear it
        let (s, ch) = evaluate(&c, st, &Tally::new(100), 800);
        assert!(ch.is_empty());
        let (s, ch) = evaluate(&c, s, &Tally::new(100), 860);
        assert!(
            matches!(&ch[..], [BurstChange::AccountBurstCleared { account, .. }] if account == "alice")
        );
        assert!(!s.accounts["sasl:alice"].bursting);
    }

    /// A report storm to one destination is an automated burst naming it.
    #[test]
    fn a_report_storm_is_an_automated_burst_with_top_destinations() {
        let c = conf();
        let mut t = Tally::new(c.max_accounts);
        for i in 0..150 {
            t.add(
                &Fact::Queued {
                    queue_id: format!("Q{i}"),
                    origin: Origin::Local,
                    account: "uid 110".into(),
                    class: Class::Report,
                },
                None,
            );
            let mut d = delivery("x", "rua@spammer.test", DeliveryStatus::Sent, Class::Report);
            if let Fact::Delivery { origin, .. } = &mut d {
                *origin = Origin::Mta;
            }
            t.add(&d, None);
        }
        let (_, ch) = evaluate(&c, SendersState::default(), &t, 0);
        assert!(ch.iter().any(|x| matches!(x, BurstChange::AutomatedBurst { class: Class::Report, messages: 150, top_destinations, .. } if top_destinations[0] == ("spammer.test".to_string(), 150))), "{ch:?}");
        // the local account that sent them bursts too
        assert!(ch
            .iter()
            .any(|x| matches!(x, BurstChange::AccountBurst { key, .. } if key == "local:uid 110")));
    }

    /// 100,000 accounts of one message each through a tally of 100: memory
    /// is the cap, and the one account sending 2,000 is still there.
    #[test]
    fn the_tally_and_the_state_are_capped_and_a_heavy_account_survives() {
        let c = conf();
        let mut t = Tally::new(c.max_accounts);
        for i in 0..100_000 {
            t.add(
                &queued(Origin::Sasl, &format!("user{i}"), Class::User),
                None,
            );
            if i % 50 == 0 {
                t.add(&queued(Origin::Sasl, "leaked", Class::User), None);
            }
        }
        assert!(t.accounts.len() <= 100);
        assert!(t.accounts["sasl:leaked"].messages > 1000);
        let mut st = SendersState::default();
        for round in 0..5 {
            let mut t = Tally::new(1000);
            for i in 0..1000 {
                t.add(
                    &queued(Origin::Sasl, &format!("u{round}-{i}"), Class::User),
                    None,
                );
            }
            st = evaluate(&c, st, &t, round * 10).0;
            assert!(st.accounts.len() <= c.max_accounts);
        }
        assert_eq!(st.evicted, 4900);
    }
}
