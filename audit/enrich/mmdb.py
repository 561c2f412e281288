"""A user-supplied MaxMind DB file (GeoLite2/GeoIP2 City, Country or ASN; DB-IP lite City/Country/ASN):
type from ``metadata.database_type``, date from ``metadata.build_epoch``."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

from audit.enrich.backend import ISO_COUNTRY, GeoAnswer, GeoIpBackend
from audit.errors import ConfigError

__all__ = ["MmdbGeoIp"]

log = logging.getLogger(__name__)


def _mmdb_kind(database_type: str) -> str:
    """city, country or asn from a metadata.database_type such as ``GeoLite2-City``,
    ``DBIP-Country-Lite`` or ``DBIP-ASN-Lite (compat=GeoLite2-ASN)``."""
    t = database_type.lower()
    if "asn" in t or t.endswith("-isp") or "-isp " in t:
        return "asn"
    if "city" in t:
        return "city"
    if "country" in t:
        return "country"
    return ""


class MmdbGeoIp(GeoIpBackend):
    """A MaxMind DB file (``.mmdb``) given by the user; opened (and validated) on construction."""

    source_id = "mmdb"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import maxminddb

        self.path = str(path)
        if not Path(self.path).is_file():
            raise ConfigError(f"{self.path}: geo-IP database file not found")
        try:
            self._reader = maxminddb.open_database(self.path)
            meta = self._reader.metadata()
        except (maxminddb.InvalidDatabaseError, ValueError, OSError) as e:
            raise ConfigError(f"{self.path}: not a MaxMind DB (.mmdb) file ({e})") from e
        self.database_type = str(meta.database_type)
        self.kind = _mmdb_kind(self.database_type)
        if not self.kind:
            self._reader.close()
            raise ConfigError(
                f"{self.path}: unsupported database type {self.database_type!r}; "
                "use a City, Country or ASN database (GeoLite2, GeoIP2 or DB-IP lite)"
            )
        try:
            self._date: str | None = (
                dt.datetime.fromtimestamp(int(meta.build_epoch), dt.UTC).date().isoformat()
            )
        except (OverflowError, OSError, ValueError):
            self._date = None
        self.provides_location = self.kind in ("city", "country")
        self.provides_city = self.kind == "city"
        self.provides_asn = self.kind == "asn"

    @property
    def label(self) -> str:
        return f"{self.database_type} ({self._date or 'undated'})"

    @property
    def date(self) -> str | None:
        return self._date

    def close(self) -> None:
        self._reader.close()

    def lookup(self, ip: str) -> GeoAnswer:
        import maxminddb

        try:
            rec = self._reader.get(ip)
        except (maxminddb.InvalidDatabaseError, ValueError, TypeError) as e:
            # A corrupt data section or an IPv6 address in an IPv4-only file: no answer, keep going.
            log.warning("%s: lookup of %s failed: %s", self.path, ip, e)
            return GeoAnswer()
        if not isinstance(rec, dict):
            return GeoAnswer()
        if self.kind == "asn":
            num = rec.get("autonomous_system_number")
            org = rec.get("autonomous_system_organization")
            return GeoAnswer(
                asn=num if isinstance(num, int) and not isinstance(num, bool) else None,
                asn_org=org.strip() or None if isinstance(org, str) else None,
            )
        country = _get(rec, "country", "iso_code")
        city = _get(rec, "city", "names", "en") if self.kind == "city" else None
        return GeoAnswer(
            country=country.upper()
            if isinstance(country, str) and ISO_COUNTRY.match(country.upper())
            else None,
            city=city if isinstance(city, str) and city else None,
        )


def _get(rec: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(rec, dict):
            return None
        rec = rec.get(k)
    return rec


# --------------------------------------------------------------------------------------------
# Enricher
