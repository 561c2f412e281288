"""``audit scan``: one APK, split bundle (.apks/.xapk/.apkm), app bundle (.aab) or bare DEX → ScanResult.

The input is sniffed by content (zip or DEX magic, then the entry names), the extension only names the
bundle flavour. Every entry is read at most once, in memory, through :class:`audit.static.archive.Archive`;
endpoints are collected per distinct value with every source file and every DEX class that loads the
string, and SDKs are detected twice, independently: by code prefix and by the hosts found.

Fatal problems (not an archive, zip bomb, nothing scannable) raise :class:`audit.errors.InputError`;
anything else (a corrupt DEX among several, a garbled manifest, an unsafe entry name) becomes a note in
``ScanResult.errors`` and the rest is still scanned.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import logging
import os
import pickle
import re
import struct
import zipfile
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from audit.enrich.company import is_hosted, load_companies
from audit.errors import ArchiveError, AuditError, DexError, InputError
from audit.forking import fork_is_safe
from audit.models import AppInfo, Endpoint, ScanResult, Sdk, Signer, Source
from audit.static.archive import ZIP_MAGICS, Archive, EntryError, Limits
from audit.static.containers import Unpacked, packed, unpack
from audit.static.dex import DexFile
from audit.static.endpoints import (
    Candidate,
    EndpointExtractor,
    candidate_text,
    is_code_name,
    normalize,
    package_names,
)
from audit.static.manifest import Manifest, parse_manifest
from audit.static.permissions import data_access
from audit.static.pycode import main_block_strings
from audit.static.resources import (
    CREDIT_ELEMENTS,
    RES_XML_TYPE,
    ResourceError,
    XmlElement,
    arsc_strings,
    arsc_xml_files,
    network_security_domains,
    parse_axml,
    parse_proto_xml,
    proto_fields,
    table_size_problem,
    xml_credit_strings,
    xml_namespace_uris,
    xml_strings,
)
from audit.static.servers import (
    NO_IP_EVIDENCE,
    NOTICE_DESCRIPTORS,
    CodeUse,
    Verdict,
    cites,
    code_use,
    in_literal_message,
    in_message,
    is_message,
    judge,
    sibling_evidence,
)
from audit.static.signatures import MIN_CODE_STRINGS, CodePresence, SignatureDb, load_signatures
from audit.static.signing import merge_signers, read_signers
from audit.static.transport import NetworkSecurityConfig, parse_network_security_config, pin_indices
from audit.static.transport import merge as merge_transport

__all__ = ["BUNDLE_FORMATS", "FORMATS", "scan_path", "sniff_format"]

log = logging.getLogger(__name__)

FORMATS = ("apk", "apks", "xapk", "apkm", "aab", "dex")
#: An APK whose DEX files are at least this large (compressed) is scanned by two processes: this one
#: reads the DEX files while a forked child reads everything else (manifest, resources, assets,
#: native libraries). Below it, forking costs more than it saves.
PARALLEL_MIN_DEX = 2 << 20

#: Distinct endpoint strings listed per input. Real apps have a few thousand; an input made to hold
#: millions would cost minutes and gigabytes. The cap applies while extracting (issue 15): once a
#: little more than this many distinct strings are held (room for the ones the final filters drop),
#: the search stops, the first ones in sorted order are listed and the result says so.
MAX_ENDPOINTS = 100_000
#: Decompressed bytes one archive asset may give, in entry limits (64 MiB each by default): a
#: python-for-android bundle of 24 MB holds 59 MB of Python (zlib's output is joined once at the end,
#: so a bomb costs about twice this in memory for a moment).
ARCHIVE_ASSET_ENTRIES = 2
#: Text assets and native libraries are searched in slices of about this many bytes, cut between
#: tokens, so that the cap also spares the rest of a huge asset.
SEARCH_SLICE = 4 << 20
_SEPARATOR = re.compile(rb"[^\x21-\x7e]")  # a byte no endpoint contains (see candidate_text)
BUNDLE_FORMATS = ("apks", "xapk", "apkm")
DEX_MAGIC = b"dex\n"

_APK_DEX = re.compile(r"classes\d*\.dex")
_AAB_DEX = re.compile(r"[^/]+/dex/[^/]+\.dex")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # DexFile joins surrogate pairs: any left is lone
_TEXT_EXTENSIONS = frozenset(
    {
        "js", "json", "html", "htm", "xml", "txt", "properties", "cfg", "conf", "config", "ini", "yaml", "yml",
        "toml", "plist", "csv", "env", "bundle", "jsbundle", "css", "md", "svg", "map", "ts", "lua", "py",
    }
)  # fmt: skip
#: Asset extensions never worth reading as text.
_BINARY_EXTENSIONS = frozenset(
    {"png", "jpg", "jpeg", "gif", "webp", "mp3", "mp4", "ogg", "wav", "ttf", "otf", "woff", "woff2", "bin",
     "so", "dex", "jar", "zip", "gz", "7z", "tflite", "pb", "ico", "bmp", "m4a", "aac", "flac", "webm", "mkv"}
)  # fmt: skip
#: Assets opened as archives whatever their first bytes (``.tar`` and gzip assets are recognised by
#: their bytes too: python-for-android's ``private.tar`` is a gzip).
_ARCHIVE_EXTENSIONS = frozenset({"zip", "gz", "tgz", "tar"})
#: Classes of platform and common libraries: not "the app's own code" for the documentation-URL rule.
_LIBRARY_ROOTS = (
    "android.", "androidx.", "java.", "javax.", "kotlin.", "kotlinx.", "dalvik.", "com.google.android.",
    "com.google.common.", "com.google.gson.", "com.google.protobuf.", "com.google.firebase.", "okhttp3.",
    "okio.", "retrofit2.", "com.squareup.", "org.apache.", "org.json.", "org.jetbrains.", "org.intellij.",
    "io.reactivex.", "com.fasterxml.", "org.bouncycastle.", "org.slf4j.", "ch.qos.logback.", "io.netty.", "com.bumptech.",
    "org.chromium.", "io.flutter.", "com.facebook.react.", "org.greenrobot.", "dagger.", "javax.inject.",
)  # fmt: skip


def sniff_format(name: str, head: bytes, entry_names: Iterable[str] = ()) -> str:
    """The input format from its first bytes, entry names (zips) and, for bundles, its extension."""
    if head.startswith(DEX_MAGIC):
        return "dex"
    if head[:4] not in ZIP_MAGICS:
        raise InputError(f"{name}: not an APK, app bundle or DEX file (unknown content)")
    names = set(entry_names)
    if "AndroidManifest.xml" in names:
        return "apk"
    if "base/manifest/AndroidManifest.xml" in names or any(_AAB_DEX.fullmatch(n) for n in names):
        return "aab"
    ext = name.rpartition(".")[2].lower()
    if ext in BUNDLE_FORMATS:
        return ext
    if "manifest.json" in names and any(n.endswith(".apk") for n in names):
        return "xapk"
    if "info.json" in names and any(n.endswith(".apk") for n in names):
        return "apkm"
    if any(n.endswith(".apk") for n in names):
        return "apks"
    if ext == "aab":
        return "aab"
    return "apk"  # an APK without a manifest: scanned for what it has, with an error note


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_text(name: str, data: bytes) -> bool:
    ext = name.rpartition("/")[2].rpartition(".")[2].lower()
    if ext in _BINARY_EXTENSIONS:
        return False
    head = data[:4096]
    if b"\x00" in head:
        return False
    if ext in _TEXT_EXTENSIONS:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3  # a multi-byte character cut by the 4 KiB window
    return True


#: Occurrence contexts recorded without the file: ``port``, ``nsc``, and for every occurrence ``msg``
#: (inside a message: a DEX string or compiled-Python constant that reads as one, text around it in
#: binary data), ``main`` (a compiled-Python constant only the module's ``__main__`` block loads:
#: :func:`audit.static.pycode.main_block_strings`) or ``code`` (any other); ``static`` marks a DEX
#: string loaded only as a static field's initial value (its loaders read the field).
_PLAIN_CONTEXTS = frozenset({"port", "nsc", "msg", "code", "main", "static"})
#: Names of files that hold licence texts and notices: a URL in one credits someone (``<http://fsf.org/>``
#: in the GPL), it names no server the app uses. Python packaging metadata (``*.dist-info/``,
#: ``*.egg-info/``: a bundled library's home page, issue tracker and README) is the same kind of text.
#: ``!`` separates the members of an archive asset (``assets/private.tar!pip-21.3.dist-info/METADATA``).
#: In such an archive (a Python bundle), modules of package metadata (``__about__.py``,
#: ``__version__.py``: ``__url__``, ``__uri__``) and the test, documentation and example folders of
#: bundled libraries (``numpy/doc/``, ``numpy/testing/``) are the same kind of text, and so are type
#: stubs (``*.pyi``: never run), backups a patch left (``site.py.orig``) and the packaging and build
#: files of bundled libraries (``setup.py``, ``METADATA``, ``PKG-INFO``, ``pyproject.toml``, CI and
#: pre-commit configs: a home page, the tz data's download site, a hook's source repository).
_LICENCE_FILE = re.compile(
    r"(?i)(?:^|[/!])[^/!]*(?:licen[cs]|notice|copying|\bgpl|credits|acknowledg|third[-_]?party|open[-_]?source)[^/!]*$"
    r"|\.(?:dist|egg)-info/[^/!]*$"
    r"|(?:^|[/!])(?:readme|changelog|changes|history|authors|contributors)(?:\.[^/!]*)?$"
    r"|(?:^|[/!])(?:__about__|__version__|_version|__pkginfo__)\.pyc?$"
    r"|![^!]*/(?:tests?|testing|docs?|examples?)/[^!]*$"
    r"|![^!]*\.(?:pyi|orig|rej|bak)$"
    r"|!(?:[^!]*/)?(?:METADATA|PKG-INFO|setup\.pyc?|setup\.cfg|pyproject\.toml|tox\.ini|noxfile\.pyc?|conftest\.pyc?"
    r"|MANIFEST\.in|\.?pre-commit-config\.ya?ml|\.travis\.ya?ml|\.gitlab-ci\.ya?ml|appveyor\.ya?ml)$"
)


#: Source kinds whose file can be a licence, credit or metadata file (assets and native libraries,
#: and the members of archives among them); not DEX files, resources or the manifest.
_FILE_KINDS = frozenset({"asset", "native"})


@functools.lru_cache(maxsize=4096)
def _is_licence_file(file: str) -> bool:
    """``file`` holds licence texts, credits or metadata (:data:`_LICENCE_FILE`)."""
    return _LICENCE_FILE.search(file) is not None


#: Text files where a line starting with ``#`` is a comment (a dictionary's source credits, a config's
#: disabled entries): their comments are not read.
_HASH_COMMENT_EXTENSIONS = frozenset(
    {"yaml", "yml", "properties", "conf", "cfg", "ini", "toml", "sh", "py", "txt", "env", "", "spec", "fish",
     "bash", "pem", "crt", "r", "pl", "rb", "tab", "orig", "ps1", "psm1"}
)  # fmt: skip
#: PowerShell scripts, whose help and comment blocks are ``<# … #>`` as well as ``#`` lines
#: (``For more information on Execution Policies: https://go.microsoft.com/fwlink/…`` in venv's
#: ``Activate.ps1``).
_BLOCK_HASH_EXTENSIONS = frozenset({"ps1", "psm1"})
_BLANK_BEFORE_HASH = 64
#: Source files with ``/* … */`` and ``//`` comments (JavaScript and CSS of web bundles, C-like code):
#: a URL in a comment cites something (``* https://stackoverflow.com/questions/…``); it is not read.
_C_COMMENT_EXTENSIONS = frozenset(
    {"js", "mjs", "cjs", "ts", "jsx", "tsx", "bundle", "css", "java", "kt", "c", "h", "cpp", "cc", "go"}
)
#: Script sources whose string literals are read for messages (:meth:`_Scan.add_script`): a React
#: Native bundle (``index.android.bundle``) is JavaScript too.
_SCRIPT_EXTENSIONS = frozenset({"js", "mjs", "cjs", "ts", "jsx", "tsx", "bundle"})
#: Markup files whose ``<!-- … -->`` comments are not read (an editor's credit, disabled markup).
_MARKUP_EXTENSIONS = frozenset({"html", "htm", "xhtml", "xml", "svg"})
#: HTML pages, whose text (between the tags, outside ``<script>`` and ``<style>``) is shown to the
#: reader and never loaded: ``hr3 = http://metafiles…/hr3_2.m3u`` in a ``<pre>`` example of a file
#: format is not a server the page uses; its tags' attributes, scripts and styles are read.
_HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml"})
_RAW_TEXT = re.compile(rb"(?i)<(script|style)\b")
_RAW_TEXT_END = {b"script": re.compile(rb"(?i)</script"), b"style": re.compile(rb"(?i)</style")}
#: Credit elements of a widget's ``config.xml`` (W3C widgets, Cordova): ``<author href="http://…">``,
#: ``<description>Courtesy of … (https://github.com/…)</description>``, ``<license>``. Bounded, so a
#: hostile file costs one pass.
_CREDIT_ELEMENT = re.compile(rb"(?i)<(author|description|license)\b[^<>]{0,4096}>(?:[^<]{0,65536}</\1\s*>)?")
#: Markup attributes whose values are text shown to the user, not resources the page loads (an input
#: field's example ``placeholder="http://mega.radio.fm:80/stream"``, an image's alternative text, a
#: tooltip), and namespace declarations (``xmlns:cdv="http://cordova.apache.org/ns/1.0"``).
_DISPLAY_ATTRIBUTE = re.compile(
    rb"(?i)\b(?:placeholder|alt|title|xmlns(?::[\w.-]+)?)\s*=\s*(?:\"[^\"]*\"|'[^']*')"
)
#: What an SVG image loads: ``href``/``xlink:href``/``src`` values and CSS ``url(…)``. The rest of
#: it is drawing, text and editor metadata (``Created with Sketch (http://…)``, namespaces).
_SVG_REFERENCE = re.compile(
    rb"""(?i)\b(?:xlink:)?(?:href|src)\s*=\s*["']([^"']{1,4096})["']|url\(\s*["']?([^)"']{1,4096})"""
)
#: Bytes after which ``/*`` or ``//`` starts a comment: the start of a line, a blank, or the end of a
#: statement or block; not ``:`` (``https://``), a quote (``"//cdn…"``) or ``*`` (``*/*``).
_COMMENT_AFTER = frozenset(b" \t\r\n;{}(),")
#: Bytes around each ``://`` of binary data in which its URL is looked for: a scheme is at most 16
#: characters, and a URL longer than this in binary data is cut there; the text before a scheme is
#: kept as far as :func:`in_message` looks, to tell a URL in a docstring from one of its own.
_URL_BEFORE, _URL_AFTER = 16 + 256, 2048


def _url_windows(data: bytes, at: Iterable[int] | None = None) -> bytes:
    """The parts of binary data around each ``://`` (or only those at the offsets ``at``), separated
    by NULs: only URLs are taken from binary assets, and most have none, so the rest of the file is
    never translated or searched."""
    spans: list[list[int]] = []
    for i in _all(data, b"://") if at is None else at:
        lo, hi = max(0, i - _URL_BEFORE), min(len(data), i + _URL_AFTER)
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = hi
        else:
            spans.append([lo, hi])
    return b"\0".join(data[a:b] for a, b in spans)


def _all(data: bytes, needle: bytes) -> Iterator[int]:
    """Offsets of ``needle`` in ``data``, left to right, not overlapping."""
    i = data.find(needle)
    while i != -1:
        yield i
        i = data.find(needle, i + len(needle))


def _without(data: bytes, spans: Iterable[tuple[int, int]], filler: bytes) -> bytes:
    """``data`` with each ``(start, end)`` span (in order, not overlapping) replaced by ``filler``."""
    out: list[bytes] = []
    pos = 0
    for a, b in spans:
        out += (data[pos:a], filler)
        pos = b
    if not out:
        return data
    out.append(data[pos:])
    return b"".join(out)


def _strip_c_comments(data: bytes) -> bytes:
    """``data`` without its ``/* … */`` and ``//`` comments (each replaced by a line break). One pass
    over the comment starts with ``find``: an unclosed ``/*`` ends the file, so hostile input stays
    linear. A ``/*`` or ``//`` counts only after a blank, a line start or a statement's end
    (:data:`_COMMENT_AFTER`), so ``https://``, ``"//cdn.example.com"`` and ``*/*`` are kept."""
    return _without(data, _c_comments(data), b"\n")


def _c_comments(data: bytes) -> Iterator[tuple[int, int]]:
    n = len(data)
    i = data.find(b"/")
    while i != -1 and i + 1 < n:
        nxt = data[i + 1]
        if nxt in b"*/" and (i == 0 or data[i - 1] in _COMMENT_AFTER):
            if nxt == 0x2A:  # "*"
                end = data.find(b"*/", i + 2)
                end = n if end == -1 else end + 2
            else:
                end = data.find(b"\n", i + 2)
                end = n if end == -1 else end
            yield i, end
            i = data.find(b"/", end)
        else:
            i = data.find(b"/", i + 1)


def _strip_markup_comments(data: bytes) -> bytes:
    """``data`` without its ``<!-- … -->`` comments (``<!-- Created with Inkscape (http://…) -->``);
    an unclosed one ends the file."""
    return _without(data, _delimited(data, b"<!--", b"-->"), b" ")


def _html_code(data: bytes) -> bytes:
    """The tags (with their attributes) and the scripts and styles of an HTML page, without the text
    between them (:data:`_HTML_EXTENSIONS`). One pass of ``find``: a ``<`` with no ``>`` or a script
    with no end tag ends the page, so hostile input stays linear."""
    out: list[bytes] = []
    i = data.find(b"<")
    while i != -1:
        gt = data.find(b">", i)
        if gt == -1:
            out.append(data[i:])
            break
        out.append(data[i : gt + 1])
        raw = _RAW_TEXT.match(data, i)
        if raw is not None and data[gt - 1] != 0x2F:  # "/": a self-closing <script … />
            close = _RAW_TEXT_END[raw.group(1).lower()].search(data, gt + 1)
            end = len(data) if close is None else close.start()
            out.append(data[gt + 1 : end])
            gt = end - 1
        i = data.find(b"<", gt + 1)
    return b"\n".join(out)


def _delimited(data: bytes, start: bytes, end: bytes) -> Iterator[tuple[int, int]]:
    """Spans from each ``start`` to the next ``end`` (included), not nested: an unclosed one ends
    the file, so one pass of ``find`` stays linear on hostile input."""
    i = data.find(start)
    while i != -1:
        j = data.find(end, i + len(start))
        j = len(data) if j == -1 else j + len(end)
        yield i, j
        i = data.find(start, j)


def _strip_hash_comments(data: bytes) -> bytes:
    """``data`` without the lines whose first non-blank byte is ``#``. A loop over the ``#`` bytes
    (rare in most files) rather than a regex over every byte (0.1 s per scan of a keyboard app's
    dictionaries); each look back is bounded, so a long line full of ``#`` stays linear."""
    return _without(data, _hash_comments(data), b"")


def _hash_comments(data: bytes) -> Iterator[tuple[int, int]]:
    i = data.find(b"#")
    while i != -1:
        lo = max(0, i - _BLANK_BEFORE_HASH)
        nl = data.rfind(b"\n", lo, i)
        start = nl + 1 if nl != -1 else (0 if lo == 0 else -1)
        if start >= 0 and not data[start:i].strip(b" \t"):
            end = data.find(b"\n", i)
            end = len(data) if end == -1 else end
            yield i, end
            i = data.find(b"#", end)
        else:
            i = data.find(b"#", i + 1)


@dataclass
class _Found:
    candidate: Candidate
    sources: set[Source] = field(default_factory=set)
    classes: set[str] = field(default_factory=set)
    contexts: set[str] = field(default_factory=set)
    """How bare occurrences were written (``port``, ``key:FILE``, ``list:FILE``, ``nsc``)."""
    use: CodeUse = field(default_factory=CodeUse)
    """What the DEX methods loading it do (networking calls, URL schemes)."""

    def merge(self, other: _Found) -> None:
        self.sources |= other.sources
        self.classes |= other.classes
        self.contexts |= other.contexts
        self.use = self.use.merge(other.use)


class _Scan:
    """Accumulates one input's findings; :meth:`result` turns them into a ScanResult."""

    def __init__(self, label: str, sigs: SignatureDb, limits: Limits) -> None:
        self.label = label
        self.sigs = sigs
        self.limits = limits
        self.extractor = EndpointExtractor()
        self.found: dict[str, _Found] = {}
        self.dex_classes: list[tuple[str, list[str]]] = []
        self.manifests: list[Manifest] = []
        self.errors: list[str] = []
        #: parts left out on purpose, with why (ScanResult.not_read)
        self.not_read: list[str] = []
        self.overflow = False
        self.security_configs: list[NetworkSecurityConfig] = []
        #: resource id -> res/xml/ file, from resources.arsc (resolves the manifest's config reference)
        self.xml_files: dict[int, str] = {}
        #: pin string -> (DEX files, classes loading it)
        self.code_pins: dict[str, tuple[set[str], set[str]]] = {}
        #: an SDK's code string (SdkSignature.code_strings) -> (DEX files, classes outside the SDK's
        #: code prefixes loading it): its renamed code
        self.library_strings: dict[str, tuple[set[str], set[str]]] = {}
        #: signing certificates of each APK read (several in a split bundle)
        self.signers: list[tuple[Signer, ...]] = []

    # -- collecting ----------------------------------------------------------------------

    def _add(
        self,
        c: Candidate,
        source: Source,
        classes: Iterable[str] = (),
        use: CodeUse | None = None,
        occurrence: str = "code",
    ) -> None:
        """One occurrence of ``c`` in ``source``; ``occurrence`` is ``msg`` when it is part of a message
        (a DEX string that reads as one, or text around it in binary data: :func:`in_message`)."""
        f = self.found.get(c.value)
        if f is None:
            if len(self.found) >= _hold():
                self.overflow = True
                return
            f = self.found[c.value] = _Found(c)
        f.sources.add(source)
        f.classes.update(classes)
        if occurrence == "code" and source.kind in _FILE_KINDS and _is_licence_file(source.file):
            occurrence = "msg"  # a credit: with messages elsewhere, it makes no server of them
        if c.context:
            f.contexts.add(c.context if c.context in _PLAIN_CONTEXTS else f"{c.context}:{source.file}")
        if use:
            f.use = f.use.merge(use)
        f.contexts.add(occurrence)

    def _capped(self, candidates: Iterable[Candidate]) -> Iterator[Candidate]:
        """``candidates`` until one more new value would pass the cap: the extractor is not asked
        for (nor made to classify) the rest."""
        new: set[str] = set()
        room = _hold() - len(self.found)
        for c in candidates:
            if c.value not in self.found and c.value not in new:
                if len(new) >= room:
                    self.overflow = True
                    return
                new.add(c.value)
            yield c

    def add_text(self, text: str, kind: str, file: str) -> None:
        source = Source(kind, file)
        for c in self._capped(self.extractor.find(normalize(text))):
            self._add(c, source)

    def add_bytes(self, data: bytes, kind: str, file: str) -> None:
        """A text asset or native library, prefiltered to the runs that can hold an endpoint (with
        their context on the line in text files: a host key, a hosts-file address), in slices so
        that the search stops at the cap. In a native library, a value inside a message (help text,
        a credit) is marked so (:func:`in_message`)."""
        for piece in _slices(data):
            if self.overflow:
                return
            if kind == "native":
                self.add_binary(piece, kind, file)
            else:
                self.add_text(candidate_text(piece, context=True), kind, file)

    def add_script(self, data: bytes, file: str) -> None:
        """Script source (JavaScript, a bundle, an HTML page's tags and scripts), read as a text asset,
        each value in a string literal that reads as a message marked so (:func:`in_literal_message`)."""
        source = Source("asset", file)
        for piece in _slices(data):
            if self.overflow:
                return
            origins: list[tuple[int, int]] = []
            text = candidate_text(piece, context=True, origins=origins)
            plain = normalize(text)
            if plain != text:
                origins.clear()  # unescaping moved the offsets: look the values up instead
            self._add_judged(
                piece, origins, self._capped(self.extractor.find(plain)), source, in_literal_message
            )

    def _add_judged(
        self,
        data: bytes,
        origins: list[tuple[int, int]],
        candidates: Iterable[Candidate],
        source: Source,
        in_msg: Callable[[bytes, int, int], bool],
    ) -> None:
        """Each candidate found in :func:`candidate_text` of ``data`` (``origins`` maps the text back
        to the bytes; empty: the value is looked up), ``msg`` when ``in_msg`` says the bytes around it
        are a message (:func:`in_message`, :func:`in_literal_message`)."""
        starts = [t for t, _ in origins]
        for c in candidates:
            if origins:
                i = bisect.bisect_right(starts, c.start) - 1
                pos = origins[i][1] + c.start - origins[i][0]
            else:
                pos = data.find(c.value.encode("ascii", "replace"))
            message = pos >= 0 and in_msg(data, pos, len(c.value))
            self._add(c, source, occurrence="msg" if message else "code")

    def add_binary(self, data: bytes, kind: str, file: str, *, urls_only: bool = False) -> None:
        """Binary data (a native library, or ``urls_only`` an asset of no known kind: its URL windows),
        each value marked ``msg`` when the text around it in the bytes reads as a message."""
        origins: list[tuple[int, int]] = []
        found = self.extractor.find(candidate_text(data, origins=origins))
        candidates = self._capped(c for c in found if c.kind == "url") if urls_only else self._capped(found)
        self._add_judged(data, origins, candidates, Source(kind, file), in_message)

    def add_strings(self, strings: Iterable[str], kind: str, file: str) -> None:
        # Each distinct string once: the same pool string referenced by thousands of XML attributes
        # would otherwise be copied thousands of times into the joined text (same endpoints either way).
        self.add_text("\n".join(s for s in dict.fromkeys(strings) if "." in s or ":" in s), kind, file)

    def add_dex(self, data: bytes, file: str) -> None:
        """Strings, classes and const-string references of one DEX; raises DexError if corrupt."""
        dex = DexFile(data, file)
        strings = dex.strings()
        names = dex.class_names()
        wanted = [i for i, s in enumerate(strings) if "." in s or ":" in s]
        offsets: list[int] = []
        parts: list[str] = []
        pos = 0
        for i in wanted:
            s = normalize(strings[i]) if "\\/" in strings[i] else strings[i]
            offsets.append(pos)
            parts.append(s)
            pos += len(s) + 1
        found = self._capped(self.extractor.find("\n".join(parts)))
        hits = [(wanted[bisect.bisect_right(offsets, c.start) - 1], c) for c in found]
        pins = pin_indices(strings)
        library = self.sigs.code_strings
        library_hits = [i for i in wanted if strings[i] in library] if library else []
        referenced = {i for i, _ in hits} | set(pins) | set(library_hits)
        loaders = dex.string_loaders(referenced) if referenced else {}
        # A bare name or address no code loads may be a static field's initial value (d8 keeps
        # ``static String IP = "…"`` in static_values): the code reading the field is its user.
        unloaded = [i for i, c in hits if c.kind in ("host", "ip") and not loaders.get(i)]
        static = dex.static_value_loaders(unloaded) if unloaded else {}
        loaders.update(static)
        refs = {i: {name for _, name in owners} for i, owners in loaders.items()}
        source = Source("dex", file)
        notices = any(d in strings for d in NOTICE_DESCRIPTORS)  # a licence-notice API is referenced
        for idx, c in hits:
            use = None
            message = is_message(strings[idx])
            # What the code does with a URL matters only for a credit (a notice API) or a message
            # (handed to a networking API after all?): decoding every URL's methods costs 5 %.
            if loaders.get(idx) and (c.kind != "url" or message or notices):
                use = code_use(
                    loaders[idx], dex.method_invokes, dex.method_name, dex.method_strings, strings,
                    siblings=c.kind == "ip",
                )  # fmt: skip
            if idx in static and not c.context:
                c = c._replace(context="static")  # its evidence says the code reads it from a field
            self._add(c, source, refs.get(idx, ()), use, "msg" if message else "code")
        for idx in pins:
            files, classes = self.code_pins.setdefault(strings[idx], (set(), set()))
            files.add(file)
            classes.update(refs.get(idx, ()))
        for idx in library_hits:
            sid = library[strings[idx]]
            outside = {
                c for c in refs.get(idx, ()) if (m := self.sigs.match_class(c)) is None or m[0].id != sid
            }
            if outside:
                files, classes = self.library_strings.setdefault(strings[idx], (set(), set()))
                files.add(file)
                classes |= outside
        self.dex_classes.append((file, names))

    def add_xml(self, elements: list[XmlElement], file: str) -> None:
        """A compiled XML resource: a network_security_config (its settings, and its domains as
        endpoints), or every string in it."""
        config = parse_network_security_config(elements, file)
        if config is not None:
            self.security_configs.append(config)
        domains = network_security_domains(elements)
        if domains:
            source = Source("network_security_config", file)
            for d in domains:
                c = self.extractor.name_candidate(d)
                if c is not None:
                    self._add(c._replace(context="nsc"), source)
            return
        strings = [v for e in elements for v in (*e.attrs.values(), e.text)]
        self.add_strings(strings, "xml", file)

    def add_manifest(self, data: bytes, file: str, proto: bool = False) -> None:
        try:
            m = parse_manifest(data, proto=proto)
        except (ResourceError, struct.error, IndexError) as e:
            self.errors.append(f"{file}: garbled manifest ({e})")
            return
        self.manifests.append(m)
        source = Source("manifest", file)
        for _, value in m.meta_data:
            for c in self.extractor.find(normalize(value)):
                self._add(c, source)

    def note(self, message: str) -> None:
        log.info("%s", message)
        self.errors.append(message)

    # -- archives --------------------------------------------------------------------------

    def scan_apk(self, archive: Archive, prefix: str = "", nested_ok: bool = False) -> None:
        """Every interesting entry of an APK. ``prefix`` names the APK inside a bundle (``base.apk!``)."""
        entries = archive.entries()
        if archive.find("AndroidManifest.xml") is None:
            self.note(f"{prefix}AndroidManifest.xml missing (no package name or permissions)")
        dex_size = sum(i.compress_size for i in entries if _APK_DEX.fullmatch(i.filename))
        if dex_size >= PARALLEL_MIN_DEX and _can_fork() and len(entries) > 1:
            self._scan_entries_parallel(archive, entries, prefix)  # the child reads the signers
        else:
            self._read_signers(archive)
            self._scan_entries(archive, entries, prefix)

    def _read_signers(self, archive: Archive) -> None:
        signers, notes = read_signers(archive)
        self.signers.append(signers)
        for n in notes:
            self.note(n)

    def _scan_entries_parallel(self, archive: Archive, entries: list[zipfile.ZipInfo], prefix: str) -> None:
        """DEX entries here, all others in a forked child, merged as if read in order; with several
        DEX files the child also takes some of them, so that both sides get about the same number
        of compressed bytes (:func:`_child_share`).

        The child reopens the zip (a forked file descriptor shares its offset with the parent) and
        sends back its findings, DEX class lists, manifests and notes; an error in it (a zip bomb
        among the assets) is raised here. If the child dies without an answer, its share is read
        here after all."""
        before = len(self.errors)
        dex_before = len(self.dex_classes)
        signer_at = len(self.signers)
        theirs_idx = _child_share(entries)
        mine_idx = set(range(len(entries))) - theirs_idx
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns
            os.close(rfd)
            _child_scan(self, archive, entries, prefix, theirs_idx, wfd)
        os.close(wfd)
        try:
            mine = self._scan_entries(archive, entries, prefix, mine_idx)
        finally:
            with os.fdopen(rfd, "rb") as r:
                data = r.read()
            os.waitpid(pid, 0)
        try:
            answer = pickle.loads(data) if data else None
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            answer = None
        if answer is None:
            log.warning("%s: parallel scan worker gave no answer; reading the rest here", self.label)
            signers, signer_notes = read_signers(archive)
            theirs = self._scan_entries(archive, entries, prefix, theirs_idx)
        elif answer[0] == "error":
            _, kind, message = answer
            raise {"ArchiveError": ArchiveError, "DexError": DexError, "InputError": InputError}.get(
                kind, AuditError
            )(message)
        else:
            (_, found, dex_classes, manifests, theirs, read_total, notes, configs, code_pins, xml_files, signers,
             signer_notes, not_read, library_strings) = answer  # fmt: skip
            self.not_read.extend(not_read)
            self.dex_classes.extend(dex_classes)
            self.security_configs.extend(configs)
            self.xml_files.update(xml_files)
            for into, got in ((self.code_pins, code_pins), (self.library_strings, library_strings)):
                for text, (files, classes) in got.items():
                    mine_files, mine_classes = into.setdefault(text, (set(), set()))
                    mine_files |= files
                    mine_classes |= classes
            for value, f in found.items():
                mine_f = self.found.get(value)
                if mine_f is None:
                    self.found[value] = f
                else:
                    mine_f.merge(f)
            self.manifests.extend(manifests)
            archive.notes.extend(n for n in notes if n not in archive.notes)
            archive._read_total += read_total
            if archive._read_total > self.limits.total:
                raise ArchiveError(
                    f"{self.label}: more than {self.limits.total // (1 << 20)} MiB decompressed in total (zip bomb?)"
                )
        # Signers and their notes first, then notes and DEX files in entry order, as a sequential
        # scan gives them.
        self.signers.insert(signer_at, signers)
        for n in signer_notes:
            log.info("%s", n)
        tagged = [(-1, m) for m in signer_notes] + mine + theirs
        self.errors[before:] = [m for _, m in sorted(tagged, key=lambda t: t[0])]
        order = {prefix + e.filename: i for i, e in enumerate(entries)}
        self.dex_classes[dex_before:] = sorted(
            self.dex_classes[dex_before:], key=lambda d: order.get(d[0], -1)
        )

    def _scan_entries(
        self,
        archive: Archive,
        entries: list[zipfile.ZipInfo],
        prefix: str,
        only: Container[int] | None = None,
    ) -> list[tuple[int, str]]:
        """Scan ``entries`` (only those whose index is in ``only`` when it is given); returns the
        notes added, each with the index of its entry."""
        tagged: list[tuple[int, str]] = []
        for index, info in enumerate(entries):
            name = info.filename
            if only is not None and index not in only:
                continue
            file = prefix + name
            start = len(self.errors)
            try:
                kind = _apk_entry_kind(name)
                if kind == "dex":
                    self._dex_entry(archive, info, file)
                elif kind == "manifest":
                    self.add_manifest(archive.read(info), file)
                elif kind == "arsc":
                    data = archive.read(info)
                    pool = arsc_strings(data)
                    self.add_strings(pool, "resources", file)
                    problem = table_size_problem(data)
                    if problem:
                        self.note(f"{file}: {problem}")
                    try:
                        self.xml_files.update(arsc_xml_files(data, pool))
                    except (ResourceError, struct.error, IndexError, UnicodeDecodeError) as e:
                        # Its strings were read; say that the rest of the table was not (issue 15).
                        self.note(
                            f"{file}: resource table damaged after its string pool ({e}); resource ids not resolved"
                        )
                elif kind == "xml":
                    data = archive.read(info)
                    if int.from_bytes(data[:2], "little") == RES_XML_TYPE:
                        self._compiled_xml(data, file)
                    else:
                        self._text_or_binary_asset(data, name, file)
                elif kind == "asset":
                    self._asset_or_native(archive, info, name, file)
            except EntryError as e:
                self.note(str(e))
            except (ResourceError, struct.error, IndexError, UnicodeDecodeError) as e:
                self.note(f"{file}: cannot be parsed ({e})")
            tagged.extend((index, m) for m in self.errors[start:])
        return tagged

    def _asset_or_native(self, archive: Archive, info: zipfile.ZipInfo, rel: str, file: str) -> None:
        """A text asset (``assets/``, ``res/raw/``) or a native library (``lib/**.so``); ``rel`` is the
        path inside the APK or bundle module, ``file`` the name findings carry."""
        if rel.startswith("lib/"):
            if rel.endswith(".so"):
                data = archive.read(info)
                if packed(data):  # python-for-android's libpybundle.so
                    self._archive_asset(data, file)
                else:
                    self.add_bytes(data, "native", file)
            return
        ext = rel.rpartition(".")[2].lower()
        if ext in _ARCHIVE_EXTENSIONS:
            self._archive_asset(archive.read(info), file)
            return
        if ext in _BINARY_EXTENSIONS:
            return
        data = archive.read(info)
        if packed(data):
            self._archive_asset(data, file)
            return
        self._text_or_binary_asset(data, rel, file)

    def _archive_asset(self, data: bytes, file: str) -> None:
        """A tar, gzip or zip asset: its members read as assets of their own (``file!member``), within
        :data:`ARCHIVE_ASSET_ENTRIES` times the entry limit decompressed for all of them together
        (:mod:`audit.static.containers`)."""
        state = Unpacked()
        for member in unpack(data, file, ARCHIVE_ASSET_ENTRIES * self.limits.entry, state):
            if self.overflow:
                break
            ext = member.type_name.rpartition(".")[2].lower()
            if ext == "so":
                self.add_bytes(member.data, "native", member.name)
            elif ext not in _BINARY_EXTENSIONS:
                self._text_or_binary_asset(member.data, member.type_name, member.name)
        for n in state.notes:
            self.note(n)
        self.not_read.extend(state.not_read)

    def _text_or_binary_asset(self, data: bytes, rel: str, file: str) -> None:
        """A text file (``#`` comments left out where they are comments), or binary data of no known
        kind (compiled Lua, a database …), from which only URLs are taken: their syntax names a server
        where the shape of a bare name in binary data says nothing."""
        if _is_text(rel, data):
            name = rel.rpartition("/")[2]
            ext = name.rpartition(".")[2].lower() if "." in name else ""
            if ext in _HASH_COMMENT_EXTENSIONS:
                if ext in _BLOCK_HASH_EXTENSIONS:
                    data = _without(data, _delimited(data, b"<#", b"#>"), b"\n")
                data = _strip_hash_comments(data)
            elif ext in _C_COMMENT_EXTENSIONS:
                data = _strip_c_comments(data)
                if ext in _SCRIPT_EXTENSIONS:
                    self.add_script(data, file)
                    return
            elif ext == "svg":
                data = b"\n".join(m.group(1) or m.group(2) for m in _SVG_REFERENCE.finditer(data))
            elif ext in _MARKUP_EXTENSIONS:
                data = _strip_markup_comments(data)
                if ext in _HTML_EXTENSIONS:
                    data = _html_code(data)
                elif ext == "xml":
                    data = _CREDIT_ELEMENT.sub(b" ", data)
                data = _DISPLAY_ATTRIBUTE.sub(b" ", data)
                if ext in _HTML_EXTENSIONS:
                    self.add_script(data, file)
                    return
            self.add_bytes(data, "asset", file)
            return
        if rel.endswith(".pyc"):
            self._compiled_python(data, file)
            return
        self.add_binary(_url_windows(data), "asset", file, urls_only=True)

    def _compiled_python(self, data: bytes, file: str) -> None:
        """A ``.pyc``: the URLs of its string constants (:func:`_marshal_strings`), each constant judged
        as a whole like a DEX string (a docstring or message, or a URL of its own), and a URL the words
        before it cite (:func:`cites`: ``See https://…``) as a message too; URLs outside any
        constant found are read like other binary data. A constant only the module's ``__main__`` block
        loads (a self-test or example: :func:`main_block_strings`) is marked so."""
        source = Source("asset", file)
        constants, rest = _marshal_strings(data)
        main = main_block_strings(data) if constants else frozenset()
        for text in constants:
            message = is_message(text)
            for c in self._capped(c for c in self.extractor.find(text) if c.kind == "url"):
                if message or cites(text[: c.start]):
                    occurrence = "msg"
                else:
                    occurrence = "main" if text in main else "code"
                self._add(c, source, occurrence=occurrence)
        if rest:
            self.add_binary(rest, "asset", file, urls_only=True)

    def _dex_entry(self, archive: Archive, info: zipfile.ZipInfo, file: str) -> None:
        data = archive.read(info, self.limits.dex)
        try:
            self.add_dex(data, file)
        except DexError as e:
            self.note(f"{file}: {_strip_name(str(e), file)}")

    def _compiled_xml(self, data: bytes, file: str) -> None:
        strings = xml_strings(data)
        if "network-security-config" in strings:
            self.add_xml(parse_axml(data), file)
        else:
            if any("://" in s and "schemas.android.com" not in s for s in strings):  # rare: worth a walk
                aside = xml_namespace_uris(data, strings)
                if not CREDIT_ELEMENTS.isdisjoint(strings):
                    try:
                        aside |= xml_credit_strings(parse_axml(data))
                    except ResourceError:
                        pass  # damaged: its strings are read as they are
                strings = [s for s in strings if s not in aside]
            self.add_strings(strings, "xml", file)

    def scan_aab(self, archive: Archive) -> None:
        """An Android App Bundle: modules ``<name>/dex``, ``/manifest``, ``/res``, ``/assets``, ``/lib``."""
        names = archive.names()
        if "base/manifest/AndroidManifest.xml" not in names:
            self.note("base/manifest/AndroidManifest.xml missing (no package name or permissions)")
        self._read_signers(archive)  # the bundle's own JAR signature (the upload key), if any
        for info in archive.entries():
            name = info.filename
            module, _, rest = name.partition("/")
            try:
                if _AAB_DEX.fullmatch(name):
                    self._dex_entry(archive, info, name)
                elif rest == "manifest/AndroidManifest.xml":
                    data = archive.read(info)
                    if module == "base":
                        self.add_manifest(data, name, proto=True)
                    else:
                        self._feature_manifest(data, name)
                elif rest == "resources.pb":
                    self.add_strings(_proto_strings(archive.read(info)), "resources", name)
                elif rest.startswith("res/") and rest.endswith(".xml"):
                    self.add_xml(parse_proto_xml(archive.read(info)), name)
                elif rest.startswith(("assets/", "lib/")):
                    self._asset_or_native(archive, info, rest, name)
            except EntryError as e:
                self.note(str(e))
            except (ResourceError, struct.error, IndexError, UnicodeDecodeError) as e:
                self.note(f"{name}: cannot be parsed ({e})")

    def _feature_manifest(self, data: bytes, file: str) -> None:
        """Feature modules add permissions and meta-data, never the app identity."""
        before = len(self.manifests)
        self.add_manifest(data, file, proto=True)
        if len(self.manifests) > before:
            m = self.manifests.pop()
            self.manifests.append(Manifest(None, None, None, m.permissions, m.meta_data, split=file))

    def scan_bundle(self, archive: Archive) -> None:
        """A split bundle: every inner ``*.apk`` scanned; bundles inside it are not opened (one level)."""
        apks = [i for i in archive.entries() if i.filename.lower().endswith(".apk")]
        nested = [
            i.filename
            for i in archive.entries()
            if i.filename.lower().endswith((".apks", ".xapk", ".apkm", ".aab"))
        ]
        for name in nested:
            self.note(f"nested bundle {name} skipped (bundles are opened one level deep)")
        if not apks:
            why = f" (nested bundle {', '.join(nested)} not opened: only one level deep)" if nested else ""
            raise ArchiveError(f"{self.label}: no APK inside the bundle{why}")
        for info in apks:
            try:
                data = archive.read(info, self.limits.dex)
            except EntryError as e:
                self.note(str(e))
                continue
            prefix = f"{info.filename}!"
            try:
                inner = Archive.open(data, self.label, self.limits, prefix=prefix)
            except ArchiveError as e:
                self.note(_strip_name(str(e), self.label))
                continue
            with inner:
                self.scan_apk(inner, prefix=prefix)
                self.errors.extend(inner.notes)

    # -- result ----------------------------------------------------------------------------

    def result(self, app: AppInfo) -> ScanResult:
        all_classes = [n for _, names in self.dex_classes for n in names]
        java_names = package_names(all_classes)
        found = self.found
        if self.overflow or len(found) > MAX_ENDPOINTS:
            found = {v: found[v] for v in sorted(found)[:MAX_ENDPOINTS]}
            self.note(
                f"more than {MAX_ENDPOINTS:,} distinct endpoint strings (hostile or unusual input?); "
                f"only the first {MAX_ENDPOINTS:,} in sorted order are listed"
            )
        code = self._code_presence()
        present = {sid for sid, (p, _) in code.items() if p.present}
        sdk_ids = {sid for sid in present if not self._is_capability(sid)}
        kept: list[tuple[str, _Found]] = []
        for value, f in found.items():
            c = f.candidate
            if c.kind == "host" and c.host and is_code_name(c.host, java_names):
                continue
            if c.doc and not any(self._is_app_class(cls, app.package) for cls in f.classes):
                continue
            if all(_is_licence_file(s.file) for s in f.sources):
                continue  # credits in a licence text or notice file
            kept.append((value, f))
        urls = [
            f.candidate
            for _, f in kept
            if f.candidate.kind == "url" and not _message_only(f) and not _main_only(f)
        ]
        url_hosts = {c.host for c in urls if c.host}
        url_domains = {c.domain for c in urls if c.domain}
        companies = load_companies()
        endpoints = []
        verdicts = {
            value: judge(
                f.candidate.kind, value, f.candidate.host, f.candidate.domain, contexts=f.contexts, use=f.use,
                url_hosts=url_hosts, url_domains=url_domains, known_domain=self._known_domain,
                message_only=_message_only(f),
            )
            for value, f in kept
        }  # fmt: skip
        # A bare IP with no evidence of its own, loaded by the same method as a server (a second pass:
        # the servers are known only now).
        servers: dict[str, str] = {}
        for value, f in kept:
            if verdicts[value].network and not f.candidate.placeholder and f.candidate.host:
                servers[value] = servers[f.candidate.host] = f.candidate.host
        for value, f in kept:
            if f.use.siblings and verdicts[value].evidence == NO_IP_EVIDENCE:
                why = sibling_evidence(f.use, servers)
                if why is not None:
                    verdicts[value] = Verdict(True, why)
        for value, f in kept:
            if verdicts[value].network and _demo_only(f):
                verdicts[value] = Verdict(False, f"loaded only by demo or mock code ({min(f.classes)})")
            elif verdicts[value].network and _main_only(f):
                verdicts[value] = Verdict(False, _MAIN_ONLY)
        for value, f in kept:
            c = f.candidate
            verdict = verdicts[value]
            owner = companies.lookup(c.host) if c.host and c.kind != "ip" else None
            endpoints.append(
                Endpoint(
                    value=value,
                    host=c.host,
                    domain=c.domain,
                    kind="ip" if c.kind == "ip" else c.kind,
                    placeholder=c.placeholder,
                    sources=tuple(sorted(f.sources)),
                    classes=tuple(sorted({_encodable(name) for name in f.classes})),
                    sdk=self._attribute(f, present) if verdict.network else None,
                    network=verdict.network,
                    network_evidence=_encodable(verdict.evidence),
                    company=owner.company if owner else None,
                    company_country=owner.country if owner else None,
                )
            )
        endpoints.sort(key=lambda e: e.value)
        permissions = sorted({p for m in self.manifests for p in m.permissions})
        base = _app_manifest(self.manifests)
        pins = {
            p: (files, {_encodable(c) for c in classes}) for p, (files, classes) in self.code_pins.items()
        }
        transport = merge_transport(
            self.security_configs, pins, all_classes,
            manifest_config=bool(base and base.network_security_config),
            config_ref=base.network_security_config if base else None, xml_files=self.xml_files,
            uses_cleartext_traffic=base.uses_cleartext_traffic if base else None,
            debuggable=bool(base and base.debuggable), target_sdk=base.target_sdk if base else None,
        )  # fmt: skip
        found_sdks = self._code_findings(code, present, endpoints)
        return ScanResult(
            app=app,
            endpoints=tuple(endpoints),
            sdks=tuple(s for s in found_sdks if s.id in sdk_ids),
            capabilities=tuple(s for s in found_sdks if s.id not in sdk_ids),
            sdk_mentions=self._mentions(endpoints, present),
            permissions=tuple(permissions),
            data_access=data_access(permissions),
            errors=tuple(dict.fromkeys(self.errors)),
            not_read=tuple(dict.fromkeys(self.not_read)),
            transport=transport,
        )

    def _is_app_class(self, name: str, package: str | None) -> bool:
        if package and name.startswith(package + "."):
            return True
        return not name.startswith(_LIBRARY_ROOTS) and self.sigs.match_class(name) is None

    def _is_capability(self, sdk_id: str) -> bool:
        sig = self.sigs.get(sdk_id)
        return sig is not None and sig.category == "capability"

    def _known_domain(self, host: str) -> str | None:
        """The company (companies.json) or SDK (sdks.json) owning ``host``, for the evidence text; a
        tenant's name under a hosting domain (:func:`is_hosted`) is nobody's known server."""
        if is_hosted(host):
            return None
        info = load_companies().lookup(host)
        if info is not None:
            return f"{info.company} (company database: {info.matched})"
        m = self.sigs.match_host(host)
        return f"{m[0].name} (SDK database: {m[1]})" if m is not None else None

    def _prefix_list(self, sid: str, prefixes: Iterable[str]) -> str:
        """The matched prefixes of an SDK, a relocated one with the prefix it was moved from
        (``external.org.apache.commons (relocated org.apache.commons)``)."""
        sig = self.sigs.get(sid)
        own = sig.code_prefixes if sig else ()
        out = []
        for pfx in prefixes:
            moved = [q for q in own if pfx.endswith("." + q)] if pfx not in own else []
            out.append(f"{pfx} (relocated {max(moved, key=len)})" if moved else pfx)
        return ", ".join(out)

    def _code_presence(self) -> dict[str, tuple[CodePresence, list[str]]]:
        """SDK id → its code over all DEX files, with one evidence line per file that has own classes."""
        out: dict[str, tuple[CodePresence, list[str]]] = {}
        for file, names in self.dex_classes:
            for sid, p in sorted(self.sigs.code_presence(names).items()):
                if p.classes:
                    noun = "class" if p.classes == 1 else "classes"
                    line = f"code: {p.classes} {noun} under {self._prefix_list(sid, p.prefixes)} ({file})"
                else:
                    line = f"stub only: {p.stubs} interop, data or exception {'class' if p.stubs == 1 else 'classes'} ({file})"
                if sid in out:
                    q, lines = out[sid]
                    merged = CodePresence(
                        q.classes + p.classes,
                        q.stubs + p.stubs,
                        tuple(sorted({*q.prefixes, *p.prefixes})),
                        q.marker or p.marker,
                    )
                    out[sid] = (merged, [*lines, line])
                else:
                    out[sid] = (p, [line])
        by_sdk: dict[str, list[tuple[str, set[str], set[str]]]] = {}
        for text, (files, classes) in self.library_strings.items():
            by_sdk.setdefault(self.sigs.code_strings[text], []).append((text, files, classes))
        for sid, hits in sorted(by_sdk.items()):
            if len(hits) < MIN_CODE_STRINGS or (sid in out and out[sid][0].classes):
                continue  # too few, or its code is there by name anyway
            loaders = sorted({c for _, _, classes in hits for c in classes})
            dex_files = sorted({f for _, fs, _ in hits for f in fs})
            packages = tuple(sorted({c.rpartition(".")[0] or "(default package)" for c in loaders}))
            shown = ", ".join(loaders[:3]) + (", …" if len(loaders) > 3 else "")
            line = (
                f"code: renamed, {len(hits)} of its own strings loaded by {len(loaders)} "
                f"{'class' if len(loaders) == 1 else 'classes'} outside its packages ({shown}; {', '.join(dex_files)})"
            )
            stubs, lines = (out[sid][0].stubs, out[sid][1]) if sid in out else (0, [])
            out[sid] = (CodePresence(len(loaders), stubs, packages[:10], True), [line, *lines])
        return out

    def _code_findings(
        self, code: dict[str, tuple[CodePresence, list[str]]], present: set[str], endpoints: list[Endpoint]
    ) -> list[Sdk]:
        """The SDKs (and capabilities) whose code is present: their code lines, then the hosts of
        theirs the app names (``network: host (files)``), which add to the code evidence."""
        network: dict[str, dict[str, set[str]]] = {}
        for e in endpoints:
            if not e.counted or e.kind == "ip" or e.host is None:
                continue
            m = self.sigs.match_host(e.host)
            if m is not None and m[0].id in present:
                network.setdefault(m[0].id, {}).setdefault(e.host, set()).update(s.file for s in e.sources)
        out = []
        for sid in sorted(present):
            sig = self.sigs.get(sid)
            if sig is None:
                continue
            p, lines = code[sid]
            evidence = [x for x in lines if x.startswith("code:")]
            evidence += [
                f"network: {h} ({', '.join(sorted(f))})" for h, f in sorted(network.get(sid, {}).items())
            ]
            out.append(sig.to_sdk(evidence, p.classes, packages=p.prefixes))
        return out

    def _attribute(self, f: _Found, sdk_ids: set[str]) -> str | None:
        """The SDK (or capability) whose code loads the string: most votes among the classes loading
        it (their SDK present, the class not a stub); when only general libraries (Google Play services
        …) vote, or none does, the SDK present in the code whose domain the host is."""
        match, is_stub = self.sigs.match_class, self.sigs.is_stub
        votes: Counter[str] = Counter()
        for cls in f.classes:
            m = match(cls)
            if m is not None and m[0].id in sdk_ids and not is_stub(m[0].id, cls):
                votes[m[0].id] += 1
        host_sdk = None
        c = f.candidate
        if c.host and c.kind != "ip":
            hm = self.sigs.match_host(c.host)
            if hm is not None and hm[0].id in sdk_ids:
                host_sdk = hm[0]
        if votes:
            general = all((s := self.sigs.get(sid)) is not None and s.category == "library" for sid in votes)
            if general and host_sdk is not None and host_sdk.category != "library":
                return host_sdk.id
            return min(votes, key=lambda sid: (-votes[sid], sid))
        return host_sdk.id if host_sdk is not None else None

    def _mentions(self, endpoints: list[Endpoint], present: set[str]) -> tuple[Sdk, ...]:
        """SDK vendors whose hosts the app names while their code is not in it."""
        hosts: dict[str, dict[str, tuple[set[str], bool]]] = {}
        for e in endpoints:
            if not e.counted or e.kind == "ip" or e.host is None:
                continue
            m = self.sigs.match_host(e.host)
            if m is None or m[0].id in present:
                continue
            files, in_code = hosts.setdefault(m[0].id, {}).setdefault(e.host, (set(), False))
            files.update(s.file for s in e.sources)
            hosts[m[0].id][e.host] = (files, in_code or e.in_code)
        out = []
        for sid, by_host in sorted(hosts.items()):
            sig = self.sigs.get(sid)
            if sig is None:
                continue
            in_code = any(code for _, code in by_host.values())
            evidence = [
                f"host: {h} ({', '.join(sorted(files))})" for h, (files, _) in sorted(by_host.items())
            ]
            out.append(
                sig.to_sdk(
                    evidence, presence="host-in-code" if in_code else "host-string", hosts=sorted(by_host)
                )
            )
        return tuple(out)


#: Type codes of marshal's string objects (``z``/``Z`` short ASCII with a 1-byte length; ``a``/``A``
#: ASCII, ``u`` and ``t`` Unicode with a 4-byte length), without the 0x80 "referenced" flag.
_MARSHAL_SHORT, _MARSHAL_LONG = frozenset(b"zZ"), frozenset(b"aAut")
#: How far before a ``://`` the header of its string constant is looked for.
_MARSHAL_REACH = 300
_TEXT_BYTES = re.compile(rb"[\t\n\r\x20-\x7e\x80-\xff]*")


def _marshal_strings(data: bytes) -> tuple[list[str], bytes]:
    """The string constants of compiled Python (marshal data) that hold a ``://``, found from each
    ``://`` back to the constant's type code and length (a lenient reader: the objects around are not
    parsed, so any Python version's ``.pyc`` is read, and damaged data costs no more); and the URL
    windows (:func:`_url_windows`) of the ``://`` in no constant found (a long docstring)."""
    constants: list[str] = []
    outside: list[int] = []
    i = data.find(b"://")
    while i != -1:
        span = _marshal_span(data, i)
        if span is None:
            outside.append(i)
            i = data.find(b"://", i + 3)
        else:
            constants.append(data[span[0] : span[1]].decode("utf-8", "replace"))
            i = data.find(b"://", span[1])
    return constants, _url_windows(data, outside)


def _marshal_span(data: bytes, at: int) -> tuple[int, int] | None:
    """(start, end) of the marshal string constant that holds ``data[at]``: the nearest header before
    it whose length reaches past it and whose bytes are text."""
    for h in range(at - 2, max(-1, at - _MARSHAL_REACH), -1):
        code = data[h] & 0x7F
        if code in _MARSHAL_SHORT:
            start, size = h + 2, data[h + 1]
        elif code in _MARSHAL_LONG and h + 5 <= at:
            start, size = h + 5, int.from_bytes(data[h + 1 : h + 5], "little")
        else:
            continue
        end = start + size
        if start <= at and end >= at + 3 and end <= len(data) and _TEXT_BYTES.fullmatch(data, start, end):
            return start, end
    return None


#: A word of a simple class name that marks sample data: ``DemoData``, ``DemoConversationInserter``,
#: ``MockServer``, ``FakeAccount``, ``DummyContent``.
_DEMO_CLASS = re.compile(r"(?:^|(?<=[a-z0-9_$]))(?:Demo|Mock|Fake|Dummy)(?=[A-Z0-9_$]|$)")


#: Simple class names of Android components: a ``DemoActivity`` or ``DemoApplication`` is the app
#: itself in an SDK's demo app, whose servers are real.
_COMPONENT_SUFFIXES = (
    "Activity",
    "Application",
    "App",
    "Service",
    "Fragment",
    "Receiver",
    "Provider",
    "View",
)


def _demo_only(f: _Found) -> bool:
    """Found only in DEX strings that only demo, mock, fake or dummy classes load (an app's demo
    accounts and sample posts, a test double's server): sample data, not the app's servers. An
    Android component so named (``DemoActivity``) does not count: in an SDK's demo app it is the app."""

    def demo(cls: str) -> bool:
        simple = cls.rpartition(".")[2].partition("$")[0]
        return _DEMO_CLASS.search(simple) is not None and not simple.endswith(_COMPONENT_SUFFIXES)

    return bool(f.classes) and all(s.kind == "dex" for s in f.sources) and all(demo(c) for c in f.classes)


#: Why a URL only a ``__main__`` block loads is not a server.
_MAIN_ONLY = (
    "only in the __main__ block of compiled Python (a self-test or example, not run when the app imports it)"
)


def _main_only(f: _Found) -> bool:
    """Found only in compiled-Python constants that only ``if __name__ == "__main__":`` blocks load."""
    return "main" in f.contexts and "code" not in f.contexts


def _message_only(f: _Found) -> bool:
    """Found only inside messages (log, exception, help text, credits): DEX strings that read as
    one, or text around it in binary data."""
    return "msg" in f.contexts and "code" not in f.contexts


def _hold() -> int:
    """Distinct endpoint strings held while extracting (a module function: tests lower MAX_ENDPOINTS)."""
    return MAX_ENDPOINTS + MAX_ENDPOINTS // 100


def _slices(data: bytes) -> Iterator[bytes]:
    """``data`` in pieces of about :data:`SEARCH_SLICE` bytes, each cut at a byte no endpoint holds."""
    start = 0
    while start < len(data):
        m = _SEPARATOR.search(data, start + SEARCH_SLICE) if len(data) - start > SEARCH_SLICE else None
        end = m.start() if m else len(data)
        yield data[start:end]
        start = end


def _can_fork() -> bool:
    """Forking is safe only with no other thread (one may hold a lock the child would inherit)."""
    return fork_is_safe()


def _child_share(entries: list[zipfile.ZipInfo]) -> set[int]:
    """Indices of the entries the forked child reads: every non-DEX entry, plus DEX files (largest
    first) while the child has fewer compressed bytes to read than the parent. The largest DEX file
    always stays with the parent."""
    kinds = [_apk_entry_kind(e.filename) for e in entries]
    child = {i for i, k in enumerate(kinds) if k != "dex"}
    child_load = sum(entries[i].compress_size for i in child if kinds[i] is not None)
    parent_load = 0
    dex = sorted(
        (i for i in range(len(entries)) if i not in child), key=lambda i: (-entries[i].compress_size, i)
    )
    for i in dex:
        if parent_load <= child_load:
            parent_load += entries[i].compress_size
        else:
            child.add(i)
            child_load += entries[i].compress_size
    return child


def _apk_entry_kind(name: str) -> str | None:
    """How :meth:`_Scan._scan_entries` reads an APK entry: ``dex``, ``manifest``, ``arsc``, ``xml``
    (``res/**.xml``), ``asset`` (``assets/``, ``res/raw/``, ``lib/``), or None (skipped: images,
    signatures and other files)."""
    if _APK_DEX.fullmatch(name):
        return "dex"
    if name == "AndroidManifest.xml":
        return "manifest"
    if name == "resources.arsc":
        return "arsc"
    if name.startswith("res/") and name.endswith(".xml"):
        return "xml"
    if name.startswith(("assets/", "res/raw/", "lib/")):
        return "asset"
    return None


def _child_scan(
    scan: _Scan, archive: Archive, entries: list[zipfile.ZipInfo], prefix: str, share: set[int], wfd: int
) -> None:
    """The forked child of :meth:`_Scan._scan_entries_parallel`: read the entries in ``share``,
    send the result through ``wfd`` and exit without running any of the parent's clean-up."""
    code = 0
    try:
        if archive.zf.filename is not None:  # opened from a path: reopen, not the shared descriptor
            archive.zf = zipfile.ZipFile(archive.zf.filename)
        start_total = archive._read_total
        scan.errors = []
        # Only the child's own findings go back: the parent has everything found before the fork.
        scan.found, scan.dex_classes, scan.manifests = {}, [], []
        scan.security_configs, scan.code_pins, scan.xml_files, scan.not_read = [], {}, {}, []
        scan.library_strings = {}
        signers, signer_notes = read_signers(archive)  # here, off the parent's path (cryptography loads)
        tagged = scan._scan_entries(archive, entries, prefix, share)
        answer: tuple[object, ...] = (
            "ok", scan.found, scan.dex_classes, scan.manifests, tagged, archive._read_total - start_total,
            archive.notes, scan.security_configs, scan.code_pins, scan.xml_files, signers, signer_notes,
            scan.not_read, scan.library_strings,
        )  # fmt: skip
    except AuditError as e:
        answer = ("error", type(e).__name__, str(e))
    except BaseException as e:  # a bug: the parent reports it rather than losing it
        answer = (
            "error",
            "AuditError",
            f"{scan.label}: internal error while scanning: {type(e).__name__}: {e}",
        )
        code = 1
    try:
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(wfd, view) :]
    finally:
        os._exit(code)


def _encodable(text: str) -> str:
    """A DEX string may hold lone surrogates (MUTF-8 encodes any UTF-16 unit); no UTF-8 output (JSON,
    CSV, the case file) can, so in results they become U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text) if _LONE_SURROGATE.search(text) else text


def _strip_name(message: str, file: str) -> str:
    """DexError messages start with the DEX name; avoid ``classes.dex: classes.dex: …``."""
    return message[len(file) + 2 :] if message.startswith(file + ": ") else message


def _proto_strings(data: bytes) -> list[str]:
    """Every string leaf of a protobuf message (resources.pb), without its schema: a length-delimited
    field that parses as a message is walked, one that is valid UTF-8 text is kept (both may apply).

    Fields are memoryviews of ``data``, not copies, and the text kept is at most twice ``data``: a
    message nested 32 deep, each level printable text, would otherwise be held (and kept) 32 times."""
    out: list[str] = []
    budget = 2 * len(data)

    def walk(message: memoryview, depth: int) -> None:
        nonlocal budget
        if depth > 32:
            return
        try:
            fields = list(proto_fields(message))
        except ResourceError:
            return
        for _, wire, value in fields:
            if wire != 2 or not isinstance(value, memoryview) or not value:
                continue
            if len(value) <= budget:
                try:
                    text = str(value, "utf-8")
                except UnicodeDecodeError:
                    text = ""
                if text and text.isprintable():
                    out.append(text)
                    budget -= len(value)
                del text  # not held while the nested fields are walked
            walk(value, depth + 1)

    walk(memoryview(data), 0)
    return out


def app_format(path: str | os.PathLike[str]) -> str | None:
    """The app-package format of a file by its content (``apk``, ``aab``, ``xapk`` … ``dex``), or None
    when it is not one (``audit run APP --capture APP`` is a mistake to name, issue 12)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(DEX_MAGIC):
            return "dex"
        if head[:4] not in ZIP_MAGICS:
            return None
        with Archive.open(path, str(path)) as archive:
            return sniff_format(str(path), head, archive.names())
    except (OSError, InputError):
        return None


def scan_path(
    path: str | Path, *, signatures: SignatureDb | None = None, limits: Limits | None = None
) -> ScanResult:
    """Scan one input file. Raises InputError (ArchiveError, DexError) when nothing can be scanned;
    partial problems are listed in ``ScanResult.errors``."""
    label = str(path)
    p = Path(path)
    if not p.exists():
        raise InputError(f"{label}: no such file")
    if p.is_dir():
        raise InputError(f"{label}: is a directory, not an APK, bundle or DEX file")
    if not p.is_file():
        raise InputError(f"{label}: not a regular file")
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise InputError(f"{label}: cannot be read ({e.strerror or e})") from e
    if size == 0:
        raise InputError(f"{label}: empty file")
    limits = limits or Limits()
    sigs = signatures if signatures is not None else load_signatures()
    scan = _Scan(label, sigs, limits)
    ext = p.suffix.lower()
    if not head.startswith(DEX_MAGIC) and head[:4] not in ZIP_MAGICS:
        if ext == ".dex":
            raise DexError(f"{label}: not a DEX file (bad magic {head[:8]!r})")
        if ext in (".apk", ".apks", ".xapk", ".apkm", ".aab", ".zip"):
            raise ArchiveError(f"{label}: not a zip archive")
    if head.startswith(DEX_MAGIC):
        fmt = "dex"
        if size > limits.dex:
            raise InputError(f"{label}: DEX larger than {limits.dex >> 20} MiB")
        try:
            scan.add_dex(p.read_bytes(), p.name)
        except DexError as e:
            raise DexError(f"{label}: {_strip_name(str(e), p.name)}") from e
    else:
        sniff_format(label, head)  # raises for unknown content
        with Archive.open(p, label, limits) as archive:
            fmt = sniff_format(label, head, archive.names())
            if fmt == "aab":
                scan.scan_aab(archive)
            elif fmt in BUNDLE_FORMATS:
                scan.scan_bundle(archive)
            else:
                scan.scan_apk(archive)
            scan.errors[:0] = archive.notes
    manifest = _app_manifest(scan.manifests)
    app = AppInfo(
        package=manifest.package if manifest else None,
        version_name=manifest.version_name if manifest else None,
        version_code=manifest.version_code if manifest else None,
        sha256=_sha256(p),
        file=label,
        format=fmt,
        signers=merge_signers(scan.signers),
    )
    return scan.result(app)


def _app_manifest(manifests: list[Manifest]) -> Manifest | None:
    """The base APK's manifest (no ``split`` attribute), else the first one read."""
    for m in manifests:
        if m.split is None and m.package:
            return m
    return manifests[0] if manifests else None
