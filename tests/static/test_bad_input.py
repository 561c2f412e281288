"""Hostile inputs (tests/fixtures/hostile/README.md): a one-line error naming the file and the problem,
or a partial result whose ``errors`` say what was skipped; never a traceback, hang or huge allocation."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import ArchiveError, DexError, InputError
from audit.static.archive import Limits
from audit.static.scanner import scan_path
from audit.static.signatures import SignatureDb, load_signatures
from tests.conftest import FIXTURES

HOSTILE = FIXTURES / "hostile"
MIB = 1 << 20


@pytest.fixture(scope="module")
def sigs() -> SignatureDb:
    return load_signatures()


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("not_a_zip.apk", ArchiveError, "not_a_zip.apk: not a zip archive"),
        ("empty.apk", InputError, "empty.apk: empty file"),
        ("zipbomb.apk", ArchiveError, "zipbomb.apk: classes.dex has a compression ratio over 200:1 (zip bomb?)"),
        ("zipbomb_total.apk", ArchiveError, "zipbomb_total.apk: assets/chunk00.js has a compression ratio"),
        ("nested.apks", ArchiveError, "nested.apks: no APK inside the bundle (nested bundle inner.apks not opened"),
        ("corrupt.dex", DexError, "corrupt.dex: not a DEX file (bad magic"),
    ],
)
def test_fatal(name: str, error: type[Exception], message: str, sigs: SignatureDb) -> None:
    with pytest.raises(error) as info:
        scan_path(HOSTILE / name, signatures=sigs)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith(str(HOSTILE / name))


def test_truncated_apk_gives_a_partial_result(sigs: SignatureDb) -> None:
    """The first half of messenger.apk: the manifest and assets before the cut are recovered from their
    local headers; the DEX cut in the middle is a note."""
    result = scan_path(HOSTILE / "truncated.apk", signatures=sigs)
    assert result.app.package == "com.example.messenger" and result.app.version_name == "3.2.1"
    assert "android.permission.INTERNET" in result.permissions
    assert result.errors[0].startswith("truncated or corrupt zip archive (no readable central directory): 6 entries")
    assert "classes.dex: cannot be read (data cut off)" in result.errors
    values = {e.value for e in result.endpoints}
    assert {"https://config.messenger-example.cn/v1", "wss://im.messenger-example.cn/ws"} <= values
    assert all(s.kind in ("asset", "manifest") for e in result.endpoints for s in e.sources)


def test_zip_cut_before_any_entry_is_fatal(tmp_path: Path, sigs: SignatureDb) -> None:
    p = tmp_path / "cut.apk"
    p.write_bytes((HOSTILE / "truncated.apk").read_bytes()[:20])
    with pytest.raises(ArchiveError, match=r"cut\.apk: truncated or corrupt zip archive"):
        scan_path(p, signatures=sigs)


def test_total_limit_on_its_own(sigs: SignatureDb) -> None:
    limits = Limits(ratio=10**6, total=48 * MIB)
    with pytest.raises(ArchiveError, match=r"zipbomb_total\.apk: more than 48 MiB decompressed in total"):
        scan_path(HOSTILE / "zipbomb_total.apk", signatures=sigs, limits=limits)


def test_entry_limit_on_its_own(sigs: SignatureDb) -> None:
    limits = Limits(ratio=10**6, dex=16 * MIB)
    with pytest.raises(ArchiveError, match=r"zipbomb\.apk: classes\.dex decompresses to more than 16 MiB"):
        scan_path(HOSTILE / "zipbomb.apk", signatures=sigs, limits=limits)


def test_traversal_entries_skipped(sigs: SignatureDb) -> None:
    result = scan_path(HOSTILE / "traversal.apk", signatures=sigs)
    assert result.app.package == "com.example.messenger"
    for name in ("../../evil.txt", "/abs/path", "assets/../../../evil2.txt"):
        assert f"unsafe entry name {name!r} skipped" in result.errors
    assert not any("traversal.evil" in e.value for e in result.endpoints)
    assert any(e.value == "https://graph.facebook.com/v16.0" for e in result.endpoints)


def test_corrupt_dex_is_a_partial_result(sigs: SignatureDb) -> None:
    result = scan_path(HOSTILE / "corrupt_dex.apk", signatures=sigs)
    assert result.app.package == "com.example.messenger"
    assert "android.permission.INTERNET" in result.permissions
    assert len(result.errors) == 1 and result.errors[0].startswith("classes.dex: corrupt DEX")
    assert all(s.kind != "dex" for e in result.endpoints for s in e.sources)


def test_garbled_manifest_is_a_partial_result(sigs: SignatureDb) -> None:
    result = scan_path(HOSTILE / "garbled_manifest.apk", signatures=sigs)
    assert result.app.package is None
    assert result.errors == ("AndroidManifest.xml: garbled manifest (not a binary XML file)",)
    assert any(e.value == "https://app-measurement.com/a" for e in result.endpoints)


def test_missing_manifest_is_a_partial_result(sigs: SignatureDb) -> None:
    result = scan_path(HOSTILE / "missing_manifest.apk", signatures=sigs)
    assert result.app.package is None and result.permissions == ()
    assert "AndroidManifest.xml missing (no package name or permissions)" in result.errors
    assert any(e.startswith("resources.arsc: cannot be parsed") for e in result.errors)
    assert len(result.endpoints) > 10


def test_directory_and_missing_path(tmp_path: Path, sigs: SignatureDb) -> None:
    with pytest.raises(InputError, match="is a directory"):
        scan_path(HOSTILE, signatures=sigs)
    with pytest.raises(InputError, match=r"nope\.apk: no such file"):
        scan_path(tmp_path / "nope.apk", signatures=sigs)


def test_unknown_content(tmp_path: Path, sigs: SignatureDb) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello https://example.org\n")
    with pytest.raises(InputError, match=r"notes\.txt: not an APK, app bundle or DEX file"):
        scan_path(p, signatures=sigs)


@pytest.mark.parametrize("cut", [8, 40, 0x70, 400])
def test_truncated_bare_dex(tmp_path: Path, cut: int, sigs: SignatureDb) -> None:
    p = tmp_path / "cut.dex"
    p.write_bytes((FIXTURES / "apks" / "messenger.dex").read_bytes()[:cut])
    with pytest.raises(DexError) as info:
        scan_path(p, signatures=sigs)
    assert str(info.value).startswith(f"{p}: ")
