"""mitmproxy flow files (``mitmdump -w``), read with :class:`mitmproxy.io.FlowReader`.

FlowReader migrates every older format version itself. HTTP flows (including WebSocket), TCP, UDP
and DNS flows are converted; other flow types are skipped with a note in ``errors``. A file that
stops in the middle of a record (mitmdump killed while writing) keeps the flows before the damage and
reports the truncation; a file whose first record is unreadable is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from audit.errors import ImportFormatError, one_line
from audit.models import Connection, DnsRecord
from audit.traffic import flowconv
from audit.traffic.importers.base import BoundedReader, Importer

log = logging.getLogger(__name__)


class FlowsImporter(Importer):
    """Reads mitmproxy's tnetstring flow dumps."""

    format = "flows"
    source = "mitm-file"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        # A dump is a sequence of tnetstrings: "<length>:<payload><type>", each flow a dict ("}").
        colon = head.find(b":", 0, 13)
        if colon <= 0 or not head[:colon].isdigit():
            return False
        length = int(head[:colon])
        end = colon + 1 + length
        if end < len(head):
            return head[end : end + 1] == b"}"
        return head[colon + 1 : colon + 2].isdigit()  # a long first record: its first key's length

    def read(self, path: Path, *, app: str = "") -> Iterator[Connection | DnsRecord]:
        # Imported here: mitmproxy's reader is half the start-up of every `audit import` (0.3 s).
        from mitmproxy import exceptions
        from mitmproxy.io import FlowReader

        count = 0
        skipped: dict[str, int] = {}
        with path.open("rb") as f:
            reader = FlowReader(cast(BinaryIO, BoundedReader(f)))  # it calls read, seek and tell only
            try:
                for flow in reader.stream():
                    count += 1
                    self.where = f"flow {count}"
                    yield from flow_to_records(flow, app=app, source=self.source, skipped=skipped)
            except (exceptions.FlowReadException, RecursionError) as e:
                # tnetstring.load recurses once per nesting level: a record nested 1000 deep is damage.
                reason = "record nested too deeply" if isinstance(e, RecursionError) else _short(e)
                if count == 0:
                    raise ImportFormatError(f"{path}: not a readable mitmproxy flow file ({reason})") from e
                self.errors.append(
                    f"truncated or damaged after flow {count} (byte {f.tell()} of {path.stat().st_size}): "
                    f"{reason}; the {count} flows before it were imported"
                )
            except (KeyError, TypeError, AttributeError, AssertionError) as e:
                # Flow.from_state on a syntactically valid dump with the wrong structure (mitmproxy
                # asserts that no unknown keys are left over).
                raise ImportFormatError(
                    f"{path}: flow {count + 1} has an unexpected structure ({_short(e, repr)})"
                ) from e
        for kind, n in sorted(skipped.items()):
            self.errors.append(f"skipped {n} {kind} flow(s): not a traffic flow type this tool understands")


def _short(e: BaseException, show: Any = str) -> str:
    # mitmproxy quotes the offending value as is ("Unknown flow type: <anything>").
    return one_line(show(e) or type(e).__name__)


def flow_to_records(
    flow: Any, *, app: str = "", source: str = "mitm-file", skipped: dict[str, int] | None = None
) -> list[Connection | DnsRecord]:
    """Convert one mitmproxy flow (as read from a file or seen live) into our records."""
    ftype = getattr(flow, "type", "")
    if ftype == "http":
        return [flowconv.http_connection(flow, app=app, source=source)]
    if ftype in ("tcp", "udp"):
        return [flowconv.stream_connection(flow, app=app, source=source)]
    if ftype == "dns":
        return flowconv.dns_records(flow, app=app, source=source)
    if skipped is not None:
        skipped[ftype or type(flow).__name__] = skipped.get(ftype or type(flow).__name__, 0) + 1
    return []
