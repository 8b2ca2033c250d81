//! `sluice tokens create|list|revoke`: API tokens for `sluice serve`, made by the state
//! directory's owner. A token is printed once, at creation; only its hash is kept.

use super::out::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::{Args, Subcommand};

use crate::client::{TokensAnswer, TokensOp};

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token acting as a principal in one workspace (printed once).
    Create(CreateArgs),
    /// List tokens: ids, principals, workspaces, expiry (never the tokens).
    List(ListArgs),
    /// Revoke a token by its id (from `tokens list`).
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Who the token's requests act as (starts runs, reveals secrets).
    #[arg(long)]
    pub principal: String,
    /// The only workspace the token sees.
    #[arg(long, default_value = crate::secrets::DEFAULT_WORKSPACE, value_parser = super::parse_workspace)]
    pub workspace: String,
    /// Expire after this long (e.g. 30d, 12h); default: never.
    #[arg(long, value_parser = crate::spec::parse_duration)]
    pub expires: Option<Duration>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    pub id: String,
}

use super::groups::ask;

pub fn tokens(state_arg: Option<PathBuf>, cmd: TokensCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokensCommand::Create(a) => {
            let op = TokensOp::Create {
                principal: a.principal,
                workspace: a.workspace,
                expires_in_secs: a.expires.map(|d| d.as_secs().max(1)),
            };
            let TokensAnswer::Created(new) = ask(state_arg, op)? else { anyhow::bail!("unexpected answer") };
            if a.json {
                outln!("{}", serde_json::to_string_pretty(&new)?);
            } else {
                outln!("{}", new.token);
                errln!(
                    "token {} acts as {} in workspace {}{}; it is shown only now",
                    new.record.id,
                    new.record.principal,
                    new.record.workspace,
                    new.record.expires_at.map(|t| format!(", until {}", when(t))).unwrap_or_default()
                );
            }
        }
        TokensCommand::List(a) => {
            let TokensAnswer::Listed(tokens) = ask(state_arg, TokensOp::List)? else {
                anyhow::bail!("unexpected answer")
            };
            if a.json {
                outln!("{}", serde_json::to_string_pretty(&tokens)?);
            } else if tokens.is_empty() {
                outln!("no tokens");
            } else {
                outln!("{:<14} {:<20} {:<16} {:<20}  EXPIRES", "ID", "PRINCIPAL", "WORKSPACE", "CREATED");
                for t in &tokens {
                    let expires = t.expires_at.map_or_else(|| "never".to_string(), when);
                    outln!(
                        "{:<14} {:<20} {:<16} {:<20}  {expires}",
                        t.id,
                        t.principal,
                        t.workspace,
                        when(t.created_at)
                    );
                }
            }
        }
        TokensCommand::Revoke(a) => {
            ask(state_arg, TokensOp::Revoke(a.id.clone()))?;
            outln!("revoked token {}", a.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn when(at: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(at)).to_string()
}
