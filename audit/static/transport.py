"""Transport security an APK declares: certificate pinning, cleartext traffic, trusted CAs.

Why it matters to an audit: an app that pins its certificates refuses mitmproxy's, so its traffic
to those hosts shows up as ``tls: failed`` (the destination, not the content); an app that trusts
user-installed CAs can be intercepted with a CA the analyst installs; cleartext traffic leaks to any
network on the way. Sources, each kept as evidence:

* the network security config (``res/xml/*.xml`` whose root is ``<network-security-config>``,
  Android 7+): ``base-config`` and nested ``domain-config`` elements with ``cleartextTrafficPermitted``,
  ``<domain includeSubdomains>``, ``<pin-set expiration>`` / ``<pin digest="SHA-256">`` and
  ``<trust-anchors><certificates src="system|user|@raw/…">``; ``debug-overrides`` (debuggable builds
  only);
* the manifest: ``android:usesCleartextTraffic``, ``android:networkSecurityConfig``,
  ``android:debuggable`` on ``<application>`` and ``targetSdkVersion`` (the platform defaults depend
  on it: cleartext is off from API 28, user CAs are not trusted from API 24);
* the code: public-key pins as OkHttp, TrustKit and most pinning code write them
  (``sha256/<base64 of 32 bytes>``, ``sha1/<base64 of 20 bytes>``) among the DEX strings, with the
  classes whose code loads them; and pinning classes present in the DEX (OkHttp's
  ``CertificatePinner``, TrustKit).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from audit.static.resources import XmlElement

#: A public-key pin string: algorithm / base64 of the digest (SHA-256: 32 bytes, SHA-1: 20 bytes).
PIN_RE = re.compile(r"(sha256/[A-Za-z0-9+/]{43}=|sha1/[A-Za-z0-9+/]{27}=)")
PIN_PREFIXES = ("sha1/", "sha256/")

#: Classes whose presence in the DEX shows a pinning library (class name → what it is).
PINNING_CLASSES = {
    "okhttp3.CertificatePinner": "OkHttp 3/4 CertificatePinner",
    "com.squareup.okhttp.CertificatePinner": "OkHttp 2 CertificatePinner",
    "com.datatheorem.android.trustkit.TrustKit": "TrustKit",
}

#: Most domains (and domain-configs, and pins found in the code) kept, against hostile inputs: a real
#: config holds a handful. Pins are repeated on every domain they apply to in the output, so a pin-set
#: keeps at most :data:`MAX_PINS`.
MAX_RULES = 1_000
MAX_PINS = 64


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

    def matches(self, host: str) -> bool:
        h, d = host.lower().rstrip("."), self.domain.lower().rstrip(".")
        return h == d or (self.include_subdomains and h.endswith("." + d))


@dataclass(frozen=True)
class CodePin:
    """A pin string in the code, with where it is and which classes load it."""

    pin: str
    files: tuple[str, ...]
    classes: tuple[str, ...]


@dataclass(frozen=True)
class NetworkSecurityConfig:
    """One parsed network security config file."""

    file: str
    base_cleartext: bool | None = None
    base_trust_anchors: tuple[str, ...] = ()
    debug_trust_anchors: tuple[str, ...] = ()
    domains: tuple[DomainRule, ...] = ()


@dataclass(frozen=True)
class TransportSecurity:
    """What the app declares about its connections (``transport_security`` in the scan JSON)."""

    config_files: tuple[str, ...] = ()
    """Network security config files found (``res/xml/…``)."""
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
    """Pinning classes present in the DEX, e.g. ``okhttp3.CertificatePinner``."""

    @property
    def cleartext_default(self) -> bool:
        """May the app send cleartext HTTP to hosts no domain rule covers? From the config's
        base-config, else the manifest attribute, else the platform default for the target SDK."""
        if self.base_cleartext is not None:
            return self.base_cleartext
        if self.uses_cleartext_traffic is not None:
            return self.uses_cleartext_traffic
        return self.target_sdk is None or self.target_sdk < 28

    @property
    def user_cas_trusted(self) -> bool:
        """Does the app (outside pinned domains) trust CAs the user installed, such as mitmproxy's?"""
        if self.base_trust_anchors:
            return "user" in self.base_trust_anchors
        return self.target_sdk is not None and self.target_sdk < 24

    @property
    def pinned_domains(self) -> tuple[DomainRule, ...]:
        return tuple(d for d in self.domains if d.pins)

    def pin_rule(self, host: str) -> DomainRule | None:
        """The pinned domain rule covering ``host`` (the most specific one), or None."""
        hits = [d for d in self.pinned_domains if d.matches(host)]
        return max(hits, key=lambda d: len(d.domain)) if hits else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cleartext_default"] = self.cleartext_default
        d["user_cas_trusted"] = self.user_cas_trusted
        return _lists(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TransportSecurity:
        if not isinstance(d, dict):
            return cls()
        return cls(
            config_files=tuple(d.get("config_files", ())),
            manifest_config=bool(d.get("manifest_config")),
            uses_cleartext_traffic=d.get("uses_cleartext_traffic"),
            debuggable=bool(d.get("debuggable")),
            target_sdk=d.get("target_sdk"),
            base_cleartext=d.get("base_cleartext"),
            base_trust_anchors=tuple(d.get("base_trust_anchors", ())),
            debug_trust_anchors=tuple(d.get("debug_trust_anchors", ())),
            domains=tuple(
                DomainRule(
                    domain=r["domain"], include_subdomains=bool(r.get("include_subdomains")), cleartext=r.get("cleartext"),
                    pins=tuple(r.get("pins", ())), pin_expiration=r.get("pin_expiration"),
                    trust_anchors=tuple(r.get("trust_anchors", ())), file=r.get("file", ""),
                )  # fmt: skip
                for r in d.get("domains", ())
            ),
            code_pins=tuple(
                CodePin(pin=p["pin"], files=tuple(p.get("files", ())), classes=tuple(p.get("classes", ())))
                for p in d.get("code_pins", ())
            ),
            pinning_libraries=tuple(d.get("pinning_libraries", ())),
        )


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    return True if v == "true" else False if v == "false" else None


def valid_pin(text: str) -> bool:
    """``sha256/…`` or ``sha1/…`` whose base64 decodes to a digest of the right length."""
    if not PIN_RE.fullmatch(text):
        return False
    algo, _, b64 = text.partition("/")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == (32 if algo == "sha256" else 20)


def parse_network_security_config(elements: Sequence[XmlElement], file: str) -> NetworkSecurityConfig | None:
    """The config in a compiled XML's elements (document order, with depth), or None if its root is
    not ``<network-security-config>``. Unknown elements are ignored; at most :data:`MAX_RULES`
    domains are kept."""
    if not elements or elements[0].name != "network-security-config":
        return None
    base_cleartext: bool | None = None
    base_anchors: list[str] = []
    debug_anchors: list[str] = []
    # Open elements: (depth, element, per-domain-config state).
    stack: list[tuple[int, XmlElement, dict[str, Any] | None]] = []
    configs: list[dict[str, Any]] = []  # every domain-config, with its parent's index
    total_domains = 0
    for e in elements[1:]:
        while stack and stack[-1][0] >= e.depth:
            stack.pop()
        names = [s[1].name for s in stack]
        owner = next((s[2] for s in reversed(stack) if s[2] is not None), None)
        state: dict[str, Any] | None = None
        if e.name == "base-config" and not any(n in ("domain-config", "debug-overrides") for n in names):
            base_cleartext = _bool(e.attrs.get("cleartextTrafficPermitted"))
        elif e.name == "domain-config" and len(configs) < MAX_RULES:
            state = {
                "parent": owner, "cleartext": _bool(e.attrs.get("cleartextTrafficPermitted")), "domains": [],
                "pins": [], "expiration": None, "anchors": [],
            }  # fmt: skip
            configs.append(state)
        elif e.name == "domain" and owner is not None and total_domains < MAX_RULES:
            text = e.text.strip()
            if text:
                owner["domains"].append((text[:253], _bool(e.attrs.get("includeSubdomains")) is True))
                total_domains += 1
        elif e.name == "pin-set" and owner is not None:
            owner["expiration"] = (e.attrs.get("expiration") or "").strip()[:32] or None
        elif e.name == "pin" and owner is not None and "pin-set" in names and len(owner["pins"]) < MAX_PINS:
            digest = (e.attrs.get("digest") or "SHA-256").strip().upper().replace("-", "")
            pin = f"{digest.lower()}/{e.text.strip()}"
            if valid_pin(pin):
                owner["pins"].append(pin)
        elif e.name == "certificates" and "trust-anchors" in names:
            src = (e.attrs.get("src") or "").strip()[:100]
            if src:
                if owner is not None:
                    owner["anchors"].append(src)
                elif "debug-overrides" in names:
                    debug_anchors.append(src)
                elif "base-config" in names:
                    base_anchors.append(src)
        stack.append((e.depth, e, state))
    domains: list[DomainRule] = []
    for c in configs:
        cleartext, pins, expiration, anchors = _inherited(c)
        for name, subdomains in c["domains"]:
            domains.append(DomainRule(name, subdomains, cleartext, pins, expiration, anchors, file))
    return NetworkSecurityConfig(
        file=file, base_cleartext=base_cleartext, base_trust_anchors=tuple(dict.fromkeys(base_anchors)),
        debug_trust_anchors=tuple(dict.fromkeys(debug_anchors)), domains=tuple(domains[:MAX_RULES]),
    )  # fmt: skip


def _inherited(c: dict[str, Any]) -> tuple[bool | None, tuple[str, ...], str | None, tuple[str, ...]]:
    """A domain-config's settings, each from itself or the nearest enclosing domain-config that sets it
    (Android's inheritance for nested domain-config elements)."""
    cleartext, pins, expiration, anchors = None, (), None, ()
    node: dict[str, Any] | None = c
    seen = 0
    while node is not None and seen < 64:
        if cleartext is None:
            cleartext = node["cleartext"]
        if not pins and node["pins"]:
            pins, expiration = tuple(dict.fromkeys(node["pins"])), node["expiration"]
        if not anchors and node["anchors"]:
            anchors = tuple(dict.fromkeys(node["anchors"]))
        node, seen = node["parent"], seen + 1
    return cleartext, pins, expiration, anchors


def pin_indices(strings: Sequence[str]) -> list[int]:
    """Indices of pin strings in a DEX string table. The table is sorted, so only the ``sha1/`` and
    ``sha256/`` ranges are read (found by bisection; a table that is not sorted may hide pins)."""
    import bisect

    out: list[int] = []
    for prefix in PIN_PREFIXES:
        i = bisect.bisect_left(strings, prefix)
        while i < len(strings) and strings[i].startswith(prefix):
            if valid_pin(strings[i]):
                out.append(i)
            i += 1
    return out


def merge(
    configs: Iterable[NetworkSecurityConfig],
    code_pins: dict[str, tuple[set[str], set[str]]],
    class_names: Iterable[str],
    *,
    manifest_config: bool = False,
    uses_cleartext_traffic: bool | None = None,
    debuggable: bool = False,
    target_sdk: int | None = None,
) -> TransportSecurity:
    """One :class:`TransportSecurity` from the configs and code pins found across an input."""
    configs = sorted(configs, key=lambda c: c.file)
    base_cleartext = next((c.base_cleartext for c in configs if c.base_cleartext is not None), None)
    present = set(PINNING_CLASSES) & set(class_names)
    return TransportSecurity(
        config_files=tuple(dict.fromkeys(c.file for c in configs)),
        manifest_config=manifest_config,
        uses_cleartext_traffic=uses_cleartext_traffic,
        debuggable=debuggable,
        target_sdk=target_sdk,
        base_cleartext=base_cleartext,
        base_trust_anchors=tuple(dict.fromkeys(a for c in configs for a in c.base_trust_anchors)),
        debug_trust_anchors=tuple(dict.fromkeys(a for c in configs for a in c.debug_trust_anchors)),
        domains=tuple(d for c in configs for d in c.domains)[:MAX_RULES],
        code_pins=tuple(
            CodePin(pin, tuple(sorted(files)), tuple(sorted(classes)))
            for pin, (files, classes) in sorted(code_pins.items())[:MAX_RULES]
        ),
        pinning_libraries=tuple(sorted(present)),
    )


__all__ = [
    "CodePin",
    "DomainRule",
    "NetworkSecurityConfig",
    "PINNING_CLASSES",
    "TransportSecurity",
    "merge",
    "parse_network_security_config",
    "pin_indices",
    "valid_pin",
]
