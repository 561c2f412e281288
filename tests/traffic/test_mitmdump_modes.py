"""End to end through a real ``mitmdump`` in the reverse and SOCKS5 modes (regular and DNS mode are
covered by test_mitmdump_e2e.py). Loopback only."""

from __future__ import annotations

import socket
import ssl
import struct
from pathlib import Path

import pytest

from tests.helpers.mitm import MITMDUMP, Proxy, https_server, make_cert, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not MITMDUMP.exists(), reason="mitmdump not installed")]


def _https_get(sock: socket.socket, ctx: ssl.SSLContext, host: str, path: str) -> bytes:
    with ctx.wrap_socket(sock, server_hostname=host) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
    return data


def test_reverse_mode_records_the_upstream(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    srv = https_server(cert, key)
    upstream = srv.server_address[1]
    proxy = Proxy(tmp_path, ["--mode", f"reverse:https://localhost:{upstream}"])
    try:
        ctx = ssl.create_default_context(cafile=str(proxy.confdir / "mitmproxy-ca-cert.pem"))
        reply = _https_get(
            socket.create_connection(("127.0.0.1", proxy.port), timeout=10), ctx, "localhost", "/rev?gaid=1"
        )
        assert reply.split(b"\r\n", 1)[0].endswith(b" 200 OK"), reply[:200]
        wait_until(lambda: len(proxy.rows()) >= 1, 20, "the reverse-mode flow")
    finally:
        proxy.stop()
        srv.shutdown()
    rows = proxy.rows()
    # The readiness probe (connect + close) makes reverse mode contact the upstream too: it is
    # recorded, truthfully, as a connection closed before any request.
    (c,) = [r for r in rows if r.protocol == "https"]
    assert all(r.error == "closed before any request" for r in rows if r is not c)
    assert (c.protocol, c.tls, c.host, c.ip, c.port) == (
        "https",
        "intercepted",
        "localhost",
        "127.0.0.1",
        upstream,
    )
    assert (c.method, c.path, c.query_keys, c.status) == ("GET", "/rev", ("gaid",), 200)


def _socks5_connect(proxy_port: int, host: str, port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
    s.sendall(b"\x05\x01\x00")  # version 5, one method: no authentication
    assert s.recv(2) == b"\x05\x00"
    name = host.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", port))
    reply = s.recv(10)
    assert reply[:2] == b"\x05\x00", reply
    return s


def test_socks5_mode_records_intercepted_and_pinned(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    srv = https_server(cert, key)
    port = srv.server_address[1]
    proxy = Proxy(tmp_path, ["--mode", "socks5"])
    try:
        trusting = ssl.create_default_context(cafile=str(proxy.confdir / "mitmproxy-ca-cert.pem"))
        reply = _https_get(_socks5_connect(proxy.port, "localhost", port), trusting, "localhost", "/socks")
        assert reply.split(b"\r\n", 1)[0].endswith(b" 200 OK"), reply[:200]
        pinning = ssl.create_default_context(cafile=str(cert))
        with pytest.raises(ssl.SSLError):
            _https_get(_socks5_connect(proxy.port, "localhost", port), pinning, "localhost", "/pinned")
        wait_until(lambda: len(proxy.rows()) >= 2, 20, "both SOCKS5 connections")
    finally:
        proxy.stop()
        srv.shutdown()
    rows = sorted(proxy.rows(), key=lambda c: c.tls)
    assert [(c.tls, c.host, c.port) for c in rows] == [
        ("failed", "localhost", port),
        ("intercepted", "localhost", port),
    ]
    assert rows[0].sni == "localhost" and rows[0].error
    assert rows[1].path == "/socks" and rows[1].status == 200
