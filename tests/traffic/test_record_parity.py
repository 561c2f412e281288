"""One exchange, three ways in: live through the recorder, from a mitmproxy flow file, from a HAR
file (written by mitmproxy's own HAR export of the same flow). The records must agree (issue 16:
the live path said ``tls='none'`` and ``host='api.example.com'`` where the file said
``'passthrough'`` and ``'api.example.com.'``). Only ``source`` differs, and the facts a HAR file
does not hold (client address, TLS version, ALPN, SNI) are left out of the HAR comparison."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from mitmproxy.addons.savehar import SaveHar
from mitmproxy.test import taddons

from audit.models import Connection
from audit.store import Store
from audit.traffic.addon import Recorder
from audit.traffic.importers import import_file
from audit.traffic.pii import PiiDetector
from tests.helpers.traffic import http_flow, modern, write_flows

#: What a HAR entry cannot say: who the client was and how TLS was negotiated.
NOT_IN_HAR = {
    "client",
    "sni",
    "tls_version",
    "alpn",
    "end_ts",
    "bytes_out",
    "bytes_in",
    "http_version",
    "error",
}


def _exchange(url: str) -> Any:
    f = http_flow(
        url,
        ip="203.0.113.7",
        port=443 if url.startswith("https") else 80,
        body=b'{"imei": "358240051111110"}',
    )
    f.request.host = "API.Example.com."  # case and a trailing dot: one normalisation for all
    f.request.path = "/v1/report?imei=1&app=com.x&imei=2"
    f.client_conn.sni = "API.Example.com."
    return modern(f)  # a plausible time on every path (mitmproxy's test flows are from 2000)


def _fields(c: Connection, drop: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    d = asdict(c)
    for k in {"source", "request", "findings", *drop}:
        d.pop(k, None)
    return d


def _live(flow: Any, tmp_path: Path) -> Connection:
    db = tmp_path / "live.sqlite"
    r = Recorder(writer="thread")
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_app="com.x")
        r.response(flow)
        r.done()
    with Store(db) as s:
        ((_, c),) = list(s.connections())
    return c


def _imported(path: Path, tmp_path: Path) -> Connection:
    with Store(tmp_path / f"{path.suffix[1:]}.sqlite") as s:
        import_file(path, s, app="com.x", detector=PiiDetector(None))
        ((_, c),) = list(s.connections())
    return c


@pytest.mark.parametrize("url", ["https://api.example.com/v1/report", "http://api.example.com/v1/report"])
def test_live_flow_file_and_har_agree(url: str, tmp_path: Path) -> None:
    live = _live(_exchange(url), tmp_path)
    flows = tmp_path / "x.flows"
    write_flows(flows, [_exchange(url)])
    from_file = _imported(flows, tmp_path)
    har = tmp_path / "x.har"
    har.write_text(json.dumps(SaveHar().make_har([_exchange(url)])), encoding="utf-8")
    from_har = _imported(har, tmp_path)

    assert (live.source, from_file.source, from_har.source) == ("live", "mitm-file", "har")
    assert _fields(live) == _fields(from_file)
    assert _fields(live, NOT_IN_HAR) == _fields(from_har, NOT_IN_HAR)
    assert live.host == "api.example.com" and live.query_keys == ("imei", "app")
    assert live.tls == ("intercepted" if url.startswith("https") else "none")
    for c in (live, from_file, from_har):  # the request content reaches data detection the same way
        assert {f.data_type for f in c.findings} == {"imei"}
