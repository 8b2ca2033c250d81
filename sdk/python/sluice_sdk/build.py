"""Build a Python task into a sluice component: `python -m sluice_sdk.build TASK_DIR -o X.wasm`.

TASK_DIR holds the task module (`task.py` by default: a `run(ctx, params)` function) and any
modules of its own; `requirements.txt` beside it lists pure-Python dependencies, installed into
the component (a package with native code fails the build, naming it). The build runs
componentize-py against the task world (`sdk/wit`, or with `--http` that world plus
`wasi:http/outgoing-handler`), with `sluice_sdk.component.world(task)` as the app, which imports
at build time every module the task can reach (see `sluice_sdk.preload`) and fails naming the
file, line and module when one is missing.

The output is content-addressed: `X.wasm.inputs` records a digest of everything that went in
(task files, requirements, the SDK, the WIT, componentize-py's version, the flags), and an
unchanged task is not rebuilt. Progress goes to stderr; the output path is printed on stdout.
Exit status: 0 built or up to date, 1 the build failed (the reason on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Optional

SDK_DIR = Path(__file__).resolve().parent
# The WIT the Rust SDK uses too, when the SDK runs from the sluice repository.
REPO_WIT = SDK_DIR.parent.parent / "wit"
TASK_WORLD = "sluice:task/task@0.1.0"
# The interpreter componentize-py embeds; dependency wheels must suit it (pure Python anyway).
GUEST_PYTHON = "3.14"
APP_MODULE = "sluice_app"


class BuildError(Exception):
    """The build cannot proceed; the message says why and what to do."""


def _files(root: Path) -> Iterable[Path]:
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".pytest_cache") and not d.startswith("."))
        for name in sorted(names):
            if not name.endswith((".pyc", ".wasm", ".inputs")):
                yield Path(dirpath, name)


def _componentize_py() -> list[str]:
    exe = shutil.which("componentize-py") or str(Path(sys.executable).with_name("componentize-py"))
    if not os.path.exists(exe):
        raise BuildError("componentize-py is not installed: `pip install componentize-py==0.25.1`")
    return [exe]


def _tool_version(cmd: list[str]) -> str:
    return subprocess.run([*cmd, "--version"], capture_output=True, text=True, check=False).stdout.strip()


def _crate_wit(env: str, pattern: str, what: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env])
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    found = sorted(glob.glob(str(cargo_home / "registry/src/*" / pattern)))
    if not found:
        raise BuildError(f"{what} needs the WASI WIT files: build sluice once (cargo fetches them) or set {env}")
    return Path(found[-1])


def http_wit_deps() -> Path:
    """The wasi WIT packages (with wasi:http) of the wasmtime-wasi-http crate the runtime is
    built with: the same interface versions the host links. `SLUICE_HTTP_WIT` overrides."""
    return _crate_wit("SLUICE_HTTP_WIT", "wasmtime-wasi-http-*/wit/deps", "--http")


def cli_wit() -> Path:
    """The `wasi:cli` WIT of the wasmtime-wasi crate the runtime is built with (for the plain
    script interpreter, a `wasi:cli/command`). `SLUICE_CLI_WIT` overrides."""
    return _crate_wit("SLUICE_CLI_WIT", "wasmtime-wasi-*/src/p2/wit", "--runner")


def _wit_dir(work: Path, wit: Path, http: bool) -> tuple[Path, str]:
    if not http:
        return wit, "task"
    deps = http_wit_deps()
    http_wit = (deps / "http.wit").read_text(encoding="utf-8")
    version = re.search(r"package wasi:http@([0-9.]+);", http_wit)
    if not version:
        raise BuildError(f"cannot read the wasi:http version from {deps / 'http.wit'}")
    root = work / "wit"
    (root / "deps" / "sluice").mkdir(parents=True)
    for f in deps.glob("*.wit"):
        shutil.copy(f, root / "deps" / f.name)
    for f in wit.glob("*.wit"):
        shutil.copy(f, root / "deps" / "sluice" / f.name)
    (root / "world.wit").write_text(
        "package sluice:python@0.1.0;\n\nworld task-http {\n"
        f"  include {TASK_WORLD};\n  import wasi:http/outgoing-handler@{version.group(1)};\n}}\n",
        encoding="utf-8",
    )
    return root, "task-http"


def _install_requirements(requirements: Path, target: Path) -> None:
    cmd = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(target), "--only-binary=:all:", "--implementation", "py", "--abi", "none",
        "--platform", "any", "--python-version", GUEST_PYTHON, "-r", str(requirements),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(
            f"{requirements}: the dependencies could not be installed as pure-Python wheels "
            f"(packages with native code cannot run in a component):\n{done.stderr.strip()}"
        )


def inputs_digest(task_dir: Path, module: str, wit: Path, http: bool, tool: str) -> str:
    """The digest of everything the component is built from."""
    h = hashlib.sha256()
    h.update(f"sluice-python-build 1\0{module}\0{http}\0{tool}\0{GUEST_PYTHON}\0".encode())
    for label, root in (("task", task_dir), ("sdk", SDK_DIR), ("wit", wit)):
        for f in _files(root):
            h.update(f"{label}/{f.relative_to(root).as_posix()}\0".encode())
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def build(task_dir: Path, output: Path, module: str = "task", wit: Optional[Path] = None, http: bool = False) -> bool:
    """Build `task_dir` into `output`; False if it was already up to date."""
    wit = wit or REPO_WIT
    if not (task_dir / f"{module}.py").is_file() and not (task_dir / module / "__init__.py").is_file():
        raise BuildError(f"{task_dir}: no task module `{module}` ({module}.py with a run(ctx, params) function)")
    if not wit.is_dir():
        raise BuildError(f"WIT directory {wit} not found (pass --wit sdk/wit)")
    tool = _componentize_py()
    digest = inputs_digest(task_dir, module, wit, http, _tool_version(tool))
    stamp = output.with_name(output.name + ".inputs")
    if output.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return False
    with tempfile.TemporaryDirectory(prefix="sluice-pybuild-") as tmp:
        work = Path(tmp)
        app = work / "app"
        app.mkdir()
        (app / f"{APP_MODULE}.py").write_text(
            f"import sluice_sdk.component\n\nWitWorld = sluice_sdk.component.world({module!r})\n",
            encoding="utf-8",
        )
        paths = [app, task_dir.resolve(), SDK_DIR.parent]
        requirements = task_dir / "requirements.txt"
        if requirements.is_file():
            deps = work / "deps"
            _install_requirements(requirements, deps)
            paths.append(deps)
        wit_dir, world = _wit_dir(work, wit, http)
        _componentize(tool, wit_dir, world, APP_MODULE, paths, output)
    stamp.write_text(digest + "\n")
    return True


def build_runner(output: Path) -> bool:
    """Build the plain-script interpreter (`sluice_sdk.runner`) into `output`; False if it was
    already up to date."""
    tool = _componentize_py()
    wit = cli_wit()
    version = re.search(r"package wasi:cli@([0-9.]+);", (wit / "deps" / "cli.wit").read_text(encoding="utf-8"))
    if not version:
        raise BuildError(f"cannot read the wasi:cli version from {wit / 'deps' / 'cli.wit'}")
    h = hashlib.sha256(f"sluice-python-runner 1\0{_tool_version(tool)}\0{version.group(1)}\0".encode())
    for f in _files(SDK_DIR):
        h.update(f"{f.relative_to(SDK_DIR).as_posix()}\0".encode() + hashlib.sha256(f.read_bytes()).digest())
    digest = h.hexdigest()
    stamp = output.with_name(output.name + ".inputs")
    if output.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return False
    with tempfile.TemporaryDirectory(prefix="sluice-pybuild-") as tmp:
        app = Path(tmp)
        (app / "sluice_python.py").write_text("from sluice_sdk.runner import Run  # noqa: F401\n", encoding="utf-8")
        _componentize(tool, wit, f"wasi:cli/command@{version.group(1)}", "sluice_python", [app, SDK_DIR.parent], output)
    stamp.write_text(digest + "\n")
    return True


def _componentize(tool: list[str], wit: Path, world: str, app: str, paths: list[Path], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    cmd = [*tool, "-q", "-d", str(wit), "-w", world, "componentize", app, "-o", str(partial)]
    cmd += [arg for p in paths for arg in ("-p", str(p))]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "VIRTUAL_ENV": ""})
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise BuildError(_explain(done.stdout + done.stderr))
    os.replace(partial, output)


def _explain(log: str) -> str:
    """componentize-py's failure, cut to the Python error (its Rust backtrace is noise)."""
    log = log.split("\nCaused by:")[0]
    lines = [ln for ln in log.splitlines() if not re.match(r"\s+(\d+:|at )", ln) and ln.strip() != "Stack backtrace:"]
    for marker in ("PreloadError: ", "TypeError: ", "SyntaxError: ", "ModuleNotFoundError: ", "ImportError: "):
        for i, ln in enumerate(lines):
            if marker in ln:
                return "\n".join(lines[i:]).strip()
    return "\n".join(lines).strip() or "componentize-py failed without a message"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sluice_sdk.build", description=__doc__.split("\n\n")[0])
    ap.add_argument("task_dir", type=Path, nargs="?", help="directory holding the task module")
    ap.add_argument("-o", "--output", type=Path, help="component to write (default: TASK_DIR/task.wasm)")
    ap.add_argument("--module", default="task", help="the task module's name (default: task)")
    ap.add_argument("--wit", type=Path, help=f"the task world's WIT directory (default: {REPO_WIT})")
    ap.add_argument("--http", action="store_true", help="also import wasi:http (for sluice_sdk.http)")
    ap.add_argument("--runner", action="store_true", help="build the plain-script interpreter instead of a task")
    args = ap.parse_args(argv)
    if args.runner == (args.task_dir is not None):
        ap.error("give TASK_DIR, or --runner (with -o)")
    output = args.output or (Path("python.wasm") if args.runner else args.task_dir / "task.wasm")
    try:
        built = build_runner(output) if args.runner else build(args.task_dir, output, args.module, args.wit, args.http)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{'built' if built else 'up to date'}: {output} ({output.stat().st_size} bytes)", file=sys.stderr)
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
