"""Packet captures (pcap and pcapng, e.g. tcpdump, Wireshark, PCAPdroid), decoded with dpkt.

Packets are aggregated per connection (protocol + client/server address and port) with bytes each
way and first/last time. The destination name comes from, in order: the TLS ClientHello SNI (TCP),
the QUIC Initial ClientHello (UDP, decrypted as RFC 9001 §5 allows), the HTTP Host header, else the
DNS answer that gave the server's IP. DNS responses become :class:`~audit.models.DnsRecord`.

PCAPdroid's "PCAPdroid trailer" (``PCAP_DUMP_WITH_TRAILER`` mode) appends 32 bytes to each Ethernet
frame: magic ``0x01072021``, the app's uid (int32), its package name (20 bytes, NUL-padded, so long
names are cut) and a frame check sequence. When the analyst gives no ``--app``, that name labels
the connection. A capture cut off mid-packet keeps what was read and reports the truncation.
"""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from struct import Struct
from struct import error as struct_error  # dpkt lets it escape on short headers
from typing import Any, BinaryIO

import dpkt

from audit.errors import ImportFormatError, one_line
from audit.models import Connection, DnsRecord, HttpRequestData
from audit.names import normalize_host
from audit.traffic import records
from audit.traffic.importers.base import BoundedReader, Importer
from audit.traffic.importers.pcapng import CaptureApp, PcapngError, PcapngReader, has_tls_secrets
from audit.traffic.quic import QuicInitialReader
from audit.traffic.records import cap_body
from audit.traffic.tls import ClientHello, looks_like_tls_record, parse_tls_record, unread_stream
from audit.traffic.tshark import (
    DecryptedRequest,
    Decryption,
    Tshark,
    check_keylog,
    find_tshark,
    keylog_randoms,
    tshark_problem,
)

log = logging.getLogger(__name__)

_PCAP_MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1")
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

# Link types (https://www.tcpdump.org/linktypes.html)
DLT_NULL, DLT_EN10MB, DLT_RAW, DLT_LINUX_SLL, DLT_IPV4, DLT_IPV6, DLT_LINUX_SLL2 = (
    0,
    1,
    101,
    113,
    228,
    229,
    276,
)
_RAW_LINKTYPES = {DLT_RAW, 12, 14, DLT_IPV4, DLT_IPV6}
SUPPORTED_LINKTYPES = {DLT_NULL, DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, 108} | _RAW_LINKTYPES

PCAPDROID_MAGIC = 0x01072021
PCAPDROID_TRAILER_SIZE = 32

#: Client payload kept per TCP connection to find a ClientHello or an HTTP request (+ 64 KiB body).
_MAX_STREAM = 80 * 1024
#: Client datagrams of a UDP flow examined for a QUIC Initial.
_MAX_QUIC_DATAGRAMS = 8

_HTTP_METHODS = (
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"PATCH ",
    b"OPTIONS ",
    b"CONNECT ",
    b"TRACE ",
)
_DNS_TYPES = {1: "A", 2: "NS", 5: "CNAME", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 65: "HTTPS"}
#: EtherTypes of IPv4 and IPv6, and the fixed header fields read without dpkt (:meth:`_Analyzer._plain`).
_ETH_IP = {b"\x08\x00": 4, b"\x86\xdd": 6}
_U16_PAIR = Struct("!HH")
_U16_BYTE = Struct("!HB")
_IP4_LEN_FLAGS = Struct("!H2xH")
_TCP_PORTS_SEQ = Struct("!HHI")
_AF_INET, _AF_INET6 = socket.AF_INET, socket.AF_INET6
_inet_ntop = socket.inet_ntop
_SERVER_PORTS = {53, 80, 443, 853, 993, 995, 5222, 5223, 5228, 8080, 8443, 1883, 8883}


class _TruncationWatch:
    """File wrapper telling whether dpkt's reader met a record cut short by the end of the file.

    dpkt stops silently on a short read; a short read that returned some bytes, or any read after a
    short one, means a record was cut (a clean end is exactly one empty read at a record boundary).
    """

    def __init__(self, f: BinaryIO | BoundedReader) -> None:
        self.f = f
        self.name = getattr(f, "name", "<capture>")
        self.short = False
        self.truncated = False

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        if self.short:
            self.truncated = True
        if n > 0 and len(data) < n:
            self.short = True
            if data:
                self.truncated = True
        return data

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos, whence)


@dataclass
class _Flow:
    proto: str
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    first: float
    last: float
    bytes_out: int = 0
    bytes_in: int = 0
    app: str | None = None
    isn: int | None = None
    segments: dict[int, bytes] = field(default_factory=dict)
    buffered: int = 0
    done: bool = False
    hello: ClientHello | None = None
    http: tuple[str, str, tuple[tuple[str, str], ...], bytes, bool] | None = None
    quic: QuicInitialReader | None = None
    datagrams: int = 0
    head: bytes = b""
    """The client's first payload bytes (for :func:`audit.traffic.tls.unread_stream`)."""


class PcapImporter(Importer):
    """Reads pcap and pcapng files."""

    format = "pcap"
    source = "pcap"

    def __init__(self) -> None:
        super().__init__()
        self.apps: dict[int, CaptureApp] = {}
        """PCAPdroid's UID map of a pcapng (uid → app), once read."""
        self.tls_secrets: list[bytes] = []
        """TLS key logs embedded in a pcapng (Decryption Secrets Blocks), once read."""
        self.keylog: Path | None = None
        """An NSS key log for the capture's TLS (``audit import --keylog``)."""
        self.decryption: DecryptionSummary | None = None
        """What decryption did, when the capture had session keys (a key log, DSB blocks)."""

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return head[:4] in _PCAP_MAGICS or head[:4] == _PCAPNG_MAGIC

    def read(self, path: Path, *, app: str = "") -> Iterator[Connection | DnsRecord]:
        early = self._start_decryption(path)
        try:
            yield from self._read(path, app, early)
        finally:
            if early is not None:
                early.close()

    def _start_decryption(self, path: Path) -> Decryption | None:
        """tshark started on a capture that has keys (``--keylog``, a DSB found by its block
        header), so that it decrypts while :meth:`_read` reads the packets itself (issue 17)."""
        if self.keylog is not None:
            check_keylog(self.keylog)  # a bad key log is refused before any work
        elif not _has_secrets(path):
            return None
        on_path = shutil.which("tshark")
        if on_path is None:
            return None
        # started before asking its version (`tshark -v`, a third of a second), which then runs
        # while this one loads its dissectors; stopped if it is not one the tap runs in
        run = Decryption(Tshark(on_path, ()), path, self.keylog)
        run.start()
        if find_tshark() is None:
            run.close()
            return None
        return run

    def _read(self, path: Path, app: str, early: Decryption | None) -> Iterator[Connection | DnsRecord]:
        analyzer = _Analyzer(app=app)
        with path.open("rb") as raw:
            f = _TruncationWatch(BoundedReader(raw))
            magic = raw.read(4)
            raw.seek(0)
            if magic == _PCAPNG_MAGIC:
                self._read_pcapng(path, f, analyzer)
            else:
                self._read_pcap(path, f, analyzer)
        if analyzer.undecodable:
            self.errors.append(f"{analyzer.undecodable} packet(s) could not be decoded and were skipped")
        for linktype, n in sorted(analyzer.unsupported.items()):
            self.errors.append(f"{n} packet(s) with link type {linktype} skipped: {_UNSUPPORTED}")
        if analyzer.packets and not analyzer.ip_packets:
            self.errors.append(
                f"none of the {analyzer.packets} packet(s) read holds IPv4 or IPv6 traffic: nothing was imported from them"
            )
        for record in analyzer.dns:
            self.where = f"DNS response for {one_line(record.name, 60)}"
            yield record
        decrypted: set[tuple[str, str, int, str, int]] = set()
        if self.tls_secrets or self.keylog is not None:
            yield from self._decrypted(path, analyzer, decrypted, early)
        for conn in analyzer.connections(skip=decrypted):
            self.where = f"connection {conn.client} → {_endpoint(conn.ip or '?', conn.port or 0)}"
            yield conn

    def _decrypted(
        self,
        path: Path,
        analyzer: _Analyzer,
        decrypted: set[tuple[str, str, int, str, int]],
        early: Decryption | None,
    ) -> Iterator[Connection]:
        """The HTTP requests tshark reads from the capture's TLS with its session keys; the keys of
        the connections they came from are added to ``decrypted`` (issue 17)."""
        keys = b"\n".join(self.tls_secrets)
        sources = []
        if self.keylog is not None:
            sources.append("--keylog")
            keys += b"\n" + check_keylog(self.keylog)
        if self.tls_secrets:
            sources.append(f"{len(self.tls_secrets)} Decryption Secrets Block(s)")
        tls = [k for k, f in analyzer.flows.items() if f.proto == "tcp" and f.hello is not None]
        summary = DecryptionSummary(keys=" + ".join(sources), tls_connections=len(tls))
        self.decryption = summary
        if not tls:
            return
        tshark = find_tshark()
        if tshark is None:
            summary.undecrypted = summary.without_keys = len(tls)
            summary.note = f"not decrypted: {tshark_problem()}"
            self.errors.append(
                f"the capture comes with TLS session keys ({summary.keys}), but {tshark_problem()}: "
                f"its {len(tls)} TLS connection(s) were imported without their content (inspected: false)"
            )
            return
        run = early or Decryption(tshark, path, self.keylog)
        for req in run.requests():
            key = ("tcp", *req.key)
            self.where = f"decrypted request {req.method} on {_endpoint(req.key[0], req.key[1])} → {_endpoint(req.key[2], req.key[3])}"
            decrypted.add(key)
            summary.requests += 1
            yield _decrypted_connection(req, analyzer.flows.get(key), analyzer.app)
        if run.failed:
            self.errors.append(run.failed)
        randoms = keylog_randoms(keys)
        left = [k for k in tls if k not in decrypted]
        summary.decrypted = len(tls) - len(left)
        summary.undecrypted = len(left)
        summary.without_keys = sum(1 for k in left if run.client_randoms.get(k[1:]) not in randoms)

    def _read_pcap(self, path: Path, f: _TruncationWatch, analyzer: _Analyzer) -> None:
        try:
            reader: Any = dpkt.pcap.Reader(f)
        except (ValueError, dpkt.UnpackError, struct_error) as e:
            raise ImportFormatError(f"{path}: unreadable capture header ({_reason(e)})") from e
        linktype = reader.datalink()
        if linktype not in SUPPORTED_LINKTYPES:
            raise ImportFormatError(f"{path}: unsupported link type {linktype} ({_UNSUPPORTED})")
        packets = 0
        try:
            for ts, frame in reader:
                packets += 1
                analyzer.packet(float(ts), frame, linktype)
        except (dpkt.UnpackError, struct_error, ValueError) as e:
            f.truncated = True
            log.debug("%s: stopped after %d packets: %r", path, packets, e)
        if f.truncated:
            if packets == 0:
                raise ImportFormatError(f"{path}: capture is truncated before its first packet")
            self.errors.append(
                f"capture truncated after packet {packets}: the packets before it were imported"
            )

    def _read_pcapng(self, path: Path, f: _TruncationWatch, analyzer: _Analyzer) -> None:
        try:
            reader = PcapngReader(f)
            packets = reader.__iter__()
            first = next(packets, None)
        except PcapngError as e:
            raise ImportFormatError(f"{path}: unreadable capture header ({e})") from e
        if first is None:
            if reader.damaged:
                raise ImportFormatError(
                    f"{path}: capture is truncated or damaged before its first packet ({'; '.join(reader.notes)})"
                )
            kinds = reader.linktypes
            if kinds and not any(k in SUPPORTED_LINKTYPES for k in kinds):
                raise ImportFormatError(f"{path}: unsupported link type {kinds[0]} ({_UNSUPPORTED})")
        else:
            apps = reader.apps

            def app() -> str | None:  # the PCAPdroid app of the packet just read
                found = apps.get(reader.uid) if reader.uid is not None else None
                return found.package if found is not None else None

            analyzer.packet(*first, app())
            for ts, frame, linktype in packets:
                analyzer.packet(ts, frame, linktype, app() if reader.uid is not None else None)
        self.apps = dict(reader.apps)
        self.tls_secrets = list(reader.tls_secrets)
        self.errors.extend(reader.notes)


_UNSUPPORTED = "supported: Ethernet, Linux cooked SLL/SLL2, raw IP, BSD loopback"


def _has_secrets(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == _PCAPNG_MAGIC and (f.seek(0) == 0) and has_tls_secrets(f)
    except OSError:
        return False  # the read proper says what is wrong with the file


def _reason(e: BaseException) -> str:
    # dpkt raises NeedData without a message for a header cut short: never "unreadable header ()".
    return str(e) or {"NeedData": "the header is cut short"}.get(type(e).__name__, type(e).__name__)


def _ip_text(data: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(data) == 16 else socket.AF_INET, data)


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def pcapdroid_trailer(frame: bytes) -> tuple[int, str] | None:
    """(uid, app name) from a PCAPdroid trailer at the end of an Ethernet frame."""
    if len(frame) < 14 + 20 + PCAPDROID_TRAILER_SIZE:
        return None
    t = frame[-PCAPDROID_TRAILER_SIZE:]
    for order in ("big", "little"):
        if int.from_bytes(t[:4], order) == PCAPDROID_MAGIC:  # type: ignore[arg-type]
            uid = int.from_bytes(t[4:8], order, signed=True)  # type: ignore[arg-type]
            name = t[8:28].split(b"\0", 1)[0].decode("utf-8", "replace")
            return uid, name
    return None


def app_label(label: str, captured: str | None) -> tuple[str, str]:
    """(app, attribution) of a record whose capture names the app ``captured`` (None: it names none),
    imported with the analyst's ``--app`` ``label`` ("" = none).

    The capture's per-app data wins over a label for the whole file (issue 17): with ``--app X`` the
    records of app X are labelled X, the other apps' records are kept under their own names, and only
    records the capture ties to no app take the label (``attribution = label``). A name PCAPdroid's
    trailer cut to 20 bytes counts as X when X starts with it (the label gives the full name)."""
    if not captured:
        return label, "label"
    if label and (label == captured or (len(captured.encode()) == 20 and label.startswith(captured))):
        return label, "app-metadata"
    return captured, "app-metadata"


@dataclass
class DecryptionSummary:
    """What decrypting a capture's TLS gave (``ImportSummary.decryption``)."""

    keys: str
    """Where the session keys came from: ``--keylog``, ``N Decryption Secrets Block(s)``."""
    tls_connections: int = 0
    """TLS connections over TCP in the capture."""
    decrypted: int = 0
    """Of them, read: at least one HTTP request came out (``tls = decrypted``, inspected)."""
    undecrypted: int = 0
    """Of them, left unread (``tls = passthrough``, ``inspected: false``)."""
    without_keys: int = 0
    """Of the unread ones, those whose client random is in no key log (the rest had keys but no
    HTTP/1.1 or HTTP/2 content could be read)."""
    requests: int = 0
    """HTTP requests read from the decrypted connections."""
    note: str = ""


def _decrypted_connection(req: DecryptedRequest, flow: _Flow | None, label: str) -> Connection:
    """A decrypted request as a connection record, built like every other HTTP record."""
    client_ip, client_port, server_ip, server_port = req.key
    if req.head:  # HTTP/1.x: the head as sent, parsed like a cleartext request
        head = req.head.decode("latin-1").split("\r\n\r\n", 1)[0]
        _, url, headers, _, _ = _parse_http(head, b"", False)
        url = "https://" + url.removeprefix("http://")
    else:
        headers = req.headers
        url = f"{req.scheme}://{req.authority}{req.target}"
    host = records.split_url(url)[0]
    hello = flow.hello if flow is not None else None
    app, attribution = app_label(label, flow.app if flow is not None else None)
    return records.http_connection(
        ts=req.ts, end_ts=req.end_ts, source=PcapImporter.source, app=app, scheme=req.scheme or "https",
        host=host or (hello.sni if hello else None), method=req.method, target=req.target, url=url,
        headers=headers, body=req.body, tls="decrypted", bytes_out=req.head_size + req.body_size,
        bytes_in=req.bytes_in, ip=server_ip, port=server_port, client=_endpoint(client_ip, client_port),
        sni=hello.sni if hello else None, tls_version=hello.version if hello else None,
        alpn=",".join(hello.alpn) or None if hello else None, http_version=req.http_version, status=req.status,
        request_content_type=next((v for k, v in headers if k.lower() == "content-type"), None),
        response_content_type=req.response_content_type, attribution=attribution,
    )  # fmt: skip


class _Analyzer:
    """Packet-by-packet state: connections being aggregated and DNS answers seen."""

    def __init__(self, *, app: str) -> None:
        self.app = app
        self.flows: dict[tuple[str, str, int, str, int], _Flow] = {}
        self.dns: list[DnsRecord] = []
        self.undecodable = 0
        self.packets = 0
        self.ip_packets = 0
        self.unsupported: dict[int, int] = {}
        """Packets skipped per link type this importer does not read (a pcapng interface's)."""

    # -- link and network layers ---------------------------------------------------------

    def packet(self, ts: float, frame: bytes, linktype: int, app_name: str | None = None) -> None:
        """Account one packet; ``app_name`` is the app the capture names for it (PCAPdroid's UID map)."""
        self.packets += 1
        if linktype not in SUPPORTED_LINKTYPES:
            self.unsupported[linktype] = self.unsupported.get(linktype, 0) + 1
            return
        try:
            ip: Any
            if linktype == DLT_EN10MB:
                trailer = pcapdroid_trailer(frame) if app_name is None else None
                if trailer is not None:
                    app_name = trailer[1] or None
                version = _ETH_IP.get(frame[12:14])
                if version is not None and self._plain(ts, frame, 14, app_name, version):
                    return
                ip = dpkt.ethernet.Ethernet(frame).data
            elif linktype == DLT_LINUX_SLL:
                ip = dpkt.sll.SLL(frame).data
            elif linktype == DLT_LINUX_SLL2:
                ip = dpkt.sll2.SLL2(frame).data
            elif linktype in (DLT_NULL, 108):
                # A 4-byte address family (host or network order, and AF_INET6 differs by OS:
                # 10, 24, 28, 30): the IP version nibble after it says more than the family does.
                ip = self._raw_ip(frame[4:])
            else:
                if self._plain(ts, frame, 0, app_name):
                    return
                ip = self._raw_ip(frame)
        except (dpkt.UnpackError, struct_error, ValueError, IndexError):
            self.undecodable += 1
            return
        if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
            self.ip_packets += 1
        if isinstance(ip, dpkt.ip.IP):
            if ip.offset:  # non-first fragment: no transport header
                return
            src, dst = _ip_text(ip.src), _ip_text(ip.dst)
        elif isinstance(ip, dpkt.ip6.IP6):
            src, dst = _ip_text(ip.src), _ip_text(ip.dst)
        else:
            return  # ARP, LLDP …: not traffic to a destination
        transport = ip.data
        if isinstance(transport, dpkt.tcp.TCP):
            self._tcp(ts, src, dst, transport.sport, transport.dport, transport.flags, transport.seq,
                      bytes(transport.data), app_name)  # fmt: skip
        elif isinstance(transport, dpkt.udp.UDP):
            self._udp(ts, src, dst, transport.sport, transport.dport, bytes(transport.data), app_name)

    def _plain(
        self, ts: float, frame: bytes, at: int, app_name: str | None, version: int | None = None
    ) -> bool:
        """Account a packet that is plain IPv4 (no options needed, not a fragment) or IPv6 (no
        extension header) carrying TCP or UDP, read at offset ``at`` of ``frame`` without dpkt,
        which takes most of a big capture's time otherwise; False (nothing done) for anything else,
        which dpkt then decodes. Gives what the dpkt path gives: the same slices and fields.
        ``version`` is the IP version the link layer announces (an EtherType), if any."""
        if len(frame) < at + 40 or (version is not None and frame[at] >> 4 != version):
            return False
        version = frame[at] >> 4
        if version == 4:
            hl = (frame[at] & 15) * 4
            total, flags_offset = _IP4_LEN_FLAGS.unpack_from(frame, at + 2)
            proto = frame[at + 9]
            if hl < 20 or total < hl + 8 or flags_offset & 0x3FFF or proto not in (6, 17):
                return False
            src, dst = (
                _inet_ntop(_AF_INET, frame[at + 12 : at + 16]),
                _inet_ntop(_AF_INET, frame[at + 16 : at + 20]),
            )
            seg = frame[at + hl : at + total]
        elif version == 6:
            plen, proto = _U16_BYTE.unpack_from(frame, at + 4)
            if plen == 0 or proto not in (6, 17):
                return False
            src, dst = (
                _inet_ntop(_AF_INET6, frame[at + 8 : at + 24]),
                _inet_ntop(_AF_INET6, frame[at + 24 : at + 40]),
            )
            seg = frame[at + 40 : at + 40 + plen]
        else:
            return False
        if proto == 6:
            if len(seg) < 20 or (seg[12] >> 4) < 5:
                return False
            sport, dport, seq = _TCP_PORTS_SEQ.unpack_from(seg)
            self.ip_packets += 1
            self._tcp(ts, src, dst, sport, dport, seg[13], seq, seg[(seg[12] >> 4) * 4 :], app_name)
            return True
        if len(seg) < 8:
            return False
        sport, dport = _U16_PAIR.unpack_from(seg)
        self.ip_packets += 1
        self._udp(ts, src, dst, sport, dport, seg[8:], app_name)
        return True

    @staticmethod
    def _raw_ip(frame: bytes) -> Any:
        if not frame:
            raise ValueError("empty frame")
        version = frame[0] >> 4
        if version == 4:
            return dpkt.ip.IP(frame)
        if version == 6:
            return dpkt.ip6.IP6(frame)
        raise ValueError(f"IP version {version}")

    # -- transport ------------------------------------------------------------------------

    def _flow(
        self,
        proto: str,
        ts: float,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        client_is_src: bool | None,
        app_name: str | None,
    ) -> tuple[_Flow, bool]:
        """The flow of a packet (its times and app updated) and whether the packet goes client → server."""
        flow, outbound = self._find_flow(proto, ts, src, sport, dst, dport, client_is_src)
        flow.last = max(flow.last, ts)
        flow.first = min(flow.first, ts)
        flow.app = flow.app or app_name
        return flow, outbound

    def _find_flow(
        self, proto: str, ts: float, src: str, sport: int, dst: str, dport: int, client_is_src: bool | None
    ) -> tuple[_Flow, bool]:
        fwd = (proto, src, sport, dst, dport)
        flow = self.flows.get(fwd)
        if flow is not None:
            return flow, True
        rev = (proto, dst, dport, src, sport)
        flow = self.flows.get(rev)
        if flow is not None:
            return flow, False
        if client_is_src is None:
            client_is_src = _guess_client_is_src(sport, dport)
        if client_is_src:
            flow = _Flow(proto, src, sport, dst, dport, ts, ts)
            self.flows[fwd] = flow
        else:
            flow = _Flow(proto, dst, dport, src, sport, ts, ts)
            self.flows[rev] = flow
        return flow, client_is_src

    def _tcp(
        self,
        ts: float,
        src: str,
        dst: str,
        sport: int,
        dport: int,
        flags: int,
        seq: int,
        payload: bytes,
        app_name: str | None,
    ) -> None:
        syn, ack = bool(flags & dpkt.tcp.TH_SYN), bool(flags & dpkt.tcp.TH_ACK)
        hint = True if syn and not ack else (False if syn and ack else None)
        flow, outbound = self._flow("tcp", ts, src, sport, dst, dport, hint, app_name)
        if outbound:
            flow.bytes_out += len(payload)
            if payload and not flow.head:
                flow.head = payload[:16]
            if syn:
                flow.isn = (seq + 1) & 0xFFFFFFFF
            elif payload and not flow.done:
                self._client_segment(flow, seq, payload)
        else:
            flow.bytes_in += len(payload)

    def _client_segment(self, flow: _Flow, seq: int, payload: bytes) -> None:
        if flow.isn is None:
            flow.isn = seq  # capture started mid-connection: take the first segment seen as the start
        offset = (seq - flow.isn) & 0xFFFFFFFF
        if offset >= _MAX_STREAM or offset in flow.segments:
            return
        flow.segments[offset] = payload[: _MAX_STREAM - offset]
        flow.buffered += len(payload)
        stream = _contiguous(flow.segments)
        if not stream:
            return
        if looks_like_tls_record(stream):
            record_end = 5 + int.from_bytes(stream[3:5], "big")
            if len(stream) >= record_end or flow.buffered >= _MAX_STREAM:
                flow.hello = parse_tls_record(stream)
                self._finish(flow)
        elif stream.startswith(_HTTP_METHODS):
            end = stream.find(b"\r\n\r\n")
            if end >= 0:
                head = stream[:end].decode("latin-1")
                length = _content_length(head)
                if len(stream) >= end + 4 + length or flow.buffered >= _MAX_STREAM:
                    flow.http = _parse_http(
                        head, stream[end + 4 : end + 4 + length], len(stream) < end + 4 + length
                    )
                    self._finish(flow)
            elif flow.buffered >= _MAX_STREAM:
                self._finish(flow)
        else:
            self._finish(flow)

    @staticmethod
    def _finish(flow: _Flow) -> None:
        flow.done = True
        flow.segments = {}

    def _udp(
        self, ts: float, src: str, dst: str, sport: int, dport: int, payload: bytes, app_name: str | None
    ) -> None:
        flow, outbound = self._flow("udp", ts, src, sport, dst, dport, None, app_name)
        if outbound:
            flow.bytes_out += len(payload)
            if payload and not flow.head:
                flow.head = payload[:32]
            if flow.server_port == 443 and flow.datagrams < _MAX_QUIC_DATAGRAMS and not flow.done:
                flow.datagrams += 1
                flow.quic = flow.quic or QuicInitialReader()
                hello = flow.quic.feed(payload)
                if hello is not None and hello.sni:
                    flow.hello = hello
                    flow.done = True
        else:
            flow.bytes_in += len(payload)
            if flow.server_port == 53:
                self._dns_response(ts, payload, flow.app or app_name)

    def _dns_response(self, ts: float, payload: bytes, app_name: str | None) -> None:
        try:
            msg = dpkt.dns.DNS(payload)
        except (dpkt.UnpackError, struct_error, ValueError, IndexError):
            self.undecodable += 1
            return
        if msg.qr != dpkt.dns.DNS_R:
            return
        answers: list[str] = []
        for rr in msg.an:
            if rr.type == dpkt.dns.DNS_A and len(rr.rdata) == 4:
                answers.append(socket.inet_ntop(socket.AF_INET, rr.rdata))
            elif rr.type == dpkt.dns.DNS_AAAA and len(rr.rdata) == 16:
                answers.append(socket.inet_ntop(socket.AF_INET6, rr.rdata))
            elif rr.type == dpkt.dns.DNS_CNAME and getattr(rr, "cname", None):
                answers.append(normalize_host(str(rr.cname)) or "")
        for q in msg.qd:
            self.dns.append(
                DnsRecord(ts=ts, source=PcapImporter.source, name=normalize_host(str(q.name)) or "",
                          qtype=_DNS_TYPES.get(q.type, str(q.type)), answers=tuple(dict.fromkeys(answers)),
                          app=app_label(self.app, app_name)[0])
            )  # fmt: skip

    # -- results --------------------------------------------------------------------------

    def _names(self) -> dict[str, list[tuple[float, str]]]:
        """IP → [(time, name)] from DNS answers, in capture order."""
        names: dict[str, list[tuple[float, str]]] = {}
        for rec in sorted(self.dns, key=lambda r: r.ts):
            for answer in rec.answers:
                names.setdefault(answer, []).append((rec.ts, rec.name))
        return names

    def connections(self, skip: Collection[tuple[str, str, int, str, int]] = ()) -> Iterator[Connection]:
        """Every flow as a connection, in time order, except those of ``skip`` (read otherwise)."""
        names = self._names()
        for key, flow in sorted(self.flows.items(), key=lambda kv: kv[1].first):
            if key not in skip:
                yield self._connection(flow, names)

    def _connection(self, flow: _Flow, names: dict[str, list[tuple[float, str]]]) -> Connection:
        if not flow.done and flow.segments:  # connection ended before the parse condition was met
            stream = _contiguous(flow.segments)
            if looks_like_tls_record(stream):
                flow.hello = parse_tls_record(stream)
            elif stream.startswith(_HTTP_METHODS):
                end = stream.find(b"\r\n\r\n")
                head = stream[: end if end >= 0 else len(stream)].decode("latin-1")
                body = stream[end + 4 :] if end >= 0 else b""
                flow.http = _parse_http(head, body, True)
        protocol = flow.proto
        tls = "none"
        host = sni = alpn = tls_version = method = scheme = path = None
        query_keys: tuple[str, ...] = ()
        request = None
        request_content_type = None
        if flow.proto == "udp" and flow.server_port == 53 or flow.proto == "tcp" and flow.server_port == 53:
            protocol = "dns"
        if flow.hello is not None:
            protocol = "quic" if flow.proto == "udp" else "tls"
            tls = "passthrough"  # encrypted, not decrypted: only the ClientHello is visible
            host = sni = flow.hello.sni
            alpn = ",".join(flow.hello.alpn) or None
            tls_version = flow.hello.version
        elif flow.quic is not None and flow.quic.seen:
            protocol, tls = "quic", "passthrough"
        elif flow.http is not None:
            method, url, headers, body, truncated = flow.http
            protocol = scheme = "http"
            # a Host header urlsplit refuses ("[::1") gives no host: the DNS name is used below
            host, path, query = records.split_url(url)
            query_keys = records.query_keys(query)
            request_content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
            request = HttpRequestData(url=url, headers=headers, body=body, body_truncated=truncated)
        elif protocol in ("tcp", "udp"):
            protocol, tls = unread_stream(
                protocol, flow.server_port, flow.head, flow.bytes_out + flow.bytes_in
            )
        host = normalize_host(host)
        if host is None and protocol != "dns":
            host = _name_for(names.get(flow.server_ip, ()), flow.first)
        app, attribution = app_label(self.app, flow.app)
        return Connection(
            ts=flow.first,
            end_ts=flow.last,
            source=PcapImporter.source,
            protocol=protocol,
            tls=tls,
            app=app,
            attribution=attribution,
            host=host,
            sni=sni,
            ip=flow.server_ip,
            port=flow.server_port,
            client=_endpoint(flow.client_ip, flow.client_port),
            method=method,
            scheme=scheme,
            path=path,
            query_keys=query_keys,
            bytes_out=flow.bytes_out,
            bytes_in=flow.bytes_in,
            request_content_type=request_content_type,
            tls_version=tls_version,
            alpn=alpn,
            request=request,
        )


def _guess_client_is_src(sport: int, dport: int) -> bool:
    """Which side opened a connection whose handshake was not captured: the one not on a server port."""
    s_known, d_known = sport in _SERVER_PORTS, dport in _SERVER_PORTS
    if s_known != d_known:
        return d_known
    s_low, d_low = sport < 1024, dport < 1024
    if s_low != d_low:
        return d_low
    return dport <= sport


def _contiguous(segments: dict[int, bytes]) -> bytes:
    out = bytearray()
    for offset in sorted(segments):
        if offset > len(out):
            break
        out += segments[offset][len(out) - offset :]
    return bytes(out)


def _content_length(head: str) -> int:
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            try:
                return max(0, min(int(value.strip()), _MAX_STREAM))
            except ValueError:
                return 0
    return 0


def _parse_http(
    head: str, body: bytes, truncated: bool
) -> tuple[str, str, tuple[tuple[str, str], ...], bytes, bool]:
    """(method, absolute URL, headers, body, body truncated) of the first request of a stream."""
    lines = head.split("\r\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.rsplit(" ", 1)[0] if " HTTP/" in rest else rest
    headers = tuple(
        (name.strip(), value.strip()) for name, sep, value in (ln.partition(":") for ln in lines[1:]) if sep
    )
    host = next((v for k, v in headers if k.lower() == "host"), "")
    url = target if target.startswith(("http://", "https://")) else f"http://{host}{target}"
    capped, cut = cap_body(body)
    return method, url, headers, capped, truncated or cut


def _name_for(candidates: Any, ts: float) -> str | None:
    """The name most recently resolved to this IP before ``ts`` (else the first one resolved)."""
    best = None
    for when, name in candidates:
        if when <= ts or best is None:
            best = name
    return best
