"""Report charts: each a function of plain data returning deterministic SVG bytes.

matplotlib ``Figure()`` only (never pyplot global state). ``svg.hashsalt`` is fixed, the date
metadata dropped and text drawn as paths with the bundled DejaVu font, so the same data gives the
same bytes on every machine. Labels come from apps and traffic: they are made printable, shortened
and ``$`` is escaped so that matplotlib never parses them as mathtext.
"""

from __future__ import annotations

import io
import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import networkx as nx
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, PathPatch
from matplotlib.path import Path as MplPath
from matplotlib.ticker import MaxNLocator

RC: Any = {  # Any: matplotlib stubs want Literal keys
    "svg.hashsalt": "dataflow-audit",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9aa3ad",
    "axes.labelcolor": "#333b44",
    "xtick.color": "#4b5560",
    "ytick.color": "#4b5560",
}

FLOW_COLOR = "#2f6fab"
BYTE_COLOR = "#e08a2c"
LAYER_COLORS = {
    "app": ("#1f3b57", "white"),
    "sdk": ("#dbe7f3", "#1f3b57"),
    "host": ("#f4f6f8", "#1d252d"),
    "other": ("#e7e9ec", "#4b5560"),
    "country": ("#d9f0e6", "#11553a"),
    "company": ("#fbe6cf", "#6b3a06"),
}


def label(text: object, limit: int = 40) -> str:
    """A safe chart label: printable, at most ``limit`` characters, ``$`` escaped (no mathtext)."""
    s = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def to_svg(fig: Figure, *, tight: bool = False) -> bytes:
    buf = io.BytesIO()
    svg_rc: Any = {"svg.hashsalt": RC["svg.hashsalt"], "svg.fonttype": RC["svg.fonttype"]}
    with matplotlib.rc_context(svg_rc):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Glyph missing from font" for exotic hostile labels
            fig.savefig(
                buf,
                format="svg",
                metadata={"Date": None, "Creator": None},
                bbox_inches="tight" if tight else None,
            )
    return buf.getvalue()


def _figure(
    width: float, height: float, labels: Sequence[str] = (), bottom: float = 0.5, top: float = 0.35
) -> Figure:
    """A figure with margins (inches) computed from the y tick labels: a layout engine would cost
    two extra draws per chart, which matters for a 2,000-host report."""
    left = 0.25 + 0.062 * max([len(x) for x in labels] + [4])
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=min(left / width, 0.5), right=1 - 0.2 / width, bottom=bottom / height, top=1 - top / height
    )
    return fig


# --------------------------------------------------------------------------------------------
# share bars
# --------------------------------------------------------------------------------------------


def share_chart(rows: Sequence[tuple[str, float, float]], title: str, max_rows: int = 12) -> bytes:
    """Horizontal bars: share of flows and share of bytes per key. ``rows`` = (key, flow_share,
    byte_share), shares in 0..1, already sorted; the tail beyond ``max_rows`` is summed as other."""
    rows = list(rows)
    if len(rows) > max_rows:
        tail = rows[max_rows - 1 :]
        rows = rows[: max_rows - 1] + [
            (f"other ({len(tail)})", sum(r[1] for r in tail), sum(r[2] for r in tail))
        ]
    with matplotlib.rc_context(RC):
        ticks = [label(r[0], 32) for r in rows]
        fig = _figure(6.0, 1.0 + 0.34 * max(1, len(rows)), ticks)
        ax = fig.add_subplot()
        ys = list(range(len(rows)))
        h = 0.38
        ax.barh(
            [y - h / 2 for y in ys], [r[1] * 100 for r in rows], height=h, color=FLOW_COLOR, label="flows"
        )
        ax.barh(
            [y + h / 2 for y in ys], [r[2] * 100 for r in rows], height=h, color=BYTE_COLOR, label="bytes"
        )
        for y, r in zip(ys, rows, strict=True):
            ax.text(
                r[1] * 100 + 0.8, y - h / 2, f"{r[1] * 100:.0f}%", va="center", fontsize=6.5, color="#333b44"
            )
            ax.text(
                r[2] * 100 + 0.8, y + h / 2, f"{r[2] * 100:.0f}%", va="center", fontsize=6.5, color="#333b44"
            )
        ax.set_yticks(ys, ticks)
        ax.invert_yaxis()
        ax.set_xlim(0, 109)
        ax.set_xlabel("share of all observed flows / bytes (%)")
        ax.set_title(label(title, 90), loc="left", fontsize=9, fontweight="bold")
        ax.legend(loc="lower right", frameon=False, fontsize=7)
        ax.grid(axis="x", color="#e3e6ea", linewidth=0.6)
        ax.set_axisbelow(True)
    return to_svg(fig)


def bar_chart(rows: Sequence[tuple[str, float, str]], title: str, xlabel: str, max_rows: int = 15) -> bytes:
    """Horizontal bars of one value per key. ``rows`` = (key, value, text shown at the bar's end),
    already sorted; only the first ``max_rows`` are drawn (the caption says how many there are)."""
    rows = list(rows)[:max_rows]
    with matplotlib.rc_context(RC):
        ticks = [label(r[0], 32) for r in rows]
        fig = _figure(6.0, 0.9 + 0.26 * max(1, len(rows)), ticks)
        ax = fig.add_subplot()
        ys = list(range(len(rows)))
        top = max([r[1] for r in rows] + [1e-9])
        ax.barh(ys, [r[1] for r in rows], height=0.62, color=FLOW_COLOR)
        for y, r in zip(ys, rows, strict=True):
            ax.text(r[1] + top * 0.01, y, label(r[2], 20), va="center", fontsize=6.5, color="#333b44")
        ax.set_yticks(ys, ticks)
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.15)
        ax.set_xlabel(label(xlabel, 90))
        ax.set_title(label(title, 90), loc="left", fontsize=9, fontweight="bold")
        ax.grid(axis="x", color="#e3e6ea", linewidth=0.6)
        ax.set_axisbelow(True)
    return to_svg(fig)


def histogram_chart(counts: Sequence[tuple[int, int]], title: str, xlabel: str, ylabel: str) -> bytes:
    """Vertical bars: how many items (``ylabel``) have each value (``xlabel``); ``counts`` =
    (value, items) for every value from 0 up."""
    counts = list(counts)
    with matplotlib.rc_context(RC):
        fig = _figure(6.0, 2.6, bottom=0.55)
        ax = fig.add_subplot()
        xs = [c[0] for c in counts]
        ax.bar(xs, [c[1] for c in counts], width=0.8, color=FLOW_COLOR)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xticks(xs if len(xs) <= 30 else xs[:: max(1, len(xs) // 15)])
        ax.set_xlabel(label(xlabel, 90))
        ax.set_ylabel(label(ylabel, 60))
        ax.set_title(label(title, 90), loc="left", fontsize=9, fontweight="bold")
        ax.grid(axis="y", color="#e3e6ea", linewidth=0.6)
        ax.set_axisbelow(True)
    return to_svg(fig)


# --------------------------------------------------------------------------------------------
# timeline
# --------------------------------------------------------------------------------------------


def timeline_chart(
    events: Sequence[tuple[float, str, int]], max_hosts: int = 14, bins: int = 72
) -> bytes | None:
    """Flows over the capture: one row per busiest host, dots sized by flows per time bin.
    ``events`` = (unix ts, host, bytes). None when there is nothing to draw."""
    if not events:
        return None
    t0 = min(e[0] for e in events)
    t1 = max(e[0] for e in events)
    span = max(t1 - t0, 1.0)
    per_host = Counter(e[1] for e in events)
    top = [h for h, _ in sorted(per_host.items(), key=lambda kv: (-kv[1], kv[0]))[:max_hosts]]
    rank = {h: i for i, h in enumerate(top)}
    other = len(per_host) - len(top)
    if other:
        top.append(f"other ({other} hosts)")
    grid: dict[tuple[int, int], int] = defaultdict(int)
    for ts, host, _ in events:
        row = rank.get(host, len(top) - 1)
        b = min(bins - 1, int((ts - t0) / span * bins))
        grid[(row, b)] += 1
    # Scale dots by the named hosts: the "other" row sums hundreds of hosts and would dwarf them.
    named = [n for (r, _), n in grid.items() if not other or r < len(top) - 1]
    peak = max(named or grid.values())
    unit, div = ("s", 1.0) if span <= 180 else (("min", 60.0) if span <= 3 * 3600 else ("h", 3600.0))
    with matplotlib.rc_context(RC):
        ticks = [label(h, 38) for h in top]
        fig = _figure(11.0, 1.3 + 0.24 * len(top), ticks)
        ax = fig.add_subplot()
        pts = sorted(grid.items())
        xs = [(b + 0.5) / bins * span / div for (_, b), _ in pts]
        ys = [r for (r, _), _ in pts]
        sizes = [6 + 70 * math.sqrt(min(1.0, n / peak)) for _, n in pts]
        ax.scatter(xs, ys, s=sizes, color=FLOW_COLOR, alpha=0.75, linewidths=0)
        ax.set_yticks(range(len(top)), ticks)
        ax.set_ylim(len(top) - 0.5, -0.5)
        ax.set_xlim(0, span / div)
        ax.set_xlabel(f"time since first flow ({unit}); dot area ~ flows per {span / bins / div:.3g} {unit}")
        ax.grid(axis="x", color="#e3e6ea", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.set_title("Capture timeline (busiest hosts)", loc="left", fontsize=9, fontweight="bold")
    return to_svg(fig)


# --------------------------------------------------------------------------------------------
# the layered data-flow diagram
# --------------------------------------------------------------------------------------------


@dataclass
class Diagram:
    """Plain data for :func:`flow_diagram_chart`: columns of labelled boxes and weighted edges."""

    columns: list[list[tuple[str, str, str]]] = field(default_factory=list)
    """Per column: (node key, label, style) top to bottom; style is a key of LAYER_COLORS."""
    edges: list[tuple[str, str, int, str, str]] = field(default_factory=list)
    """(from key, to key, bytes, evidence, kind) with kind contacts/country/company."""
    headers: tuple[str, ...] = ("App", "SDKs in the code", "Hosts", "Server country · Company (home)")
    grouped_hosts: int = 0


def _host_score(G: nx.MultiDiGraph, hid: str) -> tuple[int, int, int, str]:
    a = G.nodes[hid]
    data = 1 if a.get("data_types") else 0
    return (-data, -(int(a.get("bytes_out", 0)) + int(a.get("bytes_in", 0))), -int(a.get("flows", 0)), hid)


def diagram_from_graph(
    G: nx.MultiDiGraph, max_hosts: int = 28, max_sdks: int = 14, max_right: int = 12
) -> Diagram:
    """Reduce the full graph to a legible four-column diagram: the busiest hosts (those receiving
    personal data first) are drawn, the rest grouped into one "other (N hosts)" box."""
    layer = {n: a["layer"] for n, a in G.nodes(data=True)}
    apps = sorted(n for n, lay in layer.items() if lay == "app")
    hosts = sorted((n for n, lay in layer.items() if lay == "host"), key=lambda h: _host_score(G, h))
    kept = hosts[:max_hosts]
    grouped = hosts[max_hosts:]
    if len(grouped) == 1:  # a box "other (1 hosts)" would hide a host for nothing
        kept, grouped = hosts, []
    OTHER = "host:*other*"
    host_box = {h: h for h in kept} | {h: OTHER for h in grouped}

    contact: dict[tuple[str, str], list[Any]] = {}
    sdk_weight: Counter[str] = Counter()
    for u, v, k, e in G.edges(keys=True, data=True):
        if k != "contacts":
            continue
        box = host_box.get(v)
        if box is None:
            continue
        w = int(e.get("bytes_out", 0)) + int(e.get("bytes_in", 0))
        acc = contact.setdefault((u, box), [0, None])
        acc[0] += w
        ev = e.get("evidence", "static")
        acc[1] = ev if acc[1] in (None, ev) else "both"
        if layer[u] == "sdk":
            sdk_weight[u] += w + 1
    sdks_used = sorted(sdk_weight, key=lambda s: (-sdk_weight[s], s))
    sdks_all = sorted(n for n, lay in layer.items() if lay == "sdk")
    shown_sdks = sdks_used[:max_sdks]
    extra_sdks = [s for s in sdks_all if s not in shown_sdks]
    OTHER_SDK = "sdk:*other*"
    sdk_box = {s: s for s in shown_sdks} | {s: OTHER_SDK for s in extra_sdks}

    right: dict[tuple[str, str], list[Any]] = {}
    right_weight: Counter[str] = Counter()
    for h, box in host_box.items():
        hw = int(G.nodes[h].get("bytes_out", 0)) + int(G.nodes[h].get("bytes_in", 0))
        observed = G.nodes[h].get("evidence") != "static"
        targets = []
        for _, ipn, k in G.out_edges(h, keys=True):
            if k == "resolves":
                targets += [(c, "country") for _, c, kk in G.out_edges(ipn, keys=True) if kk == "located_in"]
        targets += [(c, "company") for _, c, kk in G.out_edges(h, keys=True) if kk == "owned_by"]
        for t, kind in set(targets):
            acc = right.setdefault((box, t), [0, "observed" if observed else "static", kind])
            acc[0] += hw
            right_weight[t] += hw + 1
    countries = sorted(
        (t for t in right_weight if layer[t] == "country"), key=lambda t: (-right_weight[t], t)
    )
    comps = sorted((t for t in right_weight if layer[t] == "company"), key=lambda t: (-right_weight[t], t))
    right_box: dict[str, str] = {}
    for other_key, items in (("country:*other*", countries), ("company:*other*", comps)):
        for i, t in enumerate(items):
            right_box[t] = t if i < max_right - 1 or len(items) <= max_right else other_key

    def company_label(c: str) -> str:
        ccs = sorted(str(G.nodes[j]["label"]) for _, j, k in G.out_edges(c, keys=True) if k == "based_in")
        return f"{G.nodes[c]['label']} · {'/'.join(ccs) or '?'}"

    d = Diagram(grouped_hosts=len(grouped))
    d.columns.append([(a, str(G.nodes[a]["label"]), "app") for a in apps])
    col_sdk = [(s, str(G.nodes[s].get("name") or G.nodes[s]["label"]), "sdk") for s in shown_sdks]
    if extra_sdks:
        col_sdk.append((OTHER_SDK, f"other SDKs ({len(extra_sdks)})", "other"))
    d.columns.append(col_sdk)
    col_host = [(h, str(G.nodes[h]["label"]), "host") for h in kept]
    if grouped:
        col_host.append((OTHER, f"other ({len(grouped)} hosts)", "other"))
    d.columns.append(col_host)
    col_right: list[tuple[str, str, str]] = []
    for t in countries:
        if right_box[t] == t:
            col_right.append((t, f"server in {G.nodes[t]['label']}", "country"))
    if "country:*other*" in right_box.values():
        col_right.append(("country:*other*", "other countries", "other"))
    for t in comps:
        if right_box[t] == t:
            col_right.append((t, company_label(t), "company"))
    if "company:*other*" in right_box.values():
        col_right.append(("company:*other*", "other companies", "other"))
    d.columns.append(col_right)

    merged: dict[tuple[str, str, str], list[Any]] = {}
    for (u, box), (w, ev) in contact.items():
        src = sdk_box.get(u, u)
        acc = merged.setdefault((src, box, "contacts"), [0, ev])
        acc[0] += w
        acc[1] = ev if acc[1] == ev else "both"
    for a in apps:
        for s in set(sdk_box.values()):
            if any(G.has_edge(a, orig, "includes") for orig, b in sdk_box.items() if b == s):
                merged.setdefault((a, s, "includes"), [0, "static"])
    for (box, t), (w, ev, kind) in right.items():
        acc = merged.setdefault((box, right_box[t], kind), [0, ev])
        acc[0] += w
        acc[1] = ev if acc[1] == ev else "both"
    d.edges = sorted((u, v, w, ev, kind) for (u, v, kind), (w, ev) in merged.items())
    return d


#: Column x positions, box widths and label lengths of :func:`flow_diagram_chart`.
_XS = (0.55, 1.75, 3.05, 4.35)
_WIDTHS = (0.85, 0.95, 1.1, 1.05)
_LIMITS = (24, 26, 34, 30)
_KIND_COLORS = {"contacts": "#5b7fa6", "includes": "#8da4bd", "country": "#3a9a6e", "company": "#d27f2a"}
#: One colour per SDK for its edges to hosts, so that each SDK's bundle can be followed (issue 13).
SDK_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
               "#ff7f0e", "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39")  # fmt: skip


@dataclass(frozen=True)
class Route:
    """How one diagram edge is drawn: from the right side of its source box at ``y1`` to the left
    side of its target box at ``y2``, turning at ``mid``, in ``color``."""

    u: str
    v: str
    x1: float
    y1: float
    x2: float
    y2: float
    mid: float
    color: str
    width: float
    dashed: bool


def diagram_rows(d: Diagram) -> int:
    return max([len(c) for c in d.columns] + [5])


def box_positions(d: Diagram) -> dict[str, tuple[float, float, int]]:
    """Node key → (x, y, column) of its box centre."""
    rows = diagram_rows(d)
    pos = {}
    for ci, col in enumerate(d.columns):
        offset = (rows - len(col)) / 2
        for ri, (key, _, _) in enumerate(col):
            pos[key] = (_XS[ci], offset + ri + 0.5, ci)
    return pos


def edge_routes(d: Diagram) -> list[Route]:
    """The drawn form of every edge. Edges leaving (or entering) one box are spread over its height
    in the order of the boxes at their other end, so lines do not leave from one point and merge;
    each SDK's edges to hosts have the SDK's own colour and turn at the SDK's own x, so that every
    SDK → host bundle stays traceable."""
    pos = box_positions(d)
    edges = [e for e in d.edges if e[0] in pos and e[1] in pos]
    peak = max([e[2] for e in edges] + [1])
    outs: dict[str, list[str]] = defaultdict(list)
    ins: dict[str, list[str]] = defaultdict(list)
    for u, v, *_ in edges:
        outs[u].append(v)
        ins[v].append(u)

    def port(node: str, other: str, group: dict[str, list[str]]) -> float:
        others = sorted(group[node], key=lambda k: (pos[k][1], k))
        n = len(others)
        step = min(0.56 / n, 0.12) if n > 1 else 0.0
        return pos[node][1] + (others.index(other) - (n - 1) / 2) * step

    sdks = [key for key, _, style in (d.columns[1] if len(d.columns) > 1 else []) if style == "sdk"]
    color_of = {s: SDK_PALETTE[i % len(SDK_PALETTE)] for i, s in enumerate(sdks)}
    routes = []
    for u, v, w, ev, kind in edges:
        x1, _, c1 = pos[u]
        x2, _, c2 = pos[v]
        x1 += _WIDTHS[c1] / 2
        x2 -= _WIDTHS[c2] / 2
        frac = 0.5
        color = _KIND_COLORS.get(kind, "#888888")
        if kind == "contacts" and u in color_of:
            color = color_of[u]
            frac = 0.25 + 0.5 * (sdks.index(u) + 0.5) / len(sdks)
        routes.append(
            Route(u, v, x1, port(u, v, outs), x2, port(v, u, ins), x1 + (x2 - x1) * frac, color,
                  # a case file may hold negative byte counts (damage, a foreign writer): no width for them
                  0.6 + 3.2 * math.log1p(w) / math.log1p(peak) if w > 0 else 0.6, ev == "static")
        )  # fmt: skip
    return routes


def flow_diagram_chart(d: Diagram) -> bytes:
    """Draw a :class:`Diagram` as layered columns with curved edges (width ~ log bytes), each
    SDK's edges in its own colour (:func:`edge_routes`)."""
    rows = diagram_rows(d)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(11, 1.1 + 0.3 * rows))
        ax = fig.add_axes((0.005, 0.01, 0.99, 0.93))
        ax.set_xlim(0, 4.95)
        ax.set_ylim(rows + 0.1, -1.1)
        ax.axis("off")
        pos = box_positions(d)
        for ci, col in enumerate(d.columns):
            ax.text(_XS[ci], -0.75, label(d.headers[ci], 60), ha="center", va="center", fontsize=8.5,
                    fontweight="bold", color="#333b44")  # fmt: skip
            for key, text, style in col:
                x, y, _ = pos[key]
                fc, tc = LAYER_COLORS.get(style, LAYER_COLORS["other"])
                w = _WIDTHS[ci]
                ax.add_patch(
                    FancyBboxPatch((x - w / 2, y - 0.36), w, 0.72, boxstyle="round,pad=0,rounding_size=0.12",
                                   facecolor=fc, edgecolor="#b7bec6", linewidth=0.5, zorder=3)
                )  # fmt: skip
                ax.text(
                    x, y, label(text, _LIMITS[ci]), ha="center", va="center", fontsize=7, color=tc, zorder=4
                )
        for r in edge_routes(d):
            path = MplPath(
                [(r.x1, r.y1), (r.mid, r.y1), (r.mid, r.y2), (r.x2, r.y2)],
                [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4],
            )
            ax.add_patch(
                PathPatch(path, facecolor="none", edgecolor=r.color, linewidth=r.width, alpha=0.6,
                          linestyle="--" if r.dashed else "-", zorder=1)
            )  # fmt: skip
        note = ("solid: contacted (observed)  ·  dashed: found in the binary only  ·  line width ~ bytes (log)"
                "  ·  one colour per SDK")  # fmt: skip
        if d.grouped_hosts:
            note += f"  ·  {d.grouped_hosts} smaller hosts grouped"
        ax.text(0.02, rows + 0.05, note, ha="left", va="bottom", fontsize=7, color="#6b7580")
    return to_svg(fig)
