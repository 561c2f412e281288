"""The embedded default geo-IP database: the ``geoip2fast`` package's bundled data file (country and
AS organisation, IPv4 and IPv6, offline; no AS numbers)."""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

from audit.enrich.backend import ISO_COUNTRY, GeoAnswer, GeoIpBackend
from audit.errors import ConfigError

__all__ = ["EMBEDDED_FILE", "EmbeddedGeoIp"]

log = logging.getLogger(__name__)

EMBEDDED_FILE = "geoip2fast-asn-ipv6.dat.gz"


class EmbeddedGeoIp(GeoIpBackend):
    """Country + ASN organisation from ``geoip2fast``'s bundled database.

    Loading takes ~0.5 s and ~110 MB, so it happens on the first lookup (thread-safe)."""

    provides_location = True
    provides_asn = True
    source_id = "embedded"

    def __init__(self, data_file: str | os.PathLike[str] | None = None) -> None:
        self._data_file = str(data_file) if data_file else None
        self._db: Any = None
        self._lock = threading.Lock()

    _default: EmbeddedGeoIp | None = None
    _default_lock = threading.Lock()

    @classmethod
    def default(cls) -> EmbeddedGeoIp:
        """The process-wide instance for the bundled file: loaded once, shared by every Enricher."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    def _load(self) -> Any:
        if self._db is not None:
            return self._db
        with self._lock:
            if self._db is None:
                try:
                    from geoip2fast import GeoIP2Fast
                except ImportError as e:  # pragma: no cover - a declared dependency
                    raise ConfigError(f"the geoip2fast package is not installed ({e})") from e
                # An absolute path: geoip2fast would otherwise also look in the current directory.
                path = self.path
                if not Path(path).is_file():
                    raise ConfigError(f"{path}: embedded geo-IP database not found; reinstall geoip2fast")
                try:
                    self._db = GeoIP2Fast(geoip2fast_data_file=path, verbose=False)
                except Exception as e:  # geoip2fast raises its own and builtin errors on bad files
                    raise ConfigError(f"{path}: cannot load geo-IP database ({e})") from e
        return self._db

    @property
    def facts(self) -> tuple[str, ...]:
        return ("country", "asn_org")

    @property
    def path(self) -> str:  # type: ignore[override]
        if self._data_file:
            return self._data_file
        import geoip2fast

        return str(Path(geoip2fast.__file__).parent / EMBEDDED_FILE)

    @property
    def source_info(self) -> str:
        return str(getattr(self._load(), "source_info", "") or "unknown")

    @property
    def label(self) -> str:
        return f"geoip2fast ({self.source_info})"

    @property
    def date(self) -> str | None:
        # source_info looks like MAXMIND:GeoLite2-CountryASN-IPv4IPv6-en-20240618
        m = re.search(r"(\d{4})(\d{2})(\d{2})\b", self.source_info)
        return f"{m[1]}-{m[2]}-{m[3]}" if m else None

    def lookup(self, ip: str) -> GeoAnswer:
        try:
            r = self._load().lookup(ip)
        except ConfigError:
            raise
        except Exception as e:  # pragma: no cover - defensive: never break enrichment
            log.warning("geoip2fast lookup of %s failed: %s", ip, e)
            return GeoAnswer()
        cc = str(getattr(r, "country_code", "") or "")
        org = str(getattr(r, "asn_name", "") or "").strip()
        return GeoAnswer(
            country=cc if ISO_COUNTRY.match(cc) else None,
            asn_org=org or None,
        )


# --------------------------------------------------------------------------------------------
# MaxMind DB files
# --------------------------------------------------------------------------------------------
