"""``audit dns`` (issue 12 point 6): every name looked up, its answers, first seen, and whether a
connection went to it; the report's "Looked up, not contacted" section. On a pcap built here."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import dpkt
import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.dnsview import CSV_COLUMNS, dns_names
from audit.output import ExitStatus
from audit.store import Store
from audit.traffic.importers import import_file
from tests.fixtures.captures.build_captures import (
    client_hello,
    dns_query,
    dns_response,
    ethernet,
    tcp_session,
    tls_record,
    udp_packet,
    write_pcap_packets,
)

PHONE, RESOLVER = "192.168.1.23", "192.168.1.1"
T0 = 1_718_703_000.0
APP = "com.viber.voip"


def cname_response(name: str, target: str, ip: str, qid: int) -> bytes:
    msg = dpkt.dns.DNS(
        id=qid, op=dpkt.dns.DNS_RA | dpkt.dns.DNS_RD, qr=dpkt.dns.DNS_R, rcode=dpkt.dns.DNS_RCODE_NOERR
    )
    msg.qd = [dpkt.dns.DNS.Q(name=name, type=dpkt.dns.DNS_A, cls=dpkt.dns.DNS_IN)]
    cname = dpkt.dns.DNS.RR(name=name, type=dpkt.dns.DNS_CNAME, cls=dpkt.dns.DNS_IN, ttl=300)
    cname.cname = target
    a = dpkt.dns.DNS.RR(
        name=target, type=dpkt.dns.DNS_A, cls=dpkt.dns.DNS_IN, ttl=300, rdata=bytes(map(int, ip.split(".")))
    )
    msg.an = [cname, a]
    return bytes(msg)


def lookup(t: float, port: int, qid: int, name: str, response: bytes) -> list[tuple[float, dpkt.Packet]]:
    return [(t, udp_packet(PHONE, port, RESOLVER, 53, dns_query(name, qid))),
            (t + 0.01, udp_packet(RESOLVER, 53, PHONE, port, response))]  # fmt: skip


def capture(path: Path) -> Path:
    """app.adjust.com asked twice and never contacted; api.example.cn contacted at its answer (no
    SNI: raw TCP); cdn.example.net answered by a CNAME whose target is contacted by SNI at another
    address; nx.example.org asked without an answer; edge.example.net contacted without a lookup."""
    pk = [
        *lookup(T0, 5001, 1, "app.adjust.com", dns_response("app.adjust.com", ["185.151.204.6"], 1)),
        *lookup(T0 + 0.5, 5002, 2, "api.example.cn", dns_response("api.example.cn", ["43.156.32.17"], 2)),
        *lookup(T0 + 0.6, 5003, 3, "cdn.example.net", cname_response("cdn.example.net", "edge.example.net", "203.0.113.9", 3)),
        *lookup(T0 + 0.7, 5004, 4, "nx.example.org", dns_response("nx.example.org", [], 4)),
        *lookup(T0 + 9, 5005, 5, "APP.adjust.com.", dns_response("app.adjust.com", ["185.151.204.6"], 5)),
    ]  # fmt: skip
    pk += tcp_session(PHONE, 40001, "43.156.32.17", 8883, T0 + 1, [b"\x10\x20MQTT"], [b"\x20\x02\x00\x00"])
    pk += tcp_session(
        PHONE, 40002, "203.0.113.50", 443, T0 + 2, [tls_record(client_hello("edge.example.net"))], [b"x" * 40]
    )
    write_pcap_packets(path, [(ts, ethernet(ip)) for ts, ip in pk])
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    case = tmp_path / "case.sqlite"
    with Store(case) as s:
        summary = import_file(capture(tmp_path / "viber.pcap"), s, app=APP)
        assert summary.errors == () and summary.dns == 5
    return case


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


def test_names_answers_and_contacted(db: Path) -> None:
    with Store(db) as s:
        got = {n.name: n for n in dns_names(s, APP)}
    assert sorted(got) == ["api.example.cn", "app.adjust.com", "cdn.example.net", "nx.example.org"]
    adjust = got["app.adjust.com"]
    assert (adjust.answers, adjust.lookups, adjust.contacted, adjust.connections) == (
        ("185.151.204.6",),
        2,
        False,
        0,
    )
    assert adjust.first_seen == pytest.approx(T0 + 0.01)  # the time of the answer
    api = got["api.example.cn"]
    assert (api.answers, api.contacted, api.connections) == (("43.156.32.17",), True, 1)
    cdn = got["cdn.example.net"]
    assert cdn.answers == ("edge.example.net", "203.0.113.9") and cdn.contacted and cdn.connections == 1
    nx = got["nx.example.org"]
    assert (nx.answers, nx.contacted, nx.qtypes, nx.apps) == ((), False, ("A",), (APP,))


def test_cli_formats(db: Path) -> None:
    code, out, err = invoke("dns", "--db", str(db), "--app", APP, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["name"] for r in rows if not r["contacted"]] == ["app.adjust.com", "nx.example.org"]
    assert list(rows[0]) == list(CSV_COLUMNS)
    code, out, err = invoke("dns", "--db", str(db), "--csv")
    assert code == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    assert (
        table[1]["name"] == "app.adjust.com"
        and table[1]["answers"] == "185.151.204.6"
        and table[1]["contacted"] == "False"
    )
    assert table[2]["answers"] == "edge.example.net;203.0.113.9"
    code, out, err = invoke("dns", "--db", str(db), "--table")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["NAME", "ANSWERS", "LOOKUPS", "CONTACTED", "CONNECTIONS", "APPS"]
    assert any(
        line.split()[:5] == ["app.adjust.com", "185.151.204.6", "2", "False", "0"]
        for line in out.splitlines()
    )


def test_app_label_is_checked_and_kept_apart(db: Path, tmp_path: Path) -> None:
    code, out, err = invoke("dns", "--db", str(db), "--app", "com.viber")
    assert code == ExitStatus.USAGE and "no such app label" in err
    other = (
        tmp_path / "other.pcap"
    )  # another app connects to app.adjust.com's address: not this app's contact
    write_pcap_packets(other, [(ts, ethernet(ip)) for ts, ip in
                               tcp_session(PHONE, 41000, "185.151.204.6", 443, T0 + 20, [b"x"], [b"y"])])  # fmt: skip
    with Store(db) as s:
        import_file(other, s, app="com.other")
        assert not {n.name: n for n in dns_names(s, APP)}["app.adjust.com"].contacted
        assert {n.name: n for n in dns_names(s)}["app.adjust.com"].contacted  # the whole case: it is


def test_empty_case(tmp_path: Path) -> None:
    Store(tmp_path / "empty.sqlite").close()
    code, out, err = invoke("dns", "--db", str(tmp_path / "empty.sqlite"), "--table")
    assert (code, out) == (0, "no DNS lookups recorded\n")
    code, out, err = invoke("dns", "--db", str(tmp_path / "empty.sqlite"), "--json")
    assert (code, json.loads(out)) == (0, [])


def test_report_section(db: Path, tmp_path: Path) -> None:
    code, out, err = invoke("report", "--db", str(db), "-o", str(tmp_path / "r.html"))
    assert code == 0, err
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    section = html.split('<section id="looked-up">', 1)[1].split("</section>", 1)[0]
    assert "<h2>Looked up, not contacted</h2>" in section and "2 names the traffic asked DNS for" in section
    assert "app.adjust.com" in section and "185.151.204.6" in section and "nx.example.org" in section
    assert "api.example.cn" not in section and "cdn.example.net" not in section
    assert '<a href="#looked-up">' in html
