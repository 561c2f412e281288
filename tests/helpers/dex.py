"""DEX files built for the tests: small ones assembled from smali written here (``smali``, else
``apktool``), each once per session (:func:`built`), a patched copy with an unused opcode
(:func:`with_unused_opcode`), and the slow reference reading of a DEX by androguard
(:func:`reference`) that the fast reader (:func:`fast`) must match. Used by the DEX tests and
``benchmarks/static_speed.py``; the ``small_dex``/``jumbo_dex`` fixtures are in
``tests/static/conftest.py``."""

from __future__ import annotations

import functools
import hashlib
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

from audit.static.dex import DexFile, descriptor_to_name

SMALI = shutil.which("smali")
APKTOOL = shutil.which("apktool")

#: Strings planted in the small DEX (only loaded by com.ex.Loader; shared by two classes; loaded by
#: const-string/jumbo; in an inner class; not ASCII) and in the jumbo one (past the 16-bit index).
PAYLOAD_ONLY = "https://payload-only.example.com/"
SHARED_URL = "https://shared.example.com/"
JUMBO_SMALL = "https://jumbo-small.example.org/"
INNER_URL = "https://inner.example.net/path"
NON_ASCII = ["caf\u00e9 \u4e2d\u6587", "emoji \U0001f600 end", "nul\x00inside", "lone \ud800 surrogate"]
JUMBO_BIG = "zz https://jumbo.example.net/"
#: Filler strings in the jumbo DEX: more than 65535, so the last ones need const-string/jumbo.
FILLER_COUNT = 70_000

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
    """The smali classes of the small DEX; ``idx``/``desc_idx`` are planted in com.ex.Payload."""
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
    annotation = (
        f".annotation runtime Lcom/ex/Strings;\n    value = {{\n{filler}\n    }}\n.end annotation\n\n"
    )
    high = [f"f{i:05d}" for i in range(FILLER_COUNT - 10, FILLER_COUNT)]
    return assemble(
        {
            "com/ex/Filler": _class(
                "com/ex/Filler",
                annotation + _returns("low", "f01234", "f00007") + _returns("high", *high, jumbo=True),
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


#: The const-string and const-string/jumbo opcodes.
OP_CONST_STRING = 0x1A
OP_CONST_STRING_JUMBO = 0x1B


def reference(data: bytes) -> tuple[list[str], list[str], dict[int, set[str]]]:
    """strings, class names and string index → loading classes, the slow way."""
    from androguard.core.dex import DEX, InvalidInstruction

    dex = DEX(data)
    classes = [descriptor_to_name(c.get_name()) for c in dex.get_classes()]
    refs: dict[int, set[str]] = {}
    for cls in dex.get_classes():
        name = descriptor_to_name(cls.get_name())
        for method in cls.get_methods():
            try:
                for ins in method.get_instructions():
                    if ins.get_op_value() in (OP_CONST_STRING, OP_CONST_STRING_JUMBO):
                        refs.setdefault(ins.get_ref_kind(), set()).add(name)
            except InvalidInstruction:
                continue  # androguard stops decoding the method at an invalid instruction
    return dex.get_strings(), classes, refs


def fast(data: bytes, name: str) -> tuple[list[str], list[str], dict[int, set[str]]]:
    """The same three answers from our reader (:class:`audit.static.dex.DexFile`)."""
    dex = DexFile(data, name)
    strings = dex.strings()
    refs = dex.string_references(range(len(strings)))
    return strings, dex.class_names(), {i: c for i, c in refs.items() if c}
