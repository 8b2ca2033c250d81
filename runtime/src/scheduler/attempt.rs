//! Building an attempt's sandbox invocation from its task's execution spec: the one
//! place a component or command attempt's grants are derived, for attempts the
//! coordinator starts and for `sluice verify`'s re-executions alike.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::sandbox::{AttemptContext, Grants, Invocation, Limits, files, http, random, secrets, values};
use crate::spec::TaskSpec;

/// What an attempt gets besides its spec's grants: resolved params, the tasks whose
/// values it may read, the upstream `/in` directories, its `/out` and its random seed.
pub(crate) struct AttemptInputs {
    pub params: BTreeMap<String, String>,
    pub readable: BTreeSet<String>,
    pub inputs: Vec<(String, PathBuf)>,
    pub out: Option<PathBuf>,
    pub seed: Option<[u8; 32]>,
}

/// The invocation of an attempt of `spec` (a component or command task, or an iteration).
pub(crate) fn invocation(context: AttemptContext, limits: Limits, spec: &TaskSpec, given: AttemptInputs) -> Invocation {
    let exec = &spec.exec;
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
