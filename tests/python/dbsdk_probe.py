#!/usr/bin/env python3
"""Drive ``sluice serve`` with the official Databricks SDK for Python (the Jobs API 2.2).

Run by tests/tests/python_clients.rs against a real server; setup pins the SDK version.

Acceptance flow: list jobs, run one with parameters and wait, read a task's output,
repair a failed run, cancel a running one. Written against databricks-sdk 0.162.0.

Environment:
  DATABRICKS_HOST   e.g. http://127.0.0.1:8080 (scheme REQUIRED; without it the SDK adds https://)
  DATABRICKS_TOKEN  the bearer token sluice accepts
  PROBE_JOB         name of a job that succeeds (default "etl")
  PROBE_PARAMS      JSON object of job parameters for it (default {"date":"2024-05-01"})
  PROBE_FAILING_JOB name of a job that fails with its default parameters (default "flaky")
  PROBE_REPAIR_PARAMS JSON job_parameters sent with the repair so it succeeds (default {"fail":"false"})
  PROBE_LONG_JOB    name of a job that runs long enough to be canceled (default "long")

Every SDK call below is one or more plain HTTP requests; the comments name them. All
requests carry `Authorization: Bearer $DATABRICKS_TOKEN` except the config probe.
Exits 0 and prints "PROBE OK" when every check passes; raises on the first failure.
"""

import json
import os
import sys
import time
from datetime import timedelta

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import NotFound
from databricks.sdk.service.jobs import RunLifeCycleState, RunResultState

WAIT = timedelta(minutes=3)


def client() -> WorkspaceClient:
    # Config(...) makes exactly ONE request while constructing, without auth:
    #   GET {host}/.well-known/databricks-config   (best effort; any failure is only a logged WARNING)
    # auth_type="pat" pins the credentials chain to the bearer token: no OAuth discovery, no
    # ~/.databrickscfg, no cloud metadata, and no "more than one auth method" error if other
    # DATABRICKS_*/ARM_* variables happen to be set. retry_timeout_seconds caps the SDK's retry
    # loop (connection refused, 429, 503 are retried until this deadline; default 300 s).
    cfg = Config(
        host=os.environ["DATABRICKS_HOST"],
        token=os.environ["DATABRICKS_TOKEN"],
        auth_type="pat",
        retry_timeout_seconds=30,
        http_timeout_seconds=30,
    )
    return WorkspaceClient(config=cfg)


def job_ids_by_name(w: WorkspaceClient) -> dict:
    # GET /api/2.2/jobs/list                      (no query params by default)
    # GET /api/2.2/jobs/list?page_token=<next>    repeated while the response has a non-empty next_page_token
    jobs = list(w.jobs.list())
    assert jobs, "jobs.list returned no jobs"
    ids = {}
    for j in jobs:
        assert j.job_id is not None and j.settings is not None and j.settings.name, f"incomplete job {j}"
        ids[j.settings.name] = j.job_id
    return ids


def wait_until_running(w: WorkspaceClient, run_id: int) -> None:
    # GET /api/2.2/jobs/runs/get?run_id=<id>   polled until state.life_cycle_state == RUNNING
    deadline = time.time() + WAIT.total_seconds()
    while time.time() < deadline:
        run = w.jobs.get_run(run_id)
        if run.state.life_cycle_state == RunLifeCycleState.RUNNING:
            return
        assert run.state.life_cycle_state not in (RunLifeCycleState.TERMINATED, RunLifeCycleState.SKIPPED), (
            f"run {run_id} ended before it could be canceled: {run.state}"
        )
        time.sleep(0.5)
    raise TimeoutError(f"run {run_id} never reached RUNNING")


def main() -> None:
    w = client()
    ids = job_ids_by_name(w)
    job_name = os.environ.get("PROBE_JOB", "etl")
    params = json.loads(os.environ.get("PROBE_PARAMS", '{"date": "2024-05-01"}'))
    failing = os.environ.get("PROBE_FAILING_JOB", "flaky")
    repair_params = json.loads(os.environ.get("PROBE_REPAIR_PARAMS", '{"fail": "false"}'))
    long_job = os.environ.get("PROBE_LONG_JOB", "long")
    for name in (job_name, failing, long_job):
        assert name in ids, f"job {name!r} not listed; have {sorted(ids)}"

    # GET /api/2.2/jobs/get?job_id=<id>   (repeated with page_token while next_page_token is set)
    job = w.jobs.get(ids[job_name])
    assert job.settings.name == job_name and job.settings.tasks, "jobs.get: settings.name/tasks missing"

    # 1. Run with parameters and wait.
    # POST /api/2.2/jobs/run-now {"job_id": <id>, "job_parameters": {...}}  -> {"run_id": N, "number_in_job": N}
    # .result(): GET /api/2.2/jobs/runs/get?run_id=N, sleeping 1,2,..,10 s (+jitter) between polls,
    #   until state.life_cycle_state is TERMINATED or SKIPPED (INTERNAL_ERROR raises OperationFailed).
    waiter = w.jobs.run_now(job_id=ids[job_name], job_parameters=params)
    run_id = waiter.run_id  # taken from the run-now response before any polling
    run = waiter.result(timeout=WAIT)
    assert run.run_id == run_id
    assert run.state.life_cycle_state == RunLifeCycleState.TERMINATED, run.state
    assert run.state.result_state == RunResultState.SUCCESS, f"run {run_id}: {run.state}"
    assert run.tasks and all(t.run_id and t.task_key for t in run.tasks), "run has no task runs"
    used = {p.name: p.value for p in run.job_parameters}
    for k, v in params.items():
        assert used.get(k) == v, f"job_parameters not applied: {k}={used.get(k)!r}, wanted {v!r}"

    # 2. Output of each task run (get-output takes a TASK run id for multi-task runs).
    # GET /api/2.2/jobs/runs/get-output?run_id=<task run id>
    for t in run.tasks:
        out = w.jobs.get_run_output(t.run_id)
        assert out.metadata is not None and out.metadata.run_id == t.run_id, "get-output: metadata.run_id"
        value = out.notebook_output.result if out.notebook_output else None
        assert value is not None or out.logs is not None, f"task {t.task_key}: no output and no logs"
        print(f"  output {t.task_key}: {value!r}")

    # 3. Unknown run id -> HTTP 404 {"error_code":"RESOURCE_DOES_NOT_EXIST",...} -> ResourceDoesNotExist (a NotFound).
    # GET /api/2.2/jobs/runs/get?run_id=9007199254740991
    try:
        w.jobs.get_run(9007199254740991)
        raise AssertionError("get_run of an unknown run id did not raise")
    except NotFound as e:
        assert e.error_code == "RESOURCE_DOES_NOT_EXIST", e.error_code

    # 4. A failed run, then repair it.
    failed = w.jobs.run_now(job_id=ids[failing]).result(timeout=WAIT)
    assert failed.state.result_state == RunResultState.FAILED, f"expected FAILED, got {failed.state}"
    bad = [t.task_key for t in failed.tasks if t.state.result_state != RunResultState.SUCCESS]
    print(f"  run {failed.run_id} failed; not successful: {bad}")
    # POST /api/2.2/jobs/runs/repair {"run_id": N, "rerun_all_failed_tasks": true, "job_parameters": {...}}
    #   -> {"repair_id": R}.  The server must have moved the run out of TERMINATED before it answers:
    # .result() polls GET /api/2.2/jobs/runs/get?run_id=N (no include_history) exactly as for run-now.
    rwait = w.jobs.repair_run(run_id=failed.run_id, rerun_all_failed_tasks=True, job_parameters=repair_params)
    repair_id = rwait.response.repair_id
    assert repair_id is not None, "repair response has no repair_id"
    repaired = rwait.result(timeout=WAIT)
    assert repaired.state.result_state == RunResultState.SUCCESS, f"repair did not succeed: {repaired.state}"
    # GET /api/2.2/jobs/runs/get?run_id=N&include_history=true
    hist = w.jobs.get_run(failed.run_id, include_history=True).repair_history
    assert [h.type.value for h in hist] == ["ORIGINAL", "REPAIR"], hist
    assert hist[-1].id == repair_id

    # 5. Cancel a running run.
    # POST /api/2.2/jobs/run-now {"job_id": <long>}
    long_run_id = w.jobs.run_now(job_id=ids[long_job]).run_id
    wait_until_running(w, long_run_id)
    # POST /api/2.2/jobs/runs/cancel {"run_id": N}  -> {} ; then .result() polls runs/get like run-now.
    canceled = w.jobs.cancel_run(long_run_id).result(timeout=WAIT)
    assert canceled.state.life_cycle_state == RunLifeCycleState.TERMINATED, canceled.state
    assert canceled.state.result_state == RunResultState.CANCELED, canceled.state

    # 6. List runs of the job (all pages).
    # GET /api/2.2/jobs/runs/list?job_id=<id>   then ...&page_token=<next> while next_page_token is non-empty
    listed = [r.run_id for r in w.jobs.list_runs(job_id=ids[job_name])]
    assert run_id in listed, f"run {run_id} missing from list_runs {listed}"
    # GET /api/2.2/jobs/runs/list?active_only=true
    active = [r.run_id for r in w.jobs.list_runs(active_only=True)]
    assert long_run_id not in active, "a canceled run is still listed as active"

    print("PROBE OK")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line for the test log, then the traceback
        print(f"PROBE FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        raise
