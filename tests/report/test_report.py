"""The HTML report: numbers, escaping, self-containment, determinism, charts."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audit.enrich.geoip import Enricher
from audit.models import Connection
from audit.report import charts
from audit.report.data import UNKNOWN, ReportData, collect_report
from audit.report.html import render_html, verdict, write_report
from audit.store import Store
from tests.helpers.cases import APP, COMPANIES, EVIL, IP_BUGLY, make_case


class _Tags(HTMLParser):
    """Collects tags and attributes as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(html)
    return p.tags


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher()


@pytest.fixture(scope="module")
def evil_html(enricher: Enricher) -> str:
    store = Store(":memory:")
    make_case(store, evil=True)
    return render_html(collect_report(store, enricher=enricher, companies=COMPANIES, generated_at=0))


def test_hostile_strings_render_as_text(evil_html: str) -> None:
    tags = _tags(evil_html)
    scripts = [a for t, a in tags if t == "script"]
    assert len(scripts) == 1  # ours, at the end
    assert not [a for t, a in tags if t == "img" and a.get("onerror")]
    assert not any(k.startswith("on") for _, a in tags for k in a)
    assert "&lt;script&gt;document.title=&#34;PWNED&#34;" in evil_html
    # issue 13: the title names the app by its package, here a hostile one: escaped, never markup
    title = evil_html.split("<title>")[1].split("</title>")[0]
    assert "<" not in title and "&lt;script&gt;document.title=&#34;PWNED&#34;" in title


def test_self_contained(evil_html: str) -> None:
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', evil_html)
    assert csp and "default-src 'none'" in csp.group(1) and "img-src data:" in csp.group(1)
    for tag, attrs in _tags(evil_html):
        for key in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith(("#", "data:image/svg+xml;base64,")), (tag, key, value[:60])
    assert "@import" not in evil_html and "url(" not in evil_html


def test_charts_are_svg_images(evil_html: str) -> None:
    imgs = [a["src"] for t, a in _tags(evil_html) if t == "img" and a.get("src")]
    assert len(imgs) >= 5  # 3 share charts, diagram, timeline
    for src in imgs:
        svg = base64.b64decode(src.split(",", 1)[1])
        assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
        assert b"<script" not in svg


@pytest.fixture(scope="module")
def plain(enricher: Enricher) -> tuple[Store, ReportData, str]:
    store = Store(":memory:")
    make_case(store)
    r = collect_report(store, enricher=enricher, companies=COMPANIES, generated_at=0)
    return store, r, render_html(r)


def test_numbers(plain: tuple[Store, ReportData, str], enricher: Enricher) -> None:
    store, r, _ = plain
    assert r.total_flows == store.connection_count() == 27
    assert r.hosts_contacted == 4
    assert sum(s.flow_share for s in r.server_countries) == pytest.approx(1.0)
    assert sum(s.byte_share for s in r.company_countries) == pytest.approx(1.0)
    # the two aggregates are different facts: Tencent's host counts under CN as home country and
    # under wherever geo-IP puts its server
    cc = {s.key: s for s in r.company_countries}
    assert cc["CN"].flows == 5 and cc["DE"].flows == 20 and cc[UNKNOWN].hosts == 1
    server = enricher.ip_info(IP_BUGLY).country or UNKNOWN
    assert any(s.key == server and s.flows >= 5 for s in r.server_countries)
    assert [(d.data_type, d.hosts) for d in r.receivers] == [
        ("android_id", ("android.bugly.qq.com",)),
        ("imei", ("api.example-messenger.com",)),
    ]
    assert [p["host"] for p in r.pinned] == ["pinned.example.org"]
    assert r.comparison.both == ("android.bugly.qq.com", "api.example-messenger.com")
    assert r.comparison.static_only == ("graph.facebook.com",)
    assert r.comparison.observed_only == ("cdn.runtime-config.net", "pinned.example.org")
    assert r.comparison.placeholders == 1
    assert {f["masked"] for f in r.findings} == {"35•••••••••1234", "ab••••••••cd"}
    lines = [v.text for v in verdict(r)]
    # every connection of the case is tied to the app by its label only: device-wide (issue 12)
    assert lines[0].startswith(
        f"Nothing in the capture ties these flows to {APP}: the label covers the whole device"
    )
    assert lines[1].startswith(
        f"The capture labelled {APP} contacted 4 hosts (4 destinations by host, IP and port) in 27 flows"
    )
    assert any("imei → 1 host (Example Messenger Ltd (DE))" in t for t in lines)
    assert any("pinned.example.org" in t and "could not be inspected" in t for t in lines)


def test_methodology_lists_inputs_and_databases(
    plain: tuple[Store, ReportData, str], enricher: Enricher
) -> None:
    _, _, html = plain
    assert "ab" * 32 in html  # the APK's SHA-256
    assert str(enricher.label) in html
    assert "1970-01-01 00:00:00 UTC" in html


def test_deterministic(plain: tuple[Store, ReportData, str], enricher: Enricher) -> None:
    store, _, html = plain
    assert render_html(collect_report(store, enricher=enricher, companies=COMPANIES, generated_at=0)) == html


def test_static_only_and_empty_cases(enricher: Enricher, tmp_path: Path) -> None:
    store = Store(":memory:")
    make_case(store, traffic=False)
    r = write_report(store, tmp_path / "static.html", enricher=enricher, companies=COMPANIES)
    html = (tmp_path / "static.html").read_text(encoding="utf-8")
    assert "No traffic was recorded" in html and r.total_flows == 0
    assert "graph.facebook.com" in html
    write_report(Store(":memory:"), tmp_path / "empty.html", enricher=enricher, companies=COMPANIES)
    assert "No APK scanned in this case" in (tmp_path / "empty.html").read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_static_only_verdict_answers_what_it_can(enricher: Enricher) -> None:
    """Issue 13: a case with a scan and no traffic says where the data could go, by the home country of
    the companies owning the hosts in the code and of the SDK owners, labelled as capability."""
    store = Store(":memory:")
    make_case(store, traffic=False)
    r = collect_report(store, enricher=enricher, companies=COMPANIES, generated_at=0)
    assert [(c.country, c.count, c.names) for c in r.could_send_hosts] == [
        ("CN", 1, ("Tencent",)), ("DE", 1, ("Example Messenger Ltd",)), ("US", 1, ("Meta Platforms",)),
    ]  # fmt: skip
    assert [(c.country, c.names) for c in r.could_send_sdks] == [
        ("CN", ("Tencent Bugly (Tencent)",)), ("US", ("Facebook SDK (Meta Platforms)",)),
    ]  # fmt: skip
    lines = [v.text for v in verdict(r)]
    assert lines[0] == (f"No traffic was recorded for {APP}. What follows is what the app's code could do, not "
                        "what it did: 3 endpoint hosts and 2 SDKs in the code.")  # fmt: skip
    assert lines[1].startswith("Could send to, by the home country of the company owning each host in the code "
                               "(capability, not observed traffic): CN 1 host (Tencent); DE 1 host")  # fmt: skip
    assert lines[2].endswith("CN 1 SDK (Tencent Bugly (Tencent)); US 1 SDK (Facebook SDK (Meta Platforms)).")
    assert not any(".." in line or "…." in line for line in lines)  # the double period of issue 13
    html = render_html(r)
    assert "Could send to: hosts in the code, by owning company's home country" in html
    assert "a capability, not observed traffic" in html
    assert "No traffic recorded: nothing was contacted" not in html


def test_empty_case_says_only_that_it_is_empty(enricher: Enricher) -> None:
    r = collect_report(Store(":memory:"), enricher=enricher, companies=COMPANIES, generated_at=0)
    assert r.empty and r.title == "empty case"
    lines = [v.text for v in verdict(r)]
    assert len(lines) == 1 and lines[0].startswith(
        "This case is empty: no APK was scanned and no traffic was recorded"
    )
    html = render_html(r)
    assert "traffic only" not in html and "static scan only" not in html and "Empty case" in html


def test_title_uses_the_package_and_label_not_every_label(enricher: Enricher) -> None:
    from dataclasses import replace

    store = Store(":memory:")
    scan = make_case(store, app="Weibo")
    store.add_scan(replace(scan, app=replace(scan.app, package="com.sina.weibo")), app="weibo-2")
    store.add_connections(
        Connection(float(i), "pcap", "https", "passthrough", f"capture-{i:02d}", "x.example", ip="1.1.1.1", port=443)
        for i in range(19)
    )  # fmt: skip
    r = collect_report(store, enricher=enricher, companies=COMPANIES, generated_at=0)
    assert r.title == "Weibo and 1 more app"  # its package is its label
    assert len(r.labels) == 21
    html = render_html(r)
    assert "21 app labels in this case: Weibo, capture-00, capture-01, capture-02 and 17 more" in html
    assert "capture-18" in html.split('id="method"')[1]  # every label in the methodology
    only = collect_report(store, "weibo-2", enricher=enricher, companies=COMPANIES, generated_at=0)
    assert only.title == "weibo-2 (com.sina.weibo)"


def test_diagram_bundles_edges_per_sdk() -> None:
    """Issue 13: SDK → host lines no longer leave from one point in one colour: each SDK's edges have
    its own colour and turn at its own x, and the edges of one box are spread over its height."""
    d = charts.Diagram(
        columns=[
            [("app:a", "a", "app")],
            [("sdk:x", "X", "sdk"), ("sdk:y", "Y", "sdk")],
            [("host:1", "1", "host"), ("host:2", "2", "host"), ("host:3", "3", "host")],
            [],
        ],
        edges=[("sdk:x", "host:1", 10, "observed", "contacts"), ("sdk:x", "host:2", 10, "observed", "contacts"),
               ("sdk:y", "host:2", 5, "static", "contacts"), ("sdk:y", "host:3", 5, "static", "contacts"),
               ("app:a", "sdk:x", 0, "static", "includes"), ("app:a", "sdk:y", 0, "static", "includes")],
    )  # fmt: skip
    routes = {(r.u, r.v): r for r in charts.edge_routes(d)}
    x1, x2 = routes["sdk:x", "host:1"], routes["sdk:x", "host:2"]
    y2, y3 = routes["sdk:y", "host:2"], routes["sdk:y", "host:3"]
    assert x1.color == x2.color != y2.color == y3.color
    assert x1.mid == x2.mid != y2.mid == y3.mid
    assert x1.y1 != x2.y1 and x2.y2 != y2.y2  # spread over the source and the target box
    assert routes["app:a", "sdk:x"].color == routes["app:a", "sdk:y"].color  # not an SDK bundle
    assert charts.flow_diagram_chart(d).startswith(b"<?xml")


def test_large_case_groups_small_hosts(enricher: Enricher) -> None:
    store = Store(":memory:")
    store.add_connections(
        Connection(float(i), "har", "https", "intercepted", APP, f"h{i:03d}.example.net", ip=f"198.51.100.{i % 250}",
                   port=443, bytes_in=1000 * i)
        for i in range(80)
    )  # fmt: skip
    r = collect_report(store, enricher=enricher, companies=COMPANIES, generated_at=0)
    d = charts.diagram_from_graph(r.graph, max_hosts=28)
    hosts = d.columns[2]
    assert len(hosts) == 29 and hosts[-1][1] == "other (52 hosts)" and d.grouped_hosts == 52
    assert hosts[0][1] == "h079.example.net"  # busiest first
    assert charts.flow_diagram_chart(d).startswith(b"<?xml")


def test_chart_labels_are_not_mathtext() -> None:
    hostile = r"$\frac{1}{0}$ $\undefinedmacro$ " + EVIL
    svg = charts.share_chart([(hostile, 0.5, 0.25), ("x", 0.5, 0.75)], hostile)
    assert svg.startswith(b"<?xml")
    assert charts.label("a$b") == r"a\$b" and charts.label("x\x00y") == "x?y"
    assert len(charts.label("y" * 100, 20)) == 20
    assert charts.timeline_chart([]) is None
    assert charts.timeline_chart([(1.0, hostile, 5), (2.0, "b", 1)]) is not None


def test_first_party_hosts_are_named_not_unknown(enricher: Enricher) -> None:
    from tests.helpers.cases import make_scan

    store = Store(":memory:")
    scan = make_scan(extra_hosts=("push.example.com",))
    store.add_scan(scan, app=APP)
    store.add_connections(
        [Connection(1_700_000_000.0 + i, "har", "https", "intercepted", APP, "push.example.com", ip="93.184.216.34",
                    port=443, bytes_out=100, bytes_in=100) for i in range(3)]
        + [Connection(1_700_000_100.0, "har", "https", "intercepted", APP, "unknown-tracker.xyz", ip=IP_BUGLY,
                      port=443, bytes_in=10)]
    )  # fmt: skip
    r = collect_report(store, enricher=enricher, companies=COMPANIES, generated_at=0)
    assert r.first_party_hosts == 1 and r.known_companies == []
    companies = {s.key: s for s in r.companies}
    assert companies[f"{APP} (own servers)"].hosts == 1 and companies[UNKNOWN].hosts == 1
    assert {s.key for s in r.company_countries} == {"first party", UNKNOWN}
    first = verdict(r)[1].text  # [0]: the case is device-wide (label attribution only)
    assert (
        "owned by 0 known companies and the app vendor itself (1 first-party host); owner unknown for 1 host."
        in first
    )
    html = render_html(r)
    assert "the app vendor&#39;s own servers" in html or "the app vendor's own servers" in html
    assert (
        'title="host name push.example.com matches the package name com.example.messenger">first party'
        in html
    )


def test_static_claims_follow_their_evidence(enricher: Enricher) -> None:
    """Issue 11: vendors named without code are not SDKs in the report; capabilities stand apart;
    strings that name no server are set aside, not listed among the endpoints."""
    from audit.enrich.company import load_companies
    from audit.static.scanner import scan_path
    from tests.conftest import FIXTURES

    store = Store(":memory:")
    for name in ("privacy_tool", "stubs", "noise"):
        store.add_scan(scan_path(FIXTURES / "labelled" / f"{name}.apk"), app=name)
    data = collect_report(store, enricher=enricher, companies=load_companies(), generated_at=0)
    assert "tencent_mta" not in {s["id"] for s in data.sdks}
    assert {"tencent_mta", "appsflyer", "alipay_sdk"} <= {m["id"] for m in data.mentions}
    assert {c["id"] for c in data.capabilities} == {"advertising_id_gms", "oaid_huawei"}
    values = {e["value"] for e in data.endpoints}
    assert "ro.build.display.id" not in values and "config.de" not in values
    assert "dns.noise-example.cn" in values
    assert data.comparison.set_aside > 0
    html = render_html(data)
    assert "SDK vendors named, code not in the app" in html and "Capabilities in the code" in html
    assert f"{data.comparison.set_aside} more" in html
