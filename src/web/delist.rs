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
use serde::{Deserialize, Serialize};

use super::render::Page;
use super::{WebError, WebState};
use crate::prefixes;
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
    // a single target, or a listed part of a range checked whole (its pair's key)
    let (t, key) = match Target::parse(target.trim()) {
        Ok(t) => {
            if !rt.cfg.targets.iter().any(|c| c.spec.contains(&t)) {
                return Err(WebError::NotFound(format!("{t} is not a monitored target")));
            }
            let k = t.to_string();
            (t, k)
        }
        Err(_) => match prefixes::piece_of(target, &rt.cfg.targets) {
            Some(p) => (Target::Ip(p.first), p.key),
            None => {
                return Err(WebError::NotFound(format!(
                    "{target:?} is not a monitored target"
                )))
            }
        },
    };
    let Some(l) = rt.engine.lists().iter().find(|l| l.def.id == list.trim()) else {
        return Err(WebError::NotFound(format!("no list {list:?} in use")));
    };
    if !l.def.kind.accepts(&t) {
        return Err(WebError::BadRequest(format!(
            "list {} does not answer for {key}",
            l.def.id
        )));
    }
    Ok(NewDelistRequest {
        target: key,
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
    // a part of a range shows on its range's page, in the list's section
    let anchor = if Target::parse(&d.target).is_ok() {
        "delist"
    } else {
        "list"
    };
    let to = format!(
        "/target/{}#{anchor}-{}",
        super::urlencode(d.target.clone()),
        super::urlencode(d.list.clone())
    );
    Ok(Redirect::to(&to).into_response())
}

/// `POST /api/v1/delistings` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DelistJson {
    target: String,
    list: String,
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// Records that delisting was requested for a listed pair, and re-checks it at once.
#[utoipa::path(post, path = "/api/v1/delistings", tag = "delisting", operation_id = "create_delisting", request_body = DelistJson,
    responses((status = 201, description = "Recorded", body = DelistCreated),
        (status = "4XX", description = "Not a listed pair, or a bad body", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "The daemon could not record it", body = super::problem::Problem, content_type = "application/problem+json")))]
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
        Json(DelistCreated {
            request: d,
            recheck_queued: queued,
        }),
    )
        .into_response())
}

/// `?page=N&per_page=M&target=T`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    // (not a flattened `Page`: serde_urlencoded cannot read numbers through `flatten`)
    /// 1-based.
    #[param(minimum = 1, maximum = 1_000_000)]
    page: Option<u32>,
    /// Rows per page.
    #[param(minimum = 1, maximum = 500)]
    per_page: Option<u32>,
    /// Only this target's requests.
    target: Option<String>,
}

/// A delisting request with whether it is overdue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DelistingView {
    #[serde(flatten)]
    request: store::DelistRequest,
    /// Still listed past the list's usual time to delist.
    overdue: bool,
}

/// One page of delisting requests, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DelistingsPage {
    page: u32,
    per_page: u32,
    total: u64,
    has_next: bool,
    delistings: Vec<DelistingView>,
}

/// `POST /api/v1/delistings`' answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DelistCreated {
    /// The request as recorded.
    request: store::DelistRequest,
    /// Whether the pair's re-check was queued.
    recheck_queued: bool,
}

/// Delisting requests, newest first (of one target with `?target=`).
#[utoipa::path(get, path = "/api/v1/delistings", tag = "delisting", operation_id = "delistings", params(ListQuery),
    responses((status = 200, description = "A page of requests", body = DelistingsPage),
        (status = "4XX", description = "Bad page, per_page or target", body = super::problem::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(
    State(st): State<Arc<WebState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<DelistingsPage>, WebError> {
    let paging = Page {
        page: q.page,
        per_page: q.per_page,
    }
    .checked(st.conf.page_size)?;
    let target = match q.target.as_deref() {
        Some(t) => Some(match Target::parse(t) {
            Ok(t) => t.to_string(),
            // a part of a range checked whole, as its pair is keyed
            Err(_) => prefixes::piece_of(t, &st.live.snapshot().cfg.targets)
                .map(|p| p.key)
                .ok_or_else(|| WebError::BadRequest(format!("{t:?} is not a target")))?,
        }),
        None => None,
    };
    let t2 = target.clone();
    let (requests, has_next, total) = super::render::paginate_counted(
        &st,
        paging,
        move |c, limit, offset| store::delist_requests(c, target.as_deref(), limit, offset),
        move |c| store::count_paged(c, store::Counted::DelistRequests(t2.as_deref())),
    )
    .await?;
    let at = now();
    let delistings = requests
        .into_iter()
        .map(|d| DelistingView {
            overdue: d.overdue(at),
            request: d,
        })
        .collect();
    Ok(Json(DelistingsPage {
        page: paging.page,
        per_page: paging.per_page,
        total,
        has_next,
        delistings,
    }))
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
