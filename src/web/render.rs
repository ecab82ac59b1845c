//! What every page shares: rendering a template with the base context,
//! `?page=N` pagination and chart ranges. Pages and the API import it; it
//! imports no page, so the files of the web folder depend on one another one way.

use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{WebError, WebState};
use crate::time::now;

/// `?page=N` (1-based).
#[derive(Debug, Deserialize, Default)]
pub(super) struct Page {
    pub(super) page: Option<u32>,
    pub(super) range: Option<String>,
}

impl Page {
    pub(super) fn number(&self) -> u32 {
        self.page.unwrap_or(1).max(1)
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
    let size = st.conf.page_size;
    let mut rows = st
        .db
        .read(move |c| query(c, size + 1, (page - 1) * size))
        .await?;
    let has_next = rows.len() > size as usize;
    rows.truncate(size as usize);
    Ok((rows, has_next))
}

pub(super) fn render(
    st: &WebState,
    name: &str,
    ctx: minijinja::Value,
) -> Result<Response, WebError> {
    Ok(Html(render_string(st, name, ctx)?).into_response())
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

/// A chart range (`?range=`) and its length in seconds.
pub(super) fn range_secs(r: Option<&str>) -> Result<(&'static str, i64), WebError> {
    match r.unwrap_or("24h") {
        "24h" => Ok(("24h", 86_400)),
        "7d" => Ok(("7d", 7 * 86_400)),
        "30d" => Ok(("30d", 30 * 86_400)),
        other => Err(WebError::BadRequest(format!(
            "range {other:?}: use 24h, 7d or 30d"
        ))),
    }
}
