//! Small named state values (log positions, spike and probe states, cursors)
//! as JSON, under the keys of one enum, [`StateKey`]: every reader and writer
//! names a key through it, so a key is spelled in one place.

use std::net::Ipv4Addr;

use rusqlite::{params, Connection, OptionalExtension};

use super::{json, Result};
use crate::config::SpikeKind;
use serde::Serialize;

/// A key of the `state` table. The spellings ([`StateKey::spell`]) are the
/// keys stored since they were introduced: a changed one would lose that
/// state at the upgrade (a spike raised twice, a hook cursor back at zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateKey {
    /// `resolver:health`: the resolver's last health.
    ResolverHealth,
    /// `health:announced`: the lists whose ill health was announced.
    HealthAnnounced,
    /// `budget:counts`: queries per list today.
    BudgetCounts,
    /// `budget:swept`: when each list was last swept.
    BudgetSwept,
    /// `impact:assessment`: the last joined verdict.
    ImpactAssessment,
    /// `impact:active`: the impact conditions raised.
    ImpactActive,
    /// `hooks:cursor`: the event every hook has got past.
    HooksCursor,
    /// `hooks:cursor:<hook>`: the event one hook has got past.
    HookCursor(String),
    /// `hook:<hook>`: the conditions a hook's remediation is in place for.
    HookConditions(String),
    /// `alerts:cursor`: the event the alert worker has got past.
    AlertsCursor,
    /// `alert:<channel>:failing`: the channel's `alert_failed` is raised.
    AlertFailing(String),
    /// `logpos:<source>`: how far a log source has been read.
    LogPosition(String),
    /// `source:<source>:failing`: the source's `source_failed` is raised.
    SourceFailing(String),
    /// `spike:<metric>:<kind>`: a spike rule's state.
    Spike {
        /// The metric (`source.name`).
        metric: String,
        /// Which events the rule raises.
        kind: SpikeKind,
    },
    /// `probe:<domain>:<server>`: the backscatter probe found the server vulnerable.
    Probe {
        /// The probed domain.
        domain: String,
        /// The probed server.
        server: String,
    },
    /// `audit:<name>`: the findings an audit has raised.
    Audit(String),
    /// `discover:targets`: the sending IPs `[discover]` added to the sweeps.
    Discovered,
    /// `ranges:last`: each range target's last check per list (sub-ranges, /64s asked).
    Ranges,
    /// `feed:<feed>:failing`: the feed's `feed_failed` is raised.
    FeedFailing(String),
    /// `sender:<ip>:<domain>`: the IP's `unmonitored_sender` was announced for the domain.
    SenderAnnounced {
        /// The sending IP.
        ip: String,
        /// The monitored domain it sends for.
        domain: String,
    },
    /// `gmail_spam:<domain>`: the domain's Gmail spam-rate standing last announced.
    GmailSpam(String),
    /// `postmaster:<feed>:last`: how the feed's last read went (when, and why it failed).
    PostmasterRead(String),
    /// `ledger:<source>`: a log source's outbound ledger tallies per account
    /// and class, and their bursts (issue 23).
    Ledger(String),
    /// `unknown_code:<list>:<code>`: when an undocumented code was first announced.
    UnknownCode {
        /// List id.
        list: String,
        /// The code.
        code: Ipv4Addr,
    },
}

impl StateKey {
    /// The key as stored.
    pub fn spell(&self) -> String {
        match self {
            StateKey::ResolverHealth => "resolver:health".into(),
            StateKey::HealthAnnounced => "health:announced".into(),
            StateKey::BudgetCounts => "budget:counts".into(),
            StateKey::BudgetSwept => "budget:swept".into(),
            StateKey::ImpactAssessment => "impact:assessment".into(),
            StateKey::ImpactActive => "impact:active".into(),
            StateKey::HooksCursor => "hooks:cursor".into(),
            StateKey::HookCursor(hook) => format!("hooks:cursor:{hook}"),
            StateKey::HookConditions(hook) => format!("hook:{hook}"),
            StateKey::AlertsCursor => "alerts:cursor".into(),
            StateKey::AlertFailing(channel) => format!("alert:{channel}:failing"),
            StateKey::LogPosition(source) => format!("logpos:{source}"),
            StateKey::SourceFailing(source) => format!("source:{source}:failing"),
            StateKey::Spike { metric, kind } => {
                // the kind as its Rust name (the keys were once written with
                // `{:?}`), not its config spelling: stored states stay found
                let kind = match kind {
                    SpikeKind::QueueSpike => "QueueSpike",
                    SpikeKind::NdrSpike => "NdrSpike",
                };
                format!("spike:{metric}:{kind}")
            }
            StateKey::Probe { domain, server } => format!("probe:{domain}:{server}"),
            StateKey::Audit(name) => format!("{AUDIT_PREFIX}{name}"),
            StateKey::UnknownCode { list, code } => format!("unknown_code:{list}:{code}"),
            StateKey::Discovered => "discover:targets".into(),
            StateKey::Ranges => "ranges:last".into(),
            StateKey::FeedFailing(feed) => format!("feed:{feed}:failing"),
            StateKey::SenderAnnounced { ip, domain } => format!("sender:{ip}:{domain}"),
            StateKey::GmailSpam(domain) => format!("gmail_spam:{domain}"),
            StateKey::PostmasterRead(feed) => format!("postmaster:{feed}:last"),
            StateKey::Ledger(source) => format!("{LEDGER_PREFIX}{source}"),
        }
    }
}

impl std::fmt::Display for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spell())
    }
}

/// What every [`StateKey::Audit`] starts with.
const AUDIT_PREFIX: &str = "audit:";

/// What every [`StateKey::Ledger`] starts with.
const LEDGER_PREFIX: &str = "ledger:";

/// Reads a JSON state value (log position, spike state…).
pub fn get_state<T: serde::de::DeserializeOwned>(
    c: &Connection,
    key: &StateKey,
) -> Result<Option<T>> {
    let v: Option<String> = c
        .query_row(
            "SELECT value FROM state WHERE key = ?1",
            params![key.spell()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|v| serde_json::from_str(&v).ok()))
}

/// Writes a JSON state value.
pub fn put_state<T: Serialize>(c: &Connection, key: &StateKey, v: &T, at: i64) -> Result<()> {
    c.execute(
        "INSERT INTO state (key, value, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3",
        params![key.spell(), json(v), at],
    )?;
    Ok(())
}

/// Every audit's state ([`StateKey::Audit`]), as (audit name, JSON text).
pub fn audit_states(c: &Connection) -> Result<Vec<(String, String)>> {
    states_under(c, AUDIT_PREFIX)
}

/// Every log source's ledger state ([`StateKey::Ledger`]), as (source name, JSON text).
pub fn ledger_states(c: &Connection) -> Result<Vec<(String, String)>> {
    states_under(c, LEDGER_PREFIX)
}

/// The states whose key starts with `prefix`, as (rest of the key, JSON text).
fn states_under(c: &Connection, prefix: &str) -> Result<Vec<(String, String)>> {
    // LIKE would treat `_` and `%` in the prefix as wildcards: compare the start instead
    let mut st = c.prepare_cached(
        "SELECT key, value FROM state WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
    )?;
    let rows = st.query_map(params![prefix], |r| {
        let key: String = r.get(0)?;
        let name = key.strip_prefix(prefix).unwrap_or(&key).to_string();
        Ok((name, r.get(1)?))
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_keeps_the_spelling_it_was_stored_under() {
        let s = |k: StateKey| k.spell();
        assert_eq!(s(StateKey::ResolverHealth), "resolver:health");
        assert_eq!(s(StateKey::HealthAnnounced), "health:announced");
        assert_eq!(s(StateKey::BudgetCounts), "budget:counts");
        assert_eq!(s(StateKey::BudgetSwept), "budget:swept");
        assert_eq!(s(StateKey::ImpactAssessment), "impact:assessment");
        assert_eq!(s(StateKey::ImpactActive), "impact:active");
        assert_eq!(s(StateKey::HooksCursor), "hooks:cursor");
        assert_eq!(s(StateKey::HookCursor("h".into())), "hooks:cursor:h");
        assert_eq!(s(StateKey::HookConditions("h".into())), "hook:h");
        assert_eq!(s(StateKey::AlertsCursor), "alerts:cursor");
        assert_eq!(s(StateKey::AlertFailing("c".into())), "alert:c:failing");
        assert_eq!(s(StateKey::LogPosition("mx".into())), "logpos:mx");
        assert_eq!(s(StateKey::SourceFailing("mx".into())), "source:mx:failing");
        // as `format!("spike:{}:{:?}", metric, kind)` wrote them
        for kind in [SpikeKind::QueueSpike, SpikeKind::NdrSpike] {
            let metric = "mx.ndr".to_string();
            assert_eq!(
                s(StateKey::Spike { metric, kind }),
                format!("spike:mx.ndr:{kind:?}")
            );
        }
        assert_eq!(
            s(StateKey::Probe {
                domain: "example.org".into(),
                server: "mx:25".into()
            }),
            "probe:example.org:mx:25"
        );
        assert_eq!(s(StateKey::Audit("pf".into())), "audit:pf");
        assert_eq!(s(StateKey::Ledger("mx".into())), "ledger:mx");
        assert_eq!(
            s(StateKey::UnknownCode {
                list: "zen".into(),
                code: Ipv4Addr::new(127, 0, 0, 9)
            }),
            "unknown_code:zen:127.0.0.9"
        );
    }

    #[test]
    fn audit_states_are_found_by_their_key_and_nothing_else() {
        let c = crate::store::memory_db();
        put_state(&c, &StateKey::Audit("a_1".into()), &1, 0).unwrap();
        put_state(&c, &StateKey::HookConditions("audit".into()), &2, 0).unwrap();
        assert_eq!(
            audit_states(&c).unwrap(),
            vec![("a_1".to_string(), "1".to_string())]
        );
        assert_eq!(
            get_state::<i64>(&c, &StateKey::Audit("a_1".into())).unwrap(),
            Some(1)
        );
    }
}
