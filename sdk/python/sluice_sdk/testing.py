"""Run Python tasks natively under pytest, against an in-memory host (no wasm, no runtime).

    from sluice_sdk.testing import MockHost, run
    import task

    def test_counts_rows():
        with MockHost().param("min", "2").input_file("extract", "rows.csv", "a\\n1\\n2\\n") as host:
            out = run(task)                     # task.run(ctx, params), same glue as the component
        assert out == {"rows": 2}
        assert host.published_value("rows") == 2
        assert host.read_output("summary.json") == '{"rows": 2}\\n'

The surface matches the Rust SDK's `MockHost`: params, upstream values, granted secrets,
checkpoints (saved by this or "an earlier attempt"), published values; plus files — upstream
outputs under `/in/<task>/`, this task's `/out/`, declared mounts — in a temporary directory, and
canned HTTP responses (a request without one is denied, as the runtime denies a host that is not
in `allow_hosts`). Entering the context installs the host; leaving it uninstalls it and removes
its directory (unless it was given one).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any, Callable, Optional, Union

from . import _host, _runner
from .context import Context
from .http import Request, Response

Task = Union[ModuleType, Callable[..., Any]]


class MockHost:
    """An in-memory stand-in for the sluice runtime. Builder methods return the host."""

    def __init__(self, root: "str | Path | None" = None) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="sluice-mock-")) if root is None else Path(root)
        self.params: list[tuple[str, str]] = []
        self.upstream: dict[tuple[str, str], str] = {}
        self.secrets: dict[str, str] = {}
        self.checkpoints: dict[str, bytes] = {}
        self.published: dict[str, str] = {}
        self.mounts: dict[PurePosixPath, Path] = {
            PurePosixPath("/in"): self.root / "in",
            PurePosixPath("/out"): self.root / "out",
            PurePosixPath("/tmp"): self.root / "tmp",
        }
        self.responses: dict[tuple[str, str], Response] = {}
        self.requests: list[Request] = []
        for d in self.mounts.values():
            d.mkdir(parents=True, exist_ok=True)

    # --- what the task will see -------------------------------------------------------------

    def param(self, name: str, value: object) -> "MockHost":
        """Set parameter `name` (replacing an earlier one); non-strings become their text
        the way the bundle's TOML scalars do (`10` → `"10"`, `True` → `"true"`)."""
        text = value if isinstance(value, str) else json.dumps(value)
        self.params = [(k, v) for k, v in self.params if k != name] + [(name, text)]
        return self

    def upstream_value(self, task: str, key: str, value: Any) -> "MockHost":
        """Make upstream task `task` appear to have published `value` under `key`."""
        self.upstream[(task, key)] = json.dumps(value)
        return self

    def secret(self, name: str, value: str) -> "MockHost":
        """Grant secret `name`; any other name is denied."""
        self.secrets[name] = value
        return self

    def checkpoint(self, key: str, data: "bytes | Any") -> "MockHost":
        """Pretend an earlier attempt saved checkpoint `key` (bytes as-is, else as JSON)."""
        self.checkpoints[key] = data if isinstance(data, bytes) else json.dumps(data).encode()
        return self

    def input_file(self, task: str, name: str, data: "bytes | str") -> "MockHost":
        """Make upstream task `task` appear to have written `name` (at `/in/<task>/<name>`)."""
        path = self.root / "in" / task / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return self

    def mount(self, guest: str, host_dir: "str | Path") -> "MockHost":
        """Declare a mount: guest path `guest` (as in `mounts = [...]`) shows `host_dir`."""
        self.mounts[PurePosixPath(guest)] = Path(host_dir)
        return self

    def respond(
        self, method: str, url: str, status: int = 200, body: "bytes | str | Any" = b"",
        headers: "dict[str, str] | None" = None,
    ) -> "MockHost":
        """A canned HTTP response for `METHOD url` (a dict/list body is sent as JSON)."""
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        self.responses[(method.upper(), url)] = Response(status, list((headers or {}).items()), data)
        return self

    # --- what the task did ------------------------------------------------------------------

    def published_value(self, key: str, default: Any = None) -> Any:
        """Value `key` the task published, parsed; `default` if it published none."""
        text = self.published.get(key)
        return default if text is None else json.loads(text)

    def output_path(self, name: str) -> Path:
        return self.root / "out" / name

    def read_output(self, name: str) -> str:
        """The text of `/out/<name>` as the task wrote it."""
        return self.output_path(name).read_text(encoding="utf-8")

    def output_files(self) -> list[str]:
        """Every file the task wrote under `/out`, relative and sorted."""
        out = self.root / "out"
        return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())

    # --- installing -------------------------------------------------------------------------

    def install(self) -> "MockHost":
        """Make this the host every SDK call goes to."""
        _host.install(self)
        return self

    def close(self) -> None:
        """Uninstall (if installed) and remove the host's own directory."""
        if _host._current is self:
            _host.install(None)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "MockHost":
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the Host protocol (what the SDK calls) ---------------------------------------------

    def param_get(self, name: str) -> Optional[str]:
        return next((v for k, v in self.params if k == name), None)

    def param_list(self) -> list[tuple[str, str]]:
        return list(self.params)

    def value_set(self, key: str, json_text: str) -> None:
        try:
            json.loads(json_text)
        except ValueError as e:
            raise _host.HostError(f"value `{key}` is not valid JSON: {e}") from None
        self.published[key] = json_text

    def value_get(self, task: str, key: str) -> Optional[str]:
        return self.upstream.get((task, key))

    def secret_reveal(self, name: str) -> str:
        if name not in self.secrets:
            raise _host.HostError(f"secret `{name}` is not granted to this task")
        return self.secrets[name]

    def checkpoint_save(self, key: str, data: bytes) -> None:
        self.checkpoints[key] = bytes(data)

    def checkpoint_load(self, key: str) -> Optional[bytes]:
        return self.checkpoints.get(key)

    def resolve(self, guest_path: PurePosixPath) -> str:
        for guest in sorted(self.mounts, key=lambda g: len(g.parts), reverse=True):
            if guest_path == guest or guest in guest_path.parents:
                return str(self.mounts[guest] / guest_path.relative_to(guest))
        raise _host.HostError(f"{guest_path} is not under any mount of this MockHost ({sorted(map(str, self.mounts))})")

    def http_send(self, request: Request) -> Response:
        self.requests.append(request)
        response = self.responses.get((request.method, request.url))
        if response is None:
            raise _host.HostError(f"no canned response for {request.method} {request.url} (MockHost.respond)")
        return response


def run(task: Task, ctx: Optional[Context] = None) -> Any:
    """Run `task` (a module with `run`, or the function) through the component's glue against
    the installed host; its output parsed from JSON, or the `TaskError` it failed with."""
    fn = _runner.check_task(task) if isinstance(task, ModuleType) else task
    return json.loads(_runner.run_task(fn, ctx or Context()))
