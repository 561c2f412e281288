"""`audit pii`: re-scan stored requests of a case file; masked values only in every output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.models import Connection, DataFinding, HttpRequestData
from audit.rescan import rescan_store
from audit.store import Store
from audit.traffic.pii import PiiDetector

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "device.toml"
IMEI = "358240051111110"  # values of docs/examples/device.toml
AAID = "38400000-8cf0-11bd-b23e-10b96e40000d"
EMAIL = "jane.doe@example.org"
RAW = (IMEI, AAID, EMAIL, "9774d56d682e549c")


def _conn(
    host: str, app: str, url: str, body: bytes = b"", findings: tuple[DataFinding, ...] = ()
) -> Connection:
    return Connection(
        ts=1.0,
        source="har",
        protocol="https",
        app=app,
        host=host,
        ip="203.0.113.5",
        port=443,
        findings=findings,
        request=HttpRequestData(url=url, headers=(("Content-Type", "application/json"),), body=body),
    )


@pytest.fixture
def case(tmp_path: Path) -> Path:
    db = tmp_path / "case.sqlite"
    stale = DataFinding("phone", "query:x", "plain", "pattern", "+4•••••••78")
    with Store(db) as s:
        s.add_connections(
            [
                _conn("ads.example.net", "app.a", f"https://ads.example.net/v1?gaid={AAID}", findings=(stale,)),
                _conn("ads.example.net", "app.a", "https://ads.example.net/v1",
                      json.dumps({"dev": {"h": "9774d56d682e549c", "imei": IMEI}}).encode()),
                _conn("api.example.cn", "app.b", "https://api.example.cn/login", json.dumps({"user": EMAIL}).encode()),
                _conn("cdn.example.com", "app.b", "https://cdn.example.com/logo.png"),
            ]
        )  # fmt: skip
        # a connection without stored request content keeps its findings
        s.add_connections(
            [Connection(ts=2.0, source="pcap", protocol="tls", host="x.example", findings=(stale,))]
        )
    return db


def _findings(db: Path) -> dict[str, set[tuple[str, str, str]]]:
    out: dict[str, set[tuple[str, str, str]]] = {}
    with Store(db) as s:
        for _, c in s.connections():
            out.setdefault(c.host or "", set()).update(
                (f.data_type, f.location, f.confidence) for f in c.findings
            )
    return out


def test_rescan_replaces_findings_and_summarises(case: Path) -> None:
    r = CliRunner().invoke(main, ["pii", "--db", str(case), "--device", str(EXAMPLE), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["requests"] == 4 and doc["with_findings"] == 3
    rows = {(x["data_type"], x["host"]): x for x in doc["summary"]}
    assert rows[("aaid", "ads.example.net")]["confidence"] == "known"
    assert rows[("aaid", "ads.example.net")]["locations"] == ["query:gaid"]
    assert rows[("imei", "ads.example.net")]["masked"] == ["35•••••••••1110"]
    assert rows[("android_id", "ads.example.net")]["locations"] == ["body.json:$.dev.h"]
    assert rows[("email", "api.example.cn")]["requests"] == 1
    assert ("phone", "ads.example.net") not in rows
    for raw in RAW:
        assert raw not in r.output
    f = _findings(case)
    assert ("phone", "query:x", "pattern") not in f["ads.example.net"]  # stale finding replaced
    assert ("aaid", "query:gaid", "known") in f["ads.example.net"]
    assert f["cdn.example.com"] == set()
    assert f["x.example"] == {("phone", "query:x", "pattern")}  # no stored request: untouched


def test_without_profile_patterns_only_and_app_filter(case: Path) -> None:
    r = CliRunner().invoke(main, ["pii", "--db", str(case), "--app", "app.b", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["requests"] == 2
    assert [(x["data_type"], x["host"], x["confidence"]) for x in doc["summary"]] == [
        ("email", "api.example.cn", "pattern")
    ]


@pytest.mark.parametrize("fmt", ["--table", "--csv"])
def test_table_and_csv_show_masked_values_only(case: Path, fmt: str) -> None:
    r = CliRunner().invoke(main, ["pii", "--db", str(case), "--device", str(EXAMPLE), fmt])
    assert r.exit_code == 0, r.output
    assert "ads.example.net" in r.output and "35•••••••••1110" in r.output
    for raw in RAW:
        assert raw not in r.output
    if fmt == "--table":
        assert r.output.startswith("4 requests scanned, 3 with personal data")


def test_output_file(case: Path, tmp_path: Path) -> None:
    out = tmp_path / "pii.json"
    r = CliRunner().invoke(main, ["pii", "--db", str(case), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["requests"] == 4


def test_errors_are_one_line(case: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'imei = "{IMEI}x"\n')
    r = CliRunner().invoke(main, ["pii", "--db", str(case), "--device", str(bad)])
    assert r.exit_code == 1
    assert "'imei' must be 14-16 digits" in r.output and IMEI not in r.output
    assert "Traceback" not in r.output
    r = CliRunner().invoke(main, ["pii", "--db", str(tmp_path / "none.sqlite")])
    assert r.exit_code == 1 and "no such case file" in r.output
    notdb = tmp_path / "not.sqlite"
    notdb.write_bytes(b"garbage" * 100)
    r = CliRunner().invoke(main, ["pii", "--db", str(notdb)])
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_library_rescan_in_memory() -> None:
    with Store() as s:
        s.add_connections([_conn("h.example", "a", f"https://h.example/?imei={IMEI}")])
        res = rescan_store(s, PiiDetector(None))
    assert res.requests == 1
    assert [(r.data_type, r.host, r.confidence) for r in res.rows] == [("imei", "h.example", "pattern")]
