//! `scripts/check-layers` itself: the two holes it used to have are closed.
//! It reads whole files (an import below `#[cfg(test)]` counts) and rejects
//! circles between the files of one folder.

use std::path::Path;
use std::process::Command;

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lib = "pub mod event;\npub mod store;\npub mod web;\n";
    std::fs::create_dir_all(dir.path().join("src/web")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), lib).unwrap();
    for (name, text) in [
        ("src/event.rs", ""),
        ("src/store.rs", "use crate::event::Event;\n"),
    ]
    .iter()
    .chain(files)
    {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn check(root: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-layers");
    let o = Command::new(script).arg(root).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn check_layers_reads_test_code_and_rejects_circles_between_files() {
    // one way: passes
    let ok = tree(&[
        ("src/web/mod.rs", "mod a;\nmod b;\nuse crate::store::x;\n"),
        ("src/web/a.rs", "use super::b::f;\n"),
        ("src/web/b.rs", "use super::WebState;\n"),
    ]);
    let (pass, err) = check(ok.path());
    assert!(pass, "{err}");

    // an import against the flow hidden below #[cfg(test)]
    let hidden = tree(&[
        ("src/web/mod.rs", ""),
        (
            "src/store.rs",
            "use crate::event::Event;\n#[cfg(test)]\nmod tests {\n    use crate::web::x;\n}\n",
        ),
    ]);
    let (pass, err) = check(hidden.path());
    assert!(!pass);
    assert!(err.contains("src/store.rs:4: store -> web"), "{err}");

    // a circle between two files of one folder
    let circle = tree(&[
        ("src/web/mod.rs", "mod a;\nmod b;\n"),
        ("src/web/a.rs", "use super::b::f;\n"),
        ("src/web/b.rs", "fn g() { crate::web::a::h() }\n"),
    ]);
    let (pass, err) = check(circle.path());
    assert!(!pass);
    assert!(
        err.contains("src/web: a circle between its files: a -> b -> a"),
        "{err}"
    );
}
