//! What every page shares: rendering a template with the base context,
//! `?page=N` pagination and chart ranges. Pages and the API import it; it
//! imports no page, so the files of the web folder depend on one another one way.

use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{WebError, WebState};
use crate::time::now;

/// `?page=N&per_page=M`: which page of a list, and how long (the API's
/// default length is `[web] page_size`).
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Page {
    /// 1-based.
    #[param(minimum = 1, maximum = 1_000_000)]
    pub(super) page: Option<u32>,
    /// Rows per page.
    #[param(minimum = 1, maximum = 500)]
    pub(super) per_page: Option<u32>,
}

/// `?range=`: a chart's span (without it, the shortest holding all samples).
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Range {
    /// `1h`, `6h`, `24h`, `7d` or `30d`.
    #[param(pattern = "^(1h|6h|24h|7d|30d)$")]
    pub(super) range: Option<String>,
}

/// The largest page size the API serves.
pub(super) const MAX_PER_PAGE: u32 = 500;
/// The highest page number asked for (past it the offset would not fit).
pub(super) const MAX_PAGE: u32 = 1_000_000;

/// A page of a list: which one and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Paging {
    pub(super) page: u32,
    pub(super) per_page: u32,
}

impl Page {
    /// The page number for a page of the site (out of range: the nearest).
    pub(super) fn number(&self) -> u32 {
        self.page.unwrap_or(1).clamp(1, MAX_PAGE)
    }

    /// The API's page, checked against the bounds its OpenAPI document
    /// states (a 400 outside them); `per_page` defaults to `[web] page_size`.
    pub(super) fn checked(&self, default_size: u32) -> Result<Paging, WebError> {
        let page = self.page.unwrap_or(1);
        if !(1..=MAX_PAGE).contains(&page) {
            return Err(WebError::BadRequest(format!(
                "page {page}: pages run from 1 to {MAX_PAGE}"
            )));
        }
        let per_page = self.per_page.unwrap_or(default_size.min(MAX_PER_PAGE));
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(WebError::BadRequest(format!(
                "per_page {per_page}: from 1 to {MAX_PER_PAGE}"
            )));
        }
        Ok(Paging { page, per_page })
    }
}

/// One page of rows from `query(limit, offset)`: asks for one row more than
/// the page holds to know whether a next page exists.
pub(super) async fn paginate<T, F>(
    st: &WebState,
    page: u32,
    query: F,
) -> Result<(Vec<T>, bool), WebError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection, u32, u32) -> crate::store::Result<Vec<T>> + Send + 'static,
{
    let paging = Paging {
        page: page.clamp(1, MAX_PAGE),
        per_page: st.conf.page_size.clamp(1, MAX_PER_PAGE),
    };
    let (rows, has_next, _) = paginate_counted(st, paging, query, |_| Ok(0)).await?;
    Ok((rows, has_next))
}

/// One page of rows and how many there are in all (one read transaction).
pub(super) async fn paginate_counted<T, F, C>(
    st: &WebState,
    p: Paging,
    query: F,
    count: C,
) -> Result<(Vec<T>, bool, u64), WebError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection, u32, u32) -> crate::store::Result<Vec<T>> + Send + 'static,
    C: FnOnce(&rusqlite::Connection) -> crate::store::Result<u64> + Send + 'static,
{
    let size = p.per_page;
    let offset = (p.page - 1).saturating_mul(size);
    let (mut rows, total) = st
        .db
        .read(move |c| Ok((query(c, size + 1, offset)?, count(c)?)))
        .await?;
    let has_next = rows.len() > size as usize;
    rows.truncate(size as usize);
    Ok((rows, has_next, total))
}

pub(super) fn render(
    st: &WebState,
    name: &str,
    ctx: minijinja::Value,
) -> Result<Response, WebError> {
    Ok(Html(render_string(st, name, ctx)?).into_response())
}

/// A page built once per store version (see [`super::WebState::cached`]):
/// `data` rendered into `template`, served as HTML. A page left open
/// refreshes every minute, and many are open at once.
pub(super) async fn cached_page<F, Fut>(
    st: &WebState,
    key: &str,
    template: &str,
    data: F,
) -> Result<Response, WebError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<minijinja::Value, WebError>>,
{
    let body = st
        .cached(key, || async {
            Ok(render_string(st, template, data().await?)?.into_bytes())
        })
        .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response())
}

pub(super) fn render_string(
    st: &WebState,
    name: &str,
    ctx: minijinja::Value,
) -> Result<String, WebError> {
    let base = minijinja::context! {
        host => st.live.snapshot().cfg.actions.host.clone(),
        now => now(),
        refresh => st.conf.refresh.map(|d| d.as_secs()),
        csrf => st.csrf.clone(),
    };
    let tpl = st.env.get_template(name).map_err(WebError::from)?;
    tpl.render(minijinja::context! { ..base, ..ctx })
        .map_err(WebError::from)
}

/// Targets in natural order: addresses by number (198.18.0.2 before
/// 198.18.0.10, IPv4 before IPv6), then domains by name.
pub(super) fn target_order(t: &str) -> (bool, Option<std::net::IpAddr>, String) {
    let ip = t.parse::<std::net::IpAddr>().ok();
    (ip.is_none(), ip, t.to_ascii_lowercase())
}

/// The chart ranges, shortest first.
pub(super) const RANGES: [(&str, i64); 5] = [
    ("1h", 3600),
    ("6h", 6 * 3600),
    ("24h", 86_400),
    ("7d", 7 * 86_400),
    ("30d", 30 * 86_400),
];

/// A chart range (`?range=`) and its length in seconds. Without one, the
/// shortest range that holds every sample since `oldest` (eleven minutes of
/// data in a 24-hour chart is a sliver), 24 hours when there is none.
pub(super) fn range_secs(
    r: Option<&str>,
    oldest: Option<i64>,
) -> Result<(&'static str, i64), WebError> {
    match r {
        Some(r) => RANGES
            .iter()
            .find(|(n, _)| *n == r)
            .copied()
            .ok_or_else(|| {
                WebError::BadRequest(format!(
                    "range {r:?}: use {}",
                    RANGES.map(|(n, _)| n).join(", ")
                ))
            }),
        None => Ok(match oldest {
            None => RANGES[2],
            Some(o) => {
                let age = now() - o;
                RANGES
                    .iter()
                    // a little slack: a day of samples read a moment later is still a day
                    .find(|(_, secs)| age <= secs + secs / 20)
                    .copied()
                    .unwrap_or(RANGES[4])
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 22: IPs sorted as text (198.18.0.10 before 198.18.0.2).
    #[test]
    fn targets_sort_naturally() {
        let mut t = vec![
            "example.com",
            "198.18.0.10",
            "2001:db8::1",
            "198.18.0.2",
            "a.example",
        ];
        t.sort_by_key(|t| target_order(t));
        assert_eq!(
            t,
            [
                "198.18.0.2",
                "198.18.0.10",
                "2001:db8::1",
                "a.example",
                "example.com"
            ]
        );
    }

    /// Issue 22: the shortest range was 24 h, and 11 minutes of data a sliver in it.
    #[test]
    fn the_default_range_is_the_shortest_holding_all_data() {
        let t = now();
        assert_eq!(range_secs(None, Some(t - 660)).ok(), Some(("1h", 3600)));
        assert_eq!(
            range_secs(None, Some(t - 86_460)).ok().map(|r| r.0),
            Some("24h")
        );
        assert_eq!(
            range_secs(None, Some(t - 5 * 3600)).ok().map(|r| r.0),
            Some("6h")
        );
        assert_eq!(
            range_secs(None, Some(t - 3 * 86_400)).ok().map(|r| r.0),
            Some("7d")
        );
        assert_eq!(
            range_secs(None, Some(t - 90 * 86_400)).ok().map(|r| r.0),
            Some("30d")
        );
        assert_eq!(range_secs(None, None).ok().map(|r| r.0), Some("24h"));
        assert_eq!(range_secs(Some("6h"), None).ok().map(|r| r.0), Some("6h"));
        assert!(range_secs(Some("2h"), None).is_err());
    }
}
