"""End to end through a real ``mitmdump`` for the protocols above HTTP/1.1: HTTP/2 through a CONNECT
tunnel (to an HTTP/2 upstream; translated by mitmproxy to an HTTP/1.1 one; and the fallback to
HTTP/1.1 with the default eager connection strategy), HTTP/3 (reverse mode, the mode that speaks
HTTP/3 on loopback without root) and WebSocket (wss through CONNECT, plain ws, one still open when
mitmproxy stops).

Clients and servers are written with mitmproxy's own dependencies (``h2``, ``aioquic``, ``wsproto``),
so nothing beyond mitmproxy is needed. Loopback only. The other modes are covered by
test_mitmdump_e2e.py, test_mitmdump_modes.py and test_mitmdump_netmodes.py.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from audit.models import Connection
from audit.store import Store
from tests.helpers.mitm import (
    BODY,
    MITMDUMP,
    TIMEOUT,
    H3Loop,
    Proxy,
    free_port,
    h3_protocol,
    h3_server,
    https_server,
    make_cert,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not MITMDUMP.exists(), reason="mitmdump not installed")]


def _header_bytes(headers: Any) -> int:
    """Header size the way the recorder counts it (name + value + ": " and CRLF)."""
    return sum(len(k) + len(v) + 4 for k, v in headers)


def _check_time(c: Connection, t0: float, t1: float) -> None:
    """The row's start and end lie within the test's own clock readings, in order."""
    assert c.end_ts is not None and t0 <= c.ts <= c.end_ts <= t1, (t0, c.ts, c.end_ts, t1)


def _connect_tunnel(proxy: Proxy, host: str, port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1024)
        assert chunk, f"proxy closed the CONNECT: {head!r}"
        head += chunk
    assert head.split(b"\r\n", 1)[0].split()[1] == b"200", head
    return s


def _serve(ctx: ssl.SSLContext | None, handle: Any) -> tuple[socket.socket, int]:
    """A server on loopback (TLS with ``ctx``, else plain) that runs ``handle(socket)`` in a thread
    per connection; closing the returned listener stops it."""
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=_handle, args=(ctx, raw, handle), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener, int(listener.getsockname()[1])


def _handle(ctx: ssl.SSLContext | None, raw: socket.socket, handle: Any) -> None:
    raw.settimeout(TIMEOUT)
    try:
        with ctx.wrap_socket(raw, server_side=True) if ctx is not None else raw as sock:
            handle(sock)
    except (OSError, ssl.SSLError):
        pass  # the proxy's readiness probe or a client that went away


def _server_ctx(cert: Path, key: Path, alpn: list[str] | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


# --------------------------------------------------------------------------------------------
# HTTP/2
# --------------------------------------------------------------------------------------------


@dataclass
class H2Upstream:
    """What the HTTP/2 server saw: negotiated ALPN and (path, method) per request."""

    alpn: list[str | None] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)


def h2_server(cert: Path, key: Path) -> tuple[socket.socket, int, H2Upstream]:
    import h2.config
    import h2.connection
    import h2.events

    seen = H2Upstream()

    def handle(tls: ssl.SSLSocket) -> None:
        seen.alpn.append(tls.selected_alpn_protocol())
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        heads: dict[int, dict[str, str]] = {}
        while data := tls.recv(65536):
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    heads[ev.stream_id] = dict(ev.headers)  # type: ignore[arg-type]
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    h = heads.pop(ev.stream_id)
                    seen.requests.append((h[":path"], h[":method"]))
                    conn.send_headers(ev.stream_id, [
                        (":status", "200"), ("content-type", "application/json"), ("content-length", str(len(BODY))),
                    ])  # fmt: skip
                    conn.send_data(ev.stream_id, BODY, end_stream=True)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    return
            tls.sendall(conn.data_to_send())

    listener, port = _serve(_server_ctx(cert, key, ["h2"]), handle)
    return listener, port, seen


def h2_requests(
    proxy: Proxy, host: str, port: int, requests: list[tuple[str, str, bytes]]
) -> tuple[str | None, dict[str, tuple[int, bytes]]]:
    """Send ``(method, path, body)`` requests as concurrent streams of one HTTP/2 connection through
    a CONNECT tunnel; return the ALPN the proxy chose and ``path -> (status, body)``."""
    import h2.config
    import h2.connection
    import h2.events

    ctx = ssl.create_default_context(cafile=str(proxy.confdir / "mitmproxy-ca-cert.pem"))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with ctx.wrap_socket(_connect_tunnel(proxy, host, port), server_hostname=host) as tls:
        alpn = tls.selected_alpn_protocol()
        if alpn != "h2":
            return alpn, {}
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        conn.initiate_connection()
        paths: dict[int, str] = {}
        for method, path, body in requests:
            sid = conn.get_next_available_stream_id()
            paths[sid] = path
            headers = [
                (":method", method),
                (":scheme", "https"),
                (":authority", f"{host}:{port}"),
                (":path", path),
            ]
            if body:
                headers += [("content-type", "application/json"), ("content-length", str(len(body)))]
            conn.send_headers(sid, headers, end_stream=not body)
            if body:
                conn.send_data(sid, body, end_stream=True)
        tls.sendall(conn.data_to_send())
        status: dict[int, int] = {}
        bodies: dict[int, bytes] = {}
        done: set[int] = set()
        while done != set(paths):
            data = tls.recv(65536)
            assert data, "proxy closed the HTTP/2 connection early"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status[ev.stream_id] = int(dict(ev.headers)[":status"])  # type: ignore[arg-type]
                elif isinstance(ev, h2.events.DataReceived):
                    bodies[ev.stream_id] = bodies.get(ev.stream_id, b"") + ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    done.add(ev.stream_id)
            tls.sendall(conn.data_to_send())
        conn.close_connection()
        tls.sendall(conn.data_to_send())
    return alpn, {paths[sid]: (status[sid], bodies.get(sid, b"")) for sid in paths}


H2_REQUESTS = [("GET", "/v2/config?uid=7&lang=en", b""), ("POST", "/v2/track?adid=1", b'{"event": "open"}')]


def _check_h2_rows(rows: list[Connection], port: int, t0: float, t1: float) -> None:
    https = sorted((r for r in rows if r.protocol == "https"), key=lambda r: r.path or "")
    assert [(r.method, r.path, r.query_keys, r.status) for r in https] == [
        ("GET", "/v2/config", ("uid", "lang"), 200),
        ("POST", "/v2/track", ("adid",), 200),
    ], [(r.protocol, r.path, r.error) for r in rows]
    for r in https:
        assert (r.tls, r.scheme, r.http_version, r.alpn) == ("intercepted", "https", "HTTP/2.0", "h2")
        assert (r.host, r.sni, r.ip, r.port) == ("localhost", "localhost", "127.0.0.1", port)
        assert (
            r.tls_version
            and r.tls_version.startswith("TLS")
            and r.client
            and r.client.startswith("127.0.0.1:")
        )
        assert r.response_content_type == "application/json" and r.bytes_in >= len(BODY)
        _check_time(r, t0, t1)
    get, post = https
    # Request sizes are the app's HTTP/2 headers (pseudo-headers excluded) plus the body.
    assert get.bytes_out == 0 and get.request_content_type is None
    post_headers = [("content-type", "application/json"), ("content-length", "17")]
    assert (
        post.request_content_type == "application/json" and post.bytes_out == _header_bytes(post_headers) + 17
    )
    # The two streams shared one connection, which therefore has no row of its own.
    assert len(rows) == 2, [(r.protocol, r.tls, r.error) for r in rows]


def test_http2_to_http2_upstream(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    listener, port, upstream = h2_server(cert, key)
    proxy = Proxy(tmp_path, [])
    t0 = time.time()
    try:
        alpn, replies = h2_requests(proxy, "localhost", port, H2_REQUESTS)
        assert alpn == "h2"
        assert replies == {"/v2/config?uid=7&lang=en": (200, BODY), "/v2/track?adid=1": (200, BODY)}
        wait_until(lambda: len(proxy.rows()) >= 2, 20, "both HTTP/2 streams")
        t1 = time.time()
    finally:
        proxy.stop()
        listener.close()
    assert upstream.alpn == ["h2"], upstream  # mitmproxy spoke HTTP/2 upstream as well
    assert sorted(upstream.requests) == [("/v2/config?uid=7&lang=en", "GET"), ("/v2/track?adid=1", "POST")]
    _check_h2_rows(proxy.rows(), port, t0, t1)


def test_http2_translated_to_http1_upstream(tmp_path: Path) -> None:
    # With the default eager connection strategy mitmproxy mirrors an upstream that negotiates no
    # ALPN (the app gets HTTP/1.1); lazily it agrees on h2 with the app first, then translates.
    cert, key = make_cert(tmp_path)
    srv = https_server(cert, key)
    port = srv.server_address[1]
    proxy = Proxy(tmp_path, ["--set", "connection_strategy=lazy"])
    t0 = time.time()
    try:
        alpn, replies = h2_requests(proxy, "localhost", port, H2_REQUESTS)
        assert alpn == "h2"
        assert set(replies.values()) == {(200, BODY)}
        wait_until(lambda: len(proxy.rows()) >= 2, 20, "both HTTP/2 streams")
        t1 = time.time()
    finally:
        proxy.stop()
        srv.shutdown()
        srv.server_close()
    # The row describes the app's side: HTTP/2 and h2, though the server only spoke HTTP/1.1.
    _check_h2_rows(proxy.rows(), port, t0, t1)


def test_http2_offer_to_http1_upstream_eager(tmp_path: Path) -> None:
    # Default (eager) strategy: mitmproxy asks the server first; no ALPN there, none for the app,
    # which falls back to HTTP/1.1. The row says so.
    cert, key = make_cert(tmp_path)
    srv = https_server(cert, key)
    port = srv.server_address[1]
    proxy = Proxy(tmp_path, [])
    try:
        ctx = ssl.create_default_context(cafile=str(proxy.confdir / "mitmproxy-ca-cert.pem"))
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with ctx.wrap_socket(_connect_tunnel(proxy, "localhost", port), server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() is None
            tls.sendall(b"GET /v1/fallback?uid=7 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := tls.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.") and reply.endswith(BODY), reply
        wait_until(lambda: len(proxy.rows()) >= 1, 20, "the HTTP/1.1 flow")
    finally:
        proxy.stop()
        srv.shutdown()
        srv.server_close()
    (r,) = proxy.rows()
    assert (r.protocol, r.path, r.status, r.http_version, r.alpn) == (
        "https",
        "/v1/fallback",
        200,
        "HTTP/1.1",
        None,
    )


# --------------------------------------------------------------------------------------------
# HTTP/3
# --------------------------------------------------------------------------------------------


async def h3_request(port: int, cafile: Path, path: str, body: bytes) -> tuple[str | None, int, bytes]:
    """One HTTP/3 request to 127.0.0.1:port (SNI localhost); the ALPN, status and body."""
    from aioquic.asyncio import connect
    from aioquic.h3.connection import H3_ALPN
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
    config.load_verify_locations(str(cafile))
    async with connect(
        "127.0.0.1", port, configuration=config, create_protocol=h3_protocol(client=True)
    ) as client:
        headers = [(b":method", b"POST" if body else b"GET"), (b":scheme", b"https"),
                   (b":authority", f"localhost:{port}".encode()), (b":path", path.encode())]  # fmt: skip
        if body:
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        head, data = await client.request(headers, body)
        alpn = client._quic.tls.alpn_negotiated
    return alpn, int(head[b":status"]), data


def test_http3_reverse_mode(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    loop = H3Loop()
    up_port, h3_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    server, upstream = loop.run(h3_server(cert, key, up_port))
    # HTTP/3 listens on UDP only; the regular mode beside it gives Proxy a TCP port to wait for.
    proxy = Proxy(tmp_path, ["--mode", "regular", "--mode", f"reverse:http3://localhost:{up_port}@{h3_port}"])
    t0 = time.time()
    try:
        cafile = proxy.confdir / "mitmproxy-ca-cert.pem"
        alpn, status, body = loop.run(
            h3_request(h3_port, cafile, "/v3/collect?gaid=1&ts=2", b'{"event": "open"}')
        )
        assert (alpn, status, body) == ("h3", 200, BODY)
        wait_until(lambda: any(r.protocol == "https" for r in proxy.rows()), 20, "the HTTP/3 flow")
        t1 = time.time()
    finally:
        proxy.stop()
        loop.close(server)
    assert [p._quic.tls.alpn_negotiated for p in upstream if p.requests] == ["h3"]  # HTTP/3 upstream too
    rows = proxy.rows()
    (c,) = [r for r in rows if r.protocol == "https"]
    assert (c.method, c.scheme, c.path, c.query_keys, c.status) == (
        "POST",
        "https",
        "/v3/collect",
        ("gaid", "ts"),
        200,
    )
    assert (c.tls, c.http_version, c.alpn) == ("intercepted", "HTTP/3", "h3")
    assert (c.host, c.sni, c.ip, c.port) == ("localhost", "localhost", "127.0.0.1", up_port)
    _check_time(c, t0, t1)
    assert c.tls_version == "QUICv1" and c.client and c.client.startswith("127.0.0.1:")
    assert c.request_content_type == c.response_content_type == "application/json"
    # Headers (pseudo-headers excluded) plus body, as on the wire of the app's side.
    req_headers = [("content-type", "application/json"), ("content-length", "17")]
    resp_headers = [("content-type", "application/json"), ("content-length", str(len(BODY)))]
    assert (c.bytes_out, c.bytes_in) == (
        _header_bytes(req_headers) + 17,
        _header_bytes(resp_headers) + len(BODY),
    )
    assert c.error is None
    assert len(rows) == 1, [(r.protocol, r.tls, r.port, r.error) for r in rows]


# --------------------------------------------------------------------------------------------
# WebSocket
# --------------------------------------------------------------------------------------------


def ws_server(ctx: ssl.SSLContext | None) -> tuple[socket.socket, int, list[str]]:
    """A WebSocket server that answers every message with the message twice; returns the request
    targets it saw."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request

    targets: list[str] = []

    def handle(sock: socket.socket) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        partial: Any = None
        while data := sock.recv(65536):
            ws.receive_data(data)
            for ev in ws.events():
                if isinstance(ev, Request):
                    targets.append(ev.target)
                    sock.sendall(ws.send(AcceptConnection()))
                elif isinstance(ev, Message):
                    partial = ev.data if partial is None else partial + ev.data
                    if ev.message_finished:
                        sock.sendall(ws.send(type(ev)(data=partial * 2)))
                        partial = None
                elif isinstance(ev, Ping):
                    sock.sendall(ws.send(ev.response()))
                elif isinstance(ev, CloseConnection):
                    sock.sendall(ws.send(ev.response()))
                    return

    listener, port = _serve(ctx, handle)
    return listener, port, targets


def ws_exchange(
    sock: socket.socket, host: str, target: str, messages: list[str | bytes], close: bool = True
) -> list[str | bytes]:
    """Open a WebSocket on ``sock``, send each message and wait for its reply, close cleanly
    (unless told not to)."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Message, Request, TextMessage

    ws = WSConnection(ConnectionType.CLIENT)

    def next_event() -> Any:
        while True:
            for ev in ws.events():
                return ev
            data = sock.recv(65536)
            assert data, "connection closed during the WebSocket exchange"
            ws.receive_data(data)

    sock.sendall(ws.send(Request(host=host, target=target)))
    ev = next_event()
    assert isinstance(ev, AcceptConnection), ev  # not RejectConnection
    replies: list[str | bytes] = []
    for m in messages:
        sock.sendall(ws.send(TextMessage(data=m) if isinstance(m, str) else BytesMessage(data=m)))
        reply: Any = None
        while True:
            ev = next_event()
            assert isinstance(ev, Message), ev
            reply = ev.data if reply is None else reply + ev.data
            if ev.message_finished:
                break
        replies.append(reply)
    if close:
        sock.sendall(ws.send(CloseConnection(code=1000)))
        assert isinstance(next_event(), CloseConnection)
    return replies


WS_MESSAGES: list[str | bytes] = ["hello", bytes(range(256)) * 12]  # a text and a 3072-byte binary message


@pytest.mark.parametrize("tls", [True, False], ids=["wss-connect", "ws-plain"])
def test_websocket_one_row_with_messages(tmp_path: Path, tls: bool) -> None:
    cert, key = make_cert(tmp_path)
    listener, port, targets = ws_server(_server_ctx(cert, key, None) if tls else None)
    proxy = Proxy(tmp_path, [])
    t0 = time.time()
    try:
        if tls:
            # wss: a CONNECT tunnel, TLS with mitmproxy (trusting its CA), then the upgrade.
            ctx = ssl.create_default_context(cafile=str(proxy.confdir / "mitmproxy-ca-cert.pem"))
            sock: socket.socket = ctx.wrap_socket(
                _connect_tunnel(proxy, "localhost", port), server_hostname="localhost"
            )
            target = "/ws/chat?token=abc&v=2"
        else:
            # ws: the upgrade request in absolute form, straight to the proxy.
            sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
            target = f"http://localhost:{port}/ws/chat?token=abc&v=2"
        with sock:
            replies = ws_exchange(sock, f"localhost:{port}", target, WS_MESSAGES)
        assert replies == [m * 2 for m in WS_MESSAGES]
        wait_until(lambda: len(proxy.rows()) >= 1, 20, "the WebSocket row")
        t1 = time.time()
    finally:
        proxy.stop()
        listener.close()
    assert targets == ["/ws/chat?token=abc&v=2"]
    rows = proxy.rows()
    assert len(rows) == 1, [(r.protocol, r.tls, r.path, r.error) for r in rows]
    (c,) = rows
    assert (c.protocol, c.scheme, c.tls) == (
        ("wss", "https", "intercepted") if tls else ("ws", "http", "none")
    )
    assert (c.method, c.path, c.query_keys, c.status, c.http_version) == (
        "GET",
        "/ws/chat",
        ("token", "v"),
        101,
        "HTTP/1.1",
    )
    assert (c.host, c.ip, c.port, c.sni) == ("localhost", "127.0.0.1", port, "localhost" if tls else None)
    assert c.client and c.client.startswith("127.0.0.1:") and c.error is None
    if tls:
        assert c.tls_version and c.tls_version.startswith("TLS")
    _check_time(c, t0, t1)  # from the handshake to the close
    # The handshake's headers plus every message, each direction.
    out = sum(len(m.encode() if isinstance(m, str) else m) for m in WS_MESSAGES)
    with Store(proxy.db) as store:
        ((_, request),) = list(store.requests())
    assert c.bytes_out == _header_bytes(request.headers) + out
    assert 2 * out < c.bytes_in < 2 * out + 400  # plus the 101 response's few headers


def test_websocket_still_open_at_stop(tmp_path: Path) -> None:
    # mitmproxy cancels a WebSocket still open when it stops, without websocket_end: the recorder
    # writes it from done() with what was exchanged so far.
    cert, key = make_cert(tmp_path)
    listener, port, _ = ws_server(_server_ctx(cert, key, None))
    proxy = Proxy(tmp_path, [])
    try:
        ctx = ssl.create_default_context(cafile=str(proxy.confdir / "mitmproxy-ca-cert.pem"))
        with ctx.wrap_socket(_connect_tunnel(proxy, "localhost", port), server_hostname="localhost") as sock:
            assert ws_exchange(sock, f"localhost:{port}", "/ws/push", ["ping"], close=False) == ["pingping"]
            time.sleep(0.3)  # a few flush intervals: nothing may be written while the socket is open
            assert proxy.rows() == []
            proxy.stop()
    finally:
        proxy.stop()
        listener.close()
    (c,) = proxy.rows()
    assert (c.protocol, c.tls, c.path, c.status) == ("wss", "intercepted", "/ws/push", 101)
    assert c.error == "still open when mitmproxy stopped"
    with Store(proxy.db) as store:
        ((_, request),) = list(store.requests())
    assert c.bytes_out == _header_bytes(request.headers) + len("ping")
    assert 8 < c.bytes_in < 8 + 400
