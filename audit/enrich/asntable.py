"""IP → AS number + organisation from a range table the user imports (fact 2 of a destination).

The embedded geo-IP data (``geoip2fast``) names the AS organisation but has no AS *numbers*, and no
package on PyPI ships IP-to-ASN data. ``audit geoip import`` therefore reads range files the user
downloads once and compiles them into a small SQLite file, ``asn-table.sqlite`` in
:func:`audit.paths.audit_home`, which every later command (and the mitmproxy addon) consults ahead of
the embedded data. Nothing is downloaded and no third-party data ships with this project.

Accepted input (plain or gzip-compressed, one range per line, inclusive bounds):

* comma-separated ``start,end,asn,organisation``, bounds as IP literals or as integers: ip-location-db's
  ``asn-ipv4.csv`` / ``asn-ipv6.csv`` / ``*-num.csv``, DB-IP's "IP to ASN Lite" CSV;
* comma-separated ``network,asn,organisation`` (CIDR): MaxMind's ``GeoLite2-ASN-Blocks-IPv4.csv`` and
  ``-IPv6.csv``;
* tab-separated ``start<TAB>end<TAB>asn<TAB>country<TAB>organisation``: iptoasn.com's
  ``ip2asn-v4.tsv``, ``ip2asn-v6.tsv``, ``ip2asn-combined.tsv`` and ``ip2asn-v4-u32.tsv``
  (AS 0, "Not routed", is skipped).

* tab-separated ``prefix<TAB>length<TAB>asn``: CAIDA's RouteViews prefix2as (``routeviews-rv2-*.pfx2as``;
  no organisation names; multi-origin prefixes such as ``13335_4826`` are skipped as ambiguous).

Integer bounds up to 2**32-1 are IPv4, larger ones IPv6. Blank lines, ``#`` comments and a header line
are ignored; malformed lines are counted and skipped. A range nested in another wins inside it (longest
prefix match); a range that partly overlaps the one it starts in, or repeats it, is dropped (ties: the
earlier file, then the earlier line) and counted as overlapping.

Both address families share one ordered key space: 16-byte big-endian integers, IPv4 mapped into
``::ffff:0:0/96``. A lookup is one indexed ``start <= key ORDER BY start DESC LIMIT 1`` query.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import ipaddress
import itertools
import json
import logging
import os
import re
import socket
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.enrich.backend import GeoAnswer, GeoIpBackend
from audit.errors import ConfigError, InputError
from audit.names import parse_ip
from audit.paths import audit_home

log = logging.getLogger(__name__)

TABLE_NAME = "asn-table.sqlite"
SCHEMA_VERSION = 1
#: Longest organisation name kept (longer ones are cut): the data comes from files we do not control.
MAX_ORG = 200
#: Limits on hostile input, far above the public data sets (ip-location-db: 45 MB of text,
#: 515k ranges; iptoasn.com and CAIDA prefix2as: under 1.5M ranges).
MAX_LINE = 4096
MAX_TEXT = 1 << 30
MAX_RANGES = 3_000_000
_V4_MAPPED = 0xFFFF << 32
_MAX_V6 = (1 << 128) - 1
_MAX_ASN = (1 << 32) - 1
_DATE_IN_NAME = re.compile(r"(?<!\d)(20\d\d)-?(0[1-9]|1[0-2])(?:-?(0[1-9]|[12]\d|3[01]))?(?!\d)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DATE = re.compile(r"20\d\d-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?")


def default_table_path() -> Path:
    """Where ``audit geoip import`` writes and every command looks: ``$AUDIT_HOME/asn-table.sqlite``."""
    return audit_home() / TABLE_NAME


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _bound(text: str) -> int | None:
    """A range bound as a 128-bit key (IPv4 mapped), or None if it is neither an IP nor an integer."""
    text = text.strip()
    if _is_number(text):
        n = int(text)
        if n <= 0xFFFFFFFF:
            return _V4_MAPPED | n
        return n if n <= _MAX_V6 else None
    try:  # the common forms, fast
        if ":" in text:  # an IPv4-mapped address (::ffff:1.2.3.4) already is its IPv4 key
            return int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
        return _V4_MAPPED | int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    addr = parse_ip(text) if text else None
    return None if addr is None else _addr_key(addr)


def _addr_key(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """The 128-bit key of an address: IPv4 inside ``::ffff:0:0/96``."""
    return _V4_MAPPED | int(addr) if addr.version == 4 else int(addr)


def _is_number(text: str) -> bool:
    """ASCII decimal digits only (``str.isdigit`` also accepts ``²`` and other digits ``int`` refuses)."""
    return text.isascii() and text.isdecimal()


def _clean_org(text: str) -> str | None:
    org = _CONTROL.sub(" ", text).strip()
    return org[:MAX_ORG] or None


@dataclass
class FileStats:
    """What one input file contributed."""

    name: str
    sha256: str
    size: int
    format: str
    rows: int = 0
    malformed: int = 0
    unrouted: int = 0


def _open_text(path: Path) -> tuple[io.TextIOBase, str]:
    """Text stream of a plain or gzip file and the sha256 of its bytes on disk."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            head = f.read(2)
            f.seek(0)
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        raw: Any = gzip.open(path, "rb") if head == b"\x1f\x8b" else path.open("rb")
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=""), digest.hexdigest()


Row = tuple[int, int, int, str | None]


#: Input formats, as named in the summary.
CSV, IPTOASN, PFX2AS = "csv (start,end,asn,org)", "tsv (iptoasn)", "tsv (pfx2as)"


def _sniff(line: str) -> str:
    if "\t" not in line:
        return CSV
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) == 3 and _is_number(fields[1].strip()) and int(fields[1]) <= 128:
        return PFX2AS
    return IPTOASN


def _lines(path: Path, stats: FileStats, text: io.TextIOBase) -> Iterator[str]:
    """The file's lines, each cut at :data:`MAX_LINE` characters (an over-long line is counted as
    malformed and skipped), stopping with InputError past :data:`MAX_TEXT` characters: a gzip bomb
    or a single endless line never reaches memory."""
    total = 0
    while True:
        line = text.readline(MAX_LINE + 1)
        if not line:
            return
        total += len(line)
        if len(line) > MAX_LINE:  # skip the rest of it
            stats.malformed += 1
            while line and not line.endswith("\n"):
                line = text.readline(MAX_LINE + 1)
                total += len(line)
                if total > MAX_TEXT:
                    break
            line = ""
        if total > MAX_TEXT:
            raise InputError(f"{path}: more than {MAX_TEXT >> 20} MiB of text (a decompression bomb?)")
        if line:
            yield line


def _rows(path: Path, stats: FileStats, text: io.TextIOBase) -> Iterator[Row]:
    """Ranges of one file; updates ``stats`` (format, malformed, unrouted) as it goes."""
    try:
        lines = (
            line for line in _lines(path, stats, text) if line.strip() and not line.lstrip().startswith("#")
        )
        first = next(lines, None)
        if first is None:
            return
        fmt = stats.format = _sniff(first)
        records: Iterator[list[str]] = (
            _csv_records(itertools.chain([first], lines))
            if fmt == CSV
            else (line.rstrip("\r\n").split("\t") for line in itertools.chain([first], lines))
        )
        for n, fields in enumerate(records):
            parsed = _parse_fields(fields, fmt)
            if parsed is None:
                # The first line may be a header, but not if it starts like a range.
                if n or (fields and _bound(fields[0]) is not None):
                    stats.malformed += 1
            elif parsed[2] == 0:
                stats.unrouted += 1
            else:
                yield parsed
    except (OSError, EOFError, zlib.error, ValueError) as e:  # truncated or corrupt gzip stream
        raise InputError(f"{path}: cannot read past range {stats.rows + stats.malformed} ({e})") from e


def _csv_records(lines: Iterator[str]) -> Iterator[list[str]]:
    """CSV records; a line the csv module rejects (e.g. an over-long field) becomes an empty record."""
    reader = csv.reader(lines)
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield []


def _parse_fields(fields: Sequence[str], fmt: str) -> Row | None:
    if fmt == PFX2AS:
        return _parse_prefix(fields)
    if fmt == CSV and fields and "/" in fields[0]:  # MaxMind GeoLite2-ASN CSV: network,asn,org
        return _parse_network(fields)
    if len(fields) < (5 if fmt == IPTOASN else 3):
        return None
    start, end = _bound(fields[0]), _bound(fields[1])
    asn = _asn(fields[2])
    if start is None or end is None or end < start or asn is None:
        return None
    if (start >> 32 == 0xFFFF) != (end >> 32 == 0xFFFF):  # one bound IPv4, the other IPv6
        return None
    org_text = fields[4] if fmt == IPTOASN else (",".join(fields[3:]) if len(fields) > 3 else "")
    org = _clean_org(org_text)
    if fmt == IPTOASN and org == "Not routed":
        org = None
    return (start, end, asn, org)


def _asn(text: str) -> int | None:
    """``13335`` or ``AS13335``; None for anything else, multi-origin ``13335_4826`` included."""
    t = text.strip().upper().removeprefix("AS")
    if not _is_number(t):
        return None
    n = int(t)
    return n if n <= _MAX_ASN else None


def _network_bounds(text: str) -> tuple[int, int] | None:
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    start, end = int(net.network_address), int(net.broadcast_address)
    return (_V4_MAPPED | start, _V4_MAPPED | end) if net.version == 4 else (start, end)


def _parse_network(fields: Sequence[str]) -> Row | None:
    """``network,asn,organisation``: MaxMind's GeoLite2-ASN-Blocks-IPv4/IPv6.csv."""
    if len(fields) < 2:
        return None
    bounds, asn = _network_bounds(fields[0]), _asn(fields[1])
    if bounds is None or asn is None:
        return None
    return (bounds[0], bounds[1], asn, _clean_org(",".join(fields[2:])))


def _parse_prefix(fields: Sequence[str]) -> Row | None:
    """CAIDA RouteViews prefix2as: ``prefix<TAB>length<TAB>asn`` (no organisation names)."""
    if len(fields) != 3 or not _is_number(fields[1].strip()):
        return None
    bounds, asn = _network_bounds(f"{fields[0].strip()}/{int(fields[1])}"), _asn(fields[2])
    if bounds is None or asn is None:
        return None
    return (bounds[0], bounds[1], asn, None)


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportSummary:
    """Result of :func:`import_table`."""

    path: str
    label: str
    date: str | None
    ranges: int
    ipv4: int
    ipv6: int
    malformed: int
    overlapping: int
    unrouted: int
    files: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def describe(self) -> str:
        skipped = (
            f"{self.malformed:,} malformed, {self.overlapping:,} overlapping, {self.unrouted:,} not routed"
        )
        return (
            f"imported {self.ranges:,} ranges ({self.ipv4:,} IPv4, {self.ipv6:,} IPv6) from "
            f"{len(self.files)} file(s) as {self.label!r} ({self.date or 'undated'}) into {self.path}; "
            f"skipped {skipped}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "label": self.label, "date": self.date, "ranges": self.ranges,
            "ipv4": self.ipv4, "ipv6": self.ipv6, "malformed": self.malformed,
            "overlapping": self.overlapping, "unrouted": self.unrouted, "files": list(self.files),
        }  # fmt: skip


def _guess_date(paths: Sequence[Path]) -> str | None:
    """``YYYY-MM-DD`` (or ``YYYY-MM``) from the file names (``dbip-asn-lite-2026-11.csv``), else the
    newest file modification date."""
    for p in paths:
        m = _DATE_IN_NAME.search(p.name)
        if m:
            return f"{m[1]}-{m[2]}-{m[3]}" if m[3] else f"{m[1]}-{m[2]}"
    try:
        newest = max(p.stat().st_mtime for p in paths)
    except (OSError, ValueError):
        return None
    day = dt.datetime.fromtimestamp(newest, dt.UTC).date()
    # npm tarballs and some archivers set a fixed 1985 timestamp: that is no date of the data.
    return day.isoformat() if day.year >= 2000 else None


def _flatten(
    ranges: list[tuple[int, int, int, int, int, int]],
) -> tuple[list[tuple[int, int, int, int]], int]:
    """Non-overlapping ranges from ``(start, -end, file, line, asn, org)`` tuples (sorted here).

    A range nested in another one wins inside it (a more specific BGP prefix, or a sub-allocation),
    the outer one keeps the parts around it. A range that sticks out of the one it starts in, or
    repeats it exactly, is dropped: ties go to the earlier file, then the earlier line. Returns the
    pieces and the number of ranges dropped."""
    ranges.sort()
    out: list[tuple[int, int, int, int]] = []
    stack: list[tuple[int, int, int, int]] = []  # open ranges, innermost last: start, end, asn, org id
    cursor = 0  # first address not yet written out
    dropped = 0

    def close_before(pos: int) -> None:
        nonlocal cursor
        while stack and stack[-1][1] < pos:
            _s, end, asn, org = stack.pop()
            if cursor <= end:
                out.append((cursor, end, asn, org))
                cursor = end + 1

    for start, neg_end, _file, _line, asn, org in ranges:
        end = -neg_end
        close_before(start)
        if stack:
            top_start, top_end, top_asn, top_org = stack[-1]
            if end > top_end or (start, end) == (top_start, top_end):
                dropped += 1
                continue
            if cursor < start:
                out.append((cursor, start - 1, top_asn, top_org))
        cursor = start
        stack.append((start, end, asn, org))
    close_before(_MAX_V6 + 1)
    return out, dropped


_V4_BLOCK_END = _V4_MAPPED | 0xFFFFFFFF


def _outside_v4_block(start: int, end: int) -> list[tuple[int, int]]:
    """An IPv6 range without the part inside ``::ffff:0:0/96``, where IPv4 addresses are kept (an
    IPv6 row covering it must not answer for IPv4 addresses); IPv4 ranges unchanged."""
    if start >> 32 == 0xFFFF and end >> 32 == 0xFFFF:
        return [(start, end)]
    if end < _V4_MAPPED or start > _V4_BLOCK_END:
        return [(start, end)]
    pieces = []
    if start < _V4_MAPPED:
        pieces.append((start, _V4_MAPPED - 1))
    if end > _V4_BLOCK_END:
        pieces.append((_V4_BLOCK_END + 1, end))
    return pieces


def _key(n: int) -> bytes:
    return n.to_bytes(16, "big")


def import_table(
    files: Sequence[str | os.PathLike[str]],
    dest: str | os.PathLike[str] | None = None,
    *,
    label: str | None = None,
    date: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Compile range ``files`` into an ASN table at ``dest`` (default :func:`default_table_path`),
    replacing it atomically. ``date`` is ``YYYY-MM-DD`` or ``YYYY-MM``; ``progress`` gets a line
    per file read and before the table is written. Raises :class:`InputError` for unreadable files,
    a bad date, or when no valid range is found (the existing table is then left untouched)."""
    paths = [Path(f) for f in files]
    if not paths:
        raise InputError("no input file given")
    if date is not None and not _DATE.fullmatch(date):
        raise InputError(f"{date!r}: the date must be YYYY-MM-DD or YYYY-MM")
    target = Path(dest) if dest is not None else default_table_path()
    collected: list[tuple[int, int, int, int, int, int]] = []  # start, -end, file, line, asn, org id
    org_ids: dict[str | None, int] = {None: 0}  # names interned once: most ranges share a few names
    stats: list[FileStats] = []
    for i, p in enumerate(paths):
        if not p.is_file():
            raise InputError(f"{p}: not found")
        text, sha = _open_text(p)
        st = FileStats(name=p.name, sha256=sha, size=p.stat().st_size, format="empty")
        with text:
            for j, (start, end, asn, org) in enumerate(_rows(p, st, text)):
                oid = org_ids.setdefault(org, len(org_ids))
                for a, b in _outside_v4_block(start, end):
                    collected.append((a, -b, i, j, asn, oid))
                st.rows += 1
                if len(collected) > MAX_RANGES:
                    raise InputError(f"{p}: more than {MAX_RANGES:,} ranges in all (not an IP-to-ASN file?)")
        stats.append(st)
        log.info("%s: %d ranges, %d malformed lines", p, st.rows, st.malformed)
        if progress is not None:
            progress(f"{p}: {st.rows:,} ranges, {st.malformed:,} malformed lines")
    if not collected:
        bad = sum(s.malformed for s in stats)
        raise InputError(
            f"{', '.join(str(p) for p in paths)}: no IP range found ({bad} malformed lines); expected "
            "'start,end,asn,organisation' CSV or iptoasn TSV lines"
        )
    kept, overlapping = _flatten(collected)
    del collected
    names = {oid: name for name, oid in org_ids.items()}
    ipv4 = sum(1 for r in kept if r[0] >> 32 == 0xFFFF)
    the_label = _clean_org(label or "") or "ASN table " + ", ".join(p.name for p in paths)
    the_date = date or _guess_date(paths)
    files_info = tuple(
        {"name": s.name, "sha256": s.sha256, "size": s.size, "format": s.format, "ranges": s.rows,
         "malformed": s.malformed, "unrouted": s.unrouted}
        for s in stats
    )  # fmt: skip
    summary = ImportSummary(
        path=str(target), label=the_label, date=the_date, ranges=len(kept), ipv4=ipv4, ipv6=len(kept) - ipv4,
        malformed=sum(s.malformed for s in stats), overlapping=overlapping,
        unrouted=sum(s.unrouted for s in stats), files=files_info,
    )  # fmt: skip
    if progress is not None:
        progress(f"writing {len(kept):,} ranges to {target}")
    _write(target, kept, names, summary)
    return summary


def _write(
    target: Path, rows: list[tuple[int, int, int, int]], names: dict[int, str | None], summary: ImportSummary
) -> None:
    """The table, written to a temporary file next to ``target`` and moved over it (``rows``:
    start, end, AS number, organisation id into ``names``; 0 for none)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        con = sqlite3.connect(tmp)
        try:
            con.executescript(
                """
                PRAGMA journal_mode = OFF;
                PRAGMA synchronous = OFF;
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE orgs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
                CREATE TABLE ranges (start BLOB PRIMARY KEY, "end" BLOB NOT NULL,
                                     asn INTEGER NOT NULL, org INTEGER REFERENCES orgs(id)) WITHOUT ROWID;
                """
            )
            used = sorted({o for _s, _e, _a, o in rows if o})
            con.executemany("INSERT INTO orgs (id, name) VALUES (?, ?)", ((i, names[i]) for i in used))
            con.executemany(
                "INSERT INTO ranges VALUES (?, ?, ?, ?)",
                ((_key(s), _key(e), a, o or None) for s, e, a, o in rows),
            )
            meta = {
                "schema": str(SCHEMA_VERSION),
                "label": summary.label,
                "date": summary.date or "",
                "imported_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                "summary": json.dumps({k: v for k, v in summary.to_dict().items() if k != "path"}),
            }
            con.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            con.commit()
        finally:
            con.close()
        os.replace(tmp, target)
    except (OSError, sqlite3.Error) as e:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{target}: cannot write the ASN table ({e})") from e


# --------------------------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------------------------


class AsnTableGeoIp(GeoIpBackend):
    """An ASN table made by :func:`import_table`; opened read-only and validated on construction."""

    provides_asn = True
    source_id = "asn-table"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        if not Path(self.path).is_file():
            raise ConfigError(f"{self.path}: ASN table not found")
        try:
            uri = Path(self.path).resolve().as_uri() + "?mode=ro"
            self._con = sqlite3.connect(uri, uri=True, check_same_thread=False)
            meta = dict(self._con.execute("SELECT key, value FROM meta").fetchall())
            self._con.execute('SELECT start, "end", asn, org FROM ranges LIMIT 1').fetchall()
        except sqlite3.Error as e:
            con = getattr(self, "_con", None)
            if con is not None:
                con.close()
            raise ConfigError(
                f"{self.path}: not an ASN table made by `audit geoip import` ({e}); import it again or delete it"
            ) from e
        if meta.get("schema") != str(SCHEMA_VERSION):
            self._con.close()
            raise ConfigError(
                f"{self.path}: ASN table schema {meta.get('schema')!r} is not supported; import it again"
            )
        self._label = str(meta.get("label") or "ASN table")
        self._date = str(meta.get("date") or "") or None
        self.imported_at = str(meta.get("imported_at") or "") or None
        try:
            summary = json.loads(meta.get("summary") or "{}")
        except ValueError:
            summary = {}
        self.summary: dict[str, Any] = summary if isinstance(summary, dict) else {}
        files = self.summary.get("files")
        self.files: list[dict[str, Any]] = (
            [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
        )
        shas = "".join(sorted(str(f.get("sha256", "")) for f in self.files))
        #: Short digest of the source files: two imports of different data under the same label and
        #: date still get different labels, so answers cached from the old data are not reused.
        self.data_id = hashlib.sha256(shas.encode()).hexdigest()[:8]
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        return f"{self._label} ({self._date or 'undated'}, data {self.data_id})"

    @property
    def date(self) -> str | None:
        return self._date

    @property
    def provenance(self) -> str | None:
        """``imported 2026-11-28T20:00:00+00:00 from asn-ipv4.csv (sha256 1f2e…), …``."""
        parts = [
            f"{f.get('name')} (sha256 {str(f.get('sha256', ''))[:16]}…, {f.get('ranges')} ranges)"
            for f in self.files
        ]
        when = f"imported {self.imported_at}" if self.imported_at else "imported"
        return f"{when} from {', '.join(parts)}" if parts else when

    def close(self) -> None:
        self._con.close()

    def lookup(self, ip: str) -> GeoAnswer:
        addr = parse_ip(ip)
        if addr is None:
            return GeoAnswer()
        key = _key(_addr_key(addr))
        try:
            with self._lock:
                row = self._con.execute(
                    'SELECT r."end", r.asn, o.name FROM ranges r LEFT JOIN orgs o ON o.id = r.org '
                    "WHERE r.start <= ? ORDER BY r.start DESC LIMIT 1",
                    (key,),
                ).fetchone()
        except sqlite3.Error as e:  # a corrupt page: no answer, keep going
            log.warning("%s: lookup of %s failed: %s", self.path, ip, e)
            return GeoAnswer()
        if row is None or not isinstance(row[0], bytes) or row[0] < key:
            return GeoAnswer()
        asn = row[1] if isinstance(row[1], int) else None
        org = row[2] if isinstance(row[2], str) else None
        return GeoAnswer(asn=asn, asn_org=org)


def open_default_table() -> AsnTableGeoIp | None:
    """The imported table at :func:`default_table_path`, or None when none was imported."""
    path = default_table_path()
    return AsnTableGeoIp(path) if path.is_file() else None


__all__ = [
    "AsnTableGeoIp",
    "ImportSummary",
    "TABLE_NAME",
    "default_table_path",
    "import_table",
    "open_default_table",
]
