"""Archives inside an app's assets: ``.tar``, ``.tar.gz``/``.tgz``, ``.gz`` and ``.zip`` files, opened in
memory within bounds.

Apps ship code and data packed: python-for-android puts the whole Python app (its modules, templates
and default data) into ``assets/private.tar`` (a gzip-compressed tar), game engines and hybrid
frameworks ship zipped web bundles. The servers named inside are the app's as much as those of a
plain asset, so the scanner reads the members of such an archive like assets of their own
(``assets/private.tar!app/db.pyc``).

Bounds, because the archive comes from an app under suspicion: :data:`MAX_DEPTH` levels (a tar in a
gzip is two), :data:`MAX_MEMBERS` members, and ``budget`` bytes decompressed (by gzip or zip: a tar's
members are slices of bytes already counted) for all the levels of one asset together, checked while
decompressing. What is cut off is said in a note; nothing here raises.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from audit.errors import ArchiveError
from audit.static.archive import Archive, EntryError, Limits

__all__ = ["MAX_DEPTH", "MAX_MEMBERS", "Member", "Unpacked", "container_kind", "packed", "unpack"]

MAX_DEPTH = 4
"""Archive levels opened inside one asset (``x.tar.gz`` is two: the gzip, then the tar)."""
MAX_MEMBERS = 20_000
"""Members read from one asset, all levels together."""


@dataclass(frozen=True)
class Member:
    """One file of an archive: its path (the asset, then each level's member, joined by ``!``) and its
    bytes."""

    name: str
    data: bytes
    type_name: str
    """The name its type is judged by: a gzip's content is named like the file without ``.gz``."""


@dataclass
class Unpacked:
    """What :func:`unpack` found in one asset: the members (lazily) and the notes of what was cut off."""

    notes: list[str] = field(default_factory=list)
    """Problems, each naming the asset and the member: a bomb cut off, a damaged archive."""
    not_read: list[str] = field(default_factory=list)
    """Parts left out on purpose, each with why (a Python build environment)."""
    _used: int = 0
    _members: int = 0


def container_kind(data: bytes) -> str | None:
    """``gzip``, ``tar`` or ``zip`` from the first bytes of ``data``, or None."""
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[:4] == b"PK\x03\x04":
        return "zip"
    if len(data) >= 512 and data[257:262] == b"ustar":
        return "tar"
    return None


def packed(data: bytes) -> bool:
    """``data`` is a gzip or a tar: opened as an archive whatever its name (python-for-android's
    ``private.tar`` is a gzip, its ``libpybundle.so`` a gzip tar). A zip is opened by name only: an
    APK, a jar or an AAR is a zip too."""
    return container_kind(data) in ("gzip", "tar")


def unpack(data: bytes, name: str, budget: int, state: Unpacked | None = None) -> Iterator[Member]:
    """The files inside the archive ``data`` (the asset ``name``), archives inside it opened in turn,
    until :data:`MAX_DEPTH`, :data:`MAX_MEMBERS` or ``budget`` decompressed bytes; ``state.notes``
    says what was left. A member that is no archive is yielded as it is."""
    state = state if state is not None else Unpacked()
    yield from _walk(data, name, budget, state, depth=1)


def _walk(data: bytes, name: str, budget: int, state: Unpacked, depth: int) -> Iterator[Member]:
    kind = container_kind(data)
    if kind is None:
        return
    if depth > MAX_DEPTH:
        state.notes.append(f"{name}: archive nested more than {MAX_DEPTH} levels deep; not opened")
        return
    for member in _members(kind, data, name, budget, state):
        if _opens(member):
            yield from _walk(member.data, member.name, budget, state, depth + 1)
        else:
            yield member


def _opens(member: Member) -> bool:
    """Open a member as an archive in turn: tar and gzip by their bytes (:func:`packed`), zip only by
    name."""
    return packed(member.data) or (
        member.type_name.lower().endswith(".zip") and container_kind(member.data) == "zip"
    )


def _members(kind: str, data: bytes, name: str, budget: int, state: Unpacked) -> Iterator[Member]:
    if kind == "gzip":
        body = _gunzip(data, name, budget, state)
        if body is not None:
            lower = name.lower()
            bare = (
                name[:-3] if lower.endswith(".gz") else name[:-4] + ".tar" if lower.endswith(".tgz") else name
            )
            yield Member(name, body, bare)  # a gzip holds one file: it keeps the archive's name
    elif kind == "tar":
        yield from _tar_members(data, name, budget, state)
    else:
        yield from _zip_members(data, name, budget, state)


def _take(state: Unpacked, name: str) -> bool:
    """Count one member; False (with a note) once :data:`MAX_MEMBERS` are read. Their bytes are
    counted where they are decompressed (:func:`_gunzip`, :func:`_zip_members`)."""
    if state._members >= MAX_MEMBERS:
        state.notes.append(f"{name}: more than {MAX_MEMBERS:,} files inside; the rest not read")
        return False
    state._members += 1
    return True


def _over_budget(state: Unpacked, name: str, budget: int, rest: str) -> None:
    state.notes.append(f"{name}: more than {budget >> 20} MiB decompressed inside (zip bomb?); {rest}")


def _gunzip(data: bytes, name: str, budget: int, state: Unpacked) -> bytes | None:
    """The decompressed gzip stream, stopped one byte past the budget (one call with a bound on its
    output: a bomb never costs more than the budget, and the result is not copied)."""
    room = budget - state._used
    try:
        out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, room + 1)
    except zlib.error as e:
        state.notes.append(f"{name}: damaged gzip data ({e}); not read")
        return None
    if len(out) > room:
        _over_budget(state, name, budget, "not read")
        return None
    state._used += len(out)
    return out


def _build_environments(names: list[str], name: str, state: Unpacked) -> tuple[str, ...]:
    """Folders of Python virtual environments (a ``pyvenv.cfg`` at their root) among ``names``: a
    developer's build environment packed by mistake (pip, setuptools and their vendored libraries),
    which the app's interpreter never imports. They are not read; ``state.not_read`` says so."""
    roots = tuple(sorted({n[: -len("pyvenv.cfg")] for n in names if n.rpartition("/")[2] == "pyvenv.cfg"}))
    for root in roots:
        state.not_read.append(
            f"{name}!{root or './'}: a Python virtual environment (pyvenv.cfg), not read: a build "
            "environment packed with the app, not code it imports"
        )
    return roots


def _tar_members(data: bytes, name: str, budget: int, state: Unpacked) -> Iterator[Member]:
    try:
        # names that are not UTF-8 get U+FFFD, not lone surrogates no UTF-8 output can hold
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:", encoding="utf-8", errors="replace")
        infos = tar.getmembers()
        skip = _build_environments([i.name.removeprefix("./") for i in infos], name, state)
        for info in infos:
            if not info.isfile() or (skip and info.name.removeprefix("./").startswith(skip)):
                continue
            if not _take(state, name):  # its bytes are the tar's own: counted already
                return
            f = tar.extractfile(info)
            if f is not None:
                inner = f"{name}!{info.name.removeprefix('./')}"
                yield Member(inner, f.read(), inner)
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        state.notes.append(f"{name}: damaged tar archive ({e}); the rest not read")


def _zip_members(data: bytes, name: str, budget: int, state: Unpacked) -> Iterator[Member]:
    """The members of a zip asset, read by :class:`audit.static.archive.Archive` (bounded while
    decompressing, unsafe names skipped, a cut archive recovered from its local headers) with the room
    left in the budget as its limit."""
    room = budget - state._used
    try:
        # the budget is the only bound on size (the ratio check would start past it)
        limits = Limits(entry=room, total=room, ratio_after=room + 1)
        archive = Archive.open(data, name, limits, prefix=f"{name}!")
    except ArchiveError as e:
        why = str(e).removeprefix(f"{name}: ").removeprefix(f"{name}!")
        state.notes.append(f"{name}: {why}; not read")
        return
    with archive:
        infos = archive.entries()
        skip = _build_environments([i.filename for i in infos], name, state)
        try:
            for info in infos:
                if skip and info.filename.startswith(skip):
                    continue
                if not _take(state, name):
                    return
                try:
                    body = archive.read(info, budget - state._used)
                except EntryError as e:
                    state.notes.append(str(e))
                    continue
                state._used += len(body)
                yield Member(f"{name}!{info.filename}", body, info.filename)
        except ArchiveError:
            _over_budget(state, name, budget, "the rest not read")
        finally:
            state.notes.extend(archive.notes)
