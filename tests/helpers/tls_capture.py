"""Real TLS captures for the decryption tests and benchmark: a local TLS server (Python ``ssl``,
HTTP/1.1 and HTTP/2 by ALPN) that writes its session keys (``SSLContext.keylog_filename``), curl as the
client, ``dumpcap -i lo`` capturing on loopback, and ``editcap --inject-secrets`` to embed the key log
into the pcapng as a Decryption Secrets Block.

Everything stays on 127.0.0.1; the server's certificate is generated per run. Needs root (or the
capture capability) for dumpcap on ``lo``: :func:`missing_tools` says what is absent.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "api.decrypt.test"


@dataclass(frozen=True)
class Request:
    """One request curl sends."""

    method: str
    path: str
    body: bytes = b""


@dataclass
class Received:
    """What the server read: (ALPN, method, path, body) per request."""

    items: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, alpn: str, method: str, path: str, body: bytes) -> None:
        with self.lock:
            self.items.append((alpn, method, path, body))


def missing_tools() -> list[str]:
    """Tools these captures need that are not on PATH (and dumpcap's need for root)."""
    missing = [t for t in ("tshark", "dumpcap", "editcap", "curl") if shutil.which(t) is None]
    if not missing and os.geteuid() != 0:
        missing.append("root (dumpcap on lo)")
    return missing


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for :data:`HOST` (cert file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class TlsServer:
    """A threaded HTTPS server on 127.0.0.1 answering every request with a small JSON body."""

    def __init__(self, directory: Path, keylog: Path) -> None:
        cert, key = certificate(directory)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.set_alpn_protocols(["h2", "http/1.1"])
        self.ctx.keylog_filename = str(keylog)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.received = Received()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(raw,), daemon=True).start()

    def _connection(self, raw: socket.socket) -> None:
        try:
            with self.ctx.wrap_socket(raw, server_side=True) as conn:
                if conn.selected_alpn_protocol() == "h2":
                    self._h2(conn)
                else:
                    self._http1(conn)
        except (OSError, ssl.SSLError):
            pass

    def _http1(self, conn: ssl.SSLSocket) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v)
            while len(buf) < length:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            body, buf = buf[:length], buf[length:]
            self.received.add("http/1.1", method, path, body)
            reply = _reply(path)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(reply), reply)
            )

    def _h2(self, conn: ssl.SSLSocket) -> None:
        import h2.config
        import h2.connection
        import h2.events

        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2c.initiate_connection()
        conn.sendall(h2c.data_to_send())
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        pending: dict[int, bytes] = {}
        while True:
            data = conn.recv(65536)
            if not data:
                return
            for event in h2c.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                               for k, v in event.headers}  # fmt: skip
                    streams[event.stream_id] = (headers, bytearray())
                elif isinstance(event, h2.events.DataReceived):
                    streams[event.stream_id][1].extend(event.data)
                    h2c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if isinstance(event, h2.events.StreamEnded | h2.events.RequestReceived) and (
                    isinstance(event, h2.events.StreamEnded) or event.stream_ended is not None
                ):
                    headers, body = streams.pop(event.stream_id)
                    self.received.add("h2", headers[":method"], headers[":path"], bytes(body))
                    reply = _reply(headers[":path"])
                    h2c.send_headers(event.stream_id, [(":status", "200"), ("content-type", "application/json"),
                                                       ("content-length", str(len(reply)))])  # fmt: skip
                    pending[event.stream_id] = reply
                if isinstance(
                    event, h2.events.WindowUpdated | h2.events.StreamEnded | h2.events.RequestReceived
                ):
                    for sid in list(pending):
                        pending[sid] = _send_h2(h2c, sid, pending[sid])
                        if not pending[sid]:
                            del pending[sid]
            conn.sendall(h2c.data_to_send())


def _send_h2(h2c: Any, sid: int, data: bytes) -> bytes:
    """Send what flow control allows of a response body (ending the stream with its last byte);
    the rest is returned, to be sent when the client opens its window."""
    while data:
        room = min(h2c.local_flow_control_window(sid), h2c.max_outbound_frame_size)
        if room <= 0:
            return data
        chunk, data = data[:room], data[room:]
        h2c.send_data(sid, chunk, end_stream=not data)
    return b""


def _reply(path: str) -> bytes:
    """The server's answer: ``{"ok": true}``, padded to N bytes when the query asks ``resp=N``."""
    reply = b'{"ok": true}'
    _, _, query = path.partition("?")
    for pair in query.split("&"):
        k, _, v = pair.partition("=")
        if k == "resp" and v.isdigit():
            reply = b'{"ok": true, "pad": "' + b"p" * max(0, int(v) - 23) + b'"}'
    return reply


@contextmanager
def dumpcap(path: Path, port: int) -> Iterator[None]:
    """Capture TCP traffic of ``port`` on loopback into ``path`` (pcapng) while the block runs.

    dumpcap says "Capturing on" before its filter sees packets, and writes packets in batches: a UDP
    probe (to a port next to nothing, also captured) is sent before and after the block until the
    file grows, so that the capture provably runs before the first request and holds the last one.
    The probe shows in an import as one UDP flow to 127.0.0.1."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    probe_port = probe.getsockname()[1]
    proc = subprocess.Popen(
        ["dumpcap", "-i", "lo", "-B", "64", "-f", f"tcp port {port} or udp dst port {probe_port}", "-w", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None

    def flushed() -> None:
        before = _packets(path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            probe.sendto(b"probe", ("127.0.0.1", probe_port))
            time.sleep(0.05)
            if _packets(path) > before:
                return
        raise RuntimeError(f"dumpcap wrote no packet to {path} (exit status {proc.poll()})")

    try:
        flushed()
        yield
        flushed()
    finally:
        probe.close()
        proc.send_signal(signal.SIGINT)
        report = proc.communicate(timeout=30)[1].decode("utf-8", "replace")
    # "Packets received/dropped on interface 'Loopback: lo': 5230/0 (...)": a dropped packet would
    # leave requests out of the capture, and the tests would blame the importer
    dropped = re.search(r"received/dropped on interface .*?: (\d+)/(\d+)", report)
    if dropped is not None and int(dropped.group(2)):
        raise RuntimeError(f"dumpcap dropped {dropped.group(2)} of {dropped.group(1)} packets")


def _packets(path: Path) -> int:
    """Enhanced Packet Blocks written so far to a little-endian pcapng (0 before it exists)."""
    data = path.read_bytes() if path.exists() else b""
    pos = n = 0
    while pos + 8 <= len(data):
        kind, length = (
            int.from_bytes(data[pos : pos + 4], "little"),
            int.from_bytes(data[pos + 4 : pos + 8], "little"),
        )
        if length < 12 or pos + length > len(data):
            break
        n += kind == 6
        pos += length
    return n


def curl(
    port: int,
    requests: Sequence[Request],
    *,
    http2: bool,
    tls12: bool,
    bodies: Path,
    keylog: Path | None = None,
) -> None:
    """Send ``requests`` with one curl process (so they share a connection where the protocol allows);
    request bodies are written under ``bodies`` (curl reads them byte for byte with ``@file``)."""
    args = ["curl", "-sS", "-k", "--resolve", f"{HOST}:{port}:127.0.0.1", "-o", "/dev/null"]
    args += ["--http2"] if http2 else ["--http1.1"]
    args += ["--tlsv1.2", "--tls-max", "1.2"] if tls12 else ["--tlsv1.3"]
    first = True
    for i, r in enumerate(requests):
        if not first:
            args += ["--next", "-sS", "-k", "--resolve", f"{HOST}:{port}:127.0.0.1", "-o", "/dev/null"]
            args += ["--http2"] if http2 else ["--http1.1"]
            args += ["--tlsv1.2", "--tls-max", "1.2"] if tls12 else ["--tlsv1.3"]
        first = False
        args += ["-X", r.method, f"https://{HOST}:{port}{r.path}"]
        if r.body:
            body = bodies / f"body-{port}-{i}"
            body.write_bytes(r.body)
            args += ["-H", "Content-Type: application/json", "--data-binary", f"@{body}"]
    env = dict(os.environ)
    env.pop("SSLKEYLOGFILE", None)
    if keylog is not None:
        env["SSLKEYLOGFILE"] = str(keylog)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(proxy, None)
    subprocess.run(args, env=env, check=True, timeout=60, capture_output=True)


def inject_secrets(capture: Path, keylog: Path, out: Path) -> Path:
    """``capture`` with ``keylog`` embedded as a Decryption Secrets Block (``editcap --inject-secrets``)."""
    subprocess.run(["editcap", "--inject-secrets", f"tls,{keylog}", str(capture), str(out)],
                   check=True, timeout=120, capture_output=True)  # fmt: skip
    return out


@dataclass(frozen=True)
class Session:
    """One curl invocation: its requests, protocol and TLS version."""

    requests: tuple[Request, ...]
    http2: bool = False
    tls12: bool = False


def record(directory: Path, sessions: Sequence[Session]) -> tuple[Path, Path, Received]:
    """Capture ``sessions`` against one server: (pcapng, the server's key log, what it received)."""
    directory.mkdir(parents=True, exist_ok=True)
    keylog = directory / "server.keylog"
    capture = directory / "plain.pcapng"
    server = TlsServer(directory, keylog)
    try:
        with dumpcap(capture, server.port):
            for s in sessions:
                curl(server.port, s.requests, http2=s.http2, tls12=s.tls12, bodies=directory)
    finally:
        server.close()
    return capture, keylog, server.received
