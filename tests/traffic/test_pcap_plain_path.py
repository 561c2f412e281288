"""The pcap reader's dpkt-free path for plain IPv4/IPv6 TCP and UDP packets (``_Analyzer._plain``)
gives exactly what decoding every packet with dpkt gives, for ordinary packets and odd ones alike
(options, fragments, extension headers, short or lying lengths, mismatched EtherTypes, VLAN tags,
PCAPdroid trailers, raw IP link types)."""

from __future__ import annotations

import random
import socket
import struct
from typing import Any

import dpkt
import pytest

from audit.traffic.importers.pcap import DLT_EN10MB, DLT_RAW, _Analyzer
from tests.fixtures.captures.build_captures import client_hello, tls_record
from tests.helpers.traffic import T0, frames, session_packets


class _DpktOnly(_Analyzer):
    """The same analyzer with the plain path turned off: every packet goes through dpkt."""

    def _plain(self, *args: Any, **kwargs: Any) -> bool:
        return False


def _ip4(payload: bytes, proto: int, *, src: str = "10.0.0.2", dst: str = "93.184.216.34", options: bytes = b"",
         flags_offset: int = 0x4000, total: int | None = None, version: int = 4) -> bytes:  # fmt: skip
    hl = 20 + len(options)
    length = hl + len(payload) if total is None else total
    head = struct.pack("!BBHHHBBH4s4s", (version << 4) | (hl // 4), 0, length, 7, flags_offset, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst))  # fmt: skip
    return head + options + payload


def _ip6(
    payload: bytes, nxt: int, *, plen: int | None = None, src: str = "2001:db8::2", dst: str = "2001:db8::99"
) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload) if plen is None else plen, nxt, 64,
                       socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)) + payload  # fmt: skip


def _tcp(payload: bytes, *, sport: int = 40000, dport: int = 443, seq: int = 1000, flags: int = 0x18, doff: int = 5,
         options: bytes = b"") -> bytes:  # fmt: skip
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, doff << 4, flags, 65535, 0, 0) + options + payload


def _udp(payload: bytes, *, sport: int = 50000, dport: int = 443) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _eth(packet: bytes, ethertype: int = 0x0800, trailer: bytes = b"") -> bytes:
    return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", ethertype) + packet + trailer


def _odd_packets() -> list[tuple[int, bytes]]:
    rng = random.Random(7)
    hello = tls_record(client_hello("odd.example.net", rng=rng))
    get = b"GET /a?imei=1 HTTP/1.1\r\nHost: plain.example.net\r\n\r\n"
    syn = _tcp(b"", flags=0x02, seq=999)
    out: list[tuple[int, bytes]] = [
        (DLT_EN10MB, _eth(_ip4(syn, 6))),
        (
            DLT_EN10MB,
            _eth(_ip4(_tcp(b"", sport=443, dport=40000, flags=0x12), 6, src="93.184.216.34", dst="10.0.0.2")),
        ),
        (DLT_EN10MB, _eth(_ip4(_tcp(hello), 6))),
        (DLT_EN10MB, _eth(_ip4(_tcp(get, dport=80, seq=5), 6))),
        (DLT_EN10MB, _eth(_ip4(_tcp(b"x" * 30, options=b"\x01\x01\x08\x0a" + b"\0" * 8, doff=8), 6))),
        (DLT_EN10MB, _eth(_ip4(_tcp(b"opts"), 6, options=b"\x01\x01\x01\x00"))),  # IPv4 options
        (DLT_EN10MB, _eth(_ip4(_tcp(b"frag1"), 6, flags_offset=0x2000))),  # first fragment (MF)
        (DLT_EN10MB, _eth(_ip4(b"later fragment bytes", 6, flags_offset=0x0003))),
        (DLT_EN10MB, _eth(_ip4(_tcp(b"short"), 6, total=30))),  # length cuts the TCP header
        (DLT_EN10MB, _eth(_ip4(_tcp(b"tso"), 6, total=0))),  # segmentation offload: length 0
        (DLT_EN10MB, _eth(_ip4(_tcp(b"long"), 6, total=4000))),  # longer than the frame
        (DLT_EN10MB, _eth(_ip4(_tcp(b"bad doff", doff=3), 6))),
        (DLT_EN10MB, _eth(_ip4(_tcp(b"doff past end", doff=15), 6))),
        (DLT_EN10MB, _eth(_ip4(_tcp(b"v6 in a v4 frame"), 6, version=6))),
        (DLT_EN10MB, _eth(_ip6(_tcp(b"v6 payload", sport=40001), 6), ethertype=0x0800)),  # EtherType lies
        (DLT_EN10MB, _eth(_ip4(_tcp(b"v4 payload", sport=40002), 6), ethertype=0x86DD)),
        (DLT_EN10MB, _eth(_ip4(_udp(b"\xc0" + b"q" * 40), 17))),
        (DLT_EN10MB, _eth(_ip4(_udp(b"", dport=53), 17))),
        (DLT_EN10MB, _eth(_ip4(b"\x01\x02", 17))),  # UDP header cut
        (DLT_EN10MB, _eth(_ip4(b"\x08\x00" + b"\0" * 30, 1))),  # ICMP
        (DLT_EN10MB, _eth(_ip6(_tcp(hello, sport=40003), 6))),
        (DLT_EN10MB, _eth(_ip6(_udp(b"\xc0" + b"q" * 40, sport=50001), 17))),
        (DLT_EN10MB, _eth(_ip6(_tcp(b"jumbo"), 6, plen=0))),
        (
            DLT_EN10MB,
            _eth(_ip6(b"\x06\x00" + b"\0" * 6 + _tcp(b"hop by hop", sport=40004), 0)),
        ),  # extension header
        (DLT_EN10MB, _eth(_ip6(b"\0" * 10, 6))),  # TCP header cut
        (
            DLT_EN10MB,
            _eth(b"\x00\x01" * 2 + struct.pack("!H", 0x0800) + _ip4(_tcp(b"vlan", sport=40005), 6), 0x8100),
        ),
        (DLT_EN10MB, _eth(_ip4(_tcp(b"with trailer", sport=40006), 6), trailer=b"T" * 32)),
        (DLT_EN10MB, _eth(b"\x45\x00")),  # IPv4 header cut
        (DLT_EN10MB, b"\x00" * 10),  # Ethernet header cut
        (DLT_RAW, _ip4(_tcp(get, dport=8080, sport=40007, seq=9), 6)),
        (DLT_RAW, _ip6(_tcp(b"raw v6", sport=40008), 6)),
        (DLT_RAW, b"\x75" + b"\0" * 50),  # IP version 7
    ]
    out += [(DLT_EN10MB, frame) for _, frame in frames(DLT_EN10MB, session_packets())]
    out += [(DLT_RAW, frame) for _, frame in frames(DLT_RAW, session_packets())]
    for _ in range(300):  # random damage to real packets: whatever happens, both paths agree
        linktype, frame = out[rng.randrange(len(out))]
        cut = bytearray(frame)
        for _ in range(rng.randint(1, 4)):
            if cut:
                cut[rng.randrange(len(cut))] = rng.randrange(256)
        out.append((linktype, bytes(cut[: rng.randint(0, len(cut))] if rng.random() < 0.3 else cut)))
    return out


def _state(analyzer: _Analyzer) -> Any:
    return (analyzer.flows, analyzer.dns, analyzer.undecodable, analyzer.packets, analyzer.ip_packets,
            analyzer.unsupported, list(analyzer.connections()))  # fmt: skip


@pytest.mark.parametrize("one_by_one", [False, True])
def test_plain_path_gives_what_dpkt_gives(one_by_one: bool) -> None:
    packets = _odd_packets()
    if one_by_one:  # each packet alone, so that one's effect cannot hide in another's flow
        for i, (linktype, frame) in enumerate(packets):
            fast, slow = _Analyzer(app=""), _DpktOnly(app="")
            fast.packet(T0 + i, frame, linktype)
            slow.packet(T0 + i, frame, linktype)
            assert _state(fast) == _state(slow), (i, frame.hex())
        return
    fast, slow = _Analyzer(app=""), _DpktOnly(app="")
    for i, (linktype, frame) in enumerate(packets):
        fast.packet(T0 + i / 10, frame, linktype)
        slow.packet(T0 + i / 10, frame, linktype)
    assert _state(fast) == _state(slow)
    # the comparison is not between two empty results
    hosts = {c.host for c in fast.connections()}
    assert {"odd.example.net", "plain.example.net"} <= hosts
    assert fast.undecodable > 0 and fast.ip_packets > 40


def test_plain_path_is_taken_for_ordinary_packets() -> None:
    analyzer = _Analyzer(app="")
    taken = [analyzer._plain(T0, frame, 14, None, 4) for _, frame in frames(DLT_EN10MB, session_packets())
             if frame[12:14] == b"\x08\x00"]  # fmt: skip
    assert taken and all(taken)
    assert analyzer._plain(
        T0, _eth(_ip4(_tcp(b"x"), 6, options=b"\x01" * 4)), 14, None, 4
    )  # options are skipped
    assert not analyzer._plain(T0, _eth(_ip4(_tcp(b"frag"), 6, flags_offset=0x2000)), 14, None, 4)
    assert not analyzer._plain(T0, _eth(_ip6(b"\x06\x00" + b"\0" * 6 + _tcp(b"ext"), 0)), 14, None, 6)


def test_dpkt_decodes_the_frames_it_is_compared_on() -> None:
    # the builders above make packets dpkt reads as intended (else the parity test proves little)
    ip = dpkt.ethernet.Ethernet(_eth(_ip4(_tcp(b"hello", options=b"\x01" * 12, doff=8), 6))).data
    assert isinstance(ip.data, dpkt.tcp.TCP) and ip.data.data == b"hello" and ip.data.dport == 443
    ip6 = dpkt.ethernet.Ethernet(_eth(_ip6(_udp(b"u6"), 17), 0x86DD)).data
    assert isinstance(ip6.data, dpkt.udp.UDP) and ip6.data.data == b"u6"
