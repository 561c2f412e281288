"""A minimal MaxMind DB (.mmdb) writer for tests, written from the format specification
(https://maxmind.github.io/MaxMind-DB/): an IPv6 binary search tree with 32-bit records (IPv4
networks under ``::/96``), a data section and the metadata map.

Enough to build tiny GeoLite2-City/Country/ASN-shaped files; not a general-purpose writer.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


def _ctrl(type_id: int, size: int) -> bytes:
    if size < 29:
        head, extra = size, b""
    elif size < 29 + 256:
        head, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        head, extra = 30, (size - 285).to_bytes(2, "big")
    else:
        head, extra = 31, (size - 65821).to_bytes(3, "big")
    if type_id <= 7:
        return bytes([(type_id << 5) | head]) + extra
    return bytes([head, type_id - 7]) + extra


class Uint(int):
    """An unsigned int written with an explicit type (libmaxminddb checks the metadata's types)."""

    type_id = 6

    def __new__(cls, value: int, type_id: int = 6) -> Uint:
        obj = super().__new__(cls, value)
        obj.type_id = type_id
        return obj


def encode(value: Any) -> bytes:
    """Encode one value in the MMDB data-section format."""
    if isinstance(value, Uint):
        raw = int(value).to_bytes((int(value).bit_length() + 7) // 8, "big") if value else b""
        return _ctrl(value.type_id, len(raw)) + raw
    if isinstance(value, bool):
        return _ctrl(14, int(value))
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _ctrl(2, len(raw)) + raw
    if isinstance(value, bytes):
        return _ctrl(4, len(value)) + value
    if isinstance(value, float):
        return _ctrl(3, 8) + struct.pack(">d", value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("negative ints are not needed here")
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
        type_id = 5 if value < 1 << 16 else 6 if value < 1 << 32 else 9
        return _ctrl(type_id, len(raw)) + raw
    if isinstance(value, Mapping):
        return _ctrl(7, len(value)) + b"".join(encode(str(k)) + encode(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return _ctrl(11, len(value)) + b"".join(encode(v) for v in value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _bits(network: str) -> list[int]:
    net = ipaddress.ip_network(network, strict=False)
    if net.version == 4:
        value, prefix = int(net.network_address), 96 + net.prefixlen
    else:
        value, prefix = int(net.network_address), net.prefixlen
    return [(value >> (127 - i)) & 1 for i in range(prefix)]


def build_mmdb(
    records: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    database_type: str = "GeoLite2-City",
    build_epoch: int = 1718668800,  # 2024-06-18
) -> bytes:
    """Bytes of an .mmdb file mapping each network (``"8.8.8.0/24"``, ``"2001:db8::/32"``) to its
    record. Later, more specific networks may be nested inside earlier, larger ones."""
    # Tree nodes as [left, right]; an entry is ("node", i), ("data", j) or None (no data).
    nodes: list[list[tuple[str, int] | None]] = [[None, None]]
    data: list[bytes] = []
    for network, record in records:
        data.append(encode(dict(record)))
        leaf: tuple[str, int] = ("data", len(data) - 1)
        bits = _bits(network)
        node = 0
        for depth, bit in enumerate(bits):
            if depth == len(bits) - 1:
                nodes[node][bit] = leaf
                break
            entry = nodes[node][bit]
            if entry is None or entry[0] == "data":
                nodes.append([entry, entry])  # split: a larger network's data covers both halves
                entry = ("node", len(nodes) - 1)
                nodes[node][bit] = entry
            node = entry[1]
    offsets, pos = [], 0
    for blob in data:
        offsets.append(pos)
        pos += len(blob)
    n = len(nodes)

    def record_value(entry: tuple[str, int] | None) -> int:
        if entry is None:
            return n
        if entry[0] == "node":
            return entry[1]
        return n + 16 + offsets[entry[1]]

    tree = b"".join(struct.pack(">II", record_value(left), record_value(right)) for left, right in nodes)
    metadata = {
        "binary_format_major_version": Uint(2, 5),
        "binary_format_minor_version": Uint(0, 5),
        "build_epoch": Uint(build_epoch, 9),
        "database_type": database_type,
        "description": {"en": "dataflow-audit test database"},
        "ip_version": Uint(6, 5),
        "languages": ["en"],
        "node_count": Uint(n, 6),
        "record_size": Uint(32, 5),
    }
    return tree + b"\x00" * 16 + b"".join(data) + METADATA_MARKER + encode(metadata)


def write_mmdb(path: Path, records: Sequence[tuple[str, Mapping[str, Any]]], **kw: Any) -> Path:
    path.write_bytes(build_mmdb(records, **kw))
    return path


def city(iso: str, name: str | None = None) -> dict[str, Any]:
    """A GeoLite2-City-shaped record."""
    rec: dict[str, Any] = {"country": {"iso_code": iso, "names": {"en": iso}}}
    if name:
        rec["city"] = {"names": {"en": name}}
    return rec


def asn(number: int, org: str) -> dict[str, Any]:
    """A GeoLite2-ASN-shaped record."""
    return {"autonomous_system_number": number, "autonomous_system_organization": org}
