"""JSON in and out of the SDK, with the task error every failure becomes (always permanent:
the same data fails the same way on retry)."""

from __future__ import annotations

import json
from typing import Any, Optional

from .errors import Permanent


def dumps(value: Any, what: str, indent: Optional[int] = None) -> str:
    """`value` as strict JSON (no NaN/Infinity); `Permanent("{what} could not be serialized…")`."""
    try:
        return json.dumps(value, indent=indent, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise Permanent(f"{what} could not be serialized as JSON: {e}") from None


def loads(data: "str | bytes", what: str) -> Any:
    """Parsed `data`; `Permanent("{what} is not valid JSON: …")`."""
    try:
        return json.loads(data)
    except ValueError as e:
        raise Permanent(f"{what} is not valid JSON: {e}") from None
