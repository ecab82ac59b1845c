//! What one answer from one list means: [`Verdict`], and the pure
//! [`classify`] function that derives it from a DNS response and the list's
//! return-code table.
//!
//! The rules, in order, are the ones that stop false alarms:
//! * a timeout, SERVFAIL or network error is `Unknown`, never `Clear`;
//! * REFUSED, an answer outside 127.0.0.0/8 (a hijacked NXDOMAIN or a parked
//!   zone) or a documented error code is `ListError`, never `Listed`;
//! * an error code among several A records wins over listing codes;
//! * every A record is kept, not just the first.

use std::net::Ipv4Addr;

use serde::Serialize;

use crate::catalog::{CodeVerdict, ErrorCause, ListDef, UNDOCUMENTED_ERROR};
use crate::dns::{QueryError, Rcode, Response};

/// The verdict of one list about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The list lists the target.
    Listed {
        /// Every A record of the answer.
        codes: Vec<Ipv4Addr>,
        /// The meaning of each listing code (from the catalog).
        meanings: Vec<String>,
        /// The TXT reason(s), verbatim. Untrusted text.
        txt: Vec<String>,
    },
    /// NXDOMAIN or NODATA: not listed.
    Clear,
    /// An allow list vouches for the target (good news).
    Allowed {
        /// Every A record of the answer.
        codes: Vec<Ipv4Addr>,
        /// Meanings from the catalog.
        meanings: Vec<String>,
    },
    /// The list answered but refused to give a verdict.
    ListError {
        /// Why, in words.
        why: String,
        /// The A records, if the error came as codes.
        codes: Vec<Ipv4Addr>,
    },
    /// No usable answer (timeout, SERVFAIL, network error).
    Unknown {
        /// Why, in words.
        why: String,
    },
}

crate::spelling::closed_set! {
    /// Short names of the verdict kinds, as used in tables, the database and metrics.
    #[derive(PartialOrd, Ord)]
    pub enum VerdictKind {
        /// See [`Verdict::Listed`].
        Listed = "listed",
        /// See [`Verdict::Clear`].
        Clear = "clear",
        /// See [`Verdict::Allowed`].
        Allowed = "allowed",
        /// See [`Verdict::ListError`].
        ListError = "error",
        /// See [`Verdict::Unknown`].
        Unknown = "unknown",
    }
}

impl Verdict {
    /// The kind, without the details.
    pub fn kind(&self) -> VerdictKind {
        match self {
            Verdict::Listed { .. } => VerdictKind::Listed,
            Verdict::Clear => VerdictKind::Clear,
            Verdict::Allowed { .. } => VerdictKind::Allowed,
            Verdict::ListError { .. } => VerdictKind::ListError,
            Verdict::Unknown { .. } => VerdictKind::Unknown,
        }
    }

    /// Whether this verdict needs the TXT record fetched.
    pub fn wants_txt(&self) -> bool {
        matches!(self, Verdict::Listed { .. })
    }

    /// The A records of the answer (empty for clear and unknown verdicts).
    pub fn codes(&self) -> &[Ipv4Addr] {
        match self {
            Verdict::Listed { codes, .. }
            | Verdict::Allowed { codes, .. }
            | Verdict::ListError { codes, .. } => codes,
            Verdict::Clear | Verdict::Unknown { .. } => &[],
        }
    }

    /// One line for tables and logs (TXT not included).
    pub fn meaning(&self) -> String {
        match self {
            Verdict::Listed {
                meanings, codes, ..
            }
            | Verdict::Allowed { meanings, codes } => {
                if meanings.is_empty() {
                    codes
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    meanings.join("; ")
                }
            }
            Verdict::Clear => String::new(),
            Verdict::ListError { why, .. } | Verdict::Unknown { why } => why.clone(),
        }
    }
}

/// Classifies the A-record answer of `list` (pure).
///
/// `txt` is attached to a `Listed` verdict by the caller once fetched.
pub fn classify(list: &ListDef, answer: &Result<Response, QueryError>) -> Verdict {
    let r = match answer {
        Ok(r) => r,
        Err(e) => return Verdict::Unknown { why: e.to_string() },
    };
    match r.rcode {
        Rcode::NoError => {}
        Rcode::NxDomain => return Verdict::Clear,
        Rcode::ServFail => {
            return Verdict::Unknown {
                why: "SERVFAIL from the resolver".into(),
            }
        }
        Rcode::Refused => {
            return Verdict::ListError {
                why: "REFUSED: the list or resolver refuses our queries".into(),
                codes: vec![],
            }
        }
        other => {
            return Verdict::ListError {
                why: format!("unexpected DNS response code {other}"),
                codes: vec![],
            }
        }
    }
    if r.a.is_empty() {
        // NODATA (e.g. a CNAME to nowhere, or only other record types) is "not listed".
        return Verdict::Clear;
    }
    let mut codes = r.a.clone();
    codes.sort();
    codes.dedup();
    if let Some(bad) = codes.iter().find(|a| a.octets()[0] != 127) {
        return Verdict::ListError {
            why: format!(
                "answer {bad} is outside 127.0.0.0/8: the zone is hijacked, parked or wildcarded, or the resolver rewrites NXDOMAIN"
            ),
            codes,
        };
    }
    let mut listed = Vec::new();
    let mut allowed = Vec::new();
    let mut errors = Vec::new();
    for &c in &codes {
        let (v, meaning) = list.lookup_code(c);
        let row = list.lookup_row(c);
        // A code the catalog does not document is shown with its raw value, so
        // the entry gets fixed instead of the postmaster misled.
        let (cause, text) = match row {
            Some(r) => (r.cause, meaning.map(str::to_string)),
            None => match v {
                CodeVerdict::Error => (
                    Some(ErrorCause::Blocked),
                    Some(UNDOCUMENTED_ERROR.to_string()),
                ),
                CodeVerdict::Allowed => (None, Some(format!("allowed (undocumented code {c})"))),
                _ => (None, Some(format!("listed (undocumented code {c})"))),
            },
        };
        match v {
            CodeVerdict::Listed => {
                listed.push(text.unwrap_or_else(|| format!("listed (code {c})")))
            }
            CodeVerdict::Allowed => {
                allowed.push(text.unwrap_or_else(|| format!("allowed (code {c})")))
            }
            CodeVerdict::Error => {
                let text = text.unwrap_or_else(|| "error code".into());
                errors.push(match cause {
                    Some(cause) => format!("{c}: {}: {text}", cause.label()),
                    None => format!("{c}: {text}"),
                })
            }
            CodeVerdict::Ignore => {}
        }
    }
    if !errors.is_empty() {
        return Verdict::ListError {
            why: errors.join("; "),
            codes,
        };
    }
    if !listed.is_empty() {
        return Verdict::Listed {
            codes,
            meanings: listed,
            txt: vec![],
        };
    }
    if !allowed.is_empty() {
        return Verdict::Allowed {
            codes,
            meanings: allowed,
        };
    }
    // Only informational codes: neither a listing nor an error.
    Verdict::Clear
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::parse_file;

    fn list(extra: &str) -> ListDef {
        let text = format!(
            r#"[[list]]
id = "t"
zone = "bl.test"
kind = "ipv4"
{extra}
returns = [
  {{ code = "127.0.0.2", meaning = "spam" }},
  {{ code = "127.0.0.10-127.0.0.11", meaning = "policy" }},
  {{ code = "127.0.0.17", verdict = "ignore", meaning = "neutral reputation" }},
  {{ code = "127.255.255.254", verdict = "error", cause = "public-resolver", meaning = "query via a public/open resolver" }},
  {{ code = "127.255.255.252-127.255.255.255", verdict = "error", cause = "over-quota", meaning = "public resolver / quota" }},
]"#
        );
        parse_file("t.toml", &text).unwrap().remove(0)
    }

    fn ok(rcode: Rcode, a: &[&str]) -> Result<Response, QueryError> {
        Ok(Response {
            rcode,
            a: a.iter().map(|s| s.parse().unwrap()).collect(),
            txt: vec![],
            truncated: false,
            ttl: None,
            neg_ttl: None,
        })
    }

    #[test]
    fn nxdomain_and_nodata_are_clear() {
        let l = list("");
        assert_eq!(classify(&l, &ok(Rcode::NxDomain, &[])), Verdict::Clear);
        assert_eq!(classify(&l, &ok(Rcode::NoError, &[])), Verdict::Clear);
    }

    #[test]
    fn timeouts_and_servfail_are_unknown_never_clear() {
        let l = list("");
        assert_eq!(
            classify(&l, &Err(QueryError::Timeout)).kind(),
            VerdictKind::Unknown
        );
        assert_eq!(
            classify(&l, &ok(Rcode::ServFail, &[])).kind(),
            VerdictKind::Unknown
        );
    }

    #[test]
    fn error_codes_are_never_listings() {
        let l = list("");
        let v = classify(&l, &ok(Rcode::NoError, &["127.255.255.254"]));
        assert_eq!(v.kind(), VerdictKind::ListError, "{v:?}");
        // the cause is named in the text
        assert_eq!(
            v.meaning(),
            "127.255.255.254: public resolver: query via a public/open resolver"
        );
        let v = classify(&l, &ok(Rcode::NoError, &["127.255.255.255"]));
        assert!(v.meaning().contains(": over quota: "), "{v:?}");
        // an error code among listing codes still wins
        let v = classify(&l, &ok(Rcode::NoError, &["127.0.0.2", "127.255.255.254"]));
        assert_eq!(v.kind(), VerdictKind::ListError);
        assert_eq!(
            classify(&l, &ok(Rcode::Refused, &[])).kind(),
            VerdictKind::ListError
        );
    }

    #[test]
    fn answers_outside_loopback_are_errors() {
        let v = classify(&list(""), &ok(Rcode::NoError, &["192.0.2.55"]));
        assert!(
            matches!(&v, Verdict::ListError { why, .. } if why.contains("outside 127.0.0.0/8")),
            "{v:?}"
        );
    }

    #[test]
    fn every_a_record_is_kept() {
        let v = classify(&list(""), &ok(Rcode::NoError, &["127.0.0.10", "127.0.0.2"]));
        assert_eq!(
            v,
            Verdict::Listed {
                codes: vec!["127.0.0.2".parse().unwrap(), "127.0.0.10".parse().unwrap()],
                meanings: vec!["spam".into(), "policy".into()],
                txt: vec![]
            }
        );
        // an unknown code inside 127/8 is a listing (RFC 5782), with the code shown
        let v = classify(&list(""), &ok(Rcode::NoError, &["127.0.0.4"]));
        assert_eq!(v.meaning(), "listed (undocumented code 127.0.0.4)");
        // informational codes alone are not a listing
        assert_eq!(
            classify(&list(""), &ok(Rcode::NoError, &["127.0.0.17"])),
            Verdict::Clear
        );
    }

    #[test]
    fn undocumented_codes_on_a_strict_list_are_never_listings() {
        let l = list("undocumented_codes = \"error\"");
        let v = classify(&l, &ok(Rcode::NoError, &["127.0.0.77"]));
        assert_eq!(v.kind(), VerdictKind::ListError, "{v:?}");
        assert_eq!(
            v.meaning(),
            "127.0.0.77: blocked: not a code this list documents"
        );
        assert_eq!(ErrorCause::find_in(&v.meaning()), Some(ErrorCause::Blocked));
        // beside a documented listing code it still wins: the answer cannot be believed
        let v = classify(&l, &ok(Rcode::NoError, &["127.0.0.2", "127.0.0.77"]));
        assert_eq!(v.kind(), VerdictKind::ListError, "{v:?}");
        // documented codes are read as before
        let v = classify(&l, &ok(Rcode::NoError, &["127.0.0.2"]));
        assert_eq!(v.kind(), VerdictKind::Listed);
        assert!(l.undocumented_codes(v.codes()).is_empty());
        assert_eq!(
            l.undocumented_codes(&["127.0.0.77".parse().unwrap(), "127.0.0.2".parse().unwrap()]),
            vec!["127.0.0.77".parse::<Ipv4Addr>().unwrap()]
        );
        // the default rule: a listing, with the raw code shown
        let v = classify(&list(""), &ok(Rcode::NoError, &["127.0.0.77"]));
        assert_eq!(v.kind(), VerdictKind::Listed);
        assert_eq!(v.meaning(), "listed (undocumented code 127.0.0.77)");
        let v = classify(
            &list("class = \"allow\""),
            &ok(Rcode::NoError, &["127.0.9.1"]),
        );
        assert_eq!(v.meaning(), "allowed (undocumented code 127.0.9.1)");
    }

    #[test]
    fn allow_lists_give_allowed() {
        let l = list("class = \"allow\"");
        assert_eq!(
            classify(&l, &ok(Rcode::NoError, &["127.0.9.1"])).kind(),
            VerdictKind::Allowed
        );
    }
}
