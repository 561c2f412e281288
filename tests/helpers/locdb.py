"""A minimal writer of IPFire location databases (libloc format 1) for tests, from the published
layout (see :mod:`audit.enrich.locationdb`): header, AS section, network data, network tree,
country section and string pool. No signatures. Enough for tiny files and for damaged ones."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HEADER = struct.Struct(">QIII10IHH")
HEADER_SIZE = 8 + HEADER.size + 2 * 2048 + 32


@dataclass
class Net:
    cidr: str
    country: str = "US"
    asn: int = 0
    flags: int = 0


@dataclass
class Pool:
    data: bytearray = field(default_factory=lambda: bytearray(b"\0"))

    def add(self, text: str | bytes) -> int:
        raw = text.encode() if isinstance(text, str) else text
        off = len(self.data)
        self.data += raw + b"\0"
        return off


def _key(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int]:
    if net.version == 4:
        return (0xFFFF << 32) | int(net.network_address), net.prefixlen + 96
    return int(net.network_address), net.prefixlen


def build(
    networks: Sequence[Net],
    ases: Mapping[int, str | bytes] = {},  # noqa: B006 - read only
    *,
    created_at: int = 1_700_000_000,
    vendor: str = "Test Vendor",
    description: str = "Test data\nnot for production",
    licence: str = "CC0",
    version: int = 1,
) -> bytes:
    pool = Pool()
    vendor_off, desc_off, lic_off = pool.add(vendor), pool.add(description), pool.add(licence)
    as_section = b"".join(struct.pack(">II", n, pool.add(name)) for n, name in sorted(ases.items()))
    # Trie: nodes as [zero, one, network]; node 0 the root.
    nodes: list[list[int]] = [[0, 0, 0xFFFFFFFF]]
    net_data = b""
    for i, n in enumerate(networks):
        key, plen = _key(ipaddress.ip_network(n.cidr))
        node = 0
        for level in range(plen):
            bit = (key >> (127 - level)) & 1
            if nodes[node][bit] == 0:
                nodes.append([0, 0, 0xFFFFFFFF])
                nodes[node][bit] = len(nodes) - 1
            node = nodes[node][bit]
        nodes[node][2] = i
        net_data += struct.pack(">2s2xIH2x", n.country.encode(), n.asn, n.flags)
    tree = b"".join(struct.pack(">III", *n) for n in nodes)
    countries = struct.pack(">2s2sI", b"US", b"NA", pool.add("United States"))
    sections = [as_section, net_data, tree, countries, bytes(pool.data)]
    offsets, off = [], HEADER_SIZE
    for s in sections:
        offsets += [off, len(s)]
        off += len(s)
    header = HEADER.pack(created_at, vendor_off, desc_off, lic_off, *offsets, 0, 0)
    head = b"LOCDBXX" + bytes([version]) + header
    head += b"\0" * (HEADER_SIZE - len(head))
    return head + b"".join(sections)


def write(path: Path, networks: Sequence[Net], ases: Mapping[int, str | bytes] = {}, **kw: object) -> Path:  # noqa: B006
    path.write_bytes(build(networks, ases, **kw))  # type: ignore[arg-type]
    return path


def section_offset(data: bytes, index: int) -> tuple[int, int]:
    """(offset, length) of section ``index`` (0 AS, 1 networks, 2 tree, 3 countries, 4 pool)."""
    fields = HEADER.unpack_from(data, 8)
    return fields[4 + 2 * index], fields[5 + 2 * index]


def patch_header(data: bytes, field_index: int, value: int) -> bytes:
    """``data`` with header field ``field_index`` (of :data:`HEADER`) set to ``value``."""
    fields = list(HEADER.unpack_from(data, 8))
    fields[field_index] = value
    return data[:8] + HEADER.pack(*fields) + data[8 + HEADER.size :]
