"""The endpoint cap applies while extracting (issue 15): a hostile asset is searched only until the
cap is reached, huge assets are searched in slices cut between tokens, and nothing is lost by it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from audit.static import scanner
from audit.static.endpoints import EndpointExtractor
from audit.static.scanner import _slices, scan_path
from tests.conftest import FIXTURES


def apk_with_asset(tmp_path: Path, text: str, name: str = "assets/endpoints.txt") -> Path:
    out = tmp_path / "app.apk"
    with zipfile.ZipFile(FIXTURES / "apks" / "messenger.apk") as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
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
