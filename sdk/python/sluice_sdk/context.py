"""The context handed to `run` on every attempt: who is running."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Context:
    """Job, run, task key, attempt (0 for the first, 1 for the first retry, ...) and target."""

    job: str = "job"
    run_id: str = "run"
    task_key: str = "task"
    attempt: int = 0
    target: str = "dev"
