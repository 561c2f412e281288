"""A real ``mitmdump -s addons/dataflow.py`` on loopback and the servers behind it, for the
end-to-end capture tests (``tests/traffic/test_mitmdump_*.py``).

:class:`Proxy` starts mitmdump with the addon writing to a case file in a temporary directory;
:func:`https_server` (with :func:`make_cert`) is an HTTPS upstream answering :data:`BODY`;
:class:`H3Loop` and :func:`h3_server` are an HTTP/3 upstream (aioquic, mitmproxy's own dependency).
Everything binds to 127.0.0.1 (or an address the caller gives).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import http.server
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import pytest

from audit.models import Connection
from audit.store import Store

ROOT = Path(__file__).resolve().parents[2]
#: The mitmdump of this interpreter's environment (the one that has our dependencies).
MITMDUMP = Path(sys.executable).parent / "mitmdump"
#: The addon shim that mitmdump loads.
ADDON = ROOT / "addons" / "dataflow.py"
#: What every upstream server here answers.
BODY = b'{"ok": true}'
#: Seconds a test waits for one network step (a connection, a reply, an HTTP/3 exchange).
TIMEOUT = 10.0

#: Skips a test (or a module, in its ``pytestmark``) when no mitmdump is installed.
needs_mitmdump = pytest.mark.skipif(
    not MITMDUMP.exists() and not shutil.which("mitmdump"), reason="mitmdump not installed"
)


def mitmdump_path() -> str:
    """This environment's mitmdump, else the one on ``PATH``."""
    return str(MITMDUMP) if MITMDUMP.exists() else str(shutil.which("mitmdump"))


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free at the time of asking (TCP, or UDP with ``socket.SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``pred`` every 50 ms; fail the test naming ``what`` if it is not true within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_cert(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "server.pem", tmp / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET and POST with 200 and :data:`BODY` as JSON (reading any request body first)."""

    def _reply(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = BODY
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _reply

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass


def https_server(
    cert: Path, key: Path, host: str = "127.0.0.1", port: int = 0
) -> http.server.ThreadingHTTPServer:
    """A :class:`JsonHandler` over TLS on ``host:port`` (default: a free loopback port), served from a
    daemon thread."""
    srv = http.server.ThreadingHTTPServer((host, port), JsonHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class Proxy:
    """mitmdump with our addon on a free loopback port, writing to ``tmp/capture.sqlite`` (app ``e2e``),
    its own confdir (and CA) under ``tmp/conf`` and its output in ``tmp/mitmdump.log``. ``extra`` are
    more mitmdump arguments. Started on construction; :meth:`stop` ends it with SIGINT."""

    def __init__(self, tmp: Path, extra: list[str], flush_ms: int = 100) -> None:
        self.port = free_port()
        self.confdir = tmp / "conf"
        self.db = tmp / "capture.sqlite"
        self.log = (tmp / "mitmdump.log").open("wb")
        args = [
            mitmdump_path(), "-q", "-s", str(ADDON), "--listen-host", "127.0.0.1", "--listen-port", str(self.port),
            "--set", f"confdir={self.confdir}", "--set", f"audit_db={self.db}", "--set", "audit_app=e2e",
            "--set", f"audit_flush_interval={flush_ms}", "--set", "ssl_insecure=true",
            *extra,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp, env=env)
        wait_until(self._listening, 30, "mitmdump to listen")
        wait_until((self.confdir / "mitmproxy-ca-cert.pem").exists, 10, "the mitmproxy CA")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"mitmdump exited with {self.proc.returncode}: {self.output()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def tunnel(self, host: str, port: int, ctx: ssl.SSLContext) -> http.client.HTTPSConnection:
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        c.set_tunnel(host, port)
        return c

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def rows(self) -> list[Connection]:
        if not self.db.exists():
            return []
        with Store(self.db) as s:
            return [c for _, c in s.connections()]


def dns_query(name: str, qid: int = 0x1234) -> bytes:
    """A DNS query packet for the A record of ``name``."""
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return header + qname + struct.pack("!HH", 1, 1)


class H3Loop:
    """An asyncio loop in a thread, for aioquic's server and client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self.loop).result(
            timeout + 1
        )

    def close(self, *servers: Any) -> None:
        for server in servers:
            self.loop.call_soon_threadsafe(server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def h3_protocol(client: bool) -> type:
    """aioquic's protocol class for the client or the server end of an HTTP/3 exchange."""
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.h3.connection import H3Connection
    from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
    from aioquic.quic.events import QuicEvent

    class H3Protocol(QuicConnectionProtocol):
        """Both ends of a minimal HTTP/3 exchange: the server answers every request with BODY, the
        client collects ``stream id -> (headers, body)`` and wakes the waiter when a stream ends."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.h3 = H3Connection(self._quic)
            self.heads: dict[int, dict[bytes, bytes]] = {}
            self.bodies: dict[int, bytes] = {}
            self.ended: dict[int, asyncio.Future[None]] = {}
            self.requests: list[dict[bytes, bytes]] = []

        def quic_event_received(self, event: QuicEvent) -> None:
            for ev in self.h3.handle_event(event):
                self._h3_event(ev)

        def _h3_event(self, ev: H3Event) -> None:
            if isinstance(ev, HeadersReceived):
                self.heads.setdefault(ev.stream_id, {}).update(dict(ev.headers))
            elif isinstance(ev, DataReceived):
                self.bodies[ev.stream_id] = self.bodies.get(ev.stream_id, b"") + ev.data
            else:
                return
            if ev.stream_ended:
                self._ended(ev.stream_id)

        def _ended(self, sid: int) -> None:
            if client:
                fut = self.ended.get(sid)
                if fut is not None and not fut.done():
                    fut.set_result(None)
                return
            self.requests.append(self.heads[sid])
            self.h3.send_headers(sid, [
                (b":status", b"200"), (b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode()),
            ])  # fmt: skip
            self.h3.send_data(sid, BODY, end_stream=True)
            self.transmit()

        async def request(
            self, headers: list[tuple[bytes, bytes]], body: bytes
        ) -> tuple[dict[bytes, bytes], bytes]:
            sid = self._quic.get_next_available_stream_id()
            self.ended[sid] = asyncio.get_running_loop().create_future()
            self.h3.send_headers(sid, headers, end_stream=not body)
            if body:
                self.h3.send_data(sid, body, end_stream=True)
            self.transmit()
            await self.ended[sid]
            return self.heads[sid], self.bodies.get(sid, b"")

    return H3Protocol


async def h3_server(cert: Path, key: Path, port: int, host: str = "127.0.0.1") -> tuple[Any, list[Any]]:
    """An HTTP/3 server on ``host:port`` (UDP) answering :data:`BODY`; the server and the list of its
    connections' protocols (each keeps the request headers it saw in ``requests``)."""
    from aioquic.asyncio import serve
    from aioquic.h3.connection import H3_ALPN
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    config.load_cert_chain(cert, key)
    protocols: list[Any] = []
    base = h3_protocol(client=False)

    def create(*args: Any, **kwargs: Any) -> Any:
        p = base(*args, **kwargs)
        protocols.append(p)
        return p

    server = await serve(host, port, configuration=config, create_protocol=create)
    return server, protocols


class RawProxy(Proxy):
    """A :class:`Proxy` whose clients send what a hostile app sends: HTTP/2 through a CONNECT tunnel with
    no header validation, raw HTTP/1 bytes."""

    def tls_tunnel(self, port: int, alpn: list[str]) -> ssl.SSLSocket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(f"CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1024)
        ctx = ssl.create_default_context(cafile=str(self.confdir / "mitmproxy-ca-cert.pem"))
        ctx.set_alpn_protocols(alpn)
        return ctx.wrap_socket(s, server_hostname="localhost")

    def h2_get(self, port: int, path: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> str:
        """One HTTP/2 GET through the proxy; the events the client saw, by name."""
        t = self.tls_tunnel(port, ["h2"])
        assert t.selected_alpn_protocol() == "h2"
        # Our own client must not refuse to send what a hostile app sends.
        c = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False
            )
        )
        c.initiate_connection()
        sid = c.get_next_available_stream_id()
        headers = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"localhost:%d" % port),
            (b":path", path),
        ]
        c.send_headers(sid, headers + (extra or []), end_stream=True)
        t.sendall(c.data_to_send())
        seen: list[str] = []
        try:
            while not seen or seen[-1] not in ("StreamEnded", "StreamReset", "ConnectionTerminated"):
                data = t.recv(65536)
                if not data:
                    break
                seen += [type(ev).__name__ for ev in c.receive_data(data)]
                t.sendall(c.data_to_send())
        finally:
            t.close()
        return " ".join(seen)

    def http1(self, port: int, request: bytes) -> bytes:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(request)
        out = b""
        while data := s.recv(65536):
            out += data
        s.close()
        return out
