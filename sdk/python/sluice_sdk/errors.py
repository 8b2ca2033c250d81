"""Task errors: why an attempt failed, and whether retrying can help.

`Transient` failures may be retried by the scheduler (per the task's retry policy);
`Permanent` ones fail the attempt for good. Any other exception escaping `run` is turned into a
permanent error carrying the exception's type and message (see `describe`), never a trap.
"""

from __future__ import annotations

import json
import os
import traceback

# Frames in these directories are library code: an error is located at the task's own line.
_LIBRARY_DIRS = (
    os.path.dirname(os.path.dirname(os.path.abspath(json.__file__))) + os.sep,  # the standard library
    os.path.dirname(os.path.abspath(__file__)) + os.sep,  # this SDK
)


class TaskError(Exception):
    """Base of the two task errors; raise `Transient` or `Permanent`, not this."""

    transient = False

    def __init__(self, message: object = "") -> None:
        super().__init__(str(message))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def context(self, context: str) -> "TaskError":
        """The same kind of error with `"{context}: {message}"` as its message."""
        return type(self)(f"{context}: {self.message}")


class Transient(TaskError):
    """A failure that may go away on its own (a flaky dependency, a timeout): retried."""

    transient = True


class Permanent(TaskError):
    """A failure retrying cannot fix (bad params, malformed input, a denied secret)."""


def _is_library(filename: str) -> bool:
    if filename.startswith("<"):
        return filename.startswith("<frozen ")
    return os.path.abspath(filename).startswith(_LIBRARY_DIRS)


def describe(exc: BaseException) -> str:
    """`ValueError: bad row 3 (at etl.py:12 in parse)`: type, message and where it was raised.

    The location is the innermost frame of the task's own code (not the standard library's or
    the SDK's, e.g. the task line that called `open`, not `<frozen os>`), else the innermost
    frame; by file name only, so messages do not carry the build machine's paths.
    """
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__", None):
        name = f"{module}.{name}"
    text = str(exc)
    head = f"{name}: {text}" if text else name
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    own = [f for f in frames if not _is_library(f.filename)]
    if frames:
        last = (own or frames)[-1]
        file = last.filename.replace("\\", "/").rsplit("/", 1)[-1]
        head += f" (at {file}:{last.lineno} in {last.name})"
    return head


def to_task_error(exc: BaseException) -> TaskError:
    """`exc` as a task error: task errors as they are, anything else permanent (`describe`)."""
    if isinstance(exc, TaskError):
        return exc
    return Permanent(describe(exc))
