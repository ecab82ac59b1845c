//! How the pages show things: how a (target, list) pair is shown
//! ([`cell_state`]), which operator runs a list, a list's typical expiry in
//! words. Pure functions over what the store and the daemon know. The
//! headline verdict itself is [`crate::status`]'s, shared with the CLI and
//! `/metrics`; it is re-exported here for the pages.

use crate::catalog::ListDef;
use crate::evaluator::PairState;
use crate::health::ListHealth;
pub use crate::status::{verdict, ListingFact, Todo, Verdict, VerdictFacts, VerdictView};

/// How a (target, list) pair is shown, with why when it is not plain:
/// `listed`, `suspected`, `clearing` (stored states), `clear` (nothing stored,
/// the list answers usably), `unchecked` (nothing stored and the list's
/// answers do not count: never "clear").
///
/// `unchecked` is why the pair's own last answer was unusable although the
/// list is healthy (issue 14's unchecked pairs), if it was.
pub fn cell_state(
    stored: Option<PairState>,
    unchecked: Option<&str>,
    health: Option<&ListHealth>,
) -> (&'static str, Option<String>) {
    match (stored, health) {
        (Some(s), _) if s != PairState::Clear => (s.name(), None),
        (_, Some(h)) if !h.is_healthy() => {
            ("unchecked", Some(format!("list {}: {}", h.name(), h.why())))
        }
        (_, None) => ("unchecked", Some("list not health-checked yet".into())),
        (_, Some(_)) => match unchecked {
            Some(why) => ("unchecked", Some(why.to_string())),
            None => ("clear", None),
        },
    }
}

/// Who runs a list, for grouping: its zone's last two labels (`zen.spamhaus.org` → `spamhaus.org`).
pub fn operator(zone: &str) -> String {
    let labels: Vec<&str> = zone.trim_end_matches('.').rsplitn(3, '.').collect();
    match labels.as_slice() {
        [tld, name, ..] => format!("{name}.{tld}"),
        _ => zone.to_string(),
    }
}

/// A list's typical expiry in words, and the wait before a reminder.
pub fn expiry_text(def: &ListDef) -> String {
    match (&def.expiry_note, def.expiry) {
        (Some(n), _) => n.clone(),
        (None, Some(e)) => format!(
            "listings usually expire {} after the cause stops",
            crate::time::fmt_duration(e)
        ),
        (None, None) => format!(
            "no typical expiry known: ask for removal (reminder after {})",
            crate::time::fmt_duration(crate::store::DEFAULT_DELIST_WAIT)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status-page issue: the target page showed a dead list's pair as "clear".
    #[test]
    fn a_pair_on_an_unusable_list_is_never_clear() {
        let dead = ListHealth::Dead {
            why: "NXDOMAIN for 127.0.0.2".into(),
        };
        assert_eq!(cell_state(None, None, Some(&dead)).0, "unchecked");
        assert!(cell_state(None, None, Some(&dead))
            .1
            .unwrap()
            .contains("dead"));
        assert_eq!(cell_state(None, None, None).0, "unchecked");
        assert_eq!(
            cell_state(None, None, Some(&ListHealth::Healthy)).0,
            "clear"
        );
        assert_eq!(
            cell_state(Some(PairState::Listed), None, Some(&dead)).0,
            "listed"
        );
        assert_eq!(
            cell_state(Some(PairState::Clear), None, Some(&dead)).0,
            "unchecked"
        );
        // a healthy list whose answer for this pair was unusable
        let (s, why) = cell_state(None, Some("SERVFAIL"), Some(&ListHealth::Healthy));
        assert_eq!((s, why.as_deref()), ("unchecked", Some("SERVFAIL")));
    }

    #[test]
    fn operators_from_zones() {
        assert_eq!(operator("zen.spamhaus.org"), "spamhaus.org");
        assert_eq!(operator("bl.spamcop.net."), "spamcop.net");
        assert_eq!(operator("dnsbl-1.uceprotect.net"), "uceprotect.net");
        assert_eq!(operator("bl.test"), "bl.test");
        assert_eq!(operator("localhost"), "localhost");
    }
}
