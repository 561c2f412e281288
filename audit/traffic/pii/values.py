"""Masking and check digits: what every detector shares."""

from __future__ import annotations

from audit.traffic.encodings import (
    MAX_DECODED,
)

#: Re-scan depth for nested containers (base64 blob → JSON → stringified JSON …).
MAX_DEPTH = 3
#: Fields examined per request; the rest of a gigantic body is ignored.
MAX_FIELDS = 50_000
#: Longest field value scanned (longer values are scanned up to this length).
MAX_FIELD_LEN = 1 << 20
#: Bytes decoded from base64 tokens per request, in total. One token may be a gzip bomb and its text
#: may hold 64 more: without a total, a 3 KB body kept the detector busy for minutes (fuzzing).
MAX_DECODED_PER_REQUEST = MAX_DECODED

_BULLET = "•"


def mask(value: str) -> str:
    """Masked form of a value for display: a little of each end, never the whole value.

    >>> mask("358240051111110")
    '35•••••••••1110'
    """
    v = value.strip()
    n = len(v)
    if n <= 4:
        return _BULLET * max(n, 1)
    if n <= 8:
        head, tail = 1, 1
    elif n <= 12:
        head, tail = 2, 2
    else:
        head, tail = 2, 4
    return v[:head] + _BULLET * min(n - head - tail, 16) + v[-tail:]


def luhn_ok(digits: str) -> bool:
    """Luhn checksum (IMEI check digit, ISO/IEC 7812)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0
