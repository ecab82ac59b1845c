//! Every shipped configuration and catalog file parses; `config check` works on files.

use crate::util::{fixtures, rblwatch, stderr, stdout};

#[test]
fn every_shipped_config_passes_config_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for e in std::fs::read_dir(root).unwrap().chain(
        std::fs::read_dir(root.join("examples"))
            .into_iter()
            .flatten(),
    ) {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".toml") && name.starts_with("rblwatch") {
            let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
            assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
            assert!(stdout(&o).contains("OK"), "{}", stdout(&o));
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn every_catalog_file_parses() {
    for dir in [
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lists.d"),
        fixtures().join("lists.d"),
    ] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&p).unwrap();
                let lists = rblwatch::catalog::parse_file(&p.display().to_string(), &text).unwrap();
                assert!(!lists.is_empty(), "{}", p.display());
            }
        }
    }
}

#[test]
fn config_check_rejects_unknown_key_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "[resolver]\ntimeout = \"2s\"\ntimout = \"3s\"\n").unwrap();
    let o = rblwatch(&["config", "check", "-C", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("bad.toml:3") && e.contains("timout"), "{e}");
}
