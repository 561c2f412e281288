#!/usr/bin/env python3
"""Fuzz the static scanner with mutated fixtures: hostile input must give a one-line AuditError or a
(partial) result, never another exception, a hang, a memory blow-up or raw control characters.

Usage::

    .venv/bin/python benchmarks/fuzz_static.py --minutes 6                  # sequential path
    .venv/bin/python benchmarks/fuzz_static.py --minutes 6 --fork           # two-process path
    .venv/bin/python benchmarks/fuzz_static.py --seed 7 --count 2000 --only dex
    .venv/bin/python benchmarks/fuzz_static.py --replay benchmarks/.cache/fuzz/findings/x.apk

Seeds are ``tests/fixtures/apks/*.{apk,aab,apks,xapk,apkm,dex}``, ``tests/fixtures/hostile/*`` and the
labelled precision apps ``tests/fixtures/labelled/*.apk``.
Every input is a seed with one to three mutations: generic (bit flips, interesting integers,
truncation, inserted/duplicated/deleted ranges) or structure-aware: DEX header fields and tables,
string data (uleb128 overruns, no NUL), class_data and code items; AXML/arsc chunk headers, string
pools and attributes; protobuf lengths, wire types and deep nesting; zip central directory, local
headers and EOCD fields, duplicated, overlong or many entries, odd methods and flags, and the content
of one entry (the zip is rebuilt around it, so CRCs still match).

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
import io
import json
import os
import random
import re
import resource
import select
import signal
import struct
import subprocess
import sys
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
OUT = Path(__file__).resolve().parent / ".cache" / "fuzz"

from audit.cli import _scan_table  # noqa: E402  (imported here, not in each forked child)
from audit.errors import AuditError  # noqa: E402
from audit.static import scanner  # noqa: E402
from audit.static.signatures import SignatureDb, load_signatures  # noqa: E402
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
        put32(b, 32 + 4 * field, rng.choice([len(b), len(b) - 1, len(b) - 3, 0x3FFFFFFF, 0xFFFFFFFF, 0x10000000]))
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
        field = rng.choice([(8, 2), (10, 2), (16, 4), (20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (42, 4), (38, 4)])
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
# running one input
# --------------------------------------------------------------------------------------------


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _innermost_audit_frame(tb: traceback.StackSummary) -> str:
    for fr in reversed(tb):
        if "/audit/" in fr.filename:
            return f"{Path(fr.filename).name}:{fr.lineno}"
    return "?"


def check_one(path: Path, sigs: SignatureDb) -> dict[str, object]:
    """Scan ``path``; classify the outcome. Runs in the forked child."""
    label = str(path)
    try:
        result = scanner.scan_path(path, signatures=sigs)
    except AuditError as e:
        msg = str(e)
        if "internal error" in msg:
            return {"kind": "internal", "where": msg.split("internal error while scanning: ")[-1][:80], "msg": msg}
        if "\n" in msg or not msg.startswith(label):
            return {"kind": "message", "where": type(e).__name__, "msg": msg}
        return {"kind": "error", "msg": msg}
    except MemoryError:
        return {"kind": "memory", "where": _innermost_audit_frame(traceback.extract_tb(sys.exc_info()[2])),
                "msg": traceback.format_exc()[-2000:]}  # fmt: skip
    except RecursionError as e:
        return {"kind": "recursion", "where": _innermost_audit_frame(traceback.extract_tb(e.__traceback__)),
                "msg": traceback.format_exc()[-2000:]}  # fmt: skip
    except Exception as e:
        where = _innermost_audit_frame(traceback.extract_tb(e.__traceback__))
        return {"kind": "exception", "where": f"{type(e).__name__}@{where}", "msg": traceback.format_exc()[-3000:]}
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
    rfd, wfd = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        code = 0
        try:
            os.setpgid(0, 0)
            cap = _vm_size() + mem_mib * (1 << 20)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            answer = check_one(path, sigs)
        except BaseException as e:  # noqa: BLE001
            answer = {"kind": "harness", "where": type(e).__name__, "msg": traceback.format_exc()[-2000:]}
            code = 1
        try:
            os.write(wfd, json.dumps(answer).encode())
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    deadline = start + timeout
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([rfd], [], [], left)
        if ready:
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(rfd)
    if timed_out:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    elapsed = time.monotonic() - start
    if timed_out:
        return {"kind": "hang", "where": "timeout", "msg": f"no answer in {timeout} s"}, elapsed
    if os.WIFSIGNALED(status):
        return {"kind": "crash", "where": f"signal {os.WTERMSIG(status)}", "msg": ""}, elapsed
    try:
        return json.loads(b"".join(chunks)), elapsed
    except ValueError:
        return {"kind": "crash", "where": "no answer", "msg": f"exit status {status}"}, elapsed


BAD = ("internal", "message", "memory", "recursion", "exception", "table", "control", "json", "hang", "crash",
       "harness")  # fmt: skip


def seeds(only: str | None) -> list[tuple[str, bytes]]:
    fx = ROOT / "tests" / "fixtures"
    paths = [p for p in sorted((fx / "apks").iterdir()) if p.suffix in (".apk", ".aab", ".apks", ".xapk", ".apkm",
                                                                        ".dex")]  # fmt: skip
    paths += [p for p in sorted((fx / "hostile").iterdir()) if p.suffix != ".md" and p.stat().st_size < 100_000]
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
            r = subprocess.run([audit, "scan", str(path), mode], capture_output=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return f"cli {mode}: hang"
        err = r.stderr.decode("utf-8", "replace")
        if r.returncode not in (0, 1) or "Traceback" in err:
            return f"cli {mode}: exit {r.returncode}: {err[-1500:]}"
        for line in err.splitlines():
            if not line.startswith("audit: error: "):
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=5.0, help="time budget (default 5)")
    ap.add_argument("--count", type=int, default=0, help="stop after this many inputs (0: time budget only)")
    ap.add_argument("--only", help="seed files whose name ends with .ONLY or contains ONLY")
    ap.add_argument("--fork", action="store_true", help="force the scanner's two-process path")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--slow", type=float, default=3.0, help="also keep inputs slower than this (s), not a failure")
    ap.add_argument("--mem", type=int, default=1024, help="MiB of address space above the parent's (default 1024)")
    ap.add_argument("--cli", type=int, default=0, help="also run the real CLI on this many sampled inputs")
    ap.add_argument("--replay", nargs="*", type=Path, help="scan these files instead of fuzzing")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # zipfile's "Duplicate name" when building duplicated entries

    if args.fork:
        os.environ.pop("AUDIT_NO_FORK", None)
        scanner.PARALLEL_MIN_DEX = 0
    else:
        os.environ["AUDIT_NO_FORK"] = "1"
    sigs = load_signatures()
    # Warm every lazy cache (public suffix list, regexes) here, once, not in each forked child; freeze
    # the heap so that the children's garbage collections do not copy it page by page.
    scanner.scan_path(ROOT / "tests" / "fixtures" / "apks" / "messenger.apk", signatures=sigs)
    gc.freeze()
    if args.replay:
        for p in args.replay:
            answer, elapsed = run_one(p, sigs, args.timeout, args.mem)
            print(f"{p}: {answer['kind']} {answer.get('where', '')} ({elapsed:.2f} s)\n{answer.get('msg', '')}")
        return 0

    rng = random.Random(args.seed)
    pool = seeds(args.only)
    if not pool:
        sys.exit(f"no seed file matches --only {args.only!r}")
    findings = OUT / "findings" / ("fork" if args.fork else "sequential")
    findings.mkdir(parents=True, exist_ok=True)
    kinds: Counter[str] = Counter()
    seen: dict[str, int] = {}
    slowest: tuple[float, str] = (0.0, "")
    deadline = time.monotonic() + args.minutes * 60
    cli_every = 0
    n = 0
    with tempfile.TemporaryDirectory(prefix="fuzz-static-") as tmp:
        while time.monotonic() < deadline and (not args.count or n < args.count):
            name, data = pool[n % len(pool)]
            n += 1
            data = mutate(rng, name, data)
            path = Path(tmp) / f"in{n % 7}{Path(name).suffix}"
            path.write_bytes(data)
            answer, elapsed = run_one(path, sigs, args.timeout, args.mem)
            kind = str(answer["kind"])
            kinds[kind] += 1
            if elapsed > slowest[0]:
                slowest = (elapsed, f"{name} #{n}")
            if elapsed > args.slow and kind not in BAD:
                kind = "slow"
                answer = {**answer, "where": f"{elapsed:.0f}s"}
            if kind in BAD or kind == "slow":
                sig = f"{kind}:{answer.get('where')}"
                seen[sig] = seen.get(sig, 0) + 1
                if seen[sig] <= 3:
                    stem = re.sub(r"[^\w.@-]+", "_", sig)[:80]
                    out = findings / f"{stem}.{seen[sig]}{Path(name).suffix}"
                    out.write_bytes(data)
                    out.with_suffix(out.suffix + ".txt").write_text(f"seed {name}\n{answer.get('msg', '')}\n")
                    print(f"[{n}] {sig} (from {name}) -> {out.name}", flush=True)
            if args.cli and cli_every < args.cli and (kind in ("error", "partial") or rng.random() < 0.05):
                cli_every += 1
                problem = cli_check(path, args.timeout * 2)
                kinds["cli"] += 1
                if problem:
                    sig = "cli:" + problem.split(":")[0]
                    seen[sig] = seen.get(sig, 0) + 1
                    out = findings / f"cli.{seen[sig]}{Path(name).suffix}"
                    out.write_bytes(data)
                    out.with_suffix(out.suffix + ".txt").write_text(f"seed {name}\n{problem}\n")
                    print(f"[{n}] {problem[:200]} (from {name}) -> {out.name}", flush=True)
            if n % 500 == 0:
                print(f"... {n} inputs, {dict(kinds)}", flush=True)
    mode = "fork" if args.fork else "sequential"
    print(f"{n} inputs ({mode}), outcomes {dict(kinds)}, slowest {slowest[0]:.2f} s ({slowest[1]})")
    for sig, count in sorted(seen.items()):
        print(f"  {count:5d}  {sig}")
    return 1 if any(not sig.startswith("slow:") for sig in seen) else 0


if __name__ == "__main__":
    sys.exit(main())
