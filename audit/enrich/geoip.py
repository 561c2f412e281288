"""Server location and network owner of an IP address (facts 1 and 2 of a destination).

Three backends behind :class:`GeoIpBackend`:

- :class:`EmbeddedGeoIp`: the ``geoip2fast`` package's bundled ``geoip2fast-asn-ipv6.dat.gz``
  (country + ASN organisation name, IPv4 and IPv6, offline). That file stores ASN *names* only, not
  numbers, so this backend leaves ``asn`` as ``None``.
- :class:`audit.enrich.asntable.AsnTableGeoIp`: AS numbers and organisations from range files the user
  imported once with ``audit geoip import`` (ip-location-db, DB-IP lite, iptoasn).
- :class:`audit.enrich.locationdb.LocationDbGeoIp`: AS numbers and names from the IPFire location
  database that Debian's ``libloc-database`` package installs (found without any option).
- :class:`MmdbGeoIp`: a user-supplied MaxMind DB file (GeoLite2/GeoIP2 City, Country or ASN; DB-IP
  lite City/Country/ASN), type detected from ``metadata.database_type``, date from
  ``metadata.build_epoch``.

:class:`Enricher` picks one backend for the location (City > Country > embedded) and an ordered list for
the network (ASN ``.mmdb`` > imported ASN table > IPFire location database > embedded; the first with an answer wins) and answers
:meth:`Enricher.ip_info`. Private, loopback, link-local, CGNAT, multicast and reserved addresses are
labelled in ``IpInfo.scope`` and never geo-located. Every answer names the database(s) that gave it
and the date of the location database.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from audit.enrich.asntable import AsnTableGeoIp, open_default_table
from audit.enrich.backend import GeoAnswer, GeoIpBackend
from audit.enrich.embedded import EmbeddedGeoIp
from audit.enrich.locationdb import LocationDbGeoIp, open_default_location_db
from audit.enrich.mmdb import MmdbGeoIp
from audit.errors import ConfigError
from audit.models import IpInfo
from audit.names import SCOPES, ip_scope, lookup_ip, normalize_ip, parse_ip  # noqa: F401  (re-exported for traffic/)

__all__ = ["EmbeddedGeoIp", "Enricher", "GeoAnswer", "GeoIpBackend", "MmdbGeoIp", "network_answer"]

# --------------------------------------------------------------------------------------------


class Enricher:
    """Answers :meth:`ip_info` from the best configured databases, with an in-memory LRU cache.

    ``mmdb_paths``: MaxMind DB files; a City database is preferred over a Country one for the
    location. The network (AS number and organisation) comes from the first of: an ASN ``.mmdb``, the
    ASN table imported with ``audit geoip import`` (``asn_table``: True looks for it at its default
    place, a path or table uses that one, False none), the IPFire location database (``location_db``:
    True looks for it as :func:`audit.enrich.locationdb.location_db_path` says, a path or backend uses
    that one, False none), the embedded database; a source that has no answer for an IP hands over to
    the next. Facts a given file does not cover come from the embedded
    database (unless ``embedded=False``). Raises :class:`ConfigError` for unreadable or unsupported
    files. :meth:`close` closes the files it opened; backends passed in as objects stay the caller's.
    """

    def __init__(
        self,
        mmdb_paths: Sequence[str | os.PathLike[str]] = (),
        *,
        embedded: bool | EmbeddedGeoIp = True,
        asn_table: bool | str | os.PathLike[str] | GeoIpBackend = True,
        location_db: bool | str | os.PathLike[str] | GeoIpBackend = True,
        cache_size: int = 65536,
    ) -> None:
        self.mmdbs: list[MmdbGeoIp] = []
        self.asn_table: GeoIpBackend | None = None
        self.location_db: GeoIpBackend | None = None
        self._owned: list[GeoIpBackend] = []  # opened here, closed by close(); given ones are the caller's
        try:  # files opened before one that fails are closed again
            for p in mmdb_paths:
                self.mmdbs.append(MmdbGeoIp(p))
                self._owned.append(self.mmdbs[-1])

            self.asn_table = _backend(asn_table, open_default_table, AsnTableGeoIp)
            if self.asn_table is not None and not isinstance(asn_table, GeoIpBackend):
                self._owned.append(self.asn_table)
            self.location_db = _backend(location_db, open_default_location_db, LocationDbGeoIp)
            if self.location_db is not None and not isinstance(location_db, GeoIpBackend):
                self._owned.append(self.location_db)
        except ConfigError:
            self._close_files()
            raise
        emb: EmbeddedGeoIp | None
        if isinstance(embedded, EmbeddedGeoIp):
            emb = embedded
        else:
            emb = EmbeddedGeoIp.default() if embedded else None
        by_kind = {k: [m for m in self.mmdbs if m.kind == k] for k in ("city", "country", "asn")}
        loc: list[GeoIpBackend] = [*by_kind["city"], *by_kind["country"]]
        net: list[GeoIpBackend] = list(by_kind["asn"])
        if self.asn_table is not None:
            net.append(self.asn_table)
        if self.location_db is not None:
            net.append(self.location_db)
        if emb is not None:
            loc.append(emb)
            net.append(emb)
        self.location: GeoIpBackend | None = loc[0] if loc else None
        #: Network sources in order of preference.
        self.networks: tuple[GeoIpBackend, ...] = tuple(net)
        self.network: GeoIpBackend | None = net[0] if net else None
        # "names filled": answers since issue 12 take a missing AS name from the next source and
        # name their sources, so answers cached before that are made again.
        parts = ["names filled", f"location {self.location.label}" if self.location else "no location"]
        parts += [f"network {n.label}" for n in self.networks]
        if self.location_db is not None:
            parts.append(f"flags {self.location_db.label}")
        #: Every database in use, in order of preference: an answer made under the same setup is
        #: the answer :meth:`ip_info` gives, so a case file's cached answers are reused only then.
        self.setup = "; ".join(parts)
        self._cached = functools.lru_cache(maxsize=cache_size)(self._ip_info)

    @property
    def label(self) -> str | None:
        """The preferred databases, ``location + network`` when they differ."""
        return _join_labels(self.location, self.network)

    @property
    def labels(self) -> frozenset[str]:
        """Every ``database`` (and :attr:`IpInfo.evidence`) value this enricher can give: the location
        database with each network source (a source without an answer hands over to the next) and
        the later one that named the AS, and with the location database that gave network flags."""
        nets = self.networks
        out = {_join_labels(self.location, n) for n in nets} | {self.label}
        out |= {_join_labels(self.location, n, m) for i, n in enumerate(nets) for m in nets[i + 1 :]}
        if self.flags_label:
            out |= {f"{x} + {self.flags_label}" if self.flags_label not in x else x for x in out if x}
        return frozenset(x for x in out if x)

    @property
    def flags_label(self) -> str | None:
        """Label of the location database consulted for network flags, or None."""
        return self.location_db.label if self.location_db is not None else None

    @property
    def backends(self) -> tuple[GeoIpBackend, ...]:
        """Every database in use: the location one, then the network ones in order of preference."""
        seen: list[GeoIpBackend] = []
        for b in (self.location, *self.networks):
            if b is not None and all(b is not s for s in seen):
                seen.append(b)
        return tuple(seen)

    def ip_info(self, ip: str) -> IpInfo:
        """Scope, location and network of ``ip``. Non-public scopes carry no geo data and no
        database. ``database`` names the databases that answered: the location one and the network
        one (a network source without an answer hands over to the next in :attr:`networks`, so an
        IP the preferred one does not cover names the fallback). It equals :attr:`label` when the
        preferred sources answered. Raises :class:`ConfigError` only if a database cannot be loaded."""
        return self._cached(ip)

    def _ip_info(self, ip: str) -> IpInfo:
        norm = normalize_ip(ip)
        if norm is None:
            return IpInfo(ip=ip, scope="invalid")
        scope = ip_scope(norm)
        if scope != "public":
            return IpInfo(ip=norm, scope=scope)
        # A NAT64 address is answered for the IPv4 server it embeds; the IpInfo keeps the IPv6.
        target = lookup_ip(norm) or norm
        loc = self.location.lookup(target) if self.location else GeoAnswer()
        # The location database's flags hold whichever source answers the AS.
        flagged = self.location_db.lookup(target) if self.location_db is not None else GeoAnswer()

        def answers() -> Iterator[tuple[GeoIpBackend, GeoAnswer]]:
            for backend in self.networks:
                if backend is self.location:
                    yield backend, loc
                elif backend is self.location_db:
                    yield backend, flagged
                else:
                    yield backend, backend.lookup(target)

        net, source, named = network_answer(answers())
        return IpInfo(
            ip=norm,
            scope=scope,
            country=loc.country,
            city=loc.city,
            asn=net.asn,
            asn_org=net.asn_org,
            asn_source=source.source_id if source is not None and net.asn is not None else None,
            asn_org_source=named.source_id if named is not None and net.asn_org is not None else None,
            database=_join_labels(self.location, source or self.network, named),
            database_date=self.date,
            network_flags=flagged.flags,
            flags_database=self.flags_label,
            setup=self.setup,
        )

    def describe(self) -> list[dict[str, Any]]:
        """The databases in use, in order of preference: role (``location`` or ``network``),
        ``database`` label, ``date``, the ``facts`` it answers, its ``path`` and ``provenance``."""
        rows = []
        for role, backends in (("location", (self.location,)), ("network", self.networks)):
            for b in backends:
                if b is not None:
                    rows.append(
                        {"role": role, "database": b.label, "date": b.date, "facts": list(b.facts), "path": b.path,
                         "provenance": b.provenance}
                    )  # fmt: skip
        return rows

    @property
    def date(self) -> str | None:
        """Build date of the location database (else of the network database)."""
        primary = self.location or self.network
        return primary.date if primary is not None else None

    def close(self) -> None:
        self._close_files()

    def _close_files(self) -> None:
        """Close the files this enricher opened (not backends the caller passed in)."""
        while self._owned:
            closer = getattr(self._owned.pop(), "close", None)
            if closer is not None:
                closer()


def network_answer(
    answers: Iterable[tuple[GeoIpBackend, GeoAnswer]],
) -> tuple[GeoAnswer, GeoIpBackend | None, GeoIpBackend | None]:
    """One network answer from every source's, in order of preference: (answer, the source that
    answered the AS, the source that named it). The first source with an AS number or a name answers;
    a better source never loses a fact (issue 12): when it has the number but no name, the name comes
    from the next source that has one and does not contradict the number (no AS number, as in the
    embedded database, or the same one). ``answers`` is consumed only as far as needed, so it can
    be a generator that looks each source up on demand."""
    rest = iter(answers)
    for backend, ans in rest:
        if ans.asn is None and ans.asn_org is None:
            continue
        if ans.asn_org is not None:
            return ans, backend, backend
        for other, later in rest:
            if later.asn_org is not None and later.asn in (None, ans.asn):
                return replace(ans, asn_org=later.asn_org), backend, other
        return ans, backend, None
    return GeoAnswer(), None, None


def _join_labels(*backends: GeoIpBackend | None) -> str | None:
    """Labels of the distinct backends given, joined by `` + ``, in order; None if none."""
    labels: list[str] = []
    for b in backends:
        if b is not None and b.label not in labels:
            labels.append(b.label)
    return " + ".join(labels) or None


def _backend(
    spec: bool | str | os.PathLike[str] | GeoIpBackend,
    default: Callable[[], GeoIpBackend | None],
    open_file: Callable[[str | os.PathLike[str]], GeoIpBackend],
) -> GeoIpBackend | None:
    """A network source from an :class:`Enricher` argument: a backend as it is, True the default one
    (None if there is none), False or "" none, a path that file."""
    if isinstance(spec, GeoIpBackend):
        return spec
    if spec is True:
        return default()
    if spec is False or spec == "":
        return None
    return open_file(spec)
