"""Hostile inputs (tests/fixtures/hostile/README.md): a one-line error naming the file and the problem,
or a partial result whose ``errors`` say what was skipped; never a traceback, hang or huge allocation."""

from __future__ import annotations

import io
import json
import os
import random
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from audit.errors import ArchiveError, DexError, InputError
from audit.models import ScanResult
from audit.static.archive import Limits
from audit.static.dex import DexFile
from audit.static.resources import parse_axml, read_string_pool
from audit.static.scanner import _proto_strings, scan_path
from audit.static.signatures import SignatureDb, load_signatures
from tests.conftest import FIXTURES

HOSTILE = FIXTURES / "hostile"
MIB = 1 << 20


@pytest.fixture(scope="module")
def sigs() -> SignatureDb:
    return load_signatures()


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("not_a_zip.apk", ArchiveError, "not_a_zip.apk: not a zip archive"),
        ("empty.apk", InputError, "empty.apk: empty file"),
        (
            "zipbomb.apk",
            ArchiveError,
            "zipbomb.apk: classes.dex has a compression ratio over 200:1 (zip bomb?)",
        ),
        ("zipbomb_total.apk", ArchiveError, "zipbomb_total.apk: assets/chunk00.js has a compression ratio"),
        (
            "nested.apks",
            ArchiveError,
            "nested.apks: no APK inside the bundle (nested bundle inner.apks not opened",
        ),
        ("corrupt.dex", DexError, "corrupt.dex: not a DEX file (bad magic"),
    ],
)
def test_fatal(name: str, error: type[Exception], message: str, sigs: SignatureDb) -> None:
    with pytest.raises(error) as info:
        scan_path(HOSTILE / name, signatures=sigs)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith(str(HOSTILE / name))


def test_truncated_apk_gives_a_partial_result(sigs: SignatureDb) -> None:
    """The first half of messenger.apk: the manifest and assets before the cut are recovered from their
    local headers; the DEX cut in the middle is a note."""
    result = scan_path(HOSTILE / "truncated.apk", signatures=sigs)
    assert result.app.package == "com.example.messenger" and result.app.version_name == "3.2.1"
    assert "android.permission.INTERNET" in result.permissions
    assert result.errors[0].startswith(
        "truncated or corrupt zip archive (no readable central directory): 6 entries"
    )
    assert "classes.dex: cannot be read (data cut off)" in result.errors
    values = {e.value for e in result.endpoints}
    assert {"https://config.messenger-example.cn/v1", "wss://im.messenger-example.cn/ws"} <= values
    assert all(s.kind in ("asset", "manifest") for e in result.endpoints for s in e.sources)


def test_zip_cut_before_any_entry_is_fatal(tmp_path: Path, sigs: SignatureDb) -> None:
    p = tmp_path / "cut.apk"
    p.write_bytes((HOSTILE / "truncated.apk").read_bytes()[:20])
    with pytest.raises(ArchiveError, match=r"cut\.apk: truncated or corrupt zip archive"):
        scan_path(p, signatures=sigs)


def test_total_limit_on_its_own(sigs: SignatureDb) -> None:
    limits = Limits(ratio=10**6, total=48 * MIB)
    with pytest.raises(ArchiveError, match=r"zipbomb_total\.apk: more than 48 MiB decompressed in total"):
        scan_path(HOSTILE / "zipbomb_total.apk", signatures=sigs, limits=limits)


def test_entry_limit_on_its_own(sigs: SignatureDb) -> None:
    limits = Limits(ratio=10**6, dex=16 * MIB)
    with pytest.raises(ArchiveError, match=r"zipbomb\.apk: classes\.dex decompresses to more than 16 MiB"):
        scan_path(HOSTILE / "zipbomb.apk", signatures=sigs, limits=limits)


def test_traversal_entries_skipped(sigs: SignatureDb) -> None:
    result = scan_path(HOSTILE / "traversal.apk", signatures=sigs)
    assert result.app.package == "com.example.messenger"
    for name in ("../../evil.txt", "/abs/path", "assets/../../../evil2.txt"):
        assert f"unsafe entry name {name!r} skipped" in result.errors
    assert not any("traversal.evil" in e.value for e in result.endpoints)
    assert any(e.value == "https://graph.facebook.com/v16.0" for e in result.endpoints)


def test_corrupt_dex_is_a_partial_result(sigs: SignatureDb) -> None:
    result = scan_path(HOSTILE / "corrupt_dex.apk", signatures=sigs)
    assert result.app.package == "com.example.messenger"
    assert "android.permission.INTERNET" in result.permissions
    assert len(result.errors) == 1 and result.errors[0].startswith("classes.dex: corrupt DEX")
    assert all(s.kind != "dex" for e in result.endpoints for s in e.sources)


def test_garbled_manifest_is_a_partial_result(sigs: SignatureDb) -> None:
    result = scan_path(HOSTILE / "garbled_manifest.apk", signatures=sigs)
    assert result.app.package is None
    assert result.errors == ("AndroidManifest.xml: garbled manifest (not a binary XML file)",)
    assert any(e.value == "https://app-measurement.com/a" for e in result.endpoints)


def test_missing_manifest_is_a_partial_result(sigs: SignatureDb) -> None:
    result = scan_path(HOSTILE / "missing_manifest.apk", signatures=sigs)
    assert result.app.package is None and result.permissions == ()
    assert "AndroidManifest.xml missing (no package name or permissions)" in result.errors
    assert any(e.startswith("resources.arsc: cannot be parsed") for e in result.errors)
    assert len(result.endpoints) > 10


def test_directory_and_missing_path(tmp_path: Path, sigs: SignatureDb) -> None:
    with pytest.raises(InputError, match="is a directory"):
        scan_path(HOSTILE, signatures=sigs)
    with pytest.raises(InputError, match=r"nope\.apk: no such file"):
        scan_path(tmp_path / "nope.apk", signatures=sigs)


def test_unknown_content(tmp_path: Path, sigs: SignatureDb) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello https://example.org\n")
    with pytest.raises(InputError, match=r"notes\.txt: not an APK, app bundle or DEX file"):
        scan_path(p, signatures=sigs)


@pytest.mark.parametrize("cut", [8, 40, 0x70, 400])
def test_truncated_bare_dex(tmp_path: Path, cut: int, sigs: SignatureDb) -> None:
    p = tmp_path / "cut.dex"
    p.write_bytes((FIXTURES / "apks" / "messenger.dex").read_bytes()[:cut])
    with pytest.raises(DexError) as info:
        scan_path(p, signatures=sigs)
    assert str(info.value).startswith(f"{p}: ")


# -- found by benchmarks/fuzz_static.py: each was a traceback (or a hang) before ------------------------


def _apk_with(patch: Callable[[bytearray], None], name: str = "obfuscated.apk") -> bytes:
    data = bytearray((FIXTURES / "apks" / name).read_bytes())
    patch(data)
    return bytes(data)


def _set_method(method: int) -> Callable[[bytearray], None]:
    """Claim ``method`` for the first entry (AndroidManifest.xml), in its local and central headers."""

    def patch(data: bytearray) -> None:
        struct.pack_into("<H", data, data.find(b"PK\x03\x04") + 8, method)
        struct.pack_into("<H", data, data.find(b"PK\x01\x02") + 10, method)

    return patch


def _scan_bytes(tmp_path: Path, data: bytes, sigs: SignatureDb, name: str = "fuzz.apk") -> ScanResult:
    p = tmp_path / name
    p.write_bytes(data)
    return scan_path(p, signatures=sigs)


@pytest.mark.parametrize(
    ("method", "reason"),
    [
        (12, "Invalid data stream"),  # bzip2 over deflate data: OSError from bz2
        (14, "Invalid or unsupported options"),  # LZMA with bad properties: lzma.LZMAError
    ],
)
def test_entry_with_undecodable_method_is_a_note(
    tmp_path: Path, sigs: SignatureDb, method: int, reason: str
) -> None:
    patch = _set_method(method)

    def lzma_props(data: bytearray) -> None:
        patch(data)
        start = data.find(b"PK\x03\x04")
        name_len, extra_len = struct.unpack_from("<HH", data, start + 26)
        body = start + 30 + name_len + extra_len
        data[body : body + 9] = b"\x09\x14\x05\x00\xff\xff\xff\xff\xff"  # lc/lp/pb byte 0xff: invalid

    result = _scan_bytes(tmp_path, _apk_with(lzma_props if method == 14 else patch), sigs)
    assert f"AndroidManifest.xml: cannot be read ({reason})" in result.errors
    assert result.app.package is None and any(s.kind == "dex" for e in result.endpoints for s in e.sources)


def test_central_directory_offset_past_the_entries(tmp_path: Path, sigs: SignatureDb) -> None:
    """An EOCD central-directory offset beyond the real one moves every local header before the
    start of the file (zipfile adds the difference): seek() failed with EINVAL."""

    def patch(data: bytearray) -> None:
        struct.pack_into("<I", data, data.rfind(b"PK\x05\x06") + 16, 0xFFFFFFF0)

    result = _scan_bytes(tmp_path, _apk_with(patch), sigs)
    assert "classes.dex: cannot be read (local header offset before the file)" in result.errors
    assert len(result.errors) == 3 and result.endpoints == ()


def test_version_needed_above_what_zipfile_knows(tmp_path: Path, sigs: SignatureDb) -> None:
    """zipfile refuses "version needed to extract" above 6.3 (NotImplementedError); Android ignores it.
    The entries are recovered from their local headers, whose version field is not copied either."""

    def patch(data: bytearray) -> None:
        for sig, off in ((b"PK\x03\x04", 4), (b"PK\x01\x02", 6)):
            i = data.find(sig)
            while i >= 0:
                struct.pack_into("<H", data, i + off, 0xFF)
                i = data.find(sig, i + 4)

    result = _scan_bytes(tmp_path, _apk_with(patch), sigs)
    assert result.errors[0].startswith(
        "truncated or corrupt zip archive (no readable central directory): 3 entries"
    )
    assert result.app.package is not None and result.endpoints


def test_entry_with_an_empty_name(tmp_path: Path, sigs: SignatureDb) -> None:
    """A central directory name length of 0: ZipInfo.is_dir() raised IndexError."""
    buf = io.BytesIO()
    with zipfile.ZipFile(FIXTURES / "apks" / "obfuscated.apk") as src, zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        out.writestr("x", b"data")
        out.filelist[-1].filename = ""  # written with its name, listed without one
    result = _scan_bytes(tmp_path, buf.getvalue(), sigs)
    assert result.errors == ("entry with an empty name skipped",)
    assert result.app.package is not None


def test_entry_name_flagged_utf8_that_is_not(tmp_path: Path, sigs: SignatureDb) -> None:
    """zipfile refuses the whole central directory over one name flagged UTF-8 (bit 11) that is not
    valid UTF-8, which Android does not check: one such entry hid the whole app. Now every entry is
    read from its local header and only that one fails."""
    buf = io.BytesIO()
    with zipfile.ZipFile(FIXTURES / "apks" / "obfuscated.apk") as src, zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        out.writestr("assets/caf\u00e9.txt", b"https://x.example-cn.cn/a")  # flagged UTF-8
    data = buf.getvalue().replace("caf\u00e9".encode(), b"caf\xff\xfe")  # local and central name
    result = _scan_bytes(tmp_path, data, sigs)
    assert result.errors[0] == (
        "central directory has an entry name flagged UTF-8 that is not: 4 entries read from local headers instead"
    )
    assert result.errors[1].startswith("assets/caf\xa0\u25a0.txt: cannot be read")
    assert result.app.package == "com.example.obfuscated" and result.endpoints


def run_bounded(code: str, *args: str, mem_mib: int = 512, timeout: float = 60) -> str:
    """Run ``code`` in a child Python with ``mem_mib`` MiB of address space above its own size after
    importing the scanner, and a time limit: how benchmarks/fuzz_static.py checks "no hang, no memory
    blow-up", without risking this process. Returns stdout; a traceback fails the test."""
    prelude = (
        "import json, resource, sys\n"
        "from audit.static.scanner import scan_path\n"
        "vm = int(next(l for l in open('/proc/self/status') if l.startswith('VmSize')).split()[1]) * 1024\n"
        f"cap = vm + ({mem_mib} << 20)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (cap, cap))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", prelude + code, *args], capture_output=True, text=True, timeout=timeout,
        cwd=Path(__file__).resolve().parents[2], env={**os.environ, "AUDIT_NO_FORK": "1"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


SCAN_JSON = (
    "r = scan_path(sys.argv[1])\n"
    "print(json.dumps({'errors': r.errors, 'package': r.app.package, 'permissions': len(r.permissions),"
    " 'endpoints': [e.value for e in r.endpoints]}))\n"
)


def test_recovery_reads_only_the_file() -> None:
    """Recovering a truncated zip read it with read(1 GiB + 1), which allocates the whole buffer up
    front: a MemoryError under an address-space limit (ulimit -v)."""
    out = json.loads(run_bounded(SCAN_JSON, str(HOSTILE / "truncated.apk"), mem_mib=384))
    assert out["errors"][0].startswith("truncated or corrupt zip archive (no readable central directory)")


# -- found in review while writing the fuzzer (its mutations rarely build them): quadratic time or
# memory growing far beyond the input. Each runs bounded, as the fuzzer runs inputs.

# Compiled XML (AOSP ResourceTypes.h), just enough to build hostile manifests and res/xml files.


def _pool(strings: list[str], offsets: list[int] | None = None) -> bytes:
    """A UTF-8 string pool chunk; ``offsets`` overrides where each string id points."""
    data = bytearray()
    own = []
    for text in strings:
        raw = text.encode()
        own.append(len(data))
        for n in (len(text), len(raw)):
            data += bytes([n]) if n < 0x80 else bytes([0x80 | n >> 8, n & 0xFF])
        data += raw + b"\0"
    data += bytes(-len(data) % 4)
    ids = own if offsets is None else offsets
    body = struct.pack(f"<{len(ids)}I", *ids) + data
    return struct.pack("<HHI5I", 0x0001, 28, 28 + len(body), len(ids), 0, 0x100, 28 + 4 * len(ids), 0) + body


def _start(name: int, attrs: Sequence[tuple[int, int]] = ()) -> bytes:
    """A start tag; ``attrs`` are (name string id, string value id)."""
    body = struct.pack("<IIIIHHHHHH", 1, 0xFFFFFFFF, 0xFFFFFFFF, name, 20, 20, len(attrs), 0, 0, 0)
    body += b"".join(struct.pack("<IIIHBBI", 0xFFFFFFFF, n, v, 8, 0, 3, v) for n, v in attrs)
    return struct.pack("<HHI", 0x0102, 16, 8 + len(body)) + body


def _cdata(idx: int) -> bytes:
    return struct.pack("<HHIIIIHBBI", 0x0104, 16, 28, 1, 0xFFFFFFFF, idx, 8, 0, 3, 0)


def _xml(*chunks: bytes) -> bytes:
    body = b"".join(chunks)
    return struct.pack("<HHI", 0x0003, 8, 8 + len(body)) + body


def _apk(tmp_path: Path, entries: dict[str, bytes], name: str = "hostile.apk") -> Path:
    p = tmp_path / name
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry, data in entries.items():
            zf.writestr(entry, data)
    return p


LONG_URL = "https://a.example-cn.cn/" + "x" * 30_000  # one long pool string, referenced many times


def test_string_ids_sharing_one_string(tmp_path: Path) -> None:
    """60,000 string ids pointing at one 30,000-character string (a 0.3 MB resources.arsc): each was
    decoded on its own, 1.8 GB; now they share it. Ids pointing into each other's text (overlap, which
    a valid pool never has) are refused once they decode more text than the pool holds."""
    shared = _pool([LONG_URL], offsets=[0] * 60_000)
    overlapping = _pool([LONG_URL], offsets=list(range(0, 120_000, 2)))
    arsc = [struct.pack("<HHII", 0x0002, 12, 12 + len(pool), 0) + pool for pool in (shared, overlapping)]
    out = json.loads(run_bounded(SCAN_JSON, str(_apk(tmp_path, {"resources.arsc": arsc[0]}))))
    assert LONG_URL in out["endpoints"]
    out = json.loads(run_bounded(SCAN_JSON, str(_apk(tmp_path, {"resources.arsc": arsc[1]}))))
    assert (
        "resources.arsc: cannot be parsed (string pool strings overlap (more text than the pool holds))"
        in out["errors"]
    )
    strings = read_string_pool(shared, 0)
    assert len(strings) == 60_000 and all(s is strings[0] for s in strings)


def test_repeated_text_chunks(tmp_path: Path) -> None:
    """4,000 CDATA chunks in one element, each repeating a 30,000-character string (0.2 MB): the text was
    re-joined per chunk, minutes and 120 M characters; now the parts are joined once, within a budget."""
    pool = _pool(["network-security-config", LONG_URL, "a", "b"])
    xml = _xml(pool, _start(0), *[_cdata(1)] * 4_000)
    out = json.loads(run_bounded(SCAN_JSON, str(_apk(tmp_path, {"res/xml/n.xml": xml})), timeout=30))
    assert (
        "res/xml/n.xml: cannot be parsed (XML text longer than the file (repeated text chunks))"
        in out["errors"]
    )
    (element,) = parse_axml(_xml(pool, _start(0), _cdata(2), _cdata(3), _cdata(2)))
    assert element.text == "aba"


def test_one_string_in_many_attributes(tmp_path: Path) -> None:
    """A res/xml file (not a network security config) with 100,000 attributes all holding one
    30,000-character string: the scanner joined every attribute value, 3 GB; now each distinct value once."""
    names = [f"n{i}" for i in range(50)]
    pool = _pool(["network-security-config", "item", LONG_URL, *names])
    element = _start(1, [(3 + i, 2) for i in range(50)])
    xml = _xml(pool, _start(1), *[element] * 2_000)
    out = json.loads(run_bounded(SCAN_JSON, str(_apk(tmp_path, {"res/xml/x.xml": xml})), mem_mib=768))
    assert out["endpoints"] == [LONG_URL]


def test_many_distinct_permissions(tmp_path: Path) -> None:
    """A manifest requesting 100,000 distinct permissions (6 MB): deduplicating them in a list was
    quadratic, minutes; now a dict. Order and uniqueness are unchanged."""
    n = 100_000
    perms = [f"p{i}" for i in range(n)]
    pool = _pool(["manifest", "package", "com.x", "uses-permission", "name", *perms])
    uses = [_start(3, [(4, 5 + i)]) for i in range(n)]
    xml = _xml(pool, _start(0, [(1, 2)]), *uses, _start(3, [(4, 5)]))
    out = json.loads(run_bounded(SCAN_JSON, str(_apk(tmp_path, {"AndroidManifest.xml": xml})), timeout=30))
    assert out["package"] == "com.x" and out["permissions"] == n


def test_class_in_a_package_100000_levels_deep() -> None:
    """A class name ``a.a.a.….A`` 100,000 packages deep (a 200 KB DEX string): every parent package was
    kept for the host-vs-code check (20 GB) and walked for the SDK prefix lookup (quadratic); now only
    parents short enough to be a host name (253) or a signature prefix are."""
    code = (
        "from audit.static.endpoints import package_names\n"
        "from audit.static.signatures import load_signatures\n"
        "deep = 'a.' * 100_000 + 'A'\n"
        "names = package_names([deep, 'com.x.Y'])\n"
        "sigs = load_signatures()\n"
        "hit = sigs.match_class('com.facebook.' + deep)\n"
        "print(json.dumps([len(names), max(map(len, names - {deep.lower()})), sigs.match_class(deep), hit[1]]))\n"
    )
    count, longest, miss, prefix = json.loads(run_bounded(code, timeout=30))
    assert count == 131 and longest == 253 and miss is None and prefix == "com.facebook"


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    n, length = len(payload), bytearray()
    while n >= 0x80:
        length.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([field << 3 | 2, *length, n]) + payload


def test_protobuf_nested_deep_in_an_app_bundle(tmp_path: Path) -> None:
    """An app bundle's res/xml file and resources.pb nested 60 levels around 8 MiB: every level held its
    own copy of the rest (1 GB, seconds); the protobuf fields are now views of the one input."""
    filler = random.Random(1).randbytes(8 << 20)  # incompressible: under the 200:1 ratio limit
    node = _ld(2, filler)  # XmlNode text
    for _ in range(60):
        node = _ld(1, _ld(3, b"e") + _ld(5, node))  # XmlNode { element { name, child } }
    table = filler
    for _ in range(40):
        table = _ld(1, table)
    with zipfile.ZipFile(FIXTURES / "apks" / "messenger.aab") as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist()}
    entries.update({"base/res/xml/deep.xml": node, "base/resources.pb": table})
    out = json.loads(run_bounded(SCAN_JSON, str(_apk(tmp_path, entries, "deep.aab")), mem_mib=384))
    assert out["package"] == "com.example.messenger" and not out["errors"]


def test_printable_protobuf_nesting_keeps_bounded_text() -> None:
    """A field that is printable text and also parses as a message is kept and walked; nested in
    itself level after level, the same bytes would be kept once per level. At most twice the input."""
    data = b"abcdefghijklmnopqrstuvwxyz0123456789"
    for _ in range(30):
        data = b"*" + bytes([len(data)]) + data  # field 5, wire type 2; every byte printable
    strings = _proto_strings(data)
    assert strings[0] == data[2:].decode() and sum(map(len, strings)) <= 2 * len(data)


def test_lone_surrogates_in_class_names_become_replacement_characters(
    tmp_path: Path, sigs: SignatureDb
) -> None:
    """MUTF-8 encodes lone surrogates, and DexFile keeps them; a class name holding one reached the
    JSON/CSV output and the case file, where UTF-8 encoding failed with a traceback."""
    data = bytearray((FIXTURES / "apks" / "messenger.dex").read_bytes())
    dex = DexFile(bytes(data), "classes.dex")
    strings = dex.strings()
    for name in dex.class_names():
        off = dex._offsets()[strings.index("L" + name.replace(".", "/") + ";")]
        data[off + 2 : off + 5] = b"\xed\xa0\x80"  # "com/…" -> "\ud800/…" (same length in bytes)
    result = _scan_bytes(tmp_path, bytes(data), sigs, "surrogate.dex")
    classes = {c for e in result.endpoints for c in e.classes}
    assert classes and all(c.startswith("\ufffd") for c in classes)
    json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8")  # no UnicodeEncodeError


def test_endpoint_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from audit.static import scanner
    from audit.static.scanner import scan_path

    monkeypatch.setenv("AUDIT_NO_FORK", "1")
    full = scan_path(FIXTURES / "apks" / "messenger.apk")
    assert len(full.endpoints) > 10 and not any("distinct endpoint strings" in e for e in full.errors)
    monkeypatch.setattr(scanner, "MAX_ENDPOINTS", 5)
    capped = scan_path(FIXTURES / "apks" / "messenger.apk")
    assert 0 < len(capped.endpoints) <= 5
    assert [e.value for e in capped.endpoints] == sorted(e.value for e in capped.endpoints)
    assert any("more than 5 distinct endpoint strings" in e for e in capped.errors)


def _with_arsc(tmp_path: Path, data: bytes) -> Path:
    out = tmp_path / "arsc.apk"
    with zipfile.ZipFile(FIXTURES / "apks" / "messenger.apk") as z, zipfile.ZipFile(out, "w") as w:
        for info in z.infolist():
            w.writestr(info, data if info.filename == "resources.arsc" else z.read(info))
    return out


def test_truncated_resource_table_gives_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: a resources.arsc cut after its string pool was read as far as it went, silently."""
    monkeypatch.setenv("AUDIT_NO_FORK", "1")
    arsc = zipfile.ZipFile(FIXTURES / "apks" / "messenger.apk").read("resources.arsc")
    r = scan_path(_with_arsc(tmp_path, arsc[: len(arsc) // 2]))
    assert (
        f"resources.arsc: truncated: the table declares {len(arsc)} bytes, the file holds {len(arsc) // 2}"
        in r.errors
    )
    assert any(e.startswith("resources.arsc: resource table damaged after its string pool") for e in r.errors)
    assert r.endpoints  # what could be read still is


def test_string_pool_claiming_0xffffffff_strings_gives_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_NO_FORK", "1")
    arsc = bytearray(zipfile.ZipFile(FIXTURES / "apks" / "messenger.apk").read("resources.arsc"))
    pool = struct.unpack_from("<H", arsc, 2)[0]  # the pool chunk follows the table header
    struct.pack_into("<I", arsc, pool + 8, 0xFFFFFFFF)
    r = scan_path(_with_arsc(tmp_path, bytes(arsc)))
    assert "resources.arsc: cannot be parsed (string pool claims 4294967295 strings)" in r.errors
