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
    /// Ask this list's own servers (true) or the resolver (false), whatever `[resolver] mode` says.
    pub direct: Option<bool>,
    /// Queries per day this list may get (e.g. a paid DQS plan's), instead of the catalog's `daily_limit`.
    pub daily_limit: Option<u64>,
}

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
