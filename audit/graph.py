"""The data-flow graph: static scans, observed traffic and data findings joined in one networkx
``MultiDiGraph`` (see docs/graph.md).

Layers and typed node ids::

    app:com.x ──includes──▶ sdk:tencent_bugly ──contacts──▶ host:android.bugly.qq.com
    app:com.x ──contacts──▶ host:api.example.com          (endpoints not attributed to an SDK)
    host:…  ──resolves──▶ ip:203.0.113.5 ──located_in──▶ country:SG     (server location, fact 1)
                                         ──announced_by──▶ asn:AS132203 (network owner, fact 2)
    host:…  ──owned_by──▶ company:Tencent ──based_in──▶ jurisdiction:CN (data recipient, fact 3)
    sdk:…   ──owned_by──▶ company:…
    host:…  ──part_of──▶ domain:qq.com
    data:imei ──sent_to──▶ host:…

``contacts`` edges carry ``evidence``: ``static`` (found in the binary: "may contact"), ``observed``
(in traffic: "contacted") or ``both``. Companies hang off hosts, not registrable domains, because
one registrable domain (``cloudfront.net``) can serve many owners.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import math
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import networkx as nx

from audit import __version__
from audit.enrich.company import CompanyLookup, resolve_owner
from audit.enrich.geoip import Enricher
from audit.errors import AuditError
from audit.models import Destination, ScanResult
from audit.names import registrable_domain
from audit.store import Store

log = logging.getLogger(__name__)

#: Node layers, in drawing order.
LAYERS = ("app", "sdk", "host", "domain", "ip", "country", "asn", "company", "jurisdiction", "data")

#: Export formats of :func:`export_graph`, by file extension.
FORMATS = {".graphml": "graphml", ".json": "json", ".dot": "dot", ".gv": "dot"}

UNLABELLED_APP = "(unlabelled)"


class GraphError(AuditError):
    """A graph cannot be exported or a query is malformed."""


# --------------------------------------------------------------------------------------------
# node ids
# --------------------------------------------------------------------------------------------


def app_id(label: str) -> str:
    return f"app:{label}"


def sdk_id(sdk: str) -> str:
    return f"sdk:{sdk}"


def host_id(host: str) -> str:
    return f"host:{host}"


def domain_id(domain: str) -> str:
    return f"domain:{domain}"


def ip_id(ip: str) -> str:
    return f"ip:{ip}"


def country_id(cc: str) -> str:
    return f"country:{cc.upper()}"


def asn_id(asn: int | None, org: str | None) -> str | None:
    if asn:
        return f"asn:AS{asn}"
    if org:
        return f"asnorg:{org}"
    return None


def company_id(name: str) -> str:
    return f"company:{name}"


def jurisdiction_id(cc: str) -> str:
    return f"jurisdiction:{cc.upper()}"


def data_id(data_type: str) -> str:
    return f"data:{data_type}"


def combine_evidence(a: str | None, b: str) -> str:
    """static + observed = both."""
    if a is None or a == b:
        return b
    return "both"


# --------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------


@dataclass
class _HostAcc:
    """Per-(app, host) accumulator while building."""

    parent: str
    evidence: str | None = None
    flows: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    static_sources: int = 0


def _app_labels(store: Store, app: str | None) -> list[str]:
    if app:
        return [app]
    return store.apps()


def build_graph(
    store: Store,
    app: str | None = None,
    *,
    enricher: Enricher | None = None,
    companies: CompanyLookup | None = None,
    destinations: Iterable[Destination] | None = None,
    scans: Sequence[tuple[str, ScanResult]] | None = None,
) -> nx.MultiDiGraph:
    """Build the layered data-flow graph of one app (``app``) or of every app in the case.

    ``enricher`` and ``companies`` are passed to :func:`audit.destinations.list_destinations`
    (defaults: the bundled databases). ``destinations`` may be given when the caller already
    listed them (the report does), to avoid a second pass over the traffic; ``scans`` likewise
    (default: the case's stored scans of ``app``).
    Traffic without an app label is attributed to the only app of the case, or to
    ``app:(unlabelled)`` when the case holds several.
    """
    if companies is None:
        from audit.enrich.company import load_companies

        companies = load_companies()
    labels = _app_labels(store, app)
    G = nx.MultiDiGraph()
    G.graph.update(
        tool="dataflow-audit",
        tool_version=__version__,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        app_filter=app or "",
        inputs=[
            {"kind": i["kind"], "path": i["path"], "sha256": i["sha256"] or "", "app": i["app"]}
            for i in store.inputs()
            if not app or i["app"] in ("", app)
        ],
    )
    databases: dict[str, str] = {}

    if scans is None:
        scans = store.scans(app)
    # Traffic: one list per app label so that edge counts are per app.
    per_app: list[tuple[str, list[Destination]]] = []
    if destinations is not None:
        per_app.append((labels[0] if len(labels) == 1 else (app or UNLABELLED_APP), list(destinations)))
    elif len(labels) <= 1:
        from audit.destinations import list_destinations

        dests = list_destinations(store, app=app, enricher=enricher, companies=companies, scans=scans)
        per_app.append((labels[0] if labels else UNLABELLED_APP, dests))
    else:
        from audit.destinations import list_destinations

        for label in labels:
            label_scans = [s for s in scans if s[0] == label]
            per_app.append(
                (label, list_destinations(store, app=label, enricher=enricher, companies=companies, scans=label_scans))
            )

    for label, result in scans:
        _add_scan(G, label, result, companies)

    ip_port_host: dict[tuple[str | None, int | None], str] = {}
    for label, dests in per_app:
        for d in dests:
            if d.geo_database:
                databases.setdefault(d.geo_database, "")
            _add_destination(G, label, d)
            if d.host:
                ip_port_host.setdefault((d.ip, d.port), d.host)

    _add_findings(G, store.finding_summary(app), ip_port_host)
    _finish_hosts(G)
    _mark_pinned(G, scans)

    G.graph["databases"] = [{"name": k, "date": v} for k, v in sorted(databases.items())]
    company_db = getattr(companies, "source", None) or getattr(companies, "name", None)
    if isinstance(company_db, str):
        G.graph["databases"].append({"name": company_db, "date": ""})
    return G


def _node(G: nx.MultiDiGraph, nid: str, layer: str, **attrs: Any) -> str:
    if nid not in G:
        G.add_node(nid, layer=layer, label=nid.split(":", 1)[1])
    for k, v in attrs.items():
        if v is not None and v != "":
            G.nodes[nid].setdefault(k, v)
    return nid


def _edge(G: nx.MultiDiGraph, u: str, v: str, key: str, **attrs: Any) -> dict[str, Any]:
    if not G.has_edge(u, v, key):
        G.add_edge(u, v, key=key, relation=key)
    data: dict[str, Any] = G.edges[u, v, key]
    for k, val in attrs.items():
        if val is None:
            continue
        if k == "evidence":
            data["evidence"] = combine_evidence(data.get("evidence"), val)
        elif isinstance(val, int | float) and not isinstance(val, bool) and k in data:
            data[k] += val
        else:
            data.setdefault(k, val)
    return data


def _add_company(G: nx.MultiDiGraph, src: str, name: str, country: str | None, matched: str | None) -> None:
    cid = _node(G, company_id(name), "company", country=country or None)
    _edge(G, src, cid, "owned_by", matched=matched)
    if country:
        jid = _node(G, jurisdiction_id(country), "jurisdiction")
        _edge(G, cid, jid, "based_in")


def _add_host(G: nx.MultiDiGraph, host: str) -> str:
    hid = host_id(host)
    if hid not in G:
        _node(G, hid, "host", domain=registrable_domain(host))
        dom = G.nodes[hid].get("domain")
        if dom:
            _edge(G, hid, _node(G, domain_id(dom), "domain"), "part_of")
    return hid


def _add_scan(G: nx.MultiDiGraph, label: str, result: ScanResult, companies: CompanyLookup | None) -> None:
    a = result.app
    aid = _node(
        G, app_id(label), "app",
        package=a.package, version_name=a.version_name, version_code=a.version_code,
        sha256=a.sha256, file=a.file, format=a.format,
    )  # fmt: skip
    if result.data_access:
        G.nodes[aid]["data_access"] = sorted({d.type for d in result.data_access})
    sdk_nodes: dict[str, str] = {}
    for s in (*result.sdks, *result.capabilities):  # a capability's code may load a host too
        sid = _node(
            G, sdk_id(s.id), "sdk", name=s.name, owner=s.owner, owner_country=s.owner_country,
            category=s.category, class_count=s.class_count, evidence_detail=list(s.evidence),
        )  # fmt: skip
        sdk_nodes[s.id] = sid
        _edge(G, aid, sid, "includes", evidence="static")
        if s.owner:
            owner, country = resolve_owner(s.owner, s.owner_country, companies)
            _add_company(G, sid, owner, country, f"sdk:{s.id}")
    for e in result.servers:
        if e.host is None:  # never: servers have hosts (Endpoint.counted); for the type checker
            continue
        hid = _add_host(G, e.host)
        parent = aid
        if e.sdk:
            parent = sdk_nodes.get(e.sdk) or _node(G, sdk_id(e.sdk), "sdk", name=e.sdk)
            if parent not in sdk_nodes.values():
                _edge(G, aid, parent, "includes", evidence="static")
        data = _edge(G, parent, hid, "contacts", evidence="static")
        data["static_sources"] = int(data.get("static_sources", 0)) + max(1, len(e.sources))
        node = G.nodes[hid]
        node["static_evidence"] = combine_evidence(node.get("static_evidence"), "static")
        kinds = set(node.get("source_kinds", [])) | {s.kind for s in e.sources}
        node["source_kinds"] = sorted(kinds)
        if companies is not None and "company" not in node:
            info = companies.lookup(e.host)
            if info is not None:
                node["company"] = info.company
                node["company_country"] = info.country
                _add_company(G, hid, info.company, info.country, info.matched)


def _mark_pinned(G: nx.MultiDiGraph, scans: Sequence[tuple[str, ScanResult]]) -> None:
    """Host nodes a scanned app pins (its network security config's pin-set applies to them) get
    ``pinned`` (the rule's domain and file) and ``pin_count``; app nodes get ``cleartext_default``
    and ``user_cas_trusted`` when known."""
    for label, result in scans:
        t = result.transport
        aid = app_id(label)
        if aid in G:
            for key, value in (("cleartext_default", t.cleartext_default), ("user_cas_trusted", t.user_cas_trusted)):
                if value is not None:
                    G.nodes[aid][key] = value
        if not t.pinned_domains:
            continue
        for _, attrs in G.nodes(data=True):
            if attrs["layer"] != "host":
                continue
            rule = t.pin_rule(str(attrs["label"]))
            if rule is not None and "pinned" not in attrs:
                attrs["pinned"] = f"{rule.scope} ({rule.file})"
                attrs["pin_count"] = len(rule.pins)


def _contact_parent(G: nx.MultiDiGraph, aid: str, hid: str) -> str:
    """The SDK that statically contains the host, if the app includes one; else the app."""
    for u, _, k in G.in_edges(hid, keys=True):
        if k == "contacts" and G.nodes[u]["layer"] == "sdk" and G.has_edge(aid, u, "includes"):
            return str(u)
    return aid


def _add_destination(G: nx.MultiDiGraph, label: str, d: Destination) -> None:
    aid = _node(G, app_id(label), "app")
    host = d.host or d.ip
    if not host:
        return
    hid = _add_host(G, host)
    parent = _contact_parent(G, aid, hid)
    _edge(
        G, parent, hid, "contacts", evidence="observed", flows=d.flows, bytes_out=d.bytes_out,
        bytes_in=d.bytes_in,
    )  # fmt: skip
    node = G.nodes[hid]
    node["flows"] = int(node.get("flows", 0)) + d.flows
    node["bytes_out"] = int(node.get("bytes_out", 0)) + d.bytes_out
    node["bytes_in"] = int(node.get("bytes_in", 0)) + d.bytes_in
    node["tls"] = sorted(set(node.get("tls", [])) | {d.tls})
    node["observed"] = True
    if d.company:
        node["company"] = d.company
        node["company_country"] = d.company_country
        _add_company(G, hid, d.company, d.company_country, None)
    if d.first_party:
        node["first_party"] = d.first_party
    if not d.ip:
        return
    iid = _node(
        G, ip_id(d.ip), "ip", scope=d.ip_scope, country=d.server_country, city=d.server_city,
        asn=d.asn, asn_org=d.asn_org, database=d.geo_database, network_flags=",".join(d.network_flags),
    )  # fmt: skip
    e = _edge(G, hid, iid, "resolves", evidence="observed", flows=d.flows, bytes_out=d.bytes_out, bytes_in=d.bytes_in)
    ports = set(e.get("ports", [])) | ({d.port} if d.port is not None else set())
    e["ports"] = sorted(ports)
    if d.server_country:
        _edge(G, iid, _node(G, country_id(d.server_country), "country"), "located_in")
    nid = asn_id(d.asn, d.asn_org)
    if nid:
        _edge(G, iid, _node(G, nid, "asn", asn=d.asn, org=d.asn_org), "announced_by")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def _add_findings(
    G: nx.MultiDiGraph, rows: list[dict[str, Any]], ip_port_host: Mapping[tuple[str | None, int | None], str]
) -> None:
    for r in rows:
        host = r["host"]
        if not host or _is_ip(host):  # destinations name bare IPs from DNS answers: follow them
            host = ip_port_host.get((r["ip"], r["port"])) or host or r["ip"]
        if not host:
            continue
        hid = _add_host(G, host)
        did = _node(G, data_id(r["data_type"]), "data")
        e = _edge(G, did, hid, "sent_to", evidence="observed", flows=int(r["flows"]))
        e["locations"] = sorted(set(e.get("locations", [])) | {r["location"]})
        e["confidence"] = "known" if "known" in (e.get("confidence"), r["confidence"]) else r["confidence"]
        node = G.nodes[hid]
        node["data_types"] = sorted(set(node.get("data_types", [])) | {r["data_type"]})


def _finish_hosts(G: nx.MultiDiGraph) -> None:
    """Host-level evidence: static (in the binary), observed (contacted) or both."""
    for _, attrs in G.nodes(data=True):
        if attrs["layer"] != "host":
            continue
        ev: str | None = attrs.pop("static_evidence", None)
        if attrs.pop("observed", False):
            ev = combine_evidence(ev, "observed")
        attrs["evidence"] = ev or "observed"  # hosts known only from data findings were observed


# --------------------------------------------------------------------------------------------
# queries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receiver:
    """A host receiving a data type, with its three facts kept apart."""

    host: str
    flows: int
    """Connections carrying the data type."""
    locations: tuple[str, ...]
    """Where in the requests (``query:adid`` …)."""
    ips: tuple[str, ...]
    server_countries: tuple[str, ...]
    networks: tuple[str, ...]
    """``AS132203 TENCENT-NET-AP`` …"""
    companies: tuple[str, ...]
    company_countries: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _succ(G: nx.MultiDiGraph, nid: str, key: str) -> list[str]:
    return sorted({str(v) for _, v, k in G.out_edges(nid, keys=True) if k == key})


def host_facts(G: nx.MultiDiGraph, hid: str) -> dict[str, tuple[str, ...]]:
    """ips, server countries, networks, companies and company countries of a host node."""
    ips = _succ(G, hid, "resolves")
    countries = sorted({c for i in ips for c in _succ(G, i, "located_in")})
    nets = sorted({n for i in ips for n in _succ(G, i, "announced_by")})
    comps = _succ(G, hid, "owned_by")
    ccs = sorted({j for c in comps for j in _succ(G, c, "based_in")})

    def label(n: str) -> str:
        a = G.nodes[n]
        if a["layer"] == "asn" and a.get("org"):
            return f"{a['label']} {a['org']}"
        return str(a["label"])

    return {
        "ips": tuple(label(i) for i in ips),
        "server_countries": tuple(label(c) for c in countries),
        "networks": tuple(label(n) for n in nets),
        "companies": tuple(label(c) for c in comps),
        "company_countries": tuple(label(j) for j in ccs),
    }


def receivers_of(G: nx.MultiDiGraph, data_type: str) -> list[Receiver]:
    """Hosts that received ``data_type`` (``imei`` or ``data:imei``), most flows first."""
    did = data_type if data_type.startswith("data:") else data_id(data_type)
    if did not in G:
        return []
    out = []
    for _, hid, key, e in G.out_edges(did, keys=True, data=True):
        if key != "sent_to":
            continue
        out.append(
            Receiver(
                host=str(G.nodes[hid]["label"]), flows=int(e.get("flows", 0)),
                locations=tuple(e.get("locations", ())), **host_facts(G, hid),
            )  # fmt: skip
        )
    return sorted(out, key=lambda r: (-r.flows, r.host))


def _normalise_target(target: str) -> str:
    if ":" not in target:
        raise GraphError(
            f"{target!r}: give a typed node id such as country:CN, company:Tencent, jurisdiction:CN or host:x.com"
        )
    kind, _, value = target.partition(":")
    if kind in ("country", "jurisdiction"):
        return f"{kind}:{value.upper()}"
    return f"{kind}:{value}"


def paths_to(G: nx.MultiDiGraph, target: str, *, cutoff: int = 8) -> list[list[str]]:
    """Every simple path from an app node to ``target`` (``country:CN``, ``company:Tencent``,
    ``jurisdiction:CN``, ``host:…``), shortest first. Company names match case-insensitively."""
    tid = _normalise_target(target)
    if tid not in G and tid.startswith("company:"):
        wanted = tid.split(":", 1)[1].casefold()
        tid = next((str(n) for n in G if str(n).startswith("company:") and str(n)[8:].casefold() == wanted), tid)
    if tid not in G:
        return []
    simple = nx.DiGraph(G)  # parallel edges would repeat paths
    found: set[tuple[str, ...]] = set()
    for aid in (n for n, a in G.nodes(data=True) if a["layer"] == "app"):
        for p in nx.all_simple_paths(simple, aid, tid, cutoff=cutoff):
            found.add(tuple(str(x) for x in p))
    return [list(p) for p in sorted(found, key=lambda p: (len(p), p))]


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------


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
        H.add_edge(_xml_text(u), _xml_text(v), key=_xml_text(k), **{kk: _xml_text(vv) for kk, vv in a.items()})
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


def export_graph(G: nx.MultiDiGraph, path: str | Path, fmt: str | None = None) -> str:
    """Write ``G`` as GraphML, node-link JSON or DOT (``fmt`` or the file extension); returns the format.

    Attributes are sanitised first: containers become JSON text, None is dropped."""
    p = Path(path)
    fmt = fmt or FORMATS.get(p.suffix.lower())
    if fmt not in ("graphml", "json", "dot"):
        raise GraphError(f"{p}: unknown graph format {fmt or p.suffix!r} (use graphml, json or dot)")
    tmp = p.with_name(p.name + ".tmp")
    try:
        if fmt == "graphml":
            nx.write_graphml(_xml_safe(sanitise(G)), tmp, named_key_ids=True)
        elif fmt == "json":
            tmp.write_text(json.dumps(graph_to_json(G), indent=1, ensure_ascii=False), encoding="utf-8")
        else:
            tmp.write_text("\n".join(iter_dot(G)) + "\n", encoding="utf-8")
        tmp.replace(p)
    finally:
        tmp.unlink(missing_ok=True)
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
