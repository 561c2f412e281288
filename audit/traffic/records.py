"""The one builder of traffic records from plain parts, used by every source of traffic.

The live recorder and the flow-file importer (through :func:`audit.traffic.flowconv.http_connection`),
the HAR importer, the pcap importer and any later source build their HTTP records here, so that one
exchange gives the same :class:`~audit.models.Connection` whichever way it reached us: host names
normalised (:func:`audit.names.normalize_host`), query keys parsed once (names only, in first-seen
order), the request body capped for data detection, the protocol derived from the scheme.

Making a record storable (:func:`storable`: lone surrogates, numbers SQLite cannot hold) is the
writers' last step, applied to every record whatever its source: the case import
(:func:`audit.traffic.importers.import_file`) and the live writer
(:class:`audit.traffic.batch_writer.BatchWriter`) both call it.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import operator
import re
import typing
from collections.abc import Iterable
from typing import Any, NamedTuple, TypeVar
from urllib.parse import SplitResult, parse_qsl, urlsplit

from audit.models import Connection, DataFinding, DnsRecord, HttpRequestData
from audit.names import normalize_host

__all__ = [
    "MAX_BODY",
    "cap_body",
    "http_connection",
    "query_keys",
    "query_pairs",
    "record_from_dict",
    "request_data",
    "split_url",
    "url_parts",
    "storable",
    "unique",
    "utf8_text",
]

#: Request bodies kept for data detection are capped at this many bytes (``body_truncated`` says so).
MAX_BODY = 64 * 1024

_PROTOCOLS = frozenset({"http", "https", "ws", "wss"})


def unique(items: Iterable[str]) -> tuple[str, ...]:
    """Items in first-seen order without repeats (query keys)."""
    return tuple(dict.fromkeys(items))


def query_pairs(query: str) -> list[tuple[str, str]]:
    """``parse_qsl(query, keep_blank_values=True)``: without urllib when there is nothing to decode
    (no ``%`` or ``+``), where it only splits at ``&`` and the first ``=`` (the same pairs)."""
    if "%" in query or "+" in query:
        return parse_qsl(query, keep_blank_values=True)
    return [(k, v) for k, _, v in (p.partition("=") for p in query.split("&") if p)]


def query_keys(query: str) -> tuple[str, ...]:
    """The parameter names of a query string, in first-seen order, without repeats."""
    if not query:
        return ()
    try:
        return unique(k for k, _ in query_pairs(query))
    except (ValueError, UnicodeError):
        return ()


#: The common shape of a request URL (scheme, a plain host name or IPv4, a port, path, query), split
#: without urllib (a fifth of a big HAR's import); anything else (user info, IPv6 literals, non-ASCII or whitespace, a port out of
#: range) is left to ``urlsplit``, which gives the same parts.
_SIMPLE_URL = re.compile(
    r"([A-Za-z][A-Za-z0-9+.-]*)://([A-Za-z0-9._-]+)(?::([0-9]{1,5}))?(/[^?#\s]*)?(?:\?([^#\s]*))?(?:#\S*)?"
)


class _Parts(NamedTuple):
    """The parts of ``urlsplit``'s answer that an entry uses, under the same names."""

    scheme: str
    hostname: str
    port: int | None
    path: str
    query: str


def url_parts(url: str) -> _Parts | SplitResult:
    """``urlsplit(url)``, without urllib for the common shape: the same scheme, lower-case host name,
    port, path and query. Raises ``ValueError`` where ``urlsplit`` does."""
    m = _SIMPLE_URL.fullmatch(url)
    if m is not None:
        scheme, host, port, path, query = m.groups()
        number = int(port) if port else None
        if number is None or number <= 65535:
            return _parts((scheme.lower(), host.lower(), number, path or "", query or ""))
    return urlsplit(url)


#: ``_Parts(*values)`` without the Python frame of the named tuple's ``__new__`` (which does this).
_parts = functools.partial(tuple.__new__, _Parts)


def split_url(url: str) -> tuple[str | None, str | None, str]:
    """(host, path, query) of a URL, the path ``/`` when empty; ``(None, None, "")`` when the URL
    cannot be parsed (a Host header such as ``[::1`` makes ``http://[::1/x``)."""
    try:
        parts = url_parts(url)
        return parts.hostname, parts.path or "/", parts.query
    except ValueError:
        return None, None, ""


def cap_body(body: bytes | None, limit: int = MAX_BODY) -> tuple[bytes, bool]:
    """The first ``limit`` bytes of a body and whether it was cut."""
    if not body:
        return b"", False
    if len(body) > limit:
        return body[:limit], True
    return body, False


def request_data(
    url: str, headers: tuple[tuple[str, str], ...], body: bytes | None, limit: int = MAX_BODY
) -> HttpRequestData:
    """What a request carried, for data detection: the body capped (still content-encoded)."""
    capped, truncated = cap_body(body, limit)
    return record_from_dict(
        HttpRequestData, {"url": url, "headers": headers, "body": capped, "body_truncated": truncated}
    )


def http_connection(
    *,
    ts: float,
    source: str,
    app: str,
    scheme: str,
    host: str | None,
    method: str | None,
    target: str,
    url: str,
    headers: tuple[tuple[str, str], ...],
    body: bytes | None,
    tls: str,
    bytes_out: int,
    bytes_in: int,
    protocol: str | None = None,
    query_names: Iterable[str] | None = None,
    body_limit: int = MAX_BODY,
    ip: str | None = None,
    port: int | None = None,
    status: int | None = None,
    end_ts: float | None = None,
    request_content_type: str | None = None,
    response_content_type: str | None = None,
    http_version: str | None = None,
    error: str | None = None,
    **fields: Any,
) -> Connection:
    """One HTTP exchange (or WebSocket) as a :class:`Connection`.

    ``target`` is the request target, path and query (``/v1/x?imei=…``); ``query_names`` the
    parameter names when the source lists them (HAR's ``queryString``), else they are parsed from
    ``target``. ``protocol`` defaults to the scheme (``http``, ``https``, ``ws``, ``wss``; anything
    else is ``http``). Other :class:`Connection` fields (``ip``, ``port``, ``sni``, ``status`` …) pass
    through; ``sni`` is normalised like the host. (The fields most sources give are parameters of
    their own: a name bound to a parameter costs a pointer comparison, one gathered into
    ``fields`` a string comparison with each parameter's name, issue 15.)"""
    path, _, query = target.partition("?")
    query = query.split("#", 1)[0]
    scheme = scheme.lower()
    if fields:
        if not fields.keys() <= _PASSED_THROUGH:
            bad = sorted(fields.keys() - _PASSED_THROUGH)[0]
            raise TypeError(f"http_connection() got an unexpected or repeated Connection field {bad!r}")
        if "sni" in fields:
            fields["sni"] = normalize_host(fields["sni"])
    # The record as pickle makes one, its instance dict in field order with the dataclass's
    # defaults: a third of the frozen dataclass's __init__, which sets each of the 27 fields through
    # object.__setattr__ (issue 15: a big HAR builds 200,000). tests/traffic/test_records.py checks
    # that it is the object Connection(...) makes.
    values = {
        "ts": ts,
        "source": source,
        "protocol": protocol or (scheme if scheme in _PROTOCOLS else "http"),
        "tls": tls,
        "app": app,
        "host": normalize_host(host),
        "sni": None,
        "ip": ip,
        "port": port,
        "client": None,
        "method": method.upper() if method else None,
        "scheme": scheme,
        "path": path or None,
        "query_keys": unique(query_names) if query_names is not None else query_keys(query),
        "status": status,
        "bytes_out": bytes_out,
        "bytes_in": bytes_in,
        "request_content_type": request_content_type,
        "response_content_type": response_content_type,
        "http_version": http_version,
        "tls_version": None,
        "alpn": None,
        "error": error,
        "end_ts": end_ts,
        "findings": (),
        "request": request_data(url, headers, body, body_limit),
        "attribution": "label",
    }
    if fields:
        values.update(fields)
    return record_from_dict(Connection, values)


#: The Connection fields that reach http_connection's ``fields`` (the others are its parameters).
_PASSED_THROUGH = frozenset({"sni", "client", "tls_version", "alpn", "findings", "attribution"})
# What record_from_dict relies on: no field made by a factory, no __post_init__ to run.
assert not any(hasattr(cls, "__post_init__") for cls in (Connection, HttpRequestData, DataFinding, DnsRecord))
assert all(
    f.default_factory is dataclasses.MISSING
    for cls in (Connection, HttpRequestData, DataFinding, DnsRecord)
    for f in dataclasses.fields(cls)
)

_T = TypeVar("_T")


def record_from_dict(cls: type[_T], values: dict[str, Any]) -> _T:
    """A record (a frozen dataclass of :mod:`audit.models`) whose instance dict is ``values``
    (every field, in order), as ``pickle`` makes one: without ``__init__``, which sets each field
    through ``object.__setattr__``. The builders here and the reader child's hand-over use it."""
    obj = object.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    return obj


# --------------------------------------------------------------------------------------------
# Storable: what the writers apply to every record
# --------------------------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_text(s: str) -> str:
    """``s`` with lone surrogates replaced by U+FFFD, so that SQLite (UTF-8) can store it.

    They come from hostile input: ``"\\ud800"`` escapes in a HAR's JSON, and mitmproxy's
    ``surrogateescape`` decoding of non-UTF-8 bytes in a request path or host.
    """
    if s.isascii() or _SURROGATE.search(s) is None:
        return s
    return _SURROGATE.sub("\ufffd", s)


def _dirty(value: Any) -> bool:
    """Whether a str, or a tuple of them (query keys, header pairs), holds a lone surrogate."""
    if isinstance(value, str):
        return not value.isascii() and _SURROGATE.search(value) is not None
    if not isinstance(value, tuple) or not value:
        return False
    try:  # one C-level check for the common tuple of strings or of string pairs (headers)
        flat = "".join(value) if isinstance(value[0], str) else "".join(["".join(v) for v in value])
    except TypeError:  # something else inside (findings): look at each
        return any(_dirty(v) for v in value)
    return not flat.isascii() and _SURROGATE.search(flat) is not None


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return utf8_text(value)
    if isinstance(value, tuple):
        return tuple(_clean(v) for v in value)
    return value


def storable(item: Connection | DnsRecord) -> Connection | DnsRecord | None:
    """The record as SQLite can hold it, or None if it has no usable start time (NaN, missing).

    Strings are made UTF-8-encodable (:func:`utf8_text`); a number SQLite cannot hold (an integer
    beyond 64 bits, a NaN or infinite end time) becomes the field's default (0 bytes, no port …).
    The same object is returned when nothing needed changing, which is the common case.
    """
    if not isinstance(item.ts, (int, float)):
        return None
    if _clean_already(item):
        return item
    changes: dict[str, Any] = {}
    for name, default in _DEFAULTS[type(item)]:
        value = getattr(item, name)
        kind = type(value)
        if value is None or kind is bool or (kind is str and value.isascii()):
            continue
        if kind is int or kind is float:
            if -(2**63) <= value < 2**63 if kind is int else math.isfinite(value):
                continue
            if default is dataclasses.MISSING:  # the start time
                return None
            changes[name] = default
        elif isinstance(value, HttpRequestData):
            if _dirty(value.url) or _dirty(value.headers):
                changes[name] = dataclasses.replace(
                    value, url=utf8_text(value.url), headers=_clean(value.headers)
                )
        elif _dirty(value):
            changes[name] = _clean(value)
    return dataclasses.replace(item, **changes) if changes else item


_DEFAULTS = {
    cls: tuple((f.name, f.default) for f in dataclasses.fields(cls)) for cls in (Connection, DnsRecord)
}
_CONNECTION_TYPES = typing.get_type_hints(Connection)
#: The fields of a Connection by declared type: text (``str`` or ``str | None``), numbers, the rest.
_TEXTS = tuple(n for n, t in _CONNECTION_TYPES.items() if t in (str, str | None))
_NUMBERS = tuple(n for n, t in _CONNECTION_TYPES.items() if t in (int, float, int | None, float | None))
assert set(_TEXTS) | set(_NUMBERS) | {"query_keys", "findings", "request"} == set(_CONNECTION_TYPES)
_texts = operator.attrgetter(*_TEXTS)
_numbers = operator.attrgetter(*_NUMBERS)
_INT_RANGE = (-(2**63), 2**63)


def _clean_already(item: Connection | DnsRecord) -> bool:
    """Whether :func:`storable` would change nothing, found in a few C-level passes over the
    fields of a Connection (its text, query keys, URL and headers joined and ASCII; integers
    within 64 bits; finite floats; no findings yet): the common record, which the field-by-field
    walk then skips. False only means "walk it" (a DNS record, a value of another type …)."""
    if type(item) is not Connection or item.findings:
        return False
    request = item.request
    try:
        text = "".join(filter(None, _texts(item))) + "".join(item.query_keys)
        if request is not None:
            if type(request) is not HttpRequestData:
                return False
            text += request.url + "".join(itertools.chain.from_iterable(request.headers))
    except TypeError:  # a value that is not text where text belongs
        return False
    if not text.isascii():
        return False
    lo, hi = _INT_RANGE
    for value in _numbers(item):
        kind = type(value)
        if kind is int:
            if not lo <= value < hi:
                return False
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif value is not None and kind is not bool:
            return False
    return True
