"""The interface every geo-IP database implements (:class:`GeoIpBackend`) and its answer.

At the bottom of ``audit.enrich``: the backends (:mod:`audit.enrich.embedded`, :mod:`audit.enrich.mmdb`,
:mod:`audit.enrich.asntable`, :mod:`audit.enrich.locationdb`) import it, and :mod:`audit.enrich.geoip`'s
:class:`~audit.enrich.geoip.Enricher` imports them, so no module needs another lazily.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass

__all__ = ["ISO_COUNTRY", "SOURCE_IDS", "GeoAnswer", "GeoIpBackend"]

#: ``GeoIpBackend.source_id`` values (``Destination.asn_source``): the embedded ``geoip2fast``
#: database, the IPFire location database (libloc), a user-supplied ``.mmdb`` file, an ASN table
#: imported with ``audit geoip import``, and any other backend.
SOURCE_IDS = ("embedded", "libloc", "mmdb", "asn-table", "other")

#: An ISO 3166-1 alpha-2 code as databases write it.
ISO_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class GeoAnswer:
    """What one backend knows about one public IP; every field may be missing."""

    country: str | None = None
    city: str | None = None
    asn: int | None = None
    asn_org: str | None = None
    flags: tuple[str, ...] = ()
    """Network flags (``anycast`` …), see :attr:`audit.models.IpInfo.network_flags`."""


class GeoIpBackend(abc.ABC):
    """One geo-IP database."""

    #: Does it answer country (and maybe city)?
    provides_location: bool = False
    #: Does it answer the network (ASN number and/or organisation)?
    provides_asn: bool = False
    #: Does it answer the city?
    provides_city: bool = False
    #: Which kind of database it is, as ``asn_source`` names it (:data:`SOURCE_IDS`).
    source_id: str = "other"

    @property
    @abc.abstractmethod
    def label(self) -> str:
        """Human-readable name of the database and its version, used as evidence."""

    @property
    @abc.abstractmethod
    def date(self) -> str | None:
        """Build date of the database (ISO ``YYYY-MM-DD``) if known."""

    @abc.abstractmethod
    def lookup(self, ip: str) -> GeoAnswer:
        """Look up a public IP (already normalized); never raises for a valid IP."""

    #: File the database was read from.
    path: str = ""

    @property
    def provenance(self) -> str | None:
        """Where the data came from, beyond the label (e.g. the files an imported table was made of)."""
        return None

    @property
    def facts(self) -> tuple[str, ...]:
        """Which of ``country``, ``city``, ``asn``, ``asn_org`` this database can answer."""
        out = []
        if self.provides_location:
            out.append("country")
        if self.provides_city:
            out.append("city")
        if self.provides_asn:
            out += ["asn", "asn_org"]
        return tuple(out)
