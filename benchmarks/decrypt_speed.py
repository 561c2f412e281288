"""Import of a ~100 MB decrypted capture (issue 17): ``audit import`` vs. ``tshark -r FILE -q`` alone.

Usage:
    .venv/bin/python benchmarks/decrypt_speed.py [--mb 100] [--runs 3]

Builds (once, cached in benchmarks/.cache/decrypt-<mb>mb.pcapng) a real capture: curl sessions
(HTTP/1.1 and HTTP/2, TLS 1.2 and 1.3, 50 requests each, JSON bodies of 1-40 KB with an IMEI, answers
of 1-40 KB) against the local TLS server of tests/helpers/tls_capture.py, captured with dumpcap and
the key log embedded with ``editcap --inject-secrets``. As root it runs in a network namespace whose
loopback has an MTU of 1500 and no segmentation offload, so that packets are the size a phone's are
(the host's lo has an MTU of 65536); elsewhere it uses lo as it is and says so.

Then, each in a fresh process (median of --runs, interleaved; peak RSS from ``getrusage`` of the
process and its children):

- ``tshark -r FILE -q``, as the issue names it: with nothing asking for a field, tshark neither
  builds protocol trees nor runs the HTTP dissectors over the decrypted data;
- ``tshark -r FILE -q -z io,stat,0,http,http2``: the same with the HTTP/1 and HTTP/2 dissectors run,
  so TLS decrypted: the least tshark must do for us;
- ``tap``: our Lua tap in tshark, its lines parsed into requests (``audit.traffic.tshark.Decryption``);
- ``import``: ``audit.traffic.importers.import_file`` into a fresh case file with the data detector
  and the test device profile: our pcapng pass, the tshark tap run, record building, detection and
  SQLite.

Floors (docs/benchmarks.md): import <= 3x the wall time of ``tshark -r FILE -q`` (the issue's, which
that run cannot give: it decrypts nothing), and <= 3x the wall and CPU time of tshark decrypting and
dissecting HTTP (the exit status follows the first).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
IMEI = "354678112345612"


def sessions(mb: int) -> list[object]:
    from tests.helpers.tls_capture import Request, Session

    rng = random.Random(17)
    out = []
    total, i = 0, 0
    while total < mb * 1_000_000 * 0.8:  # headers, TLS and TCP overhead make up the rest
        reqs = []
        for j in range(50):
            size, answer = rng.randint(1_000, 40_000), rng.randint(1_000, 40_000)
            body = json.dumps({"seq": j, "imei": IMEI, "pad": "x" * size}).encode()
            reqs.append(Request("POST", f"/v1/event?seq={j}&resp={answer}", body))
            total += len(body) + answer
        out.append(Session(tuple(reqs), http2=i % 2 == 1, tls12=i % 4 < 2))
        i += 1
    return out


def build_here(path: Path, mb: int) -> None:
    """Record the capture in this network namespace (called inside the namespace as root)."""
    from tests.helpers.tls_capture import inject_secrets, record

    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        plain, keylog, received = record(Path(tmp), sessions(mb))  # type: ignore[arg-type]
        inject_secrets(plain, keylog, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
        print(
            f"built {path}: {path.stat().st_size / 1e6:.0f} MB, {len(received.items)} requests",
            file=sys.stderr,
        )


def build(path: Path, mb: int) -> str:
    """Build the capture, in a namespace with a 1500-byte loopback MTU when possible; returns how."""
    CACHE.mkdir(exist_ok=True)
    ns = f"audit-decrypt-{os.getpid()}"
    cmd = [sys.executable, __file__, "--build-here", str(path), "--mb", str(mb)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if os.geteuid() == 0 and shutil.which("ip"):
        try:
            subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
            try:
                subprocess.run(
                    ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "mtu", "1500", "up"], check=True
                )
                for offload in (["gso_max_size", "1500"], ["gro_max_size", "1500"]):
                    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", *offload], check=False,
                                   capture_output=True)  # fmt: skip
                subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, env=env)
                return "network namespace, loopback MTU 1500"
            finally:
                subprocess.run(["ip", "netns", "del", ns], check=False)
        except subprocess.CalledProcessError as e:
            print(f"network namespace unavailable ({e}); using the host's lo", file=sys.stderr)
    subprocess.run(cmd, check=True, env=env)
    return "host loopback (MTU 65536)"


#: CPU seconds (user + system, the process and its children) of the last :func:`_child` call: on a
#: shared machine wall time depends on the others' load, CPU time much less.
CPU: list[float] = []


def _child(code: str) -> tuple[float, int, str]:
    """Run ``code`` in a fresh interpreter: (seconds, peak RSS in MB of it and its children, stdout);
    its CPU time is appended to :data:`CPU`."""
    script = f"""
import resource, sys, time
t = time.perf_counter()
{code}
dt = time.perf_counter() - t
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
print("TIMING", dt, me.ru_maxrss, kids.ru_maxrss, cpu)
"""
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout  # fmt: skip
    line = next(ln for ln in out.splitlines() if ln.startswith("TIMING"))
    _, dt, me, kids, cpu = line.split()
    CPU.append(float(cpu))
    return float(dt), max(int(me), int(kids)) // 1024, out


#: tshark runs compared: as the issue names it, and doing the work decryption needs (the TLS and
#: HTTP dissectors only run in full when something asks for their fields).
TSHARK = {
    "tshark -r FILE -q": [],
    "tshark -r FILE -q -z io,stat,0,http,http2 (decrypts and dissects HTTP)": ["-z", "io,stat,0,http,http2"],
}


def time_tshark(path: Path, extra: list[str]) -> tuple[float, int]:
    code = f"""
import subprocess
subprocess.run(["tshark", "-n", "-r", {str(path)!r}, "-q", *{extra!r}], check=True, capture_output=True)
"""
    dt, rss, _ = _child(code)
    return dt, rss


def time_tap(path: Path) -> tuple[float, int]:
    """Our tshark tap alone, its lines parsed into requests (no packet pass, records or SQLite)."""
    code = f"""
from pathlib import Path
from audit.traffic.tshark import Decryption, find_tshark
n = sum(1 for _ in Decryption(find_tshark(), Path({str(path)!r})).requests())
"""
    dt, rss, _ = _child(code)
    return dt, rss


def time_import(path: Path) -> tuple[float, int, int, str]:
    code = f"""
import tempfile, os
from pathlib import Path
from audit.store import Store
from audit.traffic.importers import import_file
from audit.traffic.pii import PiiDetector
from audit.traffic.profile import load_profile
d = tempfile.mkdtemp()
detector = PiiDetector(load_profile(Path({str(ROOT / "tests/fixtures/captures/device.toml")!r})))
with Store(os.path.join(d, "case.sqlite")) as store:
    s = import_file(Path({str(path)!r}), store, detector=detector)
    imei = store.conn.execute("SELECT count(DISTINCT connection_id) FROM findings WHERE data_type = 'imei'").fetchone()[0]
print("SUMMARY", s.connections, imei, s.decryption)
"""
    dt, rss, out = _child(code)
    summary = next(ln for ln in out.splitlines() if ln.startswith("SUMMARY"))
    _, conns, imei, *rest = summary.split(" ", 3)
    return dt, rss, int(imei), " ".join(rest)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--build-here", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_here:
        build_here(args.build_here, args.mb)
        return 0
    path = CACHE / f"decrypt-{args.mb}mb.pcapng"
    how = "cached"
    if not path.exists():
        how = build(path, args.mb)
    print(f"capture: {path} ({path.stat().st_size / 1e6:.1f} MB, built on {how})")
    # interleaved, so that the load of a shared machine falls on every variant alike
    runs: dict[str, list[tuple[float, int, float]]] = {name: [] for name in [*TSHARK, "tap", "import"]}
    found = None
    for _ in range(args.runs):
        for name, extra in TSHARK.items():
            runs[name].append((*time_tshark(path, extra), CPU[-1]))
        runs["tap"].append((*time_tap(path), CPU[-1]))
        dt, rss, imei, decryption = time_import(path)
        runs["import"].append((dt, rss, CPU[-1]))
        found = (imei, decryption)
    wall = {name: statistics.median(t for t, _, _ in r) for name, r in runs.items()}
    cpu = {name: statistics.median(c for _, _, c in r) for name, r in runs.items()}
    peak = {name: max(m for _, m, _ in r) for name, r in runs.items()}
    labels = {"tap": "our tshark tap alone, lines parsed into requests",
              "import": "audit import (tap + packet pass + records + detection + SQLite)"}  # fmt: skip
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name in runs:
        print(
            f"{labels.get(name, name)}: {wall[name]:.2f} s wall, {cpu[name]:.2f} s CPU, peak RSS {peak[name]} MB"
        )
    print(f"  requests with an IMEI finding: {found[0] if found else '?'}; {found[1] if found else ''}")
    base, dissect = list(TSHARK)
    ratio = wall["import"] / wall[base]
    ok = ratio <= 3
    print(
        f"import / ({base}): {ratio:.2f}x wall, {cpu['import'] / cpu[base]:.2f}x CPU (floor <= 3x wall): {'PASS' if ok else 'FAIL'}"
    )
    near = wall["import"] / wall[dissect] <= 3 and cpu["import"] / cpu[dissect] <= 3
    print(f"import / tshark decrypting and dissecting: {wall['import'] / wall[dissect]:.2f}x wall, "
          f"{cpu['import'] / cpu[dissect]:.2f}x CPU (<= 3x both): {'PASS' if near else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
