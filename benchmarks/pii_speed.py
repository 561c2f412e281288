"""Requests per second through ``PiiDetector.scan``, with and without a device profile.

Usage:
    .venv/bin/python benchmarks/pii_speed.py [--requests 2000] [--runs 5]

Builds a deterministic mix of realistic requests and reports the median of --runs per workload:

- ``small GET``: tracker pixel / config fetch, URL with a dozen query parameters, 8 headers;
- ``JSON batch 2-20 KB``: analytics event batches (nested params, timestamps, session IDs), half
  of them carrying an advertising ID under ``gaid`` (so they are walked field by field);
- ``JSON batch, nothing telling``: the same batches without any identifier or telling key (the
  RE2 prefilter skips the walk);
- ``gzip form``: gzip'd ``application/x-www-form-urlencoded`` bodies of 1-4 KB with device fields;
- ``mix``: 60 % small GETs, 30 % JSON batches, 10 % gzip forms.

Also reports the cost of building a detector (all encodings of all profile values precomputed).
The RE2 prefilter can be switched off with ``--no-re2`` to measure the pure-Python fallback.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.models import HttpRequestData  # noqa: E402
from audit.traffic.pii import PiiDetector  # noqa: E402
from audit.traffic.profile import load_profile  # noqa: E402

PROFILE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "device.toml"
GAID = "5b0a1e52-8d3f-4c1e-9a77-2f6b1c0d9e11"  # not the profile's: pattern hit only
UA = ("User-Agent", "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A.240205.004)")


def _hex(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice("0123456789abcdef") for _ in range(n))


def small_get(rnd: random.Random) -> HttpRequestData:
    q = {
        "v": "2", "tid": f"G-{_hex(rnd, 10).upper()}", "cid": f"{rnd.randint(10**8, 10**9)}.{rnd.randint(10**8, 10**9)}",
        "sr": "1080x2400", "ul": "en-us", "dt": "Home", "en": "page_view", "_s": str(rnd.randint(1, 50)),
        "sid": str(rnd.randint(10**9, 10**10)), "seg": "1", "_et": str(rnd.randint(1, 9000)), "z": _hex(rnd, 12),
    }  # fmt: skip
    headers = (UA, ("Accept", "*/*"), ("Accept-Language", "en-US"), ("Connection", "keep-alive"),
               ("X-Client-Version", "4.12.3"), ("X-Request-Id", _hex(rnd, 32)), ("Cookie", f"_ga=GA1.1.{rnd.randint(10**8, 10**9)}"),
               ("Accept-Encoding", "gzip"))  # fmt: skip
    return HttpRequestData(url="https://www.example-analytics.com/g/collect?" + urlencode(q), headers=headers)


def json_batch(rnd: random.Random, telling: bool) -> HttpRequestData:
    n = rnd.randint(6, 60)  # about 2-20 KB
    events = [
        {
            "name": rnd.choice(["screen_view", "user_engagement", "purchase", "session_start"]),
            "ts": 1_714_900_000_000 + rnd.randint(0, 10**7),
            "params": {
                "screen": rnd.choice(["Home", "Search", "Detail", "Cart"]),
                "session": _hex(rnd, 32),
                "engagement_ms": rnd.randint(1, 60000),
                "value": round(rnd.random() * 100, 2),
                "items": [{"sku": f"SKU-{rnd.randint(1000, 9999)}", "qty": rnd.randint(1, 3)}],
            },
        }
        for _ in range(n)
    ]
    doc: dict[str, object] = {
        "app": {"id": "com.example.shop", "version": "4.12.3", "build": 41203},
        "device": {"model": "Pixel 7", "os": "14", "locale": "en_US", "tz": "Europe/Berlin"},
        "events": events,
    }
    if telling:
        doc["device"] = {**doc["device"], "gaid": GAID}  # type: ignore[dict-item]
    body = json.dumps(doc).encode()
    return HttpRequestData(
        url="https://sdk.example-tracker.net/v3/batch",
        headers=(UA, ("Content-Type", "application/json; charset=utf-8"), ("X-Api-Key", _hex(rnd, 40))),
        body=body,
    )


def gzip_form(rnd: random.Random) -> HttpRequestData:
    fields = {"package": "com.example.shop", "sdk_version": "6.14.2", "os_version": "14", "device": "Pixel 7",
              "android_id": _hex(rnd, 16), "install_ts": str(1_714_000_000 + rnd.randint(0, 10**6)),
              "events": json.dumps([{"e": "open", "t": rnd.randint(1, 10**6)} for _ in range(rnd.randint(10, 60))])}  # fmt: skip
    body = gzip.compress(urlencode(fields).encode())
    return HttpRequestData(
        url="https://app.example-attribution.com/api/v4/event",
        headers=(UA, ("Content-Type", "application/x-www-form-urlencoded"), ("Content-Encoding", "gzip")),
        body=body,
    )


def workloads(n: int) -> dict[str, list[HttpRequestData]]:
    rnd = random.Random(7)
    mix: list[HttpRequestData] = []
    for _ in range(n):
        x = rnd.random()
        if x < 0.6:
            mix.append(small_get(rnd))
        elif x < 0.9:
            mix.append(json_batch(rnd, rnd.random() < 0.5))
        else:
            mix.append(gzip_form(rnd))
    return {
        "small GET": [small_get(rnd) for _ in range(n)],
        "JSON batch 2-20 KB (half with gaid)": [json_batch(rnd, i % 2 == 0) for i in range(n // 4)],
        "JSON batch, nothing telling": [json_batch(rnd, False) for _ in range(n // 4)],
        "gzip form 1-4 KB": [gzip_form(rnd) for _ in range(n // 2)],
        "mix 60/30/10": mix,
    }


def measure(scan: Callable[[HttpRequestData], object], reqs: list[HttpRequestData], runs: int) -> float:
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        for r in reqs:
            scan(r)
        rates.append(len(reqs) / (time.perf_counter() - t))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-re2", action="store_true", help="measure the pure-Python prefilter fallback")
    args = ap.parse_args()

    profile = load_profile(PROFILE)
    t = time.perf_counter()
    for _ in range(20):
        with_profile = PiiDetector(profile)
    build_ms = (time.perf_counter() - t) / 20 * 1000
    bare = PiiDetector(None)
    if args.no_re2:
        with_profile._trigger = None
        bare._trigger = None

    loads = workloads(args.requests)
    print(f"Python {platform.python_version()}, {platform.machine()}, median of {args.runs} runs, "
          f"prefilter: {'Python re' if args.no_re2 else 'RE2'}\n")  # fmt: skip
    print("| workload | requests | avg body | req/s, no profile | req/s, profile |")
    print("|---|---:|---:|---:|---:|")
    for name, reqs in loads.items():
        avg = sum(len(r.body) for r in reqs) / len(reqs)
        a = measure(bare.scan, reqs, args.runs)
        b = measure(with_profile.scan, reqs, args.runs)
        print(f"| {name} | {len(reqs)} | {avg / 1024:.1f} KB | {a:,.0f} | {b:,.0f} |")
    print(
        f"\nDetector build with the example profile: {build_ms:.1f} ms, {with_profile.needle_count} encoded forms."
    )


if __name__ == "__main__":
    main()
