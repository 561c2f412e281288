#!/usr/bin/env python3
"""``kill -9`` of a live mitmdump under load (issue 15): no record lost that the proxy answered more
than 1 s before the kill.

Usage::

    .venv/bin/python benchmarks/kill9.py                  # 5 runs, ~8 s of load each
    .venv/bin/python benchmarks/kill9.py --runs 3 --seconds 5 --concurrency 16

Everything on 127.0.0.1: a keep-alive HTTP server (its own process, ``proxy_throughput.serve``), a
real ``mitmdump -s addons/dataflow.py`` (default writer: the child process, default flush interval
500 ms) and a client process with ``--concurrency`` keep-alive connections sending POSTs with unique
paths (``/k9/RUN/THREAD/SEQ``). The client logs each request when its answer has been read, with the
time (``time.time()``, the same clock as the kill). After ``--seconds`` (± 30 %, seeded) of load the
proxy gets ``SIGKILL``; its writer child is left to finish what it received (it reads end-of-file),
then the case file is read and compared with the client's log:

- *answered before the kill − 1 s* and not stored: lost (the floor: 0 in every run);
- answered in the last second before the kill and not stored: the flush window, reported, allowed.

Exit status 1 if any run lost a record answered more than 1 s before the kill.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.proxy_throughput import ADDON, Mitmdump  # noqa: E402

BODY = json.dumps(
    {"device": {"model": "Pixel 7", "android_id": "9774d56d682e549c"}, "events": list(range(40))}
).encode()


# ---- a raw keep-alive HTTP/1.1 client (it must send bytes http.client refuses: writer_faults.py) -----


class RawClient:
    """One keep-alive connection to the proxy; requests in absolute form (a plain HTTP proxy)."""

    def __init__(self, proxy_port: int) -> None:
        self.port = proxy_port
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = b""
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, head: bytes, body: bytes = b"") -> int:
        """Send one request (``head`` without its final blank line); the status of the answer, whose
        body has been read. Raises OSError when the proxy is gone."""
        s = self._connect()
        s.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        while b"\r\n\r\n" not in self.buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("proxy closed the connection")
            self.buf += chunk
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self.buf) < length:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("proxy closed the connection")
            self.buf += chunk
        self.buf = self.buf[length:]
        if any(line.lower() == b"connection: close" for line in lines[1:]):
            self.close()
        return status


def post_head(server_port: int, path: bytes, extra: bytes = b"") -> bytes:
    return (b"POST http://127.0.0.1:%d%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Content-Type: application/json\r\n%s" % (server_port, path, server_port, extra))  # fmt: skip


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The keep-alive HTTP server of proxy_throughput.py, in its own process; (process, port)."""
    port_file = tmp / "server-port"
    # its stderr: tracebacks of connections reset by the kill, not ours
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "proxy_throughput.py"), "--serve", str(port_file)],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text()):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the HTTP server did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# ---- the client process ---------------------------------------------------------------------------


def client(proxy_port: int, server_port: int, run: int, log: Path, concurrency: int) -> None:
    """POST unique paths until SIGTERM; one log line per answered request: path, time answered."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out = log.open("a", buffering=1)
    lock = threading.Lock()

    def worker(t: int) -> None:
        c = RawClient(proxy_port)
        seq = 0
        while not stop.is_set():
            path = f"/k9/{run}/{t}/{seq}"
            seq += 1
            try:
                c.request(post_head(server_port, path.encode()), BODY)
            except (OSError, ValueError, IndexError):
                c.close()
                time.sleep(0.05)
                continue
            answered = time.time()
            with lock:
                out.write(f"{path}\t{answered:.6f}\n")
        c.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out.close()


# ---- driver ----------------------------------------------------------------------------------------


def one_run(tmp: Path, sport: int, run: int, seconds: float, concurrency: int) -> dict[str, float]:
    db = tmp / f"kill9-{run}.sqlite"
    log = tmp / f"kill9-{run}.log"
    proxy = Mitmdump(f"run {run}", tmp, ["-s", ADDON, "--set", f"audit_db={db}", "--set", "audit_app=kill9"])
    time.sleep(1.0)  # the writer child is up (it starts with the addon's configure)
    children = proxy.children()
    cl = subprocess.Popen([sys.executable, __file__, "--client", str(proxy.port), str(sport), str(run), str(log),
                           str(concurrency)])  # fmt: skip
    time.sleep(seconds)
    load = load_average()
    t_kill = time.time()
    os.kill(proxy.proc.pid, signal.SIGKILL)
    proxy.proc.wait()
    # the writer child reads end-of-file, stores what it received, and exits
    deadline = time.monotonic() + 120
    while any(Path(f"/proc/{c}").exists() for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    writer_left = time.monotonic() >= deadline
    cl.send_signal(signal.SIGTERM)
    cl.wait(60)
    answered: dict[str, float] = {}
    for line in log.read_text().splitlines():
        path, _, t = line.partition("\t")
        answered[path] = float(t)
    c = sqlite3.connect(db)
    stored = {r[0] for r in c.execute("SELECT path FROM connections WHERE app = 'kill9'")}
    c.close()
    before = {p for p, t in answered.items() if t < t_kill - 1.0}
    last = {p for p, t in answered.items() if t >= t_kill - 1.0}
    return {"run": run, "seconds": seconds, "answered": len(answered), "stored": len(stored),
            "answered_before": len(before), "lost_before": len(before - stored), "last_second": len(last),
            "lost_last_second": len(last - stored), "stored_unanswered": len(stored - set(answered)),
            "writer_stuck": int(writer_left), "load": load}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=8.0, help="mean seconds of load before the kill")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--json", dest="json_out", type=Path)
    ap.add_argument("--client", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.client:
        pp, sp, run, log, conc = a.client
        client(int(pp), int(sp), int(run), Path(log), int(conc))
        return 0
    rng = random.Random(a.seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="kill9-") as d:
        tmp = Path(d)
        server, sport = start_server(tmp)
        try:
            for run in range(1, a.runs + 1):
                r = one_run(tmp, sport, run, a.seconds * rng.uniform(0.7, 1.3), a.concurrency)
                results.append(r)
                print(json.dumps(r), flush=True)
        finally:
            server.terminate()
            server.wait()
    print(
        "\n| run | load before the kill | answered | stored | answered > 1 s before the kill | lost of those "
        "| answered in the last 1 s | not stored of those |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['run']} | {r['load']} | {r['answered']} | {r['stored']} | {r['answered_before']} | "
            f"{r['lost_before']} | {r['last_second']} | {r['lost_last_second']} |"
        )
    lost = sum(int(r["lost_before"]) for r in results)
    print(
        f"\nFloor (0 records lost that were answered > 1 s before kill -9, {len(results)} runs): "
        f"{'PASS' if lost == 0 else 'FAIL'} ({lost} lost)"
    )
    if a.json_out:
        a.json_out.write_text(json.dumps(results, indent=1) + "\n")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
