"""CLI: audit graph, report, run, check, diff (CliRunner: exit codes and output)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import ExitStatus, main
from audit.graph import read_graph
from audit.store import Store
from tests.conftest import FIXTURES
from tests.helpers.cases import APP, make_case

COMMANDS = ("graph", "report", "run", "check", "diff")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("case") / "case.sqlite"
    with Store(path) as s:
        make_case(s, evil=True)
    return str(path)


def invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.output


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_has_example(cmd: str) -> None:
    code, out = invoke(cmd, "--help")
    assert code == 0 and "Example:" in out


@pytest.mark.parametrize(("suffix", "fmt"), [(".graphml", "graphml"), (".json", "json"), (".dot", "dot")])
def test_graph_export(db: str, tmp_path: Path, suffix: str, fmt: str) -> None:
    out = tmp_path / f"g{suffix}"
    code, text = invoke("graph", "--db", db, "-o", str(out))
    assert code == 0, text
    assert f": {fmt}, " in text and "nodes" in text
    if fmt != "dot":
        assert "host:android.bugly.qq.com" in read_graph(out)
    else:
        assert out.read_text(encoding="utf-8").startswith("digraph")


def test_graph_queries(db: str) -> None:
    code, text = invoke("graph", "--db", db, "--receivers", "imei", "--table")
    assert code == 0 and "HOST" in text and "api.example-messenger.com" in text
    code, text = invoke("graph", "--db", db, "--receivers", "imei", "--json")
    rows = json.loads(text)
    assert code == 0 and rows[0]["host"] == "api.example-messenger.com" and rows[0]["flows"] == 4
    code, text = invoke("graph", "--db", db, "--paths-to", "jurisdiction:CN", "--json")
    paths = json.loads(text)
    assert code == 0 and paths and all(p[0] == f"app:{APP}" and p[-1] == "jurisdiction:CN" for p in paths)
    code, text = invoke("graph", "--db", db, "--paths-to", "jurisdiction:CN", "--table")
    assert code == 0 and f"app:{APP} → sdk:tencent_bugly → company:Tencent → jurisdiction:CN" in text
    code, text = invoke("graph", "--db", db, "--paths-to", "country:KP", "--table")
    assert code == 0 and "no path" in text


@pytest.mark.parametrize(
    "args",
    [(), ("--receivers", "imei", "--paths-to", "country:CN"), ("--receivers", "imei", "--format", "dot")],
)
def test_graph_usage_errors(db: str, args: tuple[str, ...]) -> None:
    code, text = invoke("graph", "--db", db, *args)
    assert code == ExitStatus.USAGE and text.startswith("audit: error: ") and text.count("\n") == 1


def test_graph_bad_target_is_one_line(db: str) -> None:
    code, text = invoke("graph", "--db", db, "--paths-to", "Tencent")
    assert code == ExitStatus.ERROR and text.count("\n") == 1 and "country:CN" in text


def test_missing_case_file(tmp_path: Path) -> None:
    for args in (("report", "-o", str(tmp_path / "r.html")), ("graph", "-o", str(tmp_path / "g.json")),
                 ("check", "--deny-data", "imei")):  # fmt: skip
        code, text = invoke(*args, "--db", str(tmp_path / "nope.sqlite"))
        assert code == ExitStatus.ERROR and "no such case file" in text
    assert not (tmp_path / "nope.sqlite").exists()


def test_report(db: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    code, text = invoke("report", "--db", db, "-o", str(out))
    assert code == 0, text
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "&lt;script&gt;" in html
    assert "5 destinations" in text


def test_report_not_written_on_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    code, text = invoke("report", "--db", str(bad), "-o", str(tmp_path / "r.html"))
    assert code == ExitStatus.ERROR and "bad.sqlite" in text and "Traceback" not in text
    assert not (tmp_path / "r.html").exists()


def test_check_exit_codes(db: str) -> None:
    code, text = invoke("check", "--db", db, "--deny-company", "Tencent", "--deny-data", "imei", "--table")
    assert code == ExitStatus.POLICY == 3
    assert "deny-data imei: api.example-messenger.com" in text and "deny-company Tencent" in text
    code, text = invoke("check", "--db", db, "--deny-country", "KP", "--table")
    assert code == 0 and "no violations" in text
    code, text = invoke("check", "--db", db, "--deny-data", "imei", "--json")
    data = json.loads(text)
    assert code == 3 and data["count"] == len(data["violations"]) == 1
    assert data["violations"][0]["fact"] == "data_type"
    code, text = invoke("check", "--db", db)
    assert code == ExitStatus.USAGE
    # issue 13: a country name that maps to one code is read as it, and the reading is said
    code, text = invoke("check", "--db", db, "--deny-country", "China", "--table")
    assert code == ExitStatus.POLICY and "'China' read as CN (China)" in text and "deny-country CN" in text
    code, text = invoke("check", "--db", db, "--deny-country", "CHN")
    assert code == ExitStatus.USAGE and "two-letter" in text and "did you mean CN (China)?" in text


def test_diff(db: str) -> None:
    code, text = invoke("diff", db, db, "--json")
    assert code == 0 and json.loads(text)["changed"] is False
    code, text = invoke("diff", db, db, "--table")
    assert code == 0 and "No change" in text


def test_run_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("audit.static.scanner")
    apk = FIXTURES / "apks" / "messenger.apk"
    har = FIXTURES / "captures" / "messenger.har"
    device = FIXTURES / "captures" / "device.toml"
    db = tmp_path / "demo.sqlite"
    out = tmp_path / "demo.html"
    args = ("run", str(apk), "--capture", str(har), "--device", str(device), "--db", str(db), "-o", str(out))
    code, text = invoke(*args)
    assert code == 0, text
    assert (
        "scanned" in text
        and "connections" in text
        and out.read_text(encoding="utf-8").startswith("<!DOCTYPE")
    )
    with Store(db) as s:
        n = s.connection_count()
        assert n > 0 and s.apps() == ["com.example.messenger"]
    code, text = invoke(*args)  # idempotent: no second scan, no double import
    assert code == 0 and "already scanned" in text and "already imported" in text
    with Store(db) as s:
        assert s.connection_count() == n and len(s.scans()) == 1


def test_run_bad_apk_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("audit.static.scanner")
    bad = tmp_path / "bad.apk"
    bad.write_bytes(b"PK\x03\x04garbage")
    code, text = invoke("run", str(bad), "--db", str(tmp_path / "c.sqlite"), "-o", str(tmp_path / "r.html"))
    assert code == ExitStatus.ERROR and "bad.apk" in text and "Traceback" not in text
    assert not (tmp_path / "r.html").exists()
