"""The two-process scan (DEX here, everything else in a forked child) gives exactly what the
sequential scan gives, errors included."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from audit.errors import ArchiveError
from audit.static import scanner
from audit.static.scanner import scan_path
from audit.static.signatures import SignatureDb, load_signatures
from tests.conftest import FIXTURES

APKS = sorted((FIXTURES / "apks").glob("*.apk"))
BUNDLES = [FIXTURES / "apks" / n for n in ("messenger.apks", "messenger.xapk", "messenger.apkm")]
HOSTILE = FIXTURES / "hostile"
PARTIAL = [HOSTILE / n for n in ("traversal.apk", "corrupt_dex.apk", "garbled_manifest.apk", "missing_manifest.apk",
                                 "truncated.apk")]  # fmt: skip


@pytest.fixture(scope="module")
def sigs() -> SignatureDb:
    return load_signatures()


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Force the parallel path for any size and count the forks it makes."""
    calls: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        pid = real_fork()
        if pid:
            calls.append(pid)
        return pid

    monkeypatch.setattr(scanner, "PARALLEL_MIN_DEX", 0)
    monkeypatch.setattr(scanner.os, "fork", counting_fork)
    monkeypatch.delenv("AUDIT_NO_FORK", raising=False)
    return calls


@pytest.mark.parametrize("path", APKS + BUNDLES + PARTIAL, ids=lambda p: p.name)
def test_parallel_equals_sequential(
    path: Path, sigs: SignatureDb, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    parallel = scan_path(path, signatures=sigs)
    assert forks, "the parallel path was not taken"
    n = len(forks)  # one per inner APK of a bundle
    monkeypatch.setenv("AUDIT_NO_FORK", "1")
    sequential = scan_path(path, signatures=sigs)
    assert len(forks) == n
    assert parallel == sequential
    assert parallel.to_dict() == sequential.to_dict()


def test_error_in_the_child_is_raised_in_the_parent(sigs: SignatureDb, forks: list[int]) -> None:
    # zipbomb_total.apk has its bomb among the assets, which the child reads.
    with pytest.raises(ArchiveError, match=r"zipbomb_total\.apk: assets/chunk00\.js has a compression ratio"):
        scan_path(HOSTILE / "zipbomb_total.apk", signatures=sigs)
    assert forks


def test_child_without_answer_falls_back_to_reading_here(
    sigs: SignatureDb, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def dying_child(*args: object) -> None:
        os._exit(3)

    monkeypatch.setattr(scanner, "_child_scan", dying_child)
    messenger = FIXTURES / "apks" / "messenger.apk"
    got = scan_path(messenger, signatures=sigs)
    monkeypatch.setenv("AUDIT_NO_FORK", "1")
    assert got == scan_path(messenger, signatures=sigs)


def test_no_fork_with_other_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIT_NO_FORK", raising=False)
    monkeypatch.setattr(threading, "active_count", lambda: 2)
    assert not scanner._can_fork()
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert scanner._can_fork() == hasattr(os, "fork")


def test_child_takes_dex_files_to_balance_the_bytes() -> None:
    import zipfile

    def entry(name: str, size: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name)
        info.compress_size = size
        return info

    entries = [entry("AndroidManifest.xml", 10), entry("classes.dex", 500), entry("classes2.dex", 400),
               entry("classes3.dex", 300), entry("res/a.xml", 90), entry("classes4.dex", 100)]  # fmt: skip
    child = scanner._child_share(entries)
    # largest DEX here; then the child (100 bytes of others) takes 400, the parent 300, the child 100
    assert child == {0, 2, 4, 5}
    assert scanner._child_share([entry("classes.dex", 5), entry("lib/x.so", 10**6)]) == {1}  # DEX stays here
    # Entries the scan skips (images, signatures) weigh nothing: the child takes the second DEX.
    skipped = [entry("classes.dex", 500), entry("classes2.dex", 400), entry("res/drawable/a.png", 10**6),
               entry("META-INF/CERT.RSA", 10**5)]  # fmt: skip
    assert scanner._child_share(skipped) == {1, 2, 3}


@pytest.mark.parametrize(
    ("name", "parent_reads"),
    [("multidex.apk", "classes.dex"), ("multidex.apk", "classes3.dex"), *[(b.name, "none") for b in BUNDLES]],
)
def test_dex_files_split_between_both_processes(
    sigs: SignatureDb, forks: list[int], monkeypatch: pytest.MonkeyPatch, name: str, parent_reads: str
) -> None:
    # The fixtures' DEX files are tiny, so the byte balance keeps them all here: force the child
    # to read DEX files (every one, for the bundles, each of whose inner APKs forks anew).
    monkeypatch.setattr(
        scanner,
        "_child_share",
        lambda entries: {i for i, e in enumerate(entries) if e.filename != parent_reads},
    )
    path = FIXTURES / "apks" / name
    parallel = scan_path(path, signatures=sigs)
    assert forks
    monkeypatch.setenv("AUDIT_NO_FORK", "1")
    sequential = scan_path(path, signatures=sigs)
    assert parallel == sequential and parallel.to_dict() == sequential.to_dict()
