"""Open the report of a hostile case in real headless chromium: it renders, our script runs, no
console error or blocked request is logged, and no injected script or handler runs.

The page's Content-Security-Policy (default-src 'none') makes chromium log every attempted request
as a console message, so "no console message" also means "no network request". A screenshot is
saved to test-artifacts/report.png for a human look.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from audit.enrich.geoip import Enricher
from audit.report.html import write_report
from audit.store import Store
from tests.test_graph import COMPANIES, make_case

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed"),
]


def _chromium(tmp_path: Path, url: str, *extra: str) -> tuple[str, str]:
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    args = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", *extra, url,
    ]  # fmt: skip
    # Own session so that a hang can be ended with every helper process chromium started.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("chromium did not finish within 120 s")
    assert proc.returncode == 0, err[-2000:]
    return out, err


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = Store(":memory:")
    make_case(store, evil=True)
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(store, path, enricher=Enricher(), companies=COMPANIES)
    return path


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_renders_without_errors_and_injection(report: Path, tmp_path: Path) -> None:
    dom, err = _chromium(tmp_path, report.as_uri(), "--dump-dom", "--virtual-time-budget=2000")
    assert _console(err) == []
    html_tag = re.search(r"<html[^>]*>", dom)
    assert html_tag is not None
    assert 'class="js"' in html_tag.group(0)  # our script ran to its end under the CSP
    assert "data-pwned" not in html_tag.group(0)  # the injected onerror handler did not
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title is not None and title.group(1).startswith("Data-flow audit:") and "PWNED" not in title.group(1)
    assert dom.count("<script") == 1
    # the hostile strings are there, as text
    assert "&lt;script&gt;document.title=" in dom
    for attr in re.findall(r'\s(?:src|href)="([^"]*)"', dom):
        assert attr.startswith(("#", "data:image/svg+xml;base64,")), attr[:80]


def test_screenshot(report: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    _, err = _chromium(tmp_path, report.as_uri(), f"--screenshot={shot}", "--window-size=1400,2600",
                       "--hide-scrollbars")  # fmt: skip
    assert _console(err) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
