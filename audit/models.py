"""Findings as frozen dataclasses.

Every module produces or consumes these; derive changed copies with ``dataclasses.replace``.
The JSON forms (``to_dict``) are a documented contract: see ``docs/scan-json.md`` and
``docs/destinations.md``. Extend them, never rename keys.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from audit.static.transport import TransportSecurity

# --------------------------------------------------------------------------------------------
# Static side
# --------------------------------------------------------------------------------------------

#: Kinds of place an endpoint string was found in (``Source.kind``).
SOURCE_KINDS = (
    "dex",  # string table of a DEX file
    "resources",  # resources.arsc string pool
    "xml",  # compiled XML resource (res/**.xml)
    "network_security_config",  # domains of a network_security_config XML
    "manifest",  # AndroidManifest.xml meta-data values
    "asset",  # text file under assets/ (JS bundle, JSON, HTML, properties, config ...)
    "native",  # printable strings of lib/**/*.so
)

#: Endpoint kinds (``Endpoint.kind``).
ENDPOINT_KINDS = ("url", "host", "ip")


@dataclass(frozen=True, order=True)
class Source:
    """Where an endpoint string was found."""

    kind: str
    """One of :data:`SOURCE_KINDS`."""
    file: str
    """Path inside the archive; for split bundles prefixed by the inner APK: ``base.apk!classes2.dex``."""


@dataclass(frozen=True)
class Endpoint:
    """A URL, bare host name or IP literal found in the package."""

    value: str
    """The string as found (URL, host or IP), trimmed of surrounding noise."""
    host: str | None
    """Lower-case host name or IP literal; None for URLs without a host."""
    domain: str | None
    """Registrable domain (eTLD+1) of ``host``; None for IPs."""
    kind: str
    """``url``, ``host`` or ``ip``."""
    placeholder: bool = False
    """example.com, localhost, RFC 1918/loopback/link-local IPs …: kept but marked."""
    sources: tuple[Source, ...] = ()
    """Every place the value was found (sorted, unique)."""
    classes: tuple[str, ...] = ()
    """DEX classes (``com.foo.Bar``) whose code loads the string by const-string (sorted, unique)."""
    sdk: str | None = None
    """Id of the SDK the endpoint is attributed to (by referencing class or by domain), if any."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "host": self.host,
            "domain": self.domain,
            "kind": self.kind,
            "placeholder": self.placeholder,
            "sources": [{"kind": s.kind, "file": s.file} for s in self.sources],
            "classes": list(self.classes),
            "sdk": self.sdk,
        }


@dataclass(frozen=True)
class Sdk:
    """A third-party SDK detected in the package."""

    id: str
    name: str
    owner: str
    """Company owning the SDK."""
    owner_country: str
    """ISO 3166-1 alpha-2 code of the owner's home country."""
    category: str
    evidence: tuple[str, ...] = ()
    """Human-readable reasons, e.g. ``code: 412 classes under com.tencent.bugly``,
    ``network: android.bugly.qq.com in classes3.dex``."""
    class_count: int = 0
    """Number of classes under the SDK's code prefixes (0 when found only by network)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence"] = list(self.evidence)
        return d


@dataclass(frozen=True)
class DataAccess:
    """A kind of personal data the app can reach through its requested permissions."""

    type: str
    """location, contacts, phone_identity, camera, microphone, sms, call_log, calendar, accounts,
    storage, sensors …"""
    permissions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "permissions": list(self.permissions)}


@dataclass(frozen=True)
class AppInfo:
    """Identity of a scanned input."""

    package: str | None
    version_name: str | None
    version_code: str | None
    sha256: str
    file: str
    """The input path as given."""
    format: str
    """apk, apks, xapk, apkm, aab or dex."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScanResult:
    """Everything ``audit scan`` reports for one input."""

    app: AppInfo
    endpoints: tuple[Endpoint, ...] = ()
    sdks: tuple[Sdk, ...] = ()
    permissions: tuple[str, ...] = ()
    data_access: tuple[DataAccess, ...] = ()
    errors: tuple[str, ...] = ()
    """Non-fatal problems: parts of the archive that could not be read (partial results)."""
    transport: TransportSecurity = field(default_factory=TransportSecurity)
    """Certificate pinning, cleartext traffic and trusted CAs the app declares."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app.to_dict(),
            "endpoints": [e.to_dict() for e in self.endpoints],
            "sdks": [s.to_dict() for s in self.sdks],
            "permissions": list(self.permissions),
            "data_access": [d.to_dict() for d in self.data_access],
            "errors": list(self.errors),
            "transport_security": self.transport.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScanResult:
        return cls(
            app=AppInfo(**d["app"]),
            endpoints=tuple(
                Endpoint(
                    value=e["value"],
                    host=e.get("host"),
                    domain=e.get("domain"),
                    kind=e["kind"],
                    placeholder=bool(e.get("placeholder")),
                    sources=tuple(Source(**s) for s in e.get("sources", ())),
                    classes=tuple(e.get("classes", ())),
                    sdk=e.get("sdk"),
                )
                for e in d.get("endpoints", ())
            ),
            sdks=tuple(
                Sdk(
                    id=s["id"],
                    name=s["name"],
                    owner=s["owner"],
                    owner_country=s["owner_country"],
                    category=s["category"],
                    evidence=tuple(s.get("evidence", ())),
                    class_count=int(s.get("class_count", 0)),
                )
                for s in d.get("sdks", ())
            ),
            permissions=tuple(d.get("permissions", ())),
            data_access=tuple(
                DataAccess(type=x["type"], permissions=tuple(x["permissions"]))
                for x in d.get("data_access", ())
            ),
            errors=tuple(d.get("errors", ())),
            transport=TransportSecurity.from_dict(d.get("transport_security")),
        )


# --------------------------------------------------------------------------------------------
# Dynamic side
# --------------------------------------------------------------------------------------------

#: ``Connection.tls`` values.
TLS_STATES = ("intercepted", "failed", "passthrough", "none")

#: ``Connection.source`` values.
TRAFFIC_SOURCES = ("live", "mitm-file", "har", "pcap")

#: Traffic times before 1990-01-01 UTC or more than :data:`FUTURE_SLACK` seconds after now are a
#: broken clock, damage or forgery, not traffic (issue 15: a flow file with 1e300 timestamps). Such
#: records are kept, but left out of every time computation (timelines, first/last seen), and an
#: import says so in the input's notes.
EARLIEST_TIME = 631_152_000.0
FUTURE_SLACK = 86_400.0


def time_window(now: float | None = None) -> tuple[float, float]:
    """(earliest, latest) plausible traffic time, Unix seconds."""
    return EARLIEST_TIME, (time.time() if now is None else now) + FUTURE_SLACK


def plausible_time(ts: object, now: float | None = None) -> bool:
    """Whether ``ts`` is a number inside :func:`time_window`."""
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return False
    lo, hi = time_window(now)
    return lo <= ts <= hi


@dataclass(frozen=True)
class DataFinding:
    """Personal data seen in one request. The raw value is never stored, only ``masked``."""

    data_type: str
    """android_id, aaid, oaid, imei, serial, wifi_mac, bt_mac, phone, email, account, location,
    carrier, installed_apps, custom:<name> …"""
    location: str
    """Where in the request: ``query:adid``, ``header:X-Device``, ``cookie:uid``, ``body.json:$.device.imei``,
    ``path``, ``body.form:mac`` …"""
    encoding: str
    """plain, upper, lower, no-separators, urlencoded, base64, base64url, hex, md5, sha1, sha256 …"""
    confidence: str
    """``known`` (matched a device-profile value) or ``pattern`` (detector without a known value)."""
    masked: str
    """e.g. ``35•••••••••1234``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HttpRequestData:
    """What an HTTP request carried, kept in the case file so that data detection can be re-run
    (``audit pii``). Never exported or shown in reports."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    """Raw body as sent (still content-encoded), capped by the recorder/importer."""
    body_truncated: bool = False


@dataclass(frozen=True)
class Connection:
    """One observed flow or connection to a destination (HTTP flow, failed/passed-through TLS
    connection, raw TCP/UDP flow, QUIC connection)."""

    ts: float
    """Start time, Unix seconds."""
    source: str
    """live, mitm-file, har or pcap."""
    protocol: str
    """http, https, ws, wss, tcp, udp, quic, tls (TLS seen but not intercepted), dns."""
    tls: str = "none"
    """intercepted, failed, passthrough or none."""
    app: str = ""
    """Analyst's app label (``--app`` / ``audit_app``)."""
    host: str | None = None
    """Requested host name (Host/:authority, CONNECT target, SNI, or DNS name of the IP)."""
    sni: str | None = None
    ip: str | None = None
    """Server IP actually connected."""
    port: int | None = None
    client: str | None = None
    """Client address ``ip:port``."""
    method: str | None = None
    scheme: str | None = None
    path: str | None = None
    """Path without query string."""
    query_keys: tuple[str, ...] = ()
    status: int | None = None
    bytes_out: int = 0
    bytes_in: int = 0
    request_content_type: str | None = None
    response_content_type: str | None = None
    http_version: str | None = None
    tls_version: str | None = None
    alpn: str | None = None
    error: str | None = None
    """Failure reason (TLS handshake failure, connection refused …)."""
    end_ts: float | None = None
    findings: tuple[DataFinding, ...] = ()
    request: HttpRequestData | None = field(default=None, repr=False, compare=False)
    """Request content for data detection; stored separately, never part of ``to_dict``."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("request", None)
        d["query_keys"] = list(self.query_keys)
        d["findings"] = [f.to_dict() for f in self.findings]
        return d


@dataclass(frozen=True)
class DnsRecord:
    """A DNS question and its answers, so that a bare IP later gets the name the app asked for."""

    ts: float
    source: str
    name: str
    qtype: str = "A"
    answers: tuple[str, ...] = ()
    """IP addresses (A/AAAA) or names (CNAME) answered."""
    app: str = ""


@dataclass(frozen=True)
class IpInfo:
    """Where a server is and who runs its network (facts 1 and 2). Never the data recipient."""

    ip: str
    scope: str
    """public, private, loopback, link-local, multicast, reserved, cgnat or invalid."""
    country: str | None = None
    """ISO code of the server location (None for non-public scopes)."""
    city: str | None = None
    asn: int | None = None
    asn_org: str | None = None
    database: str | None = None
    """Which geo-IP database answered, e.g. ``geoip2fast (MAXMIND:GeoLite2-CountryASN-…-20240618)``."""
    database_date: str | None = None
    network_flags: tuple[str, ...] = ()
    """What the IPFire location database says of the network: ``anycast`` (served from many places,
    so the country is where it is registered, not necessarily where the app's packets went),
    ``anonymous-proxy``, ``satellite-provider``, ``drop`` (listed as hostile, e.g. Spamhaus DROP)."""
    flags_database: str | None = None
    """The location database consulted for ``network_flags`` (None: none was in use), whichever
    database answered the AS."""
    setup: str | None = None
    """Every database in use when the answer was made, in order of preference
    (:attr:`audit.enrich.geoip.Enricher.setup`): a cached answer is reused only under the same setup,
    where it is the answer a lookup would give."""

    @property
    def evidence(self) -> str | None:
        """``database``, plus ``flags_database`` when flags came from a database it does not name."""
        if not self.network_flags or not self.flags_database:
            return self.database
        if self.database and self.flags_database in self.database:
            return self.database
        return f"{self.database} + {self.flags_database}" if self.database else self.flags_database


@dataclass(frozen=True)
class CompanyInfo:
    """Who the data goes to (fact 3): the company owning a domain, and its home country."""

    company: str
    country: str
    matched: str
    """The domain suffix (or SDK id) that matched, as evidence."""


@dataclass(frozen=True)
class Destination:
    """One row of ``audit destinations``: a (host, ip, port) with its three facts kept apart."""

    host: str | None
    ip: str | None
    port: int | None
    protocol: str
    sni: str | None
    tls: str
    flows: int
    bytes_out: int
    bytes_in: int
    first_seen: float | None
    """Earliest plausible start time (:func:`plausible_time`); None when no flow has one."""
    last_seen: float | None
    server_country: str | None = None
    server_city: str | None = None
    asn: int | None = None
    asn_org: str | None = None
    company: str | None = None
    company_country: str | None = None
    sources: tuple[str, ...] = ()
    data_types: tuple[str, ...] = ()
    ip_scope: str | None = None
    geo_database: str | None = None
    apps: tuple[str, ...] = field(default_factory=tuple)
    first_party: str | None = None
    """The app package whose vendor runs this host (its own server), or None: the host name matches
    the package name (``api.example.com`` for ``com.example.app``), or, for a domain no company
    owns, the app's own code (not an SDK) loads it in the scanned APK."""
    first_party_evidence: str | None = None
    """Why ``first_party`` was set, in words an analyst can check."""
    network_flags: tuple[str, ...] = ()
    """Flags of the server's network (see :attr:`IpInfo.network_flags`), e.g. ``anycast``."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["network_flags"] = list(self.network_flags)
        d["sources"] = list(self.sources)
        d["data_types"] = list(self.data_types)
        d["apps"] = list(self.apps)
        return d
