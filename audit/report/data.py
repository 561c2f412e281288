"""Everything the report shows, computed from the case file as plain data (no HTML here).

The three facts per destination stay apart in every aggregate: server country (geo-IP of the IP
contacted), network (ASN) and company with its home country.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from audit import __version__
from audit.comparison import compare_hosts
from audit.dnsview import DnsName, dns_names
from audit.enrich.company import COMPANIES_FILE, CompanyLookup, resolve_owner
from audit.enrich.geoip import Enricher
from audit.graph import build_graph, host_facts, receivers_of
from audit.models import NOT_PERSONAL_DATA, Destination, ScanResult, Vantage
from audit.names import parse_ip, registrable_domain
from audit.store import Store

UNKNOWN = "unknown"
#: Company-country key of the app vendor's own servers when no company owns the domain.
FIRST_PARTY = "first party"


def first_party_owner(d: Destination) -> str | None:
    """Company-table key for a first-party host no company owns: ``com.example.app (own servers)``."""
    return f"{d.first_party} (own servers)" if d.first_party and not d.company else None


@dataclass(frozen=True)
class Share:
    """One row of a "share of flows and bytes" table."""

    key: str
    """Country code, company name or ``unknown``."""
    flows: int
    bytes: int
    hosts: int
    flow_share: float
    """0..1 of all flows."""
    byte_share: float
    note: str = ""
    """e.g. the company's home country, or why the key is unknown."""


@dataclass(frozen=True)
class DataReceivers:
    """A personal-data type and who received it."""

    data_type: str
    flows: int
    hosts: tuple[str, ...]
    companies: tuple[str, ...]
    """``Tencent (CN)`` …"""
    server_countries: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    """Static vs dynamic, by host name (IP literal for unnamed connections)."""

    both: tuple[str, ...]
    static_only: tuple[str, ...]
    observed_only: tuple[str, ...]
    observed_only_domain_in_binary: tuple[str, ...]
    """Contacted hosts absent from the binary whose registrable domain does appear there."""
    placeholders: int
    """Endpoints skipped as placeholders (example.com, localhost, private IPs …)."""
    set_aside: int = 0
    """Host- or IP-shaped strings with no evidence that they name a server (``network: false``)."""


@dataclass(frozen=True)
class Capability:
    """Where data *could* go, from the static scan alone (not observed traffic): the hosts the
    code names, by the home country of the company owning them, or the SDKs whose code is in the
    app, by their owner's home country."""

    country: str
    """ISO 3166-1 code, or ``unknown`` (no company known for the host)."""
    count: int
    """Hosts or SDKs."""
    names: tuple[str, ...]
    """The companies (for hosts) or ``SDK (owner)`` (for SDKs)."""
    examples: tuple[str, ...] = ()
    """A few of the hosts, busiest-named first (alphabetical)."""


@dataclass
class ReportData:
    """Inputs of the HTML template and the charts."""

    title: str
    apps: list[dict[str, Any]]
    generated_at: float
    tool_version: str
    destinations: list[Destination]
    hosts_contacted: int
    total_flows: int
    total_bytes: int
    server_countries: list[Share]
    companies: list[Share]
    company_countries: list[Share]
    networks: list[Share]
    receivers: list[DataReceivers]
    pinned: list[dict[str, Any]]
    transport: list[dict[str, Any]]
    """Per scanned app: the transport security it declares (see :func:`_transport_row`)."""
    sdks: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]
    capabilities: list[dict[str, Any]]
    """Capabilities in the code (reads the advertising ID …), one row each."""
    mentions: list[dict[str, Any]]
    """SDK vendors whose hosts are named while their code is not in the app."""
    findings: list[dict[str, Any]]
    comparison: Comparison
    host_rows: list[dict[str, Any]]
    timeline: list[tuple[float, str, int]]
    inputs: list[dict[str, Any]]
    databases: list[dict[str, str]]
    graph: nx.MultiDiGraph
    scans: list[tuple[str, ScanResult]] = field(default_factory=list)
    asn_database: bool = False
    """Was a database that gives AS numbers (an ASN .mmdb, an imported table) in use?"""
    labels: list[str] = field(default_factory=list)
    """Every app label the report covers (the title names the main one)."""
    could_send_hosts: list[Capability] = field(default_factory=list)
    """Hosts in the code by the owning company's home country (capability, not traffic)."""
    could_send_sdks: list[Capability] = field(default_factory=list)
    """SDKs in the code by their owner's home country (capability, not traffic)."""
    local: list[Destination] = field(default_factory=list)
    """Local-network noise (broadcast, multicast, mDNS …): listed apart, counted nowhere."""
    background: list[Destination] = field(default_factory=list)
    """Well-known OS traffic (connectivity checks, time sync, updates, push): listed apart, not
    counted as the app's (:mod:`audit.traffic.background`)."""
    attributions: tuple[str, ...] = ()
    """How the recorded flows (local noise left out) are tied to the app (:data:`ATTRIBUTIONS`)."""

    @property
    def device_wide(self) -> bool:
        """Only the analyst's label ties the traffic to the app: the capture may be the whole device's."""
        return bool(self.attributions) and set(self.attributions) <= {"label"}

    @property
    def inspected_flows(self) -> int:
        """Counted flows whose content was read."""
        return sum(d.inspected_flows for d in self.destinations)

    @property
    def unread_flows(self) -> int:
        return self.total_flows - self.inspected_flows

    @property
    def unread_bytes(self) -> int:
        return sum(d.not_inspected_bytes for d in self.destinations)

    @property
    def unread_reasons(self) -> list[tuple[str, int]]:
        """(reason, flows) of the counted flows whose content was not read, most flows first."""
        c: Counter[str] = Counter()
        for d in self.destinations:
            for why, n in d.not_inspected:
                c[why] += n
        return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))

    vantages: list[Vantage] = field(default_factory=list)
    """Where the device was for the captures (:func:`audit.destinations.capture_vantages`)."""
    source_notes: list[str] = field(default_factory=list)
    """Operators whose IPs got their network answers from different sources (:func:`source_notes`)."""
    date_notes: list[str] = field(default_factory=list)
    """Databases built far from the capture's dates (:func:`date_notes`)."""

    @property
    def seen_from(self) -> str:
        """``seen from US (given)``: where the device was, next to every server-country figure."""
        return seen_from(self.vantages)

    @property
    def seen_from_short(self) -> str:
        """``from US``, ``from DE, US``, or ``vantage unknown``: the same, for table headers (the given
        countries, else the observed ones, as :attr:`Destination.vantage` takes them)."""
        given = {v.country for v in self.vantages if v.how == "given"}
        countries = sorted(given or {v.country for v in self.vantages})
        return f"from {', '.join(countries)}" if countries else "vantage unknown"

    @property
    def mixed_vantage(self) -> bool:
        """Do the destinations come from captures made in different countries?"""
        return len({c for d in self.destinations for c in d.vantage}) > 1

    capture_decryption: tuple[int, int] = (0, 0)
    """(requests read from decrypted capture TLS, capture TLS connections left encrypted)."""
    looked_up: list[DnsName] = field(default_factory=list)
    """Names looked up in DNS that no connection went to (``audit dns``, ``contacted`` false)."""

    @property
    def empty(self) -> bool:
        """Nothing scanned and nothing recorded (OS traffic and local noise count as recorded)."""
        return not self.scans and not self.destinations and not self.background and not self.local

    @property
    def known_companies(self) -> list[Share]:
        """Third-party owners: neither unknown nor the app vendor's own (first-party) servers."""
        own = self.first_party_keys
        return [s for s in self.companies if s.key != UNKNOWN and s.key not in own]

    def flagged(self, flag: str) -> tuple[int, float]:
        """Hosts whose network carries ``flag`` (``anycast``, ``drop`` …) and their share of bytes."""
        hit = [d for d in self.destinations if flag in d.network_flags]
        total = sum(d.bytes_out + d.bytes_in for d in self.destinations)
        nbytes = sum(d.bytes_out + d.bytes_in for d in hit)
        return len({d.host or d.ip for d in hit}), (nbytes / total if total else 0.0)

    @property
    def missing_asn_database(self) -> bool:
        """Public servers were contacted but no database that gives AS numbers was in use."""
        return not self.asn_database and any(d.ip_scope == "public" for d in self.destinations)

    @property
    def first_party_keys(self) -> set[str]:
        return {k for k in (first_party_owner(d) for d in self.destinations) if k}

    @property
    def first_party_hosts(self) -> int:
        """Hosts run by the app vendor itself that no known company owns."""
        return len({d.host or d.ip for d in self.destinations if first_party_owner(d)})

    @property
    def known_countries(self) -> list[Share]:
        return [s for s in self.server_countries if s.key != UNKNOWN]


def _shares(
    dests: Sequence[Destination], key: Any, note: Any = None, *, total_flows: int, total_bytes: int
) -> list[Share]:
    flows: Counter[str] = Counter()
    nbytes: Counter[str] = Counter()
    hosts: dict[str, set[str]] = defaultdict(set)
    notes: dict[str, str] = {}
    for d in dests:
        k = key(d) or UNKNOWN
        flows[k] += d.flows
        nbytes[k] += d.bytes_out + d.bytes_in
        hosts[k].add(d.host or d.ip or "")
        if note is not None and k not in notes:
            notes[k] = note(d) or ""
    rows = [
        Share(
            key=k,
            flows=flows[k],
            bytes=nbytes[k],
            hosts=len(hosts[k]),
            flow_share=flows[k] / total_flows if total_flows else 0.0,
            byte_share=nbytes[k] / total_bytes if total_bytes else 0.0,
            note=notes.get(k, ""),
        )  # fmt: skip
        for k in flows
    ]
    # unknown last, then by bytes, flows, name: stable for identical inputs
    return sorted(rows, key=lambda s: (s.key == UNKNOWN, -s.bytes, -s.flows, s.key))


def _pin_evidence(scans: Sequence[tuple[str, ScanResult]], d: Destination, today: str) -> str:
    """Why the app may have refused the interception certificate on ``d``, from the scans of the
    apps that made the connection: a pin-set of the applied network security config covering the
    host (unless expired or overridden), else pins in the code, else user CAs not being trusted."""
    host = d.sni or d.host
    mine = [r for label, r in scans if not d.apps or label in d.apps]
    if not host or not mine:
        return ""
    for r in mine:
        rule = r.transport.pin_rule(host)
        if rule is not None:
            if rule.expired(today):
                return f"pin-set for {rule.scope} in {rule.file} expired {rule.pin_expiration} (no longer enforced)"
            expires = f", expire {rule.pin_expiration}" if rule.pin_expiration else ""
            bypass = (
                "; overridden for some trust anchors (overridePins/debug)"
                if r.transport.pins_overridden
                else ""
            )
            return f"pinned for {rule.scope} in {rule.file} ({len(rule.pins)} pins{expires}){bypass}"
    for r in mine:
        if r.transport.code_pins:
            classes = sorted({c for p in r.transport.code_pins for c in p.classes})
            where = f" ({', '.join(classes[:3])}{' …' if len(classes) > 3 else ''})" if classes else ""
            return f"{len(r.transport.code_pins)} certificate pins in the code{where}; which hosts they cover is not known"
    for r in mine:
        if r.transport.user_cas_trusted is False:
            return (
                f"no pin found; the app does not trust user-installed CAs (target SDK {r.transport.target_sdk}): "
                "interception needs the CA in the system store"
            )
    return ""


def _transport_row(label: str, r: ScanResult, today: str) -> dict[str, Any]:
    t = r.transport
    return {
        "label": label,
        "config_files": list(t.config_files),
        "applied_config": t.applied_config,
        "pins_overridden": t.pins_overridden,
        "cleartext_default": t.cleartext_default,
        "user_cas_trusted": t.user_cas_trusted,
        "target_sdk": t.target_sdk,
        "cleartext_domains": [d.domain for d in t.domains if d.cleartext],
        "debug_user_cas": "user" in t.debug_trust_anchors,
        "debuggable": t.debuggable,
        "pinned": [
            {
                "domain": d.scope,
                "pins": len(d.pins),
                "expiration": d.pin_expiration or "",
                "expired": d.expired(today),
                "file": d.file,
            }
            for d in t.pinned_domains
        ],  # fmt: skip
        "code_pins": [
            {"pin": p.pin, "classes": ", ".join(p.classes), "files": ", ".join(p.files)} for p in t.code_pins
        ],
        "libraries": list(t.pinning_libraries),
    }


def _unknown_country_note(d: Destination) -> str:
    if d.server_country:
        return d.server_city or ""
    if d.ip_scope and d.ip_scope != "public":
        return f"{d.ip_scope} address"
    if not d.ip:
        return "no IP recorded"
    return "not in the geo-IP database"


def _network(d: Destination) -> str | None:
    if d.asn:
        return f"AS{d.asn}"
    return d.asn_org


def _sources_text(sources: Iterable[Any], limit: int = 3) -> str:
    items = [f"{s.kind}: {s.file}" for s in sources]
    more = len(items) - limit
    return "; ".join(items[:limit]) + (f"; +{more} more" if more > 0 else "")


def collect_report(
    store: Store,
    app: str | None = None,
    *,
    enricher: Enricher | None = None,
    companies: CompanyLookup | None = None,
    generated_at: float | None = None,
) -> ReportData:
    """Gather the report's numbers and tables from a case file."""
    from audit.destinations import enricher_for, list_destinations

    if enricher is None:
        enricher = enricher_for(store)
    if companies is None:
        from audit.enrich.company import load_companies

        companies = load_companies()
    labels = [app] if app else store.apps()
    scans = store.scans(app)  # parsed once, for the destinations, the graph and the tables
    everything = sorted(
        list_destinations(store, app=app, enricher=enricher, companies=companies, scans=scans, local=True),
        key=lambda d: (-(d.bytes_out + d.bytes_in), -d.flows, d.host or "", d.ip or "", d.port or 0),
    )
    # Local noise and OS background traffic are listed apart and counted nowhere (issue 12).
    dests = [d for d in everything if not d.background]
    local = [d for d in everything if d.background == "local"]
    background = [d for d in everything if d.background == "os"]
    G = build_graph(
        store, app, enricher=enricher, companies=companies, destinations=dests if len(labels) <= 1 else None,
        scans=scans, background=False,
    )  # fmt: skip
    total_flows = sum(d.flows for d in dests)
    total_bytes = sum(d.bytes_out + d.bytes_in for d in dests)
    tot = {"total_flows": total_flows, "total_bytes": total_bytes}

    server_countries = _shares(dests, lambda d: d.server_country, _unknown_country_note, **tot)
    company_rows = _shares(
        dests,
        lambda d: d.company or first_party_owner(d),
        lambda d: (
            d.company_country
            or (
                ""
                if d.company
                else "the app vendor; home country unknown"
                if d.first_party
                else "no owner known"
            )
        ),
        **tot,
    )
    company_countries = _shares(
        dests,
        lambda d: d.company_country or (FIRST_PARTY if d.first_party and not d.company else None),
        None,
        **tot,
    )
    networks = _shares(dests, _network, lambda d: d.asn_org if d.asn else "", **tot)

    receivers = []
    data_nodes = sorted(
        n
        for n, a in G.nodes(data=True)
        if a["layer"] == "data" and n.split(":", 1)[1] not in NOT_PERSONAL_DATA
    )  # coordinates are listed among the data findings, not as personal data
    for did in data_nodes:
        recs = receivers_of(G, did)
        comps = sorted({f"{c} ({cc})" if cc else c for r in recs for c, cc in _company_pairs(G, r.host)})
        receivers.append(
            DataReceivers(
                data_type=did.split(":", 1)[1],
                flows=sum(r.flows for r in recs),
                hosts=tuple(r.host for r in recs),
                companies=tuple(comps),
                server_countries=tuple(sorted({c for r in recs for c in r.server_countries})),
            )
        )
    receivers.sort(key=lambda r: (-len(r.hosts), -r.flows, r.data_type))

    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() if generated_at is None else generated_at))
    pinned = [
        {
            "host": d.host or d.ip or "",
            "ip": d.ip or "",
            "port": d.port,
            "flows": d.flows,
            "server_country": d.server_country or "",
            "company": d.company or "",
            "static": _pin_evidence(scans, d, today),
        }  # fmt: skip
        for d in dests
        if d.tls == "failed"
    ]
    transport = [_transport_row(label, r, today) for label, r in scans]

    comparison, host_rows = _compare(G, scans, dests)
    sdks = _sdk_rows(G, scans)
    endpoints = _endpoint_rows(scans, {h for h in comparison.both})
    findings = _finding_rows(store, app, dests)
    timeline = _app_timeline(store.connection_times(app), dests, [*local, *background])
    databases = _databases(store, enricher, companies, dests)

    apps_info = []
    for label, r in scans:
        a = r.app
        apps_info.append(
            {
                "label": label,
                "package": a.package or "",
                "version": a.version_name or "",
                "version_code": a.version_code or "",
                "sha256": a.sha256,
                "file": a.file,
                "format": a.format,
                "sdks": len(r.sdks),
                "endpoints": len(r.servers),
                "errors": list(r.errors),
            }  # fmt: skip
        )
    could_hosts, could_sdks = _capabilities(scans, [*comparison.both, *comparison.static_only], companies)
    from audit.destinations import capture_vantages

    vantages = capture_vantages(store, enricher, app) if everything else []
    return ReportData(
        title=report_title(app, labels, scans),
        apps=apps_info,
        generated_at=time.time() if generated_at is None else generated_at,
        tool_version=__version__,
        destinations=dests,
        hosts_contacted=len({d.host or d.ip for d in dests if d.host or d.ip}),
        total_flows=total_flows,
        total_bytes=total_bytes,
        server_countries=server_countries,
        companies=company_rows,
        company_countries=company_countries,
        networks=networks,
        receivers=receivers,
        pinned=pinned,
        transport=transport,
        sdks=sdks,
        endpoints=endpoints,
        capabilities=_named_rows(scans, "capabilities"),
        mentions=_named_rows(scans, "sdk_mentions"),
        findings=findings,
        comparison=comparison,
        host_rows=host_rows,
        timeline=timeline,
        inputs=store.inputs(),
        databases=databases,
        graph=G,
        scans=scans,
        asn_database=any("asn" in b.facts for b in getattr(enricher, "networks", ())),
        labels=labels,
        could_send_hosts=could_hosts,
        could_send_sdks=could_sdks,
        local=local,
        background=background,
        attributions=tuple(sorted({a for d in (*dests, *background) for a in d.attribution})),
        vantages=vantages,
        source_notes=source_notes(dests),
        date_notes=date_notes(dests, enricher),
        capture_decryption=store.capture_decryption(app),
        looked_up=[n for n in dns_names(store, app) if not n.contacted],
    )


def _app_timeline(
    times: Iterable[tuple[float, str | None, str | None, int]],
    counted: Sequence[Destination],
    apart: Sequence[Destination],
) -> list[tuple[float, str, int]]:
    """Timeline points (time, host, bytes) without the connections of destinations listed apart
    (local noise, OS traffic): matched by host name, else by an IP no counted destination has."""
    counted_hosts = {d.host for d in counted if d.host}
    names = ({d.host for d in apart if d.host} | {d.sni for d in apart if d.sni}) - counted_hosts
    ips = {d.ip for d in apart if d.ip} - {d.ip for d in counted if d.ip}
    out = []
    for ts, host, ip, b in times:
        h = (host or "").lower()
        if h in names or (ip in ips and h not in counted_hosts):
            continue
        out.append((ts, host or ip or "?", b))
    return out


def report_title(app: str | None, labels: Sequence[str], scans: Sequence[tuple[str, ScanResult]]) -> str:
    """The app the report is about, by its label and package (``Weibo (com.sina.weibo)``), never a
    list of every label in the case: those are in the methodology. Several scanned packages read
    ``first and N more apps``; a case with nothing in it is ``empty case``."""
    packages = {label: r.app.package for label, r in scans if r.app.package}
    scanned = list(dict.fromkeys(label for label, _ in scans))
    main = app or (scanned[0] if scanned else labels[0] if labels else None)
    if main is None:
        return "empty case"
    pkg = packages.get(main)
    title = main if not pkg or pkg == main else f"{main} ({pkg})"
    more = len(scanned) - 1 if not app else 0
    return title + (f" and {more} more app{'s' if more != 1 else ''}" if more > 0 else "")


def _capabilities(
    scans: Sequence[tuple[str, ScanResult]], hosts: Iterable[str], companies: CompanyLookup
) -> tuple[list[Capability], list[Capability]]:
    """Static-only answers to "where could the data go": hosts in the code by the owning company's
    home country, SDKs in the code by their owner's (ultimate owner's) home country."""
    by_host: dict[str, tuple[set[str], list[str]]] = defaultdict(lambda: (set(), []))
    for h in sorted(set(hosts)):
        info = companies.lookup(h)
        names, examples = by_host[info.country.upper() if info else UNKNOWN]
        if info:
            names.add(info.company)
        examples.append(h)
    by_sdk: dict[str, set[str]] = defaultdict(set)
    for _, r in scans:
        for sdk in r.sdks:
            owner, country = resolve_owner(sdk.owner, sdk.owner_country, companies)
            by_sdk[country.upper() if country else UNKNOWN].add(
                f"{sdk.name} ({owner})" if owner else sdk.name
            )

    def order(key: str, n: int) -> tuple[bool, int, str]:
        return key == UNKNOWN, -n, key

    host_rows = [Capability(cc, len(ex), tuple(sorted(names, key=str.casefold)), tuple(ex[:5]))
                 for cc, (names, ex) in by_host.items()]  # fmt: skip
    sdk_rows = [
        Capability(cc, len(names), tuple(sorted(names, key=str.casefold))) for cc, names in by_sdk.items()
    ]
    return (sorted(host_rows, key=lambda c: order(c.country, c.count)),
            sorted(sdk_rows, key=lambda c: order(c.country, c.count)))  # fmt: skip


def _company_pairs(G: nx.MultiDiGraph, host: str) -> list[tuple[str, str]]:
    hid = f"host:{host}"
    out = []
    for _, cid, k in G.out_edges(hid, keys=True):
        if k != "owned_by":
            continue
        ccs = [str(G.nodes[j]["label"]) for _, j, kk in G.out_edges(cid, keys=True) if kk == "based_in"]
        out.append((str(G.nodes[cid]["label"]), "/".join(sorted(ccs))))
    return out


def _compare(
    G: nx.MultiDiGraph, scans: Sequence[tuple[str, ScanResult]], dests: Sequence[Destination]
) -> tuple[Comparison, list[dict[str, Any]]]:
    hc = compare_hosts((r for _, r in scans), dests)
    static_hosts, observed, static_domains = hc.static.sdks, hc.observed, hc.static.domains
    rows = []
    for h in sorted(set(static_hosts) | set(observed)):
        facts = host_facts(G, f"host:{h}") if f"host:{h}" in G else {}
        status = (
            "binary + contacted"
            if h in static_hosts and h in observed
            else ("binary only" if h in static_hosts else "contacted only")
        )
        rows.append(
            {
                "host": h,
                "domain": registrable_domain(h) or "",
                "status": status,
                "domain_in_binary": "yes" if registrable_domain(h) in static_domains else "no",
                "sdk": static_hosts.get(h) or "",
                "flows": observed.get(h, 0),
                "server_countries": ", ".join(facts.get("server_countries", ())),
                "companies": ", ".join(facts.get("companies", ())),
            }
        )
    cmp = Comparison(
        both=hc.both, static_only=hc.static_only, observed_only=hc.observed_only,
        observed_only_domain_in_binary=hc.observed_only_domain_in_binary, placeholders=hc.static.placeholders,
        set_aside=hc.static.set_aside,
    )  # fmt: skip
    return cmp, rows


def _sdk_rows(G: nx.MultiDiGraph, scans: Sequence[tuple[str, ScanResult]]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for label, r in scans:
        for s in r.sdks:
            sid = f"sdk:{s.id}"
            hosts = [v for _, v, k in G.out_edges(sid, keys=True) if k == "contacts"] if sid in G else []
            contacted = [v for v in hosts if G.nodes[v].get("evidence") in ("observed", "both")]
            row = rows.setdefault(
                s.id,
                {
                    "id": s.id, "name": s.name, "owner": s.owner, "owner_country": s.owner_country,
                    "category": s.category, "evidence": "; ".join(s.evidence), "classes": s.class_count,
                    "hosts": len(hosts), "contacted": len(contacted), "apps": set(),
                },
            )  # fmt: skip
            row["apps"].add(label)
    out = []
    for row in rows.values():
        row["apps"] = ", ".join(sorted(row["apps"]))
        out.append(row)
    return sorted(out, key=lambda r: (-r["contacted"], -r["hosts"], r["name"]))


def _named_rows(scans: Sequence[tuple[str, ScanResult]], which: str) -> list[dict[str, Any]]:
    """Rows of ``ScanResult.capabilities`` or ``ScanResult.sdk_mentions`` over the scanned apps."""
    rows: dict[str, dict[str, Any]] = {}
    for label, r in scans:
        for s in getattr(r, which):
            row = rows.setdefault(
                s.id,
                {
                    "id": s.id, "name": s.name, "owner": s.owner, "owner_country": s.owner_country,
                    "presence": s.presence, "classes": s.class_count, "hosts": ", ".join(s.hosts),
                    "evidence": "; ".join(s.evidence), "apps": set(),
                },
            )  # fmt: skip
            row["apps"].add(label)
    return [{**row, "apps": ", ".join(sorted(row["apps"]))} for _, row in sorted(rows.items())]


def _endpoint_rows(scans: Sequence[tuple[str, ScanResult]], contacted: set[str]) -> list[dict[str, Any]]:
    rows = []
    seen: set[tuple[str, str]] = set()
    for label, r in scans:
        for e in r.endpoints:
            if not e.network or (label, e.value) in seen:
                continue
            seen.add((label, e.value))
            rows.append(
                {
                    "value": e.value,
                    "host": e.host or "",
                    "kind": e.kind,
                    "sdk": e.sdk or "",
                    "placeholder": "yes" if e.placeholder else "",
                    "sources": _sources_text(e.sources),
                    "evidence": e.network_evidence or "",
                    "in_code": "yes" if e.in_code else "",
                    "contacted": "yes" if e.host and e.host in contacted else "",
                    "app": label,
                }  # fmt: skip
            )
    return sorted(
        rows, key=lambda r: (r["contacted"] != "yes", r["placeholder"] == "yes", r["host"], r["value"])
    )


def _finding_rows(store: Store, app: str | None, dests: Sequence[Destination]) -> list[dict[str, Any]]:
    by_ipport = {(d.ip, d.port): d for d in dests}
    by_host = {d.host: d for d in dests if d.host}
    rows = []
    for r in store.finding_summary(app):
        d = by_ipport.get((r["ip"], r["port"])) or by_host.get(r["host"])
        rows.append(
            {
                "data_type": r["data_type"],
                "host": r["host"] or (d.host if d else None) or r["ip"] or "",
                "location": r["location"],
                "encoding": r["encoding"],
                "confidence": r["confidence"],
                "masked": r["masked"],
                "flows": int(r["flows"]),
                "server_country": (d.server_country if d else None) or "",
                "company": (d.company if d else None) or "",
                "company_country": (d.company_country if d else None) or "",
            }  # fmt: skip
        )
    return rows


def _databases(
    store: Store, enricher: Enricher | None, companies: CompanyLookup | None, dests: Sequence[Destination]
) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    current: frozenset[str] = frozenset()
    if enricher is not None and hasattr(enricher, "describe"):
        current = frozenset(getattr(enricher, "labels", None) or {str(enricher.label)})
        roles = {
            "location": "server location (geo-IP)",
            "network": "network owner (AS number / organisation)",
        }
        for b in enricher.describe():
            name = f"{b['database']}; {b['provenance']}" if b.get("provenance") else b["database"]
            out.append({"name": name, "date": b["date"] or "", "role": roles.get(b["role"], b["role"])})
    # Answers made earlier with other databases (e.g. a recorder given another .mmdb) are evidence too.
    older: dict[str, str] = {}
    for info in store.cached_ip_info().values():
        if info.database and info.database not in current:
            older.setdefault(info.database, info.database_date or "")
    for d in dests:
        if d.geo_database and d.geo_database not in current:
            older.setdefault(d.geo_database, "")
    out += [
        {"name": k, "date": v, "role": "geo-IP / ASN (earlier answers)"} for k, v in sorted(older.items())
    ]
    size = f" ({len(companies)} companies)" if isinstance(companies, Sized) else ""
    out.append({"name": f"audit/data/{COMPANIES_FILE}{size}", "date": __version__,
                "role": "domain/SDK → company → home country"})  # fmt: skip
    return out


# ---- network facts: vantage, sources, database age (issue 12) ----------------------------------

#: How the report names each ``asn_source`` kind.
SOURCE_NAMES = {
    "embedded": "the embedded database", "libloc": "the IPFire location database", "mmdb": "a .mmdb file",
    "asn-table": "the imported ASN table", "other": "another database",
}  # fmt: skip


def seen_from(vantages: Sequence[Vantage]) -> str:
    """``seen from US (given)``, ``seen from DE (observed from the device's public address)``, or
    that the vantage is unknown."""
    given = sorted({v.country for v in vantages if v.how == "given"})
    observed = sorted({v.country for v in vantages if v.how == "observed"} - set(given))
    parts = [f"{', '.join(given)} (given)"] if given else []
    if observed:
        parts.append(f"{', '.join(observed)} (observed from the device's public address)")
    if not parts:
        return "vantage unknown (no --vantage given, no public device address in the capture)"
    return "seen from " + "; ".join(parts)


def _source_text(d: Destination) -> str:
    """Where a destination's network answer came from, in words."""
    if d.asn is not None:
        text = f"AS{d.asn} from {SOURCE_NAMES.get(d.asn_source or 'other', d.asn_source)}"
        if d.asn_org and d.asn_org_source and d.asn_org_source != d.asn_source:
            text += f", its name from {SOURCE_NAMES.get(d.asn_org_source, d.asn_org_source)}"
        elif not d.asn_org:
            text += ", no name"
        return text
    if d.asn_org:
        return (
            f"name only, no AS number, from {SOURCE_NAMES.get(d.asn_org_source or 'other', d.asn_org_source)}"
        )
    return "no network answer"


def _ip_order(ip: str) -> tuple[int, int, str]:
    addr = parse_ip(ip)
    return (addr.version, int(addr), ip) if addr is not None else (9, 0, ip)


#: Operators named one by one by :func:`source_notes`; the rest are counted.
MAX_SOURCE_NOTES = 10


def source_notes(dests: Sequence[Destination]) -> list[str]:
    """One sentence per operator (same company, same AS number or same AS organisation) whose public
    IPs got their network answers from different sources: which source answered each IP, so that two
    answers that read differently ("AS132203 Tencent" and a name without a number) are not taken
    for two operators."""
    groups: dict[tuple[str, str], dict[str, Destination]] = defaultdict(dict)
    for d in dests:
        if d.ip_scope != "public" or not d.ip:
            continue
        for kind, key in (("company", d.company), ("AS", f"AS{d.asn}" if d.asn else None),
                          ("network", d.asn_org.casefold() if d.asn_org else None)):  # fmt: skip
            if key:
                groups[(kind, key)].setdefault(d.ip, d)
    out: list[str] = []
    seen: set[frozenset[str]] = set()
    more = 0
    # The operators with most addresses first; past MAX_SOURCE_NOTES they are only counted.
    for (kind, key), by_ip in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        answers = {(d.asn_source, d.asn_org_source, d.asn is None) for d in by_ip.values()}
        ips = frozenset(by_ip)
        if len(answers) < 2 or ips in seen:
            continue
        seen.add(ips)
        if len(out) == MAX_SOURCE_NOTES:
            more += 1
            continue
        name = key if kind != "network" else next(d.asn_org for d in by_ip.values() if d.asn_org)
        per_source: dict[str, list[str]] = defaultdict(list)
        for ip, d in sorted(by_ip.items(), key=lambda item: _ip_order(item[0])):
            per_source[_source_text(d)].append(ip)
        parts = [
            f"{', '.join(ips_[:3])}{' …' if len(ips_) > 3 else ''}: {text}"
            for text, ips_ in sorted(per_source.items())
        ]
        out.append(
            f"{kind.capitalize()} {name}: its addresses were answered by different sources ({'; '.join(parts)})."
        )
    if more:
        out.append(f"{more} more operator{'s were' if more != 1 else ' was'} answered by different sources "
                   "(asn_source and asn_org_source of each address: audit destinations).")  # fmt: skip
    return out


#: Capture and database dates further apart than this (days) are noted in the methodology.
DATE_GAP_DAYS = 365


def date_notes(dests: Sequence[Destination], enricher: Enricher | None) -> list[str]:
    """One sentence per database in use whose build date is more than :data:`DATE_GAP_DAYS` away from
    the capture's dates (its plausible first and last times): servers move and networks change
    hands, so its answers are as that database saw them."""
    import datetime as dt

    times = [t for d in dests for t in (d.first_seen, d.last_seen) if t is not None]
    if not times or enricher is None or not hasattr(enricher, "describe"):
        return []
    first, last = (dt.datetime.fromtimestamp(t, dt.UTC).date() for t in (min(times), max(times)))
    span = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    out: list[str] = []
    seen: set[str] = set()
    for b in enricher.describe():
        if b["database"] in seen or not b.get("date"):
            continue
        seen.add(b["database"])
        try:
            built = dt.date.fromisoformat(str(b["date"])[:10])
        except ValueError:
            continue
        gap = (built - last).days if built > last else (first - built).days
        if gap <= DATE_GAP_DAYS:
            continue
        years = gap / 365.25
        when = f"{years:.0f} years" if years >= 1.5 else f"{gap // 30} months"
        order = "after" if built > last else "before"
        out.append(
            f"The capture is from {span}; {b['database']} ({b['role']}) was built {built.isoformat()}, {when} "
            f"{order} it: servers move and networks change hands, so its answers are as that database saw them, "
            "not necessarily as they were during the capture."
        )
    return out
