"""Issue 12, points 1-3, on captures built here: what was seen (inspection share, the
no-personal-data sentence), whose traffic it is (device-wide label, OS background traffic) and
local-network noise (listed apart, counted nowhere, ``audit destinations --all``)."""

from __future__ import annotations

import ipaddress
import json
import re
import struct
from pathlib import Path

import dpkt
import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.enrich.geoip import Enricher
from audit.graph import build_graph
from audit.report.data import ReportData, collect_report
from audit.report.html import render_html, verdict, write_report
from audit.store import Store
from audit.traffic.background import classify, local_reason, os_reason
from audit.traffic.importers import import_file
from tests.fixtures.captures.build_captures import (
    client_hello,
    dns_query,
    dns_response,
    quic_initial,
    tcp_session,
    tls_record,
    udp_packet,
    write_pcap_packets,
)
from tests.helpers.browser import console_messages, needs_chromium, run_chromium
from tests.helpers.cases import COMPANIES
from tests.helpers.traffic import frames

APP = "com.tencent.mm"
PHONE, PHONE6, LL = "192.168.1.23", "2001:db8:42::23", "fe80::1c2:3ff:fe45:6789"
T0 = 1_718_703_000.0
PLAIN = b"GET /cgi-bin/ping?v=1 HTTP/1.1\r\nHost: dns.weixin.qq.com\r\nUser-Agent: x\r\n\r\n"
CHECK = b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n"
CHECK2 = b"GET /generate_204 HTTP/1.1\r\nHost: www.google.com\r\n\r\n"
SEARCH = b"GET /search?q=1 HTTP/1.1\r\nHost: www.google.com\r\n\r\n"
NTP = b"\x23" + b"\0" * 47  # NTPv4 client request


def app_packets() -> list[tuple[float, dpkt.Packet]]:
    """The app: two passthrough TLS connections, one plaintext HTTP request (no personal data), a
    QUIC connection with a readable Initial, one whose Initial was not captured (short headers
    only), a 0-byte TCP/443 connection and a TLS stream captured after its handshake."""
    pk: list[tuple[float, dpkt.Packet]] = [
        (T0, udp_packet(PHONE, 40100, "8.8.8.8", 53, dns_query("short.weixin.qq.com", 1))),
        (
            T0 + 0.01,
            udp_packet("8.8.8.8", 53, PHONE, 40100, dns_response("short.weixin.qq.com", ["43.156.32.17"], 1)),
        ),
    ]
    for i in range(2):
        pk += tcp_session(PHONE, 40001 + i, "43.156.32.17", 443, T0 + 1 + i, [tls_record(client_hello("short.weixin.qq.com"))], [b"\x16\x03\x03" + b"s" * 4000])  # fmt: skip
    pk += tcp_session(
        PHONE, 40010, "119.29.29.29", 80, T0 + 3, [PLAIN], [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
    )
    pk.append((T0 + 4, udp_packet(PHONE, 40020, "142.250.74.194", 443, quic_initial("ads.example.com", b"\x83\x94\xc8\xf0\x3e\x51\x57\x08"))))  # fmt: skip
    # QUIC whose Initial was before the capture: short-header packets (fixed bit 0x40) only
    pk.append((T0 + 5, udp_packet(PHONE, 40021, "43.156.32.40", 443, b"\x41" + b"q" * 40)))
    pk.append((T0 + 5.1, udp_packet("43.156.32.40", 443, PHONE, 40021, b"\x45" + b"r" * 900)))
    pk += tcp_session(
        PHONE, 40030, "43.156.32.41", 443, T0 + 6, [], []
    )  # 0 bytes: nothing says it was not TLS
    pk += tcp_session(PHONE, 40040, "43.156.32.42", 443, T0 + 7, [b"\x17\x03\x03\x00\x20" + b"a" * 32], [b"\x17\x03\x03\x00\x10" + b"b" * 16], handshake=False)  # fmt: skip
    return pk


def os_packets() -> list[tuple[float, dpkt.Packet]]:
    """What Android sends on its own: connectivity checks, NTP, push, safe browsing, a Google
    search (not OS traffic: only /generate_204 on www.google.com is)."""
    pk = tcp_session(
        PHONE, 41001, "142.250.185.99", 80, T0 + 10, [CHECK], [b"HTTP/1.1 204 No Content\r\n\r\n"]
    )
    pk += tcp_session(
        PHONE, 41002, "142.250.185.100", 80, T0 + 11, [CHECK2], [b"HTTP/1.1 204 No Content\r\n\r\n"]
    )
    pk += tcp_session(PHONE, 41003, "142.250.185.101", 80, T0 + 12, [SEARCH], [b"HTTP/1.1 200 OK\r\n\r\n"])
    pk.append((T0 + 13, udp_packet(PHONE, 123, "216.239.35.4", 123, NTP)))
    pk.append((T0 + 13.1, udp_packet("216.239.35.4", 123, PHONE, 123, NTP)))
    pk += tcp_session(PHONE, 41004, "142.250.102.188", 5228, T0 + 14, [tls_record(client_hello("mtalk.google.com"))], [b"x" * 60])  # fmt: skip
    pk += tcp_session(PHONE, 41005, "142.250.186.42", 443, T0 + 15, [tls_record(client_hello("safebrowsing.googleapis.com"))], [b"y" * 80])  # fmt: skip
    return pk


#: (server address, port): local-network noise in the capture.
LOCAL = {
    ("224.0.0.251", 5353), ("ff02::fb", 5353), ("239.255.255.250", 1900), ("192.168.1.255", 137),
    ("255.255.255.255", 67), ("224.0.0.252", 5355), ("169.254.12.7", 8009),
}  # fmt: skip


def local_packets() -> list[tuple[float, dpkt.Packet]]:
    mdns = dns_query("_googlecast._tcp.local", 0)
    return [
        (T0 + 20, udp_packet(PHONE, 5353, "224.0.0.251", 5353, mdns)),
        (T0 + 20.1, udp_packet(LL, 5353, "ff02::fb", 5353, mdns)),
        (T0 + 21, udp_packet(PHONE, 50000, "239.255.255.250", 1900, b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n")),
        (T0 + 22, udp_packet(PHONE, 137, "192.168.1.255", 137, b"\x80\x01" + b"\0" * 48)),
        (T0 + 23, udp_packet("0.0.0.0", 68, "255.255.255.255", 67, b"\x01\x01\x06\x00" + b"\0" * 236)),
        (T0 + 24, udp_packet(PHONE, 50001, "224.0.0.252", 5355, dns_query("printer", 9))),
        (T0 + 25, udp_packet(PHONE, 50002, "169.254.12.7", 8009, b"cast")),
    ]  # fmt: skip


def write(path: Path, packets: list[tuple[float, dpkt.Packet]], trailer: str | None = None) -> Path:
    out = frames(1, sorted(packets, key=lambda p: p[0]))
    if trailer is not None:  # PCAPdroid's per-packet app: app-metadata attribution
        tail = struct.pack("!Ii", 0x01072021, 10123) + trailer.encode()[:20].ljust(20, b"\0") + b"\0\0\0\0"
        out = [(ts, frame + tail) for ts, frame in out]
    write_pcap_packets(path, out)
    return path


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher()


@pytest.fixture(scope="module")
def device_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole-device pcap labelled with the app: app traffic, OS background traffic, local noise."""
    d = tmp_path_factory.mktemp("device")
    cap = write(d / "device.pcap", app_packets() + os_packets() + local_packets())
    case = d / "case.sqlite"
    with Store(case) as store:
        s = import_file(cap, store, app=APP)
        assert s.errors == ()
    return case


@pytest.fixture(scope="module")
def device_report(device_case: Path, enricher: Enricher) -> ReportData:
    with Store(device_case) as store:
        return collect_report(store, enricher=enricher, companies=COMPANIES, generated_at=0)


def conns(case: Path) -> dict[tuple[str | None, int | None], object]:
    with Store(case) as store:
        return {(c.ip, c.port): c for _, c in store.connections()}


def test_pcap_states_are_consistent(device_case: Path) -> None:
    got = conns(device_case)

    def state(ip: str, port: int) -> tuple[str, str, bool]:
        c = got[(ip, port)]
        return c.protocol, c.tls, c.inspected  # type: ignore[attr-defined]

    assert state("43.156.32.17", 443) == ("tls", "passthrough", False)
    assert state("142.250.74.194", 443) == ("quic", "passthrough", False)  # readable Initial
    assert state("43.156.32.40", 443) == ("quic", "passthrough", False)  # short headers only: still QUIC
    assert state("43.156.32.41", 443) == ("tcp", "unknown", False)  # 0 bytes: neither TLS nor plaintext seen
    assert state("43.156.32.42", 443) == ("tls", "passthrough", False)  # captured after the handshake
    assert state("119.29.29.29", 80) == ("http", "none", True)
    assert state("216.239.35.4", 123) == ("udp", "none", False)


def test_destinations_leave_local_noise_out_unless_all(device_case: Path, enricher: Enricher) -> None:
    r = CliRunner().invoke(main, ["destinations", "--db", str(device_case), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    keys = {(d["ip"], d["port"]) for d in rows}
    assert not keys & LOCAL
    assert all(d["background"] != "local" for d in rows)
    os_rows = {d["host"] or d["ip"]: d["background_reason"] for d in rows if d["background"] == "os"}
    assert os_rows == {
        "connectivitycheck.gstatic.com": "connectivity check (Android)",
        "www.google.com": "connectivity check (Android)",
        "216.239.35.4": "time sync",
        "mtalk.google.com": "push (Firebase Cloud Messaging)",
        "safebrowsing.googleapis.com": "safe browsing",
    }
    # the search on www.google.com is the device's, but nothing says it is the OS's
    search = [d for d in rows if d["ip"] == "142.250.185.101"]
    assert [(d["host"], d["background"]) for d in search] == [("www.google.com", None)]
    weixin = next(d for d in rows if d["host"] == "short.weixin.qq.com")
    assert (weixin["inspected"], weixin["not_inspected"], weixin["attribution"]) == (
        False, {"TLS passthrough": 2}, ["label"])  # fmt: skip
    assert weixin["not_inspected_bytes"] == weixin["bytes_out"] + weixin["bytes_in"]

    r = CliRunner().invoke(main, ["destinations", "--db", str(device_case), "--all", "--json"])
    assert r.exit_code == 0, r.output
    everything = json.loads(r.output)
    local = {(d["ip"], d["port"]): d["background_reason"] for d in everything if d["background"] == "local"}
    assert set(local) >= LOCAL - {("255.255.255.255", 67)} and len(everything) == len(rows) + len(local)
    assert local[("224.0.0.251", 5353)] == local[("ff02::fb", 5353)] == "mDNS"
    assert local[("239.255.255.250", 1900)] == "SSDP" and local[("224.0.0.252", 5355)] == "LLMNR"
    assert local[("192.168.1.255", 137)] == "broadcast" and local[("169.254.12.7", 8009)] == "link-local"
    # DHCP: whichever end the reader takes for the server, it is local (limited broadcast or 0.0.0.0)
    assert {local.get(("255.255.255.255", 67)), local.get(("0.0.0.0", 68))} & {
        "broadcast",
        "unspecified address",
    }

    r = CliRunner().invoke(main, ["destinations", "--db", str(device_case), "--all", "--csv"])
    assert r.exit_code == 0, r.output
    header = r.output.splitlines()[0].split(",")
    assert {"background", "background_reason", "not_inspected", "not_inspected_bytes"} <= set(header)
    assert "TLS passthrough=2" in r.output


def test_graph_has_no_local_noise_and_marks_os_hosts(device_case: Path, enricher: Enricher) -> None:
    with Store(device_case) as store:
        G = build_graph(store, enricher=enricher, companies=COMPANIES)
        apps_only = build_graph(store, enricher=enricher, companies=COMPANIES, background=False)
    ips = {a["label"] for _, a in G.nodes(data=True) if a["layer"] == "ip"}
    assert not ips & {ip for ip, _ in LOCAL}
    assert G.nodes["host:mtalk.google.com"]["background"] == "os"
    assert "host:mtalk.google.com" not in apps_only and "host:short.weixin.qq.com" in apps_only


def test_verdict_of_a_device_wide_capture(device_report: ReportData) -> None:
    r = device_report
    lines = [v.text for v in verdict(r)]
    text = "\n".join(lines)
    assert lines[0] == (
        f"Nothing in the capture ties these flows to {APP}: the label covers the whole device (only the analyst's "
        "label attributes them, no per-app metadata or proxy process), so they may include other apps' and the "
        "system's traffic."
    )
    # counted: the app's destinations only (no OS host, no local address)
    hosts = {d.host or d.ip for d in r.destinations}
    assert "mtalk.google.com" not in hosts and "224.0.0.251" not in hosts and "short.weixin.qq.com" in hosts
    assert r.total_flows == sum(d.flows for d in r.destinations)
    assert lines[1].startswith(f"The capture labelled {APP} contacted {r.hosts_contacted} hosts")
    # what was seen: the two plaintext HTTP flows of the counted ones (the app's and the search)
    assert r.inspected_flows == 2 and r.unread_flows == r.total_flows - 2
    assert f"No personal data was detected in the 2 of {r.total_flows} flows whose content was read." in lines
    share = re.search(
        r"Content was not seen for (\d+) % of flows \((\d+) of (\d+)\) and (\S+) % of bytes", text
    )
    assert (
        share is not None and int(share.group(2)) == r.unread_flows and int(share.group(3)) == r.total_flows
    )
    assert round(100 * r.unread_flows / r.total_flows) == int(share.group(1))
    reasons = dict(r.unread_reasons)
    assert reasons["TLS passthrough"] == 3 and reasons["QUIC"] == 2 and reasons["no payload"] == 1
    assert "TLS passthrough 3" in text and "QUIC 2" in text
    assert "could be inspected" not in text
    # OS traffic and local noise, called out
    assert re.search(
        r"Well-known OS traffic, listed apart and not counted as com\.tencent\.mm's: 5 hosts in 5 flows", text
    )
    assert "connectivity check (Android)" in text and "time sync" in text
    assert (
        "Local network: 7 addresses, not counted (LLMNR, SSDP, broadcast, link-local, mDNS; 7 flows)" in text
    )
    # the timeline and charts leave them out too
    assert {h for _, h, _ in r.timeline} == {d.host or d.ip for d in r.destinations}


def test_report_page_lists_them_apart(device_report: ReportData) -> None:
    html = render_html(device_report)
    assert 'id="apart"' in html and 'id="t-background"' in html and 'id="t-local"' in html
    local_table = html[html.index('id="t-local"') :]
    assert "224.0.0.251" in local_table and "mDNS" in local_table
    dest_table = html[html.index('id="t-destinations"') : html.index('id="apart"')]
    assert "224.0.0.251" not in dest_table and "mtalk.google.com" not in dest_table
    assert "TLS passthrough 2" in dest_table and "<th>Attribution</th>" in dest_table
    assert "every TLS connection that was recorded could be inspected" not in html


def test_passthrough_only_case(tmp_path: Path, enricher: Enricher) -> None:
    """Issue 12's WeChat pcap: every connection passed through, nothing read."""
    pk: list[tuple[float, dpkt.Packet]] = []
    for i in range(3):
        pk += tcp_session(PHONE, 42000 + i, "43.156.32.17", 443, T0 + i, [tls_record(client_hello("short.weixin.qq.com"))], [b"z" * 500])  # fmt: skip
    with Store(tmp_path / "case.sqlite") as store:
        import_file(write(tmp_path / "wechat.pcap", pk), store, app=APP)
        r = collect_report(store, enricher=enricher, companies=COMPANIES, generated_at=0)
    lines = [v.text for v in verdict(r)]
    assert (
        "No content was read (3 flows, none inspected), so nothing can be said about personal data." in lines
    )
    unseen = next(t for t in lines if t.startswith("Content was not seen"))
    assert (
        unseen.startswith("Content was not seen for 100 % of flows (3 of 3) and 100 % of bytes")
        and "TLS passthrough 3" in unseen
    )
    assert not any("No personal data was detected" in t for t in lines)
    html = render_html(r)
    assert "flows not inspected" in html and "No content was read" in html


def test_app_metadata_is_not_device_wide(tmp_path: Path, enricher: Enricher) -> None:
    """PCAPdroid names the app: not device-wide, and an OS-looking host it called is the app's."""
    pk = tcp_session(PHONE, 43001, "142.250.186.42", 443, T0, [tls_record(client_hello("safebrowsing.googleapis.com"))], [b"y"])  # fmt: skip
    pk += tcp_session(
        PHONE, 43002, "43.156.32.17", 443, T0 + 1, [tls_record(client_hello("short.weixin.qq.com"))], [b"z"]
    )
    with Store(tmp_path / "case.sqlite") as store:
        import_file(write(tmp_path / "pcapdroid.pcap", pk, trailer=APP), store)
        r = collect_report(store, enricher=enricher, companies=COMPANIES, generated_at=0)
    assert r.attributions == ("app-metadata",) and not r.device_wide and r.background == []
    lines = [v.text for v in verdict(r)]
    assert lines[0].startswith(f"{APP} contacted 2 hosts") and not any(
        "Nothing in the capture" in t for t in lines
    )


def test_capture_of_only_os_traffic_and_local_noise(tmp_path: Path, enricher: Enricher) -> None:
    """Not "empty", not "no traffic was recorded": what it holds is said, and listed apart."""
    with Store(tmp_path / "case.sqlite") as store:
        search = ipaddress.ip_address("142.250.185.101").packed  # the Google search is not OS traffic
        os_only = [(ts, p) for ts, p in os_packets() if search not in (p.src, p.dst)]
        import_file(write(tmp_path / "idle.pcap", os_only + local_packets()), store, app=APP)
        r = collect_report(store, enricher=enricher, companies=COMPANIES, generated_at=0)
    assert not r.empty and r.destinations == [] and r.background and r.local
    lines = [v.text for v in verdict(r)]
    assert lines[0].startswith(
        "The capture holds only well-known OS traffic and local-network noise (listed apart): no traffic is counted "
        f"for {APP}."
    )
    assert any(t.startswith("Well-known OS traffic, listed apart") for t in lines)
    assert any(t.startswith("Local network: 7 addresses") for t in lines)
    html = render_html(r)
    assert 'id="t-background"' in html and 'id="t-local"' in html and "This case is empty" not in html


@pytest.mark.parametrize(
    ("ip", "port", "reason"),
    [
        ("224.0.0.251", 5353, "mDNS"), ("ff02::fb", 5353, "mDNS"), ("239.255.255.250", 1900, "SSDP"),
        ("224.0.0.252", 5355, "LLMNR"), ("ff02::1:3", 5355, "LLMNR"), ("255.255.255.255", 67, "broadcast"),
        ("10.1.2.255", 138, "broadcast"), ("192.168.0.9", 137, "NetBIOS"), ("192.168.0.9", 68, "DHCP"),
        ("169.254.1.1", 80, "link-local"), ("fe80::1", 5353, "mDNS"), ("ff02::1", 0, "multicast"),
        ("239.1.2.3", 5000, "multicast"), ("0.0.0.0", 68, "unspecified address"), ("::", 0, "unspecified address"),
        ("192.168.0.9", 443, None), ("8.8.8.8", 5353, None), ("8.8.8.255", 53, None), ("not an ip", 1, None),
        (None, None, None), ("[ff02::fb]", 5353, "mDNS"),
    ],
)  # fmt: skip
def test_local_reason(ip: str | None, port: int | None, reason: str | None) -> None:
    assert local_reason(ip, port) == reason


@pytest.mark.parametrize(
    ("names", "port", "protocols", "reason"),
    [
        (("0.android.pool.ntp.org",), 123, ("udp",), "time sync"), ((None,), 123, ("udp",), "time sync"),
        ((None,), 123, ("tcp",), None), (("time.android.com",), 443, (), "time sync"),
        (("CONNECTIVITYCHECK.GSTATIC.COM.",), 80, (), "connectivity check (Android)"),
        (("connect.rom.miui.com",), 80, (), "connectivity check (Xiaomi)"),
        (("x.push.hicloud.com",), 443, (), "push (Huawei)"), (("www.google.com",), 443, (), None),
        (("notmtalk.google.com",), 5228, (), None), (("gstatic.com",), 443, (), None), (("",), None, (), None),
    ],
)  # fmt: skip
def test_os_reason(
    names: tuple[str | None, ...], port: int | None, protocols: tuple[str, ...], reason: str | None
) -> None:
    assert os_reason(names, port, protocols) == reason


def test_hostile_names_are_not_walked() -> None:
    """A 200,000-label host from a hostile capture: no DNS name is that long, so it matches nothing."""
    assert os_reason(["a." * 200_000 + "mtalk.google.com"]) is None
    assert os_reason(["\u202emtalk.google.com", "\x00", "..."]) is None


def test_classify_per_app_evidence_wins_over_the_table() -> None:
    assert classify(ip="142.250.186.42", port=443, names=("safebrowsing.googleapis.com",), attribution=("label",)) \
        == classify(ip="142.250.186.42", port=443, names=("safebrowsing.googleapis.com",))  # fmt: skip
    assert (
        classify(
            ip="142.250.186.42", port=443, names=("safebrowsing.googleapis.com",), attribution=("proxy",)
        )
        is None
    )
    # local noise is local whoever sent it
    local = classify(ip="224.0.0.251", port=5353, attribution=("app-metadata",))
    assert local is not None and (local.kind, local.reason) == ("local", "mDNS")
    check = classify(ip="142.250.185.100", port=80, names=("www.google.com",), check_path_only=True)
    assert check is not None and (check.kind, check.reason) == ("os", "connectivity check (Android)")


@pytest.mark.slow
@needs_chromium
def test_new_sentences_in_chromium(device_case: Path, enricher: Enricher, tmp_path: Path) -> None:
    """The verdict's new sentences and the tables apart, as rendered by real headless chromium."""
    page = tmp_path / "report.html"
    with Store(device_case) as store:
        write_report(store, page, enricher=enricher, companies=COMPANIES, generated_at=0)
    dom, err = run_chromium(tmp_path, page.as_uri(), "--dump-dom", "--virtual-time-budget=2000")
    assert console_messages(err) == []
    verdict_html = dom[dom.index('id="verdict"') : dom.index('id="where"')]
    items = [re.sub(r"<[^>]+>", "", li) for li in re.findall(r"<li[^>]*>(.*?)</li>", verdict_html, re.S)]
    assert items[0].startswith(
        f"Nothing in the capture ties these flows to {APP}: the label covers the whole device"
    )
    assert any(t.startswith("Content was not seen for ") and "TLS passthrough 3" in t for t in items)
    assert any(t.startswith("No personal data was detected in the 2 of ") for t in items)
    assert any(t.startswith("Well-known OS traffic, listed apart") for t in items)
    assert any(t.startswith("Local network: ") and "not counted" in t for t in items)
    # the warn class marks the sentences that limit what the report can say
    assert re.search(r'<li class="warn">Content was not seen', verdict_html)
    apart = dom[dom.index('id="apart"') :]
    assert re.search(r"<h3>Local network: \d+ addresses, not counted</h3>", apart)
