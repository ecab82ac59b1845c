//! The catalog files shipped in `lists.d/`, embedded at build time by `build.rs`.

/// `(file name, TOML text)` of every shipped catalog file.
pub const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/shipped_lists.rs"));
