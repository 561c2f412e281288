"""Node layers and typed node ids of the data-flow graph (``"host:api.example.com"``, ``"ip:203.0.113.5"``)."""

from __future__ import annotations

from audit.errors import AuditError

#: Node layers, in drawing order.
LAYERS = ("app", "sdk", "host", "domain", "ip", "country", "asn", "company", "jurisdiction", "data")

#: Export formats of :func:`export_graph`, by file extension.
FORMATS = {".graphml": "graphml", ".json": "json", ".dot": "dot", ".gv": "dot"}

UNLABELLED_APP = "(unlabelled)"


class GraphError(AuditError):
    """A graph cannot be exported or a query is malformed."""


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
