"""Printable strings of native libraries (``lib/**/*.so``), like ``strings(1)``.

The scanner does not need every run: :func:`native_text` keeps only the runs that can hold an endpoint
(see :func:`audit.static.endpoints.candidate_text`). :func:`printable_strings` exists for callers that
want the runs themselves.
"""

from __future__ import annotations

import re

from audit.static.endpoints import candidate_text

__all__ = ["native_text", "printable_strings"]

_RUN = re.compile(rb"[\x20-\x7e]{4,}")


def native_text(data: bytes) -> str:
    """The library as text for endpoint search: its printable runs that may hold an endpoint."""
    return candidate_text(data)


def printable_strings(data: bytes, min_len: int = 4) -> list[str]:
    """ASCII printable runs of at least ``min_len`` characters."""
    pattern = _RUN if min_len == 4 else re.compile(rb"[\x20-\x7e]{%d,}" % min_len)
    return [m.group().decode("ascii") for m in pattern.finditer(data)]
