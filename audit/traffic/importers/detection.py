"""Data detection over an import's stream of records, here or in a forked worker process.

Detection is about a third of an import's CPU time (issue 15: a 200,000-entry HAR). For a big file
it runs in one forked worker while this process goes on parsing and storing: batches of requests go
to the worker, and each batch's records are passed on (with their findings) once the worker has
answered, with at most :data:`IN_FLIGHT` batches outstanding, so the records still arrive in file
order and memory stays bounded. The findings are the same either way: the worker runs the very
detector object, inherited through ``fork``. Where ``fork`` is not available, on one CPU, or when
the worker dies, detection runs here.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from audit.models import Connection, DataFinding, DnsRecord, HttpRequestData
from audit.traffic.importers.base import Detector

log = logging.getLogger(__name__)

#: Files at least this big get a worker process; below it the process costs more than it saves.
PARALLEL_MIN_BYTES = 16 << 20
BATCH = 1000
#: ... or requests whose bodies make this many bytes, whichever comes first: big bodies (a decrypted
#: capture's) make short batches, so that little detection is left once the last record is read and
#: the batches in flight hold a bounded number of body bytes.
BATCH_BYTES = 4 << 20
IN_FLIGHT = 3


_worker_detector: Detector | None = None


def _init_worker(detector: Detector) -> None:
    global _worker_detector
    _worker_detector = detector


#: A request as sent to the worker: plain tuples pickle several times faster than dataclasses.
_Wire = tuple[str, tuple[tuple[str, str], ...], bytes, bool]


def _scan_batch(requests: list[_Wire]) -> list[tuple[DataFinding, ...] | None]:
    assert _worker_detector is not None
    out: list[tuple[DataFinding, ...] | None] = []
    for url, headers, body, truncated in requests:
        found = _worker_detector.scan(HttpRequestData(url, headers, body, truncated))
        out.append(found or None)  # most requests carry nothing: None pickles in one byte
    return out


def can_parallelise() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) > 1


def _with(item: Connection | DnsRecord, findings: tuple[DataFinding, ...]) -> Connection | DnsRecord:
    if findings and isinstance(item, Connection):
        return dataclasses.replace(item, findings=item.findings + findings)
    return item


def detected(
    items: Iterable[Connection | DnsRecord], detector: Detector, *, parallel: bool = False
) -> Iterator[Connection | DnsRecord]:
    """``items`` in order, each HTTP connection with the findings of ``detector`` added."""
    if not (parallel and can_parallelise()):
        yield from _inline(items, detector)
        return
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker,
                               initargs=(detector,))  # fmt: skip
    pending: deque[tuple[list[Connection | DnsRecord], Future[list[tuple[DataFinding, ...] | None]]]] = (
        deque()
    )
    try:
        batch: list[Connection | DnsRecord] = []
        body_bytes = 0
        for item in items:
            batch.append(item)
            if isinstance(item, Connection) and item.request is not None:
                body_bytes += len(item.request.body)
            if len(batch) >= BATCH or body_bytes >= BATCH_BYTES:
                pending.append((batch, pool.submit(_scan_batch, _requests(batch))))
                batch, body_bytes = [], 0
                if len(pending) >= IN_FLIGHT:
                    yield from _answered(*pending.popleft(), detector)
        if batch:
            pending.append((batch, pool.submit(_scan_batch, _requests(batch))))
        while pending:
            yield from _answered(*pending.popleft(), detector)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _inline(items: Iterable[Connection | DnsRecord], detector: Detector) -> Iterator[Connection | DnsRecord]:
    for item in items:
        if isinstance(item, Connection) and item.request is not None:
            item = _with(item, detector.scan(item.request))
        yield item


def _requests(batch: list[Connection | DnsRecord]) -> list[_Wire]:
    return [
        (r.url, r.headers, r.body, r.body_truncated)
        for item in batch
        if isinstance(item, Connection) and (r := item.request) is not None
    ]


def _answered(
    batch: list[Connection | DnsRecord],
    future: Future[list[tuple[DataFinding, ...] | None]],
    detector: Detector,
) -> Iterator[Connection | DnsRecord]:
    try:
        results = iter(future.result())
    except Exception as e:  # the worker died (memory) or could not take the batch: detect here
        log.warning("data detection worker failed (%s: %s); detecting in this process", type(e).__name__, e)
        yield from _inline(batch, detector)
        return
    for item in batch:
        if isinstance(item, Connection) and item.request is not None:
            item = _with(item, next(results) or ())  # type: ignore[arg-type]
        yield item
