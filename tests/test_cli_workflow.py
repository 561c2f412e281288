"""Issue 13, the analyst's workflow: `audit check` validates before it judges, one output
convention and one error prefix for every command, output files, `audit diff`. Through click's
CliRunner, and through a real `audit` process for each command family."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import ExitStatus, main
from audit.enrich.country import country_code
from audit.errors import OptionError
from audit.models import DATA_TYPES, Connection, DataFinding, HttpRequestData
from audit.policy import data_type, make_policy
from audit.store import Store
from tests.conftest import FIXTURES
from tests.helpers.cases import APP, make_case

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = FIXTURES / "captures"
APKS = FIXTURES / "apks"


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), env=env)
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("case") / "case.sqlite"
    with Store(path) as s:
        make_case(s)
    return str(path)


@pytest.fixture(scope="module")
def static_case(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A static scan and no traffic (the messenger fixture embeds Bugly, Tencent, CN)."""
    from audit.static.scanner import scan_path

    path = tmp_path_factory.mktemp("static") / "static.sqlite"
    with Store(path) as s:
        s.add_scan(scan_path(APKS / "messenger.apk"))
    return str(path)


@pytest.fixture(scope="module")
def empty_case(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("empty") / "empty.sqlite"
    Store(path).close()
    return str(path)


# ---- 1. audit check validates before it judges --------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--deny-data", "notatype"], "--deny-data 'notatype': not a data type"),
        (["--deny-data", "imie"], "did you mean imsi or imei?"),
        (
            ["--deny-company", "Tencnt"],
            "--deny-company 'Tencnt': not in the company database; did you mean 'Tencent'",
        ),
        (["--deny-country", "XX"], "--deny-country 'XX': not an ISO 3166-1 alpha-2 country code"),
        (["--deny-country", "Korea"], "names more than one country (KP (North Korea), KR (South Korea))"),
        (["--app", "com.tencnt.mm", "--deny-country", "CN"], "--app 'com.tencnt.mm': no such app label"),
    ],
)
def test_check_refuses_what_names_nothing(case: str, args: list[str], says: str) -> None:
    code, out, err = invoke("check", "--db", case, *args)
    assert code == ExitStatus.USAGE, (out, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("audit: error: ") and says in err, err


def test_unknown_app_lists_the_labels_and_the_closest(case: str) -> None:
    code, _, err = invoke("check", "--db", case, "--app", "com.example.Messenger", "--deny-country", "CN")
    assert code == ExitStatus.USAGE
    assert f"did you mean '{APP}'?" in err and f"(labels: {APP})" in err


@pytest.mark.parametrize(
    "cmd",
    [
        ["report", "-o", "r.html"],
        ["graph", "-o", "g.json"],
        ["destinations"],
        ["pii"],
        ["graph", "--receivers", "imei"],
    ],
)
def test_app_is_validated_by_every_command(case: str, cmd: list[str], tmp_path: Path) -> None:
    args = [a if not a.endswith((".html", ".json")) else str(tmp_path / a) for a in cmd]
    code, out, err = invoke(*args, "--db", case, "--app", "Com.Example.Messenger")
    assert code == ExitStatus.USAGE and "no such app label" in err and f"did you mean '{APP}'?" in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_country_by_name_is_read_and_said(case: str) -> None:
    code, out, err = invoke("check", "--db", case, "--deny-country", "China", "--json")
    assert code == ExitStatus.POLICY
    assert "audit: --deny-country 'China' read as CN (China)" in err
    data = json.loads(out)
    assert data["status"] == "violated" and data["notes"] == ["--deny-country 'China' read as CN (China)"]
    assert {v["value"] for v in data["violations"] if v["rule"] == "deny-country"} == {"CN"}


@pytest.mark.parametrize(
    ("value", "code"),
    [("cn", "CN"), ("China", "CN"), ("south korea", "KR"), ("Türkiye", "TR"), ("turkey", "TR"), ("UK", "GB"),
     ("United States", "US"), ("Viet Nam", "VN"), ("Taiwan", "TW")],
)  # fmt: skip
def test_country_code_accepts_codes_and_unambiguous_names(value: str, code: str) -> None:
    assert country_code(value)[0] == code
    assert (country_code(value)[1] is None) == (value.upper() == code)


@pytest.mark.parametrize(("value", "says"), [("XX", "not an ISO"), ("ZZ", "not an ISO"), ("Congo", "more than one"),
                                             ("CHN", "did you mean CN (China)?"), ("Chna", "did you mean CN (China)"),
                                             ("", "two-letter")])  # fmt: skip
def test_country_code_refuses(value: str, says: str) -> None:
    with pytest.raises(OptionError, match=re.escape(says)):
        country_code(value)


def test_data_types_are_the_documented_ones() -> None:
    """docs/pii.md's table of data types is DATA_TYPES, and the detectors report nothing else."""
    text = (ROOT / "docs" / "pii.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `data_type` |"))
    assert re.findall(r"`([a-z_]+(?::<name>)?)`", row.split("|")[2]) == [*DATA_TYPES, "custom:<name>"]
    from audit.traffic.pii import PiiDetector
    from tests.helpers.pii_corpus import PROFILE, generate

    detector = PiiDetector(PROFILE)
    seen = {f.data_type for lab in generate(n=300) for f in detector.scan(lab.req)}
    assert seen and {t for t in seen if not t.startswith("custom:")} <= set(DATA_TYPES)
    assert data_type("IMEI") == "imei" and data_type("custom:Loyalty_ID") == "custom:loyalty_id"
    with pytest.raises(OptionError):
        data_type("custom:")


def test_make_policy_validates_companies_against_the_table() -> None:
    assert make_policy(deny_companies=("tencent", "Facebook")).deny_companies == ("Facebook", "tencent")
    with pytest.raises(OptionError, match="did you mean 'ByteDance'"):
        make_policy(deny_companies=("Bytedanse",))


def test_empty_case_is_not_enough_evidence(empty_case: str) -> None:
    for rule in (["--deny-country", "CN"], ["--deny-data", "imei"], ["--deny-asn", "4134"]):
        code, out, err = invoke("check", "--db", empty_case, *rule, "--table")
        assert code == ExitStatus.INSUFFICIENT_EVIDENCE == 4, (out, err)
        assert "audit: not enough evidence: the case is empty" in err and "no violations" not in out
    code, out, _ = invoke("check", "--db", empty_case, "--deny-country", "CN", "--app", "com.x", "--json")
    data = json.loads(out)
    assert code == 4 and data["status"] == "insufficient-evidence" and data["count"] == 0
    assert data["insufficient_evidence"] == ["the case is empty for app 'com.x': no static scan and no traffic "
                                             "(did the scan or the import fail?)"]  # fmt: skip


def test_a_data_rule_without_inspected_traffic_is_not_enough_evidence(static_case: str) -> None:
    code, out, err = invoke("check", "--db", static_case, "--deny-data", "imei", "--table")
    assert code == ExitStatus.INSUFFICIENT_EVIDENCE
    assert "--deny-data needs inspected traffic" in err and "no traffic recorded (static scan only)" in err
    # a country rule is judged from the static evidence alone: Bugly's owner is based in CN
    code, out, err = invoke(
        "check", "--db", static_case, "--deny-country", "CN", "--deny-data", "imei", "--table"
    )
    assert code == ExitStatus.POLICY and "SDK tencent_bugly owner Tencent is based in CN" in out
    assert "not enough evidence: --deny-data" in err  # the other rule's gap is still said
    code, _, _ = invoke("check", "--db", static_case, "--deny-country", "KP")
    assert code == ExitStatus.OK


def test_opaque_traffic_is_not_inspected(tmp_path: Path) -> None:
    """Pinned and passed-through connections carry no readable content: a data rule cannot pass on them;
    one intercepted request with stored content is enough."""
    db = tmp_path / "opaque.sqlite"
    with Store(db) as s:
        s.add_connections([
            Connection(1.0, "live", "tls", "failed", "com.x", "pinned.example", ip="8.8.8.8", port=443),
            Connection(2.0, "live", "tls", "passthrough", "com.x", "pass.example", ip="8.8.4.4", port=443),
        ])  # fmt: skip
        assert s.evidence_counts()["inspected"] == 0
    code, _, err = invoke("check", "--db", str(db), "--deny-data", "imei")
    assert code == 4 and "2 connections recorded, none inspected" in err
    with Store(db) as s:
        s.add_connections([
            Connection(3.0, "live", "https", "intercepted", "com.x", "api.example", ip="1.1.1.1", port=443,
                       request=HttpRequestData("https://api.example/v1", (("user-agent", "x"),), b"")),
        ])  # fmt: skip
        assert s.evidence_counts("com.x")["inspected"] == 1 and s.evidence_counts("other")["connections"] == 0
    code, out, _ = invoke("check", "--db", str(db), "--deny-data", "imei", "--table")
    assert code == ExitStatus.OK and out.strip() == "no violations"
    with Store(db) as s:
        s.add_connections([
            Connection(4.0, "live", "http", "none", "com.x", "ads.example", ip="1.0.0.1", port=80,
                       findings=(DataFinding("imei", "query:imei", "plain", "pattern", "35•••0"),)),
        ])  # fmt: skip
    code, out, _ = invoke("check", "--db", str(db), "--deny-data", "imei", "--table")
    assert code == ExitStatus.POLICY and "deny-data imei: ads.example" in out


# ---- 2. one output convention -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cmd",
    [
        ["destinations", "--db", "{case}"],
        ["pii", "--db", "{case}"],
        ["check", "--db", "{case}", "--deny-country", "KP"],
        ["diff", "{case}", "{case}"],
        ["graph", "--db", "{case}", "--receivers", "imei"],
        ["graph", "--db", "{case}", "--paths-to", "jurisdiction:CN"],
        ["signatures", "list", "--country", "CN"],
        ["signatures", "show", "tencent_bugly"],
        ["geoip", "info"],
        ["geoip", "lookup", "1.1.1.1"],
        ["corpus", "--db", "{case}"],
        ["scan", str(APKS / "multidex.apk")],
    ],
    ids=lambda c: " ".join(x for x in c if not x.startswith(("{", "/"))),
)
def test_every_result_command_speaks_the_same_formats(case: str, cmd: list[str]) -> None:
    args = [a.replace("{case}", case) for a in cmd]
    code, out, _ = invoke(*args)  # piped: JSON
    assert code == 0, out
    json.loads(out)
    code, out, _ = invoke(*args, "--format", "json")
    assert code == 0 and json.loads(out) is not None
    code, out, _ = invoke(*args, "--csv")
    assert code == 0 and next(csv.reader(io.StringIO(out)))  # a header row
    code, out, _ = invoke(*args, "--table")
    assert code == 0 and out.strip() and not out.lstrip().startswith(("{", "["))
    code, out, err = invoke(*args, "--json", "--table")
    assert code == ExitStatus.USAGE and out == "" and err.count("\n") == 1
    assert err.startswith("audit: error: --json and --table cannot be used together")


def test_tables_fit_the_terminal(case: str) -> None:
    code, out, _ = invoke("destinations", "--db", case, "--table", env={"COLUMNS": "100"})
    assert code == 0
    lines = out.splitlines()
    assert len(lines) > 3 and max(len(line) for line in lines) <= 100 and "…" in out
    code, wide, _ = invoke("destinations", "--db", case, "--table", env={"COLUMNS": "400"})
    assert max(len(line) for line in wide.splitlines()) > 100


def test_geoip_lookup_resolves_nothing(tmp_path: Path) -> None:
    code, out, err = invoke("geoip", "lookup", "1.1.1.1", "www.qq.com")
    assert code == ExitStatus.USAGE and out == ""
    assert err.startswith("audit: error: www.qq.com: not an IP address") and err.count("\n") == 1


def test_signatures_country_is_validated_like_check(case: str) -> None:
    code, out, err = invoke("signatures", "list", "--country", "China", "--json")
    assert code == 0 and "read as CN (China)" in err
    rows = json.loads(out)
    assert rows and {r["owner_country"] for r in rows} == {"CN"}
    for cmd in (["signatures", "list", "--country", "XX"], ["check", "--db", case, "--deny-country", "XX"]):
        code, out, err = invoke(*cmd)
        assert code == ExitStatus.USAGE and "'XX': not an ISO 3166-1 alpha-2 country code" in err


def test_every_error_has_one_prefix(case: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.apk"
    bad.write_bytes(b"not a zip")
    for args in (
        ["scan", str(bad)],
        ["import", str(bad), "--db", str(tmp_path / "c.sqlite")],
        ["report", "--db", str(tmp_path / "none.sqlite"), "-o", str(tmp_path / "r.html")],
        ["graph", "--db", case, "--paths-to", "Tencent"],
        ["signatures", "show", "nope"],
        ["geoip", "lookup", "nope"],
        ["diff", str(bad), str(bad)],
        ["check", "--db", case],
        ["scan"],
        ["destinations", "--bogus"],
    ):
        code, out, err = invoke(*args)
        assert code in (ExitStatus.ERROR, ExitStatus.USAGE), args
        errors = [line for line in err.splitlines() if "error" in line.lower()]
        assert errors and all(line.startswith("audit: error: ") for line in errors), (args, err)
        assert "Error:" not in err and "Traceback" not in err


# ---- 3. output files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cmd",
    [["report", "--db", "{case}"], ["graph", "--db", "{case}"], ["destinations", "--db", "{case}", "--csv"],
     ["pii", "--db", "{case}"], ["corpus", "--db", "{case}"], ["scan", str(APKS / "multidex.apk")]],
    ids=lambda c: c[0],
)  # fmt: skip
def test_output_creates_missing_folders(case: str, tmp_path: Path, cmd: list[str]) -> None:
    target = tmp_path / "reports" / "deep" / ("out.json" if cmd[0] == "graph" else "out.html")
    code, out, err = invoke(*[a.replace("{case}", case) for a in cmd], "-o", str(target))
    assert code == 0, err
    assert target.stat().st_size > 0 and os.listdir(target.parent) == [target.name]


def test_output_error_names_the_folder_not_a_temporary_file(case: str, tmp_path: Path) -> None:
    (tmp_path / "reports").write_text("in the way", encoding="utf-8")
    code, out, err = invoke("report", "--db", case, "-o", str(tmp_path / "reports" / "app.html"))
    assert code == ExitStatus.ERROR and err.count("\n") == 1
    assert f"cannot create the folder {tmp_path / 'reports'}" in err and ".tmp" not in err


# ---- 6. audit diff ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The messenger as 2.6.2 (53) without location and SMS, then as 3.4.1 (78) with them."""
    from audit.static.scanner import scan_path

    scan = scan_path(APKS / "messenger.apk")
    gained = {"android.permission.ACCESS_FINE_LOCATION", "android.permission.ACCESS_COARSE_LOCATION",
              "android.permission.READ_SMS"}  # fmt: skip
    old = dataclasses.replace(
        scan, app=dataclasses.replace(scan.app, version_name="2.6.2", version_code="53"),
        permissions=tuple(p for p in scan.permissions if p not in gained), sdks=scan.sdks[:1],
    )  # fmt: skip
    new = dataclasses.replace(
        scan, app=dataclasses.replace(scan.app, version_name="3.4.1", version_code="78")
    )
    folder = tmp_path_factory.mktemp("versions")
    paths = []
    for name, result in (("old", old), ("new", new)):
        with Store(folder / f"{name}.sqlite") as s:
            s.add_scan(result)
        paths.append(str(folder / f"{name}.sqlite"))
    return paths[0], paths[1]


def test_diff_versions_data_kinds_and_order(versions: tuple[str, str]) -> None:
    old, new = versions
    code, out, _ = invoke("diff", old, new, "--table")
    assert code == 0
    lines = out.splitlines()
    assert lines[1] == "Version: com.example.messenger 2.6.2 (53) → 3.4.1 (78)"
    assert "  + location (fine)" in lines and "  + location (coarse)" in lines and "  + SMS" in lines
    titles = [line.split(":")[0] for line in lines[2:] if not line.startswith(" ")]
    assert (
        titles.index("Data the app can reach (permissions)")
        < titles.index("SDKs")
        < titles.index("Permissions")
    )
    data = json.loads(invoke("diff", old, new, "--json")[1])
    assert (data["old_versions"], data["new_versions"]) == (["com.example.messenger 2.6.2 (53)"],
                                                            ["com.example.messenger 3.4.1 (78)"])  # fmt: skip
    assert [c["category"] for c in data["changes"]][:2] == ["companies", "company_countries"]
    access = next(c for c in data["changes"] if c["category"] == "data_access")
    assert set(access["added"]) == {"location (fine)", "location (coarse)", "SMS"}
    rows = list(csv.DictReader(io.StringIO(invoke("diff", old, new, "--csv")[1])))
    assert {"category": "data_access", "change": "added", "value": "SMS"} in rows
    assert {"category": "version", "change": "added", "value": "com.example.messenger 3.4.1 (78)"} in rows


def test_diff_exit_code(versions: tuple[str, str]) -> None:
    old, new = versions
    assert invoke("diff", old, new)[0] == 0  # without --exit-code a change is not a failure
    assert invoke("diff", old, new, "--exit-code")[0] == 1
    assert invoke("diff", old, old, "--exit-code")[0] == 0


# ---- a real process per command family ----------------------------------------------------------


def _audit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "audit", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)  # fmt: skip


def test_subprocess_check_and_diff_exit_codes(case: str, empty_case: str, versions: tuple[str, str]) -> None:
    r = _audit("check", "--db", case, "--deny-data", "imei")
    assert r.returncode == 3 and json.loads(r.stdout)["count"] == 1  # piped: JSON
    r = _audit("check", "--db", empty_case, "--deny-data", "imei")
    assert r.returncode == 4 and "not enough evidence: the case is empty" in r.stderr
    r = _audit("check", "--db", case, "--deny-company", "Tencnt")
    assert r.returncode == 2 and r.stderr.startswith("audit: error: --deny-company 'Tencnt'")
    r = _audit("diff", *versions, "--exit-code", "--csv")
    assert r.returncode == 1 and r.stdout.startswith("category,change,value\n")


def test_subprocess_signatures_geoip_pii_corpus_batch(case: str, tmp_path: Path) -> None:
    r = _audit("signatures", "list", "--country", "China", "--table")
    assert r.returncode == 0 and "read as CN" in r.stderr and max(map(len, r.stdout.splitlines())) <= 100
    r = _audit("geoip", "lookup", "example.com")
    assert r.returncode == 2 and "not an IP address" in r.stderr
    r = _audit("geoip", "info", "--csv")
    assert r.returncode == 0 and r.stdout.startswith("role,database,facts,path")
    r = _audit("pii", "--db", case, "--app", "nope")
    assert r.returncode == 2 and "no such app label" in r.stderr
    r = _audit("batch", str(APKS / "multidex.apk"), "--db", str(tmp_path / "corpus.sqlite"), "--workers", "1")
    assert r.returncode == 0 and json.loads(r.stdout)["done"] == 1
    r = _audit("corpus", "--db", str(tmp_path / "corpus.sqlite"), "-o", str(tmp_path / "out" / "corpus.html"))
    assert r.returncode == 0 and (tmp_path / "out" / "corpus.html").is_file()
