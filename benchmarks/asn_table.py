"""Speed and size of the imported ASN table (``audit geoip import``) and of lookups through it.

Usage:
    .venv/bin/python benchmarks/asn_table.py [--v4 420000] [--v6 100000] [--lookups 100000] [FILE...]

Without FILE, writes a deterministic synthetic CSV shaped like the public IP-to-ASN range files
(``start,end,asn,organisation``; about 420k IPv4 and 100k IPv6 ranges, 70k organisations, a few
percent nested sub-allocations) into a temporary directory. With FILE (e.g. your own iptoasn or DB-IP
download), imports those instead. Reports: import wall time and peak RSS of the process, table size,
and the median per-lookup time over ``--lookups`` random public addresses (uncached, straight from
the table) and through the Enricher (embedded location + table network, cold LRU cache).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

from audit.enrich.asntable import AsnTableGeoIp, import_table
from audit.enrich.geoip import EmbeddedGeoIp, Enricher


def synthetic(path: Path, v4: int, v6: int, seed: int = 11) -> Path:
    rnd = random.Random(seed)
    orgs = [f"Example Network {i} Ltd" for i in range(70_000)]
    lines = []
    pos = 1 << 24  # from 1.0.0.0
    for _ in range(v4):
        size = 1 << rnd.choice((8, 8, 8, 9, 10, 11, 12, 13, 16))
        start, end = pos, pos + size - 1
        lines.append(f"{start},{end},{rnd.randrange(1, 400_000)},{rnd.choice(orgs)}")
        if rnd.random() < 0.03 and size >= 512:  # a nested sub-allocation
            lines.append(f"{start + 256},{start + 511},{rnd.randrange(1, 400_000)},{rnd.choice(orgs)}")
        pos = end + 1 + rnd.choice((0, 0, 0, 256, 4096))
    pos6 = 0x2001 << 112
    for _ in range(v6):
        size = 1 << rnd.choice((80, 88, 96, 96, 100))
        lines.append(f"{pos6},{pos6 + size - 1},{rnd.randrange(1, 400_000)},{rnd.choice(orgs)}")
        pos6 += size + rnd.choice((0, size))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--v4", type=int, default=420_000)
    ap.add_argument("--v6", type=int, default=100_000)
    ap.add_argument("--lookups", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = args.files or [synthetic(Path(tmp) / "ranges.csv", args.v4, args.v6)]
        dest = Path(tmp) / "asn-table.sqlite"
        t0 = time.perf_counter()
        summary = import_table(files, dest, label="benchmark")
        t_import = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(summary.describe())
        print(
            f"import: {t_import:.2f} s, peak RSS {rss:.0f} MiB, table {dest.stat().st_size / 2**20:.1f} MiB"
        )

        rnd = random.Random(3)
        ips = [f"{rnd.randrange(1, 224)}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}"
               for _ in range(args.lookups)]  # fmt: skip
        table = AsnTableGeoIp(dest)
        per = []
        for chunk in range(0, len(ips), 10_000):
            part = ips[chunk : chunk + 10_000]
            t0 = time.perf_counter()
            hits = sum(1 for ip in part if table.lookup(ip).asn is not None)
            per.append((time.perf_counter() - t0) / len(part) * 1e6)
        print(
            f"table lookup: median {statistics.median(per):.1f} µs per address ({hits} of the last 10,000 hit)"
        )
        enricher = Enricher(embedded=EmbeddedGeoIp.default(), asn_table=table, cache_size=1)
        enricher.ip_info("8.8.8.8")  # load the embedded database outside the timing
        t0 = time.perf_counter()
        for ip in ips[:20_000]:
            enricher.ip_info(ip)
        print(
            f"Enricher.ip_info (embedded + table, uncached): {(time.perf_counter() - t0) / 20_000 * 1e6:.1f} µs"
        )
        table.close()


if __name__ == "__main__":
    main()
