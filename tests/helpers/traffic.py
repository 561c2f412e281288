"""Captures built in code for the traffic tests: mitmproxy flows (:func:`http_flow`) and flow files
(:func:`write_flows`), HAR entries and files (:func:`entry`, :func:`write_har`), and a phone's
session as IP packets (:func:`session_packets`) framed for any pcap link type (:func:`frames`)."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dpkt
from mitmproxy import flow, http
from mitmproxy.io import FlowWriter
from mitmproxy.test import tflow

from tests.fixtures.captures.build_captures import (
    client_hello,
    dns_query,
    dns_response,
    ethernet,
    quic_initial,
    tcp_session,
    tls_record,
    udp_packet,
)

#: The phone's IPv4 and IPv6 addresses in :func:`session_packets`.
PHONE, PHONE6 = "192.168.1.23", "2001:db8:42::23"
#: When :func:`session_packets` starts (its first DNS query).
T0 = 1_718_703_000.0
#: The plain HTTP request in :func:`session_packets` (port 80, a JSON body with an IMEI key).
HTTP_REQ = (b"POST /d/report?aid=7&dev=x HTTP/1.1\r\nHost: log.example.cn\r\nContent-Type: application/json\r\n"
            b"Content-Length: 14\r\n\r\n{\"imei\": \"1\"}\n")  # fmt: skip


def http_flow(url: str, ip: str = "8.8.8.8", port: int = 443, body: bytes = b"", **kw: Any) -> http.HTTPFlow:
    """A finished mitmproxy flow (``tflow`` with a response) to ``url`` at server ``ip:port``: POST with
    ``body`` if one is given, else GET; JSON request, text response; plain HTTP for ``http://`` URLs.
    ``kw`` goes to ``tflow.tflow``."""
    f = tflow.tflow(resp=True, **kw)
    f.request.url = url
    f.request.method = "POST" if body else "GET"
    f.request.content = body
    f.request.headers["content-type"] = "application/json"
    f.server_conn.address = (f.request.host, port)
    f.server_conn.peername = (ip, port)
    assert f.response is not None  # resp=True
    f.response.headers["content-type"] = "text/plain"
    if url.startswith("http://"):
        f.client_conn.timestamp_tls_setup = None  # tflow's client speaks TLS by default
    return f


def https_flow(host: str = "api.example.net", body: bytes = b"", ip: str = "203.0.113.10") -> http.HTTPFlow:
    """A finished JSON POST to ``https://host/v1/track?uid=1&uid=2&ev=x`` with ``body``, server ``ip:443``,
    SNI ``host``, at 1,700,000,000 s."""
    fl = tflow.tflow(resp=True)
    fl.request = http.Request.make(
        "POST", f"https://{host}/v1/track?uid=1&uid=2&ev=x", body, [(b"Content-Type", b"application/json")]
    )
    fl.request.timestamp_start, fl.request.timestamp_end = 1_700_000_000.0, 1_700_000_000.1
    fl.server_conn.address = (host, 443)
    fl.server_conn.peername = (ip, 443)
    fl.client_conn.sni = host
    return fl


#: mitmproxy's test flows are stamped 2000-01-01, before Android (an implausible time since issue 12):
#: written at the same time of day in 2023 instead, so that only a test's own odd times are flagged.
_TFLOW_EPOCH = (946_681_200.0, 946_767_600.0)
_SHIFT = 1_700_000_000.0 - 946_681_200.0


def modern_state(state: Any) -> Any:
    """A flow's ``get_state()`` with every time inside tflow's 2000-01-01 moved to 2023."""
    if isinstance(state, dict):
        return {k: modern_state(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(modern_state(v) for v in state)
    if (
        isinstance(state, float | int)
        and not isinstance(state, bool)
        and _TFLOW_EPOCH[0] <= state <= _TFLOW_EPOCH[1]
    ):
        return state + _SHIFT
    return state


def modern(fl: Any) -> Any:
    """A copy of a mitmproxy test flow with its 2000-01-01 times moved to 2023."""
    return type(fl).from_state(modern_state(fl.get_state()))


def write_flows(path: Path, flows: Sequence[flow.Flow]) -> Path:
    """``flows`` written to ``path`` as a mitmproxy flow file, with mitmproxy's own writer (tflow's
    2000-01-01 times moved to 2023, see :data:`_TFLOW_EPOCH`)."""
    with path.open("wb") as f:
        w = FlowWriter(f)
        for fl in flows:
            w.add(modern(fl))
    return path


def entry(url: str = "https://api.example.net/v1/x?a=1&b=2", **over: Any) -> dict[str, Any]:
    """A HAR 1.2 entry: a JSON POST to ``url`` answered 200 by 203.0.113.7; ``over`` replaces top-level
    keys (``request``, ``response``, ``serverIPAddress`` …)."""
    e: dict[str, Any] = {
        "startedDateTime": "2024-06-18T09:30:00.250Z",
        "time": 120.5,
        "request": {
            "method": "POST", "url": url, "httpVersion": "HTTP/2.0",
            "headers": [{"name": "Content-Type", "value": "application/json"}],
            "queryString": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}],
            "postData": {"mimeType": "application/json", "text": '{"k": 1}'},
            "headersSize": -1, "bodySize": 8,
        },
        "response": {"status": 200, "headersSize": 100, "bodySize": -1,
                     "content": {"size": 640, "mimeType": "application/json"}},
        "serverIPAddress": "203.0.113.7",
    }  # fmt: skip
    for k, v in over.items():
        e[k] = v
    return e


def write_har(path: Path, entries: list[Any], *, bom: bool = False) -> Path:
    """A HAR file at ``path`` holding ``entries`` (after a UTF-8 byte order mark if ``bom``)."""
    text = json.dumps(
        {"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": entries}}
    )
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def session_packets() -> list[tuple[float, dpkt.Packet]]:
    """DNS lookup + TLS connection, an HTTP request, a QUIC connection, an IPv6 TLS connection."""
    pk: list[tuple[float, dpkt.Packet]] = [
        (T0, udp_packet(PHONE, 5353, "8.8.8.8", 53, dns_query("api.example.cn", 7))),
        (
            T0 + 0.01,
            udp_packet("8.8.8.8", 53, PHONE, 5353, dns_response("api.example.cn", ["43.156.32.17"], 7)),
        ),
        (T0 + 0.02, udp_packet(PHONE, 5354, "8.8.8.8", 53, dns_query("bare.example.cn", 8))),
        (
            T0 + 0.03,
            udp_packet("8.8.8.8", 53, PHONE, 5354, dns_response("bare.example.cn", ["43.156.32.99"], 8)),
        ),
    ]
    pk += tcp_session(
        PHONE,
        40001,
        "43.156.32.17",
        443,
        T0 + 1,
        [tls_record(client_hello("api.example.cn"))],
        [b"\x16\x03\x03" + b"s" * 200],
    )
    pk += tcp_session(
        PHONE, 40002, "119.29.29.29", 80, T0 + 2, [HTTP_REQ], [b"HTTP/1.1 204 No Content\r\n\r\n"]
    )
    pk.append(
        (
            T0 + 3,
            udp_packet(
                PHONE,
                40003,
                "142.250.74.194",
                443,
                quic_initial("ads.example.com", b"\x83\x94\xc8\xf0\x3e\x51\x57\x08"),
            ),
        )
    )
    pk.append((T0 + 3.1, udp_packet("142.250.74.194", 443, PHONE, 40003, b"\xc0" + b"r" * 1199)))
    pk += tcp_session(
        PHONE6,
        40004,
        "2a03:2880:f12f:83:face:b00c:0:25de",
        443,
        T0 + 4,
        [tls_record(client_hello("graph.example.com"))],
        [b"x" * 50],
    )
    # a connection without SNI or HTTP, to an IP resolved before: named from DNS
    pk += tcp_session(PHONE, 40005, "43.156.32.99", 8883, T0 + 5, [b"\x10\x20MQTT"], [b"\x20\x02\x00\x00"])
    return pk


def frames(linktype: int, packets: list[tuple[float, dpkt.Packet]]) -> list[tuple[float, bytes]]:
    """``packets`` (IP) framed for a pcap link type: Ethernet (1), Linux cooked v1 (113) or v2 (276),
    else raw IP."""
    out = []
    for ts, ip in packets:
        raw = bytes(ip)
        is6 = isinstance(ip, dpkt.ip6.IP6)
        if linktype == dpkt.pcap.DLT_EN10MB:
            out.append((ts, ethernet(ip)))
        elif linktype == 113:  # Linux cooked v1
            out.append(
                (ts, struct.pack("!HHH8sH", 4, 1, 6, b"\x02" * 6 + b"\0\0", 0x86DD if is6 else 0x0800) + raw)
            )
        elif linktype == 276:  # Linux cooked v2
            out.append(
                (
                    ts,
                    struct.pack("!HHiHBB8s", 0x86DD if is6 else 0x0800, 0, 3, 1, 4, 6, b"\x02" * 6 + b"\0\0")
                    + raw,
                )
            )
        else:
            out.append((ts, raw))
    return out
