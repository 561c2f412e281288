"""Building the data-flow graph from a case file: static scans, destinations, data findings."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import networkx as nx

from audit import __version__
from audit.enrich.company import CompanyLookup, resolve_owner
from audit.enrich.geoip import Enricher
from audit.graph.ids import (
    UNLABELLED_APP,
    app_id,
    asn_id,
    combine_evidence,
    company_id,
    country_id,
    data_id,
    domain_id,
    host_id,
    ip_id,
    jurisdiction_id,
    sdk_id,
)
from audit.models import Destination, ScanResult
from audit.names import is_ip, registrable_domain
from audit.store import Store

log = logging.getLogger(__name__)


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
    background: bool = True,
) -> nx.MultiDiGraph:
    """Build the layered data-flow graph of one app (``app``) or of every app in the case.

    ``enricher`` and ``companies`` are passed to :func:`audit.destinations.list_destinations`
    (defaults: the bundled databases). ``destinations`` may be given when the caller already
    listed them (the report does), to avoid a second pass over the traffic; ``scans`` likewise
    (default: the case's stored scans of ``app``).
    Traffic without an app label is attributed to the only app of the case, or to
    ``app:(unlabelled)`` when the case holds several.
    Local-network noise is never in the graph; well-known OS traffic (``Destination.background ==
    "os"``) is, with ``background`` and ``background_reason`` on its host node, unless
    ``background`` is false (the report's diagram shows only what may be the app's).
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
                (
                    label,
                    list_destinations(
                        store, app=label, enricher=enricher, companies=companies, scans=label_scans
                    ),
                )
            )

    for label, result in scans:
        _add_scan(G, label, result, companies)

    ip_port_host: dict[tuple[str | None, int | None], str] = {}
    for label, dests in per_app:
        for d in dests:
            if d.background == "local" or (d.background and not background):
                continue
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
            for key, value in (
                ("cleartext_default", t.cleartext_default),
                ("user_cas_trusted", t.user_cas_trusted),
            ):
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
    if d.background:
        node["background"] = d.background
        node["background_reason"] = d.background_reason or ""
    if not d.ip:
        return
    iid = _node(
        G, ip_id(d.ip), "ip", scope=d.ip_scope, country=d.server_country, city=d.server_city,
        asn=d.asn, asn_org=d.asn_org, database=d.geo_database, network_flags=",".join(d.network_flags),
        asn_source=d.asn_source, via_nat64=True if d.via_nat64 else None, nat64_ipv4=d.nat64_ipv4,
    )  # fmt: skip
    e = _edge(
        G,
        hid,
        iid,
        "resolves",
        evidence="observed",
        flows=d.flows,
        bytes_out=d.bytes_out,
        bytes_in=d.bytes_in,
    )
    ports = set(e.get("ports", [])) | ({d.port} if d.port is not None else set())
    e["ports"] = sorted(ports)
    if d.server_country:
        _edge(G, iid, _node(G, country_id(d.server_country), "country"), "located_in")
    nid = asn_id(d.asn, d.asn_org)
    if nid:
        _edge(G, iid, _node(G, nid, "asn", asn=d.asn, org=d.asn_org), "announced_by")


def _add_findings(
    G: nx.MultiDiGraph, rows: list[dict[str, Any]], ip_port_host: Mapping[tuple[str | None, int | None], str]
) -> None:
    for r in rows:
        host = r["host"]
        if not host or is_ip(host):  # destinations name bare IPs from DNS answers: follow them
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
