"""The traffic importer interface: one implementation per saved-traffic format.

An importer turns one file into a stream of :class:`~audit.models.Connection` and
:class:`~audit.models.DnsRecord` objects. It never touches the case file: :func:`audit.traffic.importers.import_file`
writes the stream in one transaction, so that an importer raising :class:`~audit.errors.ImportFormatError`
half-way leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol

from audit.models import Connection, DataFinding, DnsRecord, HttpRequestData

#: Request bodies kept for data detection are capped at this many bytes (``body_truncated`` says so).
MAX_BODY = 64 * 1024


class Detector(Protocol):
    """What the importers need from a personal-data detector (``audit.traffic.pii.PiiDetector``)."""

    def scan(self, request: HttpRequestData) -> tuple[DataFinding, ...]: ...


class Importer(ABC):
    """Reads one saved-traffic format.

    Subclasses set ``format`` (the name shown to users and stored as the input kind) and ``source``
    (``Connection.source``), implement :meth:`sniff` on the first bytes of a file and :meth:`read`.
    Non-fatal problems (a truncated tail, an undecodable packet) are appended to ``errors`` while
    reading; a file that cannot be read at all raises :class:`~audit.errors.ImportFormatError`.
    """

    format: ClassVar[str]
    source: ClassVar[str]

    def __init__(self) -> None:
        self.errors: list[str] = []

    @classmethod
    @abstractmethod
    def sniff(cls, head: bytes) -> bool:
        """True if ``head`` (the first few KiB of a file) looks like this format."""

    @abstractmethod
    def read(self, path: Path, *, app: str = "") -> Iterator[Connection | DnsRecord]:
        """Yield what the file holds, tagged with the analyst's ``app`` label ("" = unknown)."""


def cap_body(body: bytes | None) -> tuple[bytes, bool]:
    """The first :data:`MAX_BODY` bytes of a body and whether it was cut."""
    if not body:
        return b"", False
    if len(body) > MAX_BODY:
        return body[:MAX_BODY], True
    return body, False


def unique(items: Iterator[str] | list[str]) -> tuple[str, ...]:
    """Items in first-seen order without repeats (query keys)."""
    return tuple(dict.fromkeys(items))


def one_line(text: str, limit: int = 160) -> str:
    """An exception's text as part of a one-line message: control, bidi and other unprintable
    characters escaped, cut at ``limit``. Parsers quote the offending value, and a hostile file
    makes it as long and as terminal-unfriendly (``\\x1b[2J``, U+202E) as it likes."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_text(s: str) -> str:
    """``s`` with lone surrogates replaced by U+FFFD, so that SQLite (UTF-8) can store it.

    They come from hostile input: ``"\\ud800"`` escapes in a HAR's JSON, and mitmproxy's
    ``surrogateescape`` decoding of non-UTF-8 bytes in a request path or host.
    """
    if s.isascii() or _SURROGATE.search(s) is None:
        return s
    return _SURROGATE.sub("\ufffd", s)


def _dirty(value: Any) -> bool:
    """Whether a str, or a tuple of them (query keys, header pairs), holds a lone surrogate."""
    if isinstance(value, str):
        return not value.isascii() and _SURROGATE.search(value) is not None
    return isinstance(value, tuple) and any(_dirty(v) for v in value)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return utf8_text(value)
    if isinstance(value, tuple):
        return tuple(_clean(v) for v in value)
    return value


def storable(item: Connection | DnsRecord) -> Connection | DnsRecord | None:
    """The record as SQLite can hold it, or None if it has no usable start time (NaN, missing).

    Strings are made UTF-8-encodable (:func:`utf8_text`); a number SQLite cannot hold (an integer
    beyond 64 bits, a NaN or infinite end time) becomes the field's default (0 bytes, no port …).
    The same object is returned when nothing needed changing, which is the common case.
    """
    if not isinstance(item.ts, int | float):
        return None
    changes: dict[str, Any] = {}
    for name, default in _DEFAULTS[type(item)]:
        value = getattr(item, name)
        kind = type(value)
        if value is None or kind is bool or (kind is str and value.isascii()):
            continue
        if kind is int or kind is float:
            if -(2**63) <= value < 2**63 if kind is int else math.isfinite(value):
                continue
            if default is dataclasses.MISSING:  # the start time
                return None
            changes[name] = default
        elif isinstance(value, HttpRequestData):
            if _dirty(value.url) or _dirty(value.headers):
                changes[name] = dataclasses.replace(value, url=utf8_text(value.url), headers=_clean(value.headers))
        elif _dirty(value):
            changes[name] = _clean(value)
    return dataclasses.replace(item, **changes) if changes else item


_DEFAULTS = {cls: tuple((f.name, f.default) for f in dataclasses.fields(cls)) for cls in (Connection, DnsRecord)}


class BoundedReader:
    """A binary file whose ``read(n)`` never asks for more than the rest of the file.

    Length fields in captures are hostile: a pcap record claiming 4 GiB or a tnetstring with a
    12-digit length prefix would otherwise make the reader allocate that much before finding out
    that the file is shorter (a ``MemoryError`` on any machine for the tnetstring). The data
    returned is the same; only the allocation is bounded.
    """

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.name = getattr(f, "name", "<capture>")
        self.size = os.fstat(f.fileno()).st_size

    def read(self, n: int = -1) -> bytes:
        if n > 1 << 16:
            n = min(n, max(0, self.size - self.f.tell()))
        return self.f.read(n)

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos, whence)
