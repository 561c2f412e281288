"""One conversion for raw streams and DNS flows: a flow seen live by the recorder and the same flow
read back from a mitmproxy flow file give the same rows (only ``source`` differs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import tcp, udp
from mitmproxy.test import tflow

from audit.store import Store
from audit.traffic import flowconv
from audit.traffic.addon import Recorder, dns_records, stream_connection
from audit.traffic.importers import import_file
from tests.fixtures.captures.build_captures import client_hello, quic_initial, tls_record
from tests.helpers.traffic import write_flows


def _file_stream(flow: Any, **kw: Any) -> Any:
    """The flow-file importer's conversion of a raw stream (the recorder's, with its source)."""
    return flowconv.stream_connection(flow, source="mitm-file", **{"app": "", **kw})


def _bare(f: Any) -> Any:
    """tflow's defaults describe an intercepted connection; a relayed stream has none of that."""
    f.client_conn.timestamp_tls_setup = None
    f.client_conn.sni = f.client_conn.alpn = f.client_conn.tls_version = None
    f.server_conn.sni = f.server_conn.alpn = f.server_conn.tls_version = None
    return f


def _passthrough_tls() -> Any:
    f = tflow.ttcpflow(messages=[tcp.TCPMessage(True, tls_record(client_hello("pinned.example.org")), 1.0),
                                 tcp.TCPMessage(False, b"\x16\x03\x03" + b"x" * 90, 2.0)])  # fmt: skip
    _bare(f).client_conn.sni = "pinned.example.org"
    f.server_conn.peername = ("203.0.113.20", 443)
    return f


def _failed_handshake() -> Any:
    f = _bare(tflow.ttcpflow(messages=[], err=True))
    f.client_conn.sni = "gw.example.cn"
    f.client_conn.error = "Client TLS handshake failed"
    f.server_conn.peername = ("203.0.113.21", 443)
    return f


def _quic() -> Any:
    f = _bare(
        tflow.tudpflow(messages=[udp.UDPMessage(True, quic_initial("video.example.com", b"\x11" * 8), 1.0)])
    )
    f.server_conn.peername = ("203.0.113.22", 443)
    return f


def _plain_tcp() -> Any:
    f = _bare(tflow.ttcpflow())
    f.server_conn.peername = ("203.0.113.23", 5222)
    return f


FLOWS = {"passthrough": _passthrough_tls, "failed": _failed_handshake, "quic": _quic, "tcp": _plain_tcp}
EXPECTED = {
    "passthrough": ("tls", "passthrough", "pinned.example.org", "h2,http/1.1"),
    "failed": ("tls", "failed", "gw.example.cn", None),
    "quic": ("quic", "passthrough", "video.example.com", "h3"),
    "tcp": ("tcp", "none", None, None),
}


@pytest.mark.parametrize("kind", sorted(FLOWS))
def test_live_and_file_give_the_same_row(kind: str, tmp_path: Path) -> None:
    flow = FLOWS[kind]()
    live = stream_connection(flow, app="com.x")
    imported = _file_stream(flow, app="com.x")
    assert (live.source, imported.source) == ("live", "mitm-file")
    assert dataclasses.replace(live, source="mitm-file") == imported
    assert (live.protocol, live.tls, live.sni, live.alpn) == EXPECTED[kind]
    # Written to a real flow file and read back through the importer: still the same.
    store = Store()
    import_file(write_flows(tmp_path / "f.flows", [flow]), store, app="com.x")
    ((_, back),) = store.connections()
    assert (back.protocol, back.tls, back.sni, back.ip, back.port) == (
        live.protocol, live.tls, live.sni, live.ip, live.port)  # fmt: skip


def test_passthrough_cut_by_an_error_is_still_passthrough() -> None:
    f = _passthrough_tls()
    f.error = tflow.terr("connection reset")
    c = stream_connection(f, app="")
    assert (c.tls, c.error) == ("passthrough", "connection reset")
    assert c.tls_version == "TLSv1.3"  # what the app offered: nothing was negotiated with mitmproxy


def test_dns_same_live_and_imported() -> None:
    f = tflow.tdnsflow(resp=True)
    live, imported = dns_records(f, app="a"), flowconv.dns_records(f, app="a", source="mitm-file")
    assert [dataclasses.replace(r, source="x") for r in live] == [
        dataclasses.replace(r, source="x") for r in imported
    ]
    assert [type(r).__name__ for r in live] == ["DnsRecord", "Connection"]
    f.server_conn.peername = None  # mitmproxy answered itself: no resolver was contacted
    assert [type(r).__name__ for r in dns_records(f, app="a")] == ["DnsRecord"]


def test_recorder_uses_the_shared_conversion(tmp_path: Path) -> None:
    from mitmproxy.test import taddons

    db = tmp_path / "live.sqlite"
    r = Recorder(writer="thread")
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db))
        f = _passthrough_tls()
        r.tcp_start(f)
        r.tcp_end(f)
        r.done()
    with Store(db) as s:
        ((_, c),) = s.connections()
    assert (c.protocol, c.tls, c.sni, c.ip) == ("tls", "passthrough", "pinned.example.org", "203.0.113.20")


def test_unrecognised_streams_follow_the_pcap_rule() -> None:
    """Issue 12: one rule (audit.traffic.tls.unread_stream) for streams no reader recognised."""
    idle = _bare(tflow.ttcpflow(messages=[]))  # nothing sent: not "no TLS"
    idle.server_conn.peername = ("203.0.113.30", 443)
    late = _bare(tflow.ttcpflow(messages=[tcp.TCPMessage(True, b"\x17\x03\x03\x00\x20" + b"a" * 32, 1.0)]))
    late.server_conn.peername = ("203.0.113.31", 443)  # TLS application data: recorded after the handshake
    short = _bare(tflow.tudpflow(messages=[udp.UDPMessage(True, b"\x41" + b"q" * 40, 1.0)]))
    short.server_conn.peername = short.server_conn.address = ("203.0.113.32", 443)  # QUIC short header
    other = _bare(tflow.tudpflow(messages=[udp.UDPMessage(True, b"\x41" + b"q" * 40, 1.0)]))
    other.server_conn.peername = other.server_conn.address = (
        "203.0.113.33",
        4433,
    )  # not UDP/443: not guessed
    got = [(c.protocol, c.tls, c.inspected) for c in map(_file_stream, (idle, late, short, other))]
    assert got == [("tcp", "unknown", False), ("tls", "passthrough", False), ("quic", "passthrough", False),
                   ("udp", "none", False)]  # fmt: skip


def test_quic_client_hello_split_over_two_datagrams() -> None:
    # Chrome and Cronet split large (post-quantum) ClientHellos over several Initial packets.
    hello = client_hello("video.example.com", alpn=("h3",))
    dcid = b"\x22" * 8
    first = quic_initial("", dcid, crypto=hello[:60], crypto_offset=0, pn=0)
    second = quic_initial("", dcid, crypto=hello[60:], crypto_offset=60, pn=1)
    f = _bare(tflow.tudpflow(messages=[udp.UDPMessage(True, first, 1.0), udp.UDPMessage(False, b"\x00" * 50, 1.1),
                                       udp.UDPMessage(True, second, 1.2)]))  # fmt: skip
    f.server_conn.peername = ("203.0.113.24", 443)
    c = stream_connection(f, app="")
    assert (c.protocol, c.tls, c.sni, c.host, c.alpn) == ("quic", "passthrough", "video.example.com",
                                                          "video.example.com", "h3")  # fmt: skip
    # Plain UDP whose first datagram is not a QUIC Initial stays UDP.
    g = _bare(
        tflow.tudpflow(messages=[udp.UDPMessage(True, b"\x00hello", 1.0), udp.UDPMessage(True, first, 1.1)])
    )
    assert stream_connection(g, app="").protocol == "udp"
