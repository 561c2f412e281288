"""IP → AS number + organisation from an IPFire location database (fact 2 of a destination).

The embedded geo-IP data (``geoip2fast``) names the AS organisation but has no AS *numbers*. The
IPFire Location project publishes a signed, openly licensed (CC BY-SA 4.0) database of every routed
network with its AS number, AS name and country, in its own binary format ("libloc", ``LOCDBXX``
version 1). Debian and Ubuntu ship it as the package ``libloc-database``
(``/usr/share/libloc-location/location.db``); ``location update`` keeps a fresher copy in
``/var/lib/location/database.db``. When one of these is present, every command and the mitmproxy addon
use it for AS numbers without any option; ``$AUDIT_LOCATION_DB`` names another file, or ``off`` turns
it off. Nothing is downloaded and the data is read in place, never copied.

This module reads the format with our own code (the C library and its Python binding are bound to the
system Python), from its published layout, all integers big-endian:

* magic ``LOCDBXX`` + version byte (1);
* header: creation time (u64, UNIX), string-pool offsets of vendor, description and licence (u32),
  then offset/length (u32, u32) of the AS, network-data, network-tree, country and string-pool
  sections, the lengths of two signatures (u16) and the signatures themselves;
* AS section: (number u32, name u32 pool offset), sorted by number;
* network tree: nodes (zero child u32, one child u32, network u32 or ``0xffffffff``); a binary trie
  over the 128-bit address, IPv4 inside ``::ffff:0:0/96``, node 0 the root; the deepest node on the
  address's path that carries a network is its longest-prefix match;
* network data: (country code 2 bytes, 2 bytes padding, AS number u32, flags u16, 2 bytes padding);
* string pool: NUL-terminated UTF-8 strings.

Every offset, index and string is bounds-checked: a damaged or hostile file gives a one-line
:class:`~audit.errors.ConfigError` when opened, or no answer for an address, never a traceback. The
signatures are not verified (the package manager vouches for the Debian copy).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import mmap
import os
import re
import struct
from pathlib import Path

from audit.enrich.backend import GeoAnswer, GeoIpBackend
from audit.errors import ConfigError
from audit.names import parse_ip

log = logging.getLogger(__name__)

MAGIC = b"LOCDBXX"
VERSION = 1
#: Environment variable naming the location database to use; ``off`` (or empty) for none.
ENV_VAR = "AUDIT_LOCATION_DB"
#: Where the database is looked for when ``$AUDIT_LOCATION_DB`` is unset, in order: a copy kept
#: fresh by ``location update`` first, then the one Debian's ``libloc-database`` package installs.
SYSTEM_PATHS: tuple[str, ...] = ("/var/lib/location/database.db", "/usr/share/libloc-location/location.db")
_OFF = frozenset({"", "off", "none", "no", "0", "false"})

#: Network flags (``loc_network_flags``).
FLAG_ANONYMOUS_PROXY = 1 << 0
FLAG_SATELLITE_PROVIDER = 1 << 1
FLAG_ANYCAST = 1 << 2
FLAG_DROP = 1 << 3
#: Flag bit → the name used in ``network_flags`` (JSON, CSV, report).
FLAG_NAMES: tuple[tuple[int, str], ...] = (
    (FLAG_ANYCAST, "anycast"),
    (FLAG_ANONYMOUS_PROXY, "anonymous-proxy"),
    (FLAG_SATELLITE_PROVIDER, "satellite-provider"),
    (FLAG_DROP, "drop"),
)

_MAGIC = struct.Struct(">7sB")
# created_at, vendor, description, license, then (offset, length) × AS, network data, network
# tree, countries, pool, then the two signature lengths.
_HEADER = struct.Struct(">QIII10IHH")
_NODE = struct.Struct(">III")
_NETWORK = struct.Struct(">2s2xIH2x")
_AS = struct.Struct(">II")
_NO_NETWORK = 0xFFFFFFFF
_V4_PREFIX = 0xFFFF << 32  # ::ffff:0:0/96
#: Longest string read from the pool (names come from a file we do not control).
MAX_STRING = 200
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")


class LocationDbGeoIp(GeoIpBackend):
    """An IPFire location database (libloc format 1), memory-mapped and validated on construction.

    Answers AS number and AS name (``asn``/``asn_org``) and, in :meth:`network_of`, the matching
    network with its country and flags."""

    provides_asn = True
    source_id = "libloc"

    @property
    def facts(self) -> tuple[str, ...]:
        return ("asn", "asn_org", "network_flags")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        if not Path(self.path).is_file():
            raise ConfigError(f"{self.path}: location database not found")
        try:
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:  # ValueError: an empty file cannot be mapped
            raise ConfigError(f"{self.path}: cannot read location database ({e})") from e
        try:
            self._parse_header()
        except ConfigError:
            self._map.close()
            raise

    def _parse_header(self) -> None:
        m = self._map
        if len(m) < _MAGIC.size + _HEADER.size:
            raise ConfigError(f"{self.path}: not an IPFire location database (file too short)")
        magic, version = _MAGIC.unpack_from(m, 0)
        if magic != MAGIC:
            raise ConfigError(f"{self.path}: not an IPFire location database (no LOCDBXX magic)")
        if version != VERSION:
            raise ConfigError(
                f"{self.path}: location database format version {version} is not supported (only 1)"
            )
        fields = _HEADER.unpack_from(m, _MAGIC.size)
        created_at, vendor, description, licence = fields[:4]
        sections = fields[4:14]
        size = len(m)

        def section(index: int, name: str, record: int) -> tuple[int, int]:
            offset, length = sections[2 * index], sections[2 * index + 1]
            if offset + length > size:
                raise ConfigError(
                    f"{self.path}: damaged location database ({name} section runs past the end)"
                )
            if record and length % record:
                raise ConfigError(
                    f"{self.path}: damaged location database ({name} section has a partial record)"
                )
            return offset, length // record if record else length

        self._as_off, self._as_count = section(0, "AS", _AS.size)
        self._net_off, self._net_count = section(1, "network", _NETWORK.size)
        self._node_off, self._node_count = section(2, "network tree", _NODE.size)
        self._pool_off, self._pool_len = section(4, "string pool", 0)
        if self._node_count == 0:
            raise ConfigError(f"{self.path}: damaged location database (empty network tree)")
        try:
            self.created_at: dt.datetime | None = dt.datetime.fromtimestamp(created_at, dt.UTC)
        except (OverflowError, OSError, ValueError):
            self.created_at = None
        self.vendor = self._string(vendor) or "unknown vendor"
        self.description = self._string(description)
        self.licence = self._string(licence)
        # IPv4 lookups all start at ::ffff:0:0/96: walk those 96 levels once.
        self._v4_node, self._v4_best = self._walk(_V4_PREFIX, 0, 0, 96, None)

    # ---- reading ------------------------------------------------------------------------------

    def _string(self, offset: int) -> str | None:
        """A pool string, cut at :data:`MAX_STRING` characters, control characters blanked; None if
        the offset is outside the pool or the string is empty. Runs of whitespace and control characters become one space."""
        if offset >= self._pool_len:
            return None
        start = self._pool_off + offset
        limit = min(self._pool_off + self._pool_len, start + 4 * MAX_STRING)
        end = self._map.find(b"\0", start, limit)
        raw = self._map[start : end if end >= 0 else limit]
        text = _SPACE.sub(" ", raw.decode("utf-8", "replace")).strip()
        return text[:MAX_STRING] or None

    def _walk(
        self, key: int, node: int, level: int, stop: int, best: tuple[int, int] | None
    ) -> tuple[int, tuple[int, int] | None]:
        """Follow ``key``'s bits from ``node`` at ``level`` down to ``stop`` at most; returns the last
        node reached (-1 once the path ends) and the deepest (network index, prefix length) seen."""
        m, base, count = self._map, self._node_off, self._node_count
        while True:
            zero, one, network = _NODE.unpack_from(m, base + node * _NODE.size)
            if network != _NO_NETWORK:
                best = (network, level)
            if level >= stop:
                return node, best
            child = one if (key >> (127 - level)) & 1 else zero
            if child == 0 or child >= count:  # 0: no child (the root is never a child)
                return -1, best
            node, level = child, level + 1

    def network_of(
        self, ip: str
    ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str | None, int, int] | None:
        """The longest matching network of ``ip``: (network, country code, AS number, flags), or None."""
        addr = parse_ip(ip)
        if addr is None:
            return None
        if addr.version == 4:
            node, best = self._v4_node, self._v4_best
            if node >= 0:
                _, best = self._walk(_V4_PREFIX | int(addr), node, 96, 128, best)
        else:
            _, best = self._walk(int(addr), 0, 0, 128, None)
        if best is None:
            return None
        index, prefix = best
        if index >= self._net_count:
            return None
        cc, asn, flags = _NETWORK.unpack_from(self._map, self._net_off + index * _NETWORK.size)
        country = cc.decode("ascii") if cc.isalpha() and cc.isupper() else None
        net: ipaddress.IPv4Network | ipaddress.IPv6Network
        if addr.version == 4 and prefix >= 96:
            net = ipaddress.IPv4Network((int(addr), prefix - 96), strict=False)
        elif addr.version == 4:  # a network wider than the IPv4-mapped block: say so, in IPv6 terms
            net = ipaddress.IPv6Network((_V4_PREFIX | int(addr), prefix), strict=False)
        else:
            net = ipaddress.IPv6Network((int(addr), prefix), strict=False)
        return net, country, asn, flags

    def as_name(self, asn: int) -> str | None:
        """Name of AS ``asn`` (binary search of the sorted AS section), or None."""
        lo, hi = 0, self._as_count
        while lo < hi:
            mid = (lo + hi) // 2
            number, name = _AS.unpack_from(self._map, self._as_off + mid * _AS.size)
            if number == asn:
                return self._string(name)
            if number < asn:
                lo = mid + 1
            else:
                hi = mid
        return None

    # ---- GeoIpBackend -------------------------------------------------------------------------

    @property
    def label(self) -> str:
        return f"{self.vendor} location database ({self.date or 'undated'})"

    @property
    def date(self) -> str | None:
        return self.created_at.date().isoformat() if self.created_at else None

    @property
    def provenance(self) -> str | None:
        """Creation time, licence and source, as the database states them."""
        parts = []
        if self.created_at:
            parts.append(f"built {self.created_at.isoformat(timespec='seconds')}")
        if self.licence:
            parts.append(f"licence {self.licence}")
        if self.description:
            parts.append(self.description)
        return "; ".join(parts) or None

    def close(self) -> None:
        self._map.close()

    def lookup(self, ip: str) -> GeoAnswer:
        try:
            found = self.network_of(ip)
            if found is None:
                return GeoAnswer()
            _, _, asn, bits = found
            flags = tuple(name for bit, name in FLAG_NAMES if bits & bit)
            if asn == 0:  # a network with a country but no AS
                return GeoAnswer(flags=flags)
            return GeoAnswer(asn=asn, asn_org=self.as_name(asn), flags=flags)
        except (ValueError, struct.error) as e:  # closed meanwhile (bounds are checked): no answer
            log.warning("%s: lookup of %s failed: %s", self.path, ip, e)
            return GeoAnswer()


def is_off(value: str) -> bool:
    """Does an option or ``$AUDIT_LOCATION_DB`` value turn the location database off (``off``,
    ``none``, ``no``, ``0``, ``false``, or empty)?"""
    return value.strip().lower() in _OFF


def location_db_path() -> Path | None:
    """The location database to use: ``$AUDIT_LOCATION_DB`` if set (None when it says ``off``), else
    the newest by build time of the :data:`SYSTEM_PATHS` that exist (a copy ``location update``
    keeps fresh, or the packaged one if that copy is older), else None."""
    env = os.environ.get(ENV_VAR)
    if env is not None:
        return None if is_off(env) else Path(env)
    found = [(_built(Path(p)), -i, Path(p)) for i, p in enumerate(SYSTEM_PATHS) if Path(p).is_file()]
    return max(found)[2] if found else None


def _built(path: Path) -> int:
    """Creation time from a location database's header; -1 if unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(_MAGIC.size + 8)
    except OSError:
        return -1
    if len(head) < _MAGIC.size + 8 or head[:7] != MAGIC:
        return -1
    return int.from_bytes(head[_MAGIC.size :], "big")


def location_db_for_case(recorded: str | None) -> str | bool:
    """What :class:`~audit.enrich.geoip.Enricher` should use for a case whose recorder used the
    location database ``recorded``: that file if it still opens and ``$AUDIT_LOCATION_DB`` is unset
    (the user's current choice wins), else whatever :func:`open_default_location_db` finds (True).
    A recorded file that no longer opens is reported as a warning, not an error."""
    if recorded and os.environ.get(ENV_VAR) is None:
        try:
            LocationDbGeoIp(recorded).close()
        except ConfigError as e:
            log.warning("%s; using the system copy, if any, instead", e)
        else:
            return recorded
    return True


def open_default_location_db() -> LocationDbGeoIp | None:
    """The database of :func:`location_db_path`, or None. A file named by ``$AUDIT_LOCATION_DB`` that
    cannot be read raises :class:`ConfigError`; a damaged system copy is skipped with a warning."""
    path = location_db_path()
    if path is None:
        return None
    try:
        return LocationDbGeoIp(path)
    except ConfigError as e:
        if os.environ.get(ENV_VAR) is not None:
            raise
        log.warning("%s (AS numbers from it are not available)", e)
        return None


__all__ = [
    "ENV_VAR",
    "FLAG_ANONYMOUS_PROXY",
    "FLAG_ANYCAST",
    "FLAG_DROP",
    "FLAG_NAMES",
    "FLAG_SATELLITE_PROVIDER",
    "LocationDbGeoIp",
    "SYSTEM_PATHS",
    "is_off",
    "location_db_for_case",
    "location_db_path",
    "open_default_location_db",
]
