"""Printable strings of native libraries (``lib/**/*.so``), like ``strings(1)``.

The scanner does not need the runs themselves: the endpoint patterns use ASCII-only character classes, so
decoding the whole binary as latin-1 lets one pass over it find endpoints while every non-printable byte
acts as a separator. :func:`printable_strings` exists for callers that want the runs.
"""

from __future__ import annotations

import re

__all__ = ["native_text", "printable_strings"]

_RUN = re.compile(rb"[\x20-\x7e]{4,}")


def native_text(data: bytes) -> str:
    """The library as text for endpoint search; non-ASCII bytes never join two printable runs."""
    return data.decode("latin-1")


def printable_strings(data: bytes, min_len: int = 4) -> list[str]:
    """ASCII printable runs of at least ``min_len`` characters."""
    pattern = _RUN if min_len == 4 else re.compile(rb"[\x20-\x7e]{%d,}" % min_len)
    return [m.group().decode("ascii") for m in pattern.finditer(data)]
