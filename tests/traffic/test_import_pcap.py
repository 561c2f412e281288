"""pcap/pcapng import: link types, DNS, TLS SNI, HTTP, QUIC Initial, PCAPdroid trailer, damage."""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path

import dpkt
import pytest

from audit.errors import ImportFormatError
from audit.store import Store
from audit.traffic.importers import import_file
from audit.traffic.importers.base import BoundedReader
from audit.traffic.importers.pcap import _guess_client_is_src
from audit.traffic.quic import (
    QUIC_V2,
    client_initial_keys,
    decrypt_initial,
    hp_mask,
    parse_quic_initial,
)
from audit.traffic.tls import parse_tls_record
from tests.conftest import FIXTURES
from tests.fixtures.captures.build_captures import (
    client_hello,
    quic_initial,
    tcp_session,
    tls_record,
    udp_packet,
    write_pcap_packets,
)
from tests.helpers.traffic import PHONE, PHONE6, T0, frames, session_packets


def by_key(store: Store) -> dict[tuple[str | None, int | None], object]:
    return {(c.ip, c.port): c for _, c in store.connections()}


@pytest.mark.parametrize("linktype", [1, 101, 113, 276, 12])
def test_link_types(tmp_path: Path, linktype: int) -> None:
    path = tmp_path / "cap.pcap"
    write_pcap_packets(path, frames(linktype, session_packets()), linktype=linktype)
    store = Store()
    s = import_file(path, store, app="com.example.app")
    assert (s.format, s.errors) == ("pcap", ())
    got = by_key(store)
    tls = got[("43.156.32.17", 443)]
    assert (tls.protocol, tls.tls, tls.sni, tls.host, tls.alpn, tls.tls_version) == (  # type: ignore[attr-defined]
        "tls",
        "passthrough",
        "api.example.cn",
        "api.example.cn",
        "h2,http/1.1",
        "TLSv1.3",
    )
    assert tls.client == f"{PHONE}:40001" and tls.bytes_in == 203  # type: ignore[attr-defined]
    http = got[("119.29.29.29", 80)]
    assert (http.protocol, http.host, http.method, http.path, http.query_keys) == (  # type: ignore[attr-defined]
        "http",
        "log.example.cn",
        "POST",
        "/d/report",
        ("aid", "dev"),
    )
    quic = got[("142.250.74.194", 443)]
    initial = quic_initial("ads.example.com", b"\x83\x94\xc8\xf0\x3e\x51\x57\x08")
    assert (quic.protocol, quic.sni, quic.alpn, quic.bytes_out, quic.bytes_in) == (
        "quic",
        "ads.example.com",
        "h3",
        len(initial),
        1200,
    )  # type: ignore[attr-defined]
    v6 = got[("2a03:2880:f12f:83:face:b00c:0:25de", 443)]
    assert v6.sni == "graph.example.com" and v6.client == f"[{PHONE6}]:40004"  # type: ignore[attr-defined]
    named = got[("43.156.32.99", 8883)]
    assert (named.protocol, named.host, named.sni) == ("tcp", "bare.example.cn", None)  # type: ignore[attr-defined]
    dns = got[("8.8.8.8", 53)]
    assert dns.protocol == "dns" and dns.host is None  # type: ignore[attr-defined]
    assert store.dns_names() == {"43.156.32.17": ["api.example.cn"], "43.156.32.99": ["bare.example.cn"]}
    (cid_req,) = dict(store.requests()).items()
    assert (
        cid_req[1].url == "http://log.example.cn/d/report?aid=7&dev=x"
        and cid_req[1].body == b'{"imei": "1"}\n'
    )
    assert {c.app for _, c in store.connections()} == {"com.example.app"}


def test_pcapng(tmp_path: Path) -> None:
    path = tmp_path / "cap.pcapng"
    with path.open("wb") as f:
        w = dpkt.pcapng.Writer(f, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, frame in frames(1, session_packets()):
            w.writepkt(frame, ts=ts)
    store = Store()
    s = import_file(path, store)
    assert s.format == "pcap" and s.errors == ()
    assert by_key(store)[("43.156.32.17", 443)].sni == "api.example.cn"  # type: ignore[attr-defined]


def test_pcapdroid_trailer(tmp_path: Path) -> None:
    def trailer(uid: int, name: str) -> bytes:
        return struct.pack("!Ii", 0x01072021, uid) + name.encode()[:20].ljust(20, b"\0") + b"\0\0\0\0"

    packets = []
    for ts, frame in frames(
        1,
        tcp_session(
            PHONE, 40001, "43.156.32.17", 443, T0, [tls_record(client_hello("a.example.cn"))], [b"x"]
        ),
    ):
        packets.append((ts, frame + trailer(10123, "com.example.messenger")))
    for ts, frame in frames(
        1,
        tcp_session(
            PHONE, 40002, "157.240.17.35", 443, T0 + 1, [tls_record(client_hello("b.example.com"))], [b"x"]
        ),
    ):
        packets.append((ts, frame + trailer(10200, "com.other")))
    path = tmp_path / "droid.pcap"
    write_pcap_packets(path, packets)
    store = Store()
    import_file(path, store)
    apps = {c.sni: c.app for _, c in store.connections()}
    assert apps == {
        "a.example.cn": "com.example.messenge",  # 20 bytes: PCAPdroid cuts longer names
        "b.example.com": "com.other",
    }
    # --app names one app (its full name for the cut one); the other app keeps its own (issue 17)
    store2 = Store()
    import_file(path, store2, app="com.example.messenger")
    assert {c.sni: (c.app, c.attribution) for _, c in store2.connections()} == {
        "a.example.cn": ("com.example.messenger", "app-metadata"),
        "b.example.com": ("com.other", "app-metadata"),
    }


def test_mid_connection_capture_guesses_direction(tmp_path: Path) -> None:
    pk = tcp_session(
        PHONE,
        51000,
        "43.156.32.17",
        443,
        T0,
        [tls_record(client_hello("late.example.cn"))],
        [b"y" * 10],
        handshake=False,
    )
    pk.reverse()  # the server's FIN comes first
    path = tmp_path / "mid.pcap"
    write_pcap_packets(path, frames(1, pk))
    store = Store()
    import_file(path, store)
    ((_, c),) = store.connections()
    assert (c.ip, c.port, c.client, c.sni) == ("43.156.32.17", 443, f"{PHONE}:51000", "late.example.cn")


def test_truncated_capture_keeps_packets(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    write_pcap_packets(path, frames(1, session_packets()))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])
    store = Store()
    s = import_file(path, store)
    assert len(s.errors) == 1 and "truncated" in s.errors[0]
    assert by_key(store)[("43.156.32.17", 443)].sni == "api.example.cn"  # type: ignore[attr-defined]


def test_truncated_record_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    write_pcap_packets(path, frames(1, session_packets()))
    path.write_bytes(path.read_bytes() + b"\x01\x02\x03")  # 3 bytes of a 16-byte record header
    s = import_file(path, Store())
    assert any("truncated" in e for e in s.errors)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xd4\xc3\xb2\xa1\x02\x00", "unreadable capture header"),
        (b"\xd4\xc3\xb2\xa1" + struct.pack("<HHiIII", 2, 4, 0, 0, 65535, 147), "unsupported link type 147"),
        (b"\x0a\x0d\x0d\x0a" + b"\xff" * 40, "unreadable capture header"),
        (
            b"\xd4\xc3\xb2\xa1" + struct.pack("<HHiIII", 2, 4, 0, 0, 65535, 1) + b"\x05\x00",
            "truncated before its first packet",
        ),
    ],
)
def test_bad_captures(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(ImportFormatError) as e:
        import_file(path, Store())
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value), str(e.value)


def test_garbage_packets_are_counted_not_fatal(tmp_path: Path) -> None:
    rng = random.Random(3)
    packets = frames(101, session_packets()) + [
        (T0 + 9, bytes([0x45]) + bytes(rng.randrange(256) for _ in range(10)))
    ]
    path = tmp_path / "noise.pcap"
    write_pcap_packets(path, packets, linktype=101)
    s = import_file(path, Store())
    assert s.connections == 7 and any("could not be decoded" in e for e in s.errors)


def test_quic_keys_match_rfc9001_appendix_a() -> None:
    keys = client_initial_keys(bytes.fromhex("8394c8f03e515708"))
    assert keys.key.hex() == "1f369613dd76d5467730efcbe3b1a22d"
    assert keys.iv.hex() == "fa044b2f42a3fd3b46fb255c"
    assert keys.hp.hex() == "9f50449e04a0e810283a1e9933adedd2"
    assert hp_mask(keys.hp, bytes.fromhex("d1b1c98dd7689fb8ec11d242b123dc9b"))[:5].hex() == "437b9aec36"


def test_quic_v2_keys_match_rfc9369_appendix_a() -> None:
    keys = client_initial_keys(bytes.fromhex("8394c8f03e515708"), QUIC_V2)
    assert (keys.key.hex(), keys.iv.hex(), keys.hp.hex()) == (
        "8b1a0bc121284290a29e0971b5cd045d",
        "91f73e2351d8fa91660e909f",
        "45b95e15235d6f45a6b19cbcb0294ba9",
    )


def test_quic_split_client_hello(tmp_path: Path) -> None:
    """Large (post-quantum) ClientHellos span two Initial packets; both use the first DCID's keys."""
    hello = client_hello("split.example.com", alpn=("h3",))
    dcid = b"\x01" * 8
    first = quic_initial("unused", dcid, crypto=hello[:40], pn=0)
    second = quic_initial("unused", dcid, crypto=hello[40:], crypto_offset=40, pn=1)
    assert parse_quic_initial(first) is None or parse_quic_initial(first).sni is None  # type: ignore[union-attr]
    path = tmp_path / "q.pcap"
    write_pcap_packets(
        path,
        frames(
            101,
            [
                (T0, udp_packet(PHONE, 1, "142.250.1.1", 443, first)),
                (T0 + 0.001, udp_packet(PHONE, 1, "142.250.1.1", 443, second)),
            ],
        ),
        linktype=101,
    )
    store = Store()
    import_file(path, store)
    ((_, c),) = store.connections()
    assert (c.protocol, c.sni) == ("quic", "split.example.com")


@pytest.mark.parametrize(
    "sport, dport, client_is_src",
    [
        (40000, 443, True),
        (443, 40000, False),
        (1, 443, True),
        (5353, 53, True),
        (123, 40000, False),
        (50000, 50001, False),
    ],
)
def test_direction_guess(sport: int, dport: int, client_is_src: bool) -> None:
    assert _guess_client_is_src(sport, dport) is client_is_src


def test_quic_damaged_initial_is_not_decrypted() -> None:
    pkt = bytearray(quic_initial("x.example.com", b"\x02" * 8))
    pkt[-5] ^= 0xFF  # breaks the AEAD tag
    assert decrypt_initial(bytes(pkt)) is None
    assert parse_quic_initial(b"\xc0\x00\x00\x00\x01") is None


@pytest.mark.parametrize("cut", [0, 5, 20, 60, 120])
def test_tls_parser_never_raises_on_cut_hellos(cut: int) -> None:
    record = tls_record(client_hello("cut.example.org"))
    result = parse_tls_record(record[: len(record) - cut] if cut else record)
    if cut == 0:
        assert result is not None and result.sni == "cut.example.org"


def test_demo_pcap() -> None:
    store = Store()
    s = import_file(FIXTURES / "captures" / "messenger.pcap", store)
    conns = [c for _, c in store.connections()]
    assert s.errors == () and s.dns > 10
    snis = {c.sni for c in conns if c.sni}
    assert {"api.messenger-example.cn", "googleads.g.doubleclick.net", "graph.facebook.com"} <= snis
    assert any(c.protocol == "quic" for c in conns) and any(c.protocol == "http" for c in conns)
    assert any(c.ip and ":" in c.ip for c in conns)


# ---- found by fuzzing (benchmarks/fuzz_import.py) --------------------------------------------


class _SpyFile(io.BufferedReader):
    """A real file that remembers the largest read asked of it."""

    largest = 0

    def read(self, n: int | None = -1) -> bytes:
        self.largest = max(self.largest, n or 0)
        return super().read(n)


def test_bounded_reader_never_asks_for_more_than_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100_000)
    spy = _SpyFile(io.FileIO(path))
    r = BoundedReader(spy)
    assert r.read(10) == b"x" * 10
    assert r.read(0xFFFFFFFF) == b"x" * 99_990  # same data as an unbounded read …
    assert spy.largest <= 100_000  # … without asking for (and allocating) 4 GiB
    assert r.read(999_999_999_999) == b""
    spy.close()


@pytest.mark.parametrize("pcapng", [False, True], ids=["pcap", "pcapng"])
def test_huge_record_length_is_a_truncation(tmp_path: Path, pcapng: bool) -> None:
    """A record (pcap caplen) or block (pcapng total length) claiming 4 GiB: dpkt asked the file for
    all of it at once, a MemoryError under a memory limit. Now the packets before it are kept."""
    good = session_packets()[:2]
    if pcapng:
        buf = io.BytesIO()
        w = dpkt.pcapng.Writer(buf, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, frame in frames(1, good):
            w.writepkt(frame, ts=ts)
        data = buf.getvalue() + struct.pack("<II", 6, 0xFFFFFFF0) + b"\x00" * 40  # an Enhanced Packet Block
    else:
        path = tmp_path / "good.pcap"
        write_pcap_packets(path, frames(1, good))
        data = path.read_bytes() + struct.pack("<IIII", int(T0), 0, 0xFFFFFFFF, 0xFFFFFFFF) + b"\x45" * 40
    path = tmp_path / "huge.pcap"
    path.write_bytes(data)
    store = Store()
    s = import_file(path, store)
    assert (s.connections, s.dns) == (1, 1)
    assert any("truncated" in e for e in s.errors), s.errors


def test_http_host_that_urlsplit_refuses(tmp_path: Path) -> None:
    """``Host: [::1`` made urlsplit raise ValueError("Invalid IPv6 URL") out of the importer."""
    req = b"POST /p?a=1 HTTP/1.1\r\nHost: [::1\r\nContent-Length: 2\r\n\r\n{}"
    path = tmp_path / "host.pcap"
    write_pcap_packets(
        path, frames(1, tcp_session(PHONE, 40002, "119.29.29.29", 80, T0, [req], [b"HTTP/1.1 204 x\r\n\r\n"]))
    )
    store = Store()
    s = import_file(path, store)
    assert s.connections == 1
    ((cid, c),) = store.connections()
    assert (c.protocol, c.method, c.host) == ("http", "POST", None)
    assert dict(store.requests())[cid].body == b"{}"
