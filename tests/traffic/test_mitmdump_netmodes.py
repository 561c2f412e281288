"""End to end through a real ``mitmdump`` in the modes that need the kernel's network stack:
transparent, WireGuard and local (regular and DNS: test_mitmdump_e2e.py; reverse and SOCKS5:
test_mitmdump_modes.py).

Transparent and WireGuard run in a lab of two network namespaces, so that the client's traffic is
really routed to mitmproxy, not configured to use it::

    host namespace             router namespace R                  client namespace C
    HTTPS server  --veth--  mitmdump, iptables REDIRECT  --veth--  client, wireguard-go
    198.18.k.1:443          198.18.k.2 | 198.19.k.1                198.19.k.2

The client connects to the server's address. In transparent mode R's nat table redirects the
connection to mitmdump; in WireGuard mode it enters a wireguard-go tunnel whose peer is mitmdump's
WireGuard endpoint. Either way mitmdump then connects to the server itself. Local mode (mitmproxy 12
on Linux) intercepts one process by name with mitmproxy's eBPF redirector, on loopback.

Nothing leaves the machine. The tests need root; each skips, saying why, when a tool or a kernel
feature is missing. Deleting the namespaces removes their interfaces and iptables rules.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.metadata
import importlib.util
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit.models import Connection
from audit.store import Store
from tests.helpers.mitm import (
    ADDON,
    MITMDUMP,
    H3Loop,
    Proxy,
    dns_query,
    h3_server,
    https_server,
    make_cert,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not MITMDUMP.exists(), reason="mitmdump not installed")]

SNI = "tracker.example.test"
"""The name the clients ask for; the address they connect to is the server's."""

# The client runs in another namespace (or, in local mode, as its own process): a separate Python
# with nothing but the standard library. Its one argument is a JSON request; it prints one JSON line:
# the HTTPS status line or the reply datagram, or the error.
CLIENT = r"""
import ctypes, json, socket, ssl, sys
req = json.loads(sys.argv[1])
if req.get("comm"):  # PR_SET_NAME: local mode selects processes by this name
    ctypes.CDLL(None).prctl(15, req["comm"].encode(), 0, 0, 0)
try:
    if "datagram" in req:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(10)
            u.sendto(bytes.fromhex(req["datagram"]), (req["ip"], req["port"]))
            print(json.dumps({"reply": u.recvfrom(4096)[0].hex()}))
        sys.exit()
    ctx = ssl.create_default_context(cafile=req["cafile"])
    with socket.create_connection((req["ip"], req["port"]), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=req["name"]) as tls:
            head = f"GET {req['path']} HTTP/1.1\r\nHost: {req['name']}\r\nConnection: close\r\n\r\n"
            tls.sendall(head.encode())
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
    print(json.dumps({"status": data.split(b"\r\n", 1)[0].decode()}))
except OSError as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
"""


# An HTTP/3 client (aioquic, one of mitmproxy's own dependencies, so this one runs with the full
# interpreter): GET req["path"] from req["ip"]:req["port"] with SNI req["name"], trusting req["cafile"].
H3_CLIENT = r"""
import asyncio, json, sys
from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration

req = json.loads(sys.argv[1])


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.status, self.body, self.done = None, b"", asyncio.Event()

    def quic_event_received(self, event):
        for ev in self.h3.handle_event(event):
            if isinstance(ev, HeadersReceived):
                self.status = dict(ev.headers).get(b":status", b"").decode()
            elif isinstance(ev, DataReceived):
                self.body += ev.data
            if getattr(ev, "stream_ended", False):
                self.done.set()


async def main():
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=req["name"])
    config.load_verify_locations(req["cafile"])
    async with connect(req["ip"], req["port"], configuration=config, create_protocol=Client) as c:
        sid = c._quic.get_next_available_stream_id()
        c.h3.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", req["name"].encode()),
                                (b":path", req["path"].encode())], end_stream=True)
        c.transmit()
        await c.done.wait()
        return {"status": c.status, "alpn": c._quic.tls.alpn_negotiated, "body": c.body.decode(errors="replace")}


try:
    print(json.dumps(asyncio.run(asyncio.wait_for(main(), 15))))
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
"""


def h3_get(ip: str, port: int, path: str, cafile: Path, *, netns: str) -> dict[str, str]:
    """GET ``path`` over HTTP/3 from ``ip:port`` inside ``netns``, SNI :data:`SNI`, trusting ``cafile``."""
    request = json.dumps({"ip": ip, "port": port, "path": path, "name": SNI, "cafile": str(cafile)})
    out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", H3_CLIENT, request],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 0 and out.stdout, out.stderr
    result: dict[str, str] = json.loads(out.stdout)
    return result


def client(netns: str | None = None, **request: object) -> dict[str, str]:
    """Run :data:`CLIENT` with ``request`` (in network namespace ``netns`` if given)."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    args = [*prefix, sys.executable, "-I", "-S", "-c", CLIENT, json.dumps(request, default=str)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout, out.stderr
    result: dict[str, str] = json.loads(out.stdout)
    return result


def https_get(
    ip: str, port: int, path: str, cafile: Path, *, netns: str | None = None, comm: str = ""
) -> dict[str, str]:
    """GET ``path`` from ``ip:port`` with SNI and Host :data:`SNI`, trusting only ``cafile``."""
    return client(netns, ip=ip, port=port, path=path, name=SNI, cafile=cafile, comm=comm)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)


def bound(pid: int, port: int, transport: str) -> bool:
    """Whether process ``pid``'s network namespace has a TCP listener (UDP socket) on ``port``:
    ``/proc/PID/net`` shows the namespace of that process, not ours."""
    for family in ("", "6"):
        try:
            lines = Path(f"/proc/{pid}/net/{transport}{family}").read_text().splitlines()[1:]
        except OSError:
            return False
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if int(local.rsplit(":", 1)[1], 16) == port and (transport == "udp" or state == "0A"):
                return True
    return False


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def descendants(pid: int) -> dict[int, bytes]:
    """Processes started by ``pid`` (and by those) with their command lines: in local mode
    mitmproxy starts its redirector under sudo and leaves it running for a few seconds after it
    exits."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = {}, [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            cmd = _cmdline(c)
            if cmd is not None:
                out[c] = cmd
            todo.append(c)
    return out


class NetProxy(Proxy):
    """:class:`Proxy` started behind a command prefix (``ip netns exec R``, a mount namespace),
    ready when ``ready(pid)`` says so; no listening port of its own on our loopback."""

    def __init__(self, tmp: Path, modes: list[str], *, prefix: list[str], ready: Callable[[int], bool],
                 extra: Sequence[str] = ()) -> None:  # fmt: skip
        self.confdir = tmp / "conf"
        self.db = tmp / "capture.sqlite"
        self.log = (tmp / "mitmdump.log").open("wb")
        args = [
            # Not -q: warnings carry the local-mode redirector's own errors.
            *prefix, str(MITMDUMP), "--set", "termlog_verbosity=warn", "--set", "flow_detail=0", "-s", str(ADDON),
            "--set", f"confdir={self.confdir}", "--set", f"audit_db={self.db}", "--set", "audit_app=e2e",
            "--set", "audit_flush_interval=100", "--set", "ssl_insecure=true",
            *(a for m in modes for a in ("--mode", m)), *extra,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp, env=env)
        try:
            wait_until(lambda: self.alive() and ready(self.proc.pid), 30, "mitmdump to start its mode")
            wait_until((self.confdir / "mitmproxy-ca-cert.pem").exists, 10, "the mitmproxy CA")
        except BaseException:
            self.stop()
            raise

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"mitmdump exited with {self.proc.returncode}: {self.output()}")
        return True

    def output(self) -> str:  # also after stop()
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        children = descendants(self.proc.pid) if self.proc.poll() is None else {}
        super().stop()
        # Ours alone: the same pid with the same command line as while mitmdump ran.
        left = [pid for pid, cmd in children.items() if _cmdline(pid) == cmd]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: all(_cmdline(pid) != children[pid] for pid in left), 5, "mitmdump's children")
        except AssertionError:
            for pid in left:
                if _cmdline(pid) == children[pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def udp_echo_at(host: str) -> socket.socket:
    """A UDP echo server on ``host``; closing the socket stops it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                data, peer = sock.recvfrom(4096)
                sock.sendto(data, peer)

    threading.Thread(target=serve, daemon=True).start()
    return sock


def rows_by_tls(proxy: Proxy, mode: str) -> dict[str, Connection]:
    """The capture's connections by TLS state (one each), after checking it says how it was made."""
    with Store(proxy.db) as store:
        assert [(i["kind"], i["path"]) for i in store.inputs()] == [("live", f"mitmproxy {mode}")]
    rows = proxy.rows()
    by_tls = {c.tls: c for c in rows}
    assert len(by_tls) == len(rows), [(c.protocol, c.tls, c.host, c.ip, c.port, c.error) for c in rows]
    return by_tls


def trusting_and_pinning_rows(
    proxy: Proxy,
    mode: str,
    trusting: dict[str, str],
    pinning: dict[str, str],
    ip: str,
    port: int,
    also: frozenset[str] = frozenset(),
) -> dict[str, Connection]:
    """Check the two HTTPS clients' outcomes and their rows: the trusting client's request recorded
    as intercepted, the pinning client's handshake as failed, both to ``ip``:``port``. Returns the
    rows by TLS state (``also``: further states expected)."""
    assert trusting.get("status", "").endswith(" 200 OK"), (trusting, proxy.output())
    assert "CERTIFICATE_VERIFY_FAILED" in pinning.get("error", ""), pinning
    rows = rows_by_tls(proxy, mode)
    assert set(rows) == {"intercepted", "failed"} | also
    ok, failed = rows["intercepted"], rows["failed"]
    assert (ok.protocol, ok.host, ok.sni, ok.ip, ok.port) == ("https", SNI, SNI, ip, port)
    assert (ok.method, ok.path, ok.status) == ("GET", "/trusting", 200)
    assert (failed.protocol, failed.host, failed.sni, failed.ip, failed.port) == ("tls", SNI, SNI, ip, port)
    assert failed.error and "does not trust" in failed.error
    return rows


# --------------------------------------------------------------------------------------------
# The namespace lab (transparent, WireGuard)
# --------------------------------------------------------------------------------------------

_LABS = itertools.count()


@dataclass(frozen=True)
class Lab:
    tag: str
    router: str
    """Namespace where mitmdump runs."""
    client: str
    """Namespace where the client runs."""
    server_ip: str
    router_ip: str
    gateway_ip: str
    """The router's address towards the client."""
    client_ip: str

    @property
    def gateway_if(self) -> str:
        return f"{self.tag}g"


@pytest.fixture
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, veth pairs, iptables")
    need("ip")
    # Unique per process and test: interface names (at most 15 characters) and addresses. The
    # benchmarking range 198.18.0.0/15 (RFC 2544) is routed nowhere; only the host side's /30
    # appears in our own routing table, for the lab's lifetime.
    n = next(_LABS)
    k = (os.getpid() * 16 + n) % 16384
    host_net = ipaddress.ip_address("198.18.0.0") + 4 * k
    client_net = ipaddress.ip_address("198.19.0.0") + 4 * k
    tag = f"dfa{os.getpid():x}{n:x}"  # at most 11 characters: pids are < 2**22
    lab = Lab(
        tag=tag, router=f"{tag}-r", client=f"{tag}-c",
        server_ip=str(host_net + 1), router_ip=str(host_net + 2),
        gateway_ip=str(client_net + 1), client_ip=str(client_net + 2),
    )  # fmt: skip
    try:
        try:
            run("ip", "netns", "add", lab.router)
        except subprocess.CalledProcessError as e:
            pytest.skip(f"`ip netns add` not permitted: {e.stderr.strip()}")
        run("ip", "netns", "add", lab.client)
        run("ip", "link", "add", f"{tag}h", "type", "veth", "peer", "name", f"{tag}r", "netns", lab.router)
        run("ip", "addr", "add", f"{lab.server_ip}/30", "dev", f"{tag}h")
        run("ip", "link", "set", f"{tag}h", "up")
        run("ip", "-n", lab.router, "link", "add", lab.gateway_if, "type", "veth", "peer", "name", f"{tag}c",
            "netns", lab.client)  # fmt: skip
        run("ip", "-n", lab.router, "addr", "add", f"{lab.router_ip}/30", "dev", f"{tag}r")
        run("ip", "-n", lab.router, "addr", "add", f"{lab.gateway_ip}/30", "dev", lab.gateway_if)
        run("ip", "-n", lab.client, "addr", "add", f"{lab.client_ip}/30", "dev", f"{tag}c")
        for ns, dev in ((lab.router, f"{tag}r"), (lab.router, lab.gateway_if), (lab.client, f"{tag}c")):
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        yield lab
    finally:
        # The veth pairs and R's iptables rules go with the namespaces.
        for ns in (lab.client, lab.router):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{tag}h"], capture_output=True)


def in_router(lab: Lab) -> list[str]:
    return ["ip", "netns", "exec", lab.router]


# --------------------------------------------------------------------------------------------
# Transparent
# --------------------------------------------------------------------------------------------


def test_transparent_mode_records_the_original_destination(lab: Lab, tmp_path: Path) -> None:
    need("iptables")
    listen = 8080  # in R's own network stack: nothing else listens there
    try:
        run(*in_router(lab), "iptables", "-t", "nat", "-A", "PREROUTING", "-i", lab.gateway_if, "-p", "tcp",
            "-j", "REDIRECT", "--to-ports", str(listen))  # fmt: skip
    except subprocess.CalledProcessError as e:
        pytest.skip(f"iptables REDIRECT not available in a network namespace: {e.stderr.strip()}")
    run("ip", "-n", lab.client, "route", "add", "default", "via", lab.gateway_ip)
    cert, key = make_cert(tmp_path)
    srv = https_server(cert, key, lab.server_ip, 443)
    mode = f"transparent@{listen}"
    proxy = NetProxy(tmp_path, [mode], prefix=in_router(lab),
                     ready=lambda pid: bound(pid, listen, "tcp"))  # fmt: skip
    try:
        ca = proxy.confdir / "mitmproxy-ca-cert.pem"
        trusting = https_get(lab.server_ip, 443, "/trusting?adid=1", ca, netns=lab.client)
        pinning = https_get(lab.server_ip, 443, "/pinning", cert, netns=lab.client)
        wait_until(lambda: len(proxy.rows()) >= 2, 20, "both transparent connections")
    finally:
        proxy.stop()
        srv.shutdown()
    # The address the client connected to, not mitmdump's: SO_ORIGINAL_DST behind the REDIRECT.
    ok = trusting_and_pinning_rows(proxy, mode, trusting, pinning, lab.server_ip, 443)["intercepted"]
    assert ok.query_keys == ("adid",) and ok.client and ok.client.startswith(f"{lab.client_ip}:")


# --------------------------------------------------------------------------------------------
# WireGuard
# --------------------------------------------------------------------------------------------


def _key_hex(b64: str) -> str:
    return base64.b64decode(b64).hex()


def wg_set(sock: Path, settings: list[str]) -> None:
    """Configure a wireguard-go interface through its UAPI socket (the protocol ``wg set`` speaks,
    https://www.wireguard.com/xplatform/): no wireguard-tools needed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(sock))
        s.sendall(("set=1\n" + "".join(f"{line}\n" for line in settings) + "\n").encode())
        reply = b""
        while not reply.endswith(b"\n\n") and (chunk := s.recv(4096)):
            reply += chunk
    assert reply.strip() == b"errno=0", reply


@pytest.fixture
def wireguard_client(lab: Lab) -> Iterator[Callable[[str, str, str], str]]:
    """``connect(client_key, server_public_key, endpoint)``: a wireguard-go interface in the client
    namespace, address 10.0.0.1 (mitmproxy's client config), routing the server's address through
    the tunnel. Returns the interface name."""
    need("wireguard-go")
    if not Path("/dev/net/tun").exists():
        pytest.skip("/dev/net/tun missing: wireguard-go needs a TUN device")
    ifname = f"{lab.tag}w"
    sock = Path("/var/run/wireguard") / f"{ifname}.sock"
    procs: list[subprocess.Popen[bytes]] = []

    def connect(client_key: str, server_public: str, endpoint: str) -> str:
        # Debian's wireguard-go prefers the kernel module; the variable says we know.
        env = {**os.environ, "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}
        proc = subprocess.Popen(["ip", "netns", "exec", lab.client, "wireguard-go", "-f", ifname], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        procs.append(proc)

        def up() -> bool:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                pytest.skip(f"wireguard-go could not start in a network namespace: {out.strip()[-500:]}")
            return sock.exists()

        wait_until(up, 10, "wireguard-go's UAPI socket")
        wg_set(sock, [
            f"private_key={_key_hex(client_key)}", "replace_peers=true",
            f"public_key={_key_hex(server_public)}", f"endpoint={endpoint}",
            "replace_allowed_ips=true", "allowed_ip=0.0.0.0/0",
        ])  # fmt: skip
        run("ip", "-n", lab.client, "addr", "add", "10.0.0.1/32", "dev", ifname)
        run("ip", "-n", lab.client, "link", "set", ifname, "up")
        run("ip", "-n", lab.client, "route", "add", f"{lab.server_ip}/32", "dev", ifname)
        run("ip", "-n", lab.client, "route", "add", "10.0.0.53/32", "dev", ifname)
        return ifname

    try:
        yield connect
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        sock.unlink(missing_ok=True)  # left behind only if wireguard-go was killed


def test_wireguard_mode_records_tunnelled_traffic(
    lab: Lab, wireguard_client: Callable[[str, str, str], str], tmp_path: Path
) -> None:
    import mitmproxy_rs

    port = 51820
    keys = tmp_path / "wireguard.json"  # created by mitmproxy: what an analyst gives the device
    cert, key = make_cert(tmp_path)
    srv = https_server(cert, key, lab.server_ip, 443)
    udp = udp_echo_at(lab.server_ip)
    udp_port = udp.getsockname()[1]
    mode = f"wireguard:{keys}@{port}"
    proxy = NetProxy(
        tmp_path, [mode], prefix=in_router(lab),
        ready=lambda pid: bound(pid, port, "udp") and keys.exists(),
        # mitmproxy answers DNS inside the tunnel itself: from the hosts file, else loopback only.
        extra=["--set", "dns_name_servers=127.0.0.1", "--set", "dns_use_hosts_file=true"],
    )  # fmt: skip
    try:
        conf = json.loads(keys.read_text())
        server_public = mitmproxy_rs.wireguard.pubkey(conf["server_key"])
        wireguard_client(conf["client_key"], server_public, f"{lab.gateway_ip}:{port}")
        ca = proxy.confdir / "mitmproxy-ca-cert.pem"
        trusting = https_get(lab.server_ip, 443, "/trusting?adid=1", ca, netns=lab.client)
        pinning = https_get(lab.server_ip, 443, "/pinning", cert, netns=lab.client)
        dns = client(lab.client, ip="10.0.0.53", port=53, datagram=dns_query("localhost").hex())
        # Still open when mitmdump stops (UDP flows idle out after 20 s): recorded all the same.
        echo = client(lab.client, ip=lab.server_ip, port=udp_port, datagram=b"ping".hex())
        wait_until(lambda: len(proxy.rows()) >= 2, 20, "both tunnelled connections")
    finally:
        proxy.stop()
        srv.shutdown()
        udp.close()
    rows = trusting_and_pinning_rows(
        proxy, mode, trusting, pinning, lab.server_ip, 443, also=frozenset({"none"})
    )
    ok, datagrams = rows["intercepted"], rows["none"]
    assert ok.query_keys == ("adid",)
    assert ok.client and ok.client.startswith("10.0.0.1:")  # the tunnel's inside address
    assert echo == {"reply": b"ping".hex()}
    assert (datagrams.protocol, datagrams.ip, datagrams.port) == ("udp", lab.server_ip, udp_port)
    assert (datagrams.bytes_out, datagrams.bytes_in, datagrams.error) == (
        4,
        4,
        "still open when mitmproxy stopped",
    )
    reply = bytes.fromhex(dns["reply"])
    assert reply[:2] == b"\x12\x34" and reply[2] & 0x80
    with Store(proxy.db) as store:
        recs = [r for r in store.dns_records() if r["name"] == "localhost"]
    assert recs and "127.0.0.1" in {r["answer"] for r in recs}


def test_wireguard_mode_records_http3(
    lab: Lab, wireguard_client: Callable[[str, str, str], str], tmp_path: Path
) -> None:
    """QUIC from a device through the tunnel is intercepted as HTTP/3 (mitmproxy's default
    ``http3=true``): recorded as an https flow with HTTP/3, its SNI and the server really reached."""
    import mitmproxy_rs

    port = 51820
    keys = tmp_path / "wireguard.json"
    cert, key = make_cert(tmp_path)
    loop = H3Loop()
    server, upstream = loop.run(h3_server(cert, key, 443, host=lab.server_ip))
    mode = f"wireguard:{keys}@{port}"
    proxy = NetProxy(
        tmp_path, [mode], prefix=in_router(lab), ready=lambda pid: bound(pid, port, "udp") and keys.exists()
    )
    t0 = time.time()
    try:
        conf = json.loads(keys.read_text())
        wireguard_client(
            conf["client_key"], mitmproxy_rs.wireguard.pubkey(conf["server_key"]), f"{lab.gateway_ip}:{port}"
        )
        ca = proxy.confdir / "mitmproxy-ca-cert.pem"
        got = h3_get(lab.server_ip, 443, "/v3/collect?gaid=1", ca, netns=lab.client)
        assert got.get("status") == "200" and got.get("alpn") == "h3", (got, proxy.output())
        wait_until(lambda: any(r.protocol == "https" for r in proxy.rows()), 20, "the HTTP/3 flow")
    finally:
        proxy.stop()
        loop.close(server)
    assert [p._quic.tls.alpn_negotiated for p in upstream if p.requests] == ["h3"]  # reached over HTTP/3
    (c,) = [r for r in proxy.rows() if r.protocol == "https"]
    assert (c.method, c.path, c.query_keys, c.status) == ("GET", "/v3/collect", ("gaid",), 200)
    assert (c.tls, c.http_version, c.alpn, c.tls_version) == ("intercepted", "HTTP/3", "h3", "QUICv1")
    assert (c.sni, c.ip, c.port, c.source) == (SNI, lab.server_ip, 443, "live")
    assert c.client and c.client.startswith("10.0.0.1:")  # the tunnel's inside address
    assert c.ts >= t0 - 1


# --------------------------------------------------------------------------------------------
# Local
# --------------------------------------------------------------------------------------------


def _mounts() -> dict[str, str]:
    """Mount point -> file system type, from /proc/self/mountinfo."""
    out = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        out[left.split()[4]] = right.split()[0]
    return out


def local_mode_prefix() -> list[str]:
    """What mitmdump must run behind for local mode here, or skip saying why not."""
    version = importlib.metadata.version("mitmproxy")
    if int(version.split(".")[0]) < 12:
        pytest.skip(f"mitmproxy {version}: local mode runs on Linux from mitmproxy 12 on "
                    "('OS proxy mode is only available on Windows and macOS')")  # fmt: skip
    if importlib.util.find_spec("mitmproxy_linux") is None:
        pytest.skip("mitmproxy-linux (the eBPF redirector) not installed")
    if os.geteuid() != 0:
        pytest.skip("needs root: the redirector loads an eBPF program")
    # mitmproxy_rs starts the redirector with `sudo`, even as root.
    need("sudo")
    mounts = _mounts()
    if mounts.get("/sys/fs/cgroup") == "cgroup2":
        return []
    cgroup2 = next((m for m, fs in mounts.items() if fs == "cgroup2"), None)
    if cgroup2 is None:
        pytest.skip("no cgroup2 hierarchy mounted: the redirector attaches its eBPF program to it")
    # The redirector attaches to /sys/fs/cgroup, which must be the cgroup2 root; with the hybrid
    # (v1) layout it fails with "bpf_link_create failed: Bad file descriptor". In a private mount
    # namespace, show it the cgroup2 hierarchy there.
    need("unshare")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /sys/fs/cgroup && exec "$@"', cgroup2]  # fmt: skip


def redirector_error(log: str) -> str | None:
    """Why mitmproxy's local-mode redirector stopped (a missing capability or kernel feature), from
    mitmdump's log, or None if it did not."""
    if "[linux-redirector] exited" not in log and "Failed to run sudo" not in log:
        return None
    m = re.search(
        r"((?:Failed to run sudo|(?<=\] )Error: ).*?)(?:Stack backtrace|\[linux-redirector\]|\Z)", log, re.S
    )
    if m is None:
        return "the redirector exited"
    lines = (re.sub(r"^\[[\d:.]+\]", "", line).strip() for line in m.group(1).splitlines())
    return " ".join(line for line in lines if line)


def test_local_mode_records_the_named_process(tmp_path: Path) -> None:
    prefix = local_mode_prefix()
    comm = f"dfa-lc-{os.getpid()}"[:15]  # a process name nothing else has
    cert, key = make_cert(tmp_path)
    srv = https_server(cert, key)
    port = srv.server_address[1]
    mode = f"local:{comm}"
    proxy = NetProxy(tmp_path, [mode], prefix=prefix, ready=lambda pid: True)
    try:
        ca = proxy.confdir / "mitmproxy-ca-cert.pem"
        # The eBPF program is attached a moment after mitmdump has started. Until then the client
        # reaches the server directly, whose certificate it cannot verify: nothing is recorded.
        trusting: dict[str, str] = {}

        def intercepted() -> bool:
            nonlocal trusting
            reason = redirector_error(proxy.output())
            if reason:
                pytest.skip(f"local mode cannot run here: {reason}")
            proxy.alive()
            trusting = https_get("127.0.0.1", port, "/trusting?adid=1", ca, comm=comm)
            return "status" in trusting

        wait_until(intercepted, 20, "the local redirector to intercept the client")
        pinning = https_get("127.0.0.1", port, "/pinning", cert, comm=comm)
        wait_until(lambda: len(proxy.rows()) >= 2, 20, "both local connections")
    finally:
        proxy.stop()
        srv.shutdown()
    trusting_and_pinning_rows(proxy, mode, trusting, pinning, "127.0.0.1", port)
