"""A small, fast DEX reader: string table, defined classes, const-string references and their methods.

Only what the scanner needs, read straight from the bytes with ``struct`` and ``re`` so that a scan never
pays for a full disassembly. Format reference: https://source.android.com/docs/core/runtime/dex-format
(the "Dalvik executable format" and "Dalvik bytecode" pages).

How :meth:`DexFile.string_references` stays fast and exact: a compiled bytes-regex per opcode scans the
file for the bytes of ``const-string``/``const-string/jumbo`` with a wanted index; each hit is mapped
(bisect) to the code item containing it, using the code offsets of every method from class_data, and only
those methods are decoded instruction by instruction (full opcode-width table, switch and array payloads
skipped), so hits inside payloads, operands or misaligned bytes are discarded. The same decoding
records the methods each of those methods invokes (``invoke-*``), so a caller can ask what else the
code that loads a string does with it (:meth:`DexFile.string_loaders`, :meth:`DexFile.method_invokes`).

Hostile input: the header and every table are bounds-checked up front, and the walks over string data,
class_data and code items each stop with :class:`~audit.errors.DexError` once they would read more
than the file holds (which only overlapping items can cause), so no input costs more than linear time.
"""

from __future__ import annotations

import bisect
import logging
import re
import struct
from collections.abc import Iterable

from audit.errors import DexError

__all__ = ["DexFile", "decode_mutf8", "descriptor_to_name"]

log = logging.getLogger(__name__)

_MAGIC = re.compile(rb"dex\n03[5-9]\x00")
_ENDIAN_CONSTANT = 0x12345678
_HEADER_SIZE = 0x70
# file_size … data_off: 20 uint32 after magic (8), checksum (4) and signature (20).
_HEADER = struct.Struct("<20I")
_CODE_ITEM = struct.Struct("<HHHHII")  # registers, ins, outs, tries, debug_info_off, insns_size

_OP_CONST_STRING = 0x1A
_OP_CONST_STRING_JUMBO = 0x1B
#: invoke-virtual … invoke-interface (35c), their /range forms (3rc) and invoke-polymorphic(/range):
#: the method index is the 16-bit unit after the opcode unit in every one of them.
_INVOKE_OPS = frozenset([*range(0x6E, 0x73), *range(0x74, 0x79), 0xFA, 0xFB])
#: sget-object (21c: the field index is the 16-bit unit after the opcode unit).
_OP_SGET_OBJECT = 0x62
#: encoded_value types of a class's static_values (the DEX format's value_type codes).
_VALUE_STRING, _VALUE_ARRAY, _VALUE_ANNOTATION, _VALUE_NULL, _VALUE_BOOLEAN = 0x17, 0x1C, 0x1D, 0x1E, 0x1F
#: How far past the last class's static_values its encoded array is looked into.
_STATIC_VALUES_TAIL = 1 << 16
_PACKED_SWITCH_PAYLOAD = 0x0100
_SPARSE_SWITCH_PAYLOAD = 0x0200
_FILL_ARRAY_DATA_PAYLOAD = 0x0300


def _width_table() -> bytes:
    """Instruction width in 16-bit code units, indexed by opcode (the format's first digit)."""
    widths = [1] * 256  # 10x/11x/12x/11n/10t
    ranges = {
        2: [
            (0x02, 0x02),
            (0x05, 0x05),
            (0x08, 0x08),
            (0x13, 0x13),
            (0x15, 0x16),
            (0x19, 0x1A),
            (0x1C, 0x1C),
            (0x1F, 0x20),
            (0x22, 0x23),
            (0x29, 0x29),
            (0x2D, 0x3D),
            (0x44, 0x6D),
            (0x90, 0xAF),
            (0xD0, 0xE2),
            (0xFE, 0xFF),
        ],
        3: [
            (0x03, 0x03),
            (0x06, 0x06),
            (0x09, 0x09),
            (0x14, 0x14),
            (0x17, 0x17),
            (0x1B, 0x1B),
            (0x24, 0x26),
            (0x2A, 0x2C),
            (0x6E, 0x72),
            (0x74, 0x78),
            (0xFC, 0xFD),
        ],
        4: [(0xFA, 0xFB)],
        5: [(0x18, 0x18)],
    }
    for width, spans in ranges.items():
        for lo, hi in spans:
            for op in range(lo, hi + 1):
                widths[op] = width
    # unused opcodes: the verifier rejects a method containing one, so decoding stops there (width 0)
    for lo, hi in [(0x3E, 0x43), (0x73, 0x73), (0x79, 0x7A), (0xE3, 0xF9)]:
        for op in range(lo, hi + 1):
            widths[op] = 0
    return bytes(widths)


#: Width of every Dalvik instruction in code units, by opcode; 0 for the unused opcodes.
INSTRUCTION_WIDTHS = _width_table()


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------

_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_FOUR_BYTE_LEAD = re.compile(rb"[\xf0-\xff]")


def _join_pair(m: re.Match[str]) -> str:
    pair = m.group()
    return chr(0x10000 + ((ord(pair[0]) - 0xD800) << 10) + (ord(pair[1]) - 0xDC00))


def decode_mutf8(raw: bytes) -> str:
    """Decode MUTF-8 (DEX string data): NUL is ``C0 80``, supplementary characters are surrogate pairs
    of 3-byte sequences. Pairs are joined, lone surrogates kept; invalid bytes become U+FFFD."""
    try:
        if _FOUR_BYTE_LEAD.search(raw):  # valid UTF-8 but not MUTF-8 (which has no 4-byte forms)
            raise UnicodeDecodeError("mutf-8", raw, 0, 1, "4-byte sequence")
        text = raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        text = _decode_mutf8_lenient(raw)
    if _SURROGATE.search(text):
        text = _SURROGATE_PAIR.sub(_join_pair, text)
    return text


def _decode_mutf8_lenient(raw: bytes) -> str:
    """Slow path for byte strings Python's UTF-8 codec rejects (4-byte forms, overlongs, truncation)."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        if b < 0x80:
            out.append(chr(b))
            i += 1
        elif 0xC0 <= b < 0xE0 and i + 1 < n and raw[i + 1] & 0xC0 == 0x80:
            out.append(chr((b & 0x1F) << 6 | raw[i + 1] & 0x3F))
            i += 2
        elif 0xE0 <= b < 0xF0 and i + 2 < n and raw[i + 1] & 0xC0 == 0x80 and raw[i + 2] & 0xC0 == 0x80:
            out.append(chr((b & 0x0F) << 12 | (raw[i + 1] & 0x3F) << 6 | raw[i + 2] & 0x3F))
            i += 3
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def descriptor_to_name(descriptor: str) -> str:
    """``Lcom/foo/Bar$Inner;`` → ``com.foo.Bar$Inner``; anything else is returned unchanged."""
    if len(descriptor) > 2 and descriptor[0] == "L" and descriptor[-1] == ";":
        return descriptor[1:-1].replace("/", ".")
    return descriptor


def _uleb128(data: bytes, pos: int) -> tuple[int, int]:
    """Read one unsigned LEB128 (at most 5 bytes) at ``pos``; return (value, next position)."""
    result = 0
    shift = 0
    while True:
        b = data[pos]  # IndexError past the end: the caller turns it into DexError
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 35:
            raise ValueError("uleb128 longer than 5 bytes")


# --------------------------------------------------------------------------------------------
# The reader
# --------------------------------------------------------------------------------------------


class DexFile:
    """One ``classes*.dex``: validated header, lazily decoded strings, classes and references."""

    def __init__(self, data: bytes | memoryview, name: str) -> None:
        self.name = name
        self._data = data if isinstance(data, bytes) else bytes(data)
        self._parse_header()
        self._strings: list[str] | None = None
        self._string_offsets: tuple[int, ...] | None = None
        self._class_defs: tuple[int, ...] | None = None
        self._class_names: list[str] | None = None
        self._code_starts: list[int] | None = None
        self._code_owner: list[int] | None = None  # class_def index, parallel to _code_starts
        self._method_strings: dict[int, set[int]] = {}
        self._method_invokes: dict[int, set[int]] = {}
        self._method_field_reads: dict[int, set[int]] = {}
        self._method_names: dict[int, tuple[str, str]] = {}
        self._decode_budget = len(self._data)

    # -- header ---------------------------------------------------------------------------------

    def _corrupt(self, what: str) -> DexError:
        return DexError(f"{self.name}: corrupt DEX header ({what})")

    def _parse_header(self) -> None:
        data = self._data
        if len(data) < _HEADER_SIZE:
            raise self._corrupt(f"truncated: {len(data)} bytes, header needs {_HEADER_SIZE}")
        if not _MAGIC.match(data, 0, 8):
            raise self._corrupt(f"bad magic {bytes(data[:8])!r}")
        (
            file_size,
            header_size,
            endian_tag,
            link_size,
            link_off,
            map_off,
            self._string_ids_size,
            self._string_ids_off,
            self._type_ids_size,
            self._type_ids_off,
            proto_ids_size,
            proto_ids_off,
            field_ids_size,
            field_ids_off,
            self._method_ids_size,
            self._method_ids_off,
            self._class_defs_size,
            self._class_defs_off,
            data_size,
            data_off,
        ) = _HEADER.unpack_from(data, 32)
        if endian_tag != _ENDIAN_CONSTANT:
            raise self._corrupt(f"unsupported endian tag {endian_tag:#x}")
        if file_size > len(data):
            raise self._corrupt(f"truncated: file_size {file_size} but only {len(data)} bytes")
        if not _HEADER_SIZE <= header_size <= file_size:
            raise self._corrupt(f"header_size {header_size}")
        if len(data) > file_size:
            self._data = data = data[:file_size]
        tables = (
            ("string_ids", self._string_ids_size, self._string_ids_off, 4),
            ("type_ids", self._type_ids_size, self._type_ids_off, 4),
            ("proto_ids", proto_ids_size, proto_ids_off, 12),
            ("field_ids", field_ids_size, field_ids_off, 8),
            ("method_ids", self._method_ids_size, self._method_ids_off, 8),
            ("class_defs", self._class_defs_size, self._class_defs_off, 32),
            ("link", link_size, link_off, 1),
            ("data", data_size, data_off, 1),
        )
        for label, size, off, item in tables:
            if size and not (header_size <= off and off + size * item <= file_size):
                raise self._corrupt(f"{label} table of {size} items at {off:#x} outside the file")
        if map_off and not header_size <= map_off <= file_size - 4:
            raise self._corrupt(f"map_off {map_off:#x} outside the file")

    # -- strings --------------------------------------------------------------------------------

    def _offsets(self) -> tuple[int, ...]:
        if self._string_offsets is None:
            n = self._string_ids_size
            self._string_offsets = struct.unpack_from(f"<{n}I", self._data, self._string_ids_off)
        return self._string_offsets

    def _string_at(self, off: int) -> str:
        """Decode the string_data_item at ``off``."""
        data = self._data
        try:
            size, start = _uleb128(data, off)
        except (IndexError, ValueError) as e:
            raise DexError(f"{self.name}: corrupt string data at {off:#x}") from e
        end = data.find(b"\x00", start)
        if end < 0:
            raise DexError(f"{self.name}: unterminated string at {off:#x}")
        raw = data[start:end]
        if size == end - start and raw.isascii():
            return raw.decode("ascii")
        return decode_mutf8(raw)

    def strings(self) -> list[str]:
        """Every ``string_ids`` entry, decoded; index-aligned with the string ids."""
        if self._strings is None:
            self._strings = self._decode_all_strings()
        return self._strings

    def _decode_all_strings(self) -> list[str]:
        data = self._data
        offsets = self._offsets()
        if not offsets:
            return []
        if max(offsets) >= len(data):
            raise DexError(f"{self.name}: string data offset outside the file")
        out: list[str] = []
        append = out.append
        find = data.find
        # Valid string data items never overlap, so together they span at most the file; more means
        # hostile ids pointing into one long NUL-free run, which would otherwise cost quadratic time.
        budget = len(data)
        for off in offsets:
            size = data[off]
            start = off + 1
            if size >= 0x80:
                try:
                    size, start = _uleb128(data, off)
                except (IndexError, ValueError) as e:
                    raise DexError(f"{self.name}: corrupt string data at {off:#x}") from e
            end = find(b"\x00", start)
            if end < 0:
                raise DexError(f"{self.name}: unterminated string at {off:#x}")
            budget -= end - off
            if budget < 0:
                raise DexError(f"{self.name}: corrupt string data (overlapping items)")
            raw = data[start:end]
            if size == end - start and raw.isascii():
                append(raw.decode("ascii"))
            else:
                append(decode_mutf8(raw))
        return out

    def _string(self, idx: int) -> str:
        if self._strings is not None:
            return self._strings[idx]
        offsets = self._offsets()
        if offsets[idx] >= len(self._data):
            raise DexError(f"{self.name}: string data offset outside the file")
        return self._string_at(offsets[idx])

    # -- classes --------------------------------------------------------------------------------

    def _defs(self) -> tuple[int, ...]:
        """class_def_item fields, flat: 8 uint32 per class."""
        if self._class_defs is None:
            n = self._class_defs_size
            self._class_defs = struct.unpack_from(f"<{8 * n}I", self._data, self._class_defs_off)
        return self._class_defs

    def class_names(self) -> list[str]:
        """Dotted Java names of the classes defined in this DEX, in class_defs order."""
        if self._class_names is None:
            defs = self._defs()
            n_types = self._type_ids_size
            n_strings = self._string_ids_size
            type_ids = struct.unpack_from(f"<{n_types}I", self._data, self._type_ids_off)
            names: list[str] = []
            for class_idx in defs[0::8]:
                if class_idx >= n_types or type_ids[class_idx] >= n_strings:
                    raise DexError(f"{self.name}: corrupt class_defs (type index {class_idx} out of range)")
                names.append(descriptor_to_name(self._string(type_ids[class_idx])))
            self._class_names = names
        return self._class_names

    # -- code -----------------------------------------------------------------------------------

    def _code_index(self) -> tuple[list[int], list[int]]:
        """Sorted code_item offsets of every method with code, and the class_def index owning each
        (a code item shared by several methods appears once per method)."""
        if self._code_starts is None or self._code_owner is None:
            values: list[int] = []
            owners: list[int] = []
            # Valid class_data items never overlap, so walking them all reads at most the file once;
            # more means hostile items pointing into each other, which would otherwise cost quadratic time.
            budget = len(self._data)
            for ci, class_data_off in enumerate(self._defs()[6::8]):
                if not class_data_off:
                    continue
                try:
                    end = self._class_code_offsets(class_data_off, ci, values, owners)
                except (IndexError, ValueError) as e:
                    raise DexError(f"{self.name}: corrupt class_data at {class_data_off:#x}") from e
                budget -= end - class_data_off
                if budget < 0:
                    raise DexError(f"{self.name}: corrupt class_data (overlapping items)")
            limit = len(self._data) - _CODE_ITEM.size
            order = sorted((i for i, v in enumerate(values) if v <= limit), key=values.__getitem__)
            self._code_starts = [values[i] for i in order]
            self._code_owner = [owners[i] for i in order]
        return self._code_starts, self._code_owner

    def _class_code_offsets(self, pos: int, ci: int, values: list[int], owners: list[int]) -> int:
        """Append the code_off of every method with code of the class_data_item at ``pos`` (class
        ``ci``) to ``values``/``owners``; return the item's end. This loop runs for every field and
        method of the file, so uleb128s are skipped and read inline rather than by function calls
        (twice as fast as splitting the section into uleb128 tokens with a regex, measured)."""
        data = self._data
        sizes = []
        for _ in range(4):
            b = data[pos]
            if b < 0x80:
                pos += 1
                sizes.append(b)
            else:
                value, pos = _uleb128(data, pos)
                sizes.append(value)
        fields = 2 * (sizes[0] + sizes[1])
        methods = sizes[2] + sizes[3]
        if fields + 3 * methods > len(data) - pos:  # every uleb128 takes at least one byte
            raise ValueError("member counts exceed the file")
        for _ in range(fields):
            while data[pos] & 0x80:
                pos += 1
            pos += 1
        for _ in range(methods):
            while data[pos] & 0x80:  # method_idx_diff
                pos += 1
            pos += 1
            while data[pos] & 0x80:  # access_flags
                pos += 1
            pos += 1
            b = data[pos]  # code_off
            pos += 1
            if b < 0x80:
                if b:
                    values.append(b)
                    owners.append(ci)
                continue
            value = b & 0x7F
            shift = 7
            while True:
                b = data[pos]
                pos += 1
                value |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
                if shift >= 35:
                    raise ValueError("uleb128 longer than 5 bytes")
            values.append(value)
            owners.append(ci)
        return pos

    def _method_string_ids(self, code_off: int) -> set[int]:
        """String indices loaded by const-string(/jumbo) in the code item at ``code_off``."""
        cached = self._method_strings.get(code_off)
        if cached is not None:
            return cached
        data = self._data
        start = code_off + _CODE_ITEM.size
        end = min(start + 2 * _CODE_ITEM.unpack_from(data, code_off)[5], len(data))
        # code items of a valid file do not overlap; decoding more than the file means hostile overlap
        self._decode_budget -= end - start
        if self._decode_budget < 0:
            raise DexError(f"{self.name}: corrupt code items (overlapping)")
        found, _ = self._decode_method(code_off, with_invokes=False)
        self._method_strings[code_off] = found
        return found

    def _decode_method(
        self, code_off: int, *, with_invokes: bool, field_reads: set[int] | None = None
    ) -> tuple[set[int], set[int]]:
        """(string indices loaded, method indices invoked) of the code item at ``code_off``; the
        invokes only when asked: the loop runs per instruction, and most callers need strings only.
        ``field_reads``, when given, receives the field indices the code reads with sget-object."""
        data = self._data
        insns_size = _CODE_ITEM.unpack_from(data, code_off)[5]
        start = code_off + _CODE_ITEM.size
        end = min(start + 2 * insns_size, len(data))
        found: set[int] = set()
        invokes: set[int] = set()
        invoke_ops = _INVOKE_OPS if with_invokes else frozenset()
        widths = INSTRUCTION_WIDTHS
        pc = start
        while pc + 1 < end:
            op = data[pc]
            if op == 0 and data[pc + 1]:
                ident = data[pc + 1] << 8
                if ident == _PACKED_SWITCH_PAYLOAD and pc + 4 <= end:
                    pc += 2 * (struct.unpack_from("<H", data, pc + 2)[0] * 2 + 4)
                elif ident == _SPARSE_SWITCH_PAYLOAD and pc + 4 <= end:
                    pc += 2 * (struct.unpack_from("<H", data, pc + 2)[0] * 4 + 2)
                elif ident == _FILL_ARRAY_DATA_PAYLOAD and pc + 8 <= end:
                    element_width, count = struct.unpack_from("<HI", data, pc + 2)
                    pc += 2 * ((element_width * count + 1) // 2 + 4)
                else:
                    break  # not a valid instruction: stop, like the Dalvik verifier would reject it
                continue
            if op == _OP_CONST_STRING and pc + 4 <= end:
                found.add(data[pc + 2] | data[pc + 3] << 8)
            elif op == _OP_CONST_STRING_JUMBO and pc + 6 <= end:
                found.add(struct.unpack_from("<I", data, pc + 2)[0])
            elif op in invoke_ops and pc + 4 <= end:
                invokes.add(data[pc + 2] | data[pc + 3] << 8)
            elif op == _OP_SGET_OBJECT and field_reads is not None and pc + 4 <= end:
                field_reads.add(data[pc + 2] | data[pc + 3] << 8)
            width = widths[op]
            if not width:
                break
            pc += 2 * width
        return found, invokes

    def method_strings(self, code_off: int) -> frozenset[int]:
        """Every string index the method at ``code_off`` (from :meth:`string_loaders`) loads."""
        return frozenset(self._method_string_ids(code_off))

    def method_invokes(self, code_off: int) -> frozenset[int]:
        """Indices (into method_ids) of every method the method at ``code_off`` invokes."""
        cached = self._method_invokes.get(code_off)
        if cached is None:
            self._method_string_ids(code_off)  # the first decoding is the one the budget counts
            _, cached = self._decode_method(code_off, with_invokes=True)
            self._method_invokes[code_off] = cached
        return frozenset(cached)

    def static_value_loaders(self, indices: Iterable[int]) -> dict[int, set[tuple[int, str]]]:
        """For each wanted string index that is the initial value of static fields (a class's
        ``static_values``: ``static String IP = "…"``, which d8 stores there instead of code that
        loads it), ``(code_off, class name)`` of every method that reads one of those fields with
        sget-object: what :meth:`string_loaders` gives for strings loaded by const-string. Indices no
        such field holds, or whose fields no code reads, are left out."""
        wanted = {i for i in indices if 0 <= i < self._string_ids_size}
        if not wanted:
            return {}
        fields = self._static_string_fields(wanted)
        if not fields:
            return {}
        readers = self._field_readers(set(fields))
        out: dict[int, set[tuple[int, str]]] = {}
        for field, idx in fields.items():
            if readers.get(field):
                out.setdefault(idx, set()).update(readers[field])
        return out

    def _static_string_fields(self, wanted: set[int]) -> dict[int, int]:
        """field_ids index -> string index, for static fields whose initial value is a wanted string.
        A damaged or unusual item (an array or annotation value) ends the walk of its class."""
        data = self._data
        defs = self._defs()
        out: dict[int, int] = {}
        # Only the classes whose static_values may hold a wanted string are walked: those whose
        # values start at or before a place where the bytes read as that string's encoded_value
        # (header 0x17 | (size - 1) << 5, the index in size bytes), the nearest such class each.
        starts = sorted((v, ci) for ci, v in enumerate(defs[7::8]) if v)
        if not starts:
            return out
        offsets = [v for v, _ in starts]
        # the encoded arrays lie together in the data section: from the first to past the last
        lo, hi = offsets[0], min(len(data), offsets[-1] + _STATIC_VALUES_TAIL)
        spots: set[int] = set()
        for i in wanted:
            size = max(1, (i.bit_length() + 7) // 8)
            needle = bytes([_VALUE_STRING | (size - 1) << 5]) + i.to_bytes(size, "little")
            at = data.find(needle, lo, hi)
            while at != -1:
                spots.add(at)
                at = data.find(needle, at + 1, hi)
        classes = set()
        for at in spots:
            k = bisect.bisect_right(offsets, at) - 1
            if k >= 0:
                classes.add(starts[k][1])
        budget = len(data)  # values of valid items never overlap: reading more means hostile overlap
        for ci in sorted(classes):
            class_data_off, values_off = defs[8 * ci + 6], defs[8 * ci + 7]
            if not class_data_off:
                continue
            try:
                pos = class_data_off
                n_static, pos = _uleb128(data, pos)
                for _ in range(3):
                    _, pos = _uleb128(data, pos)
                field_ids: list[int] = []
                field = 0
                for _ in range(min(n_static, budget)):
                    diff, pos = _uleb128(data, pos)
                    _, pos = _uleb128(data, pos)
                    field += diff
                    field_ids.append(field)
                count, vpos = _uleb128(data, values_off)
                budget -= count + (pos - class_data_off)
                if budget < 0:
                    break
                for k in range(min(count, len(field_ids))):
                    header = data[vpos]
                    vtype, arg = header & 0x1F, header >> 5
                    vpos += 1
                    if vtype in (_VALUE_ARRAY, _VALUE_ANNOTATION):
                        break
                    if vtype in (_VALUE_NULL, _VALUE_BOOLEAN):
                        continue
                    if vtype == _VALUE_STRING:
                        idx = int.from_bytes(data[vpos : vpos + arg + 1], "little")
                        if idx in wanted:
                            out[field_ids[k]] = idx
                    vpos += arg + 1
            except (IndexError, ValueError):
                continue  # a damaged class: its statics are not read
        return out

    def _field_readers(self, fields: set[int]) -> dict[int, set[tuple[int, str]]]:
        """For each field index, ``(code_off, class name)`` of every method reading it with sget-object."""
        result: dict[int, set[tuple[int, str]]] = {}
        data = self._data
        starts, owners = self._code_index()
        names = self.class_names()
        seen: set[int] = set()
        for m in _short_operand_pattern(_OP_SGET_OBJECT, fields).finditer(data, _HEADER_SIZE):
            pos = m.start()
            if pos & 1 or (data[pos + 2] | data[pos + 3] << 8) not in fields:
                continue
            k = self._code_item_at(pos, starts)
            if k is None or starts[k] in seen:
                continue
            code_off = starts[k]
            seen.add(code_off)
            reads = self._method_field_reads.get(code_off)
            if reads is None:
                self._method_string_ids(code_off)  # the first decoding is the one the budget counts
                reads = set()
                self._decode_method(code_off, with_invokes=False, field_reads=reads)
                self._method_field_reads[code_off] = reads
            for j in _sharing(starts, k):
                for f in reads & fields:
                    result.setdefault(f, set()).add((code_off, names[owners[j]]))
        return result

    def method_name(self, method_idx: int) -> tuple[str, str]:
        """(dotted class name, method name) of a method_ids entry; ``("", "")`` when out of range."""
        cached = self._method_names.get(method_idx)
        if cached is not None:
            return cached
        result = ("", "")
        if 0 <= method_idx < self._method_ids_size:
            class_idx, _proto, name_idx = struct.unpack_from(
                "<HHI", self._data, self._method_ids_off + 8 * method_idx
            )
            if class_idx < self._type_ids_size and name_idx < self._string_ids_size:
                type_string = struct.unpack_from("<I", self._data, self._type_ids_off + 4 * class_idx)[0]
                if type_string < self._string_ids_size:
                    result = (descriptor_to_name(self._string(type_string)), self._string(name_idx))
        self._method_names[method_idx] = result
        return result

    def string_references(self, indices: Iterable[int]) -> dict[int, set[str]]:
        """For each wanted string index, the dotted names of the defined classes whose code loads it
        with const-string or const-string/jumbo. Indices no code loads map to an empty set."""
        return {i: {name for _, name in loaders} for i, loaders in self.string_loaders(indices).items()}

    def string_loaders(self, indices: Iterable[int]) -> dict[int, set[tuple[int, str]]]:
        """For each wanted string index, ``(code_off, class name)`` of every method whose code loads
        it: the method's code item (for :meth:`method_strings` / :meth:`method_invokes`) and the
        dotted name of the class defining it. Indices no code loads map to an empty set."""
        wanted = {i for i in indices if 0 <= i < self._string_ids_size}
        result: dict[int, set[tuple[int, str]]] = {i: set() for i in wanted}
        if not wanted or not self._class_defs_size:
            return result
        data = self._data
        # candidates first: without any, the class_data walk (the costly part) is not needed
        candidates = _candidate_loads(data, wanted, _HEADER_SIZE)
        if not candidates:
            return result
        starts, owners = self._code_index()
        if not starts:
            return result
        names = self.class_names()
        seen_methods: set[int] = set()
        for pos in candidates:
            k = self._code_item_at(pos, starts)
            if k is None or starts[k] in seen_methods:
                continue
            code_off = starts[k]
            seen_methods.add(code_off)
            loaded = self._method_string_ids(code_off) & wanted
            for j in _sharing(starts, k) if loaded else ():
                for idx in loaded:
                    result[idx].add((code_off, names[owners[j]]))
        return result

    def _code_item_at(self, pos: int, starts: list[int]) -> int | None:
        """Index into ``starts`` (:meth:`_code_index`) of the code item whose instructions hold the
        offset ``pos``, or None."""
        k = bisect.bisect_right(starts, pos - _CODE_ITEM.size) - 1
        if k < 0:
            return None
        code_off = starts[k]
        if pos >= code_off + _CODE_ITEM.size + 2 * _CODE_ITEM.unpack_from(self._data, code_off)[5]:
            return None
        return k


def _candidate_loads(data: bytes, wanted: set[int], start: int) -> list[int]:
    """Even offsets from ``start`` where the bytes read as const-string or const-string/jumbo of a
    wanted index. Candidates only: whether they are real instructions is decided by decoding."""
    hits = []
    short, jumbo = _reference_patterns(wanted)
    if short is not None:
        for m in short.finditer(data, start):
            pos = m.start()
            if not pos & 1 and data[pos + 2] | data[pos + 3] << 8 in wanted:
                hits.append(pos)
    for m in jumbo.finditer(data, start):
        pos = m.start()
        if not pos & 1 and int.from_bytes(data[pos + 2 : pos + 6], "little") in wanted:
            hits.append(pos)
    hits.sort()
    return hits


def _reference_patterns(wanted: set[int]) -> tuple[re.Pattern[bytes] | None, re.Pattern[bytes]]:
    """Regexes for ``1a AA iiii`` (const-string) and ``1b AA iiiiiiii`` (const-string/jumbo) whose index
    bytes each belong to the wanted indices' bytes: a superset, callers check the index itself.

    Each starts with its opcode byte as a literal, which lets ``re`` skip ahead with a fast byte
    search; the operand is a lookahead so overlapping candidates are all reported. Byte classes
    rather than an alternation of exact indices: ``re`` tries alternatives one by one, which made
    the scan 3-10x slower with a few hundred candidates, while the false positives of the classes
    cost one set lookup each."""
    small = {i for i in wanted if i <= 0xFFFF}
    short = _short_operand_pattern(_OP_CONST_STRING, small) if small else None
    jumbo_bytes = b"".join(_byte_class({i >> shift & 0xFF for i in wanted}) for shift in (0, 8, 16, 24))
    jumbo = re.compile(b"\\x1b(?=[\\x00-\\xff]" + jumbo_bytes + b")", re.DOTALL)
    return short, jumbo


def _short_operand_pattern(opcode: int, indices: set[int]) -> re.Pattern[bytes]:
    """A regex for ``OP AA iiii`` (a 21c instruction: const-string, sget-object) whose 16-bit index
    bytes each belong to ``indices``' bytes (a superset, as in :func:`_reference_patterns`)."""
    index = _byte_class({i & 0xFF for i in indices}) + _byte_class({i >> 8 & 0xFF for i in indices})
    return re.compile(re.escape(bytes([opcode])) + b"(?=[\\x00-\\xff]" + index + b")", re.DOTALL)


def _sharing(starts: list[int], k: int) -> range:
    """Indices into ``starts`` of every method sharing the code item at ``starts[k]`` (a DEX may
    point several methods at one code item: each is an owner of what it loads)."""
    code_off = starts[k]
    lo, hi = k, k + 1
    while lo > 0 and starts[lo - 1] == code_off:
        lo -= 1
    while hi < len(starts) and starts[hi] == code_off:
        hi += 1
    return range(lo, hi)


def _byte_class(values: set[int]) -> bytes:
    if not values:
        return b"(?!)"
    if len(values) == 1:
        return re.escape(bytes(values))
    return b"[" + b"".join(b"\\x%02x" % v for v in sorted(values)) + b"]"
