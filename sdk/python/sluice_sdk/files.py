"""Files: upstream tasks' outputs under `/in/<task>/`, this task's outputs under `/out/`.

Inside the sandbox these are plain paths; in native tests a `MockHost` maps them (and any
mount it declares) to temporary directories. Going through these helpers is what lets the same
code run in both. Files written under `/out` are stored with the task's result and appear to
direct dependents read-only at `/in/<this task's key>/`.

`ensure_dir` is `os.makedirs(path, exist_ok=True)` that also works in the sandbox, where `/`
itself is not visible (only the mounts are), so `os.makedirs("/out", exist_ok=True)` fails there.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from . import _host, _json
from .errors import Permanent

IN = PurePosixPath("/in")
OUT = PurePosixPath("/out")


def _relative(name: str, what: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise Permanent(f"{what} `{name}` must be a relative path without `..`")
    return rel


def path(guest_path: "str | PurePosixPath") -> Path:
    """Where guest path `guest_path` (e.g. a mount's `/data/x.csv`) is for this host."""
    return Path(_host.current().resolve(PurePosixPath(guest_path)))


def in_dir(task: str) -> Path:
    """The directory holding upstream task `task`'s files."""
    return path(IN / _relative(task, "task key"))


def input(task: str, name: str) -> Path:  # noqa: A001 - the natural name
    """The path of file `name` written by upstream task `task` (existence not checked)."""
    return path(IN / _relative(task, "task key") / _relative(name, "file name"))


def inputs(task: str) -> list[str]:
    """Names (relative, `/`-separated, sorted) of every file upstream task `task` wrote."""
    root = in_dir(task)
    if not root.is_dir():
        return []
    found = []
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            found.append(Path(dirpath, n).relative_to(root).as_posix())
    return sorted(found)


def _open_input(task: str, name: str) -> Path:
    p = input(task, name)
    if not p.is_file():
        raise Permanent(
            f"upstream file `{task}/{name}` not found: is `{task}` in this task's depends_on, "
            f"and did it write /out/{name}?"
        )
    return p


def read_bytes(task: str, name: str) -> bytes:
    return _open_input(task, name).read_bytes()


def read_text(task: str, name: str, encoding: str = "utf-8") -> str:
    return _open_input(task, name).read_text(encoding=encoding)


def read_json(task: str, name: str) -> Any:
    return _json.loads(read_text(task, name), f"upstream file `{task}/{name}`")


def out_dir() -> Path:
    """This task's output directory (`/out`)."""
    return path(OUT)


def ensure_dir(directory: "str | os.PathLike[str]") -> Path:
    """Create `directory` and its missing parents; fine if it exists. Unlike `os.makedirs` it
    starts from the deepest ancestor that exists, so it never needs to see `/`."""
    target = Path(directory)
    missing = []
    probe = target
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            raise Permanent(f"cannot create {target}: no ancestor of it is visible to the task")
        probe = probe.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
    return target


def output(name: str) -> Path:
    """The path of output file `name` under `/out`, its parent directories created."""
    p = path(OUT / _relative(name, "output file"))
    ensure_dir(p.parent)
    return p


def write_bytes(name: str, data: bytes) -> Path:
    p = output(name)
    p.write_bytes(data)
    return p


def write_text(name: str, text: str, encoding: str = "utf-8") -> Path:
    p = output(name)
    p.write_text(text, encoding=encoding)
    return p


def write_json(name: str, value: Any, indent: "int | None" = None) -> Path:
    return write_text(name, _json.dumps(value, f"output file `{name}`", indent) + "\n")
