#!/usr/bin/env python3
"""Static scan speed (issue 6): whole `audit scan`, the DEX reader alone, androguard, and the floor.

Usage::

    .venv/bin/python benchmarks/fetch_inputs.py      # registry APKs (pinned by sha256)
    .venv/bin/python benchmarks/synth_apps.py        # synthetic scaling apps
    .venv/bin/python benchmarks/static_speed.py      # measure; results -> benchmarks/.cache/static_speed.json
    .venv/bin/python benchmarks/static_speed.py --quick --only Yosemite.apk

For every input:

* ``scan``: whole-process ``audit scan --json`` wall time, median of ``--runs`` (default 5), and its
  peak RSS and CPU time (GNU ``/usr/bin/time``);
* ``reader``: in-process, the DEX reader alone: inflate each DEX, strings, class names and the
  const-string references of the URL-like strings (median of 3);
* ``floor``: inflate each DEX and run one bytes regex for URLs over it, nothing else (median of 3);
* ``androguard``: ``AnalyzeAPK`` (once) and ``APK`` + ``DEX(...).get_strings()`` for every DEX
  (once), each in its own process with a time limit; by default on the registry APKs and the two
  smaller scaling apps (``--androguard-on``);
* ``exact``: on the registry APKs, the reader against the androguard reference of
  tests/helpers/dex.py (strings, classes, string → classes), DEX by DEX.

It then prints the floors of issue 6 with PASS/FAIL, a Markdown table for docs/benchmarks.md, and
draws docs/static_speed.png (time against classes for the scaling apps, log-log).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).resolve().parent / ".cache"
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))

from audit.static.dex import DexFile  # noqa: E402

REGISTRY = ["Yosemite.apk", "appium-uiautomator2-server-v10.6.6.apk"]
SCALING = ["synth-1k.apk", "synth-10k.apk", "synth-100k.apk"]
BIG = "synth-50dex.apk"
AUDIT = str(Path(sys.executable).with_name("audit"))
TIME = "/usr/bin/time"  # GNU time: peak RSS and CPU of exactly the measured command
_DEX_ENTRY = re.compile(r"classes\d*\.dex")
_URL_BYTES = re.compile(rb"https?://[\x21-\x7e]{4,}")


def dex_entries(apk: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(apk) as z:
        return [(n, z.read(n)) for n in z.namelist() if _DEX_ENTRY.fullmatch(n)]


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_child(argv: list[str], timeout: float | None = None) -> tuple[float, int, int, float]:
    """Wall seconds, peak RSS in bytes, exit status and CPU seconds (user + system) of one child.

    The child runs under ``/usr/bin/time``: Linux counts the RSS a process had before ``exec`` in its
    ``ru_maxrss``, so a child forked straight from this (big) process would report our memory."""
    start = time.perf_counter()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        proc = subprocess.Popen(
            [TIME, "-f", "%M %U %S", "-o", report.name, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # so a timeout can stop time and the measured command together
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return float("inf"), 0, -9, float("inf")
        wall = time.perf_counter() - start
        fields = report.read().split()
    # GNU time prefixes "Command exited with non-zero status N" when the child fails
    rss_kb, user, system = (float(x) for x in fields[-3:])
    return wall, int(rss_kb) * 1024, proc.returncode, user + system


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


def measure_scan(apk: Path, runs: int) -> dict[str, float]:
    walls, rss, cpus = [], [], []
    for _ in range(runs):
        wall, peak, status, cpu = run_child([AUDIT, "scan", "--json", str(apk)])
        if status != 0:
            raise SystemExit(f"audit scan {apk.name} exited with {status}")
        walls.append(wall)
        rss.append(peak)
        cpus.append(cpu)
    return {
        "scan_s": statistics.median(walls),
        "scan_min_s": min(walls),
        "scan_cpu_s": statistics.median(cpus),
        "scan_rss_mb": max(rss) / 2**20,
        "load_average": os.getloadavg()[0],
    }


def read_all(apk: Path) -> tuple[int, int, int]:
    """What the scanner asks of the reader; returns (strings, classes, referenced candidates)."""
    n_strings = n_classes = n_refs = 0
    for name, data in dex_entries(apk):
        dex = DexFile(data, name)
        strings = dex.strings()
        n_classes += len(dex.class_names())
        wanted = [i for i, s in enumerate(strings) if "://" in s]  # URL-like: what the scanner asks about
        n_refs += sum(1 for classes in dex.string_references(wanted).values() if classes)
        n_strings += len(strings)
    return n_strings, n_classes, n_refs


def floor(apk: Path) -> int:
    return sum(len(_URL_BYTES.findall(data)) for _, data in dex_entries(apk))


_ANDROGUARD_ANALYZE = """
import sys
from loguru import logger
logger.remove()
from androguard.misc import AnalyzeAPK
AnalyzeAPK(sys.argv[1])
"""
_ANDROGUARD_STRINGS = """
import sys
from loguru import logger
logger.remove()
from androguard.core.apk import APK
from androguard.core.dex import DEX
apk = APK(sys.argv[1])
print(sum(len(DEX(d).get_strings()) for d in apk.get_all_dex()))
"""


def measure_androguard(apk: Path, timeout: float) -> dict[str, float]:
    out = {}
    for key, code in (
        ("androguard_strings_s", _ANDROGUARD_STRINGS),
        ("androguard_analyze_s", _ANDROGUARD_ANALYZE),
    ):
        wall, peak, status, _ = run_child([sys.executable, "-c", code, str(apk)], timeout)
        out[key] = wall if status == 0 else float("inf")
        out[key.removesuffix("_s") + "_rss_mb"] = peak / 2**20
    return out


def exactness(apk: Path) -> dict[str, object]:
    from loguru import logger

    logger.remove()
    from tests.helpers.dex import fast, reference

    checked = []
    for name, data in dex_entries(apk):
        ref = reference(data)
        ours = fast(data, name)
        if ours != ref:
            return {"exact": False, "exact_detail": f"{name} differs"}
        checked.append(f"{name}: {len(ref[0])} strings, {len(ref[1])} classes, {len(ref[2])} loaded")
    return {"exact": True, "exact_detail": "; ".join(checked)}


def measure(apk: Path, args: argparse.Namespace) -> dict[str, object]:
    entries = dex_entries(apk)
    if args.reader_only:
        result = dict(args.previous.get(apk.name, {"input": apk.name}))
        n_strings, n_classes, n_refs = read_all(apk)
        result.update(strings=n_strings, classes=n_classes, referenced_candidates=n_refs)
        result["reader_s"] = median_time(lambda: read_all(apk), 3)
        result["floor_s"] = median_time(lambda: floor(apk), 3)
        print(json.dumps(result), file=sys.stderr)
        return result
    result = {
        "input": apk.name,
        "apk_mb": apk.stat().st_size / 1e6,
        "dex_files": len(entries),
        "dex_mb": sum(len(d) for _, d in entries) / 1e6,
    }
    del entries
    n_strings, n_classes, n_refs = read_all(apk)
    result.update(strings=n_strings, classes=n_classes, referenced_candidates=n_refs)
    result["reader_s"] = median_time(lambda: read_all(apk), 1 if args.quick else 3)
    result["floor_s"] = median_time(lambda: floor(apk), 1 if args.quick else 3)
    result.update(measure_scan(apk, 1 if args.quick else args.runs))
    if apk.name in args.androguard_on and not args.no_androguard:
        result.update(measure_androguard(apk, args.androguard_timeout))
    if apk.name in REGISTRY and not args.no_exact:
        result.update(exactness(apk))
    print(json.dumps(result), file=sys.stderr)
    return result


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def floors(results: dict[str, dict]) -> list[tuple[str, bool]]:
    checks = []
    y = results.get("Yosemite.apk")
    if y:
        checks.append((f"Yosemite.apk scan {y['scan_s']:.2f} s <= 1.5 s", y["scan_s"] <= 1.5))
        checks.append((f"Yosemite.apk peak RSS {y['scan_rss_mb']:.0f} MB <= 300 MB", y["scan_rss_mb"] <= 300))
        if "androguard_analyze_s" in y:
            r = y["androguard_analyze_s"] / y["scan_s"]
            checks.append((f"Yosemite.apk {r:.0f}x faster than AnalyzeAPK (>= 20x)", r >= 20))
            r = y["androguard_strings_s"] / y["scan_s"]
            checks.append((f"Yosemite.apk {r:.1f}x faster than APK+get_strings (>= 4x)", r >= 4))
    big = results.get(BIG)
    if big:
        checks.append((f"{BIG} scan {big['scan_s']:.1f} s <= 15 s", big["scan_s"] <= 15))
        checks.append((f"{BIG} peak RSS {big['scan_rss_mb']:.0f} MB <= 1024 MB", big["scan_rss_mb"] <= 1024))
    for name in REGISTRY:
        r = results.get(name)
        if r and "exact" in r:
            checks.append((f"{name} reader identical to androguard reference", bool(r["exact"])))
    return checks


def markdown(results: dict[str, dict]) -> str:
    def f(v: object, fmt: str = ".2f") -> str:
        if v is None:
            return "–"
        if isinstance(v, float) and v == float("inf"):
            return "timeout"
        return format(v, fmt) if isinstance(v, float) else str(v)

    head = (
        "| input | APK MB | DEX files | DEX MB | classes | strings | scan s (median) | scan CPU s "
        "| scan peak RSS MB | reader s | floor s | APK+get_strings s | AnalyzeAPK s |"
    )
    rows = [head, "|" + "---|" * 13]
    for r in results.values():
        rows.append(
            f"| {r['input']} | {r['apk_mb']:.1f} | {r['dex_files']} | {r['dex_mb']:.1f} | {r['classes']} "
            f"| {r['strings']} | {f(r['scan_s'])} | {f(r.get('scan_cpu_s'))} | {r['scan_rss_mb']:.0f} "
            f"| {f(r['reader_s'])} "
            f"| {f(r['floor_s'])} | {f(r.get('androguard_strings_s'), '.1f')} "
            f"| {f(r.get('androguard_analyze_s'), '.1f')} |"
        )
    return "\n".join(rows)


def chart(results: dict[str, dict], out: Path) -> Path | None:
    points = [results[n] for n in SCALING if n in results]
    if len(points) < 2:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    xs = [p["classes"] for p in points]
    for key, label in (
        ("scan_s", "audit scan (whole process)"),
        ("reader_s", "DEX reader"),
        ("floor_s", "floor: inflate + one regex"),
    ):
        ax.plot(xs, [p[key] for p in points], marker="o", label=label)
    big = results.get(BIG)
    if big:  # 50 DEX files: a different shape of app, drawn as separate points
        ax.scatter(
            [big["classes"]] * 2,
            [big["scan_s"], big["reader_s"]],
            marker="s",
            color="black",
            zorder=3,
            label=f"{BIG} (scan, reader)",
        )
        xs_line = [*xs, big["classes"]]
    else:
        xs_line = xs
    base = points[-1]["reader_s"]
    ax.plot(
        xs_line,
        [base * x / xs[-1] for x in xs_line],
        linestyle=":",
        color="grey",
        label="linear (through reader)",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("classes")
    ax.set_ylabel("seconds")
    ax.set_title("Static scan time against app size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100, metadata={"Software": None})
    return out


def slope(results: dict[str, dict], key: str) -> float | None:
    """Least-squares slope of log(time) against log(classes) over the scaling apps (1.0 = linear)."""
    import math

    pts = [(math.log(results[n]["classes"]), math.log(results[n][key])) for n in SCALING if n in results]
    if len(pts) < 2:
        return None
    mx = statistics.fmean(x for x, _ in pts)
    my = statistics.fmean(y for _, y in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Static scan speed benchmark (issue 6)")
    parser.add_argument("--only", nargs="*", help="input file names (default: every cached input)")
    parser.add_argument("--runs", type=int, default=5, help="audit scan runs per input (median)")
    parser.add_argument("--quick", action="store_true", help="one run of everything")
    parser.add_argument("--no-androguard", action="store_true")
    parser.add_argument("--no-exact", action="store_true")
    parser.add_argument("--reader-only", action="store_true", help="re-measure only reader and floor")
    parser.add_argument(
        "--report", action="store_true", help="measure nothing: table, chart and floors from --out"
    )
    parser.add_argument(
        "--androguard-on",
        nargs="*",
        default=[*REGISTRY, "synth-1k.apk", "synth-10k.apk"],
        help="inputs to run androguard on (it needs minutes on the bigger ones)",
    )
    parser.add_argument("--androguard-timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=CACHE / "static_speed.json")
    parser.add_argument("--no-chart", action="store_true", help="leave docs/static_speed.png as it is")
    args = parser.parse_args(argv)

    names = [] if args.report else args.only or [*REGISTRY, *SCALING, BIG]
    missing = [n for n in names if not (CACHE / n).exists()]
    if missing:
        raise SystemExit(
            f"missing inputs {missing}: run benchmarks/fetch_inputs.py and benchmarks/synth_apps.py"
        )
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    args.previous = previous
    results: dict[str, dict] = {n: previous[n] for n in previous if n not in names}
    for name in names:
        results[name] = {**previous.get(name, {}), **measure(CACHE / name, args)}
        args.out.write_text(json.dumps(results, indent=1))
    ordered = {n: results[n] for n in [*REGISTRY, *SCALING, BIG] if n in results}

    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, Python {sys.version.split()[0]}"
    )
    print(markdown(ordered))
    for key in ("scan_s", "reader_s"):
        s = slope(ordered, key)
        if s is not None:
            print(f"log-log slope of {key} against classes: {s:.2f}")
    png = None if args.no_chart else chart(ordered, DOCS / "static_speed.png")
    if png:
        print(f"chart: {png.relative_to(ROOT)}")
    ok = True
    for text, passed in floors(ordered):
        print(("PASS " if passed else "FAIL ") + text)
        ok &= passed
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
