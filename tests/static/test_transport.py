"""Transport security from network security configs, the manifest and pins in the code: the parser on
hand-made element lists (nesting, inheritance, hostile sizes), the platform defaults, and the
messenger fixtures (APK, split bundle, app bundle), whose gateway is pinned in both places."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from audit.static.resources import XmlElement
from audit.static.scanner import scan_path
from audit.static.signatures import SignatureDb, load_signatures
from audit.static.transport import (
    MAX_DEPTH,
    MAX_PINS,
    MAX_RULES,
    TransportSecurity,
    merge,
    parse_network_security_config,
    pin_indices,
    valid_pin,
)

APKS = Path(__file__).resolve().parents[1] / "fixtures" / "apks"


def pin(seed: str, algo: str = "sha256") -> str:
    digest = (
        hashlib.sha256(seed.encode()).digest() if algo == "sha256" else hashlib.sha1(seed.encode()).digest()
    )
    return f"{algo}/{base64.b64encode(digest).decode()}"


def X(name: str, depth: int, text: str = "", **attrs: str) -> XmlElement:  # noqa: N802 - reads like markup
    return XmlElement(name, attrs, text, depth)


P1, P2, P3 = pin("a"), pin("b"), pin("c")

CONFIG = [
    X("network-security-config", 0),
    X("base-config", 1, cleartextTrafficPermitted="false"),
    X("trust-anchors", 2),
    X("certificates", 3, src="system"),
    X("certificates", 3, src="user"),
    X("domain-config", 1, cleartextTrafficPermitted="true"),
    X("domain", 2, "example.com", includeSubdomains="true"),
    X("pin-set", 2, expiration="2027-01-01"),
    X("pin", 3, P1.split("/", 1)[1], digest="SHA-256"),
    X("pin", 3, "not base64!", digest="SHA-256"),
    # wrapped over lines, without its padding, lower-case digest: Android reads it all the same
    X(
        "pin",
        3,
        "\n  " + P2.split("/", 1)[1][:20] + "\n  " + P2.split("/", 1)[1][20:].rstrip("=") + "\n",
        digest="sha-256",
    ),
    X("pin", 3, P3.split("/", 1)[1]),  # no digest attribute: not a pin
    X("pin", 3, P3.split("/", 1)[1], digest="SHA-1"),  # not SHA-256: not a pin
    X("trust-anchors", 2),
    X("certificates", 3, src="@0x7f0b0001"),
    # nested: inherits cleartext, pins and anchors unless it sets its own
    X("domain-config", 2),
    X("domain", 3, "api.example.com", includeSubdomains="false"),
    X("domain-config", 2, cleartextTrafficPermitted="false"),
    X("domain", 3, "secure.example.com"),
    X("pin-set", 3),
    X("pin", 4, P3.split("/", 1)[1], digest="SHA-256"),
    X("domain-config", 1),
    X("domain", 2, "unpinned.example.org"),
    X("debug-overrides", 1),
    X("trust-anchors", 2),
    X("certificates", 3, src="user"),
]


def test_parse_config() -> None:
    c = parse_network_security_config(CONFIG, "res/xml/nsc.xml")
    assert c is not None
    assert (c.base_cleartext, c.base_trust_anchors, c.debug_trust_anchors) == (
        False,
        ("system", "user"),
        ("user",),
    )
    rules = {d.domain: d for d in c.domains}
    top = rules["example.com"]
    assert (top.include_subdomains, top.cleartext, top.pins, top.pin_expiration) == (
        True,
        True,
        (P1, P2),
        "2027-01-01",
    )
    assert top.trust_anchors == ("@0x7f0b0001",) and top.file == "res/xml/nsc.xml"
    nested = rules["api.example.com"]
    assert (nested.include_subdomains, nested.cleartext, nested.pins, nested.trust_anchors) == (
        False, True, (P1, P2), ("@0x7f0b0001",),
    )  # fmt: skip
    own = rules["secure.example.com"]
    assert (own.cleartext, own.pins, own.pin_expiration) == (False, (P3,), None)
    plain = rules["unpinned.example.org"]
    assert (plain.cleartext, plain.pins, plain.trust_anchors) == (None, (), ())


def test_not_a_config() -> None:
    assert parse_network_security_config([X("resources", 0)], "res/xml/x.xml") is None
    assert parse_network_security_config([], "res/xml/x.xml") is None


def test_rule_matching_and_most_specific_pin_rule() -> None:
    c = parse_network_security_config(CONFIG, "f")
    assert c is not None
    t = TransportSecurity(domains=c.domains)
    assert t.pin_rule("www.example.com") is not None and t.pin_rule("www.example.com").domain == "example.com"  # type: ignore[union-attr]
    assert t.pin_rule("SECURE.example.com.").domain == "secure.example.com"  # type: ignore[union-attr]
    assert t.pin_rule("example.org") is None and t.pin_rule("unpinned.example.org") is None
    assert t.pin_rule("notexample.com") is None


def test_hostile_config_is_bounded() -> None:
    many = [X("network-security-config", 0), X("domain-config", 1)]
    many += [X("domain", 2, f"h{i}.example") for i in range(MAX_RULES + 50)]
    many += [X("pin-set", 2)] + [
        X("pin", 3, pin(str(i)).split("/", 1)[1], digest="SHA-256") for i in range(MAX_RULES + 50)
    ]
    deep = [X("network-security-config", 0)]
    deep += [X("domain-config", 1 + i) for i in range(500)] + [X("domain", 501, "deep.example")]
    c = parse_network_security_config(many, "f")
    assert c is not None and len(c.domains) == MAX_RULES and len(c.domains[0].pins) == MAX_PINS
    d = parse_network_security_config(deep, "f")
    assert d is not None and d.domains == ()  # deeper than MAX_DEPTH: ignored
    shallow = [X("network-security-config", 0)] + [X("domain-config", 1 + i) for i in range(MAX_DEPTH - 2)]
    shallow.append(X("domain", MAX_DEPTH - 1, "deep.example"))
    d = parse_network_security_config(shallow, "f")
    assert d is not None and [r.domain for r in d.domains] == ["deep.example"]
    long = parse_network_security_config([X("network-security-config", 0), X("domain-config", 1),
                                          X("domain", 2, "x" * 10_000)], "f")  # fmt: skip
    assert long is not None and len(long.domains[0].domain) == 253


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (P1, True), (pin("x", "sha1"), True), ("sha256/" + "A" * 43 + "=", True),
        ("sha256/" + "A" * 42 + "==", False), ("sha256/short=", False), ("md5/" + "A" * 22 + "==", False),
        ("sha1/" + "A" * 43 + "=", False), ("sha256/" + "*" * 43 + "=", False),
    ],
)  # fmt: skip
def test_valid_pin(text: str, ok: bool) -> None:
    assert valid_pin(text) is ok


def test_pin_indices_in_a_sorted_table() -> None:
    strings = sorted(["a", "https://x", P2, P1, pin("q", "sha1"), "sha256/nope", "sha1", "shb", "zzz"])
    assert sorted(strings[i] for i in pin_indices(strings)) == sorted([P1, P2, pin("q", "sha1")])
    assert pin_indices([]) == []


@pytest.mark.parametrize(
    ("kw", "cleartext", "user_cas"),
    [
        ({}, None, None),  # nothing known (a bare DEX): no claim either way
        ({"target_sdk": 27}, True, False),
        ({"target_sdk": 23}, True, True),
        ({"target_sdk": 28}, False, False),
        ({"target_sdk": 33, "uses_cleartext_traffic": True}, True, False),
        ({"target_sdk": 22, "uses_cleartext_traffic": False}, False, True),
        ({"target_sdk": 33, "uses_cleartext_traffic": True, "base_cleartext": False}, False, False),
        ({"target_sdk": 33, "base_trust_anchors": ("system", "user")}, False, True),
        ({"target_sdk": 23, "base_trust_anchors": ("system",)}, True, False),
        # a config named by the manifest makes Android ignore usesCleartextTraffic
        ({"target_sdk": 33, "uses_cleartext_traffic": True, "manifest_config": True}, False, False),
        ({"target_sdk": 27, "uses_cleartext_traffic": False, "manifest_config": True}, True, False),
        # debug-overrides count only in a debuggable build
        ({"target_sdk": 33, "debug_trust_anchors": ("user",)}, False, False),
        ({"target_sdk": 33, "debug_trust_anchors": ("user",), "debuggable": True}, False, True),
    ],
)  # fmt: skip
def test_platform_defaults(kw: dict, cleartext: bool | None, user_cas: bool | None) -> None:
    t = TransportSecurity(**kw)
    assert (t.cleartext_default, t.user_cas_trusted) == (cleartext, user_cas)


def test_merge_and_round_trip() -> None:
    c = parse_network_security_config(CONFIG, "res/xml/nsc.xml")
    assert c is not None
    t = merge(
        [c], {P1: ({"classes2.dex", "classes.dex"}, {"com.x.Pins"})},
        ["okhttp3.CertificatePinner", "com.x.Pins", "com.datatheorem.android.trustkit.TrustKit"],
        manifest_config=True, uses_cleartext_traffic=False, debuggable=True, target_sdk=34,
    )  # fmt: skip
    assert t.code_pins[0].files == ("classes.dex", "classes2.dex")
    assert t.pinning_libraries == ("com.datatheorem.android.trustkit.TrustKit", "okhttp3.CertificatePinner")
    d = t.to_dict()
    assert d["cleartext_default"] is False and d["user_cas_trusted"] is True
    assert TransportSecurity.from_dict(d) == t
    assert TransportSecurity.from_dict(None) == TransportSecurity() == TransportSecurity.from_dict({"x": 1})


# ---- the fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sigs() -> SignatureDb:
    return load_signatures()


@pytest.mark.parametrize(
    "name", ["messenger.apk", "messenger.apks", "messenger.xapk", "messenger.apkm", "messenger.aab"]
)
def test_messenger_pins_its_gateway(name: str, sigs: SignatureDb) -> None:
    from tests.fixtures.build import MESSENGER_PINS

    t = scan_path(APKS / name, signatures=sigs).transport
    assert len(t.config_files) == 1 and t.config_files[0].endswith("res/xml/network_security_config.xml")
    assert t.manifest_config and t.target_sdk == 33 and t.uses_cleartext_traffic is None
    assert t.base_cleartext is False and t.base_trust_anchors == ("system",)
    assert not t.cleartext_default and not t.user_cas_trusted
    gw = t.pin_rule("gw.messenger-example.cn")
    assert gw is not None and gw.pins == MESSENGER_PINS and gw.pin_expiration == "2027-06-30"
    assert t.pin_rule("api.messenger-example.cn") is None
    assert {d.domain: d.cleartext for d in t.domains}["legacy.messenger-example.cn"] is True
    assert sorted(p.pin for p in t.code_pins) == sorted(MESSENGER_PINS)
    assert all(p.classes == ("com.example.messenger.net.GatewayPins",) for p in t.code_pins)
    assert t.pinning_libraries == ()


def test_bare_dex_has_code_pins_only(sigs: SignatureDb) -> None:
    t = scan_path(APKS / "messenger.dex", signatures=sigs).transport
    assert len(t.code_pins) == 2 and t.config_files == () and t.target_sdk is None


def test_app_without_config(sigs: SignatureDb) -> None:
    t = scan_path(APKS / "multidex.apk", signatures=sigs).transport
    assert t.config_files == () and t.domains == () and t.code_pins == () and not t.manifest_config


def test_many_configs_with_many_domains_stay_bounded() -> None:
    els = [X("network-security-config", 0)]
    for i in range(300):
        els += [X("domain-config", 1)] + [X("domain", 2, f"h{i}-{j}.example") for j in range(300)]
    c = parse_network_security_config(els, "f")
    assert c is not None and len(c.domains) == MAX_RULES


def test_empty_pin_set_and_anchors_replace_the_enclosing_ones() -> None:
    els = [
        X("network-security-config", 0),
        X("domain-config", 1), X("domain", 2, "x.com", includeSubdomains="true"),
        X("pin-set", 2), X("pin", 3, P1.split("/", 1)[1], digest="SHA-256"),
        X("trust-anchors", 2), X("certificates", 3, src="user"),
        X("domain-config", 2), X("domain", 3, "open.x.com"), X("pin-set", 3), X("trust-anchors", 3),
        X("domain-config", 2), X("domain", 3, "bad.x.com"), X("pin-set", 3), X("pin", 4, "not a pin", digest="SHA-256"),
    ]  # fmt: skip
    c = parse_network_security_config(els, "f")
    assert c is not None
    rules = {d.domain: d for d in c.domains}
    assert rules["x.com"].pins == (P1,) and rules["x.com"].trust_anchors == ("user",)
    assert rules["open.x.com"].pins == () and rules["open.x.com"].trust_anchors == ()
    assert rules["bad.x.com"].pins == () and rules["bad.x.com"].trust_anchors == ("user",)


def test_exact_domain_beats_a_pinned_parent() -> None:
    """Android applies the most specific rule: an unpinned exact domain is not pinned by its parent."""
    els = [
        X("network-security-config", 0),
        X("domain-config", 1), X("domain", 2, "example.com", includeSubdomains="true"),
        X("pin-set", 2), X("pin", 3, P1.split("/", 1)[1], digest="SHA-256"),
        X("domain-config", 1), X("domain", 2, "cdn.example.com"),
    ]  # fmt: skip
    c = parse_network_security_config(els, "f")
    assert c is not None
    t = TransportSecurity(domains=c.domains)
    assert t.pin_rule("cdn.example.com") is None and t.rule_for("cdn.example.com").domain == "cdn.example.com"  # type: ignore[union-attr]
    assert t.pin_rule("img.cdn.example.com") is not None  # not covered by the exact, non-subdomain rule
    assert t.pin_rule("www.example.com") is not None


def test_override_pins() -> None:
    els = [
        X("network-security-config", 0),
        X("base-config", 1), X("trust-anchors", 2), X("certificates", 3, src="system"),
        X("certificates", 3, src="user", overridePins="true"),
        X("debug-overrides", 1), X("trust-anchors", 2), X("certificates", 3, src="user"),
    ]  # fmt: skip
    c = parse_network_security_config(els, "f")
    assert c is not None and c.base_override_pins and c.debug_override_pins
    t = merge([c], {}, [], manifest_config=True, target_sdk=33)
    assert t.pins_overridden and t.to_dict()["pins_overridden"] is True
    quiet = parse_network_security_config(
        els[:4] + els[5:7] + [X("certificates", 3, src="user", overridePins="false")], "f"
    )
    assert quiet is not None and not quiet.base_override_pins and not quiet.debug_override_pins
    assert not merge([quiet], {}, [], manifest_config=True).pins_overridden


def test_which_config_applies() -> None:
    def cfg(file: str) -> object:
        return parse_network_security_config(
            [X("network-security-config", 0), X("base-config", 1, cleartextTrafficPermitted="true")], file
        )

    one, named, other = cfg("res/xml/a.xml"), cfg("res/xml/network_security_config.xml"), cfg("res/xml/b.xml")
    assert merge([one], {}, [], manifest_config=False).applied_config is None  # not named by the manifest
    assert merge([one], {}, [], manifest_config=False, target_sdk=33).cleartext_default is False
    assert merge([one], {}, [], manifest_config=True).applied_config == "res/xml/a.xml"
    t = merge([one, named, other], {}, [], manifest_config=True)  # type: ignore[list-item]
    assert t.applied_config == "res/xml/network_security_config.xml" and len(t.config_files) == 3
    assert merge([one, other], {}, [], manifest_config=True, target_sdk=33).applied_config is None  # type: ignore[list-item]


def test_deep_open_elements_are_linear() -> None:
    """Elements that never close (a hostile compiled XML) nest ever deeper: read in linear time (the
    quadratic reader took minutes on these 60,000; a regression would show as a slow suite)."""
    els = [X("network-security-config", 0)] + [X("domain-config", 1 + i) for i in range(60_000)]
    els.append(X("domain", 60_001, "deep.example"))
    c = parse_network_security_config(els, "f")
    assert c is not None and c.domains == ()


def test_the_manifest_reference_picks_the_config() -> None:
    from audit.static.transport import applied_config

    def cfg(file: str) -> object:
        return parse_network_security_config([X("network-security-config", 0)], file)

    a, b = cfg("res/xml/a.xml"), cfg("res/xml/b.xml")
    files = {0x7F020001: "res/xml/b.xml", 0x7F020000: "res/xml/a.xml"}
    assert applied_config([a, b], True, "@0x7f020001", files) is b  # type: ignore[list-item]
    assert applied_config([a, b], True, "@xml/a", {}) is a  # type: ignore[list-item]
    assert applied_config([a, b], True, "@0x7f029999", files) is None  # type: ignore[list-item]  # unresolved, ambiguous
    assert applied_config([a, b], False, "@0x7f020001", files) is None  # type: ignore[list-item]
    bundled = cfg("base.apk!res/xml/b.xml")
    assert applied_config([a, bundled], True, "@0x7f020001", files) is bundled  # type: ignore[list-item]
    assert (
        applied_config([a, b], True, "@0xZZ", files) is None
        and applied_config([a, b], True, "@xml/../x", {}) is None
    )  # type: ignore[list-item]


def test_arsc_resolves_the_fixture_reference() -> None:
    import zipfile

    from audit.static.manifest import parse_manifest
    from audit.static.resources import arsc_xml_files

    with zipfile.ZipFile(APKS / "messenger.apk") as z:
        files = arsc_xml_files(z.read("resources.arsc"))
        ref = parse_manifest(z.read("AndroidManifest.xml")).network_security_config
    assert ref is not None and ref.startswith("@0x7f")
    assert files[int(ref[3:], 16)] == "res/xml/network_security_config.xml"


def test_damaged_arsc_tables_fail_cleanly() -> None:
    import random
    import struct
    import zipfile

    from audit.static.resources import ResourceError, arsc_xml_files

    with zipfile.ZipFile(APKS / "messenger.apk") as z:
        good = z.read("resources.arsc")
    rng = random.Random(5)
    for _ in range(500):
        data = bytearray(good)
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            out = arsc_xml_files(bytes(data[: rng.randint(0, len(data))] if rng.random() < 0.3 else data))
        except (ResourceError, struct.error, IndexError, UnicodeDecodeError):
            continue
        assert all(isinstance(k, int) and v.startswith("res/xml/") for k, v in out.items())
