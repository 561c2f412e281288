"""``audit batch --scheduler``: a real ``dask scheduler`` and two ``dask worker --nthreads 1``
processes on loopback, on the same mixed folder as the local pool; the results must be identical
to the local pool's (and so to ``audit scan`` of each app alone, tests/test_batch.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import ExitStatus, main
from tests.helpers.batch import make_corpus, outcomes

distributed = pytest.importorskip(
    "distributed", reason="the dask extra is not installed (pip install '.[dask]')"
)

pytestmark = pytest.mark.slow
DASK = Path(sys.executable).with_name("dask")


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not DASK.exists():
        pytest.skip(f"{DASK} not found")
    tmp = tmp_path_factory.mktemp("dask")
    sched_file = tmp / "scheduler.json"
    procs = [_start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(sched_file)], tmp / "scheduler.log")]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for i in range(2):
            procs.append(_start([str(DASK), "worker", address, "--nthreads", "1", "--memory-limit", "2GB",
                                 "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(tmp / f"w{i}")],
                                tmp / f"worker{i}.log"))  # fmt: skip
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_dask_cluster_matches_local_pool(cluster: str, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    dask_db, local_db = tmp_path / "dask.sqlite", tmp_path / "local.sqlite"
    r = CliRunner().invoke(
        main, ["batch", str(corpus), "--db", str(dask_db), "--scheduler", cluster, "--table"]
    )
    assert r.exit_code == ExitStatus.ERROR, r.output  # the hostile ones failed
    assert "on Dask cluster" in r.stdout and "(2 workers, 2 threads)" in r.stdout
    r = CliRunner().invoke(main, ["batch", str(corpus), "--db", str(local_db), "--workers", "2"])
    assert r.exit_code == ExitStatus.ERROR, r.output
    on_dask, on_pool = outcomes(dask_db), outcomes(local_db)
    assert on_dask == on_pool
    assert sorted(s for s, *_ in on_dask.values()) == ["done"] * 19 + ["failed"] * 6 + ["ignored"]


def test_dask_resume(cluster: str, tmp_path: Path) -> None:
    src = tmp_path / "apps"
    shutil.copytree(Path(__file__).parent / "fixtures" / "signed", src)
    db = tmp_path / "case.sqlite"
    r = CliRunner().invoke(main, ["batch", str(src), "--db", str(db), "--scheduler", cluster, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["done"] == 5
    r = CliRunner().invoke(
        main, ["batch", str(src), "--db", str(db), "--scheduler", cluster, "--resume", "--json"]
    )
    assert r.exit_code == 0, r.output
    assert (json.loads(r.stdout)["skipped"], json.loads(r.stdout)["done"]) == (5, 0)


def test_unreachable_scheduler_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audit.batch import backends

    monkeypatch.setattr(backends, "CONNECT_TIMEOUT", 2)
    r = CliRunner().invoke(
        main, ["batch", str(tmp_path), "--db", str(tmp_path / "x.sqlite"), "--scheduler", "tcp://127.0.0.1:9"]
    )
    assert r.exit_code == ExitStatus.ERROR
    assert "cannot connect to the Dask scheduler" in r.output and "Traceback" not in r.output
