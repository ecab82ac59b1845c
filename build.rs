//! Embeds every `lists.d/*.toml` and `replies.d/*.toml` in the binary so the
//! shipped catalogs travel with it; `src/catalog/shipped.rs` and
//! `src/replies/shipped.rs` include the generated tables.
use std::fmt::Write;

/// Writes `OUT_DIR/<out>`: an array of `(file name, include_str!(…))` for the
/// `*.toml` files of `dir`, sorted by name (the order is meaningful for
/// `replies.d`, where the first matching rule wins).
fn embed(dir: &str, out: &str) {
    println!("cargo:rerun-if-changed={dir}");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".toml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut text = String::from("&[\n");
    for n in &names {
        println!("cargo:rerun-if-changed={dir}/{n}");
        let _ = writeln!(
            text,
            "    ({n:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/{dir}/{n}\"))),"
        );
    }
    text.push(']');
    let dest =
        std::path::Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join(out);
    if let Err(e) = std::fs::write(&dest, text) {
        panic!("cannot write {}: {e}", dest.display());
    }
}

fn main() {
    embed("lists.d", "shipped_lists.rs");
    embed("replies.d", "shipped_replies.rs");
}
