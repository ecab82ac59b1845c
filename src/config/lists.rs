//! `[lists]`: which catalog lists are used.

use std::path::PathBuf;

use super::ctx::Ctx;
use super::raw::RawLists;

/// Which lists to use.
#[derive(Debug, Clone, PartialEq)]
pub struct ListsConf {
    /// Ids to use; `None` means every list enabled by default in the catalog.
    pub use_: Option<Vec<String>>,
    /// Ids never to use.
    pub exclude: Vec<String>,
    /// Extra catalog directories (override shipped lists by id).
    pub dirs: Vec<PathBuf>,
    /// A cap on queries per second to any one list. Defaults to none (the catalog's own caps still apply).
    pub max_qps: Option<f64>,
    /// Per-list settings (`[lists.override.<id>]`), by list id.
    pub overrides: std::collections::BTreeMap<String, ListOverride>,
}

/// `[lists.override.<id>]`: settings of one list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOverride {
    /// Answer this list from a local mirror of its rbldnsd data files (a file or a directory).
    pub mirror: Option<MirrorSettings>,
    /// Ask this list's own servers (true) or the resolver (false), whatever `[resolver] mode` says.
    pub direct: Option<bool>,
    /// Queries per day this list may get (e.g. a paid DQS plan's), instead of the catalog's `daily_limit`.
    pub daily_limit: Option<u64>,
}

/// `mirror = "/path"` and its companions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSettings {
    /// A data file, or a directory of them.
    pub path: PathBuf,
    /// Data older than this reads `stale`. Defaults to a day.
    pub max_age: std::time::Duration,
    /// The rbldnsd dataset type of files not named `<name>.<type>`.
    pub format: Option<String>,
    /// Files larger than this many bytes are refused. Defaults to 4 GiB.
    pub max_size: u64,
}

/// The rbldnsd dataset types a mirror reads.
pub const MIRROR_FORMATS: &[&str] = &[
    "ip4set", "ip4tset", "ip4trie", "ip6trie", "ip6tset", "dnset", "combined",
];

pub(super) fn validate(l: &RawLists, cx: &Ctx<'_>) -> ListsConf {
    let mut dirs = Vec::new();
    for d in &l.dirs {
        let p = cx.path(d.get_ref());
        if p.is_dir() {
            dirs.push(p);
        } else {
            cx.report(
                d.span(),
                format!("lists.dirs: {} is not a directory", p.display()),
            );
        }
    }
    let use_ = l.use_.as_ref().map(|v| {
        if v.get_ref().is_empty() {
            // `[]` would quietly check nothing at all
            cx.report(
                v.span(),
                "lists.use: the list is empty: name the lists to use, or omit the key for every list enabled by default (without [[targets]] no list is queried)".into(),
            );
        }
        v.get_ref()
            .iter()
            .map(|s| s.get_ref().trim().to_string())
            .collect()
    });
    let overrides = l
        .override_
        .iter()
        .map(|(id, o)| {
            let id = id.get_ref();
            let daily_limit = o.daily_limit.as_ref().map(|_| {
                cx.int(
                    &o.daily_limit,
                    &format!("lists.override.{id}.daily_limit"),
                    0,
                    1,
                    1_000_000_000_000,
                ) as u64
            });
            (
                id.clone(),
                ListOverride {
                    mirror: mirror_settings(id, o, cx),
                    direct: o.direct,
                    daily_limit,
                },
            )
        })
        .collect();
    ListsConf {
        use_,
        exclude: l
            .exclude
            .iter()
            .map(|s| s.get_ref().trim().to_string())
            .collect(),
        dirs,
        max_qps: cx.float(&l.max_qps, "lists.max_qps", 0.001, 100_000.0),
        overrides,
    }
}

/// `mirror = "/path"` and its companions of one `[lists.override.<id>]`
/// (`None` without a mirror; a problem is reported).
fn mirror_settings(
    id: &str,
    o: &super::raw::RawListOverride,
    cx: &Ctx<'_>,
) -> Option<MirrorSettings> {
    let Some(p) = &o.mirror else {
        if let Some(k) = [&o.max_age, &o.mirror_format]
            .into_iter()
            .flatten()
            .next()
            .map(|k| k.span())
            .or_else(|| o.mirror_max_mb.as_ref().map(|k| k.span()))
        {
            cx.report(
                k,
                format!("lists.override.{id}: max_age, mirror_format and mirror_max_mb need mirror = \"/path\""),
            );
        }
        return None;
    };
    let max_age = cx.duration(
        &o.max_age,
        &format!("lists.override.{id}.max_age"),
        std::time::Duration::from_secs(86_400),
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(90 * 86_400),
    );
    let format = o.mirror_format.as_ref().and_then(|f| {
        let name = f.get_ref().trim();
        if MIRROR_FORMATS.contains(&name) {
            Some(name.to_string())
        } else {
            cx.report(
                f.span(),
                format!(
                    "lists.override.{id}.mirror_format: {name:?} is not one of {}",
                    MIRROR_FORMATS.join(", ")
                ),
            );
            None
        }
    });
    let max_size = cx.int(
        &o.mirror_max_mb,
        &format!("lists.override.{id}.mirror_max_mb"),
        4096,
        1,
        1 << 20,
    ) as u64
        * (1 << 20);
    Some(MirrorSettings {
        path: cx.path(p.get_ref()),
        max_age,
        format,
        max_size,
    })
}
