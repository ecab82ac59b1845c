//! Access control. Binding off loopback needs a token (checked at config
//! time). With a token, every route but `/healthz` needs
//! `Authorization: Bearer <token>` or basic auth with the token as password.
//! Every route but `/healthz` also needs a `Host` the page is really served
//! under (DNS rebinding protection, [`host_allowed`]). The POST forms (check
//! now, delisting requested) also need the page's form token and, when the
//! browser sends an Origin, one matching the Host.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::WebState;
use crate::config::{Config, WebAccess};

/// Compares secrets without leaking, through timing, how much of them matched.
pub(super) fn secret_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A fresh form token: 256 bits from the thread's CSPRNG (ChaCha, seeded by the OS), in hex.
pub(super) fn new_form_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the request carries the token.
pub(super) fn authorized(token: &str, auth: Option<&str>) -> bool {
    let Some(auth) = auth else { return false };
    if let Some(b) = auth.strip_prefix("Bearer ") {
        return secret_eq(b.trim(), token);
    }
    if let Some(b) = auth.strip_prefix("Basic ") {
        if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b.trim()) {
            if let Some((_, pass)) = String::from_utf8_lossy(&raw).split_once(':') {
                return secret_eq(pass, token);
            }
        }
    }
    false
}

/// The user name of a basic-auth request (who asked, for the records), if any.
pub(super) fn basic_user(auth: Option<&str>) -> Option<String> {
    let b = auth?.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b.trim())
        .ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (user, _) = text.split_once(':')?;
    (!user.is_empty()).then(|| user.to_string())
}

/// The host part of a `Host` header value: no port, no brackets, lower case, no trailing dot.
fn host_name(h: &str) -> String {
    let h = h.trim();
    let name = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if h.matches(':').count() == 1 {
        h.split(':').next().unwrap_or("")
    } else {
        h
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a request addressed to `host` may be answered.
///
/// A DNS-rebinding page reaches the loopback status page under the attacker's
/// own name (`Host: evil.example`), so only names the page is really served
/// under are accepted: `localhost` (and `*.localhost`), loopback addresses, the
/// `listen` address (any address when it listens on all of them: an address
/// cannot be rebound), the host of `[alerting] status_url` and this machine's
/// host name.
pub(super) fn host_allowed(host: &str, cfg: &Config) -> bool {
    let name = host_name(host);
    if name.is_empty() {
        return false;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        let listen = cfg.web.listen.ip();
        return ip.is_loopback() || ip == listen || listen.is_unspecified();
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    let status_host = cfg
        .actions
        .settings
        .status_url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .map(|authority| host_name(authority.rsplit('@').next().unwrap_or("")));
    if status_host.as_deref() == Some(name.as_str()) {
        return true;
    }
    let me = cfg.actions.host.trim_end_matches('.').to_ascii_lowercase();
    !me.is_empty() && (name == me || me.split('.').next() == Some(name.as_str()))
}

/// Refuses requests whose Host is not one the page is served under (all routes but `/healthz`).
pub(super) async fn check_host(
    State(st): State<Arc<WebState>>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    if !host_allowed(&host, &st.live.snapshot().cfg) {
        tracing::warn!(host = %host.escape_debug(), "request for a host this page is not served under refused");
        return (
            StatusCode::MISDIRECTED_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "this status page does not answer to that host name (DNS rebinding protection): use localhost or its address, or set [alerting] status_url to the address people use\n",
        )
            .into_response();
    }
    next.run(req).await
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
        assert!(!authorized(t, Some("Bearer 0123456789abcde")));
        let basic = base64::engine::general_purpose::STANDARD.encode("admin:0123456789abcdef");
        assert!(authorized(t, Some(&format!("Basic {basic}"))));
        assert_eq!(
            basic_user(Some(&format!("Basic {basic}"))).as_deref(),
            Some("admin")
        );
        assert!(!authorized(t, None));
        assert!(!authorized(t, Some("Basic !!!")));
        assert_eq!(basic_user(Some("Bearer x")), None);
    }

    #[test]
    fn form_tokens_are_long_random_and_compared_whole() {
        let a = new_form_token();
        let b = new_form_token();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(secret_eq(&a, &a.clone()));
        assert!(!secret_eq(&a, &b));
        assert!(!secret_eq(&a, &a[..63]));
        assert!(!secret_eq(&a, ""));
    }

    fn cfg(listen: &str, status_url: &str, host: &str) -> Config {
        let mut c = Config::default_for_cli().unwrap();
        c.web.listen = listen.parse().unwrap();
        c.actions.settings.status_url = status_url.into();
        c.actions.host = host.into();
        c
    }

    #[test]
    fn only_names_the_page_is_served_under_are_answered() {
        let c = cfg("127.0.0.1:8025", "", "mx-monitor.example.com");
        for ok in [
            "127.0.0.1:8025",
            "127.0.0.1",
            "localhost:8025",
            "LOCALHOST.",
            "app.localhost:8025",
            "[::1]:8025",
            "127.1.2.3:8025",
            "mx-monitor.example.com:8025",
            "mx-monitor:8025",
        ] {
            assert!(host_allowed(ok, &c), "{ok} should be answered");
        }
        for bad in [
            "evil.example:8025",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "192.0.2.7:8025",
            "",
            ":8025",
            "mx-monitor.example.com.evil.example",
        ] {
            assert!(!host_allowed(bad, &c), "{bad} must be refused");
        }
        // the public name people use, from [alerting] status_url
        let c = cfg(
            "192.0.2.10:8025",
            "https://status.example.org:8443/rbl/",
            "",
        );
        assert!(host_allowed("status.example.org:8443", &c));
        assert!(host_allowed("192.0.2.10:8025", &c));
        assert!(!host_allowed("192.0.2.11:8025", &c));
        assert!(!host_allowed("example.org", &c));
        // listening on every address: any address literal, still no foreign name
        let c = cfg("0.0.0.0:8025", "", "");
        assert!(host_allowed("198.51.100.4:8025", &c));
        assert!(!host_allowed("rebind.example:8025", &c));
    }
}
