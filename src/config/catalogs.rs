//! The two catalogs a config adds to, loaded once per config: the list
//! catalog (shipped plus `[lists] dirs`) and the receiver-reply catalog
//! (shipped plus `[replies] dirs`). Every list id the file names is checked
//! against the first; the second's rules must name known lists. A problem is
//! placed on the line of the directory, or of the id, that causes it.

use crate::catalog::Catalog;
use crate::classes::ClassRules;
use crate::replies::ReplyCatalog;

use super::ctx::Ctx;
use super::raw::RawConfig;

/// Loads both catalogs and checks the ids the file names; `None` when a
/// catalog could not be built (reported).
pub(super) fn load(raw: &RawConfig, cx: &Ctx<'_>) -> Option<(Catalog, ReplyCatalog)> {
    let lists = list_catalog(raw, cx)?;
    check_list_ids(raw, &lists, cx);
    let replies = reply_catalog(raw, &lists, cx)?;
    Some((lists, replies))
}

/// The shipped list catalog plus each `[lists] dirs` entry, in order.
fn list_catalog(raw: &RawConfig, cx: &Ctx<'_>) -> Option<Catalog> {
    let mut c = match Catalog::shipped() {
        Ok(c) => c,
        Err(e) => {
            cx.report_at(None, format!("the shipped list catalog is broken: {e}"));
            return None;
        }
    };
    let mut ok = true;
    for d in &raw.lists.dirs {
        let p = cx.path(d.get_ref());
        // a path that is not a directory is reported by `lists::validate`
        if p.is_dir() {
            if let Err(e) = c.extend_from_dir(&p) {
                cx.report(d.span(), format!("lists.dirs: {e}"));
                ok = false;
            }
        }
    }
    ok.then_some(c)
}

/// `use`, `exclude`, `override.<id>` and `impact.backscatter_lists` must
/// name catalog lists; a retired one named in `use`/`exclude` is a warning.
fn check_list_ids(raw: &RawConfig, catalog: &Catalog, cx: &Ctx<'_>) {
    let l = &raw.lists;
    let named = l
        .use_
        .iter()
        .flat_map(|v| v.get_ref().iter())
        .chain(l.exclude.iter());
    for s in named {
        let id = s.get_ref().trim();
        // ids or zones (dnsbl_exporter's rbls.ini and check_rbl name lists by zone)
        match catalog.find(id) {
            None => cx.report(
                s.span(),
                format!("lists: unknown list id or zone {id:?} (see `rblwatch lists --all`)"),
            ),
            Some(def) => {
                if let Some(r) = &def.retired {
                    cx.warn(format!(
                        "list {id:?} is retired since {} and is not queried: {}",
                        r.since, r.reason
                    ));
                }
            }
        }
    }
    for id in l.override_.keys() {
        if catalog.get(id.get_ref()).is_none() {
            cx.report(
                id.span(),
                format!(
                    "lists.override.{0}: unknown list id {0:?} (see `rblwatch lists`)",
                    id.get_ref()
                ),
            );
        }
    }
    for s in raw.impact.backscatter_lists.iter().flatten() {
        let id = s.get_ref().trim();
        if catalog.get(id).is_none() {
            cx.report(
                s.span(),
                format!(
                    "impact.backscatter_lists: unknown list id {id:?} (see `rblwatch lists --all`)"
                ),
            );
        }
    }
}

/// The shipped reply rules plus each `[replies] dirs` entry; after each
/// directory the rules are checked against the lists, so a rule naming an
/// unknown list is placed on the line of the directory that brought it.
fn reply_catalog(raw: &RawConfig, lists: &Catalog, cx: &Ctx<'_>) -> Option<ReplyCatalog> {
    let shipped = ReplyCatalog::shipped().and_then(|r| r.check_lists(lists).map(|()| r));
    let mut r = match shipped {
        Ok(r) => r,
        Err(e) => {
            // the shipped rules are checked against the lists the config
            // uses, which `[lists] dirs` may have replaced
            let at = raw.lists.dirs.first().map(|d| cx.line(d.span().start));
            cx.report_at(at, format!("replies: {e}"));
            return None;
        }
    };
    let mut ok = true;
    for d in &raw.replies.dirs {
        let p = cx.path(d.get_ref());
        // a path that is not a directory is reported by `impact::validate`
        if !p.is_dir() {
            continue;
        }
        let added = r
            .extend_from_dir(&p)
            .map_err(|e| format!("replies.dirs: {e}"))
            .and_then(|_| r.check_lists(lists).map_err(|e| format!("replies: {e}")));
        if let Err(m) = added {
            cx.report(d.span(), m);
            ok = false;
        }
    }
    ok.then_some(r)
}

/// The shipped outbound class rules plus each `[senders] dirs` entry, read
/// once here so a broken rule file is a config error (the directory's line,
/// then the file, its line, the rule and the key), reported with the others
/// by `rblwatch config check` and a reload, not a daemon that will not start.
pub(super) fn class_rules(raw: &RawConfig, cx: &Ctx<'_>) -> Option<ClassRules> {
    let mut r = match ClassRules::shipped() {
        Ok(r) => r,
        Err(e) => {
            cx.report_at(None, format!("the shipped class rules are broken: {e}"));
            return None;
        }
    };
    let mut ok = true;
    for d in &raw.senders.dirs {
        let p = cx.path(d.get_ref());
        // a path that is not a directory is reported by `senders::validate`
        if p.is_dir() {
            if let Err(e) = r.extend_from_dir(&p) {
                cx.report(d.span(), format!("senders.dirs: {e}"));
                ok = false;
            }
        }
    }
    ok.then_some(r)
}
