"""The recorder's writer in a child process, so that data detection, geo-IP and SQLite cost the proxy
process (and its event loop and GIL) almost nothing.

The proxy side (:class:`ProcessWriter`) collects records in memory; one sender thread pickles them
in batches every ``flush_interval`` and writes them to the child's stdin as length-prefixed frames.
The child (``python -m audit.traffic.writer_process DB``) feeds a
:class:`~audit.traffic.batch_writer.BatchWriter`, which enriches and commits, storing requests
pending for the low-priority :mod:`~audit.traffic.detect_worker` that finds personal data in them.
If the proxy is killed, the child reads end-of-file, writes what it received, lets the detection
worker finish and exits: a ``kill -9`` of mitmdump loses at most the last interval. Frames come only
from our own parent process over a pipe.

One record never stops recording (issue 15): a record that cannot be pickled is logged with its flow
id and skipped here, a frame the child cannot unpickle is skipped there (frames are length-prefixed,
so the stream stays in step), and the child's writer isolates records the case file refuses.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from audit.errors import one_line
from audit.models import Connection, DnsRecord
from audit.traffic.batch_writer import Entry, WriterStats

if TYPE_CHECKING:
    from audit.store import Store
    from audit.traffic.batch_writer import BatchWriter
    from audit.traffic.detect_worker import DetectionWorker

log = logging.getLogger(__name__)

_LEN = struct.Struct("!I")


class BadFrame(ValueError):
    """A whole frame was read but could not be unpickled: skip it, the next one is intact."""


def _dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def write_frame(stream: IO[bytes], obj: Any) -> None:
    write_data(stream, _dumps(obj))


def write_data(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LEN.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next frame, or None at end of file (or a truncated frame); :class:`BadFrame` if it was
    read whole but does not unpickle."""
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        return None
    (n,) = _LEN.unpack(head)
    data = stream.read(n)
    if len(data) < n:
        return None
    try:
        return pickle.loads(data)
    except Exception as e:  # any exception a hostile or stale pickle raises (AttributeError, ImportError …)
        raise BadFrame(f"{type(e).__name__}: {e}") from e


class ProcessWriter:
    """Same interface as :class:`~audit.traffic.batch_writer.BatchWriter` (``put``, ``flush``,
    ``close``, ``stats``), backed by a child process. ``configure`` passes the device profile path
    and geo-IP database paths on; the parent has validated them already."""

    def __init__(
        self,
        db_path: str,
        *,
        flush_interval: float = 0.5,
        device: str | None = None,
        mmdb: tuple[str, ...] = (),
        asn_table: str | None = None,
        location_db: str | None = None,
    ) -> None:
        self.db_path = db_path
        self.flush_interval = max(0.01, flush_interval)
        self.stats = WriterStats()
        self._outbox: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._acks: dict[int, threading.Event] = {}
        self._seq = 0
        self._closed = False
        self._broken = False
        self._dropped = 0
        """Records dropped on this side (writer closed or gone); the child counts the rest."""
        # The child must import this very package, even when it is not installed (a source checkout
        # loaded through addons/dataflow.py from another directory).
        package_root = str(Path(__file__).resolve().parents[2])
        pythonpath = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "audit.traffic.writer_process", db_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": pythonpath},
        )
        self.configure(device=device, mmdb=mmdb, asn_table=asn_table, location_db=location_db)
        self._sender = threading.Thread(target=self._send_loop, name="audit-writer-send", daemon=True)
        self._reader = threading.Thread(target=self._read_loop, name="audit-writer-acks", daemon=True)
        self._sender.start()
        self._reader.start()

    # -- producer side ---------------------------------------------------------------------------

    def put(self, record: Connection | DnsRecord, flow_id: str | None = None) -> None:
        if self._closed or self._broken:
            self._dropped += 1
            self.stats.dropped += 1
            return
        with self._lock:
            self._outbox.append(("r", Entry(record, flow_id)))

    def record_input(self, kind: str, path: str, app: str = "") -> None:
        with self._lock:
            self._outbox.append(("input", (kind, path, app)))

    def configure(
        self,
        *,
        device: str | None,
        mmdb: tuple[str, ...] | list[str],
        asn_table: str | None = None,
        location_db: str | None = None,
    ) -> None:
        config = {"device": device, "mmdb": list(mmdb), "asn_table": asn_table, "location_db": location_db}
        with self._lock:
            self._outbox.append(("config", config))
        self._wake.set()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """True once everything put so far is committed by the child."""
        if self._closed or self._broken:
            return False
        with self._lock:
            self._seq += 1
            seq = self._seq
            done = self._acks[seq] = threading.Event()
            self._outbox.append(("flush", seq))
        self._wake.set()
        ok = done.wait(timeout)
        self._acks.pop(seq, None)
        return ok and not self._broken

    def close(self, timeout: float = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._sender.join(timeout)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:  # pragma: no cover - a wedged disk
            log.error("%s: writer process did not finish within %ss", self.db_path, timeout)
            self.proc.kill()
        self._reader.join(5)

    # -- threads -----------------------------------------------------------------------------------

    def _take(self) -> list[tuple[str, Any]]:
        with self._lock:
            out, self._outbox = self._outbox, []
        return out

    def _send_loop(self) -> None:
        assert self.proc.stdin is not None
        stdin = self.proc.stdin
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            closing = self._closed
            items = self._take()
            try:
                self._send(stdin, items)
                if closing:
                    stdin.close()
                    return
            except (BrokenPipeError, OSError, ValueError) as e:
                self._broken = True
                lost = sum(1 for k, _ in items if k == "r") + sum(1 for k, _ in self._take() if k == "r")
                self._dropped += lost
                self.stats.dropped += lost
                log.error("%s: writer process is gone (%s); %d records dropped, recording stopped",
                          self.db_path, e, lost)  # fmt: skip
                for ev in list(self._acks.values()):
                    ev.set()
                return

    def _send(self, stdin: IO[bytes], items: list[tuple[str, Any]]) -> None:
        batch: list[Entry] = []
        for kind, payload in items:
            if kind == "r":
                batch.append(payload)
                continue
            if batch:
                self._send_records(stdin, batch)
                batch = []
            write_frame(stdin, (kind, payload))
        if batch:
            self._send_records(stdin, batch)

    def _send_records(self, stdin: IO[bytes], batch: list[Entry]) -> None:
        try:
            data = _dumps(("records", batch))
        except Exception:  # one record that does not pickle: send the others
            good, skipped = [], 0
            for entry in batch:
                try:
                    _dumps(entry)
                except Exception as e:
                    skipped += 1
                    log.error("%s: record of flow %s cannot be sent to the writer and was skipped: %s: %s",
                              self.db_path, entry.flow_id or "?", type(e).__name__, one_line(str(e)))  # fmt: skip
                else:
                    good.append(entry)
            data = _dumps(("records", good))
            write_data(stdin, data)
            write_frame(stdin, ("skipped", skipped))  # counted by the child, in the stats and the case
            return
        write_data(stdin, data)

    def _read_loop(self) -> None:
        assert self.proc.stdout is not None
        while True:
            try:
                msg = read_frame(self.proc.stdout)
            except BadFrame as e:
                log.error("%s: unreadable answer from the writer process: %s", self.db_path, e)
                continue
            except OSError:
                msg = None
            if msg is None:
                if not self._closed:
                    self._broken = True
                    log.error("%s: writer process is gone (exit code %s); recording stopped",
                              self.db_path, self.proc.poll())  # fmt: skip
                for ev in list(self._acks.values()):
                    ev.set()
                return
            kind, seq, stats = msg
            if kind == "flushed":
                self.stats = WriterStats(**stats)
                self.stats.dropped += self._dropped
                waiter = self._acks.get(seq)
                if waiter is not None:
                    waiter.set()


# -- child process -------------------------------------------------------------------------------------


def child_main(db_path: str) -> int:
    from audit.errors import AuditError
    from audit.store import Store
    from audit.traffic.batch_writer import BatchWriter
    from audit.traffic.detect_worker import DetectionWorker

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("dataflow-audit writer: %(levelname)s %(message)s"))
    logging.getLogger("audit").addHandler(handler)
    logging.getLogger("audit").setLevel(logging.WARNING)

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # No lower CPU priority (os.nice): on a saturated machine a niced writer falls behind and its
    # backlog grows without bound (docs/benchmarks.md); at normal priority it keeps up.
    try:
        store = Store(db_path, check_same_thread=False)
    except AuditError as e:
        log.error("%s", e)
        return 1
    # The proxy already batched: write each batch as soon as it arrives. Data detection runs in a
    # lower-priority worker over requests stored pending (audit.traffic.detect_worker), so that it
    # never takes CPU from the proxy; this process only decodes, enriches and commits.
    writer = BatchWriter(store, flush_interval=0.05, defer_detection=True)
    reader = Store(db_path, check_same_thread=False)
    worker: DetectionWorker | None = None
    while True:
        try:
            msg = read_frame(stdin)
        except BadFrame as e:  # the frame is skipped whole; the stream is still in step
            writer.stats.errors += 1
            log.error("%s: a frame from the proxy could not be read and was skipped: %s", db_path, e)
            continue
        except (OSError, ValueError) as e:
            log.error("%s: bad frame from the proxy: %s", db_path, e)
            msg = None
        if msg is None:
            writer.close()
            if worker is None:  # never configured: scan here what this capture left pending
                worker = DetectionWorker(db_path, None)
            worker.stop()
            reader.close()
            try:  # the final counters, for the proxy's summary line
                write_frame(stdout, ("flushed", 0, asdict(writer.stats)))
            except OSError:
                pass
            return 0
        try:
            worker = _handle(msg, writer, worker, reader, db_path, stdout)
        except Exception as e:  # a bug or a stale frame must not end recording
            writer.stats.errors += 1
            log.error("%s: frame %r from the proxy failed: %s: %s", db_path, str(msg)[:40], type(e).__name__, e,
                      exc_info=True)  # fmt: skip


def _handle(
    msg: Any,
    writer: BatchWriter,
    worker: DetectionWorker | None,
    reader: Store,
    db_path: str,
    stdout: IO[bytes],
) -> DetectionWorker | None:
    """Act on one frame in the child; returns the detection worker (a new one after ``config``)."""
    from audit.enrich.geoip import Enricher
    from audit.errors import AuditError
    from audit.traffic.detect_worker import DetectionWorker

    kind, payload = msg
    if kind == "records":
        for entry in payload:
            writer.put(*entry)
    elif kind == "skipped":
        writer.count_skipped(int(payload))
    elif kind == "input":
        k, path, app = payload
        writer.record_input(k, path, app=app)
    elif kind == "config":
        old_enricher = writer.enricher
        try:
            writer.enricher = Enricher(
                payload["mmdb"],
                asn_table=payload.get("asn_table") or False,
                location_db=payload.get("location_db") or False,
            )
        except AuditError as e:  # the proxy validated these; a file changed since
            log.error("%s", e)
        # A new device profile: the old worker finishes what is pending with the old profile.
        writer.flush(timeout=None)
        if old_enricher is not None and old_enricher is not writer.enricher:
            old_enricher.close()
        if worker is not None:
            worker.stop()
        worker = DetectionWorker(db_path, payload["device"])
    elif kind == "flush":
        writer.flush(timeout=None)
        if worker is not None:
            worker.wait_idle(reader)
        write_frame(stdout, ("flushed", payload, asdict(writer.stats)))
    return worker


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1]))
