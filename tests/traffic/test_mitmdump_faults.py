"""End to end (issue 15): a real ``mitmdump -s addons/dataflow.py`` on loopback receives requests whose
path, query and headers hold bytes that are not UTF-8. mitmproxy decodes them with
``surrogateescape``; the recorder stores them sanitised and keeps recording every later flow."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from audit.store import Store
from tests.helpers.mitm import JsonHandler, RawProxy, https_server, make_cert, needs_mitmdump, wait_until

pytestmark = [pytest.mark.slow, needs_mitmdump]


def test_non_utf8_requests_do_not_stop_recording(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    tls_srv = https_server(cert, key)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JsonHandler)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    tls_port, plain_port = tls_srv.server_address[1], plain.server_address[1]
    # lazy: mitmproxy offers the client h2 without asking the (HTTP/1-only) test server first
    proxy = RawProxy(tmp_path, ["--set", "connection_strategy=lazy"], flush_ms=50)
    try:
        for round_ in range(3):
            assert "ResponseReceived" in proxy.h2_get(tls_port, b"/p\xff\xfe/%d?k\xff=1&ok=2" % round_)
            assert "ResponseReceived" in proxy.h2_get(tls_port, b"/good/h2/%d" % round_)
            answer = proxy.http1(plain_port, (
                f"POST http://localhost:{plain_port}/ct/{round_} HTTP/1.1\r\nHost: localhost:{plain_port}\r\n"
                "Content-Type: text/\xff\xfe\r\nX-Note: \xff\r\nContent-Length: 4\r\nConnection: close\r\n\r\n\xff\xfe\xed\x00"
            ).encode("latin-1"))  # fmt: skip
            assert answer.startswith(b"HTTP/1.0 200")
            answer = proxy.http1(plain_port, (
                f"GET http://localhost:{plain_port}/good/h1/{round_} HTTP/1.1\r\nHost: localhost:{plain_port}\r\n"
                "Connection: close\r\n\r\n"
            ).encode())  # fmt: skip
            assert answer.startswith(b"HTTP/1.0 200")
        wait_until(lambda: len({c.path for c in proxy.rows()}) >= 12, 20, "every request to be recorded")
    finally:
        proxy.stop()
        tls_srv.shutdown()
        plain.shutdown()
    got = proxy.rows()
    paths = {c.path for c in got}
    for round_ in range(3):
        assert {
            f"/good/h2/{round_}",
            f"/good/h1/{round_}",
            f"/p\ufffd\ufffd/{round_}",
            f"/ct/{round_}",
        } <= paths
    poisoned = [c for c in got if (c.path or "").startswith("/p")]
    assert all(c.query_keys == ("k\ufffd", "ok") for c in poisoned)
    assert {c.request_content_type for c in got if (c.path or "").startswith("/ct/")} == {"text/\ufffd\ufffd"}
    with Store(proxy.db) as s:
        assert all(i["notes"] == [] for i in s.inputs())
