"""A folder of packages for ``audit batch`` (:func:`make_corpus`), a case filled by a batch of it
(:func:`batch_case`) and what the batch recorded (:func:`outcomes`). Used by the local-pool, dask
and corpus tests."""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

from audit.batch import LocalPool, run_batch
from audit.store import Store
from tests.conftest import FIXTURES


def make_corpus(root: Path) -> Path:
    """apks/, hostile/ and signed/ copied, a duplicate of messenger.apk under another name, a zip
    that is no Android package, and files that are not packages at all."""
    for sub in ("apks", "hostile", "signed"):
        shutil.copytree(FIXTURES / sub, root / sub)
    (root / "dup" / "deeper").mkdir(parents=True)
    shutil.copy(FIXTURES / "apks" / "messenger.apk", root / "dup" / "deeper" / "same-app-other-name.bin")
    with zipfile.ZipFile(root / "dup" / "photos.zip", "w") as z:
        z.writestr("a.txt", "hello")
    (root / "notes.txt").write_text("not a package")
    return root


def batch_case(root: Path, db: Path) -> Path:
    """``db`` filled by a batch of ``root`` on a local pool of 2."""
    pool = LocalPool(2)
    try:
        with Store(db) as store:
            run_batch([root], store, pool)
    finally:
        pool.close()
    return db


def outcomes(db: Path) -> dict[str, Any]:
    """sha256 → (status, reason, sorted paths, stored result dict or None): everything a batch recorded."""
    conn = sqlite3.connect(db)
    paths: dict[str, list[str]] = {}
    for sha, path in conn.execute("SELECT sha256, path FROM batch_paths ORDER BY path"):
        paths.setdefault(sha, []).append(path)
    out = {}
    for sha, status, reason, scan_id in conn.execute(
        "SELECT sha256, status, reason, scan_id FROM batch_apps"
    ):
        row = conn.execute("SELECT result FROM scans WHERE id = ?", (scan_id,)).fetchone()
        out[sha] = (status, reason, paths.get(sha), json.loads(row[0]) if row else None)
    conn.close()
    return out
