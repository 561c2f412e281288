"""SDK signature database: builtin data, matching rules, overlay precedence, Exodus import."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from audit.errors import ConfigError
from audit.static.signatures import (
    CATEGORIES,
    SdkSignature,
    SignatureDb,
    build_db,
    builtin_signatures,
    convert_code_signature,
    convert_network_signature,
    default_overlay_path,
    import_exodus,
    load_signatures,
)
from tests.conftest import SHARED_DATA

EXODUS = SHARED_DATA / "exodus_trackers.json"


@pytest.fixture(autouse=True)
def _no_user_overlay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the developer's real overlay."""
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path / "home"))


def sig(sid: str, prefixes: tuple[str, ...] = (), domains: tuple[str, ...] = (), **kw: str) -> SdkSignature:
    return SdkSignature(
        id=sid,
        name=kw.get("name", sid),
        owner=kw.get("owner", "Acme"),
        owner_country=kw.get("owner_country", "US"),
        category=kw.get("category", "analytics"),
        code_prefixes=prefixes,
        domains=domains,
        source=kw.get("source", "builtin"),
    )


def write_exodus(path: Path, trackers: dict[str, dict[str, object]]) -> Path:
    path.write_text(json.dumps({"trackers": trackers}), encoding="utf-8")
    return path


# ---- builtin data ------------------------------------------------------------------------------


def test_builtin_database_is_large_and_consistent() -> None:
    sdks = builtin_signatures()
    assert len(sdks) >= 230
    ids = [s.id for s in sdks]
    assert len(ids) == len(set(ids))
    assert {s.category for s in sdks} <= set(CATEGORIES)
    # Each code prefix and each domain is claimed by exactly one SDK: no silent shadowing.
    prefixes = [p for s in sdks for p in s.code_prefixes]
    domains = [d for s in sdks for d in s.domains]
    assert len(prefixes) == len(set(prefixes))
    assert len(domains) == len(set(domains))
    assert all(s.code_prefixes or s.domains for s in sdks)
    assert all(len(s.owner_country) == 2 for s in sdks)


# The agreed table the fixtures rely on (id, owner, country, category, prefixes, domains).
AGREED = [
    ("wechat_opensdk", "Tencent", "CN", "social", ["com.tencent.mm.opensdk"], ["open.weixin.qq.com", "api.weixin.qq.com"]),
    ("tencent_bugly", "Tencent", "CN", "crash reporting", ["com.tencent.bugly"], ["bugly.qq.com"]),
    ("pangle", "ByteDance", "CN", "advertising", ["com.bytedance.sdk.openadsdk"],
     ["pangle.io", "pangolin-sdk-toutiao.com", "pglstatp-toutiao.com"]),
    ("firebase_analytics", "Google", "US", "analytics",
     ["com.google.firebase.analytics", "com.google.android.gms.measurement"], ["app-measurement.com"]),
    ("admob", "Google", "US", "advertising", ["com.google.android.gms.ads"],
     ["googleads.g.doubleclick.net", "pagead2.googlesyndication.com"]),
    ("facebook_sdk", "Meta", "US", "social", ["com.facebook"], ["graph.facebook.com", "connect.facebook.net"]),
    ("umeng_analytics", "Alibaba", "CN", "analytics", ["com.umeng.analytics", "com.umeng.commonsdk"],
     ["umeng.com", "umengcloud.com"]),
    ("jpush", "Aurora Mobile", "CN", "push", ["cn.jpush.android", "cn.jiguang"], ["jpush.cn", "jiguang.cn"]),
    ("appsflyer", "AppsFlyer", "IL", "attribution", ["com.appsflyer"], ["appsflyer.com", "appsflyersdk.com"]),
]  # fmt: skip


@pytest.mark.parametrize(("sid", "owner", "country", "category", "prefixes", "domains"), AGREED)
def test_agreed_ids(
    sid: str, owner: str, country: str, category: str, prefixes: list[str], domains: list[str]
) -> None:
    s = load_signatures().get(sid)
    assert s is not None
    assert (s.owner, s.owner_country, s.category, s.source) == (owner, country, category, "builtin")
    assert set(prefixes) <= set(s.code_prefixes)
    assert set(domains) <= set(s.domains)


def test_adjust_owner_is_current_parent_and_notes_say_so() -> None:
    s = load_signatures().get("adjust")
    assert s is not None and (s.owner, s.owner_country) == ("AppLovin", "US")
    assert s.notes and "Adjust (DE)" in s.notes


@pytest.mark.parametrize(
    ("sid", "owner", "country"),
    [
        ("yandex_appmetrica", "Yandex", "RU"),
        ("mytracker", "VK", "RU"),
        ("vk_sdk", "VK", "RU"),
        ("hms_push", "Huawei", "CN"),
        ("xiaomi_push", "Xiaomi", "CN"),
        ("msa_oaid", "Mobile Security Alliance", "CN"),
        ("alipay_sdk", "Ant Group", "CN"),
        ("tiktok_business", "ByteDance", "CN"),
        ("ironsource", "Unity Technologies", "US"),
        ("here_sdk", "HERE Technologies", "NL"),
    ],
)
def test_owner_facts(sid: str, owner: str, country: str) -> None:
    s = load_signatures().get(sid)
    assert s is not None and (s.owner, s.owner_country) == (owner, country)


# ---- matching ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        ("com.tencent.bugly.crashreport.CrashReport", ("tencent_bugly", "com.tencent.bugly")),
        ("com.tencent.bugly", ("tencent_bugly", "com.tencent.bugly")),  # equal to the prefix
        ("com.tencent.buglyx.Foo", None),  # prefix must end at a component boundary
        ("com.facebook.ads.AdView", ("facebook_audience_network", "com.facebook.ads")),  # longest wins
        ("com.facebook.FacebookSdk", ("facebook_sdk", "com.facebook")),
        ("com.facebook.login.LoginManager$Companion$1", ("facebook_login", "com.facebook.login")),
        ("com.facebookx.Foo", None),
        ("com.google.android.gms.ads.AdView", ("admob", "com.google.android.gms.ads")),
        ("com.google.android.gms.common.api.Api", ("google_play_services", "com.google.android.gms")),
        ("cn.jiguang.verifysdk.api.JVerificationInterface", ("jverification", "cn.jiguang.verifysdk")),
        ("cn.jiguang.api.JCoreInterface", ("jpush", "cn.jiguang")),
        ("okhttp3.OkHttpClient", ("okhttp", "okhttp3")),
        ("com.example.app.MainActivity", None),
        ("Foo", None),
        ("", None),
    ],
)
def test_match_class(cls: str, expected: tuple[str, str] | None) -> None:
    m = load_signatures().match_class(cls)
    assert (m and (m[0].id, m[1])) == expected
    # The package cache must give the same answer the second time.
    m2 = load_signatures().match_class(cls)
    assert (m2 and (m2[0].id, m2[1])) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("android.bugly.qq.com", ("tencent_bugly", "bugly.qq.com")),
        ("bugly.qq.com", ("tencent_bugly", "bugly.qq.com")),
        ("Android.Bugly.QQ.com.", ("tencent_bugly", "bugly.qq.com")),
        ("notbugly.qq.com", None),  # suffix must start at a label boundary
        ("www.qq.com", None),
        ("graph.facebook.com", ("facebook_sdk", "graph.facebook.com")),
        ("sdk.appsflyer.com", ("appsflyer", "appsflyer.com")),
        ("evilappsflyer.com", None),
        ("api2.pangle.io:443", ("pangle", "pangle.io")),
        ("203.0.113.7", None),
        ("", None),
    ],
)
def test_match_host(host: str, expected: tuple[str, str] | None) -> None:
    m = load_signatures().match_host(host)
    assert (m and (m[0].id, m[1])) == expected


def test_count_classes() -> None:
    names = [
        "com.tencent.bugly.crashreport.CrashReport",
        "com.tencent.bugly.proguard.a",
        "com.tencent.bugly.proguard.a$1",
        "com.facebook.ads.AdView",
        "com.facebook.FacebookSdk",
        "com.example.Main",
    ]
    counts = load_signatures().count_classes(names)
    assert counts["tencent_bugly"] == (3, ("com.tencent.bugly",))
    assert counts["facebook_audience_network"] == (1, ("com.facebook.ads",))
    assert counts["facebook_sdk"] == (1, ("com.facebook",))
    assert len(counts) == 3


def test_filter_by_category_and_country() -> None:
    db = load_signatures()
    cn_push = db.filter(category="push", country="cn")
    assert {"jpush", "xiaomi_push", "getui_push"} <= {s.id for s in cn_push}
    assert all(s.owner_country == "CN" and s.category == "push" for s in cn_push)


def test_to_sdk_carries_identity() -> None:
    s = load_signatures().get("tencent_bugly")
    assert s is not None
    found = s.to_sdk(["code: 3 classes under com.tencent.bugly"], class_count=3)
    assert (found.id, found.owner, found.owner_country, found.class_count) == (
        "tencent_bugly",
        "Tencent",
        "CN",
        3,
    )


# ---- overlay -----------------------------------------------------------------------------------


def test_default_overlay_path_honours_audit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path))
    assert default_overlay_path() == tmp_path / "signatures-overlay.json"
    monkeypatch.delenv("AUDIT_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_overlay_path() == tmp_path / "xdg" / "dataflow-audit" / "signatures-overlay.json"


def test_overlay_overrides_builtin_and_adds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    overlay = tmp_path / "signatures-overlay.json"
    overlay.write_text(
        json.dumps(
            [
                {
                    "id": "tencent_bugly",
                    "name": "Bugly (mine)",
                    "owner": "Tencent",
                    "owner_country": "CN",
                    "category": "crash reporting",
                    "code_prefixes": ["com.tencent.bugly"],
                    "domains": ["bugly.example.cn"],
                },
                {
                    "id": "acme_tracker",
                    "name": "Acme",
                    "owner": "Acme",
                    "owner_country": "FR",
                    "category": "analytics",
                    "code_prefixes": ["com.acme.track"],
                    "domains": ["t.acme.example"],
                },
            ]
        ),  # fmt: skip
        encoding="utf-8",
    )
    db = load_signatures(overlay)
    bugly = db.get("tencent_bugly")
    assert bugly is not None and bugly.name == "Bugly (mine)" and bugly.source == "overlay"
    assert db.match_host("android.bugly.qq.com") is None  # the override replaced the domains
    m = db.match_class("com.acme.track.Sender")
    assert m is not None and m[0].id == "acme_tracker"
    assert len(db) == len(builtin_signatures()) + 1
    # Default overlay location: $AUDIT_HOME.
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path))
    assert load_signatures().get("acme_tracker") is not None


def test_overlay_rewrite_is_picked_up(tmp_path: Path) -> None:
    overlay = tmp_path / "o.json"
    entry = {"id": "x1", "name": "X", "owner": "X", "owner_country": "US", "category": "push",
             "code_prefixes": ["com.x.one"], "domains": []}  # fmt: skip
    overlay.write_text(json.dumps([entry]), encoding="utf-8")
    assert load_signatures(overlay).get("x1") is not None
    entry["id"] = "x2_longer_id"  # different size, so the cache key changes even within one mtime tick
    overlay.write_text(json.dumps([entry]), encoding="utf-8")
    db = load_signatures(overlay)
    assert db.get("x1") is None and db.get("x2_longer_id") is not None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"a": 1}', "expected a JSON list"),
        ("[1]", "entry 0 is not an object"),
        ('[{"id": "Bad-Id"}]', "snake_case"),
        (
            '[{"id": "ok", "name": "n", "owner": "o", "owner_country": "China", "category": "push"}]',
            "owner_country",
        ),
        (
            '[{"id": "ok", "name": "n", "owner": "o", "owner_country": "CN", "category": "spyware"}]',
            "unknown category",
        ),
        (
            '[{"id": "ok", "name": "n", "owner": "o", "category": "push", "code_prefixes": ["com..x"]}]',
            "dotted Java name",
        ),
        (
            '[{"id": "ok", "name": "n", "owner": "o", "category": "push", "domains": ["http://x.com/"]}]',
            "not a host name",
        ),
        (
            '[{"id": "ok", "name": "n", "owner": "o", "category": "push", "domains": "x.com"}]',
            "list of strings",
        ),
        (
            '[{"id": "ok", "name": "n", "owner": "o", "category": "push", "code_strings": ["no dot or colon here"]}]',
            "code string",
        ),
        (
            '[{"id": "ok", "name": "n", "owner": "o", "category": "push", "code_strings": ["a.b"]}]',
            "at least 16 characters",
        ),
    ],
)
def test_malformed_overlay(tmp_path: Path, content: str, problem: str) -> None:
    overlay = tmp_path / "bad.json"
    overlay.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_signatures(overlay)
    msg = str(e.value)
    assert str(overlay) in msg and problem in msg and "\n" not in msg


def test_missing_or_binary_overlay(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_signatures(tmp_path / "nope.json")
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage\x9c")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_signatures(binary)


# ---- Exodus conversion -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signature", "prefixes", "skipped"),
    [
        (
            "com.facebook.ads.|com.facebook.audiencenetwork",
            ("com.facebook.ads", "com.facebook.audiencenetwork"),
            0,
        ),
        ("com.databerries.|com.geolocstation.", ("com.databerries", "com.geolocstation"), 0),
        (".LigatusManager|com.ligatus.android.adframework", ("com.ligatus.android.adframework",), 1),
        (".sizmek.", (), 1),  # matches mid-name: not a prefix
        (
            "com.google.firebase.analytics.FirebaseAnalytics",
            ("com.google.firebase.analytics.FirebaseAnalytics",),
            0,
        ),
        ("com\\.example\\.sdk", ("com.example.sdk",), 0),
        ("com.foo.(bar|baz)", (), 2),
        ("com", (), 1),  # a single component would match half of all apps
        ("", (), 0),
    ],
)
def test_convert_code_signature(signature: str, prefixes: tuple[str, ...], skipped: int) -> None:
    assert convert_code_signature(signature) == (prefixes, skipped)


@pytest.mark.parametrize(
    ("signature", "domains", "skipped"),
    [
        ("\\.appsflyer\\.com|appsflyersdk\\.com", ("appsflyer.com", "appsflyersdk.com"), 0),
        (".*\\.jiguang\\.cn", ("jiguang.cn",), 0),
        ("kvinit\\-prod\\.api\\.kochava\\.com", ("kvinit-prod.api.kochava.com",), 0),
        ("^api\\.example\\.org$", ("api.example.org",), 0),
        ("mst[0-9]*\\.is\\.autonavi\\.com|lbs\\.amap\\.com", ("lbs.amap.com",), 1),
        ("adservice\\.google\\..*", (), 1),
        ("54\\.243\\.73\\.253:8080/SilverPush/", (), 1),
        ("fidzup", (), 1),  # no public suffix
        ("co\\.uk", (), 1),  # is a public suffix
        ("\\.exacttarget\\.", (), 1),
        ("data.\\altbeacon\\.org", (), 1),
        ("", (), 0),
    ],
)
def test_convert_network_signature(signature: str, domains: tuple[str, ...], skipped: int) -> None:
    assert convert_network_signature(signature) == (domains, skipped)


def test_merge_rule_never_shadows_builtin(tmp_path: Path) -> None:
    builtin = [
        sig("bugly", ("com.tencent.bugly",), ("bugly.qq.com",), owner="Tencent", owner_country="CN"),
        sig("fb", ("com.facebook",), ("graph.facebook.com",), owner="Meta"),
        sig("fan", ("com.facebook.ads",), ("an.facebook.com",), owner="Meta"),
    ]
    imported = [
        # Same code as a builtin SDK: folds into it, bringing a new prefix and domain.
        sig("exodus_1", ("com.tencent.bugly.crashreport", "com.tencent.feedback"), ("bugly.qq.com", "bugly-cdn.example.net"),
            owner="unknown", owner_country="", source="exodus:t.json"),
        # Under a builtin prefix (would shadow com.facebook by longest match): merged, not standalone.
        sig("exodus_2", ("com.facebook.login",), ("facebook.com",), owner="unknown", owner_country="", source="exodus:t.json"),
        # Unrelated: stands alone.
        sig("exodus_3", ("com.acme.track",), ("t.acme.example.org",), owner="unknown", owner_country="", source="exodus:t.json"),
        # Only a domain that contains a builtin domain: nothing left, dropped.
        sig("exodus_4", (), ("qq.com",), owner="unknown", owner_country="", source="exodus:t.json"),
    ]  # fmt: skip
    db = build_db(builtin, imported)
    bugly = db.get("bugly")
    assert bugly is not None and bugly.owner == "Tencent"
    assert bugly.code_prefixes == ("com.tencent.bugly", "com.tencent.feedback")
    assert bugly.domains == ("bugly.qq.com", "bugly-cdn.example.net")
    assert bugly.merged_from == ("exodus_1",)
    assert db.get("exodus_1") is bugly  # merged ids resolve to their SDK
    fb = db.get("fb")
    # facebook.com also contains fan's domain: adding it to fb would steal an.facebook.com's siblings.
    assert fb is not None and fb.domains == ("graph.facebook.com",) and fb.merged_from == ("exodus_2",)
    m = db.match_class("com.facebook.login.LoginManager")
    assert m is not None and m[0].id == "fb"
    m = db.match_class("com.acme.track.X")
    assert m is not None and m[0].id == "exodus_3"
    assert db.match_host("www.qq.com") is None
    assert {s.id for s in db.sdks} == {"bugly", "fb", "fan", "exodus_3"}


def test_import_hand_made_file(tmp_path: Path) -> None:
    src = write_exodus(
        tmp_path / "trackers.json",
        {
            "1": {"id": 1, "name": "Bugly copy", "code_signature": "com.tencent.bugly.", "network_signature": "bugly\\.qq\\.com",
                  "website": "https://bugly.qq.com", "categories": ["Crash reporting"]},
            "2": {"id": 2, "name": "Acme", "code_signature": "com.acme.track.", "network_signature": "\\.acmetrack\\.io",
                  "website": "http://acme.example", "categories": ["Advertisement", "Analytics"]},
            "3": {"id": 3, "name": "Salesforce thing", "code_signature": "com.sfmc.sdk.", "network_signature": "",
                  "website": "https://www.salesforce.com/products/", "categories": []},
            "4": {"id": 4, "name": "Nothing usable", "code_signature": ".foo.", "network_signature": "bar[0-9]+",
                  "website": "", "categories": []},
        },
    )  # fmt: skip
    overlay = tmp_path / "home" / "overlay.json"
    s = import_exodus(src, overlay)
    assert (s.added, s.updated, s.skipped, s.merged, s.patterns_skipped) == (3, 0, 1, 1, 2)
    assert s.path == overlay and overlay.is_file()
    db = load_signatures(overlay)
    acme = db.get("exodus_2")
    assert acme is not None
    assert (acme.owner, acme.owner_country, acme.category, acme.source) == (
        "unknown",
        "",
        "advertising",
        "exodus:trackers.json",
    )
    assert acme.domains == ("acmetrack.io",)
    sf = db.get("exodus_3")
    assert sf is not None and (sf.owner, sf.owner_country, sf.category) == ("Salesforce", "US", "analytics")
    bugly = db.get("exodus_1")
    assert bugly is not None and bugly.id == "tencent_bugly"
    # A second import of the same file updates in place.
    again = import_exodus(src, overlay)
    assert (again.added, again.updated) == (0, 3)
    assert len(json.loads(overlay.read_text(encoding="utf-8"))) == 3


def test_import_keeps_user_entries(tmp_path: Path) -> None:
    overlay = tmp_path / "o.json"
    mine = {"id": "mine", "name": "Mine", "owner": "Me", "owner_country": "DE", "category": "analytics",
            "code_prefixes": ["de.me.track"], "domains": []}  # fmt: skip
    overlay.write_text(json.dumps([mine]), encoding="utf-8")
    src = write_exodus(
        tmp_path / "t.json", {"9": {"name": "T", "code_signature": "com.t9.sdk", "network_signature": ""}}
    )
    import_exodus(src, overlay)
    ids = [e["id"] for e in json.loads(overlay.read_text(encoding="utf-8"))]
    assert ids == ["mine", "exodus_9"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "not valid JSON"),
        (b"\x00\x01\x02\xff", "not UTF-8"),
        (b"[]", 'no "trackers" object'),
        (b'{"trackers": 5}', 'no "trackers" object'),
        (b'{"trackers": {"1": "x"}}', "tracker 1 is not an object"),
        (b'{"trackers": {"1": {"code_signature": "a.b"}}}', "tracker 1 has no name"),
        (b'{"trackers": {"1": {"name": "n", "code_signature": 7}}}', "must be strings"),
        (b'{"trackers": {"1": {"name": "n", "network_signature": ["x"]}}}', "must be strings"),
    ],
)
def test_import_malformed_exodus(tmp_path: Path, content: bytes, problem: str) -> None:
    src = tmp_path / "trackers.json"
    src.write_bytes(content)
    overlay = tmp_path / "o.json"
    with pytest.raises(ConfigError) as e:
        import_exodus(src, overlay)
    msg = str(e.value)
    assert str(src) in msg and problem in msg and "\n" not in msg
    assert not overlay.exists()  # nothing written on failure


def test_import_refuses_to_clobber_a_broken_overlay(tmp_path: Path) -> None:
    overlay = tmp_path / "o.json"
    overlay.write_text("{broken", encoding="utf-8")
    src = write_exodus(tmp_path / "t.json", {"1": {"name": "T", "code_signature": "com.t1.sdk"}})
    with pytest.raises(ConfigError, match="o.json"):
        import_exodus(src, overlay)
    assert overlay.read_text(encoding="utf-8") == "{broken"


@pytest.mark.skipif(not EXODUS.is_file(), reason="shared Exodus snapshot not available")
def test_import_real_exodus_snapshot(tmp_path: Path) -> None:
    overlay = tmp_path / "o.json"
    s = import_exodus(EXODUS, overlay)
    total = len(json.loads(EXODUS.read_text(encoding="utf-8"))["trackers"])
    assert s.added + s.skipped == total and s.updated == 0
    assert s.merged > 50  # many Exodus trackers duplicate builtin SDKs
    assert s.patterns_skipped > 0
    db = load_signatures(overlay)
    # Builtin facts survive: owners, countries and longest-prefix attribution.
    for sid, owner, country, prefixes, domains in AGREED_LOOKUP:
        s2 = db.get(sid)
        assert s2 is not None and (s2.owner, s2.owner_country, s2.source) == (owner, country, "builtin")
        for p in prefixes:
            m = db.match_class(p + ".Foo")
            assert m is not None and m[0].id == sid, p
        for d in domains:
            m = db.match_host("x." + d)
            assert m is not None and m[0].id == sid, d
    assert len(db) > len(builtin_signatures()) + 200
    standalone = [x for x in db.sdks if x.source.startswith("exodus:")]
    assert all(x.code_prefixes or x.domains for x in standalone)
    assert any(x.owner != "unknown" for x in standalone)  # some owners inferred from the company table


AGREED_LOOKUP = [(a[0], a[1], a[2], a[4], a[5]) for a in AGREED]


def test_hosting_websites_do_not_make_an_owner(tmp_path: Path) -> None:
    src = write_exodus(
        tmp_path / "t.json",
        {
            "1": {"name": "Hobby SDK", "code_signature": "io.hobby.sdk", "network_signature": "hobby\\.s3\\.amazonaws\\.com",
                  "website": "https://github.com/someone/hobby"},
            "2": {"name": "Yandex thing", "code_signature": "com.yx.thing", "network_signature": "thing\\.yandex\\.net",
                  "website": "https://github.com/yx/thing"},
        },
    )  # fmt: skip
    overlay = tmp_path / "o.json"
    import_exodus(src, overlay)
    db = load_signatures(overlay)
    hobby, yx = db.get("exodus_1"), db.get("exodus_2")
    assert hobby is not None and (hobby.owner, hobby.owner_country) == ("unknown", "")
    assert yx is not None and (yx.owner, yx.owner_country) == ("Yandex", "RU")  # from its own domain


def test_relocated_prefix_needs_two_labels_and_three_classes() -> None:
    db = SignatureDb(
        [sig("commons", ("org.apache.commons",)), sig("kt", ("kotlin",)), sig("sentry", ("io.sentry",))]
    )
    shaded = "external.org.apache.commons.lang3"
    assert db.match_relocated(f"{shaded}.StringUtils$1") is not None
    assert db.match_relocated(f"{shaded}.StringUtils")[1:] == (
        "external.org.apache.commons",
        "org.apache.commons",
    )
    assert db.match_relocated("com.foo.kotlin.collections.X") is None  # a one-label prefix is never moved
    assert db.match_class("org.apache.commons.lang3.StringUtils") is not None  # not moved: matched as usual
    assert db.match_relocated("a." * 5_000 + "org.apache.commons.X") is None  # too deep: not searched
    names = [f"{shaded}.StringUtils", f"{shaded}.ArrayUtils", f"{shaded}.builder.HashCodeBuilder",
             f"{shaded}.NotFoundException", "com.x.tags.io.sentry.Tag", "com.x.tags.io.sentry.Tags"]  # fmt: skip
    presence = db.code_presence(names)
    assert presence["commons"].present and presence["commons"].classes == 3 and presence["commons"].stubs == 1
    assert presence["commons"].prefixes == ("external.org.apache.commons",)
    assert "sentry" not in presence  # two classes: a package that merely ends like the prefix


def test_code_strings_index() -> None:
    s = dataclasses.replace(
        sig("kt", ("kotlin",)), code_strings=("Parameter specified as non-null is null: method ",)
    )
    db = SignatureDb([s])
    assert db.code_strings == {"Parameter specified as non-null is null: method ": "kt"}
    assert s.to_dict()["code_strings"] == ["Parameter specified as non-null is null: method "]
