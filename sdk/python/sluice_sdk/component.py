"""The component's export: the `sluice:task/task` world's `run`, wrapping a task module.

Used only inside a component, by the app module `sluice_sdk.build` generates:

    import sluice_sdk.component
    WitWorld = sluice_sdk.component.world("task")

`world` runs at build time (componentize-py's pre-initialisation): it imports everything the
task can reach (`preload`, which names the file and line of an import that cannot be met),
then the task module, installs the sluice host and returns the class componentize-py exports. Each `run` call converts the world's context, runs the task through `_runner.run_task`
and returns its JSON output, or `Err(task-error)` — never lets an exception trap.
"""

from __future__ import annotations

import importlib
import importlib.util

import wit_world
from componentize_py_types import Err

from . import _host, _runner, _wasm, preload
from .context import Context
from .errors import TaskError

try:
    from wit_world.imports.types import TaskError_Permanent, TaskError_Transient
except ImportError:  # worlds that also import wasi:http name the interface `sluice_task_types`
    from wit_world.imports.sluice_task_types import TaskError_Permanent, TaskError_Transient


def _as_err(error: TaskError) -> Err:
    variant = TaskError_Transient if error.transient else TaskError_Permanent
    return Err(variant(error.message))


def world(module: str) -> type:
    """The `WitWorld` class exporting `run` of the task module called `module`. Fails the
    build if the module is missing, has no `run`, or imports a module the component cannot
    carry."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise ImportError(f"no task module `{module}` on the build's path")
    preload.preload(spec.origin)
    run = _runner.check_task(importlib.import_module(module))
    with_params = _runner.wants_params(run)
    _host.install(_wasm.WasmHost())

    class WitWorld(wit_world.WitWorld):
        def run(self, ctx) -> str:  # noqa: ANN001 - the world's generated context type
            context = Context(ctx.job, ctx.run_id, ctx.task_key, ctx.attempt, ctx.target)
            try:
                return _runner.run_task(run, context, with_params)
            except TaskError as e:
                raise _as_err(e) from None

    return WitWorld
