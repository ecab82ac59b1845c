//! Codes a list answered that its catalog entry does not document: each one
//! raises a `list_unknown_code` warning once per list and code (remembered in
//! the store's state table), so the catalog gets fixed instead of users misled.
//! Collected from a sweep's outcomes and its health check, written in the
//! sweep's own transaction.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::catalog::Undocumented;
use crate::engine::{Engine, HealthReport};
use crate::event::{Event, EventKind, Subject};
use crate::store::{self, StateKey, StoreError};
use crate::verdict::Verdict;

/// Undocumented codes seen in one sweep: (list id, code) with what they were read as.
#[derive(Debug, Default, Clone)]
pub(super) struct UnknownCodes {
    seen: BTreeSet<(String, Ipv4Addr, String, bool)>,
}

impl UnknownCodes {
    /// Notes the undocumented codes of one answer of list `li`.
    pub(super) fn note(&mut self, engine: &Engine, li: usize, v: &Verdict) {
        let def = &engine.lists()[li].def;
        for c in def.undocumented_codes(v.codes()) {
            self.seen.insert((
                def.id.clone(),
                c,
                def.name.clone(),
                def.undocumented == Undocumented::Error,
            ));
        }
    }

    /// Notes the undocumented codes the health check's test points answered.
    pub(super) fn note_report(&mut self, engine: &Engine, report: &HealthReport) {
        for (l, codes) in engine.lists().iter().zip(&report.undocumented) {
            for c in codes {
                self.seen.insert((
                    l.def.id.clone(),
                    *c,
                    l.def.name.clone(),
                    l.def.undocumented == Undocumented::Error,
                ));
            }
        }
    }

    /// Stores one event per (list, code) not announced before; returns the stored events.
    pub(super) fn announce(
        &self,
        c: &rusqlite::Connection,
        at: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for (list, code, name, strict) in &self.seen {
            let key = StateKey::UnknownCode {
                list: list.clone(),
                code: *code,
            };
            if store::get_state::<i64>(c, &key)?.is_some() {
                continue;
            }
            store::put_state(c, &key, &at, at)?;
            let read_as = if *strict {
                "read as an error, never a listing: the operator says only its documented codes count"
            } else {
                "read as a listing, as RFC 5782 reads any 127.0.0.0/8 answer"
            };
            let e = Event::new(
                EventKind::ListUnknownCode,
                at,
                Subject::List { id: list.clone() },
                format!(
                    "list {list} answered {code}, a code its catalog entry does not document ({read_as}); the catalog entry needs checking against the operator's page"
                ),
                serde_json::json!({ "code": code.to_string(), "list_name": name, "strict": strict }),
            );
            out.push(store::insert_event(c, &e)?);
        }
        Ok(out)
    }
}
