//! `sluice build` (the bundle's source components into `build/NAME.wasm`) and
//! `sluice new task` (a task scaffolded from the SDK's templates).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use super::out::{errln, outln};
use super::{EXIT_ERROR, EXIT_RUN_FAILED};
use crate::build::{self, Tools, scaffold};
use crate::spec::{self, SourceLang};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Bundle directory (holding sluice.toml) or the bundle file itself.
    #[arg(default_value = ".")]
    pub bundle: PathBuf,
    /// Build only this component.
    #[arg(long, value_name = "NAME")]
    pub component: Option<String>,
    /// Rebuild even components whose sources are unchanged.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub read_as: super::validate::ReadAs,
    /// Print one JSON object per component on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum NewCommand {
    /// A new task: its code, a native test and what its language builds with.
    Task(NewTaskArgs),
}

#[derive(Debug, Args)]
pub struct NewTaskArgs {
    /// The task's name (lowercase letters, digits, `-`, `_`).
    pub task: String,
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// Where to write it (default: tasks/NAME).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Lang {
    Python,
    Rust,
}

/// Exit 0 when every component is built or up to date, 1 when a build failed, 2 bad input.
pub fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let bundle = spec::load_with(&args.bundle, &args.read_as.load_options())?;
    let selected = build::selected(&bundle, args.component.as_deref())?;
    if selected.is_empty() {
        errln!(
            "{}: no component is built from source (`{{ path = \"tasks/x\", lang = \"python\" }}`)",
            bundle.file.display()
        );
    }
    let tools = Tools::discover();
    let mut failed = 0;
    for spec in selected {
        if !args.json {
            errln!(
                "building `{}` from {}",
                spec.name,
                spec.source.as_ref().map(|s| s.dir.display().to_string()).unwrap_or_default()
            );
        }
        match build::build(spec, &tools, args.force) {
            Ok(built) if args.json => outln!("{}", serde_json::to_string(&built)?),
            Ok(built) => outln!(
                "{}: {} ({} → {}, blake3 {}, {} ms)",
                built.component,
                built.outcome,
                built.lang,
                built.artifact.display(),
                &built.hash[..16],
                built.millis
            ),
            Err(e) => {
                failed += 1;
                errln!("error: {e}");
            }
        }
    }
    Ok(if failed > 0 { ExitCode::from(EXIT_RUN_FAILED) } else { ExitCode::SUCCESS })
}

pub fn new(cmd: NewCommand) -> anyhow::Result<ExitCode> {
    let NewCommand::Task(args) = cmd;
    let lang = match args.lang {
        Lang::Python => SourceLang::Python,
        Lang::Rust => SourceLang::Rust,
    };
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("tasks").join(&args.task));
    let tools = Tools::discover();
    let files = match scaffold::new_task(&args.task, lang, &dir, tools.sdk.as_deref()) {
        Ok(files) => files,
        Err(e) => {
            errln!("error: {e}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    for f in &files {
        outln!("{}", f.display());
    }
    errln!(
        "add it to the bundle's [components]:  {} = {{ path = \"{}\", lang = \"{}\" }}\nthen `sluice build`",
        args.task,
        dir.display(),
        lang.as_str()
    );
    Ok(ExitCode::SUCCESS)
}
