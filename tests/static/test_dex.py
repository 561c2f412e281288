"""The fast DEX reader on DEX files assembled from smali (``tests/helpers/dex.py``, fixtures
``small_dex`` and ``jumbo_dex`` in ``tests/static/conftest.py``), plus corrupt/hostile inputs.

The DEX files are built with ``smali`` (the assembler apktool uses) into a temporary directory; the
payload tests plant the byte patterns of ``const-string <wanted index>`` inside switch/array payloads and
wide literals, where a naive byte scan would report them.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Iterator

import pytest

from audit.errors import DexError
from audit.static.dex import INSTRUCTION_WIDTHS, DexFile, decode_mutf8, descriptor_to_name
from tests.helpers.dex import (
    FILLER_COUNT,
    INNER_URL,
    JUMBO_BIG,
    JUMBO_SMALL,
    NON_ASCII,
    PAYLOAD_ONLY,
    SHARED_URL,
    with_unused_opcode,
)

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
    class_defs_off, n = (
        struct.unpack_from("<I", small_dex, 100)[0],
        struct.unpack_from("<I", small_dex, 96)[0],
    )
    data = bytearray(small_dex)
    class_data = len(data) - 8
    data[class_data:] = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0])
    for i in range(n):
        struct.pack_into("<I", data, class_defs_off + 32 * i + 24, class_data)
    dex = DexFile(bytes(data), "evil.dex")
    with pytest.raises(DexError, match="evil.dex: corrupt class_data"):
        dex.string_references(range(len(dex.strings())))


def _mutants(data: bytes, *, seed: int, start: int, most: int, count: int = 300) -> Iterator[bytes]:
    """``count`` copies of ``data`` with 1 to ``most`` random bytes from ``start`` on replaced."""
    rng = random.Random(seed)
    for _ in range(count):
        d = bytearray(data)
        for _ in range(rng.randint(1, most)):
            d[rng.randrange(start, len(d))] = rng.randrange(256)
        yield bytes(d)


def test_random_corruption_never_escapes(small_dex: bytes) -> None:
    """Flip bytes after the header: every outcome is a result or a DexError, never another exception."""
    wanted = range(len(DexFile(small_dex, "ok").strings()))
    for data in _mutants(small_dex, seed=6, start=0x38, most=12):
        try:
            dex = DexFile(data, "fuzz.dex")
            dex.strings()
            dex.class_names()
            dex.string_references(wanted)
        except DexError as e:
            assert str(e).startswith("fuzz.dex: ")


def _gaps_dex() -> bytes:
    import zipfile
    from pathlib import Path

    with zipfile.ZipFile(Path(__file__).parents[1] / "fixtures" / "labelled" / "gaps.apk") as z:
        return z.read("classes.dex")


def test_static_value_loaders_follow_sget_object() -> None:
    """``static String SERVER_IP = "…"`` lives in static_values (no const-string): the methods that
    read the field with sget-object are its loaders (tests/fixtures/labelled.py, app ``gaps``)."""
    dex = DexFile(_gaps_dex(), "classes.dex")
    strings = dex.strings()
    wanted = [strings.index(s) for s in ("100.24.77.5", "backup.gaps-example.com", "2.9.0.4")]
    assert not any(dex.string_loaders(wanted).values())  # no code loads them by const-string
    loaders = dex.static_value_loaders(wanted)
    classes = {strings[i]: {name for _, name in owners} for i, owners in loaders.items()}
    assert classes == {
        "100.24.77.5": {"com.example.gaps.Uplink"},
        "backup.gaps-example.com": {"com.example.gaps.Uplink"},
        "2.9.0.4": {"com.example.gaps.About"},
    }
    # a string loaded by const-string, held by no static field
    assert dex.static_value_loaders([strings.index("https://api.gaps-example.com/")]) == {}


def test_static_value_loaders_on_damaged_dex() -> None:
    """Garbled class_data and static_values give fewer loaders or a DexError, never another error."""
    for data in _mutants(_gaps_dex(), seed=11, start=0x70, most=6):
        try:
            dex = DexFile(data, "x.dex")
            n = len(dex.strings())
            dex.static_value_loaders(range(0, n, max(1, n // 50)))
        except DexError:
            pass
