"""Domain → company → home country (fact 3: who receives the data).

The table is our own ``audit/data/companies.json`` (schema in ``audit/data/README.md``). A host
belongs to the company owning its longest matching domain suffix (at a label boundary). The answer
is the *ultimate* owner: ``adjust.com`` is listed under Adjust (DE) whose ``parent`` is AppLovin (US),
so :meth:`CompanyDb.lookup` reports AppLovin/US, the same rule ``sdks.json`` uses for SDK owners.
:meth:`CompanyDb.match` gives the directly listed entity when the subsidiary matters.

This is deliberately separate from where a server is (geo-IP) and who runs its network (ASN).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from audit.errors import ConfigError
from audit.models import CompanyInfo
from audit.names import host_name, normalize_host

log = logging.getLogger(__name__)

COMPANIES_FILE = "companies.json"

#: ISO 3166-1 user-assigned code used for "no single owner" (community open-source projects).
NO_COUNTRY = "ZZ"

#: Domains under which tenants name their own sites, apps and buckets (``<project>.appspot.com``,
#: ``<bucket>.s3.amazonaws.com``): the company owning the suffix is the host provider, and that a
#: name lies under it says nothing about who runs it or whether it is a server at all (Firebase
#: writes the project's storage bucket, ``<project>.appspot.com``, into every app's resources).
HOSTING_DOMAINS = frozenset(
    {
        "github.io", "githubusercontent.com", "gitlab.io", "appspot.com", "firebaseapp.com", "web.app",
        "firebasestorage.app", "herokuapp.com", "amazonaws.com", "cloudfront.net", "wordpress.com", "blogspot.com",
        "netlify.app", "vercel.app", "pages.dev", "workers.dev", "myqcloud.com", "aliyuncs.com",
        "azurewebsites.net", "windows.net", "googleusercontent.com",
    }
)  # fmt: skip


def is_hosted(host: str) -> bool:
    """``host`` is a tenant's name under one of :data:`HOSTING_DOMAINS` (or one of them itself)."""
    return any(host == h or host.endswith("." + h) for h in HOSTING_DOMAINS)


@dataclass(frozen=True)
class Company:
    """One row of companies.json."""

    name: str
    country: str
    """ISO 3166-1 alpha-2 code of the company's home (headquarters) country."""
    domains: tuple[str, ...] = ()
    """Registrable domains or suffixes the company owns, lower case, no leading dot."""
    parent: str | None = None
    """Name of the current parent company, if this one is a subsidiary or brand."""
    aliases: tuple[str, ...] = ()
    """Other names (brands, former names, legal names) accepted by :meth:`CompanyDb.get`."""


class CompanyLookup(Protocol):
    """What the layers above need of the company table (:class:`CompanyDb` is one): the owner of a
    host, and the ultimate owner of a company name."""

    def lookup(self, host: str) -> CompanyInfo | None: ...

    def ultimate_owner(self, name: str) -> Company | None: ...


def resolve_owner(owner: str, country: str | None, companies: CompanyLookup | None) -> tuple[str, str | None]:
    """An SDK's owner and home country as the company table names them: its ultimate owner (the SDK
    table and the company table may name a company differently, Meta vs Meta Platforms, or list a
    subsidiary whose parent owns it now). ``(owner, country)`` unchanged when the table does not know it."""
    top = companies.ultimate_owner(owner) if owner and companies is not None else None
    return (top.name, top.country) if top is not None else (owner, country or None)


def suffixes(host: str) -> Iterable[str]:
    """``a.b.c`` → ``a.b.c``, ``b.c``, ``c``: longest first, at label boundaries."""
    yield host
    i = host.find(".")
    while i != -1:
        yield host[i + 1 :]
        i = host.find(".", i + 1)


class CompanyDb:
    """Company table with a suffix index. Build with :func:`load_companies` or from rows in tests."""

    def __init__(self, companies: Iterable[Company]) -> None:
        self.companies: tuple[Company, ...] = tuple(companies)
        self._by_name: dict[str, Company] = {}
        self._by_domain: dict[str, Company] = {}
        for c in self.companies:
            for key in (c.name, *c.aliases):
                self._by_name.setdefault(key.casefold(), c)
            for d in c.domains:
                if d in self._by_domain and self._by_domain[d] is not c:
                    log.debug("domain %s listed by %s and %s", d, self._by_domain[d].name, c.name)
                self._by_domain.setdefault(d, c)
        self._cache: dict[str, tuple[Company, str] | None] = {}

    def __len__(self) -> int:
        return len(self.companies)

    def get(self, name: str) -> Company:
        """The company called ``name`` (or with that alias), case-insensitive; KeyError if unknown."""
        try:
            return self._by_name[name.casefold()]
        except KeyError:
            raise KeyError(name) from None

    def find(self, name: str) -> Company | None:
        """Like :meth:`get` but None when unknown."""
        return self._by_name.get(name.casefold())

    def closest(self, name: str, n: int = 3) -> list[str]:
        """Company names (or aliases) closest to ``name``, for "did you mean" hints."""
        import difflib

        keys = {k: c.name for c in self.companies for k in (c.name, *c.aliases)}
        folded = {k.casefold(): k for k in keys}
        return [folded[k] for k in difflib.get_close_matches(name.casefold(), list(folded), n=n, cutoff=0.6)]

    def owner_chain(self, name: str) -> tuple[Company, ...]:
        """``name`` and its parents up to the ultimate owner (cycles and unknown parents end it)."""
        chain: list[Company] = []
        c = self.find(name)
        while c is not None and c not in chain:
            chain.append(c)
            c = self.find(c.parent) if c.parent else None
        return tuple(chain)

    def ultimate_owner(self, name: str) -> Company | None:
        chain = self.owner_chain(name)
        return chain[-1] if chain else None

    def match(self, host: str) -> tuple[Company, str] | None:
        """The directly listed company owning ``host`` and the suffix that matched, or None."""
        h = host_name(host)
        if h is None:
            return None
        if h in self._cache:
            return self._cache[h]
        found: tuple[Company, str] | None = None
        for s in suffixes(h):
            c = self._by_domain.get(s)
            if c is not None:
                found = (c, s)
                break
        if len(self._cache) < 100_000:
            self._cache[h] = found
        return found

    def lookup(self, host: str) -> CompanyInfo | None:
        """Ultimate owner of ``host`` with its home country; None for unknown hosts and IPs."""
        m = self.match(host)
        if m is None:
            return None
        company, suffix = m
        top = self.ultimate_owner(company.name) or company
        return CompanyInfo(company=top.name, country=top.country, matched=suffix)


def parse_companies(data: Any, origin: str) -> tuple[Company, ...]:
    """Validate the JSON form of companies.json; ConfigError names ``origin`` and the bad entry."""
    if not isinstance(data, list):
        raise ConfigError(f"{origin}: expected a JSON list of companies")
    out: list[Company] = []
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise ConfigError(f"{origin}: entry {i} is not an object")
        name, country = row.get("name"), row.get("country")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{origin}: entry {i} has no name")
        if not isinstance(country, str) or len(country) != 2 or not country.isupper():
            raise ConfigError(f"{origin}: {name}: country must be an ISO 3166-1 alpha-2 code")
        domains = row.get("domains", [])
        aliases = row.get("aliases", [])
        parent = row.get("parent")
        if not isinstance(domains, list) or not all(isinstance(d, str) and d for d in domains):
            raise ConfigError(f"{origin}: {name}: domains must be a list of strings")
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ConfigError(f"{origin}: {name}: aliases must be a list of strings")
        if parent is not None and not isinstance(parent, str):
            raise ConfigError(f"{origin}: {name}: parent must be a string")
        out.append(
            Company(
                name=name,
                country=country,
                domains=tuple(normalize_host(d) or "" for d in domains),
                parent=parent or None,
                aliases=tuple(aliases),
            )
        )
    return tuple(out)


@functools.cache
def load_companies() -> CompanyDb:
    """The builtin company table (loaded once per process)."""
    text = resources.files("audit").joinpath("data", COMPANIES_FILE).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{COMPANIES_FILE}: not valid JSON ({e})") from e
    return CompanyDb(parse_companies(data, COMPANIES_FILE))
