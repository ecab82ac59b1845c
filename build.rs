//! Embeds every `lists.d/*.toml` in the binary so the shipped catalog travels
//! with it; `src/catalog/shipped.rs` includes the generated table.
use std::fmt::Write;

fn main() {
    println!("cargo:rerun-if-changed=lists.d");
    let mut names: Vec<String> = std::fs::read_dir("lists.d")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".toml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from("&[\n");
    for n in &names {
        println!("cargo:rerun-if-changed=lists.d/{n}");
        let _ = writeln!(
            out,
            "    ({n:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/lists.d/{n}\"))),"
        );
    }
    out.push(']');
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("shipped_lists.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}
