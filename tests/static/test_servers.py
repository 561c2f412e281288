"""Does a string name a server? The evidence rules of audit.static.servers and the URL/placeholder
rules of audit.static.endpoints that issue 11 added, as tables."""

from __future__ import annotations

import pytest

from audit.errors import ConfigError
from audit.models import Endpoint, ScanResult, Sdk, Source
from audit.static.endpoints import EndpointExtractor, candidate_text, occurrence_context
from audit.static.servers import CodeUse, judge, non_server_reason
from audit.static.signatures import SdkSignature, SignatureDb, parse_entries


@pytest.mark.parametrize(
    ("kind", "value", "host", "kwargs", "network", "evidence"),
    [
        ("url", "https://a.example.cn/", "a.example.cn", {}, True, "URL"),
        ("host", "api.example.cn", "api.example.cn", {"url_hosts": {"api.example.cn"}}, True, "host of a URL"),
        ("host", "gw.example.cn", "gw.example.cn", {"contexts": {"nsc"}}, True, "network security config"),
        ("host", "gw.example.cn", "gw.example.cn", {"contexts": {"port"}}, True, "host:port"),
        ("host", "dns.example.cn", "dns.example.cn",
         {"use": CodeUse(apis=("java.net.InetAddress.getByName (a.B)",))}, True, "calls java.net.InetAddress"),
        ("host", "cdn.example.cn", "cdn.example.cn", {"use": CodeUse(schemes=("a.B",))}, True, "URL scheme in a.B"),
        ("host", "push.example.cn", "push.example.cn", {"contexts": {"key:assets/c.json"}}, True, "host or server key"),
        ("host", "ads.example.com", "ads.example.com", {"contexts": {"list:assets/hosts"}}, True, "blocklist"),
        ("host", "www.qq.com", "www.qq.com", {"known_domain": lambda h: "Tencent"}, True, "domain of Tencent"),
        ("host", "x.example.cn", "x.example.cn", {"url_domains": {"example.cn"}}, True, "domain of a URL"),
        ("ip", "119.29.29.29", "119.29.29.29", {}, True, "public DNS resolver"),
        ("host", "x.example.cn", "x.example.cn", {}, False, "no evidence"),
        ("ip", "47.96.10.20", "47.96.10.20", {}, False, "no evidence"),
        # negative rules beat medium evidence …
        ("host", "ro.build.display.id", "ro.build.display.id", {"use": CodeUse(schemes=("a.B",))}, False, "property"),
        ("host", "this.style.top", "this.style.top", {"known_domain": lambda h: "X"}, False, "member expression"),
        ("host", "config.de", "config.de", {"url_domains": {"config.de"}}, False, "split name"),
        ("host", "google.to", "google.to", {"known_domain": lambda h: "Google"}, False, "push message key"),
        ("host", "bWO.bo", "bwo.bo", {"known_domain": lambda h: "X"}, False, "mixed-case"),
        ("ip", "2.9.0.0", "2.9.0.0", {"use": CodeUse(schemes=("a.B",))}, False, "version number"),
        ("ip", "255.255.255.0", "255.255.255.0", {"use": CodeUse(apis=("x",))}, False, "netmask"),
        ("ip", "0.0.0.255", "0.0.0.255", {}, False, "netmask"),
        # … but not strong evidence
        ("host", "ro.wikipedia.org.cn", "ro.wikipedia.org.cn", {"url_hosts": {"ro.wikipedia.org.cn"}}, True, "URL"),
    ],
)  # fmt: skip
def test_judge(kind: str, value: str, host: str, kwargs: dict, network: bool, evidence: str) -> None:
    v = judge(kind, value, host, host.partition(".")[2] or None, **kwargs)
    assert v.network is network, v
    assert evidence in v.evidence, v


@pytest.mark.parametrize(
    ("value", "kind", "reason"),
    [
        ("persist.sys.timezone", "host", "Android system property key"),
        ("window.screen.top", "host", "member expression in code"),
        ("config.fr", "host", "app bundle split name"),
        ("8.8.8.8", "ip", None),
        ("1.1.1.1", "ip", None),
        ("6.7.8.5", "ip", "version number"),
        ("api.example.cn", "host", None),
    ],
)
def test_non_server_reason(value: str, kind: str, reason: str | None) -> None:
    assert non_server_reason(value, value.lower(), kind) == reason


@pytest.mark.parametrize(
    ("text", "placeholder"),
    [
        ("https://192.0.2.1/x", True),
        ("https://198.51.100.7/x", True),
        ("http://[2001:db8::1]/", True),
        ("http://printer.local/", True),
        ("https://api.staging.internal/v1", True),
        ("http://nas.home.arpa/", True),
        ("https://203.107.1.1/d", False),
        ("https://api.example.cn/", False),
    ],
)
def test_placeholders(text: str, placeholder: bool) -> None:
    (c,) = list(EndpointExtractor().find(text))
    assert c.placeholder is placeholder


@pytest.mark.parametrize(
    "text",
    [
        "http://apache.org/xml/features/disallow-doctype-decl",
        "http://apache.org/xml/properties/internal/symbol-table",
        "http://javax.xml.XMLConstants/property/accessExternalDTD",
        "http://javax.xml.transform.stream.StreamResult/feature",
        "http://relaxng.org/ns/structure/1.0",
        "http://xml.org/sax/features/namespaces",
        "https://1234-abc.apps.googleusercontent.com/",
        "1234-abcdef.apps.googleusercontent.com",
    ],
)
def test_not_endpoints(text: str) -> None:
    assert list(EndpointExtractor().find(text)) == []


def test_apache_pages_stay_urls() -> None:
    (c,) = list(
        EndpointExtractor().find("https://apache.org/licenses/x https://www.apache.org/dyn/closer.cgi")
    )[:1]
    assert c.host == "apache.org"


@pytest.mark.parametrize(
    ("text", "target", "context"),
    [
        ('{"host": "push.example.cn"}', "push.example.cn", "key"),
        ("api_server=push.example.cn", "push.example.cn", "key"),
        ("serverAddr: push.example.cn", "push.example.cn", "key"),
        ('{"description": "push.example.cn"}', "push.example.cn", ""),
        ("version=1.2.3.9", "1.2.3.9", ""),
        ("0.0.0.0 ads.example.com", "ads.example.com", "list"),
        ("||ads.example.com^", "ads.example.com", "list"),
        ("see ads.example.com", "ads.example.com", ""),
        ("gw.example.cn:5222", "gw.example.cn", "port"),
        ("gw.example.cn:http", "gw.example.cn", ""),
    ],
)
def test_occurrence_context(text: str, target: str, context: str) -> None:
    start = text.index(target)
    assert occurrence_context(text, start, start + len(target)) == context
    found = {c.value: c.context for c in EndpointExtractor().find(text)}
    assert found.get(target, context) == context


def test_candidate_text_keeps_line_context_only_for_text() -> None:
    data = b'0.0.0.0 ads.example.com\n{"host": "push.example.cn"}\x00\x01 tail.example.cn'
    pieces = candidate_text(data, context=True).split("\n")
    assert pieces[0] == "0.0.0.0 ads.example.com" and pieces[1].startswith('{"host": "push.example.cn"}')
    assert "0.0.0.0\nads.example.com" in candidate_text(data)
    # a long line of short runs stays linear: one piece, no quadratic growth
    long = b" x.y" * 200_000
    assert len(candidate_text(long, context=True)) < len(long) * 1.01  # pieces of at most 4 KiB, joined


def _sig(sid: str, prefixes: tuple[str, ...], **kw: object) -> SdkSignature:
    return SdkSignature(sid, sid, "Owner", "US", "analytics", prefixes, (), **kw)  # type: ignore[arg-type]


def test_stubs_markers_and_exception_classes() -> None:
    db = SignatureDb(
        [
            _sig("auth", ("com.x.auth",), stubs=("com.x.auth.internal",)),
            _sig("fb", ("com.fb",), markers=("com.fb.Sdk",)),
        ]
    )
    p = db.code_presence(["com.x.auth.internal.Provider", "com.x.auth.AuthException", "com.fb.react.Bridge"])
    assert not p["auth"].present and p["auth"].stubs == 2 and p["auth"].classes == 0
    assert not p["fb"].present and p["fb"].classes == 1  # own code, but not its core
    p = db.code_presence(["com.x.auth.Auth", "com.x.auth.internal.Provider", "com.fb.Sdk$Inner"])
    assert p["auth"].present and p["auth"].classes == 1 and p["auth"].stubs == 1
    assert p["fb"].present


def test_stub_outside_the_prefixes_is_rejected() -> None:
    row = {"id": "x", "name": "X", "owner": "O", "owner_country": "US", "category": "analytics",
           "code_prefixes": ["com.x"], "domains": [], "stubs": ["com.y.Z"]}  # fmt: skip
    with pytest.raises(ConfigError, match="not under a code prefix"):
        parse_entries([row], "t.json")


def test_old_stored_scans_move_host_only_sdks_to_mentions() -> None:
    """A scan stored before presence existed listed SDKs found by host only among the SDKs."""
    old = ScanResult(
        app=ScanResult.from_dict({"app": {"package": "p", "version_name": None, "version_code": None,
                                          "sha256": "0", "file": "f", "format": "apk"}}).app,
        sdks=(Sdk("a", "A", "O", "US", "analytics", ("code: 3 classes under a (classes.dex)",), 3),
              Sdk("b", "B", "O", "US", "analytics", ("network: b.example.com (res)",), 0)),
        endpoints=(Endpoint("b.example.com", "b.example.com", "example.com", "host", sources=(Source("dex", "c"),)),),
    ).to_dict()  # fmt: skip
    del old["sdk_mentions"], old["capabilities"]
    for e in old["endpoints"]:
        del e["network"]
    r = ScanResult.from_dict(old)
    assert [s.id for s in r.sdks] == ["a"] and [(s.id, s.presence) for s in r.sdk_mentions] == [
        ("b", "host-string")
    ]
    assert r.endpoints[0].network  # endpoints of old scans keep counting, as they were judged then


def test_code_use_survives_hostile_indices() -> None:
    """A hostile const-string may load an index past the string table; the method name may be unknown."""
    from audit.static.servers import code_use

    use = code_use(
        [(0x70, "a.B")],
        invokes=lambda off: [0, 10**6],
        method_name=lambda m: ("java.net.InetAddress", "getByName") if m == 0 else ("", ""),
        method_strings=lambda off: [0, 7, 10**9],
        strings=["x.example.cn", "https://"],
    )
    assert use.apis == ("java.net.InetAddress.getByName (a.B)",) and use.schemes == ()
    assert use.siblings == ()  # collected only when asked (for bare IPs)
    near = code_use(
        [(0x70, "a.B")], invokes=lambda off: [], method_name=lambda m: ("", ""),
        method_strings=lambda off: [0, 7, 10**9], strings=["x.example.cn", "https://"], siblings=True,
    )  # fmt: skip
    assert near.siblings == (("x.example.cn", "a.B"),)
