"""The README's "A typical case" runs verbatim from an empty folder (issue 13).

The fixture APKs, captures and device profile are copied under the README's names (``apks/app.apk``,
``capture.har``, ``capture.pcapng`` …) and each command of the block is run as written, through
``bash``, by a real process with the project's ``audit`` and ``mitmdump`` on ``PATH``. The
``mitmdump`` line is run too, briefly: its listening address comes from mitmproxy's own
``~/.mitmproxy/config.yaml`` (so the line stays verbatim), one plain-HTTP request to a loopback
server goes through it, and it is stopped with Ctrl-C; the addon script is the one of this
repository (the README says the line is run from a clone).
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from audit.store import Store
from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: README name → fixture. The pcap is a pcap, named .pcapng: the importer goes by content.
FILES = {
    "apks/app.apk": FIXTURES / "apks" / "messenger.apk",
    "capture.har": FIXTURES / "captures" / "messenger.har",
    "capture.pcapng": FIXTURES / "captures" / "messenger.pcap",
    "device.toml": FIXTURES / "captures" / "device.toml",
    "old.apk": FIXTURES / "apks" / "obfuscated.apk",
    "new.apk": FIXTURES / "apks" / "messenger.apk",
    "addons/dataflow.py": ROOT / "addons" / "dataflow.py",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (BIN / "audit").exists(), reason="the audit entry point is not installed in this venv"
    ),
]


def typical_case() -> list[str]:
    """The commands of the README block, continuation lines joined, comments and blanks dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## A typical case\n\n```sh\n(.*?)```", text, re.S)
    assert block, "README has no 'A typical case' sh block"
    commands, current = [], ""
    for line in block.group(1).splitlines():
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip() and not current.lstrip().startswith("#"):
            commands.append(current.strip())
        current = ""
    return commands


def expected_status(command: str) -> int:
    """What the README says the command exits with (``# exit 3 on violations``), else 0."""
    m = re.search(r"#.*\bexit (\d)", command)
    return int(m.group(1)) if m else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _run_mitmdump(command: str, cwd: Path, env: dict[str, str]) -> None:
    """The README's mitmdump line, for one request: listen, proxy a GET to a loopback server, Ctrl-C."""
    port = _free_port()
    conf = Path(env["HOME"]) / ".mitmproxy"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "config.yaml").write_text(f"listen_host: 127.0.0.1\nlisten_port: {port}\n", encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log = (cwd / "mitmdump.log").open("wb")
    proc = subprocess.Popen(
        ["bash", "-c", "exec " + command], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        for _ in range(600):
            if proc.poll() is not None:
                pytest.fail(
                    f"mitmdump exited with {proc.returncode}: {(cwd / 'mitmdump.log').read_text()[-2000:]}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"})
        )
        with opener.open(f"http://127.0.0.1:{server.server_address[1]}/readme?hello=1", timeout=20) as r:
            assert r.read() == b"ok"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        server.shutdown()
    assert proc.returncode == 0, (cwd / "mitmdump.log").read_text()[-2000:]


def test_the_typical_case_runs_verbatim(tmp_path: Path) -> None:
    commands = typical_case()
    assert len(commands) >= 8 and commands[0].startswith("audit scan")
    for name, src in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k not in ("AUDIT_DB",)}
    env |= {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "HOME": str(tmp_path / "home"),
        "COLUMNS": "100",
    }
    ran = []
    for command in commands:
        if command.startswith("mitmdump"):
            _run_mitmdump(command, tmp_path, env)
            ran.append("mitmdump")
            continue
        r = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert r.returncode == expected_status(command), f"{command}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr, r.stderr
        ran.append(command.split()[1])
    assert ran[:3] == ["scan", "mitmdump", "import"] and "run" in ran and "check" in ran
    assert (tmp_path / "reports" / "app.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (tmp_path / "app.graphml").stat().st_size > 0
    with Store(tmp_path / "case.sqlite") as s:
        live = [c for _, c in s.connections() if c.source == "live"]
        assert live and all(c.app == "com.example.app" for c in live) and live[0].path == "/readme"
        assert s.evidence_counts("com.example.app")["inspected"] > 0
