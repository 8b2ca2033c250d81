"""The task's parameters, which the host hands over as strings (after templating).

`Params` reads like a mapping of strings and parses on request, with the same rules as the Rust
SDK: numbers and bools parse the trimmed text (bools: true/false, yes/no, on/off, 1/0); lists are
a JSON array (`["a","b"]`) or comma-separated (`a, b`; `""` is empty); dicts are a JSON object.
A missing required parameter or one that does not parse is a `Permanent` error naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Callable, Iterator, Optional, TypeVar, Union

from . import _host
from .errors import Permanent

T = TypeVar("T")

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_MISSING = object()

Kind = Union[type, Callable[[str], Any]]


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("use true/false, yes/no, on/off or 1/0")


def _parse_list(text: str) -> list:
    if text.lstrip().startswith("["):
        value = json.loads(text)
        if not isinstance(value, list):
            raise ValueError("not a JSON array")
        return value
    return [] if not text.strip() else [item.strip() for item in text.split(",")]


def _parse_dict(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _parse_json(text: str) -> Any:
    return json.loads(text)


_PARSERS: dict[Any, Callable[[str], Any]] = {
    str: lambda s: s,
    int: lambda s: int(s.strip()),
    float: lambda s: float(s.strip()),
    bool: _parse_bool,
    list: _parse_list,
    dict: _parse_dict,
    "json": _parse_json,
}


def _kind_name(kind: Kind) -> str:
    return kind if isinstance(kind, str) else getattr(kind, "__name__", repr(kind))


def parse_value(name: str, raw: str, kind: Kind) -> Any:
    """`raw` (parameter `name`) as `kind`: str, int, float, bool, list, dict, "json", or any
    callable taking the text. A failure is a `Permanent` error naming the parameter."""
    parser = _PARSERS.get(kind, kind if callable(kind) else None)
    if parser is None:
        raise TypeError(f"cannot parse a param as {kind!r}")
    try:
        return parser(raw)
    except Exception as e:  # noqa: BLE001 - any parse failure is the param's fault
        raise Permanent(f"param `{name}`: `{raw}` is not a valid {_kind_name(kind)}: {e}") from None


class Params(Mapping[str, str]):
    """The task's parameters, in the host's order. `params["n"]` is the text (missing: a
    `Permanent` error); `params.require("n", int)` and `params.get("n", 10, int)` parse."""

    def __init__(self, pairs: Optional[list[tuple[str, str]]] = None) -> None:
        if pairs is None:
            pairs = _host.current().param_list()
        self._pairs = list(pairs)
        self._map = dict(self._pairs)

    def __getitem__(self, name: str) -> str:
        try:
            return self._map[name]
        except KeyError:
            raise Permanent(f"missing required param `{name}`") from None

    def __contains__(self, name: object) -> bool:
        return name in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return f"Params({self._pairs!r})"

    def pairs(self) -> list[tuple[str, str]]:
        """All `(name, value)` pairs, in the host's order."""
        return list(self._pairs)

    def require(self, name: str, kind: Kind = str) -> Any:
        """Parameter `name` parsed as `kind`; missing is a `Permanent` error."""
        return parse_value(name, self[name], kind)

    def get(self, name: str, default: Any = None, kind: Optional[Kind] = None) -> Any:  # type: ignore[override]
        """Parameter `name` parsed as `kind` (default: the type of `default`, else str), or
        `default` when absent. A present value that does not parse is still an error: a typo
        must not silently fall back to the default."""
        raw = self._map.get(name, _MISSING)
        if raw is _MISSING:
            return default
        if kind is None:
            kind = type(default) if default is not None and type(default) in _PARSERS else str
        return parse_value(name, raw, kind)


def get(name: str) -> Optional[str]:
    """Parameter `name` as the host gave it, None when absent (one host call)."""
    return _host.current().param_get(name)


def all() -> Params:  # noqa: A001 - mirrors the Rust SDK's params::all
    """Every parameter, as a `Params`."""
    return Params()
