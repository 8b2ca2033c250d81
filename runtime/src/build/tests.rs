use super::*;
use crate::spec::ComponentSource;

fn python_component(root: &Path) -> ComponentSpec {
    ComponentSpec {
        name: "greet".into(),
        path: root.join("build/greet.wasm"),
        source: Some(ComponentSource { dir: root.join("tasks/greet"), lang: SourceLang::Python }),
    }
}

#[test]
fn a_source_component_is_fresh_only_when_built_from_its_current_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = python_component(tmp.path());
    std::fs::create_dir_all(tmp.path().join("tasks/greet/__pycache__")).unwrap();
    std::fs::write(tmp.path().join("tasks/greet/task.py"), "def run(ctx, params): return 1\n").unwrap();
    assert!(matches!(check_fresh(&spec), Err(BuildError::NotBuilt { .. })));

    std::fs::create_dir_all(tmp.path().join("build")).unwrap();
    std::fs::write(&spec.path, b"\0asm").unwrap();
    assert!(matches!(check_fresh(&spec), Err(BuildError::Stale { .. })), "no record: not trusted");
    std::fs::write(record_path(&spec.path), digest_of(&spec).unwrap()).unwrap();
    check_fresh(&spec).unwrap();

    // caches and hidden files are not sources
    std::fs::write(tmp.path().join("tasks/greet/__pycache__/task.pyc"), b"x").unwrap();
    std::fs::write(tmp.path().join("tasks/greet/.notes"), b"x").unwrap();
    check_fresh(&spec).unwrap();

    std::fs::write(tmp.path().join("tasks/greet/task.py"), "def run(ctx, params): return 2\n").unwrap();
    let err = check_fresh(&spec).unwrap_err().to_string();
    assert!(err.contains("changed since the last `sluice build`") && err.contains("tasks/greet"), "{err}");
}

#[test]
fn the_digest_covers_paths_bytes_and_language() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.py"), "x").unwrap();
    let python = source_digest(tmp.path(), SourceLang::Python).unwrap();
    assert_ne!(python, source_digest(tmp.path(), SourceLang::Rust).unwrap());
    std::fs::rename(tmp.path().join("a.py"), tmp.path().join("b.py")).unwrap();
    assert_ne!(python, source_digest(tmp.path(), SourceLang::Python).unwrap());
    assert!(source_digest(&tmp.path().join("missing"), SourceLang::Python).is_err());
}

#[test]
fn a_plain_wasm_component_needs_no_build() {
    let spec = ComponentSpec { name: "x".into(), path: "/nowhere/x.wasm".into(), source: None };
    check_fresh(&spec).unwrap();
}
