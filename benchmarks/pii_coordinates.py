"""Personal-data precision and recall on the held-out coordinates set (issue 12 point 10).

Usage:
    .venv/bin/python benchmarks/pii_coordinates.py [--requests 400]

The held-out set (``tests.helpers.pii_corpus.generate_held_out``: its own seed, map / place-search /
ride / weather requests) carries venue coordinates that are not the device's, the device's own
location (within the profile's 1 km tolerance) beside them or alone, and look-alike noise. It is
scored with the device profile's location known: venue coordinates count as correct when reported
as ``coordinates`` and as a false personal-data finding when reported as ``location``.

A second, smaller set shows the rule's limit: venues *inside* the tolerance (200-900 m from the
device) cannot be told from the device and are reported as ``location``.

To score another checkout's detector on the same set (the numbers before the change), put its
``audit`` package first on the path: ``PYTHONPATH=/tmp/other:. python benchmarks/pii_coordinates.py``.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after PYTHONPATH: see the docstring

from audit.models import HttpRequestData  # noqa: E402
from audit.traffic.pii import PiiDetector  # noqa: E402
from tests.helpers.pii_corpus import (  # noqa: E402
    PROFILE,
    Labelled,
    _offset,
    evaluate,
    generate_held_out,
    noise_fields,
    place,
)


def inside_tolerance(n: int, seed: int = 7) -> list[Labelled]:
    """Venue-only requests whose venue is 200-900 m from the device (inside the 1 km tolerance)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        lat, lon = _offset(rnd, 0.2, 0.9)
        fields = [("latitude", f"{lat:.6f}"), ("longitude", f"{lon:.6f}"), *noise_fields(rnd)]
        lab = Labelled(
            req=HttpRequestData(url=""), pattern={"location"}, venue=True, desc=["query", "near venue"]
        )
        lab.req = place(fields, "query" if i % 2 else "json", rnd, "maps.example.com")
        out.append(lab)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=400)
    args = ap.parse_args()
    det = PiiDetector(PROFILE)
    items = generate_held_out(n=args.requests)
    r = evaluate(items, [x.req for x in items], det.scan, located=True)
    print(f"held-out set: {len(items)} requests, {sum(x.venue for x in items)} with venue coordinates, "
          f"{sum('location' in x.known for x in items)} with the device's location")  # fmt: skip
    print(f"personal data: precision {r.personal.precision:.3f}, recall {r.personal.recall:.3f} "
          f"(tp {r.personal.tp}, fp {r.personal.fp}, fn {r.personal.fn})")  # fmt: skip
    for t, s in sorted(r.per_type.items()):
        print(f"  {t}: precision {s.precision:.3f}, recall {s.recall:.3f} (tp {s.tp}, fp {s.fp}, fn {s.fn})")
    near = inside_tolerance(100)
    reported = [{f.data_type for f in det.scan(x.req)} for x in near]
    print(f"venues inside the tolerance: {sum('location' in f for f in reported)}/{len(near)} reported as location, "
          f"{sum('coordinates' in f for f in reported)} as coordinates")  # fmt: skip


if __name__ == "__main__":
    main()
