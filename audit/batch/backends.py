"""Where the scans of ``audit batch`` run: a local pool, or an existing Dask distributed cluster.

Both run :func:`audit.batch.worker.scan_task` (limits, helper process, retry of a lost helper) and
both keep only a bounded window of scans in flight, so the coordinating process holds a few answers
at a time whatever the corpus size. Answers come back in completion order.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from audit.batch.worker import close_helpers, reset_stop, scan_task
from audit.errors import AuditError

__all__ = ["Backend", "DaskCluster", "LocalPool", "Task", "make_backend"]

log = logging.getLogger(__name__)

DASK_HINT = "install the Dask extra: pip install 'dataflow-audit[dask]'"
#: Seconds to wait for the Dask scheduler to answer.
CONNECT_TIMEOUT = 30


@dataclass(frozen=True)
class Task:
    """One package to scan."""

    path: str
    """Absolute path, as the workers see it (shared storage on a cluster)."""
    timeout: float
    max_memory_mb: int


class Backend(Protocol):
    """Runs tasks and yields ``(task, answer)`` as they finish (answer: see :func:`scan_task`)."""

    workers: int
    name: str

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict[str, Any]]]: ...

    def close(self, interrupted: bool = False) -> None: ...


class LocalPool:
    """``workers`` threads on this machine, each driving its own scan helper process."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.name = f"local pool ({self.workers} worker{'s' if self.workers != 1 else ''})"
        self._pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="audit-batch")

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict[str, Any]]]:
        window = 2 * self.workers
        pending: dict[cf.Future[dict[str, Any]], Task] = {}
        it = iter(tasks)
        for task in it:
            pending[self._pool.submit(scan_task, task.path, task.timeout, task.max_memory_mb)] = task
            if len(pending) >= window:
                break
        while pending:
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                task = pending.pop(fut)
                yield task, fut.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending[self._pool.submit(scan_task, nxt.path, nxt.timeout, nxt.max_memory_mb)] = nxt

    def close(self, interrupted: bool = False) -> None:
        """Wait for the pool's threads; ``interrupted``: kill the scans in flight first."""
        if interrupted:
            close_helpers(kill=True)
        self._pool.shutdown(wait=True, cancel_futures=True)
        close_helpers()
        reset_stop()


class DaskCluster:
    """An existing Dask distributed cluster (``dask scheduler`` + ``dask worker --nthreads 1``).

    Only file paths travel to the workers. A task whose worker process was lost is rescheduled by
    Dask itself; if Dask gives up on it (``KilledWorker``) it is submitted once more, then
    recorded as a failure. Worker processes must see the packages at the same paths."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError as e:
            raise AuditError(f"--scheduler needs Dask distributed: {DASK_HINT}") from e
        try:
            self.client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise AuditError(
                f"cannot connect to the Dask scheduler at {address} ({e}); is `dask scheduler` running?"
            ) from e
        info = (
            self.client.scheduler_info(n_workers=-1)
            if _takes_n_workers(self.client)
            else self.client.scheduler_info()
        )
        workers = info.get("workers", {})
        self.threads = sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
        self.workers = len(workers)
        self.name = f"Dask cluster {address} ({self.workers} workers, {self.threads} threads)"
        self._inflight: dict[Any, Any] = {}
        if any(int(w.get("nthreads", 1)) > 1 for w in workers.values()):
            log.warning("Dask workers with several threads: per-scan memory limits still hold, but the worker's "
                        "--memory-limit is shared by its scans; start workers with --nthreads 1")  # fmt: skip

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict[str, Any]]]:
        from distributed import as_completed

        window = 2 * max(self.threads, 1)
        it = iter(tasks)
        retried: set[str] = set()
        ac = as_completed(loop=self.client.loop, with_results=False)
        owner: dict[Any, Task] = {}

        def submit(task: Task) -> None:
            fut = self.client.submit(scan_task, task.path, task.timeout, task.max_memory_mb, pure=False)
            owner[fut.key] = task
            self._inflight[fut.key] = fut
            ac.add(fut)

        for _ in range(window):
            task = next(it, None)
            if task is None:
                break
            submit(task)
        for fut in ac:
            task = owner.pop(fut.key)
            self._inflight.pop(fut.key, None)
            try:
                answer = fut.result()
            except Exception as e:  # KilledWorker, a lost connection, a worker without audit …
                fut.release()
                if task.path not in retried:
                    log.warning("%s: %s: %s; submitting it once more", task.path, type(e).__name__, e)
                    retried.add(task.path)
                    submit(task)
                    continue
                answer = {"status": "failed", "sha256": None, "attempts": 2, "seconds": None, "peak_rss": None,
                          "reason": f"Dask task failed twice ({type(e).__name__}: {e})"}  # fmt: skip
            fut.release()
            yield task, answer
            nxt = next(it, None)
            if nxt is not None:
                submit(nxt)

    def close(self, interrupted: bool = False) -> None:
        """Disconnect; ``interrupted``: cancel this client's tasks still queued on the cluster."""
        if interrupted and self._inflight:
            self.client.cancel(list(self._inflight.values()), force=True)
        self.client.close()


def _takes_n_workers(client: Any) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def make_backend(workers: int | None = None, scheduler: str | None = None) -> Backend:
    """The Dask cluster at ``scheduler``, else a local pool of ``workers`` (default: core count)."""
    if scheduler:
        return DaskCluster(scheduler)
    return LocalPool(workers)
