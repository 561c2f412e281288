"""A request as fields: query, headers, cookies, and bodies (form, JSON, XML, multipart, text)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
# A form body: "k=v" then "&k=v" or "&k" pairs. Each pair is one key character then anything up to
# the next "&": the same language as "key{1,256} =? value*", whose ambiguous split between key and
# value backtracked exponentially on "a=1&aaaa&aaaa…&=" (fuzzing, a 200-byte body hung the import).
_FORMISH = re.compile(r"[^=&\s]{1,256}=[^&\s]*(?:&[^=&\s][^&\s]*)*&?")
_Field = tuple[str, str, str]  # location, key, value


def _json_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return parent + "[*]"  # array elements collapse: one finding per path, not per element
    k = key[:64]
    if _IDENT.fullmatch(k):
        return f"{parent}.{k}"
    return parent + "[" + json.dumps(k, ensure_ascii=True) + "]"


def _json_fields(doc: Any) -> Iterator[_Field]:
    """Leaves of a JSON document: (JSONPath, key, value as text). Iterative (hostile nesting)."""
    stack: list[tuple[str, str, Any]] = [("$", "", doc)]
    while stack:
        path, key, node = stack.pop()
        if isinstance(node, dict):
            for k, v in reversed(list(node.items())):
                sk = str(k)
                p = _json_path(path, sk)
                yield p, "", sk
                stack.append((p, sk, v))
        elif isinstance(node, list):
            p = _json_path(path, 0)
            for v in reversed(node):
                stack.append((p, key, v))
        elif isinstance(node, str):
            yield path, key, node
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int | float):
            yield path, key, repr(node) if isinstance(node, float) else str(node)


def _load_json(text: str) -> list[Any] | None:
    s = text.strip()
    if not s or s[0] not in "{[":
        return None
    try:
        return [json.loads(s)]
    except (ValueError, RecursionError):
        pass
    docs: list[Any] = []  # NDJSON analytics batches
    for line in s.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            docs.append(json.loads(line))
        except (ValueError, RecursionError):
            return None
    return docs or None


def _xml_fields(text: str) -> Iterator[_Field] | None:
    # Entity declarations are refused outright (billion laughs / external entities), not parsed.
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return None
    try:
        root = ElementTree.fromstring(text)
    except (ElementTree.ParseError, ValueError, RecursionError):
        return None

    def local(tag: Any) -> str:
        t = str(tag)
        return t.rsplit("}", 1)[-1][:64]

    def walk() -> Iterator[_Field]:
        stack: list[tuple[str, ElementTree.Element]] = [("/" + local(root.tag), root)]
        while stack:
            path, el = stack.pop()
            tag = local(el.tag)
            # <string name="imei">…</string>-style: the name attribute is the key.
            key = el.attrib.get("name") or el.attrib.get("key") or tag
            for a, v in el.attrib.items():
                yield f"{path}/@{local(a)}", local(a), v
            if el.text and el.text.strip():
                yield path, key, el.text
            for child in reversed(list(el)):
                stack.append((f"{path}/{local(child.tag)}", child))

    return walk()


def _parse_text(text: str, ctype: str) -> tuple[str, Iterator[_Field]]:
    """Structure of a text payload: (kind, fields with locations relative to the payload)."""
    ct = ctype.lower()
    if "json" in ct or text.lstrip()[:1] in ("{", "["):
        docs = _load_json(text)
        if docs is not None:
            return "json", (f for d in docs for f in _json_fields(d))
    if "x-www-form-urlencoded" in ct or (
        len(text) < 1_000_000 and "=" in text and _FORMISH.fullmatch(text.strip())
    ):
        pairs = parse_qsl(text.strip(), keep_blank_values=True)
        if pairs:
            return "form", _form_fields(pairs)
    if "xml" in ct or text.lstrip()[:1] == "<":
        fields = _xml_fields(text)
        if fields is not None:
            return "xml", fields
    return "text", iter([("", "", text)])


def _form_fields(pairs: list[tuple[str, str]]) -> Iterator[_Field]:
    for k, v in pairs:
        name = k[:64]
        yield name, "", k
        yield name, k, v


def _header(headers: Iterable[tuple[str, str]], name: str) -> str:
    for k, v in headers:
        if k.lower() == name:
            return v
    return ""


def _param(ctype: str, name: str) -> str | None:
    m = re.search(rf'(?i);\s*{name}\s*=\s*("([^"]*)"|[^;\s]+)', ctype)
    if not m:
        return None
    return m.group(2) if m.group(2) is not None else m.group(1)


def _multipart(data: bytes, boundary: str) -> Iterator[tuple[str, str, bytes]]:
    """(name, content type, body) of each part of a multipart body."""
    delim = b"--" + boundary.encode("latin-1", "replace")
    for i, chunk in enumerate(data.split(delim)[1:257]):
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
        sep = chunk.find(b"\r\n\r\n")
        sep_len = 4
        if sep < 0:
            sep, sep_len = chunk.find(b"\n\n"), 2
        if sep < 0:
            continue
        head = chunk[:sep].decode("latin-1")
        body = chunk[sep + sep_len :]
        body = body.removesuffix(b"\r\n").removesuffix(b"\n")
        name = f"part{i + 1}"
        ctype = ""
        for line in head.splitlines():
            low = line.lower()
            if low.startswith("content-disposition:"):
                n = _param(line, "name")
                if n:
                    name = n[:64]
            elif low.startswith("content-type:"):
                ctype = line.split(":", 1)[1].strip()
        yield name, ctype, body


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _looks_binary(data: bytes) -> str | None:
    """The body as text if it is text, else None."""
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    sample = s[:4096]
    return None if len(_CONTROL.findall(sample)) > len(sample) * 0.05 else s
