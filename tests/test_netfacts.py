"""Issue 12 points 4, 8 and 9 end to end, on pcaps built here: a NAT64 capture from an IPv6-only
phone (64:ff9b:: destinations), a network whose AS has no name in the location database, and the
vantage point (given with --vantage, observed from the phone's public address, compared by diff)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import dpkt
import pytest
from click.testing import CliRunner
from mitmproxy import exceptions
from mitmproxy.test import taddons

from audit.cli import main
from audit.destinations import capture_vantages, list_destinations
from audit.enrich.embedded import EmbeddedGeoIp
from audit.enrich.geoip import Enricher
from audit.graph import build_graph
from audit.store import Store
from audit.traffic.addon import Recorder
from tests.fixtures.captures.build_captures import (
    dns_query,
    dns_response,
    ethernet,
    udp_packet,
    write_pcap_packets,
)
from tests.helpers import locdb
from tests.helpers.locdb import Net
from tests.helpers.mobile import PHONE6, RESOLVER6, simple_capture, tls

T0 = 1_718_703_000.0
NAT64_GOOGLE, NAT64_TENCENT = "64:ff9b::808:808", "64:ff9b::cbcd:fe9d"  # 8.8.8.8, 203.205.254.157
NAT64_LOCAL = "64:ff9b:1:cbcd:fe:9d00::"  # 203.205.254.157 under the RFC 8215 local-use /48


@pytest.fixture(scope="module")
def embedded() -> EmbeddedGeoIp:
    return EmbeddedGeoIp()


@pytest.fixture
def location_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A location database with a named AS for 8.8.8.0/24 and an AS without a name for Tencent's
    203.205.254.0/24 (how AS22548 or AS23140 read in the packaged IPFire database)."""
    path = locdb.write(tmp_path / "location.db", [Net("8.8.8.0/24", "US", 64502), Net("203.205.254.0/24", "CN", 64599)],
                       {64502: "Example Resolver LLC"}, created_at=1_667_023_194)  # fmt: skip
    monkeypatch.setenv("AUDIT_LOCATION_DB", str(path))
    return path


def nat64_capture(path: Path) -> Path:
    """The phone asks AAAA for two IPv4-only services, gets NAT64 answers, connects to them (and
    to one through the local-use prefix); one native IPv6 server for comparison."""
    aaaa = dpkt.dns.DNS_AAAA
    pk = [
        (T0, udp_packet(PHONE6, 5353, RESOLVER6, 53, dns_query("api.example-v4only.net", 1, aaaa))),
        (
            T0 + 0.01,
            udp_packet(
                RESOLVER6, 53, PHONE6, 5353, dns_response("api.example-v4only.net", [NAT64_GOOGLE], 1, aaaa)
            ),
        ),
        (T0 + 0.02, udp_packet(PHONE6, 5354, RESOLVER6, 53, dns_query("wx.example.cn", 2, aaaa))),
        (
            T0 + 0.03,
            udp_packet(RESOLVER6, 53, PHONE6, 5354, dns_response("wx.example.cn", [NAT64_TENCENT], 2, aaaa)),
        ),
    ]
    pk += tls(PHONE6, 40001, NAT64_GOOGLE, T0 + 1, "api.example-v4only.net")
    pk += tls(PHONE6, 40002, NAT64_TENCENT, T0 + 2, "wx.example.cn")
    pk += tls(PHONE6, 40003, NAT64_LOCAL, T0 + 3, "wx2.example.cn")
    pk += tls(PHONE6, 40004, "2001:4860:4860::8888", T0 + 4, "dns.example.com")
    write_pcap_packets(path, [(ts, ethernet(p)) for ts, p in pk])
    return path


def invoke(*args: str) -> str:
    r = CliRunner().invoke(main, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def test_nat64_capture_is_located_by_the_embedded_ipv4(
    tmp_path: Path, location_db: Path, embedded: EmbeddedGeoIp
) -> None:
    case = str(tmp_path / "case.sqlite")
    invoke("import", str(nat64_capture(tmp_path / "nat64.pcap")), "--db", case, "--app", "com.example.app")
    rows = {d["ip"]: d for d in json.loads(invoke("destinations", "--db", case, "--json"))}
    google, tencent, local, native = (
        rows[NAT64_GOOGLE],
        rows[NAT64_TENCENT],
        rows[NAT64_LOCAL],
        rows["2001:4860:4860::8888"],
    )
    assert google["host"] == "api.example-v4only.net" and tencent["host"] == "wx.example.cn"  # named from DNS
    assert (google["via_nat64"], google["nat64_ipv4"]) == (True, "8.8.8.8")
    assert google["server_country"] == embedded.lookup("8.8.8.8").country and google["server_country"]
    assert (google["asn"], google["asn_org"], google["asn_source"], google["asn_org_source"]) == (
        64502,
        "Example Resolver LLC",
        "libloc",
        "libloc",
    )
    assert google["ip_scope"] == "public"
    # The AS has no name in the location database: the embedded database's name stays.
    for row in (tencent, local):
        assert (row["via_nat64"], row["nat64_ipv4"]) == (True, "203.205.254.157")
        assert row["server_country"] == embedded.lookup("203.205.254.157").country and row["server_country"]
        assert row["asn"] == 64599 and row["asn_source"] == "libloc"
        assert (
            row["asn_org"] == embedded.lookup("203.205.254.157").asn_org
            and row["asn_org_source"] == "embedded"
        )
    assert (native["via_nat64"], native["nat64_ipv4"]) == (False, None)
    assert native["asn_source"] is None and native["asn_org_source"] == "embedded"
    # The phone's public IPv6 shows where it was.
    assert google["vantage"] == [embedded.lookup(PHONE6).country] and google["vantage"] != [None]

    out = invoke("destinations", "--db", case, "--csv")
    by_ip = {r["ip"]: r for r in csv.DictReader(io.StringIO(out))}
    assert (
        by_ip[NAT64_TENCENT]["via_nat64"] == "True" and by_ip["2001:4860:4860::8888"]["via_nat64"] == "False"
    )
    assert by_ip[NAT64_TENCENT]["nat64_ipv4"] == "203.205.254.157"
    assert by_ip[NAT64_TENCENT]["asn_org_source"] == "embedded"
    table = invoke("destinations", "--db", case, "--table")
    assert "NAT64_IPV4" in table.splitlines()[0] and "203.205.254.157" in table

    # The graph's IP node says so too.
    with Store(case) as s:
        G = build_graph(s, "com.example.app")
    node = G.nodes[f"ip:{NAT64_GOOGLE}"]
    assert (node["via_nat64"], node["nat64_ipv4"], node["asn_source"]) == (True, "8.8.8.8", "libloc")
    assert "via_nat64" not in G.nodes["ip:2001:4860:4860::8888"]


def test_geoip_lookup_of_a_nat64_address(location_db: Path) -> None:
    (row,) = json.loads(invoke("geoip", "lookup", NAT64_TENCENT, "--json"))
    assert (row["via_nat64"], row["nat64_ipv4"], row["asn"], row["asn_org_source"]) == (
        True,
        "203.205.254.157",
        64599,
        "embedded",
    )


def test_vantage_given_on_import_and_checked(tmp_path: Path) -> None:
    case = str(tmp_path / "case.sqlite")
    cap = simple_capture(tmp_path / "a.pcap", "192.168.1.23", "8.8.8.8")
    r = CliRunner().invoke(main, ["import", str(cap), "--db", case, "--vantage", "XX"])
    assert r.exit_code == 2 and "--vantage 'XX'" in r.output and "Traceback" not in r.output
    assert not Path(case).exists()  # checked before anything is written
    r = CliRunner().invoke(main, ["import", str(cap), "--db", case, "--vantage", "Korea"])
    assert r.exit_code == 2 and "more than one country" in r.output
    r = CliRunner().invoke(main, ["import", str(cap), "--db", case, "--vantage", "Germany", "--app", "com.x"])
    assert r.exit_code == 0, r.output
    assert "read as DE" in r.output
    with Store(case) as s:
        (v,) = capture_vantages(s, Enricher())
        (row,) = [i for i in s.inputs() if i["kind"] == "vantage"]
    assert (v.country, v.app, v.how) == ("DE", "com.x", "given") and "a.pcap" in v.evidence
    assert (
        row["path"] == "DE"
        and row["sha256"] == [i for i in Store(case).inputs() if i["kind"] == "pcap"][0]["sha256"]
    )
    (d,) = json.loads(invoke("destinations", "--db", case, "--json"))
    assert d["vantage"] == ["DE"]  # given beats nothing observed (a private client address)


def test_observed_vantage_ignores_a_lone_calling_peer(tmp_path: Path, embedded: EmbeddedGeoIp) -> None:
    phone, peer = "172.58.0.10", "31.13.64.35"
    cap = simple_capture(tmp_path / "b.pcap", phone, "8.8.8.8", ((phone, "203.205.254.157"), (peer, phone)))
    case = tmp_path / "case.sqlite"
    invoke("import", str(cap), "--db", str(case), "--app", "com.x")
    with Store(case) as s:
        vs = capture_vantages(s, Enricher())
        dests = list_destinations(s, enricher=Enricher())
    assert [(v.country, v.how) for v in vs] == [(embedded.lookup(phone).country, "observed")]
    assert phone in vs[0].evidence and embedded.lookup(peer).country != vs[0].country
    assert {d.vantage for d in dests} == {(vs[0].country,)}


def test_diff_compares_server_countries_from_two_vantages(tmp_path: Path, embedded: EmbeddedGeoIp) -> None:
    """Geo-DNS: the same host answered from a US server for a phone in the US and from Hong Kong
    for a phone in China."""
    us, cn = str(tmp_path / "us.sqlite"), str(tmp_path / "cn.sqlite")
    invoke(
        "import",
        str(simple_capture(tmp_path / "us.pcap", "192.168.1.23", "8.8.8.8")),
        "--db",
        us,
        "--vantage",
        "US",
    )
    invoke("import", str(simple_capture(tmp_path / "cn.pcap", "192.168.1.23", "203.205.254.157")), "--db", cn,
           "--vantage", "CN")  # fmt: skip
    old_cc, new_cc = embedded.lookup("8.8.8.8").country, embedded.lookup("203.205.254.157").country
    assert old_cc and new_cc and old_cc != new_cc
    data = json.loads(invoke("diff", us, cn, "--json"))
    (host,) = [h for h in data["server_countries_by_host"] if h["host"] == "api.example.com"]
    assert (host["old"], host["new"], host["changed"]) == ([old_cc], [new_cc], True)
    assert [(v["country"], v["how"]) for v in data["old_vantage"]] == [("US", "given")]
    assert [(v["country"], v["how"]) for v in data["new_vantage"]] == [("CN", "given")]
    assert data["changed"]
    text = invoke("diff", us, cn, "--table")
    assert "Vantage: seen from US (given) → from CN (given)" in text
    assert f"~ api.example.com: {old_cc} → {new_cc}" in text
    rows = list(csv.DictReader(io.StringIO(invoke("diff", us, cn, "--csv"))))
    assert {"category": "server_country_by_host", "change": "changed",
            "value": f"api.example.com: {old_cc} -> {new_cc}"} in rows  # fmt: skip
    same = json.loads(invoke("diff", us, us, "--json"))
    assert not same["changed"] and not any(h["changed"] for h in same["server_countries_by_host"])


def test_run_records_the_vantage(tmp_path: Path, fixtures_dir: Path) -> None:
    case = str(tmp_path / "case.sqlite")
    cap = simple_capture(tmp_path / "a.pcap", "192.168.1.23", "8.8.8.8")
    apk = fixtures_dir / "apks" / "messenger.apk"
    invoke(
        "run",
        str(apk),
        "--capture",
        str(cap),
        "--db",
        case,
        "-o",
        str(tmp_path / "r.html"),
        "--vantage",
        "fr",
    )
    with Store(case) as s:
        assert [(v.country, v.how) for v in capture_vantages(s, Enricher())] == [("FR", "given")]
    r = CliRunner().invoke(
        main, ["run", str(apk), "--db", case, "-o", str(tmp_path / "r.html"), "--vantage", "ZZ"]
    )
    assert r.exit_code == 2 and "--vantage" in r.output


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_addon_option_audit_vantage(tmp_path: Path, writer: str) -> None:
    db = tmp_path / "live.sqlite"
    r = Recorder(writer=writer)
    with taddons.context(r) as tctx:
        with pytest.raises(exceptions.OptionsError, match="audit_vantage"):
            tctx.configure(r, audit_db=str(db), audit_vantage="Atlantis")
        tctx.configure(r, audit_db=str(db), audit_vantage="cn", audit_app="com.x")
        r.done()
    with Store(db) as s:
        assert [(v.country, v.app, v.how) for v in capture_vantages(s, Enricher())] == [
            ("CN", "com.x", "given")
        ]


def test_vantage_given_again_replaces_the_earlier_one(tmp_path: Path) -> None:
    case = str(tmp_path / "case.sqlite")
    cap = str(simple_capture(tmp_path / "a.pcap", "192.168.1.23", "8.8.8.8"))
    invoke("import", cap, "--db", case, "--app", "com.x")
    out = invoke(
        "import", cap, "--db", case, "--app", "com.x", "--vantage", "JP"
    )  # skipped, vantage recorded
    assert "skipped" in out
    invoke("import", cap, "--db", case, "--app", "com.x", "--vantage", "KR", "--replace")
    invoke("import", cap, "--db", case, "--app", "other", "--vantage", "BR")
    with Store(case) as s:
        vs = capture_vantages(s, Enricher())
        assert sorted((v.country, v.app) for v in vs) == [("BR", "other"), ("KR", "com.x")]
        assert sum(1 for i in s.inputs() if i["kind"] == "pcap") == 2


def test_a_vantage_row_that_is_no_country_is_ignored(tmp_path: Path) -> None:
    with Store(tmp_path / "case.sqlite") as s:
        s.record_input("vantage", "<script>alert(1)</script>", None, "com.x")
        s.record_input("vantage", "us", None, "com.x")  # --vantage always stores the upper-case code
        s.record_input("vantage", "NL", None, "com.x", notes=["given"])
        assert [(v.country, v.evidence) for v in capture_vantages(s, Enricher())] == [("NL", "given")]
