"""AndroidManifest.xml: package, version, permissions and meta-data, from binary XML (APK) or protobuf
XML (app bundle ``base/manifest/AndroidManifest.xml``)."""

from __future__ import annotations

from dataclasses import dataclass

from audit.static.resources import (
    RES_XML_TYPE,
    ResourceError,
    XmlElement,
    parse_axml,
    parse_proto_xml,
    xml_bool,
)

__all__ = ["Manifest", "ResourceError", "manifest_from_elements", "parse_manifest"]

_PERMISSION_TAGS = ("uses-permission", "uses-permission-sdk-23", "uses-permission-sdk-m")


@dataclass(frozen=True)
class Manifest:
    """What the scanner reads from a manifest."""

    package: str | None
    version_name: str | None
    version_code: str | None
    permissions: tuple[str, ...] = ()
    """Requested permissions in document order, unique."""
    meta_data: tuple[tuple[str, str], ...] = ()
    """(name, value) of every ``<meta-data android:value="…">`` with a literal value."""
    split: str | None = None
    """``split`` attribute of a split APK (None for the base APK)."""
    target_sdk: int | None = None
    """``<uses-sdk android:targetSdkVersion>`` (None when absent or not a number)."""
    uses_cleartext_traffic: bool | None = None
    """``<application android:usesCleartextTraffic>``; None when not set."""
    network_security_config: str | None = None
    """``<application android:networkSecurityConfig>`` as written: a resource id (``@0x7f020000``, in
    an APK) or a name (``@xml/network_security_config``, in an app bundle); None when not set."""
    debuggable: bool = False
    """``<application android:debuggable="true">``."""


def parse_manifest(data: bytes, proto: bool = False) -> Manifest:
    """Parse a binary (AXML, in APKs) or protobuf (``proto=True``, in app bundles) manifest; raises
    :class:`ResourceError` when garbled."""
    if proto:
        elements = parse_proto_xml(data)
    elif len(data) >= 2 and int.from_bytes(data[:2], "little") == RES_XML_TYPE:
        elements = parse_axml(data)
    else:
        raise ResourceError("not a binary XML file")
    if not elements or elements[0].name != "manifest":
        raise ResourceError("no <manifest> root element")
    return manifest_from_elements(elements)


def manifest_from_elements(elements: list[XmlElement]) -> Manifest:
    root = elements[0].attrs
    permissions: dict[str, None] = {}  # ordered and unique; a list's "not in" was quadratic in their number
    meta: list[tuple[str, str]] = []
    app: dict[str, str] = {}
    target: int | None = None
    for e in elements[1:]:
        if e.name == "application" and not app:
            app = e.attrs
        elif e.name == "uses-sdk" and target is None:
            value = e.attrs.get("targetSdkVersion", "").strip()
            target = int(value) if value.isascii() and value.isdecimal() and len(value) < 6 else None
        elif e.name in _PERMISSION_TAGS:
            name = e.attrs.get("name", "")
            if name:
                permissions[name] = None
        elif e.name == "meta-data":
            value = e.attrs.get("value", "")
            if value and not value.startswith("@0x"):
                meta.append((e.attrs.get("name", ""), value))
    return Manifest(
        package=root.get("package") or None,
        version_name=root.get("versionName") or None,
        version_code=root.get("versionCode") or None,
        permissions=tuple(permissions),
        meta_data=tuple(meta),
        split=root.get("split") or None,
        target_sdk=target,
        uses_cleartext_traffic=xml_bool(app.get("usesCleartextTraffic")),
        network_security_config=app.get("networkSecurityConfig") or None,
        debuggable=xml_bool(app.get("debuggable")) is True,
    )
