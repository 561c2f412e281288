"""What is really inside a built fixture, read with androguard and zipfile rather than our scanner:
:func:`read_contents` gives every text per ``(source kind, file)``, like ``Endpoint.sources``.
Used by the fixture checks (``test_fixtures``) and the labelled-set precision test (``test_precision``)
to prove that truth and label files list what the packages hold."""

from __future__ import annotations

import gzip
import io
import ipaddress
import re
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loguru import logger

logger.disable("androguard")

from androguard.core.apk import APK  # noqa: E402
from androguard.core.axml import AXMLPrinter  # noqa: E402
from androguard.core.dex import DEX  # noqa: E402

#: A URL-like string (scheme://rest): every one in a fixture must be expected or listed as noise.
URLISH = re.compile(r"[A-Za-z%][A-Za-z0-9+.%-]*://[^\s\"<>]+")


def is_ip(host: str) -> bool:
    """Is ``host`` an IPv4 or IPv6 address (written exactly as :mod:`ipaddress` reads it)?"""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Contents:
    """Texts per ``(kind, file)`` and const-string owners per DEX string, from any fixture format."""

    def __init__(self) -> None:
        self.texts: dict[tuple[str, str], list[str]] = {}
        self.const_owners: dict[str, set[str]] = {}

    def add(self, kind: str, file: str, texts: list[str]) -> None:
        self.texts.setdefault((kind, file), []).extend(texts)

    def all_texts(self) -> Iterator[str]:
        for texts in self.texts.values():
            yield from texts


def _xml_texts(root: Any) -> list[str]:  # lxml element from androguard
    out: list[str] = []
    for el in root.iter():
        out += [str(v) for v in el.attrib.values()]
        if el.text and el.text.strip():
            out.append(el.text.strip())
    return out


def _read_dex(c: Contents, data: bytes, file: str) -> None:
    dex = DEX(data)
    c.add("dex", file, [str(s) for s in dex.get_strings()])
    for cls in dex.get_classes():
        name = cls.get_name()[1:-1].replace("/", ".")
        for m in cls.get_methods():
            for ins in m.get_instructions():
                if ins.get_name().startswith("const-string"):
                    c.const_owners.setdefault(ins.get_raw_string(), set()).add(name)


def _read_native(c: Contents, data: bytes, file: str) -> None:
    c.add("native", file, [s.decode("ascii") for s in re.findall(rb"[\x20-\x7e]{4,}", data)])


def _read_apk(c: Contents, data: bytes, prefix: str = "") -> None:
    apk = APK(data, raw=True)
    c.add("manifest", prefix + "AndroidManifest.xml", _xml_texts(apk.get_android_manifest_xml()))
    for name in apk.get_files():
        raw = apk.get_file(name)
        if re.fullmatch(r"classes\d*\.dex", name):
            _read_dex(c, raw, prefix + name)
        elif name == "resources.arsc":
            pool = apk.get_android_resources().stringpool_main
            c.add("resources", prefix + name, [pool.getString(i) for i in range(pool.stringCount)])
        elif name == "res/xml/network_security_config.xml":
            c.add("network_security_config", prefix + name, _xml_texts(AXMLPrinter(raw).get_xml_obj()))
        elif name.startswith("res/xml/"):
            c.add("xml", prefix + name, _xml_texts(AXMLPrinter(raw).get_xml_obj()))
        elif name.startswith("assets/") and raw[:2] == b"\x1f\x8b":  # a gzip tar (python-for-android)
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(raw))) as tar:
                for m in tar.getmembers():
                    f = tar.extractfile(m)
                    if f is not None:
                        c.add("asset", f"{prefix}{name}!{m.name}", [f.read().decode("latin-1")])
        elif name.startswith("assets/"):
            c.add("asset", prefix + name, [raw.decode("utf-8", "replace")])
        elif name.startswith("lib/"):
            _read_native(c, raw, prefix + name)


def _pb_fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """A minimal protobuf wire-format reader (varint and length-delimited fields only)."""
    i = 0

    def varint() -> int:
        nonlocal i
        shift = n = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(data):
        key = varint()
        field_no, wire = key >> 3, key & 7
        if wire == 0:
            yield field_no, wire, varint()
        elif wire == 2:
            n = varint()
            yield field_no, wire, data[i : i + n]
            i += n
        else:
            raise ValueError(f"unexpected wire type {wire}")


def pb_xml(node: bytes) -> dict[str, Any]:
    """aapt2 XmlNode → {"tag", "attrs": {name: value}, "children": [...], "text"}."""
    out: dict[str, Any] = {"tag": None, "attrs": {}, "children": [], "text": None}
    for f, _, v in _pb_fields(node):
        assert isinstance(v, bytes)
        if f == 2:
            out["text"] = v.decode()
        elif f == 1:
            for ef, _, ev in _pb_fields(v):
                assert isinstance(ev, bytes)
                if ef == 3:
                    out["tag"] = ev.decode()
                elif ef == 4:
                    attr: dict[int, Any] = {af: av for af, _, av in _pb_fields(ev)}
                    out["attrs"][attr[2].decode()] = attr[3].decode()
                elif ef == 5:
                    out["children"].append(pb_xml(ev))
    return out


def _pb_xml_texts(tree: dict[str, Any]) -> list[str]:
    out = list(tree["attrs"].values()) + ([tree["text"]] if tree["text"] else [])
    for ch in tree["children"]:
        out += _pb_xml_texts(ch)
    return out


def read_contents(fixture: Path) -> Contents:
    """What is really inside a fixture (.apk, .dex, split bundle or .aab), read with androguard and
    zipfile: texts per ``(source kind, file)`` as in ``Endpoint.sources``, and const-string owners."""
    c = Contents()
    data = fixture.read_bytes()
    if fixture.suffix == ".apk":
        _read_apk(c, data)
    elif fixture.suffix == ".dex":
        _read_dex(c, data, fixture.name)
    elif fixture.suffix in (".apks", ".xapk", ".apkm"):
        with zipfile.ZipFile(fixture) as zf:
            for name in zf.namelist():
                if name.endswith(".apk"):
                    _read_apk(c, zf.read(name), prefix=f"{name}!")
    elif fixture.suffix == ".aab":
        with zipfile.ZipFile(fixture) as zf:
            for name in zf.namelist():
                raw = zf.read(name)
                if name == "base/manifest/AndroidManifest.xml":
                    c.add("manifest", name, _pb_xml_texts(pb_xml(raw)))
                elif name.startswith("base/dex/"):
                    _read_dex(c, raw, name)
                elif name == "base/resources.pb":
                    c.add("resources", name, [raw.decode("utf-8", "replace")])
                elif name == "base/res/xml/network_security_config.xml":
                    c.add("network_security_config", name, _pb_xml_texts(pb_xml(raw)))
                elif name.startswith("base/assets/"):
                    c.add("asset", name, [raw.decode("utf-8")])
                elif name.startswith("base/lib/"):
                    _read_native(c, raw, name)
    else:
        raise AssertionError(f"unknown fixture type {fixture}")
    return c
