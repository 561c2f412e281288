"""Writing and reading the graph: GraphML, node-link JSON and DOT, with attributes sanitised."""

from __future__ import annotations

import io
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import networkx as nx

from audit.graph.ids import FORMATS, LAYERS, GraphError
from audit.paths import write_atomic


def _scalar(value: Any) -> str | int | float | bool | None:
    """GraphML and DOT take str/int/float/bool only: containers become JSON text."""
    if value is None:
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple | set | frozenset):
        value = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _clean_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in attrs.items():
        s = _scalar(v)
        if s is not None:
            out[str(k)] = s
    return out


def sanitise(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy of ``G`` whose graph, node and edge attributes are all str/int/float/bool."""
    H = nx.MultiDiGraph()
    H.graph.update(_clean_attrs(G.graph))
    for n, a in G.nodes(data=True):
        H.add_node(str(n), **_clean_attrs(a))
    for u, v, k, a in G.edges(keys=True, data=True):
        H.add_edge(str(u), str(v), key=str(k), **_clean_attrs(a))
    return H


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_text(value: Any) -> Any:
    return _XML_INVALID.sub("\ufffd", value) if isinstance(value, str) else value


def _xml_safe(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """XML 1.0 cannot carry most control characters: hostile names get U+FFFD instead."""
    H = nx.MultiDiGraph()
    H.graph.update({k: _xml_text(v) for k, v in G.graph.items()})
    for n, a in G.nodes(data=True):
        H.add_node(_xml_text(n), **{k: _xml_text(v) for k, v in a.items()})
    for u, v, k, a in G.edges(keys=True, data=True):
        H.add_edge(
            _xml_text(u), _xml_text(v), key=_xml_text(k), **{kk: _xml_text(vv) for kk, vv in a.items()}
        )
    return H


def _dot_quote(value: Any) -> str:
    s = str(value)
    s = "".join(ch if ch.isprintable() else " " for ch in s)
    # In a DOT quoted string only \" is an escape, but a trailing backslash would eat the quote.
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_attrs(attrs: Mapping[str, Any]) -> str:
    return ", ".join(f"{_dot_quote(k)}={_dot_quote(v)}" for k, v in sorted(attrs.items()))


def iter_dot(G: nx.MultiDiGraph) -> Iterator[str]:
    H = sanitise(G)
    yield "digraph dataflow {"
    yield "  rankdir=LR;"
    yield "  node [shape=box, fontsize=10];"
    for k, v in sorted(H.graph.items()):
        yield f"  // {_dot_quote(k)[1:-1]}: {_dot_quote(v)[1:-1][:200]}"
    for n, a in H.nodes(data=True):
        yield f"  {_dot_quote(n)} [{_dot_attrs(a)}];"
    for u, v, k, a in H.edges(keys=True, data=True):
        yield f"  {_dot_quote(u)} -> {_dot_quote(v)} [{_dot_attrs({'key': k, **a})}];"
    yield "}"


def graph_to_json(G: nx.MultiDiGraph) -> dict[str, Any]:
    """Node-link JSON of ``G`` (edges under ``"edges"``, the networkx ≥ 3.4 default)."""
    data: dict[str, Any] = nx.node_link_data(sanitise(G), edges="edges")
    return data


def graph_from_json(data: Mapping[str, Any]) -> nx.MultiDiGraph:
    G: nx.MultiDiGraph = nx.node_link_graph(data, directed=True, multigraph=True, edges="edges")
    return G


def render_graph(G: nx.MultiDiGraph, fmt: str) -> bytes:
    """``G`` as GraphML, node-link JSON or DOT. Attributes are sanitised first: containers become
    JSON text, None is dropped."""
    if fmt == "graphml":
        buf = io.BytesIO()
        nx.write_graphml(_xml_safe(sanitise(G)), buf, named_key_ids=True)
        return buf.getvalue()
    if fmt == "json":
        return json.dumps(graph_to_json(G), indent=1, ensure_ascii=False).encode("utf-8")
    if fmt == "dot":
        return ("\n".join(iter_dot(G)) + "\n").encode("utf-8")
    raise GraphError(f"unknown graph format {fmt!r} (use graphml, json or dot)")


def graph_format(path: str | Path, fmt: str | None = None) -> str:
    """``fmt``, else the format the file extension names; GraphError if neither names one."""
    p = Path(path)
    fmt = fmt or FORMATS.get(p.suffix.lower())
    if fmt not in ("graphml", "json", "dot"):
        raise GraphError(f"{p}: unknown graph format {fmt or p.suffix!r} (use graphml, json or dot)")
    return fmt


def export_graph(G: nx.MultiDiGraph, path: str | Path, fmt: str | None = None) -> str:
    """Write ``G`` as GraphML, node-link JSON or DOT (``fmt`` or the file extension) whole or not at
    all, creating missing folders; returns the format."""
    fmt = graph_format(path, fmt)
    write_atomic(path, render_graph(G, fmt))
    return fmt


def read_graph(path: str | Path) -> nx.MultiDiGraph:
    """Read a GraphML or node-link JSON file written by :func:`export_graph`."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    try:
        if fmt == "graphml":
            G: nx.MultiDiGraph = nx.read_graphml(p, force_multigraph=True, edge_key_type=str)
            return G
        if fmt == "json":
            return graph_from_json(json.loads(p.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, nx.NetworkXError, ElementTree.ParseError) as e:
        raise GraphError(f"{p}: not a readable graph file ({e})") from e
    raise GraphError(f"{p}: can only read .graphml and .json graphs")


def layer_counts(G: nx.MultiDiGraph) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for _, a in G.nodes(data=True):
        counts[a["layer"]] += 1
    return {k: counts[k] for k in LAYERS if counts.get(k)}
