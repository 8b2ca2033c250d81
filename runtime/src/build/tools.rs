//! Finding the build tools and the SDK a source component is built with.

use std::path::{Path, PathBuf};

/// The programs and the SDK `sluice build` uses; [`Tools::discover`] finds them.
#[derive(Debug, Clone)]
pub struct Tools {
    /// A Python with componentize-py (the venv `scripts/setup` makes, else `python3`).
    pub python: PathBuf,
    /// The SDK directory (`sdk/`: `python/sluice_sdk`, the Rust crate, `templates/`), if found.
    pub sdk: Option<PathBuf>,
    pub cargo: PathBuf,
}

impl Tools {
    /// `SLUICE_SDK`, `SLUICE_PYTHON` and `CARGO` when set; else the SDK of the repository
    /// this binary was built in (found from the executable, then from the build's source
    /// path), that repository's `target/pyenv` Python, and `cargo` on the `PATH`.
    pub fn discover() -> Tools {
        let sdk = std::env::var_os("SLUICE_SDK").map(PathBuf::from).or_else(find_sdk);
        let venv = sdk.as_deref().and_then(Path::parent).map(|repo| repo.join("target/pyenv/bin/python"));
        let python = std::env::var_os("SLUICE_PYTHON")
            .map(PathBuf::from)
            .or_else(|| venv.filter(|p| p.is_file()))
            .unwrap_or_else(|| PathBuf::from("python3"));
        let cargo = std::env::var_os("CARGO").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("cargo"));
        Tools { python, sdk, cargo }
    }

    /// The SDK directory, or an error saying how to name it.
    pub fn sdk(&self) -> Result<&Path, String> {
        self.sdk.as_deref().ok_or_else(|| {
            "the sluice SDK (the repository's `sdk/` directory) was not found: set SLUICE_SDK=/path/to/sluice/sdk"
                .to_string()
        })
    }
}

fn is_sdk(dir: &Path) -> bool {
    dir.join("python/sluice_sdk/__init__.py").is_file() && dir.join("Cargo.toml").is_file()
}

fn find_sdk() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let from_exe = exe.ancestors().skip(1).map(|d| d.join("sdk")).find(|d| is_sdk(d));
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    from_exe.or_else(|| is_sdk(&built_in).then(|| built_in.canonicalize().unwrap_or(built_in)))
}
