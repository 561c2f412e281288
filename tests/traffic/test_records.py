"""The record builder (audit.traffic.records): ``http_connection`` makes the object the dataclass
makes; ``storable``'s quick check of a whole record gives what the field-by-field walk gives, for
every kind of value a field may hold."""

from __future__ import annotations

import dataclasses
import enum
import random
from typing import Any

import pytest

from audit.models import Connection, DataFinding, DnsRecord, HttpRequestData
from audit.traffic import records


class _Port(enum.IntEnum):
    HTTPS = 443


class _Text(str):
    pass


_FINDING = DataFinding("email", "query:m", "plain", "pattern", "j•••g")
_VALUES: list[Any] = [
    None, True, False, "", "api.example.com", "caf\xe9", "x\ud800y", _Text("a\udfff"), 0, 443, -1, 2**63 - 1,
    2**63, -(2**63), -(2**63) - 1, _Port.HTTPS, 0.5, 1e308, float("inf"), float("nan"), -float("inf"),
    (), ("a", "b"), ("a", "\udc80"), (("k", "v"),), (("k", "\ud800"),), (_FINDING,), b"bytes", 3 + 4j,
    HttpRequestData("https://a.example/", (("k", "v"),), b"\xff"),
    HttpRequestData("https://a.example/\ud800", ()),
    HttpRequestData("https://a.example/", (("k\udcff", "v"),)),
]  # fmt: skip


def _record(rng: random.Random, cls: type[Connection] | type[DnsRecord]) -> Connection | DnsRecord:
    base: Connection | DnsRecord = (
        Connection(ts=1.7e9, source="har", protocol="https", host="a.example", query_keys=("q",),
                   request=HttpRequestData("https://a.example/?q=1", (("accept", "*/*"),)))
        if cls is Connection
        else DnsRecord(ts=1.7e9, app="", source="pcap", name="a.example", qtype="A", answers=("203.0.113.1",))
    )  # fmt: skip
    names = [f.name for f in dataclasses.fields(cls)]
    changes = {name: rng.choice(_VALUES) for name in rng.sample(names, rng.randint(0, 3))}
    if rng.random() < 0.7:
        changes.pop("ts", None)
    return dataclasses.replace(base, **changes)


def _state(item: Connection | DnsRecord | None) -> str:
    return repr(None if item is None else (type(item), vars(item)))  # NaN-safe, request included


@pytest.mark.parametrize("cls", [Connection, DnsRecord])
def test_the_quick_check_changes_nothing(
    cls: type[Connection] | type[DnsRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(15)
    items = [_record(rng, cls) for _ in range(3000)]
    quick = [records.storable(item) for item in items]
    assert any(q is item for q, item in zip(quick, items, strict=True))  # the common case: untouched
    monkeypatch.setattr(records, "_clean_already", lambda item: False)
    walked = [records.storable(item) for item in items]
    for item, q, w in zip(items, quick, walked, strict=True):
        assert _state(q) == _state(w), item
        assert (q is item) == (w is item), item


@pytest.mark.parametrize(
    "extra",
    [{}, {"sni": "SNI.Example.", "client": "10.0.0.2:5000", "tls_version": "TLSv1.3", "alpn": "h2",
          "findings": (_FINDING,), "attribution": "uid", "ip": "203.0.113.1", "port": 8443, "status": 204,
          "end_ts": 2.5, "request_content_type": "a/b", "response_content_type": "c/d", "http_version": "HTTP/1.1",
          "error": "reset"}],
)  # fmt: skip
def test_http_connection_is_the_dataclass_object(extra: dict[str, Any]) -> None:
    # http_connection fills the instance dict itself (issue 15): the same fields, values, defaults
    # and order as Connection(...), and the same request content.
    conn = records.http_connection(
        ts=1.5, source="har", app="app", scheme="HTTPS", host="API.Example.com.", method="post",
        target="/v1/x?a=1&b=2#f", url="https://api.example.com/v1/x?a=1&b=2", headers=(("k", "v"),),
        body=b"x" * 10, tls="intercepted", bytes_out=5, bytes_in=6, body_limit=4, **extra,
    )  # fmt: skip
    fields = {k: v for k, v in extra.items() if k != "sni"}
    expected = Connection(
        ts=1.5, source="har", protocol="https", tls="intercepted", app="app", host="api.example.com",
        sni="sni.example" if "sni" in extra else None, method="POST", scheme="https", path="/v1/x",
        query_keys=("a", "b"), bytes_out=5, bytes_in=6,
        request=HttpRequestData("https://api.example.com/v1/x?a=1&b=2", (("k", "v"),), b"xxxx", True), **fields,
    )  # fmt: skip
    assert list(vars(conn).items()) == list(vars(expected).items())
    assert list(vars(conn.request).items()) == list(vars(expected.request).items())  # type: ignore[union-attr]
    assert conn == expected and hash(conn) == hash(expected) and repr(conn) == repr(expected)


@pytest.mark.parametrize("name", ["path", "query_keys", "request", "bogus"])
def test_http_connection_refuses_a_field_it_sets_or_that_is_none(name: str) -> None:
    with pytest.raises(TypeError, match=name):
        records.http_connection(
            ts=1.5, source="har", app="", scheme="http", host="a", method="GET", target="/", url="http://a/",
            headers=(), body=b"", tls="none", bytes_out=0, bytes_in=0, **{name: None},
        )  # fmt: skip
