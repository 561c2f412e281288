#!/usr/bin/env python3
"""``audit scan`` of one APK, this checkout against another one, in alternating runs.

Usage::

    git worktree add --detach /tmp/base <commit>
    .venv/bin/python benchmarks/scan_paired.py benchmarks/.cache/Yosemite.apk --base /tmp/base [--runs 9]

Each run is a fresh ``python -m audit scan APK --json`` process (interpreter start, imports, the scan
with its forked reader, the JSON written to /dev/null), the two checkouts taking turns so that a
neighbour's load falls on both alike. The same interpreter and installed packages serve both: the
base checkout is put first on ``PYTHONPATH``. Prints the median and fastest wall time and the median
CPU time (user + system, children included) of each, and the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(apk: Path, checkout: Path) -> tuple[float, float]:
    """(wall, cpu) seconds of one scan by the ``audit`` package of ``checkout``."""
    # Bytecode is cached as an installed package's is (pip compiles it): a PYTHONDONTWRITEBYTECODE
    # in the environment would make every run compile the checkout's sources, the bigger one longer.
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "audit", "scan", str(apk), "--json"], cwd=checkout, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("apk", type=Path)
    ap.add_argument("--base", type=Path, required=True, help="the other checkout (a git worktree)")
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    args.apk = args.apk.resolve()
    sides = {"base": args.base.resolve(), "this": ROOT}
    for checkout in sides.values():  # warm the page cache and both checkouts' bytecode
        one_run(args.apk, checkout)
    load0 = os.getloadavg()
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    for i in range(args.runs):
        order = list(sides.items()) if i % 2 == 0 else list(reversed(sides.items()))
        for name, checkout in order:
            times[name].append(one_run(args.apk, checkout))
    load1 = os.getloadavg()
    print(
        f"{args.apk.name}, {args.runs} alternating runs each; load average {load0[0]:.2f} before, {load1[0]:.2f} after"
    )
    for name, runs in times.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        print(f"  {name:5} {str(sides[name]):30} wall median {statistics.median(walls):.3f} s, fastest {min(walls):.3f} s;"
              f" CPU median {statistics.median(cpus):.3f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
