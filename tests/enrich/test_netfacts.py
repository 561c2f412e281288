"""Issue 12 points 4 and 8: NAT64 addresses answered by the IPv4 they embed, and one network answer
per IP that names its sources and never loses a fact a later source has (an AS name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.enrich.asntable import AsnTableGeoIp, import_table
from audit.enrich.backend import GeoAnswer
from audit.enrich.geoip import EmbeddedGeoIp, Enricher, network_answer
from audit.enrich.locationdb import LocationDbGeoIp
from audit.names import ip_scope, lookup_ip, nat64_ipv4
from audit.store import Store
from tests.helpers import locdb
from tests.helpers.locdb import Net

DEBIAN_DB = Path("/usr/share/libloc-location/location.db")


@pytest.mark.parametrize(
    ("ip", "v4"),
    [
        ("64:ff9b::808:808", "8.8.8.8"),
        ("64:ff9b::8.8.4.4", "8.8.4.4"),
        ("[64:FF9B::0808:0808]", "8.8.8.8"),
        # RFC 6052 section 2.4's /48 example layout (octets 6-7, skip the "u" octet 8, octets 9-10).
        ("64:ff9b:1:c000:2:2100::", "192.0.2.33"),
        ("64:ff9b:1:808:8:800::", "8.8.8.8"),
        ("64:ff9b:1:808:108:800::", None),  # "u" octet not zero: not an RFC 6052 address
        ("64:ff9c::808:808", None),
        ("2001:db8::808:808", None),
        ("::ffff:8.8.8.8", None),  # IPv4-mapped: already the IPv4 itself
        ("8.8.8.8", None),
        ("not an ip", None),
    ],
)
def test_nat64_ipv4(ip: str, v4: str | None) -> None:
    assert nat64_ipv4(ip) == v4
    if v4 is not None:
        assert lookup_ip(ip) == v4


@pytest.mark.parametrize(
    ("ip", "scope"),
    [("64:ff9b::808:808", "public"), ("64:ff9b::a00:1", "private"), ("64:ff9b::7f00:1", "loopback"),
     ("64:ff9b:1:c000:2:2100::", "reserved"), ("64:ff9b:1:6440:1:100::", "cgnat")],
)  # fmt: skip
def test_nat64_scope_is_the_embedded_ipv4s(ip: str, scope: str) -> None:
    assert ip_scope(ip) == scope


@pytest.fixture(scope="module")
def embedded() -> EmbeddedGeoIp:
    return EmbeddedGeoIp()


@pytest.fixture
def dbfile(tmp_path: Path) -> Path:
    nets = [
        Net("8.8.8.0/24", "US", 64502),
        Net("5.5.5.0/24", "DE", 64599),
        Net("2001:4860::/32", "US", 64502),
    ]
    return locdb.write(
        tmp_path / "location.db", nets, {64502: "Example Resolver LLC"}, created_at=1_667_023_194
    )


def test_nat64_address_is_located_and_resolved_by_its_ipv4(dbfile: Path, embedded: EmbeddedGeoIp) -> None:
    e = Enricher(embedded=embedded, asn_table=False, location_db=dbfile)
    direct = e.ip_info("8.8.8.8")
    for ip in ("64:ff9b::808:808", "64:ff9b:1:808:8:800::"):
        info = e.ip_info(ip)
        assert info.ip == ip and info.nat64_ipv4 == "8.8.8.8" and info.scope == "public"
        assert (info.country, info.asn, info.asn_org) == (direct.country, 64502, "Example Resolver LLC")
        assert info.country == "US"
    assert embedded.lookup("64:ff9b::808:808") == GeoAnswer()  # what a lookup of the IPv6 itself gives
    assert e.ip_info("2001:4860:4860::8888").nat64_ipv4 is None
    assert e.ip_info("64:ff9b::a00:1").country is None  # a private IPv4 inside: never located
    e.close()


def test_an_as_without_a_name_keeps_the_next_sources_name(dbfile: Path, embedded: EmbeddedGeoIp) -> None:
    e = Enricher(embedded=embedded, asn_table=False, location_db=dbfile)
    named = e.ip_info("8.8.8.8")
    assert (named.asn, named.asn_org, named.asn_source, named.asn_org_source) == (
        64502,
        "Example Resolver LLC",
        "libloc",
        "libloc",
    )
    unnamed = e.ip_info("5.5.5.5")  # AS64599 has no name in the location database
    assert unnamed.asn == 64599 and unnamed.asn_source == "libloc"
    assert unnamed.asn_org == embedded.lookup("5.5.5.5").asn_org and unnamed.asn_org
    assert unnamed.asn_org_source == "embedded"
    assert unnamed.database == f"{embedded.label} + Test Vendor location database (2022-10-29)"
    assert unnamed.database in e.labels
    only_embedded = e.ip_info("9.9.9.9")  # not in the location database: the embedded name, no number
    assert (only_embedded.asn, only_embedded.asn_source, only_embedded.asn_org_source) == (
        None,
        None,
        "embedded",
    )
    e.close()


def test_a_name_for_another_as_number_is_not_taken(
    dbfile: Path, tmp_path: Path, embedded: EmbeddedGeoIp
) -> None:
    src = tmp_path / "asn.csv"
    src.write_text("5.5.5.0,5.5.5.255,64700,Another Network\n", encoding="utf-8")
    import_table([src], tmp_path / "t.sqlite", label="mine", date="2026-11-01")
    table = AsnTableGeoIp(tmp_path / "t.sqlite")
    loc = LocationDbGeoIp(dbfile)
    # The location database first, then a table that says another AS, then the embedded name.
    answer, number, name = network_answer(
        [
            (loc, loc.lookup("5.5.5.5")),
            (table, table.lookup("5.5.5.5")),
            (embedded, embedded.lookup("5.5.5.5")),
        ]
    )
    assert (answer.asn, number, name) == (64599, loc, embedded)
    assert answer.asn_org == embedded.lookup("5.5.5.5").asn_org
    answer, number, name = network_answer([(loc, loc.lookup("5.5.5.5")), (table, table.lookup("5.5.5.5"))])
    assert (answer.asn, answer.asn_org, name) == (64599, None, None)
    assert network_answer([(loc, GeoAnswer()), (table, GeoAnswer())]) == (GeoAnswer(), None, None)
    table.close()
    loc.close()


def test_sources_survive_the_case_cache(dbfile: Path, embedded: EmbeddedGeoIp, tmp_path: Path) -> None:
    e = Enricher(embedded=embedded, asn_table=False, location_db=dbfile)
    with Store(tmp_path / "case.sqlite") as s:
        s.cache_ip_info([e.ip_info("5.5.5.5"), e.ip_info("64:ff9b::808:808")])
    with Store(tmp_path / "case.sqlite") as s:
        cached = s.cached_ip_info()
    assert cached["5.5.5.5"] == e.ip_info("5.5.5.5")
    assert (cached["5.5.5.5"].asn_source, cached["5.5.5.5"].asn_org_source) == ("libloc", "embedded")
    assert cached["64:ff9b::808:808"].nat64_ipv4 == "8.8.8.8"
    e.close()


@pytest.mark.skipif(not DEBIAN_DB.is_file(), reason="Debian's libloc-database is not installed")
def test_debian_libloc_unnamed_as_keeps_the_embedded_name(embedded: EmbeddedGeoIp) -> None:
    """AS22548 (NIC.br) has no name in the packaged IPFire database; the embedded data names it."""
    loc = LocationDbGeoIp(DEBIAN_DB)
    if loc.lookup("200.160.2.3").asn != 22548 or loc.as_name(22548):
        pytest.skip("this copy of the location database has other data for 200.160.2.3")
    e = Enricher(embedded=embedded, asn_table=False, location_db=loc)
    info = e.ip_info("200.160.2.3")
    assert info.asn == 22548 and info.asn_org == embedded.lookup("200.160.2.3").asn_org and info.asn_org
    assert (info.asn_source, info.asn_org_source) == ("libloc", "embedded")
    e.close()
    loc.close()
