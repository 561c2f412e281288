"""Questions asked of a built graph: who receives a data type, the facts of a host, paths to a node."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import networkx as nx

from audit.enrich.country import country_code
from audit.graph.ids import GraphError, data_id


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
                host=str(G.nodes[hid]["label"]),
                flows=int(e.get("flows", 0)),
                locations=tuple(e.get("locations", ())),
                **host_facts(G, hid),
            )  # fmt: skip
        )
    return sorted(out, key=lambda r: (-r.flows, r.host))


def target_node(target: str) -> tuple[str, str | None]:
    """The node id ``target`` names (``country:CN``; a country may be given by an unambiguous name,
    ``country:China``) and a note saying how a name was read. GraphError for an untyped id,
    OptionError for a country that is not one."""
    if ":" not in target:
        raise GraphError(
            f"{target!r}: give a typed node id such as country:CN, company:Tencent, jurisdiction:CN or host:x.com"
        )
    kind, _, value = target.partition(":")
    if kind in ("country", "jurisdiction"):
        code, note = country_code(value, f"--paths-to {kind}:")
        return f"{kind}:{code}", note
    return f"{kind}:{value}", None


def paths_to(G: nx.MultiDiGraph, target: str, *, cutoff: int = 8) -> list[list[str]]:
    """Every simple path from an app node to ``target`` (``country:CN``, ``company:Tencent``,
    ``jurisdiction:CN``, ``host:…``), shortest first. Company names match case-insensitively."""
    tid = target_node(target)[0]
    if tid not in G and tid.startswith("company:"):
        wanted = tid.split(":", 1)[1].casefold()
        tid = next(
            (str(n) for n in G if str(n).startswith("company:") and str(n)[8:].casefold() == wanted), tid
        )
    if tid not in G:
        return []
    simple = nx.DiGraph(G)  # parallel edges would repeat paths
    found: set[tuple[str, ...]] = set()
    for aid in (n for n, a in G.nodes(data=True) if a["layer"] == "app"):
        for p in nx.all_simple_paths(simple, aid, tid, cutoff=cutoff):
            found.add(tuple(str(x) for x in p))
    return [list(p) for p in sorted(found, key=lambda p: (len(p), p))]
