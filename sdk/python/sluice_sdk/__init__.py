"""sluice_sdk: write sluice tasks in Python.

A task is a module with a `run` function:

    from sluice_sdk import Context, Params, Permanent, Transient, checkpoint, files, secrets, values

    def run(ctx: Context, params: Params) -> dict:
        n = params.require("n", int)              # missing / not an int: Permanent error
        rows = files.read_text("extract", "rows.csv")   # /in/extract/rows.csv
        if not rows:
            raise Transient("no rows yet")       # retried per the task's policy
        values.set("count", n)                   # published for dependents
        files.write_json("summary.json", {"n": n})      # /out/summary.json
        return {"n": n}                          # the task's JSON output

`python -m sluice_sdk.build TASK_DIR -o task.wasm` makes it a component of the world
`sluice:task/task@0.1.0` (with componentize-py); `sluice_sdk.testing.MockHost` runs it natively
under pytest. Any exception other than `Transient`/`Permanent` fails the attempt permanently with
the exception's type and message. The SDK never touches the network, clocks or randomness
itself, and only touches files through the helpers a task calls.
"""

from . import checkpoint, files, http, params, secrets, values
from .context import Context
from .errors import Permanent, TaskError, Transient
from .params import Params

__all__ = [
    "Context",
    "Params",
    "Permanent",
    "TaskError",
    "Transient",
    "checkpoint",
    "files",
    "http",
    "params",
    "secrets",
    "values",
]
__version__ = "0.1.0"
