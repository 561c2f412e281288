"""audit check: deny lists over server country, company home country, company and data type."""

from __future__ import annotations

import pytest

from audit.enrich.geoip import Enricher
from audit.errors import ConfigError
from audit.policy import Policy, check, make_policy
from audit.store import Store
from tests.test_graph import COMPANIES, IP_BUGLY, make_case


@pytest.fixture(scope="module")
def store() -> Store:
    s = Store(":memory:")
    make_case(s)
    return s


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher()


def _check(store: Store, enricher: Enricher, **kw: tuple[str, ...]) -> list:
    return check(store, make_policy(**kw), enricher=enricher, companies=COMPANIES)


def test_deny_country_names_the_fact(store: Store, enricher: Enricher) -> None:
    vs = _check(store, enricher, deny_countries=("cn",))
    facts = {(v.fact, v.evidence, v.host, v.sdk) for v in vs}
    assert ("company_country", "observed", "android.bugly.qq.com", None) in facts
    assert ("sdk_owner_country", "static", None, "tencent_bugly") in facts
    server = enricher.ip_info(IP_BUGLY).country
    assert (("server_country", "observed", "android.bugly.qq.com", None) in facts) == (server == "CN")
    v = next(v for v in vs if v.fact == "company_country")
    assert (v.value, v.company, v.ip, v.port, v.flows) == ("CN", "Tencent", IP_BUGLY, 443, 5)
    assert "owner Tencent is based in CN" in v.message and "(5 flows)" in v.message
    assert vs[0].evidence == "observed" and vs[-1].evidence == "static"


def test_deny_server_country(store: Store, enricher: Enricher) -> None:
    cc = enricher.ip_info(IP_BUGLY).country
    if not cc:
        pytest.skip("no geo-IP answer for the test IP")
    vs = _check(store, enricher, deny_countries=(cc,))
    assert any(v.fact == "server_country" and v.host == "android.bugly.qq.com" for v in vs)


def test_deny_company_uses_owner_chain_and_is_case_insensitive(store: Store, enricher: Enricher) -> None:
    vs = _check(store, enricher, deny_companies=("tencent", "Meta"))
    got = {(v.fact, v.value, v.host, v.sdk) for v in vs}
    assert ("company", "tencent", "android.bugly.qq.com", None) in got
    assert ("sdk_owner", "tencent", None, "tencent_bugly") in got
    assert ("sdk_owner", "Meta", None, "facebook") in got  # alias of Meta Platforms


def test_deny_data(store: Store, enricher: Enricher) -> None:
    vs = _check(store, enricher, deny_data=("IMEI",))
    assert [(v.fact, v.value, v.host) for v in vs] == [("data_type", "imei", "api.example-messenger.com")]
    assert vs[0].to_dict()["message"].startswith("deny-data imei: api.example-messenger.com")


def test_no_violation(store: Store, enricher: Enricher) -> None:
    assert _check(store, enricher, deny_countries=("KP",), deny_data=("serial",)) == []


@pytest.mark.parametrize("bad", ["CHN", "C", "1A", "ü1"])
def test_bad_country_code(bad: str) -> None:
    with pytest.raises(ConfigError, match="two-letter"):
        make_policy(deny_countries=(bad,))


def test_empty_policy() -> None:
    assert Policy().empty and not make_policy(deny_data=("imei",)).empty
