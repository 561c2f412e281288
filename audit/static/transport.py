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
  classes whose code loads them; and pinning-capable library classes present in the DEX (OkHttp's
  ``CertificatePinner``, TrustKit): their presence alone does not prove that the app pins.

Android applies the one config the manifest names (``android:networkSecurityConfig``), and ignores
``usesCleartextTraffic`` when it does. A compiled manifest names it by resource id, resolved to its
file through ``resources.arsc`` (an app bundle's manifest keeps the ``@xml/name`` form). When that
fails (no or damaged ``resources.arsc``), we take the only config file, or among several the one named
``network_security_config.xml``; otherwise none is applied (all are still listed in ``config_files``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from audit.models import CodePin, DomainRule, TransportSecurity
from audit.static.resources import XmlElement, xml_bool

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
#: keeps at most :data:`MAX_PINS`. Elements nested deeper than :data:`MAX_DEPTH` are ignored.
MAX_RULES = 1_000
MAX_PINS = 64
MAX_DEPTH = 64
_B64 = re.compile(r"[A-Za-z0-9+/]+")


@dataclass(frozen=True)
class NetworkSecurityConfig:
    """One parsed network security config file."""

    file: str
    base_cleartext: bool | None = None
    base_trust_anchors: tuple[str, ...] = ()
    debug_trust_anchors: tuple[str, ...] = ()
    domains: tuple[DomainRule, ...] = ()
    base_override_pins: bool = False
    """A base-config trust anchor has ``overridePins="true"``."""
    debug_override_pins: bool = False
    """A debug-overrides trust anchor overrides pins (its ``overridePins`` defaults to true)."""


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


def config_pin(digest: str | None, text: str) -> str | None:
    """A ``<pin digest="SHA-256">`` as ``sha256/<base64>``, read as Android does: whitespace and
    missing padding are tolerated; another (or no) digest, or a value that is not 32 bytes, is not a pin."""
    if (digest or "").strip().upper() != "SHA-256":
        return None
    b64 = "".join(text.split())[:200]
    if not _B64.fullmatch(b64.rstrip("=")):
        return None
    b64 = b64.rstrip("=")
    try:
        raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return "sha256/" + base64.b64encode(raw).decode() if len(raw) == 32 else None


@dataclass
class _Ctx:
    """What an open element of a config is inside of."""

    owner: dict[str, Any] | None = None  # the innermost domain-config's state
    base: bool = False
    debug: bool = False
    pin_set: bool = False
    anchors: bool = False


def parse_network_security_config(elements: Sequence[XmlElement], file: str) -> NetworkSecurityConfig | None:
    """The config in a compiled XML's elements (document order, with depth), or None if its root is
    not ``<network-security-config>``. Unknown elements are ignored; at most :data:`MAX_RULES`
    domain-configs and domains, :data:`MAX_PINS` pins per pin-set and :data:`MAX_DEPTH` levels are
    read. Linear in the number of elements."""
    if not elements or elements[0].name != "network-security-config":
        return None
    base_cleartext: bool | None = None
    base_anchors: list[str] = []
    debug_anchors: list[str] = []
    base_override = debug_override = False
    # Open elements: (depth, context inside them), innermost last.
    stack: list[tuple[int, _Ctx]] = [(elements[0].depth, _Ctx())]
    configs: list[dict[str, Any]] = []
    total_domains = 0
    for e in elements[1:]:
        while len(stack) > 1 and stack[-1][0] >= e.depth:
            stack.pop()
        if len(stack) > MAX_DEPTH:
            continue
        ctx = stack[-1][1]
        owner = ctx.owner
        inner = _Ctx(owner, ctx.base, ctx.debug, ctx.pin_set, ctx.anchors)
        if e.name == "base-config" and owner is None and not ctx.debug:
            base_cleartext = xml_bool(e.attrs.get("cleartextTrafficPermitted"))
            inner.base = True
        elif e.name == "debug-overrides" and owner is None:
            inner.debug = True
        elif e.name == "domain-config" and not ctx.base and not ctx.debug and len(configs) < MAX_RULES:
            state: dict[str, Any] = {
                "parent": owner, "cleartext": xml_bool(e.attrs.get("cleartextTrafficPermitted")), "domains": [],
                "pins": [], "pin_set": False, "expiration": None, "anchors": [], "anchor_set": False,
            }  # fmt: skip
            configs.append(state)
            inner.owner = state
        elif e.name == "domain" and owner is not None and total_domains < MAX_RULES:
            text = e.text.strip()
            if text:
                owner["domains"].append((text[:253], xml_bool(e.attrs.get("includeSubdomains")) is True))
                total_domains += 1
        elif e.name == "pin-set" and owner is not None:
            owner["pin_set"] = True  # even empty, it replaces the enclosing config's pins
            owner["expiration"] = (e.attrs.get("expiration") or "").strip()[:32] or None
            inner.pin_set = True
        elif e.name == "pin" and owner is not None and ctx.pin_set and len(owner["pins"]) < MAX_PINS:
            pin = config_pin(e.attrs.get("digest"), e.text)
            if pin is not None:
                owner["pins"].append(pin)
        elif e.name == "trust-anchors":
            inner.anchors = True
            if owner is not None:
                owner["anchor_set"] = True
        elif e.name == "certificates" and ctx.anchors:
            src = (e.attrs.get("src") or "").strip()[:100]
            override = xml_bool(e.attrs.get("overridePins"))
            if src:
                if owner is not None:
                    owner["anchors"].append(src)
                elif ctx.debug:
                    debug_anchors.append(src)
                    debug_override = debug_override or override is not False  # defaults to true there
                elif ctx.base:
                    base_anchors.append(src)
                    base_override = base_override or override is True
        stack.append((e.depth, inner))
    domains: list[DomainRule] = []
    for c in configs:
        cleartext, pins, expiration, anchors = _inherited(c)
        for name, subdomains in c["domains"]:
            domains.append(DomainRule(name, subdomains, cleartext, pins, expiration, anchors, file))
    return NetworkSecurityConfig(
        file=file, base_cleartext=base_cleartext, base_trust_anchors=tuple(dict.fromkeys(base_anchors)),
        debug_trust_anchors=tuple(dict.fromkeys(debug_anchors)), domains=tuple(domains[:MAX_RULES]),
        base_override_pins=base_override, debug_override_pins=debug_override,
    )  # fmt: skip


def _inherited(c: dict[str, Any]) -> tuple[bool | None, tuple[str, ...], str | None, tuple[str, ...]]:
    """A domain-config's settings, each from itself or the nearest enclosing domain-config that sets it
    (Android's inheritance for nested domain-config elements); a pin-set or trust-anchors element
    replaces the enclosing one's even when empty."""
    cleartext: bool | None = None
    pins: tuple[str, ...] | None = None
    expiration: str | None = None
    anchors: tuple[str, ...] | None = None
    node: dict[str, Any] | None = c
    seen = 0
    while node is not None and seen < MAX_DEPTH:
        if cleartext is None:
            cleartext = node["cleartext"]
        if pins is None and node["pin_set"]:
            pins, expiration = tuple(dict.fromkeys(node["pins"])), node["expiration"]
        if anchors is None and node["anchor_set"]:
            anchors = tuple(dict.fromkeys(node["anchors"]))
        node, seen = node["parent"], seen + 1
    return cleartext, pins or (), expiration if pins else None, anchors or ()


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


def applied_config(
    configs: Sequence[NetworkSecurityConfig],
    manifest_config: bool,
    ref: str | None = None,
    xml_files: dict[int, str] | None = None,
) -> NetworkSecurityConfig | None:
    """The config Android applies: none unless the manifest names one; then the file ``ref`` names
    (a resource id resolved through ``xml_files``, or ``@xml/name``), else the only config file, or
    among several the one named ``network_security_config.xml`` (see the module notes)."""
    if not manifest_config or not configs:
        return None
    path = _ref_path(ref, xml_files or {})
    if path is not None:
        for c in configs:
            if c.file == path or c.file.endswith(("!" + path, "/" + path)):
                return c
    if len(configs) == 1:
        return configs[0]
    named = [c for c in configs if c.file.rpartition("/")[2] == "network_security_config.xml"]
    return named[0] if len(named) == 1 else None


def _ref_path(ref: str | None, xml_files: dict[int, str]) -> str | None:
    if not ref:
        return None
    if ref.startswith("@0x"):
        try:
            return xml_files.get(int(ref[3:], 16))
        except ValueError:
            return None
    if ref.startswith("@xml/") and "/" not in ref[5:]:
        return f"res/xml/{ref[5:]}.xml"
    return None


def merge(
    configs: Iterable[NetworkSecurityConfig],
    code_pins: dict[str, tuple[set[str], set[str]]],
    class_names: Iterable[str],
    *,
    config_ref: str | None = None,
    xml_files: dict[int, str] | None = None,
    manifest_config: bool = False,
    uses_cleartext_traffic: bool | None = None,
    debuggable: bool = False,
    target_sdk: int | None = None,
) -> TransportSecurity:
    """One :class:`TransportSecurity` from the configs and code pins found across an input."""
    configs = sorted(configs, key=lambda c: c.file)
    applied = applied_config(configs, manifest_config, config_ref, xml_files)
    present = {name for name in class_names if name in PINNING_CLASSES}
    return TransportSecurity(
        config_files=tuple(dict.fromkeys(c.file for c in configs)),
        applied_config=applied.file if applied else None,
        manifest_config=manifest_config,
        uses_cleartext_traffic=uses_cleartext_traffic,
        debuggable=debuggable,
        target_sdk=target_sdk,
        base_cleartext=applied.base_cleartext if applied else None,
        base_trust_anchors=applied.base_trust_anchors if applied else (),
        debug_trust_anchors=applied.debug_trust_anchors if applied else (),
        domains=applied.domains if applied else (),
        code_pins=tuple(
            CodePin(pin, tuple(sorted(files)), tuple(sorted(classes)))
            for pin, (files, classes) in sorted(code_pins.items())[:MAX_RULES]
        ),
        pinning_libraries=tuple(sorted(present)),
        base_override_pins=applied.base_override_pins if applied else False,
        debug_override_pins=applied.debug_override_pins if applied else False,
    )


__all__ = [
    "CodePin",
    "DomainRule",
    "NetworkSecurityConfig",
    "PINNING_CLASSES",
    "TransportSecurity",
    "applied_config",
    "config_pin",
    "merge",
    "parse_network_security_config",
    "pin_indices",
    "valid_pin",
]
