"""Deferred data detection for live capture, in a low-priority process.

Personal-data detection costs a few hundred microseconds of CPU per request (``docs/benchmarks.md``).
During a live capture that CPU would be taken from the proxy, the phone's traffic and everything else
on the machine, so the recorder's writer process stores each request marked *pending*
(``Store.add_connections(..., pending_detection=True)``) and this worker, at a lower CPU priority
(``nice`` +10), scans pending requests in batches and adds their findings
(``Store.complete_detection``). The backlog lives in the case file, not in memory: memory stays flat
however far detection falls behind, and a crash loses nothing (``audit pii`` or the next capture on
the same case file picks pending requests up again). When its standard input closes, the worker
scans what is still pending and exits, so findings are complete once mitmdump has exited.

Run by :class:`DetectionWorker` as ``python -m audit.traffic.detect_worker DB [--device PROFILE]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import threading
import time

from audit.errors import AuditError
from audit.store import Store
from audit.traffic.batch_writer import Detector, load_detector

log = logging.getLogger(__name__)

BATCH = 200
POLL = 0.2
NICE = 10


class DetectionWorker:
    """Handle on the worker process (started by the recorder's writer process)."""

    def __init__(self, db_path: str, device: str | None) -> None:
        self.db_path = db_path
        args = [sys.executable, "-m", "audit.traffic.detect_worker", db_path]
        if device:
            args += ["--device", device]
        # The environment (PYTHONPATH included) is the writer process's, which can import this package.
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_idle(self, store: Store, timeout: float | None = None) -> bool:
        """Until nothing is pending (True), the worker died, or the timeout passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while store.pending_count():
            if not self.alive() or (deadline is not None and time.monotonic() > deadline):
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout: float | None = None) -> None:
        """Let the worker finish what is pending, then exit."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:  # pragma: no cover - already gone
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("%s: data detection did not finish within %ss; pending requests stay marked "
                      "(run `audit pii` on the case)", self.db_path, timeout)  # fmt: skip
            self.proc.kill()
            self.proc.wait()


def drain(
    store: Store, detector: Detector | None, *, stop: threading.Event | None = None, poll: float = POLL
) -> int:
    """Scan pending requests until none is left and ``stop`` is set (or, without ``stop``, until none
    is left). Returns how many requests were scanned."""
    scanned = 0
    while True:
        batch = store.pending_requests(BATCH)
        if batch:
            results = []
            for cid, request in batch:
                try:
                    found = detector(request) if detector is not None else ()
                except Exception as e:  # a detector bug must not stop the others
                    log.error("data detection failed for request %d: %s: %s", cid, type(e).__name__, e)
                    found = ()
                results.append((cid, found))
            store.complete_detection(results)
            scanned += len(results)
            continue
        if stop is None or stop.is_set():
            return scanned
        stop.wait(poll)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m audit.traffic.detect_worker")
    ap.add_argument("db")
    ap.add_argument("--device")
    args = ap.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("dataflow-audit detection: %(levelname)s %(message)s"))
    logging.getLogger("audit").addHandler(handler)
    logging.getLogger("audit").setLevel(logging.WARNING)
    try:
        os.nice(NICE)
    except OSError:  # pragma: no cover - not permitted: detection just runs at normal priority
        pass
    try:
        detector = load_detector(args.device)
        store = Store(args.db, check_same_thread=False)
    except AuditError as e:
        log.error("%s", e)
        return 1
    stop = threading.Event()

    def watch_stdin() -> None:
        try:
            sys.stdin.buffer.read()
        finally:
            stop.set()

    threading.Thread(target=watch_stdin, name="audit-detect-stdin", daemon=True).start()
    try:
        drain(store, detector, stop=stop)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
