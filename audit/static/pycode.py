"""The ``if __name__ == "__main__":`` block of compiled Python (a ``.pyc`` in a python-for-android
bundle): which string constants only that block uses.

A bundled library's self-test or example (``xml/sax/expatreader.py`` parses
``http://www.ibiblio.org/…/hamlet.xml``, Kivy's ``carousel.py`` shows ``http://placehold.it/…``
images) runs only when the module is the program, never when the app imports it: its URLs name no
server the app uses.

The marshal data is read by a small bounded reader of our own (``marshal.loads`` is not meant for
hostile data, and reads only its own Python version's code objects): Python 3.7 to 3.12, whose code
object layouts and opcodes of the few instructions looked at are known. Anything else, or damaged
data, gives no strings, so the rule never costs a server it cannot prove is only in such a block.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["main_block_strings"]

#: Bounds of the reader: nested objects, objects in all, items of one container.
_MAX_DEPTH = 100
_MAX_OBJECTS = 200_000
_MAX_ITEMS = 1_000_000

#: Opcodes of the instructions looked at; the same numbers in 3.7 to 3.12.
_LOAD_CONST, _LOAD_NAME, _COMPARE_OP, _POP_JUMP_IF_FALSE, _EXTENDED_ARG = 100, 101, 107, 114, 144


@dataclass(frozen=True)
class _Code:
    code: bytes
    consts: tuple[object, ...]
    names: tuple[object, ...]


class _Bad(Exception):
    """Data the reader does not follow."""


def _minor_version(magic: int) -> int | None:
    """The Python 3 minor version of a ``.pyc`` magic number, for the versions read here."""
    for lo, hi, minor in ((3390, 3399, 7), (3400, 3419, 8), (3420, 3429, 9), (3430, 3449, 10),
                          (3450, 3499, 11), (3500, 3549, 12)):  # fmt: skip
        if lo <= magic <= hi:
            return minor
    return None


class _Reader:
    def __init__(self, data: bytes, pos: int, minor: int) -> None:
        self.data, self.pos, self.minor = data, pos, minor
        self.refs: list[object] = []
        self.count = 0

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise _Bad
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def _int(self) -> int:
        return int.from_bytes(self._take(4), "little", signed=True)

    def _size(self) -> int:
        n = self._int()
        if not 0 <= n <= _MAX_ITEMS:
            raise _Bad
        return n

    def read(self, depth: int = 0) -> object:
        self.count += 1
        if depth > _MAX_DEPTH or self.count > _MAX_OBJECTS:
            raise _Bad
        head = self._take(1)[0]
        code, flag = chr(head & 0x7F), head & 0x80
        if code == "r":
            i = self._int()
            if not 0 <= i < len(self.refs):
                raise _Bad
            return self.refs[i]
        slot = -1
        if flag:
            slot = len(self.refs)
            self.refs.append(None)
        value = self._value(code, depth)
        if flag:
            self.refs[slot] = value
        return value

    def _value(self, code: str, depth: int) -> object:
        if code in "0NFTS.":
            return None
        if code == "i":
            return self._int()
        if code == "l":
            self._take(2 * self._size())
            return None
        if code == "g":
            self._take(8)
            return None
        if code == "y":
            self._take(16)
            return None
        if code in "fx":
            for _ in range(1 if code == "f" else 2):
                self._take(self._take(1)[0])
            return None
        if code in "zZ":
            return self._take(self._take(1)[0]).decode("latin-1")
        if code in "aA":
            return self._take(self._size()).decode("latin-1")
        if code in "ut":
            return self._take(self._size()).decode("utf-8", "surrogatepass")
        if code == "s":
            return self._take(self._size())
        if code in "([<>":
            return tuple(self.read(depth + 1) for _ in range(self._size()))
        if code == ")":
            return tuple(self.read(depth + 1) for _ in range(self._take(1)[0]))
        if code == "{":
            items: list[object] = []
            while self.data[self.pos : self.pos + 1] not in (b"0", b""):
                items += (self.read(depth + 1), self.read(depth + 1))
            self._take(1)
            return tuple(items)
        if code == "c":
            return self._code(depth)
        raise _Bad

    def _code(self, depth: int) -> _Code:
        # argcount, [posonlyargcount (3.8+)], kwonlyargcount, [nlocals (< 3.11)], stacksize, flags
        self._take(4 * (5 if self.minor in (7, 11, 12) else 6))
        code, consts, names = (self.read(depth + 1) for _ in range(3))
        # varnames, freevars, cellvars, filename, name (< 3.11); localsplusnames, localspluskinds,
        # filename, name, qualname (3.11+)
        for _ in range(5):
            self.read(depth + 1)
        self._int()  # firstlineno
        for _ in range(1 if self.minor < 11 else 2):  # lnotab; linetable and exceptiontable
            self.read(depth + 1)
        if not isinstance(code, bytes) or not isinstance(consts, tuple) or not isinstance(names, tuple):
            raise _Bad
        return _Code(code, consts, names)


def _instructions(code: bytes) -> Iterator[tuple[int, int, int]]:
    """(offset, opcode, argument) of wordcode, ``EXTENDED_ARG`` folded in; caches (opcode 0 in
    3.11+) are left out."""
    ext = 0
    for off in range(0, len(code) - 1, 2):
        op, arg = code[off], code[off + 1] | ext
        if op == _EXTENDED_ARG:
            ext = arg << 8
            continue
        ext = 0
        if op:
            yield off, op, arg


def _strings(value: object, seen: set[int]) -> Iterator[str]:
    """Every string in a constant: itself, the items of a tuple, the constants of a code object."""
    if isinstance(value, str):
        yield value
    elif id(value) in seen:
        return
    elif isinstance(value, tuple):
        seen.add(id(value))
        for v in value:
            yield from _strings(v, seen)
    elif isinstance(value, _Code):
        seen.add(id(value))
        for v in value.consts:
            yield from _strings(v, seen)


def _main_block(module: _Code, minor: int) -> tuple[int, int] | None:
    """Offsets [start, end) of the module's ``if __name__ == "__main__":`` body, if it has one."""
    ins = list(_instructions(module.code))
    for k in range(len(ins) - 3):
        (_, op1, a1), (_, op2, a2), (_, op3, a3), (off4, op4, a4) = ins[k : k + 4]
        if not (
            op1 == _LOAD_NAME and op2 == _LOAD_CONST and op3 == _COMPARE_OP and op4 == _POP_JUMP_IF_FALSE
        ):
            continue
        if a1 >= len(module.names) or a2 >= len(module.consts):
            continue
        if module.names[a1] != "__name__" or module.consts[a2] != "__main__":
            continue
        if (a3 >> 4 if minor >= 12 else a3) != 2:  # "=="
            continue
        start = off4 + 2
        if minor <= 9:
            end = a4  # an absolute byte offset
        elif minor == 10:
            end = 2 * a4  # an absolute instruction index
        else:
            end = start + 2 * a4  # forward, in instructions, from the next one
        return (start, end) if start <= end <= len(module.code) else None
    return None


def main_block_strings(data: bytes) -> frozenset[str]:
    """The strings of a ``.pyc`` (``data``, with its 16-byte header) that only the module's
    ``__main__`` block loads, with those of the functions and classes it defines; empty when there
    is no such block, for other Python versions, or for data the reader does not follow."""
    if len(data) < 17 or b"__main__" not in data:
        return frozenset()
    minor = _minor_version(int.from_bytes(data[:2], "little"))
    if minor is None or data[2:4] != b"\r\n":
        return frozenset()
    try:
        module = _Reader(data, 16, minor).read()
    except (_Bad, UnicodeDecodeError, RecursionError):
        return frozenset()
    if not isinstance(module, _Code):
        return frozenset()
    block = _main_block(module, minor)
    if block is None:
        return frozenset()
    inside: set[str] = set()
    outside: set[str] = set()
    seen: set[int] = set()
    for off, op, arg in _instructions(module.code):
        if op == _LOAD_CONST and arg < len(module.consts):
            target = inside if block[0] <= off < block[1] else outside
            target.update(_strings(module.consts[arg], seen if target is inside else set()))
    return frozenset(inside - outside)
