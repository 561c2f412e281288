#!/usr/bin/env python3
"""Generate the synthetic benchmark apps into benchmarks/.cache/ (skipped when already there).

Usage::

    .venv/bin/python benchmarks/synth_apps.py            # all inputs
    .venv/bin/python benchmarks/synth_apps.py synth-1k   # only the named ones

Inputs:

* ``synth-1k.apk``, ``synth-10k.apk``, ``synth-100k.apk``: 1 000 / 10 000 / 100 000 classes, built
  with the project's fixture builder (``tests/fixtures/build.py``: smali sources + ``apktool b``),
  split over as many DEX files as the 64K method limit requires. These measure linearity.
* ``synth-50dex.apk``: 50 DEX files of about 5 MB each (about 250 MB of DEX, stored uncompressed
  as bundletool does for Android 9+, so the APK is about 250 MB too). apktool needs minutes per
  DEX at this size, so these DEX files are written directly by :func:`write_dex` below (a minimal
  but valid DEX writer, checked against androguard with ``--check``); the manifest comes from the
  apktool-built 1k app.

Every class has a static ``init()`` that loads its strings with const-string (const-string/jumbo
past index 65535): one class in 100 loads an endpoint URL (pool of 200 hosts), every class a dotted
name, the rest identifier-like keys and messages, so the share of dotted and URL strings is close to
the registry APKs' (see :func:`class_strings`).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).resolve().parent / ".cache"
sys.path.insert(0, str(ROOT))

from tests.fixtures.build import build_apk, write_apktool_yml, write_smali_class, write_zip  # noqa: E402
from tests.fixtures.build import pb_varint as uleb128  # noqa: E402  (a protobuf varint is a uleb128)

PACKAGE = "com.synth.bench"
MANIFEST = f"""<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="{PACKAGE}">
    <uses-permission android:name="android.permission.INTERNET"/>
    <application android:label="synth"/>
</manifest>
"""
#: Classes per DEX for the apktool-built apps: two methods each (<init>, init) stay under 64K methods.
CLASSES_PER_DEX = 25_000
HOSTS = [f"api{i}.service{i % 37}.example{'-cdn' if i % 5 == 0 else ''}.com" for i in range(200)]


def class_strings(rng: random.Random, n: int, count: int) -> list[str]:
    """The strings class number ``n`` loads, mixed like the two registry APKs' DEX strings (measured:
    8-11 % hold a dot or colon, 0.1 % are URLs): one URL in 100 classes, one dotted name per class,
    identifier-like keys and short messages otherwise."""
    out = []
    if n % 100 == 0:
        host = HOSTS[rng.randrange(len(HOSTS))]
        out.append(f"https://{host}/v{n % 4}/items/{n}?k={rng.getrandbits(32):08x}")
    out.append(f"{PACKAGE}.p{n // 200}.C{n}.field{rng.randrange(100)}")
    while len(out) < count:
        i = len(out)
        if i % 3 == 0:
            out.append(f"Could not load item {n} ({i}): {rng.getrandbits(24):06x}")
        else:
            out.append(f"key_{n}_{i}_{rng.getrandbits(48):012x}")
    return out


def class_name(n: int) -> str:
    return f"{PACKAGE}.p{n // 200}.C{n}"


# --------------------------------------------------------------------------------------------
# Scaling apps through the fixture builder (apktool)
# --------------------------------------------------------------------------------------------


def build_scaling(classes: int, out: Path) -> Path:
    rng = random.Random(classes)
    src = CACHE / f"src-{out.stem}"
    if src.exists():
        import shutil

        shutil.rmtree(src)
    write_apktool_yml(src, apk_name=out.name)
    (src / "AndroidManifest.xml").write_text(MANIFEST, encoding="utf-8")
    for n in range(classes):
        write_smali_class(src, class_name(n), class_strings(rng, n, 6), dex_index=n // CLASSES_PER_DEX + 1)
    build_apk(src, out)
    import shutil

    shutil.rmtree(src)
    return out


# --------------------------------------------------------------------------------------------
# A minimal DEX writer for the 250 MB app
# --------------------------------------------------------------------------------------------


def mutf8(s: str) -> bytes:
    out = bytearray()
    for unit in struct.unpack(
        f"<{len(s.encode('utf-16-le', 'surrogatepass')) // 2}H", s.encode("utf-16-le", "surrogatepass")
    ):
        if unit == 0:
            out += b"\xc0\x80"
        elif unit < 0x80:
            out.append(unit)
        elif unit < 0x800:
            out += bytes([0xC0 | unit >> 6, 0x80 | unit & 0x3F])
        else:
            out += bytes([0xE0 | unit >> 12, 0x80 | unit >> 6 & 0x3F, 0x80 | unit & 0x3F])
    return bytes(out)


def _utf16_key(s: str) -> bytes:
    return s.encode("utf-16-be", "surrogatepass")


def write_dex(classes: Sequence[tuple[str, Sequence[str]]]) -> bytes:
    """A valid DEX (format 035) with one public class per entry, extending java.lang.Object, whose
    ``public static void init()`` loads the given strings in order and returns."""
    descriptors = ["L" + name.replace(".", "/") + ";" for name, _ in classes]
    strings = sorted(
        {"Ljava/lang/Object;", "V", "init", *descriptors, *(s for _, ss in classes for s in ss)},
        key=_utf16_key,
    )
    sidx = {s: i for i, s in enumerate(strings)}
    types = sorted(["Ljava/lang/Object;", "V", *descriptors], key=sidx.__getitem__)
    tidx = {t: i for i, t in enumerate(types)}
    # method_ids sorted by defining type, then name, then proto: one "init" per class
    method_of = {d: i for i, d in enumerate(sorted(descriptors, key=tidx.__getitem__))}

    n_str, n_types, n_methods, n_classes = len(strings), len(types), len(descriptors), len(classes)
    string_ids_off = 0x70
    type_ids_off = string_ids_off + 4 * n_str
    proto_ids_off = type_ids_off + 4 * n_types
    method_ids_off = proto_ids_off + 12
    class_defs_off = method_ids_off + 8 * n_methods
    data_off = class_defs_off + 32 * n_classes

    data = bytearray()
    code_offs = []
    for _, loads in classes:
        code_offs.append(data_off + len(data))
        insns = bytearray()
        for s in loads:
            i = sidx[s]
            insns += struct.pack("<BBH", 0x1A, 0, i) if i <= 0xFFFF else struct.pack("<BBI", 0x1B, 0, i)
        insns += b"\x0e\x00"  # return-void
        data += struct.pack("<HHHHII", 1, 0, 0, 0, 0, len(insns) // 2) + insns
        data += b"\x00" * (-len(data) % 4)
    string_data_off = data_off + len(data)
    string_offs = []
    for s in strings:
        string_offs.append(data_off + len(data))
        data += uleb128(len(s.encode("utf-16-le", "surrogatepass")) // 2) + mutf8(s) + b"\x00"
    class_data_off = data_off + len(data)
    class_data_offs = []
    for desc, code_off in zip(descriptors, code_offs, strict=True):
        class_data_offs.append(data_off + len(data))
        # no fields, one direct method: method_idx_diff, access_flags (public static), code_off
        data += b"\x00\x00\x01\x00" + uleb128(method_of[desc]) + uleb128(0x9) + uleb128(code_off)
    data += b"\x00" * (-len(data) % 4)
    map_off = data_off + len(data)
    sections = [
        (0x0000, 1, 0),
        (0x0001, n_str, string_ids_off),
        (0x0002, n_types, type_ids_off),
        (0x0003, 1, proto_ids_off),
        (0x0005, n_methods, method_ids_off),
        (0x0006, n_classes, class_defs_off),
        (0x2001, n_classes, data_off),
        (0x2002, n_str, string_data_off),
        (0x2000, n_classes, class_data_off),
        (0x1000, 1, map_off),
    ]
    data += struct.pack("<I", len(sections))
    for kind, size, off in sections:
        data += struct.pack("<HHII", kind, 0, size, off)
    file_size = data_off + len(data)

    out = bytearray(0x70)
    out += struct.pack(f"<{n_str}I", *string_offs)
    out += struct.pack(f"<{n_types}I", *(sidx[t] for t in types))
    out += struct.pack("<III", sidx["V"], tidx["V"], 0)  # proto ()V: shorty, return type, no parameters
    init = sidx["init"]
    for desc in sorted(descriptors, key=tidx.__getitem__):
        out += struct.pack("<HHI", tidx[desc], 0, init)
    no_index = 0xFFFFFFFF
    obj = tidx["Ljava/lang/Object;"]
    for desc, cd_off in zip(descriptors, class_data_offs, strict=True):
        out += struct.pack("<8I", tidx[desc], 0x1, obj, 0, no_index, 0, cd_off, 0)
    assert len(out) == data_off
    out += data
    struct.pack_into(
        "<8s4x20x20I",
        out,
        0,
        b"dex\n035\x00",
        file_size,
        0x70,
        0x12345678,
        0,
        0,
        map_off,
        n_str,
        string_ids_off,
        n_types,
        type_ids_off,
        1,
        proto_ids_off,
        0,
        0,
        n_methods,
        method_ids_off,
        n_classes,
        class_defs_off,
        file_size - data_off,
        data_off,
    )
    out[12:32] = hashlib.sha1(out[32:]).digest()
    struct.pack_into("<I", out, 8, zlib.adler32(out[12:]))
    return bytes(out)


def build_multidex(dex_count: int, classes_per_dex: int, out: Path, manifest_from: Path) -> Path:
    with zipfile.ZipFile(manifest_from) as z:
        manifest = z.read("AndroidManifest.xml")
    entries = [("AndroidManifest.xml", manifest, True)]
    for d in range(dex_count):
        rng = random.Random(1000 + d)
        first = d * classes_per_dex
        classes = [(class_name(n), class_strings(rng, n, 13)) for n in range(first, first + classes_per_dex)]
        # each class loads its strings several times, so code is a realistic share of the file
        dex = write_dex([(name, list(ss) * 8) for name, ss in classes])
        entries.append(("classes.dex" if d == 0 else f"classes{d + 1}.dex", dex, False))
    return write_zip(out, entries)


def check_dex_against_androguard(path: Path) -> None:
    """Sanity check of write_dex: androguard parses one generated DEX and agrees with our reader."""
    from androguard.core.dex import DEX
    from loguru import logger

    from audit.static.dex import DexFile

    logger.remove()  # androguard logs every parsed section at DEBUG

    with zipfile.ZipFile(path) as z:
        data = z.read("classes.dex")
    ours = DexFile(data, "classes.dex")
    theirs = DEX(data)
    assert theirs.get_strings() == ours.strings(), "strings differ"
    assert [c.get_name()[1:-1].replace("/", ".") for c in theirs.get_classes()] == ours.class_names()
    print(f"{path.name}: classes.dex parses identically in androguard ({len(ours.strings())} strings)")


# --------------------------------------------------------------------------------------------

INPUTS: dict[str, Callable[[Path], Path]] = {
    "synth-1k": lambda out: build_scaling(1_000, out),
    "synth-10k": lambda out: build_scaling(10_000, out),
    "synth-100k": lambda out: build_scaling(100_000, out),
    "synth-50dex": lambda out: build_multidex(50, 5_000, out, ensure("synth-1k")),
}


def ensure(name: str) -> Path:
    out = CACHE / f"{name}.apk"
    if not out.exists():
        print(f"building {out} …", file=sys.stderr)
        INPUTS[name](out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", choices=[*INPUTS, []], help="inputs to build (default: all)")
    parser.add_argument("--check", action="store_true", help="compare a generated DEX with androguard")
    args = parser.parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(INPUTS):
        path = ensure(name)
        print(f"{path}  {path.stat().st_size / 1e6:.1f} MB")
        if args.check and name == "synth-50dex":
            check_dex_against_androguard(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
