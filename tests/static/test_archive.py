"""Archive: safe names, streaming limits, notes for unreadable entries; and the compiled-resource readers."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from audit.errors import ArchiveError
from audit.static.archive import Archive, EntryError, Limits, is_unsafe_name
from audit.static.manifest import parse_manifest
from audit.static.native import printable_strings
from audit.static.resources import (
    ResourceError,
    arsc_strings,
    network_security_domains,
    parse_axml,
    parse_proto_xml,
    proto_fields,
    read_string_pool,
)
from tests.conftest import FIXTURES

APKS = FIXTURES / "apks"
MIB = 1 << 20


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "unsafe"),
    [
        ("classes.dex", False),
        ("assets/a..b.js", False),
        ("../evil", True),
        ("assets/../../evil", True),
        ("/etc/passwd", True),
        ("C:/windows", True),
        ("assets\\..\\..\\evil", True),
    ],
)
def test_unsafe_names(name: str, unsafe: bool) -> None:
    assert is_unsafe_name(name) is unsafe


def test_reads_in_memory_and_notes_unsafe_names() -> None:
    data = _zip({"classes.dex": b"x" * 100, "../up.txt": b"no", "dir/": b""})
    with Archive.open(data, "t.apk") as a:
        assert a.names() == ["classes.dex"]
        assert a.read(a.entries()[0]) == b"x" * 100
        assert a.notes == ["unsafe entry name '../up.txt' skipped"]


def test_entry_limit_enforced_while_streaming() -> None:
    data = _zip({"assets/big.txt": b"a" * (3 * MIB)})
    with Archive.open(data, "t.apk", Limits(entry=1 * MIB, ratio=10**9)) as a:
        with pytest.raises(ArchiveError, match=r"t\.apk: assets/big\.txt decompresses to more than 1 MiB"):
            a.read(a.entries()[0])


def test_ratio_limit_uses_consumed_input() -> None:
    data = _zip({"assets/zeros.bin": bytes(64 * MIB)})
    with Archive.open(data, "t.apk", Limits(ratio=100, ratio_after=1 * MIB)) as a:
        with pytest.raises(ArchiveError, match="compression ratio over 100:1"):
            a.read(a.entries()[0])
        assert a._read_total < 8 * MIB  # stopped early, not after inflating everything


def test_header_lying_about_size_is_a_note_not_a_crash() -> None:
    raw = bytearray(_zip({"assets/a.txt": b"hello world, " * 100}, zipfile.ZIP_STORED))
    # Corrupt the data: the CRC no longer matches.
    i = raw.find(b"hello")
    raw[i] = ord("j")
    with Archive.open(bytes(raw), "t.apk") as a:
        with pytest.raises(EntryError, match=r"assets/a\.txt: cannot be read"):
            a.read(a.entries()[0])


def test_entry_count_limit() -> None:
    data = _zip({f"assets/{i}.txt": b"" for i in range(20)})
    with pytest.raises(ArchiveError, match="20 entries, more than the 10 allowed"):
        Archive.open(data, "t.apk", Limits(entries=10))


def test_encrypted_flag_ignored_like_android() -> None:
    raw = bytearray(_zip({"assets/a.txt": b"https://x.example.cn/"}))
    # Set the general-purpose "encrypted" bit in the local and central headers, as packers do.
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = raw.find(sig)
        struct.pack_into("<H", raw, i + off, struct.unpack_from("<H", raw, i + off)[0] | 1)
    with Archive.open(bytes(raw), "t.apk") as a:
        assert a.read(a.entries()[0]) == b"https://x.example.cn/"


def test_not_a_zip(tmp_path: Path) -> None:
    p = tmp_path / "x.apk"
    p.write_bytes(b"\x00" * 100)
    with pytest.raises(ArchiveError, match=r"x\.apk: not a zip archive"):
        Archive.open(p, str(p))


# -- compiled resources ----------------------------------------------------------------------


def _messenger(name: str, apk: str = "messenger.apk") -> bytes:
    with zipfile.ZipFile(APKS / apk) as zf:
        return zf.read(name)


def test_binary_manifest() -> None:
    m = parse_manifest(_messenger("AndroidManifest.xml"))
    assert (m.package, m.version_name, m.version_code) == ("com.example.messenger", "3.2.1", "321")
    assert "android.permission.CAMERA" in m.permissions
    assert any(v == "https://gw.messenger-example.cn" for _, v in m.meta_data)


def test_proto_manifest() -> None:
    m = parse_manifest(_messenger("base/manifest/AndroidManifest.xml", "messenger.aab"), proto=True)
    assert (m.package, m.version_name, m.version_code) == ("com.example.messenger", "3.2.1", "321")
    assert len(m.permissions) == 15


def test_network_security_config_both_encodings() -> None:
    binary = network_security_domains(parse_axml(_messenger("res/xml/network_security_config.xml")))
    proto = network_security_domains(
        parse_proto_xml(_messenger("base/res/xml/network_security_config.xml", "messenger.aab"))
    )
    assert sorted(binary) == sorted(proto)
    assert "legacy.messenger-example.cn" in binary


def test_arsc_string_pool() -> None:
    assert "https://www.messenger-example.cn/privacy" in arsc_strings(_messenger("resources.arsc"))


@pytest.mark.parametrize("cut", [4, 12, 40, 200, 600, 2000])
def test_truncated_resources(cut: int) -> None:
    """Cut anywhere: a ResourceError, or the part before the cut (never another exception)."""
    arsc = _messenger("resources.arsc")
    try:
        assert set(arsc_strings(arsc[:cut])) <= set(arsc_strings(arsc))
    except ResourceError:
        assert cut < len(arsc)
    try:
        manifest = parse_manifest(_messenger("AndroidManifest.xml")[:cut])
    except ResourceError:
        return
    assert manifest.package == "com.example.messenger"


def test_string_pool_bad_offsets() -> None:
    with pytest.raises(ResourceError):
        read_string_pool(b"\x01\x00\x1c\x00" + b"\xff" * 24, 0)


def test_proto_reader_rejects_garbage() -> None:
    with pytest.raises(ResourceError):
        list(proto_fields(b"\x0a\xff\xff\xff\xff\x0f"))  # length far past the end
    with pytest.raises(ResourceError):
        list(proto_fields(b"\x0b"))  # wire type 3 (groups)


def test_printable_strings() -> None:
    assert printable_strings(b"\x00\x01abc\x00https://a.example.cn/x\xff\xfeok") == ["https://a.example.cn/x"]


def _streamed_zip(entries: dict[str, bytes]) -> bytes:
    """A zip written to an unseekable stream: sizes and CRCs follow each entry in a data descriptor."""

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.buf += b
            return len(b)

    out = Unseekable()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            with z.open(name, "w") as f:
                f.write(data)
    return bytes(out.buf)


def test_recovery_from_local_headers_with_data_descriptors() -> None:
    entries = {"AndroidManifest.xml": b"m" * 300, "assets/a.json": b'{"u": "https://a.example-cn.cn"}' * 20,
               "classes.dex": bytes(range(256)) * 40}  # fmt: skip
    data = _streamed_zip(entries)
    cut = data[: data.index(b"PK\x01\x02")]  # central directory gone
    with Archive.open(cut, "s.apk") as a:
        assert a.notes and "3 entries recovered from local headers" in a.notes[0]
        assert {i.filename: a.read(i) for i in a.entries()} == entries


def test_recovery_keeps_entries_before_the_cut() -> None:
    entries = {"a.txt": b"alpha" * 100, "b.txt": b"beta" * 1000}
    data = _streamed_zip(entries)
    cut = data[: data.index(b"b.txt") + 40]
    with Archive.open(cut, "s.apk") as a:
        infos = {i.filename: i for i in a.entries()}
        assert a.read(infos["a.txt"]) == entries["a.txt"]
        with pytest.raises(EntryError, match=r"b\.txt: cannot be read \(data cut off\)"):
            a.read(infos["b.txt"])


def test_cut_entries_say_data_cut_off_with_sizes_in_the_header() -> None:
    """A cut entry whose sizes are in its local header (not in a descriptor) reads as cut off too,
    not as whatever the bytes after the cut make zlib say."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", b"alpha" * 100)
        z.writestr("classes.dex", __import__("random").Random(1).randbytes(20_000))  # incompressible
    data = buf.getvalue()
    start = data.index(b"classes.dex")
    for cut_at in (start + 40, start + 300, start + 1000):
        with Archive.open(data[:cut_at], "s.apk") as a:
            infos = {i.filename: i for i in a.entries()}
            assert a.read(infos["a.txt"]) == b"alpha" * 100
            with pytest.raises(EntryError, match=r"classes\.dex: cannot be read \(data cut off\)"):
                a.read(infos["classes.dex"])
