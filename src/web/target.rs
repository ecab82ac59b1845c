//! The target page: its listings first (TXT reasons, delisting link, the
//! list's typical expiry, the "delisting requested" button or the request's
//! state), then every list's state for it (a list whose answers do not count
//! shows "unchecked", never "clear"), the listing periods on a timeline, the
//! delisting requests with their time to delist, and its events.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;

use super::view::{self, cell_state};
use super::{WebError, WebState};
use crate::store;
use crate::target::Target;
use crate::time::now;

/// A pair's state as the pages show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CellState {
    /// `listed`, `suspected`, `clearing`, `clear` or `unchecked`.
    state: &'static str,
    /// Why, when unchecked.
    why: Option<String>,
}

/// One list's row on the target page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Row {
    /// The list's id.
    #[serde(rename = "list")]
    id: String,
    name: String,
    operator: String,
    health: &'static str,
    state: CellState,
    /// Listed or clearing.
    listed: bool,
    /// The pair's own state's details (absent for plain clear and unchecked pairs).
    listing: Option<Listing>,
    /// What receivers do about this listing (the daemon's last assessment;
    /// absent when not assessed): kind, severity, text, receivers, replies.
    #[schema(value_type = Option<Object>)]
    impact: Option<serde_json::Value>,
}

/// What is known of a pair that is not plainly clear.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Listing {
    /// The listed part of a range checked as a whole that the target lies in.
    part: Option<String>,
    since: i64,
    codes: Vec<String>,
    meanings: Vec<String>,
    /// Remote text: escaped when shown.
    txt: Vec<String>,
    delist: Option<String>,
    expiry: String,
    impact: Option<super::Impact>,
    request: Option<store::DelistRequest>,
    overdue: bool,
}

/// The target page's data.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct TargetView {
    target: String,
    label: Option<String>,
    summary: String,
    /// Lists it is listed on now.
    listings: usize,
    /// Every list that answers for it, listed first.
    rows: Vec<Row>,
    #[schema(value_type = Vec<Object>)]
    periods: Vec<store::ListingRow>,
    #[schema(value_type = Vec<Object>)]
    requests: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    events: Vec<crate::event::Event>,
    /// Receivers whose refusals cite a listing of this target.
    #[schema(value_type = Vec<Object>)]
    receivers: Vec<crate::impact::ReceiverImpact>,
    /// What Microsoft SNDS says of it (IP targets, with an SNDS feed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub(super) snds: Option<super::snds::SndsView>,
    /// The timeline (SVG markup; the page's, not the API's).
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(ignore)]
    pub(super) timeline: String,
}

impl TargetView {
    /// Drops the SVG (the API serves the data without it).
    pub(super) fn no_charts(&mut self) {
        if let Some(s) = &mut self.snds {
            s.charts.clear();
        }
    }
}

/// What the target page reads from the store, in one transaction.
struct Reads {
    pairs: Vec<store::StoredPair>,
    periods: Vec<store::ListingRow>,
    events: Vec<crate::event::Event>,
    health: std::collections::HashMap<String, crate::health::ListHealth>,
    requests: Vec<store::DelistRequest>,
    unchecked: Vec<store::UncheckedPair>,
    assessment: Option<crate::impact::Assessment>,
}

async fn read(st: &WebState, t: String, in_range: bool) -> Result<Reads, WebError> {
    Ok(st
        .db
        .read(move |c| {
            let mut pairs = store::pairs_of(c, &t)?;
            if in_range {
                // a range checked as a whole keeps its pairs by part: the part this address lies in
                let ip: Option<std::net::IpAddr> = t.parse().ok();
                for p in store::load_pairs(c)? {
                    let inside = crate::prefixes::key_range(&p.target).zip(ip).is_some_and(
                        |((a, b), ip)| {
                            p.target != t && a <= ip && ip <= b && a.is_ipv4() == ip.is_ipv4()
                        },
                    );
                    if inside && !pairs.iter().any(|q| q.list == p.list) {
                        pairs.push(p);
                    }
                }
            }
            let mut requests = store::delist_requests(c, Some(&t), 100, 0)?;
            // the delisting requests of the parts it lies in (their pairs' own)
            for p in pairs.iter().filter(|p| p.target != t) {
                if !requests.iter().any(|q| q.target == p.target) {
                    requests.extend(store::delist_requests(c, Some(&p.target), 100, 0)?);
                }
            }
            requests.sort_by_key(|q| std::cmp::Reverse(q.id));
            Ok(Reads {
                pairs,
                periods: store::listings(c, Some(&t), false)?,
                events: store::events(c, Some(&t), 50, 0)?,
                health: store::load_health(c)?,
                requests,
                unchecked: store::unchecked_pairs(c, Some(&t))?,
                assessment: super::impact::read_assessment(c)?,
            })
        })
        .await?)
}

/// How many lists list the target, answer usably, and could not be asked.
#[derive(Debug, Default)]
struct Tally {
    listed: usize,
    usable: usize,
    unchecked: usize,
}

/// Every list that answers for the target: its state for it, with the
/// listing's details and delisting request where it has a state of its own;
/// listed first, then pending, then the rest (unchecked before clear).
fn rows(st: &WebState, target: &Target, r: &Reads, at: i64) -> (Vec<Row>, Tally) {
    let rt = st.live.snapshot();
    let t = target.to_string();
    let resolver_unusable = st
        .live
        .resolver()
        .is_some_and(|r| r.status == crate::health::ResolverStatus::Unusable);
    let mut rows = Vec::new();
    let mut n = Tally::default();
    for l in rt
        .engine
        .lists()
        .iter()
        .filter(|l| l.def.kind.accepts(target))
    {
        let h = r.health.get(&l.def.id);
        let p = r.pairs.iter().find(|p| p.list == l.def.id);
        let own = if resolver_unusable {
            Some("the resolver is unusable")
        } else {
            r.unchecked
                .iter()
                .find(|u| u.list == l.def.id)
                .map(|u| u.why.as_str())
        };
        let (state, why) = cell_state(p.map(|p| p.state), own, h);
        let is_listed = p.is_some_and(|p| p.state.is_listed());
        n.listed += usize::from(is_listed);
        n.usable += usize::from(h.is_some_and(|h| h.is_healthy()));
        n.unchecked += usize::from(state == "unchecked");
        // the details only where the pair has a state of its own: most rows are plain
        let listing = p.map(|p| {
            // the latest request of this listing (one made during an earlier listing does not count)
            let request = r
                .requests
                .iter()
                .find(|q| q.list == l.def.id && q.target == p.target)
                .filter(|q| is_listed && q.delisted_at.is_none())
                .cloned();
            Listing {
                part: (p.target != t).then(|| p.target.clone()),
                since: p.since,
                codes: p.details.codes.iter().map(|c| c.to_string()).collect(),
                meanings: p.details.meanings.clone(),
                txt: p.details.txt.clone(),
                delist: l.def.delist_url(target),
                expiry: view::expiry_text(&l.def),
                impact: is_listed.then(|| st.live.impact(&p.target, &l.def.id, p.since)),
                overdue: request.as_ref().is_some_and(|q| q.overdue(at)),
                request,
            }
        });
        rows.push(Row {
            id: l.def.id.clone(),
            name: l.def.name.clone(),
            operator: view::operator(&l.def.zone),
            health: h.map_or("unchecked", |h| h.name()),
            state: CellState { state, why },
            listed: is_listed,
            listing,
            impact: r
                .assessment
                .as_ref()
                .and_then(|a| a.listing(p.map_or(&t, |p| &p.target), &l.def.id))
                .map(super::impact::impact_json),
        });
    }
    let rank = |s: &str| match s {
        "listed" | "clearing" => 0,
        "suspected" => 1,
        "unchecked" => 2,
        _ => 3,
    };
    rows.sort_by_key(|r| rank(r.state.state));
    (rows, n)
}

/// The page's one line.
fn summary(n: &Tally, lists: usize) -> String {
    if n.listed > 0 {
        format!(
            "Listed on {} of {lists} list{}",
            n.listed,
            if lists == 1 { "" } else { "s" }
        )
    } else if n.usable == 0 {
        "Can't tell: no list that answers for it is usable".to_string()
    } else if n.unchecked > 0 {
        format!(
            "Not listed on any of the {} usable lists; {} unchecked",
            n.usable, n.unchecked
        )
    } else {
        format!("Not listed on any of the {} lists", n.usable)
    }
}

/// The listing periods on a timeline from the first (at least a day) to now.
fn timeline(periods: &[store::ListingRow], until: i64) -> String {
    let since = periods
        .iter()
        .map(|p| p.started_at)
        .min()
        .unwrap_or(until - 86_400)
        .min(until - 86_400);
    let bars: Vec<super::svg::Period> = periods
        .iter()
        .take(40)
        .map(|p| super::svg::Period {
            row: p.list.clone(),
            from: p.started_at,
            to: p.ended_at,
        })
        .collect();
    if bars.is_empty() {
        String::new()
    } else {
        super::svg::timeline(&bars, since, until)
    }
}

/// The target page's data; 404 for targets not configured. The API serves it without the SVG.
pub(super) async fn target_data(st: &WebState, raw: &str) -> Result<TargetView, WebError> {
    let rt = st.live.snapshot();
    let target = Target::parse(raw)
        .map_err(|_| WebError::NotFound(format!("{raw:?} is not a monitored target")))?;
    let Some(conf) = rt.cfg.targets.iter().find(|c| c.spec.contains(&target)) else {
        return Err(WebError::NotFound(format!(
            "{target} is not a monitored target"
        )));
    };
    let t = target.to_string();
    let in_range = matches!(conf.spec, crate::target::TargetSpec::Net(_));
    let r = read(st, t.clone(), in_range).await?;
    let at = now();
    let (rows, n) = rows(st, &target, &r, at);
    let requests: Vec<serde_json::Value> = r
        .requests
        .iter()
        .map(|q| {
            let mut v = serde_json::to_value(q).unwrap_or_default();
            v["overdue"] = q.overdue(at).into();
            v
        })
        .collect();
    let receivers = r
        .assessment
        .iter()
        .flat_map(|a| a.receivers.iter())
        .filter(|x| {
            x.lists.iter().any(|c| {
                c.listed
                    .iter()
                    .any(|l| r.pairs.iter().any(|p| &p.target == l))
            })
        })
        .cloned()
        .collect();
    let snds = match &target {
        Target::Ip(ip) => super::snds::for_target(st, *ip).await?,
        _ => None,
    };
    Ok(TargetView {
        snds,
        receivers,
        target: t,
        label: conf.label.clone(),
        summary: summary(&n, rows.len()),
        listings: n.listed,
        rows,
        timeline: timeline(&r.periods, at),
        periods: r.periods,
        requests,
        events: r.events,
    })
}

pub(super) async fn target(
    State(st): State<Arc<WebState>>,
    Path(raw): Path<String>,
) -> Result<Response, WebError> {
    // a range (`198.51.96.0%2F20`) or a part of one: its range's page
    if super::range::is_range(&st, &raw) {
        return super::range::page_of(&st, &raw).await;
    }
    // built once per store version, like the overview: a page left open
    // refreshes every minute, and a listing's page is what people reload
    super::render::cached_page(&st, &format!("target:{raw}"), "target.html", || async {
        Ok(minijinja::Value::from_serialize(
            &target_data(&st, &raw).await?,
        ))
    })
    .await
}
