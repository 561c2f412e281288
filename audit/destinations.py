"""``audit destinations``: one row per (host, ip, port) the app reached, with the three facts kept
apart: where the server is (geo-IP of the IP actually contacted), who runs its network (ASN) and
which company owns the domain (with its home country).

Rows are aggregated in SQL from the case file's connections (live capture and imports alike). A bare
IP gets the host name the app asked DNS for, when the capture saw that answer. See
``docs/destinations.md`` for every column.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from audit.enrich.backend import ISO_COUNTRY
from audit.enrich.company import CompanyLookup, load_companies
from audit.enrich.geoip import Enricher
from audit.errors import AuditError
from audit.models import (
    VANTAGE_INPUT,
    CompanyInfo,
    Destination,
    IpInfo,
    ScanResult,
    Vantage,
    time_window,
    unread_reason,
)
from audit.names import ip_scope, normalize_ip, registrable_domain
from audit.store import Store
from audit.traffic.background import CHECK_PATHS, Background, classify

log = logging.getLogger(__name__)

#: ``Destination.tls`` when a row mixes connections: the highest rank wins. A connection the app
#: refused to let us read (failed: certificate pinning or no trust in the CA) outranks one we chose
#: not to read (passthrough), which outranks plaintext (none), which outranks one that carried no
#: payload (unknown), which outranks a fully intercepted one.
TLS_RANK = {"intercepted": 0, "unknown": 1, "none": 2, "passthrough": 3, "failed": 4}

#: Order of ``Destination.protocol`` values when a row mixes several (most informative first).
PROTOCOL_ORDER = ("https", "wss", "http", "ws", "quic", "tls", "tcp", "udp", "dns")

#: Table columns of ``audit destinations --table`` (JSON/CSV carry every key).
TABLE_COLUMNS = (
    "host", "ip", "port", "protocol", "tls", "flows", "bytes_out", "bytes_in", "nat64_ipv4",
    "server_country", "vantage", "asn", "asn_org", "asn_source", "company", "company_country", "data_types",
)  # fmt: skip

#: CSV columns: every key of ``Destination.to_dict()``, in this order.
CSV_COLUMNS = (
    "host", "ip", "port", "protocol", "sni", "tls", "flows", "bytes_out", "bytes_in", "first_seen",
    "last_seen", "server_country", "server_city", "asn", "asn_org", "company", "company_country",
    "sources", "data_types", "ip_scope", "geo_database", "apps", "first_party", "first_party_evidence",
    "network_flags", "inspected", "inspected_flows", "attribution", "not_inspected", "not_inspected_bytes",
    "background", "background_reason", "asn_source", "asn_org_source", "via_nat64", "nat64_ipv4", "vantage",
)  # fmt: skip


@dataclass
class _Row:
    host: str | None
    ip: str | None
    port: int | None
    protocols: set[str] = field(default_factory=set)
    sni: str | None = None
    tls: str = "intercepted"
    flows: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    first_seen: float = float("inf")
    last_seen: float = float("-inf")
    sources: set[str] = field(default_factory=set)
    apps: set[str] = field(default_factory=set)
    data_types: set[str] = field(default_factory=set)
    inspected_flows: int = 0
    attribution: set[str] = field(default_factory=set)
    unread: dict[str, int] = field(default_factory=dict)
    unread_bytes: int = 0
    check_flows: int = 0


def _is_bare_ip(host: str | None) -> bool:
    return host is None or normalize_ip(host) is not None


def _name_for_ip(ip: str | None, dns: dict[str, list[str]]) -> str | None:
    if not ip:
        return None
    names = dns.get(ip) or dns.get(normalize_ip(ip) or ip)
    return names[0] if names else None


def _aggregate(store: Store, app: str | None) -> list[_Row]:
    dns = store.dns_names(app)
    rank_to_tls = {v: k for k, v in TLS_RANK.items()}
    rows: dict[tuple[str | None, str | None, int | None], _Row] = {}

    def key_for(
        host: str | None, ip: str | None, port: int | None
    ) -> tuple[str | None, str | None, int | None]:
        if _is_bare_ip(host):
            host = _name_for_ip(ip, dns) or host
        return host, ip, port

    for r in store.connection_groups(app, time_window()):
        key = key_for(r["host"], r["ip"], r["port"])
        row = rows.setdefault(key, _Row(*key))
        if r["sni"] and (row.sni is None or r["sni"] < row.sni):
            row.sni = r["sni"]
        tls = rank_to_tls.get(int(r["tls_rank"] or 0), "intercepted")
        if TLS_RANK[tls] > TLS_RANK[row.tls] or row.flows == 0:
            row.tls = tls
        row.flows += int(r["flows"])
        row.inspected_flows += int(r["inspected_flows"] or 0)
        row.attribution.update((r["attribution"] or "").split(",") if r["attribution"] else ())
        row.bytes_out += int(r["bytes_out"] or 0)
        row.bytes_in += int(r["bytes_in"] or 0)
        if r["first_seen"] is not None:  # None: no flow of it has a plausible time
            row.first_seen = min(row.first_seen, float(r["first_seen"]))
        if r["last_seen"] is not None:
            row.last_seen = max(row.last_seen, float(r["last_seen"]))

    for r in store.connection_labels(app):
        row = rows[key_for(r["host"], r["ip"], r["port"])]
        row.protocols.add(r["protocol"])
        row.sources.add(r["source"])
        if r["app"]:
            row.apps.add(r["app"])

    for r in store.unread_groups(app):
        key = key_for(r["host"], r["ip"], r["port"])
        if key in rows:
            why = unread_reason(str(r["tls"]), str(r["protocol"]))
            rows[key].unread[why] = rows[key].unread.get(why, 0) + int(r["flows"])
            rows[key].unread_bytes += int(r["bytes"] or 0)

    for r in store.path_groups(app, CHECK_PATHS):
        key = key_for(r["host"], r["ip"], r["port"])
        if key in rows:
            rows[key].check_flows += int(r["flows"])

    for r in store.finding_groups(app):
        key = key_for(r["host"], r["ip"], r["port"])
        if key in rows:
            rows[key].data_types.add(r["data_type"])
    return list(rows.values())


def _background(r: _Row) -> Background | None:
    return classify(
        ip=r.ip,
        port=r.port,
        names=(r.host, r.sni),
        protocols=r.protocols,
        attribution=r.attribution,
        check_path_only=r.flows > 0 and r.check_flows == r.flows,
    )


def _ip_infos(store: Store, ips: Iterable[str], enricher: Enricher) -> dict[str, IpInfo]:
    """IpInfo per IP, from the case file's cache when it was made with the same databases, in the
    same order (:attr:`Enricher.setup`)."""
    cached = store.cached_ip_info()
    out: dict[str, IpInfo] = {}
    fresh: list[IpInfo] = []
    setup = getattr(enricher, "setup", None)
    for ip in ips:
        c = cached.get(ip)
        if c is not None and (c.scope != "public" or (c.setup is not None and c.setup == setup)):
            out[ip] = c
            continue
        info = enricher.ip_info(ip)
        out[ip] = info
        # Cache under the IP as stored in connections, so the next run finds it.
        fresh.append(info if info.ip == ip else replace(info, ip=ip))
    if fresh:
        try:
            store.cache_ip_info(fresh)
        except (sqlite3.Error, AuditError) as e:  # a read-only or damaged case file still gets its answer
            log.warning(
                "geo-IP answers not cached: %s", e if isinstance(e, AuditError) else f"{store.path}: {e}"
            )
    return out


def enricher_for(store: Store, mmdb_paths: Iterable[str] = ()) -> Enricher:
    """An :class:`Enricher` using ``mmdb_paths``, else the ``.mmdb`` files the live recorder was
    given for this case (``inputs`` of kind ``mmdb``) that still exist, else the embedded database.
    AS numbers come from the ASN table the recorder was given (kind ``asn-table``) if it still
    exists, else from the one imported with ``audit geoip import``, if any; then from the location
    database ``$AUDIT_LOCATION_DB`` names (``off``: none), else the one the recorder used (kind
    ``location-db``) if it still opens, else the one found now."""
    paths = list(mmdb_paths)
    recorded: dict[str, list[str]] = {"mmdb": [], "asn-table": [], "location-db": []}
    for i in store.inputs():
        p = str(i["path"])
        kind = str(i["kind"])
        if kind in recorded and p not in recorded[kind] and Path(p).is_file():
            recorded[kind].append(p)
    if not paths:
        paths = recorded["mmdb"]
    table = recorded["asn-table"][-1] if recorded["asn-table"] else True
    from audit.enrich.locationdb import location_db_for_case

    location_db = location_db_for_case(recorded["location-db"][-1] if recorded["location-db"] else None)
    return Enricher(paths, asn_table=table, location_db=location_db)


def record_vantage(
    store: Store, country: str, *, app: str = "", sha256: str | None = None, capture: str = ""
) -> None:
    """Note in the case that the capture ``capture`` (``sha256``) was made with the device in
    ``country`` (an ISO code the caller validated, :func:`audit.enrich.country.country_code`). A
    vantage given again for the same capture and label replaces the earlier one."""
    note = f"given for {capture}" if capture else "given"
    if sha256:
        store.set_input(VANTAGE_INPUT, country, sha256, app, notes=[note])
    else:
        store.record_input(VANTAGE_INPUT, country, None, app, notes=[note])


def capture_vantages(store: Store, enricher: Enricher | None = None, app: str | None = None) -> list[Vantage]:
    """Where the device was for the captures in the case (of ``app``): every vantage given with the
    capture, then every country observed from the device's public client address. A public client
    address counts as the device's when it opened connections to two servers or more, or is the
    only public client of its app label: a lone peer that called the device (a VoIP or P2P
    connection) does not make a vantage. Observed countries need ``enricher`` (default:
    :func:`enricher_for` the case)."""
    out: list[Vantage] = []
    for i in store.inputs():
        # Only what --vantage could have written counts: a damaged or foreign case file's other
        # values are no country.
        if (
            i["kind"] == VANTAGE_INPUT
            and (not app or i["app"] in ("", app))
            and ISO_COUNTRY.match(str(i["path"]))
        ):
            out.append(Vantage(str(i["path"]), str(i["app"]), "given", "; ".join(i["notes"]) or "given"))
    clients: dict[str, list[tuple[str, int, int]]] = {}
    for r in store.client_addresses(app):
        ip = normalize_ip(str(r["address"] or ""))
        if ip is not None and ip_scope(ip) == "public":
            clients.setdefault(str(r["app"]), []).append((ip, int(r["flows"]), int(r["servers"])))
    device = [(label, ip, flows) for label, rows in clients.items() for ip, flows, servers in rows
              if servers >= 2 or len(rows) == 1]  # fmt: skip
    if device:
        if enricher is None:
            enricher = enricher_for(store)
        infos = _ip_infos(store, sorted({ip for _, ip, _ in device}), enricher)
        for label, ip, flows in device:
            country = infos[ip].country
            if country:
                out.append(Vantage(country, label, "observed", f"public client address {ip} ({flows} flows)"))
    return out


def vantage_of(vantages: Sequence[Vantage], apps: Iterable[str]) -> tuple[str, ...]:
    """The vantage countries of traffic of the app labels ``apps`` (none: unlabelled traffic): the
    ones given for the label, else given for the case without a label, else observed for the label."""
    found: set[str] = set()
    for label in set(apps) or {""}:
        given = [v.country for v in vantages if v.how == "given" and v.app == label]
        given = given or [v.country for v in vantages if v.how == "given" and v.app == ""]
        found.update(given or (v.country for v in vantages if v.how == "observed" and v.app == label))
    return tuple(sorted(found))


def _default_companies() -> CompanyLookup:
    return load_companies()


#: Code-hosting sites whose reversed names start many unrelated packages (``com.github.<user>.app``):
#: their hosts never count as first party by name.
SHARED_NAMESPACES = frozenset(
    {"github.com", "gitlab.com", "bitbucket.org", "sourceforge.net", "googlecode.com", "codeberg.org", "gitee.com",
     "sr.ht", "gitlab.io", "framagit.org", "notabug.org"}
)  # fmt: skip


def first_party_package(host: str | None, packages: Iterable[str]) -> str | None:
    """The package among ``packages`` whose name starts with the reversed registrable domain of
    ``host`` (``api.example.com`` → ``com.example`` → ``com.example.app``), compared label by label;
    None for IPs and unrelated hosts. Private suffixes count (``someone.github.io`` is
    ``io.github.someone``'s own, ``github.io`` is not)."""
    return _package_of_domain(registrable_domain(host), packages)


def _package_of_domain(domain: str | None, packages: Iterable[str]) -> str | None:
    if not domain or domain in SHARED_NAMESPACES:
        return None
    reversed_labels = domain.split(".")[::-1]
    for pkg in sorted(packages):
        parts = pkg.lower().split(".")
        if len(parts) >= len(reversed_labels) and parts[: len(reversed_labels)] == reversed_labels:
            return pkg
    return None


def own_code_domains(scans: Iterable[tuple[str, ScanResult]]) -> dict[str, dict[str, tuple[str, str]]]:
    """App label → registrable domain → (package, class): domains of endpoints in the app's stored
    scans that the app's own code loads (a class under its package name) and that no SDK claims
    (no endpoint under the domain is attributed to an SDK)."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for label, scan in scans:
        pkg = scan.app.package
        if not pkg:
            continue
        found = out.setdefault(label, {})
        servers = scan.servers
        claimed = {e.domain for e in servers if e.sdk}
        for e in servers:
            if e.domain and e.domain not in claimed and e.domain not in found:
                own = [c for c in e.classes if c.startswith(pkg + ".")]
                if own:
                    found[e.domain] = (pkg, own[0])
    return out


def _first_party(
    r: _Row,
    company: CompanyInfo | None,
    scanned: dict[str, set[str]],
    code: dict[str, dict[str, tuple[str, str]]],
) -> tuple[str | None, str | None]:
    """(package, evidence) when the destination is the app vendor's own server."""
    packages = {p for a in r.apps for p in (a, *scanned.get(a, ()))}
    names = [(name, registrable_domain(name)) for name in (r.host, r.sni)]
    for name, domain in names:
        pkg = _package_of_domain(domain, packages)
        if pkg:
            return pkg, f"host name {name} matches the package name {pkg}"
    if company is not None:  # a known company's domain loaded by app code is still that company's
        return None, None
    for _, domain in names:
        for a in sorted(r.apps):
            hit = code.get(a, {}).get(domain or "")
            if hit:
                return hit[
                    0
                ], f"{domain} is in the APK, loaded by the app's own code ({hit[1]}), and no SDK claims it"
    return None, None


def _sort_key(d: Destination) -> tuple[str, str, int]:
    return (d.host or d.ip or "", d.ip or "", d.port or 0)


def list_destinations(
    store: Store,
    app: str | None = None,
    enricher: Enricher | None = None,
    companies: CompanyLookup | None = None,
    scans: Sequence[tuple[str, ScanResult]] | None = None,
    *,
    local: bool = False,
) -> list[Destination]:
    """Every (host, ip, port) in the case file (or of one ``app``), sorted by host, IP and port;
    local-network noise (``background == "local"``: broadcast, multicast, mDNS …, see
    :mod:`audit.traffic.background`) only when ``local`` is true.

    ``enricher`` defaults to :func:`enricher_for` the case (the ``.mmdb`` files the recorder was
    given, else the embedded geo-IP database); ``companies`` to the bundled company database
    (``audit.enrich.company.load_companies()``); ``scans`` (for first-party hosts) to the case's
    stored scans of ``app``, which a caller that has them already can pass. Geo-IP answers are
    cached in the case file together with the database(s) that gave them."""
    if enricher is None:
        enricher = enricher_for(store)
    if companies is None:
        companies = _default_companies()
    rows = _aggregate(store, app)
    infos = _ip_infos(store, sorted({r.ip for r in rows if r.ip}), enricher)
    if scans is None:
        scans = store.scans(app)
    scanned: dict[str, set[str]] = {}
    for label, scan in scans:
        if scan.app.package:
            scanned.setdefault(label, set()).add(scan.app.package)
    code = own_code_domains(scans)
    vantages = capture_vantages(store, enricher, app)
    out: list[Destination] = []
    for r in rows:
        bg = _background(r)
        if bg is not None and bg.kind == "local" and not local:
            continue
        info = infos.get(r.ip) if r.ip else None
        company: CompanyInfo | None = None
        if companies is not None:
            for name in (r.host, r.sni):
                if name and not _is_bare_ip(name):
                    company = companies.lookup(name)
                    if company is not None:
                        break
        # App labels are package names when the recorder/importer was given one; a stored scan of
        # the app gives its real package name and the domains its own code loads.
        first_party, first_party_evidence = _first_party(r, company, scanned, code)
        protocols = sorted(
            r.protocols, key=lambda p: (PROTOCOL_ORDER.index(p) if p in PROTOCOL_ORDER else 99, p)
        )
        out.append(
            Destination(
                host=r.host,
                ip=r.ip,
                port=r.port,
                protocol=",".join(protocols),
                sni=r.sni,
                tls=r.tls,
                flows=r.flows,
                bytes_out=r.bytes_out,
                bytes_in=r.bytes_in,
                first_seen=r.first_seen if r.first_seen != float("inf") else None,
                last_seen=r.last_seen if r.last_seen != float("-inf") else None,
                server_country=info.country if info else None,
                server_city=info.city if info else None,
                asn=info.asn if info else None,
                asn_org=info.asn_org if info else None,
                asn_source=info.asn_source if info else None,
                asn_org_source=info.asn_org_source if info else None,
                company=company.company if company else None,
                company_country=company.country if company else None,
                sources=tuple(sorted(r.sources)),
                data_types=tuple(sorted(r.data_types)),
                ip_scope=info.scope if info else None,
                geo_database=info.evidence if info else None,
                apps=tuple(sorted(r.apps)),
                first_party=first_party,
                first_party_evidence=first_party_evidence,
                network_flags=info.network_flags if info else (),
                inspected_flows=r.inspected_flows,
                attribution=tuple(sorted(r.attribution)),
                not_inspected=tuple(sorted(r.unread.items(), key=lambda kv: (-kv[1], kv[0]))),
                not_inspected_bytes=r.unread_bytes,
                background=bg.kind if bg else None,
                background_reason=bg.reason if bg else None,
                vantage=vantage_of(vantages, r.apps),
            )
        )
    return sorted(out, key=_sort_key)
