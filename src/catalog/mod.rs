//! The DNSBL catalog: one [`ListDef`] per list, read from `lists.d/*.toml`.
//!
//! The catalog is data, not code, because lists die, change codes and start
//! blocking resolvers faster than binaries are upgraded. The shipped files are
//! embedded in the binary ([`shipped`]); a directory named in the config can
//! add lists or replace a shipped one by `id`.
//!
//! Reading happens in two steps (ripgrep style): `raw` mirrors the TOML with
//! `deny_unknown_fields`, and `ListDef::from_raw` checks every value and
//! produces the typed definition the engine uses.

mod raw;
pub mod shipped;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use serde::Serialize;

use crate::target::{parse_domain, Target};

/// Which kind of target a list answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// IPv4 addresses only.
    Ipv4,
    /// IPv6 addresses only.
    Ipv6,
    /// Both address families.
    Ip,
    /// Domain names (RHSBL / URI lists).
    Domain,
}

impl ListKind {
    /// Whether a query for `t` makes sense on a list of this kind.
    pub fn accepts(self, t: &Target) -> bool {
        matches!(
            (self, t),
            (ListKind::Ipv4 | ListKind::Ip, Target::Ip(IpAddr::V4(_)))
                | (ListKind::Ipv6 | ListKind::Ip, Target::Ip(IpAddr::V6(_)))
                | (ListKind::Domain, Target::Domain(_))
        )
    }
}

/// Whether a hit on the list is bad news or good news.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListClass {
    /// A blocklist: a hit is a listing (the default).
    #[default]
    Block,
    /// An allow or reputation list (DNSWL…): a hit is good news.
    Allow,
}

/// What an answer code means on a given list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeVerdict {
    /// The target is listed.
    Listed,
    /// The target is on an allow list.
    Allowed,
    /// The list refuses to answer (public resolver, over quota, wrong query type…).
    Error,
    /// Informational: neither a listing nor an error.
    Ignore,
}

/// Which answer addresses a [`ReturnCode`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMatch {
    /// Exactly this address.
    Exact(Ipv4Addr),
    /// An inclusive range.
    Range(Ipv4Addr, Ipv4Addr),
    /// Any address inside 127.0.0.0/8 whose last octet has any of these bits (SURBL/URIBL multi).
    Bits(u8),
}

impl CodeMatch {
    fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(b) = s.strip_prefix("bit:") {
            let v: u8 = b
                .trim()
                .parse()
                .map_err(|_| format!("bad bit mask {b:?}"))?;
            if v == 0 {
                return Err("bit mask 0 matches nothing".into());
            }
            return Ok(CodeMatch::Bits(v));
        }
        if let Some((a, b)) = s.split_once('-') {
            let a = parse_code(a)?;
            let b = parse_code(b)?;
            if a > b {
                return Err(format!("range {s:?} runs backwards"));
            }
            return Ok(CodeMatch::Range(a, b));
        }
        if let Some((a, len)) = s.split_once('/') {
            let net: ipnet::Ipv4Net = format!("{}/{}", a.trim(), len.trim())
                .parse()
                .map_err(|_| format!("bad code range {s:?}"))?;
            return Ok(CodeMatch::Range(net.network(), net.broadcast()));
        }
        Ok(CodeMatch::Exact(parse_code(s)?))
    }

    /// Whether `a` is one of the codes.
    pub fn matches(&self, a: Ipv4Addr) -> bool {
        match *self {
            CodeMatch::Exact(x) => a == x,
            CodeMatch::Range(lo, hi) => a >= lo && a <= hi,
            CodeMatch::Bits(m) => a.octets()[0] == 127 && a.octets()[3] & m != 0,
        }
    }
}

fn parse_code(s: &str) -> Result<Ipv4Addr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{:?} is not an IPv4 answer code", s.trim()))
}

impl fmt::Display for CodeMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeMatch::Exact(a) => write!(f, "{a}"),
            CodeMatch::Range(a, b) => write!(f, "{a}-{b}"),
            CodeMatch::Bits(m) => write!(f, "bit:{m}"),
        }
    }
}

impl Serialize for CodeMatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One row of a list's return-code table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReturnCode {
    /// Which answers this row covers.
    pub code: CodeMatch,
    /// What such an answer means.
    pub verdict: CodeVerdict,
    /// Human meaning, shown to the postmaster ("SBL: spam source").
    pub meaning: String,
}

/// RFC 5782 test points of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestPoints {
    /// Must be listed (127.0.0.2, `::ffff:7f00:2` or `test` by default).
    pub listed: Target,
    /// Must not be listed (127.0.0.1, `::ffff:7f00:1` or `invalid` by default).
    pub not_listed: Target,
}

/// How the list may be used.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct UsagePolicy {
    /// Name of the key (in the config's `[keys]` table) the list needs.
    pub key: Option<String>,
    /// Query zone when a key is configured; `{key}` is replaced by it.
    pub key_template: Option<String>,
    /// The list only answers when a key is configured (no public mirror).
    pub requires_key: bool,
    /// Queries per second this list may receive from us; `None` = no cap.
    pub max_qps: Option<f64>,
    /// Daily query budget as published by the operator (informational).
    pub daily_limit: Option<u64>,
    /// The list refuses queries relayed through public resolvers (8.8.8.8…).
    pub blocks_public_resolvers: bool,
    /// Free-form usage notes (terms, registration).
    pub notes: Option<String>,
}

/// A retired (dead) list: kept so a config naming it gets a clear warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retired {
    /// When it died (ISO date as given by the source).
    pub since: String,
    /// What happened.
    pub reason: String,
}

/// A validated DNSBL definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListDef {
    /// Stable identifier used in configs, the database and URLs.
    pub id: String,
    /// Display name.
    pub name: String,
    /// DNS zone queried (public mirror).
    pub zone: String,
    /// Which targets it answers for.
    pub kind: ListKind,
    /// Block or allow list.
    pub class: ListClass,
    /// Return-code table, in file order (first match wins).
    pub returns: Vec<ReturnCode>,
    /// RFC 5782 test points.
    pub test_points: TestPoints,
    /// Delisting page; `{target}` is replaced by the queried target.
    pub delist: Option<String>,
    /// Operator's web site.
    pub website: Option<String>,
    /// Usage policy.
    pub policy: UsagePolicy,
    /// Used when the config does not name lists.
    pub enabled_by_default: bool,
    /// Set for dead lists, which are never queried.
    pub retired: Option<Retired>,
    /// Where the definition came from (file name), for error messages.
    pub source: String,
}

impl ListDef {
    /// Meaning of an answer code: the first matching row, or the default for the list's class.
    pub fn lookup_code(&self, a: Ipv4Addr) -> (CodeVerdict, Option<&str>) {
        for r in &self.returns {
            if r.code.matches(a) {
                return (r.verdict, Some(r.meaning.as_str()));
            }
        }
        let default = match self.class {
            ListClass::Block => CodeVerdict::Listed,
            ListClass::Allow => CodeVerdict::Allowed,
        };
        (default, None)
    }

    /// The delisting link for a target, if the list has one.
    pub fn delist_url(&self, t: &Target) -> Option<String> {
        self.delist
            .as_ref()
            .map(|u| u.replace("{target}", &t.to_string()))
    }
}

/// A catalog problem, with the file and list it is in.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {msg}")]
pub struct CatalogError {
    /// File (or embedded name) that holds the problem.
    pub file: String,
    /// What is wrong, naming the list and key.
    pub msg: String,
}

/// The set of known lists, by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    lists: BTreeMap<String, ListDef>,
}

impl Catalog {
    /// The lists shipped with rblwatch (embedded at build time).
    pub fn shipped() -> Result<Self, CatalogError> {
        let mut c = Catalog::default();
        for (name, text) in shipped::FILES {
            for def in parse_file(name, text)? {
                if let Some(prev) = c.lists.get(&def.id) {
                    return Err(CatalogError {
                        file: name.to_string(),
                        msg: format!("list id {:?} is also defined in {}", def.id, prev.source),
                    });
                }
                c.lists.insert(def.id.clone(), def);
            }
        }
        Ok(c)
    }

    /// Adds every `*.toml` in `dir`; a list with an existing id replaces it.
    pub fn extend_from_dir(&mut self, dir: &Path) -> Result<Vec<String>, CatalogError> {
        let err = |msg: String| CatalogError {
            file: dir.display().to_string(),
            msg,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| err(format!("cannot read list directory: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut replaced = Vec::new();
        for p in paths {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(&p).map_err(|e| CatalogError {
                file: name.clone(),
                msg: e.to_string(),
            })?;
            for def in parse_file(&name, &text)? {
                if self.lists.insert(def.id.clone(), def.clone()).is_some() {
                    replaced.push(def.id);
                }
            }
        }
        Ok(replaced)
    }

    /// A list by id.
    pub fn get(&self, id: &str) -> Option<&ListDef> {
        self.lists.get(id)
    }

    /// All lists, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = &ListDef> {
        self.lists.values()
    }

    /// Number of lists (retired included).
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Inserts or replaces one definition (used by tests and the config's inline lists).
    pub fn insert(&mut self, def: ListDef) {
        self.lists.insert(def.id.clone(), def);
    }
}

/// Parses one catalog file (pure: text in, definitions out).
pub fn parse_file(file: &str, text: &str) -> Result<Vec<ListDef>, CatalogError> {
    let raw: raw::RawFile = toml::from_str(text).map_err(|e| CatalogError {
        file: file.to_string(),
        msg: e.to_string(),
    })?;
    raw.list
        .into_iter()
        .map(|r| {
            ListDef::from_raw(r, file).map_err(|msg| CatalogError {
                file: file.to_string(),
                msg,
            })
        })
        .collect()
}

impl ListDef {
    fn from_raw(r: raw::RawList, file: &str) -> Result<Self, String> {
        let id = r.id.trim().to_string();
        let ctx = |m: String| format!("list {id:?}: {m}");
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "list id {id:?} must be non-empty lower-case letters, digits and '-'"
            ));
        }
        let zone = r.zone.trim().trim_end_matches('.').to_ascii_lowercase();
        if parse_domain(&zone).is_err() {
            return Err(ctx(format!(
                "key `zone`: {:?} is not a valid DNS zone",
                r.zone
            )));
        }
        let class = r.class.unwrap_or_default();
        let mut returns = Vec::new();
        for (i, c) in r.returns.into_iter().enumerate() {
            let code =
                CodeMatch::parse(&c.code).map_err(|e| ctx(format!("returns[{i}].code: {e}")))?;
            let verdict = c.verdict.unwrap_or(match class {
                ListClass::Block => CodeVerdict::Listed,
                ListClass::Allow => CodeVerdict::Allowed,
            });
            returns.push(ReturnCode {
                code,
                verdict,
                meaning: c.meaning,
            });
        }
        let tp = r.test_points.unwrap_or_default();
        let (def_pos, def_neg) = match r.kind {
            ListKind::Ipv4 | ListKind::Ip => ("127.0.0.2", "127.0.0.1"),
            ListKind::Ipv6 => ("::ffff:7f00:2", "::ffff:7f00:1"),
            ListKind::Domain => ("test", "invalid"),
        };
        let test_points = TestPoints {
            listed: test_point(r.kind, tp.listed.as_deref().unwrap_or(def_pos))
                .map_err(|e| ctx(format!("test_points.listed: {e}")))?,
            not_listed: test_point(r.kind, tp.not_listed.as_deref().unwrap_or(def_neg))
                .map_err(|e| ctx(format!("test_points.not_listed: {e}")))?,
        };
        let p = r.policy.unwrap_or_default();
        if let Some(t) = &p.key_template {
            if !t.contains("{key}") {
                return Err(ctx("policy.key_template must contain {key}".into()));
            }
            if p.key.is_none() {
                return Err(ctx(
                    "policy.key_template needs policy.key (the name of the key in the config)"
                        .into(),
                ));
            }
        }
        if let Some(q) = p.max_qps {
            if !(q > 0.0 && q.is_finite()) {
                return Err(ctx(format!(
                    "policy.max_qps must be a positive number, not {q}"
                )));
            }
        }
        let retired = match r.retired {
            Some(rt) => Some(Retired {
                since: rt.since,
                reason: rt.reason,
            }),
            None => None,
        };
        let enabled_by_default = r.enabled.unwrap_or(true) && retired.is_none();
        Ok(ListDef {
            name: r.name.unwrap_or_else(|| id.clone()),
            id,
            zone,
            kind: r.kind,
            class,
            returns,
            test_points,
            delist: r.delist,
            website: r.website,
            policy: UsagePolicy {
                key: p.key,
                key_template: p.key_template,
                requires_key: p.requires_key.unwrap_or(false),
                max_qps: p.max_qps,
                daily_limit: p.daily_limit,
                blocks_public_resolvers: p.blocks_public_resolvers.unwrap_or(false),
                notes: p.notes,
            },
            enabled_by_default,
            retired,
            source: file.to_string(),
        })
    }
}

/// Test points are written raw: `::ffff:7f00:2` must stay IPv6 for an IPv6-only list.
fn test_point(kind: ListKind, s: &str) -> Result<Target, String> {
    match kind {
        ListKind::Domain => {
            let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
            if s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                return Err(format!("{s:?} is not a domain test point"));
            }
            Ok(Target::Domain(s))
        }
        _ => s
            .trim()
            .parse::<IpAddr>()
            .map(Target::Ip)
            .map_err(|_| format!("{s:?} is not an IP address")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEN: &str = r#"
[[list]]
id = "zen"
name = "Spamhaus ZEN"
zone = "zen.spamhaus.org"
kind = "ipv4"
returns = [
  { code = "127.0.0.2", meaning = "SBL" },
  { code = "127.0.0.10-127.0.0.11", meaning = "PBL" },
  { code = "127.255.255.0/24", verdict = "error", meaning = "blocked" },
]
"#;

    #[test]
    fn parses_and_looks_up_codes() {
        let l = parse_file("zen.toml", ZEN).unwrap().remove(0);
        assert_eq!(
            l.lookup_code("127.0.0.2".parse().unwrap()),
            (CodeVerdict::Listed, Some("SBL"))
        );
        assert_eq!(
            l.lookup_code("127.0.0.11".parse().unwrap()),
            (CodeVerdict::Listed, Some("PBL"))
        );
        assert_eq!(
            l.lookup_code("127.255.255.254".parse().unwrap()),
            (CodeVerdict::Error, Some("blocked"))
        );
        assert_eq!(
            l.lookup_code("127.0.0.3".parse().unwrap()),
            (CodeVerdict::Listed, None)
        );
        assert_eq!(
            l.test_points.listed,
            Target::Ip("127.0.0.2".parse().unwrap())
        );
        assert!(l.enabled_by_default);
    }

    #[test]
    fn bitmask_codes() {
        let m = CodeMatch::parse("bit:8").unwrap();
        assert!(m.matches("127.0.0.8".parse().unwrap()));
        assert!(m.matches("127.0.0.14".parse().unwrap()));
        assert!(!m.matches("127.0.0.6".parse().unwrap()));
        assert!(!m.matches("10.0.0.8".parse().unwrap()));
    }

    #[test]
    fn unknown_key_is_named() {
        let bad = ZEN.replace("kind = \"ipv4\"", "kind = \"ipv4\"\nzonee = \"x\"");
        let e = parse_file("zen.toml", &bad).unwrap_err().to_string();
        assert!(e.contains("zonee"), "{e}");
        assert!(e.contains("zen.toml"), "{e}");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        let e = parse_file(
            "x.toml",
            &ZEN.replace("127.0.0.10-127.0.0.11", "127.0.0.11-127.0.0.10"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("backwards"), "{e}");
        let e = parse_file("x.toml", &ZEN.replace("zen.spamhaus.org", "zen spamhaus")).unwrap_err();
        assert!(e.to_string().contains("zone"), "{e}");
    }

    #[test]
    fn shipped_catalog_is_valid_and_large_enough() {
        let c = Catalog::shipped().unwrap();
        let live = c.iter().filter(|l| l.retired.is_none()).count();
        assert!(live >= 40, "only {live} operating lists");
        for id in ["sorbs-dnsbl", "nixspam", "wpbl", "ahbl", "njabl", "megarbl"] {
            let l = c.get(id).unwrap_or_else(|| panic!("{id} missing"));
            assert!(l.retired.is_some() && !l.enabled_by_default, "{id}");
        }
        let zen = c.get("spamhaus-zen").unwrap();
        assert_eq!(
            zen.lookup_code("127.255.255.254".parse().unwrap()).0,
            CodeVerdict::Error
        );
        assert_eq!(
            c.get("suomispam").unwrap().test_points.listed.to_string(),
            "127.0.0.2"
        );
    }
}
