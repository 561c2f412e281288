"""Report and graph speed on a large synthetic case.

Usage:
    .venv/bin/python benchmarks/report_speed.py [--flows 100000] [--hosts 2000]

Generates a case file (in a temporary directory) with one scanned app (600 endpoints, 25 SDKs)
and N flows to H hosts, each host on its own public IP, 3 % of flows carrying a data finding,
written with ``Store.add_connections``. Then runs, each in a fresh subprocess as a user would:

- ``audit report --db CASE -o report.html`` (geo-IP lookups of every IP included: a cold case);
- ``audit report`` again (geo-IP answers cached in the case file);
- ``audit graph --db CASE -o graph.graphml``.

and reports wall time, CPU time and peak RSS (``wait4`` rusage of the child). Floor (docs/benchmarks.md):
each under 20 s and 1 GiB.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audit.models import AppInfo, Connection, DataFinding, Endpoint, ScanResult, Sdk, Source
from audit.store import Store

FLOOR_S = 20.0
FLOOR_RSS = 1 << 30


def build_case(path: Path, flows: int, hosts: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    names = [
        f"h{i:04d}.{rng.choice(['cdn', 'api', 'log', 'ads'])}{i % 97}.example{i % 13}.com"
        for i in range(hosts)
    ]
    # Public addresses spread over many networks (not reserved ranges, which have no geo answer).
    ips = [f"{rng.choice([3, 13, 23, 31, 52, 64, 101, 104, 119, 151, 185, 203])}.{rng.randrange(256)}."
           f"{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(hosts)]  # fmt: skip
    sdks = tuple(Sdk(f"sdk{i}", f"SDK {i}", f"Company {i % 9}", rng.choice(["US", "CN", "DE", "SG"]), "analytics",
                     (f"code: under com.sdk{i}",), 10 + i) for i in range(25))  # fmt: skip
    endpoints = tuple(
        Endpoint(f"https://{names[i]}/v1", names[i], names[i].split(".", 1)[1], "url",
                 sources=(Source("dex", f"classes{i % 4 + 1}.dex"),), sdk=f"sdk{i % 25}" if i % 3 else None)
        for i in range(0, min(hosts, 1200), 2)
    )  # fmt: skip
    scan = ScanResult(AppInfo("com.example.big", "1.0", "1", "cd" * 32, "big.apk", "apk"), endpoints, sdks)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(hosts)]  # a few busy hosts, a long tail
    kinds = ["imei", "android_id", "aaid", "email", "location", "wifi_mac"]
    with Store(path) as store:
        store.add_scan(scan, app="com.example.big")

        def conns() -> object:
            t0 = 1_718_700_000.0
            for i, h in enumerate(rng.choices(range(hosts), weights=weights, k=flows)):
                findings = ()
                if rng.random() < 0.03:
                    findings = (DataFinding(rng.choice(kinds), "query:id", "plain", "pattern", "ab•••cd"),)
                yield Connection(
                    t0 + i * 0.05, "har", "https", "failed" if h % 211 == 0 else "intercepted", "com.example.big",
                    names[h], ip=ips[h], port=443, bytes_out=rng.randint(200, 4000), bytes_in=rng.randint(0, 60000),
                    findings=findings,
                )  # fmt: skip

        store.add_connections(conns())  # type: ignore[arg-type]


def measure(args: list[str]) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds (user + system), peak RSS bytes and exit status of one subprocess."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode:
        print(err, file=sys.stderr)
    rss = usage.ru_maxrss * 1024  # kilobytes on Linux
    return wall, usage.ru_utime + usage.ru_stime, rss, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--hosts", type=int, default=2_000)
    opts = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        case = Path(tmp) / "case.sqlite"
        t = time.perf_counter()
        build_case(case, opts.flows, opts.hosts)
        print(f"case: {opts.flows} flows, {opts.hosts} hosts, built in {time.perf_counter() - t:.1f} s")
        py = [sys.executable, "-m", "audit"]
        runs = [
            ("report (cold geo-IP)", [*py, "report", "--db", str(case), "-o", f"{tmp}/report.html"]),
            ("report (cached)", [*py, "report", "--db", str(case), "-o", f"{tmp}/report.html"]),
            ("graph -> GraphML", [*py, "graph", "--db", str(case), "-o", f"{tmp}/graph.graphml"]),
        ]
        for name, args in runs:
            wall, cpu, rss, code = measure(args)
            good = code == 0 and wall < FLOOR_S and rss < FLOOR_RSS
            ok &= good
            print(
                f"{name:22s} {wall:6.1f} s wall  {cpu:6.1f} s CPU  {rss / 2**20:7.0f} MiB  {'ok' if good else 'FAIL'}"
            )
        size = (Path(tmp) / "report.html").stat().st_size
        print(f"report size: {size / 2**20:.1f} MiB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
