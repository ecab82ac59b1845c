//! Google Postmaster Tools API v2: what Gmail thinks of our domains.
//!
//! Pure parts here: the service-account key, the RS256-signed JWT of the
//! OAuth2 JWT bearer grant (RFC 7523, Google's "OAuth 2.0 for Server to
//! Server Applications"), the request bodies, the answers parsed into typed
//! figures, and the spam-rate levels of Google's sender guidelines. The
//! HTTP calls are in [`client`].
//!
//! Resource, field and enum names follow the v2 discovery document
//! (`gmailpostmastertools:v2`, revision 20260512; developers.google.com/
//! workspace/gmail/postmaster/reference/rest/v2): `domains.getComplianceStatus`
//! (`GET /v2/domains/{domain}/complianceStatus` → `DomainComplianceStatus`)
//! and `domains.domainStats.query` (`POST /v2/domains/{domain}/domainStats:query`
//! with `QueryDomainStatsRequest` → `QueryDomainStatsResponse`). The API
//! returns statistics "only for dates where data is available": a day it
//! leaves out had too little mail to Gmail for a figure, and is kept as
//! "not enough volume", never as zero.

pub mod client;
#[cfg(test)]
mod tests;

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Google's bulk-sender guideline: "keep spam rates reported in Postmaster
/// Tools below 0.10%" (support.google.com/mail/answer/81126, "Email sender
/// guidelines"). At or over it: a warning.
pub const SPAM_RATE_WARN: f64 = 0.001;
/// "... and avoid ever reaching a spam rate of 0.30% or higher" (same page):
/// at or over it Gmail may refuse or junk the mail. Critical.
pub const SPAM_RATE_CRITICAL: f64 = 0.003;

/// Why Postmaster Tools could not be read. Never holds the key or a token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PostmasterError {
    /// The service-account key cannot be used.
    #[error("the service-account key is unusable: {0}")]
    Key(String),
    /// The token endpoint refused the grant (an expired, revoked or invalid key: `invalid_grant`).
    #[error("the token endpoint refused the service account ({error}: {description})")]
    Grant {
        /// OAuth2 `error` (`invalid_grant`, `unauthorized_client`…).
        error: String,
        /// `error_description`, shortened.
        description: String,
    },
    /// 401: the access token was not accepted.
    #[error("{what}: 401 unauthorized (the access token was refused)")]
    Unauthorized {
        /// The call.
        what: String,
    },
    /// 403: the service account may not read this domain.
    #[error("{what}: 403 permission denied ({message}); add the service account's address as a user of the domain in Postmaster Tools")]
    Forbidden {
        /// The call.
        what: String,
        /// Google's message, shortened.
        message: String,
    },
    /// 429: asked to wait.
    #[error("{what}: 429 rate limited, next try in {retry_after} s")]
    RateLimited {
        /// The call.
        what: String,
        /// Seconds to wait (Retry-After, or 60 when it gave none).
        retry_after: u64,
    },
    /// Any other HTTP status.
    #[error("{what}: HTTP {status} ({message})")]
    Status {
        /// The call.
        what: String,
        /// The status code.
        status: u16,
        /// Google's message, shortened.
        message: String,
    },
    /// The answer is larger than allowed.
    #[error("{what}: the answer is larger than {limit} bytes (refused)")]
    TooLarge {
        /// The call.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// The answer is not JSON, or not the documented shape.
    #[error("{what}: not the documented answer ({why})")]
    Shape {
        /// The call.
        what: String,
        /// What is wrong (never quotes the body).
        why: String,
    },
    /// The whole read took too long.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// Connection, TLS or protocol failure.
    #[error("{what}: {why}")]
    Http {
        /// The call.
        what: String,
        /// Why.
        why: String,
    },
}

/// The parts of a Google service-account key file that the grant needs.
#[derive(Clone)]
pub struct ServiceAccount {
    /// The account's address: the JWT's issuer.
    pub client_email: String,
    /// The key id (the JWT header's `kid`).
    pub private_key_id: Option<String>,
    /// The PKCS#8 PEM private key.
    private_key: Secret,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key", &self.private_key)
            .finish()
    }
}

/// The key file as read (wrapped into [`ServiceAccount`] at once).
#[derive(Deserialize)]
struct KeyFile {
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    private_key: String,
}

/// Parses a key file's JSON. The message never quotes the file (serde's
/// own messages may quote a value: only the position is kept).
pub fn parse_key(json: &str) -> Result<ServiceAccount, PostmasterError> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        PostmasterError::Key(format!(
            "not a service-account JSON key (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if !v.is_object() {
        return Err(PostmasterError::Key(
            "not a service-account JSON key (not an object)".into(),
        ));
    }
    let k: KeyFile = serde_json::from_value(v).map_err(|_| {
        PostmasterError::Key("not a service-account JSON key (a field is not a string)".into())
    })?;
    if k.client_email.is_empty() {
        return Err(PostmasterError::Key("`client_email` is missing".into()));
    }
    if k.private_key.is_empty() {
        return Err(PostmasterError::Key("`private_key` is missing".into()));
    }
    Ok(ServiceAccount {
        client_email: k.client_email,
        private_key_id: k.private_key_id,
        private_key: Secret::new(k.private_key),
    })
}

/// The JWT claim set of the grant (RFC 7523 section 3; Google: iss, scope, aud, exp, iat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The service account's address.
    pub iss: String,
    /// The scopes, space-delimited.
    pub scope: String,
    /// The token endpoint.
    pub aud: String,
    /// Expiry: one hour after `iat` (Google's maximum).
    pub exp: i64,
    /// Issued at (Unix seconds).
    pub iat: i64,
}

/// The claims for a grant asked at `now`.
pub fn claims(sa: &ServiceAccount, scopes: &[String], token_url: &str, now: i64) -> Claims {
    Claims {
        iss: sa.client_email.clone(),
        scope: scopes.join(" "),
        aud: token_url.to_string(),
        iat: now,
        exp: now + 3600,
    }
}

/// The signed assertion: `base64url(header).base64url(claims).base64url(RS256 signature)`.
/// Signed with rustls's crypto provider (aws-lc-rs): no second crypto library.
pub fn sign(sa: &ServiceAccount, c: &Claims) -> Result<String, PostmasterError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let der = PrivateKeyDer::from_pem_slice(sa.private_key.expose().as_bytes())
        .map_err(|_| PostmasterError::Key("`private_key` is not a PEM private key".into()))?;
    let key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der)
        .map_err(|_| PostmasterError::Key("`private_key` cannot sign".into()))?;
    let signer = key
        .choose_scheme(&[rustls::SignatureScheme::RSA_PKCS1_SHA256])
        .ok_or_else(|| PostmasterError::Key("`private_key` is not an RSA key (RS256)".into()))?;
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = &sa.private_key_id {
        header["kid"] = serde_json::Value::String(kid.clone());
    }
    let claims = serde_json::to_vec(c).map_err(|e| PostmasterError::Key(e.to_string()))?;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let sig = signer
        .sign(input.as_bytes())
        .map_err(|_| PostmasterError::Key("signing failed".into()))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// The figures asked for each day, by the name given in the request's
/// `MetricDefinition.name` (which the answer's `DomainStat.metric` repeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `SPAM_RATE`: user-reported spam.
    SpamRate,
    /// `AUTH_SUCCESS_RATE` with `auth_type = "spf"`.
    Spf,
    /// `AUTH_SUCCESS_RATE` with `auth_type = "dkim"`.
    Dkim,
    /// `AUTH_SUCCESS_RATE` with `auth_type = "dmarc"`.
    Dmarc,
    /// `TLS_ENCRYPTION_RATE` with `traffic_direction = "inbound"` (mail into Gmail: ours).
    Tls,
    /// `DELIVERY_ERROR_RATE`, every type and reason.
    DeliveryErrors,
    /// `DELIVERY_ERROR_RATE` with `error_type = "reject"`.
    Rejected,
    /// `DELIVERY_ERROR_RATE` with `error_type = "temp_fail"`.
    TempFailed,
}

impl Metric {
    /// Every metric asked for.
    pub const ALL: [Metric; 8] = [
        Metric::SpamRate,
        Metric::Spf,
        Metric::Dkim,
        Metric::Dmarc,
        Metric::Tls,
        Metric::DeliveryErrors,
        Metric::Rejected,
        Metric::TempFailed,
    ];

    /// The name it is asked under (and stored as).
    pub fn name(self) -> &'static str {
        match self {
            Metric::SpamRate => "spam_rate",
            Metric::Spf => "spf_success_rate",
            Metric::Dkim => "dkim_success_rate",
            Metric::Dmarc => "dmarc_success_rate",
            Metric::Tls => "tls_rate",
            Metric::DeliveryErrors => "delivery_error_rate",
            Metric::Rejected => "reject_rate",
            Metric::TempFailed => "temp_fail_rate",
        }
    }

    /// `BaseMetric.standardMetric` and `MetricDefinition.filter`.
    fn definition(self) -> (&'static str, &'static str) {
        match self {
            Metric::SpamRate => ("SPAM_RATE", ""),
            Metric::Spf => ("AUTH_SUCCESS_RATE", "auth_type = \"spf\""),
            Metric::Dkim => ("AUTH_SUCCESS_RATE", "auth_type = \"dkim\""),
            Metric::Dmarc => ("AUTH_SUCCESS_RATE", "auth_type = \"dmarc\""),
            Metric::Tls => ("TLS_ENCRYPTION_RATE", "traffic_direction = \"inbound\""),
            Metric::DeliveryErrors => ("DELIVERY_ERROR_RATE", ""),
            Metric::Rejected => ("DELIVERY_ERROR_RATE", "error_type = \"reject\""),
            Metric::TempFailed => ("DELIVERY_ERROR_RATE", "error_type = \"temp_fail\""),
        }
    }

    fn from_name(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == s)
    }
}

fn gdate(d: NaiveDate) -> serde_json::Value {
    serde_json::json!({"year": d.year(), "month": d.month(), "day": d.day()})
}

/// A `QueryDomainStatsRequest` for every metric, daily, over `[start, end]`.
pub fn query_body(start: NaiveDate, end: NaiveDate, page_token: Option<&str>) -> serde_json::Value {
    let defs: Vec<serde_json::Value> = Metric::ALL
        .iter()
        .map(|m| {
            let (base, filter) = m.definition();
            let mut d =
                serde_json::json!({"name": m.name(), "baseMetric": {"standardMetric": base}});
            if !filter.is_empty() {
                d["filter"] = filter.into();
            }
            d
        })
        .collect();
    let mut body = serde_json::json!({
        "metricDefinitions": defs,
        "timeQuery": {"dateRanges": {"dateRanges": [{"start": gdate(start), "end": gdate(end)}]}},
        "pageSize": 200,
        "aggregationGranularity": "DAILY",
    });
    if let Some(t) = page_token {
        body["pageToken"] = t.into();
    }
    body
}

/// One day's figures for a domain; `None` where Google gave no figure.
#[derive(Debug, Clone, PartialEq, Default, Serialize, utoipa::ToSchema)]
pub struct DayStats {
    /// `YYYY-MM-DD` (UTC, as Google dates it).
    pub day: String,
    /// User-reported spam rate (0 to 1).
    pub spam_rate: Option<f64>,
    /// SPF success rate.
    pub spf_rate: Option<f64>,
    /// DKIM success rate.
    pub dkim_rate: Option<f64>,
    /// DMARC success rate.
    pub dmarc_rate: Option<f64>,
    /// Share of our mail into Gmail sent over TLS.
    pub tls_rate: Option<f64>,
    /// Delivery errors (all types).
    pub delivery_error_rate: Option<f64>,
    /// Permanent rejects.
    pub reject_rate: Option<f64>,
    /// Temporary failures.
    pub temp_fail_rate: Option<f64>,
}

impl DayStats {
    /// No figure at all: Google had too little mail that day to give one.
    pub fn is_empty(&self) -> bool {
        self.figures().iter().all(|(_, v)| v.is_none())
    }

    /// The figures with their names.
    pub fn figures(&self) -> [(&'static str, Option<f64>); 8] {
        [
            ("spam_rate", self.spam_rate),
            ("spf_success_rate", self.spf_rate),
            ("dkim_success_rate", self.dkim_rate),
            ("dmarc_success_rate", self.dmarc_rate),
            ("tls_rate", self.tls_rate),
            ("delivery_error_rate", self.delivery_error_rate),
            ("reject_rate", self.reject_rate),
            ("temp_fail_rate", self.temp_fail_rate),
        ]
    }

    fn set(&mut self, m: Metric, v: f64) {
        let slot = match m {
            Metric::SpamRate => &mut self.spam_rate,
            Metric::Spf => &mut self.spf_rate,
            Metric::Dkim => &mut self.dkim_rate,
            Metric::Dmarc => &mut self.dmarc_rate,
            Metric::Tls => &mut self.tls_rate,
            Metric::DeliveryErrors => &mut self.delivery_error_rate,
            Metric::Rejected => &mut self.reject_rate,
            Metric::TempFailed => &mut self.temp_fail_rate,
        };
        *slot = Some(v);
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryDomainStatsResponse {
    #[serde(default)]
    domain_stats: Vec<DomainStat>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DomainStat {
    #[serde(default)]
    metric: String,
    #[serde(default)]
    date: Option<GDate>,
    #[serde(default)]
    value: Option<StatisticValue>,
}

#[derive(Deserialize)]
struct GDate {
    #[serde(default)]
    year: i32,
    #[serde(default)]
    month: u32,
    #[serde(default)]
    day: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatisticValue {
    #[serde(default)]
    double_value: Option<f64>,
    #[serde(default)]
    float_value: Option<f64>,
    /// int64 travels as a JSON string.
    #[serde(default)]
    int_value: Option<String>,
}

/// One page of a `QueryDomainStatsResponse`: (day, metric, value) for the
/// metrics asked for (others are ignored), and the next page's token.
pub type StatsPage = (Vec<(NaiveDate, Metric, f64)>, Option<String>);

/// Parses one page of a `QueryDomainStatsResponse`. A rate must be a
/// number from 0 to 1: anything else is refused, not guessed at.
pub fn parse_stats(body: &[u8]) -> Result<StatsPage, String> {
    let r: QueryDomainStatsResponse = serde_json::from_slice(body).map_err(json_why)?;
    let mut out = Vec::new();
    for s in r.domain_stats {
        let Some(m) = Metric::from_name(&s.metric) else {
            continue;
        };
        let date = s
            .date
            .and_then(|d| NaiveDate::from_ymd_opt(d.year, d.month, d.day))
            .ok_or_else(|| format!("a daily {} figure without a valid date", m.name()))?;
        let v = s
            .value
            .and_then(|v| {
                v.double_value
                    .or(v.float_value)
                    .or_else(|| v.int_value.and_then(|i| i.parse::<f64>().ok()))
            })
            .ok_or_else(|| format!("{} of {date} has no number", m.name()))?;
        if !(0.0..=1.0).contains(&v) {
            return Err(format!(
                "{} of {date} is {v}, not a rate from 0 to 1",
                m.name()
            ));
        }
        out.push((date, m, v));
    }
    Ok((out, r.next_page_token.filter(|t| !t.is_empty())))
}

/// Every day of `[start, end]`, with the figures given for it (a day with
/// none stays empty: not enough volume).
pub fn days(
    start: NaiveDate,
    end: NaiveDate,
    figures: &[(NaiveDate, Metric, f64)],
) -> Vec<DayStats> {
    let mut out = Vec::new();
    let mut d = start;
    while d <= end {
        let mut s = DayStats {
            day: d.to_string(),
            ..DayStats::default()
        };
        for (_, m, v) in figures.iter().filter(|(x, _, _)| *x == d) {
            s.set(*m, *v);
        }
        out.push(s);
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

/// One requirement of the compliance table, as Google spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Requirement {
    /// `ComplianceRowData.requirement`: `SPF`, `DKIM`, `DMARC_POLICY`, `ONE_CLICK_UNSUBSCRIBE`…
    pub requirement: String,
    /// `ComplianceStatus.status`: `COMPLIANT`, `NEEDS_WORK` or `STATE_UNSPECIFIED`.
    pub status: String,
    /// A verdict's `reason` (`NO_UNSUB_GENERAL`…), when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A domain's compliance with Gmail's sender requirements.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Compliance {
    /// The registrable domain's table (`complianceData`).
    pub requirements: Vec<Requirement>,
    /// The subdomain's own table (`subdomainComplianceData`), when there is one.
    #[serde(default)]
    pub subdomain: Vec<Requirement>,
}

impl Compliance {
    /// The requirements that need work ("SPF, ONE_CLICK_UNSUBSCRIBE").
    pub fn needs_work(&self) -> Vec<&str> {
        self.requirements
            .iter()
            .chain(&self.subdomain)
            .filter(|r| r.status == "NEEDS_WORK")
            .map(|r| r.requirement.as_str())
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DomainComplianceStatus {
    #[serde(default)]
    compliance_data: Option<DomainComplianceData>,
    #[serde(default)]
    subdomain_compliance_data: Option<DomainComplianceData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DomainComplianceData {
    #[serde(default)]
    row_data: Vec<ComplianceRowData>,
    #[serde(default)]
    one_click_unsubscribe_verdict: Option<UnsubscribeVerdict>,
    #[serde(default)]
    honor_unsubscribe_verdict: Option<UnsubscribeVerdict>,
}

#[derive(Deserialize)]
struct ComplianceRowData {
    requirement: String,
    #[serde(default)]
    status: Option<StatusOf>,
}

#[derive(Deserialize)]
struct StatusOf {
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct UnsubscribeVerdict {
    #[serde(default)]
    status: Option<StatusOf>,
    #[serde(default)]
    reason: Option<String>,
}

fn status_of(s: Option<StatusOf>) -> String {
    s.and_then(|s| s.status)
        .unwrap_or_else(|| "STATE_UNSPECIFIED".into())
}

fn table(d: DomainComplianceData) -> Vec<Requirement> {
    let mut out: Vec<Requirement> = d
        .row_data
        .into_iter()
        .map(|r| Requirement {
            requirement: r.requirement,
            status: status_of(r.status),
            reason: None,
        })
        .collect();
    // the unsubscribe verdicts carry the reason the table row lacks
    for (name, v) in [
        ("ONE_CLICK_UNSUBSCRIBE", d.one_click_unsubscribe_verdict),
        ("HONOR_UNSUBSCRIBE", d.honor_unsubscribe_verdict),
    ] {
        let Some(v) = v else { continue };
        let reason = v
            .reason
            .filter(|r| !r.is_empty() && r != "REASON_UNSPECIFIED");
        let status = status_of(v.status);
        match out.iter_mut().find(|r| r.requirement == name) {
            Some(r) => r.reason = reason,
            None => out.push(Requirement {
                requirement: name.into(),
                status,
                reason,
            }),
        }
    }
    out
}

/// Parses a `DomainComplianceStatus`.
pub fn parse_compliance(body: &[u8]) -> Result<Compliance, String> {
    let r: DomainComplianceStatus = serde_json::from_slice(body).map_err(json_why)?;
    Ok(Compliance {
        requirements: r.compliance_data.map(table).unwrap_or_default(),
        subdomain: r.subdomain_compliance_data.map(table).unwrap_or_default(),
    })
}

/// Why a body is not the JSON expected, without quoting it (serde's
/// messages may quote a value: its category and position only).
fn json_why(e: serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "not JSON",
        Category::Data => "JSON of the wrong shape",
        Category::Eof => "cut short",
    };
    format!("{what} at line {}, column {}", e.line(), e.column())
}

/// How a spam rate stands against Google's guidelines.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SpamLevel {
    /// Below 0.1 %.
    Ok,
    /// 0.1 % or more: over Google's recommended limit.
    Warn,
    /// 0.3 % or more: Gmail may refuse or junk the mail.
    Critical,
}

impl SpamLevel {
    /// The level of a rate (0 to 1).
    pub fn of(rate: f64) -> SpamLevel {
        if rate >= SPAM_RATE_CRITICAL {
            SpamLevel::Critical
        } else if rate >= SPAM_RATE_WARN {
            SpamLevel::Warn
        } else {
            SpamLevel::Ok
        }
    }
}

/// A rate as people read it: `0.42 %`.
pub fn percent(rate: f64) -> String {
    let p = rate * 100.0;
    if p != 0.0 && p < 0.01 {
        format!("{p:.3} %")
    } else {
        format!("{p:.2} %")
    }
}

/// Where a domain's spam rate stands: the latest day with a figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpamStanding {
    /// The domain.
    pub domain: String,
    /// The level of the latest figure.
    pub level: SpamLevel,
    /// That figure (0 to 1).
    pub rate: f64,
    /// Its day (`YYYY-MM-DD`).
    pub day: String,
}

impl SpamStanding {
    /// "example.com: Gmail spam rate 0.42 % on 2026-12-04 (Google's limit 0.30 %)".
    pub fn text(&self) -> String {
        let limit = match self.level {
            SpamLevel::Critical => format!(
                ", at or over Google's limit of {}",
                percent(SPAM_RATE_CRITICAL)
            ),
            SpamLevel::Warn => format!(", over Google's recommended {}", percent(SPAM_RATE_WARN)),
            SpamLevel::Ok => format!(", under {}", percent(SPAM_RATE_WARN)),
        };
        format!(
            "{}: Gmail spam rate {} on {}{limit}",
            self.domain,
            percent(self.rate),
            self.day
        )
    }
}

/// The standing from stored days (newest first or in any order): the latest
/// day with a spam-rate figure; `None` when no day has one (not enough volume).
pub fn standing(domain: &str, days: &[DayStats]) -> Option<SpamStanding> {
    days.iter()
        .filter_map(|d| d.spam_rate.map(|r| (d.day.as_str(), r)))
        .max_by(|a, b| a.0.cmp(b.0))
        .map(|(day, rate)| SpamStanding {
            domain: domain.to_string(),
            level: SpamLevel::of(rate),
            rate,
            day: day.to_string(),
        })
}

/// A day as people read it: the spam rate, or "not enough volume" (never 0).
pub fn day_text(d: &DayStats) -> String {
    match d.spam_rate {
        Some(r) => format!("spam rate {}", percent(r)),
        None if d.is_empty() => "not enough volume (Gmail gave no figures)".into(),
        None => "spam rate: not enough volume".into(),
    }
}

/// How many days back a figure still stands (the verdict and the events):
/// Google's figures lag a day or two, and a quiet domain keeps its last one
/// for this long before it is "not enough volume".
pub const STANDING_DAYS: u64 = 14;

/// The event a new standing raises against the last one announced: a
/// warning or critical `gmail_spam_rate` when the level rises or changes
/// above "ok", `gmail_spam_rate_cleared` when it falls back under 0.1 %;
/// nothing when the level is unchanged (pure).
pub fn spam_event(
    feed: &str,
    last: Option<&SpamStanding>,
    now: &SpamStanding,
    at: i64,
) -> Option<crate::event::Event> {
    use crate::event::{Event, EventKind, Severity, Subject};
    let was = last.map_or(SpamLevel::Ok, |l| l.level);
    if was == now.level {
        return None;
    }
    let (kind, severity, summary) = match now.level {
        SpamLevel::Ok => (
            EventKind::GmailSpamRateCleared,
            Severity::Info,
            format!("{} (cleared)", now.text()),
        ),
        SpamLevel::Warn => (EventKind::GmailSpamRate, Severity::Warning, now.text()),
        SpamLevel::Critical => (EventKind::GmailSpamRate, Severity::Critical, now.text()),
    };
    let mut e = Event::new(
        kind,
        at,
        Subject::Target {
            target: now.domain.clone(),
        },
        summary,
        serde_json::json!({
            "domain": now.domain, "feed": feed, "level": now.level, "rate": now.rate,
            "percent": percent(now.rate), "day": now.day,
            "warn": SPAM_RATE_WARN, "critical": SPAM_RATE_CRITICAL,
            "source": "https://support.google.com/mail/answer/81126",
        }),
    );
    e.severity = severity;
    Some(e)
}

/// How a feed's last read went (kept in the store's state; shown on `/gmail`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastRead {
    /// When (Unix seconds).
    pub at: i64,
    /// Why it failed; `None` when it read.
    pub error: Option<String>,
}
