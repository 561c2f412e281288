"""Deferred data detection: requests stored pending, scanned by a low-priority worker process."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from audit.models import Connection, HttpRequestData
from audit.store import Store
from audit.traffic.detect_worker import NICE, DetectionWorker, drain
from audit.traffic.pii import PiiDetector

AAID = "38400000-8cf0-11bd-b23e-10b96e40000d"


def _conn(i: int, query: str) -> Connection:
    url = f"https://ads.example-cn.cn/track/{i}?{query}"
    return Connection(
        ts=float(i), source="live", protocol="https", tls="intercepted", host="ads.example-cn.cn",
        request=HttpRequestData(url, (("content-type", "text/plain"),), b""),
    )  # fmt: skip


def _pending_case(db: Path, n: int = 5) -> None:
    with Store(db) as s:
        s.add_connections([_conn(i, f"gaid={AAID}" if i % 2 == 0 else "lang=en") for i in range(n)],
                          pending_detection=True)  # fmt: skip
        assert s.pending_count() == n


def _findings(db: Path) -> dict[float, set[str]]:
    with Store(db) as s:
        return {c.ts: {f.data_type for f in c.findings} for _, c in s.connections()}


def test_drain_scans_every_pending_request(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    _pending_case(db)
    with Store(db) as s:
        assert drain(s, PiiDetector(None).scan) == 5
        assert s.pending_count() == 0
    assert _findings(db) == {0.0: {"aaid"}, 1.0: set(), 2.0: {"aaid"}, 3.0: set(), 4.0: {"aaid"}}


def test_a_failing_detector_does_not_stop_the_others(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    _pending_case(db, 3)
    real = PiiDetector(None).scan

    def flaky(req: HttpRequestData):  # type: ignore[no-untyped-def]
        if "/track/1" in req.url:
            raise RuntimeError("detector bug")
        return real(req)

    with Store(db) as s:
        assert drain(s, flaky) == 3
        assert s.pending_count() == 0
    assert _findings(db) == {0.0: {"aaid"}, 1.0: set(), 2.0: {"aaid"}}


def test_drain_waits_for_stop_and_picks_up_late_rows(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    _pending_case(db, 1)
    stop = threading.Event()
    with Store(db, check_same_thread=False) as s:
        t = threading.Thread(
            target=drain, args=(s, PiiDetector(None).scan), kwargs={"stop": stop, "poll": 0.02}
        )
        t.start()
        with Store(db) as w:
            w.add_connections([_conn(7, f"adid={AAID}")], pending_detection=True)
        stop.set()
        t.join(10)
        assert not t.is_alive()
        assert s.pending_count() == 0
    assert _findings(db)[7.0] == {"aaid"}


def test_worker_process_runs_niced_and_finishes_the_backlog(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    _pending_case(db, 4)
    worker = DetectionWorker(str(db), None)
    try:
        deadline = time.monotonic() + 20
        nice = 0
        while time.monotonic() < deadline and worker.alive():
            nice = os.getpriority(os.PRIO_PROCESS, worker.proc.pid)
            if nice:
                break
            time.sleep(0.02)
        assert nice >= min(NICE, 19 - os.getpriority(os.PRIO_PROCESS, 0))
        with Store(db) as s:
            assert worker.wait_idle(s, timeout=30)
    finally:
        worker.stop(timeout=30)
    assert worker.proc.returncode == 0
    assert _findings(db) == {0.0: {"aaid"}, 1.0: set(), 2.0: {"aaid"}, 3.0: set()}


def test_bad_profile_makes_the_worker_exit_with_an_error(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    _pending_case(db, 1)
    bad = tmp_path / "device.toml"
    bad.write_text("imei = [not toml")
    worker = DetectionWorker(str(db), str(bad))
    worker.stop(timeout=30)
    assert worker.proc.returncode == 1
    with Store(db) as s:
        assert s.pending_count() == 1  # still marked: `audit pii` can scan it later


@pytest.mark.parametrize("pending", [True, False])
def test_pii_rescan_clears_the_pending_mark(tmp_path: Path, pending: bool) -> None:
    db = tmp_path / "case.sqlite"
    with Store(db) as s:
        s.add_connections([_conn(0, f"gaid={AAID}")], pending_detection=pending)
        ((cid, _),) = list(s.requests())
        s.replace_findings(cid, [])
        assert s.pending_count() == 0
