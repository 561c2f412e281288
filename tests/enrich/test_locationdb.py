"""The IPFire location database reader (libloc format 1): lookups, header facts, damaged and hostile
files, discovery, and its place in the Enricher's network chain. Files are written by
``tests/helpers/locdb.py``; the real Debian ``libloc-database`` copy is checked when installed."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import pytest

from audit.enrich import locationdb
from audit.enrich.geoip import EmbeddedGeoIp, Enricher
from audit.enrich.locationdb import (
    FLAG_ANYCAST,
    LocationDbGeoIp,
    location_db_path,
    open_default_location_db,
)
from audit.errors import ConfigError
from tests.helpers import locdb
from tests.helpers.locdb import Net

NETS = [
    Net("1.1.1.0/24", "AU", 64500, FLAG_ANYCAST),
    Net("8.0.0.0/8", "US", 64501),
    Net("8.8.8.0/24", "US", 64502),  # nested: wins inside 8.0.0.0/8
    Net("119.28.0.0/15", "CN", 64503),
    Net("2001:4860::/32", "US", 64502),
    Net("2a03:2880::/29", "IE", 64504),
    Net("9.9.9.0/24", "CH", 0),  # a country but no AS
    Net("5.5.5.0/24", "DE", 64599),  # an AS without a name
]
ASES: dict[int, str | bytes] = {
    64500: "EXAMPLE-ANYCAST",
    64501: "Example Wide Net",
    64502: "Example Resolver LLC",
    64503: "Example Cloud (Shenzhen) Co.",
    64504: b"Example\x1b[31m Social\nNetwork\xff",
}
DEBIAN_DB = Path("/usr/share/libloc-location/location.db")


@pytest.fixture
def dbfile(tmp_path: Path) -> Path:
    return locdb.write(tmp_path / "location.db", NETS, ASES, created_at=1_667_023_194)


@pytest.fixture
def db(dbfile: Path) -> LocationDbGeoIp:
    d = LocationDbGeoIp(dbfile)
    yield d  # type: ignore[misc]
    d.close()


@pytest.mark.parametrize(
    ("ip", "asn", "org"),
    [
        ("1.1.1.1", 64500, "EXAMPLE-ANYCAST"),
        ("8.1.2.3", 64501, "Example Wide Net"),
        ("8.8.8.8", 64502, "Example Resolver LLC"),
        ("8.8.9.1", 64501, "Example Wide Net"),
        ("119.29.255.254", 64503, "Example Cloud (Shenzhen) Co."),
        ("2001:4860:4860::8888", 64502, "Example Resolver LLC"),
        ("::ffff:8.8.8.8", 64502, "Example Resolver LLC"),
        ("5.5.5.5", 64599, None),
    ],
)
def test_lookup_longest_prefix(db: LocationDbGeoIp, ip: str, asn: int, org: str | None) -> None:
    ans = db.lookup(ip)
    assert (ans.asn, ans.asn_org) == (asn, org)
    assert ans.country is None  # the location comes from the location database, not this one


@pytest.mark.parametrize("ip", ["9.9.9.9", "4.4.4.4", "119.30.0.1", "2c0f::1", "not-an-ip", "10.0.0.1"])
def test_no_answer(db: LocationDbGeoIp, ip: str) -> None:
    ans = db.lookup(ip)
    assert ans.asn is None and ans.asn_org is None


def test_network_of_gives_network_country_flags(db: LocationDbGeoIp) -> None:
    assert db.network_of("1.1.1.9") == (ipaddress.ip_network("1.1.1.0/24"), "AU", 64500, FLAG_ANYCAST)
    assert db.network_of("8.8.8.8") == (ipaddress.ip_network("8.8.8.0/24"), "US", 64502, 0)
    net, cc, asn, _ = db.network_of("2a03:2880:f10c:83::25de") or (None, None, None, None)
    assert (str(net), cc, asn) == ("2a03:2880::/29", "IE", 64504)


def test_flags_are_named(db: LocationDbGeoIp) -> None:
    assert db.lookup("1.1.1.1").flags == ("anycast",)
    assert db.lookup("8.8.8.8").flags == ()
    assert db.lookup("9.9.9.9").flags == ()


def test_every_flag_and_a_network_without_as(tmp_path: Path) -> None:
    f = locdb.write(
        tmp_path / "flags.db",
        [Net("1.2.3.0/24", "A1", 0, 1 | 2 | 4 | 8 | 64), Net("2.3.4.0/24", "DE", 64500, 8)],
        {64500: "Bad Net"},
    )
    d = LocationDbGeoIp(f)
    ans = d.lookup("1.2.3.4")  # no AS, but the flags still hold; unknown bits are ignored
    assert (ans.asn, ans.flags) == (None, ("anycast", "anonymous-proxy", "satellite-provider", "drop"))
    assert d.network_of("1.2.3.4") is not None and d.network_of("1.2.3.4")[1] is None  # type: ignore[index]
    assert d.lookup("2.3.4.5").flags == ("drop",)
    d.close()


def test_hostile_names_are_cleaned(db: LocationDbGeoIp) -> None:
    org = db.lookup("2a03:2880::1").asn_org
    assert org is not None
    assert "\x1b" not in org and "\n" not in org and org.startswith("Example")
    assert "Social Network" in org


def test_header_facts_are_evidence(db: LocationDbGeoIp) -> None:
    assert db.label == "Test Vendor location database (2022-10-29)"
    assert db.date == "2022-10-29"
    assert db.facts == ("asn", "asn_org", "network_flags")
    prov = db.provenance or ""
    assert "built 2022-10-29T05:59:54+00:00" in prov and "licence CC0" in prov
    assert "Test data not for production" in prov  # the newline became a space


def test_long_names_are_cut(tmp_path: Path) -> None:
    f = locdb.write(tmp_path / "l.db", [Net("1.2.3.0/24", asn=64500)], {64500: "A" * 5000}, vendor="V" * 999)
    d = LocationDbGeoIp(f)
    assert d.lookup("1.2.3.4").asn_org == "A" * locationdb.MAX_STRING
    assert len(d.vendor) == locationdb.MAX_STRING
    d.close()


# ---- damaged and hostile files ------------------------------------------------------------------


def _expect_error(tmp_path: Path, data: bytes, message: str) -> None:
    f = tmp_path / "bad.db"
    f.write_bytes(data)
    with pytest.raises(ConfigError, match=message) as e:
        LocationDbGeoIp(f)
    assert "\n" not in str(e.value)


def test_missing_empty_and_short_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        LocationDbGeoIp(tmp_path / "nope.db")
    _expect_error(tmp_path, b"", "cannot read")
    _expect_error(tmp_path, b"LOCDBXX\x01", "too short")


def test_wrong_magic_and_version(tmp_path: Path) -> None:
    good = locdb.build(NETS, ASES)
    _expect_error(tmp_path, b"\x89PNG\r\n\x1a\n" + good[8:], "no LOCDBXX magic")
    _expect_error(tmp_path, locdb.build(NETS, ASES, version=2), "version 2 is not supported")


@pytest.mark.parametrize(
    ("section", "what"), [(0, "AS"), (1, "network"), (2, "network tree"), (4, "string pool")]
)
def test_section_past_the_end(tmp_path: Path, section: int, what: str) -> None:
    good = locdb.build(NETS, ASES)
    _expect_error(
        tmp_path, locdb.patch_header(good, 5 + 2 * section, 0xFFFFFFF0), f"{what} section runs past"
    )
    _expect_error(
        tmp_path,
        good[: len(good) - 5] if section == 4 else locdb.patch_header(good, 4 + 2 * section, 0xFFFFFFFF),
        "runs past",
    )


def test_partial_record_and_empty_tree(tmp_path: Path) -> None:
    good = locdb.build(NETS, ASES)
    _, length = locdb.section_offset(good, 2)
    _expect_error(tmp_path, locdb.patch_header(good, 9, length - 1), "partial record")
    _expect_error(tmp_path, locdb.patch_header(good, 9, 0), "empty network tree")


def test_hostile_indexes_give_no_answer(tmp_path: Path) -> None:
    """Children and network indexes out of range, a child pointing back up the tree, and name
    offsets outside the pool: lookups answer nothing (or what is valid), never raise or loop."""
    good = bytearray(locdb.build(NETS, ASES))
    tree_off, tree_len = locdb.section_offset(bytes(good), 2)
    for i in range(tree_len // 12):
        zero, one, network = struct.unpack_from(">III", good, tree_off + 12 * i)
        if i % 3 == 0:
            zero = 0xFFFFFFFE  # out of range
        elif i % 3 == 1:
            one = 1  # a cycle back up: bounded by the 128 levels of an address
        if network != 0xFFFFFFFF and i % 2:
            network = 10_000_000
        struct.pack_into(">III", good, tree_off + 12 * i, zero, one, network)
    as_off, as_len = locdb.section_offset(bytes(good), 0)
    for i in range(as_len // 8):
        struct.pack_into(">I", good, as_off + 8 * i + 4, 0xFFFFFFFF)
    f = tmp_path / "hostile.db"
    f.write_bytes(bytes(good))
    d = LocationDbGeoIp(f)
    for ip in ["1.1.1.1", "8.8.8.8", "2001:4860::1", "255.255.255.255", "::", "ffff:ffff::1"]:
        ans = d.lookup(ip)
        assert ans.asn_org is None  # every name offset is outside the pool
    d.close()


def test_random_corruption_never_raises(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    good = locdb.build(NETS, ASES)
    f = tmp_path / "fuzz.db"
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 40)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        f.write_bytes(bytes(data[: rng.randint(len(good) // 2, len(good))] if rng.random() < 0.2 else data))
        try:
            d = LocationDbGeoIp(f)
        except ConfigError as e:
            assert "\n" not in str(e)
            continue
        for ip in ("1.1.1.1", "8.8.8.8", "2a03:2880::1", "5.5.5.5", "203.0.113.9"):
            ans = d.lookup(ip)
            assert ans.asn is None or 0 < ans.asn < 2**32
        assert isinstance(d.label, str)
        d.close()


# ---- discovery -----------------------------------------------------------------------------------


def test_discovery_env_and_system_paths(
    dbfile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locationdb, "SYSTEM_PATHS", (str(tmp_path / "missing.db"), str(dbfile)))
    monkeypatch.delenv("AUDIT_LOCATION_DB")
    assert location_db_path() == dbfile
    for off in ("off", "OFF", "", "none"):
        monkeypatch.setenv("AUDIT_LOCATION_DB", off)
        assert location_db_path() is None and open_default_location_db() is None
    monkeypatch.setenv("AUDIT_LOCATION_DB", str(tmp_path / "other.db"))
    assert location_db_path() == tmp_path / "other.db"
    with pytest.raises(ConfigError, match="not found"):  # named explicitly: a clear error
        open_default_location_db()


def test_damaged_system_copy_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "location.db"
    broken.write_bytes(b"LOCDBXX\x01garbage")
    monkeypatch.setattr(locationdb, "SYSTEM_PATHS", (str(broken),))
    monkeypatch.delenv("AUDIT_LOCATION_DB")
    assert open_default_location_db() is None
    assert "too short" in caplog.text


# ---- the Enricher's network chain ----------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded() -> EmbeddedGeoIp:
    return EmbeddedGeoIp()


def test_enricher_uses_it_ahead_of_embedded(dbfile: Path, embedded: EmbeddedGeoIp) -> None:
    e = Enricher(embedded=embedded, asn_table=False, location_db=dbfile)
    info = e.ip_info("8.8.8.8")
    assert (info.asn, info.asn_org) == (64502, "Example Resolver LLC")
    assert info.country == "US"  # location still from the embedded data
    assert info.database == f"{embedded.label} + Test Vendor location database (2022-10-29)"
    # An address it has no AS for falls back to the embedded organisation (no number).
    other = e.ip_info("9.9.9.9")
    assert other.asn is None and other.database == embedded.label
    roles = [(r["role"], r["database"]) for r in e.describe()]
    assert ("network", "Test Vendor location database (2022-10-29)") in roles
    e.close()


def test_enricher_discovers_it(
    dbfile: Path, embedded: EmbeddedGeoIp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_LOCATION_DB", str(dbfile))
    e = Enricher(embedded=embedded)
    assert e.location_db is not None and e.location_db.path == str(dbfile)
    assert e.ip_info("1.1.1.1").asn == 64500
    e.close()
    assert Enricher(embedded=embedded, location_db=False).location_db is None


def test_enricher_keeps_flags_whoever_answers_the_as(
    dbfile: Path, tmp_path: Path, embedded: EmbeddedGeoIp
) -> None:
    from audit.enrich.asntable import AsnTableGeoIp, import_table

    src = tmp_path / "asn.csv"
    src.write_text("1.1.1.0,1.1.1.255,64998,Imported Anycast Org\n", encoding="utf-8")
    import_table([src], tmp_path / "t.sqlite", label="mine", date="2026-11-01")
    e = Enricher(embedded=embedded, asn_table=AsnTableGeoIp(tmp_path / "t.sqlite"), location_db=dbfile)
    info = e.ip_info("1.1.1.1")
    assert (info.asn, info.network_flags) == (64998, ("anycast",))
    assert e.ip_info("10.1.1.1").network_flags == ()  # private: nothing looked up
    e.close()
    assert Enricher(embedded=embedded, location_db=False).ip_info("1.1.1.1").network_flags == ()


def test_imported_table_wins_over_it(dbfile: Path, tmp_path: Path, embedded: EmbeddedGeoIp) -> None:
    from audit.enrich.asntable import AsnTableGeoIp, import_table

    src = tmp_path / "asn.csv"
    src.write_text("8.8.8.0,8.8.8.255,64999,Imported Org\n", encoding="utf-8")
    table = tmp_path / "table.sqlite"
    import_table([src], table, label="mine", date="2026-11-01")
    e = Enricher(embedded=embedded, asn_table=AsnTableGeoIp(table), location_db=dbfile)
    assert e.ip_info("8.8.8.8").asn == 64999
    assert e.ip_info("1.1.1.1").asn == 64500  # the table has no range for it: the next source answers
    e.close()


def test_bad_file_closes_what_was_opened(dbfile: Path, tmp_path: Path, embedded: EmbeddedGeoIp) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"nope")
    with pytest.raises(ConfigError):
        Enricher(embedded=embedded, location_db=bad)


# ---- the real database, when the system has it ---------------------------------------------------


@pytest.mark.skipif(not DEBIAN_DB.is_file(), reason="Debian package libloc-database not installed")
def test_debian_libloc_database() -> None:
    d = LocationDbGeoIp(DEBIAN_DB)
    assert d.label.startswith("IPFire Project location database (")
    assert "CC BY-SA 4.0" in (d.provenance or "")
    # Long-stable allocations (the AS numbers have not changed in over a decade).
    assert d.lookup("8.8.8.8").asn == 15169
    assert d.lookup("2001:4860:4860::8888").asn == 15169
    assert d.lookup("1.1.1.1").asn == 13335
    assert d.lookup("157.240.1.35").asn == 32934
    net = d.network_of("1.1.1.1")
    assert net is not None and net[3] & FLAG_ANYCAST
    d.close()


# ---- review follow-ups ---------------------------------------------------------------------------


def test_lookup_after_close_gives_no_answer(dbfile: Path) -> None:
    d = LocationDbGeoIp(dbfile)
    d.close()
    assert d.lookup("8.8.8.8") == d.lookup("1.1.1.1") == locationdb.GeoAnswer()


def test_v4_address_in_a_network_wider_than_the_v4_block(tmp_path: Path) -> None:
    f = locdb.write(tmp_path / "wide.db", [Net("::/64", "ZZ", 64500)], {64500: "Wide"})
    d = LocationDbGeoIp(f)
    net = d.network_of("192.0.2.1")
    assert net is not None and str(net[0]) == "::/64" and net[2] == 64500
    assert d.lookup("192.0.2.1").asn == 64500
    d.close()


def test_newest_system_copy_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = locdb.write(tmp_path / "database.db", NETS, ASES, created_at=1_700_000_000)
    packaged = locdb.write(tmp_path / "location.db", NETS, ASES, created_at=1_800_000_000)
    monkeypatch.delenv("AUDIT_LOCATION_DB")
    monkeypatch.setattr(locationdb, "SYSTEM_PATHS", (str(fresh), str(packaged)))
    assert location_db_path() == packaged  # the "fresh" place holds an older build
    monkeypatch.setattr(
        locationdb, "SYSTEM_PATHS", (str(tmp_path / "none.db"), str(fresh), str(tmp_path / "x"))
    )
    assert location_db_path() == fresh
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"junk")
    monkeypatch.setattr(locationdb, "SYSTEM_PATHS", (str(junk), str(fresh)))
    assert location_db_path() == fresh


@pytest.mark.parametrize("value", ["off", "None", " no ", "0", "false", ""])
def test_off_spellings(value: str) -> None:
    assert locationdb.is_off(value)
    assert not locationdb.is_off("/usr/share/libloc-location/location.db")


def test_given_backends_stay_open(dbfile: Path, tmp_path: Path, embedded: EmbeddedGeoIp) -> None:
    """The enricher closes what it opened, not what the caller passed in, also when it fails."""
    from tests.helpers.mmdb import asn, write_mmdb

    given = LocationDbGeoIp(dbfile)
    Enricher(embedded=embedded, asn_table=False, location_db=given).close()
    assert given.lookup("8.8.8.8").asn == 64502  # still open
    mmdb = write_mmdb(
        tmp_path / "asn.mmdb", [("8.8.8.0/24", asn(64501, "Example"))], database_type="GeoLite2-ASN"
    )
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"nope")
    opened: list[object] = []
    import audit.enrich.geoip as geoip

    class Spy(geoip.MmdbGeoIp):
        def __init__(self, path: object) -> None:
            super().__init__(path)  # type: ignore[arg-type]
            opened.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(geoip, "MmdbGeoIp", Spy)
        with pytest.raises(ConfigError):
            Enricher([mmdb], embedded=embedded, asn_table=given, location_db=bad)
    (spy,) = opened
    with pytest.raises(ValueError):  # closed: maxminddb refuses to read
        spy._reader.get("8.8.8.8")  # type: ignore[attr-defined]
    assert given.lookup("8.8.8.8").asn == 64502
    given.close()
