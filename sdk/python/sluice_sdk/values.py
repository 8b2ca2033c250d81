"""Task values: small JSON documents a task publishes for its dependents."""

from __future__ import annotations

from typing import Any

from . import _host, _json
from .errors import Permanent

_MISSING = object()


def set(key: str, value: Any) -> None:  # noqa: A001 - mirrors the world's `values.set`
    """Publish `value` (serialized to JSON) under `key`. A value that cannot be serialized or
    that the host refuses (not JSON, over a size cap) is a `Permanent` error."""
    set_json(key, _json.dumps(value, f"value `{key}`"))


def set_json(key: str, text: str) -> None:
    """Publish an already-serialized JSON document under `key`."""
    try:
        _host.current().value_set(key, text)
    except _host.HostError as e:
        raise Permanent(f"value `{key}` was refused: {e}") from None


def get_json(task: str, key: str) -> "str | None":
    """The raw JSON text of value `key` published by upstream task `task`, None if absent."""
    return _host.current().value_get(task, key)


def get(task: str, key: str, default: Any = None) -> Any:
    """Value `key` of upstream task `task`, parsed; `default` if it was not published."""
    text = get_json(task, key)
    return default if text is None else _json.loads(text, f"value `{task}.{key}`")


def require(task: str, key: str) -> Any:
    """Like `get`, but a missing value is a `Permanent` error naming it."""
    value = get(task, key, _MISSING)
    if value is _MISSING:
        raise Permanent(f"missing upstream value `{task}.{key}`")
    return value
