//! `sluice groups add|remove|list`: who belongs to which group, so that `group_name`
//! grants in a bundle's `permissions` reach their members. Kept by the state directory's
//! owner, changed only by its user (like tokens).

use super::out::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::open;
use crate::client::{TokensAnswer, TokensOp};
use crate::scheduler::RuntimeOptions;
use crate::store::GroupRecord;

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Add principals to a group (created by its first member).
    Add(MembersArgs),
    /// Remove principals from a group (a group left empty no longer exists).
    Remove(MembersArgs),
    /// Every group and its members.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct MembersArgs {
    /// The group, as `group_name` in `permissions` names it.
    pub group: String,
    /// Users or service principals.
    #[arg(required = true)]
    pub principals: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
}

/// Read or change the groups through the state directory's owner.
pub(crate) fn ask(state_arg: Option<PathBuf>, op: TokensOp) -> anyhow::Result<TokensAnswer> {
    let dir = open::state_dir(state_arg, &std::env::current_dir()?);
    let options = open::owner_options(crate::secrets::DEFAULT_WORKSPACE, RuntimeOptions::default());
    open::with_session(&dir, options, move |session| Box::pin(async move { Ok(session.client().tokens(op).await?) }))
}

pub fn groups(state_arg: Option<PathBuf>, cmd: GroupsCommand) -> anyhow::Result<ExitCode> {
    let (op, json) = match cmd {
        GroupsCommand::Add(a) => (TokensOp::Group { name: a.group, add: a.principals, remove: vec![] }, a.json),
        GroupsCommand::Remove(a) => (TokensOp::Group { name: a.group, add: vec![], remove: a.principals }, a.json),
        GroupsCommand::List(a) => (TokensOp::Groups, a.json),
    };
    match ask(state_arg, op)? {
        TokensAnswer::Group(group) if json => outln!("{}", serde_json::to_string_pretty(&group)?),
        TokensAnswer::Group(group) => print(&[group]),
        TokensAnswer::Groups(groups) if json => outln!("{}", serde_json::to_string_pretty(&groups)?),
        TokensAnswer::Groups(groups) if groups.is_empty() => outln!("no groups"),
        TokensAnswer::Groups(groups) => print(&groups),
        _ => anyhow::bail!("unexpected answer"),
    }
    Ok(ExitCode::SUCCESS)
}

fn print(groups: &[GroupRecord]) {
    for g in groups {
        let members: Vec<&str> = g.members.iter().map(String::as_str).collect();
        if members.is_empty() {
            outln!("{}: (no members; removed)", g.name);
        } else {
            outln!("{}: {}", g.name, members.join(", "));
        }
    }
}
