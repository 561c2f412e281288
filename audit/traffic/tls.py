"""Reading the server name (SNI) and ALPN out of a TLS ClientHello.

Used for passed-through TLS in flow files, the first client payload of TCP connections in pcaps, and
the CRYPTO data of QUIC Initial packets. Only the fields we need are parsed (RFC 8446 §4.1.2,
RFC 6066 §3 server_name, RFC 7301 ALPN); anything malformed gives ``None``, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.names import normalize_host

_TLS_VERSIONS = {0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}


@dataclass(frozen=True)
class ClientHello:
    """What a ClientHello tells about the destination."""

    sni: str | None
    alpn: tuple[str, ...] = ()
    version: str | None = None
    """Highest version offered (supported_versions extension, else the legacy field)."""


def looks_like_tls_record(data: bytes) -> bool:
    """A TLS handshake record (content type 22, version 3.x)."""
    return len(data) >= 6 and data[0] == 0x16 and data[1] == 3 and data[5] == 1


def parse_tls_record(data: bytes) -> ClientHello | None:
    """Parse a ClientHello from the start of a TCP stream (one or more TLS records).

    Handshake messages split over several records are joined; a ClientHello cut by the end of
    ``data`` still yields the SNI if the server_name extension was before the cut.
    """
    if not looks_like_tls_record(data):
        return None
    handshake = bytearray()
    pos = 0
    while pos + 5 <= len(data) and data[pos] == 0x16:
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        handshake += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
    return parse_client_hello(bytes(handshake))


def parse_client_hello(hs: bytes) -> ClientHello | None:
    """Parse a handshake message (type 1 = ClientHello, as in QUIC CRYPTO frames)."""
    if len(hs) < 4 or hs[0] != 1:
        return None
    try:
        p = 4
        legacy_version = int.from_bytes(hs[p : p + 2], "big")
        p += 2 + 32  # version, random
        p += 1 + hs[p]  # session id
        p += 2 + int.from_bytes(hs[p : p + 2], "big")  # cipher suites
        p += 1 + hs[p]  # compression methods
        ext_end = min(len(hs), p + 2 + int.from_bytes(hs[p : p + 2], "big"))
        p += 2
    except IndexError:
        return None
    sni: str | None = None
    alpn: list[str] = []
    version = _TLS_VERSIONS.get(legacy_version)
    while p + 4 <= ext_end:
        etype = int.from_bytes(hs[p : p + 2], "big")
        elen = int.from_bytes(hs[p + 2 : p + 4], "big")
        body = hs[p + 4 : p + 4 + elen]
        p += 4 + elen
        if etype == 0:
            sni = _server_name(body) or sni
        elif etype == 16:
            alpn = _alpn(body)
        elif etype == 43 and body:
            offered = [int.from_bytes(body[i : i + 2], "big") for i in range(1, 1 + body[0], 2)]
            known = [v for v in offered if v in _TLS_VERSIONS]
            if known:
                version = _TLS_VERSIONS[max(known)]
    return ClientHello(sni=sni, alpn=tuple(alpn), version=version)


def _server_name(body: bytes) -> str | None:
    # ServerNameList: u16 length, then (u8 type, u16 length, name); type 0 = host_name.
    p = 2
    while p + 3 <= len(body):
        ntype = body[p]
        nlen = int.from_bytes(body[p + 1 : p + 3], "big")
        name = body[p + 3 : p + 3 + nlen]
        p += 3 + nlen
        if ntype == 0 and name:
            text = normalize_host(name.decode("ascii", "replace")) or ""
            return text or None
    return None


def _alpn(body: bytes) -> list[str]:
    out = []
    p = 2
    while p < len(body):
        n = body[p]
        out.append(body[p + 1 : p + 1 + n].decode("ascii", "replace"))
        p += 1 + n
    return out


def looks_like_any_tls_record(data: bytes) -> bool:
    """A TLS record of any content type (change_cipher_spec, alert, handshake, application_data;
    version 3.x): how a stream captured after its handshake starts."""
    return len(data) >= 5 and 20 <= data[0] <= 23 and data[1] == 3 and data[2] <= 4


def looks_like_quic(datagram: bytes) -> bool:
    """A QUIC packet (RFC 9000 §17: the fixed bit 0x40 is set in long and short headers alike;
    RFC 9287 lets it be greased, so this is a heuristic, used only on UDP/443)."""
    return len(datagram) >= 20 and bool(datagram[0] & 0x40)


def unread_stream(transport: str, port: int | None, head: bytes, payload: int) -> tuple[str, str]:
    """(protocol, tls) of a raw TCP or UDP stream no reader recognised (no ClientHello, no HTTP):
    ``head`` is the client's first bytes, ``payload`` the bytes both ways. The one rule for the
    recorder, the flow-file reader and the pcap reader (issue 12):

    * a TCP stream starting with a TLS record (a capture begun after the handshake) is ``tls``,
      ``passthrough``; a UDP/443 stream of QUIC packets is ``quic``, ``passthrough``;
    * a stream that carried no payload at all is ``unknown``: nothing says it was plaintext (a
      0-byte TCP/443 connection is not "no TLS");
    * anything else is plaintext or an unknown protocol on the wire: ``none``."""
    if transport == "tcp" and looks_like_any_tls_record(head):
        return "tls", "passthrough"
    if transport == "udp" and port == 443 and looks_like_quic(head):
        return "quic", "passthrough"
    if payload <= 0:
        return transport, "unknown"
    return transport, "none"
