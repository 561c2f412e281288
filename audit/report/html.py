"""The self-contained HTML report: one file, inline CSS/JS, charts as ``data:`` SVG images, no
external requests (enforced by a Content-Security-Policy meta tag).

Rendering goes through an autoescaping Jinja2 template: every string from an app or from traffic
is hostile and is escaped; only our own CSS, JS and base64 chart data are marked safe. No data is
ever put inside the script, which only reads the DOM (sorting and filtering).
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from audit.enrich.company import CompanyLookup
from audit.enrich.geoip import Enricher
from audit.paths import write_atomic
from audit.report import charts
from audit.report.data import UNKNOWN, Capability, ReportData, Share, collect_report
from audit.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerdictLine:
    text: str
    warn: bool = False


def human_bytes(n: float | int | None) -> str:
    if not n:
        return "0 B"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


def utc(ts: object) -> str:
    """A Unix time as UTC text; "" for none, and a note instead of a crash for a value no calendar
    holds (a case file may hold anything: 1e300, NaN, text)."""
    if ts is None:
        return ""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(ts)))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return "(invalid time)"


def _top(shares: Sequence[Share], n: int = 3) -> str:
    parts = [
        f"{s.key} {s.byte_share * 100:.0f}% of bytes ({s.flow_share * 100:.0f}% of flows)" for s in shares[:n]
    ]
    rest = len(shares) - n
    return "; ".join(parts) + (f"; {rest} more" if rest > 0 else "")


def shorten(value: object, limit: int = 80) -> str:
    """A long value (a 400-character URL) cut in the middle to ``limit`` characters: its start
    (scheme, host, path) and its end stay readable. The template puts the whole value in a
    ``title`` attribute (escaped) for hover."""
    text = "" if value is None else str(value)
    if len(text) <= limit:
        return text
    tail = max(8, limit // 5)
    return text[: limit - tail - 1] + "…" + text[-tail:]


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _some(names: Sequence[str], n: int = 5) -> str:
    """``a, b, c`` or ``a, b, c and 4 more``: a list in a sentence, never ending in ``…``."""
    rest = len(names) - n
    return ", ".join(names[:n]) + (f" and {rest} more" if rest > 0 else "")


def _capability_text(rows: Sequence[Capability], what: str) -> str:
    return "; ".join(
        f"{c.country} {_plural(c.count, what)}" + (f" ({_some(c.names, 3)})" if c.names else "")
        for c in rows[:6]
    ) + (f"; {len(rows) - 6} more countries" if len(rows) > 6 else "")


def verdict(r: ReportData) -> list[VerdictLine]:
    """The plain-words summary at the top of the report."""
    if r.empty:
        return [VerdictLine(
            f"This case is empty{'' if r.title == 'empty case' else f' for {r.title}'}: no APK was scanned and no "
            "traffic was recorded, so there is nothing to report. Scan the app (audit scan --db) or import a "
            "capture (audit import), then write the report again."
        )]  # fmt: skip
    lines: list[VerdictLine] = []
    static_hosts = len(r.comparison.both) + len(r.comparison.static_only)
    if not r.destinations:
        recorded = "No traffic was recorded for"
        if r.background or r.local:
            recorded = ("The capture holds only well-known OS traffic and local-network noise (listed apart): no "
                        "traffic is counted for")  # fmt: skip
        lines.append(
            VerdictLine(
                f"{recorded} {r.title}. What follows is what the app's code could do, not what it "
                f"did: {_plural(static_hosts, 'endpoint host')} and {_plural(len(r.sdks), 'SDK')} in the code.",
                warn=bool(r.background or r.local),
            )
        )
        if r.could_send_hosts:
            lines.append(VerdictLine(
                "Could send to, by the home country of the company owning each host in the code (capability, "
                "not observed traffic): " + _capability_text(r.could_send_hosts, "host") + "."
            ))  # fmt: skip
        if r.could_send_sdks:
            lines.append(VerdictLine(
                "SDKs whose code is in the app, by their owner's home country (they could send to their owner; "
                "not observed): " + _capability_text(r.could_send_sdks, "SDK") + "."
            ))  # fmt: skip
    else:
        unknown_owner = next((s.hosts for s in r.companies if s.key == UNKNOWN), 0)
        own = r.first_party_hosts
        n_dest = len(r.destinations)
        if r.device_wide:
            lines.append(VerdictLine(device_wide_text(r), warn=True))
        subject = f"The capture labelled {r.title}" if r.device_wide else r.title
        lines.append(
            VerdictLine(
                f"{subject} contacted {_plural(r.hosts_contacted, 'host')} "
                f"({_plural(n_dest, 'destination')} by host, IP and port) in {_plural(r.total_flows, 'flow')} "
                f"carrying {human_bytes(r.total_bytes)}, on servers in "
                f"{_plural(len(r.known_countries), 'country', 'countries')}, owned by "
                f"{_plural(len(r.known_companies), 'known company', 'known companies')}"
                + (f" and the app vendor itself ({_plural(own, 'first-party host')})" if own else "")
                + (f"; owner unknown for {_plural(unknown_owner, 'host')}." if unknown_owner else ".")
            )
        )
        lines.append(VerdictLine(
            "By server location (where the servers are): " + _top(r.server_countries) + f"; {r.seen_from}."
        ))  # fmt: skip
        lines.append(
            VerdictLine(
                "By company home country (whose jurisdiction the receiving companies answer to): "
                + _top(r.company_countries)
                + "."
            )
        )
        recipients = [s for s in r.companies if s.key != UNKNOWN]
        if recipients:
            lines.append(
                VerdictLine(
                    "Largest recipients: "
                    + "; ".join(
                        f"{s.key}{f' ({s.note})' if s.note else ''} {s.byte_share * 100:.0f}% of bytes"
                        for s in recipients[:4]
                    )
                    + "."
                )
            )
    if r.receivers:
        parts = []
        for d in r.receivers[:6]:
            who = ", ".join(d.companies[:3]) or "unknown owners"
            parts.append(f"{d.data_type} → {_plural(len(d.hosts), 'host')} ({who})")
        more = len(r.receivers) - 6
        lines.append(
            VerdictLine(
                f"Personal data seen in traffic ({_plural(len(r.receivers), 'type')}): "
                + "; ".join(parts)
                + (f"; {more} more." if more > 0 else "."),
                warn=True,
            )
        )
    elif r.destinations:
        lines.append(VerdictLine(no_data_text(r), warn=not r.inspected_flows))
    if r.destinations:
        lines.append(VerdictLine(inspection_text(r), warn=r.unread_flows > 0))
    if r.pinned:
        flows = sum(int(p["flows"]) for p in r.pinned)
        names = ", ".join(sorted({str(p["host"]) for p in r.pinned})[:5])
        lines.append(
            VerdictLine(
                f"{_plural(flows, 'connection')} to {_plural(len({p['host'] for p in r.pinned}), 'host')} refused "
                f"interception (certificate pinning or TLS failure) and could not be inspected: {names}"
                + (" …" if len(r.pinned) > 5 else "."),
                warn=True,
            )
        )
    if r.background:
        lines.append(VerdictLine(background_text(r), warn=r.device_wide))
    if r.local:
        lines.append(VerdictLine(local_text(r)))
    read, sealed = r.capture_decryption
    if read:
        lines.append(
            VerdictLine(
                f"{_plural(read, 'request')} {'was' if read == 1 else 'were'} read from captured TLS decrypted with "
                "its session keys; "
                + (
                    f"{_plural(sealed, 'TLS connection')} of the captures {'was' if sealed == 1 else 'were'} not "
                    "decrypted (no usable session keys) and not inspected."
                    if sealed
                    else "every captured TLS connection was decrypted."
                )  # fmt: skip
            )
        )
    if r.scans and r.destinations:
        cmp = r.comparison
        owners = sorted({f"{s['owner']} ({s['owner_country']})" for s in r.sdks if s["owner"]})
        lines.append(
            VerdictLine(
                f"The APK contains {_plural(static_hosts, 'endpoint host')} and {_plural(len(r.sdks), 'SDK')}"
                + (f" from {_some(owners)}" if owners else "")
                + f"; {len(cmp.both)} of the contacted hosts appear in the binary and "
                f"{len(cmp.observed_only)} were configured at run time (absent from the binary)."
            )
        )
    return lines


def _pct(part: int, whole: int) -> str:
    """A share as the report writes it: ``100 %``, ``35 %``, ``<1 %`` (never 0 % of something)."""
    if not whole:
        return "0 %"
    share = part * 100 / whole
    return "<1 %" if 0 < share < 1 else (">99 %" if 99 < share < 100 else f"{share:.0f} %")


def _reasons(rows: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{why} {n}" for why, n in rows)


def inspection_text(r: ReportData) -> str:
    """How much of the counted traffic was read: the share of flows and bytes whose content was
    not seen, and why (issue 12: never "every connection could be inspected" when some were not)."""
    total, unread = r.total_flows, r.unread_flows
    if not unread:
        return f"The content of every counted flow was read ({_plural(total, 'flow')}, {human_bytes(r.total_bytes)})."
    return (
        f"Content was not seen for {_pct(unread, total)} of flows ({unread} of {total}) and "
        f"{_pct(r.unread_bytes, r.total_bytes)} of bytes ({human_bytes(r.unread_bytes)} of "
        f"{human_bytes(r.total_bytes)}): {_reasons(r.unread_reasons)}. What they carried, personal data "
        "included, is unknown."
    )


def no_data_text(r: ReportData) -> str:
    """The "no personal data" sentence, naming what it covers."""
    read, total = r.inspected_flows, r.total_flows
    if not read:
        return (
            f"No content was read ({_plural(total, 'flow')}, none inspected), so nothing can be said about "
            "personal data."
        )
    if read < total:
        return f"No personal data was detected in the {read} of {total} flows whose content was read."
    return f"No personal data was detected in the {_plural(total, 'flow')}, all of whose content was read."


def device_wide_text(r: ReportData) -> str:
    return (
        f"Nothing in the capture ties these flows to {r.title}: the label covers the whole device (only the "
        "analyst's label attributes them, no per-app metadata or proxy process), so they may include other apps' "
        "and the system's traffic."
    )


def background_text(r: ReportData) -> str:
    flows = sum(d.flows for d in r.background)
    hosts = sorted({d.host or d.ip or "" for d in r.background})
    kinds = sorted({d.background_reason or "" for d in r.background} - {""})
    return (
        f"Well-known OS traffic, listed apart and not counted as {r.title}'s: {_plural(len(hosts), 'host')} in "
        f"{_plural(flows, 'flow')} ({_some(kinds, 6)}): {_some(hosts, 4)}."
    )


def local_text(r: ReportData) -> str:
    addresses = sorted({d.ip or d.host or "" for d in r.local})
    kinds = sorted({d.background_reason or "" for d in r.local} - {""})
    return (
        f"Local network: {_plural(len(addresses), 'address', 'addresses')}, not counted "
        f"({_some(kinds, 5)}; {_plural(sum(d.flows for d in r.local), 'flow')}): traffic that stays on the "
        "network segment and reaches no server."
    )


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _asset(name)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.filters["human_bytes"] = human_bytes
    env.filters["utc"] = utc
    env.filters["shorten"] = shorten
    return env


def _asset(name: str) -> str:
    return resources.files("audit.report").joinpath(name).read_text(encoding="utf-8")


def _b64(svg: bytes) -> str:
    return base64.b64encode(svg).decode("ascii")


def render_charts(r: ReportData) -> dict[str, Any]:
    """Every chart of the report as base64 SVG (plus what the template says about them)."""
    shares = []
    for rows, title, caption in (
        (
            r.server_countries,
            "By server country",
            f"Where the servers are (geo-IP of the contacted IP), {r.seen_from}.",
        ),
        (
            [s for s in r.companies if s.key != UNKNOWN] or r.companies,
            "By company",
            "Who owns the contacted domains (the app vendor's own servers included).",
        ),
        (r.company_countries, "By company home country", "Where the owning companies are based."),
    ):
        if rows:
            data = [(s.key, s.flow_share, s.byte_share) for s in rows]
            shares.append({"data": _b64(charts.share_chart(data, title)), "alt": title, "caption": caption})
    diagram = charts.diagram_from_graph(r.graph)
    timeline = charts.timeline_chart(r.timeline)
    return {
        "shares": shares,
        "diagram": _b64(charts.flow_diagram_chart(diagram)),
        "grouped_hosts": diagram.grouped_hosts,
        "timeline": _b64(timeline) if timeline else None,
    }


def render_html(r: ReportData) -> str:
    """The report page for already collected data."""
    template = _environment().get_template("template.html")
    return template.render(
        r=r,
        verdict=verdict(r),
        no_data=no_data_text(r),
        inspection=inspection_text(r),
        charts=render_charts(r),
        generated=utc(r.generated_at),
        version=r.tool_version,
        css=Markup(_asset("report.css")),
        js=Markup(_asset("report.js")),
    )


def write_report(
    store: Store,
    output: str | os.PathLike[str],
    app: str | None = None,
    *,
    enricher: Enricher | None = None,
    companies: CompanyLookup | None = None,
    generated_at: float | None = None,
) -> ReportData:
    """Collect, render and write the report to ``output`` (written only once rendering succeeded)."""
    r = collect_report(store, app, enricher=enricher, companies=companies, generated_at=generated_at)
    text = render_html(r)
    write_page(output, text)
    log.info("report written to %s (%d bytes)", output, len(text))
    return r


def write_page(output: str | os.PathLike[str], text: str) -> None:
    """Write a rendered page whole or not at all (missing folders are created)."""
    write_atomic(output, text)
