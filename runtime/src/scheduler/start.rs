//! Starting a queued task, by kind: a component attempt in the sandbox, a
//! condition evaluated in place, a for_each expanded into iterations, a
//! run_job started as a child run.

use std::collections::BTreeMap;

use crate::model::{Event, RunView, TaskResult, TaskState};
use crate::sandbox::{AttemptContext, Command, Limits, TaskContext};
use crate::spec::template::Part;
use crate::spec::{CommandSpec, Stdin, TaskKind, TaskSpec};

use super::attempt::{self, AttemptInputs};
use super::caching::Prepared;
use super::exec::{Done, Exec, Slot};
use super::params::{self, Scope};
use super::{RunOptions, SchedulerError, plan};

impl Exec {
    /// Start slot `i`. `Ok(false)`: no free sandbox slot yet; try again later.
    pub(crate) fn start(&mut self, i: usize) -> Result<bool, SchedulerError> {
        match self.slots[i].spec.kind.clone() {
            TaskKind::Component { component } => self.start_component(i, &component, None),
            TaskKind::Command(command) => {
                let component = command.component.clone();
                self.start_component(i, &component, Some(command))
            }
            TaskKind::Condition { op, left, right } => {
                let attempt = self.begin(i)?;
                let rendered = self.render(i, attempt, &left).and_then(|l| Ok((l, self.render(i, attempt, &right)?)));
                let verdict = rendered.and_then(|(l, r)| op.evaluate(&l, &r).map(|v| (l, r, v)));
                match verdict {
                    Ok((l, r, v)) => {
                        let output = serde_json::json!({ "outcome": v, "left": l, "right": r }).to_string();
                        self.finish_inline(i, attempt, TaskResult::Success, Some(output), None, Some(v))?;
                    }
                    Err(e) => {
                        self.finish_inline(i, attempt, TaskResult::Failed, None, Some(format!("condition: {e}")), None)?
                    }
                }
                Ok(true)
            }
            TaskKind::ForEach { inputs, concurrency, template } => {
                let attempt = self.begin(i)?;
                let items = self.render(i, attempt, &inputs).and_then(|text| parse_inputs(&text));
                let items = match items {
                    Ok(items) => items,
                    Err(e) => {
                        self.finish_inline(
                            i,
                            attempt,
                            TaskResult::Failed,
                            None,
                            Some(format!("for_each inputs: {e}")),
                            None,
                        )?;
                        return Ok(true);
                    }
                };
                let key = self.slots[i].spec.key.clone();
                self.append(Event::IterationsPlanned { task: key.clone(), inputs: items.clone(), at: self.now() })?;
                self.add_iterations(i, &items, concurrency as usize, &template)?;
                if items.is_empty() {
                    let output = serde_json::json!({ "iterations": 0, "succeeded": 0, "failed": 0 }).to_string();
                    self.finish_inline(i, attempt, TaskResult::Success, Some(output), None, None)?;
                }
                Ok(true)
            }
            TaskKind::RunJob { job, parameters } => {
                let attempt = self.begin(i)?;
                let mut rendered = BTreeMap::new();
                for (k, v) in &parameters {
                    match self.render(i, attempt, v) {
                        Ok(v) => {
                            rendered.insert(k.clone(), v);
                        }
                        Err(e) => {
                            self.finish_inline(
                                i,
                                attempt,
                                TaskResult::Failed,
                                None,
                                Some(format!("run_job parameter `{k}`: {e}")),
                                None,
                            )?;
                            return Ok(true);
                        }
                    }
                }
                let key = self.slots[i].spec.key.clone();
                let child_plan = plan::child(&self.plan, &job, self.journal.run(), &key)?;
                let child = self.rt.store.next_run_id()?;
                self.append(Event::ChildRunStarted { task: key, child, at: self.now() })?;
                self.journal.flush()?;
                let rt = self.rt.clone();
                let components = self.components.clone();
                let opts = RunOptions { cancel: self.run_cancel.clone(), ..self.opts.clone() };
                let target = self.target.clone();
                let handle = self.running.spawn(async move {
                    let result = rt.run_child(child, child_plan, components, rendered, target, opts).await;
                    Done::Child { slot: i, attempt, result }
                });
                self.running_ids.insert(handle.id(), (i, attempt));
                Ok(true)
            }
        }
    }

    /// Append `AttemptStarted` for slot `i`; returns the attempt number.
    fn begin(&mut self, i: usize) -> Result<u32, SchedulerError> {
        let attempt = self.slots[i].next_attempt;
        self.slots[i].next_attempt += 1;
        self.slots[i].state = TaskState::Running;
        self.append(Event::AttemptStarted { task: self.slots[i].spec.key.clone(), attempt, at: self.now() })?;
        Ok(attempt)
    }

    fn finish_inline(
        &mut self,
        i: usize,
        attempt: u32,
        result: TaskResult,
        output: Option<String>,
        error: Option<String>,
        outcome: Option<bool>,
    ) -> Result<(), SchedulerError> {
        self.slots[i].outcome = outcome;
        self.record_finished(i, attempt, result, output, error, outcome)?;
        self.ended(i, result)
    }

    fn scope(&self, i: usize, attempt: u32) -> Scope<'_> {
        Scope {
            job: &self.plan.job,
            parameters: &self.parameters,
            run_id: self.journal.run(),
            started: self.logical_start,
            attempt,
            task: &self.slots[i].spec.key,
            input: self.slots[i].input.as_deref(),
            store: &*self.rt.store,
        }
    }

    fn render(&self, i: usize, attempt: u32, text: &str) -> Result<String, String> {
        params::render(text, &self.scope(i, attempt))
    }

    fn start_component(
        &mut self,
        i: usize,
        component: &str,
        command: Option<CommandSpec>,
    ) -> Result<bool, SchedulerError> {
        let Ok(permit) = self.rt.slots.clone().try_acquire_owned() else { return Ok(false) };
        let attempt = self.slots[i].next_attempt;
        let spec = self.slots[i].spec.clone();
        let rendered = params::render_all(&spec.exec.params, &self.scope(i, attempt))
            .and_then(|p| Ok((p, command.map(|c| self.render_command(i, attempt, c)).transpose()?)));
        let attempt = self.begin(i)?;
        let (params, command) = match rendered {
            Ok(p) => p,
            Err(e) => {
                self.finish_inline(i, attempt, TaskResult::Failed, None, Some(e), None)?;
                return Ok(true);
            }
        };
        let Some(loaded) = self.components.get(component).cloned() else {
            let e = format!("component `{component}` was not loaded for this run");
            self.finish_inline(i, attempt, TaskResult::Failed, None, Some(e), None)?;
            return Ok(true);
        };
        let limits = limits_of(&spec, &self.plan);
        let prepared = match self.prepare_cache(i, attempt, &loaded.hash, &params, &limits, command.as_ref()) {
            Ok(p) => p,
            Err(e) => {
                self.finish_inline(
                    i,
                    attempt,
                    TaskResult::Failed,
                    None,
                    Some(format!("preparing the attempt: {e}")),
                    None,
                )?;
                return Ok(true);
            }
        };
        let (pending, inputs, random_seed) = match prepared {
            Prepared::Hit(entry) => {
                drop(permit);
                self.record_hit(i, attempt, *entry)?;
                return Ok(true);
            }
            Prepared::Run { pending, inputs, seed } => (pending, inputs, seed),
        };
        let out_dir = pending.out_dir.clone();
        self.pending_cache.insert((i, attempt), *pending);
        let context = AttemptContext {
            task: TaskContext {
                job: self.plan.job.name.clone(),
                run_id: self.journal.run().to_string(),
                task_key: spec.key.clone(),
                attempt,
                target: self.target.clone(),
            },
            run: self.journal.run(),
            principal: self.plan.principal.clone(),
            workspace: self.plan.workspace.clone(),
            logical_start: self.logical_start,
            cancel: self.run_cancel.clone(),
            store: self.rt.store.clone(),
            secrets: self.rt.secrets.clone(),
        };
        let given =
            AttemptInputs { params, readable: self.upstream_closure(i), inputs, out: out_dir, seed: random_seed };
        let invocation = attempt::invocation(context, limits, &spec, given);
        self.running_components += 1;
        // the slot is given back when the coordinator has recorded the attempt, so
        // finished-but-unrecorded attempts count against the bound too
        self.permits.insert((i, attempt), permit);
        let sandbox = self.rt.sandbox.clone();
        let handle = self.running.spawn(async move {
            let outcome = match command {
                Some(command) => sandbox.run_command(&loaded, invocation, command).await,
                None => sandbox.run(&loaded, invocation).await,
            };
            Done::Attempt { slot: i, attempt, outcome }
        });
        self.running_ids.insert(handle.id(), (i, attempt));
        Ok(true)
    }

    /// A command task's args, env and stdin with every reference filled in.
    fn render_command(&self, i: usize, attempt: u32, c: CommandSpec) -> Result<Command, String> {
        let scope = self.scope(i, attempt);
        let args = c
            .args
            .iter()
            .enumerate()
            .map(|(n, a)| params::render(a, &scope).map_err(|e| format!("args[{n}]: {e}")))
            .collect::<Result<_, _>>()?;
        let mut env = Vec::new();
        let mut secret_env = Vec::new();
        for (k, v) in &c.env {
            // secret references stay parts: the sandbox reveals them (audited) at start
            let parts = params::render_parts(v, &scope).map_err(|e| format!("env {k}: {e}"))?;
            match parts.as_slice() {
                [] => env.push((k.clone(), String::new())),
                [Part::Text(text)] => env.push((k.clone(), text.clone())),
                _ => secret_env.push((k.clone(), parts)),
            }
        }
        let stdin = match c.stdin {
            None => None,
            Some(Stdin::Text(text)) => {
                Some(params::render(&text, &scope).map_err(|e| format!("stdin: {e}"))?.into_bytes())
            }
            Some(Stdin::File(path)) => Some(read_stdin_file(&path)?),
        };
        Ok(Command { args, env, secret_env, stdin, stdout_is_output: c.stdout_is_output })
    }

    /// Every task slot `i` depends on, directly or transitively (for an
    /// iteration: its parent's upstreams).
    pub(crate) fn upstream_closure(&self, i: usize) -> std::collections::BTreeSet<String> {
        let start = self.slots[i].parent.unwrap_or(i);
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<String> = self.slots[start].spec.upstream_keys().map(str::to_string).collect();
        while let Some(key) = stack.pop() {
            if let Some(&u) = self.index.get(&key)
                && seen.insert(key)
            {
                stack.extend(self.slots[u].spec.upstream_keys().map(str::to_string));
            }
        }
        seen
    }

    /// Create the iteration slots of for_each slot `p` and release the first ones.
    pub(crate) fn add_iterations(
        &mut self,
        p: usize,
        items: &[String],
        concurrency: usize,
        template: &crate::spec::ForEachTemplate,
    ) -> Result<(), SchedulerError> {
        let key = self.slots[p].spec.key.clone();
        self.slots[p].concurrency = concurrency.max(1);
        for (n, item) in items.iter().enumerate() {
            let spec = template.iteration(&key, n);
            let idx = self.slots.len();
            self.index.insert(spec.key.clone(), idx);
            self.slots.push(Slot::new(spec, Some(p), Some(item.clone())));
            self.dependents.push(Vec::new());
            self.slots[p].iterations.push(idx);
        }
        let first = self.slots[p].concurrency.min(items.len());
        for n in 0..first {
            let idx = self.slots[p].iterations[n];
            self.slots[p].released += 1;
            self.queue(idx)?;
        }
        Ok(())
    }

    /// A child run (run_job) ended.
    pub(crate) fn child_done(
        &mut self,
        i: usize,
        attempt: u32,
        result: Result<RunView, SchedulerError>,
    ) -> Result<(), SchedulerError> {
        let (result, output, error) = match result {
            Ok(view) => {
                let r = view.result.map(|r| r.as_str()).unwrap_or("unfinished");
                let output = serde_json::json!({ "run_id": view.run_id, "result": r }).to_string();
                match view.result {
                    Some(x) if x.is_success() => (TaskResult::Success, Some(output), None),
                    Some(crate::model::RunResult::Canceled) => {
                        (TaskResult::Canceled, Some(output), Some(format!("child run {} was canceled", view.run_id)))
                    }
                    Some(crate::model::RunResult::TimedOut) => {
                        (TaskResult::TimedOut, Some(output), Some(format!("child run {} timed out", view.run_id)))
                    }
                    _ => (TaskResult::Failed, Some(output), Some(format!("child run {} ended {r}", view.run_id))),
                }
            }
            Err(e) => (TaskResult::Failed, None, Some(format!("child run: {e}"))),
        };
        self.finish_inline(i, attempt, result, output, error, None)
    }
}

/// The sandbox limits of a task: its own, else its job's timeout, else defaults.
/// The sandbox limits of a task: its own, else its job's, else its target's, else the runtime's.
pub(crate) fn limits_of(spec: &TaskSpec, plan: &crate::model::RunPlan) -> Limits {
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
pub(crate) fn max_out_of(spec: &TaskSpec, plan: &crate::model::RunPlan) -> Option<u64> {
    spec.exec.limits.max_out.or(plan.job.limits.max_out).or(plan.target_limits.max_out)
}

/// Largest file a command task may take on stdin: stdin is held in memory.
pub const MAX_STDIN_FILE_BYTES: u64 = 64 << 20;

fn read_stdin_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path).map_err(|e| format!("stdin_file {}: {e}", path.display()))?.len();
    if len > MAX_STDIN_FILE_BYTES {
        return Err(format!("stdin_file {} is {len} bytes, over the limit of {MAX_STDIN_FILE_BYTES}", path.display()));
    }
    std::fs::read(path).map_err(|e| format!("stdin_file {}: {e}", path.display()))
}

/// for_each inputs: a JSON array; strings are passed as-is, anything else as JSON text.
fn parse_inputs(text: &str) -> Result<Vec<String>, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(items)) => Ok(items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect()),
        Ok(_) => Err(format!("`{}` is not a JSON array", ellipsize(text))),
        Err(e) => Err(format!("`{}` is not JSON: {e}", ellipsize(text))),
    }
}

fn ellipsize(s: &str) -> String {
    if s.len() > 80 { format!("{}…", &s[..s.floor_char_boundary(80)]) } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_json_arrays() {
        assert_eq!(parse_inputs("[1, \"a\", {\"b\":2}]").unwrap(), vec!["1", "a", "{\"b\":2}"]);
        assert!(parse_inputs("{}").unwrap_err().contains("not a JSON array"));
        assert!(parse_inputs("[1,").unwrap_err().contains("not JSON"));
    }
}
