"""``audit batch`` on the local pool: a mixed folder (fixture apps, hostile inputs, signed copies, a
duplicate, a zip that is no package, a text file), results identical to ``audit scan`` of each app
alone, limits, lost workers, resume (also after a ``kill -9``), and the command line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from audit.batch import LocalPool, Progress, discover, run_batch
from audit.batch import worker as batch_worker
from audit.cli import ExitStatus, main
from audit.errors import AuditError, InputError
from audit.static.scanner import scan_path
from audit.store import Store
from tests.helpers.batch import batch_case, make_corpus, outcomes

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = FIXTURES.parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def local_case(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return batch_case(corpus, tmp_path_factory.mktemp("case") / "corpus.sqlite")


def test_discover_by_content(corpus: Path) -> None:
    found, other = discover([corpus])
    names = {Path(c.path).relative_to(corpus).as_posix() for c in found}
    assert "dup/deeper/same-app-other-name.bin" in names  # a zip by content, whatever its name
    assert "dup/photos.zip" in names  # a zip: the worker decides it is no package
    assert "hostile/empty.apk" in names and "hostile/not_a_zip.apk" in names  # named like packages
    assert not any(n.endswith((".json", ".md", ".txt", ".pem")) for n in names)
    assert other >= 10
    assert [c.path for c in found] == sorted(c.path for c in found)
    with pytest.raises(InputError):
        discover([corpus / "missing"])


def test_every_app_as_audit_scan_alone(local_case: Path, corpus: Path) -> None:
    """Each package once, its stored result identical to `audit scan --json PATH`; each failure
    with the error `audit scan` gives."""
    recorded = outcomes(local_case)
    runner = CliRunner()
    seen_paths = set()
    for _sha, (status, reason, paths, result) in recorded.items():
        seen_paths.update(paths)
        r = runner.invoke(main, ["scan", paths[0], "--json"])
        if status == "done":
            assert json.loads(r.stdout) == result, paths[0]
        elif status == "failed":
            assert r.exit_code == ExitStatus.ERROR and r.stdout == ""
            assert f"audit: error: {reason}" in r.stderr, (paths, reason)
    found, _ = discover([corpus])
    assert seen_paths == {c.path for c in found}  # every file recorded, none twice
    statuses = sorted(s for s, *_ in recorded.values())
    assert statuses.count("ignored") == 1  # photos.zip
    assert (
        statuses.count("failed") == 6
    )  # empty, not a zip, bad DEX magic, two zip bombs, nested bundles only
    assert statuses.count("done") == 19


def test_same_app_twice_is_one_row_with_both_paths(local_case: Path, corpus: Path) -> None:
    sha = scan_path(FIXTURES / "apks" / "messenger.apk").app.sha256
    status, _, paths, _ = outcomes(local_case)[sha]
    assert status == "done"
    assert paths == sorted(
        [str(corpus / "apks" / "messenger.apk"), str(corpus / "dup" / "deeper" / "same-app-other-name.bin")]
    )
    conn = sqlite3.connect(local_case)
    assert conn.execute("SELECT count(*) FROM scans WHERE sha256 = ?", (sha,)).fetchone()[0] == 1
    assert (
        conn.execute("SELECT count(*) FROM scans").fetchone()[0]
        == conn.execute("SELECT count(DISTINCT sha256) FROM scans").fetchone()[0]
    )


def test_hostile_failures_have_reasons(local_case: Path) -> None:
    reasons = {Path(p[0]).name: r for s, r, p, _ in outcomes(local_case).values() if s != "done"}
    assert reasons["empty.apk"].endswith("empty file")
    assert reasons["not_a_zip.apk"].endswith("not a zip archive")
    assert "zip bomb" in reasons["zipbomb.apk"] and "zip bomb" in reasons["zipbomb_total.apk"]
    assert "not an Android package" in reasons["photos.zip"]


def test_resume_skips_what_is_recorded(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    half = tmp_path / "half"
    shutil.copytree(corpus / "apks", half / "apks")
    pool = LocalPool(1)
    try:
        with Store(db) as store:
            first = run_batch([half], store, pool)
            assert first.done == 9 and first.skipped == 0
            with pytest.raises(AuditError, match="--resume"):
                run_batch([half], store, pool)
            shutil.copytree(corpus / "signed", half / "signed")
            shutil.copy(corpus / "apks" / "multidex.apk", half / "multidex-again.apk")
            second = run_batch([half], store, pool, resume=True)
    finally:
        pool.close()
    # only the new signed copies are scanned; the known app under a new name gains a path
    assert (second.done, second.failed, second.skipped, second.packages) == (5, 0, 10, 5)
    recorded = outcomes(db)
    sha = scan_path(FIXTURES / "apks" / "multidex.apk").app.sha256
    assert recorded[sha][2] == sorted([str(half / "apks" / "multidex.apk"), str(half / "multidex-again.apk")])


# -- limits and lost workers, through wrappers around the real helper ------------------------------

WRAPPER = """
import os, sys
from pathlib import Path
import audit.batch.worker as w
import audit.static.scanner as scanner
mode, target, marker = sys.argv[1:4]
real = w.scan_in_child
def scan_in_child(path, timeout, max_memory_mb):
    if Path(path).name == target:
        if mode == "hang":
            scanner.scan_path = lambda p: __import__("time").sleep(3600)
        elif mode == "hog":
            scanner.scan_path = lambda p: bytearray(64 << 30)
        elif mode == "die-once" and not os.path.exists(marker):
            Path(marker).write_text("died")
            os._exit(9)
        elif mode == "die":
            os._exit(9)
    return real(path, timeout, max_memory_mb)
w.scan_in_child = scan_in_child
w.main()
"""


def run_wrapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, target: str, **kw: Any
) -> dict[str, Any]:
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    for name in ("messenger.apk", "multidex.apk"):
        shutil.copy(FIXTURES / "apks" / name, src / name)
    monkeypatch.setattr(
        batch_worker,
        "HELPER_COMMAND",
        [sys.executable, "-c", WRAPPER, mode, target, str(tmp_path / "marker")],
    )
    pool = LocalPool(2)
    try:
        with Store(tmp_path / "case.sqlite") as store:
            summary = run_batch([src], store, pool, **kw)
            rows = {
                Path(r["paths"][0]).name: r for status in ("done", "failed") for r in store.batch_rows(status)
            }
            statuses = {
                Path(r["paths"][0]).name: status
                for status in ("done", "failed")
                for r in store.batch_rows(status)
            }
    finally:
        pool.close()
    return {"summary": summary, "rows": rows, "status": statuses}


def test_time_limit_kills_the_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run_wrapped(tmp_path, monkeypatch, "hang", "multidex.apk", timeout=2)
    assert out["status"] == {"messenger.apk": "done", "multidex.apk": "failed"}
    assert out["rows"]["multidex.apk"]["reason"] == "time limit of 2 s exceeded (scan killed)"


def test_memory_limit_stops_the_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run_wrapped(tmp_path, monkeypatch, "hog", "multidex.apk", max_memory_mb=1024)
    assert out["status"] == {"messenger.apk": "done", "multidex.apk": "failed"}
    assert out["rows"]["multidex.apk"]["reason"] == "memory limit of 1024 MB exceeded"
    assert out["rows"]["multidex.apk"]["peak_rss"] < 1024 * 1024  # KiB: the 64 GiB were never allocated


def test_lost_worker_is_retried_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run_wrapped(tmp_path, monkeypatch, "die-once", "multidex.apk")
    assert out["status"] == {"messenger.apk": "done", "multidex.apk": "done"}
    assert out["rows"]["multidex.apk"]["attempts"] == 2 and out["rows"]["messenger.apk"]["attempts"] == 1
    assert (tmp_path / "marker").exists()


def test_worker_lost_twice_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run_wrapped(tmp_path, monkeypatch, "die", "multidex.apk")
    assert out["status"] == {"messenger.apk": "done", "multidex.apk": "failed"}
    row = out["rows"]["multidex.apk"]
    assert row["attempts"] == 2 and row["reason"].startswith("scan worker lost twice (scan worker died")
    assert out["summary"].failed == 1


# -- kill -9 halfway, then --resume ------------------------------------------------------------------


def variants(src: Path, out: Path, n: int) -> list[Path]:
    """``n`` distinct packages: a fixture with a different zip comment each (another sha256)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = out / f"app{i:03d}.apk"
        shutil.copy(src, p)
        with zipfile.ZipFile(p, "a") as z:
            z.comment = f"variant {i}".encode()
        paths.append(p)
    return paths


@pytest.mark.slow
def test_kill_9_then_resume_scans_every_app_once(tmp_path: Path) -> None:
    apps = variants(FIXTURES / "apks" / "multidex.apk", tmp_path / "apps", 40)
    db = tmp_path / "case.sqlite"
    cmd = [sys.executable, "-m", "audit", "batch", str(tmp_path / "apps"), "--db", str(db), "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    recorded = 0
    while recorded < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    recorded = conn.execute("SELECT count(*) FROM batch_apps").fetchone()[0]
            except sqlite3.OperationalError:  # schema not there yet
                pass
    assert proc.poll() is None, "the batch finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM batch_apps").fetchone()[0]
    assert 5 <= before < 40
    r = subprocess.run([*cmd, "--resume", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["skipped"] == before and summary["done"] == 40 - before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT sha256) FROM scans").fetchone() == (40, 40)
        assert conn.execute("SELECT count(*) FROM batch_apps WHERE status = 'done'").fetchone()[0] == 40
        assert {p for (p,) in conn.execute("SELECT path FROM batch_paths")} == {str(p) for p in apps}


# -- the command line ----------------------------------------------------------------------------------


def test_cli_batch_summary_and_exit_status(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite"
    r = CliRunner().invoke(main, ["batch", str(corpus / "apks"), str(corpus / "hostile"), "--db", str(db), "--workers", "2",
                                  "--table"])  # fmt: skip
    assert r.exit_code == ExitStatus.ERROR, r.output  # hostile packages failed
    assert r.stdout.startswith("20 packages: 14 scanned, 6 failed; ")
    assert "\r" not in r.stderr  # no progress line when not on a terminal
    r = CliRunner().invoke(main, ["batch", str(corpus / "apks"), "--db", str(db), "--resume", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["skipped"] == 9
    r = CliRunner().invoke(main, ["batch", str(corpus / "apks"), "--db", str(db)])
    assert r.exit_code == ExitStatus.ERROR and "--resume" in r.output


def test_cli_batch_rejects_workers_with_scheduler(corpus: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["batch", str(corpus), "--db", str(tmp_path / "x.sqlite"), "--workers", "2",
                                  "--scheduler", "tcp://127.0.0.1:1"])  # fmt: skip
    assert r.exit_code == ExitStatus.USAGE and "--workers" in r.output


def test_cli_scheduler_without_dask_says_how_to_install(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed → ImportError
    r = CliRunner().invoke(
        main, ["batch", str(corpus), "--db", str(tmp_path / "x.sqlite"), "--scheduler", "tcp://127.0.0.1:1"]
    )
    assert r.exit_code == ExitStatus.ERROR
    assert "pip install 'dataflow-audit[dask]'" in r.output


def test_progress_rate_and_eta() -> None:
    p = Progress(total=100, done=8, failed=1, ignored=1, elapsed=30.0, last="x.apk")
    assert p.finished == 10 and p.rate == 20.0 and p.eta == 270.0
    assert Progress(10, 0, 0, 0, 0.0, "").eta is None
