"""Durable progress markers that survive into the task's later attempts.

Save after each unit of work; on a retry (`ctx.attempt > 0`) or after a runtime restart, `load`
returns what the last successful `save` stored. Checkpoints belong to one task of one run.
"""

from __future__ import annotations

from typing import Any, Optional

from . import _host, _json
from .errors import Transient


def save(key: str, data: bytes) -> None:
    """Store `data` under `key`; returns once it is durable. A host failure is `Transient`
    (the retry resumes from the previous checkpoint)."""
    try:
        _host.current().checkpoint_save(key, bytes(data))
    except _host.HostError as e:
        raise Transient(f"checkpoint `{key}` could not be saved: {e}") from None


def load(key: str) -> Optional[bytes]:
    """The data last saved under `key` by this task in this run (any attempt), if any."""
    return _host.current().checkpoint_load(key)


def save_json(key: str, value: Any) -> None:
    """`save` `value` serialized as JSON."""
    save(key, _json.dumps(value, f"checkpoint `{key}`").encode())


def load_json(key: str, default: Any = None) -> Any:
    """`load` a checkpoint saved with `save_json`; `default` if there is none."""
    data = load(key)
    return default if data is None else _json.loads(data, f"checkpoint `{key}`")
