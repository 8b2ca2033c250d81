"""The build-time import analysis: which imports are found, which are optional."""

import sys
import pytest

from sluice_sdk import preload
from sluice_sdk.preload import imports_in


def sites(source, package=None):
    return {(s.module, s.line, s.optional) for s in imports_in(source, "t.py", package)}


def test_finds_imports_at_any_depth():
    src = (
        "import json\n"
        "def f():\n"
        "    import statistics\n"
        "    class C:\n"
        "        def g(self):\n"
        "            from collections import abc\n"
    )
    assert sites(src) == {
        ("json", 1, False),
        ("statistics", 3, False),
        ("collections", 6, False),
        ("collections.abc", 6, True),  # `from x import y` may name a submodule: tried, never required
    }


def test_guarded_and_type_checking_imports_are_optional_or_skipped():
    src = (
        "try:\n    import ujson as json\nexcept ImportError:\n    import json\n"
        "try:\n    import fast\nexcept ValueError:\n    pass\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import heavy\n"
    )
    got = sites(src)
    assert ("ujson", 2, True) in got and ("json", 4, False) in got
    assert ("fast", 6, False) in got  # a handler that does not catch ImportError does not guard
    assert not any(m == "heavy" for m, _, _ in got)


def test_relative_imports_resolve_against_the_package():
    assert ("pkg.helpers", 1, False) in sites("from .helpers import x\n", package="pkg")
    assert ("pkg.sub", 1, False) in sites("from . import helpers\n", package="pkg.sub")
    assert ("pkg", 1, False) in sites("from .. import helpers\n", package="pkg.sub")


def test_missing_required_import_fails_naming_file_line_and_module(tmp_path, monkeypatch):
    (tmp_path / "task.py").write_text("def run(ctx, params):\n    import no_such_module_xyz\n")
    (tmp_path / "helper.py").write_text("try:\n    import also_missing_xyz\nexcept ImportError:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(preload.PreloadError) as err:
        preload.preload(str(tmp_path / "task.py"))
    text = str(err.value)
    assert "task.py:2: cannot import `no_such_module_xyz`: ModuleNotFoundError" in text
    assert "also_missing_xyz" not in text


def test_preload_imports_function_level_and_lazy_stdlib_modules(tmp_path, monkeypatch):
    (tmp_path / "task.py").write_text("def run(ctx, params):\n    import zipfile\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("zipfile", "bz2", "lzma"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    (tmp_path / "test_task.py").write_text("import pytest_only_module_xyz\n")  # tests are not scanned
    preload.preload(str(tmp_path / "task.py"))
    assert "zipfile" in sys.modules
    assert "bz2" in sys.modules  # zipfile imports it inside a function
    assert "encodings.latin_1" in sys.modules and "_strptime" in sys.modules
    assert "tkinter" not in sys.modules
