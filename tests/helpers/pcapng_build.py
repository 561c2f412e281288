"""pcapng writers for the tests: blocks with options, interfaces with their own time resolution and
offset, and PCAPdroid's layout (UID-map custom blocks, ``u-<uid>`` packet comments, a Decryption
Secrets Block). Byte layouts follow the pcapng draft (draft-ietf-opsawg-pcapng) and PCAPdroid's
documented custom block (issue 17)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from audit.traffic.importers.pcapng import PcapngReader


def block(kind: int, body: bytes, e: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", kind, n) + body + struct.pack(e + "I", n)


def option(code: int, value: bytes, e: str = "<") -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def end_of_options(e: str = "<") -> bytes:
    return struct.pack(e + "HH", 0, 0)


def shb(e: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def idb(linktype: int, e: str = "<", *, tsresol: int | None = None, tsoffset: int | None = None) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), e)
    if tsoffset is not None:
        opts += option(14, struct.pack(e + "q", tsoffset), e)
    if opts:
        opts += end_of_options(e)
    return block(1, struct.pack(e + "HHI", linktype, 0, 262144) + opts, e)


def epb(iface: int, ticks: int, frame: bytes, e: str = "<", comment: str | None = None) -> bytes:
    body = struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
    body += frame + b"\0" * (-len(frame) % 4)
    if comment is not None:
        body += option(1, comment.encode(), e) + end_of_options(e)
    return block(6, body, e)


def uid_map(uid: int, package: str, name: str, e: str = "<") -> bytes:
    """A PCAPdroid UID-map custom block: PEN 62652, version 1, block type 1."""
    pkg, app = package.encode(), name.encode()
    data = struct.pack(e + "IHBx", 62652, 1, 1) + struct.pack(e + "iBB", uid, len(pkg), len(app)) + pkg + app
    return block(0x00000BAD, data, e)


def dsb(keylog: bytes, e: str = "<") -> bytes:
    """A Decryption Secrets Block holding a TLS key log."""
    return block(0x0A, struct.pack(e + "II", 0x544C534B, len(keylog)) + keylog, e)


@dataclass(frozen=True)
class App:
    uid: int
    package: str
    name: str


def pcapdroid(
    packets: Iterable[tuple[float, bytes, App | None]],
    apps: Sequence[App],
    *,
    linktype: int = 101,
    keylog: bytes | None = None,
) -> bytes:
    """A pcapng in PCAPdroid's layout: one interface (raw IP by default, µs time stamps), a UID map
    block per app before its first packet, a ``u-<uid>`` comment on every packet (``u--1`` when the
    app is unknown), and the key log (if any) in a DSB before the packets."""
    out = [shb(), idb(linktype)]
    if keylog is not None:
        out.append(dsb(keylog))
    mapped: set[int] = set()
    by_uid = {a.uid: a for a in apps}
    for ts, frame, app in packets:
        if app is not None and app.uid not in mapped:
            out.append(uid_map(app.uid, by_uid[app.uid].package, by_uid[app.uid].name))
            mapped.add(app.uid)
        out.append(epb(0, int(round(ts * 1e6)), frame, comment=f"u-{app.uid if app else -1}"))
    return b"".join(out)


def relabel(capture: Path, out: Path, app_of: dict[int, App], keylog: bytes | None = None) -> Path:
    """Rewrite a real (little-endian, one-interface) pcapng in PCAPdroid's layout: each packet gets
    the app ``app_of`` gives its client TCP port (source or destination port of an IPv4 frame)."""
    reader = PcapngReader(capture.open("rb"))
    packets: list[tuple[float, bytes, App | None]] = []
    linktype = 1
    for ts, frame, linktype in reader:
        ip = frame[14:] if linktype == 1 else frame
        ihl = (ip[0] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", ip[ihl : ihl + 4])
        packets.append((ts, frame, app_of.get(sport) or app_of.get(dport)))
    out.write_bytes(
        pcapdroid(
            packets, list({a.uid: a for a in app_of.values()}.values()), linktype=linktype, keylog=keylog
        )
    )
    return out
