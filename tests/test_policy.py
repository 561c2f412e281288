"""audit check: deny lists over server country, company home country, company, data type, AS number and network flag."""

from __future__ import annotations

import pytest

from audit.enrich.geoip import Enricher
from audit.errors import ConfigError
from audit.policy import Policy, check, make_policy
from audit.store import Store
from tests.helpers.cases import COMPANIES, IP_BUGLY, make_case


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


@pytest.fixture
def network_case(tmp_path: object) -> tuple[Store, Enricher]:
    from pathlib import Path

    from audit.models import Connection
    from tests.helpers import locdb

    db = locdb.write(
        Path(str(tmp_path)) / "location.db",
        [locdb.Net("203.205.0.0/16", "CN", 45090), locdb.Net("5.188.10.0/24", "RU", 64666, 8)],
        {45090: "Example Tencent Net", 64666: "Example Bulletproof Host"},
    )
    s = Store(":memory:")
    s.add_connections([
        Connection(ts=1.0, source="live", protocol="https", tls="intercepted", app="com.x", host="a.example",
                   ip="203.205.1.1", port=443),
        Connection(ts=2.0, source="live", protocol="https", tls="intercepted", app="com.x", host="c2.example",
                   ip="5.188.10.7", port=8443),
    ])  # fmt: skip
    return s, Enricher(asn_table=False, location_db=db)


def test_deny_asn_and_network_flag(network_case: tuple[Store, Enricher]) -> None:
    store, enricher = network_case
    vs = check(store, make_policy(deny_asns=("AS45090", "64666"), deny_flags=("DROP",)), enricher=enricher,
               companies=COMPANIES)  # fmt: skip
    got = [(v.rule, v.value, v.fact, v.host) for v in vs]
    assert got == [
        ("deny-asn", "AS45090", "asn", "a.example"),
        ("deny-asn", "AS64666", "asn", "c2.example"),
        ("deny-network-flag", "drop", "network_flag", "c2.example"),
    ]
    assert (
        vs[0].message
        == "deny-asn AS45090: a.example [203.205.1.1:443] network AS45090 (Example Tencent Net) (1 flows)"
    )
    assert (
        vs[2].message
        == "deny-network-flag drop: c2.example [5.188.10.7:8443] on a network flagged drop (1 flows)"
    )
    d = vs[2].to_dict()
    assert (d["asn"], d["asn_org"], d["network_flags"]) == (64666, "Example Bulletproof Host", ["drop"])
    assert check(store, make_policy(deny_asns=("4134",), deny_flags=("anycast",)), enricher=enricher,
                 companies=COMPANIES) == []  # fmt: skip


@pytest.mark.parametrize("bad", ["ASX", "AS", "-1", "0", "4294967296", "AS١٢", "12.5"])
def test_bad_asn(bad: str) -> None:
    with pytest.raises(ConfigError, match="--deny-asn .*AS number"):
        make_policy(deny_asns=(bad,))


def test_bad_flag() -> None:
    with pytest.raises(ConfigError, match="--deny-network-flag 'evil': expected one of anycast"):
        make_policy(deny_flags=("evil",))
    assert not make_policy(deny_flags=("drop",)).empty and not make_policy(deny_asns=(1,)).empty


def test_cli_check_network_rules(
    network_case: tuple[Store, Enricher], tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    from pathlib import Path

    from click.testing import CliRunner

    from audit.cli import main

    store, enricher = network_case
    case = Path(str(tmp_path)) / "case.sqlite"
    with Store(case) as s:
        s.add_connections(c for _, c in store.connections())
    assert enricher.location_db is not None
    monkeypatch.setenv("AUDIT_LOCATION_DB", enricher.location_db.path)
    r = CliRunner().invoke(main, ["check", "--db", str(case), "--deny-network-flag", "drop", "--json"])
    assert r.exit_code == 3, r.output
    out = json.loads(r.stdout)
    assert out["count"] == 1 and out["violations"][0]["host"] == "c2.example"
    r = CliRunner().invoke(main, ["check", "--db", str(case), "--deny-asn", "AS45090"])
    assert r.exit_code == 3 and "deny-asn AS45090: a.example" in r.stdout
    r = CliRunner().invoke(main, ["check", "--db", str(case), "--deny-asn", "ASX"])
    assert r.exit_code != 0 and r.stderr.strip().count("\n") == 0 and "--deny-asn 'ASX'" in r.stderr
    r = CliRunner().invoke(main, ["check", "--db", str(case), "--deny-network-flag", "evil"])
    assert r.exit_code == 2  # click rejects the choice


def _scanned_case(*apks: str) -> Store:
    from audit.static.scanner import scan_path
    from tests.conftest import FIXTURES

    s = Store(":memory:")
    for name in apks:
        path = FIXTURES / name
        s.add_scan(scan_path(path), app=path.stem)
    return s


def test_static_violations_are_graded_by_their_evidence() -> None:
    """Issue 11: SDK code, an endpoint in code and a string in resources are three kinds of static
    evidence; --deny-company counts only the first two."""
    from audit.enrich.company import load_companies

    companies = load_companies()
    store = _scanned_case("labelled/privacy_tool.apk", "apks/messenger.apk")
    vs = check(store, make_policy(deny_countries=("CN",), deny_companies=("Tencent",)), companies=companies)
    kinds = {(v.rule, v.static_evidence, v.host or v.sdk) for v in vs}
    # the privacy tool only names Tencent's MTA website in its resources and assets
    assert ("deny-country", "string-in-resources", "mta.qq.com") in kinds
    assert not any(v.rule == "deny-company" and v.host == "mta.qq.com" for v in vs)
    assert not any(v.sdk == "tencent_mta" for v in vs)  # no Tencent MTA code anywhere
    # the messenger embeds Bugly and calls its host from its code
    assert ("deny-company", "sdk-code", "tencent_bugly") in kinds
    assert ("deny-company", "endpoint-in-code", "android.bugly.qq.com") in kinds
    mta = next(v for v in vs if v.host == "mta.qq.com")
    assert "string in resources" in mta.message and "resources.arsc" in mta.message
    assert all(v.static_evidence in ("sdk-code", "endpoint-in-code", "string-in-resources") for v in vs)
    assert [v.static_evidence for v in vs] == sorted(
        (v.static_evidence for v in vs), key=("sdk-code", "endpoint-in-code", "string-in-resources").index
    )
