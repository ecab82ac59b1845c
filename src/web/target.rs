//! The target page: its listings first (TXT reasons, delisting link, the
//! list's typical expiry, the "delisting requested" button or the request's
//! state), then every list's state for it (a list whose answers do not count
//! shows "unchecked", never "clear"), the listing periods on a timeline, the
//! delisting requests with their time to delist, and its events.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;

use super::view::{self, cell_state};
use super::{WebError, WebState};
use crate::store;
use crate::target::Target;
use crate::time::now;

/// The target page's data; 404 for targets not configured. The API serves it without the SVG.
pub(super) async fn target_data(st: &WebState, raw: &str) -> Result<serde_json::Value, WebError> {
    let rt = st.live.snapshot();
    let target = Target::parse(raw)
        .map_err(|_| WebError::NotFound(format!("{raw:?} is not a monitored target")))?;
    let Some(conf) = rt.cfg.targets.iter().find(|c| c.spec.contains(&target)) else {
        return Err(WebError::NotFound(format!(
            "{target} is not a monitored target"
        )));
    };
    let t = target.to_string();
    let t2 = t.clone();
    let (pairs, periods, events, health, requests) = st
        .db
        .read(move |c| {
            Ok((
                store::pairs_of(c, &t2)?,
                store::listings(c, Some(&t2), false)?,
                store::events(c, Some(&t2), 50, 0)?,
                store::load_health(c)?,
                store::delist_requests(c, Some(&t2), 100, 0)?,
            ))
        })
        .await?;
    let at = now();
    let mut rows = Vec::new();
    let (mut listed, mut usable, mut unchecked) = (0, 0, 0);
    for l in rt
        .engine
        .lists()
        .iter()
        .filter(|l| l.def.kind.accepts(&target))
    {
        let h = health.get(&l.def.id);
        let p = pairs.iter().find(|p| p.list == l.def.id);
        let (state, why) = cell_state(p.map(|p| p.state), h);
        let is_listed = p.is_some_and(|p| p.state.is_listed());
        listed += usize::from(is_listed);
        usable += usize::from(h.is_some_and(|h| h.is_healthy()));
        unchecked += usize::from(state == "unchecked");
        // the latest request of this listing (one made during an earlier listing does not count)
        let request = requests
            .iter()
            .find(|r| r.list == l.def.id)
            .filter(|r| is_listed && r.delisted_at.is_none());
        rows.push(serde_json::json!({
            "id": l.def.id, "name": l.def.name, "operator": view::operator(&l.def.zone),
            "health": h.map_or("unchecked", |h| h.name()), "health_why": h.map(|h| h.why()).unwrap_or(""),
            "state": state, "state_why": why, "listed": is_listed,
            "since": p.map(|p| p.since),
            "codes": p.map(|p| p.details.codes.clone()).unwrap_or_default(),
            "meanings": p.map(|p| p.details.meanings.clone()).unwrap_or_default(),
            "txt": p.map(|p| p.details.txt.clone()).unwrap_or_default(),
            "delist": l.def.delist_url(&target),
            "expiry": view::expiry_text(&l.def),
            "impact": if is_listed { Some(st.live.impact(&t, &l.def.id)) } else { None },
            "request": request,
            "overdue": request.is_some_and(|r| r.overdue(at)),
        }));
    }
    // listed first, then pending, then the rest (unchecked before clear)
    let rank = |s: &str| match s {
        "listed" | "clearing" => 0,
        "suspected" => 1,
        "unchecked" => 2,
        _ => 3,
    };
    rows.sort_by_key(|r| rank(r["state"].as_str().unwrap_or("")));
    let summary = if listed > 0 {
        format!(
            "Listed on {listed} of {} list{}",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        )
    } else if usable == 0 {
        "Can't tell: no list that answers for it is usable".to_string()
    } else if unchecked > 0 {
        format!("Not listed on any of the {usable} usable lists; {unchecked} unchecked")
    } else {
        format!("Not listed on any of the {usable} lists")
    };
    let until = at;
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
    let timeline = if bars.is_empty() {
        String::new()
    } else {
        super::svg::timeline(&bars, since, until)
    };
    let requests: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["overdue"] = r.overdue(at).into();
            v
        })
        .collect();
    Ok(serde_json::json!({
        "target": t, "label": conf.label, "summary": summary, "listed": listed,
        "rows": rows, "periods": periods, "requests": requests, "events": events, "timeline": timeline,
    }))
}

pub(super) async fn target(
    State(st): State<Arc<WebState>>,
    Path(raw): Path<String>,
) -> Result<Response, WebError> {
    let v = target_data(&st, &raw).await?;
    super::pages::render(&st, "target.html", minijinja::Value::from_serialize(&v))
}
