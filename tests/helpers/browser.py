"""Debian's headless chromium, for the tests that open a report in a real browser."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

#: Skips a test (or a module, in its ``pytestmark``) when Debian's chromium is not installed.
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")


def run_chromium(tmp_path: Path, url: str, *extra: str) -> tuple[str, str]:
    """Open ``url`` in headless chromium with a fresh profile under ``tmp_path`` and ``extra``
    switches (``--dump-dom``, ``--screenshot=…``); its stdout and stderr. Fails the test if chromium
    exits non-zero or runs longer than 120 s."""
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    args = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", *extra, url,
    ]  # fmt: skip
    # Own session so that a hang can be ended with every helper process chromium started.
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("chromium did not finish within 120 s")
    assert proc.returncode == 0, err[-2000:]
    return out, err


def console_messages(stderr: str) -> list[str]:
    """The page's console lines in chromium's stderr (``--enable-logging=stderr``): script errors and,
    under the report's CSP, every blocked request."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]
