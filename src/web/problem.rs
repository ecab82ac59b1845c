//! RFC 9457 problem details: every error the JSON API answers (a handler's
//! 404, 400 and 409, a 500, the router's 405, the host check's 421, an
//! extractor's rejection) is `application/problem+json`, whoever made it.

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;

/// An RFC 9457 problem document.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    kind: String,
    /// The status's reason phrase.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What went wrong, in a sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// Error bodies kept as the problem's `detail` at most (they are short sentences).
const DETAIL_MAX: usize = 4096;

/// Rewrites an error response under `/api/` as a problem document: the
/// status, its reason as the title, and the plain-text message as the detail.
pub(super) async fn problems(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let r = next.run(req).await;
    let status = r.status();
    if !api || !(status.is_client_error() || status.is_server_error()) {
        return r;
    }
    let (mut parts, body) = r.into_parts();
    let text = axum::body::to_bytes(body, DETAIL_MAX)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let doc = Problem {
        kind: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").into(),
        status: status.as_u16(),
        detail: (!text.is_empty()).then_some(text),
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&doc).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}
