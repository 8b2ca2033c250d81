//! Starting a queued task, by kind: a component or command attempt goes to the executor
//! (`attempts.rs`); a condition is evaluated in place; a for_each renders its inputs and
//! plans its iterations (the state releases them); a run_job starts a child run.

use std::collections::BTreeMap;

use crate::model::{Event, RunView, TaskResult};
use crate::spec::TaskKind;
use crate::state::{InPlace, TaskId};

use super::coordinator::{Coordinator, Done};
use super::params::{self, RunLevel, Scope};
use super::{SchedulerError, plan};

impl Coordinator {
    /// Start task `id`. `Ok(false)`: no free sandbox slot yet; try again later.
    pub(crate) fn start(&mut self, id: TaskId) -> Result<bool, SchedulerError> {
        let Some(spec) = self.state.spec_shared(id) else {
            let attempt = self.begin(id)?;
            self.finish_in_place(id, attempt, InPlace::failed("the run's plan has no such task"))?;
            return Ok(true);
        };
        match &spec.kind {
            TaskKind::Component { .. } | TaskKind::Command(_) => return self.start_attempt(id, &spec),
            TaskKind::Condition { op, left, right } => {
                let attempt = self.begin(id)?;
                let rendered = self.render(id, attempt, left).and_then(|l| Ok((l, self.render(id, attempt, right)?)));
                let end = match rendered.and_then(|(l, r)| op.evaluate(&l, &r).map(|v| (l, r, v))) {
                    Ok((l, r, v)) => {
                        let output = serde_json::json!({ "outcome": v, "left": l, "right": r }).to_string();
                        InPlace { result: TaskResult::Success, output: Some(output), error: None, outcome: Some(v) }
                    }
                    Err(e) => InPlace::failed(format!("condition: {e}")),
                };
                self.finish_in_place(id, attempt, end)?;
            }
            TaskKind::ForEach { inputs, .. } => {
                let attempt = self.begin(id)?;
                match self.render(id, attempt, inputs).and_then(|text| parse_inputs(&text)) {
                    Ok(inputs) => {
                        let task = self.state.task(id).key.clone();
                        self.record(Event::IterationsPlanned { task, inputs, at: self.now() })?;
                    }
                    Err(e) => self.finish_in_place(id, attempt, InPlace::failed(format!("for_each inputs: {e}")))?,
                }
            }
            TaskKind::RunJob { job, parameters } => self.start_child(id, job, parameters)?,
        }
        Ok(true)
    }

    /// Record the start of task `id`'s next attempt; its number.
    pub(crate) fn begin(&mut self, id: TaskId) -> Result<u32, SchedulerError> {
        let attempt = self.state.next_attempt(id);
        let task = self.state.task(id).key.clone();
        self.record(Event::AttemptStarted { task, attempt, at: self.now() })?;
        Ok(attempt)
    }

    /// Record the end of an attempt that ran no guest code.
    pub(crate) fn finish_in_place(&mut self, id: TaskId, attempt: u32, end: InPlace) -> Result<(), SchedulerError> {
        let event = self.state.finished_in_place(id, attempt, end, self.now());
        self.record(event)
    }

    /// What references in task `id`'s text resolve against, for attempt `attempt`.
    pub(crate) fn scope(&self, id: TaskId, attempt: u32) -> Scope<'_> {
        Scope {
            run: self.run_level(),
            state: &self.state,
            attempt,
            task: &self.state.task(id).key,
            input: self.state.input(id),
            store: &*self.rt.store,
        }
    }

    /// What run-level references resolve against.
    pub(crate) fn run_level(&self) -> RunLevel<'_> {
        RunLevel::of(&self.plan, self.state.run_id(), self.logical_start())
    }

    fn render(&self, id: TaskId, attempt: u32, text: &str) -> Result<String, String> {
        params::render(text, &self.scope(id, attempt))
    }

    /// A run_job task: render its parameters and start the child run (flushed first: the
    /// child's id must not be lost).
    fn start_child(
        &mut self,
        id: TaskId,
        job: &str,
        parameters: &BTreeMap<String, String>,
    ) -> Result<(), SchedulerError> {
        let attempt = self.begin(id)?;
        let mut rendered = BTreeMap::new();
        for (k, v) in parameters {
            match self.render(id, attempt, v) {
                Ok(v) => rendered.insert(k.clone(), v),
                Err(e) => {
                    return self.finish_in_place(id, attempt, InPlace::failed(format!("run_job parameter `{k}`: {e}")));
                }
            };
        }
        let key = self.state.task(id).key.clone();
        let child_plan = plan::child(&self.plan, job, self.state.run_id(), &key)?;
        let child = self.rt.store.next_run_id()?;
        self.record(Event::ChildRunStarted { task: key, child, at: self.now() })?;
        self.journal.flush()?;
        let (rt, components, opts) = (self.rt.clone(), self.components.clone(), self.child_options());
        let target = self.state.view().target.clone();
        self.spawn(id, attempt, async move {
            let result = rt.run_child(child, child_plan, components, rendered, target, opts).await;
            Done::Child { task: id, attempt, result }
        });
        Ok(())
    }

    /// A child run (run_job) ended.
    pub(crate) fn child_done(
        &mut self,
        id: TaskId,
        attempt: u32,
        result: Result<RunView, SchedulerError>,
    ) -> Result<(), SchedulerError> {
        use crate::model::RunResult;
        let end = match result {
            Ok(view) => {
                let r = view.result.map(|r| r.as_str()).unwrap_or("unfinished");
                let output = Some(serde_json::json!({ "run_id": view.run_id, "result": r }).to_string());
                let (result, error) = match view.result {
                    Some(x) if x.is_success() => (TaskResult::Success, None),
                    Some(RunResult::Canceled) => {
                        (TaskResult::Canceled, Some(format!("child run {} was canceled", view.run_id)))
                    }
                    Some(RunResult::TimedOut) => {
                        (TaskResult::TimedOut, Some(format!("child run {} timed out", view.run_id)))
                    }
                    _ => (TaskResult::Failed, Some(format!("child run {} ended {r}", view.run_id))),
                };
                InPlace { result, output, error, outcome: None }
            }
            Err(e) => InPlace::failed(format!("child run: {e}")),
        };
        self.finish_in_place(id, attempt, end)
    }
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
