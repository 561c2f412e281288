"""The case file: one SQLite database per case, shared by ``audit scan --db``, the mitmproxy addon,
``audit import`` and the graph/report.

WAL mode so that the report can read while the proxy writes; the schema version lives in
``PRAGMA user_version`` and migrations are idempotent and applied in order on open.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
import os
import shlex
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from audit.errors import StoreError
from audit.models import Connection, DataFinding, DnsRecord, HttpRequestData, IpInfo, ScanResult, time_window
from audit.names import normalize_host

log = logging.getLogger(__name__)

DEFAULT_DB = "audit.sqlite"


def default_db_path() -> str:
    """``$AUDIT_DB`` or ``./audit.sqlite``."""
    return os.environ.get("AUDIT_DB") or DEFAULT_DB


# Each entry migrates from version i to i+1. Never edit a released entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    # 1: initial schema
    """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
    CREATE TABLE IF NOT EXISTS inputs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,          -- apk, flows, har, pcap, live, device-profile, mmdb
        path TEXT NOT NULL,
        sha256 TEXT,
        app TEXT NOT NULL DEFAULT '',
        added_at REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS scans (
        id INTEGER PRIMARY KEY,
        app TEXT NOT NULL,
        package TEXT,
        version_name TEXT,
        version_code TEXT,
        sha256 TEXT NOT NULL,
        file TEXT NOT NULL,
        format TEXT NOT NULL,
        scanned_at REAL NOT NULL,
        result TEXT NOT NULL        -- ScanResult.to_dict() as JSON
    );
    CREATE INDEX IF NOT EXISTS scans_app ON scans(app);
    CREATE TABLE IF NOT EXISTS connections (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        end_ts REAL,
        app TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL,
        protocol TEXT NOT NULL,
        tls TEXT NOT NULL DEFAULT 'none',
        host TEXT,
        sni TEXT,
        ip TEXT,
        port INTEGER,
        client TEXT,
        method TEXT,
        scheme TEXT,
        path TEXT,
        query_keys TEXT,            -- JSON list
        status INTEGER,
        bytes_out INTEGER NOT NULL DEFAULT 0,
        bytes_in INTEGER NOT NULL DEFAULT 0,
        request_content_type TEXT,
        response_content_type TEXT,
        http_version TEXT,
        tls_version TEXT,
        alpn TEXT,
        error TEXT
    );
    CREATE INDEX IF NOT EXISTS connections_app ON connections(app);
    CREATE INDEX IF NOT EXISTS connections_dest ON connections(host, ip, port);
    CREATE TABLE IF NOT EXISTS findings (
        id INTEGER PRIMARY KEY,
        connection_id INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
        data_type TEXT NOT NULL,
        location TEXT NOT NULL,
        encoding TEXT NOT NULL,
        confidence TEXT NOT NULL,
        masked TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS findings_conn ON findings(connection_id);
    CREATE TABLE IF NOT EXISTS dns (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        app TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL,
        name TEXT NOT NULL,
        qtype TEXT NOT NULL,
        answer TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS dns_answer ON dns(answer);
    CREATE TABLE IF NOT EXISTS ip_info (
        ip TEXT PRIMARY KEY,
        scope TEXT NOT NULL,
        country TEXT,
        city TEXT,
        asn INTEGER,
        asn_org TEXT,
        database TEXT,
        database_date TEXT
    );
    """,
    # 2: request content, for re-running data detection (audit pii)
    """
    CREATE TABLE IF NOT EXISTS requests (
        connection_id INTEGER PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
        url TEXT NOT NULL,
        headers TEXT NOT NULL,      -- JSON list of [name, value]
        body BLOB NOT NULL,
        body_truncated INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 3: live capture defers data detection to a low-priority worker: requests still to be scanned
    """
    ALTER TABLE requests ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX IF NOT EXISTS requests_pending ON requests(connection_id) WHERE pending = 1;
    """,
    # 4: network flags of a server IP (anycast …) from the IPFire location database, comma-separated,
    #    the label of the location database consulted for them (NULL: none was in use), and the
    #    databases in use when the answer was made (the cache key; NULL before this version)
    """
    ALTER TABLE ip_info ADD COLUMN network_flags TEXT NOT NULL DEFAULT '';
    ALTER TABLE ip_info ADD COLUMN flags_database TEXT;
    ALTER TABLE ip_info ADD COLUMN setup TEXT;
    """,
    # 5: corpus batches (audit batch): one row per distinct package (sha256) with its outcome, every
    #    path it was found at (size and mtime: a path seen before is not hashed again on --resume),
    #    and one row per run
    """
    CREATE TABLE IF NOT EXISTS batch_apps (
        sha256 TEXT PRIMARY KEY,     -- or 'path:<path>' for a file that could not even be read
        status TEXT NOT NULL,        -- done, failed or ignored (not an Android package)
        scan_id INTEGER REFERENCES scans(id) ON DELETE SET NULL,
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        seconds REAL,
        peak_rss INTEGER,            -- KiB, of the scan process
        size INTEGER,
        finished_at REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS batch_paths (
        path TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS batch_paths_sha256 ON batch_paths(sha256);
    CREATE TABLE IF NOT EXISTS batch_runs (
        id INTEGER PRIMARY KEY,
        started_at REAL NOT NULL,
        finished_at REAL,
        backend TEXT NOT NULL,
        roots TEXT NOT NULL,         -- JSON list of the paths given
        summary TEXT                 -- JSON of the run's summary, once it finished
    );
    """,
    # 6: what went wrong with an input, one note per line: records the live writer could not store,
    #    an import's warnings (a truncated tail, implausible times …), so that the case says so too
    """
    ALTER TABLE inputs ADD COLUMN notes TEXT NOT NULL DEFAULT '';
    """,
    # 7: how each connection is tied to the app, and whether its content was read
    #    (Connection.attribution, Connection.inspected; issue 12). Rows of older cases get the rule
    #    of Connection.inspected once here; every later row is written with the property's value.
    """
    ALTER TABLE connections ADD COLUMN attribution TEXT NOT NULL DEFAULT 'label';
    ALTER TABLE connections ADD COLUMN inspected INTEGER NOT NULL DEFAULT 0;
    UPDATE connections SET inspected = CASE
        WHEN tls IN ('intercepted', 'decrypted') THEN 1
        WHEN tls = 'none' AND protocol IN ('http', 'ws') THEN 1
        ELSE 0 END;
    """,
    # 8: which kind of database answered the AS number and which named it (IpInfo.asn_source,
    #    IpInfo.asn_org_source; issue 12). Older answers carry another setup and are made again.
    """
    ALTER TABLE ip_info ADD COLUMN asn_source TEXT;
    ALTER TABLE ip_info ADD COLUMN asn_org_source TEXT;
    """,
    # 9: the input each imported row came from (connections.input_id, dns.input_id), so that
    #    `audit import --replace` can replace exactly an input's rows (issue 12). Rows written before
    #    this version (and live rows) have none: meta 'untracked_inputs' is the last inputs id whose
    #    rows cannot be told apart.
    """
    ALTER TABLE connections ADD COLUMN input_id INTEGER;
    ALTER TABLE dns ADD COLUMN input_id INTEGER;
    INSERT OR REPLACE INTO meta(key, value) VALUES ('untracked_inputs', (SELECT coalesce(max(id), 0) FROM inputs));
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

_CONN_COLS = (
    "ts", "end_ts", "app", "source", "protocol", "tls", "host", "sni", "ip", "port", "client",
    "method", "scheme", "path", "query_keys", "status", "bytes_out", "bytes_in",
    "request_content_type", "response_content_type", "http_version", "tls_version", "alpn", "error",
    "attribution",
)  # fmt: skip
#: Columns written from a Connection but not read back into it: ``inspected`` (a property of the
#: record, stored so that SQL counts inspected traffic by the same rule).
_CONN_DERIVED = ("inspected",)


#: The connection columns of a Connection, read in C (an import stores hundreds of thousands).
_conn_values = operator.attrgetter(*_CONN_COLS, *_CONN_DERIVED)
_QUERY_KEYS = _CONN_COLS.index("query_keys")

# One statement and one encoder per row type: the single insert of the live writer and the batched
# insert of an import write the same rows (issue 16).
_INSERT_CONNECTION = (
    f"INSERT INTO connections(id, {', '.join((*_CONN_COLS, *_CONN_DERIVED))}, input_id)"
    f" VALUES ({', '.join('?' * (len(_CONN_COLS) + len(_CONN_DERIVED) + 2))})"
)
_INSERT_FINDING = "INSERT INTO findings(connection_id, data_type, location, encoding, confidence, masked) VALUES (?, ?, ?, ?, ?, ?)"
_INSERT_REQUEST = "INSERT INTO requests(connection_id, url, headers, body, body_truncated, pending) VALUES (?, ?, ?, ?, ?, ?)"
_INSERT_DNS = "INSERT INTO dns(ts, app, source, name, qtype, answer, input_id) VALUES (?, ?, ?, ?, ?, ?, ?)"


def _list_encoder() -> Callable[[Any], str]:
    """``json.dumps`` for the lists of a row (header pairs, query keys) without its set-up per call
    (a fifth of a row's cost): the C encoder that ``json.dumps`` builds on every call, built once,
    with the same options (``ensure_ascii``, ``", "`` and ``": "``, ``NaN`` allowed): the same text."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return json.dumps

    def default(o: Any) -> Any:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    encode = make(None, default, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return lambda value: "".join(encode(value, 0))


_dumps_list = _list_encoder()


def _connection_row(cid: int | None, c: Connection, input_id: int | None = None) -> list[Any]:
    """``connections`` values of ``c`` (``cid`` None: SQLite picks the id; ``input_id`` the
    imported input it came from, None for live rows)."""
    values = [cid, *_conn_values(c), input_id]
    values[_QUERY_KEYS + 1] = _query_keys_text(c.query_keys)
    # inspected: the same 0 or 1 stored, but an int binds directly; sqlite3 first offers a bool
    # (as None and bytes) to its adapters, a dozen attribute lookups per value (issue 15)
    values[-2] = int(values[-2])
    return values


_query_keys_texts: dict[tuple[str, ...], str] = {}


def _query_keys_text(keys: tuple[str, ...]) -> str:
    """``_dumps_list(keys)``, remembered: an import's requests repeat a few sets of query keys.
    Only tuples of strings are kept (``(1,) == (True,)``, but their texts differ), so a key found
    is equal element by element to a tuple of strings: the same text."""
    try:
        return _query_keys_texts[keys]
    except (KeyError, TypeError):  # not seen, or not hashable
        pass
    text = _dumps_list(keys)
    if type(keys) is tuple and all(type(k) is str for k in keys):
        if len(_query_keys_texts) >= 10_000:
            _query_keys_texts.clear()
        _query_keys_texts[keys] = text
    return text


def _finding_rows(cid: int, findings: Iterable[DataFinding]) -> list[tuple[Any, ...]]:
    return [(cid, f.data_type, f.location, f.encoding, f.confidence, f.masked) for f in findings]


def _request_row(cid: int, r: HttpRequestData, pending: bool) -> tuple[Any, ...]:
    # json.dumps writes tuples as lists: the stored form of the headers is [[name, value], …]
    return (cid, r.url, _dumps_list(r.headers), r.body, int(r.body_truncated), int(pending))


def _dns_rows(records: Iterable[DnsRecord], input_id: int | None = None) -> list[tuple[Any, ...]]:
    """One row per answer (one with an empty answer for a question without any)."""
    return [
        (r.ts, r.app, r.source, normalize_host(r.name) or "", r.qtype, a, input_id)
        for r in records for a in (r.answers or ("",))
    ]  # fmt: skip


def _notes_text(notes: Iterable[str]) -> str:
    """Notes as stored: one per line (a note's own line breaks become spaces)."""
    return "\n".join(" ".join(str(n).splitlines()) for n in notes)


def _request_data(row: sqlite3.Row, path: str) -> HttpRequestData:
    headers = _json(row["headers"], list, path, f"requests row {row['connection_id']}: headers")
    body = row["body"]
    return HttpRequestData(
        url=str(row["url"]),
        headers=tuple((str(h[0]), str(h[1])) for h in headers if isinstance(h, list) and len(h) == 2),
        body=body.encode("utf-8", "surrogateescape") if isinstance(body, str) else bytes(body or b""),
        body_truncated=bool(row["body_truncated"]),
    )


def _json(text: Any, kind: type, path: str, where: str) -> Any:
    """A JSON column's value, or a one-line StoreError naming the row (a damaged case file)."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError) as e:
        raise StoreError(
            f"{path}: {where} is not valid JSON (damaged case file); {recovery_hint(path)}"
        ) from e
    if not isinstance(value, kind):
        raise StoreError(
            f"{path}: {where} is not a JSON {kind.__name__} (damaged case file); {recovery_hint(path)}"
        )
    return value


#: What each column may hold (SQLite ``typeof``), checked by :meth:`Store.verify`. Formatters rely on
#: it: a blob or a number in a text column (a bit flip turns a text serial type into a blob one)
#: would otherwise fail deep inside a sort or a template.
_TEXT, _TEXT_NULL, _NUM, _NUM_NULL = (
    ("text",),
    ("text", "null"),
    ("integer", "real"),
    ("integer", "real", "null"),
)
_COLUMN_TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    "meta": {"key": _TEXT, "value": _TEXT_NULL},
    "inputs": {"kind": _TEXT, "path": _TEXT, "sha256": _TEXT_NULL, "app": _TEXT, "added_at": _NUM, "notes": _TEXT},
    "scans": {"app": _TEXT, "package": _TEXT_NULL, "version_name": _TEXT_NULL, "version_code": _TEXT_NULL,
              "sha256": _TEXT, "file": _TEXT, "format": _TEXT, "scanned_at": _NUM, "result": _TEXT},
    "connections": {
        "ts": _NUM, "end_ts": _NUM_NULL, "port": _NUM_NULL, "status": _NUM_NULL, "bytes_out": _NUM, "bytes_in": _NUM,
        "input_id": _NUM_NULL,
        **{c: _TEXT for c in ("app", "source", "protocol", "tls")},
        **{c: _TEXT_NULL for c in ("host", "sni", "ip", "client", "method", "scheme", "path", "query_keys",
                                   "request_content_type", "response_content_type", "http_version", "tls_version",
                                   "alpn", "error")},
    },
    "findings": {"connection_id": ("integer",), **{c: _TEXT for c in ("data_type", "location", "encoding", "confidence", "masked")}},
    "dns": {"ts": _NUM, "input_id": _NUM_NULL, **{c: _TEXT for c in ("app", "source", "name", "qtype", "answer")}},
    "requests": {"connection_id": ("integer",), "url": _TEXT, "headers": _TEXT, "body": ("blob", "text"),
                 "body_truncated": _NUM, "pending": _NUM},
    "ip_info": {"ip": _TEXT, "scope": _TEXT, "asn": _NUM_NULL, "network_flags": _TEXT,
                **{c: _TEXT_NULL for c in ("country", "city", "asn_org", "database", "database_date", "flags_database", "setup",
                                             "asn_source", "asn_org_source")}},
}  # fmt: skip
#: Number columns read as integers (counts, ports, status codes): a real beyond 64 bits is damage.
_COUNT_COLUMNS = frozenset({"port", "status", "bytes_out", "bytes_in", "asn", "body_truncated", "pending"})
#: JSON columns and the JSON type their values have.
_JSON_COLUMNS = {
    ("connections", "query_keys"): "array",
    ("requests", "headers"): "array",
    ("scans", "result"): "object",
}


#: Tables of a case file at each schema version (the key is the first version that has them).
_TABLES = {1: ("meta", "inputs", "scans", "connections", "findings", "dns", "ip_info"), 2: ("requests",)}
#: Columns a read-only case file of an older readable schema may lack (reading tolerates them).
_LATER_COLUMNS = frozenset({("inputs", "notes")})
#: The oldest schema a read-only case file can be read with: later migrations only add columns that
#: reading tolerates (``inputs.notes``); older ones lack tables and columns every command needs.
READABLE_SCHEMA = 4

#: Text is decoded leniently: a case file may hold bytes that are not UTF-8 (damage, a foreign
#: writer), and one such byte must not make the whole case unreadable (issue 15).
_decode_text = functools.partial(str, encoding="utf-8", errors="replace")


def recovery_hint(path: str) -> str:
    """What to do with a damaged case file, in one line."""
    return (
        f'recover what is left with `sqlite3 {shlex.quote(path)} ".recover" | sqlite3 recovered.sqlite`, '
        "or re-import its captures into a new case file"
    )


def case_error(path: str, e: BaseException) -> StoreError:
    """A one-line :class:`StoreError` for an SQLite error on the case file ``path``: which file, what
    is wrong, what to do."""
    msg = " ".join((str(e) or type(e).__name__).split())
    low = msg.lower()
    if "readonly" in low or "read-only" in low:
        return StoreError(
            f"{path}: read-only ({msg}); this command writes to the case file: work on a writable copy"
        )
    if "locked" in low or "busy" in low:
        return StoreError(f"{path}: in use by another writer ({msg}); retry when it has finished")
    if "no such table" in low or "no such column" in low:
        return StoreError(
            f"{path}: not a complete case file ({msg}): damaged or written by another tool; {recovery_hint(path)}"
        )
    if "disk is full" in low or "i/o error" in low or "unable to open" in low:
        return StoreError(
            f"{path}: cannot be read or written ({msg}); check the file, its disk and its permissions"
        )
    if "not a database" in low:
        return StoreError(
            f"{path}: not a case file ({msg}): is it the right file? If it is, {recovery_hint(path)}"
        )
    return StoreError(f"{path}: damaged case file ({msg}); {recovery_hint(path)}")


def _is_case_fault(e: sqlite3.Error) -> bool:
    """Errors of the file rather than of one statement's values (those stay sqlite3 errors, so that
    the live writer can tell a record it cannot store from a case file it cannot write)."""
    return not isinstance(
        e, sqlite3.IntegrityError | sqlite3.InterfaceError | sqlite3.ProgrammingError | sqlite3.DataError
    )


class _CaseCursor(sqlite3.Cursor):
    """A cursor whose file errors become one-line :class:`StoreError` naming the case file, also when
    a damaged page is met while rows are fetched (not only when a statement starts)."""

    path = ""

    def _fail(self, e: sqlite3.Error | UnicodeDecodeError) -> BaseException:
        # UnicodeDecodeError: SQLite's own message quotes damaged schema bytes that are not UTF-8,
        # and the sqlite3 module fails decoding it (found by benchmarks/fuzz_case.py)
        if isinstance(e, UnicodeDecodeError):
            return case_error(self.path, sqlite3.DatabaseError(f"unreadable schema or message: {e.reason}"))
        return case_error(self.path, e) if _is_case_fault(e) else e

    def execute(self, sql: str, parameters: Any = (), /) -> _CaseCursor:
        try:
            return super().execute(sql, parameters)
        except (sqlite3.Error, UnicodeDecodeError) as e:
            raise self._fail(e) from e

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> _CaseCursor:
        try:
            return super().executemany(sql, seq_of_parameters)
        except (sqlite3.Error, UnicodeDecodeError) as e:
            raise self._fail(e) from e

    def executescript(self, sql_script: str, /) -> _CaseCursor:
        try:
            super().executescript(sql_script)
        except (sqlite3.Error, UnicodeDecodeError) as e:
            raise self._fail(e) from e
        return self

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # In chunks: a Python __next__ per row would make every query a third slower.
        while True:
            try:
                rows = super().fetchmany(256)
            except (sqlite3.Error, UnicodeDecodeError) as e:
                raise self._fail(e) from e
            if not rows:
                return
            yield from rows

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except (sqlite3.Error, UnicodeDecodeError) as e:
            raise self._fail(e) from e

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except (sqlite3.Error, UnicodeDecodeError) as e:
            raise self._fail(e) from e


class _CaseConnection(sqlite3.Connection):
    """The Store's connection: every statement through a :class:`_CaseCursor`; commits too."""

    path = ""

    def cursor(self, factory: Any = None) -> _CaseCursor:  # type: ignore[override]
        cur = super().cursor(factory or _CaseCursor)
        cur.path = self.path
        return cur  # type: ignore[no-any-return]

    def execute(self, sql: str, parameters: Any = (), /) -> _CaseCursor:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> _CaseCursor:  # type: ignore[override]
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> _CaseCursor:  # type: ignore[override]
        return self.cursor().executescript(sql_script)

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.Error as e:
            raise (case_error(self.path, e) if _is_case_fault(e) else e) from e

    def __exit__(self, *exc: Any) -> Any:
        try:
            return super().__exit__(*exc)
        except sqlite3.Error as e:
            raise (case_error(self.path, e) if _is_case_fault(e) else e) from e


def _readonly_fault(e: BaseException) -> bool:
    low = str(e).lower()
    return any(k in low for k in ("readonly", "read-only", "unable to open", "read only"))


_GROUP_SQL = """
SELECT lower(host) AS host, ip, port,
       min(sni) AS sni,
       max(CASE tls WHEN 'failed' THEN 4 WHEN 'passthrough' THEN 3 WHEN 'none' THEN 2 WHEN 'unknown' THEN 1
                ELSE 0 END) AS tls_rank,
       count(*) AS flows,
       total(inspected) AS inspected_flows,
       group_concat(DISTINCT attribution) AS attribution,
       total(bytes_out) AS bytes_out,
       total(bytes_in) AS bytes_in,
       min(CASE WHEN ts BETWEEN :lo AND :hi THEN ts END) AS first_seen,
       max(CASE WHEN coalesce(end_ts, ts) BETWEEN :lo AND :hi THEN coalesce(end_ts, ts)
                WHEN ts BETWEEN :lo AND :hi THEN ts END) AS last_seen
FROM connections {where}
GROUP BY lower(host), ip, port
"""

# Separate from _GROUP_SQL: app labels are free text, so no group_concat with a separator.
_LABELS_SQL = """
SELECT DISTINCT lower(host) AS host, ip, port, protocol, source, app FROM connections {where}
"""

# Flows whose content was not read, by why (audit.models.unread_reason of tls and protocol).
_UNREAD_SQL = """
SELECT lower(host) AS host, ip, port, tls, protocol, count(*) AS flows, total(bytes_out) + total(bytes_in) AS bytes
FROM connections WHERE inspected = 0 {where}
GROUP BY lower(host), ip, port, tls, protocol
"""

# Flows per (host, IP, port) whose path is one of the given ones (connectivity checks).
_PATHS_SQL = """
SELECT lower(host) AS host, ip, port, count(*) AS flows FROM connections
WHERE path IN ({marks}) {where}
GROUP BY lower(host), ip, port
"""

_FINDINGS_SQL = """
SELECT lower(c.host) AS host, c.ip, c.port, f.data_type
FROM findings f JOIN connections c ON c.id = f.connection_id {where}
GROUP BY lower(c.host), c.ip, c.port, f.data_type
"""


class Store:
    """Owns one SQLite connection to a case file (or ``:memory:``).

    A case file that cannot be written (its permissions, a read-only medium) is opened read-only
    (:attr:`readonly`): every reading command works on it, and a write gives a one-line
    :class:`StoreError` saying so. SQLite errors of the file (damage, a missing table, a lock) are
    :class:`StoreError` too, naming the file and what to do (:func:`case_error`)."""

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        check_same_thread: bool = True,
        readonly: bool = False,
    ) -> None:
        self.path = str(path)
        self.readonly = readonly
        """Opened read-only: asked for, or because the file or its medium cannot be written."""
        self._verified = False
        memory = self.path == ":memory:"
        if not memory:
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise StoreError(f"{self.path}: directory {parent} does not exist")
            if Path(self.path).is_file() and not (
                os.access(self.path, os.W_OK) and os.access(parent, os.W_OK)
            ):
                self.readonly = True
        try:
            if self.readonly:
                self._open_readonly(check_same_thread)
            else:
                try:
                    self._open(check_same_thread, memory)
                except StoreError as e:  # root on a read-only mount passes os.access, then fails here
                    if memory or not Path(self.path).is_file() or not _readonly_fault(e):
                        raise
                    self.conn.close()
                    self.readonly = True
                    self._open_readonly(check_same_thread)
            self._check_tables()
        except sqlite3.DatabaseError as e:
            raise case_error(self.path, e) from e
        except StoreError:
            if hasattr(self, "conn"):
                self.conn.close()
            raise

    def _connect(self, target: str, check_same_thread: bool, uri: bool = False) -> None:
        self.conn = sqlite3.connect(
            target, timeout=30, check_same_thread=check_same_thread, uri=uri, factory=_CaseConnection
        )
        self.conn.path = self.path  # type: ignore[attr-defined]
        self.conn.row_factory = sqlite3.Row
        self.conn.text_factory = _decode_text

    def _open(self, check_same_thread: bool, memory: bool) -> None:
        self._connect(self.path, check_same_thread)
        self.conn.execute("PRAGMA busy_timeout = 30000")
        if not memory:
            self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    def _open_readonly(self, check_same_thread: bool) -> None:
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.path))
        self._connect(uri + "?mode=ro", check_same_thread, uri=True)
        try:
            self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except StoreError as e:
            if not _readonly_fault(e):
                raise
            # A WAL case file needs its -shm index, which a read-only directory cannot get: read the
            # file as it is (immutable), as the last writer left it.
            self.conn.close()
            self._connect(uri + "?immutable=1", check_same_thread, uri=True)
        self.conn.execute("PRAGMA busy_timeout = 30000")
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {current} is newer than this tool ({SCHEMA_VERSION}); upgrade"
            )
        if current < READABLE_SCHEMA:
            raise StoreError(
                f"{self.path}: read-only, and its schema (version {current}) needs an upgrade this tool cannot "
                "write; run the command on a writable copy"
            )

    def _check_tables(self) -> None:
        """A table the schema version promises is missing: damage or a foreign file, said up front."""
        version = self.schema_version
        if version == 0:
            return
        present = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [
            t for since, names in _TABLES.items() if since <= version for t in names if t not in present
        ]
        if missing:
            raise StoreError(
                f"{self.path}: not a complete case file (no table {', '.join(missing)}): damaged or written by "
                f"another tool; {recovery_hint(self.path)}"
            )
        # A table of the right name with other columns (a rewritten schema, a table recreated by
        # another tool) is the same kind of damage, not a KeyError deep inside a command (issue 15).
        lacking = [
            f"{table}.{col}"
            for table, columns in _COLUMN_TYPES.items()
            if table in present
            for have in [{r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}]
            for col in columns
            if col not in have and (table, col) not in _LATER_COLUMNS
        ]
        if lacking:
            raise StoreError(
                f"{self.path}: not a complete case file (no column {', '.join(lacking[:5])}"
                f"{' …' if len(lacking) > 5 else ''}): damaged or written by another tool; {recovery_hint(self.path)}"
            )

    def verify(self) -> None:
        """Check that every value has the type its column promises and every JSON column parses
        (one pass per table); raises a one-line StoreError naming the first bad row. Reading commands
        call it before formatting anything: a damaged case file is said to be damaged, not met as a
        traceback deep inside a report."""
        if self._verified:
            return
        json_checks = sqlite3.sqlite_version_info >= (3, 38)  # json_valid/json_type built in
        for table, columns in _COLUMN_TYPES.items():
            present = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            cases = []
            for col, types in columns.items():
                if col not in present:
                    continue  # a read-only case file of an older schema (inputs.notes)
                allowed = ", ".join(f"'{t}'" for t in types)
                cases.append(f"WHEN typeof({col}) NOT IN ({allowed}) THEN '{col} holds ' || typeof({col})")
                if "real" in types:  # SQLite reads the text '1e999' into a number column as infinity
                    bound = "9.2e18" if col in _COUNT_COLUMNS else "1.7976931348623157e308"
                    cases.append(f"WHEN typeof({col}) = 'real' AND NOT ({col} BETWEEN -{bound} AND {bound})"
                                 f" THEN '{col} holds an out-of-range number'")  # fmt: skip
                kind = _JSON_COLUMNS.get((table, col))
                if kind and json_checks:
                    cases.append(
                        f"WHEN {col} IS NOT NULL AND (NOT json_valid({col}) OR json_type({col}) != '{kind}')"
                        f" THEN '{col} is not a JSON {kind}'"
                    )
            if not cases:
                continue
            q = f"SELECT rowid, bad FROM (SELECT rowid, CASE {' '.join(cases)} END AS bad FROM {table}) WHERE bad IS NOT NULL"
            rows = self.conn.execute(q + " LIMIT 1").fetchall()
            if rows:
                n = self.conn.execute(f"SELECT count(*) FROM ({q})").fetchone()[0]
                more = f" (and {n - 1} more rows)" if n > 1 else ""
                raise StoreError(
                    f"{self.path}: {table} row {rows[0][0]}: {rows[0][1]}{more}: damaged, or not written by this "
                    f"tool; {recovery_hint(self.path)}"
                )
        self._verified = True

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current == 0:
            ours = {t for names in _TABLES.values() for t in names}
            foreign = [r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'") if r[0] not in ours]  # fmt: skip
            if foreign:  # never add our tables to another program's database
                raise StoreError(
                    f"{self.path}: not a case file (an SQLite database with other tables: "
                    f"{', '.join(sorted(foreign)[:5])}); give a new or existing case file"
                )
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {current} is newer than this tool ({SCHEMA_VERSION}); upgrade"
            )
        for version in range(current, SCHEMA_VERSION):
            with self.conn:
                self.conn.executescript(MIGRATIONS[version])
                self.conn.execute(f"PRAGMA user_version = {version + 1}")

    # -- meta / inputs ---------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def record_input(
        self, kind: str, path: str, sha256: str | None = None, app: str = "", notes: Sequence[str] = ()
    ) -> int:
        """Add an ``inputs`` row; returns its id (for :meth:`set_input_notes`)."""
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO inputs(kind, path, sha256, app, added_at, notes) VALUES (?, ?, ?, ?, ?, ?)",
                (kind, path, sha256, app, time.time(), _notes_text(notes)),
            )
        return int(cur.lastrowid or 0)

    def set_input(self, kind: str, path: str, sha256: str, app: str = "", notes: Sequence[str] = ()) -> int:
        """Record the one ``inputs`` row of ``kind`` for the input ``sha256`` under ``app``, replacing
        earlier ones (a capture's vantage: said again, it replaces what was said before); its id."""
        with self.conn:
            self.conn.execute(
                "DELETE FROM inputs WHERE kind = ? AND sha256 = ? AND app = ?", (kind, sha256, app)
            )
            cur = self.conn.execute(
                "INSERT INTO inputs(kind, path, sha256, app, added_at, notes) VALUES (?, ?, ?, ?, ?, ?)",
                (kind, path, sha256, app, time.time(), _notes_text(notes)),
            )
        return int(cur.lastrowid or 0)

    def set_input_notes(self, input_id: int, notes: Sequence[str]) -> None:
        """Replace the notes of one ``inputs`` row (the live writer's count of skipped records)."""
        with self.conn:
            self.conn.execute("UPDATE inputs SET notes = ? WHERE id = ?", (_notes_text(notes), input_id))

    def inputs(self) -> list[dict[str, Any]]:
        """Every ``inputs`` row as a dict; ``notes`` is a list of one-line strings."""
        out = []
        for r in self.conn.execute("SELECT * FROM inputs ORDER BY id"):
            row = dict(r)
            row["notes"] = [n for n in str(row.get("notes") or "").split("\n") if n]
            out.append(row)
        return out

    def apps(self) -> list[str]:
        """Every app label in the case (scans and traffic)."""
        rows = self.conn.execute(
            "SELECT app FROM scans UNION SELECT app FROM connections UNION SELECT app FROM dns ORDER BY 1"
        )
        return [r[0] for r in rows if r[0]]

    # -- static scans ----------------------------------------------------------------------

    def add_scan(self, result: ScanResult, app: str | None = None) -> int:
        """Store a scan; the app label defaults to the package name (or the file name)."""
        with self.conn:
            return self._insert_scan(result, app)

    def _insert_scan(self, result: ScanResult, app: str | None) -> int:
        """:meth:`add_scan` inside the caller's transaction."""
        label = app or result.app.package or Path(result.app.file).name
        a = result.app
        cur = self.conn.execute(
            "INSERT INTO scans(app, package, version_name, version_code, sha256, file, format, scanned_at,"
            " result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (label, a.package, a.version_name, a.version_code, a.sha256, a.file, a.format, time.time(),
             json.dumps(result.to_dict(), sort_keys=True)),
        )  # fmt: skip
        self.conn.execute(
            "INSERT INTO inputs(kind, path, sha256, app, added_at) VALUES (?, ?, ?, ?, ?)",
            (a.format, a.file, a.sha256, label, time.time()),
        )
        return int(cur.lastrowid or 0)

    def scans(self, app: str | None = None) -> list[tuple[str, ScanResult]]:
        """(app label, result) for every stored scan, oldest first."""
        q = "SELECT id, app, result FROM scans"
        args: tuple[Any, ...] = ()
        if app:
            q += " WHERE app = ?"
            args = (app,)
        out = []
        for r in self.conn.execute(q + " ORDER BY id", args):
            where = f"scans row {r['id']}: result"
            try:
                out.append((r["app"], ScanResult.from_dict(_json(r["result"], dict, self.path, where))))
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
                raise StoreError(f"{self.path}: {where} is not a scan result (damaged case file, {type(e).__name__}); "
                                 "scan the app again into a new case file") from e  # fmt: skip
        return out

    # -- traffic ---------------------------------------------------------------------------

    def add_connections(self, conns: Iterable[Connection], *, pending_detection: bool = False) -> int:
        """Insert connections (and their data findings) in one transaction; returns the count.

        ``pending_detection`` marks their requests for a later detection pass
        (:meth:`pending_requests` / :meth:`complete_detection`)."""
        return self.add_records(conns, pending_detection=pending_detection)[0]

    def add_records(
        self, records: Iterable[Connection | DnsRecord], *, pending_detection: bool = False
    ) -> tuple[int, int]:
        """Insert connections and DNS records in ONE transaction (all or none of them: the live
        writer retries a batch, or its records one by one, without duplicates). Returns
        (connections, DNS rows)."""
        n_conn = n_dns = 0
        with self.conn:
            for c in records:
                if isinstance(c, DnsRecord):
                    n_dns += self._insert_dns([c])
                    continue
                self._insert_connection(c, pending_detection)
                n_conn += 1
        return n_conn, n_dns

    def _insert_connection(self, c: Connection, pending_detection: bool) -> None:
        cid = int(self.conn.execute(_INSERT_CONNECTION, _connection_row(None, c)).lastrowid or 0)
        if c.findings:
            self._insert_findings(cid, c.findings)
        if c.request is not None:
            self.conn.execute(_INSERT_REQUEST, _request_row(cid, c.request, pending_detection))

    def _insert_findings(self, connection_id: int, findings: Iterable[DataFinding]) -> None:
        self.conn.executemany(_INSERT_FINDING, _finding_rows(connection_id, findings))

    def replace_findings(self, connection_id: int, findings: Iterable[DataFinding]) -> None:
        """Replace the data findings of one connection (``audit pii`` re-scan); no longer pending."""
        with self.conn:
            self.conn.execute("DELETE FROM findings WHERE connection_id = ?", (connection_id,))
            self._insert_findings(connection_id, findings)
            self.conn.execute("UPDATE requests SET pending = 0 WHERE connection_id = ?", (connection_id,))

    def pending_requests(self, limit: int = 200) -> list[tuple[int, HttpRequestData]]:
        """Requests stored with ``pending_detection`` and not scanned yet, oldest first."""
        rows = self.conn.execute(
            "SELECT * FROM requests WHERE pending = 1 ORDER BY connection_id LIMIT ?", (limit,)
        ).fetchall()
        return [(int(r["connection_id"]), _request_data(r, self.path)) for r in rows]

    def pending_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM requests WHERE pending = 1").fetchone()[0])

    def complete_detection(self, results: Iterable[tuple[int, Iterable[DataFinding]]]) -> int:
        """Add the findings of scanned pending requests and clear their mark, in one transaction."""
        n = 0
        with self.conn:
            for cid, findings in results:
                self._insert_findings(cid, findings)
                self.conn.execute("UPDATE requests SET pending = 0 WHERE connection_id = ?", (cid,))
                n += 1
        return n

    def connections(self, app: str | None = None) -> Iterator[tuple[int, Connection]]:
        """(id, connection) in time order, with their findings."""
        q = "SELECT * FROM connections"
        args: tuple[Any, ...] = ()
        if app:
            q += " WHERE app = ?"
            args = (app,)
        findings: dict[int, list[DataFinding]] = {}
        fq = "SELECT f.* FROM findings f JOIN connections c ON c.id = f.connection_id"
        for r in self.conn.execute(fq + (" WHERE c.app = ?" if app else ""), args):
            findings.setdefault(r["connection_id"], []).append(
                DataFinding(r["data_type"], r["location"], r["encoding"], r["confidence"], r["masked"])
            )
        for r in self.conn.execute(q + " ORDER BY ts, id", args):
            kw = {k: r[k] for k in _CONN_COLS}
            kw["query_keys"] = tuple(
                str(k)
                for k in _json(
                    r["query_keys"] or "[]", list, self.path, f"connections row {r['id']}: query_keys"
                )
            )
            yield r["id"], Connection(**kw, findings=tuple(findings.get(r["id"], ())))

    def requests(self, app: str | None = None) -> Iterator[tuple[int, HttpRequestData]]:
        """(connection id, request content) for every stored HTTP request."""
        q = "SELECT r.* FROM requests r JOIN connections c ON c.id = r.connection_id"
        args: tuple[Any, ...] = ()
        if app:
            q += " WHERE c.app = ?"
            args = (app,)
        for r in self.conn.execute(q + " ORDER BY r.connection_id", args):
            yield r["connection_id"], _request_data(r, self.path)

    def connection_count(self, app: str | None = None) -> int:
        if app:
            return int(
                self.conn.execute("SELECT count(*) FROM connections WHERE app = ?", (app,)).fetchone()[0]
            )
        return int(self.conn.execute("SELECT count(*) FROM connections").fetchone()[0])

    def capture_decryption(self, app: str | None = None) -> tuple[int, int]:
        """(requests read from decrypted TLS, TLS connections left encrypted) among the connections
        imported from captures (``source = pcap``; issue 17)."""
        sql = ("SELECT coalesce(sum(tls = 'decrypted'), 0), coalesce(sum(tls = 'passthrough' AND protocol = 'tls'), 0) "
               "FROM connections WHERE source = 'pcap'")  # fmt: skip
        row = (
            self.conn.execute(sql + " AND app = ?", (app,)).fetchone()
            if app
            else self.conn.execute(sql).fetchone()
        )
        return int(row[0]), int(row[1])

    def add_dns(self, records: Iterable[DnsRecord]) -> int:
        with self.conn:
            return self._insert_dns(records)

    def _insert_dns(self, records: Iterable[DnsRecord]) -> int:
        rows = _dns_rows(records)
        self.conn.executemany(_INSERT_DNS, rows)
        return len(rows)

    def add_traffic(
        self,
        items: Iterable[Connection | DnsRecord],
        *,
        kind: str,
        path: str,
        sha256: str | None = None,
        app: str = "",
        batch: int = 2000,
        notes: Callable[[], Iterable[str]] | None = None,
        replaces: Sequence[int] = (),
    ) -> tuple[int, int]:
        """Store one imported input (its connections, DNS records and ``inputs`` row) in ONE
        transaction: if ``items`` raises, nothing of it is kept. Consumed lazily and written in
        ``executemany`` batches, so memory stays bounded. ``notes()`` is called once ``items`` is
        consumed (an importer knows its warnings only then) and stored with the ``inputs`` row.
        ``replaces``: ids of earlier ``inputs`` rows (:meth:`imported_inputs`) whose rows are deleted
        in the same transaction (``audit import --replace``): kept if the new import fails.
        Returns (connections, DNS records)."""
        n_conn = n_dns = 0
        conns: list[Connection] = []
        dns: list[DnsRecord] = []

        def flush(next_id: int) -> int:
            rows, findings, requests = [], [], []
            for cid, c in enumerate(conns, next_id):
                rows.append(_connection_row(cid, c, input_id))
                if c.findings:
                    findings += _finding_rows(cid, c.findings)
                if c.request is not None:
                    requests.append(_request_row(cid, c.request, False))
            self.conn.executemany(_INSERT_CONNECTION, rows)
            self.conn.executemany(_INSERT_FINDING, findings)
            self.conn.executemany(_INSERT_REQUEST, requests)
            self.conn.executemany(_INSERT_DNS, _dns_rows(dns, input_id))
            next_id += len(conns)
            conns.clear()
            dns.clear()
            return next_id

        with self.conn:
            # IMMEDIATE: take the write lock before reading max(id), so that explicit ids cannot
            # collide with a concurrent writer (the live addon on the same case file).
            self.conn.execute("BEGIN IMMEDIATE")
            if replaces:
                self._delete_inputs(replaces)
            input_id = int(self.conn.execute(
                "INSERT INTO inputs(kind, path, sha256, app, added_at) VALUES (?, ?, ?, ?, ?)",
                (kind, path, sha256, app, time.time()),
            ).lastrowid or 0)  # fmt: skip
            next_id = int(self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM connections").fetchone()[0])
            for item in items:
                if isinstance(item, Connection):
                    conns.append(item)
                    n_conn += 1
                else:
                    dns.append(item)
                    n_dns += 1
                if len(conns) + len(dns) >= batch:
                    next_id = flush(next_id)
            flush(next_id)
            if notes:
                self.conn.execute(
                    "UPDATE inputs SET notes = ? WHERE id = ?", (_notes_text(notes()), input_id)
                )
        return n_conn, n_dns

    def imported_inputs(self, sha256: str, app: str, kinds: Iterable[str]) -> list[int]:
        """Ids of the ``inputs`` rows of an import of the file ``sha256`` under the label ``app``
        (one of the traffic ``kinds``: an APK with the same digest is not an import of it)."""
        kinds = tuple(kinds)
        q = f"SELECT id FROM inputs WHERE sha256 = ? AND app = ? AND kind IN ({', '.join('?' * len(kinds))}) ORDER BY id"
        return [int(r[0]) for r in self.conn.execute(q, (sha256, app, *kinds))]

    def _delete_inputs(self, input_ids: Sequence[int]) -> None:
        """Delete imported inputs and every row they brought (findings and request content go with
        their connections: ON DELETE CASCADE), inside the caller's transaction."""
        untracked = int(self.get_meta("untracked_inputs") or 0)
        old = [i for i in input_ids if i <= untracked]
        if old:
            raise StoreError(
                f"{self.path}: input {old[0]} was imported before this case file recorded which rows came from "
                "which input, so its rows cannot be replaced; import the captures into a new case file"
            )
        marks = ", ".join("?" * len(input_ids))
        self.conn.execute(f"DELETE FROM connections WHERE input_id IN ({marks})", tuple(input_ids))
        self.conn.execute(f"DELETE FROM dns WHERE input_id IN ({marks})", tuple(input_ids))
        self.conn.execute(f"DELETE FROM inputs WHERE id IN ({marks})", tuple(input_ids))

    def dns_names(self, app: str | None = None) -> dict[str, list[str]]:
        """IP → names the app asked for that were answered with that IP (first asked first)."""
        q = "SELECT answer, name FROM dns WHERE answer != ''"
        args: tuple[Any, ...] = ()
        if app:
            q += " AND app = ?"
            args = (app,)
        out: dict[str, list[str]] = {}
        for r in self.conn.execute(q + " ORDER BY ts, id", args):
            names = out.setdefault(r["answer"], [])
            if r["name"] not in names:
                names.append(r["name"])
        return out

    def dns_lookups(self, app: str | None, window: tuple[float, float]) -> list[sqlite3.Row]:
        """Every (name, answer, qtype, app) of the DNS records, with ``first_seen`` (the earliest
        plausible time, inside ``window``), in first-answered order (``audit dns``)."""
        where = "WHERE name != ''" + (" AND app = :app" if app else "")
        q = (
            "SELECT name, answer, qtype, app, min(CASE WHEN ts BETWEEN :lo AND :hi THEN ts END) AS first_seen,"
            f" min(id) AS first_id FROM dns {where} GROUP BY name, answer, qtype, app ORDER BY first_id"
        )
        return list(self.conn.execute(q, {"lo": window[0], "hi": window[1], "app": app}))

    def dns_lookup_counts(self, app: str | None) -> dict[str, int]:
        """Name → how many times it was asked (distinct question times and types)."""
        where = "WHERE name != ''" + (" AND app = ?" if app else "")
        q = f"SELECT name, count(*) FROM (SELECT DISTINCT name, ts, qtype FROM dns {where}) GROUP BY name"
        return {str(r[0]): int(r[1]) for r in self.conn.execute(q, (app,) if app else ())}

    def connection_targets(self, app: str | None) -> list[sqlite3.Row]:
        """The distinct (host, SNI, IP) the connections went to, with their ``flows``."""
        where = "WHERE app = ?" if app else ""
        q = f"SELECT lower(host) AS host, lower(sni) AS sni, ip, count(*) AS flows FROM connections {where} GROUP BY 1, 2, 3"
        return list(self.conn.execute(q, (app,) if app else ()))

    def dns_records(self, app: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM dns" + (" WHERE app = ?" if app else "") + " ORDER BY ts, id"
        return [dict(r) for r in self.conn.execute(q, (app,) if app else ())]

    # -- geo-IP cache ----------------------------------------------------------------------

    def cache_ip_info(self, infos: Iterable[IpInfo]) -> None:
        """Cache geo-IP answers (not on a read-only case file: the answers are recomputed)."""
        if self.readonly:
            return
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO ip_info(ip, scope, country, city, asn, asn_org, database, database_date,"
                " network_flags, flags_database, setup, asn_source, asn_org_source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (i.ip, i.scope, i.country, i.city, i.asn, i.asn_org, i.database, i.database_date,
                     ",".join(i.network_flags), i.flags_database, i.setup, i.asn_source, i.asn_org_source)
                    for i in infos
                ],
            )  # fmt: skip

    def cached_ip_info(self) -> dict[str, IpInfo]:
        out = {}
        for r in self.conn.execute("SELECT * FROM ip_info"):
            row = dict(r)
            flags = row.pop("network_flags", "") or ""
            out[r["ip"]] = IpInfo(**row, network_flags=tuple(f for f in str(flags).split(",") if f))
        return out

    # -- aggregates for the graph and the report ---------------------------------------------

    def finding_summary(self, app: str | None = None) -> list[dict[str, Any]]:
        """Data findings grouped by (host, ip, port, data_type, location, encoding, confidence), with
        ``flows`` (distinct connections), ``first_ts`` and one ``masked`` example."""
        q = (
            "SELECT c.host, c.ip, c.port, f.data_type, f.location, f.encoding, f.confidence,"
            " count(DISTINCT c.id) AS flows, min(CASE WHEN c.ts BETWEEN ? AND ? THEN c.ts END) AS first_ts,"
            " min(f.masked) AS masked"
            " FROM findings f JOIN connections c ON c.id = f.connection_id"
            + (" WHERE c.app = ?" if app else "")
            + " GROUP BY c.host, c.ip, c.port, f.data_type, f.location, f.encoding, f.confidence"
            " ORDER BY f.data_type, c.host, c.ip, c.port, f.location"
        )
        return [dict(r) for r in self.conn.execute(q, (*time_window(), *((app,) if app else ())))]

    def client_addresses(self, app: str | None = None) -> list[dict[str, Any]]:
        """Per app label and client address (the connection's initiator, without its port): its
        ``flows`` and distinct server IPs (``servers``), busiest first. The address is as stored:
        callers normalise and classify it."""
        q = (
            "SELECT app, CASE WHEN substr(client, 1, 1) = '[' THEN substr(client, 2, instr(client, ']') - 2)"
            " WHEN instr(client, ':') > 0 THEN substr(client, 1, instr(client, ':') - 1) ELSE client END AS address,"
            " count(*) AS flows, count(DISTINCT ip) AS servers FROM connections WHERE client IS NOT NULL"
            + (" AND app = ?" if app else "")
            + " GROUP BY app, address ORDER BY flows DESC, app, address"
        )
        return [dict(r) for r in self.conn.execute(q, (app,) if app else ())]

    def connection_times(self, app: str | None = None) -> list[tuple[float, str | None, str | None, int]]:
        """(ts, host, ip, bytes_out + bytes_in) of every connection with a plausible start time
        (:func:`audit.models.plausible_time`), in time order, for timelines."""
        q = "SELECT ts, host, ip, bytes_out + bytes_in FROM connections WHERE ts BETWEEN ? AND ?"
        q += (" AND app = ?" if app else "") + " ORDER BY ts, id"
        args = (*time_window(), *((app,) if app else ()))
        return [(float(r[0]), r[1], r[2], int(r[3] or 0)) for r in self.conn.execute(q, args)]

    # -- destinations (audit.destinations aggregates these rows) --------------------------------

    def connection_groups(self, app: str | None, window: tuple[float, float]) -> list[sqlite3.Row]:
        """Connections grouped by (host, IP, port): flows, bytes, the weakest TLS state
        (``tls_rank``: 4 failed, 3 passthrough, 2 none, 1 unknown, 0 intercepted or decrypted) and the
        first and last times
        inside ``window`` (implausible times left out, :func:`audit.models.time_window`)."""
        where = "WHERE app = :app" if app else ""
        return list(
            self.conn.execute(_GROUP_SQL.format(where=where), {"lo": window[0], "hi": window[1], "app": app})
        )

    def connection_labels(self, app: str | None) -> list[sqlite3.Row]:
        """The distinct (host, IP, port, protocol, source, app) of the connections."""
        return list(
            self.conn.execute(_LABELS_SQL.format(where="WHERE app = ?" if app else ""), (app,) if app else ())
        )

    def unread_groups(self, app: str | None) -> list[sqlite3.Row]:
        """Connections whose content was not read, grouped by (host, IP, port, tls, protocol): flows
        and bytes."""
        return list(
            self.conn.execute(_UNREAD_SQL.format(where="AND app = ?" if app else ""), (app,) if app else ())
        )

    def path_groups(self, app: str | None, paths: Sequence[str]) -> list[sqlite3.Row]:
        """Flows per (host, IP, port) that asked for one of ``paths``."""
        if not paths:
            return []
        q = _PATHS_SQL.format(marks=",".join("?" * len(paths)), where="AND app = ?" if app else "")
        return list(self.conn.execute(q, (*paths, *((app,) if app else ()))))

    def finding_groups(self, app: str | None) -> list[sqlite3.Row]:
        """The distinct (host, IP, port, data type) of the data findings."""
        return list(
            self.conn.execute(
                _FINDINGS_SQL.format(where="WHERE c.app = ?" if app else ""), (app,) if app else ()
            )
        )

    # -- corpus batches (audit batch, audit corpus) -----------------------------------------------

    def batch_count(self) -> int:
        """Packages with a recorded batch outcome (done, failed or ignored)."""
        return int(self.conn.execute("SELECT count(*) FROM batch_apps").fetchone()[0])

    def batch_paths(self) -> dict[str, tuple[str, int, float]]:
        """path → (sha256 key, size, mtime) of every path a batch has recorded."""
        return {
            r[0]: (r[1], int(r[2]), float(r[3]))
            for r in self.conn.execute("SELECT path, sha256, size, mtime FROM batch_paths")
        }

    def batch_outcomes(self) -> dict[str, tuple[str, int | None]]:
        """sha256 key → (status, file size) of every recorded package."""
        return {r[0]: (r[1], r[2]) for r in self.conn.execute("SELECT sha256, status, size FROM batch_apps")}

    def record_batch_outcome(
        self,
        key: str,
        status: str,
        paths: Iterable[tuple[str, int, float]],
        *,
        result: ScanResult | None = None,
        reason: str | None = None,
        attempts: int = 1,
        seconds: float | None = None,
        peak_rss: int | None = None,
        size: int | None = None,
    ) -> bool:
        """Record one package's outcome and its (path, size, mtime) rows in one transaction; a
        ``done`` result is stored as a scan too. A package already done keeps its scan and only
        gains the paths. Returns whether a new outcome was written."""
        with self.conn:
            row = self.conn.execute("SELECT status FROM batch_apps WHERE sha256 = ?", (key,)).fetchone()
            fresh = row is None or row[0] != "done"
            if fresh:
                scan_id = self._insert_scan(result, None) if result is not None else None
                self.conn.execute(
                    "INSERT OR REPLACE INTO batch_apps(sha256, status, scan_id, reason, attempts, seconds, peak_rss,"
                    " size, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, status, scan_id, reason, attempts, seconds, peak_rss, size, time.time()),
                )  # fmt: skip
            self._insert_paths(key, paths)
        return fresh

    def add_batch_paths(self, key: str, paths: Iterable[tuple[str, int, float]]) -> None:
        """More (path, size, mtime) rows of a recorded package (the same file found elsewhere)."""
        with self.conn:
            self._insert_paths(key, paths)

    def _insert_paths(self, key: str, paths: Iterable[tuple[str, int, float]]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO batch_paths(path, sha256, size, mtime) VALUES (?, ?, ?, ?)",
            [(p, key, sz, mt) for p, sz, mt in paths],
        )

    def batch_rows(self, status: str) -> list[dict[str, Any]]:
        """Recorded packages with this status, each with its ``paths`` (sorted), by sha256."""
        paths: dict[str, list[str]] = {}
        q = "SELECT p.sha256, p.path FROM batch_paths p JOIN batch_apps a ON a.sha256 = p.sha256 WHERE a.status = ?"
        for r in self.conn.execute(q + " ORDER BY p.path", (status,)):
            paths.setdefault(r[0], []).append(r[1])
        rows = self.conn.execute(
            "SELECT sha256, reason, attempts, seconds, peak_rss, size FROM batch_apps WHERE status = ? ORDER BY sha256",
            (status,),
        )
        return [{**dict(r), "paths": paths.get(r["sha256"], [])} for r in rows]

    def start_batch_run(self, backend: str, roots: Iterable[str]) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO batch_runs(started_at, backend, roots) VALUES (?, ?, ?)",
                (time.time(), backend, json.dumps(list(roots))),
            )
        return int(cur.lastrowid or 0)

    def finish_batch_run(self, run_id: int, summary: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE batch_runs SET finished_at = ?, summary = ? WHERE id = ?",
                (time.time(), json.dumps(summary, sort_keys=True), run_id),
            )

    def batch_runs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM batch_runs ORDER BY id")]

    def corpus_scans(self) -> Iterator[tuple[list[str], ScanResult]]:
        """Each distinct scanned package once (its first stored scan), by sha256, with every path it
        was found at: the batch's paths, else the scanned file. Read lazily, one result at a time."""
        paths: dict[str, list[str]] = {}
        for r in self.conn.execute("SELECT sha256, path FROM batch_paths ORDER BY path"):
            paths.setdefault(r[0], []).append(r[1])
        q = "SELECT sha256, file, result FROM scans WHERE id IN (SELECT min(id) FROM scans GROUP BY sha256) ORDER BY sha256"
        for r in self.conn.execute(q):
            yield paths.get(r["sha256"], [r["file"]]), ScanResult.from_dict(json.loads(r["result"]))

    # -- what the case can show (issue 13) -------------------------------------------------

    def require_app(self, app: str | None) -> None:
        """OptionError unless ``app`` is None or a label in the case; the message lists the labels
        and the closest ones, so a misspelt label never reads as an app that sent nothing."""
        if app is None:
            return
        labels = self.apps()
        if app in labels:
            return
        import difflib

        from audit.errors import OptionError

        if not labels:
            raise OptionError(
                f"--app {app!r}: {self.path} has no app labels (empty, or traffic imported without --app)"
            )
        close = difflib.get_close_matches(app.casefold(), [x.casefold() for x in labels], n=3, cutoff=0.6)
        hint = [x for x in labels if x.casefold() in close]
        shown = ", ".join(labels[:20]) + (f" … ({len(labels)} labels)" if len(labels) > 20 else "")
        raise OptionError(
            f"--app {app!r}: no such app label in {self.path}"
            + (f"; did you mean {' or '.join(repr(x) for x in hint)}?" if hint else "")
            + f" (labels: {shown})"
        )

    def evidence_counts(self, app: str | None = None) -> dict[str, int]:
        """What the case holds (for one app label): ``scans``, ``connections``, ``dns`` records,
        ``requests`` with stored content, and ``inspected`` requests.

        *Inspected* is the one definition of traffic whose content was read: a connection that
        was intercepted (TLS) or plaintext (``tls = 'none'``) with its request content stored or
        data found in it; a pinned, failed or passed-through connection has no readable content.
        (A later schema may store an explicit ``inspected`` flag; this method is then the only
        place to change.)"""
        where, args = (" WHERE c.app = ?", (app,)) if app else ("", ())
        one = where.replace("c.app", "app")

        def count(q: str, a: tuple[Any, ...]) -> int:
            return int(self.conn.execute(q, a).fetchone()[0])

        return {
            "scans": count("SELECT count(*) FROM scans" + one, args),
            "connections": count("SELECT count(*) FROM connections" + one, args),
            "dns": count("SELECT count(*) FROM dns" + one, args),
            "requests": count(
                "SELECT count(*) FROM requests r JOIN connections c ON c.id = r.connection_id" + where, args
            ),
            "inspected": count(
                "SELECT count(*) FROM connections c"
                + (where + " AND" if where else " WHERE")
                + " c.tls IN ('intercepted', 'none') AND (EXISTS (SELECT 1 FROM requests r WHERE r.connection_id = c.id)"
                " OR EXISTS (SELECT 1 FROM findings f WHERE f.connection_id = c.id))",
                args,
            ),
        }
