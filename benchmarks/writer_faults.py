#!/usr/bin/env python3
"""The live writer survives poisoned flows (issue 15): 1,000 requests whose path, headers, Host or
body hold bytes that are not UTF-8 (mitmproxy decodes them with ``surrogateescape``: lone surrogates)
mixed into 10,000 good ones, through a real ``mitmdump -s addons/dataflow.py`` on loopback. Every
good one must be stored, and the proxy must keep recording after the poisoned ones.

Usage::

    .venv/bin/python benchmarks/writer_faults.py                       # 10,000 good + 1,000 poisoned
    .venv/bin/python benchmarks/writer_faults.py --good 2000 --poisoned 200

The client (``--concurrency`` threads) sends request ``i`` poisoned when ``i % 11 == 5`` (one in
eleven), cycling through the kinds of :data:`POISONS`. mitmproxy's HTTP/1 reader answers 400 to a
request line or header name that is not UTF-8, so those kinds go as HTTP/2 through a TLS tunnel to
an HTTPS server (as ``tests/traffic/test_mitmdump_faults.py`` does, whose proxy helper this uses);
header values, Host and bodies go as HTTP/1 on keep-alive connections (``kill9.RawClient``), like
the good ones. The proxy is then stopped normally (SIGINT: ``done()`` flushes) and the case file
read: good paths stored, poisoned ones stored sanitised (U+FFFD) or skipped and counted in the
capture's input notes. Prints the counts, the answers by kind, the wall time and the request rate
with the load average; exit status 1 if a good flow is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.kill9 import BODY, RawClient, load_average, post_head, start_server  # noqa: E402
from tests.helpers.mitm import RawProxy as Proxy  # noqa: E402  (a real mitmdump with our addon, h2 client)
from tests.helpers.mitm import https_server, make_cert  # noqa: E402

#: Poisoned kinds: (name, HTTP/2 or not, path, extra header lines or pairs, body); ``{i}``: request number.
POISONS: list[tuple[str, bool, bytes, Any, bytes]] = [
    ("path", True, b"/p\xff\xfe/{i}?k\xff=1&ok=2", [], b""),
    ("header name", True, b"/hn/{i}", [(b"x-\xc3\x28", b"v"), (b"x-note", b"\xff\xfe")], b""),
    ("header value", False, b"/hv/{i}", b"X-Note: \xff\xfe\r\n", BODY),
    ("host", False, b"/host/{i}", b"", BODY),
    ("body", False, b"/b/{i}", b"Content-Encoding: gzip\r\n", b'{"a": "\xff\xfe\xed\xa0\x80"}'),
    ("content-type", False, b"/ct/{i}", b"", b"\xff\xfe\x00\x01"),
]


def poisoned_http1(server_port: int, name: str, path: bytes, extra: bytes) -> bytes:
    head = post_head(server_port, path, extra)
    if name == "host":  # a Host header that is not UTF-8 (the proxy request's target stays loopback)
        head = head.replace(b"Host: 127.0.0.1:%d" % server_port, b"Host: h\xff.example:%d" % server_port)
    if name == "content-type":
        head = head.replace(b"Content-Type: application/json", b"Content-Type: text/\xff\xfe; charset=\xff")
    return head


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--good", type=int, default=10_000)
    ap.add_argument("--poisoned", type=int, default=1_000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--json", dest="json_out", type=Path)
    a = ap.parse_args()
    total = a.good + a.poisoned
    # request i is poisoned when i % 11 == 5, until there are enough of them; the rest are good
    plan: list[int | None] = []  # the poisoned request's ordinal (its kind), None for a good one
    bad = 0
    for i in range(total):
        poison = bad < a.poisoned and (i % 11 == 5 or total - i <= a.poisoned - bad)
        plan.append(bad if poison else None)
        bad += poison
    with tempfile.TemporaryDirectory(prefix="writer-faults-") as d:
        tmp = Path(d)
        server, sport = start_server(tmp)
        cert, key = make_cert(tmp)
        tls_srv = https_server(cert, key)
        tls_port = tls_srv.server_address[1]
        # lazy: mitmproxy offers the client h2 without asking the (HTTP/1-only) test server first
        proxy = Proxy(tmp, ["--set", "connection_strategy=lazy"], flush_ms=500)
        errors = [0]
        answered = [0]
        lock = threading.Lock()
        kinds: dict[str, int] = {}
        statuses: dict[str, int] = {}

        def count(table: dict[str, int], key: str) -> None:
            with lock:
                table[key] = table.get(key, 0) + 1

        def worker(t: int) -> None:
            c = RawClient(proxy.port)
            for i in range(t, total, a.concurrency):
                try:
                    ordinal = plan[i]
                    if ordinal is not None:
                        name, h2, path, extra, body = POISONS[ordinal % len(POISONS)]
                        path = path.replace(b"{i}", str(i).encode())
                        count(kinds, name)
                        if h2:
                            events = proxy.h2_get(tls_port, path, extra)
                            count(
                                statuses, f"{name} {'answered' if 'ResponseReceived' in events else events}"
                            )
                        else:
                            count(
                                statuses,
                                f"{name} {c.request(poisoned_http1(sport, name, path, extra), body)}",
                            )
                    else:
                        count(statuses, f"good {c.request(post_head(sport, b'/ok/%d' % i), BODY)}")
                    with lock:
                        answered[0] += 1
                except (OSError, ValueError, IndexError):
                    c.close()
                    with lock:
                        errors[0] += 1
            c.close()

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(a.concurrency)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t0
        load = load_average()
        proxy.stop()  # SIGINT: done() flushes and closes
        tls_srv.shutdown()
        server.terminate()
        server.wait()
        c = sqlite3.connect(proxy.db)
        paths = [r[0] or "" for r in c.execute("SELECT path FROM connections")]
        notes = [r[0] for r in c.execute("SELECT notes FROM inputs WHERE kind = 'live'")]
        c.close()
    good_expected = {f"/ok/{i}" for i in range(total) if plan[i] is None}
    stored = set(paths)
    good_missing = good_expected - stored
    poisoned_stored = sum(1 for p in paths if not p.startswith("/ok/"))
    later = max((i for i in range(total) if plan[i] is None), default=-1)
    result = {
        "good": len(good_expected), "poisoned": bad, "poisoned_kinds": kinds, "answers": statuses,
        "answered": answered[0], "client_errors": errors[0], "good_stored": len(good_expected & stored),
        "good_missing": len(good_missing), "poisoned_stored_sanitised": poisoned_stored,
        "sanitised_with_fffd": sum(1 for p in paths if "\ufffd" in p), "input_notes": [n for n in notes if n],
        "last_good_stored": f"/ok/{later}" in stored, "seconds": round(elapsed, 1),
        "requests_per_s": round(total / elapsed), "load": load,
    }  # fmt: skip
    print(json.dumps(result, indent=1, ensure_ascii=False))
    ok = not good_missing and errors[0] == 0
    print(
        f"\nFloor (all {len(good_expected):,} good flows stored among {bad:,} poisoned ones): "
        f"{'PASS' if ok else 'FAIL'}"
    )
    if a.json_out:
        a.json_out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
