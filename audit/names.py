"""Host names and IP addresses: the one place every layer normalises and classifies them.

At the bottom of the package (it imports nothing of ours), so the static scanner, the traffic
importers, enrichment, the store, the graph and the report all agree on what a host is.

**Registrable domain, decided once**: private suffixes of the Public Suffix List *count*. A tenant's
name under a hosting suffix is its own registrable domain: ``someone.github.io``,
``bucket.s3.amazonaws.com``, ``d1234.cloudfront.net``, ``project.firebaseio.com``. The party behind
such a name is the tenant, not the host provider, so grouping by registrable domain (the graph's
domain nodes, "domain in the binary", first-party matching) must not put every GitHub page or S3
bucket of the world into one domain. Who *owns the suffix* (GitHub, Amazon) is a separate fact, the
company table's (:mod:`audit.enrich.company`), which matches suffixes on its own.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

__all__ = [
    "SCOPES",
    "IpAddress",
    "host_name",
    "ip_scope",
    "is_ip",
    "lookup_ip",
    "nat64_ipv4",
    "normalize_host",
    "normalize_ip",
    "NAT64_PREFIXES",
    "parse_ip",
    "public_suffix_list",
    "registrable_domain",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: ``IpInfo.scope`` values.
SCOPES = ("public", "private", "loopback", "link-local", "multicast", "reserved", "cgnat", "invalid")

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
#: NAT64 prefixes (RFC 6052 well-known prefix, RFC 8215 local-use prefix) with their lengths: an
#: IPv6-only network reaches an IPv4 server through an address that embeds the server's IPv4.
NAT64_PREFIXES = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_PRIVATE_NETS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


#: A character no IPv4 or IPv6 literal holds (its zone index, after ``%``, is cut off first).
_NOT_IP_CHAR = re.compile(r"[^0-9A-Fa-f.:]")


def parse_ip(value: str) -> IpAddress | None:
    """Parse an IP literal as found in traffic and code: ``[::1]``, ``fe80::1%eth0`` and IPv4-mapped
    IPv6 (``::ffff:1.2.3.4``, how dual-stack sockets report IPv4 peers, given as the IPv4) are
    accepted; None if it is not an address."""
    s = value.strip().strip("[]").split("%", 1)[0]
    if not s or _NOT_IP_CHAR.search(s):  # a name: no exception raised and caught per host (issue 15)
        return None
    try:
        addr = ipaddress.ip_address(s)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_ip(value: str) -> bool:
    """``value`` is an IP literal (:func:`parse_ip`)."""
    return parse_ip(value) is not None


@functools.lru_cache(maxsize=4096)
def normalize_ip(value: str) -> str | None:
    """Canonical text form of an IP literal (see :func:`parse_ip`), or None if it is not one."""
    addr = parse_ip(value)
    return None if addr is None else str(addr)


def _nat64_embedded(addr: IpAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside a NAT64 address (RFC 6052 section 2.2 layout for the prefix length),
    None if ``addr`` is not in a NAT64 prefix or breaks the layout (a non-zero "u" octet)."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    for net in NAT64_PREFIXES:
        if addr in net:
            b = addr.packed
            if net.prefixlen == 96:
                return ipaddress.IPv4Address(b[12:16])
            # Prefixes up to /64 skip bits 64-71 (octet 8, "u"), which must be zero; /48 puts
            # two octets of the IPv4 before it and two after.
            start = net.prefixlen // 8
            if b[8] != 0:
                return None
            v4 = (b[start:8] + b[9:])[:4]
            return ipaddress.IPv4Address(v4)
    return None


@functools.lru_cache(maxsize=4096)
def nat64_ipv4(value: str) -> str | None:
    """The IPv4 address embedded in a NAT64 address (``64:ff9b::/96``, RFC 6052, or the local-use
    ``64:ff9b:1::/48``, RFC 8215), e.g. ``64:ff9b::808:808`` → ``8.8.8.8``; None for any other value."""
    addr = parse_ip(value)
    v4 = _nat64_embedded(addr) if addr is not None else None
    return None if v4 is None else str(v4)


@functools.lru_cache(maxsize=4096)
def lookup_ip(value: str) -> str | None:
    """The address whose location and network answer for ``value``: the embedded IPv4 of a NAT64
    address (:func:`nat64_ipv4`: the server is the IPv4 one, the IPv6 only the carrier's translator),
    else ``value`` in canonical form; None if it is not an address. Every geo-IP and ASN lookup goes
    through it, and so does :func:`ip_scope`."""
    return nat64_ipv4(value) or normalize_ip(value)


@functools.lru_cache(maxsize=4096)
def ip_scope(value: str) -> str:
    """Which part of the address space ``value`` is in: one of :data:`SCOPES`. A NAT64 address has
    the scope of the IPv4 address it embeds (:func:`lookup_ip`).

    Only ``public`` addresses are geo-located; the others have no meaningful server location."""
    target = lookup_ip(value)
    addr = parse_ip(target) if target is not None else None
    if addr is None:
        return "invalid"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        return "multicast"
    if addr in _CGNAT:  # RFC 6598 shared address space: carrier NAT, not a server location
        return "cgnat"
    if any(addr in n for n in _PRIVATE_NETS if n.version == addr.version):
        return "private"
    if not addr.is_global:  # documentation, benchmarking, unspecified, 240/4 …
        return "reserved"
    return "public"


#: Hosts already normalised: traffic names the same few hundred again and again (issue 15).
_normalized_hosts: dict[str, str | None] = {}


def normalize_host(value: str | None) -> str | None:
    """A host as every layer compares it: stripped, lower case, without trailing dots or port; IP
    literals (also bracketed or with a port) in canonical form. None for empty input."""
    if value is None:
        return None
    if type(value) is str:
        try:
            return _normalized_hosts[value]
        except KeyError:
            h = _normalize_host(value)
            if len(value) <= 300:  # a host name is at most 253 characters: hostile ones stay out
                if len(_normalized_hosts) >= 20_000:
                    _normalized_hosts.clear()
                _normalized_hosts[value] = h
            return h
    return _normalize_host(value)


def _normalize_host(value: str) -> str | None:
    h = value.strip().lower()
    if h.startswith("["):  # [v6] or [v6]:port
        close = h.find("]")
        if close > 0:
            ip = normalize_ip(h[1:close])
            return ip if ip is not None else None
    elif h.count(":") == 1:  # host:port (a bare IPv6 has several colons)
        h = h.split(":", 1)[0]
    h = h.rstrip(".")
    if not h:
        return None
    if ":" in h or h[-1].isdigit():
        ip = normalize_ip(h)
        if ip is not None:
            return ip
    return h


def host_name(value: str | None) -> str | None:
    """:func:`normalize_host`, but None for IP literals: the name a company or an SDK can own."""
    h = normalize_host(value)
    return None if h is None or is_ip(h) else h


@functools.cache
def public_suffix_list() -> PublicSuffixList:
    """The Public Suffix List bundled with ``publicsuffixlist`` (offline), private section included,
    unknown suffixes not accepted; loaded once per process.

    Parsing the list (10,000 rules, each also IDN-encoded) costs about 60 ms, a tenth of a scan of
    a large app; the parsed state is kept in the cache folder (:func:`audit.paths.cache_home`,
    ``psl.json``: the object's attributes, plain JSON) under a key of the library's version and
    list file, and read back in about 2 ms. A missing, stale or unreadable cache is rebuilt from
    the list; one that cannot be written is only not kept."""
    import publicsuffixlist
    from publicsuffixlist import PublicSuffixList

    key = _psl_key(publicsuffixlist)
    cached = _psl_cached(key)
    if cached is not None:
        psl = PublicSuffixList.__new__(PublicSuffixList)
        psl.__dict__.update(cached)
        return psl
    psl = PublicSuffixList(accept_unknown=False)
    _psl_keep(key, vars(psl))
    return psl


def _psl_key(module: object) -> str:
    import os

    parts = [str(getattr(module, "__version__", ""))]
    for path in (getattr(module, "PSLFILE", ""), getattr(module, "__file__", "")):
        try:
            st = os.stat(path)
            parts.append(f"{path}:{st.st_size}:{st.st_mtime_ns}")
        except (OSError, TypeError, ValueError):
            parts.append(f"{path}:?")
    return "|".join(parts)


def _psl_file() -> Path:
    from audit.paths import cache_home

    return cache_home() / "psl.json"


def _psl_cached(key: str) -> dict[str, object] | None:
    """The attributes kept for ``key``, or None (no cache, another key, anything unexpected)."""
    import json

    try:
        data = json.loads(_psl_file().read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        state = data["state"]
        suffixes = state["_publicsuffix"]
        if not (isinstance(suffixes, list) and all(isinstance(s, str) for s in suffixes)):
            return None
        if not isinstance(state.get("_maxlabel"), int) or not isinstance(state.get("accept_unknown"), bool):
            return None
        return {**state, "_publicsuffix": frozenset(suffixes)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _psl_keep(key: str, state: dict[str, object]) -> None:
    """Keep the parsed list if its attributes are the plain kinds :func:`_psl_cached` reads back."""
    import json

    kinds = {"accept_unknown": bool, "_maxlabel": int, "_publicsuffix": frozenset}
    if set(state) != set(kinds) or not all(isinstance(state[k], t) for k, t in kinds.items()):
        return  # another version of the library keeps other state: parse it every time
    plain = {**state, "_publicsuffix": sorted(state["_publicsuffix"])}  # type: ignore[call-overload]
    from audit.errors import AuditError
    from audit.paths import write_atomic

    try:
        write_atomic(_psl_file(), json.dumps({"key": key, "state": plain}))
    except (AuditError, OSError):
        pass


@functools.lru_cache(maxsize=65536)
def registrable_domain(host: str | None) -> str | None:
    """eTLD+1 of a host name, private suffixes counting (see the module docstring); None for IP
    literals, bare public suffixes and unknown suffixes."""
    h = normalize_host(host)
    if not h or is_ip(h):
        return None
    try:
        d = public_suffix_list().privatesuffix(h)
    except (ValueError, UnicodeError):
        return None
    return str(d) if d else None
