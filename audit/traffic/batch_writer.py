"""Batched background writes of live traffic records to the case file.

The mitmproxy event loop must never wait on disk: hooks :meth:`BatchWriter.put` records on a queue
and one writer thread, which owns the :class:`~audit.store.Store`, runs data detection and geo-IP
enrichment and commits everything that arrived in the last ``flush_interval`` seconds in a few
transactions. With WAL mode a ``kill -9`` of the proxy loses at most one interval of records.

Faults are isolated per record (issue 15): every record passes through the importers'
:func:`~audit.traffic.records.storable` (lone surrogates from mitmproxy's ``surrogateescape``
decoding, numbers SQLite cannot hold); a batch the case file still refuses is written record by
record, and a record that cannot be stored even then is logged with its flow id and skipped. The
count of skipped records is kept in :class:`WriterStats` and in the notes of the capture's
``inputs`` row. A case file that is busy or failing as a whole (locked, disk full) is retried.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

from audit.enrich.geoip import Enricher, ip_scope, normalize_ip
from audit.errors import AuditError, one_line
from audit.models import Connection, DataFinding, DnsRecord, HttpRequestData
from audit.store import Store
from audit.traffic.records import storable

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
    """Records lost as a whole batch: the case file stayed unwritable, or the writer was closed."""
    skipped: int = 0
    """Single records the case file could not take even after sanitising; logged with their flow id."""
    errors: int = 0


class Entry(NamedTuple):
    """A queued record and the id of the mitmproxy flow (or client connection) it came from."""

    record: Connection | DnsRecord
    flow_id: str | None = None


def skipped_note(n: int) -> str:
    """The ``inputs`` note of a capture whose writer skipped ``n`` records."""
    return f"{n} record(s) could not be stored and were skipped (their flow ids are in the proxy's log)"


def is_store_fault(e: BaseException) -> bool:
    """Whether an error writing a batch is the case file's (locked, disk full, damaged: retry the
    batch later) rather than one record's (a value SQLite cannot bind or encode: isolate it)."""
    if isinstance(e, AuditError | sqlite3.OperationalError):
        return True
    return type(e) is sqlite3.DatabaseError  # "database disk image is malformed", not a subclass


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
        self._live_input: int | None = None
        self._live_skipped = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    # -- producer side (event loop) ----------------------------------------------------------

    def put(self, record: Connection | DnsRecord, flow_id: str | None = None) -> None:
        """Queue a record (``flow_id`` names it in the log if it cannot be stored); never blocks,
        never touches the disk."""
        if self._closed:
            self.stats.dropped += 1
            log.warning("record after the writer was closed: dropped")
            return
        self._queue.put(Entry(record, flow_id))

    def call(self, fn: Callable[[Store], None]) -> None:
        """Run ``fn(store)`` on the writer thread, after the records queued before it are written
        (for occasional writes such as the capture's ``inputs`` rows)."""
        if not self._closed:
            self._queue.put(_Call(fn))

    def record_input(self, kind: str, path: str, app: str = "") -> None:
        """Add an ``inputs`` row (how the capture was made), in order with the records. Records
        skipped from then on are counted in the notes of the last ``live`` row."""

        def write(store: Store) -> None:
            input_id = store.record_input(kind, path, app=app)
            if kind == "live":
                self._live_input, self._live_skipped = input_id, 0

        self.call(write)

    def count_skipped(self, n: int) -> None:
        """Count ``n`` records skipped before they reached this writer (the proxy side of
        :class:`~audit.traffic.writer_process.ProcessWriter`), in order with the records."""

        def count(store: Store) -> None:
            self._skipped(n)

        self.call(count)

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
            log.error(
                "%s: writer did not finish within %ss; some records may be lost", self.store.path, timeout
            )
            return
        self.store.close()

    # -- writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        pending: list[Entry] = []
        attempts = 0
        deadline = time.monotonic() + self.flush_interval
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = None
            force = item is _STOP or isinstance(item, _Flush | _Call)
            if isinstance(item, Entry):
                pending.append(item)
            if pending and (force or len(pending) >= MAX_BATCH or time.monotonic() >= deadline):
                try:
                    pending = self._write(pending)
                except Exception as e:  # a bug here must not end the thread: every later record would be lost
                    self.stats.errors += 1
                    log.error("%s: writing %d records failed: %s: %s", self.store.path, len(pending),
                              type(e).__name__, e, exc_info=True)  # fmt: skip
                if not pending:
                    attempts = 0
                else:
                    attempts += 1
                    if attempts >= MAX_ATTEMPTS or item is _STOP:
                        self.stats.dropped += len(pending)
                        log.error(
                            "%s: dropped %d records after %d failed writes",
                            self.store.path,
                            len(pending),
                            attempts,
                        )
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

    def _write(self, batch: list[Entry]) -> list[Entry]:
        """Store a batch; returns what is still to be written (empty, or the rest of the batch
        after a fault of the case file as a whole)."""
        ready: list[Entry] = []
        skipped = 0
        for entry in batch:
            try:
                record = storable(entry.record)
            except Exception as e:  # not even a well-formed record (a field of the wrong type)
                self._log_skipped(entry, e)
                skipped += 1
                continue
            if record is None:
                self._log_skipped(entry, ValueError("no usable start time"))
                skipped += 1
                continue
            if isinstance(record, Connection) and not self.defer_detection:
                record = self._detect(record)
            ready.append(Entry(record, entry.flow_id))
        written: list[Entry] = []
        rest: list[Entry] = []
        try:
            self._store(ready)
            written = ready
        except Exception as e:
            if is_store_fault(e):
                self.stats.errors += 1
                log.error("%s: could not write %d records: %s", self.store.path, len(ready), e)
                rest = ready
            else:
                # One record (or a few) the case file refuses: find them, keep all the others.
                for i, entry in enumerate(ready):
                    try:
                        self._store([entry])
                    except Exception as err:
                        if is_store_fault(err):
                            self.stats.errors += 1
                            log.error(
                                "%s: could not write %d records: %s", self.store.path, len(ready) - i, err
                            )
                            rest = ready[i:]
                            break
                        self._log_skipped(entry, err)
                        skipped += 1
                    else:
                        written.append(entry)
        if skipped:
            self._skipped(skipped)
        conns = [e.record for e in written if isinstance(e.record, Connection)]
        self.stats.connections += len(conns)
        self.stats.dns += len(written) - len(conns)
        self._enrich(conns)
        return rest

    def _store(self, entries: list[Entry]) -> None:
        if entries:
            self.store.add_records([e.record for e in entries], pending_detection=self.defer_detection)

    def _log_skipped(self, entry: Entry, e: BaseException) -> None:
        r = entry.record
        what = getattr(r, "host", None) or getattr(r, "name", None) or getattr(r, "ip", None) or "?"
        log.error(
            "%s: record of flow %s (%s) cannot be stored and was skipped: %s: %s",
            self.store.path, entry.flow_id or "?", one_line(ascii(what)[1:-1], 80), type(e).__name__,
            one_line(str(e)),
        )  # fmt: skip

    def _skipped(self, n: int) -> None:
        """Count skipped records, in the stats and in the notes of the capture's ``inputs`` row."""
        self.stats.skipped += n
        self._live_skipped += n
        if self._live_input is None:
            return
        try:
            self.store.set_input_notes(self._live_input, [skipped_note(self._live_skipped)])
        except Exception as e:  # the count is still in the stats and the log
            self.stats.errors += 1
            log.error("%s: could not note %d skipped records: %s", self.store.path, self._live_skipped, e)

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
        try:
            new = []
            for c in conns:
                ip = normalize_ip(c.ip) if isinstance(c.ip, str) else None
                if ip and ip not in self._seen_ips:
                    self._seen_ips.add(ip)
                    if ip_scope(ip) == "public":
                        new.append(c.ip or ip)
            if not new:
                return
            infos = [replace(self.enricher.ip_info(ip), ip=ip) for ip in new]
            self.store.cache_ip_info(infos)
            self.stats.ip_infos += len(infos)
        except Exception as e:  # enrichment is a cache: the destinations command redoes it
            self.stats.errors += 1
            log.warning("geo-IP enrichment failed: %s", e)
