"""The traffic importer interface: one implementation per saved-traffic format.

An importer turns one file into a stream of :class:`~audit.models.Connection` and
:class:`~audit.models.DnsRecord` objects. It never touches the case file: :func:`audit.traffic.importers.import_file`
writes the stream in one transaction, so that an importer raising :class:`~audit.errors.ImportFormatError`
half-way leaves nothing behind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Protocol

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
