"""Findings as frozen dataclasses.

Every module produces or consumes these; derive changed copies with ``dataclasses.replace``.
The JSON forms (``to_dict``) are a documented contract: see ``docs/scan-json.md`` and
``docs/destinations.md``. Extend them, never rename keys.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from audit.names import nat64_ipv4, normalize_host

# --------------------------------------------------------------------------------------------
# Static side: transport security the app declares (written by audit.static.transport)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainRule:
    """One ``<domain>`` of a ``domain-config``, with what applies to it."""

    domain: str
    include_subdomains: bool
    cleartext: bool | None
    """``cleartextTrafficPermitted`` of its domain-config (or an enclosing one); None: not set there."""
    pins: tuple[str, ...]
    """``sha256/<base64>`` pins of its pin-set (or an enclosing one's)."""
    pin_expiration: str | None
    trust_anchors: tuple[str, ...]
    """``certificates src`` values of its trust-anchors: ``system``, ``user`` or a resource."""
    file: str

    @property
    def scope(self) -> str:
        """The domain as the rule covers it: ``*.example.com`` with subdomains, else ``example.com``."""
        return f"*.{self.domain}" if self.include_subdomains else self.domain

    def matches(self, host: str) -> bool:
        h, d = normalize_host(host) or "", normalize_host(self.domain) or ""
        return h == d or (self.include_subdomains and h.endswith("." + d))

    def expired(self, today: str) -> bool:
        """Is the pin-set past its ``expiration`` (``YYYY-MM-DD``) on ``today``? Android stops
        enforcing an expired pin-set."""
        return bool(self.pin_expiration) and str(self.pin_expiration) < today


@dataclass(frozen=True)
class CodePin:
    """A pin string in the code, with where it is and which classes load it."""

    pin: str
    files: tuple[str, ...]
    classes: tuple[str, ...]


@dataclass(frozen=True)
class TransportSecurity:
    """What the app declares about its connections (``transport_security`` in the scan JSON)."""

    config_files: tuple[str, ...] = ()
    """Network security config files found (``res/xml/…``)."""
    applied_config: str | None = None
    """The one of them the settings below come from (see the module notes), or None."""
    manifest_config: bool = False
    """The manifest names a network security config (``android:networkSecurityConfig``)."""
    uses_cleartext_traffic: bool | None = None
    """``android:usesCleartextTraffic`` of the manifest; None when not set."""
    debuggable: bool = False
    target_sdk: int | None = None
    base_cleartext: bool | None = None
    base_trust_anchors: tuple[str, ...] = ()
    debug_trust_anchors: tuple[str, ...] = ()
    domains: tuple[DomainRule, ...] = ()
    code_pins: tuple[CodePin, ...] = ()
    pinning_libraries: tuple[str, ...] = ()
    """Pinning-capable library classes present in the DEX, e.g. ``okhttp3.CertificatePinner``
    (present in every app bundling OkHttp: not proof that the app pins)."""
    base_override_pins: bool = False
    debug_override_pins: bool = False

    @property
    def cleartext_default(self) -> bool | None:
        """May the app send cleartext HTTP to hosts no domain rule covers? The applied config's
        base-config, else ``usesCleartextTraffic`` (ignored when the manifest names a config), else the
        platform default for the target SDK (allowed below 28); None when nothing is known (no
        manifest)."""
        if self.base_cleartext is not None:
            return self.base_cleartext
        if self.uses_cleartext_traffic is not None and not self.manifest_config:
            return self.uses_cleartext_traffic
        return None if self.target_sdk is None else self.target_sdk < 28

    @property
    def user_cas_trusted(self) -> bool | None:
        """Does the app trust CAs the user installed, such as mitmproxy's? The applied config's
        base-config trust anchors (plus debug-overrides in a debuggable build), else the platform
        default (trusted below target SDK 24); None when nothing is known (no manifest)."""
        if self.debuggable and "user" in self.debug_trust_anchors:
            return True
        if self.base_trust_anchors:
            return "user" in self.base_trust_anchors
        return None if self.target_sdk is None else self.target_sdk < 24

    @property
    def pins_overridden(self) -> bool:
        """Are the config's pins bypassed for some trust anchors: ``overridePins`` on a base-config
        anchor, or debug-overrides in a debuggable build?"""
        return self.base_override_pins or (self.debuggable and self.debug_override_pins)

    @property
    def pinned_domains(self) -> tuple[DomainRule, ...]:
        return tuple(d for d in self.domains if d.pins)

    def rule_for(self, host: str) -> DomainRule | None:
        """The domain rule Android applies to ``host``: an exact ``<domain>`` match, else the longest
        matching ``includeSubdomains`` one; None when no rule covers it (base-config applies)."""
        h = normalize_host(host) or ""
        exact = [d for d in self.domains if normalize_host(d.domain) == h]
        if exact:
            return exact[0]
        hits = [d for d in self.domains if d.matches(h)]
        return max(hits, key=lambda d: len(d.domain)) if hits else None

    def pin_rule(self, host: str) -> DomainRule | None:
        """The rule applying to ``host`` if it pins, else None."""
        rule = self.rule_for(host)
        return rule if rule is not None and rule.pins else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cleartext_default"] = self.cleartext_default
        d["user_cas_trusted"] = self.user_cas_trusted
        d["pins_overridden"] = self.pins_overridden
        return _lists(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TransportSecurity:
        if not isinstance(d, dict):
            return cls()
        return cls(
            config_files=tuple(d.get("config_files", ())),
            applied_config=d.get("applied_config"),
            manifest_config=bool(d.get("manifest_config")),
            uses_cleartext_traffic=d.get("uses_cleartext_traffic"),
            debuggable=bool(d.get("debuggable")),
            target_sdk=d.get("target_sdk"),
            base_cleartext=d.get("base_cleartext"),
            base_trust_anchors=tuple(d.get("base_trust_anchors", ())),
            debug_trust_anchors=tuple(d.get("debug_trust_anchors", ())),
            domains=tuple(
                DomainRule(
                    domain=r["domain"],
                    include_subdomains=bool(r.get("include_subdomains")),
                    cleartext=r.get("cleartext"),
                    pins=tuple(r.get("pins", ())),
                    pin_expiration=r.get("pin_expiration"),
                    trust_anchors=tuple(r.get("trust_anchors", ())),
                    file=r.get("file", ""),
                )  # fmt: skip
                for r in d.get("domains", ())
            ),
            code_pins=tuple(
                CodePin(pin=p["pin"], files=tuple(p.get("files", ())), classes=tuple(p.get("classes", ())))
                for p in d.get("code_pins", ())
            ),
            pinning_libraries=tuple(d.get("pinning_libraries", ())),
            base_override_pins=bool(d.get("base_override_pins")),
            debug_override_pins=bool(d.get("debug_override_pins")),
        )


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Static side: endpoints, SDKs, the scan result
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

#: Source kinds that are code: an endpoint found there is "in the code" (``Endpoint.in_code``).
CODE_SOURCE_KINDS = frozenset({"dex", "native"})

#: Endpoint kinds (``Endpoint.kind``).
ENDPOINT_KINDS = ("url", "host", "ip")

#: ``Sdk.presence`` values: ``code`` (the SDK's own classes are in the app: the only presence that puts
#: an SDK in ``ScanResult.sdks``); ``host-in-code`` (code, but not the SDK's, loads one of its hosts:
#: another library's adapter, renamed code, the app calling the vendor's API); ``host-string`` (one of
#: its hosts is only named in resources, XML, the manifest or assets: a link, a list, a config).
PRESENCES = ("code", "host-in-code", "host-string")


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
    """Id of the SDK whose code loads the endpoint (by referencing class; for a host no SDK class
    loads, an SDK present in the code whose domain it is), if any. Always an SDK of ``sdks`` or a capability of ``capabilities``."""
    network: bool = True
    """Whether the string names a network server: URLs by their syntax, bare hosts and IPs only with
    positive evidence (:mod:`audit.static.servers`). ``False`` entries are listed so an analyst can see
    what was set aside; nothing counts them."""
    network_evidence: str | None = None
    """Why ``network`` is what it is: ``URL``, ``host of a URL in the app``, ``loaded by code that
    calls java.net.InetSocketAddress.<init> (com.foo.Dns)`` …, or the reason against."""
    company: str | None = None
    """Ultimate owner of the host's domain (companies.json), if known."""
    company_country: str | None = None
    """Home country of ``company``."""

    @property
    def counted(self) -> bool:
        """A real network server: ``network`` and not a placeholder. Every consumer (report, graph,
        diff, check, destinations) counts these and only these."""
        return self.network and not self.placeholder and self.host is not None

    @property
    def in_code(self) -> bool:
        """Found in code (a DEX string or a native library), not only in resources, XML or assets."""
        return any(s.kind in CODE_SOURCE_KINDS for s in self.sources)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "host": self.host,
            "domain": self.domain,
            "kind": self.kind,
            "placeholder": self.placeholder,
            "network": self.network,
            "network_evidence": self.network_evidence,
            "sources": [{"kind": s.kind, "file": s.file} for s in self.sources],
            "classes": list(self.classes),
            "sdk": self.sdk,
            "company": self.company,
            "company_country": self.company_country,
        }

    @classmethod
    def from_dict(cls, e: dict[str, Any]) -> Endpoint:
        return cls(
            value=e["value"],
            host=e.get("host"),
            domain=e.get("domain"),
            kind=e["kind"],
            placeholder=bool(e.get("placeholder")),
            sources=tuple(Source(**s) for s in e.get("sources", ())),
            classes=tuple(e.get("classes", ())),
            sdk=e.get("sdk"),
            network=bool(e.get("network", True)),
            network_evidence=e.get("network_evidence"),
            company=e.get("company"),
            company_country=e.get("company_country"),
        )


@dataclass(frozen=True)
class Sdk:
    """A third-party SDK whose code is in the package (``ScanResult.sdks``), a capability such as
    reading the advertising ID (``ScanResult.capabilities``), or an SDK vendor whose hosts are only
    mentioned (``ScanResult.sdk_mentions``): ``presence`` tells which evidence it rests on."""

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
    """Number of the SDK's own classes in the app (under its code prefixes, stub and interop classes
    not counted); 0 for a mention."""
    presence: str = "code"
    """One of :data:`PRESENCES`."""
    packages: tuple[str, ...] = ()
    """The code prefixes (packages or classes) that matched (``presence: code``)."""
    hosts: tuple[str, ...] = ()
    """For a mention: the SDK's hosts named in the app."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence"] = list(self.evidence)
        d["packages"] = list(self.packages)
        d["hosts"] = list(self.hosts)
        return d

    @classmethod
    def from_dict(cls, s: dict[str, Any]) -> Sdk:
        return cls(
            id=s["id"],
            name=s["name"],
            owner=s["owner"],
            owner_country=s["owner_country"],
            category=s["category"],
            evidence=tuple(s.get("evidence", ())),
            class_count=int(s.get("class_count", 0)),
            presence=s.get("presence") or "code",
            packages=tuple(s.get("packages", ())),
            hosts=tuple(s.get("hosts", ())),
        )


@dataclass(frozen=True)
class DataAccess:
    """A kind of personal data the app can reach through its requested permissions."""

    type: str
    """location, contacts, phone_identity, camera, microphone, sms, call_log, calendar, accounts,
    storage, sensors …"""
    permissions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "permissions": list(self.permissions)}


#: APK signature schemes (``Signer.schemes``): JAR signing, APK Signature Scheme v2, v3 and v3.1.
SIGNATURE_SCHEMES = ("v1", "v2", "v3", "v3.1")


@dataclass(frozen=True)
class Signer:
    """A certificate the package is signed with, as the signature blocks declare it (the signatures
    themselves are not verified: see docs/scan-json.md)."""

    sha256: str
    """SHA-256 fingerprint of the DER certificate, lower-case hex (what ``apksigner`` prints)."""
    schemes: tuple[str, ...]
    """Signature schemes that carry this certificate, in :data:`SIGNATURE_SCHEMES` order."""
    subject: str
    """Subject distinguished name, RFC 4514 (``CN=…,O=…,C=…``)."""
    issuer: str
    serial: str
    """Serial number, lower-case hex."""
    not_before: str
    """Start of validity, ISO 8601 UTC (``2024-01-01T00:00:00Z``)."""
    not_after: str
    key: str
    """Public key type and size: ``RSA 2048``, ``EC secp256r1``, ``DSA 1024`` …"""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schemes"] = list(self.schemes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signer:
        return cls(**{**d, "schemes": tuple(d.get("schemes", ()))})


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
    signers: tuple[Signer, ...] = ()
    """Signing certificates, sorted by fingerprint; empty when unsigned (or a bare DEX)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["signers"] = [s.to_dict() for s in self.signers]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AppInfo:
        signers = tuple(Signer.from_dict(s) for s in d.get("signers", ()))
        return cls(**{**d, "signers": signers})


@dataclass(frozen=True)
class ScanResult:
    """Everything ``audit scan`` reports for one input."""

    app: AppInfo
    endpoints: tuple[Endpoint, ...] = ()
    """Every endpoint-like string kept, ``network: false`` ones included: use :attr:`servers`."""
    sdks: tuple[Sdk, ...] = ()
    """SDKs whose own code is in the app (``presence: code``), and only those."""
    capabilities: tuple[Sdk, ...] = ()
    """Code that gives the app a capability without being a full SDK (reads the advertising ID …)."""
    sdk_mentions: tuple[Sdk, ...] = ()
    """SDK vendors whose hosts are named but whose code is not in the app (``presence`` other than
    ``code``): never SDKs of the app."""
    permissions: tuple[str, ...] = ()
    data_access: tuple[DataAccess, ...] = ()
    errors: tuple[str, ...] = ()
    """Non-fatal problems: parts of the archive that could not be read (partial results)."""
    not_read: tuple[str, ...] = ()
    """Parts deliberately not read, each with why (a Python build environment packed with the app):
    what was not seen, though the result is not partial."""
    transport: TransportSecurity = field(default_factory=TransportSecurity)
    """Certificate pinning, cleartext traffic and trusted CAs the app declares."""

    @property
    def servers(self) -> tuple[Endpoint, ...]:
        """The endpoints that count (:attr:`Endpoint.counted`)."""
        return tuple(e for e in self.endpoints if e.counted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app.to_dict(),
            "endpoints": [e.to_dict() for e in self.endpoints],
            "sdks": [s.to_dict() for s in self.sdks],
            "capabilities": [s.to_dict() for s in self.capabilities],
            "sdk_mentions": [s.to_dict() for s in self.sdk_mentions],
            "permissions": list(self.permissions),
            "data_access": [d.to_dict() for d in self.data_access],
            "errors": list(self.errors),
            "not_read": list(self.not_read),
            "transport_security": self.transport.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScanResult:
        sdks = [Sdk.from_dict(s) for s in d.get("sdks", ())]
        mentions = [Sdk.from_dict(s) for s in d.get("sdk_mentions", ())]
        if "sdk_mentions" not in d:
            # Scans stored before presence existed listed SDKs found only by host among the SDKs.
            mentions = [replace(s, presence="host-string") for s in sdks if s.class_count == 0]
            sdks = [s for s in sdks if s.class_count > 0]
        return cls(
            app=AppInfo.from_dict(d["app"]),
            endpoints=tuple(Endpoint.from_dict(e) for e in d.get("endpoints", ())),
            sdks=tuple(sdks),
            capabilities=tuple(Sdk.from_dict(s) for s in d.get("capabilities", ())),
            sdk_mentions=tuple(mentions),
            permissions=tuple(d.get("permissions", ())),
            data_access=tuple(
                DataAccess(type=x["type"], permissions=tuple(x["permissions"]))
                for x in d.get("data_access", ())
            ),
            errors=tuple(d.get("errors", ())),
            not_read=tuple(d.get("not_read", ())),
            transport=TransportSecurity.from_dict(d.get("transport_security")),
        )


# --------------------------------------------------------------------------------------------
# Dynamic side
# --------------------------------------------------------------------------------------------

#: ``Connection.tls`` values.
TLS_STATES = ("intercepted", "decrypted", "failed", "passthrough", "none", "unknown")
"""``intercepted``: mitmproxy terminated the app's TLS and read the content; ``decrypted``: a capture's
TLS read with its session keys (a key log, pcapng decryption secrets); ``failed``: the app started TLS
but refused interception (pinning, an untrusted CA); ``passthrough``: TLS (QUIC included) relayed or
captured unread; ``none``: no TLS (plaintext, or not TLS at all: raw TCP/UDP, DNS); ``unknown``: the
connection carried no payload, so whether it would have been TLS is not known (a 0-byte TCP/443)."""

#: ``Connection.attribution`` values: how a connection is tied to the app. ``app-metadata``: per-app
#: data in the capture names the app (PCAPdroid's per-packet app, a UID map); ``proxy``: the proxy
#: knows the process (mitmproxy's local mode); ``label``: only the analyst's label for the whole
#: capture, which may hold the whole device's traffic.
ATTRIBUTIONS = ("app-metadata", "proxy", "label")

#: Plaintext protocols whose content a recorder or importer reads.
_PLAINTEXT_READ = frozenset({"http", "ws"})


def unread_reason(tls: str, protocol: str) -> str:
    """Why a connection that is not :attr:`Connection.inspected` was not read, in words the report
    and ``audit destinations`` (``not_inspected``) use: ``TLS passthrough``, ``QUIC``, ``refused
    interception``, ``no payload``, ``DNS``, ``raw TCP/UDP``."""
    if tls == "failed":
        return "refused interception"
    if protocol == "quic":
        return "QUIC"
    if tls == "passthrough":
        return "TLS passthrough"
    if tls == "unknown":
        return "no payload"
    if protocol == "dns":
        return "DNS"
    return "raw TCP/UDP"


#: ``Connection.source`` values.
TRAFFIC_SOURCES = ("live", "mitm-file", "har", "pcap")

#: Traffic times before 2008-01-01 UTC (before Android shipped: no app traffic is older) or more
#: than :data:`FUTURE_SLACK` seconds after now (the import time) are a broken clock, damage or
#: forgery, not traffic (issue 15: a flow file with 1e300 timestamps; issue 12: a zero timestamp drew
#: a timeline from 1970). Such records are kept, but left out of every time computation (timelines,
#: first/last seen), and an import says so in the input's notes.
EARLIEST_TIME = 1_199_145_600.0
FUTURE_SLACK = 86_400.0


def time_window(now: float | None = None) -> tuple[float, float]:
    """(earliest, latest) plausible traffic time, Unix seconds."""
    return EARLIEST_TIME, (time.time() if now is None else now) + FUTURE_SLACK


def plausible_time(ts: object, now: float | None = None) -> bool:
    """Whether ``ts`` is a number inside :func:`time_window`."""
    if not isinstance(ts, (int, float)) or isinstance(ts, bool):  # a tuple: a union is built per call
        return False
    lo, hi = time_window(now)
    return lo <= ts <= hi


#: Personal-data types the detectors report (``DataFinding.data_type``, the table in docs/pii.md),
#: besides ``custom:<name>`` for a device profile's own values (:data:`CUSTOM_DATA_PREFIX`).
DATA_TYPES = (
    "android_id", "aaid", "oaid", "imei", "meid", "serial", "wifi_mac", "bt_mac", "mac", "bssid", "phone",
    "email", "account", "location", "coordinates", "carrier", "imsi", "iccid", "installed_apps",
)  # fmt: skip
CUSTOM_DATA_PREFIX = "custom:"
#: Data types that are not personal data: ``coordinates`` are not the device's location (issue 12).
#: Reported and checkable (``--deny-data``), listed among the data findings, but not as personal data
#: in the report's verdict and "who receives it" (``audit.report.data``).
NOT_PERSONAL_DATA = frozenset({"coordinates"})


@dataclass(frozen=True)
class DataFinding:
    """Personal data seen in one request. The raw value is never stored, only ``masked``."""

    data_type: str
    """android_id, aaid, oaid, imei, serial, wifi_mac, bt_mac, phone, email, account, location,
    coordinates (not the device's location, issue 12), carrier, installed_apps, custom:<name> …"""
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
    """One of :data:`TLS_STATES`."""
    app: str = ""
    """Analyst's app label (``--app`` / ``audit_app``), or the app the capture names."""
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
    attribution: str = "label"
    """How the connection is tied to ``app``: one of :data:`ATTRIBUTIONS`."""

    @property
    def inspected(self) -> bool:
        """Was the content read? Intercepted or decrypted TLS, and plaintext HTTP/WebSocket; never
        passed-through, refused or undecrypted TLS, QUIC, raw TCP/UDP or DNS. The one rule: the case
        file stores it with every connection, and every count of inspected traffic reads that."""
        return self.tls in ("intercepted", "decrypted") or (
            self.tls == "none" and self.protocol in _PLAINTEXT_READ
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("request", None)
        d["query_keys"] = list(self.query_keys)
        d["findings"] = [f.to_dict() for f in self.findings]
        d["inspected"] = self.inspected
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
    asn_source: str | None = None
    """Which kind of database answered the AS number (``embedded``, ``libloc``, ``mmdb``,
    ``asn-table``; :data:`audit.enrich.backend.SOURCE_IDS`), None without a number."""
    asn_org_source: str | None = None
    """Which kind of database named the AS: ``asn_source``'s, or the next source's when that one
    has the number but no name; None without a name."""
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
    def nat64_ipv4(self) -> str | None:
        """The IPv4 server address inside a NAT64 ``ip`` (:func:`audit.names.nat64_ipv4`), whose
        location and network this answer gives; None for any other address."""
        return nat64_ipv4(self.ip)

    @property
    def evidence(self) -> str | None:
        """``database``, plus ``flags_database`` when flags came from a database it does not name."""
        if not self.network_flags or not self.flags_database:
            return self.database
        if self.database and self.flags_database in self.database:
            return self.database
        return f"{self.database} + {self.flags_database}" if self.database else self.flags_database


#: ``inputs.kind`` of a vantage given for a capture (``--vantage``, ``audit_vantage``): ``path`` holds
#: the country code, ``sha256`` the capture's, ``notes`` which capture it was given for.
VANTAGE_INPUT = "vantage"

#: ``Vantage.how`` values: given by the user (``--vantage``, ``audit_vantage``) or observed in the
#: capture (the country of the device's public client address).
VANTAGE_HOW = ("given", "observed")


@dataclass(frozen=True)
class Vantage:
    """Where the device was when a capture was made (issue 12 point 9): geo-DNS and anycast send
    a phone in one country to other servers than a phone in another, so every server country is
    "seen from" here."""

    country: str
    """ISO 3166-1 alpha-2 code."""
    app: str
    """App label of the capture ('' when the capture had none)."""
    how: str
    """``given`` or ``observed`` (:data:`VANTAGE_HOW`)."""
    evidence: str
    """The capture it was given for, or the client address it was observed from."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    inspected_flows: int = 0
    """Flows whose content was read (:attr:`Connection.inspected`)."""
    attribution: tuple[str, ...] = ()
    """How its flows are tied to the app (:data:`ATTRIBUTIONS`), sorted."""
    not_inspected: tuple[tuple[str, int], ...] = ()
    """(:func:`unread_reason`, flows) of the flows whose content was not read, most flows first."""
    not_inspected_bytes: int = 0
    """Bytes (both ways) of those flows."""
    background: str | None = None
    """``local`` (local-network noise: broadcast, multicast, mDNS …) or ``os`` (well-known OS
    traffic: connectivity checks, time sync, updates, push), else None: the one classifier,
    :func:`audit.traffic.background.classify`."""
    background_reason: str | None = None
    """What it is: ``mDNS``, ``broadcast``, ``connectivity check (Android)`` …"""
    asn_source: str | None = None
    """Which kind of database answered the AS number (:attr:`IpInfo.asn_source`)."""
    asn_org_source: str | None = None
    """Which kind of database named the AS (:attr:`IpInfo.asn_org_source`)."""
    vantage: tuple[str, ...] = ()
    """Countries the device was in when its traffic was captured (given with ``--vantage`` or
    observed from its public client address), sorted; empty when unknown."""

    @property
    def inspected(self) -> bool:
        """Was the content of every flow read?"""
        return self.flows > 0 and self.inspected_flows == self.flows

    @property
    def nat64_ipv4(self) -> str | None:
        """The IPv4 server inside a NAT64 ``ip`` (:func:`audit.names.nat64_ipv4`): the server
        country and network are that address's; None for any other address."""
        return nat64_ipv4(self.ip) if self.ip else None

    @property
    def via_nat64(self) -> bool:
        """Was the server reached through a NAT64 translator (``64:ff9b::/96``, ``64:ff9b:1::/48``)?"""
        return self.nat64_ipv4 is not None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inspected"] = self.inspected
        d["via_nat64"] = self.via_nat64
        d["nat64_ipv4"] = self.nat64_ipv4
        d["vantage"] = list(self.vantage)
        d["attribution"] = list(self.attribution)
        d["not_inspected"] = dict(self.not_inspected)
        d["network_flags"] = list(self.network_flags)
        d["sources"] = list(self.sources)
        d["data_types"] = list(self.data_types)
        d["apps"] = list(self.apps)
        return d
