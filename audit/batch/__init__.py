"""Corpus scans (``audit batch``): every package under some paths, on a local pool or a Dask cluster.

:mod:`audit.batch.runner` finds the packages, plans and records; :mod:`audit.batch.backends` runs
the scans (local pool, Dask); :mod:`audit.batch.worker` is where one scan runs, under its limits.
"""

from __future__ import annotations

from audit.batch.backends import Backend, DaskCluster, LocalPool, Task, make_backend
from audit.batch.runner import BatchSummary, Candidate, Progress, discover, run_batch

__all__ = [
    "Backend", "BatchSummary", "Candidate", "DaskCluster", "LocalPool", "Progress", "Task", "discover",
    "make_backend", "run_batch",
]  # fmt: skip
