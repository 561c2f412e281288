"""The endpoint cap applies while extracting (issue 15): a hostile asset is searched only until the
cap is reached, huge assets are searched in slices cut between tokens, and nothing is lost by it."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from audit import names
from audit.static import endpoints, scanner
from audit.static.endpoints import EndpointExtractor
from audit.static.scanner import _slices, scan_path
from tests.conftest import FIXTURES


def apk_with_asset(tmp_path: Path, text: str, name: str = "assets/endpoints.txt") -> Path:
    out = tmp_path / "app.apk"
    with (
        zipfile.ZipFile(FIXTURES / "apks" / "messenger.apk") as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z,
    ):
        for info in src.infolist():
            if info.filename == "AndroidManifest.xml":
                z.writestr(info, src.read(info))
        z.writestr(name, text)
    return out


def test_search_stops_at_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_NO_FORK", "1")
    monkeypatch.setattr(scanner, "MAX_ENDPOINTS", 100)
    monkeypatch.setattr(scanner, "SEARCH_SLICE", 4096)
    classified: list[str] = []
    real = EndpointExtractor.classify

    def counting(self: EndpointExtractor, kind: str, raw: str, start: int = 0) -> object:
        classified.append(raw)
        return real(self, kind, raw, start)

    monkeypatch.setattr(EndpointExtractor, "classify", counting)
    urls = [f"https://h{i}.cdn{i % 10}.example.com/p/{i}" for i in range(20_000)]
    result = scan_path(apk_with_asset(tmp_path, "\n".join(urls)))
    assert len(result.endpoints) == 100
    assert any("more than 100 distinct endpoint strings" in e for e in result.errors)
    # Only the first slices were searched: 101 URLs classified (the one that hit the cap), not 20,000.
    assert len(classified) <= 101 + 10, len(classified)


def test_slices_cut_between_tokens_and_lose_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_NO_FORK", "1")
    text = " ".join(f"https://api{i}.example.org/v{i}?x=1 host{i}.example.net\x00\x01" for i in range(500))
    lib = "lib/arm64-v8a/libhostile.so"  # a native library: binary, NULs and all
    whole = scan_path(apk_with_asset(tmp_path, text, lib))
    monkeypatch.setattr(scanner, "SEARCH_SLICE", 97)  # cuts fall inside tokens: moved to the next separator
    sliced = scan_path(apk_with_asset(tmp_path, text, lib))
    assert [e.value for e in sliced.endpoints] == [e.value for e in whole.endpoints]
    assert len([e for e in whole.endpoints if e.sources[0].file == lib]) == 1000


@pytest.mark.parametrize("size", [0, 1, 96, 97, 98, 500])
def test_slices_cover_the_data_exactly(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    monkeypatch.setattr(scanner, "SEARCH_SLICE", 10)
    data = bytes((i * 37) % 256 for i in range(size))
    pieces = list(_slices(data))
    assert b"".join(pieces) == data
    for piece in pieces[1:]:  # every cut is at a byte no endpoint holds
        assert not 0x21 <= piece[0] <= 0x7E


# ---- found by benchmarks/fuzz_static.py (issue 15, hostile assets) ---------------------------------


class _Window:
    """Stands in for a compiled pattern and records how much text each search looked at."""

    def __init__(self, pattern: Any) -> None:
        self.pattern, self.widths = pattern, []

    def search(self, text: str, pos: int = 0, endpos: int | None = None) -> Any:
        end = len(text) if endpos is None else endpos
        self.widths.append(end - pos)
        return self.pattern.search(text, pos, end)


def test_bare_host_context_looks_at_a_bounded_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """An asset of bare host names on one line: the list-entry test once searched the whole text
    before each host (2.7 MB of names took minutes); it looks at the 66 characters before it."""
    window = _Window(endpoints._LIST_BEFORE)
    monkeypatch.setattr(endpoints, "_LIST_BEFORE", window)
    text = " ".join(f"s{i}.x{i % 101}.example.org" for i in range(3000))
    found = [c for c in EndpointExtractor().find(text) if c.kind == "host"]
    assert len(found) == 3000 and window.widths and max(window.widths) <= 66
    # a hosts-file line is still a list entry, at the start of the text or of a line
    for doc in ("0.0.0.0 ads.example.com", "x\n127.0.0.1 ads.example.com", "||ads.example.com"):
        (c,) = [c for c in EndpointExtractor().find(doc) if c.kind == "host" and c.host == "ads.example.com"]
        assert c.context == "list", doc
    (c,) = [
        c
        for c in EndpointExtractor().find("k" * 100 + " 0.0.0.0 ads.example.com")
        if c.host == "ads.example.com"
    ]
    assert c.context != "list"


def test_host_names_are_not_parsed_as_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each endpoint's host went through ipaddress (a ValueError raised and caught, five times per
    URL): most of the cost of a capped hostile asset. A name is told from an address first."""
    calls: list[str] = []
    real = names.ipaddress.ip_address
    monkeypatch.setattr(names.ipaddress, "ip_address", lambda s: calls.append(s) or real(s))
    assert names.parse_ip("h1.cdn1.example1.com") is None and names.parse_ip("localhost") is None
    assert calls == []
    assert (
        str(names.parse_ip("[fe80::1%wlan0]")) == "fe80::1"
        and str(names.parse_ip("::ffff:10.0.0.1")) == "10.0.0.1"
    )
    assert str(names.parse_ip("DEAD:beef::1")) == "dead:beef::1" and names.parse_ip("1.2.3.4 ") is not None
    assert (
        names.parse_ip("1.2.3") is None and names.parse_ip("") is None and names.parse_ip("١.٢.٣.٤") is None
    )
