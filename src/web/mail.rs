//! The mail page: one chart per source and unit (a Postfix's queue figures
//! share "messages" and one chart, not twelve), each line with its spike
//! threshold, the spike windows shaded, axes labelled.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Serialize;

use super::render::{range_secs, render, Range};
use super::svg::{self, Series, Window};
use super::{WebError, WebState};
use crate::config::SourceKind;
use crate::event::{EventKind, Subject};
use crate::store;
use crate::time::now;

/// The unit of a metric, from its source's kind and its name.
pub(super) fn unit_of(kind: Option<&SourceKind>, metric: &str) -> &'static str {
    if metric.ends_with("_seconds") {
        return "seconds";
    }
    if metric.ends_with("_bytes") {
        return "bytes";
    }
    if matches!(kind, Some(SourceKind::PostfixLog { .. })) {
        return "per read interval";
    }
    if metric.starts_with("queue_") {
        return "messages";
    }
    if matches!(
        metric,
        "ndr_generated" | "rcpt_rejected_unknown" | "deferred" | "bounced_recipients"
    ) {
        return "per read interval";
    }
    "value"
}

/// A metric of a chart: name, latest value, points.
type Metric = (String, f64, Vec<(i64, f64)>);

/// One line's legend entry.
#[derive(Debug, Serialize)]
struct Legend {
    metric: String,
    /// Its colour, as a small SVG (see [`svg::swatch`]).
    swatch: String,
    latest: Option<f64>,
    threshold: Option<f64>,
}

/// One chart: a source's metrics of one unit.
#[derive(Debug, Serialize)]
struct Chart {
    source: String,
    unit: String,
    id: String,
    svg: String,
    legend: Vec<Legend>,
    spikes: usize,
}

/// The events that open and close spike windows.
pub(super) const SPIKE_KINDS: &[EventKind] = &[
    EventKind::QueueSpike,
    EventKind::QueueSpikeCleared,
    EventKind::NdrSpike,
    EventKind::NdrSpikeCleared,
];

/// Spike windows per metric key (`source.metric`): from each spike event to its clearing.
pub(super) fn windows(events: &[crate::event::Event], since: i64) -> BTreeMap<String, Vec<Window>> {
    let mut out: BTreeMap<String, Vec<Window>> = BTreeMap::new();
    for e in events {
        let Subject::Metric { source, metric } = &e.subject else {
            continue;
        };
        let key = format!("{source}.{metric}");
        let w = out.entry(key.clone()).or_default();
        match e.kind {
            EventKind::QueueSpike | EventKind::NdrSpike
                if w.last().is_none_or(|l| l.to.is_some()) =>
            {
                w.push(Window {
                    from: e.at,
                    to: None,
                    label: format!("{} on {key} from {}", e.kind, crate::time::fmt_time(e.at)),
                });
            }
            EventKind::QueueSpikeCleared | EventKind::NdrSpikeCleared => {
                if let Some(l) = w.last_mut().filter(|l| l.to.is_none()) {
                    l.to = Some(e.at);
                    l.label = format!("{} to {}", l.label, crate::time::fmt_time(e.at));
                }
            }
            _ => {}
        }
    }
    for w in out.values_mut() {
        w.retain(|x| x.to.is_none_or(|t| t >= since));
    }
    out
}

pub(super) async fn mail(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Range>,
) -> Result<Response, WebError> {
    let oldest = st.db.read(store::oldest_sample).await?;
    let (range, secs) = range_secs(q.range.as_deref(), oldest)?;
    let rt = st.live.snapshot();
    let until = now();
    let since = until - secs;
    let (latest, series, events) = st
        .db
        .read(move |c| {
            let latest = store::latest_samples(c)?;
            let mut series = Vec::with_capacity(latest.len());
            for (source, metric, _, _) in &latest {
                series.push(store::series(c, source, metric, since, until, 240)?);
            }
            // a spike raised before the range may still be on
            let events = store::events_of_kinds(c, SPIKE_KINDS, since - 30 * 86_400)?;
            Ok((latest, series, events))
        })
        .await?;
    let spikes = windows(&events, since);
    // group by (source, unit); metrics of no known unit get a chart each
    let mut groups: BTreeMap<(String, String), Vec<Metric>> = BTreeMap::new();
    for ((source, metric, _, value), points) in latest.into_iter().zip(series) {
        let kind = rt
            .cfg
            .sources
            .iter()
            .find(|s| s.name == source)
            .map(|s| &s.kind);
        let unit = unit_of(kind, &metric);
        // a figure of unknown unit is charted under its own name: a command
        // source's one number (metric "value") under the source's name
        let key = if unit == "value" {
            let name = if metric == "value" { &source } else { &metric };
            (source.clone(), format!("value: {name}"))
        } else {
            (source.clone(), unit.to_string())
        };
        groups.entry(key).or_default().push((metric, value, points));
    }
    let mut charts = Vec::new();
    for ((source, unit), metrics) in groups {
        let thresholds: Vec<Option<f64>> = metrics
            .iter()
            .map(|(m, _, _)| {
                let key = format!("{source}.{m}");
                rt.cfg
                    .spikes
                    .iter()
                    .find(|r| r.metric == key)
                    .and_then(|r| r.above)
            })
            .collect();
        let lines: Vec<Series<'_>> = metrics
            .iter()
            .zip(&thresholds)
            .map(|((m, _, points), th)| Series {
                label: m,
                points,
                threshold: *th,
            })
            .collect();
        let wins: Vec<Window> = metrics
            .iter()
            .flat_map(|(m, _, _)| {
                spikes
                    .get(&format!("{source}.{m}"))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let unknown = unit.starts_with("value: ");
        let unit_label = unit.strip_prefix("value: ").unwrap_or(unit.as_str());
        let unit = unit_label.to_string();
        charts.push(Chart {
            svg: svg::line_chart(&lines, unit_label, since, until, &wins),
            legend: metrics
                .iter()
                .zip(thresholds)
                .enumerate()
                .map(|(i, ((m, v, _), th))| Legend {
                    metric: if unknown && m == "value" {
                        source.clone()
                    } else {
                        m.clone()
                    },
                    swatch: svg::swatch(i),
                    latest: Some(*v),
                    threshold: th,
                })
                .collect(),
            spikes: wins.len(),
            id: format!("{source}-{}", unit.replace([' ', ':', '.'], "-")),
            source,
            unit,
        });
    }
    let ranges = super::render::RANGES.map(|(n, _)| n);
    render(
        &st,
        "mail.html",
        minijinja::context! { charts, range, ranges },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    #[test]
    fn units_from_kind_and_name() {
        let log = SourceKind::PostfixLog {
            path: "/var/log/mail.log".into(),
        };
        assert_eq!(unit_of(None, "queue_depth"), "messages");
        assert_eq!(unit_of(None, "queue_oldest_age_seconds"), "seconds");
        assert_eq!(unit_of(Some(&log), "deferred"), "per read interval");
        assert_eq!(unit_of(None, "ndr_generated"), "per read interval");
        assert_eq!(unit_of(None, "load"), "value");
    }

    #[test]
    fn spike_windows_run_from_the_spike_to_its_clearing() {
        let m = Subject::Metric {
            source: "mx".into(),
            metric: "queue_depth".into(),
        };
        let ev = |k, at| Event::new(k, at, m.clone(), String::new(), serde_json::json!({}));
        let w = windows(
            &[
                ev(EventKind::QueueSpike, 10),
                ev(EventKind::QueueSpikeCleared, 20),
                ev(EventKind::QueueSpike, 100),
                ev(EventKind::QueueSpike, 110),
            ],
            0,
        );
        let w = &w["mx.queue_depth"];
        assert_eq!(w.len(), 2);
        assert_eq!(
            (w[0].from, w[0].to, w[1].from, w[1].to),
            (10, Some(20), 100, None)
        );
        assert!(windows(
            &[
                ev(EventKind::QueueSpike, 10),
                ev(EventKind::QueueSpikeCleared, 20)
            ],
            50
        )["mx.queue_depth"]
            .is_empty());
    }
}
