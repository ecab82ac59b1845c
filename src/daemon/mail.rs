//! Mail telemetry jobs: read a source, store its samples, run the spike rules;
//! run a backscatter probe. Each job's writes (samples, log position, spike
//! state, events) go in one transaction, so a crash never double-counts a log.

use std::sync::Arc;

use super::Daemon;
use crate::config::SourceKind;
use crate::event::{Event, EventKind, Subject};
use crate::mail::rejections::{self, Mta};
use crate::mail::{self, exim_log, postfix_log};
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
                events.extend(source_health(&tx, &n2, None, at)?);
                if let Some((key, pos)) = &position {
                    store::put_state(&tx, key, pos, at)?;
                }
                tx.commit()?;
                Ok(events)
            })
            .await?;
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
        // reading and classifying a busy log's chunk is CPU work: off the async workers
        let read = tokio::task::spawn_blocking(move || {
            let targets: Vec<_> = rt2.cfg.targets.iter().map(|t| t.spec.clone()).collect();
            let mut counts = postfix_log::LogCounts::default();
            let mut tally = rejections::Tally::default();
            // piece by piece, so a read holds one piece in memory
            postfix_log::read_with(&path, pos, postfix_log::MAX_READ, |text| {
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
            })
            .map(|newpos| (counts, tally, newpos))
        })
        .await?;
        Ok(match read {
            Ok((counts, tally, newpos)) => {
                let mut s = counts.samples();
                s.extend(tally.samples());
                SourceRead {
                    samples: Ok(s),
                    position: Some((key, newpos)),
                    lost_position: None,
                    rejections: tally.groups,
                }
            }
            Err(e) => SourceRead {
                lost_position: e.position_after().map(|p| (key, p)),
                samples: Err(mail::SourceError::Log(e)),
                position: None,
                rejections: Vec::new(),
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
