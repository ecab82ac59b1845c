//! HTML pages. The data behind each page is built by a `*_data` function that
//! the JSON API serves too, so the page and the API never disagree.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::render::{paginate, render, Page, Paging};
use super::{WebError, WebState};
use crate::store;

/// A target in the list of targets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct TargetEntry {
    /// An address, a domain, or an IPv6 prefix watched whole.
    target: String,
    /// Its label from the configuration.
    label: Option<String>,
    /// Lists it is listed on now (listed or clearing).
    listings: usize,
    /// Pairs waiting for confirmation (suspected).
    pending: usize,
}

/// One page of targets (ranges expand lazily; only the page is materialised)
/// and how many targets there are.
pub(super) async fn targets_data(
    st: &WebState,
    p: Paging,
) -> Result<(Vec<TargetEntry>, bool, u64), WebError> {
    let rt = st.live.snapshot();
    let size = p.per_page as usize;
    let skip = (p.page as usize - 1).saturating_mul(size);
    let mut it = rt
        .cfg
        .targets
        .iter()
        .flat_map(|c| {
            // an IPv6 prefix is watched whole: one entry, its page lists the parts
            let whole = c.spec.prefix().map(|_| c.spec.to_string());
            c.spec
                .targets()
                .map(|t| t.to_string())
                .chain(whole)
                .map(move |t| (t, c.label.clone()))
        })
        .skip(skip);
    let chunk: Vec<_> = it.by_ref().take(size).collect();
    let has_next = it.next().is_some();
    let total: u128 = rt.cfg.targets.iter().map(|t| t.spec.len()).sum();
    let pairs = st.db.read(store::load_pairs).await?;
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for p in &pairs {
        let e = counts.entry(p.target.as_str()).or_default();
        if p.state.is_listed() {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let rows = chunk
        .into_iter()
        .map(|(target, label)| {
            let (listings, pending) = match target.parse::<ipnet::IpNet>() {
                // a prefix: its parts' pairs
                Ok(net) => counts
                    .iter()
                    .filter(|(k, _)| crate::prefixes::key_in(k, &net))
                    .fold((0, 0), |(a, b), (_, (l, p))| (a + l, b + p)),
                Err(_) => counts.get(target.as_str()).copied().unwrap_or_default(),
            };
            TargetEntry {
                target,
                label,
                listings,
                pending,
            }
        })
        .collect();
    Ok((rows, has_next, u64::try_from(total).unwrap_or(u64::MAX)))
}

pub(super) async fn targets(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Response, WebError> {
    let page = q.number();
    let paging = Paging {
        page,
        per_page: st.conf.page_size.clamp(1, super::render::MAX_PER_PAGE),
    };
    let (targets, has_next, total) = targets_data(&st, paging).await?;
    render(
        &st,
        "targets.html",
        minijinja::context! { targets, has_next, total, page },
    )
}

/// The lists in use, with their health, typical expiry and current listings.
pub(super) async fn lists_data(st: &WebState) -> Result<Vec<super::overview::ListView>, WebError> {
    let (health, pairs) = st
        .db
        .read(|c| Ok((store::load_health(c)?, store::load_pairs(c)?)))
        .await?;
    Ok(super::overview::list_views(st, &health, &pairs))
}

pub(super) async fn lists(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let lists = lists_data(&st).await?;
    let usable = lists.iter().filter(|l| l.usable).count();
    render(&st, "lists.html", minijinja::context! { lists, usable })
}

/// A list in use: its definition, health, the targets it lists now, its
/// listing periods and health history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ListDetail {
    /// Its id.
    list: String,
    /// Its definition from the catalog.
    #[schema(value_type = Object)]
    definition: crate::catalog::ListDef,
    /// The zone asked (a DQS key shown as `<key>`).
    zone: String,
    /// Its health now.
    health: String,
    /// Why, when not healthy.
    why: String,
    /// Why its IPv6 targets are unchecked this cycle (an IPv6 claim whose
    /// RFC 5782 IPv6 test points failed: treated as IPv4-only), if so.
    ipv6_down: Option<String>,
    /// Health checks, newest first.
    #[schema(value_type = Vec<Object>)]
    history: Vec<store::HealthChange>,
    /// Targets it lists now (in address order).
    #[schema(value_type = Vec<Object>)]
    pairs: Vec<store::StoredPair>,
    /// Listing periods, newest first.
    #[schema(value_type = Vec<Object>)]
    periods: Vec<store::ListingRow>,
}

pub(super) async fn list_data(st: &WebState, id: &str) -> Result<ListDetail, WebError> {
    let rt = st.live.snapshot();
    let Some(l) = rt.engine.lists().iter().find(|l| l.def.id == id) else {
        return Err(WebError::NotFound(format!("no list {id:?} in use")));
    };
    let id2 = id.to_string();
    let (history, mut pairs, periods, health) = st
        .db
        .read(move |c| {
            Ok((
                store::health_history(c, &id2, 100)?,
                store::pairs_on(c, &id2)?,
                store::listings_on(c, &id2, 100)?,
                store::load_health(c)?,
            ))
        })
        .await?;
    pairs.sort_by_cached_key(|p| super::render::target_order(&p.target));
    let h = health.get(id);
    Ok(ListDetail {
        list: l.def.id.clone(),
        definition: (*l.def).clone(),
        zone: l.display_zone(),
        health: h.map_or("unchecked", |h| h.name()).to_string(),
        why: h.map(|h| h.why().to_string()).unwrap_or_default(),
        ipv6_down: l.ipv6_down(),
        history,
        pairs,
        periods,
    })
}

pub(super) async fn list(
    State(st): State<Arc<WebState>>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let v = list_data(&st, &id).await?;
    render(&st, "list.html", minijinja::Value::from_serialize(&v))
}

pub(super) async fn events(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Response, WebError> {
    let page = q.number();
    let (events, has_next) = paginate(&st, page, |c, limit, offset| {
        store::events(c, None, limit, offset)
    })
    .await?;
    render(
        &st,
        "events.html",
        minijinja::context! { events, page, has_next },
    )
}

pub(super) async fn hook_runs(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Response, WebError> {
    let page = q.number();
    let (runs, has_next) = paginate(&st, page, |c, limit, offset| {
        store::hook_runs(c, None, limit, offset)
    })
    .await?;
    render(
        &st,
        "hooks.html",
        minijinja::context! { runs, page, has_next },
    )
}

pub(super) async fn alerts(
    State(st): State<Arc<WebState>>,
    Query(q): Query<Page>,
) -> Result<Response, WebError> {
    let page = q.number();
    let (alerts, has_next) = paginate(&st, page, |c, limit, offset| {
        store::alerts(c, limit, offset)
    })
    .await?;
    render(
        &st,
        "alerts.html",
        minijinja::context! { alerts, page, has_next },
    )
}

pub(super) async fn css(State(st): State<Arc<WebState>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        st.css.clone(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct CheckNow {
    csrf: String,
}

pub(super) async fn check_now(
    State(st): State<Arc<WebState>>,
    Form(f): Form<CheckNow>,
) -> Response {
    if !super::auth::secret_eq(&f.csrf, &st.csrf) {
        return (StatusCode::FORBIDDEN, "missing or wrong form token").into_response();
    }
    if st.live.check_now() {
        tracing::info!("sweep requested from the web page");
    } else {
        tracing::warn!("could not request a sweep (one is queued or the scheduler is busy)");
    }
    Redirect::to("/").into_response()
}
