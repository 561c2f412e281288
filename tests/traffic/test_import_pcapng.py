"""pcap/pcapng that used to give "0 connections" without a word (issue 15): interfaces of other link
types, Simple Packet Blocks, unknown and damaged blocks, a swapped byte-order magic, loopback
captures of IPv6, and captures that hold no IP traffic at all."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import pytest

from audit.errors import ImportFormatError
from audit.store import Store
from audit.traffic.importers import import_file
from tests.fixtures.captures.build_captures import write_pcap_packets
from tests.helpers.traffic import T0, frames, session_packets

#: Connections in session_packets() (two DNS exchanges, four TLS/HTTP/MQTT connections, one QUIC).
SESSION = 7


def block(kind: int, body: bytes, e: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", kind, n) + body + struct.pack(e + "I", n)


def shb(e: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def idb(linktype: int, e: str = "<", tsresol: int | None = None) -> bytes:
    opts = b""
    if tsresol is not None:
        opts = struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(e + "HH", 0, 0)
    return block(1, struct.pack(e + "HHI", linktype, 0, 65535) + opts, e)


def epb(iface: int, ts: float, frame: bytes, e: str = "<", per_second: int = 1_000_000) -> bytes:
    ticks = int(round(ts * per_second))
    return block(
        6, struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)) + frame, e
    )


def spb(frame: bytes, e: str = "<") -> bytes:
    return block(3, struct.pack(e + "I", len(frame)) + frame, e)


def eth_frames() -> list[tuple[float, bytes]]:
    return frames(dpkt.pcap.DLT_EN10MB, session_packets())


def imported(tmp_path: Path, data: bytes) -> tuple[object, Store]:
    path = tmp_path / "c.pcapng"
    path.write_bytes(data)
    store = Store()
    return import_file(path, store), store


def test_every_interface_keeps_its_own_link_type(tmp_path: Path) -> None:
    """Interface 1 is raw IP: dpkt read its packets as Ethernet, interface 0's link type."""
    raw = frames(dpkt.pcap.DLT_RAW, session_packets())
    blocks = [
        epb(i % 2, ts, eth if i % 2 == 0 else ip)
        for i, ((ts, eth), (_, ip)) in enumerate(zip(eth_frames(), raw, strict=True))
    ]
    data = shb() + idb(1) + idb(101) + b"".join(blocks)
    s, store = imported(tmp_path, data)
    assert s.errors == () and s.connections == SESSION  # type: ignore[attr-defined]


def test_interface_of_a_link_type_not_read_is_said(tmp_path: Path) -> None:
    data = (
        shb()
        + idb(1)
        + idb(147)
        + b"".join(epb(0, ts, f) for ts, f in eth_frames())
        + epb(1, T0, b"\x01" * 60) * 3
    )
    s, _ = imported(tmp_path, data)
    assert s.connections == SESSION  # type: ignore[attr-defined]
    assert s.errors == ("3 packet(s) with link type 147 skipped: supported: Ethernet, Linux cooked SLL/SLL2, raw IP, "  # type: ignore[attr-defined]
                        "BSD loopback",)  # fmt: skip


def test_only_interfaces_of_link_types_not_read_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="unsupported link type 147"):
        imported(tmp_path, shb() + idb(147))


def test_simple_packet_blocks_and_time_resolution(tmp_path: Path) -> None:
    fs = eth_frames()
    data = (
        shb()
        + idb(1, tsresol=9)
        + epb(0, fs[0][0], fs[0][1], per_second=10**9)
        + b"".join(spb(f) for _, f in fs[1:])
    )
    s, store = imported(tmp_path, data)
    assert s.connections == SESSION  # type: ignore[attr-defined]
    assert min(t for t, *_ in store.connection_times()) == pytest.approx(T0)


def test_unknown_and_orphan_blocks_are_counted(tmp_path: Path) -> None:
    data = (
        shb()
        + idb(1)
        + block(0x1234, b"what")
        + b"".join(epb(0, ts, f) for ts, f in eth_frames())
        + epb(7, T0, b"x" * 60)
    )
    s, _ = imported(tmp_path, data)
    assert s.connections == SESSION  # type: ignore[attr-defined]
    assert "1 block(s) of unknown type 0x00001234 skipped" in s.errors  # type: ignore[attr-defined]
    assert any("without a described interface" in e for e in s.errors)  # type: ignore[attr-defined]


def test_damaged_block_stops_reading_with_a_note(tmp_path: Path) -> None:
    good = b"".join(epb(0, ts, f) for ts, f in eth_frames())
    bad = bytearray(epb(0, T0 + 9, b"x" * 64))
    bad[-4:] = struct.pack("<I", 999)  # trailing length differs
    s, _ = imported(tmp_path, shb() + idb(1) + good + bytes(bad) + good)
    assert s.connections == SESSION  # type: ignore[attr-defined]
    (note,) = s.errors  # type: ignore[attr-defined]
    assert (
        note.startswith("capture truncated or damaged: unreadable block at byte") and "lengths differ" in note
    )


def test_second_section_in_the_other_byte_order(tmp_path: Path) -> None:
    fs = eth_frames()
    data = shb("<") + idb(1, "<") + b"".join(epb(0, ts, f, "<") for ts, f in fs[:8])
    data += shb(">") + idb(1, ">") + b"".join(epb(0, ts, f, ">") for ts, f in fs[8:])
    s, _ = imported(tmp_path, data)
    assert s.errors == () and s.connections == SESSION  # type: ignore[attr-defined]


def test_swapped_byte_order_magic_has_a_sensible_message(tmp_path: Path) -> None:
    data = bytearray(shb() + idb(1) + b"".join(epb(0, ts, f) for ts, f in eth_frames()))
    data[8:12] = data[8:12][::-1]
    with pytest.raises(ImportFormatError) as e:
        imported(tmp_path, bytes(data))
    msg = str(e.value)
    assert (
        "unreadable capture header (section header at byte 0" in msg
        and "swapped or damaged byte-order magic" in msg
    )


def test_garbage_byte_order_magic(tmp_path: Path) -> None:
    data = bytearray(shb() + idb(1))
    data[8:12] = b"ABCD"
    with pytest.raises(ImportFormatError, match="byte-order magic 41424344 .damaged"):
        imported(tmp_path, bytes(data))


@pytest.mark.parametrize("family", [2, 10, 24, 28, 30])
def test_loopback_captures_of_ipv4_and_ipv6(tmp_path: Path, family: int) -> None:
    """BSD loopback (DLT_NULL): AF_INET6 is 10 on Linux, 24/28/30 on the BSDs; dpkt knew only some."""
    pk = session_packets()
    path = tmp_path / "lo.pcap"
    write_pcap_packets(path, [(ts, struct.pack("<I", family) + bytes(ip)) for ts, ip in pk], linktype=0)
    s = import_file(path, Store())
    assert s.connections == SESSION and s.errors == ()


def test_capture_without_any_ip_traffic_says_so(tmp_path: Path) -> None:
    arp = dpkt.ethernet.Ethernet(
        dst=b"\xff" * 6, src=b"\x02" * 6, type=dpkt.ethernet.ETH_TYPE_ARP, data=dpkt.arp.ARP()
    )
    path = tmp_path / "arp.pcap"
    write_pcap_packets(path, [(T0 + i, bytes(arp)) for i in range(5)], linktype=1)
    s = import_file(path, Store())
    assert s.connections == 0
    assert s.errors == (
        "none of the 5 packet(s) read holds IPv4 or IPv6 traffic: nothing was imported from them",
    )
