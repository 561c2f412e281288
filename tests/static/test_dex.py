"""The fast DEX reader on DEX files assembled from smali written here, plus corrupt/hostile inputs.

The DEX files are built with ``smali`` (the assembler apktool uses) into a temporary directory; the
payload tests plant the byte patterns of ``const-string <wanted index>`` inside switch/array payloads and
wide literals, where a naive byte scan would report them.
"""

from __future__ import annotations

import functools
import hashlib
import random
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import pytest

from audit.errors import DexError
from audit.static.dex import INSTRUCTION_WIDTHS, DexFile, decode_mutf8, descriptor_to_name

SMALI = shutil.which("smali")
APKTOOL = shutil.which("apktool")
needs_assembler = pytest.mark.skipif(SMALI is None and APKTOOL is None, reason="needs smali or apktool")

PAYLOAD_ONLY = "https://payload-only.example.com/"
SHARED_URL = "https://shared.example.com/"
JUMBO_SMALL = "https://jumbo-small.example.org/"
INNER_URL = "https://inner.example.net/path"
NON_ASCII = ["caf\u00e9 \u4e2d\u6587", "emoji \U0001f600 end", "nul\x00inside", "lone \ud800 surrogate"]
JUMBO_BIG = "zz https://jumbo.example.net/"
FILLER_COUNT = 70_000

# --------------------------------------------------------------------------------------------
# Building DEX files from smali
# --------------------------------------------------------------------------------------------

_APKTOOL_YML = """version: 2.7.0
apkFileName: t.apk
isFrameworkApk: false
usesFramework:
  ids:
  - 1
sdkInfo:
  minSdkVersion: '21'
  targetSdkVersion: '30'
versionInfo:
  versionCode: '1'
  versionName: '1.0'
"""
_MANIFEST = '<?xml version="1.0" encoding="utf-8"?>\n<manifest package="com.ex"/>\n'


def assemble(smali: dict[str, str], work: Path) -> bytes:
    """Assemble {"com/ex/A": source, …} into one DEX; return its bytes."""
    src = work / "smali"
    for name, text in smali.items():
        path = src / f"{name}.smali"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    out = work / "classes.dex"
    if SMALI:
        subprocess.run([SMALI, "a", str(src), "-o", str(out)], check=True, capture_output=True, timeout=300)
        return out.read_bytes()
    assert APKTOOL
    (work / "apktool.yml").write_text(_APKTOOL_YML)
    (work / "AndroidManifest.xml").write_text(_MANIFEST)
    apk = work / "out.apk"
    subprocess.run([APKTOOL, "b", str(work), "-o", str(apk)], check=True, capture_output=True, timeout=300)
    import zipfile

    with zipfile.ZipFile(apk) as z:
        return z.read("classes.dex")


def _smali_string(s: str) -> str:
    out = []
    for ch in s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass"):
        o = ord(ch)
        if 0x20 <= o < 0x7F and ch not in '"\\':
            out.append(ch)
        elif o > 0xFFFF:
            hi, lo = divmod(o - 0x10000, 0x400)
            out.append(f"\\u{0xD800 + hi:04x}\\u{0xDC00 + lo:04x}")
        else:
            out.append(f"\\u{o:04x}")
    return '"' + "".join(out) + '"'


def _class(name: str, body: str) -> str:
    return f".class public L{name};\n.super Ljava/lang/Object;\n\n{body}"


def _returns(method: str, *strings: str, jumbo: bool = False) -> str:
    op = "const-string/jumbo" if jumbo else "const-string"
    loads = "".join(f"    {op} v0, {_smali_string(s)}\n" for s in strings)
    return f".method public static {method}()Ljava/lang/String;\n    .registers 1\n{loads}    return-object v0\n.end method\n"


def payload_smali(idx: int, desc_idx: int) -> str:
    """A class whose payloads and literals contain ``1a 00 <idx>`` / ``1b 00 <desc_idx> 00 00`` at even
    offsets but which loads no string at all."""
    key = 0x1A | idx << 16
    jumbo = 0x1B | desc_idx << 16
    return _class(
        "com/ex/Payload",
        f"""
.method public static sw(I)I
    .registers 3
    packed-switch p0, :pswitch_data
    sparse-switch p0, :sswitch_data
    const/4 v0, 0x0
    return v0
    :case0
    const/4 v0, 0x1
    return v0
    :pswitch_data
    .packed-switch {key:#x}
        :case0
        :case0
    .end packed-switch
    :sswitch_data
    .sparse-switch
        {key:#x} -> :case0
        {key + 0x10000:#x} -> :case0
    .end sparse-switch
.end method

.method public static arr()[I
    .registers 2
    const/4 v0, 0x4
    new-array v0, v0, [I
    fill-array-data v0, :array_data
    return-object v0
    :array_data
    .array-data 4
        {key:#x}
        {jumbo:#x}
        0x0
        {key:#x}
    .end array-data
.end method

.method public static wide()J
    .registers 2
    const-wide v0, {key:#x}L
    return-wide v0
.end method
""",
    )


def small_sources(idx: int = 0, desc_idx: int = 0) -> dict[str, str]:
    return {
        "com/ex/A": _class(
            "com/ex/A",
            _returns("url", "https://api.example.com/v1/track")
            + _returns("shared", SHARED_URL)
            + _returns("jumbo", JUMBO_SMALL, jumbo=True)
            + _returns("texts", *NON_ASCII),
        ),
        "com/ex/Outer": _class("com/ex/Outer", _returns("shared", SHARED_URL)),
        "com/ex/Outer$Inner": _class("com/ex/Outer$Inner", _returns("inner", INNER_URL)),
        "com/ex/Loader": _class("com/ex/Loader", _returns("load", PAYLOAD_ONLY)),
        "com/ex/Payload": payload_smali(idx, desc_idx),
        "com/ex/Empty": ".class public interface abstract Lcom/ex/Empty;\n.super Ljava/lang/Object;\n",
    }


def build_small_dex(work: Path) -> bytes:
    """Two passes: the first fixes the string indices, the second plants them in the payloads
    (payload numbers add no strings, so the indices do not move)."""
    first = DexFile(assemble(small_sources(), work / "pass1"), "pass1")
    strings = first.strings()
    data = assemble(
        small_sources(strings.index(PAYLOAD_ONLY), strings.index("Lcom/ex/Payload;")), work / "pass2"
    )
    assert DexFile(data, "pass2").strings() == strings
    return data


def build_jumbo_dex(work: Path) -> bytes:
    """More than 65535 strings, so the last ones can only be loaded by const-string/jumbo. The filler
    strings sit in a class annotation (no code needed to put them in the string table); a few are
    loaded, the high ones by const-string/jumbo."""
    filler = ",\n".join(f'        "f{i:05d}"' for i in range(FILLER_COUNT))
    annotation = f".annotation runtime Lcom/ex/Strings;\n    value = {{\n{filler}\n    }}\n.end annotation\n\n"
    high = [f"f{i:05d}" for i in range(FILLER_COUNT - 10, FILLER_COUNT)]
    return assemble(
        {
            "com/ex/Filler": _class(
                "com/ex/Filler", annotation + _returns("low", "f01234", "f00007") + _returns("high", *high, jumbo=True)
            ),
            "com/ex/Big": _class("com/ex/Big", _returns("big", JUMBO_BIG, jumbo=True)),
        },
        work,
    )


@functools.cache
def built(kind: str) -> bytes:
    """Each DEX is assembled once per test session, whichever test module asks first."""
    with tempfile.TemporaryDirectory(prefix="dex-test-") as tmp:
        return (build_small_dex if kind == "small" else build_jumbo_dex)(Path(tmp))


@pytest.fixture
def small_dex() -> bytes:
    if SMALI is None and APKTOOL is None:
        pytest.skip("needs smali or apktool")
    return built("small")


@pytest.fixture
def jumbo_dex() -> bytes:
    if SMALI is None and APKTOOL is None:
        pytest.skip("needs smali or apktool")
    return built("jumbo")


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"plain", "plain"),
        (b"caf\xc3\xa9", "caf\u00e9"),
        (b"a\xc0\x80b", "a\x00b"),
        (b"\xed\xa0\xbd\xed\xb8\x80", "\U0001f600"),  # surrogate pair as two 3-byte sequences
        (b"x\xed\xa0\x80y", "x\ud800y"),  # lone high surrogate kept
        (b"\xed\xb8\x80\xed\xa0\xbd", "\ude00\ud83d"),  # reversed pair: two lone surrogates
        (b"ok\xffend", "ok\ufffdend"),  # invalid byte
        (b"cut\xe4\xb8", "cut\ufffd\ufffd"),  # truncated 3-byte sequence
        (b"", ""),
    ],
)
def test_decode_mutf8(raw: bytes, text: str) -> None:
    assert decode_mutf8(raw) == text


@pytest.mark.parametrize(
    ("descriptor", "name"),
    [
        ("Lcom/foo/Bar;", "com.foo.Bar"),
        ("Lcom/foo/Bar$Inner;", "com.foo.Bar$Inner"),
        ("LTop;", "Top"),
        ("[Lcom/foo/Bar;", "[Lcom/foo/Bar;"),
        ("I", "I"),
    ],
)
def test_descriptor_to_name(descriptor: str, name: str) -> None:
    assert descriptor_to_name(descriptor) == name


def test_instruction_widths_cover_every_format() -> None:
    assert len(INSTRUCTION_WIDTHS) == 256
    assert INSTRUCTION_WIDTHS[0x1A] == 2 and INSTRUCTION_WIDTHS[0x1B] == 3  # 21c, 31c
    assert INSTRUCTION_WIDTHS[0x18] == 5  # const-wide 51l
    assert INSTRUCTION_WIDTHS[0xFA] == 4 and INSTRUCTION_WIDTHS[0xFB] == 4  # invoke-polymorphic 45cc/4rcc
    assert INSTRUCTION_WIDTHS[0x26] == 3 and INSTRUCTION_WIDTHS[0x2B] == 3  # 31t
    assert INSTRUCTION_WIDTHS[0x3E] == 0 and INSTRUCTION_WIDTHS[0xF9] == 0  # unused: decoding stops
    assert set(INSTRUCTION_WIDTHS) == {0, 1, 2, 3, 4, 5}
    assert sum(1 for w in INSTRUCTION_WIDTHS if w == 0) == 6 + 1 + 2 + 23


# --------------------------------------------------------------------------------------------
# Assembled DEX files
# --------------------------------------------------------------------------------------------


def test_strings_decoded_and_aligned(small_dex: bytes) -> None:
    dex = DexFile(small_dex, "classes.dex")
    strings = dex.strings()
    for s in [SHARED_URL, JUMBO_SMALL, INNER_URL, PAYLOAD_ONLY, *NON_ASCII, "Lcom/ex/Outer$Inner;"]:
        assert s in strings
    # string_ids are sorted by UTF-16 code units (DEX format rule), so decoding kept the order
    keys = [s.encode("utf-16-be", "surrogatepass") for s in strings]
    assert keys == sorted(keys)
    assert len(strings) == struct.unpack_from("<I", small_dex, 56)[0]


def test_class_names(small_dex: bytes) -> None:
    names = DexFile(small_dex, "classes.dex").class_names()
    assert sorted(names) == sorted(
        ["com.ex.A", "com.ex.Outer", "com.ex.Outer$Inner", "com.ex.Loader", "com.ex.Payload", "com.ex.Empty"]
    )


def test_string_references(small_dex: bytes) -> None:
    dex = DexFile(small_dex, "classes.dex")
    strings = dex.strings()
    idx = {s: strings.index(s) for s in [SHARED_URL, JUMBO_SMALL, INNER_URL, PAYLOAD_ONLY, *NON_ASCII]}
    desc = strings.index("Lcom/ex/Payload;")
    refs = dex.string_references([*idx.values(), desc, 10**9, -1])
    assert refs[idx[SHARED_URL]] == {"com.ex.A", "com.ex.Outer"}
    assert refs[idx[JUMBO_SMALL]] == {"com.ex.A"}  # const-string/jumbo with a small index
    assert refs[idx[INNER_URL]] == {"com.ex.Outer$Inner"}
    for s in NON_ASCII:
        assert refs[idx[s]] == {"com.ex.A"}
    # planted in payloads and a wide literal of com.ex.Payload, loaded only by com.ex.Loader
    assert refs[idx[PAYLOAD_ONLY]] == {"com.ex.Loader"}
    # a type descriptor: planted as a jumbo pattern in a payload, never loaded
    assert refs[desc] == set()
    assert set(refs) == {*idx.values(), desc}  # out-of-range indices are ignored


def test_payload_patterns_are_really_in_the_bytes(small_dex: bytes) -> None:
    """Guard for the test above: the planted patterns exist, so the reader had to reject them."""
    strings = DexFile(small_dex, "classes.dex").strings()
    pattern = bytes([0x1A, 0x00]) + struct.pack("<H", strings.index(PAYLOAD_ONLY))
    hits = [i for i in range(0, len(small_dex) - 3, 2) if small_dex[i : i + 4] == pattern]
    assert len(hits) >= 6  # packed key, 2 sparse keys, 2 array values, wide literal (+ the real load)


def with_unused_opcode(dex: bytes) -> tuple[bytes, int]:
    """``dex`` with com.ex.A.texts()'s first const-string replaced by an unused opcode (0x3e) and a
    nop; returns it and the index of a string only the rest of texts() loads."""
    strings = DexFile(dex, "x").strings()
    first = bytes([0x1A, 0x00]) + struct.pack("<H", strings.index(NON_ASCII[0]))
    pos = next(i for i in range(0, len(dex), 2) if dex[i : i + 4] == first)
    patched = bytearray(dex[:pos] + b"\x3e\x00\x00\x00" + dex[pos + 4 :])
    patched[12:32] = hashlib.sha1(patched[32:]).digest()
    struct.pack_into("<I", patched, 8, zlib.adler32(patched[12:]))
    return bytes(patched), strings.index(NON_ASCII[1])


def test_unused_opcode_ends_the_method(small_dex: bytes) -> None:
    """The verifier rejects a method with an unused opcode; its later loads do not count (as androguard)."""
    patched, later = with_unused_opcode(small_dex)
    refs = DexFile(patched, "patched.dex").string_references([later])
    assert refs[later] == set()
    assert DexFile(small_dex, "orig.dex").string_references([later])[later] == {"com.ex.A"}


def test_jumbo_index_beyond_16_bits(jumbo_dex: bytes) -> None:
    dex = DexFile(jumbo_dex, "classes.dex")
    strings = dex.strings()
    assert len(strings) > 0x10000
    big = strings.index(JUMBO_BIG)
    assert big > 0xFFFF
    filler = strings.index("f01234")
    high = strings.index(f"f{FILLER_COUNT - 1:05d}")
    unloaded = strings.index("f01235")
    refs = dex.string_references([big, filler, high, unloaded, big & 0xFFFF])
    assert refs[big] == {"com.ex.Big"}
    assert refs[filler] == {"com.ex.Filler"}
    assert high > 0xFFFF and refs[high] == {"com.ex.Filler"}
    assert refs[unloaded] == set()
    assert dex.class_names() == ["com.ex.Big", "com.ex.Filler"] or sorted(dex.class_names()) == [
        "com.ex.Big",
        "com.ex.Filler",
    ]


def test_memoryview_and_trailing_bytes(small_dex: bytes) -> None:
    a = DexFile(small_dex, "a.dex")
    b = DexFile(memoryview(small_dex + b"\x00" * 64), "b.dex")
    assert a.strings() == b.strings()
    assert a.class_names() == b.class_names()


# --------------------------------------------------------------------------------------------
# Corrupt and hostile input
# --------------------------------------------------------------------------------------------


def _patched(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + struct.pack("<I", value) + data[offset + 4 :]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: b"dey\n035\x00" + d[8:], "bad magic"),
        (lambda d: d[:8].replace(b"035", b"034") + d[8:], "bad magic"),
        (lambda d: d[:0x50], "truncated"),
        (lambda d: d[: len(d) // 2], "truncated"),
        (lambda d: b"", "truncated"),
        (lambda d: _patched(d, 40, 0x78563412), "endian"),
        (lambda d: _patched(d, 36, 0x10), "header_size"),
        (lambda d: _patched(d, 60, 0xFFFFFF00), "string_ids"),  # string_ids_off out of range
        (lambda d: _patched(d, 56, 0xFFFFFFFF), "string_ids"),  # huge string count
        (lambda d: _patched(d, 96, 0x7FFFFFFF), "class_defs"),  # huge class count
        (lambda d: _patched(d, 108, 0xFFFFFFF0), "data"),
        (lambda d: _patched(d, 52, len(d) + 100), "map_off"),
    ],
)
def test_corrupt_header(small_dex: bytes, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    with pytest.raises(DexError) as info:
        DexFile(mutate(small_dex), "evil.dex")
    text = str(info.value)
    assert text.startswith("evil.dex: corrupt DEX header (") and message in text
    assert "\n" not in text
    assert time.monotonic() - start < 5  # generous: guards against a hang, not a timing claim


def test_corrupt_string_offset(small_dex: bytes) -> None:
    string_ids_off = struct.unpack_from("<I", small_dex, 60)[0]
    dex = DexFile(_patched(small_dex, string_ids_off, len(small_dex) - 1), "evil.dex")  # no NUL after it
    with pytest.raises(DexError, match="evil.dex: "):
        dex.strings()


def test_corrupt_class_def_type(small_dex: bytes) -> None:
    class_defs_off = struct.unpack_from("<I", small_dex, 100)[0]
    dex = DexFile(_patched(small_dex, class_defs_off, 0xFFFF), "evil.dex")
    with pytest.raises(DexError, match="evil.dex: corrupt class_defs"):
        dex.class_names()


def test_overlapping_class_data_is_bounded(small_dex: bytes) -> None:
    """Every class pointing at one class_data with absurd member counts: an error, not a long walk."""
    class_defs_off, n = struct.unpack_from("<I", small_dex, 100)[0], struct.unpack_from("<I", small_dex, 96)[0]
    data = bytearray(small_dex)
    class_data = len(data) - 8
    data[class_data:] = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0])
    for i in range(n):
        struct.pack_into("<I", data, class_defs_off + 32 * i + 24, class_data)
    dex = DexFile(bytes(data), "evil.dex")
    with pytest.raises(DexError, match="evil.dex: corrupt class_data"):
        dex.string_references(range(len(dex.strings())))


def test_random_corruption_never_escapes(small_dex: bytes) -> None:
    """Flip bytes after the header: every outcome is a result or a DexError, never another exception."""
    rng = random.Random(6)
    wanted = range(len(DexFile(small_dex, "ok").strings()))
    for _ in range(300):
        data = bytearray(small_dex)
        for _ in range(rng.randint(1, 12)):
            data[rng.randrange(0x38, len(data))] = rng.randrange(256)
        try:
            dex = DexFile(bytes(data), "fuzz.dex")
            dex.strings()
            dex.class_names()
            dex.string_references(wanted)
        except DexError as e:
            assert str(e).startswith("fuzz.dex: ")
