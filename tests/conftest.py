"""Shared test fixtures. Small canned objects only; bigger fixtures live under tests/fixtures/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def _private_audit_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the user's own signature overlay and imported ASN table out of every test: each test
    starts with an empty ``$AUDIT_HOME`` (tests that need one set their own). The system's IPFire
    location database (Debian's libloc-database) is off too, so that answers do not depend on what
    the machine has installed; tests of it turn it on. ``$AUDIT_DB`` points into that home."""
    home = tmp_path_factory.mktemp("audit-home")
    monkeypatch.setenv("AUDIT_HOME", str(home))
    monkeypatch.setenv("AUDIT_LOCATION_DB", "off")
    # The default case file (./audit.sqlite) of a command or addon given none goes there too, never
    # into the directory the tests run from; tests of the default itself unset it.
    monkeypatch.setenv("AUDIT_DB", str(home / "audit.sqlite"))


@pytest.fixture(scope="session", autouse=True)
def _no_system_location_db() -> Iterator[None]:
    """The same for fixtures of a wider scope, which are set up before the per-test one."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUDIT_LOCATION_DB", "off")
        yield
