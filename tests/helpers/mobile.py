"""An IPv6-only phone on a mobile network, for the NAT64 and vantage-point captures (issue 12):
its public address, its operator's resolver, a TLS connection as IP packets (:func:`tls`) and a
pcap of such connections (:func:`simple_capture`)."""

from __future__ import annotations

from pathlib import Path

import dpkt

from tests.fixtures.captures.build_captures import (
    client_hello,
    ethernet,
    tcp_session,
    tls_record,
    write_pcap_packets,
)
from tests.helpers.traffic import T0

#: The phone's public IPv6 address (an IPv6-only phone on a mobile network).
PHONE6 = "2a01:598:a0::23"
#: The operator's DNS resolver, over IPv6.
RESOLVER6 = "2a01:598:7ff:0:10:74:210:210"


def tls(client: str, port: int, server: str, ts: float, sni: str) -> list[tuple[float, dpkt.Packet]]:
    """A TCP session from ``client:port`` to ``server:443`` at ``ts``: a ClientHello for ``sni`` and 80
    bytes of TLS back."""
    return tcp_session(
        client, port, server, 443, ts, [tls_record(client_hello(sni))], [b"\x16\x03\x03" + b"s" * 80]
    )


def simple_capture(path: Path, client: str, server: str, extra: tuple[tuple[str, str], ...] = ()) -> Path:
    """``client`` opens TLS to ``server`` as api.example.com; ``extra`` (client, server) pairs too."""
    pk = tls(client, 40001, server, T0, "api.example.com")
    for i, (c, s) in enumerate(extra):
        pk += tls(c, 41000 + i, s, T0 + 1 + i, f"other{i}.example.com")
    write_pcap_packets(path, [(ts, ethernet(p)) for ts, p in pk])
    return path
