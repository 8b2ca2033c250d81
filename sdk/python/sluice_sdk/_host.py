"""The one door to the host: which host serves the SDK's calls.

Inside a component (built by `sluice_sdk.build`) the host is the sluice runtime, reached through
the world's imports (`sluice_sdk._wasm`). In native tests it is a `sluice_sdk.testing.MockHost`
installed by the test. Nothing else in the SDK knows which one it is talking to.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Optional, Protocol


class HostError(Exception):
    """The host refused a call; the text is the host's reason."""


class Host(Protocol):
    """What the SDK needs from a host. Every method maps to one world import (or a path)."""

    def param_get(self, name: str) -> Optional[str]: ...

    def param_list(self) -> list[tuple[str, str]]: ...

    def value_set(self, key: str, json_text: str) -> None: ...  # raises HostError

    def value_get(self, task: str, key: str) -> Optional[str]: ...

    def secret_reveal(self, name: str) -> str: ...  # raises HostError

    def checkpoint_save(self, key: str, data: bytes) -> None: ...  # raises HostError

    def checkpoint_load(self, key: str) -> Optional[bytes]: ...

    def resolve(self, guest_path: PurePosixPath) -> str: ...  # where a guest path really is

    def http_send(self, request: "object") -> "object": ...  # sluice_sdk.http.Request → Response


_current: Optional[Host] = None


def install(host: Optional[Host]) -> None:
    """Make `host` the one every SDK call goes to (None: none)."""
    global _current
    _current = host


def current() -> Host:
    """The installed host; outside a component and without a MockHost this is an error."""
    if _current is None:
        raise RuntimeError(
            "no sluice host: inside a component the SDK installs one; in tests, "
            "install a sluice_sdk.testing.MockHost first"
        )
    return _current
