"""Secrets granted to the task, by `scope/key` name."""

from __future__ import annotations

from . import _host
from .errors import Permanent


def reveal(name: str) -> str:
    """The value of secret `name` (`scope/key`). A name the task was not granted is denied:
    a `Permanent` error. Never print the value, return it or publish it."""
    try:
        return _host.current().secret_reveal(name)
    except _host.HostError as e:
        raise Permanent(f"secret `{name}` was denied: {e}") from None
