"""Outbound HTTP, for tasks granted hosts in `allow_hosts`.

Inside a component this goes through `wasi:http` (the component must be built with
`python -m sluice_sdk.build --http`); in tests through the `MockHost`'s canned responses. A
request the host refuses (host not allowed, no canned response) is `Permanent`; a failure to
connect or a timeout is `Transient`. `Response.raise_for_status` maps 5xx and 429 to `Transient`,
other 4xx to `Permanent`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from . import _host
from .errors import Permanent, Transient


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        """The first header called `name` (case-insensitive)."""
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding)

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise Permanent(f"HTTP response body is not valid JSON: {e}") from None

    def raise_for_status(self) -> "Response":
        if self.status >= 500 or self.status == 429:
            raise Transient(f"HTTP {self.status}")
        if self.status >= 400:
            raise Permanent(f"HTTP {self.status}")
        return self


class Denied(Permanent):
    """The host refused the request (not in `allow_hosts`, or no canned response in a test)."""


class Unreachable(Transient):
    """The request could not be completed (connection, DNS, timeout)."""


def _header_list(headers: "dict[str, str] | list[tuple[str, str]] | None") -> list[tuple[str, str]]:
    if headers is None:
        return []
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


def request(
    method: str,
    url: str,
    headers: "dict[str, str] | list[tuple[str, str]] | None" = None,
    body: "bytes | str | None" = None,
) -> Response:
    """Send one request and read the whole response."""
    data = body.encode() if isinstance(body, str) else (body or b"")
    req = Request(method.upper(), url, _header_list(headers), data)
    try:
        return _host.current().http_send(req)  # type: ignore[return-value]
    except _host.HostError as e:
        raise Denied(f"HTTP {req.method} {url} was refused: {e}") from None


def get(url: str, headers: "dict[str, str] | list[tuple[str, str]] | None" = None) -> Response:
    return request("GET", url, headers)


def post(url: str, body: "bytes | str", headers: "dict[str, str] | list[tuple[str, str]] | None" = None) -> Response:
    return request("POST", url, headers, body)
