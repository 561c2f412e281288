"""Reading APKs and bundles as zip archives, safely.

Nothing is ever extracted to disk: entries are decompressed into memory one at a time, with the size
limits enforced while streaming (the sizes in the zip headers are not trusted), so a zip bomb costs at most
one limit's worth of CPU and memory. Unsafe entry names (``../``, absolute paths) are skipped and noted.
"""

from __future__ import annotations

import io
import logging
import lzma
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from audit.errors import ArchiveError

__all__ = ["Archive", "Limits", "ZIP_MAGICS", "is_unsafe_name"]

log = logging.getLogger(__name__)

MIB = 1 << 20
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_CHUNK = 64 * 1024  # small reads keep the compressed input consumed per step small too
RECOVER_MAX = 1024 * MIB
"""Largest damaged archive whose entries we try to recover from local headers (it is read into memory)."""
_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # local file header, APPNOTE 4.3.7


@dataclass(frozen=True)
class Limits:
    """Bounds on what one archive may cost. Defaults suit real apps (the largest DEX files are ~20 MiB)."""

    dex: int = 512 * MIB
    """Decompressed size of one DEX (or inner APK of a bundle)."""
    entry: int = 64 * MIB
    """Decompressed size of any other entry."""
    total: int = 2048 * MIB
    """Decompressed bytes read from one archive, all entries together."""
    ratio: int = 200
    """Decompressed/compressed ratio of one entry, checked once it exceeds :attr:`ratio_after` bytes."""
    ratio_after: int = 8 * MIB
    entries: int = 200_000
    """Number of entries in the central directory."""


def is_unsafe_name(name: str) -> bool:
    """Absolute paths, drive letters and any ``..`` component: never followed, even in memory."""
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        return True
    return ".." in PurePosixPath(n).parts


@dataclass
class Archive:
    """A zip opened for safe, bounded reading.

    ``label`` (the input path) starts every fatal error; ``notes`` collects non-fatal problems (unsafe
    names, unreadable entries), each naming the entry as ``prefix + name``.
    """

    label: str
    zf: zipfile.ZipFile
    prefix: str = ""
    """Names entries in notes: empty for the input itself, ``inner.apk!`` for an APK inside a bundle."""
    limits: Limits = field(default_factory=Limits)
    size: int = 0
    """Size of the archive itself, the upper bound of any entry's compressed size."""
    notes: list[str] = field(default_factory=list)
    _read_total: int = 0
    _infos: list[zipfile.ZipInfo] | None = None
    cut: frozenset[str] = frozenset()
    """Entries of a recovered archive whose data runs past its end: reading them is a note."""

    @classmethod
    def open(
        cls,
        source: str | os.PathLike[str] | bytes,
        label: str,
        limits: Limits | None = None,
        prefix: str = "",
    ) -> Archive:
        """Open a path or in-memory bytes; raises :class:`ArchiveError` if it is not a readable zip."""
        limits = limits or Limits()
        notes: list[str] = []
        cut: frozenset[str] = frozenset()
        try:
            if isinstance(source, bytes):
                size = len(source)
                head = source[:4]
                zf = zipfile.ZipFile(io.BytesIO(source))
            else:
                size = Path(source).stat().st_size
                with open(source, "rb") as f:
                    head = f.read(4)
                zf = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError) as e:
            # NotImplementedError: a "version needed to extract" above 6.3, which Android ignores
            where = f"{label}: {prefix}" if prefix else f"{label}: "
            if head not in ZIP_MAGICS:
                raise ArchiveError(f"{where}not a zip archive") from e
            recovered = _recover(source, size, limits)
            if recovered is None:
                raise ArchiveError(
                    f"{where}truncated or corrupt zip archive (no readable central directory)"
                ) from e
            zf, count, cut = recovered
            if isinstance(e, UnicodeDecodeError):
                notes.append(
                    f"{prefix}central directory has an entry name flagged UTF-8 that is not:"
                    f" {count} entries read from local headers instead"
                )
            else:
                notes.append(
                    f"{prefix}truncated or corrupt zip archive (no readable central directory):"
                    f" {count} entries recovered from local headers, the rest is lost"
                )
        archive = cls(label, zf, prefix, limits, size, notes, cut=cut)
        if len(zf.infolist()) > limits.entries:
            zf.close()
            raise ArchiveError(
                f"{label}: {len(zf.infolist())} entries, more than the {limits.entries} allowed"
            )
        return archive

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.zf.close()

    def entries(self) -> list[zipfile.ZipInfo]:
        """Safe file entries (directories and unsafe names left out; the latter noted once)."""
        if self._infos is None:
            infos = []
            for info in self.zf.infolist():
                if not info.filename:  # a zero name length; ZipInfo.is_dir() would fail on it
                    self.notes.append(f"{self.prefix}entry with an empty name skipped")
                    continue
                if info.is_dir():
                    continue
                if is_unsafe_name(info.filename):
                    self.notes.append(f"{self.prefix}unsafe entry name {info.filename!r} skipped")
                    continue
                infos.append(info)
            self._infos = infos
        return self._infos

    def names(self) -> list[str]:
        return [i.filename for i in self.entries()]

    def find(self, name: str) -> zipfile.ZipInfo | None:
        for info in self.entries():
            if info.filename == name:
                return info
        return None

    def read(self, info: zipfile.ZipInfo, limit: int | None = None) -> bytes:
        """Decompress one entry, enforcing the limits while streaming.

        Raises :class:`ArchiveError` for a zip bomb (fatal for the whole archive) and :class:`EntryError`
        for an entry that cannot be read (corrupt data, unsupported method): a note, not fatal."""
        limit = self.limits.entry if limit is None else limit
        if info.filename in self.cut:  # its bytes would run into the synthetic central directory
            raise EntryError(f"{self.prefix}{info.filename}: cannot be read (data cut off)")
        # Android ignores the "encrypted" flag bit; packers set it to make zip tools refuse the APK.
        info.flag_bits &= ~0x1
        declared = max(1, min(info.compress_size, self.size))
        if info.header_offset < 0:  # zipfile shifts offsets by the EOCD's central directory offset
            raise EntryError(
                f"{self.prefix}{info.filename}: cannot be read (local header offset before the file)"
            )
        out = bytearray()
        try:
            with self.zf.open(info) as f:
                while True:
                    chunk = f.read(_CHUNK)
                    if not chunk:
                        break
                    out += chunk
                    self._read_total += len(chunk)
                    self._check(info, len(out), _consumed(f, declared), limit)
        except (
            zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError, RuntimeError, ValueError,
            OSError,
        ) as e:  # fmt: skip
            # OSError: bad bzip2 data ("Invalid data stream")
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            reason = reason or ("data cut off" if isinstance(e, EOFError) else type(e).__name__)
            raise EntryError(f"{self.prefix}{info.filename}: cannot be read ({reason})") from e
        return bytes(out)

    def _check(self, info: zipfile.ZipInfo, size: int, compressed: int, limit: int) -> None:
        where = f"{self.label}: {self.prefix}{info.filename}"
        if size > limit:
            raise ArchiveError(f"{where} decompresses to more than {limit // MIB} MiB (zip bomb?)")
        if size > self.limits.ratio_after and size / compressed > self.limits.ratio:
            raise ArchiveError(f"{where} has a compression ratio over {self.limits.ratio}:1 (zip bomb?)")
        if self._read_total > self.limits.total:
            raise ArchiveError(
                f"{self.label}: more than {self.limits.total // MIB} MiB decompressed in total (zip bomb?)"
            )


def _consumed(f: object, declared: int) -> int:
    """Compressed bytes actually decompressed so far, so that the ratio of output to *consumed* input
    catches a bomb within its first MiBs. CPython's ZipExtFile (3.11 to 3.13) keeps the count still to
    read and the decompressor's unconsumed tail; without them, fall back to the declared size."""
    left = getattr(f, "_compress_left", None)
    tail = getattr(getattr(f, "_decompressor", None), "unconsumed_tail", b"")
    if not isinstance(left, int) or not isinstance(tail, bytes) or not 0 <= left <= declared:
        return declared
    return max(1, declared - left - len(tail))


def _recover(
    source: str | os.PathLike[str] | bytes, size: int, limits: Limits
) -> tuple[zipfile.ZipFile, int, frozenset[str]] | None:
    """Rebuild a central directory from the local file headers of a truncated or damaged zip.

    A cut-off download or a partly overwritten APK still holds whole entries before the damage; with a
    synthetic central directory appended, zipfile reads them with every limit still enforced. Entries
    whose data runs past the end are kept with their declared size and named in the returned set: reading
    them is a note (``data cut off``)."""
    if size > RECOVER_MAX:
        return None
    if isinstance(source, bytes):
        data = source
    else:
        with open(source, "rb") as f:
            data = f.read(size)  # not read(RECOVER_MAX): that allocates the whole buffer up front
    central = bytearray()
    count = 0
    cut: set[str] = set()
    pos = data.find(b"PK\x03\x04")
    while 0 <= pos and pos + _LOCAL.size <= len(data) and count < limits.entries:
        # the "version needed" is not copied: Android ignores it, zipfile refuses anything above 6.3
        (_sig, _version, flags, method, mtime, mdate, crc, csize, usize, nlen, xlen) = _LOCAL.unpack_from(
            data, pos
        )
        start = pos + _LOCAL.size + nlen + xlen
        if start > len(data):
            break
        name = data[pos + _LOCAL.size : pos + _LOCAL.size + nlen]
        if flags & 0x800 and not _is_utf8(name):
            # flagged UTF-8 but not: zipfile refuses the whole directory over one such name, Android
            # does not check; read as cp437 here, the entry itself then fails alone (a note)
            flags &= ~0x800
        nxt = data.find(b"PK\x03\x04", start if flags & 0x08 or not csize else start + csize)
        cut_off = False
        if flags & 0x08 or not csize:
            # Sizes follow the data in a descriptor (APPNOTE 4.3.9): the entry ends where the next
            # header begins; a cut-off last entry gets the largest size allowed and fails when read.
            end = nxt if nxt >= 0 else len(data)
            if end - 16 >= start and data[end - 16 : end - 12] == b"PK\x07\x08":
                crc, csize, usize = struct.unpack_from("<III", data, end - 12)
            elif nxt >= 0 and end - 12 >= start:
                crc, csize, usize = struct.unpack_from("<III", data, end - 12)
            else:
                csize, usize = end - start, limits.dex
                cut_off = True
        else:
            cut_off = start + csize > len(data)
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags & ~0x08, method, mtime, mdate, crc,
            csize, usize, nlen, 0, 0, 0, 0, 0, pos,
        )  # fmt: skip
        central += name
        count += 1
        if cut_off:
            cut.add(name.decode("utf-8" if flags & 0x800 else "cp437"))
        pos = nxt
    if not count:
        return None
    cd_offset = len(data)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(central), cd_offset, 0)
    try:
        return zipfile.ZipFile(io.BytesIO(bytes(data) + bytes(central) + eocd)), count, frozenset(cut)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, NotImplementedError):
        return None


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class EntryError(ValueError):
    """One entry of an archive cannot be read (a note, not fatal)."""
