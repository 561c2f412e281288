"""Issue 12 points 4, 8, 9 in the report, read in real headless Chromium: the "via NAT64" mark, which
source answered each address of one operator, the capture's date against the databases' build
dates, and the vantage next to every server-country figure. The case is a 2017 pcap from an
IPv6-only phone, built here and imported through the CLI."""

from __future__ import annotations

import html
import re
from pathlib import Path

import dpkt
import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.enrich.embedded import EmbeddedGeoIp
from audit.enrich.geoip import Enricher
from audit.report.data import collect_report
from audit.report.html import write_report
from audit.store import Store
from tests.fixtures.captures.build_captures import (
    dns_query,
    dns_response,
    ethernet,
    udp_packet,
    write_pcap_packets,
)
from tests.helpers import locdb
from tests.helpers.browser import console_messages, needs_chromium, run_chromium
from tests.helpers.locdb import Net
from tests.helpers.mobile import PHONE6, RESOLVER6, simple_capture, tls

T2017 = 1_493_802_000.0  # 2017-05-03 09:00 UTC
SERVERS = {  # host → NAT64 address (the IPv4 inside)
    "wx.qq.com": "64:ff9b::cbcd:fe9d",  # 203.205.254.157: an AS without a name in the location database
    "weixin.qq.com": "64:ff9b::771c:101",  # 119.28.1.1: not in the location database, the embedded name only
    "api.example-v4only.net": "64:ff9b::808:808",  # 8.8.8.8
}


def capture_2017(path: Path) -> Path:
    aaaa = dpkt.dns.DNS_AAAA
    pk: list[tuple[float, dpkt.Packet]] = []
    for i, (host, ip) in enumerate(SERVERS.items()):
        t = T2017 + 10 * i
        pk.append((t, udp_packet(PHONE6, 5300 + i, RESOLVER6, 53, dns_query(host, i + 1, aaaa))))
        pk.append(
            (t + 0.01, udp_packet(RESOLVER6, 53, PHONE6, 5300 + i, dns_response(host, [ip], i + 1, aaaa)))
        )
        pk += tls(PHONE6, 40000 + i, ip, t + 1, host)
    write_pcap_packets(path, [(ts, ethernet(p)) for ts, p in pk])
    return path


@pytest.fixture
def case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = locdb.write(tmp_path / "location.db", [Net("8.8.8.0/24", "US", 64502), Net("203.205.254.0/24", "CN", 64599)],
                     {64502: "Example Resolver LLC"}, created_at=1_667_023_194)  # fmt: skip
    monkeypatch.setenv("AUDIT_LOCATION_DB", str(db))
    path = tmp_path / "case.sqlite"
    r = CliRunner().invoke(main, ["import", str(capture_2017(tmp_path / "wechat-2017.pcap")), "--db", str(path),
                                  "--app", "com.tencent.mm", "--vantage", "US"])  # fmt: skip
    assert r.exit_code == 0, r.output
    return path


def text_of(dom: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_report_data(case: Path) -> None:
    emb = EmbeddedGeoIp.default()
    with Store(case) as s:
        r = collect_report(s, enricher=Enricher(), generated_at=0)
    assert (
        r.seen_from
        == f"seen from US (given); {emb.lookup(PHONE6).country} (observed from the device's public address)"
    )
    (note,) = r.source_notes
    assert note.startswith("Company Tencent: its addresses were answered by different sources")
    assert (
        "203.205.254.157" not in note
        and "64:ff9b::cbcd:fe9d: AS64599 from the IPFire location database, its name from the embedded database"
        in note
    )
    assert "64:ff9b::771c:101: name only, no AS number, from the embedded database" in note
    assert any(
        "The capture is from 2017-05-03;" in n and "built 2022-10-29, 5 years after it" in n
        for n in r.date_notes
    )
    assert any("built 2024-06-18, 7 years after it" in n for n in r.date_notes)


@pytest.mark.slow
@needs_chromium
def test_report_sentences_in_chromium(case: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    with Store(case) as s:
        write_report(s, out, app="com.tencent.mm", enricher=Enricher())
    dom, err = run_chromium(tmp_path, out.as_uri(), "--dump-dom", "--virtual-time-budget=2000")
    assert console_messages(err) == []
    text = text_of(dom)
    country = EmbeddedGeoIp.default().lookup("203.205.254.157").country
    # NAT64: each address marked, with the IPv4 it was located by; the country is that IPv4's.
    for ip4 in ("203.205.254.157", "119.28.1.1", "8.8.8.8"):
        assert f"via NAT64 {ip4}" in text
    assert re.search(
        r"wx\.qq\.com 64:ff9b::cbcd:fe9d via NAT64 203\.205\.254\.157 443 .*? " + str(country), text
    )
    # Which source answered each address of the same operator.
    assert "Company Tencent: its addresses were answered by different sources" in text
    assert "(libloc; name: embedded)" in text and "(libloc)" in text and "(embedded)" in text
    # The capture's date against the databases' build dates (methodology).
    assert "The capture is from 2017-05-03; Test Vendor location database (2022-10-29)" in text
    assert "built 2022-10-29, 5 years after it" in text and "built 2024-06-18, 7 years after it" in text
    # The vantage next to every server-country figure: verdict, KPI, country table, column headers.
    assert re.search(
        r"By server location \(where the servers are\): .*?; seen from US \(given\); \w\w \(observed", text
    )
    assert "server countries (from US)" in text
    assert "By server country (server location) seen from US (given)" in text
    assert text.count("Server country (from ") >= 2 and "Vantage seen from US (given)" in text


def test_source_notes_name_the_biggest_operators_and_count_the_rest() -> None:
    from audit.models import Destination
    from audit.report.data import MAX_SOURCE_NOTES, source_notes

    def dest(ip: str, org: str, asn: int | None, asn_source: str | None) -> Destination:
        return Destination(host=None, ip=ip, port=443, protocol="tls", sni=None, tls="passthrough", flows=1,
                           bytes_out=1, bytes_in=1, first_seen=None, last_seen=None, asn=asn, asn_org=org,
                           asn_source=asn_source, asn_org_source="libloc" if asn_source else "embedded",
                           ip_scope="public")  # fmt: skip

    dests = []
    for i in range(MAX_SOURCE_NOTES + 2):
        org = f"Operator {i:02d}"
        dests += [dest(f"198.18.{i}.{j}", org, 64500 + i, "libloc") for j in range(1 + i)]
        dests.append(dest(f"198.19.{i}.1", org, None, None))
    dests.append(dest("198.20.0.1", "Agreeing Operator", 64999, "libloc"))
    dests.append(dest("198.20.0.2", "Agreeing Operator", 64999, "libloc"))
    notes = source_notes(dests)
    assert len(notes) == MAX_SOURCE_NOTES + 1
    assert notes[0].startswith(f"Network Operator {MAX_SOURCE_NOTES + 1:02d}:")  # most addresses first
    assert notes[-1].startswith("2 more operators were answered by different sources")
    assert not any("Agreeing" in n for n in notes)
    assert "198.18.11.0, 198.18.11.1, 198.18.11.2 …: AS64511 from the IPFire location database" in notes[0]


def test_a_case_of_two_vantages_names_each_rows(tmp_path: Path) -> None:
    case = str(tmp_path / "both.sqlite")
    for cc, server in (("US", "8.8.8.8"), ("CN", "203.205.254.157")):
        cap = simple_capture(tmp_path / f"{cc}.pcap", "192.168.1.23", server)
        r = CliRunner().invoke(
            main, ["import", str(cap), "--db", case, "--app", f"phone-{cc}", "--vantage", cc]
        )
        assert r.exit_code == 0, r.output
    out = tmp_path / "r.html"
    with Store(case) as s:
        data = write_report(s, out, enricher=Enricher())
    assert data.mixed_vantage and data.seen_from == "seen from CN, US (given)"
    assert {d.ip: d.vantage for d in data.destinations} == {"8.8.8.8": ("US",), "203.205.254.157": ("CN",)}
    text = text_of(out.read_text(encoding="utf-8"))
    assert "Server country (from CN, US)" in text
    for ip, cc in (("8.8.8.8", "US"), ("203.205.254.157", "CN")):
        country = EmbeddedGeoIp.default().lookup(ip).country
        assert re.search(
            rf"api\.example\.com {re.escape(ip)} 443 \S+ \S+ 1 \S+ \S+ \S+ \S+ {country} from {cc} ", text
        ), ip
