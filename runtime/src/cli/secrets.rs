//! `sluice secrets …` and `sluice audit`: requests to the state directory's owner, which
//! does them in its [`crate::secrets::Vault`].
//!
//! Owns the choice of principal (`SLUICE_PRINCIPAL`, else the OS user), how a
//! value is read (stdin or `--from-file`, never an argument that would land in
//! shell history or `ps`), and how scopes, secrets, ACLs and the audit trail
//! are printed. It never prints a value and holds no rule a library user
//! would need: permissions, sealing and auditing live in the vault.

use super::out::{errln, outln};
use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use super::open::{self, PRINCIPAL_ENV};
use crate::client::{OwnerOptions, SecretsAnswer, SecretsOp};
use crate::model::Millis;
use crate::scheduler::RuntimeOptions;
use crate::secrets::{AuditFilter, DEFAULT_WORKSPACE, ExposeSecret as _, Permission, ScopeId, SecretString};

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create, list and delete scopes (a scope belongs to a workspace and a target).
    #[command(subcommand)]
    Scopes(ScopesCommand),
    /// Store a new version of a secret. The value is read from stdin (one trailing
    /// newline dropped) or from --from-file (as is), never from an argument.
    Put(PutArgs),
    /// List a scope's secrets: names, versions and times, never values.
    List(ScopeArgs),
    /// Delete a secret with every version of it.
    Delete(KeyArgs),
    /// Who may read, write or manage a scope.
    #[command(subcommand)]
    Acl(AclCommand),
    /// The audit trail: every reveal, every denial, every change.
    Audit(AuditArgs),
}

/// Which scope: its name, workspace and target.
#[derive(Debug, Args)]
pub struct Place {
    /// The deployment target the scope belongs to (runs of other targets cannot read it).
    #[arg(long, default_value = "dev")]
    pub target: String,
    /// The workspace the scope belongs to.
    #[arg(long, default_value = DEFAULT_WORKSPACE, env = "SLUICE_WORKSPACE")]
    pub workspace: String,
}

#[derive(Debug, Subcommand)]
pub enum ScopesCommand {
    /// Create a scope; you get manage on it.
    Create(ScopeArgs),
    /// List scopes and your permission on each.
    List(ScopesListArgs),
    /// Delete a scope with all its secrets and grants (needs manage).
    Delete(ScopeArgs),
}

#[derive(Debug, Args)]
pub struct ScopeArgs {
    pub scope: String,
    #[command(flatten)]
    pub place: Place,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ScopesListArgs {
    /// Only scopes of this target.
    #[arg(long)]
    pub target: Option<String>,
    /// Only scopes of this workspace.
    #[arg(long)]
    pub workspace: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    pub scope: String,
    pub key: String,
    /// Read the value from this file (its bytes as they are) instead of stdin.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    #[command(flatten)]
    pub place: Place,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    pub scope: String,
    pub key: String,
    #[command(flatten)]
    pub place: Place,
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Give a principal read, write or manage (needs manage).
    Put(AclPutArgs),
    /// Show who holds what (needs read).
    List(ScopeArgs),
    /// Take a principal's permission away (needs manage).
    Delete(AclDeleteArgs),
}

#[derive(Debug, Args)]
pub struct AclPutArgs {
    pub scope: String,
    pub principal: String,
    /// read, write or manage.
    pub permission: Permission,
    #[command(flatten)]
    pub place: Place,
}

#[derive(Debug, Args)]
pub struct AclDeleteArgs {
    pub scope: String,
    pub principal: String,
    #[command(flatten)]
    pub place: Place,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only records of this scope.
    #[arg(long)]
    pub scope: Option<String>,
    /// Only records of this run.
    #[arg(long)]
    pub run: Option<u64>,
    /// Only records of this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only records of this principal.
    #[arg(long)]
    pub principal: Option<String>,
    /// Only denials.
    #[arg(long)]
    pub denied: bool,
    /// Only the last N records.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

fn required_principal() -> anyhow::Result<String> {
    open::principal().ok_or_else(|| anyhow::anyhow!("cannot tell who you are: set {PRINCIPAL_ENV} (or USER)"))
}

/// Ask the owner of the state directory (`create`: it may be new) to do `op`, as the
/// command's principal in `workspace`.
fn ask(state_arg: Option<PathBuf>, create: bool, workspace: &str, op: SecretsOp) -> anyhow::Result<SecretsAnswer> {
    let dir = open::state_dir(state_arg, &std::env::current_dir()?);
    if !create && !dir.join(crate::scheduler::STORE_DIR).exists() {
        anyhow::bail!("no sluice state in {} (no secrets there yet); pass --state DIR", dir.display());
    }
    let who = required_principal()?;
    let options = OwnerOptions { principal: who, ..open::owner_options(workspace, RuntimeOptions::default()) };
    open::with_session(&dir, options, move |session| Box::pin(async move { Ok(session.client().secrets(op).await?) }))
}

fn scope_id(scope: &str, place: &Place) -> anyhow::Result<ScopeId> {
    Ok(ScopeId::new(&place.workspace, &place.target, scope)?)
}

pub fn secrets(state_arg: Option<PathBuf>, cmd: SecretsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretsCommand::Scopes(cmd) => scopes(state_arg, cmd),
        SecretsCommand::Put(args) => put(state_arg, args),
        SecretsCommand::List(args) => {
            let id = scope_id(&args.scope, &args.place)?;
            let SecretsAnswer::Secrets(listed) = ask(state_arg, false, &args.place.workspace, SecretsOp::List(id))?
            else {
                anyhow::bail!("unexpected answer");
            };
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&listed)?);
            } else if listed.is_empty() {
                outln!("scope {} has no secrets", args.scope);
            } else {
                outln!("{:<24} {:>7} {:>8}  {:<20}  {:<20}  BY", "KEY", "VERSION", "VERSIONS", "CREATED", "UPDATED");
                for s in &listed {
                    outln!(
                        "{:<24} {:>7} {:>8}  {:<20}  {:<20}  {}",
                        s.key,
                        s.version,
                        s.versions,
                        when(s.created_at),
                        when(s.updated_at),
                        s.updated_by
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SecretsCommand::Delete(args) => {
            let scope = scope_id(&args.scope, &args.place)?;
            ask(state_arg, false, &args.place.workspace, SecretsOp::Delete { scope, key: args.key.clone() })?;
            outln!("deleted {}/{} with every version", args.scope, args.key);
            Ok(ExitCode::SUCCESS)
        }
        SecretsCommand::Acl(cmd) => acl(state_arg, cmd),
        SecretsCommand::Audit(args) => audit(state_arg, args),
    }
}

fn scopes(state_arg: Option<PathBuf>, cmd: ScopesCommand) -> anyhow::Result<ExitCode> {
    let who = required_principal()?;
    match cmd {
        ScopesCommand::Create(args) => {
            let id = scope_id(&args.scope, &args.place)?;
            ask(state_arg, true, &args.place.workspace, SecretsOp::CreateScope(id.clone()))?;
            outln!("created scope {id}; {who} has manage");
        }
        ScopesCommand::List(args) => {
            let workspace = args.workspace.clone().unwrap_or_else(|| DEFAULT_WORKSPACE.into());
            let op = SecretsOp::Scopes { workspace: args.workspace.clone(), target: args.target.clone() };
            let SecretsAnswer::Scopes(listed) = ask(state_arg, false, &workspace, op)? else {
                anyhow::bail!("unexpected answer");
            };
            if args.json {
                let rows: Vec<_> = listed
                    .iter()
                    .map(|(s, p)| serde_json::json!({ "scope": s.id.name, "workspace": s.id.workspace, "target": s.id.target, "created_at": s.created_at, "created_by": s.created_by, "permission": p }))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&rows)?);
            } else if listed.is_empty() {
                outln!("no scopes");
            } else {
                outln!("{:<24} {:<12} {:<16} {:<8}  CREATED BY", "SCOPE", "TARGET", "WORKSPACE", "YOU");
                for (s, p) in &listed {
                    let you = p.map_or("-", |p| p.as_str());
                    outln!(
                        "{:<24} {:<12} {:<16} {:<8}  {} {}",
                        s.id.name,
                        s.id.target,
                        s.id.workspace,
                        you,
                        when(s.created_at),
                        s.created_by
                    );
                }
            }
        }
        ScopesCommand::Delete(args) => {
            let id = scope_id(&args.scope, &args.place)?;
            ask(state_arg, false, &args.place.workspace, SecretsOp::DeleteScope(id.clone()))?;
            outln!("deleted scope {id} with its secrets and grants");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn put(state_arg: Option<PathBuf>, args: PutArgs) -> anyhow::Result<ExitCode> {
    let id = scope_id(&args.scope, &args.place)?;
    let value = read_value(args.from_file.as_deref(), &args.scope, &args.key)?;
    let op = SecretsOp::Put { scope: id.clone(), key: args.key.clone(), value: value.expose_secret().to_string() };
    let SecretsAnswer::Version(version) = ask(state_arg, true, &args.place.workspace, op)? else {
        anyhow::bail!("unexpected answer");
    };
    outln!("stored {}/{} version {version} in scope {id}", args.scope, args.key);
    Ok(ExitCode::SUCCESS)
}

/// The value: a file's bytes as they are, or stdin without one trailing newline.
fn read_value(file: Option<&Path>, scope: &str, key: &str) -> anyhow::Result<SecretString> {
    let mut bytes = Zeroizing::new(Vec::new());
    match file {
        Some(path) => {
            let mut f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            f.read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                errln!("value of {scope}/{key} (end with Ctrl-D; it is not echoed anywhere but this terminal):");
            }
            stdin.lock().read_to_end(&mut bytes).context("cannot read the value from stdin")?;
            if bytes.ends_with(b"\n") {
                bytes.pop();
                if bytes.ends_with(b"\r") {
                    bytes.pop();
                }
            }
        }
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow::anyhow!("the value is not UTF-8 text (secrets are revealed to tasks as strings)"))?;
    Ok(SecretString::from(text.to_owned()))
}

fn acl(state_arg: Option<PathBuf>, cmd: AclCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AclCommand::Put(a) => {
            let scope = scope_id(&a.scope, &a.place)?;
            let op = SecretsOp::AclPut { scope, principal: a.principal.clone(), permission: a.permission };
            ask(state_arg, false, &a.place.workspace, op)?;
            outln!("{} has {} on scope {}", a.principal, a.permission, a.scope);
        }
        AclCommand::List(a) => {
            let op = SecretsOp::AclList(scope_id(&a.scope, &a.place)?);
            let SecretsAnswer::Acl(entries) = ask(state_arg, false, &a.place.workspace, op)? else {
                anyhow::bail!("unexpected answer");
            };
            if a.json {
                outln!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                outln!("{:<32} PERMISSION", "PRINCIPAL");
                for e in &entries {
                    outln!("{:<32} {}", e.principal, e.permission);
                }
            }
        }
        AclCommand::Delete(a) => {
            let scope = scope_id(&a.scope, &a.place)?;
            ask(state_arg, false, &a.place.workspace, SecretsOp::AclDelete { scope, principal: a.principal.clone() })?;
            outln!("{} has no permission on scope {} any more", a.principal, a.scope);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sluice audit` / `sluice secrets audit`.
pub fn audit(state_arg: Option<PathBuf>, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let filter = AuditFilter {
        scope: args.scope,
        run: args.run,
        task: args.task,
        principal: args.principal,
        denied_only: args.denied,
    };
    let dir = open::existing_dir(state_arg)?;
    let options = open::owner_options(DEFAULT_WORKSPACE, RuntimeOptions::default());
    let mut records = open::with_session(&dir, options, move |session| {
        Box::pin(async move { Ok(session.client().audit(filter).await?) })
    })?;
    if let Some(n) = args.last {
        records.drain(..records.len().saturating_sub(n));
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        outln!("no audit records");
    }
    for r in &records {
        let name = match &r.key {
            Some(k) => format!("{}/{k}", r.scope),
            None => r.scope.clone(),
        };
        let by_run = match (r.run, &r.task) {
            (Some(run), Some(task)) => format!(" run {run} task {task} attempt {}", r.attempt.unwrap_or(0)),
            _ => String::new(),
        };
        let verdict = if r.granted { "ok    " } else { "DENIED" };
        let via = r.via.as_ref().map(|v| format!(" via {v}")).unwrap_or_default();
        outln!(
            "{} {verdict} {:<12} {name} ({}) by {}{via}{by_run}: {}",
            when(r.at),
            r.action.as_str(),
            r.target,
            r.principal,
            r.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn when(at: Millis) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(at)).to_string()
}
