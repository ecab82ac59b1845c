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
use std::time::Duration;

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

crate::spelling::closed_set! {
    /// Why a list refuses to answer: carried by every `verdict = "error"` row, so a
    /// refusal is reported with its cause and what to do about it, never as a listing.
    /// Spelled in kebab-case in the catalog; [`ErrorCause::label`] is its words in verdicts.
    pub enum ErrorCause {
        /// The query came through a public or shared resolver the list will not serve (`public-resolver`).
        PublicResolver = "public-resolver",
        /// The querier went over the list's free query limit (`over-quota`).
        OverQuota = "over-quota",
        /// The key in the query zone is unknown, expired or mistyped (`invalid-key`).
        InvalidKey = "invalid-key",
        /// The zone name queried is not one the operator serves (`zone-typo`).
        ZoneTypo = "zone-typo",
        /// The list does not answer this kind of query, e.g. an IP on a domain-only list (`wrong-query`).
        WrongQuery = "wrong-query",
        /// The querying resolver's IP must be registered with the operator first (`unregistered`).
        Unregistered = "unregistered",
        /// A refusal the operator does not explain further (`blocked`).
        Blocked = "blocked",
    }
}

impl ErrorCause {
    /// Short name as written in verdicts ("public resolver", "over quota"…).
    pub fn label(&self) -> &'static str {
        match self {
            ErrorCause::PublicResolver => "public resolver",
            ErrorCause::OverQuota => "over quota",
            ErrorCause::InvalidKey => "invalid key",
            ErrorCause::ZoneTypo => "typo in the zone name",
            ErrorCause::WrongQuery => "wrong query",
            ErrorCause::Unregistered => "unregistered resolver",
            ErrorCause::Blocked => "blocked",
        }
    }

    /// What happened, in one sentence.
    pub fn describe(&self) -> &'static str {
        match self {
            ErrorCause::PublicResolver => {
                "the query came through a public or shared resolver (8.8.8.8, 1.1.1.1, an ISP's resolver) that the list refuses to serve"
            }
            ErrorCause::OverQuota => {
                "the querying resolver sent more queries than the list's free usage limit allows"
            }
            ErrorCause::InvalidKey => {
                "the list does not accept the key in the query zone (unknown, expired or mistyped)"
            }
            ErrorCause::ZoneTypo => {
                "the zone queried is not one the operator serves: a typing error in the zone name"
            }
            ErrorCause::WrongQuery => {
                "the list does not answer this kind of query (for example an IP address sent to a domain-only list)"
            }
            ErrorCause::Unregistered => {
                "the querying resolver's IP address is not registered with the list's operator"
            }
            ErrorCause::Blocked => "the list refuses to answer this querier",
        }
    }

    /// What the postmaster should do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            ErrorCause::PublicResolver => {
                "run your own recursive resolver (e.g. unbound) on or near the monitoring host, or set `[resolver] mode = \"direct\"`, or configure the list's key (e.g. a Spamhaus DQS key)"
            }
            ErrorCause::OverQuota => {
                "query less (the list's max_qps, fewer targets, a longer interval), use a resolver of your own so the quota is not shared, or get the operator's key or paid feed (e.g. a Spamhaus DQS key)"
            }
            ErrorCause::InvalidKey => {
                "check the key configured for this list under [keys] (typos, expiry, account status) against the operator's portal"
            }
            ErrorCause::ZoneTypo => {
                "fix the list's zone name (or key_template) in the catalog or the config's own lists"
            }
            ErrorCause::WrongQuery => {
                "query the list only with targets of its kind (check the list's `kind` in the catalog)"
            }
            ErrorCause::Unregistered => {
                "register the public IP address of your resolver with the operator (its web site says how) and query only through that resolver"
            }
            ErrorCause::Blocked => {
                "read the operator's usage terms; query through a resolver of your own, or ask the operator to unblock you"
            }
        }
    }

    /// The cause whose [`label`](Self::label) appears in a verdict's text, if any.
    pub fn find_in(text: &str) -> Option<ErrorCause> {
        ErrorCause::ALL
            .into_iter()
            .find(|c| text.contains(&format!(": {}: ", c.label())))
    }
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
    /// Any address inside 127.0.0.0/8 whose last octet is this value (`last:255`: DNSWL's 127.0.x.255).
    Last(u8),
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
        if let Some(b) = s.strip_prefix("last:") {
            let v: u8 = b
                .trim()
                .parse()
                .map_err(|_| format!("bad last octet {b:?}"))?;
            return Ok(CodeMatch::Last(v));
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
            CodeMatch::Last(v) => a.octets()[0] == 127 && a.octets()[3] == v,
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
            CodeMatch::Last(v) => write!(f, "last:{v}"),
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
    /// Why the list refuses to answer (set exactly on `verdict = "error"` rows).
    pub cause: Option<ErrorCause>,
    /// Human meaning, shown to the postmaster ("SBL: spam source").
    pub meaning: String,
}

/// RFC 5782 test points of a list: every positive must be listed, no negative may be.
///
/// An `ip` list has points of both families (the RFC 5782 IPv6 ones,
/// `::ffff:7f00:2` / `::ffff:7f00:1`, unless the catalog names others): the
/// IPv4 ones decide its health, the IPv6 ones whether it may be asked about
/// IPv6 targets in that cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestPoints {
    /// Must be listed (127.0.0.2, `::ffff:7f00:2` or `test` by default).
    pub listed: Vec<Target>,
    /// Must not be listed (127.0.0.1, `::ffff:7f00:1` or `invalid` by default).
    pub not_listed: Vec<Target>,
    /// Where the points come from (the operator's page, or RFC 5782 where it documents none).
    pub source: Option<String>,
}

impl TestPoints {
    /// The (positive, negative) points of one family: IPv6 when `v6`, else
    /// everything else (IPv4 addresses, domain names).
    pub fn of_family(&self, v6: bool) -> (Vec<&Target>, Vec<&Target>) {
        let is = |t: &&Target| matches!(t, Target::Ip(IpAddr::V6(_))) == v6;
        (
            self.listed.iter().filter(is).collect(),
            self.not_listed.iter().filter(is).collect(),
        )
    }
}

/// What a code the catalog does not document means on a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Undocumented {
    /// A listing (allowed on an allow list), as RFC 5782 reads any 127/8 answer (the default).
    #[default]
    Listed,
    /// Not a listing: the operator says only its documented codes count, and
    /// another answer may be an error (read as `blocked`).
    Error,
}

/// The meaning given to an undocumented code on a strict list (`undocumented_codes = "error"`).
pub const UNDOCUMENTED_ERROR: &str = "not a code this list documents";

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
    /// The operator's page where a key holder sees which zones the key covers.
    pub key_portal: Option<String>,
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
    /// What a code the table does not document means.
    pub undocumented: Undocumented,
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
    /// Where the facts of this entry come from (operator pages first).
    pub sources: Vec<String>,
    /// When the entry was last checked against its sources (`YYYY-MM-DD`).
    pub verified: Option<String>,
    /// Typical time until a listing expires by itself once its cause stops.
    #[serde(serialize_with = "ser_opt_duration")]
    pub expiry: Option<Duration>,
    /// The operator's own words about expiry.
    pub expiry_note: Option<String>,
    /// Where the definition came from (file name), for error messages.
    pub source: String,
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.collect_str(&humantime::format_duration(*d)),
        None => s.serialize_none(),
    }
}

impl ListDef {
    /// The first row of the return-code table matching `a`.
    pub fn lookup_row(&self, a: Ipv4Addr) -> Option<&ReturnCode> {
        self.returns.iter().find(|r| r.code.matches(a))
    }

    /// Meaning of an answer code: the first matching row, or for a code the
    /// table does not document, the list's rule for those (`undocumented_codes`:
    /// an error, or the default for the list's class).
    pub fn lookup_code(&self, a: Ipv4Addr) -> (CodeVerdict, Option<&str>) {
        if let Some(r) = self.lookup_row(a) {
            return (r.verdict, Some(r.meaning.as_str()));
        }
        let default = match (self.undocumented, self.class) {
            (Undocumented::Error, _) => CodeVerdict::Error,
            (Undocumented::Listed, ListClass::Block) => CodeVerdict::Listed,
            (Undocumented::Listed, ListClass::Allow) => CodeVerdict::Allowed,
        };
        (default, None)
    }

    /// The codes among `codes` that the table does not document (inside
    /// 127.0.0.0/8: an answer outside it is an error of its own).
    pub fn undocumented_codes(&self, codes: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
        codes
            .iter()
            .copied()
            .filter(|c| c.octets()[0] == 127 && self.lookup_row(*c).is_none())
            .collect()
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

#[cfg(test)]
thread_local! {
    /// How many times this thread parsed the shipped catalog: a test counts
    /// the parses of one start-up (the catalog is parsed once per config).
    pub static SHIPPED_PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The set of known lists, by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    lists: BTreeMap<String, ListDef>,
}

impl Catalog {
    /// The lists shipped with rblwatch (embedded at build time).
    pub fn shipped() -> Result<Self, CatalogError> {
        #[cfg(test)]
        SHIPPED_PARSES.with(|n| n.set(n.get() + 1));
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

    /// A list by id, or else by its zone (`zen.spamhaus.org`, any case, a
    /// trailing dot allowed): check_rbl's users name lists by zone. A retired
    /// list found by zone is returned too (the caller says why it is skipped);
    /// an active one is preferred when several share a zone.
    pub fn find(&self, id_or_zone: &str) -> Option<&ListDef> {
        if let Some(l) = self.get(id_or_zone) {
            return Some(l);
        }
        let zone = id_or_zone.trim_end_matches('.');
        let mut found: Vec<&ListDef> = self
            .iter()
            .filter(|l| l.zone.eq_ignore_ascii_case(zone))
            .collect();
        found.sort_by_key(|l| l.retired.is_some());
        found.first().copied()
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

    /// The retired list whose zone is `zone` or a parent of it: a dead list's
    /// sub-zones (`http.dnsbl.sorbs.net`) are as dead as the list.
    pub fn retired_zone(&self, zone: &str) -> Option<&ListDef> {
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        self.lists.values().find(|l| {
            l.retired.is_some() && (zone == l.zone || zone.ends_with(&format!(".{}", l.zone)))
        })
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
            match (verdict, c.cause) {
                (CodeVerdict::Error, None) => {
                    return Err(ctx(format!(
                        "returns[{i}] ({}): an error row needs `cause` (public-resolver, over-quota, invalid-key, zone-typo, wrong-query, unregistered or blocked)",
                        c.code.trim()
                    )))
                }
                (v, Some(_)) if v != CodeVerdict::Error => {
                    return Err(ctx(format!(
                        "returns[{i}] ({}): `cause` belongs only on rows with verdict = \"error\"",
                        c.code.trim()
                    )))
                }
                _ => {}
            }
            returns.push(ReturnCode {
                code,
                verdict,
                cause: c.cause,
                meaning: c.meaning,
            });
        }
        let tp = r.test_points.unwrap_or_default();
        let (def_pos, def_neg) = match r.kind {
            ListKind::Ipv4 | ListKind::Ip => ("127.0.0.2", "127.0.0.1"),
            ListKind::Ipv6 => (RFC_V6_LISTED, RFC_V6_NOT_LISTED),
            ListKind::Domain => ("test", "invalid"),
        };
        let points = |given: Option<raw::OneOrMany>, default: &str, v6: &str, key: &str| {
            let given = given.map_or_else(|| vec![default.to_string()], raw::OneOrMany::into_vec);
            if given.is_empty() {
                return Err(ctx(format!(
                    "test_points.{key}: at least one point is needed"
                )));
            }
            let mut out = Vec::new();
            for g in &given {
                out.push(
                    test_point(r.kind, g).map_err(|e| ctx(format!("test_points.{key}: {e}")))?,
                );
            }
            // An `ip` list's IPv6 claim is tested live: RFC 5782's IPv6 points unless named.
            if r.kind == ListKind::Ip && !out.iter().any(|t| matches!(t, Target::Ip(IpAddr::V6(_))))
            {
                out.push(Target::Ip(
                    v6.parse().map_err(|_| ctx("bad IPv6 default".into()))?,
                ));
            }
            Ok(out)
        };
        let test_points = TestPoints {
            listed: points(tp.listed, def_pos, RFC_V6_LISTED, "listed")?,
            not_listed: points(tp.not_listed, def_neg, RFC_V6_NOT_LISTED, "not_listed")?,
            source: tp.source,
        };
        if let Some(u) = &test_points.source {
            if !is_url(u) {
                return Err(ctx(format!(
                    "test_points.source: {u:?} is not an http(s) URL"
                )));
            }
        }
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
        if let Some(u) = &p.key_portal {
            if !is_url(u) {
                return Err(ctx(format!(
                    "policy.key_portal: {u:?} is not an http(s) URL"
                )));
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
        let sources = r.sources.unwrap_or_default();
        if let Some(bad) = sources.iter().find(|u| !is_url(u)) {
            return Err(ctx(format!("sources: {bad:?} is not an http(s) URL")));
        }
        if let Some(v) = &r.verified {
            if !is_iso_date(v) {
                return Err(ctx(format!("verified: {v:?} is not a YYYY-MM-DD date")));
            }
        }
        let expiry = match &r.expiry {
            Some(e) => Some(
                humantime::parse_duration(e.trim())
                    .map_err(|err| ctx(format!("expiry: {e:?} is not a duration ({err})")))?,
            ),
            None => None,
        };
        if r.expiry_note.is_some() && expiry.is_none() {
            return Err(ctx("expiry_note needs expiry".into()));
        }
        Ok(ListDef {
            name: r.name.unwrap_or_else(|| id.clone()),
            id,
            zone,
            kind: r.kind,
            class,
            returns,
            undocumented: r.undocumented_codes.unwrap_or_default(),
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
                key_portal: p.key_portal,
                notes: p.notes,
            },
            enabled_by_default,
            retired,
            sources,
            verified: r.verified,
            expiry,
            expiry_note: r.expiry_note,
            source: file.to_string(),
        })
    }
}

/// `https://…` or `http://…` with a host.
fn is_url(u: &str) -> bool {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

/// A real calendar date written `YYYY-MM-DD`.
fn is_iso_date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// RFC 5782 §5: an IPv6 list MUST list this address…
pub const RFC_V6_LISTED: &str = "::ffff:7f00:2";
/// …and MUST NOT list this one.
pub const RFC_V6_NOT_LISTED: &str = "::ffff:7f00:1";

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
        _ => {
            let ip = s
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("{s:?} is not an IP address"))?;
            match (kind, ip) {
                (ListKind::Ipv4, IpAddr::V6(_)) => {
                    Err(format!("{s:?} is IPv6 but the list is `kind = \"ipv4\"`"))
                }
                (ListKind::Ipv6, IpAddr::V4(_)) => {
                    Err(format!("{s:?} is IPv4 but the list is `kind = \"ipv6\"`"))
                }
                _ => Ok(Target::Ip(ip)),
            }
        }
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
  { code = "127.255.255.0/24", verdict = "error", cause = "blocked", meaning = "blocked" },
]
"#;

    #[test]
    fn finds_a_list_by_id_or_by_zone() {
        let c = Catalog::shipped().unwrap();
        let zen = c.find("spamhaus-zen").unwrap();
        assert_eq!(zen.zone, "zen.spamhaus.org");
        for z in ["zen.spamhaus.org", "ZEN.Spamhaus.org.", "zen.spamhaus.org."] {
            assert_eq!(
                c.find(z).map(|l| l.id.as_str()),
                Some("spamhaus-zen"),
                "{z}"
            );
        }
        assert!(c.find("nosuch.example").is_none());
    }

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
            vec![Target::Ip("127.0.0.2".parse().unwrap())]
        );
        assert!(l.enabled_by_default);
    }

    #[test]
    fn test_points_strict_codes_and_key_portal() {
        let text = ZEN.replace(
            "kind = \"ipv4\"",
            "kind = \"ip\"\nundocumented_codes = \"error\"\ntest_points = { listed = [\"127.0.0.2\", \"127.0.0.4\"], not_listed = \"127.0.0.1\", source = \"https://example.net/tp\" }\npolicy = { key = \"k\", key_template = \"{key}.zen.test\", key_portal = \"https://portal.example.net/\" }",
        );
        let l = parse_file("zen.toml", &text).unwrap().remove(0);
        assert_eq!(l.undocumented, Undocumented::Error);
        assert_eq!(
            l.lookup_code("127.0.0.77".parse().unwrap()),
            (CodeVerdict::Error, None)
        );
        // an `ip` list gets the RFC 5782 IPv6 points beside its own IPv4 ones
        let names = |v: &[Target]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&l.test_points.listed),
            ["127.0.0.2", "127.0.0.4", "::ffff:127.0.0.2"]
        );
        assert_eq!(
            names(&l.test_points.not_listed),
            ["127.0.0.1", "::ffff:127.0.0.1"]
        );
        let (p6, n6) = l.test_points.of_family(true);
        assert_eq!((p6.len(), n6.len()), (1, 1));
        assert_eq!(
            l.test_points.source.as_deref(),
            Some("https://example.net/tp")
        );
        assert_eq!(
            l.policy.key_portal.as_deref(),
            Some("https://portal.example.net/")
        );
        // an IPv4-only list gets none, and refuses an IPv6 point
        let l = parse_file("zen.toml", ZEN).unwrap().remove(0);
        assert_eq!(l.undocumented, Undocumented::Listed);
        assert!(l.test_points.of_family(true).0.is_empty());
        let bad = ZEN.replace(
            "kind = \"ipv4\"",
            "kind = \"ipv4\"\ntest_points = { listed = \"::ffff:7f00:2\" }",
        );
        let e = parse_file("zen.toml", &bad).unwrap_err().to_string();
        assert!(e.contains("is IPv6"), "{e}");
        let bad = ZEN.replace(
            "kind = \"ipv4\"",
            "kind = \"ipv4\"\ntest_points = { listed = [] }",
        );
        let e = parse_file("zen.toml", &bad).unwrap_err().to_string();
        assert!(e.contains("at least one"), "{e}");
    }

    #[test]
    fn retired_zones_cover_their_sub_zones_and_no_live_list() {
        let c = Catalog::shipped().unwrap();
        for z in [
            "http.dnsbl.sorbs.net",
            "socks.dnsbl.sorbs.net",
            "misc.dnsbl.sorbs.net",
            "zombie.dnsbl.sorbs.net",
            "web.dnsbl.sorbs.net",
            "dnsbl.sorbs.net.",
        ] {
            let r = c
                .retired_zone(z)
                .unwrap_or_else(|| panic!("{z} not retired"));
            assert!(r.retired.is_some(), "{z}");
        }
        assert!(c.retired_zone("zen.spamhaus.org").is_none());
        for l in c.iter().filter(|l| l.retired.is_none()) {
            assert!(
                c.retired_zone(&l.zone).is_none(),
                "{} lies under a retired zone",
                l.id
            );
        }
        for id in [
            "sorbs-http",
            "sorbs-socks",
            "sorbs-misc",
            "sorbs-zombie",
            "sorbs-web",
        ] {
            assert!(c.get(id).is_some_and(|l| l.retired.is_some()), "{id}");
        }
    }

    #[test]
    fn last_octet_codes() {
        let m = CodeMatch::parse("last:255").unwrap();
        assert!(m.matches("127.0.5.255".parse().unwrap()));
        assert!(!m.matches("127.0.5.254".parse().unwrap()));
        assert!(!m.matches("10.0.5.255".parse().unwrap()));
        assert_eq!(m.to_string(), "last:255");
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
    fn error_rows_need_a_cause_and_only_they_have_one() {
        let no_cause = ZEN.replace(
            "verdict = \"error\", cause = \"blocked\",",
            "verdict = \"error\",",
        );
        let e = parse_file("zen.toml", &no_cause).unwrap_err().to_string();
        assert!(
            e.contains("needs `cause`") && e.contains("returns[2]"),
            "{e}"
        );
        let stray = ZEN.replace(
            "{ code = \"127.0.0.2\", meaning",
            "{ code = \"127.0.0.2\", cause = \"over-quota\", meaning",
        );
        let e = parse_file("zen.toml", &stray).unwrap_err().to_string();
        assert!(e.contains("only on rows with verdict"), "{e}");
        let unknown = ZEN.replace("cause = \"blocked\"", "cause = \"gremlins\"");
        let e = parse_file("zen.toml", &unknown).unwrap_err().to_string();
        assert!(e.contains("gremlins"), "{e}");
        let l = parse_file("zen.toml", ZEN).unwrap().remove(0);
        assert_eq!(l.returns[2].cause, Some(ErrorCause::Blocked));
        // every cause spelled in kebab-case, with words for the postmaster
        for (c, toml) in ErrorCause::ALL.iter().zip([
            "public-resolver",
            "over-quota",
            "invalid-key",
            "zone-typo",
            "wrong-query",
            "unregistered",
            "blocked",
        ]) {
            let text = ZEN.replace("cause = \"blocked\"", &format!("cause = {toml:?}"));
            let l = parse_file("zen.toml", &text).unwrap().remove(0);
            assert_eq!(l.returns[2].cause, Some(*c));
            assert!(!c.describe().is_empty() && !c.advice().is_empty());
            assert_eq!(
                ErrorCause::find_in(&format!("127.255.255.1: {}: x", c.label())),
                Some(*c)
            );
        }
    }

    #[test]
    fn sources_verified_and_expiry() {
        let text = ZEN.replace(
            "kind = \"ipv4\"",
            "kind = \"ipv4\"\nsources = [\"https://www.spamhaus.org/zen/\"]\nverified = \"2026-11-23\"\nexpiry = \"7days\"\nexpiry_note = \"a week\"",
        );
        let l = parse_file("zen.toml", &text).unwrap().remove(0);
        assert_eq!(l.sources, vec!["https://www.spamhaus.org/zen/".to_string()]);
        assert_eq!(l.verified.as_deref(), Some("2026-11-23"));
        assert_eq!(l.expiry, Some(Duration::from_secs(7 * 86400)));
        assert_eq!(l.expiry_note.as_deref(), Some("a week"));
        // optional for users' own lists
        let l = parse_file("zen.toml", ZEN).unwrap().remove(0);
        assert!(l.sources.is_empty() && l.verified.is_none() && l.expiry.is_none());
        for (bad, what) in [
            ("verified = \"2026-02-30\"", "verified"),
            ("verified = \"23.11.2026\"", "verified"),
            ("expiry = \"soon\"", "expiry"),
            ("sources = [\"spamhaus.org\"]", "sources"),
            ("expiry_note = \"no expiry given\"", "expiry_note"),
        ] {
            let text = ZEN.replace("kind = \"ipv4\"", &format!("kind = \"ipv4\"\n{bad}"));
            let e = parse_file("zen.toml", &text).unwrap_err().to_string();
            assert!(e.contains(what), "{bad}: {e}");
        }
    }

    #[test]
    fn every_shipped_list_names_its_sources() {
        let c = Catalog::shipped().unwrap();
        let mut missing = Vec::new();
        for l in c.iter() {
            if l.sources.is_empty() {
                missing.push(format!("{}: no sources", l.id));
            }
            if l.retired.is_none() && !l.verified.as_deref().is_some_and(is_iso_date) {
                missing.push(format!("{}: no valid `verified` date", l.id));
            }
            if l.retired.is_none() && l.test_points.source.is_none() {
                missing.push(format!("{}: test points without a source", l.id));
            }
            for r in &l.returns {
                if (r.verdict == CodeVerdict::Error) != r.cause.is_some() {
                    missing.push(format!("{}: row {} has a wrong cause", l.id, r.code));
                }
            }
        }
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[test]
    fn shipped_catalog_has_the_audited_facts() {
        let c = Catalog::shipped().unwrap();
        let code = |id: &str, a: &str| {
            c.get(id)
                .unwrap_or_else(|| panic!("{id} missing"))
                .lookup_code(a.parse().unwrap())
                .0
        };
        // a healthy list must not read as dead or blocked from its own test point answer
        assert_eq!(code("dnswl", "127.0.10.0"), CodeVerdict::Allowed);
        assert_eq!(code("suomispam", "127.0.0.99"), CodeVerdict::Listed);
        assert_eq!(code("blocklist-de", "127.0.0.15"), CodeVerdict::Listed);
        let sem = c.get("sem-uribl").unwrap();
        assert_eq!(sem.test_points.listed[0].to_string(), "_dnsbl_.test");
        assert_eq!(sem.test_points.not_listed[0].to_string(), "_dnsblneg_.test");
        // neutral reputation is not a listing
        for a in ["127.0.0.13", "127.0.0.14", "127.0.0.15", "127.0.0.16"] {
            assert_eq!(code("mailspike-rep", a), CodeVerdict::Ignore, "{a}");
        }
        assert_eq!(code("spfbl", "127.0.0.4"), CodeVerdict::Listed);
        // whole reserved error ranges, each with its cause
        for id in [
            "spamhaus-zen",
            "spamhaus-dbl",
            "spamhaus-zrd",
            "spamhaus-authbl",
        ] {
            assert_eq!(code(id, "127.255.255.1"), CodeVerdict::Error, "{id}");
        }
        let zrd = c.get("spamhaus-zrd").unwrap();
        assert_eq!(
            zrd.lookup_row("127.0.2.255".parse().unwrap())
                .and_then(|r| r.cause),
            Some(ErrorCause::WrongQuery)
        );
        assert!(zrd.policy.requires_key);
        assert_eq!(c.get("spamhaus-zen").unwrap().kind, ListKind::Ip);
        for id in [
            "spamhaus-authbl",
            "spamrats-auth",
            "sem-fresh10",
            "sem-fresh15",
            "sem-fresh30",
            "sem-urired",
        ] {
            let l = c.get(id).unwrap_or_else(|| panic!("{id} missing"));
            assert!(l.retired.is_none() && !l.enabled_by_default, "{id}");
        }
        for id in [
            "madavi",
            "anonmails",
            "rfc-ignorant-dsn",
            "lugh",
            "drand-spamtrap",
            "spamdown",
        ] {
            let l = c.get(id).unwrap_or_else(|| panic!("{id} missing"));
            assert!(l.retired.is_some(), "{id}");
        }
        assert_eq!(
            c.get("spamcop").unwrap().expiry,
            Some(Duration::from_secs(24 * 3600))
        );
    }

    #[test]
    fn shipped_catalog_has_the_2026_12_06_audit() {
        let c = Catalog::shipped().unwrap();
        let get = |id: &str| c.get(id).unwrap_or_else(|| panic!("{id} missing"));
        // Spamhaus: only documented codes count, on ZEN and on every sibling zone
        for id in [
            "spamhaus-zen",
            "spamhaus-sbl",
            "spamhaus-xbl",
            "spamhaus-pbl",
            "spamhaus-dbl",
            "spamhaus-zrd",
            "spamhaus-authbl",
        ] {
            let l = get(id);
            assert_eq!(l.undocumented, Undocumented::Error, "{id}");
            assert_eq!(
                l.lookup_code("127.0.0.77".parse().unwrap()).0,
                CodeVerdict::Error,
                "{id}"
            );
            assert!(l.policy.key_portal.is_some(), "{id}");
        }
        // a code documented only for a sibling zone is not a listing on SBL
        assert_eq!(
            get("spamhaus-sbl")
                .lookup_code("127.0.0.4".parse().unwrap())
                .0,
            CodeVerdict::Error
        );
        assert_eq!(
            get("spamhaus-dbl").test_points.listed[0].to_string(),
            "dbltest.com"
        );
        // DNSWL: 127.0.x.255 is never a vouch
        for a in ["127.0.0.255", "127.0.5.255", "127.0.10.255"] {
            assert_eq!(
                get("dnswl").lookup_code(a.parse().unwrap()).0,
                CodeVerdict::Error,
                "{a}"
            );
        }
        assert_eq!(
            get("dnswl").lookup_code("127.0.5.2".parse().unwrap()).0,
            CodeVerdict::Allowed
        );
        // the backscatter list's meaning and expiry
        let b = get("backscatterer");
        assert!(b.returns[0].meaning.contains("sender callouts"));
        assert_eq!(b.expiry, Some(Duration::from_secs(28 * 86400)));
        // IPv6 claims on second sources only are downgraded
        for id in [
            "spamhaus-xbl",
            "spamcop",
            "dnswl",
            "virusfree-bip",
            "hostkarma",
        ] {
            assert_eq!(get(id).kind, ListKind::Ipv4, "{id}");
        }
        // no operator page: not enabled by default
        for id in ["hetzner", "kempt", "kundenserver-relays"] {
            assert!(!get(id).enabled_by_default, "{id}");
        }
        // Abusix' separate zones, incl. its domain list, with the operator's test points
        for id in [
            "abusix-black",
            "abusix-exploit",
            "abusix-dynamic",
            "abusix-dblack",
        ] {
            let l = get(id);
            assert!(
                l.policy.requires_key && l.policy.key_portal.is_some(),
                "{id}"
            );
        }
        assert_eq!(get("abusix-dblack").kind, ListKind::Domain);
        assert_eq!(get("abusix-combined").test_points.listed.len(), 9);
        // URI lists' own test names
        assert_eq!(
            get("uribl-multi").test_points.listed[0].to_string(),
            "test.uribl.com"
        );
        assert_eq!(
            get("surbl-multi").test_points.listed[0].to_string(),
            "surbl-org-permanent-test-point.com"
        );
    }

    /// The second 2026-12-06 pass: the entries the first left on 2026-11-23 or
    /// on second sources, re-read against the operators' own pages
    /// (lists.d/README.md records what each rests on).
    #[test]
    fn shipped_catalog_has_the_operators_pages_of_the_second_audit() {
        let c = Catalog::shipped().unwrap();
        let get = |id: &str| c.get(id).unwrap_or_else(|| panic!("{id} missing"));
        // every operating list was checked on 2026-12-06, except the two the stored
        // copies say nothing about (README)
        for l in c.iter().filter(|l| l.retired.is_none()) {
            if ["dan-tor", "dan-torexit", "dnswl-dwl"].contains(&l.id.as_str()) {
                continue;
            }
            assert_eq!(l.verified.as_deref(), Some("2026-12-06"), "{}", l.id);
        }
        // test points from the operator's page where it documents them
        for (id, page) in [
            ("sem-bl", "spameatingmonkey.com/faq.html"),
            ("sem-backscatter", "spameatingmonkey.com/faq.html"),
            ("barracuda", "barracudacentral.org/rbl/how-to-use"),
            ("nordspam-bl", "nordspam.com/usage"),
            (
                "abusix-exploit",
                "docs.abusix.ai/en/articles/3305108-authbl",
            ),
        ] {
            let src = get(id).test_points.source.clone().unwrap_or_default();
            assert!(src.contains(page), "{id}: {src}");
        }
        let pts = |id: &str| -> Vec<String> {
            get(id)
                .test_points
                .listed
                .iter()
                .map(|t| t.to_string())
                .collect()
        };
        assert_eq!(pts("sem-bl"), ["127.0.0.2"]);
        assert_eq!(
            get("sem-bl").test_points.not_listed[0].to_string(),
            "127.0.0.1"
        );
        assert_eq!(
            pts("abusix-exploit"),
            [
                "127.0.0.2",
                "127.0.0.4",
                "::ffff:127.0.0.2",
                "::ffff:127.0.0.4"
            ]
        );
        // NordSpam's IPv6 claim is the operator's ("DNSBL (IPv4 and IPv6)") and is
        // proven live on ::ffff:7f00:2
        assert_eq!(get("nordspam-bl").kind, ListKind::Ip);
        assert_eq!(get("s5h").kind, ListKind::Ip);
        // the answer suped.com quotes for SWINOG's realtime list is a listing, not
        // an undocumented code
        assert_eq!(
            get("swinog-dnsrbl")
                .lookup_code("127.0.0.3".parse().unwrap())
                .0,
            CodeVerdict::Listed
        );
        // InterServer's own page: 5 days by default
        assert_eq!(
            get("interserver").expiry,
            Some(Duration::from_secs(5 * 86400))
        );
        // SURBL's FAQ documents the test points' all-bits answer
        assert!(get("surbl-multi")
            .sources
            .iter()
            .any(|s| s == "https://www.surbl.org/faqs"));
        // ISIPP's own code list: a bad-practice data point is no vouch
        let iadb = get("isipp-iadb");
        for (code, v) in [
            ("127.0.1.255", CodeVerdict::Allowed),
            ("127.0.0.1", CodeVerdict::Allowed),
            ("127.3.100.0", CodeVerdict::Ignore),
            ("127.2.255.1", CodeVerdict::Ignore),
        ] {
            assert_eq!(iadb.lookup_code(code.parse().unwrap()).0, v, "{code}");
        }
        // zones no operator page names stay off by default
        for id in ["0spam-url", "senderscore-bl"] {
            assert!(!get(id).enabled_by_default, "{id}");
        }
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
            c.get("suomispam").unwrap().test_points.listed[0].to_string(),
            "127.0.0.2"
        );
    }
}
