//! The joined verdict and the posture audits, as daemon jobs: after every
//! sweep, log read, probe and audit the daemon assesses the impact again
//! ([`crate::impact::assess`]) from what the store holds, raises or clears
//! `receiver_rejecting`, `listing_rejecting` and `backscatter_source`, and
//! stores the assessment for the web, all in one transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::Daemon;
use crate::audit::{self, AuditReport, Finding};
use crate::config::SpikeKind;
use crate::event::{Event, EventKind, Subject};
use crate::impact::{self, Active, AuditNote, Inputs, Listing, ReceiverInfo, Remedy};
use crate::spike::SpikeState;
use crate::store::{self, StateKey};
use crate::time::now;

impl Daemon {
    /// Assesses the joined verdict now, commits its events and the assessment.
    pub async fn assess(&self) -> anyhow::Result<()> {
        let rt = self.runtime();
        let cfg = rt.cfg.clone();
        let at = now();
        let window = cfg.impact.window.as_secs() as i64;
        let monitored: BTreeMap<String, String> = rt
            .engine
            .lists()
            .iter()
            .map(|l| (l.def.id.clone(), l.def.name.clone()))
            .collect();
        let defs: BTreeMap<String, Arc<crate::catalog::ListDef>> = rt
            .engine
            .lists()
            .iter()
            .map(|l| (l.def.id.clone(), l.def.clone()))
            .collect();
        let receivers = receiver_infos(&rt);
        let remedies = backscatter_remedies(&cfg);
        let events = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let listings = stored_listings(&tx, &defs)?;
                let rejections: Vec<(i64, crate::mail::rejections::Rejection)> =
                    store::rejections_since(&tx, at - window)?
                        .into_iter()
                        .map(|r| (r.at, r.rejection))
                        .collect();
                let (ndr_spikes, vulnerable, findings) = backscatter_evidence(&tx, &cfg)?;
                let snds = if cfg.snds.is_empty() {
                    Vec::new()
                } else {
                    let since =
                        crate::feeds::senders::day_of(at - crate::feeds::snds::RED_DAYS * 86_400);
                    store::snds_refusals(&tx, &since)?
                };
                let a = impact::assess(&Inputs {
                    at,
                    window_secs: window,
                    threshold: cfg.impact.threshold,
                    listings: &listings,
                    rejections: &rejections,
                    monitored: &monitored,
                    receivers: &receivers,
                    backscatter_lists: &cfg.impact.backscatter_lists,
                    ndr_spikes: &ndr_spikes,
                    vulnerable: &vulnerable,
                    findings: &findings,
                    remedies: &remedies,
                    snds: &snds,
                });
                let prev: Active =
                    store::get_state(&tx, &StateKey::ImpactActive)?.unwrap_or_default();
                let (next, evs) = impact::transitions(&prev, &a, &listings);
                if next != prev {
                    store::put_state(&tx, &StateKey::ImpactActive, &next, at)?;
                }
                store::put_state(&tx, &StateKey::ImpactAssessment, &a, at)?;
                let mut out = Vec::new();
                for e in &evs {
                    out.push(store::insert_event(&tx, e)?);
                }
                tx.commit()?;
                Ok((out, a))
            })
            .await?;
        let (events, a) = events;
        self.update_published(|p| p.impact = Some(Arc::new(a)));
        self.publish(events);
        Ok(())
    }

    /// Runs the named posture audit once: stores the report, raises
    /// `audit_finding` for each new finding and `audit_finding_cleared` for each
    /// one gone. An audit that cannot read the settings changes no finding.
    pub async fn run_audit(self: Arc<Self>, name: &str) -> anyhow::Result<()> {
        let rt = self.runtime();
        let Some(conf) = rt.cfg.audits.iter().find(|a| a.name == name).cloned() else {
            return Ok(()); // removed by a reload since the tick was sent
        };
        let report = audit::run(&conf).await;
        let at = now();
        match &report.error {
            Some(e) => {
                tracing::warn!(audit = %report.name, error = %e, "posture audit could not read the settings")
            }
            None => tracing::info!(
                audit = %report.name,
                findings = report.findings.len(),
                "posture audit"
            ),
        }
        let events = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let value = serde_json::to_value(&report).unwrap_or_default();
                store::insert_audit_run(
                    &tx,
                    at,
                    &report.name,
                    report.mta.as_str(),
                    report.ok,
                    report.findings.len(),
                    &value,
                )?;
                let mut out = Vec::new();
                if report.ok {
                    let key = StateKey::Audit(report.name.clone());
                    let prev: BTreeMap<String, Finding> =
                        store::get_state(&tx, &key)?.unwrap_or_default();
                    let now_f: BTreeMap<String, Finding> = report
                        .findings
                        .iter()
                        .map(|f| (f.check.clone(), f.clone()))
                        .collect();
                    for e in finding_events(&report, &prev, &now_f, at) {
                        out.push(store::insert_event(&tx, &e)?);
                    }
                    if prev != now_f {
                        store::put_state(&tx, &key, &now_f, at)?;
                    }
                }
                tx.commit()?;
                Ok(out)
            })
            .await?;
        self.publish(events);
        Ok(())
    }
}
/// The receivers the reply rules know, by id: their names and sender pages.
fn receiver_infos(rt: &super::Runtime) -> BTreeMap<String, ReceiverInfo> {
    rt.replies
        .receivers()
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                ReceiverInfo {
                    name: r.name.clone(),
                    sender_page: r.sender_page.clone(),
                },
            )
        })
        .collect()
}

/// The hooks that remedy backscatter (those run on a backscatter source, a
/// vulnerable probe or an NDR spike), for the diagnosis to name.
fn backscatter_remedies(cfg: &crate::config::Config) -> Vec<Remedy> {
    cfg.actions
        .hooks
        .iter()
        .filter(|h| {
            h.on.iter().any(|k| {
                matches!(
                    k,
                    EventKind::BackscatterSource | EventKind::RndrVulnerable | EventKind::NdrSpike
                )
            })
        })
        .map(|h| Remedy {
            hook: h.name.clone(),
            on: h.on.iter().map(|k| k.as_str().to_string()).collect(),
            command: h.command.clone(),
        })
        .collect()
}

/// The stored listings of lists still in use, with their names and delisting links.
fn stored_listings(
    c: &rusqlite::Connection,
    defs: &BTreeMap<String, Arc<crate::catalog::ListDef>>,
) -> Result<Vec<Listing>, store::StoreError> {
    let listings = store::listed_pairs(c)?
        .into_iter()
        .filter_map(|(target, list)| {
            let def = defs.get(&list)?;
            let delist = super::delist::link_target(&target).and_then(|t| def.delist_url(&t));
            Some(Listing {
                list_name: def.name.clone(),
                target,
                list,
                delist,
            })
        })
        .collect();
    Ok(listings)
}

/// The backscatter evidence the store holds: NDR spikes on now, probes that
/// found a server accepting unknown recipients (server, domain), and the
/// backscatter findings of configured audits.
#[allow(clippy::type_complexity)]
fn backscatter_evidence(
    c: &rusqlite::Connection,
    cfg: &crate::config::Config,
) -> Result<(Vec<String>, Vec<(String, String)>, Vec<AuditNote>), store::StoreError> {
    let mut ndr_spikes = Vec::new();
    for rule in cfg.spikes.iter().filter(|r| r.kind == SpikeKind::NdrSpike) {
        let key = StateKey::Spike {
            metric: rule.metric.clone(),
            kind: rule.kind,
        };
        let st: Option<SpikeState> = store::get_state(c, &key)?;
        if st.is_some_and(|s| s.active) {
            ndr_spikes.push(rule.metric.clone());
        }
    }
    let mut vulnerable = Vec::new();
    for p in &cfg.probes {
        let key = StateKey::Probe {
            domain: p.opts.domain.clone(),
            server: p.opts.server.clone(),
        };
        if store::get_state::<bool>(c, &key)?.unwrap_or(false) {
            vulnerable.push((p.opts.server.clone(), p.opts.domain.clone()));
        }
    }
    let mut findings = Vec::new();
    for (name, f) in active_findings(c)? {
        if f.backscatter && cfg.audits.iter().any(|a| a.name == name) {
            findings.push(AuditNote {
                audit: name,
                check: f.check,
                title: f.title,
                fix: f.fix,
            });
        }
    }
    Ok((ndr_spikes, vulnerable, findings))
}

/// The findings each audit has raised (kept in its state), by audit name.
fn active_findings(c: &rusqlite::Connection) -> Result<Vec<(String, Finding)>, store::StoreError> {
    let mut out = Vec::new();
    for (name, value) in store::audit_states(c)? {
        let map: BTreeMap<String, Finding> = serde_json::from_str(&value).unwrap_or_default();
        out.extend(map.into_values().map(|f| (name.clone(), f)));
    }
    Ok(out)
}

/// `audit_finding` for each finding new in `now_f`, `audit_finding_cleared`
/// for each one of `prev` gone (pure).
fn finding_events(
    report: &AuditReport,
    prev: &BTreeMap<String, Finding>,
    now_f: &BTreeMap<String, Finding>,
    at: i64,
) -> Vec<Event> {
    let mut out = Vec::new();
    let subject = |check: &str| Subject::Audit {
        name: report.name.clone(),
        check: check.to_string(),
    };
    for (check, f) in now_f {
        if prev.contains_key(check) {
            continue;
        }
        let mut e = Event::new(
            EventKind::AuditFinding,
            at,
            subject(check),
            format!("audit {}: {} ({})", report.name, f.title, f.evidence),
            serde_json::json!({
                "audit": report.name, "mta": report.mta, "check": f.check, "title": f.title,
                "why": f.why, "fix": f.fix, "evidence": f.evidence, "backscatter": f.backscatter,
                "finding_severity": f.severity,
            }),
        );
        e.severity = f.severity;
        out.push(e);
    }
    let gone: BTreeSet<&String> = prev.keys().filter(|k| !now_f.contains_key(*k)).collect();
    for check in gone {
        let f = &prev[check];
        out.push(Event::new(
            EventKind::AuditFindingCleared,
            at,
            subject(check),
            format!("audit {}: fixed: {}", report.name, f.title),
            serde_json::json!({
                "audit": report.name, "mta": report.mta, "check": f.check, "title": f.title,
                "was": f.evidence,
            }),
        ));
    }
    out
}
