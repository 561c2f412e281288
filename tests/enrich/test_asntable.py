"""The imported IP→ASN range table: formats, hostile lines, overlaps, lookups, and how the Enricher
uses it between an ASN .mmdb and the embedded database. All range files are written by the tests."""

from __future__ import annotations

import gzip
import random
import sqlite3
from pathlib import Path

import pytest

from audit.enrich.asntable import (
    AsnTableGeoIp,
    _flatten,
    default_table_path,
    import_table,
    open_default_table,
)
from audit.enrich.geoip import EmbeddedGeoIp, Enricher
from audit.errors import ConfigError, InputError
from tests.helpers.mmdb import asn, write_mmdb

# Ranges in ip-location-db / DB-IP lite shape: start,end,asn,organisation (documentation AS numbers).
CSV = """\
ip_range_start,ip_range_end,autonomous_system_number,autonomous_system_organization
# a comment line
1.1.1.0,1.1.1.255,64500,"Example Anycast, Inc."
8.8.8.0,8.8.8.255,64501,Example Resolver LLC

119.28.0.0,119.29.255.255,64502,Example Cloud (Shenzhen) Co.
not,an,ip,line
9.9.9.0,9.9.9.255,notanumber,Broken
2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,64501,Example Resolver LLC
"""

# iptoasn.com shape: start, end, AS number, country, description (TAB separated); AS 0 = not routed.
TSV = (
    "1.0.0.0\t1.0.0.255\t64510\tAU\tEXAMPLE-NET Example Net\n"
    "1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n"
    "2a00:1450::\t2a00:1450:ffff:ffff:ffff:ffff:ffff:ffff\t64511\tUS\tEXAMPLE-V6\n"
)


@pytest.fixture(scope="module")
def embedded() -> EmbeddedGeoIp:
    return EmbeddedGeoIp()


def _write(path: Path, text: str, *, gz: bool = False) -> Path:
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def table(tmp_path: Path) -> AsnTableGeoIp:
    src = _write(tmp_path / "asn-2026-06-17.csv", CSV)
    import_table([src], tmp_path / "t.sqlite", label="example asn")
    return AsnTableGeoIp(tmp_path / "t.sqlite")


def test_csv_with_ip_bounds(tmp_path: Path) -> None:
    src = _write(tmp_path / "asn-2026-06-17.csv", CSV)
    s = import_table([src], tmp_path / "t.sqlite", label="example asn")
    # header skipped silently, comment and blank ignored, two malformed lines counted
    assert (s.ranges, s.ipv4, s.ipv6, s.malformed, s.overlapping, s.unrouted) == (4, 3, 1, 2, 0, 0)
    assert (s.label, s.date) == ("example asn", "2026-06-17")  # date from the file name
    assert s.files[0]["format"] == "csv (start,end,asn,org)" and len(s.files[0]["sha256"]) == 64
    t = AsnTableGeoIp(tmp_path / "t.sqlite")
    assert t.label == f"example asn (2026-06-17, data {t.data_id})" and t.facts == ("asn", "asn_org")
    assert len(t.data_id) == 8
    assert (t.lookup("1.1.1.1").asn, t.lookup("1.1.1.1").asn_org) == (64500, "Example Anycast, Inc.")
    assert t.lookup("119.29.29.29").asn == 64502
    assert t.lookup("2001:4860:4860::8888").asn == 64501


def test_bounds_are_inclusive_and_gaps_miss(table: AsnTableGeoIp) -> None:
    assert table.lookup("1.1.1.0").asn == 64500
    assert table.lookup("1.1.1.255").asn == 64500
    assert table.lookup("1.1.2.0").asn is None  # after the range: no answer, not the previous range
    assert table.lookup("1.1.0.255").asn is None
    assert table.lookup("0.0.0.1").asn is None  # before every range
    assert table.lookup("2001:4861::1").asn is None
    assert table.lookup("::ffff:8.8.8.8").asn == 64501  # IPv4-mapped IPv6 is the IPv4 address
    assert table.lookup("garbage").asn is None


def test_integer_bounds(tmp_path: Path) -> None:
    # ip-location-db's *-num.csv: 1.1.1.0 = 16843008; 2001:4860:: as a 128-bit integer.
    v6 = int.from_bytes(bytes.fromhex("20014860" + "00" * 12), "big")
    text = f"16843008,16843263,64500,Example\n{v6},{v6 + 2**96 - 1},64501,Example v6\n"
    s = import_table([_write(tmp_path / "asn-num.csv", text)], tmp_path / "t.sqlite")
    assert (s.ipv4, s.ipv6) == (1, 1)
    t = AsnTableGeoIp(tmp_path / "t.sqlite")
    assert t.lookup("1.1.1.77").asn == 64500 and t.lookup("2001:4860::5").asn == 64501


def test_iptoasn_tsv_gz_skips_not_routed(tmp_path: Path) -> None:
    src = _write(tmp_path / "ip2asn-combined.tsv.gz", TSV, gz=True)
    s = import_table([src], tmp_path / "t.sqlite", label="iptoasn.com", date="2026-11-01")
    assert (s.ranges, s.unrouted, s.malformed) == (2, 1, 0) and s.files[0]["format"] == "tsv (iptoasn)"
    t = AsnTableGeoIp(tmp_path / "t.sqlite")
    assert (t.lookup("1.0.0.1").asn, t.lookup("1.0.0.1").asn_org) == (64510, "EXAMPLE-NET Example Net")
    assert t.lookup("1.0.2.1").asn is None  # not routed: no AS, not a made-up one
    assert t.lookup("2a00:1450:4001::200e").asn == 64511
    assert t.label.startswith("iptoasn.com (2026-11-01, data ")


def test_nested_ranges_win_inside_partial_overlaps_and_repeats_are_dropped(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.csv", "10.0.0.0,10.0.255.255,64500,Outer\n20.0.0.0,20.0.0.255,64501,A\n"
                                   "30.0.0.0,30.0.0.255,64504,First\n")  # fmt: skip
    b = _write(tmp_path / "b.csv", "10.0.1.0,10.0.1.255,64502,Inner\n20.0.0.0,20.0.0.255,64503,B\n"
                                   "30.0.0.128,30.0.1.127,64505,Sticks out\n")  # fmt: skip
    s = import_table([a, b], tmp_path / "t.sqlite")
    assert s.label == "ASN table a.csv, b.csv"
    # pieces: outer before inner, inner, outer after inner, A, First; dropped: B (repeat), "Sticks out"
    assert (s.ranges, s.overlapping) == (5, 2)
    t = AsnTableGeoIp(tmp_path / "t.sqlite")
    assert [t.lookup(ip).asn for ip in ("10.0.0.255", "10.0.1.0", "10.0.1.255", "10.0.2.0", "10.0.255.255")] == [
        64500, 64502, 64502, 64500, 64500]  # fmt: skip
    assert t.lookup("20.0.0.1").asn == 64501  # the earlier file wins a repeat
    assert t.lookup("30.0.0.200").asn == 64504 and t.lookup("30.0.1.0").asn is None


def test_caida_prefix2as_longest_prefix_wins(tmp_path: Path) -> None:
    text = (
        "8.0.0.0\t9\t64500\n"
        "8.8.8.0\t24\t64501\n"
        "8.8.4.0\t24\t64501\n"
        "1.1.1.0\t24\t64502_64503\n"  # multi-origin: ambiguous, skipped
        "2001:4860::\t32\t64501\n"
        "300.1.1.0\t24\t1\n"
    )
    s = import_table([_write(tmp_path / "routeviews-rv2-20261127-1200.pfx2as", text)], tmp_path / "t.sqlite")
    assert s.files[0]["format"] == "tsv (pfx2as)" and s.date == "2026-11-27" and s.malformed == 2
    t = AsnTableGeoIp(tmp_path / "t.sqlite")
    assert t.lookup("8.8.8.8") == t.lookup("8.8.4.4") != t.lookup("8.8.9.1")
    assert (t.lookup("8.8.8.8").asn, t.lookup("8.8.9.1").asn, t.lookup("8.127.0.1").asn) == (
        64501,
        64500,
        64500,
    )
    assert t.lookup("8.8.8.8").asn_org is None  # prefix2as has no organisation names
    assert t.lookup("1.1.1.1").asn is None and t.lookup("2001:4860::1").asn == 64501


def test_hostile_lines(tmp_path: Path) -> None:
    long_field = "x" * 200_000  # over the csv module's field limit
    text = (
        '3.3.3.0,3.3.3.255,64500,"<script>alert(1)</script>\x1b[31m\x00evil"\n'
        f'4.4.4.0,4.4.4.255,64501,"{long_field}\n'
        "5.5.5.0,5.5.5.255,64502," + "y" * 3000 + "\n"
        "6.6.6.255,6.6.6.0,64503,end before start\n"
        "7.7.7.0,2001::1,64504,mixed families\n"
        "8.8.8.0,8.8.8.255,99999999999,asn too large\n"
        "\xff\xfe,1.2.3.4,1,bad bytes\n"
    )
    src = tmp_path / "hostile.csv"
    src.write_bytes(text.encode("utf-8", "surrogateescape") + b"\xff\xfe garbage\n")
    s = import_table([src], tmp_path / "t.sqlite")
    t = AsnTableGeoIp(tmp_path / "t.sqlite")
    org = t.lookup("3.3.3.3").asn_org
    assert org is not None and "\x1b" not in org and "\x00" not in org  # control characters gone
    assert org.startswith("<script>")  # kept as text; escaping is the renderer's job
    assert len(t.lookup("5.5.5.5").asn_org or "") == 200  # cut
    assert t.lookup("6.6.6.6").asn is None and t.lookup("7.7.7.7").asn is None
    assert s.ranges == 2 and s.malformed >= 5


def test_no_valid_range_keeps_the_existing_table(tmp_path: Path) -> None:
    dest = tmp_path / "t.sqlite"
    import_table([_write(tmp_path / "ok.csv", CSV)], dest, label="good")
    with pytest.raises(InputError, match="no IP range found"):
        import_table([_write(tmp_path / "junk.csv", "hello\nworld\n")], dest)
    with pytest.raises(InputError, match="no IP range found"):
        import_table([_write(tmp_path / "empty.csv", "")], dest)
    assert AsnTableGeoIp(dest).label.startswith("good")


def test_truncated_gzip_is_an_input_error(tmp_path: Path) -> None:
    data = gzip.compress((CSV * 50).encode())
    src = tmp_path / "cut.csv.gz"
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.csv.gz: cannot read"):
        import_table([src], tmp_path / "t.sqlite")
    assert not (tmp_path / "t.sqlite").exists()
    assert not list(tmp_path.glob(".t.sqlite*"))  # no temporary file left behind


def test_decompression_bomb_and_endless_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audit.enrich import asntable

    bomb = tmp_path / "bomb.csv.gz"
    with gzip.open(bomb, "wb") as f:  # 64 MiB of one line, about 64 KiB compressed
        for _ in range(64):
            f.write(b"9" * (1 << 20))
    assert bomb.stat().st_size < 1 << 20
    monkeypatch.setattr(asntable, "MAX_TEXT", 16 << 20)
    with pytest.raises(InputError, match="more than 16 MiB of text"):
        import_table([bomb], tmp_path / "t.sqlite")
    # Within the limit, an over-long line is skipped and counted; the lines after it still count.
    long_line = tmp_path / "long.csv"
    long_line.write_text("x" * 100_000 + "\n" + CSV, encoding="utf-8")
    s = import_table([long_line], tmp_path / "t.sqlite")
    assert s.ranges == 4 and s.malformed == 3


def test_too_many_ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audit.enrich import asntable

    monkeypatch.setattr(asntable, "MAX_RANGES", 3)
    with pytest.raises(InputError, match="more than 3 ranges"):
        import_table([_write(tmp_path / "a.csv", CSV)], tmp_path / "t.sqlite")


def test_missing_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        import_table([tmp_path / "nope.csv"], tmp_path / "t.sqlite")


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100])
def test_bad_table_file_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "asn-table.sqlite"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match="not an ASN table"):
        AsnTableGeoIp(bad)


def test_other_schema_version_is_refused(tmp_path: Path, table: AsnTableGeoIp) -> None:
    con = sqlite3.connect(table.path)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    con.commit()
    con.close()
    with pytest.raises(ConfigError, match="schema '99'"):
        AsnTableGeoIp(table.path)


def test_default_place_is_audit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path / "home"))
    assert open_default_table() is None
    s = import_table([_write(tmp_path / "a.csv", CSV)])
    assert Path(s.path) == default_table_path() == tmp_path / "home" / "asn-table.sqlite"
    t = open_default_table()
    assert t is not None and t.lookup("8.8.8.8").asn == 64501


def test_enricher_number_from_table_location_from_embedded(
    table: AsnTableGeoIp, embedded: EmbeddedGeoIp
) -> None:
    e = Enricher(embedded=embedded, asn_table=table)
    info = e.ip_info("8.8.8.8")
    assert (info.asn, info.asn_org) == (64501, "Example Resolver LLC")
    assert info.country == "US"  # the location still comes from the embedded database
    assert info.database == e.label == f"{embedded.label} + {table.label}"
    assert table.label.startswith("example asn (2026-06-17, data ")
    # An IP the table does not cover: the embedded database still names the network (no number),
    # and the answer says so.
    other = e.ip_info("203.205.254.157")
    assert other.asn is None and other.asn_org and other.database == embedded.label
    assert [b["role"] for b in e.describe()] == ["location", "network", "network"]


def test_asn_mmdb_beats_the_table(tmp_path: Path, table: AsnTableGeoIp, embedded: EmbeddedGeoIp) -> None:
    mmdb = write_mmdb(tmp_path / "GeoLite2-ASN.mmdb", [("8.8.8.0/24", asn(15169, "GOOGLE"))],
                      database_type="GeoLite2-ASN")  # fmt: skip
    e = Enricher([mmdb], embedded=embedded, asn_table=table)
    assert e.ip_info("8.8.8.8").asn == 15169
    assert e.ip_info("1.1.1.1").asn == 64500  # not in the .mmdb: the table answers


def test_enricher_finds_the_imported_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded: EmbeddedGeoIp
) -> None:
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path))
    assert Enricher(embedded=embedded).asn_table is None
    import_table([_write(tmp_path / "a.csv", CSV)], label="mine")
    e = Enricher(embedded=embedded)
    assert e.asn_table is not None and e.ip_info("1.1.1.1").asn == 64500
    assert Enricher(embedded=embedded, asn_table=False).ip_info("1.1.1.1").asn is None
    e.close()


def _laminar(rng: random.Random, lo: int, hi: int, depth: int, out: list[tuple[int, int, int]]) -> None:
    """Random nested ranges inside [lo, hi]: children lie inside their parent and do not overlap."""
    pos = lo
    while pos < hi and depth < 4:
        a = rng.randint(pos, hi)
        b = rng.randint(a, min(hi, a + (hi - lo) // 2))
        if rng.random() < 0.7:
            out.append((a, b, len(out) + 1))
            _laminar(rng, a, b, depth + 1, out)
        pos = b + 1 + rng.randint(0, 5)


def test_flatten_matches_innermost_range_on_random_nested_families() -> None:
    rng = random.Random(7)
    for _ in range(50):
        ranges: list[tuple[int, int, int]] = []
        _laminar(rng, 0, 200, 0, ranges)
        rng.shuffle(ranges)
        pieces, dropped = _flatten([(a, -b, 0, i, asn, None) for i, (a, b, asn) in enumerate(ranges)])
        assert dropped == 0
        assert all(p[1] < q[0] for p, q in zip(pieces, pieces[1:], strict=False))  # sorted, disjoint
        answer = {x: asn for a, b, asn, _ in pieces for x in range(a, b + 1)}
        for x in range(0, 201):
            containing = [r for r in ranges if r[0] <= x <= r[1]]
            innermost = min(containing, key=lambda r: r[1] - r[0])[2] if containing else None
            assert answer.get(x) == innermost, (x, ranges)


def test_same_label_and_date_other_data_gets_another_label(tmp_path: Path) -> None:
    a = import_table([_write(tmp_path / "a.csv", CSV)], tmp_path / "a.sqlite", label="x", date="2026-01-01")
    b = import_table([_write(tmp_path / "b.csv", CSV.replace("64500", "64599"))], tmp_path / "b.sqlite",
                     label="x", date="2026-01-01")  # fmt: skip
    assert (a.label, a.date) == (b.label, b.date)
    assert AsnTableGeoIp(tmp_path / "a.sqlite").label != AsnTableGeoIp(tmp_path / "b.sqlite").label


def test_corrupt_gzip_and_odd_digits_and_v4_block(tmp_path: Path) -> None:
    data = bytearray(gzip.compress((CSV * 200).encode()))
    for i in range(len(data) // 3, len(data) // 3 + 40):  # garble the middle of the deflate stream
        data[i] ^= 0x5A
    bad = tmp_path / "garbled.csv.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="garbled.csv.gz: cannot read"):
        import_table([bad], tmp_path / "t.sqlite")
    # A non-ASCII digit is a malformed line, not the end of the import.
    odd = _write(
        tmp_path / "odd.csv",
        "1.1.1.0,1.1.1.255,64500,A\n\u00b2,5,1,x\n8.8.8.0,8.8.8.255,6\u00b2,y\n9.9.9.0,9.9.9.255,64501,B\n",
    )
    s = import_table([odd], tmp_path / "t.sqlite")
    assert (s.ranges, s.malformed) == (2, 2)
    # An IPv6 row over ::ffff:0:0/96 must not answer for IPv4 addresses.
    v6 = _write(tmp_path / "v6.csv", "::,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,64502,all of v6\n")
    import_table([v6], tmp_path / "v6.sqlite")
    t = AsnTableGeoIp(tmp_path / "v6.sqlite")
    assert (
        t.lookup("1.0.1.1").asn is None
        and t.lookup("2001:db8::1").asn == 64502
        and t.lookup("::1").asn == 64502
    )


def test_bad_first_line_that_looks_like_a_range_is_counted(tmp_path: Path) -> None:
    s = import_table(
        [_write(tmp_path / "a.csv", "1.0.0.0,2001::,64500,mixed\n" + CSV)], tmp_path / "t.sqlite"
    )
    # the mixed-family first line, CSV's header (no longer first) and its two bad lines
    assert s.malformed == 4


def test_maxmind_geolite2_asn_csv(tmp_path: Path) -> None:
    v4 = _write(tmp_path / "GeoLite2-ASN-Blocks-IPv4.csv",
                "network,autonomous_system_number,autonomous_system_organization\n"
                "1.0.0.0/24,64500,\"Example Anycast, Inc.\"\n8.8.8.0/24,64501,EXAMPLE-DNS\n1.2.3.0/33,1,bad\n")  # fmt: skip
    v6 = _write(tmp_path / "GeoLite2-ASN-Blocks-IPv6.csv",
                "network,autonomous_system_number,autonomous_system_organization\n2001:4860::/32,64501,EXAMPLE-DNS\n")  # fmt: skip
    s = import_table([v4, v6], tmp_path / "t.sqlite", label="GeoLite2-ASN CSV")
    assert (s.ranges, s.ipv4, s.ipv6, s.malformed) == (3, 2, 1, 1)
    t = AsnTableGeoIp(tmp_path / "t.sqlite")
    assert (t.lookup("1.0.0.200").asn, t.lookup("1.0.0.200").asn_org) == (64500, "Example Anycast, Inc.")
    assert t.lookup("8.8.8.8").asn == t.lookup("2001:4860::8888").asn == 64501
    assert t.lookup("1.0.1.0").asn is None
