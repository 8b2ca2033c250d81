//! `sluice new task NAME --lang python|rust`: a new task's directory from the SDK's templates
//! (`sdk/templates/`, embedded in the binary; its README lists the placeholders). The
//! directory appears whole or not at all.

use std::path::{Component, Path, PathBuf};

use crate::spec::SourceLang;

const PYTHON: &[(&str, &str)] = &[
    ("task.py", include_str!("../../../sdk/templates/python/task.py")),
    ("test_task.py", include_str!("../../../sdk/templates/python/test_task.py")),
    ("requirements.txt", include_str!("../../../sdk/templates/python/requirements.txt")),
];

const RUST: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../../sdk/templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("../../../sdk/templates/rust/src/lib.rs")),
];

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("bad task name `{0}`: use lowercase letters, digits, `-` and `_`, starting with a letter")]
    Name(String),
    #[error("{} already exists and is not empty: choose another name or --dir", .0.display())]
    Exists(PathBuf),
    #[error("{0}")]
    Sdk(String),
    #[error("writing {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
}

/// Writes the task `name` in `lang` into `dir` (which must not exist or be empty); a Rust
/// task's `Cargo.toml` points at `sdk` by a path relative to `dir`. Returns the files written.
pub fn new_task(name: &str, lang: SourceLang, dir: &Path, sdk: Option<&Path>) -> Result<Vec<PathBuf>, ScaffoldError> {
    let good = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !good {
        return Err(ScaffoldError::Name(name.to_string()));
    }
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(ScaffoldError::Exists(dir.to_path_buf()));
    }
    let dir = absolute(dir);
    let sdk_path = match (lang, sdk) {
        (SourceLang::Rust, None) => {
            return Err(ScaffoldError::Sdk(
                "a Rust task needs the sluice SDK: set SLUICE_SDK=/path/to/sluice/sdk".into(),
            ));
        }
        (SourceLang::Rust, Some(sdk)) => relative(&dir, &absolute(sdk)).to_string_lossy().into_owned(),
        (SourceLang::Python, _) => String::new(),
    };
    let module = name.replace('-', "_");
    let fill =
        |text: &str| text.replace("{{name}}", name).replace("{{module}}", &module).replace("{{sdk_path}}", &sdk_path);
    let files = if lang == SourceLang::Python { PYTHON } else { RUST };
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| ScaffoldError::Io { path: path.clone(), message: e.to_string() }
    };
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let staging = tempfile::Builder::new().prefix(".sluice-new-").tempdir_in(parent).map_err(io(parent))?;
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = staging.path().join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(io(p))?;
        }
        std::fs::write(&path, fill(text)).map_err(io(&path))?;
        written.push(dir.join(rel));
    }
    if dir.exists() {
        std::fs::remove_dir(&dir).map_err(io(&dir))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, &dir).map_err(io(&dir))?;
    Ok(written)
}

fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `to` as seen from `from` (both absolute and normalised).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let (a, b): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out: PathBuf = std::iter::repeat_n("..", a.len() - common).collect();
    out.extend(&b[common..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_task_is_written_whole_with_its_name() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tasks/greet-me");
        let files = new_task("greet-me", SourceLang::Python, &dir, None).unwrap();
        assert_eq!(files.len(), 3);
        let task = std::fs::read_to_string(dir.join("task.py")).unwrap();
        assert!(task.contains("greet-me: a sluice task") && task.contains("greet_me.wasm"), "{task}");
        assert!(!task.contains("{{"), "{task}");
        assert!(matches!(new_task("greet-me", SourceLang::Python, &dir, None), Err(ScaffoldError::Exists(_))));
        assert!(matches!(
            new_task("Bad", SourceLang::Python, &tmp.path().join("b"), None),
            Err(ScaffoldError::Name(_))
        ));
    }

    #[test]
    fn a_rust_task_points_at_the_sdk_relatively() {
        let tmp = tempfile::tempdir().unwrap();
        let sdk = tmp.path().join("repo/sdk");
        new_task("adder", SourceLang::Rust, &tmp.path().join("b/tasks/adder"), Some(&sdk)).unwrap();
        let cargo = std::fs::read_to_string(tmp.path().join("b/tasks/adder/Cargo.toml")).unwrap();
        assert!(cargo.contains(r#"path = "../../../repo/sdk""#), "{cargo}");
        let none = new_task("adder", SourceLang::Rust, &tmp.path().join("c"), None);
        assert!(matches!(none, Err(ScaffoldError::Sdk(_))));
        assert!(!tmp.path().join("c").exists());
    }
}
