"""``audit run``: scan an APK, import its captures and write the report, in one call.

Re-running on the same case file is idempotent: an APK already scanned into the case (same
SHA-256 and app label) is not scanned again, and a capture already imported (same SHA-256 and
label) is not imported twice, so counts never double (``make demo`` can run repeatedly).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.enrich.company import CompanyLookup
from audit.errors import InputError
from audit.models import ScanResult
from audit.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    app: str
    """App label used in the case file."""
    scan: ScanResult
    scanned: bool
    """False when the APK was already in the case file."""
    imports: tuple[Any, ...]
    """``ImportSummary`` of each capture imported now."""
    skipped: tuple[str, ...]
    """Captures already in the case file."""
    output: str
    destinations: int
    flows: int


def _head(path: Path) -> bytes:
    """The first bytes of a file, to sniff its format (b"" when unreadable: the import says why)."""
    try:
        with path.open("rb") as f:
            return f.read(4096)
    except OSError:
        return b""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e
    return h.hexdigest()


def run(
    app_path: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str],
    captures: Sequence[str | os.PathLike[str]] = (),
    device: str | os.PathLike[str] | None = None,
    db: str | os.PathLike[str] = ":memory:",
    mmdb: Sequence[str] = (),
    app: str | None = None,
    companies: CompanyLookup | None = None,
    vantage: str | None = None,
    keylog: str | os.PathLike[str] | None = None,
) -> RunSummary:
    """Scan ``app_path``, import ``captures`` (with the ``device`` profile for data detection) into
    the case file ``db`` under one app label, and write the HTML report to ``output``. ``vantage``
    (an ISO country code) is recorded as where the device was for the captures given (also one
    imported before: it replaces the vantage given then);
    ``keylog`` (an NSS key log) decrypts the TLS of the captures that are pcap/pcapng files."""
    from audit.destinations import enricher_for, record_vantage
    from audit.report.html import write_report
    from audit.static.scanner import app_format, scan_path
    from audit.traffic.importers import PcapImporter, import_file
    from audit.traffic.pii import PiiDetector
    from audit.traffic.profile import load_profile

    apk = Path(app_path)
    for cap in captures:  # before any work: an app given as a capture is a mistake, not "already imported"
        fmt = app_format(cap)
        if fmt is not None:
            raise InputError(
                f"--capture {cap}: an Android app package ({fmt}), not saved traffic; give the app as the first "
                "argument and captures (flow files, HAR, pcap/pcapng) with --capture"
            )
    detector = PiiDetector(load_profile(Path(device)) if device else None)
    with Store(db) as store:
        sha = _sha256(apk)
        previous = [(label, r) for label, r in store.scans(app) if r.app.sha256 == sha]
        if previous:
            label, result = previous[-1]
            scanned = False
            log.info("%s already scanned into %s as %s", apk, db, label)
        else:
            result = scan_path(apk)
            label = app or result.app.package or apk.name
            store.add_scan(result, app=label)
            scanned = True
        if device:
            store.record_input("device-profile", str(device), _sha256(Path(device)), label)
        imports = []
        skipped = []
        for cap in captures:
            cpath = Path(cap)
            is_capture = keylog is not None and PcapImporter.sniff(_head(cpath))
            s = import_file(cpath, store, app=label, detector=detector,
                            keylog=Path(keylog) if is_capture and keylog is not None else None)  # fmt: skip
            if vantage:  # a fact about the capture: also for one imported before
                record_vantage(store, vantage, app=label, sha256=s.sha256, capture=s.path)
            if s.skipped:
                skipped.append(str(cpath))
                log.info("%s already imported for %s", cpath, label)
                continue
            imports.append(s)
        store.verify()
        enricher = enricher_for(store, mmdb)
        report = write_report(store, output, app=label, enricher=enricher, companies=companies)
        return RunSummary(
            app=label, scan=result, scanned=scanned, imports=tuple(imports), skipped=tuple(skipped),
            output=str(output), destinations=len(report.destinations), flows=report.total_flows,
        )  # fmt: skip
