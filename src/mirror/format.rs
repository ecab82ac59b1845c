//! rbldnsd's dataset formats, parsed into compact indexes (pure).
//!
//! The semantics follow rbldnsd's own source (`rbldnsd_ip4set.c`,
//! `_ip4trie.c`, `_ip4tset.c`, `_ip6trie.c`, `_ip6tset.c`, `_dnset.c`,
//! `_combined.c`, `_util.c`), not just its manual, because a mirror must
//! answer exactly as rbldnsd serving the same file would:
//! * `ip4set` expands every range to octet-aligned entries (/32, /24, /16, /8);
//!   the most specific level holding the address decides, and at that level
//!   an exclusion beats every value while several values are all returned;
//! * `ip4trie`/`ip6trie` answer the longest matching prefix; a prefix given
//!   twice keeps its first line (an exclusion repeating a listed prefix is
//!   ignored, as rbldnsd does, and counted as a warning);
//! * `ip4tset`/`ip6tset` carry one value (the first `:A:TXT` line);
//! * `dnset`: an exact entry (listed or excluded) decides; else the longest
//!   wildcard suffix; `$` in a TXT is the entry's name there, the queried
//!   address elsewhere;
//! * TXT: 255 bytes at most as written, 254 after substitution; `$n`, `$=`
//!   (the base template) and `$$` as in `txtsubst()`.
//!
//! Indexes are sorted vectors searched by bisection (8 bytes per IPv4
//! entry, 24 per IPv6 prefix) and hash maps for names.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// The dataset types rblwatch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetType {
    /// IPv4 addresses and ranges with values.
    Ip4Set,
    /// Single IPv4 addresses sharing one value.
    Ip4Tset,
    /// IPv4 CIDR ranges, longest prefix wins.
    Ip4Trie,
    /// IPv6 CIDR ranges, longest prefix wins.
    Ip6Trie,
    /// IPv6 /64s sharing one value, /128 exclusions.
    Ip6Tset,
    /// Domain names, with wildcards.
    Dnset,
    /// Several datasets in one file (`$DATASET type subzone...`).
    Combined,
}

impl DatasetType {
    /// Parses rbldnsd's type name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ip4set" => DatasetType::Ip4Set,
            "ip4tset" => DatasetType::Ip4Tset,
            "ip4trie" => DatasetType::Ip4Trie,
            "ip6trie" => DatasetType::Ip6Trie,
            "ip6tset" => DatasetType::Ip6Tset,
            "dnset" => DatasetType::Dnset,
            "combined" => DatasetType::Combined,
            _ => return None,
        })
    }

    /// rbldnsd's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            DatasetType::Ip4Set => "ip4set",
            DatasetType::Ip4Tset => "ip4tset",
            DatasetType::Ip4Trie => "ip4trie",
            DatasetType::Ip6Trie => "ip6trie",
            DatasetType::Ip6Tset => "ip6tset",
            DatasetType::Dnset => "dnset",
            DatasetType::Combined => "combined",
        }
    }

    /// Whether queries under an IPv4-reversed name reach it (rbldnsd's DSTF_IP4REV).
    fn ip4(self) -> bool {
        matches!(
            self,
            DatasetType::Ip4Set | DatasetType::Ip4Tset | DatasetType::Ip4Trie
        )
    }
}

/// The value id of an exclusion: sorts before every value, as rbldnsd's NULL does.
const EXCL: u32 = 0;

/// One `A`+TXT template pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Value {
    /// The A record.
    pub a: Ipv4Addr,
    /// The TXT template (raw bytes, at most 255); empty means no TXT.
    pub txt: Box<[u8]>,
}

/// What one line or file got wrong, kept as warnings (rbldnsd skips such lines too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// Lines read.
    pub lines: u64,
    /// Lines skipped as invalid.
    pub invalid: u64,
    /// Their bytes.
    pub invalid_bytes: u64,
    /// The first few, as `line N: why`.
    pub examples: Vec<String>,
    /// Prefixes given twice (first kept).
    pub duplicates: u64,
    /// Entries both listed and excluded at the same place (the exclusion wins in sets,
    /// the first line in tries).
    pub contradictions: u64,
    /// Other notes (e.g. an ignored `$DATASET` subzone).
    pub notes: Vec<String>,
}

impl Problems {
    fn invalid(&mut self, line: u64, why: &str) {
        self.invalid += 1;
        if self.examples.len() < 5 {
            self.examples.push(format!("line {line}: {why}"));
        }
    }
}

/// An index over one dataset's entries.
#[derive(Debug, Default)]
enum Index {
    /// Per level (/32, /24, /16, /8): sorted (address, value id).
    Ip4Set([Vec<(u32, u32)>; 4]),
    /// Sorted addresses.
    Ip4Tset(Vec<u32>),
    /// Per prefix length (longest first): sorted (network, value id).
    Ip4Trie(Vec<(u8, Vec<(u32, u32)>)>),
    /// Per prefix length (longest first): sorted (network, value id).
    Ip6Trie(Vec<(u8, Vec<(u128, u32)>)>),
    /// Sorted /64 networks (upper halves) and sorted /128 exclusions.
    Ip6Tset(Vec<u64>, Vec<u128>),
    /// Exact names and wildcard suffixes: value ids (EXCL first when excluded).
    Dnset {
        exact: HashMap<Box<str>, Vec<u32>>,
        wild: HashMap<Box<str>, Vec<u32>>,
    },
    #[default]
    Empty,
}

/// One loaded dataset: its index, its values and its substitution variables.
#[derive(Debug)]
pub struct Dataset {
    /// Its type.
    pub kind: DatasetType,
    index: Index,
    /// Value table; id 0 is the exclusion placeholder.
    values: Vec<Value>,
    /// `$0`..`$9` and `$=` (index 10).
    subst: [Option<Box<[u8]>>; 11],
    /// `$TIMESTAMP`'s expiry (Unix seconds), if any.
    pub expires: Option<i64>,
    /// Entries indexed (after range expansion).
    pub entries: u64,
}

/// A hit: the dataset's value and the text `$` stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    value: &'a Value,
    subst: &'a [Option<Box<[u8]>>; 11],
}

impl Hit<'_> {
    /// The A record.
    pub fn a(&self) -> Ipv4Addr {
        self.value.a
    }

    /// The TXT with `$` standing for `s0`; `None` when there is none.
    pub fn txt(&self, s0: &str) -> Option<String> {
        let t = txtsubst(&self.value.txt, s0.as_bytes(), self.subst);
        (!t.is_empty()).then(|| String::from_utf8_lossy(&t).into_owned())
    }
}

/// What a lookup key is, as rbldnsd derives it from the query name.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// An IPv4 address (four numeric labels).
    V4(u32),
    /// An IPv6 address (32 nibbles).
    V6(u128),
    /// Any other name (relative to the zone, lower case, no trailing dot).
    Name(&'a str),
}

impl Dataset {
    /// The values listing `key` (empty when not listed or excluded), with the
    /// name `$` stands for in their TXT.
    pub fn lookup(&self, key: Key<'_>, zone_has_ip4: bool) -> (Vec<Hit<'_>>, String) {
        let mut out = Vec::new();
        let mut subst = String::new();
        let hit = |id: u32| Hit {
            value: &self.values[id as usize],
            subst: &self.subst,
        };
        match (&self.index, key) {
            (Index::Ip4Set(levels), Key::V4(q)) => {
                for (level, entries) in levels.iter().enumerate() {
                    let f = q & level_mask(level);
                    let start = entries.partition_point(|e| e.0 < f);
                    if entries.get(start).is_none_or(|e| e.0 != f) {
                        continue;
                    }
                    if entries[start].1 == EXCL {
                        break;
                    }
                    out.extend(
                        entries[start..]
                            .iter()
                            .take_while(|e| e.0 == f)
                            .map(|e| hit(e.1)),
                    );
                    subst = Ipv4Addr::from(q).to_string();
                    break;
                }
            }
            (Index::Ip4Tset(addrs), Key::V4(q)) if addrs.binary_search(&q).is_ok() => {
                out.push(hit(1));
                subst = Ipv4Addr::from(q).to_string();
            }
            (Index::Ip4Trie(lens), Key::V4(q)) => {
                if let Some(id) = trie_find(lens, q, |q, len| q & mask32(len)) {
                    out.push(hit(id));
                    subst = Ipv4Addr::from(q).to_string();
                }
            }
            (Index::Ip6Trie(lens), Key::V6(q)) => {
                if let Some(id) = trie_find(lens, q, |q, len| q & mask128(len)) {
                    out.push(hit(id));
                    subst = ip6atos(q);
                }
            }
            (Index::Ip6Tset(nets, excl), Key::V6(q))
                if nets.binary_search(&((q >> 64) as u64)).is_ok()
                    && excl.binary_search(&q).is_err() =>
            {
                out.push(hit(1));
                subst = ip6atos(q);
            }
            (Index::Dnset { exact, wild }, key) => {
                let name: std::borrow::Cow<'_, str> = match key {
                    Key::Name(n) => n.into(),
                    Key::V4(q) => {
                        let o = q.to_be_bytes();
                        format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0]).into()
                    }
                    Key::V6(q) => nibbles(q).into(),
                };
                let _ = zone_has_ip4;
                if name.is_empty() {
                    return (out, subst);
                }
                let found = match exact.get(name.as_ref()) {
                    Some(ids) => Some((ids, name.to_string())),
                    None => {
                        let mut rest = name.as_ref();
                        let mut f = None;
                        while let Some((_, tail)) = rest.split_once('.') {
                            if let Some(ids) = wild.get(tail) {
                                f = Some((ids, tail.to_string()));
                                break;
                            }
                            rest = tail;
                        }
                        f
                    }
                };
                if let Some((ids, entry)) = found {
                    if ids.first() != Some(&EXCL) {
                        out.extend(ids.iter().map(|&id| hit(id)));
                        subst = entry;
                    }
                }
            }
            _ => {}
        }
        (out, subst)
    }

    /// The address spans (inclusive) of every entry that may decide an
    /// address within `[lo, hi]`, for an intersection: their edges cut the
    /// range into pieces whose answer is the same throughout.
    pub fn edges_v4(&self, lo: u32, hi: u32, out: &mut Vec<u64>) {
        let mut span = |s: u32, e: u32| {
            if e >= lo && s <= hi {
                out.push(u64::from(s.max(lo)));
                out.push(u64::from(e.min(hi)) + 1);
            }
        };
        match &self.index {
            Index::Ip4Set(levels) => {
                for (level, entries) in levels.iter().enumerate() {
                    let m = level_mask(level);
                    let from = entries.partition_point(|e| e.0 < lo & m);
                    for e in entries[from..].iter().take_while(|e| e.0 <= hi) {
                        span(e.0, e.0 | !m);
                    }
                }
            }
            Index::Ip4Tset(addrs) => {
                let from = addrs.partition_point(|&a| a < lo);
                for &a in addrs[from..].iter().take_while(|&&a| a <= hi) {
                    span(a, a);
                }
            }
            Index::Ip4Trie(lens) => {
                for (len, entries) in lens {
                    let m = mask32(*len);
                    let from = entries.partition_point(|e| e.0 < lo & m);
                    for e in entries[from..].iter().take_while(|e| e.0 <= hi) {
                        span(e.0, e.0 | !m);
                    }
                }
            }
            _ => {}
        }
    }

    /// Like [`Dataset::edges_v4`] for IPv6 (edges may be 2^128: kept in the caller's range).
    pub fn edges_v6(&self, lo: u128, hi: u128, out: &mut Vec<u128>) {
        let mut span = |s: u128, e: u128| {
            if e >= lo && s <= hi {
                out.push(s.max(lo));
                if e < hi {
                    out.push(e + 1);
                }
            }
        };
        match &self.index {
            Index::Ip6Trie(lens) => {
                for (len, entries) in lens {
                    let m = mask128(*len);
                    let from = entries.partition_point(|e| e.0 < lo & m);
                    for e in entries[from..].iter().take_while(|e| e.0 <= hi) {
                        span(e.0, e.0 | !m);
                    }
                }
            }
            Index::Ip6Tset(nets, excl) => {
                let from = nets.partition_point(|&n| n < (lo >> 64) as u64);
                for &n in nets[from..]
                    .iter()
                    .take_while(|&&n| u128::from(n) << 64 <= hi)
                {
                    let s = u128::from(n) << 64;
                    span(s, s | u128::from(u64::MAX));
                }
                let from = excl.partition_point(|&x| x < lo);
                for &x in excl[from..].iter().take_while(|&&x| x <= hi) {
                    span(x, x);
                }
            }
            _ => {}
        }
    }

    /// Whether IPv4-reversed names reach this dataset.
    pub fn is_ip4(&self) -> bool {
        self.kind.ip4()
    }
}

fn trie_find<K: Copy + Ord>(
    lens: &[(u8, Vec<(K, u32)>)],
    q: K,
    mask: impl Fn(K, u8) -> K,
) -> Option<u32> {
    for (len, entries) in lens {
        let k = mask(q, *len);
        if let Ok(i) = entries.binary_search_by(|e| e.0.cmp(&k)) {
            let id = entries[i].1;
            return (id != EXCL).then_some(id);
        }
    }
    None
}

fn level_mask(level: usize) -> u32 {
    match level {
        0 => u32::MAX,
        1 => 0xffff_ff00,
        2 => 0xffff_0000,
        _ => 0xff00_0000,
    }
}

/// The netmask of an IPv4 prefix length.
pub fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

/// The netmask of an IPv6 prefix length.
pub fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

/// The reversed nibble name of an IPv6 address (no zone), as in a DNSBL query.
fn nibbles(q: u128) -> String {
    let mut s = String::with_capacity(64);
    for i in 0..32 {
        let n = (q >> (i * 4)) & 0xf;
        if i > 0 {
            s.push('.');
        }
        s.push(char::from_digit(n as u32, 16).unwrap_or('0'));
    }
    s
}

/// rbldnsd's `ip6atos()`: the longest run of two or more zero words
/// compressed (the first of equal runs), no dotted IPv4 tail.
pub fn ip6atos(q: u128) -> String {
    let w: Vec<u16> = (0..8).map(|i| (q >> (112 - 16 * i)) as u16).collect();
    let (mut zstart, mut nzeros) = (0, 0);
    let mut i = 0;
    while i + nzeros < 8 {
        let nz = w[i..].iter().take_while(|&&x| x == 0).count();
        if nz > 1 && nz > nzeros {
            nzeros = nz;
            zstart = i;
        }
        i += 1;
    }
    let hex = |ws: &[u16]| {
        ws.iter()
            .map(|x| format!("{x:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    if nzeros == 0 {
        hex(&w)
    } else {
        format!("{}::{}", hex(&w[..zstart]), hex(&w[zstart + nzeros..]))
    }
}

/// rbldnsd's `txtsubst()`: `$` is `s0`, `$n` a variable, `$=` the entry's
/// text inside a base template, `$$` a dollar; at most 254 bytes.
fn txtsubst(txt: &[u8], s0: &[u8], sn: &[Option<Box<[u8]>>; 11]) -> Vec<u8> {
    const E: usize = 254;
    let srec = s0;
    let base = sn[10].as_deref().filter(|b| !b.is_empty());
    let (mut txt, sx): (&[u8], &[u8]) = if txt.first() == Some(&b'=') {
        (&txt[1..], &txt[1..])
    } else if let Some(base) = base {
        let s0 = if txt.is_empty() { s0 } else { txt };
        (base, s0)
    } else {
        (txt, txt)
    };
    let mut out: Vec<u8> = Vec::with_capacity(64);
    let push = |out: &mut Vec<u8>, s: &[u8]| {
        let room = E.saturating_sub(out.len());
        out.extend_from_slice(&s[..s.len().min(room)]);
    };
    while out.len() < E {
        let Some(d) = txt.iter().position(|&c| c == b'$') else {
            push(&mut out, txt);
            break;
        };
        push(&mut out, &txt[..d]);
        let s = &txt[d + 1..];
        let (si, rest): (&[u8], &[u8]) = match s.first() {
            Some(b'$') => (b"$", &s[1..]),
            Some(c @ b'0'..=b'9') => match &sn[usize::from(c - b'0')] {
                Some(v) => (v, &s[1..]),
                None => (&txt[d..d + 2], &s[1..]),
            },
            Some(b'=') => (sx, &s[1..]),
            _ => (srec, s),
        };
        push(&mut out, si);
        txt = rest;
    }
    out.truncate(E);
    out
}

/// Parses one data file of `kind` (a `combined` file yields the datasets it
/// attaches to the zone itself, `@`). `now` is for `$TIMESTAMP`.
pub fn parse(
    kind: DatasetType,
    lines: &mut dyn Iterator<Item = Vec<u8>>,
    now: i64,
    problems: &mut Problems,
) -> Result<Vec<Dataset>, String> {
    let mut p = FileParse::new(kind, now);
    let mut n = 0u64;
    for raw in lines {
        n += 1;
        problems.lines += 1;
        let line = trim(&raw);
        if line.is_empty() {
            continue;
        }
        if let Some(sp) = special_of(line) {
            p.special(n, sp, problems)?;
            continue;
        }
        if line[0] == b'#' || line[0] == b';' {
            continue;
        }
        let Some(b) = &mut p.cur else {
            return Err(format!(
                "line {n}: invalid/unrecognized entry - specify $DATASET line"
            ));
        };
        if let Err(why) = b.line(line) {
            problems.invalid_bytes += raw.len() as u64;
            problems.invalid(n, why);
        }
    }
    Ok(p.finish(problems))
}

/// A special line's text after its `$` (`$word`, or `#$`, `;$`, `:$`).
fn special_of(line: &[u8]) -> Option<&[u8]> {
    if line[0] == b'$' {
        Some(&line[1..])
    } else if (line[0] == b'#' || line[0] == b';' || line[0] == b':') && line.get(1) == Some(&b'$')
    {
        Some(&line[2..])
    } else {
        None
    }
}

/// One file being parsed: the datasets so far and the one being built.
struct FileParse {
    kind: DatasetType,
    now: i64,
    out: Vec<Dataset>,
    cur: Option<Builder>,
    /// In a combined file: the common section's variables.
    common: [Option<Box<[u8]>>; 11],
    /// Whether the current sub-dataset is attached to the zone itself.
    attached: bool,
    expires: Option<i64>,
}

impl FileParse {
    fn new(kind: DatasetType, now: i64) -> Self {
        FileParse {
            kind,
            now,
            out: Vec::new(),
            cur: match kind {
                DatasetType::Combined => None,
                k => Some(Builder::new(k, Default::default())),
            },
            common: Default::default(),
            attached: kind != DatasetType::Combined,
            expires: None,
        }
    }

    /// A `$` line of line number `n`: a variable, `$MAXRANGE4`,
    /// `$TIMESTAMP`, a combined file's `$DATASET`; `$SOA`, `$NS`, `$TTL` are
    /// DNS matters, not data.
    fn special(&mut self, n: u64, sp: &[u8], problems: &mut Problems) -> Result<(), String> {
        let word_end = sp
            .iter()
            .position(|&c| c == b' ' || c == b'\t')
            .unwrap_or(sp.len());
        let word = String::from_utf8_lossy(&sp[..word_end]).to_ascii_lowercase();
        let rest = trim(&sp[word_end..]);
        // `$n text` and `$= text`: substitution variables (first assignment wins).
        if sp.len() >= 2
            && (sp[0].is_ascii_digit() || sp[0] == b'=')
            && (sp[1] == b' ' || sp[1] == b'\t')
        {
            self.variable(n, sp, problems);
            return Ok(());
        }
        match word.as_str() {
            "soa" | "ns" | "nameserver" | "ttl" => {}
            "maxrange4" => self.maxrange4(n, rest, problems),
            "timestamp" => self.timestamp(n, rest, problems)?,
            "dataset" if self.kind == DatasetType::Combined => self.dataset(n, rest, problems)?,
            _ => problems.invalid(n, "invalid or unrecognized special entry"),
        }
        Ok(())
    }

    /// `$n text` / `$= text`, into the dataset being built or the common section.
    fn variable(&mut self, n: u64, sp: &[u8], problems: &mut Problems) {
        let i = if sp[0] == b'=' {
            10
        } else {
            usize::from(sp[0] - b'0')
        };
        let val = trim(&sp[2..]);
        if val.is_empty() {
            problems.invalid(n, "invalid or unrecognized special entry");
            return;
        }
        let slot = match &mut self.cur {
            Some(b) => &mut b.subst[i],
            None => &mut self.common[i],
        };
        if slot.is_none() {
            *slot = Some(val.into());
        }
    }

    /// `$MAXRANGE4 /bits` or `$MAXRANGE4 count`: the smallest one holds.
    fn maxrange4(&mut self, n: u64, rest: &[u8], problems: &mut Problems) {
        let s = String::from_utf8_lossy(rest);
        let r = match s.strip_prefix('/') {
            Some(bits) => bits
                .parse::<u32>()
                .ok()
                .filter(|b| (1..=32).contains(b))
                .map(|b| (!mask32(b as u8)).wrapping_add(1)),
            None => s.parse::<u32>().ok().filter(|&r| r > 0),
        };
        match (r, &mut self.cur) {
            (Some(r), Some(b)) => {
                if b.maxrange == 0 || r < b.maxrange {
                    b.maxrange = r;
                }
            }
            (Some(_), None) => {}
            (None, _) => problems.invalid(n, "invalid $MAXRANGE4"),
        }
    }

    /// `$TIMESTAMP stamp [expires]`: a stamp in the future refuses the file.
    fn timestamp(&mut self, n: u64, rest: &[u8], problems: &mut Problems) -> Result<(), String> {
        match parse_timestamp_line(&String::from_utf8_lossy(rest)) {
            Some((stamp, exp)) => {
                if stamp > self.now {
                    return Err(format!(
                        "line {n}: data timestamp is {} s in the future: the file is refused (as rbldnsd does)",
                        stamp - self.now
                    ));
                }
                if let Some(e) = exp {
                    self.expires = Some(self.expires.map_or(e, |x: i64| x.min(e)));
                }
            }
            None => problems.invalid(n, "invalid $TIMESTAMP"),
        }
        Ok(())
    }

    /// A combined file's `$DATASET type[:flags] subzone...`: the next
    /// sub-dataset, used only when it is attached to the zone itself (`@`).
    fn dataset(&mut self, n: u64, rest: &[u8], problems: &mut Problems) -> Result<(), String> {
        if let Some(b) = self.cur.take() {
            if self.attached {
                self.out.push(b.finish(problems));
            }
        }
        let text = String::from_utf8_lossy(rest);
        let text = strip_dataset_comment(&text);
        let mut words = text.split_ascii_whitespace();
        let Some(tn) = words.next() else {
            return Err(format!("line {n}: $DATASET without a type"));
        };
        let tname = tn.split(':').next().unwrap_or(tn);
        let sub = match DatasetType::parse(tname) {
            Some(DatasetType::Combined) | None => {
                return Err(format!(
                    "line {n}: dataset type {tname:?} cannot be used inside combined (rblwatch reads ip4set, ip4tset, ip4trie, ip6trie, ip6tset, dnset)"
                ))
            }
            Some(t) => t,
        };
        let subzones: Vec<&str> = words.collect();
        self.attached = subzones.contains(&"@");
        if !self.attached {
            problems.notes.push(format!(
                "line {n}: $DATASET {tname} serves subzone(s) {} only, not the list's zone: not used",
                subzones.join(" ")
            ));
        }
        self.cur = Some(Builder::new(sub, self.common.clone()));
        Ok(())
    }

    /// The datasets, the last one closed, each with the file's expiry.
    fn finish(mut self, problems: &mut Problems) -> Vec<Dataset> {
        if let Some(b) = self.cur.take() {
            if self.attached {
                self.out.push(b.finish(problems));
            }
        }
        for d in &mut self.out {
            d.expires = self.expires;
        }
        self.out
    }
}

fn strip_dataset_comment(s: &str) -> String {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if (c == b'#' || c == b';') && (i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return s[..i].to_string();
        }
    }
    s.to_string()
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\n', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\n'] = s {
        s = rest;
    }
    s
}

fn skip_space(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

/// `$TIMESTAMP dstamp [expires]`: (stamp, expiry), Unix seconds.
fn parse_timestamp_line(s: &str) -> Option<(i64, Option<i64>)> {
    let mut w = s.split_ascii_whitespace();
    let stamp = parse_stamp(w.next()?)?;
    let exp = match w.next() {
        None => None,
        Some(rel) if rel.starts_with('+') => {
            let d = crate::time::parse_duration(&rel[1..]).ok()?;
            Some(stamp + d.as_secs() as i64)
        }
        Some(e) => Some(parse_stamp(e)?).filter(|&x| x != 0),
    };
    Some((stamp, exp))
}

fn parse_stamp(s: &str) -> Option<i64> {
    if s == "0" || s == "-" || s == ":" {
        return Some(0);
    }
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() < 8 {
        return None;
    }
    let num = |a: usize, b: usize| digits.get(a..b).and_then(|x| x.parse::<i64>().ok());
    let (y, m, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let hh = num(8, 10).unwrap_or(0);
    let mi = num(10, 12).unwrap_or(0);
    let ss = num(12, 14).unwrap_or(0);
    let date = chrono::NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32)?;
    let t = date.and_hms_opt(hh as u32, mi as u32, ss as u32)?;
    Some(t.and_utc().timestamp())
}

/// rbldnsd's `ip4prefix()`: (address, bits 8/16/24/32, rest).
fn ip4prefix(s: &[u8]) -> Option<(u32, u8, &[u8])> {
    let mut a = 0u32;
    let mut s = s;
    for (i, shift) in [24u32, 16, 8, 0].into_iter().enumerate() {
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let mut o = 0u32;
        for &c in &s[..digits] {
            o = o * 10 + u32::from(c - b'0');
            if o > 255 {
                return None;
            }
        }
        a |= o << shift;
        s = &s[digits..];
        if i == 3 || s.first() != Some(&b'.') {
            return Some((a, 8 * (i as u8 + 1), s));
        }
        s = &s[1..];
    }
    None
}

fn ip4mbits(s: &[u8]) -> Option<(u8, &[u8])> {
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut bits = 0u32;
    for &c in &s[..digits] {
        bits = bits * 10 + u32::from(c - b'0');
        if bits > 32 {
            return None;
        }
    }
    Some((bits as u8, &s[digits..]))
}

/// rbldnsd's `ip4range()`: (start, end, bits; 32 for a dash range, rest).
fn ip4range(s: &[u8]) -> Option<(u32, u32, u8, &[u8])> {
    let (a, bits, s) = ip4prefix(s)?;
    if s.first() == Some(&b'-') {
        let (mut b, mut bbits, s) = ip4prefix(&s[1..])?;
        if bbits == 8 {
            b = (b >> (bits - 8)) | (a & mask32(bits - 8));
            bbits = bits;
        } else if bbits != bits {
            return None;
        }
        if bbits != 32 {
            b |= !mask32(bbits);
        }
        if a > b {
            return None;
        }
        return Some((a, b, 32, s));
    }
    let (bits, s) = if s.first() == Some(&b'/') {
        ip4mbits(&s[1..])?
    } else if bits == 8 {
        return None;
    } else {
        (bits, s)
    };
    Some((a, a | !mask32(bits), bits, s))
}

/// rbldnsd's `ip4cidr()`.
fn ip4cidr(s: &[u8]) -> Option<(u32, u8, &[u8])> {
    let (a, bits, s) = ip4prefix(s)?;
    if s.first() == Some(&b'/') {
        let (bits, s) = ip4mbits(&s[1..])?;
        Some((a, bits, s))
    } else if bits == 8 {
        None
    } else {
        Some((a, bits, s))
    }
}

/// rbldnsd's `ip6prefix()`: (address, bits, rest).
fn ip6prefix(s: &[u8]) -> Option<(u128, u8, &[u8])> {
    let mut ap = [0u8; 16];
    let mut bytes = 0usize;
    let mut zstart: Option<usize> = None;
    let mut s = s;
    let mut ret: Option<u8> = None;
    if s.starts_with(b"::") {
        zstart = Some(0);
        s = &s[2..];
    }
    loop {
        let mut v = 0u32;
        let mut used = 0;
        let mut over = false;
        while let Some(&c) = s.get(used) {
            let Some(nib) = (c as char).to_digit(16) else {
                break;
            };
            v = (v << 4) + nib;
            if v > 0xffff {
                over = true;
                break;
            }
            used += 1;
        }
        if used == 0 || over {
            s = &s[used..];
            break;
        }
        s = &s[used..];
        ap[bytes] = (v >> 8) as u8;
        ap[bytes + 1] = v as u8;
        bytes += 2;
        if s.first() != Some(&b':') || bytes + 2 > 16 {
            ret = Some((bytes * 8) as u8);
            break;
        }
        s = &s[1..];
        if zstart.is_none() && s.first() == Some(&b':') {
            zstart = Some(bytes);
            s = &s[1..];
        }
    }
    if let Some(z) = zstart {
        let nzeros = 16 - bytes;
        if nzeros == 0 {
            ret = None;
        } else {
            ap.copy_within(z..bytes, z + nzeros);
            ap[z..z + nzeros].fill(0);
            ret = Some(128);
        }
    }
    ret.map(|r| (u128::from_be_bytes(ap), r, s))
}

/// rbldnsd's `ip6cidr()`.
fn ip6cidr(s: &[u8]) -> Option<(u128, u8, &[u8])> {
    let (a, bits, s) = ip6prefix(s)?;
    if s.first() == Some(&b'/') {
        let digits = s[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let mut b = 0u32;
        for &c in &s[1..1 + digits] {
            b = b * 10 + u32::from(c - b'0');
            if b > 128 {
                return None;
            }
        }
        Some((a, b as u8, &s[1 + digits..]))
    } else if bits == 16 {
        None
    } else {
        Some((a, bits, s))
    }
}

/// The end of an address must be the end, a space, a comment or a value.
fn ends_entry(s: &[u8]) -> bool {
    matches!(s.first(), None | Some(b' ' | b'\t' | b'#' | b';' | b':'))
}

/// rbldnsd's `parse_a_txt()`: a value, given the current default.
fn parse_a_txt(s: &[u8], def: &Value) -> Result<Value, &'static str> {
    let (a, txt): (Ipv4Addr, &[u8]) = if s.first() == Some(&b':') {
        let (mut a, bits, rest) = ip4prefix(&s[1..]).ok_or("invalid A RR")?;
        // inet_aton's shorthands: "2" = 0.0.0.2, "127.2" = 127.0.0.2
        match bits {
            8 => a >>= 24,
            16 => a = (a & 0xff00_0000) | ((a >> 16) & 255),
            24 => a = (a & 0xffff_0000) | ((a >> 8) & 255),
            _ => {}
        }
        if a == 0 {
            return Err("invalid A RR");
        }
        if bits == 8 {
            a |= 0x7f00_0000;
        }
        let rest = skip_space(rest);
        match rest.first() {
            Some(b':') => (Ipv4Addr::from(a), skip_space(&rest[1..])),
            Some(_) => return Err("unrecognized value for an entry"),
            None => {
                return Ok(Value {
                    a: Ipv4Addr::from(a),
                    txt: def.txt.clone(),
                })
            }
        }
    } else {
        (def.a, s)
    };
    Ok(Value {
        a,
        txt: txt[..txt.len().min(255)].into(),
    })
}

/// Builds one dataset line by line.
struct Builder {
    kind: DatasetType,
    def: Value,
    /// The tsets' one value: set by the first default line only.
    tset_value: Option<Value>,
    values: Vec<Value>,
    ids: HashMap<Value, u32>,
    subst: [Option<Box<[u8]>>; 11],
    maxrange: u32,
    ip4set: [Vec<(u32, u32)>; 4],
    v4: Vec<(u8, u32, u32)>,
    v6: Vec<(u8, u128, u32)>,
    addrs: Vec<u32>,
    nets: Vec<u64>,
    excl6: Vec<u128>,
    names: Vec<(bool, Box<str>, u32)>,
}

impl Builder {
    fn new(kind: DatasetType, subst: [Option<Box<[u8]>>; 11]) -> Self {
        let placeholder = Value {
            a: Ipv4Addr::UNSPECIFIED,
            txt: Box::new([]),
        };
        Builder {
            kind,
            def: Value {
                a: Ipv4Addr::new(127, 0, 0, 2),
                txt: Box::new([]),
            },
            tset_value: None,
            values: vec![placeholder],
            ids: HashMap::new(),
            subst,
            maxrange: 0,
            ip4set: Default::default(),
            v4: Vec::new(),
            v6: Vec::new(),
            addrs: Vec::new(),
            nets: Vec::new(),
            excl6: Vec::new(),
            names: Vec::new(),
        }
    }

    fn intern(&mut self, v: Value) -> u32 {
        if let Some(&id) = self.ids.get(&v) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.clone());
        self.ids.insert(v, id);
        id
    }

    /// The value id of an entry's rest (after its address).
    fn value_of(&mut self, rest: &[u8]) -> Result<u32, &'static str> {
        let rest = skip_space(rest);
        let v = if rest.is_empty() || rest[0] == b'#' || rest[0] == b';' {
            self.def.clone()
        } else {
            parse_a_txt(rest, &self.def)?
        };
        Ok(self.intern(v))
    }

    /// One entry line: a default value (`:A:TXT`), or an entry (or `!`
    /// exclusion) in the dataset's own syntax.
    fn line(&mut self, line: &[u8]) -> Result<(), &'static str> {
        let is_default =
            line[0] == b':' && !(self.kind == DatasetType::Ip6Trie && line.get(1) == Some(&b':'));
        if is_default {
            return self.default_value(line);
        }
        let (not, s) = match line.first() {
            Some(b'!') => (true, skip_space(&line[1..])),
            _ => (false, line),
        };
        match self.kind {
            DatasetType::Ip4Set => self.ip4set_entry(s, not),
            DatasetType::Ip4Trie => self.ip4trie_entry(s, not),
            DatasetType::Ip4Tset => {
                let (a, bits, rest) = ip4prefix(s).ok_or("invalid address")?;
                if bits != 32 || !ends_entry(rest) || not {
                    return Err("invalid address");
                }
                self.addrs.push(a);
                Ok(())
            }
            DatasetType::Ip6Trie => {
                let (a, bits, rest) = ip6cidr(s).ok_or("invalid address")?;
                if !ends_entry(rest) {
                    return Err("invalid address");
                }
                if a & !mask128(bits) != 0 {
                    return Err("invalid range (non-zero host part)");
                }
                let id = if not { EXCL } else { self.value_of(rest)? };
                self.v6.push((bits, a, id));
                Ok(())
            }
            DatasetType::Ip6Tset => self.ip6tset_entry(s, not),
            DatasetType::Dnset => self.dnset_entry(s, not),
            DatasetType::Combined => Err("invalid entry"),
        }
    }

    /// `:A:TXT`: the value of the entries that follow (a tset's first one only).
    fn default_value(&mut self, line: &[u8]) -> Result<(), &'static str> {
        let v = parse_a_txt(
            line,
            &Value {
                a: Ipv4Addr::new(127, 0, 0, 2),
                txt: Box::new([]),
            },
        )?;
        match self.kind {
            DatasetType::Ip4Tset | DatasetType::Ip6Tset => {
                if self.tset_value.is_none() {
                    self.tset_value = Some(v);
                }
            }
            _ => self.def = v,
        }
        Ok(())
    }

    /// An ip4set entry: an address, a CIDR, a dash range or an abbreviated net.
    fn ip4set_entry(&mut self, s: &[u8], not: bool) -> Result<(), &'static str> {
        let (a, b, bits, rest) = ip4range(s).ok_or("invalid address")?;
        if bits == 0 || !ends_entry(rest) {
            return Err("invalid address");
        }
        if a & !mask32(bits) != 0 {
            return Err("invalid range (non-zero host part)");
        }
        if self.maxrange != 0 && self.maxrange <= b.wrapping_sub(a) {
            return Err("too large range ignored ($MAXRANGE4)");
        }
        let id = if not { EXCL } else { self.value_of(rest)? };
        let sets = &mut self.ip4set;
        expand_ip4(a, b, &mut |level, start, count| {
            let step = 1u32 << (level * 8);
            let mut x = start;
            for _ in 0..count {
                sets[level].push((x, id));
                x = x.wrapping_add(step);
            }
        });
        Ok(())
    }

    /// An ip4trie entry: a CIDR.
    fn ip4trie_entry(&mut self, s: &[u8], not: bool) -> Result<(), &'static str> {
        let (a, bits, rest) = ip4cidr(s).ok_or("invalid address")?;
        if !ends_entry(rest) {
            return Err("invalid address");
        }
        if a & !mask32(bits) != 0 {
            return Err("invalid range (non-zero host part)");
        }
        if self.maxrange != 0 && self.maxrange <= !mask32(bits) {
            return Err("too large range ignored ($MAXRANGE4)");
        }
        let id = if not { EXCL } else { self.value_of(rest)? };
        self.v4.push((bits, a, id));
        Ok(())
    }

    /// An ip6tset entry: a /64, or a /128 exclusion.
    fn ip6tset_entry(&mut self, s: &[u8], not: bool) -> Result<(), &'static str> {
        let (a, bits, rest) = ip6prefix(s).ok_or("invalid address")?;
        if !ends_entry(rest) {
            return Err("invalid address");
        }
        match (not, bits) {
            (true, 128) => self.excl6.push(a),
            (false, 64) => self.nets.push((a >> 64) as u64),
            (true, _) => return Err("invalid address for exclusion (should be 128 bits)"),
            (false, _) => return Err("invalid address for regular entry (should be 64 bits)"),
        }
        Ok(())
    }

    /// A dnset entry: a name, `*.name` (below it) or `.name` (both).
    fn dnset_entry(&mut self, s: &[u8], not: bool) -> Result<(), &'static str> {
        let (wild, plain, s) = if s.first() == Some(&b'.') {
            (true, true, &s[1..])
        } else if s.starts_with(b"*.") {
            (true, false, &s[2..])
        } else {
            (false, true, s)
        };
        let end = s
            .iter()
            .position(|&c| c == b' ' || c == b'\t')
            .unwrap_or(s.len());
        let name = String::from_utf8_lossy(&s[..end]).to_ascii_lowercase();
        let name = name.trim_end_matches('.');
        if name.is_empty() || name.contains("..") || name.len() > 253 {
            return Err("invalid domain name");
        }
        let id = if not { EXCL } else { self.value_of(&s[end..])? };
        let name: Box<str> = name.into();
        if plain {
            self.names.push((false, name.clone(), id));
        }
        if wild {
            self.names.push((true, name, id));
        }
        Ok(())
    }

    fn finish(self, problems: &mut Problems) -> Dataset {
        let mut entries = 0u64;
        let index = match self.kind {
            DatasetType::Ip4Set => {
                let mut sets = self.ip4set;
                for level in &mut sets {
                    level.sort_unstable();
                    level.dedup();
                    // an address both listed and excluded at one level: the exclusion
                    // wins (it sorts first); one compacting pass drops the values after it
                    let mut kept = 0;
                    let mut excluded: Option<u32> = None;
                    for i in 0..level.len() {
                        let (a, id) = level[i];
                        if excluded == Some(a) {
                            problems.contradictions += 1;
                            continue;
                        }
                        excluded = (id == EXCL).then_some(a);
                        level[kept] = (a, id);
                        kept += 1;
                    }
                    level.truncate(kept);
                    level.shrink_to_fit();
                    entries += level.len() as u64;
                }
                Index::Ip4Set(sets)
            }
            DatasetType::Ip4Tset => {
                let mut a = self.addrs;
                a.sort_unstable();
                a.dedup();
                a.shrink_to_fit();
                entries = a.len() as u64;
                Index::Ip4Tset(a)
            }
            DatasetType::Ip4Trie => {
                let (lens, n) = by_length(self.v4, problems);
                entries = n;
                Index::Ip4Trie(lens)
            }
            DatasetType::Ip6Trie => {
                let (lens, n) = by_length(self.v6, problems);
                entries = n;
                Index::Ip6Trie(lens)
            }
            DatasetType::Ip6Tset => {
                let mut n = self.nets;
                n.sort_unstable();
                n.dedup();
                n.shrink_to_fit();
                let mut x = self.excl6;
                x.sort_unstable();
                x.dedup();
                entries = (n.len() + x.len()) as u64;
                Index::Ip6Tset(n, x)
            }
            DatasetType::Dnset => {
                let mut exact: HashMap<Box<str>, Vec<u32>> = HashMap::new();
                let mut wild: HashMap<Box<str>, Vec<u32>> = HashMap::new();
                for (w, name, id) in self.names {
                    let m = if w { &mut wild } else { &mut exact };
                    m.entry(name).or_default().push(id);
                }
                for m in [&mut exact, &mut wild] {
                    for ids in m.values_mut() {
                        ids.sort_unstable();
                        ids.dedup();
                        if ids.len() > 1 && ids[0] == EXCL {
                            problems.contradictions += 1;
                            ids.truncate(1);
                        }
                    }
                }
                entries = (exact.len() + wild.len()) as u64;
                Index::Dnset { exact, wild }
            }
            DatasetType::Combined => Index::Empty,
        };
        let mut values = self.values;
        if matches!(self.kind, DatasetType::Ip4Tset | DatasetType::Ip6Tset) {
            // the one value, id 1 (rbldnsd's built-in 127.0.0.2 without TXT when none given)
            values.truncate(1);
            values.push(self.tset_value.unwrap_or(Value {
                a: Ipv4Addr::new(127, 0, 0, 2),
                txt: Box::new([]),
            }));
        }
        values.shrink_to_fit();
        Dataset {
            kind: self.kind,
            index,
            values,
            subst: self.subst,
            expires: None,
            entries,
        }
    }
}

/// Prefixes of one length: (network, value id), sorted.
type ByLength<K> = Vec<(u8, Vec<(K, u32)>)>;

/// Groups prefixes by length (longest first), sorted, the first of duplicates kept.
fn by_length<K: Copy + Ord>(
    mut v: Vec<(u8, K, u32)>,
    problems: &mut Problems,
) -> (ByLength<K>, u64) {
    // stable: equal prefixes keep file order, so the first line wins (btrie's rule)
    v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<(u8, Vec<(K, u32)>)> = Vec::new();
    let mut n = 0u64;
    for (len, k, id) in v {
        if out.last().is_none_or(|l| l.0 != len) {
            out.push((len, Vec::new()));
        }
        let Some(last) = out.last_mut() else { continue };
        if let Some(prev) = last.1.last() {
            if prev.0 == k {
                problems.duplicates += 1;
                if (prev.1 == EXCL) != (id == EXCL) {
                    problems.contradictions += 1;
                }
                continue;
            }
        }
        last.1.push((k, id));
        n += 1;
    }
    for l in &mut out {
        l.1.shrink_to_fit();
    }
    (out, n)
}

/// rbldnsd's `ip4range_expand`: `[a, b]` as octet-aligned runs
/// `(level, first, count)`, level 0 = /32 … 3 = /8 (wrapping as in C).
fn expand_ip4(mut a: u32, mut b: u32, f: &mut dyn FnMut(usize, u32, u32)) {
    for bits in [0u32, 8, 16] {
        let level = (bits >> 3) as usize;
        if (a | 255) >= b {
            if b.wrapping_sub(a) == 255 {
                f(level + 1, a << bits, 1);
            } else {
                f(level, a << bits, b.wrapping_sub(a).wrapping_add(1));
            }
            return;
        }
        if a & 255 != 0 {
            f(level, a << bits, 256 - (a & 255));
            a = (a >> 8) + 1;
        } else {
            a >>= 8;
        }
        if b & 255 != 255 {
            f(level, (b & !255) << bits, (b & 255) + 1);
            b = (b >> 8).wrapping_sub(1);
        } else {
            b >>= 8;
        }
    }
    f(3, a << 24, b.wrapping_sub(a).wrapping_add(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(kind: DatasetType, text: &str) -> (Vec<Dataset>, Problems) {
        let mut p = Problems::default();
        let mut lines = text.lines().map(|l| l.as_bytes().to_vec());
        (parse(kind, &mut lines, 2_000_000_000, &mut p).unwrap(), p)
    }

    fn ask(d: &Dataset, key: Key<'_>) -> Vec<(String, Option<String>)> {
        let (hits, s) = d.lookup(key, true);
        hits.iter()
            .map(|h| (h.a().to_string(), h.txt(&s)))
            .collect()
    }

    fn v4(s: &str) -> Key<'static> {
        Key::V4(u32::from(s.parse::<Ipv4Addr>().unwrap()))
    }

    #[test]
    fn ip4set_levels_exclusions_and_values() {
        let (d, p) = load(
            DatasetType::Ip4Set,
            ":127.0.0.2:Listed $\n127.0.0.2\n10.20.0.0/16 :4:Bad net $\n!10.20.30.40\n203.0.113.10-203.0.113.20\n127.16-31 :3:\n1.2.3.4 :5:one\n1.2.3.4 :6:two\n",
        );
        let d = &d[0];
        assert_eq!(p.invalid, 0, "{p:?}");
        assert_eq!(
            ask(d, v4("127.0.0.2")),
            vec![("127.0.0.2".into(), Some("Listed 127.0.0.2".into()))]
        );
        assert_eq!(
            ask(d, v4("10.20.1.1")),
            vec![("127.0.0.4".into(), Some("Bad net 10.20.1.1".into()))]
        );
        assert!(ask(d, v4("10.20.30.40")).is_empty());
        assert_eq!(ask(d, v4("10.20.30.41")).len(), 1);
        assert_eq!(ask(d, v4("203.0.113.15")).len(), 1);
        assert!(ask(d, v4("203.0.113.21")).is_empty());
        assert_eq!(ask(d, v4("127.20.1.1")), vec![("127.0.0.3".into(), None)]);
        assert_eq!(ask(d, v4("1.2.3.4")).len(), 2);
    }

    #[test]
    fn tries_take_the_longest_prefix_and_the_first_duplicate() {
        let (d, p) = load(
            DatasetType::Ip6Trie,
            ":127.0.1.2:v6 $\n2001:db8::/32\n2001:db8:dead::/48 :4:dead $\n!2001:db8:dead::1\n2001:db8:dead::/48 :5:dup\n2001:21ab:c000/36\n",
        );
        let d = &d[0];
        assert_eq!(p.duplicates, 1);
        let q = |s: &str| Key::V6(u128::from(s.parse::<std::net::Ipv6Addr>().unwrap()));
        assert_eq!(
            ask(d, q("2001:db8:dead::2")),
            vec![("127.0.0.4".into(), Some("dead 2001:db8:dead::2".into()))]
        );
        assert!(ask(d, q("2001:db8:dead::1")).is_empty());
        assert_eq!(ask(d, q("2001:db8:1::1"))[0].0, "127.0.1.2");
        assert_eq!(ask(d, q("2001:21ab:cfff::1")).len(), 1);
        assert!(ask(d, q("2001:21ab:d000::1")).is_empty());
    }

    #[test]
    fn dnset_exact_wildcards_and_exclusions() {
        let (d, _) = load(
            DatasetType::Dnset,
            ":127.0.1.2:Domain $ listed\ntest\nspammer.example\n.evil.example :127.0.1.4:Phish $\n*.wild.example :10:\n!good.evil.example\n",
        );
        let d = &d[0];
        assert_eq!(
            ask(d, Key::Name("test"))[0].1.as_deref(),
            Some("Domain test listed")
        );
        assert!(ask(d, Key::Name("www.spammer.example")).is_empty());
        assert_eq!(
            ask(d, Key::Name("a.b.evil.example"))[0].1.as_deref(),
            Some("Phish evil.example")
        );
        assert!(ask(d, Key::Name("good.evil.example")).is_empty());
        assert!(ask(d, Key::Name("wild.example")).is_empty());
        assert_eq!(ask(d, Key::Name("x.wild.example"))[0].0, "127.0.0.10");
    }

    #[test]
    fn txt_substitution_follows_txtsubst() {
        let mut sn: [Option<Box<[u8]>>; 11] = Default::default();
        sn[1] = Some(b"See http://x/bl".to_vec().into());
        assert_eq!(
            txtsubst(b"$1/$ ok $$ $9", b"1.2.3.4", &sn),
            b"See http://x/bl/1.2.3.4 ok $ $9".to_vec()
        );
        sn[10] = Some(b"Base $= ($)".to_vec().into());
        assert_eq!(
            txtsubst(b"r123", b"1.2.3.4", &sn),
            b"Base r123 (1.2.3.4)".to_vec()
        );
        assert_eq!(
            txtsubst(b"", b"1.2.3.4", &sn),
            b"Base 1.2.3.4 (1.2.3.4)".to_vec()
        );
        assert_eq!(
            txtsubst(b"=own $", b"1.2.3.4", &sn),
            b"own 1.2.3.4".to_vec()
        );
        let long = vec![b'x'; 300];
        assert_eq!(txtsubst(&long, b"", &Default::default()).len(), 254);
    }

    #[test]
    fn ip6atos_matches_rbldnsd() {
        let f = |s: &str| ip6atos(u128::from(s.parse::<std::net::Ipv6Addr>().unwrap()));
        assert_eq!(f("::1"), "::1");
        assert_eq!(f("1::"), "1::");
        assert_eq!(f("1:0:0:4::8"), "1:0:0:4::8");
        assert_eq!(f("::ffff:127.0.0.2"), "::ffff:7f00:2");
        assert_eq!(f("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2:3:4:5:6");
    }

    #[test]
    fn combined_uses_the_datasets_of_the_zone_itself() {
        let (d, p) = load(
            DatasetType::Combined,
            "$SOA 60 ns.x hm.x 0 600 60 3600 10\n$DATASET ip4set:proxy proxies @\n:2:Open proxy $\n127.0.0.2\n$DATASET ip4set:relay relays\n127.0.0.3\n$DATASET dnset @\nexample.com\n",
        );
        assert_eq!(d.len(), 2);
        assert_eq!(p.notes.len(), 1);
        assert_eq!(ask(&d[0], v4("127.0.0.2")).len(), 1);
        assert!(ask(&d[0], v4("127.0.0.3")).is_empty());
    }
}
