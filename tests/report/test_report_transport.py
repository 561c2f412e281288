"""The report's transport-security section and the static evidence next to connections that refused
interception: the messenger fixture pins its gateway in its network security config and its code."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from audit.enrich.geoip import Enricher
from audit.models import Connection, TransportSecurity
from audit.report.data import collect_report
from audit.report.html import render_html
from audit.static.scanner import scan_path
from audit.store import Store

APK = Path(__file__).resolve().parents[1] / "fixtures" / "apks" / "messenger.apk"
APP = "com.example.messenger"


def _case(scan_transport: TransportSecurity | None = None) -> Store:
    result = scan_path(APK)
    if scan_transport is not None:
        result = replace(result, transport=scan_transport)
    s = Store(":memory:")
    s.add_scan(result)
    s.add_connections([
        Connection(ts=1.0, source="live", protocol="tls", tls="failed", app=APP, host="gw.messenger-example.cn",
                   sni="gw.messenger-example.cn", ip="43.156.32.20", port=443, error="certificate unknown"),
        Connection(ts=2.0, source="live", protocol="tls", tls="failed", app=APP, host="other.example.net",
                   sni="other.example.net", ip="198.51.100.7", port=443),
    ])  # fmt: skip
    return s


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher(asn_table=False, location_db=False)


def test_failed_connection_names_the_pin(enricher: Enricher) -> None:
    r = collect_report(_case(), enricher=enricher, generated_at=0)
    by_host = {p["host"]: p["static"] for p in r.pinned}
    assert by_host["gw.messenger-example.cn"] == (
        "pinned for gw.messenger-example.cn in res/xml/network_security_config.xml (2 pins, expire 2027-06-30)"
    )
    # No pin-set covers this host: the code's pins are mentioned, without claiming they cover it.
    assert by_host["other.example.net"].startswith(
        "2 certificate pins in the code (com.example.messenger.net.GatewayPins)"
    )
    html = render_html(r)
    assert '<section id="transport">' in html and 'href="#transport"' in html
    assert (
        "Cleartext HTTP by default: <b>blocked</b>; allowed for legacy.messenger-example.cn, 10.0.0.2" in html
    )
    assert "User-installed CAs (e.g. mitmproxy's): <b>not trusted</b>" in html
    assert '<tr><td>gw.messenger-example.cn</td><td class="num">2</td><td>2027-06-30</td>' in html


def test_no_pins_anywhere(enricher: Enricher) -> None:
    r = collect_report(_case(TransportSecurity(target_sdk=23)), enricher=enricher, generated_at=0)
    assert all(p["static"] == "" for p in r.pinned)
    html = render_html(r)
    assert "No certificate pins found" in html
    assert "Cleartext HTTP by default: <b>allowed</b>" in html and "<b>trusted</b>" in html


def test_hostile_config_values_are_escaped(enricher: Enricher) -> None:
    from audit.models import DomainRule

    evil = "<script>alert(1)</script>"
    t = TransportSecurity(
        domains=(DomainRule(evil, False, True, ("sha256/" + "A" * 43 + "=",), evil, (), evil),)
    )
    html = render_html(collect_report(_case(t), enricher=enricher, generated_at=0))
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_evidence_only_from_the_app_that_connected(enricher: Enricher) -> None:
    """In a case with two apps, the messenger's pins are not evidence for the other app's failure."""
    s = _case()
    s.add_connections([Connection(ts=3.0, source="live", protocol="tls", tls="failed", app="com.other",
                                  host="gw.messenger-example.cn", sni="gw.messenger-example.cn", ip="43.156.32.21",
                                  port=443)])  # fmt: skip
    r = collect_report(s, enricher=enricher, generated_at=0)
    by_ip = {p["ip"]: p["static"] for p in r.pinned}
    assert by_ip["43.156.32.20"].startswith("pinned for gw.messenger-example.cn")
    assert by_ip["43.156.32.21"] == ""  # com.other: no scan, no claim


def test_expired_pin_set_and_user_ca_note(enricher: Enricher) -> None:
    late = 1_900_000_000  # 2030: the fixture's pin-set expired on 2027-06-30
    r = collect_report(_case(), enricher=enricher, generated_at=late)
    by_host = {p["host"]: p["static"] for p in r.pinned}
    assert by_host["gw.messenger-example.cn"] == (
        "pin-set for gw.messenger-example.cn in res/xml/network_security_config.xml expired 2027-06-30 (no longer enforced)"
    )
    assert '2027-06-30 <span class="tag">expired</span>' in render_html(r)
    # No pins anywhere, target SDK 33: user CAs are not trusted, the likeliest reason.
    plain = collect_report(_case(TransportSecurity(target_sdk=33)), enricher=enricher, generated_at=0)
    assert {p["static"] for p in plain.pinned} == {
        "no pin found; the app does not trust user-installed CAs (target SDK 33): interception needs the CA in the system store"
    }
