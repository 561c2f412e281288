"""Open the report of a hostile case in real headless chromium: it renders, our script runs, no
console error or blocked request is logged, and no injected script or handler runs.

The page's Content-Security-Policy (default-src 'none') makes chromium log every attempted request
as a console message, so "no console message" also means "no network request". A screenshot is
saved to test-artifacts/report.png for a human look.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audit.enrich.geoip import Enricher
from audit.models import Connection, DnsRecord
from audit.report.html import write_report
from audit.store import Store
from tests.helpers.browser import console_messages, needs_chromium, run_chromium
from tests.helpers.cases import COMPANIES, make_case

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.slow, needs_chromium]


#: A 446-character URL (issue 13: one such URL made the Endpoints table 3,880 px wide).
LONG_URL = (
    "https://log.example-messenger.com/collect/v2/" + "/".join(f"segment{i:03d}" for i in range(36)) + "?q=1"
)
#: A name looked up and never contacted, hostile (issue 12's "Looked up, not contacted" section).
LOOKED_UP = '<img src=x onerror="document.documentElement.dataset.pwned=1">.adjust.com'
#: Viewport widths the report must read at without the page scrolling sideways.
WIDTHS = (1024, 1400, 1920)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hostile case, plus what made the layout break in issue 13: a 446-character URL in the
    code and traffic from 19 input files with their own labels."""
    from dataclasses import replace

    from audit.models import Endpoint, Source

    store = Store(":memory:")
    scan = make_case(store, evil=True)
    long_ep = Endpoint(LONG_URL, "log.example-messenger.com", "example-messenger.com", "url",
                       sources=(Source("dex", "classes.dex"),))  # fmt: skip
    store.add_scan(replace(scan, endpoints=(*scan.endpoints, long_ep)), app="com.example.messenger")
    store.add_connections(
        Connection(1_700_000_100.0 + i, "pcap", "https", "passthrough", f"capture-{i:02d}.pcapng", "cdn.example.net",
                   ip="151.101.1.69", port=443, bytes_in=100 * i)
        for i in range(19)
    )  # fmt: skip
    for i in range(19):
        store.record_input(
            "pcap", f"/captures/device-{i:02d}/capture-{i:02d}.pcapng", "cd" * 32, f"capture-{i:02d}.pcapng"
        )
    store.add_dns(
        [
            DnsRecord(
                1_700_000_050.0, "pcap", LOOKED_UP, answers=("185.151.204.6", "app.adjust.com.cdn.example")
            ),
            DnsRecord(1_700_000_051.0, "pcap", "x" * 60 + ".adjust.com"),
        ]
    )  # issue 12: looked up, not contacted
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(store, path, enricher=Enricher(), companies=COMPANIES)
    return path


def test_renders_without_errors_and_injection(report: Path, tmp_path: Path) -> None:
    dom, err = run_chromium(tmp_path, report.as_uri(), "--dump-dom", "--virtual-time-budget=2000")
    assert console_messages(err) == []
    html_tag = re.search(r"<html[^>]*>", dom)
    assert html_tag is not None
    assert 'class="js"' in html_tag.group(0)  # our script ran to its end under the CSP
    assert "data-pwned" not in html_tag.group(0)  # the injected onerror handler did not
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    # the title names the app by its (hostile) package, escaped; the injected script would have set it to PWNED
    assert (
        title is not None
        and title.group(1).startswith("Data-flow audit: ")
        and "&lt;script&gt;" in title.group(1)
    )
    assert "capture-18" not in title.group(1)  # 19 labels are not the title
    assert dom.count("<script") == 1
    # the hostile strings are there, as text
    assert "&lt;script&gt;document.title=" in dom
    for attr in re.findall(r'\s(?:src|href)="([^"]*)"', dom):
        assert attr.startswith(("#", "data:image/svg+xml;base64,")), attr[:80]


def test_screenshot(report: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    _, err = run_chromium(tmp_path, report.as_uri(), f"--screenshot={shot}", "--window-size=1400,2600",
                           "--hide-scrollbars")  # fmt: skip
    assert console_messages(err) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


#: Appended to a copy of the report (the page's CSP allows inline scripts, never requests): after
#: layout, it writes the page's scroll width, the viewport width and the widest elements that stick
#: out of the viewport outside a scrolling box into an attribute that --dump-dom shows.
PROBE = """<script>
window.addEventListener("load", function () {
  var root = document.documentElement, out = [];
  Array.prototype.forEach.call(document.querySelectorAll("body *"), function (el) {
    var r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 1 && !el.closest(".scroll, .grid2 > div")) {
      out.push(el.tagName + (el.id ? "#" + el.id : "") + ":" + Math.round(r.right));
    }
  });
  root.setAttribute("data-probe", root.scrollWidth + " " + window.innerWidth + " " + out.slice(0, 5).join(","));
  root.setAttribute("data-title", document.title === "PWNED" ? "pwned" : "ok");
});
</script>"""


@pytest.mark.parametrize("width", WIDTHS)
def test_no_horizontal_overflow(report: Path, tmp_path: Path, width: int) -> None:
    """Issue 13: readable from 1024 to 1920 px: the page never scrolls sideways (wide tables scroll
    inside their box, long values wrap or are shortened), hostile strings stay text; a screenshot
    per width goes to test-artifacts/."""
    probe = tmp_path / "probe.html"
    probe.write_text(
        report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    dom, err = run_chromium(tmp_path, probe.as_uri(), "--dump-dom", "--virtual-time-budget=3000",
                             f"--window-size={width},900", "--hide-scrollbars")  # fmt: skip
    assert console_messages(err) == []
    tag = re.search(r"<html[^>]*>", dom)
    assert tag is not None
    m = re.search(r'data-probe="(\d+) (\d+) ([^"]*)"', tag.group(0))
    assert m is not None, tag.group(0)
    scroll_width, inner_width, offenders = int(m.group(1)), int(m.group(2)), m.group(3)
    assert inner_width == width
    assert scroll_width <= inner_width, f"page is {scroll_width} px wide at {width} px: {offenders}"
    assert offenders == ""
    assert 'data-title="ok"' in tag.group(0) and "data-pwned" not in tag.group(0)
    # the long URL is shortened in the table, whole (escaped) on hover
    assert f'title="{LONG_URL}"' in dom and f">{LONG_URL}<" not in dom
    assert "&lt;script&gt;document.title=" in dom
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-{width}.png"
    shot.unlink(missing_ok=True)
    _, err = run_chromium(tmp_path, report.as_uri(), f"--screenshot={shot}", f"--window-size={width},2400",
                           "--hide-scrollbars")  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_looked_up_not_contacted_section(report: Path, tmp_path: Path) -> None:
    """Issue 12: the names looked up and not contacted are shown, escaped, with their answers."""
    dom, err = run_chromium(tmp_path, report.as_uri(), "--dump-dom", "--virtual-time-budget=2000")
    assert console_messages(err) == []
    section = dom.split('<section id="looked-up">', 1)[1].split("</section>", 1)[0]
    assert "<h2>Looked up, not contacted</h2>" in section
    assert "2 names the traffic asked DNS for" in section and "185.151.204.6" in section
    assert "&lt;img src=x onerror=" in section and "<img" not in section
    assert '<a href="#looked-up">' in dom
    tag = re.search(r"<html[^>]*>", dom)
    assert tag is not None and "data-pwned" not in tag.group(0)
