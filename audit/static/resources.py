"""Compiled Android resources: the string pool, binary XML (AXML) and ``resources.arsc``.

A small reader of our own instead of androguard's AXMLPrinter: the scanner only needs the string pool
and the start-tag/text chunks, and reading just those is cheap even for thousands of layout files.
Format: AOSP ``frameworks/base/libs/androidfw/include/androidfw/ResourceTypes.h`` (ResChunk_header,
ResStringPool_header, ResXMLTree_attrExt, Res_value). Every read is bounds-checked: a malformed file
raises :class:`ResourceError` (a ValueError), which the scanner turns into an error note.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "ResourceError",
    "XmlElement",
    "arsc_strings",
    "network_security_domains",
    "parse_axml",
    "parse_proto_xml",
    "proto_fields",
    "read_string_pool",
    "xml_strings",
]

RES_STRING_POOL_TYPE = 0x0001
RES_TABLE_TYPE = 0x0002
RES_XML_TYPE = 0x0003
RES_XML_START_ELEMENT_TYPE = 0x0102
RES_XML_END_ELEMENT_TYPE = 0x0103
RES_XML_CDATA_TYPE = 0x0104
RES_XML_RESOURCE_MAP_TYPE = 0x0180
RES_TABLE_PACKAGE_TYPE = 0x0200
RES_TABLE_TYPE_TYPE = 0x0201
#: ``ResTable_type`` flags and ``ResTable_entry`` flags.
_TYPE_SPARSE = 0x01
_TYPE_OFFSET16 = 0x02
_ENTRY_COMPLEX = 0x0001
_NO_ENTRY = 0xFFFFFFFF
#: Most resource-file references collected from one resources.arsc (against hostile tables).
MAX_XML_FILES = 100_000

_UTF8_FLAG = 1 << 8
TYPE_REFERENCE = 0x01
TYPE_STRING = 0x03
TYPE_INT_DEC = 0x10
TYPE_INT_HEX = 0x11
TYPE_INT_BOOLEAN = 0x12

_CHUNK = struct.Struct("<HHI")
_POOL = struct.Struct("<IIIII")  # stringCount, styleCount, flags, stringsStart, stylesStart
_ATTR_EXT = struct.Struct("<IIHHHHHH")
_ATTR = struct.Struct("<IIIHBBI")
MAX_STRINGS = 2_000_000


class ResourceError(ValueError):
    """A compiled resource is malformed."""


@dataclass(frozen=True)
class XmlElement:
    """A start tag of a compiled XML file, with its attributes resolved to strings."""

    name: str
    attrs: dict[str, str]
    """Attribute name (without namespace) → value as text (strings, decimal ints, ``@0x7f…`` refs)."""
    text: str = ""
    """Text content (CDATA chunks directly inside the element)."""
    depth: int = 0


def read_string_pool(data: bytes, offset: int) -> list[str]:
    """Decode the ResStringPool chunk at ``offset`` (UTF-8 or UTF-16)."""
    try:
        ctype, header_size, size = _CHUNK.unpack_from(data, offset)
        if ctype != RES_STRING_POOL_TYPE or header_size < 28 or size < header_size:
            raise ResourceError(f"no string pool at offset {offset}")
        end = offset + size
        if end > len(data):
            raise ResourceError("string pool runs past the end of the file")
        count, _styles, flags, strings_start, _ = _POOL.unpack_from(data, offset + 8)
        if count > MAX_STRINGS or offset + header_size + 4 * count > end:
            raise ResourceError(f"string pool claims {count} strings")
        offsets = struct.unpack_from(f"<{count}I", data, offset + header_size)
    except struct.error as e:
        raise ResourceError(f"truncated string pool ({e})") from e
    base = offset + strings_start
    utf8 = bool(flags & _UTF8_FLAG)
    out: list[str] = []
    # Strings of a valid pool never overlap, so decoding them all reads the pool at most once. Hostile
    # offsets all pointing into one long string would otherwise cost count x length in time and memory
    # (a 100 KB resources.arsc decoding to gigabytes). Ids sharing one offset share one string.
    budget = size
    seen: dict[int, str] = {}
    for rel in offsets:
        pos = base + rel
        if pos >= end:
            out.append("")
            continue
        text = seen.get(pos)
        if text is None:
            text = _utf8_at(data, pos, end) if utf8 else _utf16_at(data, pos, end)
            budget -= len(text)
            if budget < 0:
                raise ResourceError("string pool strings overlap (more text than the pool holds)")
            seen[pos] = text
        out.append(text)
    return out


def _utf8_at(data: bytes, pos: int, end: int) -> str:
    # Two lengths (characters, then bytes), each one byte or two with the high bit set.
    for _ in range(2):
        if pos >= end:
            return ""
        n = data[pos]
        pos += 1
        if n & 0x80:
            if pos >= end:
                return ""
            n = (n & 0x7F) << 8 | data[pos]
            pos += 1
    return data[pos : min(pos + n, end)].decode("utf-8", "replace")


def _utf16_at(data: bytes, pos: int, end: int) -> str:
    if pos + 2 > end:
        return ""
    n = data[pos] | data[pos + 1] << 8
    pos += 2
    if n & 0x8000:
        if pos + 2 > end:
            return ""
        n = (n & 0x7FFF) << 16 | data[pos] | data[pos + 1] << 8
        pos += 2
    return data[pos : min(pos + 2 * n, end)].decode("utf-16-le", "replace")


def _chunks(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(type, header size, offset, size) of each chunk between ``start`` and ``end``."""
    pos = start
    while pos + 8 <= end:
        ctype, header_size, size = _CHUNK.unpack_from(data, pos)
        if size < 8 or header_size < 8 or pos + size > end:
            raise ResourceError(f"bad chunk 0x{ctype:04x} at offset {pos}")
        yield ctype, header_size, pos, size
        pos += size


def _xml_body(data: bytes) -> tuple[int, int]:
    if len(data) < 8:
        raise ResourceError("not a compiled XML file (too short)")
    ctype, header_size, size = _CHUNK.unpack_from(data, 0)
    if ctype != RES_XML_TYPE:
        raise ResourceError("not a compiled XML file (bad magic)")
    # Packers set a wrong total size to trip up tools; Android itself reads to the end of the data.
    return header_size, len(data) if size > len(data) or size < header_size else size


def xml_strings(data: bytes) -> list[str]:
    """The string pool of a compiled XML file: every attribute value and text is in it."""
    start, end = _xml_body(data)
    for ctype, _, pos, _ in _chunks(data, start, end):
        if ctype == RES_STRING_POOL_TYPE:
            return read_string_pool(data, pos)
    raise ResourceError("compiled XML without a string pool")


RES_XML_START_NAMESPACE_TYPE = 0x0100


def xml_namespace_uris(data: bytes, strings: list[str]) -> set[str]:
    """The namespace URIs a compiled XML file declares (``xmlns:cdv="http://cordova.apache.org/ns/1.0"``):
    names, not addresses. ``strings`` is its string pool (:func:`xml_strings`)."""
    start, end = _xml_body(data)
    out: set[str] = set()
    for ctype, header_size, pos, size in _chunks(data, start, end):
        if ctype == RES_XML_START_NAMESPACE_TYPE and size >= header_size + 8:
            _, uri = struct.unpack_from("<II", data, pos + header_size)
            if uri < len(strings):
                out.add(strings[uri])
    return out


def _value(strings: list[str], raw: int, vtype: int, vdata: int) -> str:
    if raw != 0xFFFFFFFF and raw < len(strings):
        return strings[raw]
    if vtype == TYPE_STRING:
        return strings[vdata] if vdata < len(strings) else ""
    if vtype == TYPE_INT_DEC:
        return str(vdata - (1 << 32) if vdata & 0x80000000 else vdata)
    if vtype == TYPE_INT_HEX:
        return f"0x{vdata:x}"
    if vtype == TYPE_INT_BOOLEAN:
        return "true" if vdata else "false"
    if vtype == TYPE_REFERENCE:
        return f"@0x{vdata:08x}"
    return str(vdata)


#: Framework attribute resource ids → names, for manifests whose attribute name strings are stripped.
ATTR_IDS = {
    0x01010003: "name",
    0x01010024: "value",
    0x0101021B: "versionCode",
    0x0101021C: "versionName",
    0x0101020C: "minSdkVersion",
    0x01010270: "targetSdkVersion",
    0x01010001: "label",
    0x0101000F: "debuggable",
    0x010104EC: "usesCleartextTraffic",
    0x01010527: "networkSecurityConfig",
}


def parse_axml(data: bytes) -> list[XmlElement]:
    """Every start tag of a compiled XML file, in document order."""
    start, end = _xml_body(data)
    strings: list[str] = []
    res_ids: tuple[int, ...] = ()
    elements: list[XmlElement] = []
    stack: list[int] = []  # indices into ``elements`` of open tags
    texts: dict[int, list[str]] = {}  # element index -> its text parts, joined once at the end
    # Text parts reference pool strings; joining copies them. Thousands of CDATA chunks repeating one
    # long string in one element would otherwise make gigabytes (and re-joining per chunk, minutes).
    text_budget = len(data)
    try:
        for ctype, header_size, pos, size in _chunks(data, start, end):
            if ctype == RES_STRING_POOL_TYPE:
                strings = read_string_pool(data, pos)
            elif ctype == RES_XML_RESOURCE_MAP_TYPE:
                n = (size - header_size) // 4
                res_ids = struct.unpack_from(f"<{n}I", data, pos + header_size)
            elif ctype == RES_XML_START_ELEMENT_TYPE:
                elements.append(
                    _start_element(data, pos + header_size, pos + size, strings, res_ids, len(stack))
                )
                stack.append(len(elements) - 1)
            elif ctype == RES_XML_END_ELEMENT_TYPE:
                if stack:
                    stack.pop()
            elif ctype == RES_XML_CDATA_TYPE and stack:
                (idx,) = struct.unpack_from("<I", data, pos + header_size)
                if idx < len(strings):
                    parts = texts.setdefault(stack[-1], [])
                    if parts:
                        text_budget -= len(strings[idx]) + (len(parts[0]) if len(parts) == 1 else 0)
                        if text_budget < 0:
                            raise ResourceError("XML text longer than the file (repeated text chunks)")
                    parts.append(strings[idx])
    except struct.error as e:
        raise ResourceError(f"truncated XML chunk ({e})") from e
    for i, parts in texts.items():
        element = elements[i]
        elements[i] = XmlElement(element.name, element.attrs, "".join(parts), element.depth)
    return elements


def _start_element(
    data: bytes, ext: int, end: int, strings: list[str], res_ids: tuple[int, ...], depth: int
) -> XmlElement:
    _ns, name, attr_start, attr_size, count, _, _, _ = _ATTR_EXT.unpack_from(data, ext)
    attrs: dict[str, str] = {}
    if attr_size < 20:
        raise ResourceError("bad attribute size")
    pos = ext + attr_start
    for _ in range(count):
        if pos + 20 > end:
            raise ResourceError("attributes run past their chunk")
        _ans, aname, raw, _vsize, _res0, vtype, vdata = _ATTR.unpack_from(data, pos)
        pos += attr_size
        key = strings[aname] if aname < len(strings) else ""
        if aname < len(res_ids) and res_ids[aname] in ATTR_IDS:
            key = ATTR_IDS[res_ids[aname]]  # the name string may be blanked by obfuscators
        attrs[key] = _value(strings, raw, vtype, vdata)
    tag = strings[name] if name < len(strings) else ""
    return XmlElement(tag, attrs, "", depth)


#: Credit elements of a widget configuration (W3C widgets, Cordova's ``res/xml/config.xml``).
CREDIT_ELEMENTS = frozenset({"author", "description", "license"})


def xml_credit_strings(elements: list[XmlElement]) -> set[str]:
    """Attribute values and text of :data:`CREDIT_ELEMENTS` and what they hold
    (``<author href="http://appium.io">``, ``<description>Courtesy of … (https://…)</description>``):
    credits, not servers."""
    out: set[str] = set()
    inside = -1  # depth of the open credit element, or -1
    for e in elements:
        if inside >= 0 and e.depth <= inside:
            inside = -1
        if inside < 0 and e.name in CREDIT_ELEMENTS:
            inside = e.depth
        if inside >= 0:
            out.update(e.attrs.values())
            if e.text:
                out.add(e.text)
    return out


def xml_bool(value: str | None) -> bool | None:
    """A boolean attribute as :func:`_value` renders it (``true``/``false``); None when absent or not
    a boolean."""
    if value is None:
        return None
    v = value.strip().lower()
    return True if v == "true" else False if v == "false" else None


def network_security_domains(elements: list[XmlElement]) -> list[str]:
    """Domain names of a network_security_config (``<domain>`` texts), or [] for any other XML."""
    if not elements or elements[0].name != "network-security-config":
        return []
    return [e.text.strip() for e in elements if e.name == "domain" and e.text.strip()]


def arsc_strings(data: bytes) -> list[str]:
    """The global value string pool of ``resources.arsc`` (every string resource value)."""
    if len(data) < 12:
        raise ResourceError("resources.arsc is too short")
    ctype, header_size, _size = _CHUNK.unpack_from(data, 0)
    if ctype != RES_TABLE_TYPE:
        raise ResourceError("resources.arsc has a bad magic")
    for ctype, _, pos, _ in _chunks(data, header_size, len(data)):
        if ctype == RES_STRING_POOL_TYPE:
            return read_string_pool(data, pos)
    raise ResourceError("resources.arsc without a string pool")


def table_size_problem(data: bytes) -> str | None:
    """What is wrong with the size a ``resources.arsc`` header declares, if anything: a table cut
    short (a truncated download, a packer) is otherwise read as far as it goes without a word."""
    if len(data) < 12:
        return None  # arsc_strings says so
    declared = int.from_bytes(data[4:8], "little")
    if declared > len(data):
        return f"truncated: the table declares {declared} bytes, the file holds {len(data)}"
    return None


def arsc_xml_files(data: bytes, pool: list[str] | None = None) -> dict[int, str]:
    """Resource id → path of every ``res/xml/…`` file entry of ``resources.arsc`` (any configuration),
    so that a manifest attribute such as ``android:networkSecurityConfig="@0x7f110000"`` can be resolved
    to its file. ``pool`` is the table's global string pool when the caller has read it already
    (:func:`arsc_strings`). Entries that are not plain string values are skipped; raises
    :class:`ResourceError` (or ``struct.error``) for a damaged table."""
    if len(data) < 12:
        raise ResourceError("resources.arsc is too short")
    ctype, header_size, _size = _CHUNK.unpack_from(data, 0)
    if ctype != RES_TABLE_TYPE:
        raise ResourceError("resources.arsc has a bad magic")
    pool_at = -1
    refs: dict[int, int] = {}  # resource id -> global string index
    for ctype, hsize, pos, size in _chunks(data, header_size, len(data)):
        if ctype == RES_STRING_POOL_TYPE and pool_at < 0:
            pool_at = pos
        elif ctype == RES_TABLE_PACKAGE_TYPE and hsize >= 8 + 4 + 256 + 4:
            (package_id,) = struct.unpack_from("<I", data, pos + 8)
            # Only the "xml" type's entries are wanted: its id is its 1-based place in the type names.
            (type_strings,) = struct.unpack_from("<I", data, pos + 8 + 4 + 256)
            if not 0 < type_strings < size:
                continue
            names = read_string_pool(data, pos + type_strings)
            if "xml" not in names:
                continue
            xml_type = names.index("xml") + 1
            for ttype, thsize, tpos, tsize in _chunks(data, pos + hsize, pos + size):
                if ttype != RES_TABLE_TYPE_TYPE or thsize < 20 or data[tpos + 8] != xml_type:
                    continue
                type_id, flags = data[tpos + 8], data[tpos + 9]
                count, entries_start = struct.unpack_from("<II", data, tpos + 12)
                for index, offset in _type_offsets(data, tpos + thsize, tpos + tsize, count, flags):
                    e = tpos + entries_start + offset
                    if e + 16 > tpos + tsize:
                        continue
                    esize, eflags = struct.unpack_from("<HH", data, e)
                    if eflags & _ENTRY_COMPLEX or esize < 8 or e + esize + 8 > tpos + tsize:
                        continue
                    vtype, vdata = data[e + esize + 3], struct.unpack_from("<I", data, e + esize + 4)[0]
                    if vtype == TYPE_STRING and len(refs) < MAX_XML_FILES:
                        refs[((package_id & 0xFF) << 24) | (type_id << 16) | (index & 0xFFFF)] = vdata
    if not refs or (pool is None and pool_at < 0):
        return {}
    strings = pool if pool is not None else read_string_pool(data, pool_at)
    return {
        rid: strings[i] for rid, i in refs.items() if i < len(strings) and strings[i].startswith("res/xml/")
    }


def _type_offsets(data: bytes, start: int, end: int, count: int, flags: int) -> Iterator[tuple[int, int]]:
    """(entry index, offset from entries_start) of a ``ResTable_type``'s present entries."""
    count = min(count, max(0, (end - start) // 2))
    if flags & _TYPE_SPARSE:  # pairs of uint16: entry index, offset / 4
        for i in range(min(count, (end - start) // 4)):
            idx, off4 = struct.unpack_from("<HH", data, start + 4 * i)
            yield idx, off4 * 4
    elif flags & _TYPE_OFFSET16:  # uint16 offset / 4, 0xffff for none
        for i in range(min(count, (end - start) // 2)):
            (off4,) = struct.unpack_from("<H", data, start + 2 * i)
            if off4 != 0xFFFF:
                yield i, off4 * 4
    else:
        for i in range(min(count, (end - start) // 4)):
            (off,) = struct.unpack_from("<I", data, start + 4 * i)
            if off != _NO_ENTRY:
                yield i, off


# --------------------------------------------------------------------------------------------
# Protobuf XML (aapt2 ``Resources.proto`` XmlNode): the manifest and res/xml files of an .aab
# --------------------------------------------------------------------------------------------

MAX_PROTO_DEPTH = 64
_Buf = TypeVar("_Buf", bytes, memoryview)


def proto_fields(data: _Buf, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int | _Buf]]:
    """(field number, wire type, value) of one protobuf message: a varint/fixed int, or the bytes of a
    length-delimited field. Minimal wire-format reader (protobuf.dev "Encoding"); groups are rejected.

    Given a memoryview, length-delimited values are views into it, not copies: walking a message nested
    64 deep then holds the input once, not 64 times (8 MiB of nesting cost 1 GB)."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        field, wire = key >> 3, key & 7
        value: int | _Buf
        if wire == 0:
            value, pos = _varint(data, pos, end)
        elif wire == 1:
            if pos + 8 > end:
                raise ResourceError("truncated protobuf fixed64")
            value = int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        elif wire == 2:
            n, pos = _varint(data, pos, end)
            if pos + n > end:
                raise ResourceError("protobuf field runs past its message")
            value = data[pos : pos + n]
            pos += n
        elif wire == 5:
            if pos + 4 > end:
                raise ResourceError("truncated protobuf fixed32")
            value = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        else:
            raise ResourceError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _varint(data: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ResourceError("truncated protobuf varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _text(v: int | memoryview) -> str:
    return str(v, "utf-8", "replace") if isinstance(v, memoryview) else str(v)


def _proto_item_value(item: memoryview) -> str:
    """A compiled attribute value (Item): primitive ints/bools, strings and references."""
    for field, _, v in proto_fields(item):
        if not isinstance(v, memoryview):
            continue
        if field == 7:  # Primitive
            for pf, _, pv in proto_fields(v):
                if isinstance(pv, int):
                    if pf == 6:  # int_decimal_value (int32 as varint)
                        return str(pv - (1 << 64) if pv >= 1 << 63 else pv)
                    if pf == 8:
                        return "true" if pv else "false"
                    return str(pv)
        elif field in (2, 3):  # String / RawString: field 1 value
            for sf, _, sv in proto_fields(v):
                if sf == 1:
                    return _text(sv)
        elif field == 1:  # Reference: field 2 id
            for rf, _, rv in proto_fields(v):
                if rf == 2 and isinstance(rv, int):
                    return f"@0x{rv:08x}"
    return ""


def parse_proto_xml(data: bytes) -> list[XmlElement]:
    """Every element of a protobuf-encoded XML document, in document order (text joined per element)."""
    out: list[XmlElement] = []
    _proto_node(memoryview(data), 0, out)
    return out


def _proto_node(node: memoryview, depth: int, out: list[XmlElement]) -> None:
    if depth > MAX_PROTO_DEPTH:
        raise ResourceError("XML nested too deeply")
    for field, _, v in proto_fields(node):
        if field == 1 and isinstance(v, memoryview):
            _proto_element(v, depth, out)


def _proto_element(elem: memoryview, depth: int, out: list[XmlElement]) -> None:
    if depth > MAX_PROTO_DEPTH:
        raise ResourceError("XML nested too deeply")
    name = ""
    attrs: dict[str, str] = {}
    children: list[memoryview] = []
    for field, _, v in proto_fields(elem):
        if not isinstance(v, memoryview):
            continue
        if field == 3:
            name = _text(v)
        elif field == 4:
            aname, avalue, compiled, res_id = "", "", memoryview(b""), 0
            for af, _, av in proto_fields(v):
                if af == 2:
                    aname = _text(av)
                elif af == 3:
                    avalue = _text(av)
                elif af == 5 and isinstance(av, int):
                    res_id = av
                elif af == 6 and isinstance(av, memoryview):
                    compiled = av
            if res_id in ATTR_IDS:
                aname = ATTR_IDS[res_id]
            attrs[aname] = avalue or (_proto_item_value(compiled) if compiled else "")
        elif field == 5:
            children.append(v)
    index = len(out)
    out.append(XmlElement(name, attrs, "", depth))
    texts: list[str] = []
    for child in children:
        for cf, _, cv in proto_fields(child):
            if cf == 2 and isinstance(cv, memoryview):
                texts.append(_text(cv))
            elif cf == 1 and isinstance(cv, memoryview):
                _proto_element(cv, depth + 1, out)
    if texts:
        out[index] = XmlElement(name, attrs, "".join(texts), depth)
