"""The case file: one SQLite database per case, shared by ``audit scan --db``, the mitmproxy addon,
``audit import`` and the graph/report.

WAL mode so that the report can read while the proxy writes; the schema version lives in
``PRAGMA user_version`` and migrations are idempotent and applied in order on open.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from audit.errors import StoreError
from audit.models import Connection, DataFinding, DnsRecord, HttpRequestData, IpInfo, ScanResult

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
)

SCHEMA_VERSION = len(MIGRATIONS)

_CONN_COLS = (
    "ts", "end_ts", "app", "source", "protocol", "tls", "host", "sni", "ip", "port", "client",
    "method", "scheme", "path", "query_keys", "status", "bytes_out", "bytes_in",
    "request_content_type", "response_content_type", "http_version", "tls_version", "alpn", "error",
)  # fmt: skip


def _request_data(row: sqlite3.Row) -> HttpRequestData:
    return HttpRequestData(
        url=row["url"],
        headers=tuple((str(k), str(v)) for k, v in json.loads(row["headers"])),
        body=bytes(row["body"]),
        body_truncated=bool(row["body_truncated"]),
    )


class Store:
    """Owns one SQLite connection to a case file (or ``:memory:``)."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, check_same_thread: bool = True) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                parent = Path(self.path).parent
                if not parent.is_dir():
                    raise StoreError(f"{self.path}: directory {parent} does not exist")
            self.conn = sqlite3.connect(self.path, timeout=30, check_same_thread=check_same_thread)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA busy_timeout = 30000")
            if self.path != ":memory:":
                self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a usable case database ({e})") from e

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

    def record_input(self, kind: str, path: str, sha256: str | None = None, app: str = "") -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO inputs(kind, path, sha256, app, added_at) VALUES (?, ?, ?, ?, ?)",
                (kind, path, sha256, app, time.time()),
            )

    def inputs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM inputs ORDER BY id")]

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
        q = "SELECT app, result FROM scans"
        args: tuple[Any, ...] = ()
        if app:
            q += " WHERE app = ?"
            args = (app,)
        return [(r["app"], ScanResult.from_dict(json.loads(r["result"]))) for r in self.conn.execute(q + " ORDER BY id", args)]

    # -- traffic ---------------------------------------------------------------------------

    def add_connections(self, conns: Iterable[Connection], *, pending_detection: bool = False) -> int:
        """Insert connections (and their data findings) in one transaction; returns the count.

        ``pending_detection`` marks their requests for a later detection pass
        (:meth:`pending_requests` / :meth:`complete_detection`)."""
        n = 0
        with self.conn:
            for c in conns:
                values = [getattr(c, k) for k in _CONN_COLS]
                values[_CONN_COLS.index("query_keys")] = json.dumps(list(c.query_keys))
                cur = self.conn.execute(
                    f"INSERT INTO connections({', '.join(_CONN_COLS)}) VALUES ({', '.join('?' * len(_CONN_COLS))})",
                    values,
                )
                cid = int(cur.lastrowid or 0)
                if c.findings:
                    self._insert_findings(cid, c.findings)
                if c.request is not None:
                    r = c.request
                    self.conn.execute(
                        "INSERT INTO requests(connection_id, url, headers, body, body_truncated, pending)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (cid, r.url, json.dumps([list(h) for h in r.headers]), r.body, int(r.body_truncated),
                         int(pending_detection)),
                    )  # fmt: skip
                n += 1
        return n

    def _insert_findings(self, connection_id: int, findings: Iterable[DataFinding]) -> None:
        self.conn.executemany(
            "INSERT INTO findings(connection_id, data_type, location, encoding, confidence, masked)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(connection_id, f.data_type, f.location, f.encoding, f.confidence, f.masked) for f in findings],
        )

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
        return [(int(r["connection_id"]), _request_data(r)) for r in rows]

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
            kw["query_keys"] = tuple(json.loads(r["query_keys"] or "[]"))
            yield r["id"], Connection(**kw, findings=tuple(findings.get(r["id"], ())))

    def requests(self, app: str | None = None) -> Iterator[tuple[int, HttpRequestData]]:
        """(connection id, request content) for every stored HTTP request."""
        q = "SELECT r.* FROM requests r JOIN connections c ON c.id = r.connection_id"
        args: tuple[Any, ...] = ()
        if app:
            q += " WHERE c.app = ?"
            args = (app,)
        for r in self.conn.execute(q + " ORDER BY r.connection_id", args):
            yield r["connection_id"], _request_data(r)

    def connection_count(self, app: str | None = None) -> int:
        if app:
            return int(self.conn.execute("SELECT count(*) FROM connections WHERE app = ?", (app,)).fetchone()[0])
        return int(self.conn.execute("SELECT count(*) FROM connections").fetchone()[0])

    def add_dns(self, records: Iterable[DnsRecord]) -> int:
        rows = [
            (r.ts, r.app, r.source, r.name.lower().rstrip("."), r.qtype, a)
            for r in records
            for a in (r.answers or ("",))
        ]
        with self.conn:
            self.conn.executemany(
                "INSERT INTO dns(ts, app, source, name, qtype, answer) VALUES (?, ?, ?, ?, ?, ?)", rows
            )
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
    ) -> tuple[int, int]:
        """Store one imported input (its connections, DNS records and ``inputs`` row) in ONE
        transaction: if ``items`` raises, nothing of it is kept. Consumed lazily and written in
        ``executemany`` batches, so memory stays bounded. Returns (connections, DNS records)."""
        insert = (
            f"INSERT INTO connections(id, {', '.join(_CONN_COLS)})"
            f" VALUES ({', '.join('?' * (len(_CONN_COLS) + 1))})"
        )
        qk = _CONN_COLS.index("query_keys")
        n_conn = n_dns = 0
        conns: list[Connection] = []
        dns: list[DnsRecord] = []

        def flush(next_id: int) -> int:
            rows, findings, requests = [], [], []
            for cid, c in enumerate(conns, next_id):
                values = [cid, *(getattr(c, k) for k in _CONN_COLS)]
                values[qk + 1] = json.dumps(list(c.query_keys))
                rows.append(values)
                findings += [(cid, f.data_type, f.location, f.encoding, f.confidence, f.masked) for f in c.findings]
                if c.request is not None:
                    r = c.request
                    requests.append((cid, r.url, json.dumps([list(h) for h in r.headers]), r.body, int(r.body_truncated)))
            self.conn.executemany(insert, rows)
            self.conn.executemany(
                "INSERT INTO findings(connection_id, data_type, location, encoding, confidence, masked)"
                " VALUES (?, ?, ?, ?, ?, ?)", findings)  # fmt: skip
            self.conn.executemany(
                "INSERT INTO requests(connection_id, url, headers, body, body_truncated) VALUES (?, ?, ?, ?, ?)",
                requests,
            )
            self.conn.executemany(
                "INSERT INTO dns(ts, app, source, name, qtype, answer) VALUES (?, ?, ?, ?, ?, ?)",
                [(r.ts, r.app, r.source, r.name.lower().rstrip("."), r.qtype, a) for r in dns for a in (r.answers or ("",))],
            )  # fmt: skip
            next_id += len(conns)
            conns.clear()
            dns.clear()
            return next_id

        with self.conn:
            # IMMEDIATE: take the write lock before reading max(id), so that explicit ids cannot
            # collide with a concurrent writer (the live addon on the same case file).
            self.conn.execute("BEGIN IMMEDIATE")
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
            self.conn.execute(
                "INSERT INTO inputs(kind, path, sha256, app, added_at) VALUES (?, ?, ?, ?, ?)",
                (kind, path, sha256, app, time.time()),
            )
        return n_conn, n_dns

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

    def dns_records(self, app: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM dns" + (" WHERE app = ?" if app else "") + " ORDER BY ts, id"
        return [dict(r) for r in self.conn.execute(q, (app,) if app else ())]

    # -- geo-IP cache ----------------------------------------------------------------------

    def cache_ip_info(self, infos: Iterable[IpInfo]) -> None:
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO ip_info(ip, scope, country, city, asn, asn_org, database, database_date,"
                " network_flags, flags_database, setup) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (i.ip, i.scope, i.country, i.city, i.asn, i.asn_org, i.database, i.database_date,
                     ",".join(i.network_flags), i.flags_database, i.setup)
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
            " count(DISTINCT c.id) AS flows, min(c.ts) AS first_ts, min(f.masked) AS masked"
            " FROM findings f JOIN connections c ON c.id = f.connection_id"
            + (" WHERE c.app = ?" if app else "")
            + " GROUP BY c.host, c.ip, c.port, f.data_type, f.location, f.encoding, f.confidence"
            " ORDER BY f.data_type, c.host, c.ip, c.port, f.location"
        )
        return [dict(r) for r in self.conn.execute(q, (app,) if app else ())]

    def connection_times(self, app: str | None = None) -> list[tuple[float, str | None, str | None, int]]:
        """(ts, host, ip, bytes_out + bytes_in) of every connection in time order, for timelines."""
        q = "SELECT ts, host, ip, bytes_out + bytes_in FROM connections"
        q += (" WHERE app = ?" if app else "") + " ORDER BY ts, id"
        return [(float(r[0]), r[1], r[2], int(r[3] or 0)) for r in self.conn.execute(q, (app,) if app else ())]

    # -- corpus batches (audit batch, audit corpus) -----------------------------------------------

    def batch_count(self) -> int:
        """Packages with a recorded batch outcome (done, failed or ignored)."""
        return int(self.conn.execute("SELECT count(*) FROM batch_apps").fetchone()[0])

    def batch_paths(self) -> dict[str, tuple[str, int, float]]:
        """path → (sha256 key, size, mtime) of every path a batch has recorded."""
        return {r[0]: (r[1], int(r[2]), float(r[3])) for r in self.conn.execute("SELECT path, sha256, size, mtime FROM batch_paths")}

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
            raise OptionError(f"--app {app!r}: {self.path} has no app labels (empty, or traffic imported without --app)")
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
            "requests": count("SELECT count(*) FROM requests r JOIN connections c ON c.id = r.connection_id" + where, args),
            "inspected": count(
                "SELECT count(*) FROM connections c" + (where + " AND" if where else " WHERE")
                + " c.tls IN ('intercepted', 'none') AND (EXISTS (SELECT 1 FROM requests r WHERE r.connection_id = c.id)"
                " OR EXISTS (SELECT 1 FROM findings f WHERE f.connection_id = c.id))",
                args,
            ),
        }
