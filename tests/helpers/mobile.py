"""An IPv6-only phone on a mobile network, for the NAT64 and vantage-point captures (issue 12):
its public address, its operator's resolver, and a TLS connection from it as IP packets."""

from __future__ import annotations

import dpkt

from tests.fixtures.captures.build_captures import client_hello, tcp_session, tls_record

#: The phone's public IPv6 address (an IPv6-only phone on a mobile network).
PHONE6 = "2a01:598:a0::23"
#: The operator's DNS resolver, over IPv6.
RESOLVER6 = "2a01:598:7ff:0:10:74:210:210"


def tls(client: str, port: int, server: str, ts: float, sni: str) -> list[tuple[float, dpkt.Packet]]:
    """A TCP session from ``client:port`` to ``server:443`` at ``ts``: a ClientHello for ``sni`` and 80
    bytes of TLS back."""
    return tcp_session(client, port, server, 443, ts, [tls_record(client_hello(sni))], [b"\x16\x03\x03" + b"s" * 80])
