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
                let mirror = match &o.mirror {
                    None => None,
                    Some(p) => {
                        let mut m = MirrorSettings {
                            path: cx.path(p.get_ref()),
                            max_age: std::time::Duration::from_secs(86_400),
                            format: None,
                            max_size: 0,
                        };
                        m.max_age = cx.duration(
                            &o.max_age,
                            &format!("lists.override.{id}.max_age"),
                            m.max_age,
                            std::time::Duration::from_secs(60),
                            std::time::Duration::from_secs(90 * 86_400),
                        )?;
                        if let Some(f) = &o.mirror_format {
                            let name = f.get_ref().trim();
                            if !MIRROR_FORMATS.contains(&name) {
                                return Err(cx.err(f.span(), format!("lists.override.{id}.mirror_format: {name:?} is not one of {}", MIRROR_FORMATS.join(", "))));
                            }
                            m.format = Some(name.to_string());
                        }
                        m.max_size = cx.int(
                            &o.mirror_max_mb,
                            &format!("lists.override.{id}.mirror_max_mb"),
                            4096,
                            1,
                            1 << 20,
                        )? as u64
                            * (1 << 20);
                        Some(m)
                    }
                };
                if mirror.is_none() && (o.max_age.is_some() || o.mirror_format.is_some() || o.mirror_max_mb.is_some()) {
                    return Err(cx.err_here(format!("lists.override.{id}: max_age, mirror_format and mirror_max_mb need mirror = \"/path\"")));
                }
                Ok((
                    id.clone(),
                    ListOverride {
                        mirror,
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
