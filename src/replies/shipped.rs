//! The receiver-reply files shipped in `replies.d/`, embedded at build time by `build.rs`.

/// `(file name, TOML text)` of every shipped reply file, sorted by file name
/// (the order in which their rules are tried).
pub const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/shipped_replies.rs"));
