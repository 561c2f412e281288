"""``audit scan`` through click's CliRunner: formats, -o, --db, several inputs, bad inputs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import SCAN_CSV_COLUMNS, ExitStatus, main
from audit.store import Store
from tests.conftest import FIXTURES

APKS = FIXTURES / "apks"
HOSTILE = FIXTURES / "hostile"
MESSENGER = str(APKS / "messenger.apk")
MULTIDEX = str(APKS / "multidex.apk")


@pytest.fixture
def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        return CliRunner()  # click >= 8.2 keeps stderr apart by default


def test_json_single_input_is_one_object(runner: CliRunner) -> None:
    r = runner.invoke(main, ["scan", MESSENGER, "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["app"]["package"] == "com.example.messenger"
    assert {e["value"] for e in d["endpoints"]} >= {"https://graph.facebook.com/v16.0", "10.0.0.2"}


def test_json_is_the_default_when_piped(runner: CliRunner) -> None:
    r = runner.invoke(main, ["scan", MULTIDEX])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["app"]["format"] == "apk"


def test_json_schema_keys(runner: CliRunner) -> None:
    """docs/scan-json.md lists exactly these keys."""
    d = json.loads(runner.invoke(main, ["scan", MESSENGER, "--json"]).stdout)
    assert set(d) == {
        "app", "endpoints", "sdks", "capabilities", "sdk_mentions", "permissions", "data_access", "errors", "not_read",
        "transport_security",
    }  # fmt: skip
    assert set(d["app"]) == {"package", "version_name", "version_code", "sha256", "file", "format", "signers"}
    assert set(d["endpoints"][0]) == {
        "value", "host", "domain", "kind", "placeholder", "network", "network_evidence", "sources", "classes", "sdk",
        "company", "company_country",
    }  # fmt: skip
    assert set(d["endpoints"][0]["sources"][0]) == {"kind", "file"}
    sdk_keys = {
        "id",
        "name",
        "owner",
        "owner_country",
        "category",
        "evidence",
        "class_count",
        "presence",
        "packages",
        "hosts",
    }
    assert set(d["sdks"][0]) == sdk_keys
    assert set(d["data_access"][0]) == {"type", "permissions"}
    t = d["transport_security"]
    assert set(t) == {
        "config_files", "applied_config", "manifest_config", "uses_cleartext_traffic", "debuggable", "target_sdk",
        "base_cleartext", "base_trust_anchors", "debug_trust_anchors", "domains", "code_pins", "pinning_libraries",
        "base_override_pins", "debug_override_pins", "cleartext_default", "user_cas_trusted", "pins_overridden",
    }  # fmt: skip
    assert set(t["domains"][0]) == {
        "domain", "include_subdomains", "cleartext", "pins", "pin_expiration", "trust_anchors", "file",
    }  # fmt: skip
    assert set(t["code_pins"][0]) == {"pin", "files", "classes"}


def test_several_inputs_and_a_bad_one(runner: CliRunner) -> None:
    bad = str(HOSTILE / "not_a_zip.apk")
    r = runner.invoke(main, ["scan", MESSENGER, bad, MULTIDEX, "--json"])
    assert r.exit_code == ExitStatus.ERROR
    items = json.loads(r.stdout)
    assert [i["app"]["package"] for i in items] == ["com.example.messenger", "com.example.multidex"]
    assert r.stderr.strip() == f"audit: error: {bad}: not a zip archive"
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.apk", "empty file"),
        (
            "truncated.apk",
            "truncated or corrupt zip archive (no readable central directory): 6 entries recovered",
        ),
        ("zipbomb.apk", "zip bomb"),
        ("nested.apks", "no APK inside the bundle"),
        ("corrupt.dex", "not a DEX file"),
        ("corrupt_dex.apk", "classes.dex: corrupt DEX header"),
        ("garbled_manifest.apk", "AndroidManifest.xml: garbled manifest"),
        ("missing_manifest.apk", "AndroidManifest.xml missing"),
        ("traversal.apk", "unsafe entry name '../../evil.txt' skipped"),
    ],
)
def test_bad_inputs_do_not_stop_the_others(runner: CliRunner, name: str, message: str) -> None:
    bad = str(HOSTILE / name)
    r = runner.invoke(main, ["scan", bad, MULTIDEX, "--csv"])
    assert r.exit_code == ExitStatus.ERROR
    errors = [line for line in r.stderr.splitlines() if line]
    assert errors and all(line.startswith(f"audit: error: {bad}: ") for line in errors)
    assert any(message in line for line in errors)
    assert "com.example.multidex" in r.stdout
    assert "Traceback" not in r.stderr + r.stdout


def test_directory_and_missing_path(runner: CliRunner, tmp_path: Path) -> None:
    r = runner.invoke(main, ["scan", str(HOSTILE), str(tmp_path / "gone.apk"), MULTIDEX, "--json"])
    assert r.exit_code == ExitStatus.ERROR
    assert f"audit: error: {HOSTILE}: is a directory" in r.stderr
    assert f"audit: error: {tmp_path / 'gone.apk'}: no such file" in r.stderr
    assert len(json.loads(r.stdout)) == 1


def test_csv_one_row_per_endpoint(runner: CliRunner) -> None:
    r = runner.invoke(main, ["scan", MESSENGER, MULTIDEX, "--csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert tuple(rows[0]) == SCAN_CSV_COLUMNS
    assert len(rows) == 31 + 5
    both = next(x for x in rows if x["value"] == "https://api.multidex-example.com/v1/")
    assert both["files"] == "classes.dex;classes3.dex"
    assert both["package"] == "com.example.multidex" and both["placeholder"] == "no"


def test_table_makes_hostile_strings_safe(runner: CliRunner) -> None:
    r = runner.invoke(main, ["scan", str(APKS / "hostile_strings.apk"), "--table"])
    assert r.exit_code == 0, r.output
    assert "ENDPOINT" in r.stdout and "https://evil.example-xss.com/a" in r.stdout
    assert "\x1b" not in r.stdout
    assert all(ch.isprintable() or ch == "\n" for ch in r.stdout)


def test_table_lists_sdks(runner: CliRunner) -> None:
    r = runner.invoke(main, ["scan", MULTIDEX, "--table"])
    assert r.exit_code == 0, r.output
    assert "jpush" in r.stdout and "umeng_analytics" in r.stdout
    assert "5 endpoints, 2 SDKs" in r.stdout


def test_output_file_written_after_success(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "scan.json"
    r = runner.invoke(main, ["scan", MULTIDEX, "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert json.loads(out.read_text())["app"]["package"] == "com.example.multidex"


def test_output_file_not_written_when_nothing_scanned(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "scan.json"
    r = runner.invoke(main, ["scan", str(HOSTILE / "empty.apk"), "-o", str(out)])
    assert r.exit_code == ExitStatus.ERROR
    assert not out.exists()


def test_db_stores_each_scan(runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    r = runner.invoke(main, ["scan", MESSENGER, MULTIDEX, "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    with Store(db) as store:
        scans = store.scans()
    assert [label for label, _ in scans] == ["com.example.messenger", "com.example.multidex"]
    assert len(scans[0][1].endpoints) == 31


def test_no_db_written_without_the_option(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDIT_DB", raising=False)
    r = runner.invoke(main, ["scan", MULTIDEX, "--json"])
    assert r.exit_code == 0, r.output
    assert list(tmp_path.iterdir()) == []


def test_help_has_an_example(runner: CliRunner) -> None:
    r = runner.invoke(main, ["scan", "--help"])
    assert r.exit_code == 0
    assert "Example:" in r.stdout and "audit scan app.apk" in r.stdout


def test_table_summarises_transport_security(runner: CliRunner) -> None:
    r = runner.invoke(main, ["scan", MESSENGER, "--table"])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.stdout.splitlines() if x.startswith("transport: "))
    assert "pinned in config: gw.messenger-example.cn" in line
    assert "2 pin(s) in code (com.example.messenger.net.GatewayPins)" in line
    assert "cleartext blocked by default; user CAs not trusted" in line
    assert "cleartext allowed for: legacy.messenger-example.cn, 10.0.0.2" in line
    r = runner.invoke(main, ["scan", MULTIDEX, "--table"])
    assert "transport: no pins in config; 0 pin(s) in code; cleartext blocked by default" in r.stdout
