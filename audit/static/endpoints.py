"""Endpoint extraction: URLs, bare host names and IP literals in text, with the noise removed.

Cheap regex passes (URLs, dotted tokens, colon tokens; a host inside a URL is never reported twice) run
over a whole text: a DEX string table joined with newlines, an asset, the
latin-1 decoding of a native library. Every character class is ASCII on purpose: in a binary decoded as
latin-1, bytes >= 0x80 act as separators.

Noise rules (issue 2), each applied in :meth:`EndpointExtractor.classify`:

* URLs: only network schemes (:data:`NETWORK_SCHEMES`); a URL needs a host that is an IP, ``localhost``
  or a dotted name; a format template in the host (``%s``, ``{0}``, ``${x}``) drops it.
* XML namespaces and schema URIs (:data:`NAMESPACE_HOSTS`) are always dropped.
* Licence and documentation URLs (:data:`DOC_URL_PREFIXES`) are flagged ``doc``; the scanner drops them
  unless code of the app itself (not an SDK or a platform library) loads the string.
* Bare hosts need a real public suffix (offline Public Suffix List), a registrable label of two or more
  characters, no label starting with an upper-case letter, a preceding character that is not part of a
  path, e-mail address or template (``/``, ``@``, ``%``, ``$``, ``{``), and must not look like a Java name:
  registrable label a Java/Android root (``android.app``, ``java.net``; ``android.bugly.qq.com`` is a
  host), first label a generic TLD (``com.google.gson``, ``org.chromium.net``), or the
  name (or its parent) is a package or class in the app's DEX files. Two-label names whose last label is a
  file extension or a common field name that is also a TLD (``libc.so``, ``README.md``, ``user.id``) are
  not hosts.
* Placeholders (example.com/.net/.org, ``*.example``, ``*.test``, ``*.invalid``, ``*.localhost``,
  ``localhost``, RFC 1918 / loopback / link-local / unspecified / unique-local IPs) are kept with
  ``placeholder=True``.
* IPv4 literals under the X.500 OID arc ``2.5.x.y`` are OIDs (BouncyCastle & co.), not addresses; IPv6
  literals need a digit and either ``::`` or eight groups (``abc::def`` is a C++ name).
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Collection, Iterator
from functools import lru_cache
from typing import NamedTuple

from audit.names import normalize_host, parse_ip, public_suffix_list

__all__ = [
    "Candidate",
    "candidate_text",
    "EndpointExtractor",
    "NETWORK_SCHEMES",
    "is_code_name",
    "normalize",
    "package_names",
]

#: Schemes reported as URLs. Deliberately not: android-app, file, content, data, intent, market, mailto …
NETWORK_SCHEMES = frozenset(
    {
        "http", "https", "ws", "wss", "ftp", "ftps", "sftp", "rtmp", "rtmps", "rtmpt", "rtmpe", "rtsp",
        "rtsps", "mqtt", "mqtts", "tcp", "udp", "ssl", "tls", "grpc", "grpcs", "quic", "xmpp", "stun",
        "turn", "turns", "sip", "sips", "ldap", "ldaps", "smtp", "smtps", "imap", "imaps", "pop3", "redis",
        "rediss", "amqp", "amqps", "socks", "socks4", "socks5", "irc", "ircs", "git", "ssh", "telnet",
        "hls", "srt",
    }
)  # fmt: skip

#: Hosts of XML namespaces and schema URIs, and of protobuf ``Any`` type URLs
#: (``type.googleapis.com/google.rpc.Status``): never network destinations.
NAMESPACE_HOSTS = frozenset(
    {
        "schemas.android.com", "www.w3.org", "w3.org", "ns.adobe.com", "xmlpull.org", "www.xmlpull.org",
        "schemas.xmlsoap.org", "purl.org", "schemas.microsoft.com", "schemas.openxmlformats.org",
        "www.xml.org", "xml.org", "json-schema.org", "ns.google.com", "xml.apache.org", "java.sun.com",
        "xmlns.jcp.org", "www.opengis.net", "docs.oasis-open.org", "www.wapforum.org", "www.openmobilealliance.org",
        "iptc.org", "ns.useplus.org", "cipa.jp", "www.idpf.org", "www.topografix.com", "exslt.org", "schema.org",
        "schemas.google.com", "www.relaxng.org", "xmlns.com", "www.w3c.org", "ns.microsoft.com",
        "type.googleapis.com", "www.wireless-village.org", "wireless-village.org", "xml.python.org",
    }
)  # fmt: skip

#: (host, path prefix) of XML namespace, feature and property URIs on hosts that also serve pages
#: (JAXP/Xerces ``http://apache.org/xml/features/…``, RELAX NG ``http://relaxng.org/ns/structure/1.0``).
NAMESPACE_URL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("apache.org", "/xml/"), ("www.apache.org", "/xml/"), ("relaxng.org", "/ns/"), ("www.oasis-open.org", "/committees/"),
    ("www.jcp.org", "/xml/"), ("jcp.org", "/xml/"), ("xml.org", "/sax/"), ("www.bouncycastle.org", "/ns/"),
    ("www.googleapis.com", "/auth/"), ("www.ccil.org", "/~cowan/tagsoup/"), ("sodipodi.sourceforge.net", "/DTD/"),
)  # fmt: skip
#: ``www.googleapis.com/auth/…`` are OAuth scope names and TagSoup's are SAX feature names: identifiers
#: in URL form, like the namespaces above.

#: Top-level labels of special-use and private names (RFC 6761/6762/8375, common intranet TLDs): a URL
#: on one is kept as a placeholder, it names no public server.
SPECIAL_USE_TLDS = frozenset(
    {"local", "lan", "internal", "intranet", "corp", "home", "localdomain", "private"}
)

#: Addresses reserved for documentation and examples (RFC 5737, RFC 3849), and the 1.2.3.4 of every
#: tutorial: placeholders, not servers.
_DOC_NETS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
_TUTORIAL_IPS = frozenset({"1.2.3.4", "4.3.2.1", "1.1.1.2"})

#: (host, path prefix) of licence and documentation URLs. A host listed with "" matches any path.
DOC_URL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("www.apache.org", "/licenses"), ("apache.org", "/licenses"), ("www.gnu.org", ""), ("gnu.org", ""),
    ("opensource.org", ""), ("www.opensource.org", ""), ("creativecommons.org", ""),
    ("www.creativecommons.org", ""), ("developer.android.com", ""), ("d.android.com", ""),
    ("source.android.com", ""), ("spdx.org", ""), ("choosealicense.com", ""), ("www.mozilla.org", "/mpl"),
    ("mozilla.org", "/mpl"), ("tools.ietf.org", ""), ("datatracker.ietf.org", ""), ("www.ietf.org", "/rfc"),
    ("www.rfc-editor.org", ""), ("docs.oracle.com", ""), ("kotlinlang.org", ""), ("www.unicode.org", ""),
    ("unicode.org", ""), ("www.json.org", ""), ("json.org", ""), ("www.eclipse.org", "/legal"),
    ("www.bouncycastle.org", "/licence"), ("www.bouncycastle.org", "/license"), ("github.com", "/licenses"),
    ("fsf.org", ""), ("www.fsf.org", ""), ("android.googlesource.com", "/toolchain/"),
    ("www.slf4j.org", "/codes.html"), ("slf4j.org", "/codes.html"), ("logback.qos.ch", ""),
)  # fmt: skip

#: Path segments of pages written for people (source browsers, wikis, issue trackers): a URL with one,
#: loaded by library code, documents something (gson's ``github.com/google/gson/blob/main/…``).
DOC_PATH_SEGMENTS = ("/blob/", "/tree/", "/wiki/", "/issues/", "/issues", "/pull/", "/discussions/")
#: Hosts where those segments are such pages.
_SOURCE_HOSTS = frozenset(
    {"github.com", "gitlab.com", "bitbucket.org", "sourceforge.net", "gitee.com", "youtrack.jetbrains.com"}
)

#: First labels of Java/Android package names (``android.app``, ``java.net``).
JAVA_ROOTS = frozenset(
    {
        "android", "androidx", "java", "javax", "kotlin", "kotlinx", "dalvik", "sun", "libcore", "junit",
        "jdk", "scala", "groovy", "okhttp3", "okio", "retrofit2", "rx", "self", "this",
        "window", "document", "console", "math", "json", "object", "array", "string", "system", "proxy",
    }
)  # fmt: skip

#: Generic TLDs that start reverse-domain Java package names (``com.google.gson``, ``org.chromium.net``).
_REVERSE_DOMAIN_ROOTS = frozenset({"com", "org", "net", "edu", "gov", "mil", "int"})

#: TLDs that are also file extensions or common field names; a two-label bare "host" ending in one is a
#: file name (``libc.so``, ``README.md``) or code (``user.id``, ``user.name``), not a host.
CODE_LIKE_TLDS = frozenset(
    {"so", "md", "py", "sh", "rs", "cc", "zip", "mov", "ps", "pm", "cs", "mk", "kt", "db", "id", "ec", "name", "data",
     "map", "call", "run", "play", "java", "new", "log", "bin", "dat", "tmp", "save"}
)  # fmt: skip

#: Generic TLDs a bare host may end in. Hundreds of new gTLDs are also Java/JS words (``.open``,
#: ``.properties``, ``.select``, ``.host``, ``.icu``); URLs may use any suffix, bare hosts only these and
#: two-letter country codes.
BARE_HOST_GTLDS = frozenset(
    {
        "com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "mobi", "pro", "asia", "tel", "travel",
        "app", "dev", "cloud", "xyz", "top", "site", "online", "tech", "store", "shop", "live", "club", "vip",
        "ltd", "link", "work", "space", "website", "fun", "news", "world", "today", "games", "video",
        "social", "media", "network", "digital", "global", "services", "one", "plus", "page",
        "google", "goog", "microsoft", "amazon", "aws", "apple", "baidu", "alibaba", "taobao", "tmall", "sohu",
        "xin", "ren", "wang", "shouji", "citic", "unicom",
    }
)  # fmt: skip

_PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")
_PLACEHOLDER_TLDS = ("example", "test", "invalid", "localhost")
#: Second-level labels of names that tell the user to put in their own (``https://yourserver.org``,
#: ``yournextcloud.org``, ``your-domain.com``): form defaults and documentation, placeholders.
_YOUR_NAME = re.compile(
    r"your-?(?:server|domain|site|website|host|hostname|company|app|nextcloud|owncloud|instance|url|api|"
    r"backend|service|name|org|shop|store|blog|project)"
)
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_ULA = ipaddress.ip_network("fc00::/7")

_URL_CHARS = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%{}|^]"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_\-]{0,61}[A-Za-z0-9])?"
# Three cheap passes instead of one alternation (4x faster on a real DEX string table): URLs are found
# from the literal "://", dotted tokens (hosts, IPv4) and colon tokens (IPv6) by possessive scans that fail
# in one step inside a word. Tokens inside a URL are skipped.
_SCHEME_SEP = re.compile("://")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_URL_TAIL = re.compile(rf"{_URL_CHARS}*")
_DOTTED = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]++(?:\.[A-Za-z0-9_\-]++)++")
_COLONED = re.compile(r"(?<![A-Za-z0-9_\-.:])[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]*+")
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_HOST = re.compile(rf"(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9\-]{{0,61}}[A-Za-z0-9])?")
#: A bare host preceded by one of these is a path, e-mail address or template part, not a host.
_BAD_BEFORE = frozenset("/@\\$%{*.")
_WORD_AFTER = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:")
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?")
_TEMPLATE_CHARS = frozenset("%{}$")
#: A first label that a tile or CDN template fills in (``{s}.``, ``{switch:a,b,c}.``, ``${sub}.``).
_SUBDOMAIN_TEMPLATE = re.compile(r"^\$?\{[^{}./]{1,24}\}\.")
_MAX_HOST = 253
_CACHE_SIZE = 200_000
_PORT_AFTER = re.compile(r":[0-9]{1,5}(?![0-9A-Za-z.])")
#: The key just before a value in a config text (``"host": "``, ``server=``, ``api_domain: '``).
_KEY_BEFORE = re.compile(r"([A-Za-z][A-Za-z0-9_.\-]{0,39})[\"']?[ \t]*[:=][ \t]*[\"']?$")
_KEY_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
#: Words of a config key that make its value a server name (``api_host``, ``serverAddr``, ``dns``).
HOST_KEY_WORDS = frozenset(
    {"host", "hostname", "hosts", "server", "servers", "domain", "domains", "endpoint", "gateway", "proxy", "dns",
     "addr", "address", "ip", "ipv4", "ipv6", "url", "uri", "origin", "cdn", "api", "baseurl"}
)  # fmt: skip
#: The start of a hosts-file (``0.0.0.0 host``) or adblock (``||host^``) line.
_LIST_BEFORE = re.compile(r"(?:^|\n)[ \t]*(?:(?:0\.0\.0\.0|127\.0\.0\.1|::1?)[ \t]+|\|\|)$")
_TRAILING = ".,;:!?*'\"|^"
_PAIRS = {")": "(", "]": "[", "}": "{"}


class Candidate(NamedTuple):
    """One endpoint found in a text, before merging with the same value found elsewhere. (A named tuple,
    not a frozen dataclass: it is created once per occurrence, and ``_replace`` is cheap.)"""

    start: int
    """Offset of the value in the text (used to map back to a DEX string index)."""
    value: str
    host: str | None
    domain: str | None
    kind: str
    """``url``, ``host`` or ``ip``."""
    placeholder: bool = False
    doc: bool = False
    """A licence or documentation URL: reported only when the app's own code loads it."""
    context: str = ""
    """How this occurrence of a bare host or IP is written (:func:`occurrence_context`): ``port``
    (``host:8443``), ``key`` (the value of a host-like key), ``list`` (a hosts-file or blocklist
    line), or empty."""


def package_names(class_names: Collection[str]) -> frozenset[str]:
    """Lower-cased class names plus every package and parent package they live in.

    Packages longer than a host name can be (253 characters) are cut to their longest parent that is
    not: only hosts are looked up here, and a hostile class name of 100,000 packages deep would
    otherwise add 100,000 ever longer parents (gigabytes, quadratic time)."""
    packages: set[str] = set()
    for name in class_names:
        pkg = name.rpartition(".")[0]
        if len(pkg) > _MAX_HOST:
            pkg = pkg[: _MAX_HOST + 1].rpartition(".")[0]
        if pkg:
            packages.add(pkg)
    out = set(packages)
    for pkg in packages:
        while "." in pkg:
            pkg = pkg.rpartition(".")[0]
            if pkg in out:
                break
            out.add(pkg)
    out.update(class_names)
    return frozenset(n.lower() for n in out)


def is_code_name(host: str, java_names: Collection[str]) -> bool:
    """``host`` (or its parent) names a class or package of the app's code (see :func:`package_names`)."""
    return host in java_names or host.rpartition(".")[0] in java_names


def occurrence_context(text: str, start: int, end: int) -> str:
    """How the bare host or IP at ``text[start:end]`` is written: ``port``, ``key``, ``list`` or ""."""
    if end < len(text) and text[end] == ":" and _PORT_AFTER.match(text, end):
        return "port"
    tail = text[max(0, start - 4) : start]
    # most occurrences start a line (a DEX string) or follow no separator: decided without a regex
    if not tail or tail[-1] == "\n" or not any(ch in ":= \t|" for ch in tail):
        return ""
    line_start = text.rfind("\n", max(0, start - 64), start) + 1
    before = text[max(line_start, start - 64) : start]
    # Bounded: with no newline in the 64 characters before, rfind gives -1 and an unbounded slice
    # would be the whole text before the host (quadratic on an asset of bare host names, issue 15).
    # ``^`` still matches only at the real start of the text, not at ``pos``.
    if _LIST_BEFORE.search(text, max(line_start - 1, start - 66, 0), start):
        return "list"
    m = _KEY_BEFORE.search(before) if ":" in tail or "=" in tail else None
    if m and any(w.lower() in HOST_KEY_WORDS for w in _KEY_WORD.findall(m.group(1))):
        return "key"
    return ""


def _trim_url(url: str) -> str:
    """Drop trailing punctuation and unbalanced closing brackets (``(see https://x.org/a).``).

    Linear: the brackets are counted once, not once per character dropped, and the URL is sliced once
    (a hostile asset may end a URL with a megabyte of ``)`` or ``.``, which was quadratic)."""
    end = len(url)
    closing: dict[str, int] = {}
    while end:
        last = url[end - 1]
        if last in _TRAILING:
            end -= 1
        elif last in _PAIRS:
            if last not in closing:
                closing[last] = url.count(last) - url.count(_PAIRS[last])
            if closing[last] <= 0:
                break
            closing[last] -= 1
            end -= 1
        else:
            break
    return url[:end]


def _split_authority(rest: str) -> str | None:
    """Host part of ``rest`` (what follows ``scheme://``): no userinfo, no port, IPv6 unbracketed."""
    end = len(rest)
    for sep in "/?#":
        i = rest.find(sep)
        if i != -1 and i < end:
            end = i
    authority = rest[:end].rpartition("@")[2]
    if authority.startswith("["):
        close = authority.find("]")
        return authority[1:close] if close > 1 else None
    host, _, port = authority.rpartition(":") if authority.count(":") == 1 else (authority, "", "")
    if port and not port.isdigit():
        return None
    return host


@lru_cache(maxsize=1024)  # _url and domain() ask about the same host in a row (issue 15: 1.2M URLs)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    return parse_ip(text) if "[" not in text and "%" not in text else None


def _ip_placeholder(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, link-local, unspecified, private, multicast, reserved and documentation addresses."""
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return True
    if any(ip in n for n in _DOC_NETS if n.version == ip.version) or ip.compressed in _TUTORIAL_IPS:
        return True
    if isinstance(ip, ipaddress.IPv4Address) and int(ip) == 0xFFFFFFFF:
        return True
    if isinstance(ip, ipaddress.IPv4Address):
        return any(ip in n for n in _RFC1918)
    if ip.ipv4_mapped is not None:
        return _ip_placeholder(ip.ipv4_mapped)
    return ip in _ULA


def host_placeholder(host: str) -> bool:
    """example.com/.net/.org and their subdomains, reserved TLDs (RFC 2606/6761), special-use and
    intranet names (:data:`SPECIAL_USE_TLDS`, ``home.arpa``) and localhost."""
    host = host.rstrip(".")
    tld = host.rpartition(".")[2]
    if (
        host == "localhost"
        or tld in _PLACEHOLDER_TLDS
        or tld in SPECIAL_USE_TLDS
        or host.endswith(".home.arpa")
    ):
        return True
    if any(host == d or host.endswith("." + d) for d in _PLACEHOLDER_DOMAINS):
        return True
    labels = host.split(".")
    return len(labels) >= 2 and _YOUR_NAME.fullmatch(labels[-2]) is not None


def _is_namespace(host: str) -> bool:
    return host in NAMESPACE_HOSTS


def _url_path(url: str) -> str:
    rest = url.split("://", 1)[1]
    slash = rest.find("/")
    return rest[slash:] if slash != -1 else "/"


def _by_host(pairs: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, ...]]:
    """(host, path prefix) pairs as host → prefixes: one dict lookup per URL, not a loop over every
    pair (a capped hostile asset holds 100,000 URLs, issue 15)."""
    out: dict[str, tuple[str, ...]] = {}
    for h, prefix in pairs:
        out[h] = (*out.get(h, ()), prefix)
    return out


_NAMESPACE_PREFIXES = _by_host(NAMESPACE_URL_PREFIXES)
_DOC_PREFIXES = _by_host(tuple((h, p) for h, p in DOC_URL_PREFIXES if p))
_DOC_HOSTS = frozenset(h for h, p in DOC_URL_PREFIXES if not p)


#: Paths of document type and schema identifiers (a DOCTYPE's system identifier
#: ``http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd``, an ``xsi:schemaLocation``): names
#: that parsers resolve from catalogs, like the namespaces above. Namespace folders (``/xmlns/…``,
#: ``/namespaces/…``: ``http://www.jivesoftware.com/xmlns/xmpp/properties``) are checked beside them.
_SCHEMA_SUFFIXES = (".dtd", ".xsd")


def _is_namespace_url(host: str, url: str) -> bool:
    """An XML namespace, feature, property, document type or schema URI
    (``http://apache.org/xml/features/…``, ``…/introspect.dtd``)."""
    if host in NAMESPACE_HOSTS:
        return True
    path = _url_path(url)
    lower = path.lower()
    if (
        lower.endswith(_SCHEMA_SUFFIXES)
        or "/xmlns/" in lower
        or lower.startswith(("/namespaces/", "/sax/features/", "/sax/properties/"))
    ):
        return True
    prefixes = _NAMESPACE_PREFIXES.get(host)
    return prefixes is not None and path.startswith(prefixes)


#: OAuth client ids of Google APIs (``1234-abc.apps.googleusercontent.com``): identifiers, not hosts.
_OAUTH_CLIENT_SUFFIX = ".apps.googleusercontent.com"


def _is_doc_url(host: str, url: str) -> bool:
    if host in _DOC_HOSTS:
        return True
    if host in _SOURCE_HOSTS and any(seg in _url_path(url) for seg in DOC_PATH_SEGMENTS):
        return True
    prefixes = _DOC_PREFIXES.get(host)
    return prefixes is not None and _url_path(url).lower().startswith(prefixes)


class EndpointExtractor:
    """Finds endpoints in text. Build one per scan: it knows the app's DEX package and class names, so
    that ``com.foo.bar`` strings naming the app's own code are not taken for hosts."""

    def __init__(self, java_names: Collection[str] = ()) -> None:
        self.java_names = frozenset(java_names)
        self.psl = public_suffix_list()
        self._domains: dict[str, str | None] = {}
        self._seen: dict[tuple[str, str], Candidate | None] = {}

    def domain(self, host: str) -> str | None:
        """Registrable domain (eTLD+1) or None (IP, bare public suffix, unknown TLD)."""
        try:
            return self._domains[host]
        except KeyError:
            pass
        d = None if _ip(host) else self.psl.privatesuffix(host.rstrip("."))
        self._domains[host] = d
        return d

    def find(self, text: str) -> Iterator[Candidate]:
        """Every endpoint in ``text``; noise already removed (doc URLs flagged, not removed)."""
        spans: list[tuple[int, int]] = []
        for m in _SCHEME_SEP.finditer(text):
            sep = m.start()
            if spans and sep < spans[-1][1]:
                continue  # a URL inside a URL's query (``?next=https://…``) belongs to the outer one
            begin = sep
            while begin > 0 and sep - begin <= 16 and text[begin - 1] in _SCHEME_CHARS:
                begin -= 1
            if begin == sep or sep - begin > 16 or text[begin] not in _LETTERS:
                continue
            tail = _URL_TAIL.match(text, sep + 3)
            end = tail.end() if tail else sep + 3
            if begin > 0 and text[begin - 1] == "'":
                quote = text.find("'", sep, end)  # 'https://a.example','https://b.example' in JS
                end = quote if quote != -1 else end
            spans.append((begin, end))
            c = self._cached("url", text[begin:end], begin)
            if c is not None:
                yield c
        starts = [a for a, _ in spans]

        def in_url(pos: int) -> bool:
            i = bisect.bisect_right(starts, pos) - 1
            return i >= 0 and pos < spans[i][1]

        for m in _DOTTED.finditer(text):
            start, raw = m.start(), m.group()
            if spans and in_url(start):
                continue
            if start > 0 and text[start - 1] in _BAD_BEFORE:
                if not (
                    text[start - 1] == "."
                    and text[start - 2 : start] == "*."
                    or text[start - 2 : start] == "//"
                ):
                    continue
            if len(raw) > _MAX_HOST:
                continue  # not a host name (RFC 1035: 253 characters at most)
            if m.end() < len(text) and text[m.end()] == "(":
                continue  # a method call in JS or a stack trace: ``window.open(``
            c = self._cached("dotted", raw, start)
            if c is not None:
                yield c if c.kind == "url" else c._replace(context=occurrence_context(text, start, m.end()))
        for m in _COLONED.finditer(text):
            start, raw = m.start(), m.group()
            if (spans and in_url(start)) or (m.end() < len(text) and text[m.end()] in _WORD_AFTER):
                continue
            if len(raw) > 45:
                continue
            c = self._cached("ip6", raw, start)
            if c is not None:
                yield c._replace(context=occurrence_context(text, start, m.end()))

    def _cached(self, kind: str, raw: str, start: int) -> Candidate | None:
        """:meth:`classify` memoised per (kind, string): apps repeat the same hosts thousands of times."""
        key = (kind, raw)
        try:
            c = self._seen[key]
        except KeyError:
            c = self.classify(kind, raw)
            if len(self._seen) < _CACHE_SIZE:
                self._seen[key] = c
        return None if c is None else Candidate(start, *c[1:])

    def classify(self, kind: str, raw: str, start: int = 0) -> Candidate | None:
        """Turn one regex match into a candidate, or None when it is noise."""
        if kind == "url":
            return self._url(raw, start)
        if kind in ("ip4", "ip6"):
            return self._ip_literal(kind, raw, start)
        if _IPV4.fullmatch(raw):
            return self._ip_literal("ip4", raw, start)
        if _HOST.fullmatch(raw):
            return self._host(raw, start)
        return None

    def name_candidate(self, name: str) -> Candidate | None:
        """A name known to be a host or IP (a network_security_config ``<domain>``): only its syntax is
        checked, none of the bare-host heuristics."""
        name = name.strip()
        ip = _ip(name)
        if ip is not None:
            return Candidate(0, name, ip.compressed, None, "ip", _ip_placeholder(ip))
        host = normalize_host(name) or ""
        if not _HOSTNAME.fullmatch(host):
            return None
        return Candidate(0, name, host, self.domain(host), "host", host_placeholder(host))

    def _url(self, raw: str, start: int) -> Candidate | None:
        url = _trim_url(raw)
        scheme, _, rest = url.partition("://")
        if scheme.lower() not in NETWORK_SCHEMES:
            return None
        host = _split_authority(rest)
        if host and _SUBDOMAIN_TEMPLATE.match(host):
            # http://{s}.tile.osm.org/{z}/{x}/{y}.png: a map library fills in a., b., c.; the rest is
            # the server's name
            host = _SUBDOMAIN_TEMPLATE.sub("", host, count=1)
        if not host or not _TEMPLATE_CHARS.isdisjoint(host):
            return None
        ip = _ip(host)
        if ip is not None:
            return Candidate(start, url, ip.compressed, None, "url", _ip_placeholder(ip))
        host = normalize_host(host) or ""
        if (
            not _HOSTNAME.fullmatch(host)
            or _is_namespace_url(host, url)
            or host.endswith(_OAUTH_CLIENT_SUFFIX)
        ):
            return None
        if "." not in host and host != "localhost":
            return None
        domain = self.domain(host)
        placeholder = host_placeholder(host)
        if domain is None and not placeholder and self.psl.publicsuffix(host) is None:
            return None  # no public suffix: a Java name in URL clothing (http://javax.xml.transform/…)
        return Candidate(start, url, host, domain, "url", placeholder, _is_doc_url(host, url))

    def _ip_literal(self, kind: str, raw: str, start: int) -> Candidate | None:
        ip = _ip(raw)
        if ip is None:
            return None
        if kind == "ip6":
            groups = [g for g in raw.split(":") if g]
            if not any(ch.isdigit() for ch in raw) or ("::" not in raw and raw.count(":") != 7):
                return None
            if len(groups) < 2 and raw != "::1":
                return None  # "2::", "0::": enum names and C++ scopes, not addresses
        elif raw.startswith("2.5."):
            return None
        return Candidate(start, raw, ip.compressed, None, "ip", _ip_placeholder(ip))

    def _host(self, raw: str, start: int) -> Candidate | None:
        labels = raw.split(".")
        if "_" in raw or any(label[0].isupper() for label in labels):
            return None
        host = raw.lower()
        tld = labels[-1].lower()
        if labels[0] in _REVERSE_DOMAIN_ROOTS or _is_namespace(host) or host.endswith(_OAUTH_CLIENT_SUFFIX):
            return None
        if len(tld) != 2 and tld not in BARE_HOST_GTLDS and tld not in _PLACEHOLDER_TLDS:
            return None
        if labels[0] in JAVA_ROOTS and tld in _PLACEHOLDER_TLDS:
            return None  # kotlin.coroutines.test
        if host_placeholder(host):
            return Candidate(start, raw, host, self.domain(host), "host", True)
        if len(labels) == 2 and labels[1] in CODE_LIKE_TLDS:
            return None
        domain = self.domain(host)
        if domain is None or len(domain.partition(".")[0]) < 2:
            return None
        if labels[0] in JAVA_ROOTS and domain.partition(".")[0] == labels[0]:
            return None  # android.app, java.net; but android.bugly.qq.com is a host
        if is_code_name(host, self.java_names):
            return None
        if host in _DOC_HOSTS:
            return None
        return Candidate(start, raw, host, domain, "host")


#: bytes.translate table: printable ASCII except space kept, everything else becomes a space.
_TOKEN_TABLE = bytes(b if 0x21 <= b <= 0x7E else 0x20 for b in range(256))
_BLANKS = b" \t"
_ANCHOR = re.compile(rb"[.:]")
#: Bytes of the same line kept before a run, so that :func:`occurrence_context` still sees the key
#: (``"host": "…"``) or hosts-file address (``0.0.0.0 …``) in front of a bare host.
_CONTEXT_BYTES = 48
_MAX_PIECE = 4096


def candidate_text(
    data: bytes, *, context: bool = False, origins: list[tuple[int, int]] | None = None
) -> str:
    """The parts of a binary or large text that can hold an endpoint: runs of printable ASCII that contain
    ``.`` or ``:``, one per line. Endpoints never contain spaces or non-ASCII bytes, so this loses nothing.
    ``translate``, the anchor search and ``find`` run in C and the Python loop turns once per kept run, so a
    5 MB native library costs milliseconds, not the seconds of running the patterns over every byte.

    With ``context`` (text files), a run that follows a space or tab on its line keeps up to
    :data:`_CONTEXT_BYTES` of the line before it, so that :func:`occurrence_context` still sees the key
    (``"host": "…"``) or the hosts-file address (``0.0.0.0 …``) in front of a bare host; every backward
    search is bounded, so a text without newlines costs no more.

    ``origins``, when given, receives one ``(offset in the returned text, offset in data)`` pair per
    kept run, so that a caller can look at the bytes around a value found in the text; it is left empty
    when unescaping (:func:`normalize`) moved the offsets."""
    t = data.translate(_TOKEN_TABLE)
    out: list[bytes] = []
    if origins is not None:
        origins.clear()
    search, find, rfind = _ANCHOR.search, t.find, t.rfind
    last_start = last_end = -1
    text_pos = 0  # where the next run starts in the returned text (for ``origins``)
    m = search(t)
    while m is not None:  # one iteration per kept run, however many dots it has
        pos = m.start()
        end = find(b" ", pos)
        end = len(t) if end == -1 else end
        start = rfind(b" ", 0, pos) + 1
        if context and start and data[start - 1] in _BLANKS:
            ctx = max(0, start - _CONTEXT_BYTES)
            start = max(ctx, data.rfind(b"\n", ctx, start) + 1)
            if start <= last_end:  # the context reaches the run before, on the same line: one piece
                if last_end - last_start < _MAX_PIECE:
                    out[-1] = t[last_start:end]
                    text_pos += end - last_end
                    last_end = end
                    m = search(t, end)
                    continue
                start = last_end  # a line of many short runs: keep pieces short (linear)
        if origins is not None:
            origins.append((text_pos, start))
            text_pos += end - start + 1
        out.append(t[start:end])
        last_start, last_end = start, end
        m = search(t, end)
    text = b"\n".join(out).decode("ascii")
    if origins is not None and "\\/" in text:
        origins.clear()  # unescaping moves the offsets: the caller finds the values itself
    return normalize(text)


def normalize(text: str) -> str:
    """Undo JSON/JS escaping of slashes (``https:\\/\\/api.example.com``) before extraction."""
    return text.replace("\\/", "/") if "\\/" in text else text
