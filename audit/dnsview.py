"""``audit dns``: every name looked up in the case, its answers, when it was first asked, and whether
any connection went to it (issue 12).

A lookup shows intent and tells the resolver which service the app wants, even when the capture
holds no connection to it (``app.adjust.com`` asked and then not contacted, or contacted outside the
capture). A name counts as *contacted* when a connection went to one of its answers (an IP, or a
CNAME target named as the connection's host or SNI), or to the name itself by host or SNI.
Rows are read from the case file's DNS records and connections; see docs/dns.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from audit.models import time_window
from audit.names import normalize_host, normalize_ip
from audit.store import Store

__all__ = ["CSV_COLUMNS", "TABLE_COLUMNS", "DnsName", "dns_names"]

#: ``audit dns --format csv`` columns: every key of :meth:`DnsName.to_dict`, in this order.
CSV_COLUMNS = ("name", "answers", "qtypes", "lookups", "first_seen", "contacted", "connections", "apps")
#: ``audit dns --table`` columns.
TABLE_COLUMNS = ("name", "answers", "lookups", "contacted", "connections", "apps")


@dataclass(frozen=True)
class DnsName:
    """One name the case's traffic asked DNS for."""

    name: str
    answers: tuple[str, ...]
    """IP addresses and CNAME targets answered, first answered first (empty: no answer seen)."""
    qtypes: tuple[str, ...]
    """Question types asked (A, AAAA, HTTPS …)."""
    lookups: int
    """Times it was asked (distinct question time and type)."""
    first_seen: float | None
    """Earliest plausible time it was asked (:func:`audit.models.plausible_time`); None if none."""
    contacted: bool
    """A connection went to one of its answers, or to the name itself by host or SNI."""
    connections: int
    """Connections that went to it (to an answer, or by host or SNI), each counted once."""
    apps: tuple[str, ...]
    """App labels of the lookups."""

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        for key in ("answers", "qtypes", "apps"):
            d[key] = list(d[key])
        return d


def _ip(value: str | None) -> str | None:
    return normalize_ip(value) if value else None


def dns_names(store: Store, app: str | None = None) -> list[DnsName]:
    """Every name looked up (for one app label), sorted by name."""
    answers: dict[str, dict[str, None]] = {}
    qtypes: dict[str, dict[str, None]] = {}
    apps: dict[str, set[str]] = {}
    first: dict[str, float] = {}
    for r in store.dns_lookups(app, time_window()):
        name = str(r["name"])
        answers.setdefault(name, {})
        if r["answer"]:
            answers[name][str(r["answer"])] = None
        if r["qtype"]:
            qtypes.setdefault(name, {})[str(r["qtype"])] = None
        if r["app"]:
            apps.setdefault(name, set()).add(str(r["app"]))
        if r["first_seen"] is not None:
            first[name] = min(first.get(name, float("inf")), float(r["first_seen"]))
    if not answers:
        return []
    counts = store.dns_lookup_counts(app)

    # Where the connections went: flows per IP and per host name (host or SNI, one count per group).
    targets = store.connection_targets(app)
    flows = [int(t["flows"]) for t in targets]
    by_ip: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    for i, t in enumerate(targets):
        ip = _ip(t["ip"])
        if ip:
            by_ip.setdefault(ip, []).append(i)
        for host in {normalize_host(t["host"]), normalize_host(t["sni"])} - {None}:
            by_name.setdefault(str(host), []).append(i)

    def reached(name: str, said: Iterable[str]) -> set[int]:
        groups = set(by_name.get(name, ()))
        for a in said:
            ip = _ip(a)
            groups.update(by_ip.get(ip, ()) if ip else by_name.get(normalize_host(a) or a, ()))
        return groups

    out = []
    for name, said in answers.items():
        groups = reached(name, said)
        out.append(
            DnsName(
                name=name, answers=tuple(said), qtypes=tuple(qtypes.get(name, {})), lookups=counts.get(name, 0),
                first_seen=first.get(name), contacted=bool(groups), connections=sum(flows[g] for g in groups),
                apps=tuple(sorted(apps.get(name, ()))),
            )
        )  # fmt: skip
    return sorted(out, key=lambda n: n.name)
