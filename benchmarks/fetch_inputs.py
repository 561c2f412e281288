#!/usr/bin/env python3
"""Download the two real APKs the static-speed benchmark uses into benchmarks/.cache/.

Usage::

    .venv/bin/python benchmarks/fetch_inputs.py

Both come from package registries (the only network this project's machines reach) and are pinned
by SHA-256, the package archive and the APK extracted from it alike:

* ``Yosemite.apk`` (24.6 MB, 2 DEX files): airtest's Android helper app, shipped inside the airtest
  1.4.3 source distribution on PyPI (``pip download --no-deps --no-binary :all: airtest==1.4.3``).
* ``appium-uiautomator2-server-v10.6.6.apk`` (18.0 MB, 16 DEX files): from the npm package
  ``appium-uiautomator2-server@10.6.6`` (``npm pack``).

Already present and verified files are not downloaded again.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True)
class Input:
    apk: str
    """File name of the APK in the cache."""
    apk_sha256: str
    archive: str
    """File name of the downloaded package archive."""
    archive_sha256: str
    member: str
    """Path of the APK inside the archive."""
    command: tuple[str, ...]
    """How to download the archive into the cache directory (run with cwd = cache)."""


INPUTS = (
    Input(
        apk="Yosemite.apk",
        apk_sha256="f888b95773d505c1640493d0482ec3d9e5a87b8c3796ba63a2a65b7a87f108e1",
        archive="airtest-1.4.3.tar.gz",
        archive_sha256="6208e83ca8d3618e32b8eee23b3e857a0077cd59accf158dd567a81df2a3b84c",
        member="airtest-1.4.3/airtest/core/android/static/apks/Yosemite.apk",
        command=(
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "airtest==1.4.3",
            "-d",
            ".",
        ),
    ),
    Input(
        apk="appium-uiautomator2-server-v10.6.6.apk",
        apk_sha256="8ff760a2a86b487f53090fbdcd5b0360e67d02bb811887d527a9557b0d59c80d",
        archive="appium-uiautomator2-server-10.6.6.tgz",
        archive_sha256="c0ddd247106d51d41749ae3aeb1818df18f46735020ae464f525d016e96f2fe9",
        member="package/apks/appium-uiautomator2-server-v10.6.6.apk",
        command=("npm", "pack", "--silent", "appium-uiautomator2-server@10.6.6"),
    ),
)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified(path: Path, expected: str) -> bool:
    return path.exists() and sha256(path) == expected


def fetch(item: Input, cache: Path = CACHE) -> Path:
    """Return the verified APK, downloading and extracting it first if needed."""
    apk = cache / item.apk
    if verified(apk, item.apk_sha256):
        return apk
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / item.archive
    if not verified(archive, item.archive_sha256):
        if shutil.which(item.command[0]) is None and item.command[0] != sys.executable:
            raise SystemExit(f"{item.command[0]} is needed to download {item.archive}")
        subprocess.run(item.command, cwd=cache, check=True)
        got = sha256(archive) if archive.exists() else "missing"
        if got != item.archive_sha256:
            raise SystemExit(f"{item.archive}: sha256 {got}, expected {item.archive_sha256}")
    with tarfile.open(archive) as tar:
        member = tar.extractfile(item.member)
        if member is None:
            raise SystemExit(f"{item.archive}: {item.member} is not a file")
        apk.write_bytes(member.read())
    got = sha256(apk)
    if got != item.apk_sha256:
        apk.unlink()
        raise SystemExit(f"{item.apk}: sha256 {got}, expected {item.apk_sha256}")
    return apk


def main() -> int:
    for item in INPUTS:
        path = fetch(item)
        print(f"{path}  {path.stat().st_size / 1e6:.1f} MB  sha256 {item.apk_sha256[:16]}… ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
