"""mitmproxy flow objects → :class:`Connection` / :class:`DnsRecord`: the one conversion of the live
recorder (:mod:`audit.traffic.addon`) and the flow-file importer (:mod:`audit.traffic.importers.flows`),
so that a flow seen live and the same flow read back from a file give the same rows (only ``source``
differs). HTTP flows go through the one record builder, :func:`audit.traffic.records.http_connection`.

Raw TCP/UDP flows are streams mitmproxy relayed without interpreting them: a TLS ClientHello (TCP) or
QUIC Initial (UDP) at their start marks passed-through TLS/QUIC, with the SNI, ALPN and TLS version
the app offered. A TCP flow whose client sent an SNI but never completed TLS with mitmproxy, relayed
nothing and ended in an error, is a failed (usually pinned) handshake.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from audit.models import Connection, DnsRecord
from audit.names import normalize_host, normalize_ip
from audit.traffic import records
from audit.traffic.quic import QuicInitialReader

DNS_TYPES = {1: "A", 2: "NS", 5: "CNAME", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 65: "HTTPS"}


def address_text(address: Any) -> str | None:
    """``ip:port`` / ``[v6]:port`` of a socket address tuple."""
    if not address:
        return None
    host, port = str(address[0]), address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def peer_ip(address: Any) -> str | None:
    """Normalized IP literal of a socket address (IPv4-mapped IPv6 unwrapped), or None."""
    if not address:
        return None
    return normalize_ip(str(address[0]))


def text(value: Any) -> str | None:
    """A mitmproxy str-or-bytes attribute (ALPN, SNI) as text; None when empty."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("ascii", "replace") or None
    return str(value) or None


def host_of(address: Any) -> str | None:
    return normalize_host(str(address[0])) if address else None


def port_of(*addresses: Any) -> int | None:
    for a in addresses:
        if a and isinstance(a[1], int):
            return int(a[1])
    return None


def connection_fields(client: Any, server: Any) -> dict[str, Any]:
    """Who talked to which server: client address, the server IP and port actually used, and the
    TLS facts of the app's side (falling back to the upstream side)."""
    return {
        "client": address_text(getattr(client, "peername", None)),
        "ip": peer_ip(server.peername) or peer_ip(server.address),
        "port": port_of(server.address, server.peername),
        "sni": client.sni or server.sni or None,
        "tls_version": client.tls_version or server.tls_version or None,
        "alpn": text(client.alpn or server.alpn),
    }


def _headers(fields: Any) -> tuple[tuple[tuple[str, str], ...], int]:
    """(headers decoded byte for byte, approximate size on the wire) in one pass."""
    out = []
    size = 0
    for k, v in fields:
        size += len(k) + len(v) + 4
        out.append((k.decode("latin-1"), v.decode("latin-1")))
    return tuple(out), size


def _body_len(message: Any) -> int:
    raw = message.raw_content
    if raw is not None:
        return len(raw)
    try:  # streamed body: only the announced length is known
        return int(message.headers.get("content-length", "0"))
    except ValueError:
        return 0


def tls_state(flow: Any) -> str:
    """The app's side of an HTTP flow: ``intercepted`` when it completed TLS with mitmproxy;
    ``failed`` when it started TLS (https, an SNI, a ClientHello) but the handshake never completed
    and the flow ended in an error (usually a pinned certificate or an untrusted CA); else ``none``,
    plaintext. Never ``passthrough``: a flow mitmproxy parsed as HTTP was read, and TLS relayed
    unread reaches us as a TCP flow or a connection without flows. (The flow-file importer said
    ``passthrough`` for a plaintext flow whose client attributes carried an SNI, the live recorder
    ``none``: one rule now, issue 16.)"""
    client = flow.client_conn
    if client.tls_established:
        return "intercepted"
    if (flow.request.scheme == "https" or client.sni or client.tls) and (flow.error or client.error):
        return "failed"
    return "none"


def http_connection(flow: Any, *, app: str, source: str, body_limit: int = records.MAX_BODY) -> Connection:
    """One HTTP flow (or WebSocket: handshake and all messages) as a :class:`Connection`."""
    req, resp = flow.request, flow.response
    headers, header_size = _headers(req.headers.fields)
    bytes_out = header_size + _body_len(req)
    bytes_in = _headers(resp.headers.fields)[1] + _body_len(resp) if resp is not None else 0
    protocol = None
    ws = getattr(flow, "websocket", None)
    if ws is not None:
        protocol = "wss" if req.scheme == "https" else "ws"
        for m in ws.messages:
            if m.from_client:
                bytes_out += len(m.content)
            else:
                bytes_in += len(m.content)
    end = ws.timestamp_end if ws is not None and getattr(ws, "timestamp_end", None) else None
    end = end or (resp.timestamp_end if resp is not None else None) or req.timestamp_end
    return records.http_connection(
        ts=req.timestamp_start, end_ts=end, source=source, app=app, scheme=req.scheme,
        host=req.pretty_host or req.host, method=req.method, target=req.path or "", url=req.pretty_url,
        headers=headers, body=req.raw_content, tls=tls_state(flow), bytes_out=bytes_out, bytes_in=bytes_in,
        protocol=protocol, body_limit=body_limit, status=resp.status_code if resp is not None else None,
        request_content_type=req.headers.get("content-type"),
        response_content_type=resp.headers.get("content-type") if resp is not None else None, http_version=req.http_version,
        error=flow.error.msg if flow.error else flow.client_conn.error or None,
        **connection_fields(flow.client_conn, flow.server_conn),
    )  # fmt: skip


def stream_connection(flow: Any, *, app: str, source: str) -> Connection:
    """A raw TCP or UDP flow, recognising passed-through TLS and QUIC by their first client bytes."""
    # Here, not at the top: the importers package imports this module.
    from audit.traffic.tls import looks_like_tls_record, parse_tls_record, unread_stream

    fields = connection_fields(flow.client_conn, flow.server_conn)
    messages = list(flow.messages or ())
    first = next((m.content for m in messages if m.from_client), b"")
    client = flow.client_conn
    error = (flow.error.msg if flow.error else None) or client.error or None
    protocol = "udp" if flow.type == "udp" else "tcp"
    tls = "intercepted" if client.tls_established else "none"
    hello = None
    if protocol == "tcp" and (looks_like_tls_record(first) or (client.sni and not client.tls_established)):
        protocol = "tls"
        hello = parse_tls_record(first) if first else None
        if tls == "none":
            # Relayed bytes mean mitmproxy passed the connection through; none, an SNI and an
            # error mean the handshake with mitmproxy itself failed (how saved flows record it).
            tls = "failed" if error and not first else "passthrough"
    elif protocol == "udp" and first:
        hello = quic_client_hello(m.content for m in messages if m.from_client)
        if hello is not None:
            protocol = "quic"
            tls = "passthrough" if tls == "none" else tls
    if hello is None and tls == "none" and protocol in ("tcp", "udp"):
        protocol, tls = unread_stream(protocol, fields["port"], first, sum(len(m.content) for m in messages))
    if hello is not None:
        # Nothing was negotiated with mitmproxy: what the app offered is the evidence.
        fields["sni"] = hello.sni or fields["sni"]
        fields["alpn"] = ",".join(hello.alpn) or fields["alpn"]
        fields["tls_version"] = getattr(hello, "version", None) or fields["tls_version"]
    times = [m.timestamp for m in messages]
    return Connection(
        ts=client.timestamp_start or flow.timestamp_created,
        end_ts=max(times) if times else client.timestamp_end,
        source=source,
        protocol=protocol,
        tls=tls,
        app=app,
        host=fields["sni"] or host_of(flow.server_conn.address),
        bytes_out=sum(len(m.content) for m in messages if m.from_client),
        bytes_in=sum(len(m.content) for m in messages if not m.from_client),
        error=error,
        **fields,
    )


#: Client datagrams searched for a QUIC ClientHello (browsers split large ones over two or three).
QUIC_HELLO_DATAGRAMS = 8


def quic_client_hello(datagrams: Iterable[bytes]) -> Any:
    """The ClientHello of a QUIC connection from its first client datagrams (reassembled when it
    spans several Initial packets), or None if they are not QUIC Initials."""
    reader = QuicInitialReader()
    hello = None
    for n, datagram in enumerate(datagrams):
        if n >= QUIC_HELLO_DATAGRAMS:
            break
        hello = reader.feed(datagram)
        if hello is not None and hello.sni:
            break
        if n == 0 and not reader.seen:  # the first datagram is no QUIC Initial: not QUIC
            return None
    return hello


def dns_records(flow: Any, *, app: str, source: str) -> list[Connection | DnsRecord]:
    """One DnsRecord per question, with the answers (A, AAAA and CNAME targets); plus a ``dns``
    connection to the resolver when one was actually contacted (mitmproxy often answers itself)."""
    req, resp = flow.request, flow.response
    ts = getattr(req, "timestamp", None) or flow.timestamp_created
    answers: list[str] = []
    for rr in resp.answers if resp is not None else ():
        try:
            if rr.type == 1:
                answers.append(str(rr.ipv4_address))
            elif rr.type == 28:
                answers.append(str(rr.ipv6_address))
            elif rr.type == 5:
                answers.append(normalize_host(rr.domain_name) or "")
        except (ValueError, TypeError, AttributeError, IndexError):  # malformed rdata
            continue
    out: list[Connection | DnsRecord] = [
        DnsRecord(
            ts=ts,
            source=source,
            name=normalize_host(str(q.name)) or "",
            qtype=DNS_TYPES.get(q.type, str(q.type)),
            answers=tuple(dict.fromkeys(answers)),
            app=app,
        )
        for q in (req.questions if req is not None else ())
    ]
    if flow.server_conn.peername:
        out.append(
            Connection(
                ts=ts,
                end_ts=getattr(resp, "timestamp", None),
                source=source,
                protocol="dns",
                app=app,
                # The resolver is the destination; the names asked are in the DnsRecords.
                host=None,
                bytes_out=len(req.packed) if req is not None else 0,
                bytes_in=len(resp.packed) if resp is not None else 0,
                error=flow.error.msg if flow.error else None,
                **connection_fields(flow.client_conn, flow.server_conn),
            )
        )
    return out
