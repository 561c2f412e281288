"""The data-flow graph: layers, evidence, queries and export round trips (on the case of
``tests/helpers/cases.py``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import networkx as nx
import pytest

from audit.enrich.geoip import Enricher
from audit.graph import (
    GraphError,
    build_graph,
    export_graph,
    paths_to,
    read_graph,
    receivers_of,
    sanitise,
)
from audit.models import (
    Connection,
    DataFinding,
    DnsRecord,
)
from audit.names import registrable_domain
from audit.store import Store
from tests.helpers.cases import (
    APP,
    COMPANIES,
    IP_API,
    IP_BUGLY,
    IP_CDN,
    make_case,
    make_scan,
    make_traffic,
)


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher()


@pytest.fixture
def case(enricher: Enricher) -> tuple[Store, nx.MultiDiGraph]:
    store = Store(":memory:")
    make_case(store)
    return store, build_graph(store, enricher=enricher, companies=COMPANIES)


def test_every_node_is_typed_and_layered(case: tuple[Store, nx.MultiDiGraph]) -> None:
    _, G = case
    assert isinstance(G, nx.MultiDiGraph)
    for n, a in G.nodes(data=True):
        prefix = n.split(":", 1)[0]
        assert a["layer"] == {"asnorg": "asn"}.get(prefix, prefix), n
    for _, _, k, a in G.edges(keys=True, data=True):
        assert a["relation"] == k
    assert "host:localhost" not in G  # placeholders are not destinations


def test_evidence_static_observed_both(case: tuple[Store, nx.MultiDiGraph]) -> None:
    _, G = case
    app = f"app:{APP}"
    assert G.nodes["host:api.example-messenger.com"]["evidence"] == "both"
    assert G.nodes["host:graph.facebook.com"]["evidence"] == "static"
    assert G.nodes["host:cdn.runtime-config.net"]["evidence"] == "observed"
    # Observed flows to a host in an SDK's code are attributed to the SDK edge.
    e = G.edges["sdk:tencent_bugly", "host:android.bugly.qq.com", "contacts"]
    assert (e["evidence"], e["flows"], e["bytes_out"], e["bytes_in"]) == ("both", 5, 5 * 2000, 5 * 100)
    assert G.edges[app, "sdk:tencent_bugly", "includes"]["evidence"] == "static"
    assert G.edges["sdk:facebook", "host:graph.facebook.com", "contacts"]["evidence"] == "static"
    assert G.edges[app, "host:cdn.runtime-config.net", "contacts"]["evidence"] == "observed"


def test_flow_counts_add_up(case: tuple[Store, nx.MultiDiGraph]) -> None:
    store, G = case
    contacted = sum(a.get("flows", 0) for _, _, k, a in G.edges(keys=True, data=True) if k == "contacts")
    resolved = sum(a.get("flows", 0) for _, _, k, a in G.edges(keys=True, data=True) if k == "resolves")
    assert contacted == resolved == store.connection_count()


def test_three_facts_stay_apart(case: tuple[Store, nx.MultiDiGraph], enricher: Enricher) -> None:
    _, G = case
    info = enricher.ip_info(IP_BUGLY)
    assert G.has_edge("host:android.bugly.qq.com", f"ip:{IP_BUGLY}", "resolves")
    if info.country:
        assert G.has_edge(f"ip:{IP_BUGLY}", f"country:{info.country}", "located_in")
    assert G.has_edge("host:android.bugly.qq.com", "company:Tencent", "owned_by")
    assert G.has_edge("company:Tencent", "jurisdiction:CN", "based_in")
    assert G.has_edge("host:android.bugly.qq.com", "domain:qq.com", "part_of")
    # the SDK owner goes through the company table: Meta → Meta Platforms, one node
    assert G.has_edge("sdk:facebook", "company:Meta Platforms", "owned_by")
    assert "company:Meta" not in G


def test_data_type_edges_and_receivers(case: tuple[Store, nx.MultiDiGraph], enricher: Enricher) -> None:
    _, G = case
    e = G.edges["data:imei", "host:api.example-messenger.com", "sent_to"]
    assert e["flows"] == 4 and e["locations"] == ["query:imei"]
    (r,) = receivers_of(G, "imei")
    assert r.host == "api.example-messenger.com" and r.flows == 4
    assert r.companies == ("Example Messenger Ltd",) and r.company_countries == ("DE",)
    expected = enricher.ip_info(IP_API).country
    assert r.server_countries == ((expected,) if expected else ())
    assert r.ips == (IP_API,)
    assert receivers_of(G, "data:android_id")[0].host == "android.bugly.qq.com"
    assert receivers_of(G, "serial") == []


def test_paths_to_company_and_jurisdiction(case: tuple[Store, nx.MultiDiGraph]) -> None:
    _, G = case
    paths = paths_to(G, "company:tencent")  # case-insensitive company names
    assert paths and all(p[0] == f"app:{APP}" and p[-1] == "company:Tencent" for p in paths)
    assert [f"app:{APP}", "sdk:tencent_bugly", "company:Tencent"] in paths
    assert [f"app:{APP}", "sdk:tencent_bugly", "host:android.bugly.qq.com", "company:Tencent"] in paths
    assert all(p[-1] == "jurisdiction:CN" for p in paths_to(G, "jurisdiction:cn"))
    assert paths_to(G, "country:KP") == []
    with pytest.raises(GraphError):
        paths_to(G, "Tencent")


def test_paths_to_server_country(case: tuple[Store, nx.MultiDiGraph], enricher: Enricher) -> None:
    _, G = case
    cc = enricher.ip_info(IP_CDN).country
    if not cc:
        pytest.skip("embedded geo-IP database has no country for the test IP")
    paths = paths_to(G, f"country:{cc}")
    assert [f"app:{APP}", "host:cdn.runtime-config.net", f"ip:{IP_CDN}", f"country:{cc}"] in paths


def test_provenance(case: tuple[Store, nx.MultiDiGraph]) -> None:
    store, G = case
    from audit import __version__

    assert G.graph["tool_version"] == __version__
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", G.graph["created"])
    assert {i["sha256"] for i in G.graph["inputs"]} == {i["sha256"] or "" for i in store.inputs()}
    assert G.graph["databases"] and all(d["name"] for d in G.graph["databases"])


def test_unlabelled_traffic_goes_to_the_only_app(enricher: Enricher) -> None:
    store = Store(":memory:")
    store.add_scan(make_scan(), app=APP)
    store.add_connections(make_traffic(app=""))
    G = build_graph(store, enricher=enricher, companies=COMPANIES)
    assert [n for n, a in G.nodes(data=True) if a["layer"] == "app"] == [f"app:{APP}"]
    assert G.edges[f"app:{APP}", "host:cdn.runtime-config.net", "contacts"]["flows"] == 1


def test_two_apps_keep_their_own_counts(enricher: Enricher) -> None:
    store = Store(":memory:")
    make_case(store, "com.a")
    store.add_connections(make_traffic("com.b")[:3])
    G = build_graph(store, enricher=enricher, companies=COMPANIES)
    assert G.edges["app:com.b", "host:api.example-messenger.com", "contacts"]["flows"] == 3
    assert G.edges["app:com.a", "host:api.example-messenger.com", "contacts"]["flows"] == 20
    only_b = build_graph(store, "com.b", enricher=enricher, companies=COMPANIES)
    assert "app:com.a" not in only_b and "sdk:tencent_bugly" not in only_b


def test_bare_ip_findings_follow_dns_names(enricher: Enricher) -> None:
    store = Store(":memory:")
    store.add_dns([DnsRecord(1.0, "pcap", "tracker.example.net", answers=("198.51.100.7",), app=APP)])
    store.add_connections([
        Connection(2.0, "pcap", "http", app=APP, host="198.51.100.7", ip="198.51.100.7", port=80,
                   findings=(DataFinding("aaid", "query:adid", "plain", "pattern", "38•••"),)),
    ])  # fmt: skip
    G = build_graph(store, enricher=enricher, companies=COMPANIES)
    assert G.has_edge("data:aaid", "host:tracker.example.net", "sent_to")
    assert "host:198.51.100.7" not in G


def _same_graph(a: nx.MultiDiGraph, b: nx.MultiDiGraph) -> None:
    assert set(a.nodes) == set(b.nodes)
    assert {(u, v, str(k)) for u, v, k in a.edges(keys=True)} == {
        (u, v, str(k)) for u, v, k in b.edges(keys=True)
    }
    for n in a.nodes:
        assert dict(a.nodes[n]) == dict(b.nodes[n]), n
    for u, v, k, attrs in a.edges(keys=True, data=True):
        assert dict(attrs) == dict(b.edges[u, v, str(k)]), (u, v, k)


@pytest.mark.parametrize("suffix", [".graphml", ".json"])
def test_export_round_trip(tmp_path: Path, enricher: Enricher, suffix: str) -> None:
    store = Store(":memory:")
    make_case(store, evil=True)
    G = build_graph(store, enricher=enricher, companies=COMPANIES)
    path = tmp_path / f"case{suffix}"
    assert export_graph(G, path) == suffix[1:]
    back = read_graph(path)
    _same_graph(sanitise(G), back)
    if suffix == ".graphml":
        assert {k: v for k, v in back.graph.items() if k in ("tool_version", "inputs")} == {
            "tool_version": G.graph["tool_version"], "inputs": json.dumps(G.graph["inputs"], sort_keys=True,
                                                                            ensure_ascii=False),
        }  # fmt: skip
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert "edges" in data and "links" not in data


def test_graphml_survives_control_characters(tmp_path: Path, enricher: Enricher) -> None:
    store = Store(":memory:")
    store.add_connections(
        [Connection(1.0, "har", "http", app=APP, host="bad\x01host\x1b.example", ip="192.0.2.1")]
    )
    G = build_graph(store, enricher=enricher, companies=COMPANIES)
    export_graph(G, tmp_path / "g.graphml")
    back = read_graph(tmp_path / "g.graphml")
    assert "host:bad\ufffdhost\ufffd.example" in back


def test_dot_export_quotes_hostile_names(tmp_path: Path, enricher: Enricher) -> None:
    store = Store(":memory:")
    make_case(store, evil=True)
    G = build_graph(store, enricher=enricher, companies=COMPANIES)
    path = tmp_path / "g.dot"
    assert export_graph(G, path) == "dot"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("digraph dataflow {") and text.rstrip().endswith("}")
    quoted = r'"(?:[^"\\]|\\.)*"'
    stmt = re.compile(rf"^  {quoted}( -> {quoted})? \[({quoted}={quoted}(, )?)*\];$")
    lines = [ln for ln in text.splitlines()[3:-1] if not ln.startswith("  //")]
    assert len(lines) == G.number_of_nodes() + G.number_of_edges()
    assert all(stmt.match(ln) for ln in lines), [ln for ln in lines if not stmt.match(ln)][:2]


def test_export_rejects_unknown_format(tmp_path: Path, case: tuple[Store, nx.MultiDiGraph]) -> None:
    _, G = case
    with pytest.raises(GraphError, match="unknown graph format"):
        export_graph(G, tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


def test_read_graph_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.graphml"
    bad.write_text("<graphml><oops", encoding="utf-8")
    with pytest.raises(GraphError, match="bad.graphml"):
        read_graph(bad)


@pytest.mark.parametrize(
    ("host", "domain"),
    # private suffixes count everywhere (audit/names.py): an S3 bucket, a GitHub page are their
    # tenants' own domains; the graph alone used to say amazonaws.com, the endpoints x.s3.amazonaws.com
    [("api.weixin.qq.com", "qq.com"), ("a.b.co.uk", "b.co.uk"), ("x.s3.amazonaws.com", "x.s3.amazonaws.com"),
     ("someone.github.io", "someone.github.io"), ("203.0.113.5", None), ("[2001:db8::1]:443", None),
     ("API.Example.CN.", "example.cn"), ("localhost", None)],
)  # fmt: skip
def test_registrable_domain(host: str, domain: str | None) -> None:
    assert registrable_domain(host) == domain


@pytest.mark.parametrize("suffix", [".graphml", ".json"])
def test_pinned_hosts_and_app_transport_facts(tmp_path: Path, enricher: Enricher, suffix: str) -> None:
    """The messenger fixture pins its gateway: the host node says so, also after an export."""
    from audit.static.scanner import scan_path

    store = Store(":memory:")
    store.add_scan(scan_path(Path(__file__).parent / "fixtures" / "apks" / "messenger.apk"))
    store.add_connections([Connection(1.0, "live", "tls", "failed", "com.example.messenger", "gw.messenger-example.cn",
                                      sni="gw.messenger-example.cn", ip="43.156.32.20", port=443)])  # fmt: skip
    G = build_graph(store, enricher=enricher, companies=COMPANIES)
    gw = G.nodes["host:gw.messenger-example.cn"]
    assert (gw["pinned"], gw["pin_count"]) == (
        "gw.messenger-example.cn (res/xml/network_security_config.xml)",
        2,
    )
    assert "pinned" not in G.nodes["host:api.messenger-example.cn"]
    app = G.nodes["app:com.example.messenger"]
    assert (app["cleartext_default"], app["user_cas_trusted"]) == (False, False)
    export_graph(G, tmp_path / f"g{suffix}")
    back = read_graph(tmp_path / f"g{suffix}")
    assert back.nodes["host:gw.messenger-example.cn"]["pin_count"] == 2
    assert back.nodes["app:com.example.messenger"]["user_cas_trusted"] is False
