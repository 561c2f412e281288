"""``audit pii``: re-run personal-data detection over the requests stored in a case file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from audit.models import DataFinding
from audit.store import Store
from audit.traffic.pii.detector import PiiDetector


@dataclass(frozen=True)
class PiiSummaryRow:
    """Personal data of one type seen going to one host (masked values only)."""

    data_type: str
    host: str
    requests: int
    """Requests to the host that carried the type."""
    confidence: str
    """``known`` if any finding matched a device-profile value, else ``pattern``."""
    encodings: tuple[str, ...]
    locations: tuple[str, ...]
    masked: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_type": self.data_type,
            "host": self.host,
            "requests": self.requests,
            "confidence": self.confidence,
            "encodings": list(self.encodings),
            "locations": list(self.locations),
            "masked": list(self.masked),
        }


@dataclass(frozen=True)
class PiiRescan:
    """Result of :func:`rescan_store`."""

    requests: int
    """Stored requests scanned."""
    with_findings: int
    rows: tuple[PiiSummaryRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "with_findings": self.with_findings,
            "summary": [r.to_dict() for r in self.rows],
        }


def summarize(items: Iterable[tuple[str, Iterable[DataFinding]]]) -> tuple[PiiSummaryRow, ...]:
    """Group (host, findings of one request) by data type and host."""
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for host, findings in items:
        seen: set[str] = set()
        for f in findings:
            a = acc.setdefault(
                (f.data_type, host),
                {"requests": 0, "known": False, "enc": set(), "loc": set(), "masked": set()},
            )
            if f.data_type not in seen:
                a["requests"] += 1
                seen.add(f.data_type)
            a["known"] = a["known"] or f.confidence == "known"
            a["enc"].add(f.encoding)
            a["loc"].add(f.location)
            a["masked"].add(f.masked)
    rows = [
        PiiSummaryRow(
            data_type=t,
            host=h,
            requests=a["requests"],
            confidence="known" if a["known"] else "pattern",
            encodings=tuple(sorted(a["enc"])),
            locations=tuple(sorted(a["loc"])),
            masked=tuple(sorted(a["masked"])),
        )
        for (t, h), a in acc.items()
    ]
    rows.sort(key=lambda r: (r.data_type, -r.requests, r.host))
    return tuple(rows)


def rescan_store(store: Store, detector: PiiDetector, app: str | None = None) -> PiiRescan:
    """Re-run detection over every stored request of the case (or of one app label), replace the
    stored findings of those connections, and summarise by data type and destination host."""
    hosts = {cid: (c.host or c.ip or "") for cid, c in store.connections(app)}
    results: list[tuple[int, tuple[DataFinding, ...]]] = [
        (cid, detector.scan(request)) for cid, request in store.requests(app)
    ]
    for cid, findings in results:
        store.replace_findings(cid, findings)
    rows = summarize((hosts.get(cid, ""), findings) for cid, findings in results)
    return PiiRescan(len(results), sum(1 for _, f in results if f), rows)
