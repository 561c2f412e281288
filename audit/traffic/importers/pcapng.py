"""A pcapng block reader (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html).

dpkt's reader honours only the first Interface Description Block: packets of a second interface
(another link type) were decoded as if they were the first's, Simple Packet Blocks and later
sections were skipped without a word, and a swapped byte-order magic gave "unreadable capture
header ()" (issue 15). This one yields every packet with its own interface's link type and time
resolution, reads every section in its own byte order, and says what it could not read:
:attr:`PcapngReader.notes` counts unknown blocks, packets of undescribed interfaces and a damaged
block where reading stopped (:attr:`damaged`).

Time stamps: each Interface Description Block's ``if_tsresol`` (10^-n or, high bit set, 2^-n units)
and ``if_tsoffset`` (seconds added) apply to the packets of that interface only (issue 12: dpkt
applied the first interface's resolution to all, giving dates in the year 56326).

What PCAPdroid (https://github.com/emanuele-f/PCAPdroid) puts in its pcapng is kept too (issue 17):
its custom blocks (type 0x00000BAD, Private Enterprise Number 62652; custom data: version uint16 = 1,
block type uint8, one reserved byte; block type 1 is a UID map: int32 uid, uint8 package name
length, uint8 app name length, the package name, the app name) fill :attr:`PcapngReader.apps`, and
each Enhanced Packet Block's comment ``u-<uid>`` gives :attr:`PcapngReader.uid` for the packet just
yielded. Decryption Secrets Blocks of TLS key logs (secrets type 0x544c534b) are collected in
:attr:`PcapngReader.tls_secrets`: they are not applied here (tshark does that), only counted.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

SHB, IDB, PB, SPB, NRB, ISB, EPB, DSB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6, 0x0A
CUSTOM, CUSTOM_NOCOPY = 0x00000BAD, 0x40000BAD
#: Blocks with nothing for this tool (names, statistics, journal); DSB and custom blocks are read.
_IGNORED = {NRB, ISB, 9}
#: PCAPdroid's Private Enterprise Number, custom block version and UID-map block type.
PCAPDROID_PEN, _PCAPDROID_VERSION, _PCAPDROID_UID_MAP = 62652, 1, 1
#: Decryption Secrets Block secrets type of an NSS key log ("TLSK").
SECRETS_TLS_KEYLOG = 0x544C534B
_OPT_COMMENT = 1
_MAGIC_LE, _MAGIC_BE = b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"
_OPT_TSRESOL, _OPT_TSOFFSET = 9, 14
MAX_BLOCK = 256 << 20


class _File(Protocol):
    def read(self, n: int = -1) -> bytes: ...


class PcapngError(ValueError):
    """The file does not start with a readable section header."""


@dataclass(frozen=True)
class CaptureApp:
    """One app of a PCAPdroid UID map."""

    uid: int
    package: str
    name: str
    """The app's display name ("" when PCAPdroid gave none)."""


@dataclass
class Interface:
    linktype: int
    divisor: float = 1e6
    offset: int = 0
    snaplen: int = 0


class PcapngReader:
    """Iterate ``(timestamp, frame, link type)`` over every packet of every section."""

    def __init__(self, f: _File) -> None:
        self.f = f
        self.pos = 0
        self.little = True
        self.interfaces: list[Interface] = []
        self.notes: list[str] = []
        self.damaged = False
        """Reading stopped at a damaged or cut block (the packets before it were read)."""
        self._unknown: dict[int, int] = {}
        self._orphans = 0
        self._last_ts = 0.0
        self.apps: dict[int, CaptureApp] = {}
        """PCAPdroid UID map: uid → app, from the custom blocks read so far."""
        self.uid: int | None = None
        """The ``u-<uid>`` comment of the packet last yielded (None: no such comment)."""
        self.tls_secrets: list[bytes] = []
        """The TLS key logs of the Decryption Secrets Blocks read so far (NSS key log text)."""
        head = self.f.read(12)
        if len(head) < 12 or head[:4] != b"\x0a\x0d\x0d\x0a":
            raise PcapngError("not a pcapng section header")
        self._first = head

    @property
    def linktypes(self) -> list[int]:
        return [i.linktype for i in self.interfaces]

    def _read(self, n: int) -> bytes:
        data = self.f.read(n)
        self.pos += len(data)
        return data

    def _section(self, head: bytes, at: int) -> None:
        """Start a section from its first 12 bytes (type, length, byte-order magic)."""
        magic = head[8:12]
        if magic == _MAGIC_LE:
            self.little = True
        elif magic == _MAGIC_BE:
            self.little = False
        else:
            what = "swapped or damaged" if sorted(magic) == sorted(_MAGIC_LE) else "damaged"
            raise PcapngError(
                f"section header at byte {at} has byte-order magic {magic.hex()} ({what}; "
                f"expected {_MAGIC_LE.hex()} or {_MAGIC_BE.hex()})"
            )
        here, other = ("<", ">") if self.little else (">", "<")
        if not _plausible_shb(head, here) and _plausible_shb(head, other):
            order = "little" if self.little else "big"
            raise PcapngError(
                f"section header at byte {at}: its byte-order magic {magic.hex()} says {order}-endian, but its "
                "length only makes sense in the other byte order (a swapped or damaged byte-order magic)"
            )
        self.interfaces = []  # interface ids are per section

    def __iter__(self) -> Iterator[tuple[float, bytes, int]]:
        head, self.pos, at = self._first, 12, 0
        self._section(head, 0)
        while True:
            e = "<" if self.little else ">"
            kind, length = struct.unpack(e + "II", head[:8])
            if length < 12 or length % 4 or length > MAX_BLOCK or length < len(head) + 4:
                self._stop(at, f"length {length}")
                return
            rest = self._read(length - len(head))
            if len(rest) < length - len(head):
                self._stop(at, "cut short")
                return
            block = head + rest
            if struct.unpack(e + "I", block[-4:])[0] != length:
                self._stop(at, "its two lengths differ")
                return
            packet = self._block(kind, block[8:-4], e)
            if packet is not None:
                yield packet
            at = self.pos
            head = self._read(8)
            if not head:
                break
            if len(head) < 8:
                self._stop(at, "cut short")
                return
            if head[:4] == b"\x0a\x0d\x0d\x0a":  # a new section, maybe in the other byte order
                head += self._read(4)
                try:
                    if len(head) < 12:
                        raise PcapngError("cut short")
                    self._section(head, at)
                except PcapngError as err:
                    self._stop(at, str(err))
                    return
        self._finish()

    def _block(self, kind: int, body: bytes, e: str) -> tuple[float, bytes, int] | None:
        if kind == SHB:
            return None  # handled where it starts
        if kind == IDB:
            if len(body) < 8:
                self._unknown[kind] = self._unknown.get(kind, 0) + 1
                return None
            linktype, _, snaplen = struct.unpack(e + "HHI", body[:8])
            iface = Interface(linktype, snaplen=snaplen)
            for code, value in _options(body[8:], e):
                if code == _OPT_TSRESOL and value:
                    exp = value[0] & 0x7F
                    iface.divisor = float(2**exp if value[0] & 0x80 else 10**exp)
                elif code == _OPT_TSOFFSET and len(value) == 8:
                    iface.offset = struct.unpack(e + "q", value)[0]
            self.interfaces.append(iface)
            return None
        if kind == EPB:
            if len(body) < 20:
                return self._orphan()
            iid, high, low, caplen, _ = struct.unpack(e + "IIIII", body[:20])
            end = 20 + caplen + (-caplen % 4)
            self.uid = _uid_comment(body[end:], e) if len(body) > end else None
            return self._packet(iid, (high << 32) | low, body[20 : 20 + caplen])
        if kind in (CUSTOM, CUSTOM_NOCOPY):
            app = _pcapdroid_app(body, e)
            if app is not None:
                self.apps[app.uid] = app
            return None
        if kind == DSB:
            if len(body) >= 8:
                secrets_type, length = struct.unpack(e + "II", body[:8])
                if secrets_type == SECRETS_TLS_KEYLOG:
                    self.tls_secrets.append(body[8 : 8 + length])
            return None
        if kind == PB:
            self.uid = None
            if len(body) < 20:
                return self._orphan()
            iid, _, high, low, caplen, _ = struct.unpack(e + "HHIIII", body[:20])
            return self._packet(iid, (high << 32) | low, body[20 : 20 + caplen])
        if kind == SPB:
            if len(body) < 4 or not self.interfaces:
                return self._orphan()
            (orig,) = struct.unpack(e + "I", body[:4])
            self.uid = None
            snap = self.interfaces[0].snaplen or orig
            # No time stamp in a Simple Packet Block: the previous packet's time stands in.
            return self._last_ts, body[4 : 4 + min(orig, snap)], self.interfaces[0].linktype
        if kind not in _IGNORED:
            self._unknown[kind] = self._unknown.get(kind, 0) + 1
        return None

    def _packet(self, iid: int, ticks: int, frame: bytes) -> tuple[float, bytes, int] | None:
        if iid >= len(self.interfaces):
            return self._orphan()
        iface = self.interfaces[iid]
        ts = iface.offset + ticks / iface.divisor
        self._last_ts = ts
        return ts, frame, iface.linktype

    def _orphan(self) -> tuple[float, bytes, int] | None:
        """Count a packet block that cannot be read (no interface, too short): no packet."""
        self._orphans += 1
        return None

    def _stop(self, at: int, why: str) -> None:
        self.damaged = True
        self.notes.append(
            f"capture truncated or damaged: unreadable block at byte {at} ({why}); the packets before it were imported"
        )
        self._finish()

    def _finish(self) -> None:
        for kind, n in sorted(self._unknown.items()):
            self.notes.append(f"{n} block(s) of unknown type 0x{kind:08x} skipped")
        if self._orphans:
            self.notes.append(
                f"{self._orphans} packet block(s) without a described interface (or too short) skipped"
            )
        self._unknown, self._orphans = {}, 0


def _plausible_shb(head: bytes, e: str) -> bool:
    (length,) = struct.unpack(e + "I", head[4:8])
    return 28 <= length <= MAX_BLOCK and length % 4 == 0


def _options(data: bytes, e: str) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + 4 <= len(data):
        code, length = struct.unpack(e + "HH", data[pos : pos + 4])
        if code == 0:
            return
        yield code, data[pos + 4 : pos + 4 + length]
        pos += 4 + (length + 3) // 4 * 4


def _uid_comment(options: bytes, e: str) -> int | None:
    """The uid of PCAPdroid's ``u-<uid>`` packet comment among an EPB's options."""
    for code, value in _options(options, e):
        if code == _OPT_COMMENT and value.startswith(b"u-"):
            try:
                return int(value[2:].rstrip(b"\0").decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                return None
    return None


def _pcapdroid_app(body: bytes, e: str) -> CaptureApp | None:
    """The app of a PCAPdroid UID-map custom block (``body`` after the block header), else None."""
    if len(body) < 14:
        return None
    pen, version, block_type = struct.unpack(e + "IHB", body[:7])
    if pen != PCAPDROID_PEN or version != _PCAPDROID_VERSION or block_type != _PCAPDROID_UID_MAP:
        return None
    uid, package_len, name_len = struct.unpack(e + "iBB", body[8:14])
    package = body[14 : 14 + package_len]
    name = body[14 + package_len : 14 + package_len + name_len]
    if len(package) < package_len or not package:
        return None
    return CaptureApp(uid, package.decode("utf-8", "replace"), name.decode("utf-8", "replace"))


def has_tls_secrets(f: BinaryIO, limit: int = 1 << 22) -> bool:
    """Whether a pcapng holds a Decryption Secrets Block with a TLS key log, from its block headers
    alone (seeking over the rest; at most ``limit`` blocks). A damaged block ends the walk: the
    full read reports it."""
    pos, e = 0, "<"
    for _ in range(limit):
        f.seek(pos)
        head = f.read(12)
        if len(head) < 12:
            return False
        if head[:4] == b"\x0a\x0d\x0d\x0a":
            e = ">" if head[8:12] == _MAGIC_BE else "<"
        kind, length = struct.unpack(e + "II", head[:8])
        if kind == DSB and struct.unpack(e + "I", head[8:12])[0] == SECRETS_TLS_KEYLOG:
            return True
        if length < 12 or length % 4:
            return False
        pos += length
    return False
