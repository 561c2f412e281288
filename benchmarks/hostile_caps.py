"""Caps while extracting (issue 15): a big HAR and an APK whose one asset holds 1.2 million URLs.

Usage:
    .venv/bin/python benchmarks/hostile_caps.py [--only har,apk] [--entries 200000] [--urls 1200000] [--runs N] [--split]

Builds (cached in ``benchmarks/.cache/``):

- ``har-200000.har``: a HAR 1.2 archive of 200,000 small entries (~172 MiB: a mobile app's session
  exported from a browser or HTTP Toolkit, each with a few headers and a query);
- ``urls-1200000.apk``: an APK (zip with a manifest and ``classes.dex`` from the repo's fixture app)
  plus one text asset ``assets/endpoints.txt`` holding 1.2 million distinct URLs (~50 MiB).

Then runs, each in a fresh subprocess as a user would, ``audit import HAR --db CASE`` and
``audit scan APK --json``, and reads wall time and peak RSS (``wait4`` rusage of the child).
Floors: the HAR in <= 15 s and <= 400 MB; the APK in <= 10 s and <= 500 MB. Exit status 1 when a
floor is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).resolve().parent / ".cache"
FIXTURE_APK = ROOT / "tests" / "fixtures" / "apks" / "messenger.apk"
HAR_FLOOR = (15.0, 400 << 20)
APK_FLOOR = (10.0, 500 << 20)


def build_har(path: Path, n: int) -> None:
    rng = random.Random(15)
    hosts = [f"{p}{i}.example{i % 7}.com" for i, p in enumerate(["api", "cdn", "log", "ads", "img"] * 8)]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write('{"log": {"version": "1.2", "creator": {"name": "bench", "version": "1"}, "entries": [\n')
        for i in range(n):
            host = rng.choice(hosts)
            entry = {
                "startedDateTime": f"2024-06-18T09:{(i // 3600) % 60:02d}:{(i // 60) % 60:02d}.{i % 1000:03d}Z",
                "time": rng.randint(5, 900),
                "request": {
                    "method": "GET", "url": f"https://{host}/v1/e?seq={i}&k={rng.randint(0, 99)}",
                    "httpVersion": "HTTP/2.0",
                    "headers": [{"name": "user-agent", "value": "okhttp/4.12.0"},
                                {"name": "accept", "value": "application/json"},
                                {"name": "accept-encoding", "value": "gzip"},
                                {"name": "accept-language", "value": "en-US,en;q=0.9"},
                                {"name": "x-request-id", "value": f"{rng.getrandbits(64):016x}"}],
                    "queryString": [{"name": "seq", "value": str(i)}, {"name": "k", "value": "1"}],
                    "headersSize": -1, "bodySize": 0,
                },
                "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/2.0",
                             "headers": [{"name": "content-type", "value": "application/json"}],
                             "content": {"size": 120, "mimeType": "application/json"},
                             "redirectURL": "", "headersSize": -1, "bodySize": 120},
                "cache": {}, "timings": {"send": 0, "wait": 10, "receive": 1},
                "serverIPAddress": f"203.0.113.{hosts.index(host) + 1}", "connection": str(i % 50),
            }  # fmt: skip
            f.write(("," if i else "") + json.dumps(entry) + "\n")
        f.write("]}}\n")
    tmp.replace(path)


def build_apk(path: Path, n: int) -> None:
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(FIXTURE_APK) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename == "AndroidManifest.xml" or info.filename.endswith(".dex"):
                out.writestr(info, src.read(info))
        lines = (f"https://h{i}.cdn{i % 1000}.example{i % 17}.com/p/{i}" for i in range(n))
        out.writestr("assets/endpoints.txt", "\n".join(lines) + "\n")
    tmp.replace(path)


#: ``python -m audit`` that prints, as it exits, the CPU time of its own process and of its children
#: (the HAR import's reader child, a detection worker), so that the critical path shows (``--split``).
SPLIT = """
import atexit, resource, sys, runpy
def report():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stderr.write("cpu-split %.2f %.2f\\n" % (me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime))
atexit.register(report)
sys.argv = ["audit", *sys.argv[1:]]
runpy.run_module("audit", run_name="__main__")
"""


def run(args: list[str], split: bool = False) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS bytes, exit status) of one child."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *(["-c", SPLIT] if split else ["-m", "audit"]), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.stderr.close() if proc.stderr else None
    lines = err.strip().splitlines()
    if lines and lines[-1].startswith("cpu-split "):
        me, kids = map(float, lines.pop().split()[1:])
        print(f"   CPU of the main process {me:.1f} s, of its children {kids:.1f} s")
    if lines:
        print("   stderr:", lines[-1][:200])
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)


def report(name: str, wall: float, cpu: float, rss: int, code: int, floor: tuple[float, int]) -> bool:
    # Wall time, as a user waits for it. CPU time (user + sys, the detection worker's included) and the
    # load average are printed with it: on a machine busy with other work, wall time measures that too.
    ok = wall <= floor[0] and rss <= floor[1]
    print(f"{name:32} {wall:6.1f} s wall  {cpu:6.1f} s CPU  {rss / 2**20:6.0f} MiB peak RSS  exit {code}  "
          f"load {os.getloadavg()[0]:.1f}  floor {floor[0]:.0f} s / {floor[1] >> 20} MiB: {'ok' if ok else 'MISSED'}")  # fmt: skip
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="har,apk")
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--urls", type=int, default=1_200_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument(
        "--split", action="store_true", help="also print the CPU of the main process and its children"
    )
    args = ap.parse_args()
    CACHE.mkdir(exist_ok=True)
    ok = True
    with tempfile.TemporaryDirectory() as d:
        if "har" in args.only:
            har = CACHE / f"har-{args.entries}.har"
            if not har.exists():
                build_har(har, args.entries)
            print(f"HAR: {args.entries:,} entries, {har.stat().st_size / 2**20:.0f} MiB")
            for i in range(args.runs):
                db = Path(d) / f"case{i}.sqlite"
                wall, cpu, rss, code = run(["import", str(har), "--db", str(db)], args.split)
                ok &= report(f"audit import (run {i + 1})", wall, cpu, rss, code, HAR_FLOOR) and code == 0
        if "apk" in args.only:
            apk = CACHE / f"urls-{args.urls}.apk"
            if not apk.exists():
                build_apk(apk, args.urls)
            print(
                f"APK: one asset with {args.urls:,} distinct URLs, {apk.stat().st_size / 2**20:.0f} MiB compressed"
            )
            for i in range(args.runs):
                wall, cpu, rss, code = run(
                    ["scan", str(apk), "--json", "-o", str(Path(d) / "scan.json")], args.split
                )
                # exit 1: the scan says that it listed only the first 100,000 endpoints
                ok &= report(f"audit scan --json (run {i + 1})", wall, cpu, rss, code, APK_FLOOR)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
