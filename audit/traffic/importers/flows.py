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
from urllib.parse import parse_qsl

from mitmproxy import exceptions, http
from mitmproxy.io import FlowReader

from audit.errors import ImportFormatError
from audit.models import Connection, DnsRecord, HttpRequestData
from audit.traffic import flowconv
from audit.traffic.importers.base import BoundedReader, Importer, cap_body, one_line, unique

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
                raise ImportFormatError(f"{path}: flow {count + 1} has an unexpected structure ({_short(e, repr)})") from e
        for kind, n in sorted(skipped.items()):
            self.errors.append(f"skipped {n} {kind} flow(s): not a traffic flow type this tool understands")


def _short(e: BaseException, show: Any = str) -> str:
    # mitmproxy quotes the offending value as is ("Unknown flow type: <anything>").
    return one_line(show(e) or type(e).__name__)


def _headers(fields: Any) -> tuple[tuple[tuple[str, str], ...], int, str | None]:
    """(decoded headers, approximate size on the wire, content type) in one pass."""
    out = []
    size = 0
    ctype = None
    for k, v in fields:
        size += len(k) + len(v) + 4
        name, value = k.decode("latin-1"), v.decode("latin-1")
        if ctype is None and name.lower() == "content-type":
            ctype = value
        out.append((name, value))
    return tuple(out), size, ctype


def _tls_state(flow: Any, secure: bool) -> str:
    client = flow.client_conn
    if client.tls_established:
        return "intercepted"
    if secure or client.sni or client.tls:
        # The client started TLS but the handshake with mitmproxy never completed: usually a
        # pinned certificate or an untrusted CA on the device.
        return "failed" if (flow.error or client.error) else "passthrough"
    return "none"


def flow_to_records(
    flow: Any, *, app: str = "", source: str = "mitm-file", skipped: dict[str, int] | None = None
) -> list[Connection | DnsRecord]:
    """Convert one mitmproxy flow (as read from a file or seen live) into our records."""
    ftype = getattr(flow, "type", "")
    if ftype == "http":
        return [http_flow_to_connection(flow, app=app, source=source)]
    if ftype in ("tcp", "udp"):
        return [stream_flow_to_connection(flow, app=app, source=source)]
    if ftype == "dns":
        return dns_flow_to_records(flow, app=app, source=source)
    if skipped is not None:
        skipped[ftype or type(flow).__name__] = skipped.get(ftype or type(flow).__name__, 0) + 1
    return []


def http_flow_to_connection(flow: http.HTTPFlow, *, app: str = "", source: str = "mitm-file") -> Connection:
    req, resp = flow.request, flow.response
    common = flowconv.connection_fields(flow.client_conn, flow.server_conn)
    scheme = req.scheme
    protocol = scheme
    headers, header_size, req_ctype = _headers(req.headers.fields)
    bytes_out = len(req.raw_content or b"") + header_size
    bytes_in = 0
    resp_ctype = None
    if resp is not None:
        _, resp_header_size, resp_ctype = _headers(resp.headers.fields)
        bytes_in = len(resp.raw_content or b"") + resp_header_size
    if flow.websocket is not None:
        protocol = "wss" if scheme == "https" else "ws"
        for m in flow.websocket.messages:
            if m.from_client:
                bytes_out += len(m.content)
            else:
                bytes_in += len(m.content)
    body, truncated = cap_body(req.raw_content)
    path, _, query = req.path.partition("?")
    # parse_qsl once: mitmproxy's req.query view re-parses the query on every access.
    query_keys = unique([k for k, _ in parse_qsl(query, keep_blank_values=True)]) if query else ()
    error = flow.error.msg if flow.error else flow.client_conn.error or None
    end = None
    if resp is not None:
        end = resp.timestamp_end
    end = end or req.timestamp_end
    return Connection(
        ts=req.timestamp_start,
        end_ts=end,
        source=source,
        protocol=protocol,
        tls=_tls_state(flow, scheme == "https"),
        app=app,
        host=(req.pretty_host or req.host or "").lower() or None,
        method=req.method,
        scheme=scheme,
        path=path or None,
        query_keys=query_keys,
        status=resp.status_code if resp is not None else None,
        bytes_out=bytes_out,
        bytes_in=bytes_in,
        request_content_type=req_ctype,
        response_content_type=resp_ctype,
        http_version=req.http_version,
        error=error,
        request=HttpRequestData(
            url=req.pretty_url,
            headers=headers,
            body=body,
            body_truncated=truncated,
        ),
        **common,
    )


def stream_flow_to_connection(flow: Any, *, app: str = "", source: str = "mitm-file") -> Connection:
    """TCP/UDP flows: raw streams mitmproxy relayed (including passed-through TLS and QUIC)."""
    return flowconv.stream_connection(flow, app=app, source=source)


def dns_flow_to_records(flow: Any, *, app: str = "", source: str = "mitm-file") -> list[Connection | DnsRecord]:
    """A DNS flow: one DnsRecord per question, plus a ``dns`` connection to the resolver."""
    return flowconv.dns_records(flow, app=app, source=source)
