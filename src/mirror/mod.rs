//! Lists answered from local mirrors of their data (rbldnsd format), not DNS.
//!
//! A hoster's address space does not fit any list's query budget: large users
//! take the list's zone files (rsync or download) and look up locally. A
//! [`Mirror`] reads such files ([`format`]) into compact indexes and answers
//! a target the way rbldnsd serving the same files would (the engine turns the
//! answer into the same [`crate::verdict::Verdict`] as a DNS answer).
//!
//! Loading is all-or-nothing: a new version replaces the old one only once
//! every file of it has been read completely and consistently. A file that is
//! still being written (changed in the last seconds, or while it was read), cut
//! short (no final newline), mostly garbage, over the size cap, or gone keeps
//! the previous data in use, with the error on the list's health; once the data
//! is older than `max_age` the list reads `stale` and its pairs unchecked.

pub mod format;

use std::io::{BufRead, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use serde::Serialize;

use crate::target::Target;
use format::{Dataset, DatasetType, Key, Problems};

/// Mirror settings (from `[lists.override.<id>]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConf {
    /// A data file, or a directory of them.
    pub path: PathBuf,
    /// Data older than this reads `stale`. Defaults to a day.
    pub max_age: Duration,
    /// The type of files whose name does not end in `.<type>` (e.g. `.ip4set`).
    pub format: Option<DatasetType>,
    /// Files larger than this are refused (a sparse or runaway file). Defaults to 4 GiB.
    pub max_size: u64,
    /// A file modified this recently is taken as still being written. Defaults to 2 s.
    pub settle: Duration,
}

impl MirrorConf {
    /// Defaults for `path`.
    pub fn new(path: PathBuf) -> Self {
        MirrorConf {
            path,
            max_age: Duration::from_secs(86_400),
            format: None,
            max_size: 4 << 30,
            settle: Duration::from_secs(2),
        }
    }
}

/// Invalid lines tolerated (rbldnsd skips them) before a file counts as corrupt:
/// more than this many and more than 1 % of its lines.
const MAX_INVALID: u64 = 100;
/// Longest line read; longer ones are skipped (rbldnsd truncates them).
const MAX_LINE: usize = 8192;

/// The identity of a file version: name, size, mtime.
type Stamp = Vec<(PathBuf, u64, SystemTime)>;

/// One complete version of the data.
#[derive(Debug)]
struct Loaded {
    datasets: Vec<Dataset>,
    /// Any dataset reached by IPv4-reversed names (rbldnsd's zone flag).
    has_ip4: bool,
    stamp: Stamp,
    /// The newest file's mtime: how fresh the data is.
    data_time: SystemTime,
    entries: u64,
    warnings: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    loaded: Option<Arc<Loaded>>,
    /// Why the last look at the files did not give new data (cleared by a good load).
    error: Option<String>,
    /// A version much smaller than the one in use, seen once: loaded only
    /// if the next check finds it unchanged (a truncation, or a stat racing one).
    shrunk: Option<(Stamp, std::time::Instant)>,
}

/// What a mirror says about one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorAnswer {
    /// Listed: every A and TXT record rbldnsd would return (duplicates removed).
    Listed {
        /// A records.
        a: Vec<std::net::Ipv4Addr>,
        /// TXT records, `$` substituted.
        txt: Vec<String>,
    },
    /// Not listed (NXDOMAIN).
    NotListed,
    /// No usable data: never loaded, stale or expired.
    Unavailable(String),
}

/// A mirror's state, for health, the CLI and the web.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorStatus {
    /// The configured path.
    pub path: String,
    /// Whether data is loaded.
    pub loaded: bool,
    /// Age of the data in use (newest file mtime), seconds.
    pub age_s: Option<u64>,
    /// Entries indexed.
    pub entries: u64,
    /// Whether the data is older than `max_age` (or none is loaded).
    pub stale: bool,
    /// Why the last look at the files did not give new data.
    pub error: Option<String>,
    /// Warnings about the data in use (skipped lines, duplicates, contradictions).
    pub warnings: Vec<String>,
}

/// A list's mirror: the data in use, swapped whole when a new version loads.
#[derive(Debug)]
pub struct Mirror {
    conf: MirrorConf,
    state: RwLock<State>,
}

/// Why one look at the files gave no new data.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path is gone or unreadable.
    #[error("{0}")]
    Missing(String),
    /// A file is being written; tried again at the next check.
    #[error("{0}")]
    Busy(String),
    /// A file is refused (too large, truncated, corrupt).
    #[error("{0}")]
    Refused(String),
    /// The new version is much smaller than the one in use: confirmed at the next check.
    #[error("{1}")]
    Shrunk(Stamp, String),
}

impl Mirror {
    /// A mirror with nothing loaded yet.
    pub fn new(conf: MirrorConf) -> Self {
        Mirror {
            conf,
            state: RwLock::new(State::default()),
        }
    }

    /// The settings.
    pub fn conf(&self) -> &MirrorConf {
        &self.conf
    }

    fn loaded(&self) -> Option<Arc<Loaded>> {
        self.state.read().ok().and_then(|s| s.loaded.clone())
    }

    /// Looks at the files and loads a new version when they changed
    /// (blocking: run it off async workers). Returns the status after.
    pub fn refresh(&self) -> MirrorStatus {
        let current = self.loaded();
        // a shrink is confirmed by the same stamp at least `settle` (and 1 s) later
        let wait = self.conf.settle.max(Duration::from_secs(1));
        let shrunk = self
            .state
            .read()
            .ok()
            .and_then(|s| s.shrunk.clone())
            .filter(|(_, seen)| seen.elapsed() >= wait)
            .map(|(s, _)| s);
        let result = load(
            &self.conf,
            current.as_deref().map(|l| &l.stamp),
            shrunk.as_ref(),
        );
        if let Ok(mut st) = self.state.write() {
            match result {
                Ok(Some(new)) => {
                    st.loaded = Some(Arc::new(new));
                    st.error = None;
                    st.shrunk = None;
                }
                Err(LoadError::Shrunk(stamp, why)) => {
                    tracing::warn!(mirror = %self.conf.path.display(), why = %why, "mirror shrank; the data in use stays until it is confirmed");
                    if st.shrunk.as_ref().is_none_or(|(s, _)| *s != stamp) {
                        st.shrunk = Some((stamp, std::time::Instant::now()));
                    }
                    st.error = Some(why);
                }
                Ok(None) => st.error = None,
                Err(e) => {
                    tracing::warn!(mirror = %self.conf.path.display(), error = %e, "mirror not (re)loaded; the data in use stays");
                    st.error = Some(e.to_string());
                }
            }
        }
        self.status()
    }

    /// The state now.
    pub fn status(&self) -> MirrorStatus {
        let (loaded, error) = match self.state.read() {
            Ok(s) => (s.loaded.clone(), s.error.clone()),
            Err(_) => (None, Some("mirror state poisoned".into())),
        };
        let age = loaded.as_ref().map(|l| age_of(l.data_time));
        MirrorStatus {
            path: self.conf.path.display().to_string(),
            loaded: loaded.is_some(),
            age_s: age.map(|a| a.as_secs()),
            entries: loaded.as_ref().map_or(0, |l| l.entries),
            stale: age.is_none_or(|a| a > self.conf.max_age),
            error,
            warnings: loaded.map(|l| l.warnings.clone()).unwrap_or_default(),
        }
    }

    /// Why the mirror cannot answer now (never loaded, older than `max_age`), if so.
    pub fn unavailable(&self) -> Option<String> {
        let st = self.status();
        let err = st
            .error
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        match st.age_s {
            None => Some(format!("mirror {} has no data loaded{err}", st.path)),
            Some(age) if st.stale => Some(format!(
                "mirror {} is stale: its data is {} old, over max_age {}{err}",
                st.path,
                crate::time::fmt_duration(Duration::from_secs(age)),
                crate::time::fmt_duration(self.conf.max_age)
            )),
            _ => None,
        }
    }

    /// The answer for one target, as rbldnsd serving these files would give it.
    pub fn answer(&self, t: &Target) -> MirrorAnswer {
        let Some(l) = self.loaded() else {
            return MirrorAnswer::Unavailable(
                self.unavailable()
                    .unwrap_or_else(|| "no data loaded".into()),
            );
        };
        if age_of(l.data_time) > self.conf.max_age {
            return MirrorAnswer::Unavailable(self.unavailable().unwrap_or_else(|| "stale".into()));
        }
        if let Some(exp) = l.datasets.iter().filter_map(|d| d.expires).min() {
            if crate::time::now() > exp {
                return MirrorAnswer::Unavailable(
                    "the mirror's data has expired ($TIMESTAMP)".into(),
                );
            }
        }
        answer_in(&l, t)
    }

    /// Every listing overlapping `net` (IPv4 up to /8, IPv6 up to /32): the
    /// range cut into maximal pieces with one answer each, the listed ones
    /// returned in address order.
    pub fn intersect(&self, net: &IpNet) -> Result<Vec<Overlap>, String> {
        if let Some(why) = self.unavailable() {
            return Err(why);
        }
        let l = self.loaded().ok_or("no data loaded")?;
        intersect_in(&l, net)
    }
}

/// One listed piece of an intersected range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlap {
    /// First address.
    pub first: IpAddr,
    /// Last address.
    pub last: IpAddr,
    /// The piece as CIDR blocks (at most 8 shown, then `…`).
    pub cidrs: Vec<String>,
    /// The answer's A records.
    pub a: Vec<std::net::Ipv4Addr>,
    /// The answer's TXT records (`$` = the first address).
    pub txt: Vec<String>,
}

impl Overlap {
    /// `first-last`, or the CIDR when it is one block.
    pub fn range(&self) -> String {
        if self.cidrs.len() == 1 {
            self.cidrs[0].clone()
        } else {
            format!("{}-{}", self.first, self.last)
        }
    }
}

fn age_of(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

fn answer_in(l: &Loaded, t: &Target) -> MirrorAnswer {
    let name;
    let mut keys: Vec<(Key<'_>, bool)> = Vec::with_capacity(2);
    match t {
        Target::Ip(IpAddr::V4(v4)) => keys.push((Key::V4(u32::from(*v4)), true)),
        Target::Ip(IpAddr::V6(v6)) => {
            let q = u128::from(*v6);
            // rbldnsd: with an IPv4 dataset in the zone, an IPv4-mapped name is
            // looked up as IPv4 only, a 6to4 one (2002:V4ADDR::/48) as both.
            if l.has_ip4 && q >> 32 == 0xffff {
                keys.push((Key::V4(q as u32), true));
            } else {
                keys.push((Key::V6(q), false));
                if l.has_ip4 && q >> 112 == 0x2002 {
                    keys.push((Key::V4((q >> 80) as u32), true));
                }
            }
        }
        Target::Domain(d) => {
            name = d.trim_end_matches('.').to_ascii_lowercase();
            keys.push((Key::Name(&name), false));
        }
    }
    let mut a = Vec::new();
    let mut txt: Vec<String> = Vec::new();
    for d in &l.datasets {
        for (key, is_v4) in &keys {
            // dnsets see the query's labels, IP datasets only addresses of their family
            let key = match (d.kind, key) {
                (DatasetType::Dnset, _) => *key,
                (_, Key::V4(_)) if !d.is_ip4() => continue,
                (_, Key::V6(_)) if d.is_ip4() => continue,
                _ => *key,
            };
            let _ = is_v4;
            let (hits, s0) = d.lookup(key, l.has_ip4);
            for h in hits {
                if !a.contains(&h.a()) {
                    a.push(h.a());
                }
                if let Some(x) = h.txt(&s0) {
                    if !txt.contains(&x) {
                        txt.push(x);
                    }
                }
            }
        }
    }
    if a.is_empty() {
        MirrorAnswer::NotListed
    } else {
        MirrorAnswer::Listed { a, txt }
    }
}

fn intersect_in(l: &Loaded, net: &IpNet) -> Result<Vec<Overlap>, String> {
    let mut out: Vec<Overlap> = Vec::new();
    let mut push = |first: IpAddr, last: IpAddr, ans: MirrorAnswer| {
        if let MirrorAnswer::Listed { mut a, txt } = ans {
            a.sort();
            if let Some(prev) = out.last_mut() {
                let adjacent = match (prev.last, first) {
                    (IpAddr::V4(p), IpAddr::V4(f)) => {
                        u32::from(p).checked_add(1) == Some(u32::from(f))
                    }
                    (IpAddr::V6(p), IpAddr::V6(f)) => {
                        u128::from(p).checked_add(1) == Some(u128::from(f))
                    }
                    _ => false,
                };
                if adjacent && prev.a == a && same_txt_template(&prev.txt, &txt) {
                    prev.last = last;
                    return;
                }
            }
            out.push(Overlap {
                first,
                last,
                cidrs: vec![],
                a,
                txt,
            });
        }
    };
    match net {
        IpNet::V4(n) => {
            if n.prefix_len() < 8 {
                return Err(format!("{net}: ranges wider than a /8 are not intersected"));
            }
            let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
            let mut edges: Vec<u64> = vec![u64::from(lo), u64::from(hi) + 1];
            for d in l.datasets.iter().filter(|d| d.is_ip4()) {
                d.edges_v4(lo, hi, &mut edges);
            }
            edges.sort_unstable();
            edges.dedup();
            for w in edges.windows(2) {
                let (s, e) = (w[0] as u32, (w[1] - 1) as u32);
                let t = Target::Ip(IpAddr::V4(s.into()));
                push(IpAddr::V4(s.into()), IpAddr::V4(e.into()), answer_in(l, &t));
            }
        }
        IpNet::V6(n) => {
            if n.prefix_len() < 32 {
                return Err(format!(
                    "{net}: ranges wider than a /32 are not intersected"
                ));
            }
            let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
            let mut edges: Vec<u128> = vec![lo];
            for d in l.datasets.iter().filter(|d| !d.is_ip4()) {
                d.edges_v6(lo, hi, &mut edges);
            }
            edges.sort_unstable();
            edges.dedup();
            for (i, &s) in edges.iter().enumerate() {
                let e = edges.get(i + 1).map_or(hi, |n| n - 1);
                let t = Target::Ip(IpAddr::V6(s.into()));
                push(IpAddr::V6(s.into()), IpAddr::V6(e.into()), answer_in(l, &t));
            }
        }
    }
    for o in &mut out {
        o.cidrs = cidrs(o.first, o.last);
    }
    Ok(out)
}

/// Whether two TXT lists differ only by the address `$` stood for (kept merged).
fn same_txt_template(a: &[String], b: &[String]) -> bool {
    let strip = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|s| {
                s.chars()
                    .filter(|c| !c.is_ascii_hexdigit() && *c != '.' && *c != ':')
                    .collect()
            })
            .collect()
    };
    strip(a) == strip(b)
}

/// `[first, last]` as CIDR blocks (at most 8, then `…`).
fn cidrs(first: IpAddr, last: IpAddr) -> Vec<String> {
    let mut out = Vec::new();
    match (first, last) {
        (IpAddr::V4(f), IpAddr::V4(l)) => {
            let (mut s, e) = (u64::from(u32::from(f)), u64::from(u32::from(l)));
            while s <= e {
                let mut size = s.trailing_zeros().min(32);
                while size > 0 && s + (1u64 << size) - 1 > e {
                    size -= 1;
                }
                if out.len() == 8 {
                    out.push("…".into());
                    break;
                }
                out.push(format!(
                    "{}/{}",
                    std::net::Ipv4Addr::from(s as u32),
                    32 - size
                ));
                s += 1u64 << size;
            }
        }
        (IpAddr::V6(f), IpAddr::V6(l)) => {
            let (mut s, e) = (u128::from(f), u128::from(l));
            loop {
                let mut size = s.trailing_zeros().min(128);
                while size > 0 && (size == 128 || s + ((1u128 << size) - 1) > e) {
                    size -= 1;
                }
                if out.len() == 8 {
                    out.push("…".into());
                    break;
                }
                out.push(format!("{}/{}", std::net::Ipv6Addr::from(s), 128 - size));
                match s.checked_add(1u128 << size) {
                    Some(n) if n <= e => s = n,
                    _ => break,
                }
            }
        }
        _ => {}
    }
    out
}

/// The data files of a mirror path with their types, and their stamp.
fn files(conf: &MirrorConf) -> Result<Vec<(PathBuf, DatasetType, u64, SystemTime)>, LoadError> {
    let meta = std::fs::metadata(&conf.path).map_err(|e| {
        LoadError::Missing(format!(
            "mirror path {} is gone or unreadable: {e}",
            conf.path.display()
        ))
    })?;
    let paths: Vec<PathBuf> = if meta.is_dir() {
        let rd = std::fs::read_dir(&conf.path).map_err(|e| {
            LoadError::Missing(format!("mirror directory {}: {e}", conf.path.display()))
        })?;
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                // rsync's and editors' temporary files are not data
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    !n.starts_with('.')
                        && !n.ends_with('~')
                        && !n.ends_with(".tmp")
                        && !n.ends_with(".part")
                })
            })
            .filter(|p| p.is_file())
            .collect();
        v.sort();
        v
    } else {
        vec![conf.path.clone()]
    };
    let mut out = Vec::new();
    for p in paths {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .and_then(DatasetType::parse);
        let Some(kind) = ext.or(conf.format) else {
            if meta.is_dir() {
                continue;
            }
            return Err(LoadError::Refused(format!(
                "{}: unknown dataset type: name the file <name>.<type> (ip4set, ip4tset, ip4trie, ip6trie, ip6tset, dnset, combined) or set mirror_format",
                p.display()
            )));
        };
        let m = std::fs::metadata(&p)
            .map_err(|e| LoadError::Missing(format!("{}: {e}", p.display())))?;
        out.push((
            p,
            kind,
            m.len(),
            m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        ));
    }
    if out.is_empty() {
        return Err(LoadError::Missing(format!(
            "mirror directory {} holds no data file (<name>.ip4set, .ip6trie, .dnset, ...)",
            conf.path.display()
        )));
    }
    Ok(out)
}

/// Loads the files when their stamp differs from `current`'s; `Ok(None)` when unchanged.
fn load(
    conf: &MirrorConf,
    current: Option<&Stamp>,
    shrunk: Option<&Stamp>,
) -> Result<Option<Loaded>, LoadError> {
    let list = files(conf)?;
    let stamp: Stamp = list
        .iter()
        .map(|(p, _, len, t)| (p.clone(), *len, *t))
        .collect();
    if current == Some(&stamp) {
        return Ok(None);
    }
    if let Some(cur) = current {
        let size = |s: &Stamp| s.iter().map(|f| f.1).sum::<u64>();
        let (old, new) = (size(cur), size(&stamp));
        if new < old / 2 && shrunk != Some(&stamp) {
            return Err(LoadError::Shrunk(
                stamp,
                format!(
                    "the data shrank from {old} to {new} bytes: loaded only if the next check finds it unchanged (a truncated file is never used)"
                ),
            ));
        }
    }
    let now_sys = SystemTime::now();
    for (p, _, _, t) in &list {
        if now_sys.duration_since(*t).unwrap_or_default() < conf.settle {
            return Err(LoadError::Busy(format!(
                "{} changed less than {} ago: taken as still being written, read at the next check",
                p.display(),
                crate::time::fmt_duration(conf.settle)
            )));
        }
    }
    let now = crate::time::now();
    let mut datasets = Vec::new();
    let mut warnings = Vec::new();
    for (p, kind, len, mtime) in &list {
        if *len > conf.max_size {
            return Err(LoadError::Refused(format!(
                "{} is {} bytes, over the size cap of {} bytes (a sparse or runaway file?): refused",
                p.display(),
                len,
                conf.max_size
            )));
        }
        let (ds, problems, read) = read_file(p, *kind, conf.max_size, now)?;
        // the file must be the one listed, unchanged through the read
        let after = std::fs::metadata(p).map_err(|e| {
            LoadError::Busy(format!("{} vanished while being read: {e}", p.display()))
        })?;
        if read != *len || after.len() != *len || after.modified().ok() != Some(*mtime) {
            return Err(LoadError::Busy(format!(
                "{} changed while being read: the read is discarded, tried again at the next check",
                p.display()
            )));
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        if problems.invalid > 0 {
            warnings.push(format!(
                "{name}: {} invalid line(s) skipped (as rbldnsd does): {}",
                problems.invalid,
                problems.examples.join("; ")
            ));
        }
        if problems.duplicates > 0 {
            warnings.push(format!(
                "{name}: {} prefix(es) given twice: the first line kept (as rbldnsd does)",
                problems.duplicates
            ));
        }
        if problems.contradictions > 0 {
            warnings.push(format!(
                "{name}: {} entr(ies) both listed and excluded: read as rbldnsd does (sets: the exclusion wins; tries: the first line)",
                problems.contradictions
            ));
        }
        warnings.extend(problems.notes.iter().map(|n| format!("{name}: {n}")));
        datasets.extend(ds);
    }
    let has_ip4 = datasets.iter().any(|d| d.is_ip4());
    let entries = datasets.iter().map(|d| d.entries).sum();
    let data_time = list
        .iter()
        .map(|f| f.3)
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Ok(Some(Loaded {
        datasets,
        has_ip4,
        stamp,
        data_time,
        entries,
        warnings,
    }))
}

/// Reads one file, bounded by `max_size`, refusing a truncated or corrupt one.
///
/// Lines are cut from the read buffer without ever holding more than
/// [`MAX_LINE`] bytes of one, so a file without newlines (a sparse hole,
/// garbage) costs a bounded amount of memory and stops at the first NUL.
fn read_file(
    p: &Path,
    kind: DatasetType,
    max_size: u64,
    now: i64,
) -> Result<(Vec<Dataset>, Problems, u64), LoadError> {
    let f =
        std::fs::File::open(p).map_err(|e| LoadError::Missing(format!("{}: {e}", p.display())))?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f.take(max_size.saturating_add(1)));
    let mut err: Option<LoadError> = None;
    let mut total = 0u64;
    let mut long = 0u64;
    let mut long_bytes = 0u64;
    let mut last_newline = true;
    let lines = std::iter::from_fn(|| {
        let mut line: Vec<u8> = Vec::with_capacity(64);
        let mut too_long = false;
        loop {
            let buf = match r.fill_buf() {
                Ok(b) => b,
                Err(e) => {
                    err = Some(LoadError::Refused(format!(
                        "{}: read error: {e}",
                        p.display()
                    )));
                    return None;
                }
            };
            if buf.is_empty() {
                // end of file: a last line without newline is handed on, and noted
                if line.is_empty() && !too_long {
                    return None;
                }
                last_newline = false;
                if too_long {
                    long += 1;
                    return None;
                }
                return Some(line);
            }
            let (chunk, done) = match memchr_nl(buf) {
                Some(i) => (&buf[..=i], true),
                None => (buf, false),
            };
            if let Some(z) = chunk.iter().position(|&c| c == 0) {
                err = Some(LoadError::Refused(format!(
                    "{}: NUL bytes at byte {}: not a text data file (corrupt, or a sparse hole): refused",
                    p.display(),
                    total + z as u64
                )));
                return None;
            }
            let n = chunk.len();
            total += n as u64;
            if total > max_size {
                err = Some(LoadError::Refused(format!(
                    "{} grew past the size cap of {max_size} bytes while being read: refused",
                    p.display()
                )));
                return None;
            }
            if too_long || line.len() + n > MAX_LINE {
                too_long = true;
                long_bytes += n as u64;
            } else {
                line.extend_from_slice(chunk);
            }
            r.consume(n);
            if done {
                last_newline = true;
                if too_long {
                    long += 1;
                    line.clear();
                    too_long = false;
                    continue;
                }
                return Some(line);
            }
        }
    });
    let mut problems = Problems::default();
    let mut lines = lines.fuse();
    let parsed = format::parse(kind, &mut lines, now, &mut problems);
    drop(lines);
    if let Some(e) = err {
        return Err(e);
    }
    let ds = parsed.map_err(|e| LoadError::Refused(format!("{}: {e}", p.display())))?;
    if !last_newline {
        return Err(LoadError::Refused(format!(
            "{}: the last line has no newline: the file is cut short (truncated, or still being written): refused",
            p.display()
        )));
    }
    problems.invalid += long;
    problems.invalid_bytes += long_bytes;
    if long > 0 {
        problems
            .examples
            .push(format!("{long} line(s) longer than {MAX_LINE} bytes"));
    }
    let many_lines = problems.invalid > MAX_INVALID && problems.invalid * 100 > problems.lines;
    let many_bytes = problems.invalid_bytes > 4096 && problems.invalid_bytes * 100 > total;
    if many_lines || many_bytes {
        return Err(LoadError::Refused(format!(
            "{}: {} of {} lines ({} of {} bytes) are invalid: corrupt, or not a {} file: refused ({})",
            p.display(),
            problems.invalid,
            problems.lines,
            problems.invalid_bytes,
            total,
            kind.name(),
            problems.examples.join("; ")
        )));
    }
    Ok((ds, problems, total))
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "$SOA 60 ns.t hm.t 0 600 60 3600 10\n:127.0.0.2:Listed $\n127.0.0.2\n192.0.2.0/24 :4:net $\n";

    fn conf(path: &Path) -> MirrorConf {
        let mut c = MirrorConf::new(path.to_path_buf());
        c.settle = Duration::ZERO;
        c
    }

    fn ip(s: &str) -> Target {
        Target::Ip(s.parse().unwrap())
    }

    fn listed(m: &Mirror, s: &str) -> bool {
        matches!(m.answer(&ip(s)), MirrorAnswer::Listed { .. })
    }

    fn set_age(p: &Path, age: Duration) {
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    /// Writes `content` to `p` through a temporary file and a rename, with an mtime `age` ago.
    fn replace(p: &Path, content: &[u8], age: Duration) {
        let tmp = p.with_extension("new.tmp");
        std::fs::write(&tmp, content).unwrap();
        set_age(&tmp, age);
        std::fs::rename(&tmp, p).unwrap();
    }

    #[test]
    fn a_new_version_replaces_the_old_whole_and_only_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bl.ip4set");
        replace(&f, GOOD.as_bytes(), Duration::from_secs(10));
        let m = Mirror::new(conf(dir.path()));
        assert_eq!(
            m.answer(&ip("127.0.0.2")),
            MirrorAnswer::Unavailable(m.unavailable().unwrap())
        );
        let st = m.refresh();
        assert!(st.loaded && !st.stale && st.error.is_none(), "{st:?}");
        assert!(listed(&m, "192.0.2.7") && !listed(&m, "192.0.3.7"));
        replace(&f, b"127.0.0.2\n198.51.100.0/24\n", Duration::from_secs(5));
        // much smaller than the data in use: confirmed by a second look before use
        let st = m.refresh();
        assert!(
            st.error.as_deref().is_some_and(|e| e.contains("shrank")),
            "{st:?}"
        );
        assert!(listed(&m, "192.0.2.7"));
        m.refresh();
        assert!(listed(&m, "192.0.2.7"), "not before a second has passed");
        std::thread::sleep(Duration::from_millis(1100));
        m.refresh();
        assert!(listed(&m, "198.51.100.1") && !listed(&m, "192.0.2.7"));
        // a file changed a moment ago is taken as still being written: the old data stays
        let mut c = conf(dir.path());
        c.settle = Duration::from_secs(60);
        let m2 = Mirror::new(c);
        let st = m2.refresh();
        assert!(
            !st.loaded
                && st
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("still being written")),
            "{st:?}"
        );
    }

    #[test]
    fn truncated_and_corrupt_files_keep_the_last_good_data() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bl.ip4set");
        replace(&f, GOOD.as_bytes(), Duration::from_secs(10));
        let m = Mirror::new(conf(dir.path()));
        m.refresh();
        // cut short in the middle of a line
        replace(
            &f,
            &GOOD.as_bytes()[..GOOD.len() - 9],
            Duration::from_secs(5),
        );
        let st = m.refresh();
        assert!(
            st.error.as_deref().is_some_and(|e| e.contains("cut short")),
            "{st:?}"
        );
        assert!(listed(&m, "192.0.2.7"), "the last good data stays in use");
        // binary garbage
        let garbage: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 1)
            .collect();
        replace(&f, &garbage, Duration::from_secs(5));
        let st = m.refresh();
        assert!(
            st.error.as_deref().is_some_and(|e| e.contains("refused")),
            "{st:?}"
        );
        assert!(listed(&m, "192.0.2.7"));
        let garbage: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .map(|c| if c == 0 { b'\n' } else { c })
            .collect();
        let mut g = garbage.clone();
        g.push(b'\n');
        replace(&f, &g, Duration::from_secs(4));
        let st = m.refresh();
        assert!(
            st.error.as_deref().is_some_and(|e| e.contains("refused")),
            "{st:?}"
        );
        assert!(listed(&m, "192.0.2.7"));
        // NUL bytes (a hole of a sparse file, a partly written block)
        let mut z = GOOD.as_bytes().to_vec();
        z.extend_from_slice(&[0u8; 4096]);
        z.push(b'\n');
        replace(&f, &z, Duration::from_secs(3));
        let st = m.refresh();
        assert!(
            st.error.as_deref().is_some_and(|e| e.contains("NUL")),
            "{st:?}"
        );
        assert!(listed(&m, "192.0.2.7"));
        // a few bad lines are skipped with a warning, as rbldnsd does
        replace(
            &f,
            format!("{GOOD}999.1.1.1\n10.0.0.1/24\n").as_bytes(),
            Duration::from_secs(2),
        );
        let st = m.refresh();
        assert!(st.error.is_none(), "{st:?}");
        assert!(
            st.warnings.iter().any(|w| w.contains("2 invalid line(s)")),
            "{st:?}"
        );
    }

    #[test]
    fn a_huge_sparse_file_is_refused_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bl.ip4set");
        replace(&f, GOOD.as_bytes(), Duration::from_secs(10));
        let m = Mirror::new(conf(dir.path()));
        m.refresh();
        let big = dir.path().join("big.tmp");
        let h = std::fs::File::create(&big).unwrap();
        h.set_len(20 << 30).unwrap();
        drop(h);
        set_age(&big, Duration::from_secs(5));
        std::fs::rename(&big, &f).unwrap();
        let t = std::time::Instant::now();
        let st = m.refresh();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(
            st.error.as_deref().is_some_and(|e| e.contains("size cap")),
            "{st:?}"
        );
        assert!(listed(&m, "192.0.2.7"));
        // under the cap, the holes are NUL bytes: refused at the first block
        let mut c = conf(dir.path());
        c.max_size = 64 << 30;
        let m2 = Mirror::new(c);
        let t = std::time::Instant::now();
        let st = m2.refresh();
        assert!(
            t.elapsed() < Duration::from_secs(2)
                && st.error.as_deref().is_some_and(|e| e.contains("NUL")),
            "{st:?}"
        );
        assert!(!st.loaded);
    }

    #[test]
    fn a_vanished_directory_keeps_the_data_until_max_age() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("zen");
        std::fs::create_dir(&dir).unwrap();
        let f = dir.join("bl.ip4set");
        replace(&f, GOOD.as_bytes(), Duration::from_secs(100));
        let mut c = conf(&dir);
        c.max_age = Duration::from_secs(3600);
        let m = Mirror::new(c);
        m.refresh();
        std::fs::remove_dir_all(&dir).unwrap();
        let st = m.refresh();
        assert!(st.loaded && !st.stale, "{st:?}");
        assert!(
            st.error.as_deref().is_some_and(|e| e.contains("gone")),
            "{st:?}"
        );
        assert!(listed(&m, "192.0.2.7"));
        // the same data, older than max_age: stale, and no answer is given at all
        let mut c = conf(&dir);
        c.max_age = Duration::from_secs(60);
        std::fs::create_dir(&dir).unwrap();
        replace(&f, GOOD.as_bytes(), Duration::from_secs(100));
        let m = Mirror::new(c);
        let st = m.refresh();
        assert!(st.loaded && st.stale, "{st:?}");
        assert!(
            matches!(m.answer(&ip("192.0.2.7")), MirrorAnswer::Unavailable(w) if w.contains("stale"))
        );
        assert!(
            matches!(m.answer(&ip("10.9.9.9")), MirrorAnswer::Unavailable(_)),
            "never clear"
        );
    }

    #[test]
    fn a_file_rewritten_during_the_read_is_never_used_half() {
        // Two versions of a 4 MB file, one listing 10/8 and one 11/8, each with
        // 200,000 single addresses: whatever is loaded is one of them whole.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bl.ip4set");
        let version = |first: u8| {
            let mut s = String::new();
            for i in 0..200_000u32 {
                let _ = writeln!(
                    s,
                    "{first}.{}.{}.{}",
                    (i >> 16) & 255,
                    (i >> 8) & 255,
                    i & 255
                );
            }
            s
        };
        use std::fmt::Write as _;
        let (a, b) = (version(10), version(11));
        std::fs::write(&f, &a).unwrap();
        set_age(&f, Duration::from_secs(10));
        // a writer in place is caught by `settle` (changed a moment ago) or by
        // the file changing during the read
        let mut c = conf(dir.path());
        c.settle = Duration::from_secs(1);
        let m = Arc::new(Mirror::new(c));
        m.refresh();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (f, stop) = (f.clone(), stop.clone());
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // rewritten in place, in chunks, as a careless download job does
                    let mut h = std::fs::File::create(&f).unwrap();
                    let body = if n.is_multiple_of(2) { &b } else { &a };
                    for chunk in body.as_bytes().chunks(256 << 10) {
                        std::io::Write::write_all(&mut h, chunk).unwrap();
                    }
                    drop(h);
                    set_age(&f, Duration::from_secs(10 + u64::from(n)));
                    n += 1;
                }
            })
        };
        let (mut errors, mut switches, mut last) = (0, 0, true);
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(25));
            let st = m.refresh();
            errors += usize::from(st.error.is_some());
            let ten = listed(&m, "10.1.2.3") && listed(&m, "10.3.13.63");
            let eleven = listed(&m, "11.1.2.3") && listed(&m, "11.3.13.63");
            assert!(
                ten ^ eleven,
                "a half-read file is in use: {st:?} {} {} {} {}",
                listed(&m, "10.1.2.3"),
                listed(&m, "10.3.13.63"),
                listed(&m, "11.1.2.3"),
                listed(&m, "11.3.13.63")
            );
            assert_eq!(m.status().entries, 200_000);
            switches += usize::from(ten != last);
            last = ten;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        // once the writer is done, its last version loads, whole
        std::thread::sleep(Duration::from_millis(1100));
        let st = m.refresh();
        assert!(st.error.is_none(), "{st:?}");
        assert!(listed(&m, "10.1.2.3") ^ listed(&m, "11.1.2.3"));
        assert!(listed(&m, "10.3.13.63") ^ listed(&m, "11.3.13.63"));
        eprintln!("{errors} of 40 reloads found the file changing; {switches} new versions loaded");
    }

    #[test]
    fn overlapping_and_contradicting_entries_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        replace(
            &dir.path().join("a.ip4trie"),
            b"10.0.0.0/8 :2:\n10.0.0.0/8 :3:other\n!10.1.0.0/16\n!10.1.0.0/16\n10.1.2.0/24\n",
            Duration::from_secs(5),
        );
        replace(
            &dir.path().join("b.ip4set"),
            b"11.9.0.0/16\n!11.9.0.0/16\n",
            Duration::from_secs(5),
        );
        let m = Mirror::new(conf(dir.path()));
        let st = m.refresh();
        assert!(
            st.warnings
                .iter()
                .any(|w| w.contains("a.ip4trie") && w.contains("given twice")),
            "{st:?}"
        );
        assert!(
            st.warnings
                .iter()
                .any(|w| w.contains("b.ip4set") && w.contains("both listed and excluded")),
            "{st:?}"
        );
        // read as rbldnsd does: the first of a duplicate, the longest prefix, the set's exclusion
        assert_eq!(
            m.answer(&ip("10.200.0.1")),
            MirrorAnswer::Listed {
                a: vec!["127.0.0.2".parse().unwrap()],
                txt: vec![]
            }
        );
        assert!(!listed(&m, "10.1.0.1") && listed(&m, "10.1.2.1") && !listed(&m, "11.9.1.1"));
    }

    #[test]
    fn intersection_names_every_listed_piece() {
        let dir = tempfile::tempdir().unwrap();
        replace(
            &dir.path().join("a.ip4set"),
            b":127.0.0.2:L $\n198.51.100.0/24\n!198.51.100.77\n198.51.101.10-198.51.101.20 :3:\n203.0.113.5\n",
            Duration::from_secs(5),
        );
        replace(
            &dir.path().join("b.ip6trie"),
            b"2001:db8:1200::/48 :4:\n!2001:db8:1200:5::/64\n2001:db8:12ff:1::/64\n2001:db8:1300::/48\n",
            Duration::from_secs(5),
        );
        let m = Mirror::new(conf(dir.path()));
        m.refresh();
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let o = m.intersect(&net("198.51.96.0/20")).unwrap();
        let r: Vec<String> = o
            .iter()
            .map(|o| format!("{} {:?}", o.range(), o.a))
            .collect();
        assert_eq!(
            r,
            vec![
                "198.51.100.0-198.51.100.76 [127.0.0.2]",
                "198.51.100.78-198.51.100.255 [127.0.0.2]",
                "198.51.101.10-198.51.101.20 [127.0.0.3]"
            ]
        );
        assert_eq!(o[0].cidrs[0], "198.51.100.0/26");
        let o = m.intersect(&net("2001:db8:1200::/40")).unwrap();
        let r: Vec<String> = o.iter().map(Overlap::range).collect();
        assert_eq!(
            r,
            vec![
                "2001:db8:1200::-2001:db8:1200:4:ffff:ffff:ffff:ffff",
                "2001:db8:1200:6::-2001:db8:1200:ffff:ffff:ffff:ffff:ffff",
                "2001:db8:12ff:1::/64"
            ]
        );
        // every piece agrees with the point lookups at its edges and just outside
        for p in &o {
            assert!(listed(&m, &p.first.to_string()) && listed(&m, &p.last.to_string()));
        }
        assert!(m.intersect(&net("10.0.0.0/7")).is_err());
        assert!(m.intersect(&net("2001:db8::/31")).is_err());
        assert!(m.intersect(&net("10.0.0.0/8")).unwrap().is_empty());
    }
}
