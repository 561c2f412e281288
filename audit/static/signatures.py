"""SDK signatures: which third-party SDK a class or a host belongs to.

The builtin database is our own ``audit/data/sdks.json`` (schema in ``audit/data/README.md``). A user
overlay (``signatures-overlay.json``, same entry schema) adds or replaces entries; ``audit signatures
import`` writes Exodus trackers into it.

Matching rules (docs/signatures.md):

* a class matches a code prefix when its dotted name equals the prefix or starts with ``prefix + "."``
  (inner classes, ``Outer$Inner``, count as their outer class); the longest prefix wins;
* a class whose package ends with a prefix of two labels or more (``external.org.apache.commons``)
  counts as that SDK's relocated code when :data:`MIN_RELOCATED_CLASSES` such classes are in one DEX;
  :data:`MIN_CODE_STRINGS` of an SDK's ``code_strings`` loaded by other classes show its renamed code
  (the scanner counts those);
* a host matches a network domain when it equals it or ends with ``"." + domain``; longest wins.

Both are dict lookups over the dotted components (O(depth)), and class lookups are cached per package
because ``match_class`` runs for every class of every DEX file.

Overlay precedence: an overlay entry with the id of a builtin entry replaces it. Imported Exodus entries
never shadow builtin facts: when one of their code prefixes equals or falls under a builtin SDK's prefix
they are merged into that SDK as extra evidence (prefixes and domains it lacked), and their domains that
equal, contain or fall under another builtin SDK's domain are dropped. A builtin SDK has a known owner
and country; an Exodus tracker usually does not, so letting it win would lose facts.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from audit.enrich.company import HOSTING_DOMAINS, suffixes
from audit.errors import ConfigError
from audit.models import Sdk
from audit.names import host_name, normalize_host, public_suffix_list
from audit.paths import audit_home

log = logging.getLogger(__name__)

__all__ = [
    "CATEGORIES",
    "ImportSummary",
    "SdkSignature",
    "SignatureDb",
    "convert_code_signature",
    "convert_network_signature",
    "default_overlay_path",
    "import_exodus",
    "load_signatures",
    "parse_entries",
]

SDKS_FILE = "sdks.json"
OVERLAY_NAME = "signatures-overlay.json"

#: Allowed ``category`` values (audit/data/README.md explains each).
CATEGORIES = (
    "analytics",
    "advertising",
    "attribution",
    "crash reporting",
    "push",
    "social",
    "payment",
    "maps",
    "cdn/cloud",
    "library",
    "capability",
)

#: A simple class name ending so: an exception or error type, which shows that other code may meet the
#: SDK's errors, never that the SDK itself is there (``FirebaseAuthException``).
_STUB_SUFFIXES = ("Exception", "Error")
#: Simple class names that hold only resource ids and build constants the app's build generates for
#: each library (``android.support.v7.recyclerview.R$id``, ``…Manifest$permission``): the library's
#: resources were merged, not its code.
_RESOURCE_CLASSES = frozenset({"R", "Manifest", "BuildConfig"})

#: Code strings of one SDK (:attr:`SdkSignature.code_strings`) that must be loaded by other code to
#: show its renamed code; and how long each must be (with a ``.`` or ``:``: the DEX strings the
#: scanner looks at).
MIN_CODE_STRINGS = 2
MIN_CODE_STRING_LENGTH = 16
#: Classes under a code prefix moved into another package (``external.org.apache.commons.lang3``)
#: that show the SDK's relocated code; prefixes of one label (``kotlin``) are never looked for there.
MIN_RELOCATED_CLASSES = 3
#: Packages deeper than this are not searched for a relocated prefix (hostile names).
_MAX_RELOCATION_DEPTH = 12

#: Owner of imported trackers whose company could not be inferred.
UNKNOWN_OWNER = "unknown"

#: Largest signature file we read (the Exodus dump is ~0.6 MB).
MAX_FILE_BYTES = 64 * 1024 * 1024

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_JAVA_PREFIX_RE = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$")
_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class SdkSignature:
    """How to recognise one SDK, and who owns it."""

    id: str
    """Stable snake_case id (``tencent_bugly``); Exodus imports use ``exodus_<tracker id>``."""
    name: str
    owner: str
    """Current ultimate owner (a company in companies.json), or ``unknown`` for imports."""
    owner_country: str
    """ISO 3166-1 alpha-2 code of the owner's home country; empty when unknown."""
    category: str
    """One of :data:`CATEGORIES`."""
    code_prefixes: tuple[str, ...]
    """Dotted Java package (or class) prefixes."""
    domains: tuple[str, ...]
    """Network domain suffixes the SDK talks to."""
    source: str = "builtin"
    """``builtin``, ``overlay`` or ``exodus:<file name>``."""
    website: str | None = None
    notes: str | None = None
    merged_from: tuple[str, ...] = ()
    """Ids of imported entries merged into this one as extra evidence."""
    stubs: tuple[str, ...] = ()
    """Classes or packages under the code prefixes that other libraries ship too (interop interfaces,
    data classes, a single shared helper): alone, they do not show the SDK's code."""
    markers: tuple[str, ...] = ()
    """When set, the SDK counts as present only if a class under one of these is (its core code)."""
    code_strings: tuple[str, ...] = ()
    """String constants of the SDK's own code that no other code holds (its messages, its system
    property keys): :data:`MIN_CODE_STRINGS` of them, loaded by classes outside its code prefixes,
    show its code renamed (R8, a shading plugin) where no class name does."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("code_prefixes", "domains", "merged_from", "stubs", "markers", "code_strings"):
            d[k] = list(d[k])
        return d

    def to_sdk(
        self,
        evidence: Sequence[str] = (),
        class_count: int = 0,
        *,
        presence: str = "code",
        packages: Sequence[str] = (),
        hosts: Sequence[str] = (),
    ) -> Sdk:
        """The finding for a detected SDK (or a mention of one, with its ``presence``)."""
        return Sdk(
            id=self.id,
            name=self.name,
            owner=self.owner,
            owner_country=self.owner_country,
            category=self.category,
            evidence=tuple(evidence),
            class_count=class_count,
            presence=presence,
            packages=tuple(packages),
            hosts=tuple(hosts),
        )


@dataclass(frozen=True)
class CodePresence:
    """The classes of one SDK in one set of class names (:meth:`SignatureDb.code_presence`)."""

    classes: int
    """Own classes: under a code prefix, not a stub."""
    stubs: int
    """Stub, interop and exception classes under the code prefixes."""
    prefixes: tuple[str, ...]
    """Code prefixes with at least one own class."""
    marker: bool
    """A class under one of the SDK's markers is there (True when it has none)."""

    @property
    def present(self) -> bool:
        return self.classes > 0 and self.marker


@dataclass(frozen=True)
class ImportSummary:
    """What ``import_exodus`` did to the overlay."""

    added: int
    """Trackers written to the overlay for the first time."""
    updated: int
    """Trackers that replaced an earlier import of the same id."""
    skipped: int
    """Trackers with neither a usable code prefix nor a usable domain."""
    path: Path
    """The overlay file written."""
    merged: int = 0
    """Of added+updated: trackers that fold into a builtin SDK instead of standing alone."""
    patterns_skipped: int = 0
    """Regex alternatives that could not be converted safely to a prefix or domain."""

    def describe(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.skipped} skipped "
            f"({self.merged} merged into builtin SDKs, {self.patterns_skipped} patterns not convertible) "
            f"-> {self.path}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "path": str(self.path)}


# --------------------------------------------------------------------------------------------
# Validation of the JSON entry schema
# --------------------------------------------------------------------------------------------


def _str_list(row: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = row.get(key, [])
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return value


def is_domain(value: str) -> bool:
    """A lower-case dotted host name with an alphabetic last label (no IPs, no wildcards)."""
    labels = value.split(".")
    return (
        len(labels) >= 2
        and len(value) <= 253
        and all(_LABEL_RE.match(label) for label in labels)
        and labels[-1].isalpha()
    )


def parse_entries(data: Any, origin: str, default_source: str = "builtin") -> tuple[SdkSignature, ...]:
    """Validate a list of SDK entries (sdks.json / overlay schema). ConfigError names file and entry."""
    if isinstance(data, dict) and "sdks" in data:
        data = data["sdks"]
    if not isinstance(data, list):
        raise ConfigError(f"{origin}: expected a JSON list of SDK entries")
    out: list[SdkSignature] = []
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise ConfigError(f"{origin}: entry {i} is not an object")
        sid = row.get("id")
        if not isinstance(sid, str) or not _ID_RE.match(sid):
            raise ConfigError(f"{origin}: entry {i}: id must be snake_case (a-z, 0-9, _)")
        where = f"{origin}: {sid}"
        for key in ("name", "owner", "category"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise ConfigError(f"{where}: {key} must be a non-empty string")
        country = row.get("owner_country", "")
        if not isinstance(country, str) or (country and not _COUNTRY_RE.match(country)):
            raise ConfigError(f"{where}: owner_country must be an ISO 3166-1 alpha-2 code")
        if row["category"] not in CATEGORIES:
            raise ConfigError(
                f"{where}: unknown category {row['category']!r} (allowed: {', '.join(CATEGORIES)})"
            )
        prefixes = _str_list(row, "code_prefixes", where)
        domains = [normalize_host(d) or "" for d in _str_list(row, "domains", where)]
        for p in prefixes:
            if not _JAVA_PREFIX_RE.match(p):
                raise ConfigError(f"{where}: code prefix {p!r} is not a dotted Java name")
        for d in domains:
            if not is_domain(d):
                raise ConfigError(f"{where}: domain {d!r} is not a host name")
        for key in ("website", "notes", "source"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise ConfigError(f"{where}: {key} must be a string")
        stubs = _str_list(row, "stubs", where)
        markers = _str_list(row, "markers", where)
        code_strings = _str_list(row, "code_strings", where)
        for text in code_strings:
            if len(text) < MIN_CODE_STRING_LENGTH or ("." not in text and ":" not in text):
                raise ConfigError(
                    f"{where}: code string {text[:40]!r} must be at least {MIN_CODE_STRING_LENGTH} characters "
                    "and hold a '.' or ':'"
                )
        for p in stubs + markers:
            if not _JAVA_PREFIX_RE.match(p):
                raise ConfigError(f"{where}: {p!r} is not a dotted Java name")
            if _lookup_prefix(dict.fromkeys(prefixes, True), p) is None:
                raise ConfigError(f"{where}: stub or marker {p!r} is not under a code prefix of the entry")
        out.append(
            SdkSignature(
                id=sid,
                name=row["name"],
                owner=row["owner"],
                owner_country=country,
                category=row["category"],
                code_prefixes=tuple(prefixes),
                domains=tuple(domains),
                source=row.get("source") or default_source,
                website=row.get("website"),
                notes=row.get("notes"),
                stubs=tuple(stubs),
                markers=tuple(markers),
                code_strings=tuple(code_strings),
            )
        )
    return tuple(out)


def _read_json(path: Path, what: str) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: {what} is too large ({size} bytes)")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: {what} is not UTF-8 text") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what} ({e.strerror or e})") from e
    try:
        return json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{path}: {what} is not valid JSON ({e})") from e


@functools.cache
def builtin_signatures() -> tuple[SdkSignature, ...]:
    """The shipped sdks.json, parsed once per process."""
    text = resources.files("audit").joinpath("data", SDKS_FILE).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{SDKS_FILE}: not valid JSON ({e})") from e
    return parse_entries(data, SDKS_FILE)


# --------------------------------------------------------------------------------------------
# The matcher
# --------------------------------------------------------------------------------------------


def _lookup_prefix(index: Mapping[str, Any], dotted: str) -> Any:
    """Longest entry of ``index`` equal to ``dotted`` or a dotted-component prefix of it."""
    s = dotted
    while True:
        hit = index.get(s)
        if hit is not None:
            return hit
        i = s.rfind(".")
        if i == -1:
            return None
        s = s[:i]


def _lookup_suffix(index: Mapping[str, Any], host: str) -> Any:
    for s in suffixes(host):
        hit = index.get(s)
        if hit is not None:
            return hit
    return None


class SignatureDb:
    """An immutable set of signatures with prefix and domain indexes."""

    def __init__(self, sdks: Iterable[SdkSignature], aliases: Mapping[str, str] | None = None) -> None:
        self.sdks: tuple[SdkSignature, ...] = tuple(sdks)
        self._by_id = {s.id: s for s in self.sdks}
        self._aliases = dict(aliases or {})
        self._prefix: dict[str, tuple[SdkSignature, str]] = {}
        self._domain: dict[str, tuple[SdkSignature, str]] = {}
        for s in self.sdks:
            for p in s.code_prefixes:
                if p in self._prefix and self._prefix[p][0] is not s:
                    log.debug("code prefix %s claimed by %s and %s", p, self._prefix[p][0].id, s.id)
                    continue
                self._prefix[p] = (s, p)
            for d in s.domains:
                if d in self._domain and self._domain[d][0] is not s:
                    log.debug("domain %s claimed by %s and %s", d, self._domain[d][0].id, s.id)
                    continue
                self._domain[d] = (s, d)
        self._pkg_cache: dict[str, tuple[SdkSignature, str] | None] = {}
        self._longest_prefix = max(map(len, self._prefix), default=0)
        self._stubs = {s.id: dict.fromkeys(s.stubs, True) for s in self.sdks if s.stubs}
        self._markers = {s.id: dict.fromkeys(s.markers, True) for s in self.sdks if s.markers}
        self._host_cache: dict[str, tuple[SdkSignature, str] | None] = {}
        self._relocated_cache: dict[str, tuple[SdkSignature, str, str] | None] = {}
        #: code string -> SDK id (:attr:`SdkSignature.code_strings`; the first entry keeps a string)
        self.code_strings: dict[str, str] = {}
        for s in self.sdks:
            for text in s.code_strings:
                self.code_strings.setdefault(text, s.id)

    def __len__(self) -> int:
        return len(self.sdks)

    def get(self, sdk_id: str) -> SdkSignature | None:
        """The SDK with this id; an id merged into a builtin SDK gives that SDK."""
        s = self._by_id.get(sdk_id)
        if s is None and sdk_id in self._aliases:
            s = self._by_id.get(self._aliases[sdk_id])
        return s

    def match_class(self, class_name: str) -> tuple[SdkSignature, str] | None:
        """(SDK, matched prefix) for a dotted class name, or None."""
        d = class_name.find("$")
        name = class_name if d == -1 else class_name[:d]
        hit = self._prefix.get(name)
        if hit is not None:
            return hit
        pkg = name.rpartition(".")[0]
        if len(pkg) > self._longest_prefix:
            # no prefix is longer: start from the longest parent that may match (a hostile package
            # 100,000 levels deep was a quadratic walk up its parents)
            pkg = pkg[: self._longest_prefix + 1].rpartition(".")[0]
        cache = self._pkg_cache
        try:
            return cache[pkg]
        except KeyError:
            pass
        result: tuple[SdkSignature, str] | None = _lookup_prefix(self._prefix, pkg) if pkg else None
        cache[pkg] = result
        return result

    def match_relocated(self, class_name: str) -> tuple[SdkSignature, str, str] | None:
        """(SDK, relocated prefix, its code prefix) for a class whose package ends with a code
        prefix of two labels or more, moved under another package by a shading plugin
        (``external.org.apache.commons.lang3.StringUtils``: ``external.org.apache.commons``,
        ``org.apache.commons``); None otherwise. Only for classes :meth:`match_class` does not match."""
        pkg = class_name.partition("$")[0].rpartition(".")[0]
        cache = self._relocated_cache
        try:
            return cache[pkg]
        except KeyError:
            pass
        result: tuple[SdkSignature, str, str] | None = None
        parts = pkg.split(".")
        if len(parts) <= _MAX_RELOCATION_DEPTH:
            for j in range(1, len(parts) - 1):
                hit = _lookup_prefix(self._prefix, ".".join(parts[j:]))
                if hit is not None and "." in hit[1]:
                    result = (hit[0], ".".join(parts[:j]) + "." + hit[1], hit[1])
                    break
        cache[pkg] = result
        return result

    def match_host(self, host: str) -> tuple[SdkSignature, str] | None:
        """(SDK, matched domain) for a host name, or None. Case and trailing dot are ignored."""
        h = host_name(host) or ""
        try:
            return self._host_cache[h]
        except KeyError:
            pass
        result: tuple[SdkSignature, str] | None = _lookup_suffix(self._domain, h) if h else None
        if len(self._host_cache) < 100_000:
            self._host_cache[h] = result
        return result

    def count_classes(self, class_names: Iterable[str]) -> dict[str, tuple[int, tuple[str, ...]]]:
        """SDK id → (number of own classes, sorted prefixes with one), for SDKs with own classes."""
        return {
            sid: (p.classes, p.prefixes) for sid, p in self.code_presence(class_names).items() if p.classes
        }

    def is_stub(self, sdk_id: str, class_name: str) -> bool:
        """``class_name`` (matched to ``sdk_id``) is a stub: listed in the SDK's ``stubs``, an
        exception/error type or a resource-id class, so alone it does not show the SDK's code."""
        outer = class_name.partition("$")[0]
        if outer.endswith(_STUB_SUFFIXES) or outer.rpartition(".")[2] in _RESOURCE_CLASSES:
            return True
        stubs = self._stubs.get(sdk_id)
        return stubs is not None and _lookup_prefix(stubs, outer) is not None

    def code_presence(self, class_names: Iterable[str]) -> dict[str, CodePresence]:
        """SDK id → what of its code is among ``class_names``, for every SDK with a matching class."""
        own: dict[str, int] = {}
        stubs: dict[str, int] = {}
        pairs: set[tuple[str, str]] = set()
        marked: set[str] = set()
        match, stub_index, markers = self.match_class, self._stubs, self._markers
        # The loop of is_stub inlined: it runs for every matched class of every DEX file.
        relocated: dict[tuple[str, str], list[str]] = {}  # (sid, relocated prefix) -> original names
        for name in class_names:
            m = match(name)
            if m is None:
                r = self.match_relocated(name)
                if r is not None:
                    outer = name.partition("$")[0] if "$" in name else name
                    relocated.setdefault((r[0].id, r[1]), []).append(r[2] + outer[len(r[1]) :])
                continue
            sid = m[0].id
            outer = name.partition("$")[0] if "$" in name else name
            if (
                outer.endswith(_STUB_SUFFIXES)
                or outer.rpartition(".")[2] in _RESOURCE_CLASSES
                or (sid in stub_index and _lookup_prefix(stub_index[sid], outer))
            ):
                stubs[sid] = stubs.get(sid, 0) + 1
                continue
            own[sid] = own.get(sid, 0) + 1
            pairs.add((sid, m[1]))
            if sid in markers and sid not in marked and _lookup_prefix(markers[sid], outer):
                marked.add(sid)
        for (sid, prefix), originals in relocated.items():
            if len(originals) < MIN_RELOCATED_CLASSES:
                continue  # a package that happens to end like a prefix
            for outer in originals:
                if self.is_stub(sid, outer):
                    stubs[sid] = stubs.get(sid, 0) + 1
                    continue
                own[sid] = own.get(sid, 0) + 1
                pairs.add((sid, prefix))
                if sid in markers and _lookup_prefix(markers[sid], outer):
                    marked.add(sid)
        prefixes: dict[str, list[str]] = {}
        for sid, prefix in pairs:
            prefixes.setdefault(sid, []).append(prefix)
        return {
            sid: CodePresence(
                own.get(sid, 0),
                stubs.get(sid, 0),
                tuple(sorted(prefixes.get(sid, ()))),
                sid not in markers or sid in marked,
            )
            for sid in own.keys() | stubs.keys()
        }

    def filter(self, category: str | None = None, country: str | None = None) -> tuple[SdkSignature, ...]:
        """SDKs of a category and/or owner country (case-insensitive)."""
        out = self.sdks
        if category:
            out = tuple(s for s in out if s.category.casefold() == category.casefold())
        if country:
            out = tuple(s for s in out if s.owner_country.casefold() == country.casefold())
        return out


# --------------------------------------------------------------------------------------------
# Building a database: builtin + overlay, with the Exodus merge rule
# --------------------------------------------------------------------------------------------


def _related_domain(domain: str, index: Mapping[str, tuple[SdkSignature, str]]) -> set[str]:
    """Ids of SDKs in ``index`` whose domain equals, contains or falls under ``domain``."""
    ids = {index[s][0].id for s in suffixes(domain) if s in index}
    tail = "." + domain
    ids.update(sdk.id for d, (sdk, _) in index.items() if d.endswith(tail))
    return ids


@dataclass(frozen=True)
class _Merge:
    target: str | None
    """Builtin SDK id the entry folds into, or None when it stands alone."""
    prefixes: tuple[str, ...]
    domains: tuple[str, ...]


def _plan_import(entry: SdkSignature, primary: SignatureDb) -> _Merge:
    """Apply the merge rule to one imported entry against the primary (builtin + overlay) DB."""
    votes: dict[str, int] = {}
    for p in entry.code_prefixes:
        m = _lookup_prefix(primary._prefix, p)
        if m is not None:
            votes[m[0].id] = votes.get(m[0].id, 0) + 1
    # Most-hit SDK; ties go to the SDK hit by the earliest prefix (dicts keep insertion order).
    target = max(votes, key=lambda k: votes[k]) if votes else None
    prefixes = tuple(p for p in entry.code_prefixes if _lookup_prefix(primary._prefix, p) is None)
    domains = tuple(d for d in entry.domains if not (_related_domain(d, primary._domain) - {target}))
    if target is not None:
        own = primary._by_id[target].domains
        domains = tuple(d for d in domains if _lookup_suffix({x: x for x in own}, d) is None)
    return _Merge(target, prefixes, domains)


def build_db(builtin: Iterable[SdkSignature], overlay: Iterable[SdkSignature] = ()) -> SignatureDb:
    """Builtin entries, overridden or extended by overlay entries, then imported ones merged."""
    by_id: dict[str, SdkSignature] = {s.id: s for s in builtin}
    imported: list[SdkSignature] = []
    for s in overlay:
        if s.source.startswith("exodus:") and s.id not in by_id:
            imported.append(s)
        else:
            by_id[s.id] = s
    primary = SignatureDb(by_id.values())
    if not imported:
        return primary
    extra: dict[str, list[SdkSignature]] = {}
    standalone: list[SdkSignature] = []
    aliases: dict[str, str] = {}
    for entry in imported:
        plan = _plan_import(entry, primary)
        if plan.target is None:
            if plan.prefixes or plan.domains:
                standalone.append(
                    dataclasses.replace(entry, code_prefixes=plan.prefixes, domains=plan.domains)
                )
            continue
        aliases[entry.id] = plan.target
        extra.setdefault(plan.target, []).append(
            dataclasses.replace(entry, code_prefixes=plan.prefixes, domains=plan.domains)
        )
    merged: list[SdkSignature] = []
    for s in by_id.values():
        adds = extra.get(s.id)
        if adds:
            s = dataclasses.replace(
                s,
                code_prefixes=tuple(
                    dict.fromkeys(s.code_prefixes + tuple(p for a in adds for p in a.code_prefixes))
                ),
                domains=tuple(dict.fromkeys(s.domains + tuple(d for a in adds for d in a.domains))),
                merged_from=s.merged_from + tuple(a.id for a in adds),
            )
        merged.append(s)
    return SignatureDb(merged + standalone, aliases)


def default_overlay_path() -> Path:
    """``signatures-overlay.json`` in :func:`audit.paths.audit_home` (``$AUDIT_HOME``, else
    ``$XDG_DATA_HOME`` or ``~/.local/share`` /dataflow-audit/)."""
    return audit_home() / OVERLAY_NAME


def read_overlay(path: Path) -> tuple[SdkSignature, ...]:
    """Entries of an overlay file (ConfigError if unreadable or invalid)."""
    return parse_entries(_read_json(path, "signature overlay"), str(path), default_source="overlay")


@functools.lru_cache(maxsize=8)
def _load_cached(path: str | None, stamp: tuple[int, int] | None) -> SignatureDb:
    del stamp  # part of the cache key only: a rewritten overlay is reloaded
    overlay = read_overlay(Path(path)) if path else ()
    return build_db(builtin_signatures(), overlay)


def load_signatures(overlay: Path | None = None) -> SignatureDb:
    """Builtin signatures plus an overlay: ``overlay`` if given (it must exist), else
    :func:`default_overlay_path` when that file exists."""
    if overlay is None:
        candidate = default_overlay_path()
        path = candidate if candidate.is_file() else None
    else:
        path = Path(overlay)
        if not path.is_file():
            raise ConfigError(f"{path}: signature overlay not found")
    if path is None:
        return _load_cached(None, None)
    st = path.stat()
    return _load_cached(str(path.resolve()), (st.st_mtime_ns, st.st_size))


# --------------------------------------------------------------------------------------------
# Exodus import
# --------------------------------------------------------------------------------------------

#: Exodus category → ours, in order of precedence when a tracker has several.
EXODUS_CATEGORIES = (
    ("Advertisement", "advertising"),
    ("Crash reporting", "crash reporting"),
    ("Location", "maps"),
    ("Analytics", "analytics"),
    ("Profiling", "analytics"),
    ("Identification", "social"),
)


def convert_code_signature(signature: str) -> tuple[tuple[str, ...], int]:
    """Exodus ``code_signature`` (regex alternatives matched anywhere in a class name) → dotted prefixes.

    Only alternatives that are plain dotted Java names convert (a trailing ``.`` is dropped; ``.`` is
    taken literally). Alternatives starting with ``.`` match in the middle of a name and would need a
    substring search, so they are skipped, as is anything with other regex syntax or a single component
    (``com`` alone would match half of all apps). Returns (prefixes, number skipped)."""
    prefixes: list[str] = []
    skipped = 0
    for alt in signature.split("|"):
        alt = alt.strip()
        if not alt:
            continue
        p = alt.replace("\\.", ".").rstrip(".")
        if alt.startswith(".") or "." not in p or not _JAVA_PREFIX_RE.match(p):
            skipped += 1
            continue
        if p not in prefixes:
            prefixes.append(p)
    return tuple(prefixes), skipped


def convert_network_signature(signature: str) -> tuple[tuple[str, ...], int]:
    """Exodus ``network_signature`` (regex alternatives searched in host names) → domain suffixes.

    Accepted: escaped host names, optionally anchored or prefixed by ``.*`` / ``\\.`` (which only say
    "any subdomain"). Skipped: character classes, repetition, groups, paths, ports, IPs, names without
    a public suffix or that are a public suffix themselves (``co.uk``). Returns (domains, number skipped)."""
    psl = public_suffix_list()
    domains: list[str] = []
    skipped = 0
    for alt in signature.split("|"):
        s = alt.strip()
        if not s:
            continue
        s = s.removeprefix("^").removesuffix("$")
        s = s.removeprefix(".*")
        if s.startswith("\\."):
            s = s[2:]
        s = s.replace("\\.", ".").replace("\\-", "-").lower()
        if not is_domain(s) or psl.is_public(s) or psl.publicsuffix(s) is None:
            skipped += 1
            continue
        if s not in domains:
            domains.append(s)
    return tuple(domains), skipped


def _website_host(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    rest = url.split("://", 1)[-1]
    host = re.split(r"[/?#:]", rest, maxsplit=1)[0].lower().strip(".")
    return host or None


#: Domains that host other people's pages, code or buckets: a tracker's website or endpoint there
#: says nothing about who owns the tracker (a GitHub page is not a Microsoft SDK). The tenant hosting
#: domains of the company table, plus sites where anyone has a page or a repository.
HOSTING_SUFFIXES = HOSTING_DOMAINS | frozenset(
    {
        "github.com", "gitlab.com", "bitbucket.org", "sourceforge.net", "npmjs.com", "medium.com",
        "play.google.com", "apps.apple.com", "crunchbase.com", "linkedin.com", "twitter.com", "x.com",
        "facebook.com", "sites.google.com",
    }
)  # fmt: skip


def _owner_of(host: str) -> tuple[str, str] | None:
    from audit.enrich.company import load_companies

    info = load_companies().lookup(host)
    if info is None or info.matched in HOSTING_SUFFIXES:
        return None
    if any(host == h or host.endswith("." + h) for h in HOSTING_SUFFIXES):
        return None
    return info.company, info.country


def _infer_owner(website: Any, domains: Sequence[str]) -> tuple[str, str]:
    """Owner and country from the company table: the website's domain, else the tracker's domains
    if they all belong to one company. Hosting domains (:data:`HOSTING_SUFFIXES`) do not count.
    (unknown, "") otherwise."""
    host = _website_host(website)
    owner = _owner_of(host) if host else None
    if owner is not None:
        return owner
    found = [_owner_of(d) for d in domains]
    owners = {o for o in found if o is not None}
    if len(owners) == 1 and len(found) == sum(1 for o in found if o is not None):
        return owners.pop()
    return UNKNOWN_OWNER, ""


def _exodus_category(categories: Any) -> str:
    cats = set(categories) if isinstance(categories, list) else set()
    for theirs, ours in EXODUS_CATEGORIES:
        if theirs in cats:
            return ours
    # Exodus lists trackers; most uncategorised ones are measurement/analytics libraries.
    return "analytics"


def parse_exodus(path: Path) -> tuple[list[SdkSignature], int, int]:
    """Exodus API JSON → (entries, trackers skipped, patterns skipped). ConfigError when malformed."""
    data = _read_json(path, "Exodus tracker file")
    trackers = data.get("trackers") if isinstance(data, dict) else None
    if isinstance(trackers, list):
        trackers = {str(t.get("id", i)) if isinstance(t, dict) else str(i): t for i, t in enumerate(trackers)}
    if not isinstance(trackers, dict):
        raise ConfigError(f'{path}: not an Exodus tracker file (no "trackers" object)')
    if not trackers:
        raise ConfigError(f"{path}: Exodus tracker file lists no trackers")
    source = f"exodus:{path.name}"
    entries: list[SdkSignature] = []
    skipped = patterns_skipped = 0
    for key, t in trackers.items():
        if not isinstance(t, dict):
            raise ConfigError(f"{path}: tracker {key} is not an object")
        name = t.get("name")
        code, net = t.get("code_signature") or "", t.get("network_signature") or ""
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{path}: tracker {key} has no name")
        if not isinstance(code, str) or not isinstance(net, str):
            raise ConfigError(f"{path}: tracker {key}: code_signature/network_signature must be strings")
        tid = str(t.get("id", key))
        sid = "exodus_" + re.sub(r"[^a-z0-9_]", "_", tid.lower())
        prefixes, bad_code = convert_code_signature(code)
        domains, bad_net = convert_network_signature(net)
        patterns_skipped += bad_code + bad_net
        if not prefixes and not domains:
            skipped += 1
            continue
        owner, country = _infer_owner(t.get("website"), domains)
        website = t.get("website") if isinstance(t.get("website"), str) and t.get("website") else None
        entries.append(
            SdkSignature(
                id=sid,
                name=name.strip()[:200],
                owner=owner,
                owner_country=country,
                category=_exodus_category(t.get("categories")),
                code_prefixes=prefixes,
                domains=domains,
                source=source,
                website=website,
                notes=f"Imported from Exodus tracker {tid}",
            )
        )
    return entries, skipped, patterns_skipped


def _entry_json(s: SdkSignature) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": s.id,
        "name": s.name,
        "owner": s.owner,
        "owner_country": s.owner_country,
        "category": s.category,
        "code_prefixes": list(s.code_prefixes),
        "domains": list(s.domains),
        "source": s.source,
    }
    if s.website:
        d["website"] = s.website
    if s.notes:
        d["notes"] = s.notes
    if s.stubs:
        d["stubs"] = list(s.stubs)
    if s.markers:
        d["markers"] = list(s.markers)
    if s.code_strings:
        d["code_strings"] = list(s.code_strings)
    return d


def import_exodus(path: Path, overlay: Path | None = None) -> ImportSummary:
    """Convert an Exodus tracker file (public API format) into overlay entries.

    The overlay (default :func:`default_overlay_path`) is rewritten atomically, only after the whole
    input was read and converted; entries of earlier imports with the same id are replaced, other
    entries are kept."""
    path = Path(path)
    target = Path(overlay) if overlay is not None else default_overlay_path()
    entries, skipped, patterns_skipped = parse_exodus(path)
    existing = list(read_overlay(target)) if target.exists() else []
    index = {s.id: i for i, s in enumerate(existing)}
    added = updated = 0
    for e in entries:
        if e.id in index:
            existing[index[e.id]] = e
            updated += 1
        else:
            index[e.id] = len(existing)
            existing.append(e)
            added += 1
    primary = build_db(builtin_signatures(), [s for s in existing if not s.source.startswith("exodus:")])
    merged = sum(1 for e in entries if _plan_import(e, primary).target is not None)
    text = json.dumps([_entry_json(s) for s in existing], indent=2, ensure_ascii=False) + "\n"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError as e:
        raise ConfigError(f"{target}: cannot write signature overlay ({e.strerror or e})") from e
    return ImportSummary(
        added=added,
        updated=updated,
        skipped=skipped,
        path=target,
        merged=merged,
        patterns_skipped=patterns_skipped,
    )
