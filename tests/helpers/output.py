"""Reading what a command printed."""

from __future__ import annotations

import json
from typing import Any


def strict_json(text: str) -> Any:
    """``text`` parsed as JSON, failing on what Python's encoder writes but JSON does not allow
    (``NaN``, ``Infinity``): every command's JSON must be strict."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)
