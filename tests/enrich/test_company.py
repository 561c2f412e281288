"""Domain → company → home country, and consistency of the two data files."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from audit.enrich.company import Company, CompanyDb, load_companies, parse_companies
from audit.errors import ConfigError
from audit.models import CompanyInfo
from audit.static.signatures import builtin_signatures


def test_table_size_and_uniqueness() -> None:
    db = load_companies()
    assert len(db) >= 120
    names = [c.name for c in db.companies]
    assert len(names) == len(set(names))
    domains = [d for c in db.companies for d in c.domains]
    assert len(domains) == len(set(domains)), "a domain suffix must belong to one company"
    for c in db.companies:
        assert len(c.country) == 2 and c.country.isupper()
        assert c.parent is None or db.find(c.parent) is not None, c.name
        assert db.owner_chain(c.name)[-1].parent is None  # no cycles


def test_every_sdk_owner_exists_with_its_country() -> None:
    db = load_companies()
    for s in builtin_signatures():
        company = db.find(s.owner)
        assert company is not None, f"{s.id}: owner {s.owner} missing from companies.json"
        assert company.country == s.owner_country, s.id
        assert company.parent is None, f"{s.id}: owner must be the ultimate parent, not {s.owner}"


def test_every_sdk_domain_resolves_to_its_owner() -> None:
    db = load_companies()
    for s in builtin_signatures():
        for d in s.domains:
            info = db.lookup(d)
            assert info is not None, f"{s.id}: {d} has no company"
            # The direct owner of the domain may be a subsidiary; its chain must lead to the SDK owner.
            direct = db.match(d)
            assert direct is not None
            chain = [c.name for c in db.owner_chain(direct[0].name)]
            assert s.owner in chain, f"{s.id}: {d} belongs to {chain}, not {s.owner}"
            assert info.company == s.owner and info.country == s.owner_country


@pytest.mark.parametrize(
    ("host", "company", "country", "matched"),
    [
        ("open.weixin.qq.com", "Tencent", "CN", "qq.com"),
        ("cos.ap-guangzhou.myqcloud.com", "Tencent", "CN", "myqcloud.com"),
        ("sf16-scmcdn-sg.ibytedtos.com", "ByteDance", "CN", "ibytedtos.com"),
        ("log.byteoversea.com", "ByteDance", "CN", "byteoversea.com"),
        ("api16-normal-c-useast1a.tiktokv.com", "ByteDance", "CN", "tiktokv.com"),
        ("a248.e.akamaihd.net", "Akamai", "US", "akamaihd.net"),
        ("e1234.dscb.akamaiedge.net", "Akamai", "US", "akamaiedge.net"),
        ("d1.cloudfront.net", "Amazon", "US", "cloudfront.net"),
        ("bucket.s3.amazonaws.com", "Amazon", "US", "amazonaws.com"),
        ("app-measurement.com", "Google", "US", "app-measurement.com"),
        ("x.oss-cn-hangzhou.aliyuncs.com", "Alibaba", "CN", "aliyuncs.com"),
        ("alog.umeng.com", "Alibaba", "CN", "umeng.com"),
        ("mobilegw.alipay.com", "Ant Group", "CN", "alipay.com"),
        ("grs.dbankcloud.com", "Huawei", "CN", "dbankcloud.com"),
        ("api.xiaomi.net", "Xiaomi", "CN", "xiaomi.net"),
        ("graph.facebook.com", "Meta", "US", "facebook.com"),
        ("mc.yandex.ru", "Yandex", "RU", "yandex.ru"),
        ("top-fwz1.mail.ru", "VK", "RU", "mail.ru"),
        ("app.adjust.com", "AppLovin", "US", "adjust.com"),  # subsidiary → current parent
        ("Open.Weixin.QQ.COM.", "Tencent", "CN", "qq.com"),  # case and trailing dot ignored
        ("api.weibo.com:443", "Sina", "CN", "weibo.com"),
    ],
)
def test_lookup(host: str, company: str, country: str, matched: str) -> None:
    assert load_companies().lookup(host) == CompanyInfo(company, country, matched)


@pytest.mark.parametrize(
    "host",
    ["notqq.com", "qq.com.evil.example", "203.0.113.9", "2001:db8::1", "[2001:db8::1]:443", "", ".", "com"],
)
def test_lookup_unknown(host: str) -> None:
    assert load_companies().lookup(host) is None


def test_match_gives_the_direct_entity() -> None:
    db = load_companies()
    m = db.match("app.adjust.com")
    assert m is not None and (m[0].name, m[0].country, m[1]) == ("Adjust", "DE", "adjust.com")
    assert [c.name for c in db.owner_chain("Tapjoy")] == ["Tapjoy", "ironSource", "Unity Technologies"]


def test_get_by_name_or_alias() -> None:
    db = load_companies()
    assert db.get("tencent").name == "Tencent"
    assert db.get("Alipay").name == "Ant Group"
    assert db.get("Mail.ru Group").name == "VK"
    with pytest.raises(KeyError):
        db.get("No Such Company")


def test_longest_suffix_wins_in_a_custom_table() -> None:
    db = CompanyDb(
        [
            Company("Parent", "US", ("example.com",)),
            Company("Child", "DE", ("cdn.example.com",), parent="Parent"),
            Company("Other", "FR", ("static.cdn.example.com",)),
        ]
    )
    assert db.lookup("a.static.cdn.example.com") == CompanyInfo("Other", "FR", "static.cdn.example.com")
    assert db.lookup("a.cdn.example.com") == CompanyInfo("Parent", "US", "cdn.example.com")
    assert db.lookup("www.example.com") == CompanyInfo("Parent", "US", "example.com")
    assert db.lookup("xcdn.example.com") == CompanyInfo("Parent", "US", "example.com")


def test_parent_cycle_does_not_hang() -> None:
    db = CompanyDb([Company("A", "US", ("a.example",), parent="B"), Company("B", "US", (), parent="A")])
    assert [c.name for c in db.owner_chain("A")] == ["A", "B"]
    assert db.lookup("x.a.example") is not None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"name": "x"}, "expected a JSON list"),
        ([1], "entry 0 is not an object"),
        ([{"country": "US"}], "has no name"),
        ([{"name": "X", "country": "usa"}], "alpha-2"),
        ([{"name": "X", "country": "US", "domains": "x.com"}], "domains must be a list"),
        ([{"name": "X", "country": "US", "aliases": [1]}], "aliases must be a list"),
        ([{"name": "X", "country": "US", "parent": 3}], "parent must be a string"),
    ],
)
def test_parse_errors(data: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_companies(data, "companies.json")


def test_shipped_file_parses_and_is_a_list() -> None:
    text = resources.files("audit").joinpath("data", "companies.json").read_text(encoding="utf-8")
    assert isinstance(json.loads(text), list)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("example.com:8443", "example.com"),
        ("10.0.0.1", None),
        ("::1", None),
        ("", None),
    ],
)
def test_normalize_host(raw: str, expected: str | None) -> None:
    from audit.names import host_name

    assert host_name(raw) == expected


def test_remembered_hosts_are_normalised_the_same() -> None:
    # normalize_host remembers what it gave for a str (issue 15); a second call, a str subclass and a
    # host too long to remember give what the first computation gave.
    from audit import names

    class Text(str):
        pass

    values = ["Example.COM.", "[::1]:443", "10.0.0.1:80", " a.b ", "", "x" * 400 + ".com", "A" * 300]
    first = [names._normalize_host(v) for v in values]
    for _ in range(2):
        assert [names.normalize_host(v) for v in values] == first
        assert [names.normalize_host(Text(v)) for v in values] == first
    assert "x" * 400 + ".com" not in names._normalized_hosts
