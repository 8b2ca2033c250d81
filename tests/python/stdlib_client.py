#!/usr/bin/env python3
"""Call `sluice serve` with nothing but Python's standard library (http.client, json).

A client written in another language than the server: run-now with parameters, runs/get
until the run ends, repair of a failed run, cancel of a running one, and the error shape
of a bad request. Exits 0 and prints "STDLIB OK" when every check passes.

Environment: SLUICE_URL (http://127.0.0.1:PORT), SLUICE_TOKEN, and the job ids
ETL_JOB, FLAKY_JOB, LONG_JOB.
"""

import http.client
import json
import os
import sys
import time
import urllib.parse

URL = urllib.parse.urlsplit(os.environ["SLUICE_URL"])
TOKEN = os.environ["SLUICE_TOKEN"]


def call(method, path, body=None):
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    return response.status, json.loads(text)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def wait(run_id, until):
    deadline = time.time() + 120
    while time.time() < deadline:
        status, run = call("GET", f"/api/2.2/jobs/runs/get?run_id={run_id}")
        check(status == 200, f"runs/get {run_id}: {status} {run}")
        if until(run["state"]):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached the wanted state")


def ended(state):
    return state["life_cycle_state"] in ("TERMINATED", "SKIPPED")


def main():
    etl, flaky, long = (int(os.environ[k]) for k in ("ETL_JOB", "FLAKY_JOB", "LONG_JOB"))

    status, answer = call("POST", "/api/2.2/jobs/run-now", {"job_id": etl, "job_parameters": {"date": "2025-01-31"}})
    check(status == 200 and "run_id" in answer, f"run-now: {status} {answer}")
    run = wait(answer["run_id"], ended)
    check(run["state"]["result_state"] == "SUCCESS", f"etl: {run['state']}")
    check({p["name"]: p["value"] for p in run["job_parameters"]}["date"] == "2025-01-31", "parameters")

    status, answer = call("POST", "/api/2.2/jobs/run-now", {"job_id": flaky})
    failed = wait(answer["run_id"], ended)
    check(failed["state"]["result_state"] == "FAILED", f"flaky: {failed['state']}")
    body = {"run_id": failed["run_id"], "rerun_all_failed_tasks": True, "job_parameters": {"fail": ""}}
    status, answer = call("POST", "/api/2.2/jobs/runs/repair", body)
    check(status == 200 and isinstance(answer.get("repair_id"), int), f"repair: {status} {answer}")
    repaired = wait(failed["run_id"], ended)
    check(repaired["state"]["result_state"] == "SUCCESS", f"repaired: {repaired['state']}")

    status, answer = call("POST", "/api/2.2/jobs/run-now", {"job_id": long})
    spinning = answer["run_id"]
    wait(spinning, lambda s: s["life_cycle_state"] == "RUNNING")
    status, answer = call("POST", "/api/2.2/jobs/runs/cancel", {"run_id": spinning})
    check(status == 200 and answer == {}, f"cancel: {status} {answer}")
    canceled = wait(spinning, ended)
    check(canceled["state"]["result_state"] == "CANCELED", f"canceled: {canceled['state']}")

    status, error = call("GET", "/api/2.2/jobs/runs/get?run_id=424242")
    check(status == 404 and error["error_code"] == "RESOURCE_DOES_NOT_EXIST", f"missing run: {status} {error}")
    status, error = call("POST", "/api/2.2/jobs/run-now", {"job_id": "etl"})
    check(status == 400 and "job_id" in error["message"], f"bad job_id: {status} {error}")
    print("STDLIB OK")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        print(f"STDLIB FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        raise
