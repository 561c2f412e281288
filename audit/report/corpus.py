"""The corpus report: one self-contained HTML file for a whole corpus (``audit corpus -o``), built
like the app report (autoescaping template, inline CSS/JS, charts as ``data:`` SVG, no requests).
"""

from __future__ import annotations

import os
import time

from markupsafe import Markup

from audit import __version__
from audit.corpus import Corpus
from audit.report import charts
from audit.report.html import _asset, _b64, _environment, utc, write_page


def corpus_charts(c: Corpus) -> dict[str, str | None]:
    """Share of apps by SDK owner country, the most common SDKs, SDKs per app (base64 SVG)."""
    if not c.apps:
        return {"countries": None, "sdks": None, "per_app": None}
    countries = [(cc, n / c.apps * 100, f"{n} ({n / c.apps * 100:.0f}%)") for cc, n in c.countries.items()]
    top = [(s["name"], float(s["apps"]), str(s["apps"])) for s in c.sdks if s["apps"]]
    hist = [(int(k), int(v)) for k, v in c.sdks_per_app["histogram"].items()]
    return {
        "countries": _b64(charts.bar_chart(countries, "Apps embedding an SDK from a company based in …",
                                           "share of apps (%), code evidence only")) if countries else None,
        "sdks": _b64(charts.bar_chart(top, "Most common SDKs", "apps embedding the SDK (code evidence)")) if top else None,
        "per_app": _b64(charts.histogram_chart(hist, "SDKs per app", "SDKs with code in the app", "apps")),
    }  # fmt: skip


def render_corpus(c: Corpus, generated_at: float | None = None) -> str:
    template = _environment().get_template("corpus.html")
    return template.render(
        c=c, charts=corpus_charts(c), generated=utc(generated_at if generated_at is not None else time.time()),
        version=__version__, css=Markup(_asset("report.css")), js=Markup(_asset("report.js")),
    )  # fmt: skip


def write_corpus_report(c: Corpus, output: str | os.PathLike[str], generated_at: float | None = None) -> None:
    """Render and write ``output`` (replaced only once rendering succeeded)."""
    write_page(output, render_corpus(c, generated_at))
