//! `sluice validate` and `sluice schema`: a bundle checked without running, and the JSON
//! Schema of `sluice.toml` for editors.

use super::out::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{EXIT_ERROR, open, parse_param};
use crate::client::{TokensAnswer, TokensOp};
use crate::scheduler::{RuntimeOptions, STORE_DIR};
use crate::spec::{self, LoadOptions};
use crate::validate::Known;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Bundle directory (holding sluice.toml) or the bundle file itself.
    #[arg(default_value = ".")]
    pub bundle: PathBuf,
    /// The target to validate for (its variables, overrides and permissions) and variables.
    #[command(flatten)]
    pub read_as: ReadAs,
    /// Print `{"valid": …, "problems": [{"file","line","col","key","message","hint"}]}` on stdout
    /// (with --all-targets: `{"valid": …, "targets": [that, per target]}`).
    #[arg(long)]
    pub json: bool,
    /// Validate for every target the bundle declares (each with its own variables: a
    /// directory in one, a bucket in another), not only one.
    #[arg(long, conflicts_with = "target")]
    pub all_targets: bool,
}

/// Exit 0 when valid, 2 when not.
pub fn validate(state_arg: Option<PathBuf>, args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let opts = args.read_as.load_options();
    let principals = known_principals(state_arg, &args.bundle);
    if principals.is_none() && !args.json {
        errln!("note: permissions' principals not checked: no sluice state here yet (no tokens to check them against)");
    }
    if args.all_targets {
        return all_targets(&args, &opts, principals.as_ref());
    }
    let report = crate::validate::validate(&args.bundle, &opts, principals.as_ref());
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.valid {
        match &report.target {
            Some(target) => outln!("{}: valid for target {target}", args.bundle.display()),
            None => outln!("{}: valid (no target: name one with --target)", args.bundle.display()),
        }
    } else {
        for problem in &report.problems {
            errln!("{problem}");
        }
        errln!("{} problem{} found", report.problems.len(), if report.problems.len() == 1 { "" } else { "s" });
    }
    Ok(if report.valid { ExitCode::SUCCESS } else { ExitCode::from(EXIT_ERROR) })
}

/// `--all-targets`: one report per declared target; valid when every one is.
fn all_targets(args: &ValidateArgs, opts: &LoadOptions, known: Option<&Known>) -> anyhow::Result<ExitCode> {
    let targets = crate::validate::declared_targets(&args.bundle).map_err(|e| anyhow::anyhow!(e))?;
    let names: Vec<Option<String>> = match targets.is_empty() {
        true => vec![None],
        false => targets.into_iter().map(Some).collect(),
    };
    let mut reports = Vec::new();
    for target in names {
        let opts = LoadOptions { target: target.clone(), ..opts.clone() };
        let mut report = crate::validate::validate(&args.bundle, &opts, known);
        report.target = report.target.or(target);
        reports.push(report);
    }
    let valid = reports.iter().all(|r| r.valid);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&serde_json::json!({ "valid": valid, "targets": reports }))?);
    }
    for report in reports.iter().filter(|_| !args.json) {
        let target = report.target.as_deref().unwrap_or("(none)");
        match report.valid {
            true => outln!("{}: valid for target {target}", args.bundle.display()),
            false => report.problems.iter().for_each(|p| errln!("target {target}: {p}")),
        }
    }
    Ok(if valid { ExitCode::SUCCESS } else { ExitCode::from(EXIT_ERROR) })
}

/// Token principals and groups in the state directory's store (read through its owner)
/// and whoever runs this; `None` when there is no state to read.
fn known_principals(state_arg: Option<PathBuf>, bundle: &std::path::Path) -> Option<Known> {
    let dir = state_arg.unwrap_or_else(|| crate::validate::default_state_dir(bundle));
    if !dir.join(STORE_DIR).exists() {
        return None;
    }
    let options = open::owner_options(crate::secrets::DEFAULT_WORKSPACE, RuntimeOptions::default());
    let asked = open::with_session(&dir, options, move |session| {
        Box::pin(async move {
            let client = session.client();
            Ok((client.tokens(TokensOp::List).await?, client.tokens(TokensOp::Groups).await?))
        })
    });
    let mut known = Known::default();
    match asked {
        Ok((TokensAnswer::Listed(tokens), TokensAnswer::Groups(groups))) => {
            known.principals.extend(tokens.into_iter().map(|t| t.principal));
            for group in groups {
                known.principals.extend(group.members);
                known.groups.insert(group.name);
            }
        }
        Ok(_) => {}
        Err(e) => {
            errln!("note: could not read the tokens in {}: {e}; principals not checked", dir.display());
            return None;
        }
    }
    known.principals.extend(open::principal());
    Some(known)
}

/// `sluice schema`: the JSON Schema of `sluice.toml` on stdout.
pub fn schema() -> anyhow::Result<ExitCode> {
    outln!("{}", serde_json::to_string_pretty(&spec::json_schema())?);
    Ok(ExitCode::SUCCESS)
}

/// `--target T --var NAME=VALUE…`: which target's variables a bundle is read with.
#[derive(Debug, Args)]
pub struct ReadAs {
    /// The target whose variables (and overrides) the bundle is read with.
    #[arg(long, env = "SLUICE_TARGET")]
    pub target: Option<String>,
    /// Set a bundle variable: --var name=value (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_param)]
    pub vars: Vec<(String, String)>,
}

impl ReadAs {
    /// These, with `SLUICE_VAR_*` from the environment.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions::new(self.target.clone(), self.vars.clone(), std::env::vars())
    }
}
