//! `[web]`: the status page, JSON API and Prometheus metrics.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::ctx::Ctx;
use super::raw::RawWeb;
use crate::secret::Secret;

/// Who may reach the web interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebAccess {
    /// Anyone who can connect (loopback binds, or `insecure = true`).
    Open,
    /// Requests need the token (bearer, or basic auth with it as password).
    Token(Secret),
}

/// `[web]`: status page, JSON API, Prometheus metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct WebConf {
    /// Serve it. Defaults to true.
    pub enabled: bool,
    /// Address. Defaults to 127.0.0.1:8025.
    pub listen: SocketAddr,
    /// Access control.
    pub access: WebAccess,
    /// Page auto-refresh; None = off. Defaults to 60 s.
    pub refresh: Option<Duration>,
    /// Serve templates and static files from this directory instead of the embedded ones.
    pub templates_dir: Option<PathBuf>,
    /// Rows per page. Defaults to 50 (10 to 1,000).
    pub page_size: u32,
}

impl Default for WebConf {
    fn default() -> Self {
        WebConf {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8025)),
            access: WebAccess::Open,
            refresh: Some(Duration::from_secs(60)),
            templates_dir: None,
            page_size: 50,
        }
    }
}

pub(super) fn validate(w: &RawWeb, cx: &Ctx<'_>) -> WebConf {
    let d = WebConf::default();
    let listen = match &w.listen {
        Some(l) => l
            .get_ref()
            .trim()
            .parse::<SocketAddr>()
            .unwrap_or_else(|_| {
                cx.report(
                    l.span(),
                    format!("web.listen: {:?} is not ip:port", l.get_ref()),
                );
                d.listen
            }),
        None => d.listen,
    };
    let token = w.token.as_ref().and_then(|t| {
        let s = cx.secret(t, "web.token")?;
        if s.expose().len() < 16 {
            cx.report(t.span(), "web.token: use at least 16 characters".into());
        }
        Some(s)
    });
    let access = match (token, w.insecure.unwrap_or(false)) {
        (Some(t), _) => WebAccess::Token(t),
        (None, true) => WebAccess::Open,
        (None, false) if listen.ip().is_loopback() => WebAccess::Open,
        (None, false) => {
            // a bad token was reported already; only its absence is news
            if w.token.is_none() {
                let line = w.listen.as_ref().map(|l| cx.line(l.span().start));
                cx.report_at(line, format!("web.listen: {listen} is not a loopback address: set web.token (bearer or basic auth) or, knowingly, web.insecure = true"));
            }
            WebAccess::Open
        }
    };
    let refresh = match cx.duration_or_zero(
        &w.refresh,
        "web.refresh",
        Duration::from_secs(60),
        Duration::from_secs(86_400),
    ) {
        z if z.is_zero() => None,
        r => Some(r),
    };
    let templates_dir = w.templates_dir.as_ref().and_then(|t| {
        let p = cx.path(t.get_ref());
        if p.is_dir() {
            Some(p)
        } else {
            cx.report(
                t.span(),
                format!("web.templates_dir: {} is not a directory", p.display()),
            );
            None
        }
    });
    WebConf {
        enabled: w.enabled.unwrap_or(true),
        listen,
        access,
        refresh,
        templates_dir,
        page_size: cx.int(&w.page_size, "web.page_size", 50, 10, 1000) as u32,
    }
}
