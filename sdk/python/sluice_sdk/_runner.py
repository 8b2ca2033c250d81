"""The glue between a task's `run` and the host, shared by the component export and the tests.

`run_task` calls `run(ctx, params)` (or `run(ctx)`), serializes what it returns as the task's
JSON output and turns every exception into a `TaskError`: `Transient`/`Permanent` as raised,
anything else `Permanent` with the exception's type, message and line (`errors.describe`), its
traceback printed to stderr (the attempt's log). A task's exception is never a trap.
"""

from __future__ import annotations

import inspect
import sys
import traceback
from typing import Any, Callable

from . import _json
from .context import Context
from .errors import TaskError, to_task_error
from .params import Params


def wants_params(run: Callable[..., Any]) -> bool:
    """True if `run` takes `(ctx, params)`, False for `(ctx)`."""
    try:
        sig = inspect.signature(run)
    except (TypeError, ValueError):
        return True
    positional = [
        p for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)


def check_task(module: Any) -> Callable[..., Any]:
    """The module's `run`, or a TypeError saying what is missing."""
    run = getattr(module, "run", None)
    if not callable(run):
        raise TypeError(f"task module `{module.__name__}` has no `run(ctx, params)` function")
    return run


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream must not fail the task
            pass


def run_task(run: Callable[..., Any], ctx: Context, with_params: "bool | None" = None) -> str:
    """Run one attempt: the JSON output text, or raise a `TaskError`. `with_params`: whether
    `run` takes `(ctx, params)` (the component works it out once, at build time)."""
    if with_params is None:
        with_params = wants_params(run)
    try:
        out = run(ctx, Params()) if with_params else run(ctx)
        return _json.dumps(out, "task output")
    except TaskError:
        raise
    except BaseException as e:  # noqa: BLE001 - every failure becomes a task error, never a trap
        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
        raise to_task_error(e) from None
    finally:
        _flush()
