"""Geo-IP/ASN enrichment: scopes, the embedded geoip2fast database, .mmdb files we write ourselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.enrich.geoip import EmbeddedGeoIp, Enricher, MmdbGeoIp, ip_scope, normalize_ip
from audit.errors import ConfigError
from tests.helpers.mmdb import asn, city, write_mmdb


@pytest.fixture(scope="module")
def embedded() -> EmbeddedGeoIp:
    # Loading takes ~0.5 s: share one instance across the module.
    return EmbeddedGeoIp()


@pytest.fixture
def city_db(tmp_path: Path) -> Path:
    return write_mmdb(
        tmp_path / "GeoLite2-City.mmdb",
        [
            ("8.8.8.0/24", city("US", "Mountain View")),
            ("1.1.1.0/24", city("AU", "Sydney")),
            ("119.28.0.0/15", city("CN", "Shenzhen")),
            ("119.29.29.0/24", city("CN", "Guangzhou")),
            ("2001:4860::/32", city("US")),
        ],
    )


@pytest.fixture
def asn_db(tmp_path: Path) -> Path:
    return write_mmdb(
        tmp_path / "GeoLite2-ASN.mmdb",
        [
            ("8.8.8.0/24", asn(15169, "GOOGLE")),
            ("1.1.1.0/24", asn(13335, "CLOUDFLARENET")),
            ("119.28.0.0/15", asn(45090, "Shenzhen Tencent Computer Systems Company Limited")),
        ],
        database_type="GeoLite2-ASN",
        build_epoch=1719878400,  # 2024-07-02
    )


@pytest.mark.parametrize(
    ("ip", "scope"),
    [
        ("8.8.8.8", "public"),
        ("2001:4860:4860::8888", "public"),
        ("::ffff:8.8.8.8", "public"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.10.1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.251", "multicast"),
        ("100.64.3.2", "cgnat"),
        ("192.0.2.7", "reserved"),
        ("2001:db8::1", "reserved"),
        ("0.0.0.0", "reserved"),
        ("240.0.0.1", "reserved"),
        ("not-an-ip", "invalid"),
        ("", "invalid"),
    ],
)
def test_ip_scope(ip: str, scope: str) -> None:
    assert ip_scope(ip) == scope


def test_normalize_ip_unwraps_mapped_and_brackets() -> None:
    assert normalize_ip("::ffff:1.2.3.4") == "1.2.3.4"
    assert normalize_ip("[2001:DB8::1]") == "2001:db8::1"
    assert normalize_ip("example.com") is None


def test_embedded_gives_country_and_asn_org_but_no_asn_number(embedded: EmbeddedGeoIp) -> None:
    e = Enricher(embedded=embedded)
    info = e.ip_info("8.8.8.8")
    assert info.scope == "public"
    assert info.country == "US"
    assert info.asn_org and "GOOGLE" in info.asn_org.upper()
    assert info.asn is None  # geoip2fast's file stores ASN names only
    assert info.database and info.database.startswith("geoip2fast (")
    assert info.database_date and len(info.database_date) == 10


def test_embedded_ipv6_and_tencent(embedded: EmbeddedGeoIp) -> None:
    e = Enricher(embedded=embedded)
    v6 = e.ip_info("2001:4860:4860::8888")
    assert v6.country == "US"
    tencent = e.ip_info("119.29.29.29")
    assert tencent.country is not None and len(tencent.country) == 2
    assert tencent.asn_org and "tencent" in tencent.asn_org.lower()
    assert e.ip_info("1.1.1.1").asn_org == "CLOUDFLARENET"


@pytest.mark.parametrize("ip", ["10.1.2.3", "127.0.0.1", "100.64.0.9", "224.0.0.1", "169.254.0.1", "bogus"])
def test_non_public_not_geolocated(embedded: EmbeddedGeoIp, ip: str) -> None:
    info = Enricher(embedded=embedded).ip_info(ip)
    assert info.scope != "public"
    assert (info.country, info.city, info.asn, info.asn_org, info.database) == (None, None, None, None, None)


def test_mmdb_city_and_asn(city_db: Path, asn_db: Path) -> None:
    e = Enricher([city_db, asn_db], embedded=False)
    info = e.ip_info("8.8.8.8")
    assert (info.country, info.city, info.asn, info.asn_org) == ("US", "Mountain View", 15169, "GOOGLE")
    assert info.database == "GeoLite2-City (2024-06-18) + GeoLite2-ASN (2024-07-02)"
    assert info.database_date == "2024-06-18"
    # A more specific network nested inside a larger one wins.
    assert e.ip_info("119.29.29.29").city == "Guangzhou"
    assert e.ip_info("119.28.7.7").city == "Shenzhen"
    v6 = e.ip_info("2001:4860:4860::8888")
    assert v6.country == "US" and v6.asn is None
    missing = e.ip_info("9.9.9.9")
    assert missing.scope == "public" and missing.country is None and missing.asn is None


def test_mmdb_order_does_not_matter_and_city_beats_country(
    tmp_path: Path, city_db: Path, asn_db: Path
) -> None:
    country_db = write_mmdb(
        tmp_path / "Country.mmdb",
        [("8.8.8.0/24", {"country": {"iso_code": "ZZ"}})],
        database_type="GeoLite2-Country",
    )
    e = Enricher([asn_db, country_db, city_db], embedded=False)
    assert e.location is not None and e.location.label.startswith("GeoLite2-City")
    assert e.ip_info("8.8.8.8").country == "US"
    only_country = Enricher([country_db], embedded=False)
    assert only_country.ip_info("8.8.8.8").country == "ZZ"  # reported as the database gives it
    assert only_country.ip_info("8.8.8.8").city is None
    assert only_country.label == "GeoLite2-Country (2024-06-18)"


def test_mmdb_country_only_with_embedded_for_network(embedded: EmbeddedGeoIp, city_db: Path) -> None:
    e = Enricher([city_db], embedded=embedded)
    info = e.ip_info("1.1.1.1")
    assert info.country == "AU" and info.city == "Sydney"
    assert info.asn_org == "CLOUDFLARENET"  # network fact from the embedded database
    assert info.database is not None and "GeoLite2-City" in info.database and "geoip2fast" in info.database


def test_dbip_type_names(tmp_path: Path) -> None:
    p = write_mmdb(tmp_path / "dbip.mmdb", [("8.8.8.0/24", asn(15169, "Google LLC"))],
                   database_type="DBIP-ASN-Lite (compat=GeoLite2-ASN)")  # fmt: skip
    db = MmdbGeoIp(p)
    assert db.kind == "asn" and db.provides_asn and not db.provides_location
    assert db.lookup("8.8.8.8").asn == 15169


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a MaxMind DB"),
        (b"\x00" * 100, "not a MaxMind DB"),
        (b"GIF89a not a database at all" * 10, "not a MaxMind DB"),
    ],
)
def test_bad_mmdb_is_a_config_error(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.mmdb"
    p.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as ei:
        Enricher([p])
    assert str(p) in str(ei.value)


def test_unsupported_mmdb_type(tmp_path: Path) -> None:
    p = write_mmdb(
        tmp_path / "anon.mmdb", [("8.8.8.0/24", {"is_anonymous": True})], database_type="GeoIP2-Anonymous-IP"
    )
    with pytest.raises(ConfigError, match="unsupported database type"):
        MmdbGeoIp(p)


def test_missing_mmdb(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Enricher([tmp_path / "nope.mmdb"])


def test_truncated_mmdb_data_does_not_raise_on_lookup(tmp_path: Path, city_db: Path) -> None:
    # Corrupt the data section (keep tree and metadata): lookups degrade to "no answer".
    raw = bytearray(city_db.read_bytes())
    marker = raw.rfind(b"\xab\xcd\xefMaxMind.com")
    tree_end = raw.find(b"\x00" * 16)
    for i in range(tree_end + 16, marker):
        raw[i] = 0xFF
    p = tmp_path / "corrupt.mmdb"
    p.write_bytes(bytes(raw))
    e = Enricher([p], embedded=False)
    info = e.ip_info("8.8.8.8")
    assert info.scope == "public" and info.country is None


def test_cache_returns_same_object(city_db: Path) -> None:
    e = Enricher([city_db], embedded=False)
    assert e.ip_info("8.8.8.8") is e.ip_info("8.8.8.8")
