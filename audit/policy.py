"""``audit check``: a deny-list policy for CI pipelines (see docs/report.md, "audit check").

A policy denies server countries / company home countries, companies, personal-data types, networks
(AS numbers) and network flags (``drop``: hostile networks, ``anonymous-proxy`` …).
Each violation names the rule, the fact that matched (server country and company home country
are separate facts, never merged) and its evidence: host, IP, port, flows. Observed traffic gives
``observed`` violations; the static scan gives ``static`` ones, graded by ``static_evidence``
(issue 11): ``sdk-code`` (an SDK whose own code is in the app: its owner and home country, a finding
even before it phones home), ``endpoint-in-code`` (a server the app's DEX or native code names: the
company owning its domain) and ``string-in-resources`` (a server named only in resources, XML, the
manifest or assets). ``--deny-company`` counts SDK code and endpoints in code only; a host string in
resources is not a company's code in the app. Strings that do not name a server
(``Endpoint.network`` false) and placeholders count nowhere.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from audit.enrich.company import CompanyDb, CompanyLookup, resolve_owner
from audit.enrich.country import country_code
from audit.enrich.geoip import Enricher
from audit.errors import OptionError
from audit.models import CUSTOM_DATA_PREFIX, DATA_TYPES, Destination, ScanResult
from audit.store import Store


@dataclass(frozen=True)
class Policy:
    deny_countries: frozenset[str] = frozenset()
    """ISO 3166-1 alpha-2 codes, upper case."""
    deny_companies: tuple[str, ...] = ()
    deny_data: frozenset[str] = frozenset()
    """Data types (``imei``, ``custom:loyalty_id`` …), lower case."""
    deny_asns: frozenset[int] = frozenset()
    """AS numbers of the network announcing the server IP."""
    deny_flags: frozenset[str] = frozenset()
    """Network flags (:data:`NETWORK_FLAGS`)."""
    notes: tuple[str, ...] = field(default=(), compare=False)
    """How values were read (a country given by name: ``'China' read as CN (China)``)."""

    @property
    def empty(self) -> bool:
        return not (
            self.deny_countries or self.deny_companies or self.deny_data or self.deny_asns or self.deny_flags
        )


#: The network flags a policy can deny (``IpInfo.network_flags``, from the IPFire location database).
NETWORK_FLAGS = ("anycast", "anonymous-proxy", "satellite-provider", "drop")

_CUSTOM_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def data_type(value: str, option: str = "--deny-data") -> str:
    """A data type as the detectors name it (:data:`audit.models.DATA_TYPES`, docs/pii.md) or
    ``custom:<name>``, lower case; OptionError with the close matches otherwise."""
    t = value.strip().lower()
    if t in DATA_TYPES:
        return t
    if t.startswith(CUSTOM_DATA_PREFIX) and _CUSTOM_NAME.fullmatch(t[len(CUSTOM_DATA_PREFIX) :]):
        return t
    close = difflib.get_close_matches(t, DATA_TYPES, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise OptionError(
        f"{option} {value!r}: not a data type ({hint}known: {', '.join(DATA_TYPES)}, or custom:NAME for a "
        "device-profile value; docs/pii.md)"
    )


def company_name(value: str, companies: CompanyDb, option: str = "--deny-company") -> str:
    """``value`` as written, when the company table knows it (a name or an alias, any case);
    OptionError with the close matches otherwise."""
    name = value.strip()
    if companies.find(name) is not None:
        return name
    close = companies.closest(name)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise OptionError(
        f"{option} {value!r}: not in the company database{hint} (`audit signatures list` shows SDK owners; "
        "audit/data/companies.json lists every company)"
    )


def make_policy(
    deny_countries: Iterable[str] = (),
    deny_companies: Iterable[str] = (),
    deny_data: Iterable[str] = (),
    deny_asns: Iterable[str | int] = (),
    deny_flags: Iterable[str] = (),
    *,
    companies: CompanyDb | None = None,
) -> Policy:
    """Validate and normalise the deny lists before anything is judged: countries are ISO 3166-1
    alpha-2 codes or unambiguous names (:func:`audit.enrich.country.country_code`), companies are
    in the company table (``companies``, default the builtin one), data types are documented ones.
    OptionError (a ConfigError) names the bad value and the close matches. AS numbers may be
    written ``45090`` or ``AS45090``."""
    if companies is None:
        from audit.enrich.company import load_companies

        companies = load_companies()
    countries = set()
    notes = []
    for c in deny_countries:
        cc, note = country_code(c, "--deny-country")
        countries.add(cc)
        if note:
            notes.append(note)
    names = tuple(sorted({company_name(c, companies) for c in deny_companies if c.strip()}, key=str.casefold))
    data = frozenset(data_type(d) for d in deny_data if d.strip())
    asns = set()
    for a in deny_asns:
        text = str(a).strip()
        digits = text[2:] if text[:2].upper() == "AS" else text
        if not (digits.isascii() and digits.isdecimal()) or not 0 < int(digits) < 2**32:
            raise OptionError(f"--deny-asn {a!r}: expected an AS number such as 45090 or AS45090")
        asns.add(int(digits))
    flags = set()
    for f in deny_flags:
        flag = f.strip().lower()
        if flag not in NETWORK_FLAGS:
            raise OptionError(f"--deny-network-flag {f!r}: expected one of {', '.join(NETWORK_FLAGS)}")
        flags.add(flag)
    return Policy(frozenset(countries), names, data, frozenset(asns), frozenset(flags), tuple(notes))


@dataclass(frozen=True)
class Violation:
    """One policy violation with its evidence."""

    rule: str
    """``deny-country``, ``deny-company``, ``deny-data``, ``deny-asn`` or ``deny-network-flag``."""
    value: str
    """The denied value that matched (``CN``, ``Tencent``, ``imei``, ``AS45090``, ``drop``)."""
    fact: str
    """What matched: ``server_country`` (where the server is), ``company_country`` (home country of
    the company owning the host), ``company``, ``sdk_owner``, ``sdk_owner_country``, ``data_type``,
    ``asn`` (the network announcing the server IP) or ``network_flag``."""
    evidence: str
    """``observed`` (in traffic) or ``static`` (from the scanned APK)."""
    host: str | None = None
    ip: str | None = None
    port: int | None = None
    flows: int = 0
    server_country: str | None = None
    company: str | None = None
    company_country: str | None = None
    data_types: tuple[str, ...] = ()
    sdk: str | None = None
    asn: int | None = None
    asn_org: str | None = None
    network_flags: tuple[str, ...] = ()
    static_evidence: str | None = None
    """For ``static`` violations: ``sdk-code``, ``endpoint-in-code`` or ``string-in-resources``."""
    files: tuple[str, ...] = ()
    """For static endpoint violations: where in the APK the host was found."""

    @property
    def message(self) -> str:
        """One line for humans."""
        fact = {
            "server_country": f"server located in {self.value}",
            "company_country": f"owner {self.company} is based in {self.value}",
            "company": f"owned by {self.value}",
            "sdk_owner": f"SDK {self.sdk} is owned by {self.value}",
            "sdk_owner_country": f"SDK {self.sdk} owner {self.company} is based in {self.value}",
            "data_type": f"received {self.value}",
            "asn": f"network {self.value}{f' ({self.asn_org})' if self.asn_org else ''}",
            "network_flag": f"on a network flagged {self.value}",
        }.get(self.fact, self.fact)
        if self.evidence == "static":
            if self.static_evidence == "sdk-code":
                return f"{self.rule} {self.value}: {fact} (static: SDK code in the app)"
            where = ", ".join(self.files[:3]) + (" …" if len(self.files) > 3 else "")
            how = "endpoint in code" if self.static_evidence == "endpoint-in-code" else "string in resources"
            return f"{self.rule} {self.value}: {self.host} {fact} (static: {how}, {where})"
        where = self.host or self.ip or "?"
        addr = f" [{self.ip}{f':{self.port}' if self.port is not None else ''}]" if self.ip else ""
        return f"{self.rule} {self.value}: {where}{addr} {fact} ({self.flows} flows)"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data_types"] = list(self.data_types)
        d["network_flags"] = list(self.network_flags)
        d["files"] = list(self.files)
        d["message"] = self.message
        return d


def _company_keys(name: str, companies: CompanyLookup | None) -> set[str]:
    """A name and, when the company table knows it, its ultimate owner (deny Facebook → Meta)."""
    return {name.casefold(), resolve_owner(name, None, companies)[0].casefold()}


def check(
    store: Store,
    policy: Policy,
    app: str | None = None,
    *,
    enricher: Enricher | None = None,
    companies: CompanyLookup | None = None,
    destinations: Iterable[Destination] | None = None,
) -> list[Violation]:
    """Every violation of ``policy`` in the case (or for one ``app``), observed ones first."""
    if companies is None:
        from audit.enrich.company import load_companies

        companies = load_companies()
    if destinations is None:
        from audit.destinations import list_destinations

        destinations = list_destinations(store, app=app, enricher=enricher, companies=companies)
    denied_companies: dict[str, str] = {}
    for name in policy.deny_companies:
        for key in _company_keys(name, companies):
            denied_companies.setdefault(key, name)

    out: list[Violation] = []
    for d in destinations:
        base = Violation(
            "", "", "", "observed", host=d.host, ip=d.ip, port=d.port, flows=d.flows, server_country=d.server_country,
            company=d.company, company_country=d.company_country, data_types=d.data_types, asn=d.asn,
            asn_org=d.asn_org, network_flags=d.network_flags,
        )  # fmt: skip
        if d.server_country and d.server_country.upper() in policy.deny_countries:
            out.append(
                replace(base, rule="deny-country", value=d.server_country.upper(), fact="server_country")
            )
        if d.company_country and d.company_country.upper() in policy.deny_countries:
            out.append(
                replace(base, rule="deny-country", value=d.company_country.upper(), fact="company_country")
            )
        if d.company:
            hit = next(
                (denied_companies[k] for k in _company_keys(d.company, companies) if k in denied_companies),
                None,
            )
            if hit:
                out.append(replace(base, rule="deny-company", value=hit, fact="company"))
        for t in d.data_types:
            if t.lower() in policy.deny_data:
                out.append(replace(base, rule="deny-data", value=t, fact="data_type"))
        if d.asn is not None and d.asn in policy.deny_asns:
            out.append(replace(base, rule="deny-asn", value=f"AS{d.asn}", fact="asn"))
        for f in d.network_flags:
            if f in policy.deny_flags:
                out.append(replace(base, rule="deny-network-flag", value=f, fact="network_flag"))

    seen: set[tuple[str, str, str]] = set()
    for _, result in store.scans(app):
        out += _static_endpoint_violations(result, policy, companies, denied_companies)
        for s in result.sdks:
            owner, home = resolve_owner(s.owner, s.owner_country, companies)
            country = (home or "").upper()
            if country and country in policy.deny_countries and (s.id, "c", country) not in seen:
                seen.add((s.id, "c", country))
                out.append(
                    Violation("deny-country", country, "sdk_owner_country", "static", company=owner,
                              company_country=country, sdk=s.id, static_evidence="sdk-code")
                )  # fmt: skip
            if owner:
                hit = next(
                    (denied_companies[k] for k in _company_keys(owner, companies) if k in denied_companies),
                    None,
                )
                if hit and (s.id, "o", hit) not in seen:
                    seen.add((s.id, "o", hit))
                    out.append(
                        Violation("deny-company", hit, "sdk_owner", "static", company=owner, company_country=country or None,
                                  sdk=s.id, static_evidence="sdk-code")
                    )  # fmt: skip
    order = {None: 0, "sdk-code": 1, "endpoint-in-code": 2, "string-in-resources": 3}
    return sorted(
        dict.fromkeys(out),
        key=lambda v: (v.evidence != "observed", order.get(v.static_evidence, 4), v.rule, v.value, v.fact,
                       v.host or "", v.ip or "", v.sdk or ""),
    )  # fmt: skip


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a policy check: the violations, and why the case cannot show there are none."""

    violations: tuple[Violation, ...]
    insufficient: tuple[str, ...] = ()
    """Reasons the case lacks the evidence a rule needs (empty case, no inspected traffic …)."""
    notes: tuple[str, ...] = ()
    """How option values were read (:attr:`Policy.notes`)."""

    @property
    def status(self) -> str:
        """``violated``, ``insufficient-evidence`` (no violation, but not enough evidence to say
        there is none) or ``ok``."""
        return "violated" if self.violations else "insufficient-evidence" if self.insufficient else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "violations": [v.to_dict() for v in self.violations], "count": len(self.violations),
            "insufficient_evidence": list(self.insufficient), "notes": list(self.notes),
        }  # fmt: skip


def evidence_gaps(
    policy: Policy, counts: dict[str, int], destinations: Iterable[Destination], app: str | None = None
) -> list[str]:
    """Why the case (``Store.evidence_counts``) cannot show that ``policy`` holds: an empty case
    judges nothing; a data rule needs inspected requests; network rules need contacted servers,
    and ``--deny-asn`` a database that gives AS numbers."""
    whose = f" for app {app!r}" if app else ""
    if not (counts["scans"] or counts["connections"] or counts["dns"]):
        return [f"the case is empty{whose}: no static scan and no traffic (did the scan or the import fail?)"]
    gaps = []
    if policy.deny_data and not counts["inspected"]:
        if counts["connections"]:
            seen = f"{counts['connections']} connection{'s' if counts['connections'] != 1 else ''} recorded{whose}, none inspected"
        else:
            seen = f"no traffic recorded{whose} (static scan only)"
        gaps.append(
            f"--deny-data needs inspected traffic (requests whose content was read: intercepted TLS or plain "
            f"HTTP): {seen}"
        )
    if (policy.deny_asns or policy.deny_flags) and not counts["connections"]:
        rules = " and ".join(
            r
            for r, on in (("--deny-asn", policy.deny_asns), ("--deny-network-flag", policy.deny_flags))
            if on
        )
        gaps.append(f"{rules} judge contacted servers: no traffic recorded{whose}")
    elif policy.deny_asns:
        public = [d for d in destinations if d.ip_scope == "public"]
        if public and all(d.asn is None for d in public):
            gaps.append(
                "--deny-asn needs AS numbers: no database in use gives them (install libloc-database, run "
                "`audit geoip import`, or pass an ASN .mmdb with --mmdb)"
            )
    return gaps


def evaluate(
    store: Store,
    policy: Policy,
    app: str | None = None,
    *,
    enricher: Enricher | None = None,
    companies: CompanyLookup | None = None,
) -> CheckResult:
    """Validate ``app``, then check the case against ``policy`` and say what it cannot judge.

    An empty case is insufficient evidence whatever the rules; ``app`` must be a label of the case."""
    if app is not None and any(store.evidence_counts().values()):
        store.require_app(app)  # on an empty case the label is not the problem: the gap below says so
    counts = store.evidence_counts(app)
    if companies is None:
        from audit.enrich.company import load_companies

        companies = load_companies()
    from audit.destinations import list_destinations

    dests = list_destinations(store, app=app, enricher=enricher, companies=companies)
    violations = check(store, policy, app, enricher=enricher, companies=companies, destinations=dests)
    return CheckResult(tuple(violations), tuple(evidence_gaps(policy, counts, dests, app)), policy.notes)


def _static_endpoint_violations(
    result: ScanResult, policy: Policy, companies: CompanyLookup | None, denied_companies: dict[str, str]
) -> list[Violation]:
    """Violations of the servers a scanned APK names (``Endpoint.counted``), by the company owning
    the host: ``endpoint-in-code`` when DEX or native code has it, else ``string-in-resources``
    (which ``--deny-company`` does not count)."""
    out: list[Violation] = []
    by_host: dict[str, tuple[bool, set[str]]] = {}
    for e in result.servers:
        if e.kind == "ip" or e.host is None:
            continue
        in_code, files = by_host.get(e.host, (False, set()))
        by_host[e.host] = (in_code or e.in_code, files | {s.file for s in e.sources})
    for host, (in_code, files) in sorted(by_host.items()):
        info = companies.lookup(host) if companies is not None else None
        if info is None:
            continue
        base = Violation(
            "", "", "", "static", host=host, company=info.company, company_country=info.country,
            static_evidence="endpoint-in-code" if in_code else "string-in-resources", files=tuple(sorted(files)),
        )  # fmt: skip
        if info.country and info.country.upper() in policy.deny_countries:
            out.append(replace(base, rule="deny-country", value=info.country.upper(), fact="company_country"))
        if in_code:
            hit = next(
                (
                    denied_companies[k]
                    for k in _company_keys(info.company, companies)
                    if k in denied_companies
                ),
                None,
            )
            if hit:
                out.append(replace(base, rule="deny-company", value=hit, fact="company"))
    return out
