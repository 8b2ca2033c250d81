//! An attempt's sandbox invocation from its execution spec, and the limits it runs with:
//! the one place a component or command attempt's grants are derived, for attempts an
//! executor runs and for `sluice verify`'s re-executions alike.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::model::RunPlan;
use crate::sandbox::{AttemptContext, Grants, Invocation, Limits, files, http, random, secrets, values};
use crate::spec::{ExecSpec, TaskSpec};

/// What an attempt gets besides its spec's grants: resolved params, the tasks whose
/// values it may read, the upstream `/in` directories, its `/out` and its random seed.
pub(crate) struct AttemptInputs {
    pub params: BTreeMap<String, String>,
    pub readable: crate::sandbox::values::Readable,
    pub inputs: Vec<(String, PathBuf)>,
    pub out: Option<PathBuf>,
    pub seed: Option<[u8; 32]>,
}

/// The invocation of an attempt that executes `exec`.
pub(crate) fn invocation(context: AttemptContext, limits: Limits, exec: &ExecSpec, given: AttemptInputs) -> Invocation {
    let grants = Grants {
        params: given.params,
        values: values::Grant { readable: given.readable },
        secrets: secrets::Grant { names: exec.secrets.clone(), inject: exec.inject.clone(), held: Vec::new() },
        files: files::Grant { mounts: exec.mounts.clone(), inputs: given.inputs, out: given.out },
        http: http::Grant { allow_hosts: exec.allow_hosts.clone() },
        random: random::Grant { seed: given.seed },
        ..Grants::default()
    };
    Invocation { context, limits, grants }
}

/// The sandbox limits of a task: its own, else its job's, else its target's, else the
/// runtime's, key by key (the timeout: its own, else its job's).
pub(crate) fn limits_of(spec: &TaskSpec, plan: &RunPlan) -> Limits {
    let d = Limits::default();
    let (t, j, g) = (&spec.exec.limits, &plan.job.limits, &plan.target_limits);
    Limits {
        memory: t.memory.or(j.memory).or(g.memory).unwrap_or(d.memory),
        timeout: spec.timeout.or(plan.job.timeout).unwrap_or(d.timeout),
        max_log: t.max_log.or(j.max_log).or(g.max_log).unwrap_or(d.max_log),
        max_output: t.max_output.or(j.max_output).or(g.max_output).unwrap_or(d.max_output),
        fuel: t.fuel.or(j.fuel).or(g.fuel),
    }
}

/// A task's `/out` byte limit: its own, else its job's, else its target's; `None` = unlimited.
pub(crate) fn max_out_of(spec: &TaskSpec, plan: &RunPlan) -> Option<u64> {
    spec.exec.limits.max_out.or(plan.job.limits.max_out).or(plan.target_limits.max_out)
}
