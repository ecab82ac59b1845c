//! Access control. Binding off loopback needs a token (checked at config
//! time). With a token, every route but `/healthz` needs
//! `Authorization: Bearer <token>` or basic auth with the token as password.
//! The "check now" POST also needs the page's CSRF token and, when the browser
//! sends an Origin, one matching the Host.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::WebState;
use crate::config::WebAccess;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request carries the token.
pub(super) fn authorized(token: &str, auth: Option<&str>) -> bool {
    let Some(auth) = auth else { return false };
    if let Some(b) = auth.strip_prefix("Bearer ") {
        return constant_time_eq(b.trim().as_bytes(), token.as_bytes());
    }
    if let Some(b) = auth.strip_prefix("Basic ") {
        if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b.trim()) {
            if let Some((_, pass)) = String::from_utf8_lossy(&raw).split_once(':') {
                return constant_time_eq(pass.as_bytes(), token.as_bytes());
            }
        }
    }
    false
}

pub(super) async fn check(State(st): State<Arc<WebState>>, req: Request, next: Next) -> Response {
    // from the configuration in force, so a token rotated by a reload applies at once
    let access = st.live.snapshot().cfg.web.access.clone();
    if let WebAccess::Token(t) = &access {
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !authorized(t.expose(), auth) {
            return (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    "Basic realm=\"rblwatch\", charset=\"UTF-8\"",
                )],
                "authentication required",
            )
                .into_response();
        }
    }
    if req.method() == axum::http::Method::POST {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Some(origin) = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
        {
            let origin_host = origin.split("://").nth(1).unwrap_or("");
            if origin_host != host {
                return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic() {
        let t = "0123456789abcdef";
        assert!(authorized(t, Some("Bearer 0123456789abcdef")));
        assert!(!authorized(t, Some("Bearer 0123456789abcdeX")));
        let basic = base64::engine::general_purpose::STANDARD.encode("admin:0123456789abcdef");
        assert!(authorized(t, Some(&format!("Basic {basic}"))));
        assert!(!authorized(t, None));
        assert!(!authorized(t, Some("Basic !!!")));
    }
}
