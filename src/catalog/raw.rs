//! Serde mirror of a `lists.d/*.toml` file. Nothing here is validated; see
//! [`super::ListDef::from_raw`].

use serde::Deserialize;

use super::{CodeVerdict, ErrorCause, ListClass, ListKind, Undocumented};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) list: Vec<RawList>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawList {
    pub(super) id: String,
    pub(super) name: Option<String>,
    pub(super) zone: String,
    pub(super) kind: ListKind,
    pub(super) class: Option<ListClass>,
    #[serde(default)]
    pub(super) returns: Vec<RawCode>,
    pub(super) test_points: Option<RawTestPoints>,
    pub(super) delist: Option<String>,
    pub(super) website: Option<String>,
    pub(super) policy: Option<RawPolicy>,
    pub(super) enabled: Option<bool>,
    pub(super) retired: Option<RawRetired>,
    pub(super) sources: Option<Vec<String>>,
    pub(super) verified: Option<String>,
    pub(super) expiry: Option<String>,
    pub(super) expiry_note: Option<String>,
    pub(super) undocumented_codes: Option<Undocumented>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCode {
    pub(super) code: String,
    pub(super) verdict: Option<CodeVerdict>,
    pub(super) cause: Option<ErrorCause>,
    pub(super) meaning: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTestPoints {
    pub(super) listed: Option<OneOrMany>,
    pub(super) not_listed: Option<OneOrMany>,
    pub(super) source: Option<String>,
}

/// A test point or several: `listed = "127.0.0.2"` or `listed = ["127.0.0.2", "127.0.0.3"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) key: Option<String>,
    pub(super) key_template: Option<String>,
    pub(super) requires_key: Option<bool>,
    pub(super) max_qps: Option<f64>,
    pub(super) daily_limit: Option<u64>,
    pub(super) blocks_public_resolvers: Option<bool>,
    pub(super) key_portal: Option<String>,
    pub(super) notes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetired {
    pub(super) since: String,
    pub(super) reason: String,
}
