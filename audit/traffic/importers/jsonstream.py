"""An incremental reader for one array inside a big JSON document (a HAR's ``log.entries``).

``json.load`` of a 172 MiB HAR holds the whole document as Python objects (about 1 GB, issue 15).
:class:`JsonStream` reads the file in 1 MiB pieces and decodes the document around the array with a
small hand-written walk over the enclosing objects, and each array element with the C decoder
(``json.JSONDecoder.raw_decode``): an element is the only thing held at a time, and element values
are exactly what :func:`json.load` gives (lone surrogate escapes, nesting limit, numbers). An element
larger than a piece (a 40 MiB ``serverIPAddress``) is read by doubling the buffer, not piece by piece.

Problems raise :class:`JsonStreamError` with ``json.load``'s wording (line, column, message); bytes
that are not UTF-8 raise :class:`UnicodeDecodeError` with the absolute byte offset.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

CHUNK = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
#: A decode error this close to the end of the buffer may only mean that the value goes on.
_NEAR_END = 32


class JsonStreamError(ValueError):
    """The document is not valid JSON, or not of the expected shape (``shape`` set)."""

    def __init__(self, message: str, *, shape: bool = False) -> None:
        super().__init__(message)
        self.shape = shape


class JsonStream:
    """Walks ``f`` (a binary file holding UTF-8 JSON, with or without a BOM)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._raw_decode = json.JSONDecoder().raw_decode
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._bytes = 0
        self._dropped_lines = 0
        self._dropped_col = 0

    # -- buffer ------------------------------------------------------------------------------

    def _fill(self, want: int = CHUNK) -> bool:
        """Read about ``want`` more bytes; False at the end of the file."""
        if self.eof:
            return False
        if self.pos > CHUNK:  # drop what was consumed, remembering where it ended for messages
            dropped = self.buf[: self.pos]
            newlines = dropped.count("\n")
            self._dropped_lines += newlines
            self._dropped_col = (
                len(dropped) - dropped.rfind("\n") - 1 if newlines else self._dropped_col + len(dropped)
            )
            self.buf, self.pos = self.buf[self.pos :], 0
        data = self.f.read(max(want, CHUNK))
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as e:
            raise UnicodeDecodeError(
                e.encoding, e.object, self._bytes + e.start, self._bytes + e.end, e.reason
            ) from e
        self._bytes += len(data)
        self.eof = not data
        self.buf += text
        return True

    def _where(self, pos: int) -> tuple[int, int]:
        before = self.buf[:pos]
        line = before.count("\n")
        col = pos - before.rfind("\n") if line else pos + 1 + self._dropped_col
        return self._dropped_lines + line + 1, col

    def error(self, msg: str, pos: int | None = None) -> JsonStreamError:
        line, col = self._where(self.pos if pos is None else pos)
        return JsonStreamError(f"invalid JSON at line {line} column {col}: {msg}")

    def peek(self) -> str:
        """The next character that is not white space (not consumed); "" at the end of the file."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def expect(self, chars: str, what: str) -> str:
        ch = self.peek()
        if not ch or ch not in chars:
            raise self.error(f"Expecting {what}")
        self.pos += 1
        return ch

    def value(self) -> Any:
        """The next complete JSON value, decoded by the C decoder."""
        self.peek()
        while True:
            try:
                value, end = self._raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                incomplete = e.msg.startswith("Unterminated string") or e.pos >= len(self.buf) - _NEAR_END
                if incomplete and self._fill(len(self.buf) - self.pos):
                    continue
                raise self.error(e.msg, e.pos) from e
            if end == len(self.buf) and self._fill():
                continue  # a number or literal at the end of the buffer may go on
            self.pos = end
            return value

    # -- structure -----------------------------------------------------------------------------

    def members(self) -> Iterator[str]:
        """The keys of the object that starts here; after each, the caller reads or walks its value."""
        self.expect("{", "'{'")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self.error("Expecting property name enclosed in double quotes")
            key = self.value()
            self.expect(":", "':' delimiter")
            yield key
            if self.expect(",}", "',' delimiter") == "}":
                return

    def items(self) -> Iterator[Any]:
        """The elements of the array that starts here.

        An element that lies whole inside the buffer, with its delimiter, is decoded right there (the
        common case, a HAR entry of a few KB in a 1 MiB piece); one at the buffer's end, or one that
        does not decode, takes the general path (:meth:`value`, :meth:`expect`), which reads on or
        raises the error."""
        self.expect("[", "'['")
        if self.peek() == "]":
            self.pos += 1
            return
        raw, ws = self._raw_decode, _WS.match
        while True:
            buf = self.buf
            start = ws(buf, self.pos).end()  # type: ignore[union-attr]
            try:
                value, end = raw(buf, start)
            except json.JSONDecodeError:
                end = len(buf)
            delim = ws(buf, end).end() if end < len(buf) else len(buf)  # type: ignore[union-attr]
            if delim < len(buf) and buf[delim] in ",]":
                self.pos = delim + 1
                yield value
                if buf[delim] == "]":
                    return
                continue
            yield self.value()
            if self.expect(",]", "',' delimiter") == "]":
                return

    def array_at(self, path: Sequence[str]) -> Iterator[Any]:
        """The elements of the array at ``path`` (``("log", "entries")``) in a document that is an
        object; every other value is decoded and dropped, and the rest of the document is still
        checked once the array is done. Raises a ``shape`` :class:`JsonStreamError` when there is no
        such array (never after yielding an element)."""
        found = False

        def walk(depth: int) -> Iterator[Any]:
            nonlocal found
            for key in self.members():
                if key != path[depth] or found:
                    self.value()
                elif depth + 1 == len(path):
                    if self.peek() != "[":
                        raise JsonStreamError("not an array", shape=True)
                    found = True
                    yield from self.items()
                elif self.peek() == "{":
                    yield from walk(depth + 1)
                else:
                    raise JsonStreamError("not an object", shape=True)

        if self.peek() != "{":
            self.value()  # a valid document of another shape, or the JSON error
            raise JsonStreamError("not an object", shape=True)
        yield from walk(0)
        if self.peek():
            raise self.error("Extra data")
        if not found:
            raise JsonStreamError("no such array", shape=True)
