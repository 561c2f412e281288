"""``audit diff OLD NEW``: what changed between two versions of an app.

Each side is an APK (or any input ``audit scan`` reads: static facts only) or a case file
(``.sqlite``: static scans plus observed traffic). The comparison is by sets: SDKs, endpoint and
contacted hosts, registrable domains, server countries, companies, company home countries, data
types, permissions and transport security (pinned domains, pins in the code, cleartext and user-CA
settings), each with what was added and what was removed. Two case files are also compared host by
host: the server countries of each contacted host on either side, with where the device was on each
side (its vantage, issue 12: geo-DNS sends a phone in one country to other servers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.comparison import observed_hosts, static_hosts
from audit.enrich.company import CompanyLookup, resolve_owner
from audit.enrich.geoip import Enricher
from audit.errors import InputError
from audit.models import Destination, ScanResult, Vantage
from audit.names import registrable_domain
from audit.static.permissions import data_access_labels
from audit.store import Store

SQLITE_MAGIC = b"SQLite format 3\x00"

#: Categories compared, in output order (who and where first: what an analyst reads first), with
#: their human titles.
CATEGORIES = {
    "companies": "Companies",
    "company_countries": "Company home countries",
    "server_countries": "Server countries (observed)",
    "data_types": "Personal-data types (observed)",
    "data_access": "Data the app can reach (permissions)",
    "sdks": "SDKs",
    "hosts": "Hosts (in the code or contacted)",
    "domains": "Registrable domains",
    "permissions": "Permissions",
    "transport": "Transport security (pinning, cleartext, trusted CAs)",
}


@dataclass(frozen=True)
class Snapshot:
    """The comparable facts of one side."""

    label: str
    kind: str
    """``apk`` (static only) or ``case`` (static + traffic)."""
    sets: dict[str, frozenset[str]] = field(default_factory=dict)
    versions: tuple[str, ...] = ()
    """``package 2.6.2 (53)`` of every scanned package, sorted."""
    host_countries: dict[str, frozenset[str]] = field(default_factory=dict)
    """Contacted host → its server countries (case files only)."""
    vantages: tuple[Vantage, ...] = ()
    """Where the device was for the case's captures (case files only)."""


@dataclass(frozen=True)
class HostCountries:
    """One contacted host's server countries on each side (empty: not contacted there)."""

    host: str
    old: tuple[str, ...]
    new: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """Contacted on both sides, from servers in other countries."""
        return bool(self.old and self.new) and self.old != self.new

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "old": list(self.old), "new": list(self.new), "changed": self.changed}


@dataclass(frozen=True)
class Change:
    category: str
    title: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["added"] = list(self.added)
        d["removed"] = list(self.removed)
        return d


@dataclass(frozen=True)
class DiffResult:
    old: str
    new: str
    old_kind: str
    new_kind: str
    changes: tuple[Change, ...]
    old_versions: tuple[str, ...] = ()
    new_versions: tuple[str, ...] = ()
    host_countries: tuple[HostCountries, ...] = ()
    """Every host contacted on either side, by name (both sides case files; else empty)."""
    old_vantage: tuple[Vantage, ...] = ()
    new_vantage: tuple[Vantage, ...] = ()

    @property
    def changed(self) -> bool:
        """Anything differs: a version, a member of any category or a host's server countries
        (``audit diff --exit-code``)."""
        return (
            self.old_versions != self.new_versions
            or any(c.added or c.removed for c in self.changes)
            or any(h.changed for h in self.host_countries)
        )

    @property
    def vantage_line(self) -> str | None:
        """``seen from US (observed) → from CN (given)``, None when neither side's vantage is known."""
        if not (self.old_vantage or self.new_vantage):
            return None
        return f"seen from {vantage_text(self.old_vantage)} → from {vantage_text(self.new_vantage)}"

    @property
    def version_line(self) -> str | None:
        """``com.example 2.6.2 (53) → 3.4.1 (78)`` (the package named once when both sides have the
        same one), None when neither side has a scanned package."""
        if not (self.old_versions or self.new_versions):
            return None
        old, new = "; ".join(self.old_versions) or "none", "; ".join(self.new_versions) or "none"
        if len(self.old_versions) == len(self.new_versions) == 1:
            p_old, _, v_old = old.partition(" ")
            p_new, _, v_new = new.partition(" ")
            if p_old == p_new:
                return f"{p_old} {v_old} → {v_new}"
        return f"{old} → {new}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old, "new": self.new, "old_kind": self.old_kind, "new_kind": self.new_kind,
            "old_versions": list(self.old_versions), "new_versions": list(self.new_versions),
            "changed": self.changed, "changes": [c.to_dict() for c in self.changes],
            "old_vantage": [v.to_dict() for v in self.old_vantage],
            "new_vantage": [v.to_dict() for v in self.new_vantage],
            "server_countries_by_host": [h.to_dict() for h in self.host_countries],
        }  # fmt: skip


def vantage_text(vantages: Iterable[Vantage]) -> str:
    """``US (given)``, ``DE (observed), US (given)``; ``unknown`` when there is none."""
    found = sorted({f"{v.country} ({v.how})" for v in vantages})
    return ", ".join(found) or "an unknown place"


def version_label(r: ScanResult) -> str:
    """``package 2.6.2 (53)``: how a scanned package and its version read."""
    a = r.app
    return f"{a.package or Path(a.file).name} {a.version_name or '?'} ({a.version_code or '?'})"


def _is_case_file(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except IsADirectoryError as e:
        raise InputError(f"{path}: is a directory, not an APK or case file") from e
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e


def _static_sets(scans: Iterable[ScanResult], companies: CompanyLookup | None) -> dict[str, set[str]]:
    sets: dict[str, set[str]] = {k: set() for k in CATEGORIES}
    for r in scans:
        for s in r.sdks:
            sets["sdks"].add(f"{s.name} ({s.id})" if s.name and s.name != s.id else s.id)
            owner, country = resolve_owner(s.owner, s.owner_country, companies)
            if owner:
                sets["companies"].add(owner)
            if country:
                sets["company_countries"].add(country.upper())
        hosts = static_hosts([r])
        sets["hosts"].update(hosts.sdks)
        sets["domains"].update(hosts.domains)
        for host in hosts.sdks:
            info = companies.lookup(host) if companies is not None else None
            if info is not None:
                sets["companies"].add(info.company)
                sets["company_countries"].add(info.country.upper())
        sets["permissions"].update(r.permissions)
        sets["data_access"].update(data_access_labels(r.permissions))
        sets["transport"].update(_transport_facts(r))
    return sets


def _transport_facts(r: ScanResult) -> set[str]:
    """Comparable one-line facts of a scan's transport security."""
    t = r.transport
    facts = {f"pinned: {d.scope}" for d in t.pinned_domains}
    facts |= {f"pin in code: {p.pin}" for p in t.code_pins}
    facts |= {f"cleartext allowed: {d.domain}" for d in t.domains if d.cleartext}
    facts |= {f"pinning-capable library: {name}" for name in t.pinning_libraries}
    if t.cleartext_default:
        facts.add("cleartext allowed by default")
    if t.user_cas_trusted:
        facts.add("user-installed CAs trusted")
    if t.pins_overridden:
        facts.add("pins overridden (overridePins/debug)")
    if t.debuggable:
        facts.add("debuggable")
    return facts


def _host_countries(dests: Iterable[Destination]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for d in dests:
        name = d.host or d.ip
        if name:
            out.setdefault(name, set()).update((d.server_country.upper(),) if d.server_country else ())
    return {k: frozenset(v) for k, v in out.items()}


def _traffic_sets(dests: Iterable[Destination], sets: dict[str, set[str]]) -> None:
    dests = list(dests)
    observed = observed_hosts(dests)
    sets["hosts"].update(observed)
    sets["domains"].update(d for d in map(registrable_domain, observed) if d)
    for d in dests:
        if d.server_country:
            sets["server_countries"].add(d.server_country.upper())
        if d.company:
            sets["companies"].add(d.company)
        if d.company_country:
            sets["company_countries"].add(d.company_country.upper())
        sets["data_types"].update(d.data_types)


def snapshot(
    path: str | Path,
    *,
    app: str | None = None,
    enricher: Enricher | None = None,
    companies: CompanyLookup | None = None,
) -> Snapshot:
    """The comparable facts of an APK (scanned now) or a case file."""
    p = Path(path)
    if companies is None:
        from audit.enrich.company import load_companies

        companies = load_companies()
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if _is_case_file(p):
        from audit.destinations import capture_vantages, enricher_for, list_destinations

        with Store(p) as store:
            store.verify()
            scans = [r for _, r in store.scans(app)]
            sets = _static_sets(scans, companies)
            if enricher is None:
                enricher = enricher_for(store)
            dests = list_destinations(store, app=app, enricher=enricher, companies=companies)
            _traffic_sets(dests, sets)
            vantages = tuple(capture_vantages(store, enricher, app))
        return Snapshot(str(p), "case", {k: frozenset(v) for k, v in sets.items()}, _versions(scans),
                        _host_countries(dests), vantages)  # fmt: skip
    from audit.static.scanner import scan_path

    result = scan_path(p)
    sets = _static_sets([result], companies)
    return Snapshot(str(p), "apk", {k: frozenset(v) for k, v in sets.items()}, _versions([result]))


def _versions(scans: Iterable[ScanResult]) -> tuple[str, ...]:
    return tuple(sorted({version_label(r) for r in scans}))


def compare(old: Snapshot, new: Snapshot) -> DiffResult:
    """Added and removed members of every category. Categories only a case file can know (server
    countries, data types) are compared only when both sides are case files."""
    changes = []
    for key, title in CATEGORIES.items():
        if key in ("server_countries", "data_types") and "apk" in (old.kind, new.kind):
            continue
        a = old.sets.get(key, frozenset())
        b = new.sets.get(key, frozenset())
        changes.append(
            Change(
                key,
                title,
                tuple(sorted(b - a, key=str.casefold)),
                tuple(sorted(a - b, key=str.casefold)),
                len(a & b),
            )
        )
    hosts: tuple[HostCountries, ...] = ()
    if old.kind == new.kind == "case":
        hosts = tuple(
            HostCountries(
                h, tuple(sorted(old.host_countries.get(h, ()))), tuple(sorted(new.host_countries.get(h, ())))
            )
            for h in sorted(old.host_countries.keys() | new.host_countries.keys(), key=str.casefold)
        )
    return DiffResult(old.label, new.label, old.kind, new.kind, tuple(changes), old.versions, new.versions,
                      hosts, old.vantages, new.vantages)  # fmt: skip


def diff_paths(
    old: str | Path,
    new: str | Path,
    *,
    enricher: Enricher | None = None,
    companies: CompanyLookup | None = None,
) -> DiffResult:
    """Compare two APKs, two case files, or one of each."""
    if companies is None:
        from audit.enrich.company import load_companies

        companies = load_companies()
    return compare(
        snapshot(old, enricher=enricher, companies=companies),
        snapshot(new, enricher=enricher, companies=companies),
    )


def render_text(result: DiffResult) -> str:
    """Human-readable "what changed in this update": versions, then each category that changed."""
    lines = [f"{result.old} ({result.old_kind}) → {result.new} ({result.new_kind})"]
    if result.version_line:
        lines.append(f"Version: {result.version_line}")
    if result.vantage_line:
        lines.append(f"Vantage: {result.vantage_line}")
    if not result.changed:
        lines.append(
            "No change in versions, companies, countries, data, SDKs, hosts, domains or permissions."
        )
    for c in result.changes:
        if not (c.added or c.removed):
            continue
        lines.append(f"{c.title}: +{len(c.added)} −{len(c.removed)} ({c.unchanged} unchanged)")
        lines += [f"  + {x}" for x in c.added]
        lines += [f"  - {x}" for x in c.removed]
    moved = [h for h in result.host_countries if h.changed]
    if moved:
        same = sum(1 for h in result.host_countries if h.old and h.new and not h.changed)
        lines.append(f"Server country per host ({result.vantage_line or 'vantage unknown'}): "
                     f"{len(moved)} changed ({same} unchanged)")  # fmt: skip
        lines += [f"  ~ {h.host}: {', '.join(h.old)} → {', '.join(h.new)}" for h in moved]
    return "\n".join(lines)


def change_rows(result: DiffResult) -> list[dict[str, str]]:
    """One row per added or removed member (``audit diff --format csv``), versions first."""
    rows = [
        {"category": "version", "change": change, "value": v}
        for change, versions in (("removed", result.old_versions), ("added", result.new_versions))
        if result.old_versions != result.new_versions
        for v in versions
    ]
    for c in result.changes:
        rows += [{"category": c.category, "change": "added", "value": x} for x in c.added]
        rows += [{"category": c.category, "change": "removed", "value": x} for x in c.removed]
    rows += [{"category": "server_country_by_host", "change": "changed",
              "value": f"{h.host}: {','.join(h.old)} -> {','.join(h.new)}"} for h in result.host_countries if h.changed]  # fmt: skip
    return rows
