"""`audit import`: one summary line per file, bad files reported in one line, exit status."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from audit.cli import ExitStatus, main
from audit.store import Store
from tests.conftest import FIXTURES

CAPTURES = FIXTURES / "captures"


def test_imports_several_files_and_reports_bad_ones(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    garbage = tmp_path / "garbage.har"
    garbage.write_bytes(b"\x00\x01not traffic at all")
    r = CliRunner().invoke(
        main,
        ["import", str(CAPTURES / "messenger.har"), str(garbage), str(CAPTURES / "messenger.pcap"),
         "--db", str(db), "--app", "com.example.messenger"],
    )  # fmt: skip
    assert r.exit_code == ExitStatus.ERROR, r.output
    lines = r.output.strip().splitlines()
    assert any(ln.startswith(f"{CAPTURES / 'messenger.har'}: har, 197 connections") for ln in lines), r.output
    assert any(ln.startswith(f"{CAPTURES / 'messenger.pcap'}: pcap, ") for ln in lines), r.output
    errors = [ln for ln in lines if ln.startswith("audit: error: ")]
    assert errors == [
        f"audit: error: {garbage}: not a mitmproxy flow file, HAR (JSON with log.entries) or pcap/pcapng capture"
    ]
    assert "Traceback" not in r.output
    with Store(db) as store:
        assert {i["kind"] for i in store.inputs()} == {"har", "pcap"}
        assert store.apps() == ["com.example.messenger"]


def test_device_profile_finds_identifiers(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    r = CliRunner().invoke(
        main,
        [
            "import",
            str(CAPTURES / "messenger.flows"),
            "--db",
            str(db),
            "--device",
            str(CAPTURES / "device.toml"),
        ],
    )
    assert r.exit_code == 0, r.output
    with Store(db) as store:
        found = {
            (f.data_type, c.host)
            for _, c in store.connections()
            for f in c.findings
            if f.confidence == "known"
        }
        kinds = [i["kind"] for i in store.inputs()]
    assert ("aaid", "api-access.pangle.io") in found and ("imei", "android.bugly.qq.com") in found
    assert ("email", "api.messenger-example.cn") in found
    assert kinds == ["device-profile", "flows"]


def test_truncated_file_is_imported_as_far_as_it_goes_and_exits_1(tmp_path: Path) -> None:
    """docs/cli.md: an input processed only partly exits 1 (issue 15: it exited 0)."""
    cut = tmp_path / "cut.pcap"
    data = (CAPTURES / "messenger.pcap").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    r = CliRunner().invoke(main, ["import", str(cut), "--db", str(tmp_path / "c.sqlite")])
    assert r.exit_code == ExitStatus.ERROR, r.output
    assert r.stdout.startswith(f"{cut}: pcap, ")  # what was read is imported
    (line,) = r.stderr.splitlines()  # said once (not also by the library's logger)
    assert line.startswith(f"audit: error: {cut}: capture truncated after packet")
    with Store(tmp_path / "c.sqlite") as store:
        assert store.connection_count() > 0


def test_special_files_are_refused(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    r = CliRunner().invoke(main, ["import", str(fifo), str(tmp_path), "--db", str(tmp_path / "c.sqlite")])
    assert r.exit_code != 0
    r = CliRunner().invoke(main, ["import", str(fifo), "--db", str(tmp_path / "c.sqlite")])
    assert r.exit_code == ExitStatus.ERROR and f"audit: error: {fifo}: not a regular file" in r.output


def test_usage_errors() -> None:
    r = CliRunner().invoke(main, ["import"])
    assert r.exit_code == ExitStatus.USAGE
    r = CliRunner().invoke(main, ["import", "/nonexistent/file.har"])
    assert r.exit_code == ExitStatus.USAGE and "does not exist" in r.output


def test_help_has_example() -> None:
    r = CliRunner().invoke(main, ["import", "--help"])
    assert r.exit_code == 0 and "Example:" in r.output and "audit import" in r.output


def test_run_with_a_partly_read_capture_writes_the_report_and_exits_1(tmp_path: Path) -> None:
    apk = FIXTURES / "apks" / "messenger.apk"
    if not apk.exists():
        import pytest

        pytest.skip("APK fixtures not built")
    cut = tmp_path / "cut.pcap"
    data = (CAPTURES / "messenger.pcap").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "r.html"
    r = CliRunner().invoke(
        main, ["run", str(apk), "--capture", str(cut), "--db", str(tmp_path / "c.sqlite"), "-o", str(out)]
    )
    assert r.exit_code == ExitStatus.ERROR, r.output
    assert out.stat().st_size > 10_000
    assert any(ln.startswith(f"audit: error: {cut}: capture truncated") for ln in r.stderr.splitlines())
