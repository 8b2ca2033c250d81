"""Import, at build time, every module a task's code can reach.

A componentize-py component carries no files: the interpreter's heap is snapshotted after the
app module is imported (pre-initialisation), and at run time only the modules imported by then
exist. An `import statistics` inside a function therefore fails at run time unless it was
imported while building. This module finds such imports statically and imports them during the
build:

1. Every `import`/`from … import` anywhere in the task's own source files (module level, inside
   functions, classes, branches). One that fails fails the build, naming the file, line and
   module — unless it is guarded by `try: … except ImportError` (or a broader handler) or sits
   under `if TYPE_CHECKING:`, which are optional by intent. Test files (`test_*.py`,
   `*_test.py`, `conftest.py`, `tests/`) are not part of the task and are not scanned.
2. The imports nested inside functions of the standard-library modules loaded by step 1 (e.g.
   `zipfile` importing `bz2` when it meets a bz2 member), then of what those load, until
   nothing new loads;
   best-effort, because the standard library guards its platform-specific imports itself.
   Modules listed in `NEVER_PRELOAD` (GUI, test suites, tooling) are skipped.
3. Modules that C code imports behind the interpreter's back (`ALWAYS_PRELOAD`: the codecs in
   `encodings`, `_strptime` for `strptime`), which no source scan can see.

It never executes task code beyond importing its modules (what Python does anyway), and it only
runs at build time: at run time `preload` is never called.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Iterable, Iterator, Optional

# Imported by C code at run time (codec lookup, `strptime`), invisible to a source scan. Of the
# ~120 codecs, the ones data files actually use: all of them would add ~100 modules to every task
# (a task naming another codec in its source, e.g. `encoding="cp1250"`, is not found by the scan).
ALWAYS_PRELOAD = (
    "_strptime", "encodings", "encodings.aliases", "encodings.ascii", "encodings.latin_1",
    "encodings.utf_8", "encodings.utf_8_sig", "encodings.utf_16", "encodings.utf_16_le",
    "encodings.utf_16_be", "encodings.utf_32", "encodings.cp1252", "encodings.iso8859_15",
    "encodings.idna", "encodings.punycode", "encodings.unicode_escape", "encodings.raw_unicode_escape",
    "encodings.charmap", "encodings.hex_codec", "encodings.base64_codec",
)
# Standard-library trees never worth carrying into a task: GUIs, test suites, dev tooling.
NEVER_PRELOAD = frozenset(
    ("tkinter", "turtle", "turtledemo", "idlelib", "test", "unittest", "lib2to3", "ensurepip",
     "venv", "pydoc", "pydoc_data", "doctest", "pdb", "bdb", "distutils", "msilib", "curses",
     "readline", "dbm", "sqlite3", "ctypes", "multiprocessing", "concurrent", "asyncio.windows_events",
     "asyncio.windows_utils", "encodings.mbcs", "encodings.oem", "_pyrepl", "pty", "tty", "webbrowser",
     "_aix_support", "_osx_support", "ntpath", "nturl2path", "winreg", "msvcrt", "__main__",
     "__phello__", "antigravity", "this")
)
# Functions that are a standard-library module's command line (`python -m calendar`): their
# imports (argparse, …) are not followed.
CLI_ENTRY_POINTS = frozenset(("main", "_main", "_test", "test"))
# Step 2 stops after this many rounds: the standard library's lazy-import chains are short
# (3 rounds reach a fixed point for every module we have tried), so more means a cycle.
MAX_LAZY_ROUNDS = 8
_OPTIONAL_HANDLERS = frozenset(("ImportError", "ModuleNotFoundError", "Exception", "BaseException"))


@dataclass(frozen=True)
class ImportSite:
    """One import statement: the module it needs, where it is, and whether failure is tolerated."""

    module: str
    file: str
    line: int
    optional: bool


class PreloadError(ImportError):
    """The task imports modules the build cannot provide; the message lists each site."""


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in _OPTIONAL_HANDLERS for n in names) or any(
        isinstance(n, ast.Attribute) and n.attr in _OPTIONAL_HANDLERS for n in names
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Finder(ast.NodeVisitor):
    def __init__(self, file: str, package: Optional[str]) -> None:
        self.file, self.package = file, package
        self.sites: list[ImportSite] = []
        self.guarded = 0
        self.nested = 0

    def _add(self, module: str, line: int) -> None:
        self.sites.append(ImportSite(module, self.file, line, self.guarded > 0))

    def visit_Try(self, node: ast.Try) -> None:
        optional = any(_catches_import_error(h) for h in node.handlers)
        self.guarded += optional
        for stmt in node.body:
            self.visit(stmt)
        self.guarded -= optional
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(part)

    visit_TryStar = visit_Try

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for stmt in node.orelse:
                self.visit(stmt)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            if not self.package:
                return
            parts = self.package.split(".")
            if node.level > 1:
                parts = parts[: len(parts) - node.level + 1]
            base = ".".join(p for p in (*parts, base) if p)
        if not base:
            return
        self._add(base, node.lineno)
        for alias in node.names:
            if alias.name != "*":
                # `from pkg import sub` may name a submodule: try it, never required
                self.sites.append(ImportSite(f"{base}.{alias.name}", self.file, node.lineno, True))


def imports_in(source: str, file: str, package: Optional[str] = None) -> list[ImportSite]:
    """Every import in `source` (at any depth), with `optional` as described above."""
    finder = _Finder(file, package)
    finder.visit(ast.parse(source, file))
    return finder.sites


def _is_test_file(name: str) -> bool:
    """pytest's files: they import pytest and the test harness, never part of the component."""
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def _task_sources(origin: str) -> Iterator[tuple[str, Optional[str]]]:
    """The task's own source files: the task module's directory tree, skipping installed
    packages and tests."""
    root = os.path.dirname(origin)
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")) and d not in ("site-packages", "tests"))
        rel = os.path.relpath(dirpath, root)
        package = None if rel == "." else rel.replace(os.sep, ".")
        for name in sorted(files):
            if name.endswith(".py") and not _is_test_file(name):
                yield os.path.join(dirpath, name), package


def _import(name: str) -> Optional[BaseException]:
    try:
        importlib.import_module(name)
        return None
    except BaseException as e:  # noqa: BLE001 - an import may raise anything; report it
        return e


def _preload_task(origin: str) -> list[str]:
    errors = []
    for path, package in _task_sources(origin):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        short = os.path.relpath(path, os.path.dirname(origin))
        for site in imports_in(source, short, package):
            if site.module in sys.modules:
                continue
            error = _import(site.module)
            if error is not None and not site.optional:
                errors.append(f"{site.file}:{site.line}: cannot import `{site.module}`: {type(error).__name__}: {error}")
    return errors


def stdlib_dirs() -> tuple[str, ...]:
    """Where the standard library's sources are: the `sys.path` entries holding `json/` (while
    componentize-py builds, that is `/python`, not where `sysconfig` or the frozen `os` module
    say). Neither `sysconfig` nor `pkgutil` is imported here: whatever the preloader imports
    ends up in every component's snapshot."""
    dirs = {p for p in sys.path if p and os.path.isfile(os.path.join(p, "json", "__init__.py"))}
    return tuple(sorted(os.path.normpath(p) + os.sep for p in dirs))


def _skipped(name: str) -> bool:
    parts = name.split(".")
    return any(".".join(parts[:i]) in NEVER_PRELOAD for i in range(1, len(parts) + 1))


def _lazy_imports(mod: ModuleType) -> Iterable[str]:
    origin = getattr(mod, "__file__", None)
    if not origin or not origin.endswith(".py"):
        return ()
    try:
        with open(origin, encoding="utf-8") as f:
            tree = ast.parse(f.read(), origin)
    except (OSError, SyntaxError, ValueError):
        return ()
    package = mod.__name__ if hasattr(mod, "__path__") else mod.__name__.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        # `main`/`_main`/`_test`: a module's command-line entry point, which no task calls
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in CLI_ENTRY_POINTS:
            finder = _Finder(origin, package or None)
            for stmt in node.body:
                finder.visit(stmt)
            names.extend(s.module for s in finder.sites)
    return names


def _preload_stdlib_lazy(stdlib: tuple[str, ...], seeds: set[str]) -> None:
    """Step 2, from the standard-library modules the task's imports loaded (`seeds`), not from
    everything the interpreter and the SDK loaded: their lazy chains (pathlib → urllib, inspect
    → importlib.metadata → email …) would add ~8 MB to every component for code no task runs."""
    todo = sorted(seeds)
    seen: set[str] = set()
    for _ in range(MAX_LAZY_ROUNDS):
        if not todo:
            return
        before = set(sys.modules)
        for name in todo:
            seen.add(name)
            mod = sys.modules.get(name)
            origin = os.path.normpath(getattr(mod, "__file__", None) or "")
            if mod is None or not origin.startswith(stdlib):
                continue
            for lazy in _lazy_imports(mod):
                if lazy not in sys.modules and not _skipped(lazy):
                    _import(lazy)
        todo = sorted(set(sys.modules) - before - seen)


def _preload_always(every_codec: bool = False) -> None:
    for name in ALWAYS_PRELOAD:
        _import(name)
    if every_codec:
        import encodings

        for path in encodings.__path__:
            for name in sorted(os.listdir(path)):
                if name.endswith(".py") and name != "__init__.py":
                    _import(f"encodings.{name[:-3]}")


def preload_stdlib() -> tuple[int, list[str]]:
    """Import every standard-library module but `NEVER_PRELOAD`'s (for the plain-script
    interpreter, which cannot know what a script will import). Returns how many loaded and the
    names that cannot load here (e.g. `bz2`, `lzma`, `ssl`: not compiled into the interpreter)."""
    import pkgutil  # the interpreter carries the whole standard library anyway

    loaded, failed = 0, []
    for root in stdlib_dirs():
        for info in pkgutil.walk_packages([root], onerror=lambda _name: None):
            name = info.name
            if _skipped(name) or name.endswith("__main__") or ".tests" in name or name.startswith("_test"):
                continue
            if name in sys.modules:
                continue
            if _import(name) is None:
                loaded += 1
            else:
                failed.append(name)
    _preload_always(every_codec=True)
    return loaded, sorted(failed)


def preload(origin: str) -> None:
    """Import everything the task whose module is the file `origin` can reach (see the module
    doc), before the task module itself is imported; raise `PreloadError` listing every
    required import that failed, by file and line."""
    before = set(sys.modules)
    errors = _preload_task(origin)
    if errors:
        raise PreloadError(
            "the task imports modules that are not available in the component:\n  "
            + "\n  ".join(errors)
            + "\n(pure-Python dependencies go in requirements.txt next to the task; "
            "modules needing native code other than the standard library's cannot be used)"
        )
    _preload_stdlib_lazy(stdlib_dirs(), set(sys.modules) - before)
    _preload_always()
