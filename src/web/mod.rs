//! The status page, JSON API and Prometheus metrics (axum).
//!
//! Everything here reads: the store through a read-only pool (WAL lets it run
//! beside the daemon's writes), the configuration through the daemon's
//! runtime. The only write is the "check now" button, which sends the
//! scheduler a sweep tick. Templates are minijinja with HTML autoescaping,
//! embedded in the binary unless `[web] templates_dir` points at a local copy;
//! a strict Content-Security-Policy forbids inline scripts, so remote text
//! (TXT records, SMTP replies, hook output) stays text even if a template
//! forgot to escape it. Access: see the `auth` module.

mod accounts;
mod api;
mod auth;
pub mod conns;
mod delist;
mod impact;
mod mail;
mod metrics;
mod overview;
mod pages;
mod problem;
mod range;
mod render;
mod gmail;
mod senders;
mod snds;
pub mod svg;
mod target;
pub mod view;

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;

use crate::config::{Config, WebConf};
use crate::engine::Engine;
use crate::store::{ReadPool, StoreError};

/// What the web reads from the running daemon. The daemon implements it, so
/// the web depends on no later stage and tests can serve a fixed state.
pub trait Live: Send + Sync + 'static {
    /// The configuration and engine in force (replaced whole on reload).
    fn snapshot(&self) -> Snapshot;
    /// Bumped after every database write: pages built at one version are current while it stays.
    fn store_version(&self) -> u64;
    /// How database writes are going (for `/healthz`).
    fn write_health(&self) -> crate::store::WriteHealth;
    /// Mail-source reads that failed since start, by source (sources that never failed may be absent).
    fn source_failures(&self) -> Vec<(String, u64)>;
    /// Asks for a sweep now; false when the request could not be queued.
    fn check_now(&self) -> bool;

    /// The daemon's supervised tasks that are down now, with why: `/healthz` fails while any is.
    fn tasks_down(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Deaths of supervised tasks and jobs since start, by name (for `/metrics`).
    fn task_failures(&self) -> Vec<(String, u64)> {
        Vec::new()
    }

    /// Asks for an immediate re-check of one (target, list) pair: one query
    /// through the engine, fed to the evaluator as a sweep would; false when
    /// it could not be queued (or this server cannot re-check).
    fn recheck(&self, _target: &str, _list: &str) -> bool {
        false
    }

    /// Records a delisting request (with its `delist_requested` event);
    /// `Ok(None)` when the pair is not listed. The caller asks for the re-check.
    fn request_delist(
        &self,
        _r: crate::store::NewDelistRequest,
    ) -> futures::future::BoxFuture<'static, Result<Option<crate::store::DelistRequest>, LiveError>>
    {
        Box::pin(async { Err(LiveError::ReadOnly) })
    }

    /// The resolver's diagnosis, once the daemon makes one (issue 14): an
    /// unusable resolver makes the overview's verdict "can't tell". `None`
    /// means not diagnosed, and the verdict is made from list health alone.
    /// Called on every page build: answer from memory, never block.
    fn resolver(&self) -> Option<ResolverHealth> {
        None
    }

    /// Whether a listing is hurting mail, from receivers' rejections (issue
    /// 12): decides "listed and rejecting" against "listed, no impact seen".
    /// Called for each listed pair on every page build: answer from memory,
    /// never block. `since` is when the pair was listed: a listing newer than
    /// the last assessment is not known yet. Defaults to [`Impact::Unknown`]
    /// (no delivery data).
    fn impact(&self, _target: &str, _list: &str, _since: i64) -> Impact {
        Impact::Unknown
    }

    /// Hands free memory back to the kernel: called (on a blocking thread)
    /// when a surge of connections is over, so a flood does not leave the
    /// daemon's RSS at its peak. Defaults to nothing.
    fn release_memory(&self) {}
}

/// Why the daemon could not do what the web asked.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// This server only reads (no daemon behind it).
    #[error("this server cannot record anything (no daemon behind it)")]
    ReadOnly,
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<LiveError> for WebError {
    fn from(e: LiveError) -> Self {
        WebError::Internal(Box::new(e))
    }
}

pub use crate::status::Impact;

pub use crate::health::{ResolverHealth, ResolverStatus};

/// The configuration and engine in force.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The validated configuration.
    pub cfg: Arc<Config>,
    /// The engine (its lists and counters).
    pub engine: Arc<Engine>,
}

/// Shared state of the web handlers.
pub struct WebState {
    /// Read-only database access.
    pub db: ReadPool,
    /// The running daemon (configuration, engine counters, check-now).
    pub live: Arc<dyn Live>,
    /// Templates.
    pub env: Environment<'static>,
    /// The stylesheet.
    pub css: String,
    /// Token for the POST forms (per process, from a CSPRNG; compared in constant time).
    pub csrf: String,
    /// Settings.
    pub conf: WebConf,
    /// The overview (HTML), status (JSON) and target pages as last built, with
    /// the store version they reflect (at most [`CACHE_MAX_ENTRIES`]).
    pub cache: std::sync::Mutex<std::collections::HashMap<String, Cached>>,
    /// One rebuild at a time: concurrent requests wait for it instead of all rebuilding.
    pub rebuild: tokio::sync::Mutex<()>,
    /// Counters of pruned tables for `/metrics` (each finished row counted once).
    pub(crate) tallies: metrics::Tallies,
}

/// A response body built at a store version.
#[derive(Debug, Clone)]
pub struct Cached {
    version: u64,
    at: std::time::Instant,
    body: axum::body::Bytes,
}

/// How long a cached page may be reused while nothing was written. The daemon
/// writes at least every few seconds (cursors, samples), so this is a ceiling.
const CACHE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// Pages kept at most: past this, entries of older store versions are dropped
/// (and all of them if that is not enough), so many target pages visited once
/// cannot grow the cache.
const CACHE_MAX_ENTRIES: usize = 256;

impl WebState {
    /// A body reflecting the current store version, rebuilt only when something was written.
    pub(crate) async fn cached<F, Fut>(
        &self,
        key: &str,
        build: F,
    ) -> Result<axum::body::Bytes, WebError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, WebError>>,
    {
        let fresh = |version: u64| {
            self.cache
                .lock()
                .ok()
                .and_then(|m| m.get(key).cloned())
                .filter(|c| c.version == version && c.at.elapsed() < CACHE_MAX_AGE)
                .map(|c| c.body)
        };
        if let Some(b) = fresh(self.live.store_version()) {
            return Ok(b);
        }
        let _one = self.rebuild.lock().await;
        let version = self.live.store_version();
        if let Some(b) = fresh(version) {
            return Ok(b);
        }
        let body = axum::body::Bytes::from(build().await?);
        if let Ok(mut m) = self.cache.lock() {
            if m.len() >= CACHE_MAX_ENTRIES && !m.contains_key(key) {
                m.retain(|_, c| c.version == version);
                if m.len() >= CACHE_MAX_ENTRIES {
                    m.clear();
                }
            }
            m.insert(
                key.to_string(),
                Cached {
                    version,
                    at: std::time::Instant::now(),
                    body: body.clone(),
                },
            );
        }
        Ok(body)
    }
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../web/templates/base.html")),
    (
        "macros.html",
        include_str!("../../web/templates/macros.html"),
    ),
    (
        "overview.html",
        include_str!("../../web/templates/overview.html"),
    ),
    (
        "target.html",
        include_str!("../../web/templates/target.html"),
    ),
    ("range.html", include_str!("../../web/templates/range.html")),
    (
        "targets.html",
        include_str!("../../web/templates/targets.html"),
    ),
    ("list.html", include_str!("../../web/templates/list.html")),
    ("lists.html", include_str!("../../web/templates/lists.html")),
    ("mail.html", include_str!("../../web/templates/mail.html")),
    (
        "events.html",
        include_str!("../../web/templates/events.html"),
    ),
    ("hooks.html", include_str!("../../web/templates/hooks.html")),
    (
        "alerts.html",
        include_str!("../../web/templates/alerts.html"),
    ),
    ("error.html", include_str!("../../web/templates/error.html")),
    (
        "impact_summary.html",
        include_str!("../../web/templates/impact_summary.html"),
    ),
    (
        "receivers.html",
        include_str!("../../web/templates/receivers.html"),
    ),
    ("audit.html", include_str!("../../web/templates/audit.html")),
    (
        "senders.html",
        include_str!("../../web/templates/senders.html"),
    ),
    ("gmail.html", include_str!("../../web/templates/gmail.html")),
    (
        "accounts.html",
        include_str!("../../web/templates/accounts.html"),
    ),
];
const CSS: &str = include_str!("../../web/static/style.css");

pub(crate) fn urlencode(s: String) -> String {
    crate::status::urlencode(&s)
}

/// Builds the template environment: embedded templates, or a local copy where present.
pub fn environment(conf: &WebConf) -> Result<(Environment<'static>, String), WebSetupError> {
    let mut env = Environment::new();
    env.add_filter("ts", crate::time::fmt_time);
    env.add_filter("urlencode", urlencode);
    env.add_filter("num", |v: f64| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v:.3}").trim_end_matches('0').to_string()
        }
    });
    env.add_filter("duration", |secs: i64| {
        crate::time::fmt_duration(std::time::Duration::from_secs(secs.max(0) as u64))
    });
    for (name, text) in TEMPLATES {
        let local = conf
            .templates_dir
            .as_ref()
            .map(|d| d.join("templates").join(name))
            .filter(|p| p.exists());
        let src = match local {
            Some(p) => std::fs::read_to_string(&p).map_err(|source| WebSetupError::Read {
                path: p.clone(),
                source,
            })?,
            None => text.to_string(),
        };
        env.add_template_owned(name.to_string(), src)
            .map_err(|e| WebSetupError::Template(name.to_string(), e))?;
    }
    let css = conf
        .templates_dir
        .as_ref()
        .map(|d| d.join("static/style.css"))
        .filter(|p| p.exists())
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_else(|| CSS.to_string());
    Ok((env, css))
}

/// A handler error: rendered as a page (or JSON under /api), never with internals.
#[derive(Debug)]
pub enum WebError {
    /// 404.
    NotFound(String),
    /// 400.
    BadRequest(String),
    /// 409: the request does not fit the current state.
    Conflict(String),
    /// 500 (details logged, not shown).
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        WebError::Internal(Box::new(e))
    }
}

impl From<minijinja::Error> for WebError {
    fn from(e: minijinja::Error) -> Self {
        WebError::Internal(Box::new(e))
    }
}

impl From<serde_json::Error> for WebError {
    fn from(e: serde_json::Error) -> Self {
        WebError::Internal(Box::new(e))
    }
}

/// Why the web interface could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebSetupError {
    /// A local template or stylesheet cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A template does not compile.
    #[error("template {0}: {1:#}")]
    Template(String, minijinja::Error),
    /// The listener failed.
    #[error("web server: {0}")]
    Serve(std::io::Error),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            WebError::Conflict(m) => (StatusCode::CONFLICT, m),
            WebError::Internal(e) => {
                tracing::error!(error = %e, "web handler failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the daemon's log)".to_string(),
                )
            }
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            msg,
        )
            .into_response()
    }
}

/// The router (also used by tests).
pub fn router(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/", get(overview::overview))
        .route("/targets", get(pages::targets))
        .route("/target/{target}", get(target::target))
        .route("/target/{addr}/{len}", get(range::page))
        .route("/lists", get(pages::lists))
        .route("/list/{id}", get(pages::list))
        .route("/mail", get(mail::mail))
        .route("/events", get(pages::events))
        .route("/hooks", get(pages::hook_runs))
        .route("/alerts", get(pages::alerts))
        .route("/receivers", get(impact::receivers_page))
        .route("/audit", get(impact::audit_page))
        .route("/senders", get(senders::page))
        .route("/gmail", get(gmail::page))
        .route("/accounts", get(accounts::page))
        .route("/check-now", post(pages::check_now))
        .route("/delist", post(delist::form))
        .route("/static/style.css", get(pages::css))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/targets", get(api::targets))
        .route("/api/v1/targets/{target}", get(api::target))
        .route("/api/v1/targets/{addr}/{len}", get(range::api))
        .route("/api/v1/lists", get(api::lists))
        .route("/api/v1/lists/{id}", get(api::list))
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/hook-runs", get(api::hook_runs))
        .route("/api/v1/alerts", get(api::alerts))
        .route("/api/v1/metrics/{source}/{metric}", get(api::series))
        .route("/api/v1/receivers", get(impact::receivers_api))
        .route("/api/v1/audit", get(impact::audit_api))
        .route("/api/v1/senders", get(senders::api))
        .route("/api/v1/gmail", get(gmail::api))
        .route("/api/v1/accounts", get(accounts::api))
        .route("/api/v1/delistings", get(delist::list).post(delist::create))
        .route("/metrics", get(metrics::metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check,
        ))
        .route("/healthz", get(healthz))
        .fallback(|| async { WebError::NotFound("no such page".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check_host,
        ))
        .layer(axum::middleware::from_fn(problem::problems))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `ok` while database writes succeed (with the age of the last commit);
/// 503 when they fail, the writer has stopped or the database file was
/// deleted or replaced under it, so a monitor notices a full disk or a lost
/// history instead of trusting a daemon that records nothing.
async fn healthz(axum::extract::State(st): axum::extract::State<Arc<WebState>>) -> Response {
    let h = st.live.write_health();
    let age = match h.last_commit {
        0 => "no commit yet".to_string(),
        t => format!("last commit {} s ago", (crate::time::now() - t).max(0)),
    };
    let down = st.live.tasks_down();
    let (status, body) = if !down.is_empty() {
        let names: Vec<String> = down.iter().map(|(n, w)| format!("{n} ({w})")).collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failing: task down: {} ({age})\n", names.join(", ")),
        )
    } else if let Some(why) = &h.lost {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failing: {why} ({age})\n"),
        )
    } else if h.dead {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failing: the database writer has stopped ({age})\n"),
        )
    } else if let Some((_, why)) = &h.failing {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failing: database writes fail: {why} ({age})\n"),
        )
    } else {
        (StatusCode::OK, format!("ok: {age}\n"))
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Serves until `shutdown` resolves, with the bounds of [`conns`] (timeouts,
/// a cap on connections).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<WebState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), WebSetupError> {
    let live = state.live.clone();
    conns::serve(listener, router(state), live, shutdown).await;
    Ok(())
}

/// Builds the state for a daemon.
pub fn state(
    live: Arc<dyn Live>,
    db_path: &std::path::Path,
) -> Result<Arc<WebState>, WebSetupError> {
    let conf = live.snapshot().cfg.web.clone();
    let (env, css) = environment(&conf)?;
    let db = ReadPool::new(db_path);
    let csrf = auth::new_form_token();
    Ok(Arc::new(WebState {
        db,
        live,
        env,
        css,
        csrf,
        conf,
        cache: Default::default(),
        rebuild: Default::default(),
        tallies: metrics::Tallies::starting_now(db_path),
    }))
}
