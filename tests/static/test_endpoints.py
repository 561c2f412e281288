"""Endpoint extraction rules, as parametrized tables."""

from __future__ import annotations

import pytest

from audit.static.endpoints import EndpointExtractor, is_code_name, normalize, package_names


@pytest.fixture(scope="module")
def ex() -> EndpointExtractor:
    return EndpointExtractor(
        package_names(["com.tencent.bugly.crashreport.CrashReport", "cn.jpush.android.PushService"])
    )


def values(ex: EndpointExtractor, text: str) -> list[str]:
    return [c.value for c in ex.find(normalize(text))]


@pytest.mark.parametrize(
    ("text", "value", "kind", "host", "domain"),
    [
        ("https://api.example.cn/v1", "https://api.example.cn/v1", "url", "api.example.cn", "example.cn"),
        ("WSS://IM.Example.CN/ws", "WSS://IM.Example.CN/ws", "url", "im.example.cn", "example.cn"),
        ("mqtts://broker.hivemq.com:8883", "mqtts://broker.hivemq.com:8883", "url", "broker.hivemq.com", "hivemq.com"),
        ("rtmp://live.example.co.uk/app", "rtmp://live.example.co.uk/app", "url", "live.example.co.uk", "example.co.uk"),
        ("ftp://user:pw@files.example.de/x", "ftp://user:pw@files.example.de/x", "url", "files.example.de", "example.de"),
        ("http://[2001:4860::8888]:80/", "http://[2001:4860::8888]:80/", "url", "2001:4860::8888", None),
        ("https://203.107.1.1/d", "https://203.107.1.1/d", "url", "203.107.1.1", None),
        ("android.bugly.qq.com", "android.bugly.qq.com", "host", "android.bugly.qq.com", "qq.com"),
        ("*.pinned.example.cn", "pinned.example.cn", "host", "pinned.example.cn", "example.cn"),
        ("//cdn.jsdelivr.net/npm/x.js", "cdn.jsdelivr.net", "host", "cdn.jsdelivr.net", "jsdelivr.net"),
        ("119.29.29.29", "119.29.29.29", "ip", "119.29.29.29", None),
        ("2402:4e00::", "2402:4e00::", "ip", "2402:4e00::", None),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ip",
         "2001:db8:85a3::8a2e:370:7334", None),
    ],
)  # fmt: skip
def test_found(
    ex: EndpointExtractor, text: str, value: str, kind: str, host: str, domain: str | None
) -> None:
    (c,) = list(ex.find(text))
    assert (c.value, c.kind, c.host, c.domain) == (value, kind, host, domain)


@pytest.mark.parametrize(
    "text",
    [
        # namespaces and schemas
        "http://schemas.android.com/apk/res/android",
        "http://www.w3.org/2001/XMLSchema",
        "http://ns.adobe.com/xap/1.0/",
        "http://xmlpull.org/v1/doc/features.html#process-namespaces",
        "http://purl.org/dc/elements/1.1/",
        "schemas.android.com",
        # not network schemes
        "content://com.example.provider/items",
        "file:///sdcard/x.txt",
        "android-app://com.example/http/host",
        "data:text/plain;base64,aGk=",
        "javascript:alert(document.cookie)",
        # format templates
        "https://%s/api/%d",
        "https://{0}/x",
        "https://${host}/x",
        "%s.example.cn",
        "{0}.example.cn",
        "${region}.example.cn",
        # Java and Kotlin names
        "android.app",
        "java.net",
        "java.net.URL",
        "okhttp3.internal",
        "com.google.gson",
        "org.chromium.net",
        "kotlin.coroutines.test",
        "com.tencent.bugly",
        "cn.jpush.android",
        "android.app.Activity",
        "MainActivity.java",
        "Date.now",
        "window.open(url)",
        "e.name",
        "user.name",
        "java.vm.name",
        # file names
        "libc.so",
        "config.json",
        "foo.png",
        "README.md",
        "src/lib.rs",
        "/sdcard/backup.com",
        # e-mail addresses are not endpoints
        "support@example.cn",
        # version strings, OIDs, C++ scopes, times
        "1.2.3",
        "v1.2.3.4",
        "2.5.4.3",
        "abc::def",
        "12:30:45",
        "2::",
        # unusual gTLDs as bare hosts (URLs may use any suffix)
        "client.properties",
        "uprops.icu",
        "channel.open",
    ],
)
def test_noise(ex: EndpointExtractor, text: str) -> None:
    assert values(ex, text) == []


@pytest.mark.parametrize(
    ("text", "placeholder"),
    [
        ("https://example.com/callback", True),
        ("api.example.org", True),
        ("http://foo.test/", True),
        ("https://x.invalid", True),
        ("http://localhost:8080/debug", True),
        ("localhost.example", True),
        ("10.0.0.2", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("127.0.0.1", True),
        ("169.254.1.1", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("fe80::1", True),
        ("fd00::1", True),
        ("http://10.0.0.2:8000/dev", True),
        ("8.8.8.8", False),
        ("172.32.0.1", False),
        ("https://example.cn/", False),
        ("2402:4e00::", False),
    ],
)
def test_placeholders(ex: EndpointExtractor, text: str, placeholder: bool) -> None:
    (c,) = list(ex.find(text))
    assert c.placeholder is placeholder


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("(see https://x.example.cn/a).", ["https://x.example.cn/a"]),
        ("https://x.example.cn/a, and more", ["https://x.example.cn/a"]),
        ('"https://x.example.cn/a";', ["https://x.example.cn/a"]),
        ("https://en.wikipedia.org/wiki/Foo_(bar)", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("Visit www.example.cn.", ["www.example.cn"]),
        ("https://x.example.cn/a<script>alert(1)</script>", ["https://x.example.cn/a"]),
        ("https://x.example.cn/c?q='on'&x=1", ["https://x.example.cn/c?q='on'&x=1"]),
        ("['https://a.example.cn/x','https://b.example.cn/y']", ["https://a.example.cn/x", "https://b.example.cn/y"]),
        ('{"a":"https:\\/\\/api.example.cn\\/v1","b":"wss://im.example.cn/ws"}',
         ["https://api.example.cn/v1", "wss://im.example.cn/ws"]),
        ("fetch('https://a.example.cn/').then(() => ws('wss://b.example.cn/s'))",
         ["https://a.example.cn/", "wss://b.example.cn/s"]),
        ("https://a.example.cn/?next=https://b.example.cn/", ["https://a.example.cn/?next=https://b.example.cn/"]),
        ("hosts: a.example.cn b.example.cn 1.2.3.4", ["a.example.cn", "b.example.cn", "1.2.3.4"]),
    ],
)  # fmt: skip
def test_trimming_and_several_per_string(ex: EndpointExtractor, text: str, found: list[str]) -> None:
    assert sorted(values(ex, text)) == sorted(found)


def test_public_suffix_is_required_for_bare_hosts(ex: EndpointExtractor) -> None:
    assert values(ex, "api.internal.corp") == []
    assert values(ex, "co.uk") == []
    assert values(ex, "shop.example.co.uk") == ["shop.example.co.uk"]
    # A URL keeps an unknown suffix: the scheme already says it is a server.
    (c,) = list(ex.find("https://api.internal.corp/x"))
    assert c.host == "api.internal.corp" and c.domain is None


def test_doc_urls_flagged_not_dropped(ex: EndpointExtractor) -> None:
    (c,) = list(ex.find("https://www.apache.org/licenses/LICENSE-2.0"))
    assert c.doc
    (d,) = list(ex.find("https://www.apache.org/dist/"))
    assert not d.doc


def test_code_names_from_dex() -> None:
    names = package_names(["com.example.app.MainActivity", "io.sentry.android.core.SentryAndroid"])
    assert {"com", "com.example", "com.example.app", "io.sentry.android.core"} <= names
    assert is_code_name("sentry.io", names) is False
    assert is_code_name("io.sentry.android", names)
    assert is_code_name("io.sentry.android.core.sentryandroid", names)


def test_binary_text_separators(ex: EndpointExtractor) -> None:
    blob = b"\x7fELF\x00\x02https://native.example.cn/report\x00\xe4\xbd\xa0api.example.cn\xff".decode(
        "latin-1"
    )
    assert values(ex, blob) == ["https://native.example.cn/report", "api.example.cn"]


def test_name_candidate_for_config_domains(ex: EndpointExtractor) -> None:
    c = ex.name_candidate(" Legacy.Example.CN ")
    assert c is not None and (c.kind, c.host, c.domain) == ("host", "legacy.example.cn", "example.cn")
    ip = ex.name_candidate("10.0.0.2")
    assert ip is not None and ip.kind == "ip" and ip.placeholder
    assert ex.name_candidate("not a host!") is None


@pytest.mark.parametrize("tail", [")", "]", "}", ".", ";"])
def test_long_trailing_punctuation_is_trimmed_in_linear_time(ex: EndpointExtractor, tail: str) -> None:
    """Found by benchmarks/fuzz_static.py: trimming re-counted the brackets (and copied the URL) once per
    character dropped, so an asset ending a URL with 300,000 ``)`` took minutes; now milliseconds."""
    assert values(ex, "https://a.example.cn/x" + tail * 300_000) == ["https://a.example.cn/x"]
    assert values(ex, "(https://a.example.cn/f(x)" + ")" * 3) == ["https://a.example.cn/f(x)"]
