"""Shared test fixtures. Small canned objects only; bigger fixtures live under tests/fixtures/."""

from __future__ import annotations

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
    starts with an empty ``$AUDIT_HOME`` (tests that need one set their own)."""
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path_factory.mktemp("audit-home")))
