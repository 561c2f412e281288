"""Import speed of mitmproxy flow files: ``audit import`` vs. mitmproxy's FlowReader alone.

Usage:
    .venv/bin/python benchmarks/import_speed.py [--flows 100000] [--runs 3]

Generates a flow file of N realistic HTTPS flows (cached in benchmarks/.cache/), then times, in
the same process and run after run (median of --runs):

- ``reader``: ``mitmproxy.io.FlowReader(f).stream()`` iterated to the end, nothing else;
- ``import``: ``audit.traffic.importers.import_file`` into a fresh case file on disk (hashing,
  conversion, pattern-based data detection off, batched SQLite inserts, one transaction).

Floor (docs/benchmarks.md): import < 2x the reader alone.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mitmproxy import http
from mitmproxy.io import FlowReader, FlowWriter
from mitmproxy.test import tflow

from audit.store import Store
from audit.traffic.importers import import_file

CACHE = Path(__file__).resolve().parent / ".cache"
HOSTS = ["api.example.cn", "graph.example.com", "ads.example.net", "cdn.example.org", "log.example.io"]


def build(path: Path, n: int) -> None:
    rng = random.Random(42)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        w = FlowWriter(f)
        for i in range(n):
            host = rng.choice(HOSTS)
            fl = tflow.tflow(resp=True)
            body = json.dumps(
                {"seq": i, "device": {"id": f"{rng.getrandbits(64):016x}"}, "pad": "x" * rng.randint(0, 600)}
            )
            fl.request = http.Request.make(
                "POST", f"https://{host}/v2/event?seq={i}&k={rng.randint(0, 99)}", body.encode(),
                [(b"Content-Type", b"application/json"), (b"User-Agent", b"okhttp/4.12.0")],
            )  # fmt: skip
            fl.request.timestamp_start = 1_718_703_000 + i * 0.01
            fl.request.timestamp_end = fl.request.timestamp_start + 0.002
            fl.server_conn.address = (host, 443)
            fl.server_conn.peername = (f"203.0.113.{HOSTS.index(host) + 1}", 443)
            fl.response = http.Response.make(
                200, b"{}" * rng.randint(1, 200), [(b"Content-Type", b"application/json")]
            )
            w.add(fl)
    tmp.replace(path)


def time_reader(path: Path) -> tuple[float, int]:
    t = time.perf_counter()
    with path.open("rb") as f:
        n = sum(1 for _ in FlowReader(f).stream())
    return time.perf_counter() - t, n


def time_import(path: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as d:
        with Store(Path(d) / "case.sqlite") as store:
            t = time.perf_counter()
            s = import_file(path, store)
            return time.perf_counter() - t, s.connections


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"flows-{args.flows}.mitm"
    if not path.exists():
        t = time.perf_counter()
        build(path, args.flows)
        print(f"built {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s")
    reader, imports = [], []
    for _ in range(args.runs):
        r, n1 = time_reader(path)
        i, n2 = time_import(path)
        assert n1 == n2 == args.flows, (n1, n2)
        reader.append(r)
        imports.append(i)
    r, i = statistics.median(reader), statistics.median(imports)
    print(f"flows: {args.flows}, file: {path.stat().st_size / 1e6:.1f} MB, runs: {args.runs}")
    print(
        f"FlowReader alone: {r:.2f} s median ({args.flows / r:,.0f} flows/s)  runs: {', '.join(f'{x:.2f}' for x in reader)}"
    )
    print(
        f"audit import:     {i:.2f} s median ({args.flows / i:,.0f} flows/s)  runs: {', '.join(f'{x:.2f}' for x in imports)}"
    )
    print(f"ratio import/reader: {i / r:.2f} (floor: < 2)")
    return 0 if i / r < 2 else 1


if __name__ == "__main__":
    sys.exit(main())
