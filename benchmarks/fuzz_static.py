#!/usr/bin/env python3
"""Fuzz the static scanner with mutated fixtures: hostile input must give a one-line AuditError or a
(partial) result, never another exception, a hang, a memory blow-up or raw control characters.

Usage::

    .venv/bin/python benchmarks/fuzz_static.py --cases 2000 --seed 1        # sequential path
    .venv/bin/python benchmarks/fuzz_static.py --cases 2000 --fork          # two-process path
    .venv/bin/python benchmarks/fuzz_static.py --seed 7 --cases 500 --only dex
    .venv/bin/python benchmarks/fuzz_static.py --minutes 6 --cases 100000   # a time budget
    .venv/bin/python benchmarks/fuzz_static.py --cases 200 --targeted 1 --target "hostile archive asset"
    .venv/bin/python benchmarks/fuzz_static.py --replay benchmarks/.cache/fuzz/findings/x.apk

Seeds are ``tests/fixtures/apks/*.{apk,aab,apks,xapk,apkm,dex}``, ``tests/fixtures/hostile/*`` and the
labelled precision apps ``tests/fixtures/labelled/*.apk``.
Every input is a seed with one to three mutations: generic (bit flips, interesting integers,
truncation, inserted/duplicated/deleted ranges) or structure-aware: DEX header fields and tables,
string data (uleb128 overruns, no NUL), class_data and code items; AXML/arsc chunk headers, string
pools and attributes; protobuf lengths, wire types and deep nesting; zip central directory, local
headers and EOCD fields, duplicated, overlong or many entries, odd methods and flags, and the content
of one entry (the zip is rebuilt around it, so CRCs still match). A share of the archives (``--targeted``,
15 %) gets one of the fault classes of issue 15 instead (``TARGETS``): ``resources.arsc`` cut inside a
chunk or its header, a string pool claiming up to 0xFFFFFFFF strings or styles, and an asset dense with
5,000 to 250,000 distinct URLs or host names (text, minified JavaScript, NUL-separated binary), and
an archive asset that is a gzip bomb, nests deep, holds 25,000 members or is cut or garbled.
The shared entry point is ``run(cases, seed)`` (``benchmarks/fuzz_common.py``): the same seed gives
the same inputs.

Each input is scanned by ``scan_path`` in a forked child (its own process group) with an address-space
cap (``--mem``, MiB above the parent's size) and a wall-time limit (``--timeout``). ``--fork`` forces
the scanner's own two-process path (``PARALLEL_MIN_DEX = 0``), otherwise ``AUDIT_NO_FORK=1``. Per
result it also renders the ``--table`` output (``audit.cli._scan_table``) and the JSON (encoded as
UTF-8, as ``audit scan --json`` writes it). ``--cli N`` runs the real ``audit scan`` on N sampled
inputs and checks the exit status, stderr lines and table output.

Findings (deduplicated by kind and innermost ``audit/`` frame) are written to
``benchmarks/.cache/fuzz/findings/``; the script exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import importlib.util
import io
import json
import marshal
import os
import random
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit.cli import _scan_table  # noqa: E402  (imported here, not in each forked child)
from audit.errors import AuditError  # noqa: E402
from audit.static import scanner  # noqa: E402
from audit.static.signatures import SignatureDb, load_signatures  # noqa: E402
from benchmarks.fuzz_common import (  # noqa: E402
    BAD,
    CACHE,
    FuzzResult,
    add_arguments,
    exception_outcome,
    finish,
    keep,
    run_forked,
)
from tests.fixtures.build import pb_varint as _varint  # noqa: E402

Mutator = Callable[[random.Random, bytes], bytes]
INTERESTING = [0, 1, 2, 3, 4, 7, 8, 0x10, 0x1C, 0x20, 0x70, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
               0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFE, 0xFFFFFFFF]  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


# --------------------------------------------------------------------------------------------
# generic mutations
# --------------------------------------------------------------------------------------------


def _value(rng: random.Random, n: int) -> int:
    r = rng.random()
    if r < 0.6:
        return rng.choice(INTERESTING)
    if r < 0.8:
        return max(0, n + rng.randint(-16, 16))
    return rng.getrandbits(32)


def put32(data: bytearray, pos: int, value: int) -> None:
    if 0 <= pos <= len(data) - 4:
        data[pos : pos + 4] = struct.pack("<I", value & 0xFFFFFFFF)


def put16(data: bytearray, pos: int, value: int) -> None:
    if 0 <= pos <= len(data) - 2:
        data[pos : pos + 2] = struct.pack("<H", value & 0xFFFF)


def flip(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def set_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if b:
            b[rng.randrange(len(b))] = rng.choice([0, 0x7F, 0x80, 0xFF, 0xC0, 0xED, 0x0A, 0x1B])
    return bytes(b)


def set_int(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    if len(b) < 4:
        return data
    pos = rng.randrange(len(b) - 3) & (~3 if rng.random() < 0.7 else ~0)
    (put32 if rng.random() < 0.7 else put16)(b, pos, _value(rng, len(b)))
    return bytes(b)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))] if data else data


def insert(rng: random.Random, data: bytes) -> bytes:
    pos = rng.randrange(len(data) + 1)
    n = rng.choice([1, 2, 4, 16, 256, 4096])
    junk = bytes([rng.choice([0, 0xFF, 0x41])]) * n if rng.random() < 0.5 else rng.randbytes(n)
    return data[:pos] + junk + data[pos:]


def delete(rng: random.Random, data: bytes) -> bytes:
    if len(data) < 2:
        return data
    a = rng.randrange(len(data))
    return data[:a] + data[a + rng.randint(1, min(512, len(data) - a)) :]


def duplicate(rng: random.Random, data: bytes) -> bytes:
    if len(data) < 2:
        return data
    a = rng.randrange(len(data))
    n = rng.randint(1, min(2048, len(data) - a))
    pos = rng.randrange(len(data))
    return data[:pos] + data[a : a + n] * rng.choice([1, 2, 8]) + data[pos:]


GENERIC: list[Mutator] = [flip, set_bytes, set_int, set_int, truncate, insert, delete, duplicate]


def generic(rng: random.Random, data: bytes) -> bytes:
    return rng.choice(GENERIC)(rng, data)


# --------------------------------------------------------------------------------------------
# DEX
# --------------------------------------------------------------------------------------------


def _dex_layout(data: bytes) -> dict[str, list[int]]:
    """Offsets worth aiming at: string_ids entries, string data, class_defs, class_data, code items."""
    out: dict[str, list[int]] = {"ids": [], "strings": [], "defs": [], "class_data": [], "code": []}
    if len(data) < 0x70:
        return out
    f = struct.unpack_from("<20I", data, 32)
    n_str, str_off, n_defs, defs_off = f[6], f[7], f[16], f[17]
    for i in range(min(n_str, 100_000)):
        pos = str_off + 4 * i
        if pos + 4 > len(data):
            break
        out["ids"].append(pos)
        out["strings"].append(struct.unpack_from("<I", data, pos)[0])
    for i in range(min(n_defs, 100_000)):
        pos = defs_off + 32 * i
        if pos + 32 > len(data):
            break
        out["defs"].append(pos)
        cd = struct.unpack_from("<I", data, pos + 24)[0]
        if cd:
            out["class_data"].append(cd)
    try:
        from audit.static.dex import DexFile

        starts, _ = DexFile(data, "x")._code_index()
        out["code"] = list(starts)
    except Exception:
        pass
    return out


def dex_mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    if len(b) < 0x70:
        return generic(rng, data)
    lay = _dex_layout(data)
    choice = rng.randrange(10)
    if choice <= 2:  # a header field (file_size … data_off)
        put32(b, 32 + 4 * rng.randrange(20), _value(rng, len(b)))
    elif choice == 3:  # a table size huge or an offset past the end
        field = rng.choice([6, 7, 8, 9, 16, 17, 5])
        put32(
            b,
            32 + 4 * field,
            rng.choice([len(b), len(b) - 1, len(b) - 3, 0x3FFFFFFF, 0xFFFFFFFF, 0x10000000]),
        )
    elif choice == 4 and lay["ids"]:  # a string id pointing somewhere odd
        put32(b, rng.choice(lay["ids"]), rng.choice([len(b) - 1, len(b), 0, 0x70, rng.randrange(len(b)),
                                                      rng.choice(lay["strings"]) + rng.randint(-3, 3)]))  # fmt: skip
    elif choice == 5 and lay["strings"]:  # string data: uleb128 overrun, no NUL, lone surrogates
        off = rng.choice(lay["strings"])
        if 0 <= off < len(b):
            if rng.random() < 0.3:
                end = b.find(b"\x00", off + 1)
                if end - off > 4:
                    b[off + 1 : off + 4] = rng.choice([b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xc0\x80\x1b"])
            elif rng.random() < 0.5:
                n = rng.randint(1, 8)
                b[off : off + n] = b"\xff" * n
            else:
                end = b.find(b"\x00", off + 1)
                if end > 0:
                    b[end] = rng.choice([0x41, 0xC0, 0xED, 0x80])
                if rng.random() < 0.3:  # also strip every NUL after it
                    b[off:] = b[off:].replace(b"\x00", b"A")
    elif choice == 6 and lay["defs"]:
        d = rng.choice(lay["defs"])
        put32(b, d + 4 * rng.randrange(8), _value(rng, len(b)))
    elif choice == 7 and lay["class_data"]:
        off = rng.choice(lay["class_data"])
        if 0 <= off < len(b) - 5:
            b[off + rng.randrange(4) : off + 5] = rng.choice([b"\xff\xff\xff\xff\x0f", b"\x80\x80\x80\x80\x80",
                                                              b"\xff", b"\x7f"])  # fmt: skip
    elif choice == 8 and lay["code"]:
        off = rng.choice(lay["code"])
        if rng.random() < 0.5:
            put32(b, off + 12, rng.choice([0xFFFFFFFF, 0x7FFFFFFF, len(b), 0, 1]))
        else:  # a payload ident or a const-string/jumbo at the start of the code
            pc = off + 16 + 2 * rng.randrange(4)
            b[pc : pc + 8] = rng.choice([b"\x00\x01\xff\xff", b"\x00\x02\xff\xff", b"\x00\x03\xff\xff\xff\xff\xff\xff",
                                         b"\x1b\x00\xff\xff\xff\xff", b"\x1a\x00\xff\xff"])[:8]  # fmt: skip
    else:
        return generic(rng, data)
    return bytes(b)


# --------------------------------------------------------------------------------------------
# compiled XML / resources.arsc (chunks)
# --------------------------------------------------------------------------------------------


def _chunk_positions(data: bytes) -> list[int]:
    """Start of every chunk, walking nested chunks (table → package → type …) by their header sizes."""
    found: list[int] = []

    def walk(start: int, end: int, depth: int) -> None:
        pos = start
        while pos + 8 <= end and depth < 6 and len(found) < 5000:
            _t, hs, size = struct.unpack_from("<HHI", data, pos)
            if size < 8 or hs < 8 or pos + size > end:
                return
            found.append(pos)
            if hs < size and _t in (0x0002, 0x0003, 0x0200):
                walk(pos + hs, pos + size, depth + 1)
            pos += size

    walk(0, len(data), 0)
    return found


def chunk_mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    chunks = _chunk_positions(data)
    if not chunks:
        return generic(rng, data)
    pos = rng.choice(chunks)
    ctype, hs, size = struct.unpack_from("<HHI", data, pos)
    choice = rng.randrange(6)
    if choice == 0:
        put32(b, pos + 4, rng.choice([0, 1, 7, 8, hs, hs - 1, size + 4, len(b) - pos, 0x80000000, 0xFFFFFFFF,
                                      0x7FFFFFFF, rng.getrandbits(32)]))  # fmt: skip
    elif choice == 1:
        put16(b, pos + 2, rng.choice([0, 1, 7, 8, 27, 28, 0x7FFF, 0xFFFF, size, rng.getrandbits(16)]))
    elif choice == 2:
        put16(b, pos, rng.choice([0x0001, 0x0002, 0x0003, 0x0102, 0x0103, 0x0104, 0x0180, 0x0200, 0xFFFF]))
    elif choice == 3 and ctype == 0x0001:  # string pool: count, styles, flags, strings_start, styles_start
        field = rng.randrange(5)
        if field == 2:
            put32(b, pos + 16, struct.unpack_from("<I", data, pos + 16)[0] ^ (1 << 8))
        else:
            put32(b, pos + 8 + 4 * field, _value(rng, size))
    elif choice == 4 and ctype == 0x0001:  # a string's offset, or its length prefix
        count, _, _, start, _ = struct.unpack_from("<5I", data, pos + 8)
        if count:
            i = rng.randrange(min(count, 10_000))
            if rng.random() < 0.5:
                put32(b, pos + hs + 4 * i, _value(rng, size))
            else:
                (rel,) = struct.unpack_from("<I", data, pos + hs + 4 * i)
                p = pos + start + rel
                if p + 4 <= len(b):
                    b[p : p + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x7f\x7f\x7f\x7f", b"\x80\x80\x80\x80"])
    elif choice == 4 and ctype == 0x0001 and rng.random() < 0.3:  # every string id at one offset
        count = struct.unpack_from("<I", data, pos + 8)[0]
        target = struct.unpack_from("<I", data, pos + hs)[0] if count else 0
        for i in range(min(count, 10_000)):
            put32(b, pos + hs + 4 * i, target + (2 * i if rng.random() < 0.5 else 0))
    elif choice == 5 and ctype in (0x0104, 0x0102) and rng.random() < 0.3:  # one chunk repeated
        return data[: pos + size] + data[pos : pos + size] * rng.choice([100, 5000]) + data[pos + size :]
    elif choice == 5 and ctype == 0x0102:  # start element: attrStart, attrSize, count, an attribute
        ext = pos + hs
        field = rng.randrange(4)
        if field < 3:
            put16(b, ext + 8 + 2 * field, rng.choice([0, 1, 19, 20, 0x7FFF, 0xFFFF, rng.getrandbits(16)]))
        else:
            put32(b, ext + 20 + 4 * rng.randrange(5), _value(rng, size))
    else:
        return generic(rng, data)
    return bytes(b)


# --------------------------------------------------------------------------------------------
# protobuf (app bundle manifest, res/xml, resources.pb)
# --------------------------------------------------------------------------------------------


def proto_mutate(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:  # deep nesting: field 1 (an XmlNode's element / a child node) in field 1 …
        depth = rng.choice([40, 70, 200, 1000, 5000, 20000])
        inner = data
        for _ in range(depth):
            tag = b"\x0a" if rng.random() < 0.8 else b"\x2a"
            inner = tag + _varint(len(inner)) + inner
        return inner
    if choice == 1:  # wide: many small fields
        return data + (b"\x2a\x02\x0a\x00" * rng.choice([1000, 50_000]))
    if choice == 2:  # an overlong varint somewhere
        pos = rng.randrange(len(data) + 1)
        return data[:pos] + b"\xff" * rng.choice([5, 10, 11, 20]) + data[pos:]
    if choice == 3:  # a length bigger than the message
        pos = rng.randrange(len(data) + 1)
        return data[:pos] + b"\x0a" + _varint(rng.choice([len(data), 0xFFFFFFFF, 1 << 40])) + data[pos:]
    if choice == 4:  # wire types 3/4 (groups), 6, 7
        pos = rng.randrange(len(data) + 1)
        return data[:pos] + bytes([0x08 | rng.choice([3, 4, 6, 7])]) + data[pos:]
    return generic(rng, data)


# --------------------------------------------------------------------------------------------
# zip archives
# --------------------------------------------------------------------------------------------


def _entries(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return [(i, zf.read(i)) for i in zf.infolist()]
    except Exception:
        return None


def _build(items: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, content in items:
            zi = zipfile.ZipInfo(info.filename, info.date_time)
            zi.compress_type = info.compress_type
            zi.external_attr = info.external_attr
            zf.writestr(zi, content)
    return buf.getvalue()


def content_mutator(name: str, in_aab: bool) -> Mutator:
    if name.endswith(".dex"):
        return dex_mutate
    if name.endswith((".apk",)):
        return lambda rng, d: zip_mutate(rng, d, depth=1)
    if in_aab and (name.endswith(".pb") or name.endswith(".xml")):
        return proto_mutate
    if name.endswith(".xml") or name == "resources.arsc":
        return chunk_mutate
    return generic


def _cd_records(data: bytes) -> tuple[int, list[int]]:
    """(EOCD offset, central directory record offsets)."""
    eocd = data.rfind(b"PK\x05\x06")
    recs = []
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        recs.append(pos)
        pos = data.find(b"PK\x01\x02", pos + 4)
    return eocd, recs


def zip_mutate(rng: random.Random, data: bytes, depth: int = 0) -> bytes:
    items = _entries(data)
    choice = rng.randrange(12)
    if items and choice <= 3:  # one entry's content, zip rebuilt around it (CRCs valid)
        k = rng.randrange(len(items))
        info, content = items[k]
        in_aab = any(i.filename.startswith("base/manifest/") for i, _ in items)
        mut = content_mutator(info.filename, in_aab)
        for _ in range(rng.randint(1, 2)):
            content = mut(rng, content)
        items[k] = (info, content)
        return _build(items)
    if items and choice == 4:  # duplicated entry names (same or other content)
        k = rng.randrange(len(items))
        info, content = items[k]
        other = dex_mutate(rng, content) if info.filename.endswith(".dex") else generic(rng, content)
        items.insert(rng.randrange(len(items) + 1), (info, other if rng.random() < 0.5 else content))
        return _build(items)
    if items and choice == 5:  # overlong / odd names, many entries
        k = rng.randrange(len(items))
        info, content = items[k]
        kind = rng.randrange(5)
        if kind == 0:
            name = "assets/" + "a" * rng.choice([255, 4096, 65000]) + ".js"
        elif kind == 1:
            name = rng.choice(["assets/\x1b[31mred\x1b[0m.js", "assets/\u202eevil.js", "res/raw/\n\r.txt",
                               "lib/x86/\x00lib.so", "classes\u0661.dex", "assets/" + "\udcff" * 3])  # fmt: skip
        elif kind == 2:
            extra = [(zipfile.ZipInfo(f"assets/e{i}.txt"), b"") for i in range(rng.choice([1000, 20_000]))]
            return _build(items + extra)
        elif kind == 3:
            name = "assets/x.js"
            content = b"https://" + b"a" * rng.choice([100_000, 3_000_000]) + b".com/"
        else:
            name = "assets/x.js"
            tail = rng.choice(b").]}.,;:'|^(")
            content = rng.choice([b"\x00" * 9_000_000, b"https://a.b/" * 800_000, rng.randbytes(2_000_000),
                                  b"https://a.example.com/" + bytes([tail]) * rng.choice([1000, 300_000]),
                                  b"a.b." * 500_000, b"1:2:" * 500_000, b"a://" * 500_000])  # fmt: skip
        try:
            zi = zipfile.ZipInfo(name, info.date_time)
        except ValueError:
            zi = zipfile.ZipInfo("assets/nul.js", info.date_time)
        zi.compress_type = zipfile.ZIP_DEFLATED
        items.append((zi, content))
        try:
            return _build(items)
        except (ValueError, UnicodeEncodeError):
            return data
    b = bytearray(data)
    eocd, recs = _cd_records(data)
    if choice <= 8 and recs:  # a central directory field
        r = rng.choice(recs)
        field = rng.choice(
            [(8, 2), (10, 2), (16, 4), (20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (42, 4), (38, 4)]
        )
        value = rng.choice([0, 1, 8, 12, 14, 98, 99, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, len(b), len(b) + 1,
                            rng.getrandbits(32)])  # fmt: skip
        (put16 if field[1] == 2 else put32)(b, r + field[0], value)
        return bytes(b)
    if choice == 9 and eocd >= 0:  # EOCD: entries, cd size, cd offset, comment length
        field = rng.choice([(8, 2), (10, 2), (12, 4), (16, 4), (20, 2)])
        value = rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, len(b), rng.getrandbits(16)])
        (put16 if field[1] == 2 else put32)(b, eocd + field[0], value)
        return bytes(b)
    if choice == 10:  # a local header field
        locs = [m.start() for m in re.finditer(rb"PK\x03\x04", data)]
        if locs:
            p = rng.choice(locs)
            field = rng.choice([(6, 2), (8, 2), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2)])
            value = rng.choice([0, 8, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, rng.getrandbits(32)])
            (put16 if field[1] == 2 else put32)(b, p + field[0], value)
            return bytes(b)
    if depth == 0 and rng.random() < 0.3:  # cut: exercises recovery from local headers
        return data[: rng.randrange(1, max(2, len(data)))]
    return generic(rng, data)


# --------------------------------------------------------------------------------------------
# the fault classes of issue 15, aimed at directly (each a named target, counted in the summary)
# --------------------------------------------------------------------------------------------


def _with_entry(items: list[tuple[zipfile.ZipInfo, bytes]], name: str, content: bytes) -> bytes:
    out = [(i, c) for i, c in items if i.filename != name]
    zi = zipfile.ZipInfo(name, (2024, 6, 18, 9, 0, 0))
    zi.compress_type = zipfile.ZIP_DEFLATED
    return _build(out + [(zi, content)])


def truncated_arsc(rng: random.Random, items: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes | None:
    """resources.arsc cut inside a chunk, at a chunk boundary or inside its header."""
    arsc = dict((i.filename, c) for i, c in items).get("resources.arsc")
    if not arsc:
        return None
    chunks = _chunk_positions(arsc)
    cut = rng.choice([rng.randrange(len(arsc)), rng.choice(chunks) if chunks else 0, rng.randrange(12),
                      (rng.choice(chunks) + rng.randint(1, 27)) if chunks else 5])  # fmt: skip
    return _with_entry(items, "resources.arsc", arsc[: max(0, min(cut, len(arsc) - 1))])


def huge_pool_count(rng: random.Random, items: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes | None:
    """A string pool (of resources.arsc or the binary manifest) claiming up to 0xFFFFFFFF strings or styles."""
    names = [i.filename for i, _ in items if i.filename in ("resources.arsc", "AndroidManifest.xml")]
    if not names:
        return None
    name = rng.choice(names)
    data = bytearray(dict((i.filename, c) for i, c in items)[name])
    pools = [pos for pos in _chunk_positions(bytes(data)) if struct.unpack_from("<H", data, pos)[0] == 0x0001]
    if not pools:
        return None
    pos = rng.choice(pools)
    count = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000000, 0x00FFFFFF, 1 << 20])
    put32(data, pos + 8 + (4 if rng.random() < 0.25 else 0), count)  # the string count, or the style count
    return _with_entry(items, name, bytes(data))


def hostile_asset(rng: random.Random, items: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes | None:
    """An asset dense with distinct URLs or host names, past the endpoint cap (issue 15, point 4)."""
    n = rng.choice([5_000, 120_000, 250_000])
    shape = rng.randrange(4)
    if shape == 0:  # one URL a line
        text = "\n".join(f"https://h{i}.cdn{i % 997}.example{i % 17}.com/p/{i}" for i in range(n))
    elif shape == 1:  # minified JavaScript: one line
        text = ";".join(f'u{i}="https://a{i}.t{i % 31}.example.net/v?{i}"' for i in range(n))
    elif shape == 2:  # bare host names
        text = " ".join(f"s{i}.x{i % 101}.example.org" for i in range(n))
    else:  # binary: URLs between NUL runs, as in a packed resource
        text = "\x00\x00".join(f"http://b{i}.example.io/{i}" for i in range(n))
    name = rng.choice(["assets/endpoints.txt", "assets/www/app.min.js", "assets/hosts.dat", "res/raw/x.bin"])
    return _with_entry(items, name, text.encode())


def _tar_of(members: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return raw.getvalue()


def hostile_archive(rng: random.Random, items: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes | None:
    """An archive asset (a python-for-android ``private.tar`` or ``libpybundle.so``) that is a bomb,
    nests deep, holds very many members, or is cut or garbled inside (archive assets are read)."""
    shape = rng.randrange(5)
    if shape == 0:  # a gzip bomb: up to 300 MiB of zeros (the budget is 128 MiB)
        body = gzip.compress(b"\0" * (rng.choice([80, 160, 300]) << 20), compresslevel=1)
    elif shape == 1:  # nested gzip tars
        body = b"https://deep.example.org/x"
        for _ in range(rng.choice([5, 20, 60])):
            body = gzip.compress(_tar_of([("x.tar.gz", body)]))
    elif shape == 2:  # very many small members
        body = gzip.compress(
            _tar_of([(f"m{i}.txt", f"https://m{i}.example.org/".encode()) for i in range(25_000)])
        )
    elif shape == 3:  # cut inside the gzip stream or the tar
        full = gzip.compress(_tar_of([("app/db.pyc", b"z\x1bhttps://a.example.org/v1" * 500)]))
        body = full[: rng.randrange(10, len(full))]
    else:  # a zip asset whose members are bombs or garbled
        raw = io.BytesIO()
        with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("bomb.txt", b"a" * (200 << 20))
            z.writestr("x.html", b"<a href='https://z.example.org/'>")
        body = bytearray(raw.getvalue())
        for _ in range(rng.choice([0, 3, 30])):
            body[rng.randrange(len(body))] = rng.randrange(256)
        body = bytes(body)
    name = rng.choice(
        ["assets/private.tar", "assets/bundle.zip", "lib/arm64-v8a/libpybundle.so", "assets/d.tgz"]
    )
    return _with_entry(items, name, body)


_MAIN_PY = (
    'API = "https://api.example.org/v1"\n'
    'def get(u="https://mirror.example.org/"):\n    return u\n'
    'if __name__ == "__main__":\n    get("https://selftest.example.org/x.json")\n    print(API)\n'
)


def hostile_python(rng: random.Random, items: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes | None:
    """A packed bundle whose compiled Python (with a ``__main__`` block, read by our own marshal
    reader) is garbled, cut, deeply nested or claims huge sizes, with HTML pages that never close a
    tag or a script (read for their tags only)."""
    pyc = importlib.util.MAGIC_NUMBER + b"\0" * 12 + marshal.dumps(compile(_MAIN_PY, "m.py", "exec"))
    shape = rng.randrange(4)
    if shape == 0:
        pyc = generic(rng, pyc)
    elif shape == 1:
        pyc = pyc[: rng.randrange(16, len(pyc))]
    elif shape == 2:  # tuples nested 100,000 deep, then the __main__ text
        pyc = pyc[:16] + b"(\x01\x00\x00\x00" * 100_000 + b"N__main__https://n.example.org/"
    else:  # a code object claiming a 2 GiB constant tuple
        pyc = pyc[:16] + b"c" + b"\0" * 24 + b"s\x00\x00\x00\x00(\xff\xff\xff\x7f" + b"__main__://"
    html = rng.choice(
        [
            b"<" * 200_000,
            b"<script>" * 20_000 + b"https://s.example.org/",
            b"<p>https://t.example.org/" * 20_000,
        ]
    )
    body = gzip.compress(_tar_of([("app/m.pyc", pyc), ("app/t.html", html)]))
    return _with_entry(items, rng.choice(["assets/private.tar", "lib/arm64-v8a/libpybundle.so"]), body)


TARGETS: dict[str, Callable[[random.Random, list[tuple[zipfile.ZipInfo, bytes]]], bytes | None]] = {
    "truncated resources.arsc": truncated_arsc,
    "huge string-pool count": huge_pool_count,
    "hostile asset": hostile_asset,
    "hostile archive asset": hostile_archive,
    "hostile compiled Python": hostile_python,
}


# --------------------------------------------------------------------------------------------
# running one input
# --------------------------------------------------------------------------------------------


def check_one(path: Path, sigs: SignatureDb) -> dict[str, object]:
    """Scan ``path``; classify the outcome. Runs in the forked child."""
    label = str(path)
    try:
        result = scanner.scan_path(path, signatures=sigs)
    except AuditError as e:
        msg = str(e)
        if "internal error" in msg:
            return {
                "kind": "internal",
                "where": msg.split("internal error while scanning: ")[-1][:80],
                "msg": msg,
            }
        if "\n" in msg or not msg.startswith(label):
            return {"kind": "message", "where": type(e).__name__, "msg": msg}
        return {"kind": "error", "msg": msg}
    except Exception as e:  # MemoryError and RecursionError included
        return exception_outcome(e)
    try:
        table = _scan_table(result)
    except Exception as e:
        return {"kind": "table", "where": type(e).__name__, "msg": traceback.format_exc()[-2000:]}
    bad = _CONTROL.search(table.replace("\n", ""))
    if bad:
        return {"kind": "control", "where": f"U+{ord(bad.group()):04X}", "msg": table[:2000]}
    try:
        json.dumps(result.to_dict(), indent=2, ensure_ascii=False).encode("utf-8")
    except Exception as e:
        return {"kind": "json", "where": type(e).__name__, "msg": traceback.format_exc()[-2000:]}
    for line in result.errors:
        if "internal error" in line:
            return {"kind": "internal", "where": line[:80], "msg": line}
    return {"kind": "partial" if result.errors else "ok", "msg": "; ".join(result.errors)[:300]}


def run_one(path: Path, sigs: SignatureDb, timeout: float, mem_mib: int) -> tuple[dict[str, object], float]:
    return run_forked(lambda: check_one(path, sigs), timeout, mem_mib)


def seeds(only: str | None) -> list[tuple[str, bytes]]:
    fx = ROOT / "tests" / "fixtures"
    paths = [p for p in sorted((fx / "apks").iterdir()) if p.suffix in (".apk", ".aab", ".apks", ".xapk", ".apkm",
                                                                        ".dex")]  # fmt: skip
    paths += [
        p for p in sorted((fx / "hostile").iterdir()) if p.suffix != ".md" and p.stat().st_size < 100_000
    ]
    paths += sorted((fx / "labelled").glob("*.apk"))  # code that calls networking APIs (issue 11 evidence)
    out = [(p.name, p.read_bytes()) for p in paths]
    if only:
        out = [(n, d) for n, d in out if n.endswith("." + only) or only in n]
    return out


def mutate(rng: random.Random, name: str, data: bytes) -> bytes:
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        try:
            if data[:2] == b"PK":
                data = zip_mutate(rng, data)
            elif data[:4] == b"dex\n":
                data = dex_mutate(rng, data)
            else:
                data = generic(rng, data)
        except (struct.error, IndexError, ValueError, OverflowError):
            data = generic(rng, data)  # a structure-aware mutator misread its own input
    return data


def cli_check(path: Path, timeout: float) -> str | None:
    """The real command line: exit 0/1, no traceback, one ``audit: error:`` line per problem, no raw
    control characters in the table."""
    audit = str(Path(sys.executable).with_name("audit"))
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    for mode in ("--table", "--json"):
        try:
            r = subprocess.run(
                [audit, "scan", str(path), mode], capture_output=True, timeout=timeout, env=env
            )
        except subprocess.TimeoutExpired:
            return f"cli {mode}: hang"
        err = r.stderr.decode("utf-8", "replace")
        if r.returncode not in (0, 1) or "Traceback" in err:
            return f"cli {mode}: exit {r.returncode}: {err[-1500:]}"
        for line in err.splitlines():
            if not line.startswith("audit: "):  # an error line, or a note (what was not read)
                return f"cli {mode}: stray stderr line {line!r}"
        if mode == "--table":
            bad = _CONTROL.search(r.stdout.decode("utf-8", "replace").replace("\n", ""))
            if bad:
                return f"cli --table: control character U+{ord(bad.group()):04X}"
        else:
            try:
                json.loads(r.stdout or b"null")
            except ValueError as e:
                return f"cli --json: invalid JSON ({e})"
    return None


def run(
    cases: int,
    seed: int = 1,
    *,
    fork: bool = False,
    only: str | None = None,
    timeout: float = 10.0,
    mem: int = 1024,
    slow: float = 3.0,
    cli: int = 0,
    minutes: float = 0.0,
    targeted: float = 0.15,
    target: str | None = None,
    quiet: bool = False,
) -> FuzzResult:
    """Scan ``cases`` mutated inputs (``random.Random(seed)``; ``minutes`` > 0 also stops after that long).
    A share ``targeted`` of the archive inputs gets one of :data:`TARGETS` instead of a random mutation."""
    target_only = target  # ``--target``: only that fault class
    if fork:
        os.environ.pop("AUDIT_NO_FORK", None)
        scanner.PARALLEL_MIN_DEX = 0
    else:
        os.environ["AUDIT_NO_FORK"] = "1"
    sigs = _warm()
    rng = random.Random(seed)
    pool = seeds(only)
    if not pool:
        raise SystemExit(f"no seed file matches --only {only!r}")
    mode = "fork" if fork else "sequential"
    findings = CACHE / "findings" / mode
    result = FuzzResult(f"fuzz_static ({mode})", seed)
    targets: Counter[str] = Counter()
    start = time.monotonic()
    deadline = start + minutes * 60 if minutes else float("inf")
    cli_done = 0
    n = 0
    with tempfile.TemporaryDirectory(prefix="fuzz-static-") as tmp:
        while n < cases and time.monotonic() < deadline:
            name, data = pool[n % len(pool)]
            n += 1
            items = _entries(data) if data[:2] == b"PK" and rng.random() < targeted else None
            target = (target_only or rng.choice(list(TARGETS))) if items else "random"
            made = TARGETS[target](rng, items) if items else None
            if made is None:
                target = "random"
                made = mutate(rng, name, data)
            targets[target] += 1
            path = Path(tmp) / f"in{n % 7}{Path(name).suffix}"
            path.write_bytes(made)
            answer, elapsed = run_one(path, sigs, timeout, mem)
            kind, where = str(answer["kind"]), str(answer.get("where", ""))
            if elapsed > slow and kind not in BAD:
                kind, where = "slow", f"{elapsed:.0f}s"
            sig = result.add(kind, where, str(answer.get("msg", "")), elapsed)
            if sig is not None and result.findings[sig] <= 3:
                out = keep(findings, sig, result.findings[sig], made, Path(name).suffix,
                           f"seed {name}, target {target}\n{answer.get('msg', '')}")  # fmt: skip
                print(f"[{n}] {sig} (from {name}, {target}) -> {out.name}", flush=True)
            if kind == "slow":
                keep(
                    findings,
                    "slow",
                    n,
                    made,
                    Path(name).suffix,
                    f"seed {name}, target {target}, {elapsed:.1f} s",
                )
            if cli and cli_done < cli and (kind in ("error", "partial") or rng.random() < 0.05):
                cli_done += 1
                problem = cli_check(path, timeout * 2)
                result.outcomes["cli"] += 1
                if problem:
                    sig = result.add(
                        "exit" if "exit" in problem else "message", "cli " + problem.split(":")[0], problem
                    )
                    result.cases -= 1  # the same input, counted once
                    if sig is not None:
                        keep(
                            findings,
                            sig,
                            result.findings[sig],
                            made,
                            Path(name).suffix,
                            f"seed {name}\n{problem}",
                        )
                    print(f"[{n}] {problem[:200]} (from {name})", flush=True)
            if not quiet and n % 500 == 0:
                print(f"... {n} inputs, {dict(result.outcomes)}", flush=True)
    result.seconds = time.monotonic() - start
    result.outcomes.update({f"target {t}": c for t, c in targets.items()})
    return result


_SIGS: list[SignatureDb] = []


def _warm() -> SignatureDb:
    """Warm every lazy cache (public suffix list, regexes) once, not in each forked child; freeze the
    heap so that the children's garbage collections do not copy it page by page."""
    if not _SIGS:
        _SIGS.append(load_signatures())
        scanner.scan_path(ROOT / "tests" / "fixtures" / "apks" / "messenger.apk", signatures=_SIGS[0])
        gc.freeze()
    return _SIGS[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap, cases=2000)
    ap.add_argument(
        "--minutes", type=float, default=0.0, help="also stop after this long (default: no limit)"
    )
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)  # the old name of --cases
    ap.add_argument("--only", help="seed files whose name ends with .ONLY or contains ONLY")
    ap.add_argument("--fork", action="store_true", help="force the scanner's two-process path")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument(
        "--slow", type=float, default=3.0, help="also keep inputs slower than this (s), not a failure"
    )
    ap.add_argument(
        "--mem", type=int, default=1024, help="MiB of address space above the parent's (default 1024)"
    )
    ap.add_argument(
        "--targeted", type=float, default=0.15, help="share of archives given an issue-15 target (0.15)"
    )
    ap.add_argument("--target", choices=sorted(TARGETS), help="give the targeted share only this fault class")
    ap.add_argument("--cli", type=int, default=0, help="also run the real CLI on this many sampled inputs")
    ap.add_argument("--replay", nargs="*", type=Path, help="scan these files instead of fuzzing")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # zipfile's "Duplicate name" when building duplicated entries
    if args.replay:
        sigs = _warm()
        for p in args.replay:
            answer, elapsed = run_one(p, sigs, args.timeout, args.mem)
            print(
                f"{p}: {answer['kind']} {answer.get('where', '')} ({elapsed:.2f} s)\n{answer.get('msg', '')}"
            )
        return 0
    result = run(args.count or args.cases, args.seed, fork=args.fork, only=args.only, timeout=args.timeout,
                 target=args.target,
                 mem=args.mem, slow=args.slow, cli=args.cli, minutes=args.minutes, targeted=args.targeted)  # fmt: skip
    return finish(result, args.json_out)


if __name__ == "__main__":
    sys.exit(main())
