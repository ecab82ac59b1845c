//! The delisting workflow's jobs: recording a request, re-checking one
//! (target, list) pair at once, and the reminder when a requested delisting is
//! overdue.
//!
//! A re-check is one query through the engine, fed to the evaluator exactly
//! as a sweep feeds it (same confirmation counts, same rules for when a state
//! began, same events), committed for that pair alone, with no sweep row.

use super::Daemon;
use crate::evaluator::{Observation, PairMem, PairState, Sweep};
use crate::event::{Event, EventKind, Subject};
use crate::prefixes;
use crate::store::{self, DelistRequest, NewDelistRequest, RecheckCommit, StateKey};
use crate::target::Target;
use crate::time::{fmt_time, now};

/// What a re-check found, for the log and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rechecked {
    /// The pair's state after the answer (which may be unchanged).
    State(PairState),
    /// The answer did not count (unknown, a list error, an unhealthy list).
    Ignored(String),
}

impl Daemon {
    /// Records a delisting request with its event and queues nothing: the
    /// caller asks for the re-check. `None` when the pair is not listed.
    pub async fn request_delist(
        &self,
        r: NewDelistRequest,
    ) -> Result<Option<DelistRequest>, store::StoreError> {
        let rt = self.runtime();
        let def = rt
            .engine
            .lists()
            .iter()
            .find(|l| l.def.id == r.list)
            .map(|l| l.def.clone());
        let committed = self
            .store
            .call(move |c| {
                store::commit_delist_request(c, &r, |d| delist_requested_event(d, def.as_deref()))
            })
            .await?;
        Ok(committed.map(|(d, e)| {
            self.publish(vec![e]);
            d
        }))
    }

    /// Asks the list about the target now and takes the answer as a sweep would.
    pub async fn recheck(&self, target: &str, list: &str) -> anyhow::Result<Rechecked> {
        let rt = self.runtime();
        let engine = &rt.engine;
        let Some(li) = engine.lists().iter().position(|l| l.def.id == list) else {
            anyhow::bail!("re-check of {target} on {list}: the list is not in use");
        };
        // a single target, or a part of a range checked whole (its pair's key)
        let (t, piece) = match Target::parse(target) {
            Ok(t) => (t, None),
            Err(e) => match prefixes::piece_of(target, &rt.cfg.targets) {
                Some(p) => (Target::Ip(p.first), Some(p)),
                None => anyhow::bail!("re-check of {target:?}: {e}"),
            },
        };
        if !engine.lists()[li].def.kind.accepts(&t) {
            anyhow::bail!(
                "re-check of {target} on {list}: the list does not answer for such targets"
            );
        }
        let mirrored = engine.lists()[li].mirror().is_some();
        let confirm = self.confirm();
        let mut mem = self.memory.lock().await;
        // a mirrored list answers a part without any query
        let needs_dns = piece.is_none() || !mirrored;
        if let Some(why) = mem
            .resolver
            .as_ref()
            .and_then(|r| r.unusable_reason())
            .filter(|_| needs_dns)
        {
            tracing::info!(target, list, why = %why, "re-check did not count");
            return Ok(Rechecked::Ignored(why));
        }
        let health = mem.health.get(list).cloned();
        let (t, verdict, key) = match &piece {
            None => {
                let v = engine.query_fresh(li, &t).await;
                let k = t.to_string();
                (t, v, k)
            }
            Some(p) => match self.piece_answer(li, p).await {
                Ok((t, v)) => (t, v, p.key.clone()),
                Err(why) => {
                    tracing::info!(target, list, why = %why, "re-check did not count");
                    return Ok(Rechecked::Ignored(why));
                }
            },
        };
        let at = now();
        let key = (key, list.to_string());
        let prev = mem.pairs.get(&key).copied().unwrap_or(PairMem::clear(at));
        let obs = match &health {
            Some(h) => super::sweep::observe(&rt, li, &t, &verdict, h, prev.state).await,
            None => Observation::Ignored,
        };
        if obs == Observation::Ignored {
            let why = match &health {
                Some(h) if !h.is_healthy() => format!("list {list} is {}: {}", h.name(), h.why()),
                None => format!("list {list} has not been health-checked yet"),
                _ => format!("answer {}", verdict.kind().as_str()),
            };
            tracing::info!(target = %key.0, list, why = %why, "re-check did not count");
            return Ok(Rechecked::Ignored(why));
        }
        let st = super::sweep::step_pair_as(
            &key.0,
            engine,
            li,
            &t,
            &verdict,
            (prev, obs),
            crate::evaluator::StepRules {
                confirm,
                sweep: Sweep::Regular,
                at,
            },
        );
        let next = st.next;
        let commit = RecheckCommit {
            at,
            pair: st.pair,
            period: st.period,
            events: st.event.into_iter().collect(),
        };
        let update = commit.pair.clone();
        let committed = self
            .store
            .call(move |c| store::commit_recheck(c, &commit))
            .await?;
        if let Some(p) = &update {
            mem.apply_pair(p);
        }
        drop(mem);
        tracing::info!(target = %key.0, list, answer = verdict.kind().as_str(), state = next.name(), "pair re-checked");
        self.publish(committed);
        Ok(Rechecked::State(next))
    }

    /// A part of a range target on list `li`, answered as the sweep answers
    /// it: a mirrored list intersects the part's range(s) with its mirror
    /// again (the part gone from the answer reads clear), never a DNS query
    /// of a range; a DNS list asks a listed /64 of an IPv6 prefix as the
    /// address the last sweep asked for it (else its `::1`). The target
    /// stands for the part. `Err` says why it cannot be re-checked.
    async fn piece_answer(
        &self,
        li: usize,
        p: &prefixes::Piece,
    ) -> Result<(Target, crate::verdict::Verdict), String> {
        let rt = self.runtime();
        let engine = &rt.engine;
        let l = &engine.lists()[li];
        if l.mirror().is_some() {
            for net in &p.ranges {
                let (outcomes, report) = prefixes::intersect_list(engine, li, net);
                if let Some(why) = report.why {
                    return Err(format!("the mirror cannot answer: {why}"));
                }
                if let Some(o) = outcomes.into_iter().find(|o| o.key == p.key) {
                    return Ok((o.outcome.target, o.outcome.verdict));
                }
            }
            return Ok((Target::Ip(p.first), crate::verdict::Verdict::Clear));
        }
        let v6 = |n: &&ipnet::IpNet| matches!(n, ipnet::IpNet::V6(r) if r.prefix_len() <= 64);
        let net64 = match p.key.parse::<ipnet::IpNet>() {
            Ok(ipnet::IpNet::V6(n)) if n.prefix_len() == 64 && p.ranges.iter().any(|r| v6(&r)) => n,
            _ => {
                return Err(format!(
                    "{} is not a part {} checks (it asks IPv6 prefixes as their /64s)",
                    p.key, l.def.id
                ))
            }
        };
        let (ranges, id, key) = (p.ranges.clone(), l.def.id.clone(), p.key.clone());
        let asked = self
            .store
            .call(move |c| {
                let reports: Option<std::collections::BTreeMap<String, prefixes::RangeReport>> =
                    store::get_state(c, &StateKey::Ranges)?;
                Ok(reports.and_then(|r| {
                    ranges.iter().find_map(|n| {
                        r.get(&n.to_string())?
                            .lists
                            .iter()
                            .find(|x| x.list == id)?
                            .asked
                            .iter()
                            .find(|a| a.net == key)
                            .and_then(|a| a.address.parse::<std::net::IpAddr>().ok())
                    })
                }))
            })
            .await
            .map_err(|e| format!("the last sweep's report was not read: {e}"))?;
        let addr = asked.unwrap_or_else(|| {
            std::net::IpAddr::V6(std::net::Ipv6Addr::from(u128::from(net64.network()) | 1))
        });
        let t = Target::Ip(addr);
        let v = engine.query_fresh(li, &t).await;
        Ok((t, v))
    }

    /// Raises `delist_overdue` once for each requested delisting still listed past its expected time.
    pub async fn remind_overdue(&self) -> anyhow::Result<()> {
        let at = now();
        let rt = self.runtime();
        let names: std::collections::HashMap<String, String> = rt
            .engine
            .lists()
            .iter()
            .map(|l| (l.def.id.clone(), l.def.name.clone()))
            .collect();
        let committed = self
            .store
            .call(move |c| {
                let due = store::due_delist_reminders(c, at)?;
                if due.is_empty() {
                    return Ok(Vec::new());
                }
                let ids: Vec<i64> = due.iter().map(|d| d.id).collect();
                let events: Vec<Event> = due
                    .iter()
                    .map(|d| overdue_event(d, names.get(&d.list).map(String::as_str), at))
                    .collect();
                store::commit_delist_reminders(c, &ids, at, &events)
            })
            .await?;
        self.publish(committed);
        Ok(())
    }
}

/// The `delist_requested` event of a recorded request.
pub fn delist_requested_event(d: &DelistRequest, def: Option<&crate::catalog::ListDef>) -> Event {
    let name = def.map_or(d.list.as_str(), |l| l.name.as_str());
    let delist = def.and_then(|l| link_target(&d.target).and_then(|t| l.delist_url(&t)));
    Event::new(
        EventKind::DelistRequested,
        d.requested_at,
        Subject::pair(&d.target, &d.list),
        format!(
            "delisting of {} from {name} requested by {} (expected by {})",
            d.target,
            d.requested_by,
            fmt_time(d.expected_by)
        ),
        serde_json::json!({
            "by": d.requested_by, "via": d.via, "note": d.note, "requested_at": d.requested_at,
            "expected_by": d.expected_by, "listed_since": d.listed_since, "delist": delist,
            "expiry": def.and_then(|l| l.expiry).map(crate::time::fmt_duration),
            "expiry_note": def.and_then(|l| l.expiry_note.clone()), "list_name": name,
        }),
    )
}

/// What a pair's key stands for on a list's delisting page: the target, or
/// a range part's first address.
pub(super) fn link_target(key: &str) -> Option<Target> {
    Target::parse(key).ok().or_else(|| {
        prefixes::key_range(key)
            .filter(|_| key.contains(['/', '-']))
            .map(|(a, _)| Target::Ip(a))
    })
}

fn overdue_event(d: &DelistRequest, name: Option<&str>, at: i64) -> Event {
    let name = name.unwrap_or(d.list.as_str());
    Event::new(
        EventKind::DelistOverdue,
        at,
        Subject::pair(&d.target, &d.list),
        format!(
            "{} is still listed on {name}: delisting was requested {} by {} and expected by {}",
            d.target,
            fmt_time(d.requested_at),
            d.requested_by,
            fmt_time(d.expected_by)
        ),
        serde_json::json!({
            "by": d.requested_by, "via": d.via, "note": d.note, "requested_at": d.requested_at,
            "expected_by": d.expected_by, "list_name": name, "request": d.id,
        }),
    )
}
