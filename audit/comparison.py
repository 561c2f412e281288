"""Static versus observed, by host: what the APK names and what the app contacted.

One comparison for ``audit diff`` (hosts and registrable domains of each side) and the report's
"Static vs dynamic" section. Hosts are compared by name (the IP literal for unnamed connections); a
contacted host absent from the binary whose registrable domain is in it is told apart, since the app
may build such names at run time. Only servers count on the static side (``Endpoint.counted``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from audit.models import Destination, ScanResult
from audit.names import registrable_domain

__all__ = ["HostComparison", "compare_hosts", "observed_hosts", "static_hosts"]


@dataclass(frozen=True)
class StaticHosts:
    """The servers the scanned APKs name."""

    sdks: dict[str, str | None]
    """Host → the SDK whose code loads it (None: the app's own code or no code)."""
    placeholders: int
    """Endpoints left out as placeholders (example.com, localhost, private addresses …)."""
    set_aside: int
    """Host- or IP-shaped strings with no evidence that they name a server (``network: false``)."""

    @property
    def domains(self) -> set[str]:
        return {d for d in map(registrable_domain, self.sdks) if d}


def static_hosts(scans: Iterable[ScanResult]) -> StaticHosts:
    hosts: dict[str, str | None] = {}
    placeholders = set_aside = 0
    for r in scans:
        for e in r.endpoints:
            if e.placeholder:
                placeholders += 1
            elif not e.network:
                set_aside += 1
            elif e.host and (e.sdk or e.host not in hosts):
                hosts[e.host] = e.sdk or hosts.get(e.host)
    return StaticHosts(hosts, placeholders, set_aside)


def observed_hosts(dests: Iterable[Destination]) -> dict[str, int]:
    """Contacted host (the IP literal for unnamed connections) → flows."""
    out: dict[str, int] = {}
    for d in dests:
        h = d.host or d.ip
        if h:
            out[h] = out.get(h, 0) + d.flows
    return out


@dataclass(frozen=True)
class HostComparison:
    static: StaticHosts
    observed: dict[str, int]
    both: tuple[str, ...]
    static_only: tuple[str, ...]
    observed_only: tuple[str, ...]
    observed_only_domain_in_binary: tuple[str, ...]
    """Contacted hosts absent from the binary whose registrable domain does appear there."""


def compare_hosts(scans: Iterable[ScanResult], dests: Iterable[Destination]) -> HostComparison:
    static = static_hosts(scans)
    observed = observed_hosts(dests)
    domains = static.domains
    observed_only = sorted(set(observed) - set(static.sdks))
    return HostComparison(
        static=static,
        observed=observed,
        both=tuple(sorted(set(static.sdks) & set(observed))),
        static_only=tuple(sorted(set(static.sdks) - set(observed))),
        observed_only=tuple(observed_only),
        observed_only_domain_in_binary=tuple(h for h in observed_only if registrable_domain(h) in domains),
    )
