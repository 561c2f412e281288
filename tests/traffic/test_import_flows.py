"""mitmproxy flow files → connections and DNS records (round trips through the real FlowWriter)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from mitmproxy import tcp, udp
from mitmproxy.test import tflow

from audit.errors import ImportFormatError
from audit.models import DataFinding, HttpRequestData
from audit.store import Store
from audit.traffic.importers import import_file
from audit.traffic.pii import PiiDetector
from audit.traffic.records import MAX_BODY
from tests.conftest import FIXTURES
from tests.fixtures.captures.build_captures import client_hello, quic_initial, tls_record
from tests.helpers.traffic import https_flow, modern_state, write_flows


class RecordingDetector:
    """Stands in for PiiDetector: flags bodies containing b'imei'."""

    def __init__(self) -> None:
        self.seen: list[HttpRequestData] = []

    def scan(self, request: HttpRequestData) -> tuple[DataFinding, ...]:
        self.seen.append(request)
        if b"imei" in request.body:
            return (DataFinding("imei", "body.json:$.imei", "plain", "known", "35•••12"),)
        return ()


def test_flow_types_round_trip(tmp_path: Path) -> None:
    flows = [
        https_flow(body=b'{"imei": "1"}'),
        tflow.twebsocketflow(),
        tflow.ttcpflow(),
        tflow.tudpflow(),
        tflow.tdnsflow(resp=True),
        tflow.tflow(err=True),
    ]
    path = write_flows(tmp_path / "s.flows", flows)
    store = Store()
    det = RecordingDetector()
    s = import_file(path, store, app="com.example.app", detector=det)
    assert (s.format, s.connections, s.dns, s.errors) == ("flows", 6, 1, ())
    conns = [c for _, c in store.connections()]
    by_proto = {c.protocol: c for c in conns}
    assert set(by_proto) == {"https", "ws", "tcp", "udp", "dns", "http"}
    h = by_proto["https"]
    assert (h.host, h.ip, h.port, h.method, h.path, h.status) == (
        "api.example.net",
        "203.0.113.10",
        443,
        "POST",
        "/v1/track",
        200,
    )
    assert h.query_keys == ("uid", "ev")
    assert h.source == "mitm-file" and h.app == "com.example.app"
    assert [f.data_type for f in h.findings] == ["imei"]
    assert len(det.seen) == 3  # every HTTP flow with a request (https, ws upgrade, errored)
    assert by_proto["ws"].bytes_out > 0 and by_proto["ws"].status == 101
    assert by_proto["http"].error == "error" and by_proto["http"].status is None
    assert by_proto["tcp"].bytes_out == len(b"hello") and by_proto["tcp"].bytes_in == len(b"it's me")
    assert by_proto["dns"].host is None  # the resolver is the destination; names go to the dns table
    assert store.dns_names() == {"8.8.8.8": ["dns.google"], "8.8.4.4": ["dns.google"]}
    reqs = dict(store.requests())
    assert any(
        r.body == b'{"imei": "1"}' and r.url.startswith("https://api.example.net/") for r in reqs.values()
    )
    assert [i["kind"] for i in store.inputs()] == ["flows"]


def test_body_capped(tmp_path: Path) -> None:
    big = bytes(random.Random(1).randrange(256) for _ in range(MAX_BODY + 5000))
    store = Store()
    import_file(write_flows(tmp_path / "big.flows", [https_flow(body=big)]), store)
    ((_, req),) = store.requests()
    assert req.body == big[:MAX_BODY] and req.body_truncated


def test_passthrough_tls_and_quic_sni(tmp_path: Path) -> None:
    t = tflow.ttcpflow(
        messages=[
            tcp.TCPMessage(True, tls_record(client_hello("pinned.example.org")), 1.0),
            tcp.TCPMessage(False, b"\x16\x03\x03" + b"x" * 90, 2.0),
        ]
    )
    t.client_conn.timestamp_tls_setup = None  # mitmproxy did not intercept it
    t.client_conn.sni = None
    u = tflow.tudpflow(messages=[udp.UDPMessage(True, quic_initial("video.example.com", b"\x11" * 8), 1.0)])
    u.client_conn.timestamp_tls_setup = None
    u.client_conn.sni = None
    store = Store()
    import_file(write_flows(tmp_path / "pt.flows", [t, u]), store)
    got = {c.protocol: c for _, c in store.connections()}
    assert got["tls"].sni == "pinned.example.org" and got["tls"].host == "pinned.example.org"
    assert got["tls"].tls == "passthrough" and got["tls"].alpn == "h2,http/1.1"
    assert got["quic"].sni == "video.example.com" and got["quic"].alpn == "h3"


def test_failed_tls_handshake(tmp_path: Path) -> None:
    t = tflow.ttcpflow(messages=[], err=True)
    t.client_conn.timestamp_tls_setup = None
    t.client_conn.sni = "pinned.example.org"
    t.client_conn.error = "Client TLS handshake failed"
    store = Store()
    import_file(write_flows(tmp_path / "f.flows", [t]), store)
    ((_, c),) = store.connections()
    assert (c.protocol, c.tls, c.sni, c.error) == ("tls", "failed", "pinned.example.org", "error")


def test_truncated_file_keeps_readable_flows(tmp_path: Path) -> None:
    path = write_flows(tmp_path / "t.flows", [https_flow(host=f"h{i}.example.net") for i in range(3)])
    data = path.read_bytes()
    path.write_bytes(data[:-40])
    store = Store()
    s = import_file(path, store)
    assert s.connections == 2
    assert len(s.errors) == 1 and "truncated" in s.errors[0] and "2 flows" in s.errors[0]
    assert sorted(c.host for _, c in store.connections()) == ["h0.example.net", "h1.example.net"]
    assert store.inputs()[0]["notes"] == list(s.errors)  # the case file says so too


@pytest.mark.parametrize(
    "content, message",
    [
        (b"10:not a flow}", "not a readable mitmproxy flow file"),
        (b"5:hello,", "not a mitmproxy flow file, HAR"),
        (bytes(random.Random(7).randrange(256) for _ in range(2000)), "not a mitmproxy flow file, HAR"),
        (b"", "empty file"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.flows"
    path.write_bytes(content)
    store = Store()
    with pytest.raises(ImportFormatError) as e:
        import_file(path, store)
    assert str(path) in str(e.value) and message in str(e.value)
    assert "\n" not in str(e.value)
    assert store.connection_count() == 0 and store.inputs() == []


def test_bad_file_keeps_earlier_import(tmp_path: Path) -> None:
    store = Store(tmp_path / "case.sqlite")
    good = write_flows(tmp_path / "good.flows", [https_flow(), https_flow(host="b.example.net")])
    import_file(good, store)
    bad = tmp_path / "bad.flows"
    bad.write_bytes(b"99:" + b"{" * 50)
    with pytest.raises(ImportFormatError):
        import_file(bad, store)
    store.close()
    with Store(tmp_path / "case.sqlite") as again:
        assert again.connection_count() == 2
        assert [i["path"] for i in again.inputs()] == [str(good)]


def test_demo_flow_file() -> None:
    store = Store()
    s = import_file(FIXTURES / "captures" / "messenger.flows", store, app="com.example.messenger")
    conns = [c for _, c in store.connections()]
    assert s.connections == len(conns) > 150 and s.errors == ()
    protocols = {c.protocol for c in conns}
    assert {"https", "http", "wss", "tls", "dns"} <= protocols
    failed = [c for c in conns if c.tls == "failed"]
    assert [c.sni for c in failed] == ["gw.messenger-example.cn"]
    assert store.dns_names()["43.156.32.17"] == ["api.messenger-example.cn"]
    assert all(c.ip for c in conns)


def _as_version_17(state: dict) -> dict:
    """A current flow state written back as flow format 17 (mitmproxy 8/9), undoing mitmproxy's own
    migrations 17→18→…→21 (mitmproxy/io/compat.py) step by step."""
    cc, sc = state["client_conn"], state["server_conn"]
    for conn in (cc, sc):  # 21 → 20 → 19: QUIC naming, connection state
        if conn.get("tls_version") == "QUICv1":
            conn["tls_version"] = "QUIC"
        conn["state"] = 0
    # 19 → 18: the old names of the address fields
    cc["address"] = cc.pop("peername")
    cc["tls_extensions"] = []
    sc["ip_address"] = sc.pop("peername")
    sc["source_address"] = sc.pop("sockname")
    sc["via2"] = sc.pop("via", None)
    for conn in (cc, sc):
        conn["tls_established"] = bool(conn.get("timestamp_tls_setup"))
        conn["cipher_name"] = conn.pop("cipher", None)
    cc.pop("proxy_mode", None)  # 18 → 17
    state["version"] = 17
    return state


def test_older_flow_format_is_migrated(tmp_path: Path) -> None:
    from mitmproxy.io import tnetstring

    f = https_flow(host="old.example.net", ip="203.0.113.40")
    path = tmp_path / "old.flows"
    with path.open("wb") as fp:
        tnetstring.dump(_as_version_17(modern_state(f.get_state())), fp)
    store = Store()
    s = import_file(path, store, app="com.old")
    assert s.errors == ()
    ((_, c),) = store.connections()
    assert (c.host, c.ip, c.port, c.tls, c.status) == (
        "old.example.net",
        "203.0.113.40",
        443,
        "intercepted",
        200,
    )


def test_newer_flow_format_is_a_clear_error(tmp_path: Path) -> None:
    from mitmproxy.io import tnetstring

    state = https_flow().get_state()
    state["version"] = 999
    path = tmp_path / "future.flows"
    with path.open("wb") as fp:
        tnetstring.dump(state, fp)
    store = Store()
    with pytest.raises(ImportFormatError) as e:
        import_file(path, store)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert "flow format version 999" in str(e.value)  # mitmproxy's own reason, kept
    assert store.connection_count() == 0


# ---- found by fuzzing (benchmarks/fuzz_import.py) --------------------------------------------


def _deep_list(depth: int) -> bytes:
    out = b"0:]"
    for _ in range(depth):
        out = str(len(out)).encode() + b":" + out + b"]"
    return out


@pytest.mark.parametrize(
    "tail, reason",
    [
        (b"999999999999:4:type,", "Invalid data format"),  # tnetstring.load read(1 TB): MemoryError
        (_deep_list(5000), "nested too deeply"),  # tnetstring.load recursion: RecursionError
    ],
    ids=["huge-length", "deep-nesting"],
)
def test_hostile_record_after_good_flows(tmp_path: Path, tail: bytes, reason: str) -> None:
    path = write_flows(tmp_path / "t.flows", [https_flow()])
    path.write_bytes(path.read_bytes() + tail)
    store = Store()
    s = import_file(path, store)
    assert s.connections == 1 and len(s.errors) == 1 and reason in s.errors[0], s.errors
    alone = tmp_path / "alone.flows"
    alone.write_bytes(tail)
    with pytest.raises(ImportFormatError) as e:
        import_file(alone, Store())
    assert str(e.value).startswith(f"{alone}: not a readable mitmproxy flow file") and reason in str(e.value)


def _dump(path: Path, states: list[dict]) -> Path:
    from mitmproxy.io import tnetstring

    with path.open("wb") as fp:
        for st in states:
            tnetstring.dump(st, fp)
    return path


def test_error_quoting_a_hostile_value_stays_one_short_line(tmp_path: Path) -> None:
    """mitmproxy quotes the offending value as is: "Unknown flow type: <ESC>[2J…"."""
    state = https_flow().get_state()
    state["type"] = "\x1b[2J\u202e" + "x" * 5000
    path = _dump(tmp_path / "t.flows", [state])
    with pytest.raises(ImportFormatError) as e:
        import_file(path, Store())
    msg = str(e.value)
    assert "Unknown flow type" in msg and "\\x1b[2J\\u202e" in msg
    assert msg.isprintable() and len(msg) < len(str(path)) + 250


def test_unexpected_state_key_is_a_clear_error(tmp_path: Path) -> None:
    """Flow.set_state asserts that no unknown keys are left: an AssertionError escaped."""
    state = https_flow().get_state()
    state["bogus"] = b"1"
    path = _dump(tmp_path / "t.flows", [state])
    with pytest.raises(ImportFormatError, match="flow 1 has an unexpected structure"):
        import_file(path, Store())


def test_values_sqlite_cannot_store(tmp_path: Path) -> None:
    """Non-UTF-8 bytes in the path (mitmproxy decodes them to lone surrogates), a status code beyond
    64 bits and a NaN start time (SQLite stores NaN as NULL) made the insert raise."""
    odd = https_flow(host="odd.example.net")
    odd.request.data.path = b"/\xff\xfe?k\xff=1"
    odd.response.status_code = 2**70
    nan = https_flow(host="nan.example.net")
    nan.request.timestamp_start = float("nan")
    path = write_flows(tmp_path / "t.flows", [odd, nan, https_flow()])
    store = Store()
    s = import_file(path, store, detector=PiiDetector(None))
    assert s.connections == 2
    assert s.errors == ("1 record(s) without a usable start time were skipped",)
    c = next(c for _, c in store.connections() if c.host == "odd.example.net")
    assert (c.path, c.query_keys, c.status) == ("/\ufffd\ufffd", ("k\ufffd",), None)


def test_1e300_timestamps_are_flagged_and_the_report_still_renders(tmp_path: Path) -> None:
    """Issue 15: `audit import` accepted these without a word and `audit report` died in time.gmtime."""
    from audit.report.html import write_report

    odd = https_flow(host="odd.example.net")
    odd.request.timestamp_start = odd.request.timestamp_end = 1e300
    odd.response.timestamp_start = odd.response.timestamp_end = 1e300
    path = write_flows(tmp_path / "t.flows", [https_flow(), odd])
    store = Store(tmp_path / "case.sqlite")
    s = import_file(path, store)
    assert s.connections == 2
    assert s.errors == (
        "1 record(s) with a time outside 2008-01-01..now+1 day: kept, but left out of timelines and "
        "first/last-seen times (flow 2 1e+300)",
    )
    assert store.inputs()[0]["notes"] == list(s.errors)
    r = write_report(store, tmp_path / "r.html")
    assert r.total_flows == 2 and len(r.timeline) == 1
    assert "left out of timelines" in (tmp_path / "r.html").read_text(encoding="utf-8")
