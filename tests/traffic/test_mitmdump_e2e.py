"""End to end: a real ``mitmdump -s addons/dataflow.py`` on loopback, real clients and servers.

One proxy serves every scenario (each on its own server port, so rows are told apart by port):
a client trusting mitmproxy's CA (full flow), a client pinning the server's own certificate (TLS
failure still recorded with SNI), an ignored host (passthrough), a raw TCP echo (``tcp_hosts``) and
DNS mode on a loopback port. A second proxy is killed with SIGKILL: what was flushed before survives.
Everything stays on 127.0.0.1; DNS answers come from the hosts file (``localhost``).
"""

from __future__ import annotations

import signal
import socket
import socketserver
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit.models import Connection
from audit.store import Store
from tests.helpers.mitm import (
    Proxy,
    dns_query,
    free_port,
    https_server,
    make_cert,
    needs_mitmdump,
    wait_until,
)

AAID = "38400000-8cf0-11bd-b23e-10b96e40000d"

pytestmark = [pytest.mark.slow, needs_mitmdump]


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


def echo_server() -> socketserver.ThreadingTCPServer:
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("e2e")
    cert, key = make_cert(tmp)
    full, pinned, ignored = (https_server(cert, key) for _ in range(3))
    echo = echo_server()
    ports = {
        "full": full.server_address[1],
        "pinned": pinned.server_address[1],
        "ignored": ignored.server_address[1],
        "echo": echo.server_address[1],
        "dns": free_port(socket.SOCK_DGRAM),
    }
    proxy = Proxy(
        tmp,
        [
            "--mode", "regular", "--mode", f"dns@{ports['dns']}",
            "--set", f"ignore_hosts=^localhost:{ports['ignored']}$",
            "--set", f"tcp_hosts=^localhost:{ports['echo']}$",
            # Only the hosts file and loopback are ever asked.
            "--set", "dns_name_servers=127.0.0.1", "--set", "dns_use_hosts_file=true",
        ],
    )  # fmt: skip
    results: dict[str, Any] = {"ports": ports, "proxy": proxy}
    try:
        # (1) A client that trusts mitmproxy's CA: the full flow is seen.
        trusting = ssl.create_default_context(cafile=str(proxy.confdir / "mitmproxy-ca-cert.pem"))
        c = proxy.tunnel("localhost", ports["full"], trusting)
        c.request("POST", f"/v1/track?adid={AAID}&lang=en", body=b'{"event": "open"}',
                  headers={"content-type": "application/json"})  # fmt: skip
        resp = c.getresponse()
        results["full_status"] = resp.status
        results["full_body"] = resp.read()
        c.close()

        # (2) A client pinning the server's own certificate: the handshake with mitmproxy fails.
        pinning = ssl.create_default_context(cafile=str(cert))
        c = proxy.tunnel("localhost", ports["pinned"], pinning)
        with pytest.raises(ssl.SSLError):
            c.request("GET", "/pinned")
        c.close()

        # (3) An ignored host: passed through; the client talks to the real server.
        c = proxy.tunnel("localhost", ports["ignored"], pinning)
        c.request("GET", "/passthrough")
        results["ignored_status"] = c.getresponse().status
        c.close()

        # (4) Raw TCP through a CONNECT tunnel (tcp_hosts).
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        s.sendall(
            f"CONNECT localhost:{ports['echo']} HTTP/1.1\r\nHost: localhost:{ports['echo']}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1024)
        s.sendall(b"hello echo")
        got = b""
        while len(got) < 10:
            got += s.recv(1024)
        results["echo"] = got
        s.close()

        # (5) DNS mode on a loopback UDP port.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(10)
            u.sendto(dns_query("localhost"), ("127.0.0.1", ports["dns"]))
            results["dns_reply"] = u.recvfrom(4096)[0]
        wait_until(lambda: len(proxy.rows()) >= 4, 20, "records to be flushed")
    finally:
        proxy.stop()
        for srv in (full, pinned, ignored, echo):
            srv.shutdown()
    results["rows"] = proxy.rows()
    with Store(proxy.db) as store:
        results["dns"] = store.dns_records()
        results["inputs"] = store.inputs()
    yield results


def by_port(capture: dict[str, Any], name: str) -> list[Connection]:
    port = capture["ports"][name]
    return [c for c in capture["rows"] if c.port == port]


def test_full_flow(capture: dict[str, Any]) -> None:
    assert capture["full_status"] == 200 and capture["full_body"] == b'{"ok": true}'
    (c,) = by_port(capture, "full")
    assert (c.protocol, c.tls, c.host, c.ip, c.app, c.source) == (
        "https",
        "intercepted",
        "localhost",
        "127.0.0.1",
        "e2e",
        "live",
    )
    assert (c.method, c.path, c.status) == ("POST", "/v1/track", 200)
    assert c.query_keys == ("adid", "lang")
    assert c.sni == "localhost" and c.tls_version and c.tls_version.startswith("TLS")
    assert c.bytes_out >= len(b'{"event": "open"}') and c.bytes_in >= len(b'{"ok": true}')
    assert c.request_content_type == "application/json" and c.response_content_type == "application/json"
    assert any(f.data_type == "aaid" and f.location == "query:adid" for f in c.findings)


def test_pinned_client_still_recorded(capture: dict[str, Any]) -> None:
    (c,) = by_port(capture, "pinned")
    assert (c.protocol, c.tls, c.sni, c.host) == ("tls", "failed", "localhost", "localhost")
    assert c.ip == "127.0.0.1"
    assert c.error and "does not trust" in c.error


def test_ignored_host_is_passthrough(capture: dict[str, Any]) -> None:
    assert capture["ignored_status"] == 200
    (c,) = by_port(capture, "ignored")
    assert c.tls == "passthrough" and c.host == "localhost" and c.ip == "127.0.0.1"
    assert c.protocol in ("tcp", "tls")


def test_raw_tcp_row(capture: dict[str, Any]) -> None:
    assert capture["echo"] == b"hello echo"
    (c,) = by_port(capture, "echo")
    assert (c.protocol, c.tls, c.host) == ("tcp", "none", "localhost")
    assert (c.bytes_out, c.bytes_in) == (10, 10)


def test_dns_mode_rows(capture: dict[str, Any]) -> None:
    reply = capture["dns_reply"]
    assert reply[:2] == b"\x12\x34" and reply[2] & 0x80  # our id, a response
    recs = [r for r in capture["dns"] if r["name"] == "localhost"]
    assert recs and "127.0.0.1" in {r["answer"] for r in recs}
    assert all(r["app"] == "e2e" and r["source"] == "live" for r in recs)


def test_no_double_counting(capture: dict[str, Any]) -> None:
    rows = capture["rows"]
    assert len(rows) == 4, [(c.protocol, c.tls, c.port) for c in rows]
    assert [i["kind"] for i in capture["inputs"]] == ["live"]


def test_kill_9_keeps_flushed_records(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    srv = https_server(cert, key)
    proxy = Proxy(tmp_path, [], flush_ms=100)
    try:
        ctx = ssl.create_default_context(cafile=str(proxy.confdir / "mitmproxy-ca-cert.pem"))
        c = proxy.tunnel("localhost", srv.server_address[1], ctx)
        for i in range(5):
            c.request("GET", f"/n/{i}")
            c.getresponse().read()
        c.close()
        wait_until(lambda: len(proxy.rows()) == 5, 20, "five flushed records")
        proxy.proc.send_signal(signal.SIGKILL)
        proxy.proc.wait(10)
    finally:
        proxy.stop()
        srv.shutdown()
    assert proxy.proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(proxy.db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert sorted(c.path or "" for c in proxy.rows()) == [f"/n/{i}" for i in range(5)]
