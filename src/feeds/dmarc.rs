//! DMARC aggregate reports (RFC 7489 appendix C), pure: a mail in, reports or
//! a rejection with its reason out.
//!
//! Reporters send the XML as a mail attachment, zipped (Google), gzipped
//! (Microsoft and most others) or plain (some Yahoo reports). Everything here
//! is hostile input: the XML parser runs with DTDs refused, so no entity is
//! ever declared, expanded or fetched (XXE and billion laughs are impossible
//! by construction, not by a limit); every inflation reads at most
//! [`Limits::max_xml`] bytes and stops (zip bombs), and a report with no
//! organisation, id or date range is rejected, never guessed.

use std::io::Read;
use std::net::IpAddr;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde::Serialize;

/// Size caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest XML document accepted after inflation (a zip bomb stops here).
    pub max_xml: u64,
    /// The most records read from one report.
    pub max_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_xml: 32 << 20,
            max_records: 100_000,
        }
    }
}

/// Why a mail or an attachment was not taken as a report. Closed set: stored
/// and counted by its [`Reject::kind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The mail has no attachment or body that is a report.
    #[error("no DMARC report in the mail")]
    NoReport,
    /// Larger than the cap once inflated (or the mail itself too large).
    #[error("oversized: more than {0} bytes")]
    Oversized(u64),
    /// A document type declaration: refused outright (no entity is ever expanded).
    #[error("XML with a DTD (entities are never expanded)")]
    Dtd,
    /// Not well-formed XML, not UTF-8, a broken gzip or zip.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Well-formed, but not an aggregate report (a required field missing or wrong).
    #[error("not a DMARC aggregate report: {0}")]
    Invalid(String),
    /// The same organisation and report id was counted before.
    #[error("duplicate report {org} {id}")]
    Duplicate {
        /// Reporting organisation.
        org: String,
        /// Report id.
        id: String,
    },
}

impl Reject {
    /// The stored and counted name.
    pub fn kind(&self) -> &'static str {
        match self {
            Reject::NoReport => "no_report",
            Reject::Oversized(_) => "oversized",
            Reject::Dtd => "dtd",
            Reject::Malformed(_) => "malformed",
            Reject::Invalid(_) => "invalid",
            Reject::Duplicate { .. } => "duplicate",
        }
    }
}

/// DMARC's verdict for one identifier in `policy_evaluated` (aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aligned {
    /// Aligned pass.
    Pass,
    /// Fail (or not aligned).
    Fail,
}

/// One `record`: mail from one source IP with one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// `row/source_ip`.
    pub source_ip: IpAddr,
    /// `row/count`: messages.
    pub count: u64,
    /// `policy_evaluated/disposition`: none, quarantine or reject.
    pub disposition: String,
    /// `policy_evaluated/dkim` (aligned).
    pub dkim: Aligned,
    /// `policy_evaluated/spf` (aligned).
    pub spf: Aligned,
    /// `identifiers/header_from`, lower case.
    pub header_from: String,
    /// `auth_results/dkim`: `domain=result` each.
    pub dkim_results: Vec<String>,
    /// `auth_results/spf`: `domain=result` each.
    pub spf_results: Vec<String>,
}

impl Record {
    /// DMARC passed: DKIM or SPF passed aligned.
    pub fn passes(&self) -> bool {
        self.dkim == Aligned::Pass || self.spf == Aligned::Pass
    }
}

/// One aggregate report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `report_metadata/org_name`.
    pub org: String,
    /// `report_metadata/report_id`.
    pub report_id: String,
    /// `date_range/begin`, Unix seconds.
    pub begin: i64,
    /// `date_range/end`, Unix seconds.
    pub end: i64,
    /// `policy_published/domain`, lower case.
    pub domain: String,
    /// `policy_published/p`.
    pub policy: String,
    /// The records.
    pub records: Vec<Record>,
}

impl Report {
    /// The UTC day the report is about (its range's start), `YYYY-MM-DD`.
    pub fn day(&self) -> String {
        chrono::DateTime::from_timestamp(self.begin, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    }
}

/// The reports in one mail (a reporter sends one; a zip may hold several), or
/// why there are none. A mail with one good and one bad attachment yields the
/// good one and the rejection.
pub fn from_mail(raw: &[u8], limits: &Limits) -> Vec<Result<Report, Reject>> {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return vec![Err(Reject::Malformed("not a MIME message".into()))];
    };
    let mut out = Vec::new();
    for part in &msg.parts {
        let body: &[u8] = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.as_ref(),
            PartType::Text(t) => t.as_bytes(),
            _ => continue,
        };
        let ctype = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_default();
        let name = part
            .attachment_name()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let kind = match classify(&ctype, &name, body) {
            Some(k) => k,
            None => continue,
        };
        out.extend(from_attachment(kind, body, limits));
    }
    if out.is_empty() {
        out.push(Err(Reject::NoReport));
    }
    out
}

/// How an attachment is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// Plain XML.
    Xml,
    /// gzip.
    Gzip,
    /// zip.
    Zip,
}

/// The packing of a part, by its magic bytes first (reporters label gzip as
/// `application/octet-stream` or even `application/zip`), then by its type or
/// file name; `None` for a part that is not a report (the text body).
fn classify(ctype: &str, name: &str, body: &[u8]) -> Option<Packing> {
    if body.starts_with(&[0x1f, 0x8b]) {
        return Some(Packing::Gzip);
    }
    if body.starts_with(b"PK\x03\x04") {
        return Some(Packing::Zip);
    }
    let xmlish = ctype.ends_with("/xml") || name.ends_with(".xml");
    let named = name.ends_with(".zip") || name.ends_with(".gz") || ctype.contains("zip");
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]);
    if xmlish || head.trim_start().starts_with("<?xml") || head.contains("<feedback") {
        return Some(Packing::Xml);
    }
    // labelled as a report but not one: malformed, not silently skipped
    named.then_some(Packing::Xml)
}

/// The reports in one attachment.
pub fn from_attachment(
    packing: Packing,
    body: &[u8],
    limits: &Limits,
) -> Vec<Result<Report, Reject>> {
    match packing {
        Packing::Xml => {
            if body.len() as u64 > limits.max_xml {
                return vec![Err(Reject::Oversized(limits.max_xml))];
            }
            vec![parse_xml(body, limits)]
        }
        Packing::Gzip => {
            let d = flate2::read::MultiGzDecoder::new(body);
            vec![read_capped(d, limits.max_xml).and_then(|x| parse_xml(&x, limits))]
        }
        Packing::Zip => {
            let mut z = match zip::ZipArchive::new(std::io::Cursor::new(body)) {
                Ok(z) => z,
                Err(e) => return vec![Err(Reject::Malformed(format!("zip: {e}")))],
            };
            let mut out = Vec::new();
            // the inflated total is capped, not each member: ten 30 MB members are a bomb too
            let mut budget = limits.max_xml;
            for i in 0..z.len().min(16) {
                let f = match z.by_index(i) {
                    Ok(f) => f,
                    Err(e) => {
                        out.push(Err(Reject::Malformed(format!("zip: {e}"))));
                        continue;
                    }
                };
                if f.is_dir() {
                    continue;
                }
                let r = read_capped(f, budget).and_then(|x| {
                    budget = budget.saturating_sub(x.len() as u64);
                    parse_xml(&x, limits)
                });
                let stop = matches!(r, Err(Reject::Oversized(_)));
                out.push(r.map_err(|e| match e {
                    Reject::Oversized(_) => Reject::Oversized(limits.max_xml),
                    e => e,
                }));
                if stop {
                    break;
                }
            }
            if out.is_empty() {
                out.push(Err(Reject::NoReport));
            }
            out
        }
    }
}

/// Reads at most `cap` bytes; one more is an oversized report.
fn read_capped(r: impl Read, cap: u64) -> Result<Vec<u8>, Reject> {
    let mut buf = Vec::new();
    r.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Reject::Malformed(format!("inflate: {e}")))?;
    if buf.len() as u64 > cap {
        return Err(Reject::Oversized(cap));
    }
    Ok(buf)
}

/// Parses one report document.
pub fn parse_xml(xml: &[u8], limits: &Limits) -> Result<Report, Reject> {
    let text = std::str::from_utf8(xml)
        .map_err(|_| Reject::Malformed("not UTF-8".into()))?
        .trim_start_matches('\u{feff}');
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        // a record is ~40 nodes; the cap bounds memory whatever the document
        nodes_limit: (limits.max_records as u32).saturating_mul(64).max(10_000),
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => Reject::Dtd,
        e => Reject::Malformed(e.to_string()),
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "feedback" {
        return Err(Reject::Invalid(format!(
            "root element <{}>, not <feedback>",
            root.tag_name().name()
        )));
    }
    let meta = child(root, "report_metadata").ok_or(missing("report_metadata"))?;
    let org = text_of(meta, "org_name").ok_or(missing("org_name"))?;
    let report_id = text_of(meta, "report_id").ok_or(missing("report_id"))?;
    let range = child(meta, "date_range").ok_or(missing("date_range"))?;
    let begin = int_of(range, "begin")?;
    let end = int_of(range, "end")?;
    if end < begin || begin < 0 {
        return Err(Reject::Invalid(format!("date range {begin}..{end}")));
    }
    let policy = child(root, "policy_published").ok_or(missing("policy_published"))?;
    let domain = text_of(policy, "domain")
        .ok_or(missing("policy_published/domain"))?
        .to_ascii_lowercase();
    let p = text_of(policy, "p").unwrap_or_default();
    let mut records = Vec::new();
    for rec in root.children().filter(|n| n.has_tag_name("record")) {
        if records.len() >= limits.max_records {
            return Err(Reject::Oversized(limits.max_xml));
        }
        records.push(record(rec)?);
    }
    Ok(Report {
        org,
        report_id,
        begin,
        end,
        domain,
        policy: p,
        records,
    })
}

fn record(rec: roxmltree::Node<'_, '_>) -> Result<Record, Reject> {
    let row = child(rec, "row").ok_or(missing("record/row"))?;
    let ip = text_of(row, "source_ip").ok_or(missing("row/source_ip"))?;
    let source_ip: IpAddr = ip
        .parse()
        .map_err(|_| Reject::Invalid(format!("source_ip {ip:?}")))?;
    let count = text_of(row, "count")
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or(missing("row/count"))?;
    let pe = child(row, "policy_evaluated").ok_or(missing("row/policy_evaluated"))?;
    let aligned = |tag: &str| match text_of(pe, tag).as_deref() {
        Some("pass") => Aligned::Pass,
        _ => Aligned::Fail,
    };
    let header_from = child(rec, "identifiers")
        .and_then(|i| text_of(i, "header_from"))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let results = |tag: &str| -> Vec<String> {
        child(rec, "auth_results")
            .map(|a| {
                a.children()
                    .filter(|n| n.has_tag_name(tag))
                    .take(16)
                    .map(|n| {
                        format!(
                            "{}={}",
                            text_of(n, "domain").unwrap_or_default(),
                            text_of(n, "result").unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Record {
        source_ip,
        count,
        disposition: text_of(pe, "disposition").unwrap_or_else(|| "none".into()),
        dkim: aligned("dkim"),
        spf: aligned("spf"),
        header_from,
        dkim_results: results("dkim"),
        spf_results: results("spf"),
    })
}

fn missing(what: &str) -> Reject {
    Reject::Invalid(format!("no {what}"))
}

/// The first child element with this local name (namespaces ignored: DMARCbis reports carry one).
fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The trimmed, capped text of a child element; none when absent or empty.
fn text_of(n: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    let t = child(n, name)?.text()?.trim();
    (!t.is_empty()).then(|| t.chars().take(256).collect())
}

fn int_of(n: roxmltree::Node<'_, '_>, name: &str) -> Result<i64, Reject> {
    let t = text_of(n, name).ok_or(missing(name))?;
    t.parse()
        .map_err(|_| Reject::Invalid(format!("{name} {t:?} is not a number")))
}

#[cfg(test)]
mod tests;
