"""`audit geoip import|info|lookup`, and an imported ASN table reaching `audit destinations` and the
case's evidence. Range files are written by the tests (documentation AS numbers)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.destinations import enricher_for
from audit.enrich.asntable import import_table
from audit.models import Connection
from audit.store import Store

RANGES = (
    "142.250.0.0,142.251.255.255,64500,Example Search Co\n"
    "119.29.0.0,119.29.255.255,64501,Example Cloud (Shenzhen)\n"
    "2a00:1450::,2a00:1450:ffff:ffff:ffff:ffff:ffff:ffff,64500,Example Search Co\n"
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def ranges(tmp_path: Path) -> Path:
    p = tmp_path / "asn-ipv4-2026-06-17.csv"
    p.write_text(RANGES, encoding="utf-8")
    return p


def test_import_then_lookup(home: Path, ranges: Path) -> None:
    r = CliRunner().invoke(main, ["geoip", "import", str(ranges), "--label", "example asn", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)  # progress goes to stderr
    assert f"{ranges}: 3 ranges, 0 malformed lines" in r.stderr
    assert summary["ranges"] == 3 and summary["ipv6"] == 1 and summary["date"] == "2026-06-17"
    assert Path(summary["path"]) == home / "asn-table.sqlite"

    r = CliRunner().invoke(
        main, ["geoip", "lookup", "142.250.1.1", "2a00:1450:4001::200e", "10.1.2.3", "--json"]
    )
    assert r.exit_code == 0, r.output
    a, b, c = json.loads(r.output)
    assert (a["asn"], a["asn_org"], a["scope"]) == (64500, "Example Search Co", "public")
    assert a["server_country"]  # location: still the embedded database
    assert re.search(r"\+ example asn \(2026-06-17, data [0-9a-f]{8}\)$", a["geo_database"])
    assert b["asn"] == 64500
    assert (c["scope"], c["asn"], c["geo_database"]) == ("private", None, None)

    r = CliRunner().invoke(main, ["geoip", "info", "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    roles = [(d["role"], d["database"].split(" (")[0]) for d in info]
    assert roles == [("location", "geoip2fast"), ("network", "example asn"), ("network", "geoip2fast")]
    assert (
        info[1]["provenance"].startswith("imported ") and f"{ranges.name} (sha256 " in info[1]["provenance"]
    )
    assert info[0]["provenance"] is None


def test_text_outputs(home: Path, ranges: Path) -> None:
    r = CliRunner().invoke(main, ["geoip", "import", str(ranges), "--table"])
    assert r.exit_code == 0 and r.stdout.startswith("imported 3 ranges (2 IPv4, 1 IPv6) from 1 file(s)")
    r = CliRunner().invoke(main, ["geoip", "info", "--table"])
    assert r.exit_code == 0 and "asn-table.sqlite" in r.output and "asn, asn_org" in r.output
    r = CliRunner().invoke(main, ["geoip", "lookup", "119.29.29.29", "--table"])
    assert r.exit_code == 0 and "64501" in r.output and "Example Cloud (Shenzhen)" in r.output
    r = CliRunner().invoke(main, ["geoip", "lookup", "119.29.29.29", "--csv"])
    assert r.output.splitlines()[0].startswith("ip,scope,server_country,server_city,asn,asn_org")


def test_without_a_table_asn_is_null(home: Path) -> None:
    r = CliRunner().invoke(main, ["geoip", "lookup", "142.250.1.1", "--json"])
    (row,) = json.loads(r.output)
    assert row["asn"] is None and row["asn_org"]  # the embedded database: organisation only


def test_import_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_text("this is not\na range file\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["geoip", "import", str(junk)])
    assert r.exit_code == 1
    assert r.stderr.splitlines()[-1].startswith("audit: error: ") and "no IP range found" in r.stderr
    assert "Traceback" not in r.output and r.stdout == ""
    r = CliRunner().invoke(main, ["geoip", "import", str(junk), "--date", "yesterday"])
    assert r.exit_code == 1 and "must be YYYY-MM-DD or YYYY-MM" in r.stderr
    assert not (home / "asn-table.sqlite").exists()
    (home / "asn-table.sqlite").parent.mkdir(parents=True)
    (home / "asn-table.sqlite").write_bytes(b"garbage" * 100)
    r = CliRunner().invoke(main, ["geoip", "lookup", "1.1.1.1"])
    assert r.exit_code == 1 and "not an ASN table" in r.output and len(r.output.splitlines()) == 1


def test_destinations_use_the_imported_table(home: Path, ranges: Path, tmp_path: Path) -> None:
    case = tmp_path / "case.sqlite"
    with Store(case) as s:
        s.add_connections([Connection(ts=1.0, source="live", protocol="https", tls="intercepted", app="com.x",
                                      host="www.google.com", ip="142.250.1.1", port=443)])  # fmt: skip
    before = json.loads(CliRunner().invoke(main, ["destinations", "--db", str(case), "--json"]).output)
    assert before[0]["asn"] is None
    import_table([ranges], label="example asn")
    after = json.loads(CliRunner().invoke(main, ["destinations", "--db", str(case), "--json"]).output)
    # The cached answer was made without the table, so the IP is looked up again.
    assert (after[0]["asn"], after[0]["asn_org"]) == (64500, "Example Search Co")
    assert "example asn (2026-06-17, data " in after[0]["geo_database"]


def test_table_given_to_the_recorder_is_reused(home: Path, ranges: Path, tmp_path: Path) -> None:
    own = tmp_path / "own.sqlite"
    import_table([ranges], own, label="recorder's table")
    with Store(tmp_path / "case.sqlite") as s:
        s.record_input("asn-table", str(own), app="com.x")
        e = enricher_for(s)
    assert e.asn_table is not None and e.asn_table.label.startswith("recorder's table")


def test_report_names_the_table_and_its_files(home: Path, ranges: Path, tmp_path: Path) -> None:
    case = tmp_path / "case.sqlite"
    with Store(case) as s:
        s.add_connections([Connection(ts=1.0, source="live", protocol="https", tls="intercepted", app="com.x",
                                      host="www.google.com", ip="142.250.1.1", port=443)])  # fmt: skip
    out = tmp_path / "r.html"
    before = tmp_path / "before.html"
    import_table([ranges], tmp_path / "elsewhere.sqlite")  # not the default place: not used
    assert CliRunner().invoke(main, ["report", "--db", str(case), "-o", str(before)]).exit_code == 0
    assert "No AS numbers" in before.read_text(encoding="utf-8")
    import_table([ranges], label="example asn")
    r = CliRunner().invoke(main, ["report", "--db", str(case), "-o", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    assert "No AS numbers" not in html
    assert "network owner (AS number / organisation)" in html
    assert re.search(r"example asn \(2026-06-17, data [0-9a-f]{8}\); imported ", html)
    assert f"{ranges.name} (sha256 " in html
    assert "AS64500" in html


def test_missing_asn_note_only_when_no_asn_database(home: Path, ranges: Path, tmp_path: Path) -> None:
    from audit.enrich.geoip import Enricher
    from audit.report.data import collect_report

    def case(ip: str) -> Store:
        s = Store(":memory:")
        s.add_connections([Connection(ts=1.0, source="live", protocol="https", tls="intercepted", app="com.x",
                                      host="h.example", ip=ip, port=443)])  # fmt: skip
        return s

    table = tmp_path / "t.sqlite"
    import_table([ranges], table)
    # A table in use that does not cover the IP: no advice to import one.
    assert not collect_report(
        case("8.8.8.8"), enricher=Enricher(asn_table=table), generated_at=0
    ).missing_asn_database
    assert collect_report(
        case("8.8.8.8"), enricher=Enricher(asn_table=False), generated_at=0
    ).missing_asn_database
    # Only private servers: AS numbers would not apply.
    assert not collect_report(
        case("10.0.0.7"), enricher=Enricher(asn_table=False), generated_at=0
    ).missing_asn_database


def test_error_lines_escape_hostile_file_names(home: Path, tmp_path: Path) -> None:
    hostile = tmp_path / "evil\x1b[31m\u202ename.csv"
    hostile.write_text("not a range\n", encoding="utf-8")
    for args in (
        ["geoip", "import", str(hostile)],
        ["import", str(hostile), "--db", str(tmp_path / "c.sqlite")],
    ):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 1, r.output
        assert "\x1b" not in r.output and "\u202e" not in r.output
        assert "\\x1b[31m" in r.output


# ---- the IPFire location database (Debian's libloc-database) ------------------------------------


@pytest.fixture
def location_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tests.helpers import locdb

    path = locdb.write(
        tmp_path / "location.db",
        [locdb.Net("142.250.0.0/15", "US", 64500), locdb.Net("2a00:1450::/32", "IE", 64500),
         locdb.Net("104.16.0.0/13", "US", 64501, 4), locdb.Net("203.0.112.0/22", "XX", 64502, 8)],
        {64500: "Example Search Co", 64501: "Example CDN"},
        vendor="Example Project", created_at=1_667_023_194, licence="CC BY-SA 4.0",
    )  # fmt: skip
    monkeypatch.setenv("AUDIT_LOCATION_DB", str(path))
    return path


def test_location_db_in_info_lookup_destinations_and_report(
    home: Path, location_db: Path, tmp_path: Path
) -> None:
    info = CliRunner().invoke(main, ["geoip", "info", "--json"])
    assert info.exit_code == 0, info.output
    rows = json.loads(info.output)
    net = [r for r in rows if r["role"] == "network" and r["path"] == str(location_db)]
    assert net and net[0]["database"] == "Example Project location database (2022-10-29)"
    assert "licence CC BY-SA 4.0" in net[0]["provenance"]

    look = CliRunner().invoke(
        main, ["geoip", "lookup", "142.250.1.1", "2a00:1450::5", "104.16.1.1", "--json"]
    )
    assert [(r["asn"], r["asn_org"], r["network_flags"]) for r in json.loads(look.output)] == [
        (64500, "Example Search Co", []), (64500, "Example Search Co", []), (64501, "Example CDN", ["anycast"]),
    ]  # fmt: skip

    case = tmp_path / "case.sqlite"
    with Store(case) as s:
        s.add_connections([Connection(ts=1.0, source="live", protocol="https", tls="intercepted", app="com.x",
                                      host="www.google.com", ip="142.250.1.1", port=443, bytes_in=300),
                       Connection(ts=2.0, source="live", protocol="https", tls="intercepted", app="com.x",
                                  host="cdn.example", ip="104.16.1.1", port=443, bytes_in=100)])  # fmt: skip
    dest = {
        d["host"]: d
        for d in json.loads(CliRunner().invoke(main, ["destinations", "--db", str(case), "--json"]).output)
    }
    google = dest["www.google.com"]
    assert google["asn"] == 64500 and "Example Project location database" in google["geo_database"]
    assert google["network_flags"] == [] and dest["cdn.example"]["network_flags"] == ["anycast"]
    csv_out = CliRunner().invoke(main, ["destinations", "--db", str(case), "--csv"]).output
    assert (
        "network_flags" in csv_out.splitlines()[0].split(",") and ",anycast" in csv_out
    )  # columns are only appended
    out = tmp_path / "r.html"
    assert CliRunner().invoke(main, ["report", "--db", str(case), "-o", str(out)]).exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert "No AS numbers" not in html and "AS64500" in html
    assert "Example Project location database (2022-10-29)" in html and "CC BY-SA 4.0" in html
    assert "1 host (25.0% of bytes) is on\n      <b>anycast</b> networks" in html
    assert '<span class="tag" title="network flag from the IPFire location database">anycast</span>' in html
    assert "hostile" not in html


def test_location_db_named_but_unreadable_is_one_line(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "location.db"
    bad.write_bytes(b"\x00" * 10)
    monkeypatch.setenv("AUDIT_LOCATION_DB", str(bad))
    r = CliRunner().invoke(main, ["geoip", "lookup", "8.8.8.8"])
    assert r.exit_code != 0
    assert r.stderr.strip().count("\n") == 0 and "not an IPFire location database" in r.stderr
    assert "Traceback" not in r.output


def test_location_db_the_recorder_used_is_reused(
    location_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from audit.enrich import locationdb
    from tests.helpers import locdb

    system = locdb.write(
        tmp_path / "system.db", [locdb.Net("142.250.0.0/15", "US", 64999)], {64999: "System"}
    )
    monkeypatch.setattr(locationdb, "SYSTEM_PATHS", (str(system),))
    with Store(tmp_path / "case.sqlite") as s:
        s.record_input("location-db", str(location_db), app="com.x")
        monkeypatch.delenv("AUDIT_LOCATION_DB")
        e = enricher_for(s)  # the recorder's file
        assert e.location_db is not None and e.location_db.path == str(location_db)
        e.close()
        monkeypatch.setenv("AUDIT_LOCATION_DB", "off")  # the user's current choice wins
        assert enricher_for(s).location_db is None
        monkeypatch.setenv("AUDIT_LOCATION_DB", str(system))
        e = enricher_for(s)
        assert e.location_db is not None and e.location_db.path == str(system)
        e.close()
        monkeypatch.delenv("AUDIT_LOCATION_DB")
        location_db.write_bytes(b"LOCDBXX\x01 damaged since")  # the recorded file no longer opens
        e = enricher_for(s)
        assert e.location_db is not None and e.location_db.path == str(system)
        e.close()
    assert "too short" in caplog.text and "using the system copy" in caplog.text


def test_cached_flags_follow_the_location_db_in_use(
    location_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer cached without the location database gets its flags once it is in use, and loses
    them when it is turned off, also when another source gives the AS."""
    from audit.destinations import list_destinations
    from audit.enrich.asntable import AsnTableGeoIp
    from audit.enrich.geoip import Enricher

    table = tmp_path / "t.sqlite"
    src = tmp_path / "r.csv"
    src.write_text("104.16.0.0,104.23.255.255,64777,Table CDN\n", encoding="utf-8")
    import_table([src], table, label="tbl", date="2026-11-01")
    s = Store(tmp_path / "case.sqlite")
    s.add_connections([Connection(ts=1.0, source="live", protocol="https", tls="intercepted", app="com.x",
                                  host="cdn.example", ip="104.16.1.1", port=443)])  # fmt: skip

    def row(**kw: object) -> tuple[object, ...]:
        e = Enricher(asn_table=AsnTableGeoIp(table), **kw)  # type: ignore[arg-type]
        (d,) = list_destinations(s, enricher=e)
        e.close()
        return d.asn, d.network_flags, d.geo_database

    asn, flags, db = row(location_db=False)
    assert (asn, flags) == (64777, ()) and "location database" not in str(db)
    asn, flags, db = row(location_db=location_db)
    assert (asn, flags) == (64777, ("anycast",)) and str(db).endswith(
        "+ Example Project location database (2022-10-29)"
    )
    assert "tbl (2026-11-01, data " in str(db)
    assert s.cached_ip_info()["104.16.1.1"].flags_database == "Example Project location database (2022-10-29)"
    asn, flags, db = row(location_db=False)
    assert (asn, flags) == (64777, ()) and "location database" not in str(db)
    s.close()


def test_missing_asn_note_not_shown_with_location_db(location_db: Path) -> None:
    from audit.enrich.geoip import Enricher
    from audit.report.data import collect_report

    s = Store(":memory:")
    s.add_connections([Connection(ts=1.0, source="live", protocol="https", tls="intercepted", app="com.x",
                                  host="h.example", ip="8.8.8.8", port=443)])  # fmt: skip
    assert not collect_report(s, enricher=Enricher(asn_table=False), generated_at=0).missing_asn_database
    assert collect_report(
        s, enricher=Enricher(asn_table=False, location_db=False), generated_at=0
    ).missing_asn_database


def test_fallback_answers_are_not_called_earlier_ones(location_db: Path) -> None:
    """An IP the location database does not cover is answered by the embedded data: that is the
    current setup too, not an earlier database; an answer cached from another database is."""
    from audit.enrich.geoip import Enricher
    from audit.models import IpInfo
    from audit.report.data import collect_report

    s = Store(":memory:")
    s.add_connections([Connection(ts=1.0, source="live", protocol="https", tls="intercepted", app="com.x",
                                  host="a.example", ip="8.8.4.4", port=443),
                       Connection(ts=2.0, source="live", protocol="https", tls="intercepted", app="com.x",
                                  host="b.example", ip="142.250.1.1", port=443)])  # fmt: skip
    enricher = Enricher(asn_table=False)
    assert len(enricher.labels) == 2 and enricher.label in enricher.labels
    r = collect_report(s, enricher=enricher, generated_at=0)
    assert {d.ip: d.asn for d in r.destinations} == {"8.8.4.4": None, "142.250.1.1": 64500}
    assert not [d for d in r.databases if "earlier" in d["role"]]
    s.cache_ip_info(
        [IpInfo("9.9.9.9", "public", "CH", database="Old DB (2020-01-01)", database_date="2020-01-01")]
    )
    r = collect_report(s, enricher=enricher, generated_at=0)
    assert [d["name"] for d in r.databases if "earlier" in d["role"]] == ["Old DB (2020-01-01)"]


def test_info_says_when_no_database_gives_as_numbers(
    home: Path, location_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = CliRunner().invoke(main, ["geoip", "info"])
    assert r.exit_code == 0 and "no database in use gives AS numbers" not in r.stderr
    monkeypatch.setenv("AUDIT_LOCATION_DB", "off")
    r = CliRunner().invoke(main, ["geoip", "info"])
    assert (
        r.exit_code == 0
        and "no database in use gives AS numbers" in r.stderr
        and "libloc-database" in r.stderr
    )
    assert "location.db" not in r.stdout


def test_fallback_answers_are_reused_under_the_same_setup(location_db: Path, tmp_path: Path) -> None:
    """8.8.4.4 is not in the location database: the embedded data answers. Cached with the setup, it
    is reused by the next command with the same databases, and looked up again under another."""
    from dataclasses import replace

    from audit.destinations import list_destinations
    from audit.enrich.geoip import Enricher

    s = Store(tmp_path / "case.sqlite")
    s.add_connections([Connection(ts=1.0, source="live", protocol="https", tls="intercepted", app="com.x",
                                  host="a.example", ip="8.8.4.4", port=443)])  # fmt: skip
    e = Enricher(asn_table=False)
    (d,) = list_destinations(s, enricher=e)
    cached = s.cached_ip_info()["8.8.4.4"]
    assert d.asn is None and cached.setup == e.setup and cached.database != e.label  # a fallback answer
    s.cache_ip_info([replace(cached, country="XX")])
    (again,) = list_destinations(s, enricher=Enricher(asn_table=False))
    assert again.server_country == "XX"  # reused, not looked up
    (other,) = list_destinations(s, enricher=Enricher(asn_table=False, location_db=False))
    assert other.server_country == "US"  # another setup: looked up again
    s.close()
