#!/usr/bin/env python3
"""The Databricks SDK for Python reads every task of a run with more tasks than one page.

Run by tests/tests/python_clients.rs against ``sluice serve``. Jobs API 2.2 pages a run's
``tasks`` (and a job's ``settings.tasks``) by 100 with ``next_page_token``; the SDK's
``jobs.get_run`` and ``jobs.get`` follow the tokens and append the pages. 2.1 does not page.

Environment: DATABRICKS_HOST, DATABRICKS_TOKEN, WIDE_JOB (a job name), WIDE_TASKS (how many
tasks it has). Prints "WIDE OK" when every check passes; raises on the first failure.
"""

import os
from datetime import timedelta

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.service.jobs import RunResultState

PAGE = 100


def check(cond, what):
    if not cond:
        raise SystemExit(f"WIDE FAILED: {what}")


def main():
    w = WorkspaceClient(config=Config(host=os.environ["DATABRICKS_HOST"], token=os.environ["DATABRICKS_TOKEN"],
                                      auth_type="pat", retry_timeout_seconds=30))
    name, n = os.environ["WIDE_JOB"], int(os.environ["WIDE_TASKS"])
    [job] = [j for j in w.jobs.list(name=name)]
    # GET jobs/get, then again with page_token while next_page_token is present
    settings = w.jobs.get(job.job_id).settings
    check(len(settings.tasks) == n, f"jobs.get read {len(settings.tasks)} tasks, not {n}")
    check(len({t.task_key for t in settings.tasks}) == n, "jobs.get read some tasks twice")
    run = w.jobs.run_now(job.job_id).result(timeout=timedelta(minutes=5))
    check(run.state.result_state == RunResultState.SUCCESS, f"the run ended {run.state}")
    # GET runs/get, then again with page_token while next_page_token is present
    full = w.jobs.get_run(run.run_id, include_history=True)
    keys = [t.task_key for t in full.tasks]
    check(len(keys) == n, f"get_run read {len(keys)} tasks, not {n}")
    check(len(set(keys)) == n, "get_run read some tasks twice")
    check(len(full.job_parameters or []) == len(run.job_parameters or []), "job parameters repeated by the pages")
    check(len(full.repair_history) == 1, f"repair history repeated by the pages: {len(full.repair_history)}")
    # one page of 2.2 as it is on the wire; 2.1 answers every task at once
    first = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": run.run_id})
    check(len(first["tasks"]) == PAGE and first.get("next_page_token") == str(PAGE), f"2.2 page 1: {len(first['tasks'])}")
    last_start = PAGE * ((n - 1) // PAGE)
    last = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": run.run_id, "page_token": str(last_start)})
    check(len(last["tasks"]) == n - last_start and "next_page_token" not in last, "2.2's last page")
    old = w.api_client.do("GET", "/api/2.1/jobs/runs/get", query={"run_id": run.run_id})
    check(len(old["tasks"]) == n and "next_page_token" not in old, "2.1 pages nothing")
    print("WIDE OK")


if __name__ == "__main__":
    main()
