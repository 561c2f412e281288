"""Does a string name a network server? Positive evidence for bare hosts and IP literals.

A URL names its server by its syntax (``https://api.example.cn/v1``). A bare string that merely has
the shape of a host (``ro.build.display.id``, ``this.style.top``, ``config.de``, ``2.9.0.0``) names
nothing, and shape alone was wrong for half of the bare hosts and IPs of real apps (issue 11). So a
bare host or IP counts as a network endpoint (``Endpoint.network``) only with positive evidence, the
strongest of which is recorded in ``Endpoint.network_evidence``:

strong (they also overrule the negative rules below)
  * the same host is the host of a URL elsewhere in the app;
  * it is a ``<domain>`` of the network security config;
  * it is written with a port (``api.example.cn:8443``);
medium
  * DEX code that loads it also calls a networking API with it in reach (:data:`NETWORK_APIS`:
    ``InetAddress.getByName``, ``new InetSocketAddress``, ``Uri.Builder.authority`` …) or loads a
    URL scheme (``"https://"``) in the same method: the way a host constant becomes a connection;
  * it is the value of a host-like key in a config text (``"host": "…"``, ``server=…``) or a line of
    a hosts file / blocklist;
  * its domain is a known server domain: owned by a company in ``companies.json`` or talked to by an
    SDK of ``sdks.json``; or its registrable domain is the host of a URL in the app;
  * (IPs) it is a well-known public DNS resolver (:data:`PUBLIC_RESOLVERS`).

Wherever it is, a string named only inside messages in the code (``See http://netty.io/wiki/… for
details``, ``site: x5.tencent.com``) documents something: it is not a server unless the code hands it
to a networking API (``Runtime.exec("ping www.qq.com")`` is one). Strings passed to a licence-notice
API (:data:`NOTICE_APIS`) are credits.

Negative rules name strings that are known not to be servers (Android system property keys,
JavaScript member expressions, resource split names, FCM message keys, version numbers, netmasks,
mixed-case tokens from binary data). They are overruled only by strong evidence.

What fails both is still listed, with ``network: false`` and the reason, so an analyst can see what
was set aside; nothing counts it (report, graph, diff, check, destinations).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "NO_IP_EVIDENCE",
    "NETWORK_APIS",
    "NOTICE_APIS",
    "NOTICE_DESCRIPTORS",
    "PUBLIC_RESOLVERS",
    "CodeUse",
    "Verdict",
    "code_use",
    "in_message",
    "is_message",
    "judge",
    "non_server_reason",
    "sibling_evidence",
]

#: Methods that take a host name or address (or a URL built from one): dotted class → method names.
#: Only platform and de-facto standard classes: their names survive obfuscation of the app (java.*,
#: android.*) or are kept by the libraries' own consumer rules.
NETWORK_APIS: Mapping[str, frozenset[str]] = {
    "java.net.URL": frozenset({"<init>"}),
    "java.net.URI": frozenset({"<init>", "create"}),
    "java.net.InetAddress": frozenset({"getByName", "getAllByName"}),
    "java.net.InetSocketAddress": frozenset({"<init>", "createUnresolved"}),
    "java.net.Socket": frozenset({"<init>"}),
    "java.net.DatagramSocket": frozenset({"connect"}),
    "javax.net.SocketFactory": frozenset({"createSocket"}),
    "javax.net.ssl.SSLSocketFactory": frozenset({"createSocket"}),
    "android.net.SSLCertificateSocketFactory": frozenset({"createSocket"}),
    "android.net.Uri$Builder": frozenset({"authority", "encodedAuthority"}),
    "android.webkit.CookieManager": frozenset({"setCookie"}),
    "okhttp3.HttpUrl$Builder": frozenset({"host"}),
    "okhttp3.CertificatePinner$Builder": frozenset({"add"}),
    "com.squareup.okhttp.CertificatePinner$Builder": frozenset({"add"}),
    "com.squareup.okhttp.HttpUrl$Builder": frozenset({"host"}),
    "org.apache.http.HttpHost": frozenset({"<init>"}),
    "io.grpc.ManagedChannelBuilder": frozenset({"forAddress", "forTarget"}),
    "io.grpc.okhttp.OkHttpChannelBuilder": frozenset({"forAddress", "forTarget"}),
    "io.grpc.android.AndroidChannelBuilder": frozenset({"forAddress", "forTarget"}),
    # a command line handed to the shell: ``ping www.qq.com`` (Tencent X5's connectivity check)
    "java.lang.Runtime": frozenset({"exec"}),
    "java.lang.ProcessBuilder": frozenset({"<init>", "command"}),
}

#: Methods whose string arguments are licence notices, not servers (the LicensesDialog library's
#: ``new Notice(name, url, copyright, licence)``).
NOTICE_APIS: Mapping[str, frozenset[str]] = {
    "de.psdev.licensesdialog.model.Notice": frozenset({"<init>"}),
}
#: Their type descriptors as a DEX string table holds them: without one, no code calls them.
NOTICE_DESCRIPTORS = tuple("L" + cls.replace(".", "/") + ";" for cls in NOTICE_APIS)

#: Three words of natural language in a row: a string holding them is a message (log, exception,
#: help text), and a URL inside it documents something rather than names a server the code uses.
_MESSAGE = re.compile(r"\b[A-Za-z]{2,}[ ,;:]+[A-Za-z]{2,}[ ,;:]+[A-Za-z]{2,}\b")


def is_message(text: str) -> bool:
    """``text`` reads as a sentence (``See http://netty.io/wiki/… for details``)."""
    return _MESSAGE.search(text) is not None


#: Words that point the reader to a page, right before a URL (``See https://www.python.org/psf/license/``,
#: ``  See https://flask.palletsprojects.com/…`` of a help text): a citation even when the message is too
#: short to read as a sentence.
_CITES = re.compile(r"(?i)(?:^|[^a-z])(?:see(?:\s+also)?|visit|cf\.|refer\s+to)\s*:?\s*[<(\[]?\s*$")


def cites(before: str) -> bool:
    """The text right before a URL (``before``) points the reader to it: ``see``, ``visit``, ``cf.``."""
    return _CITES.search(before[-40:]) is not None


#: Bytes of text kept around a value in binary data: C strings, ``printf`` formats and help texts of
#: native libraries, docstrings of compiled Python; tabs and line breaks belong to the text.
_TEXT_RUN = re.compile(rb"[\t\n\r\x20-\x7e]*")
_TEXT_REACH = 256
#: Bytes that begin a URL written inside prose: a blank, ``<https://…>``, ``(https://…)``, ``[…]``.
_PROSE_BEFORE = frozenset(b" \t\n\r<([")
#: Words of a credit or licence banner (``/*! ieee754. BSD-3-Clause License. Feross Aboukhadijeh <…> */``).
_CREDIT = re.compile(r"(?i)\b(?:licen[cs]ed?|copyright|author)\b|\(c\)")


def in_message(data: bytes, pos: int, length: int) -> bool:
    """The value at ``data[pos:pos + length]`` of binary data (a native library, a compiled asset) is
    part of a message: the printable text around it reads as a sentence (:func:`is_message`: ``see
    https://python.org/dev/peps/pep-0263/ for details``), a credit (licence, copyright or author
    words: ``@author Feross Aboukhadijeh <https://feross.org>``) or a citation (:func:`cites`), and the value is set off from it as a
    word: a value glued to other text (``Berlinhttp://…``, records of a database) or in quotes of its
    own (``"url":"https://…"``, an ``href``) is not."""
    if pos > 0 and data[pos - 1] not in _PROSE_BEFORE:
        return False
    lo = max(0, pos - _TEXT_REACH)
    head = data[lo:pos][::-1]
    run = _TEXT_RUN.match(head)
    head = head[: run.end()] if run else b""
    end = pos + length
    run = _TEXT_RUN.match(data, end, end + _TEXT_REACH)
    tail = data[end : run.end()] if run else b""
    before = head[::-1].decode("ascii")
    text = before + " " + tail.decode("ascii")
    return is_message(text) or _CREDIT.search(text) is not None or cites(before)


#: How far around a value in source text its string literal is looked for (one line of it).
_LITERAL_REACH = 512
_QUOTES = (b'"', b"'", b"`")


def in_literal_message(data: bytes, pos: int, length: int) -> bool:
    """The value at ``data[pos:pos + length]`` of script source (JavaScript, a bundle, a page's
    scripts) sits in a string literal that reads as a message (:func:`is_message`) or cites it
    (:func:`cites`): React's ``"; visit https://reactjs.org/docs/error-decoder.html?invariant="``, a
    warning's ``"… See https://reactnative.dev/docs/… for details"``. The literal is the text from the
    nearest quote before the value, on its line, to the same quote after it; a value in no literal
    found so, or alone in its literal (``fetch("https://api…")``), is not in a message."""
    lo = max(0, pos - _LITERAL_REACH)
    nl = data.rfind(b"\n", lo, pos)
    lo = nl + 1 if nl != -1 else lo
    q = max(data.rfind(quote, lo, pos) for quote in _QUOTES)
    if q == -1:
        return False
    end = pos + length
    close = data.find(data[q : q + 1], end, min(len(data), end + _LITERAL_REACH))
    if close == -1 or data.find(b"\n", end, close) != -1:
        return False
    before = data[q + 1 : pos].decode("latin-1")
    return cites(before) or is_message(before + " " + data[end:close].decode("latin-1"))


#: URL schemes whose presence in the same method as a bare host means the host is put into a URL.
_SCHEME_PREFIXES = ("http://", "https://", "ws://", "wss://", "tcp://", "ssl://", "mqtt://", "mqtts://")

#: Public DNS resolvers apps hard-code for their own DNS-over-UDP or HTTP DNS (well-known addresses).
PUBLIC_RESOLVERS = frozenset(
    ipaddress.ip_address(a).compressed
    for a in (
        "8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112", "208.67.222.222",
        "208.67.220.220", "114.114.114.114", "114.114.115.115", "223.5.5.5", "223.6.6.6", "119.29.29.29",
        "182.254.116.116", "180.76.76.76", "101.226.4.6", "218.30.118.6", "1.2.4.8", "210.2.4.8",
        "2001:4860:4860::8888", "2001:4860:4860::8844", "2606:4700:4700::1111", "2606:4700:4700::1001",
        "2620:fe::fe", "2400:3200::1", "2400:3200:baba::1", "2402:4e00::", "2400:da00::6666",
    )
)  # fmt: skip

#: First labels of Android system property keys (``ro.build.display.id``, ``persist.sys.timezone``).
_SYSPROP_ROOTS = frozenset(
    {
        "ro",
        "persist",
        "sys",
        "debug",
        "dalvik",
        "gsm",
        "ril",
        "init",
        "vold",
        "ctl",
        "hw",
        "wlan",
        "telephony",
    }
)
#: First labels of JavaScript/Java member expressions (``this.style.top``, ``window.screen.top``).
_MEMBER_ROOTS = frozenset(
    {
        "this", "self", "window", "document", "navigator", "location", "console", "math", "json", "object",
        "array", "string", "system", "event", "element", "props", "state", "process", "module", "exports",
        "global", "globalthis", "screen", "style", "prototype", "super", "parent", "top", "frames",
    }
)  # fmt: skip
#: ISO 639-1 language codes (``config.de``: the language split of an app bundle, not a German host).
_LANGUAGES = frozenset(
    "af am ar as az be bg bn bs ca cs cy da de el en es et eu fa fi fr ga gl gu he hi hr hu hy id in is "
    "it iw ja ka kk km kn ko ky lo lt lv mk ml mn mr ms my nb ne nl no or pa pl pt ro ru si sk sl sq sr "
    "sv sw ta te th tl tr uk ur uz vi zh zu".split()
)
_SPLIT_ROOTS = frozenset({"config", "split_config", "split"})


@dataclass(frozen=True)
class CodeUse:
    """What the DEX methods that load a string do besides: networking calls, URL schemes."""

    apis: tuple[str, ...] = ()
    """``java.net.InetSocketAddress.<init> (com.foo.Dns)``: networking methods invoked, with the class."""
    schemes: tuple[str, ...] = ()
    """Classes whose same method also loads a URL scheme string (``"https://"``)."""
    notices: tuple[str, ...] = ()
    """``de.psdev.licensesdialog.model.Notice.<init> (com.foo.About)``: licence-notice APIs invoked."""
    siblings: tuple[tuple[str, str], ...] = ()
    """``(string, class)``: other address-like strings the same methods load (at most
    :data:`MAX_SIBLINGS` of them per method): a fallback IP registered beside its host name, a probe
    address listed with public resolvers (:func:`sibling_evidence`)."""

    def merge(self, other: CodeUse) -> CodeUse:
        return CodeUse(
            tuple(sorted(set(self.apis) | set(other.apis))),
            tuple(sorted(set(self.schemes) | set(other.schemes))),
            tuple(sorted(set(self.notices) | set(other.notices))),
            tuple(sorted(set(self.siblings) | set(other.siblings))),
        )

    def __bool__(self) -> bool:
        return bool(self.apis or self.schemes or self.notices or self.siblings)


def code_use(
    loaders: Iterable[tuple[int, str]],
    invokes: Callable[[int], Iterable[int]],
    method_name: Callable[[int], tuple[str, str]],
    method_strings: Callable[[int], Iterable[int]],
    strings: list[str],
    *,
    siblings: bool = False,
) -> CodeUse:
    """The :class:`CodeUse` of one string from the methods loading it (``(code_off, class)``, from
    :meth:`audit.static.dex.DexFile.string_loaders`) and that DEX file's accessors; ``siblings``: also
    collect the other address-like strings of those methods (asked for bare IPs, the only ones that
    use them)."""
    apis: set[str] = set()
    schemes: set[str] = set()
    notices: set[str] = set()
    nearby: set[tuple[str, str]] = set()
    for off, cls in loaders:
        for m in invokes(off):
            owner, name = method_name(m)
            if name in NETWORK_APIS.get(owner, ()):
                apis.add(f"{owner}.{name} ({cls})")
            elif name in NOTICE_APIS.get(owner, ()):
                notices.add(f"{owner}.{name} ({cls})")
        n = len(strings)  # a hostile const-string may name an index past the table
        loaded = [strings[j] for j in method_strings(off) if j < n]
        if cls not in schemes and any(t.startswith(_SCHEME_PREFIXES) for t in loaded):
            schemes.add(cls)
        if siblings:
            near = [t for t in loaded if _ADDRESS_LIKE.fullmatch(t)]
            if len(near) <= MAX_SIBLINGS:  # a table of hundreds of addresses is data, not a call's pair
                nearby.update((t, cls) for t in near)
    return CodeUse(tuple(sorted(apis)), tuple(sorted(schemes)), tuple(sorted(notices)), tuple(sorted(nearby)))


#: Most address-like strings one method may load for them to count as each other's siblings.
MAX_SIBLINGS = 16
#: A host name or IPv4 literal, optionally with a port: what a sibling can be.
_ADDRESS_LIKE = re.compile(r"[a-z0-9][a-z0-9.-]{2,252}\.[a-z0-9]{1,63}(?::\d{1,5})?")


def sibling_evidence(use: CodeUse, servers: Mapping[str, str]) -> str | None:
    """Why a bare IP literal names a server after all: a method that loads it also loads a string
    already judged a server (``servers``: value or host → the counted endpoint's host), as in
    ``register("app.chat.xiaomi.net", "111.13.142.2")`` or a probe list beside ``8.8.8.8``."""
    for value, cls in use.siblings:
        host = servers.get(value) or servers.get(value.rpartition(":")[0] if ":" in value else "")
        if host is not None:
            return f"loaded beside the server {host} in {cls}"
    return None


def non_server_reason(value: str, host: str, kind: str) -> str | None:
    """Why a bare host or IP literal is known not to name a server, or None."""
    if kind == "ip":
        return _ip_reason(value, host)
    labels = host.split(".")
    if value != value.lower():
        return "mixed-case token (binary data or code, not a host name)"
    if len(labels) >= 3 and labels[0] in _SYSPROP_ROOTS:
        return "Android system property key"
    if labels[0] in _MEMBER_ROOTS:
        return "member expression in code"
    if len(labels) == 2 and labels[0] in _SPLIT_ROOTS and labels[1] in _LANGUAGES:
        return "app bundle split name"
    if labels[0] in ("google", "gcm", "fcm") and len(labels[-1]) == 2 and len(labels) <= 3:
        return "push message key"
    return None


def _ip_reason(value: str, host: str) -> str | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "not an address"
    if isinstance(ip, ipaddress.IPv4Address):
        octets = [int(x) for x in host.split(".")]
        if octets[0] == 255 or _is_netmask(int(ip)) or _is_netmask(~int(ip) & 0xFFFFFFFF):
            return "netmask"
        if all(o < 10 for o in octets) and host not in PUBLIC_RESOLVERS:
            return "version number"
    return None


def _is_netmask(n: int) -> bool:
    """Contiguous ones from the top (255.255.255.0), at least a /8."""
    return n >= 0xFF000000 and (((~n) & 0xFFFFFFFF) + 1) & (~n & 0xFFFFFFFF) == 0


@dataclass(frozen=True)
class Verdict:
    network: bool
    evidence: str
    """The strongest reason for ``network`` (or the reason against it)."""


#: The verdict's evidence for a bare IP nothing shows to be a server (before :func:`sibling_evidence`).
NO_IP_EVIDENCE = "bare address with no evidence of use as a server"


def judge(
    kind: str,
    value: str,
    host: str | None,
    domain: str | None,
    *,
    contexts: Collection[str] = (),
    use: CodeUse = CodeUse(),  # noqa: B008 (immutable)
    url_hosts: Collection[str] = (),
    url_domains: Collection[str] = (),
    known_domain: Callable[[str], str | None] = lambda host: None,
    message_only: bool = False,
) -> Verdict:
    """Whether one endpoint names a network server, and why.

    ``contexts`` are the occurrence contexts the extractor saw (``nsc``, ``port``, ``key:FILE``,
    ``list:FILE``; ``static``: a static field's initial value, which its code reads rather than
    loads); ``use`` what the DEX code loading it does; ``url_hosts``/``url_domains`` the
    hosts and registrable domains of every URL in the app; ``known_domain(host)`` names the company
    or SDK that owns a host, or None; ``message_only``: found only in DEX strings that are messages
    (:func:`is_message`), where a URL documents rather than names a server the code uses."""
    if use.notices and not use.apis:
        return Verdict(False, f"licence notice ({use.notices[0]})")
    if message_only and not use.apis:
        return Verdict(False, "named only in a message (log, exception or help text)")
    if kind == "url":
        return Verdict(True, "URL")
    if host is None:
        return Verdict(False, "no host")
    if "nsc" in contexts:
        return Verdict(True, "domain in the network security config")
    if host in url_hosts:
        return Verdict(True, "host of a URL in the app")
    if "port" in contexts:
        return Verdict(True, "written with a port (host:port)")
    reason = non_server_reason(value, host, kind)
    if reason is not None:
        return Verdict(False, reason)
    loaded = "held in a static field read" if "static" in contexts else "loaded"
    if use.apis:
        return Verdict(True, f"{loaded} by code that calls {use.apis[0]}")
    if use.schemes:
        return Verdict(True, f"{loaded} next to a URL scheme in {use.schemes[0]}")
    keyed = sorted(c for c in contexts if c.startswith(("key:", "list:")))
    if keyed:
        how, _, file = keyed[0].partition(":")
        what = "value of a host or server key" if how == "key" else "entry of a hosts file or blocklist"
        return Verdict(True, f"{what} in {file}")
    if kind == "ip":
        if host in PUBLIC_RESOLVERS:
            return Verdict(True, "well-known public DNS resolver")
        return Verdict(False, NO_IP_EVIDENCE)
    owner = known_domain(host)
    if owner is not None:
        return Verdict(True, f"domain of {owner}")
    if domain is not None and domain in url_domains:
        return Verdict(True, f"{domain} is the domain of a URL in the app")
    return Verdict(False, "bare name with no evidence of use as a server")
