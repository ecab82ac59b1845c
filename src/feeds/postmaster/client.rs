//! The HTTP side of Postmaster Tools: the token (JWT bearer grant, cached
//! until shortly before it expires), then per domain the compliance status
//! and the daily statistics. Every answer is read to a byte limit, every
//! read to a deadline; a 429 defers the feed until its Retry-After has
//! passed. Neither the key nor a token is ever put in an error or a log.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::NaiveDate;

use super::{
    days, parse_compliance, parse_key, parse_stats, query_body, sign, Compliance, DayStats,
    PostmasterError, ServiceAccount,
};
use crate::config::PostmasterConf;
use crate::secret::Secret;

/// What one read found for a domain.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainReading {
    /// The domain.
    pub domain: String,
    /// Its compliance status.
    pub compliance: Compliance,
    /// Every day asked about, oldest first (empty days: not enough volume).
    pub days: Vec<DayStats>,
}

/// The result of a read that did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Read.
    Read(Vec<DomainReading>),
    /// Not asked: Google said to wait (429) until this time (Unix seconds).
    Deferred {
        /// When the next call may go.
        until: i64,
    },
}

/// Access tokens by (account, token URL, scopes): valid until the time kept.
static TOKENS: Mutex<Option<HashMap<String, (Secret, i64)>>> = Mutex::new(None);
/// Feeds told to wait (429), until when.
static DEFERRED: Mutex<Option<HashMap<String, i64>>> = Mutex::new(None);

fn with<K, T>(
    m: &Mutex<Option<HashMap<String, K>>>,
    f: impl FnOnce(&mut HashMap<String, K>) -> T,
) -> T {
    let mut g = match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    f(g.get_or_insert_with(HashMap::new))
}

/// A token is used until this close to its expiry.
const TOKEN_MARGIN: i64 = 60;
/// The most pages of statistics read for one domain.
const MAX_PAGES: usize = 50;

/// Reads every domain of the feed once, within its timeout. `today` is the
/// UTC date: days `today - days` to yesterday are asked for.
pub async fn read(
    conf: &PostmasterConf,
    today: NaiveDate,
    now: i64,
) -> Result<Outcome, PostmasterError> {
    if let Some(until) = with(&DEFERRED, |m| m.get(&conf.name).copied()).filter(|u| *u > now) {
        return Ok(Outcome::Deferred { until });
    }
    let r = match tokio::time::timeout(conf.timeout, read_all(conf, today, now)).await {
        Ok(r) => r,
        Err(_) => Err(PostmasterError::Timeout(conf.timeout)),
    };
    if let Err(PostmasterError::RateLimited { retry_after, .. }) = &r {
        // from the answer, rounded up to the second: never a moment early
        let until = (crate::time::now_ms() + *retry_after as i64 * 1000 + 999) / 1000;
        with(&DEFERRED, |m| m.insert(conf.name.clone(), until));
    }
    r.map(Outcome::Read)
}

async fn read_all(
    conf: &PostmasterConf,
    today: NaiveDate,
    now: i64,
) -> Result<Vec<DomainReading>, PostmasterError> {
    let sa = parse_key(conf.service_account.expose())?;
    let http = client(conf)?;
    let end = today.pred_opt().unwrap_or(today);
    let start = today
        .checked_sub_days(chrono::Days::new(u64::from(conf.days)))
        .unwrap_or(end);
    let mut out = Vec::new();
    for domain in &conf.domains {
        let compliance = authed(&http, conf, &sa, now, |token| {
            compliance(&http, conf, token, domain)
        })
        .await?;
        let mut figures = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let (mut f, next) = authed(&http, conf, &sa, now, |token| {
                stats(&http, conf, token, domain, start, end, page.clone())
            })
            .await?;
            figures.append(&mut f);
            match next {
                Some(t) if Some(&t) != page.as_ref() => page = Some(t),
                _ => break,
            }
        }
        out.push(DomainReading {
            domain: domain.clone(),
            compliance,
            days: days(start, end, &figures),
        });
    }
    Ok(out)
}

/// Calls `f` with a token; on a 401 the cached token is dropped and `f` is
/// tried once more with a fresh one.
async fn authed<T, F, Fut>(
    http: &reqwest::Client,
    conf: &PostmasterConf,
    sa: &ServiceAccount,
    now: i64,
    f: F,
) -> Result<T, PostmasterError>
where
    F: Fn(Secret) -> Fut,
    Fut: std::future::Future<Output = Result<T, PostmasterError>>,
{
    let t = token(http, conf, sa, now).await?;
    match f(t).await {
        Err(PostmasterError::Unauthorized { .. }) => {
            with(&TOKENS, |m| m.remove(&token_key(conf, sa)));
            let t = token(http, conf, sa, now).await?;
            f(t).await
        }
        r => r,
    }
}

fn client(conf: &PostmasterConf) -> Result<reqwest::Client, PostmasterError> {
    let err = |why: String| PostmasterError::Http {
        what: "TLS".into(),
        why,
    };
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("rblwatch/", env!("CARGO_PKG_VERSION")))
        .https_only(true)
        // the assertion is posted to the configured endpoint only, never on to a redirect
        .redirect(reqwest::redirect::Policy::none())
        .timeout(conf.timeout);
    if let Some(ca) = &conf.ca_file {
        let pem =
            std::fs::read(ca).map_err(|e| err(format!("cannot read {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| err(format!("{}: {e}", ca.display())))?;
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| err(e.to_string()))
}

fn token_key(conf: &PostmasterConf, sa: &ServiceAccount) -> String {
    format!(
        "{}|{}|{}",
        sa.client_email,
        conf.token_url,
        conf.scopes.join(" ")
    )
}

/// An access token: the cached one while it lasts, else a new grant.
async fn token(
    http: &reqwest::Client,
    conf: &PostmasterConf,
    sa: &ServiceAccount,
    now: i64,
) -> Result<Secret, PostmasterError> {
    let key = token_key(conf, sa);
    if let Some((t, _)) =
        with(&TOKENS, |m| m.get(&key).cloned()).filter(|(_, exp)| *exp > now + TOKEN_MARGIN)
    {
        return Ok(t);
    }
    let jwt = sign(sa, &super::claims(sa, &conf.scopes, &conf.token_url, now))?;
    let what = "token";
    let resp = http
        .post(&conf.token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        // the assertion is base64url and dots: nothing to escape
        .body(format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"
        ))
        .send()
        .await
        .map_err(|e| http_error(what, &e))?;
    let status = resp.status().as_u16();
    let retry = retry_after(&resp);
    let body = body(resp, what, conf.max_body_bytes).await?;
    if status != 200 {
        #[derive(serde::Deserialize)]
        struct OAuthError {
            error: String,
            #[serde(default)]
            error_description: String,
        }
        if status == 429 {
            return Err(PostmasterError::RateLimited {
                what: what.into(),
                retry_after: retry,
            });
        }
        if let Ok(e) = serde_json::from_slice::<OAuthError>(&body) {
            return Err(PostmasterError::Grant {
                error: short(&e.error),
                description: short(&e.error_description),
            });
        }
        return Err(PostmasterError::Status {
            what: what.into(),
            status,
            message: "no OAuth2 error in the answer".into(),
        });
    }
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        access_token: String,
        #[serde(default)]
        expires_in: Option<i64>,
    }
    let t: TokenAnswer = serde_json::from_slice(&body).map_err(|e| PostmasterError::Shape {
        what: what.into(),
        why: super::json_why(e),
    })?;
    if t.access_token.is_empty() || t.access_token.chars().any(|c| c.is_control() || c == ' ') {
        return Err(PostmasterError::Shape {
            what: what.into(),
            why: "no usable access_token".into(),
        });
    }
    // Google's tokens last an hour; without expires_in assume a short life
    let exp = now + t.expires_in.unwrap_or(300).clamp(0, 86_400);
    let tok = Secret::new(t.access_token);
    with(&TOKENS, |m| m.insert(key, (tok.clone(), exp)));
    Ok(tok)
}

async fn compliance(
    http: &reqwest::Client,
    conf: &PostmasterConf,
    token: Secret,
    domain: &str,
) -> Result<Compliance, PostmasterError> {
    let what = format!("complianceStatus of {domain}");
    let url = format!("{}/v2/domains/{domain}/complianceStatus", conf.api_url);
    let req = http.get(url).bearer_auth(token.expose());
    let b = call(req, &what, conf.max_body_bytes).await?;
    parse_compliance(&b).map_err(|why| PostmasterError::Shape { what, why })
}

async fn stats(
    http: &reqwest::Client,
    conf: &PostmasterConf,
    token: Secret,
    domain: &str,
    start: NaiveDate,
    end: NaiveDate,
    page: Option<String>,
) -> Result<super::StatsPage, PostmasterError> {
    let what = format!("domainStats of {domain}");
    let url = format!("{}/v2/domains/{domain}/domainStats:query", conf.api_url);
    let req = http
        .post(url)
        .bearer_auth(token.expose())
        .header("content-type", "application/json")
        .body(query_body(start, end, page.as_deref()).to_string());
    let b = call(req, &what, conf.max_body_bytes).await?;
    parse_stats(&b).map_err(|why| PostmasterError::Shape { what, why })
}

/// Sends an API call; a status other than 200 is its typed error.
async fn call(
    req: reqwest::RequestBuilder,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, PostmasterError> {
    let resp = req.send().await.map_err(|e| http_error(what, &e))?;
    let status = resp.status().as_u16();
    let retry = retry_after(&resp);
    let b = body(resp, what, limit).await?;
    let what = what.to_string();
    match status {
        200 => Ok(b),
        401 => Err(PostmasterError::Unauthorized { what }),
        403 => Err(PostmasterError::Forbidden {
            what,
            message: google_message(&b),
        }),
        429 => Err(PostmasterError::RateLimited {
            what,
            retry_after: retry,
        }),
        _ => Err(PostmasterError::Status {
            what,
            status,
            message: google_message(&b),
        }),
    }
}

/// The body, refused past `limit` bytes (read chunk by chunk: a huge answer
/// is cut off, never held).
async fn body(
    mut resp: reqwest::Response,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, PostmasterError> {
    let too_large = || PostmasterError::TooLarge {
        what: what.into(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| http_error(what, &e))? {
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Retry-After in seconds (delta-seconds or an HTTP date), 60 when absent,
/// at most a day.
fn retry_after(resp: &reqwest::Response) -> u64 {
    let v = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let secs = match v {
        None => 60,
        Some(s) => s.parse::<u64>().ok().unwrap_or_else(|| {
            chrono::DateTime::parse_from_rfc2822(s)
                .map(|t| (t.timestamp() - crate::time::now()).max(1) as u64)
                .unwrap_or(60)
        }),
    };
    secs.clamp(1, 86_400)
}

/// `error.message` of a Google API error (`{"error": {"code", "message", "status"}}`), shortened.
fn google_message(b: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(b)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            let status = e.get("status").and_then(|s| s.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|s| s.as_str()).unwrap_or("");
            Some(short(format!("{status} {msg}").trim()))
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "no Google error in the answer".into())
}

/// Remote text made safe for one log line (the receivers' replies' cleaner), 160 bytes at most.
fn short(s: &str) -> String {
    crate::mail::rejections::clean_text(s, 160)
}

fn http_error(what: &str, e: &reqwest::Error) -> PostmasterError {
    PostmasterError::Http {
        what: what.into(),
        why: crate::mail::redacted_http_error(e),
    }
}

/// Forgets cached tokens and deferrals (tests).
pub fn reset() {
    with(&TOKENS, HashMap::clear);
    with(&DEFERRED, HashMap::clear);
}
