"""Batched background writes of live traffic records to the case file.

The mitmproxy event loop must never wait on disk: hooks :meth:`BatchWriter.put` records on a queue
and one writer thread, which owns the :class:`~audit.store.Store`, runs data detection and geo-IP
enrichment and commits everything that arrived in the last ``flush_interval`` seconds in a few
transactions. With WAL mode a ``kill -9`` of the proxy loses at most one interval of records.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from audit.enrich.geoip import Enricher, ip_scope, normalize_ip
from audit.errors import AuditError
from audit.models import Connection, DataFinding, DnsRecord, HttpRequestData
from audit.store import Store

log = logging.getLogger(__name__)

#: Records written per transaction at most, so that a burst does not hold the write lock for long.
MAX_BATCH = 5000
#: A batch that could not be written (database locked by another writer) is retried this often.
MAX_ATTEMPTS = 3

Detector = Callable[[HttpRequestData], tuple[DataFinding, ...]]


def load_detector(device: str | None) -> Detector | None:
    """The data detector of :mod:`audit.traffic.pii`, with the device profile if given.

    Without a profile its pattern detectors still run (they need no known values; the PII module
    means them to run on every request). Raises ConfigError for a bad profile."""
    try:
        from audit.traffic.pii import PiiDetector
    except ImportError:  # pragma: no cover - a part of this package
        log.warning("audit.traffic.pii is not available: no data detection")
        return None
    profile = None
    if device:
        from audit.traffic.profile import load_profile

        profile = load_profile(device)
    scan: Detector = PiiDetector(profile).scan
    return scan


@dataclass
class WriterStats:
    """Counters, for tests and the ``done`` log line."""

    connections: int = 0
    dns: int = 0
    ip_infos: int = 0
    dropped: int = 0
    errors: int = 0


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


class _Call:
    def __init__(self, fn: Callable[[Store], None]) -> None:
        self.fn = fn


_STOP = object()


class BatchWriter:
    """One writer thread in front of one Store.

    ``store`` is used from the writer thread only (open it with ``check_same_thread=False``).
    ``detector`` (optional) finds personal data in each connection's request (or, with
    ``defer_detection``, requests are stored pending for the detection worker); ``enricher``
    (optional) geo-locates each new public server IP into the store's ``ip_info`` cache.
    """

    def __init__(
        self,
        store: Store,
        *,
        flush_interval: float = 0.5,
        detector: Detector | None = None,
        enricher: Enricher | None = None,
        defer_detection: bool = False,
    ) -> None:
        self.store = store
        self.flush_interval = max(0.01, flush_interval)
        self.detector = detector
        self.defer_detection = defer_detection
        """Store requests marked pending for :mod:`audit.traffic.detect_worker` instead of running
        ``detector`` here."""
        self.enricher = enricher
        self.stats = WriterStats()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._seen_ips: set[str] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    # -- producer side (event loop) ----------------------------------------------------------

    def put(self, record: Connection | DnsRecord) -> None:
        """Queue a record; never blocks, never touches the disk."""
        if self._closed:
            self.stats.dropped += 1
            log.warning("record after the writer was closed: dropped")
            return
        self._queue.put(record)

    def call(self, fn: Callable[[Store], None]) -> None:
        """Run ``fn(store)`` on the writer thread, after the records queued before it are written
        (for occasional writes such as the capture's ``inputs`` rows)."""
        if not self._closed:
            self._queue.put(_Call(fn))

    def record_input(self, kind: str, path: str, app: str = "") -> None:
        """Add an ``inputs`` row (how the capture was made), in order with the records."""

        def write(store: Store) -> None:
            store.record_input(kind, path, app=app)

        self.call(write)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Write everything queued so far; True once written (False on timeout or if closed)."""
        if self._closed or not self._thread.is_alive():
            return False
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is queued, stop the thread and close the store. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():  # pragma: no cover - a wedged disk
            log.error("%s: writer did not finish within %ss; some records may be lost", self.store.path, timeout)
            return
        self.store.close()

    # -- writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        pending: list[Connection | DnsRecord] = []
        attempts = 0
        deadline = time.monotonic() + self.flush_interval
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = None
            force = item is _STOP or isinstance(item, _Flush | _Call)
            if isinstance(item, Connection | DnsRecord):
                pending.append(item)
            if pending and (force or len(pending) >= MAX_BATCH or time.monotonic() >= deadline):
                if self._write(pending):
                    pending, attempts = [], 0
                else:
                    attempts += 1
                    if attempts >= MAX_ATTEMPTS or item is _STOP:
                        self.stats.dropped += len(pending)
                        log.error("%s: dropped %d records after %d failed writes", self.store.path, len(pending), attempts)
                        pending, attempts = [], 0
            if time.monotonic() >= deadline:
                deadline = time.monotonic() + self.flush_interval
            if isinstance(item, _Call):
                try:
                    item.fn(self.store)
                except Exception as e:
                    self.stats.errors += 1
                    log.error("%s: %s", self.store.path, e)
            if isinstance(item, _Flush):
                item.done.set()
            if item is _STOP:
                return

    def _write(self, batch: list[Connection | DnsRecord]) -> bool:
        conns = [c if self.defer_detection else self._detect(c) for c in batch if isinstance(c, Connection)]
        dns = [d for d in batch if isinstance(d, DnsRecord)]
        try:
            if conns:
                self.store.add_connections(conns, pending_detection=self.defer_detection)
            if dns:
                self.store.add_dns(dns)
        except (sqlite3.Error, AuditError) as e:
            self.stats.errors += 1
            log.error("%s: could not write %d records: %s", self.store.path, len(batch), e)
            return False
        self.stats.connections += len(conns)
        self.stats.dns += len(dns)
        self._enrich(conns)
        return True

    def _detect(self, conn: Connection) -> Connection:
        if self.detector is None or conn.request is None:
            return conn
        try:
            found = self.detector(conn.request)
        except Exception as e:  # a detector bug must not lose the connection itself
            self.stats.errors += 1
            log.error("data detection failed for %s: %s", conn.host, e)
            return conn
        return replace(conn, findings=conn.findings + tuple(found)) if found else conn

    def _enrich(self, conns: list[Connection]) -> None:
        if self.enricher is None:
            return
        new = []
        for c in conns:
            ip = normalize_ip(c.ip) if c.ip else None
            if ip and ip not in self._seen_ips:
                self._seen_ips.add(ip)
                if ip_scope(ip) == "public":
                    new.append(c.ip or ip)
        if not new:
            return
        try:
            infos = [replace(self.enricher.ip_info(ip), ip=ip) for ip in new]
            self.store.cache_ip_info(infos)
            self.stats.ip_infos += len(infos)
        except (sqlite3.Error, AuditError) as e:  # enrichment is a cache: the destinations command redoes it
            self.stats.errors += 1
            log.warning("geo-IP enrichment failed: %s", e)
