"""HAR 1.2 archives (browser dev tools, Charles, HTTP Toolkit, PCAPdroid exports).

Each ``log.entries[]`` item becomes one HTTP :class:`~audit.models.Connection`. Entries are read one
at a time (:mod:`audit.traffic.importers.jsonstream`), so memory does not grow with the file; files
above :data:`MAX_HAR_BYTES` are still refused (a HAR that big is not a browser export: split it, or
capture a flow file).
Fields follow http://www.softwareishard.com/blog/har-12-spec/; ``-1`` sizes mean "unknown".
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from audit.errors import ImportFormatError, one_line
from audit.models import Connection, DnsRecord
from audit.traffic import records
from audit.traffic.importers.base import Importer
from audit.traffic.importers.jsonstream import JsonStream, JsonStreamError

log = logging.getLogger(__name__)

#: Larger HAR files are refused: not for memory (entries are streamed) but time, a few minutes per GiB.
MAX_HAR_BYTES = 4 * 1024 * 1024 * 1024

_JSON_START = re.compile(rb'^(\xef\xbb\xbf)?\s*\{\s*"log"\s*:', re.S)
_PORT_SUFFIX = re.compile(r":(\d{1,5})$")
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


class HarImporter(Importer):
    """Reads HAR 1.2 JSON."""

    format = "har"
    source = "har"
    reads_in_child = True

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        # "log" is the only top-level key of a HAR, and exporters write it first; a JSON object whose
        # first key is something else is still tried when it mentions "entries" early on.
        if _JSON_START.match(head):
            return True
        stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        return stripped.startswith(b"{") and b'"log"' in head and b'"entries"' in head

    def read(self, path: Path, *, app: str = "") -> Iterator[Connection | DnsRecord]:
        size = path.stat().st_size
        if size > MAX_HAR_BYTES:
            raise ImportFormatError(
                f"{path}: HAR file of {size // (1024 * 1024)} MiB is larger than the "
                f"{MAX_HAR_BYTES // (1024 * 1024)} MiB limit; split it or import a mitmproxy flow file instead"
            )
        with path.open("rb") as f:
            # Streamed (issue 15): one entry in memory at a time, however big the file.
            entries = JsonStream(f).array_at(("log", "entries"))
            i = 0
            while True:
                try:
                    entry = next(entries)
                except StopIteration:
                    break
                except UnicodeDecodeError as e:
                    raise ImportFormatError(
                        f"{path}: HAR is not UTF-8 text ({e.reason} at byte {e.start})"
                    ) from e
                except JsonStreamError as e:
                    if e.shape:
                        raise ImportFormatError(
                            f"{path}: JSON is not a HAR archive (no log.entries list)"
                        ) from e
                    raise ImportFormatError(f"{path}: {e}") from e
                except RecursionError as e:
                    raise ImportFormatError(f"{path}: JSON nested too deeply") from e
                self.where = f"log.entries[{i}]"
                try:
                    conn = entry_to_connection(entry, app=app)
                except SkippedEntry as e:
                    self.problems.add(str(e), self.where)
                    continue
                except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
                    raise ImportFormatError(f"{path}: log.entries[{i}] is malformed ({_describe(e)})") from e
                finally:
                    i += 1
                yield conn


class SkippedEntry(ValueError):
    """An entry left out with a warning (the others are imported): its message says why."""


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _describe(e: Exception) -> str:
    # Exception texts quote the offending value: a 100 KB startedDateTime must not become the message.
    return one_line(f"missing {e.args[0]!r}" if isinstance(e, KeyError) else str(e) or type(e).__name__)


def parse_time(value: str) -> float:
    """ISO 8601 ``startedDateTime`` → Unix seconds (``Z`` and offsets accepted)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:  # HAR requires an offset; assume UTC rather than the importer's local zone
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _size(*values: Any) -> int:
    """Sum of the known (non-negative) sizes; -1 / missing count as 0."""
    total = 0
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            total += v
    return total


def _headers(items: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(items, list):
        return ()
    return tuple(
        [(str(h["name"]), str(h.get("value", ""))) for h in items if isinstance(h, dict) and "name" in h]
    )


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _post_body(post: Any) -> tuple[bytes, str | None]:
    """(body bytes, mime type) of ``request.postData``."""
    if not isinstance(post, dict):
        return b"", None
    mime = str(post["mimeType"]) if post.get("mimeType") else None  # like every other field: any JSON type
    text = post.get("text")
    if isinstance(text, str) and text:
        # Not in HAR 1.2 but written by Chrome/HTTP Toolkit/Charles for binary bodies.
        if str(post.get("encoding", "")).lower() == "base64":
            try:
                return base64.b64decode(text, validate=False), mime
            except (binascii.Error, ValueError):
                return text.encode("utf-8", "surrogatepass"), mime
        return text.encode("utf-8", "surrogatepass"), mime
    params = post.get("params")
    if isinstance(params, list) and params:
        pairs = [(str(p.get("name", "")), str(p.get("value", ""))) for p in params if isinstance(p, dict)]
        return "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode(), mime
    return b"", mime


def _port(connection: Any) -> int | None:
    """``entry.connection`` is an opaque connection id in Chrome but ``host:port`` in some tools."""
    if not isinstance(connection, str):
        return None
    m = _PORT_SUFFIX.search(connection.strip())
    if m and ("." in connection or "[" in connection or connection.count(":") == 1):
        port = int(m.group(1))
        return port if 0 < port < 65536 else None
    return None


def entry_to_connection(entry: dict[str, Any], *, app: str = "") -> Connection:
    """One HAR entry → Connection (with the request content kept for data detection)."""
    req = entry["request"]
    resp = entry.get("response") or {}
    url = req["url"]
    if not isinstance(url, str):  # str() would make "{'name': 5}" a path (issue 15)
        raise SkippedEntry(f"whose request.url is {_json_type(url)}, not a string: skipped")
    parts = records.url_parts(url)
    scheme = parts.scheme.lower() or "http"
    headers = _headers(req.get("headers"))
    host = parts.hostname or _header(headers, "host") or _header(headers, ":authority")
    port = _port(entry.get("connection")) or parts.port or _DEFAULT_PORTS.get(scheme)
    query = req.get("queryString")
    names = (
        [str(q.get("name", "")) for q in query if isinstance(q, dict)]
        if isinstance(query, list) and query
        else None
    )
    body, post_mime = _post_body(req.get("postData"))
    raw_ip = entry.get("serverIPAddress")
    ip = (str(raw_ip).strip().strip("[]") or None) if raw_ip else None
    ts = parse_time(str(entry["startedDateTime"]))
    elapsed = entry.get("time")
    end_ts = ts + elapsed / 1000.0 if isinstance(elapsed, (int, float)) and elapsed >= 0 else None
    status = resp.get("status") if isinstance(resp, dict) else None
    content = resp.get("content") if isinstance(resp, dict) else None
    resp_mime = content.get("mimeType") if isinstance(content, dict) else None
    bytes_in = _size(resp.get("headersSize"), resp.get("bodySize")) if isinstance(resp, dict) else 0
    if bytes_in == 0 and isinstance(content, dict):
        bytes_in = _size(content.get("size"))
    bytes_out = _size(req.get("headersSize"), req.get("bodySize")) or len(body)
    error = None
    if isinstance(resp, dict):
        error = resp.get("_error") or resp.get("_failureText") or None
    if not status and error is None:
        error = "no response"
    return records.http_connection(
        ts=ts, end_ts=end_ts, source=HarImporter.source, app=app, scheme=scheme, host=host,
        method=str(req.get("method") or "GET"), target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        url=url, headers=headers, body=body, tls="intercepted" if scheme in ("https", "wss") else "none",
        bytes_out=bytes_out, bytes_in=bytes_in, query_names=names, ip=ip, port=port,
        status=int(status) if status else None, request_content_type=post_mime or _header(headers, "content-type"),
        response_content_type=str(resp_mime) if resp_mime else None,
        http_version=str(req.get("httpVersion")) if req.get("httpVersion") else None, error=str(error) if error else None,
    )  # fmt: skip
