#!/usr/bin/env python3
"""``audit batch`` at corpus scale: ``kill -9`` halfway, ``--resume``, every app exactly once, and
the coordinating process's memory over the run.

Usage::

    .venv/bin/python benchmarks/batch_resume.py [--apps 1000] [--workers 2] [--kill-at 0.5]

The corpus comes from benchmarks/synth_corpus.py (cached in benchmarks/.cache/corpus-N). The first
``audit batch`` process is killed with SIGKILL once ``--kill-at`` of the apps are recorded in the
case file; a second one continues with ``--resume``. Checked: the case file then holds exactly one
scan per app (none missing, none twice), every path recorded, the resumed run skipped exactly what
the first recorded. The resident memory (VmRSS) of the coordinating ``audit batch`` process, not of
its scan workers, is sampled every 0.2 s with the share of apps recorded at that moment. Exits 1 if a
check fails. Raw numbers: benchmarks/.cache/batch_resume.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).resolve().parent / ".cache"
sys.path.insert(0, str(ROOT))


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def recorded(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM batch_apps").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def watch(
    proc: subprocess.Popen[str], db: Path, apps: int, stop_at: int | None
) -> tuple[list[tuple[float, int, int]], int]:
    """Samples (seconds, apps recorded, coordinator RSS KiB) until the process ends, or until
    ``stop_at`` apps are recorded, when it is killed with SIGKILL. Returns the samples and the
    count recorded at the end."""
    start = time.monotonic()
    samples = []
    while proc.poll() is None:
        n = recorded(db) if db.exists() else 0
        rss = rss_kib(proc.pid)
        if rss is not None:
            samples.append((round(time.monotonic() - start, 2), n, rss))
        if stop_at is not None and n >= stop_at:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.communicate()
    return samples, recorded(db)


def at_progress(samples: list[tuple[float, int, int]], first: int, last: int) -> dict[str, int]:
    """Coordinator RSS (KiB) at the first sample past 10, 25, 50, 75 and 90 % of the run's own apps
    (from ``first`` recorded when it started to ``last``)."""
    out = {}
    for share in (0.1, 0.25, 0.5, 0.75, 0.9):
        hit = next((s for s in samples if s[1] - first >= share * (last - first)), None)
        if hit:
            out[f"{int(share * 100)}%"] = hit[2]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--apps", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kill-at", type=float, default=0.5)
    args = ap.parse_args()
    corpus = CACHE / f"corpus-{args.apps}"
    if not corpus.is_dir() or len(list(corpus.glob("*.apk"))) != args.apps:
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("synth_corpus.py")), "--apps", str(args.apps)],
            check=True,
        )
    files = sorted(str(p) for p in corpus.glob("*.apk"))
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "corpus.sqlite"
        cmd = [
            sys.executable,
            "-m",
            "audit",
            "batch",
            str(corpus),
            "--db",
            str(db),
            "--workers",
            str(args.workers),
            "--json",
        ]
        t0 = time.monotonic()
        first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples1, killed_at = watch(first, db, args.apps, int(args.kill_at * args.apps))
        t1 = time.monotonic()
        second = subprocess.Popen(
            [*cmd, "--resume"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        samples2 = []
        start = time.monotonic()
        while second.poll() is None:
            rss = rss_kib(second.pid)
            if rss is not None:
                samples2.append((round(time.monotonic() - start, 2), recorded(db), rss))
            time.sleep(0.2)
        out, err = second.communicate()
        t2 = time.monotonic()
        if second.returncode != 0:
            print(err[-3000:], file=sys.stderr)
            return 1
        summary = json.loads(out)
        with sqlite3.connect(db) as conn:
            scans, distinct = conn.execute("SELECT count(*), count(DISTINCT sha256) FROM scans").fetchone()
            done = conn.execute("SELECT count(*) FROM batch_apps WHERE status = 'done'").fetchone()[0]
            paths = sorted(p for (p,) in conn.execute("SELECT path FROM batch_paths"))
    checks = {
        "killed halfway (recorded when killed)": f"{killed_at} of {args.apps}",
        "resumed run skipped exactly those": summary["skipped"] == killed_at,
        "resumed run scanned the rest": summary["done"] == args.apps - killed_at,
        "one scan per app, none twice": scans == distinct == args.apps,
        "every app done": done == args.apps,
        "every path recorded": paths == files,
    }
    rss_all = [s[2] for s in samples1 + samples2]
    result = {
        "apps": args.apps, "workers": args.workers, "first_run_s": round(t1 - t0, 1), "resume_run_s": round(t2 - t1, 1),
        "resume_summary": summary, "checks": checks,
        "coordinator_rss_kib": {"first_run": at_progress(samples1, 0, killed_at),
                                "resumed_run": at_progress(samples2, killed_at, args.apps),
                                "min": min(rss_all), "max": max(rss_all)},
        "samples": {"first": samples1, "resumed": samples2},
    }  # fmt: skip
    CACHE.mkdir(exist_ok=True)
    (CACHE / "batch_resume.json").write_text(json.dumps(result, indent=1))
    for k, v in checks.items():
        print(f"{k}: {v}")
    print(f"first run {result['first_run_s']} s until killed; resumed run {result['resume_run_s']} s "
          f"({summary['apps_per_minute']} apps/min)")  # fmt: skip
    print("coordinator RSS (MiB) at share of each run's own apps recorded:")
    for run in ("first_run", "resumed_run"):
        row = result["coordinator_rss_kib"][run]  # type: ignore[index]
        print(f"  {run}: " + ", ".join(f"{k} {v / 1024:.1f}" for k, v in row.items()))
    print(f"  min {min(rss_all) / 1024:.1f}, max {max(rss_all) / 1024:.1f}")
    return 0 if all(v is True or isinstance(v, str) for v in checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
