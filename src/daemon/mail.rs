//! Mail telemetry jobs: read a source, store its samples, run the spike rules;
//! run a backscatter probe. Each job's writes (samples, log position, spike
//! state, events) go in one transaction, so a crash never double-counts a log.

use std::sync::Arc;

use super::Daemon;
use crate::config::SourceKind;
use crate::event::{Event, EventKind, Subject};
use crate::mail::ledger::{Ledger, LedgerConf, LogMta};
use crate::mail::rejections::{self, Mta};
use crate::mail::{self, exim_log, postfix_log};
use crate::senders::{self, BurstChange, BurstConf, SendersState};
use crate::smtp_probe::{self, RndrVerdict};
use crate::spike::{self, SpikeState};
use crate::store::{self, StateKey};
use crate::time::now;

/// What one read of a source gave.
struct SourceRead {
    /// The samples, or why the read failed.
    samples: Result<Vec<mail::Sample>, mail::SourceError>,
    /// A log's new position, stored with the samples.
    position: Option<(StateKey, postfix_log::LogPosition)>,
    /// A log path that stopped being a log: where to start when one is back.
    lost_position: Option<(StateKey, postfix_log::LogPosition)>,
    /// The rejection groups a log's lines gave.
    rejections: Vec<rejections::Rejection>,
    /// The outbound ledger's tally of the read (`[senders]` enabled, log sources).
    senders: Option<senders::Tally>,
    /// The source's ledger (messages in flight) after the read: it replaces the
    /// kept one only once the read's transaction commits, so a failed commit
    /// (database locked or full) re-reads the same lines against the same
    /// ledger and counts each message once, neither twice nor never.
    ledger: Option<Ledger>,
}

impl Daemon {
    /// Reads the named source once. A failing source is logged, counted and
    /// alerted (`source_failed`, once, then `source_recovered`); it never stops
    /// the daemon or another source.
    pub async fn read_source(self: Arc<Self>, source: &str) -> anyhow::Result<()> {
        let rt = self.runtime();
        let Some(src) = rt.cfg.sources.iter().find(|s| s.name == source).cloned() else {
            return Ok(()); // removed by a reload since the tick was sent
        };
        let at = now();
        let name = src.name.clone();
        let SourceRead {
            samples,
            position,
            lost_position,
            rejections,
            senders: sender_tally,
            ledger,
        } = match &src.kind {
            SourceKind::PostfixLog { path } | SourceKind::EximLog { path } => {
                let mta = match src.kind {
                    SourceKind::EximLog { .. } => Mta::Exim,
                    _ => Mta::Postfix,
                };
                self.read_log(&rt, &name, path.clone(), mta).await?
            }
            _ => SourceRead {
                samples: mail::read(&src, at).await,
                position: None,
                lost_position: None,
                rejections: Vec::new(),
                senders: None,
                ledger: None,
            },
        };
        let samples = match samples {
            Ok(s) => s,
            Err(e) => return self.source_failed(name, e, lost_position, at).await,
        };
        let rules: Vec<_> = rt
            .cfg
            .spikes
            .iter()
            .filter(|r| r.metric.split_once('.').is_some_and(|(s, _)| s == name))
            .cloned()
            .collect();
        let n2 = name.clone();
        let burst_conf = BurstConf::of(&rt.cfg.senders);
        let events = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let mut events = Vec::new();
                for rule in &rules {
                    let metric = rule.metric.split_once('.').map(|(_, m)| m).unwrap_or("");
                    let Some(sample) = samples.iter().find(|s| s.metric == metric) else { continue };
                    let mut history: Vec<f64> = store::samples_since(&tx, &n2, metric, at - 86_400)?.into_iter().map(|(_, v)| v).collect();
                    let median = spike::median(&mut history);
                    let key = StateKey::Spike {
                        metric: rule.metric.clone(),
                        kind: rule.kind,
                    };
                    let prev: SpikeState = store::get_state(&tx, &key)?.unwrap_or_default();
                    let (next, ev) = spike::evaluate(rule, prev, sample.value, median, at);
                    store::put_state(&tx, &key, &next, at)?;
                    if let Some((kind, figures)) = ev {
                        let summary = match kind {
                            EventKind::QueueSpike | EventKind::NdrSpike => {
                                format!("{} on {}: {} = {} ({})", kind.as_str(), n2, metric, sample.value, figures.triggers.join("; "))
                            }
                            _ => format!("{} on {}: {} = {} is back to normal", kind.as_str(), n2, metric, sample.value),
                        };
                        let subject = Subject::Metric { source: n2.clone(), metric: metric.to_string() };
                        let e = Event::new(kind, at, subject, summary, serde_json::json!({ "source": n2, "metric": rule.metric, "figures": figures }));
                        events.push(store::insert_event(&tx, &e)?);
                    }
                }
                for s in &samples {
                    store::insert_sample(&tx, &n2, &s.metric, at, s.value)?;
                }
                store::insert_rejections(&tx, &n2, at, &rejections)?;
                if let Some(t) = &sender_tally {
                    events.extend(sender_bursts(&tx, &n2, &burst_conf, t, at)?);
                }
                events.extend(source_health(&tx, &n2, None, at)?);
                if let Some((key, pos)) = &position {
                    store::put_state(&tx, key, pos, at)?;
                }
                let counted = sender_tally.as_ref().is_some_and(|t| !t.classes.is_empty());
                if counted && crate::actions::fault_fires("mail-read-commit") {
                    // a test's stand-in for a locked or full database at the
                    // commit of the first read that counted outbound mail
                    return Err(store::StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("fault injected at mail-read-commit (RBLWATCH_FAULT)".into()),
                    )));
                }
                tx.commit()?;
                Ok(events)
            })
            .await?;
        if let Some(l) = ledger {
            // committed: the lines just read are the ledger's now
            let mut all = self.ledgers.lock().unwrap_or_else(|p| p.into_inner());
            all.insert(name.clone(), l);
        }
        tracing::debug!(source = %name, "mail source read");
        self.publish(events);
        Ok(())
    }

    /// Reads a log source's new lines from its stored position and classifies
    /// them (counts and rejections), off the async workers.
    async fn read_log(
        &self,
        rt: &Arc<super::Runtime>,
        name: &str,
        path: std::path::PathBuf,
        mta: Mta,
    ) -> anyhow::Result<SourceRead> {
        let key = StateKey::LogPosition(name.to_string());
        let k2 = key.clone();
        let pos: Option<postfix_log::LogPosition> =
            self.store.call(move |c| store::get_state(c, &k2)).await?;
        let rt2 = rt.clone();
        // a copy of this source's ledger (messages in flight) to feed: the kept
        // one stays as of the last committed read until this read commits
        let ledger = rt.cfg.senders.enabled.then(|| {
            let all = self.ledgers.lock().unwrap_or_else(|p| p.into_inner());
            all.get(name).cloned().unwrap_or_else(|| {
                Ledger::new(match mta {
                    Mta::Exim => LogMta::Exim,
                    Mta::Postfix => LogMta::Postfix,
                })
            })
        });
        let max_accounts = rt.cfg.senders.max_accounts;
        // reading and classifying a busy log's chunk is CPU work: off the async workers
        let (read, ledger) = tokio::task::spawn_blocking(move || {
            let targets: Vec<_> = rt2.cfg.targets.iter().map(|t| t.spec.clone()).collect();
            let mut counts = postfix_log::LogCounts::default();
            let mut tally = rejections::Tally::default();
            let mut ledger = ledger;
            let mut senders = senders::Tally::new(max_accounts);
            // piece by piece, so a read holds one piece in memory
            let r = postfix_log::read_with(&path, pos, postfix_log::MAX_READ, |text| {
                counts.add(&match mta {
                    Mta::Postfix => postfix_log::count(text),
                    Mta::Exim => exim_log::count(text),
                });
                tally.merge(rejections::tally(
                    text,
                    mta,
                    &rt2.replies,
                    &rt2.catalog,
                    &targets,
                ));
                if let Some(l) = ledger.as_mut() {
                    l.feed(&rt2.ledger, text, &mut |f| {
                        let who = f.refused_by(&rt2.replies, &rt2.catalog);
                        senders.add(&f, who.as_deref());
                    });
                }
            });
            let enabled = ledger.is_some();
            (
                r.map(|newpos| (counts, tally, newpos, enabled.then_some(senders))),
                ledger,
            )
        })
        .await?;
        Ok(match read {
            Ok((counts, tally, newpos, senders)) => {
                let mut s = counts.samples();
                s.extend(tally.samples());
                SourceRead {
                    samples: Ok(s),
                    position: Some((key, newpos)),
                    lost_position: None,
                    rejections: tally.groups,
                    senders,
                    ledger,
                }
            }
            Err(e) => SourceRead {
                lost_position: e.position_after().map(|p| (key, p)),
                samples: Err(mail::SourceError::Log(e)),
                position: None,
                rejections: Vec::new(),
                senders: None,
                ledger: None,
            },
        })
    }

    /// A failed read: counted, logged, `source_failed` recorded (once), and
    /// where a log path that stopped being a log should restart.
    async fn source_failed(
        &self,
        name: String,
        e: mail::SourceError,
        lost_position: Option<(StateKey, postfix_log::LogPosition)>,
        at: i64,
    ) -> anyhow::Result<()> {
        match self.source_failures.lock() {
            Ok(mut m) => *m.entry(name.clone()).or_default() += 1,
            Err(p) => *p.into_inner().entry(name.clone()).or_default() += 1,
        }
        tracing::warn!(source = %name, error = %e, "mail source failed");
        let why = e.to_string();
        let events = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let ev = source_health(&tx, &name, Some(&why), at)?;
                if let Some((key, pos)) = &lost_position {
                    store::put_state(&tx, key, pos, at)?;
                }
                tx.commit()?;
                Ok(ev)
            })
            .await?;
        self.publish(events);
        Ok(())
    }

    /// Runs the named backscatter probe once.
    pub async fn run_probe(self: Arc<Self>, probe: &str) -> anyhow::Result<()> {
        let rt = self.runtime();
        let Some(p) = rt.cfg.probes.iter().find(|p| p.name == probe).cloned() else {
            return Ok(()); // removed by a reload since the tick was sent
        };
        let report = smtp_probe::probe(&p.opts).await;
        let at = now();
        tracing::info!(domain = %report.domain, server = %report.server, verdict = report.verdict.as_str(), why = %report.why, "backscatter probe");
        let events = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                store::insert_probe(&tx, at, &report)?;
                let key = StateKey::Probe {
                    domain: report.domain.clone(),
                    server: report.server.clone(),
                };
                let was_vulnerable: bool = store::get_state(&tx, &key)?.unwrap_or(false);
                let kind = match (report.verdict, was_vulnerable) {
                    (RndrVerdict::AcceptsUnknown, false) => Some(EventKind::RndrVulnerable),
                    (RndrVerdict::RejectsUnknown, true) => Some(EventKind::RndrVulnerableCleared),
                    _ => None,
                };
                let mut events = Vec::new();
                if let Some(kind) = kind {
                    store::put_state(&tx, &key, &(kind == EventKind::RndrVulnerable), at)?;
                    let summary = match kind {
                        EventKind::RndrVulnerable => format!(
                            "{} accepts mail for unknown recipients of {}: backscatter risk",
                            report.server, report.domain
                        ),
                        _ => format!(
                            "{} rejects unknown recipients of {} again",
                            report.server, report.domain
                        ),
                    };
                    let e = Event::new(
                        kind,
                        at,
                        Subject::Probe {
                            server: report.server.clone(),
                            domain: report.domain.clone(),
                        },
                        summary,
                        serde_json::to_value(&report).unwrap_or_default(),
                    );
                    events.push(store::insert_event(&tx, &e)?);
                }
                tx.commit()?;
                Ok(events)
            })
            .await?;
        self.publish(events);
        Ok(())
    }
}

/// Records whether a source reads (`why` = None) or fails, and returns the
/// `source_failed` / `source_recovered` event when that changed.
fn source_health(
    c: &rusqlite::Connection,
    name: &str,
    why: Option<&str>,
    at: i64,
) -> Result<Vec<Event>, store::StoreError> {
    let key = StateKey::SourceFailing(name.to_string());
    let failing: bool = store::get_state(c, &key)?.unwrap_or(false);
    let (kind, summary) = match (why, failing) {
        (Some(why), false) => (
            EventKind::SourceFailed,
            format!("mail source {name} cannot be read: {why}"),
        ),
        (None, true) => (
            EventKind::SourceRecovered,
            format!("mail source {name} reads again"),
        ),
        _ => return Ok(vec![]),
    };
    store::put_state(c, &key, &why.is_some(), at)?;
    let e = Event::new(
        kind,
        at,
        Subject::Source {
            name: name.to_string(),
        },
        summary,
        serde_json::json!({ "source": name, "why": why.unwrap_or("") }),
    );
    Ok(vec![store::insert_event(c, &e)?])
}

/// The ledger's settings from `[senders]` and the class rules the config
/// checked at load (the shipped ones plus its `dirs`).
pub(super) fn ledger_conf(cfg: &crate::config::Config) -> LedgerConf {
    LedgerConf {
        mynetworks: cfg.senders.mynetworks.clone(),
        rules: (**cfg.class_rules()).clone(),
    }
}

/// Adds one read's tally to the stored sender state and records the bursts
/// that start or end as events.
fn sender_bursts(
    c: &rusqlite::Connection,
    source: &str,
    conf: &BurstConf,
    tally: &senders::Tally,
    at: i64,
) -> Result<Vec<Event>, store::StoreError> {
    let key = StateKey::Ledger(source.to_string());
    let prev: SendersState = store::get_state(c, &key)?.unwrap_or_default();
    let (next, changes) = senders::evaluate(conf, prev, tally, at);
    store::put_state(c, &key, &next, at)?;
    let mut out = Vec::new();
    for ch in changes {
        let (kind, subject, summary) = match &ch {
            BurstChange::AccountBurst {
                origin,
                account,
                messages,
                recipients,
                refusals,
                refused_by,
                ..
            } => {
                let mut s = format!(
                    "{} account {account:?} is sending far over its usual: {messages} messages to {recipients} recipients in {}s",
                    origin.as_str(),
                    conf.window
                );
                if let Some((who, n, _)) = refused_by.first() {
                    s.push_str(&format!(
                        "; {who} refused {n} of its messages ({refusals} refusals in all)"
                    ));
                }
                (EventKind::AccountBurst, account_subject(source, *origin, account), s)
            }
            BurstChange::AccountBurstCleared { origin, account, .. } => (
                EventKind::AccountBurstCleared,
                account_subject(source, *origin, account),
                format!(
                    "{} account {account:?} is back to normal; mail it had queued stays on hold until released (postsuper -H) or deleted (postsuper -d)",
                    origin.as_str()
                ),
            ),
            BurstChange::AutomatedBurst {
                class,
                messages,
                top_destinations,
                ..
            } => {
                let top: Vec<String> = top_destinations
                    .iter()
                    .take(3)
                    .map(|(d, n)| format!("{d} ({n})"))
                    .collect();
                (
                    EventKind::AutomatedBurst,
                    class_subject(source, class.as_str()),
                    format!(
                        "{messages} {} messages in {}s from {source}; top destinations: {}",
                        class.as_str(),
                        conf.window,
                        if top.is_empty() { "none yet".to_string() } else { top.join(", ") }
                    ),
                )
            }
            BurstChange::AutomatedBurstCleared { class } => (
                EventKind::AutomatedBurstCleared,
                class_subject(source, class.as_str()),
                format!("{} mail from {source} is back to normal", class.as_str()),
            ),
        };
        let mut details = serde_json::to_value(&ch).unwrap_or_default();
        if let Some(o) = details.as_object_mut() {
            o.insert("source".into(), source.into());
        }
        let e = Event::new(kind, at, subject, summary, details);
        out.push(store::insert_event(c, &e)?);
    }
    Ok(out)
}

fn account_subject(source: &str, origin: crate::mail::ledger::Origin, account: &str) -> Subject {
    Subject::Account {
        source: source.to_string(),
        origin: origin.as_str().to_string(),
        account: account.to_string(),
    }
}

fn class_subject(source: &str, class: &str) -> Subject {
    Subject::SenderClass {
        source: source.to_string(),
        class: class.to_string(),
    }
}
