//! Serde mirror of a `replies.d/*.toml` file. Nothing here is validated; see
//! [`super::ReplyCatalog`], which checks every value and compiles the patterns.

use serde::Deserialize;

use super::ReplyMeaning;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) receiver: Vec<RawReceiver>,
    #[serde(default)]
    pub(super) reply: Vec<RawReply>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReceiver {
    pub(super) id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) relays: Vec<String>,
    pub(super) sender_page: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReply {
    pub(super) id: String,
    pub(super) receiver: Option<String>,
    pub(super) pattern: String,
    pub(super) meaning: ReplyMeaning,
    pub(super) list: Option<String>,
    pub(super) note: Option<String>,
    pub(super) source: String,
    #[serde(default)]
    pub(super) refs: Vec<String>,
    #[serde(default)]
    pub(super) examples: Vec<String>,
}
