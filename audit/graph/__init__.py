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

The package has one module per concern: :mod:`~audit.graph.ids` (layers, node ids),
:mod:`~audit.graph.build`, :mod:`~audit.graph.queries` and :mod:`~audit.graph.export`; this module
re-exports their public names.
"""

from audit.graph.build import build_graph
from audit.graph.export import (
    export_graph,
    graph_format,
    graph_from_json,
    graph_to_json,
    iter_dot,
    layer_counts,
    read_graph,
    render_graph,
    sanitise,
)
from audit.graph.ids import (
    FORMATS,
    LAYERS,
    UNLABELLED_APP,
    GraphError,
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
from audit.graph.queries import Receiver, host_facts, paths_to, receivers_of, target_node

__all__ = [
    "FORMATS", "LAYERS", "UNLABELLED_APP", "GraphError", "Receiver", "app_id", "asn_id", "build_graph",
    "combine_evidence", "company_id", "country_id", "data_id", "domain_id", "export_graph", "graph_format",
    "graph_from_json", "graph_to_json", "host_facts", "host_id", "ip_id", "iter_dot", "jurisdiction_id", "layer_counts",
    "paths_to", "read_graph", "receivers_of", "render_graph", "sanitise", "sdk_id", "target_node",
]  # fmt: skip
