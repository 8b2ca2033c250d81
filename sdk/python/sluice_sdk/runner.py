"""A Python interpreter as a `wasi:cli/command` program: the engine for plain-script tasks.

    python.wasm SCRIPT [ARGS…]  |  -c CODE [ARGS…]  |  -m MODULE [ARGS…]

Built once (`python -m sluice_sdk.build --runner -o python.wasm`) from componentize-py's CPython.
While building it imports the whole standard library (`preload.preload_stdlib`), because a
component has no files at run time: a script can import any of it without a build step of its
own, and starts in milliseconds. Scripts and their data come from the task's mounts.

At run time it takes argv and the environment from `wasi:cli/environment`, runs the script as
`__main__`, and exits with the script's own status (`sys.exit(n)`, 1 for an uncaught exception
after its traceback on stderr) through `wasi:cli/exit.exit-with-code`.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback

from wit_world import exports
from wit_world.imports import environment
from wit_world.imports import exit as wasi_exit

from . import preload

USAGE = "usage: python SCRIPT [ARGS...] | -c CODE [ARGS...] | -m MODULE [ARGS...]"
LOADED, UNAVAILABLE = preload.preload_stdlib()


def _status(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    print(e.code, file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    """Run what `argv` (without the program name) asks for; the exit status."""
    try:
        if not argv or (argv[0] in ("-c", "-m") and len(argv) < 2):
            print(USAGE, file=sys.stderr)
            return 2
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        elif argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            runpy.run_path(argv[0], run_name="__main__")
        return 0
    except SystemExit as e:
        return _status(e)
    except BaseException:  # noqa: BLE001 - the script's failure is its exit status
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


class Run(exports.Run):
    def run(self) -> None:
        os.environ.clear()
        os.environ.update(dict(environment.get_environment()))
        status = main(list(environment.get_arguments()[1:]))
        if status != 0:
            wasi_exit.exit_with_code(status)
