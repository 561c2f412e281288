"""The mitmproxy addon with mitmproxy's own test helpers (taddons, tflow): every hook, options,
batching, and that a failing hook never raises into the proxy."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import exceptions, tls
from mitmproxy.proxy import context, server_hooks
from mitmproxy.proxy.layers.tls import parse_client_hello
from mitmproxy.test import taddons, tflow

from audit.models import Connection
from audit.store import Store
from audit.traffic.addon import META_KEY, ConnectionTracker, Recorder, host_rules
from tests.helpers.mmdb import asn, city, write_mmdb
from tests.helpers.traffic import http_flow

AAID = "38400000-8cf0-11bd-b23e-10b96e40000d"
IMEI = "490154203237518"


def client_hello_record(sni: str, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> bytes:
    """A real TLS ClientHello record as Python's ssl module sends it."""
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(list(alpn))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "case.sqlite"


@pytest.fixture
def recorder(db: Path) -> Iterator[tuple[Recorder, Any]]:
    # In-process writer for speed; the child-process writer is exercised by the tests taking
    # ``writer`` and by the end-to-end tests.
    r = Recorder(writer="thread")
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_app="com.example.app", audit_flush_interval=50)
        yield r, tctx
        r.done()


def rows(db: Path) -> list[Connection]:
    with Store(db) as s:
        return [c for _, c in s.connections()]


def test_http_flow_recorded_with_everything(recorder: tuple[Recorder, Any], db: Path) -> None:
    r, _ = recorder
    f = http_flow(f"https://API.Tracker.example/v1/collect?adid={AAID}&lang=en&adid=2", body=b'{"k": "v"}')
    f.client_conn.tls_version = "TLSv1.3"
    f.client_conn.alpn = b"h2"
    r.requestheaders(f)
    r.response(f)
    r.response(f)  # a second hook call (replay, other addon) must not duplicate the row
    r.done()
    (c,) = rows(db)
    assert (c.source, c.protocol, c.tls, c.app) == ("live", "https", "intercepted", "com.example.app")
    assert (c.host, c.ip, c.port, c.method, c.path) == (
        "api.tracker.example",
        "8.8.8.8",
        443,
        "POST",
        "/v1/collect",
    )
    assert c.query_keys == ("adid", "lang")
    assert (c.status, c.tls_version, c.alpn) == (200, "TLSv1.3", "h2")
    assert c.request_content_type == "application/json" and c.response_content_type == "text/plain"
    assert c.bytes_out > len(b'{"k": "v"}') and c.bytes_in > 0
    assert c.client and c.client.endswith(":22")
    # Pattern detectors always run: the advertising ID in the query is found, masked.
    aaid = [x for x in c.findings if x.data_type == "aaid"]
    assert aaid and aaid[0].location == "query:adid" and AAID not in aaid[0].masked
    assert f.metadata[META_KEY] == {
        "recorded": True,
        "protocol": "https",
        "tls": "intercepted",
        "ip_scope": "public",
    }
    with Store(db) as s:
        ((_, req),) = list(s.requests())
        assert req.body == b'{"k": "v"}' and not req.body_truncated
        assert ("content-type", "application/json") in req.headers
        info = s.cached_ip_info()["8.8.8.8"]
        assert info.country == "US" and info.database and "geoip2fast" in info.database
        assert [i["kind"] for i in s.inputs()] == ["live"]


def test_body_limit(db: Path) -> None:
    r = Recorder(writer="thread")
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_body_limit=8)
        f = http_flow("http://plain.example/upload", ip="93.184.216.34", port=80, body=b"0123456789abcdef")
        r.response(f)
        r.done()
    (c,) = rows(db)
    assert c.protocol == "http" and c.tls == "none" and c.port == 80
    with Store(db) as s:
        ((_, req),) = list(s.requests())
    assert req.body == b"01234567" and req.body_truncated


def test_failed_flow_recorded_once(recorder: tuple[Recorder, Any], db: Path) -> None:
    r, _ = recorder
    f = tflow.tflow(err=True)
    f.server_conn.peername = None
    f.server_conn.address = ("unreachable.example", 443)
    r.requestheaders(f)
    r.error(f)
    r.error(f)
    ok = http_flow("https://ok.example/")
    r.response(ok)
    r.error(ok)  # error after the response (client went away): already recorded
    r.done()
    failed, good = rows(db)
    assert failed.error == "error" and failed.status is None and failed.ip is None
    assert failed.host == "address" and failed.port == 443
    assert good.host == "ok.example" and good.error is None


@pytest.mark.parametrize(("version", "alpn"), [("HTTP/2.0", b"h2"), ("HTTP/3", b"h3")])
def test_http2_and_http3_flows(recorder: tuple[Recorder, Any], db: Path, version: str, alpn: bytes) -> None:
    r, _ = recorder
    f = http_flow("https://video.example.com/seg/1.ts?uid=7")
    f.request.http_version = f.response.http_version = version
    f.client_conn.alpn = f.server_conn.alpn = alpn
    if alpn == b"h3":  # HTTP/3 runs over QUIC: mitmproxy's client and server connections are UDP
        f.client_conn.transport_protocol = f.server_conn.transport_protocol = "udp"
    r.response(f)
    r.done()
    (c,) = rows(db)
    assert (c.protocol, c.tls, c.http_version, c.alpn) == ("https", "intercepted", version, alpn.decode())
    assert (c.host, c.ip, c.port, c.path, c.query_keys) == (
        "video.example.com",
        "8.8.8.8",
        443,
        "/seg/1.ts",
        ("uid",),
    )


def test_websocket_one_row_with_messages(recorder: tuple[Recorder, Any], db: Path) -> None:
    r, _ = recorder
    f = tflow.twebsocketflow()
    f.server_conn.peername = ("1.1.1.1", 443)
    r.requestheaders(f)
    r.response(f)  # the handshake: WebSocket rows wait for websocket_end
    r.websocket_start(f)
    r.websocket_end(f)
    r.done()
    (c,) = rows(db)
    sent = sum(len(m.content) for m in f.websocket.messages if m.from_client)
    assert c.protocol in ("ws", "wss") and c.status == 101
    assert c.bytes_out >= sent > 0


def test_tcp_udp_and_passthrough_tls(recorder: tuple[Recorder, Any], db: Path) -> None:
    r, _ = recorder
    plain = tflow.ttcpflow()
    plain.client_conn.timestamp_tls_setup = None
    plain.client_conn.sni = None
    plain.server_conn.sni = None
    plain.server_conn.peername = ("119.29.29.29", 8080)
    r.tcp_start(plain)
    r.tcp_end(plain)

    tunnel = tflow.ttcpflow(messages=False)
    tunnel.client_conn.timestamp_tls_setup = None
    tunnel.client_conn.sni = None
    tunnel.server_conn.sni = None
    tunnel.server_conn.address = ("142.250.1.1", 443)
    tunnel.server_conn.peername = ("142.250.1.1", 443)
    from mitmproxy import tcp

    tunnel.messages = [
        tcp.TCPMessage(True, client_hello_record("pinned.example")),
        tcp.TCPMessage(False, b"\x16\x03\x03"),
    ]
    r.tcp_start(tunnel)
    r.tcp_error(tunnel)

    u = tflow.tudpflow()
    u.server_conn.peername = ("8.8.4.4", 443)
    r.udp_start(u)
    r.udp_end(u)
    r.done()
    by_ip = {c.ip: c for c in rows(db)}
    assert by_ip["119.29.29.29"].protocol == "tcp" and by_ip["119.29.29.29"].tls == "none"
    assert by_ip["119.29.29.29"].bytes_out == sum(len(m.content) for m in plain.messages if m.from_client)
    t = by_ip["142.250.1.1"]
    assert (t.protocol, t.tls, t.sni, t.host) == ("tls", "passthrough", "pinned.example", "pinned.example")
    assert t.alpn == "h2,http/1.1"
    assert by_ip["8.8.4.4"].protocol == "udp"


def test_dns_records_name_bare_ips(recorder: tuple[Recorder, Any], db: Path) -> None:
    r, _ = recorder
    f = tflow.tdnsflow(resp=True)
    r.dns_request(f)
    r.dns_response(f)
    r.done()
    with Store(db) as s:
        names = s.dns_names()
        conns = [c for _, c in s.connections()]
    assert names == {"8.8.8.8": ["dns.google"], "8.8.4.4": ["dns.google"]}
    assert [c.protocol for c in conns] == ["dns"]  # the upstream resolver that was contacted


def test_dns_error_without_upstream(recorder: tuple[Recorder, Any], db: Path) -> None:
    r, _ = recorder
    f = tflow.tdnsflow(err=True)
    f.server_conn.peername = None
    r.dns_error(f)
    r.done()
    with Store(db) as s:
        recs = s.dns_records()
        assert s.connection_count() == 0
    assert [(x["name"], x["answer"]) for x in recs] == [("dns.google", "")]


# -- connections without flows ---------------------------------------------------------------


def _tls_context(client: Any, server: Any) -> context.Context:
    from mitmproxy.options import Options

    ctx = context.Context(client, Options())
    ctx.server = server
    return ctx


def _hooks_for_pinned(r: Recorder, sni: str = "pinned.example") -> Any:
    client = tflow.tclient_conn()
    client.timestamp_tls_setup = None
    server = tflow.tserver_conn()
    server.address = (sni, 443)
    server.peername = ("142.250.74.110", 443)
    server.sni = sni
    ctx = _tls_context(client, server)
    r.client_connected(client)
    r.server_connect(server_hooks.ServerConnectionHookData(server, client))
    r.server_connected(server_hooks.ServerConnectionHookData(server, client))
    hello = parse_client_hello(client_hello_record(sni))
    r.tls_clienthello(tls.ClientHelloData(ctx, hello))
    client.error = f"Client TLS handshake failed. The client does not trust the proxy's certificate for {sni}"
    r.tls_failed_client(tls.TlsData(client, ctx))
    return client


def test_pinned_connection_recorded_as_failed(recorder: tuple[Recorder, Any], db: Path) -> None:
    r, _ = recorder
    client = _hooks_for_pinned(r)
    r.client_disconnected(client)
    r.done()
    (c,) = rows(db)
    assert (c.protocol, c.tls, c.host, c.sni) == ("tls", "failed", "pinned.example", "pinned.example")
    assert (c.ip, c.port) == ("142.250.74.110", 443)
    assert c.error and "does not trust" in c.error
    assert c.alpn == "h2,http/1.1"


def test_connection_with_flows_is_not_a_separate_row(recorder: tuple[Recorder, Any], db: Path) -> None:
    r, _ = recorder
    f = http_flow("https://intercepted.example/")
    client, server = f.client_conn, f.server_conn
    ctx = _tls_context(client, server)
    r.client_connected(client)
    r.server_connect(server_hooks.ServerConnectionHookData(server, client))
    r.tls_clienthello(
        tls.ClientHelloData(ctx, parse_client_hello(client_hello_record("intercepted.example")))
    )
    r.tls_established_client(tls.TlsData(client, ctx))
    r.requestheaders(f)
    r.response(f)
    r.client_disconnected(client)
    r.done()
    assert [(c.protocol, c.host) for c in rows(db)] == [("https", "intercepted.example")]


def _connect_only(r: Recorder, host: str, ip: str) -> None:
    client = tflow.tclient_conn()
    server = tflow.tserver_conn()
    server.address = (host, 443)
    server.peername = (ip, 443)
    server.sni = None
    r.server_connect(server_hooks.ServerConnectionHookData(server, client))
    r.server_connected(server_hooks.ServerConnectionHookData(server, client))
    r.client_disconnected(client)


def test_ignored_connection_is_passthrough(recorder: tuple[Recorder, Any], db: Path) -> None:
    r, tctx = recorder
    tctx.configure(r, ignore_hosts=[r"^(.+\.)?bank\.example:443$"])
    _connect_only(r, "bank.example", "203.0.113.9")
    # Connected, but neither ignored nor used: an idle contact, not a passthrough.
    _connect_only(r, "idle.example", "203.0.113.10")
    # A client that connected and left without asking for any server leaves no row.
    idle = tflow.tclient_conn()
    r.client_connected(idle)
    r.client_disconnected(idle)
    r.done()
    bank, other = rows(db)
    assert (bank.protocol, bank.tls, bank.host, bank.ip, bank.port) == (
        "tcp",
        "passthrough",
        "bank.example",
        "203.0.113.9",
        443,
    )
    assert (other.tls, other.host, other.error) == ("unknown", "idle.example", "closed before any request")


@pytest.mark.parametrize(
    ("ignore", "allow", "spec", "expected"),
    [
        ([r"bank\.example"], [], ("bank.example", 443), True),
        ([r"bank\.example"], [], ("news.example", 443), False),
        ([], [r"^api\.example:443$"], ("cdn.example", 443), True),
        ([], [r"^api\.example:443$"], ("API.example", 443), False),
        (["(unclosed"], [], ("x.example", 1), False),
    ],
)
def test_host_rules(ignore: list[str], allow: list[str], spec: tuple[str, int], expected: bool) -> None:
    assert host_rules(ignore, allow)(*spec) is expected


def test_open_connections_are_written_on_done(db: Path) -> None:
    r = Recorder(writer="thread")
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db))
        _hooks_for_pinned(r, "still-open.example")
        r.done()
    (c,) = rows(db)
    assert c.host == "still-open.example" and c.tls == "failed"


def test_flows_still_open_are_written_on_done(db: Path) -> None:
    # mitmproxy cancels open connections at shutdown without tcp_end/udp_end/websocket_end/error:
    # seen end to end for a UDP flow through WireGuard (test_mitmdump_netmodes.py).
    r = Recorder(writer="thread")
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db))
        push = tflow.ttcpflow()
        push.client_conn.timestamp_tls_setup = None
        push.client_conn.sni = None  # plain TCP: no ClientHello was seen
        push.server_conn.peername = ("203.0.113.7", 5222)
        quic = tflow.tudpflow()
        quic.server_conn.peername = ("203.0.113.8", 443)
        waiting = http_flow("https://slow.example/poll", ip="203.0.113.9")
        waiting.response = None
        ws = tflow.twebsocketflow()
        ws.server_conn.peername = ("203.0.113.10", 443)
        ended = tflow.ttcpflow()
        ended.server_conn.peername = ("203.0.113.11", 80)
        for f in (push, quic, ended):
            getattr(r, f"{f.type}_start")(f)
        r.requestheaders(waiting)
        r.websocket_start(ws)
        r.tcp_end(ended)
        r.done()
    by_ip = {c.ip: c for c in rows(db)}
    assert len(by_ip) == len(rows(db)) == 5
    assert (by_ip["203.0.113.7"].protocol, by_ip["203.0.113.7"].bytes_out) == ("tcp", len(b"hello"))
    assert by_ip["203.0.113.8"].protocol == "udp"
    assert (by_ip["203.0.113.9"].path, by_ip["203.0.113.9"].status) == ("/poll", None)
    assert by_ip["203.0.113.10"].protocol in ("ws", "wss")
    for ip in ("203.0.113.7", "203.0.113.8", "203.0.113.9", "203.0.113.10"):
        assert by_ip[ip].error == "still open when mitmproxy stopped"
    assert by_ip["203.0.113.11"].error is None and not r.open_flows


def test_tracker_handshake_abandoned_is_failed() -> None:
    t = ConnectionTracker()
    client = tflow.tclient_conn()
    st = t.state(client)
    st.tls_seen, st.sni = True, "half.example"
    c = t.finish(client, app="")
    assert c is not None and c.tls == "failed" and c.error and "during the TLS handshake" in c.error
    assert t.states == {}


# -- robustness --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hook",
    ["response", "error", "websocket_end", "tcp_end", "udp_end", "dns_response", "tls_clienthello",
     "tls_failed_client", "server_connect", "client_disconnected", "requestheaders"],
)  # fmt: skip
def test_hook_errors_are_logged_not_raised(
    recorder: tuple[Recorder, Any], hook: str, caplog: pytest.LogCaptureFixture
) -> None:
    r, _ = recorder
    with caplog.at_level(logging.ERROR, logger="audit.traffic.addon"):
        assert getattr(r, hook)(object()) is None
    assert any(f"{hook} hook failed" in m for m in caplog.messages)


def test_hostile_values_do_not_break_recording(recorder: tuple[Recorder, Any], db: Path) -> None:
    r, _ = recorder
    f = http_flow("https://example.com/p")
    f.request.headers["Host"] = "évil\x00.example\r\n"
    f.request.path = "/%ff%fe?\x00=1&=2&%zz=3"
    f.server_conn.peername = ("::ffff:8.8.8.8", 443)
    r.response(f)
    r.done()
    (c,) = rows(db)
    assert c.ip == "8.8.8.8"  # IPv4-mapped address unwrapped
    assert c.host and "example" in c.host


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_batching_writes_only_on_flush(db: Path, writer: str) -> None:
    r = Recorder(writer=writer)
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_flush_interval=600_000)
        assert r.writer is not None
        r.writer.flush()  # the inputs row
        for i in range(50):
            r.response(http_flow(f"https://batch.example/{i}"))
        assert rows(db) == []  # queued, not yet on disk: the event loop never waits for SQLite
        assert r.writer.flush()
        assert len(rows(db)) == 50
        r.response(http_flow("https://batch.example/last"))
        r.done()
    assert len(rows(db)) == 51


def test_flush_interval_elapses(db: Path) -> None:
    r = Recorder(writer="thread")
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_flush_interval=20)
        r.response(http_flow("https://timer.example/"))
        import time

        deadline = time.monotonic() + 10
        while not rows(db) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(rows(db)) == 1  # written by the timer, before done()
        r.done()


# -- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_options_validated_early(tmp_path: Path, db: Path, writer: str) -> None:
    r = Recorder(writer=writer)
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db))
        with pytest.raises(exceptions.OptionsError, match="audit_db"):
            tctx.configure(r, audit_db=str(tmp_path / "no" / "such" / "dir.sqlite"))
        with pytest.raises(exceptions.OptionsError, match="audit_device"):
            tctx.configure(r, audit_device=str(tmp_path / "missing.toml"))
        bad = tmp_path / "bad.mmdb"
        bad.write_bytes(b"garbage")
        with pytest.raises(exceptions.OptionsError, match="bad.mmdb"):
            tctx.configure(r, audit_mmdb=[str(bad)])
        with pytest.raises(exceptions.OptionsError, match="audit_body_limit"):
            tctx.configure(r, audit_body_limit=-1)
        with pytest.raises(exceptions.OptionsError, match="audit_flush_interval"):
            tctx.configure(r, audit_flush_interval=0)
        # The recorder still works on the last good configuration.
        r.response(http_flow("https://still.example/"))
        r.done()
    assert [c.host for c in rows(db)] == ["still.example"]


def test_not_a_database_is_an_options_error(tmp_path: Path) -> None:
    p = tmp_path / "x.sqlite"
    p.write_bytes(b"not sqlite at all" * 200)
    r = Recorder(writer="thread")
    with taddons.context(r) as tctx, pytest.raises(exceptions.OptionsError, match="x.sqlite"):
        tctx.configure(r, audit_db=str(p))


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_switching_db_flushes_the_old_one(tmp_path: Path, writer: str) -> None:
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    r = Recorder(writer=writer)
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(a), audit_flush_interval=600_000)
        r.response(http_flow("https://first.example/"))
        tctx.configure(r, audit_db=str(b))
        r.response(http_flow("https://second.example/"))
        r.done()
    assert [c.host for c in rows(a)] == ["first.example"]
    assert [c.host for c in rows(b)] == ["second.example"]


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_device_profile_and_mmdb(tmp_path: Path, db: Path, writer: str) -> None:
    profile = tmp_path / "device.toml"
    profile.write_text(f'imei = "{IMEI}"\nandroid_id = "9774d56d682e549c"\n', encoding="utf-8")
    mmdb_city = write_mmdb(tmp_path / "GeoLite2-City.mmdb", [("8.8.8.0/24", city("DE", "Berlin"))])
    mmdb_asn = write_mmdb(tmp_path / "GeoLite2-ASN.mmdb", [("8.8.8.0/24", asn(15169, "GOOGLE"))],
                          database_type="GeoLite2-ASN")  # fmt: skip
    r = Recorder(writer=writer)
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_device=str(profile), audit_mmdb=[str(mmdb_city), str(mmdb_asn)],
                       audit_app="com.example.app")  # fmt: skip
        r.response(http_flow("https://ads.example/x", body=f'{{"dev": "{IMEI}"}}'.encode()))
        r.done()
    (c,) = rows(db)
    known = [f for f in c.findings if f.confidence == "known"]
    assert [f.data_type for f in known] == ["imei"] and IMEI not in known[0].masked
    with Store(db) as s:
        info = s.cached_ip_info()["8.8.8.8"]
        kinds = sorted((i["kind"], Path(i["path"]).name) for i in s.inputs())
    assert (info.country, info.city, info.asn) == ("DE", "Berlin", 15169)
    assert ("device-profile", "device.toml") in kinds and ("mmdb", "GeoLite2-ASN.mmdb") in kinds


def test_process_writer_records_http_flow(db: Path) -> None:
    r = Recorder()
    assert r.writer_kind == "process"
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_app="com.example.app")
        r.response(http_flow(f"https://t.example/c?adid={AAID}"))
        assert r.writer is not None and r.writer.flush()
        assert r.writer.stats.connections == 1
        r.done()
    (c,) = rows(db)
    assert c.host == "t.example" and any(f.data_type == "aaid" for f in c.findings)
    with Store(db) as s:
        assert s.cached_ip_info()["8.8.8.8"].country == "US"


def test_writer_kind_checked() -> None:
    with pytest.raises(ValueError, match="writer"):
        Recorder(writer="fast")


def test_writer_process_death_is_logged_not_raised(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    from audit.traffic.writer_process import ProcessWriter

    r = Recorder()
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_flush_interval=20)
        assert isinstance(r.writer, ProcessWriter)
        assert r.writer.flush()
        r.writer.proc.kill()
        r.writer.proc.wait(10)
        with caplog.at_level(logging.ERROR, logger="audit.traffic.writer_process"):
            for i in range(3):
                r.response(http_flow(f"https://lost.example/{i}"))
            assert not r.writer.flush(timeout=10)
            r.response(http_flow("https://after.example/"))  # still no exception
            assert r.writer.stats.dropped >= 1
            r.done()
    assert any("writer process is gone" in m for m in caplog.messages)


def test_running_freezes_the_startup_heap() -> None:
    import gc

    gc.unfreeze()
    try:
        Recorder().running()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_asn_table_option_and_default(
    tmp_path: Path, db: Path, writer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit.enrich.asntable import import_table

    ranges = tmp_path / "asn.csv"
    ranges.write_text("8.8.8.0,8.8.8.255,64501,Example Resolver LLC\n", encoding="utf-8")
    own = tmp_path / "own-table.sqlite"
    import_table([ranges], own, label="own table")
    r = Recorder(writer=writer)
    with taddons.context(r) as tctx:
        bad = tmp_path / "bad.sqlite"
        bad.write_bytes(b"garbage" * 100)
        with pytest.raises(exceptions.OptionsError, match="audit_asn_table.*bad.sqlite"):
            tctx.configure(r, audit_db=str(db), audit_asn_table=str(bad))
        tctx.configure(r, audit_db=str(db), audit_asn_table=str(own), audit_app="com.example.app")
        r.response(http_flow("https://dns.example/x"))
        r.done()
    with Store(db) as s:
        info = s.cached_ip_info()["8.8.8.8"]
        kinds = [(i["kind"], i["path"]) for i in s.inputs()]
    assert (info.asn, info.asn_org) == (64501, "Example Resolver LLC") and "own table" in (
        info.database or ""
    )
    assert ("asn-table", str(own)) in kinds

    # Without the option: the table imported into $AUDIT_HOME, if any.
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path / "home"))
    import_table([ranges], label="home table")
    db2 = tmp_path / "second.sqlite"
    r = Recorder(writer=writer)
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db2))
        r.response(http_flow("https://dns.example/y"))
        r.done()
    with Store(db2) as s:
        assert s.cached_ip_info()["8.8.8.8"].asn == 64501


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_reconfigured_enricher_closes_the_old_one(tmp_path: Path, db: Path, writer: str) -> None:
    import sqlite3

    from audit.enrich.asntable import import_table

    ranges = tmp_path / "asn.csv"
    ranges.write_text("8.8.8.0,8.8.8.255,64501,Example Resolver LLC\n", encoding="utf-8")
    first, second = tmp_path / "first.sqlite", tmp_path / "second.sqlite"
    import_table([ranges], first, label="first")
    import_table([ranges], second, label="second")
    r = Recorder(writer=writer)
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_asn_table=str(first))
        old = r.enricher
        assert old is not None and old.asn_table is not None
        tctx.configure(r, audit_asn_table=str(second))
        assert r.enricher is not old and r.asn_table == str(second)
        with pytest.raises(sqlite3.ProgrammingError):  # closed
            old.asn_table._con.execute("SELECT 1")  # type: ignore[attr-defined]
        r.response(http_flow("https://dns.example/x"))
        r.done()
    with Store(db) as s:
        assert "second" in (s.cached_ip_info()["8.8.8.8"].database or "")


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_location_db_option_discovery_and_off(
    tmp_path: Path, db: Path, writer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """audit_location_db names an IPFire location database; without it the one $AUDIT_LOCATION_DB
    (or the system) names is used; 'off' uses none. The file is recorded as evidence."""
    from tests.helpers import locdb

    own = locdb.write(tmp_path / "own.db", [locdb.Net("8.8.8.0/24", "US", 64502)], {64502: "Example Resolver LLC"},
                      vendor="Own")  # fmt: skip
    found = locdb.write(tmp_path / "found.db", [locdb.Net("8.8.8.0/24", "US", 64503)], {64503: "Found AS"},
                        vendor="Found")  # fmt: skip
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"LOCDBXX\x02" + b"\0" * 5000)
    r = Recorder(writer=writer)
    with taddons.context(r) as tctx:
        with pytest.raises(exceptions.OptionsError, match="audit_location_db.*version 2"):
            tctx.configure(r, audit_db=str(db), audit_location_db=str(bad))
        tctx.configure(r, audit_db=str(db), audit_location_db=str(own), audit_app="com.example.app")
        r.response(http_flow("https://dns.example/x"))
        r.done()
    with Store(db) as s:
        info = s.cached_ip_info()["8.8.8.8"]
        kinds = [(i["kind"], i["path"]) for i in s.inputs()]
    assert (info.asn, info.asn_org) == (64502, "Example Resolver LLC") and "Own location database" in str(
        info.database
    )
    assert ("location-db", str(own)) in kinds

    monkeypatch.setenv("AUDIT_LOCATION_DB", str(found))
    for option, expected in (("", 64503), ("off", None), ("none", None)):
        case = tmp_path / f"case-{option or 'default'}.sqlite"
        r = Recorder(writer=writer)
        with taddons.context(r) as tctx:
            tctx.configure(r, audit_db=str(case), audit_location_db=option)
            r.response(http_flow("https://dns.example/y"))
            r.done()
        with Store(case) as s:
            assert s.cached_ip_info()["8.8.8.8"].asn == expected
            assert any(i["kind"] == "location-db" for i in s.inputs()) is (expected is not None)
