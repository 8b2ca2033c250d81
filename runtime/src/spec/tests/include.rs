//! `include = [...]`: bundles split over several files.

use super::*;
use crate::spec::load;

/// A bundle directory with `sluice.toml` (HEAD + `top`) and the given extra files.
fn tree(top: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("sluice.toml"), format!("{top}\n{HEAD}")).expect("write");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

const JOB_B: &str = "[jobs.b]\n[[jobs.b.tasks]]\nkey = \"t\"\ncomponent = \"ingest\"\n";

#[test]
fn included_files_add_jobs_components_and_variables() {
    let extra = "[variables]\nlake = { default = \"l\" }\n[components]\nthird = \"third.wasm\"\n\
                 [jobs.a]\nparameters = { at = \"${var.lake}\" }\n[[jobs.a.tasks]]\nkey = \"t\"\ncomponent = \"third\"\n";
    let dir =
        tree("include = [\"jobs/*.toml\"]", &[("jobs/a.toml", extra), ("jobs/b.toml", JOB_B), ("jobs/x.txt", "no")]);
    let bundle = load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bundle.jobs.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(bundle.jobs["a"].parameters["at"], "l");
    assert!(bundle.components.contains_key("third") && bundle.components.contains_key("ingest"));
    let shown: Vec<String> = bundle.includes.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(shown.len(), 2);
    assert!(shown[0].ends_with("jobs/a.toml") && shown[1].ends_with("jobs/b.toml"), "{shown:?}");
}

#[test]
fn an_error_in_an_included_file_names_that_file_and_line() {
    let bad = format!("{JOB_B}timout = \"1s\"\n");
    let dir = tree("include = [\"jobs/*.toml\"]", &[("jobs/b.toml", &bad)]);
    let error = load(dir.path()).unwrap_err();
    let shown = error.to_string();
    assert!(shown.contains("jobs/b.toml:5:1: jobs.b.tasks[0].timout: unknown key"), "{shown}");
    let dir = tree("include = [\"jobs/*.toml\"]", &[("jobs/b.toml", "[jobs.b]\ntasks = [\n")]);
    let shown = load(dir.path()).unwrap_err().to_string();
    assert!(shown.contains("jobs/b.toml:") && shown.contains("TOML syntax error"), "{shown}");
}

#[test]
fn a_name_in_two_files_is_refused_naming_both() {
    let dir = tree(&format!("include = [\"more.toml\"]\n{JOB_B}"), &[("more.toml", JOB_B)]);
    let shown = load(dir.path()).unwrap_err().to_string();
    assert!(shown.contains("more.toml:1:") && shown.contains("`b` is defined twice"), "{shown}");
    assert!(shown.contains("sluice.toml:2"), "names the first file and line: {shown}");
}

#[test]
fn included_files_hold_only_mergeable_tables_and_patterns_stay_inside() {
    let dir = tree("include = [\"more.toml\"]", &[("more.toml", "[bundle]\nname = \"x\"\n")]);
    let shown = load(dir.path()).unwrap_err().to_string();
    assert!(shown.contains("more.toml:1:") && shown.contains("bundle: unknown key"), "{shown}");
    let dir = tree("include = [\"nothing/*.toml\"]", &[]);
    let shown = load(dir.path()).unwrap_err().to_string();
    assert!(shown.contains("sluice.toml:1:") && shown.contains("matches no file"), "{shown}");
    let dir = tree("include = [\"../*.toml\"]", &[]);
    assert!(load(dir.path()).unwrap_err().to_string().contains("stay inside it"));
    let dir = tree("include = [\"*.toml\"]", &[]);
    assert!(load(dir.path()).is_ok(), "the bundle file itself is skipped");
}
