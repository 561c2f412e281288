"""audit destinations: aggregation per (host, ip, port), DNS names for bare IPs, the three facts,
the geo-IP cache, and the CLI output formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.destinations import CSV_COLUMNS, enricher_for, list_destinations
from audit.enrich.geoip import Enricher
from audit.models import CompanyInfo, Connection, DataFinding, DnsRecord, IpInfo
from audit.store import Store
from tests.helpers.mmdb import asn, city, write_mmdb


class FakeCompanies:
    """Suffix → (company, country), like audit.enrich.company.CompanyDb."""

    def __init__(self, table: dict[str, tuple[str, str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def lookup(self, host: str) -> CompanyInfo | None:
        self.asked.append(host)
        labels = host.split(".")
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            if suffix in self.table:
                name, country = self.table[suffix]
                return CompanyInfo(company=name, country=country, matched=suffix)
        return None


#: A plausible capture time (times before 2008 are left out of first/last seen: audit.models.time_window).
T0 = 1_718_703_000.0

COMPANIES = FakeCompanies({"google.com": ("Google LLC", "US"), "qq.com": ("Tencent", "CN")})


@pytest.fixture
def mmdbs(tmp_path: Path) -> list[Path]:
    return [
        write_mmdb(tmp_path / "GeoLite2-City.mmdb",
                   [("142.250.0.0/15", city("DE", "Frankfurt")), ("119.29.0.0/16", city("SG", "Singapore"))]),
        write_mmdb(tmp_path / "GeoLite2-ASN.mmdb",
                   [("142.250.0.0/15", asn(15169, "GOOGLE")), ("119.29.0.0/16", asn(132203, "Tencent Building"))],
                   database_type="GeoLite2-ASN"),
    ]  # fmt: skip


def _conn(**kw: object) -> Connection:
    base: dict[str, object] = {
        "ts": T0 + 100,
        "source": "live",
        "protocol": "https",
        "tls": "intercepted",
        "app": "com.x",
    }
    base.update(kw)
    return Connection(**base)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "case.sqlite")
    s.add_connections(
        [
            _conn(ts=T0 + 100, host="www.google.com", ip="142.250.1.1", port=443, bytes_out=100, bytes_in=1000,
                  findings=(DataFinding("aaid", "query:adid", "plain", "pattern", "38••0d"),)),
            _conn(ts=T0 + 105, end_ts=T0 + 109, host="WWW.GOOGLE.COM", ip="142.250.1.1", port=443, bytes_out=50, bytes_in=10,
                  findings=(DataFinding("email", "body.json:$.e", "plain", "known", "a••m"),)),
            # Pinned: the same destination refused interception once.
            _conn(ts=T0 + 110, protocol="tls", tls="failed", host="www.google.com", sni="www.google.com", ip="142.250.1.1",
                  port=443, error="client does not trust the proxy's certificate"),
            # Bare IP, named through DNS; seen by two sources.
            _conn(ts=T0 + 120, protocol="tcp", tls="none", host=None, ip="119.29.29.29", port=80, bytes_out=7, source="pcap"),
            _conn(ts=T0 + 121, protocol="tcp", tls="none", host="119.29.29.29", ip="119.29.29.29", port=80, bytes_out=3),
            # Passthrough under another app, to a private address.
            _conn(ts=T0 + 130, protocol="tcp", tls="passthrough", host="nas.local", ip="192.168.1.10", port=5000,
                  app="com.other"),
        ]
    )  # fmt: skip
    s.add_dns(
        [DnsRecord(ts=T0 + 90, source="live", name="Pingma.QQ.com.", answers=("119.29.29.29",), app="com.x")]
    )
    return s


def test_aggregates_per_host_ip_port(store: Store, mmdbs: list[Path]) -> None:
    rows = list_destinations(store, enricher=Enricher(mmdbs, embedded=False), companies=COMPANIES)
    by_host = {d.host: d for d in rows}
    assert set(by_host) == {"www.google.com", "pingma.qq.com", "nas.local"}
    g = by_host["www.google.com"]
    assert (g.ip, g.port, g.flows, g.bytes_out, g.bytes_in) == ("142.250.1.1", 443, 3, 150, 1010)
    assert g.tls == "failed"  # the worst seen: pinning outranks intercepted
    assert g.protocol == "https,tls"
    assert g.sni == "www.google.com"
    assert (g.first_seen, g.last_seen) == (T0 + 100, T0 + 110)
    assert g.data_types == ("aaid", "email")
    # The three facts, kept apart.
    assert (g.server_country, g.server_city) == ("DE", "Frankfurt")
    assert (g.asn, g.asn_org) == (15169, "GOOGLE")
    assert (g.company, g.company_country) == ("Google LLC", "US")
    assert g.geo_database == "GeoLite2-City (2024-06-18) + GeoLite2-ASN (2024-06-18)"
    assert g.ip_scope == "public"


def test_bare_ip_gets_dns_name_and_merges(store: Store, mmdbs: list[Path]) -> None:
    rows = list_destinations(store, enricher=Enricher(mmdbs, embedded=False), companies=COMPANIES)
    q = next(d for d in rows if d.ip == "119.29.29.29")
    assert q.host == "pingma.qq.com"
    assert q.flows == 2 and q.bytes_out == 10
    assert q.sources == ("live", "pcap")
    assert q.tls == "none" and q.protocol == "tcp"
    assert (q.company, q.company_country) == ("Tencent", "CN")
    assert q.server_country == "SG" and q.asn == 132203


def test_private_ip_not_geolocated_and_app_filter(store: Store, mmdbs: list[Path]) -> None:
    enricher = Enricher(mmdbs, embedded=False)
    rows = list_destinations(store, enricher=enricher, companies=COMPANIES)
    nas = next(d for d in rows if d.host == "nas.local")
    assert nas.ip_scope == "private" and nas.server_country is None and nas.geo_database is None
    assert nas.tls == "passthrough" and nas.apps == ("com.other",)
    only_x = list_destinations(store, app="com.x", enricher=enricher, companies=COMPANIES)
    assert {d.host for d in only_x} == {"www.google.com", "pingma.qq.com"}
    assert all(d.apps == ("com.x",) for d in only_x)


def test_geo_cache_keyed_by_database(store: Store, mmdbs: list[Path], tmp_path: Path) -> None:
    list_destinations(store, enricher=Enricher(mmdbs, embedded=False), companies=COMPANIES)
    cached = store.cached_ip_info()
    assert cached["142.250.1.1"].country == "DE"
    assert cached["142.250.1.1"].database == "GeoLite2-City (2024-06-18) + GeoLite2-ASN (2024-06-18)"
    # A cached answer from the same databases is used as is ...
    store.cache_ip_info([IpInfo("142.250.1.1", "public", country="XX", database=cached["142.250.1.1"].database,
                                setup=cached["142.250.1.1"].setup)])  # fmt: skip
    again = list_destinations(store, enricher=Enricher(mmdbs, embedded=False), companies=COMPANIES)
    assert next(d for d in again if d.ip == "142.250.1.1").server_country == "XX"
    # ... but other databases look the IP up again.
    other = write_mmdb(tmp_path / "Other-City.mmdb", [("142.250.0.0/15", city("IE", "Dublin"))],
                       database_type="GeoLite2-City", build_epoch=1720000000)  # fmt: skip
    third = list_destinations(store, enricher=Enricher([other], embedded=False), companies=COMPANIES)
    assert next(d for d in third if d.ip == "142.250.1.1").server_country == "IE"
    assert store.cached_ip_info()["142.250.1.1"].country == "IE"


def test_company_falls_back_to_sni(tmp_path: Path) -> None:
    s = Store(tmp_path / "c.sqlite")
    s.add_connections([_conn(protocol="tls", tls="failed", host="142.250.9.9", sni="mail.google.com", ip="142.250.9.9",
                             port=443)])  # fmt: skip
    (d,) = list_destinations(s, enricher=Enricher(embedded=False), companies=COMPANIES)
    assert d.host == "142.250.9.9"  # no DNS answer for it: the IP stays the host
    assert d.company == "Google LLC"
    assert "142.250.9.9" not in COMPANIES.asked  # IPs are not looked up as domains


def test_empty_case(tmp_path: Path) -> None:
    assert (
        list_destinations(
            Store(tmp_path / "e.sqlite"), enricher=Enricher(embedded=False), companies=COMPANIES
        )
        == []
    )


def test_enricher_for_uses_recorded_mmdbs(store: Store, mmdbs: list[Path], tmp_path: Path) -> None:
    for p in mmdbs:
        store.record_input("mmdb", str(p), app="com.x")
    store.record_input("mmdb", str(tmp_path / "gone.mmdb"), app="com.x")  # deleted since: ignored
    e = enricher_for(store)
    assert e.location is not None and e.location.label.startswith("GeoLite2-City")
    assert e.network is not None and e.network.label.startswith("GeoLite2-ASN")
    explicit = enricher_for(store, [str(mmdbs[1])])
    assert explicit.network is not None and explicit.network.label.startswith("GeoLite2-ASN")
    assert explicit.location is not None and explicit.location.label.startswith("geoip2fast")


def test_with_bundled_company_database(store: Store, mmdbs: list[Path]) -> None:
    company = pytest.importorskip("audit.enrich.company")
    db = company.load_companies()
    rows = list_destinations(store, enricher=Enricher(mmdbs, embedded=False), companies=db)
    g = next(d for d in rows if d.host == "www.google.com")
    assert g.company is not None and g.company_country == "US"


# -- CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def case(store: Store) -> str:
    store.close()
    return store.path


def test_cli_json(case: str, mmdbs: list[Path]) -> None:
    args = ["destinations", "--db", case, "--json"] + [a for p in mmdbs for a in ("--mmdb", str(p))]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["host"] for row in rows] == ["nas.local", "pingma.qq.com", "www.google.com"]
    assert set(rows[0]) == set(CSV_COLUMNS)
    g = rows[2]
    assert g["server_country"] == "DE" and g["asn"] == 15169 and g["data_types"] == ["aaid", "email"]


def test_cli_csv_to_file_and_table(case: str, mmdbs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "d.csv"
    r = CliRunner().invoke(main, ["destinations", "--db", case, "--app", "com.x", "--csv", "-o", str(out),
                                  "--mmdb", str(mmdbs[0])])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["host"] for row in rows] == ["pingma.qq.com", "www.google.com"]
    assert rows[1]["data_types"] == "aaid;email" and rows[1]["server_city"] == "Frankfurt"
    t = CliRunner().invoke(main, ["destinations", "--db", case, "--table", "--mmdb", str(mmdbs[0])])
    assert t.exit_code == 0, t.output
    header = t.output.splitlines()[0]
    assert header.split()[:5] == ["HOST", "IP", "PORT", "PROTOCOL", "TLS"]
    assert "www.google.com" in t.output and "Frankfurt" not in t.output  # city only in JSON/CSV


def test_cli_errors(tmp_path: Path, case: str) -> None:
    r = CliRunner().invoke(main, ["destinations", "--db", str(tmp_path / "missing.sqlite")])
    assert r.exit_code == 1 and "no such case file" in r.output
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"nope")
    r = CliRunner().invoke(main, ["destinations", "--db", case, "--mmdb", str(bad)])
    assert r.exit_code == 1
    assert "bad.mmdb" in r.output and "Traceback" not in r.output
    notdb = tmp_path / "notdb.sqlite"
    notdb.write_bytes(b"this is not sqlite" * 100)
    r = CliRunner().invoke(main, ["destinations", "--db", str(notdb)])
    assert r.exit_code == 1 and "notdb.sqlite" in r.output


def test_cli_help_has_example() -> None:
    r = CliRunner().invoke(main, ["destinations", "--help"])
    assert r.exit_code == 0 and "Example:" in r.output and "--mmdb" in r.output


# -- first party -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "packages", "expected"),
    [
        ("api.example.com", {"com.example.app"}, "com.example.app"),
        ("EXAMPLE.COM.", {"com.example"}, "com.example"),
        ("cdn.example.co.uk", {"uk.co.example.news"}, "uk.co.example.news"),
        ("someone.github.io", {"io.github.someone.tool"}, "io.github.someone.tool"),  # private suffix
        ("github.io", {"io.github.someone.tool"}, None),
        ("api.example.net", {"com.example.app"}, None),
        ("example.com", {"com.examples.app"}, None),  # label by label, not a string prefix
        ("93.184.216.34", {"com.example.app"}, None),
        (None, {"com.example.app"}, None),
        ("api.example.com", {"messenger.apk"}, None),  # a file-name label is not a package
        ("api.github.com", {"com.github.libretube"}, None),  # a shared namespace, not the vendor's
        ("someone.gitlab.io", {"io.gitlab.someone.app"}, "io.gitlab.someone.app"),
    ],
)
def test_first_party_package(host: str | None, packages: set[str], expected: str | None) -> None:
    from audit.destinations import first_party_package

    assert first_party_package(host, packages) == expected


def test_first_party_from_package_name_and_from_own_code(tmp_path: Path) -> None:
    from audit.models import AppInfo, Endpoint, ScanResult, Source

    app = "com.example.messenger"
    scan = ScanResult(
        AppInfo(app, "1.0", "1", "ab" * 32, "messenger.apk", "apk"),
        (
            Endpoint("https://im.messenger-example.cn/", "im.messenger-example.cn", "messenger-example.cn", "url",
                     sources=(Source("dex", "classes.dex"),), classes=("com.example.messenger.chat.ChatService",)),
            # In the app's own code but a known company's: stays that company's, not first party.
            Endpoint("https://api.weixin.qq.com/", "api.weixin.qq.com", "qq.com", "url",
                     sources=(Source("dex", "classes.dex"),), classes=("com.example.messenger.login.WeChat",)),
            # Loaded only by library code: no evidence that the vendor runs it.
            Endpoint("https://cfg.lib-cdn.net/", "cfg.lib-cdn.net", "lib-cdn.net", "url",
                     sources=(Source("dex", "classes2.dex"),), classes=("okhttp3.internal.X",)),
            # The app's code loads one host of a domain an SDK claims through another host.
            Endpoint("https://api.sdkvendor.cn/", "api.sdkvendor.cn", "sdkvendor.cn", "url",
                     sources=(Source("dex", "classes.dex"),), classes=("com.example.messenger.Glue",)),
            Endpoint("https://log.sdkvendor.cn/", "log.sdkvendor.cn", "sdkvendor.cn", "url",
                     sources=(Source("dex", "classes.dex"),), classes=("cn.sdkvendor.Log",), sdk="sdkvendor"),
        ),
        (),
    )  # fmt: skip
    s = Store(tmp_path / "fp.sqlite")
    s.add_scan(scan, app=app)
    s.add_connections(
        [_conn(host=h, ip="119.29.1.1", port=443, app=app)
         for h in ("gw.messenger-example.cn", "api.weixin.qq.com", "cfg.lib-cdn.net", "push.example.com",
                   "api.sdkvendor.cn")]
        + [_conn(host="push.example.com", ip="119.29.1.2", port=443, app="other.app")]
    )  # fmt: skip
    rows = {
        (d.host, d.apps): d
        for d in list_destinations(s, enricher=Enricher(embedded=False), companies=COMPANIES)
    }
    gw = rows[("gw.messenger-example.cn", (app,))]
    assert gw.first_party == app and gw.company is None
    assert gw.first_party_evidence and "com.example.messenger.chat.ChatService" in gw.first_party_evidence
    wx = rows[("api.weixin.qq.com", (app,))]
    assert (wx.company, wx.first_party) == ("Tencent", None)
    assert rows[("cfg.lib-cdn.net", (app,))].first_party is None
    assert rows[("api.sdkvendor.cn", (app,))].first_party is None
    # By name: example.com reversed is com.example, and the package starts with it.
    push = rows[("push.example.com", (app,))]
    assert push.first_party == app and push.first_party_evidence == (
        "host name push.example.com matches the package name com.example.messenger"
    )
    assert rows[("push.example.com", ("other.app",))].first_party is None
    assert set(CSV_COLUMNS) == set(gw.to_dict())
