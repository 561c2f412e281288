"""Encodings of values and bodies: the variants apps send identifiers in, and the decoders for
request bodies (Content-Encoding, base64 blobs, printable strings of binary data).

Pure functions; every decoder is bounded (output cap, depth) because request bodies are hostile.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import re
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - depends on the environment
        return None


# brotli and zstandard come with mitmproxy; bodies in those codings are decoded only if importable.
_brotli = _optional("brotli")
_zstd = _optional("zstandard")

__all__ = [
    "MAX_DECODED",
    "base64_text",
    "decode_content",
    "maybe_base64",
    "printable_strings",
    "value_variants",
]

#: Cap on any decompressed body (decompression bombs stop here; the prefix is still scanned).
MAX_DECODED = 8 * 1024 * 1024

_SEPARATORS = re.compile(r"[:\-\s.()]")


# ---------------------------------------------------------------------------------------------
# Value variants (what a known value may look like on the wire)
# ---------------------------------------------------------------------------------------------


def _forms(value: str, separators: bool) -> list[tuple[str, str]]:
    """(form, name) normalisations of a value, the given form first."""
    v = value.strip()
    out: list[tuple[str, str]] = [(v, "plain"), (v.lower(), "lower"), (v.upper(), "upper")]
    if separators:
        bare = _SEPARATORS.sub("", v)
        out += [(bare, "no-separators"), (bare.lower(), "no-separators"), (bare.upper(), "no-separators")]
        if ":" in v:
            dashed = v.replace(":", "-")
            out += [(dashed.lower(), "dashes"), (dashed.upper(), "dashes")]
    seen: set[str] = set()
    uniq: list[tuple[str, str]] = []
    for form, name in out:
        if form and form not in seen:
            seen.add(form)
            uniq.append((form, name))
    return uniq


def value_variants(
    value: str, *, separators: bool = False, derived: bool = True
) -> Iterator[tuple[str, str]]:
    """Yield (needle, encoding) pairs for a known value, plain forms first.

    ``separators`` adds separator-free (and dash-separated) forms: MACs, UUIDs, phone numbers.
    ``derived`` adds URL-encoding, base64 (standard/URL-safe, with/without padding), hex of the
    UTF-8 bytes, and MD5/SHA-1/SHA-256 (hex, lower and upper case) of every normalisation.
    """
    forms = _forms(value, separators)
    yield from forms
    if not derived:
        return
    for form, _ in forms:
        for q in (quote(form, safe=""), quote_plus(form, safe="")):
            if q != form:
                yield q, "urlencoded"
    for form, _ in forms:
        raw = form.encode("utf-8")
        std = base64.b64encode(raw).decode("ascii")
        url = base64.urlsafe_b64encode(raw).decode("ascii")
        yield std, "base64"
        yield std.rstrip("="), "base64"
        yield url, "base64url"
        yield url.rstrip("="), "base64url"
        h = raw.hex()
        yield h, "hex"
        yield h.upper(), "hex"
    for form, _ in forms:
        raw = form.encode("utf-8")
        for algo in ("md5", "sha1", "sha256"):
            d = hashlib.new(algo, raw).hexdigest()
            yield d, algo
            yield d.upper(), algo


# ---------------------------------------------------------------------------------------------
# Body decoding
# ---------------------------------------------------------------------------------------------


def _zlib(data: bytes, wbits: int, cap: int) -> bytes:
    return zlib.decompressobj(wbits).decompress(data, cap)


def _brotli_decode(data: bytes, cap: int) -> bytes:
    if _brotli is None:
        raise ValueError("brotli not available")
    d = _brotli.Decompressor()
    parts: list[bytes] = []
    size = 0
    # Small input steps bound how far one call can expand before the cap is checked.
    for i in range(0, len(data), 64):
        chunk = d.process(data[i : i + 64])
        parts.append(chunk)
        size += len(chunk)
        if size >= cap:
            break
    return b"".join(parts)[:cap]


def _zstd_decode(data: bytes, cap: int) -> bytes:
    if _zstd is None:
        raise ValueError("zstandard not available")
    with _zstd.ZstdDecompressor().stream_reader(data) as r:
        out = r.read(cap)
    return bytes(out)


def decode_content(body: bytes, content_encoding: str, cap: int = MAX_DECODED) -> bytes:
    """Undo Content-Encoding (gzip, deflate, br, zstd; comma-separated lists applied in reverse).

    Also un-gzips bodies that start with the gzip magic but carry no header (some SDKs do this).
    Returns the body unchanged when it cannot be decoded (truncated capture, wrong header): the
    raw bytes are still worth scanning.
    """
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    data = body
    for c in reversed(codings):
        try:
            if c in ("gzip", "x-gzip"):
                data = _zlib(data, 16 + zlib.MAX_WBITS, cap)
            elif c == "deflate":
                try:
                    data = _zlib(data, zlib.MAX_WBITS, cap)
                except zlib.error:  # raw deflate without zlib header (old IIS-style servers/clients)
                    data = _zlib(data, -zlib.MAX_WBITS, cap)
            elif c == "br":
                data = _brotli_decode(data, cap)
            elif c == "zstd":
                data = _zstd_decode(data, cap)
            elif c == "identity":
                continue
            else:
                return data
        except (zlib.error, ValueError, EOFError):
            return data
        except Exception as e:  # brotli.error / zstd.ZstdError are not ValueError subclasses
            if _is_codec_error(e):
                return data
            raise
    if not codings and data[:2] == b"\x1f\x8b":
        try:
            data = _zlib(data, 16 + zlib.MAX_WBITS, cap)
        except zlib.error:
            pass
    return data


def _is_codec_error(e: Exception) -> bool:
    if _brotli is not None and isinstance(e, _brotli.error):
        return True
    return _zstd is not None and isinstance(e, _zstd.ZstdError)


# ---------------------------------------------------------------------------------------------
# Base64 blobs and binary bodies
# ---------------------------------------------------------------------------------------------

_B64_TOKEN = re.compile(r"[A-Za-z0-9+/_\-]{16,}={0,2}")
_HEXONLY = re.compile(r"[0-9A-Fa-f]+")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")


#: Characters of a decoded blob whose share of control characters decides "text" (the first 64 Ki:
#: counting all 8 MiB of a gzip bomb of NULs took a second, per token).
_TEXT_SAMPLE = 1 << 16


def _mostly_text(b: bytes) -> str | None:
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not s:
        return None
    sample = s[:_TEXT_SAMPLE]
    return s if len(_CONTROL.findall(sample)) <= 0.05 * len(sample) else None


def maybe_base64(token: str, cap: int = MAX_DECODED) -> str | None:
    """Decode a base64/base64url token to text if it plausibly is base64 of text (or of gzipped text).

    Hex-only and digit-only tokens are not tried: they are hashes, IDs and numbers.
    """
    return base64_text(token, cap)[0]


def base64_text(token: str, cap: int = MAX_DECODED) -> tuple[str | None, int]:
    """:func:`maybe_base64` and the number of bytes decoded to find out (0 when not tried), so that
    callers can bound the total work of one request: each token may be a gzip bomb."""
    if len(token) < 16 or _HEXONLY.fullmatch(token):
        return None, 0
    t = token.rstrip("=")
    if len(t) % 4 == 1:
        return None, 0
    padded = t + "=" * (-len(t) % 4)
    try:
        if "-" in t or "_" in t:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None, 0
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = _zlib(raw, 16 + zlib.MAX_WBITS, cap)
        except zlib.error:
            return None, len(raw)
    return _mostly_text(raw), len(raw)


def base64_tokens(text: str, limit: int = 64) -> Iterator[str]:
    """Base64-looking tokens of a string (at most ``limit``)."""
    for n, m in enumerate(_B64_TOKEN.finditer(text)):
        if n >= limit:
            return
        yield m.group()


_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{6,}")


def printable_strings(data: bytes, limit: int = 20000) -> Iterator[str]:
    """Runs of ≥ 6 printable ASCII bytes (protobuf strings, binary analytics formats)."""
    for n, m in enumerate(_PRINTABLE_RUN.finditer(data)):
        if n >= limit:
            return
        yield m.group().decode("ascii")
