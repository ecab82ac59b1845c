//! Fetching the SNDS exports (the I/O edge): reqwest over rustls, a
//! timeout on the whole answer, the body read in chunks and dropped past a
//! cap (a 2 GB answer costs at most the cap), redirects not followed.
//!
//! The key is in the URL's query, so no error here carries the URL: reqwest's
//! own errors are stripped of it ([`reqwest::Error::without_url`]) and every
//! message is made of the status, the cause and our own words.
//!
//! How SNDS answers a key it does not take is not documented: what collectors
//! see is an HTTP error (401/403), a redirect to the Microsoft sign-in page,
//! or an HTML page where the CSV should be. All three are [`FetchError::Key`].

use std::time::Duration;

use crate::config::SndsConf;

/// Why an export could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No answer within the feed's timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The key is expired, revoked or wrong.
    #[error("the SNDS key is not accepted ({0}): renew it on the SNDS automated access page")]
    Key(String),
    /// Too many requests: retry after the given time.
    #[error("rate limited (429){}", match .0 { Some(d) => format!(", retry after {}s", d.as_secs()), None => String::new() })]
    RateLimited(Option<Duration>),
    /// Another HTTP status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is larger than the cap.
    #[error("the answer is larger than {0} bytes (cut off)")]
    TooLarge(u64),
    /// The export is not in its documented format.
    #[error("the {export} export is not in SNDS's format: {why}")]
    Format {
        /// Which export.
        export: &'static str,
        /// Why.
        why: String,
    },
    /// A transport error (connection, TLS), without the URL.
    #[error("{0}")]
    Transport(String),
    /// The feed's settings cannot make a client (the CA file).
    #[error("{0}")]
    Setup(String),
}

impl FetchError {
    /// A closed-set name for the error (logs, the event's details).
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Timeout(_) => "timeout",
            FetchError::Key(_) => "key",
            FetchError::RateLimited(_) => "rate_limited",
            FetchError::Status(_) => "status",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Format { .. } => "format",
            FetchError::Transport(_) => "transport",
            FetchError::Setup(_) => "setup",
        }
    }
}

/// Which export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// `ipStatus.aspx`.
    IpStatus,
    /// `data.aspx` for a day (`MMDDYY`), or the latest day.
    Data,
}

impl Export {
    fn page(self) -> &'static str {
        match self {
            Export::IpStatus => "ipStatus.aspx",
            Export::Data => "data.aspx",
        }
    }
}

/// The HTTP client of one feed: its timeout, no redirects, its CA file trusted beside the Web PKI roots.
pub fn client(conf: &SndsConf) -> Result<reqwest::Client, FetchError> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("rblwatch/", env!("CARGO_PKG_VERSION")))
        .timeout(conf.timeout)
        .connect_timeout(conf.timeout.min(Duration::from_secs(15)))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = &conf.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| FetchError::Setup(format!("cannot read {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| FetchError::Setup(format!("{}: {}", ca.display(), e.without_url())))?;
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    b.build()
        .map_err(|e| FetchError::Setup(format!("HTTP client: {}", e.without_url())))
}

/// The URL of an export (holds the key: never printed).
fn url(conf: &SndsConf, export: Export, date: Option<&str>) -> Result<reqwest::Url, FetchError> {
    let mut u = reqwest::Url::parse(&conf.base_url)
        .and_then(|b| b.join(export.page()))
        .map_err(|e| FetchError::Setup(format!("base_url: {e}")))?;
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("key", conf.key.expose());
        if let Some(d) = date {
            q.append_pair("date", d);
        }
    }
    Ok(u)
}

/// A reqwest error in our words, the URL (with the key) left out.
fn transport(e: reqwest::Error, timeout: Duration) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout(timeout);
    }
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    FetchError::Transport(msg)
}

/// `Retry-After` in seconds (an HTTP date is read as "later": an hour).
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    Some(match v.parse::<u64>() {
        Ok(s) => Duration::from_secs(s.min(7 * 86_400)),
        Err(_) => Duration::from_secs(3600),
    })
}

/// Fetches one export's body: the status classified, the body capped.
pub async fn get(
    client: &reqwest::Client,
    conf: &SndsConf,
    export: Export,
    date: Option<&str>,
) -> Result<Vec<u8>, FetchError> {
    let u = url(conf, export, date)?;
    let timeout = conf.timeout;
    let work = async {
        let mut resp = client
            .get(u)
            .send()
            .await
            .map_err(|e| transport(e, timeout))?;
        let status = resp.status().as_u16();
        match status {
            200 => {}
            401 | 403 => return Err(FetchError::Key(format!("HTTP {status}"))),
            300..=399 => {
                return Err(FetchError::Key(format!(
                    "HTTP {status}: redirected, as to the sign-in page"
                )))
            }
            429 => return Err(FetchError::RateLimited(retry_after(resp.headers()))),
            s => return Err(FetchError::Status(s)),
        }
        let cap = conf.max_body_bytes;
        if resp.content_length().is_some_and(|n| n > cap) {
            return Err(FetchError::TooLarge(cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport(e, timeout))? {
            if body.len() as u64 + chunk.len() as u64 > cap {
                return Err(FetchError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r?,
        Err(_) => return Err(FetchError::Timeout(timeout)),
    };
    if looks_like_html(&body) {
        return Err(FetchError::Key(
            "an HTML page where the CSV should be, as SNDS's sign-in page".into(),
        ));
    }
    Ok(body)
}

/// An HTML page (SNDS's sign-in or error page) rather than an export.
pub fn looks_like_html(body: &[u8]) -> bool {
    let head: Vec<u8> = body
        .iter()
        .skip_while(|b| b.is_ascii_whitespace() || **b == 0xef || **b == 0xbb || **b == 0xbf)
        .take(64)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    head.starts_with(b"<!doctype html")
        || head.starts_with(b"<html")
        || head.starts_with(b"<?xml")
        || head.starts_with(b"<head")
        || head.starts_with(b"<body")
}
