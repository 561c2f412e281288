"""``audit batch``: every package under some paths, scanned once each, into one case file.

Packages are found by content (zip or DEX magic; a file named like a package is tried too, so that
a broken one is recorded rather than silently skipped; a zip that turns out to hold no Android
package is recorded as ``ignored``). Identity is the SHA-256 of the file: the same app under two
paths is scanned once and recorded once, with both paths. Only files whose size equals another's
are hashed before scanning (files of different sizes cannot be equal); every other hash comes from
the scan itself.

Each outcome is written to the case file as soon as it arrives, in one transaction with its paths,
so a run killed at any point loses only the scans in flight; ``resume`` then skips every package
already recorded (done, failed or ignored) and every path already seen with the same size and
modification time, without hashing it again.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

from audit.batch.backends import Backend, Task
from audit.batch.worker import PACKAGE_EXTENSIONS
from audit.errors import AuditError, InputError
from audit.models import ScanResult
from audit.static.archive import ZIP_MAGICS
from audit.static.scanner import DEX_MAGIC, _sha256
from audit.store import Store

__all__ = ["BatchSummary", "Candidate", "Progress", "discover", "run_batch"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_MEMORY_MB = 4096


@dataclass(frozen=True)
class Candidate:
    """A file that may be a package."""

    path: str
    """Absolute path (``os.path.abspath``: symbolic links are kept as named)."""
    size: int
    mtime: float


@dataclass(frozen=True)
class Progress:
    """Where a running batch is, after each outcome."""

    total: int
    """Packages to scan in this run."""
    done: int
    failed: int
    ignored: int
    elapsed: float
    last: str
    """Path of the package that just finished."""

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.ignored

    @property
    def rate(self) -> float:
        """Packages per minute so far."""
        return 60.0 * self.finished / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far."""
        return (self.total - self.finished) * 60.0 / self.rate if self.rate > 0 else None


@dataclass(frozen=True)
class BatchSummary:
    """What one ``audit batch`` run did."""

    backend: str
    workers: int
    files: int
    """Candidate files found under the paths."""
    other_files: int
    """Files left out: neither package content nor a package name."""
    packages: int
    """Distinct packages to scan in this run."""
    skipped: int
    """Files already recorded in the case file (``--resume``)."""
    duplicates: int
    """Files that are the same package as another file (recorded as extra paths)."""
    done: int
    failed: int
    ignored: int
    """Zip archives that hold no Android package."""
    seconds: float

    @property
    def rate(self) -> float:
        finished = self.done + self.failed + self.ignored
        return 60.0 * finished / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "apps_per_minute": round(self.rate, 1)}

    def describe(self) -> str:
        parts = [f"{self.done} scanned", f"{self.failed} failed"]
        if self.ignored:
            parts.append(f"{self.ignored} not Android packages")
        if self.skipped:
            parts.append(f"{self.skipped} already in the case")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate file{'s' if self.duplicates != 1 else ''}")
        return (
            f"{self.packages} package{'s' if self.packages != 1 else ''}: " + ", ".join(parts)
            + f"; {self.seconds:.1f} s, {self.rate:.1f} apps/min on {self.backend}"
        )  # fmt: skip


def _is_candidate(path: str) -> bool:
    if path.lower().endswith(PACKAGE_EXTENSIONS):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head in ZIP_MAGICS or head == DEX_MAGIC


def discover(roots: Iterable[str | os.PathLike[str]]) -> tuple[list[Candidate], int]:
    """Candidate files under ``roots`` (files or directories, walked recursively without following
    directory links), sorted by path and unique, and the number of other files left out."""
    found: dict[str, Candidate] = {}
    other = 0

    def consider(path: str) -> None:
        nonlocal other
        if path in found:
            return
        try:
            st = os.stat(path)
        except OSError:
            other += 1
            return
        if not os.path.isfile(path):
            return
        if _is_candidate(path):
            found[path] = Candidate(path, st.st_size, st.st_mtime)
        else:
            other += 1

    for root in roots:
        top = os.path.abspath(root)
        if os.path.isdir(top):
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames.sort()
                for name in sorted(filenames):
                    consider(os.path.join(dirpath, name))
        elif os.path.exists(top):
            consider(top)
        else:
            raise InputError(f"{root}: no such file or directory")
    return sorted(found.values(), key=lambda c: c.path), other


def _plan(
    candidates: list[Candidate], store: Store
) -> tuple[dict[str, list[Candidate]], int, list[tuple[str, list[Candidate]]]]:
    """(task path → the candidates it stands for, number skipped, new paths of recorded packages)."""
    known_paths = store.batch_paths()
    outcomes = store.batch_outcomes()
    known_sizes = {size for _, size in outcomes.values() if size is not None}
    skipped = 0
    fresh: list[Candidate] = []
    for c in candidates:
        k = known_paths.get(c.path)
        if k is not None and k[1] == c.size and k[2] == c.mtime and k[0] in outcomes:
            skipped += 1
        else:
            fresh.append(c)
    sizes = Counter(c.size for c in fresh)
    by_sha: dict[str, list[Candidate]] = {}
    tasks: dict[str, list[Candidate]] = {}
    for c in fresh:
        if sizes[c.size] == 1 and c.size not in known_sizes:
            tasks[c.path] = [c]
            continue
        try:
            sha = _sha256(c.path)  # type: ignore[arg-type]
        except OSError:
            tasks[c.path] = [c]
            continue
        by_sha.setdefault(sha, []).append(c)
    extra: list[tuple[str, list[Candidate]]] = []
    for sha, group in by_sha.items():
        if sha in outcomes:
            skipped += len(group)
            extra.append((sha, group))
        else:
            tasks[group[0].path] = group
    return dict(sorted(tasks.items())), skipped, extra


def _tasks(members: dict[str, list[Candidate]], timeout: float, max_memory_mb: int) -> Iterator[Task]:
    for path in members:
        yield Task(path, timeout, max_memory_mb)


def run_batch(
    roots: Iterable[str | os.PathLike[str]],
    store: Store,
    backend: Backend,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_memory_mb: int = DEFAULT_MAX_MEMORY_MB,
    resume: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> BatchSummary:
    """Scan every package under ``roots`` on ``backend`` into ``store``. Without ``resume`` the case
    file must not hold a batch yet (a second run would otherwise look like a resumed one)."""
    given = [str(r) for r in roots]
    if not resume and store.batch_count():
        raise AuditError(
            f"{store.path} already holds a batch of {store.batch_count()} packages: add --resume to continue "
            "it (packages already recorded are skipped), or give another --db"
        )
    start = time.monotonic()
    candidates, other = discover(given)
    members, skipped, extra = _plan(candidates, store)
    for known, group in extra:  # a recorded package found at a new path
        store.add_batch_paths(known, [(c.path, c.size, c.mtime) for c in group])
    run_id = store.start_batch_run(backend.name, given)
    done = failed = ignored = 0
    duplicates = sum(len(g) - 1 for g in members.values())
    for task, answer in backend.run(_tasks(members, timeout, max_memory_mb)):
        group = members[task.path]
        status = str(answer.get("status"))
        sha: str | None = answer.get("sha256")
        if not sha:
            try:
                sha = _sha256(task.path)  # type: ignore[arg-type]
            except OSError:
                sha = f"path:{task.path}"
        result = ScanResult.from_dict(answer["result"]) if status == "done" else None
        fresh = store.record_batch_outcome(
            str(sha), status, [(c.path, c.size, c.mtime) for c in group], result=result,
            reason=answer.get("reason"), attempts=int(answer.get("attempts") or 1), seconds=answer.get("seconds"),
            peak_rss=answer.get("peak_rss"), size=group[0].size,
        )  # fmt: skip
        if not fresh:
            duplicates += len(group)
        elif status == "done":
            done += 1
        elif status == "ignored":
            ignored += 1
        else:
            failed += 1
            log.info("%s: %s", task.path, answer.get("reason"))
        if progress is not None:
            progress(Progress(len(members), done, failed, ignored, time.monotonic() - start, task.path))
    summary = BatchSummary(
        backend=backend.name, workers=backend.workers, files=len(candidates), other_files=other,
        packages=len(members), skipped=skipped, duplicates=duplicates, done=done, failed=failed, ignored=ignored,
        seconds=round(time.monotonic() - start, 3),
    )  # fmt: skip
    store.finish_batch_run(run_id, summary.to_dict())
    return summary
