"""`audit signatures import|list|show` through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from tests.conftest import SHARED_DATA


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path / "home"))
    return CliRunner()


def exodus_file(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "trackers": {
                    "101": {
                        "id": 101,
                        "name": "Acme Tracker",
                        "code_signature": "com.acme.track.",
                        "network_signature": "\\.acmetrack\\.io",
                        "website": "https://acme.example",
                        "categories": ["Advertisement"],
                    },
                    "102": {
                        "id": 102,
                        "name": "Bugly again",
                        "code_signature": "com.tencent.bugly.",
                        "network_signature": "",
                        "website": "https://bugly.qq.com",
                        "categories": [],
                    },
                }
            }
        ),  # fmt: skip
        encoding="utf-8",
    )
    return path


def test_list_json_filters(runner: CliRunner) -> None:
    r = runner.invoke(main, ["signatures", "list", "--json", "--country", "RU"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert {"yandex_appmetrica", "mytracker", "vk_sdk"} <= {x["id"] for x in rows}
    assert all(x["owner_country"] == "RU" for x in rows)
    assert all(isinstance(x["code_prefixes"], list) for x in rows)


def test_list_csv_and_table(runner: CliRunner) -> None:
    r = runner.invoke(main, ["signatures", "list", "--csv", "--category", "push", "--country", "CN"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert {"jpush", "xiaomi_push", "hms_push"} <= {x["id"] for x in rows}
    jpush = next(x for x in rows if x["id"] == "jpush")
    assert jpush["code_prefixes"].split(";")[:2] == ["cn.jpush.android", "cn.jiguang"]
    r = runner.invoke(main, ["signatures", "list", "--table", "--category", "attribution"])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0].split()[:3] == ["ID", "NAME", "OWNER"]
    assert "appsflyer" in r.output and "AppsFlyer" in r.output


def test_list_rejects_unknown_category(runner: CliRunner) -> None:
    r = runner.invoke(main, ["signatures", "list", "--category", "spyware"])
    assert r.exit_code == 2
    assert "unknown category" in r.output


def test_show(runner: CliRunner) -> None:
    r = runner.invoke(main, ["signatures", "show", "tencent_bugly", "--table"])
    assert r.exit_code == 0, r.output
    assert "owner:          Tencent" in r.output and "bugly.qq.com" in r.output
    r = runner.invoke(main, ["signatures", "show", "pangle", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert (d["owner"], d["owner_country"], d["category"]) == ("ByteDance", "CN", "advertising")


def test_show_unknown(runner: CliRunner) -> None:
    r = runner.invoke(main, ["signatures", "show", "no_such_sdk"])
    assert r.exit_code == 2  # issue 13: a name that exists nowhere is a usage error, in one line
    assert r.output.strip() == "audit: error: no_such_sdk: no such SDK; see `audit signatures list`"
    r = runner.invoke(main, ["signatures", "show", "tencent_bugli"])
    assert r.exit_code == 2 and "did you mean tencent_bugly?" in r.output


def test_import_to_default_overlay_then_list(runner: CliRunner, tmp_path: Path) -> None:
    src = exodus_file(tmp_path / "trackers.json")
    r = runner.invoke(main, ["signatures", "import", str(src), "--table"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("2 added, 0 updated, 0 skipped (1 merged into builtin SDKs")
    overlay = tmp_path / "home" / "signatures-overlay.json"
    assert str(overlay) in r.output and overlay.is_file()
    r = runner.invoke(main, ["signatures", "show", "exodus_101", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["source"] == "exodus:trackers.json"
    r = runner.invoke(main, ["signatures", "show", "exodus_102", "--json"])  # merged: shows the builtin SDK
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["id"] == "tencent_bugly" and d["merged_from"] == ["exodus_102"]


def test_import_explicit_overlay(runner: CliRunner, tmp_path: Path) -> None:
    src = exodus_file(tmp_path / "trackers.json")
    overlay = tmp_path / "elsewhere" / "o.json"
    r = runner.invoke(main, ["signatures", "import", str(src), "--overlay", str(overlay), "--table"])
    assert r.exit_code == 0, r.output
    assert overlay.is_file() and not (tmp_path / "home" / "signatures-overlay.json").exists()
    r = runner.invoke(main, ["signatures", "list", "--json", "--overlay", str(overlay)])
    assert "exodus_101" in {x["id"] for x in json.loads(r.output)}


@pytest.mark.parametrize(
    "content", [b"{oops", b"\xff\xfe\xfd", b'{"trackers": []}', b'{"trackers": {"1": 2}}']
)
def test_import_malformed_is_one_line(runner: CliRunner, tmp_path: Path, content: bytes) -> None:
    src = tmp_path / "bad.json"
    src.write_bytes(content)
    r = runner.invoke(main, ["signatures", "import", str(src), "--table"])
    assert r.exit_code == 1
    assert r.exception is None or isinstance(r.exception, SystemExit)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("audit: error: ") and "bad.json" in lines[0]
    assert "Traceback" not in r.output


def test_broken_overlay_is_reported(runner: CliRunner, tmp_path: Path) -> None:
    overlay = tmp_path / "o.json"
    overlay.write_text("[{]", encoding="utf-8")
    r = runner.invoke(main, ["signatures", "list", "--json", "--overlay", str(overlay)])
    assert r.exit_code == 1
    assert "o.json: signature overlay is not valid JSON" in r.output


@pytest.mark.skipif(
    not (SHARED_DATA / "exodus_trackers.json").is_file(), reason="shared Exodus snapshot not available"
)
def test_import_real_snapshot(runner: CliRunner, tmp_path: Path) -> None:
    overlay = tmp_path / "o.json"
    r = runner.invoke(
        main, ["signatures", "import", str(SHARED_DATA / "exodus_trackers.json"), "--overlay", str(overlay)]
    )
    assert r.exit_code == 0, r.output
    added = json.loads(r.output)["added"]  # piped: the summary as JSON (issue 13)
    assert added > 400
    r = runner.invoke(
        main, ["signatures", "show", "facebook_audience_network", "--json", "--overlay", str(overlay)]
    )
    d = json.loads(r.output)
    assert d["source"] == "builtin" and d["merged_from"]


@pytest.mark.parametrize("cmd", ["import", "list", "show"])
def test_help_has_example(runner: CliRunner, cmd: str) -> None:
    r = runner.invoke(main, ["signatures", cmd, "--help"])
    assert r.exit_code == 0, r.output
    assert "Example:" in r.output
