"""``audit corpus``: what a corpus of scanned apps shows, app by app counted.

Read from a case file filled by ``audit batch`` (or ``audit scan --db``): each distinct package
(SHA-256) once. An SDK counts for an app only with **code evidence** (its own classes are in the
package, :func:`sdk_in_code`); an SDK seen only through a host string in the app is counted apart,
as ``network_only``, never as "embedded". Owner company and home country are the SDK's (the
signature database's ultimate owner); endpoint domains get the owner of the domain from the company
table. The JSON form (:meth:`Corpus.to_dict`) is documented in docs/corpus.md.

Results are read one at a time; what is kept per app is its identity and a few ids, so a corpus of
tens of thousands of apps fits in memory.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from audit.enrich.company import CompanyDb, load_companies
from audit.models import ScanResult, Sdk, Signer
from audit.store import Store

__all__ = ["Corpus", "collect_corpus", "sdk_in_code"]

#: Endpoint domains listed in ``domains`` (the most common first).
TOP_DOMAINS = 100


def sdk_in_code(sdk: Sdk) -> bool:
    """Whether the SDK's own code is in the app (``presence: "code"``, docs/static-precision.md); the
    one place a corpus count decides this. Scans stored before presence existed are read with their
    host-only SDKs moved to ``sdk_mentions`` (:meth:`audit.models.ScanResult.from_dict`)."""
    return sdk.presence == "code"


@dataclass
class _SdkCount:
    sdk: Sdk
    apps: list[str] = field(default_factory=list)
    network_only: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Corpus:
    """The aggregate; every list sorted (most apps first, then by name)."""

    apps: int
    packages: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    ignored: list[dict[str, Any]]
    sdks: list[dict[str, Any]]
    companies: list[dict[str, Any]]
    countries: dict[str, int]
    categories: list[dict[str, Any]]
    sdks_per_app: dict[str, Any]
    domains: list[dict[str, Any]]
    domains_total: int
    signers: list[dict[str, Any]]
    unsigned: int
    resigned: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "apps": self.apps,
            "failed": self.failed,
            "ignored": self.ignored,
            "sdks": self.sdks,
            "companies": self.companies,
            "countries": self.countries,
            "categories": self.categories,
            "sdks_per_app": self.sdks_per_app,
            "domains": self.domains,
            "domains_total": self.domains_total,
            "signers": self.signers,
            "unsigned": self.unsigned,
            "resigned": self.resigned,
            "packages": self.packages,
        }


def _by_apps(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (-int(r["apps"]), str(r[key])))


def collect_corpus(store: Store, companies: CompanyDb | None = None) -> Corpus:
    """Aggregate every distinct package of the case file."""
    companies = companies if companies is not None else load_companies()
    packages: list[dict[str, Any]] = []
    sdks: dict[str, _SdkCount] = {}
    domains: Counter[str] = Counter()
    signers: dict[str, tuple[Signer, set[str], set[str], list[str]]] = {}
    copies: dict[str, dict[tuple[str, ...], list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    unsigned = 0
    for paths, result in store.corpus_scans():
        row = _app_row(paths, result)
        packages.append(row)
        sha = result.app.sha256
        for s in (*result.sdks, *result.sdk_mentions):
            count = sdks.setdefault(s.id, _SdkCount(s))
            (count.apps if sdk_in_code(s) else count.network_only).append(sha)
        domains.update({e.domain for e in result.servers if e.domain})
        for sg in result.app.signers:
            seen = signers.setdefault(sg.sha256, (sg, set(), set(), []))
            seen[1].update(sg.schemes)
            seen[2].add(result.app.package or "")
            seen[3].append(sha)
        if not result.app.signers and result.app.format != "dex":
            unsigned += 1
        if result.app.package:
            key = tuple(sg.sha256 for sg in result.app.signers)
            copies[result.app.package][key].append(
                {"sha256": sha, "version_name": result.app.version_name, "version_code": result.app.version_code,
                 "paths": paths}
            )  # fmt: skip
    n = len(packages)
    sdk_rows = [
        {"id": c.sdk.id, "name": c.sdk.name, "owner": c.sdk.owner, "owner_country": c.sdk.owner_country,
         "category": c.sdk.category, "apps": len(c.apps), "share": round(len(c.apps) / n, 4) if n else 0.0,
         "network_only": len(c.network_only), "app_sha256": sorted(c.apps),
         "network_only_sha256": sorted(c.network_only)}
        for c in sdks.values()
    ]  # fmt: skip
    in_code = [r for r in sdk_rows if r["apps"]]
    return Corpus(
        apps=n,
        packages=sorted(packages, key=lambda r: (str(r["package"] or ""), r["sha256"])),
        failed=[_outcome(r) for r in store.batch_rows("failed")],
        ignored=[_outcome(r) for r in store.batch_rows("ignored")],
        sdks=_by_apps(sdk_rows, "id"),
        companies=_group(
            in_code, packages, lambda r: (r["owner"], r["owner_country"]), ("company", "country")
        ),
        countries=_country_counts(in_code),
        categories=_group(in_code, packages, lambda r: (r["category"],), ("category",)),
        sdks_per_app=_distribution([len(p["sdks"]) for p in packages]),
        domains=_domains(domains, companies),
        domains_total=len(domains),
        signers=_signers(signers),
        unsigned=unsigned,
        resigned=_resigned(copies),
    )


def _app_row(paths: list[str], r: ScanResult) -> dict[str, Any]:
    code = sorted(s.id for s in r.sdks if sdk_in_code(s))
    return {
        "sha256": r.app.sha256, "package": r.app.package, "version_name": r.app.version_name,
        "version_code": r.app.version_code, "format": r.app.format, "paths": paths, "sdks": code,
        "network_only_sdks": sorted(s.id for s in (*r.sdks, *r.sdk_mentions) if not sdk_in_code(s)),
        "signers": [s.sha256 for s in r.app.signers], "endpoints": len(r.servers), "errors": len(r.errors),
    }  # fmt: skip


def _outcome(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "sha256": row["sha256"],
        "paths": row["paths"],
        "reason": row["reason"],
        "attempts": row["attempts"],
    }


def _group(
    sdk_rows: list[dict[str, Any]], packages: list[dict[str, Any]], key: Any, names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Apps (with code evidence) per group of SDKs, e.g. per (owner, country) or per category."""
    members: dict[tuple[str, ...], set[str]] = defaultdict(set)
    apps: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for r in sdk_rows:
        k = key(r)
        members[k].add(r["id"])
        apps[k].update(r["app_sha256"])
    rows = [{**dict(zip(names, k, strict=True)), "apps": len(apps[k]),
             "share": round(len(apps[k]) / len(packages), 4) if packages else 0.0, "sdks": sorted(members[k])}
            for k in members]  # fmt: skip
    return _by_apps(rows, names[0])


def _country_counts(sdk_rows: list[dict[str, Any]]) -> dict[str, int]:
    apps: dict[str, set[str]] = defaultdict(set)
    for r in sdk_rows:
        apps[r["owner_country"]].update(r["app_sha256"])
    return {cc: len(s) for cc, s in sorted(apps.items(), key=lambda kv: (-len(kv[1]), kv[0]))}


def _distribution(counts: list[int]) -> dict[str, Any]:
    hist = Counter(counts)
    return {
        "histogram": {str(k): hist[k] for k in range(max(counts, default=0) + 1)},
        "mean": round(statistics.fmean(counts), 2) if counts else 0.0,
        "median": statistics.median(counts) if counts else 0,
        "max": max(counts, default=0),
    }


def _domains(domains: Counter[str], companies: CompanyDb) -> list[dict[str, Any]]:
    rows = []
    for domain, apps in sorted(domains.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_DOMAINS]:
        owner = companies.lookup(domain)
        rows.append({"domain": domain, "apps": apps, "owner": owner.company if owner else None,
                     "owner_country": owner.country if owner else None})  # fmt: skip
    return rows


def _signers(signers: dict[str, tuple[Signer, set[str], set[str], list[str]]]) -> list[dict[str, Any]]:
    rows = []
    for sg, schemes, names, apps in signers.values():
        d = sg.to_dict()
        d["schemes"] = sorted(schemes)
        rows.append({**d, "apps": len(apps), "packages": sorted(names), "app_sha256": sorted(apps)})
    return _by_apps(rows, "sha256")


def _resigned(copies: dict[str, dict[tuple[str, ...], list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Packages present with more than one set of signers: another signer is another app."""
    out = []
    for package, by_signers in sorted(copies.items()):
        if sum(1 for k in by_signers if k) < 2:  # unsigned copies alone do not make a re-signed one
            continue
        out.append({
            "package": package,
            "copies": [{"signers": list(k), "apps": sorted(v, key=lambda a: a["sha256"])}
                       for k, v in sorted(by_signers.items())],
        })  # fmt: skip
    return out
