"""Fixtures of the static tests: the DEX files assembled from smali (built once per session by
:func:`tests.helpers.dex.built`, skipped without an assembler)."""

from __future__ import annotations

import pytest

from tests.helpers.dex import APKTOOL, SMALI, built


@pytest.fixture
def small_dex() -> bytes:
    """The small DEX: URLs in several classes, non-ASCII text, and string-load patterns planted in
    switch/array payloads and wide literals."""
    if SMALI is None and APKTOOL is None:
        pytest.skip("needs smali or apktool")
    return built("small")


@pytest.fixture
def jumbo_dex() -> bytes:
    """A DEX with more than 65535 strings, the high ones loaded by const-string/jumbo."""
    if SMALI is None and APKTOOL is None:
        pytest.skip("needs smali or apktool")
    return built("jumbo")
