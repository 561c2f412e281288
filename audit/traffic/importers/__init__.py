"""Import saved traffic (mitmproxy flow files, HAR, pcap/pcapng) into the case file.

>>> summary = import_file(Path("capture.har"), store, app="com.example.app")  # doctest: +SKIP

The format is sniffed from the file's content (not its extension). Each file is imported in one
transaction: a file that cannot be read raises :class:`~audit.errors.ImportFormatError` and leaves
the case file as it was. A flow file or pcap that is merely truncated (a capture that was cut off)
keeps what could be read and says so in :attr:`ImportSummary.errors`. See docs/import.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import logging
import os
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from audit.errors import ImportFormatError
from audit.models import Connection, DnsRecord
from audit.store import Store
from audit.traffic.importers.base import Detector, Importer, checked
from audit.traffic.importers.detection import PARALLEL_MIN_BYTES, detected
from audit.traffic.importers.flows import FlowsImporter
from audit.traffic.importers.har import HarImporter
from audit.traffic.importers.pcap import DecryptionSummary, PcapImporter
from audit.traffic.importers.pcapng import CaptureApp
from audit.traffic.importers.reader_process import READER_MIN_BYTES, can_read_in_child, read_in_child
from audit.traffic.records import storable, utf8_text

__all__ = [
    "IMPORTERS",
    "TRAFFIC_KINDS",
    "ImportSummary",
    "Importer",
    "PcapImporter",
    "import_file",
    "sniff_format",
]

log = logging.getLogger(__name__)

#: Every importer, in sniffing order.
IMPORTERS: tuple[type[Importer], ...] = (PcapImporter, HarImporter, FlowsImporter)

_HEAD = 4096


@dataclass(frozen=True)
class ImportSummary:
    """What one ``import_file`` call stored."""

    path: str
    format: str
    """flows, har or pcap."""
    connections: int
    dns: int
    """DNS records (one per question with its answers)."""
    errors: tuple[str, ...]
    """Non-fatal problems: a truncated tail, packets that could not be decoded …"""
    sha256: str
    apps: tuple[CaptureApp, ...] = ()
    """The apps a capture names (PCAPdroid's pcapng UID map: uid, package, app name)."""
    decryption: DecryptionSummary | None = None
    """What TLS decryption gave, for a capture with session keys (``--keylog``, pcapng DSB)."""
    skipped: bool = False
    """The same file (by SHA-256) was already imported under the same app label: nothing was
    stored (``import_file(..., replace=True)`` re-imports it)."""
    replaced: int = 0
    """Earlier imports of the same file and label whose rows this import replaced."""

    def to_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["errors"] = list(self.errors)
        d["apps"] = [dataclasses.asdict(a) for a in self.apps]
        d["decryption"] = dataclasses.asdict(self.decryption) if self.decryption is not None else None
        return d


def sniff_format(path: Path, head: bytes) -> type[Importer]:
    """The importer for a file whose first bytes are ``head``."""
    for importer in IMPORTERS:
        if importer.sniff(head):
            return importer
    if not head:
        raise ImportFormatError(f"{path}: empty file")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ImportFormatError(
            f"{path}: a ZIP archive (an APK or app bundle?), not saved traffic: scan apps with `audit scan` or "
            "`audit run APP`; import takes mitmproxy flow files, HAR and pcap/pcapng captures"
        )
    raise ImportFormatError(
        f"{path}: not a mitmproxy flow file, HAR (JSON with log.entries) or pcap/pcapng capture"
    )


#: The ``inputs.kind`` of imported traffic (an importer's ``format``).
TRAFFIC_KINDS = tuple(i.format for i in IMPORTERS)


#: ``inputs`` kind of the rows that keep a capture's UID map: one per app, ``app`` its package,
#: ``path``/``sha256`` the capture's, notes ``uid N`` and ``app name NAME`` (issue 17; no migration).
CAPTURE_APP_INPUT = "capture-app"


def record_capture_apps(store: Store, apps: tuple[CaptureApp, ...], *, path: str, sha256: str) -> None:
    """Keep the apps a capture names (uid, package, app name) in the case, once per capture and app."""
    if not apps:
        return
    known = {(i["sha256"], i["app"]) for i in store.inputs() if i["kind"] == CAPTURE_APP_INPUT}
    for a in apps:
        if (sha256, a.package) not in known:
            notes = [f"uid {a.uid}"] + ([f"app name {utf8_text(a.name)}"] if a.name else [])
            store.record_input(CAPTURE_APP_INPUT, path, sha256, utf8_text(a.package), notes=notes)


def capture_apps(store: Store) -> list[CaptureApp]:
    """Every app the case's captures named (PCAPdroid UID maps), by uid and package."""
    out: dict[tuple[int, str], CaptureApp] = {}
    for i in store.inputs():
        if i["kind"] != CAPTURE_APP_INPUT:
            continue
        uid = next(
            (int(n[4:]) for n in i["notes"] if n.startswith("uid ") and n[4:].lstrip("-").isdigit()), -1
        )
        name = next((n[9:] for n in i["notes"] if n.startswith("app name ")), "")
        out.setdefault((uid, str(i["app"])), CaptureApp(uid, str(i["app"]), name))
    return sorted(out.values(), key=lambda a: (a.uid, a.package))


class _Records:
    """The records an importer reads from one file, each made storable and checked (issue 15);
    :attr:`unusable` counts those left out. A :class:`~audit.traffic.importers.reader_process.Source`:
    iterated here or in the reader process."""

    def __init__(self, importer: Importer, path: Path, app: str, now: float) -> None:
        self.importer = importer
        self.path = path
        self.app = app
        self.now = now
        self.unusable = 0

    def __iter__(self) -> Generator[Connection | DnsRecord, None, None]:
        importer = self.importer
        for record in importer.read(self.path, app=self.app):
            item = storable(record)
            if item is None:
                self.unusable += 1
                continue
            yield checked(item, importer.where, importer.problems, self.now)

    def state(self) -> tuple[dict[str, object], int]:
        return vars(self.importer), self.unusable

    def restore(self, state: object) -> None:
        importer, unusable = cast(tuple[dict[str, object], int], state)
        vars(self.importer).update(importer)
        self.unusable = unusable


#: Objects frozen before any caller could freeze some: Python 3.12 starts with a few hundred of its
#: own in the permanent generation (3.11 with none); more than these means the caller tunes the GC.
_FROZEN_AT_START = gc.get_freeze_count()


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """The cyclic garbage collector's youngest generation collected every 100,000 allocations
    instead of 700, and what exists before the import left out of its full collections, while an
    import runs (and in its reader child, forked inside): an import makes records by the hundred
    thousand, none in a reference cycle, and each collection walks what survived the last (issue
    15: 3 % of a big HAR's instructions in each process). Set back afterwards; left alone when
    the caller tunes the collector itself (disabled, objects frozen) or runs other threads (which
    could be importing too, and would set back each other's setting)."""
    frozen = gc.get_freeze_count()
    if not gc.isenabled() or frozen > _FROZEN_AT_START or threading.active_count() > 1:
        yield
        return
    threshold = gc.get_threshold()
    # unfreeze() thaws every frozen object: freeze only when nothing was (Python 3.12 starts with
    # some of its own frozen, which must stay so)
    own_freeze = frozen == 0
    if own_freeze:
        gc.freeze()
    gc.set_threshold(max(threshold[0], 100_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if own_freeze:
            gc.unfreeze()


def import_file(
    path: Path,
    store: Store,
    *,
    app: str = "",
    detector: Detector | None = None,
    keylog: Path | None = None,
    replace: bool = False,
) -> ImportSummary:
    """Read one traffic file and store its connections and DNS records in one transaction.

    ``app`` labels every row the capture ties to no app (a PCAPdroid capture's per-packet app is
    kept: :func:`audit.traffic.importers.pcap.app_label`); ``detector``
    (``audit.traffic.pii.PiiDetector``) fills ``Connection.findings`` from request content;
    ``keylog`` is an NSS key log for a capture's TLS (decrypted with tshark, docs/import.md).
    A file already imported into the case under the same label (same SHA-256) is not read again
    (``skipped``: counts never double); with ``replace`` it is, and its earlier rows are replaced in
    the same transaction.
    """
    path = Path(path)
    app = utf8_text(app)
    if path.exists() and not path.is_file():
        # A FIFO or device (/dev/zero) would block or never end.
        raise ImportFormatError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(_HEAD)
            digest = hashlib.sha256(head)
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as e:
        raise ImportFormatError(f"{path}: cannot read ({e.strerror or e})") from e
    importer = sniff_format(path, head)()
    if keylog is not None:
        if not isinstance(importer, PcapImporter):
            raise ImportFormatError(
                f"{path}: --keylog applies to pcap/pcapng captures, not to a {importer.format} file"
            )
        importer.keylog = Path(keylog)
    sha256 = digest.hexdigest()
    # A file name is bytes on Linux: one that is not UTF-8 is stored with \xNN escapes.
    name = os.fsencode(path).decode("utf-8", "backslashreplace")
    earlier = store.imported_inputs(sha256, app, TRAFFIC_KINDS)
    if earlier and not replace:
        return ImportSummary(path=name, format=importer.format, connections=0, dns=0, errors=(), sha256=sha256,
                             skipped=True)  # fmt: skip

    reading = _Records(importer, path, app, time.time())
    items: Iterator[Connection | DnsRecord]
    if importer.reads_in_child and size >= READER_MIN_BYTES and can_read_in_child():
        # A big HAR is read in a child while detection and rows are done here: the halves overlap.
        items = read = read_in_child(reading, name=name, detector=detector)
    else:
        items = read = iter(reading)
        if detector is not None:
            items = detected(read, detector, parallel=size >= PARALLEL_MIN_BYTES)

    def notes() -> list[str]:
        found = list(importer.errors) + importer.problems.lines()
        if reading.unusable:
            found.append(f"{reading.unusable} record(s) without a usable start time were skipped")
        return [utf8_text(n) for n in found]

    with contextlib.closing(read), _fewer_collections():  # a failing import stops the reader child at once
        n_conn, n_dns = store.add_traffic(
            items, kind=importer.format, path=name, sha256=sha256, app=app, notes=notes, replaces=earlier
        )
    apps = tuple(sorted(getattr(importer, "apps", {}).values(), key=lambda a: a.uid))
    record_capture_apps(store, apps, path=name, sha256=sha256)
    errors = notes()
    for err in errors:  # the caller shows them (ImportSummary.errors): logged for -v only
        log.info("%s: %s", path, err)
    return ImportSummary(
        path=name, format=importer.format, connections=n_conn, dns=n_dns,
        errors=tuple(errors), sha256=sha256, replaced=len(earlier),
        apps=apps,
        decryption=getattr(importer, "decryption", None),
    )  # fmt: skip
