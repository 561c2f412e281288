"""Speed of SDK signature matching and of the Exodus import.

Usage:
    .venv/bin/python benchmarks/signature_speed.py [--classes 200000] [--runs 5]

Builds a deterministic list of class names shaped like a large app (about a third under known SDK
prefixes, the rest app code and ProGuard-style one-letter packages), then reports the median of
--runs (CPU time of the process) for:

- ``load``: parse sdks.json and build the indexes (builtin cache cleared first);
- ``match_class``: one call per class on a fresh database (cold package cache), and again (warm);
- ``count_classes``: the scanner's per-DEX call over all classes;
- ``match_host``: one call per host for distinct hosts;
- ``import``/``load+overlay``: import_exodus of the shared Exodus snapshot, then loading with it.

Floor (docs/benchmarks.md): match_class well under 1 µs per class warm, under 3 µs cold.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from audit.static import signatures
from audit.static.signatures import SignatureDb, build_db, builtin_signatures, import_exodus, load_signatures

EXODUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "exodus_trackers.json"


def class_names(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    prefixes = sorted({p for s in builtin_signatures() for p in s.code_prefixes})
    words = ["core", "internal", "util", "net", "model", "ui", "data", "api", "impl", "proto"]
    out: list[str] = []
    for i in range(n):
        r = rnd.random()
        if r < 0.35:
            base = rnd.choice(prefixes)
            depth = rnd.randint(0, 3)
            parts = [base] + [rnd.choice(words) for _ in range(depth)] + [f"C{i % 500}"]
        elif r < 0.7:
            parts = ["com", "example", "app", rnd.choice(words), rnd.choice(words), f"Screen{i % 2000}"]
        else:  # obfuscated: a.b.c
            parts = [chr(97 + rnd.randrange(26)) for _ in range(rnd.randint(1, 3))] + [
                chr(97 + rnd.randrange(26))
            ]
        name = ".".join(parts)
        if rnd.random() < 0.2:
            name += f"${rnd.randint(1, 9)}"
        out.append(name)
    return out


def hosts(n: int, seed: int = 11) -> list[str]:
    rnd = random.Random(seed)
    domains = sorted({d for s in builtin_signatures() for d in s.domains})
    out = []
    for i in range(n):
        if rnd.random() < 0.5:
            out.append(f"h{i}.{rnd.choice(domains)}")
        else:
            out.append(f"h{i}.cdn{i % 300}.example{i % 50}.net")
    return out


def median_time(fn: Callable[[], object], runs: int) -> float:
    """Median CPU time of this process (less sensitive than wall time to other jobs on the machine)."""
    times = []
    for _ in range(runs):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--classes", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    def load() -> object:
        builtin_signatures.cache_clear()  # parse the JSON again, not the cached tuple
        return build_db(builtin_signatures())

    t_load = median_time(load, args.runs)
    tracemalloc.start()
    load()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    names = class_names(args.classes)
    base = list(builtin_signatures())

    def cold() -> object:
        db = SignatureDb(base)
        return [db.match_class(c) for c in names]

    warm_db = SignatureDb(base)
    [warm_db.match_class(c) for c in names]
    t_cold = median_time(cold, args.runs)
    t_warm = median_time(lambda: [warm_db.match_class(c) for c in names], args.runs)
    t_count = median_time(lambda: SignatureDb(base).count_classes(names), args.runs)
    matched = sum(1 for c in names if warm_db.match_class(c) is not None)

    hs = hosts(100_000)

    def host_run() -> object:
        db = SignatureDb(base)
        return [db.match_host(h) for h in hs]

    t_host = median_time(host_run, args.runs)

    print(f"builtin SDKs: {len(base)}  classes: {len(names)} ({matched} matched)  hosts: {len(hs)}")
    print(f"load sdks.json + index: {t_load * 1000:.1f} ms  (peak {peak / 1e6:.1f} MB traced)")
    print(
        f"match_class cold: {t_cold / len(names) * 1e6:.2f} µs/class  warm: {t_warm / len(names) * 1e6:.2f} µs/class"
    )
    print(f"count_classes (cold db): {t_count * 1000:.0f} ms for {len(names)} classes")
    print(f"match_host (cold db): {t_host / len(hs) * 1e6:.2f} µs/host")

    if EXODUS.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            overlay = Path(tmp) / "o.json"
            t_imp = median_time(lambda: import_exodus(EXODUS, overlay), max(1, args.runs // 2))
            summary = import_exodus(EXODUS, overlay)

            def load_overlay() -> object:
                signatures._load_cached.cache_clear()
                return load_signatures(overlay)

            t_ov = median_time(load_overlay, args.runs)
            print(f"import_exodus ({summary.added + summary.updated} trackers): {t_imp * 1000:.0f} ms")
            print(f"load with Exodus overlay: {t_ov * 1000:.0f} ms ({len(load_signatures(overlay))} SDKs)")


if __name__ == "__main__":
    main()
