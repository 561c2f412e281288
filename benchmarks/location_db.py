"""Speed and memory of the IPFire location database reader (AS numbers from Debian's libloc-database).

Usage:
    .venv/bin/python benchmarks/location_db.py [--lookups 100000] [FILE]

FILE defaults to the location database the tool finds by itself (``$AUDIT_LOCATION_DB``, else the
system copy, e.g. ``/usr/share/libloc-location/location.db`` from ``apt-get install
libloc-database``). Reports: time to open (map and validate) the file, the resident memory it adds,
the median per-lookup time over ``--lookups`` random public IPv4 and IPv6 addresses (uncached,
straight from the file), the share of addresses it has an AS number for, and the Enricher's uncached
``ip_info`` (embedded location + this database for the network).
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import sys
import time
from pathlib import Path

from audit.enrich.geoip import EmbeddedGeoIp, Enricher, ip_scope
from audit.enrich.locationdb import LocationDbGeoIp, location_db_path


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def public_addresses(n: int, version: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        if version == 4:
            ip = str(ipaddress.IPv4Address(rnd.getrandbits(32)))
        else:  # inside 2000::/4, where the routed IPv6 space is
            ip = str(ipaddress.IPv6Address((0x2 << 124) | rnd.getrandbits(124)))
        if ip_scope(ip) == "public":
            out.append(ip)
    return out


def timed(fn: object, ips: list[str]) -> tuple[float, float | None, int]:
    """Median µs per call over all addresses and over those answered with an AS number, and how
    many were answered."""
    every, answered = [], []
    clock = time.perf_counter
    for ip in ips:
        t0 = clock()
        ans = fn(ip)  # type: ignore[operator]
        us = (clock() - t0) * 1e6
        every.append(us)
        if ans.asn is not None:
            answered.append(us)
    return statistics.median(every), statistics.median(answered) if answered else None, len(answered)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} µs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", type=Path)
    ap.add_argument("--lookups", type=int, default=100_000)
    args = ap.parse_args()
    path = args.file or location_db_path()
    if path is None or not Path(path).is_file():
        sys.exit("no location database: apt-get install libloc-database, or give FILE")
    before = rss_mib()
    t0 = time.perf_counter()
    db = LocationDbGeoIp(path)
    opened = time.perf_counter() - t0
    print(f"{db.label}: {Path(path).stat().st_size / 2**20:.1f} MiB, opened in {opened * 1000:.1f} ms, "
          f"+{rss_mib() - before:.1f} MiB RSS after open")  # fmt: skip
    for version in (4, 6):
        ips = public_addresses(args.lookups, version, seed=version)
        us, us_hit, hits = timed(db.lookup, ips)
        print(f"IPv{version}: lookup median {us:.1f} µs ({_us(us_hit)} for answered ones), "
              f"AS number for {hits / len(ips):.1%} of {len(ips)} random addresses")  # fmt: skip
    print(
        f"RSS after lookups: +{rss_mib() - before:.1f} MiB (pages of the mapped file, shared and reclaimable)"
    )
    embedded = EmbeddedGeoIp.default()
    enricher = Enricher(embedded=embedded, asn_table=False, location_db=db)
    enricher.ip_info("8.8.8.8")  # load the embedded data outside the timing
    ips = public_addresses(min(args.lookups, 20_000), 4, seed=99)
    us, us_hit, hits = timed(enricher.ip_info, ips)
    print(f"Enricher.ip_info uncached (embedded location + location database), IPv4: median {us:.1f} µs "
          f"({_us(us_hit)} for answered ones), AS number for {hits / len(ips):.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
