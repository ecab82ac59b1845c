//! The delisting workflow: "delisting requested" from the target page (form
//! token), the API (`POST /api/v1/delistings`, what `rblwatch delist` uses)
//! and the list of requests with their time to delist. Recording goes through
//! the daemon ([`super::Live::request_delist`]), which also re-checks the pair
//! at once.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Deserialize;

use super::render::Page;
use super::{WebError, WebState};
use crate::store::{self, DelistVia, NewDelistRequest};
use crate::target::Target;
use crate::time::now;

/// Longest name kept for "who asked".
const MAX_BY: usize = 100;
/// Longest note kept.
const MAX_NOTE: usize = 1000;

/// Keeps printable text (and, in notes, line breaks), at most `max` characters.
fn clean(s: &str, max: usize, newlines: bool) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control() || (newlines && *c == '\n'))
        .take(max)
        .collect()
}

/// Checks a request against the configuration and builds it (not yet recorded).
fn build(
    st: &WebState,
    target: &str,
    list: &str,
    by: &str,
    note: &str,
    via: DelistVia,
) -> Result<NewDelistRequest, WebError> {
    let rt = st.live.snapshot();
    let t = Target::parse(target.trim())
        .map_err(|_| WebError::NotFound(format!("{target:?} is not a monitored target")))?;
    if !rt.cfg.targets.iter().any(|c| c.spec.contains(&t)) {
        return Err(WebError::NotFound(format!("{t} is not a monitored target")));
    }
    let Some(l) = rt.engine.lists().iter().find(|l| l.def.id == list.trim()) else {
        return Err(WebError::NotFound(format!("no list {list:?} in use")));
    };
    if !l.def.kind.accepts(&t) {
        return Err(WebError::BadRequest(format!(
            "list {} does not answer for {t}",
            l.def.id
        )));
    }
    Ok(NewDelistRequest {
        target: t.to_string(),
        list: l.def.id.clone(),
        at: now(),
        by: clean(by, MAX_BY, false),
        via,
        note: clean(note, MAX_NOTE, true),
        wait: store::delist_wait(l.def.expiry),
    })
}

/// Records it and asks for the re-check; `Conflict` when the pair is not listed.
async fn record(
    st: &WebState,
    r: NewDelistRequest,
) -> Result<(store::DelistRequest, bool), WebError> {
    let (target, list) = (r.target.clone(), r.list.clone());
    let Some(d) = st.live.request_delist(r).await? else {
        return Err(WebError::Conflict(format!(
            "{target} is not listed on {list}: there is nothing to delist"
        )));
    };
    let queued = st.live.recheck(&target, &list);
    if queued {
        tracing::info!(target = %target, list = %list, "delisting requested; re-check queued");
    } else {
        tracing::warn!(target = %target, list = %list, "delisting requested; the re-check could not be queued (the next sweep re-checks the pair)");
    }
    Ok((d, queued))
}

fn basic_user(headers: &HeaderMap) -> Option<String> {
    super::auth::basic_user(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The target page's form.
#[derive(Debug, Deserialize)]
pub(super) struct DelistForm {
    csrf: String,
    target: String,
    list: String,
    #[serde(default)]
    by: String,
    #[serde(default)]
    note: String,
}

pub(super) async fn form(
    State(st): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(f): Form<DelistForm>,
) -> Result<Response, WebError> {
    if !super::auth::secret_eq(&f.csrf, &st.csrf) {
        return Ok((StatusCode::FORBIDDEN, "missing or wrong form token").into_response());
    }
    let by = match f.by.trim() {
        "" => basic_user(&headers).unwrap_or_else(|| "web page".into()),
        b => b.to_string(),
    };
    let r = build(&st, &f.target, &f.list, &by, &f.note, DelistVia::Web)?;
    let (d, _) = record(&st, r).await?;
    let to = format!(
        "/target/{}#delist-{}",
        super::urlencode(d.target.clone()),
        super::urlencode(d.list.clone())
    );
    Ok(Redirect::to(&to).into_response())
}

/// `POST /api/v1/delistings` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DelistJson {
    target: String,
    list: String,
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

pub(super) async fn create(
    State(st): State<Arc<WebState>>,
    headers: HeaderMap,
    Json(j): Json<DelistJson>,
) -> Result<Response, WebError> {
    let by =
        j.by.filter(|b| !b.trim().is_empty())
            .or_else(|| basic_user(&headers))
            .unwrap_or_else(|| "api".into());
    let r = build(
        &st,
        &j.target,
        &j.list,
        &by,
        j.note.as_deref().unwrap_or(""),
        DelistVia::Api,
    )?;
    let (d, queued) = record(&st, r).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "request": d, "recheck_queued": queued })),
    )
        .into_response())
}

/// `?page=N&target=T`
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    // (not a flattened `Page`: serde_urlencoded cannot read numbers through `flatten`)
    page: Option<u32>,
    target: Option<String>,
}

pub(super) async fn list(
    State(st): State<Arc<WebState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, WebError> {
    let page = Page {
        page: q.page,
        range: None,
    }
    .number();
    let target = match q.target.as_deref() {
        Some(t) => Some(
            Target::parse(t)
                .map_err(|_| WebError::BadRequest(format!("{t:?} is not a target")))?
                .to_string(),
        ),
        None => None,
    };
    let (requests, has_next) = super::render::paginate(&st, page, move |c, limit, offset| {
        store::delist_requests(c, target.as_deref(), limit, offset)
    })
    .await?;
    let at = now();
    let requests: Vec<serde_json::Value> = requests
        .into_iter()
        .map(|d| {
            let overdue = d.overdue(at);
            let mut v = serde_json::to_value(&d).unwrap_or_default();
            v["overdue"] = overdue.into();
            v
        })
        .collect();
    Ok(Json(
        serde_json::json!({ "page": page, "has_next": has_next, "delistings": requests }),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_notes_are_trimmed_to_printable_text() {
        assert_eq!(
            super::clean("  al\u{1b}[31mice\r\n", 100, false),
            "al[31mice"
        );
        assert_eq!(super::clean("a\nb\tc", 100, true), "a\nbc");
        assert_eq!(super::clean(&"x".repeat(500), 100, false).len(), 100);
    }
}
