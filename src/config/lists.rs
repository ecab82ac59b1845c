//! `[lists]`: which catalog lists are used.

use std::path::PathBuf;

use super::raw::RawLists;
use super::{ConfigError, Ctx};

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

pub(super) fn validate(l: &RawLists, cx: &Ctx<'_>) -> Result<ListsConf, ConfigError> {
    let mut dirs = Vec::new();
    for d in &l.dirs {
        let p = cx.path(d.get_ref());
        if !p.is_dir() {
            return Err(cx.err(
                d.span(),
                format!("lists.dirs: {} is not a directory", p.display()),
            ));
        }
        dirs.push(p);
    }
    Ok(ListsConf {
        use_: l
            .use_
            .as_ref()
            .map(|v| v.iter().map(|s| s.get_ref().trim().to_string()).collect()),
        exclude: l
            .exclude
            .iter()
            .map(|s| s.get_ref().trim().to_string())
            .collect(),
        dirs,
        max_qps: cx.float(&l.max_qps, "lists.max_qps", 0.001, 100_000.0)?,
        overrides: l
            .override_
            .iter()
            .map(|(id, o)| {
                Ok((
                    id.clone(),
                    ListOverride {
                        direct: o.direct,
                        daily_limit: match &o.daily_limit {
                            Some(_) => Some(cx.int(
                                &o.daily_limit,
                                &format!("lists.override.{id}.daily_limit"),
                                0,
                                1,
                                1_000_000_000_000,
                            )? as u64),
                            None => None,
                        },
                    },
                ))
            })
            .collect::<Result<_, ConfigError>>()?,
    })
}
