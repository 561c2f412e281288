"""The traffic importer interface: one implementation per saved-traffic format.

An importer turns one file into a stream of :class:`~audit.models.Connection` and
:class:`~audit.models.DnsRecord` objects. It never touches the case file: :func:`audit.traffic.importers.import_file`
writes the stream in one transaction, so that an importer raising :class:`~audit.errors.ImportFormatError`
half-way leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol

from audit.errors import one_line
from audit.models import (
    EARLIEST_TIME,
    FUTURE_SLACK,
    Connection,
    DataFinding,
    DnsRecord,
    HttpRequestData,
    plausible_time,
)
from audit.names import normalize_ip


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
    reads_in_child: ClassVar[bool] = False
    """Whether a big file of this format is read in a forked child while the import detects and
    stores (:mod:`audit.traffic.importers.reader_process`): where reading is about half the work."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.problems = Problems()
        """Problems with single entries, counted per kind (see :func:`checked`)."""
        self.where = ""
        """Where the record being yielded comes from, as a user finds it (``log.entries[7]``,
        ``flow 3``, a pcap connection), for the warnings that name it."""

    @classmethod
    @abstractmethod
    def sniff(cls, head: bytes) -> bool:
        """True if ``head`` (the first few KiB of a file) looks like this format."""

    @abstractmethod
    def read(self, path: Path, *, app: str = "") -> Iterator[Connection | DnsRecord]:
        """Yield what the file holds, tagged with the analyst's ``app`` label ("" = unknown)."""


class Problems:
    """Non-fatal problems of single entries of one input, counted per kind with the first few entries
    named: a file with 200,000 bad entries gives one line per kind, not 200,000 lines."""

    SHOWN = 3

    def __init__(self) -> None:
        self._kinds: dict[str, tuple[int, list[str]]] = {}

    def add(self, message: str, where: str, value: str | None = None) -> None:
        count, places = self._kinds.get(message, (0, []))
        if len(places) < self.SHOWN:
            places.append(f"{where} {one_line(value, 40)}" if value is not None else where)
        self._kinds[message] = (count + 1, places)

    def __bool__(self) -> bool:
        return bool(self._kinds)

    def lines(self) -> list[str]:
        out = []
        for message, (count, places) in self._kinds.items():
            more = ", …" if count > len(places) else ""
            out.append(f"{count} record(s) {message} ({', '.join(places)}{more})")
        return out


#: Problems :func:`checked` reports (also the text of the input's notes).
TIME_PROBLEM = (
    f"with a time outside {time.strftime('%Y-%m-%d', time.gmtime(EARLIEST_TIME))}..now+{FUTURE_SLACK / 86400:g} day: "
    "kept, but left out of timelines and first/last-seen times"
)
IP_PROBLEM = "with a server IP that is not an IP address: the IP was left out"
PORT_PROBLEM = "with a port outside 0..65535: the port was left out"
BYTES_PROBLEM = "with a negative byte count: counted as 0"
HOST_PROBLEM = f"with a host name longer than {253} characters: cut"
ANSWER_PROBLEM = (
    "with DNS answers that are neither an IP address nor a host name: those answers were left out"
)
_MAX_HOST = 253
_MAX_IP_TEXT = 100  # an IPv6 literal with a zone id is far shorter: no need to parse megabytes


def valid_ip(value: object) -> bool:
    # normalize_ip is memoised: a capture contacts the same few hundred addresses again and again
    return isinstance(value, str) and len(value) <= _MAX_IP_TEXT and normalize_ip(value) is not None


def checked(
    item: Connection | DnsRecord, where: str, problems: Problems, now: float
) -> Connection | DnsRecord:
    """``item`` with the values no formatter should meet left out, each noted in ``problems``
    under ``where`` (issue 15): an IP field that does not parse as an address (a 40 MiB
    ``serverIPAddress``), a port outside 0..65535, a host longer than a DNS name can be, DNS answers
    that are neither. A time outside :func:`audit.models.time_window` is kept (the record is real
    traffic with a broken clock) and noted; every time computation leaves it out."""
    end = item.end_ts if isinstance(item, Connection) else None
    if not plausible_time(item.ts, now) or (end is not None and not plausible_time(end, now)):
        problems.add(TIME_PROBLEM, where, repr(item.ts if not plausible_time(item.ts, now) else end))
    changes: dict[str, Any] = {}
    if isinstance(item, DnsRecord):
        answers = tuple(
            a for a in item.answers if valid_ip(a) or (isinstance(a, str) and len(a) <= _MAX_HOST)
        )
        if answers != item.answers:
            problems.add(ANSWER_PROBLEM, where)
            changes["answers"] = answers
        if len(item.name) > _MAX_HOST:
            problems.add(HOST_PROBLEM, where)
            changes["name"] = item.name[:_MAX_HOST]
        return dataclasses.replace(item, **changes) if changes else item
    if item.ip is not None and not valid_ip(item.ip):
        problems.add(IP_PROBLEM, where, str(item.ip))
        changes["ip"] = None
    if item.port is not None and not (isinstance(item.port, int) and 0 <= item.port <= 65535):
        problems.add(PORT_PROBLEM, where, str(item.port))
        changes["port"] = None
    for name in ("bytes_out", "bytes_in"):
        if getattr(item, name) < 0:
            problems.add(BYTES_PROBLEM, where, str(getattr(item, name)))
            changes[name] = 0
    for name in ("host", "sni"):
        value = getattr(item, name)
        if isinstance(value, str) and len(value) > _MAX_HOST:
            problems.add(HOST_PROBLEM, where, value)
            changes[name] = value[:_MAX_HOST]
    return dataclasses.replace(item, **changes) if changes else item


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
